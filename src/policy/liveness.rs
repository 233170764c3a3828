//! When a token is alive, and from where it may act: the two rules every path asks.
//!
//! `authorize`, `authenticate`, `derive`, `derive_for`, `token`, `tokens`,
//! `expiring_within` and `all_expiring_within` all decide a token's standing through
//! [`check`], and every path that lets a token act asks [`may_act_from`]; neither rule is
//! written down anywhere else.
//!
//! Over 500 lines because the table tests of both rules sit beside them (about 300 lines).

use std::net::IpAddr;

use time::OffsetDateTime;

use crate::policy::lifetime::{LifetimePolicy, is_expired};
use crate::record::{StoredToken, TokenRecord, TokenStatus};
use crate::secret::MAX_RETIRED_SECRETS;

/// Why a token does not work now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dead {
    /// It was revoked.
    Revoked,
    /// Its expiry has passed.
    Expired,
    /// It went unused for longer than the idle policy allows.
    Idle,
    /// A derived token whose parent is revoked, expired, idle, gone, or another
    /// account's.
    ParentGone,
    /// A derived token whose parent was given a new secret (refreshed, or regenerated as
    /// a primary key) after the child was derived, and whose overlap window, if any, has
    /// closed: a key renewed because it leaked takes its children with it.
    ParentRenewed,
    /// Its account is disabled; it works again when the account is enabled.
    Suspended,
}

impl Dead {
    /// How a "my tokens" page shows it. A derived token whose parent is gone or renewed
    /// shows as revoked: nothing can make it work again.
    pub(crate) fn status(self) -> TokenStatus {
        match self {
            Dead::Revoked | Dead::ParentGone | Dead::ParentRenewed => TokenStatus::Revoked,
            Dead::Expired => TokenStatus::Expired,
            Dead::Idle => TokenStatus::Idle,
            Dead::Suspended => TokenStatus::Suspended,
        }
    }
}

/// Whether `token` is alive at `now`: not revoked, not expired, not idle, not suspended
/// (its account disabled), and, for a
/// derived token, its parent (`parent`, as looked up by the token's `parent` id: `None`
/// when missing) alive in the same sense, of the same account, and not renewed since the
/// child was derived. Checked in this order, so the first reason found is the token's
/// own.
pub(crate) fn check(
    token: &StoredToken,
    parent: Option<&StoredToken>,
    policy: &LifetimePolicy,
    now: OffsetDateTime,
) -> Result<(), Dead> {
    own(token, policy, now)?;
    let record = &token.record;
    let Some(parent_id) = record.parent else {
        return Ok(());
    };
    let parent = parent
        .filter(|p| p.record.id == parent_id && p.record.account == record.account)
        .ok_or(Dead::ParentGone)?;
    // Parents are never derived themselves, so their own state is the whole of it.
    own(parent, policy, now).map_err(|_| Dead::ParentGone)?;
    if parent.record.parent.is_some() {
        return Err(Dead::ParentGone);
    }
    if renewed_since(&parent.record, record.parent_secret_set_at, now) {
        return Err(Dead::ParentRenewed);
    }
    Ok(())
}

/// The token's status at `now`, by [`check`].
pub(crate) fn status(
    token: &StoredToken,
    parent: Option<&StoredToken>,
    policy: &LifetimePolicy,
    now: OffsetDateTime,
) -> TokenStatus {
    match check(token, parent, policy, now) {
        Ok(()) => TokenStatus::Active,
        Err(dead) => dead.status(),
    }
}

/// The token's own state: revoked, expired, idle, suspended (the ends that last first).
fn own(token: &StoredToken, policy: &LifetimePolicy, now: OffsetDateTime) -> Result<(), Dead> {
    let r = &token.record;
    if r.revoked_at.is_some() {
        return Err(Dead::Revoked);
    }
    if is_expired(r.expires_at, now) {
        return Err(Dead::Expired);
    }
    if policy.is_idle(r.created_at, token.last_used_at, now) {
        return Err(Dead::Idle);
    }
    if r.suspended_at.is_some() {
        return Err(Dead::Suspended);
    }
    Ok(())
}

