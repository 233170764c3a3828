//! The access tokens page, as MyGet and nuget.org have it: the primary key first (with
//! Regenerate), then every token with its description, permissions, feeds, packages,
//! expiry, last use and status; create, edit (description and packages), refresh and
//! delete. A new value is shown once, masked, with Show and Copy; a reload loses it.
//! Creating a token and regenerating the primary key ask for the password again.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use feedkey::time::{Date, Duration, OffsetDateTime, Time};
use feedkey::{
    Error, Expiry, Feeds, NewToken, Packages, Permission, Permissions, Scope, TokenEdit, TokenId,
    TokenInfo, TokenKind, TokenStatus,
};
use minijinja::{Value, context};

use super::{Posted, SignedIn, notice, page_notice, when};
use crate::App;
use crate::shared::Caller;

/// Keys expiring within this many days raise the banner (and the warning mail).
pub const WARN_DAYS: i64 = 10;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/account/tokens", get(page))
        .route("/account/tokens/new", get(new_page).post(create))
        .route("/account/tokens/{id}/edit", get(edit_page).post(edit))
        .route("/account/tokens/{id}/refresh", post(refresh))
        .route("/account/tokens/{id}/delete", get(delete_page).post(delete))
        .route("/account/primary/regenerate", post(regenerate))
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!("tokens page: {e}");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// A token's permissions as nuget.org and MyGet word them.
pub fn permission_words(p: Permissions) -> Vec<&'static str> {
    let has = |x| p.contains(x);
    let mut words = Vec::new();
    match (has(Permission::PushNew), has(Permission::PushVersion)) {
        (true, true) => words.push("Push new packages and package versions"),
        (false, true) => words.push("Push only new package versions"),
        (true, false) => words.push("Push new packages"),
        (false, false) => {}
    }
    if has(Permission::Unlist) {
        words.push("Unlist packages");
    }
    match (has(Permission::Read), words.is_empty()) {
        (true, true) => words.push("Read-only"),
        (true, false) => words.push("Read"),
        (false, false) => words.push("Write-only"),
        (false, true) => {}
    }
    words
}

fn feed_words(feeds: &Feeds) -> String {
    match feeds {
        Feeds::Only(set) => set
            .iter()
            .map(|f| f.as_str().to_owned())
            .collect::<Vec<_>>()
            .join(", "),
        _ => "All my feeds".into(),
    }
}

fn package_patterns(packages: &Packages) -> Vec<String> {
    match packages {
        Packages::Only(set) => set.patterns().map(|p| p.as_str().to_owned()).collect(),
        _ => Vec::new(),
    }
}

fn status_word(info: &TokenInfo, now: OffsetDateTime) -> &'static str {
    match info.status {
        TokenStatus::Active if expiring_soon(info, now) => "Expires soon",
        TokenStatus::Active => "Active",
        TokenStatus::Expired => "Expired",
        TokenStatus::Revoked => "Revoked",
        TokenStatus::Idle => "Retired (unused too long)",
        TokenStatus::Suspended => "Suspended (account disabled)",
    }
}

fn expiring_soon(info: &TokenInfo, now: OffsetDateTime) -> bool {
    info.status == TokenStatus::Active
        && info
            .expires_at
            .is_some_and(|at| at - now <= Duration::days(WARN_DAYS))
}

/// A token as a row of the page.
fn row(info: &TokenInfo, now: OffsetDateTime) -> Value {
    context! {
        id => info.id.to_string(),
        description => &info.description,
        primary => info.kind == TokenKind::Primary,
        permissions => permission_words(info.scope.permissions()),
        feeds => feed_words(info.scope.feeds()),
        packages => package_patterns(info.scope.packages()),
        networks => match info.scope.networks() {
            feedkey::Networks::Only(set) => set.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            _ => String::new(),
        },
        expires => info.expires_at.map_or_else(|| "Never".to_owned(), when),
        last_used => info.last_used_at.map_or_else(|| "Never".to_owned(), when),
        created => when(info.created_at),
        status => status_word(info, now),
        live => info.status == TokenStatus::Active,
        warn => expiring_soon(info, now) || info.status == TokenStatus::Expired,
    }
}

