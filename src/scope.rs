//! Scopes: what a token may do (permissions), where (feeds) and to what (packages).
//!
//! Every part is checked when it is built, so matching cannot fail later: an empty
//! permission set, an empty feed list, an empty package list or a glob that does not
//! compile is a [`ScopeError`] at issue or edit time, never a surprise in `authorize`.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use std::net::IpAddr;

use crate::decision::{Action, Target};
use crate::network::Networks;

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
    /// A package pattern is empty, too long or has a space or control character.
    #[error("invalid package pattern {0:?}: 1 to {max} characters, no spaces or control characters", max = PackagePattern::MAX_LEN)]
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

/// A feed name, checked: 1 to [`FeedName::MAX_LEN`] characters, no spaces or control
/// characters. Compared exactly (case-sensitive), as feed URLs are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FeedName(String);

impl FeedName {
    /// The longest feed name accepted.
    pub const MAX_LEN: usize = 128;

    /// A checked feed name.
    ///
    /// # Errors
    /// [`ScopeError::InvalidFeedName`] when the name is empty, too long, or has a space or
    /// control character.
    pub fn new(name: &str) -> Result<Self, ScopeError> {
        if name.is_empty()
            || name.len() > Self::MAX_LEN
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ScopeError::InvalidFeedName(truncate(name)));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets a feed set be searched by `&str`: a `FeedName` orders and compares exactly as
/// its text.
impl std::borrow::Borrow<str> for FeedName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for FeedName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        FeedName::new(&text).map_err(serde::de::Error::custom)
    }
}

/// The feeds a token may act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", try_from = "FeedsSpec", into = "FeedsSpec")]
pub enum Feeds {
    /// Every feed the account can reach.
    Any,
    /// Only these feeds (never empty).
    Only(BTreeSet<FeedName>),
}

impl Feeds {
    /// The most feeds one scope may name.
    pub const MAX_FEEDS: usize = 1024;

    /// Only the named feeds.
    ///
    /// # Errors
    /// [`ScopeError::NoFeeds`] for an empty list, [`ScopeError::TooManyFeeds`] past
    /// [`Self::MAX_FEEDS`], [`ScopeError::InvalidFeedName`] for a bad name.
    pub fn only<I, S>(names: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for name in names {
            if set.len() == Self::MAX_FEEDS {
                return Err(ScopeError::TooManyFeeds);
            }
            set.insert(FeedName::new(name.as_ref())?);
        }
        if set.is_empty() {
            return Err(ScopeError::NoFeeds);
        }
        Ok(Self::Only(set))
    }

    /// Whether `feed` is covered.
    pub fn allows(&self, feed: &str) -> bool {
        match self {
            Feeds::Any => true,
            Feeds::Only(set) => set.contains(feed),
        }
    }

    /// Checks a list built directly with the `Only` variant.
    pub(crate) fn validate(&self) -> Result<(), ScopeError> {
        match self {
            Feeds::Only(set) if set.is_empty() => Err(ScopeError::NoFeeds),
            Feeds::Only(set) if set.len() > Self::MAX_FEEDS => Err(ScopeError::TooManyFeeds),
            _ => Ok(()),
        }
    }

