//! Shared set-up for the integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use feedkey::time::{OffsetDateTime, macros::datetime};
use feedkey::{
    AccountId, Expiry, Feedkey, LifetimePolicy, ManualClock, MemoryStore, PasswordConfig, Request,
    TokenKey,
};

pub const START: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);

pub struct World {
    pub keys: Feedkey<MemoryStore>,
    pub clock: ManualClock,
    pub alice: AccountId,
}

pub fn key(version: u32) -> TokenKey {
    TokenKey::new(version, &[version as u8; 32])
}

pub async fn world_with(policy: LifetimePolicy) -> World {
    let clock = ManualClock::new(START);
    let keys = Feedkey::builder(MemoryStore::new(), key(1))
        .clock(clock.clone())
        .lifetime_policy(policy)
        .passwords(PasswordConfig::insecure_fast_for_tests())
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    let expiry = if policy.expiry_required(true) {
        Expiry::After(feedkey::time::Duration::days(30))
    } else {
        Expiry::Never
    };
    keys.create_account(&alice, expiry).await.unwrap();
    World { keys, clock, alice }
}

pub async fn world() -> World {
    world_with(LifetimePolicy::default()).await
}

/// A request presenting `token` in the API-key header, as `nuget push` does.
pub fn api_key(token: &str) -> Request<'_> {
    Request::from_headers(Some(token.as_bytes()), None)
}

/// A request presenting `user:password` as Basic auth, as `nuget install` does.
pub fn basic(user: &str, password: &str) -> Request<'static> {
    Request::with_basic(user, password)
}

/// The `Authorization: Basic` header value for `user:password`.
pub fn basic_header(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The same token id with another secret: one secret byte changed, checksum fixed, so it
/// parses and looks up like the real one.
pub fn wrong_secret(token: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (prefix, body) = token.split_once('_').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(body).unwrap();
    raw[20] ^= 0x01;
    let crc = crc32fast::hash(&raw[..48]).to_be_bytes();
    raw[48..].copy_from_slice(&crc);
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(raw))
}
