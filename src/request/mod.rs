//! What is asked: an action on a target, and the request that carries the credential.
//!
//! Below scopes (which match a target) and above secrets; the credential's parsing lives in
//! `credential`, the `http` crate's header maps in `http` (feature `http`).

use std::net::IpAddr;

use zeroize::Zeroizing;

use crate::ascii::all_graphic;

pub(crate) mod credential;
#[cfg(feature = "http")]
mod http;

pub(crate) use credential::is_blank;
pub use credential::{API_KEY_HEADER, Credential, CredentialError, MAX_HEADER_LEN};

/// The longest feed name, in bytes: [`crate::FeedName::MAX_LEN`], kept here because a
/// [`Target`] checks it below the scope layer.
pub(crate) const MAX_FEED_NAME_LEN: usize = 128;

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// List, search or download.
    Read,
    /// Push a package; the target says whether its id is new to the feed.
    Push,
    /// Unlist or delete a package version.
    Unlist,
}

/// What a request acts on: a feed, and the package where there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    feed: &'a str,
    package: Option<(&'a str, bool)>,
}

impl<'a> Target<'a> {
    /// The feed as a whole (its listing, its search).
    pub const fn feed(feed: &'a str) -> Self {
        Self {
            feed,
            package: None,
        }
    }

    /// A package id the feed already has.
    pub const fn package(feed: &'a str, package_id: &'a str) -> Self {
        Self {
            feed,
            package: Some((package_id, false)),
        }
    }

    /// A package id the feed has never had (pushing it needs "push new package").
    pub const fn new_package(feed: &'a str, package_id: &'a str) -> Self {
        Self {
            feed,
            package: Some((package_id, true)),
        }
    }

    /// The longest package id a target may name; longer ones are refused unmatched.
    pub const MAX_PACKAGE_ID_LEN: usize = 512;

    /// Whether the target's names are within bounds (the feed a valid feed name's length,
    /// the package id at most [`Self::MAX_PACKAGE_ID_LEN`] bytes, neither empty), the
    /// package id is printable ASCII (`!` to `~`: no space, control or non-ASCII
    /// character, as npm's and cargo's naming rules require; NuGet's Unicode ids, which
    /// NuGet compares under Unicode case rules, are refused rather than folded by a rule
    /// that could match more than the registry's), and it is not a path's parent step
    /// (`..`, or ending in `/..`): no registry's naming rules allow one, and a glob
    /// matcher built for paths reads it as a directory step rather than as a name, so it
    /// is refused before any pattern sees it.
    pub(crate) fn is_well_formed(&self) -> bool {
        let feed_ok = !self.feed.is_empty() && self.feed.len() <= MAX_FEED_NAME_LEN;
        let package_ok = self.package.is_none_or(|(id, _)| {
            !id.is_empty()
                && id.len() <= Self::MAX_PACKAGE_ID_LEN
                && all_graphic(id.as_bytes())
                && id != ".."
                && !id.ends_with("/..")
        });
        feed_ok && package_ok
    }

    /// The feed.
    pub fn feed_name(&self) -> &'a str {
        self.feed
    }

    /// The package id, if any.
    pub fn package_id(&self) -> Option<&'a str> {
        self.package.map(|(id, _)| id)
    }

    /// Whether the package id is new to the feed.
    pub fn is_new_package(&self) -> bool {
        self.package.is_some_and(|(_, new)| new)
    }
}

/// A request as `authorize` sees it: the credential (or why there is none).
///
/// ```
/// use feedkey::Request;
///
/// let r = Request::from_headers(None, Some(b"Bearer fk_abc"));
/// assert!(r.credential().is_ok());
/// let r = Request::from_headers(None, None);
/// assert!(r.credential().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Request<'a> {
    credential: Result<Credential<'a>, CredentialError>,
    client_addr: Option<IpAddr>,
}

