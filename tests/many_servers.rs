//! Many servers, one database: several independent authorizers (each its own `SqlStore`,
//! pool and cache) on one PostgreSQL or MySQL/MariaDB database. A revoke, refresh or edit
//! made through one reaches the others' caches: by `NOTIFY` on PostgreSQL, by the change
//! feed on MySQL, and in every case within the cache's trust bound.
//!
//! Skipped, with a notice, where `FEEDKEY_TEST_POSTGRES_URL` / `FEEDKEY_TEST_MYSQL_URL`
//! are unset.

#![cfg(any(feature = "postgres", feature = "mysql"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
#[path = "common/database.rs"]
mod database;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{api_key, key};
use database::Server;
use feedkey::{
    AccountId, Action, CacheConfig, Expiry, Feedkey, Feeds, NewToken, Packages, Permissions, Scope,
    SqlStore, Target, TokenEdit,
};

/// The trust bound the propagation tests use: long, so that a change seen sooner was
/// seen through the change feed, not because an entry aged out.
const LONG_TTL: Duration = Duration::from_secs(5);

/// One authorizer: its own store (pool, cache, change feed).
async fn instance(url: &str, ttl: Duration) -> Feedkey<SqlStore> {
    let store = SqlStore::connect_with(url, CacheConfig::default().ttl(ttl), 4)
        .await
        .unwrap();
    let keys = Feedkey::builder(store, key(1)).build().unwrap();
    wait_for_feed(&keys).await;
    keys
}

async fn wait_for_feed(keys: &Feedkey<SqlStore>) {
    let started = Instant::now();
    while !keys.store().change_feed_is_up() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the change feed never came up"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn allows(keys: &Feedkey<SqlStore>, secret: &str) -> bool {
    keys.authorize(&api_key(secret), Action::Read, &Target::package("f", "p"))
        .await
        .is_ok()
}

