//! The account password: Argon2id, a short-lived memory of good verifies, and a bound on
//! how many verifies run at once.
//!
//! A password is low-entropy, so it gets a slow, memory-hard KDF (Argon2id, 19 MiB and two
//! passes by default: about 15 ms). A package restore that sends the password on each of
//! hundreds of requests must not pay that each time, so a good verify is remembered for a
//! short time under a keyed hash of (account, password) — never the password itself — and
//! forgotten when the account's password changes.
//!
//! Over 500 lines because the tests of the remembered verifies and the concurrency bound
//! (about 140 lines) sit beside them.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock, PoisonError};

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::account::AccountId;

/// Why a password or its settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The password is empty.
    #[error("the password is empty")]
    Empty,
    /// The password is longer than [`PasswordConfig::MAX_PASSWORD_LEN`] bytes.
    #[error("a password has at most {max} bytes", max = PasswordConfig::MAX_PASSWORD_LEN)]
    TooLong,
    /// The Argon2 parameters are out of range.
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    /// The stored hash is not an Argon2 PHC string.
    #[error("malformed stored password hash")]
    Malformed,
    /// The password has this registry's token shape (prefix and length): it would be
    /// taken for a token everywhere, and never work as a password.
    #[error("a password may not look like an access token")]
    LooksLikeToken,
    /// Hashing failed (the random source, most likely).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// The stored Argon2id hash of an account password, as a PHC string.
///
/// `Debug` hides the string.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The PHC string, for storage.
    pub fn as_phc(&self) -> &str {
        &self.0
    }

    /// A stored PHC string, checked for shape.
    ///
    /// # Errors
    /// [`PasswordError::Malformed`] unless it parses as a PHC string.
    pub fn from_phc(text: &str) -> Result<Self, PasswordError> {
        argon2::PasswordHash::new(text).map_err(|_| PasswordError::Malformed)?;
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash").finish_non_exhaustive()
    }
}

/// Argon2id cost, the memory of good verifies, and the bound on verifies at once.
#[derive(Debug, Clone)]
pub struct PasswordConfig {
    params: Params,
    remember_for: Duration,
    remember_at_most: usize,
    max_concurrent: usize,
    wait_for_slot: bool,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            params: Params::DEFAULT,
            remember_for: Self::DEFAULT_REMEMBER_FOR,
            remember_at_most: Self::DEFAULT_REMEMBER_AT_MOST,
            max_concurrent: Self::DEFAULT_MAX_CONCURRENT,
            wait_for_slot: true,
        }
    }
}

impl PasswordConfig {
    /// The longest password accepted, in bytes.
    pub const MAX_PASSWORD_LEN: usize = 1024;
    /// How long a good verify is remembered by default.
    pub const DEFAULT_REMEMBER_FOR: Duration = Duration::minutes(5);
    /// The longest a good verify may be remembered.
    pub const MAX_REMEMBER_FOR: Duration = Duration::hours(1);
    /// How many good verifies are remembered at most, by default.
    pub const DEFAULT_REMEMBER_AT_MOST: usize = 10_000;
    /// How many Argon2id verifies may run at once by default (each holds 19 MiB).
    pub const DEFAULT_MAX_CONCURRENT: usize = 4;

    /// Argon2id with its recommended cost (19 MiB, 2 passes, 1 lane).
    pub fn new() -> Self {
        Self::default()
    }

    /// Argon2id at the given cost.
    ///
    /// # Errors
    /// [`PasswordError::Params`] when argon2 refuses them.
    pub fn with_cost(
        mut self,
        memory_kib: u32,
        passes: u32,
        lanes: u32,
    ) -> Result<Self, PasswordError> {
        self.params = Params::new(memory_kib, passes, lanes, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        Ok(self)
    }

    /// The cheapest Argon2id there is: for tests only, never for real passwords.
    pub fn insecure_fast_for_tests() -> Self {
        let mut config = Self::default();
        if let Ok(params) = Params::new(Params::MIN_M_COST, 1, 1, None) {
            config.params = params;
        }
        config
    }

    /// Remember a good verify for `ttl` (zero turns the memory off), capped at
    /// [`Self::MAX_REMEMBER_FOR`].
    #[must_use]
    pub fn remember_for(mut self, ttl: Duration) -> Self {
        self.remember_for = ttl.clamp(Duration::ZERO, Self::MAX_REMEMBER_FOR);
        self
    }

    /// Remember at most `entries` good verifies.
    #[must_use]
    pub fn remember_at_most(mut self, entries: usize) -> Self {
        self.remember_at_most = entries;
        self
    }

    /// Run at most `n` (at least 1) Argon2id verifies at once; others wait their turn.
    #[must_use]
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self
    }

