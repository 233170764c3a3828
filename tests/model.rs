//! Property: for random scopes (package globs folded or exact, client networks),
//! expiries, idle policies, revocations, refreshes with overlap windows, derived children,
//! credentials (a token as API key, Bearer or Basic; the account password, right or
//! wrong) and targets (malformed ones too), `authorize` answers exactly what the shared
//! reference model (`tests/reference/`) answers: allowed, 401 or 403. An allow names the
//! account, the kind of credential and whether a retired secret was used.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
mod reference;

use std::net::{IpAddr, Ipv4Addr};

use common::{World, api_key, basic};
use feedkey::policy::LifetimePolicy;
use feedkey::time::Duration;
use feedkey::{
    Action, DenyStatus, Expiry, Grant, GrantedBy, NewChild, NewToken, Permission, Refresh, Request,
    Target,
};
use proptest::prelude::*;
use reference::{
    Answer, Globs, Life, Parent, Req, Rule, Token, child_ends, child_expires, idle_from,
    package_id_is_well_formed, password_answer, refresh_windows,
};

const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone)]
struct Child {
    permissions: Vec<Permission>,
    /// Narrow the packages to the target's exact id (where the parent covers it).
    exact_package: bool,
    lifetime_minutes: i64,
}

#[derive(Debug, Clone)]
struct Case {
    permissions: Vec<Permission>,
    feeds: Option<Vec<String>>,
    packages: Option<Vec<String>>,
    /// Whether the package globs match case-sensitively.
    case_sensitive: bool,
    /// Second octets of `10.x.0.0/16` ranges.
    networks: Option<Vec<u8>>,
    expires_in_minutes: Option<i64>,
    /// The policy retires tokens unused for this many minutes.
    idle_after: Option<i64>,
    revoked: bool,
    /// Refreshes right after issue (and after deriving the child), with these overlaps in
    /// minutes.
    refreshes: Vec<i64>,
    /// Without a child, which secret to present: 0 the one issued, `i` the one refresh
    /// `i` gave (the current one past the last).
    present: usize,
    child: Option<Child>,
    minutes_later: i64,
    /// 0 API key, 1 Bearer, 2 Basic with the token, 3 Basic with alice's password, 4 Basic
    /// with a wrong password.
    via: u8,
    /// Second octet of the client's `10.x.1.1`, and whether it is sent IPv4-mapped, if the
    /// server gives an address.
    client: Option<(u8, bool)>,
    action: Action,
    feed: String,
    package: Option<(String, bool)>,
}

impl Case {
    fn req(&self) -> Req<'_> {
        Req {
            action: self.action,
            feed: &self.feed,
            package: self.package.as_ref().map(|(id, new)| (id.as_str(), *new)),
            client: self.client.map(|(x, mapped)| {
                let v4 = Ipv4Addr::new(10, x, 1, 1);
                if mapped {
                    IpAddr::V6(v4.to_ipv6_mapped())
                } else {
                    IpAddr::V4(v4)
                }
            }),
            minute: self.minutes_later,
        }
    }

    fn globs(&self, patterns: &[String]) -> Globs {
        Globs {
            patterns: patterns.to_vec(),
            case_sensitive: self.case_sensitive,
        }
    }

    fn rule(&self, permissions: &[Permission], packages: Option<&[String]>) -> Rule {
        Rule {
            permissions: permissions.to_vec(),
            feeds: self.feeds.clone(),
            packages: packages.map(|p| self.globs(p)),
            networks: self.networks.as_ref().map(|xs| {
                xs.iter()
                    .map(|x| (IpAddr::from([10, *x, 0, 0]), 16))
                    .collect()
            }),
        }
    }

    /// The scope asked for the child, if the case has one: inside its parent's.
    fn child_rule(&self) -> Option<Rule> {
        let child = self.child.as_ref()?;
        let mut permissions: Vec<Permission> = child
            .permissions
            .iter()
            .copied()
            .filter(|p| self.permissions.contains(p))
            .collect();
        if permissions.is_empty() {
            permissions.clone_from(&self.permissions);
        }
        let exact = match (&self.package, child.exact_package) {
            // Only a well-formed id can be a pattern, and only one the parent matches.
            (Some((id, _)), true) if package_id_is_well_formed(id) => self
                .packages
                .as_ref()
                .is_none_or(|p| self.globs(p).matches(id))
                .then(|| vec![id.clone()]),
            _ => None,
        };
        let packages = exact.as_deref().or(self.packages.as_deref());
        Some(self.rule(&permissions, packages))
    }

    /// The child's scope and expiry, if the case has a child the crate can derive.
    fn derived(&self) -> Option<(Rule, i64)> {
        let lifetime = self.child.as_ref()?.lifetime_minutes;
        let expires = child_expires(0, lifetime, self.expires_in_minutes)?;
        Some((self.child_rule()?, expires))
    }

    /// The reference model's token for the secret presented.
    fn token(&self) -> Token {
        let idle = idle_from(self.idle_after, 0, &[]);
        let life = Life {
            revoked: self.revoked,
            expires: self.expires_in_minutes,
            idle_from: idle,
        };
        let own = self.rule(&self.permissions, self.packages.as_deref());
        let refreshes: Vec<(i64, i64)> = self.refreshes.iter().map(|o| (0, *o)).collect();
        let windows = refresh_windows(self.expires_in_minutes, &refreshes);
        match self.derived() {
            Some((rule, expires)) => Token {
                rules: vec![rule, own],
                life: Life {
                    revoked: false,
                    expires: Some(expires),
                    idle_from: idle,
                },
                retired_until: None,
                parent: Some(Parent {
                    life,
                    renewed_until: child_ends(&windows),
                }),
            },
            None => Token {
                life,
                retired_until: windows.get(self.present).copied(),
                ..Token::new(own)
            },
        }
    }

    fn answer(&self) -> Answer {
        match self.via {
            3 => password_answer(true, &self.req()),
            4 => password_answer(false, &self.req()),
            _ => self.token().answer(&self.req()),
        }
    }
}

