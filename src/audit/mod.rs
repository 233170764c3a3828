//! Audit events: what happened to which token, for the registry's own records.
//!
//! An event names the account, the token id where known, the client address where known
//! and the time. It never holds a secret, a hash or a header value.
//!
//! Where events go is an [`AuditSink`]: a closure, `TracingAudit` (feature `tracing`),
//! or, with a SQL backend (features `sqlite`, `postgres`, `mysql`), `StoredAudit`, which
//! keeps them in the database beside the tokens (`feedkey_audit`), off the request path,
//! to be read back with `Feedkey::audit_events` and to re-apply revocations after a
//! restore (`Feedkey::replay_revocations`).

use std::fmt;
use std::net::IpAddr;

use time::OffsetDateTime;

use crate::decision::{DenyReason, GrantedBy};

use crate::account::AccountId;
use crate::request::Action;
use crate::store::{BoxFuture, StoreError};
use crate::token::TokenId;

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod stored;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod trail;

pub use crate::store::AuditFilter;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
)]
pub use stored::{NoRuntime, StoredAudit, StoredAuditBuilder};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
)]
pub use trail::{AuditPage, TrailEvent, TrailKind};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) use trail::{decode, encode};

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditKind {
    /// An account was created with its primary key.
    AccountCreated,
    /// The account password was set, changed or removed.
    PasswordChanged,
    /// The account was disabled: its password and every token refused until enabled.
    AccountDisabled,
    /// The account was enabled again after being disabled.
    AccountEnabled,
    /// The account was deleted: every token revoked, the password removed.
    AccountDeleted,
    /// A token was issued.
    Issued,
    /// A token got a new secret; the old one works until `old_secret_until`.
    Refreshed {
        /// When the previous secret stops working.
        old_secret_until: OffsetDateTime,
    },
    /// The primary key was regenerated.
    PrimaryRegenerated,
    /// A token's description or scope was changed.
    Edited,
    /// A token was revoked.
    Revoked {
        /// Why.
        cause: RevokeCause,
    },
    /// A child token was derived from `parent`.
    Derived {
        /// The parent token.
        parent: TokenId,
    },
    /// A request was allowed.
    Used {
        /// What it did.
        action: Action,
        /// How it was authenticated.
        by: GrantedBy,
    },
    /// A request was denied.
    Denied {
        /// Why.
        reason: DenyReason,
    },
    /// A secret retired by a refresh was presented after its overlap window: it has
    /// probably leaked.
    RetiredSecretReused,
    /// Tokens that expire soon (the result of an expiring-soon query).
    ExpiringSoon {
        /// The tokens and their expiry.
        tokens: Vec<(TokenId, OffsetDateTime)>,
    },
    /// A trusted-publishing policy was added (the event's token is the policy's id).
    TrustPolicyAdded,
    /// A trusted-publishing policy was narrowed, or locked to its repository's ids.
    TrustPolicyEdited,
    /// A trusted-publishing policy was removed, and the keys minted from it with it.
    TrustPolicyRemoved,
}

/// Why a token was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevokeCause {
    /// Its owner revoked it.
    Owner,
    /// A retired secret of it was reused and the policy revokes on reuse.
    RetiredSecretReused,
    /// It went unused for longer than the idle policy allows.
    Idle,
    /// It was reported leaked ([`Feedkey::report_leaked`](crate::Feedkey::report_leaked))
    /// and its secret verified: its owner should learn where from.
    Leaked {
        /// Where it was found: the URL or label the report gave.
        source: String,
    },
    /// Its account was deleted.
    AccountDeleted,
}

impl AuditKind {
    /// A short, stable name for the kind, as the stored trail keeps it and
    /// [`AuditFilter::kind`] takes it: `account-created`, `password-changed`, `issued`,
    /// `account-disabled`, `account-enabled`, `account-deleted`, `refreshed`,
    /// `primary-regenerated`, `edited`, `revoked`, `derived`, `used`, `denied`,
    /// `retired-secret-reused`, `expiring-soon`, `trust-policy-added`,
    /// `trust-policy-edited`, `trust-policy-removed`.
    pub fn code(&self) -> &'static str {
        match self {
            AuditKind::AccountCreated => "account-created",
            AuditKind::PasswordChanged => "password-changed",
            AuditKind::AccountDisabled => "account-disabled",
            AuditKind::AccountEnabled => "account-enabled",
            AuditKind::AccountDeleted => "account-deleted",
            AuditKind::Issued => "issued",
            AuditKind::Refreshed { .. } => "refreshed",
            AuditKind::PrimaryRegenerated => "primary-regenerated",
            AuditKind::Edited => "edited",
            AuditKind::Revoked { .. } => "revoked",
            AuditKind::Derived { .. } => "derived",
            AuditKind::Used { .. } => "used",
            AuditKind::Denied { .. } => "denied",
            AuditKind::RetiredSecretReused => "retired-secret-reused",
            AuditKind::ExpiringSoon { .. } => "expiring-soon",
            AuditKind::TrustPolicyAdded => "trust-policy-added",
            AuditKind::TrustPolicyEdited => "trust-policy-edited",
            AuditKind::TrustPolicyRemoved => "trust-policy-removed",
        }
    }
}

