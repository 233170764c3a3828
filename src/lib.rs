#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The code in `docs/beyond-the-seeds.md`, compiled and run as doctests.
#[doc = include_str!("../docs/beyond-the-seeds.md")]
#[cfg(doctest)]
pub struct BeyondTheSeedsDocTests;

/// The code in `docs/operations.md`, compiled as doctests.
#[doc = include_str!("../docs/operations.md")]
#[cfg(doctest)]
pub struct OperationsDocTests;

/// `docs/ARCHITECTURE.md`: the layers, and where each rule lives (doctested so that it
/// stays part of the build).
#[doc = include_str!("../docs/ARCHITECTURE.md")]
#[cfg(doctest)]
pub struct ArchitectureDocTests;

mod account;
mod audit;
mod clock;
mod decision;
mod error;
mod policy;
mod record;
mod request;
mod scope;
mod secret;
mod service;
pub mod store;
mod token;

pub use account::{AccountId, MAX_DESCRIPTION_LEN, RecordError};
#[cfg(feature = "tracing")]
pub use audit::TracingAudit;
pub use audit::{AuditEvent, AuditKind, AuditSink, NoAudit, RevokeCause};
pub use clock::{Clock, ManualClock, SystemClock};
pub use decision::{Denial, DenyReason, DenyStatus, Grant, GrantedBy};
pub use error::{Error, Widening};
pub use policy::{
    Expiry, LATEST_EXPIRY, LifetimeError, LifetimeLimit, LifetimePolicy, RotationPolicy,
};
pub use record::{AccountRecord, StoredToken, TokenInfo, TokenKind, TokenRecord, TokenStatus};
pub use request::{
    API_KEY_HEADER, Action, Credential, CredentialError, MAX_HEADER_LEN, Request, Target,
};
pub use scope::{
    FeedName, Feeds, Networks, NotCovered, PackagePattern, PackageSet, Packages, Permission,
    Permissions, Scope, ScopeError,
};
pub use secret::{
    HashError, MAX_RETIRED_SECRETS, PasswordConfig, PasswordError, PasswordHash, RetiredSecret,
    SecretHash, TokenKey,
};
pub use service::{
    ConfigError, Feedkey, FeedkeyBuilder, IssuedToken, NewChild, NewToken, Refresh, TokenEdit,
};
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
