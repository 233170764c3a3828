//! [`Feedkey`]: the one value a registry holds, and how to build it.

use std::fmt;
use std::sync::Arc;

use time::Duration;

use crate::audit::{AuditEvent, AuditSink, NoAudit};
use crate::expiry::{Clock, LifetimePolicy, SystemClock};
use crate::hash::{HashError, TokenHasher, TokenKey};
use crate::password::{PasswordConfig, PasswordError, Passwords};
use crate::rotation::RotationPolicy;
use crate::token::TokenFormat;

/// Why a [`Feedkey`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The token keys are unusable.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The password settings are unusable.
    #[error(transparent)]
    Password(#[from] PasswordError),
}

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
        self.audit.record(&event);
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

    /// Write a token's last-used time at most this often (default one minute).
    #[must_use]
    pub fn last_used_every(mut self, every: Duration) -> Self {
        self.last_used_every = every.max(Duration::ZERO);
        self
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

    /// The `Feedkey`.
    ///
    /// # Errors
    /// [`ConfigError`] when two keys share a version or the random source fails.
    pub fn build(self) -> Result<Feedkey<S>, ConfigError> {
        Ok(Feedkey {
            store: self.store,
            hasher: TokenHasher::new(self.key, self.previous_keys)?,
            format: self.format,
            clock: self.clock,
            policy: self.policy,
            passwords: Passwords::new(&self.passwords)?,
            last_used_every: self.last_used_every,
            rotation: self.rotation,
            audit: self.audit,
        })
    }
}
