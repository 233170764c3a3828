//! Accounts on the web: sign up, sign in, sign out, change the password, reset it by an
//! e-mailed link. The password is feedkey's account password (Argon2id); a token typed
//! into the password field is refused, as MyGet refuses it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use feedkey::{AccountId, DenyReason, Error, Expiry};
use minijinja::context;
use tower_sessions::Session;

use super::{Posted, SignedIn, csrf, notice, random_token, sign_in_session};
use crate::App;
use crate::shared::Caller;

/// How long a password-reset link works.
const RESET_MINUTES: i64 = 30;
/// The shortest password the site takes.
const MIN_PASSWORD: usize = 10;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/signup", get(sign_up_page).post(sign_up))
        .route("/signin", get(sign_in_page).post(sign_in))
        .route("/signout", post(sign_out))
        .route("/reset", get(reset_page).post(reset))
        .route("/reset/{link}", get(new_password_page).post(new_password))
        .route(
            "/account/password",
            get(password_page).post(change_password),
        )
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!("{e}");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// The signed-in account of a session, if any (for pages anyone may see).
async fn who(session: &Session) -> Option<String> {
    session
        .get::<String>(crate::sessions::ACCOUNT)
        .await
        .ok()
        .flatten()
}

pub async fn home(State(app): State<Arc<App>>, session: Session) -> Result<Response, Response> {
    if who(&session).await.is_some() {
        return Ok(Redirect::to("/account/tokens").into_response());
    }
    let csrf = csrf(&session).await?;
    let feeds: Vec<_> = app
        .feed_rows()
        .into_iter()
        .filter(|(_, _, private)| !private)
        .map(|(name, owner, _)| context! { name, owner })
        .collect();
    Ok(app.pages.render("home.html", context! { csrf, feeds }))
}

async fn sign_up_page(State(app): State<Arc<App>>, session: Session) -> Result<Response, Response> {
    let csrf = csrf(&session).await?;
    Ok(app.pages.render("signup.html", context! { csrf }))
}

/// A new password's problems, in words for the form, before feedkey is asked (so that
/// an account is never made without the password its sign-up gave).
fn password_problem(app: &App, password: &str, again: &str) -> Option<String> {
    let format = app.keys.token_format();
    if password.starts_with(&format!("{}_", format.prefix())) {
        Some("A password may not look like an access token.".into())
    } else if password.len() > feedkey::PasswordConfig::MAX_PASSWORD_LEN {
        Some("That password is too long.".into())
    } else if password.chars().count() < MIN_PASSWORD {
        Some(format!(
            "The password needs at least {MIN_PASSWORD} characters."
        ))
    } else if password != again {
        Some("The two passwords differ.".into())
    } else {
        None
    }
}

async fn sign_up(
    State(app): State<Arc<App>>,
    caller: Caller,
    form: Posted,
) -> Result<Response, Response> {
    let f = &form.fields;
    let (name, email, password) = (f.one("name"), f.one("email"), f.raw("password"));
    let csrf = csrf(&form.session).await?;
    let again = |error: String| {
        app.pages.render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "signup.html",
            context! { csrf, error, name, email },
        )
    };
    if !app.limits.allow(caller.client, email) {
        return Ok(again(
            "Too many sign-ups from here. Wait a minute and try again.".into(),
        ));
    }
    let account = match AccountId::new(name) {
        Ok(a) => a,
        Err(e) => return Ok(again(format!("User name: {e}."))),
    };
    if !(3..=254).contains(&email.len())
        || !email.contains('@')
        || email.contains(char::is_whitespace)
    {
        return Ok(again(
            "Give an e-mail address, such as you@example.com.".into(),
        ));
    }
    if let Some(problem) = password_problem(&app, password, f.raw("password2")) {
        return Ok(again(problem));
    }
    // The user row first (it reserves the name and address), then the account; if the
    // account cannot be made, the row goes, so nothing is left half-made.
    match app.site.add_user(account.as_str(), email) {
        Ok(()) => {}
        Err(crate::site::SiteError::Taken(what)) => {
            return Ok(again(format!("That {what} is taken.")));
        }
        Err(e) => return Err(internal(e)),
    }
    let made = async {
        let primary = app.keys.create_account(&account, Expiry::Never).await?;
        // Checked above, so only a store failure lands here: the account then has no
        // password, and its primary key (shown below) still works.
        app.keys.set_password(&account, password).await?;
        Ok::<_, Error>(primary)
    }
    .await;
    let primary = match made {
        Ok(p) => p,
        Err(e) => {
            app.site.remove_user(account.as_str()).map_err(internal)?;
            return Ok(match e {
                Error::AccountExists => again("That user name or e-mail address is taken.".into()),
                Error::Password(e) => again(format!("Password: {e}.")),
                e => internal(e),
            });
        }
    };
    tracing::info!(account = %account, "signed up");
    sign_in_session(&form.session, &account).await?;
    app.flashes
        .put(
            &form.session,
            "Your primary API key".into(),
            primary.token.expose_secret(),
        )
        .await?;
    Ok(Redirect::to("/account/tokens").into_response())
}

