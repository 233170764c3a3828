//! Package patterns as feedkey reads them: parsed here, matched by globset.
//!
//! A pattern becomes a list of [`Node`]s in which every single-character element (a
//! literal, `?`, a class) is the exact set of id characters it admits, with the set's
//! case rule already applied: in a case-insensitive set each member of a class is folded
//! on its own, never the end points of a range. That list is what the pattern means; it
//! is written back out in globset's syntax for matching ([`to_globset`]) and compared
//! element by element to prove one pattern inside another ([`covers`]).
//!
//! Over 500 lines because the parser, the writer for globset and the containment proof
//! share one node type and read best together.

/// A set of id characters: bit `c` stands for the ASCII character `c`.
pub(super) type Chars = u128;

/// Every character a package id may hold: printable ASCII, `!` to `~`.
pub(super) const ID_CHARS: Chars = span(b'!', b'~');
const UPPER: Chars = span(b'A', b'Z');
const LOWER: Chars = span(b'a', b'z');

/// The characters `lo..=hi` (both ASCII, `lo <= hi`).
const fn span(lo: u8, hi: u8) -> Chars {
    (Chars::MAX >> (127 - hi as u32)) & (Chars::MAX << lo as u32)
}

/// The set plus the other case of each letter in it.
fn with_both_cases(set: Chars) -> Chars {
    set | ((set & UPPER) << 32) | ((set & LOWER) >> 32)
}

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    /// `*`: any run of characters (a run of stars is one star).
    Star,
    /// One character from the set: a literal, `?` or a class. An empty set (such as
    /// `[!!-~]`) matches nothing.
    One(Chars),
    /// `{a,b}`: one of the alternatives, none of them empty (an empty one is dropped,
    /// and an alternation with no other is no element at all).
    Alt(Vec<Vec<Node>>),
}

/// How a run of a pattern ended.
enum End {
    Eof,
    Comma,
    Close,
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    fold: bool,
}

/// The pattern's elements, with literals and class members folded when `fold`. The
/// syntax, and every error, is globset's (with backslash escapes, `*` crossing `/`),
/// so a pattern globset compiled before still means what it said.
///
/// # Errors
/// What is wrong with the pattern, in globset's words.
pub(super) fn parse(pattern: &str, fold: bool) -> Result<Vec<Node>, String> {
    let mut parser = Parser {
        chars: pattern.chars().peekable(),
        fold,
    };
    match parser.run(0)? {
        (nodes, End::Eof) => Ok(nodes),
        // A top-level run ends only at the end of the pattern.
        (_, End::Comma | End::Close) => Err(UNOPENED.to_owned()),
    }
}

const UNOPENED: &str = "unopened alternate group; missing '{' (maybe escape '}' with '[}]'?)";
const UNCLOSED: &str = "unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)";

