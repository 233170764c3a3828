//! Expiry: when a token stops working, and the policy that bounds it.

use time::{Duration, OffsetDateTime};

/// When a new token (or a regenerated primary key) should expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Never, where the policy allows it.
    Never,
    /// At this instant.
    At(OffsetDateTime),
    /// This long after it is issued.
    After(Duration),
}

/// Which limit of the [`LifetimePolicy`] an expiry broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LifetimeLimit {
    /// The longest lifetime of any token.
    Any,
    /// The longest lifetime of a token that can push or unlist.
    Write,
    /// The longest lifetime of a derived (child) token.
    Child,
    /// A child may not outlive its parent.
    Parent,
}

/// The latest instant a token may expire: 2262-04-11 23:47:16 UTC, the last whole second
/// that a signed 64-bit count of nanoseconds since 1970 (how the SQL stores keep times)
/// can hold. Every store refuses nothing before it, so every backend accepts the same
/// expiries.
pub const LATEST_EXPIRY: OffsetDateTime = time::macros::datetime!(2262-04-11 23:47:16 UTC);

/// Why an expiry was refused by the [`LifetimePolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LifetimeError {
    /// The policy requires every token to expire.
    #[error("this registry requires an expiry date")]
    ExpiryRequired,
    /// The expiry is not in the future.
    #[error("the expiry is not in the future")]
    NotInFuture,
    /// The expiry is past [`LATEST_EXPIRY`], the last instant every store can hold.
    #[error("the expiry is past {LATEST_EXPIRY}, the latest a token may expire")]
    TooLate,
    /// The expiry is further away than a limit allows.
    #[error("{}", too_long_message(*limit, *max))]
    TooLong {
        /// The limit broken.
        limit: LifetimeLimit,
        /// The longest lifetime that limit allows.
        max: Duration,
    },
}

fn too_long_message(limit: LifetimeLimit, max: Duration) -> String {
    let what = match limit {
        LifetimeLimit::Any => "a token",
        LifetimeLimit::Write => "a token that can write",
        LifetimeLimit::Child => "a derived token",
        LifetimeLimit::Parent => "a derived token (its parent expires first)",
    };
    if max >= Duration::days(1) {
        format!("{what} may live at most {} days", max.whole_days())
    } else {
        format!("{what} may live at most {} minutes", max.whole_minutes())
    }
}

/// How long tokens may live.
///
/// The default allows tokens that never expire, as MyGet does;
/// [`LifetimePolicy::nuget`] is nuget.org's rule (at most 365 days, always set). A separate,
/// tighter cap can apply to tokens that can write (npm caps them at 90 days and leaves
/// read-only ones uncapped), and derived tokens are capped at
/// [`LifetimePolicy::DEFAULT_MAX_CHILD_LIFETIME`] unless configured.
///
/// ```
/// use feedkey::policy::LifetimePolicy;
/// use feedkey::time::Duration;
///
/// // npm's granular tokens: write tokens at most 90 days, read-only ones unlimited.
/// let npm = LifetimePolicy::unlimited().with_max_write_lifetime(Duration::days(90));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifetimePolicy {
    max_lifetime: Option<Duration>,
    max_write_lifetime: Option<Duration>,
    max_child_lifetime: Duration,
    require_expiry: bool,
    idle_after: Option<Duration>,
}

impl Default for LifetimePolicy {
    fn default() -> Self {
        Self::unlimited()
    }
}

impl LifetimePolicy {
    /// The longest a derived token may live unless configured: one hour.
    pub const DEFAULT_MAX_CHILD_LIFETIME: Duration = Duration::hours(1);

    /// Tokens may live for ever (derived ones an hour).
    pub const fn unlimited() -> Self {
        Self {
            max_lifetime: None,
            max_write_lifetime: None,
            max_child_lifetime: Self::DEFAULT_MAX_CHILD_LIFETIME,
            require_expiry: false,
            idle_after: None,
        }
    }

    /// nuget.org's rule: every token expires within 365 days.
    pub const fn nuget() -> Self {
        Self {
            max_lifetime: Some(Duration::days(365)),
            require_expiry: true,
            ..Self::unlimited()
        }
    }

