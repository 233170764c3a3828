//! [`AnyStore`]'s trusted-publishing state: the built-in stores' own; a custom store
//! keeps none ([`NoTrustStore`]).

use time::OffsetDateTime;

use super::AnyStore;
use crate::account::AccountId;
use crate::store::{BackendError, StoreError, TrustPolicyRow, TrustStore};
use crate::token::TokenId;

/// A custom store ([`AnyStore::Custom`]) keeps no trusted-publishing state: its calls
/// fail with this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this store (a custom one behind AnyStore) keeps no trusted-publishing policies")]
pub struct NoTrustStore;

/// `$store.$call` on whichever built-in store `$self` holds.
macro_rules! each_trust {
    ($self:expr, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($store) => $call.await,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($store) => $call.await,
            #[cfg(any(feature = "postgres", feature = "mysql"))]
            AnyStore::Sql($store) => $call.await,
            AnyStore::Custom(_) => Err(StoreError::Backend(BackendError::new(NoTrustStore))),
        }
    };
}

/// The built-in stores' trusted-publishing state.
impl TrustStore for AnyStore {
    async fn insert_trust_policy(&self, row: TrustPolicyRow) -> Result<(), StoreError> {
        each_trust!(self, s => s.insert_trust_policy(row))
    }

    async fn trust_policy(&self, id: &TokenId) -> Result<Option<TrustPolicyRow>, StoreError> {
        each_trust!(self, s => s.trust_policy(id))
    }

    async fn account_trust_policies(
        &self,
        account: &AccountId,
    ) -> Result<Vec<TrustPolicyRow>, StoreError> {
        each_trust!(self, s => s.account_trust_policies(account))
    }

    async fn trust_policies_for(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Vec<TrustPolicyRow>, StoreError> {
        each_trust!(self, s => s.trust_policies_for(issuer, subject))
    }

    async fn update_trust_policy(
        &self,
        row: TrustPolicyRow,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        each_trust!(self, s => s.update_trust_policy(row, expected_revision))
    }

    async fn delete_trust_policy(&self, id: &TokenId) -> Result<(), StoreError> {
        each_trust!(self, s => s.delete_trust_policy(id))
    }

    async fn use_token_id(
        &self,
        digest: [u8; 32],
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        each_trust!(self, s => s.use_token_id(digest, expires_at))
    }

    async fn purge_token_ids(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        each_trust!(self, s => s.purge_token_ids(before))
    }
}
