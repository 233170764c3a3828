//! The admin command line, `feedkey`, driven as an operator drives it: the built binary,
//! on SQLite always and on PostgreSQL and MySQL when `FEEDKEY_TEST_POSTGRES_URL` and
//! `FEEDKEY_TEST_MYSQL_URL` are set (unset, those tests print that they were skipped).
//! Tokens are used through the library, as a registry would use them.

#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/database.rs"]
mod database;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Instant;

use feedkey::store::{AnyStore, SqlStore, SqliteStore};
use feedkey::{
    AccountId, Action, Feedkey, KeyRing, NewToken, Request, Scope, Target, TokenStore as _,
};
use serde_json::Value;

/// A database and a key file for one test.
struct Setup {
    url: String,
    key_file: PathBuf,
    _dir: tempfile::TempDir,
    server: Option<database::Server>,
}

impl Setup {
    async fn new(backend: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("token.keys");
        let (url, server) = match backend {
            "sqlite" => (
                format!("sqlite:{}", dir.path().join("tokens.db").display()),
                None,
            ),
            var => {
                let server = database::Server::new(var).await?;
                (server.url.clone(), Some(server))
            }
        };
        Some(Self {
            url,
            key_file,
            _dir: dir,
            server,
        })
    }

    /// Runs `feedkey ARGS` against this database and key file.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_feedkey"))
            .args(args)
            .env("FEEDKEY_DATABASE_URL", &self.url)
            .env("FEEDKEY_KEY_FILE", &self.key_file)
            .output()
            .unwrap()
    }

    /// Runs `feedkey --json ARGS`, which must succeed, and returns its JSON.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.run(&all);
        assert!(
            output.status.success(),
            "feedkey {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// A `Feedkey` on the same database with the key file's keys, opened afresh (so that
    /// no cache of an earlier one hides what the command line changed).
    async fn library(&self) -> Feedkey<AnyStore> {
        let store: AnyStore = match self.url.strip_prefix("sqlite:") {
            Some(path) => SqliteStore::open(path).unwrap().into(),
            None => SqlStore::connect(&self.url).await.unwrap().into(),
        };
        // The key file as a server reads it.
        let (current, previous) = KeyRing::read(&self.key_file).unwrap().keys().unwrap();
        Feedkey::builder(store, current)
            .previous_keys(previous)
            .build()
            .unwrap()
    }

    async fn cleanup(self) {
        if let Some(server) = &self.server {
            server.cleanup().await;
        }
    }
}

/// Whether `token` may read package `Contoso.Core` of feed `nuget`, by a fresh `Feedkey`.
async fn works(setup: &Setup, token: &str) -> bool {
    let keys = setup.library().await;
    let request = Request::from_headers(Some(token.as_bytes()), None);
    let allowed = keys
        .authorize(
            &request,
            Action::Read,
            &Target::package("nuget", "Contoso.Core"),
        )
        .await
        .is_ok();
    keys.store().flush().await.unwrap();
    allowed
}

fn secret(issued: &Value) -> String {
    issued["token"].as_str().unwrap().to_owned()
}

fn id(issued: &Value) -> String {
    issued["info"]["id"].as_str().unwrap().to_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn a_lost_primary_key_is_regenerated(backend: &str) {
    let Some(setup) = Setup::new(backend).await else {
        return;
    };
    setup.json(&["key", "add"]);
    let created = setup.json(&["account", "create", "alice"]);
    let lost = secret(&created);
    assert!(works(&setup, &lost).await);
    let child = setup.json(&[
        "token",
        "issue",
        "--account",
        "alice",
        "--description",
        "ci",
        "--permissions",
        "read-only",
        "--feed",
        "nuget",
        "--package",
        "Contoso.*",
        "--expires",
        "30d",
    ]);
    assert!(works(&setup, &secret(&child)).await);

    let regenerated = setup.json(&["primary", "regenerate", "alice", "--expires", "365d"]);
    assert_eq!(
        id(&regenerated),
        id(&created),
        "the primary key keeps its id"
    );
    assert!(!works(&setup, &lost).await, "the lost key stops at once");
    assert!(works(&setup, &secret(&regenerated)).await);
    assert!(works(&setup, &secret(&child)).await, "issued tokens stay");

    let accounts = setup.json(&["account", "list"]);
    assert_eq!(accounts.as_array().unwrap().len(), 1);
    assert_eq!(accounts[0]["account"], "alice");
    assert_eq!(accounts[0]["primary"], id(&created));

    let trail = setup.json(&["audit", "--account", "alice", "--since", "1h"]);
    let kinds: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.iter().any(|k| k.starts_with("PrimaryRegenerated")),
        "{kinds:?}"
    );
    setup.cleanup().await;
}

