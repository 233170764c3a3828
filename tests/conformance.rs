//! One conformance suite, run against every backend: memory, SQLite on a temporary file,
//! PostgreSQL and MySQL/MariaDB.
//!
//! The server backends read their URLs from `FEEDKEY_TEST_POSTGRES_URL` and
//! `FEEDKEY_TEST_MYSQL_URL`; unset, their tests print that they were skipped and pass.
//! Each test gets its own PostgreSQL schema or MySQL database, so tests run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
#[path = "conformance/rules.rs"]
mod rules;

use rules::*;

use std::future::Future;
use std::sync::Arc;

use common::{START, api_key, key};
use feedkey::store::KeyCheckError;
use feedkey::time::Duration;
use feedkey::{
    AccountId, Action, DenyReason, DenyStatus, Error, Expiry, Feedkey, Feeds, LifetimePolicy,
    ManualClock, MemoryStore, NewChild, NewToken, Packages, PasswordConfig, Permissions, Refresh,
    Scope, StoreError, Target, TokenEdit, TokenId, TokenKey, TokenStatus, TokenStore,
};

/// A backend under test: how to make a fresh store, and how to spoil a stored row.
trait Backend: Send + Sync + 'static {
    type Store: TokenStore + 'static;

    /// A store on empty, private storage.
    fn store(&self) -> impl Future<Output = Self::Store> + Send;

    /// Overwrites a text column of a token's row behind the store's back (SQL only).
    fn spoil(&self, id: TokenId, column: &str, value: &str) -> impl Future<Output = bool> + Send;

    /// Whether two stores made by [`Backend::store`] share their storage.
    fn persistent(&self) -> bool {
        true
    }
}

struct Memory;

impl Backend for Memory {
    type Store = MemoryStore;
    fn persistent(&self) -> bool {
        false
    }
    async fn store(&self) -> MemoryStore {
        MemoryStore::new()
    }
    async fn spoil(&self, _: TokenId, _: &str, _: &str) -> bool {
        false
    }
}

#[cfg(feature = "sqlite")]
struct Sqlite {
    dir: tempfile::TempDir,
}

