//! SQLite: one embedded file, no server. Feature `sqlite` (SQLite is compiled in). Its
//! schema is in `store/migrations/sqlite`.
//!
//! Driver: `rusqlite`, synchronous, with cached prepared statements, on two connections:
//! one that reads and one that writes. A primary-key lookup costs about 2 µs in place,
//! against about 85 µs through an async driver's worker-thread hop; a lookup this short is
//! cheaper to run in place than to hand to another thread, and in WAL mode no writer makes
//! a reader wait. Writes (a few per token per day) may wait for the disk or, up to five
//! seconds, for another process's write lock: they run on Tokio's blocking pool (the
//! feature brings Tokio's runtime), so that such a wait never stalls the requests of an
//! executor thread; outside a Tokio runtime they run in place. The file is in WAL mode
//! with `synchronous = NORMAL`.
//!
//! Over 600 lines because one backend's whole `TokenStore` implementation, with its SQL,
//! reads best in one file.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::audit_sql::{self, Arg, DbAuditRow};
use super::cache::{CacheConfig, PendingUses, TokenCache};
use super::codec::{
    ACCOUNT_COLUMNS, AccountRow, SELECT_ACCOUNT, SELECT_ACCOUNT_TOKENS, SELECT_EXPIRING,
    SELECT_TOKEN, SELECT_UNUSED, TOKEN_COLUMNS, TokenRow, id_to_db, key_from_db, time_to_db,
};
use super::migrations::SQLITE as MIGRATIONS;
use super::{
    AuditFilter, AuditRow, AuditStore, BackendError, KeyFingerprint, StoreError, StoredAuditRow,
    TokenStore,
};
use crate::account::AccountId;
use crate::record::{AccountRecord, StoredToken, TokenRecord};
use crate::secret::password::off_executor;
use crate::token::TokenId;

mod trust;

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(BackendError::new(e))
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

/// Whether `sql` (a `SELECT 1 … WHERE id = ?1`) finds `key`.
fn exists(conn: &Connection, sql: &str, key: &dyn rusqlite::ToSql) -> Result<bool, StoreError> {
    conn.query_row(sql, [key], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
        .map_err(backend)
}

/// The outcome of a compare-and-swap update that changed `changed` rows: done, or — when
/// nothing changed — a conflict if the record exists and not-found if it does not.
fn swapped(
    changed: usize,
    exists: impl FnOnce() -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    match changed {
        1 => Ok(()),
        _ if exists()? => Err(StoreError::Conflict),
        _ => Err(StoreError::NotFound),
    }
}

/// A token row read by [`SELECT_TOKEN`] and the like, its columns in [`TOKEN_COLUMNS`]'s
/// order.
fn token_row(row: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: row.get(0)?,
        account: row.get(1)?,
        kind: row.get(2)?,
        description: row.get(3)?,
        scope: row.get(4)?,
        secret_hash: row.get(5)?,
        created_at: row.get(6)?,
        expires_at: row.get(7)?,
        revoked_at: row.get(8)?,
        parent: row.get(9)?,
        retired: row.get(10)?,
        last_used_at: row.get(11)?,
        revision: row.get(12)?,
        parent_secret_set_at: row.get(13)?,
        suspended_at: row.get(14)?,
    })
}

/// An account row read by [`SELECT_ACCOUNT`], its columns in [`ACCOUNT_COLUMNS`]'s order.
fn account_row(row: &Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        id: row.get(0)?,
        password: row.get(1)?,
        primary_token: row.get(2)?,
        created_at: row.get(3)?,
        revision: row.get(4)?,
        disabled_at: row.get(5)?,
        deleted_at: row.get(6)?,
    })
}

struct Inner {
    /// Reads, in place.
    reader: Arc<Mutex<Connection>>,
    /// Writes, off the executor (the same connection as `reader` for an in-memory
    /// database, which a second connection would not see).
    writer: Arc<Mutex<Connection>>,
    cache: TokenCache,
    uses: PendingUses,
}

fn lock(conn: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )
    .map_err(backend)?;
    Ok(conn)
}

