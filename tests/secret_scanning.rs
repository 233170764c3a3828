//! GitHub's secret-scanning partner endpoint on both example servers: a local P-256 key
//! plays GitHub. Signed reports revoke live tokens and answer GitHub's feedback list;
//! unsigned, wrongly signed, tampered and oversized reports are refused; a replay
//! changes nothing.

#![cfg(all(feature = "sqlite", feature = "http", feature = "tracing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
#[path = "common/example_server.rs"]
mod example_server;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use example_server::Server;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";

fn github_key() -> SigningKey {
    SigningKey::from_slice(&[7; 32]).unwrap()
}

/// The keys file, in the form GitHub publishes its keys.
fn keys_file(dir: &std::path::Path) -> std::path::PathBuf {
    let pem = github_key()
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let path = dir.join("github-keys.json");
    let published =
        json!({"public_keys": [{"key_identifier": KEY_ID, "key": pem, "is_current": true}]});
    std::fs::write(&path, published.to_string()).unwrap();
    path
}

fn sign(body: &[u8]) -> String {
    let signature: Signature = github_key().sign(body);
    STANDARD.encode(signature.to_der().as_bytes())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Posts a report; returns the status and the JSON answer.
fn post(
    server: &Server,
    body: &[u8],
    key_id: Option<&str>,
    signature: Option<&str>,
) -> (u16, Value) {
    let mut request = agent()
        .post(format!("{}/api/secret-scanning/github", server.url))
        .header("Content-Type", "application/json");
    if let Some(id) = key_id {
        request = request.header("Github-Public-Key-Identifier", id);
    }
    if let Some(signature) = signature {
        request = request.header("Github-Public-Key-Signature", signature);
    }
    let mut response = request.send(body).unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The status line answering a 2 MiB report (the server may stop reading it early, so
/// a failed write of the rest is no failure).
fn oversized(server: &Server) -> String {
    use std::io::{BufRead as _, BufReader, Write as _};
    let addr = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let signature = sign(b"[]");
    write!(
        stream,
        "POST /api/secret-scanning/github HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\
         Github-Public-Key-Identifier: {KEY_ID}\r\nGithub-Public-Key-Signature: {signature}\r\n\r\n",
        2 * 1024 * 1024
    )
    .unwrap();
    let _ = stream.write_all(&vec![b' '; 2 * 1024 * 1024]);
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn report_on(name: &str, key_header: &'static str) {
    if !example_server::example_binary(name).exists() {
        println!("skipped: the {name} example is not built");
        return;
    }
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_file(keys_dir.path());
    let server = Server::start(
        name,
        &["--secret-scanning-keys", keys.to_str().unwrap()],
        key_header,
    );
    let read = json!({"description": "laptop", "permissions": ["read"]});
    let (live_id, live) = server.token(read.clone());
    let (dead_id, dead) = server.token(read.clone());
    let (kept_id, kept) = server.token(read);
    let (status, _) = server.call("DELETE", &format!("/api/tokens/{dead_id}"), None);
    assert_eq!(status, 204);
    let forged = common::wrong_secret(&kept);
    let foreign = format!("ghp_{}", "a".repeat(36));
    let url = "https://github.com/alice/app/blob/0123abc/.env";
    let items: Vec<Value> = [&live, &dead, &forged, &foreign, "fk_malformed"]
        .iter()
        .map(|t| json!({"token": t, "type": "feedkey_token", "url": url, "source": "content"}))
        .collect();
    let body = serde_json::to_vec(&items).unwrap();

    // Refused: unsigned, an unknown key, a wrong signature, a body changed after signing.
    assert_eq!(post(&server, &body, None, None).0, 401);
    assert_eq!(
        post(&server, &body, Some("other-key"), Some(&sign(&body))).0,
        401
    );
    assert_eq!(
        post(&server, &body, Some(KEY_ID), Some(&sign(b"[]"))).0,
        401
    );
    let mut tampered = body.clone();
    let last = tampered.len() - 2;
    tampered[last] = b' ';
    assert_eq!(
        post(&server, &tampered, Some(KEY_ID), Some(&sign(&body))).0,
        401
    );
    assert_eq!(
        post(&server, &body, Some(KEY_ID), Some("not base64!")).0,
        401
    );
    assert!(
        oversized(&server).contains(" 413 "),
        "an oversized report was read"
    );
    // None of those touched a token.
    assert_eq!(server.call("GET", "/api/tokens", None).0, 200);
    let standing = |id: &str| {
        let (_, listed) = server.call("GET", "/api/tokens", None);
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(standing(&live_id).as_deref(), Some("active"));

    // A signed report: the live token is revoked; the feedback names each by its hash.
    let (status, feedback) = post(&server, &body, Some(KEY_ID), Some(&sign(&body)));
    assert_eq!(status, 200, "{feedback}");
    let labels: Vec<(&str, &str)> = feedback
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["token_hash"].as_str().unwrap(),
                f["label"].as_str().unwrap(),
            )
        })
        .collect();
    let expected = [
        (hash(&live), "true_positive"),
        (hash(&dead), "true_positive"),
        (hash(&forged), "false_positive"),
        (hash(&foreign), "false_positive"),
        (hash("fk_malformed"), "false_positive"),
    ];
    let expected: Vec<(&str, &str)> = expected.iter().map(|(h, l)| (h.as_str(), *l)).collect();
    assert_eq!(labels, expected);
    assert!(
        feedback.to_string().find(&live[3..]).is_none(),
        "the answer echoes a token"
    );
    assert_eq!(feedback[0]["token_type"], "feedkey_token");
    // A revoked token is listed no more.
    assert_eq!(standing(&live_id), None, "the leaked token was not revoked");
    assert_eq!(
        standing(&kept_id).as_deref(),
        Some("active"),
        "a forged report revoked a token"
    );

    // Replayed: the same answer, nothing more revoked.
    let (status, again) = post(&server, &body, Some(KEY_ID), Some(&sign(&body)));
    assert_eq!((status, &again), (200, &feedback));
    assert_eq!(standing(&kept_id).as_deref(), Some("active"));
    assert!(server.log().contains("secret-scanning report from GitHub"));
    assert!(!server.log().contains(&live[3..]), "a token in the log");
}

#[test]
fn github_reports_on_the_cargo_registry() {
    report_on("cargo_registry", "Authorization");
}

#[test]
fn github_reports_on_the_nuget_feed() {
    report_on("nuget_feed", "X-NuGet-ApiKey");
}

/// Without `--secret-scanning-keys`, the endpoint takes nothing.
#[test]
fn no_keys_no_reports() {
    if !example_server::example_binary("cargo_registry").exists() {
        println!("skipped: the cargo_registry example is not built");
        return;
    }
    let server = Server::start("cargo_registry", &[], "Authorization");
    let (status, _) = post(&server, b"[]", Some(KEY_ID), Some(&sign(b"[]")));
    assert_eq!(status, 404);
}