    /// When every verify slot is taken: wait for one (`true`, the default), or deny at
    /// once with [`DenyReason::Busy`] (503), so that a flood of password guesses cannot
    /// queue real users behind it.
    ///
    /// [`DenyReason::Busy`]: crate::DenyReason::Busy
    #[must_use]
    pub fn wait_for_slot(mut self, wait: bool) -> Self {
        self.wait_for_slot = wait;
        self
    }

    /// A stored hash costing more than this many times the configured memory or passes
    /// is refused unverified: a tampered row must not buy gigabytes per request.
    pub const MAX_COST_FACTOR: u32 = 4;
}

/// What a password verify found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PasswordCheck {
    pub matched: bool,
    /// Matched, but under other Argon2 parameters than the configured ones.
    pub stale: bool,
    /// Every verify slot was taken and the configuration says not to wait.
    pub busy: bool,
}

#[derive(Debug, Clone, Copy)]
struct Remembered {
    account_revision: u64,
    until: OffsetDateTime,
}

/// Argon2id hashing with a memory of good verifies and a concurrency bound.
pub(crate) struct Passwords {
    argon2: Argon2<'static>,
    decoy: OnceLock<Option<String>>,
    cache_key: Zeroizing<[u8; 32]>,
    remember_for: Duration,
    remember_at_most: usize,
    remembered: Mutex<HashMap<[u8; 32], Remembered>>,
    gate: tokio::sync::Semaphore,
    wait_for_slot: bool,
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwords")
            .field("remember_for", &self.remember_for)
            .finish_non_exhaustive()
    }
}

