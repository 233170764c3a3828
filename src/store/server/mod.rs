//! PostgreSQL (feature `postgres`) and MySQL/MariaDB (feature `mysql`): one database that
//! many registry servers share.
//!
//! Over 600 lines because the `TokenStore` implementation (every operation bounded, every
//! write announced) and its tests (about 70 lines) belong together.
//!
//! Driver: `sqlx`, through its runtime-checked query API (building never needs a live
//! database) and its `Any` driver, so one implementation serves both databases; only the
//! schema, the placeholder syntax and the migration lock differ.
//!
//! The store and its `TokenStore` implementation live here; the statements, the time
//! limit and breaker (`health`), the change feed and the migrations each have a file.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{AnyPool, AssertSqlSafe, Connection as _, Row, SqlSafeStr, SqlStr};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::audit_sql::{self, Arg, DbAuditRow};
use super::cache::{CacheConfig, PendingUses, TokenCache};
use super::codec::{AccountRow, TokenRow, id_to_db, key_from_db, revision_to_db, time_to_db};
use super::{
    AuditFilter, AuditRow, AuditStore, BackendError, KeyFingerprint, StoreError, StoredAuditRow,
    TokenStore,
};
use crate::account::AccountId;
use crate::record::{AccountRecord, StoredToken, TokenRecord};
use crate::token::TokenId;

mod change_feed;
mod clock;
mod health;
mod migrations;
mod statements;
mod trust;

use change_feed::*;
use health::*;
use statements::*;

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SqlDialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

impl SqlDialect {
    /// The database a URL names by its scheme: `postgres://`/`postgresql://` or
    /// `mysql://`/`mariadb://`.
    fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Ok(Self::Mysql)
        } else {
            Err(StoreError::Backend(BackendError::new(UnsupportedUrl)))
        }
    }
}

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(BackendError::new(e))
}

fn is_duplicate(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A token row read by `SELECT_TOKEN` and the like, its columns in `TOKEN_COLUMNS`'s order
/// (see `store::codec`).
fn token_row(row: &AnyRow) -> Result<TokenRow, sqlx::Error> {
    Ok(TokenRow {
        id: row.try_get(0)?,
        account: row.try_get(1)?,
        kind: row.try_get(2)?,
        description: row.try_get(3)?,
        scope: row.try_get(4)?,
        secret_hash: row.try_get(5)?,
        created_at: row.try_get(6)?,
        expires_at: row.try_get(7)?,
        revoked_at: row.try_get(8)?,
        parent: row.try_get(9)?,
        retired: row.try_get(10)?,
        last_used_at: row.try_get(11)?,
        revision: row.try_get(12)?,
        parent_secret_set_at: row.try_get(13)?,
        suspended_at: row.try_get(14)?,
    })
}

/// An account row read by `SELECT_ACCOUNT` and the like, its columns in
/// `ACCOUNT_COLUMNS`'s order (see `store::codec`).
fn account_row(row: &AnyRow) -> Result<AccountRow, sqlx::Error> {
    Ok(AccountRow {
        id: row.try_get(0)?,
        password: row.try_get(1)?,
        primary_token: row.try_get(2)?,
        created_at: row.try_get(3)?,
        revision: row.try_get(4)?,
        disabled_at: row.try_get(5)?,
        deleted_at: row.try_get(6)?,
    })
}

struct Inner {
    pool: AnyPool,
    dialect: SqlDialect,
    sql: Statements,
    cache: TokenCache,
    uses: PendingUses,
    /// The longest an operation may wait for the database
    /// ([`CacheConfig::request_timeout`]).
    limit: Duration,
    health: Health,
    /// Dropped with the store, which stops its change-feed task.
    _stop: watch::Sender<()>,
}

/// Accounts and tokens in PostgreSQL or MySQL/MariaDB, shared by every server of a
/// registry.
///
/// ```no_run
/// use feedkey::store::SqlStore;
/// use feedkey::{Feedkey, TokenKey};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// // Connects, then applies any missing migration (safe from several servers at once).
/// let store = SqlStore::connect("postgres://postgres@127.0.0.1:5432/registry").await?;
/// let key = TokenKey::from_base64(1, &std::env::var("FEEDKEY_TOKEN_KEY")?)?;
/// let keys = Feedkey::builder(store, key).build()?;
/// # Ok(())
/// # }
/// ```
///
/// Records read are cached for [`CacheConfig::trusted_for`] (one second by default); a
/// write through this store is seen by its next read at once. A write by another server
/// is announced inside its transaction (PostgreSQL `NOTIFY`, MySQL a change-feed row) and
/// evicted here when it commits, within milliseconds (PostgreSQL) or one
/// [`CacheConfig::poll_interval`] (MySQL); while this store cannot hear those
/// announcements ([`SqlStore::change_feed_is_up`]) it does not use its cache at all. In
/// every case a record is trusted for at most `trusted_for`. Last-used times are buffered and written every
/// [`CacheConfig::last_used_interval`] by a background task; a process that dies loses
/// at most that much last-used history. Call [`SqlStore::flush`] at shutdown.
///
/// **When the database stops answering**, every operation gives up after
/// [`CacheConfig::request_time_limit`] (one second by default), and once one has found the
/// database unreachable the others fail at once while one at a time tries it
/// ([`SqlStore::database_answers`]): `authorize` answers a 503 within that time for what
/// it cannot decide, and allows again as soon as the database answers. Cached records
/// are not used meanwhile (see [`CacheConfig::request_timeout`]).
#[derive(Clone)]
pub struct SqlStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &self.inner.dialect)
            .finish_non_exhaustive()
    }
}

