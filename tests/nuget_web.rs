//! The NuGet registry's web pages in a real browser (Debian's `chromium`, headless,
//! driven through `chromedriver` by fantoccini), with the real `nuget` client pushing
//! with the tokens the pages make, and a local SMTP sink reading the registry's mail.
//!
//! Each test is one story. Screenshots of the pages are taken as the stories run; with
//! `FEEDKEY_UPDATE_SCREENSHOTS=1` they are written to `docs/screenshots/` (the README
//! shows them), otherwise to a temporary directory.
//!
//! Skipped, with a notice, where `chromium`, `chromedriver` or `nuget` is missing; under
//! `CI` a missing one fails the test instead.

#![cfg(all(feature = "sqlite", feature = "http", feature = "tracing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/example_server.rs"]
mod example_server;
#[path = "common/nuget_client.rs"]
mod nuget_client;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use example_server::Server;
use fantoccini::{Client, ClientBuilder, Locator};
use nuget_client::{Client as Nuget, pack};

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Whether the browser, its driver, the NuGet client and the example are here; says
/// loudly what is missing, and fails under CI (which installs them).
fn ready() -> bool {
    let mut missing: Vec<&str> = ["chromium", "chromedriver", "nuget"]
        .into_iter()
        .filter(|p| !on_path(p))
        .collect();
    if !example_server::example_binary("nuget_feed").exists() {
        missing.push("the nuget_feed example (built by `cargo test --all-features`)");
    }
    if missing.is_empty() {
        return true;
    }
    let notice = format!(
        "SKIPPED: the browser tests need {} (apt-get install chromium chromium-driver nuget)",
        missing.join(", ")
    );
    assert!(std::env::var_os("CI").is_none(), "{notice}");
    eprintln!("{notice}");
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A local SMTP server that accepts every message and keeps its text.
#[derive(Clone, Default)]
struct MailSink {
    messages: Arc<Mutex<Vec<String>>>,
}

impl MailSink {
    /// Listens on a free port; returns the sink and `HOST:PORT`.
    fn start() -> (Self, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let sink = Self::default();
        let messages = Arc::clone(&sink.messages);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let messages = Arc::clone(&messages);
                std::thread::spawn(move || {
                    let _ = serve_smtp(stream, &messages);
                });
            }
        });
        (sink, addr)
    }

    /// The messages received so far.
    fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// Waits up to `seconds` for a message containing `needle`.
    fn wait_for(&self, needle: &str, seconds: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| m.contains(needle)) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no mail containing {needle:?} in {seconds} s; got {:?}",
                self.messages()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Just enough SMTP for one client: greet, accept any envelope, keep the DATA.
fn serve_smtp(stream: std::net::TcpStream, messages: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    out.write_all(b"220 sink ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.trim_end().to_ascii_uppercase();
        if verb.starts_with("EHLO") || verb.starts_with("HELO") {
            out.write_all(b"250-sink\r\n250 8BITMIME\r\n")?;
        } else if verb.starts_with("DATA") {
            out.write_all(b"354 go on\r\n")?;
            let mut message = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line)? == 0 || line == ".\r\n" || line == ".\n" {
                    break;
                }
                message.push_str(&line);
            }
            messages.lock().unwrap().push(message);
            out.write_all(b"250 kept\r\n")?;
        } else if verb.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"250 ok\r\n")?;
        }
    }
}