impl Parser<'_> {
    /// The characters `c` stands for as a literal.
    fn literal(&self, c: char) -> Result<Chars, String> {
        let set = ascii(c)?;
        Ok(if self.fold { with_both_cases(set) } else { set })
    }

    /// A run of elements, up to the end of the pattern or, inside `depth` braces, up
    /// to the `,` or `}` that ends an alternative.
    fn run(&mut self, depth: usize) -> Result<(Vec<Node>, End), String> {
        let mut nodes = Vec::new();
        loop {
            let Some(c) = self.chars.next() else {
                if depth > 0 {
                    return Err(UNCLOSED.to_owned());
                }
                return Ok((nodes, End::Eof));
            };
            let node = match c {
                '?' => Node::One(ID_CHARS),
                '*' if nodes.last() == Some(&Node::Star) => continue,
                '*' => Node::Star,
                '[' => self.class()?,
                '{' => match self.alternation(depth + 1)? {
                    Some(alt) => alt,
                    None => continue,
                },
                '}' if depth > 0 => return Ok((nodes, End::Close)),
                '}' => return Err(UNOPENED.to_owned()),
                ',' if depth > 0 => return Ok((nodes, End::Comma)),
                '\\' => match self.chars.next() {
                    Some(c) => Node::One(self.literal(c)?),
                    None => return Err("dangling '\\'".to_owned()),
                },
                c => Node::One(self.literal(c)?),
            };
            nodes.push(node);
        }
    }

    /// The alternatives after a `{`, or `None` when all of them are empty.
    fn alternation(&mut self, depth: usize) -> Result<Option<Node>, String> {
        let mut alternatives = Vec::new();
        loop {
            let (nodes, end) = self.run(depth)?;
            if !nodes.is_empty() {
                alternatives.push(nodes);
            }
            match end {
                End::Comma => {}
                End::Close => break,
                End::Eof => return Err(UNCLOSED.to_owned()),
            }
        }
        Ok((!alternatives.is_empty()).then_some(Node::Alt(alternatives)))
    }

    /// The class after a `[`, as globset reads it: `!` or `^` first negates; `]`
    /// first and `-` first or last are members; `a-c` is a range, and a `-` after a
    /// range extends it (`[a-b-c]` is `[a-c]`); `\` is a member.
    fn class(&mut self) -> Result<Node, String> {
        let negated = matches!(self.chars.peek(), Some('!' | '^'));
        if negated {
            self.chars.next();
        }
        let mut ranges: Vec<(char, char)> = Vec::new();
        let mut first = true;
        let mut in_range = false;
        loop {
            let Some(c) = self.chars.next() else {
                return Err("unclosed character class; missing ']'".to_owned());
            };
            match (c, ranges.last_mut()) {
                (']', _) if !first => break,
                ('-', _) if !first && !in_range => in_range = true,
                (c, Some(last)) if in_range => {
                    if c < last.0 {
                        return Err(format!("invalid range; {:?} > {c:?}", last.0));
                    }
                    last.1 = c;
                    in_range = false;
                }
                (c, _) => ranges.push((c, c)),
            }
            first = false;
        }
        if in_range {
            ranges.push(('-', '-'));
        }
        let mut members: Chars = 0;
        for (lo, hi) in ranges {
            let (lo, hi) = (ascii_byte(lo)?, ascii_byte(hi)?);
            members |= span(lo, hi);
        }
        // Fold each member, so `[0-Z]` holds `a` to `z` but not `[`..`` ` ``.
        if self.fold {
            members = with_both_cases(members);
        }
        Ok(Node::One(if negated {
            ID_CHARS & !members
        } else {
            ID_CHARS & members
        }))
    }
}

fn ascii_byte(c: char) -> Result<u8, String> {
    u8::try_from(c)
        .ok()
        .filter(u8::is_ascii_graphic)
        .ok_or_else(|| format!("{c:?} is not a printable ASCII character"))
}

fn ascii(c: char) -> Result<Chars, String> {
    ascii_byte(c).map(|b| 1 << b)
}

/// The pattern in globset's syntax, for ids that are lowercased first when `fold`,
/// or `None` when it can match no id.
pub(super) fn to_globset(nodes: &[Node], fold: bool) -> Option<String> {
    let mut out = String::new();
    write_run(nodes, fold, &mut out).then_some(out)
}

/// Writes the run; false when it can match nothing.
fn write_run(nodes: &[Node], fold: bool, out: &mut String) -> bool {
    nodes.iter().all(|node| write_node(node, fold, out))
}

fn write_node(node: &Node, fold: bool, out: &mut String) -> bool {
    match node {
        // Never two in a row: globset gives `**` a path meaning.
        Node::Star => out.push('*'),
        Node::One(set) => {
            // A folded set sees lowercased ids only.
            let (set, any) = if fold {
                (set & !UPPER, ID_CHARS & !UPPER)
            } else {
                (*set, ID_CHARS)
            };
            match set.count_ones() {
                0 => return false,
                1 => write_literal(set.trailing_zeros(), out),
                _ if set == any => out.push('?'),
                _ => write_class(set, out),
            }
        }
        Node::Alt(alternatives) => {
            let written: Vec<String> = alternatives
                .iter()
                .filter_map(|alt| {
                    let mut text = String::new();
                    write_run(alt, fold, &mut text).then_some(text)
                })
                .collect();
            if written.is_empty() {
                return false;
            }
            out.push('{');
            out.push_str(&written.join(","));
            out.push('}');
        }
    }
    true
}

fn char_of(code: u32) -> char {
    char::from_u32(code).unwrap_or('\u{FFFD}')
}

fn write_literal(code: u32, out: &mut String) {
    let c = char_of(code);
    if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\' | ',') {
        out.push('\\');
    }
    out.push(c);
}

