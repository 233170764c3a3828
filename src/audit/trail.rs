//! The stored trail's rows: an [`AuditEvent`] written as a row (its kind's code and the
//! JSON of the kind's own fields) and read back as a [`TrailEvent`]. Reading checks every
//! value: a bad row is a [`StoreError::Corrupt`], never a panic.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AuditEvent, AuditKind, RevokeCause};
use crate::account::AccountId;
use crate::decision::GrantedBy;
use crate::request::Action;
use crate::store::{AuditRow, StoreError, StoredAuditRow};
use crate::token::TokenId;

/// What happened, as the stored trail tells it: [`AuditKind`], but a denial keeps its
/// reason's code (a [`DenyReason`](crate::DenyReason)'s detail is not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrailKind {
    /// [`AuditKind::AccountCreated`].
    AccountCreated,
    /// [`AuditKind::PasswordChanged`].
    PasswordChanged,
    /// [`AuditKind::AccountDisabled`].
    AccountDisabled,
    /// [`AuditKind::AccountEnabled`].
    AccountEnabled,
    /// [`AuditKind::AccountDeleted`].
    AccountDeleted,
    /// [`AuditKind::Issued`].
    Issued,
    /// [`AuditKind::Refreshed`].
    Refreshed {
        /// When the previous secret stops working.
        old_secret_until: OffsetDateTime,
    },
    /// [`AuditKind::PrimaryRegenerated`].
    PrimaryRegenerated,
    /// [`AuditKind::Edited`].
    Edited,
    /// [`AuditKind::Revoked`].
    Revoked {
        /// Why.
        cause: RevokeCause,
    },
    /// [`AuditKind::Derived`].
    Derived {
        /// The parent token.
        parent: TokenId,
    },
    /// [`AuditKind::Used`].
    Used {
        /// What it did.
        action: Action,
        /// How it was authenticated.
        by: GrantedBy,
    },
    /// [`AuditKind::Denied`].
    Denied {
        /// The reason's code ([`DenyReason::code`](crate::DenyReason::code)).
        reason: String,
    },
    /// [`AuditKind::RetiredSecretReused`].
    RetiredSecretReused,
    /// [`AuditKind::ExpiringSoon`].
    ExpiringSoon {
        /// The tokens and their expiry.
        tokens: Vec<(TokenId, OffsetDateTime)>,
    },
    /// [`AuditKind::TrustPolicyAdded`].
    TrustPolicyAdded,
    /// [`AuditKind::TrustPolicyEdited`].
    TrustPolicyEdited,
    /// [`AuditKind::TrustPolicyRemoved`].
    TrustPolicyRemoved,
}

/// One event of the stored trail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrailEvent {
    /// Its number in the trail: the cursor of the page that ends with it.
    pub id: u64,
    /// What happened.
    pub kind: TrailKind,
    /// The account, where known.
    pub account: Option<AccountId>,
    /// The token, where known.
    pub token: Option<TokenId>,
    /// The client's address, where the server gave it.
    pub client_addr: Option<IpAddr>,
    /// When.
    pub at: OffsetDateTime,
}

/// One page of the trail, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditPage {
    /// The events.
    pub events: Vec<TrailEvent>,
    /// The cursor of the next page ([`AuditFilter::after`](super::AuditFilter::after)),
    /// or `None` when this page is the last.
    pub next: Option<u64>,
}

/// The kind's own fields, as the `detail` column holds them (JSON; an absent field is
/// left out). Times in nanoseconds since the epoch, as every stored time.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Detail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
    /// Where a leaked token was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<TokenId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    old_secret_until: Option<i128>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokens: Option<Vec<(TokenId, i128)>>,
}

fn action_code(action: Action) -> &'static str {
    match action {
        Action::Read => "read",
        Action::Push => "push",
        Action::Unlist => "unlist",
    }
}

const CAUSES: [RevokeCause; 4] = [
    RevokeCause::Owner,
    RevokeCause::RetiredSecretReused,
    RevokeCause::Idle,
    RevokeCause::AccountDeleted,
];
const ACTIONS: [Action; 3] = [Action::Read, Action::Push, Action::Unlist];
const GRANTS: [GrantedBy; 4] = [
    GrantedBy::PrimaryKey,
    GrantedBy::Token,
    GrantedBy::DerivedToken,
    GrantedBy::Password,
];

