//! [`SqlStore`]'s trusted-publishing state: `feedkey_trust_policies` and
//! `feedkey_oidc_used` (migration `0006_trust.sql`, MySQL `0008_trust.sql`). A used
//! token id is one `INSERT` into a primary key: of two servers recording one id, the
//! database lets one in.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use time::OffsetDateTime;

use super::{SqlStore, backend, is_duplicate, render};
use crate::account::AccountId;
use crate::store::codec::{id_to_db, time_to_db};
use crate::store::trust_sql::{self, DbTrustRow, expected_to_db};
use crate::store::{StoreError, TrustPolicyRow, TrustStore};
use crate::token::TokenId;

fn trust_row(row: &AnyRow) -> Result<TrustPolicyRow, StoreError> {
    DbTrustRow {
        id: row.try_get(0).map_err(backend)?,
        account: row.try_get(1).map_err(backend)?,
        issuer: row.try_get(2).map_err(backend)?,
        subject: row.try_get(3).map_err(backend)?,
        rule: row.try_get(4).map_err(backend)?,
        lifetime_secs: row.try_get(5).map_err(backend)?,
        created_at: row.try_get(6).map_err(backend)?,
        revision: row.try_get(7).map_err(backend)?,
    }
    .into_row()
}

impl SqlStore {
    /// The rows `sql` selects with `args` (text), each read back.
    async fn trust_rows(
        &self,
        sql: &str,
        args: Vec<Vec<u8>>,
        texts: Vec<String>,
    ) -> Result<Vec<TrustPolicyRow>, StoreError> {
        let inner = &self.inner;
        let sql = render(inner.dialect, sql);
        let rows = inner
            .bounded(async {
                // Constants only; every value is bound.
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for bytes in args {
                    query = query.bind(bytes);
                }
                for text in texts {
                    query = query.bind(text);
                }
                query.fetch_all(&inner.pool).await.map_err(backend)
            })
            .await?;
        rows.iter().map(trust_row).collect()
    }
}

/// Policies and used token ids in the shared database.
impl TrustStore for SqlStore {
    async fn insert_trust_policy(&self, row: TrustPolicyRow) -> Result<(), StoreError> {
        let r = DbTrustRow::from_row(&row)?;
        let inner = &self.inner;
        inner
            .bounded(async {
                sqlx::query(AssertSqlSafe(render(inner.dialect, trust_sql::INSERT)))
                    .bind(r.id)
                    .bind(r.account)
                    .bind(r.issuer)
                    .bind(r.subject)
                    .bind(r.rule)
                    .bind(r.lifetime_secs)
                    .bind(r.created_at)
                    .bind(r.revision)
                    .execute(&inner.pool)
                    .await
                    .map_err(|e| {
                        if is_duplicate(&e) {
                            StoreError::Duplicate
                        } else {
                            backend(e)
                        }
                    })
            })
            .await
            .map(|_| ())
    }

    async fn trust_policy(&self, id: &TokenId) -> Result<Option<TrustPolicyRow>, StoreError> {
        let rows = self
            .trust_rows(&trust_sql::select_by_id(), vec![id_to_db(id)], vec![])
            .await?;
        Ok(rows.into_iter().find(|r| r.id == *id))
    }

    async fn account_trust_policies(
        &self,
        account: &AccountId,
    ) -> Result<Vec<TrustPolicyRow>, StoreError> {
        let rows = self
            .trust_rows(
                &trust_sql::select_by_account(),
                vec![],
                vec![account.as_str().to_owned()],
            )
            .await?;
        Ok(rows.into_iter().filter(|r| r.account == *account).collect())
    }

    async fn trust_policies_for(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Vec<TrustPolicyRow>, StoreError> {
        let rows = self
            .trust_rows(
                &trust_sql::select_by_subject(),
                vec![],
                vec![issuer.to_owned(), subject.to_owned()],
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.issuer == issuer && r.subject == subject)
            .collect())
    }

    async fn update_trust_policy(
        &self,
        row: TrustPolicyRow,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        let r = DbTrustRow::from_row(&row)?;
        let expected = expected_to_db(expected_revision)?;
        let inner = &self.inner;
        let changed = inner
            .bounded(async {
                sqlx::query(AssertSqlSafe(render(inner.dialect, trust_sql::UPDATE)))
                    .bind(r.rule)
                    .bind(r.lifetime_secs)
                    .bind(r.revision)
                    .bind(r.id)
                    .bind(expected)
                    .execute(&inner.pool)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(backend)
            })
            .await?;
        if changed == 1 {
            return Ok(());
        }
        match self.trust_policy(&row.id).await? {
            Some(_) => Err(StoreError::Conflict),
            None => Err(StoreError::NotFound),
        }
    }

    async fn delete_trust_policy(&self, id: &TokenId) -> Result<(), StoreError> {
        let inner = &self.inner;
        let deleted = inner
            .bounded(async {
                sqlx::query(AssertSqlSafe(render(inner.dialect, trust_sql::DELETE)))
                    .bind(id_to_db(id))
                    .execute(&inner.pool)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(backend)
            })
            .await?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn use_token_id(
        &self,
        digest: [u8; 32],
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let expires_at = time_to_db(expires_at)?;
        let inner = &self.inner;
        inner
            .bounded(async {
                match sqlx::query(AssertSqlSafe(render(inner.dialect, trust_sql::USE_ID)))
                    .bind(digest.to_vec())
                    .bind(expires_at)
                    .execute(&inner.pool)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(e) if is_duplicate(&e) => Ok(false),
                    Err(e) => Err(backend(e)),
                }
            })
            .await
    }

    async fn purge_token_ids(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = time_to_db(before)?;
        let inner = &self.inner;
        inner
            .within(Self::SWEEP_TIME_LIMIT, async {
                sqlx::query(AssertSqlSafe(render(inner.dialect, trust_sql::PURGE)))
                    .bind(before)
                    .execute(&inner.pool)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(backend)
            })
            .await
    }
}