/// Why a database URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a database URL starts with postgres://, postgresql://, mysql:// or mariadb:// (with that feature enabled)"
)]
pub struct UnsupportedUrl;

impl SqlStore {
    /// The most connections a store opens by default.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

    /// The longest a sweep over all tokens (`tokens_expiring`, `tokens_unused_since`,
    /// `purge_revoked`) or a write of buffered last-used times may run, once it has a
    /// connection (it waits at most [`CacheConfig::request_time_limit`] for one).
    pub const SWEEP_TIME_LIMIT: Duration = Duration::from_secs(300);

    /// The longest one batch of audit events may take to write, once it has a connection.
    pub const AUDIT_TIME_LIMIT: Duration = Duration::from_secs(30);

    /// Connects to `url` (`postgres://…` or `mysql://…`) and migrates the schema.
    /// Must run inside a Tokio runtime.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the database cannot be reached or migrated, or holds
    /// [`UnsupportedUrl`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, CacheConfig::default(), Self::DEFAULT_MAX_CONNECTIONS).await
    }

    /// As [`SqlStore::connect`], with cache settings (and the time limit on each database
    /// operation, [`CacheConfig::request_timeout`]) and a connection limit.
    ///
    /// # Errors
    /// As [`SqlStore::connect`].
    pub async fn connect_with(
        url: &str,
        cache: CacheConfig,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let dialect = SqlDialect::of_url(url)?;
        let url = url.replacen("mariadb://", "mysql://", 1);
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .map_err(backend)?;
        Self::start(pool, dialect, url, cache).await
    }

    /// A store on a pool the caller made and owns (a registry that shares one pool
    /// among its parts): the database is told by the pool's URL (`postgres://…` or
    /// `mysql://…`), the schema is migrated, and the background tasks start as
    /// [`SqlStore::connect_with`] starts them. PostgreSQL's change feed opens one
    /// connection of its own, outside the pool, with the pool's URL. The pool's own
    /// limits (connections, acquire timeout) stay the caller's. Must run inside a Tokio
    /// runtime.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the database cannot be reached or migrated, or holds
    /// [`UnsupportedUrl`] when the pool is not on PostgreSQL or MySQL (with that feature
    /// enabled).
    pub async fn from_pool(pool: AnyPool, cache: CacheConfig) -> Result<Self, StoreError> {
        let url = pool.connect_options().database_url.to_string();
        let dialect = SqlDialect::of_url(&url)?;
        Self::start(pool, dialect, url, cache).await
    }

    /// Migrates, then starts the flusher and the change feed: the path every constructor
    /// shares. `url` reaches the same database as `pool` (for PostgreSQL's `LISTEN`).
    async fn start(
        pool: AnyPool,
        dialect: SqlDialect,
        url: String,
        cache: CacheConfig,
    ) -> Result<Self, StoreError> {
        let (stop, stopped) = watch::channel(());
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                dialect,
                sql: Statements::new(dialect),
                cache: TokenCache::distrusted(&cache),
                uses: PendingUses::default(),
                limit: cache.request_time_limit(),
                health: Health::default(),
                _stop: stop,
            }),
        };
        store.migrate().await?;
        store.start_flusher(cache.last_used_interval());
        let weak = Arc::downgrade(&store.inner);
        match dialect {
            SqlDialect::Postgres => {
                #[cfg(feature = "postgres")]
                tokio::spawn(listen(weak, url, cache.request_time_limit(), stopped));
                #[cfg(not(feature = "postgres"))]
                drop((weak, stopped, url));
            }
            SqlDialect::Mysql => {
                tokio::spawn(poll(weak, cache.poll_interval(), stopped));
            }
        }
        Ok(store)
    }

    /// The database this store talks to.
    pub fn dialect(&self) -> SqlDialect {
        self.inner.dialect
    }

    /// Whether this store hears of other servers' token writes (PostgreSQL: its
    /// `LISTEN` connection is up; MySQL: its last read of the change feed succeeded).
    /// While it does not, its cache is empty and every lookup reads the database.
    pub fn change_feed_is_up(&self) -> bool {
        self.inner.cache.is_trusted()
    }

    /// Whether the database answers, as this store last found it: false from an
    /// operation that could not reach it (or ran out of time) until one that did. While
    /// it is false, one operation at a time tries the database and the others fail at
    /// once (see [`CacheConfig::request_timeout`]). Export it as a health metric.
    pub fn database_answers(&self) -> bool {
        self.inner.health.answers()
    }

    /// Writes the buffered last-used times now.
    ///
    /// # Errors
    /// [`StoreError::Backend`]; the times stay buffered for the next try.
    pub async fn flush(&self) -> Result<(), StoreError> {
        flush(&self.inner).await
    }

    fn start_flusher(&self, every: Duration) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { break };
                let _ = flush(&inner).await;
            }
        });
    }

    /// The tokens `sql` selects, within `limit` (a connection within the request limit).
    async fn load_many(
        &self,
        limit: Duration,
        sql: &SqlStr,
        bind: impl FnOnce(
            sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
        ) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<Vec<StoredToken>, StoreError> {
        let inner = &self.inner;
        let rows = inner
            .within(limit, async {
                let mut conn = inner.connection().await?;
                bind(sqlx::query(sql.clone()))
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(backend)
            })
            .await?;
        rows.iter()
            .map(|row| {
                let mut stored = token_row(row).map_err(backend)?.into_stored()?;
                self.inner.uses.merge(&mut stored);
                Ok(stored)
            })
            .collect()
    }

    async fn exists(&self, sql: &SqlStr, key: Vec<u8>) -> Result<bool, StoreError> {
        Ok(sqlx::query(sql.clone())
            .bind(key)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(backend)?
            .is_some())
    }
}

