//! Packages: the checked package patterns, the compiled set a token matches ids against,
//! and "any package or only these".

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use crate::ascii::all_graphic;

use super::*;

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
pub struct PackagePattern(pub(super) String);

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

/// Compiled matchers shared between identical package sets, so that a million tokens
/// with one scope hold one matcher, and a record read again from a database does not
/// compile its globs again. A concurrent cache (`quick_cache`) of the [`RECENT`](compiled::RECENT)
/// most used sets: when full it evicts its coldest sets one at a time, never all at once.
mod compiled {
    use std::sync::{Arc, OnceLock};

    use globset::GlobSet;

    use super::PackagePattern;

    /// How many compiled sets are kept.
    pub(super) const RECENT: usize = 4096;

    fn table() -> &'static quick_cache::sync::Cache<String, Arc<GlobSet>> {
        static TABLE: OnceLock<quick_cache::sync::Cache<String, Arc<GlobSet>>> = OnceLock::new();
        TABLE.get_or_init(|| quick_cache::sync::Cache::new(RECENT))
    }

    /// The key of a set: its case rule and its patterns (which hold no whitespace, so a
    /// newline separates them unambiguously).
    pub(super) fn key(patterns: &[PackagePattern], case_sensitive: bool) -> String {
        let mut key = String::from(if case_sensitive { "s" } else { "i" });
        for p in patterns {
            key.push('\n');
            key.push_str(p.as_str());
        }
        key
    }

    pub(super) fn get(key: &str) -> Option<Arc<GlobSet>> {
        table().get(key)
    }

    pub(super) fn put(key: String, matcher: &Arc<GlobSet>) {
        table().insert(key, Arc::clone(matcher));
    }
}

/// Package ids up to this length are lowercased without allocating.
pub(super) const LOWERCASE_BUF: usize = 256;

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
/// # Ok::<(), feedkey::scope::ScopeError>(())
/// ```
#[derive(Clone)]
pub struct PackageSet {
    /// Sorted, each once.
    pub(super) patterns: Box<[PackagePattern]>,
    pub(super) case_sensitive: bool,
    pub(super) matcher: Matcher,
}

/// How a set's patterns are matched.
#[derive(Clone)]
pub(super) enum Matcher {
    /// A few patterns, each a plain id or a plain id prefix followed by one `*`
    /// ([`plain`]): compared to the id directly, with nothing compiled or kept beside the
    /// patterns.
    Plain,
    /// Compiled by globset, shared between equal sets ([`compiled`]).
    Globs(Arc<GlobSet>),
}

/// The most patterns a [`Matcher::Plain`] set holds: past them, globset's one pass over
/// the id beats comparing each pattern in turn.
const PLAIN_MAX: usize = 8;

/// A pattern that is a plain id (`Contoso.Core`) or a plain id prefix followed by one `*`
/// (`Contoso.*`): the id or the prefix, and whether it is a prefix. `None` for any other
/// glob. What such a pattern matches is exactly what globset makes of it (a `*` matches
/// any run of characters, `/` included); the pattern and the id are printable ASCII.
fn plain(pattern: &str) -> Option<(&[u8], bool)> {
    let (stem, prefix) = match pattern.strip_suffix('*') {
        Some(stem) => (stem, true),
        None => (pattern, false),
    };
    (!stem.contains(GLOB_META)).then_some((stem.as_bytes(), prefix))
}

