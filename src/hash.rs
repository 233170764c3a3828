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
use zeroize::Zeroizing;

use crate::record::{MAX_RETIRED_SECRETS, RetiredSecret};
use crate::token::{ID_LEN, PresentedToken, SECRET_LEN, TokenId};

/// Length of a digest.
const DIGEST_LEN: usize = 32;
/// Context for deriving the hashing key from the key material (BLAKE3 `derive_key`).
const KEY_CONTEXT: &str = "feedkey 2026-11 token secret hash v1";
/// The scheme's name in stored hashes.
const SCHEME: &str = "fk-blake3";
/// What a key's fingerprint is the keyed hash of. Its length (26 bytes) is not a token
/// hash's input length (48 bytes), so no fingerprint is ever a token's digest.
const FINGERPRINT_LABEL: &[u8] = b"feedkey key fingerprint v1";
/// Length of a fingerprint, in bytes.
const FINGERPRINT_LEN: usize = 16;

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
    version: u32,
    derived: Zeroizing<[u8; DIGEST_LEN]>,
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

    fn digest(&self, id: &TokenId, secret: &[u8; SECRET_LEN]) -> [u8; DIGEST_LEN] {
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

/// The stored hash of a token secret. It cannot give the secret back.
///
/// Equality is constant-time. `Debug` shows the key version only.
#[derive(Clone)]
pub struct SecretHash {
    key_version: u32,
    digest: [u8; DIGEST_LEN],
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

impl ConstantTimeEq for SecretHash {
    /// The differences of every word and of the key version are OR-ed together without
    /// a branch, then compared with zero once.
    fn ct_eq(&self, other: &Self) -> Choice {
        let (a, b) = (words(&self.digest), words(&other.digest));
        let diff = a.iter().zip(b.iter()).fold(
            u64::from(self.key_version ^ other.key_version),
            |acc, (x, y)| acc | (x ^ y),
        );
        diff.ct_eq(&0)
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

/// Which stored hash a presented secret matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matched {
    /// None of them.
    Nothing,
    /// The current secret.
    Current,
    /// The retired secret at this index.
    Retired(usize),
}

/// What verifying a presented secret found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verified {
    /// Which hash matched.
    pub matched: Matched,
    /// The current secret matched under a key other than the current one: rehash it.
    pub stale: bool,
    /// The current hash names a key this process does not have.
    pub unknown_key: bool,
}

/// The number of comparisons every verify makes: the current secret and
/// [`MAX_RETIRED_SECRETS`] retired ones, decoys standing in for missing ones.
const SLOTS: usize = 1 + MAX_RETIRED_SECRETS;

/// The key ring: the current key for new hashes and older ones still accepted.
#[derive(Debug, Clone)]
pub struct TokenHasher {
    current: TokenKey,
    previous: Vec<TokenKey>,
    decoy: SecretHash,
}

impl TokenHasher {
    /// A hasher that hashes with `current` and also verifies under `previous`.
    ///
    /// # Errors
    /// [`HashError::DuplicateKeyVersion`] when two keys share a version, and
    /// [`HashError::Entropy`] when the random source fails.
    pub fn new(current: TokenKey, previous: Vec<TokenKey>) -> Result<Self, HashError> {
        let mut seen = vec![current.version];
        for key in &previous {
            if seen.contains(&key.version) {
                return Err(HashError::DuplicateKeyVersion(key.version));
            }
            seen.push(key.version);
        }
        let mut digest = [0u8; DIGEST_LEN];
        getrandom::fill(&mut digest).map_err(|_| HashError::Entropy)?;
        Ok(Self {
            decoy: SecretHash {
                key_version: current.version,
                digest,
            },
            current,
            previous,
        })
    }

    /// The version and fingerprint of every key: the current one first, then the
    /// previous ones.
    pub(crate) fn fingerprints(&self) -> Vec<(u32, KeyFingerprint)> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|key| (key.version, key.fingerprint()))
            .collect()
    }

    /// A random hash under the current key that no presented secret will match: what an
    /// unknown id is verified against.
    pub(crate) fn decoy(&self) -> &SecretHash {
        &self.decoy
    }

    /// The hash of a new secret, under the current key.
    pub(crate) fn hash(&self, id: &TokenId, secret: &[u8; SECRET_LEN]) -> SecretHash {
        SecretHash {
            key_version: self.current.version,
            digest: self.current.digest(id, secret),
        }
    }

    fn key(&self, version: u32) -> Option<&TokenKey> {
        if self.current.version == version {
            return Some(&self.current);
        }
        self.previous.iter().find(|k| k.version == version)
    }

    /// Verifies `presented` against the current hash and the retired ones of a stored
    /// token, or against decoys when there is nothing stored.
    ///
    /// Every call hashes the presented secret once under the current key and makes
    /// [`SLOTS`] constant-time comparisons, decoys standing in for missing hashes, so that
    /// an unknown id, a wrong secret and a token with or without retired secrets all cost
    /// the same. (A hash under an older key costs one more hash, until it is rehashed.)
    pub(crate) fn verify(
        &self,
        presented: &PresentedToken,
        stored: Option<(&SecretHash, &[RetiredSecret])>,
    ) -> Verified {
        let current_digest = SecretHash {
            key_version: self.current.version,
            digest: self.current.digest(&presented.id(), presented.secret()),
        };
        let digest_under = |version: u32| -> Option<SecretHash> {
            if version == self.current.version {
                return Some(current_digest.clone());
            }
            self.key(version).map(|key| SecretHash {
                key_version: version,
                digest: key.digest(&presented.id(), presented.secret()),
            })
        };
        let (current, retired) = match stored {
            Some((current, retired)) => (Some(current), retired),
            None => (None, &[][..]),
        };
        let mut hits = [Choice::from(0u8); SLOTS];
        let mut unknown_key = false;
        for (slot, hit) in hits.iter_mut().enumerate() {
            let expected = if slot == 0 {
                current
            } else {
                retired.get(slot - 1).map(|r| &r.hash)
            };
            let computed = expected.and_then(|e| digest_under(e.key_version));
            if slot == 0 && expected.is_some() && computed.is_none() {
                unknown_key = true;
            }
            *hit = match (expected, &computed) {
                (Some(e), Some(c)) => c.ct_eq(e),
                // Nothing to compare: compare against the decoy all the same.
                _ => current_digest.ct_eq(&self.decoy) & Choice::from(0u8),
            };
        }
        // Every comparison is made; only now are the answers looked at.
        let matched = match hits.iter().position(|h| bool::from(*h)) {
            None => Matched::Nothing,
            Some(0) => Matched::Current,
            Some(i) => Matched::Retired(i - 1),
        };
        Verified {
            matched,
            stale: matched == Matched::Current
                && current.is_some_and(|h| h.key_version != self.current.version),
            unknown_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{ID_LEN, TokenFormat};

    fn presented(id: u8, secret: u8) -> PresentedToken {
        let format = TokenFormat::default();
        let plain = format.encode(&TokenId::from_bytes([id; ID_LEN]), &[secret; SECRET_LEN]);
        format.parse(plain.expose_secret()).unwrap()
    }

    fn hasher() -> TokenHasher {
        TokenHasher::new(TokenKey::new(2, &[1; 32]), vec![TokenKey::new(1, &[2; 32])]).unwrap()
    }

    #[test]
    fn the_right_secret_matches_and_a_wrong_one_does_not() {
        let h = hasher();
        let stored = h.hash(&TokenId::from_bytes([1; ID_LEN]), &[5; SECRET_LEN]);
        assert_eq!(
            h.verify(&presented(1, 5), Some((&stored, &[]))).matched,
            Matched::Current
        );
        assert_eq!(
            h.verify(&presented(1, 6), Some((&stored, &[]))).matched,
            Matched::Nothing
        );
        assert_eq!(h.verify(&presented(1, 5), None).matched, Matched::Nothing);
    }

    #[test]
    fn a_hash_is_bound_to_its_token_id() {
        let h = hasher();
        let stored = h.hash(&TokenId::from_bytes([1; ID_LEN]), &[5; SECRET_LEN]);
        assert_eq!(
            h.verify(&presented(2, 5), Some((&stored, &[]))).matched,
            Matched::Nothing
        );
    }

    #[test]
    fn an_old_key_still_verifies_and_asks_for_a_rehash() {
        let old = TokenHasher::new(TokenKey::new(1, &[2; 32]), vec![]).unwrap();
        let stored = old.hash(&TokenId::from_bytes([1; ID_LEN]), &[5; SECRET_LEN]);
        let v = hasher().verify(&presented(1, 5), Some((&stored, &[])));
        assert!(v.matched == Matched::Current && v.stale);
        let gone = TokenHasher::new(TokenKey::new(3, &[3; 32]), vec![]).unwrap();
        let v = gone.verify(&presented(1, 5), Some((&stored, &[])));
        assert!(v.matched == Matched::Nothing && v.unknown_key);
    }

    #[test]
    fn a_database_copy_without_the_key_cannot_check_a_guess() {
        let stored = hasher().hash(&TokenId::from_bytes([1; ID_LEN]), &[5; SECRET_LEN]);
        let other = TokenHasher::new(TokenKey::new(2, &[9; 32]), vec![]).unwrap();
        assert_eq!(
            other.verify(&presented(1, 5), Some((&stored, &[]))).matched,
            Matched::Nothing
        );
    }

    #[test]
    fn a_retired_secret_is_found_in_its_slot() {
        let h = hasher();
        let id = TokenId::from_bytes([1; ID_LEN]);
        let retire = |secret: u8| RetiredSecret {
            hash: h.hash(&id, &[secret; SECRET_LEN]),
            retired_at: time::OffsetDateTime::UNIX_EPOCH,
            works_until: time::OffsetDateTime::UNIX_EPOCH,
            kept_until: time::OffsetDateTime::UNIX_EPOCH,
        };
        let current = h.hash(&id, &[5; SECRET_LEN]);
        let retired = [retire(4), retire(3)];
        let at = |secret| {
            h.verify(&presented(1, secret), Some((&current, &retired[..])))
                .matched
        };
        assert_eq!(at(5), Matched::Current);
        assert_eq!(at(4), Matched::Retired(0));
        assert_eq!(at(3), Matched::Retired(1));
        assert_eq!(at(2), Matched::Nothing);
    }

    #[test]
    fn stored_hashes_round_trip_and_bad_ones_are_typed_errors() {
        let stored = hasher().hash(&TokenId::from_bytes([1; ID_LEN]), &[5; SECRET_LEN]);
        let phc = stored.to_phc();
        assert!(phc.starts_with("$fk-blake3$k=2$"));
        assert_eq!(SecretHash::from_phc(&phc), Ok(stored));
        assert_eq!(
            SecretHash::from_phc("$argon2id$v=19$x$y"),
            Err(HashError::UnknownScheme)
        );
        for bad in [
            "",
            "fk-blake3",
            "$fk-blake3$k=x$AAAA",
            "$fk-blake3$k=1$AAAA",
            "$fk-blake3$k=1",
            &format!("{phc}$"),
        ] {
            assert!(SecretHash::from_phc(bad).is_err(), "{bad}");
        }
    }

    /// Golden vector: the stored hash must never change under existing tokens (a change
    /// of context string, input layout or encoding would lock every user out).
    #[test]
    fn the_stored_hash_is_stable() {
        let h = TokenHasher::new(TokenKey::new(1, &[1; 32]), vec![]).unwrap();
        let stored = h.hash(&TokenId::from_bytes([7; ID_LEN]), &[9; SECRET_LEN]);
        assert_eq!(stored.to_phc(), GOLDEN_HASH);
    }

    /// Checked independently with the Python `blake3` package:
    /// `k = blake3(material, derive_key_context=KEY_CONTEXT)`, then
    /// `blake3(id || secret, key=k)`, base64 without padding.
    const GOLDEN_HASH: &str = "$fk-blake3$k=1$wMuGlBw3+VQnXee+dmF77xYcNcMIa6BoD0G+8pfG9GA";

    /// Golden vector: a key's fingerprint must never change, or every store would refuse
    /// the key it has always been used with.
    #[test]
    fn the_fingerprint_is_stable_and_tells_keys_apart() {
        let key = TokenKey::new(1, &[1; 32]);
        assert_eq!(key.fingerprint().to_string(), GOLDEN_FINGERPRINT);
        // The version is not part of it: the key material alone decides.
        assert_eq!(TokenKey::new(2, &[1; 32]).fingerprint(), key.fingerprint());
        assert_ne!(TokenKey::new(1, &[2; 32]).fingerprint(), key.fingerprint());
        // It is neither the derived key nor a token digest under it.
        let derived = blake3::derive_key(KEY_CONTEXT, &[1; 32]);
        assert!(!derived.starts_with(key.fingerprint().as_bytes()));
        let parsed = KeyFingerprint::from_hex(GOLDEN_FINGERPRINT).unwrap();
        assert_eq!(parsed, key.fingerprint());
        assert_eq!(
            KeyFingerprint::from_hex(&GOLDEN_FINGERPRINT.to_uppercase()),
            Ok(parsed)
        );
        assert_eq!(
            format!("{parsed:?}"),
            format!("KeyFingerprint({GOLDEN_FINGERPRINT})")
        );
        for bad in [
            "",
            "00",
            &"g".repeat(32),
            &"0".repeat(31),
            &"0".repeat(33),
            "é",
        ] {
            assert_eq!(
                KeyFingerprint::from_hex(bad),
                Err(HashError::Malformed),
                "{bad}"
            );
        }
        let ring = hasher().fingerprints();
        assert_eq!(
            ring,
            vec![
                (2, TokenKey::new(2, &[1; 32]).fingerprint()),
                (1, TokenKey::new(1, &[2; 32]).fingerprint())
            ]
        );
    }

    /// Checked independently with the Python `blake3` package:
    /// `k = blake3(material, derive_key_context=KEY_CONTEXT)`, then
    /// `blake3(b"feedkey key fingerprint v1", key=k)`, first 16 bytes, hex.
    const GOLDEN_FINGERPRINT: &str = "82b233ad0c5e270e637a9d38d2c3809b";

    #[test]
    fn keys_parse_from_base64_and_never_print() {
        let key = TokenKey::from_base64(7, &STANDARD_NO_PAD.encode([4u8; 32])).unwrap();
        assert_eq!(key.version(), 7);
        assert_eq!(format!("{key:?}"), "TokenKey { version: 7, .. }");
        assert_eq!(
            TokenKey::from_base64(1, "AAAA").err(),
            Some(HashError::KeyLength)
        );
        assert!(
            TokenHasher::new(TokenKey::new(1, &[0; 32]), vec![TokenKey::new(1, &[1; 32])]).is_err()
        );
    }
}
