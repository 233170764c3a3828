//! The registry's web pages: sign-up and sign-in ([`account`]), the access tokens page
//! ([`tokens`]) and the feeds page ([`feeds`]).
//!
//! Server-rendered HTML (minijinja templates in `templates/`), one small script for Show
//! and Copy (`static/app.js`), no inline script (the Content-Security-Policy forbids it).
//! Sessions are `tower-sessions` on the site database ([`crate::sessions`]): cookies are
//! `HttpOnly` and `SameSite=Strict`, the id changes at sign-in, and every form carries
//! the session's CSRF token, checked by [`Posted`] before a handler sees a field.

pub mod account;
pub mod feeds;
pub mod tokens;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine as _;
use feedkey::AccountId;
use feedkey::time::OffsetDateTime;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use minijinja::{Environment, Value, context};
use subtle::ConstantTimeEq as _;
use tower_sessions::Session;
use zeroize::Zeroizing;

use crate::App;
use crate::sessions::ACCOUNT;

/// The session key of the CSRF token every form carries.
const CSRF: &str = "csrf";
/// The session key of the time (ms) the session signed in, against password changes.
const SIGNED_IN_AT: &str = "signed_in_at";
/// The session key of a one-time secret waiting to be shown ([`Flashes`]).
const FLASH: &str = "flash";
/// The session key of a one-time notice ("Token deleted").
const NOTICE: &str = "notice";

/// The page routes, with the security headers every page carries.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(account::home))
        .merge(account::routes())
        .merge(tokens::routes())
        .merge(feeds::routes())
        .route("/static/app.js", get(script))
        .route("/static/app.css", get(style))
        .layer(middleware::from_fn(security_headers))
}

/// No inline script or style, no framing, no referrer (reset links carry a secret in
/// their path), nothing cached.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../static/app.js"),
    )
        .into_response()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../static/app.css"),
    )
        .into_response()
}

/// The templates, compiled once at start.
pub struct Pages(Environment<'static>);

impl Pages {
    /// Loads every template; a template that does not parse stops the start.
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("../templates/base.html")),
            ("home.html", include_str!("../templates/home.html")),
            ("message.html", include_str!("../templates/message.html")),
            ("signup.html", include_str!("../templates/signup.html")),
            ("signin.html", include_str!("../templates/signin.html")),
            ("reset.html", include_str!("../templates/reset.html")),
            (
                "new_password.html",
                include_str!("../templates/new_password.html"),
            ),
            ("password.html", include_str!("../templates/password.html")),
            ("tokens.html", include_str!("../templates/tokens.html")),
            (
                "token_new.html",
                include_str!("../templates/token_new.html"),
            ),
            (
                "token_edit.html",
                include_str!("../templates/token_edit.html"),
            ),
            (
                "token_delete.html",
                include_str!("../templates/token_delete.html"),
            ),
            ("feeds.html", include_str!("../templates/feeds.html")),
        ] {
            env.add_template(name, source)?;
        }
        Ok(Self(env))
    }

    /// Renders a page; a template failure is logged and answered 500.
    pub fn render(&self, name: &str, ctx: Value) -> Response {
        self.render_status(StatusCode::OK, name, ctx)
    }

    /// Renders a page with a status (a form shown again with its error: 422).
    pub fn render_status(&self, status: StatusCode, name: &str, ctx: Value) -> Response {
        match self.0.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!("page {name}: {e:#}");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }

    /// A page that only says something (an error, a confirmation).
    pub fn message(
        &self,
        status: StatusCode,
        user: Option<&AccountId>,
        csrf: &str,
        title: &str,
        text: &str,
    ) -> Response {
        self.render_status(
            status,
            "message.html",
            context! { user => user.map(AccountId::as_str), csrf, title, text },
        )
    }
}

