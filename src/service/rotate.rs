//! Rotation: refreshing a token's secret (with an optional overlap) and regenerating the
//! primary key; a renewal that loses a race says so.

use time::{Duration, OffsetDateTime};

use crate::account::AccountId;
use crate::audit::AuditKind;
use crate::error::Error;
use crate::policy::lifetime::{Expiry, is_expired};
use crate::policy::liveness;
use crate::policy::rotation::RotationPolicy;
use crate::record::TokenRecord;
use crate::secret::{MAX_RETIRED_SECRETS, RetiredSecret};
use crate::service::Feedkey;
use crate::store::{StoreError, TokenStore};
use crate::token::{PlainToken, TokenId};

use super::IssuedToken;

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

impl<S: TokenStore> Feedkey<S> {
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
                if record.kind.has_parent() {
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
}
