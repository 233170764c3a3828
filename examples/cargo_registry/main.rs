//! A private cargo registry guarded by feedkey, for the real, unmodified `cargo`.
//!
//! ```sh
//! cargo run --example cargo_registry --features sqlite,http,tracing -- --data ./cargo-data
//! cargo run --example cargo_registry --features sqlite,http,tracing -- --help
//! ```
//!
//! It listens on `127.0.0.1:8080` (`--port`, or `--listen ADDR:PORT`). Behind a reverse
//! proxy, `--trusted-proxy CIDR` makes `X-Forwarded-For` name the client for requests
//! from that proxy (token network scopes then see the real client).
//!
//! It prints its index URL and, on first start, the primary key (shown once). The
//! registry speaks the sparse index protocol with `auth-required`, so cargo sends its
//! token on every request: index files, downloads, publish, yank. feedkey maps them:
//!
//! | cargo does                          | feedkey action | target                         |
//! |-------------------------------------|----------------|--------------------------------|
//! | reads `config.json`                 | (a good token) | —                              |
//! | reads a crate's index file          | read ¹         | the crate                      |
//! | downloads a `.crate`                | read           | the crate                      |
//! | publishes a crate name never seen   | push           | a new package                  |
//! | publishes a new version             | push           | an existing package            |
//! | yanks or unyanks                    | unlist         | the crate                      |
//! | lists owners                        | read           | the crate                      |
//!
//! ¹ or push on that crate: `cargo publish` reads the crate's index entry before and after
//! uploading, so a write-only token may read the entry of a crate it may push.
//!
//! Tokens live in SQLite under the data directory, or, with `--database <url>` (features
//! `postgres`/`mysql`), in a database that several registry servers share: a token
//! revoked through one is refused by all (see "Running many servers" in docs/operations.md).
//!
//! The feed is the registry's name (`--name`, default `feedkey`). Crate names are
//! canonicalised before feedkey sees them, lowercased with `_` made `-` (cargo's own rule
//! for "the same crate"), and so are package patterns in token requests: `acme_*`,
//! `ACME-*` and `acme-*` are one pattern, and each matches `acme_util` and `Acme-Util`.
//!
//! Every decision is made in one place: handlers take a [`shared::Caller`] (an axum
//! extractor) and ask it, and it calls [`shared::guard`]; tokens are managed at
//! `/api/tokens` with the primary key (see [`shared::tokens`]).

// Handlers answer with a `Response` on every path; boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod caller;
mod crates;
mod publish;
#[path = "../shared/mod.rs"]
mod shared;
#[cfg(feature = "oidc")]
#[path = "../shared/trusted.rs"]
mod trusted;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use feedkey::store::TrustStore;
use feedkey::{AccountId, Action, Feedkey, Request, SqliteStore, Target, TokenStore};
use serde_json::json;

use crate::crates::{Crates, canonical, index_path};
use crate::shared::proxy::TrustedProxies;
use crate::shared::{Caller, Registry, error};

/// Everything a handler needs.
pub struct App<S> {
    keys: Feedkey<S>,
    owner: AccountId,
    /// The registry's name: the feed its tokens name.
    name: String,
    crates: Crates,
    /// GitHub's secret-scanning keys (`--secret-scanning-keys`).
    scanning: Option<shared::leaks::ScanningKeys>,
    /// The OIDC issuers trusted publishing takes (`--oidc-issuer`).
    #[cfg(feature = "oidc")]
    issuers: Option<trusted::Issuers>,
}

#[cfg(feature = "oidc")]
impl<S: TokenStore + TrustStore + 'static> trusted::Trusting for App<S> {
    fn issuers(&self) -> Option<&trusted::Issuers> {
        self.issuers.as_ref()
    }
}

impl<S: TokenStore + 'static> Registry for App<S> {
    type Store = S;
    const CHALLENGE: &'static str = "Cargo";

    fn keys(&self) -> &Feedkey<S> {
        &self.keys
    }

    fn scanning_keys(&self) -> Option<&shared::leaks::ScanningKeys> {
        self.scanning.as_ref()
    }

    /// One account owns the registry and its one feed.
    fn owns(&self, account: &AccountId, _feed: Option<&str>) -> bool {
        *account == self.owner
    }

    /// The registry's one feed is its name.
    fn has_feed(&self, account: &AccountId, name: &str) -> bool {
        self.owns(account, None) && name == self.name
    }

    /// cargo sends the token as it is in `Authorization`.
    fn request<'h>(headers: &'h HeaderMap) -> Request<'h> {
        Request::from_cargo_header_map(headers)
    }

    fn package_pattern(pattern: &str) -> String {
        canonical(pattern)
    }
}

