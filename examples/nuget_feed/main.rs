//! A MyGet-style multi-feed NuGet server guarded by feedkey, for the real NuGet client.
//!
//! ```sh
//! cargo run --example nuget_feed --features sqlite,http,tracing -- \
//!     --data ./nuget-data --feed ci --feed release --private release
//! ```
//!
//! It prints its URL and, on first start, the primary key (shown once). Feeds live under
//! `/F/{feed}/api/v2` (read: the NuGet v2 OData endpoints) and `/F/{feed}/api/v2/package`
//! (push with PUT, unlist with DELETE). A private feed answers anonymous reads with a
//! Basic challenge; a token stands in for the password. Tokens are managed at `/api/tokens`
//! with the primary key.
//!
//! Every feedkey decision is made in one place: handlers take a [`shared::Caller`] (an
//! axum extractor) and ask it, and it calls [`shared::guard`].

// Handlers answer with a `Response` on every path; boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod odata;
mod packages;
#[path = "../shared/mod.rs"]
mod shared;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use feedkey::{AccountId, Action, DenyReason, Feedkey, Request, SqliteStore, Target};
use hyper::ext::ReasonPhrase;

use crate::odata::Reads;
use crate::packages::Feed;
use crate::shared::Caller;

/// Everything a handler needs.
pub struct App {
    keys: Feedkey<SqliteStore>,
    /// The one account that owns every feed here.
    owner: AccountId,
    feeds: HashMap<String, Feed>,
}

impl shared::Registry for App {
    type Store = SqliteStore;
    const CHALLENGE: &'static str = "Basic realm=\"feed\"";

    fn keys(&self) -> &Feedkey<SqliteStore> {
        &self.keys
    }

    fn owner(&self) -> &AccountId {
        &self.owner
    }

    fn has_feed(&self, name: &str) -> bool {
        self.feeds.contains_key(name)
    }

    /// The NuGet client sends `X-NuGet-ApiKey` to push and Basic auth to read.
    fn request<'h>(headers: &'h HeaderMap) -> Request<'h> {
        Request::from_header_map(headers)
    }
}

type Shared = State<Arc<App>>;

/// The largest package accepted.
const MAX_PACKAGE_BYTES: usize = 64 * 1024 * 1024;

fn feed<'a>(app: &'a App, name: &str) -> Result<&'a Feed, Response> {
    app.feeds
        .get(name)
        .ok_or_else(|| (StatusCode::NOT_FOUND, "no such feed").into_response())
}

fn base_url(headers: &HeaderMap, feed: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/F/{feed}/api/v2")
}

/// Reads: the service document, `$metadata`, `Packages`, `Search()`,
/// `FindPackagesById()`. On a private feed a read of one package (`FindPackagesById`,
/// `Packages(Id=…,Version=…)`) asks for read on that package and a listing for read on
/// the feed; the service document and `$metadata`, the same for every feed, ask for read
/// on any of its packages. A feed that does not exist is asked the same as a private one,
/// so a caller not proven cannot tell the two apart; only a proven caller hears 404.
async fn read(
    State(app): Shared,
    caller: Caller,
    UrlPath((feed_name, rest)): UrlPath<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let query = query.unwrap_or_default();
    if app.feeds.get(&feed_name).is_none_or(|f| f.private) {
        match odata::reads(&rest, &query) {
            Reads::Service => may_read_some(&app, &caller, &feed_name).await?,
            Reads::Package(id) => {
                let target = Target::package(&feed_name, &id);
                caller.may(&*app, Action::Read, &target).await?;
            }
            Reads::Feed => {
                let target = Target::feed(&feed_name);
                caller.may(&*app, Action::Read, &target).await?;
            }
        }
    }
    let feed = feed(&app, &feed_name)?;
    let base = base_url(&headers, &feed_name);
    tracing::debug!(feed = feed_name, rest, query, "read");
    Ok(match odata::answer(feed, &base, &rest, &query) {
        Ok((content_type, body)) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(status) => status.into_response(),
    })
}

