//! [`AnyStore`]: one store type over the built-in backends, for a server that picks its
//! backend at run time (from its configuration) without being generic over it.

use time::OffsetDateTime;

use std::sync::Arc;

// `DynTokenStore` is named by path, not imported: its methods share `TokenStore`'s names.
use super::{
    AuditFilter, AuditRow, AuditStore, BackendError, KeyFingerprint, MemoryStore, StoreError,
    StoredAuditRow, TokenStore,
};
use crate::account::AccountId;
use crate::record::{AccountRecord, StoredToken, TokenRecord};
use crate::token::TokenId;

/// Any of the built-in stores, chosen at run time: a `Feedkey<AnyStore>` is one type
/// whichever backend the configuration names. Each call is passed to the store inside
/// (one `match`, no allocation).
///
/// ```
/// use feedkey::store::AnyStore;
/// use feedkey::{Feedkey, MemoryStore, TokenKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let configured = "memory"; // read from the server's configuration
/// let store: AnyStore = match configured {
///     "memory" => MemoryStore::new().into(),
///     other => return Err(format!("no such store: {other}").into()),
/// };
/// let keys: Feedkey<AnyStore> = Feedkey::builder(store, TokenKey::new(1, &[7; 32])).build()?;
/// # drop(keys);
/// # Ok(())
/// # }
/// ```
/// Share one with [`Arc`](std::sync::Arc), which is a store too.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// [`MemoryStore`] (boxed: it is far larger than the handles the others are).
    Memory(Box<MemoryStore>),
    /// [`SqliteStore`](super::SqliteStore).
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(super::SqliteStore),
    /// [`SqlStore`](super::SqlStore): PostgreSQL or MySQL/MariaDB.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
    Sql(super::SqlStore),
    /// Any other store, a third party's included, behind `dyn` (see [`AnyStore::custom`]).
    Custom(Arc<dyn super::DynTokenStore>),
}

impl AnyStore {
    /// Any other [`TokenStore`]: each call then costs one boxed future.
    pub fn custom<S: TokenStore + 'static>(store: S) -> Self {
        Self::Custom(Arc::new(store))
    }
}

impl From<MemoryStore> for AnyStore {
    fn from(store: MemoryStore) -> Self {
        Self::Memory(Box::new(store))
    }
}

#[cfg(feature = "sqlite")]
impl From<super::SqliteStore> for AnyStore {
    fn from(store: super::SqliteStore) -> Self {
        Self::Sqlite(store)
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl From<super::SqlStore> for AnyStore {
    fn from(store: super::SqlStore) -> Self {
        Self::Sql(store)
    }
}

/// `$store.$call` on whichever store `$self` holds.
macro_rules! each {
    ($self:expr, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($store) => $call.await,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($store) => $call.await,
            #[cfg(any(feature = "postgres", feature = "mysql"))]
            AnyStore::Sql($store) => $call.await,
            AnyStore::Custom($store) => {
                let $store: &dyn super::DynTokenStore = &**$store;
                $call.await
            }
        }
    };
}

mod trust;

pub use trust::NoTrustStore;

/// A custom store ([`AnyStore::Custom`]) keeps no audit trail: its calls fail with this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this store (a custom one behind AnyStore) keeps no audit trail")]
pub struct NoAuditTrail;

/// `$store.$call` on whichever built-in store `$self` holds; a custom store keeps no
/// audit trail ([`NoAuditTrail`]).
macro_rules! each_audit {
    ($self:expr, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($store) => $call.await,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($store) => $call.await,
            #[cfg(any(feature = "postgres", feature = "mysql"))]
            AnyStore::Sql($store) => $call.await,
            AnyStore::Custom(_) => Err(StoreError::Backend(BackendError::new(NoAuditTrail))),
        }
    };
}

/// The built-in stores' audit trails (share one `AnyStore` with [`Arc`] to give it to
/// a `StoredAudit` as well as to a `Feedkey`).
impl AuditStore for AnyStore {
    async fn append_audit(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        each_audit!(self, s => s.append_audit(rows))
    }

    async fn audit_rows(&self, filter: &AuditFilter) -> Result<Vec<StoredAuditRow>, StoreError> {
        each_audit!(self, s => s.audit_rows(filter))
    }

    async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        each_audit!(self, s => s.purge_audit(before))
    }
}

impl TokenStore for AnyStore {
    async fn insert_account(
        &self,
        account: AccountRecord,
        primary: TokenRecord,
    ) -> Result<(), StoreError> {
        each!(self, s => s.insert_account(account, primary))
    }

    async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        each!(self, s => s.account(id))
    }

    async fn update_account(
        &self,
        account: AccountRecord,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        each!(self, s => s.update_account(account, expected_revision))
    }

    async fn insert_token(&self, record: TokenRecord) -> Result<(), StoreError> {
        each!(self, s => s.insert_token(record))
    }

    async fn token(&self, id: &TokenId) -> Result<Option<StoredToken>, StoreError> {
        each!(self, s => s.token(id))
    }

    async fn account_tokens(&self, account: &AccountId) -> Result<Vec<StoredToken>, StoreError> {
        each!(self, s => s.account_tokens(account))
    }

    async fn update_token(
        &self,
        record: TokenRecord,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        each!(self, s => s.update_token(record, expected_revision))
    }

    async fn touch_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<(), StoreError> {
        each!(self, s => s.touch_token(id, at))
    }

    async fn tokens_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<StoredToken>, StoreError> {
        each!(self, s => s.tokens_expiring(from, until))
    }

    async fn tokens_unused_since(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<StoredToken>, StoreError> {
        each!(self, s => s.tokens_unused_since(before))
    }

    async fn purge_revoked(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        each!(self, s => s.purge_revoked(before))
    }

    async fn key_fingerprints(&self) -> Result<Vec<(u32, KeyFingerprint)>, StoreError> {
        each!(self, s => s.key_fingerprints())
    }

    async fn remember_key(
        &self,
        version: u32,
        fingerprint: KeyFingerprint,
    ) -> Result<KeyFingerprint, StoreError> {
        each!(self, s => s.remember_key(version, fingerprint))
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Named in full: `SqliteStore` and `SqlStore` have an inherent `flush` too.
        match self {
            AnyStore::Memory(s) => TokenStore::flush(&**s).await,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => TokenStore::flush(s).await,
            #[cfg(any(feature = "postgres", feature = "mysql"))]
            AnyStore::Sql(s) => TokenStore::flush(s).await,
            AnyStore::Custom(s) => TokenStore::flush(&**s).await,
        }
    }

    async fn accounts(
        &self,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        each!(self, s => s.accounts(after, limit))
    }
}
