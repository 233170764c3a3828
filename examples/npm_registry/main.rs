//! A private npm registry guarded by feedkey, for the real, unmodified `npm` (11).
//!
//! ```sh
//! cargo run --example npm_registry --features sqlite,http,tracing -- --data ./npm-data
//! cargo run --example npm_registry --features sqlite,http,tracing -- --help
//! ```
//!
//! It listens on `127.0.0.1:4873` (`--port`, or `--listen ADDR:PORT`) and prints its URL
//! and, on first start, the operator's primary key (shown once). npm sends
//! `Authorization: Bearer <token>` from `.npmrc`
//! (`//127.0.0.1:4873/:_authToken=<token>`) on every request, and feedkey decides:
//!
//! | npm does                                        | feedkey action    | target          |
//! |-------------------------------------------------|-------------------|-----------------|
//! | reads a packument, `GET /{name}`                | read              | the package     |
//! | downloads a tarball, `GET /{name}/-/{file}`     | read              | the package     |
//! | publishes a name never seen, `PUT /{name}`      | push              | a new package   |
//! | publishes a new version, `PUT /{name}`          | push              | the package     |
//! | deprecates (a whole-packument `PUT /{name}`)    | unlist            | the package     |
//! | unpublishes (`PUT /{name}/-rev/…`, `DELETE …`)  | unlist            | the package     |
//! | reads dist-tags                                 | read              | the package     |
//! | sets or removes a dist-tag                      | push              | the package     |
//! | `npm whoami`                                    | (a good token)    | —               |
//! | `npm token create / list / revoke`              | a login session or the primary key |
//! | `npm login`, `npm adduser`                      | the account password              |
//! | `npm logout`                                    | the token ends itself              |
//!
//! A token's refusal is npm's: `401` with `WWW-Authenticate: Bearer` for a token that
//! proves no one (npm: "your authentication token seems to be invalid"), `401` with
//! `WWW-Authenticate: ipaddress` for one used outside its CIDR ranges (npm's `EAUTHIP`),
//! `403` for a good token without the permission; the reason is in the log.
//!
//! One account (`--user`, default `admin`) owns the registry and its one feed (`--name`,
//! default `npm`). Its password (`--password-file`, or `POST /api/password` with the
//! primary key) signs in with `npm login`; tokens made with `npm token create` are scoped
//! to packages (`--packages`), scopes (`--scopes @acme` is the pattern `@acme/*`), CIDR
//! ranges and an expiry; a write token lives at most 90 days (a `LifetimePolicy`).
//! Package names are npm's for new packages: lowercase only, so no two names here differ
//! only in case. Packuments are JSON files and tarballs files under `--data`.
//!
//! The cargo-style token API (`/api/tokens`, see [`shared::tokens`]) is served too, for
//! the primary key.

// Handlers answer with a `Response` on every path; boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod accounts;
mod attempts;
mod caller;
mod errors;
mod names;
mod packages;
mod publish;
mod routes;
// npm answers refusals in its own shape: `caller.rs` calls `shared::settle` itself, so
// the shared `guard` and `Caller::may` go unused here.
#[allow(dead_code)]
#[path = "../shared/mod.rs"]
mod shared;
mod token_api;
mod token_notes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use feedkey::policy::LifetimePolicy;
use feedkey::time::Duration;
use feedkey::{AccountId, Action, Feedkey, Request, SqliteStore, Target};
use serde_json::{Value, json};

use crate::errors::npm_error;
use crate::packages::Packages;
use crate::routes::Route;
use crate::shared::proxy::TrustedProxies;
use crate::shared::{Caller, Registry};
use crate::token_notes::Notes;

/// Everything a handler needs.
pub struct App {
    keys: Feedkey<SqliteStore>,
    owner: AccountId,
    /// The registry's one feed: the feed its tokens name.
    feed: String,
    packages: Packages,
    notes: Notes,
    /// Failed password checks, by client and user name.
    attempts: attempts::Attempts,
    /// GitHub's secret-scanning keys (`--secret-scanning-keys`).
    scanning: Option<shared::leaks::ScanningKeys>,
}

impl Registry for App {
    type Store = SqliteStore;
    const CHALLENGE: &'static str = "Bearer";

