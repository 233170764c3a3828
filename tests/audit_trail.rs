//! The stored audit trail (`feedkey::audit::StoredAudit`) on every backend that keeps one:
//! memory, SQLite on a temporary file, PostgreSQL and MySQL/MariaDB. Events are written off
//! the request path and read back by each filter and page; a burst of 100 000 events from
//! four tasks is stored whole with the default queue; a tiny queue counts every drop;
//! a flush writes everything; revocations lost to a restore are re-applied from the trail.
//!
//! The server backends read their URLs from `FEEDKEY_TEST_POSTGRES_URL` and
//! `FEEDKEY_TEST_MYSQL_URL`; unset, their tests print that they were skipped and pass.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]

use std::sync::{Arc, Mutex};
use std::time::Instant;

use feedkey::audit::{AuditEvent, AuditFilter, AuditSink, StoredAudit, TrailEvent, TrailKind};
use feedkey::policy::Clock as _;
use feedkey::store::testing::{PUSH, api_key, ci_scope, key};
use feedkey::store::{AuditStore, TokenStore};
use feedkey::time::{Duration, OffsetDateTime, macros::datetime};
use feedkey::{AccountId, Action, DenyReason, Expiry, Feedkey, GrantedBy, ManualClock, NewToken};

const START: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);

/// A store the trail tests run on.
trait TrailStore: TokenStore + AuditStore + Clone + 'static {}
impl<S: TokenStore + AuditStore + Clone + 'static> TrailStore for S {}

/// A `Feedkey` on `store` whose audit goes to `audit`, its clock at [`START`].
fn feedkey_with<S: TrailStore>(store: &S, audit: &StoredAudit) -> (Feedkey<S>, ManualClock) {
    let clock = ManualClock::new(START);
    let keys = Feedkey::builder(store.clone(), key(1))
        .clock(clock.clone())
        .audit(audit.clone())
        .build()
        .unwrap();
    (keys, clock)
}

/// Every page of `filter`, followed by its cursor.
async fn all_pages<S: TrailStore>(keys: &Feedkey<S>, filter: AuditFilter) -> Vec<TrailEvent> {
    let mut filter = filter;
    let mut events = Vec::new();
    loop {
        let page = keys.audit_events(&filter).await.unwrap();
        events.extend(page.events);
        match page.next {
            Some(next) => filter = filter.after(next),
            None => return events,
        }
    }
}

fn kinds(events: &[TrailEvent]) -> Vec<TrailKind> {
    events.iter().map(|e| e.kind.clone()).collect()
}

/// How many rows the store holds (read in pages, as a registry would).
async fn stored_rows<S: AuditStore>(store: &S) -> usize {
    let mut filter = AuditFilter::new().limit(AuditFilter::MAX_LIMIT);
    let mut count = 0;
    loop {
        let rows = store.audit_rows(&filter).await.unwrap();
        let Some(last) = rows.last() else {
            return count;
        };
        count += rows.len();
        filter = filter.after(last.id);
    }
}

