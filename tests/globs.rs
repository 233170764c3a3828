//! Package globs against an independent reference matcher.
//!
//! The reference is a plain backtracking matcher over characters, written from the rules
//! `PackagePattern` documents and not from feedkey's code: `*` any run, `?` one
//! character, `[...]`/`[!...]`/`[^...]` classes with ranges, `{a,b}` alternatives, `\`
//! escapes. Without case it is the ordinary kind: the id and the pattern's literals are
//! compared ignoring ASCII case, and each member of a class is folded on its own. Package
//! ids are printable ASCII; any other id matches nothing.
//!
//! Properties: `PackageSet::matches` (case-sensitive and folded) agrees with the
//! reference; and a child scope that `Scope::covers` accepts never matches an id its
//! parent does not, by the reference or by feedkey's matcher.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use feedkey::{
    Feeds, NotCovered, PackagePattern, PackageSet, Packages, Permissions, Scope, ScopeError,
};
use proptest::prelude::*;
use proptest::strategy::{Union, ValueTree};
use proptest::test_runner::TestRunner;

// The reference matcher.

/// Whether `a` and `b` are the same character, ignoring ASCII case when `fold`.
fn same(a: char, b: char, fold: bool) -> bool {
    if fold {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// A class read by the reference: where it ends, whether it is negated, its ranges.
type Class = (usize, bool, Vec<(char, char)>);

/// The end of the class that starts at `p[0] == '['`, its members and whether it is
/// negated: after an optional `!` or `^`, the first character is a member even if it is
/// `]`; `x-y` is a range; a `-` just before the closing `]` is a member.
fn class(p: &[char]) -> Option<Class> {
    let mut i = 1;
    let negated = matches!(p.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut members = Vec::new();
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == ']' && !first {
            return Some((i + 1, negated, members));
        }
        first = false;
        match (p.get(i + 1), p.get(i + 2)) {
            (Some('-'), Some(&hi)) if hi != ']' => {
                members.push((c, hi));
                i += 3;
            }
            _ => {
                members.push((c, c));
                i += 1;
            }
        }
    }
}

/// Whether the brace-free pattern `p` matches all of `id`.
fn matches_here(p: &[char], id: &[char], fold: bool) -> bool {
    let Some(&head) = p.first() else {
        return id.is_empty();
    };
    match head {
        '*' => (0..=id.len()).any(|k| matches_here(&p[1..], &id[k..], fold)),
        '?' => !id.is_empty() && matches_here(&p[1..], &id[1..], fold),
        '[' => {
            let Some((end, negated, members)) = class(p) else {
                return false;
            };
            let Some(&c) = id.first() else {
                return false;
            };
            // Each member folded on its own: walk the range, compare each character.
            let inside = members
                .iter()
                .any(|&(lo, hi)| (lo..=hi).any(|m| same(m, c, fold)));
            inside != negated && matches_here(&p[end..], &id[1..], fold)
        }
        '\\' => {
            let Some(&lit) = p.get(1) else { return false };
            id.first().is_some_and(|&c| same(lit, c, fold)) && matches_here(&p[2..], &id[1..], fold)
        }
        lit => {
            id.first().is_some_and(|&c| same(lit, c, fold)) && matches_here(&p[1..], &id[1..], fold)
        }
    }
}

/// Where the element starting at `p[i]` ends, skipping a class or an escape whole.
fn skip(p: &[char], i: usize) -> usize {
    match p[i] {
        '\\' => i + 2,
        '[' => class(&p[i..]).map_or(i + 1, |(end, _, _)| i + end),
        _ => i + 1,
    }
}

/// The pattern with its alternations spelled out: a list of brace-free patterns.
fn expand(p: &[char]) -> Vec<Vec<char>> {
    // The first top-level `{`.
    let mut i = 0;
    while i < p.len() && p[i] != '{' {
        i = skip(p, i);
    }
    if i >= p.len() {
        return vec![p.to_vec()];
    }
    // Its alternatives, split at top-level commas, up to the matching `}`.
    let mut depth = 0;
    let mut alternatives = Vec::new();
    let mut start = i + 1;
    let mut j = i;
    let end = loop {
        match p[j] {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    alternatives.push(&p[start..j]);
                    break j;
                }
            }
            ',' if depth == 1 => {
                alternatives.push(&p[start..j]);
                start = j + 1;
            }
            _ => {}
        }
        j = skip(p, j);
    };
    let mut out = Vec::new();
    for alternative in alternatives {
        let mut spelled = p[..i].to_vec();
        spelled.extend_from_slice(alternative);
        spelled.extend_from_slice(&p[end + 1..]);
        out.extend(expand(&spelled));
    }
    out
}

