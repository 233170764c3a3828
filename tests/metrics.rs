//! What feedkey counts through the `metrics` facade (feature `metrics`): one grant or one
//! denial per `authorize`, labelled by how it was granted or why it was denied, and the
//! SQL record cache's hits and misses, and the audit events the stored trail dropped.

#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;

use common::{World, api_key};
use feedkey::store::testing::{PUSH, ci_scope};
use feedkey::{Action, NewToken};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// Runs `story` on this thread with a recorder of its own, and returns every counter and
/// gauge as `name{label=value}` → value.
fn counted<F: std::future::Future<Output = ()>>(story: F) -> BTreeMap<String, f64> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(story);
    });
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(h) => h.len() as f64,
            };
            (
                format!("{}{{{}}}", key.key().name(), labels.join(",")),
                value,
            )
        })
        .collect()
}

#[test]
fn each_authorize_counts_once_by_its_grant_or_its_reason() {
    let counts = counted(async {
        let w = World::builder().build().await;
        let t = w.issue(NewToken::new("ci", ci_scope())).await;
        let token = t.token.expose_secret().to_owned();
        w.allow(&api_key(&token), Action::Push, &PUSH).await;
        w.allow(&api_key(&token), Action::Push, &PUSH).await;
        w.deny(&api_key(&token), Action::Read, &PUSH).await;
        let _ = w
            .keys
            .authorize(&api_key("not-a-token"), Action::Push, &PUSH)
            .await;
    });
    assert_eq!(
        counts.get("feedkey_grants_total{by=token}"),
        Some(&2.0),
        "{counts:?}"
    );
    assert_eq!(
        counts.get("feedkey_denials_total{reason=action-out-of-scope}"),
        Some(&1.0),
        "{counts:?}"
    );
    assert_eq!(
        counts.get("feedkey_denials_total{reason=malformed-token}"),
        Some(&1.0),
        "{counts:?}"
    );
    let denials: f64 = counts
        .iter()
        .filter(|(k, _)| k.starts_with("feedkey_denials_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(denials, 2.0, "one count per denial: {counts:?}");
}

#[cfg(feature = "sqlite")]
#[test]
fn the_record_cache_counts_its_hits_and_misses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let counts = counted(async move {
        let store = feedkey::SqliteStore::open(&path).unwrap();
        let keys = feedkey::Feedkey::builder(store, common::key(1))
            .build()
            .unwrap();
        let alice = feedkey::AccountId::new("alice").unwrap();
        keys.create_account(&alice, feedkey::Expiry::Never)
            .await
            .unwrap();
        let t = keys
            .issue(&alice, NewToken::new("ci", ci_scope()))
            .await
            .unwrap();
        for _ in 0..3 {
            keys.authorize(&api_key(t.token.expose_secret()), Action::Push, &PUSH)
                .await
                .unwrap();
        }
    });
    let hits = counts.get("feedkey_record_cache_hits_total{}").copied();
    let misses = counts.get("feedkey_record_cache_misses_total{}").copied();
    assert_eq!(
        hits.unwrap_or(0.0) + misses.unwrap_or(0.0),
        3.0,
        "{counts:?}"
    );
    assert!(
        hits.unwrap_or(0.0) >= 1.0,
        "a second read was not served: {counts:?}"
    );
}

/// Every event the stored audit trail drops (its queue full) is counted, exactly: a queue
/// of two and a writer that cannot run (the story holds the only thread).
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[test]
fn every_dropped_audit_event_is_counted() {
    use feedkey::audit::StoredAudit;
    use std::sync::Arc;

    let counts = counted(async {
        // Real events, as a sink receives them.
        let w = World::builder().audit().build().await;
        w.issue(NewToken::new("ci", ci_scope())).await;
        let events = w.events.lock().unwrap().clone();
        assert_eq!(events.len(), 2);
        let audit = StoredAudit::builder(Arc::new(feedkey::MemoryStore::new()))
            .capacity(2)
            .start()
            .unwrap();
        // No await between the events: the writer never runs.
        for i in 0..10 {
            feedkey::audit::AuditSink::record(&audit, &events[i % 2]);
        }
        assert_eq!(audit.dropped(), 8);
        audit.flush().await.unwrap();
        assert_eq!(audit.written(), 2);
    });
    assert_eq!(counts["feedkey_audit_dropped_total{}"], 8.0);
}
