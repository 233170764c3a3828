//! Secrets: the server-side key, the keyed hash of a token secret and the secrets a
//! refresh retired, the verifier that compares them in constant time, and the account
//! password.

pub(crate) mod hash;
pub(crate) mod key;
pub(crate) mod password;
pub(crate) mod ring;
pub(crate) mod verifier;

pub use hash::{MAX_RETIRED_SECRETS, RetiredSecret, SecretHash};
pub use key::{HashError, KeyFingerprint, TokenKey};
pub(crate) use password::Passwords;
pub use password::{PasswordConfig, PasswordError, PasswordHash};
pub use ring::{KeyRing, KeyRingError};
pub(crate) use verifier::{Matched, TokenHasher};