/// `event` as a row of the trail.
pub(crate) fn encode(event: &AuditEvent) -> AuditRow {
    let nanos = |at: OffsetDateTime| at.unix_timestamp_nanos();
    let detail = match &event.kind {
        AuditKind::AccountCreated
        | AuditKind::PasswordChanged
        | AuditKind::AccountDisabled
        | AuditKind::AccountEnabled
        | AuditKind::AccountDeleted
        | AuditKind::Issued
        | AuditKind::PrimaryRegenerated
        | AuditKind::Edited
        | AuditKind::RetiredSecretReused
        | AuditKind::TrustPolicyAdded
        | AuditKind::TrustPolicyEdited
        | AuditKind::TrustPolicyRemoved => Detail::default(),
        AuditKind::Refreshed { old_secret_until } => Detail {
            old_secret_until: Some(nanos(*old_secret_until)),
            ..Detail::default()
        },
        AuditKind::Revoked { cause } => Detail {
            cause: Some(cause.code().to_owned()),
            source: match cause {
                RevokeCause::Leaked { source } => Some(source.clone()),
                _ => None,
            },
            ..Detail::default()
        },
        AuditKind::Derived { parent } => Detail {
            parent: Some(*parent),
            ..Detail::default()
        },
        AuditKind::Used { action, by } => Detail {
            action: Some(action_code(*action).to_owned()),
            by: Some(by.code().to_owned()),
            ..Detail::default()
        },
        AuditKind::Denied { reason } => Detail {
            reason: Some(reason.code().to_owned()),
            ..Detail::default()
        },
        AuditKind::ExpiringSoon { tokens } => Detail {
            tokens: Some(tokens.iter().map(|(id, at)| (*id, nanos(*at))).collect()),
            ..Detail::default()
        },
    };
    AuditRow {
        at: event.at,
        kind: event.kind.code().to_owned(),
        account: event.account.clone(),
        token: event.token,
        client_addr: event.client_addr,
        // A struct of strings, ids and integers always serializes.
        detail: serde_json::to_string(&detail).unwrap_or_else(|_| "{}".to_owned()),
    }
}

