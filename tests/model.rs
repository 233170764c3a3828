//! Property: for random scopes (with client networks), expiries, revocations, refreshes
//! with overlap windows, derived children, credentials and targets, `authorize` allows
//! exactly when a plain reference model of the rules allows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::IpAddr;

use common::{World, api_key, basic};
use feedkey::time::Duration;
use feedkey::{
    Action, Expiry, Feeds, Networks, NewChild, NewToken, Packages, Permission, Permissions,
    Refresh, Request, Scope, Target,
};
use proptest::prelude::*;

/// The reference model of a glob: `*` any run, `?` one character, case-insensitive.
fn glob_matches(pattern: &[u8], id: &[u8]) -> bool {
    match (pattern.split_first(), id.split_first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some((b'*', rest)), _) => {
            glob_matches(rest, id)
                || id
                    .split_first()
                    .is_some_and(|(_, tail)| glob_matches(pattern, tail))
        }
        (Some((b'?', rest)), Some((_, tail))) => glob_matches(rest, tail),
        (Some((p, rest)), Some((c, tail))) => p.eq_ignore_ascii_case(c) && glob_matches(rest, tail),
        (Some(_), None) => false,
    }
}

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
    /// Second octets of `10.x.0.0/16` ranges.
    networks: Option<Vec<u8>>,
    expires_in_minutes: Option<i64>,
    revoked: bool,
    /// Refresh right after issue with this overlap (minutes), presenting the old secret
    /// (`true`) or the new one.
    refresh: Option<(i64, bool)>,
    child: Option<Child>,
    minutes_later: i64,
    via: u8,
    /// Second octet of the client's `10.x.1.1`, if the server gives an address.
    client: Option<u8>,
    action: Action,
    feed: String,
    package: Option<(String, bool)>,
}

struct Rule<'a> {
    permissions: &'a [Permission],
    feeds: Option<&'a [String]>,
    packages: Option<&'a [String]>,
    networks: Option<&'a [u8]>,
}

/// The rules of one scope, spelled out.
fn rule_allows(r: &Rule<'_>, c: &Case) -> bool {
    if r.networks
        .is_some_and(|nets| !c.client.is_some_and(|x| nets.contains(&x)))
    {
        return false;
    }
    let needed = match (c.action, &c.package) {
        (Action::Read, _) => Permission::Read,
        (Action::Push, Some((_, true))) => Permission::PushNew,
        (Action::Push, Some((_, false))) => Permission::PushVersion,
        (Action::Unlist, Some(_)) => Permission::Unlist,
        _ => return false,
    };
    // A package id that is a parent step (`..`), or holds a character other than
    // printable ASCII, is malformed, whatever the scope.
    if c.package
        .as_ref()
        .is_some_and(|(id, _)| id == ".." || !id.bytes().all(|b| b.is_ascii_graphic()))
    {
        return false;
    }
    if !r.permissions.contains(&needed) {
        return false;
    }
    if r.feeds.is_some_and(|feeds| !feeds.contains(&c.feed)) {
        return false;
    }
    match (r.packages, &c.package) {
        (None, _) => true,
        (Some(globs), Some((id, _))) => globs
            .iter()
            .any(|g| glob_matches(g.as_bytes(), id.as_bytes())),
        (Some(_), None) => false,
    }
}

/// What the child's scope will be, if the case has a child the crate can derive.
fn child_scope(c: &Case) -> Option<(Vec<Permission>, Option<Vec<String>>)> {
    let child = c.child.as_ref()?;
    // A child cannot outlive its parent.
    if c.expires_in_minutes
        .is_some_and(|e| child.lifetime_minutes > e)
    {
        return None;
    }
    let mut permissions: Vec<Permission> = child
        .permissions
        .iter()
        .copied()
        .filter(|p| c.permissions.contains(p))
        .collect();
    if permissions.is_empty() {
        permissions.clone_from(&c.permissions);
    }
    let packages = match (&c.packages, &c.package, child.exact_package) {
        // A parent step is no package id: nothing narrows to it.
        (_, Some((id, _)), true) if id == ".." => c.packages.clone(),
        (None, Some((id, _)), true) => Some(vec![id.clone()]),
        (Some(globs), Some((id, _)), true)
            if globs
                .iter()
                .any(|g| glob_matches(g.as_bytes(), id.as_bytes())) =>
        {
            Some(vec![id.clone()])
        }
        _ => c.packages.clone(),
    };
    Some((permissions, packages))
}

