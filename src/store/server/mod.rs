//! PostgreSQL (feature `postgres`) and MySQL/MariaDB (feature `mysql`): one database that
//! many registry servers share.
//!
//! Driver: `sqlx`, through its runtime-checked query API (building never needs a live
//! database) and its `Any` driver, so one implementation serves both databases; only the
//! schema, the placeholder syntax and the migration lock differ.
//!
//! Over 500 lines: not yet split into statements, health (time limit and breaker),
//! change_feed (listen/poll) and migrations; that split is the next step.

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

use super::cache::{CacheConfig, PendingUses, TokenCache};
use super::codec::{AccountRow, TokenRow, id_to_db, key_from_db, revision_to_db, time_to_db};
use super::{BackendError, KeyFingerprint, StoreError, TokenStore};
use crate::account::AccountId;
use crate::record::{AccountRecord, StoredToken, TokenRecord};
use crate::token::TokenId;

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SqlDialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

/// PostgreSQL compares text byte for byte (its deterministic collations break every tie
/// by the bytes; `TEXT` never pads).
const POSTGRES_MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE IF NOT EXISTS feedkey_accounts (
            id TEXT PRIMARY KEY,
            password TEXT,
            primary_token BYTEA NOT NULL,
            created_at BIGINT NOT NULL,
            revision BIGINT NOT NULL
        )",
            "CREATE TABLE IF NOT EXISTS feedkey_tokens (
            id BYTEA PRIMARY KEY,
            account TEXT NOT NULL REFERENCES feedkey_accounts(id),
            kind TEXT NOT NULL,
            description TEXT NOT NULL,
            scope TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            revoked_at BIGINT,
            parent BYTEA,
            retired TEXT NOT NULL,
            last_used_at BIGINT,
            revision BIGINT NOT NULL
        )",
            "CREATE INDEX IF NOT EXISTS feedkey_tokens_account ON feedkey_tokens(account, created_at)",
            "CREATE INDEX IF NOT EXISTS feedkey_tokens_expires ON feedkey_tokens(expires_at)",
        ],
    ),
    (
        2,
        // The token keys this database was used with (see `TokenStore::remember_key`).
        &["CREATE TABLE IF NOT EXISTS feedkey_keys (
            version BIGINT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            remembered_at BIGINT NOT NULL
        )"],
    ),
    (
        3,
        // Which of its parent's secrets a derived token was derived under.
        &["ALTER TABLE feedkey_tokens ADD COLUMN IF NOT EXISTS parent_secret_set_at BIGINT"],
    ),
];

