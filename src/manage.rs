//! The management API: what a "my tokens" page calls.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::audit::{AuditEvent, AuditKind, RevokeCause};
use crate::credential::Request;
use crate::error::{Error, Widening};
use crate::expiry::{Expiry, is_expired};
use crate::hash::SecretHash;
use crate::liveness::{self, Dead};
use crate::network::Networks;
use crate::password::PasswordError;
use crate::record::{
    AccountId, AccountRecord, MAX_RETIRED_SECRETS, RetiredSecret, StoredToken, TokenInfo,
    TokenKind, TokenRecord, check_description,
};
use crate::rotation::RotationPolicy;
use crate::scope::{Feeds, Packages, Permissions, Scope};
use crate::service::Feedkey;
use crate::store::{StoreError, TokenStore};
use crate::token::{PlainToken, TokenId, random_secret};

/// A token just issued: the plaintext, shown once, and what is stored about it.
#[derive(Debug)]
pub struct IssuedToken {
    /// The token itself: show it to the user once, then drop it.
    pub token: PlainToken,
    /// The token's public details.
    pub info: TokenInfo,
}

/// What a new token should be: a description, a scope and an expiry.
///
/// ```
/// use feedkey::{NewToken, Scope, Expiry};
/// use feedkey::time::Duration;
///
/// let ci = NewToken::new("TeamCity", Scope::read_only()).expires(Expiry::After(Duration::days(90)));
/// ```
#[derive(Debug, Clone)]
pub struct NewToken {
    description: String,
    scope: Scope,
    expiry: Expiry,
}

impl NewToken {
    /// A token with this description and scope that never expires (where the policy
    /// allows that).
    pub fn new(description: impl Into<String>, scope: Scope) -> Self {
        Self {
            description: description.into(),
            scope,
            expiry: Expiry::Never,
        }
    }

    /// Sets the expiry.
    #[must_use]
    pub fn expires(mut self, expiry: Expiry) -> Self {
        self.expiry = expiry;
        self
    }
}

/// What a derived (child) token should be: a description, a scope inside its parent's,
/// and a short lifetime.
///
/// ```
/// use feedkey::{NewChild, Scope, Permissions, Feeds, Packages};
/// use feedkey::time::Duration;
///
/// // One CI job may push one package for fifteen minutes.
/// let job = NewChild::new(
///     "build 4711",
///     Scope::new(Permissions::PUSH_VERSION_ONLY, Feeds::only(["ci"])?, Packages::only(["Contoso.Service.Core"])?)?,
///     Duration::minutes(15),
/// );
/// # Ok::<(), feedkey::ScopeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct NewChild {
    description: String,
    scope: Scope,
    lifetime: Duration,
}

impl NewChild {
    /// A child with this description and scope, living for `lifetime`.
    pub fn new(description: impl Into<String>, scope: Scope, lifetime: Duration) -> Self {
        Self {
            description: description.into(),
            scope,
            lifetime,
        }
    }
}

/// A change to a token that keeps its secret: a new description, a new package list,
/// fewer permissions, feeds or networks. Never more permissions, feeds or networks.
#[derive(Debug, Clone, Default)]
pub struct TokenEdit {
    description: Option<String>,
    packages: Option<Packages>,
    permissions: Option<Permissions>,
    feeds: Option<Feeds>,
    networks: Option<Networks>,
}

impl TokenEdit {
    /// An edit that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the package list (NuGet lets an owner point a key at other packages).
    #[must_use]
    pub fn packages(mut self, packages: Packages) -> Self {
        self.packages = Some(packages);
        self
    }

    /// Narrows the permissions to `permissions`, which must be a subset of the current
    /// ones.
    #[must_use]
    pub fn permissions(mut self, permissions: Permissions) -> Self {
        self.permissions = Some(permissions);
        self
    }

    /// Narrows the feeds to `feeds`, which must be covered by the current ones.
    #[must_use]
    pub fn feeds(mut self, feeds: Feeds) -> Self {
        self.feeds = Some(feeds);
        self
    }

    /// Narrows the client networks to `networks`, which must lie inside the current ones.
    #[must_use]
    pub fn networks(mut self, networks: Networks) -> Self {
        self.networks = Some(networks);
        self
    }
}

