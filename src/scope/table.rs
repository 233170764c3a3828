//! A table that keeps each scope once, for a store holding many records: every record
//! with a scope equal to one kept holds the kept copy (one reference count), however
//! its scope was made (parsed from a request, read from a row).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use super::Scope;

/// The scopes a store's records hold, each once. Scopes no record holds any more are
/// forgotten when the table has doubled since it last looked, and on [`ScopeTable::sweep`],
/// so it never holds more than about twice the scopes in use.
#[derive(Debug, Default)]
pub(crate) struct ScopeTable(Mutex<Kept>);

#[derive(Debug, Default)]
struct Kept {
    scopes: HashSet<Scope>,
    after_last_sweep: usize,
}

impl Kept {
    fn sweep(&mut self) {
        self.scopes.retain(|scope| scope.holders() > 1);
        self.after_last_sweep = self.scopes.len();
    }
}

impl ScopeTable {
    /// The one copy of `scope` kept (`scope` itself, kept from now on, when it is new).
    pub(crate) fn share(&self, scope: Scope) -> Scope {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(copy) = kept.scopes.get(&scope) {
            return copy.clone();
        }
        if kept.scopes.len() >= kept.after_last_sweep.saturating_mul(2).max(1024) {
            kept.sweep();
        }
        kept.scopes.insert(scope.clone());
        scope
    }

    /// Forgets the scopes no one else holds.
    pub(crate) fn sweep(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sweep();
    }

    /// How many scopes are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .scopes
            .len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Feeds, Packages, Permissions};

    fn scope(pattern: &str) -> Scope {
        Scope::new(
            Permissions::WRITE_ONLY,
            Feeds::only(["ci"]).unwrap(),
            Packages::only([pattern]).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn equal_scopes_share_a_copy_and_unheld_ones_are_forgotten() {
        let table = ScopeTable::default();
        let a = table.share(scope("A.*"));
        let b = table.share(scope("A.*"));
        let c = table.share(scope("C.*"));
        assert!(a.is_same_copy(&b));
        assert!(!a.is_same_copy(&c));
        assert_eq!(table.len(), 2);
        drop(c);
        table.sweep();
        assert_eq!(table.len(), 1, "C.* is no one's");
        drop((a, b));
        table.sweep();
        assert_eq!(table.len(), 0);
    }
}
