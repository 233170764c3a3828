//! The change feed: a write announces the tokens it changed inside its transaction
//! (PostgreSQL `NOTIFY`, MySQL a row in `feedkey_changes`), and every server evicts them
//! from its cache (PostgreSQL `LISTEN`, MySQL a poll).

use super::*;

/// How far back each read of the MySQL change feed looks. Rows are read again until they
/// are this old, so a write whose row became visible late (its transaction committed
/// after a later one) is still seen; a server whose reads stopped for longer than half
/// of it forgets its whole cache.
pub(super) const FEED_LOOKBACK: Duration = Duration::from_secs(10);

/// How long change-feed rows are kept.
pub(super) const FEED_RETENTION: Duration = Duration::from_secs(3600);

/// Tells every server, inside `tx`, that token `id` (or, with `None`, every token)
/// changed.
pub(super) async fn announce(
    inner: &Inner,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: Option<&TokenId>,
) -> Result<(), StoreError> {
    let query = sqlx::query(inner.sql.announce.clone());
    let query = match inner.dialect {
        SqlDialect::Postgres => query.bind(id.map_or_else(|| ALL.to_owned(), ToString::to_string)),
        SqlDialect::Mysql => query.bind(id.map(id_to_db)),
    };
    query.execute(&mut **tx).await.map_err(backend)?;
    Ok(())
}

/// Applies one announcement to the cache: forgets the token it names, or everything.
pub(super) fn forget(cache: &TokenCache, id: Option<TokenId>) {
    match id {
        Some(id) => cache.invalidate(&id),
        None => cache.clear(),
    }
}

/// The least time an attempt to listen again is given (see [`listen`]).
#[cfg(feature = "postgres")]
pub(super) const MIN_LISTEN_TIME: Duration = Duration::from_secs(5);

/// PostgreSQL: `LISTEN`s for announcements for as long as the store lives. The cache is
/// trusted only while the listening connection is up; when it drops, the cache is
/// emptied and bypassed until a new connection is listening again. Each attempt to
/// listen again is given `limit`, and never less than [`MIN_LISTEN_TIME`]: a request's
/// limit may be a few milliseconds, shorter than a TLS handshake, and a listener that
/// can never connect would leave the cache distrusted for good.
#[cfg(feature = "postgres")]
pub(super) async fn listen(
    weak: Weak<Inner>,
    url: String,
    limit: Duration,
    mut stop: watch::Receiver<()>,
) {
    let limit = limit.max(MIN_LISTEN_TIME);
    let mut backoff = Duration::from_millis(50);
    loop {
        let connect = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            // A lost connection ends this listener; the loop makes a new one.
            listener.eager_reconnect(false);
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let connected = tokio::select! {
            c = tokio::time::timeout(limit, connect) => c.ok().and_then(Result::ok),
            _ = stop.changed() => return,
        };
        let mut listener = match connected {
            Some(listener) => listener,
            None => {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        // Listening from here on: anything cached before may have missed a change.
        match weak.upgrade() {
            Some(inner) => {
                inner.cache.trust();
                inner.health.found(true);
            }
            None => return,
        }
        loop {
            let next = tokio::select! {
                n = listener.try_recv() => n,
                _ = stop.changed() => return,
            };
            let Some(inner) = weak.upgrade() else { return };
            match next {
                Ok(Some(note)) => {
                    let payload = note.payload();
                    // An unreadable payload forgets everything rather than guess.
                    let id = if payload == ALL {
                        None
                    } else {
                        payload.parse().ok()
                    };
                    forget(&inner.cache, id);
                }
                Ok(None) | Err(_) => {
                    inner.cache.distrust();
                    break;
                }
            }
        }
    }
}

/// MySQL/MariaDB: reads the change feed every `every` for as long as the store lives.
/// The cache is trusted only while reads succeed; a failed read empties and bypasses it
/// until one succeeds again.
pub(super) async fn poll(weak: Weak<Inner>, every: Duration, mut stop: watch::Receiver<()>) {
    let lookback = i64::try_from(FEED_LOOKBACK.as_micros()).unwrap_or(i64::MAX);
    let retention = i64::try_from(FEED_RETENTION.as_micros()).unwrap_or(i64::MAX);
    let mut seen: HashSet<i64> = HashSet::new();
    let mut last_read: Option<Instant> = None;
    let mut reads: u64 = 0;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let started = Instant::now();
        let rows = inner
            .bounded(async {
                sqlx::query(inner.sql.changes.clone())
                    .bind(lookback)
                    .fetch_all(&inner.pool)
                    .await
                    .and_then(|rows| {
                        rows.iter()
                            .map(|row| {
                                let seq: i64 = row.try_get(0)?;
                                let id: Option<Vec<u8>> = row.try_get(1)?;
                                Ok((seq, id))
                            })
                            .collect::<Result<Vec<_>, sqlx::Error>>()
                    })
                    .map_err(backend)
            })
            .await;
        match rows {
            Ok(rows) => {
                let continuous =
                    last_read.is_some_and(|at| started.duration_since(at) < FEED_LOOKBACK / 2);
                if continuous {
                    for (seq, id) in &rows {
                        if !seen.contains(seq) {
                            let id = id
                                .as_deref()
                                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                                .map(TokenId::from_bytes);
                            forget(&inner.cache, id);
                        }
                    }
                } else {
                    // The first read, or reads stopped long enough to miss rows.
                    inner.cache.trust();
                }
                seen = rows.into_iter().map(|(seq, _)| seq).collect();
                last_read = Some(started);
            }
            Err(_) => {
                inner.cache.distrust();
                last_read = None;
            }
        }
        reads += 1;
        if reads.is_multiple_of(600) {
            let _ = inner
                .bounded(async {
                    sqlx::query(inner.sql.prune_changes.clone())
                        .bind(retention)
                        .execute(&inner.pool)
                        .await
                        .map_err(backend)
                })
                .await;
        }
        drop(inner);
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}
