//! What is stored: accounts and token records, and the view of a token meant for display.

use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::account::AccountId;
use crate::scope::Scope;
use crate::secret::PasswordHash;
use crate::secret::{RetiredSecret, SecretHash};
use crate::token::TokenId;

/// An account as stored. Made by [`AccountRecord::new`]; a store that keeps records
/// elsewhere rebuilds one with `new` and sets the other fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AccountRecord {
    /// The account's id.
    pub id: AccountId,
    /// The Argon2id hash of the account password, if it has one.
    pub password: Option<PasswordHash>,
    /// The id of the account's primary key.
    pub primary: TokenId,
    /// When the account was created.
    pub created_at: OffsetDateTime,
    /// Bumped on every change; a store refuses an update made from an older revision.
    pub revision: u64,
    /// Since when the account is disabled (its password and every token refused until
    /// it is enabled again), if it is.
    pub disabled_at: Option<OffsetDateTime>,
    /// When the account was deleted, if it was: every token revoked, the password
    /// removed, the id kept (never given to another account) and nothing to undo.
    pub deleted_at: Option<OffsetDateTime>,
}

impl AccountRecord {
    /// Whether this record is the account `asked` for: a store's answer counts only for
    /// the exact id asked (one that matched another, as a collation ignoring trailing
    /// spaces would, found no such account).
    pub(crate) fn is_for(&self, asked: &AccountId) -> bool {
        self.id == *asked
    }

    /// A new account: no password, revision 1.
    pub fn new(id: AccountId, primary: TokenId, created_at: OffsetDateTime) -> Self {
        Self {
            id,
            password: None,
            primary,
            created_at,
            revision: 1,
            disabled_at: None,
            deleted_at: None,
        }
    }

    /// Whether the account may act (sign in, be given tokens): neither disabled nor
    /// deleted.
    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none() && self.deleted_at.is_none()
    }
}

/// Whether a token is the account's primary key, an additional one, or derived from one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TokenKind {
    /// The primary key: full access, regenerated rather than revoked or edited.
    Primary,
    /// An additional token with its own scope.
    Scoped,
    /// A short-lived child minted from another token, inside its parent's scope.
    Derived,
    /// A short-lived key minted by a trusted-publishing exchange (a CI job's OIDC token),
    /// the child of its policy's hidden record: it follows the policy's scope and dies
    /// with it. Its description names the issuer, repository, workflow and run.
    TrustedPublishing,
    /// A trusted-publishing policy's hidden record: the parent of the keys minted from
    /// it, holding the policy's scope. Its secret is never shown; no management call on
    /// tokens reaches it.
    TrustPolicy,
}

impl TokenKind {
    /// Whether a token of this kind is the child of another record (a derived key, or a
    /// key minted from a trusted-publishing policy): it lives inside its parent's scope
    /// and standing, and is never a parent itself.
    pub fn has_parent(self) -> bool {
        matches!(self, TokenKind::Derived | TokenKind::TrustedPublishing)
    }
}

/// A token as stored: never the secret, only its keyed hash.
///
/// Not `Serialize`: use [`TokenInfo`] for anything shown or sent. Made by
/// [`TokenRecord::new`]; a store that keeps records elsewhere rebuilds one with `new` and
/// sets the other fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenRecord {
    /// The public id.
    pub id: TokenId,
    /// The owning account.
    pub account: AccountId,
    /// Primary or scoped.
    pub kind: TokenKind,
    /// What the owner wrote to remember where the token is used. Up to 24 bytes are kept
    /// inline, with no allocation of their own.
    pub description: CompactString,
    /// What the token may do.
    pub scope: Scope,
    /// The keyed hash of the secret.
    pub secret_hash: SecretHash,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it stops working, if ever.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked. A revoked record stays only so a later use can be logged as
    /// "revoked"; it can never be made valid again.
    pub revoked_at: Option<OffsetDateTime>,
    /// The token it was derived from, for a derived token.
    pub parent: Option<TokenId>,
    /// For a derived token: the parent's secret it was derived under, named by when that
    /// secret was set (the `retired_at` of the parent's newest retired secret then), or
    /// `None` when the parent had not been given a new secret since it was issued. A
    /// renewal of the parent after that secret ends the child. Never changes.
    pub parent_secret_set_at: Option<OffsetDateTime>,
    /// Since when the token is suspended because its account is disabled, if it is:
    /// refused until the account is enabled again (unlike a revocation, this ends).
    pub suspended_at: Option<OffsetDateTime>,
    /// Secrets replaced by refreshes, newest first, at most
    /// [`MAX_RETIRED_SECRETS`](crate::MAX_RETIRED_SECRETS).
    pub retired: Vec<RetiredSecret>,
    /// Bumped on every change; a store refuses an update made from an older revision.
    pub revision: u64,
}