fn case() -> impl Strategy<Value = Case> {
    let permission = prop_oneof![
        Just(Permission::Read),
        Just(Permission::PushNew),
        Just(Permission::PushVersion),
        Just(Permission::Unlist),
    ];
    let feed = prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("c".to_owned())
    ];
    let glob = "[xyXY.*?]{1,5}";
    // Mostly ids the globs may match; sometimes malformed ones (empty, a space, `..`,
    // `/..`, not ASCII).
    let id = prop_oneof![9 => "[xyXY.]{1,5}", 1 => "[xy./ \u{e9}]{0,4}"];
    let action = prop_oneof![Just(Action::Read), Just(Action::Push), Just(Action::Unlist)];
    let child = (
        proptest::collection::vec(permission.clone(), 1..3),
        any::<bool>(),
        1i64..=70,
    )
        .prop_map(|(permissions, exact_package, lifetime_minutes)| Child {
            permissions,
            exact_package,
            lifetime_minutes,
        });
    let scope = (
        proptest::collection::vec(permission, 1..4),
        proptest::option::of(proptest::collection::vec(feed.clone(), 1..3)),
        proptest::option::of(proptest::collection::vec(glob, 1..4)),
        proptest::bool::weighted(0.3),
        proptest::option::weighted(0.3, proptest::collection::vec(0u8..4, 1..3)),
    );
    let refreshes = prop_oneof![
        6 => Just(Vec::new()),
        3 => proptest::collection::vec(0i64..90, 1..3),
        1 => proptest::collection::vec(0i64..90, 3..6),
    ];
    let life = (
        proptest::option::of(1i64..120),
        proptest::option::weighted(0.2, 1i64..30),
        proptest::bool::weighted(0.1),
        (refreshes, 0usize..6),
        proptest::option::weighted(0.3, child),
        // Often soon after the start, where children and retired secrets still work.
        prop_oneof![0i64..150, 0i64..15],
    );
    let request = (
        prop_oneof![8 => 0u8..3, 1 => 3u8..5],
        proptest::option::weighted(0.8, (0u8..5, proptest::bool::weighted(0.2))),
        action,
        prop_oneof![20 => feed, 1 => Just(String::new())],
        proptest::option::weighted(0.85, (id, any::<bool>())),
    );
    (scope, life, request).prop_map(
        |(
            (permissions, feeds, packages, case_sensitive, networks),
            (expires_in_minutes, idle_after, revoked, (refreshes, present), child, minutes_later),
            (via, client, action, feed, package),
        )| Case {
            permissions,
            feeds,
            packages,
            case_sensitive,
            networks,
            expires_in_minutes,
            idle_after,
            revoked,
            refreshes,
            present,
            child,
            minutes_later,
            via,
            client,
            action,
            feed,
            package,
        },
    )
}

