//! Shared set-up for the integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use feedkey::time::{OffsetDateTime, macros::datetime};
use std::sync::{Arc, Mutex};

use feedkey::{
    AccountId, Action, AuditEvent, Denial, Expiry, Feedkey, Grant, IssuedToken, LifetimePolicy,
    ManualClock, MemoryStore, NewToken, PasswordConfig, Request, RotationPolicy, Target, TokenEdit,
    TokenId, TokenInfo, TokenKey, TokenStore,
};

pub const START: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);

/// A `Feedkey` over an in-memory (or given) store, a manual clock at [`START`] and one
/// account, `alice`; with [`WorldBuilder::audit`], every audit event is kept in `events`.
pub struct World<S = MemoryStore> {
    pub keys: Feedkey<S>,
    pub clock: ManualClock,
    pub alice: AccountId,
    /// Alice's primary key, as `create_account` returned it.
    pub primary: IssuedToken,
    pub events: Arc<Mutex<Vec<AuditEvent>>>,
}

pub fn key(version: u32) -> TokenKey {
    TokenKey::new(version, &[version as u8; 32])
}

impl<S: TokenStore> World<S> {
    /// Issues `new` to alice.
    pub async fn issue(&self, new: NewToken) -> IssuedToken {
        self.keys.issue(&self.alice, new).await.unwrap()
    }

    /// Applies `edit` to alice's token `id`.
    pub async fn edit(&self, id: TokenId, edit: TokenEdit) -> TokenInfo {
        self.keys.edit(&self.alice, id, edit).await.unwrap()
    }

    /// Authorizes `action` on `target` and expects it allowed.
    pub async fn allow(&self, request: &Request<'_>, action: Action, target: &Target<'_>) -> Grant {
        self.keys.authorize(request, action, target).await.unwrap()
    }

    /// Authorizes `action` on `target` and expects it denied.
    pub async fn deny(&self, request: &Request<'_>, action: Action, target: &Target<'_>) -> Denial {
        self.keys
            .authorize(request, action, target)
            .await
            .unwrap_err()
    }
}

/// Builds a [`World`]: `World::builder().policy(..).rotation(..).store(..).build().await`.
pub struct WorldBuilder<S> {
    store: S,
    policy: LifetimePolicy,
    rotation: RotationPolicy,
    audit: bool,
}

impl World {
    pub fn builder() -> WorldBuilder<MemoryStore> {
        WorldBuilder {
            store: MemoryStore::new(),
            policy: LifetimePolicy::default(),
            rotation: RotationPolicy::default(),
            audit: false,
        }
    }
}

impl<S: TokenStore> WorldBuilder<S> {
    pub fn policy(mut self, policy: LifetimePolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn rotation(mut self, rotation: RotationPolicy) -> Self {
        self.rotation = rotation;
        self
    }

    /// Records every audit event in [`World::events`].
    pub fn audit(mut self) -> Self {
        self.audit = true;
        self
    }

    pub fn store<T: TokenStore>(self, store: T) -> WorldBuilder<T> {
        WorldBuilder {
            store,
            policy: self.policy,
            rotation: self.rotation,
            audit: self.audit,
        }
    }

    /// Alice's primary token expires in 30 days when the policy requires an expiry, and
    /// never otherwise.
    pub async fn build(self) -> World<S> {
        let clock = ManualClock::new(START);
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut builder = Feedkey::builder(self.store, key(1))
            .clock(clock.clone())
            .lifetime_policy(self.policy)
            .rotation_policy(self.rotation)
            .passwords(PasswordConfig::insecure_fast_for_tests());
        if self.audit {
            let sink = Arc::clone(&events);
            builder = builder.audit(move |e: &AuditEvent| sink.lock().unwrap().push(e.clone()));
        }
        let keys = builder.build().unwrap();
        let alice = AccountId::new("alice").unwrap();
        let expiry = if self.policy.expiry_required(true) {
            Expiry::After(feedkey::time::Duration::days(30))
        } else {
            Expiry::Never
        };
        let primary = keys.create_account(&alice, expiry).await.unwrap();
        World {
            keys,
            clock,
            alice,
            primary,
            events,
        }
    }
}

/// The default world.
pub async fn world() -> World {
    World::builder().build().await
}

/// A request presenting `token` in the API-key header, as `nuget push` does.
pub fn api_key(token: &str) -> Request<'_> {
    Request::from_headers(Some(token.as_bytes()), None)
}

/// A request presenting `user:password` as Basic auth, as `nuget install` does.
pub fn basic(user: &str, password: &str) -> Request<'static> {
    Request::basic(user, password)
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