    fn keys(&self) -> &Feedkey<SqliteStore> {
        &self.keys
    }

    fn scanning_keys(&self) -> Option<&shared::leaks::ScanningKeys> {
        self.scanning.as_ref()
    }

    /// One account owns the registry and its one feed.
    fn owns(&self, account: &AccountId, _feed: Option<&str>) -> bool {
        *account == self.owner
    }

    fn has_feed(&self, account: &AccountId, name: &str) -> bool {
        self.owns(account, None) && name == self.feed
    }

    /// npm sends `Authorization: Bearer <token>`; the header once only.
    fn request<'h>(headers: &'h HeaderMap) -> Request<'h> {
        Request::from_cargo_header_map(headers)
    }
}

/// The largest publish or packument edit: a tarball of 48 MiB in base64, and its
/// packument.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

impl App {
    /// The target a request about package `name` names: new if the registry has
    /// never had it.
    fn target<'a>(&'a self, name: &'a str) -> Target<'a> {
        if self.packages.exists(name) {
            Target::package(&self.feed, name)
        } else {
            Target::new_package(&self.feed, name)
        }
    }
}

fn json_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| {
        npm_error(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })
}

fn ok() -> Response {
    axum::Json(json!({ "ok": true })).into_response()
}

/// The largest body of a sign-in, a token request or a dist-tag.
const MAX_SMALL_BODY_BYTES: usize = 64 * 1024;

/// Reads the body of a request, once its sender has proven a token (or, for a sign-in,
/// without: the password is in the body), and at most `limit` bytes of it.
async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        npm_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is cut short, or larger than {limit} bytes"),
        )
    })
}

/// Every path but `/api/…`: read into a [`Route`], then answered.
async fn dispatch(
    State(app): State<Arc<App>>,
    caller: Caller,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let Some(route) = routes::parse(uri.path()) else {
        return npm_error(StatusCode::NOT_FOUND, "not found");
    };
    // A body is read only from a caller with a good token (its rights are checked by
    // the handler), so no one without one makes the server buffer an upload. A sign-in
    // is the exception: it proves itself with the body.
    let body = if method == Method::GET {
        Bytes::new()
    } else {
        let limit = match route {
            Route::Package(_) | Route::PackageRev(..) => MAX_BODY_BYTES,
            _ => MAX_SMALL_BODY_BYTES,
        };
        let what = format!("{method} {route:?}");
        if !matches!(route, Route::User(_))
            && let Err(refusal) = caller.identified_npm(&*app, &what).await
        {
            return refusal;
        }
        match read_body(body, limit).await {
            Ok(body) => body,
            Err(refusal) => return refusal,
        }
    };
    let query = uri.query().unwrap_or("");
    let app = &*app;
    let answer = match (method, route) {
        (Method::GET, Route::Ping) => Ok(axum::Json(json!({})).into_response()),
        (Method::GET, Route::Whoami) => accounts::whoami(app, &caller).await,
        (Method::PUT, Route::User(user)) => accounts::sign_in(app, &caller, &user, &body).await,
        (Method::DELETE, Route::Logout(token)) => accounts::sign_out(app, &caller, &token).await,
        (Method::POST, Route::Tokens) => token_api::create(app, &caller, &body).await,
        (Method::GET, Route::Tokens) => token_api::list(app, &caller, query).await,
        (Method::DELETE, Route::Token(key)) => token_api::revoke(app, &caller, &key).await,
        (Method::GET, Route::Package(name)) => packument(app, &caller, &name, &headers).await,
        (Method::PUT, Route::Package(name)) => put(app, &caller, &name, None, &body).await,
        (Method::PUT, Route::PackageRev(name, rev)) => {
            put(app, &caller, &name, Some(&rev), &body).await
        }
        (Method::DELETE, Route::PackageRev(name, rev)) => {
            unpublish(app, &caller, &name, &rev).await
        }
        (Method::GET, Route::Tarball(name, file)) => download(app, &caller, &name, &file).await,
        (Method::DELETE, Route::TarballRev(name, file, rev)) => {
            remove_tarball(app, &caller, &name, &file, &rev).await
        }
        (Method::GET, Route::DistTags(name)) => dist_tags(app, &caller, &name).await,
        (Method::PUT, Route::DistTag(name, tag)) => {
            set_tag(app, &caller, &name, &tag, Some(&body)).await
        }
        (Method::DELETE, Route::DistTag(name, tag)) => {
            set_tag(app, &caller, &name, &tag, None).await
        }
        _ => Err(npm_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed here",
        )),
    };
    answer.unwrap_or_else(|refusal| refusal)
}