    /// This policy with a longest lifetime for every token.
    #[must_use]
    pub const fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = Some(max);
        self
    }

    /// This policy with a longest lifetime for tokens that can push or unlist. Such tokens
    /// must then expire.
    #[must_use]
    pub const fn with_max_write_lifetime(mut self, max: Duration) -> Self {
        self.max_write_lifetime = Some(max);
        self
    }

    /// This policy with a longest lifetime for derived tokens.
    #[must_use]
    pub const fn with_max_child_lifetime(mut self, max: Duration) -> Self {
        self.max_child_lifetime = max;
        self
    }

    /// This policy, requiring (or not) that every token expire.
    #[must_use]
    pub const fn with_expiry_required(mut self, required: bool) -> Self {
        self.require_expiry = required;
        self
    }

    /// This policy, retiring tokens (the primary key included) unused for `idle`
    /// (nuget.org retires keys unused for 365 days).
    #[must_use]
    pub const fn with_idle_expiry(mut self, idle: Duration) -> Self {
        self.idle_after = Some(idle);
        self
    }

    /// The longest lifetime, if any.
    pub const fn max_lifetime(&self) -> Option<Duration> {
        self.max_lifetime
    }

    /// The longest lifetime of a token that can write, if any.
    pub const fn max_write_lifetime(&self) -> Option<Duration> {
        self.max_write_lifetime
    }

    /// The longest lifetime of a derived token.
    pub const fn max_child_lifetime(&self) -> Duration {
        self.max_child_lifetime
    }

    /// How long a token may go unused before it is retired, if the policy retires idle
    /// tokens.
    pub const fn idle_after(&self) -> Option<Duration> {
        self.idle_after
    }

    /// Whether every token (or, with `writes`, every token that can write) must expire.
    pub const fn expiry_required(&self, writes: bool) -> bool {
        self.require_expiry
            || self.max_lifetime.is_some()
            || (writes && self.max_write_lifetime.is_some())
    }

    /// The instant `expiry` resolves to at `now` for a token that can (or cannot) write,
    /// if the policy allows it.
    ///
    /// # Errors
    /// [`LifetimeError`] naming the rule the expiry breaks.
    pub fn resolve(
        &self,
        now: OffsetDateTime,
        expiry: Expiry,
        writes: bool,
    ) -> Result<Option<OffsetDateTime>, LifetimeError> {
        let at = match expiry {
            Expiry::Never => None,
            Expiry::At(at) => Some(at),
            Expiry::After(d) => Some(now.saturating_add(d)),
        };
        self.check(now, at, writes)?;
        Ok(at)
    }

    /// Checks an instant already set (at refresh or edit) against the policy at `now`.
    ///
    /// # Errors
    /// [`LifetimeError`] naming the rule the expiry breaks.
    pub fn check(
        &self,
        now: OffsetDateTime,
        at: Option<OffsetDateTime>,
        writes: bool,
    ) -> Result<(), LifetimeError> {
        let Some(at) = at else {
            return if self.expiry_required(writes) {
                Err(LifetimeError::ExpiryRequired)
            } else {
                Ok(())
            };
        };
        if at <= now {
            return Err(LifetimeError::NotInFuture);
        }
        if at > LATEST_EXPIRY {
            return Err(LifetimeError::TooLate);
        }
        let limits = [
            (self.max_lifetime, LifetimeLimit::Any),
            (
                self.max_write_lifetime.filter(|_| writes),
                LifetimeLimit::Write,
            ),
        ];
        for (max, limit) in limits {
            if let Some(max) = max.filter(|max| at - now > *max) {
                return Err(LifetimeError::TooLong { limit, max });
            }
        }
        Ok(())
    }

    /// The expiry of a child asking for `lifetime` at `now` under a parent expiring at
    /// `parent_expires`.
    ///
    /// # Errors
    /// [`LifetimeError`] naming the limit: the child cap, or the parent's expiry.
    pub fn child_expiry(
        &self,
        now: OffsetDateTime,
        lifetime: Duration,
        parent_expires: Option<OffsetDateTime>,
    ) -> Result<OffsetDateTime, LifetimeError> {
        if lifetime <= Duration::ZERO {
            return Err(LifetimeError::NotInFuture);
        }
        if lifetime > self.max_child_lifetime {
            return Err(LifetimeError::TooLong {
                limit: LifetimeLimit::Child,
                max: self.max_child_lifetime,
            });
        }
        let at = now.saturating_add(lifetime);
        if at > LATEST_EXPIRY {
            return Err(LifetimeError::TooLate);
        }
        match parent_expires {
            Some(parent) if at > parent => Err(LifetimeError::TooLong {
                limit: LifetimeLimit::Parent,
                max: parent - now,
            }),
            _ => Ok(at),
        }
    }

    /// Whether a token last used at `last_used` (or, never used, created at `created`) is
    /// idle at `now`.
    pub(crate) fn is_idle(
        &self,
        created: OffsetDateTime,
        last_used: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> bool {
        self.idle_after
            .is_some_and(|idle| now - last_used.unwrap_or(created).max(created) >= idle)
    }
}

