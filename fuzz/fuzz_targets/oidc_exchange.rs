//! Trusted publishing's exchange parser: arbitrary text as a CI job's OIDC token, through
//! `oidc::unverified_issuer`, `OidcIssuer::verify` and `Feedkey::exchange` (on
//! `MemoryStore`, with a GitHub policy). Besides "no panic": nothing the fuzzer writes
//! is ever accepted (it cannot sign with the issuer's key, whose private half is not
//! here), every refusal is `Error::NotAllowed` with a reason whose text holds no part of
//! the input longer than a claim name, and an input over `MAX_TOKEN_LEN` is refused as
//! too large before any parsing.

#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use feedkey::oidc::{MAX_TOKEN_LEN, OidcIssuer, Refusal, StaticIssuers, TrustRule};
use feedkey::time::OffsetDateTime;
use feedkey::{
    AccountId, Error, Expiry, Feedkey, Feeds, ManualClock, MemoryStore, NewTrustPolicy,
    Packages, Permissions, Scope, TokenKey,
};
use libfuzzer_sys::fuzz_target;

/// An ES256 public key (P-256) as the issuer publishes it.
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256",
  "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;

/// Runs a future that is ready at once (every `MemoryStore` call is), without an executor.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a MemoryStore future was not ready"),
    }
}

struct World {
    keys: Feedkey<MemoryStore>,
    issuers: StaticIssuers,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let start = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a valid instant");
        let keys = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]))
            .clock(ManualClock::new(start))
            .build()
            .expect("a Feedkey");
        let alice = AccountId::new("alice").expect("an account id");
        ready(keys.create_account(&alice, Expiry::Never)).expect("an account");
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
            Packages::only(["Contoso.*"]).expect("a pattern"),
        )
        .expect("a scope");
        ready(keys.add_trust_policy(&alice, NewTrustPolicy::new(rule, scope))).expect("a policy");
        let issuer = OidcIssuer::new(OidcIssuer::GITHUB_ACTIONS, "https://registry.example", JWKS)
            .expect("an issuer");
        World {
            keys,
            issuers: StaticIssuers::from(issuer),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let world = world();
    let unverified = feedkey::oidc::unverified_issuer(&text);
    if text.len() > MAX_TOKEN_LEN {
        assert_eq!(unverified, Err(Refusal::TooLarge));
    }
    let issuer = OidcIssuer::new(OidcIssuer::GITHUB_ACTIONS, "https://registry.example", JWKS)
        .expect("an issuer");
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a valid instant");
    assert!(issuer.verify(&text, now).is_err(), "a forged token verified");
    match ready(world.keys.exchange(&world.issuers, &text, None)) {
        Ok(_) => panic!("a forged token was exchanged"),
        Err(Error::NotAllowed(why)) => {
            let said = why.to_string();
            assert!(said.len() < 64, "a reason holds input: {said}");
        }
        Err(other) => panic!("not a refusal: {other}"),
    }
});
