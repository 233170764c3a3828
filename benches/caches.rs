//! The three caches on their hit path: a token record kept by a SQL store, a remembered
//! password verify, and a compiled package-glob set found again.
//!
//! `cargo bench --features sqlite --bench caches`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use feedkey::{
    AccountId, Action, CacheConfig, Expiry, Feedkey, MemoryStore, NewToken, Packages, Request,
    Scope, SqliteStore, Target, TokenKey, TokenStore,
};

/// Runs a future that is ready at once (outside a Tokio runtime every call here is),
/// without an executor.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a future was not ready"),
    }
}

fn caches(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache_hit");

    // The SQL record cache: `TokenStore::token` of a record read a moment ago, among
    // 10 000 cached records.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with(
        dir.path().join("tokens.db"),
        CacheConfig::default().ttl(Duration::from_secs(60)),
    )
    .unwrap();
    let keys = Feedkey::builder(store.clone(), TokenKey::new(1, &[7; 32]))
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    ready(keys.create_account(&alice, Expiry::Never)).unwrap();
    let ids: Vec<_> = (0..10_000)
        .map(|i| {
            let issued =
                ready(keys.issue(&alice, NewToken::new(format!("t{i}"), Scope::read_only())))
                    .unwrap();
            issued.token.id()
        })
        .collect();
    for id in &ids {
        ready(store.token(id)).unwrap().unwrap();
    }
    let hot = ids[1234];
    group.bench_function("sql_record", |b| {
        b.iter(|| ready(store.token(black_box(&hot))).unwrap().unwrap())
    });

    // The remembered password: `authorize` with Basic credentials verified a moment ago
    // (the whole path: account read, keyed hash, memory look-up).
    let remembering = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]))
        .build()
        .unwrap();
    ready(remembering.create_account(&alice, Expiry::Never)).unwrap();
    ready(remembering.set_password(&alice, "a long and private passphrase")).unwrap();
    let password = Request::basic("alice", "a long and private passphrase");
    let target = Target::feed("main");
    ready(remembering.authorize(&password, Action::Read, &target)).unwrap();
    group.bench_function("remembered_password_authorize", |b| {
        b.iter(|| {
            ready(remembering.authorize(black_box(&password), Action::Read, &target)).unwrap()
        })
    });

    // The glob interner: a package set built again from patterns compiled before (what a
    // record read from a database does).
    let patterns = ["Contoso.Service.*", "Contoso.Util", "Fabrikam.*.Core"];
    Packages::only(patterns).unwrap();
    group.bench_function("glob_interner", |b| {
        b.iter(|| Packages::only(black_box(patterns)).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = caches
}
criterion_main!(benches);
