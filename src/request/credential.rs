//! Credentials as they arrive over HTTP: an API-key header, a Bearer token, or Basic auth
//! whose password is a token or the account password.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::ascii::all_bytes;

/// The longest header value looked at, in bytes. Longer ones are refused unread.
pub const MAX_HEADER_LEN: usize = 4096;

/// The header NuGet clients send their API key in.
pub const API_KEY_HEADER: &str = "X-NuGet-ApiKey";

/// Why a request's credential could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The request carries no credential.
    #[error("no credential")]
    Missing,
    /// A header value is longer than [`MAX_HEADER_LEN`].
    #[error("credential header too long")]
    TooLong,
    /// A header value is not UTF-8, or has control characters.
    #[error("credential is not printable text")]
    NotText,
    /// The `Authorization` scheme is neither `Bearer` nor `Basic`.
    #[error("unsupported authorization scheme")]
    UnsupportedScheme,
    /// The Basic credential is not base64 of `user:password`.
    #[error("malformed Basic credential")]
    MalformedBasic,
    /// The API-key header and the `Authorization` header carry different credentials.
    #[error("two different credentials in one request")]
    Ambiguous,
}

/// A credential taken from a request. A token is borrowed from the header value, never
/// copied; a Basic credential is decoded into memory that is zeroed on drop.
///
/// `Debug` never shows the secret part.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential<'a> {
    /// A token from an API-key header or `Authorization: Bearer`.
    Token(&'a str),
    /// `Authorization: Basic`: a user name and a password, which may be a token.
    Basic {
        /// The user name as sent.
        username: String,
        /// The password (or token) as sent.
        password: Zeroizing<String>,
    },
}

impl fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Token(_) => f.debug_tuple("Token").finish_non_exhaustive(),
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

/// Whether `c` is a blank: a space or a tab, and nothing else (no no-break space, no other
/// Unicode white space). The one rule every header reader here uses, around a value and
/// between an `Authorization` scheme and its credentials.
pub(crate) const fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t')
}

/// `text` without leading and trailing blanks ([`is_blank`]).
fn trim_blanks(text: &str) -> &str {
    text.trim_matches(is_blank)
}

fn text(value: &[u8]) -> Result<&str, CredentialError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(CredentialError::TooLong);
    }
    // One pass decides the usual case: printable ASCII (tabs allowed around the value).
    let printable = all_bytes(value, |b| b == b'\t' || (0x20..0x7f).contains(&b));
    let text = std::str::from_utf8(value).map_err(|_| CredentialError::NotText)?;
    if !printable && text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(CredentialError::NotText);
    }
    Ok(trim_blanks(text))
}

impl<'a> Credential<'a> {
    /// Reads an API-key header value (`X-NuGet-ApiKey`).
    ///
    /// # Errors
    /// [`CredentialError`] when it is empty, too long or not text.
    pub fn from_api_key(value: &'a [u8]) -> Result<Self, CredentialError> {
        let text = text(value)?;
        if text.is_empty() {
            return Err(CredentialError::Missing);
        }
        Ok(Credential::Token(text))
    }

    /// Reads an `Authorization` header value: `Bearer <token>` or `Basic <base64>`.
    /// The scheme is matched case-insensitively.
    ///
    /// # Errors
    /// [`CredentialError`] naming what is wrong with it.
    pub fn from_authorization(value: &'a [u8]) -> Result<Self, CredentialError> {
        let text = text(value)?;
        let (scheme, rest) = text
            .split_once(is_blank)
            .ok_or(CredentialError::UnsupportedScheme)?;
        let rest = trim_blanks(rest);
        if scheme.eq_ignore_ascii_case("bearer") {
            if rest.is_empty() {
                return Err(CredentialError::Missing);
            }
            return Ok(Credential::Token(rest));
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(CredentialError::UnsupportedScheme);
        }
        let decoded = Zeroizing::new(
            STANDARD
                .decode(rest)
                .map_err(|_| CredentialError::MalformedBasic)?,
        );
        let decoded = std::str::from_utf8(&decoded).map_err(|_| CredentialError::MalformedBasic)?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or(CredentialError::MalformedBasic)?;
        if password.is_empty() || decoded.chars().any(char::is_control) {
            return Err(CredentialError::MalformedBasic);
        }
        Ok(Credential::Basic {
            username: username.to_owned(),
            password: Zeroizing::new(password.to_owned()),
        })
    }
}