#[cfg(feature = "sqlite")]
impl Sqlite {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

#[cfg(feature = "sqlite")]
impl Backend for Sqlite {
    type Store = feedkey::SqliteStore;
    async fn store(&self) -> feedkey::SqliteStore {
        feedkey::SqliteStore::open(self.dir.path().join("tokens.db")).unwrap()
    }
    async fn spoil(&self, id: TokenId, column: &str, value: &str) -> bool {
        let conn = rusqlite::Connection::open(self.dir.path().join("tokens.db")).unwrap();
        conn.execute(
            &format!("UPDATE feedkey_tokens SET {column} = ?1 WHERE id = ?2"),
            rusqlite::params![value, id.as_bytes().to_vec()],
        )
        .unwrap();
        true
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
#[path = "common/database.rs"]
mod database;

#[cfg(any(feature = "postgres", feature = "mysql"))]
mod server {
    use super::*;
    use sqlx::AssertSqlSafe;

    pub use super::database::Server;

    impl Backend for Server {
        type Store = feedkey::SqlStore;
        async fn store(&self) -> feedkey::SqlStore {
            feedkey::SqlStore::connect(&self.url).await.unwrap()
        }
        async fn spoil(&self, id: TokenId, column: &str, value: &str) -> bool {
            let pool = sqlx::AnyPool::connect(&self.url).await.unwrap();
            let sql = if self.postgres {
                format!("UPDATE feedkey_tokens SET {column} = $1 WHERE id = $2")
            } else {
                format!("UPDATE feedkey_tokens SET {column} = ? WHERE id = ?")
            };
            sqlx::query(AssertSqlSafe(sql))
                .bind(value.to_owned())
                .bind(id.as_bytes().to_vec())
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            true
        }
    }
}

/// A `Feedkey` on a fresh store of `backend`, with a clock standing at [`START`].
async fn keys<B: Backend>(backend: &B) -> (Feedkey<B::Store>, ManualClock, AccountId) {
    let clock = ManualClock::new(START);
    let keys = Feedkey::builder(backend.store().await, key(1))
        .clock(clock.clone())
        .passwords(PasswordConfig::insecure_fast_for_tests())
        .lifetime_policy(LifetimePolicy::default().with_idle_expiry(Duration::days(400)))
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    (keys, clock, alice)
}

fn ci_scope() -> Scope {
    Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::only(["ci"]).unwrap(),
        Packages::only(["Contoso.Service.*"]).unwrap(),
    )
    .unwrap()
}

const PUSH: Target<'static> = Target::package("ci", "Contoso.Service.Core");

async fn every_operation_behaves_alike<B: Backend>(backend: &B) {
    let (keys, clock, alice) = keys(backend).await;
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
        Error::Widens(feedkey::Widening::Feeds)
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

async fn concurrent_refreshes_leave_one_secret<B: Backend>(backend: &B) {
    let (keys, _clock, alice) = keys(backend).await;
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
    let (keys, _clock, alice) = keys(backend).await;
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

async fn a_returned_revoke_is_seen_by_every_later_authorize<B: Backend>(backend: &B) {
    stress(backend, false).await;
}

async fn a_returned_refresh_kills_the_old_secret_for_every_later_authorize<B: Backend>(
    backend: &B,
) {
    stress(backend, true).await;
}

async fn hostile_text_is_stored_and_returned_unchanged<B: Backend>(backend: &B) {
    let (keys, _clock, _) = keys(backend).await;
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

async fn bad_rows_are_typed_errors_never_allows<B: Backend>(backend: &B) {
    let (keys, _clock, alice) = keys(backend).await;
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

async fn store_writes_are_compare_and_swap<B: Backend>(backend: &B) {
    let (keys, _clock, alice) = keys(backend).await;
    let t = keys
        .issue(&alice, NewToken::new("t", Scope::read_only()))
        .await
        .unwrap();
    let store = keys.store();
    let stored = store.token(&t.token.id()).await.unwrap().unwrap();
    let mut changed = feedkey::TokenRecord::clone(&stored.record);
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
    orphan.id = feedkey::TokenId::from_bytes([0xEE; 16]);
    assert_eq!(store.insert_token(orphan).await, Err(StoreError::NotFound));
}

/// Account ids that differ only by a trailing or leading space, by case, or by Unicode
/// normalisation (`é` precomposed, `e` and a combining accent) are different accounts on
/// every backend: created separately, each with its own password and tokens, and no
/// call for one ever reaches another's.
async fn ids_differing_in_spaces_case_or_normalisation_are_different_accounts<B: Backend>(
    backend: &B,
) {
    let (keys, _clock, _alice) = keys(backend).await;
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

async fn migrations_run_from_several_servers_at_once<B: Backend>(backend: &B) {
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
async fn a_store_refuses_keys_it_was_never_used_with<B: Backend>(backend: &B) {
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

/// A MySQL/MariaDB database made before account ids compared byte for byte (its ids in
/// `utf8mb4_bin`, which ignores trailing spaces) is migrated with its rows and its
/// foreign key, also after a migration that a crash cut short.
#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_database_from_before_byte_comparison_is_migrated() {
    use sqlx::{AssertSqlSafe, Row};

    let Some(server) = server::Server::new("FEEDKEY_TEST_MYSQL_URL").await else {
        return;
    };
    let exec = |sql: &'static str| {
        let url = server.url.clone();
        async move {
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            sqlx::query(AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    };
    let collation_and_fk = || {
        let url = server.url.clone();
        async move {
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            let collations: Vec<String> = sqlx::query(
                "SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME, ' ', COLLATION_NAME) \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
                 AND ((TABLE_NAME = 'feedkey_accounts' AND COLUMN_NAME = 'id') \
                 OR (TABLE_NAME = 'feedkey_tokens' AND COLUMN_NAME = 'account')) \
                 ORDER BY TABLE_NAME",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get(0).unwrap())
            .collect();
            let fks: i64 = sqlx::query(
                "SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS \
                 WHERE CONSTRAINT_SCHEMA = DATABASE() \
                 AND CONSTRAINT_NAME = 'feedkey_tokens_account_fk'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
            pool.close().await;
            (collations, fks)
        }
    };
    // Today's schema, with alice and a token; then set back to version 2.
    let keys = Feedkey::builder(server.store().await, key(1))
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    keys.issue(&alice, NewToken::new("ci", ci_scope()))
        .await
        .unwrap();
    exec("ALTER TABLE feedkey_tokens DROP FOREIGN KEY feedkey_tokens_account_fk").await;
    exec("ALTER TABLE feedkey_accounts MODIFY id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL").await;
    exec("ALTER TABLE feedkey_tokens MODIFY account VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL").await;
    exec("ALTER TABLE feedkey_tokens ADD CONSTRAINT feedkey_tokens_account_fk FOREIGN KEY (account) REFERENCES feedkey_accounts (id)").await;
    exec("DELETE FROM feedkey_schema WHERE version >= 3").await;
    exec("DROP TABLE feedkey_keys").await;
    let (collations, fks) = collation_and_fk().await;
    assert!(
        collations.iter().all(|c| c.ends_with(" utf8mb4_bin")),
        "{collations:?}"
    );
    assert_eq!(fks, 1);
    // Through the old hole: a token issued to "alice ", stored under that name.
    let spaced = AccountId::new("alice ").unwrap();
    let stray = keys
        .issue(&spaced, NewToken::new("stray", ci_scope()))
        .await
        .unwrap();
    // The old collation hands it out with alice's tokens.
    let stored = keys.store().account_tokens(&alice).await.unwrap();
    assert_eq!(stored.len(), 3);
    drop(keys);
    // Nor had version 2 the column of version 5.
    exec("ALTER TABLE feedkey_tokens DROP COLUMN parent_secret_set_at").await;

    // Connecting migrates it.
    let keys = Feedkey::builder(server.store().await, key(1))
        .passwords(PasswordConfig::insecure_fast_for_tests())
        .build()
        .unwrap();
    let (collations, fks) = collation_and_fk().await;
    assert!(
        collations
            .iter()
            .all(|c| c.ends_with("_bin") && !c.ends_with(" utf8mb4_bin")),
        "{collations:?}"
    );
    assert_eq!(fks, 1);
    // The stray token is revoked, and kept as alice's for the audit.
    assert_eq!(keys.tokens(&alice).await.unwrap().len(), 2);
    let denial = keys
        .authorize(&api_key(stray.token.expose_secret()), Action::Push, &PUSH)
        .await
        .unwrap_err();
    assert_eq!(denial.reason(), &DenyReason::Revoked);
    let kept = keys
        .store()
        .token(&stray.token.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.record.account, alice);
    assert!(keys.tokens(&spaced).await.unwrap().is_empty());
    assert!(
        keys.store()
            .account_tokens(&spaced)
            .await
            .unwrap()
            .is_empty()
    );
    keys.create_account(&spaced, Expiry::Never).await.unwrap();
    assert_eq!(keys.tokens(&spaced).await.unwrap().len(), 1);
    assert_eq!(keys.tokens(&alice).await.unwrap().len(), 2);
    drop(keys);

    // A migration cut short after dropping the foreign key runs again.
    exec("ALTER TABLE feedkey_tokens DROP FOREIGN KEY feedkey_tokens_account_fk").await;
    exec("DELETE FROM feedkey_schema WHERE version >= 3").await;
    let keys = Feedkey::builder(server.store().await, key(1))
        .build()
        .unwrap();
    assert_eq!(collation_and_fk().await.1, 1);
    assert_eq!(keys.tokens(&spaced).await.unwrap().len(), 1);
    assert_eq!(keys.tokens(&alice).await.unwrap().len(), 2);
    let primary = keys.tokens(&spaced).await.unwrap().remove(0);
    assert_eq!(primary.status, TokenStatus::Active);
    server.cleanup().await;
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&Memory).await;
                }
            )*
        }

        #[cfg(feature = "sqlite")]
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&Sqlite::new()).await;
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(server) = server::Server::new("FEEDKEY_TEST_POSTGRES_URL").await {
                        super::$name(&server).await;
                        server.cleanup().await;
                    }
                }
            )*
        }

        #[cfg(feature = "mysql")]
        mod mysql {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(server) = server::Server::new("FEEDKEY_TEST_MYSQL_URL").await {
                        super::$name(&server).await;
                        server.cleanup().await;
                    }
                }
            )*
        }
    };
}

conformance!(
    every_operation_behaves_alike,
    concurrent_refreshes_leave_one_secret,
    a_returned_revoke_is_seen_by_every_later_authorize,
    a_returned_refresh_kills_the_old_secret_for_every_later_authorize,
    hostile_text_is_stored_and_returned_unchanged,
    bad_rows_are_typed_errors_never_allows,
    store_writes_are_compare_and_swap,
    migrations_run_from_several_servers_at_once,
    a_revoked_parent_ends_its_children_on_every_path,
    a_regenerated_primary_key_ends_its_children,
    a_refreshed_parent_ends_its_children_when_its_window_closes,
    a_narrowed_parent_network_binds_its_children_on_every_path,
    a_child_derived_with_the_old_secret_lives_as_long_as_that_secret,
    a_child_derived_while_its_parent_is_renewed_dies_with_the_old_secret,
    an_idle_parent_derives_nothing_on_either_path,
    a_refresh_that_loses_a_race_says_so,
    expiries_every_store_can_hold_are_the_only_ones_accepted,
    ids_differing_in_spaces_case_or_normalisation_are_different_accounts,
    a_store_refuses_keys_it_was_never_used_with,
);
