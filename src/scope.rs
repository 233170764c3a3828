//! Scopes: what a token may do (permissions), where (feeds) and to what (packages).
//!
//! Every part is checked when it is built, so matching cannot fail later: an empty
//! permission set, an empty feed list, an empty package list or a glob that does not
//! compile is a [`ScopeError`] at issue or edit time, never a surprise in `authorize`.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

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
/// A pattern is 1 to [`PackagePattern::MAX_LEN`] printable ASCII characters (`!` to `~`:
/// package ids are ASCII, see [`PackageSet`]). It matches a whole id:
///
/// - `*` any run of characters, `/` included (`**` is the same as `*`);
/// - `?` exactly one character;
/// - `[abc]`, `[a-z]` one character of the class, `[!abc]` or `[^abc]` one character not
///   in it; `]` first or `-` first or last is a member, `\` is a member inside a class;
/// - `{a,b}` one of the alternatives, which may nest; an empty alternative is dropped
///   (`x{a,}` matches `xa` only, and `x{}` is `x`);
/// - `\` makes the next character literal (`\*` matches a star);
/// - any other character itself. `,` is itself outside `{…}`.
///
/// A pattern also covers package ids that do not exist yet. Whether case matters is a
/// property of the [`PackageSet`] that holds the pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PackagePattern(String);

impl PackagePattern {
    /// The longest pattern accepted.
    pub const MAX_LEN: usize = 256;

    /// A checked pattern.
    ///
    /// # Errors
    /// [`ScopeError::InvalidPattern`] for an empty or over-long pattern or one with a
    /// character other than printable ASCII, and [`ScopeError::InvalidGlob`] for one that
    /// does not compile.
    pub fn new(pattern: &str) -> Result<Self, ScopeError> {
        if pattern.is_empty()
            || pattern.len() > Self::MAX_LEN
            || !pattern.bytes().all(|b| b.is_ascii_graphic())
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

/// Compiles one pattern into globset's syntax, or `None` when it can match no id.
///
/// feedkey parses the pattern itself ([`glob`]) and hands globset a canonical spelling:
/// every class written out as the exact set of characters it admits, and no `**`
/// (globset reads `**/` as "any directories, or none", which would let `**/core` match
/// `core`). A case-insensitive pattern is compiled for lowercased ids: literals are
/// lowercased and each class member is folded on its own, so `[0-Z]` admits `0` to `@`
/// and both cases of each letter but not the ``[\]^_` `` that lie between `Z` and `z`, and
/// `[!a-z]` excludes `A` to `Z` too. Ids are lowercased before matching; globset keeps its
/// fast literal, prefix and suffix strategies only for case-sensitive globs.
fn compile_one(pattern: &str, case_sensitive: bool) -> Result<Option<globset::Glob>, ScopeError> {
    let fold = !case_sensitive;
    let invalid = |reason: String| ScopeError::InvalidGlob {
        pattern: truncate(pattern),
        reason,
    };
    let nodes = glob::parse(pattern, fold).map_err(invalid)?;
    let Some(source) = glob::to_globset(&nodes, fold) else {
        return Ok(None);
    };
    GlobBuilder::new(&source)
        .literal_separator(false)
        .backslash_escape(true)
        .empty_alternates(false)
        .build()
        .map(Some)
        .map_err(|e| invalid(e.kind().to_string()))
}

/// The characters that make a pattern a glob.
const GLOB_META: [char; 7] = ['*', '?', '[', ']', '{', '}', '\\'];

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

/// Package patterns as feedkey reads them: parsed here, matched by globset.
///
/// A pattern becomes a list of [`Node`]s in which every single-character element (a
/// literal, `?`, a class) is the exact set of id characters it admits, with the set's
/// case rule already applied: in a case-insensitive set each member of a class is folded
/// on its own, never the end points of a range. That list is what the pattern means; it
/// is written back out in globset's syntax for matching ([`to_globset`]) and compared
/// element by element to prove one pattern inside another ([`covers`]).
mod glob {
    /// A set of id characters: bit `c` stands for the ASCII character `c`.
    pub(super) type Chars = u128;

    /// Every character a package id may hold: printable ASCII, `!` to `~`.
    pub(super) const ID_CHARS: Chars = span(b'!', b'~');
    const UPPER: Chars = span(b'A', b'Z');
    const LOWER: Chars = span(b'a', b'z');

    /// The characters `lo..=hi` (both ASCII, `lo <= hi`).
    const fn span(lo: u8, hi: u8) -> Chars {
        (Chars::MAX >> (127 - hi as u32)) & (Chars::MAX << lo as u32)
    }

    /// The set plus the other case of each letter in it.
    fn with_both_cases(set: Chars) -> Chars {
        set | ((set & UPPER) << 32) | ((set & LOWER) >> 32)
    }

    /// One element of a pattern.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(super) enum Node {
        /// `*`: any run of characters (a run of stars is one star).
        Star,
        /// One character from the set: a literal, `?` or a class. An empty set (such as
        /// `[!!-~]`) matches nothing.
        One(Chars),
        /// `{a,b}`: one of the alternatives, none of them empty (an empty one is dropped,
        /// and an alternation with no other is no element at all).
        Alt(Vec<Vec<Node>>),
    }

    /// How a run of a pattern ended.
    enum End {
        Eof,
        Comma,
        Close,
    }

    struct Parser<'a> {
        chars: std::iter::Peekable<std::str::Chars<'a>>,
        fold: bool,
    }