impl Passwords {
    pub(crate) fn new(config: &PasswordConfig) -> Result<Self, PasswordError> {
        let mut cache_key = Zeroizing::new([0u8; 32]);
        getrandom::fill(cache_key.as_mut_slice())
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        Ok(Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, config.params.clone()),
            decoy: OnceLock::new(),
            cache_key,
            remember_for: config.remember_for,
            remember_at_most: config.remember_at_most,
            remembered: Mutex::new(HashMap::new()),
            gate: tokio::sync::Semaphore::new(config.max_concurrent),
            wait_for_slot: config.wait_for_slot,
        })
    }

    fn check_input(password: &str) -> Result<(), PasswordError> {
        if password.is_empty() {
            return Err(PasswordError::Empty);
        }
        if password.len() > PasswordConfig::MAX_PASSWORD_LEN {
            return Err(PasswordError::TooLong);
        }
        Ok(())
    }

    /// Hashes a new password under the configured parameters.
    pub(crate) async fn hash(&self, password: &str) -> Result<PasswordHash, PasswordError> {
        Self::check_input(password)?;
        let _permit = self
            .gate
            .acquire()
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        self.argon2
            .hash_password(password.as_bytes())
            .map(|h| PasswordHash(h.to_string()))
            .map_err(|e| PasswordError::Hashing(e.to_string()))
    }

    fn remember_key(&self, account: &AccountId, password: &str) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.cache_key);
        hasher.update(&(account.as_str().len() as u64).to_le_bytes());
        hasher.update(account.as_str().as_bytes());
        hasher.update(password.as_bytes());
        *hasher.finalize().as_bytes()
    }

    /// Verifies `password` against `stored` (or a decoy when the account or its password
    /// does not exist, so that timing does not tell which accounts exist).
    pub(crate) async fn verify(
        &self,
        account: &AccountId,
        account_revision: u64,
        password: &str,
        stored: Option<&PasswordHash>,
        now: OffsetDateTime,
    ) -> PasswordCheck {
        const NO: PasswordCheck = PasswordCheck {
            matched: false,
            stale: false,
            busy: false,
        };
        if Self::check_input(password).is_err() {
            return NO;
        }
        let key = self.remember_key(account, password);
        if stored.is_some() && self.recall(&key, account_revision, now) {
            return PasswordCheck {
                matched: true,
                stale: false,
                busy: false,
            };
        }
        let permit = if self.wait_for_slot {
            self.gate.acquire().await.ok()
        } else {
            match self.gate.try_acquire() {
                Ok(permit) => Some(permit),
                Err(tokio::sync::TryAcquireError::NoPermits) => {
                    return PasswordCheck { busy: true, ..NO };
                }
                Err(tokio::sync::TryAcquireError::Closed) => None,
            }
        };
        let Some(_permit) = permit else {
            return NO;
        };
        // A stored hash too costly to verify (a tampered row) is checked against the
        // decoy instead, and never matches.
        let affordable = stored.filter(|h| self.affordable(h.as_phc()));
        let target = match affordable {
            Some(hash) => Some(hash.0.as_str()),
            None => self.decoy().map(String::as_str),
        };
        let Some(target) = target else {
            return NO;
        };
        // Run the verify first, decoy or not, so both cost the same.
        let verified = self
            .argon2
            .verify_password(password.as_bytes(), target)
            .is_ok();
        let matched = verified && affordable.is_some();
        if !matched {
            return NO;
        }
        self.remember(key, account_revision, now);
        PasswordCheck {
            matched,
            stale: self.is_stale(target),
            busy: false,
        }
    }

    /// Whether a stored hash's cost is within [`PasswordConfig::MAX_COST_FACTOR`] of the
    /// configured one.
    fn affordable(&self, phc: &str) -> bool {
        let Ok(parsed) = argon2::PasswordHash::new(phc) else {
            return false;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let want = self.argon2.params();
        let factor = PasswordConfig::MAX_COST_FACTOR;
        params.m_cost() <= want.m_cost().saturating_mul(factor)
            && params.t_cost() <= want.t_cost().saturating_mul(factor)
            && params.p_cost() <= want.p_cost().saturating_mul(factor)
    }

    fn decoy(&self) -> Option<&String> {
        self.decoy
            .get_or_init(|| {
                let mut salt = [0u8; 16];
                getrandom::fill(&mut salt).ok()?;
                self.argon2
                    .hash_password_with_salt(b"feedkey decoy password", &salt)
                    .ok()
                    .map(|h| h.to_string())
            })
            .as_ref()
    }

    fn is_stale(&self, phc: &str) -> bool {
        let Ok(parsed) = argon2::PasswordHash::new(phc) else {
            return true;
        };
        match Params::try_from(&parsed) {
            Ok(p) => {
                let want = self.argon2.params();
                p.m_cost() != want.m_cost()
                    || p.t_cost() != want.t_cost()
                    || p.p_cost() != want.p_cost()
                    || parsed.algorithm.as_str() != "argon2id"
            }
            Err(_) => true,
        }
    }

    fn recall(&self, key: &[u8; 32], account_revision: u64, now: OffsetDateTime) -> bool {
        if self.remember_for <= Duration::ZERO {
            return false;
        }
        let map = self
            .remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .is_some_and(|r| r.account_revision == account_revision && now < r.until)
    }

    fn remember(&self, key: [u8; 32], account_revision: u64, now: OffsetDateTime) {
        if self.remember_for <= Duration::ZERO || self.remember_at_most == 0 {
            return;
        }
        let mut map = self
            .remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.remember_at_most {
            map.retain(|_, r| now < r.until);
            if map.len() >= self.remember_at_most {
                map.clear();
            }
        }
        map.insert(
            key,
            Remembered {
                account_revision,
                until: now.saturating_add(self.remember_for),
            },
        );
    }

    /// How many good verifies are remembered.
    #[cfg(test)]
    pub(crate) fn remembered_len(&self) -> usize {
        self.remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn passwords() -> Passwords {
        Passwords::new(&PasswordConfig::insecure_fast_for_tests().remember_at_most(2)).unwrap()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_good_password_verifies_and_is_remembered_until_the_password_changes() {
        block_on(async {
            let p = passwords();
            let alice = AccountId::new("alice").unwrap();
            let hash = p.hash("correct horse").await.unwrap();
            assert!(hash.as_phc().starts_with("$argon2id$"));
            assert!(
                p.verify(&alice, 1, "correct horse", Some(&hash), NOW)
                    .await
                    .matched
            );
            assert!(p.recall(&p.remember_key(&alice, "correct horse"), 1, NOW));
            // A new revision (the password changed) forgets it.
            assert!(!p.recall(&p.remember_key(&alice, "correct horse"), 2, NOW));
            // So does time.
            assert!(!p.recall(
                &p.remember_key(&alice, "correct horse"),
                1,
                NOW + PasswordConfig::DEFAULT_REMEMBER_FOR
            ));
            assert!(
                !p.verify(&alice, 1, "wrong horse", Some(&hash), NOW)
                    .await
                    .matched
            );
            assert!(
                !p.verify(&alice, 1, "correct horse", None, NOW)
                    .await
                    .matched
            );
        });
    }

    #[test]
    fn the_memory_is_bounded() {
        block_on(async {
            let p = passwords();
            let hash = p.hash("pw").await.unwrap();
            for name in ["a", "b", "c", "d"] {
                let id = AccountId::new(name).unwrap();
                assert!(p.verify(&id, 1, "pw", Some(&hash), NOW).await.matched);
                assert!(p.remembered_len() <= 2);
            }
        });
    }

    #[test]
    fn other_parameters_ask_for_a_rehash() {
        block_on(async {
            let light = passwords();
            let hash = light.hash("pw").await.unwrap();
            let heavier = Passwords::new(
                &PasswordConfig::insecure_fast_for_tests()
                    .with_cost(Params::MIN_M_COST * 2, 1, 1)
                    .unwrap(),
            )
            .unwrap();
            let id = AccountId::new("a").unwrap();
            let check = heavier.verify(&id, 1, "pw", Some(&hash), NOW).await;
            assert!(check.matched && check.stale);
            assert!(!light.verify(&id, 1, "pw", Some(&hash), NOW).await.stale);
        });
    }

    #[test]
    fn a_stored_hash_costing_far_more_than_configured_is_refused_unverified() {
        block_on(async {
            let heavy = Passwords::new(
                &PasswordConfig::insecure_fast_for_tests()
                    .with_cost(Params::MIN_M_COST * 8, 1, 1)
                    .unwrap(),
            )
            .unwrap();
            let hash = heavy.hash("pw").await.unwrap();
            let light = passwords();
            let id = AccountId::new("a").unwrap();
            assert!(!light.verify(&id, 1, "pw", Some(&hash), NOW).await.matched);
            assert!(heavy.verify(&id, 1, "pw", Some(&hash), NOW).await.matched);
        });
    }

    #[test]
    fn without_waiting_a_full_gate_answers_busy() {
        block_on(async {
            let p = Passwords::new(
                &PasswordConfig::insecure_fast_for_tests()
                    .max_concurrent(1)
                    .wait_for_slot(false),
            )
            .unwrap();
            let hash = p.hash("pw").await.unwrap();
            let id = AccountId::new("a").unwrap();
            let held = p.gate.try_acquire().unwrap();
            let check = p.verify(&id, 1, "pw", Some(&hash), NOW).await;
            assert!(check.busy && !check.matched);
            drop(held);
            assert!(p.verify(&id, 1, "pw", Some(&hash), NOW).await.matched);
        });
    }

    #[test]
    fn bad_passwords_are_typed_errors() {
        block_on(async {
            let p = passwords();
            assert_eq!(p.hash("").await, Err(PasswordError::Empty));
            assert_eq!(
                p.hash(&"x".repeat(PasswordConfig::MAX_PASSWORD_LEN + 1))
                    .await,
                Err(PasswordError::TooLong)
            );
            assert_eq!(
                PasswordHash::from_phc("nope"),
                Err(PasswordError::Malformed)
            );
            assert!(format!("{:?}", p.hash("pw").await.unwrap()) == "PasswordHash { .. }");
        });
    }
}