fn model_allows(c: &Case) -> bool {
    let parent_rule = Rule {
        permissions: &c.permissions,
        feeds: c.feeds.as_deref(),
        packages: c.packages.as_deref(),
        networks: c.networks.as_deref(),
    };
    let parent_expired = c.expires_in_minutes.is_some_and(|e| c.minutes_later >= e);
    if c.revoked || parent_expired {
        return false;
    }
    if let Some((permissions, packages)) = child_scope(c) {
        let child = c.child.as_ref().unwrap();
        if c.minutes_later >= child.lifetime_minutes {
            return false;
        }
        let child_rule = Rule {
            permissions: &permissions,
            feeds: c.feeds.as_deref(),
            packages: packages.as_deref(),
            networks: c.networks.as_deref(),
        };
        return rule_allows(&child_rule, c) && rule_allows(&parent_rule, c);
    }
    if let Some((overlap, true)) = c.refresh {
        // The old secret works until min(overlap, expiry) after the refresh.
        let until = c.expires_in_minutes.map_or(overlap, |e| overlap.min(e));
        if c.minutes_later >= until {
            return false;
        }
    }
    rule_allows(&parent_rule, c)
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
    let id = "[xyXY.]{1,5}";
    let action = prop_oneof![Just(Action::Read), Just(Action::Push), Just(Action::Unlist)];
    let child = (
        proptest::collection::vec(permission.clone(), 1..3),
        any::<bool>(),
        1i64..=60,
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
        proptest::option::weighted(0.3, proptest::collection::vec(0u8..4, 1..3)),
    );
    let life = (
        proptest::option::of(1i64..120),
        proptest::bool::weighted(0.1),
        proptest::option::weighted(0.3, (0i64..90, any::<bool>())),
        proptest::option::weighted(0.3, child),
        0i64..150,
    );
    let request = (
        0u8..3,
        proptest::option::weighted(0.8, 0u8..5),
        action,
        feed,
        proptest::option::weighted(0.85, (id, any::<bool>())),
    );
    (scope, life, request).prop_map(
        |(
            (permissions, feeds, packages, networks),
            (expires_in_minutes, revoked, refresh, child, minutes_later),
            (via, client, action, feed, package),
        )| Case {
            permissions,
            feeds,
            packages,
            networks,
            expires_in_minutes,
            revoked,
            refresh,
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

fn scope_of(
    permissions: &[Permission],
    feeds: &Option<Vec<String>>,
    packages: &Option<Vec<String>>,
    networks: &Option<Vec<u8>>,
) -> Scope {
    Scope::new(
        Permissions::of(permissions),
        match feeds {
            None => Feeds::Any,
            Some(list) => Feeds::only(list).unwrap(),
        },
        match packages {
            None => Packages::Any,
            Some(list) => Packages::only(list).unwrap(),
        },
    )
    .unwrap()
    .within(match networks {
        None => Networks::Any,
        Some(list) => Networks::only(list.iter().map(|x| format!("10.{x}.0.0/16"))).unwrap(),
    })
}

async fn run(c: &Case) -> bool {
    let World {
        keys, clock, alice, ..
    } = World::builder().build().await;
    let scope = scope_of(&c.permissions, &c.feeds, &c.packages, &c.networks);
    let expiry = c
        .expires_in_minutes
        .map_or(Expiry::Never, |m| Expiry::After(Duration::minutes(m)));
    let issued = keys
        .issue(&alice, NewToken::new("p", scope).expires(expiry))
        .await
        .unwrap();
    let mut secret = issued.token.expose_secret().to_owned();
    if let Some((permissions, packages)) = child_scope(c) {
        let child = c.child.as_ref().unwrap();
        let scope = scope_of(&permissions, &c.feeds, &packages, &c.networks);
        let derived = keys
            .derive_for(
                &alice,
                issued.token.id(),
                NewChild::new("job", scope, Duration::minutes(child.lifetime_minutes)),
            )
            .await
            .unwrap();
        secret = derived.token.expose_secret().to_owned();
    } else if let Some((overlap, present_old)) = c.refresh {
        let fresh = keys
            .refresh_with(
                &alice,
                issued.token.id(),
                Refresh::with_overlap(Duration::minutes(overlap)),
            )
            .await
            .unwrap();
        if !present_old {
            secret = fresh.token.expose_secret().to_owned();
        }
    }
    if c.revoked {
        keys.revoke(&alice, issued.token.id()).await.unwrap();
    }
    clock.advance(Duration::minutes(c.minutes_later));
    let bearer = format!("Bearer {secret}");
    let mut request = match c.via {
        0 => api_key(&secret),
        1 => Request::from_headers(None, Some(bearer.as_bytes())),
        _ => basic("ci", &secret),
    };
    if let Some(x) = c.client {
        request = request.with_client_addr(IpAddr::from([10, x, 1, 1]));
    }
    let target = match &c.package {
        None => Target::feed(&c.feed),
        Some((id, true)) => Target::new_package(&c.feed, id),
        Some((id, false)) => Target::package(&c.feed, id),
    };
    keys.authorize(&request, c.action, &target).await.is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn authorize_agrees_with_the_reference_model(c in case()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let got = rt.block_on(run(&c));
        prop_assert_eq!(got, model_allows(&c), "{:?}", c);
    }
}

#[test]
fn the_model_glob_matcher_is_itself_right() {
    assert!(glob_matches(
        b"fabrikam.service.*",
        b"Fabrikam.Service.Framework"
    ));
    assert!(!glob_matches(b"fabrikam.service.*", b"Fabrikam.Services"));
    assert!(glob_matches(b"a?c", b"abc"));
    assert!(!glob_matches(b"a?c", b"ac"));
    assert!(glob_matches(b"*", b""));
    assert!(glob_matches(b"x**y", b"xy"));
}