    /// Whether every feed `self` covers is covered by `other`.
    pub fn is_subset_of(&self, other: &Feeds) -> bool {
        match (self, other) {
            (_, Feeds::Any) => true,
            (Feeds::Any, Feeds::Only(_)) => false,
            (Feeds::Only(mine), Feeds::Only(theirs)) => mine.is_subset(theirs),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum FeedsSpec {
    Any,
    Only(Vec<String>),
}

impl TryFrom<FeedsSpec> for Feeds {
    type Error = ScopeError;
    fn try_from(spec: FeedsSpec) -> Result<Self, ScopeError> {
        match spec {
            FeedsSpec::Any => Ok(Feeds::Any),
            FeedsSpec::Only(list) => Feeds::only(list),
        }
    }
}

impl From<Feeds> for FeedsSpec {
    fn from(feeds: Feeds) -> Self {
        match feeds {
            Feeds::Any => FeedsSpec::Any,
            Feeds::Only(set) => FeedsSpec::Only(set.into_iter().map(|f| f.0).collect()),
        }
    }
}

/// A package id or glob (`Contoso.Service.Core`, `fabrikam.service.*`), checked.
///
/// `*` matches any run of characters, `?` one character, `[abc]` a class and `{a,b}`
/// alternatives. A pattern also covers package ids that do not exist yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PackagePattern(String);

impl PackagePattern {
    /// The longest pattern accepted.
    pub const MAX_LEN: usize = 256;

    /// A checked pattern.
    ///
    /// # Errors
    /// [`ScopeError::InvalidPattern`] for an empty, over-long or spaced pattern and
    /// [`ScopeError::InvalidGlob`] for one that does not compile.
    pub fn new(pattern: &str) -> Result<Self, ScopeError> {
        if pattern.is_empty()
            || pattern.len() > Self::MAX_LEN
            || pattern.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ScopeError::InvalidPattern(truncate(pattern)));
        }
        compile_one(pattern, false)?;
        Ok(Self(pattern.to_owned()))
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pattern is a plain id, with no glob characters.
    pub fn is_literal(&self) -> bool {
        !self.0.contains(GLOB_META)
    }
}

impl<'de> Deserialize<'de> for PackagePattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PackagePattern::new(&text).map_err(serde::de::Error::custom)
    }
}

/// Compiles one pattern. A case-insensitive pattern is lowercased and compiled
/// case-sensitively, and ids are lowercased before matching: globset keeps its fast
/// literal, prefix and suffix strategies only for case-sensitive globs. Case folding is
/// ASCII only (package ids are ASCII in NuGet, npm and cargo), so no Unicode folding rule
/// (the Kelvin sign, the dotted I) can make a pattern match more than it says.
fn compile_one(pattern: &str, case_sensitive: bool) -> Result<globset::Glob, ScopeError> {
    let lowered;
    let source = if case_sensitive {
        pattern
    } else {
        lowered = pattern.to_ascii_lowercase();
        &lowered
    };
    GlobBuilder::new(source)
        .literal_separator(false)
        .backslash_escape(true)
        .empty_alternates(false)
        .build()
        .map_err(|e| ScopeError::InvalidGlob {
            pattern: truncate(pattern),
            reason: e.kind().to_string(),
        })
}

/// The characters that make a pattern a glob.
const GLOB_META: [char; 7] = ['*', '?', '[', ']', '{', '}', '\\'];

/// The part of a pattern before its first glob character.
fn literal_prefix(pattern: &str) -> &str {
    pattern
        .find(GLOB_META)
        .and_then(|i| pattern.get(..i))
        .unwrap_or(pattern)
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Compiled matchers shared between identical package sets, so that a million tokens
/// with one scope hold one matcher, and a record read again from a database does not
/// compile its globs again. The most recently compiled [`RECENT`](compiled::RECENT)
/// matchers are kept even when no record holds them.
mod compiled {
    use std::collections::{BTreeSet, HashMap, VecDeque};
    use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

    use globset::GlobSet;

    use super::PackagePattern;

    /// How many matchers are kept alive without any record holding them.
    pub(super) const RECENT: usize = 1024;

    #[derive(Default)]
    struct Table {
        shared: HashMap<String, Weak<GlobSet>>,
        recent: VecDeque<Arc<GlobSet>>,
    }

    fn table() -> &'static Mutex<Table> {
        static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
        TABLE.get_or_init(Mutex::default)
    }

    /// The key of a set: its case rule and its patterns (which hold no whitespace, so a
    /// newline separates them unambiguously).
    pub(super) fn key(patterns: &BTreeSet<PackagePattern>, case_sensitive: bool) -> String {
        let mut key = String::from(if case_sensitive { "s" } else { "i" });
        for p in patterns {
            key.push('\n');
            key.push_str(p.as_str());
        }
        key
    }

    pub(super) fn get(key: &str) -> Option<Arc<GlobSet>> {
        let table = table().lock().unwrap_or_else(PoisonError::into_inner);
        table.shared.get(key).and_then(Weak::upgrade)
    }

    pub(super) fn put(key: String, matcher: &Arc<GlobSet>) {
        let mut table = table().lock().unwrap_or_else(PoisonError::into_inner);
        if table.recent.len() == RECENT {
            table.recent.pop_front();
        }
        table.recent.push_back(Arc::clone(matcher));
        // Forget dead matchers now and then, so the table stays the size of the live ones.
        if table.shared.len() >= 2 * RECENT && table.shared.len().is_power_of_two() {
            table.shared.retain(|_, m| m.strong_count() > 0);
        }
        table.shared.insert(key, Arc::downgrade(matcher));
    }
}