async fn sign_in_page(State(app): State<Arc<App>>, session: Session) -> Result<Response, Response> {
    let csrf = csrf(&session).await?;
    Ok(app.pages.render("signin.html", context! { csrf }))
}

async fn sign_in(
    State(app): State<Arc<App>>,
    caller: Caller,
    form: Posted,
) -> Result<Response, Response> {
    let (name, password) = (form.fields.one("name"), form.fields.raw("password"));
    let csrf = csrf(&form.session).await?;
    let again = |status: StatusCode, error: &str| {
        app.pages
            .render_status(status, "signin.html", context! { csrf, error, name })
    };
    if !app.limits.allow(caller.client, name) {
        tracing::warn!(client = %caller.client, user = name, "sign-in rate-limited");
        return Ok(again(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts. Wait a minute and try again.",
        ));
    }
    match app.keys.sign_in(name, password).await {
        Ok(account) => {
            tracing::info!(account = %account, client = %caller.client, "signed in");
            sign_in_session(&form.session, &account).await?;
            Ok(Redirect::to("/account/tokens").into_response())
        }
        Err(denial) if *denial.reason() == DenyReason::TokenCannotSignIn => {
            tracing::warn!(client = %caller.client, "sign-in with an access token refused");
            Ok(again(
                StatusCode::UNAUTHORIZED,
                "Access tokens cannot be used to sign in to the website. Use your password.",
            ))
        }
        Err(denial) if matches!(denial.reason(), DenyReason::Store(_)) => {
            Err(internal(denial.reason()))
        }
        Err(denial) => {
            tracing::info!(client = %caller.client, user = name, "sign-in refused: {}", denial.reason());
            Ok(again(
                StatusCode::UNAUTHORIZED,
                "Wrong user name or password.",
            ))
        }
    }
}

async fn sign_out(form: Posted) -> Result<Response, Response> {
    form.session.flush().await.map_err(internal)?;
    Ok(Redirect::to("/").into_response())
}

async fn password_page(State(app): State<Arc<App>>, me: SignedIn) -> Response {
    app.pages.render(
        "password.html",
        context! { user => me.account.as_str(), csrf => me.csrf },
    )
}

async fn change_password(
    State(app): State<Arc<App>>,
    me: SignedIn,
    caller: Caller,
    form: Posted,
) -> Result<Response, Response> {
    let f = &form.fields;
    let again = |status: StatusCode, error: String| {
        app.pages.render_status(
            status,
            "password.html",
            context! { user => me.account.as_str(), csrf => &me.csrf, error },
        )
    };
    if let Err((status, why)) =
        super::reconfirm(&app, caller.client, &me.account, f.raw("current")).await
    {
        return Ok(again(status, why.into()));
    }
    if let Some(problem) = password_problem(&app, f.raw("password"), f.raw("password2")) {
        return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, problem));
    }
    match app.keys.set_password(&me.account, f.raw("password")).await {
        Ok(()) => {}
        Err(Error::Password(e)) => {
            return Ok(again(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("Password: {e}."),
            ));
        }
        Err(e) => return Err(internal(e)),
    }
    // Every session of the account ends; this one signs in again at once.
    app.site
        .password_changed(me.account.as_str())
        .map_err(internal)?;
    sign_in_session(&form.session, &me.account).await?;
    notice(
        &form.session,
        "Password changed. Every other session was signed out.",
    )
    .await?;
    Ok(Redirect::to("/account/tokens").into_response())
}

