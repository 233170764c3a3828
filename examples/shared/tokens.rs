//! The "my tokens" API, JSON in and JSON out, for the holder of the primary key.
//!
//! | method and path                 | does                                             |
//! |---------------------------------|--------------------------------------------------|
//! | `POST /api/tokens`              | issues a token; the answer holds it, once        |
//! | `GET /api/tokens`               | lists tokens (never a secret)                    |
//! | `PATCH /api/tokens/{id}`        | edits the description, narrows feeds or packages |
//! | `POST /api/tokens/{id}/refresh` | a new secret, same scope and expiry; old one dies|
//! | `DELETE /api/tokens/{id}`       | revokes, for good                                |
//! | `POST /api/password`            | sets the account password (reads only)           |
//!
//! Every error is `{"errors":[{"detail":…}]}` with a 4xx status (a body that is not
//! JSON, or not the JSON asked for, included: see [`Body`]); a 500 only when the store
//! fails. A token may only name feeds this server has ([`Registry::has_feed`]).
//!
//! Only the primary key manages tokens. A token that could issue tokens would survive its
//! own revocation through the ones it made, so no scoped token gets that right here.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use feedkey::time::{Duration, OffsetDateTime};
use feedkey::{
    AccountId, Error, Expiry, Feeds, Networks, NewToken, Packages, Permission, Permissions, Scope,
    StoreError, TokenEdit, TokenId,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Caller, Registry, error};

/// The routes, to merge into a server's router.
pub fn routes<R: Registry>() -> Router<Arc<R>> {
    Router::new()
        .route("/api/tokens", post(create::<R>).get(list::<R>))
        .route("/api/tokens/{id}", patch(edit::<R>).delete(revoke::<R>))
        .route("/api/tokens/{id}/refresh", post(refresh::<R>))
        .route("/api/password", post(set_password::<R>))
        // A management body is small; a caller not yet proven may not make the server
        // buffer more (the extractor reads the body before the handler checks the key).
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// The largest token-management request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON request body whose every rejection (not JSON, the wrong content type, a
/// missing or unknown field, a value out of range) is the API's JSON error with axum's
/// 4xx status, never plain text.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Response> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejected(&rejection)),
        }
    }
}

fn rejected(rejection: &JsonRejection) -> Response {
    error(rejection.status(), rejection.body_text())
}

/// The calling account (proven by its primary key) and the token id of a
/// `/api/tokens/{id}` call. The id is looked up in that account only: another account's
/// token id is not found.
async fn owned_id<R: Registry>(
    app: &R,
    caller: &Caller,
    id: &str,
) -> Result<(AccountId, TokenId), Response> {
    let account = caller.owner(app).await?.account().clone();
    let id = id
        .parse::<TokenId>()
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("token id: {e}")))?;
    Ok((account, id))
}

/// A management failure as JSON, with the status that fits it.
fn failure(e: &Error) -> Response {
    let status = match e {
        Error::TokenNotFound | Error::AccountNotFound => StatusCode::NOT_FOUND,
        Error::Store(StoreError::Conflict) => StatusCode::CONFLICT,
        Error::Store(_) | Error::Entropy | Error::Hash(_) => {
            tracing::error!("token management failed: {e}");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    error(status, e)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    description: String,
    permissions: Vec<Permission>,
    feeds: Option<Vec<String>>,
    packages: Option<Vec<String>>,
    /// CIDR ranges the token may be used from (`10.0.0.0/8`); any, without.
    networks: Option<Vec<String>>,
    expires_in_seconds: Option<i64>,
    /// An instant, RFC 3339 (`2027-01-01T00:00:00Z`); or `expires_in_seconds`.
    #[serde(default, with = "feedkey::time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

/// The expiry a request asks for; an instant past what the store can hold is refused
/// later, by feedkey's lifetime check.
fn expiry(in_seconds: Option<i64>, at: Option<OffsetDateTime>) -> Result<Expiry, Response> {
    match (in_seconds, at) {
        (None, None) => Ok(Expiry::Never),
        (Some(s), None) => OffsetDateTime::now_utc()
            .checked_add(Duration::seconds(s))
            .map(|_| Expiry::After(Duration::seconds(s)))
            .ok_or_else(|| {
                error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "expires_in_seconds: too far",
                )
            }),
        (None, Some(at)) => Ok(Expiry::At(at)),
        (Some(_), Some(_)) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "give expires_in_seconds or expires_at, not both",
        )),
    }
}

