//! Scopes: what a token may do (permissions), where (feeds) and to what (packages).
//!
//! Every part is checked when it is built, so matching cannot fail later: an empty
//! permission set, an empty feed list, an empty package list or a glob that does not
//! compile is a [`ScopeError`] at issue or edit time, never a surprise in `authorize`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::request::{Action, Target};

mod feeds;
mod glob;
mod narrow;
mod network;
mod packages;
mod permission;
mod table;

pub use feeds::{FeedName, FeedSet, Feeds};
pub use narrow::{NarrowingError, ScopeChange, Widening};
pub use network::{NetworkSet, Networks};
pub use packages::{PackagePattern, PackageSet, Packages};
pub use permission::{Permission, Permissions};
pub(crate) use table::ScopeTable;

/// Why a scope or one of its parts was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// A scope must allow at least one permission.
    #[error("a scope needs at least one permission")]
    NoPermissions,
    /// A permission name is not one of `read`, `push-new`, `push-version`, `unlist`.
    #[error("unknown permission {0:?}")]
    UnknownPermission(String),
    /// A feed list must name at least one feed (use `Feeds::Any` for all).
    #[error("a feed list needs at least one feed")]
    NoFeeds,
    /// Too many feeds in one scope.
    #[error("a scope names at most {max} feeds", max = Feeds::MAX_FEEDS)]
    TooManyFeeds,
    /// A feed name is empty, too long or has a control or space character.
    #[error("invalid feed name {0:?}: 1 to {max} characters, no spaces or control characters", max = FeedName::MAX_LEN)]
    InvalidFeedName(String),
    /// A package list must name at least one id or glob (use `Packages::Any` for all).
    #[error("a package list needs at least one id or glob")]
    NoPackages,
    /// Too many package patterns in one scope.
    #[error("a scope names at most {max} package ids or globs", max = PackageSet::MAX_PATTERNS)]
    TooManyPackages,
    /// A package pattern is empty, too long, or has a character other than printable
    /// ASCII (a space, a control character, or a non-ASCII character: package ids are
    /// ASCII, see [`PackageSet`]).
    #[error("invalid package pattern {0:?}: 1 to {max} printable ASCII characters (package ids are ASCII; no spaces or control characters)", max = PackagePattern::MAX_LEN)]
    InvalidPattern(String),
    /// A network list must name at least one range (use `Networks::Any` for all).
    #[error("a network list needs at least one range")]
    NoNetworks,
    /// Too many network ranges in one scope.
    #[error("a scope names at most {max} network ranges", max = crate::Networks::MAX_NETWORKS)]
    TooManyNetworks,
    /// A network range is not CIDR notation or an IP address.
    #[error("invalid network range {0:?}: use CIDR notation such as 10.0.0.0/8")]
    InvalidNetwork(String),
    /// A package glob does not compile.
    #[error("invalid package glob {pattern:?}: {reason}")]
    InvalidGlob {
        /// The pattern as given.
        pattern: String,
        /// What the glob compiler said.
        reason: String,
    },
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

/// What a token may do: permissions × feeds × packages.
///
/// ```
/// use feedkey::{Scope, Permissions, Feeds, Packages};
///
/// // NuGet's "Contoso service CI" key: push Contoso.Service* packages.
/// let scope = Scope::new(
///     Permissions::WRITE_ONLY,
///     Feeds::Any,
///     Packages::only(["Contoso.Service*"])?,
/// )?;
/// assert!(scope.packages().allows("contoso.service.core"));
/// # Ok::<(), feedkey::scope::ScopeError>(())
/// ```
///
/// A scope is shared, not copied: cloning one (as every token record holding it does) is
/// one reference count, and a store keeps equal scopes once (see
/// [`MemoryStore`](crate::MemoryStore)).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ScopeSpec")]
pub struct Scope(Arc<Parts>);

