//! What a security reviewer checks: denials say why to the log and nothing to the client,
//! secrets never show, keys rotate, concurrent refreshes leave one secret, bad input is a
//! clean denial, and a failing store never allows.
//!
//! Over 600 lines because every check a security reviewer makes sits here together, one
//! short test each, so the list reads as the review it stands for.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{START, World, api_key, basic, key, world};
use feedkey::store::{BackendError, KeyCheckError, KeyFingerprint};
use feedkey::time::OffsetDateTime;
use feedkey::{
    AccountId, AccountRecord, Action, CredentialError, DenyReason, DenyStatus, Error, Expiry,
    Feedkey, IssuedToken, ManualClock, MemoryStore, NewToken, PasswordConfig, Request, Scope,
    StoreError, StoredToken, Target, TokenId, TokenKey, TokenParseError, TokenRecord, TokenStore,
};
use tokio::sync::Barrier;

#[tokio::test]
async fn every_credential_failure_is_one_401_and_every_scope_failure_one_403() {
    let w = world().await;
    let t = w.issue(NewToken::new("r", Scope::read_only())).await;
    let good = t.token.expose_secret().to_owned();
    // Same id, other secret: re-encode with a valid checksum via a second token's body.
    let other = w.issue(NewToken::new("o", Scope::read_only())).await;
    w.keys.revoke(&w.alice, other.token.id()).await.unwrap();

    let target = Target::feed("f");
    let cases: Vec<(Request, DenyReason)> = vec![
        (
            Request::from_headers(None, None),
            DenyReason::MalformedCredential(CredentialError::Missing),
        ),
        (
            api_key("ghp_abcdef"),
            DenyReason::MalformedToken(TokenParseError::WrongPrefix),
        ),
        (
            api_key(&good[..good.len() - 2]),
            DenyReason::MalformedToken(TokenParseError::InvalidLength),
        ),
        (api_key(other.token.expose_secret()), DenyReason::Revoked),
    ];
    for (request, want) in cases {
        let denial = w.deny(&request, Action::Read, &target).await;
        assert_eq!(denial.reason(), &want);
        assert_eq!(denial.status(), DenyStatus::Unauthorized, "{want}");
        assert_eq!(denial.status().as_u16(), 401);
    }
    let denial = w
        .deny(
            &api_key(&good),
            Action::Push,
            &Target::new_package("f", "p"),
        )
        .await;
    assert_eq!(denial.status().as_u16(), 403);
}

#[tokio::test]
async fn an_unknown_id_and_a_wrong_secret_are_told_apart_only_in_the_log() {
    let w = world().await;
    let t = w.issue(NewToken::new("r", Scope::read_only())).await;
    // A token from another deployment: valid shape, unknown id.
    let elsewhere = Feedkey::builder(MemoryStore::new(), key(9))
        .build()
        .unwrap();
    let bob = AccountId::new("bob").unwrap();
    let stranger = elsewhere.create_account(&bob, Expiry::Never).await.unwrap();
    let unknown = w
        .deny(
            &api_key(stranger.token.expose_secret()),
            Action::Read,
            &Target::feed("f"),
        )
        .await;
    assert_eq!(unknown.reason(), &DenyReason::UnknownToken);
    assert_eq!(unknown.token_id(), Some(stranger.token.id()));
    assert_eq!(unknown.account(), None);

    let forged = common::wrong_secret(t.token.expose_secret());
    let wrong = w
        .deny(&api_key(&forged), Action::Read, &Target::feed("f"))
        .await;
    assert_eq!(wrong.reason(), &DenyReason::WrongSecret);
    assert_eq!(wrong.token_id(), Some(t.token.id()));
    // A wrong secret proves nothing about the account: the denial does not name it.
    assert_eq!(wrong.account(), None);
    assert_eq!(unknown.status(), wrong.status());
}

#[tokio::test]
async fn no_secret_shows_in_debug_display_or_serde() {
    let w = world().await;
    w.keys
        .set_password(&w.alice, "hunter2-hunter2")
        .await
        .unwrap();
    let t = w.issue(NewToken::new("r", Scope::read_only())).await;
    let secret = t.token.expose_secret().to_owned();
    let body = &secret[3..];
    let stored = w.keys.store().token(&t.token.id()).await.unwrap().unwrap();
    let account = w.keys.store().account(&w.alice).await.unwrap().unwrap();
    let request = api_key(&secret);
    let basic_request = basic("alice", &secret);
    let denial = w
        .deny(&request, Action::Push, &Target::new_package("f", "p"))
        .await;
    let grant = w
        .allow(&basic_request, Action::Read, &Target::feed("f"))
        .await;
    let rendered = [
        format!("{t:?}"),
        format!("{:?}", t.token),
        format!("{stored:?}"),
        format!("{account:?}"),
        format!("{request:?}"),
        format!("{basic_request:?}"),
        format!("{denial:?} {denial}"),
        format!("{grant:?}"),
        format!("{:?}", w.keys),
        serde_json::to_string(&t.info).unwrap(),
        serde_json::to_string(&w.keys.tokens(&w.alice).await.unwrap()).unwrap(),
    ];
    let hash = stored.record.secret_hash.to_phc();
    let hash_digest = hash.rsplit('$').next().unwrap();
    let password_hash = account.password.as_ref().unwrap().as_phc().to_owned();
    for text in rendered {
        assert!(!text.contains(body), "secret in {text}");
        assert!(!text.contains(hash_digest), "hash in {text}");
        assert!(!text.contains(&password_hash), "password hash in {text}");
        assert!(!text.contains("hunter2"), "password in {text}");
    }
}