async fn reset_page(State(app): State<Arc<App>>, session: Session) -> Result<Response, Response> {
    let csrf = csrf(&session).await?;
    let mail = app.mail.is_some();
    Ok(app.pages.render("reset.html", context! { csrf, mail }))
}

/// The digest a reset link is kept under: the link itself is only in the mail.
fn link_digest(link: &str) -> [u8; 32] {
    *blake3::hash(link.as_bytes()).as_bytes()
}

async fn reset(
    State(app): State<Arc<App>>,
    caller: Caller,
    form: Posted,
) -> Result<Response, Response> {
    let email = form.fields.one("email");
    let csrf = csrf(&form.session).await?;
    let said = "If an account has that address, a link to set a new password is on its way. It works for 30 minutes.";
    let Some(mail) = &app.mail else {
        return Ok(app.pages.message(
            StatusCode::NOT_FOUND,
            None,
            &csrf,
            "No mail here",
            "This registry sends no mail: ask its operator to reset your password.",
        ));
    };
    if !app.limits.allow(caller.client, email) {
        return Ok(app.pages.message(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            &csrf,
            "Too many requests",
            "Wait a minute and try again.",
        ));
    }
    // The same answer whether or not the address is known: the page tells no one who
    // has an account.
    if let Some(name) = app.site.user_by_email(email).map_err(internal)? {
        let link = random_token()?;
        let expires =
            feedkey::time::OffsetDateTime::now_utc().unix_timestamp() + RESET_MINUTES * 60;
        app.site
            .add_reset(&link_digest(&link), &name, expires)
            .map_err(internal)?;
        let url = format!("{}/reset/{link}", app.public_url);
        let body = format!(
            "Someone asked to reset the password of {name} on {}.\n\nTo choose a new password, open this link within {RESET_MINUTES} minutes:\n\n{url}\n\nIf it was not you, ignore this message: your password is unchanged.\n",
            app.public_url
        );
        // To the address on record, not as typed (it matched without regard to case).
        let to = app.site.email(&name).map_err(internal)?.unwrap_or_default();
        if let Err(e) = mail.send(&to, "Reset your password", body).await {
            tracing::error!("reset mail to {name} not sent: {e}");
        } else {
            tracing::info!(account = name, "reset link sent");
        }
    }
    Ok(app
        .pages
        .message(StatusCode::OK, None, &csrf, "Check your mail", said))
}

async fn new_password_page(
    State(app): State<Arc<App>>,
    session: Session,
    Path(link): Path<String>,
) -> Result<Response, Response> {
    let csrf = csrf(&session).await?;
    if app
        .site
        .reset(&link_digest(&link))
        .map_err(internal)?
        .is_none()
    {
        return Ok(dead_link(&app, &csrf));
    }
    Ok(app
        .pages
        .render("new_password.html", context! { csrf, link }))
}

fn dead_link(app: &App, csrf: &str) -> Response {
    app.pages.message(
        StatusCode::NOT_FOUND,
        None,
        csrf,
        "This link does not work",
        "It was used already, or it is older than 30 minutes. Ask for a new one.",
    )
}

async fn new_password(
    State(app): State<Arc<App>>,
    Path(link): Path<String>,
    form: Posted,
) -> Result<Response, Response> {
    let f = &form.fields;
    let csrf = csrf(&form.session).await?;
    if let Some(problem) = password_problem(&app, f.raw("password"), f.raw("password2")) {
        return Ok(app.pages.render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "new_password.html",
            context! { csrf, link, error => problem },
        ));
    }
    let Some(name) = app.site.take_reset(&link_digest(&link)).map_err(internal)? else {
        return Ok(dead_link(&app, &csrf));
    };
    let account = AccountId::new(&name).map_err(internal)?;
    match app.keys.set_password(&account, f.raw("password")).await {
        Ok(()) => {}
        Err(Error::Password(e)) => {
            return Ok(app.pages.message(
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                &csrf,
                "Password refused",
                &format!("Password: {e}. Ask for a new link."),
            ));
        }
        Err(e) => return Err(internal(e)),
    }
    app.site.password_changed(&name).map_err(internal)?;
    tracing::info!(account = name, "password reset by link");
    Ok(app.pages.message(
        StatusCode::OK,
        None,
        &csrf,
        "Password changed",
        "Your new password works now, and every session of your account was signed out. Sign in again.",
    ))
}