/// MySQL compares text case-insensitively unless told otherwise, and `utf8mb4_bin` (of
/// version 1) still ignores trailing spaces (`PAD SPACE`): `"alice "` found `"alice"`.
/// Version 3 moves account ids to a `NO PAD` binary collation, so they compare byte for
/// byte; `{nopad_bin}` stands for it (see [`nopad_bin`]). Token ids are bytes.
const MYSQL_MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE IF NOT EXISTS feedkey_accounts (
            id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
            password TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
            primary_token VARBINARY(16) NOT NULL,
            created_at BIGINT NOT NULL,
            revision BIGINT NOT NULL
        ) ENGINE = InnoDB",
            "CREATE TABLE IF NOT EXISTS feedkey_tokens (
            id VARBINARY(16) NOT NULL PRIMARY KEY,
            account VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
            kind VARCHAR(16) NOT NULL,
            description TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
            scope MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
            secret_hash VARCHAR(128) NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NULL,
            revoked_at BIGINT NULL,
            parent VARBINARY(16) NULL,
            retired TEXT NOT NULL,
            last_used_at BIGINT NULL,
            revision BIGINT NOT NULL,
            INDEX feedkey_tokens_account (account, created_at),
            INDEX feedkey_tokens_expires (expires_at),
            CONSTRAINT feedkey_tokens_account_fk FOREIGN KEY (account)
                REFERENCES feedkey_accounts (id)
        ) ENGINE = InnoDB",
        ],
    ),
    (
        2,
        // The change feed: one row per token write that every server polls (MySQL has
        // no notifications). `token_id` NULL means "every token". Times are the
        // database's clock, in microseconds, so that servers' clocks never matter.
        &["CREATE TABLE IF NOT EXISTS feedkey_changes (
            seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            token_id VARBINARY(16) NULL,
            changed_at BIGINT NOT NULL,
            INDEX feedkey_changes_at (changed_at)
        ) ENGINE = InnoDB"],
    ),
    (
        3,
        // Account ids compared byte for byte. The foreign key between the two columns is
        // dropped first (see `MYSQL_FOREIGN_KEYS_DROPPED`): neither column's collation can
        // change under it, even with `FOREIGN_KEY_CHECKS = 0` on MariaDB.
        //
        // A token issued under the old collation to a name that only matched an account
        // with padding (`"alice "` for `"alice"`) belongs to no account now. It was
        // issued through the hole this closes, so it is revoked (its revision bumped),
        // and moved to the account it matched so that the foreign key holds and the
        // record stays for the audit. Every server is told to forget its cached tokens.
        &[
            "ALTER TABLE feedkey_accounts MODIFY id
                VARCHAR(256) CHARACTER SET utf8mb4 COLLATE {nopad_bin} NOT NULL",
            "ALTER TABLE feedkey_tokens MODIFY account
                VARCHAR(256) CHARACTER SET utf8mb4 COLLATE {nopad_bin} NOT NULL",
            "UPDATE feedkey_tokens t
                LEFT JOIN feedkey_accounts own ON own.id = t.account
                JOIN feedkey_accounts a
                    ON a.id COLLATE utf8mb4_bin = t.account COLLATE utf8mb4_bin
                SET t.account = a.id,
                    t.revoked_at = COALESCE(t.revoked_at,
                        CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000000 AS SIGNED)),
                    t.revision = t.revision + 1
                WHERE own.id IS NULL",
            "INSERT INTO feedkey_changes (token_id, changed_at)
                VALUES (NULL, CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED))",
            "ALTER TABLE feedkey_tokens ADD CONSTRAINT feedkey_tokens_account_fk
                FOREIGN KEY (account) REFERENCES feedkey_accounts (id)",
        ],
    ),
    (
        4,
        // The token keys this database was used with (see `TokenStore::remember_key`).
        &["CREATE TABLE IF NOT EXISTS feedkey_keys (
            version BIGINT NOT NULL PRIMARY KEY,
            fingerprint VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
            remembered_at BIGINT NOT NULL
        ) ENGINE = InnoDB"],
    ),
    (
        5,
        // Which of its parent's secrets a derived token was derived under.
        &["ALTER TABLE feedkey_tokens ADD COLUMN parent_secret_set_at BIGINT NULL"],
    ),
];

/// MySQL: the foreign keys (table, constraint) dropped, where they exist, before a
/// version's statements run. Checked rather than assumed, so that a migration a crash
/// cut short (MySQL's DDL is not transactional) runs again.
const MYSQL_FOREIGN_KEYS_DROPPED: &[(i64, &str, &str)] =
    &[(3, "feedkey_tokens", "feedkey_tokens_account_fk")];

/// MySQL: the `NO PAD` binary collations of `utf8mb4`, by preference: MariaDB (10.2 and
/// later) names it `utf8mb4_nopad_bin`, MySQL 8 `utf8mb4_0900_bin`.
const NOPAD_BIN_COLLATIONS: &[&str] = &["utf8mb4_nopad_bin", "utf8mb4_0900_bin"];

const TOKEN_COLUMNS: &str = "id, account, kind, description, scope, secret_hash, created_at, \
     expires_at, revoked_at, parent, retired, last_used_at, revision, parent_secret_set_at";

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(BackendError::new(e))
}

/// Why an operation got no answer from the database (inside [`StoreError::Backend`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum NoAnswer {
    /// The operation ran out of time.
    #[error("the database did not answer within {0:?}")]
    TimedOut(Duration),
    /// The database is known to be unreachable and another operation is trying it.
    #[error("the database is unreachable (another operation is trying it); not waiting")]
    Unreachable,
}

fn no_answer(why: NoAnswer) -> StoreError {
    StoreError::Backend(BackendError::new(why))
}

