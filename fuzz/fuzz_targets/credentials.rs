//! Reading credentials from headers: `Request::from_headers`, `Request::from_header_map`
//! (feature `http`) and `Credential::from_authorization` never panic, and:
//! - a token read is non-empty, at most `MAX_HEADER_LEN` bytes, has no control character
//!   but tab, and is a slice of a header value;
//! - a `HeaderMap` holding each header once reads exactly as the raw values do;
//! - cargo's `Authorization` (`Credential::from_cargo_authorization`) reads a value with a
//!   space exactly as `from_authorization` does, and any other as the trimmed token;
//! - blanks are spaces and tabs only, for every reader: the same bytes as an API key, as
//!   a `Bearer` value and as cargo's bare value read as the same token;
//! - `Basic <base64 of bytes>` decodes to exactly `user:password` as a plain reference
//!   decoder says, or to the error it predicts.
//!
//! Input: the bytes as HTTP header lines (the seeds: `X-NuGet-ApiKey: …`,
//! `Authorization: …`, `Basic-Raw: user:password`), and the same bytes decoded as a
//! structured input.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use feedkey::{API_KEY_HEADER, Credential, CredentialError, MAX_HEADER_LEN, Request};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    api_key: Option<&'a [u8]>,
    authorization: Option<&'a [u8]>,
    /// Extra values appended to the header map (a header sent twice).
    extra_api_key: Option<&'a [u8]>,
    extra_authorization: Option<&'a [u8]>,
    /// Raw bytes sent as `Basic <base64(bytes)>`.
    basic: &'a [u8],
    /// How the scheme is spelled: its case, and the spaces after it.
    scheme_case: u8,
    spaces: u8,
    trailing_tabs: u8,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn check_token(token: &str, headers: &[Option<&[u8]>]) {
    assert!(!token.is_empty(), "empty token read");
    assert!(token.len() <= MAX_HEADER_LEN);
    assert!(
        !token.chars().any(|c| c.is_control() && c != '\t'),
        "control character in token"
    );
    assert!(
        !token.starts_with([' ', '\t']) && !token.ends_with([' ', '\t']),
        "token not trimmed: {token:?}"
    );
    assert!(
        headers
            .iter()
            .flatten()
            .any(|h| contains(h, token.as_bytes())),
        "token is not part of any header value"
    );
}

fn check_request(request: &Request<'_>, headers: &[Option<&[u8]>]) {
    match request.credential() {
        Ok(Credential::Token(token)) => check_token(token, headers),
        Ok(Credential::Basic { username, password }) => {
            assert!(!password.is_empty(), "empty Basic password");
            assert!(!username.contains(':'), "user name holds a colon");
            assert!(!username.chars().any(char::is_control));
            assert!(!password.chars().any(char::is_control));
            // The Debug form never shows the password: it reads as with any other.
            assert_eq!(
                format!("{request:?}"),
                format!("{:?}", Request::basic(username, "x")),
                "Debug depends on the password"
            );
        }
        Err(_) => {}
    }
}

/// What `Basic <base64(raw)>` must decode to, per RFC 7617 and the crate's rules.
fn reference_basic(raw: &[u8]) -> Result<(String, String), CredentialError> {
    let text = std::str::from_utf8(raw).map_err(|_| CredentialError::MalformedBasic)?;
    let (user, password) = text
        .split_once(':')
        .ok_or(CredentialError::MalformedBasic)?;
    if password.is_empty() || text.chars().any(char::is_control) {
        return Err(CredentialError::MalformedBasic);
    }
    Ok((user.to_owned(), password.to_owned()))
}

