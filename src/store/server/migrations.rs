//! How the migrations of `store/migrations/{postgres,mysql}` are applied: under a
//! database lock, each version once, safe from several servers at once, with the steps
//! of MySQL's that cannot be plain SQL (a foreign key dropped where it exists, the
//! collation chosen for `{nopad_bin}`).
//!
//! PostgreSQL compares text byte for byte (its deterministic collations break every tie
//! by the bytes; `TEXT` never pads). MySQL compares text case-insensitively unless told
//! otherwise, and `utf8mb4_bin` (of its version 1) still ignores trailing spaces
//! (`PAD SPACE`): `"alice "` found `"alice"`. Its version 3 moves account ids to a
//! `NO PAD` binary collation, so they compare byte for byte; `{nopad_bin}` stands for it
//! (see [`nopad_bin`]). Token ids are bytes.

use super::*;
use crate::store::migrations as schema;

/// MySQL: the foreign keys (table, constraint) dropped, where they exist, before a
/// version's statements run: neither column of a foreign key can change its collation
/// under it, even with `FOREIGN_KEY_CHECKS = 0` on MariaDB. Checked rather than assumed,
/// so that a migration a crash cut short (MySQL's DDL is not transactional) runs again.
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
                schema::POSTGRES,
                "SELECT pg_advisory_lock(7366537369)",
                "SELECT pg_advisory_unlock(7366537369)",
            ),
            SqlDialect::Mysql => (
                schema::MYSQL,
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
            for migration in migrations.iter().filter(|m| m.version > current) {
                let statements = migration
                    .statements()
                    .map_err(|e| StoreError::Backend(BackendError::new(e)))?;
                if inner.dialect == SqlDialect::Mysql {
                    for (_, table, name) in MYSQL_FOREIGN_KEYS_DROPPED
                        .iter()
                        .filter(|(v, _, _)| *v == migration.version)
                    {
                        drop_foreign_key(&mut conn, table, name).await?;
                    }
                }
                for statement in statements {
                    let statement = if statement.contains("{nopad_bin}") {
                        let chosen = match collation {
                            Some(chosen) => chosen,
                            None => *collation.insert(nopad_bin(&mut conn).await?),
                        };
                        statement.replace("{nopad_bin}", chosen)
                    } else {
                        statement.to_owned()
                    };
                    // From a file of `store/migrations`, compiled in; the collation one of
                    // `NOPAD_BIN_COLLATIONS`.
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
                .bind(migration.version)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mysql_files_say_which_steps_rust_takes() {
        for (version, table, name) in MYSQL_FOREIGN_KEYS_DROPPED {
            let file = schema::MYSQL
                .iter()
                .find(|m| m.version == *version)
                .unwrap();
            let comments: String = file
                .sql
                .lines()
                .filter(|line| line.starts_with("--"))
                .collect();
            assert!(
                comments.contains("MYSQL_FOREIGN_KEYS_DROPPED") && comments.contains(name),
                "{}: says nothing of {table}.{name}, which Rust drops first",
                file.file
            );
        }
        for file in schema::MYSQL
            .iter()
            .filter(|m| m.sql.contains("{nopad_bin}"))
        {
            let said = |line: &str| line.starts_with("-- ") && line.contains("{nopad_bin} is");
            assert!(
                file.sql.lines().any(said),
                "{}: says nothing of the {{nopad_bin}} Rust replaces",
                file.file
            );
        }
    }
}
