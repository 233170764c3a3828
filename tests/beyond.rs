//! Beyond the seeds: overlap rotation with reuse detection, derived child tokens, idle
//! expiry, IP allowlists, the write-token lifetime cap and audit events.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::IpAddr;
use std::sync::Arc;

use common::{START, World, api_key, key};
use feedkey::time::Duration;
use feedkey::{
    Action, AuditKind, DenyReason, DenyStatus, Error, Expiry, Feedkey, Feeds, GrantedBy,
    IssuedToken, LifetimeError, LifetimeLimit, LifetimePolicy, MemoryStore, Networks, NewChild,
    NewToken, NotCovered, Packages, Permissions, Refresh, Request, RevokeCause, RotationPolicy,
    Scope, Target, TokenEdit, TokenId, TokenStatus,
};

/// Every world here records its audit events.
async fn world() -> World {
    World::builder().audit().build().await
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
    let old = w.issue(NewToken::new("CI", ci_scope())).await;
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
    let grant = w.allow(&old_req, Action::Push, &PUSH).await;
    assert!(grant.used_previous_secret());
    let grant = w.allow(&new_req, Action::Push, &PUSH).await;
    assert!(!grant.used_previous_secret());

    // After it only the new one does.
    w.clock.advance(Duration::minutes(1));
    let denial = w.deny(&old_req, Action::Push, &PUSH).await;
    assert_eq!(denial.reason(), &DenyReason::RetiredSecretReused);
    w.allow(&new_req, Action::Push, &PUSH).await;

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
        .issue(NewToken::new("CI", ci_scope()).expires(Expiry::After(Duration::minutes(5))))
        .await;
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
    let w = World::builder()
        .rotation(RotationPolicy::default().revoke_on_reuse(true))
        .audit()
        .build()
        .await;
    let old = w.issue(NewToken::new("CI", ci_scope())).await;
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
    let denial = w.deny(&replay, Action::Push, &PUSH).await;
    assert_eq!(denial.reason(), &DenyReason::RetiredSecretReused);
    // The leak is assumed: the new secret is dead too.
    let denial = w
        .deny(&api_key(new.token.expose_secret()), Action::Push, &PUSH)
        .await;
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
    let w = World::builder()
        .rotation(RotationPolicy::default().keep_retired_for(Duration::days(1)))
        .audit()
        .build()
        .await;
    let old = w.issue(NewToken::new("CI", ci_scope())).await;
    w.keys.refresh(&w.alice, old.token.id()).await.unwrap();
    let req = api_key(old.token.expose_secret());
    let reason = |d: feedkey::Denial| d.reason().clone();
    assert_eq!(
        reason(w.deny(&req, Action::Push, &PUSH).await),
        DenyReason::RetiredSecretReused
    );
    w.clock.advance(Duration::days(1));
    assert_eq!(
        reason(w.deny(&req, Action::Push, &PUSH).await),
        DenyReason::WrongSecret
    );
}

#[tokio::test]
async fn a_child_pushes_its_one_package_and_dies_with_its_parent() {
    let w = world().await;
    let parent = w.issue(NewToken::new("CI pipeline", ci_scope())).await;
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

    let grant = w.allow(&child_req, Action::Push, &PUSH).await;
    assert_eq!(grant.granted_by(), GrantedBy::DerivedToken);
    let other = w
        .deny(
            &child_req,
            Action::Push,
            &Target::package("ci", "Contoso.Service.Api"),
        )
        .await;
    assert_eq!(other.reason(), &DenyReason::PackageOutOfScope);

    // Narrowing the parent narrows the child.
    w.edit(
        parent.token.id(),
        TokenEdit::new().packages(Packages::only(["Contoso.Service.Api"]).unwrap()),
    )
    .await;
    let narrowed = w.deny(&child_req, Action::Push, &PUSH).await;
    assert_eq!(narrowed.reason(), &DenyReason::ParentOutOfScope);
    assert_eq!(narrowed.status(), DenyStatus::Forbidden);
    w.edit(
        parent.token.id(),
        TokenEdit::new().packages(Packages::only(["Contoso.Service.*"]).unwrap()),
    )
    .await;
    w.allow(&child_req, Action::Push, &PUSH).await;

    // Revoking the parent takes the child with it.
    w.keys.revoke(&w.alice, parent.token.id()).await.unwrap();
    let denial = w.deny(&child_req, Action::Push, &PUSH).await;
    assert_eq!(denial.reason(), &DenyReason::ParentInvalid);
    let listed = w.keys.tokens(&w.alice).await.unwrap();
    let shown = listed.iter().find(|t| t.id == child.token.id()).unwrap();
    assert_eq!(shown.status, TokenStatus::Revoked);
}