/// Whether the printable-ASCII `id` is matched by `pattern`, ASCII case folded when `fold`,
/// under the set's case rule. `pattern` is one [`plain`] accepted when the set was built
/// (checked once there, not again on every request): a trailing `*` makes it a prefix.
fn plain_match(pattern: &str, id: &[u8], fold: bool) -> bool {
    let (stem, prefix) = match pattern.strip_suffix('*') {
        Some(stem) => (stem.as_bytes(), true),
        None => (pattern.as_bytes(), false),
    };
    let same = |a: &[u8], b: &[u8]| {
        if fold {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    if prefix {
        id.get(..stem.len()).is_some_and(|head| same(head, stem))
    } else {
        same(id, stem)
    }
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
        let patterns: Box<[PackagePattern]> = patterns.into_iter().collect();
        if patterns.len() <= PLAIN_MAX && patterns.iter().all(|p| plain(p.as_str()).is_some()) {
            return Ok(Self {
                patterns,
                case_sensitive,
                matcher: Matcher::Plain,
            });
        }
        let key = compiled::key(&patterns, case_sensitive);
        if let Some(matcher) = compiled::get(&key) {
            return Ok(Self {
                patterns,
                case_sensitive,
                matcher: Matcher::Globs(matcher),
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
            matcher: Matcher::Globs(matcher),
        })
    }

    /// Whether every id `pattern` matches (under `case_sensitive`) is provably matched by
    /// this set (see [`Scope::covers`]). The caller has checked that case-sensitivity does
    /// not widen.
    pub(super) fn covers_pattern(&self, pattern: &PackagePattern, case_sensitive: bool) -> bool {
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
        if !all_graphic(id) {
            return false;
        }
        let globs = match &self.matcher {
            // Plain patterns compare under the set's case rule directly: no copy.
            Matcher::Plain => {
                let fold = !self.case_sensitive;
                return self
                    .patterns
                    .iter()
                    .any(|p| plain_match(p.as_str(), id, fold));
            }
            Matcher::Globs(globs) => globs,
        };
        if self.case_sensitive {
            return globs.is_match_candidate(&Candidate::from_bytes(id));
        }
        // A folded set's globs were compiled lowercase: lowercase the id (ASCII only), on
        // the stack for ids of a usual length.
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
        lower.make_ascii_lowercase();
        globs.is_match_candidate(&Candidate::from_bytes(lower))
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
            .field("patterns", &self.patterns.iter().collect::<BTreeSet<_>>())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// What globset makes of `patterns`, compiled as a set past [`PLAIN_MAX`] would be.
    fn by_globset(patterns: &[&str], case_sensitive: bool, id: &str) -> bool {
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            if let Some(glob) = compile_one(p, case_sensitive).unwrap() {
                builder.add(glob);
            }
        }
        let set = builder.build().unwrap();
        let id = if case_sensitive {
            id.to_owned()
        } else {
            id.to_ascii_lowercase()
        };
        id.bytes().all(|b| b.is_ascii_graphic()) && set.is_match(id.as_str())
    }

    /// Plain patterns, compared directly, match exactly the ids globset matches with them,
    /// in either case rule: every pattern and id over a small alphabet, prefixes and
    /// exact ids, shorter, equal and longer ids, other cases, `/` and non-ASCII.
    #[test]
    fn plain_patterns_match_what_globset_matches() {
        let patterns = [
            "*",
            "a*",
            "A*",
            "ab*",
            "a.b*",
            "a/b*",
            "a",
            "A",
            "ab",
            "a.B",
            "Contoso.*",
            "contoso.Service",
            "-*",
            "a-b",
        ];
        let ids = [
            "a",
            "A",
            "ab",
            "AB",
            "aB",
            "abc",
            "a.b",
            "a.bc",
            "A.B.C",
            "a/b",
            "a/bc",
            "b",
            "ba",
            "contoso.service",
            "Contoso.Service",
            "CONTOSO.SERVICE.CORE",
            "contoso.",
            "contoso",
            "-",
            "-x",
            "a-b",
            "A-B",
            "a b",
            "\u{e9}",
            "a\u{e9}",
        ];
        for case_sensitive in [false, true] {
            for p in patterns {
                let set = if case_sensitive {
                    PackageSet::case_sensitive([p]).unwrap()
                } else {
                    PackageSet::new([p]).unwrap()
                };
                assert!(matches!(set.matcher, Matcher::Plain), "{p}");
                for id in ids {
                    assert_eq!(
                        set.matches(id),
                        by_globset(&[p], case_sensitive, id),
                        "pattern {p:?} id {id:?} case_sensitive {case_sensitive}"
                    );
                }
            }
        }
    }

    /// Which sets are matched plainly: a few plain patterns; any other glob, or more
    /// than [`PLAIN_MAX`] patterns, goes to globset (and matches the same).
    #[test]
    fn only_a_few_plain_patterns_skip_globset() {
        let plain_set = |patterns: &[&str]| {
            matches!(PackageSet::new(patterns).unwrap().matcher, Matcher::Plain)
        };
        assert!(plain_set(&["Contoso.*", "Fabrikam.Core"]));
        for glob in ["a?", "a[bc]", "a{b,c}", "a\\*", "a**", "*a", "a*b", "**"] {
            assert!(!plain_set(&["Contoso.*", glob]), "{glob}");
        }
        let many: Vec<String> = (0..=PLAIN_MAX).map(|i| format!("P{i}.*")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(!plain_set(&many));
        let set = PackageSet::new(&many).unwrap();
        assert!(set.matches("p3.core"));
        assert!(!set.matches("q3.core"));
        assert!(plain_set(&many[..PLAIN_MAX]));
        let set = PackageSet::new(&many[..PLAIN_MAX]).unwrap();
        assert!(set.matches("P7.Core"));
        assert!(!set.matches("P8.Core"));
    }
}
