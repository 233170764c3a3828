//! Finding this registry's tokens in arbitrary data: text, source files, the contents of
//! an uploaded package. [`TokenFormat::find_in`] is what a registry runs over an upload
//! before publishing it, and the rule a secret scanner is given.
//!
//! A token is found where `<prefix>_` is followed by exactly [`BODY_LEN`] base64url
//! characters, the bytes just before and just after are not base64url characters
//! (`A-Z a-z 0-9 - _`), and the checksum matches. As a regular expression, for the
//! default prefix:
//!
//! ```text
//! (?<![A-Za-z0-9_-])fk_[A-Za-z0-9_-]{70}(?![A-Za-z0-9_-])
//! ```
//!
//! then the CRC-32 check of the decoded body (see the module [`crate::token`]).
//!
//! One pass over the data: the prefix is searched for with `memchr`'s SIMD substring
//! search, and a hit is looked at only where a run of base64url characters starts, so
//! each byte is read a bounded number of times whatever the data (a run of `fk_fk_fk_`
//! included). Nothing is allocated per byte or per hit.

use std::fmt;

use memchr::memmem::Finder;

use super::{BODY_LEN, TokenFormat, TokenId};

/// Whether `b` is a base64url character: a token's body, and what may not touch it.
const fn is_body_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A well-formed token found in data: where it is, and its text. Well-formed means the
/// prefix, the length, the alphabet, the boundaries and the checksum are right; whether it
/// is a live token of this registry is for the store to say
/// ([`Feedkey::report_leaked`](crate::Feedkey) verifies its secret).
///
/// Its `Debug` shows the place and the id, never the text.
#[derive(Clone, Copy)]
pub struct Candidate<'a> {
    start: usize,
    text: &'a str,
    id: TokenId,
}

impl<'a> Candidate<'a> {
    /// The byte offset of the token's first character in the data.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The byte offset just past the token's last character.
    pub fn end(&self) -> usize {
        self.start + self.text.len()
    }

    /// The token's public id.
    pub fn id(&self) -> TokenId {
        self.id
    }

    /// The whole token as it appears in the data, secret included.
    pub fn expose_secret(&self) -> &'a str {
        self.text
    }
}

impl fmt::Debug for Candidate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Candidate")
            .field("start", &self.start)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The iterator [`TokenFormat::find_in`] returns.
pub struct Candidates<'f, 'a> {
    format: &'f TokenFormat,
    finder: Finder<'static>,
    data: &'a [u8],
    /// Where the next search starts.
    at: usize,
}

impl<'a> Iterator for Candidates<'_, 'a> {
    type Item = Candidate<'a>;

    fn next(&mut self) -> Option<Candidate<'a>> {
        let marker = self.finder.needle().len();
        loop {
            let rest = self.data.get(self.at..)?;
            let start = self.at + self.finder.find(rest)?;
            // The next search starts one past this hit: a hit that is not a token's
            // start is skipped at the cost of one byte.
            self.at = start + 1;
            let starts_run = start
                .checked_sub(1)
                .and_then(|before| self.data.get(before))
                .is_none_or(|&b| !is_body_byte(b));
            if !starts_run {
                continue;
            }
            let end = start + marker + BODY_LEN;
            let Some(token) = self.data.get(start..end) else {
                return None; // too near the end for a whole token, and so every later hit
            };
            let ends_run = self.data.get(end).is_none_or(|&b| !is_body_byte(b));
            let body_ok = token
                .get(marker..)
                .is_some_and(|body| body.iter().all(|&b| is_body_byte(b)));
            if !(ends_run && body_ok) {
                continue;
            }
            // All ASCII, so valid UTF-8; the parse checks the checksum.
            let Ok(text) = std::str::from_utf8(token) else {
                continue;
            };
            if let Ok(parsed) = self.format.parse(text) {
                self.at = end;
                return Some(Candidate {
                    start,
                    text,
                    id: parsed.id(),
                });
            }
        }
    }
}

