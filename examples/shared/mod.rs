//! What both example servers share: the [`Caller`] extractor every handler asks, auth in
//! one place ([`guard`]), the owner check ([`Caller::owner`]), the one refusal per status
//! ([`refuse`]), the token-management API ([`tokens`]) and start-up chores.
//!
//! A registry author copies this module and implements [`Registry`] for their state.

pub mod caller;
pub mod leaks;
pub mod metrics;
pub mod proxy;
pub mod tokens;

pub use caller::Caller;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use feedkey::audit::{AuditEvent, AuditKind, AuditSink, TracingAudit};
use feedkey::{
    AccountId, Action, CredentialError, Denial, DenyReason, DenyStatus, Feedkey, Grant, KeyRing,
    Request, Target, TokenKey,
};
use serde_json::json;

/// What the shared code needs from a server's state.
pub trait Registry: Send + Sync + 'static {
    /// The token store.
    type Store: feedkey::TokenStore + 'static;
    /// The authorizer.
    fn keys(&self) -> &Feedkey<Self::Store>;
    /// Whether `account` may act here: on `feed` (`Some`), it must own that feed, so a
    /// good token of another account is refused whatever its scope says; on no one feed
    /// (`None`: a sign-in, a probe), it must be an account this registry serves.
    fn owns(&self, account: &AccountId, feed: Option<&str>) -> bool;
    /// Whether `account` has a feed of this name (exactly: feed names are
    /// case-sensitive), so that no token is issued for a feed it could never use.
    fn has_feed(&self, account: &AccountId, name: &str) -> bool;
    /// The `WWW-Authenticate` challenge a 401 carries, so the client knows to send its
    /// credential (cargo: `Cargo`; NuGet: `Basic`).
    const CHALLENGE: &'static str;
    /// Reads the credential from the headers, as this registry's client sends it.
    fn request<'h>(headers: &'h HeaderMap) -> Request<'h>;
    /// GitHub's secret-scanning keys, when the server takes reports
    /// (`--secret-scanning-keys`). Provided: none.
    fn scanning_keys(&self) -> Option<&leaks::ScanningKeys> {
        None
    }
    /// How a package pattern in a token-management request is written down (a registry
    /// whose names have equivalent spellings makes them one).
    fn package_pattern(pattern: &str) -> String {
        pattern.to_owned()
    }
}

/// Asks feedkey whether the request may do `action` on `target`, and checks that the
/// account it acts for owns this registry. A denial becomes one uniform answer per status
/// (the client never learns which check failed) while the log gets the real reason.
pub async fn guard<R: Registry>(
    app: &R,
    headers: &HeaderMap,
    client: IpAddr,
    action: Action,
    target: &Target<'_>,
) -> Result<Grant, Response> {
    let request = R::request(headers).with_client_addr(client);
    let decision = app.keys().authorize(&request, action, target).await;
    settle::<R>(app, decision, client, Some(target.feed_name()), || {
        format!(
            "{action:?} on {}/{}",
            target.feed_name(),
            target.package_id().unwrap_or("")
        )
    })
}

/// Checks only that the request carries a good credential of the owning account (for
/// endpoints that reveal nothing, such as cargo's `config.json`).
pub async fn identify<R: Registry>(
    app: &R,
    headers: &HeaderMap,
    client: IpAddr,
) -> Result<Grant, Response> {
    let request = R::request(headers).with_client_addr(client);
    let decision = app.keys().authenticate(&request).await;
    settle::<R>(app, decision, client, None, || "sign-in".to_owned())
}

/// Logs a decision and turns a denial into the uniform answer: one line per request, the
/// only one for a denial (the audit sink, [`Audit`], leaves denials to this). A grant
/// for an account that does not own `feed` ([`Registry::owns`]) is a denial too.
pub fn settle<R: Registry>(
    app: &R,
    decision: Result<Grant, Denial>,
    client: IpAddr,
    feed: Option<&str>,
    what: impl FnOnce() -> String,
) -> Result<Grant, Response> {
    match decision {
        Ok(grant) if app.owns(grant.account(), feed) => {
            if grant.used_previous_secret() {
                tracing::info!(token = ?grant.token_id(), "request used a refreshed-away secret inside its overlap");
            }
            Ok(grant)
        }
        Ok(grant) => {
            tracing::warn!(account = %grant.account(), client = %client, request = what(), "denied: account does not own this feed");
            Err(refuse::<R>(DenyStatus::Forbidden))
        }
        Err(denial)
            if matches!(
                denial.reason(),
                DenyReason::MalformedCredential(CredentialError::Missing)
            ) =>
        {
            // Not an attempt: cargo asks without its token first and sends it after the
            // challenge, so this happens on every command.
            tracing::debug!(client = %client, request = what(), "challenged: no credential");
            Err(refuse::<R>(denial.status()))
        }
        Err(denial) => {
            tracing::warn!(
                token = ?denial.token_id(),
                client = %client,
                request = what(),
                "denied: {}",
                denial.reason()
            );
            Err(refuse::<R>(denial.status()))
        }
    }
}

/// The audit sink both servers use: feedkey's [`TracingAudit`] for everything but
/// denials, which [`settle`] logs once, with the request they refused. Were both to log
/// them, every denial would be two warnings, and cargo's read-else-push check of an index
/// entry would audit a denied read for every write-only publish that succeeds.
pub struct Audit;

