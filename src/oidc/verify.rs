//! Verifying a CI job's OIDC token (a JWT) against one configured issuer: its signature
//! with the issuer's keys, then `iss`, `aud`, `exp`, `nbf` and `iat`.

use std::collections::BTreeMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use time::{Duration, OffsetDateTime};

use super::OidcError;

/// The claims of a verified OIDC token, as the issuer wrote them.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    /// The issuer (`iss`), as configured.
    pub issuer: String,
    /// The token's unique id (`jti`): an exchange uses each once.
    pub jti: String,
    /// When the token expires (`exp`): its `jti` is remembered until then.
    pub expires_at: OffsetDateTime,
    /// Every claim, for the policy rules to read.
    pub claims: BTreeMap<String, serde_json::Value>,
}

impl VerifiedClaims {
    /// A claim as a string (a number is written out, as GitHub's ids sometimes are).
    pub fn text(&self, name: &str) -> Option<String> {
        match self.claims.get(name)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// One OIDC issuer the registry trusts: its URL (`iss`), the audience its tokens must
/// name (the registry's own), its signing keys (the JWKS it publishes, which the registry
/// fetches and refreshes), and the clock leeway allowed on `exp`, `nbf` and `iat`.
#[derive(Debug, Clone)]
pub struct OidcIssuer {
    issuer: String,
    audience: String,
    keys: JwkSet,
    leeway: Duration,
}

impl OidcIssuer {
    /// GitHub Actions' issuer URL.
    pub const GITHUB_ACTIONS: &'static str = "https://token.actions.githubusercontent.com";
    /// GitLab.com's issuer URL.
    pub const GITLAB: &'static str = "https://gitlab.com";
    /// The leeway unless configured: 60 seconds.
    pub const DEFAULT_LEEWAY: Duration = Duration::seconds(60);
    /// The most leeway allowed: 5 minutes.
    pub const MAX_LEEWAY: Duration = Duration::minutes(5);

    /// An issuer at `issuer` whose tokens must name `audience`, signed with a key of
    /// `jwks` (the JSON of the issuer's JWKS document).
    ///
    /// # Errors
    /// [`OidcError::Config`] when the JWKS does not parse or holds no key.
    pub fn new(issuer: &str, audience: &str, jwks: &str) -> Result<Self, OidcError> {
        let keys: JwkSet = serde_json::from_str(jwks)
            .map_err(|e| OidcError::Config(format!("the issuer's JWKS: {e}")))?;
        if keys.keys.is_empty() {
            return Err(OidcError::Config("the issuer's JWKS holds no key".into()));
        }
        if issuer.is_empty() || audience.is_empty() {
            return Err(OidcError::Config(
                "an issuer needs its URL and the audience".into(),
            ));
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys,
            leeway: Self::DEFAULT_LEEWAY,
        })
    }

    /// This issuer with another clock leeway (at most [`Self::MAX_LEEWAY`]).
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.clamp(Duration::ZERO, Self::MAX_LEEWAY);
        self
    }

    /// This issuer with new keys (the JWKS refetched).
    ///
    /// # Errors
    /// As [`OidcIssuer::new`].
    pub fn with_keys(self, jwks: &str) -> Result<Self, OidcError> {
        let fresh = Self::new(&self.issuer, &self.audience, jwks)?;
        Ok(fresh.with_leeway(self.leeway))
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Verifies `jwt` at `now`: RS256 or ES256 only (`none`, HMAC and anything else are
    /// refused), by the key its `kid` names, whose type (and curve) must fit the
    /// algorithm and whose `alg`, if the JWK gives one, must be the header's; then the
    /// issuer, the audience, `exp`, `nbf` and `iat` (with the leeway); `jti` must be
    /// present.
    ///
    /// # Errors
    /// [`OidcError::Rejected`] saying which check failed.
    pub fn verify(&self, jwt: &str, now: OffsetDateTime) -> Result<VerifiedClaims, OidcError> {
        let reject = |why: &str| OidcError::Rejected(why.to_owned());
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| reject("not a JWT"))?;
        let algorithm = match header.alg {
            Algorithm::RS256 | Algorithm::ES256 => header.alg,
            _ => return Err(reject("the algorithm is not RS256 or ES256")),
        };
        let kid = header
            .kid
            .ok_or_else(|| reject("the header names no key"))?;
        let jwk = self
            .keys
            .find(&kid)
            .ok_or_else(|| reject("the key is not one of the issuer's"))?;
        let fits = match (&jwk.algorithm, algorithm) {
            (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
            (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
                ec.curve == EllipticCurve::P256
            }
            _ => false,
        };
        let declared = match jwk.common.key_algorithm {
            None => true,
            Some(KeyAlgorithm::RS256) => algorithm == Algorithm::RS256,
            Some(KeyAlgorithm::ES256) => algorithm == Algorithm::ES256,
            Some(_) => false,
        };
        if !(fits && declared) {
            return Err(reject("the algorithm does not fit the key"));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|_| reject("the issuer's key is unusable"))?;
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_audience(&[self.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        // `exp`, `nbf` and `iat` are judged below against `now` (the library's clock),
        // never the system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let data =
            jsonwebtoken::decode::<BTreeMap<String, serde_json::Value>>(jwt, &key, &validation)
                .map_err(|e| OidcError::Rejected(format!("{e}")))?;
        let claims = data.claims;
        let instant = |name: &str| -> Result<Option<OffsetDateTime>, OidcError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_i64()
                    .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                    .map(Some)
                    .ok_or_else(|| OidcError::Rejected(format!("`{name}` is not a time"))),
            }
        };
        let expires_at = instant("exp")?.ok_or_else(|| reject("no `exp`"))?;
        if expires_at + self.leeway <= now {
            return Err(reject("the token has expired"));
        }
        if instant("nbf")?.is_some_and(|nbf| nbf - self.leeway > now) {
            return Err(reject("the token is not valid yet"));
        }
        if instant("iat")?.is_none_or(|iat| iat - self.leeway > now) {
            return Err(reject("the token was issued in the future"));
        }
        let jti = match claims.get("jti") {
            Some(serde_json::Value::String(j)) if !j.is_empty() => j.clone(),
            _ => return Err(reject("no `jti`")),
        };
        Ok(VerifiedClaims {
            issuer: self.issuer.clone(),
            jti,
            expires_at,
            claims,
        })
    }
}
