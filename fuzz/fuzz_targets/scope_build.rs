//! Building scopes from hostile parts: feed names, package patterns (globs such as
//! `**/**/**`, `{a,{b,{c}}}`, long strings), permission bits and CIDR strings. Nothing
//! panics, and for scopes that build:
//! - matching arbitrary package ids, feeds and client addresses never panics;
//! - a scope covers itself (`Scope::covers` is reflexive);
//! - when one scope covers another, every id, feed and address the child allows, the
//!   parent allows too (`covers` is sound), tried on arbitrary ids and on ids made by
//!   filling in the child's own patterns.
//!
//! Input: the bytes as JSON (the seeds; see `from_json`), and the same bytes decoded as a
//! structured input with pattern generators.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::{Arbitrary, Unstructured};
use feedkey::{Feeds, Networks, PackageSet, Packages, Permissions, Scope, ScopeError};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Pattern {
    Raw(String),
    /// `prefix` followed by `*`.
    Prefixed(String),
    /// `**/**/**…` with this many parts.
    DoubleStars(u8),
    /// `{a,{b,{c…}}}` nested this deep.
    Nested(u8),
    /// One character repeated (lengths around `PackagePattern::MAX_LEN`).
    Long(char, u16),
    /// `{x,y,…}` alternatives.
    Alternates(Vec<String>),
    /// A class `[…]`.
    Class(String),
    /// A pattern from a small dictionary.
    Known(u8),
}

const KNOWN: &[&str] = &[
    "contoso.*",
    "Contoso.Service.*",
    "contoso.service.core",
    "Fabrikam.*",
    "*",
    "**",
    "?",
    "a?c",
    "*.Core",
    "x**y",
    "[a-z]*",
    "[!a]*",
    "{a,b}.*",
    "\\*",
    "a\\",
    "@scope/*",
    "**/x",
    "x/**",
    "a/**/b",
    "{}",
    "{,a}",
    "[]",
    "[",
    "]",
    "}",
];

