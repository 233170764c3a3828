//! Every SQL statement of the server backends, written once with `?` placeholders and
//! rendered for the dialect. The column lists and the reads of whole rows are the row
//! codec's (`store::codec`), shared with SQLite.

use super::*;
use crate::store::codec::{
    ACCOUNT_COLUMNS, SELECT_ACCOUNT, SELECT_ACCOUNT_TOKENS, SELECT_EXPIRING, SELECT_TOKEN,
    SELECT_UNUSED, TOKEN_COLUMNS,
};

/// Every statement, written once with `?` placeholders and rendered for the dialect.
/// They are constants of this file (no value is ever spliced into one: values are bound),
/// which is what makes `AssertSqlSafe` true here.
pub(super) struct Statements {
    pub(super) insert_account: SqlStr,
    pub(super) insert_token: SqlStr,
    pub(super) select_account: SqlStr,
    pub(super) account_exists: SqlStr,
    pub(super) update_account: SqlStr,
    pub(super) select_token: SqlStr,
    pub(super) token_exists: SqlStr,
    pub(super) account_tokens: SqlStr,
    pub(super) update_token: SqlStr,
    pub(super) touch: SqlStr,
    pub(super) expiring: SqlStr,
    pub(super) unused: SqlStr,
    pub(super) purge: SqlStr,
    /// Tells every server that a token changed (PostgreSQL: `NOTIFY`; MySQL: a row in
    /// the change feed), inside the writing transaction.
    pub(super) announce: SqlStr,
    /// MySQL: the change feed's recent rows.
    pub(super) changes: SqlStr,
    /// MySQL: drops change-feed rows no server needs any more.
    pub(super) prune_changes: SqlStr,
    /// The first page of accounts.
    pub(super) accounts_first: SqlStr,
    /// A page of accounts after an id.
    pub(super) accounts_after: SqlStr,
}

/// The PostgreSQL channel token changes are announced on.
pub(super) const CHANNEL: &str = "feedkey_tokens";

/// The payload that means "every token" (a purge).
pub(super) const ALL: &str = "*";

/// MySQL's clock, in microseconds since the epoch.
pub(super) const MYSQL_NOW_US: &str = "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)";

impl Statements {
    pub(super) fn new(dialect: SqlDialect) -> Self {
        let r = |sql: &str| AssertSqlSafe(Arc::<str>::from(render(dialect, sql))).into_sql_str();
        Self {
            insert_account: r(&format!(
                "INSERT INTO feedkey_accounts ({ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            )),
            insert_token: r(&format!(
                "INSERT INTO feedkey_tokens ({TOKEN_COLUMNS}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )),
            select_account: r(SELECT_ACCOUNT),
            account_exists: r("SELECT 1 FROM feedkey_accounts WHERE id = ?"),
            update_account: r(
                "UPDATE feedkey_accounts SET password = ?, primary_token = ?, \
                revision = ?, disabled_at = ?, deleted_at = ? WHERE id = ? AND revision = ?",
            ),
            select_token: r(SELECT_TOKEN),
            token_exists: r("SELECT 1 FROM feedkey_tokens WHERE id = ?"),
            account_tokens: r(SELECT_ACCOUNT_TOKENS),
            update_token: r(
                "UPDATE feedkey_tokens SET kind = ?, description = ?, scope = ?, \
                secret_hash = ?, expires_at = ?, revoked_at = ?, parent = ?, retired = ?, \
                revision = ?, suspended_at = ? WHERE id = ? AND account = ? AND revision = ?",
            ),
            touch: r("UPDATE feedkey_tokens SET last_used_at = ? \
                WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)"),
            expiring: r(SELECT_EXPIRING),
            unused: r(SELECT_UNUSED),
            purge: r("DELETE FROM feedkey_tokens WHERE revoked_at IS NOT NULL AND revoked_at < ?"),
            announce: match dialect {
                SqlDialect::Postgres => r(&format!("SELECT pg_notify('{CHANNEL}', ?)")),
                SqlDialect::Mysql => r(&format!(
                    "INSERT INTO feedkey_changes (token_id, changed_at) VALUES (?, {MYSQL_NOW_US})"
                )),
            },
            changes: r(&format!(
                "SELECT seq, token_id FROM feedkey_changes \
                 WHERE changed_at >= {MYSQL_NOW_US} - ? ORDER BY seq"
            )),
            prune_changes: r(&format!(
                "DELETE FROM feedkey_changes WHERE changed_at < {MYSQL_NOW_US} - ?"
            )),
            accounts_first: r(crate::store::codec::SELECT_ACCOUNTS_FIRST),
            accounts_after: r(crate::store::codec::SELECT_ACCOUNTS_AFTER),
        }
    }
}

/// `sql` with its `?` placeholders as the dialect writes them (`$1`, `$2`… for
/// PostgreSQL). No statement here has a `?` inside a literal.
pub(super) fn render(dialect: SqlDialect, sql: &str) -> String {
    match dialect {
        SqlDialect::Mysql => sql.to_owned(),
        SqlDialect::Postgres => {
            let mut out = String::with_capacity(sql.len() + 16);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}
