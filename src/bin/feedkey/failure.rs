//! What went wrong, as a message for stderr and an exit code.

use std::fmt;

use feedkey::Error;
use feedkey::store::{KeyCheckError, StoreError};

/// A command's failure: its exit code and its message.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// A store error, a file that cannot be written.
    pub const FAILED: u8 = 1;
    /// A malformed argument.
    pub const USAGE: u8 = 2;
    /// Refused, or not found.
    pub const REFUSED: u8 = 3;
    /// The database does not answer.
    pub const UNREACHABLE: u8 = 4;

    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: Self::FAILED,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: Self::USAGE,
            message: message.into(),
        }
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            code: Self::REFUSED,
            message: message.into(),
        }
    }

    pub fn unreachable(message: impl Into<String>) -> Self {
        Self {
            code: Self::UNREACHABLE,
            message: message.into(),
        }
    }

    pub fn code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::Store(StoreError::Backend(_)) => Self::failed(message),
            Error::Store(StoreError::Conflict) => {
                Self::failed(format!("{message}; run the command again"))
            }
            Error::Store(_) | Error::Hash(_) | Error::Entropy => Self::failed(message),
            Error::KeyMismatch(KeyCheckError::Store(_)) => Self::failed(message),
            _ => Self::refused(message),
        }
    }
}

impl From<KeyCheckError> for Failure {
    fn from(error: KeyCheckError) -> Self {
        match error {
            KeyCheckError::Store(e) => Self::failed(e.to_string()),
            other => Self::refused(other.to_string()),
        }
    }
}
