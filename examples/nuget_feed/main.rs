//! A MyGet-style NuGet registry guarded by feedkey: accounts, feeds per account, the
//! access tokens page, and the NuGet v2 protocol for the real NuGet client.
//!
//! ```sh
//! cargo run --example nuget_feed --features sqlite,http,tracing -- --data ./nuget-data
//! ```
//!
//! Open the URL it prints: sign up, create a feed, create a token scoped to your
//! packages, and push with it. Feeds live under `/F/{feed}/api/v2` (reads: the NuGet v2
//! OData endpoints) and `/F/{feed}/api/v2/package` (push with PUT, unlist with DELETE).
//! A private feed answers anonymous reads with a Basic challenge; a token stands in for
//! the password. Only the feed's owner's tokens act on it.
//!
//! On first start it also makes the operator's account, `admin`, which owns the feeds
//! given with `--feed` (default `main`), and prints its primary key once. Tokens are
//! managed on the web pages, or as JSON at `/api/tokens` with an account's primary key
//! (docs/http-api.md).
//!
//! Every feedkey decision is made in one place: handlers take a [`shared::Caller`] (an
//! axum extractor) and ask it, and it calls [`shared::guard`].
//!
//! Over 600 lines because the start-up (flags, state, router) and the v2 handlers read
//! best together; trusted publishing (`POST /api/v2/token`) is in `shared/trusted.rs`.

// Handlers answer with a `Response` on every path; boxing it would only add noise.
#![allow(clippy::result_large_err)]
// A binary: its `pub` items are shared between its modules, not an API with an errors
// section to read.
#![allow(clippy::missing_errors_doc)]

mod mail;
mod odata;
mod packages;
mod sessions;
#[path = "../shared/mod.rs"]
mod shared;
mod site;
#[cfg(feature = "oidc")]
#[path = "../shared/trusted.rs"]
mod trusted;
mod web;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use feedkey::{AccountId, Action, DenyReason, FeedName, Feedkey, Request, SqliteStore, Target};
use hyper::ext::ReasonPhrase;
use tower_sessions::SessionManagerLayer;
use tower_sessions::cookie::SameSite;

use crate::odata::Reads;
use crate::packages::Feed;
use crate::shared::Caller;
use crate::site::Site;

/// Everything a handler needs.
pub struct App {
    keys: Feedkey<SqliteStore>,
    /// Users, feed owners, sessions, reset links, warnings sent.
    site: Arc<Site>,
    /// Where feeds keep their packages.
    data: PathBuf,
    /// Every feed, by name.
    feeds: RwLock<HashMap<String, Arc<Feed>>>,
    pages: web::Pages,
    flashes: web::Flashes,
    limits: web::Limits,
    mail: Option<mail::Mailer>,
    /// The registry's address as its users reach it, for links in mail.
    public_url: String,
    /// GitHub's secret-scanning keys (`--secret-scanning-keys`).
    scanning: Option<shared::leaks::ScanningKeys>,
    /// The OIDC issuers trusted publishing takes (`--oidc-issuer`): `POST /api/v2/token`.
    #[cfg(feature = "oidc")]
    issuers: Option<trusted::Issuers>,
}

#[cfg(feature = "oidc")]
impl trusted::Trusting for App {
    fn issuers(&self) -> Option<&trusted::Issuers> {
        self.issuers.as_ref()
    }
}

/// Why a feed was not made.
pub enum FeedError {
    /// The name is not one a feed may have.
    Invalid(String),
    /// Someone has a feed of that name.
    Taken,
    /// The site database or the disk failed.
    Failed(String),
}

/// The names a feed may have: lowercase letters, digits, `.`, `-` and `_`, starting with
/// a letter or digit, at most 64 (a URL segment that needs no escaping).
fn valid_feed_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if !ok {
        return Err(format!(
            "A feed name has 1 to 64 lowercase letters, digits, '.', '-' or '_', and starts with a letter or digit; {name:?} does not."
        ));
    }
    FeedName::new(name).map(drop).map_err(|e| e.to_string())
}

