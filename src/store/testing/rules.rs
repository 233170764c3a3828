//! The rules the audit found checked in several places that disagreed: whether a token is
//! alive (its own state and its parent's), from where it may act, what a refresh that
//! loses a race returns, and which expiries are accepted. Each is asked through every
//! public entry point, on every backend.
//!
//! Over 600 lines because each rule's checks read best beside each other, one rule a
//! section, as the audit listed them.

use std::net::IpAddr;
use std::sync::Arc;

use crate::time::Duration;
use crate::{
    Action, DenyReason, Error, Expiry, Feedkey, LATEST_EXPIRY, LifetimeError, Networks, NewChild,
    NewToken, Refresh, Request, Scope, StoreError, Target, TokenEdit, TokenId, TokenStatus,
    TokenStore,
};

use super::{Backend, PUSH, START, api_key, ci_scope, feedkey_on, key};

const OUTSIDE: &str = "192.0.2.1";
const INSIDE: &str = "10.1.2.3";

fn from<'a>(token: &'a str, addr: &str) -> Request<'a> {
    api_key(token).with_client_addr(addr.parse::<IpAddr>().unwrap())
}

fn job() -> NewChild {
    NewChild::new("build 1", ci_scope(), Duration::minutes(30))
}

/// Every way a token's standing is seen: what `authorize` and `authenticate` answer, and
/// the status `token`, `tokens` and `expiring_within` show.
async fn standing<S: TokenStore>(
    keys: &Feedkey<S>,
    account: &crate::AccountId,
    secret: &str,
    id: TokenId,
) -> (
    Option<DenyReason>,
    Option<DenyReason>,
    TokenStatus,
    TokenStatus,
    TokenStatus,
) {
    let request = api_key(secret);
    let authorized = keys.authorize(&request, Action::Push, &PUSH).await;
    let authenticated = keys.authenticate(&request).await;
    let one = keys.token(account, id).await.unwrap().status;
    let listed = keys.tokens(account).await.unwrap();
    let listed = listed.iter().find(|t| t.id == id).unwrap().status;
    let expiring = keys
        .expiring_within(account, Duration::days(3650))
        .await
        .unwrap();
    let expiring = expiring.iter().find(|t| t.id == id).unwrap().status;
    (
        authorized.err().map(|d| d.reason().clone()),
        authenticated.err().map(|d| d.reason().clone()),
        one,
        listed,
        expiring,
    )
}

fn dead_child() -> (
    Option<DenyReason>,
    Option<DenyReason>,
    TokenStatus,
    TokenStatus,
    TokenStatus,
) {
    (
        Some(DenyReason::ParentInvalid),
        Some(DenyReason::ParentInvalid),
        TokenStatus::Revoked,
        TokenStatus::Revoked,
        TokenStatus::Revoked,
    )
}

fn live() -> (
    Option<DenyReason>,
    Option<DenyReason>,
    TokenStatus,
    TokenStatus,
    TokenStatus,
) {
    (
        None,
        None,
        TokenStatus::Active,
        TokenStatus::Active,
        TokenStatus::Active,
    )
}