type Shared<S> = State<Arc<App<S>>>;

/// The largest upload accepted.
const MAX_UPLOAD_BYTES: usize = 32 * 1024 * 1024;

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

impl<S: TokenStore + 'static> App<S> {
    /// The target a request about crate `name` names: new if the registry has never
    /// had it.
    async fn target<'a>(&'a self, canonical: &'a str) -> Target<'a> {
        if self.crates.exists(canonical).await {
            Target::package(&self.name, canonical)
        } else {
            Target::new_package(&self.name, canonical)
        }
    }
}

/// `GET /index/config.json`: where the API and downloads are, and that every request
/// needs a token. cargo asks without one first and sends its token after the 401.
async fn config<S: TokenStore + 'static>(
    State(app): Shared<S>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, Response> {
    caller.identified(&*app).await?;
    let base = base_url(&headers);
    Ok(Json(json!({
        "dl": format!("{base}/api/v1/crates"),
        "api": base,
        "auth-required": true,
    }))
    .into_response())
}

/// `GET /index/{prefix}/…/{name}`: a crate's index file, one JSON line per version.
async fn index_file<S: TokenStore + 'static>(
    State(app): Shared<S>,
    caller: Caller,
    Path(path): Path<String>,
) -> Result<Response, Response> {
    let lower = path.rsplit('/').next().unwrap_or("").to_owned();
    if !crates::valid_name(&lower) || index_path(&lower).as_deref() != Some(path.as_str()) {
        return Err(error(StatusCode::NOT_FOUND, "no such index file"));
    }
    let name = canonical(&lower);
    let target = app.target(&name).await;
    caller.may_read_entry(&*app, &target).await?;
    Ok(match app.crates.index(&lower).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/plain")], bytes).into_response(),
        Err(e) => e.into_response(),
    })
}

/// `GET /api/v1/crates/{name}/{version}/download`: the `.crate` file.
async fn download<S: TokenStore + 'static>(
    State(app): Shared<S>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, Response> {
    let name = canonical(&name);
    let target = app.target(&name).await;
    caller.may(&*app, Action::Read, &target).await?;
    Ok(match app.crates.download(&name, &version).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/gzip")], bytes).into_response(),
        Err(e) => e.into_response(),
    })
}

/// `PUT /api/v1/crates/new`: `cargo publish`.
async fn publish<S: TokenStore + 'static>(
    State(app): Shared<S>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, Response> {
    let upload = match publish::read(&body) {
        Ok(u) => u,
        Err(e) => {
            tracing::info!("publish refused: {e}");
            return Err(error(StatusCode::BAD_REQUEST, e));
        }
    };
    let name = canonical(&upload.meta.name);
    let target = app.target(&name).await;
    caller.may(&*app, Action::Push, &target).await?;
    let entry = upload.index_entry();
    let (crate_name, version) = (&upload.meta.name, &upload.meta.vers);
    // A crate holding a live token of this registry is refused, and the token revoked.
    let file = body.slice_ref(upload.file);
    let package = format!("{crate_name} {version}");
    shared::leaks::refuse_leaks(&*app, shared::leaks::Archive::TarGz, file, &package)
        .await
        .map_err(|(status, detail)| error(status, detail))?;
    Ok(
        match app
            .crates
            .publish(crate_name, version, &entry, upload.file)
            .await
        {
            Ok(()) => {
                tracing::info!(name = crate_name, version, "published");
                Json(json!({
                    "warnings": { "invalid_categories": [], "invalid_badges": [], "other": [] }
                }))
                .into_response()
            }
            Err(e) => e.into_response(),
        },
    )
}

/// `DELETE /api/v1/crates/{name}/{version}/yank` (`YANKED`) and `PUT …/unyank`.
async fn set_yanked<S: TokenStore + 'static, const YANKED: bool>(
    State(app): Shared<S>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, Response> {
    let name = canonical(&name);
    let target = app.target(&name).await;
    caller.may(&*app, Action::Unlist, &target).await?;
    Ok(match app.crates.set_yanked(&name, &version, YANKED).await {
        Ok(()) => {
            tracing::info!(name, version, yanked = YANKED, "yank flag set");
            Json(json!({ "ok": true })).into_response()
        }
        Err(e) => e.into_response(),
    })
}

/// `GET /api/v1/crates/{name}/owners`: the account that owns the registry.
async fn owners<S: TokenStore + 'static>(
    State(app): Shared<S>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, Response> {
    let name = canonical(&name);
    let target = app.target(&name).await;
    caller.may(&*app, Action::Read, &target).await?;
    if !app.crates.exists(&name).await {
        return Err(crates::CrateError::NotFound(name).into_response());
    }
    let login = app.owner.as_str();
    Ok(Json(json!({ "users": [{ "id": 1, "login": login, "name": login }] })).into_response())
}