impl App {
    fn feed(&self, name: &str) -> Option<Arc<Feed>> {
        self.feeds
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Every feed as (name, owner, private), by name.
    pub fn feed_rows(&self) -> Vec<(String, String, bool)> {
        let feeds = self
            .feeds
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rows: Vec<_> = feeds
            .iter()
            .map(|(name, f)| (name.clone(), f.owner.as_str().to_owned(), f.private))
            .collect();
        rows.sort();
        rows
    }

    /// Whether `account` owns the feed `name`.
    pub fn owns_feed(&self, account: &AccountId, name: &str) -> bool {
        self.feed(name).is_some_and(|f| f.owner == *account)
    }

    /// The names of the account's feeds.
    pub fn feeds_of(&self, account: &AccountId) -> Vec<String> {
        self.feed_rows()
            .into_iter()
            .filter(|(_, owner, _)| owner == account.as_str())
            .map(|(name, _, _)| name)
            .collect()
    }

    /// The package ids in the account's feeds, for the token form's tick list.
    pub fn package_ids_of(&self, account: &AccountId) -> Vec<String> {
        let mut ids = BTreeSet::new();
        for name in self.feeds_of(account) {
            if let Some(feed) = self.feed(&name) {
                ids.extend(feed.all().into_iter().map(|p| p.id));
            }
        }
        ids.into_iter().collect()
    }

    /// Makes a feed for `owner`: recorded in the site database, then served.
    pub fn add_feed(&self, name: &str, owner: &AccountId, private: bool) -> Result<(), FeedError> {
        valid_feed_name(name).map_err(FeedError::Invalid)?;
        let added = self
            .site
            .add_feed(name, owner.as_str(), private)
            .map_err(|e| FeedError::Failed(e.to_string()))?;
        if !added {
            return Err(FeedError::Taken);
        }
        let feed = Feed::open(&self.data, name, owner.clone(), private)
            .map_err(|e| FeedError::Failed(e.to_string()))?;
        self.feeds
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), Arc::new(feed));
        Ok(())
    }
}

impl shared::Registry for App {
    type Store = SqliteStore;
    const CHALLENGE: &'static str = "Basic realm=\"feed\"";

    fn keys(&self) -> &Feedkey<SqliteStore> {
        &self.keys
    }

    fn scanning_keys(&self) -> Option<&shared::leaks::ScanningKeys> {
        self.scanning.as_ref()
    }

    /// A feed's own account, and no other, acts on it; any account of the registry may
    /// prove itself (`None`). A feed that does not exist is no one else's: a proven
    /// caller then hears 404 from the handler, while one not proven hears what a private
    /// feed answers.
    fn owns(&self, account: &AccountId, feed: Option<&str>) -> bool {
        feed.is_none_or(|name| self.feed(name).is_none_or(|f| f.owner == *account))
    }

    fn has_feed(&self, account: &AccountId, name: &str) -> bool {
        self.owns_feed(account, name)
    }

    /// The NuGet client sends `X-NuGet-ApiKey` to push and Basic auth to read.
    fn request<'h>(headers: &'h HeaderMap) -> Request<'h> {
        Request::from_header_map(headers)
    }
}

type Shared = State<Arc<App>>;

/// The largest package accepted.
const MAX_PACKAGE_BYTES: usize = 64 * 1024 * 1024;

fn feed(app: &App, name: &str) -> Result<Arc<Feed>, Response> {
    app.feed(name)
        .ok_or_else(|| (StatusCode::NOT_FOUND, "no such feed").into_response())
}

