//! The NuGet feed example, driven by the real NuGet client (Debian's `nuget`, 2.8 on
//! mono): the seeds' keys pushing, reading, deleting and being refused.
//!
//! Skipped, with a notice, where the `nuget` binary is missing.

#![cfg(all(feature = "sqlite", feature = "http", feature = "tracing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/example_server.rs"]
mod example_server;
#[path = "common/nuget_client.rs"]
mod nuget_client;

use std::time::Duration;

use example_server::Server;
use nuget_client::{Client, Feeds as _, have_nuget, nuget_list, pack};

/// What nuget.org answers, as the reason phrase and the body, to a push or delete its key
/// may not make.
const BAD_KEY: &str = "The specified API key is invalid, has expired, or does not have permission to access the specified package";

fn start() -> Server {
    let server = Server::start(
        "nuget_feed",
        &[
            "--feed",
            "nuget",
            "--feed",
            "ci",
            "--feed",
            "release",
            "--private",
            "ci",
            "--private",
            "release",
        ],
        "X-NuGet-ApiKey",
    );
    assert!(server.primary.starts_with("fk_"));
    server
}

fn json(v: &str) -> serde_json::Value {
    serde_json::from_str(v).unwrap()
}

#[test]
fn the_seeds_keys_with_the_real_nuget_client() {
    if !have_nuget() {
        println!("skipped: the nuget binary is not installed (apt-get install nuget)");
        return;
    }
    let server = start();
    let c = Client::new(&server, "ci");
    let core1 = pack(&c.work, "Contoso.Service.Core", "1.0.0");
    let core11 = pack(&c.work, "Contoso.Service.Core", "1.1.0");
    let other = pack(&c.work, "Fabrikam.Other", "1.0.0");
    let framework = pack(&c.work, "Fabrikam.Service.Framework", "1.0.0");
    let api = pack(&c.work, "Contoso.Service.Api", "1.0.0");

    // NuGet's "Contoso service CI" key: push Contoso.Service.* only.
    let (_, contoso) = server.token(json(
        r#"{"description":"Contoso service CI","permissions":["push-new","push-version"],"packages":["Contoso.Service.*"],"expires_in_seconds":31536000}"#,
    ));
    let run = c.push(&server, "nuget", &core1, &contoso);
    assert!(run.ok, "{}", run.output);
    let run = c.push(&server, "nuget", &other, &contoso);
    assert!(!run.ok && run.output.contains("403"), "{}", run.output);

    // A fabrikam.service.* key pushes a package the feed has never had.
    let (_, fabrikam) = server.token(json(
        r#"{"description":"Fabrikam services","permissions":["push-new","push-version"],"packages":["fabrikam.service.*"]}"#,
    ));
    let run = c.push(&server, "nuget", &framework, &fabrikam);
    assert!(run.ok, "{}", run.output);

    // A push-new-versions-only key: a new version yes, a new id no.
    let (_, versions) = server.token(json(
        r#"{"description":"versions only","permissions":["push-version"]}"#,
    ));
    let run = c.push(&server, "nuget", &core11, &versions);
    assert!(run.ok, "{}", run.output);
    let run = c.push(&server, "nuget", &api, &versions);
    assert!(!run.ok && run.output.contains("403"), "{}", run.output);

    // MyGet's feed-scoped write-only key: push to ci, not release, and no reading ci.
    let (_, ci_writer) = server.token(json(
        r#"{"description":"TeamCity","permissions":["push-new","push-version"],"feeds":["ci"]}"#,
    ));
    let run = c.push(&server, "ci", &core1, &ci_writer);
    assert!(run.ok, "{}", run.output);
    let run = c.push(&server, "release", &core1, &ci_writer);
    assert!(!run.ok && run.output.contains("403"), "{}", run.output);
    let reader = Client::new(&server, "writer-reads");
    let config = reader.config(&server, "ci", "admin", &ci_writer);
    let run = reader.install("ci", "Contoso.Service.Core", Some(&config));
    assert!(!run.ok, "{}", run.output);
    let run = nuget_list(&reader.home, &reader.work, "ci", Some(&config));
    assert!(
        !run.output.contains("Contoso.Service.Core 1.0.0"),
        "{}",
        run.output
    );

    // A read-only token as the Basic password lists and installs from the private feed,
    // and cannot push.
    let (reader_id, read_only) =
        server.token(json(r#"{"description":"laptop","permissions":["read"]}"#));
    let laptop = Client::new(&server, "laptop");
    let config = laptop.config(&server, "ci", "admin", &read_only);
    let run = laptop.install("ci", "Contoso.Service.Core", Some(&config));
    assert!(run.ok, "{}", run.output);
    assert!(
        laptop
            .work
            .join("installed/Contoso.Service.Core.1.0.0/content/readme.txt")
            .exists()
    );
    let run = nuget_list(&laptop.home, &laptop.work, "ci", Some(&config));
    assert!(
        run.output.contains("Contoso.Service.Core 1.0.0"),
        "{}",
        run.output
    );
    let run = c.push(&server, "ci", &api, &read_only);
    assert!(!run.ok && run.output.contains("403"), "{}", run.output);

    // No credentials: refused, promptly.
    let anonymous = Client::new(&server, "anonymous");
    let run = anonymous.install(&server.feed("ci"), "Contoso.Service.Core", None);
    assert!(!run.ok, "{}", run.output);

    // Refreshed away, then revoked: refused.
    let fresh = server.api("POST", &format!("/api/tokens/{reader_id}/refresh"), None);
    let fresh = fresh["token"].as_str().unwrap().to_owned();
    let run = laptop.install("ci", "Contoso.Service.Core", Some(&config));
    assert!(!run.ok, "old secret after refresh: {}", run.output);
    let fresh_config = laptop.config(&server, "ci", "admin", &fresh);
    let run = laptop.install("ci", "Contoso.Service.Core", Some(&fresh_config));
    assert!(run.ok, "{}", run.output);
    server.api("DELETE", &format!("/api/tokens/{reader_id}"), None);
    let run = laptop.install("ci", "Contoso.Service.Core", Some(&fresh_config));
    assert!(!run.ok, "revoked: {}", run.output);

    // Expired: refused.
    let (_, brief) = server.token(json(
        r#"{"description":"brief","permissions":["read"],"expires_in_seconds":2}"#,
    ));
    std::thread::sleep(Duration::from_secs(3));
    let expired_config = laptop.config(&server, "ci", "admin", &brief);
    let run = laptop.install("ci", "Contoso.Service.Core", Some(&expired_config));
    assert!(!run.ok, "expired: {}", run.output);

    // nuget delete needs an unlist-scoped key.
    let run = c.delete(&server, "nuget", "Contoso.Service.Core", "1.0.0", &contoso);
    assert!(!run.ok && run.output.contains(BAD_KEY), "{}", run.output);
    let (_, unlister) = server.token(json(
        r#"{"description":"cleanup","permissions":["unlist"],"packages":["Contoso.*"]}"#,
    ));
    let run = c.delete(&server, "nuget", "Contoso.Service.Core", "1.0.0", &unlister);
    assert!(run.ok, "{}", run.output);

    // After a refresh the old key's push is refused and the new key's succeeds.
    let (contoso_id, contoso2) = server.token(json(
        r#"{"description":"Contoso CI 2","permissions":["push-new","push-version"],"packages":["Contoso.Service.*"]}"#,
    ));
    let renewed = server.api("POST", &format!("/api/tokens/{contoso_id}/refresh"), None);
    let renewed = renewed["token"].as_str().unwrap().to_owned();
    let run = c.push(&server, "nuget", &api, &contoso2);
    // nuget.org's answer to a dead key, which the client prints (never a prompt for a
    // user name).
    assert!(!run.ok && run.output.contains(BAD_KEY), "{}", run.output);
    let run = c.push(&server, "nuget", &api, &renewed);
    assert!(run.ok, "{}", run.output);

    // The primary key does all of it; the account password reads but cannot push.
    let run = c.push(&server, "release", &core1, &server.primary);
    assert!(run.ok, "{}", run.output);
    server.api(
        "POST",
        "/api/password",
        Some(json(r#"{"password":"a long and private passphrase"}"#)),
    );
    let owner = Client::new(&server, "owner");
    let config = owner.config(&server, "release", "admin", "a long and private passphrase");
    let run = owner.install("release", "Contoso.Service.Core", Some(&config));
    assert!(run.ok, "{}", run.output);
    let run = owner.push(&server, "release", &api, "a long and private passphrase");
    assert!(!run.ok, "{}", run.output);

    // Every refusal is in the server log with its reason.
    let log = server.log();
    for reason in [
        "package out of scope",
        "action out of scope: needs push-new",
        "feed out of scope",
        "action out of scope: needs read",
        "retired secret reused",
        "token revoked",
        "token expired",
        "action out of scope: needs unlist",
    ] {
        assert!(
            log.contains(reason),
            "no {reason:?} in the server log:\n{log}"
        );
    }
}

#[test]
fn a_package_scoped_read_token_installs_its_packages_only() {
    if !have_nuget() {
        println!("skipped: the nuget binary is not installed (apt-get install nuget)");
        return;
    }
    let server = start();
    let c = Client::new(&server, "publisher");
    for (id, version) in [
        ("Contoso.Service.Core", "1.0.0"),
        ("Fabrikam.Service.Framework", "1.0.0"),
    ] {
        let package = pack(&c.work, id, version);
        let run = c.push(&server, "ci", &package, &server.primary);
        assert!(run.ok, "{}", run.output);
    }
    let (_, contoso) = server.token(json(
        r#"{"description":"Contoso reader","permissions":["read"],"packages":["Contoso.*"]}"#,
    ));
    let reader = Client::new(&server, "contoso-reader");
    let config = reader.config(&server, "ci", "admin", &contoso);
    let run = reader.install("ci", "Contoso.Service.Core", Some(&config));
    assert!(run.ok, "{}", run.output);
    assert!(
        reader
            .work
            .join("installed/Contoso.Service.Core.1.0.0/content/readme.txt")
            .exists()
    );
    let run = reader.install("ci", "Fabrikam.Service.Framework", Some(&config));
    assert!(!run.ok, "{}", run.output);
    // The whole feed's listing is a feed-wide read.
    let run = nuget_list(&reader.home, &reader.work, "ci", Some(&config));
    assert!(
        !run.output.contains("Contoso.Service.Core 1.0.0"),
        "{}",
        run.output
    );
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("denied: package out of scope")
                && l.contains("Read on ci/Fabrikam.Service.Framework")),
        "{log}"
    );
}

#[test]
fn malformed_uploads_get_a_400_and_leave_nothing_on_disk() {
    if !example_server::example_binary("nuget_feed").exists() {
        println!("skipped: the nuget_feed example is not built");
        return;
    }
    let server = start();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let not_zip = b"this is not a zip".to_vec();
    // A zip with no .nuspec inside.
    let no_nuspec = {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buf);
        zip.start_file("readme.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, b"hi").unwrap();
        zip.finish().unwrap();
        buf.into_inner()
    };
    let bad_id = {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buf);
        zip.start_file("x.nuspec", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(
            &mut zip,
            b"<package><metadata><id>../../etc</id><version>1.0.0</version></metadata></package>",
        )
        .unwrap();
        zip.finish().unwrap();
        buf.into_inner()
    };
    for (body, message) in [
        (not_zip, "not a zip"),
        (no_nuspec, "no .nuspec"),
        (bad_id, "invalid package id"),
    ] {
        let mut response = agent
            .put(&server.push_source("nuget"))
            .header("X-NuGet-ApiKey", &server.primary)
            .send(&body[..])
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        let text = response.body_mut().read_to_string().unwrap();
        assert!(text.contains(message), "{text}");
    }
    let feed_dir = server.dir.path().join("data/feeds/nuget");
    assert_eq!(std::fs::read_dir(feed_dir).unwrap().count(), 0);
}

/// Sends `head` (a request line and headers, without the blank line) and `body`, then
/// reads the answer's status line and body. Only what is given is sent: a
/// `Content-Length` larger than `body` leaves the rest of the upload unsent.
fn raw(server: &Server, head: &str, body: &[u8]) -> (String, String) {
    use std::io::{Read as _, Write as _};
    let addr = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    // A server still waiting for the body never answers: the read times out.
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.lines().next().unwrap_or("").to_owned();
    (status, body.to_owned())
}

#[test]
fn an_unproven_push_is_refused_before_its_body_is_read() {
    if !example_server::example_binary("nuget_feed").exists() {
        println!("skipped: the nuget_feed example is not built");
        return;
    }
    let server = start();
    for key in ["", "X-NuGet-ApiKey: fk_not-a-key\r\n"] {
        let head = format!(
            "PUT /F/nuget/api/v2/package HTTP/1.1\r\n{key}Content-Type: application/octet-stream\r\nContent-Length: {}",
            60 * 1024 * 1024
        );
        // 64 KiB of a 60 MiB upload: the answer comes without the rest.
        let (status, body) = raw(&server, head.trim_end(), &[0u8; 64 * 1024]);
        assert_eq!(status, format!("HTTP/1.1 403 {BAD_KEY}"), "{body}");
        assert_eq!(body, BAD_KEY);
    }
}

#[test]
fn an_unknown_feed_answers_a_caller_not_proven_as_a_private_one_does() {
    if !example_server::example_binary("nuget_feed").exists() {
        println!("skipped: the nuget_feed example is not built");
        return;
    }
    let server = start();
    let bad_key = "X-NuGet-ApiKey: fk_not-a-key";
    let basic = "Authorization: Basic YWRtaW46bm90IHRoZSBwYXNzd29yZA=="; // admin:not the password
    for (method, path, credential) in [
        ("GET", "api/v2/Packages()", ""),
        ("GET", "api/v2/Packages()", basic),
        ("GET", "api/v2/", ""),
        ("GET", "api/v2/FindPackagesById()?id='A'", ""),
        ("GET", "api/v2/package/A/1.0.0", basic),
        ("PUT", "api/v2/package", bad_key),
        ("DELETE", "api/v2/package/A/1.0.0", bad_key),
        ("DELETE", "api/v2/package/A/1.0.0", ""),
    ] {
        let answer = |feed: &str| {
            let head =
                format!("{method} /F/{feed}/{path} HTTP/1.1\r\n{credential}\r\nContent-Length: 0");
            raw(&server, &head.replace("\r\n\r\n", "\r\n"), b"")
        };
        let (known, unknown) = (answer("ci"), answer("no-such-feed"));
        assert_eq!(known, unknown, "{method} {path} {credential}");
        assert!(
            known.0.contains(" 401 ") || known.0.contains(" 403 "),
            "{method} {path}: {known:?}"
        );
    }
    // A proven caller learns that the feed does not exist.
    let head = format!(
        "GET /F/no-such-feed/api/v2/Packages() HTTP/1.1\r\nX-NuGet-ApiKey: {}",
        server.primary
    );
    let (status, _) = raw(&server, &head, b"");
    assert!(status.contains(" 404 "), "{status}");
}

/// `nuget push` of a package holding a live token of this registry is refused with a
/// message that says so (the reason phrase NuGet prints), and the token no longer works.
#[test]
fn a_package_holding_a_live_token_is_refused_and_the_token_revoked() {
    if !have_nuget() {
        println!("SKIPPED: nuget is not installed (Debian: apt-get install nuget)");
        return;
    }
    if !example_server::example_binary("nuget_feed").exists() {
        println!("skipped: the nuget_feed example is not built");
        return;
    }
    let server = start();
    let client = Client::new(&server, "leaky");
    let (_, pusher) = server.token(json(
        r#"{"description": "CI", "permissions": ["push-new", "push-version", "read"]}"#,
    ));
    let (_, pasted) = server.token(json(
        r#"{"description": "laptop", "permissions": ["read"]}"#,
    ));
    let package = nuget_client::pack_with(
        &client.work,
        "Leaky.Package",
        "1.0.0",
        &format!("<add key=\"ApiKey\" value=\"{pasted}\" />"),
    );
    let run = client.push(&server, "ci", &package, &pusher);
    assert!(
        !run.ok,
        "pushed a package holding a live token:\n{}",
        run.output
    );
    assert!(
        run.output
            .contains("contains an access token of this registry"),
        "{}",
        run.output
    );
    let (status, _) = raw(
        &server,
        &format!("GET /F/ci/api/v2/Packages() HTTP/1.1\r\nX-NuGet-ApiKey: {pasted}"),
        b"",
    );
    assert!(
        status.contains(" 401 "),
        "the pasted token still works: {status}"
    );
    let run = client.push(&server, "ci", &package, &pusher);
    assert!(
        run.ok,
        "a package holding a dead token is refused:\n{}",
        run.output
    );
}
