//! What SQL backends keep in memory: recently read token records (with their compiled
//! scopes) for a bounded time, and last-used times waiting to be written.
//!
//! Over 500 lines because the tests of the cache's guards (staleness, races with writes,
//! the change feed, bounds; about 170 lines) sit beside them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::record::StoredToken;
use crate::scope::ScopeTable;
use crate::token::TokenId;

/// How a SQL backend caches token records, and how long it waits for its database.
///
/// A record read from the database is kept for at most [`CacheConfig::ttl`] (one second
/// by default), so that the request path reads memory, not the database. Every write made
/// through the same store object drops the entry at once, so a revoke or refresh made in
/// this process is seen by the next `authorize`. A write made by another process is seen
/// within `ttl` at worst; `SqlStore` hears of it sooner, through its change feed.
///
/// A server database that stops answering costs a request at most
/// [`CacheConfig::request_timeout`] (one second by default): see there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    ttl: Duration,
    capacity: usize,
    last_used_every: Duration,
    poll_every: Duration,
    request_timeout: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Self::DEFAULT_TTL,
            capacity: Self::DEFAULT_CAPACITY,
            last_used_every: Self::DEFAULT_LAST_USED_EVERY,
            poll_every: Self::DEFAULT_POLL_EVERY,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl CacheConfig {
    /// How long a record is trusted by default.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(1);
    /// The longest a record may be trusted.
    pub const MAX_TTL: Duration = Duration::from_secs(60);
    /// How many records are kept by default: about 38 MB when the records share a few
    /// scopes (see [`CacheConfig::capacity`]).
    pub const DEFAULT_CAPACITY: usize = 100_000;
    /// How often buffered last-used times are written by default.
    pub const DEFAULT_LAST_USED_EVERY: Duration = Duration::from_secs(10);
    /// How often a MySQL/MariaDB store reads the change feed by default.
    pub const DEFAULT_POLL_EVERY: Duration = Duration::from_millis(100);
    /// How long a server database operation may take by default.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
    /// The shortest time limit [`Self::request_timeout`] accepts.
    pub const MIN_REQUEST_TIMEOUT: Duration = Duration::from_millis(10);
    /// The longest time limit [`Self::request_timeout`] accepts.
    pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

    /// Trust a cached record for `ttl` (zero turns the cache off), at most
    /// [`Self::MAX_TTL`]: the bound on how long a revoke made by another server can go
    /// unseen here.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.min(Self::MAX_TTL);
        self
    }

    /// Keep at most `capacity` records.
    ///
    /// A cached record costs about 380 bytes of memory (`benches/footprint`: records
    /// with descriptions of up to 24 bytes sharing one scope), plus, once for each
    /// distinct scope, that scope's own size: size the cache at about 400 bytes a record.
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Flush the buffered last-used times to the database this often (at least every
    /// 100 ms). A process that dies loses at most this much of last-used history; nothing
    /// else.
    #[must_use]
    pub fn flush_last_used_every(mut self, every: Duration) -> Self {
        self.last_used_every = every.max(Duration::from_millis(100));
        self
    }

    /// Kept for code written before 0.2: see [`CacheConfig::flush_last_used_every`].
    #[deprecated(note = "use `CacheConfig::flush_last_used_every`")]
    #[doc(hidden)]
    #[must_use]
    pub fn last_used_every(self, every: Duration) -> Self {
        self.flush_last_used_every(every)
    }

    /// Read the change feed this often (MySQL/MariaDB, which has no notifications; at
    /// least every 10 ms, at most every [`Self::MAX_TTL`]). PostgreSQL is told of
    /// changes as they commit and does not poll.
    #[must_use]
    pub fn poll_every(mut self, every: Duration) -> Self {
        self.poll_every = every.clamp(Duration::from_millis(10), Self::MAX_TTL);
        self
    }

    /// Give up on the database after `timeout` (PostgreSQL and MySQL/MariaDB; clamped to
    /// [`Self::MIN_REQUEST_TIMEOUT`]..=[`Self::MAX_REQUEST_TIMEOUT`], one second by
    /// default): the longest an `authorize` waits for the database, so that an outage is
    /// answered with a 503 ([`DenyReason::Store`](crate::DenyReason::Store)) within this
    /// time instead of holding requests until the database is back.
    ///
    /// It bounds each store operation as a whole — waiting for a connection and running
    /// its statements: the token lookup `authorize` makes, and every management read and
    /// write. A failure to reach the database, or an operation that ran out of time,
    /// marks the database unreachable: from then on one operation at a time tries it and
    /// the others fail at once, without waiting, until one gets an answer. Requests
    /// therefore pay nothing for an outage but their 503, and the first answer after it
    /// ends it: a live token is allowed again as soon as a connection can be opened. (An
    /// `authorize` that makes more than one operation — a derived token's parent, a
    /// rehash after a key rotation — can wait this long once, for the operation that
    /// finds the database gone, plus the time the others took to succeed.) The change-feed
    /// reads of MySQL/MariaDB are bounded alike. Sweeps over all tokens
    /// (`tokens_expiring`, `tokens_unused_since`, `purge_revoked`) and the writes of
    /// last-used times wait this long for a connection, then may run for up to
    /// `SqlStore::SWEEP_TIME_LIMIT`. An operation that ran out of time may still have been
    /// applied, as with a lost connection.
    ///
    /// **Cached records during an outage** are not trusted any longer than at other
    /// times: the cache serves a record only while the store hears of other servers'
    /// writes (its change feed), and for at most [`Self::ttl`]. A database server that
    /// stops closes the store's connections, which ends the change feed and empties the
    /// cache at once (PostgreSQL: the listening connection drops; MySQL: at the next read
    /// of the feed, within [`Self::poll_every`] plus this timeout); a network that
    /// silently drops packets may leave the last records in use until their `ttl` runs
    /// out. The store cannot tell an outage, when no write can commit, from a partition in
    /// which other servers still reach the database and revoke tokens, so it never
    /// stretches a record's trust: the staleness bound stays `ttl` (one second by default)
    /// whatever happens, and what the store cannot decide from the database is a 503.
    ///
    /// SQLite reads its file in place and ignores this setting.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout.clamp(Self::MIN_REQUEST_TIMEOUT, Self::MAX_REQUEST_TIMEOUT);
        self
    }

    /// The longest a server database operation may take.
    pub fn request_time_limit(&self) -> Duration {
        self.request_timeout
    }

    /// The time a record is trusted.
    pub fn trusted_for(&self) -> Duration {
        self.ttl
    }

    /// How often the MySQL/MariaDB change feed is read.
    pub fn poll_interval(&self) -> Duration {
        self.poll_every
    }

    /// How often last-used times are written.
    pub fn last_used_interval(&self) -> Duration {
        self.last_used_every
    }
}

