//! Token parsing: `TokenFormat::new` and `TokenFormat::parse` never panic, and agree with
//! a plain reference parser written here from the token format described in docs/security.md.
//!
//! Input: the bytes as text (parsed with the default format and, when the text proposes a
//! valid prefix before its `_`, with that format: the seeds are plain token strings), and
//! the same bytes decoded as a structured input: raw text again, text with a prefix, or a
//! token built from 48 payload bytes with a small mutation, so that the checksum and
//! alphabet checks are reached often.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use feedkey::{TokenFormat, TokenFormatError, TokenId};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    /// Raw text, parsed by the default format.
    Raw(&'a str),
    /// `prefix` used as a format (if it is one) to parse `text`.
    WithPrefix { prefix: &'a str, text: &'a str },
    /// A well-formed token, then perhaps damaged.
    Built {
        prefix: Prefix<'a>,
        payload: [u8; 48],
        mutation: Option<Mutation>,
        /// Recompute the checksum after a payload mutation.
        fix_crc: bool,
    },
}

#[derive(Arbitrary, Debug)]
enum Prefix<'a> {
    Default,
    Custom(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Mutation {
    /// Flip a bit of the decoded payload (before the checksum is computed or fixed).
    FlipPayloadBit { index: u8, bit: u8 },
    /// Replace one character of the text.
    ReplaceChar { index: u8, with: char },
    /// Insert a character.
    Insert { index: u8, with: char },
    /// Remove a character.
    Remove { index: u8 },
    /// Truncate the text.
    Truncate { len: u8 },
    /// Change the last character (non-canonical trailing bits).
    BumpLast { by: u8 },
    /// Swap the case of one character.
    SwapCase { index: u8 },
}

/// The format as docs/security.md describes it, independently of the crate.
fn reference_parse(prefix: &str, text: &str) -> Option<[u8; 16]> {
    let (p, body) = text.split_once('_')?;
    if p != prefix || body.len() != 70 {
        return None;
    }
    // Strict: unpadded, canonical trailing bits, URL-safe alphabet.
    let raw = URL_SAFE_NO_PAD.decode(body).ok()?;
    if raw.len() != 52 {
        return None;
    }
    let crc = crc32fast::hash(&raw[..48]).to_be_bytes();
    if raw[48..] != crc {
        return None;
    }
    // Canonical: the body re-encodes to itself.
    assert_eq!(
        URL_SAFE_NO_PAD.encode(&raw),
        body,
        "reference decoder not canonical"
    );
    let mut id = [0u8; 16];
    id.copy_from_slice(&raw[..16]);
    Some(id)
}

fn reference_prefix_ok(prefix: &str) -> bool {
    (1..=16).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn check(format: &TokenFormat, text: &str) {
    let got = format.parse(text);
    let want = reference_parse(format.prefix(), text);
    assert_eq!(
        format.looks_like_token(text),
        got.is_ok(),
        "looks_like_token disagrees with parse"
    );
    match (&got, want) {
        (Ok(token), Some(id)) => {
            // The invariant: a parsed token has exactly the format's length.
            assert_eq!(
                text.len(),
                format.token_len(),
                "parsed token of wrong length"
            );
            assert_eq!(
                token.id().as_bytes(),
                &id,
                "parsed id differs from reference"
            );
            // The id's text form round-trips.
            let shown = token.id().to_string();
            assert_eq!(shown.len(), 22);
            let back: TokenId = shown.parse().expect("a displayed id parses");
            assert_eq!(back, token.id());
        }
        (Err(_), None) => {}
        (Ok(_), None) => panic!("parse accepted what the reference refuses: {text:?}"),
        (Err(e), Some(_)) => panic!("parse refused ({e:?}) what the reference accepts: {text:?}"),
    }
}

fn format_for(prefix: &str) -> Option<TokenFormat> {
    let got = TokenFormat::new(prefix);
    assert_eq!(
        got.is_ok(),
        reference_prefix_ok(prefix),
        "prefix {prefix:?}"
    );
    match got {
        Ok(f) => {
            assert_eq!(f.prefix(), prefix);
            assert_eq!(f.token_len(), prefix.len() + 71);
            Some(f)
        }
        Err(TokenFormatError::PrefixLength { len }) => {
            assert_eq!(len, prefix.len());
            None
        }
        Err(_) => None,
    }
}

fn char_index(text: &str, index: u8) -> Option<usize> {
    let n = text.chars().count();
    if n == 0 {
        return None;
    }
    text.char_indices()
        .nth(usize::from(index) % n)
        .map(|(i, _)| i)
}

fn build(prefix: &str, payload: &[u8; 48], mutation: Option<&Mutation>, fix_crc: bool) -> String {
    let mut raw = [0u8; 52];
    raw[..48].copy_from_slice(payload);
    let crc = crc32fast::hash(&raw[..48]).to_be_bytes();
    raw[48..].copy_from_slice(&crc);
    if let Some(Mutation::FlipPayloadBit { index, bit }) = mutation {
        raw[usize::from(*index) % 52] ^= 1 << (bit % 8);
        if fix_crc {
            let crc = crc32fast::hash(&raw[..48]).to_be_bytes();
            raw[48..].copy_from_slice(&crc);
        }
    }
    let mut text = format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(raw));
    match mutation {
        None | Some(Mutation::FlipPayloadBit { .. }) => {}
        Some(Mutation::ReplaceChar { index, with }) => {
            if let Some(i) = char_index(&text, *index) {
                let len = text[i..].chars().next().map_or(0, char::len_utf8);
                text.replace_range(i..i + len, with.encode_utf8(&mut [0; 4]));
            }
        }
        Some(Mutation::Insert { index, with }) => {
            let i = char_index(&text, *index).unwrap_or(0);
            text.insert(i, *with);
        }
        Some(Mutation::Remove { index }) => {
            if let Some(i) = char_index(&text, *index) {
                text.remove(i);
            }
        }
        Some(Mutation::Truncate { len }) => {
            let keep = usize::from(*len) % (text.len() + 1);
            if text.is_char_boundary(keep) {
                text.truncate(keep);
            }
        }
        Some(Mutation::BumpLast { by }) => {
            if let Some(last) = text.pop() {
                const ALPHABET: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                let pos = ALPHABET
                    .iter()
                    .position(|&c| c as char == last)
                    .unwrap_or(0);
                text.push(ALPHABET[(pos + usize::from(*by)) % 64] as char);
            }
        }
        Some(Mutation::SwapCase { index }) => {
            if let Some(i) = char_index(&text, *index) {
                let c = text[i..].chars().next().unwrap_or('a');
                if c.is_ascii_alphabetic() {
                    let swapped = if c.is_ascii_lowercase() {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    };
                    text.replace_range(i..i + 1, swapped.encode_utf8(&mut [0; 4]));
                }
            }
        }
    }
    text
}

fn check_text(default: &TokenFormat, text: &str) {
    check(default, text);
    // Also with any prefix the text itself proposes.
    if let Some((prefix, _)) = text.split_once('_')
        && let Some(format) = format_for(prefix)
    {
        check(&format, text);
    }
}

fuzz_target!(|data: &[u8]| {
    let default = TokenFormat::default();
    assert_eq!(default.prefix(), "fk");
    // The input as text (seeds are plain token strings)...
    if let Ok(text) = std::str::from_utf8(data) {
        check_text(&default, text);
        check_text(&default, text.trim_end_matches('\n'));
    }
    // ...and the same bytes as a structured input.
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    match input {
        Input::Raw(text) => check_text(&default, text),
        Input::WithPrefix { prefix, text } => {
            if let Some(format) = format_for(prefix) {
                check(&format, text);
            }
            check(&default, text);
        }
        Input::Built {
            prefix,
            payload,
            mutation,
            fix_crc,
        } => {
            let format = match prefix {
                Prefix::Default => Some(default.clone()),
                Prefix::Custom(p) => format_for(p),
            };
            let prefix_text = match prefix {
                Prefix::Default => "fk",
                Prefix::Custom(p) => p,
            };
            let text = build(prefix_text, &payload, mutation.as_ref(), fix_crc);
            if let Some(format) = &format {
                check(format, &text);
                // An undamaged token always parses, and to the id it was built from.
                if mutation.is_none() {
                    let token = format.parse(&text).expect("a well-formed token parses");
                    assert_eq!(token.id().as_bytes()[..], payload[..16]);
                }
            }
            check(&default, &text);
        }
    }
});
