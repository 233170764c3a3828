//! Beyond the seeds: overlap rotation with reuse detection, derived child tokens, idle
//! expiry, IP allowlists, the write-token lifetime cap and audit events.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use common::{START, api_key, key};
use feedkey::time::Duration;
use feedkey::{
    AccountId, Action, AuditEvent, AuditKind, DenyReason, DenyStatus, Error, Expiry, Feedkey,
    Feeds, GrantedBy, LifetimeError, LifetimeLimit, LifetimePolicy, ManualClock, MemoryStore,
    Networks, NewChild, NewToken, NotCovered, Packages, PasswordConfig, Permissions, Refresh,
    Request, RevokeCause, RotationPolicy, Scope, Target, TokenEdit, TokenStatus,
};

struct World {
    keys: Feedkey<MemoryStore>,
    clock: ManualClock,
    alice: AccountId,
    events: Arc<Mutex<Vec<AuditEvent>>>,
}

async fn world_with(policy: LifetimePolicy, rotation: RotationPolicy) -> World {
    let clock = ManualClock::new(START);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let keys = Feedkey::builder(MemoryStore::new(), key(1))
        .clock(clock.clone())
        .lifetime_policy(policy)
        .rotation_policy(rotation)
        .passwords(PasswordConfig::insecure_fast_for_tests())
        .audit(move |e: &AuditEvent| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    let primary_expiry = if policy.expiry_required(true) {
        Expiry::After(Duration::days(30))
    } else {
        Expiry::Never
    };
    keys.create_account(&alice, primary_expiry).await.unwrap();
    World {
        keys,
        clock,
        alice,
        events,
    }
}

async fn world() -> World {
    world_with(LifetimePolicy::default(), RotationPolicy::default()).await
}

fn ci_scope() -> Scope {
    Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::only(["ci"]).unwrap(),
        Packages::only(["Contoso.Service.*"]).unwrap(),
    )
    .unwrap()
}

const PUSH: Target<'static> = Target::package("ci", "Contoso.Service.Core");

#[tokio::test]
async fn a_ci_key_rotated_with_a_ten_minute_overlap() {
    let w = world().await;
    let old = w
        .keys
        .issue(&w.alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    let new = w
        .keys
        .refresh_with(
            &w.alice,
            old.token.id(),
            Refresh::with_overlap(Duration::minutes(10)),
        )
        .await
        .unwrap();
    assert_eq!(
        new.info.previous_secret_until,
        Some(START + Duration::minutes(10))
    );
    let old_req = api_key(old.token.expose_secret());
    let new_req = api_key(new.token.expose_secret());

    // Inside the window both work; the grant says the old one was used.
    w.clock.advance(Duration::minutes(9));
    let grant = w
        .keys
        .authorize(&old_req, Action::Push, &PUSH)
        .await
        .unwrap();
    assert!(grant.used_previous_secret());
    let grant = w
        .keys
        .authorize(&new_req, Action::Push, &PUSH)
        .await
        .unwrap();
    assert!(!grant.used_previous_secret());

    // After it only the new one does.
    w.clock.advance(Duration::minutes(1));
    let denial = w
        .keys
        .authorize(&old_req, Action::Push, &PUSH)
        .await
        .unwrap_err();
    assert_eq!(denial.reason(), &DenyReason::RetiredSecretReused);
    w.keys
        .authorize(&new_req, Action::Push, &PUSH)
        .await
        .unwrap();

    // Under the default policy a reuse is reported, not punished.
    let events = w.events.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == AuditKind::RetiredSecretReused && e.token == Some(old.token.id()))
    );
}

#[tokio::test]
async fn an_overlap_never_outlives_the_token() {
    let w = world().await;
    let t = w
        .keys
        .issue(
            &w.alice,
            NewToken::new("CI", ci_scope()).expires(Expiry::After(Duration::minutes(5))),
        )
        .await
        .unwrap();
    let new = w
        .keys
        .refresh_with(
            &w.alice,
            t.token.id(),
            Refresh::with_overlap(Duration::hours(1)),
        )
        .await
        .unwrap();
    assert_eq!(
        new.info.previous_secret_until,
        Some(START + Duration::minutes(5))
    );
    assert_eq!(
        w.keys
            .refresh_with(
                &w.alice,
                t.token.id(),
                Refresh::with_overlap(Duration::days(31))
            )
            .await
            .unwrap_err(),
        Error::OverlapTooLong
    );
}