#[derive(Clone)]
struct Entry {
    stored: StoredToken,
    loaded: Instant,
}

/// Recently read token records, in a concurrent cache (`quick_cache`: sharded, CLOCK-Pro
/// eviction), so that a full cache evicts its coldest records one at a time instead of
/// dropping everything and sending every request to the database at once.
///
/// Reads take no lock of ours. Writes to the cache (a fill, an invalidation, a clear)
/// take `writes`, so that the epoch check of a fill and its insert are one step with
/// respect to an invalidation: a record read before a write committed never lands after
/// that write's invalidation.
pub(crate) struct TokenCache {
    entries: quick_cache::sync::Cache<TokenId, Entry>,
    /// Held by every change to `entries` (never by a read).
    writes: Mutex<()>,
    /// Bumped, under `writes`, by every invalidation: a record read from the database is
    /// kept only if no write was made since its read began.
    epoch: AtomicU64,
    ttl: Duration,
    capacity: usize,
    /// Whether entries may be used: false while the change feed that keeps them fresh
    /// is down (the cache is then empty and bypassed).
    trusted: AtomicBool,
    /// The scopes of the cached records, each kept once.
    scopes: ScopeTable,
}

impl TokenCache {
    pub(crate) fn new(config: &CacheConfig) -> Self {
        Self {
            // quick_cache wants a capacity of at least one; a zero capacity is honoured
            // by `put`, which then keeps nothing.
            entries: quick_cache::sync::Cache::new(config.capacity.max(1)),
            writes: Mutex::new(()),
            epoch: AtomicU64::new(0),
            ttl: config.ttl,
            capacity: config.capacity,
            trusted: AtomicBool::new(true),
            scopes: ScopeTable::default(),
        }
    }

