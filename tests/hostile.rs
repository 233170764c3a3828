//! Hostile input: over-long headers, non-UTF-8 bytes, NUL, huge globs, glob bombs,
//! thousands of feeds, empty strings. Each gets a typed error or a clean denial, never a
//! panic; the `MAX_*` limits keep the work bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{api_key, world};
use feedkey::{
    AccountId, Action, CredentialError, DenyReason, FeedName, Feeds, MAX_HEADER_LEN, Networks,
    NewToken, PackagePattern, PackageSet, Packages, Permissions, RecordError, Request, Scope,
    ScopeError, Target, TokenParseError,
};

#[test]
fn oversized_and_empty_scope_parts_are_typed_errors() {
    // Huge globs.
    assert!(matches!(
        Packages::only(["a".repeat(PackagePattern::MAX_LEN + 1)]),
        Err(ScopeError::InvalidPattern(_))
    ));
    assert!(matches!(
        Packages::only(["*".repeat(1 << 20)]),
        Err(ScopeError::InvalidPattern(_))
    ));
    // Thousands of feeds and globs.
    let feeds: Vec<String> = (0..Feeds::MAX_FEEDS).map(|i| format!("feed{i}")).collect();
    assert!(Feeds::only(&feeds).is_ok());
    let mut more = feeds.clone();
    more.push("one-too-many".into());
    assert_eq!(Feeds::only(&more), Err(ScopeError::TooManyFeeds));
    let globs: Vec<String> = (0..=PackageSet::MAX_PATTERNS)
        .map(|i| format!("p{i}.*"))
        .collect();
    assert_eq!(Packages::only(&globs), Err(ScopeError::TooManyPackages));
    let nets: Vec<String> = (0..=Networks::MAX_NETWORKS)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    assert_eq!(Networks::only(&nets), Err(ScopeError::TooManyNetworks));
    // Empty strings.
    assert!(matches!(
        FeedName::new(""),
        Err(ScopeError::InvalidFeedName(_))
    ));
    assert!(matches!(
        Packages::only([""]),
        Err(ScopeError::InvalidPattern(_))
    ));
    assert!(matches!(
        Networks::only([""]),
        Err(ScopeError::InvalidNetwork(_))
    ));
    assert_eq!(AccountId::new(""), Err(RecordError::InvalidAccountId));
    // NUL and other control characters.
    assert!(matches!(
        FeedName::new("a\0b"),
        Err(ScopeError::InvalidFeedName(_))
    ));
    assert!(matches!(
        Packages::only(["a\0*"]),
        Err(ScopeError::InvalidPattern(_))
    ));
    assert_eq!(AccountId::new("a\0b"), Err(RecordError::InvalidAccountId));
}

#[test]
fn glob_bombs_are_refused_or_bounded() {
    // Nested alternations are refused by the glob compiler; deep `**` chains and long runs
    // of wildcards compile within the pattern length limit and match like one `*`.
    let bombs = [
        "{a,{b,{c,{d,{e}}}}}".to_owned(),
        "**/".repeat(PackagePattern::MAX_LEN / 3),
        "*?".repeat(PackagePattern::MAX_LEN / 2),
        format!("{}a", "*a".repeat(PackagePattern::MAX_LEN / 2 - 1)),
        "[".repeat(PackagePattern::MAX_LEN),
        "{".repeat(PackagePattern::MAX_LEN),
    ];
    for bomb in bombs {
        match Packages::only([&bomb]) {
            Ok(p) => {
                // Matching a long id against it stays a plain, bounded match.
                let _ = p.allows(&"a".repeat(Target::MAX_PACKAGE_ID_LEN));
            }
            Err(ScopeError::InvalidGlob { .. } | ScopeError::InvalidPattern(_)) => {}
            Err(e) => panic!("{bomb:?}: {e:?}"),
        }
    }
    // A thousand maximal globs in one scope compile or are refused with a typed error.
    let heavy: Vec<String> = (0..PackageSet::MAX_PATTERNS)
        .map(|i| format!("{i}{}", "*a?".repeat(80)))
        .collect();
    match Packages::only(&heavy) {
        Ok(_) | Err(ScopeError::InvalidGlob { .. }) => {}
        Err(e) => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn hostile_requests_are_clean_denials() {
    let w = world().await;
    let t = w.issue(NewToken::new("ci", Scope::read_only())).await;
    let secret = t.token.expose_secret();
    let long_header = vec![b'a'; MAX_HEADER_LEN + 1];
    let nul_token = format!("{}\0", &secret[..secret.len() - 1]);
    let cases: Vec<(Request<'_>, DenyReason)> = vec![
        (
            Request::from_headers(Some(&long_header), None),
            DenyReason::MalformedCredential(CredentialError::TooLong),
        ),
        (
            Request::from_headers(Some(b"\xc3\x28"), None),
            DenyReason::MalformedCredential(CredentialError::NotText),
        ),
        (
            Request::from_headers(Some(nul_token.as_bytes()), None),
            DenyReason::MalformedCredential(CredentialError::NotText),
        ),
        (
            api_key("fk_"),
            DenyReason::MalformedToken(TokenParseError::InvalidLength),
        ),
        (
            api_key("_"),
            DenyReason::MalformedToken(TokenParseError::WrongPrefix),
        ),
    ];
    for (request, want) in cases {
        let denial = w.deny(&request, Action::Read, &Target::feed("f")).await;
        assert_eq!(denial.reason(), &want);
    }
    // Targets: empty or over-long names, ids that are not printable ASCII, and parent steps,
    // are refused before any matching.
    let req = api_key(secret);
    let huge_id = "x".repeat(Target::MAX_PACKAGE_ID_LEN + 1);
    let huge_feed = "f".repeat(FeedName::MAX_LEN + 1);
    for target in [
        Target::feed(""),
        Target::package("f", ""),
        Target::package("f", &huge_id),
        Target::feed(&huge_feed),
        Target::package("f", ".."),
        Target::new_package("f", "@scope/.."),
        // Package ids are printable ASCII: no space, control or non-ASCII character.
        Target::package("f", "caf\u{e9}"),
        Target::package("f", "a b"),
        Target::package("f", "a\tb"),
        Target::package("f", "Contoso.\u{130}"),
    ] {
        let denial = w.deny(&req, Action::Read, &target).await;
        assert_eq!(denial.reason(), &DenyReason::InvalidTarget);
    }
    // A scope with the most feeds still authorizes, and refuses the feed it lacks.
    let feeds: Vec<String> = (0..Feeds::MAX_FEEDS).map(|i| format!("feed{i}")).collect();
    let wide = w
        .issue(NewToken::new(
            "wide",
            Scope::new(
                Permissions::READ_ONLY,
                Feeds::only(&feeds).unwrap(),
                Packages::Any,
            )
            .unwrap(),
        ))
        .await;
    let req = api_key(wide.token.expose_secret());
    w.allow(&req, Action::Read, &Target::feed("feed1023")).await;
    let denial = w.deny(&req, Action::Read, &Target::feed("feed1024")).await;
    assert_eq!(denial.reason(), &DenyReason::FeedOutOfScope);
}
