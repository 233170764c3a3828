//! Issuer keys fetched from the issuer (`oidc::FetchedIssuer`, feature `oidc-fetch`): the
//! test issuer (its RSA and EC keys) publishes its configuration and JWKS on loopback; the
//! keys are fetched once and cached, a token naming a new key makes one refetch, a flood
//! of unknown key ids makes none within the window, and while the issuer is down the
//! cached keys go on serving, through `Feedkey::exchange` too; and the cargo registry
//! example, given only the issuer's URL, fetches its keys (run `cargo build
//! --all-features --examples` first).

#![cfg(feature = "oidc-fetch")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[cfg(all(feature = "sqlite", feature = "http", feature = "tracing"))]
#[path = "common/example_server.rs"]
mod example_server;
#[path = "common/oidc_issuer.rs"]
mod issuer;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use feedkey::oidc::{FetchedIssuer, IssuerKeys, OidcError, Refusal, TrustRule};
use feedkey::store::testing::key;
use feedkey::time::OffsetDateTime;
use feedkey::{
    AccountId, Error, Expiry, Feedkey, Feeds, ManualClock, MemoryStore, NewTrustPolicy, Packages,
    Permissions, Scope,
};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

/// The issuer's published state.
struct Published {
    base: String,
    jwks: Mutex<String>,
    fetches: AtomicUsize,
    down: AtomicBool,
}

async fn configuration(State(p): State<Arc<Published>>) -> Response {
    if p.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    axum::Json(json!({ "issuer": p.base, "jwks_uri": format!("{}/jwks", p.base) })).into_response()
}

async fn jwks(State(p): State<Arc<Published>>) -> Response {
    if p.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    p.fetches.fetch_add(1, Ordering::SeqCst);
    p.jwks.lock().unwrap().clone().into_response()
}

/// The JWKS holding only the keys named.
fn published_keys(kids: &[&str]) -> String {
    let mut all: Value = serde_json::from_str(&issuer::jwks()).unwrap();
    let list = all["keys"].as_array_mut().unwrap();
    list.retain(|k| kids.contains(&k["kid"].as_str().unwrap()));
    all.to_string()
}

