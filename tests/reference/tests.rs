//! The model's own table tests, so that agreeing with it means something: each rule on
//! the cases the documentation spells out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

fn req<'a>(action: Action, feed: &'a str, package: Option<(&'a str, bool)>) -> Req<'a> {
    Req {
        action,
        feed,
        package,
        client: None,
        minute: 0,
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an address")
}

#[test]
fn the_model_glob_matcher_is_itself_right() {
    let folded = |p: &str, id: &str| glob_matches(p.as_bytes(), id.as_bytes(), false);
    let exact = |p: &str, id: &str| glob_matches(p.as_bytes(), id.as_bytes(), true);
    assert!(folded("fabrikam.service.*", "Fabrikam.Service.Framework"));
    assert!(!folded("fabrikam.service.*", "Fabrikam.Services"));
    assert!(folded("a?c", "abc"));
    assert!(!folded("a?c", "ac"));
    assert!(folded("*", ""));
    assert!(folded("x**y", "xy"));
    assert!(folded("*.core", "a/b.CORE"), "`*` crosses `/`");
    assert!(folded("?", "/"));
    assert!(
        !folded("contoso", "contoso.core"),
        "a pattern matches a whole id"
    );
    assert!(exact("Fabrikam.*", "Fabrikam.Web"));
    assert!(!exact("Fabrikam.*", "fabrikam.web"));
    assert!(!exact("Fabrikam.*", "FABRIKAM.WEB"));
    assert!(exact("F?b", "Fab"));
    assert!(!exact("F?b", "fab"));
    let globs = Globs::folded(&["contoso.*", "Fabrikam"]);
    assert!(globs.matches("CONTOSO.X") && globs.matches("fabrikam"));
    assert!(
        !globs.matches("contoso. x"),
        "an id that is not printable ASCII matches none"
    );
    assert!(!Globs::folded(&["*"]).matches("caf\u{e9}"));
    assert!(Globs::exact(&["*"]).matches("!~"));
}

#[test]
#[should_panic(expected = "only literals")]
fn the_model_glob_matcher_refuses_what_it_does_not_know() {
    glob_matches(b"[ab]", b"a", false);
}

#[test]
fn the_model_network_check_is_itself_right() {
    let v4 = |s: &str| (ip(s), 16);
    let (net, len) = v4("10.1.0.0");
    assert!(net_contains(net, len, ip("10.1.2.3")));
    assert!(net_contains(net, len, ip("10.1.255.255")));
    assert!(!net_contains(net, len, ip("10.2.0.1")));
    assert!(
        net_contains(net, len, ip("::ffff:10.1.9.9")),
        "mapped is IPv4"
    );
    assert!(
        !net_contains(net, len, ip("::10.1.9.9")),
        "compatible is not"
    );
    assert!(net_contains(ip("0.0.0.0"), 0, ip("192.0.2.1")));
    assert!(!net_contains(ip("0.0.0.0"), 0, ip("2001:db8::1")));
    assert!(net_contains(ip("192.0.2.7"), 32, ip("192.0.2.7")));
    assert!(!net_contains(ip("192.0.2.7"), 32, ip("192.0.2.6")));
    let doc = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
    assert!(net_contains(doc, 32, ip("2001:db8:ffff::1")));
    assert!(!net_contains(doc, 32, ip("2001:db9::1")));
    assert!(net_contains(ip("::"), 0, ip("2001:db9::1")));
    assert!(!net_contains(ip("::"), 0, IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let rule = Rule {
        networks: Some(vec![v4("10.1.0.0")]),
        ..Rule::full()
    };
    assert!(rule.admits_client(Some(ip("10.1.0.1"))));
    assert!(!rule.admits_client(None), "no address given: refused");
    assert!(Rule::full().admits_client(None));
}

#[test]
fn the_model_permission_and_target_tables_are_themselves_right() {
    use Permission::*;
    let rows = [
        (Action::Read, None, Some(Read)),
        (Action::Read, Some(("a", false)), Some(Read)),
        (Action::Read, Some(("a", true)), Some(Read)),
        (Action::Push, Some(("a", true)), Some(PushNew)),
        (Action::Push, Some(("a", false)), Some(PushVersion)),
        (Action::Unlist, Some(("a", false)), Some(Unlist)),
        (Action::Push, None, None),
        (Action::Unlist, None, None),
    ];
    for (action, package, needs) in rows {
        assert_eq!(
            req(action, "ci", package).needs(),
            needs,
            "{action:?} {package:?}"
        );
    }
    let long = "x".repeat(MAX_PACKAGE_ID_LEN);
    let longer = "x".repeat(MAX_PACKAGE_ID_LEN + 1);
    let long_feed = "f".repeat(MAX_FEED_LEN + 1);
    for (feed, id, ok) in [
        ("ci", Some("Contoso.Core"), true),
        ("ci", None, true),
        ("ci ", Some("a/b"), true),
        ("", None, false),
        (long_feed.as_str(), None, false),
        ("ci", Some(""), false),
        ("ci", Some(long.as_str()), true),
        ("ci", Some(longer.as_str()), false),
        ("ci", Some("a b"), false),
        ("ci", Some("caf\u{e9}"), false),
        ("ci", Some(".."), false),
        ("ci", Some("a/.."), false),
        ("ci", Some("..."), true),
        ("ci", Some("../a"), true),
    ] {
        let r = req(Action::Read, feed, id.map(|id| (id, false)));
        assert_eq!(r.target_is_well_formed(), ok, "{feed:?} {id:?}");
    }
}

#[test]
fn the_model_rule_is_itself_right() {
    let ci = Rule {
        permissions: vec![Permission::PushNew, Permission::PushVersion],
        feeds: Some(vec!["ci".to_owned()]),
        packages: Some(Globs::folded(&["contoso.*"])),
        networks: None,
    };
    let reader = Rule::read_only();
    let rows: [(&Rule, Req<'_>, bool); 11] = [
        (
            &ci,
            req(Action::Push, "ci", Some(("Contoso.Web", true))),
            true,
        ),
        (
            &ci,
            req(Action::Push, "ci", Some(("contoso.web", false))),
            true,
        ),
        (
            &ci,
            req(Action::Read, "ci", Some(("contoso.web", false))),
            false,
        ),
        (
            &ci,
            req(Action::Push, "CI", Some(("contoso.web", false))),
            false,
        ),
        (
            &ci,
            req(Action::Push, "ci", Some(("fabrikam", false))),
            false,
        ),
        (&ci, req(Action::Push, "ci", None), false),
        (
            &ci,
            req(Action::Unlist, "ci", Some(("contoso.web", false))),
            false,
        ),
        (&reader, req(Action::Read, "any", None), true),
        (
            &reader,
            req(Action::Read, "any", Some(("..", false))),
            false,
        ),
        (&reader, req(Action::Push, "any", Some(("a", true))), false),
        (
            &Rule::full(),
            req(Action::Unlist, "", Some(("a", false))),
            false,
        ),
    ];
    for (i, (rule, r, allowed)) in rows.iter().enumerate() {
        assert_eq!(rule.allows(r), *allowed, "row {i}: {r:?}");
    }
    // A scope for some packages may not read the feed's listing.
    let some = Rule {
        packages: Some(Globs::folded(&["*"])),
        ..Rule::read_only()
    };
    assert!(!some.allows(&req(Action::Read, "main", None)));
    assert!(some.allows(&req(Action::Read, "main", Some(("x", false)))));
}

#[test]
fn the_model_lifetimes_are_themselves_right() {
    // Expiry and idleness are inclusive of their minute.
    let life = Life::expiring(Some(10));
    assert!(life.alive(9) && !life.alive(10));
    assert_eq!(idle_from(Some(30), 0, &[]), Some(30));
    assert_eq!(idle_from(Some(30), 5, &[2, 20]), Some(50));
    assert_eq!(idle_from(None, 0, &[20]), None);
    let idle = Life {
        idle_from: Some(30),
        ..Life::default()
    };
    assert!(idle.alive(29) && !idle.alive(30));
    assert!(
        !Life {
            revoked: true,
            ..Life::default()
        }
        .alive(0)
    );
    // Refresh windows: capped by the expiry, earlier ones ended by later shorter ones.
    assert_eq!(refresh_windows(None, &[(0, 10), (0, 60)]), vec![10, 60]);
    assert_eq!(refresh_windows(None, &[(0, 60), (5, 10)]), vec![15, 15]);
    assert_eq!(refresh_windows(Some(20), &[(0, 60)]), vec![20]);
    assert_eq!(refresh_windows(None, &[(0, 30), (0, 0)]), vec![0, 0]);
    let five = refresh_windows(None, &[(0, 50); 5]);
    assert_eq!(five, vec![i64::MIN, 50, 50, 50, 50], "four are remembered");
    // Children: at most an hour, never past the parent.
    assert_eq!(child_expires(0, 60, None), Some(60));
    assert_eq!(child_expires(0, 61, None), None);
    assert_eq!(child_expires(0, 0, None), None);
    assert_eq!(child_expires(0, 30, Some(30)), Some(30));
    assert_eq!(child_expires(0, 31, Some(30)), None);
    assert_eq!(child_ends(&[]), None);
    assert_eq!(child_ends(&[15, 15]), Some(15));
    assert_eq!(child_ends(&[50; 4]), Some(i64::MIN));
    // A token: its own life, its secret's window, its parent's life and renewals.
    let r = |minute| Req {
        minute,
        ..req(Action::Read, "main", None)
    };
    let mut t = Token::new(Rule::read_only());
    assert_eq!(t.answer(&r(1000)), Answer::Allow);
    assert_eq!(
        t.answer(&req(Action::Push, "main", Some(("a", true)))),
        Answer::Forbidden
    );
    t.retired_until = Some(10);
    assert!(t.is_previous_secret());
    assert_eq!(t.answer(&r(9)), Answer::Allow);
    assert_eq!(t.answer(&r(10)), Answer::Unauthorized);
    let mut child = Token::new(Rule::read_only());
    child.parent = Some(Parent {
        life: Life::expiring(Some(40)),
        renewed_until: Some(20),
    });
    assert!(child.alive(19) && !child.alive(20));
    child.parent = Some(Parent {
        life: Life::expiring(Some(40)),
        renewed_until: None,
    });
    assert!(child.alive(39) && !child.alive(40));
    child.rules.push(Rule {
        feeds: Some(vec!["other".to_owned()]),
        ..Rule::full()
    });
    assert_eq!(
        child.answer(&r(0)),
        Answer::Forbidden,
        "the parent's scope too"
    );
    assert_eq!(
        child.answer(&r(40)),
        Answer::Unauthorized,
        "dead before out of scope"
    );
}

#[test]
fn the_model_password_rule_is_itself_right() {
    let read = req(Action::Read, "main", Some(("a", false)));
    assert_eq!(password_answer(true, &read), Answer::Allow);
    assert_eq!(password_answer(false, &read), Answer::Unauthorized);
    let push = req(Action::Push, "main", Some(("a", false)));
    assert_eq!(password_answer(true, &push), Answer::Forbidden);
    assert_eq!(
        password_answer(false, &push),
        Answer::Forbidden,
        "before the check"
    );
    let bad = req(Action::Read, "main", Some(("a b", false)));
    assert_eq!(password_answer(true, &bad), Answer::Forbidden);
    assert_eq!(password_answer(false, &bad), Answer::Unauthorized);
}

#[test]
fn the_model_limits_are_the_documented_ones() {
    assert_eq!(MAX_PACKAGE_ID_LEN, feedkey::Target::MAX_PACKAGE_ID_LEN);
    assert_eq!(MAX_FEED_LEN, feedkey::scope::FeedName::MAX_LEN);
    assert_eq!(MAX_RETIRED_SECRETS, feedkey::store::MAX_RETIRED_SECRETS);
    assert_eq!(
        MAX_CHILD_MINUTES,
        feedkey::policy::LifetimePolicy::DEFAULT_MAX_CHILD_LIFETIME.whole_minutes()
    );
}
