//! The token and its wire format.
//!
//! A token reads `<prefix>_<body>`. The body is the unpadded base64url encoding of 52 bytes:
//!
//! | bytes  | what                                                        |
//! |--------|-------------------------------------------------------------|
//! | 0..16  | the token id: random, public, the lookup key                |
//! | 16..48 | the secret: 256 random bits from the operating system       |
//! | 48..52 | CRC-32 (IEEE) of bytes 0..48, big-endian                     |
//!
//! The body is always [`BODY_LEN`] characters, so a token is `prefix.len() + 1 + 70`
//! characters long. A parser rejects a wrong prefix, a wrong length, a character outside
//! the base64url alphabet and a bad checksum before anything is looked up.

pub mod scan;

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Length in bytes of a token id.
pub const ID_LEN: usize = 16;
/// Length in bytes of a token secret.
pub const SECRET_LEN: usize = 32;
/// Length in bytes of the checksum.
const CRC_LEN: usize = 4;
/// Length in bytes of the decoded body.
const RAW_LEN: usize = ID_LEN + SECRET_LEN + CRC_LEN;
/// Length in characters of the encoded body.
pub const BODY_LEN: usize = 70;
/// Length in characters of an encoded token id.
pub const ID_TEXT_LEN: usize = 22;

// A body of BODY_LEN characters decodes to exactly RAW_LEN bytes (`parse` relies on it).
const _: () = assert!(BODY_LEN * 6 / 8 == RAW_LEN);

/// Why a token string was refused before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenParseError {
    /// There is no `_` separating a prefix from the body.
    #[error("token has no prefix")]
    MissingPrefix,
    /// The prefix is not the one this registry issues.
    #[error("token has the wrong prefix")]
    WrongPrefix,
    /// The body is not exactly 70 characters long.
    #[error("token has the wrong length")]
    InvalidLength,
    /// The body is not unpadded base64url.
    #[error("token is not valid base64url")]
    InvalidEncoding,
    /// The checksum does not match: a typo or a made-up token.
    #[error("token checksum does not match")]
    InvalidChecksum,
}

/// Why a token prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFormatError {
    /// The prefix is empty or longer than [`TokenFormat::MAX_PREFIX_LEN`].
    #[error("a token prefix has 1 to {max} characters, got {len}", max = TokenFormat::MAX_PREFIX_LEN)]
    PrefixLength {
        /// The length that was given.
        len: usize,
    },
    /// The prefix has a character other than `a-z` and `0-9`.
    #[error("a token prefix has only the characters a-z and 0-9")]
    PrefixCharacters,
}

/// The prefix that marks this registry's tokens (`fk` unless configured).
///
/// A distinctive prefix lets secret scanners recognise a leaked token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFormat {
    prefix: String,
}

impl TokenFormat {
    /// The default prefix.
    pub const DEFAULT_PREFIX: &'static str = "fk";
    /// The longest prefix allowed.
    pub const MAX_PREFIX_LEN: usize = 16;