/// 32 random bytes, URL-safe base64: CSRF tokens, flash keys, reset links.
pub fn random_token() -> Result<String, Response> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).map_err(|e| {
        tracing::error!("no randomness: {e}");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

/// A session failure: logged, answered 500 (the site database is down).
fn session_failed(e: &tower_sessions::session::Error) -> Response {
    tracing::error!("session store: {e}");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// The session's CSRF token, made on first use.
pub async fn csrf(session: &Session) -> Result<String, Response> {
    if let Some(token) = session
        .get::<String>(CSRF)
        .await
        .map_err(|e| session_failed(&e))?
    {
        return Ok(token);
    }
    let token = random_token()?;
    session
        .insert(CSRF, &token)
        .await
        .map_err(|e| session_failed(&e))?;
    Ok(token)
}

/// Signs `account` in on this session: a new session id (a fixed id planted before
/// sign-in is useless after it), a new CSRF token, the sign-in time.
pub async fn sign_in_session(session: &Session, account: &AccountId) -> Result<(), Response> {
    session.cycle_id().await.map_err(|e| session_failed(&e))?;
    session
        .insert(CSRF, random_token()?)
        .await
        .map_err(|e| session_failed(&e))?;
    session
        .insert(ACCOUNT, account.as_str())
        .await
        .map_err(|e| session_failed(&e))?;
    session
        .insert(SIGNED_IN_AT, crate::site::now_ms())
        .await
        .map_err(|e| session_failed(&e))?;
    Ok(())
}

/// Asks for the account's password again before a sensitive change (creating a token,
/// regenerating the primary key, changing the password), rate-limited as sign-in is.
/// A refusal is its status and the words for the form: 429 when limited, 401 when the
/// password is wrong, 503 when the store cannot check it.
pub async fn reconfirm(
    app: &App,
    client: std::net::IpAddr,
    account: &AccountId,
    password: &str,
) -> Result<(), (StatusCode, &'static str)> {
    if !app.limits.allow(client, account.as_str()) {
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts. Wait a minute.",
        ));
    }
    match app.keys.sign_in(account.as_str(), password).await {
        Ok(signed) if signed == *account => Ok(()),
        Err(denial) if matches!(denial.reason(), feedkey::DenyReason::Store(_)) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "Passwords cannot be checked right now. Try again later.",
        )),
        _ => Err((
            StatusCode::UNAUTHORIZED,
            "Your password is needed for this, and that one is wrong.",
        )),
    }
}

/// A one-time notice for the next page.
pub async fn notice(session: &Session, text: impl Into<String>) -> Result<(), Response> {
    session
        .insert(NOTICE, text.into())
        .await
        .map_err(|e| session_failed(&e))
}

async fn take_notice(session: &Session) -> Result<Option<String>, Response> {
    session
        .remove::<String>(NOTICE)
        .await
        .map_err(|e| session_failed(&e))
}

/// The signed-in account of a page request; anyone else is sent to the sign-in page.
pub struct SignedIn {
    pub account: AccountId,
    pub session: Session,
    pub csrf: String,
}

impl FromRequestParts<Arc<App>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let to_sign_in = || Redirect::to("/signin").into_response();
        let name = session
            .get::<String>(ACCOUNT)
            .await
            .map_err(|e| session_failed(&e))?;
        let Some(account) = name.and_then(|n| AccountId::new(&n).ok()) else {
            return Err(to_sign_in());
        };
        // A session signed in before the password last changed is over (its row was
        // deleted then; this catches a request that saved it again meanwhile).
        let signed_in_at = session
            .get::<i64>(SIGNED_IN_AT)
            .await
            .map_err(|e| session_failed(&e))?
            .unwrap_or(0);
        let changed_at = app
            .site
            .password_changed_at(account.as_str())
            .map_err(|e| {
                tracing::error!("{e}");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            })?;
        if changed_at.is_some_and(|changed| signed_in_at < changed) {
            session.flush().await.map_err(|e| session_failed(&e))?;
            return Err(to_sign_in());
        }
        let csrf = csrf(&session).await?;
        Ok(Self {
            account,
            session,
            csrf,
        })
    }
}

/// A form posted with the session's CSRF token; any other post is refused (403) before
/// its handler runs.
pub struct Posted {
    pub fields: Fields,
    pub session: Session,
}