/// Package ids up to this length are lowercased without allocating.
const LOWERCASE_BUF: usize = 256;

/// A non-empty set of package patterns, compiled once into one matcher.
#[derive(Clone)]
pub struct PackageSet {
    patterns: BTreeSet<PackagePattern>,
    case_sensitive: bool,
    matcher: Arc<GlobSet>,
}

impl PackageSet {
    /// The most patterns one scope may name.
    pub const MAX_PATTERNS: usize = 1000;

    /// A set matched case-insensitively (NuGet and cargo ids are).
    ///
    /// # Errors
    /// [`ScopeError`] for an empty list, too many patterns, or a bad pattern.
    pub fn new<I, S>(patterns: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::build(patterns, false)
    }

    /// A set matched case-sensitively.
    ///
    /// # Errors
    /// As [`PackageSet::new`].
    pub fn case_sensitive<I, S>(patterns: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::build(patterns, true)
    }

    fn build<I, S>(patterns: I, case_sensitive: bool) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for pattern in patterns {
            if set.len() == Self::MAX_PATTERNS {
                return Err(ScopeError::TooManyPackages);
            }
            set.insert(PackagePattern::new(pattern.as_ref())?);
        }
        Self::from_patterns(set, case_sensitive)
    }

    fn from_patterns(
        patterns: BTreeSet<PackagePattern>,
        case_sensitive: bool,
    ) -> Result<Self, ScopeError> {
        if patterns.is_empty() {
            return Err(ScopeError::NoPackages);
        }
        let key = compiled::key(&patterns, case_sensitive);
        if let Some(matcher) = compiled::get(&key) {
            return Ok(Self {
                patterns,
                case_sensitive,
                matcher,
            });
        }
        let mut builder = GlobSetBuilder::new();
        for pattern in &patterns {
            builder.add(compile_one(pattern.as_str(), case_sensitive)?);
        }
        let matcher = builder.build().map_err(|e| ScopeError::InvalidGlob {
            pattern: String::new(),
            reason: e.kind().to_string(),
        })?;
        let matcher = Arc::new(matcher);
        compiled::put(key, &matcher);
        Ok(Self {
            patterns,
            case_sensitive,
            matcher,
        })
    }

    /// Whether every id `pattern` matches is provably matched by this set (see
    /// [`Scope::covers`]). The caller has checked that case-sensitivity does not widen.
    fn covers_pattern(&self, pattern: &PackagePattern, case_sensitive: bool) -> bool {
        let fold = |s: &str| {
            if self.case_sensitive && case_sensitive {
                s.to_owned()
            } else {
                s.to_ascii_lowercase()
            }
        };
        if pattern.is_literal() {
            // An exact id: covered if the parent's matcher matches it.
            return self.matches(pattern.as_str());
        }
        let child = fold(pattern.as_str());
        let child_prefix = literal_prefix(&child);
        self.patterns.iter().any(|parent| {
            let parent = fold(parent.as_str());
            // The same glob.
            if parent == child {
                return true;
            }
            // `prefix*` covers any pattern whose literal prefix starts with `prefix`.
            match parent.strip_suffix('*') {
                Some(prefix) if !prefix.contains(GLOB_META) => child_prefix.starts_with(prefix),
                _ => false,
            }
        })
    }

    /// Whether `package_id` is covered by one of the patterns.
    pub fn matches(&self, package_id: &str) -> bool {
        if self.case_sensitive {
            return self.matcher.is_match(package_id);
        }
        // Lowercase (ASCII only) on the stack for ids of a usual length.
        let mut buf = [0u8; LOWERCASE_BUF];
        match buf.get_mut(..package_id.len()) {
            Some(lower) => {
                lower.copy_from_slice(package_id.as_bytes());
                lower.make_ascii_lowercase();
                std::str::from_utf8(lower).is_ok_and(|id| self.matcher.is_match(id))
            }
            None => self.matcher.is_match(package_id.to_ascii_lowercase()),
        }
    }

    /// The patterns, sorted.
    pub fn patterns(&self) -> impl Iterator<Item = &PackagePattern> {
        self.patterns.iter()
    }

    /// Whether matching is case-sensitive.
    pub fn is_case_sensitive(&self) -> bool {
        self.case_sensitive
    }
}

