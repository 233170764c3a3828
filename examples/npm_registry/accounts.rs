//! Signing in as npm does it: `npm login --auth-type=legacy` and `npm adduser` send the
//! account's name and password to `PUT /-/user/org.couchdb.user:NAME` and keep the token
//! the answer holds. That token is a login session: full access for
//! [`SESSION_HOURS`] hours (npm's own login sessions last two), and the right to manage
//! tokens (creating one still asks for the password). The password itself only ever
//! reads (feedkey refuses it for writes), so it never publishes.
//!
//! `npm logout` ends the token it was signed in with ([`sign_out`]).
//!
//! No one signs up here: accounts are the operator's. `npm adduser` with the name and
//! password of the account signs in (npm's registry does the same for an existing user);
//! any other name is a 401, as a wrong password is.

use axum::Json;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use feedkey::time::Duration;
use feedkey::{DenyStatus, Expiry, GrantedBy, NewToken, Scope};
use serde::Deserialize;
use serde_json::json;

use crate::App;
use crate::errors::{Challenge, npm_error, unauthorized};
use crate::routes::Secret;
use crate::shared::{Caller, Registry};
use crate::token_api::{failure, remember};
use crate::token_notes::Note;

/// How long a login session lasts.
pub const SESSION_HOURS: i64 = 2;

#[derive(Deserialize)]
struct SignIn {
    name: String,
    password: String,
}

/// `PUT /-/user/org.couchdb.user:{user}`: `npm login`, `npm adduser`.
pub async fn sign_in(
    app: &App,
    caller: &Caller,
    user: &str,
    body: &Bytes,
) -> Result<Response, Response> {
    let body: SignIn = serde_json::from_slice(body).map_err(|_| {
        npm_error(
            StatusCode::BAD_REQUEST,
            "send the account's name and password",
        )
    })?;
    if body.name != user {
        return Err(npm_error(
            StatusCode::BAD_REQUEST,
            "the name in the body is not the one in the URL",
        ));
    }
    let refused = || unauthorized(Challenge::Basic, "incorrect username or password");
    let client = caller.client();
    if !app.attempts.allowed(client, &body.name) {
        tracing::warn!(client = %client, user = body.name, "sign-in refused: too many failed password checks");
        return Err(too_many());
    }
    let account = match app.keys.sign_in(&body.name, &body.password).await {
        Ok(account) if app.owns(&account, None) => {
            app.attempts.succeeded(client, &body.name);
            account
        }
        Ok(account) => {
            tracing::warn!(account = %account, client = %caller.client(), "sign-in refused: not this registry's account");
            return Err(refused());
        }
        Err(denial) => {
            tracing::warn!(client = %client, "sign-in refused: {}", denial.reason());
            // The check was counted as a failure when it began; an outage gives it back.
            if denial.status() != DenyStatus::Unauthorized {
                app.attempts.succeeded(client, &body.name);
            }
            return Err(refused());
        }
    };
    let new = NewToken::new("npm login", Scope::full())
        .expires(Expiry::After(Duration::hours(SESSION_HOURS)));
    let issued = app
        .keys
        .issue(&account, new)
        .await
        .map_err(|e| failure(&e))?;
    let note = Note {
        name: "npm login".to_owned(),
        description: format!("login session from {}", caller.client()),
        session: true,
    };
    remember(app, issued.info.id, note).await?;
    tracing::info!(account = %account, token = ?issued.info.id, client = %caller.client(), "signed in: login session issued");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "ok": true,
            "id": format!("org.couchdb.user:{user}"),
            "token": issued.token.expose_secret(),
        })),
    )
        .into_response())
}

/// `DELETE /-/user/token/{token}`: `npm logout`. A token may end itself only: the one
/// in the path must be the one the request is sent with. The primary key is not ended
/// this way (it is regenerated, with `--regenerate-primary`).
pub async fn sign_out(app: &App, caller: &Caller, token: &Secret) -> Result<Response, Response> {
    let grant = caller.identified_npm(app, "logout").await?;
    let named = app.keys.token_format().parse(&token.0).map(|t| t.id()).ok();
    let Some(id) = grant.token_id().filter(|id| Some(*id) == named) else {
        tracing::warn!(token = ?grant.token_id(), client = %caller.client(), "logout refused: the path names another token");
        return Err(npm_error(
            StatusCode::FORBIDDEN,
            "a token can only end itself",
        ));
    };
    if grant.granted_by() == GrantedBy::PrimaryKey {
        return Err(npm_error(
            StatusCode::BAD_REQUEST,
            "the primary key is not ended by logging out; restart with --regenerate-primary",
        ));
    }
    app.keys
        .revoke(grant.account(), id)
        .await
        .map_err(|e| failure(&e))?;
    if let Err(e) = app.notes.forget(id).await {
        tracing::warn!(token = ?id, "token notes not updated after logout: {e}");
    }
    tracing::info!(account = %grant.account(), token = ?id, "logged out: token revoked");
    Ok(Json(json!({ "ok": true })).into_response())
}

/// The answer once a client or user name has failed too often ([`crate::attempts`]).
pub fn too_many() -> Response {
    npm_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed password checks; try again in a few minutes",
    )
}

/// `GET /-/whoami`: `npm whoami`, for any good token.
pub async fn whoami(app: &App, caller: &Caller) -> Result<Response, Response> {
    let grant = caller.identified_npm(app, "whoami").await?;
    Ok(Json(json!({ "username": grant.account().as_str() })).into_response())
}