/// Whether `error` says that the database could not be reached, rather than that it
/// answered with an error.
fn is_unreachable(error: &StoreError) -> bool {
    let StoreError::Backend(BackendError(inner)) = error else {
        return false;
    };
    if inner.is::<NoAnswer>() {
        return true;
    }
    match inner.downcast_ref::<sqlx::Error>() {
        Some(
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed,
        ) => true,
        // SQLSTATE class 08 (connection exception), and PostgreSQL's 57P01..57P03 (the
        // server is shutting down, or not yet accepting connections).
        Some(sqlx::Error::Database(db)) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
        _ => false,
    }
}

/// Whether the database answers, as this store last found it. While it does not, one
/// operation at a time tries it (the first answer ends the outage) and the others fail at
/// once instead of waiting.
#[derive(Debug, Default)]
struct Health {
    unreachable: AtomicBool,
    probing: AtomicBool,
}

/// Leave to try the database; while it is unreachable, the one probe's, given back when
/// dropped.
struct Admitted<'a>(Option<&'a AtomicBool>);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if let Some(probing) = self.0 {
            probing.store(false, Ordering::Release);
        }
    }
}

impl Health {
    /// Every operation while the database answers; one at a time while it does not.
    fn admit(&self) -> Option<Admitted<'_>> {
        if !self.unreachable.load(Ordering::Acquire) {
            return Some(Admitted(None));
        }
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Admitted(Some(&self.probing)))
    }

    /// Runs `op` for at most `limit`, unless the database is known to be unreachable and
    /// another operation is already trying it (then fails at once). Notes whether `op`
    /// reached the database.
    async fn run<T>(
        &self,
        limit: Duration,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let Some(_admitted) = self.admit() else {
            return Err(no_answer(NoAnswer::Unreachable));
        };
        let result = tokio::time::timeout(limit, op)
            .await
            .unwrap_or_else(|_| Err(no_answer(NoAnswer::TimedOut(limit))));
        self.found(!matches!(&result, Err(e) if is_unreachable(e)));
        result
    }

    /// Notes whether an operation reached the database.
    fn found(&self, reachable: bool) {
        if self.unreachable.load(Ordering::Relaxed) == reachable {
            self.unreachable.store(!reachable, Ordering::Release);
        }
    }

    fn answers(&self) -> bool {
        !self.unreachable.load(Ordering::Acquire)
    }
}

fn is_duplicate(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// MySQL's "duplicate column name" (error 1060), from an `ADD COLUMN` run twice.
fn is_duplicate_column(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("42S21"))
}

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
    })
}

/// Every statement, written once with `?` placeholders and rendered for the dialect.
/// They are constants of this file (no value is ever spliced into one: values are bound),
/// which is what makes `AssertSqlSafe` true here.
struct Statements {
    insert_account: SqlStr,
    insert_token: SqlStr,
    select_account: SqlStr,
    account_exists: SqlStr,
    update_account: SqlStr,
    select_token: SqlStr,
    token_exists: SqlStr,
    account_tokens: SqlStr,
    update_token: SqlStr,
    touch: SqlStr,
    expiring: SqlStr,
    unused: SqlStr,
    purge: SqlStr,
    /// Tells every server that a token changed (PostgreSQL: `NOTIFY`; MySQL: a row in
    /// the change feed), inside the writing transaction.
    announce: SqlStr,
    /// MySQL: the change feed's recent rows.
    changes: SqlStr,
    /// MySQL: drops change-feed rows no server needs any more.
    prune_changes: SqlStr,
}

/// The PostgreSQL channel token changes are announced on.
const CHANNEL: &str = "feedkey_tokens";

/// The payload that means "every token" (a purge).
const ALL: &str = "*";

/// MySQL's clock, in microseconds since the epoch.
const MYSQL_NOW_US: &str = "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)";

/// How far back each read of the MySQL change feed looks. Rows are read again until they
/// are this old, so a write whose row became visible late (its transaction committed
/// after a later one) is still seen; a server whose reads stopped for longer than half
/// of it forgets its whole cache.
const FEED_LOOKBACK: Duration = Duration::from_secs(10);

/// How long change-feed rows are kept.
const FEED_RETENTION: Duration = Duration::from_secs(3600);