async fn page(State(app): State<Arc<App>>, me: SignedIn) -> Result<Response, Response> {
    let tokens = app.keys.tokens(&me.account).await.map_err(internal)?;
    let now = OffsetDateTime::now_utc();
    let expired = tokens
        .iter()
        .filter(|t| t.status == TokenStatus::Expired)
        .count();
    let soon = tokens.iter().filter(|t| expiring_soon(t, now)).count();
    let primary = tokens
        .iter()
        .find(|t| t.kind == TokenKind::Primary)
        .map(|t| row(t, now));
    let rows: Vec<Value> = tokens
        .iter()
        .filter(|t| t.kind != TokenKind::Primary && t.status != TokenStatus::Revoked)
        .map(|t| row(t, now))
        .collect();
    let flash = app.flashes.take(&me.session).await?;
    let notice = page_notice(&me.session).await?;
    Ok(app.pages.render(
        "tokens.html",
        context! {
            user => me.account.as_str(),
            csrf => &me.csrf,
            primary,
            tokens => rows,
            expired,
            soon,
            warn_days => WARN_DAYS,
            notice,
            flash_label => flash.as_ref().map(|f| f.label.clone()),
            flash_value => flash.as_ref().map(|f| f.value.as_str().to_owned()),
        },
    ))
}

/// What the create form needs: the account's feeds and package ids.
fn form_context(app: &App, me: &SignedIn, error: Option<String>, typed: Value) -> Value {
    let feeds = app.feeds_of(&me.account);
    let ids = app.package_ids_of(&me.account);
    let max_days = app
        .keys
        .lifetime_policy()
        .max_write_lifetime()
        .map(Duration::whole_days);
    context! {
        user => me.account.as_str(),
        csrf => &me.csrf,
        feeds,
        ids,
        error,
        typed,
        max_days,
    }
}

async fn new_page(State(app): State<Arc<App>>, me: SignedIn) -> Response {
    let ctx = form_context(
        &app,
        &me,
        None,
        context! { access => "read-write", push => "all", expiry => "days", days => 365 },
    );
    app.pages.render("token_new.html", ctx)
}

/// The permissions a create form asks for.
fn permissions(f: &super::Fields) -> Result<Permissions, String> {
    let access = f.one("access");
    let mut list = Vec::new();
    if matches!(access, "read-write" | "read-only") {
        list.push(Permission::Read);
    }
    if matches!(access, "read-write" | "write-only") {
        match f.one("push") {
            "all" => list.extend([Permission::PushNew, Permission::PushVersion]),
            "versions" => list.push(Permission::PushVersion),
            "none" | "" => {}
            other => return Err(format!("Unknown push choice {other:?}.")),
        }
        if f.ticked("unlist") {
            list.push(Permission::Unlist);
        }
    }
    if !matches!(access, "read-write" | "read-only" | "write-only") {
        return Err("Choose read and write, read-only or write-only.".into());
    }
    if list.is_empty() {
        return Err("A write-only token needs a push or unlist permission.".into());
    }
    Ok(Permissions::of(&list))
}

/// The expiry a form asks for: none, a date (end of that day, UTC), or N days.
fn expiry(f: &super::Fields) -> Result<Expiry, String> {
    match f.one("expiry") {
        "never" => Ok(Expiry::Never),
        "days" => {
            let days: i64 = f
                .one("days")
                .parse()
                .ok()
                .filter(|d| (1..=36_500).contains(d))
                .ok_or("Give a number of days from 1 to 36500.")?;
            Ok(Expiry::After(Duration::days(days)))
        }
        "date" => {
            let format = feedkey::time::macros::format_description!("[year]-[month]-[day]");
            let date = Date::parse(f.one("date"), &format)
                .map_err(|_| "Give the expiry date as YYYY-MM-DD.".to_owned())?;
            let at = date.with_time(Time::MIDNIGHT).assume_utc() + Duration::days(1);
            if at <= OffsetDateTime::now_utc() {
                return Err("The expiry date has passed.".into());
            }
            Ok(Expiry::At(at))
        }
        _ => Err("Choose an expiry.".into()),
    }
}

/// The package patterns a form asks for: the globs typed (comma or line separated) and
/// the package ids ticked; none of either means every package.
fn packages(f: &super::Fields) -> Result<Packages, String> {
    let mut patterns: Vec<String> = f
        .one("globs")
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    patterns.extend(f.all("pick").into_iter().map(str::to_owned));
    if patterns.is_empty() {
        return Ok(Packages::Any);
    }
    Packages::only(&patterns).map_err(|e| format!("Packages: {e}."))
}