/// A server over `store` hashing under key `current` and still verifying `previous`.
fn server(
    store: &Arc<MemoryStore>,
    clock: &ManualClock,
    current: u32,
    previous: &[u32],
) -> Feedkey<Arc<MemoryStore>> {
    Feedkey::builder(Arc::clone(store), key(current))
        .previous_keys(previous.iter().map(|v| key(*v)).collect())
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// Alice's read token `r` and a `forgotten` one, both hashed under key 1.
async fn tokens_under_key_1(
    store: &Arc<MemoryStore>,
    clock: &ManualClock,
) -> (IssuedToken, IssuedToken) {
    let old = server(store, clock, 1, &[]);
    old.check_keys().await.unwrap();
    let alice = AccountId::new("alice").unwrap();
    old.create_account(&alice, Expiry::Never).await.unwrap();
    let t = old
        .issue(&alice, NewToken::new("r", Scope::read_only()))
        .await
        .unwrap();
    let forgotten = old
        .issue(&alice, NewToken::new("forgotten", Scope::read_only()))
        .await
        .unwrap();
    (t, forgotten)
}

#[tokio::test]
async fn a_new_key_alone_is_refused_before_any_token_is_looked_at() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(START);
    tokens_under_key_1(&store, &clock).await;
    // The new key alone cannot verify them: a key is needed, a database copy is not
    // enough. Such a server is refused as a whole, before any token is looked at.
    assert_eq!(
        server(&store, &clock, 2, &[]).check_keys().await,
        Err(KeyCheckError::UnknownKeys {
            version: 2,
            configured: key(2).fingerprint(),
            stored: vec![(1, key(1).fingerprint())],
        })
    );
}

#[tokio::test]
async fn a_new_key_verifies_old_tokens_and_rehashes_them() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(START);
    let with_keys = |current: u32, previous: &[u32]| server(&store, &clock, current, previous);
    // `forgotten` is never used while both keys are configured: it stays under key 1.
    let (t, forgotten) = tokens_under_key_1(&store, &clock).await;
    let request = api_key(t.token.expose_secret());
    let target = Target::feed("f");

    // The ring {2 current, 1 previous} verifies it and rehashes it under key 2...
    let ring = with_keys(2, &[1]);
    ring.check_keys().await.unwrap();
    ring.authorize(&request, Action::Read, &target)
        .await
        .unwrap();
    let stored = store.token(&t.token.id()).await.unwrap().unwrap();
    assert_eq!(stored.record.secret_hash.key_version(), 2);
    // ... so that key 1 can be retired: the store now knows key 2.
    let retired = with_keys(2, &[]);
    retired.check_keys().await.unwrap();
    retired
        .authorize(&request, Action::Read, &target)
        .await
        .unwrap();
    // A token still hashed under the retired key is refused on its own, as hashed under a
    // key this server does not have.
    let denial = retired
        .authorize(
            &api_key(forgotten.token.expose_secret()),
            Action::Read,
            &target,
        )
        .await
        .unwrap_err();
    assert_eq!(denial.reason(), &DenyReason::UnknownKey);
    assert_eq!(denial.status(), DenyStatus::Unauthorized);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_leave_exactly_one_valid_secret() {
    let w = Arc::new(world().await);
    for _ in 0..50 {
        let t = w.issue(NewToken::new("ci", Scope::read_only())).await;
        let id = t.token.id();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let w = Arc::clone(&w);
                tokio::spawn(async move { w.keys.refresh(&w.alice, id).await })
            })
            .collect();
        let mut secrets = vec![t.token.expose_secret().to_owned()];
        for task in tasks {
            match task.await.unwrap() {
                Ok(issued) => secrets.push(issued.token.expose_secret().to_owned()),
                Err(Error::Store(StoreError::Conflict)) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        let mut valid = 0;
        for secret in &secrets {
            if w.keys
                .authorize(&api_key(secret), Action::Read, &Target::feed("f"))
                .await
                .is_ok()
            {
                valid += 1;
            }
        }
        assert_eq!(valid, 1, "{} secrets handed out", secrets.len());
    }
}

