//! What only npm needs from the shared [`Caller`]: its refusals in npm's shape. The
//! decision and its log line are the shared ones ([`shared::settle`]); only the answer
//! differs: `{"error": …}` bodies, and a `401` with `WWW-Authenticate: ipaddress` for a
//! good token used from outside its CIDR ranges, which npm reports as `EAUTHIP` (feedkey
//! calls that a `403`: the token was proven; npm's registry answers `401`).

use axum::http::StatusCode;
use axum::response::Response;
use feedkey::{Action, Denial, DenyReason, Grant, Target};

use crate::errors::{Challenge, npm_error, unauthorized};
use crate::shared::{self, Caller, Registry};

/// The one answer for each refusal; the reason is in the log only.
fn answer(status: StatusCode, outside: bool) -> Response {
    if outside {
        return unauthorized(
            Challenge::IpAddress,
            "this token may not be used from your address",
        );
    }
    match status {
        StatusCode::UNAUTHORIZED => unauthorized(Challenge::Bearer, "authentication required"),
        StatusCode::FORBIDDEN => npm_error(status, "the token does not allow this"),
        _ => npm_error(StatusCode::SERVICE_UNAVAILABLE, "try again later"),
    }
}

fn outside<T>(decision: &Result<T, Denial>) -> bool {
    matches!(decision, Err(d) if *d.reason() == DenyReason::AddressNotAllowed)
}

impl Caller {
    /// May this caller do `action` on `target`? A refusal is npm's answer.
    pub async fn may_npm<R: Registry>(
        &self,
        app: &R,
        action: Action,
        target: &Target<'_>,
    ) -> Result<Grant, Response> {
        let request = R::request(&self.headers).with_client_addr(self.client);
        let decision = app.keys().authorize(&request, action, target).await;
        let outside = outside(&decision);
        shared::settle(app, decision, self.client, Some(target.feed_name()), || {
            format!("{action:?} on {}", target.package_id().unwrap_or(""))
        })
        .map_err(|r| answer(r.status(), outside))
    }

    /// Is this caller a good token of the owning account (`npm whoami`, the token API,
    /// any request with a body)? `what` names the request in the log.
    pub async fn identified_npm<R: Registry>(
        &self,
        app: &R,
        what: &str,
    ) -> Result<Grant, Response> {
        let request = R::request(&self.headers).with_client_addr(self.client);
        let decision = app.keys().authenticate(&request).await;
        let outside = outside(&decision);
        shared::settle(app, decision, self.client, None, || what.to_owned())
            .map_err(|r| answer(r.status(), outside))
    }

    /// The client's address, for log lines.
    pub fn client(&self) -> std::net::IpAddr {
        self.client
    }
}
