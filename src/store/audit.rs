//! The stored audit trail's seam: [`AuditStore`], a trait of its own beside
//! [`TokenStore`](super::TokenStore) (a store without it still serves every older call),
//! the plain rows it keeps and the filter that reads them. What the rows mean (an event's
//! kind and its fields) is `feedkey::audit`'s: a store keeps text and numbers.
//!
//! Rows are numbered by the store, in the order they were appended; a read pages by that
//! number (keyset), oldest first.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;

use super::StoreError;
use crate::account::AccountId;
use crate::token::TokenId;

/// One audit event as a store keeps it. Never a secret, a hash or a header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// When it happened.
    pub at: OffsetDateTime,
    /// What happened: the event kind's short code (`"revoked"`, `"denied"`…).
    pub kind: String,
    /// The account, where known.
    pub account: Option<AccountId>,
    /// The token, where known.
    pub token: Option<TokenId>,
    /// The client's address, where known.
    pub client_addr: Option<IpAddr>,
    /// The kind's own fields, as JSON text (`{}` when it has none).
    pub detail: String,
}

/// An [`AuditRow`] as read back, with the number the store gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditRow {
    /// The row's number: unique, and greater than every number given before it.
    pub id: u64,
    /// The row.
    pub row: AuditRow,
}

/// Which audit rows to read: every condition set must hold. Rows come oldest first (by
/// their number), at most [`AuditFilter::limit`] of them, after the cursor
/// ([`AuditFilter::after`]).
///
/// ```
/// use feedkey::audit::AuditFilter;
/// use feedkey::time::{Duration, OffsetDateTime};
/// use feedkey::AccountId;
///
/// let alice = AccountId::new("alice")?;
/// let filter = AuditFilter::new()
///     .account(&alice)
///     .kind("revoked")
///     .since(OffsetDateTime::now_utc() - Duration::days(7))
///     .limit(50);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    account: Option<AccountId>,
    token: Option<TokenId>,
    kind: Option<String>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    after: u64,
    limit: u32,
}

impl Default for AuditFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditFilter {
    /// The rows a page holds unless told otherwise.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// The most rows a page holds.
    pub const MAX_LIMIT: u32 = 10_000;

    /// Every row, [`AuditFilter::DEFAULT_LIMIT`] at a time.
    pub const fn new() -> Self {
        Self {
            account: None,
            token: None,
            kind: None,
            since: None,
            until: None,
            after: 0,
            limit: Self::DEFAULT_LIMIT,
        }
    }

    /// Only this account's events.
    #[must_use]
    pub fn account(mut self, account: &AccountId) -> Self {
        self.account = Some(account.clone());
        self
    }

    /// Only this token's events.
    #[must_use]
    pub fn token(mut self, token: TokenId) -> Self {
        self.token = Some(token);
        self
    }

    /// Only events of this kind, by its code (`AuditKind::code`: `"revoked"`,
    /// `"denied"`…). An unknown code finds nothing.
    #[must_use]
    pub fn kind(mut self, code: &str) -> Self {
        self.kind = Some(code.to_owned());
        self
    }

    /// Only events at or after `at`.
    #[must_use]
    pub fn since(mut self, at: OffsetDateTime) -> Self {
        self.since = Some(at);
        self
    }

    /// Only events before `at`.
    #[must_use]
    pub fn until(mut self, at: OffsetDateTime) -> Self {
        self.until = Some(at);
        self
    }

    /// Only rows numbered above `cursor`: the next page after a page whose last row was
    /// numbered `cursor`.
    #[must_use]
    pub fn after(mut self, cursor: u64) -> Self {
        self.after = cursor;
        self
    }

