//! The database server's clock, for an operator's check that it agrees with the host's,
//! and the schema version the database is at.
//! Expiry is judged by the host's clock, never by the database's; a server whose clock
//! disagrees with the database host's is worth a warning all the same (the audit trail,
//! a backup's time and the database's own logs are read side by side).

use super::*;

impl SqlStore {
    /// The database server's clock now, to the microsecond.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the database does not answer.
    pub async fn database_time(&self) -> Result<OffsetDateTime, StoreError> {
        let inner = &self.inner;
        let sql = match inner.dialect {
            SqlDialect::Postgres => {
                "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"
            }
            SqlDialect::Mysql => "SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)",
        };
        let micros: i64 = inner
            .bounded(async {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&inner.pool)
                    .await
                    .map_err(backend)
            })
            .await?;
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).map_err(|e| {
            StoreError::Corrupt {
                what: "the database's clock".to_owned(),
                detail: e.to_string(),
            }
        })
    }

    /// The version of the schema the database is at (the last migration applied), and
    /// the latest this build knows, for an operator's check: a database at a later
    /// version was migrated by a newer build.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the database does not answer.
    pub async fn schema_version(&self) -> Result<(i64, i64), StoreError> {
        let inner = &self.inner;
        let current: i64 = inner
            .bounded(async {
                sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(version), 0) FROM feedkey_schema")
                    .fetch_one(&inner.pool)
                    .await
                    .map_err(backend)
            })
            .await?;
        let migrations = match inner.dialect {
            SqlDialect::Postgres => crate::store::migrations::POSTGRES,
            SqlDialect::Mysql => crate::store::migrations::MYSQL,
        };
        let latest = migrations.last().map_or(0, |m| m.version);
        Ok((current, latest))
    }
}