async fn an_incident_revokes_ten_thousand_tokens(backend: &str) {
    let Some(setup) = Setup::new(backend).await else {
        return;
    };
    setup.json(&["key", "add"]);
    let alice_primary = secret(&setup.json(&["account", "create", "alice"]));
    setup.json(&["account", "create", "bob"]);
    let bobs = setup.json(&[
        "token",
        "issue",
        "--account",
        "bob",
        "--description",
        "bob's",
    ]);

    let started = Instant::now();
    // Issued through the library, sixteen at a time.
    let keys = std::sync::Arc::new(setup.library().await);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..16 {
        let keys = std::sync::Arc::clone(&keys);
        tasks.spawn(async move {
            let alice = AccountId::new("alice").unwrap();
            let mut secret = None;
            for n in (task..10_000).step_by(16) {
                let issued = keys
                    .issue(&alice, NewToken::new(format!("ci {n}"), Scope::read_only()))
                    .await
                    .unwrap();
                secret.get_or_insert_with(|| issued.token.expose_secret().to_owned());
            }
            secret.unwrap()
        });
    }
    let first = tasks.join_all().await.pop();
    drop(keys);
    let issuing = started.elapsed();

    let started = Instant::now();
    let revoked = setup.json(&["revoke", "--account", "alice", "--all"]);
    println!(
        "{backend}: issued 10 000 in {issuing:?}, revoked in {:?}",
        started.elapsed()
    );
    assert_eq!(revoked["revoked"], 10_000);
    assert!(!works(&setup, &first.unwrap()).await);
    assert!(
        works(&setup, &alice_primary).await,
        "the primary key is not revoked"
    );
    assert!(
        works(&setup, &secret(&bobs)).await,
        "other accounts are untouched"
    );

    // Each revocation is audited.
    let trail = setup.json(&["audit", "--account", "alice", "--kind", "revoked"]);
    assert_eq!(trail.as_array().unwrap().len(), 10_000);
    // Nothing is left to revoke.
    assert_eq!(
        setup.json(&["revoke", "--account", "alice", "--all"])["revoked"],
        0
    );

    // By creation time, and by parent: bob's token only.
    let later = setup.json(&[
        "token",
        "issue",
        "--account",
        "bob",
        "--description",
        "later",
    ]);
    let cutoff = later["info"]["created_at"].as_str().unwrap().to_owned();
    let revoked = setup.json(&["revoke", "--created-before", &cutoff, "--account", "bob"]);
    assert_eq!(revoked["revoked"], 1);
    assert!(!works(&setup, &secret(&bobs)).await);
    assert!(works(&setup, &secret(&later)).await);
    let revoked = setup.json(&["revoke", "--derived-from", &id(&later)]);
    assert_eq!(revoked["revoked"], 0);
    setup.cleanup().await;
}

