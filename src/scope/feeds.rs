//! Feeds: which feeds a token may act on, by checked feed name.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use super::*;

/// A feed name, checked: 1 to [`FeedName::MAX_LEN`] characters, no spaces or control
/// characters. Compared exactly (case-sensitive), as feed URLs are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FeedName(String);

impl FeedName {
    /// The longest feed name accepted.
    pub const MAX_LEN: usize = crate::request::MAX_FEED_NAME_LEN;

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
///
/// A list can only be made by [`Feeds::only`], so it is never empty nor too long:
///
/// ```compile_fail,E0308
/// use feedkey::Feeds;
/// let nothing = Feeds::Only(std::collections::BTreeSet::new()); // no: a FeedSet is checked
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", try_from = "FeedsSpec", into = "FeedsSpec")]
pub enum Feeds {
    /// Every feed the account can reach.
    Any,
    /// Only these feeds.
    Only(FeedSet),
}

/// A checked set of feed names: 1 to [`Feeds::MAX_FEEDS`] of them, each a [`FeedName`].
/// Made only by [`Feeds::only`]; read it as the `BTreeSet` it derefs to. Equal sets made
/// near each other in time share one copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeedSet(Arc<BTreeSet<FeedName>>);

impl std::ops::Deref for FeedSet {
    type Target = BTreeSet<FeedName>;
    fn deref(&self) -> &BTreeSet<FeedName> {
        &self.0
    }
}

/// How many recently made feed sets are remembered, so that the scopes of a million
/// tokens on feed `ci` hold one set `{ci}` (a concurrent cache, `quick_cache`, evicting
/// its coldest sets one at a time).
const RECENT_FEED_SETS: usize = 4096;

/// The one copy of `set` kept among the recent ones.
fn shared(set: BTreeSet<FeedName>) -> Arc<BTreeSet<FeedName>> {
    static RECENT: OnceLock<quick_cache::sync::Cache<String, Arc<BTreeSet<FeedName>>>> =
        OnceLock::new();
    let recent = RECENT.get_or_init(|| quick_cache::sync::Cache::new(RECENT_FEED_SETS));
    // Feed names hold no whitespace: a newline separates them unambiguously.
    let key = set
        .iter()
        .map(FeedName::as_str)
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(kept) = recent.get(&key).filter(|kept| **kept == set) {
        return kept;
    }
    let set = Arc::new(set);
    recent.insert(key, Arc::clone(&set));
    set
}

impl<'a> IntoIterator for &'a FeedSet {
    type Item = &'a FeedName;
    type IntoIter = std::collections::btree_set::Iter<'a, FeedName>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
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
        Ok(Self::Only(FeedSet(shared(set))))
    }

    /// Whether `feed` is covered.
    pub fn allows(&self, feed: &str) -> bool {
        match self {
            Feeds::Any => true,
            Feeds::Only(set) => set.contains(feed),
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
            Feeds::Only(set) => FeedsSpec::Only(set.iter().map(|f| f.0.clone()).collect()),
        }
    }
}
