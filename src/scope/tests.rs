//! The scope family's table tests.

use super::packages::*;
use super::*;

fn scope(perms: Permissions, feeds: Feeds, packages: Packages) -> Scope {
    Scope::new(perms, feeds, packages).unwrap()
}

#[test]
fn case_folding_is_ascii_only() {
    let set = PackageSet::new(["K*", "i*"]).unwrap();
    assert!(set.matches("kontoso"));
    // The Kelvin sign and the dotted capital I fold to k and i only under Unicode
    // rules; an ASCII pattern does not cover them.
    assert!(!set.matches("\u{212A}ontoso"));
    assert!(!set.matches("\u{130}x"));
    // Long ids take the allocating path and fold the same way.
    let long = format!("K{}", "x".repeat(LOWERCASE_BUF + 10));
    assert!(set.matches(&long));
}

#[test]
fn a_folded_pattern_matches_only_what_it_matches_without_case_in_the_ordinary_sense() {
    // (pattern, id, matched case-sensitively, matched case-insensitively)
    let rows: &[(&str, &str, bool, bool)] = &[
        // `[0-Z]` holds `0`..`9`, `:`..`@` and the letters; folding it must not make it
        // `[0-z]`, which also holds `[\]^_``.
        ("acme.[0-Z]", "acme._", false, false),
        ("acme.[0-Z]", "acme.`", false, false),
        ("acme.[0-Z]", "acme.[", false, false),
        ("acme.[0-Z]", "acme.@", true, true),
        ("acme.[0-Z]", "acme.Q", true, true),
        ("acme.[0-Z]", "acme.q", false, true),
        ("ACME.[0-Z]", "acme.5", false, true),
        // A negated class refuses both cases of each letter it holds.
        ("a[!0-_]", "Aa", false, false),
        ("a[!0-_]", "aA", false, false),
        ("a[!0-_]", "a`", true, true),
        ("x[!a-z]", "xA", true, false),
        ("x[!a-z]", "x_", true, true),
        ("x[^B]", "xb", true, false),
        // A range that crosses from letters to punctuation, folded member by member.
        ("[Z-a]", "_", true, true),
        ("[Z-a]", "z", false, true),
        ("[Z-a]", "b", false, false),
        // Literals and `?` fold as before.
        ("Contoso.*", "contoso.core", false, true),
        ("a?c", "ABC", false, true),
        // `?` is one character, and ids are ASCII: `??` does not match `ß` (two bytes).
        ("??", "\u{df}", false, false),
        ("?", "\u{df}", false, false),
        ("[!a]", "\u{e9}", false, false),
        ("*", "\u{e9}", false, false),
        ("*", "a b", false, false),
        ("*", "a\nb", false, false),
        // The Kelvin sign is not `k`, the dotted capital I is not `i`.
        ("k*", "\u{212A}", false, false),
        ("i*", "\u{130}", false, false),
        // `**` is `*`: globset's path meaning (`**/` also matching nothing) is gone.
        ("**/core", "core", false, false),
        ("**/core", "@acme/core", true, true),
        ("@acme/**/core", "@acme/core", false, false),
        ("@acme/**/core", "@acme/x/core", true, true),
        ("a**b", "ab", true, true),
        // An empty alternative is dropped; an alternation of none is no element.
        ("x{a,}", "x", false, false),
        ("x{a,}", "xA", false, true),
        ("x{}", "x", true, true),
        ("x{,}y", "xy", true, true),
        // Escapes make glob characters literal; `\` inside a class is a member.
        ("a\\*", "a*", true, true),
        ("a\\*", "ab", false, false),
        ("[\\]]", "\\]", true, true),
        ("{a\\,b,c}", "a,b", true, true),
        ("{a\\,b,c}", "c", true, true),
        // A class that can hold nothing matches nothing.
        ("[!!-~]", "a", false, false),
        ("{[!!-~],b}", "b", true, true),
    ];
    for &(pattern, id, exact, folded) in rows {
        let s = PackageSet::case_sensitive([pattern]).unwrap();
        let i = PackageSet::new([pattern]).unwrap();
        assert_eq!(
            s.matches(id),
            exact,
            "{pattern:?} on {id:?}, case-sensitive"
        );
        assert_eq!(i.matches(id), folded, "{pattern:?} on {id:?}, folded");
    }
}

