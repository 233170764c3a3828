//! Trusted publishing (feature `oidc`): the parts that decide whether a CI job's OIDC
//! token is the identity an account trusts, so that the job can be given a short-lived
//! scoped key and hold no long-lived secret.
//!
//! - [`OidcIssuer::verify`]: the token's signature (RS256 or ES256, by the issuer's key
//!   its `kid` names; `none`, HMAC and any algorithm that does not fit the key's type and
//!   curve are refused), then `iss`, `aud` (the registry's own audience), `exp`, `nbf`
//!   and `iat` with a small leeway, and a `jti`.
//! - [`TrustRule::judge`]: whether the verified claims are the trusted identity: GitHub
//!   Actions (owner and repository, by name and by id, the workflow file, optionally a
//!   reusable workflow and an environment) or GitLab CI (namespace and project, by name
//!   and by id, the CI configuration file, optionally an environment). A rule made with
//!   names only is locked to the ids of its first accepted token ([`LockedIds`]).
//! - [`minted_lifetime`]: how long the minted key lives (an hour unless the policy says
//!   otherwise, within the lifetime policy's caps).
//!
//! ```
//! use feedkey::oidc::{OidcIssuer, TrustRule};
//!
//! let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256",
//!   "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;
//! let github = OidcIssuer::new(OidcIssuer::GITHUB_ACTIONS, "https://registry.example", jwks)?;
//! let rule = TrustRule::GitHub {
//!     issuer: OidcIssuer::GITHUB_ACTIONS.into(),
//!     owner: "contoso".into(),
//!     owner_id: None,
//!     repository: "service".into(),
//!     repository_id: None,
//!     workflow: "release.yml".into(),
//!     reusable_workflow: None,
//!     environment: Some("production".into()),
//! };
//! // A job's token: `github.verify(jwt, now)?`, then `rule.judge(&claims)`.
//! # let _ = (github, rule);
//! # Ok::<(), feedkey::oidc::OidcError>(())
//! ```

#[cfg(feature = "oidc-fetch")]
mod fetch;
mod keys;
mod policy;
mod refusal;
mod verify;

#[cfg(feature = "oidc-fetch")]
#[cfg_attr(docsrs, doc(cfg(feature = "oidc-fetch")))]
pub use fetch::FetchedIssuer;
pub use keys::{IssuerKeys, StaticIssuers};
pub use policy::{LockedIds, Trust, TrustRule, minted_lifetime};
pub use refusal::Refusal;
pub use verify::{MAX_TOKEN_LEN, OidcIssuer, VerifiedClaims, unverified_issuer};

/// Why an OIDC token was not accepted, or an issuer not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// The issuer's configuration is unusable (its JWKS, its URL, the audience).
    #[error("OIDC issuer configuration: {0}")]
    Config(String),
    /// The token failed a check: which one, for the log (never for the client).
    #[error("OIDC token refused: {0}")]
    Rejected(Refusal),
}