    /// The pattern's elements, with literals and class members folded when `fold`. The
    /// syntax, and every error, is globset's (with backslash escapes, `*` crossing `/`),
    /// so a pattern globset compiled before still means what it said.
    ///
    /// # Errors
    /// What is wrong with the pattern, in globset's words.
    pub(super) fn parse(pattern: &str, fold: bool) -> Result<Vec<Node>, String> {
        let mut parser = Parser {
            chars: pattern.chars().peekable(),
            fold,
        };
        match parser.run(0)? {
            (nodes, End::Eof) => Ok(nodes),
            // A top-level run ends only at the end of the pattern.
            (_, End::Comma | End::Close) => Err(UNOPENED.to_owned()),
        }
    }

    const UNOPENED: &str = "unopened alternate group; missing '{' (maybe escape '}' with '[}]'?)";
    const UNCLOSED: &str = "unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)";

    impl Parser<'_> {
        /// The characters `c` stands for as a literal.
        fn literal(&self, c: char) -> Result<Chars, String> {
            let set = ascii(c)?;
            Ok(if self.fold { with_both_cases(set) } else { set })
        }

        /// A run of elements, up to the end of the pattern or, inside `depth` braces, up
        /// to the `,` or `}` that ends an alternative.
        fn run(&mut self, depth: usize) -> Result<(Vec<Node>, End), String> {
            let mut nodes = Vec::new();
            loop {
                let Some(c) = self.chars.next() else {
                    if depth > 0 {
                        return Err(UNCLOSED.to_owned());
                    }
                    return Ok((nodes, End::Eof));
                };
                let node = match c {
                    '?' => Node::One(ID_CHARS),
                    '*' if nodes.last() == Some(&Node::Star) => continue,
                    '*' => Node::Star,
                    '[' => self.class()?,
                    '{' => match self.alternation(depth + 1)? {
                        Some(alt) => alt,
                        None => continue,
                    },
                    '}' if depth > 0 => return Ok((nodes, End::Close)),
                    '}' => return Err(UNOPENED.to_owned()),
                    ',' if depth > 0 => return Ok((nodes, End::Comma)),
                    '\\' => match self.chars.next() {
                        Some(c) => Node::One(self.literal(c)?),
                        None => return Err("dangling '\\'".to_owned()),
                    },
                    c => Node::One(self.literal(c)?),
                };
                nodes.push(node);
            }
        }

        /// The alternatives after a `{`, or `None` when all of them are empty.
        fn alternation(&mut self, depth: usize) -> Result<Option<Node>, String> {
            let mut alternatives = Vec::new();
            loop {
                let (nodes, end) = self.run(depth)?;
                if !nodes.is_empty() {
                    alternatives.push(nodes);
                }
                match end {
                    End::Comma => {}
                    End::Close => break,
                    End::Eof => return Err(UNCLOSED.to_owned()),
                }
            }
            Ok((!alternatives.is_empty()).then_some(Node::Alt(alternatives)))
        }

