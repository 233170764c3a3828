//! Trusted publishing on the cargo registry example, driven by the real `cargo`: a CI
//! job's OIDC token (signed by the test issuer, playing GitHub Actions) is exchanged at
//! `POST /api/v1/trusted_publishing/tokens`, and `cargo publish` with the minted key
//! works for a crate the policy covers and is refused for another; the same OIDC token
//! twice is refused; the key dies when revoked (`DELETE`, as crates.io's workflow does
//! after publishing) and when its policy is removed; bad input is a 4xx with a message.
//!
//! Skipped, with a notice, where `cargo` itself cannot be run. Run
//! `cargo build --all-features --examples` first: a test run does not rebuild examples.

#![cfg(all(
    feature = "sqlite",
    feature = "http",
    feature = "tracing",
    feature = "oidc"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/example_server.rs"]
mod example_server;
#[path = "common/oidc_issuer.rs"]
mod issuer;

use std::path::PathBuf;
use std::process::Command;

use example_server::{Run, Server, run};
use feedkey::oidc::OidcIssuer;
use serde_json::{Value, json};

const EXCHANGE: &str = "/api/v1/trusted_publishing/tokens";

/// The cargo that runs these tests, or the one on the PATH.
fn cargo_binary() -> Option<String> {
    let bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let works = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    works.then_some(bin)
}

