//! The hot path as a registry sees it: `authorize` on `MemoryStore`, from the raw header
//! value to the decision, beside the floor it cannot beat (one keyed hash, one hash-map
//! probe, one glob match); how it scales with tokens and globs; the password path beside
//! the token path; issue, refresh and revoke; two threads at once; and the allow with the
//! stored audit trail on (`stored_audit/…`, with a SQL backend's feature).
//!
//! `cargo bench --bench authorize`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use feedkey::time::Duration as TimeDuration;
use feedkey::{
    AccountId, Action, AuditEvent, Expiry, Feedkey, Feeds, MemoryStore, NewToken, Packages,
    PasswordConfig, Permissions, Request, Scope, Target, TokenKey,
};
use globset::{GlobBuilder, GlobSetBuilder};

/// Runs a future that is ready at once (every `MemoryStore` call is), without an executor.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a MemoryStore future was not ready"),
    }
}

const PACKAGE: &str = "Contoso.Service.Core.Extensions"; // 31 bytes

fn ci_scope() -> Scope {
    Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::only(["ci"]).unwrap(),
        Packages::only(["Contoso.Service.*"]).unwrap(),
    )
    .unwrap()
}

/// A token for the same id with one secret byte changed and the checksum fixed.
fn tamper(token: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (prefix, body) = token.split_once('_').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(body).unwrap();
    raw[20] ^= 1;
    let crc = crc32fast::hash(&raw[..48]).to_be_bytes();
    raw[48..].copy_from_slice(&crc);
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(raw))
}

struct Setup {
    keys: Feedkey<MemoryStore>,
    alice: AccountId,
}

/// A `Feedkey` holding `filler` read-only tokens besides the primary key, on the system
/// clock (as a server runs: every request reads it).
fn setup(filler: usize) -> Setup {
    let keys = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]))
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    ready(keys.create_account(&alice, Expiry::Never)).unwrap();
    for _ in 0..filler {
        ready(keys.issue(&alice, NewToken::new("filler", Scope::read_only()))).unwrap();
    }
    Setup { keys, alice }
}

fn header(token: &str) -> Request<'_> {
    Request::from_headers(Some(black_box(token.as_bytes())), None)
}