async fn flush(inner: &Inner) -> Result<(), StoreError> {
    let uses = inner.uses.take();
    if uses.is_empty() {
        return Ok(());
    }
    let result = inner
        .within(SqlStore::SWEEP_TIME_LIMIT, async {
            let mut conn = inner.connection().await?;
            let mut tx = conn.begin().await.map_err(backend)?;
            for (id, at) in &uses {
                let at = time_to_db(*at)?;
                sqlx::query(inner.sql.touch.clone())
                    .bind(at)
                    .bind(id_to_db(id))
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
            tx.commit().await.map_err(backend)
        })
        .await;
    if result.is_err() {
        inner.uses.restore(uses);
    }
    result
}

fn bind_token_row<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    t: &TokenRow,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(t.id.clone())
        .bind(t.account.clone())
        .bind(t.kind.clone())
        .bind(t.description.clone())
        .bind(t.scope.clone())
        .bind(t.secret_hash.clone())
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.revoked_at)
        .bind(t.parent.clone())
        .bind(t.retired.clone())
        .bind(t.last_used_at)
        .bind(t.revision)
        .bind(t.parent_secret_set_at)
        .bind(t.suspended_at)
}

/// The audit trail in `feedkey_audit`: a batch is one transaction of multi-row inserts,
/// within [`SqlStore::AUDIT_TIME_LIMIT`]; a read within the request time limit.
impl AuditStore for SqlStore {
    async fn append_audit(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let rows = rows
            .iter()
            .map(DbAuditRow::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        inner
            .within(Self::AUDIT_TIME_LIMIT, async {
                let mut conn = inner.connection().await?;
                let mut tx = conn.begin().await.map_err(backend)?;
                for chunk in rows.chunks(audit_sql::ROWS_PER_INSERT) {
                    // Placeholders only: every value is bound.
                    let sql = render(inner.dialect, &audit_sql::insert(chunk.len()));
                    let mut query = sqlx::query(AssertSqlSafe(sql));
                    for r in chunk {
                        query = query
                            .bind(r.at)
                            .bind(r.kind.clone())
                            .bind(r.account.clone())
                            .bind(r.token.clone())
                            .bind(r.client_addr.clone())
                            .bind(r.detail.clone());
                    }
                    query.execute(&mut *tx).await.map_err(backend)?;
                }
                tx.commit().await.map_err(backend)
            })
            .await
    }

    async fn audit_rows(&self, filter: &AuditFilter) -> Result<Vec<StoredAuditRow>, StoreError> {
        let (sql, args) = audit_sql::select(filter)?;
        // Constants and a number (the limit); every value is bound.
        let sql = render(self.inner.dialect, &sql);
        let inner = &self.inner;
        let rows = inner
            .bounded(async {
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for arg in args {
                    query = match arg {
                        Arg::Int(v) => query.bind(v),
                        Arg::Text(v) => query.bind(v),
                        Arg::Bytes(v) => query.bind(v),
                    };
                }
                query.fetch_all(&inner.pool).await.map_err(backend)
            })
            .await?;
        rows.iter()
            .map(|row| {
                DbAuditRow {
                    id: row.try_get(0).map_err(backend)?,
                    at: row.try_get(1).map_err(backend)?,
                    kind: row.try_get(2).map_err(backend)?,
                    account: row.try_get(3).map_err(backend)?,
                    token: row.try_get(4).map_err(backend)?,
                    client_addr: row.try_get(5).map_err(backend)?,
                    detail: row.try_get(6).map_err(backend)?,
                }
                .into_stored()
            })
            .collect()
    }

    async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = time_to_db(before)?;
        let inner = &self.inner;
        inner
            .within(Self::SWEEP_TIME_LIMIT, async {
                let mut conn = inner.connection().await?;
                sqlx::query(AssertSqlSafe(render(inner.dialect, audit_sql::PURGE)))
                    .bind(before)
                    .execute(&mut *conn)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(backend)
            })
            .await
    }
}

