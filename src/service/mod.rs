//! [`Feedkey`]: the one value a registry holds, and how to build it.
//!
//! Over 500 lines because the builder's configuration checks and their tests belong with
//! the facade they build.

use std::fmt;
use std::sync::Arc;

use time::Duration;

use tokio::sync::OnceCell;

use crate::audit::{AuditEvent, AuditSink, NoAudit};
use crate::clock::{Clock, SystemClock};
use crate::decision::DenyReason;
use crate::error::Error;
use crate::policy::lifetime::LifetimePolicy;
use crate::policy::rotation::RotationPolicy;
use crate::secret::{KeyFingerprint, TokenHasher, TokenKey};
use crate::secret::{PasswordConfig, Passwords};
use crate::store::{KeyCheckError, TokenStore};
use crate::token::TokenFormat;

mod accounts;
mod authorize;
mod bulk;
mod derive;
mod edit;
#[cfg(feature = "oidc")]
mod exchange;
mod issue;
mod leak;
mod maintenance;
mod rotate;
mod shared;
mod standing;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod trail;
#[cfg(feature = "oidc")]
mod trust;

pub use bulk::{KeyVersionUse, RevokeSelection};
pub use derive::NewChild;
pub use edit::TokenEdit;
pub use issue::{IssuedToken, NewToken};
pub use leak::LeakVerdict;
pub use rotate::Refresh;
#[cfg(feature = "oidc")]
pub use trust::{MAX_MINTED_LIFETIME, NewTrustPolicy, TrustPolicy, TrustPolicyEdit};

use crate::policy::ConfigError;

/// Issues, manages and checks one registry's access tokens.
///
/// Build it once at start-up with [`Feedkey::builder`], share it (it is `Send + Sync`),
/// call [`authorize`](Feedkey::authorize) on every request and the management methods
/// from the "my tokens" page.
///
/// ```
/// use feedkey::{Feedkey, MemoryStore, TokenKey, AccountId, Expiry};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let keys = Feedkey::builder(MemoryStore::new(), TokenKey::generate(1)?).build()?;
/// let alice = AccountId::new("alice")?;
/// let primary = keys.create_account(&alice, Expiry::Never).await?;
/// println!("your API key, shown once: {}", primary.token.expose_secret());
/// # Ok(())
/// # }
/// ```
pub struct Feedkey<S> {
    pub(crate) store: S,
    pub(crate) hasher: TokenHasher,
    pub(crate) format: TokenFormat,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) policy: LifetimePolicy,
    pub(crate) passwords: Passwords,
    pub(crate) last_used_every: Duration,
    pub(crate) rotation: RotationPolicy,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) key_check: KeyCheck,
}

/// Whether the configured keys are the store's: the configured keys' fingerprints, and
/// the first definitive answer.
pub(crate) struct KeyCheck {
    /// Version and fingerprint of the current key, then of the previous ones.
    configured: Vec<(u32, KeyFingerprint)>,
    /// Set once the store has answered; a store failure leaves it unset.
    verdict: OnceCell<Result<(), KeyCheckError>>,
}

/// What the store's remembered keys say of the configured ones (the current key first):
/// the configured keys it must remember, or why they may not be used on it.
///
/// - a configured key whose version the store remembers with another fingerprint: refused
///   ([`KeyCheckError::Mismatch`]), whichever key it is;
/// - a store that remembers keys, none of them configured: refused
///   ([`KeyCheckError::UnknownKeys`]); none of its tokens could be verified;
/// - otherwise (an unused store, the same keys, a rotation that keeps an old key among the
///   previous ones, or an old key retired after one): allowed, and the configured keys the
///   store does not know are to be remembered.
fn judge(
    configured: &[(u32, KeyFingerprint)],
    stored: &[(u32, KeyFingerprint)],
) -> Result<Vec<(u32, KeyFingerprint)>, KeyCheckError> {
    let remembered = |version: u32| stored.iter().find(|(v, _)| *v == version).map(|(_, f)| *f);
    for &(version, fingerprint) in configured {
        match remembered(version) {
            Some(stored) if stored != fingerprint => {
                return Err(KeyCheckError::Mismatch {
                    version,
                    configured: fingerprint,
                    stored,
                });
            }
            _ => {}
        }
    }
    let known = configured.iter().any(|(v, _)| remembered(*v).is_some());
    if let (false, false, Some(&(version, fingerprint))) =
        (stored.is_empty(), known, configured.first())
    {
        let mut stored = stored.to_vec();
        stored.sort_unstable();
        return Err(KeyCheckError::UnknownKeys {
            version,
            configured: fingerprint,
            stored,
        });
    }
    Ok(configured
        .iter()
        .filter(|(v, _)| remembered(*v).is_none())
        .copied()
        .collect())
}