/// A headless chromium through its own chromedriver; the driver (and so the browser)
/// is killed when this is dropped.
struct Browser {
    client: Client,
    driver: Child,
    shots: PathBuf,
    url: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    async fn open(server: &Server) -> Self {
        let port = free_port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let webdriver = format!("http://127.0.0.1:{port}");
        let capabilities: serde_json::Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::json!({
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,1000"]
                }
            }))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&webdriver)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    let _ = driver.kill();
                    panic!("chromedriver did not start a browser: {e}");
                }
            }
        };
        let shots = match std::env::var_os("FEEDKEY_UPDATE_SCREENSHOTS") {
            Some(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"),
            None => server.dir.path().join("screenshots"),
        };
        std::fs::create_dir_all(&shots).unwrap();
        Self {
            client,
            driver,
            shots,
            url: server.url.clone(),
        }
    }

    async fn go(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.url))
            .await
            .unwrap();
    }

    /// The element `locator` finds, waiting up to ten seconds for it: after a click or a
    /// form's answer, the next page may still be loading (every step that acts on an
    /// element waits here, so no step races the page before it).
    async fn element(&self, locator: Locator<'_>, what: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.client.find(locator).await {
                Ok(element) => return element,
                Err(e) if Instant::now() > deadline => {
                    panic!("no {what} on {}: {e}", self.path().await)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn type_in(&self, id: &str, text: &str) {
        let field = self.element(Locator::Id(id), &format!("#{id}")).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.element(Locator::Css(css), css)
            .await
            .click()
            .await
            .unwrap();
    }

    /// Signs out, and waits for the signed-out page: a page asked for before the sign-out's
    /// answer arrived would be replaced by it.
    async fn sign_out(&self) {
        self.click("#sign-out").await;
        assert!(self.arrive("/").await, "sign-out did not finish");
    }

    /// The text of the element `css` selects, waiting up to ten seconds for it (a page
    /// still loading after a click included).
    async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.client.find(Locator::Css(css)).await;
            if let Ok(element) = found
                && let Ok(text) = element.text().await
            {
                return text;
            }
            if Instant::now() > deadline {
                let page = self.client.source().await.unwrap_or_default();
                panic!("no {css} on {}: {page}", self.path().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the element `css` selects comes to hold `needle` within ten seconds: after
    /// a click, the page that was may still be showing, with an element of that name.
    async fn shows(&self, css: &str, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
                && text.contains(needle)
            {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// Waits up to ten seconds for the page at `path` (a form's answer may still be
    /// loading after the click), then says which page it is.
    async fn arrive(&self, path: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.path().await != path {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn sign_up(&self, name: &str, password: &str) {
        self.go("/signup").await;
        self.type_in("name", name).await;
        self.type_in("email", &format!("{name}@example.com")).await;
        self.type_in("password", password).await;
        self.type_in("password2", password).await;
        self.click("#sign-up").await;
        assert!(self.arrive("/account/tokens").await, "sign-up failed");
    }

    async fn create_feed(&self, name: &str, private: bool) {
        self.go("/account/feeds").await;
        self.type_in("feed-name", name).await;
        if private {
            self.click("#feed-private").await;
        }
        self.click("#create-feed").await;
        assert!(self.shows("#notice", name).await);
    }

    /// Creates a token from the form; returns the value shown once (read with Show).
    async fn create_token(
        &self,
        description: &str,
        fill: &[(&str, &str)],
        clicks: &[&str],
        password: &str,
    ) -> String {
        self.go("/account/tokens/new").await;
        self.type_in("description", description).await;
        for (id, text) in fill {
            self.type_in(id, text).await;
        }
        for css in clicks {
            self.click(css).await;
        }
        self.type_in("password", password).await;
        self.click("#create").await;
        assert!(
            self.arrive("/account/tokens").await,
            "create failed: {}",
            self.client.source().await.unwrap()
        );
        self.reveal().await
    }

    /// The value in the show-once panel, revealed with Show.
    async fn reveal(&self) -> String {
        let field = self
            .client
            .find(Locator::Id("new-token-value"))
            .await
            .unwrap();
        assert_eq!(
            field.attr("type").await.unwrap().as_deref(),
            Some("password"),
            "masked by default"
        );
        self.click("#show-token").await;
        assert_eq!(field.attr("type").await.unwrap().as_deref(), Some("text"));
        field.prop("value").await.unwrap().unwrap()
    }

    /// The row of the token described so.
    fn row(description: &str) -> String {
        format!("tr[data-description=\"{description}\"]")
    }

    async fn close(mut self) {
        let client = self.client.clone();
        client.close().await.unwrap();
        let _ = self.driver.kill();
    }
}

const PASSWORD: &str = "correct horse battery";

fn start(extra: &[&str]) -> Server {
    Server::start("nuget_feed", extra, "X-NuGet-ApiKey")
}

/// Sign up, make a feed, make a push token for `Contoso.Service.*`, see it masked, show
/// and copy it, push with it, see its last use, change its packages, refresh it (the old
/// value then fails in `nuget push`), delete it.
#[tokio::test(flavor = "multi_thread")]
async fn a_scoped_push_token_from_sign_up_to_delete() {
    if !ready() {
        return;
    }
    let server = start(&[]);
    let web = Browser::open(&server).await;
    web.go("/").await;
    web.screenshot("01-home").await;
    web.sign_up("alice", PASSWORD).await;
    // Sign-up shows the primary key once.
    assert!(web.shows("#new-token h2", "primary API key").await);
    web.screenshot("02-signed-up-primary-key").await;
    web.create_feed("contoso", false).await;
    web.screenshot("03-feeds").await;

    let token = web
        .create_token(
            "CI push",
            &[("globs", "Contoso.Service.*")],
            &["#access-write-only", "#push-all"],
            PASSWORD,
        )
        .await;
    assert!(token.starts_with("fk_"), "{token}");
    web.click("#copy-token").await;
    assert_eq!(web.text("#copy-status").await, "Copied to the clipboard.");
    web.screenshot("04-new-token-shown-once").await;
    let row = Browser::row("CI push");
    assert_eq!(
        web.text(&format!("{row} .packages")).await,
        "Contoso.Service.*"
    );
    assert_eq!(
        web.text(&format!("{row} .permissions")).await,
        "Push new packages and package versions, Write-only"
    );
    assert_eq!(web.text(&format!("{row} .last-used")).await, "Never");

    // A reload loses the value.
    web.go("/account/tokens").await;
    assert!(!web.has("#new-token-value").await, "shown twice");

    // Push with the real client.
    let nuget = Nuget::new(&server, "alice");
    let package = pack(&nuget.work, "Contoso.Service.Core", "1.0.0");
    let run = nuget.push(&server, "contoso", &package, &token);
    assert!(run.ok, "push: {}", run.output);
    let other = pack(&nuget.work, "Fabrikam.Util", "1.0.0");
    let run = nuget.push(&server, "contoso", &other, &token);
    assert!(
        !run.ok,
        "a package outside the token's scope was pushed: {}",
        run.output
    );

    // Last used changes.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        web.go("/account/tokens").await;
        if web.text(&format!("{row} .last-used")).await != "Never" {
            break;
        }
        assert!(Instant::now() < deadline, "last used never changed");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    web.screenshot("05-tokens-after-push").await;

    // Edit: the packages become the one id ticked.
    web.click(&format!("{row} a.edit")).await;
    web.screenshot("06-edit").await;
    web.type_in("globs", "").await;
    web.click("input[name=pick][value='Contoso.Service.Core']")
        .await;
    web.click("#save").await;
    assert!(web.shows("#notice", "saved").await);
    assert_eq!(
        web.text(&format!("{row} .packages")).await,
        "Contoso.Service.Core"
    );
    // The scope fields are shown, not editable.
    web.click(&format!("{row} a.edit")).await;
    assert!(web.shows("#scope", "Write-only").await);
    assert!(!web.has("input[name=access]").await && !web.has("select[name=feed]").await);

    // Refresh: a new value, shown once; the old one no longer pushes.
    web.go("/account/tokens").await;
    web.click(&format!("{row} button.refresh")).await;
    let refreshed = web.reveal().await;
    assert_ne!(refreshed, token);
    let next = pack(&nuget.work, "Contoso.Service.Core", "1.0.1");
    // The old secret may work for the refresh's overlap; the registry's default is none.
    let run = nuget.push(&server, "contoso", &next, &token);
    assert!(!run.ok, "the old value still pushes: {}", run.output);
    let run = nuget.push(&server, "contoso", &next, &refreshed);
    assert!(run.ok, "the new value does not push: {}", run.output);

    // Delete asks first, then the token is gone and no longer works.
    web.go("/account/tokens").await;
    web.click(&format!("{row} a.delete")).await;
    web.screenshot("07-delete-confirm").await;
    web.click("#confirm-delete").await;
    assert!(web.shows("#notice", "deleted").await);
    assert!(!web.has(&row).await);
    let last = pack(&nuget.work, "Contoso.Service.Core", "1.0.2");
    let run = nuget.push(&server, "contoso", &last, &refreshed);
    assert!(!run.ok, "a deleted token pushes: {}", run.output);
    web.close().await;
}

/// A token typed into the sign-in form is refused with MyGet's words; the password works.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_cannot_sign_in_to_the_website() {
    if !ready() {
        return;
    }
    let server = start(&[]);
    let web = Browser::open(&server).await;
    web.sign_up("bob", PASSWORD).await;
    let primary = web.reveal().await;
    web.sign_out().await;
    web.go("/signin").await;
    web.type_in("name", "bob").await;
    web.type_in("password", &primary).await;
    web.click("#sign-in").await;
    assert!(
        web.text("#error")
            .await
            .contains("Access tokens cannot be used to sign in to the website"),
        "a token signed in"
    );
    web.screenshot("08-token-sign-in-refused").await;
    web.type_in("password", PASSWORD).await;
    web.click("#sign-in").await;
    assert!(
        web.arrive("/account/tokens").await,
        "the password did not sign in"
    );
    web.close().await;
}

/// A form whose CSRF token is removed, or from another session, is refused and changes
/// nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_form_without_its_csrf_token_is_refused() {
    if !ready() {
        return;
    }
    let server = start(&[]);
    let web = Browser::open(&server).await;
    web.sign_up("carol", PASSWORD).await;
    web.go("/account/feeds").await;
    web.type_in("feed-name", "forged").await;
    web.client
        .execute(
            "document.querySelector('form.stack input[name=csrf]').value = 'forged';",
            vec![],
        )
        .await
        .unwrap();
    web.click("#create-feed").await;
    assert!(web.shows("h1", "This form has expired").await);
    web.go("/account/feeds").await;
    assert!(web.has("#no-feeds").await, "the forged form made a feed");
    // Without the field at all.
    web.type_in("feed-name", "forged").await;
    web.client
        .execute(
            "document.querySelector('form.stack input[name=csrf]').remove();",
            vec![],
        )
        .await
        .unwrap();
    web.click("#create-feed").await;
    assert!(web.shows("h1", "This form has expired").await);
    web.close().await;
}

/// Another account sees none of these tokens, cannot reach them by URL, and its own
/// valid token cannot push to this account's feed.
#[tokio::test(flavor = "multi_thread")]
async fn another_account_cannot_see_or_touch_the_tokens() {
    if !ready() {
        return;
    }
    let server = start(&[]);
    let owner = Browser::open(&server).await;
    owner.sign_up("dana", PASSWORD).await;
    owner.create_feed("dana-feed", true).await;
    let token = owner.create_token("dana build", &[], &[], PASSWORD).await;
    let id = owner
        .client
        .find(Locator::Css(&Browser::row("dana build")))
        .await
        .unwrap()
        .attr("data-token")
        .await
        .unwrap()
        .unwrap();

    let other = Browser::open(&server).await;
    other.sign_up("eve", PASSWORD).await;
    other.go("/account/tokens").await;
    assert!(!other.has(&Browser::row("dana build")).await);
    for path in [
        format!("/account/tokens/{id}/edit"),
        format!("/account/tokens/{id}/delete"),
    ] {
        other.go(&path).await;
        assert!(other.shows("h1", "No such token").await, "{path}");
    }
    // A post to the refresh URL with eve's own CSRF token: not found, and dana's token
    // keeps its value.
    other.go("/account/tokens").await;
    other
        .client
        .execute(
            "const f = document.createElement('form'); f.method = 'post'; \
             f.action = '/account/tokens/' + arguments[0] + '/refresh'; \
             const c = document.querySelector('input[name=csrf]').cloneNode(); f.appendChild(c); \
             document.body.appendChild(f); f.submit();",
            vec![serde_json::json!(id)],
        )
        .await
        .unwrap();
    assert!(other.shows("h1", "No such token").await);
    other.screenshot("09-other-account-not-found").await;
    // eve cannot create a token for dana's feed.
    other.go("/account/tokens/new").await;
    assert!(!other.has("option[value='dana-feed']").await);

    // eve's own full token cannot push to dana's feed; dana's can.
    other.go("/account/tokens").await;
    let eve_token = other.create_token("eve all", &[], &[], PASSWORD).await;
    let nuget = Nuget::new(&server, "eve");
    let package = pack(&nuget.work, "Dana.Lib", "1.0.0");
    let run = nuget.push(&server, "dana-feed", &package, &eve_token);
    assert!(!run.ok, "another account's token pushed: {}", run.output);
    let run = nuget.push(&server, "dana-feed", &package, &token);
    assert!(run.ok, "the owner's token did not push: {}", run.output);
    owner.close().await;
    other.close().await;
}

/// A token that expires within ten days raises the banner, and the daily job mails the
/// account once about it; the reset link in a mail sets a new password and ends the old
/// sessions.
#[tokio::test(flavor = "multi_thread")]
async fn expiring_keys_raise_the_banner_and_a_mail_and_a_reset_link_works() {
    if !ready() {
        return;
    }
    let (mail, relay) = MailSink::start();
    let server = start(&["--smtp", &relay, "--expiry-mail-every", "1"]);
    let web = Browser::open(&server).await;
    web.sign_up("frank", PASSWORD).await;
    assert!(!web.has("#expiry-banner").await);
    web.create_token("short-lived", &[("days", "5")], &["#expiry-days"], PASSWORD)
        .await;
    let banner = web.text("#expiry-banner").await;
    assert!(
        banner.contains("1 of your API keys expires within 10 days"),
        "{banner}"
    );
    web.screenshot("10-expiry-banner").await;
    let warning = mail.wait_for("short-lived", 20);
    assert!(warning.contains("frank@example.com"), "{warning}");
    // Warned once: more runs of the job send nothing more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let warnings = mail
        .messages()
        .iter()
        .filter(|m| m.contains("short-lived"))
        .count();
    assert_eq!(warnings, 1, "warned more than once");

    // Password reset by mail: a second browser asks, follows the link, sets a password.
    let other = Browser::open(&server).await;
    other.go("/reset").await;
    other.type_in("email", "frank@example.com").await;
    other.click("#send-link").await;
    let message = mail.wait_for("/reset/", 20);
    let link = message
        .split_whitespace()
        .find(|w| w.contains("/reset/"))
        .unwrap()
        .to_owned();
    let path = link
        .split_once("/reset/")
        .map(|(_, l)| format!("/reset/{l}"))
        .unwrap();
    other.go(&path).await;
    other.type_in("password", "a whole new password").await;
    other.type_in("password2", "a whole new password").await;
    other.click("#set-password").await;
    assert!(other.shows("h1", "Password changed").await);
    // The link works once.
    other.go(&path).await;
    assert!(other.shows("h1", "does not work").await);
    // The first browser's session ended with the password change.
    web.go("/account/tokens").await;
    assert!(
        web.arrive("/signin").await,
        "the old session outlived the password"
    );
    web.type_in("name", "frank").await;
    web.type_in("password", "a whole new password").await;
    web.click("#sign-in").await;
    assert!(
        web.arrive("/account/tokens").await,
        "{}",
        web.client.source().await.unwrap()
    );
    web.close().await;
    other.close().await;
}

/// Regenerating the primary key asks for the password again; the new key is shown once
/// and manages tokens, and the old one no longer does.
#[tokio::test(flavor = "multi_thread")]
async fn regenerating_the_primary_key_asks_for_the_password() {
    if !ready() {
        return;
    }
    let server = start(&[]);
    let web = Browser::open(&server).await;
    web.sign_up("gina", PASSWORD).await;
    let old = web.reveal().await;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let tokens = |key: &str| {
        agent
            .get(format!("{}/api/tokens", server.url))
            .header("X-NuGet-ApiKey", key)
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(tokens(&old), 200);

    web.go("/account/tokens").await;
    web.click("#primary + details summary").await;
    web.type_in("primary-password", "not the password").await;
    web.click("#regenerate-primary").await;
    assert!(web.shows("#message", "password").await);
    assert_eq!(tokens(&old), 200, "a wrong password regenerated the key");

    web.go("/account/tokens").await;
    web.click("#primary + details summary").await;
    web.type_in("primary-password", PASSWORD).await;
    web.click("#regenerate-primary").await;
    assert!(web.arrive("/account/tokens").await);
    assert!(
        web.text("#new-token h2")
            .await
            .contains("new primary API key")
    );
    let new = web.reveal().await;
    assert_ne!(new, old);
    assert_eq!(tokens(&new), 200);
    assert_eq!(tokens(&old), 401, "the old primary key still works");
    web.close().await;
}
