//! The account id and the other checked text a caller names (token descriptions), with
//! their error: below secrets and records, which both name accounts.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Why an account id or a description was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// An account id is 1 to [`AccountId::MAX_LEN`] bytes with no control characters.
    #[error("an account id has 1 to {max} bytes and no control characters", max = AccountId::MAX_LEN)]
    InvalidAccountId,
    /// A description is at most [`MAX_DESCRIPTION_LEN`] bytes with no control characters.
    #[error("a description has at most {max} bytes and no control characters", max = MAX_DESCRIPTION_LEN)]
    InvalidDescription,
}

/// The longest token description accepted, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 512;

/// Checks a token description.
pub(crate) fn check_description(text: &str) -> Result<(), RecordError> {
    if text.len() > MAX_DESCRIPTION_LEN || text.chars().any(char::is_control) {
        return Err(RecordError::InvalidDescription);
    }
    Ok(())
}

/// The registry's own id for an account (its user name, say). Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(Arc<str>);

impl Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl AccountId {
    /// The longest account id accepted, in bytes.
    pub const MAX_LEN: usize = 256;

    /// A checked account id.
    ///
    /// # Errors
    /// [`RecordError::InvalidAccountId`] when empty, too long or holding a control
    /// character.
    pub fn new(id: &str) -> Result<Self, RecordError> {
        if id.is_empty() || id.len() > Self::MAX_LEN || id.chars().any(char::is_control) {
            return Err(RecordError::InvalidAccountId);
        }
        Ok(Self(Arc::from(id)))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether both are one shared copy (not merely equal).
    #[cfg(test)]
    pub(crate) fn is_same_copy(&self, other: &AccountId) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// `-`, for stand-in records that belong to no one.
    pub(crate) fn placeholder() -> Self {
        Self(Arc::from("-"))
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({:?})", &*self.0)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AccountId::new(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_checked() {
        assert!(AccountId::new("alice").is_ok());
        assert!(AccountId::new("").is_err());
        assert!(AccountId::new("a\nb").is_err());
        assert!(AccountId::new(&"a".repeat(AccountId::MAX_LEN + 1)).is_err());
        assert!(serde_json::from_str::<AccountId>("\"\"").is_err());
    }

    #[test]
    fn descriptions_are_checked() {
        assert!(check_description("Contoso service CI").is_ok());
        assert!(check_description("").is_ok());
        assert!(check_description("a\u{0}b").is_err());
        assert!(check_description(&"a".repeat(MAX_DESCRIPTION_LEN + 1)).is_err());
    }
}