impl Pattern {
    fn render(&self) -> String {
        match self {
            Pattern::Raw(s) => s.clone(),
            Pattern::Prefixed(p) => format!("{p}*"),
            Pattern::DoubleStars(n) => vec!["**"; usize::from(*n % 64) + 1].join("/"),
            Pattern::Nested(depth) => {
                let depth = usize::from(*depth % 40) + 1;
                let mut s = String::new();
                for i in 0..depth {
                    s.push('{');
                    s.push(char::from(b'a' + (i % 26) as u8));
                    s.push(',');
                }
                s.push('z');
                s.push_str(&"}".repeat(depth));
                s
            }
            Pattern::Long(c, n) => c.to_string().repeat(usize::from(*n % 300)),
            Pattern::Alternates(parts) => format!("{{{}}}", parts.join(",")),
            Pattern::Class(s) => format!("[{s}]"),
            Pattern::Known(i) => KNOWN[usize::from(*i) % KNOWN.len()].to_owned(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Net {
    Raw(String),
    V4([u8; 4], u8),
    V6([u16; 8], u8),
    Bare(Ip),
}

impl Net {
    fn render(&self) -> String {
        match self {
            Net::Raw(s) => s.clone(),
            Net::V4(o, len) => format!("{}/{}", Ipv4Addr::from(*o), len % 40),
            Net::V6(s, len) => format!("{}/{}", Ipv6Addr::from(*s), len % 140),
            Net::Bare(ip) => ip.addr().to_string(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Ip {
    V4([u8; 4]),
    V6([u16; 8]),
    Mapped([u8; 4]),
}

impl Ip {
    fn addr(self) -> IpAddr {
        match self {
            Ip::V4(o) => IpAddr::from(o),
            Ip::V6(s) => IpAddr::from(s),
            Ip::Mapped(o) => IpAddr::V6(Ipv4Addr::from(o).to_ipv6_mapped()),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct ScopeInput {
    permissions: u8,
    feeds: Option<Vec<String>>,
    packages: Option<(Vec<Pattern>, bool)>,
    networks: Option<Vec<Net>>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    a: ScopeInput,
    b: ScopeInput,
    ids: Vec<String>,
    /// Strings to fill the `*` and `?` of the child's patterns with.
    fillers: Vec<String>,
    feeds: Vec<String>,
    clients: Vec<Ip>,
}

fn permissions(bits: u8) -> Permissions {
    let mut p = Permissions::NONE;
    for (i, perm) in feedkey::Permission::ALL.into_iter().enumerate() {
        if bits & (1 << i) != 0 {
            p = p.with(perm);
        }
    }
    p
}

fn build(input: &ScopeInput) -> Option<Scope> {
    let feeds = match &input.feeds {
        None => Feeds::Any,
        Some(names) => match Feeds::only(names) {
            Ok(f) => f,
            Err(e) => {
                assert!(matches!(
                    e,
                    ScopeError::NoFeeds | ScopeError::TooManyFeeds | ScopeError::InvalidFeedName(_)
                ));
                return None;
            }
        },
    };
    let packages = match &input.packages {
        None => Packages::Any,
        Some((patterns, case_sensitive)) => {
            let rendered: Vec<String> = patterns.iter().map(Pattern::render).collect();
            let set = if *case_sensitive {
                PackageSet::case_sensitive(&rendered)
            } else {
                PackageSet::new(&rendered)
            };
            match set {
                Ok(set) => {
                    assert_eq!(set.is_case_sensitive(), *case_sensitive);
                    // Every pattern given is kept, and only those.
                    for p in set.patterns() {
                        assert!(rendered.iter().any(|r| r == p.as_str()));
                    }
                    // And `Packages::only` agrees with `PackageSet::new`.
                    if !case_sensitive {
                        assert_eq!(
                            Packages::only(&rendered).ok(),
                            Some(Packages::Only(set.clone()))
                        );
                    }
                    Packages::Only(set)
                }
                Err(_) => return None,
            }
        }
    };
    let networks = match &input.networks {
        None => Networks::Any,
        Some(nets) => {
            let rendered: Vec<String> = nets.iter().map(Net::render).collect();
            Networks::only(&rendered).ok()?
        }
    };
    let scope = match Scope::new(permissions(input.permissions), feeds, packages) {
        Ok(s) => s,
        Err(e) => {
            assert_eq!(e, ScopeError::NoPermissions);
            assert!(permissions(input.permissions).is_empty());
            return None;
        }
    };
    Some(scope.within(networks))
}

/// Ids made from a pattern by filling its `*` and `?` with the given strings.
fn fill(pattern: &str, fillers: &[String]) -> String {
    let mut out = String::new();
    let mut k = 0;
    let mut next = || {
        let f = fillers
            .get(k % fillers.len().max(1))
            .cloned()
            .unwrap_or_default();
        k += 1;
        f
    };
    for c in pattern.chars() {
        match c {
            '*' => out.push_str(&next()),
            '?' => out.push(next().chars().next().unwrap_or('x')),
            c => out.push(c),
        }
    }
    out
}

fn probe(scope: &Scope, input: &Input) {
    for id in &input.ids {
        let _ = scope.packages().allows(id);
    }
    for feed in &input.feeds {
        let _ = scope.feeds().allows(feed);
    }
    for ip in &input.clients {
        let addr = ip.addr();
        let allowed = scope.networks().allows(Some(addr));
        // A mapped IPv4 address is judged as the IPv4 address.
        if let Ip::Mapped(o) = ip {
            assert_eq!(allowed, scope.networks().allows(Some(IpAddr::from(*o))));
        }
    }
    assert_eq!(
        scope.networks().allows(None),
        matches!(scope.networks(), Networks::Any)
    );
}

fn check_covers(parent: &Scope, child: &Scope, input: &Input) {
    if parent.covers(child).is_err() {
        return;
    }
    assert!(child.permissions().is_subset_of(parent.permissions()));
    assert!(child.feeds().is_subset_of(parent.feeds()));
    let mut ids: Vec<String> = input.ids.clone();
    if let Packages::Only(set) = child.packages() {
        for p in set.patterns() {
            ids.push(p.as_str().to_owned());
            ids.push(fill(p.as_str(), &input.fillers));
            ids.push(fill(p.as_str(), &input.fillers).to_ascii_uppercase());
        }
    }
    for id in &ids {
        if child.packages().allows(id) {
            assert!(
                parent.packages().allows(id),
                "covers() holds but the child allows {id:?} and the parent does not\n\
                 parent: {parent:?}\nchild: {child:?}"
            );
        }
    }
    for feed in &input.feeds {
        if child.feeds().allows(feed) {
            assert!(parent.feeds().allows(feed));
        }
    }
    for ip in &input.clients {
        let addr = Some(ip.addr());
        if child.networks().allows(addr) {
            assert!(
                parent.networks().allows(addr),
                "covers() holds but the child allows {addr:?} and the parent does not"
            );
        }
    }
}

/// The input as JSON, for seeds and regression cases:
///
/// ```json
/// {"a": {"permissions": 6, "feeds": ["ci"], "packages": ["contoso.*"],
///        "case_sensitive": false, "networks": ["10.0.0.0/8"]},
///  "b": {"permissions": 4, "packages": ["contoso.service.*"]},
///  "ids": ["Contoso.Core"], "fillers": ["x"], "feeds": ["ci"], "clients": ["10.1.2.3"]}
/// ```
///
/// `permissions` is a bit set (read 1, push-new 2, push-version 4, unlist 8); a missing
/// `feeds`, `packages` or `networks` means any.
fn from_json(data: &[u8]) -> Option<Input> {
    use serde_json::Value;
    let v: Value = serde_json::from_slice(data).ok()?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let scope = |s: Option<&Value>| -> ScopeInput {
        let s = s.cloned().unwrap_or(Value::Null);
        let list = |key: &str| s.get(key).map(|v| strings(Some(v)));
        ScopeInput {
            permissions: s
                .get("permissions")
                .and_then(Value::as_u64)
                .map_or(1, |p| (p & 0xff) as u8),
            feeds: list("feeds"),
            packages: list("packages").map(|p| {
                (
                    p.into_iter().map(Pattern::Raw).collect(),
                    s.get("case_sensitive")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                )
            }),
            networks: list("networks").map(|n| n.into_iter().map(Net::Raw).collect()),
        }
    };
    Some(Input {
        a: scope(v.get("a")),
        b: scope(v.get("b")),
        ids: strings(v.get("ids")),
        fillers: strings(v.get("fillers")),
        feeds: strings(v.get("feeds")),
        clients: strings(v.get("clients"))
            .iter()
            .filter_map(|c| c.parse::<IpAddr>().ok())
            .map(|ip| match ip {
                IpAddr::V4(v4) => Ip::V4(v4.octets()),
                IpAddr::V6(v6) => Ip::V6(v6.segments()),
            })
            .collect(),
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

fn run(input: &Input) {
    let a = build(&input.a);
    let b = build(&input.b);
    for scope in a.iter().chain(b.iter()) {
        probe(scope, input);
        assert_eq!(
            scope.covers(scope),
            Ok(()),
            "a scope must cover itself: {scope:?}"
        );
    }
    if let (Some(a), Some(b)) = (&a, &b) {
        check_covers(a, b, input);
        check_covers(b, a, input);
    }
}
