//! What feedkey counts, through the `metrics` facade (feature `metrics`): any exporter
//! the server installs (Prometheus and others) serves them. Without the feature every
//! function here is empty and costs nothing.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `feedkey_grants_total` | counter | `by`: [`GrantedBy::code`](crate::GrantedBy::code) |
//! | `feedkey_denials_total` | counter | `reason`: [`DenyReason::code`](crate::DenyReason::code) |
//! | `feedkey_record_cache_hits_total` | counter | — |
//! | `feedkey_record_cache_misses_total` | counter | — |
//! | `feedkey_change_feed_up` | gauge | 1 while the SQL change feed is up, 0 while it is down |
//! | `feedkey_audit_dropped_total` | counter | — (events the stored audit trail dropped: its queue was full) |
//!
//! The functions take plain names, so that this module sits below every other (the
//! store's cache and the evaluator both call it).

/// An `authorize` that allowed, granted by `by`.
#[inline]
pub(crate) fn granted(by: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!("feedkey_grants_total", "by" => by).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = by;
}

/// An `authorize` that denied, for `reason`.
#[inline]
pub(crate) fn denied(reason: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!("feedkey_denials_total", "reason" => reason).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

/// A lookup in the SQL record cache, while the cache is in use.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[inline]
pub(crate) fn record_cache(hit: bool) {
    #[cfg(feature = "metrics")]
    if hit {
        ::metrics::counter!("feedkey_record_cache_hits_total").increment(1);
    } else {
        ::metrics::counter!("feedkey_record_cache_misses_total").increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = hit;
}

/// The SQL change feed came up, or went down.
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[inline]
pub(crate) fn change_feed(up: bool) {
    #[cfg(feature = "metrics")]
    ::metrics::gauge!("feedkey_change_feed_up").set(if up { 1.0 } else { 0.0 });
    #[cfg(not(feature = "metrics"))]
    let _ = up;
}

/// `n` audit events the stored trail dropped (its queue was full, or its writer stopped
/// with them unwritten).
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[inline]
pub(crate) fn audit_dropped(n: u64) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!("feedkey_audit_dropped_total").increment(n);
    #[cfg(not(feature = "metrics"))]
    let _ = n;
}
