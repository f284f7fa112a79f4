//! The client's address for rate limits: the TCP peer, or the address a
//! trusted reverse proxy put in `X-Forwarded-For`.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

use crate::config::SettingError;
use crate::state::WebState;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The reverse proxies whose `X-Forwarded-For` entries are believed. Empty by
/// default: the header is then ignored, since any client can send it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    /// Parses a comma-separated list of addresses and networks, such as
    /// `127.0.0.1, 10.0.0.0/8, ::1`.
    pub fn parse(text: &str) -> Result<Self, SettingError> {
        let mut networks = Vec::new();
        for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let network = match item.parse::<IpNet>() {
                Ok(network) => network,
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| SettingError::InvalidTrustedProxy { text: item.to_owned() })?,
            };
            networks.push(network);
        }
        Ok(Self(networks))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }

    /// True when `address` is in one of the networks.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|network| network.contains(&address))
    }
}

/// The client's address as [`client_ip`] finds it; `None` when the server was
/// started without `into_make_service_with_connect_info::<SocketAddr>()`.
pub(crate) struct ClientAddress(pub Option<IpAddr>);

impl FromRequestParts<WebState> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
        Ok(Self(peer.map(|peer| state.client_ip(peer, &parts.headers))))
    }
}

/// Returns the client's address. When the peer is a trusted proxy, that is the
/// right-most `X-Forwarded-For` entry that is not a trusted proxy itself: the
/// entries left of it were written by the client or by untrusted proxies,
/// so they may be forged. When every entry is trusted, the left-most one
/// is the client. An entry that is not an address ends the walk at the last
/// address before it, which a trusted hop wrote.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if trusted.is_empty() || !trusted.contains(client) {
        return client;
    }

    let entries: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for entry in entries.iter().rev() {
        let Some(address) = parse_entry(entry) else {
            return client;
        };
        client = address;
        if !trusted.contains(address) {
            return address;
        }
    }
    client
}

/// Reads `192.0.2.1`, `2001:db8::1`, `192.0.2.1:4711` or `[2001:db8::1]:4711`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let address = entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|socket| socket.ip()))?;
    Some(address.to_canonical())
}

/// Returns the key a per-address limit counts under: the IPv4 address, or the
/// /64 network of an IPv6 address, because one customer's connection usually
/// gets a whole /64 and could otherwise take a fresh address for every request.
pub fn rate_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(&X_FORWARDED_FOR, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn untrusted_peer_ignores_forwarded_for() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();

        let client = client_ip(ip("198.51.100.7"), &forwarded(&["203.0.113.9"]), &trusted);

        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn no_trusted_proxies_ignores_forwarded_for() {
        let client = client_ip(ip("127.0.0.1"), &forwarded(&["203.0.113.9"]), &TrustedProxies::default());

        assert_eq!(client, ip("127.0.0.1"));
    }

    #[test]
    fn trusted_peer_takes_right_most_untrusted_entry() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        let headers = forwarded(&["1.1.1.1, 203.0.113.9", "10.1.2.3"]);

        let client = client_ip(ip("127.0.0.1"), &headers, &trusted);

        assert_eq!(client, ip("203.0.113.9"), "1.1.1.1 was written by the client and may be forged");
    }

    #[test]
    fn all_trusted_entries_take_the_left_most() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();

        let client = client_ip(ip("10.0.0.1"), &forwarded(&["10.9.9.9, 10.0.0.2"]), &trusted);

        assert_eq!(client, ip("10.9.9.9"));
    }

    #[test]
    fn garbage_entry_stops_at_the_last_trusted_hop() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();

        let client = client_ip(ip("10.0.0.1"), &forwarded(&["203.0.113.9, unknown, 10.0.0.2"]), &trusted);

        assert_eq!(client, ip("10.0.0.2"));
    }

    #[test]
    fn entries_with_ports_and_mapped_addresses_are_read() {
        let trusted = TrustedProxies::parse("::1").unwrap();

        assert_eq!(client_ip(ip("::1"), &forwarded(&["[2001:db8::5]:4711"]), &trusted), ip("2001:db8::5"));
        assert_eq!(client_ip(ip("::1"), &forwarded(&["203.0.113.9:80"]), &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("::ffff:127.0.0.1"), &HeaderMap::new(), &TrustedProxies::default()), ip("127.0.0.1"));
    }

    #[test]
    fn trusted_proxies_parse_rejects_names() {
        let error = TrustedProxies::parse("10.0.0.1, proxy.internal").unwrap_err();

        assert_eq!(error, SettingError::InvalidTrustedProxy { text: "proxy.internal".to_owned() });
    }

    #[test]
    fn rate_key_groups_ipv6_by_64() {
        assert_eq!(rate_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(rate_key(ip("203.0.113.9")), ip("203.0.113.9"));
        assert_eq!(rate_key(ip("::ffff:203.0.113.9")), ip("203.0.113.9"));
    }
}
