//! Rotation: how long a refreshed-away secret keeps working, and how long it is
//! remembered afterwards so that its reuse can be caught.

use time::{Duration, OffsetDateTime};

use crate::secret::RetiredSecret;

/// What presenting a retired secret proves at a given time: the rule of refresh windows
/// and reuse, decided by [`retired_use`] only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetiredUse {
    /// Inside its overlap window: it still works, as the token.
    Works,
    /// After the window, while remembered: a reuse, treated as a leak.
    Reuse,
    /// Forgotten: no different from a wrong secret.
    Forgotten,
}

/// A retired secret works until `works_until` (exclusive), is a reuse until `kept_until`
/// (exclusive), and is forgotten from then on.
pub(crate) fn retired_use(retired: &RetiredSecret, now: OffsetDateTime) -> RetiredUse {
    if now < retired.works_until {
        RetiredUse::Works
    } else if now < retired.kept_until {
        RetiredUse::Reuse
    } else {
        RetiredUse::Forgotten
    }
}

/// What happens to a secret a refresh replaces.
///
/// By default the old secret dies at once (nuget.org) and is remembered for 30 days, so
/// that a later use of it is denied as [`DenyReason::RetiredSecretReused`] (and audited)
/// rather than as a plain wrong secret. With [`RotationPolicy::revoke_on_reuse`] such a
/// use also revokes the token: the old secret has leaked, so the new one may have too.
///
/// [`DenyReason::RetiredSecretReused`]: crate::DenyReason::RetiredSecretReused
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    keep_retired_for: Duration,
    revoke_on_reuse: bool,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            keep_retired_for: Self::DEFAULT_KEEP_RETIRED_FOR,
            revoke_on_reuse: false,
        }
    }
}

impl RotationPolicy {
    /// How long a retired secret is remembered after it stops working, by default.
    pub const DEFAULT_KEEP_RETIRED_FOR: Duration = Duration::days(30);
    /// The longest a retired secret may be remembered.
    pub const MAX_KEEP_RETIRED_FOR: Duration = Duration::days(366);
    /// The longest overlap a refresh may ask for.
    pub const MAX_OVERLAP: Duration = Duration::days(30);

    /// Detect the reuse of retired secrets for `keep` after they stop working (zero:
    /// detect no reuse), at most [`Self::MAX_KEEP_RETIRED_FOR`]. A retired secret's hash
    /// may stay in the record a little longer, for as long as a token derived before its
    /// retirement could live ([`LifetimePolicy::max_child_lifetime`]), so that the
    /// renewal that ended such a child is not forgotten; a use of it then is denied as a
    /// wrong secret, not as reuse.
    ///
    /// [`LifetimePolicy::max_child_lifetime`]: crate::LifetimePolicy::max_child_lifetime
    #[must_use]
    pub fn keep_retired_for(mut self, keep: Duration) -> Self {
        self.keep_retired_for = keep.clamp(Duration::ZERO, Self::MAX_KEEP_RETIRED_FOR);
        self
    }

    /// Revoke a token when one of its retired secrets is used after its overlap window.
    #[must_use]
    pub fn revoke_on_reuse(mut self, revoke: bool) -> Self {
        self.revoke_on_reuse = revoke;
        self
    }

    /// How long retired secrets are remembered after they stop working.
    pub fn retired_kept_for(&self) -> Duration {
        self.keep_retired_for
    }

    /// Whether a reuse revokes the token.
    pub fn revokes_on_reuse(&self) -> bool {
        self.revoke_on_reuse
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{TokenHasher, TokenKey};
    use crate::token::TokenId;
    use time::macros::datetime;

    #[test]
    fn the_retired_secret_table() {
        let retired_at = datetime!(2026-01-01 00:00 UTC);
        let hasher = TokenHasher::new(TokenKey::new(1, &[1; 32]), Vec::new()).unwrap();
        let secret = RetiredSecret {
            hash: hasher.hash(&TokenId::from_bytes([1; 16]), &[2; 32]),
            retired_at,
            works_until: retired_at + Duration::minutes(10),
            kept_until: retired_at + Duration::days(30),
        };
        let ns = Duration::nanoseconds(1);
        for (at, expected) in [
            (retired_at, RetiredUse::Works),
            (secret.works_until - ns, RetiredUse::Works),
            (secret.works_until, RetiredUse::Reuse),
            (secret.kept_until - ns, RetiredUse::Reuse),
            (secret.kept_until, RetiredUse::Forgotten),
            (
                secret.kept_until + Duration::days(400),
                RetiredUse::Forgotten,
            ),
        ] {
            assert_eq!(retired_use(&secret, at), expected, "at {at}");
        }
        // Without overlap it never works, and without retention it is forgotten at once.
        let mut bare = secret.clone();
        bare.works_until = retired_at;
        bare.kept_until = retired_at;
        assert_eq!(retired_use(&bare, retired_at), RetiredUse::Forgotten);
    }
}