impl Statements {
    fn new(dialect: SqlDialect) -> Self {
        let r = |sql: &str| AssertSqlSafe(Arc::<str>::from(render(dialect, sql))).into_sql_str();
        Self {
            insert_account: r("INSERT INTO feedkey_accounts \
                (id, password, primary_token, created_at, revision) VALUES (?, ?, ?, ?, ?)"),
            insert_token: r(&format!(
                "INSERT INTO feedkey_tokens ({TOKEN_COLUMNS}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )),
            select_account: r("SELECT id, password, primary_token, created_at, revision \
                FROM feedkey_accounts WHERE id = ?"),
            account_exists: r("SELECT 1 FROM feedkey_accounts WHERE id = ?"),
            update_account: r(
                "UPDATE feedkey_accounts SET password = ?, primary_token = ?, \
                revision = ? WHERE id = ? AND revision = ?",
            ),
            select_token: r(&format!(
                "SELECT {TOKEN_COLUMNS} FROM feedkey_tokens WHERE id = ?"
            )),
            token_exists: r("SELECT 1 FROM feedkey_tokens WHERE id = ?"),
            account_tokens: r(&format!(
                "SELECT {TOKEN_COLUMNS} FROM feedkey_tokens WHERE account = ? \
                 ORDER BY created_at, id"
            )),
            update_token: r(
                "UPDATE feedkey_tokens SET kind = ?, description = ?, scope = ?, \
                secret_hash = ?, expires_at = ?, revoked_at = ?, parent = ?, retired = ?, \
                revision = ? WHERE id = ? AND account = ? AND revision = ?",
            ),
            touch: r("UPDATE feedkey_tokens SET last_used_at = ? \
                WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)"),
            expiring: r(&format!(
                "SELECT {TOKEN_COLUMNS} FROM feedkey_tokens WHERE revoked_at IS NULL \
                 AND expires_at >= ? AND expires_at < ? ORDER BY expires_at, id"
            )),
            unused: r(&format!(
                "SELECT {TOKEN_COLUMNS} FROM feedkey_tokens WHERE revoked_at IS NULL \
                 AND COALESCE(last_used_at, created_at) <= ? ORDER BY id"
            )),
            purge: r("DELETE FROM feedkey_tokens WHERE revoked_at IS NOT NULL AND revoked_at < ?"),
            announce: match dialect {
                SqlDialect::Postgres => r(&format!("SELECT pg_notify('{CHANNEL}', ?)")),
                SqlDialect::Mysql => r(&format!(
                    "INSERT INTO feedkey_changes (token_id, changed_at) VALUES (?, {MYSQL_NOW_US})"
                )),
            },
            changes: r(&format!(
                "SELECT seq, token_id FROM feedkey_changes \
                 WHERE changed_at >= {MYSQL_NOW_US} - ? ORDER BY seq"
            )),
            prune_changes: r(&format!(
                "DELETE FROM feedkey_changes WHERE changed_at < {MYSQL_NOW_US} - ?"
            )),
        }
    }
}

/// `sql` with its `?` placeholders as the dialect writes them (`$1`, `$2`… for
/// PostgreSQL). No statement here has a `?` inside a literal.
fn render(dialect: SqlDialect, sql: &str) -> String {
    match dialect {
        SqlDialect::Mysql => sql.to_owned(),
        SqlDialect::Postgres => {
            let mut out = String::with_capacity(sql.len() + 16);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
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

impl Inner {
    /// Runs `op` on the database for at most `limit` ([`Health::run`]).
    async fn within<T>(
        &self,
        limit: Duration,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.health.run(limit, op).await
    }

    /// Runs `op` within the request time limit.
    async fn bounded<T>(
        &self,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.within(self.limit, op).await
    }

    /// A connection, within the request time limit (for sweeps, whose statements may run
    /// longer).
    async fn connection(&self) -> Result<PoolConnection<sqlx::Any>, StoreError> {
        match tokio::time::timeout(self.limit, self.pool.acquire()).await {
            // A connection proves the database answers: a long sweep holding the one
            // probe's leave must not keep every request failing until it ends.
            Ok(Ok(conn)) => {
                self.health.found(true);
                Ok(conn)
            }
            Ok(Err(e)) => Err(backend(e)),
            Err(_) => Err(no_answer(NoAnswer::TimedOut(self.limit))),
        }
    }
}

/// Accounts and tokens in PostgreSQL or MySQL/MariaDB, shared by every server of a
/// registry.
///
/// ```no_run
/// use feedkey::{Feedkey, SqlStore, TokenKey};
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
        let dialect = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            SqlDialect::Postgres
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            SqlDialect::Mysql
        } else {
            return Err(StoreError::Backend(BackendError::new(UnsupportedUrl)));
        };
        let url = url.replacen("mariadb://", "mysql://", 1);
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .map_err(backend)?;
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
                drop((weak, stopped));
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

    /// Applies the migrations the database lacks. Several servers may run it at once: a
    /// database lock (`pg_advisory_xact_lock`, `GET_LOCK`) lets one at a time in, and each
    /// version is applied once. Idempotent.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let mut conn = inner.pool.acquire().await.map_err(backend)?;
        let (migrations, lock, unlock) = match inner.dialect {
            SqlDialect::Postgres => (
                POSTGRES_MIGRATIONS,
                "SELECT pg_advisory_lock(7366537369)",
                "SELECT pg_advisory_unlock(7366537369)",
            ),
            SqlDialect::Mysql => (
                MYSQL_MIGRATIONS,
                "SELECT GET_LOCK('feedkey_migrate', 60)",
                "SELECT RELEASE_LOCK('feedkey_migrate')",
            ),
        };
        match inner.dialect {
            // Waits as long as it takes.
            SqlDialect::Postgres => {
                sqlx::query(lock)
                    .execute(&mut *conn)
                    .await
                    .map_err(backend)?;
            }
            // Answers 0 when it timed out: going on would race another server's
            // migration.
            SqlDialect::Mysql => {
                let locked: Option<i64> = sqlx::query(lock)
                    .fetch_one(&mut *conn)
                    .await
                    .and_then(|row| row.try_get(0))
                    .map_err(backend)?;
                if locked != Some(1) {
                    return Err(StoreError::Backend(BackendError::new(MigrationLocked)));
                }
            }
        }
        let result = async {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS feedkey_schema (
                    version BIGINT NOT NULL PRIMARY KEY,
                    applied_at BIGINT NOT NULL
                )",
            )
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
            let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM feedkey_schema")
                .fetch_one(&mut *conn)
                .await
                .and_then(|row| row.try_get(0))
                .map_err(backend)?;
            let mut collation = None;
            for (version, statements) in migrations.iter().filter(|(v, _)| *v > current) {
                if inner.dialect == SqlDialect::Mysql {
                    for (_, table, name) in MYSQL_FOREIGN_KEYS_DROPPED
                        .iter()
                        .filter(|(v, _, _)| v == version)
                    {
                        drop_foreign_key(&mut conn, table, name).await?;
                    }
                }
                for statement in *statements {
                    let statement = if statement.contains("{nopad_bin}") {
                        let chosen = match collation {
                            Some(chosen) => chosen,
                            None => *collation.insert(nopad_bin(&mut conn).await?),
                        };
                        statement.replace("{nopad_bin}", chosen)
                    } else {
                        (*statement).to_owned()
                    };
                    // A constant of this file, the collation one of `NOPAD_BIN_COLLATIONS`.
                    match sqlx::query(AssertSqlSafe(statement))
                        .execute(&mut *conn)
                        .await
                    {
                        Ok(_) => {}
                        // MySQL's DDL is not transactional, and MySQL 8 has no `ADD COLUMN
                        // IF NOT EXISTS`: a column a crash-interrupted run added is there.
                        Err(e) if is_duplicate_column(&e) => {}
                        Err(e) => return Err(backend(e)),
                    }
                }
                sqlx::query(AssertSqlSafe(render(
                    inner.dialect,
                    "INSERT INTO feedkey_schema (version, applied_at) VALUES (?, ?)",
                )))
                .bind(*version)
                .bind(time_to_db(OffsetDateTime::now_utc())?)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            }
            Ok(())
        }
        .await;
        let unlocked = sqlx::query(unlock)
            .execute(&mut *conn)
            .await
            .map_err(backend);
        result.and(unlocked.map(drop))
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

/// Another server held the migration lock for longer than a migration should take.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("another server held the migration lock for 60 s; nothing was migrated")]
struct MigrationLocked;

/// No `NO PAD` binary collation on this MySQL or MariaDB server.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "this server has no NO PAD binary collation for utf8mb4 (utf8mb4_nopad_bin, \
     utf8mb4_0900_bin): MariaDB 10.2 or MySQL 8.0 is needed"
)]
struct NoNopadCollation;

