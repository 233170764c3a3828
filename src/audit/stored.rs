//! [`StoredAudit`]: the audit sink that keeps events in the database, off the request
//! path. `record` only puts the event in a bounded queue (never waiting: a full queue
//! drops the event and counts it); a task of its own writes the queue in batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{AuditEvent, AuditSink, encode};
use crate::store::{AuditRow, AuditStore, BackendError, BoxFuture, StoreError};

/// What the queue carries: an event, or a flush that waits for everything before it.
enum Message {
    Event(AuditEvent),
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

/// The counts the sink and its writer share.
#[derive(Debug, Default)]
struct Counts {
    dropped: AtomicU64,
    written: AtomicU64,
}

impl Counts {
    fn drop_events(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        crate::telemetry::audit_dropped(n);
    }
}

/// Why a [`StoredAudit`] could not start: its writer is a Tokio task, and it was built
/// outside a Tokio runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored audit trail's writer is a Tokio task: start it inside a Tokio runtime")]
pub struct NoRuntime;

/// The audit sink that keeps every event in the store's `feedkey_audit` table (SQLite,
/// PostgreSQL, MySQL; or a [`MemoryStore`](crate::MemoryStore), in memory), read back
/// with [`Feedkey::audit_events`](crate::Feedkey::audit_events).
///
/// Off the request path: [`record`](AuditSink::record) puts the event in a bounded queue
/// and returns, never waiting. When the queue is full (the database is slow or down) the
/// event is dropped and counted: [`StoredAudit::dropped`], and the metric
/// `feedkey_audit_dropped_total` (feature `metrics`). A task of its own looks at the
/// queue every 10 ms (and at once while a whole batch waits there: it is never woken by
/// an event, which would cost the request a thread's wake-up) and writes what it finds
/// in batches, each one transaction; a batch that fails is tried again (after 100 ms, then
/// longer, up to 5 s) while new events wait in the queue. [`Feedkey::flush`] (or
/// [`StoredAudit::flush`]) waits until every event recorded before it is written: call
/// it at shutdown, while the runtime still runs, or the events still queued are lost.
///
/// The writer is a Tokio task spawned when the sink starts: start it inside a Tokio
/// runtime ([`NoRuntime`] otherwise). Dropping every clone of the sink ends the task once
/// it has written what is queued.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// use feedkey::audit::{AuditFilter, StoredAudit, TrailKind};
/// use feedkey::store::SqliteStore;
/// use feedkey::{AccountId, Expiry, Feedkey, TokenKey};
///
/// let dir = tempfile::tempdir()?;
/// let store = SqliteStore::open(dir.path().join("tokens.db"))?;
/// let audit = StoredAudit::new(store.clone())?; // the writer task starts here
/// let keys = Feedkey::builder(store, TokenKey::generate(1)?)
///     .audit(audit.clone())
///     .build()?;
/// let alice = AccountId::new("alice")?;
/// keys.create_account(&alice, Expiry::Never).await?;
///
/// keys.flush().await?; // waits for the writer
/// let page = keys.audit_events(&AuditFilter::new().account(&alice)).await?;
/// assert_eq!(page.events[0].kind, TrailKind::AccountCreated);
/// assert_eq!(audit.dropped(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`Feedkey::flush`]: crate::Feedkey::flush
#[derive(Clone)]
pub struct StoredAudit {
    queue: mpsc::Sender<Message>,
    counts: Arc<Counts>,
}

impl std::fmt::Debug for StoredAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAudit")
            .field("dropped", &self.dropped())
            .field("written", &self.written())
            .finish_non_exhaustive()
    }
}

/// How a [`StoredAudit`] is set up: the queue, the batches, the retention.
#[derive(Debug, Clone)]
pub struct StoredAuditBuilder<A> {
    store: A,
    capacity: usize,
    batch: usize,
    retention: Option<time::Duration>,
}

impl StoredAudit {
    /// The events the queue holds by default: a burst of 100 000 events (100 000
    /// requests at once, or a database that pauses for a second at 100 000 requests a
    /// second) fits whole. An event takes about 200 bytes while queued, so a full queue
    /// is about 25 MB.
    pub const DEFAULT_CAPACITY: usize = 131_072;
    /// The most events one transaction writes, by default.
    pub const DEFAULT_BATCH: usize = 500;
    /// The most events one transaction may write.
    pub const MAX_BATCH: usize = 10_000;
    /// How often the retention is applied, when one is set.
    pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

    /// A sink that writes to `store` with the default queue and batches, keeping every
    /// event (no retention). Starts the writer task.
    ///
    /// # Errors
    /// [`NoRuntime`] outside a Tokio runtime.
    pub fn new<A: AuditStore + 'static>(store: A) -> Result<Self, NoRuntime> {
        Self::builder(store).start()
    }

    /// Starts setting up a sink that writes to `store`.
    pub fn builder<A: AuditStore + 'static>(store: A) -> StoredAuditBuilder<A> {
        StoredAuditBuilder {
            store,
            capacity: Self::DEFAULT_CAPACITY,
            batch: Self::DEFAULT_BATCH,
            retention: None,
        }
    }

    /// How many events were dropped: the queue was full when they came, or they could
    /// not be written before the writer stopped.
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }

    /// How many events were written to the store.
    pub fn written(&self) -> u64 {
        self.counts.written.load(Ordering::Relaxed)
    }

    /// Waits until every event recorded before this call is written.
    ///
    /// # Errors
    /// The store's failure to write them (they stay queued and are tried again), or a
    /// backend error when the writer has stopped (its runtime shut down).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Message::Flush(done))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The writer is gone (its runtime shut down).
