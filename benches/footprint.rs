//! Resident memory per token: a store filled with 200 000 tokens (descriptions of 24
//! bytes, no retired secrets), its resident set read from `/proc/self/statm` before and
//! after. Each case runs in a process of its own (this binary runs itself), so that one
//! case's freed memory is not counted in the next.
//!
//! - `memory-shared`: `MemoryStore`, every token with the same two-glob scope, each scope
//!   made separately (as a registry parses each request's), so only the store can share it.
//! - `memory-own`: `MemoryStore`, every token with a two-glob scope of its own.
//! - `sqlite-cache` (feature `sqlite`): the SQLite store's record cache, filled by reading
//!   each of 200 000 tokens (sharing one scope) once: bytes per cached record, beside
//!   the cache's capacity setting.
//!
//! Run with `cargo bench --bench footprint` (add `--features sqlite` for the cache). Linux
//! only (`/proc/self/statm`).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench reports a failure by panicking"
)]

use std::process::Command;

use feedkey::{
    AccountId, Expiry, Feedkey, Feeds, MemoryStore, NewToken, Packages, Permissions, Scope,
    TokenKey, TokenStore,
};

const TOKENS: usize = 200_000;
const DESCRIPTION: &str = "build agent for release!"; // 24 bytes

/// Resident bytes of this process now.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

fn scope(shared: bool, i: usize) -> Scope {
    let (a, b) = if shared {
        ("Contoso.Service.*".to_owned(), "Contoso.Tools.*".to_owned())
    } else {
        (
            format!("Contoso.Service{i}.*"),
            format!("Contoso.Tools{i}.*"),
        )
    };
    Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::only(["ci"]).expect("feeds"),
        Packages::only([a, b]).expect("packages"),
    )
    .expect("scope")
}

async fn fill<S: TokenStore>(keys: &Feedkey<S>, shared: bool) -> Vec<feedkey::TokenId> {
    let alice = AccountId::new("alice").expect("account");
    keys.create_account(&alice, Expiry::Never)
        .await
        .expect("account");
    let mut ids = Vec::with_capacity(TOKENS);
    for i in 0..TOKENS {
        let issued = keys
            .issue(&alice, NewToken::new(DESCRIPTION, scope(shared, i)))
            .await
            .expect("issue");
        ids.push(issued.token.id());
    }
    ids
}

fn key() -> TokenKey {
    TokenKey::new(1, &[7; 32])
}

/// Runs one case in this process; prints `bytes per token`.
async fn case(name: &str) -> f64 {
    match name {
        "memory-shared" | "memory-own" => {
            let keys = Feedkey::builder(MemoryStore::new(), key())
                .build()
                .expect("feedkey");
            let ids_capacity = TOKENS * std::mem::size_of::<feedkey::TokenId>();
            let before = resident();
            let ids = fill(&keys, name == "memory-shared").await;
            let after = resident();
            drop(ids);
            (after - before).saturating_sub(ids_capacity as u64) as f64 / TOKENS as f64
        }
        #[cfg(feature = "sqlite")]
        "sqlite-cache" => {
            use feedkey::store::{CacheConfig, SqliteStore};
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("tokens.db");
            let ids = {
                let keys = Feedkey::builder(SqliteStore::open(&path).expect("open"), key())
                    .build()
                    .expect("feedkey");
                fill(&keys, true).await
            };
            let config = CacheConfig::default().capacity(TOKENS);
            let store = SqliteStore::open_with(&path, config).expect("open");
            // One read first, so the connection's own buffers are not counted.
            store.token(&ids[0]).await.expect("read");
            let before = resident();
            for id in &ids {
                store.token(id).await.expect("read");
            }
            let after = resident();
            (after - before) as f64 / TOKENS as f64
        }
        other => panic!("unknown case {other}"),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    if let Ok(name) = std::env::var("FOOTPRINT_CASE") {
        let bytes = runtime.block_on(case(&name));
        println!("{bytes:.0}");
        return;
    }
    let mut cases = vec!["memory-shared", "memory-own"];
    if cfg!(feature = "sqlite") {
        cases.push("sqlite-cache");
    }
    println!("resident bytes per token, {TOKENS} tokens, 24-byte descriptions:");
    for name in cases {
        let output = Command::new(std::env::current_exe().expect("exe"))
            .env("FOOTPRINT_CASE", name)
            .output()
            .expect("run a case");
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        println!(
            "  {name:<14} {} bytes",
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
}