async fn create(
    State(app): State<Arc<App>>,
    me: SignedIn,
    caller: Caller,
    form: Posted,
) -> Result<Response, Response> {
    let f = &form.fields;
    let typed = context! {
        description => f.one("description"),
        access => f.one("access"),
        push => f.one("push"),
        unlist => f.ticked("unlist"),
        feed => f.one("feed"),
        globs => f.one("globs"),
        picked => f.all("pick").into_iter().map(str::to_owned).collect::<Vec<_>>(),
        expiry => f.one("expiry"),
        days => f.one("days"),
        date => f.one("date"),
    };
    let again = |status: StatusCode, error: String| {
        app.pages.render_status(
            status,
            "token_new.html",
            form_context(&app, &me, Some(error), typed.clone()),
        )
    };
    if let Err((status, why)) =
        super::reconfirm(&app, caller.client, &me.account, f.raw("password")).await
    {
        return Ok(again(status, why.into()));
    }
    let description = f.one("description");
    if description.is_empty() {
        return Ok(again(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Give the token a description.".into(),
        ));
    }
    let feeds = match f.one("feed") {
        "" | "*" => Feeds::Any,
        feed if app.owns_feed(&me.account, feed) => match Feeds::only([feed]) {
            Ok(feeds) => feeds,
            Err(e) => {
                return Ok(again(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("Feed: {e}."),
                ));
            }
        },
        feed => {
            return Ok(again(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("You have no feed named {feed:?}."),
            ));
        }
    };
    let scope = permissions(f)
        .and_then(|p| Ok((p, packages(f)?)))
        .and_then(|(p, packages)| Scope::new(p, feeds, packages).map_err(|e| format!("{e}.")));
    let (scope, expiry) = match scope.and_then(|s| Ok((s, expiry(f)?))) {
        Ok(x) => x,
        Err(error) => return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, error)),
    };
    let new = NewToken::new(description, scope).expires(expiry);
    match app.keys.issue(&me.account, new).await {
        Ok(issued) => {
            tracing::info!(account = %me.account, token = %issued.info.id, "token created on the web");
            app.flashes
                .put(
                    &form.session,
                    format!("Your new token “{description}”"),
                    issued.token.expose_secret(),
                )
                .await?;
            Ok(Redirect::to("/account/tokens").into_response())
        }
        Err(Error::Lifetime(e)) => Ok(again(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Expiry: {e}."),
        )),
        Err(e) => Err(internal(e)),
    }
}

fn token_id(id: &str) -> Result<TokenId, Response> {
    id.parse()
        .map_err(|_| (StatusCode::NOT_FOUND, "no such token").into_response())
}

/// One of the account's own tokens (another account's id is not found, as an unknown
/// one is), not its primary key (which has its own controls).
async fn own_token(app: &App, me: &SignedIn, id: &str) -> Result<TokenInfo, Response> {
    let not_found = || {
        app.pages.message(
            StatusCode::NOT_FOUND,
            Some(&me.account),
            &me.csrf,
            "No such token",
            "You have no token with that id.",
        )
    };
    let Ok(id) = token_id(id) else {
        return Err(not_found());
    };
    match app.keys.token(&me.account, id).await {
        Ok(info) if info.kind != TokenKind::Primary && info.status != TokenStatus::Revoked => {
            Ok(info)
        }
        Ok(_) | Err(Error::TokenNotFound | Error::AccountNotFound) => Err(not_found()),
        Err(e) => Err(internal(e)),
    }
}

fn edit_context(app: &App, me: &SignedIn, info: &TokenInfo, error: Option<String>) -> Value {
    let now = OffsetDateTime::now_utc();
    let patterns = package_patterns(info.scope.packages());
    let ids: Vec<Value> = app
        .package_ids_of(&me.account)
        .into_iter()
        .map(|id| context! { picked => patterns.contains(&id), id })
        .collect();
    let globs: Vec<&String> = patterns
        .iter()
        .filter(|p| {
            !ids.iter().any(|v| {
                v.get_attr("id")
                    .ok()
                    .and_then(|i| i.as_str().map(|s| s == p.as_str()))
                    .unwrap_or(false)
            })
        })
        .collect();
    context! {
        user => me.account.as_str(),
        csrf => &me.csrf,
        token => row(info, now),
        globs => globs.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        ids,
        error,
    }
}

