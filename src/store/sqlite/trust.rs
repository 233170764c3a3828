//! [`SqliteStore`]'s trusted-publishing state: `feedkey_trust_policies` and
//! `feedkey_oidc_used` (migration `0006_trust.sql`). Writes go through the one writing
//! connection, so a used token id is inserted once; a second process on the same file
//! meets the primary key.

use rusqlite::{Connection, Row, params};
use time::OffsetDateTime;

use super::{SqliteStore, backend, is_constraint};
use crate::account::AccountId;
use crate::store::codec::{id_to_db, time_to_db};
use crate::store::trust_sql::{self, DbTrustRow, expected_to_db};
use crate::store::{StoreError, TrustPolicyRow, TrustStore};
use crate::token::TokenId;

fn trust_row(row: &Row<'_>) -> rusqlite::Result<DbTrustRow> {
    Ok(DbTrustRow {
        id: row.get(0)?,
        account: row.get(1)?,
        issuer: row.get(2)?,
        subject: row.get(3)?,
        rule: row.get(4)?,
        lifetime_secs: row.get(5)?,
        created_at: row.get(6)?,
        revision: row.get(7)?,
    })
}

fn select(
    conn: &Connection,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<TrustPolicyRow>, StoreError> {
    let rows: Vec<DbTrustRow> = conn
        .prepare_cached(sql)
        .map_err(backend)?
        .query_map(args, trust_row)
        .map_err(backend)?
        .collect::<rusqlite::Result<_>>()
        .map_err(backend)?;
    rows.into_iter().map(DbTrustRow::into_row).collect()
}

/// Policies and used token ids in the file.
impl TrustStore for SqliteStore {
    async fn insert_trust_policy(&self, row: TrustPolicyRow) -> Result<(), StoreError> {
        let r = DbTrustRow::from_row(&row)?;
        self.write(move |conn, _| {
            conn.execute(
                trust_sql::INSERT,
                params![
                    r.id,
                    r.account,
                    r.issuer,
                    r.subject,
                    r.rule,
                    r.lifetime_secs,
                    r.created_at,
                    r.revision
                ],
            )
            .map(|_| ())
            .map_err(|e| {
                if is_constraint(&e) {
                    StoreError::Duplicate
                } else {
                    backend(e)
                }
            })
        })
        .await
    }

    async fn trust_policy(&self, id: &TokenId) -> Result<Option<TrustPolicyRow>, StoreError> {
        let rows = select(&self.conn(), &trust_sql::select_by_id(), &[&id_to_db(id)])?;
        Ok(rows.into_iter().find(|r| r.id == *id))
    }

    async fn account_trust_policies(
        &self,
        account: &AccountId,
    ) -> Result<Vec<TrustPolicyRow>, StoreError> {
        let rows = select(
            &self.conn(),
            &trust_sql::select_by_account(),
            &[&account.as_str()],
        )?;
        Ok(rows.into_iter().filter(|r| r.account == *account).collect())
    }

    async fn trust_policies_for(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Vec<TrustPolicyRow>, StoreError> {
        select(
            &self.conn(),
            &trust_sql::select_by_subject(),
            &[&issuer, &subject],
        )
    }

    async fn update_trust_policy(
        &self,
        row: TrustPolicyRow,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        let r = DbTrustRow::from_row(&row)?;
        let expected = expected_to_db(expected_revision)?;
        self.write(move |conn, _| {
            let changed = conn
                .execute(
                    trust_sql::UPDATE,
                    params![r.rule, r.lifetime_secs, r.revision, r.id, expected],
                )
                .map_err(backend)?;
            if changed == 1 {
                return Ok(());
            }
            let found = select(conn, &trust_sql::select_by_id(), &[&r.id])?;
            if found.is_empty() {
                Err(StoreError::NotFound)
            } else {
                Err(StoreError::Conflict)
            }
        })
        .await
    }

    async fn delete_trust_policy(&self, id: &TokenId) -> Result<(), StoreError> {
        let id = id_to_db(id);
        let deleted = self
            .write(move |conn, _| {
                conn.execute(trust_sql::DELETE, params![id])
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
        self.write(move |conn, _| {
            match conn.execute(trust_sql::USE_ID, params![digest.to_vec(), expires_at]) {
                Ok(_) => Ok(true),
                Err(e) if is_constraint(&e) => Ok(false),
                Err(e) => Err(backend(e)),
            }
        })
        .await
    }

    async fn purge_token_ids(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = time_to_db(before)?;
        let deleted = self
            .write(move |conn, _| {
                conn.execute(trust_sql::PURGE, params![before])
                    .map_err(backend)
            })
            .await?;
        Ok(deleted as u64)
    }
}