/// How a refresh treats the secret it replaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refresh {
    overlap: Duration,
}

impl Refresh {
    /// The old secret stops at once (nuget.org's rule; the default).
    pub fn immediate() -> Self {
        Self::default()
    }

    /// The old secret keeps working for `overlap` (never past the token's expiry), so
    /// that CI systems holding it keep working while the new one is rolled out.
    pub fn with_overlap(overlap: Duration) -> Self {
        Self {
            overlap: overlap.max(Duration::ZERO),
        }
    }
}

/// How many times a management write is tried when concurrent writes keep winning.
const MAX_ATTEMPTS: usize = 8;

/// The contract of a renewal (refresh, regenerate): it replaces the secret its caller's
/// first read saw, or nothing. A concurrent edit or rehash is retried over; a concurrent
/// renewal that won is not, since retiring the winner's secret would hand that caller a
/// secret already dead. The loser gets [`StoreError::Conflict`], and the winner's secret
/// is the one that stands.
#[derive(Default)]
struct SameSecret {
    /// When the secret first seen was set (its predecessor's retirement), if ever.
    first: Option<Option<OffsetDateTime>>,
}

impl SameSecret {
    /// Passes while `record` still holds the secret first seen.
    fn check(&mut self, record: &TokenRecord) -> Result<(), Error> {
        let set_at = record.retired.first().map(|r| r.retired_at);
        match self.first {
            None => {
                self.first = Some(set_at);
                Ok(())
            }
            Some(first) if first == set_at => Ok(()),
            Some(_) => Err(StoreError::Conflict.into()),
        }
    }
}

/// The revision after `record`'s.
fn next_revision(record: &TokenRecord) -> Result<u64, Error> {
    record.revision.checked_add(1).ok_or_else(|| {
        Error::Store(StoreError::Corrupt {
            what: record.id.to_string(),
            detail: "revision overflow".to_owned(),
        })
    })
}

impl<S: TokenStore> Feedkey<S> {
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn audit_event(&self, kind: AuditKind, account: &AccountId, token: Option<TokenId>) {
        self.audit_from(kind, account, token, None);
    }

    fn audit_from(
        &self,
        kind: AuditKind,
        account: &AccountId,
        token: Option<TokenId>,
        client_addr: Option<IpAddr>,
    ) {
        if self.audit.enabled() {
            self.emit(AuditEvent {
                kind,
                account: Some(account.clone()),
                token,
                client_addr,
                at: self.now(),
            });
        }
    }

    fn mint(&self) -> Result<(TokenId, PlainToken, SecretHash), Error> {
        let id = TokenId::random().map_err(|_| Error::Entropy)?;
        self.mint_for(id).map(|(plain, hash)| (id, plain, hash))
    }

    fn mint_for(&self, id: TokenId) -> Result<(PlainToken, SecretHash), Error> {
        let secret = random_secret().map_err(|_| Error::Entropy)?;
        Ok((
            self.format.encode(&id, &secret),
            self.hasher.hash(&id, &secret),
        ))
    }

    /// How a token shows at `now`, its standing decided by [`liveness::check`] against
    /// `parent` (the parent's record as looked up, for a derived token).
    fn info_with(&self, stored: &StoredToken, parent: Option<&StoredToken>) -> TokenInfo {
        let now = self.now();
        TokenInfo::of(
            stored,
            liveness::status(stored, parent, &self.policy, now),
            now,
        )
    }

    /// As [`Feedkey::info_with`], looking the parent up for a derived token.
    async fn info(&self, stored: &StoredToken) -> Result<TokenInfo, Error> {
        let parent = match stored.record.parent {
            Some(parent) => self.store.token(&parent).await?,
            None => None,
        };
        Ok(self.info_with(stored, parent.as_ref()))
    }

    /// The view of a record just written, whose parent (for a derived token) is known.
    fn info_of(
        &self,
        record: TokenRecord,
        last_used_at: Option<OffsetDateTime>,
        parent: Option<&StoredToken>,
    ) -> TokenInfo {
        let stored = StoredToken {
            record: Arc::new(record),
            last_used_at,
        };
        self.info_with(&stored, parent)
    }