fn stopped() -> StoreError {
    StoreError::Backend(BackendError::new(std::io::Error::other(
        "the audit writer has stopped (its runtime shut down)",
    )))
}

impl<A: AuditStore + 'static> StoredAuditBuilder<A> {
    /// How many events the queue holds (at least 1); more are dropped, and counted, until
    /// the writer catches up.
    #[must_use]
    pub fn capacity(mut self, events: usize) -> Self {
        self.capacity = events.max(1);
        self
    }

    /// The most events one transaction writes (1 to [`StoredAudit::MAX_BATCH`]).
    #[must_use]
    pub fn batch(mut self, events: usize) -> Self {
        self.batch = events.clamp(1, StoredAudit::MAX_BATCH);
        self
    }

    /// Deletes events older than `retention` (by the system's clock), when the writer starts and after a
    /// batch once [`StoredAudit::PURGE_EVERY`] has passed since. Keep it longer than the oldest backup you
    /// might restore: [`Feedkey::replay_revocations`](crate::Feedkey::replay_revocations)
    /// reads the revocations made since the backup from the trail.
    #[must_use]
    pub fn retention(mut self, retention: time::Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Starts the writer task on the current Tokio runtime.
    ///
    /// # Errors
    /// [`NoRuntime`] outside a Tokio runtime.
    pub fn start(self) -> Result<StoredAudit, NoRuntime>
    where
        A: AuditStore + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NoRuntime)?;
        let (queue, receiver) = mpsc::channel(self.capacity);
        let counts = Arc::new(Counts::default());
        let writer = Writer {
            store: self.store,
            counts: Arc::clone(&counts),
            batch: self.batch,
            held_max: self.capacity.max(self.batch),
            retention: self.retention,
        };
        runtime.spawn(writer.run(receiver));
        Ok(StoredAudit { queue, counts })
    }
}

impl AuditSink for StoredAudit {
    fn record(&self, event: &AuditEvent) {
        // A full queue is seen before the event is copied: dropping costs nothing more.
        if self.queue.capacity() == 0 {
            self.counts.drop_events(1);
            return;
        }
        if self.queue.try_send(Message::Event(event.clone())).is_err() {
            self.counts.drop_events(1);
        }
    }

    /// Outside an async context, waits until everything recorded before is written.
    /// Inside one it cannot wait without stalling its thread: it returns at once (the
    /// writer is writing anyway); await [`StoredAudit::flush`] or
    /// [`Feedkey::flush`](crate::Feedkey::flush) there.
    fn flush(&self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        let (done, answer) = oneshot::channel();
        if self.queue.blocking_send(Message::Flush(done)).is_ok() {
            let _ = answer.blocking_recv();
        }
    }

    fn flush_async(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(StoredAudit::flush(self))
    }
}

/// The task that writes the queue.
struct Writer<A> {
    store: A,
    counts: Arc<Counts>,
    batch: usize,
    /// The most events held while the store fails; the queue fills behind them.
    held_max: usize,
    retention: Option<time::Duration>,
}

/// Moves up to `most` queued messages into `into`, without waiting; whether the queue is
/// still open (a sink is left, or messages are).
fn take_queued(queue: &mut mpsc::Receiver<Message>, into: &mut Vec<Message>, most: usize) -> bool {
    while into.len() < most {
        match queue.try_recv() {
            Ok(message) => into.push(message),
            Err(mpsc::error::TryRecvError::Empty) => return true,
            Err(mpsc::error::TryRecvError::Disconnected) => return false,
        }
    }
    true
}

/// How often the writer looks at the queue while less than a batch waits there: the
/// longest an event waits before it is written, when the store answers at once.
const TICK: Duration = Duration::from_millis(10);

/// The first wait after a failed write, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How many times the writer tries what it holds once the last sink is gone.
const FINAL_TRIES: usize = 3;