/// MySQL: the first of [`NOPAD_BIN_COLLATIONS`] this server has that tells `"a"` from
/// `"a "` and from `"A"` (checked, not assumed from the name).
async fn nopad_bin(conn: &mut PoolConnection<sqlx::Any>) -> Result<&'static str, StoreError> {
    for &name in NOPAD_BIN_COLLATIONS {
        let known = sqlx::query(
            "SELECT COUNT(*) FROM information_schema.COLLATIONS WHERE COLLATION_NAME = ?",
        )
        .bind(name)
        .fetch_one(&mut **conn)
        .await
        .and_then(|row| row.try_get::<i64, _>(0))
        .map_err(backend)?;
        if known == 0 {
            continue;
        }
        // `name` is one of the constants above.
        let probe = format!(
            "SELECT (_utf8mb4'a' COLLATE {name} = _utf8mb4'a ' COLLATE {name}) \
                 + (_utf8mb4'a' COLLATE {name} = _utf8mb4'A' COLLATE {name})"
        );
        let equal: i64 = sqlx::query(AssertSqlSafe(probe))
            .fetch_one(&mut **conn)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(backend)?;
        if equal == 0 {
            return Ok(name);
        }
    }
    Err(StoreError::Backend(BackendError::new(NoNopadCollation)))
}

