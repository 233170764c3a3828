//! Trusted publishing through the public API: a CI job's OIDC token (signed by the test
//! issuer of `common/oidc_issuer.rs`, playing GitHub Actions) exchanged for a short-lived
//! key of its policy's scope; the key's life (its lifetime, its policy narrowed or
//! removed); a token used twice; and the hostile-token table, each refused with its own
//! reason.
//!
//! The replay rule runs on every backend: memory, SQLite on a temporary file, and
//! PostgreSQL and MySQL/MariaDB from `FEEDKEY_TEST_POSTGRES_URL` and
//! `FEEDKEY_TEST_MYSQL_URL` (unset: those tests print that they were skipped and pass).

#![cfg(feature = "oidc")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/oidc_issuer.rs"]
mod issuer;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use feedkey::oidc::{OidcIssuer, Refusal, StaticIssuers, TrustRule};
use feedkey::store::TrustStore;
use feedkey::store::testing::{api_key, key};
use feedkey::time::{Duration, OffsetDateTime};
use feedkey::{
    AccountId, Action, Error, Expiry, Feedkey, Feeds, ManualClock, MemoryStore, NewTrustPolicy,
    Packages, Permissions, Scope, Target, TokenKind, TokenStore, TrustPolicyEdit,
};
use issuer::{AUDIENCE, ec, job, jwks, rsa, sign, signed};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;

fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).unwrap()
}

fn issuers() -> StaticIssuers {
    StaticIssuers::from(issuer::github())
}

/// The policy of `contoso/service`'s `release.yml`, by names only.
fn rule() -> TrustRule {
    TrustRule::GitHub {
        issuer: OidcIssuer::GITHUB_ACTIONS.into(),
        owner: "Contoso".into(),
        owner_id: None,
        repository: "Service".into(),
        repository_id: None,
        workflow: "release.yml".into(),
        reusable_workflow: None,
        environment: Some("production".into()),
    }
}

/// Push new packages and versions of `Contoso.Service*`, on any feed.
fn publish_scope() -> Scope {
    Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::Any,
        Packages::only(["Contoso.Service*"]).unwrap(),
    )
    .unwrap()
}

const COVERED: Target<'static> = Target::package("main", "Contoso.Service.Core");
const OTHER: Target<'static> = Target::package("main", "Fabrikam.Core");

struct World<S> {
    keys: Arc<Feedkey<S>>,
    clock: ManualClock,
    alice: AccountId,
}

