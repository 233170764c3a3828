//! What is asked (an action on a target) and what is answered (a grant or a denial).

use std::fmt;
use std::sync::Arc;

use crate::account::AccountId;
use crate::record::{TokenKind, TokenRecord};
use crate::request::CredentialError;
use crate::scope::Permission;
use crate::store::{KeyCheckError, StoreError};
use crate::token::{TokenId, TokenParseError};

/// Who a grant was made to.
#[derive(Debug, Clone)]
enum Principal {
    Token(Arc<TokenRecord>),
    Password(AccountId),
}

/// An allow: names the account, and the token where a token was used.
///
/// feedkey decides what a credential may do on the account's behalf. The registry still
/// decides what the account itself may do: that it owns the feed or the package.
#[derive(Debug, Clone)]
pub struct Grant {
    principal: Principal,
    previous_secret: bool,
}

/// How a grant was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrantedBy {
    /// The account's primary key.
    PrimaryKey,
    /// An additional, scoped token.
    Token,
    /// A token derived from another.
    DerivedToken,
    /// The account password (read only).
    Password,
}

impl Grant {
    pub(crate) fn token(record: Arc<TokenRecord>, previous_secret: bool) -> Self {
        Self {
            principal: Principal::Token(record),
            previous_secret,
        }
    }

    pub(crate) fn password(account: AccountId) -> Self {
        Self {
            principal: Principal::Password(account),
            previous_secret: false,
        }
    }

    /// Whether the request used a secret a refresh replaced, inside its overlap window.
    /// A server may tell such a client to pick up the new secret.
    pub fn used_previous_secret(&self) -> bool {
        self.previous_secret
    }

    /// The account acted for.
    pub fn account(&self) -> &AccountId {
        match &self.principal {
            Principal::Token(r) => &r.account,
            Principal::Password(a) => a,
        }
    }

    /// The token used, if a token was used.
    pub fn token_id(&self) -> Option<TokenId> {
        match &self.principal {
            Principal::Token(r) => Some(r.id),
            Principal::Password(_) => None,
        }
    }

    /// How the request was authenticated.
    pub fn granted_by(&self) -> GrantedBy {
        match &self.principal {
            Principal::Token(r) if r.kind == TokenKind::Primary => GrantedBy::PrimaryKey,
            Principal::Token(r) if r.kind == TokenKind::Derived => GrantedBy::DerivedToken,
            Principal::Token(_) => GrantedBy::Token,
            Principal::Password(_) => GrantedBy::Password,
        }
    }
}

/// Why a request was denied: for logs and metrics, never for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DenyReason {
    /// The credential could not be read from the request.
    #[error("unreadable credential: {0}")]
    MalformedCredential(CredentialError),
    /// The token string failed its shape or checksum checks.
    #[error("malformed token: {0}")]
    MalformedToken(TokenParseError),
    /// No token has this id.
    #[error("unknown token")]
    UnknownToken,
    /// The id exists but the secret is wrong.
    #[error("wrong secret")]
    WrongSecret,
    /// The token was revoked.
    #[error("token revoked")]
    Revoked,
    /// The token's expiry has passed.
    #[error("token expired")]
    Expired,
    /// The scope lacks the permission the action needs.
    #[error("action out of scope: needs {0}")]
    ActionOutOfScope(Permission),
    /// The scope does not cover the feed.
    #[error("feed out of scope")]
    FeedOutOfScope,
    /// The scope does not cover the package (or, for a package-limited token, the whole
    /// feed's listing).
    #[error("package out of scope")]
    PackageOutOfScope,
    /// The target names an empty or over-long feed or package id, a package id with a
    /// character other than printable ASCII, or a package id that is a path's parent
    /// step (`..`).
    #[error("malformed target")]
    InvalidTarget,
    /// The action needs a package id and the target has none.
    #[error("action needs a package id")]
    PackageRequired,
    /// Basic auth named an account that does not exist.
    #[error("unknown account")]
    UnknownAccount,
    /// The account password is wrong, or the account has none.
    #[error("wrong password")]
    WrongPassword,
    /// The account password was used for something other than reading or signing in.
    #[error("the account password can only read")]
    PasswordCannotWrite,
    /// A token was used to sign in to the website.
    #[error("tokens cannot sign in")]
    TokenCannotSignIn,
    /// The stored hash names a key this process does not have.
    #[error("stored hash uses an unknown key")]
    UnknownKey,
    /// A secret a refresh replaced was used after its overlap window.
    #[error("retired secret reused")]
    RetiredSecretReused,
    /// The token went unused for longer than the idle policy allows.
    #[error("token retired for idleness")]
    Idle,
    /// The client address is missing or outside the token's networks (or, for a derived
    /// token, its parent's current ones).
    #[error("client address not allowed")]
    AddressNotAllowed,
    /// A derived token's parent is revoked, expired, idle or gone, or was given a new
    /// secret (refreshed, or regenerated) after the child was derived.
    #[error("parent token no longer valid")]
    ParentInvalid,
    /// A derived token's parent no longer covers the request (it was narrowed).
    #[error("parent token does not cover the request")]
    ParentOutOfScope,
    /// Every password-verify slot was taken and the configuration says not to wait.
    #[error("too many password checks at once")]
    Busy,
    /// The store failed; nothing was decided.
    #[error("store unavailable: {0}")]
    Store(StoreError),
    /// The configured token keys are not the ones the store's tokens are hashed under (a
    /// lost key file, another server's key): nothing is decided until the operator
    /// restarts the server with the right key. 503, as for a store failure: the client
    /// did nothing wrong ([`Feedkey::check_keys`](crate::Feedkey::check_keys)).
    #[error("token keys refused by the store: {0}")]
    KeyMismatch(KeyCheckError),
}

