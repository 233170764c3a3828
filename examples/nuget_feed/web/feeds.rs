//! The feeds page: an account's feeds, with their URLs, and a form to make one. Feed
//! names are the registry's (`/F/{feed}/api/v2`), so one account's name is no one else's.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::{Value, context};

use super::{Posted, SignedIn, notice, page_notice};
use crate::App;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/account/feeds", get(page).post(create))
}

fn render(
    app: &App,
    me: &SignedIn,
    headers: &HeaderMap,
    error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let base = crate::site_url(headers);
    let feeds: Vec<Value> = app
        .feed_rows()
        .into_iter()
        .filter(|(_, owner, _)| owner == me.account.as_str())
        .map(|(name, _, private)| {
            let url = format!("{base}/F/{name}/api/v2");
            context! { push => format!("{url}/package"), url, name, private }
        })
        .collect();
    app.pages.render_status(
        status,
        "feeds.html",
        context! { user => me.account.as_str(), csrf => &me.csrf, feeds, error, notice },
    )
}

async fn page(
    State(app): State<Arc<App>>,
    me: SignedIn,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let notice = page_notice(&me.session).await?;
    Ok(render(&app, &me, &headers, None, notice, StatusCode::OK))
}

async fn create(
    State(app): State<Arc<App>>,
    me: SignedIn,
    headers: HeaderMap,
    form: Posted,
) -> Result<Response, Response> {
    let name = form.fields.one("name");
    let private = form.fields.ticked("private");
    match app.add_feed(name, &me.account, private) {
        Ok(()) => {
            tracing::info!(account = %me.account, feed = name, private, "feed created");
            notice(&form.session, format!("Feed {name} created.")).await?;
            Ok(Redirect::to("/account/feeds").into_response())
        }
        Err(crate::FeedError::Invalid(e)) => Ok(render(
            &app,
            &me,
            &headers,
            Some(e),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )),
        Err(crate::FeedError::Taken) => Ok(render(
            &app,
            &me,
            &headers,
            Some(format!("The feed name {name} is taken.")),
            None,
            StatusCode::CONFLICT,
        )),
        Err(crate::FeedError::Failed(e)) => {
            tracing::error!("feed {name}: {e}");
            Ok((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
        }
    }
}