async fn edit_page(
    State(app): State<Arc<App>>,
    me: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let info = own_token(&app, &me, &id).await?;
    Ok(app
        .pages
        .render("token_edit.html", edit_context(&app, &me, &info, None)))
}

async fn edit(
    State(app): State<Arc<App>>,
    me: SignedIn,
    Path(id): Path<String>,
    form: Posted,
) -> Result<Response, Response> {
    let info = own_token(&app, &me, &id).await?;
    let f = &form.fields;
    let again = |error: String| {
        app.pages.render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "token_edit.html",
            edit_context(&app, &me, &info, Some(error)),
        )
    };
    let description = f.one("description");
    if description.is_empty() {
        return Ok(again("Give the token a description.".into()));
    }
    let packages = match packages(f) {
        Ok(p) => p,
        Err(e) => return Ok(again(e)),
    };
    let edit = TokenEdit::new().description(description).packages(packages);
    match app.keys.edit(&me.account, info.id, edit).await {
        Ok(_) => {
            notice(&form.session, format!("Token “{description}” saved.")).await?;
            Ok(Redirect::to("/account/tokens").into_response())
        }
        Err(Error::Widens(w)) => Ok(again(format!(
            "A token can only be narrowed: {w}. Create a new token for more."
        ))),
        Err(Error::Scope(e)) => Ok(again(format!("Packages: {e}."))),
        Err(e) => Err(internal(e)),
    }
}

async fn refresh(
    State(app): State<Arc<App>>,
    me: SignedIn,
    Path(id): Path<String>,
    form: Posted,
) -> Result<Response, Response> {
    let info = own_token(&app, &me, &id).await?;
    match app.keys.refresh(&me.account, info.id).await {
        Ok(issued) => {
            app.flashes
                .put(
                    &form.session,
                    format!("The new value of “{}”", info.description),
                    issued.token.expose_secret(),
                )
                .await?;
            Ok(Redirect::to("/account/tokens").into_response())
        }
        Err(e @ (Error::Lifetime(_) | Error::TokenNotFound)) => Ok(app.pages.message(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&me.account),
            &me.csrf,
            "Cannot refresh",
            &e.to_string(),
        )),
        Err(e) => Err(internal(e)),
    }
}

async fn delete_page(
    State(app): State<Arc<App>>,
    me: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let info = own_token(&app, &me, &id).await?;
    let now = OffsetDateTime::now_utc();
    Ok(app.pages.render(
        "token_delete.html",
        context! { user => me.account.as_str(), csrf => &me.csrf, token => row(&info, now) },
    ))
}

async fn delete(
    State(app): State<Arc<App>>,
    me: SignedIn,
    Path(id): Path<String>,
    form: Posted,
) -> Result<Response, Response> {
    let info = own_token(&app, &me, &id).await?;
    app.keys
        .revoke(&me.account, info.id)
        .await
        .map_err(internal)?;
    tracing::info!(account = %me.account, token = %info.id, "token deleted on the web");
    notice(
        &form.session,
        format!("Token “{}” deleted. It no longer works.", info.description),
    )
    .await?;
    Ok(Redirect::to("/account/tokens").into_response())
}

async fn regenerate(
    State(app): State<Arc<App>>,
    me: SignedIn,
    caller: Caller,
    form: Posted,
) -> Result<Response, Response> {
    let f = &form.fields;
    let refuse = |status: StatusCode, text: &str| {
        app.pages.message(
            status,
            Some(&me.account),
            &me.csrf,
            "The primary key was not regenerated",
            text,
        )
    };
    if let Err((status, why)) =
        super::reconfirm(&app, caller.client, &me.account, f.raw("password")).await
    {
        return Ok(refuse(status, why));
    }
    let expiry = match expiry(f) {
        Ok(e) => e,
        Err(e) => return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, &e)),
    };
    match app.keys.regenerate_primary(&me.account, expiry).await {
        Ok(issued) => {
            tracing::info!(account = %me.account, "primary key regenerated on the web");
            app.flashes
                .put(
                    &form.session,
                    "Your new primary API key".into(),
                    issued.token.expose_secret(),
                )
                .await?;
            Ok(Redirect::to("/account/tokens").into_response())
        }
        Err(Error::Lifetime(e)) => Ok(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Expiry: {e}."),
        )),
        Err(e) => Err(internal(e)),
    }
}