#[test]
fn patterns_are_printable_ascii() {
    for bad in [
        "\u{dc}n\u{ef}c\u{f6}d\u{e9}.*",
        "a b",
        "a\tb",
        "[\u{e9}]",
        "\u{7f}",
    ] {
        assert!(
            matches!(PackagePattern::new(bad), Err(ScopeError::InvalidPattern(_))),
            "{bad:?}"
        );
    }
    let e = PackagePattern::new("caf\u{e9}.*").unwrap_err();
    assert!(e.to_string().contains("printable ASCII"), "{e}");
    assert!(PackagePattern::new("@acme/it's.[!-~]{a,b}\\*%").is_ok());
}

#[test]
fn a_case_sensitive_child_is_judged_by_what_the_folded_parent_really_admits() {
    let with =
        |set: PackageSet| Scope::new(Permissions::FULL, Feeds::Any, Packages::Only(set)).unwrap();
    let folded = |p: &str| with(PackageSet::new([p]).unwrap());
    let exact = |p: &str| with(PackageSet::case_sensitive([p]).unwrap());
    let rows: Vec<(Scope, Scope, bool)> = vec![
        // The audit's case: the child matches `xA`, the parent does not.
        (folded("x[!a-z]"), exact("x[!a-z]"), false),
        (folded("x[!a-z]"), folded("x[!a-z]"), true),
        // The child's `[0-z]` holds `_`, the parent's folded `[0-Z]` does not.
        (folded("acme.[0-Z]"), exact("acme.[0-z]"), false),
        (folded("acme.[0-Z]"), folded("acme.[0-Z]"), true),
        // Narrower classes and escaped ids are proven now.
        (folded("acme.[a-z]*"), folded("acme.[b-y]x*"), true),
        (folded("a*"), folded("a\\*b"), true),
        (exact("a\\*b"), exact("a[*]b"), true),
        (exact("a\\*b"), folded("a[*]b"), false),
        // A `**` child is a `*` child.
        (folded("*"), exact("**/core"), true),
        (folded("@acme/*"), folded("**/core"), false),
    ];
    for (parent, child, covered) in rows {
        assert_eq!(
            parent.covers(&child).is_ok(),
            covered,
            "{parent:?} over {child:?}"
        );
    }
}

#[test]
fn covers_proves_only_what_it_can() {
    let parent = Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::Any,
        Packages::only(["Fabrikam.*", "Contoso.Core", "a?c"]).unwrap(),
    )
    .unwrap();
    let child = |pkgs: &[&str]| {
        Scope::new(
            Permissions::PUSH_VERSION_ONLY,
            Feeds::Any,
            Packages::only(pkgs).unwrap(),
        )
        .unwrap()
    };
    let rows: Vec<(&[&str], bool)> = vec![
        // A longer literal prefix under the prefix glob.
        (&["fabrikam.service.*"], true),
        (&["Fabrikam.Service.?"], true),
        // An exact id the parent's globs match.
        (&["FABRIKAM.WEB"], true),
        (&["contoso.core"], true),
        // The same glob.
        (&["a?c"], true),
        (&["Fabrikam.*"], true),
        // Shorter prefixes, other globs, and anything unprovable.
        (&["Fab*"], false),
        (&["*.Core"], false),
        (&["Contoso.*"], false),
        (&["a*c"], false),
        (&["Fabrikam.Web", "Other"], false),
    ];
    for (pkgs, ok) in rows {
        assert_eq!(parent.covers(&child(pkgs)).is_ok(), ok, "{pkgs:?}");
    }
    // A case-insensitive child cannot sit under a case-sensitive parent.
    let exact = Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::Any,
        Packages::Only(PackageSet::case_sensitive(["Fabrikam.*"]).unwrap()),
    )
    .unwrap();
    assert!(exact.covers(&child(&["Fabrikam.Web"])).is_err());
    let exact_child = Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::Any,
        Packages::Only(PackageSet::case_sensitive(["Fabrikam.Web"]).unwrap()),
    )
    .unwrap();
    assert!(exact.covers(&exact_child).is_ok());
}

#[test]
fn case_sensitive_sets_match_exactly() {
    let set = PackageSet::case_sensitive(["Acme.*"]).unwrap();
    assert!(set.matches("Acme.Util"));
    assert!(!set.matches("acme.util"));
    let set = PackageSet::new(["Acme.*"]).unwrap();
    assert!(set.matches("ACME.UTIL"));
}

