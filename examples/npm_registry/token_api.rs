//! The token API npm's CLI calls (`npm token create | list | revoke`), mapped onto
//! feedkey's `issue`, `tokens` and `revoke`.
//!
//! | npm sends                                   | feedkey gets                             |
//! |---------------------------------------------|------------------------------------------|
//! | `packages: ["left-pad"]`                    | the package pattern `left-pad`           |
//! | `scopes: ["@acme"]`                         | the package pattern `@acme/*`            |
//! | `packages_all: true`                        | `Packages::Any`                          |
//! | `packages_and_scopes_permission: read-only` | `Permissions::READ_ONLY`                 |
//! | `… read-write`                              | read, push new, push version, unlist     |
//! | `cidr_whitelist: ["10.0.0.0/8"]`            | `Networks::only`                         |
//! | `expires: 30` (days)                        | `Expiry::After(30 days)`; over 90 days   |
//! |                                             | for a write token: the `LifetimePolicy`  |
//! |                                             | refuses it                               |
//! | `name`, `description`                       | the description; both in [`token_notes`] |
//! | `password`                                  | checked with `sign_in` first             |
//!
//! Without `expires`, a write token lives [`DEFAULT_WRITE_DAYS`] days (npm's default)
//! and a read-only one until revoked. Organisations (`orgs`) are refused: this registry
//! has none. Only the primary key and login sessions ([`token_notes::Note::session`])
//! manage tokens; a granular token gets a 403, so no token can mint others.
//!
//! [`token_notes`]: crate::token_notes

