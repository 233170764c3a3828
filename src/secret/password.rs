//! The account password: Argon2id, a short-lived memory of good verifies, and a bound on
//! how many verifies run at once.
//!
//! Over 600 lines because its tests (about 180 lines: the memory, the bound, rehashing,
//! the decoy) sit beside the code they test.
//!
//! A password is low-entropy, so it gets a slow, memory-hard KDF (Argon2id, 19 MiB and two
//! passes by default: about 15 ms). A package restore that sends the password on each of
//! hundreds of requests must not pay that each time, so a good verify is remembered for a
//! short time under a keyed hash of (account, password) — never the password itself — and
//! forgotten when the account's password changes.
//!
//! Argon2id runs off the async executor's threads where a Tokio runtime is there to take
//! it (features `sqlite`, `postgres`, `mysql`, which bring Tokio's runtime): a 15 ms hash
//! never stalls the other requests of a worker thread. Without those features, and under
//! another executor, it runs in place, as the core asks nothing of the executor.

use std::fmt;
use std::sync::{Arc, OnceLock};

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
    #[cfg(any(test, feature = "test-util"))]
    before_verify: Option<BeforeVerify>,
}

/// A test's hook, run where each Argon2id verify runs, just before it.
#[cfg(any(test, feature = "test-util"))]
#[derive(Clone)]
struct BeforeVerify(Arc<dyn Fn() + Send + Sync>);

#[cfg(any(test, feature = "test-util"))]
impl fmt::Debug for BeforeVerify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BeforeVerify")
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            params: Params::DEFAULT,
            remember_for: Self::DEFAULT_REMEMBER_FOR,
            remember_at_most: Self::DEFAULT_REMEMBER_AT_MOST,
            max_concurrent: Self::DEFAULT_MAX_CONCURRENT,
            wait_for_slot: true,
            #[cfg(any(test, feature = "test-util"))]
            before_verify: None,
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

    /// The cheapest Argon2id there is: for tests only, never for real passwords. Only
    /// with the `test-util` feature, so a server cannot pick it by mistake.
    #[cfg(any(test, feature = "test-util"))]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
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

    /// Runs `hook` on the thread that runs each Argon2id verify, just before it: a test
    /// holds a verify in progress with it (a barrier), to show what else goes on
    /// meanwhile. Feature `test-util`; not for production.
    #[cfg(any(test, feature = "test-util"))]
    #[doc(hidden)]
    #[must_use]
    pub fn before_each_verify(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.before_verify = Some(BeforeVerify(Arc::new(hook)));
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

/// Runs `work` (milliseconds of CPU, or a wait for a lock) off the async executor's
/// threads: on Tokio's blocking pool when a Tokio runtime is running this code (the
/// features that bring Tokio's runtime), in place otherwise. `None` when the runtime shut
/// down before the work ran.
pub(crate) async fn off_executor<T, F>(work: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    #[cfg(any(
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql",
        feature = "oidc-fetch"
    ))]
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        return match runtime.spawn_blocking(work).await {
            Ok(done) => Some(done),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        };
    }
    Some(work())
}

/// Argon2id and the decoy hash, shared with the thread that runs a verify.
struct Kdf {
    argon2: Argon2<'static>,
    decoy: OnceLock<Option<String>>,
    #[cfg(any(test, feature = "test-util"))]
    before_verify: Option<BeforeVerify>,
}