/// May the caller read something in this feed? The service document and `$metadata`
/// show no package, so a token with read on some of the feed's packages may read them:
/// its refusal on the whole feed for its packages ("package out of scope") comes only
/// after its secret, permission and feed were checked.
async fn may_read_some(app: &App, caller: &Caller, feed_name: &str) -> Result<(), Response> {
    let request =
        <App as shared::Registry>::request(&caller.headers).with_client_addr(caller.client);
    let target = Target::feed(feed_name);
    let decision = app.keys.authorize(&request, Action::Read, &target).await;
    if let Err(denial) = &decision
        && *denial.reason() == DenyReason::PackageOutOfScope
        && denial.account() == Some(&app.owner)
    {
        return Ok(());
    }
    shared::settle(app, decision, caller.client, || {
        format!("Read on {feed_name}/")
    })
    .map(drop)
}

async fn service_root(
    app: Shared,
    caller: Caller,
    UrlPath(feed_name): UrlPath<String>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, Response> {
    read(
        app,
        caller,
        UrlPath((feed_name, String::new())),
        query,
        headers,
    )
    .await
}

/// `GET /F/{feed}/api/v2/package/{id}/{version}`: the .nupkg, a read of that package.
async fn download(
    State(app): Shared,
    caller: Caller,
    UrlPath((feed_name, id, version)): UrlPath<(String, String, String)>,
) -> Result<Response, Response> {
    if app.feeds.get(&feed_name).is_none_or(|f| f.private) {
        let target = Target::package(&feed_name, &id);
        caller.may(&*app, Action::Read, &target).await?;
    }
    let feed = feed(&app, &feed_name)?;
    Ok(match feed.read_package(&id, &version) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/zip")], bytes).into_response(),
        Err(e) => e.into_response(),
    })
}

/// What nuget.org says to a push or delete its key may not make; NuGet 2.8 prints the
/// status line's reason phrase, so it is both the reason phrase and the body.
const BAD_KEY: &str = "The specified API key is invalid, has expired, or does not have permission to access the specified package";

/// A refused push or delete, as nuget.org answers it: 403 with [`BAD_KEY`], whatever the
/// reason (a dead key too: a 401 would have the client ask for a user name). An outage
/// stays a 503.
fn refuse_write(refusal: Response) -> Response {
    if refusal.status() == StatusCode::SERVICE_UNAVAILABLE {
        return refusal;
    }
    let mut response = (StatusCode::FORBIDDEN, BAD_KEY).into_response();
    response
        .extensions_mut()
        .insert(ReasonPhrase::from_static(BAD_KEY.as_bytes()));
    response
}

/// `PUT /F/{feed}/api/v2/package`: push, as multipart/form-data with the .nupkg.
///
/// The caller is proven from the headers before the feed is looked up or a byte of the
/// body is read; the package's own scope is checked once its id is known.
async fn push(
    State(app): Shared,
    caller: Caller,
    UrlPath(feed_name): UrlPath<String>,
    request: axum::extract::Request,
) -> Result<Response, Response> {
    caller.identified(&*app).await.map_err(refuse_write)?;
    let feed = feed(&app, &feed_name)?;
    let headers = request.headers().clone();
    let body = Bytes::from_request(request, &())
        .await
        .map_err(IntoResponse::into_response)?;
    let upload = packages::upload(&headers, &body).and_then(|p| Ok((p, packages::inspect(p)?)));
    let (package, meta) = match upload {
        Ok(m) => m,
        Err(e) => {
            tracing::info!(feed = feed_name, "push refused: {e}");
            return Err(e.into_response());
        }
    };
    let target = if feed.has_id(&meta.id) {
        Target::package(&feed_name, &meta.id)
    } else {
        Target::new_package(&feed_name, &meta.id)
    };
    caller
        .may(&*app, Action::Push, &target)
        .await
        .map_err(refuse_write)?;
    Ok(match feed.store_package(&meta, package) {
        Ok(()) => {
            tracing::info!(
                feed = feed_name,
                id = meta.id,
                version = meta.version,
                "pushed"
            );
            StatusCode::CREATED.into_response()
        }
        Err(e) => e.into_response(),
    })
}