/// MySQL: drops the foreign key `name` of `table`, if it exists.
async fn drop_foreign_key(
    conn: &mut PoolConnection<sqlx::Any>,
    table: &str,
    name: &str,
) -> Result<(), StoreError> {
    let exists = sqlx::query(
        "SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS \
         WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ? \
         AND CONSTRAINT_NAME = ? AND CONSTRAINT_TYPE = 'FOREIGN KEY'",
    )
    .bind(table.to_owned())
    .bind(name.to_owned())
    .fetch_one(&mut **conn)
    .await
    .and_then(|row| row.try_get::<i64, _>(0))
    .map_err(backend)?;
    if exists > 0 {
        // Both names are constants of this file.
        sqlx::query(AssertSqlSafe(format!(
            "ALTER TABLE {table} DROP FOREIGN KEY {name}"
        )))
        .execute(&mut **conn)
        .await
        .map_err(backend)?;
    }
    Ok(())
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

/// Tells every server, inside `tx`, that token `id` (or, with `None`, every token)
/// changed.
async fn announce(
    inner: &Inner,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: Option<&TokenId>,
) -> Result<(), StoreError> {
    let query = sqlx::query(inner.sql.announce.clone());
    let query = match inner.dialect {
        SqlDialect::Postgres => query.bind(id.map_or_else(|| ALL.to_owned(), ToString::to_string)),
        SqlDialect::Mysql => query.bind(id.map(id_to_db)),
    };
    query.execute(&mut **tx).await.map_err(backend)?;
    Ok(())
}

/// Applies one announcement to the cache: forgets the token it names, or everything.
fn forget(cache: &TokenCache, id: Option<TokenId>) {
    match id {
        Some(id) => cache.invalidate(&id),
        None => cache.clear(),
    }
}

/// The least time an attempt to listen again is given (see [`listen`]).
#[cfg(feature = "postgres")]
const MIN_LISTEN_TIME: Duration = Duration::from_secs(5);

/// PostgreSQL: `LISTEN`s for announcements for as long as the store lives. The cache is
/// trusted only while the listening connection is up; when it drops, the cache is
/// emptied and bypassed until a new connection is listening again. Each attempt to
/// listen again is given `limit`, and never less than [`MIN_LISTEN_TIME`]: a request's
/// limit may be a few milliseconds, shorter than a TLS handshake, and a listener that
/// can never connect would leave the cache distrusted for good.
#[cfg(feature = "postgres")]
async fn listen(weak: Weak<Inner>, url: String, limit: Duration, mut stop: watch::Receiver<()>) {
    let limit = limit.max(MIN_LISTEN_TIME);
    let mut backoff = Duration::from_millis(50);
    loop {
        let connect = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            // A lost connection ends this listener; the loop makes a new one.
            listener.eager_reconnect(false);
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let connected = tokio::select! {
            c = tokio::time::timeout(limit, connect) => c.ok().and_then(Result::ok),
            _ = stop.changed() => return,
        };
        let mut listener = match connected {
            Some(listener) => listener,
            None => {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        // Listening from here on: anything cached before may have missed a change.
        match weak.upgrade() {
            Some(inner) => {
                inner.cache.trust();
                inner.health.found(true);
            }
            None => return,
        }
        loop {
            let next = tokio::select! {
                n = listener.try_recv() => n,
                _ = stop.changed() => return,
            };
            let Some(inner) = weak.upgrade() else { return };
            match next {
                Ok(Some(note)) => {
                    let payload = note.payload();
                    // An unreadable payload forgets everything rather than guess.
                    let id = if payload == ALL {
                        None
                    } else {
                        payload.parse().ok()
                    };
                    forget(&inner.cache, id);
                }
                Ok(None) | Err(_) => {
                    inner.cache.distrust();
                    break;
                }
            }
        }
    }
}

/// MySQL/MariaDB: reads the change feed every `every` for as long as the store lives.
/// The cache is trusted only while reads succeed; a failed read empties and bypasses it
/// until one succeeds again.
async fn poll(weak: Weak<Inner>, every: Duration, mut stop: watch::Receiver<()>) {
    let lookback = i64::try_from(FEED_LOOKBACK.as_micros()).unwrap_or(i64::MAX);
    let retention = i64::try_from(FEED_RETENTION.as_micros()).unwrap_or(i64::MAX);
    let mut seen: HashSet<i64> = HashSet::new();
    let mut last_read: Option<Instant> = None;
    let mut reads: u64 = 0;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let started = Instant::now();
        let rows = inner
            .bounded(async {
                sqlx::query(inner.sql.changes.clone())
                    .bind(lookback)
                    .fetch_all(&inner.pool)
                    .await
                    .and_then(|rows| {
                        rows.iter()
                            .map(|row| {
                                let seq: i64 = row.try_get(0)?;
                                let id: Option<Vec<u8>> = row.try_get(1)?;
                                Ok((seq, id))
                            })
                            .collect::<Result<Vec<_>, sqlx::Error>>()
                    })
                    .map_err(backend)
            })
            .await;
        match rows {
            Ok(rows) => {
                let continuous =
                    last_read.is_some_and(|at| started.duration_since(at) < FEED_LOOKBACK / 2);
                if continuous {
                    for (seq, id) in &rows {
                        if !seen.contains(seq) {
                            let id = id
                                .as_deref()
                                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                                .map(TokenId::from_bytes);
                            forget(&inner.cache, id);
                        }
                    }
                } else {
                    // The first read, or reads stopped long enough to miss rows.
                    inner.cache.trust();
                }
                seen = rows.into_iter().map(|(seq, _)| seq).collect();
                last_read = Some(started);
            }
            Err(_) => {
                inner.cache.distrust();
                last_read = None;
            }
        }
        reads += 1;
        if reads.is_multiple_of(600) {
            let _ = inner
                .bounded(async {
                    sqlx::query(inner.sql.prune_changes.clone())
                        .bind(retention)
                        .execute(&inner.pool)
                        .await
                        .map_err(backend)
                })
                .await;
        }
        drop(inner);
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
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
        row.map(|row| {
            AccountRow {
                id: row.try_get(0).map_err(backend)?,
                password: row.try_get(1).map_err(backend)?,
                primary_token: row.try_get(2).map_err(backend)?,
                created_at: row.try_get(3).map_err(backend)?,
                revision: row.try_get(4).map_err(backend)?,
            }
            .into_record()
        })
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
        inner.cache.put(stored.clone(), epoch);
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