/// Argon2id hashing with a memory of good verifies and a concurrency bound.
pub(crate) struct Passwords {
    kdf: Arc<Kdf>,
    cache_key: Zeroizing<[u8; 32]>,
    remember_for: Duration,
    remember_at_most: usize,
    /// Good verifies, keyed by a keyed hash of (account, password); a concurrent cache
    /// (`quick_cache`) that evicts its coldest entries when full, never all at once.
    remembered: quick_cache::sync::Cache<[u8; 32], Remembered>,
    gate: Arc<tokio::sync::Semaphore>,
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
            kdf: Arc::new(Kdf {
                argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, config.params.clone()),
                decoy: OnceLock::new(),
                #[cfg(any(test, feature = "test-util"))]
                before_verify: config.before_verify.clone(),
            }),
            cache_key,
            remember_for: config.remember_for,
            remember_at_most: config.remember_at_most,
            remembered: quick_cache::sync::Cache::new(config.remember_at_most.max(1)),
            gate: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent)),
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
        let permit = Arc::clone(&self.gate)
            .acquire_owned()
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        let kdf = Arc::clone(&self.kdf);
        let password = Zeroizing::new(password.to_owned());
        off_executor(move || {
            // The slot is held until the hash is done, even if the caller gave up.
            let _permit = permit;
            kdf.argon2
                .hash_password(password.as_bytes())
                .map(|h| PasswordHash(h.to_string()))
                .map_err(|e| PasswordError::Hashing(e.to_string()))
        })
        .await
        .unwrap_or_else(|| Err(PasswordError::Hashing("the runtime shut down".into())))
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
            Arc::clone(&self.gate).acquire_owned().await.ok()
        } else {
            match Arc::clone(&self.gate).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(tokio::sync::TryAcquireError::NoPermits) => {
                    return PasswordCheck { busy: true, ..NO };
                }
                Err(tokio::sync::TryAcquireError::Closed) => None,
            }
        };
        let Some(permit) = permit else {
            return NO;
        };
        let kdf = Arc::clone(&self.kdf);
        let password = Zeroizing::new(password.to_owned());
        let stored = stored.map(|h| h.0.clone());
        let check = off_executor(move || {
            // The slot is held until the verify is done, even if the caller gave up.
            let _permit = permit;
            kdf.verify(&password, stored.as_deref())
        })
        .await
        .unwrap_or(NO);
        if check.matched {
            self.remember(key, account_revision, now);
        }
        check
    }
}

impl Kdf {
    /// The Argon2id verify of `password` against `stored` (or the decoy): milliseconds
    /// of CPU, run off the executor.
    fn verify(&self, password: &str, stored: Option<&str>) -> PasswordCheck {
        const NO: PasswordCheck = PasswordCheck {
            matched: false,
            stale: false,
            busy: false,
        };
        // A stored hash too costly to verify (a tampered row) is checked against the
        // decoy instead, and never matches.
        let affordable = stored.filter(|h| self.affordable(h));
        let target = match affordable {
            Some(hash) => Some(hash),
            None => self.decoy().map(String::as_str),
        };
        let Some(target) = target else {
            return NO;
        };
        #[cfg(any(test, feature = "test-util"))]
        if let Some(hook) = &self.before_verify {
            (hook.0)();
        }
        // Run the verify first, decoy or not, so both cost the same.
        let verified = self
            .argon2
            .verify_password(password.as_bytes(), target)
            .is_ok();
        let matched = verified && affordable.is_some();
        if !matched {
            return NO;
        }
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
}

impl Passwords {
    fn recall(&self, key: &[u8; 32], account_revision: u64, now: OffsetDateTime) -> bool {
        if self.remember_for <= Duration::ZERO {
            return false;
        }
        self.remembered
            .get(key)
            .is_some_and(|r| r.account_revision == account_revision && now < r.until)
    }

    fn remember(&self, key: [u8; 32], account_revision: u64, now: OffsetDateTime) {
        if self.remember_for <= Duration::ZERO || self.remember_at_most == 0 {
            return;
        }
        self.remembered.insert(
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
        self.remembered.len()
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
    fn a_full_memory_forgets_some_verifies_not_all() {
        block_on(async {
            let p =
                Passwords::new(&PasswordConfig::insecure_fast_for_tests().remember_at_most(100))
                    .unwrap();
            for n in 0..100u64 {
                p.remember([n as u8; 32], 1, NOW);
            }
            // One more than fits: the others are still remembered (a memory that empties
            // itself here sends every request to Argon2 at once).
            p.remember([200; 32], 1, NOW);
            let kept = (0..100u64)
                .filter(|n| p.recall(&[*n as u8; 32], 1, NOW))
                .count();
            // The cache is sharded under a random hash, each shard with its share of the
            // capacity, so an uneven spread evicts a few early: over 2000 runs 83 to 99 of
            // the 100 stayed. Half is far from "all forgotten" and never flakes.
            assert!(kept >= 50, "only {kept} of 100 verifies remembered");
        });
    }

    #[test]
    fn verifies_run_in_place_outside_a_tokio_runtime() {
        // Another executor (here, none but a plain poll loop): the core asks nothing of it.
        let p = passwords();
        let hash = poll_to_end(p.hash("pw")).unwrap();
        let id = AccountId::new("a").unwrap();
        assert!(poll_to_end(p.verify(&id, 1, "pw", Some(&hash), NOW)).matched);
    }

    /// Polls `f` to completion on this thread, outside any Tokio runtime.
    fn poll_to_end<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::yield_now();
        }
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