/// One real event of each of a few kinds, taken from a `Feedkey` (events are made by the
/// crate only).
async fn sample_events() -> Vec<AuditEvent> {
    let seen = Arc::new(Mutex::new(Vec::<AuditEvent>::new()));
    let sink = Arc::clone(&seen);
    let keys = Feedkey::builder(feedkey::MemoryStore::new(), key(1))
        .audit(move |event: &AuditEvent| sink.lock().unwrap().push(event.clone()))
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    let token = keys
        .issue(&alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    keys.authorize(&api_key(token.token.expose_secret()), Action::Push, &PUSH)
        .await
        .unwrap();
    let events = seen.lock().unwrap().clone();
    assert_eq!(events.len(), 3);
    events
}

async fn events_are_found_by_each_filter_and_paged<S: TrailStore>(store: S) {
    let audit = StoredAudit::new(store.clone()).unwrap();
    let (keys, clock) = feedkey_with(&store, &audit);
    let alice = AccountId::new("alice").unwrap();
    let bob = AccountId::new("bob").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    keys.create_account(&bob, Expiry::Never).await.unwrap();
    let ci = keys
        .issue(&alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    let secret = ci.token.expose_secret().to_owned();
    // An hour later: two uses, one denial (a wrong feed) from an address.
    clock.advance(Duration::hours(1));
    let from = "192.0.2.7".parse().unwrap();
    for _ in 0..2 {
        keys.authorize(&api_key(&secret), Action::Push, &PUSH)
            .await
            .unwrap();
    }
    let denied = keys
        .authorize(
            &api_key(&secret).with_client_addr(from),
            Action::Push,
            &feedkey::Target::package("other", "Contoso.Service.Core"),
        )
        .await
        .unwrap_err();
    assert_eq!(denied.reason(), &DenyReason::FeedOutOfScope);
    // Two hours after the start: the revocation.
    clock.advance(Duration::hours(1));
    keys.revoke(&alice, ci.info.id).await.unwrap();
    keys.flush().await.unwrap();
    assert_eq!(audit.dropped(), 0);

    // By account: alice's events, in order; bob's one.
    let of_alice = all_pages(&keys, AuditFilter::new().account(&alice)).await;
    let used = TrailKind::Used {
        action: Action::Push,
        by: GrantedBy::Token,
    };
    let revoked = TrailKind::Revoked {
        cause: feedkey::audit::RevokeCause::Owner,
    };
    assert_eq!(
        kinds(&of_alice),
        [
            TrailKind::AccountCreated,
            TrailKind::Issued,
            used.clone(),
            used.clone(),
            TrailKind::Denied {
                reason: "feed-out-of-scope".to_owned()
            },
            revoked.clone(),
        ]
    );
    assert!(of_alice.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(of_alice[4].client_addr, Some(from));
    assert_eq!(of_alice[4].at, START + Duration::hours(1));
    let of_bob = all_pages(&keys, AuditFilter::new().account(&bob)).await;
    assert_eq!(kinds(&of_bob), [TrailKind::AccountCreated]);
    assert_eq!(of_bob[0].account.as_ref(), Some(&bob));

    // By token: the CI token's life, without the account's creation.
    let of_ci = all_pages(&keys, AuditFilter::new().token(ci.info.id)).await;
    assert_eq!(of_ci.len(), 5);
    assert!(of_ci.iter().all(|e| e.token == Some(ci.info.id)));
    assert_eq!(of_ci[0].kind, TrailKind::Issued);

    // By kind.
    let revocations = all_pages(&keys, AuditFilter::new().kind("revoked")).await;
    assert_eq!(kinds(&revocations), [revoked]);
    assert_eq!(revocations[0].token, Some(ci.info.id));
    assert!(
        all_pages(&keys, AuditFilter::new().kind("teleported"))
            .await
            .is_empty()
    );

    // By time: since is inclusive, until exclusive.
    let middle = all_pages(
        &keys,
        AuditFilter::new()
            .since(START + Duration::hours(1))
            .until(START + Duration::hours(2)),
    )
    .await;
    assert_eq!(kinds(&middle)[..2], [used.clone(), used]);
    assert_eq!(middle.len(), 3);
    let later = all_pages(&keys, AuditFilter::new().since(START + Duration::hours(2))).await;
    assert_eq!(later.len(), 1);

    // Paged: two at a time, the same events as one page, the last page says so.
    let first = keys
        .audit_events(&AuditFilter::new().account(&alice).limit(2))
        .await
        .unwrap();
    assert_eq!(first.events.len(), 2);
    assert_eq!(first.next, Some(first.events[1].id));
    let paged = all_pages(&keys, AuditFilter::new().account(&alice).limit(2)).await;
    assert_eq!(paged, of_alice);
    let whole = keys
        .audit_events(&AuditFilter::new().account(&alice).limit(6))
        .await
        .unwrap();
    assert_eq!(whole.events, of_alice);
    assert_eq!(whole.next, None);

    // Filters combine.
    let combined = all_pages(
        &keys,
        AuditFilter::new()
            .account(&alice)
            .token(ci.info.id)
            .kind("used")
            .since(START),
    )
    .await;
    assert_eq!(combined.len(), 2);
    assert!(
        all_pages(&keys, AuditFilter::new().account(&bob).token(ci.info.id))
            .await
            .is_empty()
    );
}

/// 100 000 events from four tasks at full speed, through the default queue: all stored,
/// none dropped.
async fn a_burst_of_100_000_events_from_4_tasks_is_stored_whole<S: TrailStore>(store: S) {
    const TASKS: usize = 4;
    const EACH: usize = 25_000;
    let audit = StoredAudit::new(store.clone()).unwrap();
    let events = Arc::new(sample_events().await);
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (audit, events) = (audit.clone(), Arc::clone(&events));
            tokio::spawn(async move {
                for i in 0..EACH {
                    audit.record(&events[i % events.len()]);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    audit.flush().await.unwrap();
    let took = started.elapsed();
    assert_eq!(audit.dropped(), 0);
    assert_eq!(audit.written(), (TASKS * EACH) as u64);
    assert_eq!(stored_rows(&store).await, TASKS * EACH);
    println!("100 000 events stored in {took:?}");
}

/// A queue of four and a writer that cannot run (the test holds the only thread):
/// exactly four events are queued, every other one is counted as dropped, and the flush
/// writes the four.
async fn with_a_tiny_queue_every_drop_is_counted_exactly<S: TrailStore>(store: S) {
    let audit = StoredAudit::builder(store.clone())
        .capacity(4)
        .start()
        .unwrap();
    let events = sample_events().await;
    // No await in this loop: the writer task, on this same thread, never runs.
    for i in 0..100 {
        audit.record(&events[i % events.len()]);
    }
    assert_eq!(audit.dropped(), 96);
    audit.flush().await.unwrap();
    assert_eq!(audit.written(), 4);
    assert_eq!(stored_rows(&store).await, 4);
    // Again, after the flush emptied the queue: enqueued == stored + dropped.
    for i in 0..10 {
        audit.record(&events[i % events.len()]);
    }
    audit.flush().await.unwrap();
    assert_eq!(audit.dropped(), 96 + 6);
    assert_eq!(audit.written(), 8);
    assert_eq!(stored_rows(&store).await, 8);
    assert_eq!(110, audit.written() + audit.dropped());
}

/// `Feedkey::flush` waits for the writer: everything recorded before it is stored when it
/// returns.
async fn a_flush_writes_every_event_recorded_before_it<S: TrailStore>(store: S) {
    let audit = StoredAudit::builder(store.clone())
        .batch(7)
        .start()
        .unwrap();
    let (keys, _) = feedkey_with(&store, &audit);
    let alice = AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    let events = sample_events().await;
    for i in 0..1_000 {
        audit.record(&events[i % events.len()]);
    }
    keys.flush().await.unwrap();
    assert_eq!(stored_rows(&store).await, 1_001);
    assert_eq!(audit.written(), 1_001);
}

/// A restore of the token tables brings a revoked token back to life; the trail, kept,
/// revokes it again, once.
async fn revocations_lost_to_a_restore_are_replayed_from_the_trail<S: TrailStore>(store: S) {
    let audit = StoredAudit::new(store.clone()).unwrap();
    let (keys, clock) = feedkey_with(&store, &audit);
    let alice = AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    let ci = keys
        .issue(&alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap();
    let kept = keys
        .issue(&alice, NewToken::new("kept", ci_scope()))
        .await
        .unwrap();
    // The backup.
    let backup = (*store.token(&ci.info.id).await.unwrap().unwrap().record).clone();
    let backup_taken_at = clock.now();
    clock.advance(Duration::minutes(5));
    keys.revoke(&alice, ci.info.id).await.unwrap();
    keys.flush().await.unwrap();
    let request = api_key(ci.token.expose_secret());
    assert_eq!(
        keys.authorize(&request, Action::Push, &PUSH)
            .await
            .unwrap_err()
            .reason()
            .clone(),
        DenyReason::Revoked
    );
    // The restore: the token's row as the backup holds it (the trail is kept).
    let now_revision = store
        .token(&ci.info.id)
        .await
        .unwrap()
        .unwrap()
        .record
        .revision;
    store.update_token(backup, now_revision).await.unwrap();
    keys.authorize(&request, Action::Push, &PUSH)
        .await
        .expect("the restore brought the revoked token back to life");

    let replayed = keys
        .replay_revocations(backup_taken_at - Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    assert_eq!(
        keys.authorize(&request, Action::Push, &PUSH)
            .await
            .unwrap_err()
            .reason()
            .clone(),
        DenyReason::Revoked
    );
    keys.authorize(&api_key(kept.token.expose_secret()), Action::Push, &PUSH)
        .await
        .expect("a token never revoked stays alive");
    // Idempotent; and the re-revocation is audited.
    assert_eq!(keys.replay_revocations(backup_taken_at).await.unwrap(), 0);
    keys.flush().await.unwrap();
    let revocations = all_pages(&keys, AuditFilter::new().kind("revoked").token(ci.info.id)).await;
    assert_eq!(revocations.len(), 2);
    // A revocation before `since` is not replayed.
    let second = store.token(&ci.info.id).await.unwrap().unwrap().record;
    let mut alive = (*second).clone();
    alive.revoked_at = None;
    store.update_token(alive, second.revision).await.unwrap();
    assert_eq!(
        keys.replay_revocations(clock.now() + Duration::minutes(1))
            .await
            .unwrap(),
        0
    );
}

/// `Feedkey::purge_audit` deletes the events older than it is told, by the `Feedkey`'s
/// clock; a sink's retention deletes them when its writer starts, by the system's.
async fn old_events_are_purged_by_age_and_by_the_retention<S: TrailStore>(store: S) {
    let audit = StoredAudit::new(store.clone()).unwrap();
    let (keys, clock) = feedkey_with(&store, &audit);
    let alice = AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap(); // at START
    clock.advance(Duration::days(10));
    keys.issue(&alice, NewToken::new("CI", ci_scope()))
        .await
        .unwrap(); // at START + 10 days
    clock.advance(Duration::days(1));
    keys.flush().await.unwrap();
    assert_eq!(stored_rows(&store).await, 2);
    assert_eq!(keys.purge_audit(Duration::days(30)).await.unwrap(), 0);
    assert_eq!(keys.purge_audit(Duration::days(5)).await.unwrap(), 1);
    let left = all_pages(&keys, AuditFilter::new()).await;
    assert_eq!(kinds(&left), [TrailKind::Issued]);

    // START is long past by the system's clock: a retention of a day deletes the rest as
    // the writer starts, before it answers its first flush.
    let kept_long = StoredAudit::builder(store.clone())
        .retention(Duration::days(36_500))
        .start()
        .unwrap();
    kept_long.flush().await.unwrap();
    assert_eq!(stored_rows(&store).await, 1);
    let kept_short = StoredAudit::builder(store.clone())
        .retention(Duration::days(1))
        .start()
        .unwrap();
    kept_short.flush().await.unwrap();
    assert_eq!(stored_rows(&store).await, 0);
}

/// The tests of one backend, each on its own storage: `$backend` is an expression of
/// type `Option<impl Storage>`, `None` when the backend is not configured.
macro_rules! trail_tests {
    ($backend:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn events_are_found_by_each_filter_and_paged() {
            let Some(backend) = $backend else { return };
            super::events_are_found_by_each_filter_and_paged(backend.store().await).await;
            backend.cleanup().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_burst_of_100_000_events_from_4_tasks_is_stored_whole() {
            let Some(backend) = $backend else { return };
            super::a_burst_of_100_000_events_from_4_tasks_is_stored_whole(backend.store().await)
                .await;
            backend.cleanup().await;
        }

        #[tokio::test(flavor = "current_thread")]
        async fn with_a_tiny_queue_every_drop_is_counted_exactly() {
            let Some(backend) = $backend else { return };
            super::with_a_tiny_queue_every_drop_is_counted_exactly(backend.store().await).await;
            backend.cleanup().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_flush_writes_every_event_recorded_before_it() {
            let Some(backend) = $backend else { return };
            super::a_flush_writes_every_event_recorded_before_it(backend.store().await).await;
            backend.cleanup().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn old_events_are_purged_by_age_and_by_the_retention() {
            let Some(backend) = $backend else { return };
            super::old_events_are_purged_by_age_and_by_the_retention(backend.store().await).await;
            backend.cleanup().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn revocations_lost_to_a_restore_are_replayed_from_the_trail() {
            let Some(backend) = $backend else { return };
            super::revocations_lost_to_a_restore_are_replayed_from_the_trail(backend.store().await)
                .await;
            backend.cleanup().await;
        }
    };
}

/// The memory store: the reference.
struct Memory(Arc<feedkey::MemoryStore>);

impl Memory {
    async fn new() -> Option<Self> {
        Some(Self(Arc::new(feedkey::MemoryStore::new())))
    }
    async fn store(&self) -> Arc<feedkey::MemoryStore> {
        Arc::clone(&self.0)
    }
    async fn cleanup(&self) {}
}

mod memory {
    trail_tests!(super::Memory::new().await);
}

/// `AnyStore` (a server's run-time choice), on SQLite, shared through an `Arc`.
#[cfg(feature = "sqlite")]
struct Any(tempfile::TempDir);

#[cfg(feature = "sqlite")]
impl Any {
    async fn new() -> Option<Self> {
        Some(Self(tempfile::tempdir().unwrap()))
    }
    async fn store(&self) -> Arc<feedkey::store::AnyStore> {
        let sqlite = feedkey::store::SqliteStore::open(self.0.path().join("tokens.db")).unwrap();
        Arc::new(sqlite.into())
    }
    async fn cleanup(&self) {}
}

#[cfg(feature = "sqlite")]
mod any_store {
    trail_tests!(super::Any::new().await);

    /// A custom store behind `AnyStore` keeps no trail: the sink counts what it cannot
    /// write, and reading says why.
    #[tokio::test(flavor = "current_thread")]
    async fn a_custom_store_keeps_no_trail_and_says_so() {
        use feedkey::store::{AnyStore, NoAuditTrail, StoreError};
        let store = std::sync::Arc::new(AnyStore::custom(feedkey::MemoryStore::new()));
        let keys = feedkey::Feedkey::builder(std::sync::Arc::clone(&store), super::key(1))
            .build()
            .unwrap();
        match keys.audit_events(&super::AuditFilter::new()).await {
            Err(feedkey::Error::Store(StoreError::Backend(e))) => {
                assert_eq!(e.to_string(), NoAuditTrail.to_string());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(feature = "sqlite")]
struct Sqlite(tempfile::TempDir);

#[cfg(feature = "sqlite")]
impl Sqlite {
    async fn new() -> Option<Self> {
        Some(Self(tempfile::tempdir().unwrap()))
    }
    async fn store(&self) -> feedkey::store::SqliteStore {
        feedkey::store::SqliteStore::open(self.0.path().join("tokens.db")).unwrap()
    }
    async fn cleanup(&self) {}
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;

    trail_tests!(super::Sqlite::new().await);

    /// A whole SQLite file restored from a backup taken before a revocation: the token
    /// lives again, and the trail of the database as it was before the restore revokes it
    /// again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restored_file_gets_its_revocations_back_from_the_old_trail() {
        let dir = tempfile::tempdir().unwrap();
        let live = feedkey::store::SqliteStore::open(dir.path().join("tokens.db")).unwrap();
        let audit = StoredAudit::new(live.clone()).unwrap();
        let (keys, clock) = feedkey_with(&live, &audit);
        let alice = AccountId::new("alice").unwrap();
        keys.create_account(&alice, Expiry::Never).await.unwrap();
        let ci = keys
            .issue(&alice, NewToken::new("CI", ci_scope()))
            .await
            .unwrap();
        keys.flush().await.unwrap();
        // The backup: the file and its write-ahead log, at rest.
        let backup_taken_at = clock.now();
        std::fs::create_dir(dir.path().join("backup")).unwrap();
        for file in ["tokens.db", "tokens.db-wal"] {
            let from = dir.path().join(file);
            if from.exists() {
                std::fs::copy(&from, dir.path().join("backup").join(file)).unwrap();
            }
        }
        clock.advance(Duration::minutes(10));
        keys.revoke(&alice, ci.info.id).await.unwrap();
        keys.flush().await.unwrap();

        // The restore, onto a new server: the token is alive there.
        let restored =
            feedkey::store::SqliteStore::open(dir.path().join("backup").join("tokens.db")).unwrap();
        let restored_audit = StoredAudit::new(restored.clone()).unwrap();
        let (after, _) = feedkey_with(&restored, &restored_audit);
        let request = api_key(ci.token.expose_secret());
        after
            .authorize(&request, Action::Push, &PUSH)
            .await
            .expect("the backup predates the revocation");
        // Its own trail is the backup's: it knows nothing of the revocation.
        assert_eq!(after.replay_revocations(backup_taken_at).await.unwrap(), 0);

        // The trail of the database as it was before the restore does.
        let replayed = after
            .replay_revocations_from(&live, backup_taken_at)
            .await
            .unwrap();
        assert_eq!(replayed, 1);
        assert_eq!(
            after
                .authorize(&request, Action::Push, &PUSH)
                .await
                .unwrap_err()
                .reason()
                .clone(),
            DenyReason::Revoked
        );
        assert_eq!(
            after
                .replay_revocations_from(&live, backup_taken_at)
                .await
                .unwrap(),
            0
        );
        after.flush().await.unwrap();
        let audited = after
            .audit_events(&AuditFilter::new().token(ci.info.id).kind("revoked"))
            .await
            .unwrap();
        assert_eq!(audited.events.len(), 1, "the re-revocation is audited");
    }

    /// A row spoiled behind the store's back is an error naming it, not a panic.
    #[tokio::test(flavor = "current_thread")]
    async fn a_spoiled_row_is_corrupt_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let store = feedkey::store::SqliteStore::open(&path).unwrap();
        let audit = StoredAudit::new(store.clone()).unwrap();
        let (keys, _) = feedkey_with(&store, &audit);
        let alice = AccountId::new("alice").unwrap();
        keys.create_account(&alice, Expiry::Never).await.unwrap();
        keys.flush().await.unwrap();
        for (column, value) in [
            ("detail", "'not json'"),
            ("kind", "'teleported'"),
            ("token", "x'0102'"),
            ("client_addr", "'not an address'"),
            ("account", "''"),
        ] {
            run_sql(
                &path,
                &format!("UPDATE feedkey_audit SET {column} = {value}"),
            );
            let err = keys.audit_events(&AuditFilter::new()).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    feedkey::Error::Store(feedkey::store::StoreError::Corrupt { .. })
                ),
                "{column}: {err:?}"
            );
            run_sql(
                &path,
                "UPDATE feedkey_audit SET kind = 'account-created', detail = '{}', \
                 token = NULL, client_addr = NULL, account = 'alice'",
            );
            assert_eq!(
                keys.audit_events(&AuditFilter::new())
                    .await
                    .unwrap()
                    .events
                    .len(),
                1
            );
        }
    }

    /// Runs `sql` on the database file behind the store's back.
    fn run_sql(path: &std::path::Path, sql: &str) {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute(sql, [])
            .unwrap();
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
#[path = "common/database.rs"]
mod database;

/// A PostgreSQL schema or MySQL database of its own.
#[cfg(any(feature = "postgres", feature = "mysql"))]
struct Server(database::Server);

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl Server {
    async fn new(var: &str) -> Option<Self> {
        database::Server::new(var).await.map(Self)
    }
    async fn store(&self) -> feedkey::store::SqlStore {
        feedkey::store::SqlStore::connect(&self.0.url)
            .await
            .unwrap()
    }
    async fn cleanup(&self) {
        self.0.cleanup().await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    trail_tests!(super::Server::new("FEEDKEY_TEST_POSTGRES_URL").await);
}

#[cfg(feature = "mysql")]
mod mysql {
    trail_tests!(super::Server::new("FEEDKEY_TEST_MYSQL_URL").await);
}
