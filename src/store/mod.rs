//! The storage seam: what a backend must do, the records and hashes it keeps, and the
//! backends (in memory, SQLite, PostgreSQL/MySQL).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::account::AccountId;
pub use crate::record::{AccountRecord, StoredToken, TokenRecord};
pub use crate::secret::{
    HashError, KeyFingerprint, MAX_RETIRED_SECRETS, PasswordHash, RetiredSecret, SecretHash,
};
use crate::token::TokenId;

mod any;
mod audit;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod cache;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod codec;
mod dynamic;
mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod migrations;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod server;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;
mod trust;

pub use any::{AnyStore, NoAuditTrail, NoTrustStore};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) use audit::sql as audit_sql;
pub use audit::{AuditFilter, AuditRow, AuditStore, StoredAuditRow};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use cache::CacheConfig;
pub use dynamic::{BoxFuture, DynTokenStore};
pub use memory::MemoryStore;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub use server::{SqlDialect, SqlStore, UnsupportedUrl};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) use trust::sql as trust_sql;
pub use trust::{MAX_TRUST_KEY_LEN, TrustPolicyRow, TrustStore, token_id_digest};

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

/// Why a [`Feedkey`](crate::Feedkey) refuses to work on a store: its token keys are not
/// the ones the store's tokens are hashed under. Every token would answer "wrong secret";
/// the operator must restore the key (or add it to
/// [`previous_keys`](crate::FeedkeyBuilder::previous_keys)), not the clients. See
/// [`Feedkey::check_keys`](crate::Feedkey::check_keys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyCheckError {
    /// The store was used with another key of this version.
    #[error(
        "token key version {version} is not the one this store was used with \
         (fingerprint {configured} configured, {stored} stored): restore the key"
    )]
    Mismatch {
        /// The key version.
        version: u32,
        /// The configured key's fingerprint.
        configured: KeyFingerprint,
        /// The fingerprint the store remembers for this version.
        stored: KeyFingerprint,
    },
    /// The current key is new to the store, and none of the keys the store was used with
    /// is configured, so none of its tokens could be verified. (Rotating is adding the new
    /// key with the old one among the previous keys.)
    #[error(
        "token key version {version} (fingerprint {configured}) is new to this store and \
         none of the keys it was used with is configured (it knows {}): restore the key, \
         or keep it among the previous keys while rotating",
        list(.stored)
    )]
    UnknownKeys {
        /// The current key's version.
        version: u32,
        /// The current key's fingerprint.
        configured: KeyFingerprint,
        /// Every key version the store remembers, with its fingerprint.
        stored: Vec<(u32, KeyFingerprint)>,
    },
    /// The store could not be asked; nothing was decided, and the next call asks again.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `version 1 (fingerprint …), version 2 (…)`.
fn list(keys: &[(u32, KeyFingerprint)]) -> String {
    keys.iter()
        .map(|(version, fingerprint)| format!("version {version} ({fingerprint})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where accounts and tokens live.
///
/// Every write is all-or-nothing. `update_*` are compare-and-swap on the record's
/// revision: they write only if the stored revision is `expected_revision`, and fail with
/// [`StoreError::Conflict`] otherwise, so two concurrent refreshes leave exactly one
/// secret valid. A write that has returned is seen by every read that starts after it.
///
/// Account ids compare byte for byte: `"alice"`, `"alice "`, `"Alice"` and `"é"` written
/// precomposed or decomposed are different accounts (a SQL backend must not use a
/// collation that pads, folds case or normalises).
///
/// A store also remembers the token keys it has been used with
/// ([`TokenStore::key_fingerprints`], [`TokenStore::remember_key`]): each key version's
/// [`KeyFingerprint`], stored at first use and never changed, so that a server started
/// with the wrong key is refused before it answers every token with "wrong secret". Those
/// two methods are provided, remembering nothing, so a store written before them still
/// builds; such a store cannot tell a wrong key. Every store of this crate keeps them
/// (`feedkey_keys` in SQL).
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

    /// Every key version remembered, with its fingerprint, in any order. Provided:
    /// nothing is remembered.
    ///
    /// # Errors
    /// A backend failure or corrupt data.
    fn key_fingerprints(
        &self,
    ) -> impl Future<Output = Result<Vec<(u32, KeyFingerprint)>, StoreError>> + Send {
        std::future::ready(Ok(Vec::new()))
    }

    /// Remembers `fingerprint` for key `version` unless a fingerprint is remembered for
    /// that version already, and returns the one remembered afterwards: `fingerprint`, or
    /// the one that was there. Atomic: of two concurrent calls for one version, one wins
    /// and both return the winner's fingerprint. Provided: remembers nothing, and returns
    /// `fingerprint`.
    ///
    /// # Errors
    /// A backend failure or corrupt data.
    fn remember_key(
        &self,
        version: u32,
        fingerprint: KeyFingerprint,
    ) -> impl Future<Output = Result<KeyFingerprint, StoreError>> + Send {
        let _ = version;
        std::future::ready(Ok(fingerprint))
    }

    /// Writes whatever the store holds back (buffered last-used times), for a server
    /// that is stopping. Provided: nothing is held back.
    ///
    /// # Errors
    /// A backend failure; what was held back stays for the next try.
    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(Ok(()))
    }

    /// A page of accounts, in the order the store sorts account ids (the same order on
    /// every call): at most `limit` of them, those after the id `after` when it is given
    /// (the last id of the page before). A page shorter than `limit` is the last. For an
    /// operator's listing, not for a request's path. Provided: fails with
    /// [`StoreError::Backend`], saying that this store cannot list its accounts (every
    /// store of this crate can).
    ///
    /// # Errors
    /// A backend failure or corrupt data.
    fn accounts(
        &self,
        after: Option<&AccountId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AccountRecord>, StoreError>> + Send {
        let _ = (after, limit);
        std::future::ready(Err(StoreError::Backend(BackendError::new(
            std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this store cannot list its accounts",
            ),
        ))))
    }
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

    fn key_fingerprints(
        &self,
    ) -> impl Future<Output = Result<Vec<(u32, KeyFingerprint)>, StoreError>> + Send {
        (**self).key_fingerprints()
    }

    fn remember_key(
        &self,
        version: u32,
        fingerprint: KeyFingerprint,
    ) -> impl Future<Output = Result<KeyFingerprint, StoreError>> + Send {
        (**self).remember_key(version, fingerprint)
    }

    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        TokenStore::flush(&**self)
    }

    fn accounts(
        &self,
        after: Option<&AccountId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AccountRecord>, StoreError>> + Send {
        (**self).accounts(after, limit)
    }
}
