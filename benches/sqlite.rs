//! `authorize` on SQLite, with the record cache warm and with it off (every request reads
//! the database, parses the row and compiles the scope).
//!
//! `cargo bench --features sqlite --bench sqlite`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use feedkey::{
    AccountId, Action, CacheConfig, Expiry, Feedkey, Feeds, NewToken, Packages, Permissions,
    Request, Scope, SqliteStore, Target, TokenKey,
};

/// Runs a future that is ready at once (every `SqliteStore` call is: the driver is
/// synchronous), without an executor.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a SqliteStore future was not ready"),
    }
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let scope = Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::only(["ci"]).unwrap(),
        Packages::only(["Contoso.Service.*"]).unwrap(),
    )
    .unwrap();
    let alice = AccountId::new("alice").unwrap();
    let token = {
        let setup = Feedkey::builder(
            SqliteStore::open(&path).unwrap(),
            TokenKey::new(1, &[7; 32]),
        )
        .build()
        .unwrap();
        ready(setup.create_account(&alice, Expiry::Never)).unwrap();
        // 100 000 other tokens, so the table is not trivially small.
        for i in 0..100_000 {
            ready(setup.issue(&alice, NewToken::new(format!("t{i}"), Scope::read_only()))).unwrap();
        }
        ready(setup.issue(&alice, NewToken::new("CI", scope)))
            .unwrap()
            .token
            .expose_secret()
            .to_owned()
    };
    let target = Target::package("ci", "Contoso.Service.Core");
    let mut group = c.benchmark_group("sqlite");
    for (name, cache) in [
        (
            "authorize_warm_cache",
            CacheConfig::default().ttl(Duration::from_secs(60)),
        ),
        (
            "authorize_cold_cache",
            CacheConfig::default().ttl(Duration::ZERO),
        ),
    ] {
        let keys = Feedkey::builder(
            SqliteStore::open_with(&path, cache).unwrap(),
            TokenKey::new(1, &[7; 32]),
        )
        .build()
        .unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let request = Request::from_headers(Some(black_box(token.as_bytes())), None);
                ready(keys.authorize(&request, Action::Push, &target)).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sqlite);
criterion_main!(benches);
