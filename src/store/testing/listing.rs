//! The operator's listing of accounts ([`TokenStore::accounts`]).

use std::collections::BTreeSet;

use super::{Backend, feedkey_on};
use crate::{AccountId, Expiry, TokenStore};

/// Every account is listed once, in pages of any size, whatever its id looks like (ids
/// differing only in case, spaces or normalisation included), each as the store reads it
/// by id; a page continues after the last id of the one before, and an empty page ends.
pub async fn accounts_are_listed_in_pages_each_once<B: Backend>(backend: &B) {
    let (keys, _clock, alice) = feedkey_on(backend).await;
    let mut expected = BTreeSet::from([alice.clone()]);
    for name in [
        "bob", "Alice", "alice ", "\u{e9}", "e\u{301}", "carol", "zoe", "0",
    ] {
        let account = AccountId::new(name).unwrap();
        keys.create_account(&account, Expiry::Never).await.unwrap();
        expected.insert(account);
    }
    let store = keys.store();
    assert!(store.accounts(None, 0).await.unwrap().is_empty());
    for size in [1, 3, 100] {
        let mut seen = Vec::new();
        let mut after: Option<AccountId> = None;
        loop {
            let page = store.accounts(after.as_ref(), size).await.unwrap();
            assert!(
                page.len() <= size as usize,
                "a page holds at most its limit"
            );
            for record in &page {
                let by_id = store.account(&record.id).await.unwrap().unwrap();
                assert_eq!(
                    (by_id.primary, by_id.created_at, by_id.revision),
                    (record.primary, record.created_at, record.revision),
                    "listed as read by id"
                );
                assert_eq!(by_id.password.is_some(), record.password.is_some());
            }
            seen.extend(page.iter().map(|record| record.id.clone()));
            match page.last() {
                Some(last) if page.len() == size as usize => after = Some(last.id.clone()),
                _ => break,
            }
        }
        let listed: BTreeSet<AccountId> = seen.iter().cloned().collect();
        assert_eq!(
            listed.len(),
            seen.len(),
            "each account once, pages of {size}"
        );
        assert_eq!(listed, expected, "every account, pages of {size}");
    }
    let last = store.accounts(None, 100).await.unwrap().pop().unwrap();
    assert!(
        store
            .accounts(Some(&last.id), 100)
            .await
            .unwrap()
            .is_empty()
    );
}
