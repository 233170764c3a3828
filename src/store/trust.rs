//! Trusted publishing's stored state: [`TrustStore`], a trait of its own beside
//! [`TokenStore`](super::TokenStore) (a store without it still serves every older call).
//! It keeps two things:
//!
//! - **Policies**, as plain rows ([`TrustPolicyRow`]): which account, which issuer, the
//!   lower-cased `owner/repository` they name (to find them by a token's claims), the
//!   rule as JSON text and the minted keys' lifetime. What a rule means is
//!   `feedkey::oidc`'s; the store keeps text and numbers. A policy's scope is not here:
//!   each policy has a hidden token record of the same id ([`TokenKind::TrustPolicy`]),
//!   the parent of every key minted from it, which holds the scope.
//! - **Used token ids** (`jti`), as 32-byte digests of issuer and id, each kept until the
//!   OIDC token's own expiry: [`TrustStore::use_token_id`] is one insert into a unique
//!   key, so of two exchanges of one token, on any number of servers, one wins.
//!
//! [`TokenKind::TrustPolicy`]: crate::TokenKind::TrustPolicy

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};

use time::OffsetDateTime;

use super::StoreError;
use crate::account::AccountId;
use crate::token::TokenId;

/// The most bytes an issuer URL or a policy's subject may hold (what every store can
/// index).
pub const MAX_TRUST_KEY_LEN: usize = 255;

/// A trusted-publishing policy as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrustPolicyRow {
    /// The policy's id: also the id of its hidden parent token record.
    pub id: TokenId,
    /// The account whose packages the policy publishes.
    pub account: AccountId,
    /// The issuer URL (`iss`) the rule trusts, at most [`MAX_TRUST_KEY_LEN`] bytes.
    pub issuer: String,
    /// The lower-cased `owner/repository` (or `namespace/project`) the rule names, at most
    /// [`MAX_TRUST_KEY_LEN`] bytes: how an exchange finds the policies a token may match.
    pub subject: String,
    /// The rule, as JSON text.
    pub rule: String,
    /// How long a minted key lives, in seconds, if the policy says.
    pub lifetime_secs: Option<i64>,
    /// When the policy was added.
    pub created_at: OffsetDateTime,
    /// Bumped on every change; a store refuses an update made from an older revision.
    pub revision: u64,
}

impl TrustPolicyRow {
    /// A new policy row, revision 1.
    pub fn new(
        id: TokenId,
        account: AccountId,
        issuer: String,
        subject: String,
        rule: String,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            account,
            issuer,
            subject,
            rule,
            lifetime_secs: None,
            created_at,
            revision: 1,
        }
    }
}

/// The digest an OIDC token's id is kept under: BLAKE3 of the issuer, a zero byte and
/// the `jti` (fixed length for every store's unique key; neither part can run into the
/// other, since an issuer URL holds no zero byte).
pub fn token_id_digest(issuer: &str, jti: &str) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(issuer.as_bytes());
    hasher.update(&[0]);
    hasher.update(jti.as_bytes());
    *hasher.finalize().as_bytes()
}

