//! The seeds' scenarios, end to end through the public API: NuGet's scoped API keys and
//! MyGet's access tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{START, World, api_key, basic, world};
use feedkey::time::Duration;
use feedkey::{
    Action, DenyReason, DenyStatus, Error, Expiry, Feeds, GrantedBy, IssuedToken, LifetimeError,
    LifetimePolicy, NewToken, Packages, Permission, Permissions, Scope, Target, TokenEdit,
    TokenInfo, TokenKind, TokenStatus, Widening,
};

fn push_scope(packages: &[&str]) -> Scope {
    Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::Any,
        Packages::only(packages).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn contoso_service_ci_key_pushes_its_packages_for_365_days() {
    let w = World::builder()
        .policy(LifetimePolicy::nuget())
        .build()
        .await;
    let ci = w
        .issue(
            NewToken::new("Contoso service CI", push_scope(&["Contoso.Service*"]))
                .expires(Expiry::After(Duration::days(365))),
        )
        .await;
    assert_eq!(ci.info.expires_at, Some(START + Duration::days(365)));
    let req = api_key(ci.token.expose_secret());

    let grant = w
        .allow(
            &req,
            Action::Push,
            &Target::package("nuget", "Contoso.Service.Core"),
        )
        .await;
    assert_eq!(grant.account(), &w.alice);
    assert_eq!(grant.token_id(), Some(ci.token.id()));
    assert_eq!(grant.granted_by(), GrantedBy::Token);

    let denial = w
        .deny(
            &req,
            Action::Push,
            &Target::package("nuget", "Fabrikam.Other"),
        )
        .await;
    assert_eq!(denial.reason(), &DenyReason::PackageOutOfScope);
    assert_eq!(denial.status(), DenyStatus::Forbidden);

    // A day past its 365 it stops.
    w.clock.advance(Duration::days(366));
    let denial = w
        .deny(
            &req,
            Action::Push,
            &Target::package("nuget", "Contoso.Service.Core"),
        )
        .await;
    assert_eq!(denial.reason(), &DenyReason::Expired);
    assert_eq!(denial.status(), DenyStatus::Unauthorized);
}

#[tokio::test]
async fn nuget_policy_refuses_a_key_beyond_365_days_or_without_expiry() {
    let w = World::builder()
        .policy(LifetimePolicy::nuget())
        .build()
        .await;
    let too_long = w
        .keys
        .issue(
            &w.alice,
            NewToken::new("x", Scope::read_only()).expires(Expiry::After(Duration::days(400))),
        )
        .await
        .unwrap_err();
    assert_eq!(
        too_long,
        Error::Lifetime(LifetimeError::TooLong {
            limit: feedkey::LifetimeLimit::Any,
            max: Duration::days(365)
        })
    );
    let never = w
        .keys
        .issue(&w.alice, NewToken::new("x", Scope::read_only()))
        .await
        .unwrap_err();
    assert_eq!(never, Error::Lifetime(LifetimeError::ExpiryRequired));
}

#[tokio::test]
async fn a_glob_key_pushes_a_package_that_did_not_exist_yet() {
    let w = world().await;
    let key = w
        .issue(NewToken::new(
            "Fabrikam services",
            push_scope(&["fabrikam.service.*"]),
        ))
        .await;
    let req = api_key(key.token.expose_secret());
    w.allow(
        &req,
        Action::Push,
        &Target::new_package("nuget", "Fabrikam.Service.Framework"),
    )
    .await;
    let denial = w
        .deny(
            &req,
            Action::Push,
            &Target::new_package("nuget", "Fabrikam.Web"),
        )
        .await;
    assert_eq!(denial.reason(), &DenyReason::PackageOutOfScope);
}

#[tokio::test]
async fn a_myget_ci_key_pushes_to_one_feed_and_cannot_read() {
    let w = world().await;
    let scope = Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::only(["ci"]).unwrap(),
        Packages::Any,
    )
    .unwrap();
    let key = w.issue(NewToken::new("TeamCity", scope)).await;
    let req = api_key(key.token.expose_secret());
    w.allow(&req, Action::Push, &Target::new_package("ci", "Acme.Build"))
        .await;
    let other_feed = w
        .deny(
            &req,
            Action::Push,
            &Target::new_package("release", "Acme.Build"),
        )
        .await;
    assert_eq!(other_feed.reason(), &DenyReason::FeedOutOfScope);
    for target in [Target::feed("ci"), Target::package("ci", "Acme.Build")] {
        let read = w.deny(&req, Action::Read, &target).await;
        assert_eq!(
            read.reason(),
            &DenyReason::ActionOutOfScope(Permission::Read)
        );
    }
}