fn authorize(c: &mut Criterion) {
    let s = setup(1000);
    let ci = ready(s.keys.issue(&s.alice, NewToken::new("CI", ci_scope()))).unwrap();
    let good = ci.token.expose_secret().to_owned();
    let wrong = tamper(&good);
    let revoked = {
        let t = ready(s.keys.issue(&s.alice, NewToken::new("old", ci_scope()))).unwrap();
        ready(s.keys.revoke(&s.alice, t.token.id())).unwrap();
        t.token.expose_secret().to_owned()
    };
    let expired = ready(s.keys.issue(
        &s.alice,
        NewToken::new("short", ci_scope()).expires(Expiry::After(TimeDuration::seconds(1))),
    ))
    .unwrap()
    .token
    .expose_secret()
    .to_owned();
    // The system clock moves past its expiry.
    std::thread::sleep(Duration::from_millis(1100));
    // An unknown id: a well-formed token from another deployment.
    let unknown = {
        let other = setup(0);
        ready(
            other
                .keys
                .issue(&other.alice, NewToken::new("x", ci_scope())),
        )
        .unwrap()
        .token
        .expose_secret()
        .to_owned()
    };
    let target = Target::package("ci", PACKAGE);

    let mut group = c.benchmark_group("authorize");
    let cases: [(&str, &str, Target<'_>, bool); 6] = [
        ("allow", &good, target, true),
        ("deny_unknown_id", &unknown, target, false),
        ("deny_wrong_secret", &wrong, target, false),
        ("deny_revoked", &revoked, target, false),
        ("deny_expired", &expired, target, false),
        (
            "deny_out_of_scope",
            &good,
            Target::package("ci", "Fabrikam.Other"),
            false,
        ),
    ];
    for (name, token, target, allowed) in cases {
        assert_eq!(
            ready(s.keys.authorize(&header(token), Action::Push, &target)).is_ok(),
            allowed,
            "{name}"
        );
        group.bench_function(name, |b| {
            b.iter(|| ready(s.keys.authorize(&header(token), Action::Push, &target)).is_ok())
        });
    }
    group.finish();

    // The same allow with an audit sink that counts events.
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sink = Arc::clone(&counter);
    let audited = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]))
        .audit(move |_: &AuditEvent| {
            sink.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .build()
        .unwrap();
    ready(audited.create_account(&s.alice, Expiry::Never)).unwrap();
    let audited_good = ready(audited.issue(&s.alice, NewToken::new("CI", ci_scope())))
        .unwrap()
        .token
        .expose_secret()
        .to_owned();
    c.bench_function("authorize/allow_with_audit_sink", |b| {
        b.iter(|| ready(audited.authorize(&header(&audited_good), Action::Push, &target)).unwrap())
    });

    // The floor: what any design must do per request.
    let key = blake3::derive_key("floor", &[7; 32]);
    let mut map = HashMap::new();
    for i in 0u32..1001 {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&i.to_le_bytes());
        map.insert(id, i);
    }
    let globs = {
        let mut b = GlobSetBuilder::new();
        b.add(
            GlobBuilder::new("Contoso.Service.*")
                .case_insensitive(true)
                .build()
                .unwrap(),
        );
        b.build().unwrap()
    };
    let id = [5u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let secret = [9u8; 32];
    c.bench_function("floor/hash+probe+glob", |b| {
        b.iter(|| {
            let mut input = [0u8; 48];
            input[..16].copy_from_slice(black_box(&id));
            input[16..].copy_from_slice(black_box(&secret));
            let digest = blake3::keyed_hash(&key, &input);
            let hit = map.get(black_box(&id)).copied();
            let matched = globs.is_match(black_box(PACKAGE));
            (digest, hit, matched)
        })
    });
}

/// Keeps nothing: what `StoredAudit` costs the request path, its writer's work (encoding
/// each event) included but no storage's.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
struct Discard;

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
impl feedkey::store::AuditStore for Discard {
    async fn append_audit(
        &self,
        rows: &[feedkey::store::AuditRow],
    ) -> Result<(), feedkey::store::StoreError> {
        black_box(rows);
        Ok(())
    }
    async fn audit_rows(
        &self,
        _: &feedkey::audit::AuditFilter,
    ) -> Result<Vec<feedkey::store::StoredAuditRow>, feedkey::store::StoreError> {
        Ok(Vec::new())
    }
    async fn purge_audit(
        &self,
        _: feedkey::time::OffsetDateTime,
    ) -> Result<u64, feedkey::store::StoreError> {
        Ok(0)
    }
}

/// The allow of `authorize/allow` with the stored audit trail on, beside the same allow
/// without it: the request path only enqueues (a lock and a push); the writer runs on a
/// runtime thread of its own, writing to nothing (`discard`) or to a SQLite file
/// (`sqlite`, batches of 500 per transaction); and to SQLite from a runtime driven only
/// between measurements (`sqlite_writer_between_measurements`): the request path alone,
/// as when the writer has a core of its own. The target is 1.5 x the allow without.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn stored_audit(c: &mut Criterion) {
    use feedkey::audit::StoredAudit;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let target = Target::package("ci", PACKAGE);
    let alice = AccountId::new("alice").unwrap();
    // A Feedkey like `setup(1000)`'s, its audit sent to `sink`.
    let with = |sink: Option<StoredAudit>| {
        let mut builder = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]));
        if let Some(sink) = sink {
            builder = builder.audit(sink);
        }
        let keys = builder.build().unwrap();
        ready(keys.create_account(&alice, Expiry::Never)).unwrap();
        for _ in 0..1000 {
            ready(keys.issue(&alice, NewToken::new("filler", Scope::read_only()))).unwrap();
        }
        let good = ready(keys.issue(&alice, NewToken::new("CI", ci_scope())))
            .unwrap()
            .token
            .expose_secret()
            .to_owned();
        (keys, good)
    };
    let dir = tempfile::tempdir().unwrap();
    // A runtime on this thread, driven only between measurements: a writer spawned there
    // never runs while requests are timed, as if it had a core of its own.
    let between = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // (name, sink, whether its writer runs only between measurements)
    let mut sinks: Vec<(&str, StoredAudit, bool)> = Vec::new();
    {
        let _entered = runtime.enter();
        sinks.push(("discard", StoredAudit::new(Discard).unwrap(), false));
        #[cfg(feature = "sqlite")]
        sinks.push((
            "sqlite",
            StoredAudit::new(
                feedkey::store::SqliteStore::open(dir.path().join("audit.db")).unwrap(),
            )
            .unwrap(),
            false,
        ));
    }
    #[cfg(feature = "sqlite")]
    {
        let _entered = between.enter();
        let store = feedkey::store::SqliteStore::open(dir.path().join("between.db")).unwrap();
        let audit = StoredAudit::builder(store)
            .capacity(1 << 19) // a measurement's events, queued whole
            .start()
            .unwrap();
        sinks.push(("sqlite_writer_between_measurements", audit, true));
    }
    let mut cases = vec![("allow_without_audit".to_owned(), with(None), None)];
    for (name, audit, paused) in sinks {
        let keys = with(Some(audit.clone()));
        cases.push((
            format!("allow_with_stored_audit_{name}"),
            keys,
            Some((audit, paused)),
        ));
    }
    let allow = |(keys, good): &(Feedkey<MemoryStore>, String)| {
        ready(keys.authorize(&header(good), Action::Push, &target)).unwrap();
    };
    // `n` allows, timed; then, for a writer that runs only between measurements, the
    // writer's turn (untimed).
    let timed =
        |keys: &(Feedkey<MemoryStore>, String), audit: &Option<(StoredAudit, bool)>, n: u64| {
            let started = Instant::now();
            for _ in 0..n {
                allow(keys);
            }
            let took = started.elapsed();
            if let Some((audit, true)) = audit {
                between.block_on(audit.flush()).unwrap();
            }
            took
        };

    let mut group = c.benchmark_group("stored_audit");
    for (name, keys, audit) in &cases {
        group.bench_function(name.as_str(), |b| b.iter_custom(|n| timed(keys, audit, n)));
    }
    group.finish();

    // The same cases interleaved, round after round, so that a neighbour's load falls on
    // all of them alike: the median of each, and its ratio to the allow without audit.
    const ROUNDS: usize = 15;
    const PER_ROUND: u64 = 100_000;
    let mut times = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for _ in 0..ROUNDS {
        for ((_, keys, audit), times) in cases.iter().zip(&mut times) {
            let took = timed(keys, audit, PER_ROUND);
            times.push(took.as_nanos() as f64 / PER_ROUND as f64);
        }
    }
    let medians: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect();
    for ((name, _, audit), median) in cases.iter().zip(&medians) {
        print!(
            "stored_audit/interleaved/{name}: {median:.0} ns, {:.2} x",
            median / medians[0]
        );
        if let Some((audit, paused)) = audit {
            if *paused {
                between.block_on(audit.flush()).unwrap();
            } else {
                runtime.block_on(audit.flush()).unwrap();
            }
            print!(
                "; {} events written, {} dropped (queue full)",
                audit.written(),
                audit.dropped()
            );
        }
        println!();
    }
    drop(dir);
}

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
fn stored_audit(_: &mut Criterion) {}