/// `DELETE /F/{feed}/api/v2/package/{id}/{version}`: unlist.
async fn unlist(
    State(app): Shared,
    caller: Caller,
    UrlPath((feed_name, id, version)): UrlPath<(String, String, String)>,
) -> Result<Response, Response> {
    let target = Target::package(&feed_name, &id);
    caller
        .may(&*app, Action::Unlist, &target)
        .await
        .map_err(refuse_write)?;
    let feed = feed(&app, &feed_name)?;
    Ok(match feed.unlist(&id, &version) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    })
}

/// The NuGet client GETs the push source before pushing.
async fn push_probe() -> StatusCode {
    StatusCode::OK
}

/// A MyGet-style multi-feed NuGet server whose tokens feedkey checks.
#[derive(clap::Parser)]
#[command(args_override_self = true)] // a flag given twice: the last one counts
struct Args {
    /// Where the token key, the tokens (SQLite) and the packages are kept
    #[arg(long, value_name = "DIR", default_value = "nuget-data")]
    data: PathBuf,
    /// A feed to serve, at /F/{feed}/api/v2; repeat for several [default: main]
    #[arg(long = "feed", value_name = "NAME")]
    feeds: Vec<String>,
    /// A feed whose reads need a token too; repeat for several
    #[arg(long, value_name = "NAME")]
    private: Vec<String>,
    #[command(flatten)]
    listen: shared::Listen,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shared::init_tracing();
    let mut args = <Args as clap::Parser>::parse();
    if args.feeds.is_empty() {
        args.feeds.push("main".into());
    }
    std::fs::create_dir_all(&args.data)?;
    let store = SqliteStore::open(args.data.join("tokens.db"))?;
    let keys = Feedkey::builder(store, shared::token_key(&args.data)?)
        .audit(shared::Audit)
        .build()?;
    let owner = AccountId::new("admin")?;
    let primary = shared::first_start(&keys, &owner).await?;
    let mut feeds = HashMap::new();
    for name in &args.feeds {
        let private = args.private.contains(name);
        feeds.insert(name.clone(), Feed::open(&args.data, name, private)?);
    }
    let app = Arc::new(App { keys, owner, feeds });

    let router = Router::new()
        .route("/F/{feed}/api/v2", get(service_root))
        .route("/F/{feed}/api/v2/", get(service_root))
        .route("/F/{feed}/api/v2/package", put(push).get(push_probe))
        .route("/F/{feed}/api/v2/package/", put(push).get(push_probe))
        .route(
            "/F/{feed}/api/v2/package/{id}/{version}",
            get(download).delete(unlist),
        )
        .route("/F/{feed}/api/v2/{*rest}", get(read))
        .merge(shared::tokens::routes::<App>())
        .layer(DefaultBodyLimit::max(MAX_PACKAGE_BYTES))
        .layer(axum::Extension(args.listen.trusted_proxies()))
        .with_state(Arc::clone(&app));

    let listener = args.listen.bind(5000).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    for name in &args.feeds {
        let kind = if args.private.contains(name) {
            "private"
        } else {
            "public"
        };
        println!("feed {name} ({kind}): http://{addr}/F/{name}/api/v2");
    }
    match primary {
        Some(p) => println!("primary key (shown once): {}", p.token.expose_secret()),
        None => println!("primary key: unchanged (regenerate it through feedkey if lost)"),
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shared::shutdown_signal())
    .await?;
    app.keys.flush().await?;
    Ok(())
}