impl AuditSink for Audit {
    fn record(&self, event: &AuditEvent) {
        if !matches!(event.kind, AuditKind::Denied { .. }) {
            TracingAudit.record(event);
        }
    }
}

/// The one answer for each kind of refusal, in the JSON error shape cargo shows its user.
pub fn refuse<R: Registry>(status: DenyStatus) -> Response {
    let (code, detail) = match status {
        DenyStatus::Unauthorized => (StatusCode::UNAUTHORIZED, "authentication required"),
        DenyStatus::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
        DenyStatus::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "try again later"),
    };
    let mut response = error(code, detail);
    if code == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(R::CHALLENGE),
        );
    }
    response
}

/// An error answer: `{"errors": [{"detail": ...}]}`, the shape of cargo's registry API.
pub fn error(status: StatusCode, detail: impl std::fmt::Display) -> Response {
    (
        status,
        Json(json!({ "errors": [{ "detail": detail.to_string() }] })),
    )
        .into_response()
}

/// The token-hashing keys: the key file `token.key` beside the data (mode 0600), made
/// with one random key on first start, read with [`KeyRing`] as the admin CLI writes it
/// (`feedkey key add --key-file DATA/token.key` adds the next version; restart to use
/// it). Returns the current key and the previous ones. Losing the file invalidates every
/// token; keep it out of backups that leave the machine.
pub fn token_keys(data: &Path) -> Result<(TokenKey, Vec<TokenKey>), Box<dyn std::error::Error>> {
    Ok(KeyRing::read_or_create(&data.join("token.key"))?.keys()?)
}

/// The command-line flags both servers take: where to listen, which proxies to believe,
/// and the recovery of a lost primary key.
#[derive(clap::Args)]
pub struct Listen {
    /// The address and port to listen on, such as 0.0.0.0:8080 or [::]:8080 [default:
    /// 127.0.0.1 at --port]
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Listen on 127.0.0.1 at this port, 0 for any free one [default: 8080 for
    /// cargo_registry, 5000 for nuget_feed, 4873 for npm_registry]
    #[arg(long, conflicts_with = "listen")]
    port: Option<u16>,
    /// A reverse proxy (CIDR range or address) whose X-Forwarded-For names the client;
    /// repeat for several. Without one, the client is the TCP peer
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = proxy::parse_range)]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Regenerate the operator's (admin's) primary key at start and print the new one
    /// once: the recovery for a lost primary key. The old key, and the tokens derived
    /// from it, stop working
    #[arg(long)]
    pub regenerate_primary: bool,
    /// Serve feedkey's metrics (Prometheus text format) at http://ADDR:PORT/metrics, on a
    /// listener of their own, for the scraper only (needs the `metrics` feature)
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,
    /// GitHub's secret-scanning public keys (the JSON GitHub publishes at
    /// https://api.github.com/meta/public_keys/secret_scanning): take leak reports at
    /// POST /api/secret-scanning/github, signed with them
    #[arg(long, value_name = "FILE")]
    pub secret_scanning_keys: Option<std::path::PathBuf>,
}

impl Listen {
    /// The secret-scanning keys, if the flag names a file.
    pub fn scanning_keys(&self) -> Result<Option<leaks::ScanningKeys>, Box<dyn std::error::Error>> {
        self.secret_scanning_keys
            .as_deref()
            .map(leaks::ScanningKeys::load)
            .transpose()
    }
}

impl Listen {
    /// Binds the address asked for, or 127.0.0.1:`default_port`.
    pub async fn bind(&self, default_port: u16) -> std::io::Result<tokio::net::TcpListener> {
        let local = |port| SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
        let addr = self
            .listen
            .unwrap_or_else(|| local(self.port.unwrap_or(default_port)));
        tokio::net::TcpListener::bind(addr).await
    }

    /// The proxies to believe, for the router's `Extension` layer.
    pub fn trusted_proxies(&self) -> proxy::TrustedProxies {
        proxy::TrustedProxies::new(self.trusted_proxies.clone())
    }
}

/// Resolves on Ctrl-C or SIGTERM (how systemd stops a service), for axum's graceful
/// shutdown: the server stops taking requests and `main` then writes the buffered
/// last-used times, which a process killed outright would lose.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("stopping: finishing open requests, then writing last-used times");
}

/// Logs to stderr, at `RUST_LOG` (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

/// Makes the owner's account on first start and returns its primary key (shown once);
/// `None` when the account exists already. With `regenerate` (the `--regenerate-primary`
/// flag: the recovery for a lost primary key), an existing account's primary key is
/// regenerated instead, and the new one returned: the old one stops working, and so do
/// the tokens derived from it.
pub async fn first_start<S: feedkey::TokenStore>(
    keys: &Feedkey<S>,
    owner: &AccountId,
    regenerate: bool,
) -> Result<Option<feedkey::IssuedToken>, feedkey::Error> {
    // A key file that went missing, or another server's key, stops the start here with
    // the key version and both fingerprints, rather than answering every token 401.
    keys.check_keys().await?;
    match keys.create_account(owner, feedkey::Expiry::Never).await {
        Ok(primary) => Ok(Some(primary)),
        Err(feedkey::Error::AccountExists) if regenerate => {
            tracing::warn!(account = %owner, "primary key regenerated at start (--regenerate-primary)");
            keys.regenerate_primary(owner, feedkey::Expiry::Never)
                .await
                .map(Some)
        }
        Err(feedkey::Error::AccountExists) => Ok(None),
        Err(e) => Err(e),
    }
}