/// `GET /{name}`: the packument.
async fn packument(
    app: &App,
    caller: &Caller,
    name: &str,
    headers: &HeaderMap,
) -> Result<Response, Response> {
    caller.may_npm(app, Action::Read, &app.target(name)).await?;
    let doc = app
        .packages
        .packument(name, &base_url(headers))
        .map_err(IntoResponse::into_response)?;
    Ok(axum::Json(doc).into_response())
}

/// `PUT /{name}`: `npm publish` (a body with the tarball attached), or a whole-packument
/// edit: `npm deprecate`, or (at `/-rev/{rev}`) the first step of `npm unpublish` of one
/// version. An edit is compared with the stored packument; it needs unlist.
async fn put(
    app: &App,
    caller: &Caller,
    name: &str,
    rev: Option<&str>,
    body: &Bytes,
) -> Result<Response, Response> {
    let target = app.target(name);
    let doc = json_body(body)?;
    if rev.is_none() && publish::is_publish(&doc) {
        caller.may_npm(app, Action::Push, &target).await?;
        let upload = publish::read(name, &doc).map_err(|e| {
            tracing::info!(name, "publish refused: {e}");
            npm_error(StatusCode::BAD_REQUEST, e)
        })?;
        // A tarball holding a live token of this registry is refused, and the token
        // revoked.
        let package = format!("{name} {}", upload.version);
        let tarball = Bytes::from(upload.tarball.clone());
        shared::leaks::refuse_leaks(app, shared::leaks::Archive::TarGz, tarball, &package)
            .await
            .map_err(|(status, detail)| npm_error(status, detail))?;
        // Published as authorized: a package that appeared or went meanwhile is a 409.
        let existed = !target.is_new_package();
        app.packages
            .publish(name, &upload, Some(existed))
            .await
            .map_err(IntoResponse::into_response)?;
        tracing::info!(name, version = upload.version, "published");
        return Ok(ok());
    }
    caller.may_npm(app, Action::Unlist, &target).await?;
    let edit = app
        .packages
        .apply(name, rev, &doc)
        .await
        .map_err(IntoResponse::into_response)?;
    tracing::info!(name, removed = ?edit.removed, deprecated = ?edit.deprecated, "packument edited");
    Ok(ok())
}

/// `DELETE /{name}/-rev/{rev}`: `npm unpublish` of the whole package.
async fn unpublish(
    app: &App,
    caller: &Caller,
    name: &str,
    rev: &str,
) -> Result<Response, Response> {
    caller
        .may_npm(app, Action::Unlist, &app.target(name))
        .await?;
    app.packages
        .remove(name, rev)
        .await
        .map_err(IntoResponse::into_response)?;
    tracing::info!(name, "unpublished, every version");
    Ok(ok())
}