/// The fields of a posted form, repeated names kept (checkbox lists).
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed; empty when missing.
    pub fn one(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// The first value of `name` as typed (passwords are not trimmed).
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
            .collect()
    }

    /// Whether a checkbox named `name` was ticked.
    pub fn ticked(&self, name: &str) -> bool {
        !self.one(name).is_empty()
    }
}

impl FromRequest<Arc<App>> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, app: &Arc<App>) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let request = Request::from_parts(parts, body);
        let Form(fields) = Form::<Vec<(String, String)>>::from_request(request, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields = Fields(fields);
        let expected = session
            .get::<String>(CSRF)
            .await
            .map_err(|e| session_failed(&e))?;
        let sent = fields.raw(CSRF);
        let good = expected.is_some_and(|e| bool::from(e.as_bytes().ct_eq(sent.as_bytes())));
        if !good {
            tracing::warn!("form refused: missing or wrong CSRF token");
            let csrf = csrf(&session).await?;
            return Err(app.pages.message(
                StatusCode::FORBIDDEN,
                None,
                &csrf,
                "This form has expired",
                "The form was not sent from this site's page, or its page is too old. Go back, reload the page and try again.",
            ));
        }
        Ok(Self { fields, session })
    }
}

/// One-time secrets waiting for the next page view: a token value after create,
/// refresh or regeneration. Kept in memory only (never in the session database), taken
/// by the first view, so a reload shows it no more.
#[derive(Default)]
pub struct Flashes(Mutex<HashMap<String, Flash>>);

/// A secret to show once.
pub struct Flash {
    pub label: String,
    pub value: Zeroizing<String>,
    made: OffsetDateTime,
}

impl Flashes {
    /// Keeps `value` for this session's next view of the tokens page.
    pub async fn put(&self, session: &Session, label: String, value: &str) -> Result<(), Response> {
        let key = random_token()?;
        let flash = Flash {
            label,
            value: Zeroizing::new(value.to_owned()),
            made: OffsetDateTime::now_utc(),
        };
        {
            let mut map = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // One unseen for ten minutes is forgotten.
            let now = OffsetDateTime::now_utc();
            map.retain(|_, f| now - f.made < feedkey::time::Duration::minutes(10));
            map.insert(key.clone(), flash);
        }
        session
            .insert(FLASH, key)
            .await
            .map_err(|e| session_failed(&e))
    }

    /// Takes this session's waiting secret, if any.
    pub async fn take(&self, session: &Session) -> Result<Option<Flash>, Response> {
        let Some(key) = session
            .remove::<String>(FLASH)
            .await
            .map_err(|e| session_failed(&e))?
        else {
            return Ok(None);
        };
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(map.remove(&key))
    }
}

/// Rate limits on the forms that check a password or send mail.
pub struct Limits {
    by_client: DefaultKeyedRateLimiter<String>,
    by_user: DefaultKeyedRateLimiter<String>,
}

impl Default for Limits {
    fn default() -> Self {
        let per_minute = |n| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            by_client: RateLimiter::keyed(per_minute(20)),
            by_user: RateLimiter::keyed(per_minute(5)),
        }
    }
}

impl Limits {
    /// Whether one more password attempt (or mail) from `client` for `user` is allowed:
    /// 20 a minute from one address, 5 a minute for one user name.
    pub fn allow(&self, client: std::net::IpAddr, user: &str) -> bool {
        self.by_client.check_key(&client.to_string()).is_ok()
            && self.by_user.check_key(&user.to_lowercase()).is_ok()
    }

    /// Forgets keys that have not been limited lately.
    pub fn sweep(&self) {
        self.by_client.retain_recent();
        self.by_user.retain_recent();
    }
}

/// How a page shows an instant.
pub fn when(at: OffsetDateTime) -> String {
    let at = at.to_offset(feedkey::time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// The notice waiting for a page, for templates.
pub async fn page_notice(session: &Session) -> Result<Option<String>, Response> {
    take_notice(session).await
}