    fn writing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A cache that stays bypassed until [`TokenCache::trust`] (its change feed is up).
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) fn distrusted(config: &CacheConfig) -> Self {
        let cache = Self::new(config);
        cache.trusted.store(false, Ordering::Release);
        crate::telemetry::change_feed(false);
        cache
    }

    /// The change feed is up: start caching, from empty.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) fn trust(&self) {
        let _writing = self.writing();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
        self.trusted.store(true, Ordering::Release);
        crate::telemetry::change_feed(true);
    }

    /// The change feed is down: forget everything and bypass the cache until it is back.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) fn distrust(&self) {
        let _writing = self.writing();
        self.trusted.store(false, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
        crate::telemetry::change_feed(false);
    }

    /// Whether the cache is in use.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// Take this before reading a record from the database, and hand it to
    /// [`TokenCache::put`].
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// A record loaded less than `ttl` ago.
    pub(crate) fn get(&self, id: &TokenId) -> Option<StoredToken> {
        if self.ttl.is_zero() || !self.trusted.load(Ordering::Acquire) {
            return None;
        }
        let found = self
            .entries
            .get(id)
            .filter(|e| e.loaded.elapsed() < self.ttl)
            .map(|e| e.stored);
        crate::telemetry::record_cache(found.is_some());
        found
    }

    /// Keeps a record just loaded, unless a write was made since `epoch` was taken (the
    /// record may then predate that write, and is not kept). Returns the record, its
    /// scope now the one copy the cache keeps of it.
    pub(crate) fn put(&self, mut stored: StoredToken, epoch: u64) -> StoredToken {
        if self.ttl.is_zero() || self.capacity == 0 {
            return stored;
        }
        // A record just read holds a scope of its own: keep the one copy instead.
        if let Some(record) = Arc::get_mut(&mut stored.record) {
            record.scope = self.scopes.share(record.scope.clone());
        }
        // The trust bound runs from before the check: never later than the read began
        // to count as "loaded".
        let read_started = Instant::now();
        let _writing = self.writing();
        if self.epoch.load(Ordering::Acquire) != epoch || !self.trusted.load(Ordering::Acquire) {
            return stored;
        }
        self.entries.insert(
            stored.record.id,
            Entry {
                stored: stored.clone(),
                loaded: read_started,
            },
        );
        stored
    }

    /// Forgets one record: call it after the write to it has committed.
    pub(crate) fn invalidate(&self, id: &TokenId) {
        let _writing = self.writing();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.remove(id);
    }

    /// Forgets every record.
    pub(crate) fn clear(&self) {
        let _writing = self.writing();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
    }

    /// Notes a use in the cached record, so the next read sees it (the entry keeps its
    /// load time: a use does not stretch its trust).
    pub(crate) fn touch(&self, id: &TokenId, at: OffsetDateTime) {
        let _writing = self.writing();
        if let Some(mut entry) = self.entries.peek(id)
            && entry.stored.last_used_at.is_none_or(|last| last < at)
        {
            entry.stored.last_used_at = Some(at);
            // Only if still there; a soft replace does not make the entry hotter.
            let _ = self.entries.replace(*id, entry, true);
        }
    }

    /// How many records are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Last-used times not yet written.
#[derive(Default)]
pub(crate) struct PendingUses {
    pending: Mutex<HashMap<TokenId, OffsetDateTime>>,
}