#[tokio::test]
async fn hostile_headers_are_clean_denials() {
    let w = world().await;
    let long = "a".repeat(1 << 20);
    let underscores = format!("Bearer fk_{}", "_".repeat(70));
    let accents = format!("Bearer fk_{}", "é".repeat(35));
    let bad_basic = common::basic_header("alice", "\u{0}");
    let cases: Vec<Request> = vec![
        Request::from_headers(Some(long.as_bytes()), None),
        Request::from_headers(Some(b"\xff\xfe\xfd"), None),
        Request::from_headers(Some(b"fk_\0\0\0"), None),
        Request::from_headers(None, Some(b"Basic \xff")),
        Request::from_headers(None, Some(b"Basic ====")),
        Request::from_headers(None, Some(b"Bearer fk_")),
        Request::from_headers(None, Some(underscores.as_bytes())),
        Request::from_headers(None, Some(bad_basic.as_bytes())),
        Request::from_headers(None, Some(accents.as_bytes())),
        basic("", "x"),
        basic(&"a".repeat(10_000), "pw"),
        basic("alice\u{1}", "pw"),
    ];
    for request in cases {
        for action in [Action::Read, Action::Push, Action::Unlist] {
            let denial = w.deny(&request, action, &Target::package("f", "")).await;
            assert_ne!(denial.status(), DenyStatus::Unavailable);
        }
    }
}

/// A store whose token reads fail: authorize must deny with 503, never allow.
struct BrokenStore(MemoryStore);

#[derive(Debug, thiserror::Error)]
#[error("connection reset")]
struct Reset;

impl TokenStore for BrokenStore {
    async fn insert_account(&self, a: AccountRecord, p: TokenRecord) -> Result<(), StoreError> {
        self.0.insert_account(a, p).await
    }
    async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        self.0.account(id).await
    }
    async fn update_account(&self, a: AccountRecord, rev: u64) -> Result<(), StoreError> {
        self.0.update_account(a, rev).await
    }
    async fn insert_token(&self, r: TokenRecord) -> Result<(), StoreError> {
        self.0.insert_token(r).await
    }
    async fn token(&self, _: &TokenId) -> Result<Option<StoredToken>, StoreError> {
        Err(StoreError::Backend(BackendError::new(Reset)))
    }
    async fn account_tokens(&self, a: &AccountId) -> Result<Vec<StoredToken>, StoreError> {
        self.0.account_tokens(a).await
    }
    async fn update_token(&self, r: TokenRecord, rev: u64) -> Result<(), StoreError> {
        self.0.update_token(r, rev).await
    }
    async fn touch_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.0.touch_token(id, at).await
    }
    async fn tokens_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<StoredToken>, StoreError> {
        self.0.tokens_expiring(from, until).await
    }
    async fn tokens_unused_since(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<StoredToken>, StoreError> {
        self.0.tokens_unused_since(before).await
    }
    async fn purge_revoked(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.0.purge_revoked(before).await
    }

    async fn key_fingerprints(&self) -> Result<Vec<(u32, KeyFingerprint)>, StoreError> {
        self.0.key_fingerprints().await
    }
    async fn remember_key(&self, v: u32, f: KeyFingerprint) -> Result<KeyFingerprint, StoreError> {
        self.0.remember_key(v, f).await
    }
}

#[tokio::test]
async fn a_failing_store_denies_with_503_and_never_allows() {
    let World { keys, primary, .. } = World::builder()
        .store(BrokenStore(MemoryStore::new()))
        .build()
        .await;
    let denial = keys
        .authorize(
            &api_key(primary.token.expose_secret()),
            Action::Read,
            &Target::feed("f"),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        denial.reason(),
        DenyReason::Store(StoreError::Backend(_))
    ));
    assert_eq!(denial.status(), DenyStatus::Unavailable);
    assert!(denial.to_string().contains("connection reset"));
}

/// Alice's world with 30-day idle expiry and a password.
async fn idle_world() -> World {
    use feedkey::LifetimePolicy;
    use feedkey::time::Duration;
    let w = World::builder()
        .policy(LifetimePolicy::default().with_idle_expiry(Duration::days(30)))
        .build()
        .await;
    w.keys
        .set_password(&w.alice, "hunter2-hunter2")
        .await
        .unwrap();
    w
}

/// Checks each denial's reason and status, and how many are 401 and 403.
fn assert_denials(denials: &[(DenyReason, DenyStatus, feedkey::Denial)], counts: (usize, usize)) {
    for (want, status, denial) in denials {
        assert_eq!(denial.reason(), want);
        assert_eq!(denial.status(), *status, "{want}");
    }
    let count = |code: u16| {
        denials
            .iter()
            .filter(|(_, _, d)| d.status().as_u16() == code)
            .count()
    };
    assert_eq!((count(401), count(403)), counts);
}