/// The reference: does `pattern` match `id`, ignoring case when `fold`?
fn reference(pattern: &str, id: &str, fold: bool) -> bool {
    if !id.chars().all(|c| c.is_ascii_graphic()) {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let id: Vec<char> = id.chars().collect();
    expand(&p).iter().any(|p| matches_here(p, &id, fold))
}

#[test]
fn the_reference_is_itself_right() {
    let rows: &[(&str, &str, bool, bool)] = &[
        ("a*c", "abbc", false, true),
        ("a?c", "ac", false, false),
        ("[a-c]x", "Bx", true, true),
        ("[a-c]x", "Bx", false, false),
        ("[!a-c]x", "Bx", true, false),
        ("[]a]", "]", false, true),
        ("[a-]", "-", false, true),
        ("[0-Z]", "_", true, false),
        ("[0-Z]", "q", true, true),
        ("{a,b{c,d}}e", "bde", false, true),
        ("{a,b{c,d}}e", "be", false, false),
        ("\\*{\\,,x}", "*,", false, true),
        ("[{]x{a,b}", "{xb", false, true),
        ("??", "\u{df}", false, false),
    ];
    for &(p, id, fold, want) in rows {
        assert_eq!(reference(p, id, fold), want, "{p:?} on {id:?}, fold {fold}");
    }
}

// Patterns, as trees, so ids can be made that match them.

#[derive(Debug, Clone)]
enum El {
    /// A character, written escaped when `escape` (or when it must be).
    Lit(char, bool),
    Any,
    Star,
    /// A class: negation (`None`, `!` or `^`), members, whether `-` is a member (written
    /// last) and whether `]` is (written first).
    Class {
        negation: Option<char>,
        members: Vec<(char, char)>,
        dash: bool,
        close: bool,
    },
    Alt(Vec<Vec<El>>),
}

/// Characters in literals and class members: letters on either side of the `[\]^_`` gap,
/// digits, and what is special to globs, paths and ids.
const CHARS: &[char] = &[
    'a', 'b', 'q', 'z', 'A', 'B', 'Q', 'Z', '0', '9', '@', '_', '[', '\\', '^', '`', '/', '.', '!',
    '{', '}', ',', '*', '?', '~', '\'',
];

/// Characters in ids: the above, `]` and `-`, and some an id must not match with.
const ID_CHARS: &[char] = &[
    'a', 'b', 'q', 'z', 'A', 'B', 'Q', 'Z', '0', '9', '@', '_', '[', '\\', '^', '`', '/', '.', '!',
    '{', '}', ',', '*', '?', '~', ']', '-', '\'',
];

const STRANGE: &[char] = &[
    '\u{df}', '\u{e9}', '\u{c9}', '\u{212A}', '\u{130}', '\u{17F}', ' ', '\t',
];

fn render(els: &[El], out: &mut String) {
    for el in els {
        match el {
            El::Lit(c, escape) => {
                if *escape || "*?[]{}\\,".contains(*c) {
                    out.push('\\');
                }
                out.push(*c);
            }
            El::Any => out.push('?'),
            El::Star => out.push('*'),
            El::Class {
                negation,
                members,
                dash,
                close,
            } => {
                out.push('[');
                if let Some(n) = negation {
                    out.push(*n);
                }
                if *close {
                    out.push(']');
                }
                for (i, &(lo, hi)) in members.iter().enumerate() {
                    // A first member of `!` or `^` would be read as a negation.
                    if i == 0 && !close && negation.is_none() && matches!(lo, '!' | '^') {
                        out.push('a');
                    }
                    out.push(lo);
                    if hi != lo {
                        out.push('-');
                        out.push(hi);
                    }
                }
                if *dash || (members.is_empty() && !close) {
                    out.push('-');
                }
                out.push(']');
            }
            El::Alt(alternatives) => {
                out.push('{');
                for (i, alt) in alternatives.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    render(alt, out);
                }
                out.push('}');
            }
        }
    }
}

fn text(els: &[El]) -> String {
    let mut out = String::new();
    render(els, &mut out);
    out
}

fn lit() -> impl Strategy<Value = char> {
    prop::sample::select(CHARS)
}

