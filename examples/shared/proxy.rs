//! The client's address: the TCP peer's, or, when the peer is a trusted proxy, the one
//! `X-Forwarded-For` names. Token network scopes (and anything else keyed on the client)
//! see this address.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed (`--trusted-proxy`), put in the
/// router as an `Extension`; none by default.
#[derive(Clone, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// These ranges.
    pub fn new(ranges: Vec<IpNet>) -> Self {
        Self(ranges.into())
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client of a request from `peer`: the peer itself unless it is a trusted
    /// proxy; else `X-Forwarded-For` read from the right (each proxy appends the address
    /// it was called from), the first address no trusted proxy holds. Anything to the left
    /// of that is whatever the client chose to send, and is never looked at. A hop that is
    /// not an address ends the walk at the last trusted one.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer;
        if !self.trusts(peer) {
            return client;
        }
        // Repeated headers are one list, in order.
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(text) = value.to_str() else {
                return client;
            };
            for hop in text.rsplit(',') {
                let Ok(addr) = hop.trim().parse::<IpAddr>() else {
                    return client;
                };
                client = addr;
                if !self.trusts(addr) {
                    return client;
                }
            }
        }
        client
    }
}

/// Parses `--trusted-proxy`: a CIDR range, or one address.
pub fn parse_range(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is neither a CIDR range nor an address"))
}