/// `GET /{name}/-/{file}`: a tarball.
async fn download(
    app: &App,
    caller: &Caller,
    name: &str,
    file: &str,
) -> Result<Response, Response> {
    caller.may_npm(app, Action::Read, &app.target(name)).await?;
    let version = names::version_of_tarball(name, file)
        .ok_or_else(|| npm_error(StatusCode::NOT_FOUND, "not found"))?;
    let bytes = app
        .packages
        .tarball(name, version)
        .map_err(IntoResponse::into_response)?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// `DELETE /{name}/-/{file}/-rev/{rev}`: the tarball of a version just unpublished.
async fn remove_tarball(
    app: &App,
    caller: &Caller,
    name: &str,
    file: &str,
    rev: &str,
) -> Result<Response, Response> {
    caller
        .may_npm(app, Action::Unlist, &app.target(name))
        .await?;
    let version = names::version_of_tarball(name, file)
        .ok_or_else(|| npm_error(StatusCode::NOT_FOUND, "not found"))?;
    app.packages
        .remove_tarball(name, version, rev)
        .await
        .map_err(IntoResponse::into_response)?;
    tracing::info!(name, version, "tarball removed");
    Ok(ok())
}

/// `GET /-/package/{name}/dist-tags`.
async fn dist_tags(app: &App, caller: &Caller, name: &str) -> Result<Response, Response> {
    caller.may_npm(app, Action::Read, &app.target(name)).await?;
    let tags = app
        .packages
        .dist_tags(name)
        .map_err(IntoResponse::into_response)?;
    Ok(axum::Json(tags).into_response())
}

/// `PUT` (`body`: the version, a JSON string) or `DELETE` (`None`)
/// `/-/package/{name}/dist-tags/{tag}`: `npm dist-tag add | rm`, which needs push.
async fn set_tag(
    app: &App,
    caller: &Caller,
    name: &str,
    tag: &str,
    body: Option<&Bytes>,
) -> Result<Response, Response> {
    caller.may_npm(app, Action::Push, &app.target(name)).await?;
    if !names::valid_tag(tag) {
        return Err(npm_error(
            StatusCode::BAD_REQUEST,
            format!("{tag:?} is not a tag"),
        ));
    }
    let version = match body {
        Some(body) => Some(serde_json::from_slice::<String>(body).map_err(|_| {
            npm_error(StatusCode::BAD_REQUEST, "send the version as a JSON string")
        })?),
        None => None,
    };
    app.packages
        .set_tag(name, tag, version.as_deref())
        .await
        .map_err(IntoResponse::into_response)?;
    tracing::info!(name, tag, version, "dist-tag set");
    Ok(ok())
}

/// The registry's routes.
fn router(app: Arc<App>, proxies: TrustedProxies) -> Router {
    Router::new()
        .merge(shared::tokens::routes::<App>())
        .merge(shared::leaks::routes::<App>())
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(Extension(proxies))
        .with_state(app)
}

/// A private npm registry whose tokens feedkey checks.
#[derive(clap::Parser)]
#[command(args_override_self = true)] // a flag given twice: the last one counts
struct Args {
    /// Where the token key, the tokens (SQLite) and the packages are kept
    #[arg(long, value_name = "DIR", default_value = "npm-data")]
    data: PathBuf,
    /// The registry's name: the one feed its tokens may name
    #[arg(long, default_value = "npm")]
    name: String,
    /// The account that owns the registry (its name for `npm login`)
    #[arg(long, default_value = "admin")]
    user: String,
    /// A file whose first line becomes the account's password at start (for `npm login`
    /// and `npm token create`); or set it with `POST /api/password` and the primary key
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    #[command(flatten)]
    listen: shared::Listen,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shared::init_tracing();
    let args = <Args as clap::Parser>::parse();
    std::fs::create_dir_all(&args.data)?;
    let store = SqliteStore::open(args.data.join("tokens.db"))?;
    let (key, previous) = shared::token_keys(&args.data)?;
    let owner = AccountId::new(&args.user)?;
    // The operator's primary key never expires: it is made (or regenerated) before npm's
    // cap on write tokens applies, by a feedkey with the default (unlimited) policy.
    let primary = {
        let setup = Feedkey::builder(store.clone(), key.clone())
            .previous_keys(previous.clone())
            .audit(shared::Audit)
            .build()?;
        shared::first_start(&setup, &owner, args.listen.regenerate_primary).await?
    };
    let keys = Feedkey::builder(store, key)
        .previous_keys(previous)
        .audit(shared::Audit)
        .lifetime_policy(
            LifetimePolicy::unlimited()
                .with_max_write_lifetime(Duration::days(token_api::MAX_WRITE_DAYS)),
        )
        .build()?;
    if let Some(file) = &args.password_file {
        let text = std::fs::read_to_string(file)?;
        let password = text.lines().next().unwrap_or("");
        keys.set_password(&owner, password).await?;
    }
    let app = Arc::new(App {
        keys,
        owner,
        feed: args.name.clone(),
        packages: Packages::open(&args.data.join("packages"))?,
        notes: Notes::open(&args.data.join("token-notes.json"))?,
        attempts: attempts::Attempts::default(),
        scanning: args.listen.scanning_keys()?,
    });
    shared::metrics::start(args.listen.metrics_listen).await?;
    let listener = args.listen.bind(4873).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    println!("registry: http://{addr}/");
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
    app.keys.flush().await?;
    Ok(())
}
