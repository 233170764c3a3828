//! The time limit on each database operation and the breaker that, while the database
//! does not answer, lets one operation at a time try it and fails the others at once.

use super::*;

/// Why an operation got no answer from the database (inside [`StoreError::Backend`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum NoAnswer {
    /// The operation ran out of time.
    #[error("the database did not answer within {0:?}")]
    TimedOut(Duration),
    /// The database is known to be unreachable and another operation is trying it.
    #[error("the database is unreachable (another operation is trying it); not waiting")]
    Unreachable,
}

pub(super) fn no_answer(why: NoAnswer) -> StoreError {
    StoreError::Backend(BackendError::new(why))
}

/// Whether `error` says that the database could not be reached, rather than that it
/// answered with an error.
pub(super) fn is_unreachable(error: &StoreError) -> bool {
    let StoreError::Backend(BackendError(inner)) = error else {
        return false;
    };
    if inner.is::<NoAnswer>() {
        return true;
    }
    match inner.downcast_ref::<sqlx::Error>() {
        Some(
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed,
        ) => true,
        // SQLSTATE class 08 (connection exception), and PostgreSQL's 57P01..57P03 (the
        // server is shutting down, or not yet accepting connections).
        Some(sqlx::Error::Database(db)) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
        _ => false,
    }
}

/// Whether the database answers, as this store last found it. While it does not, one
/// operation at a time tries it (the first answer ends the outage) and the others fail at
/// once instead of waiting.
#[derive(Debug, Default)]
pub(super) struct Health {
    unreachable: AtomicBool,
    probing: AtomicBool,
}

/// Leave to try the database; while it is unreachable, the one probe's, given back when
/// dropped.
pub(super) struct Admitted<'a>(pub(super) Option<&'a AtomicBool>);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if let Some(probing) = self.0 {
            probing.store(false, Ordering::Release);
        }
    }
}

impl Health {
    /// Every operation while the database answers; one at a time while it does not.
    pub(super) fn admit(&self) -> Option<Admitted<'_>> {
        if !self.unreachable.load(Ordering::Acquire) {
            return Some(Admitted(None));
        }
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Admitted(Some(&self.probing)))
    }

    /// Runs `op` for at most `limit`, unless the database is known to be unreachable and
    /// another operation is already trying it (then fails at once). Notes whether `op`
    /// reached the database.
    pub(super) async fn run<T>(
        &self,
        limit: Duration,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let Some(_admitted) = self.admit() else {
            return Err(no_answer(NoAnswer::Unreachable));
        };
        let result = tokio::time::timeout(limit, op)
            .await
            .unwrap_or_else(|_| Err(no_answer(NoAnswer::TimedOut(limit))));
        self.found(!matches!(&result, Err(e) if is_unreachable(e)));
        result
    }

    /// Notes whether an operation reached the database.
    pub(super) fn found(&self, reachable: bool) {
        if self.unreachable.load(Ordering::Relaxed) == reachable {
            self.unreachable.store(!reachable, Ordering::Release);
        }
    }

    pub(super) fn answers(&self) -> bool {
        !self.unreachable.load(Ordering::Acquire)
    }
}

impl Inner {
    /// Runs `op` on the database for at most `limit` ([`Health::run`]).
    pub(super) async fn within<T>(
        &self,
        limit: Duration,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.health.run(limit, op).await
    }

    /// Runs `op` within the request time limit.
    pub(super) async fn bounded<T>(
        &self,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.within(self.limit, op).await
    }

    /// A connection, within the request time limit (for sweeps, whose statements may run
    /// longer).
    pub(super) async fn connection(&self) -> Result<PoolConnection<sqlx::Any>, StoreError> {
        match tokio::time::timeout(self.limit, self.pool.acquire()).await {
            // A connection proves the database answers: a long sweep holding the one
            // probe's leave must not keep every request failing until it ends.
            Ok(Ok(conn)) => {
                self.health.found(true);
                Ok(conn)
            }
            Ok(Err(e)) => Err(backend(e)),
            Err(_) => Err(no_answer(NoAnswer::TimedOut(self.limit))),
        }
    }
}
