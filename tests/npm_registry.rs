//! The npm registry example, driven by the real `npm` (11): signing in, creating
//! granular tokens with `npm token create`, publishing, installing, deprecating,
//! unpublishing, tagging, listing and revoking tokens, and being refused with npm's own
//! messages.
//!
//! Where npm 11 is missing it says `SKIPPED` and returns; under `CI` (which installs it,
//! see `.ci/run`) it fails instead.

#![cfg(all(feature = "sqlite", feature = "http", feature = "tracing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/example_server.rs"]
mod example_server;

// The example's pure parts, compiled here so that their unit tests run (an example's own
// `#[cfg(test)]` modules are never built by `cargo test`).
#[allow(dead_code)]
#[path = "../examples/npm_registry/attempts.rs"]
mod attempts;
#[allow(dead_code)]
#[path = "../examples/npm_registry/errors.rs"]
mod errors;
#[allow(dead_code)]
#[path = "../examples/npm_registry/names.rs"]
mod names;
#[allow(dead_code)]
#[path = "../examples/npm_registry/packages.rs"]
mod packages;
#[allow(dead_code)]
#[path = "../examples/npm_registry/publish.rs"]
mod publish;
#[allow(dead_code)]
#[path = "../examples/npm_registry/routes.rs"]
mod routes;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use example_server::{Run, Server, run};
use feedkey::time::OffsetDateTime;
use feedkey::time::format_description::well_known::Rfc3339;
use serde_json::{Value, json};

const PASSWORD: &str = "s3cret-npm-pass";

/// The major version of the `npm` on the PATH, if it runs.
fn npm_major() -> Option<u32> {
    let out = Command::new("npm").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().split('.').next()?.parse().ok()
}

/// Whether npm 11 and the example are here; says loudly what is missing, and fails
/// under CI (which installs them).
fn ready() -> bool {
    let mut missing = Vec::new();
    match npm_major() {
        Some(major) if major >= 11 => {}
        Some(major) => missing.push(format!(
            "npm 11 (this is npm {major}: npm install -g npm@11)"
        )),
        None => missing.push("npm 11 (apt-get install npm; npm install -g npm@11)".to_owned()),
    }
    if !example_server::example_binary("npm_registry").exists() {
        missing.push("the npm_registry example (built by `cargo test --all-features`)".to_owned());
    }
    if missing.is_empty() {
        return true;
    }
    let notice = format!("SKIPPED: the npm tests need {}", missing.join(", "));
    assert!(std::env::var_os("CI").is_none(), "{notice}");
    eprintln!("{notice}");
    false
}

/// One npm user: a private HOME (and so npm cache) and `.npmrc`.
struct Client {
    home: PathBuf,
    npmrc: PathBuf,
    registry: String,
}

