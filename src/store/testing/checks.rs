//! The conformance checks of the whole facade on a store: every operation, races,
//! hostile text, corrupt rows, compare-and-swap, migrations, account ids and the key
//! ledger.
//!
//! Over 600 lines because each check is a whole story through the facade; they are
//! listed together so that a backend runs all of them.

use std::sync::Arc;

use super::{Backend, PUSH, START, api_key, ci_scope, feedkey_on, key};
use crate::store::KeyCheckError;
use crate::time::Duration;
use crate::{
    AccountId, Action, DenyReason, DenyStatus, Error, Expiry, Feedkey, Feeds, NewChild, NewToken,
    Packages, Permissions, Refresh, Scope, StoreError, Target, TokenEdit, TokenKey, TokenStatus,
    TokenStore,
};

/// Every operation of the facade, issue to purge, works on the store and reads back what it wrote.
pub async fn every_operation_behaves_alike<B: Backend>(backend: &B) {
    let (keys, clock, alice) = feedkey_on(backend).await;
    assert_eq!(
        keys.create_account(&alice, Expiry::Never)
            .await
            .unwrap_err(),
        Error::AccountExists
    );
    // Issue and read back.
    let ci = keys
        .issue(
            &alice,
            NewToken::new("Contoso service CI", ci_scope())
                .expires(Expiry::After(Duration::days(365))),
        )
        .await
        .unwrap();
    let got = keys.token(&alice, ci.token.id()).await.unwrap();
    assert_eq!(got.scope, ci.info.scope);
    assert_eq!(got.expires_at, Some(START + Duration::days(365)));
    let listed = keys.tokens(&alice).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].id, ci.token.id());

    // Use: allowed, last use recorded.
    let req = api_key(ci.token.expose_secret());
    clock.advance(Duration::hours(1));
    keys.authorize(&req, Action::Push, &PUSH).await.unwrap();
    let got = keys.token(&alice, ci.token.id()).await.unwrap();
    assert_eq!(got.last_used_at, Some(START + Duration::hours(1)));
    let denial = keys.authorize(&req, Action::Read, &PUSH).await.unwrap_err();
    assert_eq!(denial.status(), DenyStatus::Forbidden);

    // Edit.
    keys.edit(
        &alice,
        ci.token.id(),
        TokenEdit::new()
            .description("CI, all of Contoso")
            .packages(Packages::only(["Contoso.*"]).unwrap()),
    )
    .await
    .unwrap();
    keys.authorize(
        &req,
        Action::Push,
        &Target::new_package("ci", "Contoso.Web"),
    )
    .await
    .unwrap();
    assert_eq!(
        keys.edit(&alice, ci.token.id(), TokenEdit::new().feeds(Feeds::Any))
            .await
            .unwrap_err(),
        Error::Widens(crate::Widening::Feeds)
    );

    // Refresh with overlap, then without.
    let second = keys
        .refresh_with(
            &alice,
            ci.token.id(),
            Refresh::with_overlap(Duration::minutes(5)),
        )
        .await
        .unwrap();
    keys.authorize(&req, Action::Push, &PUSH).await.unwrap();
    let third = keys.refresh(&alice, ci.token.id()).await.unwrap();
    for old in [&ci, &second] {
        let denial = keys
            .authorize(&api_key(old.token.expose_secret()), Action::Push, &PUSH)
            .await
            .unwrap_err();
        assert_eq!(denial.reason(), &DenyReason::RetiredSecretReused);
    }
    let req = api_key(third.token.expose_secret());
    keys.authorize(&req, Action::Push, &PUSH).await.unwrap();

    // Derive a child; revoke the parent and the child dies.
    let child = keys
        .derive(
            &req,
            NewChild::new("job", ci_scope(), Duration::minutes(15)),
        )
        .await
        .unwrap();
    let child_req = api_key(child.token.expose_secret());
    keys.authorize(&child_req, Action::Push, &PUSH)
        .await
        .unwrap();

    // Expiring soon.
    let soon = keys
        .issue(
            &alice,
            NewToken::new("soon", Scope::read_only()).expires(Expiry::After(Duration::days(5))),
        )
        .await
        .unwrap();
    let warned = keys
        .expiring_within(&alice, Duration::days(10))
        .await
        .unwrap();
    assert!(warned.iter().any(|t| t.id == soon.token.id()));
    assert!(warned.iter().any(|t| t.id == child.token.id()));
    let mail = keys.all_expiring_within(Duration::days(10)).await.unwrap();
    assert!(mail.iter().any(|t| t.id == soon.token.id()));
    assert!(mail.iter().all(|t| t.id != ci.token.id()));

    keys.revoke(&alice, ci.token.id()).await.unwrap();
    for r in [&req, &child_req] {
        let denial = keys.authorize(r, Action::Push, &PUSH).await.unwrap_err();
        assert!(matches!(
            denial.reason(),
            DenyReason::Revoked | DenyReason::ParentInvalid
        ));
    }
    let listed = keys.tokens(&alice).await.unwrap();
    assert!(listed.iter().all(|t| t.id != ci.token.id()));
    let shown = listed.iter().find(|t| t.id == child.token.id()).unwrap();
    assert_eq!(shown.status, TokenStatus::Revoked);

    // Primary key regenerated.
    let primary = keys
        .regenerate_primary(&alice, Expiry::Never)
        .await
        .unwrap();
    keys.authorize(
        &api_key(primary.token.expose_secret()),
        Action::Unlist,
        &PUSH,
    )
    .await
    .unwrap();

    // Password.
    keys.set_password(&alice, "correct horse").await.unwrap();
    assert_eq!(keys.sign_in("alice", "correct horse").await.unwrap(), alice);

    // Idle retirement and purge.
    clock.advance(Duration::days(401));
    let retired = keys.retire_idle().await.unwrap();
    assert!(retired >= 2, "retired {retired}");
    assert!(keys.purge_revoked(Duration::days(1)).await.unwrap() >= 1);
    assert_eq!(
        keys.token(&alice, ci.token.id()).await.unwrap_err(),
        Error::TokenNotFound
    );
}

