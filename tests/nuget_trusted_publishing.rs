//! Trusted publishing on the NuGet feed example, as the `NuGet/login` action calls it:
//! `POST /api/v2/token` with the job's OIDC token as a Bearer token and
//! `{"username", "tokenType": "ApiKey"}`, answering `{"apiKey"}`; then `nuget push` with
//! that key works for a package the policy covers and is refused for another (skipped,
//! with a notice, where the `nuget` binary is missing); the same OIDC token twice, another
//! account's name and bad input are refused with a 4xx.
//!
//! Run `cargo build --all-features --examples` first: a test run does not rebuild
//! examples.

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
#[path = "common/nuget_client.rs"]
mod nuget_client;

use example_server::Server;
use feedkey::oidc::OidcIssuer;
use nuget_client::{Client, have_nuget, pack};
use serde_json::{Value, json};

fn start() -> Server {
    let keys = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(keys.path(), issuer::jwks()).unwrap();
    let path = keys.path().to_str().unwrap().to_owned();
    let server = Server::start(
        "nuget_feed",
        &[
            "--feed",
            "release",
            "--oidc-issuer",
            OidcIssuer::GITHUB_ACTIONS,
            "--oidc-jwks",
            &path,
            "--oidc-audience",
            issuer::AUDIENCE,
        ],
        "X-NuGet-ApiKey",
    );
    drop(keys);
    server
}

fn job_token(jti: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    issuer::signed(&issuer::job(now.try_into().unwrap(), jti))
}

/// `NuGet/login`'s call: `jwt` as a Bearer token (if any), `body` as JSON.
fn login(server: &Server, jwt: Option<&str>, body: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent
        .post(format!("{}/api/v2/token", server.url))
        .header("Content-Type", "application/json");
    if let Some(jwt) = jwt {
        request = request.header("Authorization", &format!("Bearer {jwt}"));
    }
    let mut response = request.send(body).unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

const AS_ADMIN: &str = r#"{"username":"admin","tokenType":"ApiKey"}"#;

#[test]
fn nuget_login_gets_an_api_key_that_pushes_only_what_the_policy_covers() {
    let server = start();
    server.api(
        "POST",
        "/api/trust-policies",
        Some(json!({
            "rule": {
                "forge": "git-hub",
                "issuer": OidcIssuer::GITHUB_ACTIONS,
                "owner": "contoso",
                "repository": "service",
                "workflow": "release.yml",
            },
            "permissions": ["push-new", "push-version"],
            "feeds": ["release"],
            "packages": ["Contoso.Service.*"],
        })),
    );
    let jwt = job_token("nuget-run-1");
    let (status, answer) = login(&server, Some(&jwt), AS_ADMIN);
    assert_eq!(status, 200, "{answer}");
    let key = answer["apiKey"].as_str().unwrap().to_owned();
    assert!(key.starts_with("fk_"));

    let (status, answer) = login(&server, Some(&jwt), AS_ADMIN);
    assert_eq!(
        (status, answer["errors"][0]["detail"].as_str()),
        (401, Some("not allowed"))
    );
    let (status, _) = login(
        &server,
        Some(&job_token("nuget-run-2")),
        r#"{"username":"mallory","tokenType":"ApiKey"}"#,
    );
    assert_eq!(status, 401, "another account's name");
    for (jwt, body, what) in [
        (None, AS_ADMIN, "no Bearer token"),
        (
            Some("x"),
            r#"{"username":"admin","tokenType":"Other"}"#,
            "another token type",
        ),
        (Some("x"), "{", "not JSON"),
        (
            Some("x"),
            r#"{"username":"","tokenType":"ApiKey"}"#,
            "an empty username",
        ),
        (Some("not a jwt"), AS_ADMIN, "not a JWT"),
    ] {
        let (status, answer) = login(&server, jwt, body);
        assert!((400..500).contains(&status), "{what}: {status}");
        assert!(
            answer["errors"][0]["detail"].is_string(),
            "{what}: {answer}"
        );
    }

    if !have_nuget() {
        println!("skipped: nuget push (the nuget binary is not installed: apt-get install nuget)");
        return;
    }
    let client = Client::new(&server, "ci");
    let covered = pack(&client.work, "Contoso.Service.Core", "1.0.0");
    let other = pack(&client.work, "Fabrikam.Core", "1.0.0");
    let run = client.push(&server, "release", &covered, &key);
    assert!(run.ok, "a covered package:\n{}", run.output);
    let run = client.push(&server, "release", &other, &key);
    assert!(
        !run.ok && run.output.contains("API key is invalid"),
        "a package the policy does not cover:\n{}",
        run.output
    );
    assert!(!server.log().contains("panicked"));
}