/// Writes a class of two or more members so that globset reads exactly `set`: `]`
/// goes first, `-` first or last, and no member that starts the class is `!` or `^`
/// (which would negate it). Inside a class globset has no escapes.
fn write_class(set: Chars, out: &mut String) {
    let close = set & (1 << b']') != 0;
    let dash = set & (1 << b'-') != 0;
    let mut ranges = ranges_of(set & !(1 << b']') & !(1 << b'-'));
    let mut head = String::new();
    let mut tail = String::new();
    if close {
        head.push(']');
        if dash {
            tail.push('-');
        }
    } else if dash {
        head.push('-');
    } else if let Some(i) = ranges.iter().position(|&(lo, _)| !is_negation(lo)) {
        // Start with a range that cannot be read as a negation.
        ranges.swap(0, i);
    } else if let Some(i) = ranges.iter().position(|&(lo, hi)| lo < hi) {
        // Every range starts with `!` or `^`: start with the rest of one, and write
        // its first character last.
        if let Some(range) = ranges.get_mut(i) {
            tail.push(char_of(range.0));
            range.0 += 1;
            ranges.swap(0, i);
        }
    } else {
        // Only `!` and `^`: an alternation says it.
        out.push_str("{!,^}");
        return;
    }
    out.push('[');
    out.push_str(&head);
    for (lo, hi) in ranges {
        out.push(char_of(lo));
        if hi > lo {
            if hi > lo + 1 {
                out.push('-');
            }
            out.push(char_of(hi));
        }
    }
    out.push_str(&tail);
    out.push(']');
}

fn is_negation(code: u32) -> bool {
    code == u32::from(b'!') || code == u32::from(b'^')
}

/// The set as maximal runs `(lo, hi)` of character codes, in order.
fn ranges_of(mut set: Chars) -> Vec<(u32, u32)> {
    let mut ranges = Vec::new();
    while set != 0 {
        let lo = set.trailing_zeros();
        let run = (set >> lo).trailing_ones();
        ranges.push((lo, lo + run - 1));
        set &= !(Chars::MAX >> (128 - run) << lo);
    }
    ranges
}

/// The one id the pattern stands for (lowercased when `fold`), if it has no `*`, no
/// alternation and every element admits one character up to case.
pub(super) fn as_id(nodes: &[Node], fold: bool) -> Option<String> {
    nodes
        .iter()
        .map(|node| match node {
            Node::One(set) => {
                let set = if fold { set & !UPPER } else { *set };
                (set.count_ones() == 1).then(|| char_of(set.trailing_zeros()))
            }
            Node::Star | Node::Alt(_) => None,
        })
        .collect()
}

/// Whether every id `child` matches is matched by `parent`, proven element by
/// element: each child element admits no more than the parent's at the same place
/// (a set within the parent's set, alternatives each within one of the parent's, any
/// element under a `*`), and a parent that ends in `*` takes whatever rest the child
/// has. Both lists carry their own case rule, so a case-sensitive child is compared
/// with what a folded parent really admits. Anything else is `false`, never a guess.
pub(super) fn covers(parent: &[Node], child: &[Node]) -> bool {
    match (parent, child) {
        // A trailing `*` matches whatever the rest of the child does.
        ([Node::Star], _) => true,
        ([], []) => true,
        ([p, parent @ ..], [c, child @ ..]) => node_covers(p, c) && covers(parent, child),
        _ => false,
    }
}

