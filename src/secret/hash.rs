//! Hashing of token secrets: a keyed BLAKE3 under a versioned server-side key.
//!
//! A token secret is 256 random bits, so it needs no slow KDF: a guess is hopeless. The
//! hash is keyed by a server-side key, so that a copy of the database alone cannot even
//! check a guessed token. The key carries a version; stored hashes name it, so a
//! deployment can add a new key, keep the old one for verifying, and have every token
//! rehashed under the new key on its next good verify.
//!
//! Stored form (PHC-style, self-describing):
//! `$fk-blake3$k=<key version>$<base64 digest>` (standard alphabet, no padding).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use subtle::{Choice, ConstantTimeEq};

use time::OffsetDateTime;

use super::key::{DIGEST_LEN, HashError};

/// The scheme's name in stored hashes.
const SCHEME: &str = "fk-blake3";

/// The most retired secrets a token keeps (for the overlap window and reuse detection).
pub const MAX_RETIRED_SECRETS: usize = 4;

/// A secret replaced by a refresh: it works until `works_until` (the overlap window),
/// and its use is reported as reuse until `kept_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredSecret {
    /// The keyed hash of the old secret.
    pub hash: SecretHash,
    /// When it was replaced.
    pub retired_at: OffsetDateTime,
    /// Until when it still works (equal to `retired_at` without overlap).
    pub works_until: OffsetDateTime,
    /// Until when a use of it is detected as reuse; after that it is forgotten.
    pub kept_until: OffsetDateTime,
}

/// The stored hash of a token secret. It cannot give the secret back.
///
/// Equality is constant-time. `Debug` shows the key version only.
#[derive(Clone)]
pub struct SecretHash {
    pub(super) key_version: u32,
    pub(super) digest: [u8; DIGEST_LEN],
}

impl SecretHash {
    /// The version of the key it was made with.
    pub fn key_version(&self) -> u32 {
        self.key_version
    }

    /// The stored, self-describing form.
    pub fn to_phc(&self) -> String {
        format!(
            "${SCHEME}$k={}${}",
            self.key_version,
            STANDARD_NO_PAD.encode(self.digest)
        )
    }

    /// Parses the stored form.
    ///
    /// # Errors
    /// [`HashError::UnknownScheme`] or [`HashError::Malformed`].
    pub fn from_phc(text: &str) -> Result<Self, HashError> {
        let mut parts = text.split('$');
        if parts.next() != Some("") {
            return Err(HashError::Malformed);
        }
        if parts.next() != Some(SCHEME) {
            return Err(HashError::UnknownScheme);
        }
        let key_version = parts
            .next()
            .and_then(|p| p.strip_prefix("k="))
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or(HashError::Malformed)?;
        let encoded = parts.next().ok_or(HashError::Malformed)?;
        if parts.next().is_some() {
            return Err(HashError::Malformed);
        }
        let mut digest = [0u8; DIGEST_LEN];
        match STANDARD_NO_PAD.decode_slice(encoded, &mut digest) {
            Ok(DIGEST_LEN) => Ok(Self {
                key_version,
                digest,
            }),
            _ => Err(HashError::Malformed),
        }
    }
}

/// The digest as four little-endian words.
fn words(digest: &[u8; DIGEST_LEN]) -> [u64; 4] {
    let mut words = [0u64; 4];
    for (word, chunk) in words.iter_mut().zip(digest.chunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        *word = u64::from_le_bytes(bytes);
    }
    words
}

impl SecretHash {
    /// A hash no secret has (all zero, key version 0): a stand-in record's hash.
    pub(crate) const fn placeholder() -> Self {
        Self {
            key_version: 0,
            digest: [0; DIGEST_LEN],
        }
    }
}

/// Whether two digests are equal, in constant time: the differences of every word are
/// OR-ed together without a branch (`version_diff` with them), then compared with zero
/// once. The one comparison of digests, for [`SecretHash`]'s `ct_eq` and the verifier.
pub(super) fn digests_equal(
    a: &[u8; DIGEST_LEN],
    b: &[u8; DIGEST_LEN],
    version_diff: u32,
) -> Choice {
    let (a, b) = (words(a), words(b));
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(u64::from(version_diff), |acc, (x, y)| acc | (x ^ y));
    diff.ct_eq(&0)
}

impl ConstantTimeEq for SecretHash {
    /// Equal digests under the same key version (`digests_equal`).
    fn ct_eq(&self, other: &Self) -> Choice {
        digests_equal(
            &self.digest,
            &other.digest,
            self.key_version ^ other.key_version,
        )
    }
}

impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for SecretHash {}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretHash")
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}
