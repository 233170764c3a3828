//! Rows: how records are laid out in SQL, shared by every SQL backend: the one list of
//! each row's columns, the reads of whole rows, and the conversions between records and
//! rows.
//!
//! Times are whole nanoseconds since the Unix epoch in a 64-bit integer (1677 to 2262),
//! token ids 16 raw bytes, the scope and the retired secrets JSON text, hashes their
//! self-describing PHC strings. Reading a row checks everything: a bad value is a
//! [`StoreError::Corrupt`] naming the record, never a panic and never an allow.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreError;
use crate::account::AccountId;
use crate::record::{AccountRecord, StoredToken, TokenKind, TokenRecord};
use crate::scope::Scope;
use crate::secret::PasswordHash;
use crate::secret::{KeyFingerprint, SecretHash};
use crate::secret::{MAX_RETIRED_SECRETS, RetiredSecret};
use crate::token::{ID_LEN, TokenId};

/// The columns of a token row, as a literal (for `concat!`), in the order the backends'
/// row readers take them.
macro_rules! token_columns {
    () => {
        "id, account, kind, description, scope, secret_hash, created_at, expires_at, \
         revoked_at, parent, retired, last_used_at, revision, parent_secret_set_at, \
         suspended_at"
    };
}

/// The columns of an account row, as a literal (for `concat!`), in the order the
/// backends' row readers take them.
macro_rules! account_columns {
    () => {
        "id, password, primary_token, created_at, revision, disabled_at, deleted_at"
    };
}

/// The columns of a [`TokenRow`], in the order the backends' row readers take them.
pub(crate) const TOKEN_COLUMNS: &str = token_columns!();

/// The columns of an [`AccountRow`], in the order the backends' row readers take them.
pub(crate) const ACCOUNT_COLUMNS: &str = account_columns!();

// The reads of whole rows, the same in every SQL backend: written with `?` placeholders,
// which SQLite and MySQL take as they are and the server backend renders for PostgreSQL.

/// An account, by id.
pub(crate) const SELECT_ACCOUNT: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM feedkey_accounts WHERE id = ?"
);

/// The first page of accounts, by id: `LIMIT ?`.
pub(crate) const SELECT_ACCOUNTS_FIRST: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM feedkey_accounts ORDER BY id LIMIT ?"
);

/// A page of accounts after an id: `id > ?`, `LIMIT ?`.
pub(crate) const SELECT_ACCOUNTS_AFTER: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM feedkey_accounts WHERE id > ? ORDER BY id LIMIT ?"
);

/// A token, by id.
pub(crate) const SELECT_TOKEN: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM feedkey_tokens WHERE id = ?"
);

/// An account's tokens, oldest first (`TokenStore::account_tokens`).
pub(crate) const SELECT_ACCOUNT_TOKENS: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM feedkey_tokens WHERE account = ? ORDER BY created_at, id"
);

/// The unrevoked tokens whose expiry is in `[?, ?)`, soonest first
/// (`TokenStore::tokens_expiring`).
pub(crate) const SELECT_EXPIRING: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM feedkey_tokens WHERE revoked_at IS NULL \
     AND expires_at >= ? AND expires_at < ? ORDER BY expires_at, id"
);

/// The unrevoked tokens last used (or, never used, created) at or before `?`
/// (`TokenStore::tokens_unused_since`).
pub(crate) const SELECT_UNUSED: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM feedkey_tokens WHERE revoked_at IS NULL \
     AND COALESCE(last_used_at, created_at) <= ? ORDER BY id"
);

/// A token as stored in a row.
#[derive(Debug, Clone)]
pub(crate) struct TokenRow {
    pub id: Vec<u8>,
    pub account: String,
    pub kind: String,
    pub description: String,
    pub scope: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub parent: Option<Vec<u8>>,
    pub retired: String,
    pub parent_secret_set_at: Option<i64>,
    pub suspended_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revision: i64,
}