/// What a scope is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Parts {
    permissions: Permissions,
    feeds: Feeds,
    packages: Packages,
    networks: Networks,
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("permissions", &self.0.permissions)
            .field("feeds", &self.0.feeds)
            .field("packages", &self.0.packages)
            .field("networks", &self.0.networks)
            .finish()
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Equal scopes hash alike (for a store that keeps each scope once).
impl Hash for Scope {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let parts = &*self.0;
        parts.permissions.hash(state);
        match &parts.feeds {
            Feeds::Any => 0u8.hash(state),
            Feeds::Only(set) => {
                1u8.hash(state);
                set.hash(state);
            }
        }
        match &parts.packages {
            Packages::Any => 0u8.hash(state),
            Packages::Only(set) => {
                1u8.hash(state);
                set.case_sensitive.hash(state);
                for pattern in set.patterns.iter() {
                    pattern.hash(state);
                }
            }
        }
        match &parts.networks {
            Networks::Any => 0u8.hash(state),
            Networks::Only(set) => {
                1u8.hash(state);
                set.hash(state);
            }
        }
    }
}

#[derive(Deserialize)]
struct ScopeSpec {
    permissions: Permissions,
    feeds: Feeds,
    packages: Packages,
    #[serde(default)]
    networks: Networks,
}

impl TryFrom<ScopeSpec> for Scope {
    type Error = ScopeError;
    fn try_from(spec: ScopeSpec) -> Result<Self, ScopeError> {
        Ok(Scope::new(spec.permissions, spec.feeds, spec.packages)?.within(spec.networks))
    }
}

/// Why a child scope is not provably inside its parent's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotCovered {
    /// The child has a permission the parent lacks.
    #[error("the parent lacks a permission the child asks for")]
    Permissions,
    /// The child covers a feed the parent does not.
    #[error("the child covers a feed the parent does not")]
    Feeds,
    /// A child package pattern could not be proven inside the parent's.
    #[error("package pattern {0:?} is not provably covered by the parent's")]
    Package(String),
    /// The child allows a client address the parent does not.
    #[error("the child allows addresses the parent does not")]
    Networks,
}

impl Scope {
    /// A checked scope.
    ///
    /// # Errors
    /// [`ScopeError::NoPermissions`] for an empty permission set. Feeds and packages are
    /// checked by their own constructors: an invalid one cannot be written down.
    pub fn new(
        permissions: Permissions,
        feeds: Feeds,
        packages: Packages,
    ) -> Result<Self, ScopeError> {
        if permissions.is_empty() {
            return Err(ScopeError::NoPermissions);
        }
        Ok(Self::of(permissions, feeds, packages, Networks::Any))
    }

    fn of(permissions: Permissions, feeds: Feeds, packages: Packages, networks: Networks) -> Self {
        Self(Arc::new(Parts {
            permissions,
            feeds,
            packages,
            networks,
        }))
    }

