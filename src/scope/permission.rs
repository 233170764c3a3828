//! Permissions: what a token may do (read, push a new package, push a version, unlist).

use serde::{Deserialize, Serialize};
use std::fmt;

use super::*;

/// One thing a token may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Permission {
    /// List, search and download packages.
    Read,
    /// Push the first version of a package id the feed has never had.
    PushNew,
    /// Push a new version of a package id the feed already has.
    PushVersion,
    /// Unlist or delete a package version.
    Unlist,
}

impl Permission {
    /// Every permission, in order.
    pub const ALL: [Permission; 4] = [
        Permission::Read,
        Permission::PushNew,
        Permission::PushVersion,
        Permission::Unlist,
    ];

    const fn bit(self) -> u8 {
        match self {
            Permission::Read => 1,
            Permission::PushNew => 2,
            Permission::PushVersion => 4,
            Permission::Unlist => 8,
        }
    }

    /// The permission's name, as serialized.
    pub const fn name(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::PushNew => "push-new",
            Permission::PushVersion => "push-version",
            Permission::Unlist => "unlist",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Permission {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| ScopeError::UnknownPermission(s.to_owned()))
    }
}

/// A set of [`Permission`]s.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u8);

impl Permissions {
    /// No permission. Not a valid scope on its own.
    pub const NONE: Self = Self(0);
    /// Read only: list, search, download.
    pub const READ_ONLY: Self = Self(Permission::Read.bit());
    /// Push new packages and new versions, without read (MyGet's write-only token).
    pub const WRITE_ONLY: Self = Self(Permission::PushNew.bit() | Permission::PushVersion.bit());
    /// Push new versions of existing packages only.
    pub const PUSH_VERSION_ONLY: Self = Self(Permission::PushVersion.bit());
    /// Everything: what the primary key has.
    pub const FULL: Self = Self(
        Permission::Read.bit()
            | Permission::PushNew.bit()
            | Permission::PushVersion.bit()
            | Permission::Unlist.bit(),
    );

    /// The set holding exactly `permissions`.
    pub fn of(permissions: &[Permission]) -> Self {
        Self(permissions.iter().fold(0, |acc, p| acc | p.bit()))
    }

    /// This set with `permission` added.
    #[must_use]
    pub const fn with(self, permission: Permission) -> Self {
        Self(self.0 | permission.bit())
    }

    /// Whether `permission` is in the set.
    pub const fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// Whether every permission of `self` is in `other`.
    pub const fn is_subset_of(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The permissions in the set, in order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for Permissions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let list = Vec::<Permission>::deserialize(deserializer)?;
        Ok(Self::of(&list))
    }
}