async fn world<S: TokenStore + TrustStore + 'static>(store: S) -> World<S> {
    let clock = ManualClock::new(start());
    let keys = Feedkey::builder(store, key(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    keys.add_trust_policy(&alice, NewTrustPolicy::new(rule(), publish_scope()))
        .await
        .unwrap();
    World {
        keys: Arc::new(keys),
        clock,
        alice,
    }
}

fn refusal(result: Result<feedkey::IssuedToken, Error>) -> Refusal {
    match result {
        Err(Error::NotAllowed(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The replay rule on one backend: the same OIDC token exchanged twice (and by 8 tasks at
/// once) yields one key.
async fn replay_rule<S: TokenStore + TrustStore + 'static>(store: S) {
    let w = world(store).await;
    let token = signed(&job(NOW, "run-1"));
    let issued = w.keys.exchange(&issuers(), &token, None).await.unwrap();
    assert!(
        w.keys
            .authorize(
                &api_key(issued.token.expose_secret()),
                Action::Push,
                &COVERED
            )
            .await
            .is_ok()
    );
    assert_eq!(
        refusal(w.keys.exchange(&issuers(), &token, None).await),
        Refusal::Replayed
    );
    let racing = signed(&job(NOW, "run-2"));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let keys = Arc::clone(&w.keys);
            let racing = racing.clone();
            tokio::spawn(async move { keys.exchange(&issuers(), &racing, None).await })
        })
        .collect();
    let mut minted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => minted += 1,
            Err(Error::NotAllowed(Refusal::Replayed)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(minted, 1, "one key for one OIDC token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_token_is_exchanged_once_in_memory() {
    replay_rule(MemoryStore::new()).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_token_is_exchanged_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    replay_rule(feedkey::SqliteStore::open(dir.path().join("t.db")).unwrap()).await;
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
#[path = "common/database.rs"]
mod database;

#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn replay_on_server(var: &str) {
    let Some(server) = database::Server::new(var).await else {
        return;
    };
    replay_rule(feedkey::SqlStore::connect(&server.url).await.unwrap()).await;
    server.cleanup().await;
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_token_is_exchanged_once_on_postgres() {
    replay_on_server("FEEDKEY_TEST_POSTGRES_URL").await;
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_token_is_exchanged_once_on_mysql() {
    replay_on_server("FEEDKEY_TEST_MYSQL_URL").await;
}

#[tokio::test]
async fn a_job_token_becomes_a_key_of_the_policy_scope_that_says_where_it_came_from() {
    let w = world(MemoryStore::new()).await;
    for (alg, kid, key, jti) in [
        (Algorithm::RS256, "rsa-1", rsa(), "rsa-run"),
        (Algorithm::ES256, "ec-1", ec(), "ec-run"),
    ] {
        let token = sign(alg, kid, &key, &job(NOW, jti));
        let issued = w.keys.exchange(&issuers(), &token, None).await.unwrap();
        let secret = issued.token.expose_secret();
        assert!(
            w.keys
                .authorize(&api_key(secret), Action::Push, &COVERED)
                .await
                .is_ok()
        );
        assert!(
            w.keys
                .authorize(&api_key(secret), Action::Push, &OTHER)
                .await
                .is_err(),
            "a package the policy does not cover"
        );
        assert!(
            w.keys
                .authorize(&api_key(secret), Action::Read, &COVERED)
                .await
                .is_err(),
            "never read by default"
        );
        let info = issued.info;
        assert_eq!(info.kind, TokenKind::TrustedPublishing);
        assert_eq!(info.account, w.alice);
        assert_eq!(info.expires_at, Some(start() + Duration::HOUR));
        for part in [
            OidcIssuer::GITHUB_ACTIONS,
            "contoso/service",
            "release.yml",
            "4242",
        ] {
            assert!(info.description.contains(part), "{}", info.description);
        }
    }
    // The keys are the owner's to list and revoke; the policy's own record is not.
    let listed = w.keys.tokens(&w.alice).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .filter(|t| t.kind == TokenKind::TrustedPublishing)
            .count(),
        2
    );
    assert!(listed.iter().all(|t| t.kind != TokenKind::TrustPolicy));
    let policy = w.keys.trust_policies(&w.alice).await.unwrap().remove(0);
    assert!(w.keys.token(&w.alice, policy.id).await.is_err());
    assert!(w.keys.revoke(&w.alice, policy.id).await.is_err());
}

#[tokio::test]
async fn a_minted_key_dies_after_its_lifetime_and_when_its_policy_is_removed() {
    let w = world(MemoryStore::new()).await;
    let first = w
        .keys
        .exchange(&issuers(), &signed(&job(NOW, "a")), None)
        .await
        .unwrap();
    w.clock.advance(Duration::minutes(61));
    let denial = w
        .keys
        .authorize(
            &api_key(first.token.expose_secret()),
            Action::Push,
            &COVERED,
        )
        .await
        .unwrap_err();
    assert_eq!(denial.reason().code(), "expired");

    let now = NOW + 61 * 60;
    let second = w
        .keys
        .exchange(&issuers(), &signed(&job(now, "b")), None)
        .await
        .unwrap();
    let request = api_key(second.token.expose_secret());
    assert!(
        w.keys
            .authorize(&request, Action::Push, &COVERED)
            .await
            .is_ok()
    );
    let policy = w.keys.trust_policies(&w.alice).await.unwrap().remove(0);
    w.keys
        .remove_trust_policy(&w.alice, policy.id)
        .await
        .unwrap();
    assert!(
        w.keys
            .authorize(&request, Action::Push, &COVERED)
            .await
            .is_err()
    );
    assert!(w.keys.trust_policies(&w.alice).await.unwrap().is_empty());
    assert_eq!(
        refusal(
            w.keys
                .exchange(&issuers(), &signed(&job(now, "c")), None)
                .await
        ),
        Refusal::NoMatchingPolicy("repository")
    );
}

#[tokio::test]
async fn a_used_token_id_is_forgotten_only_once_the_token_can_no_longer_verify() {
    let w = world(MemoryStore::new()).await;
    let token = signed(&job(NOW, "kept"));
    w.keys.exchange(&issuers(), &token, None).await.unwrap();
    assert_eq!(w.keys.forget_used_oidc_tokens().await.unwrap(), 0);
    // Past `exp` (290 s) but within the leeway: still remembered, still a replay.
    w.clock.advance(Duration::seconds(320));
    assert_eq!(w.keys.forget_used_oidc_tokens().await.unwrap(), 0);
    assert_eq!(
        refusal(w.keys.exchange(&issuers(), &token, None).await),
        Refusal::Replayed
    );
    // Past `exp` and the most leeway: forgotten, and the token itself is expired.
    w.clock.advance(Duration::minutes(5));
    assert_eq!(w.keys.forget_used_oidc_tokens().await.unwrap(), 1);
    assert_eq!(
        refusal(w.keys.exchange(&issuers(), &token, None).await),
        Refusal::Expired
    );
}

#[tokio::test]
async fn narrowing_a_policy_narrows_the_keys_already_minted_and_it_never_widens() {
    let w = world(MemoryStore::new()).await;
    let issued = w
        .keys
        .exchange(&issuers(), &signed(&job(NOW, "a")), None)
        .await
        .unwrap();
    let request = api_key(issued.token.expose_secret());
    let policy = w.keys.trust_policies(&w.alice).await.unwrap().remove(0);
    let mut edit = TrustPolicyEdit::default();
    edit.scope.packages = Some(Packages::only(["Contoso.Service.Web"]).unwrap());
    let narrowed = w
        .keys
        .edit_trust_policy(&w.alice, policy.id, edit)
        .await
        .unwrap();
    assert_eq!(
        narrowed.scope.packages(),
        &Packages::only(["Contoso.Service.Web"]).unwrap()
    );
    let denial = w
        .keys
        .authorize(&request, Action::Push, &COVERED)
        .await
        .unwrap_err();
    assert_eq!(denial.reason().code(), "parent-out-of-scope");
    let web = Target::package("main", "Contoso.Service.Web");
    assert!(w.keys.authorize(&request, Action::Push, &web).await.is_ok());

    let mut widen = TrustPolicyEdit::default();
    widen.scope.packages = Some(Packages::Any);
    assert!(matches!(
        w.keys.edit_trust_policy(&w.alice, policy.id, widen).await,
        Err(Error::PolicyWidens(_))
    ));
    let mut longer = TrustPolicyEdit::default();
    longer.lifetime = Some(Duration::hours(3));
    assert!(matches!(
        w.keys.edit_trust_policy(&w.alice, policy.id, longer).await,
        Err(Error::PolicyWidens(_))
    ));
    let mut shorter = TrustPolicyEdit::default();
    shorter.lifetime = Some(Duration::minutes(10));
    w.keys
        .edit_trust_policy(&w.alice, policy.id, shorter)
        .await
        .unwrap();
    let short = w
        .keys
        .exchange(&issuers(), &signed(&job(NOW, "b")), None)
        .await
        .unwrap();
    assert_eq!(short.info.expires_at, Some(start() + Duration::minutes(10)));
}

#[tokio::test]
async fn the_first_exchange_locks_the_repository_ids() {
    let w = world(MemoryStore::new()).await;
    w.keys
        .exchange(&issuers(), &signed(&job(NOW, "a")), None)
        .await
        .unwrap();
    let policy = w.keys.trust_policies(&w.alice).await.unwrap().remove(0);
    let TrustRule::GitHub {
        owner_id,
        repository_id,
        ..
    } = &policy.rule
    else {
        panic!("a GitHub rule");
    };
    assert_eq!(
        (owner_id.as_deref(), repository_id.as_deref()),
        (Some("100"), Some("200"))
    );
    // The repository deleted and made again under the same name: a new id.
    let mut recreated = job(NOW, "b");
    recreated["repository_id"] = json!("201");
    assert_eq!(
        refusal(w.keys.exchange(&issuers(), &signed(&recreated), None).await),
        Refusal::NoMatchingPolicy("repository_id")
    );
}

#[tokio::test]
async fn a_repository_trusted_by_two_accounts_needs_the_account_named() {
    let w = world(MemoryStore::new()).await;
    let bob = AccountId::new("bob").unwrap();
    w.keys.create_account(&bob, Expiry::Never).await.unwrap();
    w.keys
        .add_trust_policy(&bob, NewTrustPolicy::new(rule(), publish_scope()))
        .await
        .unwrap();
    assert_eq!(
        refusal(
            w.keys
                .exchange(&issuers(), &signed(&job(NOW, "a")), None)
                .await
        ),
        Refusal::SeveralAccounts
    );
    let issued = w
        .keys
        .exchange(&issuers(), &signed(&job(NOW, "b")), Some(&bob))
        .await
        .unwrap();
    assert_eq!(issued.info.account, bob);
}

/// Each hostile token, refused with its own reason and no panic.
#[tokio::test]
async fn hostile_tokens_are_refused_each_with_its_own_reason() {
    let w = world(MemoryStore::new()).await;
    let with = |key: &str, value: Value| {
        let mut claims = job(NOW, &format!("hostile-{key}"));
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value;
        }
        signed(&claims)
    };
    let good = signed(&job(NOW, "good"));
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, _signature) = rest.split_once('.').unwrap();
    // The payload of another job under this signature.
    let mut changed = job(NOW, "good");
    changed["repository"] = json!("contoso/other");
    let forged = format!(
        "{head}.{}.{}",
        URL_SAFE_NO_PAD.encode(changed.to_string()),
        rest.split_once('.').unwrap().1
    );
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"rsa-1","typ":"JWT"}"#)
    );
    let public: Value = serde_json::from_str(&jwks()).unwrap();
    let public = serde_json::to_vec(&public["keys"][0]).unwrap();
    let hmac = sign(
        Algorithm::HS256,
        "rsa-1",
        &EncodingKey::from_secret(&public).unwrap(),
        &job(NOW, "hmac"),
    );
    let big = format!("{head}.{}.{}", "A".repeat(1 << 20), "B");
    let replayed = signed(&job(NOW, "replayed"));
    w.keys.exchange(&issuers(), &replayed, None).await.unwrap();

    let cases: Vec<(&str, String, Refusal)> = vec![
        ("wrong signature", forged, Refusal::BadSignature),
        ("alg none", none, Refusal::AlgorithmRefused),
        (
            "HS256 keyed with the public key",
            hmac,
            Refusal::AlgorithmRefused,
        ),
        (
            "unknown kid",
            sign(Algorithm::RS256, "rsa-9", &rsa(), &job(NOW, "kid")),
            Refusal::UnknownKey,
        ),
        (
            "ES256 naming the RSA key",
            sign(Algorithm::ES256, "rsa-1", &ec(), &job(NOW, "fit")),
            Refusal::KeyMismatch,
        ),
        (
            "another issuer",
            with("iss", json!("https://gitlab.com")),
            Refusal::UnknownIssuer,
        ),
        (
            "wrong aud",
            with("aud", json!("https://other.example")),
            Refusal::WrongAudience,
        ),
        ("expired", with("exp", json!(NOW - 61)), Refusal::Expired),
        (
            "not yet valid",
            with("nbf", json!(NOW + 61)),
            Refusal::NotYetValid,
        ),
        (
            "issued in the future",
            with("iat", json!(NOW + 61)),
            Refusal::IssuedInFuture,
        ),
        ("missing jti", with("jti", Value::Null), Refusal::MissingJti),
        (
            "missing exp",
            with("exp", Value::Null),
            Refusal::MissingClaim("exp"),
        ),
        (
            "missing aud",
            with("aud", Value::Null),
            Refusal::MissingClaim("aud"),
        ),
        ("replayed jti", replayed, Refusal::Replayed),
        (
            "the right name, another repository_id",
            {
                // Lock the policy first with the real ids.
                w.keys
                    .exchange(&issuers(), &signed(&job(NOW, "lock")), None)
                    .await
                    .unwrap();
                with("repository_id", json!("999"))
            },
            Refusal::NoMatchingPolicy("repository_id"),
        ),
        (
            "another workflow",
            with(
                "workflow_ref",
                json!("contoso/service/.github/workflows/ci.yml@refs/heads/main"),
            ),
            Refusal::NoMatchingPolicy("workflow_ref"),
        ),
        (
            "another environment",
            with("environment", json!("staging")),
            Refusal::NoMatchingPolicy("environment"),
        ),
        (
            "a repository that is not a string",
            with("repository", json!(["contoso/service"])),
            Refusal::BadClaim("repository"),
        ),
        (
            "an exp that is not a time",
            with("exp", json!("soon")),
            Refusal::BadClaim("exp"),
        ),
        (
            "a jti that is not a string",
            with("jti", json!(7)),
            Refusal::BadClaim("jti"),
        ),
        ("1 MiB", big, Refusal::TooLarge),
        ("not a JWT", "not.a.jwt".to_owned(), Refusal::Malformed),
        ("empty", String::new(), Refusal::Malformed),
    ];
    for (what, token, expected) in cases {
        let got = refusal(w.keys.exchange(&issuers(), &token, None).await);
        assert_eq!(got, expected, "{what}");
        assert!(
            token.is_empty() || !got.to_string().contains(&token),
            "{what}: no token in the reason"
        );
    }
    assert_eq!(Refusal::CLIENT_MESSAGE, "not allowed");
    let _ = AUDIENCE;
}

/// An account that is disabled or deleted gains no policy, as it gains no token; once
/// enabled again it may add one.
#[tokio::test]
async fn a_disabled_or_deleted_account_adds_no_policy() {
    let w = world(MemoryStore::new()).await;
    let before = w.keys.trust_policies(&w.alice).await.unwrap().len();
    w.keys.disable_account(&w.alice).await.unwrap();
    let added = w
        .keys
        .add_trust_policy(&w.alice, NewTrustPolicy::new(rule(), publish_scope()))
        .await;
    assert!(matches!(added, Err(Error::AccountDisabled)), "{added:?}");
    assert_eq!(w.keys.trust_policies(&w.alice).await.unwrap().len(), before);
    w.keys.enable_account(&w.alice).await.unwrap();
    w.keys
        .add_trust_policy(&w.alice, NewTrustPolicy::new(rule(), publish_scope()))
        .await
        .unwrap();
    w.keys.delete_account(&w.alice).await.unwrap();
    let added = w
        .keys
        .add_trust_policy(&w.alice, NewTrustPolicy::new(rule(), publish_scope()))
        .await;
    assert!(matches!(added, Err(Error::AccountDeleted)), "{added:?}");
}