#[tokio::test]
async fn every_kind_of_bad_credential_is_401() {
    use feedkey::time::Duration;

    let w = idle_world().await;
    let reader = w.issue(NewToken::new("reader", Scope::read_only())).await;
    let revoked = w.issue(NewToken::new("revoked", Scope::read_only())).await;
    w.keys.revoke(&w.alice, revoked.token.id()).await.unwrap();
    let short = w
        .issue(NewToken::new("short", Scope::read_only()).expires(Expiry::After(Duration::days(1))))
        .await;
    let forgotten = w
        .issue(NewToken::new("forgotten", Scope::read_only()))
        .await;
    let elsewhere = Feedkey::builder(MemoryStore::new(), key(9))
        .build()
        .unwrap();
    let stranger = elsewhere
        .create_account(&AccountId::new("bob").unwrap(), Expiry::Never)
        .await
        .unwrap();
    let read = Target::package("a", "Fabrikam.Web");
    let wrong = common::wrong_secret(reader.token.expose_secret());
    let unauthorized = |reason, request| (reason, DenyStatus::Unauthorized, request);
    let cases: Vec<(DenyReason, DenyStatus, Request)> = vec![
        unauthorized(DenyReason::WrongSecret, api_key(&wrong)),
        unauthorized(
            DenyReason::UnknownToken,
            api_key(stranger.token.expose_secret()),
        ),
        unauthorized(DenyReason::Revoked, api_key(revoked.token.expose_secret())),
        unauthorized(
            DenyReason::WrongPassword,
            basic("alice", "not-the-password"),
        ),
        unauthorized(
            DenyReason::UnknownAccount,
            basic("nobody", "hunter2-hunter2"),
        ),
    ];
    let mut denials = Vec::new();
    for (want, status, request) in cases {
        denials.push((want, status, w.deny(&request, Action::Read, &read).await));
    }
    // Two days on: the one-day token has expired.
    w.clock.advance(Duration::days(2));
    let denial = w
        .deny(&api_key(short.token.expose_secret()), Action::Read, &read)
        .await;
    denials.push((DenyReason::Expired, DenyStatus::Unauthorized, denial));
    // Thirty-one days on: the never-used token is retired for idleness.
    w.clock.advance(Duration::days(29));
    let request = api_key(forgotten.token.expose_secret());
    let denial = w.deny(&request, Action::Read, &read).await;
    denials.push((DenyReason::Idle, DenyStatus::Unauthorized, denial));
    assert_denials(&denials, (7, 0));
}

/// Read-only tokens limited to feed "a", to packages `Contoso.*` and to 10.0.0.0/8.
async fn limited_tokens(w: &World) -> [feedkey::IssuedToken; 3] {
    use feedkey::{Feeds, Networks, Packages, Permissions};
    let only = |feeds, packages| Scope::new(Permissions::READ_ONLY, feeds, packages).unwrap();
    let feed_a = only(Feeds::only(["a"]).unwrap(), Packages::Any);
    let contoso = only(Feeds::Any, Packages::only(["Contoso.*"]).unwrap());
    let office = Scope::read_only().within(Networks::only(["10.0.0.0/8"]).unwrap());
    [
        w.issue(NewToken::new("feed a", feed_a)).await,
        w.issue(NewToken::new("contoso", contoso)).await,
        w.issue(NewToken::new("office", office)).await,
    ]
}

#[tokio::test]
async fn every_kind_of_uncovered_request_is_403() {
    let w = idle_world().await;
    let reader = w.issue(NewToken::new("reader", Scope::read_only())).await;
    let [feed_a, contoso, office] = limited_tokens(&w).await;
    let read = Target::package("a", "Fabrikam.Web");
    let office_from =
        |addr: &str| api_key(office.token.expose_secret()).with_client_addr(addr.parse().unwrap());
    let forbidden = |reason, request, target| (reason, request, target);
    let cases: Vec<(DenyReason, Request, Target)> = vec![
        // The feed-limited token is asked about another feed; everything else reads "a".
        forbidden(
            DenyReason::FeedOutOfScope,
            api_key(feed_a.token.expose_secret()),
            Target::package("b", "Fabrikam.Web"),
        ),
        forbidden(
            DenyReason::PackageOutOfScope,
            api_key(contoso.token.expose_secret()),
            read,
        ),
        forbidden(
            DenyReason::AddressNotAllowed,
            office_from("192.0.2.1"),
            read,
        ),
    ];
    let mut denials = Vec::new();
    for (want, request, target) in cases {
        let denial = w.deny(&request, Action::Read, &target).await;
        denials.push((want, DenyStatus::Forbidden, denial));
    }
    // A read-only token pushing.
    let denial = w
        .deny(&api_key(reader.token.expose_secret()), Action::Push, &read)
        .await;
    denials.push((
        DenyReason::ActionOutOfScope(feedkey::Permission::PushVersion),
        DenyStatus::Forbidden,
        denial,
    ));
    // Each of these tokens still works where it is meant to, so the 403s above are about
    // scope alone.
    for (token, target) in [
        (&reader, read),
        (&feed_a, read),
        (&contoso, Target::package("b", "Contoso.Core")),
    ] {
        w.allow(&api_key(token.token.expose_secret()), Action::Read, &target)
            .await;
    }
    w.allow(&office_from("10.1.2.3"), Action::Read, &read).await;
    assert_denials(&denials, (0, 4));
}