impl<'a> Request<'a> {
    /// A request from its `X-NuGet-ApiKey` and `Authorization` header values, either of
    /// which may be missing. Both present and different is refused as ambiguous.
    ///
    /// An empty (or blank) API-key header counts as absent, so it cannot hide a good
    /// `Authorization` header.
    pub fn from_headers(api_key: Option<&'a [u8]>, authorization: Option<&'a [u8]>) -> Self {
        let api_key = api_key.filter(|v| v.iter().any(|&b| !is_blank(char::from(b))));
        let credential = match (api_key, authorization) {
            (None, None) => Err(CredentialError::Missing),
            (Some(key), None) => Credential::from_api_key(key),
            (None, Some(auth)) => Credential::from_authorization(auth),
            (Some(key), Some(auth)) => {
                match (
                    Credential::from_api_key(key),
                    Credential::from_authorization(auth),
                ) {
                    (Ok(a), Ok(b)) if a == b => Ok(a),
                    (Ok(Credential::Token(a)), Ok(Credential::Basic { password, .. }))
                        if a == password.as_str() =>
                    {
                        Ok(Credential::Token(a))
                    }
                    (Err(e), _) | (_, Err(e)) => Err(e),
                    _ => Err(CredentialError::Ambiguous),
                }
            }
        };
        Self {
            credential,
            client_addr: None,
        }
    }

    /// This request, from a client at `addr` (the peer address, or the one a trusted
    /// proxy reported). Tokens limited to networks refuse requests without one.
    #[must_use]
    pub fn with_client_addr(mut self, addr: IpAddr) -> Self {
        self.client_addr = Some(addr);
        self
    }

    /// The client's address, if the server gave it.
    pub fn client_addr(&self) -> Option<IpAddr> {
        self.client_addr
    }

    /// A request carrying `credential`.
    pub fn from_credential(credential: Credential<'a>) -> Self {
        Self {
            credential: Ok(credential),
            client_addr: None,
        }
    }

    /// A request with Basic credentials a server has already decoded.
    pub fn basic(username: &str, password: &str) -> Request<'static> {
        Request {
            credential: Ok(Credential::Basic {
                username: username.to_owned(),
                password: Zeroizing::new(password.to_owned()),
            }),
            client_addr: None,
        }
    }

    /// A request presenting `token` (as an API key).
    pub fn token(token: &'a str) -> Self {
        Self {
            credential: Ok(Credential::Token(token)),
            client_addr: None,
        }
    }

    /// Kept for code written before 0.2: see [`Request::from_credential`].
    #[deprecated(note = "use `Request::from_credential`")]
    #[doc(hidden)]
    pub fn with_credential(credential: Credential<'a>) -> Self {
        Self::from_credential(credential)
    }

    /// Kept for code written before 0.2: see [`Request::basic`].
    #[deprecated(note = "use `Request::basic`")]
    #[doc(hidden)]
    pub fn with_basic(username: &str, password: &str) -> Request<'static> {
        Request::basic(username, password)
    }

    /// Kept for code written before 0.2: see [`Request::token`].
    #[deprecated(note = "use `Request::token`")]
    #[doc(hidden)]
    pub fn with_token(token: &'a str) -> Self {
        Self::token(token)
    }

    /// A request from the `Authorization` header of a cargo client (see
    /// [`Credential::from_cargo_authorization`]); `None` when it sent none.
    pub fn from_cargo_authorization(authorization: Option<&'a [u8]>) -> Self {
        Self {
            credential: authorization.map_or(
                Err(CredentialError::Missing),
                Credential::from_cargo_authorization,
            ),
            client_addr: None,
        }
    }

    /// The credential, or why there is none.
    ///
    /// # Errors
    /// The [`CredentialError`] found when the headers were read.
    pub fn credential(&self) -> Result<&Credential<'a>, CredentialError> {
        self.credential.as_ref().map_err(|e| *e)
    }
}
