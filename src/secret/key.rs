//! The server-side key that token secrets are hashed under, and its fingerprint.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use zeroize::Zeroizing;

use crate::token::{ID_LEN, SECRET_LEN, TokenId};

/// Length of a digest.
pub(super) const DIGEST_LEN: usize = 32;
/// Context for deriving the hashing key from the key material (BLAKE3 `derive_key`).
pub(super) const KEY_CONTEXT: &str = "feedkey 2026-11 token secret hash v1";
/// What a key's fingerprint is the keyed hash of. Its length (26 bytes) is not a token
/// hash's input length (48 bytes), so no fingerprint is ever a token's digest.
pub(super) const FINGERPRINT_LABEL: &[u8] = b"feedkey key fingerprint v1";
/// Length of a fingerprint, in bytes.
pub(super) const FINGERPRINT_LEN: usize = 16;

/// Why a key or a stored hash was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The key material is not 32 bytes (64 hex characters or 43 base64 characters).
    #[error("a token key is 32 bytes")]
    KeyLength,
    /// Two keys share one version.
    #[error("two token keys share version {0}")]
    DuplicateKeyVersion(u32),
    /// A stored hash names a scheme this build does not know.
    #[error("unknown hash scheme")]
    UnknownScheme,
    /// A stored hash does not have the scheme's shape.
    #[error("malformed stored hash")]
    Malformed,
    /// The operating system's random source failed.
    #[error("the random source failed")]
    Entropy,
}

/// A server-side key for hashing token secrets, with its version.
///
/// Its `Debug` shows only the version; its memory is zeroed on drop. Keep it outside the
/// database (an environment variable, a secret manager).
#[derive(Clone)]
pub struct TokenKey {
    pub(super) version: u32,
    pub(super) derived: Zeroizing<[u8; DIGEST_LEN]>,
}

impl TokenKey {
    /// A key from 32 bytes of key material.
    pub fn new(version: u32, material: &[u8; 32]) -> Self {
        Self {
            version,
            derived: Zeroizing::new(blake3::derive_key(KEY_CONTEXT, material)),
        }
    }

    /// A key from base64 (standard or URL-safe, padded or not) key material.
    ///
    /// # Errors
    /// [`HashError::KeyLength`] unless the text decodes to exactly 32 bytes.
    pub fn from_base64(version: u32, text: &str) -> Result<Self, HashError> {
        let mut cleaned = Zeroizing::new(String::with_capacity(text.len()));
        cleaned.extend(text.trim().trim_end_matches('=').chars().map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        }));
        let mut material = Zeroizing::new([0u8; 32]);
        match STANDARD_NO_PAD.decode_slice(cleaned.as_bytes(), material.as_mut_slice()) {
            Ok(32) => Ok(Self::new(version, &material)),
            _ => Err(HashError::KeyLength),
        }
    }

    /// A fresh random key: right for an in-memory store that lives and dies with the
    /// process, wrong for a database that outlives it.
    ///
    /// # Errors
    /// [`HashError::Entropy`] when the operating system's random source fails.
    pub fn generate(version: u32) -> Result<Self, HashError> {
        let mut material = Zeroizing::new([0u8; 32]);
        getrandom::fill(material.as_mut_slice()).map_err(|_| HashError::Entropy)?;
        Ok(Self::new(version, &material))
    }

    /// The key's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// A fingerprint that tells this key from any other and reveals nothing of it: the
    /// keyed hash of a fixed label, 16 bytes. A store remembers it, so that a server
    /// started with another key (its key file lost, a second server's own key) is refused
    /// rather than answering every token with "wrong secret"; see
    /// [`Feedkey::check_keys`](crate::Feedkey::check_keys).
    pub fn fingerprint(&self) -> KeyFingerprint {
        let digest = blake3::keyed_hash(&self.derived, FINGERPRINT_LABEL);
        let mut bytes = [0u8; FINGERPRINT_LEN];
        bytes.copy_from_slice(&digest.as_bytes()[..FINGERPRINT_LEN]);
        KeyFingerprint(bytes)
    }

    pub(super) fn digest(&self, id: &TokenId, secret: &[u8; SECRET_LEN]) -> [u8; DIGEST_LEN] {
        // One-shot keyed hash of id || secret from a zeroed-on-drop buffer. (An
        // incremental `blake3::Hasher` holds ~2 KiB of state: zeroizing it cost more than
        // the hash itself.)
        let mut input = Zeroizing::new([0u8; ID_LEN + SECRET_LEN]);
        let (id_part, secret_part) = input.split_at_mut(ID_LEN);
        id_part.copy_from_slice(id.as_bytes());
        secret_part.copy_from_slice(secret);
        *blake3::keyed_hash(&self.derived, input.as_slice()).as_bytes()
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A token key's fingerprint ([`TokenKey::fingerprint`]): 16 bytes, shown and stored as 32
/// lowercase hex characters. It identifies a key without revealing anything of it, so it
/// may be logged and stored beside the tokens.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyFingerprint([u8; FINGERPRINT_LEN]);

impl KeyFingerprint {
    /// A fingerprint from its 16 bytes (as a store that keeps bytes reads it back).
    pub const fn from_bytes(bytes: [u8; FINGERPRINT_LEN]) -> Self {
        Self(bytes)
    }

    /// Its 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; FINGERPRINT_LEN] {
        &self.0
    }

    /// Parses the 32 hex characters of [`Display`](fmt::Display) (either case).
    ///
    /// # Errors
    /// [`HashError::Malformed`] for anything else.
    pub fn from_hex(text: &str) -> Result<Self, HashError> {
        let text = text.as_bytes();
        if text.len() != 2 * FINGERPRINT_LEN {
            return Err(HashError::Malformed);
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(HashError::Malformed),
        };
        let mut bytes = [0u8; FINGERPRINT_LEN];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            let [high, low] = pair else {
                return Err(HashError::Malformed);
            };
            *byte = (nibble(*high)? << 4) | nibble(*low)?;
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyFingerprint({self})")
    }
}

impl std::str::FromStr for KeyFingerprint {
    type Err = HashError;
    fn from_str(text: &str) -> Result<Self, HashError> {
        Self::from_hex(text)
    }
}