    /// Creates an account and its primary key (full access), returning the key once.
    ///
    /// # Errors
    /// [`Error::AccountExists`], [`Error::Lifetime`] when the expiry breaks the policy,
    /// or a store failure.
    pub async fn create_account(
        &self,
        account: &AccountId,
        primary_expiry: Expiry,
    ) -> Result<IssuedToken, Error> {
        self.keys_ready().await?;
        let now = self.now();
        let expires_at = self.policy.resolve(now, primary_expiry, true)?;
        let (id, token, secret_hash) = self.mint()?;
        let primary = TokenRecord {
            id,
            account: account.clone(),
            kind: TokenKind::Primary,
            description: "Primary key".to_owned(),
            scope: Scope::full(),
            secret_hash,
            created_at: now,
            expires_at,
            revoked_at: None,
            parent: None,
            parent_secret_set_at: None,
            retired: Vec::new(),
            revision: 1,
        };
        let record = AccountRecord {
            id: account.clone(),
            password: None,
            primary: id,
            created_at: now,
            revision: 1,
        };
        match self.store.insert_account(record, primary.clone()).await {
            Err(StoreError::Duplicate) => Err(Error::AccountExists),
            other => other.map_err(Error::from),
        }?;
        self.audit_event(AuditKind::AccountCreated, account, Some(id));
        Ok(IssuedToken {
            token,
            info: self.info_of(primary, None, None),
        })
    }

    /// The account whose id is exactly `account` (a store that matched another id, as a
    /// collation ignoring trailing spaces would, found no such account).
    async fn account_record(&self, account: &AccountId) -> Result<AccountRecord, Error> {
        self.store
            .account(account)
            .await?
            .filter(|record| &record.id == account)
            .ok_or(Error::AccountNotFound)
    }

    /// Sets (or replaces) the account password, hashed with Argon2id. Remembered verifies
    /// of the old password are forgotten at once.
    ///
    /// # Errors
    /// [`Error::AccountNotFound`], [`Error::Password`] for an empty, over-long or
    /// token-shaped password, or a store failure ([`StoreError::Conflict`] if the account changed meanwhile).
    pub async fn set_password(&self, account: &AccountId, password: &str) -> Result<(), Error> {
        self.keys_ready().await?;
        if self.looks_like_token(password) {
            return Err(PasswordError::LooksLikeToken.into());
        }
        let hash = self.passwords.hash(password).await?;
        self.change_password(account, Some(hash)).await
    }

    /// Removes the account password: only tokens work afterwards.
    ///
    /// # Errors
    /// [`Error::AccountNotFound`] or a store failure.
    pub async fn remove_password(&self, account: &AccountId) -> Result<(), Error> {
        self.keys_ready().await?;
        self.change_password(account, None).await
    }