/// The registry, trusting the test issuer as GitHub Actions.
fn start() -> Server {
    let keys = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(keys.path(), issuer::jwks()).unwrap();
    let path = keys.path().to_str().unwrap().to_owned();
    let server = Server::start(
        "cargo_registry",
        &[
            "--oidc-issuer",
            OidcIssuer::GITHUB_ACTIONS,
            "--oidc-jwks",
            &path,
            "--oidc-audience",
            issuer::AUDIENCE,
        ],
        "Authorization",
    );
    drop(keys);
    server
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// A job token of `contoso/service`'s `release.yml`.
fn job_token(jti: &str) -> String {
    issuer::signed(&issuer::job(now(), jti))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// POSTs `body` to the exchange, as a CI job does (no credential).
fn exchange_raw(server: &Server, body: &str) -> (u16, Value) {
    let mut response = agent()
        .post(format!("{}{EXCHANGE}", server.url))
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn exchange(server: &Server, jwt: &str) -> (u16, Value) {
    exchange_raw(server, &json!({ "jwt": jwt }).to_string())
}

/// A cargo user whose config names the registry `feedkey`.
struct Client {
    bin: String,
    home: PathBuf,
    work: PathBuf,
}

impl Client {
    fn new(bin: &str, server: &Server) -> Self {
        let home = server.dir.path().join("cargo-home");
        let work = server.dir.path().join("work");
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

    fn publish(&self, name: &str, version: &str, token: &str) -> Run {
        let dir = self.work.join(format!("{name}-{version}"));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\
                 description = \"{name} for tests\"\nlicense = \"MIT\"\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("src/lib.rs"), "pub fn it() {}\n").unwrap();
        let mut command = Command::new(&self.bin);
        command
            .args([
                "publish",
                "--registry",
                "feedkey",
                "--no-verify",
                "--allow-dirty",
            ])
            .current_dir(&dir)
            .env("CARGO_HOME", &self.home)
            .env("CARGO_TARGET_DIR", self.work.join("target"))
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("CARGO_REGISTRY_TOKEN")
            .env("CARGO_REGISTRIES_FEEDKEY_TOKEN", token);
        run(command, 120)
    }
}

fn refused(run: &Run, what: &str) {
    assert!(!run.ok, "{what} should have been refused:\n{}", run.output);
    assert!(
        run.output.contains("401") || run.output.contains("403"),
        "{what}: no clear refusal in:\n{}",
        run.output
    );
}

/// Adds the policy: `contoso/service`'s `release.yml` in environment `production` may
/// push `acme-*`.
fn add_policy(server: &Server) -> String {
    let policy = server.api(
        "POST",
        "/api/trust-policies",
        Some(json!({
            "rule": {
                "forge": "git-hub",
                "issuer": OidcIssuer::GITHUB_ACTIONS,
                "owner": "contoso",
                "repository": "service",
                "workflow": "release.yml",
                "environment": "production",
            },
            "permissions": ["push-new", "push-version"],
            "packages": ["acme-*"],
            "lifetime_seconds": 1800,
        })),
    );
    policy["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_ci_job_publishes_with_the_real_cargo_and_no_stored_secret() {
    let Some(bin) = cargo_binary() else {
        println!("skipped: cargo cannot be run here");
        return;
    };
    let server = start();
    let policy = add_policy(&server);
    let client = Client::new(&bin, &server);

    let jwt = job_token("run-1");
    let (status, answer) = exchange(&server, &jwt);
    assert_eq!(status, 200, "{answer}");
    let key = answer["token"].as_str().unwrap().to_owned();
    let run = client.publish("acme-util", "0.1.0", &key);
    assert!(
        run.ok && run.output.contains("Uploading acme-util v0.1.0"),
        "a covered crate:\n{}",
        run.output
    );
    refused(
        &client.publish("other-crate", "0.1.0", &key),
        "a crate the policy does not cover",
    );

    // The same OIDC token again: refused, saying only "not allowed".
    let (status, answer) = exchange(&server, &jwt);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["errors"][0]["detail"], "not allowed");
    assert!(server.log().contains("replayed"), "the log says why");

    // crates.io's workflow revokes the key after publishing.
    let mut response = agent()
        .delete(format!("{}{EXCHANGE}", server.url))
        .header("Authorization", &key)
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let _ = response.body_mut().read_to_string();
    refused(
        &client.publish("acme-util", "0.2.0", &key),
        "a revoked minted key",
    );

    // A key minted before its policy is removed dies with it.
    let (status, answer) = exchange(&server, &job_token("run-2"));
    assert_eq!(status, 200, "{answer}");
    let second = answer["token"].as_str().unwrap().to_owned();
    let (status, _) = server.call("DELETE", &format!("/api/trust-policies/{policy}"), None);
    assert_eq!(status, 204);
    refused(
        &client.publish("acme-util", "0.3.0", &second),
        "a key of a removed policy",
    );
    let (status, _) = exchange(&server, &job_token("run-3"));
    assert_eq!(status, 401, "no policy, no key");
}

#[test]
fn bad_exchange_and_policy_input_is_a_4xx_with_a_message() {
    let server = start();
    let policy = add_policy(&server);
    let bodies = [
        "not json",
        "{}",
        r#"{"jwt": 5}"#,
        r#"{"jwt": ""}"#,
        r#"{"jwt": "a.b.c"}"#,
        r#"{"jwt": "eyJhbGciOiJub25lIn0.e30."}"#,
    ];
    for body in bodies {
        let (status, answer) = exchange_raw(&server, body);
        assert!((400..500).contains(&status), "{body}: {status}");
        assert!(
            answer["errors"][0]["detail"].is_string(),
            "{body}: {answer}"
        );
    }
    let (status, _) = exchange_raw(&server, &json!({ "jwt": "A".repeat(60_000) }).to_string());
    assert!((400..500).contains(&status));
    // The DELETE needs a minted key, and only a minted key.
    let (status, answer) = server.call("DELETE", EXCHANGE, None);
    assert_eq!(status, 400, "the primary key is not a minted key: {answer}");

    for (body, what) in [
        (
            json!({ "rule": { "forge": "git-hub" } }),
            "an incomplete rule",
        ),
        (
            json!({
                "rule": { "forge": "sourcehut", "issuer": "x" },
                "permissions": [], "packages": ["a"]
            }),
            "an unknown forge",
        ),
        (
            json!({
                "rule": {
                    "forge": "git-hub", "issuer": OidcIssuer::GITHUB_ACTIONS,
                    "owner": "", "repository": "r", "workflow": "w.yml"
                },
                "permissions": ["push-new"], "packages": ["a"]
            }),
            "an empty owner",
        ),
        (
            json!({
                "rule": {
                    "forge": "git-hub", "issuer": OidcIssuer::GITHUB_ACTIONS,
                    "owner": "o", "repository": "r", "workflow": "w.yml"
                },
                "permissions": ["push-new"], "packages": ["a"], "lifetime_seconds": 999_999
            }),
            "a lifetime over a day",
        ),
    ] {
        let (status, answer) = server.call("POST", "/api/trust-policies", Some(body));
        assert!((400..500).contains(&status), "{what}: {status} {answer}");
        assert!(
            answer["errors"][0]["detail"].is_string(),
            "{what}: {answer}"
        );
    }
    for (body, what) in [
        (json!({ "packages": ["*"] }), "every crate"),
        (json!({ "lifetime_seconds": 7200 }), "a longer lifetime"),
        (json!({ "permissions": ["read", "push-new"] }), "read"),
    ] {
        let (status, answer) = server.call(
            "PATCH",
            &format!("/api/trust-policies/{policy}"),
            Some(body),
        );
        assert_eq!(status, 422, "{what}: {answer}");
    }
    let (status, _) = server.call("DELETE", "/api/trust-policies/not-an-id", None);
    assert_eq!(status, 400);
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
}