impl<'a> Credential<'a> {
    /// Reads an `Authorization` header value as cargo sends it: the configured token as it
    /// is, with no scheme (cargo's `cargo:token` credential provider sends it verbatim), or
    /// a `Bearer`/`Basic` value for a token configured with its scheme.
    ///
    /// ```
    /// use feedkey::Credential;
    ///
    /// assert_eq!(Credential::from_cargo_authorization(b"fk_abc"), Ok(Credential::Token("fk_abc")));
    /// assert_eq!(Credential::from_cargo_authorization(b"Bearer fk_abc"), Ok(Credential::Token("fk_abc")));
    /// ```
    ///
    /// # Errors
    /// [`CredentialError`] naming what is wrong with it.
    pub fn from_cargo_authorization(value: &'a [u8]) -> Result<Self, CredentialError> {
        // Trimmed of blanks (spaces and tabs) only, as every other header value here.
        let text = text(value)?;
        if text.is_empty() {
            return Err(CredentialError::Missing);
        }
        if text.contains(is_blank) {
            return Self::from_authorization(value);
        }
        Ok(Credential::Token(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;

    fn basic(user_pass: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(user_pass)).into_bytes()
    }

    #[test]
    fn the_three_ways_a_token_arrives() {
        let r = Request::from_headers(Some(b"fk_x"), None);
        assert_eq!(r.credential(), Ok(&Credential::Token("fk_x")));
        let r = Request::from_headers(None, Some(b"bearer  fk_x "));
        assert_eq!(r.credential(), Ok(&Credential::Token("fk_x")));
        let header = basic("bob:fk_x");
        let r = Request::from_headers(None, Some(&header));
        assert_eq!(
            r.credential(),
            Ok(&Credential::Basic {
                username: "bob".into(),
                password: Zeroizing::new("fk_x".into())
            })
        );
    }

    #[test]
    fn a_password_may_hold_colons() {
        let header = basic("bob:a:b");
        let r = Request::from_headers(None, Some(&header));
        assert!(
            matches!(r.credential(), Ok(Credential::Basic { password, .. }) if password.as_str() == "a:b")
        );
    }

    #[test]
    fn bad_headers_are_typed_errors() {
        let long = vec![b'a'; MAX_HEADER_LEN + 1];
        type Case<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, CredentialError);
        let cases: Vec<Case<'_>> = vec![
            (None, None, CredentialError::Missing),
            (Some(b""), None, CredentialError::Missing),
            (Some(b"  "), None, CredentialError::Missing),
            (Some(&long), None, CredentialError::TooLong),
            (Some(b"\xff\xfe"), None, CredentialError::NotText),
            (Some(b"a\0b"), None, CredentialError::NotText),
            (
                None,
                Some(b"Digest abc"),
                CredentialError::UnsupportedScheme,
            ),
            (None, Some(b"Bearer"), CredentialError::UnsupportedScheme),
            (None, Some(b"Bearer  "), CredentialError::UnsupportedScheme),
            (None, Some(b"Basic !!!"), CredentialError::MalformedBasic),
            (None, Some(b"Basic Ym9i"), CredentialError::MalformedBasic),
            // `bob:`: an empty password.
            (
                None,
                Some(b"Basic Ym9iOg=="),
                CredentialError::MalformedBasic,
            ),
            // `bob:a\x01b`: a control character in the password.
            (
                None,
                Some(b"Basic Ym9iOmEBYg=="),
                CredentialError::MalformedBasic,
            ),
            (
                Some(b"fk_a"),
                Some(b"Bearer fk_b"),
                CredentialError::Ambiguous,
            ),
        ];
        for (key, auth, want) in cases {
            assert_eq!(
                Request::from_headers(key, auth).credential().err(),
                Some(want),
                "{key:?} {auth:?}"
            );
        }
        // The longest value is read; one byte more is the `TooLong` above.
        let longest = vec![b'a'; MAX_HEADER_LEN];
        assert!(Credential::from_api_key(&longest).is_ok());
    }

    #[test]
    fn a_blank_api_key_does_not_hide_the_authorization_header() {
        let r = Request::from_headers(Some(b" "), Some(b"Bearer fk_a"));
        assert_eq!(r.credential(), Ok(&Credential::Token("fk_a")));
    }

    #[test]
    fn the_same_token_in_both_headers_is_fine() {
        let r = Request::from_headers(Some(b"fk_a"), Some(b"Bearer fk_a"));
        assert!(r.credential().is_ok());
        let header = basic("u:fk_a");
        let r = Request::from_headers(Some(b"fk_a"), Some(&header));
        assert!(r.credential().is_ok());
    }

    #[test]
    fn debug_hides_secrets() {
        let header = basic("bob:hunter2");
        let r = Request::from_headers(None, Some(&header));
        let shown = format!("{r:?}");
        assert!(shown.contains("bob"));
        assert!(!shown.contains("hunter2"));
        let r = Request::token("fk_secret");
        assert!(!format!("{r:?}").contains("secret"));
    }