    async fn change_password(
        &self,
        account: &AccountId,
        hash: Option<crate::password::PasswordHash>,
    ) -> Result<(), Error> {
        for _ in 0..MAX_ATTEMPTS {
            let mut record = self.account_record(account).await?;
            let expected = record.revision;
            record.revision = expected.checked_add(1).ok_or_else(|| StoreError::Corrupt {
                what: account.to_string(),
                detail: "revision overflow".to_owned(),
            })?;
            record.password = hash.clone();
            match self.store.update_account(record, expected).await {
                Ok(()) => {
                    self.audit_event(AuditKind::PasswordChanged, account, None);
                    return Ok(());
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// Issues a new token, returning it once.
    ///
    /// # Errors
    /// [`Error::AccountNotFound`], [`Error::Record`] for a bad description,
    /// [`Error::Lifetime`] when the expiry breaks the policy, or a store failure.
    pub async fn issue(&self, account: &AccountId, new: NewToken) -> Result<IssuedToken, Error> {
        self.keys_ready().await?;
        check_description(&new.description)?;
        let now = self.now();
        let expires_at = self
            .policy
            .resolve(now, new.expiry, new.scope.can_write())?;
        let (id, token, secret_hash) = self.mint()?;
        let record = TokenRecord {
            id,
            account: account.clone(),
            kind: TokenKind::Scoped,
            description: new.description,
            scope: new.scope,
            secret_hash,
            created_at: now,
            expires_at,
            revoked_at: None,
            parent: None,
            parent_secret_set_at: None,
            retired: Vec::new(),
            revision: 1,
        };
        self.insert(record, None, token, AuditKind::Issued).await
    }

    async fn insert(
        &self,
        record: TokenRecord,
        parent: Option<&StoredToken>,
        token: PlainToken,
        event: AuditKind,
    ) -> Result<IssuedToken, Error> {
        match self.store.insert_token(record.clone()).await {
            Err(StoreError::NotFound) => Err(Error::AccountNotFound),
            other => other.map_err(Error::from),
        }?;
        self.audit_event(event, &record.account, Some(record.id));
        Ok(IssuedToken {
            token,
            info: self.info_of(record, None, parent),
        })
    }

    /// A live (not revoked) token of `account`.
    async fn owned(&self, account: &AccountId, id: TokenId) -> Result<StoredToken, Error> {
        match self.store.token(&id).await? {
            Some(t) if &t.record.account == account && t.record.revoked_at.is_none() => Ok(t),
            _ => Err(Error::TokenNotFound),
        }
    }

    /// Applies `change` to a token of `account` and stores the result with
    /// compare-and-swap, reading again and reapplying when a concurrent write won (a use
    /// that rehashed the token, an edit), so that a revoke or an edit never fails merely
    /// because the token was in use. `change` sees the latest record and may refuse.
    /// Returns the record written, the one it replaced, and what `change` returned.
    async fn update_token_with<T>(
        &self,
        account: &AccountId,
        id: TokenId,
        revoked_too: bool,
        mut change: impl FnMut(&StoredToken) -> Result<(TokenRecord, T), Error>,
    ) -> Result<(TokenRecord, StoredToken, T), Error> {
        for _ in 0..MAX_ATTEMPTS {
            let stored = match self.store.token(&id).await? {
                Some(t)
                    if &t.record.account == account
                        && (revoked_too || t.record.revoked_at.is_none()) =>
                {
                    t
                }
                _ => return Err(Error::TokenNotFound),
            };
            let (mut record, extra) = change(&stored)?;
            let expected = stored.record.revision;
            record.revision = next_revision(&stored.record)?;
            match self.store.update_token(record.clone(), expected).await {
                Ok(()) => return Ok((record, stored, extra)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// The account's tokens, revoked ones left out: the primary key first, then the
    /// others oldest first. Nothing in them is secret. A derived token whose parent is
    /// gone shows as revoked.
    ///
    /// # Errors
    /// A store failure.
    pub async fn tokens(&self, account: &AccountId) -> Result<Vec<TokenInfo>, Error> {
        self.keys_ready().await?;
        let all = self.store.account_tokens(account).await?;
        // A parent is one of the account's tokens, so the list holds it (a parent missing
        // from it is gone, or another account's: the child is dead either way).
        let find = |id: TokenId| all.iter().find(|t| t.record.id == id);
        let mut tokens: Vec<TokenInfo> = all
            .iter()
            .filter(|t| &t.record.account == account && t.record.revoked_at.is_none())
            .map(|t| self.info_with(t, t.record.parent.and_then(find)))
            .collect();
        // Stable: the store's oldest-first order stays within each kind.
        tokens.sort_by_key(|t| t.kind != TokenKind::Primary);
        Ok(tokens)
    }

    /// One of the account's tokens.
    ///
    /// # Errors
    /// [`Error::TokenNotFound`] (also for another account's or a revoked token), or a
    /// store failure.
    pub async fn token(&self, account: &AccountId, id: TokenId) -> Result<TokenInfo, Error> {
        self.keys_ready().await?;
        let stored = self.owned(account, id).await?;
        self.info(&stored).await
    }

    /// Revokes a token for good. It fails at once, and so do the tokens derived from it;
    /// nothing can make it valid again.
    ///
    /// # Errors
    /// [`Error::TokenNotFound`], [`Error::PrimaryKey`] for the primary key (regenerate it
    /// instead), or a store failure.
    pub async fn revoke(&self, account: &AccountId, id: TokenId) -> Result<(), Error> {
        self.keys_ready().await?;
        self.revoke_as(account, id, RevokeCause::Owner, None).await
    }

    pub(crate) async fn revoke_as(
        &self,
        account: &AccountId,
        id: TokenId,
        cause: RevokeCause,
        client: Option<IpAddr>,
    ) -> Result<(), Error> {
        let now = self.now();
        self.update_token_with(account, id, false, |stored| {
            if stored.record.kind == TokenKind::Primary && cause == RevokeCause::Owner {
                return Err(Error::PrimaryKey);
            }
            let mut record = TokenRecord::clone(&stored.record);
            record.revoked_at = Some(now);
            Ok((record, ()))
        })
        .await?;
        self.audit_from(AuditKind::Revoked { cause }, account, Some(id), client);
        Ok(())
    }

    /// Gives a token a new secret, keeping its id, description, scope and expiry. The old
    /// secret fails from the moment this returns.
    ///
    /// # Errors
    /// As [`Feedkey::refresh_with`].
    pub async fn refresh(&self, account: &AccountId, id: TokenId) -> Result<IssuedToken, Error> {
        self.keys_ready().await?;
        self.refresh_with(account, id, Refresh::immediate()).await
    }

    /// Gives a token a new secret, keeping its id, description, scope and expiry; the old
    /// secret keeps working until `min(now + overlap, expiry)`. After that, and for as
    /// long as the [`RotationPolicy`] keeps it, a use of the old secret is denied as
    /// reuse ([`DenyReason::RetiredSecretReused`](crate::DenyReason::RetiredSecretReused)).
    ///
    /// # Errors
    /// [`Error::TokenNotFound`], [`Error::TokenExpired`], [`Error::DerivedToken`],
    /// [`Error::OverlapTooLong`], [`Error::Lifetime`] when the policy has tightened since,
    /// or a store failure: [`StoreError::Conflict`] when a concurrent renewal of the same
    /// token won (its secret is the one that stands, and nothing was written; call again
    /// to renew that one). A concurrent edit, use or rehash is retried over, never
    /// reported.
    ///
    /// Tokens derived from this one before the refresh stop working when the old secret
    /// does: at once, or when the overlap window closes.
    pub async fn refresh_with(
        &self,
        account: &AccountId,
        id: TokenId,
        refresh: Refresh,
    ) -> Result<IssuedToken, Error> {
        self.keys_ready().await?;
        if refresh.overlap > RotationPolicy::MAX_OVERLAP {
            return Err(Error::OverlapTooLong);
        }
        let now = self.now();
        let mut same_secret = SameSecret::default();
        let (record, _, (token, old_until)) = self
            .update_token_with(account, id, false, |stored| {
                let record = &stored.record;
                same_secret.check(record)?;
                if record.kind == TokenKind::Derived {
                    return Err(Error::DerivedToken);
                }
                if is_expired(record.expires_at, now) {
                    return Err(Error::TokenExpired);
                }
                self.policy
                    .check(now, record.expires_at, record.scope.can_write())?;
                self.with_new_secret(record, record.expires_at, refresh.overlap, now)
            })
            .await?;
        self.audit_event(
            AuditKind::Refreshed {
                old_secret_until: old_until,
            },
            account,
            Some(id),
        );
        Ok(self.after_new_secret(record, token, now).await)
    }

    /// `record` with a fresh secret and the old one retired with `overlap`; also the
    /// token and when the old secret stops working.
    fn with_new_secret(
        &self,
        record: &TokenRecord,
        expires_at: Option<OffsetDateTime>,
        overlap: Duration,
        now: OffsetDateTime,
    ) -> Result<(TokenRecord, (PlainToken, OffsetDateTime)), Error> {
        let (token, secret_hash) = self.mint_for(record.id)?;
        let retired_at = liveness::renewal_time(record, now);
        let mut record = record.clone();
        let mut works_until = now.saturating_add(overlap);
        if let Some(expiry) = expires_at {
            works_until = works_until.min(expiry);
        }
        // A refresh also ends earlier overlaps that would outlast its own: after an
        // immediate refresh no old secret works.
        for earlier in &mut record.retired {
            earlier.works_until = earlier.works_until.min(works_until);
        }
        let retired = RetiredSecret {
            hash: std::mem::replace(&mut record.secret_hash, secret_hash),
            retired_at,
            works_until,
            kept_until: works_until.saturating_add(self.rotation.retired_kept_for()),
        };
        record.retired.insert(0, retired);
        record
            .retired
            .retain(|r| liveness::keep_retired(r, &self.policy, now));
        record.retired.truncate(MAX_RETIRED_SECRETS);
        record.expires_at = expires_at;
        Ok((record, (token, works_until)))
    }

    /// A new secret restarts the idle clock: it has had no chance to be used yet. Best
    /// effort, like every last-used write.
    async fn after_new_secret(
        &self,
        record: TokenRecord,
        token: PlainToken,
        now: OffsetDateTime,
    ) -> IssuedToken {
        let _ = self.store.touch_token(&record.id, now).await;
        // Renewed tokens are never derived: they have no parent to consult.
        IssuedToken {
            token,
            info: self.info_of(record, Some(now), None),
        }
    }

    /// Regenerates the primary key with a new expiry; the old key fails at once, and so do
    /// the tokens derived from it (a key regenerated because it leaked keeps no access
    /// through its children). This is the recovery for a lost primary key.
    ///
    /// # Errors
    /// [`Error::AccountNotFound`], [`Error::Lifetime`], or a store failure
    /// ([`StoreError::Conflict`] when a concurrent regeneration won, as for
    /// [`Feedkey::refresh_with`]).
    pub async fn regenerate_primary(
        &self,
        account: &AccountId,
        expiry: Expiry,
    ) -> Result<IssuedToken, Error> {
        self.keys_ready().await?;
        let now = self.now();
        let expires_at = self.policy.resolve(now, expiry, true)?;
        let primary = self.account_record(account).await?.primary;
        // Even a primary key retired for idleness can be regenerated: the old secret
        // stays dead, the new one works.
        let mut same_secret = SameSecret::default();
        let (record, _, (token, _)) = self
            .update_token_with(account, primary, true, |stored| {
                same_secret.check(&stored.record)?;
                let mut revived = TokenRecord::clone(&stored.record);
                revived.revoked_at = None;
                self.with_new_secret(&revived, expires_at, Duration::ZERO, now)
            })
            .await?;
        self.audit_event(AuditKind::PrimaryRegenerated, account, Some(primary));
        Ok(self.after_new_secret(record, token, now).await)
    }

    /// Edits a token without changing its secret: the description and package list
    /// freely, permissions, feeds and networks only narrower. The result must still meet
    /// the lifetime policy.
    ///
    /// # Errors
    /// [`Error::TokenNotFound`], [`Error::Widens`], [`Error::PrimaryKey`] for a scope
    /// change to the primary key, [`Error::Scope`] or [`Error::Record`] for bad input,
    /// [`Error::Lifetime`], or a store failure.
    pub async fn edit(
        &self,
        account: &AccountId,
        id: TokenId,
        edit: TokenEdit,
    ) -> Result<TokenInfo, Error> {
        self.keys_ready().await?;
        let now = self.now();
        // A derived token's parent, read before the edit, so that nothing can fail once
        // the edit is written (a parent never changes).
        let parent = match self.owned(account, id).await?.record.parent {
            Some(parent) => self.store.token(&parent).await?,
            None => None,
        };
        let (record, stored, ()) = self
            .update_token_with(account, id, false, |stored| {
                Ok((self.edited(&stored.record, &edit, now)?, ()))
            })
            .await?;
        self.audit_event(AuditKind::Edited, account, Some(id));
        Ok(self.info_of(record, stored.last_used_at, parent.as_ref()))
    }

    /// `record` with `edit` applied, if the edit is allowed.
    fn edited(
        &self,
        record: &TokenRecord,
        edit: &TokenEdit,
        now: OffsetDateTime,
    ) -> Result<TokenRecord, Error> {
        let mut record = record.clone();
        let changes_scope = edit.packages.is_some()
            || edit.permissions.is_some()
            || edit.feeds.is_some()
            || edit.networks.is_some();
        if changes_scope && record.kind == TokenKind::Primary {
            return Err(Error::PrimaryKey);
        }
        if let Some(description) = &edit.description {
            check_description(description)?;
            record.description.clone_from(description);
        }
        let scope = &record.scope;
        let permissions = edit.permissions.unwrap_or(scope.permissions());
        if !permissions.is_subset_of(scope.permissions()) {
            return Err(Error::Widens(Widening::Permissions));
        }
        let feeds = edit.feeds.clone().unwrap_or_else(|| scope.feeds().clone());
        if !feeds.is_subset_of(scope.feeds()) {
            return Err(Error::Widens(Widening::Feeds));
        }
        let networks = edit
            .networks
            .clone()
            .unwrap_or_else(|| scope.networks().clone());
        if !networks.is_subset_of(scope.networks()) {
            return Err(Error::Widens(Widening::Networks));
        }
        let packages = edit
            .packages
            .clone()
            .unwrap_or_else(|| scope.packages().clone());
        record.scope = Scope::new(permissions, feeds, packages)?.with_networks(networks)?;
        if record.kind != TokenKind::Derived {
            self.policy
                .check(now, record.expires_at, record.scope.can_write())?;
        }
        Ok(record)
    }

    /// Mints a short-lived child of the token a request presents (a CI pipeline holding a
    /// long-lived key hands each job a key for one package and fifteen minutes). The
    /// child's scope must be provably inside the parent's; its lifetime is capped by the
    /// policy's child cap and by the parent's expiry. At each use the child must pass its
    /// own scope and its parent's current one.
    ///
    /// # Errors
    /// [`Error::Denied`] when the request's token is refused (the account password cannot
    /// derive), [`Error::DerivedToken`] for a derived parent, [`Error::NotCovered`],
    /// [`Error::Lifetime`], [`Error::Record`], or a store failure.
    pub async fn derive(
        &self,
        parent: &Request<'_>,
        child: NewChild,
    ) -> Result<IssuedToken, Error> {
        self.keys_ready().await?;
        let proven = self
            .prove_token(parent)
            .await
            .map_err(|d| Error::Denied(Box::new(d)))?;
        self.derive_from(&proven.stored, proven.secret_set_at, child)
            .await
    }

    /// Mints a child of one of the account's tokens, from the management page. Same
    /// rules as [`Feedkey::derive`].
    ///
    /// # Errors
    /// As [`Feedkey::derive`], with [`Error::TokenNotFound`] for a missing parent.
    pub async fn derive_for(
        &self,
        account: &AccountId,
        parent: TokenId,
        child: NewChild,
    ) -> Result<IssuedToken, Error> {
        self.keys_ready().await?;
        let stored = self.owned(account, parent).await?;
        if stored.record.kind == TokenKind::Derived {
            return Err(Error::DerivedToken);
        }
        // The parent must stand now, by the rule `authorize` uses (a parent is never
        // derived, so it has no parent of its own to consult).
        match liveness::check(&stored, None, &self.policy, self.now()) {
            Ok(()) => {}
            Err(Dead::Expired) => return Err(Error::TokenExpired),
            Err(Dead::Idle) => return Err(Error::TokenIdle),
            Err(Dead::Revoked | Dead::ParentGone | Dead::ParentRenewed) => {
                return Err(Error::TokenNotFound);
            }
        }
        let under = liveness::current_secret_set_at(&stored.record);
        self.derive_from(&stored, under, child).await
    }

    /// Mints a child of `parent`, derived under the parent secret stamped `under` (see
    /// [`TokenRecord::parent_secret_set_at`]).
    async fn derive_from(
        &self,
        parent: &StoredToken,
        under: Option<OffsetDateTime>,
        child: NewChild,
    ) -> Result<IssuedToken, Error> {
        let p = &parent.record;
        if p.kind == TokenKind::Derived {
            return Err(Error::DerivedToken);
        }
        check_description(&child.description)?;
        p.scope.covers(&child.scope)?;
        let now = self.now();
        let expires_at = self
            .policy
            .child_expiry(now, child.lifetime, p.expires_at)?;
        let (id, token, secret_hash) = self.mint()?;
        let record = TokenRecord {
            id,
            account: p.account.clone(),
            kind: TokenKind::Derived,
            description: child.description,
            scope: child.scope,
            secret_hash,
            created_at: now,
            expires_at: Some(expires_at),
            revoked_at: None,
            parent: Some(p.id),
            parent_secret_set_at: under,
            retired: Vec::new(),
            revision: 1,
        };
        self.insert(
            record,
            Some(parent),
            token,
            AuditKind::Derived { parent: p.id },
        )
        .await
    }

    /// The account's tokens that expire within `within` from now, and those already
    /// expired (NuGet warns ten days ahead, and shows the expired ones).
    ///
    /// # Errors
    /// A store failure.
    pub async fn expiring_within(
        &self,
        account: &AccountId,
        within: Duration,
    ) -> Result<Vec<TokenInfo>, Error> {
        self.keys_ready().await?;
        let until = self.now().saturating_add(within);
        Ok(self
            .tokens(account)
            .await?
            .into_iter()
            .filter(|t| t.expires_at.is_some_and(|e| e < until))
            .collect())
    }

    /// Every account's tokens that are still valid but expire within `within`: what a
    /// daily job mails a warning about. Each account's list is also sent to the audit
    /// sink as an [`AuditKind::ExpiringSoon`] event.
    ///
    /// # Errors
    /// A store failure.
    pub async fn all_expiring_within(&self, within: Duration) -> Result<Vec<TokenInfo>, Error> {
        self.keys_ready().await?;
        let now = self.now();
        let expiring = self
            .store
            .tokens_expiring(now, now.saturating_add(within))
            .await?;
        // Each parent read once, however many of its children expire.
        let mut parents: HashMap<TokenId, Option<StoredToken>> = HashMap::new();
        for id in expiring.iter().filter_map(|t| t.record.parent) {
            if let Entry::Vacant(slot) = parents.entry(id) {
                slot.insert(self.store.token(&id).await?);
            }
        }
        let tokens: Vec<TokenInfo> = expiring
            .iter()
            .map(|t| {
                let parent = t.record.parent.and_then(|p| parents.get(&p)?.as_ref());
                self.info_with(t, parent)
            })
            .collect();
        if self.audit.enabled() {
            let mut accounts: Vec<&AccountId> = tokens.iter().map(|t| &t.account).collect();
            accounts.sort();
            accounts.dedup();
            for account in accounts {
                let list = tokens
                    .iter()
                    .filter(|t| &t.account == account)
                    .filter_map(|t| t.expires_at.map(|e| (t.id, e)))
                    .collect();
                self.audit_event(AuditKind::ExpiringSoon { tokens: list }, account, None);
            }
        }
        Ok(tokens)
    }

    /// Revokes for good every token (primary keys included) that the idle policy
    /// retires: unused for longer than [`LifetimePolicy::with_idle_expiry`] allows. Such
    /// tokens are already refused by `authorize`; this makes it final and audits it. Run
    /// it daily. Returns how many were retired.
    ///
    /// [`LifetimePolicy::with_idle_expiry`]: crate::LifetimePolicy::with_idle_expiry
    ///
    /// # Errors
    /// A store failure (tokens retired before it stay retired).
    pub async fn retire_idle(&self) -> Result<u64, Error> {
        self.keys_ready().await?;
        let Some(idle) = self.policy.idle_after() else {
            return Ok(0);
        };
        let now = self.now();
        let mut retired = 0;
        for stored in self
            .store
            .tokens_unused_since(now.saturating_sub(idle))
            .await?
        {
            if !self
                .policy
                .is_idle(stored.record.created_at, stored.last_used_at, now)
            {
                continue;
            }
            match self
                .revoke_as(
                    &stored.record.account,
                    stored.record.id,
                    RevokeCause::Idle,
                    None,
                )
                .await
            {
                Ok(()) => retired += 1,
                // Revoked or deleted meanwhile: nothing left to retire.
                Err(Error::TokenNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(retired)
    }

    /// Deletes the records of tokens revoked more than `older_than` ago. Until then a
    /// revoked token's use is logged as "revoked" rather than "unknown".
    ///
    /// # Errors
    /// A store failure.
    pub async fn purge_revoked(&self, older_than: Duration) -> Result<u64, Error> {
        self.keys_ready().await?;
        let before = self.now().saturating_sub(older_than);
        Ok(self.store.purge_revoked(before).await?)
    }
}