/// `PUT`/`DELETE /api/v1/crates/{name}/owners`: one account owns every crate here.
async fn change_owners() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "one account owns every crate in this registry",
    )
}

/// The registry's routes.
fn router<S: TokenStore + TrustStore + 'static>(
    app: Arc<App<S>>,
    proxies: TrustedProxies,
) -> Router {
    let routes = Router::new();
    #[cfg(feature = "oidc")]
    let routes = routes.merge(trusted::routes::<App<S>>());
    routes
        .route("/index/config.json", get(config::<S>))
        .route("/index/{*path}", get(index_file::<S>))
        .route("/api/v1/crates/new", put(publish::<S>))
        .route(
            "/api/v1/crates/{name}/{version}/download",
            get(download::<S>),
        )
        .route(
            "/api/v1/crates/{name}/{version}/yank",
            delete(set_yanked::<S, true>),
        )
        .route(
            "/api/v1/crates/{name}/{version}/unyank",
            put(set_yanked::<S, false>),
        )
        .route(
            "/api/v1/crates/{name}/owners",
            get(owners::<S>).put(change_owners).delete(change_owners),
        )
        .merge(shared::tokens::routes::<App<S>>())
        .merge(shared::leaks::routes::<App<S>>())
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .layer(Extension(proxies))
        .with_state(app)
}

/// A private cargo registry (sparse index) whose tokens feedkey checks.
#[derive(clap::Parser)]
#[command(args_override_self = true)] // a flag given twice: the last one counts
struct Args {
    /// Where the token key, the tokens (SQLite) and the crates are kept
    #[arg(long, value_name = "DIR", default_value = "cargo-data")]
    data: PathBuf,
    /// The registry's name: the one feed its tokens may name
    #[arg(long, default_value = "feedkey")]
    name: String,
    /// A PostgreSQL or MySQL/MariaDB URL: tokens there, shared with other servers
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    #[command(flatten)]
    listen: shared::Listen,
    #[cfg(feature = "oidc")]
    #[command(flatten)]
    trust: trusted::TrustArgs,
}

/// Serves the registry on `store`, printing the index URL and, on first start, the
/// primary key; returns when interrupted.
async fn serve<S: TokenStore + TrustStore + 'static>(
    args: &Args,
    store: S,
) -> Result<Arc<App<S>>, Box<dyn std::error::Error>> {
    let (key, previous) = shared::token_keys(&args.data)?;
    let keys = Feedkey::builder(store, key)
        .previous_keys(previous)
        .audit(shared::Audit)
        .build()?;
    let owner = AccountId::new("admin")?;
    let primary = shared::first_start(&keys, &owner, args.listen.regenerate_primary).await?;
    let app = Arc::new(App {
        keys,
        owner,
        name: args.name.clone(),
        crates: Crates::open(&args.data.join("crates"))?,
        scanning: args.listen.scanning_keys()?,
        #[cfg(feature = "oidc")]
        issuers: args.trust.issuers()?,
    });
    shared::metrics::start(args.listen.metrics_listen).await?;
    let listener = args.listen.bind(8080).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    println!("index: sparse+http://{addr}/index/");
    match primary {
        Some(p) => println!("primary key (shown once): {}", p.token.expose_secret()),
        None => {
            println!("primary key: unchanged (if lost: restart once with --regenerate-primary)")
        }
    }
    axum::serve(
        listener,
        router(Arc::clone(&app), args.listen.trusted_proxies())
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shared::shutdown_signal())
    .await?;
    Ok(app)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shared::init_tracing();
    let args = <Args as clap::Parser>::parse();
    std::fs::create_dir_all(&args.data)?;
    // Last-used times are written in batches; `Feedkey::flush` writes the last ones at exit.
    match &args.database {
        None => {
            let store = SqliteStore::open(args.data.join("tokens.db"))?;
            serve(&args, store).await?.keys.flush().await?;
        }
        #[cfg(any(feature = "postgres", feature = "mysql"))]
        Some(url) => {
            // Several servers on one database: each hears of the others' revokes.
            let store = feedkey::SqlStore::connect(url).await?;
            serve(&args, store).await?.keys.flush().await?;
        }
        #[cfg(not(any(feature = "postgres", feature = "mysql")))]
        Some(_) => return Err("--database needs the postgres or mysql feature".into()),
    }
    Ok(())
}