fn run(input: &Input<'_>) {
    let headers = [input.api_key, input.authorization];

    // Raw header values.
    let raw = Request::from_headers(input.api_key, input.authorization);
    check_request(&raw, &headers);
    if input.api_key.is_none() && input.authorization.is_none() {
        assert_eq!(raw.credential().err(), Some(CredentialError::Missing));
    }
    if let Some(key) = input.api_key
        && let Ok(Credential::Token(t)) = Credential::from_api_key(key)
    {
        check_token(t, &headers);
    }
    if let Some(auth) = input.authorization {
        match Credential::from_authorization(auth) {
            Ok(Credential::Token(t)) => check_token(t, &headers),
            Ok(Credential::Basic { password, .. }) => assert!(!password.is_empty()),
            Err(_) => {}
        }
    }

    // Every reader trims the same blanks: the API-key header's bytes read as a `Bearer`
    // value, and as cargo's bare value, give the same token.
    if let Some(key) = input.api_key {
        let api = Credential::from_api_key(key);
        let bearer_header = [b"Bearer ".as_slice(), key].concat();
        let bearer = Credential::from_authorization(&bearer_header);
        if let Ok(Credential::Token(t)) = &api
            && bearer_header.len() <= MAX_HEADER_LEN
        {
            assert_eq!(bearer, Ok(Credential::Token(t)), "Bearer reads unlike the API key");
            if !t.contains([' ', '\t']) {
                assert_eq!(
                    Credential::from_cargo_authorization(key),
                    Ok(Credential::Token(t)),
                    "cargo reads unlike the API key"
                );
            }
        }
        if let Ok(Credential::Token(t)) = &bearer {
            assert_eq!(api, Ok(Credential::Token(t)), "the API key reads unlike Bearer");
        }
    }

    // Cargo's form: a bare token, or a value with a scheme read as from_authorization.
    if let Some(auth) = input.authorization {
        let cargo = Credential::from_cargo_authorization(auth);
        match &cargo {
            Ok(Credential::Token(t)) => check_token(t, &headers),
            Ok(Credential::Basic { password, .. }) => assert!(!password.is_empty()),
            Err(_) => {}
        }
        if let Ok(text) = std::str::from_utf8(auth)
            && text.trim_matches([' ', '\t']).contains([' ', '\t'])
        {
            assert_eq!(cargo, Credential::from_authorization(auth), "cargo form differs");
        }
        assert_eq!(
            Request::from_cargo_authorization(Some(auth)).credential(),
            cargo.as_ref().map_err(|e| *e),
        );
    }

    // The same values in an http::HeaderMap (values http refuses are skipped).
    let mut map = http::HeaderMap::new();
    let key_value = input
        .api_key
        .and_then(|v| http::HeaderValue::from_bytes(v).ok());
    let auth_value = input
        .authorization
        .and_then(|v| http::HeaderValue::from_bytes(v).ok());
    if let Some(v) = &key_value {
        map.append(API_KEY_HEADER, v.clone());
    }
    if let Some(v) = &auth_value {
        map.append(http::header::AUTHORIZATION, v.clone());
    }
    {
        let from_map = Request::from_header_map(&map);
        let from_values = Request::from_headers(
            key_value.as_ref().map(http::HeaderValue::as_bytes),
            auth_value.as_ref().map(http::HeaderValue::as_bytes),
        );
        assert_eq!(
            from_map.credential(),
            from_values.credential(),
            "a header map reads unlike its values"
        );
        let map_headers = [
            key_value.as_ref().map(http::HeaderValue::as_bytes),
            auth_value.as_ref().map(http::HeaderValue::as_bytes),
        ];
        check_request(&from_map, &map_headers);
    }
    // A header sent twice is ambiguous.
    let mut twice = false;
    if let Some(v) = input
        .extra_api_key
        .and_then(|v| http::HeaderValue::from_bytes(v).ok())
    {
        twice |= key_value.is_some();
        map.append(API_KEY_HEADER, v);
    }
    if let Some(v) = input
        .extra_authorization
        .and_then(|v| http::HeaderValue::from_bytes(v).ok())
    {
        twice |= auth_value.is_some();
        map.append(http::header::AUTHORIZATION, v);
    }
    let from_map = Request::from_header_map(&map);
    if twice {
        assert_eq!(
            from_map.credential().err(),
            Some(CredentialError::Ambiguous),
            "a repeated header was read"
        );
    }

    // Basic with base64 of arbitrary bytes.
    let scheme = match input.scheme_case % 4 {
        0 => "Basic",
        1 => "basic",
        2 => "BASIC",
        _ => "bAsIc",
    };
    let spaces = " ".repeat(1 + usize::from(input.spaces % 3));
    let tabs = "\t".repeat(usize::from(input.trailing_tabs % 3));
    let header = format!("{scheme}{spaces}{}{tabs}", STANDARD.encode(input.basic));
    let got = Credential::from_authorization(header.as_bytes());
    let want = if header.len() > MAX_HEADER_LEN {
        Err(CredentialError::TooLong)
    } else if input.basic.is_empty() {
        // `Basic` and blanks only: the blanks are trimmed, leaving no scheme separator.
        Err(CredentialError::UnsupportedScheme)
    } else {
        reference_basic(input.basic)
    };
    match (&got, &want) {
        (Ok(Credential::Basic { username, password }), Ok((u, p))) => {
            assert_eq!(username, u);
            assert_eq!(password.as_str(), p);
        }
        (Err(e), Err(w)) => assert_eq!(e, w),
        _ => panic!("Basic: got {got:?}, want {want:?}"),
    }
    // The same through a request, and next to an API key holding the password.
    let request = Request::from_headers(None, Some(header.as_bytes()));
    assert_eq!(request.credential().ok(), got.as_ref().ok());
    if let Ok((_, password)) = &want
        && !password.chars().all(|c| c == ' ' || c == '\t')
    {
        let both = Request::from_headers(Some(password.as_bytes()), Some(header.as_bytes()));
        if let Ok(cred) = both.credential() {
            // Either the same credential (the password as a token) or nothing.
            match cred {
                Credential::Token(t) => assert_eq!(*t, password.trim_matches([' ', '\t'])),
                Credential::Basic { .. } => panic!("API key and Basic merged into Basic"),
            }
        }
    }
}

/// The input as HTTP header lines, for seeds and regression cases:
///
/// ```text
/// X-NuGet-ApiKey: fk_…
/// Authorization: Basic Ym9iOmZrX3g=
/// Basic-Raw: bob:hunter2
/// ```
///
/// A header given twice goes in the `extra_…` field; `Basic-Raw` is the text to send as
/// `Basic <base64>`. `None` when no line is a header line.
fn from_lines(data: &[u8]) -> Option<Input<'_>> {
    let mut input = Input {
        api_key: None,
        authorization: None,
        extra_api_key: None,
        extra_authorization: None,
        basic: &[],
        scheme_case: 0,
        spaces: 0,
        trailing_tabs: 0,
    };
    let mut any = false;
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = &value[1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        let slot = if name.eq_ignore_ascii_case(API_KEY_HEADER.as_bytes()) {
            if input.api_key.is_none() {
                &mut input.api_key
            } else {
                &mut input.extra_api_key
            }
        } else if name.eq_ignore_ascii_case(b"authorization") {
            if input.authorization.is_none() {
                &mut input.authorization
            } else {
                &mut input.extra_authorization
            }
        } else if name.eq_ignore_ascii_case(b"basic-raw") {
            input.basic = value;
            any = true;
            continue;
        } else {
            continue;
        };
        *slot = Some(value);
        any = true;
    }
    any.then_some(input)
}

fuzz_target!(|data: &[u8]| {
    if let Some(input) = from_lines(data) {
        run(&input);
    }
    if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) {
        run(&input);
    }
});
