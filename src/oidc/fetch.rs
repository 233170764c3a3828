//! An issuer's keys fetched from where it publishes them (feature `oidc-fetch`): its
//! `/.well-known/openid-configuration`, then the JWKS its `jwks_uri` names, over HTTPS
//! (plain HTTP only for a loopback issuer, for tests). The keys are cached; a token naming
//! a key the cache does not hold makes one refetch, at most once per
//! [`FetchedIssuer::DEFAULT_MIN_REFETCH`] (a minute), so that a flood of made-up key ids
//! cannot make the registry hammer the issuer; while the issuer is unreachable the cached
//! keys go on serving.
//!
//! The client is `ureq` with the host's TLS library (`native-tls`: the system's OpenSSL
//! and its root certificates); a redirect is not followed, and a document over
//! [`FetchedIssuer::MAX_DOCUMENT_LEN`] is refused.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{IssuerKeys, OidcError, OidcIssuer, Refusal};

/// What was fetched, and when a fetch was last tried.
#[derive(Debug, Default)]
struct Cache {
    keys: Option<Arc<OidcIssuer>>,
    tried: Option<Instant>,
}

/// One issuer whose keys are fetched from it and cached.
#[derive(Debug)]
pub struct FetchedIssuer {
    issuer: String,
    audience: String,
    leeway: time::Duration,
    min_refetch: Duration,
    agent: ureq::Agent,
    cache: Mutex<Cache>,
}

