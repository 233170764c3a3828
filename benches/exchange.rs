//! Trusted publishing's exchange on `MemoryStore`: a CI job's OIDC token (RS256 or ES256,
//! signed by the test issuer's keys in `tests/fixtures/oidc/`) verified, judged against a
//! GitHub policy, its `jti` recorded and a key minted; beside the signature check alone
//! (`OidcIssuer::verify`), which dominates. Each exchange gets a token of its own (signed
//! outside the measurement), as each CI job does.
//!
//! `cargo bench --bench exchange --features oidc`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use feedkey::oidc::{OidcIssuer, StaticIssuers, TrustRule};
use feedkey::time::OffsetDateTime;
use feedkey::{
    AccountId, Expiry, Feedkey, Feeds, ManualClock, MemoryStore, NewTrustPolicy, Packages,
    Permissions, Scope, TokenKey,
};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const AUDIENCE: &str = "https://registry.example";
const NOW: i64 = 1_800_000_000;

/// Runs a future that is ready at once (every `MemoryStore` call is), without an executor.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a MemoryStore future was not ready"),
    }
}

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(include_bytes!("../tests/fixtures/oidc/rsa.pem")).unwrap()
}

fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(include_bytes!("../tests/fixtures/oidc/ec.pem")).unwrap()
}

fn issuer() -> OidcIssuer {
    let mut r = Jwk::from_encoding_key(&rsa(), Algorithm::RS256).unwrap();
    r.common.key_id = Some("rsa-1".into());
    let mut e = Jwk::from_encoding_key(&ec(), Algorithm::ES256).unwrap();
    e.common.key_id = Some("ec-1".into());
    let jwks = serde_json::to_string(&JwkSet { keys: vec![r, e] }).unwrap();
    OidcIssuer::new(OidcIssuer::GITHUB_ACTIONS, AUDIENCE, &jwks).unwrap()
}

static RUN: AtomicU64 = AtomicU64::new(0);

/// A GitHub Actions job's token, with a `jti` of its own.
fn token(alg: Algorithm, kid: &str, key: &EncodingKey) -> String {
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let claims = json!({
        "iss": OidcIssuer::GITHUB_ACTIONS, "aud": AUDIENCE,
        "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 290, "jti": format!("run-{run}"),
        "repository_owner": "contoso", "repository_owner_id": "100",
        "repository": "contoso/service", "repository_id": "200",
        "workflow_ref": "contoso/service/.github/workflows/release.yml@refs/tags/v1.0.0",
        "run_id": run.to_string(),
    });
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn feedkey() -> Feedkey<MemoryStore> {
    let start = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
    let keys = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]))
        .clock(ManualClock::new(start))
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    ready(keys.create_account(&alice, Expiry::Never)).unwrap();
    let rule = TrustRule::GitHub {
        issuer: OidcIssuer::GITHUB_ACTIONS.into(),
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
    ready(keys.add_trust_policy(&alice, NewTrustPolicy::new(rule, scope))).unwrap();
    keys
}

fn exchange(c: &mut Criterion) {
    let keys = feedkey();
    let issuers = StaticIssuers::from(issuer());
    let verifier = issuer();
    let now = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
    for (name, alg, kid, key) in [
        ("rs256", Algorithm::RS256, "rsa-1", rsa()),
        ("es256", Algorithm::ES256, "ec-1", ec()),
    ] {
        c.bench_function(&format!("exchange/{name}"), |b| {
            b.iter_batched(
                || token(alg, kid, &key),
                |jwt| ready(keys.exchange(&issuers, black_box(&jwt), None)).unwrap(),
                BatchSize::SmallInput,
            );
        });
        let jwt = token(alg, kid, &key);
        c.bench_function(&format!("verify_only/{name}"), |b| {
            b.iter(|| verifier.verify(black_box(&jwt), now).unwrap());
        });
    }
    // A refusal before any signature work: a 1 MiB token.
    let big = "A".repeat(1 << 20);
    c.bench_function("refused/too_large", |b| {
        b.iter(|| ready(keys.exchange(&issuers, black_box(&big), None)).unwrap_err());
    });
}

criterion_group!(benches, exchange);
criterion_main!(benches);
