//! The key ring: hashes new secrets and verifies presented ones against the current and
//! retired hashes in constant time.

use subtle::Choice;

use crate::token::{PresentedToken, SECRET_LEN, TokenId};

use super::hash::{MAX_RETIRED_SECRETS, RetiredSecret, SecretHash, digests_equal};
use super::key::{DIGEST_LEN, HashError, KeyFingerprint, TokenKey};

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
        let current_digest = self.current.digest(&presented.id(), presented.secret());
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
            *hit = match expected {
                // The usual case: a hash under the current key, whose digest of the
                // presented secret is already made.
                Some(e) if e.key_version == self.current.version => {
                    digests_equal(&current_digest, &e.digest, 0)
                }
                Some(e) => match self.key(e.key_version) {
                    Some(key) => digests_equal(
                        &key.digest(&presented.id(), presented.secret()),
                        &e.digest,
                        0,
                    ),
                    None => {
                        unknown_key |= slot == 0;
                        digests_equal(&current_digest, &self.decoy.digest, 0) & Choice::from(0u8)
                    }
                },
                // Nothing to compare: compare against the decoy all the same.
                None => digests_equal(&current_digest, &self.decoy.digest, 0) & Choice::from(0u8),
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
    use super::super::key::KEY_CONTEXT;
    use super::*;
    use crate::token::{ID_LEN, TokenFormat};
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD_NO_PAD;

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