impl TokenRecord {
    /// A new token: no description, no expiry, not revoked, no parent, no retired
    /// secrets, revision 1.
    pub fn new(
        id: TokenId,
        account: AccountId,
        kind: TokenKind,
        scope: Scope,
        secret_hash: SecretHash,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            account,
            kind,
            description: CompactString::const_new(""),
            scope,
            secret_hash,
            created_at,
            expires_at: None,
            revoked_at: None,
            parent: None,
            parent_secret_set_at: None,
            suspended_at: None,
            retired: Vec::new(),
            revision: 1,
        }
    }

    /// Whether an owner's management calls (list, show, edit, refresh, revoke) reach this
    /// token: it is `account`'s, and not revoked unless `revoked_too` (a revoked record
    /// is kept only so that a later use is logged as such).
    pub(crate) fn reachable_by(&self, account: &AccountId, revoked_too: bool) -> bool {
        self.account == *account
            && (revoked_too || self.revoked_at.is_none())
            && self.kind != TokenKind::TrustPolicy
    }

    /// When the newest retired secret stops working, if it still works at `now`.
    pub fn overlap_until(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.retired
            .iter()
            .map(|r| r.works_until)
            .filter(|until| *until > now)
            .max()
    }
}

/// A token record with the time it was last used, as a store returns it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoredToken {
    /// The record, shared.
    pub record: Arc<TokenRecord>,
    /// When the token was last used, to the store's recording interval.
    pub last_used_at: Option<OffsetDateTime>,
}

impl StoredToken {
    /// A record as read, with when it was last used.
    pub fn new(record: impl Into<Arc<TokenRecord>>, last_used_at: Option<OffsetDateTime>) -> Self {
        Self {
            record: record.into(),
            last_used_at,
        }
    }
}

/// Whether a token works now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenStatus {
    /// It works.
    Active,
    /// Its expiry has passed.
    Expired,
    /// It was revoked (or, for a derived token, its parent is revoked, expired, idle,
    /// gone, or was given a new secret after the child was derived).
    Revoked,
    /// It went unused for longer than the idle policy allows.
    Idle,
    /// Its account is disabled: it works again when the account is enabled.
    Suspended,
}

/// A token as a "my tokens" page shows it: no secret, no hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The public id.
    pub id: TokenId,
    /// The owning account.
    pub account: AccountId,
    /// Primary or scoped.
    pub kind: TokenKind,
    /// The owner's description.
    pub description: String,
    /// What it may do.
    pub scope: Scope,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When it was last used, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// The token it was derived from, for a derived token.
    pub parent: Option<TokenId>,
    /// Until when the secret it had before its last refresh still works, if it does.
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_secret_until: Option<OffsetDateTime>,
    /// Whether it works now.
    pub status: TokenStatus,
}

impl TokenInfo {
    /// The view of `stored` at `now`, with the status `policy::liveness` decided.
    pub(crate) fn of(stored: &StoredToken, status: TokenStatus, now: OffsetDateTime) -> Self {
        let r = &stored.record;
        Self {
            id: r.id,
            account: r.account.clone(),
            kind: r.kind,
            description: r.description.to_string(),
            scope: r.scope.clone(),
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: stored.last_used_at,
            parent: r.parent,
            previous_secret_until: r.overlap_until(now),
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{TokenHasher, TokenKey};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn account(name: &str) -> AccountId {
        AccountId::new(name).unwrap()
    }

    #[test]
    fn a_store_answer_counts_for_the_exact_id_only() {
        let record = AccountRecord::new(account("alice"), TokenId::from_bytes([1; 16]), NOW);
        for (asked, answers) in [
            ("alice", true),
            ("alice ", false),
            (" alice", false),
            ("Alice", false),
            ("bob", false),
        ] {
            assert_eq!(record.is_for(&account(asked)), answers, "{asked:?}");
        }
    }

    #[test]
    fn management_reaches_the_owners_live_tokens() {
        let hasher = TokenHasher::new(TokenKey::new(1, &[1; 32]), Vec::new()).unwrap();
        let id = TokenId::from_bytes([2; 16]);
        let live = TokenRecord::new(
            id,
            account("alice"),
            TokenKind::Scoped,
            Scope::read_only(),
            hasher.hash(&id, &[3; 32]),
            NOW,
        );
        let mut revoked = live.clone();
        revoked.revoked_at = Some(NOW);
        // A trusted-publishing policy's hidden record: its policy calls reach it, never
        // the token calls.
        let mut policy = live.clone();
        policy.kind = TokenKind::TrustPolicy;
        let mut minted = live.clone();
        minted.kind = TokenKind::TrustedPublishing;
        for (record, asker, revoked_too, reached) in [
            (&policy, "alice", false, false),
            (&policy, "alice", true, false),
            (&minted, "alice", false, true),
            (&live, "alice", false, true),
            (&live, "alice", true, true),
            (&live, "bob", false, false),
            (&live, "alice ", true, false),
            (&revoked, "alice", false, false),
            (&revoked, "alice", true, true),
            (&revoked, "bob", true, false),
        ] {
            assert_eq!(
                record.reachable_by(&account(asker), revoked_too),
                reached,
                "{asker:?} revoked_too={revoked_too} revoked={:?} kind={:?}",
                record.revoked_at,
                record.kind
            );
        }
    }
}
