//! The in-memory store: the embedded default.
//!
//! Over 600 lines because the reference backend and its tests (about 320 lines) sit
//! together.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use time::OffsetDateTime;

use super::{
    AuditFilter, AuditRow, AuditStore, KeyFingerprint, StoreError, StoredAuditRow, TokenStore,
};
use crate::account::AccountId;
use crate::record::{AccountRecord, StoredToken, TokenRecord};
use crate::scope::ScopeTable;
use crate::token::TokenId;

mod tokens;
mod trust;

use tokens::{Slot, TokenMap};

/// How many independently locked parts the token map is split into. Token ids are random,
/// so requests for different tokens rarely share a lock (or its cache line).
const SHARDS: usize = 16;

type Shard = RwLock<TokenMap>;

/// Accounts and tokens in memory, for one process: safe to share between tasks and
/// threads (wrap it in an `Arc`, or let `Feedkey` own it).
///
/// Tokens live in 16 separately locked maps chosen by id; a read takes one shared
/// lock for the time of one hash-map probe, and last-used times are written with an
/// atomic store under that shared lock. Locks are always taken accounts first, then a
/// token shard.
#[derive(Debug)]
pub struct MemoryStore {
    accounts: RwLock<HashMap<AccountId, AccountRecord>>,
    shards: [Shard; SHARDS],
    /// Read in place of a missing token, so that a miss costs what a hit costs.
    decoy: Slot,
    /// The key fingerprints remembered, by version.
    keys: RwLock<BTreeMap<u32, KeyFingerprint>>,
    /// The audit trail, oldest first (numbered from 1).
    audit: RwLock<(u64, Vec<StoredAuditRow>)>,
    /// Every scope a stored token holds, each once: a token's record holds the one kept
    /// here, so a million tokens with one scope keep one copy of it.
    scopes: ScopeTable,
    /// Trusted-publishing policies and used OIDC token ids (`memory/trust.rs`).
    trust: super::trust::MemoryTrust,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            accounts: RwLock::default(),
            shards: std::array::from_fn(|_| RwLock::default()),
            decoy: Slot {
                record: Arc::new(TokenRecord {
                    id: TokenId::from_bytes([0; 16]),
                    account: AccountId::placeholder(),
                    kind: crate::record::TokenKind::Scoped,
                    description: compact_str::CompactString::const_new(""),
                    scope: crate::scope::Scope::read_only(),
                    secret_hash: crate::secret::SecretHash::placeholder(),
                    created_at: OffsetDateTime::UNIX_EPOCH,
                    expires_at: None,
                    revoked_at: None,
                    parent: None,
                    parent_secret_set_at: None,
                    suspended_at: None,
                    retired: Vec::new(),
                    revision: 0,
                }),
                last_used: AtomicI64::new(0),
            },
            keys: RwLock::default(),
            audit: RwLock::default(),
            scopes: ScopeTable::default(),
            trust: super::trust::MemoryTrust::default(),
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, id: &TokenId) -> &Shard {
        let [first, ..] = *id.as_bytes();
        let index = usize::from(first) % SHARDS;
        // `index` is below SHARDS; the fallback is never taken.
        self.shards.get(index).unwrap_or(&self.shards[0])
    }

    /// `record` as this store keeps it: its scope the one copy kept of that scope, and
    /// its account id the account's own (`accounts` is the account table, read).
    fn compact(
        &self,
        mut record: TokenRecord,
        accounts: &HashMap<AccountId, AccountRecord>,
    ) -> TokenRecord {
        if let Some((id, _)) = accounts.get_key_value(&record.account) {
            record.account = id.clone();
        }
        record.scope = self.scopes.share(record.scope);
        record
    }

    /// Every stored token that `keep` accepts.
    fn collect(&self, keep: impl Fn(&Slot) -> bool) -> Vec<StoredToken> {
        self.shards
            .iter()
            .flat_map(|shard| {
                read(shard)
                    .values()
                    .filter(|s| keep(s))
                    .map(Slot::stored)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// The audit trail in memory, for tests and benches: it grows until purged.
impl AuditStore for MemoryStore {
    async fn append_audit(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let mut guard = write(&self.audit);
        let (last, trail) = &mut *guard;
        trail.extend(rows.iter().map(|row| {
            *last += 1;
            StoredAuditRow {
                id: *last,
                row: row.clone(),
            }
        }));
        Ok(())
    }

    async fn audit_rows(&self, filter: &AuditFilter) -> Result<Vec<StoredAuditRow>, StoreError> {
        let guard = read(&self.audit);
        let trail = &guard.1;
        // Numbered in order: the rows after the cursor start where a search finds it.
        let start = trail.partition_point(|r| r.id <= filter.after_is());
        Ok(trail
            .get(start..)
            .unwrap_or_default()
            .iter()
            .filter(|r| filter.matches(r.id, &r.row))
            .take(filter.limit_is() as usize)
            .cloned()
            .collect())
    }

    async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut guard = write(&self.audit);
        let trail = &mut guard.1;
        let len = trail.len();
        trail.retain(|r| r.row.at >= before);
        Ok((len - trail.len()) as u64)
    }
}

impl TokenStore for MemoryStore {
    async fn insert_account(
        &self,
        account: AccountRecord,
        primary: TokenRecord,
    ) -> Result<(), StoreError> {
        let mut accounts = write(&self.accounts);
        let mut shard = write(self.shard(&primary.id));
        if accounts.contains_key(&account.id) || shard.contains(&primary.id) {
            return Err(StoreError::Duplicate);
        }
        accounts.insert(account.id.clone(), account);
        let primary = self.compact(primary, &accounts);
        shard.insert_new(Slot::new(primary));
        Ok(())
    }

    async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        Ok(read(&self.accounts).get(id).cloned())
    }

    async fn update_account(
        &self,
        account: AccountRecord,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        let mut accounts = write(&self.accounts);
        let stored = accounts.get_mut(&account.id).ok_or(StoreError::NotFound)?;
        if stored.revision != expected_revision {
            return Err(StoreError::Conflict);
        }
        *stored = account;
        Ok(())
    }

    async fn insert_token(&self, record: TokenRecord) -> Result<(), StoreError> {
        let accounts = read(&self.accounts);
        if !accounts.contains_key(&record.account) {
            return Err(StoreError::NotFound);
        }
        // Shared before the shard's lock is taken: sharing hashes the scope and may
        // sweep the scope table, which the shard's readers (every `authorize`) need not
        // wait for.
        let slot = Slot::new(self.compact(record, &accounts));
        if write(self.shard(&slot.record.id)).insert_new(slot) {
            Ok(())
        } else {
            Err(StoreError::Duplicate)
        }
    }

    async fn token(&self, id: &TokenId) -> Result<Option<StoredToken>, StoreError> {
        let shard = read(self.shard(id));
        let found = shard.get(id);
        // The same work for a hit and a miss (the decoy read in place of a missing
        // token), the answer chosen last: timing does not tell which ids exist.
        let stored = found.unwrap_or(&self.decoy).stored();
        Ok(found.is_some().then_some(stored))
    }

    async fn account_tokens(&self, account: &AccountId) -> Result<Vec<StoredToken>, StoreError> {
        let mut tokens = self.collect(|s| &s.record.account == account);
        tokens.sort_by_key(|t| (t.record.created_at, t.record.id));
        Ok(tokens)
    }

    async fn update_token(
        &self,
        record: TokenRecord,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        let accounts = read(&self.accounts);
        // Shared before the shard's lock is taken, as on insert.
        let record = Arc::new(self.compact(record, &accounts));
        let mut shard = write(self.shard(&record.id));
        let slot = shard.get_mut(&record.id).ok_or(StoreError::NotFound)?;
        if slot.record.revision != expected_revision || slot.record.account != record.account {
            return Err(StoreError::Conflict);
        }
        slot.record = record;
        Ok(())
    }

    async fn touch_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<(), StoreError> {
        if let Some(slot) = read(self.shard(id)).get(id) {
            slot.last_used
                .fetch_max(at.unix_timestamp(), Ordering::Relaxed);
        }
        Ok(())
    }

    async fn tokens_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<StoredToken>, StoreError> {
        let mut tokens = self.collect(|s| {
            s.record.revoked_at.is_none()
                && s.record.expires_at.is_some_and(|e| from <= e && e < until)
        });
        tokens.sort_by_key(|t| (t.record.expires_at, t.record.id));
        Ok(tokens)
    }

    async fn tokens_unused_since(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<StoredToken>, StoreError> {
        let mut tokens: Vec<StoredToken> = self
            .collect(|s| s.record.revoked_at.is_none())
            .into_iter()
            .filter(|t| t.last_used_at.unwrap_or(t.record.created_at) <= before)
            .collect();
        tokens.sort_by_key(|t| t.record.id);
        Ok(tokens)
    }

    async fn purge_revoked(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut purged = 0;
        for shard in &self.shards {
            let mut shard = write(shard);
            let was = shard.len();
            shard.retain(|s| s.record.revoked_at.is_none_or(|at| at >= before));
            purged += (was - shard.len()) as u64;
        }
        self.scopes.sweep();
        Ok(purged)
    }

    async fn key_fingerprints(&self) -> Result<Vec<(u32, KeyFingerprint)>, StoreError> {
        Ok(read(&self.keys).iter().map(|(v, f)| (*v, *f)).collect())
    }

    async fn remember_key(
        &self,
        version: u32,
        fingerprint: KeyFingerprint,
    ) -> Result<KeyFingerprint, StoreError> {
        Ok(*write(&self.keys).entry(version).or_insert(fingerprint))
    }

    async fn accounts(
        &self,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        let accounts = read(&self.accounts);
        let mut page: Vec<&AccountRecord> = accounts
            .values()
            .filter(|account| after.is_none_or(|after| account.id > *after))
            .collect();
        page.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        Ok(page
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::*;
    use crate::record::TokenKind;
    use crate::scope::Scope;
    use crate::secret::{SecretHash, TokenHasher, TokenKey};

    const T0: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn id(n: u8) -> TokenId {
        TokenId::from_bytes([n; 16])
    }

    fn hash(id: &TokenId, secret: u8) -> SecretHash {
        TokenHasher::new(TokenKey::new(1, &[1; 32]), vec![])
            .unwrap()
            .hash(id, &[secret; 32])
    }

    fn account_id(name: &str) -> AccountId {
        AccountId::new(name).unwrap()
    }

    fn account(name: &str, primary: TokenId) -> AccountRecord {
        AccountRecord::new(account_id(name), primary, T0)
    }

    fn token(n: u8, owner: &str) -> TokenRecord {
        let mut record = TokenRecord::new(
            id(n),
            account_id(owner),
            TokenKind::Scoped,
            Scope::read_only(),
            hash(&id(n), n),
            T0,
        );
        record.description = format!("token {n}").into();
        record
    }

    /// A store with the accounts "alice" (primary key `id(1)`) and "bob" (`id(2)`).
    fn store() -> MemoryStore {
        let store = MemoryStore::new();
        block_on(async {
            let mut primary = token(1, "alice");
            primary.kind = TokenKind::Primary;
            store
                .insert_account(account("alice", id(1)), primary)
                .await
                .unwrap();
            let mut primary = token(2, "bob");
            primary.kind = TokenKind::Primary;
            store
                .insert_account(account("bob", id(2)), primary)
                .await
                .unwrap();
        });
        store
    }

    /// Tokens whose scopes are equal, though each was made on its own, hold one copy of
    /// it; a scope no token holds any more is forgotten by a purge.
    #[test]
    fn equal_scopes_are_stored_once_and_forgotten_when_unused() {
        let store = store();
        let two_globs = || {
            Scope::new(
                crate::Permissions::WRITE_ONLY,
                crate::Feeds::only(["ci"]).unwrap(),
                crate::Packages::only(["Contoso.*", "Fabrikam.*"]).unwrap(),
            )
            .unwrap()
        };
        block_on(async {
            for n in [10, 11] {
                let mut record = token(n, "alice");
                record.scope = two_globs();
                store.insert_token(record).await.unwrap();
            }
            let mut other = token(12, "alice");
            other.scope = Scope::read_only().within(crate::Networks::only(["10.0.0.0/8"]).unwrap());
            store.insert_token(other).await.unwrap();
        });
        let (a, b, c) = (
            stored(&store, 10).unwrap(),
            stored(&store, 11).unwrap(),
            stored(&store, 12).unwrap(),
        );
        assert!(a.record.scope.is_same_copy(&b.record.scope));
        assert!(!a.record.scope.is_same_copy(&c.record.scope));
        assert_eq!(a.record.scope, two_globs());
        // The account id is the account's own.
        let alice = read(&store.accounts);
        let (kept, _) = alice.get_key_value(&account_id("alice")).unwrap();
        assert!(kept.is_same_copy(&a.record.account));
        drop(alice);
        drop((a, b, c));
        let kept = |store: &MemoryStore| store.scopes.len();
        let before = kept(&store);
        // Token 12 revoked and purged: its scope is no one's.
        let mut revoked = (*stored(&store, 12).unwrap().record).clone();
        block_on(async {
            revoked.revoked_at = Some(T0);
            revoked.revision += 1;
            store.update_token(revoked, 1).await.unwrap();
            store.purge_revoked(T0 + Duration::days(1)).await.unwrap();
        });
        assert_eq!(kept(&store), before - 1);
    }

    fn stored(store: &MemoryStore, n: u8) -> Option<StoredToken> {
        block_on(store.token(&id(n))).unwrap()
    }

    fn ids(tokens: &[StoredToken]) -> Vec<TokenId> {
        tokens.iter().map(|t| t.record.id).collect()
    }

    #[test]
    fn an_update_from_a_stale_revision_is_a_conflict_and_writes_nothing() {
        let store = store();
        block_on(store.insert_token(token(10, "alice"))).unwrap();
        let mut first = token(10, "alice");
        first.description = "first".into();
        first.revision = 2;
        block_on(store.update_token(first, 1)).unwrap();

        // A writer that read revision 1 before the first update.
        let mut stale = token(10, "alice");
        stale.description = "stale".into();
        stale.secret_hash = hash(&id(10), 99);
        stale.revoked_at = Some(T0);
        stale.revision = 2;
        assert_eq!(
            block_on(store.update_token(stale, 1)),
            Err(StoreError::Conflict)
        );
        let after = stored(&store, 10).unwrap();
        assert_eq!(after.record.description, "first");
        assert_eq!(after.record.revision, 2);
        assert_eq!(after.record.secret_hash, hash(&id(10), 10));
        assert_eq!(after.record.revoked_at, None);

        // The same holds for accounts.
        let mut changed = account("alice", id(1));
        changed.revision = 2;
        block_on(store.update_account(changed, 1)).unwrap();
        let mut stale = account("alice", id(10));
        stale.revision = 2;
        assert_eq!(
            block_on(store.update_account(stale, 1)),
            Err(StoreError::Conflict)
        );
        let alice = block_on(store.account(&account_id("alice")))
            .unwrap()
            .unwrap();
        assert_eq!(alice.primary, id(1));
        assert_eq!(alice.revision, 2);
    }

    #[test]
    fn an_update_that_moves_a_token_to_another_account_is_a_conflict() {
        let store = store();
        block_on(store.insert_token(token(10, "alice"))).unwrap();
        let mut moved = token(10, "bob");
        moved.revision = 2;
        // The revision is right: only the change of owner is wrong.
        assert_eq!(
            block_on(store.update_token(moved, 1)),
            Err(StoreError::Conflict)
        );
        let after = stored(&store, 10).unwrap();
        assert_eq!(after.record.account, account_id("alice"));
        assert_eq!(after.record.revision, 1);
        let bobs = block_on(store.account_tokens(&account_id("bob"))).unwrap();
        assert_eq!(ids(&bobs), vec![id(2)]);
    }

    #[test]
    fn missing_records_are_not_found_and_existing_ones_are_duplicates() {
        let store = store();
        assert_eq!(
            block_on(store.update_token(token(10, "alice"), 1)),
            Err(StoreError::NotFound)
        );
        assert!(stored(&store, 10).is_none(), "an update must not insert");
        assert_eq!(
            block_on(store.update_account(account("carol", id(3)), 1)),
            Err(StoreError::NotFound)
        );
        assert!(
            block_on(store.account(&account_id("carol")))
                .unwrap()
                .is_none(),
            "an update must not insert"
        );

        // A token for an account that does not exist is refused, and not stored.
        assert_eq!(
            block_on(store.insert_token(token(11, "carol"))),
            Err(StoreError::NotFound)
        );
        assert!(stored(&store, 11).is_none());

        // A second insert of an id neither succeeds nor replaces the first record.
        block_on(store.insert_token(token(12, "alice"))).unwrap();
        let mut again = token(12, "alice");
        again.description = "impostor".into();
        assert_eq!(
            block_on(store.insert_token(again)),
            Err(StoreError::Duplicate)
        );
        assert_eq!(stored(&store, 12).unwrap().record.description, "token 12");
        // A primary key's id is taken too.
        assert_eq!(
            block_on(store.insert_token(token(1, "alice"))),
            Err(StoreError::Duplicate)
        );
        assert_eq!(stored(&store, 1).unwrap().record.kind, TokenKind::Primary);

        // An account id, or a primary key id, that exists: nothing is written.
        assert_eq!(
            block_on(store.insert_account(account("alice", id(20)), token(20, "alice"))),
            Err(StoreError::Duplicate)
        );
        assert!(stored(&store, 20).is_none());
        assert_eq!(
            block_on(store.insert_account(account("carol", id(12)), token(12, "carol"))),
            Err(StoreError::Duplicate)
        );
        assert!(
            block_on(store.account(&account_id("carol")))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            stored(&store, 12).unwrap().record.account,
            account_id("alice")
        );
    }

    #[test]
    fn the_last_use_never_goes_back_and_survives_an_update_of_the_record() {
        let store = store();
        block_on(store.insert_token(token(10, "alice"))).unwrap();
        assert_eq!(stored(&store, 10).unwrap().last_used_at, None);

        let later = T0 + Duration::minutes(10);
        block_on(store.touch_token(&id(10), later)).unwrap();
        assert_eq!(stored(&store, 10).unwrap().last_used_at, Some(later));
        // A slower request that started earlier reports its time last.
        block_on(store.touch_token(&id(10), T0 + Duration::minutes(5))).unwrap();
        assert_eq!(stored(&store, 10).unwrap().last_used_at, Some(later));

        // Replacing the record (a refresh, a rehash) keeps the last use...
        let mut updated = token(10, "alice");
        updated.description = "edited".into();
        updated.revision = 2;
        block_on(store.update_token(updated, 1)).unwrap();
        let after = stored(&store, 10).unwrap();
        assert_eq!(after.record.description, "edited");
        assert_eq!(after.last_used_at, Some(later));
        // ... and later uses are still recorded against the new record.
        let latest = T0 + Duration::minutes(20);
        block_on(store.touch_token(&id(10), latest)).unwrap();
        assert_eq!(stored(&store, 10).unwrap().last_used_at, Some(latest));
        // Only this token was touched.
        assert_eq!(stored(&store, 1).unwrap().last_used_at, None);

        // Touching a token that does not exist is no error, and creates nothing.
        block_on(store.touch_token(&id(11), latest)).unwrap();
        assert!(stored(&store, 11).is_none());
    }

    #[test]
    fn expiring_lists_live_tokens_in_a_half_open_window_and_purge_deletes_only_old_revocations() {
        let store = store();
        let from = T0 + Duration::days(1);
        let until = T0 + Duration::days(2);
        let expiring = |n: u8, at: Option<OffsetDateTime>, revoked: bool| {
            let mut t = token(n, if n.is_multiple_of(2) { "alice" } else { "bob" });
            t.expires_at = at;
            t.revoked_at = revoked.then_some(T0);
            block_on(store.insert_token(t)).unwrap();
        };
        expiring(10, Some(from), false); // at the start: in
        expiring(11, Some(until - Duration::seconds(1)), false); // just before the end: in
        expiring(12, Some(until), false); // at the end: out
        expiring(13, Some(from - Duration::seconds(1)), false); // before: out
        expiring(14, None, false); // never: out
        expiring(15, Some(from + Duration::hours(1)), true); // revoked: out
        let found = block_on(store.tokens_expiring(from, until)).unwrap();
        // Both accounts, soonest first.
        assert_eq!(ids(&found), vec![id(10), id(11)]);

        let cut = T0 + Duration::days(30);
        let revoked = |n: u8, at: Option<OffsetDateTime>| {
            let mut t = token(n, "alice");
            t.revoked_at = at;
            block_on(store.insert_token(t)).unwrap();
        };
        revoked(20, Some(T0)); // long ago: purged
        revoked(21, Some(cut - Duration::seconds(1))); // just before: purged
        revoked(22, Some(cut)); // at the cut-off: kept
        revoked(23, Some(cut + Duration::days(1))); // after: kept
        revoked(24, None); // live: kept
        let before = block_on(store.account_tokens(&account_id("alice")))
            .unwrap()
            .len();
        // Token 15 was revoked at T0 as well.
        assert_eq!(block_on(store.purge_revoked(cut)).unwrap(), 3);
        for gone in [15, 20, 21] {
            assert!(stored(&store, gone).is_none(), "token {gone} kept");
        }
        for kept in [1, 2, 10, 11, 12, 13, 14, 22, 23, 24] {
            assert!(stored(&store, kept).is_some(), "token {kept} purged");
        }
        let after = block_on(store.account_tokens(&account_id("alice")))
            .unwrap()
            .len();
        assert_eq!(before - after, 2);
        // Nothing left to purge.
        assert_eq!(block_on(store.purge_revoked(cut)).unwrap(), 0);
    }

    #[test]
    fn unused_since_includes_a_last_use_at_the_bound_and_leaves_out_revoked_tokens() {
        let store = store();
        let bound = T0 + Duration::hours(1);
        let insert = |n: u8, created: OffsetDateTime, revoked: bool| {
            let mut t = token(n, "alice");
            t.created_at = created;
            t.revoked_at = revoked.then_some(created);
            block_on(store.insert_token(t)).unwrap();
        };
        insert(10, T0, false);
        block_on(store.touch_token(&id(10), bound)).unwrap(); // last used at the bound: in
        insert(11, T0, false);
        block_on(store.touch_token(&id(11), bound + Duration::seconds(1))).unwrap(); // used since: out
        insert(12, bound, false); // never used, created at the bound: in
        insert(13, bound + Duration::seconds(1), false); // never used, created since: out
        insert(14, T0, true); // never used, but revoked: out
        insert(15, T0, true);
        block_on(store.touch_token(&id(15), T0)).unwrap(); // used long ago, but revoked: out
        // The primary keys 1 and 2, created at T0 and never used: in.
        let found = block_on(store.tokens_unused_since(bound)).unwrap();
        assert_eq!(ids(&found), vec![id(1), id(2), id(10), id(12)]);
        assert_eq!(found[2].last_used_at, Some(bound));
    }
}