/// Four refreshes of one token at once leave exactly one valid secret.
pub async fn concurrent_refreshes_leave_one_secret<B: Backend>(backend: &B) {
    let (keys, _clock, alice) = feedkey_on(backend).await;
    let keys = Arc::new(keys);
    for _ in 0..10 {
        let t = keys
            .issue(&alice, NewToken::new("ci", ci_scope()))
            .await
            .unwrap();
        let id = t.token.id();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let keys = Arc::clone(&keys);
                let alice = alice.clone();
                tokio::spawn(async move { keys.refresh(&alice, id).await })
            })
            .collect();
        let mut secrets = vec![t.token.expose_secret().to_owned()];
        for task in tasks {
            match task.await.unwrap() {
                Ok(issued) => secrets.push(issued.token.expose_secret().to_owned()),
                Err(Error::Store(StoreError::Conflict)) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        let mut valid = 0;
        for secret in &secrets {
            if keys
                .authorize(&api_key(secret), Action::Push, &PUSH)
                .await
                .is_ok()
            {
                valid += 1;
            }
        }
        assert_eq!(valid, 1, "{} secrets handed out", secrets.len());
    }
}

/// Several tasks authorize one token in a loop while another revokes it (or refreshes
/// it, when `refresh`): no authorize that starts after the call returned is allowed with
/// the old secret.
async fn stress<B: Backend>(backend: &B, refresh: bool) {
    let (keys, _clock, alice) = feedkey_on(backend).await;
    let keys = Arc::new(keys);
    let t = keys
        .issue(&alice, NewToken::new("ci", ci_scope()))
        .await
        .unwrap();
    let secret: Arc<str> = Arc::from(t.token.expose_secret());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let keys = Arc::clone(&keys);
            let secret = Arc::clone(&secret);
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut late_allows = 0;
                for _ in 0..200 {
                    let after = done.load(std::sync::atomic::Ordering::SeqCst);
                    let allowed = keys
                        .authorize(&api_key(&secret), Action::Push, &PUSH)
                        .await
                        .is_ok();
                    if after && allowed {
                        late_allows += 1;
                    }
                    tokio::task::yield_now().await;
                }
                late_allows
            })
        })
        .collect();
    tokio::task::yield_now().await;
    let fresh = if refresh {
        Some(keys.refresh(&alice, t.token.id()).await.unwrap())
    } else {
        keys.revoke(&alice, t.token.id()).await.unwrap();
        None
    };
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        assert_eq!(w.await.unwrap(), 0);
    }
    if let Some(fresh) = fresh {
        keys.authorize(&api_key(fresh.token.expose_secret()), Action::Push, &PUSH)
            .await
            .unwrap();
    }
}