#[tokio::test]
async fn a_refused_edit_writes_nothing_not_even_its_allowed_parts() {
    use feedkey::{Feeds, Packages, Permissions, TokenEdit, Widening};

    let w = world().await;
    let pusher = w
        .issue(NewToken::new(
            "CI push",
            Scope::new(Permissions::WRITE_ONLY, Feeds::Any, Packages::Any).unwrap(),
        ))
        .await;
    let id = pusher.token.id();
    let before = w.keys.store().token(&id).await.unwrap().unwrap();

    let err = w
        .keys
        .edit(
            &w.alice,
            id,
            TokenEdit::new()
                .description("renamed")
                .packages(Packages::only(["Contoso.*"]).unwrap())
                .permissions(Permissions::FULL),
        )
        .await
        .unwrap_err();
    assert_eq!(err, Error::Widens(Widening::Permissions));

    let info = w.keys.token(&w.alice, id).await.unwrap();
    assert_eq!(info.description, "CI push");
    assert_eq!(info.scope.permissions(), Permissions::WRITE_ONLY);
    assert_eq!(info.scope.packages(), &Packages::Any);
    let after = w.keys.store().token(&id).await.unwrap().unwrap();
    assert_eq!(after.record.revision, before.record.revision);
    // Still what it was: a push token, not a reader.
    let request = api_key(pusher.token.expose_secret());
    w.allow(
        &request,
        Action::Push,
        &Target::package("f", "Fabrikam.Web"),
    )
    .await;
    let denial = w.deny(&request, Action::Read, &Target::feed("f")).await;
    assert_eq!(
        denial.reason(),
        &DenyReason::ActionOutOfScope(feedkey::Permission::Read)
    );

    // The description alone is a valid edit: the refusal was about the widening.
    let info = w.edit(id, TokenEdit::new().description("renamed")).await;
    assert_eq!(info.description, "renamed");
}

/// The 32 secret bytes of a token (bytes 16..48 of its decoded body).
fn secret_bytes(token: &str) -> [u8; 32] {
    use base64::Engine as _;
    let (_, body) = token.split_once('_').unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .unwrap();
    raw[16..48].try_into().unwrap()
}

/// Whether `text` shows `secret` as lowercase or uppercase hex, or as Rust prints a byte
/// array (`{:?}` or `{:#?}`, of an array, a slice or a `Vec`).
fn shows_secret(text: &str, secret: &[u8; 32]) -> bool {
    let lower: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let upper: String = secret.iter().map(|b| format!("{b:02X}")).collect();
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let array = squeeze(&format!("{secret:?}"));
    let inner = array
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let flat = squeeze(text);
    text.contains(&lower)
        || text.contains(&upper)
        || flat.to_lowercase().contains(&lower)
        || flat.contains(&inner)
}

#[tokio::test]
async fn no_debug_output_shows_the_secret_bytes_in_hex_or_as_an_array() {
    let w = world().await;
    let t = w.issue(NewToken::new("r", Scope::read_only())).await;
    let text = t.token.expose_secret().to_owned();
    let secret = secret_bytes(&text);

    // The detector itself finds each form.
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    for leak in [
        format!("x{hex}y"),
        hex.to_uppercase(),
        format!("S {{ s: {secret:?} }}"),
        format!("{:#?}", secret.to_vec()),
        format!("{:?}", &secret[..]),
    ] {
        assert!(shows_secret(&leak, &secret), "missed {leak}");
    }
    assert!(!shows_secret(&format!("{:?}", [0u8; 32]), &secret));

    let stored = w.keys.store().token(&t.token.id()).await.unwrap().unwrap();
    let request = api_key(&text);
    let bearer_header = format!("Bearer {text}");
    let bearer = Request::from_headers(None, Some(bearer_header.as_bytes()));
    let as_password = basic("alice", &text);
    let grant = w.allow(&request, Action::Read, &Target::feed("f")).await;
    let out_of_scope = w
        .deny(&as_password, Action::Push, &Target::new_package("f", "p"))
        .await;
    let forged = common::wrong_secret(&text);
    let wrong = w
        .deny(&api_key(&forged), Action::Read, &Target::feed("f"))
        .await;
    let rendered = [
        format!("{t:?}"),
        format!("{t:#?}"),
        format!("{:?}", t.token),
        format!("{stored:?}"),
        format!("{stored:#?}"),
        format!("{request:?}"),
        format!("{bearer:?}"),
        format!("{as_password:#?}"),
        format!("{:?}", request.credential()),
        format!("{grant:?}"),
        format!("{grant:#?}"),
        format!("{out_of_scope:?} {out_of_scope}"),
        format!("{wrong:?} {wrong}"),
    ];
    for text in rendered {
        assert!(!shows_secret(&text, &secret), "secret bytes in {text}");
    }
}

/// A [`MemoryStore`] with a database's latency: every token read and write lets other
/// tasks run first (a varying number of turns), so that a read-modify-write (a rehash, a
/// refresh, a revoke) really interleaves with the others, as it does over a network.
#[derive(Default)]
struct SlowStore {
    inner: MemoryStore,
    turns: std::sync::atomic::AtomicUsize,
    /// How many of the next reads of the key ledger fail.
    failing_key_reads: std::sync::atomic::AtomicUsize,
}

impl SlowStore {
    async fn pause(&self) {
        for _ in 0..self.turns.fetch_add(1, Ordering::Relaxed) % 3 {
            tokio::task::yield_now().await;
        }
    }
}