#[tokio::test]
async fn a_child_dies_at_its_own_expiry_and_at_its_parents() {
    let w = world().await;
    let parent = w
        .issue(NewToken::new("CI", ci_scope()).expires(Expiry::After(Duration::minutes(30))))
        .await;
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
    let denial = w.deny(&req, Action::Push, &PUSH).await;
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
    let forever = w.issue(NewToken::new("CI", ci_scope())).await;
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

/// Derives a five-minute child of alice's token `parent` with `scope`.
async fn derive_under(w: &World, parent: TokenId, scope: Scope) -> Result<IssuedToken, Error> {
    w.keys
        .derive_for(
            &w.alice,
            parent,
            NewChild::new("job", scope, Duration::minutes(5)),
        )
        .await
}

fn scope_with(permissions: Permissions, feeds: Feeds, packages: &[&str]) -> Scope {
    Scope::new(permissions, feeds, Packages::only(packages).unwrap()).unwrap()
}

fn ci_feed() -> Feeds {
    Feeds::only(["ci"]).unwrap()
}

#[tokio::test]
async fn a_child_may_have_any_scope_the_crate_can_prove_inside_its_parent() {
    let w = world().await;
    let parent = w.issue(NewToken::new("CI", ci_scope())).await;
    // Provable: a longer literal prefix under the prefix glob, an exact id, the same glob.
    for pkgs in [
        &["contoso.service.web.*"][..],
        &["Contoso.Service.Core"],
        &["Contoso.Service.*"],
    ] {
        let scope = scope_with(Permissions::WRITE_ONLY, ci_feed(), pkgs);
        derive_under(&w, parent.token.id(), scope).await.unwrap();
    }
}

#[tokio::test]
async fn a_child_is_refused_anything_the_crate_cannot_prove_inside_its_parent() {
    let w = world().await;
    let parent = w.issue(NewToken::new("CI", ci_scope())).await;
    let with = scope_with;
    let ci = ci_feed;
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
        assert_eq!(
            derive_under(&w, parent.token.id(), scope)
                .await
                .unwrap_err(),
            want
        );
    }
}

