//! The reference model of `Feedkey::authorize`: what it should answer, written from the
//! rules README.md, docs/beyond-the-seeds.md and the crate's API docs state, not from its
//! code.
//!
//! It is an oracle: its own permission table, target rules, glob matcher, CIDR check and
//! liveness rules (expiry, idleness, revocation, refresh windows, a derived token's
//! parent). Of feedkey it borrows plain data types (`Action`, `Permission`) and, in the
//! last section, the constructors that build the crate's `Scope` for a [`Rule`]; it calls
//! nothing of feedkey's that decides.
//!
//! Shared by `tests/model.rs` (random scopes, lifetimes and requests, a world each; the
//! model's own table tests are in `tests.rs` beside this file) and by
//! `fuzz/fuzz_targets/authorize.rs` (one fixed world, arbitrary credentials and targets),
//! which loads it with `#[path]`. Each uses the part its world needs.
//!
//! Time is counted in whole minutes after a world's start.

#![allow(dead_code, clippy::expect_used)]

use std::net::IpAddr;

pub use feedkey::{Action, Permission};
use feedkey::{Feeds, Networks, PackageSet, Packages, Permissions, Scope};

#[cfg(test)]
mod tests;

/// The longest feed name a target may name, in bytes.
pub const MAX_FEED_LEN: usize = 128;
/// The longest package id a target may name, in bytes.
pub const MAX_PACKAGE_ID_LEN: usize = 512;
/// How many retired secrets a token remembers; a refresh past that forgets the oldest.
pub const MAX_RETIRED_SECRETS: usize = 4;
/// The longest a derived token may live under the default policy, in minutes.
pub const MAX_CHILD_MINUTES: i64 = 60;

/// What the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Allowed.
    Allow,
    /// 401: the credential proves no one, or no longer.
    Unauthorized,
    /// 403: a proven credential that does not cover the request.
    Forbidden,
}

/// A request, as the model sees it.
#[derive(Debug, Clone, Copy)]
pub struct Req<'a> {
    pub action: Action,
    pub feed: &'a str,
    /// The package id, and whether it is new to the feed.
    pub package: Option<(&'a str, bool)>,
    /// The client's address, if the server gave one.
    pub client: Option<IpAddr>,
    /// When, in minutes after the start.
    pub minute: i64,
}

impl Req<'_> {
    /// The permission the request needs: reading (a package, or the feed's listing)
    /// needs read; pushing an id new to the feed push-new, any other push push-version;
    /// unlisting unlist. `None` for a push or unlist that names no package: never allowed.
    pub fn needs(&self) -> Option<Permission> {
        match (self.action, self.package) {
            (Action::Read, _) => Some(Permission::Read),
            (Action::Push, Some((_, true))) => Some(Permission::PushNew),
            (Action::Push, Some((_, false))) => Some(Permission::PushVersion),
            (Action::Unlist, Some(_)) => Some(Permission::Unlist),
            _ => None,
        }
    }

    /// Whether the target names a feed and package a registry can mean: a feed of 1 to
    /// [`MAX_FEED_LEN`] bytes, and a package id that [`package_id_is_well_formed`].
    /// Anything else is refused whatever the scope.
    pub fn target_is_well_formed(&self) -> bool {
        (1..=MAX_FEED_LEN).contains(&self.feed.len())
            && self
                .package
                .is_none_or(|(id, _)| package_id_is_well_formed(id))
    }
}

/// A package id is 1 to [`MAX_PACKAGE_ID_LEN`] printable ASCII characters (`!` to `~`),
/// and never a path's parent step (`..`, or ending in `/..`).
pub fn package_id_is_well_formed(id: &str) -> bool {
    (1..=MAX_PACKAGE_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_graphic())
        && id != ".."
        && !id.ends_with("/..")
}

// ---------------------------------------------------------------------------------------
// Scopes.

