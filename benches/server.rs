//! `authorize` on PostgreSQL and MySQL/MariaDB: with the record cache warm (the request
//! reads memory only; compare `memory_baseline`) and with it off (one round trip to the
//! database per request; compare `*_select_1_round_trip`).
//!
//! Uses the databases `FEEDKEY_TEST_POSTGRES_URL` and `FEEDKEY_TEST_MYSQL_URL` name (a
//! schema or database of its own, dropped afterwards); skips a database whose variable is
//! unset.
//!
//! `cargo bench --features postgres,mysql --bench server`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "../tests/common/database.rs"]
#[allow(dead_code)]
mod database;

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use feedkey::{
    AccountId, Action, CacheConfig, Expiry, Feedkey, Feeds, MemoryStore, NewToken, Packages,
    Permissions, Request, Scope, SqlStore, Target, TokenKey, TokenStore,
};

/// Polls a future once: a warm-cache `authorize` is ready at once (it reads memory).
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a warm authorize waited"),
    }
}

fn scope() -> Scope {
    Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::only(["ci"]).unwrap(),
        Packages::only(["Contoso.Service.*"]).unwrap(),
    )
    .unwrap()
}

async fn token<S: TokenStore>(keys: &Feedkey<S>) -> String {
    let alice = AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    keys.issue(&alice, NewToken::new("CI", scope()))
        .await
        .unwrap()
        .token
        .expose_secret()
        .to_owned()
}

fn server(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = Target::package("ci", "Contoso.Service.Core");
    let mut group = c.benchmark_group("server");

    let memory = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]))
        .build()
        .unwrap();
    let secret = rt.block_on(token(&memory));
    group.bench_function("memory_baseline", |b| {
        b.iter(|| {
            let request = Request::from_headers(Some(black_box(secret.as_bytes())), None);
            ready(memory.authorize(&request, Action::Push, &target)).unwrap()
        })
    });

    for (name, var) in [
        ("postgres", "FEEDKEY_TEST_POSTGRES_URL"),
        ("mysql", "FEEDKEY_TEST_MYSQL_URL"),
    ] {
        let Some(db) = rt.block_on(database::Server::new(var)) else {
            continue;
        };
        let secret = {
            let setup = rt
                .block_on(SqlStore::connect(&db.url))
                .map(|s| {
                    Feedkey::builder(s, TokenKey::new(1, &[7; 32]))
                        .build()
                        .unwrap()
                })
                .unwrap();
            rt.block_on(token(&setup))
        };
        for (cache_name, cache) in [
            ("warm", CacheConfig::default().ttl(Duration::from_secs(60))),
            ("cold", CacheConfig::default().ttl(Duration::ZERO)),
        ] {
            let store = rt
                .block_on(SqlStore::connect_with(&db.url, cache, 4))
                .unwrap();
            while cache_name == "warm" && !store.change_feed_is_up() {
                std::thread::sleep(Duration::from_millis(5));
            }
            let keys = Feedkey::builder(store, TokenKey::new(1, &[7; 32]))
                .build()
                .unwrap();
            let request = Request::from_headers(Some(secret.as_bytes()), None);
            rt.block_on(keys.authorize(&request, Action::Push, &target))
                .unwrap();
            group.bench_function(format!("{name}_authorize_{cache_name}_cache"), |b| {
                b.iter(|| {
                    let request = Request::from_headers(Some(black_box(secret.as_bytes())), None);
                    if cache_name == "warm" {
                        ready(keys.authorize(&request, Action::Push, &target)).unwrap()
                    } else {
                        rt.block_on(keys.authorize(&request, Action::Push, &target))
                            .unwrap()
                    }
                })
            });
        }
        // One bare round trip on a pool like the store's, for scale.
        let pool = rt
            .block_on(
                sqlx::any::AnyPoolOptions::new()
                    .max_connections(4)
                    .connect(&db.url),
            )
            .unwrap();
        group.bench_function(format!("{name}_select_1_round_trip"), |b| {
            b.iter(|| {
                rt.block_on(sqlx::query("SELECT 1").fetch_one(&pool))
                    .unwrap()
            })
        });
        rt.block_on(pool.close());
        rt.block_on(db.cleanup());
    }
    group.finish();
}

criterion_group!(benches, server);
criterion_main!(benches);