/// No `authorize` that starts after a revoke returned is allowed.
pub async fn a_returned_revoke_is_seen_by_every_later_authorize<B: Backend>(backend: &B) {
    stress(backend, false).await;
}

/// No `authorize` that starts after a refresh returned is allowed with the old secret.
pub async fn a_returned_refresh_kills_the_old_secret_for_every_later_authorize<B: Backend>(
    backend: &B,
) {
    stress(backend, true).await;
}

/// Quotes, backslashes, wildcards and emoji in ids, descriptions and scopes are stored and
/// returned unchanged, and account ids keep their case.
pub async fn hostile_text_is_stored_and_returned_unchanged<B: Backend>(backend: &B) {
    let (keys, _clock, _) = feedkey_on(backend).await;
    let account = AccountId::new("Robert'); DROP TABLE feedkey_tokens;-- \\ \" ` 😈").unwrap();
    keys.create_account(&account, Expiry::Never).await.unwrap();
    let description = "'; DELETE FROM feedkey_accounts; -- \\\\ \"quoted\" `tick` 100% _ 😀";
    let scope = Scope::new(
        Permissions::FULL,
        Feeds::only(["fe'ed", "fe\"ed", "f%_\\"]).unwrap(),
        Packages::only(["it's.[a-z]*", "{a,b}.\\*", "100%_off.*"]).unwrap(),
    )
    .unwrap();
    let t = keys
        .issue(&account, NewToken::new(description, scope.clone()))
        .await
        .unwrap();
    let got = keys.token(&account, t.token.id()).await.unwrap();
    assert_eq!(got.description, description);
    assert_eq!(got.scope, scope);
    assert_eq!(got.account, account);
    keys.authorize(
        &api_key(t.token.expose_secret()),
        Action::Push,
        &Target::package("fe'ed", "IT'S.x"),
    )
    .await
    .unwrap();
    // Case matters for account ids, even where the database's default collation says
    // otherwise.
    let upper = AccountId::new("ALICE").unwrap();
    keys.create_account(&upper, Expiry::Never).await.unwrap();
    assert_eq!(keys.tokens(&upper).await.unwrap().len(), 1);
}