impl PartialEq for PackageSet {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns && self.case_sensitive == other.case_sensitive
    }
}

impl Eq for PackageSet {}

impl fmt::Debug for PackageSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackageSet")
            .field("patterns", &self.patterns)
            .field("case_sensitive", &self.case_sensitive)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct PackageSetSpec {
    patterns: Vec<String>,
    #[serde(default)]
    case_sensitive: bool,
}

impl Serialize for PackageSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PackageSetSpec {
            patterns: self.patterns.iter().map(|p| p.0.clone()).collect(),
            case_sensitive: self.case_sensitive,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PackageSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = PackageSetSpec::deserialize(deserializer)?;
        PackageSet::build(spec.patterns, spec.case_sensitive).map_err(serde::de::Error::custom)
    }
}

/// The packages a token may act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Packages {
    /// Every package, present and future.
    Any,
    /// Only package ids matching these patterns, present and future.
    Only(PackageSet),
}

impl Packages {
    /// Only packages matching `patterns`, case-insensitively.
    ///
    /// # Errors
    /// As [`PackageSet::new`].
    pub fn only<I, S>(patterns: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        PackageSet::new(patterns).map(Packages::Only)
    }

    /// Whether `package_id` is covered.
    pub fn allows(&self, package_id: &str) -> bool {
        match self {
            Packages::Any => true,
            Packages::Only(set) => set.matches(package_id),
        }
    }
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
/// # Ok::<(), feedkey::ScopeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ScopeSpec")]
pub struct Scope {
    permissions: Permissions,
    feeds: Feeds,
    packages: Packages,
    networks: Networks,
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
        Scope::new(spec.permissions, spec.feeds, spec.packages)?.with_networks(spec.networks)
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

/// Which part of a scope refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutOfScope {
    Action(Permission),
    Feed,
    Package,
    PackageRequired,
    Network,
}

impl Scope {
    /// A checked scope.
    ///
    /// # Errors
    /// [`ScopeError::NoPermissions`] for an empty permission set. Feeds and packages are
    /// already checked by their own constructors.
    pub fn new(
        permissions: Permissions,
        feeds: Feeds,
        packages: Packages,
    ) -> Result<Self, ScopeError> {
        if permissions.is_empty() {
            return Err(ScopeError::NoPermissions);
        }
        feeds.validate()?;
        Ok(Self {
            permissions,
            feeds,
            packages,
            networks: Networks::Any,
        })
    }

    /// This scope, usable only from clients inside `networks`.
    ///
    /// # Errors
    /// [`ScopeError::NoNetworks`] or [`ScopeError::TooManyNetworks`] for a list built
    /// directly with `Networks::Only` (`Networks::only` checks its own).
    pub fn with_networks(mut self, networks: Networks) -> Result<Self, ScopeError> {
        networks.validate()?;
        self.networks = networks;
        Ok(self)
    }

    /// The client addresses the scope allows.
    pub fn networks(&self) -> &Networks {
        &self.networks
    }

    /// Whether the scope can push or unlist (the lifetime policy may cap such tokens
    /// more tightly).
    pub fn can_write(&self) -> bool {
        !self.permissions.is_subset_of(Permissions::READ_ONLY)
    }

    /// Everything, everywhere: the primary key's scope.
    pub fn full() -> Self {
        Self {
            permissions: Permissions::FULL,
            feeds: Feeds::Any,
            packages: Packages::Any,
            networks: Networks::Any,
        }
    }

    /// Read every package of every feed the account can reach.
    pub fn read_only() -> Self {
        Self {
            permissions: Permissions::READ_ONLY,
            feeds: Feeds::Any,
            packages: Packages::Any,
            networks: Networks::Any,
        }
    }