#[tokio::test]
async fn a_read_only_key_reads_and_cannot_push_or_unlist() {
    let w = world().await;
    let key = w.issue(NewToken::new("laptop", Scope::read_only())).await;
    let req = api_key(key.token.expose_secret());
    w.allow(&req, Action::Read, &Target::feed("main")).await;
    for (action, target, needs) in [
        (
            Action::Push,
            Target::new_package("main", "A"),
            Permission::PushNew,
        ),
        (
            Action::Push,
            Target::package("main", "A"),
            Permission::PushVersion,
        ),
        (
            Action::Unlist,
            Target::package("main", "A"),
            Permission::Unlist,
        ),
    ] {
        let denial = w.deny(&req, action, &target).await;
        assert_eq!(denial.reason(), &DenyReason::ActionOutOfScope(needs));
    }
}

#[tokio::test]
async fn refresh_kills_the_old_secret_and_keeps_scope_description_and_expiry() {
    let w = world().await;
    let old = w
        .issue(
            NewToken::new("Contoso service CI", push_scope(&["Contoso.Service*"]))
                .expires(Expiry::After(Duration::days(100))),
        )
        .await;
    w.clock.advance(Duration::days(10));
    let new = w.keys.refresh(&w.alice, old.token.id()).await.unwrap();
    assert_eq!(new.token.id(), old.token.id());
    assert_ne!(new.token.expose_secret(), old.token.expose_secret());
    assert_eq!(new.info.scope, old.info.scope);
    assert_eq!(new.info.description, old.info.description);
    assert_eq!(new.info.expires_at, old.info.expires_at);

    let target = Target::package("nuget", "Contoso.Service.Core");
    let denial = w
        .deny(&api_key(old.token.expose_secret()), Action::Push, &target)
        .await;
    // Refused, and reported as the reuse of a retired secret (30 days by default).
    assert_eq!(denial.reason(), &DenyReason::RetiredSecretReused);
    assert_eq!(denial.status(), DenyStatus::Unauthorized);
    w.allow(&api_key(new.token.expose_secret()), Action::Push, &target)
        .await;
}

#[tokio::test]
async fn an_expired_token_cannot_be_refreshed() {
    let w = world().await;
    let t = w
        .issue(NewToken::new("x", Scope::read_only()).expires(Expiry::After(Duration::days(1))))
        .await;
    w.clock.advance(Duration::days(2));
    assert_eq!(
        w.keys.refresh(&w.alice, t.token.id()).await.unwrap_err(),
        Error::TokenExpired
    );
}

#[tokio::test]
async fn revoke_is_for_good() {
    let w = world().await;
    let t = w
        .issue(NewToken::new("old laptop", Scope::read_only()))
        .await;
    w.keys.revoke(&w.alice, t.token.id()).await.unwrap();
    let denial = w
        .deny(
            &api_key(t.token.expose_secret()),
            Action::Read,
            &Target::feed("main"),
        )
        .await;
    assert_eq!(denial.reason(), &DenyReason::Revoked);
    assert_eq!(denial.status(), DenyStatus::Unauthorized);
    // It is gone from the list, and nothing can bring it back.
    let listed = w.keys.tokens(&w.alice).await.unwrap();
    assert!(listed.iter().all(|i| i.id != t.token.id()));
    assert_eq!(
        w.keys.refresh(&w.alice, t.token.id()).await.unwrap_err(),
        Error::TokenNotFound
    );
    assert_eq!(
        w.keys
            .edit(&w.alice, t.token.id(), TokenEdit::new().description("back"))
            .await
            .unwrap_err(),
        Error::TokenNotFound
    );
    // After the purge, its use reads as an unknown token.
    w.clock.advance(Duration::days(31));
    assert_eq!(w.keys.purge_revoked(Duration::days(30)).await.unwrap(), 1);
    let denial = w
        .deny(
            &api_key(t.token.expose_secret()),
            Action::Read,
            &Target::feed("main"),
        )
        .await;
    assert_eq!(denial.reason(), &DenyReason::UnknownToken);
}

