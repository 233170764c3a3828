//! `Feedkey::authorize` against a fixed world of tokens, judged by the reference model
//! `tests/model.rs` also uses (`tests/reference/`, loaded below with `#[path]`):
//!
//! - every allow is justified: the credential is the account password of the account
//!   granted, for a read of a well-formed target; or it is exactly the text of a token of
//!   the account granted (a current secret, or a retired one inside its overlap window)
//!   that the model finds alive (not revoked, expired or idle; a derived token's parent
//!   alive and not renewed since), and every scope that token must pass (its own, and a
//!   derived token's parent's current one) covers the target and the client address;
//! - every token presented intact, and the account password, gets exactly the model's
//!   answer: allowed, 401 (a dead token, a wrong password) or 403 (out of scope, a
//!   malformed target, a write with the password).
//!
//! The world is built once per process; each input picks a credential (a real token, a
//! mutated one, or arbitrary header bytes as API key, Bearer or Basic, or the account
//! password), an action, a feed, an optional package id and whether it is new, an
//! optional client address, and the time (0 to 150 minutes after the world was built).
//! The bytes are read both as JSON (the seeds; see `from_json`) and as a structured input.
//!
//! Over 500 lines because a fuzz target is one file with one entry point: the world
//! (about 300 lines, each token beside what the model knows of it), the input and its
//! mutations, and the JSON reader the committed seeds are written in all belong to it.

#![no_main]

#[path = "../../tests/reference/mod.rs"]
mod reference;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use feedkey::time::{Duration, OffsetDateTime};
use feedkey::{
    AccountId, Action, AuditEvent, Credential, DenyStatus, Expiry, Feedkey, Feeds, Grant,
    GrantedBy, ManualClock, MemoryStore, NewChild, NewToken, PasswordConfig, Permission,
    Permissions, Refresh, Request, Scope, Target, TokenEdit, TokenId, TokenKey,
};
use libfuzzer_sys::fuzz_target;
use reference::{
    Answer, Globs, Life, Parent, Req, Rule, Token, child_expires, password_answer, refresh_windows,
};

/// 2026-03-01 09:00 UTC.
fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_772_355_600).expect("a valid instant")
}
const ALICE_PASSWORD: &str = "correct horse battery staple";

/// Runs a future that is ready at once (every `MemoryStore` call is), without an executor.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a MemoryStore future was not ready"),
    }
}

// ---------------------------------------------------------------------------------------
// The world, and what the model knows of each credential in it.

/// A credential text the world knows, and the model's view of it.
#[derive(Debug)]
struct Known {
    name: &'static str,
    text: String,
    id: TokenId,
    account: AccountId,
    by: GrantedBy,
    model: Token,
}

struct World {
    keys: Feedkey<MemoryStore>,
    clock: ManualClock,
    alice: AccountId,
    known: Vec<Known>,
    audited: &'static AtomicU64,
}

fn strings(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|s| (*s).to_owned()).collect())
}

fn rule_ci() -> Rule {
    Rule {
        permissions: vec![Permission::PushNew, Permission::PushVersion],
        feeds: strings(&["ci"]),
        packages: Some(Globs::folded(&["contoso.*"])),
        networks: None,
    }
}

/// A derived token: its own scope, then its parent's; alive while it and its parent are.
fn child(rule: Rule, parent_rule: Rule, expires: Option<i64>, parent: Life) -> Token {
    Token {
        rules: vec![rule, parent_rule],
        life: Life::expiring(expires),
        retired_until: None,
        parent: Some(Parent {
            life: parent,
            renewed_until: None,
        }),
    }
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(build_world)
}

fn add(
    known: &mut Vec<Known>,
    name: &'static str,
    text: &str,
    id: TokenId,
    (account, by): (&AccountId, GrantedBy),
    model: Token,
) {
    known.push(Known {
        name,
        text: text.to_owned(),
        id,
        account: account.clone(),
        by,
        model,
    });
}

