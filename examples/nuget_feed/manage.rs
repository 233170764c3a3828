//! The "my tokens" API, JSON in and out, for the holder of the primary key.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use feedkey::time::Duration;
use feedkey::{
    Error, Expiry, Feeds, GrantedBy, NewToken, Packages, Permission, Permissions, Request, Scope,
    StoreError, TokenEdit, TokenId,
};
use serde::Deserialize;
use serde_json::json;

use crate::App;
use crate::auth::refuse;

/// Only the primary key manages tokens.
async fn owner(app: &App, headers: &HeaderMap, peer: SocketAddr) -> Result<(), Response> {
    let request = Request::from_header_map(headers).with_client_addr(peer.ip());
    match app.keys.authenticate(&request).await {
        Ok(grant) if grant.granted_by() == GrantedBy::PrimaryKey => Ok(()),
        Ok(_) => {
            tracing::warn!("denied: token management needs the primary key");
            Err(refuse(feedkey::DenyStatus::Forbidden))
        }
        Err(denial) => {
            tracing::warn!("token management: {denial}");
            Err(refuse(denial.status()))
        }
    }
}

/// The owner check and the token id of a `/api/tokens/{id}` call.
async fn owned_id(
    app: &App,
    headers: &HeaderMap,
    peer: SocketAddr,
    id: &str,
) -> Result<TokenId, Response> {
    owner(app, headers, peer).await?;
    id.parse::<TokenId>().map_err(|_| bad("bad token id"))
}

fn failure(e: Error) -> Response {
    let status = match &e {
        Error::TokenNotFound | Error::AccountNotFound => StatusCode::NOT_FOUND,
        Error::Store(StoreError::Conflict) => StatusCode::CONFLICT,
        Error::Store(_) | Error::Entropy | Error::Hash(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, Json(json!({ "error": e.to_string() }))).into_response()
}

fn bad(message: impl ToString) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": message.to_string() })),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct Create {
    description: String,
    permissions: Vec<Permission>,
    feeds: Option<Vec<String>>,
    packages: Option<Vec<String>>,
    expires_in_seconds: Option<i64>,
}

fn scope(
    permissions: &[Permission],
    feeds: Option<Vec<String>>,
    packages: Option<Vec<String>>,
) -> Result<Scope, feedkey::ScopeError> {
    Scope::new(
        Permissions::of(permissions),
        feeds.map_or(Ok(Feeds::Any), Feeds::only)?,
        packages.map_or(Ok(Packages::Any), Packages::only)?,
    )
}

pub async fn create(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<Create>,
) -> Response {
    if let Err(r) = owner(&app, &headers, peer).await {
        return r;
    }
    let scope = match scope(&body.permissions, body.feeds, body.packages) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let expiry = body
        .expires_in_seconds
        .map_or(Expiry::Never, |s| Expiry::After(Duration::seconds(s)));
    match app
        .keys
        .issue(
            &app.owner,
            NewToken::new(body.description, scope).expires(expiry),
        )
        .await
    {
        Ok(issued) => (
            StatusCode::CREATED,
            Json(json!({ "token": issued.token.expose_secret(), "info": issued.info })),
        )
            .into_response(),
        Err(e) => failure(e),
    }
}

pub async fn list(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = owner(&app, &headers, peer).await {
        return r;
    }
    match app.keys.tokens(&app.owner).await {
        Ok(tokens) => Json(tokens).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
pub struct Edit {
    description: Option<String>,
    packages: Option<Vec<String>>,
}

pub async fn edit(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Edit>,
) -> Response {
    let id = match owned_id(&app, &headers, peer, &id).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let mut edit = TokenEdit::new();
    if let Some(d) = body.description {
        edit = edit.description(d);
    }
    if let Some(p) = body.packages {
        match Packages::only(p) {
            Ok(p) => edit = edit.packages(p),
            Err(e) => return bad(e),
        }
    }
    match app.keys.edit(&app.owner, id, edit).await {
        Ok(info) => Json(info).into_response(),
        Err(e) => failure(e),
    }
}

pub async fn refresh(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let id = match owned_id(&app, &headers, peer, &id).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    match app.keys.refresh(&app.owner, id).await {
        Ok(issued) => Json(json!({ "token": issued.token.expose_secret(), "info": issued.info }))
            .into_response(),
        Err(e) => failure(e),
    }
}

pub async fn revoke(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let id = match owned_id(&app, &headers, peer, &id).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    match app.keys.revoke(&app.owner, id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
pub struct Password {
    password: String,
}

pub async fn set_password(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<Password>,
) -> Response {
    if let Err(r) = owner(&app, &headers, peer).await {
        return r;
    }
    match app.keys.set_password(&app.owner, &body.password).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(e),
    }
}
