//! Answers in the shape npm prints: `{"error": "…"}`, which npm shows after the status
//! line (`403 Forbidden - PUT http://…/left-pad - the token does not allow this`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer npm shows its user.
pub fn npm_error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

/// What a `401` asks npm for, in `WWW-Authenticate`; npm reads it to choose its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// A token that proves no one (missing, unknown, wrong, revoked, expired): npm says
    /// "your authentication token seems to be invalid".
    Bearer,
    /// A password that proves no one (`npm login`, or a token request's re-confirmation):
    /// npm says "Incorrect or missing password".
    Basic,
    /// A good token used from outside its CIDR ranges: npm's `EAUTHIP`, "Login is not
    /// allowed from your IP address".
    IpAddress,
}

/// A `401` with its challenge.
pub fn unauthorized(challenge: Challenge, message: &str) -> Response {
    let mut response = npm_error(StatusCode::UNAUTHORIZED, message);
    let value = match challenge {
        Challenge::Bearer => "Bearer",
        Challenge::Basic => "Basic",
        Challenge::IpAddress => "ipaddress",
    };
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    response
}