/// The feeds a request names, each one of the account's feeds here.
pub fn feeds<R: Registry>(
    app: &R,
    account: &AccountId,
    list: Option<Vec<String>>,
) -> Result<Feeds, Response> {
    let Some(list) = list else {
        return Ok(Feeds::Any);
    };
    if let Some(unknown) = list.iter().find(|f| !app.has_feed(account, f)) {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("no feed named {unknown:?} here"),
        ));
    }
    Feeds::only(list).map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, e))
}

fn packages<R: Registry>(list: Option<Vec<String>>) -> Result<Packages, feedkey::ScopeError> {
    list.map_or(Ok(Packages::Any), |list| {
        Packages::only(list.iter().map(|p| R::package_pattern(p)))
    })
}

async fn create<R: Registry>(
    State(app): State<Arc<R>>,
    caller: Caller,
    Body(body): Body<Create>,
) -> Result<Response, Response> {
    let account = caller.owner(&*app).await?.account().clone();
    let feeds = feeds(&*app, &account, body.feeds)?;
    let scope = packages::<R>(body.packages)
        .and_then(|packages| Scope::new(Permissions::of(&body.permissions), feeds, packages))
        .and_then(|scope| match body.networks {
            Some(ranges) => Ok(scope.within(Networks::only(ranges)?)),
            None => Ok(scope),
        })
        .map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let expiry = expiry(body.expires_in_seconds, body.expires_at)?;
    let new = NewToken::new(body.description, scope).expires(expiry);
    Ok(match app.keys().issue(&account, new).await {
        Ok(issued) => (
            StatusCode::CREATED,
            Json(json!({ "token": issued.token.expose_secret(), "info": issued.info })),
        )
            .into_response(),
        Err(e) => failure(&e),
    })
}

async fn list<R: Registry>(
    State(app): State<Arc<R>>,
    caller: Caller,
) -> Result<Response, Response> {
    let account = caller.owner(&*app).await?.account().clone();
    Ok(match app.keys().tokens(&account).await {
        Ok(tokens) => Json(tokens).into_response(),
        Err(e) => failure(&e),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    description: Option<String>,
    feeds: Option<Vec<String>>,
    packages: Option<Vec<String>>,
}

async fn edit<R: Registry>(
    State(app): State<Arc<R>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Edit>,
) -> Result<Response, Response> {
    let (account, id) = owned_id(&*app, &caller, &id).await?;
    let mut edit = TokenEdit::new();
    if let Some(d) = body.description {
        edit = edit.description(d);
    }
    if body.feeds.is_some() {
        edit = edit.feeds(feeds(&*app, &account, body.feeds)?);
    }
    if body.packages.is_some() {
        match packages::<R>(body.packages) {
            Ok(p) => edit = edit.packages(p),
            Err(e) => return Err(error(StatusCode::UNPROCESSABLE_ENTITY, e)),
        }
    }
    Ok(match app.keys().edit(&account, id, edit).await {
        Ok(info) => Json(info).into_response(),
        Err(e) => failure(&e),
    })
}

async fn refresh<R: Registry>(
    State(app): State<Arc<R>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let (account, id) = owned_id(&*app, &caller, &id).await?;
    Ok(match app.keys().refresh(&account, id).await {
        Ok(issued) => Json(json!({ "token": issued.token.expose_secret(), "info": issued.info }))
            .into_response(),
        Err(e) => failure(&e),
    })
}

async fn revoke<R: Registry>(
    State(app): State<Arc<R>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let (account, id) = owned_id(&*app, &caller, &id).await?;
    Ok(match app.keys().revoke(&account, id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(&e),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Password {
    password: String,
}

async fn set_password<R: Registry>(
    State(app): State<Arc<R>>,
    caller: Caller,
    Body(body): Body<Password>,
) -> Result<Response, Response> {
    let account = caller.owner(&*app).await?.account().clone();
    Ok(
        match app.keys().set_password(&account, &body.password).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => failure(&e),
        },
    )
}
