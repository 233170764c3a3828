//! Auth in one place: every request that needs a decision goes through [`guard`].

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use feedkey::{Action, DenyStatus, Grant, Request, Target};

use crate::App;

/// Asks feedkey whether the request may do `action` on `target`, and that the account it
/// acts for owns the feed. A denial becomes one uniform answer per status — the client
/// never learns which check failed — while the log gets the real reason.
pub async fn guard(
    app: &App,
    headers: &HeaderMap,
    peer: SocketAddr,
    action: Action,
    target: &Target<'_>,
) -> Result<Grant, Response> {
    let request = Request::from_header_map(headers).with_client_addr(peer.ip());
    match app.keys.authorize(&request, action, target).await {
        Ok(grant) if grant.account() == &app.owner => {
            if grant.used_previous_secret() {
                tracing::info!(token = ?grant.token_id(), "request used a refreshed-away secret inside its overlap");
            }
            Ok(grant)
        }
        Ok(grant) => {
            tracing::warn!(account = %grant.account(), feed = target.feed_name(), "denied: account does not own the feed");
            Err(refuse(DenyStatus::Forbidden))
        }
        Err(denial) => {
            tracing::warn!(
                feed = target.feed_name(),
                package = target.package_id(),
                action = ?action,
                client = %peer.ip(),
                "{denial}"
            );
            Err(refuse(denial.status()))
        }
    }
}

/// The one answer for each kind of refusal.
pub fn refuse(status: DenyStatus) -> Response {
    match status {
        DenyStatus::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"feed\""),
            )],
            "authentication required",
        )
            .into_response(),
        DenyStatus::Forbidden => (StatusCode::FORBIDDEN, "forbidden").into_response(),
        DenyStatus::Unavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response()
        }
    }
}