/// How long until `keys` stops allowing `secret` (it must within `limit`).
async fn time_to_deny(
    keys: &Feedkey<SqlStore>,
    secret: &str,
    since: Instant,
    limit: Duration,
) -> Duration {
    loop {
        if !allows(keys, secret).await {
            return since.elapsed();
        }
        assert!(since.elapsed() < limit, "still allowed after {limit:?}");
        tokio::task::yield_now().await;
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

async fn revoke_on_a_reaches_b_and_c(db: &Server) {
    let a = instance(&db.url, LONG_TTL).await;
    let b = instance(&db.url, LONG_TTL).await;
    let c = instance(&db.url, LONG_TTL).await;
    let alice = AccountId::new("alice").unwrap();
    a.create_account(&alice, Expiry::Never).await.unwrap();
    let mut times = Vec::new();
    for _ in 0..100 {
        let t = a
            .issue(&alice, NewToken::new("ci", Scope::read_only()))
            .await
            .unwrap();
        let secret = t.token.expose_secret();
        // B and C have it cached.
        assert!(allows(&b, secret).await && allows(&c, secret).await);
        a.revoke(&alice, t.token.id()).await.unwrap();
        let committed = Instant::now();
        times.push(time_to_deny(&b, secret, committed, LONG_TTL).await);
        times.push(time_to_deny(&c, secret, committed, LONG_TTL).await);
    }
    times.sort();
    let (p50, p99) = (percentile(&times, 50), percentile(&times, 99));
    println!(
        "propagation over {} revokes seen by two other servers: p50 {p50:?}, p99 {p99:?}, max {:?}",
        times.len() / 2,
        times.last().unwrap()
    );
    // Well inside the trust bound: the change feed did it.
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
}

async fn refresh_and_edit_on_a_reach_b(db: &Server) {
    let a = instance(&db.url, LONG_TTL).await;
    let b = instance(&db.url, LONG_TTL).await;
    let alice = AccountId::new("alice").unwrap();
    a.create_account(&alice, Expiry::Never).await.unwrap();
    let t = a
        .issue(
            &alice,
            NewToken::new(
                "ci",
                Scope::new(
                    Permissions::READ_ONLY,
                    Feeds::Any,
                    Packages::only(["p", "q"]).unwrap(),
                )
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    let old = t.token.expose_secret().to_owned();
    assert!(allows(&b, &old).await);
    let fresh = a.refresh(&alice, t.token.id()).await.unwrap();
    let new = fresh.token.expose_secret().to_owned();
    time_to_deny(&b, &old, Instant::now(), Duration::from_secs(1)).await;
    assert!(allows(&b, &new).await, "B accepts the new secret");
    // Narrowing the packages on A: B stops allowing the package removed.
    a.edit(
        &alice,
        t.token.id(),
        TokenEdit::new().packages(Packages::only(["q"]).unwrap()),
    )
    .await
    .unwrap();
    time_to_deny(&b, &new, Instant::now(), Duration::from_secs(1)).await;
    assert!(
        b.authorize(&api_key(&new), Action::Read, &Target::package("f", "q"))
            .await
            .is_ok()
    );
}

async fn no_allow_starts_after_the_bound_under_load(db: &Server) {
    let bound = CacheConfig::DEFAULT_TTL;
    let a = instance(&db.url, bound).await;
    let b = Arc::new(instance(&db.url, bound).await);
    let alice = AccountId::new("alice").unwrap();
    a.create_account(&alice, Expiry::Never).await.unwrap();
    let t = a
        .issue(&alice, NewToken::new("ci", Scope::read_only()))
        .await
        .unwrap();
    let secret: Arc<str> = Arc::from(t.token.expose_secret());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (b, secret, stop) = (Arc::clone(&b), Arc::clone(&secret), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut allowed_starts = Vec::new();
            let mut requests = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                if allows(&b, &secret).await {
                    allowed_starts.push(started);
                }
                requests += 1;
                tokio::task::yield_now().await;
            }
            (allowed_starts, requests)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.revoke(&alice, t.token.id()).await.unwrap();
    let committed = Instant::now();
    tokio::time::sleep(bound + Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut late, mut last, mut total) = (0, None::<Duration>, 0);
    for task in tasks {
        let (starts, requests) = task.await.unwrap();
        total += requests;
        for s in starts {
            if s > committed {
                let after = s - committed;
                last = Some(last.map_or(after, |l| l.max(after)));
                if after > bound {
                    late += 1;
                }
            }
        }
    }
    println!("{total} requests on B; last allow started {last:?} after the revoke committed");
    assert!(total > 100, "the load never ran");
    assert_eq!(late, 0, "allows that started after the bound");
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        #[cfg(feature = "postgres")]
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = Server::new("FEEDKEY_TEST_POSTGRES_URL").await {
                        super::$name(&db).await;
                        db.cleanup().await;
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
                    if let Some(db) = Server::new("FEEDKEY_TEST_MYSQL_URL").await {
                        super::$name(&db).await;
                        db.cleanup().await;
                    }
                }
            )*
        }
    };
}

on_both!(
    revoke_on_a_reaches_b_and_c,
    refresh_and_edit_on_a_reach_b,
    no_allow_starts_after_the_bound_under_load,
);

/// PostgreSQL: B's listening connection is killed; a revoke on A is still refused by B
/// within the bound, and B listens again by itself.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_leaves_no_revoked_token_usable() {
    use sqlx::Row;
    let Some(db) = Server::new("FEEDKEY_TEST_POSTGRES_URL").await else {
        return;
    };
    let a = instance(&db.url, LONG_TTL).await;
    // B's connections carry a name of their own, to find its listener by.
    let b_name = format!("{}_b", db.name);
    let b = instance(&format!("{}&application_name={b_name}", db.url), LONG_TTL).await;
    let alice = AccountId::new("alice").unwrap();
    a.create_account(&alice, Expiry::Never).await.unwrap();
    let t = a
        .issue(&alice, NewToken::new("ci", Scope::read_only()))
        .await
        .unwrap();
    let secret = t.token.expose_secret().to_owned();
    assert!(allows(&b, &secret).await);

    let admin = db.admin().await;
    let killed: i64 = sqlx::query(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(b_name.clone())
    .fetch_one(&admin)
    .await
    .unwrap()
    .try_get(0)
    .unwrap();
    assert_eq!(killed, 1, "B's listener was found and killed");
    a.revoke(&alice, t.token.id()).await.unwrap();
    let took = time_to_deny(&b, &secret, Instant::now(), LONG_TTL).await;
    println!("revoked while B's listener was down: B refused it after {took:?}");

    // B listens again by itself, and hears the next revoke at once.
    wait_for_feed(&b).await;
    let t = a
        .issue(&alice, NewToken::new("ci", Scope::read_only()))
        .await
        .unwrap();
    let secret = t.token.expose_secret().to_owned();
    assert!(allows(&b, &secret).await);
    a.revoke(&alice, t.token.id()).await.unwrap();
    time_to_deny(&b, &secret, Instant::now(), Duration::from_secs(1)).await;
    admin.close().await;
    db.cleanup().await;
}