#[tokio::test]
async fn a_child_of_a_network_limited_parent_is_network_limited_and_cannot_derive() {
    let w = world().await;
    let pid = w.issue(NewToken::new("CI", ci_scope())).await.token.id();
    // Once the parent is limited to networks, a child must be too.
    w.edit(
        pid,
        TokenEdit::new().networks(Networks::only(["10.0.0.0/8"]).unwrap()),
    )
    .await;
    assert_eq!(
        derive_under(&w, pid, ci_scope()).await.unwrap_err(),
        Error::NotCovered(NotCovered::Networks)
    );
    // A child cannot derive children of its own.
    let scope = scope_with(
        Permissions::WRITE_ONLY,
        ci_feed(),
        &["Contoso.Service.Core"],
    )
    .within(Networks::only(["10.1.0.0/16"]).unwrap());
    let child = derive_under(&w, pid, scope).await.unwrap();
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
            &Request::basic("alice", "long password"),
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
                w.issue(NewToken::new("p", Scope::read_only()))
                    .await
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
    let w = World::builder()
        .policy(LifetimePolicy::default().with_idle_expiry(Duration::days(30)))
        .audit()
        .build()
        .await;
    let t = w.issue(NewToken::new("old CI", Scope::read_only())).await;
    let twin = w
        .issue(NewToken::new("old CI twin", Scope::read_only()))
        .await;
    let used = w.issue(NewToken::new("busy CI", Scope::read_only())).await;
    let req = api_key(t.token.expose_secret());
    let twin_req = api_key(twin.token.expose_secret());
    let busy = api_key(used.token.expose_secret());
    let read = Target::feed("f");
    // Both old tokens used on day 10, then not again; the busy one every ten days.
    w.clock.advance(Duration::days(10));
    w.allow(&req, Action::Read, &read).await;
    w.allow(&twin_req, Action::Read, &read).await;
    for _ in 0..2 {
        w.clock.advance(Duration::days(10));
        w.allow(&busy, Action::Read, &read).await;
    }
    // Day 30 + 9 days 23 hours: 29 days 23 hours unused, still good.
    w.clock.advance(Duration::days(9) + Duration::hours(23));
    w.allow(&twin_req, Action::Read, &read).await;
    // Day 40: 30 days unused, retired.
    w.clock.advance(Duration::hours(1));
    let denial = w.deny(&req, Action::Read, &read).await;
    assert_eq!(denial.reason(), &DenyReason::Idle);
    assert_eq!(denial.status(), DenyStatus::Unauthorized);
    assert_eq!(
        w.keys.token(&w.alice, t.token.id()).await.unwrap().status,
        TokenStatus::Idle
    );
    w.allow(&busy, Action::Read, &read).await;
    // The daily sweep makes it final: the idle token and the never-used primary key.
    assert_eq!(w.keys.retire_idle().await.unwrap(), 2);
    w.allow(&twin_req, Action::Read, &read).await;
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
    w.allow(&api_key(primary.token.expose_secret()), Action::Read, &read)
        .await;
}

#[tokio::test]
async fn a_request_from_outside_the_cidr_is_refused() {
    let w = world().await;
    let scope = ci_scope().within(Networks::only(["10.20.0.0/16", "2001:db8::/32"]).unwrap());
    let t = w.issue(NewToken::new("office CI", scope)).await;
    let from =
        |addr: &str| api_key(t.token.expose_secret()).with_client_addr(addr.parse().unwrap());
    w.allow(&from("10.20.3.4"), Action::Push, &PUSH).await;
    w.allow(&from("2001:db8::7"), Action::Push, &PUSH).await;
    for outside in ["10.21.0.1", "2001:db9::1"] {
        let denial = w.deny(&from(outside), Action::Push, &PUSH).await;
        assert_eq!(denial.reason(), &DenyReason::AddressNotAllowed);
    }
    // A server that gives no address gets a refusal, not a pass.
    let denial = w
        .deny(&api_key(t.token.expose_secret()), Action::Push, &PUSH)
        .await;
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
    let w = World::builder()
        .policy(LifetimePolicy::unlimited().with_max_write_lifetime(Duration::days(90)))
        .audit()
        .build()
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
    w.issue(NewToken::new("mirror", Scope::read_only())).await;
    w.issue(NewToken::new("CI", ci_scope()).expires(Expiry::After(Duration::days(90))))
        .await;
}

