//! The management API's error, wrapping each concern's own, and the detail types it
//! carries (what an edit tried to widen, why a record field was refused).

pub use crate::account::{MAX_DESCRIPTION_LEN, RecordError};
use crate::decision::Denial;
use crate::policy::lifetime::LifetimeError;
use crate::scope::{NarrowingError, NotCovered, ScopeError};
use crate::secret::HashError;
use crate::secret::PasswordError;
use crate::store::{KeyCheckError, StoreError};

pub use crate::scope::Widening;

/// Why a management call (issue, edit, refresh, revoke...) failed. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The scope is invalid.
    #[error(transparent)]
    Scope(#[from] ScopeError),
    /// The expiry breaks the lifetime policy.
    #[error(transparent)]
    Lifetime(#[from] LifetimeError),
    /// An account id or description is invalid.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The password is invalid, or hashing it failed.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The keys could not be used.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The store failed; [`StoreError::Conflict`] means a concurrent change won.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The account already exists.
    #[error("the account already exists")]
    AccountExists,
    /// No such account.
    #[error("no such account")]
    AccountNotFound,
    /// The account is disabled: enable it first ([`Feedkey::enable_account`]).
    ///
    /// [`Feedkey::enable_account`]: crate::Feedkey::enable_account
    #[error("the account is disabled")]
    AccountDisabled,
    /// The account was deleted; nothing can be done with it.
    #[error("the account was deleted")]
    AccountDeleted,
    /// No such token in this account (or it was revoked).
    #[error("no such token")]
    TokenNotFound,
    /// Edits may narrow permissions and feeds, never widen them.
    #[error("an edit cannot widen a token's {0:?}")]
    Widens(Widening),
    /// The primary key cannot be revoked or have its scope edited; regenerate it instead.
    #[error("the primary key cannot be revoked or narrowed; regenerate it instead")]
    PrimaryKey,
    /// An expired token cannot be refreshed; issue a new one.
    #[error("the token has expired; issue a new one")]
    TokenExpired,
    /// The token went unused for longer than the idle policy allows, so it cannot derive
    /// children; refresh it or issue a new one.
    #[error("the token was retired for idleness")]
    TokenIdle,
    /// A derived token's scope is not provably inside its parent's.
    #[error(transparent)]
    NotCovered(#[from] NotCovered),
    /// A derived token cannot be refreshed or derive children of its own; derive a new
    /// one from its parent.
    #[error("a derived token cannot be refreshed or derive children")]
    DerivedToken,
    /// The overlap asked for is longer than [`RotationPolicy::MAX_OVERLAP`].
    ///
    /// [`RotationPolicy::MAX_OVERLAP`]: crate::RotationPolicy::MAX_OVERLAP
    #[error("an overlap is at most 30 days")]
    OverlapTooLong,
    /// The credential presented to derive a child was refused.
    #[error("{0}")]
    Denied(Box<Denial>),
    /// The operating system's random source failed.
    #[error("the random source failed")]
    Entropy,
    /// The configured token keys are not the ones the store's tokens are hashed under;
    /// nothing is done until the server restarts with the right key
    /// ([`Feedkey::check_keys`](crate::Feedkey::check_keys)).
    #[error(transparent)]
    KeyMismatch(KeyCheckError),
    /// No such trusted-publishing policy in this account (or it was removed).
    #[error("no such trusted-publishing policy")]
    PolicyNotFound,
    /// A trusted-publishing policy's rule, lifetime or environment is invalid.
    #[error("invalid trusted-publishing policy: {0}")]
    InvalidPolicy(&'static str),
    /// A policy edit would widen this part (its packages, its keys' lifetime, its
    /// environment); policies only narrow.
    #[error("an edit cannot widen a trusted-publishing policy's {0}")]
    PolicyWidens(&'static str),
    /// A trusted-publishing exchange was refused: the reason is for the log; tell the
    /// client only [`Refusal::CLIENT_MESSAGE`](crate::oidc::Refusal::CLIENT_MESSAGE).
    #[cfg(feature = "oidc")]
    #[error("trusted publishing refused: {0}")]
    NotAllowed(crate::oidc::Refusal),
}

impl From<NarrowingError> for Error {
    fn from(error: NarrowingError) -> Self {
        match error {
            NarrowingError::Widens(part) => Error::Widens(part),
            NarrowingError::Invalid(error) => Error::Scope(error),
        }
    }
}