impl<S: TokenStore> Feedkey<S> {
    /// Checks, once, that the configured token keys are the ones the store's tokens are
    /// hashed under, remembering them in the store the first time. Call it at start-up
    /// and refuse to start on an error: the key file is missing or wrong, and every token
    /// would otherwise answer "wrong secret". (Every request and management call makes the
    /// same check first, and is refused — 503, [`DenyReason::KeyMismatch`] — while it
    /// fails.)
    ///
    /// A store remembers each key version's [`TokenKey::fingerprint`] at first use. It
    /// refuses a key whose version it remembers with another fingerprint, and a current
    /// key it has never seen while none of the keys it has seen is configured. Rotating
    /// is adding the new key with the old one among
    /// [`previous_keys`](FeedkeyBuilder::previous_keys); the old one may be dropped once
    /// the store remembers the new one.
    ///
    /// The first definitive answer is kept for the life of this `Feedkey`: a refusal
    /// stands until the server restarts with the right key. A store failure is not kept;
    /// the next call asks again.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use feedkey::{Feedkey, MemoryStore, TokenKey, store::KeyCheckError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Arc::new(MemoryStore::new());
    /// let key = TokenKey::new(1, &[7; 32]); // read it from your secret store
    /// let keys = Feedkey::builder(Arc::clone(&store), key.clone()).build()?;
    /// keys.check_keys().await?; // first use: the store remembers key 1
    ///
    /// // The key file went missing and a new key 1 was made: refused at start-up.
    /// let lost = Feedkey::builder(Arc::clone(&store), TokenKey::generate(1)?).build()?;
    /// let Err(KeyCheckError::Mismatch { version: 1, stored, .. }) = lost.check_keys().await
    /// else { unreachable!() };
    /// assert_eq!(stored, key.fingerprint());
    ///
    /// // Rotation: the new key, with the old one among the previous keys.
    /// let rotated = Feedkey::builder(Arc::clone(&store), TokenKey::generate(2)?)
    ///     .previous_keys(vec![key])
    ///     .build()?;
    /// rotated.check_keys().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`KeyCheckError::Mismatch`] or [`KeyCheckError::UnknownKeys`], naming the key
    /// version and the fingerprints on both sides; [`KeyCheckError::Store`] when the store
    /// failed.
    pub async fn check_keys(&self) -> Result<(), KeyCheckError> {
        self.keys_ready().await
    }

    /// [`Feedkey::check_keys`], for the top of every entry point: once it has answered,
    /// one atomic load.
    ///
    /// # Errors
    /// As [`Feedkey::check_keys`].
    #[inline]
    pub(crate) async fn keys_ready(&self) -> Result<(), KeyCheckError> {
        match self.key_check.verdict.get() {
            Some(verdict) => verdict.clone(),
            // Boxed: the first check's state would otherwise swell every request's future.
            None => Box::pin(self.first_key_check()).await,
        }
    }

    /// Asks the store until it has answered, one caller at a time.
    async fn first_key_check(&self) -> Result<(), KeyCheckError> {
        let verdict = self
            .key_check
            .verdict
            .get_or_try_init(|| async {
                match self.ask_store_about_keys().await {
                    Err(KeyCheckError::Store(e)) => Err(e),
                    definitive => Ok(definitive),
                }
            })
            .await?;
        verdict.clone()
    }

    /// The check itself, every time it is called.
    async fn ask_store_about_keys(&self) -> Result<(), KeyCheckError> {
        let configured = &self.key_check.configured;
        let stored = self.store.key_fingerprints().await?;
        for (version, fingerprint) in judge(configured, &stored)? {
            // Another server may have remembered this version in the meantime.
            let kept = self.store.remember_key(version, fingerprint).await?;
            if kept != fingerprint {
                return Err(KeyCheckError::Mismatch {
                    version,
                    configured: fingerprint,
                    stored: kept,
                });
            }
        }
        Ok(())
    }
}

/// A management call on a store whose keys are not the configured ones fails with
/// [`Error::KeyMismatch`]; a store failure stays [`Error::Store`].
impl From<KeyCheckError> for Error {
    fn from(error: KeyCheckError) -> Self {
        match error {
            KeyCheckError::Store(e) => Error::Store(e),
            other => Error::KeyMismatch(other),
        }
    }
}

/// A request on a store whose keys are not the configured ones is denied with
/// [`DenyReason::KeyMismatch`] (503); a store failure stays [`DenyReason::Store`].
impl From<KeyCheckError> for DenyReason {
    fn from(error: KeyCheckError) -> Self {
        match error {
            KeyCheckError::Store(e) => DenyReason::Store(e),
            other => DenyReason::KeyMismatch(other),
        }
    }
}