/// Where trusted-publishing policies and used OIDC token ids are kept. Every store of
/// this crate keeps them (SQL tables `feedkey_trust_policies` and `feedkey_oidc_used`).
pub trait TrustStore: Send + Sync {
    /// Adds a policy.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when its id is taken, or a backend failure.
    fn insert_trust_policy(
        &self,
        row: TrustPolicyRow,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The policy of this id.
    ///
    /// # Errors
    /// A backend failure, or [`StoreError::Corrupt`].
    fn trust_policy(
        &self,
        id: &TokenId,
    ) -> impl Future<Output = Result<Option<TrustPolicyRow>, StoreError>> + Send;

    /// The account's policies, oldest first.
    ///
    /// # Errors
    /// A backend failure, or [`StoreError::Corrupt`].
    fn account_trust_policies(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Vec<TrustPolicyRow>, StoreError>> + Send;

    /// Every account's policies of `issuer` naming `subject` (compared exactly: both
    /// sides are lower-cased by the caller), oldest first.
    ///
    /// # Errors
    /// A backend failure, or [`StoreError::Corrupt`].
    fn trust_policies_for(
        &self,
        issuer: &str,
        subject: &str,
    ) -> impl Future<Output = Result<Vec<TrustPolicyRow>, StoreError>> + Send;

    /// Replaces the policy if its stored revision is `expected_revision`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when it changed meanwhile, [`StoreError::NotFound`], or a
    /// backend failure.
    fn update_trust_policy(
        &self,
        row: TrustPolicyRow,
        expected_revision: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the policy.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], or a backend failure.
    fn delete_trust_policy(
        &self,
        id: &TokenId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that the OIDC token whose id digests to `digest` ([`token_id_digest`]) was
    /// used, keeping it until `expires_at`: `true` for its first use, `false` when it
    /// was recorded before (a replay). Atomic: of any number of concurrent calls with
    /// one digest, on any number of stores sharing the storage, exactly one gets `true`.
    ///
    /// # Errors
    /// A backend failure (the caller must then refuse the exchange).
    fn use_token_id(
        &self,
        digest: [u8; 32],
        expires_at: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets the used token ids that expired before `before`; returns how many.
    ///
    /// # Errors
    /// A backend failure.
    fn purge_token_ids(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A shared store keeps trust state as the store does.
impl<T: TrustStore + ?Sized> TrustStore for Arc<T> {
    fn insert_trust_policy(
        &self,
        row: TrustPolicyRow,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).insert_trust_policy(row)
    }

    fn trust_policy(
        &self,
        id: &TokenId,
    ) -> impl Future<Output = Result<Option<TrustPolicyRow>, StoreError>> + Send {
        (**self).trust_policy(id)
    }

    fn account_trust_policies(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Vec<TrustPolicyRow>, StoreError>> + Send {
        (**self).account_trust_policies(account)
    }

    fn trust_policies_for(
        &self,
        issuer: &str,
        subject: &str,
    ) -> impl Future<Output = Result<Vec<TrustPolicyRow>, StoreError>> + Send {
        (**self).trust_policies_for(issuer, subject)
    }

    fn update_trust_policy(
        &self,
        row: TrustPolicyRow,
        expected_revision: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).update_trust_policy(row, expected_revision)
    }

    fn delete_trust_policy(
        &self,
        id: &TokenId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete_trust_policy(id)
    }

    fn use_token_id(
        &self,
        digest: [u8; 32],
        expires_at: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).use_token_id(digest, expires_at)
    }

    fn purge_token_ids(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).purge_token_ids(before)
    }
}

/// [`MemoryStore`](super::MemoryStore)'s trust state: policies by id (ids are random,
/// so "oldest first" is by creation time, then id) and used token ids.
#[derive(Debug, Default)]
pub(crate) struct MemoryTrust {
    policies: RwLock<BTreeMap<TokenId, TrustPolicyRow>>,
    used: RwLock<BTreeMap<[u8; 32], OffsetDateTime>>,
}

impl MemoryTrust {
    fn select(&self, keep: impl Fn(&TrustPolicyRow) -> bool) -> Vec<TrustPolicyRow> {
        let policies = self.policies.read().unwrap_or_else(PoisonError::into_inner);
        let mut rows: Vec<TrustPolicyRow> =
            policies.values().filter(|r| keep(r)).cloned().collect();
        rows.sort_by_key(|r| (r.created_at, r.id));
        rows
    }

    pub(crate) fn insert(&self, row: TrustPolicyRow) -> Result<(), StoreError> {
        let mut policies = self
            .policies
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if policies.contains_key(&row.id) {
            return Err(StoreError::Duplicate);
        }
        policies.insert(row.id, row);
        Ok(())
    }

    pub(crate) fn get(&self, id: &TokenId) -> Option<TrustPolicyRow> {
        let policies = self.policies.read().unwrap_or_else(PoisonError::into_inner);
        policies.get(id).cloned()
    }

    pub(crate) fn of_account(&self, account: &AccountId) -> Vec<TrustPolicyRow> {
        self.select(|r| r.account == *account)
    }

    pub(crate) fn naming(&self, issuer: &str, subject: &str) -> Vec<TrustPolicyRow> {
        self.select(|r| r.issuer == issuer && r.subject == subject)
    }

    pub(crate) fn update(&self, row: TrustPolicyRow, expected: u64) -> Result<(), StoreError> {
        let mut policies = self
            .policies
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match policies.get_mut(&row.id) {
            None => Err(StoreError::NotFound),
            Some(current) if current.revision != expected => Err(StoreError::Conflict),
            Some(current) => {
                *current = row;
                Ok(())
            }
        }
    }

    pub(crate) fn delete(&self, id: &TokenId) -> Result<(), StoreError> {
        let mut policies = self
            .policies
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        policies.remove(id).map(|_| ()).ok_or(StoreError::NotFound)
    }

    pub(crate) fn use_id(&self, digest: [u8; 32], expires_at: OffsetDateTime) -> bool {
        let mut used = self.used.write().unwrap_or_else(PoisonError::into_inner);
        match used.entry(digest) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(expires_at);
                true
            }
        }
    }

    pub(crate) fn purge(&self, before: OffsetDateTime) -> u64 {
        let mut used = self.used.write().unwrap_or_else(PoisonError::into_inner);
        let was = used.len();
        used.retain(|_, expires_at| *expires_at >= before);
        (was - used.len()) as u64
    }
}

/// The SQL backends' side: the statements (written with `?`, rendered for PostgreSQL by
/// the server backend) and the row as the database holds it.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) mod sql {
    use super::*;
    use crate::store::codec::{id_from_db, id_to_db, revision_to_db, time_from_db, time_to_db};