        /// The class after a `[`, as globset reads it: `!` or `^` first negates; `]`
        /// first and `-` first or last are members; `a-c` is a range, and a `-` after a
        /// range extends it (`[a-b-c]` is `[a-c]`); `\` is a member.
        fn class(&mut self) -> Result<Node, String> {
            let negated = matches!(self.chars.peek(), Some('!' | '^'));
            if negated {
                self.chars.next();
            }
            let mut ranges: Vec<(char, char)> = Vec::new();
            let mut first = true;
            let mut in_range = false;
            loop {
                let Some(c) = self.chars.next() else {
                    return Err("unclosed character class; missing ']'".to_owned());
                };
                match (c, ranges.last_mut()) {
                    (']', _) if !first => break,
                    ('-', _) if !first && !in_range => in_range = true,
                    (c, Some(last)) if in_range => {
                        if c < last.0 {
                            return Err(format!("invalid range; {:?} > {c:?}", last.0));
                        }
                        last.1 = c;
                        in_range = false;
                    }
                    (c, _) => ranges.push((c, c)),
                }
                first = false;
            }
            if in_range {
                ranges.push(('-', '-'));
            }
            let mut members: Chars = 0;
            for (lo, hi) in ranges {
                let (lo, hi) = (ascii_byte(lo)?, ascii_byte(hi)?);
                members |= span(lo, hi);
            }
            // Fold each member, so `[0-Z]` holds `a` to `z` but not `[`..`` ` ``.
            if self.fold {
                members = with_both_cases(members);
            }
            Ok(Node::One(if negated {
                ID_CHARS & !members
            } else {
                ID_CHARS & members
            }))
        }
    }

    fn ascii_byte(c: char) -> Result<u8, String> {
        u8::try_from(c)
            .ok()
            .filter(u8::is_ascii_graphic)
            .ok_or_else(|| format!("{c:?} is not a printable ASCII character"))
    }

    fn ascii(c: char) -> Result<Chars, String> {
        ascii_byte(c).map(|b| 1 << b)
    }

    /// The pattern in globset's syntax, for ids that are lowercased first when `fold`,
    /// or `None` when it can match no id.
    pub(super) fn to_globset(nodes: &[Node], fold: bool) -> Option<String> {
        let mut out = String::new();
        write_run(nodes, fold, &mut out).then_some(out)
    }

    /// Writes the run; false when it can match nothing.
    fn write_run(nodes: &[Node], fold: bool, out: &mut String) -> bool {
        nodes.iter().all(|node| write_node(node, fold, out))
    }

    fn write_node(node: &Node, fold: bool, out: &mut String) -> bool {
        match node {
            // Never two in a row: globset gives `**` a path meaning.
            Node::Star => out.push('*'),
            Node::One(set) => {
                // A folded set sees lowercased ids only.
                let (set, any) = if fold {
                    (set & !UPPER, ID_CHARS & !UPPER)
                } else {
                    (*set, ID_CHARS)
                };
                match set.count_ones() {
                    0 => return false,
                    1 => write_literal(set.trailing_zeros(), out),
                    _ if set == any => out.push('?'),
                    _ => write_class(set, out),
                }
            }
            Node::Alt(alternatives) => {
                let written: Vec<String> = alternatives
                    .iter()
                    .filter_map(|alt| {
                        let mut text = String::new();
                        write_run(alt, fold, &mut text).then_some(text)
                    })
                    .collect();
                if written.is_empty() {
                    return false;
                }
                out.push('{');
                out.push_str(&written.join(","));
                out.push('}');
            }
        }
        true
    }

    fn char_of(code: u32) -> char {
        char::from_u32(code).unwrap_or('\u{FFFD}')
    }

    fn write_literal(code: u32, out: &mut String) {
        let c = char_of(code);
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\' | ',') {
            out.push('\\');
        }
        out.push(c);
    }

    /// Writes a class of two or more members so that globset reads exactly `set`: `]`
    /// goes first, `-` first or last, and no member that starts the class is `!` or `^`
    /// (which would negate it). Inside a class globset has no escapes.
    fn write_class(set: Chars, out: &mut String) {
        let close = set & (1 << b']') != 0;
        let dash = set & (1 << b'-') != 0;
        let mut ranges = ranges_of(set & !(1 << b']') & !(1 << b'-'));
        let mut head = String::new();
        let mut tail = String::new();
        if close {
            head.push(']');
            if dash {
                tail.push('-');
            }
        } else if dash {
            head.push('-');
        } else if let Some(i) = ranges.iter().position(|&(lo, _)| !is_negation(lo)) {
            // Start with a range that cannot be read as a negation.
            ranges.swap(0, i);
        } else if let Some(i) = ranges.iter().position(|&(lo, hi)| lo < hi) {
            // Every range starts with `!` or `^`: start with the rest of one, and write
            // its first character last.
            if let Some(range) = ranges.get_mut(i) {
                tail.push(char_of(range.0));
                range.0 += 1;
                ranges.swap(0, i);
            }
        } else {
            // Only `!` and `^`: an alternation says it.
            out.push_str("{!,^}");
            return;
        }
        out.push('[');
        out.push_str(&head);
        for (lo, hi) in ranges {
            out.push(char_of(lo));
            if hi > lo {
                if hi > lo + 1 {
                    out.push('-');
                }
                out.push(char_of(hi));
            }
        }
        out.push_str(&tail);
        out.push(']');
    }

    fn is_negation(code: u32) -> bool {
        code == u32::from(b'!') || code == u32::from(b'^')
    }

    /// The set as maximal runs `(lo, hi)` of character codes, in order.
    fn ranges_of(mut set: Chars) -> Vec<(u32, u32)> {
        let mut ranges = Vec::new();
        while set != 0 {
            let lo = set.trailing_zeros();
            let run = (set >> lo).trailing_ones();
            ranges.push((lo, lo + run - 1));
            set &= !(Chars::MAX >> (128 - run) << lo);
        }
        ranges
    }

    /// The one id the pattern stands for (lowercased when `fold`), if it has no `*`, no
    /// alternation and every element admits one character up to case.
    pub(super) fn as_id(nodes: &[Node], fold: bool) -> Option<String> {
        nodes
            .iter()
            .map(|node| match node {
                Node::One(set) => {
                    let set = if fold { set & !UPPER } else { *set };
                    (set.count_ones() == 1).then(|| char_of(set.trailing_zeros()))
                }
                Node::Star | Node::Alt(_) => None,
            })
            .collect()
    }

    /// Whether every id `child` matches is matched by `parent`, proven element by
    /// element: each child element admits no more than the parent's at the same place
    /// (a set within the parent's set, alternatives each within one of the parent's, any
    /// element under a `*`), and a parent that ends in `*` takes whatever rest the child
    /// has. Both lists carry their own case rule, so a case-sensitive child is compared
    /// with what a folded parent really admits. Anything else is `false`, never a guess.
    pub(super) fn covers(parent: &[Node], child: &[Node]) -> bool {
        match (parent, child) {
            // A trailing `*` matches whatever the rest of the child does.
            ([Node::Star], _) => true,
            ([], []) => true,
            ([p, parent @ ..], [c, child @ ..]) => node_covers(p, c) && covers(parent, child),
            _ => false,
        }
    }

    fn node_covers(parent: &Node, child: &Node) -> bool {
        match (parent, child) {
            // `*` matches any run, so any one element of the child.
            (Node::Star, _) => true,
            (Node::One(p), Node::One(c)) => c & !p == 0,
            (Node::Alt(ps), Node::Alt(cs)) => cs.iter().all(|c| ps.iter().any(|p| covers(p, c))),
            _ => false,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A small deterministic generator (xorshift), so the tests need no crate.
        struct Rng(u64);
        impl Rng {
            fn next(&mut self) -> u64 {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0
            }
            fn below(&mut self, n: usize) -> usize {
                usize::try_from(self.next() % n as u64).unwrap()
            }
            fn pick(&mut self, from: &[u8]) -> char {
                char::from(from[self.below(from.len())])
            }
        }

        fn globset(source: &str) -> globset::GlobMatcher {
            globset::GlobBuilder::new(source)
                .literal_separator(false)
                .backslash_escape(true)
                .empty_alternates(false)
                .build()
                .unwrap()
                .compile_matcher()
        }

        fn members(set: Chars) -> Vec<char> {
            (0u8..128)
                .filter(|&b| set & (1 << b) != 0)
                .map(char::from)
                .collect()
        }

        #[test]
        fn every_class_is_written_so_globset_reads_exactly_its_members() {
            let special = b"!^]-[\\,{}*?a";
            let mut sets: Vec<Chars> = Vec::new();
            for &a in special {
                for &b in special {
                    for &c in b"!^-]x" {
                        sets.push((1 << a) | (1 << b) | (1 << c));
                    }
                    sets.push((1 << a) | (1 << b));
                }
            }
            sets.push(ID_CHARS);
            sets.push(ID_CHARS & !UPPER);
            sets.push(span(b'!', b'#') | span(b'^', b'_'));
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
            for _ in 0..2000 {
                let mut set = u128::from(rng.next()) << 64 | u128::from(rng.next());
                // Sparse and dense sets both.
                if rng.below(2) == 0 {
                    set &= u128::from(rng.next()) << 64 | u128::from(rng.next());
                }
                sets.push(set & ID_CHARS);
            }
            for set in sets {
                if set.count_ones() < 2 {
                    continue;
                }
                let mut text = String::new();
                write_class(set, &mut text);
                let matcher = globset(&text);
                for b in b'!'..=b'~' {
                    let c = char::from(b);
                    assert_eq!(
                        matcher.is_match(c.to_string()),
                        set & (1 << b) != 0,
                        "{text:?} for {:?} and {c:?}",
                        members(set)
                    );
                }
            }
        }

        /// Random patterns over the characters that mean something to a glob.
        fn random_pattern(rng: &mut Rng) -> String {
            let alphabet = b"aBz*?[]!^-{},\\/.";
            (0..1 + rng.below(10)).map(|_| rng.pick(alphabet)).collect()
        }

        #[test]
        fn the_parser_accepts_what_globset_accepts() {
            let mut rng = Rng(7);
            for _ in 0..20_000 {
                let pattern = random_pattern(&mut rng);
                let globset_ok = globset::GlobBuilder::new(&pattern)
                    .literal_separator(false)
                    .backslash_escape(true)
                    .empty_alternates(false)
                    .build()
                    .is_ok();
                assert_eq!(parse(&pattern, false).is_ok(), globset_ok, "{pattern:?}");
            }
        }

        #[test]
        fn case_sensitive_patterns_mean_what_globset_made_of_them_but_for_double_stars() {
            let mut rng = Rng(11);
            let id_alphabet = b"aBz]!^-{},\\/.";
            let mut compared = 0;
            for _ in 0..20_000 {
                let pattern = random_pattern(&mut rng);
                // globset gives `**` a path meaning; feedkey reads it as `*`.
                if pattern.contains("**") {
                    continue;
                }
                let Ok(nodes) = parse(&pattern, false) else {
                    continue;
                };
                let before = globset(&pattern);
                let after = to_globset(&nodes, false).map(|source| globset(&source));
                for _ in 0..20 {
                    let id: String = (0..rng.below(8)).map(|_| rng.pick(id_alphabet)).collect();
                    // `..` and ids ending in `/..` are a path step to globset.
                    if id == ".." || id.ends_with("/..") {
                        continue;
                    }
                    let now = after.as_ref().is_some_and(|m| m.is_match(&id));
                    assert_eq!(now, before.is_match(&id), "{pattern:?} on {id:?}");
                    compared += 1;
                }
            }
            assert!(compared > 100_000);
        }

        #[test]
        fn one_element_within_another_is_proven_and_nothing_else() {
            let rows: &[(&str, bool, &str, bool, bool)] = &[
                // (parent, parent folded, child, child folded, covered)
                ("x[!a-z]", true, "x[!a-z]", false, false),
                ("x[!a-z]", true, "x[!a-z]", true, true),
                ("x[!a-z]", false, "x[!a-zA-Z]", false, true),
                ("acme.[0-Z]", true, "acme.[0-z]", false, false),
                ("acme.[0-Z]", true, "acme.[0-Z]", false, true),
                ("acme.[a-z]", false, "acme.[b-y]", false, true),
                ("acme.[a-z]", false, "acme.?", false, false),
                ("acme.*", true, "ACME.{a,b*}", true, true),
                ("acme.{a,b}*", true, "acme.{b,a}x", true, true),
                ("acme.{a,b}", true, "acme.{a,c}", true, false),
                ("a*b", true, "a?b", true, true),
                ("a*b", true, "a??b", true, false),
                ("*", true, "**/x", false, true),
            ];
            for &(parent, parent_fold, child, child_fold, covered) in rows {
                let parent_nodes = parse(parent, parent_fold).unwrap();
                let child_nodes = parse(child, child_fold).unwrap();
                assert_eq!(
                    covers(&parent_nodes, &child_nodes),
                    covered,
                    "{parent:?} (folded: {parent_fold}) over {child:?} (folded: {child_fold})"
                );
            }
        }

        #[test]
        fn deep_alternations_are_compared_quickly() {
            let deep = format!("{}z{}", "{a,".repeat(60), "}".repeat(60));
            let nodes = parse(&deep, true).unwrap();
            assert!(covers(&nodes, &nodes));
            let wide = format!("{{{}}}", vec!["{a,b}"; 40].join(","));
            let nodes = parse(&wide, true).unwrap();
            assert!(covers(&nodes, &nodes));
        }
    }
}