impl<S> fmt::Debug for Feedkey<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feedkey")
            .field("format", &self.format)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S> Feedkey<S> {
    /// Starts building a `Feedkey` over `store`, hashing token secrets under `key`.
    pub fn builder(store: S, key: TokenKey) -> FeedkeyBuilder<S> {
        FeedkeyBuilder {
            store,
            key,
            previous_keys: Vec::new(),
            format: TokenFormat::default(),
            clock: Arc::new(SystemClock),
            policy: LifetimePolicy::default(),
            passwords: PasswordConfig::default(),
            last_used_every: FeedkeyBuilder::<S>::DEFAULT_LAST_USED_EVERY,
            rotation: RotationPolicy::default(),
            audit: Arc::new(NoAudit),
        }
    }

    /// The rotation policy.
    pub fn rotation_policy(&self) -> &RotationPolicy {
        &self.rotation
    }

    /// Sends an event to the audit sink.
    pub(crate) fn emit(&self, event: AuditEvent) {
        self.audit.record_owned(event);
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The token format (its prefix).
    pub fn token_format(&self) -> &TokenFormat {
        &self.format
    }

    /// The lifetime policy.
    pub fn lifetime_policy(&self) -> &LifetimePolicy {
        &self.policy
    }
}

/// Builds a [`Feedkey`]; every setting has a safe default but the key.
pub struct FeedkeyBuilder<S> {
    store: S,
    key: TokenKey,
    previous_keys: Vec<TokenKey>,
    format: TokenFormat,
    clock: Arc<dyn Clock>,
    policy: LifetimePolicy,
    passwords: PasswordConfig,
    last_used_every: Duration,
    rotation: RotationPolicy,
    #[allow(clippy::struct_field_names)]
    audit: Arc<dyn AuditSink>,
}

impl<S: fmt::Debug> fmt::Debug for FeedkeyBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeedkeyBuilder")
            .field("store", &self.store)
            .field("key", &self.key)
            .field("format", &self.format)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S> FeedkeyBuilder<S> {
    /// How often, at most, a token's last-used time is written by default.
    pub const DEFAULT_LAST_USED_EVERY: Duration = Duration::minutes(1);

    /// Older keys still accepted for verifying; tokens verified under one are rehashed
    /// under the current key.
    #[must_use]
    pub fn previous_keys(mut self, keys: Vec<TokenKey>) -> Self {
        self.previous_keys = keys;
        self
    }

    /// The token prefix (default `fk`).
    #[must_use]
    pub fn token_format(mut self, format: TokenFormat) -> Self {
        self.format = format;
        self
    }

    /// The clock (default: the system's).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The lifetime policy (default: tokens may live for ever).
    #[must_use]
    pub fn lifetime_policy(mut self, policy: LifetimePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The account-password settings.
    #[must_use]
    pub fn passwords(mut self, config: PasswordConfig) -> Self {
        self.passwords = config;
        self
    }

    /// Record a new last-used time for a token only when the stored one is at least this
    /// old (default one minute): `TokenInfo::last_used_at` is accurate to this much, and a
    /// busy token costs one store write per period instead of one per request.
    #[must_use]
    pub fn last_used_granularity(mut self, every: Duration) -> Self {
        self.last_used_every = every.max(Duration::ZERO);
        self
    }

    /// Kept for code written before 0.2: see [`FeedkeyBuilder::last_used_granularity`].
    #[deprecated(note = "use `FeedkeyBuilder::last_used_granularity`")]
    #[doc(hidden)]
    #[must_use]
    pub fn last_used_every(self, every: Duration) -> Self {
        self.last_used_granularity(every)
    }

    /// What happens to secrets a refresh replaces (default: they die at once and are
    /// remembered 30 days for reuse detection).
    #[must_use]
    pub fn rotation_policy(mut self, policy: RotationPolicy) -> Self {
        self.rotation = policy;
        self
    }

    /// Where audit events go (default: nowhere).
    #[must_use]
    pub fn audit(mut self, sink: impl AuditSink + 'static) -> Self {
        self.audit = Arc::new(sink);
        self
    }

    /// The `Feedkey`. The keys are checked against the store's at the first call
    /// ([`Feedkey::check_keys`]; call it at start-up).
    ///
    /// # Errors
    /// [`ConfigError`] when two keys share a version or the random source fails.
    pub fn build(self) -> Result<Feedkey<S>, ConfigError> {
        let hasher = TokenHasher::new(self.key, self.previous_keys)?;
        let key_check = KeyCheck {
            configured: hasher.fingerprints(),
            verdict: OnceCell::new(),
        };
        Ok(Feedkey {
            store: self.store,
            hasher,
            format: self.format,
            clock: self.clock,
            policy: self.policy,
            passwords: Passwords::new(&self.passwords)?,
            last_used_every: self.last_used_every,
            rotation: self.rotation,
            audit: self.audit,
            key_check,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> KeyFingerprint {
        KeyFingerprint::from_bytes([n; 16])
    }

    /// One row per rule: the configured keys (current first), what the store remembers,
    /// and the verdict.
    #[test]
    fn the_key_rules() {
        type Keys = &'static [(u32, u8)];
        type Verdict = Result<Vec<(u32, KeyFingerprint)>, KeyCheckError>;
        let keys = |k: Keys| k.iter().map(|&(v, f)| (v, fp(f))).collect::<Vec<_>>();
        let mismatch = |version, configured, stored| {
            Err(KeyCheckError::Mismatch {
                version,
                configured: fp(configured),
                stored: fp(stored),
            })
        };
        let unknown = |version, configured, stored: Keys| {
            Err(KeyCheckError::UnknownKeys {
                version,
                configured: fp(configured),
                stored: keys(stored),
            })
        };
        let remember = |k: Keys| Ok(keys(k));
        let table: &[(Keys, Keys, Verdict)] = &[
            // An unused store: remember every configured key.
            (&[(1, 1)], &[], remember(&[(1, 1)])),
            (&[(2, 2), (1, 1)], &[], remember(&[(2, 2), (1, 1)])),
            // The same key again: nothing to do.
            (&[(1, 1)], &[(1, 1)], remember(&[])),
            // Another key of a version the store knows (a lost key file): refused.
            (&[(1, 9)], &[(1, 1)], mismatch(1, 9, 1)),
            // ... also when it is a previous key.
            (&[(2, 2), (1, 9)], &[(1, 1)], mismatch(1, 9, 1)),
            (&[(2, 9), (1, 1)], &[(1, 1), (2, 2)], mismatch(2, 9, 2)),
            // A new key alone on a used store (a second server's own key): refused.
            (&[(2, 2)], &[(1, 1)], unknown(2, 2, &[(1, 1)])),
            (
                &[(3, 3)],
                &[(2, 2), (1, 1)],
                unknown(3, 3, &[(1, 1), (2, 2)]),
            ),
            // Rotation: the new key with the old one among the previous keys.
            (&[(2, 2), (1, 1)], &[(1, 1)], remember(&[(2, 2)])),
            // The old key retired once the store knows the new one.
            (&[(2, 2)], &[(1, 1), (2, 2)], remember(&[])),
            // An old server, still on the old key, beside a rotated one.
            (&[(1, 1)], &[(1, 1), (2, 2)], remember(&[])),
            // A previous key the store never saw, beside a current one it knows.
            (&[(2, 2), (0, 7)], &[(2, 2)], remember(&[(0, 7)])),
        ];
        for (configured, stored, expected) in table {
            assert_eq!(
                &judge(&keys(configured), &keys(stored)),
                expected,
                "{configured:?} on {stored:?}"
            );
        }
    }

    #[test]
    fn a_refusal_names_the_version_and_both_fingerprints() {
        let text = KeyCheckError::Mismatch {
            version: 1,
            configured: fp(0xab),
            stored: fp(0xcd),
        }
        .to_string();
        assert!(text.contains("version 1"), "{text}");
        assert!(text.contains(&"ab".repeat(16)), "{text}");
        assert!(text.contains(&"cd".repeat(16)), "{text}");
        let text = KeyCheckError::UnknownKeys {
            version: 2,
            configured: fp(0xab),
            stored: vec![(1, fp(0xcd))],
        }
        .to_string();
        assert!(text.contains("version 2"), "{text}");
        assert!(text.contains(&"ab".repeat(16)), "{text}");
        assert!(
            text.contains(&format!("version 1 ({})", "cd".repeat(16))),
            "{text}"
        );
    }

    #[test]
    fn a_refusal_is_a_503_and_a_store_failure_stays_a_store_failure() {
        let refused = KeyCheckError::Mismatch {
            version: 1,
            configured: fp(1),
            stored: fp(2),
        };
        let reason = DenyReason::from(refused.clone());
        assert_eq!(reason, DenyReason::KeyMismatch(refused.clone()));
        assert_eq!(
            crate::decision::Denial::new(reason).status(),
            crate::decision::DenyStatus::Unavailable
        );
        assert_eq!(Error::from(refused.clone()), Error::KeyMismatch(refused));
        let failed = crate::store::StoreError::Conflict;
        assert_eq!(
            DenyReason::from(KeyCheckError::Store(failed.clone())),
            DenyReason::Store(failed.clone())
        );
        assert_eq!(
            Error::from(KeyCheckError::Store(failed.clone())),
            Error::Store(failed)
        );
    }
}