#[allow(clippy::too_many_lines)]
fn build_world() -> World {
    static AUDITED: AtomicU64 = AtomicU64::new(0);
    let clock = ManualClock::new(start());
    let keys = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]))
        .clock(clock.clone())
        .passwords(PasswordConfig::insecure_fast_for_tests())
        .audit(|_: &AuditEvent| {
            AUDITED.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .expect("build");
    let alice = AccountId::new("alice").expect("id");
    let bob = AccountId::new("bob").expect("id");
    let (primary, token, derived) = (
        (&alice, GrantedBy::PrimaryKey),
        (&alice, GrantedBy::Token),
        (&alice, GrantedBy::DerivedToken),
    );
    let mut known = Vec::new();

    let p = ready(keys.create_account(&alice, Expiry::Never)).expect("account");
    ready(keys.set_password(&alice, ALICE_PASSWORD)).expect("password");
    let (text, id) = (p.token.expose_secret(), p.token.id());
    add(
        &mut known,
        "alice primary",
        text,
        id,
        primary,
        Token::new(Rule::full()),
    );

    let issue = |rule: &Rule, expiry: Expiry| {
        ready(keys.issue(&alice, NewToken::new("t", rule.scope()).expires(expiry))).expect("issue")
    };
    let derive = |parent: TokenId, rule: &Rule, minutes: i64| {
        let new = NewChild::new("job", rule.scope(), Duration::minutes(minutes));
        ready(keys.derive_for(&alice, parent, new)).expect("derive")
    };

    // Read-only, everywhere, for 90 minutes.
    let t = issue(&Rule::read_only(), Expiry::After(Duration::minutes(90)));
    let model = Token {
        life: Life::expiring(Some(90)),
        ..Token::new(Rule::read_only())
    };
    add(
        &mut known,
        "reader",
        t.token.expose_secret(),
        t.token.id(),
        token,
        model,
    );

    // Write-only on feed "ci" for contoso.*, and a child of it for one hour.
    let ci = issue(&rule_ci(), Expiry::Never);
    let (text, id) = (ci.token.expose_secret(), ci.token.id());
    add(&mut known, "ci", text, id, token, Token::new(rule_ci()));
    let job_rule = Rule {
        permissions: vec![Permission::PushVersion],
        feeds: strings(&["ci"]),
        packages: Some(Globs::folded(&["contoso.service.*"])),
        networks: None,
    };
    let job = derive(ci.token.id(), &job_rule, 60);
    let model = child(
        job_rule,
        rule_ci(),
        child_expires(0, 60, None),
        Life::default(),
    );
    let (text, id) = (job.token.expose_secret(), job.token.id());
    add(&mut known, "ci job (child)", text, id, derived, model);

    // Revoked.
    let t = issue(&Rule::full(), Expiry::Never);
    ready(keys.revoke(&alice, t.token.id())).expect("revoke");
    let model = Token {
        life: Life {
            revoked: true,
            ..Life::default()
        },
        ..Token::new(Rule::full())
    };
    add(
        &mut known,
        "revoked",
        t.token.expose_secret(),
        t.token.id(),
        token,
        model,
    );

    // Expires one minute in.
    let t = issue(&Rule::full(), Expiry::After(Duration::minutes(1)));
    let model = Token {
        life: Life::expiring(Some(1)),
        ..Token::new(Rule::full())
    };
    add(
        &mut known,
        "expiring",
        t.token.expose_secret(),
        t.token.id(),
        token,
        model,
    );

    // Read and unlist Fabrikam* (case-sensitive) on two feeds, from two networks.
    let net_rule = Rule {
        permissions: vec![Permission::Read, Permission::Unlist],
        feeds: strings(&["main", "release"]),
        packages: Some(Globs::exact(&["Fabrikam.*", "Fabrikam"])),
        networks: Some(vec![
            (IpAddr::V4(Ipv4Addr::new(10, 1, 0, 0)), 16),
            (
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)),
                32,
            ),
        ]),
    };
    let t = issue(&net_rule, Expiry::Never);
    let (text, id) = (t.token.expose_secret(), t.token.id());
    add(
        &mut known,
        "networks",
        text,
        id,
        token,
        Token::new(net_rule),
    );

    // Refreshed twice with overlaps (10 then 60 minutes): three secrets work for a while.
    let rot_rule = Rule {
        permissions: vec![Permission::Read, Permission::PushVersion],
        feeds: None,
        packages: Some(Globs::folded(&["Contoso.Core", "contoso.web*"])),
        networks: None,
    };
    let t = issue(&rot_rule, Expiry::Never);
    let mut secrets = vec![t.token.expose_secret().to_owned()];
    for overlap in [10, 60] {
        let refresh = Refresh::with_overlap(Duration::minutes(overlap));
        let fresh = ready(keys.refresh_with(&alice, t.token.id(), refresh)).expect("refresh");
        secrets.push(fresh.token.expose_secret().to_owned());
    }
    let windows = refresh_windows(None, &[(0, 10), (0, 60)]);
    let names = [
        "rotated, oldest secret",
        "rotated, older secret",
        "rotated, current secret",
    ];
    for (i, (name, text)) in names.into_iter().zip(&secrets).enumerate() {
        let model = Token {
            retired_until: windows.get(i).copied(),
            ..Token::new(rot_rule.clone())
        };
        add(&mut known, name, text, t.token.id(), token, model);
    }

    // Refreshed at once: the old secret is dead (reuse), the new one works.
    let t = issue(&Rule::read_only(), Expiry::Never);
    let fresh = ready(keys.refresh(&alice, t.token.id())).expect("refresh");
    let model = Token {
        retired_until: refresh_windows(None, &[(0, 0)]).first().copied(),
        ..Token::new(Rule::read_only())
    };
    let (text, id) = (t.token.expose_secret(), t.token.id());
    add(&mut known, "refreshed, old secret", text, id, token, model);
    let text = fresh.token.expose_secret();
    add(
        &mut known,
        "refreshed, new secret",
        text,
        id,
        token,
        Token::new(Rule::read_only()),
    );

    // A child whose parent was revoked afterwards.
    let orphan_rule = Rule {
        permissions: vec![Permission::Read],
        feeds: None,
        packages: Some(Globs::folded(&["a*"])),
        networks: None,
    };
    let parent = issue(&Rule::read_only(), Expiry::Never);
    let orphan = derive(parent.token.id(), &orphan_rule, 30);
    ready(keys.revoke(&alice, parent.token.id())).expect("revoke");
    let revoked = Life {
        revoked: true,
        ..Life::default()
    };
    let model = Token {
        life: revoked,
        ..Token::new(Rule::read_only())
    };
    let (text, id) = (parent.token.expose_secret(), parent.token.id());
    add(&mut known, "revoked parent", text, id, token, model);
    let expires = child_expires(0, 30, None);
    let model = child(orphan_rule, Rule::read_only(), expires, revoked);
    let (text, id) = (orphan.token.expose_secret(), orphan.token.id());
    add(
        &mut known,
        "child of a revoked parent",
        text,
        id,
        derived,
        model,
    );

    // A child whose parent was narrowed afterwards: it must pass the narrowed scope.
    let wide = Rule {
        permissions: vec![
            Permission::Read,
            Permission::PushNew,
            Permission::PushVersion,
        ],
        ..Rule::full()
    };
    let narrowed = Rule {
        permissions: vec![Permission::Read, Permission::PushNew],
        feeds: strings(&["main"]),
        ..Rule::full()
    };
    let kid_rule = Rule {
        permissions: vec![Permission::Read, Permission::PushVersion],
        feeds: strings(&["main", "ci"]),
        packages: Some(Globs::folded(&["contoso.*"])),
        networks: None,
    };
    let parent = issue(&wide, Expiry::Never);
    let kid = derive(parent.token.id(), &kid_rule, 45);
    let edit = TokenEdit::new()
        .permissions(Permissions::of(&narrowed.permissions))
        .feeds(Feeds::only(["main"]).expect("feeds"));
    ready(keys.edit(&alice, parent.token.id(), edit)).expect("edit");
    let (text, id) = (parent.token.expose_secret(), parent.token.id());
    add(
        &mut known,
        "narrowed parent",
        text,
        id,
        token,
        Token::new(narrowed.clone()),
    );
    let model = child(
        kid_rule,
        narrowed,
        child_expires(0, 45, None),
        Life::default(),
    );
    let (text, id) = (kid.token.expose_secret(), kid.token.id());
    add(
        &mut known,
        "child of a narrowed parent",
        text,
        id,
        derived,
        model,
    );

    // Another account.
    let bob_primary = ready(keys.create_account(&bob, Expiry::Never)).expect("account");
    let (text, id) = (bob_primary.token.expose_secret(), bob_primary.token.id());
    let by = (&bob, GrantedBy::PrimaryKey);
    add(
        &mut known,
        "bob primary",
        text,
        id,
        by,
        Token::new(Rule::full()),
    );
    let t = ready(keys.issue(&bob, NewToken::new("r", Scope::read_only()))).expect("issue");
    let (text, id) = (t.token.expose_secret(), t.token.id());
    let by = (&bob, GrantedBy::Token);
    add(
        &mut known,
        "bob reader",
        text,
        id,
        by,
        Token::new(Rule::read_only()),
    );

    World {
        keys,
        clock,
        alice,
        known,
        audited: &AUDITED,
    }
}

