//! Verifying a CI job's OIDC token (a JWT) against one configured issuer: its signature
//! with the issuer's keys, then `iss`, `aud`, `exp`, `nbf` and `iat`.

use std::collections::BTreeMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use time::{Duration, OffsetDateTime};

use super::refusal::of_jwt_error;
use super::{OidcError, Refusal};

/// The longest token read: 16 KiB (GitHub's and GitLab's are 1 to 2 KiB). A longer one is
/// refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The claims a trust rule reads, which must be strings (or, for ids, numbers) when
/// present: another type is a [`Refusal::BadClaim`], never a silent mismatch.
const NAMED_CLAIMS: &[&str] = &[
    "repository_owner",
    "repository_owner_id",
    "repository",
    "repository_id",
    "workflow_ref",
    "job_workflow_ref",
    "environment",
    "run_id",
    "namespace_path",
    "namespace_id",
    "project_path",
    "project_id",
    "ci_config_ref_uri",
    "pipeline_id",
];

/// The header of `jwt`, or why it cannot be read: an algorithm the JWT library does not
/// know (`none`, say) is [`Refusal::AlgorithmRefused`], anything else unreadable is
/// [`Refusal::Malformed`].
fn header_of(jwt: &str) -> Result<jsonwebtoken::Header, Refusal> {
    use base64::Engine as _;
    jsonwebtoken::decode_header(jwt).map_err(|_| {
        let alg = jwt
            .split('.')
            .next()
            .and_then(|head| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(head)
                    .ok()
            })
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|header| header.get("alg").map(|alg| alg.is_string()));
        match alg {
            Some(true) => Refusal::AlgorithmRefused,
            _ => Refusal::Malformed,
        }
    })
}

/// The `iss` a token claims, read without verifying anything (to choose the issuer whose
/// keys verify it), and the `kid` its header names.
///
/// # Errors
/// [`Refusal::TooLarge`], [`Refusal::Malformed`], [`Refusal::NoKeyId`] or
/// [`Refusal::MissingClaim`] (`iss`).
pub fn unverified_issuer(jwt: &str) -> Result<(String, String), Refusal> {
    use base64::Engine as _;
    if jwt.len() > MAX_TOKEN_LEN {
        return Err(Refusal::TooLarge);
    }
    let header = header_of(jwt)?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(Refusal::AlgorithmRefused);
    }
    let kid = header.kid.ok_or(Refusal::NoKeyId)?;
    let mut parts = jwt.split('.');
    let payload = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_), None) => payload,
        _ => return Err(Refusal::Malformed),
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Refusal::Malformed)?;
    let claims: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|_| Refusal::Malformed)?;
    match claims.get("iss") {
        Some(serde_json::Value::String(iss)) => Ok((iss.clone(), kid)),
        Some(_) => Err(Refusal::BadClaim("iss")),
        None => Err(Refusal::MissingClaim("iss")),
    }
}

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
    /// The lower-cased `owner/repository` (GitHub's `repository`) or `namespace/project`
    /// (GitLab's `project_path`) the token names: how its policies are found.
    pub fn subject(&self) -> Option<String> {
        self.text("repository")
            .or_else(|| self.text("project_path"))
            .map(|s| s.to_ascii_lowercase())
    }

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

    /// The audience its tokens must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Whether the issuer has a key of this id.
    pub fn has_key(&self, kid: &str) -> bool {
        self.keys.find(kid).is_some()
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
        self.check(jwt, now).map_err(OidcError::Rejected)
    }

    /// [`OidcIssuer::verify`], each refusal its own reason.
    fn check(&self, jwt: &str, now: OffsetDateTime) -> Result<VerifiedClaims, Refusal> {
        if jwt.len() > MAX_TOKEN_LEN {
            return Err(Refusal::TooLarge);
        }
        let header = header_of(jwt)?;
        let algorithm = match header.alg {
            Algorithm::RS256 | Algorithm::ES256 => header.alg,
            _ => return Err(Refusal::AlgorithmRefused),
        };
        let kid = header.kid.ok_or(Refusal::NoKeyId)?;
        let jwk = self.keys.find(&kid).ok_or(Refusal::UnknownKey)?;
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
            return Err(Refusal::KeyMismatch);
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|_| Refusal::KeyMismatch)?;
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_audience(&[self.audience.as_str()]);
        validation.set_required_spec_claims(&["iss", "aud"]);
        // `exp`, `nbf` and `iat` are judged below against `now` (the library's clock),
        // never the system clock; their presence and type too, each with its reason.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let data =
            jsonwebtoken::decode::<BTreeMap<String, serde_json::Value>>(jwt, &key, &validation)
                .map_err(|e| of_jwt_error(&e))?;
        let claims = data.claims;
        let instant = |name: &'static str| -> Result<Option<OffsetDateTime>, Refusal> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_i64()
                    .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                    .map(Some)
                    .ok_or(Refusal::BadClaim(name)),
            }
        };
        let expires_at = instant("exp")?.ok_or(Refusal::MissingClaim("exp"))?;
        let not_before = instant("nbf")?;
        let issued_at = instant("iat")?.ok_or(Refusal::MissingClaim("iat"))?;
        if expires_at.saturating_add(self.leeway) <= now {
            return Err(Refusal::Expired);
        }
        if not_before.is_some_and(|nbf| nbf.saturating_sub(self.leeway) > now) {
            return Err(Refusal::NotYetValid);
        }
        if issued_at.saturating_sub(self.leeway) > now {
            return Err(Refusal::IssuedInFuture);
        }
        let jti = match claims.get("jti") {
            Some(serde_json::Value::String(j)) if !j.is_empty() => j.clone(),
            Some(serde_json::Value::String(_)) | None => return Err(Refusal::MissingJti),
            Some(_) => return Err(Refusal::BadClaim("jti")),
        };
        for name in NAMED_CLAIMS {
            match claims.get(*name) {
                None | Some(serde_json::Value::String(_) | serde_json::Value::Number(_)) => {}
                Some(_) => return Err(Refusal::BadClaim(name)),
            }
        }
        Ok(VerifiedClaims {
            issuer: self.issuer.clone(),
            jti,
            expires_at,
            claims,
        })
    }
}
