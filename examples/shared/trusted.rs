//! Trusted publishing (feature `oidc`): a CI job exchanges its OIDC token for a
//! short-lived key, and the owner manages the policies that allow it.
//!
//! | method and path                              | does                                     |
//! |----------------------------------------------|------------------------------------------|
//! | `POST /api/v1/trusted_publishing/tokens`     | cargo (crates.io's API): `{"jwt"}` → `{"token"}` |
//! | `DELETE /api/v1/trusted_publishing/tokens`   | cargo: revokes the minted key it presents |
//! | `POST /api/v2/token`                         | NuGet (`NuGet/login`): Bearer JWT and `{"username","tokenType":"ApiKey"}` → `{"apiKey"}` |
//! | `POST /api/trust-policies`                   | adds a policy (primary key)              |
//! | `GET /api/trust-policies`                    | lists them                               |
//! | `PATCH /api/trust-policies/{id}`             | narrows one                              |
//! | `DELETE /api/trust-policies/{id}`            | removes one, and its keys with it        |
//!
//! An exchange refused for any reason answers 401 "not allowed"; the reason goes to the
//! log only. Bad input is a 4xx with a message.
//!
//! A server that uses it includes this file as a module of its own
//! (`#[path = "../shared/trusted.rs"]`), beside `shared`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use feedkey::oidc::{IssuerKeys, OidcIssuer, Refusal, StaticIssuers, TrustRule};
use feedkey::store::TrustStore;
use feedkey::time::Duration;
use feedkey::{
    AccountId, Error, NewTrustPolicy, Packages, Permission, Permissions, Scope, StoreError,
    TokenId, TrustPolicyEdit,
};
use serde::Deserialize;
use serde_json::json;

use crate::shared::tokens::{Body, feeds};
use crate::shared::{Caller, Registry, error};

/// A registry that takes trusted publishing: the issuers it trusts.
pub trait Trusting: Registry {
    /// The issuers, when the server was started with one.
    fn issuers(&self) -> Option<&Issuers>;
}

/// Where the issuer's keys come from: a JWKS file, or (feature `oidc-fetch`) the issuer.
pub enum Issuers {
    /// The keys of `--oidc-jwks`.
    Static(StaticIssuers),
    /// The keys the issuer publishes, fetched and cached.
    #[cfg(feature = "oidc-fetch")]
    Fetched(feedkey::oidc::FetchedIssuer),
}

impl IssuerKeys for Issuers {
    async fn issuer(&self, iss: &str, kid: &str) -> Result<Arc<OidcIssuer>, Refusal> {
        match self {
            Issuers::Static(keys) => keys.issuer(iss, kid).await,
            #[cfg(feature = "oidc-fetch")]
            Issuers::Fetched(keys) => keys.issuer(iss, kid).await,
        }
    }
}

/// The flags that configure an issuer.
#[derive(clap::Args, Debug, Clone)]
pub struct TrustArgs {
    /// Take trusted publishing from this OIDC issuer (such as
    /// https://token.actions.githubusercontent.com)
    #[arg(long, value_name = "URL", requires = "oidc_audience")]
    pub oidc_issuer: Option<String>,
    /// The issuer's signing keys: a JWKS file. Without it (and with the `oidc-fetch`
    /// feature), they are fetched from the issuer and cached
    #[arg(long, value_name = "FILE")]
    pub oidc_jwks: Option<std::path::PathBuf>,
    /// The audience the issuer's tokens must name (this registry's own)
    #[arg(long, value_name = "AUDIENCE")]
    pub oidc_audience: Option<String>,
}

