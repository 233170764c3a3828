//! A test OIDC issuer playing GitHub Actions: its own RSA and EC keys
//! (`tests/fixtures/oidc/`), its JWKS, and the job tokens it signs.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use feedkey::oidc::OidcIssuer;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The registry's audience.
pub const AUDIENCE: &str = "https://registry.example";

pub fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(include_bytes!("../fixtures/oidc/rsa.pem")).unwrap()
}

pub fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(include_bytes!("../fixtures/oidc/ec.pem")).unwrap()
}

/// The issuer's JWKS: the RSA key as `rsa-1`, the EC key as `ec-1`.
pub fn jwks() -> String {
    let mut rsa = Jwk::from_encoding_key(&rsa(), Algorithm::RS256).unwrap();
    rsa.common.key_id = Some("rsa-1".into());
    let mut ec = Jwk::from_encoding_key(&ec(), Algorithm::ES256).unwrap();
    ec.common.key_id = Some("ec-1".into());
    serde_json::to_string(&JwkSet {
        keys: vec![rsa, ec],
    })
    .unwrap()
}

/// GitHub Actions as the registry configures it, with the test keys.
pub fn github() -> OidcIssuer {
    OidcIssuer::new(OidcIssuer::GITHUB_ACTIONS, AUDIENCE, &jwks()).unwrap()
}

/// A GitHub Actions job's claims at `now` (Unix seconds), with token id `jti`.
pub fn job(now: i64, jti: &str) -> Value {
    json!({
        "iss": OidcIssuer::GITHUB_ACTIONS,
        "aud": AUDIENCE,
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + 290,
        "jti": jti,
        "sub": "repo:contoso/service:environment:production",
        "repository_owner": "contoso",
        "repository_owner_id": "100",
        "repository": "contoso/service",
        "repository_id": "200",
        "workflow_ref": "contoso/service/.github/workflows/release.yml@refs/tags/v1.0.0",
        "environment": "production",
        "run_id": "4242",
    })
}

/// `claims` signed with `alg` by `key`, naming `kid`.
pub fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// `claims` signed with the issuer's RSA key.
pub fn signed(claims: &Value) -> String {
    sign(Algorithm::RS256, "rsa-1", &rsa(), claims)
}