// ---------------------------------------------------------------------------------------
// The input.

#[derive(Arbitrary, Debug)]
struct Input {
    credential: Cred,
    action: ActionIn,
    feed: Name,
    package: Option<(Name, bool)>,
    client: Option<Client>,
    minute: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ActionIn {
    Read,
    Push,
    Unlist,
}

#[derive(Arbitrary, Debug)]
enum Cred {
    /// One of the world's tokens, perhaps damaged, sent one of several ways.
    Known {
        which: u8,
        mutation: Option<Mutation>,
        via: Via,
        user: String,
    },
    ApiKey(Vec<u8>),
    Authorization(Vec<u8>),
    Both(Vec<u8>, Vec<u8>),
    Bearer(String),
    Basic {
        user: String,
        password: String,
    },
    /// Basic auth with an account password.
    Password {
        user: u8,
        good: bool,
        other: String,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Via {
    ApiKey,
    PaddedApiKey,
    Bearer,
    LowerBearer,
    Basic,
    ApiKeyAndBearer,
    ApiKeyAndBasic,
    WithToken,
    WithBasic,
}

#[derive(Arbitrary, Debug)]
enum Mutation {
    /// A different secret under the same id (checksum fixed): a wrong secret.
    FlipSecretBit {
        index: u8,
        bit: u8,
    },
    /// Another token's id with this one's secret (checksum fixed).
    SwapId {
        other: u8,
    },
    /// Any bit of the body, checksum left alone.
    FlipBit {
        index: u8,
        bit: u8,
    },
    ReplaceChar {
        index: u8,
        with: char,
    },
    Truncate {
        len: u8,
    },
    Append(char),
    Prepend(char),
    Uppercase,
    /// Another known token's prefix-and-body halves spliced.
    Splice {
        other: u8,
        at: u8,
    },
}

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Raw(String),
}

const FEEDS: &[&str] = &["ci", "main", "release", "Ci", "MAIN", "ci ", "other", ""];
const PACKAGES: &[&str] = &[
    "Contoso.Service.Core",
    "contoso.service.web",
    "CONTOSO.X",
    "Contoso.Core",
    "contoso.core",
    "contoso.web.api",
    "Contoso.Webby",
    "contoso",
    "Fabrikam",
    "Fabrikam.Web",
    "fabrikam.web",
    "FABRIKAM.WEB",
    "apple",
    "A",
    "b",
    "",
    // Malformed ids, refused whatever the scope.
    "..",
    "contoso.service/..",
    "Contoso Core",
    "Fabrikam.\u{e9}",
];

impl Name {
    fn get<'a>(&'a self, list: &'static [&'static str]) -> &'a str {
        match self {
            Name::Known(i) => list[usize::from(*i) % list.len()],
            Name::Raw(s) => s,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Client {
    Known(u8),
    V4([u8; 4]),
    V6([u16; 8]),
    Mapped([u8; 4]),
}

impl Client {
    fn addr(&self) -> IpAddr {
        const KNOWN: &[IpAddr] = &[
            IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
            IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 1, 255, 255)),
            IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a01, 0x0909)),
            IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0x0a01, 0x0909)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        ];
        match self {
            Client::Known(i) => KNOWN[usize::from(*i) % KNOWN.len()],
            Client::V4(o) => IpAddr::from(*o),
            Client::V6(s) => IpAddr::from(*s),
            Client::Mapped(o) => IpAddr::V6(Ipv4Addr::from(*o).to_ipv6_mapped()),
        }
    }
}
fn reencode(text: &str, change: impl FnOnce(&mut [u8; 52])) -> Option<String> {
    let (prefix, body) = text.split_once('_')?;
    let raw = URL_SAFE_NO_PAD.decode(body).ok()?;
    let mut raw: [u8; 52] = raw.try_into().ok()?;
    change(&mut raw);
    Some(format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(raw)))
}