    /// The columns of a policy row, in the order [`DbTrustRow`] takes them.
    const COLUMNS: &str = "id, account, issuer, subject, rule, lifetime_secs, created_at, revision";

    /// Adds a policy: the eight values in [`DbTrustRow`]'s order.
    pub(crate) const INSERT: &str = "INSERT INTO feedkey_trust_policies \
        (id, account, issuer, subject, rule, lifetime_secs, created_at, revision) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

    /// Replaces the changeable columns (rule, lifetime, revision) of `id` at `revision`.
    pub(crate) const UPDATE: &str = "UPDATE feedkey_trust_policies \
        SET rule = ?, lifetime_secs = ?, revision = ? WHERE id = ? AND revision = ?";

    /// Deletes `id`.
    pub(crate) const DELETE: &str = "DELETE FROM feedkey_trust_policies WHERE id = ?";

    /// Records a used token id: fails on the primary key when it was used before.
    pub(crate) const USE_ID: &str =
        "INSERT INTO feedkey_oidc_used (digest, expires_at) VALUES (?, ?)";

    /// Forgets used token ids that expired before `?`.
    pub(crate) const PURGE: &str = "DELETE FROM feedkey_oidc_used WHERE expires_at < ?";

    /// The policy of one id.
    pub(crate) fn select_by_id() -> String {
        format!("SELECT {COLUMNS} FROM feedkey_trust_policies WHERE id = ?")
    }

    /// An account's policies, oldest first.
    pub(crate) fn select_by_account() -> String {
        format!(
            "SELECT {COLUMNS} FROM feedkey_trust_policies WHERE account = ? \
             ORDER BY created_at, id"
        )
    }

    /// The policies of an issuer naming a subject, oldest first.
    pub(crate) fn select_by_subject() -> String {
        format!(
            "SELECT {COLUMNS} FROM feedkey_trust_policies WHERE issuer = ? AND subject = ? \
             ORDER BY created_at, id"
        )
    }

    /// A policy row's columns as the database holds them.
    #[derive(Debug, Clone)]
    pub(crate) struct DbTrustRow {
        pub id: Vec<u8>,
        pub account: String,
        pub issuer: String,
        pub subject: String,
        pub rule: String,
        pub lifetime_secs: Option<i64>,
        pub created_at: i64,
        pub revision: i64,
    }

    /// A revision as bound to [`UPDATE`]'s `WHERE`.
    pub(crate) fn expected_to_db(revision: u64) -> Result<i64, StoreError> {
        revision_to_db(revision)
    }

    impl DbTrustRow {
        /// The row to write for `row`.
        pub(crate) fn from_row(row: &TrustPolicyRow) -> Result<Self, StoreError> {
            Ok(Self {
                id: id_to_db(&row.id),
                account: row.account.as_str().to_owned(),
                issuer: row.issuer.clone(),
                subject: row.subject.clone(),
                rule: row.rule.clone(),
                lifetime_secs: row.lifetime_secs,
                created_at: time_to_db(row.created_at)?,
                revision: revision_to_db(row.revision)?,
            })
        }

        /// The row read, every column checked: a bad one is [`StoreError::Corrupt`].
        pub(crate) fn into_row(self) -> Result<TrustPolicyRow, StoreError> {
            let what = "trust policy".to_owned();
            let id = id_from_db(&what, &self.id)?;
            let what = format!("trust policy {id}");
            let corrupt = |detail: String| StoreError::Corrupt {
                what: what.clone(),
                detail,
            };
            let account =
                AccountId::new(&self.account).map_err(|e| corrupt(format!("bad account: {e}")))?;
            let revision =
                u64::try_from(self.revision).map_err(|_| corrupt("negative revision".into()))?;
            Ok(TrustPolicyRow {
                id,
                account,
                issuer: self.issuer,
                subject: self.subject,
                rule: self.rule,
                lifetime_secs: self.lifetime_secs,
                created_at: time_from_db(&what, self.created_at)?,
                revision,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_token_id_is_used_once_until_purged() {
        let trust = MemoryTrust::default();
        let at = OffsetDateTime::UNIX_EPOCH;
        let digest = token_id_digest("https://issuer", "j1");
        assert!(trust.use_id(digest, at));
        assert!(!trust.use_id(digest, at));
        // The same id from another issuer is another token.
        assert!(trust.use_id(token_id_digest("https://other", "j1"), at));
        assert_eq!(trust.purge(at), 0);
        assert_eq!(trust.purge(at + time::Duration::SECOND), 2);
        assert!(trust.use_id(digest, at));
    }
}
