//! The storage seam: what a backend must do, and the in-memory default.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::record::{AccountId, AccountRecord, StoredToken, TokenRecord};
use crate::token::TokenId;

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod cache;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod codec;
mod memory;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod server;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use cache::CacheConfig;
pub use memory::MemoryStore;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub use server::{SqlDialect, SqlStore, UnsupportedUrl};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// A backend's own error, wrapped so that the backend's crate can be upgraded without
/// breaking users. Compares equal only to itself.
#[derive(Clone)]
pub struct BackendError(Arc<dyn std::error::Error + Send + Sync>);

impl BackendError {
    /// Wraps a backend's error.
    pub fn new<E: std::error::Error + Send + Sync + 'static>(error: E) -> Self {
        Self(Arc::new(error))
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl PartialEq for BackendError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for BackendError {}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The account or token id already exists.
    #[error("already exists")]
    Duplicate,
    /// The account or token does not exist.
    #[error("not found")]
    NotFound,
    /// The record changed since it was read; nothing was written.
    #[error("changed concurrently; nothing was written")]
    Conflict,
    /// A stored value is invalid (a hash with an unknown scheme, a glob that no longer
    /// compiles, a truncated value).
    #[error("invalid stored data for {what}: {detail}")]
    Corrupt {
        /// The record: a token id or an account id.
        what: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The backend failed (connection lost, disk full...).
    #[error("backend failure: {0}")]
    Backend(BackendError),
}

/// Where accounts and tokens live.
///
/// Every write is all-or-nothing. `update_*` are compare-and-swap on the record's
/// revision: they write only if the stored revision is `expected_revision`, and fail with
/// [`StoreError::Conflict`] otherwise, so two concurrent refreshes leave exactly one
/// secret valid. A write that has returned is seen by every read that starts after it.
pub trait TokenStore: Send + Sync {
    /// Adds an account and its primary key together.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when the account or the token id exists.
    fn insert_account(
        &self,
        account: AccountRecord,
        primary: TokenRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// An account, if it exists.
    ///
    /// # Errors
    /// A backend failure or corrupt data.
    fn account(
        &self,
        id: &AccountId,
    ) -> impl Future<Output = Result<Option<AccountRecord>, StoreError>> + Send;

    /// Replaces an account whose stored revision is `expected_revision`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`], or a backend failure.
    fn update_account(
        &self,
        account: AccountRecord,
        expected_revision: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds a token to an existing account.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when the id exists, [`StoreError::NotFound`] when the
    /// account does not.
    fn insert_token(
        &self,
        record: TokenRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A token by id, revoked ones included. This is the hot path.
    ///
    /// # Errors
    /// A backend failure or corrupt data.
    fn token(
        &self,
        id: &TokenId,
    ) -> impl Future<Output = Result<Option<StoredToken>, StoreError>> + Send;

    /// Every token of an account, revoked ones included, oldest first.
    ///
    /// # Errors
    /// A backend failure or corrupt data.
    fn account_tokens(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Vec<StoredToken>, StoreError>> + Send;

    /// Replaces a token whose stored revision is `expected_revision`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`], or a backend failure.
    fn update_token(
        &self,
        record: TokenRecord,
        expected_revision: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that a token was used at `at` (later than any time recorded before).
    ///
    /// # Errors
    /// A backend failure. A missing token is not an error.
    fn touch_token(
        &self,
        id: &TokenId,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every token, of every account, not revoked, whose expiry is in `[from, until)`.
    ///
    /// # Errors
    /// A backend failure or corrupt data.
    fn tokens_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoredToken>, StoreError>> + Send;

    /// Every token, of every account, not revoked, last used (or, never used, created)
    /// at or before `before`: the candidates for idle retirement.
    ///
    /// # Errors
    /// A backend failure or corrupt data.
    fn tokens_unused_since(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoredToken>, StoreError>> + Send;

    /// Deletes for good the records of tokens revoked before `before`; returns how many.
    ///
    /// # Errors
    /// A backend failure.
    fn purge_revoked(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A shared store is a store: several [`Feedkey`](crate::Feedkey)s (a rolling key
/// change, a test) can work on one.
impl<T: TokenStore + ?Sized> TokenStore for Arc<T> {
    fn insert_account(
        &self,
        account: AccountRecord,
        primary: TokenRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).insert_account(account, primary)
    }

    fn account(
        &self,
        id: &AccountId,
    ) -> impl Future<Output = Result<Option<AccountRecord>, StoreError>> + Send {
        (**self).account(id)
    }

    fn update_account(
        &self,
        account: AccountRecord,
        expected_revision: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).update_account(account, expected_revision)
    }

    fn insert_token(
        &self,
        record: TokenRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).insert_token(record)
    }

    fn token(
        &self,
        id: &TokenId,
    ) -> impl Future<Output = Result<Option<StoredToken>, StoreError>> + Send {
        (**self).token(id)
    }

    fn account_tokens(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Vec<StoredToken>, StoreError>> + Send {
        (**self).account_tokens(account)
    }

    fn update_token(
        &self,
        record: TokenRecord,
        expected_revision: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).update_token(record, expected_revision)
    }

    fn touch_token(
        &self,
        id: &TokenId,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).touch_token(id, at)
    }

    fn tokens_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoredToken>, StoreError>> + Send {
        (**self).tokens_expiring(from, until)
    }

    fn tokens_unused_since(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoredToken>, StoreError>> + Send {
        (**self).tokens_unused_since(before)
    }

    fn purge_revoked(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).purge_revoked(before)
    }
}