fn fix_crc(raw: &mut [u8; 52]) {
    let crc = crc32fast::hash(&raw[..48]).to_be_bytes();
    raw[48..].copy_from_slice(&crc);
}

fn mutate(world: &World, text: &str, mutation: &Mutation) -> String {
    let pick = |i: u8| &world.known[usize::from(i) % world.known.len()];
    let mut text = text.to_owned();
    match mutation {
        Mutation::FlipSecretBit { index, bit } => {
            let i = 16 + usize::from(*index) % 32;
            if let Some(t) = reencode(&text, |raw| {
                raw[i] ^= 1 << (bit % 8);
                fix_crc(raw);
            }) {
                text = t;
            }
        }
        Mutation::SwapId { other } => {
            let id = *pick(*other).id.as_bytes();
            if let Some(t) = reencode(&text, |raw| {
                raw[..16].copy_from_slice(&id);
                fix_crc(raw);
            }) {
                text = t;
            }
        }
        Mutation::FlipBit { index, bit } => {
            let i = usize::from(*index) % 52;
            if let Some(t) = reencode(&text, |raw| raw[i] ^= 1 << (bit % 8)) {
                text = t;
            }
        }
        Mutation::ReplaceChar { index, with } => {
            let i = usize::from(*index) % text.len();
            if text.is_char_boundary(i) && text.is_char_boundary(i + 1) {
                text.replace_range(i..=i, with.encode_utf8(&mut [0; 4]));
            }
        }
        Mutation::Truncate { len } => text.truncate(usize::from(*len) % (text.len() + 1)),
        Mutation::Append(c) => text.push(*c),
        Mutation::Prepend(c) => text.insert(0, *c),
        Mutation::Uppercase => text = text.to_ascii_uppercase(),
        Mutation::Splice { other, at } => {
            let other = &pick(*other).text;
            let at = usize::from(*at) % (text.len() + 1);
            if at <= other.len() {
                text = format!("{}{}", &text[..at], &other[at..]);
            }
        }
    }
    text
}