fn scaling(c: &mut Criterion) {
    let target = Target::package("ci", PACKAGE);
    let mut group = c.benchmark_group("scaling_tokens");
    group.sample_size(30);
    for n in [1_000usize, 100_000, 1_000_000] {
        let s = setup(n);
        let t = ready(s.keys.issue(&s.alice, NewToken::new("CI", ci_scope())))
            .unwrap()
            .token
            .expose_secret()
            .to_owned();
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| ready(s.keys.authorize(&header(&t), Action::Push, &target)).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("scaling_globs");
    let s = setup(0);
    for n in [1usize, 10, 100, 1000] {
        // n distinct globs; the request matches the last one.
        let mut globs: Vec<String> = (1..n).map(|i| format!("Other{i}.Lib.*")).collect();
        globs.push("Contoso.Service.*".to_owned());
        let scope = Scope::new(
            Permissions::WRITE_ONLY,
            Feeds::only(["ci"]).unwrap(),
            Packages::only(&globs).unwrap(),
        )
        .unwrap();
        let t = ready(s.keys.issue(&s.alice, NewToken::new("CI", scope)))
            .unwrap()
            .token
            .expose_secret()
            .to_owned();
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| ready(s.keys.authorize(&header(&t), Action::Push, &target)).unwrap())
        });
    }
    group.finish();
}

fn password_beside_token(c: &mut Criterion) {
    let keys = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]))
        .passwords(PasswordConfig::new().remember_for(TimeDuration::ZERO))
        .build()
        .unwrap();
    let remembering = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]))
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    for k in [&keys, &remembering] {
        ready(k.create_account(&alice, Expiry::Never)).unwrap();
        ready(k.set_password(&alice, "a long and private passphrase")).unwrap();
    }
    let token = ready(keys.issue(&alice, NewToken::new("r", Scope::read_only())))
        .unwrap()
        .token
        .expose_secret()
        .to_owned();
    let password = Request::basic("alice", "a long and private passphrase");
    let target = Target::feed("main");
    let mut group = c.benchmark_group("credential_path");
    group.sample_size(20);
    group.bench_function("password_argon2id_default", |b| {
        b.iter(|| ready(keys.authorize(&password, Action::Read, &target)).unwrap())
    });
    group.bench_function("password_remembered", |b| {
        b.iter(|| ready(remembering.authorize(&password, Action::Read, &target)).unwrap())
    });
    group.bench_function("token_keyed_blake3", |b| {
        b.iter(|| ready(keys.authorize(&header(&token), Action::Read, &target)).unwrap())
    });
    group.finish();
}

