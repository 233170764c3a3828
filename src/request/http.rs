//! Requests read from the `http` crate's header maps (feature `http`).

use super::{API_KEY_HEADER, CredentialError, Request};

impl<'a> Request<'a> {
    /// A request from an [`http::HeaderMap`]: `X-NuGet-ApiKey` and `Authorization`.
    #[cfg(feature = "http")]
    ///
    /// A header sent more than once is refused as ambiguous rather than read in part.
    pub fn from_header_map(headers: &'a http::HeaderMap) -> Self {
        let one = |name| -> Result<Option<&'a [u8]>, CredentialError> {
            let mut values = headers.get_all(name).iter();
            let first = values.next().map(http::HeaderValue::as_bytes);
            match values.next() {
                Some(_) => Err(CredentialError::Ambiguous),
                None => Ok(first),
            }
        };
        match (
            one(API_KEY_HEADER),
            one(http::header::AUTHORIZATION.as_str()),
        ) {
            (Ok(api_key), Ok(authorization)) => Self::from_headers(api_key, authorization),
            (Err(e), _) | (_, Err(e)) => Self {
                credential: Err(e),
                client_addr: None,
            },
        }
    }

    /// A request from the headers of a cargo client: its `Authorization` header only. A
    /// header sent more than once is refused as ambiguous.
    #[cfg(feature = "http")]
    pub fn from_cargo_header_map(headers: &'a http::HeaderMap) -> Self {
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let first = values.next().map(http::HeaderValue::as_bytes);
        if values.next().is_some() {
            return Self {
                credential: Err(CredentialError::Ambiguous),
                client_addr: None,
            };
        }
        Self::from_cargo_authorization(first)
    }
}
