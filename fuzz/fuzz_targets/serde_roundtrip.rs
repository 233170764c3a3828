//! Deserializing scopes and their parts, token ids and account ids from hostile JSON never
//! panics, and whatever parses serializes to JSON that parses back to an equal value (and
//! serializes to the same text again).
//!
//! Input: the bytes as text (the seeds are JSON documents), and the same bytes decoded as
//! a JSON document assembled from a small vocabulary of the keys and values these types
//! use, so that deep structure is reached quickly.

#![no_main]

use std::fmt::Debug;

use arbitrary::{Arbitrary, Unstructured};
use feedkey::{AccountId, Feeds, Networks, Packages, Permissions, Scope, TokenId};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

const WORDS: &[&str] = &[
    "permissions",
    "feeds",
    "packages",
    "networks",
    "only",
    "any",
    "patterns",
    "case_sensitive",
    "read",
    "push-new",
    "push-version",
    "unlist",
    "ci",
    "main",
    "contoso.*",
    "Contoso.Service.*",
    "{a,b}",
    "**/**",
    "10.0.0.0/8",
    "2001:db8::/32",
    "::ffff:10.1.2.3",
    "203.0.113.7",
    "10.1.2.3/16",
    "AAAAAAAAAAAAAAAAAAAAAA",
    "zw84FvooLiMzfyH8cyR6Vw",
    "alice",
];

#[derive(Arbitrary, Debug)]
enum Node {
    Null,
    Bool(bool),
    Number(i64),
    Float(f64),
    Word(u8),
    Str(String),
    Array(Vec<Node>),
    Object(Vec<(Key, Node)>),
}

#[derive(Arbitrary, Debug)]
enum Key {
    Word(u8),
    Str(String),
}

fn word(i: u8) -> &'static str {
    WORDS[usize::from(i) % WORDS.len()]
}

impl Node {
    fn to_value(&self, depth: usize) -> serde_json::Value {
        use serde_json::Value;
        if depth > 16 {
            return Value::Null;
        }
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::from(*n),
            Node::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Node::Word(i) => Value::from(word(*i)),
            Node::Str(s) => Value::from(s.as_str()),
            Node::Array(items) => {
                Value::Array(items.iter().map(|n| n.to_value(depth + 1)).collect())
            }
            Node::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let k = match k {
                            Key::Word(i) => word(*i).to_owned(),
                            Key::Str(s) => s.clone(),
                        };
                        (k, v.to_value(depth + 1))
                    })
                    .collect(),
            ),
        }
    }
}

fn round_trip<T>(text: &str)
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let Ok(value) = serde_json::from_str::<T>(text) else {
        return;
    };
    let json = serde_json::to_string(&value).expect("a parsed value serializes");
    let back: T = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("re-parse of {json:?} failed: {e}\n(from {text:?})"));
    assert_eq!(back, value, "round trip changed the value\njson: {json}");
    let again = serde_json::to_string(&back).expect("serializes");
    assert_eq!(again, json, "serialization is not stable");
    // Through a serde_json::Value too.
    let v = serde_json::to_value(&value).expect("to_value");
    let from_value: T = serde_json::from_value(v).expect("from_value of own output");
    assert_eq!(from_value, value);
}

fn check(text: &str) {
    round_trip::<Scope>(text);
    round_trip::<Feeds>(text);
    round_trip::<Packages>(text);
    round_trip::<Networks>(text);
    round_trip::<Permissions>(text);
    round_trip::<TokenId>(text);
    round_trip::<AccountId>(text);
    // A scope that parsed is usable: matching does not panic, and it covers itself.
    if let Ok(scope) = serde_json::from_str::<Scope>(text) {
        let _ = scope.packages().allows("Contoso.Service.Core");
        let _ = scope.feeds().allows("ci");
        let _ = scope.networks().allows(Some([10, 1, 2, 3].into()));
        assert_eq!(scope.covers(&scope), Ok(()));
    }
}

fuzz_target!(|data: &[u8]| {
    // The input as JSON text (the seeds)...
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    // ...and the same bytes decoded as a JSON document built from a vocabulary.
    if let Ok(node) = Node::arbitrary_take_rest(Unstructured::new(data)) {
        check(&node.to_value(0).to_string());
    }
});