async fn a_key_rotates_from_version_1_to_2(backend: &str) {
    let Some(setup) = Setup::new(backend).await else {
        return;
    };
    assert_eq!(setup.json(&["key", "add"])["added"], 1);
    setup.json(&["account", "create", "alice"]);
    let used = setup.json(&[
        "token",
        "issue",
        "--account",
        "alice",
        "--description",
        "used",
    ]);
    let unused = setup.json(&[
        "token",
        "issue",
        "--account",
        "alice",
        "--description",
        "unused",
    ]);
    assert_eq!(setup.json(&["key", "check"])["keys"], "ok");
    let doctor = setup.json(&["doctor"]);
    assert_eq!(doctor["reachable"], true);
    assert_eq!(doctor["warnings"].as_array().unwrap().len(), 0, "{doctor}");
    if backend != "sqlite" {
        let skew = doctor["clock_skew_seconds"].as_f64().unwrap();
        assert!(skew.abs() < 5.0, "the database runs on this host: {skew}");
    }

    assert_eq!(setup.json(&["key", "add"])["added"], 2);
    assert!(
        works(&setup, &secret(&used)).await,
        "rehashed under version 2"
    );
    let status = setup.json(&["key", "status"]);
    let count = |status: &Value, version: u64| {
        status
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["version"] == version)
            .map_or(0, |row| row["tokens"].as_u64().unwrap())
    };
    assert_eq!(
        count(&status, 1),
        2,
        "the primary key and the unused token: {status}"
    );
    assert_eq!(count(&status, 2), 1, "{status}");

    let refused = setup.run(&["key", "retire", "1"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("2 live tokens"),
        "{}",
        stderr(&refused)
    );
    let refused = setup.run(&["key", "retire", "1", "--force"]);
    assert_eq!(refused.status.code(), Some(3));
    assert!(
        stderr(&refused).contains("regenerate"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        count(&setup.json(&["key", "status"]), 1),
        2,
        "nothing was revoked"
    );

    let primary = setup.json(&["primary", "regenerate", "alice"]);
    let retired = setup.json(&["key", "retire", "1", "--force"]);
    assert_eq!(retired["revoked"], 1);
    assert!(!works(&setup, &secret(&unused)).await);
    assert!(works(&setup, &secret(&used)).await);
    assert!(works(&setup, &secret(&primary)).await);
    assert_eq!(
        KeyRing::read(&setup.key_file)
            .unwrap()
            .versions()
            .collect::<Vec<_>>(),
        [2],
        "version 1 left the key file"
    );
    let status = setup.json(&["key", "status"]);
    assert_eq!(count(&status, 1), 0);
    assert_eq!(count(&status, 2), 2);
    assert_eq!(setup.json(&["key", "check"])["keys"], "ok");
    let trail = setup.json(&["audit", "--token", &id(&unused), "--kind", "revoked"]);
    assert_eq!(trail.as_array().unwrap().len(), 1);
    setup.cleanup().await;
}

async fn bad_input_is_refused_cleanly(backend: &str) {
    let Some(setup) = Setup::new(backend).await else {
        return;
    };
    setup.json(&["key", "add"]);
    setup.json(&["account", "create", "alice"]);

    let unknown = setup.run(&["token", "list", "--account", "nobody"]);
    assert_eq!(unknown.status.code(), Some(3));
    assert!(
        stderr(&unknown).contains("no such account"),
        "{}",
        stderr(&unknown)
    );

    let malformed = setup.run(&[
        "token",
        "issue",
        "--account",
        "alice",
        "--description",
        "x",
        "--permissions",
        "frobnicate",
    ]);
    assert_eq!(malformed.status.code(), Some(2));
    assert!(
        stderr(&malformed).contains("not a permission"),
        "{}",
        stderr(&malformed)
    );
    let malformed = setup.run(&[
        "token",
        "issue",
        "--account",
        "alice",
        "--description",
        "x",
        "--package",
        "bad pattern",
    ]);
    assert_eq!(malformed.status.code(), Some(2), "{}", stderr(&malformed));
    let malformed = setup.run(&["expiring", "--within", "ten days"]);
    assert_eq!(malformed.status.code(), Some(2));
    // Nothing was half done: alice still has her primary key only.
    assert_eq!(
        setup
            .json(&["token", "list", "--account", "alice"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    for output in [&unknown, &malformed] {
        assert!(!stderr(output).contains("panicked"), "{}", stderr(output));
    }
    setup.cleanup().await;
}

async fn the_daily_jobs_and_one_tokens_commands_work(backend: &str) {
    let Some(setup) = Setup::new(backend).await else {
        return;
    };
    setup.json(&["key", "add"]);
    setup.json(&["account", "create", "alice"]);
    let soon = setup.json(&[
        "token",
        "issue",
        "--account",
        "alice",
        "--description",
        "soon",
        "--permissions",
        "read,push-version",
        "--expires",
        "3d",
    ]);
    let later = setup.json(&[
        "token",
        "issue",
        "--account",
        "alice",
        "--description",
        "later",
        "--expires",
        "60d",
    ]);

    // The daily mail job: only the token that expires within the window.
    let expiring = setup.json(&["expiring", "--within", "10d"]);
    let ids: Vec<&str> = expiring
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id(&soon)]);

    // Show, edit (narrower), refresh (the old secret stops), revoke.
    let shown = setup.json(&["token", "show", "--account", "alice", &id(&soon)]);
    assert_eq!(shown["description"], "soon");
    let edited = setup.json(&[
        "token",
        "edit",
        "--account",
        "alice",
        &id(&soon),
        "--description",
        "renamed",
        "--permissions",
        "read",
    ]);
    assert_eq!(edited["description"], "renamed");
    let widened = setup.run(&[
        "token",
        "edit",
        "--account",
        "alice",
        &id(&soon),
        "--permissions",
        "full",
    ]);
    assert_eq!(widened.status.code(), Some(3), "{}", stderr(&widened));
    let refreshed = setup.json(&["token", "refresh", "--account", "alice", &id(&later)]);
    assert_eq!(id(&refreshed), id(&later));
    // A token id may begin with '-': it is still an id, not a flag.
    let hyphen = setup.run(&[
        "token",
        "show",
        "--account",
        "alice",
        "-AAAAAAAAAAAAAAAAAAAAA",
    ]);
    assert_eq!(hyphen.status.code(), Some(3), "{}", stderr(&hyphen));
    assert!(
        stderr(&hyphen).contains("no such token"),
        "{}",
        stderr(&hyphen)
    );
    assert!(!works(&setup, &secret(&later)).await);
    assert!(works(&setup, &secret(&refreshed)).await);
    setup.json(&["token", "revoke", "--account", "alice", &id(&soon)]);
    assert!(!works(&setup, &secret(&soon)).await);
    let listed = setup.json(&["token", "list", "--account", "alice"]);
    let status = |id: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status(&id(&soon)), None, "revoked tokens are left out");
    assert_eq!(status(&id(&later)).as_deref(), Some("active"));

    // Nothing has been idle for a day; nothing was revoked 90 days ago; a restore's
    // replay finds every revocation already applied.
    assert_eq!(
        setup.json(&["retire-idle", "--idle-after", "1d"])["retired"],
        0
    );
    assert_eq!(
        setup.json(&["purge-revoked", "--older-than", "90d"])["purged"],
        0
    );
    assert_eq!(
        setup.json(&["purge-revoked", "--older-than", "0s"])["purged"],
        1
    );
    assert_eq!(
        setup.json(&["audit", "replay-revocations", "--since", "1h"])["revoked"],
        0
    );
    setup.cleanup().await;
}

async fn an_account_is_disabled_enabled_and_deleted(backend: &str) {
    let Some(setup) = Setup::new(backend).await else {
        return;
    };
    setup.json(&["key", "add"]);
    let primary = secret(&setup.json(&["account", "create", "mallory"]));
    let scoped = secret(&setup.json(&[
        "token",
        "issue",
        "--account",
        "mallory",
        "--description",
        "ci",
        "--permissions",
        "read-only",
        "--feed",
        "nuget",
    ]));
    let bystander = secret(&setup.json(&["account", "create", "alice"]));

    let disabled = setup.json(&["account", "disable", "mallory"]);
    assert_eq!(disabled["suspended"], 2, "{disabled}");
    assert!(!works(&setup, &primary).await);
    assert!(!works(&setup, &scoped).await);
    assert!(
        works(&setup, &bystander).await,
        "another account is untouched"
    );
    let listed = setup.json(&["account", "list"]);
    let state = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["account"] == name)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state("mallory"), "disabled");
    assert_eq!(state("alice"), "active");
    let refused = setup.run(&[
        "token",
        "issue",
        "--account",
        "mallory",
        "--description",
        "x",
        "--permissions",
        "read-only",
    ]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("disabled"),
        "{}",
        stderr(&refused)
    );

    let text = setup.run(&["account", "enable", "mallory"]);
    assert!(text.status.success(), "{}", stderr(&text));
    assert_eq!(
        String::from_utf8_lossy(&text.stdout).trim(),
        "mallory: enabled, 2 tokens resumed"
    );
    assert!(
        works(&setup, &primary).await,
        "enabling gives back the primary key"
    );
    assert!(works(&setup, &scoped).await);

    let unsure = setup.run(&["account", "delete", "mallory"]);
    assert_eq!(unsure.status.code(), Some(2), "delete asks for --yes");
    assert!(
        works(&setup, &scoped).await,
        "nothing was done without --yes"
    );
    let deleted = setup.json(&["account", "delete", "mallory", "--yes"]);
    assert_eq!(deleted["revoked"], 2, "{deleted}");
    assert!(!works(&setup, &primary).await);
    assert!(!works(&setup, &scoped).await);
    let again = setup.run(&["account", "enable", "mallory"]);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    let trail = setup.json(&["audit", "--account", "mallory", "--since", "1h"]);
    let kinds: Vec<String> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    for wanted in ["AccountDisabled", "AccountEnabled", "AccountDeleted"] {
        assert!(
            kinds.iter().any(|k| k.starts_with(wanted)),
            "{wanted}: {kinds:?}"
        );
    }
    let unknown = setup.run(&["account", "disable", "nobody"]);
    assert_eq!(unknown.status.code(), Some(3), "{}", stderr(&unknown));
    setup.cleanup().await;
}

