//! The database server's clock, for an operator's check that it agrees with the host's.
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
}