    /// A format with the given prefix.
    ///
    /// # Errors
    /// [`TokenFormatError`] when the prefix is empty, longer than
    /// [`Self::MAX_PREFIX_LEN`] or has a character outside `a-z0-9`.
    pub fn new(prefix: &str) -> Result<Self, TokenFormatError> {
        if prefix.is_empty() || prefix.len() > Self::MAX_PREFIX_LEN {
            return Err(TokenFormatError::PrefixLength { len: prefix.len() });
        }
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(TokenFormatError::PrefixCharacters);
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The prefix, without the `_`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The length in characters of every token of this format.
    pub fn token_len(&self) -> usize {
        self.prefix.len() + 1 + BODY_LEN
    }

    /// Whether `text` has this format's shape and checksum.
    ///
    /// This is what a secret scanner runs; it says nothing of whether the token is valid.
    pub fn looks_like_token(&self, text: &str) -> bool {
        self.parse(text).is_ok()
    }

    /// Whether `text` has this format's prefix and a token's length, checksum unchecked:
    /// the looser test that keeps a mistyped token (a Basic-auth password shaped like a
    /// token) away from the password check, so it is reported as a malformed token.
    /// [`looks_like_token`](Self::looks_like_token) is this plus a valid body.
    pub(crate) fn has_token_shape(&self, text: &str) -> bool {
        text.strip_prefix(self.prefix())
            .is_some_and(|rest| rest.starts_with('_'))
            && text.len() == self.token_len()
    }

    /// Parses a token string presented by a client.
    ///
    /// # Errors
    /// [`TokenParseError`] naming the first check that failed.
    pub fn parse(&self, text: &str) -> Result<PresentedToken, TokenParseError> {
        let (prefix, body) = text.split_once('_').ok_or(TokenParseError::MissingPrefix)?;
        if prefix != self.prefix {
            return Err(TokenParseError::WrongPrefix);
        }
        if body.len() != BODY_LEN {
            return Err(TokenParseError::InvalidLength);
        }
        let mut raw = Zeroizing::new([0u8; RAW_LEN]);
        // The one decoder of a presented body (SIMD: a tenth of an `authorize` less than
        // the general decoder); the test beside it holds it to the `base64` crate's answers.
        // BODY_LEN characters fill RAW_LEN bytes exactly (asserted at build time above).
        base64_simd::URL_SAFE_NO_PAD
            .decode(
                body.as_bytes(),
                base64_simd::Out::from_slice(raw.as_mut_slice()),
            )
            .map_err(|_| TokenParseError::InvalidEncoding)?;
        let (payload, crc) = raw.split_at(ID_LEN + SECRET_LEN);
        if crc32fast::hash(payload).to_be_bytes() != crc {
            return Err(TokenParseError::InvalidChecksum);
        }
        let (id, secret) = payload.split_at(ID_LEN);
        let mut token = PresentedToken {
            id: TokenId([0; ID_LEN]),
            secret: Zeroizing::new([0; SECRET_LEN]),
        };
        token.id.0.copy_from_slice(id);
        token.secret.copy_from_slice(secret);
        Ok(token)
    }

    /// Encodes a token from its id and secret.
    pub(crate) fn encode(&self, id: &TokenId, secret: &[u8; SECRET_LEN]) -> PlainToken {
        let mut raw = Zeroizing::new([0u8; RAW_LEN]);
        let (payload, crc) = raw.split_at_mut(ID_LEN + SECRET_LEN);
        let (id_part, secret_part) = payload.split_at_mut(ID_LEN);
        id_part.copy_from_slice(&id.0);
        secret_part.copy_from_slice(secret);
        crc.copy_from_slice(&crc32fast::hash(payload).to_be_bytes());
        let mut text = Zeroizing::new(String::with_capacity(self.token_len()));
        text.push_str(&self.prefix);
        text.push('_');
        URL_SAFE_NO_PAD.encode_string(raw.as_slice(), &mut text);
        PlainToken { id: *id, text }
    }
}

impl Default for TokenFormat {
    fn default() -> Self {
        Self {
            prefix: Self::DEFAULT_PREFIX.to_owned(),
        }
    }
}

/// The public id of a token: random, unique, safe to show and to log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId([u8; ID_LEN]);

impl TokenId {
    /// A fresh random id.
    pub(crate) fn random() -> Result<Self, getrandom::Error> {
        let mut id = [0u8; ID_LEN];
        getrandom::fill(&mut id)?;
        Ok(Self(id))
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// The id from its bytes.
    pub fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ID_TEXT_LEN];
        match URL_SAFE_NO_PAD.encode_slice(self.0, &mut buf) {
            Ok(n) => f.write_str(std::str::from_utf8(buf.get(..n).unwrap_or(&[])).unwrap_or("")),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({self})")
    }
}

/// Why a token id string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a token id is {ID_TEXT_LEN} characters of base64url")]
pub struct TokenIdError;

impl FromStr for TokenId {
    type Err = TokenIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != ID_TEXT_LEN {
            return Err(TokenIdError);
        }
        let mut id = [0u8; ID_LEN];
        match URL_SAFE_NO_PAD.decode_slice(s, &mut id) {
            Ok(ID_LEN) => Ok(Self(id)),
            _ => Err(TokenIdError),
        }
    }
}

impl Serialize for TokenId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TokenId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A token in plain text, as handed to its owner exactly once.
///
/// It is never stored. Its `Debug` shows only the id; it has no `Display`, no `Clone` and
/// no `Serialize`, and its memory is zeroed when it is dropped. Call
/// [`expose_secret`](Self::expose_secret) to show it to the user.
pub struct PlainToken {
    id: TokenId,
    text: Zeroizing<String>,
}

impl PlainToken {
    /// The token's public id.
    pub fn id(&self) -> TokenId {
        self.id
    }

    /// The whole token, secret included: show it once, then drop it.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A token as a client presented it, parsed and checksum-checked but not yet verified.
pub struct PresentedToken {
    id: TokenId,
    secret: Zeroizing<[u8; SECRET_LEN]>,
}

impl PresentedToken {
    /// The id the client claims.
    pub fn id(&self) -> TokenId {
        self.id
    }