impl<A: AuditStore> Writer<A> {
    async fn run(self, mut queue: mpsc::Receiver<Message>) {
        let mut received = Vec::with_capacity(self.batch);
        let mut held: Vec<AuditRow> = Vec::new();
        let mut waiting: Vec<oneshot::Sender<Result<(), StoreError>>> = Vec::new();
        let mut retry = RETRY_FIRST;
        let mut purged: Option<Instant> = None;
        self.purge(&mut purged).await;
        loop {
            // The writer never waits on the queue itself: a task parked there would be
            // woken by every event, a thread's wake-up on each request. It looks at the
            // queue every tick instead, and at once while a whole batch waits.
            let open = take_queued(&mut queue, &mut received, self.batch);
            let full = received.len() == self.batch;
            for message in received.drain(..) {
                match message {
                    Message::Event(event) if held.len() < self.held_max => {
                        held.push(encode(&event));
                    }
                    // The store has failed for a while: what is held is kept, the rest
                    // counted as dropped.
                    Message::Event(_) => self.counts.drop_events(1),
                    Message::Flush(done) => waiting.push(done),
                }
            }
            if !open {
                break; // every sink is gone and the queue is empty
            }
            if held.is_empty() && waiting.is_empty() {
                tokio::time::sleep(TICK).await;
                continue;
            }
            let written = self.write(&mut held).await;
            for done in waiting.drain(..) {
                let _ = done.send(written.clone());
            }
            if written.is_err() {
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
                continue;
            }
            retry = RETRY_FIRST;
            self.purge(&mut purged).await;
            if !full {
                tokio::time::sleep(TICK).await;
            }
        }
        let mut written = Ok(());
        for _ in 0..FINAL_TRIES {
            written = self.write(&mut held).await;
            if written.is_ok() {
                break;
            }
            tokio::time::sleep(retry).await;
        }
        for done in waiting.drain(..) {
            let _ = done.send(written.clone());
        }
        self.counts.drop_events(held.len() as u64);
    }

    /// Writes `held` in batches, each one transaction; what is written leaves `held`.
    async fn write(&self, held: &mut Vec<AuditRow>) -> Result<(), StoreError> {
        while !held.is_empty() {
            let n = held.len().min(self.batch);
            self.store
                .append_audit(held.get(..n).unwrap_or_default())
                .await?;
            held.drain(..n);
            self.counts.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Applies the retention, if one is set and it is time.
    async fn purge(&self, purged: &mut Option<Instant>) {
        let Some(retention) = self.retention else {
            return;
        };
        if purged.is_some_and(|at| at.elapsed() < StoredAudit::PURGE_EVERY) {
            return;
        }
        let before = time::OffsetDateTime::now_utc().saturating_sub(retention);
        if self.store.purge_audit(before).await.is_ok() {
            *purged = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use time::OffsetDateTime;

    use super::*;
    use crate::audit::AuditKind;
    use crate::store::{AuditFilter, StoredAuditRow};

    /// Fails its first `fails` appends, then keeps what it is given.
    #[derive(Default)]
    struct Flaky {
        fails: AtomicUsize,
        rows: Mutex<Vec<AuditRow>>,
    }

    impl AuditStore for Flaky {
        async fn append_audit(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
            let left = self.fails.load(Ordering::SeqCst);
            if left > 0 {
                self.fails.store(left - 1, Ordering::SeqCst);
                return Err(StoreError::Backend(BackendError::new(
                    std::io::Error::other("down"),
                )));
            }
            self.rows.lock().unwrap().extend_from_slice(rows);
            Ok(())
        }

        async fn audit_rows(&self, _: &AuditFilter) -> Result<Vec<StoredAuditRow>, StoreError> {
            Ok(Vec::new())
        }

        async fn purge_audit(&self, _: OffsetDateTime) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    fn event() -> AuditEvent {
        AuditEvent {
            kind: AuditKind::Issued,
            account: None,
            token: None,
            client_addr: None,
            at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_batch_is_tried_again_without_new_events() {
        let store = Arc::new(Flaky::default());
        store.fails.store(2, Ordering::SeqCst);
        let audit = StoredAudit::new(Arc::clone(&store)).unwrap();
        for _ in 0..3 {
            audit.record(&event());
        }
        // The first try fails, and the flush says so.
        assert!(audit.flush().await.is_err());
        // Nothing more is recorded; the writer tries again on its own.
        let started = Instant::now();
        while audit.written() < 3 && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(store.rows.lock().unwrap().len(), 3);
        assert_eq!((audit.written(), audit.dropped()), (3, 0));
        audit.flush().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_last_sink_dropped_the_writer_writes_what_is_queued_and_stops() {
        let store = Arc::new(Flaky::default());
        let audit = StoredAudit::new(Arc::clone(&store)).unwrap();
        for _ in 0..100 {
            audit.record(&event());
        }
        drop(audit);
        let started = Instant::now();
        // The writer holds the last other reference to the store until it stops.
        while Arc::strong_count(&store) > 1 && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(Arc::strong_count(&store), 1, "the writer stopped");
        assert_eq!(store.rows.lock().unwrap().len(), 100);
    }

    #[test]
    fn outside_a_runtime_it_does_not_start() {
        assert_eq!(
            StoredAudit::new(Arc::new(Flaky::default())).unwrap_err(),
            NoRuntime
        );
    }

    #[test]
    fn the_sync_flush_outside_a_runtime_waits_for_the_writer() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let store = Arc::new(Flaky::default());
        let audit = {
            let _entered = runtime.enter();
            StoredAudit::new(Arc::clone(&store)).unwrap()
        };
        for _ in 0..1_000 {
            audit.record(&event());
        }
        AuditSink::flush(&audit);
        assert_eq!(store.rows.lock().unwrap().len(), 1_000);
    }
}