fn management(c: &mut Criterion) {
    let s = setup(1000);
    let mut group = c.benchmark_group("manage");
    group.bench_function("issue", |b| {
        b.iter(|| ready(s.keys.issue(&s.alice, NewToken::new("CI", ci_scope()))).unwrap())
    });
    let t = ready(s.keys.issue(&s.alice, NewToken::new("CI", ci_scope()))).unwrap();
    group.bench_function("refresh", |b| {
        b.iter(|| ready(s.keys.refresh(&s.alice, t.token.id())).unwrap())
    });
    group.bench_function("issue_then_revoke", |b| {
        b.iter(|| {
            let t = ready(s.keys.issue(&s.alice, NewToken::new("CI", ci_scope()))).unwrap();
            ready(s.keys.revoke(&s.alice, t.token.id())).unwrap();
        })
    });
    group.finish();
}

/// Authorizes `per_thread` times on each of `threads` threads at once; the wall time.
fn run_threads(keys: &Arc<Feedkey<MemoryStore>>, tokens: &[String], per_thread: u64) -> Duration {
    let target = Target::package("ci", PACKAGE);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for token in tokens {
            let keys = Arc::clone(keys);
            scope.spawn(move || {
                for _ in 0..per_thread {
                    ready(keys.authorize(&header(token), Action::Push, &target)).unwrap();
                }
            });
        }
    });
    start.elapsed()
}

fn threads(c: &mut Criterion) {
    let s = setup(1000);
    let tokens: Vec<String> = (0..2)
        .map(|_| {
            ready(s.keys.issue(&s.alice, NewToken::new("CI", ci_scope())))
                .unwrap()
                .token
                .expose_secret()
                .to_owned()
        })
        .collect();
    let keys = Arc::new(s.keys);
    // Time per authorize: one thread doing all of them, and two threads sharing them. The
    // throughput ratio is one_thread / two_threads.
    let mut group = c.benchmark_group("throughput");
    group.sample_size(20);
    group.bench_function("one_thread", |b| {
        b.iter_custom(|iters| run_threads(&keys, &tokens[..1], iters))
    });
    group.bench_function("two_threads", |b| {
        b.iter_custom(|iters| run_threads(&keys, &tokens, iters.div_ceil(2)))
    });
    group.finish();
}

/// Two parts of the token path beside what they replaced: the body's decoding by
/// `base64-simd` against the `base64` crate's general decoder, and `SystemClock::now`
/// against `OffsetDateTime::now_utc` (`docs/performance.md`, README's dependency table).
fn parts(c: &mut Criterion) {
    use base64::Engine as _;
    use feedkey::policy::{Clock, SystemClock};

    let s = setup(0);
    let token = ready(s.keys.issue(&s.alice, NewToken::new("CI", ci_scope())))
        .unwrap()
        .token
        .expose_secret()
        .to_owned();
    let body = token.split_once('_').unwrap().1.as_bytes();
    let mut group = c.benchmark_group("parts");
    group.bench_function("decode_body/base64_simd", |b| {
        b.iter(|| {
            let mut raw = [0u8; 52];
            base64_simd::URL_SAFE_NO_PAD
                .decode(black_box(body), base64_simd::Out::from_slice(&mut raw))
                .is_ok()
        })
    });
    group.bench_function("decode_body/base64", |b| {
        b.iter(|| {
            let mut raw = [0u8; 52];
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode_slice(black_box(body), &mut raw)
                .is_ok()
        })
    });
    group.bench_function("clock/system_clock", |b| b.iter(|| SystemClock.now()));
    group.bench_function("clock/now_utc", |b| {
        b.iter(feedkey::time::OffsetDateTime::now_utc)
    });
    group.finish();
}

criterion_group!(
    benches,
    authorize,
    parts,
    scaling,
    password_beside_token,
    management,
    threads,
    stored_audit
);
criterion_main!(benches);
