//! Why a CI job's OIDC token was refused: one reason per check, for the registry's log.
//! The client is told only "not allowed" ([`Refusal::CLIENT_MESSAGE`]).

/// Why an OIDC token was refused, or an exchange denied. Each check has its own reason;
/// none holds any part of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// Longer than [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN): refused before any parsing.
    TooLarge,
    /// Not a JWT (three base64url parts of JSON).
    Malformed,
    /// The header asks for an algorithm other than RS256 or ES256 (`none`, HMAC…).
    AlgorithmRefused,
    /// The header names no key (`kid`).
    NoKeyId,
    /// No configured issuer is the token's `iss`.
    UnknownIssuer,
    /// The key id is not one of the issuer's keys (after a refetch, where keys are
    /// fetched).
    UnknownKey,
    /// The algorithm does not fit the named key's type, curve or declared `alg`.
    KeyMismatch,
    /// The signature does not verify.
    BadSignature,
    /// The token's `iss` is not the issuer's.
    WrongIssuer,
    /// The token's `aud` is not the registry's.
    WrongAudience,
    /// A claim every token must carry is missing (`exp`, `iat`, `iss`, `aud`).
    MissingClaim(&'static str),
    /// A claim has the wrong type (a time that is not a number, a name that is not a
    /// string).
    BadClaim(&'static str),
    /// Past its `exp` (with the leeway).
    Expired,
    /// Before its `nbf` (with the leeway).
    NotYetValid,
    /// Its `iat` is in the future (with the leeway).
    IssuedInFuture,
    /// No `jti`: it could not be used only once.
    MissingJti,
    /// Its `jti` was exchanged before.
    Replayed,
    /// No policy trusts the token's identity: the first claim that differed from the
    /// nearest policy (`"repository"` when none names the repository at all).
    NoMatchingPolicy(&'static str),
    /// The identity matches policies of several accounts and the request named none.
    SeveralAccounts,
}

impl Refusal {
    /// What the client is told, whatever the reason.
    pub const CLIENT_MESSAGE: &'static str = "not allowed";

    /// A short, stable name for the log: `too-large`, `bad-signature`, `replayed`…
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::TooLarge => "too-large",
            Refusal::Malformed => "malformed",
            Refusal::AlgorithmRefused => "algorithm-refused",
            Refusal::NoKeyId => "no-key-id",
            Refusal::UnknownIssuer => "unknown-issuer",
            Refusal::UnknownKey => "unknown-key",
            Refusal::KeyMismatch => "key-mismatch",
            Refusal::BadSignature => "bad-signature",
            Refusal::WrongIssuer => "wrong-issuer",
            Refusal::WrongAudience => "wrong-audience",
            Refusal::MissingClaim(_) => "missing-claim",
            Refusal::BadClaim(_) => "bad-claim",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not-yet-valid",
            Refusal::IssuedInFuture => "issued-in-future",
            Refusal::MissingJti => "missing-jti",
            Refusal::Replayed => "replayed",
            Refusal::NoMatchingPolicy(_) => "no-matching-policy",
            Refusal::SeveralAccounts => "several-accounts",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::MissingClaim(claim) | Refusal::BadClaim(claim) => {
                write!(f, "{} ({claim})", self.code())
            }
            Refusal::NoMatchingPolicy(claim) => write!(f, "{} (differs: {claim})", self.code()),
            _ => f.write_str(self.code()),
        }
    }
}

/// The reason for a JWT library error met while decoding a token whose header, key and
/// algorithm were already accepted.
pub(super) fn of_jwt_error(error: &jsonwebtoken::errors::Error) -> Refusal {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => Refusal::BadSignature,
        ErrorKind::InvalidIssuer => Refusal::WrongIssuer,
        ErrorKind::InvalidAudience => Refusal::WrongAudience,
        ErrorKind::ExpiredSignature => Refusal::Expired,
        ErrorKind::ImmatureSignature => Refusal::NotYetValid,
        ErrorKind::MissingRequiredClaim(claim) => Refusal::MissingClaim(spec_claim(claim)),
        ErrorKind::InvalidClaimFormat(claim) => Refusal::BadClaim(spec_claim(claim)),
        ErrorKind::Json(_) => Refusal::BadClaim("claims"),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => Refusal::KeyMismatch,
        _ => Refusal::Malformed,
    }
}

/// A registered claim's name as a static string (`"claims"` for any other).
fn spec_claim(name: &str) -> &'static str {
    ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"]
        .into_iter()
        .find(|c| *c == name)
        .unwrap_or("claims")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_code() {
        let all = [
            Refusal::TooLarge,
            Refusal::Malformed,
            Refusal::AlgorithmRefused,
            Refusal::NoKeyId,
            Refusal::UnknownIssuer,
            Refusal::UnknownKey,
            Refusal::KeyMismatch,
            Refusal::BadSignature,
            Refusal::WrongIssuer,
            Refusal::WrongAudience,
            Refusal::MissingClaim("exp"),
            Refusal::BadClaim("exp"),
            Refusal::Expired,
            Refusal::NotYetValid,
            Refusal::IssuedInFuture,
            Refusal::MissingJti,
            Refusal::Replayed,
            Refusal::NoMatchingPolicy("repository"),
            Refusal::SeveralAccounts,
        ];
        let codes: std::collections::BTreeSet<&str> = all.iter().map(Refusal::code).collect();
        assert_eq!(codes.len(), all.len());
        assert_eq!(Refusal::BadClaim("exp").to_string(), "bad-claim (exp)");
    }
}