/// The site's address as this request reached it.
pub fn site_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn base_url(headers: &HeaderMap, feed: &str) -> String {
    format!("{}/F/{feed}/api/v2", site_url(headers))
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
    if app.feed(&feed_name).is_none_or(|f| f.private) {
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
    Ok(match odata::answer(&feed, &base, &rest, &query) {
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
        && denial
            .account()
            .is_some_and(|account| app.owns_feed(account, feed_name))
    {
        return Ok(());
    }
    shared::settle(app, decision, caller.client, Some(feed_name), || {
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
    if app.feed(&feed_name).is_none_or(|f| f.private) {
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
/// body is read; a feed it does not own gets the same refusal as a feed that does not
/// exist; the package's own scope is checked once its id is known.
async fn push(
    State(app): Shared,
    caller: Caller,
    UrlPath(feed_name): UrlPath<String>,
    request: axum::extract::Request,
) -> Result<Response, Response> {
    let grant = caller.identified(&*app).await.map_err(refuse_write)?;
    let feed = feed(&app, &feed_name)?;
    if feed.owner != *grant.account() {
        tracing::warn!(account = %grant.account(), feed = feed_name, "push refused: not the feed's owner");
        return Err(refuse_write(StatusCode::FORBIDDEN.into_response()));
    }
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
    // A package holding a live token of this registry is refused, and the token revoked;
    // NuGet 2.8 prints the reason phrase, so the message is that too.
    let name = format!("{} {}", meta.id, meta.version);
    let scanned = body.slice_ref(package);
    if let Err((status, detail)) =
        shared::leaks::refuse_leaks(&*app, shared::leaks::Archive::Zip, scanned, &name).await
    {
        let mut response = (status, detail.clone()).into_response();
        if let Ok(phrase) = ReasonPhrase::try_from(detail.into_bytes()) {
            response.extensions_mut().insert(phrase);
        }
        return Err(response);
    }
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

/// A MyGet-style NuGet registry whose tokens feedkey checks: accounts, feeds, the access
/// tokens page, and the NuGet v2 protocol.
#[derive(clap::Parser)]
#[command(args_override_self = true)] // a flag given twice: the last one counts
struct Args {
    /// Where the token key, the tokens, the site's records and the packages are kept
    #[arg(long, value_name = "DIR", default_value = "nuget-data")]
    data: PathBuf,
    /// A feed of the operator's account (admin), at /F/{feed}/api/v2; repeat for
    /// several [default: main]
    #[arg(long = "feed", value_name = "NAME")]
    feeds: Vec<String>,
    /// One of the --feed feeds whose reads need a token too; repeat for several
    #[arg(long, value_name = "NAME")]
    private: Vec<String>,
    /// The registry's address as users reach it, for links in mail and secure cookies
    /// (https://...) [default: http://ADDR:PORT it listens on]
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// The SMTP relay for reset links and expiry warnings, such as 127.0.0.1:25; without
    /// it no mail is sent
    #[arg(long, value_name = "HOST:PORT")]
    smtp: Option<String>,
    /// The sender of the registry's mail
    #[arg(long, value_name = "ADDRESS", default_value = "registry@localhost")]
    mail_from: String,
    /// How often the expiry warnings are sent, in seconds (each key is warned once)
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    expiry_mail_every: u64,
    #[command(flatten)]
    listen: shared::Listen,
    #[cfg(feature = "oidc")]
    #[command(flatten)]
    trust: trusted::TrustArgs,
}

/// The operator's feeds from the command line, owned by `admin`: made on first start,
/// their privacy kept in step with the flags.
fn operator_feeds(
    site: &Site,
    args: &Args,
    admin: &AccountId,
) -> Result<(), Box<dyn std::error::Error>> {
    for name in &args.feeds {
        valid_feed_name(name)?;
        let private = args.private.contains(name);
        if !site.add_feed(name, admin.as_str(), private)? {
            let row = site.feeds()?.into_iter().find(|f| f.name == *name);
            match row {
                Some(row) if row.owner == admin.as_str() => site.set_private(name, private)?,
                _ => return Err(format!("feed {name} belongs to another account").into()),
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shared::init_tracing();
    let mut args = <Args as clap::Parser>::parse();
    if args.feeds.is_empty() {
        args.feeds.push("main".into());
    }
    if let Some(unknown) = args.private.iter().find(|p| !args.feeds.contains(p)) {
        return Err(format!("--private {unknown}: give it with --feed too").into());
    }
    std::fs::create_dir_all(&args.data)?;
    let store = SqliteStore::open(args.data.join("tokens.db"))?;
    let (key, previous) = shared::token_keys(&args.data)?;
    let keys = Feedkey::builder(store, key)
        .previous_keys(previous)
        .audit(shared::Audit)
        .build()?;
    let admin = AccountId::new("admin")?;
    let primary = shared::first_start(&keys, &admin, args.listen.regenerate_primary).await?;
    let site = Arc::new(Site::open(&args.data)?);
    operator_feeds(&site, &args, &admin)?;
    let mut feeds = HashMap::new();
    for row in site.feeds()? {
        let owner = AccountId::new(&row.owner)?;
        let feed = Feed::open(&args.data, &row.name, owner, row.private)?;
        feeds.insert(row.name, Arc::new(feed));
    }
    let mail = match &args.smtp {
        Some(relay) => Some(mail::Mailer::new(relay, &args.mail_from)?),
        None => None,
    };

    shared::metrics::start(args.listen.metrics_listen).await?;
    let listener = args.listen.bind(5000).await?;
    let addr = listener.local_addr()?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    let app = Arc::new(App {
        keys,
        site: Arc::clone(&site),
        data: args.data.clone(),
        feeds: RwLock::new(feeds),
        pages: web::Pages::new()?,
        flashes: web::Flashes::default(),
        limits: web::Limits::default(),
        mail,
        public_url: public_url.clone(),
        scanning: args.listen.scanning_keys()?,
        #[cfg(feature = "oidc")]
        issuers: args.trust.issuers()?,
    });

    let sessions = SessionManagerLayer::new(sessions::SiteSessions(site))
        .with_name("nuget_feed_session")
        .with_same_site(SameSite::Strict)
        .with_http_only(true)
        .with_secure(public_url.starts_with("https://"))
        .with_expiry(tower_sessions::Expiry::OnInactivity(
            feedkey::time::Duration::hours(8),
        ));
    let router = Router::new();
    #[cfg(feature = "oidc")]
    let router = router.merge(trusted::routes::<App>());
    let router = router
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
        .merge(shared::leaks::routes::<App>())
        .merge(web::routes().layer(sessions))
        .layer(axum::Extension(args.listen.trusted_proxies()))
        .with_state(Arc::clone(&app));

    if app.mail.is_some() {
        tokio::spawn(mail::expiry_job(
            Arc::clone(&app),
            StdDuration::from_secs(args.expiry_mail_every.max(1)),
        ));
    } else {
        tracing::info!("no --smtp: no reset links or expiry warnings are mailed");
    }

    println!("listening on http://{addr}");
    println!("web pages: {public_url}/");
    for (name, owner, private) in app.feed_rows() {
        let kind = if private { "private" } else { "public" };
        println!("feed {name} ({kind}, {owner}): http://{addr}/F/{name}/api/v2");
    }
    match primary {
        Some(p) => println!("primary key (shown once): {}", p.token.expose_secret()),
        None => {
            println!("primary key: unchanged (if lost: restart once with --regenerate-primary)")
        }
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
