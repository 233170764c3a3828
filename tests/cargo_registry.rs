//! The cargo registry example, driven by the real `cargo`: publishing, resolving,
//! fetching, yanking and listing owners with scoped tokens, and being refused.
//!
//! Skipped, with a notice, where `cargo` itself cannot be run.

#![cfg(all(feature = "sqlite", feature = "http", feature = "tracing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[cfg(feature = "postgres")]
#[path = "common/database.rs"]
mod database;
#[path = "common/example_server.rs"]
mod example_server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use example_server::{Run, Server, run};
use serde_json::json;

/// The cargo that runs these tests, or the one on the PATH.
fn cargo_binary() -> Option<String> {
    let bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let works = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    works.then_some(bin)
}

fn start() -> Server {
    let server = Server::start("cargo_registry", &[], "Authorization");
    assert!(server.primary.starts_with("fk_"));
    server
}

/// A cargo user: a private `CARGO_HOME` whose config names the registry `feedkey`.
struct Client {
    bin: String,
    home: PathBuf,
    work: PathBuf,
}

impl Client {
    fn new(bin: &str, server: &Server, name: &str) -> Self {
        let home = server.dir.path().join(format!("cargo-home-{name}"));
        let work = server.dir.path().join(format!("work-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(
            home.join("config.toml"),
            format!(
                "[registries.feedkey]\nindex = \"sparse+{}/index/\"\n\n\
                 [registry]\nglobal-credential-providers = [\"cargo:token\"]\n\n\
                 [net]\nretry = 0\n\n[http]\ntimeout = 30\n",
                server.url
            ),
        )
        .unwrap();
        Self {
            bin: bin.to_owned(),
            home,
            work,
        }
    }

    /// Writes a library crate `name` `version` depending on `deps` (TOML lines).
    fn krate(&self, name: &str, version: &str, deps: &str) -> PathBuf {
        let dir = self.work.join(format!("{name}-{version}"));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\
                 description = \"{name} for tests\"\nlicense = \"MIT\"\n\n[dependencies]\n{deps}\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("src/lib.rs"), "pub fn it() {}\n").unwrap();
        dir
    }

    /// Runs `cargo <args>` in `dir` with `token` (or none) for the registry.
    fn cargo(&self, dir: &Path, token: Option<&str>, args: &[&str]) -> Run {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .current_dir(dir)
            .env("CARGO_HOME", &self.home)
            .env("CARGO_TARGET_DIR", self.work.join("target"))
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("CARGO_REGISTRIES_FEEDKEY_TOKEN")
            .env_remove("CARGO_REGISTRY_TOKEN");
        if let Some(token) = token {
            command.env("CARGO_REGISTRIES_FEEDKEY_TOKEN", token);
        }
        run(command, 120)
    }

    fn publish(&self, name: &str, version: &str, token: &str) -> Run {
        let dir = self.krate(name, version, "");
        self.cargo(
            &dir,
            Some(token),
            &[
                "publish",
                "--registry",
                "feedkey",
                "--no-verify",
                "--allow-dirty",
            ],
        )
    }

    /// A consumer crate depending on `acme-util` from the registry: resolves and fetches.
    fn consume(&self, token: Option<&str>) -> Run {
        let dir = self.krate(
            "consumer",
            "0.1.0",
            "acme_util = { package = \"acme-util\", version = \"0.2\", registry = \"feedkey\" }",
        );
        let _ = std::fs::remove_file(dir.join("Cargo.lock"));
        let resolved = self.cargo(&dir, token, &["generate-lockfile"]);
        if !resolved.ok {
            return resolved;
        }
        let fetched = self.cargo(&dir, token, &["fetch"]);
        let lock = std::fs::read_to_string(dir.join("Cargo.lock")).unwrap_or_default();
        Run {
            ok: fetched.ok && lock.contains("name = \"acme-util\"\nversion = \"0.2.0\""),
            output: format!("{}{}{lock}", resolved.output, fetched.output),
        }
    }
}

fn refused(run: &Run, what: &str) {
    assert!(!run.ok, "{what} should have been refused:\n{}", run.output);
    // A clear answer, not a hang or a crash: the status and the uniform body.
    assert!(
        run.output.contains("got 401")
            || run.output.contains("got 403")
            || run.output.contains("status 403")
            || run.output.contains("no token found"),
        "{what}: no clear refusal in:\n{}",
        run.output
    );
}

#[test]
fn scoped_tokens_with_the_real_cargo_client() {
    let Some(bin) = cargo_binary() else {
        println!("skipped: cargo cannot be run here");
        return;
    };
    let server = start();
    let alice = Client::new(&bin, &server, "alice");

    // A write-only token for `acme_*`: the pattern is canonicalised to `acme-*`.
    let (_, pusher) = server.token(
        json!({"description": "acme publisher", "permissions": ["push-new", "push-version"], "packages": ["acme_*"]}),
    );
    let run = alice.publish("acme-util", "0.1.0", &pusher);
    assert!(run.ok, "publish acme-util 0.1.0: {}", run.output);
    refused(
        &alice.publish("other-crate", "0.1.0", &pusher),
        "other-crate",
    );

    // Push new version only: a new version of acme-util, never a new crate.
    let (_, versions) = server.token(
        json!({"description": "versions", "permissions": ["push-version"], "packages": ["acme-*"]}),
    );
    let run = alice.publish("acme-util", "0.2.0", &versions);
    assert!(run.ok, "publish acme-util 0.2.0: {}", run.output);
    refused(
        &alice.publish("acme-extra", "0.1.0", &versions),
        "acme-extra",
    );
    // Cargo's other spelling names the same crate: the token may push a version of it
    // (it is not new), and the registry keeps the first spelling.
    let run = alice.publish("Acme_Util", "0.3.0", &versions);
    assert!(
        !run.ok && run.output.contains("already published as `acme-util`"),
        "Acme_Util: {}",
        run.output
    );

    // A read-only token resolves and fetches, and cannot publish.
    let bob = Client::new(&bin, &server, "bob");
    let (_, reader) = server.token(json!({"description": "laptop", "permissions": ["read"]}));
    let run = bob.consume(Some(&reader));
    assert!(run.ok, "consume with a read token: {}", run.output);
    refused(
        &bob.publish("acme-util", "0.3.0", &reader),
        "publish with read",
    );

    // No token, a revoked one, a refreshed-away one, an expired one: no index.
    let carol = Client::new(&bin, &server, "carol");
    refused(&carol.consume(None), "no token");
    let (revoked_id, revoked) =
        server.token(json!({"description": "to revoke", "permissions": ["read"]}));
    assert!(carol.consume(Some(&revoked)).ok);
    server.api("DELETE", &format!("/api/tokens/{revoked_id}"), None);
    refused(&carol.consume(Some(&revoked)), "revoked token");
    let (old_id, old) = server.token(json!({"description": "to refresh", "permissions": ["read"]}));
    let fresh = server.api("POST", &format!("/api/tokens/{old_id}/refresh"), None);
    let fresh = fresh["token"].as_str().unwrap().to_owned();
    assert!(carol.consume(Some(&fresh)).ok, "the refreshed secret reads");
    refused(&carol.consume(Some(&old)), "refreshed-away secret");
    let (_, brief) = server
        .token(json!({"description": "brief", "permissions": ["read"], "expires_in_seconds": 1}));
    std::thread::sleep(Duration::from_millis(1500));
    refused(&carol.consume(Some(&brief)), "expired token");

    // Yank and unyank need "unlist".
    let crate_dir = alice.krate("acme-util", "0.2.0", "");
    let yank = |token: &str, undo: bool| {
        let mut args = vec!["yank", "acme-util@0.1.0", "--registry", "feedkey"];
        if undo {
            args.push("--undo");
        }
        alice.cargo(&crate_dir, Some(token), &args)
    };
    refused(&yank(&pusher, false), "yank with a push token");
    let (_, unlister) = server
        .token(json!({"description": "yanker", "permissions": ["unlist"], "packages": ["acme-*"]}));
    let run = yank(&unlister, false);
    assert!(run.ok, "yank: {}", run.output);
    assert!(index_entry(&server, &reader, "0.1.0")["yanked"] == true);
    let run = yank(&unlister, true);
    assert!(run.ok, "unyank: {}", run.output);
    assert!(index_entry(&server, &reader, "0.1.0")["yanked"] == false);

    // Owners: the account that owns the registry.
    let run = bob.cargo(
        &bob.work,
        Some(&reader),
        &["owner", "--list", "acme-util", "--registry", "feedkey"],
    );
    assert!(
        run.ok && run.output.contains("admin"),
        "owners: {}",
        run.output
    );

    // Every refusal is in the server log with its real reason.
    let log = server.log();
    for reason in [
        "denied: package out of scope",
        "denied: action out of scope: needs push-new",
        "denied: action out of scope: needs push-version",
        "denied: action out of scope: needs unlist",
        "denied: token revoked",
        "denied: token expired",
    ] {
        assert!(
            log.contains(reason),
            "no {reason:?} in the server log:\n{log}"
        );
    }
}

/// One `cargo publish`: one log line per request at most, no warning for cargo's
/// credential-less first try, no denial at all for a write-only token that may publish,
/// and a refused publish's each denial logged once, never again as an audit event.
#[test]
fn a_publish_logs_each_request_once() {
    let Some(bin) = cargo_binary() else {
        println!("skipped: cargo cannot be run here");
        return;
    };
    let server = start();
    let alice = Client::new(&bin, &server, "alice");
    let (_, pusher) = server.token(
        json!({"description": "acme publisher", "permissions": ["push-new", "push-version"], "packages": ["acme-*"]}),
    );
    let before = server.log().len();
    let run = alice.publish("acme-util", "0.1.0", &pusher);
    assert!(run.ok, "publish: {}", run.output);
    let log = server.log()[before..].to_owned();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("WARN"), 0, "warnings for a good publish:\n{log}");
    assert_eq!(count("denied"), 0, "denials for a good publish:\n{log}");
    assert_eq!(count("no credential"), 0, "{log}");
    assert!(count("used: Push") >= 1, "the publish is audited:\n{log}");

