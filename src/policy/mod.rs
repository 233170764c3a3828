//! Policy: how long a token may live, what a refresh does to the old secret, and the one
//! rule for whether a token is alive and where it may act.

pub(crate) mod lifetime;
pub(crate) mod liveness;
pub(crate) mod rotation;

pub use lifetime::{Expiry, LATEST_EXPIRY, LifetimeError, LifetimeLimit, LifetimePolicy};
pub use rotation::RotationPolicy;
