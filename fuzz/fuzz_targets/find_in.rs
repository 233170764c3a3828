//! `TokenFormat::find_in` never panics on any bytes, and finds exactly what a plain
//! reference scan (every offset tried, written here from the rule in
//! `src/token/scan.rs`) finds: the same tokens, at the same places, in order.
//!
//! Input: raw bytes, or bytes with real tokens (built from payload bytes, checksum
//! right) spliced in at chosen places, so that hits and near misses are common.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use feedkey::TokenFormat;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Splice {
    at: u16,
    payload: [u8; 48],
    /// Damage the token: replace its character at this offset with `with`.
    damage: Option<(u8, u8)>,
}

fn token(payload: &[u8; 48]) -> String {
    let mut raw = payload.to_vec();
    raw.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    format!("fk_{}", URL_SAFE_NO_PAD.encode(raw))
}

fn body_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Every offset where the rule holds: `fk_`, 70 body bytes, no body byte touching either
/// end, a checksum that matches.
fn reference(data: &[u8]) -> Vec<(usize, usize)> {
    let format = TokenFormat::default();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 73 <= data.len() {
        let window = &data[i..i + 73];
        let bounded = (i == 0 || !body_byte(data[i - 1]))
            && data.get(i + 73).is_none_or(|&b| !body_byte(b));
        if window.starts_with(b"fk_")
            && window[3..].iter().all(|&b| body_byte(b))
            && bounded
            && std::str::from_utf8(window).is_ok_and(|t| format.parse(t).is_ok())
        {
            found.push((i, i + 73));
            i += 73;
        } else {
            i += 1;
        }
    }
    found
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut bytes: Vec<u8> = u.arbitrary().unwrap_or_default();
    let splices: Vec<Splice> = u.arbitrary().unwrap_or_default();
    for splice in splices.iter().take(8) {
        let mut t = token(&splice.payload).into_bytes();
        if let Some((at, with)) = splice.damage {
            let at = usize::from(at) % t.len();
            t[at] = with;
        }
        let at = usize::from(splice.at) % (bytes.len() + 1);
        bytes.splice(at..at, t);
    }
    let format = TokenFormat::default();
    let found: Vec<(usize, usize)> = format
        .find_in(&bytes)
        .map(|c| {
            assert!(format.parse(c.expose_secret()).is_ok());
            assert_eq!(&bytes[c.start()..c.end()], c.expose_secret().as_bytes());
            (c.start(), c.end())
        })
        .collect();
    assert_eq!(found, reference(&bytes));
});