/// Serves the issuer on loopback, publishing `kids`.
async fn serve(kids: &[&str]) -> Arc<Published> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let published = Arc::new(Published {
        base,
        jwks: Mutex::new(published_keys(kids)),
        fetches: AtomicUsize::new(0),
        down: AtomicBool::new(false),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(configuration))
        .route("/jwks", get(jwks))
        .with_state(Arc::clone(&published));
    tokio::spawn(async move { axum::serve(listener, app).await });
    published
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A job token of this issuer, signed by `kid`'s key.
fn token(p: &Published, kid: &str, jti: &str) -> String {
    let mut claims = issuer::job(now(), jti);
    claims["iss"] = json!(p.base);
    match kid {
        "ec-1" => issuer::sign(Algorithm::ES256, kid, &issuer::ec(), &claims),
        _ => issuer::sign(Algorithm::RS256, kid, &issuer::rsa(), &claims),
    }
}

/// Whether `jwt` (naming `kid`) verifies with the keys `keys` gives for it.
async fn verified(
    keys: &FetchedIssuer,
    p: &Published,
    kid: &str,
    jwt: &str,
) -> Result<(), Refusal> {
    let issuer = keys.issuer(&p.base, kid).await?;
    match issuer.verify(jwt, OffsetDateTime::now_utc()) {
        Ok(_) => Ok(()),
        Err(OidcError::Rejected(why)) => Err(why),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_fetched_once_and_refetched_only_for_a_new_key_once_a_window() {
    let p = serve(&["rsa-1"]).await;
    // Tokens signed up front: signing is slow in a debug build, and the window is short.
    let rsa = token(&p, "rsa-1", "a");
    let ec = token(&p, "ec-1", "b");
    let made_up = token(&p, "made-up", "c");
    let window = Duration::from_millis(500);
    let keys = FetchedIssuer::new(&p.base, issuer::AUDIENCE)
        .unwrap()
        .with_min_refetch(window);
    assert_eq!(verified(&keys, &p, "rsa-1", &rsa).await, Ok(()));
    assert_eq!(verified(&keys, &p, "rsa-1", &rsa).await, Ok(()));
    assert_eq!(p.fetches.load(Ordering::SeqCst), 1, "cached");

    // The issuer rotates in a new key: the first token naming it, after the window,
    // makes one refetch.
    *p.jwks.lock().unwrap() = published_keys(&["rsa-1", "ec-1"]);
    tokio::time::sleep(window + Duration::from_millis(50)).await;
    assert_eq!(verified(&keys, &p, "ec-1", &ec).await, Ok(()));
    assert_eq!(p.fetches.load(Ordering::SeqCst), 2);

    // A flood of made-up key ids within the window: no fetch at all.
    for _ in 0..20 {
        assert_eq!(
            verified(&keys, &p, "made-up", &made_up).await,
            Err(Refusal::UnknownKey)
        );
    }
    assert_eq!(p.fetches.load(Ordering::SeqCst), 2, "at most once a window");
    tokio::time::sleep(window + Duration::from_millis(50)).await;
    for _ in 0..20 {
        assert_eq!(
            verified(&keys, &p, "made-up", &made_up).await,
            Err(Refusal::UnknownKey)
        );
    }
    assert_eq!(
        p.fetches.load(Ordering::SeqCst),
        3,
        "one more after the window"
    );

    // Another issuer's URL is not this one.
    assert_eq!(
        keys.issuer("https://gitlab.com", "rsa-1")
            .await
            .unwrap_err(),
        Refusal::UnknownIssuer
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cached_keys_serve_while_the_issuer_is_down() {
    let p = serve(&["rsa-1"]).await;
    let window = Duration::from_millis(200);
    let keys = Arc::new(
        FetchedIssuer::new(&p.base, issuer::AUDIENCE)
            .unwrap()
            .with_min_refetch(window),
    );
    // A registry with a policy for this issuer, exchanging through the fetcher.
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let registry = Feedkey::builder(MemoryStore::new(), key(1))
        .clock(clock)
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    registry
        .create_account(&alice, Expiry::Never)
        .await
        .unwrap();
    let rule = TrustRule::GitHub {
        issuer: p.base.clone(),
        owner: "contoso".into(),
        owner_id: None,
        repository: "service".into(),
        repository_id: None,
        workflow: "release.yml".into(),
        reusable_workflow: None,
        environment: None,
    };
    let scope = Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::Any,
        Packages::only(["Contoso.*"]).unwrap(),
    )
    .unwrap();
    registry
        .add_trust_policy(&alice, NewTrustPolicy::new(rule, scope))
        .await
        .unwrap();
    registry
        .exchange(&keys, &token(&p, "rsa-1", "first"), None)
        .await
        .unwrap();

    p.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(window + Duration::from_millis(50)).await;
    // An unknown key makes a refetch, which fails: the cached keys stay.
    assert!(matches!(
        registry
            .exchange(&keys, &token(&p, "ec-1", "second"), None)
            .await,
        Err(Error::NotAllowed(Refusal::UnknownKey))
    ));
    registry
        .exchange(&keys, &token(&p, "rsa-1", "third"), None)
        .await
        .unwrap();
}

#[test]
fn an_issuer_is_fetched_over_https_or_from_loopback_only() {
    for url in [
        "http://example.com",
        "ftp://127.0.0.1",
        "http://10.1.2.3:80",
    ] {
        assert!(
            matches!(
                FetchedIssuer::new(url, issuer::AUDIENCE),
                Err(OidcError::Config(_))
            ),
            "{url}"
        );
    }
    assert!(FetchedIssuer::new("https://token.actions.githubusercontent.com", "aud").is_ok());
    assert!(FetchedIssuer::new("https://token.actions.githubusercontent.com", "").is_err());
}

/// The cargo registry example, given `--oidc-issuer` without `--oidc-jwks`, fetches the
/// issuer's keys and exchanges its tokens.
#[cfg(all(feature = "sqlite", feature = "http", feature = "tracing"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cargo_example_fetches_the_issuers_keys() {
    let p = serve(&["rsa-1", "ec-1"]).await;
    let base = p.base.clone();
    let server = tokio::task::spawn_blocking(move || {
        example_server::Server::start(
            "cargo_registry",
            &["--oidc-issuer", &base, "--oidc-audience", issuer::AUDIENCE],
            "Authorization",
        )
    })
    .await
    .unwrap();
    let rule = json!({
        "forge": "git-hub", "issuer": p.base, "owner": "contoso",
        "repository": "service", "workflow": "release.yml",
    });
    let body = json!({ "rule": rule, "permissions": ["push-new"], "packages": ["acme-*"] });
    let jwt = token(&p, "ec-1", "fetched");
    let (status, answer) = tokio::task::spawn_blocking(move || {
        server.api("POST", "/api/trust-policies", Some(body));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .post(format!("{}/api/v1/trusted_publishing/tokens", server.url))
            .header("Content-Type", "application/json")
            .send(json!({ "jwt": jwt }).to_string())
            .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, text)
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"token\":\"fk_"), "{answer}");
    assert_eq!(p.fetches.load(Ordering::SeqCst), 1);
}