impl TokenStore for SlowStore {
    async fn insert_account(&self, a: AccountRecord, p: TokenRecord) -> Result<(), StoreError> {
        self.inner.insert_account(a, p).await
    }
    async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        self.inner.account(id).await
    }
    async fn update_account(&self, a: AccountRecord, rev: u64) -> Result<(), StoreError> {
        self.inner.update_account(a, rev).await
    }
    async fn insert_token(&self, r: TokenRecord) -> Result<(), StoreError> {
        self.inner.insert_token(r).await
    }
    async fn token(&self, id: &TokenId) -> Result<Option<StoredToken>, StoreError> {
        let read = self.inner.token(id).await;
        self.pause().await;
        read
    }
    async fn account_tokens(&self, a: &AccountId) -> Result<Vec<StoredToken>, StoreError> {
        self.inner.account_tokens(a).await
    }
    async fn update_token(&self, r: TokenRecord, rev: u64) -> Result<(), StoreError> {
        self.pause().await;
        self.inner.update_token(r, rev).await
    }
    async fn touch_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.inner.touch_token(id, at).await
    }
    async fn tokens_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<StoredToken>, StoreError> {
        self.inner.tokens_expiring(from, until).await
    }
    async fn tokens_unused_since(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<StoredToken>, StoreError> {
        self.inner.tokens_unused_since(before).await
    }
    async fn purge_revoked(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.inner.purge_revoked(before).await
    }

    async fn key_fingerprints(&self) -> Result<Vec<(u32, KeyFingerprint)>, StoreError> {
        let failing = &self.failing_key_reads;
        if failing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Backend(BackendError::new(Reset)));
        }
        self.inner.key_fingerprints().await
    }
    async fn remember_key(&self, v: u32, f: KeyFingerprint) -> Result<KeyFingerprint, StoreError> {
        self.inner.remember_key(v, f).await
    }
}

type Shared = Arc<Feedkey<Arc<SlowStore>>>;

