//! Trusted publishing's verification of a CI job's OIDC token: what a real token passes,
//! and each attack a forged or misused one tries (algorithm confusion, `none`, another
//! issuer's or audience's token, an expired one, a key that does not fit).

#![cfg(feature = "oidc")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use feedkey::oidc::{OidcError, OidcIssuer, Trust, TrustRule};
use feedkey::time::{Duration, OffsetDateTime};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const AUDIENCE: &str = "https://registry.example";
const NOW: i64 = 1_800_000_000;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).unwrap()
}

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(include_bytes!("fixtures/oidc/rsa.pem")).unwrap()
}

fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(include_bytes!("fixtures/oidc/ec.pem")).unwrap()
}

/// The issuer's JWKS: the RSA key as `rsa-1`, the EC key as `ec-1`.
fn jwks() -> String {
    let mut rsa = Jwk::from_encoding_key(&rsa(), Algorithm::RS256).unwrap();
    rsa.common.key_id = Some("rsa-1".into());
    let mut ec = Jwk::from_encoding_key(&ec(), Algorithm::ES256).unwrap();
    ec.common.key_id = Some("ec-1".into());
    serde_json::to_string(&JwkSet {
        keys: vec![rsa, ec],
    })
    .unwrap()
}

fn github() -> OidcIssuer {
    OidcIssuer::new(OidcIssuer::GITHUB_ACTIONS, AUDIENCE, &jwks()).unwrap()
}

/// A GitHub Actions job's claims.
fn job() -> Value {
    json!({
        "iss": OidcIssuer::GITHUB_ACTIONS,
        "aud": AUDIENCE,
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "exp": NOW + 290,
        "jti": "5a4b8c3e-run-1",
        "repository_owner": "contoso",
        "repository_owner_id": "100",
        "repository": "contoso/service",
        "repository_id": "200",
        "workflow_ref": "contoso/service/.github/workflows/release.yml@refs/tags/v1.0.0",
        "run_id": "42",
    })
}

fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn refused(result: Result<feedkey::oidc::VerifiedClaims, OidcError>, what: &str) {
    assert!(
        matches!(result, Err(OidcError::Rejected(_))),
        "{what}: {result:?}"
    );
}

#[test]
fn a_real_job_token_is_verified_and_trusted_by_its_rule() {
    for (alg, kid, key) in [
        (Algorithm::RS256, "rsa-1", rsa()),
        (Algorithm::ES256, "ec-1", ec()),
    ] {
        let claims = github()
            .verify(&sign(alg, kid, &key, &job()), now())
            .unwrap();
        assert_eq!(claims.jti, "5a4b8c3e-run-1");
        assert_eq!(claims.expires_at.unix_timestamp(), NOW + 290);
        let rule = TrustRule::GitHub {
            owner: "Contoso".into(),
            owner_id: None,
            repository: "service".into(),
            repository_id: None,
            workflow: "release.yml".into(),
            reusable_workflow: None,
            environment: None,
        };
        assert!(matches!(
            rule.judge(&claims),
            Trust::Trusted { lock: Some(_) }
        ));
    }
}

#[test]
fn forged_and_misused_tokens_are_refused() {
    let issuer = github();
    let good = sign(Algorithm::RS256, "rsa-1", &rsa(), &job());

    // `none`: a header that asks for no signature.
    let (_, rest) = good.split_once('.').unwrap();
    let payload = rest.split_once('.').unwrap().0;
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"rsa-1"}"#)
    );
    refused(issuer.verify(&none, now()), "alg none");

    // HMAC keyed with the issuer's public RSA key (the classic confusion).
    let public =
        serde_json::to_vec(&serde_json::from_str::<Value>(&jwks()).unwrap()["keys"][0]).unwrap();
    let hmac = sign(
        Algorithm::HS256,
        "rsa-1",
        &EncodingKey::from_secret(&public).unwrap(),
        &job(),
    );
    refused(issuer.verify(&hmac, now()), "HS256 with the public key");

    // ES256 naming the RSA key; RS256 naming the EC key.
    refused(
        issuer.verify(&sign(Algorithm::ES256, "rsa-1", &ec(), &job()), now()),
        "ES256 by an RSA kid",
    );
    refused(
        issuer.verify(&sign(Algorithm::RS256, "ec-1", &rsa(), &job()), now()),
        "RS256 by an EC kid",
    );
    // RS512 is not taken, whatever the key.
    refused(
        issuer.verify(&sign(Algorithm::RS512, "rsa-1", &rsa(), &job()), now()),
        "RS512",
    );
    // An unknown key id, and a token signed by another key under a known id.
    refused(
        issuer.verify(&sign(Algorithm::RS256, "rsa-2", &rsa(), &job()), now()),
        "unknown kid",
    );
    let other = EncodingKey::from_ec_pem(
        b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgevZzL1gdAFr88hb2\nOF/2NxApJCzGCEDdfSp6VQO30hyhRANCAAQRWz+jn65BtOMvdyHKcvjBeBSDZH2r\n1RTwjmYSi9R/zpBnuQ4EiMnCqfMPWiZqB4QdbAd0E7oH50VpuZ1P087G\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    refused(
        issuer.verify(&sign(Algorithm::ES256, "ec-1", &other, &job()), now()),
        "another key under the issuer's kid",
    );
    // A changed payload under the original signature.
    let mut parts: Vec<&str> = good.split('.').collect();
    let mut changed = job();
    changed["repository"] = json!("contoso/other");
    let forged_payload = URL_SAFE_NO_PAD.encode(changed.to_string());
    parts[1] = &forged_payload;
    refused(issuer.verify(&parts.join("."), now()), "a changed payload");

    // Claims: another issuer, another audience, expired, not yet valid, issued in the
    // future, no jti.
    let with = |key: &str, value: Value| {
        let mut claims = job();
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value;
        }
        sign(Algorithm::RS256, "rsa-1", &rsa(), &claims)
    };
    refused(
        issuer.verify(&with("iss", json!("https://gitlab.com")), now()),
        "iss",
    );
    refused(
        issuer.verify(&with("aud", json!("https://other.example")), now()),
        "aud",
    );
    refused(
        issuer.verify(&with("exp", json!(NOW - 61)), now()),
        "expired",
    );
    refused(issuer.verify(&with("nbf", json!(NOW + 61)), now()), "nbf");
    refused(issuer.verify(&with("iat", json!(NOW + 61)), now()), "iat");
    refused(issuer.verify(&with("jti", Value::Null), now()), "no jti");
    refused(issuer.verify(&with("exp", Value::Null), now()), "no exp");
    // Within the leeway, it passes.
    assert!(issuer.verify(&with("exp", json!(NOW - 30)), now()).is_ok());
    assert!(
        issuer
            .clone()
            .with_leeway(Duration::ZERO)
            .verify(&with("exp", json!(NOW - 30)), now())
            .is_err()
    );
    refused(issuer.verify("not.a.jwt", now()), "garbage");
    refused(issuer.verify("", now()), "empty");
}

#[test]
fn an_issuer_needs_keys_its_url_and_an_audience() {
    assert!(matches!(
        OidcIssuer::new(OidcIssuer::GITHUB_ACTIONS, AUDIENCE, r#"{"keys":[]}"#),
        Err(OidcError::Config(_))
    ));
    assert!(matches!(
        OidcIssuer::new(OidcIssuer::GITHUB_ACTIONS, AUDIENCE, "not json"),
        Err(OidcError::Config(_))
    ));
    assert!(matches!(
        OidcIssuer::new(OidcIssuer::GITHUB_ACTIONS, "", &jwks()),
        Err(OidcError::Config(_))
    ));
}
