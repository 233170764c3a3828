//! One shard of `MemoryStore`'s token map: each record once, found by its own id.
//!
//! The table holds only the slot (the record's pointer and its last-used cell, 16
//! bytes); the id is read from the record, not repeated beside it. Ids are hashed with
//! foldhash, seeded per table (from the process's random state): ids are random, so the keyed SipHash of the standard map
//! buys nothing here but time.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use std::hash::BuildHasher;
use time::OffsetDateTime;

use crate::record::{StoredToken, TokenRecord};
use crate::token::TokenId;

/// "Never used", in the last-used cell.
pub(super) const NEVER: i64 = i64::MIN;

/// A stored token: its record, and when it was last used.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) record: Arc<TokenRecord>,
    /// Unix seconds of the last use, or [`NEVER`]. Kept across replacements of the
    /// record, written without the map's write lock.
    pub(super) last_used: AtomicI64,
}

impl Slot {
    pub(super) fn stored(&self) -> StoredToken {
        let secs = self.last_used.load(Ordering::Relaxed);
        StoredToken {
            record: Arc::clone(&self.record),
            last_used_at: (secs != NEVER)
                .then(|| OffsetDateTime::from_unix_timestamp(secs).ok())
                .flatten(),
        }
    }

    pub(super) fn new(record: TokenRecord) -> Self {
        Self {
            record: Arc::new(record),
            last_used: AtomicI64::new(NEVER),
        }
    }
}

/// Slots by their record's id. A slot's record may be replaced, never by one of another
/// id: the slot was placed by its id's hash (`get_mut` hands it out for that).
#[derive(Default)]
pub(super) struct TokenMap {
    table: HashTable<Slot>,
    hasher: RandomState,
}

/// The number of tokens only: not the records, nor the hasher's seeds.
impl fmt::Debug for TokenMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenMap")
            .field("tokens", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl TokenMap {
    fn hash(&self, id: &TokenId) -> u64 {
        self.hasher.hash_one(id)
    }

    pub(super) fn get(&self, id: &TokenId) -> Option<&Slot> {
        self.table.find(self.hash(id), |s| s.record.id == *id)
    }

    /// The slot of `id`, to replace its record with a newer one of the same id.
    pub(super) fn get_mut(&mut self, id: &TokenId) -> Option<&mut Slot> {
        let hash = self.hash(id);
        self.table.find_mut(hash, |s| s.record.id == *id)
    }

    pub(super) fn contains(&self, id: &TokenId) -> bool {
        self.get(id).is_some()
    }

    /// Adds `slot`, unless a slot of its id is already here (then `false`).
    pub(super) fn insert_new(&mut self, slot: Slot) -> bool {
        let id = slot.record.id;
        let hasher = &self.hasher;
        match self.table.entry(
            hasher.hash_one(id),
            |s| s.record.id == id,
            |s| hasher.hash_one(s.record.id),
        ) {
            Entry::Occupied(_) => false,
            Entry::Vacant(vacant) => {
                vacant.insert(slot);
                true
            }
        }
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Slot> {
        self.table.iter()
    }

    pub(super) fn retain(&mut self, keep: impl FnMut(&mut Slot) -> bool) {
        self.table.retain(keep);
    }

    pub(super) fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::account::AccountId;
    use crate::scope::Scope;
    use crate::secret::SecretHash;

    fn record(n: u8) -> TokenRecord {
        TokenRecord::new(
            TokenId::from_bytes([n; 16]),
            AccountId::new("a").unwrap(),
            crate::record::TokenKind::Scoped,
            Scope::read_only(),
            SecretHash::placeholder(),
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn a_slot_is_found_by_its_records_id_and_kept_once() {
        let mut map = TokenMap::default();
        for n in 0..100 {
            assert!(map.insert_new(Slot::new(record(n))));
        }
        assert!(
            !map.insert_new(Slot::new(record(7))),
            "a second slot for one id"
        );
        assert_eq!(map.len(), 100);
        assert_eq!(
            map.get(&TokenId::from_bytes([7; 16])).unwrap().record.id,
            TokenId::from_bytes([7; 16])
        );
        assert!(map.get(&TokenId::from_bytes([200; 16])).is_none());
        map.retain(|s| s.record.id.as_bytes()[0] % 2 == 0);
        assert_eq!(map.len(), 50);
        assert!(!map.contains(&TokenId::from_bytes([7; 16])));
        assert!(map.get_mut(&TokenId::from_bytes([8; 16])).is_some());
        assert_eq!(map.values().count(), 50);
    }
}