    /// At most `limit` rows, between 1 and [`AuditFilter::MAX_LIMIT`] (clamped).
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit.clamp(1, Self::MAX_LIMIT);
        self
    }

    /// The same filter asking for one row more than its limit (past
    /// [`AuditFilter::MAX_LIMIT`] too): how a page learns whether another follows.
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    pub(crate) fn one_more(&self) -> Self {
        Self {
            limit: self.limit.saturating_add(1),
            ..self.clone()
        }
    }

    /// The account asked for.
    pub fn account_is(&self) -> Option<&AccountId> {
        self.account.as_ref()
    }

    /// The token asked for.
    pub fn token_is(&self) -> Option<TokenId> {
        self.token
    }

    /// The kind code asked for.
    pub fn kind_is(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    /// The earliest time asked for (inclusive).
    pub fn since_is(&self) -> Option<OffsetDateTime> {
        self.since
    }

    /// The time asked for rows to be before (exclusive).
    pub fn until_is(&self) -> Option<OffsetDateTime> {
        self.until
    }

    /// The cursor: rows numbered above it.
    pub fn after_is(&self) -> u64 {
        self.after
    }

    /// The most rows asked for.
    pub fn limit_is(&self) -> u32 {
        self.limit
    }

    /// Whether `row`, numbered `id`, passes every condition but the limit (for a store
    /// that filters in memory).
    pub fn matches(&self, id: u64, row: &AuditRow) -> bool {
        id > self.after
            && self
                .account
                .as_ref()
                .is_none_or(|a| row.account.as_ref() == Some(a))
            && self.token.is_none_or(|t| row.token == Some(t))
            && self.kind.as_deref().is_none_or(|k| row.kind == k)
            && self.since.is_none_or(|s| row.at >= s)
            && self.until.is_none_or(|u| row.at < u)
    }
}

