//! [`MemoryStore`]'s trusted-publishing state, kept beside its tokens.

use time::OffsetDateTime;

use super::MemoryStore;
use crate::account::AccountId;
use crate::store::{StoreError, TrustPolicyRow, TrustStore};
use crate::token::TokenId;

/// Policies and used token ids in memory, for one process.
impl TrustStore for MemoryStore {
    async fn insert_trust_policy(&self, row: TrustPolicyRow) -> Result<(), StoreError> {
        self.trust.insert(row)
    }

    async fn trust_policy(&self, id: &TokenId) -> Result<Option<TrustPolicyRow>, StoreError> {
        Ok(self.trust.get(id))
    }

    async fn account_trust_policies(
        &self,
        account: &AccountId,
    ) -> Result<Vec<TrustPolicyRow>, StoreError> {
        Ok(self.trust.of_account(account))
    }

    async fn trust_policies_for(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Vec<TrustPolicyRow>, StoreError> {
        Ok(self.trust.naming(issuer, subject))
    }

    async fn update_trust_policy(
        &self,
        row: TrustPolicyRow,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        self.trust.update(row, expected_revision)
    }

    async fn delete_trust_policy(&self, id: &TokenId) -> Result<(), StoreError> {
        self.trust.delete(id)
    }

    async fn use_token_id(
        &self,
        digest: [u8; 32],
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Ok(self.trust.use_id(digest, expires_at))
    }

    async fn purge_token_ids(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.trust.purge(before))
    }
}