/// A row of the trail read back, every field checked.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the row when its kind or detail cannot be read.
pub(crate) fn decode(stored: StoredAuditRow) -> Result<TrailEvent, StoreError> {
    let StoredAuditRow { id, row } = stored;
    let corrupt = |detail: String| StoreError::Corrupt {
        what: format!("audit row {id}"),
        detail,
    };
    let detail: Detail =
        serde_json::from_str(&row.detail).map_err(|e| corrupt(format!("bad detail: {e}")))?;
    let missing = |field: &str| corrupt(format!("{} without its {field}", row.kind));
    let time = |nanos: i128| {
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .map_err(|e| corrupt(format!("bad time: {e}")))
    };
    let kind = match row.kind.as_str() {
        "account-created" => TrailKind::AccountCreated,
        "password-changed" => TrailKind::PasswordChanged,
        "account-disabled" => TrailKind::AccountDisabled,
        "account-enabled" => TrailKind::AccountEnabled,
        "account-deleted" => TrailKind::AccountDeleted,
        "issued" => TrailKind::Issued,
        "refreshed" => TrailKind::Refreshed {
            old_secret_until: time(
                detail
                    .old_secret_until
                    .ok_or_else(|| missing("old_secret_until"))?,
            )?,
        },
        "primary-regenerated" => TrailKind::PrimaryRegenerated,
        "edited" => TrailKind::Edited,
        "revoked" => {
            let code = detail.cause.ok_or_else(|| missing("cause"))?;
            let cause = if code == "leaked" {
                RevokeCause::Leaked {
                    source: detail.source.ok_or_else(|| missing("source"))?,
                }
            } else {
                CAUSES
                    .into_iter()
                    .find(|c| c.code() == code)
                    .ok_or_else(|| corrupt(format!("unknown revoke cause {code:?}")))?
            };
            TrailKind::Revoked { cause }
        }
        "derived" => TrailKind::Derived {
            parent: detail.parent.ok_or_else(|| missing("parent"))?,
        },
        "used" => {
            let action = detail.action.ok_or_else(|| missing("action"))?;
            let by = detail.by.ok_or_else(|| missing("by"))?;
            TrailKind::Used {
                action: ACTIONS
                    .into_iter()
                    .find(|a| action_code(*a) == action)
                    .ok_or_else(|| corrupt(format!("unknown action {action:?}")))?,
                by: GRANTS
                    .into_iter()
                    .find(|g| g.code() == by)
                    .ok_or_else(|| corrupt(format!("unknown grant {by:?}")))?,
            }
        }
        "denied" => TrailKind::Denied {
            reason: detail.reason.ok_or_else(|| missing("reason"))?,
        },
        "retired-secret-reused" => TrailKind::RetiredSecretReused,
        "expiring-soon" => TrailKind::ExpiringSoon {
            tokens: detail
                .tokens
                .ok_or_else(|| missing("tokens"))?
                .into_iter()
                .map(|(id, at)| Ok((id, time(at)?)))
                .collect::<Result<_, StoreError>>()?,
        },
        "trust-policy-added" => TrailKind::TrustPolicyAdded,
        "trust-policy-edited" => TrailKind::TrustPolicyEdited,
        "trust-policy-removed" => TrailKind::TrustPolicyRemoved,
        other => return Err(corrupt(format!("unknown kind {other:?}"))),
    };
    Ok(TrailEvent {
        id,
        kind,
        account: row.account,
        token: row.token,
        client_addr: row.client_addr,
        at: row.at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::DenyReason;

    fn row(kind: &str, detail: &str) -> StoredAuditRow {
        StoredAuditRow {
            id: 7,
            row: AuditRow {
                at: OffsetDateTime::UNIX_EPOCH,
                kind: kind.to_owned(),
                account: None,
                token: None,
                client_addr: None,
                detail: detail.to_owned(),
            },
        }
    }

    #[test]
    fn every_kind_is_read_back_as_it_was_written() {
        let id = TokenId::from_bytes([3; 16]);
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let cases = [
            (AuditKind::AccountCreated, TrailKind::AccountCreated),
            (AuditKind::PasswordChanged, TrailKind::PasswordChanged),
            (AuditKind::AccountDisabled, TrailKind::AccountDisabled),
            (AuditKind::AccountEnabled, TrailKind::AccountEnabled),
            (AuditKind::AccountDeleted, TrailKind::AccountDeleted),
            (
                AuditKind::Revoked {
                    cause: RevokeCause::AccountDeleted,
                },
                TrailKind::Revoked {
                    cause: RevokeCause::AccountDeleted,
                },
            ),
            (AuditKind::Issued, TrailKind::Issued),
            (
                AuditKind::Refreshed {
                    old_secret_until: at,
                },
                TrailKind::Refreshed {
                    old_secret_until: at,
                },
            ),
            (AuditKind::PrimaryRegenerated, TrailKind::PrimaryRegenerated),
            (AuditKind::Edited, TrailKind::Edited),
            (
                AuditKind::Revoked {
                    cause: RevokeCause::Idle,
                },
                TrailKind::Revoked {
                    cause: RevokeCause::Idle,
                },
            ),
            (
                AuditKind::Derived { parent: id },
                TrailKind::Derived { parent: id },
            ),
            (
                AuditKind::Used {
                    action: Action::Unlist,
                    by: GrantedBy::DerivedToken,
                },
                TrailKind::Used {
                    action: Action::Unlist,
                    by: GrantedBy::DerivedToken,
                },
            ),
            (
                AuditKind::Denied {
                    reason: DenyReason::WrongSecret,
                },
                TrailKind::Denied {
                    reason: "wrong-secret".to_owned(),
                },
            ),
            (
                AuditKind::RetiredSecretReused,
                TrailKind::RetiredSecretReused,
            ),
            (AuditKind::TrustPolicyAdded, TrailKind::TrustPolicyAdded),
            (AuditKind::TrustPolicyEdited, TrailKind::TrustPolicyEdited),
            (AuditKind::TrustPolicyRemoved, TrailKind::TrustPolicyRemoved),
            (
                AuditKind::ExpiringSoon {
                    tokens: vec![(id, at)],
                },
                TrailKind::ExpiringSoon {
                    tokens: vec![(id, at)],
                },
            ),
        ];
        for (kind, expected) in cases {
            let event = AuditEvent {
                kind,
                account: Some(AccountId::new("alice").unwrap()),
                token: Some(id),
                client_addr: Some("192.0.2.1".parse().unwrap()),
                at,
            };
            let row = encode(&event);
            assert_eq!(row.kind, event.kind.code());
            let read = decode(StoredAuditRow { id: 1, row }).unwrap();
            assert_eq!(read.kind, expected);
            assert_eq!(read.account, event.account);
            assert_eq!(read.token, event.token);
            assert_eq!(read.client_addr, event.client_addr);
            assert_eq!(read.at, at);
        }
    }

    /// Stored rows outlive releases: a kind's code and its detail's form never change
    /// (a row written by an older release must still be read).
    #[test]
    fn the_stored_form_of_each_kind_never_changes() {
        let id = TokenId::from_bytes([3; 16]);
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let cases = [
            (AuditKind::AccountCreated, "account-created", "{}"),
            (AuditKind::PasswordChanged, "password-changed", "{}"),
            (AuditKind::AccountDisabled, "account-disabled", "{}"),
            (AuditKind::AccountEnabled, "account-enabled", "{}"),
            (AuditKind::AccountDeleted, "account-deleted", "{}"),
            (AuditKind::Issued, "issued", "{}"),
            (
                AuditKind::Refreshed {
                    old_secret_until: at,
                },
                "refreshed",
                r#"{"old_secret_until":1700000000000000000}"#,
            ),
            (AuditKind::PrimaryRegenerated, "primary-regenerated", "{}"),
            (AuditKind::Edited, "edited", "{}"),
            (
                AuditKind::Revoked {
                    cause: RevokeCause::Owner,
                },
                "revoked",
                r#"{"cause":"owner"}"#,
            ),
            (
                AuditKind::Revoked {
                    cause: RevokeCause::RetiredSecretReused,
                },
                "revoked",
                r#"{"cause":"retired-secret-reused"}"#,
            ),
            (
                AuditKind::Revoked {
                    cause: RevokeCause::Leaked {
                        source: "https://github.com/a/b".into(),
                    },
                },
                "revoked",
                r#"{"cause":"leaked","source":"https://github.com/a/b"}"#,
            ),
            (
                AuditKind::Derived { parent: id },
                "derived",
                r#"{"parent":"AwMDAwMDAwMDAwMDAwMDAw"}"#,
            ),
            (
                AuditKind::Used {
                    action: Action::Read,
                    by: GrantedBy::Password,
                },
                "used",
                r#"{"action":"read","by":"password"}"#,
            ),
            (
                AuditKind::Used {
                    action: Action::Push,
                    by: GrantedBy::PrimaryKey,
                },
                "used",
                r#"{"action":"push","by":"primary-key"}"#,
            ),
            (
                AuditKind::Denied {
                    reason: DenyReason::Expired,
                },
                "denied",
                r#"{"reason":"expired"}"#,
            ),
            (
                AuditKind::RetiredSecretReused,
                "retired-secret-reused",
                "{}",
            ),
            (
                AuditKind::ExpiringSoon {
                    tokens: vec![(id, at)],
                },
                "expiring-soon",
                r#"{"tokens":[["AwMDAwMDAwMDAwMDAwMDAw",1700000000000000000]]}"#,
            ),
        ];
        for (kind, code, detail) in cases {
            let row = encode(&AuditEvent {
                kind,
                account: None,
                token: None,
                client_addr: None,
                at,
            });
            assert_eq!(row.kind, code);
            assert_eq!(row.detail, detail, "{code}");
            // And what was stored reads back.
            decode(StoredAuditRow { id: 1, row }).unwrap();
        }
    }

    #[test]
    fn a_bad_row_is_corrupt_data_naming_it_never_a_panic() {
        for (kind, detail) in [
            ("revoked", "{}"),
            ("revoked", r#"{"cause":"boredom"}"#),
            ("revoked", "not json"),
            ("used", r#"{"action":"read"}"#),
            ("used", r#"{"action":"fly","by":"token"}"#),
            ("derived", r#"{"parent":"zz"}"#),
            ("refreshed", r#"{"old_secret_until":1e300}"#),
            (
                "refreshed",
                r#"{"old_secret_until":999999999999999999999999999}"#,
            ),
            ("issued", r#"{"extra":1}"#),
            ("teleported", "{}"),
        ] {
            match decode(row(kind, detail)) {
                Err(StoreError::Corrupt { what, .. }) => assert_eq!(what, "audit row 7"),
                other => panic!("{kind} {detail}: {other:?}"),
            }
        }
    }
}