/// A scope's package patterns, and whether they match case-sensitively.
#[derive(Debug, Clone)]
pub struct Globs {
    pub patterns: Vec<String>,
    pub case_sensitive: bool,
}

impl Globs {
    /// Patterns matched without ASCII case (NuGet's and cargo's rule).
    pub fn folded<S: AsRef<str>>(patterns: &[S]) -> Self {
        Self::of(patterns, false)
    }

    /// Patterns matched exactly.
    pub fn exact<S: AsRef<str>>(patterns: &[S]) -> Self {
        Self::of(patterns, true)
    }

    fn of<S: AsRef<str>>(patterns: &[S], case_sensitive: bool) -> Self {
        Globs {
            patterns: patterns.iter().map(|p| p.as_ref().to_owned()).collect(),
            case_sensitive,
        }
    }

    /// Whether some pattern matches `id`; an id that is not printable ASCII matches none.
    pub fn matches(&self, id: &str) -> bool {
        id.bytes().all(|b| b.is_ascii_graphic())
            && self
                .patterns
                .iter()
                .any(|p| glob_matches(p.as_bytes(), id.as_bytes(), self.case_sensitive))
    }
}

/// Whether `pattern` matches the whole of `id`: `*` any run of characters (`**` the
/// same), `?` exactly one, any other character itself, ASCII case folded unless
/// `case_sensitive`. The model knows no classes, alternatives or escapes (tests/globs.rs
/// checks those against a matcher of its own): a pattern with one panics here rather
/// than pass for a literal.
pub fn glob_matches(pattern: &[u8], id: &[u8], case_sensitive: bool) -> bool {
    assert!(
        !pattern.iter().any(|b| b"[]{}\\".contains(b)),
        "the reference glob knows only literals, `*` and `?`: {:?}",
        String::from_utf8_lossy(pattern)
    );
    glob_here(pattern, id, case_sensitive)
}

fn glob_here(pattern: &[u8], id: &[u8], case_sensitive: bool) -> bool {
    match (pattern.split_first(), id.split_first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some((b'*', rest)), _) => {
            glob_here(rest, id, case_sensitive)
                || id
                    .split_first()
                    .is_some_and(|(_, tail)| glob_here(pattern, tail, case_sensitive))
        }
        (Some((b'?', rest)), Some((_, tail))) => glob_here(rest, tail, case_sensitive),
        (Some((p, rest)), Some((c, tail))) => {
            let same = if case_sensitive {
                p == c
            } else {
                p.eq_ignore_ascii_case(c)
            };
            same && glob_here(rest, tail, case_sensitive)
        }
        (Some(_), None) => false,
    }
}