    let before = server.log().len();
    refused(
        &alice.publish("other-crate", "0.1.0", &pusher),
        "other-crate",
    );
    let log = server.log()[before..].to_owned();
    let denials: Vec<&str> = log.lines().filter(|l| l.contains("denied")).collect();
    assert!(!denials.is_empty(), "the refusal is logged:\n{log}");
    assert!(
        denials
            .iter()
            .all(|l| l.contains("package out of scope") && !l.contains("feedkey::audit")),
        "each denial once, with its reason:\n{log}"
    );
    // One line per request: a denial is never also an audit event.
    let requests = denials.iter().filter(|l| l.contains("request=")).count();
    assert_eq!(requests, denials.len(), "{log}");
}

/// The index line of acme-util `version`, read over HTTP as cargo reads it.
fn index_entry(server: &Server, token: &str, version: &str) -> serde_json::Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(format!("{}/index/ac/me/acme-util", server.url))
        .header("Authorization", token)
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.body_mut().read_to_string().unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["vers"] == version)
        .unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// `u32` little-endian length, then the bytes: cargo's upload framing.
fn framed(parts: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(&u32::try_from(part.len()).unwrap().to_le_bytes());
        body.extend_from_slice(part);
    }
    body
}

#[test]
fn malformed_uploads_get_a_400_and_leave_nothing_on_disk() {
    if !example_server::example_binary("cargo_registry").exists() {
        println!("skipped: the cargo_registry example is not built");
        return;
    }
    let server = start();
    let meta = |name: &str, vers: &str| {
        json!({"name": name, "vers": vers, "deps": [], "features": {}}).to_string()
    };
    let good_meta = meta("acme-util", "0.1.0");
    let mut cut = framed(&[good_meta.as_bytes(), b"crate bytes"]);
    cut.truncate(cut.len() - 3);
    let mut trailing = framed(&[good_meta.as_bytes(), b"crate bytes"]);
    trailing.push(0);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"xx".to_vec(), "cut short"),
        (cut, "cut short"),
        (trailing, "bytes after the crate file"),
        (framed(&[b"{not json", b"x"]), "metadata is not valid"),
        (
            framed(&[meta("../etc", "0.1.0").as_bytes(), b"x"]),
            "not a valid crate name",
        ),
        (
            framed(&[meta("acme-util", "../../x").as_bytes(), b"x"]),
            "not a valid version",
        ),
    ];
    for (body, detail) in cases {
        let mut response = agent()
            .put(format!("{}/api/v1/crates/new", server.url))
            .header("Authorization", &server.primary)
            .send(&body[..])
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{detail}");
        let v: serde_json::Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        let got = v["errors"][0]["detail"].as_str().unwrap();
        assert!(got.contains(detail), "{got:?} should say {detail:?}");
    }
    let stored = walk(&server.dir.path().join("data/crates"));
    assert!(stored.is_empty(), "left on disk: {stored:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().unwrap().is_dir() {
            files.extend(walk(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

#[test]
fn the_token_api_answers_in_json_with_fitting_statuses() {
    if !example_server::example_binary("cargo_registry").exists() {
        println!("skipped: the cargo_registry example is not built");
        return;
    }
    let server = start();
    let (status, v) = server.call(
        "POST",
        "/api/tokens",
        Some(json!({"description": "bad glob", "permissions": ["read"], "packages": ["acme-[*"]})),
    );
    assert_eq!(status, 422, "{v}");
    assert!(
        v["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("acme-[*")
    );
    let (status, _) = server.call(
        "POST",
        "/api/tokens",
        Some(json!({"description": "no actions", "permissions": []})),
    );
    assert_eq!(status, 422);
    let (id, reader) = server.token(json!({"description": "r", "permissions": ["read"]}));
    let (status, _) = server.call("DELETE", "/api/tokens/not-an-id", None);
    assert_eq!(status, 400);
    let (status, _) = server.call("DELETE", "/api/tokens/AAAAAAAAAAAAAAAAAAAAAA", None);
    assert_eq!(status, 404);
    // A scoped token cannot manage tokens; no credential at all gets the cargo challenge.
    let response = agent()
        .get(format!("{}/api/tokens", server.url))
        .header("Authorization", &reader)
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let response = agent()
        .get(format!("{}/api/tokens", server.url))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Cargo");
    // Editing narrows the packages; the listing never holds a secret.
    let edited = server.api(
        "PATCH",
        &format!("/api/tokens/{id}"),
        Some(json!({"description": "renamed", "packages": ["Acme_*"]})),
    );
    assert_eq!(edited["scope"]["packages"]["only"]["patterns"][0], "acme-*");
    let listed = server.api("GET", "/api/tokens", None).to_string();
    assert!(listed.contains("renamed") && !listed.contains(&reader));
    assert!(!listed.contains(&reader[3..]));
}

#[test]
fn every_token_api_error_is_json_and_a_4xx() {
    if !example_server::example_binary("cargo_registry").exists() {
        println!("skipped: the cargo_registry example is not built");
        return;
    }
    let server = start();
    let json = Some("application/json");
    let cases: Vec<(Option<&str>, String, &str)> = vec![
        (json, "{not json".into(), "bad JSON"),
        (Some("text/plain"), r#"{"description":"d","permissions":["read"]}"#.into(), "content type"),
        (None, r#"{"description":"d","permissions":["read"]}"#.into(), "no content type"),
        (json, r#"{"permissions":["read"]}"#.into(), "missing field"),
        (json, r#"{"description":"d","permissions":["read"],"colour":1}"#.into(), "unknown field"),
        (json, r#"{"description":"d","permissions":["fly"]}"#.into(), "unknown permission"),
        (json, r#"{"description":"d","permissions":["read"],"expires_at":"9999-01-01T00:00:00Z"}"#.into(), "past 2262"),
        (json, r#"{"description":"d","permissions":["read"],"expires_at":"tomorrow"}"#.into(), "not a date"),
        (json, r#"{"description":"d","permissions":["read"],"expires_in_seconds":9223372036854775807}"#.into(), "far seconds"),
        (json, r#"{"description":"d","permissions":["read"],"expires_in_seconds":10000000000}"#.into(), "seconds past 2262"),
        (json, r#"{"description":"d","permissions":["read"],"expires_at":"2262-04-12T00:00:00Z"}"#.into(), "a day past the latest"),
        (json, r#"{"description":"d","permissions":["read"],"expires_in_seconds":-5}"#.into(), "in the past"),
        (json, r#"{"description":"d","permissions":["read"],"networks":["10.0.0.0/33"]}"#.into(), "bad network"),
        (json, r#"{"description":"d","permissions":["read"],"feeds":["relase"]}"#.into(), "unknown feed"),
        (json, r#"{"description":"d","permissions":["read"],"feeds":["FEEDKEY"]}"#.into(), "feed in another case"),
    ];
    for (content_type, body, what) in cases {
        let (status, v) = server.post_raw("/api/tokens", content_type, &body);
        assert!((400..500).contains(&status), "{what}: {status} {v}");
        let detail = v["errors"][0]["detail"].as_str();
        assert!(
            detail.is_some_and(|d| !d.is_empty()),
            "{what}: {status} {v}"
        );
    }
    let (status, v) = server.post_raw(
        "/api/tokens",
        json,
        r#"{"description":"d","permissions":["read"],"feeds":["relase"]}"#,
    );
    assert_eq!(status, 422);
    assert!(
        v["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("relase"),
        "{v}"
    );
    // The registry's own name is a feed; an instant is an expiry.
    let (id, _) = server.token(json!({"description": "r", "permissions": ["read"], "feeds": ["feedkey"], "expires_at": "2200-01-01T00:00:00Z"}));
    let (status, v) = server.call(
        "PATCH",
        &format!("/api/tokens/{id}"),
        Some(json!({"feeds": ["CI"]})),
    );
    assert_eq!(status, 422, "{v}");
    assert!(
        v["errors"][0]["detail"].as_str().unwrap().contains("CI"),
        "{v}"
    );
    let (status, v) = server.call(
        "PATCH",
        &format!("/api/tokens/{id}"),
        Some(json!({"description": 5})),
    );
    assert_eq!(status, 422, "{v}");
    assert!(v["errors"][0]["detail"].is_string(), "{v}");
    let (status, v) = server.post_raw("/api/password", json, "[]");
    assert!(
        (400..500).contains(&status) && v["errors"][0]["detail"].is_string(),
        "{status} {v}"
    );
}

/// A token scoped to 10.1.0.0/16: `X-Forwarded-For` names the client only when the TCP
/// peer is a trusted proxy, and then its right-most address no trusted proxy holds.
#[test]
fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    if !example_server::example_binary("cargo_registry").exists() {
        println!("skipped: the cargo_registry example is not built");
        return;
    }
    let config = |server: &Server, token: &str, forwarded: &[&str]| {
        let mut request = agent()
            .get(format!("{}/index/config.json", server.url))
            .header("Authorization", token);
        for value in forwarded {
            request = request.header("X-Forwarded-For", *value);
        }
        request.call().unwrap().status().as_u16()
    };
    let office =
        json!({"description": "office", "permissions": ["read"], "networks": ["10.1.0.0/16"]});

    let proxied = Server::start(
        "cargo_registry",
        &[
            "--trusted-proxy",
            "127.0.0.1/32",
            "--trusted-proxy",
            "192.168.7.0/24",
        ],
        "Authorization",
    );
    let (_, token) = proxied.token(office.clone());
    assert_eq!(config(&proxied, &token, &["10.1.2.3"]), 200);
    assert_eq!(
        config(&proxied, &token, &["10.1.2.3, 192.168.7.9"]),
        200,
        "through a second trusted proxy"
    );
    assert_eq!(
        config(&proxied, &token, &["10.1.2.3", "192.168.7.9"]),
        200,
        "repeated headers are one list"
    );
    assert_eq!(
        config(&proxied, &token, &["10.1.2.3, 192.0.2.7"]),
        403,
        "a client can prepend anything"
    );
    assert_eq!(config(&proxied, &token, &["192.0.2.7"]), 403);
    assert_eq!(
        config(&proxied, &token, &[]),
        403,
        "the proxy itself is outside the scope"
    );
    assert_eq!(config(&proxied, &token, &["not an address"]), 403);

    // Not a trusted proxy: the header is the client's own word, and ignored.
    let direct = Server::start(
        "cargo_registry",
        &["--listen", "127.0.0.1:0"],
        "Authorization",
    );
    let (_, token) = direct.token(office);
    assert_eq!(config(&direct, &token, &["10.1.2.3"]), 403);
    let (_, anywhere) = direct.token(json!({"description": "any", "permissions": ["read"]}));
    assert_eq!(config(&direct, &anywhere, &["10.1.2.3"]), 200);
}

#[test]
fn the_servers_explain_their_flags() {
    for name in ["cargo_registry", "nuget_feed"] {
        let binary = example_server::example_binary(name);
        if !binary.exists() {
            println!("skipped: the {name} example is not built");
            continue;
        }
        let out = Command::new(&binary).arg("--help").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name} --help: {text}");
        for flag in ["--data", "--listen", "--port", "--trusted-proxy"] {
            assert!(text.contains(flag), "{name} --help lacks {flag}:\n{text}");
        }
        let out = Command::new(&binary)
            .args(["--trusted-proxy", "nonsense"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name} took a bad --trusted-proxy");
    }
}

/// systemd stops a service with SIGTERM: the server stops cleanly and writes the
/// buffered last-used times, which a restarted server then lists.
#[test]
fn sigterm_stops_cleanly_and_keeps_last_used() {
    if !example_server::example_binary("cargo_registry").exists() {
        println!("skipped: the cargo_registry example is not built");
        return;
    }
    let server = start();
    let (id, reader) = server.token(json!({"description": "laptop", "permissions": ["read"]}));
    let response = agent()
        .get(format!("{}/index/config.json", server.url))
        .header("Authorization", &reader)
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let primary = server.primary.clone();
    let (clean, dir) = server.terminate();
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    assert!(clean, "no clean exit on SIGTERM:\n{log}");
    let mut again = Server::start_in("cargo_registry", &[], "Authorization", dir);
    again.primary = primary;
    let tokens = again.api("GET", "/api/tokens", None);
    let token = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap();
    assert!(token["last_used_at"].is_string(), "{token}");
}

/// Two registry servers on one PostgreSQL database (as behind a load balancer): a token
/// revoked through one is refused by the other, within the cache's trust bound.
#[cfg(feature = "postgres")]
#[test]
fn a_token_revoked_through_one_server_is_refused_by_the_other() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = rt.block_on(database::Server::new("FEEDKEY_TEST_POSTGRES_URL")) else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let data = shared.path().to_str().unwrap();
    let args = ["--data", data, "--database", &db.url];
    let one = Server::start("cargo_registry", &args, "Authorization");
    let two = Server::start("cargo_registry", &args, "Authorization");
    assert!(one.primary.starts_with("fk_") && two.primary.is_empty());
    let (id, reader) = one.token(json!({"description": "laptop", "permissions": ["read"]}));
    let config = |server: &Server| {
        agent()
            .get(format!("{}/index/config.json", server.url))
            .header("Authorization", &reader)
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(config(&two), 200, "the other server knows the token");
    one.api("DELETE", &format!("/api/tokens/{id}"), None);
    let revoked = std::time::Instant::now();
    while config(&two) != 401 {
        assert!(
            revoked.elapsed() < Duration::from_secs(2),
            "the other server still accepts a revoked token"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "refused by the other server {:?} after the revoke",
        revoked.elapsed()
    );
    assert!(two.log().contains("denied: token revoked"));
    drop((one, two));
    rt.block_on(db.cleanup());
}

/// With `--metrics-listen`, the operator's scraper reads feedkey's counters there, in
/// Prometheus's format: a grant and a denial show up, by kind and by reason; the public
/// address does not serve them.
#[cfg(feature = "metrics")]
#[test]
fn metrics_are_served_to_the_scraper_only() {
    if !example_server::example_binary("cargo_registry").exists() {
        println!("skipped: the cargo_registry example is not built");
        return;
    }
    let server = Server::start(
        "cargo_registry",
        &["--metrics-listen", "127.0.0.1:0"],
        "Authorization",
    );
    let metrics = server
        .metrics
        .clone()
        .expect("the server printed no metrics URL");
    // A read of an index file: authorized (authenticate alone, as config.json asks,
    // counts nothing).
    let status = |token: &str| {
        agent()
            .get(format!("{}/index/ac/me/acme-util", server.url))
            .header("Authorization", token)
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status(&server.primary), 404, "granted, and no such crate");
    assert_eq!(status("fk_not-a-token"), 401);
    let text = agent()
        .get(&metrics)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        text.contains("feedkey_grants_total{by=\"primary-key\"}"),
        "{text}"
    );
    assert!(text.contains("feedkey_denials_total{reason="), "{text}");
    let public = agent()
        .get(format!("{}/metrics", server.url))
        .call()
        .unwrap()
        .status()
        .as_u16();
    assert_ne!(public, 200, "the public address serves the metrics");
}

/// `cargo publish` of a crate whose source holds a live token of this registry is
/// refused with a message that says so, and the token no longer works; a crate holding
/// only a dead or a made-up token publishes.
#[test]
fn a_crate_holding_a_live_token_is_refused_and_the_token_revoked() {
    let Some(bin) = cargo_binary() else {
        println!("skipped: cargo cannot be run here");
        return;
    };
    if !example_server::example_binary("cargo_registry").exists() {
        println!("skipped: the cargo_registry example is not built");
        return;
    }
    let server = start();
    let alice = Client::new(&bin, &server, "alice");
    let (_, pusher) = server.token(
        json!({"description": "publisher", "permissions": ["push-new", "push-version", "read"]}),
    );
    let (_, pasted) = server.token(json!({"description": "laptop", "permissions": ["read"]}));

    let dir = alice.krate("leaky", "0.1.0", "");
    std::fs::write(
        dir.join("src/lib.rs"),
        format!("pub const TOKEN: &str = \"{pasted}\";\n"),
    )
    .unwrap();
    let args = [
        "publish",
        "--registry",
        "feedkey",
        "--no-verify",
        "--allow-dirty",
    ];
    let run = alice.cargo(&dir, Some(&pusher), &args);
    assert!(
        !run.ok,
        "published a crate holding a live token:\n{}",
        run.output
    );
    assert!(
        run.output
            .contains("contains an access token of this registry"),
        "{}",
        run.output
    );
    let config = |token: &str| {
        agent()
            .get(format!("{}/index/config.json", server.url))
            .header("Authorization", token)
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(config(&pasted), 401, "the pasted token still works");
    assert_eq!(config(&pusher), 200, "the publishing token was revoked too");
    assert!(
        server.log().contains("holds live tokens"),
        "{}",
        server.log()
    );

    // The same crate again, its token now dead: nothing live in it, so it publishes.
    let run = alice.cargo(&dir, Some(&pusher), &args);
    assert!(run.ok, "{}", run.output);
}