#[tokio::test]
async fn a_tightened_policy_is_enforced_at_refresh_and_edit() {
    let store = Arc::new(MemoryStore::new());
    let World {
        keys: loose,
        clock,
        alice,
        ..
    } = World::builder().store(Arc::clone(&store)).build().await;
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

/// Alice's tokens after one of each kind of event: the token, its refreshed secret and
/// its child, and the client address it was used from.
struct Provoked {
    t: IssuedToken,
    fresh: IssuedToken,
    child: IssuedToken,
    client: IpAddr,
}

/// Sets a password, issues, uses, is denied, edits, derives, refreshes, replays a retired
/// secret, looks for expiring tokens, revokes and regenerates the primary key.
async fn provoke_every_event(w: &World) -> Provoked {
    w.keys.set_password(&w.alice, "a passphrase").await.unwrap();
    let t = w
        .issue(NewToken::new("CI", ci_scope()).expires(Expiry::After(Duration::days(5))))
        .await;
    let client: IpAddr = "192.0.2.1".parse().unwrap();
    let req = api_key(t.token.expose_secret()).with_client_addr(client);
    w.allow(&req, Action::Push, &PUSH).await;
    w.deny(&req, Action::Read, &PUSH).await;
    w.edit(t.token.id(), TokenEdit::new().description("CI 2"))
        .await;
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
    w.deny(&req, Action::Push, &PUSH).await;
    w.keys
        .all_expiring_within(Duration::days(10))
        .await
        .unwrap();
    w.keys.revoke(&w.alice, child.token.id()).await.unwrap();
    w.keys
        .regenerate_primary(&w.alice, Expiry::Never)
        .await
        .unwrap();
    Provoked {
        t,
        fresh,
        child,
        client,
    }
}

#[tokio::test]
async fn every_event_is_observed() {
    let w = world().await;
    let Provoked { t, client, .. } = provoke_every_event(&w).await;
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
}

#[tokio::test]
async fn no_event_holds_a_secret() {
    let w = world().await;
    let Provoked {
        t, fresh, child, ..
    } = provoke_every_event(&w).await;
    let events = w.events.lock().unwrap();
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

/// A leak report's revocation tells the owner through the audit sink: one `Revoked`
/// event with `RevokeCause::Leaked` carrying the report's source, for the token's own
/// account; a forged report and a replay audit no revocation.
#[tokio::test]
async fn a_leaked_token_is_revoked_and_its_owner_told_where_it_was_found() {
    let w = world().await;
    let ci = w.issue(NewToken::new("CI", ci_scope())).await;
    let url = "https://github.com/alice/app/blob/main/nuget.config";
    let verdicts = w
        .keys
        .report_leaked([ci.token.expose_secret()], url)
        .await
        .unwrap();
    assert!(verdicts[0].is_true_positive());
    w.keys
        .report_leaked([ci.token.expose_secret()], url)
        .await
        .unwrap();
    let leaks: Vec<_> = w
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e.kind, AuditKind::Revoked { .. }))
        .cloned()
        .collect();
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert_eq!(
        leaks[0].kind,
        AuditKind::Revoked {
            cause: RevokeCause::Leaked { source: url.into() }
        }
    );
    assert_eq!(leaks[0].account.as_ref(), Some(&w.alice));
    assert_eq!(leaks[0].token, Some(ci.token.id()));
}

/// A report of ten thousand strings, nearly all noise and a few real tokens, is taken
/// whole: one verdict each, in order, the real ones revoked.
#[tokio::test]
async fn a_report_of_ten_thousand_candidates_is_taken_whole() {
    let w = world().await;
    let mut report: Vec<String> = (0..10_000).map(|i| format!("fk_noise{i}")).collect();
    let mut leaked = Vec::new();
    for at in [0, 4_999, 9_999] {
        let t = w.issue(NewToken::new("CI", ci_scope())).await;
        report[at] = t.token.expose_secret().to_owned();
        leaked.push((at, t));
    }
    let verdicts = w
        .keys
        .report_leaked(&report, "https://github.com/alice/app")
        .await
        .unwrap();
    assert_eq!(verdicts.len(), 10_000);
    for (i, verdict) in verdicts.iter().enumerate() {
        let real = leaked.iter().any(|(at, _)| *at == i);
        assert_eq!(verdict.is_true_positive(), real, "verdict {i}");
    }
    for (_, t) in &leaked {
        let denial = w
            .deny(&api_key(t.token.expose_secret()), Action::Push, &PUSH)
            .await;
        assert_eq!(denial.reason(), &DenyReason::Revoked);
    }
}