impl TokenStore for SqlStore {
    async fn insert_account(
        &self,
        account: AccountRecord,
        primary: TokenRecord,
    ) -> Result<(), StoreError> {
        let a = AccountRow::from_record(&account)?;
        let t = TokenRow::from_record(&primary, None)?;
        let dup = |e: sqlx::Error| {
            if is_duplicate(&e) {
                StoreError::Duplicate
            } else {
                backend(e)
            }
        };
        let inner = &self.inner;
        inner
            .bounded(async {
                let mut tx = inner.pool.begin().await.map_err(backend)?;
                sqlx::query(inner.sql.insert_account.clone())
                    .bind(a.id)
                    .bind(a.password)
                    .bind(a.primary_token)
                    .bind(a.created_at)
                    .bind(a.revision)
                    .bind(a.disabled_at)
                    .bind(a.deleted_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(dup)?;
                bind_token_row(sqlx::query(inner.sql.insert_token.clone()), &t)
                    .execute(&mut *tx)
                    .await
                    .map_err(dup)?;
                tx.commit().await.map_err(backend)
            })
            .await
    }

    async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        let inner = &self.inner;
        let row = inner
            .bounded(async {
                sqlx::query(inner.sql.select_account.clone())
                    .bind(id.as_str().to_owned())
                    .fetch_optional(&inner.pool)
                    .await
                    .map_err(backend)
            })
            .await?;
        row.map(|row| account_row(&row).map_err(backend)?.into_record())
            .transpose()
    }

