//! Starts an example server on an ephemeral port with a temporary data directory, reads
//! the URL and the primary key it prints, and calls its token-management API.

#![allow(dead_code)] // each test file uses some of it

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Server {
    child: Child,
    pub url: String,
    pub primary: String,
    /// The metrics URL, when started with `--metrics-listen`.
    pub metrics: Option<String>,
    pub dir: tempfile::TempDir,
    /// The header the management API reads the primary key from.
    key_header: &'static str,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `target/debug/deps/<test>-<hash>` → `target/debug/examples/<name>`.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(name)
}

impl Server {
    /// Starts example `name` with `args` (after `--data <tmp>/data --port 0`, without the
    /// `--port` if `args` has a `--listen`); the primary
    /// key is sent in `key_header` to manage tokens.
    pub fn start(name: &str, args: &[&str], key_header: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(name, args, key_header, dir)
    }

    /// As [`Server::start`], in `dir` (which may hold an earlier run's data).
    pub fn start_in(
        name: &str,
        args: &[&str],
        key_header: &'static str,
        dir: tempfile::TempDir,
    ) -> Self {
        // Any free port, unless the test says where to listen.
        let port: &[&str] = if args.contains(&"--listen") {
            &[]
        } else {
            &["--port", "0"]
        };
        let mut child = Command::new(example_binary(name))
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(port)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("the {name} example is built by `cargo test --all-features`: {e}")
            });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut url, mut primary, mut metrics) = (String::new(), String::new(), None);
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(m) = line.strip_prefix("metrics on ") {
                metrics = Some(m.to_owned());
            }
            if let Some(u) = line.strip_prefix("listening on ") {
                url = u.to_owned();
            }
            if let Some(k) = line.strip_prefix("primary key (shown once): ") {
                primary = k.to_owned();
                break;
            }
            if line.starts_with("primary key: ") {
                break;
            }
        }
        let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
        assert!(!url.is_empty(), "{name} did not start: {log}");
        Server {
            child,
            url,
            primary,
            metrics,
            dir,
            key_header,
        }
    }

    /// Stops the server as systemd does, with SIGTERM, and waits for it to exit; returns
    /// whether it exited cleanly, and its data directory (to start it again in).
    #[allow(dead_code)] // not every test file stops its server
    pub fn terminate(mut self) -> (bool, tempfile::TempDir) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (status.success(), dir)
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap()
    }

    /// Calls the management API with the primary key; returns the status and the JSON.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}{path}", self.url);
        let key = (self.key_header, self.primary.as_str());
        let response = match (method, body) {
            ("POST", Some(body)) => agent
                .post(&url)
                .header(key.0, key.1)
                .header("Content-Type", "application/json")
                .send(body.to_string()),
            ("PATCH", Some(body)) => agent
                .patch(&url)
                .header(key.0, key.1)
                .header("Content-Type", "application/json")
                .send(body.to_string()),
            ("POST", None) => agent.post(&url).header(key.0, key.1).send_empty(),
            ("DELETE", _) => agent.delete(&url).header(key.0, key.1).call(),
            _ => agent.get(&url).header(key.0, key.1).call(),
        };
        let mut response = response.unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// POSTs `body` as it is, with `content_type` (if any), to the management API.
    #[allow(dead_code)] // not every test file sends raw bodies
    pub fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut request = agent
            .post(format!("{}{path}", self.url))
            .header(self.key_header, &self.primary);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let mut response = request.send(body).unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// As [`Server::call`], asserting success.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let (status, v) = self.call(method, path, body);
        assert!(status < 300, "{method} {path}: {status} {v}");
        v
    }

    /// Issues a token; returns (id, secret).
    pub fn token(&self, spec: serde_json::Value) -> (String, String) {
        let v = self.api("POST", "/api/tokens", Some(spec));
        (
            v["info"]["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }
}

/// What a client run did.
pub struct Run {
    pub ok: bool,
    pub output: String,
}

/// Runs `command`, bounded in time by `timeout(1)`, collecting both outputs.
pub fn run(command: Command, seconds: u32) -> Run {
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
    let mut bounded = Command::new("timeout");
    bounded.arg(seconds.to_string()).arg(program).args(args);
    if let Some(dir) = command.get_current_dir() {
        bounded.current_dir(dir);
    }
    for (k, v) in command.get_envs() {
        match v {
            Some(v) => bounded.env(k, v),
            None => bounded.env_remove(k),
        };
    }
    let out = bounded
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    Run {
        ok: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