fn basic_header(user: &str, password: &str) -> (String, String) {
    let payload = format!("{user}:{password}");
    (format!("Basic {}", STANDARD.encode(&payload)), payload)
}

/// Header values and whatever Basic payloads they carry: a token that was granted must
/// appear in one of them.
struct Sent {
    api_key: Option<Vec<u8>>,
    authorization: Option<Vec<u8>>,
    /// Decoded Basic payloads and texts handed over without headers.
    plain: Vec<String>,
}

impl Sent {
    fn headers(api_key: Option<Vec<u8>>, authorization: Option<Vec<u8>>) -> Self {
        let mut plain = Vec::new();
        // Decode a Basic header ourselves, in case raw bytes formed one.
        if let Some(auth) = &authorization
            && let Ok(text) = std::str::from_utf8(auth)
            && let Some((scheme, rest)) = text.trim_matches([' ', '\t']).split_once(' ')
            && scheme.eq_ignore_ascii_case("basic")
            && let Ok(bytes) = STANDARD.decode(rest.trim())
            && let Ok(decoded) = String::from_utf8(bytes)
        {
            plain.push(decoded);
        }
        Sent {
            api_key,
            authorization,
            plain,
        }
    }

    fn contains(&self, needle: &str) -> bool {
        let n = needle.as_bytes();
        let has = |h: &[u8]| !n.is_empty() && h.windows(n.len()).any(|w| w == n);
        self.api_key.as_deref().is_some_and(has)
            || self.authorization.as_deref().is_some_and(has)
            || self.plain.iter().any(|p| has(p.as_bytes()))
    }
}

fn sent_for_known(text: &str, via: Via, user: &str) -> Sent {
    let bearer = |scheme: &str| format!("{scheme} {text}").into_bytes();
    match via {
        Via::ApiKey => Sent::headers(Some(text.as_bytes().to_vec()), None),
        Via::PaddedApiKey => Sent::headers(Some(format!(" \t{text} ").into_bytes()), None),
        Via::Bearer => Sent::headers(None, Some(bearer("Bearer"))),
        Via::LowerBearer => Sent::headers(None, Some(bearer("bearer "))),
        Via::Basic => {
            let (header, _) = basic_header(user, text);
            Sent::headers(None, Some(header.into_bytes()))
        }
        Via::ApiKeyAndBearer => {
            Sent::headers(Some(text.as_bytes().to_vec()), Some(bearer("Bearer")))
        }
        Via::ApiKeyAndBasic => {
            let (header, _) = basic_header(user, text);
            Sent::headers(Some(text.as_bytes().to_vec()), Some(header.into_bytes()))
        }
        Via::WithToken | Via::WithBasic => Sent {
            api_key: None,
            authorization: None,
            plain: vec![text.to_owned()],
        },
    }
}