impl TokenFormat {
    /// Every well-formed token of this format in `data`, in order, in one linear pass: for
    /// scanning an upload, a log or any text before it is published. The rule (prefix,
    /// exactly 70 body characters, no base64url character touching either end, the
    /// checksum) is the [`scan`](crate::token::scan) module's regular expression plus the
    /// checksum.
    ///
    /// ```
    /// use feedkey::{AccountId, Expiry, Feedkey, MemoryStore, TokenKey};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let keys = Feedkey::builder(MemoryStore::new(), TokenKey::generate(1)?).build()?;
    /// let primary = keys.create_account(&AccountId::new("alice")?, Expiry::Never).await?;
    /// let token = primary.token.expose_secret();
    ///
    /// // An upload's file, with the token pasted in, and near misses.
    /// let file = format!("NUGET_KEY=\"{token}\"\nfk_not-a-token fk_{}", "A".repeat(70));
    /// let found: Vec<_> = keys.token_format().find_in(file.as_bytes()).collect();
    /// assert_eq!(found.len(), 1);
    /// assert_eq!(found[0].expose_secret(), token);
    /// assert_eq!(found[0].start(), "NUGET_KEY=\"".len());
    /// # Ok(())
    /// # }
    /// ```
    pub fn find_in<'f, 'a>(&'f self, data: &'a [u8]) -> Candidates<'f, 'a> {
        let mut needle = Vec::with_capacity(self.prefix().len() + 1);
        needle.extend_from_slice(self.prefix().as_bytes());
        needle.push(b'_');
        Candidates {
            format: self,
            finder: Finder::new(&needle).into_owned(),
            data,
            at: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{ID_LEN, SECRET_LEN};

    fn token(format: &TokenFormat, n: u8) -> String {
        format
            .encode(&TokenId::from_bytes([n; ID_LEN]), &[n; SECRET_LEN])
            .expose_secret()
            .to_owned()
    }

    fn found(format: &TokenFormat, data: &str) -> Vec<(usize, String)> {
        format
            .find_in(data.as_bytes())
            .map(|c| (c.start(), c.expose_secret().to_owned()))
            .collect()
    }

    /// The rule, one case a row: what surrounds a real token, and whether it is found.
    #[test]
    fn find_in_finds_exactly_the_bounded_well_formed_tokens() {
        let f = TokenFormat::default();
        let t = token(&f, 1);
        let mut bad_crc = t.clone();
        let last = if bad_crc.ends_with('A') { "B" } else { "A" };
        bad_crc.replace_range(bad_crc.len() - 1.., last);
        let cases: &[(String, bool)] = &[
            (t.clone(), true),
            (format!("key={t}\n"), true),
            (format!("\"{t}\""), true),
            (format!("{t}.nupkg"), true),
            (format!(" {t}-"), false), // a body character after it
            (format!("x{t}"), false),  // a body character before it
            (format!("_{t}"), false),
            (format!("{t}0"), false),
            (bad_crc.clone(), false),             // the checksum
            (t[..t.len() - 1].to_owned(), false), // one character short
            (format!("fk_{}", "A".repeat(70)), false),
            (t.replacen("fk_", "gk_", 1), false), // another prefix
            (t.replacen('A', "!", 1), t.matches('A').count() == 0), // outside the alphabet
        ];
        for (data, expect) in cases {
            let hits = found(&f, data);
            assert_eq!(!hits.is_empty(), *expect, "{data:?}: {hits:?}");
            if *expect {
                assert_eq!(hits.len(), 1);
                assert_eq!(hits[0].1, t);
            }
        }
    }

    #[test]
    fn find_in_reports_every_token_in_order_with_its_place() {
        let f = TokenFormat::default();
        let (a, b) = (token(&f, 1), token(&f, 2));
        let data = format!("fk_fk_fk_ {a} fk_{} {b}", "Z".repeat(69));
        let hits = found(&f, &data);
        assert_eq!(hits, vec![(10, a.clone()), (data.len() - b.len(), b)]);
        // Back to back with a separator, and at both ends of the data.
        let data = format!("{a},{a}");
        assert_eq!(found(&f, &data).len(), 2);
        assert!(found(&f, "").is_empty() && found(&f, "fk_").is_empty());
    }

    #[test]
    fn find_in_uses_the_registry_prefix_only() {
        let ours = TokenFormat::new("acme").unwrap();
        let theirs = TokenFormat::default();
        let data = format!("{} {}", token(&ours, 3), token(&theirs, 4));
        assert_eq!(found(&ours, &data).len(), 1);
        assert_eq!(found(&theirs, &data).len(), 1);
        assert_ne!(found(&ours, &data), found(&theirs, &data));
    }

    #[test]
    fn a_candidate_debug_shows_no_secret() {
        let f = TokenFormat::default();
        let t = token(&f, 5);
        let c = f.find_in(t.as_bytes()).next().unwrap();
        let shown = format!("{c:?}");
        // The id is the body's first 22 characters and public; the secret follows it.
        assert!(!shown.contains(&t[30..60]), "{shown}");
        assert_eq!(c.end(), t.len());
    }
}