#[tokio::test]
async fn expiry_and_the_ten_day_warning() {
    let w = world().await;
    let soon = w
        .issue(NewToken::new("soon", Scope::read_only()).expires(Expiry::After(Duration::days(15))))
        .await;
    let later = w
        .issue(
            NewToken::new("later", Scope::read_only()).expires(Expiry::After(Duration::days(60))),
        )
        .await;
    let ten_days = Duration::days(10);
    assert!(
        w.keys
            .expiring_within(&w.alice, ten_days)
            .await
            .unwrap()
            .is_empty()
    );
    w.clock.advance(Duration::days(6));
    let warned = w.keys.expiring_within(&w.alice, ten_days).await.unwrap();
    assert_eq!(
        warned.iter().map(|t| t.id).collect::<Vec<_>>(),
        [soon.token.id()]
    );
    assert_eq!(warned[0].status, TokenStatus::Active);
    let mail = w.keys.all_expiring_within(ten_days).await.unwrap();
    assert_eq!(
        mail.iter().map(|t| t.id).collect::<Vec<_>>(),
        [soon.token.id()]
    );
    // Past its expiry it still shows, as expired, and no longer works.
    w.clock.advance(Duration::days(10));
    let warned = w.keys.expiring_within(&w.alice, ten_days).await.unwrap();
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0].status, TokenStatus::Expired);
    assert!(
        w.keys
            .all_expiring_within(ten_days)
            .await
            .unwrap()
            .is_empty()
    );
    let denial = w
        .deny(
            &api_key(soon.token.expose_secret()),
            Action::Read,
            &Target::feed("main"),
        )
        .await;
    assert_eq!(denial.reason(), &DenyReason::Expired);
    w.allow(
        &api_key(later.token.expose_secret()),
        Action::Read,
        &Target::feed("main"),
    )
    .await;
}

#[tokio::test]
async fn a_token_stands_in_for_the_password_in_basic_auth() {
    let w = world().await;
    let t = w
        .issue(NewToken::new("Visual Studio", Scope::read_only()))
        .await;
    let grant = w
        .allow(
            &basic("alice", t.token.expose_secret()),
            Action::Read,
            &Target::feed("private"),
        )
        .await;
    assert_eq!(grant.token_id(), Some(t.token.id()));
    // As a Bearer token too.
    let bearer = format!("Bearer {}", t.token.expose_secret());
    w.allow(
        &feedkey::Request::from_headers(None, Some(bearer.as_bytes())),
        Action::Read,
        &Target::feed("private"),
    )
    .await;
}

