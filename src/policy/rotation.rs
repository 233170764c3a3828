//! Rotation: how long a refreshed-away secret keeps working, and how long it is
//! remembered afterwards so that its reuse can be caught.

use time::Duration;

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