use axum::Json;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use feedkey::time::format_description::well_known::Rfc3339;
use feedkey::time::{Duration, OffsetDateTime};
use feedkey::{
    AccountId, DenyStatus, Error, Expiry, Feeds, GrantedBy, Networks, NewToken, Packages,
    Permissions, Scope, TokenId, TokenInfo, TokenKind,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::App;
use crate::accounts::too_many;
use crate::errors::{Challenge, npm_error, unauthorized};
use crate::names::{scope, valid_name};
use crate::routes::Secret;
use crate::shared::Caller;
use crate::token_notes::Note;

/// How long a write token lives when `npm token create` names no `--expires`.
pub const DEFAULT_WRITE_DAYS: i64 = 7;
/// The longest a write token may live (npm's cap), as the server's `LifetimePolicy`.
pub const MAX_WRITE_DAYS: i64 = 90;
/// The most days `--expires` may name (any more is past what a store holds anyway).
const MAX_DAYS: i64 = 100_000;
/// Tokens per page of `GET /-/npm/v1/tokens` unless `perPage` says otherwise.
const PER_PAGE: usize = 10;

/// A list npm sends as a string or an array of strings; commas also separate.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum List {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl List {
    fn items(self) -> Vec<String> {
        let all = match self {
            List::None => Vec::new(),
            List::One(s) => vec![s],
            List::Many(v) => v,
        };
        all.iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The body of `npm token create` (npm 11).
#[derive(Deserialize)]
struct Create {
    name: Option<String>,
    password: Option<String>,
    description: Option<String>,
    #[serde(default)]
    packages: Option<List>,
    #[serde(default)]
    packages_all: bool,
    #[serde(default)]
    scopes: Option<List>,
    #[serde(default)]
    orgs: Option<List>,
    packages_and_scopes_permission: Option<String>,
    orgs_permission: Option<String>,
    expires: Option<i64>,
    #[serde(default)]
    cidr_whitelist: Option<List>,
}

fn bad(message: impl std::fmt::Display) -> Response {
    npm_error(StatusCode::BAD_REQUEST, message)
}

/// The account of a caller that may manage tokens: the primary key, or a login session.
pub async fn manager(app: &App, caller: &Caller) -> Result<AccountId, Response> {
    let grant = caller.identified_npm(app, "token management").await?;
    let session = match grant.token_id() {
        Some(id) => app.notes.is_session(id).await,
        None => false,
    };
    if grant.granted_by() == GrantedBy::PrimaryKey || session {
        return Ok(grant.account().clone());
    }
    tracing::warn!(token = ?grant.token_id(), client = %caller.client(), "denied: token management needs a login session or the primary key");
    Err(npm_error(
        StatusCode::FORBIDDEN,
        "token management needs a login session (npm login)",
    ))
}

/// A token management failure, with the status that fits it.
pub fn failure(e: &Error) -> Response {
    match e {
        Error::TokenNotFound | Error::AccountNotFound => npm_error(StatusCode::NOT_FOUND, e),
        Error::Scope(_) | Error::Lifetime(_) | Error::Record(_) | Error::PrimaryKey => bad(e),
        _ => {
            tracing::error!("token management failed: {e}");
            npm_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// The scope a create request asks for.
fn scope_of(body: &mut Create) -> Result<Scope, Response> {
    if body.orgs.take().is_some_and(|o| !o.items().is_empty()) || body.orgs_permission.is_some() {
        return Err(bad(
            "this registry has no organisations; name packages or scopes",
        ));
    }
    let permissions = match body.packages_and_scopes_permission.as_deref() {
        Some("read-only") => Permissions::READ_ONLY,
        Some("read-write") => Permissions::FULL,
        Some("no-access") => return Err(bad("a no-access token could do nothing here")),
        _ => {
            return Err(bad(
                "give --packages-and-scopes-permission read-only or read-write",
            ));
        }
    };
    let mut patterns = Vec::new();
    for package in body.packages.take().map(List::items).unwrap_or_default() {
        // A name stands for itself; a glob (`@acme/util-*`) is feedkey's, checked below.
        if !valid_name(&package) && !package.contains(['*', '?', '[', '{']) {
            return Err(bad(format!("{package:?} is not a package name")));
        }
        patterns.push(package);
    }
    for text in body.scopes.take().map(List::items).unwrap_or_default() {
        let scope = scope(&text).ok_or_else(|| bad(format!("{text:?} is not a scope")))?;
        patterns.push(format!("{scope}/*"));
    }
    let packages = if body.packages_all {
        Packages::Any
    } else if patterns.is_empty() {
        return Err(bad("name --packages, --scopes or --packages-all"));
    } else {
        Packages::only(&patterns).map_err(bad)?
    };
    let scope = Scope::new(permissions, Feeds::Any, packages).map_err(bad)?;
    let ranges = body
        .cidr_whitelist
        .take()
        .map(List::items)
        .unwrap_or_default();
    if ranges.is_empty() {
        return Ok(scope);
    }
    Ok(scope.within(Networks::only(&ranges).map_err(bad)?))
}

/// The expiry a create request asks for, in days.
fn expiry_of(days: Option<i64>, writes: bool) -> Result<Expiry, Response> {
    match days {
        None if writes => Ok(Expiry::After(Duration::days(DEFAULT_WRITE_DAYS))),
        None => Ok(Expiry::Never),
        Some(d) if (1..=MAX_DAYS).contains(&d) => Ok(Expiry::After(Duration::days(d))),
        Some(_) => Err(bad("--expires is a number of days, at least 1")),
    }
}

fn time(t: OffsetDateTime) -> Value {
    t.format(&Rfc3339).map_or(Value::Null, Value::String)
}

/// The `key` npm shows and revokes a token by: its id in lowercase hex. (The id's
/// base64url form may begin with `-`, which `npm token revoke -…` reads as an option.)
pub fn npm_key(id: &TokenId) -> String {
    id.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// A token id from its npm `key` (hex), its base64url id, or the whole token.
fn id_of(app: &App, key: &str) -> Option<TokenId> {
    if key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(key.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        return Some(TokenId::from_bytes(bytes));
    }
    key.parse::<TokenId>()
        .ok()
        .or_else(|| app.keys.token_format().parse(key).ok().map(|t| t.id()))
}

/// A token as npm lists it (and a little more: what it may do). Never a secret: `token`
/// is the start of the token, as much as its public id already tells.
fn listed(app: &App, info: &TokenInfo, note: Option<&Note>) -> Value {
    let id = info.id.to_string();
    let shown = format!(
        "{}_{}",
        app.keys.token_format().prefix(),
        id.get(..8).unwrap_or("")
    );
    let scope = &info.scope;
    let (mut packages, mut scopes) = (Vec::new(), Vec::new());
    if let Packages::Only(set) = scope.packages() {
        for pattern in set.patterns() {
            let p = pattern.as_str();
            match p.strip_suffix("/*").filter(|s| scope_ok(s)) {
                Some(s) => scopes.push(s.to_owned()),
                None => packages.push(p.to_owned()),
            }
        }
    }
    let readonly = !scope.can_write();
    let cidr: Option<Vec<String>> = match scope.networks() {
        Networks::Any => None,
        Networks::Only(set) => Some(set.iter().map(ToString::to_string).collect()),
    };
    let session = note.is_some_and(|n| n.session);
    json!({
        "key": npm_key(&info.id),
        "token": shown,
        "name": note.map_or(info.description.as_str(), |n| n.name.as_str()),
        "description": note.map_or("", |n| n.description.as_str()),
        "created": time(info.created_at),
        "updated": time(info.created_at),
        "expires": info.expires_at.map_or(Value::Null, time),
        "last_used": info.last_used_at.map_or(Value::Null, time),
        "readonly": readonly,
        "permission": if readonly { "read-only" } else { "read-write" },
        "packages_all": matches!(scope.packages(), Packages::Any),
        "packages": packages,
        "scopes": scopes,
        "cidr_whitelist": cidr,
        "session": session,
    })
}

fn scope_ok(s: &str) -> bool {
    s.starts_with('@') && scope(s).as_deref() == Some(s)
}

/// `POST /-/npm/v1/tokens`: `npm token create`.
pub async fn create(app: &App, caller: &Caller, body: &Bytes) -> Result<Response, Response> {
    let account = manager(app, caller).await?;
    let mut body: Create =
        serde_json::from_slice(body).map_err(|e| bad(format!("not a token request: {e}")))?;
    // npm's re-confirmation: the account password, whatever credential sent the request.
    let password = body.password.take().unwrap_or_default();
    let client = caller.client();
    if !app.attempts.allowed(client, account.as_str()) {
        tracing::warn!(account = %account, client = %client, "token create refused: too many failed password checks");
        return Err(too_many());
    }
    match app.keys.sign_in(account.as_str(), &password).await {
        Ok(signed) if signed == account => app.attempts.succeeded(client, account.as_str()),
        Ok(_) => return Err(unauthorized(Challenge::Basic, "incorrect password")),
        Err(denial) => {
            tracing::warn!(account = %account, client = %client, "token create refused: {}", denial.reason());
            // Counted as a failure when it began; an outage gives it back.
            if denial.status() != DenyStatus::Unauthorized {
                app.attempts.succeeded(client, account.as_str());
            }
            return Err(unauthorized(Challenge::Basic, "incorrect password"));
        }
    }
    let scope = scope_of(&mut body)?;
    let expiry = expiry_of(body.expires, scope.can_write())?;
    let name = body.name.take().unwrap_or_else(|| "npm token".to_owned());
    let note = Note {
        name: name.clone(),
        description: body.description.take().unwrap_or_default(),
        session: false,
    };
    let issued = app
        .keys
        .issue(&account, NewToken::new(name, scope).expires(expiry))
        .await
        .map_err(|e| {
            tracing::info!(account = %account, "token create refused: {e}");
            failure(&e)
        })?;
    remember(app, issued.info.id, note.clone()).await?;
    let mut answer = listed(app, &issued.info, Some(&note));
    if let Some(fields) = answer.as_object_mut() {
        fields.insert(
            "token".to_owned(),
            Value::String(issued.token.expose_secret().to_owned()),
        );
    }
    tracing::info!(account = %account, token = ?issued.info.id, "npm token created");
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Records a new token's note; if that fails the token is revoked again, so that no
/// token exists that the list would misdescribe.
pub async fn remember(app: &App, id: TokenId, note: Note) -> Result<(), Response> {
    if let Err(e) = app.notes.put(id, note).await {
        tracing::error!(token = ?id, "token notes not written, revoking the token: {e}");
        let _ = app.keys.revoke(&app.owner, id).await;
        return Err(npm_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
        ));
    }
    Ok(())
}

/// `GET /-/npm/v1/tokens?page=N&perPage=M`: `npm token list`, paged as npm reads it.
pub async fn list(app: &App, caller: &Caller, query: &str) -> Result<Response, Response> {
    let account = manager(app, caller).await?;
    let number = |key: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    let page = number("page").unwrap_or(0);
    let per_page = number("perPage").unwrap_or(PER_PAGE).clamp(1, 100);
    let tokens = app.keys.tokens(&account).await.map_err(|e| failure(&e))?;
    let mut tokens: Vec<&TokenInfo> = tokens
        .iter()
        .filter(|t| t.kind != TokenKind::Primary)
        .collect();
    // One order for every page of one listing: oldest first, ties by id.
    tokens.sort_by_key(|t| (t.created_at, t.id));
    let mut objects = Vec::new();
    for info in tokens
        .iter()
        .skip(page.saturating_mul(per_page))
        .take(per_page)
    {
        let note = app.notes.get(info.id).await;
        objects.push(listed(app, info, note.as_ref()));
    }
    let next_page = page.saturating_add(1);
    let more = tokens.len() > next_page.saturating_mul(per_page);
    let next = more.then(|| format!("/-/npm/v1/tokens?page={next_page}&perPage={per_page}"));
    Ok(Json(json!({
        "objects": objects,
        "total": tokens.len(),
        "urls": { "next": next },
    }))
    .into_response())
}

/// `DELETE /-/npm/v1/tokens/token/{key}`: `npm token revoke`, by key or by the token
/// itself (which is why no path is ever logged).
pub async fn revoke(app: &App, caller: &Caller, key: &Secret) -> Result<Response, Response> {
    let account = manager(app, caller).await?;
    let id = id_of(app, &key.0).ok_or_else(|| npm_error(StatusCode::NOT_FOUND, "no such token"))?;
    app.keys
        .revoke(&account, id)
        .await
        .map_err(|e| failure(&e))?;
    if let Err(e) = app.notes.forget(id).await {
        tracing::warn!(token = ?id, "token notes not updated after revoke: {e}");
    }
    tracing::info!(account = %account, token = ?id, "npm token revoked");
    Ok(Json(json!({ "ok": true })).into_response())
}
