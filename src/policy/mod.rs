//! Policy: how long a token may live, what a refresh does to the old secret, and the one
//! rule for whether a token is alive and where it may act; with them the settings a
//! [`FeedkeyBuilder`](crate::FeedkeyBuilder) takes: password hashing, the clock, and the
//! error a bad configuration gives.

pub(crate) mod lifetime;
pub(crate) mod liveness;
pub(crate) mod rotation;

pub use lifetime::{Expiry, LATEST_EXPIRY, LifetimeError, LifetimeLimit, LifetimePolicy};
pub use rotation::RotationPolicy;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::secret::{PasswordConfig, PasswordError};

use crate::secret::HashError;

/// Why a [`Feedkey`](crate::Feedkey) could not be built.
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