/// Accounts and tokens in one SQLite file.
///
/// ```
/// use feedkey::store::SqliteStore;
/// use feedkey::{Feedkey, TokenKey};
///
/// let dir = std::env::temp_dir().join(format!("feedkey-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let store = SqliteStore::open(dir.join("tokens.db"))?; // creates and migrates
/// let keys = Feedkey::builder(store, TokenKey::generate(1)?).build()?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Last-used times are buffered and written by a background thread every
/// [`CacheConfig::last_used_interval`] (10 s by default); a process that dies loses at most
/// that much last-used history. Call [`SqliteStore::flush`] at shutdown.
///
/// Reads run in place on their own connection (about 2 µs; in WAL mode no write makes
/// them wait). Writes run on another connection, on Tokio's blocking pool when called
/// inside a Tokio runtime, so that a write waiting for the disk or for another process's
/// write lock (up to five seconds) never holds up the executor thread; outside a Tokio
/// runtime they run in place, as before.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if need be) the database file at `path` and migrates it.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the file cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, CacheConfig::default())
    }

    /// As [`SqliteStore::open`], with cache and last-used settings.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the file cannot be opened or migrated.
    pub fn open_with(path: impl AsRef<Path>, cache: CacheConfig) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let mut writer = connect(path)?;
        migrate(&mut writer)?;
        let writer = Arc::new(Mutex::new(writer));
        // A second connection to an in-memory database would open another database.
        let in_memory = path.as_os_str().is_empty() || path.as_os_str() == ":memory:";
        let reader = if in_memory {
            Arc::clone(&writer)
        } else {
            // Opened once the schema is there; the file is in WAL mode already.
            Arc::new(Mutex::new(connect(path)?))
        };
        let store = Self {
            inner: Arc::new(Inner {
                reader,
                writer,
                cache: TokenCache::new(&cache),
                uses: PendingUses::default(),
            }),
        };
        store.start_flusher(cache.last_used_interval());
        Ok(store)
    }

    /// Applies the migrations this database lacks, in one transaction that holds the
    /// file's write lock, so several processes may run it at once. Idempotent.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when a statement fails; nothing is half-applied.
    pub fn migrate(&self) -> Result<(), StoreError> {
        migrate(&mut lock(&self.inner.writer))
    }

    /// Writes the buffered last-used times now.
    ///
    /// # Errors
    /// [`StoreError::Backend`]; the times stay buffered for the next try.
    pub fn flush(&self) -> Result<(), StoreError> {
        flush(&self.inner)
    }

    fn start_flusher(&self, every: Duration) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("feedkey-sqlite-last-used".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    let Some(inner) = weak.upgrade() else { break };
                    let _ = flush(&inner);
                }
            });
        // Without the thread, times are still written by `flush` and before every query
        // that reads them.
        drop(spawned);
    }

    /// The version of the schema the database is at (the last migration applied), and
    /// the latest this build knows, for an operator's check.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the database cannot be read.
    pub fn schema_version(&self) -> Result<(i64, i64), StoreError> {
        let current: i64 = self
            .conn()
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM feedkey_schema",
                [],
                |r| r.get(0),
            )
            .map_err(backend)?;
        Ok((current, MIGRATIONS.last().map_or(0, |m| m.version)))
    }

    /// The reading connection, used in place.
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        lock(&self.inner.reader)
    }

    /// Runs `work` on the writing connection, off the executor. It is handed the record
    /// cache too, to invalidate what it wrote there and then: a caller that gives up
    /// waiting (a dropped future) cannot leave a written record cached.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &TokenCache) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        off_executor(move || work(&mut lock(&inner.writer), &inner.cache))
            .await
            .unwrap_or_else(|| {
                Err(StoreError::Backend(BackendError::new(
                    std::io::Error::other("the runtime shut down before the write ran"),
                )))
            })
    }

    fn load_token(&self, id: &TokenId) -> Result<Option<StoredToken>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(SELECT_TOKEN).map_err(backend)?;
        let row = stmt
            .query_row(params![id_to_db(id)], token_row)
            .optional()
            .map_err(backend)?;
        row.map(TokenRow::into_stored).transpose()
    }

    fn load_many(
        &self,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<StoredToken>, StoreError> {
        let rows: Vec<TokenRow> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
            stmt.query_map(args, token_row)
                .map_err(backend)?
                .collect::<rusqlite::Result<_>>()
                .map_err(backend)?
        };
        rows.into_iter()
            .map(|row| {
                let mut stored = row.into_stored()?;
                self.inner.uses.merge(&mut stored);
                Ok(stored)
            })
            .collect()
    }
}

