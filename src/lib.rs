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
mod ascii;
pub mod audit;
mod clock;
mod decision;
pub mod error;
#[cfg(feature = "oidc")]
#[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
pub mod oidc;
pub mod policy;
mod record;
pub mod request;
pub mod scope;
mod secret;
mod service;
pub mod store;
mod telemetry;
pub mod token;

// The root: the names a registry uses every day. Everything else lives under the module
// that names its concern: `store` (records, hashes, backends), `policy` (lifetimes,
// rotation, passwords, clocks, configuration errors), `audit` (events), `scope`,
// `request`, `token` and `error` (their detail and error types).
pub use account::AccountId;
/// The string type of [`TokenRecord::description`]: re-exported so a store written
/// outside this crate need not match versions.
pub use compact_str;
pub use decision::{Denial, DenyReason, DenyStatus, Grant, GrantedBy};
pub use error::Error;
pub use policy::Expiry;
pub use record::{TokenInfo, TokenKind, TokenStatus};
pub use request::{Action, Credential, Request, Target};
pub use scope::{Feeds, Networks, PackageSet, Packages, Permission, Permissions, Scope};
pub use secret::{KeyRing, KeyRingError, TokenKey};
pub use service::{
    Feedkey, FeedkeyBuilder, IssuedToken, LeakVerdict, NewChild, NewToken, Refresh, TokenEdit,
};
pub use service::{KeyVersionUse, RevokeSelection};
#[cfg(feature = "oidc")]
#[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
pub use service::{MAX_MINTED_LIFETIME, NewTrustPolicy, TrustPolicy, TrustPolicyEdit};
pub use store::{MemoryStore, TokenStore};
/// The time types the API speaks: re-exported so users need not match versions.
pub use time;
pub use token::{PlainToken, TokenId};

// Kept for code written before 0.2: the names that moved off the root, still reachable
// at their old paths but no longer listed there.
#[cfg(feature = "tracing")]
#[doc(hidden)]
pub use audit::TracingAudit;
#[doc(hidden)]
pub use audit::{AuditEvent, AuditKind, AuditSink, NoAudit, RevokeCause};
#[doc(hidden)]
pub use error::{MAX_DESCRIPTION_LEN, RecordError, Widening};
#[doc(hidden)]
pub use policy::{
    Clock, ConfigError, LATEST_EXPIRY, LifetimeError, LifetimeLimit, LifetimePolicy, ManualClock,
    PasswordConfig, PasswordError, RotationPolicy, SystemClock,
};
#[doc(hidden)]
pub use request::{API_KEY_HEADER, CredentialError, MAX_HEADER_LEN};
#[doc(hidden)]
pub use scope::{FeedName, NotCovered, PackagePattern, ScopeError};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[doc(hidden)]
pub use store::CacheConfig;
#[cfg(feature = "sqlite")]
#[doc(hidden)]
pub use store::SqliteStore;
#[doc(hidden)]
pub use store::{
    AccountRecord, HashError, MAX_RETIRED_SECRETS, PasswordHash, RetiredSecret, SecretHash,
    StoreError, StoredToken, TokenRecord,
};
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[doc(hidden)]
pub use store::{SqlDialect, SqlStore};
#[doc(hidden)]
pub use token::scan::{Candidate, Candidates};
pub use token::{PresentedToken, TokenFormat, TokenFormatError, TokenIdError, TokenParseError};