macro_rules! on_every_backend {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $story() { super::$story("sqlite").await; })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $story() { super::$story("FEEDKEY_TEST_POSTGRES_URL").await; })*
        }
        mod mysql {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $story() { super::$story("FEEDKEY_TEST_MYSQL_URL").await; })*
        }
    };
}

on_every_backend!(
    a_lost_primary_key_is_regenerated,
    an_incident_revokes_ten_thousand_tokens,
    a_key_rotates_from_version_1_to_2,
    bad_input_is_refused_cleanly,
    the_daily_jobs_and_one_tokens_commands_work,
    an_account_is_disabled_enabled_and_deleted,
);

#[test]
fn a_database_that_does_not_answer_is_exit_code_4() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("token.keys");
    let run = |args: &[&str], url: &str| {
        Command::new(env!("CARGO_BIN_EXE_feedkey"))
            .args(args)
            .env("FEEDKEY_DATABASE_URL", url)
            .env("FEEDKEY_KEY_FILE", &key_file)
            .output()
            .unwrap()
    };
    assert!(run(&["key", "add"], "").status.success());
    let output = run(
        &["token", "list", "--account", "alice"],
        "postgres://nobody:secret@127.0.0.1:1/none",
    );
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("does not answer"),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("secret@"),
        "the password is not printed"
    );
    let output = run(&["doctor"], "sqlite:/nonexistent/dir/tokens.db");
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let output = run(&["doctor"], "oracle://db");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let missing = dir.path().join("missing.keys");
    let output = Command::new(env!("CARGO_BIN_EXE_feedkey"))
        .args(["token", "list", "--account", "alice"])
        .env(
            "FEEDKEY_DATABASE_URL",
            format!("sqlite:{}", dir.path().join("t.db").display()),
        )
        .env("FEEDKEY_KEY_FILE", &missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot read the key file"),
        "{}",
        stderr(&output)
    );
}
