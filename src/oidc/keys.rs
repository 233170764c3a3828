//! Where an exchange finds the issuer a token names, with its current keys: the small
//! [`IssuerKeys`] trait, a static set ([`StaticIssuers`]: tests, air-gapped registries),
//! and, with feature `oidc-fetch`, a fetcher of each issuer's published JWKS.

use std::future::Future;
use std::sync::Arc;

use super::{OidcIssuer, Refusal};

/// The issuers a registry trusts, by URL, with their signing keys.
pub trait IssuerKeys: Send + Sync {
    /// The issuer whose URL is `iss`, with keys as fresh as the source keeps them; `kid`
    /// is the key the token names, so that a source that fetches keys may refetch once
    /// when it does not know it.
    ///
    /// # Errors
    /// [`Refusal::UnknownIssuer`] when no trusted issuer has this URL.
    fn issuer(
        &self,
        iss: &str,
        kid: &str,
    ) -> impl Future<Output = Result<Arc<OidcIssuer>, Refusal>> + Send;
}

/// A fixed set of issuers, each with the JWKS it was configured with.
#[derive(Debug, Clone, Default)]
pub struct StaticIssuers {
    issuers: Vec<Arc<OidcIssuer>>,
}

impl StaticIssuers {
    /// No issuer yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// This set with `issuer` added (replacing one of the same URL).
    #[must_use]
    pub fn with(mut self, issuer: OidcIssuer) -> Self {
        self.issuers.retain(|i| i.issuer() != issuer.issuer());
        self.issuers.push(Arc::new(issuer));
        self
    }
}

impl From<OidcIssuer> for StaticIssuers {
    fn from(issuer: OidcIssuer) -> Self {
        Self::new().with(issuer)
    }
}

impl IssuerKeys for StaticIssuers {
    fn issuer(
        &self,
        iss: &str,
        _kid: &str,
    ) -> impl Future<Output = Result<Arc<OidcIssuer>, Refusal>> + Send {
        let found = self
            .issuers
            .iter()
            .find(|i| i.issuer() == iss)
            .cloned()
            .ok_or(Refusal::UnknownIssuer);
        std::future::ready(found)
    }
}

impl<T: IssuerKeys + ?Sized> IssuerKeys for Arc<T> {
    fn issuer(
        &self,
        iss: &str,
        kid: &str,
    ) -> impl Future<Output = Result<Arc<OidcIssuer>, Refusal>> + Send {
        (**self).issuer(iss, kid)
    }
}