/// Where audit rows are kept: appended in batches, read by [`AuditFilter`], purged by
/// age. Every SQL store of this crate keeps them (`feedkey_audit`), and so does
/// [`MemoryStore`](super::MemoryStore) (in memory, for tests).
pub trait AuditStore: Send + Sync {
    /// Appends `rows`, all or none, numbering them in order.
    ///
    /// # Errors
    /// A backend failure; nothing was appended.
    fn append_audit(
        &self,
        rows: &[AuditRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The rows `filter` selects, oldest first, at most its limit.
    ///
    /// # Errors
    /// A backend failure, or [`StoreError::Corrupt`] for a row that cannot be read.
    fn audit_rows(
        &self,
        filter: &AuditFilter,
    ) -> impl Future<Output = Result<Vec<StoredAuditRow>, StoreError>> + Send;

    /// Deletes the rows of events before `before`; returns how many.
    ///
    /// # Errors
    /// A backend failure.
    fn purge_audit(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A shared store keeps audit rows as the store does.
impl<T: AuditStore + ?Sized> AuditStore for Arc<T> {
    fn append_audit(
        &self,
        rows: &[AuditRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).append_audit(rows)
    }

    fn audit_rows(
        &self,
        filter: &AuditFilter,
    ) -> impl Future<Output = Result<Vec<StoredAuditRow>, StoreError>> + Send {
        (**self).audit_rows(filter)
    }

    fn purge_audit(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).purge_audit(before)
    }
}

/// The SQL backends' side: the statements (written with `?`, rendered for PostgreSQL by
/// the server backend) and the row as the database holds it.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) mod sql {
    use super::*;
    use crate::store::codec::{id_from_db, id_to_db, time_from_db, time_to_db};

    /// The columns of an audit row, in the order [`DbAuditRow`] takes them.
    pub(crate) const COLUMNS: &str = "id, at, kind, account, token, client_addr, detail";

    /// The most rows one `INSERT` carries: 600 values, far below every dialect's limit on
    /// bound values (SQLite's is 32 766).
    pub(crate) const ROWS_PER_INSERT: usize = 100;

    /// The statement that appends `n` rows (the ids are the database's), each row's six
    /// values in [`DbAuditRow`]'s order, `at` first.
    pub(crate) fn insert(n: usize) -> String {
        let values = vec!["(?, ?, ?, ?, ?, ?)"; n].join(", ");
        format!(
            "INSERT INTO feedkey_audit (at, kind, account, token, client_addr, detail) \
             VALUES {values}"
        )
    }

    /// Deletes the rows before `?`.
    pub(crate) const PURGE: &str = "DELETE FROM feedkey_audit WHERE at < ?";

    /// An audit row's columns as the database holds them.
    #[derive(Debug, Clone)]
    pub(crate) struct DbAuditRow {
        pub id: i64,
        pub at: i64,
        pub kind: String,
        pub account: Option<String>,
        pub token: Option<Vec<u8>>,
        pub client_addr: Option<String>,
        pub detail: String,
    }

    /// A value bound to a select, in the order of its `?`s.
    #[derive(Debug, Clone)]
    pub(crate) enum Arg {
        Int(i64),
        Text(String),
        Bytes(Vec<u8>),
    }

    /// The statement that reads what `filter` selects, and its arguments in order. The
    /// limit is a number written into the text; every other value is bound.
    pub(crate) fn select(filter: &AuditFilter) -> Result<(String, Vec<Arg>), StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM feedkey_audit WHERE id > ?");
        let after = i64::try_from(filter.after).unwrap_or(i64::MAX);
        let mut args = vec![Arg::Int(after)];
        if let Some(account) = &filter.account {
            sql.push_str(" AND account = ?");
            args.push(Arg::Text(account.as_str().to_owned()));
        }
        if let Some(token) = &filter.token {
            sql.push_str(" AND token = ?");
            args.push(Arg::Bytes(id_to_db(token)));
        }
        if let Some(kind) = &filter.kind {
            sql.push_str(" AND kind = ?");
            args.push(Arg::Text(kind.clone()));
        }
        if let Some(since) = filter.since {
            sql.push_str(" AND at >= ?");
            args.push(Arg::Int(time_to_db(since)?));
        }
        if let Some(until) = filter.until {
            sql.push_str(" AND at < ?");
            args.push(Arg::Int(time_to_db(until)?));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {}", filter.limit));
        Ok((sql, args))
    }

    impl DbAuditRow {
        /// The row to insert for `row` (`id` unused).
        pub(crate) fn from_row(row: &AuditRow) -> Result<Self, StoreError> {
            Ok(Self {
                id: 0,
                at: time_to_db(row.at)?,
                kind: row.kind.clone(),
                account: row.account.as_ref().map(|a| a.as_str().to_owned()),
                token: row.token.as_ref().map(id_to_db),
                client_addr: row.client_addr.map(|a| a.to_string()),
                detail: row.detail.clone(),
            })
        }

        /// The row read, every column checked: a bad one is [`StoreError::Corrupt`].
        pub(crate) fn into_stored(self) -> Result<StoredAuditRow, StoreError> {
            let what = format!("audit row {}", self.id);
            let corrupt = |detail: String| StoreError::Corrupt {
                what: what.clone(),
                detail,
            };
            let id = u64::try_from(self.id).map_err(|_| corrupt("negative id".to_owned()))?;
            let account = self
                .account
                .as_deref()
                .map(AccountId::new)
                .transpose()
                .map_err(|e| corrupt(format!("bad account: {e}")))?;
            let token = self
                .token
                .as_deref()
                .map(|bytes| id_from_db(&what, bytes))
                .transpose()?;
            let client_addr = self
                .client_addr
                .as_deref()
                .map(str::parse::<IpAddr>)
                .transpose()
                .map_err(|e| corrupt(format!("bad client address: {e}")))?;
            Ok(StoredAuditRow {
                id,
                row: AuditRow {
                    at: time_from_db(&what, self.at)?,
                    kind: self.kind,
                    account,
                    token,
                    client_addr,
                    detail: self.detail,
                },
            })
        }
    }
}