/// Whether `parent` was given a new secret after the one set at `derived_under` (when the
/// child was derived; `None`: the parent's first secret) and that renewal's overlap
/// window has closed at `now`. Only the parent's own renewal stamps are compared, which
/// strictly increase (see [`renewal_time`]), never clocks of different processes: a
/// child derived while a renewal was under way, or on a server whose clock runs ahead,
/// is still ended by it.
///
/// A parent whose retired-secret history is full back past that secret may have lost
/// the entry that tells: it counts as renewed (the safe answer). Entries dropped for age
/// are kept while a child could live ([`keep_retired`]).
fn renewed_since(
    parent: &TokenRecord,
    derived_under: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> bool {
    let later = |r: &&crate::secret::RetiredSecret| derived_under.is_none_or(|g| r.retired_at > g);
    let closed = parent
        .retired
        .iter()
        .filter(later)
        .any(|r| now >= r.works_until);
    let history_lost = parent.retired.len() >= MAX_RETIRED_SECRETS
        && parent.retired.last().is_some_and(|r| later(&r));
    closed || history_lost
}

/// When a renewal of `record`'s secret at `now` is stamped: `now`, or just after its last
/// renewal when the clock has not moved on (or went back), so that each renewal of a
/// token is stamped later than the one before.
pub(crate) fn renewal_time(record: &TokenRecord, now: OffsetDateTime) -> OffsetDateTime {
    match record.retired.first() {
        Some(last) => now.max(
            last.retired_at
                .saturating_add(time::Duration::nanoseconds(1)),
        ),
        None => now,
    }
}

/// The stamp of `record`'s current secret: when it was set by a renewal (the newest
/// retired secret's `retired_at`), or `None` for the secret it was issued with. A child
/// derived under this secret records it as [`TokenRecord::parent_secret_set_at`].
pub(crate) fn current_secret_set_at(record: &TokenRecord) -> Option<OffsetDateTime> {
    record.retired.first().map(|r| r.retired_at)
}

/// The stamp of the retired secret in slot `slot` of `record` (the secret that renewal
/// `slot` retired was set by renewal `slot + 1`, or at issue when there is none).
pub(crate) fn retired_secret_set_at(record: &TokenRecord, slot: usize) -> Option<OffsetDateTime> {
    record
        .retired
        .get(slot.saturating_add(1))
        .map(|r| r.retired_at)
}

/// Whether a retired secret must still be kept at `now`: for reuse detection until its
/// `kept_until`, and for as long as a child derived before its retirement may live, so
/// that the renewal that ended the child is never forgotten while the child could be
/// presented.
pub(crate) fn keep_retired(
    retired: &crate::secret::RetiredSecret,
    policy: &LifetimePolicy,
    now: OffsetDateTime,
) -> bool {
    retired.kept_until > now
        || retired
            .retired_at
            .saturating_add(policy.max_child_lifetime())
            > now
}

/// Whether a token may act from `client`: its own networks allow the address and, for a
/// derived token, so do its parent's current ones.
pub(crate) fn may_act_from(
    token: &TokenRecord,
    parent: Option<&TokenRecord>,
    client: Option<IpAddr>,
) -> bool {
    token.scope.networks().allows(client)
        && parent.is_none_or(|p| p.scope.networks().allows(client))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::sync::Arc;

    use time::Duration;
    use time::macros::datetime;

    use super::*;
    use crate::account::AccountId;
    use crate::record::TokenKind;
    use crate::scope::Networks;
    use crate::scope::Scope;
    use crate::secret::RetiredSecret;
    use crate::secret::{TokenHasher, TokenKey};
    use crate::token::TokenId;

    const T0: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn record(id: u8, kind: TokenKind, parent: Option<u8>) -> TokenRecord {
        let hasher = TokenHasher::new(TokenKey::new(1, &[7; 32]), Vec::new()).unwrap();
        let token_id = TokenId::from_bytes([id; 16]);
        TokenRecord {
            id: token_id,
            account: AccountId::new("alice").unwrap(),
            kind,
            description: compact_str::CompactString::const_new(""),
            scope: Scope::full(),
            secret_hash: hasher.hash(&token_id, &[0; 32]),
            created_at: T0,
            expires_at: None,
            revoked_at: None,
            parent: parent.map(|p| TokenId::from_bytes([p; 16])),
            parent_secret_set_at: None,
            suspended_at: None,
            retired: Vec::new(),
            revision: 1,
        }
    }

    fn stored(record: TokenRecord, last_used_at: Option<OffsetDateTime>) -> StoredToken {
        StoredToken {
            record: Arc::new(record),
            last_used_at,
        }
    }

    fn retired(at: OffsetDateTime, works_for: Duration) -> RetiredSecret {
        let r = record(9, TokenKind::Scoped, None);
        RetiredSecret {
            hash: r.secret_hash,
            retired_at: at,
            works_until: at + works_for,
            kept_until: at + works_for + Duration::days(30),
        }
    }

    #[test]
    fn the_liveness_table() {
        let policy = LifetimePolicy::default().with_idle_expiry(Duration::days(90));
        let later = T0 + Duration::hours(1);
        let parent = record(1, TokenKind::Scoped, None);
        let mut child = record(2, TokenKind::Derived, Some(1));
        child.created_at = T0 + Duration::minutes(5);
        let change = |r: &TokenRecord, f: &dyn Fn(&mut TokenRecord)| {
            let mut r = r.clone();
            f(&mut r);
            r
        };
        let other_account = change(&parent, &|r| r.account = AccountId::new("bob").unwrap());
        let revoked = change(&parent, &|r| r.revoked_at = Some(T0));
        let expired = change(&parent, &|r| r.expires_at = Some(later));
        let renewed = change(&parent, &|r| {
            r.retired = vec![retired(later - Duration::minutes(1), Duration::ZERO)]
        });
        let renewed_before = change(&parent, &|r| r.retired = vec![retired(T0, Duration::ZERO)]);
        // A child derived under the secret that renewal set.
        let younger_child = change(&child, &|r| r.parent_secret_set_at = Some(T0));
        let overlapping = change(&parent, &|r| {
            r.retired = vec![retired(later - Duration::minutes(1), Duration::minutes(10))]
        });
        let full_history = change(&parent, &|r| {
            r.retired = (1..=4)
                .map(|i| retired(later - Duration::minutes(i), Duration::days(1)))
                .collect();
        });
        let derived_parent = change(&parent, &|r| r.parent = Some(TokenId::from_bytes([3; 16])));
        let suspended = change(&parent, &|r| r.suspended_at = Some(T0));
        type Case = (
            &'static str,
            TokenRecord,
            Option<OffsetDateTime>,
            Option<TokenRecord>,
            Result<(), Dead>,
        );
        let cases: Vec<Case> = vec![
            ("a fresh token", parent.clone(), None, None, Ok(())),
            ("revoked", revoked.clone(), None, None, Err(Dead::Revoked)),
            (
                "expired at its instant",
                expired.clone(),
                None,
                None,
                Err(Dead::Expired),
            ),
            (
                "a child of a live parent",
                child.clone(),
                None,
                Some(parent.clone()),
                Ok(()),
            ),
            (
                "a child whose parent is missing",
                child.clone(),
                None,
                None,
                Err(Dead::ParentGone),
            ),
            (
                "a child of another account's token",
                child.clone(),
                None,
                Some(other_account),
                Err(Dead::ParentGone),
            ),
            (
                "a child of a revoked parent",
                child.clone(),
                None,
                Some(revoked),
                Err(Dead::ParentGone),
            ),
            (
                "a child of an expired parent",
                child.clone(),
                None,
                Some(expired),
                Err(Dead::ParentGone),
            ),
            (
                "a child of a derived parent",
                child.clone(),
                None,
                Some(derived_parent),
                Err(Dead::ParentGone),
            ),
            (
                "a child of a parent renewed after it",
                child.clone(),
                None,
                Some(renewed),
                Err(Dead::ParentRenewed),
            ),
            (
                "a child derived before the parent's renewal",
                child.clone(),
                None,
                Some(renewed_before.clone()),
                Err(Dead::ParentRenewed),
            ),
            (
                "a child derived after the parent's renewal",
                younger_child.clone(),
                None,
                Some(renewed_before),
                Ok(()),
            ),
            (
                "a child inside its parent's overlap window",
                child.clone(),
                None,
                Some(overlapping.clone()),
                Ok(()),
            ),
            (
                "a child of a parent whose history is full",
                child.clone(),
                None,
                Some(full_history),
                Err(Dead::ParentRenewed),
            ),
            (
                "suspended (its account disabled)",
                suspended.clone(),
                None,
                None,
                Err(Dead::Suspended),
            ),
            (
                "suspended and revoked: the revocation, which lasts",
                change(&suspended, &|r| r.revoked_at = Some(T0)),
                None,
                None,
                Err(Dead::Revoked),
            ),
            (
                "suspended and expired: the expiry, which lasts",
                change(&suspended, &|r| r.expires_at = Some(later)),
                None,
                None,
                Err(Dead::Expired),
            ),
            (
                "a live child of a suspended parent",
                child.clone(),
                None,
                Some(suspended.clone()),
                Err(Dead::ParentGone),
            ),
            (
                "a suspended child of a live parent",
                change(&child, &|r| r.suspended_at = Some(T0)),
                None,
                Some(parent.clone()),
                Err(Dead::Suspended),
            ),
            (
                "a revoked child of a live parent",
                change(&child, &|r| r.revoked_at = Some(T0)),
                None,
                Some(parent.clone()),
                Err(Dead::Revoked),
            ),
        ];
        for (name, token, used, parent, want) in cases {
            let token = stored(token, used);
            let parent = parent.map(|p| stored(p, None));
            assert_eq!(
                check(&token, parent.as_ref(), &policy, later),
                want,
                "{name}"
            );
        }
        // Idleness, for the token and for its parent.
        let idle_at = T0 + Duration::days(90);
        let fresh = stored(parent.clone(), None);
        assert_eq!(check(&fresh, None, &policy, idle_at), Err(Dead::Idle));
        let used = stored(parent.clone(), Some(T0 + Duration::days(1)));
        assert_eq!(check(&used, None, &policy, idle_at), Ok(()));
        let mut long_child = child.clone();
        long_child.created_at = idle_at - Duration::minutes(1);
        let long_child = stored(long_child, None);
        assert_eq!(
            check(&long_child, Some(&fresh), &policy, idle_at),
            Err(Dead::ParentGone)
        );
        // The overlap window closes for the children too.
        let overlapping = stored(overlapping, None);
        let child = stored(child, None);
        // (renewed a minute before `later`, with ten minutes of overlap)
        let closes = later + Duration::minutes(9);
        let just_before = closes - Duration::nanoseconds(1);
        assert_eq!(
            check(&child, Some(&overlapping), &policy, just_before),
            Ok(())
        );
        assert_eq!(
            check(&child, Some(&overlapping), &policy, closes),
            Err(Dead::ParentRenewed)
        );
    }

    #[test]
    fn statuses_follow_the_rule() {
        let table = [
            (Dead::Revoked, TokenStatus::Revoked),
            (Dead::Expired, TokenStatus::Expired),
            (Dead::Idle, TokenStatus::Idle),
            (Dead::ParentGone, TokenStatus::Revoked),
            (Dead::ParentRenewed, TokenStatus::Revoked),
            (Dead::Suspended, TokenStatus::Suspended),
        ];
        for (dead, status) in table {
            assert_eq!(dead.status(), status, "{dead:?}");
        }
    }

    #[test]
    fn renewals_are_ordered_by_their_own_stamps_not_by_clocks() {
        let policy = LifetimePolicy::default();
        let mut parent = record(1, TokenKind::Scoped, None);
        let mut child = record(2, TokenKind::Derived, Some(1));
        // Derived under the first secret, by a server whose clock runs an hour ahead.
        child.created_at = T0 + Duration::hours(1);
        child.parent_secret_set_at = current_secret_set_at(&parent);
        // Renewed at the same instant, and again with the clock gone back: each stamp
        // is later than the last all the same.
        let first = renewal_time(&parent, T0);
        parent.retired.insert(0, retired(first, Duration::ZERO));
        let second = renewal_time(&parent, T0 - Duration::seconds(5));
        assert!(second > first);
        let (child, parent) = (stored(child, None), stored(parent, None));
        assert_eq!(
            check(&child, Some(&parent), &policy, T0),
            Err(Dead::ParentRenewed)
        );
        // A child derived under the renewed secret, at that same instant, lives.
        let mut young = record(3, TokenKind::Derived, Some(1));
        young.parent_secret_set_at = current_secret_set_at(&parent.record);
        assert_eq!(
            check(&stored(young, None), Some(&parent), &policy, T0),
            Ok(())
        );
    }

    #[test]
    fn a_child_derived_with_a_retired_secret_lives_until_its_window_closes() {
        let policy = LifetimePolicy::default();
        let mut parent = record(1, TokenKind::Scoped, None);
        parent.retired = vec![
            retired(T0 + Duration::minutes(2), Duration::minutes(10)),
            retired(T0 + Duration::minutes(1), Duration::ZERO),
        ];
        // Presented the secret in slot 0 (set by the renewal in slot 1).
        let mut child = record(2, TokenKind::Derived, Some(1));
        child.parent_secret_set_at = retired_secret_set_at(&parent, 0);
        assert_eq!(child.parent_secret_set_at, Some(T0 + Duration::minutes(1)));
        let (child, parent) = (stored(child, None), stored(parent, None));
        let closes = T0 + Duration::minutes(12);
        let before = closes - Duration::nanoseconds(1);
        assert_eq!(check(&child, Some(&parent), &policy, before), Ok(()));
        assert_eq!(
            check(&child, Some(&parent), &policy, closes),
            Err(Dead::ParentRenewed)
        );
    }

    #[test]
    fn retired_secrets_are_kept_while_a_child_could_need_them() {
        let policy = LifetimePolicy::default();
        let mut r = retired(T0, Duration::ZERO);
        r.kept_until = T0;
        assert!(keep_retired(&r, &policy, T0 + Duration::minutes(59)));
        assert!(!keep_retired(&r, &policy, T0 + Duration::hours(1)));
        r.kept_until = T0 + Duration::days(30);
        assert!(keep_retired(&r, &policy, T0 + Duration::days(29)));
        // Kept up to, not at, its `kept_until` (reuse is told apart until then).
        assert!(!keep_retired(&r, &policy, T0 + Duration::days(30)));
    }

    #[test]
    fn a_token_acts_only_where_it_and_its_parent_allow() {
        let everywhere = record(1, TokenKind::Scoped, None);
        let mut office = record(2, TokenKind::Scoped, None);
        office.scope = Scope::full().within(Networks::only(["10.0.0.0/8"]).unwrap());
        let inside: IpAddr = "10.1.2.3".parse().unwrap();
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        let table = [
            (&everywhere, None, Some(outside), true),
            (&everywhere, None, None, true),
            (&office, None, Some(inside), true),
            (&office, None, Some(outside), false),
            (&office, None, None, false),
            (&everywhere, Some(&office), Some(inside), true),
            (&everywhere, Some(&office), Some(outside), false),
            (&office, Some(&everywhere), Some(outside), false),
        ];
        for (i, (token, parent, client, want)) in table.into_iter().enumerate() {
            assert_eq!(may_act_from(token, parent, client), want, "case {i}");
        }
    }
}