/// Whether `addr` lies in the range `net/len`. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`) is judged as the IPv4 address it carries; no other IPv6 address is
/// ever inside an IPv4 range, nor an IPv4 address inside an IPv6 one.
pub fn net_contains(net: IpAddr, len: u8, addr: IpAddr) -> bool {
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// One scope, spelled out: `None` for "any".
#[derive(Debug, Clone)]
pub struct Rule {
    pub permissions: Vec<Permission>,
    pub feeds: Option<Vec<String>>,
    pub packages: Option<Globs>,
    /// Ranges as (network address, prefix length).
    pub networks: Option<Vec<(IpAddr, u8)>>,
}

impl Rule {
    /// Every permission, anywhere (a primary key's scope).
    pub fn full() -> Self {
        Rule {
            permissions: Permission::ALL.to_vec(),
            feeds: None,
            packages: None,
            networks: None,
        }
    }

    /// Read, anywhere.
    pub fn read_only() -> Self {
        Rule {
            permissions: vec![Permission::Read],
            ..Rule::full()
        }
    }

    /// Whether a client at the request's address may use a token of this scope: any
    /// address when it names no ranges, else only a given address inside one of them.
    pub fn admits_client(&self, client: Option<IpAddr>) -> bool {
        match (&self.networks, client) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(nets), Some(addr)) => nets.iter().any(|&(net, len)| net_contains(net, len, addr)),
        }
    }

    /// Whether this scope covers the request: the client address, a well-formed target,
    /// the permission the action needs, the feed (compared exactly), and the package (by
    /// the globs); a scope for some packages never covers the feed's listing, nor a push
    /// or unlist without a package.
    pub fn allows(&self, req: &Req<'_>) -> bool {
        if !self.admits_client(req.client) || !req.target_is_well_formed() {
            return false;
        }
        let Some(needed) = req.needs() else {
            return false;
        };
        if !self.permissions.contains(&needed) {
            return false;
        }
        if let Some(feeds) = &self.feeds
            && !feeds.iter().any(|f| f == req.feed)
        {
            return false;
        }
        match (&self.packages, req.package) {
            (None, _) => true,
            (Some(globs), Some((id, _))) => globs.matches(id),
            (Some(_), None) => false,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Liveness.

/// A token's own standing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Life {
    pub revoked: bool,
    /// Its expiry: it works before this minute, not at it.
    pub expires: Option<i64>,
    /// When it goes idle ([`idle_from`]): it works before this minute, not at it.
    pub idle_from: Option<i64>,
}

impl Life {
    /// A token expiring at `expires` (never: `None`).
    pub fn expiring(expires: Option<i64>) -> Self {
        Life {
            expires,
            ..Life::default()
        }
    }

    /// Not revoked, not expired, not idle.
    pub fn alive(&self, minute: i64) -> bool {
        !self.revoked
            && self.expires.is_none_or(|e| minute < e)
            && self.idle_from.is_none_or(|i| minute < i)
    }
}

/// When a token goes idle under a policy that retires tokens unused for `idle_after`
/// minutes (`None`: a policy that retires none): that long after its creation, its last
/// use or its last new secret (`active`), whichever is latest.
pub fn idle_from(idle_after: Option<i64>, created: i64, active: &[i64]) -> Option<i64> {
    let last = active.iter().copied().fold(created, i64::max);
    idle_after.map(|idle| last + idle)
}

/// When each secret that refreshes retire stops working, for refreshes at `(minute,
/// overlap)` in order of a token expiring at `expires`: entry `i` for the secret refresh
/// `i` retired (entry 0: the secret the token was issued with). A retired secret works
/// until `min(minute + overlap, expiry)`, and a refresh ends earlier windows that would
/// outlast its own (after an immediate refresh no old secret works). A token remembers
/// [`MAX_RETIRED_SECRETS`] retired secrets: an older one is forgotten, and proves
/// nothing (`i64::MIN`).
pub fn refresh_windows(expires: Option<i64>, refreshes: &[(i64, i64)]) -> Vec<i64> {
    let mut windows: Vec<i64> = Vec::new();
    for &(at, overlap) in refreshes {
        let until = expires.map_or(at + overlap, |e| (at + overlap).min(e));
        for earlier in &mut windows {
            *earlier = (*earlier).min(until);
        }
        windows.push(until);
    }
    let forgotten = windows.len().saturating_sub(MAX_RETIRED_SECRETS);
    for w in windows.iter_mut().take(forgotten) {
        *w = i64::MIN;
    }
    windows
}

/// The expiry of a child derived at `now` for `lifetime` minutes from a parent expiring at
/// `parent_expires`; `None` when it cannot be derived: a lifetime not in the future,
/// longer than [`MAX_CHILD_MINUTES`], or outliving its parent.
pub fn child_expires(now: i64, lifetime: i64, parent_expires: Option<i64>) -> Option<i64> {
    let at = now + lifetime;
    let fits =
        lifetime > 0 && lifetime <= MAX_CHILD_MINUTES && parent_expires.is_none_or(|p| at <= p);
    fits.then_some(at)
}

/// When a child ends because its parent was given new secrets after it was derived:
/// `windows` are those refreshes' [`refresh_windows`], the first for the secret the child
/// was derived under. The child lives as long as that secret works; a parent refreshed
/// [`MAX_RETIRED_SECRETS`] times since may have forgotten that secret, and then the child
/// counts as ended at once. `None`: the parent was not refreshed since.
pub fn child_ends(windows: &[i64]) -> Option<i64> {
    if windows.len() >= MAX_RETIRED_SECRETS {
        return Some(i64::MIN);
    }
    windows.iter().copied().min()
}

/// A derived token's parent, as the child sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parent {
    pub life: Life,
    /// [`child_ends`]: when the child ends because the parent was refreshed since.
    pub renewed_until: Option<i64>,
}