/// A revoked parent ends its children, as `authorize`, `authenticate`, `token`, `tokens`
/// and `expiring_within` all see.
pub async fn a_revoked_parent_ends_its_children_on_every_path<B: Backend>(backend: &B) {
    let (keys, _clock, alice) = feedkey_on(backend).await;
    let parent = keys
        .issue(&alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    let child = keys
        .derive(&api_key(parent.token.expose_secret()), job())
        .await
        .unwrap();
    let (secret, id) = (child.token.expose_secret(), child.token.id());
    assert_eq!(standing(&keys, &alice, secret, id).await, live());
    keys.revoke(&alice, parent.token.id()).await.unwrap();
    assert_eq!(standing(&keys, &alice, secret, id).await, dead_child());
}

/// A regenerated primary key ends its children, even at the same instant; a child of the
/// new key lives.
pub async fn a_regenerated_primary_key_ends_its_children<B: Backend>(backend: &B) {
    let (keys, clock, alice) = feedkey_on(backend).await;
    let primary = keys
        .regenerate_primary(&alice, Expiry::Never)
        .await
        .unwrap();
    let child = keys
        .derive(&api_key(primary.token.expose_secret()), job())
        .await
        .unwrap();
    let (secret, id) = (child.token.expose_secret(), child.token.id());
    assert_eq!(standing(&keys, &alice, secret, id).await, live());
    // Regenerated because it leaked: its children go with it, even at the same instant.
    let fresh = keys
        .regenerate_primary(&alice, Expiry::Never)
        .await
        .unwrap();
    assert_eq!(standing(&keys, &alice, secret, id).await, dead_child());
    // A child of the new key, derived at that same instant, works.
    let next = keys
        .derive(&api_key(fresh.token.expose_secret()), job())
        .await
        .unwrap();
    let (next_secret, next_id) = (next.token.expose_secret(), next.token.id());
    assert_eq!(standing(&keys, &alice, next_secret, next_id).await, live());
    clock.advance(Duration::minutes(1));
    assert_eq!(standing(&keys, &alice, next_secret, next_id).await, live());
    assert_eq!(standing(&keys, &alice, secret, id).await, dead_child());
}

/// A refreshed parent's children live as long as its old secret does: to the end of the
/// overlap, or at once without one.
pub async fn a_refreshed_parent_ends_its_children_when_its_window_closes<B: Backend>(backend: &B) {
    let (keys, clock, alice) = feedkey_on(backend).await;
    let parent = keys
        .issue(&alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    let pid = parent.token.id();
    let first = keys.derive_for(&alice, pid, job()).await.unwrap();
    // With an overlap, the children live as long as the old secret does.
    let rolled = keys
        .refresh_with(&alice, pid, Refresh::with_overlap(Duration::minutes(10)))
        .await
        .unwrap();
    let (secret, id) = (first.token.expose_secret(), first.token.id());
    assert_eq!(standing(&keys, &alice, secret, id).await, live());
    clock.advance(Duration::minutes(10));
    assert_eq!(standing(&keys, &alice, secret, id).await, dead_child());
    // An immediate refresh ends them at once; a later overlap does not bring them back.
    let second = keys
        .derive(&api_key(rolled.token.expose_secret()), job())
        .await
        .unwrap();
    let (secret, id) = (second.token.expose_secret(), second.token.id());
    assert_eq!(standing(&keys, &alice, secret, id).await, live());
    keys.refresh(&alice, pid).await.unwrap();
    assert_eq!(standing(&keys, &alice, secret, id).await, dead_child());
    keys.refresh_with(&alice, pid, Refresh::with_overlap(Duration::minutes(10)))
        .await
        .unwrap();
    assert_eq!(standing(&keys, &alice, secret, id).await, dead_child());
}

/// A child derived with the old secret inside a refresh's overlap ends with that secret.
pub async fn a_child_derived_with_the_old_secret_lives_as_long_as_that_secret<B: Backend>(
    backend: &B,
) {
    let (keys, clock, alice) = feedkey_on(backend).await;
    let parent = keys
        .issue(&alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    keys.refresh_with(
        &alice,
        parent.token.id(),
        Refresh::with_overlap(Duration::minutes(10)),
    )
    .await
    .unwrap();
    // A CI system still holding the old secret inside the window derives a job key.
    clock.advance(Duration::minutes(2));
    let child = keys
        .derive(&api_key(parent.token.expose_secret()), job())
        .await
        .unwrap();
    let (secret, id) = (child.token.expose_secret(), child.token.id());
    assert_eq!(standing(&keys, &alice, secret, id).await, live());
    // It ends with the secret it was derived under, not later.
    clock.advance(Duration::minutes(8));
    assert_eq!(standing(&keys, &alice, secret, id).await, dead_child());
}

/// A `Feedkey` over a [`Gate`] on a fresh store of `backend`, its clock standing at
/// [`START`], with alice's account: the set-up of the race checks.
async fn gated_keys<B: Backend>(
    backend: &B,
) -> (
    Arc<Feedkey<Arc<Gate<B::Store>>>>,
    Arc<Gate<B::Store>>,
    crate::ManualClock,
    crate::AccountId,
) {
    let clock = crate::ManualClock::new(START);
    let gate = Arc::new(Gate::new(backend.store().await));
    let keys = Arc::new(
        Feedkey::builder(Arc::clone(&gate), key(1))
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let alice = crate::AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    (keys, gate, clock, alice)
}

/// A child derived while its parent is refreshed concurrently dies with the secret the
/// refresh retires, whichever write commits first.
pub async fn a_child_derived_while_its_parent_is_renewed_dies_with_the_old_secret<B: Backend>(
    backend: &B,
) {
    let (keys, gate, clock, alice) = gated_keys(backend).await;
    let parent = keys
        .issue(&alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    let pid = parent.token.id();
    // The derive proves the parent's secret, and the refresh reads the parent, before
    // either writes: whichever commits first, the child was derived under the secret
    // the refresh retires.
    gate.hold(pid);
    let derive = {
        let keys = Arc::clone(&keys);
        let secret = parent.token.expose_secret().to_owned();
        tokio::spawn(async move { keys.derive(&api_key(&secret), job()).await })
    };
    let refresh = {
        let keys = Arc::clone(&keys);
        let alice = alice.clone();
        tokio::spawn(async move { keys.refresh(&alice, pid).await })
    };
    let child = derive.await.unwrap().unwrap();
    refresh.await.unwrap().unwrap();
    // Even with a clock that has moved on (or a server whose clock runs ahead).
    clock.advance(Duration::seconds(1));
    let (secret, id) = (child.token.expose_secret(), child.token.id());
    assert_eq!(standing(&keys, &alice, secret, id).await, dead_child());
}

/// A parent narrowed to some networks binds its children on `authorize`, `authenticate`
/// and `derive`.
pub async fn a_narrowed_parent_network_binds_its_children_on_every_path<B: Backend>(backend: &B) {
    let (keys, _clock, alice) = feedkey_on(backend).await;
    let parent = keys
        .issue(&alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    let child = keys
        .derive(&api_key(parent.token.expose_secret()), job())
        .await
        .unwrap();
    keys.edit(
        &alice,
        parent.token.id(),
        TokenEdit::new().networks(Networks::only(["10.0.0.0/8"]).unwrap()),
    )
    .await
    .unwrap();
    let secret = child.token.expose_secret();
    let outside = from(secret, OUTSIDE);
    let inside = from(secret, INSIDE);
    let reason = |r: Result<crate::Grant, crate::Denial>| r.err().map(|d| d.reason().clone());
    let refused = Some(DenyReason::AddressNotAllowed);
    assert_eq!(
        reason(keys.authorize(&outside, Action::Push, &PUSH).await),
        refused
    );
    assert_eq!(reason(keys.authenticate(&outside).await), refused);
    assert_eq!(
        reason(keys.authorize(&inside, Action::Push, &PUSH).await),
        None
    );
    assert_eq!(reason(keys.authenticate(&inside).await), None);
    // The parent itself, from outside its networks, can derive nothing.
    let parent_outside = from(parent.token.expose_secret(), OUTSIDE);
    match keys.derive(&parent_outside, job()).await {
        Err(Error::Denied(d)) => assert_eq!(d.reason(), &DenyReason::AddressNotAllowed),
        other => panic!("derived from outside the parent's networks: {other:?}"),
    }
    let parent_inside = from(parent.token.expose_secret(), INSIDE);
    let child = NewChild::new(
        "build 2",
        ci_scope().within(Networks::only(["10.0.0.0/8"]).unwrap()),
        Duration::minutes(5),
    );
    keys.derive(&parent_inside, child).await.unwrap();
}

/// An idle or expired parent derives nothing, by secret or by id.
pub async fn an_idle_parent_derives_nothing_on_either_path<B: Backend>(backend: &B) {
    // `keys` retires tokens unused for 400 days.
    let (keys, clock, alice) = feedkey_on(backend).await;
    let parent = keys
        .issue(&alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    clock.advance(Duration::days(400));
    assert_eq!(
        keys.derive_for(&alice, parent.token.id(), job())
            .await
            .unwrap_err(),
        Error::TokenIdle
    );
    match keys
        .derive(&api_key(parent.token.expose_secret()), job())
        .await
    {
        Err(Error::Denied(d)) => assert_eq!(d.reason(), &DenyReason::Idle),
        other => panic!("an idle parent derived: {other:?}"),
    }
    assert_eq!(
        keys.token(&alice, parent.token.id()).await.unwrap().status,
        TokenStatus::Idle
    );
    // An expired parent likewise.
    let short = keys
        .issue(
            &alice,
            NewToken::new("short", ci_scope()).expires(Expiry::After(Duration::hours(1))),
        )
        .await
        .unwrap();
    clock.advance(Duration::hours(1));
    assert_eq!(
        keys.derive_for(&alice, short.token.id(), job())
            .await
            .unwrap_err(),
        Error::TokenExpired
    );
}

/// Holds the first two reads of one token until both have been made, so that two
/// refreshes surely read the same revision and race to write it.
pub(super) struct Gate<S> {
    inner: S,
    watch: std::sync::Mutex<Option<TokenId>>,
    barrier: tokio::sync::Barrier,
    passed: std::sync::atomic::AtomicUsize,
}

impl<S> Gate<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            watch: std::sync::Mutex::new(None),
            barrier: tokio::sync::Barrier::new(2),
            passed: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub fn hold(&self, id: TokenId) {
        *self.watch.lock().unwrap() = Some(id);
    }

    async fn maybe_wait(&self, id: &TokenId) {
        let watched = *self.watch.lock().unwrap() == Some(*id);
        if watched
            && self
                .passed
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                < 2
        {
            self.barrier.wait().await;
        }
    }
}

/// Of two refreshes of one read, one wins and the other answers
/// [`StoreError::Conflict`]; called again, it succeeds.
pub async fn a_refresh_that_loses_a_race_says_so<B: Backend>(backend: &B) {
    let (keys, gate, _clock, alice) = gated_keys(backend).await;
    let t = keys
        .issue(&alice, NewToken::new("ci", ci_scope()))
        .await
        .unwrap();
    let id = t.token.id();
    gate.hold(id);
    let race = |keys: Arc<Feedkey<Arc<Gate<B::Store>>>>, alice: crate::AccountId| {
        tokio::spawn(async move { keys.refresh(&alice, id).await })
    };
    let a = race(Arc::clone(&keys), alice.clone());
    let b = race(Arc::clone(&keys), alice.clone());
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        (a, b) => panic!("two refreshes of one read: {a:?} and {b:?}"),
    };
    assert_eq!(lost, Error::Store(StoreError::Conflict));
    // The winner's secret is the one that stands; the old one is dead.
    keys.authorize(&api_key(won.token.expose_secret()), Action::Push, &PUSH)
        .await
        .unwrap();
    assert!(
        keys.authorize(&api_key(t.token.expose_secret()), Action::Push, &PUSH)
            .await
            .is_err()
    );
    // Called again, the loser succeeds, and its secret works.
    let again = keys.refresh(&alice, id).await.unwrap();
    keys.authorize(&api_key(again.token.expose_secret()), Action::Push, &PUSH)
        .await
        .unwrap();
}

/// Expiries past [`LATEST_EXPIRY`] are refused; the latest one is stored and read back
/// exactly.
pub async fn expiries_every_store_can_hold_are_the_only_ones_accepted<B: Backend>(backend: &B) {
    let (keys, _clock, alice) = feedkey_on(backend).await;
    let too_late = LATEST_EXPIRY + Duration::seconds(1);
    assert_eq!(
        keys.issue(
            &alice,
            NewToken::new("late", Scope::read_only()).expires(Expiry::At(too_late))
        )
        .await
        .unwrap_err(),
        Error::Lifetime(LifetimeError::TooLate)
    );
    assert_eq!(
        keys.regenerate_primary(&alice, Expiry::After(Duration::days(365 * 300)))
            .await
            .unwrap_err(),
        Error::Lifetime(LifetimeError::TooLate)
    );
    // The latest one is stored and read back alike everywhere.
    let last = keys
        .issue(
            &alice,
            NewToken::new("last", Scope::read_only()).expires(Expiry::At(LATEST_EXPIRY)),
        )
        .await
        .unwrap();
    let read = keys.token(&alice, last.token.id()).await.unwrap();
    assert_eq!(read.expires_at, Some(LATEST_EXPIRY));
    keys.authorize(
        &api_key(last.token.expose_secret()),
        Action::Read,
        &Target::package("ci", "Contoso.Service.Core"),
    )
    .await
    .unwrap();
}

mod gate_store {

    use crate::time::OffsetDateTime;
    use crate::{AccountId, StoreError, TokenId, TokenStore};
    use crate::{AccountRecord, StoredToken, TokenRecord};

    use super::Gate;

    impl<S: TokenStore> TokenStore for Gate<S> {
        async fn insert_account(
            &self,
            account: AccountRecord,
            primary: TokenRecord,
        ) -> Result<(), StoreError> {
            self.inner.insert_account(account, primary).await
        }

        async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
            self.inner.account(id).await
        }

        async fn update_account(
            &self,
            account: AccountRecord,
            expected_revision: u64,
        ) -> Result<(), StoreError> {
            self.inner.update_account(account, expected_revision).await
        }

        async fn insert_token(&self, record: TokenRecord) -> Result<(), StoreError> {
            self.inner.insert_token(record).await
        }

        async fn token(&self, id: &TokenId) -> Result<Option<StoredToken>, StoreError> {
            let found = self.inner.token(id).await;
            self.maybe_wait(id).await;
            found
        }

        async fn account_tokens(
            &self,
            account: &AccountId,
        ) -> Result<Vec<StoredToken>, StoreError> {
            self.inner.account_tokens(account).await
        }

        async fn update_token(
            &self,
            record: TokenRecord,
            expected_revision: u64,
        ) -> Result<(), StoreError> {
            self.inner.update_token(record, expected_revision).await
        }

        async fn touch_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<(), StoreError> {
            self.inner.touch_token(id, at).await
        }

        async fn tokens_expiring(
            &self,
            from: OffsetDateTime,
            until: OffsetDateTime,
        ) -> Result<Vec<StoredToken>, StoreError> {
            self.inner.tokens_expiring(from, until).await
        }

        async fn tokens_unused_since(
            &self,
            before: OffsetDateTime,
        ) -> Result<Vec<StoredToken>, StoreError> {
            self.inner.tokens_unused_since(before).await
        }

        async fn purge_revoked(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
            self.inner.purge_revoked(before).await
        }
        // The key methods are left to their provided bodies: a store written before
        // them still builds and works (it cannot tell a wrong key).
    }
}

/// A leak report revokes each reported token whose secret verifies, at once: a scoped
/// token, a primary key, a retired secret (a reuse); a derived child dies with its leaked
/// parent. A forged report (a real id with another secret), another registry's token and
/// a malformed string change nothing; a token dead already, and a replayed report, are
/// true positives that change nothing.
pub async fn a_leak_report_revokes_exactly_what_verifies<B: Backend>(backend: &B) {
    use crate::{LeakVerdict, TokenFormat};
    use LeakVerdict::{AlreadyDead, FalsePositive, Revoked};

    let (keys, clock, alice) = feedkey_on(backend).await;
    let issue = |name: &'static str| keys.issue(&alice, NewToken::new(name, ci_scope()));
    let leaked = issue("leaked").await.unwrap();
    let kept = issue("kept").await.unwrap();
    let dead = issue("dead").await.unwrap();
    keys.revoke(&alice, dead.token.id()).await.unwrap();
    let child = keys
        .derive(&api_key(leaked.token.expose_secret()), job())
        .await
        .unwrap();
    let forged = keys
        .token_format()
        .encode(&kept.token.id(), &[0x42; crate::token::SECRET_LEN]);
    let foreign = TokenFormat::new("gh")
        .unwrap()
        .encode(&kept.token.id(), &[0x42; crate::token::SECRET_LEN]);
    let report = [
        leaked.token.expose_secret(),
        forged.expose_secret(),
        dead.token.expose_secret(),
        foreign.expose_secret(),
        "fk_not-a-token",
    ];
    let source = "https://github.com/alice/app/blob/main/.env";
    let verdicts = keys.report_leaked(report, source).await.unwrap();
    assert_eq!(
        verdicts,
        [
            Revoked,
            FalsePositive,
            AlreadyDead,
            FalsePositive,
            FalsePositive
        ]
    );
    let reason = |secret: String| {
        let keys = &keys;
        async move {
            keys.authorize(&api_key(&secret), Action::Push, &PUSH)
                .await
                .err()
                .map(|d| d.reason().clone())
        }
    };
    assert_eq!(
        reason(leaked.token.expose_secret().to_owned()).await,
        Some(DenyReason::Revoked)
    );
    assert_eq!(
        standing(&keys, &alice, child.token.expose_secret(), child.token.id()).await,
        dead_child()
    );
    assert_eq!(
        reason(kept.token.expose_secret().to_owned()).await,
        None,
        "a forged report revoked a token"
    );
    // Replayed: nothing more.
    let again = keys.report_leaked(report, source).await.unwrap();
    assert_eq!(
        again,
        [
            AlreadyDead,
            FalsePositive,
            AlreadyDead,
            FalsePositive,
            FalsePositive
        ]
    );

    // A primary key is revoked too; its owner regenerates it.
    let (primary_id, primary) = {
        let regenerated = keys
            .regenerate_primary(&alice, Expiry::Never)
            .await
            .unwrap();
        (regenerated.token.id(), regenerated)
    };
    let verdicts = keys
        .report_leaked([primary.token.expose_secret()], source)
        .await
        .unwrap();
    assert_eq!(verdicts, [Revoked]);
    assert!(
        keys.authenticate(&api_key(primary.token.expose_secret()))
            .await
            .is_err()
    );
    let renewed = keys
        .regenerate_primary(&alice, Expiry::Never)
        .await
        .unwrap();
    assert_eq!(renewed.token.id(), primary_id);
    assert!(
        keys.authenticate(&api_key(renewed.token.expose_secret()))
            .await
            .is_ok()
    );

    // A retired secret reported is a reuse: the token goes.
    let old = kept.token.expose_secret().to_owned();
    let refreshed = keys
        .refresh_with(&alice, kept.token.id(), Refresh::default())
        .await
        .unwrap();
    clock.advance(Duration::seconds(1));
    assert_eq!(
        keys.report_leaked([old.as_str()], source).await.unwrap(),
        [Revoked]
    );
    let new = keys.tokens(&alice).await.unwrap();
    assert!(
        new.iter()
            .all(|t| t.id != kept.token.id() || t.status == TokenStatus::Revoked),
        "{new:?}"
    );
    assert_eq!(
        reason(refreshed.token.expose_secret().to_owned()).await,
        Some(DenyReason::Revoked),
        "the token of a reported retired secret lives"
    );
}