#[tokio::test]
async fn a_token_never_signs_in_and_the_password_only_reads() {
    let w = world().await;
    w.keys
        .set_password(&w.alice, "correct horse battery")
        .await
        .unwrap();
    let t = w.issue(NewToken::new("all", Scope::full())).await;
    let denial = w
        .keys
        .sign_in("alice", t.token.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(denial.reason(), &DenyReason::TokenCannotSignIn);
    assert_eq!(
        w.keys
            .sign_in("alice", "correct horse battery")
            .await
            .unwrap(),
        w.alice
    );
    assert_eq!(
        w.keys.sign_in("alice", "wrong").await.unwrap_err().reason(),
        &DenyReason::WrongPassword
    );
    assert_eq!(
        w.keys
            .sign_in("mallory", "correct horse battery")
            .await
            .unwrap_err()
            .reason(),
        &DenyReason::UnknownAccount
    );

    let password = basic("alice", "correct horse battery");
    let grant = w
        .allow(&password, Action::Read, &Target::feed("private"))
        .await;
    assert_eq!(grant.granted_by(), GrantedBy::Password);
    assert_eq!(grant.token_id(), None);
    let denial = w
        .deny(
            &password,
            Action::Push,
            &Target::new_package("private", "A"),
        )
        .await;
    assert_eq!(denial.reason(), &DenyReason::PasswordCannotWrite);

    // A new password: the old one stops at once, remembered or not.
    w.keys.set_password(&w.alice, "new password").await.unwrap();
    let denial = w
        .deny(&password, Action::Read, &Target::feed("private"))
        .await;
    assert_eq!(denial.reason(), &DenyReason::WrongPassword);
}

#[tokio::test]
async fn a_mistyped_token_in_basic_auth_is_a_malformed_token_not_a_wrong_password() {
    let w = world().await;
    let t = w.issue(NewToken::new("x", Scope::read_only())).await;
    let mut typo = t.token.expose_secret().to_owned();
    let last = typo.pop().unwrap();
    typo.push(if last == 'A' { 'B' } else { 'A' });
    let denial = w
        .deny(&basic("alice", &typo), Action::Read, &Target::feed("f"))
        .await;
    assert!(matches!(denial.reason(), DenyReason::MalformedToken(_)));
}

/// A write-only CI token for two feeds and one package, then edited to a new
/// description, all the service's packages and one feed.
async fn edited_ci_token(w: &World) -> (IssuedToken, TokenInfo) {
    let scope = Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::only(["ci", "release"]).unwrap(),
        Packages::only(["Contoso.Service.Core"]).unwrap(),
    )
    .unwrap();
    let t = w.issue(NewToken::new("CI", scope)).await;
    let edited = w
        .edit(
            t.token.id(),
            TokenEdit::new()
                .description("CI (all services)")
                .packages(Packages::only(["Contoso.Service.*"]).unwrap())
                .feeds(Feeds::only(["ci"]).unwrap()),
        )
        .await;
    (t, edited)
}

#[tokio::test]
async fn edits_change_description_packages_and_feeds() {
    let w = world().await;
    let (t, edited) = edited_ci_token(&w).await;
    assert_eq!(edited.description, "CI (all services)");
    let req = api_key(t.token.expose_secret());
    w.allow(
        &req,
        Action::Push,
        &Target::new_package("ci", "Contoso.Service.Api"),
    )
    .await;
    let narrowed = w
        .deny(
            &req,
            Action::Push,
            &Target::package("release", "Contoso.Service.Core"),
        )
        .await;
    assert_eq!(narrowed.reason(), &DenyReason::FeedOutOfScope);
}

#[tokio::test]
async fn edits_never_widen_and_a_refused_edit_writes_nothing() {
    let w = world().await;
    let (t, edited) = edited_ci_token(&w).await;
    let id = t.token.id();
    let refused = |edit: TokenEdit| async { w.keys.edit(&w.alice, id, edit).await.unwrap_err() };
    assert_eq!(
        refused(TokenEdit::new().permissions(Permissions::FULL)).await,
        Error::Widens(Widening::Permissions)
    );
    assert_eq!(
        refused(TokenEdit::new().feeds(Feeds::Any)).await,
        Error::Widens(Widening::Feeds)
    );
    assert_eq!(
        refused(TokenEdit::new().feeds(Feeds::only(["ci", "release"]).unwrap())).await,
        Error::Widens(Widening::Feeds)
    );
    // A refused edit writes nothing, not even its description.
    let info = w.keys.token(&w.alice, id).await.unwrap();
    assert_eq!(
        (&info.description, &info.scope),
        (&edited.description, &edited.scope)
    );
    // Narrowing permissions is fine.
    let info = w
        .edit(
            id,
            TokenEdit::new().permissions(Permissions::PUSH_VERSION_ONLY),
        )
        .await;
    assert_eq!(info.scope.permissions(), Permissions::PUSH_VERSION_ONLY);
    // The secret is unchanged by edits.
    w.allow(
        &api_key(t.token.expose_secret()),
        Action::Push,
        &Target::package("ci", "Contoso.Service.Api"),
    )
    .await;
}