#[tokio::test]
async fn a_retired_secret_replayed_after_the_window_revokes_under_the_strict_policy() {
    let w = world_with(
        LifetimePolicy::default(),
        RotationPolicy::default().revoke_on_reuse(true),
    )
    .await;
    let old = w
        .keys
        .issue(&w.alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    let new = w
        .keys
        .refresh_with(
            &w.alice,
            old.token.id(),
            Refresh::with_overlap(Duration::minutes(10)),
        )
        .await
        .unwrap();
    w.clock.advance(Duration::minutes(11));
    let client: IpAddr = "198.51.100.7".parse().unwrap();
    let replay = api_key(old.token.expose_secret()).with_client_addr(client);
    let denial = w
        .keys
        .authorize(&replay, Action::Push, &PUSH)
        .await
        .unwrap_err();
    assert_eq!(denial.reason(), &DenyReason::RetiredSecretReused);
    // The leak is assumed: the new secret is dead too.
    let denial = w
        .keys
        .authorize(&api_key(new.token.expose_secret()), Action::Push, &PUSH)
        .await
        .unwrap_err();
    assert_eq!(denial.reason(), &DenyReason::Revoked);
    let events = w.events.lock().unwrap();
    let revoked = events
        .iter()
        .find(|e| {
            e.kind
                == AuditKind::Revoked {
                    cause: RevokeCause::RetiredSecretReused,
                }
        })
        .unwrap();
    assert_eq!(revoked.client_addr, Some(client));
}

#[tokio::test]
async fn retired_secrets_are_forgotten_after_the_retention() {
    let w = world_with(
        LifetimePolicy::default(),
        RotationPolicy::default().keep_retired_for(Duration::days(1)),
    )
    .await;
    let old = w
        .keys
        .issue(&w.alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    w.keys.refresh(&w.alice, old.token.id()).await.unwrap();
    let req = api_key(old.token.expose_secret());
    let reason = |d: feedkey::Denial| d.reason().clone();
    assert_eq!(
        reason(
            w.keys
                .authorize(&req, Action::Push, &PUSH)
                .await
                .unwrap_err()
        ),
        DenyReason::RetiredSecretReused
    );
    w.clock.advance(Duration::days(1));
    assert_eq!(
        reason(
            w.keys
                .authorize(&req, Action::Push, &PUSH)
                .await
                .unwrap_err()
        ),
        DenyReason::WrongSecret
    );
}

#[tokio::test]
async fn a_child_pushes_its_one_package_and_dies_with_its_parent() {
    let w = world().await;
    let parent = w
        .keys
        .issue(&w.alice, NewToken::new("CI pipeline", ci_scope()))
        .await
        .unwrap();
    let parent_req = api_key(parent.token.expose_secret());
    let job_scope = Scope::new(
        Permissions::PUSH_VERSION_ONLY,
        Feeds::only(["ci"]).unwrap(),
        Packages::only(["Contoso.Service.Core"]).unwrap(),
    )
    .unwrap();
    let child = w
        .keys
        .derive(
            &parent_req,
            NewChild::new("build 4711", job_scope, Duration::minutes(15)),
        )
        .await
        .unwrap();
    assert_eq!(child.info.parent, Some(parent.token.id()));
    assert_eq!(child.info.expires_at, Some(START + Duration::minutes(15)));
    let child_req = api_key(child.token.expose_secret());

    let grant = w
        .keys
        .authorize(&child_req, Action::Push, &PUSH)
        .await
        .unwrap();
    assert_eq!(grant.granted_by(), GrantedBy::DerivedToken);
    let other = w
        .keys
        .authorize(
            &child_req,
            Action::Push,
            &Target::package("ci", "Contoso.Service.Api"),
        )
        .await
        .unwrap_err();
    assert_eq!(other.reason(), &DenyReason::PackageOutOfScope);

    // Narrowing the parent narrows the child.
    w.keys
        .edit(
            &w.alice,
            parent.token.id(),
            TokenEdit::new().packages(Packages::only(["Contoso.Service.Api"]).unwrap()),
        )
        .await
        .unwrap();
    let narrowed = w
        .keys
        .authorize(&child_req, Action::Push, &PUSH)
        .await
        .unwrap_err();
    assert_eq!(narrowed.reason(), &DenyReason::ParentOutOfScope);
    assert_eq!(narrowed.status(), DenyStatus::Forbidden);
    w.keys
        .edit(
            &w.alice,
            parent.token.id(),
            TokenEdit::new().packages(Packages::only(["Contoso.Service.*"]).unwrap()),
        )
        .await
        .unwrap();
    w.keys
        .authorize(&child_req, Action::Push, &PUSH)
        .await
        .unwrap();

    // Revoking the parent takes the child with it.
    w.keys.revoke(&w.alice, parent.token.id()).await.unwrap();
    let denial = w
        .keys
        .authorize(&child_req, Action::Push, &PUSH)
        .await
        .unwrap_err();
    assert_eq!(denial.reason(), &DenyReason::ParentInvalid);
    let listed = w.keys.tokens(&w.alice).await.unwrap();
    let shown = listed.iter().find(|t| t.id == child.token.id()).unwrap();
    assert_eq!(shown.status, TokenStatus::Revoked);
}

#[tokio::test]
async fn a_child_dies_at_its_own_expiry_and_at_its_parents() {
    let w = world().await;
    let parent = w
        .keys
        .issue(
            &w.alice,
            NewToken::new("CI", ci_scope()).expires(Expiry::After(Duration::minutes(30))),
        )
        .await
        .unwrap();
    let child = w
        .keys
        .derive_for(
            &w.alice,
            parent.token.id(),
            NewChild::new("job", ci_scope(), Duration::minutes(20)),
        )
        .await
        .unwrap();
    let req = api_key(child.token.expose_secret());
    w.clock.advance(Duration::minutes(20));
    let denial = w
        .keys
        .authorize(&req, Action::Push, &PUSH)
        .await
        .unwrap_err();
    assert_eq!(denial.reason(), &DenyReason::Expired);
    // A child cannot outlive its parent, nor the policy's cap.
    assert!(matches!(
        w.keys
            .derive_for(
                &w.alice,
                parent.token.id(),
                NewChild::new("job", ci_scope(), Duration::minutes(15)),
            )
            .await
            .unwrap_err(),
        Error::Lifetime(LifetimeError::TooLong {
            limit: LifetimeLimit::Parent,
            ..
        })
    ));
    let forever = w
        .keys
        .issue(&w.alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    assert_eq!(
        w.keys
            .derive_for(
                &w.alice,
                forever.token.id(),
                NewChild::new("job", ci_scope(), Duration::hours(2)),
            )
            .await
            .unwrap_err(),
        Error::Lifetime(LifetimeError::TooLong {
            limit: LifetimeLimit::Child,
            max: Duration::hours(1)
        })
    );
}

#[tokio::test]
async fn a_child_is_refused_anything_the_crate_cannot_prove_inside_its_parent() {
    let w = world().await;
    let parent = w
        .keys
        .issue(&w.alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    let pid = parent.token.id();
    let derive = |scope: Scope| {
        let keys = &w.keys;
        let alice = &w.alice;
        async move {
            keys.derive_for(
                alice,
                pid,
                NewChild::new("job", scope, Duration::minutes(5)),
            )
            .await
        }
    };
    let with = |perms, feeds, pkgs: &[&str]| {
        Scope::new(perms, feeds, Packages::only(pkgs).unwrap()).unwrap()
    };
    let ci = || Feeds::only(["ci"]).unwrap();
    // Provable: a longer literal prefix under the prefix glob, an exact id, the same glob.
    for pkgs in [
        &["contoso.service.web.*"][..],
        &["Contoso.Service.Core"],
        &["Contoso.Service.*"],
    ] {
        derive(with(Permissions::WRITE_ONLY, ci(), pkgs))
            .await
            .unwrap();
    }
    // Not provable, or wider.
    let cases = [
        (
            with(Permissions::FULL, ci(), &["Contoso.Service.Core"]),
            Error::NotCovered(NotCovered::Permissions),
        ),
        (
            with(
                Permissions::WRITE_ONLY,
                Feeds::Any,
                &["Contoso.Service.Core"],
            ),
            Error::NotCovered(NotCovered::Feeds),
        ),
        (
            with(Permissions::WRITE_ONLY, ci(), &["Contoso.*"]),
            Error::NotCovered(NotCovered::Package("Contoso.*".into())),
        ),
        (
            with(Permissions::WRITE_ONLY, ci(), &["*.Service.Core"]),
            Error::NotCovered(NotCovered::Package("*.Service.Core".into())),
        ),
        (
            Scope::new(Permissions::WRITE_ONLY, ci(), Packages::Any).unwrap(),
            Error::NotCovered(NotCovered::Package("*".into())),
        ),
    ];
    for (scope, want) in cases {
        assert_eq!(derive(scope).await.unwrap_err(), want);
    }
    // Once the parent is limited to networks, a child must be too.
    w.keys
        .edit(
            &w.alice,
            pid,
            TokenEdit::new().networks(Networks::only(["10.0.0.0/8"]).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(
        derive(ci_scope()).await.unwrap_err(),
        Error::NotCovered(NotCovered::Networks)
    );
    // A child cannot derive children of its own.
    let child = derive(
        with(Permissions::WRITE_ONLY, ci(), &["Contoso.Service.Core"])
            .with_networks(Networks::only(["10.1.0.0/16"]).unwrap())
            .unwrap(),
    )
    .await
    .unwrap();
    let grand = w
        .keys
        .derive(
            &api_key(child.token.expose_secret()).with_client_addr("10.1.2.3".parse().unwrap()),
            NewChild::new("x", ci_scope(), Duration::minutes(1)),
        )
        .await
        .unwrap_err();
    assert_eq!(grand, Error::DerivedToken);
}

#[tokio::test]
async fn the_account_password_and_bad_credentials_cannot_derive() {
    let w = world().await;
    w.keys
        .set_password(&w.alice, "long password")
        .await
        .unwrap();
    let err = w
        .keys
        .derive(
            &Request::with_basic("alice", "long password"),
            NewChild::new("x", Scope::read_only(), Duration::minutes(1)),
        )
        .await
        .unwrap_err();
    // Read as every entry point reads a credential: a password, which only reads.
    assert!(matches!(err, Error::Denied(d) if d.reason() == &DenyReason::PasswordCannotWrite));
    let err = w
        .keys
        .derive(
            &api_key(&common::wrong_secret(
                w.keys
                    .issue(&w.alice, NewToken::new("p", Scope::read_only()))
                    .await
                    .unwrap()
                    .token
                    .expose_secret(),
            )),
            NewChild::new("x", Scope::read_only(), Duration::minutes(1)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Denied(d) if d.reason() == &DenyReason::WrongSecret));
}

#[tokio::test]
async fn an_idle_token_is_retired_on_day_n_plus_one() {
    let w = world_with(
        LifetimePolicy::default().with_idle_expiry(Duration::days(30)),
        RotationPolicy::default(),
    )
    .await;
    let t = w
        .keys
        .issue(&w.alice, NewToken::new("old CI", Scope::read_only()))
        .await
        .unwrap();
    let twin = w
        .keys
        .issue(&w.alice, NewToken::new("old CI twin", Scope::read_only()))
        .await
        .unwrap();
    let used = w
        .keys
        .issue(&w.alice, NewToken::new("busy CI", Scope::read_only()))
        .await
        .unwrap();
    let req = api_key(t.token.expose_secret());
    let twin_req = api_key(twin.token.expose_secret());
    let busy = api_key(used.token.expose_secret());
    let read = Target::feed("f");
    // Both old tokens used on day 10, then not again; the busy one every ten days.
    w.clock.advance(Duration::days(10));
    w.keys.authorize(&req, Action::Read, &read).await.unwrap();
    w.keys
        .authorize(&twin_req, Action::Read, &read)
        .await
        .unwrap();
    for _ in 0..2 {
        w.clock.advance(Duration::days(10));
        w.keys.authorize(&busy, Action::Read, &read).await.unwrap();
    }
    // Day 30 + 9 days 23 hours: 29 days 23 hours unused, still good.
    w.clock.advance(Duration::days(9) + Duration::hours(23));
    w.keys
        .authorize(&twin_req, Action::Read, &read)
        .await
        .unwrap();
    // Day 40: 30 days unused, retired.
    w.clock.advance(Duration::hours(1));
    let denial = w
        .keys
        .authorize(&req, Action::Read, &read)
        .await
        .unwrap_err();
    assert_eq!(denial.reason(), &DenyReason::Idle);
    assert_eq!(denial.status(), DenyStatus::Unauthorized);
    assert_eq!(
        w.keys.token(&w.alice, t.token.id()).await.unwrap().status,
        TokenStatus::Idle
    );
    w.keys.authorize(&busy, Action::Read, &read).await.unwrap();
    // The daily sweep makes it final: the idle token and the never-used primary key.
    assert_eq!(w.keys.retire_idle().await.unwrap(), 2);
    w.keys
        .authorize(&twin_req, Action::Read, &read)
        .await
        .unwrap();
    assert_eq!(
        w.keys.token(&w.alice, t.token.id()).await.unwrap_err(),
        Error::TokenNotFound
    );
    assert!(w.events.lock().unwrap().iter().any(|e| e.kind
        == AuditKind::Revoked {
            cause: RevokeCause::Idle
        }));
    // A retired primary key can be regenerated.
    let primary = w
        .keys
        .regenerate_primary(&w.alice, Expiry::Never)
        .await
        .unwrap();
    w.keys
        .authorize(&api_key(primary.token.expose_secret()), Action::Read, &read)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_request_from_outside_the_cidr_is_refused() {
    let w = world().await;
    let scope = ci_scope()
        .with_networks(Networks::only(["10.20.0.0/16", "2001:db8::/32"]).unwrap())
        .unwrap();
    let t = w
        .keys
        .issue(&w.alice, NewToken::new("office CI", scope))
        .await
        .unwrap();
    let from =
        |addr: &str| api_key(t.token.expose_secret()).with_client_addr(addr.parse().unwrap());
    w.keys
        .authorize(&from("10.20.3.4"), Action::Push, &PUSH)
        .await
        .unwrap();
    w.keys
        .authorize(&from("2001:db8::7"), Action::Push, &PUSH)
        .await
        .unwrap();
    for outside in ["10.21.0.1", "2001:db9::1"] {
        let denial = w
            .keys
            .authorize(&from(outside), Action::Push, &PUSH)
            .await
            .unwrap_err();
        assert_eq!(denial.reason(), &DenyReason::AddressNotAllowed);
    }
    // A server that gives no address gets a refusal, not a pass.
    let denial = w
        .keys
        .authorize(&api_key(t.token.expose_secret()), Action::Push, &PUSH)
        .await
        .unwrap_err();
    assert_eq!(denial.reason(), &DenyReason::AddressNotAllowed);
    // Networks can be narrowed, never widened.
    assert_eq!(
        w.keys
            .edit(
                &w.alice,
                t.token.id(),
                TokenEdit::new().networks(Networks::Any)
            )
            .await
            .unwrap_err(),
        Error::Widens(feedkey::Widening::Networks)
    );
}

#[tokio::test]
async fn a_write_token_is_refused_an_expiry_beyond_its_cap() {
    let w = world_with(
        LifetimePolicy::unlimited().with_max_write_lifetime(Duration::days(90)),
        RotationPolicy::default(),
    )
    .await;
    let err = w
        .keys
        .issue(
            &w.alice,
            NewToken::new("CI", ci_scope()).expires(Expiry::After(Duration::days(91))),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Lifetime(LifetimeError::TooLong {
            limit: LifetimeLimit::Write,
            max: Duration::days(90)
        })
    );
    assert_eq!(
        err.to_string(),
        "a token that can write may live at most 90 days"
    );
    assert_eq!(
        w.keys
            .issue(&w.alice, NewToken::new("CI", ci_scope()))
            .await
            .unwrap_err(),
        Error::Lifetime(LifetimeError::ExpiryRequired)
    );
    // Read-only tokens are not capped.
    w.keys
        .issue(&w.alice, NewToken::new("mirror", Scope::read_only()))
        .await
        .unwrap();
    w.keys
        .issue(
            &w.alice,
            NewToken::new("CI", ci_scope()).expires(Expiry::After(Duration::days(90))),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tightened_policy_is_enforced_at_refresh_and_edit() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(START);
    let loose = Feedkey::builder(Arc::clone(&store), key(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    loose.create_account(&alice, Expiry::Never).await.unwrap();
    let read_write = Scope::new(Permissions::FULL, Feeds::Any, Packages::Any).unwrap();
    let t = loose
        .issue(&alice, NewToken::new("CI", read_write))
        .await
        .unwrap();
    let strict = Feedkey::builder(Arc::clone(&store), key(1))
        .clock(clock.clone())
        .lifetime_policy(LifetimePolicy::unlimited().with_max_write_lifetime(Duration::days(90)))
        .build()
        .unwrap();
    let want = Error::Lifetime(LifetimeError::ExpiryRequired);
    assert_eq!(
        strict.refresh(&alice, t.token.id()).await.unwrap_err(),
        want
    );
    assert_eq!(
        strict
            .edit(&alice, t.token.id(), TokenEdit::new().description("x"))
            .await
            .unwrap_err(),
        want
    );
    // Narrowing it to read-only brings it inside the policy.
    let info = strict
        .edit(
            &alice,
            t.token.id(),
            TokenEdit::new().permissions(Permissions::READ_ONLY),
        )
        .await
        .unwrap();
    assert_eq!(info.scope.permissions(), Permissions::READ_ONLY);
}

#[tokio::test]
async fn every_event_is_observed_and_none_holds_a_secret() {
    let w = world().await;
    w.keys.set_password(&w.alice, "a passphrase").await.unwrap();
    let t = w
        .keys
        .issue(
            &w.alice,
            NewToken::new("CI", ci_scope()).expires(Expiry::After(Duration::days(5))),
        )
        .await
        .unwrap();
    let client: IpAddr = "192.0.2.1".parse().unwrap();
    let req = api_key(t.token.expose_secret()).with_client_addr(client);
    w.keys.authorize(&req, Action::Push, &PUSH).await.unwrap();
    w.keys
        .authorize(&req, Action::Read, &PUSH)
        .await
        .unwrap_err();
    w.keys
        .edit(&w.alice, t.token.id(), TokenEdit::new().description("CI 2"))
        .await
        .unwrap();
    let child = w
        .keys
        .derive(&req, NewChild::new("job", ci_scope(), Duration::minutes(5)))
        .await
        .unwrap();
    let fresh = w
        .keys
        .refresh_with(
            &w.alice,
            t.token.id(),
            Refresh::with_overlap(Duration::minutes(1)),
        )
        .await
        .unwrap();
    w.clock.advance(Duration::minutes(2));
    w.keys
        .authorize(&req, Action::Push, &PUSH)
        .await
        .unwrap_err();
    w.keys
        .all_expiring_within(Duration::days(10))
        .await
        .unwrap();
    w.keys.revoke(&w.alice, child.token.id()).await.unwrap();
    w.keys
        .regenerate_primary(&w.alice, Expiry::Never)
        .await
        .unwrap();

    let events = w.events.lock().unwrap();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            format!("{:?}", e.kind)
                .split([' ', '{', '('])
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    for want in [
        "AccountCreated",
        "PasswordChanged",
        "Issued",
        "Used",
        "Denied",
        "Edited",
        "Derived",
        "Refreshed",
        "RetiredSecretReused",
        "ExpiringSoon",
        "Revoked",
        "PrimaryRegenerated",
    ] {
        assert!(kinds.iter().any(|k| k == want), "no {want} in {kinds:?}");
    }
    let used = events
        .iter()
        .find(|e| matches!(e.kind, AuditKind::Used { .. }))
        .unwrap();
    assert_eq!(used.account.as_ref(), Some(&w.alice));
    assert_eq!(used.token, Some(t.token.id()));
    assert_eq!(used.client_addr, Some(client));
    assert_eq!(used.at, START);
    let text = format!(
        "{events:?} {}",
        events
            .iter()
            .map(|e| e.kind.to_string())
            .collect::<String>()
    );
    for secret in [
        t.token.expose_secret(),
        fresh.token.expose_secret(),
        child.token.expose_secret(),
    ] {
        assert!(!text.contains(&secret[3..]));
    }
    assert!(!text.contains("passphrase"));
    assert!(!text.contains("fk-blake3"));
}