fn request_for<'s>(sent: &'s Sent, via: Option<(Via, &str, &'s str)>) -> Request<'s> {
    match via {
        Some((Via::WithToken, _, text)) => Request::token(text),
        Some((Via::WithBasic, user, text)) => Request::basic(user, text),
        _ => Request::from_headers(sent.api_key.as_deref(), sent.authorization.as_deref()),
    }
}

// ---------------------------------------------------------------------------------------
// The checks.

fn describe(known: &Known) -> String {
    format!(
        "{} (account {}, {:?})",
        known.name, known.account, known.model
    )
}

/// The class of a denial's status.
fn answer_of(status: DenyStatus) -> Answer {
    match status {
        DenyStatus::Unauthorized => Answer::Unauthorized,
        DenyStatus::Forbidden => Answer::Forbidden,
        DenyStatus::Unavailable => panic!("a MemoryStore answered 503"),
    }
}

/// Panics unless `grant` is justified.
fn check_grant(world: &World, request: &Request<'_>, sent: &Sent, grant: &Grant, req: &Req<'_>) {
    let presented = match request.credential() {
        Ok(Credential::Token(t)) => *t,
        Ok(Credential::Basic { username, password }) => {
            if grant.granted_by() == GrantedBy::Password {
                assert_eq!(req.action, Action::Read, "the password may only read");
                assert_eq!(username, "alice", "password grant for the wrong user name");
                assert_eq!(
                    password.as_str(),
                    ALICE_PASSWORD,
                    "password grant, wrong password"
                );
                assert_eq!(grant.account(), &world.alice);
                assert_eq!(grant.token_id(), None);
                assert_eq!(
                    password_answer(true, req),
                    Answer::Allow,
                    "password grant the model refuses: {req:?}"
                );
                return;
            }
            password.as_str()
        }
        Err(e) => panic!("granted with an unreadable credential: {e:?}"),
    };
    assert_ne!(
        grant.granted_by(),
        GrantedBy::Password,
        "a token granted as a password"
    );
    let Some(known) = world.known.iter().find(|k| k.text == presented) else {
        panic!(
            "granted to a credential that is no known token: {presented:?}, grant {:?}",
            grant.token_id()
        );
    };
    assert!(
        sent.contains(&known.text),
        "granted, but the token was never sent: {}",
        describe(known)
    );
    assert_eq!(
        grant.token_id(),
        Some(known.id),
        "grant names another token"
    );
    assert_eq!(
        grant.account(),
        &known.account,
        "grant names another account"
    );
    assert_eq!(grant.granted_by(), known.by, "grant of the wrong kind");
    assert_eq!(
        grant.used_previous_secret(),
        known.model.is_previous_secret(),
        "previous-secret flag wrong for {}",
        describe(known)
    );
    assert!(
        known.model.alive(req.minute),
        "granted to a dead token: {req:?}: {}",
        describe(known)
    );
    assert_eq!(
        known.model.answer(req),
        Answer::Allow,
        "granted outside the scope: {req:?}: {}",
        describe(known)
    );
}

/// Panics unless a denial of an intact token, or of the account password, is the model's
/// answer (the status included).
fn check_denial(
    world: &World,
    request: &Request<'_>,
    status: DenyStatus,
    reason: &feedkey::DenyReason,
    req: &Req<'_>,
) {
    let presented = match request.credential() {
        Ok(Credential::Token(t)) => *t,
        // The account password (it is no token's shape), whoever is named.
        Ok(Credential::Basic { username, password }) if password.as_str() == ALICE_PASSWORD => {
            assert_eq!(
                answer_of(status),
                password_answer(username == "alice", req),
                "the password for {username:?} was answered {status:?} ({reason:?}): {req:?}"
            );
            return;
        }
        Ok(Credential::Basic { password, .. }) => password.as_str(),
        Err(_) => return,
    };
    let Some(known) = world.known.iter().find(|k| k.text == presented) else {
        return;
    };
    assert_eq!(
        answer_of(status),
        known.model.answer(req),
        "denied ({reason:?}): {req:?}: {}",
        describe(known)
    );
}

fn run(input: &Input) {
    let world = world();
    let minute = i64::from(input.minute % 151);
    world.clock.set(start() + Duration::minutes(minute));

    // The credential.
    let mut known_via = None;
    let mut text_holder = String::new();
    let sent = match &input.credential {
        Cred::Known {
            which,
            mutation,
            via,
            user,
        } => {
            let known = &world.known[usize::from(*which) % world.known.len()];
            text_holder = match mutation {
                None => known.text.clone(),
                Some(m) => mutate(world, &known.text, m),
            };
            known_via = Some((*via, user.as_str()));
            sent_for_known(&text_holder, *via, user)
        }
        Cred::ApiKey(v) => Sent::headers(Some(v.clone()), None),
        Cred::Authorization(v) => Sent::headers(None, Some(v.clone())),
        Cred::Both(a, b) => Sent::headers(Some(a.clone()), Some(b.clone())),
        Cred::Bearer(t) => Sent::headers(None, Some(format!("Bearer {t}").into_bytes())),
        Cred::Basic { user, password } => {
            let (header, payload) = basic_header(user, password);
            let mut sent = Sent::headers(None, Some(header.into_bytes()));
            sent.plain.push(payload);
            sent
        }
        Cred::Password { user, good, other } => {
            let user = ["alice", "bob", "Alice", "nobody", ""][usize::from(*user) % 5];
            let password = if *good { ALICE_PASSWORD } else { other };
            let (header, payload) = basic_header(user, password);
            let mut sent = Sent::headers(None, Some(header.into_bytes()));
            sent.plain.push(payload);
            sent
        }
    };
    let request = request_for(&sent, known_via.map(|(v, u)| (v, u, text_holder.as_str())));
    let client = input.client.as_ref().map(Client::addr);
    let request = match client {
        Some(addr) => request.with_client_addr(addr),
        None => request,
    };

    // The target.
    let action = match input.action {
        ActionIn::Read => Action::Read,
        ActionIn::Push => Action::Push,
        ActionIn::Unlist => Action::Unlist,
    };
    let feed = input.feed.get(FEEDS);
    let package = input
        .package
        .as_ref()
        .map(|(n, new)| (n.get(PACKAGES), *new));
    let target = match package {
        None => Target::feed(feed),
        Some((id, true)) => Target::new_package(feed, id),
        Some((id, false)) => Target::package(feed, id),
    };
    let req = Req {
        action,
        feed,
        package,
        client,
        minute,
    };

    let before = world.audited.load(Ordering::Relaxed);
    match ready(world.keys.authorize(&request, action, &target)) {
        Ok(grant) => check_grant(world, &request, &sent, &grant, &req),
        Err(denial) => check_denial(world, &request, denial.status(), denial.reason(), &req),
    }
    assert!(
        world.audited.load(Ordering::Relaxed) > before,
        "a decision was not audited"
    );
}

/// The input as JSON, for seeds and regression cases:
///
/// ```json
/// {"token": "ci job (child)", "via": "basic", "user": "ci", "mutation": "flip-secret:4:1",
///  "action": "push", "feed": "ci", "package": "Contoso.Service.Core", "new": false,
///  "client": "10.1.2.3", "minute": 5}
/// ```
///
/// Instead of `token` (a name from the world, or its index): `password` (`{"user":
/// "alice", "good": true}` or `{"user": "bob", "other": "guess"}`), `basic` (`{"user":
/// …, "password": …}`), `bearer` (a string), or `api_key` and/or `authorization` (header
/// values). `via`: api-key, padded-api-key, bearer, lower-bearer, basic,
/// api-key-and-bearer, api-key-and-basic, with-token, with-basic. `mutation`:
/// flip-secret:I:B, swap-id:N, flip-bit:I:B, replace:I:C, truncate:N, append:C,
/// prepend:C, uppercase, splice:N:AT.
fn from_json(data: &[u8]) -> Option<Input> {
    use serde_json::Value;
    let v: Value = serde_json::from_slice(data).ok()?;
    let str_of = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let num = |x: Option<&str>| x.and_then(|x| x.parse::<u32>().ok()).unwrap_or(0);
    let byte = |x: Option<&str>| (num(x) & 0xff) as u8;
    let world = world();
    let credential = if let Some(token) = v.get("token") {
        let which = match token {
            Value::String(name) => world.known.iter().position(|k| k.name == name)?,
            other => usize::try_from(other.as_u64()?).ok()?,
        };
        let via = match str_of("via").as_deref().unwrap_or("api-key") {
            "api-key" => Via::ApiKey,
            "padded-api-key" => Via::PaddedApiKey,
            "bearer" => Via::Bearer,
            "lower-bearer" => Via::LowerBearer,
            "basic" => Via::Basic,
            "api-key-and-bearer" => Via::ApiKeyAndBearer,
            "api-key-and-basic" => Via::ApiKeyAndBasic,
            "with-token" => Via::WithToken,
            "with-basic" => Via::WithBasic,
            _ => return None,
        };
        let mutation = match str_of("mutation") {
            None => None,
            Some(m) => {
                let mut parts = m.split(':');
                let kind = parts.next().unwrap_or("");
                let (a, b) = (parts.next(), parts.next());
                let ch = |x: Option<&str>| x.and_then(|x| x.chars().next()).unwrap_or('x');
                Some(match kind {
                    "flip-secret" => Mutation::FlipSecretBit {
                        index: byte(a),
                        bit: byte(b),
                    },
                    "swap-id" => Mutation::SwapId { other: byte(a) },
                    "flip-bit" => Mutation::FlipBit {
                        index: byte(a),
                        bit: byte(b),
                    },
                    "replace" => Mutation::ReplaceChar {
                        index: byte(a),
                        with: ch(b),
                    },
                    "truncate" => Mutation::Truncate { len: byte(a) },
                    "append" => Mutation::Append(ch(a)),
                    "prepend" => Mutation::Prepend(ch(a)),
                    "uppercase" => Mutation::Uppercase,
                    "splice" => Mutation::Splice {
                        other: byte(a),
                        at: byte(b),
                    },
                    _ => return None,
                })
            }
        };
        Cred::Known {
            which: u8::try_from(which).ok()?,
            mutation,
            via,
            user: str_of("user").unwrap_or_default(),
        }
    } else if let Some(p) = v.get("password") {
        let user = p.get("user").and_then(Value::as_str).unwrap_or("alice");
        Cred::Password {
            user: match user {
                "alice" => 0,
                "bob" => 1,
                "Alice" => 2,
                "nobody" => 3,
                _ => 4,
            },
            good: p.get("good").and_then(Value::as_bool).unwrap_or(false),
            other: p
                .get("other")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }
    } else if let Some(b) = v.get("basic") {
        let get = |k: &str| {
            b.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Cred::Basic {
            user: get("user"),
            password: get("password"),
        }
    } else if let Some(t) = str_of("bearer") {
        Cred::Bearer(t)
    } else {
        match (str_of("api_key"), str_of("authorization")) {
            (Some(k), Some(a)) => Cred::Both(k.into_bytes(), a.into_bytes()),
            (Some(k), None) => Cred::ApiKey(k.into_bytes()),
            (None, Some(a)) => Cred::Authorization(a.into_bytes()),
            (None, None) => Cred::ApiKey(Vec::new()),
        }
    };
    let action = match str_of("action").as_deref().unwrap_or("read") {
        "read" => ActionIn::Read,
        "push" => ActionIn::Push,
        "unlist" => ActionIn::Unlist,
        _ => return None,
    };
    let client = match str_of("client") {
        None => None,
        Some(c) => Some(match c.parse::<IpAddr>().ok()? {
            IpAddr::V4(v4) => Client::V4(v4.octets()),
            IpAddr::V6(v6) => Client::V6(v6.segments()),
        }),
    };
    Some(Input {
        credential,
        action,
        feed: Name::Raw(str_of("feed").unwrap_or_default()),
        package: str_of("package").map(|p| {
            (
                Name::Raw(p),
                v.get("new").and_then(Value::as_bool).unwrap_or(false),
            )
        }),
        client,
        minute: v
            .get("minute")
            .and_then(Value::as_u64)
            .map_or(0, |m| (m % 151) as u8),
    })
}

fuzz_target!(|data: &[u8]| {
    if let Some(input) = from_json(data) {
        run(&input);
    }
    if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) {
        run(&input);
    }
});