    pub(crate) fn secret(&self) -> &[u8; SECRET_LEN] {
        &self.secret
    }
}

impl fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A fresh random secret.
pub(crate) fn random_secret() -> Result<Zeroizing<[u8; SECRET_LEN]>, getrandom::Error> {
    let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
    getrandom::fill(secret.as_mut_slice())?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PlainToken {
        TokenFormat::default().encode(&TokenId([7; ID_LEN]), &[9; SECRET_LEN])
    }

    /// The body's decoder refuses exactly what the `base64` crate's URL-safe, unpadded,
    /// strict decoder refuses (a character outside the alphabet, `=`, a last character
    /// with its unused bits set: one spelling per token), and decodes the same bytes.
    #[test]
    fn the_body_decodes_as_the_base64_crate_decodes_it() {
        let format = TokenFormat::default();
        let reference = |text: &str| -> Option<[u8; RAW_LEN]> {
            let body = text.strip_prefix("fk_")?;
            let raw = URL_SAFE_NO_PAD.decode(body).ok()?;
            raw.try_into().ok()
        };
        let mut checked = 0;
        for seed in 0u8..12 {
            let id = TokenId(std::array::from_fn(|i| (i as u8).wrapping_mul(seed)));
            let secret = std::array::from_fn(|i| (i as u8).wrapping_mul(31) ^ seed);
            let token = format.encode(&id, &secret);
            let text = token.expose_secret().as_bytes().to_vec();
            for position in [3, 4, 5, 6, 40, 69, 70, 71, 72] {
                for byte in 0..=255u8 {
                    let mut changed = text.clone();
                    changed[position] = byte;
                    let Ok(changed) = String::from_utf8(changed) else {
                        continue;
                    };
                    let ours = format.parse(&changed);
                    match reference(&changed) {
                        // Decodable: the checksum decides, on the same bytes.
                        Some(raw) => {
                            let crc_ok = crc32fast::hash(&raw[..ID_LEN + SECRET_LEN]).to_be_bytes()
                                == raw[ID_LEN + SECRET_LEN..];
                            assert_eq!(ours.is_ok(), crc_ok, "{changed}");
                            if let Ok(parsed) = ours {
                                assert_eq!(parsed.id().as_bytes()[..], raw[..ID_LEN]);
                                assert_eq!(parsed.secret()[..], raw[ID_LEN..ID_LEN + SECRET_LEN]);
                            }
                        }
                        None => assert_eq!(
                            ours.map(|p| p.id()),
                            Err(TokenParseError::InvalidEncoding),
                            "{changed}"
                        ),
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn a_token_round_trips_through_its_text() {
        let format = TokenFormat::default();
        let token = sample();
        let parsed = format.parse(token.expose_secret()).unwrap();
        assert_eq!(parsed.id(), token.id());
        assert_eq!(parsed.secret(), &[9; SECRET_LEN]);
        assert_eq!(token.expose_secret().len(), format.token_len());
    }

    /// Golden vector: the wire format must never change under existing tokens.
    /// Made by `TokenFormat::default().encode(&TokenId([7; 16]), &[9; 32])`, and checked
    /// independently: `base64url(id || secret || crc32_be(id || secret))` with zlib's CRC-32.
    #[test]
    fn the_wire_format_is_stable() {
        assert_eq!(
            sample().expose_secret(),
            "fk_BwcHBwcHBwcHBwcHBwcHBwkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJ3dLb3w"
        );
    }

    #[test]
    fn every_bad_shape_has_its_own_error() {
        let format = TokenFormat::default();
        let good = sample().expose_secret().to_owned();
        let cases: Vec<(String, TokenParseError)> = vec![
            ("fkBwcH".into(), TokenParseError::MissingPrefix),
            (good.replacen("fk_", "gh_", 1), TokenParseError::WrongPrefix),
            (
                good[..good.len() - 1].into(),
                TokenParseError::InvalidLength,
            ),
            (format!("{good}A"), TokenParseError::InvalidLength),
            (good.replacen('B', "!", 1), TokenParseError::InvalidEncoding),
            (good.replacen('J', "K", 1), TokenParseError::InvalidChecksum),
            (String::new(), TokenParseError::MissingPrefix),
        ];
        for (text, want) in cases {
            assert_eq!(format.parse(&text).err(), Some(want), "{text:?}");
        }
    }

    #[test]
    fn a_non_canonical_last_character_is_refused() {
        let format = TokenFormat::default();
        let good = sample().expose_secret().to_owned();
        // 70 characters carry 420 bits for 416 bytes' worth: the last character's low
        // bits must be zero, so only one spelling of a token exists.
        let mut bad = good[..good.len() - 1].to_owned();
        bad.push('x');
        assert!(format.parse(&bad).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = sample();
        let shown = format!("{token:?}");
        assert!(!shown.contains(&token.expose_secret()[3..]));
        let parsed = TokenFormat::default().parse(token.expose_secret()).unwrap();
        assert!(!format!("{parsed:?}").contains("9, 9"));
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(TokenFormat::new("acme").is_ok());
        assert!(TokenFormat::new("").is_err());
        assert!(TokenFormat::new("Acme").is_err());
        assert!(TokenFormat::new("ac_me").is_err());
        assert!(TokenFormat::new("a".repeat(17).as_str()).is_err());
    }

    #[test]
    fn token_ids_round_trip_as_text() {
        let id = TokenId([200; ID_LEN]);
        let text = id.to_string();
        assert_eq!(text.len(), ID_TEXT_LEN);
        assert_eq!(text.parse::<TokenId>().unwrap(), id);
        assert!("short".parse::<TokenId>().is_err());
        assert!("!".repeat(ID_TEXT_LEN).parse::<TokenId>().is_err());
    }
}