/// Applies the migrations `conn`'s database lacks (see [`SqliteStore::migrate`]).
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS feedkey_schema (
            version INTEGER PRIMARY KEY NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )
    .map_err(backend)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM feedkey_schema",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sql).map_err(backend)?;
        tx.execute(
            "INSERT INTO feedkey_schema (version, applied_at) VALUES (?1, ?2)",
            params![m.version, time_to_db(OffsetDateTime::now_utc())?],
        )
        .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

fn flush(inner: &Inner) -> Result<(), StoreError> {
    let uses = inner.uses.take();
    if uses.is_empty() {
        return Ok(());
    }
    let result = (|| {
        let mut conn = lock(&inner.writer);
        let tx = conn.transaction().map_err(backend)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE feedkey_tokens SET last_used_at = ?2 \
                     WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
                )
                .map_err(backend)?;
            for (id, at) in &uses {
                stmt.execute(params![id_to_db(id), time_to_db(*at)?])
                    .map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)
    })();
    if result.is_err() {
        inner.uses.restore(uses);
    }
    result
}

fn insert_token_row(tx: &rusqlite::Transaction<'_>, row: &TokenRow) -> Result<(), StoreError> {
    tx.prepare_cached(&format!(
        "INSERT INTO feedkey_tokens ({TOKEN_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))
    .map_err(backend)?
    .execute(params![
        row.id,
        row.account,
        row.kind,
        row.description,
        row.scope,
        row.secret_hash,
        row.created_at,
        row.expires_at,
        row.revoked_at,
        row.parent,
        row.retired,
        row.last_used_at,
        row.revision,
        row.parent_secret_set_at,
        row.suspended_at
    ])
    .map(drop)
    .map_err(|e| {
        if is_constraint(&e) {
            StoreError::Duplicate
        } else {
            backend(e)
        }
    })
}

/// The audit trail in `feedkey_audit`: a batch is one transaction of multi-row inserts
/// on the writing connection, off the executor; a read runs in place on the reading one.
impl AuditStore for SqliteStore {
    async fn append_audit(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let rows = rows
            .iter()
            .map(DbAuditRow::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.write(move |conn, _| {
            let tx = conn.transaction().map_err(backend)?;
            for chunk in rows.chunks(audit_sql::ROWS_PER_INSERT) {
                let values = chunk.iter().flat_map(|r| {
                    [
                        &r.at as &dyn rusqlite::ToSql,
                        &r.kind,
                        &r.account,
                        &r.token,
                        &r.client_addr,
                        &r.detail,
                    ]
                });
                tx.prepare_cached(&audit_sql::insert(chunk.len()))
                    .map_err(backend)?
                    .execute(rusqlite::params_from_iter(values))
                    .map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn audit_rows(&self, filter: &AuditFilter) -> Result<Vec<StoredAuditRow>, StoreError> {
        let (sql, args) = audit_sql::select(filter)?;
        let rows: Vec<DbAuditRow> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let args: Vec<&dyn rusqlite::ToSql> = args
                .iter()
                .map(|arg| match arg {
                    Arg::Int(v) => v as &dyn rusqlite::ToSql,
                    Arg::Text(v) => v,
                    Arg::Bytes(v) => v,
                })
                .collect();
            stmt.query_map(args.as_slice(), |r| {
                Ok(DbAuditRow {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    kind: r.get(2)?,
                    account: r.get(3)?,
                    token: r.get(4)?,
                    client_addr: r.get(5)?,
                    detail: r.get(6)?,
                })
            })
            .map_err(backend)?
            .collect::<rusqlite::Result<_>>()
            .map_err(backend)?
        };
        rows.into_iter().map(DbAuditRow::into_stored).collect()
    }

    async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = time_to_db(before)?;
        let deleted = self
            .write(move |conn, _| {
                conn.execute(audit_sql::PURGE, params![before])
                    .map_err(backend)
            })
            .await?;
        Ok(deleted as u64)
    }
}

impl TokenStore for SqliteStore {
    async fn insert_account(
        &self,
        account: AccountRecord,
        primary: TokenRecord,
    ) -> Result<(), StoreError> {
        let a = AccountRow::from_record(&account)?;
        let t = TokenRow::from_record(&primary, None)?;
        self.write(move |conn, _| {
            let tx = conn.transaction().map_err(backend)?;
            tx.execute(
                &format!(
                    "INSERT INTO feedkey_accounts ({ACCOUNT_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    a.id,
                    a.password,
                    a.primary_token,
                    a.created_at,
                    a.revision,
                    a.disabled_at,
                    a.deleted_at
                ],
            )
            .map_err(|e| {
                if is_constraint(&e) {
                    StoreError::Duplicate
                } else {
                    backend(e)
                }
            })?;
            insert_token_row(&tx, &t)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        let row = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(SELECT_ACCOUNT).map_err(backend)?;
            stmt.query_row(params![id.as_str()], account_row)
                .optional()
                .map_err(backend)?
        };
        row.map(AccountRow::into_record).transpose()
    }

    async fn update_account(
        &self,
        account: AccountRecord,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        let a = AccountRow::from_record(&account)?;
        let expected = super::codec::revision_to_db(expected_revision)?;
        self.write(move |conn, _| {
            let changed = conn
                .execute(
                    "UPDATE feedkey_accounts SET password = ?2, primary_token = ?3, revision = ?4, \
                     disabled_at = ?6, deleted_at = ?7 WHERE id = ?1 AND revision = ?5",
                    params![
                        a.id,
                        a.password,
                        a.primary_token,
                        a.revision,
                        expected,
                        a.disabled_at,
                        a.deleted_at
                    ],
                )
                .map_err(backend)?;
            swapped(changed, || {
                exists(conn, "SELECT 1 FROM feedkey_accounts WHERE id = ?1", &a.id)
            })
        })
        .await
    }

    async fn insert_token(&self, record: TokenRecord) -> Result<(), StoreError> {
        let t = TokenRow::from_record(&record, None)?;
        self.write(move |conn, _| {
            let tx = conn.transaction().map_err(backend)?;
            if !exists(
                &tx,
                "SELECT 1 FROM feedkey_accounts WHERE id = ?1",
                &t.account,
            )? {
                return Err(StoreError::NotFound);
            }
            insert_token_row(&tx, &t)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn token(&self, id: &TokenId) -> Result<Option<StoredToken>, StoreError> {
        if let Some(mut cached) = self.inner.cache.get(id) {
            self.inner.uses.merge(&mut cached);
            return Ok(Some(cached));
        }
        let epoch = self.inner.cache.epoch();
        let Some(mut stored) = self.load_token(id)? else {
            return Ok(None);
        };
        self.inner.uses.merge(&mut stored);
        let stored = self.inner.cache.put(stored, epoch);
        Ok(Some(stored))
    }

    async fn account_tokens(&self, account: &AccountId) -> Result<Vec<StoredToken>, StoreError> {
        self.load_many(SELECT_ACCOUNT_TOKENS, &[&account.as_str()])
    }

    async fn update_token(
        &self,
        record: TokenRecord,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        let t = TokenRow::from_record(&record, None)?;
        let expected = super::codec::revision_to_db(expected_revision)?;
        let id = record.id;
        self.write(move |conn, cache| {
            let result = (|| {
                let changed = conn
                    .prepare_cached(
                        "UPDATE feedkey_tokens SET kind = ?3, description = ?4, scope = ?5, \
                     secret_hash = ?6, expires_at = ?7, revoked_at = ?8, parent = ?9, \
                     retired = ?10, revision = ?11, suspended_at = ?13 \
                     WHERE id = ?1 AND account = ?2 AND revision = ?12",
                    )
                    .map_err(backend)?
                    .execute(params![
                        t.id,
                        t.account,
                        t.kind,
                        t.description,
                        t.scope,
                        t.secret_hash,
                        t.expires_at,
                        t.revoked_at,
                        t.parent,
                        t.retired,
                        t.revision,
                        expected,
                        t.suspended_at
                    ])
                    .map_err(backend)?;
                swapped(changed, || {
                    exists(conn, "SELECT 1 FROM feedkey_tokens WHERE id = ?1", &t.id)
                })
            })();
            cache.invalidate(&id);
            result
        })
        .await
    }

    async fn touch_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.inner.uses.record(*id, at);
        self.inner.cache.touch(id, at);
        Ok(())
    }

    async fn tokens_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<StoredToken>, StoreError> {
        self.load_many(SELECT_EXPIRING, &[&time_to_db(from)?, &time_to_db(until)?])
    }

    async fn tokens_unused_since(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<StoredToken>, StoreError> {
        // Buffered uses count: write them first.
        let inner = Arc::clone(&self.inner);
        off_executor(move || flush(&inner))
            .await
            .unwrap_or(Ok(()))?;
        self.load_many(SELECT_UNUSED, &[&time_to_db(before)?])
    }

    async fn purge_revoked(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = time_to_db(before)?;
        let deleted = self
            .write(move |conn, cache| {
                let deleted = conn.execute(
                    "DELETE FROM feedkey_tokens WHERE revoked_at IS NOT NULL AND revoked_at < ?1",
                    params![before],
                );
                cache.clear();
                deleted.map_err(backend)
            })
            .await?;
        Ok(deleted as u64)
    }

    async fn key_fingerprints(&self) -> Result<Vec<(u32, KeyFingerprint)>, StoreError> {
        let rows: Vec<(i64, String)> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached("SELECT version, fingerprint FROM feedkey_keys ORDER BY version")
                .map_err(backend)?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?
                .collect::<rusqlite::Result<_>>()
                .map_err(backend)?
        };
        rows.iter().map(|(v, f)| key_from_db(*v, f)).collect()
    }

    async fn remember_key(
        &self,
        version: u32,
        fingerprint: KeyFingerprint,
    ) -> Result<KeyFingerprint, StoreError> {
        let fingerprint = fingerprint.to_string();
        let now = time_to_db(OffsetDateTime::now_utc())?;
        // A remembered row never changes: whoever inserted first, the read after the
        // insert finds the winner.
        let stored: String = self
            .write(move |conn, _| {
                conn.execute(
                    "INSERT INTO feedkey_keys (version, fingerprint, remembered_at) \
                     VALUES (?1, ?2, ?3) ON CONFLICT (version) DO NOTHING",
                    params![i64::from(version), fingerprint, now],
                )
                .map_err(backend)?;
                conn.query_row(
                    "SELECT fingerprint FROM feedkey_keys WHERE version = ?1",
                    params![i64::from(version)],
                    |r| r.get(0),
                )
                .map_err(backend)
            })
            .await?;
        Ok(key_from_db(i64::from(version), &stored)?.1)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        off_executor(move || flush(&inner))
            .await
            .unwrap_or_else(|| {
                Err(StoreError::Backend(BackendError::new(
                    std::io::Error::other("the runtime shut down before the flush ran"),
                )))
            })
    }

    async fn accounts(
        &self,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        let rows = {
            let conn = self.conn();
            let limit = i64::from(limit);
            let rows = match after {
                None => conn
                    .prepare_cached(super::codec::SELECT_ACCOUNTS_FIRST)
                    .and_then(|mut stmt| {
                        stmt.query_map(params![limit], account_row)?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    }),
                Some(after) => conn
                    .prepare_cached(super::codec::SELECT_ACCOUNTS_AFTER)
                    .and_then(|mut stmt| {
                        stmt.query_map(params![after.as_str(), limit], account_row)?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    }),
            };
            rows.map_err(backend)?
        };
        rows.into_iter().map(AccountRow::into_record).collect()
    }
}
