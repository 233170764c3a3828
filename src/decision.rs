//! What is asked (an action on a target) and what is answered (a grant or a denial): the
//! one vocabulary of refusals ([`DenyReason`]), the status each maps to, and the scope
//! rule ([`Scope::check`]) that speaks it.
//!
//! Over 600 lines because the scope table and the table of every reason's status (about
//! 230 lines) sit beside the two functions they test.

use std::fmt;
use std::sync::Arc;

use crate::account::AccountId;
use crate::record::{TokenKind, TokenRecord};
use crate::request::{Action, CredentialError, Target};
use crate::scope::{Packages, Permission, Scope};
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
            Principal::Token(r) if r.kind.has_parent() => GrantedBy::DerivedToken,
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
    /// The account is disabled (or deleted): its password and its tokens are refused.
    #[error("account disabled")]
    AccountDisabled,
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

impl DenyReason {
    /// A short, stable name for the reason, for metrics labels and log fields
    /// (`"wrong-secret"`, `"feed-out-of-scope"`…): one per variant, never its detail.
    pub fn code(&self) -> &'static str {
        match self {
            DenyReason::MalformedCredential(_) => "malformed-credential",
            DenyReason::MalformedToken(_) => "malformed-token",
            DenyReason::UnknownToken => "unknown-token",
            DenyReason::WrongSecret => "wrong-secret",
            DenyReason::Revoked => "revoked",
            DenyReason::Expired => "expired",
            DenyReason::ActionOutOfScope(_) => "action-out-of-scope",
            DenyReason::FeedOutOfScope => "feed-out-of-scope",
            DenyReason::PackageOutOfScope => "package-out-of-scope",
            DenyReason::InvalidTarget => "invalid-target",
            DenyReason::PackageRequired => "package-required",
            DenyReason::UnknownAccount => "unknown-account",
            DenyReason::WrongPassword => "wrong-password",
            DenyReason::AccountDisabled => "account-disabled",
            DenyReason::PasswordCannotWrite => "password-cannot-write",
            DenyReason::TokenCannotSignIn => "token-cannot-sign-in",
            DenyReason::UnknownKey => "unknown-key",
            DenyReason::RetiredSecretReused => "retired-secret-reused",
            DenyReason::Idle => "idle",
            DenyReason::AddressNotAllowed => "address-not-allowed",
            DenyReason::ParentInvalid => "parent-invalid",
            DenyReason::ParentOutOfScope => "parent-out-of-scope",
            DenyReason::Busy => "busy",
            DenyReason::Store(_) => "store",
            DenyReason::KeyMismatch(_) => "key-mismatch",
        }
    }
}

impl GrantedBy {
    /// A short, stable name, for metrics labels and log fields.
    pub fn code(self) -> &'static str {
        match self {
            GrantedBy::PrimaryKey => "primary-key",
            GrantedBy::Token => "token",
            GrantedBy::DerivedToken => "derived-token",
            GrantedBy::Password => "password",
        }
    }
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
    ///
    /// One arm per reason, no catch-all: a new reason does not compile until someone
    /// decides its status. 401 when the request did not prove who it is (and the same 401
    /// whichever proof failed, so a client learns nothing of which); 403 when the proven
    /// credential does not cover the request (only its holder sees that); 503 when nothing
    /// was decided.
    pub fn status(&self) -> DenyStatus {
        match self.reason {
            // 401: no credential could be read, so no one is proven.
            DenyReason::MalformedCredential(_) => DenyStatus::Unauthorized,
            // 401: not a token of this registry's shape or checksum.
            DenyReason::MalformedToken(_) => DenyStatus::Unauthorized,
            // 401: the same answer as a wrong secret, so ids cannot be probed.
            DenyReason::UnknownToken => DenyStatus::Unauthorized,
            // 401: the secret did not prove the token.
            DenyReason::WrongSecret => DenyStatus::Unauthorized,
            // 401: a dead token proves no one: revoked, expired, idle, or its parent dead.
            DenyReason::Revoked
            | DenyReason::Expired
            | DenyReason::Idle
            | DenyReason::ParentInvalid => DenyStatus::Unauthorized,
            // 401: a replaced secret after its window is treated as leaked, not as proof.
            DenyReason::RetiredSecretReused => DenyStatus::Unauthorized,
            // 401: a hash under a key this process lacks cannot be verified, so nothing
            // is proven (the store as a whole answers `KeyMismatch`, 503, instead).
            DenyReason::UnknownKey => DenyStatus::Unauthorized,
            // 401: the same answer as a wrong password, so accounts cannot be probed.
            DenyReason::UnknownAccount => DenyStatus::Unauthorized,
            // 401: the password did not prove the account.
            DenyReason::WrongPassword => DenyStatus::Unauthorized,
            // 401: a token is never proof for an interactive sign-in.
            DenyReason::TokenCannotSignIn => DenyStatus::Unauthorized,
            // 401: a disabled account's password and tokens prove no one until it is
            // enabled again.
            DenyReason::AccountDisabled => DenyStatus::Unauthorized,
            // 403: the proven token's scope lacks the permission, feed or package, or the
            // action names no package.
            DenyReason::ActionOutOfScope(_)
            | DenyReason::FeedOutOfScope
            | DenyReason::PackageOutOfScope
            | DenyReason::PackageRequired => DenyStatus::Forbidden,
            // 403: the credential was proven before the target was looked at.
            DenyReason::InvalidTarget => DenyStatus::Forbidden,
            // 403: a proven token used from outside its (or its parent's) networks.
            DenyReason::AddressNotAllowed => DenyStatus::Forbidden,
            // 403: a proven derived token whose parent was narrowed below the request.
            DenyReason::ParentOutOfScope => DenyStatus::Forbidden,
            // 403: the password is refused for writes before it is checked: the answer is
            // the same whatever the password, so it tells nothing.
            DenyReason::PasswordCannotWrite => DenyStatus::Forbidden,
            // 503: the store failed, the password checks are all busy, or the token keys
            // are not the store's: nothing was decided, the client did nothing wrong.
            DenyReason::Store(_) | DenyReason::Busy | DenyReason::KeyMismatch(_) => {
                DenyStatus::Unavailable
            }
        }
    }
}

