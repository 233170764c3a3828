#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod audit;
mod authorize;
mod credential;
mod decision;
mod error;
mod expiry;
mod hash;
mod liveness;
mod manage;
mod network;
mod password;
mod record;
mod rotation;
mod scope;
mod service;
pub mod store;
mod token;

#[cfg(feature = "tracing")]
pub use audit::TracingAudit;
pub use audit::{AuditEvent, AuditKind, AuditSink, NoAudit, RevokeCause};
pub use credential::{API_KEY_HEADER, Credential, CredentialError, MAX_HEADER_LEN, Request};
pub use decision::{Action, Denial, DenyReason, DenyStatus, Grant, GrantedBy, Target};
pub use error::{Error, Widening};
pub use expiry::{
    Clock, Expiry, LATEST_EXPIRY, LifetimeError, LifetimeLimit, LifetimePolicy, ManualClock,
    SystemClock,
};
pub use hash::{HashError, SecretHash, TokenKey};
pub use manage::{IssuedToken, NewChild, NewToken, Refresh, TokenEdit};
pub use network::Networks;
pub use password::{PasswordConfig, PasswordError, PasswordHash};
pub use record::{
    AccountId, AccountRecord, MAX_DESCRIPTION_LEN, MAX_RETIRED_SECRETS, RecordError, RetiredSecret,
    StoredToken, TokenInfo, TokenKind, TokenRecord, TokenStatus,
};
pub use rotation::RotationPolicy;
pub use scope::{
    FeedName, Feeds, NotCovered, PackagePattern, PackageSet, Packages, Permission, Permissions,
    Scope, ScopeError,
};
pub use service::{ConfigError, Feedkey, FeedkeyBuilder};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
)]
pub use store::CacheConfig;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::SqliteStore;
pub use store::{MemoryStore, StoreError, TokenStore};
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
pub use store::{SqlDialect, SqlStore};
/// The time types the API speaks: re-exported so users need not match versions.
pub use time;
pub use token::{
    PlainToken, PresentedToken, TokenFormat, TokenFormatError, TokenId, TokenIdError,
    TokenParseError,
};
