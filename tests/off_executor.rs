//! A slow password check or a blocked SQLite write never stalls the executor: on a
//! current-thread runtime, where one thread runs every task, a token is authorized while a
//! password verify and an SQLite write are both held in progress.
//!
//! Nothing here depends on timing. The verify is held by a gate (a test hook run where the
//! verify runs) and the write by another connection's open write transaction; both are
//! released only after the token was authorized. Where either ran on the executor's
//! thread, that thread would be stuck in it, the token could not be authorized first, and
//! the assertions below fail (the gate gives up after a while so that such a failure ends).
#![cfg(feature = "sqlite")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use feedkey::{
    AccountId, Action, Expiry, Feedkey, NewToken, PasswordConfig, Request, Scope, SqliteStore,
    Target, TokenKey,
};

/// How long a held verify waits to be released before it gives up: only ever reached
/// when the test is failing (the executor is stuck in the verify).
const GIVE_UP: Duration = Duration::from_secs(10);

#[test]
fn a_token_is_authorized_while_a_password_check_and_a_sqlite_write_are_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    // The gate: a verify says it has begun, then waits to be released.
    let (began, mut verify_began) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (release_verify, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let gave_up = Arc::new(AtomicBool::new(false));
    let gave_up_in_hook = Arc::clone(&gave_up);
    let passwords = PasswordConfig::insecure_fast_for_tests().before_each_verify(move || {
        let _ = began.send(());
        let waited = released.lock().unwrap().recv_timeout(GIVE_UP);
        if waited.is_err() {
            gave_up_in_hook.store(true, Ordering::SeqCst);
        }
    });

    runtime.block_on(async {
        let store = SqliteStore::open(&path).unwrap();
        let keys = Arc::new(
            Feedkey::builder(store, TokenKey::generate(1).unwrap())
                .passwords(passwords)
                .build()
                .unwrap(),
        );
        let alice = AccountId::new("alice").unwrap();
        keys.create_account(&alice, Expiry::Never).await.unwrap();
        keys.set_password(&alice, "correct horse battery")
            .await
            .unwrap();
        let reader = keys
            .issue(&alice, NewToken::new("ci", Scope::read_only()))
            .await
            .unwrap();
        let doomed = keys
            .issue(&alice, NewToken::new("old", Scope::read_only()))
            .await
            .unwrap();

        // Another connection takes the file's write lock and keeps it.
        let blocker = rusqlite::Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

        // An SQLite write: it cannot commit until the blocker lets go.
        let write = tokio::spawn({
            let keys = Arc::clone(&keys);
            let alice = alice.clone();
            let id = doomed.token.id();
            async move { keys.revoke(&alice, id).await }
        });
        // A password check: held by the gate once its verify has begun.
        let password = tokio::spawn({
            let keys = Arc::clone(&keys);
            async move {
                let request = Request::basic("alice", "correct horse battery");
                keys.authorize(&request, Action::Read, &Target::feed("main"))
                    .await
                    .map(drop)
            }
        });
        verify_began.recv().await.unwrap();
        // Let the write task run until it waits for its write (it cannot finish it).
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
        assert!(
            !password.is_finished(),
            "the password verify ran on the executor thread: it finished before its release"
        );
        assert!(
            !write.is_finished(),
            "the SQLite write ran on the executor thread: it finished (or failed) while \
             another connection held the write lock"
        );

        // Meanwhile, on the same (only) executor thread: a token is authorized.
        let request = Request::token(reader.token.expose_secret());
        keys.authorize(&request, Action::Read, &Target::feed("main"))
            .await
            .unwrap();
        assert!(!password.is_finished() && !write.is_finished());

        // Release both: each completes, and well.
        release_verify.send(()).unwrap();
        blocker.execute_batch("ROLLBACK").unwrap();
        password.await.unwrap().unwrap();
        write.await.unwrap().unwrap();
    });
    assert!(
        !gave_up.load(Ordering::SeqCst),
        "the verify was never released"
    );
}