fn leaf() -> impl Strategy<Value = El> {
    let range = (lit(), lit()).prop_map(|(a, b)| if a <= b { (a, b) } else { (b, a) });
    let member = prop_oneof![3 => lit().prop_map(|c| (c, c)), 2 => range];
    let class = (
        prop::option::of(prop::sample::select(vec!['!', '^'])),
        prop::collection::vec(member, 0..4),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(negation, members, dash, close)| El::Class {
            negation,
            members,
            dash,
            close,
        });
    prop_oneof![
        6 => (lit(), prop::bool::weighted(0.1)).prop_map(|(c, e)| El::Lit(c, e)),
        2 => Just(El::Any),
        2 => Just(El::Star),
        3 => class,
    ]
}

fn run(el: impl Strategy<Value = El>) -> impl Strategy<Value = Vec<El>> {
    prop::collection::vec(el, 1..5)
}

/// A pattern: literals, `?`, `*`, classes, and alternations nested at most twice.
fn pattern() -> impl Strategy<Value = Vec<El>> {
    let el = leaf().prop_recursive(2, 24, 3, |inner| {
        prop_oneof![
            3 => leaf(),
            1 => prop::collection::vec(run(inner), 2..4).prop_map(El::Alt),
        ]
    });
    prop::collection::vec(el, 1..7).prop_filter("a pattern fits PackagePattern::MAX_LEN", |els| {
        text(els).len() <= PackagePattern::MAX_LEN / 2
    })
}

fn id_char() -> impl Strategy<Value = char> {
    prop_oneof![
        20 => prop::sample::select(ID_CHARS),
        1 => prop::sample::select(STRANGE),
    ]
}

fn flip(c: char, upper: bool) -> char {
    if upper {
        c.to_ascii_uppercase()
    } else {
        c.to_ascii_lowercase()
    }
}

/// Ids made to match `els` (often, not always: a class sample may miss, a case may flip).
fn sample(els: &[El]) -> BoxedStrategy<String> {
    let parts: Vec<BoxedStrategy<String>> = els.iter().map(sample_el).collect();
    parts.prop_map(|parts| parts.concat()).boxed()
}

fn sample_el(el: &El) -> BoxedStrategy<String> {
    match el {
        El::Lit(c, _) => {
            let c = *c;
            prop_oneof![3 => Just(c.to_string()), 1 => any::<bool>().prop_map(move |u| flip(c, u).to_string())]
                .boxed()
        }
        El::Any => id_char().prop_map(String::from).boxed(),
        El::Star => prop::collection::vec(id_char(), 0..4)
            .prop_map(|cs| cs.into_iter().collect())
            .boxed(),
        El::Class {
            members,
            dash,
            close,
            ..
        } => {
            let mut inside: Vec<char> = members.iter().flat_map(|&(lo, hi)| lo..=hi).collect();
            if *dash {
                inside.push('-');
            }
            if *close {
                inside.push(']');
            }
            inside.push('a');
            (
                prop_oneof![3 => prop::sample::select(inside), 1 => id_char()],
                any::<bool>(),
                prop::bool::weighted(0.3),
            )
                .prop_map(|(c, upper, flipped)| {
                    if flipped { flip(c, upper) } else { c }.to_string()
                })
                .boxed()
        }
        El::Alt(alternatives) => Union::new(alternatives.iter().map(|alt| sample(alt))).boxed(),
    }
}

/// Ids for the given patterns: made to match one of them, or anything.
fn ids_for(patterns: &[Vec<El>]) -> impl Strategy<Value = Vec<String>> + use<> {
    let made = Union::new(patterns.iter().map(|p| sample(p)));
    let random = prop::collection::vec(id_char(), 0..8).prop_map(|cs| cs.into_iter().collect());
    prop::collection::vec(prop_oneof![3 => made, 1 => random], 1..12).prop_map(|ids| {
        // `..` and ids ending in `/..` are refused before any pattern sees them.
        ids.into_iter()
            .filter(|id: &String| id != ".." && !id.ends_with("/.."))
            .collect()
    })
}

fn patterns_and_ids() -> impl Strategy<Value = (Vec<String>, Vec<String>)> {
    prop::collection::vec(pattern(), 1..4).prop_flat_map(|patterns| {
        let texts: Vec<String> = patterns.iter().map(|p| text(p)).collect();
        (Just(texts), ids_for(&patterns))
    })
}

