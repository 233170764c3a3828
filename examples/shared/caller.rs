//! The caller of a request, as an axum extractor: every handler that needs a decision
//! takes a [`Caller`] and asks it, so the credential is read and the decision made and
//! logged in one place ([`super::guard`]).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, header};
use axum::response::{IntoResponse, Response};
use feedkey::{Action, DenyStatus, Grant, GrantedBy, Target};

use super::proxy::TrustedProxies;
use super::{Registry, refuse};

/// Who is calling: the credential headers and the client's address, nothing else.
pub struct Caller {
    /// Only the `Authorization` and `X-NuGet-ApiKey` values (all of them, so a repeated
    /// header stays ambiguous), cloned by reference count.
    pub(crate) headers: HeaderMap,
    /// The TCP peer, or the address a trusted proxy forwarded for ([`TrustedProxies`]).
    pub(crate) client: IpAddr,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let client = parts
            .extensions
            .get::<TrustedProxies>()
            .map_or(peer.ip(), |proxies| {
                proxies.client(peer.ip(), &parts.headers)
            });
        let mut headers = HeaderMap::new();
        // `Authorization` and NuGet's `X-NuGet-ApiKey` (`feedkey::API_KEY_HEADER`).
        for name in [
            header::AUTHORIZATION,
            HeaderName::from_static("x-nuget-apikey"),
        ] {
            for value in parts.headers.get_all(&name) {
                headers.append(name.clone(), value.clone());
            }
        }
        Ok(Self { headers, client })
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
        super::guard(app, &self.headers, self.client, action, target).await
    }

    /// Is this caller any good credential of the owning account?
    pub async fn identified<R: Registry>(&self, app: &R) -> Result<Grant, Response> {
        super::identify(app, &self.headers, self.client).await
    }

    /// Is this caller the owning account's primary key? Only it manages tokens: a token
    /// that could issue tokens would survive its own revocation through the ones it made.
    pub async fn owner<R: Registry>(&self, app: &R) -> Result<Grant, Response> {
        let grant = self.identified(app).await?;
        if grant.granted_by() == GrantedBy::PrimaryKey {
            Ok(grant)
        } else {
            tracing::warn!(token = ?grant.token_id(), client = %self.client, "denied: token management needs the primary key");
            Err(refuse::<R>(DenyStatus::Forbidden))
        }
    }
}