#[tokio::test]
async fn the_primary_key_has_full_access_and_is_regenerated_not_revoked() {
    let w = world().await;
    let bob = feedkey::AccountId::new("bob").unwrap();
    let first = w
        .keys
        .create_account(&bob, Expiry::After(Duration::days(90)))
        .await
        .unwrap();
    assert_eq!(first.info.kind, TokenKind::Primary);
    assert_eq!(first.info.expires_at, Some(START + Duration::days(90)));
    let req = api_key(first.token.expose_secret());
    for (action, target) in [
        (Action::Read, Target::feed("any")),
        (Action::Push, Target::new_package("any", "x")),
        (Action::Push, Target::package("any", "x")),
        (Action::Unlist, Target::package("any", "x")),
    ] {
        let grant = w.allow(&req, action, &target).await;
        assert_eq!(grant.granted_by(), GrantedBy::PrimaryKey);
    }
    assert_eq!(
        w.keys.revoke(&bob, first.token.id()).await.unwrap_err(),
        Error::PrimaryKey
    );
    assert_eq!(
        w.keys
            .edit(
                &bob,
                first.token.id(),
                TokenEdit::new().permissions(Permissions::READ_ONLY)
            )
            .await
            .unwrap_err(),
        Error::PrimaryKey
    );
    let second = w
        .keys
        .regenerate_primary(&bob, Expiry::Never)
        .await
        .unwrap();
    assert_eq!(second.info.expires_at, None);
    let old = w.deny(&req, Action::Read, &Target::feed("any")).await;
    assert_eq!(old.reason(), &DenyReason::RetiredSecretReused);
    w.allow(
        &api_key(second.token.expose_secret()),
        Action::Read,
        &Target::feed("any"),
    )
    .await;
    assert_eq!(
        w.keys
            .create_account(&bob, Expiry::Never)
            .await
            .unwrap_err(),
        Error::AccountExists
    );
}

#[tokio::test]
async fn one_account_cannot_see_or_touch_another_accounts_tokens() {
    let w = world().await;
    let bob = feedkey::AccountId::new("bob").unwrap();
    w.keys.create_account(&bob, Expiry::Never).await.unwrap();
    let t = w.issue(NewToken::new("alice's", Scope::read_only())).await;
    let id = t.token.id();
    assert_eq!(
        w.keys.token(&bob, id).await.unwrap_err(),
        Error::TokenNotFound
    );
    assert_eq!(
        w.keys.revoke(&bob, id).await.unwrap_err(),
        Error::TokenNotFound
    );
    assert_eq!(
        w.keys.refresh(&bob, id).await.unwrap_err(),
        Error::TokenNotFound
    );
    assert!(
        w.keys
            .tokens(&bob)
            .await
            .unwrap()
            .iter()
            .all(|i| i.id != id)
    );
    // Alice's token still works.
    w.allow(
        &api_key(t.token.expose_secret()),
        Action::Read,
        &Target::feed("f"),
    )
    .await;
}

#[tokio::test]
async fn an_account_lists_its_tokens_with_last_use_and_no_secret() {
    let w = world().await;
    let t = w.issue(NewToken::new("CI", Scope::read_only())).await;
    let listed = w.keys.tokens(&w.alice).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].kind, TokenKind::Primary);
    assert_eq!(listed[1].last_used_at, None);

    w.clock.advance(Duration::hours(1));
    let req = api_key(t.token.expose_secret());
    w.allow(&req, Action::Read, &Target::feed("f")).await;
    let used = w.keys.token(&w.alice, t.token.id()).await.unwrap();
    assert_eq!(used.last_used_at, Some(START + Duration::hours(1)));

    // Within the recording interval a use is not written again; after it, it is.
    w.clock.advance(Duration::seconds(30));
    w.allow(&req, Action::Read, &Target::feed("f")).await;
    let used = w.keys.token(&w.alice, t.token.id()).await.unwrap();
    assert_eq!(used.last_used_at, Some(START + Duration::hours(1)));
    w.clock.advance(Duration::seconds(31));
    w.allow(&req, Action::Read, &Target::feed("f")).await;
    let used = w.keys.token(&w.alice, t.token.id()).await.unwrap();
    assert_eq!(
        used.last_used_at,
        Some(START + Duration::hours(1) + Duration::seconds(61))
    );

    let json = serde_json::to_string(&w.keys.tokens(&w.alice).await.unwrap()).unwrap();
    let secret_body = &t.token.expose_secret()[3..];
    assert!(!json.contains(secret_body));
    assert!(!json.contains("fk-blake3"));
    assert!(json.contains(&t.token.id().to_string()));
}