impl Client {
    fn new(server: &Server, name: &str) -> Self {
        let home = server.dir.path().join(format!("home-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        let npmrc = home.join(".npmrc");
        std::fs::write(&npmrc, "").unwrap();
        Self {
            home,
            npmrc,
            registry: format!("{}/", server.url),
        }
    }

    /// A user whose `.npmrc` holds `token`, as the README says to write it.
    fn with_token(server: &Server, name: &str, token: &str) -> Self {
        let client = Self::new(server, name);
        let host = server.url.trim_start_matches("http:");
        std::fs::write(&client.npmrc, format!("{host}/:_authToken={token}\n")).unwrap();
        client
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new("npm");
        command
            .args(args)
            .args(["--registry", &self.registry])
            .arg("--userconfig")
            .arg(&self.npmrc)
            .args([
                "--no-audit",
                "--no-fund",
                "--loglevel=http",
                "--color=false",
            ])
            .current_dir(dir)
            .env("HOME", &self.home)
            .env("npm_config_cache", self.home.join(".npm"))
            .env("npm_config_update_notifier", "false")
            .env_remove("NPM_TOKEN")
            .env_remove("NODE_AUTH_TOKEN");
        command
    }

    /// Runs `npm <args>` in `dir`, bounded in time.
    fn npm(&self, dir: &Path, args: &[&str]) -> Run {
        run(self.command(dir, args), 60)
    }

    /// `npm login --auth-type=legacy`, typing the name and the password at its prompts.
    /// Each prompt reads its own line and drops what else was buffered, so each line is
    /// sent only once its prompt is shown.
    fn login(&self, user: &str, password: &str) -> Run {
        let mut child = self
            .command(&self.home, &["login", "--auth-type=legacy"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let shown = Arc::new(Mutex::new(Vec::<u8>::new()));
        let mut stdout = child.stdout.take().unwrap();
        let reader = {
            let shown = Arc::clone(&shown);
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = stdout.read(&mut buf) {
                    shown.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let wait_for = |prompt: &str| {
            while !String::from_utf8_lossy(&shown.lock().unwrap()).contains(prompt)
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        let mut stdin = child.stdin.take().unwrap();
        wait_for("Username:");
        let _ = writeln!(stdin, "{user}");
        wait_for("Password:");
        let _ = writeln!(stdin, "{password}");
        drop(stdin);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        reader.join().unwrap();
        let shown = shown.lock().unwrap();
        Run {
            ok: out.status.success(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&shown),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Writes package `name` at `version` in a directory of its own.
    fn package(&self, name: &str, version: &str) -> PathBuf {
        let dir = self
            .home
            .join("src")
            .join(format!("{}-{version}", name.replace('/', "+")));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = json!({
            "name": name, "version": version, "description": format!("{name} for tests"),
            "main": "index.js", "license": "MIT",
        });
        std::fs::write(dir.join("package.json"), manifest.to_string()).unwrap();
        std::fs::write(dir.join("index.js"), "module.exports = 42;\n").unwrap();
        dir
    }

    fn publish(&self, name: &str, version: &str) -> Run {
        let dir = self.package(name, version);
        self.npm(&dir, &["publish"])
    }

    /// `npm token create … --json` with the password; the answer.
    fn create_token(&self, args: &[&str]) -> Value {
        let mut all = vec!["token", "create", "--password", PASSWORD, "--json"];
        all.extend_from_slice(args);
        let run = self.npm(&self.home, &all);
        assert!(run.ok, "npm token create {args:?}: {}", run.output);
        let start = run.output.find('{').unwrap();
        let end = run.output.rfind('}').unwrap();
        serde_json::from_str(&run.output[start..=end]).unwrap()
    }
}

fn refused(run: &Run, what: &str, expected: &str) {
    assert!(!run.ok, "{what} should have been refused:\n{}", run.output);
    assert!(
        run.output.contains(expected),
        "{what}: no {expected:?} in:\n{}",
        run.output
    );
}

fn succeeded(run: &Run, what: &str) {
    assert!(run.ok, "{what}: {}", run.output);
}

/// A raw request with `token`: its status and `WWW-Authenticate`.
fn status(server: &Server, method: &str, path: &str, token: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{path}", server.url);
    let bearer = format!("Bearer {token}");
    let response = match method {
        "PUT" => agent
            .put(&url)
            .header("Authorization", &bearer)
            .header("Content-Type", "application/json")
            .send("{}"),
        _ => agent.get(&url).header("Authorization", &bearer).call(),
    }
    .unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (response.status().as_u16(), challenge)
}

#[test]
fn granular_tokens_with_the_real_npm_client() {
    if !ready() {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let server = Server::start_in(
        "npm_registry",
        &["--password-file", password_file.to_str().unwrap()],
        "Authorization",
        dir,
    );
    assert!(server.primary.starts_with("fk_"), "{}", server.primary);

    // Signing in: a wrong password is npm's "Incorrect or missing password"; the right
    // one gives a login session, which `npm whoami` names.
    let owner = Client::new(&server, "owner");
    refused(
        &owner.login("admin", "not-the-password"),
        "a wrong password",
        "Incorrect or missing password",
    );
    succeeded(&owner.login("admin", PASSWORD), "npm login");
    let whoami = owner.npm(&owner.home, &["whoami"]);
    assert!(
        whoami.ok && whoami.output.contains("admin"),
        "{}",
        whoami.output
    );
    let npmrc = std::fs::read_to_string(&owner.npmrc).unwrap();
    assert!(npmrc.contains(":_authToken=fk_"), "{npmrc}");

    // A read-write token for the scope @acme publishes @acme/util and nothing else.
    let publisher = owner.create_token(&[
        "--name",
        "acme publisher",
        "--token-description",
        "CI for @acme",
        "--scopes",
        "@acme",
        "--packages-and-scopes-permission",
        "read-write",
    ]);
    let publisher_token = publisher["token"].as_str().unwrap().to_owned();
    let ci = Client::with_token(&server, "ci", &publisher_token);
    succeeded(
        &ci.publish("@acme/util", "1.0.0"),
        "publish @acme/util 1.0.0",
    );
    refused(
        &ci.publish("left-pad", "1.0.0"),
        "publish left-pad",
        "403 Forbidden",
    );

    // A tarball holding a live token of this registry is refused, and the token dies.
    let pasted = owner.create_token(&[
        "--name",
        "pasted",
        "--scopes",
        "@acme",
        "--packages-and-scopes-permission",
        "read-only",
    ]);
    let pasted = pasted["token"].as_str().unwrap().to_owned();
    assert_eq!(status(&server, "GET", "/@acme%2futil", &pasted).0, 200);
    let leaky = ci.package("@acme/leaky", "1.0.0");
    std::fs::write(
        leaky.join("index.js"),
        format!("module.exports = {{ token: \"{pasted}\" }};\n"),
    )
    .unwrap();
    refused(
        &ci.npm(&leaky, &["publish"]),
        "a tarball holding a live token",
        "contains an access token of this registry",
    );
    assert_eq!(status(&server, "GET", "/@acme%2futil", &pasted).0, 401);

    // A read-only token installs @acme/util into a fresh project and cannot publish.
    let reader = owner.create_token(&[
        "--name",
        "laptop",
        "--scopes",
        "@acme",
        "--packages-and-scopes-permission",
        "read-only",
    ]);
    let laptop = Client::with_token(&server, "laptop", reader["token"].as_str().unwrap());
    let project = laptop.home.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"project","version":"1.0.0"}"#,
    )
    .unwrap();
    succeeded(
        &laptop.npm(&project, &["install", "@acme/util"]),
        "npm install",
    );
    let installed =
        std::fs::read_to_string(project.join("node_modules/@acme/util/package.json")).unwrap();
    assert!(installed.contains("\"1.0.0\""), "{installed}");
    refused(
        &laptop.publish("@acme/util", "1.1.0"),
        "publish with read-only",
        "403 Forbidden",
    );

    // CIDR ranges: 10.0.0.0/8 is refused from 127.0.0.1 (npm's EAUTHIP); 127.0.0.0/8 works.
    let office = owner.create_token(&[
        "--name",
        "office",
        "--packages-all",
        "--packages-and-scopes-permission",
        "read-only",
        "--cidr",
        "10.0.0.0/8",
    ]);
    let office_token = office["token"].as_str().unwrap().to_owned();
    let away = Client::with_token(&server, "away", &office_token);
    refused(
        &away.npm(&away.home, &["view", "@acme/util", "version"]),
        "a token from outside its range",
        "EAUTHIP",
    );
    let local = owner.create_token(&[
        "--name",
        "local",
        "--packages-all",
        "--packages-and-scopes-permission",
        "read-only",
        "--cidr",
        "127.0.0.0/8",
    ]);
    let here = Client::with_token(&server, "here", local["token"].as_str().unwrap());
    let view = here.npm(&here.home, &["view", "@acme/util", "version"]);
    assert!(view.ok && view.output.contains("1.0.0"), "{}", view.output);

    // Expiry: one day shows its date; a write token past npm's 90 days is refused.
    let run = owner.npm(
        &owner.home,
        &[
            "token",
            "create",
            "--name",
            "tomorrow",
            "--packages-all",
            "--packages-and-scopes-permission",
            "read-only",
            "--expires",
            "1",
            "--password",
            PASSWORD,
        ],
    );
    succeeded(&run, "npm token create --expires 1");
    let tomorrow = run
        .output
        .lines()
        .find_map(|l| l.strip_prefix("expires: "))
        .unwrap_or_else(|| panic!("no expiry shown: {}", run.output))
        .trim()
        .to_owned();
    let at = OffsetDateTime::parse(&tomorrow, &Rfc3339).unwrap();
    let off = at - (OffsetDateTime::now_utc() + feedkey::time::Duration::days(1));
    assert!(
        off.abs() < feedkey::time::Duration::minutes(5),
        "{tomorrow}"
    );
    let run = owner.npm(
        &owner.home,
        &[
            "token",
            "create",
            "--name",
            "forever",
            "--packages-all",
            "--packages-and-scopes-permission",
            "read-write",
            "--expires",
            "91",
            "--password",
            PASSWORD,
        ],
    );
    refused(&run, "a 91-day write token", "may live at most 90 days");
    let run = owner.npm(
        &owner.home,
        &[
            "token",
            "create",
            "--name",
            "guess",
            "--packages-all",
            "--packages-and-scopes-permission",
            "read-only",
            "--password",
            "wrong",
        ],
    );
    refused(
        &run,
        "token create with a wrong password",
        "Incorrect or missing password",
    );

    // The list: permissions, packages and ranges, paged, never a secret.
    let run = owner.npm(&owner.home, &["token", "list", "--json"]);
    succeeded(&run, "npm token list");
    let start = run.output.find('[').unwrap();
    let list: Vec<Value> =
        serde_json::from_str(&run.output[start..=run.output.rfind(']').unwrap()]).unwrap();
    let find = |name: &str| list.iter().find(|t| t["name"] == name).unwrap().clone();
    assert_eq!(find("acme publisher")["permission"], "read-write");
    assert_eq!(find("acme publisher")["scopes"], json!(["@acme"]));
    assert_eq!(find("acme publisher")["description"], "CI for @acme");
    assert_eq!(find("laptop")["readonly"], true);
    assert_eq!(find("office")["cidr_whitelist"], json!(["10.0.0.0/8"]));
    assert_eq!(find("office")["packages_all"], true);
    assert_eq!(find("tomorrow")["expires"], tomorrow.as_str());
    assert_eq!(find("npm login")["session"], true);
    for secret in [&publisher_token, &office_token, &server.primary] {
        assert!(
            !run.output.contains(secret.as_str()),
            "a secret in the list"
        );
    }
    let (code, page) = server.call("GET", "/-/npm/v1/tokens?perPage=2", None);
    assert_eq!(code, 200);
    assert_eq!(page["objects"].as_array().unwrap().len(), 2);
    assert!(page["urls"]["next"].as_str().unwrap().contains("page=1"));

    // A granular token cannot manage tokens.
    refused(
        &ci.npm(&ci.home, &["token", "list"]),
        "token list with a granular token",
        "403",
    );

    // Deprecating needs unlist: a push-version token (made with the primary key through
    // the token API) may publish a version but not deprecate one; read-write may.
    let (_, versions) = server.token(json!({
        "description": "versions only", "permissions": ["read", "push-version"],
        "packages": ["@acme/*"], "expires_in_seconds": 3600,
    }));
    let pusher = Client::with_token(&server, "pusher", &versions);
    succeeded(
        &pusher.publish("@acme/util", "1.1.0"),
        "publish 1.1.0 with push-version",
    );
    refused(
        &pusher.publish("@acme/extra", "1.0.0"),
        "a new name with push-version",
        "403",
    );
    refused(
        &pusher.npm(&pusher.home, &["deprecate", "@acme/util@1.0.0", "use 1.1"]),
        "deprecate without unlist",
        "403 Forbidden",
    );
    succeeded(
        &ci.npm(&ci.home, &["deprecate", "@acme/util@1.0.0", "use 1.1"]),
        "deprecate with read-write",
    );
    let view = laptop.npm(&laptop.home, &["view", "@acme/util@1.0.0", "deprecated"]);
    assert!(view.output.contains("use 1.1"), "{}", view.output);

    // dist-tags need push; unpublishing a version needs unlist.
    succeeded(
        &ci.npm(&ci.home, &["dist-tag", "add", "@acme/util@1.0.0", "stable"]),
        "dist-tag add",
    );
    refused(
        &laptop.npm(
            &laptop.home,
            &["dist-tag", "add", "@acme/util@1.1.0", "stable"],
        ),
        "dist-tag add with read-only",
        "403",
    );
    let tags = laptop.npm(&laptop.home, &["dist-tag", "ls", "@acme/util"]);
    assert!(tags.output.contains("stable: 1.0.0"), "{}", tags.output);
    succeeded(
        &ci.npm(&ci.home, &["unpublish", "@acme/util@1.1.0"]),
        "unpublish 1.1.0",
    );
    let view = laptop.npm(&laptop.home, &["view", "@acme/util", "versions", "--json"]);
    assert!(view.ok && !view.output.contains("1.1.0"), "{}", view.output);

    // Revoking: by id (as `npm token list` shows it) and by value; the next use fails.
    let key = find("acme publisher")["key"].as_str().unwrap().to_owned();
    // A key is hex, so it never begins with `-` (which `npm token revoke` would read as
    // an option: a base64url id does, one time in 64).
    assert!(
        key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );
    let run = owner.npm(&owner.home, &["token", "revoke", &key[..8]]);
    assert!(
        run.ok && run.output.contains("Removed 1 token"),
        "{}",
        run.output
    );
    refused(
        &ci.publish("@acme/util", "1.2.0"),
        "publish with a revoked token",
        "your authentication token seems to be invalid",
    );
    let run = owner.npm(&owner.home, &["token", "revoke", &office_token]);
    assert!(
        run.ok && run.output.contains("Removed 1 token"),
        "{}",
        run.output
    );

    // An expired token: npm's usual message.
    let (_, brief) = server.token(json!({
        "description": "brief", "permissions": ["read"], "expires_in_seconds": 1,
    }));
    std::thread::sleep(Duration::from_millis(1500));
    let late = Client::with_token(&server, "late", &brief);
    refused(
        &late.npm(&late.home, &["view", "@acme/util", "version"]),
        "an expired token",
        "your authentication token seems to be invalid",
    );

    // The statuses npm reads: 401 Bearer for a dead token, 401 ipaddress for one outside
    // its ranges, 403 for a good token without the permission.
    assert_eq!(
        status(&server, "GET", "/@acme%2futil", &brief),
        (401, "Bearer".to_owned())
    );
    assert_eq!(
        status(&server, "GET", "/@acme%2futil", &publisher_token),
        (401, "Bearer".to_owned())
    );
    let (_, outside) = server.token(json!({
        "description": "outside", "permissions": ["read"], "networks": ["10.0.0.0/8"],
    }));
    assert_eq!(
        status(&server, "GET", "/@acme%2futil", &outside),
        (401, "ipaddress".to_owned())
    );
    assert_eq!(status(&server, "PUT", "/@acme%2futil", &versions).0, 403);

    // Every refusal's reason is in the log, and no secret is.
    let log = server.log();
    for reason in [
        "denied: package out of scope",
        "denied: action out of scope: needs push-version",
        "denied: action out of scope: needs push-new",
        "denied: action out of scope: needs unlist",
        "denied: client address not allowed",
        "denied: token revoked",
        "denied: token expired",
        "token create refused: a token that can write may live at most 90 days",
        "token create refused: wrong password",
        "sign-in refused: wrong password",
        "denied: token management needs a login session",
    ] {
        assert!(log.contains(reason), "{reason:?} not in the log:\n{log}");
    }
    for secret in [
        &publisher_token,
        &office_token,
        &versions,
        &brief,
        &server.primary,
    ] {
        assert!(!log.contains(secret.as_str()), "a secret in the log");
    }
    // `npm logout` ends the login session it was signed in with.
    let npmrc = std::fs::read_to_string(&owner.npmrc).unwrap();
    let session = npmrc
        .lines()
        .find_map(|l| {
            l.split_once(":_authToken=")
                .map(|(_, t)| t.trim().to_owned())
        })
        .unwrap();
    assert_eq!(status(&server, "GET", "/-/whoami", &session).0, 200);
    succeeded(&owner.npm(&owner.home, &["logout"]), "npm logout");
    assert_eq!(
        status(&server, "GET", "/-/whoami", &session),
        (401, "Bearer".to_owned())
    );

    // Guessing the password: after ten failures from one address, even the right
    // password waits (429), unchecked.
    let sign_in = |password: &str| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let body = json!({"name": "admin", "password": password}).to_string();
        agent
            .put(format!("{}/-/user/org.couchdb.user:admin", server.url))
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap()
            .status()
            .as_u16()
    };
    let mut statuses: Vec<u16> = (0..10).map(|i| sign_in(&format!("guess-{i}"))).collect();
    statuses.push(sign_in(PASSWORD));
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        8,
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(server.log().contains("too many failed password checks"));
    eprintln!("npm tests took {:?}", started.elapsed());
}