/// One secret of a token: when it proves anything, and every scope it must pass.
#[derive(Debug, Clone)]
pub struct Token {
    /// Its own scope and, for a derived token, its parent's current one.
    pub rules: Vec<Rule>,
    pub life: Life,
    /// A secret a refresh retired: it works until this minute ([`refresh_windows`]).
    pub retired_until: Option<i64>,
    /// A derived token's parent.
    pub parent: Option<Parent>,
}

impl Token {
    /// The current secret of a live token that never expires, with one scope.
    pub fn new(rule: Rule) -> Self {
        Token {
            rules: vec![rule],
            life: Life::default(),
            retired_until: None,
            parent: None,
        }
    }

    /// Whether the secret proves the token at `minute`: the token alive, the secret
    /// current or inside its window, and a derived token's parent alive and not renewed
    /// past the secret the child was derived under.
    pub fn alive(&self, minute: i64) -> bool {
        self.life.alive(minute)
            && self.retired_until.is_none_or(|u| minute < u)
            && self
                .parent
                .is_none_or(|p| p.life.alive(minute) && p.renewed_until.is_none_or(|u| minute < u))
    }

    /// Whether a grant says the secret was a retired one.
    pub fn is_previous_secret(&self) -> bool {
        self.retired_until.is_some()
    }

    /// The answer to this secret presented intact: 401 unless it proves the token now;
    /// then allowed when every scope it must pass covers the request, 403 otherwise.
    pub fn answer(&self, req: &Req<'_>) -> Answer {
        if !self.alive(req.minute) {
            Answer::Unauthorized
        } else if self.rules.iter().all(|r| r.allows(req)) {
            Answer::Allow
        } else {
            Answer::Forbidden
        }
    }
}

/// The answer to the account password (Basic auth whose password is no token), which may
/// only read: a write is refused (403) before the password is even checked, whoever is
/// named; a read needs the right password of an existing account (`proven`, else 401),
/// from any address, and a well-formed target (else 403).
pub fn password_answer(proven: bool, req: &Req<'_>) -> Answer {
    if req.action != Action::Read {
        Answer::Forbidden
    } else if !proven {
        Answer::Unauthorized
    } else if !req.target_is_well_formed() {
        Answer::Forbidden
    } else {
        Answer::Allow
    }
}

// ---------------------------------------------------------------------------------------
// The crate's side: feedkey's `Scope` for a rule, through its constructors only.

impl Rule {
    /// The crate's scope for this rule.
    pub fn scope(&self) -> Scope {
        let feeds = match &self.feeds {
            None => Feeds::Any,
            Some(list) => Feeds::only(list).expect("feeds"),
        };
        let packages = match &self.packages {
            None => Packages::Any,
            Some(g) if g.case_sensitive => {
                Packages::Only(PackageSet::case_sensitive(&g.patterns).expect("packages"))
            }
            Some(g) => Packages::only(&g.patterns).expect("packages"),
        };
        let networks = match &self.networks {
            None => Networks::Any,
            Some(nets) => {
                Networks::only(nets.iter().map(|(a, l)| format!("{a}/{l}"))).expect("networks")
            }
        };
        Scope::new(Permissions::of(&self.permissions), feeds, packages)
            .expect("scope")
            .within(networks)
    }
}