fn set(patterns: &[String], fold: bool) -> PackageSet {
    if fold {
        PackageSet::new(patterns)
    } else {
        PackageSet::case_sensitive(patterns)
    }
    .unwrap_or_else(|e| panic!("{patterns:?}: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn package_sets_match_what_the_reference_matches((patterns, ids) in patterns_and_ids()) {
        for fold in [false, true] {
            let set = set(&patterns, fold);
            for id in &ids {
                let want = patterns.iter().any(|p| reference(p, id, fold));
                prop_assert_eq!(
                    set.matches(id),
                    want,
                    "{:?} on {:?}, case-insensitive: {}", patterns, id, fold
                );
            }
        }
    }
}

#[test]
fn the_match_property_is_not_vacuous() {
    // Enough ids match, enough do not, and enough match one way only with case folded.
    let mut runner = TestRunner::deterministic();
    let strategy = patterns_and_ids();
    let (mut matched, mut by_case, mut total) = (0, 0, 0);
    for _ in 0..400 {
        let (patterns, ids) = strategy.new_tree(&mut runner).unwrap().current();
        for id in &ids {
            total += 1;
            let folded = patterns.iter().any(|p| reference(p, id, true));
            let exact = patterns.iter().any(|p| reference(p, id, false));
            matched += usize::from(folded);
            by_case += usize::from(folded != exact);
        }
    }
    assert!(
        matched * 5 > total && matched * 5 < total * 4,
        "{matched} of {total} ids match"
    );
    assert!(
        by_case * 50 > total,
        "{by_case} of {total} ids match only with case folded"
    );
}

// `Scope::covers`.

/// A child made from a parent pattern: the same, narrower, longer, recased, or other.
fn child_of(parent: Vec<El>) -> BoxedStrategy<Vec<El>> {
    let same = Just(parent.clone());
    let narrower = {
        let parent = parent.clone();
        (any::<prop::sample::Index>(), lit()).prop_map(move |(at, c)| {
            let mut child = parent.clone();
            let i = at.index(child.len());
            child[i] = match &child[i] {
                // Fewer class members, or one literal where `?` or `*` was.
                El::Class {
                    negation: None,
                    members,
                    dash,
                    close,
                } if members.len() > 1 => El::Class {
                    negation: None,
                    members: members[1..].to_vec(),
                    dash: *dash,
                    close: *close,
                },
                El::Class {
                    negation: Some(n),
                    members,
                    dash,
                    close,
                } => {
                    let mut members = members.clone();
                    members.push((c, c));
                    El::Class {
                        negation: Some(*n),
                        members,
                        dash: *dash,
                        close: *close,
                    }
                }
                El::Alt(alternatives) if alternatives.len() > 1 => {
                    El::Alt(alternatives[1..].to_vec())
                }
                El::Any | El::Star => El::Lit(c, false),
                other => other.clone(),
            };
            child
        })
    };
    let longer = {
        let parent = parent.clone();
        prop::collection::vec(leaf(), 1..4).prop_map(move |more| {
            let mut child = parent.clone();
            // Before a trailing `*`, or in place of it.
            if matches!(child.last(), Some(El::Star)) {
                let star = child.pop();
                child.extend(more);
                child.extend(star);
            } else {
                child.extend(more);
            }
            child
        })
    };
    let recased = {
        let parent = parent.clone();
        any::<bool>().prop_map(move |upper| {
            parent
                .iter()
                .map(|el| match el {
                    El::Lit(c, e) => El::Lit(flip(*c, upper), *e),
                    other => other.clone(),
                })
                .collect()
        })
    };
    prop_oneof![2 => same, 3 => narrower, 3 => longer, 2 => recased, 1 => pattern()].boxed()
}

#[derive(Debug, Clone)]
struct Family {
    parent: Vec<String>,
    parent_fold: bool,
    child: Vec<String>,
    child_fold: bool,
    ids: Vec<String>,
}

fn family() -> impl Strategy<Value = Family> {
    (
        prop::collection::vec(pattern(), 1..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(|(parents, parent_fold, child_fold)| {
            let children = prop::collection::vec(
                Union::new(parents.iter().map(|p| child_of(p.clone()))),
                1..3,
            );
            (Just(parents), Just(parent_fold), children, Just(child_fold))
        })
        .prop_flat_map(|(parents, parent_fold, children, child_fold)| {
            let mut all = parents.clone();
            all.extend(children.iter().cloned());
            (
                Just(parents.iter().map(|p| text(p)).collect::<Vec<_>>()),
                Just(parent_fold),
                Just(children.iter().map(|p| text(p)).collect::<Vec<_>>()),
                Just(child_fold),
                ids_for(&all),
            )
        })
        .prop_map(|(parent, parent_fold, child, child_fold, ids)| Family {
            parent,
            parent_fold,
            child,
            child_fold,
            ids,
        })
}

fn scope(patterns: &[String], fold: bool) -> Scope {
    Scope::new(
        Permissions::FULL,
        Feeds::Any,
        Packages::Only(set(patterns, fold)),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn a_covered_child_never_matches_an_id_its_parent_does_not(f in family()) {
        let parent = scope(&f.parent, f.parent_fold);
        let child = scope(&f.child, f.child_fold);
        if parent.covers(&child).is_ok() {
            for id in &f.ids {
                let by_reference = |patterns: &[String], fold| {
                    patterns.iter().any(|p| reference(p, id, fold))
                };
                prop_assert!(
                    !by_reference(&f.child, f.child_fold) || by_reference(&f.parent, f.parent_fold),
                    "covered, yet the child matches {:?} and the parent does not (reference)", id
                );
                prop_assert!(
                    !child.packages().allows(id) || parent.packages().allows(id),
                    "covered, yet the child matches {:?} and the parent does not (feedkey)", id
                );
            }
        }
    }
}

#[test]
fn the_covers_property_is_not_vacuous() {
    let mut runner = TestRunner::deterministic();
    let strategy = family();
    let (mut covered, mut total) = (0, 0);
    for _ in 0..400 {
        let f = strategy.new_tree(&mut runner).unwrap().current();
        total += 1;
        if scope(&f.parent, f.parent_fold)
            .covers(&scope(&f.child, f.child_fold))
            .is_ok()
        {
            covered += 1;
        }
    }
    assert!(
        covered * 5 > total,
        "only {covered} of {total} children covered"
    );
}

// The audit's cases, by name.

fn folded(patterns: &[&str]) -> PackageSet {
    PackageSet::new(patterns).unwrap()
}

fn exact(patterns: &[&str]) -> PackageSet {
    PackageSet::case_sensitive(patterns).unwrap()
}

#[test]
fn a_folded_range_does_not_admit_what_lies_between_the_cases() {
    let set = folded(&["acme.[0-Z]"]);
    for between in ["acme.[", "acme.\\", "acme.]", "acme.^", "acme._", "acme.`"] {
        assert!(!set.matches(between), "{between}");
    }
    for inside in ["acme.0", "acme.@", "acme.Q", "acme.q", "ACME.z"] {
        assert!(set.matches(inside), "{inside}");
    }
}

#[test]
fn a_folded_negated_class_refuses_both_cases_of_its_letters() {
    let set = folded(&["a[!0-_]"]);
    assert!(!set.matches("Aa"));
    assert!(!set.matches("aA"));
    assert!(set.matches("a`"));
    let set = folded(&["x[!a-z]"]);
    assert!(!set.matches("xA"));
    assert!(set.matches("X_"));
}

#[test]
fn a_case_sensitive_child_is_not_covered_by_a_folded_negation() {
    let parent = Scope::new(
        Permissions::FULL,
        Feeds::Any,
        Packages::Only(folded(&["x[!a-z]"])),
    )
    .unwrap();
    let child = Scope::new(
        Permissions::FULL,
        Feeds::Any,
        Packages::Only(exact(&["x[!a-z]"])),
    )
    .unwrap();
    // The child matches `xA`; the parent does not.
    assert!(child.packages().allows("xA"));
    assert!(!parent.packages().allows("xA"));
    assert_eq!(
        parent.covers(&child),
        Err(NotCovered::Package("x[!a-z]".to_owned()))
    );
}

#[test]
fn a_question_mark_is_one_character_and_ids_are_ascii() {
    for set in [
        folded(&["??", "?", "*", "[!a]"]),
        exact(&["??", "?", "*", "[!a]"]),
    ] {
        // `ß` is one character of two bytes; `é` likewise. Neither matches anything.
        assert!(!set.matches("\u{df}"));
        assert!(!set.matches("\u{e9}"));
        assert!(!set.matches("caf\u{e9}"));
        assert!(set.matches("ab"));
        assert!(set.matches("b"));
    }
    // Spaces and control characters are not in ids either.
    assert!(!folded(&["*"]).matches("a b"));
    assert!(!folded(&["*"]).matches("a\nb"));
}

#[test]
fn non_ascii_patterns_are_refused_with_a_reason() {
    for bad in ["\u{dc}n\u{ef}c\u{f6}d\u{e9}.*", "caf[\u{e9}]", "a\u{a0}b"] {
        let e = PackagePattern::new(bad).unwrap_err();
        assert!(matches!(e, ScopeError::InvalidPattern(_)), "{bad:?}");
        assert!(e.to_string().contains("printable ASCII"), "{e}");
    }
}

#[test]
fn a_double_star_is_one_star() {
    let set = folded(&["**/core", "@acme/**/util"]);
    // globset's path reading would let `**/` match nothing at all.
    assert!(!set.matches("core"));
    assert!(set.matches("@contoso/core"));
    assert!(!set.matches("@acme/util"));
    assert!(set.matches("@acme/x/util"));
}