    /// This scope, usable only from clients inside `networks`.
    ///
    /// ```
    /// use feedkey::{Networks, Scope};
    ///
    /// let office = Scope::read_only().within(Networks::only(["10.0.0.0/8"])?);
    /// assert!(office.networks().allows(Some("10.1.2.3".parse()?)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn within(self, networks: Networks) -> Self {
        if self.0.networks == networks {
            return self;
        }
        let Parts {
            permissions,
            feeds,
            packages,
            ..
        } = Arc::unwrap_or_clone(self.0);
        Self::of(permissions, feeds, packages, networks)
    }

    /// This scope, usable only from clients inside `networks`.
    ///
    /// # Errors
    /// Never: a [`Networks`] is checked when it is built.
    #[deprecated(note = "a Networks is checked when built: use `Scope::within`")]
    pub fn with_networks(self, networks: Networks) -> Result<Self, ScopeError> {
        Ok(self.within(networks))
    }

    /// The client addresses the scope allows.
    pub fn networks(&self) -> &Networks {
        &self.0.networks
    }

    /// Whether the scope can push or unlist (the lifetime policy may cap such tokens
    /// more tightly).
    pub fn can_write(&self) -> bool {
        !self.0.permissions.is_subset_of(Permissions::READ_ONLY)
    }

    /// Everything, everywhere: the primary key's scope.
    pub fn full() -> Self {
        Self::of(Permissions::FULL, Feeds::Any, Packages::Any, Networks::Any)
    }

    /// Read every package of every feed the account can reach.
    pub fn read_only() -> Self {
        Self::of(
            Permissions::READ_ONLY,
            Feeds::Any,
            Packages::Any,
            Networks::Any,
        )
    }

    /// How many holders share this scope (a store keeping each scope once forgets one
    /// that only it holds).
    pub(crate) fn holders(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// Whether both are one shared copy (not merely equal).
    #[cfg(test)]
    pub(crate) fn is_same_copy(&self, other: &Scope) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The permissions.
    pub fn permissions(&self) -> Permissions {
        self.0.permissions
    }

    /// The feeds.
    pub fn feeds(&self) -> &Feeds {
        &self.0.feeds
    }

    /// The packages.
    pub fn packages(&self) -> &Packages {
        &self.0.packages
    }

    /// Whether every request `child` allows is provably allowed by `self`: permissions,
    /// feeds and networks are subsets, and each child package pattern is either one id
    /// (up to case, for a case-insensitive child) that the parent's patterns match, or a
    /// glob that, element by element, admits no more than one of the parent's: each
    /// literal, `?` or class of the child admits a subset of what the parent's element at
    /// the same place admits (under each set's own case rule, so a case-sensitive `x[!a-z]`
    /// is not inside a case-insensitive `x[!a-z]`, which refuses `xA`), each alternative
    /// of the child lies within one of the parent's, a parent `*` takes any one element,
    /// and a parent ending in `*` takes whatever rest the child has (`fabrikam.service.*`
    /// and `fabrikam.[a-m]?*` under `fabrikam.*`). Anything else is refused rather than
    /// guessed.
    ///
    /// # Errors
    /// [`NotCovered`] naming the first part that could not be proven.
    pub fn covers(&self, child: &Scope) -> Result<(), NotCovered> {
        if !child.0.permissions.is_subset_of(self.0.permissions) {
            return Err(NotCovered::Permissions);
        }
        if !child.0.feeds.is_subset_of(&self.0.feeds) {
            return Err(NotCovered::Feeds);
        }
        if !child.0.networks.is_subset_of(&self.0.networks) {
            return Err(NotCovered::Networks);
        }
        match (&self.0.packages, &child.0.packages) {
            // A parent for every package covers any child.
            (Packages::Any, _) => Ok(()),
            // A child for every package is wider than a package-limited parent.
            (Packages::Only(_), Packages::Any) => Err(NotCovered::Package("*".to_owned())),
            (Packages::Only(parent), Packages::Only(child)) => {
                // A case-insensitive child over a case-sensitive parent would cover
                // spellings the parent does not.
                if parent.case_sensitive && !child.case_sensitive {
                    return Err(NotCovered::Package(
                        child
                            .patterns
                            .first()
                            .map(|p| p.0.clone())
                            .unwrap_or_default(),
                    ));
                }
                for pattern in &child.patterns {
                    if !parent.covers_pattern(pattern, child.case_sensitive) {
                        return Err(NotCovered::Package(pattern.0.clone()));
                    }
                }
                Ok(())
            }
        }
    }

    /// The permission `action` on `target` needs, or `None` when the target lacks the
    /// package the action needs.
    pub(crate) fn required(action: Action, target: &Target<'_>) -> Option<Permission> {
        match (action, target.package_id(), target.is_new_package()) {
            // Reading needs read, whether of one package or of the feed's listing.
            (Action::Read, _, _) => Some(Permission::Read),
            // Pushing an id the feed has never had creates a package.
            (Action::Push, Some(_), true) => Some(Permission::PushNew),
            // Pushing an id the feed has adds a version.
            (Action::Push, Some(_), false) => Some(Permission::PushVersion),
            // Unlisting acts on one package version.
            (Action::Unlist, Some(_), _) => Some(Permission::Unlist),
            // Pushing or unlisting without naming the package is never in scope.
            (Action::Push | Action::Unlist, None, _) => None,
        }
    }

    // `Scope::check`, which puts `required`, `Feeds::allows` and `PackageSet::matches`
    // together and names the part that refused, lives in `decision`: its refusals are
    // `DenyReason`s, and `decision` sits above `scope`.
}

#[cfg(test)]
mod tests;