/// An account as stored in a row.
#[derive(Debug, Clone)]
pub(crate) struct AccountRow {
    pub id: String,
    pub password: Option<String>,
    pub primary_token: Vec<u8>,
    pub created_at: i64,
    pub revision: i64,
    pub disabled_at: Option<i64>,
    pub deleted_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct RetiredJson {
    hash: String,
    retired_at: i64,
    works_until: i64,
    kept_until: i64,
}

fn corrupt(what: impl ToString, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

/// A time as stored.
pub(crate) fn time_to_db(at: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(at.unix_timestamp_nanos())
        .map_err(|_| corrupt(at, "time outside the years 1677 to 2262"))
}

fn opt_time_to_db(at: Option<OffsetDateTime>) -> Result<Option<i64>, StoreError> {
    at.map(time_to_db).transpose()
}

pub(crate) fn time_from_db(what: &str, nanos: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .map_err(|e| corrupt(what, format!("bad time: {e}")))
}

fn opt_time_from_db(what: &str, nanos: Option<i64>) -> Result<Option<OffsetDateTime>, StoreError> {
    nanos.map(|n| time_from_db(what, n)).transpose()
}

/// A revision as stored.
pub(crate) fn revision_to_db(revision: u64) -> Result<i64, StoreError> {
    i64::try_from(revision).map_err(|_| corrupt(revision, "revision out of range"))
}

fn revision_from_db(what: &str, revision: i64) -> Result<u64, StoreError> {
    u64::try_from(revision).map_err(|_| corrupt(what, "negative revision"))
}

/// A token id as stored.
pub(crate) fn id_to_db(id: &TokenId) -> Vec<u8> {
    id.as_bytes().to_vec()
}

/// A token id from its stored bytes.
pub(crate) fn id_from_db(what: &str, bytes: &[u8]) -> Result<TokenId, StoreError> {
    let array: [u8; ID_LEN] = bytes
        .try_into()
        .map_err(|_| corrupt(what, format!("token id of {} bytes", bytes.len())))?;
    Ok(TokenId::from_bytes(array))
}

/// A remembered key version and its fingerprint, from their stored forms (an integer,
/// and the fingerprint's hex).
pub(crate) fn key_from_db(
    version: i64,
    fingerprint: &str,
) -> Result<(u32, KeyFingerprint), StoreError> {
    let what = format!("token key version {version}");
    let version = u32::try_from(version).map_err(|_| corrupt(&what, "version out of range"))?;
    let fingerprint = KeyFingerprint::from_hex(fingerprint)
        .map_err(|_| corrupt(&what, format!("bad fingerprint {fingerprint:?}")))?;
    Ok((version, fingerprint))
}

fn kind_to_db(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Primary => "primary",
        TokenKind::Scoped => "scoped",
        TokenKind::Derived => "derived",
        // At most 16 bytes: MySQL's `kind` column is `VARCHAR(16)`.
        TokenKind::TrustedPublishing => "trusted-publish",
        TokenKind::TrustPolicy => "trust-policy",
    }
}

fn kind_from_db(what: &str, kind: &str) -> Result<TokenKind, StoreError> {
    match kind {
        "primary" => Ok(TokenKind::Primary),
        "scoped" => Ok(TokenKind::Scoped),
        "derived" => Ok(TokenKind::Derived),
        "trusted-publish" => Ok(TokenKind::TrustedPublishing),
        "trust-policy" => Ok(TokenKind::TrustPolicy),
        other => Err(corrupt(what, format!("unknown token kind {other:?}"))),
    }
}

impl TokenRow {
    /// The row for `record`.
    pub(crate) fn from_record(
        record: &TokenRecord,
        last_used_at: Option<OffsetDateTime>,
    ) -> Result<Self, StoreError> {
        let what = record.id.to_string();
        let scope =
            serde_json::to_string(&record.scope).map_err(|e| corrupt(&what, e.to_string()))?;
        let retired = record
            .retired
            .iter()
            .map(|r| {
                Ok(RetiredJson {
                    hash: r.hash.to_phc(),
                    retired_at: time_to_db(r.retired_at)?,
                    works_until: time_to_db(r.works_until)?,
                    kept_until: time_to_db(r.kept_until)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let retired = serde_json::to_string(&retired).map_err(|e| corrupt(&what, e))?;
        Ok(Self {
            id: id_to_db(&record.id),
            account: record.account.as_str().to_owned(),
            kind: kind_to_db(record.kind).to_owned(),
            description: record.description.to_string(),
            scope,
            secret_hash: record.secret_hash.to_phc(),
            created_at: time_to_db(record.created_at)?,
            expires_at: opt_time_to_db(record.expires_at)?,
            revoked_at: opt_time_to_db(record.revoked_at)?,
            parent: record.parent.as_ref().map(id_to_db),
            retired,
            parent_secret_set_at: opt_time_to_db(record.parent_secret_set_at)?,
            suspended_at: opt_time_to_db(record.suspended_at)?,
            last_used_at: opt_time_to_db(last_used_at)?,
            revision: revision_to_db(record.revision)?,
        })
    }

    /// The record in this row, checked.
    pub(crate) fn into_stored(self) -> Result<StoredToken, StoreError> {
        let id = id_from_db("a token row", &self.id)?;
        let what = format!("token {id}");
        let what = what.as_str();
        let scope: Scope = serde_json::from_str(&self.scope)
            .map_err(|e| corrupt(what, format!("bad scope: {e}")))?;
        let retired: Vec<RetiredJson> = serde_json::from_str(&self.retired)
            .map_err(|e| corrupt(what, format!("bad retired secrets: {e}")))?;
        if retired.len() > MAX_RETIRED_SECRETS {
            return Err(corrupt(what, "too many retired secrets"));
        }
        let retired = retired
            .into_iter()
            .map(|r| {
                Ok(RetiredSecret {
                    hash: SecretHash::from_phc(&r.hash)
                        .map_err(|e| corrupt(what, format!("bad retired hash: {e}")))?,
                    retired_at: time_from_db(what, r.retired_at)?,
                    works_until: time_from_db(what, r.works_until)?,
                    kept_until: time_from_db(what, r.kept_until)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let record = TokenRecord {
            id,
            account: AccountId::new(&self.account)
                .map_err(|e| corrupt(what, format!("bad account: {e}")))?,
            kind: kind_from_db(what, &self.kind)?,
            description: self.description.into(),
            scope,
            secret_hash: SecretHash::from_phc(&self.secret_hash)
                .map_err(|e| corrupt(what, format!("bad secret hash: {e}")))?,
            created_at: time_from_db(what, self.created_at)?,
            expires_at: opt_time_from_db(what, self.expires_at)?,
            revoked_at: opt_time_from_db(what, self.revoked_at)?,
            parent: self
                .parent
                .as_deref()
                .map(|p| id_from_db(what, p))
                .transpose()?,
            parent_secret_set_at: opt_time_from_db(what, self.parent_secret_set_at)?,
            suspended_at: opt_time_from_db(what, self.suspended_at)?,
            retired,
            revision: revision_from_db(what, self.revision)?,
        };
        Ok(StoredToken {
            record: Arc::new(record),
            last_used_at: opt_time_from_db(what, self.last_used_at)?,
        })
    }
}

impl AccountRow {
    /// The row for `account`.
    pub(crate) fn from_record(account: &AccountRecord) -> Result<Self, StoreError> {
        Ok(Self {
            id: account.id.as_str().to_owned(),
            password: account.password.as_ref().map(|p| p.as_phc().to_owned()),
            primary_token: id_to_db(&account.primary),
            created_at: time_to_db(account.created_at)?,
            revision: revision_to_db(account.revision)?,
            disabled_at: opt_time_to_db(account.disabled_at)?,
            deleted_at: opt_time_to_db(account.deleted_at)?,
        })
    }

    /// The account in this row, checked.
    pub(crate) fn into_record(self) -> Result<AccountRecord, StoreError> {
        let what = format!("account {:?}", self.id);
        let what = what.as_str();
        Ok(AccountRecord {
            id: AccountId::new(&self.id).map_err(|e| corrupt(what, e))?,
            password: self
                .password
                .as_deref()
                .map(PasswordHash::from_phc)
                .transpose()
                .map_err(|e| corrupt(what, e))?,
            primary: id_from_db(what, &self.primary_token)?,
            created_at: time_from_db(what, self.created_at)?,
            revision: revision_from_db(what, self.revision)?,
            disabled_at: opt_time_from_db(what, self.disabled_at)?,
            deleted_at: opt_time_from_db(what, self.deleted_at)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::{Feeds, Packages, Permissions};
    use crate::secret::{TokenHasher, TokenKey};
    use time::macros::datetime;

    fn record() -> TokenRecord {
        let id = TokenId::from_bytes([3; ID_LEN]);
        let hasher = TokenHasher::new(TokenKey::new(1, &[1; 32]), vec![]).unwrap();
        TokenRecord {
            id,
            account: AccountId::new("alice").unwrap(),
            kind: TokenKind::Derived,
            description: "'; DROP TABLE feedkey_tokens; --".into(),
            scope: Scope::new(
                Permissions::WRITE_ONLY,
                Feeds::only(["ci"]).unwrap(),
                Packages::only(["a.*"]).unwrap(),
            )
            .unwrap(),
            secret_hash: hasher.hash(&id, &[1; 32]),
            created_at: datetime!(2026-01-01 0:00:00.123456789 UTC),
            expires_at: Some(datetime!(2027-01-01 0:00 UTC)),
            revoked_at: None,
            parent: Some(TokenId::from_bytes([4; ID_LEN])),
            parent_secret_set_at: Some(
                OffsetDateTime::UNIX_EPOCH + time::Duration::nanoseconds(1_234),
            ),
            retired: vec![RetiredSecret {
                hash: hasher.hash(&id, &[2; 32]),
                retired_at: datetime!(2026-02-01 0:00 UTC),
                works_until: datetime!(2026-02-01 0:10 UTC),
                kept_until: datetime!(2026-03-01 0:10 UTC),
            }],
            suspended_at: Some(datetime!(2026-04-01 0:00 UTC)),
            revision: 7,
        }
    }

    #[test]
    fn a_record_round_trips_through_its_row() {
        let r = record();
        let row = TokenRow::from_record(&r, Some(datetime!(2026-05-01 0:00 UTC))).unwrap();
        let back = row.into_stored().unwrap();
        let b = &back.record;
        assert_eq!(b.id, r.id);
        assert_eq!(b.scope, r.scope);
        assert_eq!(b.secret_hash, r.secret_hash);
        assert_eq!(b.retired, r.retired);
        assert_eq!(b.created_at, r.created_at);
        assert_eq!(b.parent, r.parent);
        assert_eq!(b.parent_secret_set_at, r.parent_secret_set_at);
        assert_eq!(b.suspended_at, r.suspended_at);
        assert_eq!(b.description, r.description);
        assert_eq!(back.last_used_at, Some(datetime!(2026-05-01 0:00 UTC)));
    }

    #[test]
    fn bad_rows_are_typed_errors_naming_the_token() {
        let good = TokenRow::from_record(&record(), None).unwrap();
        type Spoil = Box<dyn Fn(&mut TokenRow)>;
        let bad: Vec<(&str, Spoil)> = vec![
            ("scheme", Box::new(|r| r.secret_hash = "$md5$x".into())),
            (
                "hash",
                Box::new(|r| r.secret_hash = "$fk-blake3$k=1$AA".into()),
            ),
            ("glob", Box::new(|r| r.scope = r.scope.replace("a.*", "a["))),
            ("json", Box::new(|r| r.scope.truncate(10))),
            ("kind", Box::new(|r| r.kind = "admin".into())),
            ("id", Box::new(|r| r.parent = Some(vec![1, 2, 3]))),
            ("account", Box::new(|r| r.account = String::new())),
            ("revision", Box::new(|r| r.revision = -1)),
            ("retired", Box::new(|r| r.retired = "[{}]".into())),
            (
                "perms",
                Box::new(|r| r.scope = r.scope.replace("push-new\",\"push-version", "root")),
            ),
        ];
        for (name, spoil) in bad {
            let mut row = good.clone();
            spoil(&mut row);
            match row.into_stored() {
                Err(StoreError::Corrupt { what, .. })
                    if name == "id" || what.contains("AwMDAwMD") => {}
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