impl TrustArgs {
    /// The issuers the flags name (none without `--oidc-issuer`).
    pub fn issuers(&self) -> Result<Option<Issuers>, Box<dyn std::error::Error>> {
        let (Some(url), Some(audience)) = (&self.oidc_issuer, &self.oidc_audience) else {
            return Ok(None);
        };
        match &self.oidc_jwks {
            Some(jwks) => {
                let jwks = std::fs::read_to_string(jwks)?;
                let issuer = OidcIssuer::new(url, audience, &jwks)?;
                Ok(Some(Issuers::Static(StaticIssuers::from(issuer))))
            }
            #[cfg(feature = "oidc-fetch")]
            None => Ok(Some(Issuers::Fetched(feedkey::oidc::FetchedIssuer::new(
                url, audience,
            )?))),
            #[cfg(not(feature = "oidc-fetch"))]
            None => Err("--oidc-issuer needs --oidc-jwks (or the oidc-fetch feature)".into()),
        }
    }
}

/// The routes, to merge into a server's router.
pub fn routes<R: Trusting>() -> Router<Arc<R>>
where
    R::Store: TrustStore,
{
    Router::new()
        .route(
            "/api/v1/trusted_publishing/tokens",
            post(cargo_exchange::<R>).delete(cargo_revoke::<R>),
        )
        .route("/api/v2/token", post(nuget_exchange::<R>))
        .route("/api/trust-policies", post(add::<R>).get(list::<R>))
        .route(
            "/api/trust-policies/{id}",
            patch(edit::<R>).delete(remove::<R>),
        )
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::shared::tokens::MAX_BODY_BYTES,
        ))
}

/// The one answer to a refused exchange; the reason is logged.
fn not_allowed(why: &Refusal) -> Response {
    tracing::warn!(reason = %why, "trusted publishing refused");
    error(StatusCode::UNAUTHORIZED, Refusal::CLIENT_MESSAGE)
}

/// An exchange's or a policy call's failure, with the status that fits it.
fn failure(e: &Error) -> Response {
    let status = match e {
        Error::NotAllowed(why) => return not_allowed(why),
        Error::PolicyNotFound | Error::AccountNotFound | Error::TokenNotFound => {
            StatusCode::NOT_FOUND
        }
        Error::Store(StoreError::Conflict) => StatusCode::CONFLICT,
        Error::Store(_) | Error::Entropy | Error::Hash(_) => {
            tracing::error!("trusted publishing failed: {e}");
            return error(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    error(status, e)
}

/// Exchanges `jwt`, for `account` if named.
async fn exchange<R: Trusting>(
    app: &R,
    jwt: &str,
    account: Option<&AccountId>,
) -> Result<String, Response>
where
    R::Store: TrustStore,
{
    let Some(issuers) = app.issuers() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "trusted publishing is not configured here",
        ));
    };
    match app.keys().exchange(issuers, jwt, account).await {
        Ok(issued) => {
            tracing::info!(token = %issued.info.id, account = %issued.info.account, from = %issued.info.description, "trusted publishing key minted");
            Ok(issued.token.expose_secret().to_owned())
        }
        Err(e) => Err(failure(&e)),
    }
}

#[derive(Deserialize)]
struct CargoExchange {
    jwt: String,
}

/// `POST /api/v1/trusted_publishing/tokens`: `{"jwt"}` → `{"token"}`.
async fn cargo_exchange<R: Trusting>(
    State(app): State<Arc<R>>,
    Body(body): Body<CargoExchange>,
) -> Result<Response, Response>
where
    R::Store: TrustStore,
{
    let token = exchange(&*app, &body.jwt, None).await?;
    Ok(Json(json!({ "token": token })).into_response())
}