/// The scope rule, in the one vocabulary of denials: a scope's refusal *is* a
/// [`DenyReason`], with no table in between. It lives here, beside [`DenyReason`], because
/// `decision` sits above `scope` in the layers (`scope` cannot name a `DenyReason`).
impl Scope {
    /// Whether this scope covers `action` on `target`, and if not, which part refused:
    /// [`DenyReason::PackageRequired`], [`DenyReason::ActionOutOfScope`],
    /// [`DenyReason::FeedOutOfScope`] or [`DenyReason::PackageOutOfScope`]. The client
    /// address is not looked at here: where a token may act from is one rule, for its own
    /// networks and a parent's, in `policy::liveness::may_act_from`.
    pub(crate) fn check(&self, action: Action, target: &Target<'_>) -> Result<(), DenyReason> {
        // The permission the action needs (`Scope::required`); none when it names no package.
        let needed = Self::required(action, target).ok_or(DenyReason::PackageRequired)?;
        // The scope's permissions lack it.
        if !self.permissions().contains(needed) {
            return Err(DenyReason::ActionOutOfScope(needed));
        }
        // The feed is not among the scope's (`Feeds::allows`).
        if !self.feeds().allows(target.feed_name()) {
            return Err(DenyReason::FeedOutOfScope);
        }
        match target.package_id() {
            // One package: the package rule, `Packages::allows` (globs and case in
            // `PackageSet::matches`).
            Some(id) if self.packages().allows(id) => Ok(()),
            Some(_) => Err(DenyReason::PackageOutOfScope),
            // The whole feed's listing: only a token for every package may read it; a
            // token for some packages would see packages outside its scope, so it asks per
            // package instead.
            None if matches!(self.packages(), Packages::Any) => Ok(()),
            None => Err(DenyReason::PackageOutOfScope),
        }
    }
}