    #[test]
    fn blanks_are_spaces_and_tabs_only() {
        let table = [
            (' ', true),
            ('\t', true),
            ('\u{a0}', false),
            ('\u{2003}', false),
            ('\u{3000}', false),
            ('\n', false),
            ('\r', false),
            ('\u{b}', false),
            ('\u{c}', false),
            ('x', false),
        ];
        for (c, blank) in table {
            assert_eq!(is_blank(c), blank, "{c:?}");
        }
    }

    #[test]
    fn every_reader_trims_the_same_blanks() {
        // The same bytes around a token, through the API-key header, `Bearer` and cargo's
        // bare `Authorization`: all three agree on what is left.
        let arounds = ["", " ", "\t", " \t ", "\u{a0}", "\u{2003}", "\u{3000}"];
        for before in arounds {
            for after in arounds {
                let value = format!("{before}fk_abc{after}");
                let api = Credential::from_api_key(value.as_bytes());
                let bearer_header = format!("Bearer {value}");
                let bearer = Credential::from_authorization(bearer_header.as_bytes());
                let cargo = Credential::from_cargo_authorization(value.as_bytes());
                assert_eq!(api, bearer, "{value:?}");
                assert_eq!(api, cargo, "{value:?}");
                let trimmed = value.trim_matches(is_blank);
                assert_eq!(api, Ok(Credential::Token(trimmed)), "{value:?}");
            }
        }
        // The scheme is separated from the credentials by blanks, and by nothing else.
        assert_eq!(
            Credential::from_authorization(b"Bearer\tfk_abc"),
            Ok(Credential::Token("fk_abc"))
        );
        assert_eq!(
            Credential::from_authorization("Bearer\u{a0}fk_abc".as_bytes()),
            Err(CredentialError::UnsupportedScheme)
        );
        let basic = format!("Basic \u{a0}{}", STANDARD.encode("u:fk_abc"));
        assert_eq!(
            Credential::from_authorization(basic.as_bytes()),
            Err(CredentialError::MalformedBasic)
        );
    }

    #[test]
    fn cargo_sends_the_token_bare_or_with_a_scheme() {
        type Case<'a> = (Option<&'a [u8]>, Result<Credential<'a>, CredentialError>);
        let cases: [Case<'_>; 7] = [
            (Some(b"fk_abc"), Ok(Credential::Token("fk_abc"))),
            // Only spaces and tabs are blanks: a no-break space is part of the value.
            (
                Some("Basic \u{a0}".as_bytes()),
                Err(CredentialError::MalformedBasic),
            ),
            (Some(b"  fk_abc\t"), Ok(Credential::Token("fk_abc"))),
            (Some(b"Bearer fk_abc"), Ok(Credential::Token("fk_abc"))),
            (
                Some(b"Digest fk_abc"),
                Err(CredentialError::UnsupportedScheme),
            ),
            (Some(b"  "), Err(CredentialError::Missing)),
            (None, Err(CredentialError::Missing)),
        ];
        for (header, want) in cases {
            let r = Request::from_cargo_authorization(header);
            assert_eq!(r.credential().cloned(), want, "{header:?}");
        }
        let basic = Request::from_cargo_authorization(Some(b"Basic dTpmaw=="));
        assert!(matches!(
            basic.credential(),
            Ok(Credential::Basic { username, .. }) if username == "u"
        ));
    }

    #[cfg(feature = "http")]
    #[test]
    fn a_header_map_reads_like_the_raw_values() {
        let mut headers = http::HeaderMap::new();
        headers.insert(API_KEY_HEADER, http::HeaderValue::from_static("fk_x"));
        assert_eq!(
            Request::from_header_map(&headers).credential(),
            Ok(&Credential::Token("fk_x"))
        );
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer fk_y"),
        );
        assert_eq!(
            Request::from_header_map(&headers).credential().err(),
            Some(CredentialError::Ambiguous)
        );
        assert_eq!(
            Request::from_header_map(&http::HeaderMap::new())
                .credential()
                .err(),
            Some(CredentialError::Missing)
        );
        let mut twice = http::HeaderMap::new();
        twice.append(API_KEY_HEADER, http::HeaderValue::from_static("fk_x"));
        twice.append(API_KEY_HEADER, http::HeaderValue::from_static("fk_y"));
        assert_eq!(
            Request::from_header_map(&twice).credential().err(),
            Some(CredentialError::Ambiguous)
        );
        assert_eq!(
            Request::from_cargo_header_map(&twice).credential().err(),
            Some(CredentialError::Missing)
        );
        let mut cargo_twice = http::HeaderMap::new();
        cargo_twice.append(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("fk_x"),
        );
        cargo_twice.append(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("fk_y"),
        );
        assert_eq!(
            Request::from_cargo_header_map(&cargo_twice)
                .credential()
                .err(),
            Some(CredentialError::Ambiguous)
        );
    }
}