/// The HTTP answer a server should give for a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyStatus {
    /// 401: the request did not prove who it is. The same for a missing, malformed,
    /// unknown, wrong, revoked or expired credential, so a client learns nothing of which.
    Unauthorized,
    /// 403: the credential is good but does not cover the request. Only its holder can get
    /// this answer, so it tells an attacker nothing.
    Forbidden,
    /// 503: the store failed, too many password checks are running, or the configured
    /// token keys are not the store's; try again later.
    Unavailable,
}

impl DenyStatus {
    /// The status code.
    pub fn as_u16(self) -> u16 {
        match self {
            DenyStatus::Unauthorized => 401,
            DenyStatus::Forbidden => 403,
            DenyStatus::Unavailable => 503,
        }
    }
}

/// A denial: the reason for logs, and a status for the client.
///
/// `Display` gives the reason, for logs. Show the client only [`Denial::status`] and a
/// generic message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    reason: DenyReason,
    token: Option<TokenId>,
    account: Option<AccountId>,
}

impl Denial {
    pub(crate) fn new(reason: DenyReason) -> Self {
        Self {
            reason,
            token: None,
            account: None,
        }
    }

    pub(crate) fn for_token(reason: DenyReason, token: TokenId) -> Self {
        Self {
            reason,
            token: Some(token),
            account: None,
        }
    }

    pub(crate) fn for_record(reason: DenyReason, record: &TokenRecord) -> Self {
        Self {
            reason,
            token: Some(record.id),
            account: Some(record.account.clone()),
        }
    }

    pub(crate) fn for_account(reason: DenyReason, account: AccountId) -> Self {
        Self {
            reason,
            token: None,
            account: Some(account),
        }
    }

    /// Why: for logs and metrics.
    pub fn reason(&self) -> &DenyReason {
        &self.reason
    }

    /// The token id the request claimed, where it had one (it may not exist).
    pub fn token_id(&self) -> Option<TokenId> {
        self.token
    }

    /// The account, where the credential was proven to belong to it (a right secret or
    /// password), or named by Basic auth.
    pub fn account(&self) -> Option<&AccountId> {
        self.account.as_ref()
    }

    /// What to answer the client: one status per class, never the reason.
    pub fn status(&self) -> DenyStatus {
        match self.reason {
            DenyReason::ActionOutOfScope(_)
            | DenyReason::FeedOutOfScope
            | DenyReason::PackageOutOfScope
            | DenyReason::PackageRequired
            | DenyReason::InvalidTarget
            | DenyReason::AddressNotAllowed
            | DenyReason::ParentOutOfScope
            | DenyReason::PasswordCannotWrite => DenyStatus::Forbidden,
            DenyReason::Store(_) | DenyReason::Busy | DenyReason::KeyMismatch(_) => {
                DenyStatus::Unavailable
            }
            _ => DenyStatus::Unauthorized,
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "denied: {}", self.reason)?;
        if let Some(token) = self.token {
            write!(f, " (token {token})")?;
        }
        if let Some(account) = &self.account {
            write!(f, " (account {account})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Denial {}