/// Whether a token expiring at `expires_at` is expired at `now`.
pub(crate) fn is_expired(expires_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    expires_at.is_some_and(|at| now >= at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    #[test]
    fn the_nuget_policy_caps_at_365_days_and_requires_an_expiry() {
        let p = LifetimePolicy::nuget();
        assert_eq!(
            p.resolve(NOW, Expiry::After(Duration::days(365)), false),
            Ok(Some(NOW + Duration::days(365)))
        );
        assert_eq!(
            p.resolve(NOW, Expiry::After(Duration::days(366)), false),
            Err(LifetimeError::TooLong {
                limit: LifetimeLimit::Any,
                max: Duration::days(365)
            })
        );
        assert_eq!(
            p.resolve(NOW, Expiry::Never, false),
            Err(LifetimeError::ExpiryRequired)
        );
    }

    #[test]
    fn the_default_policy_allows_for_ever_but_not_the_past() {
        let p = LifetimePolicy::default();
        assert_eq!(p.resolve(NOW, Expiry::Never, false), Ok(None));
        assert_eq!(
            p.resolve(NOW, Expiry::At(NOW), false),
            Err(LifetimeError::NotInFuture)
        );
    }

    #[test]
    fn write_tokens_have_their_own_cap_and_must_expire() {
        let p = LifetimePolicy::unlimited().with_max_write_lifetime(Duration::days(90));
        assert_eq!(p.resolve(NOW, Expiry::Never, false), Ok(None));
        assert_eq!(
            p.resolve(NOW, Expiry::Never, true),
            Err(LifetimeError::ExpiryRequired)
        );
        assert_eq!(
            p.resolve(NOW, Expiry::After(Duration::days(91)), true),
            Err(LifetimeError::TooLong {
                limit: LifetimeLimit::Write,
                max: Duration::days(90)
            })
        );
        assert!(
            p.resolve(NOW, Expiry::After(Duration::days(91)), false)
                .is_ok()
        );
        let e = p
            .resolve(NOW, Expiry::After(Duration::days(91)), true)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a token that can write may live at most 90 days"
        );
    }

    #[test]
    fn children_are_capped_by_policy_and_parent() {
        let p = LifetimePolicy::default();
        assert_eq!(
            p.child_expiry(NOW, Duration::minutes(15), None),
            Ok(NOW + Duration::minutes(15))
        );
        assert_eq!(
            p.child_expiry(NOW, Duration::hours(2), None),
            Err(LifetimeError::TooLong {
                limit: LifetimeLimit::Child,
                max: Duration::hours(1)
            })
        );
        // The cap and the parent's expiry are inclusive.
        assert_eq!(
            p.child_expiry(NOW, Duration::hours(1), None),
            Ok(NOW + Duration::hours(1))
        );
        assert_eq!(
            p.child_expiry(
                NOW,
                Duration::minutes(10),
                Some(NOW + Duration::minutes(10))
            ),
            Ok(NOW + Duration::minutes(10))
        );
        assert_eq!(
            p.child_expiry(NOW, Duration::minutes(5), Some(NOW + Duration::minutes(10))),
            Ok(NOW + Duration::minutes(5))
        );
        assert!(matches!(
            p.child_expiry(
                NOW,
                Duration::minutes(15),
                Some(NOW + Duration::minutes(10))
            ),
            Err(LifetimeError::TooLong {
                limit: LifetimeLimit::Parent,
                ..
            })
        ));
    }

    #[test]
    fn idleness_counts_from_the_last_use_or_the_creation() {
        let p = LifetimePolicy::default().with_idle_expiry(Duration::days(30));
        assert!(!p.is_idle(NOW, None, NOW + Duration::days(29)));
        assert!(p.is_idle(NOW, None, NOW + Duration::days(30)));
        assert!(!p.is_idle(
            NOW,
            Some(NOW + Duration::days(20)),
            NOW + Duration::days(49)
        ));
        assert!(p.is_idle(
            NOW,
            Some(NOW + Duration::days(20)),
            NOW + Duration::days(50)
        ));
        assert!(!LifetimePolicy::default().is_idle(NOW, None, NOW + Duration::days(9999)));
    }

    #[test]
    fn an_expiry_past_what_every_store_holds_is_refused_up_front() {
        let p = LifetimePolicy::default();
        let cases = [
            (Expiry::At(LATEST_EXPIRY), Ok(Some(LATEST_EXPIRY))),
            (
                Expiry::At(LATEST_EXPIRY + Duration::seconds(1)),
                Err(LifetimeError::TooLate),
            ),
            (
                Expiry::At(datetime!(9999-12-31 23:59 UTC)),
                Err(LifetimeError::TooLate),
            ),
            (
                Expiry::After(Duration::days(365 * 300)),
                Err(LifetimeError::TooLate),
            ),
            (Expiry::After(Duration::MAX), Err(LifetimeError::TooLate)),
        ];
        for (expiry, want) in cases {
            assert_eq!(p.resolve(NOW, expiry, false), want, "{expiry:?}");
        }
        // Every store can hold the latest expiry: it fits a signed 64-bit nanosecond count.
        assert!(i64::try_from(LATEST_EXPIRY.unix_timestamp_nanos()).is_ok());
        let late = LATEST_EXPIRY - Duration::minutes(30);
        assert_eq!(
            p.child_expiry(late, Duration::hours(1), None),
            Err(LifetimeError::TooLate)
        );
        assert_eq!(
            p.child_expiry(late, Duration::minutes(30), None),
            Ok(LATEST_EXPIRY)
        );
    }

    #[test]
    fn expiry_is_inclusive_of_its_instant() {
        assert!(!is_expired(Some(NOW), NOW - Duration::nanoseconds(1)));
        assert!(is_expired(Some(NOW), NOW));
        assert!(!is_expired(None, NOW));
    }

    #[test]
    fn manual_clocks_share_their_time() {
        let a = ManualClock::new(NOW);
        let b = a.clone();
        a.advance(Duration::days(1));
        assert_eq!(b.now(), NOW + Duration::days(1));
    }
}