fn node_covers(parent: &Node, child: &Node) -> bool {
    match (parent, child) {
        // `*` matches any run, so any one element of the child.
        (Node::Star, _) => true,
        (Node::One(p), Node::One(c)) => c & !p == 0,
        (Node::Alt(ps), Node::Alt(cs)) => cs.iter().all(|c| ps.iter().any(|p| covers(p, c))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so the tests need no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap()
        }
        fn pick(&mut self, from: &[u8]) -> char {
            char::from(from[self.below(from.len())])
        }
    }

    fn globset(source: &str) -> globset::GlobMatcher {
        globset::GlobBuilder::new(source)
            .literal_separator(false)
            .backslash_escape(true)
            .empty_alternates(false)
            .build()
            .unwrap()
            .compile_matcher()
    }

    fn members(set: Chars) -> Vec<char> {
        (0u8..128)
            .filter(|&b| set & (1 << b) != 0)
            .map(char::from)
            .collect()
    }

    #[test]
    fn every_class_is_written_so_globset_reads_exactly_its_members() {
        let special = b"!^]-[\\,{}*?a";
        let mut sets: Vec<Chars> = Vec::new();
        for &a in special {
            for &b in special {
                for &c in b"!^-]x" {
                    sets.push((1 << a) | (1 << b) | (1 << c));
                }
                sets.push((1 << a) | (1 << b));
            }
        }
        sets.push(ID_CHARS);
        sets.push(ID_CHARS & !UPPER);
        sets.push(span(b'!', b'#') | span(b'^', b'_'));
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..2000 {
            let mut set = u128::from(rng.next()) << 64 | u128::from(rng.next());
            // Sparse and dense sets both.
            if rng.below(2) == 0 {
                set &= u128::from(rng.next()) << 64 | u128::from(rng.next());
            }
            sets.push(set & ID_CHARS);
        }
        for set in sets {
            if set.count_ones() < 2 {
                continue;
            }
            let mut text = String::new();
            write_class(set, &mut text);
            let matcher = globset(&text);
            for b in b'!'..=b'~' {
                let c = char::from(b);
                assert_eq!(
                    matcher.is_match(c.to_string()),
                    set & (1 << b) != 0,
                    "{text:?} for {:?} and {c:?}",
                    members(set)
                );
            }
        }
    }

    /// Random patterns over the characters that mean something to a glob.
    fn random_pattern(rng: &mut Rng) -> String {
        let alphabet = b"aBz*?[]!^-{},\\/.";
        (0..1 + rng.below(10)).map(|_| rng.pick(alphabet)).collect()
    }

    #[test]
    fn the_parser_accepts_what_globset_accepts() {
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            let pattern = random_pattern(&mut rng);
            let globset_ok = globset::GlobBuilder::new(&pattern)
                .literal_separator(false)
                .backslash_escape(true)
                .empty_alternates(false)
                .build()
                .is_ok();
            assert_eq!(parse(&pattern, false).is_ok(), globset_ok, "{pattern:?}");
        }
    }

    #[test]
    fn case_sensitive_patterns_mean_what_globset_made_of_them_but_for_double_stars() {
        let mut rng = Rng(11);
        let id_alphabet = b"aBz]!^-{},\\/.";
        let mut compared = 0;
        for _ in 0..20_000 {
            let pattern = random_pattern(&mut rng);
            // globset gives `**` a path meaning; feedkey reads it as `*`.
            if pattern.contains("**") {
                continue;
            }
            let Ok(nodes) = parse(&pattern, false) else {
                continue;
            };
            let before = globset(&pattern);
            let after = to_globset(&nodes, false).map(|source| globset(&source));
            for _ in 0..20 {
                let id: String = (0..rng.below(8)).map(|_| rng.pick(id_alphabet)).collect();
                // `..` and ids ending in `/..` are a path step to globset.
                if id == ".." || id.ends_with("/..") {
                    continue;
                }
                let now = after.as_ref().is_some_and(|m| m.is_match(&id));
                assert_eq!(now, before.is_match(&id), "{pattern:?} on {id:?}");
                compared += 1;
            }
        }
        assert!(compared > 100_000);
    }

    #[test]
    fn one_element_within_another_is_proven_and_nothing_else() {
        let rows: &[(&str, bool, &str, bool, bool)] = &[
            // (parent, parent folded, child, child folded, covered)
            ("x[!a-z]", true, "x[!a-z]", false, false),
            ("x[!a-z]", true, "x[!a-z]", true, true),
            ("x[!a-z]", false, "x[!a-zA-Z]", false, true),
            ("acme.[0-Z]", true, "acme.[0-z]", false, false),
            ("acme.[0-Z]", true, "acme.[0-Z]", false, true),
            ("acme.[a-z]", false, "acme.[b-y]", false, true),
            ("acme.[a-z]", false, "acme.?", false, false),
            ("acme.*", true, "ACME.{a,b*}", true, true),
            ("acme.{a,b}*", true, "acme.{b,a}x", true, true),
            ("acme.{a,b}", true, "acme.{a,c}", true, false),
            ("a*b", true, "a?b", true, true),
            ("a*b", true, "a??b", true, false),
            ("*", true, "**/x", false, true),
        ];
        for &(parent, parent_fold, child, child_fold, covered) in rows {
            let parent_nodes = parse(parent, parent_fold).unwrap();
            let child_nodes = parse(child, child_fold).unwrap();
            assert_eq!(
                covers(&parent_nodes, &child_nodes),
                covered,
                "{parent:?} (folded: {parent_fold}) over {child:?} (folded: {child_fold})"
            );
        }
    }

    #[test]
    fn deep_alternations_are_compared_quickly() {
        let deep = format!("{}z{}", "{a,".repeat(60), "}".repeat(60));
        let nodes = parse(&deep, true).unwrap();
        assert!(covers(&nodes, &nodes));
        let wide = format!("{{{}}}", vec!["{a,b}"; 40].join(","));
        let nodes = parse(&wide, true).unwrap();
        assert!(covers(&nodes, &nodes));
    }
}