/// A corrupt stored row is a typed [`StoreError::Corrupt`](crate::StoreError::Corrupt),
/// never an allow. Needs [`Backend::spoil`]; skipped (passing) without it.
pub async fn bad_rows_are_typed_errors_never_allows<B: Backend>(backend: &B) {
    let (keys, _clock, alice) = feedkey_on(backend).await;
    let cases = [
        ("secret_hash", "$md5$abc"),
        ("secret_hash", "$fk-blake3$k=1$AAAA"),
        (
            "scope",
            r#"{"permissions":["read"],"feeds":"any","packages":{"only":{"patterns":["a["]}}}"#,
        ),
        ("scope", r#"{"permissions":["#),
        ("retired", "[{\"hash\":1}]"),
        ("kind", "superuser"),
    ];
    for (column, value) in cases {
        let t = keys
            .issue(&alice, NewToken::new("victim", Scope::full()))
            .await
            .unwrap();
        if !backend.spoil(t.token.id(), column, value).await {
            println!("skipped: this backend has no rows to spoil");
            return;
        }
        // A fresh store, so nothing cached hides the spoiled row.
        let fresh = Feedkey::builder(backend.store().await, key(1))
            .build()
            .unwrap();
        let denial = fresh
            .authorize(&api_key(t.token.expose_secret()), Action::Read, &PUSH)
            .await
            .unwrap_err();
        match denial.reason() {
            DenyReason::Store(StoreError::Corrupt { what, .. }) => {
                assert!(what.contains(&t.token.id().to_string()), "{what}");
            }
            other => panic!("{column}={value}: {other:?}"),
        }
        assert_eq!(denial.status(), DenyStatus::Unavailable);
    }
}

/// `update_token` writes only at the expected revision; `insert_token` refuses a duplicate
/// id and an unknown account.
pub async fn store_writes_are_compare_and_swap<B: Backend>(backend: &B) {
    let (keys, _clock, alice) = feedkey_on(backend).await;
    let t = keys
        .issue(&alice, NewToken::new("t", Scope::read_only()))
        .await
        .unwrap();
    let store = keys.store();
    let stored = store.token(&t.token.id()).await.unwrap().unwrap();
    let mut changed = crate::TokenRecord::clone(&stored.record);
    changed.description = "stale write".into();
    changed.revision += 1;
    assert_eq!(
        store
            .update_token(changed.clone(), stored.record.revision + 5)
            .await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        keys.token(&alice, t.token.id()).await.unwrap().description,
        "t"
    );
    assert_eq!(
        store.insert_token(changed.clone()).await,
        Err(StoreError::Duplicate)
    );
    assert_eq!(
        store
            .update_token(changed.clone(), stored.record.revision)
            .await,
        Ok(())
    );
    assert_eq!(
        keys.token(&alice, t.token.id()).await.unwrap().description,
        "stale write"
    );
    let mut orphan = changed;
    orphan.account = AccountId::new("nobody").unwrap();
    orphan.id = crate::TokenId::from_bytes([0xEE; 16]);
    assert_eq!(store.insert_token(orphan).await, Err(StoreError::NotFound));
}

/// Account ids that differ only by a trailing or leading space, by case, or by Unicode
/// normalisation (`é` precomposed, `e` and a combining accent) are different accounts on
/// every backend: created separately, each with its own password and tokens, and no
/// call for one ever reaches another's.
pub async fn ids_differing_in_spaces_case_or_normalisation_are_different_accounts<B: Backend>(
    backend: &B,
) {
    let (keys, _clock, _alice) = feedkey_on(backend).await;
    let names = ["alice", "alice ", " alice", "Alice", "\u{e9}", "e\u{301}"];
    let ids: Vec<AccountId> = names.iter().map(|n| AccountId::new(n).unwrap()).collect();
    let password = |i: usize| format!("password number {i} of six");
    for (i, id) in ids.iter().enumerate() {
        // "alice" was made by `keys`.
        if i > 0 {
            keys.create_account(id, Expiry::Never)
                .await
                .unwrap_or_else(|e| panic!("create {:?}: {e}", names[i]));
        }
        keys.issue(id, NewToken::new(names[i], Scope::read_only()))
            .await
            .unwrap();
    }
    for (i, id) in ids.iter().enumerate() {
        keys.set_password(id, &password(i)).await.unwrap();
    }
    for (i, name) in names.iter().enumerate() {
        // Each lists its own primary key and its own token, nobody else's.
        let listed = keys.tokens(&ids[i]).await.unwrap();
        assert_eq!(listed.len(), 2, "{name:?} lists {listed:?}");
        assert!(listed.iter().all(|t| t.account == ids[i]), "{name:?}");
        assert_eq!(listed[1].description, *name);
        // Its own password signs it in, as exactly the id asked; no other's does.
        for (j, _) in names.iter().enumerate() {
            let signed = keys.sign_in(name, &password(j)).await;
            if i == j {
                assert_eq!(signed.unwrap().as_str(), *name);
            } else {
                let denial = signed.unwrap_err();
                assert_eq!(
                    denial.reason(),
                    &DenyReason::WrongPassword,
                    "{name:?} with the password of {:?}",
                    names[j]
                );
            }
        }
    }
    // Removing one's password leaves every other's.
    keys.remove_password(&ids[1]).await.unwrap();
    for (i, name) in names.iter().enumerate() {
        let signed = keys.sign_in(name, &password(i)).await;
        if i == 1 {
            assert!(signed.is_err(), "{name:?} still signs in");
        } else {
            assert_eq!(signed.unwrap().as_str(), *name);
        }
    }
    // A name that only looks like one of them is no account at all.
    for ghost in ["alice  ", "ALICE", "alice\u{a0}"] {
        let id = AccountId::new(ghost).unwrap();
        assert_eq!(
            keys.set_password(&id, "whatever it is").await.unwrap_err(),
            Error::AccountNotFound,
            "{ghost:?}"
        );
        assert!(keys.tokens(&id).await.unwrap().is_empty(), "{ghost:?}");
        assert!(
            keys.sign_in(ghost, &password(0)).await.is_err(),
            "{ghost:?}"
        );
    }
}

/// Several stores opening the same empty storage at once all succeed, and opening it
/// again keeps what was written.
pub async fn migrations_run_from_several_servers_at_once<B: Backend>(backend: &B) {
    // Several stores opening the same empty storage at once: each migrates, none fails,
    // and the schema is whole afterwards.
    let (first, _, _) = tokio::join!(backend.store(), backend.store(), backend.store());
    let keys = Feedkey::builder(first, key(1)).build().unwrap();
    let alice = AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    if !backend.persistent() {
        println!("skipped: this backend keeps nothing between stores");
        return;
    }
    // Migrating again changes nothing.
    let again = Feedkey::builder(backend.store().await, key(1))
        .build()
        .unwrap();
    assert_eq!(again.tokens(&alice).await.unwrap().len(), 1);
}

/// A store remembers the token keys it was used with, and a server whose key it has
/// never seen (a lost key file, another server's own key) is refused as a whole, with
/// the key version and both fingerprints; a rotation that keeps the old key among the
/// previous ones works, and so does dropping the old key afterwards.
pub async fn a_store_refuses_keys_it_was_never_used_with<B: Backend>(backend: &B) {
    let first = Arc::new(backend.store().await);
    // Another server on the same storage (the same store where nothing persists).
    let server = || async {
        if backend.persistent() {
            Arc::new(backend.store().await)
        } else {
            Arc::clone(&first)
        }
    };
    let with_keys = |store, current: TokenKey, previous: Vec<TokenKey>| {
        Feedkey::builder(store, current)
            .previous_keys(previous)
            .build()
            .unwrap()
    };
    let keys = with_keys(Arc::clone(&first), key(1), vec![]);
    keys.check_keys().await.unwrap();
    let alice = AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    let t = keys
        .issue(&alice, NewToken::new("ci", ci_scope()))
        .await
        .unwrap();
    let request = api_key(t.token.expose_secret());

    // The same key twice: fine.
    let again = with_keys(server().await, key(1), vec![]);
    again.check_keys().await.unwrap();
    again
        .authorize(&request, Action::Push, &PUSH)
        .await
        .unwrap();

    // A new key alone on a used store: refused, naming both sides.
    let refused = with_keys(server().await, key(2), vec![]).check_keys().await;
    assert_eq!(
        refused,
        Err(KeyCheckError::UnknownKeys {
            version: 2,
            configured: key(2).fingerprint(),
            stored: vec![(1, key(1).fingerprint())],
        })
    );
    let text = refused.unwrap_err().to_string();
    assert!(text.contains("version 2"), "{text}");
    assert!(text.contains(&key(2).fingerprint().to_string()), "{text}");
    assert!(text.contains(&key(1).fingerprint().to_string()), "{text}");

    // A lost key file, replaced by a new key of the same version: refused.
    let lost = TokenKey::new(1, &[0x55; 32]);
    assert_eq!(
        with_keys(server().await, lost.clone(), vec![])
            .check_keys()
            .await,
        Err(KeyCheckError::Mismatch {
            version: 1,
            configured: lost.fingerprint(),
            stored: key(1).fingerprint(),
        })
    );

    // Rotation: key 2, with key 1 among the previous keys. Tokens keep working (and are
    // rehashed under key 2).
    let rotated = with_keys(server().await, key(2), vec![key(1)]);
    rotated.check_keys().await.unwrap();
    rotated
        .authorize(&request, Action::Push, &PUSH)
        .await
        .unwrap();
    let u = rotated
        .issue(&alice, NewToken::new("after", ci_scope()))
        .await
        .unwrap();

    // Key 1 retired afterwards: the store knows key 2.
    let retired = with_keys(server().await, key(2), vec![]);
    retired.check_keys().await.unwrap();
    for token in [&t, &u] {
        retired
            .authorize(&api_key(token.token.expose_secret()), Action::Push, &PUSH)
            .await
            .unwrap();
    }

    // Another key of a version the store knows, current or previous: still refused.
    assert!(matches!(
        with_keys(server().await, lost.clone(), vec![])
            .check_keys()
            .await,
        Err(KeyCheckError::Mismatch { version: 1, .. })
    ));
    assert!(matches!(
        with_keys(server().await, key(3), vec![TokenKey::new(2, &[0x66; 32])])
            .check_keys()
            .await,
        Err(KeyCheckError::Mismatch { version: 2, .. })
    ));

    // The ledger itself: insert-if-absent, the first fingerprint wins, also when several
    // servers race to remember one version.
    let ledger = server().await;
    let mut remembered = ledger.key_fingerprints().await.unwrap();
    remembered.sort_unstable();
    assert_eq!(
        remembered,
        vec![(1, key(1).fingerprint()), (2, key(2).fingerprint())]
    );
    let candidates: Vec<_> = (0..4u8)
        .map(|n| TokenKey::new(9, &[n; 32]).fingerprint())
        .collect();
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(server().await);
    }
    let races: Vec<_> = stores
        .into_iter()
        .zip(candidates.clone())
        .map(|(store, fingerprint)| {
            tokio::spawn(async move { store.remember_key(9, fingerprint).await })
        })
        .collect();
    let mut winners = Vec::new();
    for race in races {
        winners.push(race.await.unwrap().unwrap());
    }
    let winner = winners[0];
    assert!(candidates.contains(&winner));
    assert!(winners.iter().all(|w| *w == winner), "{winners:?}");
    assert_eq!(ledger.remember_key(9, candidates[3]).await, Ok(winner));
}

/// A stopping server's [`Feedkey::flush`] writes the last uses its store held back, so
/// that another server (or the next start) sees them at once, not after the store's
/// flush interval.
pub async fn a_flush_writes_the_held_back_last_uses<B: Backend>(backend: &B) {
    let (keys, _, alice) = feedkey_on(backend).await;
    let t = keys
        .issue(&alice, NewToken::new("ci", ci_scope()))
        .await
        .unwrap();
    keys.authorize(&api_key(t.token.expose_secret()), Action::Push, &PUSH)
        .await
        .unwrap();
    keys.flush().await.unwrap();
    // The next server on the same storage (the same store where nothing persists).
    let stored = if backend.persistent() {
        backend.store().await.token(&t.token.id()).await
    } else {
        keys.store().token(&t.token.id()).await
    };
    assert!(
        stored.unwrap().unwrap().last_used_at.is_some(),
        "the use was not written by the flush"
    );
}