    async fn update_account(
        &self,
        account: AccountRecord,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        let a = AccountRow::from_record(&account)?;
        let expected = revision_to_db(expected_revision)?;
        let inner = &self.inner;
        inner
            .bounded(async {
                let changed = sqlx::query(inner.sql.update_account.clone())
                    .bind(a.password)
                    .bind(a.primary_token)
                    .bind(a.revision)
                    .bind(a.disabled_at)
                    .bind(a.deleted_at)
                    .bind(a.id.clone())
                    .bind(expected)
                    .execute(&inner.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                if changed == 1 {
                    return Ok(());
                }
                let exists = sqlx::query(inner.sql.account_exists.clone())
                    .bind(a.id)
                    .fetch_optional(&inner.pool)
                    .await
                    .map_err(backend)?
                    .is_some();
                Err(if exists {
                    StoreError::Conflict
                } else {
                    StoreError::NotFound
                })
            })
            .await
    }

    async fn insert_token(&self, record: TokenRecord) -> Result<(), StoreError> {
        let t = TokenRow::from_record(&record, None)?;
        let inner = &self.inner;
        inner
            .bounded(async {
                let mut tx = inner.pool.begin().await.map_err(backend)?;
                let account = sqlx::query(inner.sql.account_exists.clone())
                    .bind(t.account.clone())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
                if account.is_none() {
                    return Err(StoreError::NotFound);
                }
                bind_token_row(sqlx::query(inner.sql.insert_token.clone()), &t)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        if is_duplicate(&e) {
                            StoreError::Duplicate
                        } else {
                            backend(e)
                        }
                    })?;
                tx.commit().await.map_err(backend)
            })
            .await
    }

    async fn token(&self, id: &TokenId) -> Result<Option<StoredToken>, StoreError> {
        let inner = &self.inner;
        if let Some(mut cached) = inner.cache.get(id) {
            inner.uses.merge(&mut cached);
            return Ok(Some(cached));
        }
        let epoch = inner.cache.epoch();
        let row = inner
            .bounded(async {
                sqlx::query(inner.sql.select_token.clone())
                    .bind(id_to_db(id))
                    .fetch_optional(&inner.pool)
                    .await
                    .map_err(backend)
            })
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut stored = token_row(&row).map_err(backend)?.into_stored()?;
        inner.uses.merge(&mut stored);
        let stored = inner.cache.put(stored, epoch);
        Ok(Some(stored))
    }

    async fn account_tokens(&self, account: &AccountId) -> Result<Vec<StoredToken>, StoreError> {
        let account = account.as_str().to_owned();
        self.load_many(self.inner.limit, &self.inner.sql.account_tokens, |q| {
            q.bind(account)
        })
        .await
    }

    async fn update_token(
        &self,
        record: TokenRecord,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        let t = TokenRow::from_record(&record, None)?;
        let expected = revision_to_db(expected_revision)?;
        let inner = &self.inner;
        let result = inner
            .bounded(async {
                let mut tx = inner.pool.begin().await.map_err(backend)?;
                let changed = sqlx::query(inner.sql.update_token.clone())
                    .bind(t.kind)
                    .bind(t.description)
                    .bind(t.scope)
                    .bind(t.secret_hash)
                    .bind(t.expires_at)
                    .bind(t.revoked_at)
                    .bind(t.parent)
                    .bind(t.retired)
                    .bind(t.revision)
                    .bind(t.suspended_at)
                    .bind(t.id.clone())
                    .bind(t.account)
                    .bind(expected)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                if changed == 1 {
                    // Sent (PostgreSQL) or visible (MySQL) only if the write commits.
                    announce(inner, &mut tx, Some(&record.id)).await?;
                    return tx.commit().await.map_err(backend);
                }
                drop(tx);
                Err(if self.exists(&inner.sql.token_exists, t.id).await? {
                    StoreError::Conflict
                } else {
                    StoreError::NotFound
                })
            })
            .await;
        // Also when it failed or ran out of time: the write may have committed.
        inner.cache.invalidate(&record.id);
        result
    }

    async fn touch_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<(), StoreError> {
        // Memory only: the flusher writes it, within its own bound.
        self.inner.uses.record(*id, at);
        self.inner.cache.touch(id, at);
        Ok(())
    }

    async fn tokens_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<StoredToken>, StoreError> {
        let (from, until) = (time_to_db(from)?, time_to_db(until)?);
        self.load_many(Self::SWEEP_TIME_LIMIT, &self.inner.sql.expiring, |q| {
            q.bind(from).bind(until)
        })
        .await
    }

    async fn tokens_unused_since(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<StoredToken>, StoreError> {
        // Buffered uses count: write them first.
        self.flush().await?;
        let before = time_to_db(before)?;
        self.load_many(Self::SWEEP_TIME_LIMIT, &self.inner.sql.unused, |q| {
            q.bind(before)
        })
        .await
    }

    async fn purge_revoked(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = time_to_db(before)?;
        let inner = &self.inner;
        let deleted = inner
            .within(Self::SWEEP_TIME_LIMIT, async {
                let mut conn = inner.connection().await?;
                let mut tx = conn.begin().await.map_err(backend)?;
                let deleted = sqlx::query(inner.sql.purge.clone())
                    .bind(before)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                if deleted > 0 {
                    announce(inner, &mut tx, None).await?;
                }
                tx.commit().await.map_err(backend)?;
                Ok(deleted)
            })
            .await;
        // Also when it failed or ran out of time: the purge may have committed.
        inner.cache.clear();
        deleted
    }

    async fn key_fingerprints(&self) -> Result<Vec<(u32, KeyFingerprint)>, StoreError> {
        let inner = &self.inner;
        let rows = inner
            .bounded(async {
                sqlx::query("SELECT version, fingerprint FROM feedkey_keys ORDER BY version")
                    .fetch_all(&inner.pool)
                    .await
                    .map_err(backend)
            })
            .await?;
        rows.iter()
            .map(|row| {
                let version: i64 = row.try_get(0).map_err(backend)?;
                let fingerprint: String = row.try_get(1).map_err(backend)?;
                key_from_db(version, &fingerprint)
            })
            .collect()
    }

    async fn remember_key(
        &self,
        version: u32,
        fingerprint: KeyFingerprint,
    ) -> Result<KeyFingerprint, StoreError> {
        let inner = &self.inner;
        // A remembered row never changes: whoever inserted first, the read after the
        // insert (a statement of its own, so it sees every commit) finds the winner.
        let insert = match inner.dialect {
            SqlDialect::Postgres => {
                "INSERT INTO feedkey_keys (version, fingerprint, remembered_at) \
                 VALUES (?, ?, ?) ON CONFLICT (version) DO NOTHING"
            }
            SqlDialect::Mysql => {
                "INSERT INTO feedkey_keys (version, fingerprint, remembered_at) \
                 VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE version = version"
            }
        };
        let now = time_to_db(OffsetDateTime::now_utc())?;
        let stored: String = inner
            .bounded(async {
                sqlx::query(AssertSqlSafe(render(inner.dialect, insert)))
                    .bind(i64::from(version))
                    .bind(fingerprint.to_string())
                    .bind(now)
                    .execute(&inner.pool)
                    .await
                    .map_err(backend)?;
                sqlx::query(AssertSqlSafe(render(
                    inner.dialect,
                    "SELECT fingerprint FROM feedkey_keys WHERE version = ?",
                )))
                .bind(i64::from(version))
                .fetch_one(&inner.pool)
                .await
                .and_then(|row| row.try_get(0))
                .map_err(backend)
            })
            .await?;
        Ok(key_from_db(i64::from(version), &stored)?.1)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        flush(&self.inner).await
    }

    async fn accounts(
        &self,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        let inner = &self.inner;
        let after = after.map(|a| a.as_str().to_owned());
        let limit = i64::from(limit);
        let rows = inner
            .bounded(async {
                let query = match after {
                    None => sqlx::query(inner.sql.accounts_first.clone()).bind(limit),
                    Some(after) => sqlx::query(inner.sql.accounts_after.clone())
                        .bind(after)
                        .bind(limit),
                };
                query.fetch_all(&inner.pool).await.map_err(backend)
            })
            .await?;
        rows.iter()
            .map(|row| account_row(row).map_err(backend)?.into_record())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn an_unreachable_database_is_tried_by_one_operation_at_a_time() {
        let health = Health::default();
        let limit = Duration::from_millis(20);
        // The database answers: everything goes through.
        assert_eq!(health.run(limit, async { Ok(1) }).await, Ok(1));
        assert!(health.answers());
        // An error the database answered with says nothing of reachability.
        assert_eq!(
            health
                .run(limit, async { Err::<(), _>(StoreError::Conflict) })
                .await,
            Err(StoreError::Conflict)
        );
        assert!(health.answers());
        // An operation that hangs gives up at the limit, and marks the database
        // unreachable.
        let started = Instant::now();
        let hung = health
            .run(limit, std::future::pending::<Result<(), _>>())
            .await;
        assert!(started.elapsed() >= limit && started.elapsed() < limit * 10);
        assert_eq!(
            hung.unwrap_err().to_string(),
            "backend failure: the database did not answer within 20ms"
        );
        assert!(!health.answers());
        // One operation at a time tries it; the others fail at once.
        let probe = health.admit().expect("the first is let through");
        assert!(health.admit().is_none());
        let started = Instant::now();
        let refused = health.run(limit, async { Ok(()) }).await;
        assert!(started.elapsed() < limit);
        assert!(refused.is_err_and(|e| is_unreachable(&e)));
        drop(probe);
        // A probe the database answers ends the outage.
        assert_eq!(health.run(limit, async { Ok(2) }).await, Ok(2));
        assert!(health.answers() && health.admit().is_some_and(|a| a.0.is_none()));
    }

    #[test]
    fn only_failures_to_reach_the_database_count_as_unreachable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(is_unreachable(&backend(sqlx::Error::Io(io))));
        assert!(is_unreachable(&backend(sqlx::Error::PoolTimedOut)));
        assert!(is_unreachable(&no_answer(NoAnswer::TimedOut(
            Duration::ZERO
        ))));
        assert!(!is_unreachable(&backend(sqlx::Error::RowNotFound)));
        assert!(!is_unreachable(&StoreError::Duplicate));
        assert!(!is_unreachable(&StoreError::Backend(BackendError::new(
            UnsupportedUrl
        ))));
    }

    #[test]
    fn placeholders_are_rendered_for_postgres_only() {
        let sql = "UPDATE t SET a = ? WHERE b = ? AND c = ?";
        assert_eq!(
            render(SqlDialect::Postgres, sql),
            "UPDATE t SET a = $1 WHERE b = $2 AND c = $3"
        );
        assert_eq!(render(SqlDialect::Mysql, sql), sql);
    }
}
