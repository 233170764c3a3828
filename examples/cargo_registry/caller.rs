//! The caller of a request, as an axum extractor: every handler that needs a decision
//! takes a [`Caller`] and asks it, so the credential is read and the decision made and
//! logged in one place ([`crate::shared::guard`]).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use feedkey::{Action, DenyReason, Grant, Target};

use crate::shared::{self, Registry};

/// Who is calling: the credential header and the peer address, nothing else.
pub struct Caller {
    /// Only the `Authorization` values (all of them, so a repeated header stays
    /// ambiguous), cloned by reference count.
    headers: HeaderMap,
    peer: SocketAddr,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let mut headers = HeaderMap::new();
        for value in parts.headers.get_all(header::AUTHORIZATION) {
            headers.append(header::AUTHORIZATION, value.clone());
        }
        Ok(Self { headers, peer })
    }
}

impl Caller {
    /// May this caller do `action` on `target`? A refusal is the uniform answer.
    pub async fn may<R: Registry>(
        &self,
        app: &R,
        action: Action,
        target: &Target<'_>,
    ) -> Result<Grant, Response> {
        shared::guard(app, &self.headers, self.peer, action, target).await
    }

    /// Is this caller any good credential of the owning account?
    pub async fn identified<R: Registry>(&self, app: &R) -> Result<Grant, Response> {
        shared::identify(app, &self.headers, self.peer).await
    }

    /// Read, or else push, on the crate: what a crate's index entry needs (`cargo
    /// publish` reads the entry before and after uploading).
    pub async fn may_read_entry<R: Registry>(
        &self,
        app: &R,
        target: &Target<'_>,
    ) -> Result<Grant, Response> {
        let request = R::request(&self.headers).with_client_addr(self.peer.ip());
        let mut decision = app.keys().authorize(&request, Action::Read, target).await;
        if let Err(denial) = &decision
            && matches!(denial.reason(), DenyReason::ActionOutOfScope(_))
        {
            // No read: the push decision (and its reason, if it too is a denial) stands.
            decision = app.keys().authorize(&request, Action::Push, target).await;
        }
        shared::settle(app, decision, self.peer, || {
            format!(
                "Read or Push index of {}",
                target.package_id().unwrap_or("")
            )
        })
    }
}