/// Whether every byte is printable ASCII (`!` to `~`), in one pass without an early exit,
/// so that it vectorizes.
fn all_printable(id: &[u8]) -> bool {
    id.iter()
        .fold(0u8, |bad, &b| bad | u8::from(!b.is_ascii_graphic()))
        == 0
}

/// Package ids up to this length are lowercased without allocating.
const LOWERCASE_BUF: usize = 256;

/// A non-empty set of package patterns ([`PackagePattern`]), compiled once into one
/// matcher.
///
/// **Package ids are printable ASCII** (`!` to `~`): npm's and cargo's naming rules allow
/// nothing else. An id with any other character (a space, a control character, anything
/// non-ASCII) matches no pattern, and patterns themselves are printable ASCII, so `?` and
/// each class match exactly one character of the id. NuGet allows Unicode letters in ids
/// and compares them ignoring case by Unicode rules; rather than guess which spellings a
/// registry takes for the same package, feedkey matches none of them.
///
/// **Case.** A set built with [`PackageSet::new`] ignores ASCII case in the ordinary
/// sense: the id and each literal of the pattern are compared without case, and each
/// member of a class is folded on its own, never the end points of a range. `[0-Z]`
/// admits `0` to `9`, `:` to `@` and every letter in either case, but not the
/// ``[\]^_` `` between `Z` and `z`; `[!a-z]` admits no letter at all. A pattern never
/// matches an id that the same pattern, matched without case this way, does not. Sets
/// built with [`PackageSet::case_sensitive`] compare exactly.
///
/// ```
/// use feedkey::PackageSet;
///
/// let set = PackageSet::new(["acme.[0-Z]", "x[!a-z]"])?;
/// assert!(set.matches("ACME.q"));
/// assert!(!set.matches("acme._")); // `_` lies between `Z` and `z`, not in `[0-Z]`
/// assert!(!set.matches("XA")); // `A` is a letter, which `[!a-z]` refuses in any case
/// assert!(!set.matches("acme.\u{df}")); // not ASCII: matches nothing
/// # Ok::<(), feedkey::ScopeError>(())
/// ```
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
            // A pattern that can match no id (such as `[!!-~]`) adds nothing.
            if let Some(glob) = compile_one(pattern.as_str(), case_sensitive)? {
                builder.add(glob);
            }
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

    /// Whether every id `pattern` matches (under `case_sensitive`) is provably matched by
    /// this set (see [`Scope::covers`]). The caller has checked that case-sensitivity does
    /// not widen.
    fn covers_pattern(&self, pattern: &PackagePattern, case_sensitive: bool) -> bool {
        let Ok(child) = glob::parse(pattern.as_str(), !case_sensitive) else {
            return false;
        };
        // One id, up to case (escapes and one-member classes allowed): covered if this
        // set matches it. A folded child's id is lowercased; then this set is folded too.
        if let Some(id) = glob::as_id(&child, !case_sensitive) {
            return self.matches(&id);
        }
        self.patterns.iter().any(|parent| {
            glob::parse(parent.as_str(), !self.case_sensitive)
                .is_ok_and(|parent| glob::covers(&parent, &child))
        })
    }

    /// Whether `package_id` is covered by one of the patterns. An id that is not all
    /// printable ASCII is covered by none (see [`PackageSet`]).
    pub fn matches(&self, package_id: &str) -> bool {
        let id = package_id.as_bytes();
        if self.case_sensitive {
            return all_printable(id)
                && self.matcher.is_match_candidate(&Candidate::from_bytes(id));
        }
        // Lowercase (ASCII only) on the stack for ids of a usual length.
        let mut buf = [0u8; LOWERCASE_BUF];
        let mut long;
        let lower: &mut [u8] = match buf.get_mut(..id.len()) {
            Some(lower) => {
                lower.copy_from_slice(id);
                lower
            }
            None => {
                long = id.to_vec();
                &mut long
            }
        };
        // One pass, without an early exit, so that it vectorizes.
        let mut bad = 0u8;
        for b in lower.iter_mut() {
            bad |= u8::from(!b.is_ascii_graphic());
            b.make_ascii_lowercase();
        }
        bad == 0
            && self
                .matcher
                .is_match_candidate(&Candidate::from_bytes(lower))
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
    /// The client address is not looked at here: where a token may act from is one rule,
    /// for its own networks and a parent's, in [`crate::liveness::may_act_from`].
    pub(crate) fn check(&self, action: Action, target: &Target<'_>) -> Result<(), OutOfScope> {
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
            assert_eq!(scope.check(action, &target), want, "{action:?} {target:?}");
        }
    }

    #[test]
    fn push_version_only_cannot_create_packages() {
        let s = scope(Permissions::PUSH_VERSION_ONLY, Feeds::Any, Packages::Any);
        assert!(s.check(Action::Push, &Target::package("f", "a")).is_ok());
        assert_eq!(
            s.check(Action::Push, &Target::new_package("f", "a")),
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
        assert!(s.check(Action::Read, &Target::package("f", "a.b")).is_ok());
        assert_eq!(
            s.check(Action::Read, &Target::feed("f")),
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
    fn a_folded_pattern_matches_only_what_it_matches_without_case_in_the_ordinary_sense() {
        // (pattern, id, matched case-sensitively, matched case-insensitively)
        let rows: &[(&str, &str, bool, bool)] = &[
            // `[0-Z]` holds `0`..`9`, `:`..`@` and the letters; folding it must not make it
            // `[0-z]`, which also holds `[\]^_``.
            ("acme.[0-Z]", "acme._", false, false),
            ("acme.[0-Z]", "acme.`", false, false),
            ("acme.[0-Z]", "acme.[", false, false),
            ("acme.[0-Z]", "acme.@", true, true),
            ("acme.[0-Z]", "acme.Q", true, true),
            ("acme.[0-Z]", "acme.q", false, true),
            ("ACME.[0-Z]", "acme.5", false, true),
            // A negated class refuses both cases of each letter it holds.
            ("a[!0-_]", "Aa", false, false),
            ("a[!0-_]", "aA", false, false),
            ("a[!0-_]", "a`", true, true),
            ("x[!a-z]", "xA", true, false),
            ("x[!a-z]", "x_", true, true),
            ("x[^B]", "xb", true, false),
            // A range that crosses from letters to punctuation, folded member by member.
            ("[Z-a]", "_", true, true),
            ("[Z-a]", "z", false, true),
            ("[Z-a]", "b", false, false),
            // Literals and `?` fold as before.
            ("Contoso.*", "contoso.core", false, true),
            ("a?c", "ABC", false, true),
            // `?` is one character, and ids are ASCII: `??` does not match `ß` (two bytes).
            ("??", "\u{df}", false, false),
            ("?", "\u{df}", false, false),
            ("[!a]", "\u{e9}", false, false),
            ("*", "\u{e9}", false, false),
            ("*", "a b", false, false),
            ("*", "a\nb", false, false),
            // The Kelvin sign is not `k`, the dotted capital I is not `i`.
            ("k*", "\u{212A}", false, false),
            ("i*", "\u{130}", false, false),
            // `**` is `*`: globset's path meaning (`**/` also matching nothing) is gone.
            ("**/core", "core", false, false),
            ("**/core", "@acme/core", true, true),
            ("@acme/**/core", "@acme/core", false, false),
            ("@acme/**/core", "@acme/x/core", true, true),
            ("a**b", "ab", true, true),
            // An empty alternative is dropped; an alternation of none is no element.
            ("x{a,}", "x", false, false),
            ("x{a,}", "xA", false, true),
            ("x{}", "x", true, true),
            ("x{,}y", "xy", true, true),
            // Escapes make glob characters literal; `\` inside a class is a member.
            ("a\\*", "a*", true, true),
            ("a\\*", "ab", false, false),
            ("[\\]]", "\\]", true, true),
            ("{a\\,b,c}", "a,b", true, true),
            ("{a\\,b,c}", "c", true, true),
            // A class that can hold nothing matches nothing.
            ("[!!-~]", "a", false, false),
            ("{[!!-~],b}", "b", true, true),
        ];
        for &(pattern, id, exact, folded) in rows {
            let s = PackageSet::case_sensitive([pattern]).unwrap();
            let i = PackageSet::new([pattern]).unwrap();
            assert_eq!(
                s.matches(id),
                exact,
                "{pattern:?} on {id:?}, case-sensitive"
            );
            assert_eq!(i.matches(id), folded, "{pattern:?} on {id:?}, folded");
        }
    }

    #[test]
    fn patterns_are_printable_ascii() {
        for bad in [
            "\u{dc}n\u{ef}c\u{f6}d\u{e9}.*",
            "a b",
            "a\tb",
            "[\u{e9}]",
            "\u{7f}",
        ] {
            assert!(
                matches!(PackagePattern::new(bad), Err(ScopeError::InvalidPattern(_))),
                "{bad:?}"
            );
        }
        let e = PackagePattern::new("caf\u{e9}.*").unwrap_err();
        assert!(e.to_string().contains("printable ASCII"), "{e}");
        assert!(PackagePattern::new("@acme/it's.[!-~]{a,b}\\*%").is_ok());
    }

    #[test]
    fn a_case_sensitive_child_is_judged_by_what_the_folded_parent_really_admits() {
        let with = |set: PackageSet| {
            Scope::new(Permissions::FULL, Feeds::Any, Packages::Only(set)).unwrap()
        };
        let folded = |p: &str| with(PackageSet::new([p]).unwrap());
        let exact = |p: &str| with(PackageSet::case_sensitive([p]).unwrap());
        let rows: Vec<(Scope, Scope, bool)> = vec![
            // The audit's case: the child matches `xA`, the parent does not.
            (folded("x[!a-z]"), exact("x[!a-z]"), false),
            (folded("x[!a-z]"), folded("x[!a-z]"), true),
            // The child's `[0-z]` holds `_`, the parent's folded `[0-Z]` does not.
            (folded("acme.[0-Z]"), exact("acme.[0-z]"), false),
            (folded("acme.[0-Z]"), folded("acme.[0-Z]"), true),
            // Narrower classes and escaped ids are proven now.
            (folded("acme.[a-z]*"), folded("acme.[b-y]x*"), true),
            (folded("a*"), folded("a\\*b"), true),
            (exact("a\\*b"), exact("a[*]b"), true),
            (exact("a\\*b"), folded("a[*]b"), false),
            // A `**` child is a `*` child.
            (folded("*"), exact("**/core"), true),
            (folded("@acme/*"), folded("**/core"), false),
        ];
        for (parent, child, covered) in rows {
            assert_eq!(
                parent.covers(&child).is_ok(),
                covered,
                "{parent:?} over {child:?}"
            );
        }
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