    /// The permissions.
    pub fn permissions(&self) -> Permissions {
        self.permissions
    }

    /// The feeds.
    pub fn feeds(&self) -> &Feeds {
        &self.feeds
    }

    /// The packages.
    pub fn packages(&self) -> &Packages {
        &self.packages
    }

    /// Whether every request `child` allows is provably allowed by `self`: permissions,
    /// feeds and networks are subsets, and each child package pattern is an id the
    /// parent's patterns match, a pattern identical to one of the parent's, or a pattern
    /// whose literal prefix extends the literal prefix of a parent pattern of the form
    /// `prefix*`. Anything else is refused rather than guessed.
    ///
    /// # Errors
    /// [`NotCovered`] naming the first part that could not be proven.
    pub fn covers(&self, child: &Scope) -> Result<(), NotCovered> {
        if !child.permissions.is_subset_of(self.permissions) {
            return Err(NotCovered::Permissions);
        }
        if !child.feeds.is_subset_of(&self.feeds) {
            return Err(NotCovered::Feeds);
        }
        if !child.networks.is_subset_of(&self.networks) {
            return Err(NotCovered::Networks);
        }
        match (&self.packages, &child.packages) {
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

    /// Whether this scope covers `action` on `target`, and if not, which part refused.
    pub(crate) fn check(
        &self,
        action: Action,
        target: &Target<'_>,
        client: Option<IpAddr>,
    ) -> Result<(), OutOfScope> {
        if !self.networks.allows(client) {
            return Err(OutOfScope::Network);
        }
        let needed = Self::required(action, target).ok_or(OutOfScope::PackageRequired)?;
        if !self.permissions.contains(needed) {
            return Err(OutOfScope::Action(needed));
        }
        if !self.feeds.allows(target.feed_name()) {
            return Err(OutOfScope::Feed);
        }
        match (&self.packages, target.package_id()) {
            // A token for every package covers the feed and each package in it.
            (Packages::Any, _) => Ok(()),
            // A token for some packages covers each one its patterns match.
            (Packages::Only(set), Some(id)) if set.matches(id) => Ok(()),
            (Packages::Only(_), Some(_)) => Err(OutOfScope::Package),
            // A token for some packages cannot read the whole feed's listing: it would
            // show packages outside its scope. Ask per package instead.
            (Packages::Only(_), None) => Err(OutOfScope::Package),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(perms: Permissions, feeds: Feeds, packages: Packages) -> Scope {
        Scope::new(perms, feeds, packages).unwrap()
    }

    #[test]
    fn the_evaluator_table() {
        let ci = scope(
            Permissions::WRITE_ONLY,
            Feeds::only(["ci"]).unwrap(),
            Packages::only(["fabrikam.service.*", "Contoso.Core"]).unwrap(),
        );
        let reader = Scope::read_only();
        let pkg = |id| Target::package("ci", id);
        let new = |id| Target::new_package("ci", id);
        let rows: Vec<(&Scope, Action, Target<'_>, Result<(), OutOfScope>)> = vec![
            // A write-only key pushes a new package its glob covers, in any case.
            (&ci, Action::Push, new("Fabrikam.Service.Framework"), Ok(())),
            // ... and a new version of an exact id, case-insensitively.
            (&ci, Action::Push, pkg("contoso.core"), Ok(())),
            // ... but cannot read, even a package it may push.
            (
                &ci,
                Action::Read,
                pkg("contoso.core"),
                Err(OutOfScope::Action(Permission::Read)),
            ),
            // ... nor unlist.
            (
                &ci,
                Action::Unlist,
                pkg("contoso.core"),
                Err(OutOfScope::Action(Permission::Unlist)),
            ),
            // ... nor push to another feed.
            (
                &ci,
                Action::Push,
                Target::package("release", "contoso.core"),
                Err(OutOfScope::Feed),
            ),
            // ... nor push a package outside its globs.
            (
                &ci,
                Action::Push,
                new("Fabrikam.Other"),
                Err(OutOfScope::Package),
            ),
            // The glob's dot is literal: fabrikam.service.* does not cover fabrikam.services.
            (
                &ci,
                Action::Push,
                new("fabrikam.servicex.a"),
                Err(OutOfScope::Package),
            ),
            // Push with no package named is refused whatever the scope.
            (
                &ci,
                Action::Push,
                Target::feed("ci"),
                Err(OutOfScope::PackageRequired),
            ),
            // A read-only key reads the listing and any package.
            (&reader, Action::Read, Target::feed("ci"), Ok(())),
            (&reader, Action::Read, pkg("anything"), Ok(())),
            // ... and cannot push either kind.
            (
                &reader,
                Action::Push,
                new("x"),
                Err(OutOfScope::Action(Permission::PushNew)),
            ),
            (
                &reader,
                Action::Push,
                pkg("x"),
                Err(OutOfScope::Action(Permission::PushVersion)),
            ),
        ];
        for (scope, action, target, want) in rows {
            assert_eq!(
                scope.check(action, &target, None),
                want,
                "{action:?} {target:?}"
            );
        }
    }

    #[test]
    fn push_version_only_cannot_create_packages() {
        let s = scope(Permissions::PUSH_VERSION_ONLY, Feeds::Any, Packages::Any);
        assert!(
            s.check(Action::Push, &Target::package("f", "a"), None)
                .is_ok()
        );
        assert_eq!(
            s.check(Action::Push, &Target::new_package("f", "a"), None),
            Err(OutOfScope::Action(Permission::PushNew))
        );
    }

    #[test]
    fn a_package_limited_reader_cannot_list_the_feed() {
        let s = scope(
            Permissions::READ_ONLY,
            Feeds::Any,
            Packages::only(["a.*"]).unwrap(),
        );
        assert!(
            s.check(Action::Read, &Target::package("f", "a.b"), None)
                .is_ok()
        );
        assert_eq!(
            s.check(Action::Read, &Target::feed("f"), None),
            Err(OutOfScope::Package)
        );
    }

    #[test]
    fn case_folding_is_ascii_only() {
        let set = PackageSet::new(["K*", "i*"]).unwrap();
        assert!(set.matches("kontoso"));
        // The Kelvin sign and the dotted capital I fold to k and i only under Unicode
        // rules; an ASCII pattern does not cover them.
        assert!(!set.matches("\u{212A}ontoso"));
        assert!(!set.matches("\u{130}x"));
        // Long ids take the allocating path and fold the same way.
        let long = format!("K{}", "x".repeat(LOWERCASE_BUF + 10));
        assert!(set.matches(&long));
    }

    #[test]
    fn covers_proves_only_what_it_can() {
        let parent = Scope::new(
            Permissions::WRITE_ONLY,
            Feeds::Any,
            Packages::only(["Fabrikam.*", "Contoso.Core", "a?c"]).unwrap(),
        )
        .unwrap();
        let child = |pkgs: &[&str]| {
            Scope::new(
                Permissions::PUSH_VERSION_ONLY,
                Feeds::Any,
                Packages::only(pkgs).unwrap(),
            )
            .unwrap()
        };
        let rows: Vec<(&[&str], bool)> = vec![
            // A longer literal prefix under the prefix glob.
            (&["fabrikam.service.*"], true),
            (&["Fabrikam.Service.?"], true),
            // An exact id the parent's globs match.
            (&["FABRIKAM.WEB"], true),
            (&["contoso.core"], true),
            // The same glob.
            (&["a?c"], true),
            (&["Fabrikam.*"], true),
            // Shorter prefixes, other globs, and anything unprovable.
            (&["Fab*"], false),
            (&["*.Core"], false),
            (&["Contoso.*"], false),
            (&["a*c"], false),
            (&["Fabrikam.Web", "Other"], false),
        ];
        for (pkgs, ok) in rows {
            assert_eq!(parent.covers(&child(pkgs)).is_ok(), ok, "{pkgs:?}");
        }
        // A case-insensitive child cannot sit under a case-sensitive parent.
        let exact = Scope::new(
            Permissions::WRITE_ONLY,
            Feeds::Any,
            Packages::Only(PackageSet::case_sensitive(["Fabrikam.*"]).unwrap()),
        )
        .unwrap();
        assert!(exact.covers(&child(&["Fabrikam.Web"])).is_err());
        let exact_child = Scope::new(
            Permissions::WRITE_ONLY,
            Feeds::Any,
            Packages::Only(PackageSet::case_sensitive(["Fabrikam.Web"]).unwrap()),
        )
        .unwrap();
        assert!(exact.covers(&exact_child).is_ok());
    }

    #[test]
    fn case_sensitive_sets_match_exactly() {
        let set = PackageSet::case_sensitive(["Acme.*"]).unwrap();
        assert!(set.matches("Acme.Util"));
        assert!(!set.matches("acme.util"));
        let set = PackageSet::new(["Acme.*"]).unwrap();
        assert!(set.matches("ACME.UTIL"));
    }

    #[test]
    fn bad_parts_are_refused_when_built() {
        assert_eq!(
            Scope::new(Permissions::NONE, Feeds::Any, Packages::Any),
            Err(ScopeError::NoPermissions)
        );
        assert_eq!(Feeds::only(Vec::<String>::new()), Err(ScopeError::NoFeeds));
        assert!(matches!(
            Feeds::only(["a b"]),
            Err(ScopeError::InvalidFeedName(_))
        ));
        assert_eq!(
            Packages::only(Vec::<String>::new()),
            Err(ScopeError::NoPackages)
        );
        assert!(matches!(
            Packages::only(["a[b"]),
            Err(ScopeError::InvalidGlob { .. })
        ));
        assert!(matches!(
            Packages::only([""]),
            Err(ScopeError::InvalidPattern(_))
        ));
        assert!(matches!(
            Packages::only(["x".repeat(PackagePattern::MAX_LEN + 1)]),
            Err(ScopeError::InvalidPattern(_))
        ));
        let too_many: Vec<String> = (0..=PackageSet::MAX_PATTERNS)
            .map(|i| format!("p{i}"))
            .collect();
        assert_eq!(Packages::only(too_many), Err(ScopeError::TooManyPackages));
        let too_many: Vec<String> = (0..=Feeds::MAX_FEEDS).map(|i| format!("f{i}")).collect();
        assert_eq!(Feeds::only(too_many), Err(ScopeError::TooManyFeeds));
    }

    #[test]
    fn lists_built_by_hand_are_checked_too() {
        assert_eq!(
            Scope::new(
                Permissions::READ_ONLY,
                Feeds::Only(BTreeSet::new()),
                Packages::Any
            ),
            Err(ScopeError::NoFeeds)
        );
        assert_eq!(
            Scope::read_only().with_networks(Networks::Only(vec![])),
            Err(ScopeError::NoNetworks)
        );
    }

    #[test]
    fn feed_subsets() {
        let ab = Feeds::only(["a", "b"]).unwrap();
        let a = Feeds::only(["a"]).unwrap();
        assert!(a.is_subset_of(&ab));
        assert!(!ab.is_subset_of(&a));
        assert!(ab.is_subset_of(&Feeds::Any));
        assert!(!Feeds::Any.is_subset_of(&ab));
    }

    #[test]
    fn scopes_round_trip_through_serde_and_are_checked_on_the_way_in() {
        let s = scope(
            Permissions::WRITE_ONLY,
            Feeds::only(["ci"]).unwrap(),
            Packages::only(["fabrikam.service.*"]).unwrap(),
        );
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"permissions":["push-new","push-version"],"feeds":{"only":["ci"]},"packages":{"only":{"patterns":["fabrikam.service.*"],"case_sensitive":false}},"networks":"any"}"#
        );
        let back: Scope = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert!(back.packages().allows("Fabrikam.Service.X"));
        let bad = r#"{"permissions":[],"feeds":"any","packages":"any"}"#;
        assert!(serde_json::from_str::<Scope>(bad).is_err());
        let bad = r#"{"permissions":["read"],"feeds":{"only":[]},"packages":"any"}"#;
        assert!(serde_json::from_str::<Scope>(bad).is_err());
        let bad =
            r#"{"permissions":["read"],"feeds":"any","packages":{"only":{"patterns":["a{"]}}}"#;
        assert!(serde_json::from_str::<Scope>(bad).is_err());
    }
}