/// Whether `url` may be fetched: HTTPS, or plain HTTP to a loopback host.
pub(crate) fn fetchable(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl FetchedIssuer {
    /// The least time between two fetches caused by unknown key ids: a minute.
    pub const DEFAULT_MIN_REFETCH: Duration = Duration::from_secs(60);
    /// How long a fetch may take: 10 seconds.
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    /// The largest document read (the configuration or the JWKS): 256 KiB.
    pub const MAX_DOCUMENT_LEN: u64 = 256 * 1024;

    /// The issuer at `issuer` (its `iss`, and where its configuration is published),
    /// whose tokens must name `audience`. Nothing is fetched until a token arrives (or
    /// [`FetchedIssuer::refresh`]).
    ///
    /// # Errors
    /// [`OidcError::Config`] for an empty audience, or an issuer URL that is neither HTTPS
    /// nor plain HTTP to a loopback host.
    pub fn new(issuer: &str, audience: &str) -> Result<Self, OidcError> {
        if !fetchable(issuer) {
            return Err(OidcError::Config(
                "an issuer is fetched over HTTPS (plain HTTP only on loopback)".into(),
            ));
        }
        if audience.is_empty() {
            return Err(OidcError::Config("an issuer needs the audience".into()));
        }
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Self::TIMEOUT))
            .max_redirects(0)
            .tls_config(tls)
            .build()
            .into();
        Ok(Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            leeway: OidcIssuer::DEFAULT_LEEWAY,
            min_refetch: Self::DEFAULT_MIN_REFETCH,
            agent,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// This issuer with another least time between refetches (tests shorten it).
    #[must_use]
    pub fn with_min_refetch(mut self, min_refetch: Duration) -> Self {
        self.min_refetch = min_refetch;
        self
    }

    /// This issuer with another clock leeway (see [`OidcIssuer::with_leeway`]).
    #[must_use]
    pub fn with_leeway(mut self, leeway: time::Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Fetches the keys now, replacing the cached ones.
    ///
    /// # Errors
    /// [`OidcError::Config`] saying what failed (the cached keys, if any, stay).
    pub async fn refresh(&self) -> Result<Arc<OidcIssuer>, OidcError> {
        self.lock().tried = Some(Instant::now());
        let agent = self.agent.clone();
        let (issuer, audience, leeway) = (self.issuer.clone(), self.audience.clone(), self.leeway);
        let fetched = crate::secret::password::off_executor(move || {
            fetch(&agent, &issuer, &audience, leeway)
        })
        .await
        .unwrap_or_else(|| Err(OidcError::Config("the runtime shut down".into())))?;
        let fetched = Arc::new(fetched);
        self.lock().keys = Some(Arc::clone(&fetched));
        Ok(fetched)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Reads the issuer's configuration, then its JWKS.
fn fetch(
    agent: &ureq::Agent,
    issuer: &str,
    audience: &str,
    leeway: time::Duration,
) -> Result<OidcIssuer, OidcError> {
    let get = |url: &str| -> Result<String, OidcError> {
        if !fetchable(url) {
            return Err(OidcError::Config(format!("{url} is not HTTPS")));
        }
        let mut response = agent
            .get(url)
            .call()
            .map_err(|e| OidcError::Config(format!("{url}: {e}")))?;
        response
            .body_mut()
            .with_config()
            .limit(FetchedIssuer::MAX_DOCUMENT_LEN)
            .read_to_string()
            .map_err(|e| OidcError::Config(format!("{url}: {e}")))
    };
    let configuration = get(&format!("{issuer}/.well-known/openid-configuration"))?;
    let configuration: serde_json::Value = serde_json::from_str(&configuration)
        .map_err(|e| OidcError::Config(format!("the issuer's configuration: {e}")))?;
    // The configuration must be the issuer's own.
    let named = configuration.get("issuer").and_then(|v| v.as_str());
    if named.map(|n| n.trim_end_matches('/')) != Some(issuer) {
        return Err(OidcError::Config(
            "the configuration names another issuer".into(),
        ));
    }
    let jwks_uri = configuration
        .get("jwks_uri")
        .and_then(|v| v.as_str())
        .ok_or_else(|| OidcError::Config("the configuration has no jwks_uri".into()))?;
    let jwks = get(jwks_uri)?;
    Ok(OidcIssuer::new(issuer, audience, &jwks)?.with_leeway(leeway))
}

impl IssuerKeys for FetchedIssuer {
    async fn issuer(&self, iss: &str, kid: &str) -> Result<Arc<OidcIssuer>, Refusal> {
        if iss.trim_end_matches('/') != self.issuer {
            return Err(Refusal::UnknownIssuer);
        }
        let (cached, due) = {
            let mut cache = self.lock();
            let cached = cache.keys.clone();
            if let Some(keys) = cached.as_ref().filter(|k| k.has_key(kid)) {
                return Ok(Arc::clone(keys));
            }
            let due = cache
                .tried
                .is_none_or(|tried| tried.elapsed() >= self.min_refetch);
            if due {
                // Claimed now: concurrent tokens wait for the next window, not refetch.
                cache.tried = Some(Instant::now());
            }
            (cached, due)
        };
        if due {
            match self.refresh().await {
                Ok(fresh) => return Ok(fresh),
                #[cfg(feature = "tracing")]
                Err(e) => tracing::warn!(issuer = %self.issuer, "OIDC keys not fetched: {e}"),
                #[cfg(not(feature = "tracing"))]
                Err(_) => {}
            }
        }
        // The cached keys go on serving; a key they lack is refused by `verify`.
        cached.ok_or(Refusal::UnknownKey)
    }
}

#[cfg(test)]
mod tests {
    use super::fetchable;

    #[test]
    fn https_or_loopback_http_only() {
        let cases = [
            ("https://token.actions.githubusercontent.com", true),
            ("http://127.0.0.1:8080", true),
            ("http://localhost/x", true),
            ("http://[::1]:9000/", true),
            ("http://127.0.0.1.example.com", false),
            ("http://localhost@evil.example", false),
            ("http://example.com", false),
            ("http://10.0.0.1", false),
            ("ftp://127.0.0.1", false),
            ("", false),
        ];
        for (url, allowed) in cases {
            assert_eq!(fetchable(url), allowed, "{url}");
        }
    }
}