/// What the crate answers the case, and the grant if it allowed.
async fn run(c: &Case) -> (Answer, Option<Grant>) {
    let mut policy = LifetimePolicy::default();
    if let Some(idle) = c.idle_after {
        policy = policy.with_idle_expiry(Duration::minutes(idle));
    }
    let World {
        keys, clock, alice, ..
    } = World::builder().policy(policy).build().await;
    let scope = c.rule(&c.permissions, c.packages.as_deref()).scope();
    let expiry = c
        .expires_in_minutes
        .map_or(Expiry::Never, |m| Expiry::After(Duration::minutes(m)));
    let issued = keys
        .issue(&alice, NewToken::new("p", scope).expires(expiry))
        .await
        .unwrap();
    let mut secrets = vec![issued.token.expose_secret().to_owned()];
    let mut child_secret = None;
    if let Some(rule) = c.child_rule() {
        // The model says whether the crate derives it (the lifetime rules).
        let lifetime = Duration::minutes(c.child.as_ref().unwrap().lifetime_minutes);
        let new = NewChild::new("job", rule.scope(), lifetime);
        match keys.derive_for(&alice, issued.token.id(), new).await {
            Ok(derived) => child_secret = Some(derived.token.expose_secret().to_owned()),
            Err(e) => assert!(c.derived().is_none(), "{e} for {c:?}"),
        }
        assert_eq!(child_secret.is_some(), c.derived().is_some(), "{c:?}");
    }
    for overlap in &c.refreshes {
        let refresh = Refresh::with_overlap(Duration::minutes(*overlap));
        let fresh = keys
            .refresh_with(&alice, issued.token.id(), refresh)
            .await
            .unwrap();
        secrets.push(fresh.token.expose_secret().to_owned());
    }
    if c.via == 3 {
        keys.set_password(&alice, PASSWORD).await.unwrap();
    }
    if c.revoked {
        keys.revoke(&alice, issued.token.id()).await.unwrap();
    }
    clock.advance(Duration::minutes(c.minutes_later));
    let secret = child_secret.unwrap_or_else(|| secrets[c.present.min(secrets.len() - 1)].clone());
    let bearer = format!("Bearer {secret}");
    let mut request = match c.via {
        0 => api_key(&secret),
        1 => Request::from_headers(None, Some(bearer.as_bytes())),
        2 => basic("ci", &secret),
        3 => basic("alice", PASSWORD),
        _ => basic("alice", "not the password"),
    };
    let req = c.req();
    if let Some(addr) = req.client {
        request = request.with_client_addr(addr);
    }
    let target = match req.package {
        None => Target::feed(req.feed),
        Some((id, true)) => Target::new_package(req.feed, id),
        Some((id, false)) => Target::package(req.feed, id),
    };
    match keys.authorize(&request, c.action, &target).await {
        Ok(grant) => (Answer::Allow, Some(grant)),
        Err(denial) => match denial.status() {
            DenyStatus::Unauthorized => (Answer::Unauthorized, None),
            DenyStatus::Forbidden => (Answer::Forbidden, None),
            DenyStatus::Unavailable => panic!("a MemoryStore was unavailable: {denial}"),
        },
    }
}

/// What a grant must say: alice's, by the credential presented.
fn check_grant(c: &Case, grant: &Grant) {
    assert_eq!(grant.account().as_str(), "alice");
    let (by, previous) = match c.via {
        3 => (GrantedBy::Password, false),
        _ if c.derived().is_some() => (GrantedBy::DerivedToken, false),
        _ => (GrantedBy::Token, c.token().is_previous_secret()),
    };
    assert_eq!(grant.granted_by(), by, "{c:?}");
    assert_eq!(grant.used_previous_secret(), previous, "{c:?}");
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (got, grant) = rt.block_on(run(c));
    prop_assert_eq!(got, c.answer(), "{:?}", c);
    if let Some(grant) = grant {
        check_grant(c, &grant);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn authorize_agrees_with_the_reference_model(c in case()) {
        check(&c)?;
    }
}

/// The shapes proptest once shrank to (see `model.proptest-regressions`), kept as cases:
/// a `?.` glob against the id `..`, and a child asked to narrow to `..`.
#[test]
fn the_recorded_regressions_still_agree() {
    let base = Case {
        permissions: vec![Permission::Read],
        feeds: None,
        packages: Some(vec!["?.".to_owned()]),
        case_sensitive: false,
        networks: None,
        expires_in_minutes: None,
        idle_after: None,
        revoked: false,
        refreshes: Vec::new(),
        present: 0,
        child: None,
        minutes_later: 0,
        via: 0,
        client: None,
        action: Action::Read,
        feed: "a".to_owned(),
        package: Some(("..".to_owned(), false)),
    };
    let child = Case {
        packages: Some(vec!["*.".to_owned()]),
        child: Some(Child {
            permissions: vec![Permission::Read],
            exact_package: true,
            lifetime_minutes: 1,
        }),
        ..base.clone()
    };
    for c in [base, child] {
        assert_eq!(c.answer(), Answer::Forbidden, "{c:?}");
        check(&c).unwrap();
    }
}
