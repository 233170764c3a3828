//! Where a token may be used from: any address, or only inside some CIDR ranges.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::scope::ScopeError;

/// The client addresses a token may be used from.
///
/// ```
/// use feedkey::Networks;
///
/// let office = Networks::only(["203.0.113.0/24", "2001:db8::/32"])?;
/// assert!(office.allows(Some("203.0.113.7".parse()?)));
/// assert!(!office.allows(Some("198.51.100.1".parse()?)));
/// assert!(!office.allows(None)); // unknown address: refused
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(
    rename_all = "kebab-case",
    try_from = "NetworksSpec",
    into = "NetworksSpec"
)]
pub enum Networks {
    /// Any address, or none known.
    #[default]
    Any,
    /// Only addresses inside one of these ranges. A request whose address the server did
    /// not give is refused.
    Only(NetworkSet),
}

/// A checked list of CIDR ranges: 1 to [`Networks::MAX_NETWORKS`] of them, each with its
/// host bits cleared, sorted, without repeats. Made only by [`Networks::only`]; read it as
/// the slice it derefs to.
///
/// ```compile_fail,E0308
/// use feedkey::Networks;
/// let nowhere = Networks::Only(vec![]); // no: a NetworkSet is checked
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetworkSet(Vec<IpNet>);

impl std::ops::Deref for NetworkSet {
    type Target = [IpNet];
    fn deref(&self) -> &[IpNet] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a NetworkSet {
    type Item = &'a IpNet;
    type IntoIter = std::slice::Iter<'a, IpNet>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Networks {
    /// The most ranges one scope may name.
    pub const MAX_NETWORKS: usize = 256;

    /// Only addresses inside these CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`; a bare
    /// address is a single-host range).
    ///
    /// # Errors
    /// [`ScopeError::NoNetworks`], [`ScopeError::TooManyNetworks`] or
    /// [`ScopeError::InvalidNetwork`].
    pub fn only<I, S>(ranges: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for range in ranges {
            if nets.len() == Self::MAX_NETWORKS {
                return Err(ScopeError::TooManyNetworks);
            }
            let text = range.as_ref().trim();
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| ScopeError::InvalidNetwork(text.chars().take(64).collect()))?;
            nets.push(net.trunc());
        }
        if nets.is_empty() {
            return Err(ScopeError::NoNetworks);
        }
        nets.sort();
        nets.dedup();
        Ok(Self::Only(NetworkSet(nets)))
    }

    /// Whether a client at `addr` is allowed. IPv4-mapped IPv6 addresses
    /// (`::ffff:a.b.c.d`) are judged as the IPv4 address they carry.
    pub fn allows(&self, addr: Option<IpAddr>) -> bool {
        match (self, addr) {
            (Networks::Any, _) => true,
            (Networks::Only(_), None) => false,
            (Networks::Only(nets), Some(addr)) => {
                let addr = addr.to_canonical();
                nets.iter().any(|n| n.contains(&addr))
            }
        }
    }

    /// Whether every address `self` allows is allowed by `other`.
    pub fn is_subset_of(&self, other: &Networks) -> bool {
        match (self, other) {
            (_, Networks::Any) => true,
            (Networks::Any, Networks::Only(_)) => false,
            (Networks::Only(mine), Networks::Only(theirs)) => {
                mine.iter().all(|m| theirs.iter().any(|t| t.contains(m)))
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum NetworksSpec {
    Any,
    Only(Vec<String>),
}

impl TryFrom<NetworksSpec> for Networks {
    type Error = ScopeError;
    fn try_from(spec: NetworksSpec) -> Result<Self, ScopeError> {
        match spec {
            NetworksSpec::Any => Ok(Networks::Any),
            NetworksSpec::Only(list) => Networks::only(list),
        }
    }
}

impl From<Networks> for NetworksSpec {
    fn from(networks: Networks) -> Self {
        match networks {
            Networks::Any => NetworksSpec::Any,
            Networks::Only(nets) => {
                NetworksSpec::Only(nets.iter().map(ToString::to_string).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn ranges_allow_their_addresses_only() {
        let n = Networks::only(["10.1.0.0/16", "2001:db8::/32", "192.0.2.9"]).unwrap();
        assert!(n.allows(ip("10.1.200.3")));
        assert!(!n.allows(ip("10.2.0.1")));
        assert!(n.allows(ip("2001:db8::1")));
        assert!(!n.allows(ip("2001:db9::1")));
        assert!(n.allows(ip("192.0.2.9")));
        assert!(!n.allows(ip("192.0.2.10")));
        assert!(n.allows(ip("::ffff:10.1.2.3")));
        assert!(!n.allows(None));
        assert!(Networks::Any.allows(None));
    }

    #[test]
    fn bad_ranges_are_typed_errors() {
        assert_eq!(
            Networks::only(Vec::<String>::new()),
            Err(ScopeError::NoNetworks)
        );
        assert!(matches!(
            Networks::only(["10.0.0.0/33"]),
            Err(ScopeError::InvalidNetwork(_))
        ));
        assert!(matches!(
            Networks::only(["example.com"]),
            Err(ScopeError::InvalidNetwork(_))
        ));
        let many: Vec<String> = (0..=Networks::MAX_NETWORKS)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        assert_eq!(Networks::only(many), Err(ScopeError::TooManyNetworks));
    }

    #[test]
    fn subsets() {
        let wide = Networks::only(["10.0.0.0/8"]).unwrap();
        let narrow = Networks::only(["10.1.0.0/16"]).unwrap();
        assert!(narrow.is_subset_of(&wide));
        assert!(!wide.is_subset_of(&narrow));
        assert!(wide.is_subset_of(&Networks::Any));
        assert!(!Networks::Any.is_subset_of(&wide));
    }

    #[test]
    fn serde_round_trip() {
        let n = Networks::only(["10.1.2.3/16"]).unwrap();
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, r#"{"only":["10.1.0.0/16"]}"#);
        assert_eq!(serde_json::from_str::<Networks>(&json).unwrap(), n);
        assert!(serde_json::from_str::<Networks>(r#"{"only":[]}"#).is_err());
    }
}