impl PendingUses {
    /// Notes a use (the latest wins).
    pub(crate) fn record(&self, id: TokenId, at: OffsetDateTime) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = pending.entry(id).or_insert(at);
        if *slot < at {
            *slot = at;
        }
    }

    /// Takes every pending use, to write them.
    pub(crate) fn take(&self) -> Vec<(TokenId, OffsetDateTime)> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.drain().collect()
    }

    /// Puts back uses whose write failed (unless newer ones arrived).
    pub(crate) fn restore(&self, uses: Vec<(TokenId, OffsetDateTime)>) {
        for (id, at) in uses {
            self.record(id, at);
        }
    }

    /// `stored` with any newer pending use.
    pub(crate) fn merge(&self, stored: &mut StoredToken) {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = pending.get(&stored.record.id)
            && stored.last_used_at.is_none_or(|last| last < *at)
        {
            stored.last_used_at = Some(*at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::AccountId;
    use crate::record::{TokenKind, TokenRecord};
    use crate::scope::Scope;
    use crate::secret::{TokenHasher, TokenKey};

    fn stored(n: u8) -> StoredToken {
        let id = TokenId::from_bytes([n; 16]);
        let hasher = TokenHasher::new(TokenKey::new(1, &[1; 32]), vec![]).unwrap();
        let record = TokenRecord::new(
            id,
            AccountId::new("a").unwrap(),
            TokenKind::Scoped,
            Scope::read_only(),
            hasher.hash(&id, &[0; 32]),
            OffsetDateTime::UNIX_EPOCH,
        );
        StoredToken::new(record, None)
    }

    /// A cache whose entries outlive any test, for the tests that are not about time (a
    /// machine busy enough to stall a test for the default second must not fail them;
    /// the tests about time use ttls of hundreds of milliseconds for the same reason).
    fn lasting() -> CacheConfig {
        CacheConfig::default().ttl(Duration::from_secs(3600))
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let cache = TokenCache::new(&lasting());
        let epoch = cache.epoch();
        // A write commits and invalidates while the read is in flight...
        cache.invalidate(&TokenId::from_bytes([1; 16]));
        // ... so the (possibly stale) record the read returns is not kept.
        cache.put(stored(1), epoch);
        assert!(cache.get(&TokenId::from_bytes([1; 16])).is_none());
        let epoch = cache.epoch();
        cache.put(stored(1), epoch);
        assert!(cache.get(&TokenId::from_bytes([1; 16])).is_some());
    }

    #[test]
    fn entries_expire_and_the_cache_is_bounded() {
        let cache = TokenCache::new(
            &CacheConfig::default()
                .ttl(Duration::from_millis(400))
                .capacity(2),
        );
        for n in 0..5 {
            cache.put(stored(n), cache.epoch());
            assert!(cache.len() <= 2);
        }
        assert!(cache.get(&TokenId::from_bytes([4; 16])).is_some());
        std::thread::sleep(Duration::from_millis(500));
        assert!(cache.get(&TokenId::from_bytes([4; 16])).is_none());
        let off = TokenCache::new(&CacheConfig::default().ttl(Duration::ZERO));
        off.put(stored(1), off.epoch());
        assert!(off.get(&TokenId::from_bytes([1; 16])).is_none());
    }

    #[test]
    fn a_full_cache_evicts_some_records_not_all() {
        let cache = TokenCache::new(&lasting().capacity(100));
        for n in 0..100 {
            cache.put(stored(n), cache.epoch());
        }
        // One record more than fits: the others stay (a cache that empties itself here
        // sends every request to the database at once).
        cache.put(stored(200), cache.epoch());
        let kept = (0..100)
            .filter(|n| cache.get(&TokenId::from_bytes([*n; 16])).is_some())
            .count();
        // The cache is sharded under a random hash, each shard with its share of the
        // capacity, so an uneven spread evicts a few early: over 2000 runs 83 to 99 of
        // the 100 stayed. Half is far from "all forgotten" and never flakes.
        assert!(kept >= 50, "only {kept} of 100 records kept");
        assert!(cache.len() <= 100);
    }

    #[test]
    fn a_use_is_seen_by_the_next_read_and_does_not_stretch_the_trust() {
        let cache = TokenCache::new(&CacheConfig::default().ttl(Duration::from_millis(500)));
        let id = TokenId::from_bytes([1; 16]);
        cache.put(stored(1), cache.epoch());
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        cache.touch(&id, at);
        assert_eq!(cache.get(&id).unwrap().last_used_at, Some(at));
        // An older use does not go back in time.
        cache.touch(&id, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(cache.get(&id).unwrap().last_used_at, Some(at));
        // A touch of a record not kept keeps nothing.
        cache.touch(&TokenId::from_bytes([2; 16]), at);
        assert!(cache.get(&TokenId::from_bytes([2; 16])).is_none());
        std::thread::sleep(Duration::from_millis(300));
        cache.touch(&id, at + time::Duration::hours(1));
        std::thread::sleep(Duration::from_millis(300));
        assert!(cache.get(&id).is_none(), "served past its ttl");
    }

    #[test]
    fn invalidate_and_clear_forget_records_and_refuse_racing_fills() {
        let cache = TokenCache::new(&lasting());
        for n in 1..=3 {
            cache.put(stored(n), cache.epoch());
        }
        let epoch = cache.epoch();
        cache.invalidate(&TokenId::from_bytes([1; 16]));
        assert!(cache.get(&TokenId::from_bytes([1; 16])).is_none());
        assert!(cache.get(&TokenId::from_bytes([2; 16])).is_some());
        cache.clear();
        assert!(cache.get(&TokenId::from_bytes([2; 16])).is_none());
        cache.put(stored(3), epoch);
        assert!(cache.get(&TokenId::from_bytes([3; 16])).is_none());
    }

    #[cfg(any(feature = "postgres", feature = "mysql"))]
    #[test]
    fn a_cache_whose_feed_is_down_keeps_nothing() {
        let id = TokenId::from_bytes([1; 16]);
        let cache = TokenCache::distrusted(&lasting());
        cache.put(stored(1), cache.epoch());
        assert!(cache.get(&id).is_none(), "kept before the feed was up");
        // A read that began before the feed came up is not kept either.
        let before = cache.epoch();
        cache.trust();
        cache.put(stored(1), before);
        assert!(cache.get(&id).is_none());
        cache.put(stored(1), cache.epoch());
        assert!(cache.get(&id).is_some());
        cache.distrust();
        assert!(cache.get(&id).is_none(), "used while the feed was down");
        cache.trust();
        assert!(cache.get(&id).is_none(), "an entry outlived the outage");
    }

    #[test]
    fn the_request_timeout_defaults_to_a_second_and_is_clamped() {
        let c = CacheConfig::default();
        assert_eq!(c.request_time_limit(), Duration::from_secs(1));
        let at = |d| {
            CacheConfig::default()
                .request_timeout(d)
                .request_time_limit()
        };
        assert_eq!(at(Duration::ZERO), CacheConfig::MIN_REQUEST_TIMEOUT);
        assert_eq!(
            at(Duration::from_secs(3600)),
            CacheConfig::MAX_REQUEST_TIMEOUT
        );
        assert_eq!(at(Duration::from_millis(250)), Duration::from_millis(250));
    }

    #[test]
    fn pending_uses_keep_the_latest_and_merge_into_reads() {
        let uses = PendingUses::default();
        let id = TokenId::from_bytes([1; 16]);
        let t1 = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        let t2 = t1 + time::Duration::hours(1);
        uses.record(id, t2);
        uses.record(id, t1);
        let mut s = stored(1);
        uses.merge(&mut s);
        assert_eq!(s.last_used_at, Some(t2));
        assert_eq!(uses.take(), vec![(id, t2)]);
        assert!(uses.take().is_empty());
    }
}