/// `DELETE /api/v1/trusted_publishing/tokens`: revokes the minted key the request
/// presents (a publish job's last step).
async fn cargo_revoke<R: Trusting>(
    State(app): State<Arc<R>>,
    caller: Caller,
) -> Result<Response, Response>
where
    R::Store: TrustStore,
{
    let grant = caller.identified(&*app).await?;
    let Some(id) = grant.token_id() else {
        return Err(error(StatusCode::BAD_REQUEST, "present the key to revoke"));
    };
    let info = app
        .keys()
        .token(grant.account(), id)
        .await
        .map_err(|e| failure(&e))?;
    if info.kind != feedkey::TokenKind::TrustedPublishing {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "only a trusted-publishing key revokes itself here",
        ));
    }
    match app.keys().revoke(grant.account(), id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => Err(failure(&e)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NugetExchange {
    username: String,
    token_type: String,
}

/// `POST /api/v2/token`: the `NuGet/login` action's call, the JWT as a Bearer token.
async fn nuget_exchange<R: Trusting>(
    State(app): State<Arc<R>>,
    headers: HeaderMap,
    Body(body): Body<NugetExchange>,
) -> Result<Response, Response>
where
    R::Store: TrustStore,
{
    if body.token_type != "ApiKey" {
        return Err(error(StatusCode::BAD_REQUEST, "tokenType must be ApiKey"));
    }
    let Some(jwt) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "send the OIDC token as a Bearer token",
        ));
    };
    let account = AccountId::new(&body.username)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("username: {e}")))?;
    let key = exchange(&*app, jwt.trim(), Some(&account)).await?;
    Ok(Json(json!({ "apiKey": key })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Add {
    /// The identity: `{"forge":"git-hub","issuer","owner","repository","workflow",…}`.
    rule: TrustRule,
    permissions: Vec<Permission>,
    feeds: Option<Vec<String>>,
    packages: Vec<String>,
    lifetime_seconds: Option<i64>,
}

async fn add<R: Trusting>(
    State(app): State<Arc<R>>,
    caller: Caller,
    Body(body): Body<Add>,
) -> Result<Response, Response>
where
    R::Store: TrustStore,
{
    let account = caller.owner(&*app).await?.account().clone();
    let feeds = feeds(&*app, &account, body.feeds)?;
    let scope = Packages::only(body.packages.iter().map(|p| R::package_pattern(p)))
        .and_then(|packages| Scope::new(Permissions::of(&body.permissions), feeds, packages))
        .map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let mut new = NewTrustPolicy::new(body.rule, scope);
    if let Some(seconds) = body.lifetime_seconds {
        new = new.lifetime(Duration::seconds(seconds));
    }
    Ok(match app.keys().add_trust_policy(&account, new).await {
        Ok(policy) => (StatusCode::CREATED, Json(policy)).into_response(),
        Err(e) => failure(&e),
    })
}

async fn list<R: Trusting>(State(app): State<Arc<R>>, caller: Caller) -> Result<Response, Response>
where
    R::Store: TrustStore,
{
    let account = caller.owner(&*app).await?.account().clone();
    Ok(match app.keys().trust_policies(&account).await {
        Ok(policies) => Json(policies).into_response(),
        Err(e) => failure(&e),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    permissions: Option<Vec<Permission>>,
    packages: Option<Vec<String>>,
    lifetime_seconds: Option<i64>,
    environment: Option<String>,
}

fn policy_id(id: &str) -> Result<TokenId, Response> {
    id.parse::<TokenId>()
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("policy id: {e}")))
}

async fn edit<R: Trusting>(
    State(app): State<Arc<R>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Edit>,
) -> Result<Response, Response>
where
    R::Store: TrustStore,
{
    let account = caller.owner(&*app).await?.account().clone();
    let id = policy_id(&id)?;
    let mut edit = TrustPolicyEdit::default();
    edit.scope.permissions = body.permissions.as_deref().map(Permissions::of);
    if let Some(list) = body.packages {
        edit.scope.packages = Some(
            Packages::only(list.iter().map(|p| R::package_pattern(p)))
                .map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, e))?,
        );
    }
    edit.lifetime = body.lifetime_seconds.map(Duration::seconds);
    edit.environment = body.environment;
    Ok(
        match app.keys().edit_trust_policy(&account, id, edit).await {
            Ok(policy) => Json(policy).into_response(),
            Err(e) => failure(&e),
        },
    )
}

async fn remove<R: Trusting>(
    State(app): State<Arc<R>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Response>
where
    R::Store: TrustStore,
{
    let account = caller.owner(&*app).await?.account().clone();
    let id = policy_id(&id)?;
    Ok(match app.keys().remove_trust_policy(&account, id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(&e),
    })
}