#[test]
fn bad_parts_are_refused_when_built() {
    assert_eq!(
        Scope::new(Permissions::NONE, Feeds::Any, Packages::Any),
        Err(ScopeError::NoPermissions)
    );
    assert_eq!(Feeds::only(Vec::<String>::new()), Err(ScopeError::NoFeeds));
    assert!(matches!(
        Feeds::only(["a b"]),
        Err(ScopeError::InvalidFeedName(_))
    ));
    assert_eq!(
        Packages::only(Vec::<String>::new()),
        Err(ScopeError::NoPackages)
    );
    assert!(matches!(
        Packages::only(["a[b"]),
        Err(ScopeError::InvalidGlob { .. })
    ));
    assert!(matches!(
        Packages::only([""]),
        Err(ScopeError::InvalidPattern(_))
    ));
    assert!(matches!(
        Packages::only(["x".repeat(PackagePattern::MAX_LEN + 1)]),
        Err(ScopeError::InvalidPattern(_))
    ));
    let too_many: Vec<String> = (0..=PackageSet::MAX_PATTERNS)
        .map(|i| format!("p{i}"))
        .collect();
    assert_eq!(Packages::only(too_many), Err(ScopeError::TooManyPackages));
    let too_many: Vec<String> = (0..=Feeds::MAX_FEEDS).map(|i| format!("f{i}")).collect();
    assert_eq!(Feeds::only(too_many), Err(ScopeError::TooManyFeeds));
}

#[test]
fn empty_lists_cannot_be_made() {
    // `Feeds::Only(..)` and `Networks::Only(..)` take checked sets (their compile_fail
    // doc tests show a hand-built one is refused); the constructors refuse empty lists.
    assert_eq!(Feeds::only(Vec::<&str>::new()), Err(ScopeError::NoFeeds));
    assert_eq!(
        Networks::only(Vec::<&str>::new()),
        Err(ScopeError::NoNetworks)
    );
}

#[test]
fn feed_subsets() {
    let ab = Feeds::only(["a", "b"]).unwrap();
    let a = Feeds::only(["a"]).unwrap();
    assert!(a.is_subset_of(&ab));
    assert!(!ab.is_subset_of(&a));
    assert!(ab.is_subset_of(&Feeds::Any));
    assert!(!Feeds::Any.is_subset_of(&ab));
}

#[test]
fn scopes_round_trip_through_serde_and_are_checked_on_the_way_in() {
    let s = scope(
        Permissions::WRITE_ONLY,
        Feeds::only(["ci"]).unwrap(),
        Packages::only(["fabrikam.service.*"]).unwrap(),
    );
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(
        json,
        r#"{"permissions":["push-new","push-version"],"feeds":{"only":["ci"]},"packages":{"only":{"patterns":["fabrikam.service.*"],"case_sensitive":false}},"networks":"any"}"#
    );
    let back: Scope = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    assert!(back.packages().allows("Fabrikam.Service.X"));
    let bad = r#"{"permissions":[],"feeds":"any","packages":"any"}"#;
    assert!(serde_json::from_str::<Scope>(bad).is_err());
    let bad = r#"{"permissions":["read"],"feeds":{"only":[]},"packages":"any"}"#;
    assert!(serde_json::from_str::<Scope>(bad).is_err());
    let bad = r#"{"permissions":["read"],"feeds":"any","packages":{"only":{"patterns":["a{"]}}}"#;
    assert!(serde_json::from_str::<Scope>(bad).is_err());
}

#[test]
fn a_refused_name_is_quoted_in_its_error_cut_to_64_characters() {
    assert_eq!(
        FeedName::new("two words"),
        Err(ScopeError::InvalidFeedName("two words".to_owned()))
    );
    let long = "é".repeat(FeedName::MAX_LEN);
    assert_eq!(
        FeedName::new(&long),
        Err(ScopeError::InvalidFeedName("é".repeat(64)))
    );
}

#[test]
fn a_scope_writes_when_it_can_push_or_unlist() {
    let table = [
        (Permissions::READ_ONLY, false),
        (Permissions::PUSH_VERSION_ONLY, true),
        (Permissions::WRITE_ONLY, true),
        (Permissions::FULL, true),
    ];
    for (permissions, writes) in table {
        let s = scope(permissions, Feeds::Any, Packages::Any);
        assert_eq!(s.can_write(), writes, "{permissions:?}");
    }
}