impl RevokeCause {
    /// A short, stable name for the cause: `owner`, `retired-secret-reused`, `idle`,
    /// `leaked`, `account-deleted`.
    pub fn code(&self) -> &'static str {
        match self {
            RevokeCause::Owner => "owner",
            RevokeCause::RetiredSecretReused => "retired-secret-reused",
            RevokeCause::Idle => "idle",
            RevokeCause::Leaked { .. } => "leaked",
            RevokeCause::AccountDeleted => "account-deleted",
        }
    }
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEvent {
    /// What happened.
    pub kind: AuditKind,
    /// The account, where known.
    pub account: Option<AccountId>,
    /// The token, where known.
    pub token: Option<TokenId>,
    /// The client's address, where the server gave it.
    pub client_addr: Option<IpAddr>,
    /// When.
    pub at: OffsetDateTime,
}

/// Receives audit events. Implement it for your log or database, use
/// [`TracingAudit`] (feature `tracing`), a closure, or the default [`NoAudit`].
///
/// `record` is called on the request path: keep it quick (queue the event, do not write
/// a database row inline).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use feedkey::audit::AuditEvent;
/// use feedkey::{Feedkey, MemoryStore, TokenKey};
///
/// let seen = Arc::new(Mutex::new(Vec::<AuditEvent>::new()));
/// let sink = Arc::clone(&seen);
/// let keys = Feedkey::builder(MemoryStore::new(), TokenKey::generate(1)?)
///     .audit(move |event: &AuditEvent| sink.lock().unwrap().push(event.clone()))
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait AuditSink: Send + Sync {
    /// Takes one event.
    fn record(&self, event: &AuditEvent);

    /// Takes one event that is the sink's to keep: what [`Feedkey`](crate::Feedkey)
    /// calls, so that a sink that keeps events (`StoredAudit`) need not copy them on the
    /// request path. Provided: calls [`AuditSink::record`].
    fn record_owned(&self, event: AuditEvent) {
        self.record(&event);
    }

    /// Whether events are wanted at all: `false` lets the request path skip building
    /// them.
    fn enabled(&self) -> bool {
        true
    }

    /// Writes whatever the sink holds back, for a server that is stopping. Provided:
    /// nothing is held back. [`Feedkey::flush`](crate::Feedkey::flush) calls it through
    /// [`AuditSink::flush_async`].
    fn flush(&self) {}

    /// Writes whatever the sink holds back and waits until it is written:
    /// what [`Feedkey::flush`](crate::Feedkey::flush) awaits. A sink that writes from a
    /// task of its own (`StoredAudit`) waits for that task here. Provided: calls
    /// [`AuditSink::flush`].
    ///
    /// # Errors
    /// What the sink could not write; it stays held back for the next try.
    fn flush_async(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.flush();
        Box::pin(std::future::ready(Ok(())))
    }
}

impl<F: Fn(&AuditEvent) + Send + Sync> AuditSink for F {
    fn record(&self, event: &AuditEvent) {
        self(event)
    }
}

/// Discards every event (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAudit;

impl AuditSink for NoAudit {
    fn record(&self, _: &AuditEvent) {}

    fn enabled(&self) -> bool {
        false
    }
}

/// Emits every event as a `tracing` event with target `feedkey::audit`: denials and
/// reuse at `WARN`, the rest at `INFO`.
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingAudit;

#[cfg(feature = "tracing")]
impl AuditSink for TracingAudit {
    fn record(&self, event: &AuditEvent) {
        let account = event.account.as_ref().map(AccountId::as_str);
        let token = event.token.map(|t| t.to_string());
        let client = event.client_addr.map(|a| a.to_string());
        match &event.kind {
            AuditKind::Denied { .. } | AuditKind::RetiredSecretReused => tracing::warn!(
                target: "feedkey::audit",
                event = %event.kind,
                account,
                token,
                client,
                at = %event.at,
            ),
            _ => tracing::info!(
                target: "feedkey::audit",
                event = %event.kind,
                account,
                token,
                client,
                at = %event.at,
            ),
        }
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditKind::AccountCreated => f.write_str("account created"),
            AuditKind::PasswordChanged => f.write_str("password changed"),
            AuditKind::AccountDisabled => f.write_str("account disabled"),
            AuditKind::AccountEnabled => f.write_str("account enabled"),
            AuditKind::AccountDeleted => f.write_str("account deleted"),
            AuditKind::Issued => f.write_str("issued"),
            AuditKind::Refreshed { old_secret_until } => {
                write!(f, "refreshed (old secret works until {old_secret_until})")
            }
            AuditKind::PrimaryRegenerated => f.write_str("primary key regenerated"),
            AuditKind::Edited => f.write_str("edited"),
            AuditKind::Revoked { cause } => write!(f, "revoked ({cause:?})"),
            AuditKind::Derived { parent } => write!(f, "derived from {parent}"),
            AuditKind::Used { action, by } => write!(f, "used: {action:?} by {by:?}"),
            AuditKind::Denied { reason } => write!(f, "denied: {reason}"),
            AuditKind::RetiredSecretReused => f.write_str("retired secret reused"),
            AuditKind::ExpiringSoon { tokens } => {
                write!(f, "{} tokens expiring soon", tokens.len())
            }
            AuditKind::TrustPolicyAdded => f.write_str("trusted-publishing policy added"),
            AuditKind::TrustPolicyEdited => f.write_str("trusted-publishing policy edited"),
            AuditKind::TrustPolicyRemoved => f.write_str("trusted-publishing policy removed"),
        }
    }
}