/// One store, two deployments mid key change: `old` hashes with key 1 only, `new` hashes
/// with key 2 and still verifies key 1 (so it rehashes tokens it verifies under key 1).
async fn key_change() -> (Shared, Shared, AccountId) {
    let store = Arc::new(SlowStore::default());
    let clock = ManualClock::new(START);
    let old = Feedkey::builder(Arc::clone(&store), key(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let new = Feedkey::builder(Arc::clone(&store), key(2))
        .previous_keys(vec![key(1)])
        .clock(clock)
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    old.create_account(&alice, Expiry::Never).await.unwrap();
    (Arc::new(old), Arc::new(new), alice)
}

#[tokio::test]
async fn a_store_failure_during_the_key_check_is_not_kept_and_a_refusal_is() {
    let store = Arc::new(SlowStore::default());
    let keys = Feedkey::builder(Arc::clone(&store), key(1))
        .build()
        .unwrap();
    store.failing_key_reads.store(1, Ordering::SeqCst);
    assert!(matches!(
        keys.check_keys().await,
        Err(KeyCheckError::Store(StoreError::Backend(_)))
    ));
    // Asked again: the store answers this time, and remembers key 1.
    keys.check_keys().await.unwrap();
    assert_eq!(
        store.key_fingerprints().await.unwrap(),
        vec![(1, key(1).fingerprint())]
    );
    // A definitive answer is kept: a server refused once stays refused, even if the
    // store could no longer be asked.
    let lost = Feedkey::builder(Arc::clone(&store), TokenKey::new(1, &[0x55; 32]))
        .build()
        .unwrap();
    let refused = lost.check_keys().await.unwrap_err();
    assert!(matches!(
        refused,
        KeyCheckError::Mismatch { version: 1, .. }
    ));
    store.failing_key_reads.store(1, Ordering::SeqCst);
    assert_eq!(lost.check_keys().await, Err(refused));
    keys.check_keys().await.unwrap();
    assert_eq!(store.failing_key_reads.load(Ordering::SeqCst), 1);
}

/// One store, alice's world on key 1 (with a password), and a server whose key 1 the
/// store has never seen, with the refusal it gets.
struct LostKey {
    store: Arc<MemoryStore>,
    good: World<Arc<MemoryStore>>,
    lost: Feedkey<Arc<MemoryStore>>,
    expected: KeyCheckError,
}

async fn lost_key() -> LostKey {
    let store = Arc::new(MemoryStore::new());
    let good = World::builder().store(Arc::clone(&store)).build().await;
    good.keys
        .set_password(&good.alice, "hunter2-hunter2")
        .await
        .unwrap();
    let lost_key = TokenKey::new(1, &[0x55; 32]);
    let lost = Feedkey::builder(Arc::clone(&store), lost_key.clone())
        .passwords(PasswordConfig::insecure_fast_for_tests())
        .build()
        .unwrap();
    let expected = KeyCheckError::Mismatch {
        version: 1,
        configured: lost_key.fingerprint(),
        stored: key(1).fingerprint(),
    };
    LostKey {
        store,
        good,
        lost,
        expected,
    }
}

/// A server whose key the store has never seen refuses every request with 503.
#[tokio::test]
async fn a_server_with_the_wrong_key_refuses_every_request_with_503() {
    let LostKey {
        good,
        lost,
        expected,
        ..
    } = lost_key().await;
    let request = api_key(good.primary.token.expose_secret());
    for denial in [
        lost.authorize(&request, Action::Read, &Target::feed("f"))
            .await
            .unwrap_err(),
        lost.authenticate(&request).await.unwrap_err(),
        lost.authorize(
            &basic("alice", "hunter2-hunter2"),
            Action::Read,
            &Target::feed("f"),
        )
        .await
        .unwrap_err(),
        lost.sign_in("alice", "hunter2-hunter2").await.unwrap_err(),
    ] {
        assert_eq!(
            denial.reason(),
            &DenyReason::KeyMismatch(expected.clone()),
            "{denial}"
        );
        assert_eq!(denial.status(), DenyStatus::Unavailable);
    }
}

/// ... and every management call, and writes nothing.
#[tokio::test]
async fn a_server_with_the_wrong_key_refuses_every_management_call_and_writes_nothing() {
    let LostKey {
        store,
        good,
        lost,
        expected,
    } = lost_key().await;
    let alice = &good.alice;
    let bob = AccountId::new("bob").unwrap();
    let refused = Error::KeyMismatch(expected);
    assert_eq!(
        lost.create_account(&bob, Expiry::Never).await.unwrap_err(),
        refused
    );
    assert_eq!(lost.tokens(alice).await.unwrap_err(), refused);
    assert_eq!(
        lost.issue(alice, NewToken::new("x", Scope::read_only()))
            .await
            .unwrap_err(),
        refused
    );
    assert_eq!(
        lost.regenerate_primary(alice, Expiry::Never)
            .await
            .unwrap_err(),
        refused
    );
    // Nothing was written: no bob, alice's tokens and key as they were.
    assert!(good.keys.tokens(&bob).await.unwrap().is_empty());
    assert_eq!(good.keys.tokens(alice).await.unwrap().len(), 1);
    let request = api_key(good.primary.token.expose_secret());
    good.allow(&request, Action::Read, &Target::feed("f")).await;
    assert_eq!(
        store.key_fingerprints().await.unwrap(),
        vec![(1, key(1).fingerprint())]
    );
}

/// How many tasks use a token at once in the race tests.
const USERS: usize = 6;

/// One user of `secret` on the `new` deployment while the token is refreshed: it must
/// only ever be refused as reused or wrong, and returns how often it worked after
/// `refreshed` was set.
async fn use_during_refresh(
    new: Shared,
    secret: Arc<str>,
    refreshed: Arc<AtomicBool>,
    start: Arc<Barrier>,
    round: usize,
) -> u32 {
    start.wait().await;
    head_start(round.is_multiple_of(2), round).await;
    let mut late_successes = 0;
    for _ in 0..20 {
        let after_refresh = refreshed.load(Ordering::SeqCst);
        let result = new
            .authorize(&api_key(&secret), Action::Read, &Target::feed("f"))
            .await;
        match result {
            Ok(_) if after_refresh => late_successes += 1,
            Ok(_) => {}
            Err(d) => assert!(
                matches!(
                    d.reason(),
                    DenyReason::RetiredSecretReused | DenyReason::WrongSecret
                ),
                "{d}"
            ),
        }
        tokio::task::yield_now().await;
    }
    late_successes
}

/// One user of `secret` on the `new` deployment until `stop`, while the token is revoked:
/// it must never work once `revoked` is set, and only ever be refused as revoked.
async fn use_during_revoke(
    new: Shared,
    secret: Arc<str>,
    (revoked, stop): (Arc<AtomicBool>, Arc<AtomicBool>),
    start: Arc<Barrier>,
    round: usize,
) -> u32 {
    start.wait().await;
    head_start(round.is_multiple_of(2), round).await;
    let mut uses = 0;
    while !stop.load(Ordering::SeqCst) {
        let after_revoke = revoked.load(Ordering::SeqCst);
        let result = new
            .authorize(&api_key(&secret), Action::Read, &Target::feed("f"))
            .await;
        match result {
            Ok(_) => {
                assert!(!after_revoke, "used after the revoke returned");
                uses += 1;
            }
            Err(d) => assert_eq!(d.reason(), &DenyReason::Revoked),
        }
        tokio::task::yield_now().await;
    }
    uses
}

/// The management side of a race: waits for the users, maybe lets them go first, makes
/// `call` and sets `done` when it returns.
async fn the_other_side<T>(
    start: Arc<Barrier>,
    round: usize,
    done: Arc<AtomicBool>,
    call: impl Future<Output = T>,
) -> T {
    start.wait().await;
    head_start(round % 2 == 1, round).await;
    let result = call.await;
    done.store(true, Ordering::SeqCst);
    result
}

/// What `keys` answers a read of feed `f` with `secret`: a denial, or the test fails.
async fn read_of(keys: &Feedkey<Arc<SlowStore>>, secret: &str) -> feedkey::Denial {
    keys.authorize(&api_key(secret), Action::Read, &Target::feed("f"))
        .await
        .unwrap_err()
}

/// Lets the other side of a race go first, by a few scheduler turns, when `waits`.
async fn head_start(waits: bool, round: usize) {
    if waits {
        for _ in 0..round % 4 {
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rehash_racing_a_refresh_never_brings_the_old_secret_back() {
    let (old, new, alice) = key_change().await;
    let target = Target::feed("f");
    let refused = |d: &feedkey::Denial| {
        matches!(
            d.reason(),
            DenyReason::RetiredSecretReused | DenyReason::WrongSecret
        )
    };
    for round in 0..50 {
        let t = old
            .issue(&alice, NewToken::new("ci", Scope::read_only()))
            .await
            .unwrap();
        let id = t.token.id();
        let secret: Arc<str> = Arc::from(t.token.expose_secret());
        let refreshed = Arc::new(AtomicBool::new(false));
        // Everyone starts together; who gets a head start changes from round to round.
        let start = Arc::new(Barrier::new(USERS + 1));
        let users: Vec<_> = (0..USERS)
            .map(|_| {
                let (new, secret) = (Arc::clone(&new), Arc::clone(&secret));
                let (refreshed, start) = (Arc::clone(&refreshed), Arc::clone(&start));
                tokio::spawn(use_during_refresh(new, secret, refreshed, start, round))
            })
            .collect();
        let fresh = {
            let (old, alice) = (Arc::clone(&old), alice.clone());
            let refresh = async move { old.refresh(&alice, id).await };
            let done = Arc::clone(&refreshed);
            tokio::spawn(the_other_side(start, round, done, refresh))
                .await
                .unwrap()
                .unwrap()
        };
        // From the moment the refresh returns, the old secret is dead everywhere.
        let denial = read_of(&new, &secret).await;
        assert!(refused(&denial), "round {round}: {denial}");
        for user in users {
            assert_eq!(
                user.await.unwrap(),
                0,
                "round {round}: the old secret worked after the refresh returned"
            );
        }
        for keys in [&old, &new] {
            let denial = read_of(keys, &secret).await;
            assert!(refused(&denial), "round {round}: {denial}");
        }
        new.authorize(&api_key(fresh.token.expose_secret()), Action::Read, &target)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoke_succeeds_while_the_token_is_in_use_and_being_rehashed() {
    let (old, new, alice) = key_change().await;
    for round in 0..50 {
        let t = old
            .issue(&alice, NewToken::new("ci", Scope::read_only()))
            .await
            .unwrap();
        let id = t.token.id();
        let secret: Arc<str> = Arc::from(t.token.expose_secret());
        let revoked = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(USERS + 1));
        let users: Vec<_> = (0..USERS)
            .map(|_| {
                let (new, secret) = (Arc::clone(&new), Arc::clone(&secret));
                let flags = (Arc::clone(&revoked), Arc::clone(&stop));
                let start = Arc::clone(&start);
                tokio::spawn(use_during_revoke(new, secret, flags, start, round))
            })
            .collect();
        let result = {
            let (old, alice) = (Arc::clone(&old), alice.clone());
            let revoke = async move { old.revoke(&alice, id).await };
            let done = Arc::clone(&revoked);
            tokio::spawn(the_other_side(start, round, done, revoke))
                .await
                .unwrap()
        };
        assert_eq!(result, Ok(()), "round {round}");
        let denial = read_of(&new, &secret).await;
        assert_eq!(denial.reason(), &DenyReason::Revoked, "round {round}");
        stop.store(true, Ordering::SeqCst);
        for user in users {
            user.await.unwrap();
        }
        let denial = read_of(&new, &secret).await;
        assert_eq!(denial.reason(), &DenyReason::Revoked, "round {round}");
        // The old deployment refuses it too: as revoked, or, once rehashed under key 2,
        // as hashed under a key it does not have.
        let denial = read_of(&old, &secret).await;
        assert!(
            matches!(
                denial.reason(),
                DenyReason::Revoked | DenyReason::UnknownKey
            ),
            "round {round}: {denial}"
        );
        assert_eq!(denial.status(), DenyStatus::Unauthorized);
        let stored = old.store().token(&id).await.unwrap().unwrap();
        assert!(stored.record.revoked_at.is_some(), "round {round}");
    }
}

/// On the system clock, a request is never judged at an earlier time than a write it
/// follows: a secret replaced by a refresh without overlap fails on the very next
/// request, and a revoked token too, however soon after (a coarse clock, which lags by a
/// tick, would let the old secret through for that tick).
#[tokio::test]
async fn on_the_system_clock_a_refresh_and_a_revoke_take_effect_on_the_next_request() {
    let keys = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[3; 32]))
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    let target = Target::package("main", "Acme.Util");
    for _ in 0..200 {
        let issued = keys
            .issue(&alice, NewToken::new("ci", Scope::read_only()))
            .await
            .unwrap();
        let old = issued.token.expose_secret().to_owned();
        let request = Request::from_headers(Some(old.as_bytes()), None);
        assert!(
            keys.authorize(&request, Action::Read, &target)
                .await
                .is_ok()
        );
        let fresh = keys.refresh(&alice, issued.token.id()).await.unwrap();
        let denial = keys
            .authorize(&request, Action::Read, &target)
            .await
            .unwrap_err();
        // Past its window at once: a use of it is a reuse.
        assert_eq!(denial.reason(), &DenyReason::RetiredSecretReused);
        let request = Request::from_headers(Some(fresh.token.expose_secret().as_bytes()), None);
        assert!(
            keys.authorize(&request, Action::Read, &target)
                .await
                .is_ok()
        );
        keys.revoke(&alice, fresh.token.id()).await.unwrap();
        let denial = keys
            .authorize(&request, Action::Read, &target)
            .await
            .unwrap_err();
        assert_eq!(denial.reason(), &DenyReason::Revoked);
    }
}
