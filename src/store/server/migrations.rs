//! The schema and its migrations, per dialect, and the one way they are applied: under a
//! database lock, each version once, safe from several servers at once.

use super::*;

/// PostgreSQL compares text byte for byte (its deterministic collations break every tie
/// by the bytes; `TEXT` never pads).
pub(super) const POSTGRES_MIGRATIONS: &[(i64, &[&str])] = &[
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
pub(super) const MYSQL_MIGRATIONS: &[(i64, &[&str])] = &[
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
pub(super) const MYSQL_FOREIGN_KEYS_DROPPED: &[(i64, &str, &str)] =
    &[(3, "feedkey_tokens", "feedkey_tokens_account_fk")];

/// MySQL: the `NO PAD` binary collations of `utf8mb4`, by preference: MariaDB (10.2 and
/// later) names it `utf8mb4_nopad_bin`, MySQL 8 `utf8mb4_0900_bin`.
pub(super) const NOPAD_BIN_COLLATIONS: &[&str] = &["utf8mb4_nopad_bin", "utf8mb4_0900_bin"];

/// MySQL's "duplicate column name" (error 1060), from an `ADD COLUMN` run twice.
pub(super) fn is_duplicate_column(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("42S21"))
}

impl SqlStore {
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
}

/// Another server held the migration lock for longer than a migration should take.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("another server held the migration lock for 60 s; nothing was migrated")]
pub(super) struct MigrationLocked;

/// No `NO PAD` binary collation on this MySQL or MariaDB server.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "this server has no NO PAD binary collation for utf8mb4 (utf8mb4_nopad_bin, \
     utf8mb4_0900_bin): MariaDB 10.2 or MySQL 8.0 is needed"
)]
pub(super) struct NoNopadCollation;

/// MySQL: the first of [`NOPAD_BIN_COLLATIONS`] this server has that tells `"a"` from
/// `"a "` and from `"A"` (checked, not assumed from the name).
pub(super) async fn nopad_bin(
    conn: &mut PoolConnection<sqlx::Any>,
) -> Result<&'static str, StoreError> {
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
pub(super) async fn drop_foreign_key(
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