/// What the account password may do: read through `authorize`, nothing else (signing in
/// is [`Feedkey::sign_in`](crate::Feedkey::sign_in)'s own call). `None` stands for
/// proving who holds a token (`authenticate`, `derive`), which a password never does.
/// Asked before the slow hash: the answer is the same whatever the password.
pub(crate) fn password_may(action: Option<Action>) -> bool {
    action == Some(Action::Read)
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

#[cfg(test)]
mod password_tests {
    use super::*;

    #[test]
    fn the_password_only_reads() {
        for (action, allowed) in [
            (Some(Action::Read), true),
            (Some(Action::Push), false),
            (Some(Action::Unlist), false),
            (None, false),
        ] {
            assert_eq!(password_may(action), allowed, "{action:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    //! The scope rule's table ([`Scope::check`]) and the status of every reason.

    use super::*;
    use crate::scope::{Feeds, Permissions};

    fn scope(perms: Permissions, feeds: Feeds, packages: Packages) -> Scope {
        Scope::new(perms, feeds, packages).unwrap()
    }

    #[test]
    fn the_evaluator_table() {
        let ci = scope(
            Permissions::WRITE_ONLY,
            Feeds::only(["ci"]).unwrap(),
            Packages::only(["fabrikam.service.*", "Contoso.Core"]).unwrap(),
        );
        let reader = Scope::read_only();
        let pkg = |id| Target::package("ci", id);
        let new = |id| Target::new_package("ci", id);
        let rows: Vec<(&Scope, Action, Target<'_>, Result<(), DenyReason>)> = vec![
            // A write-only key pushes a new package its glob covers, in any case.
            (&ci, Action::Push, new("Fabrikam.Service.Framework"), Ok(())),
            // ... and a new version of an exact id, case-insensitively.
            (&ci, Action::Push, pkg("contoso.core"), Ok(())),
            // ... but cannot read, even a package it may push.
            (
                &ci,
                Action::Read,
                pkg("contoso.core"),
                Err(DenyReason::ActionOutOfScope(Permission::Read)),
            ),
            // ... nor unlist.
            (
                &ci,
                Action::Unlist,
                pkg("contoso.core"),
                Err(DenyReason::ActionOutOfScope(Permission::Unlist)),
            ),
            // ... nor push to another feed.
            (
                &ci,
                Action::Push,
                Target::package("release", "contoso.core"),
                Err(DenyReason::FeedOutOfScope),
            ),
            // ... nor push a package outside its globs.
            (
                &ci,
                Action::Push,
                new("Fabrikam.Other"),
                Err(DenyReason::PackageOutOfScope),
            ),
            // The glob's dot is literal: fabrikam.service.* does not cover fabrikam.services.
            (
                &ci,
                Action::Push,
                new("fabrikam.servicex.a"),
                Err(DenyReason::PackageOutOfScope),
            ),
            // Push with no package named is refused whatever the scope.
            (
                &ci,
                Action::Push,
                Target::feed("ci"),
                Err(DenyReason::PackageRequired),
            ),
            // A read-only key reads the listing and any package.
            (&reader, Action::Read, Target::feed("ci"), Ok(())),
            (&reader, Action::Read, pkg("anything"), Ok(())),
            // ... and cannot push either kind.
            (
                &reader,
                Action::Push,
                new("x"),
                Err(DenyReason::ActionOutOfScope(Permission::PushNew)),
            ),
            (
                &reader,
                Action::Push,
                pkg("x"),
                Err(DenyReason::ActionOutOfScope(Permission::PushVersion)),
            ),
        ];
        for (scope, action, target, want) in rows {
            assert_eq!(scope.check(action, &target), want, "{action:?} {target:?}");
        }
    }

    #[test]
    fn push_version_only_cannot_create_packages() {
        let s = scope(Permissions::PUSH_VERSION_ONLY, Feeds::Any, Packages::Any);
        assert!(s.check(Action::Push, &Target::package("f", "a")).is_ok());
        assert_eq!(
            s.check(Action::Push, &Target::new_package("f", "a")),
            Err(DenyReason::ActionOutOfScope(Permission::PushNew))
        );
    }

    #[test]
    fn a_package_limited_reader_cannot_list_the_feed() {
        let s = scope(
            Permissions::READ_ONLY,
            Feeds::Any,
            Packages::only(["a.*"]).unwrap(),
        );
        assert!(s.check(Action::Read, &Target::package("f", "a.b")).is_ok());
        assert_eq!(
            s.check(Action::Read, &Target::feed("f")),
            Err(DenyReason::PackageOutOfScope)
        );
    }

    #[test]
    fn every_reason_has_its_status() {
        use DenyStatus::{Forbidden, Unauthorized, Unavailable};
        let rows = [
            (
                DenyReason::MalformedCredential(CredentialError::Missing),
                Unauthorized,
            ),
            (
                DenyReason::MalformedToken(TokenParseError::MissingPrefix),
                Unauthorized,
            ),
            (DenyReason::UnknownToken, Unauthorized),
            (DenyReason::WrongSecret, Unauthorized),
            (DenyReason::Revoked, Unauthorized),
            (DenyReason::Expired, Unauthorized),
            (DenyReason::Idle, Unauthorized),
            (DenyReason::ParentInvalid, Unauthorized),
            (DenyReason::RetiredSecretReused, Unauthorized),
            (DenyReason::UnknownKey, Unauthorized),
            (DenyReason::UnknownAccount, Unauthorized),
            (DenyReason::WrongPassword, Unauthorized),
            (DenyReason::TokenCannotSignIn, Unauthorized),
            (DenyReason::AccountDisabled, Unauthorized),
            (DenyReason::ActionOutOfScope(Permission::Read), Forbidden),
            (DenyReason::FeedOutOfScope, Forbidden),
            (DenyReason::PackageOutOfScope, Forbidden),
            (DenyReason::PackageRequired, Forbidden),
            (DenyReason::InvalidTarget, Forbidden),
            (DenyReason::AddressNotAllowed, Forbidden),
            (DenyReason::ParentOutOfScope, Forbidden),
            (DenyReason::PasswordCannotWrite, Forbidden),
            (DenyReason::Store(StoreError::NotFound), Unavailable),
            (DenyReason::Busy, Unavailable),
            (
                DenyReason::KeyMismatch(KeyCheckError::Store(StoreError::NotFound)),
                Unavailable,
            ),
        ];
        let mut codes = std::collections::BTreeSet::new();
        for (reason, want) in &rows {
            let status = Denial::new(reason.clone()).status();
            assert_eq!(status, *want, "{reason:?}");
            // Every reason has a code of its own, lower-case words joined by '-'.
            let code = reason.code();
            assert!(codes.insert(code), "{code} names two reasons");
            assert!(
                code.split('-')
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase())),
                "{code}"
            );
        }
        assert_eq!(codes.len(), rows.len());
        assert_eq!(DenyReason::WrongSecret.code(), "wrong-secret");
        assert_eq!(
            [Unauthorized, Forbidden, Unavailable].map(DenyStatus::as_u16),
            [401, 403, 503]
        );
    }
}
