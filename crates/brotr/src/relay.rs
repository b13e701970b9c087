//! Relays: their ids, networks, and the one normal form of a relay URL.

use std::fmt;
use std::str::FromStr;

use nostr::{RelayUrl, Url};
use serde::{Serialize, Serializer};

use crate::error::InvalidRelayUrl;

/// The id of a relay in the archive (`relays.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelayId(pub i32);

impl RelayId {
    /// The number the database uses.
    #[must_use]
    pub fn get(self) -> i32 {
        self.0
    }
}

impl fmt::Display for RelayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a relay is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Network {
    /// The public internet.
    Clearnet,
    /// A Tor hidden service: the host ends with `.onion`.
    Tor,
}

impl Network {
    /// The name the database stores: `clearnet` or `tor`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clearnet => "clearnet",
            Self::Tor => "tor",
        }
    }

    /// The network of a relay whose host is `host`: [`Network::Tor`] for a
    /// `.onion` host, [`Network::Clearnet`] otherwise.
    #[must_use]
    pub fn of_host(host: &str) -> Self {
        let host = host.trim_end_matches('.');
        let is_onion = host.len() > ".onion".len()
            && host
                .get(host.len() - ".onion".len()..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(".onion"));
        if is_onion {
            Self::Tor
        } else {
            Self::Clearnet
        }
    }

    /// The network of a URL that may not even parse: its host is taken as
    /// what lies between `://` (or the start) and the first `/`, `?` or `#`,
    /// without user information and port. Used when relay validation is
    /// off.
    #[must_use]
    pub fn of_url_text(url: &str) -> Self {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = if host_port.starts_with('[') {
            host_port
        } else {
            host_port.split(':').next().unwrap_or_default()
        };
        Self::of_host(host.trim())
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As its name: `"clearnet"` or `"tor"`.
impl Serialize for Network {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl FromStr for Network {
    type Err = UnknownNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "clearnet" => Ok(Self::Clearnet),
            "tor" => Ok(Self::Tor),
            other => Err(UnknownNetwork(other.to_owned())),
        }
    }
}

/// A network name other than `clearnet` or `tor`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a known network (clearnet or tor)")]
pub struct UnknownNetwork(pub String);

/// A relay URL in the one form the archive stores: what
/// [`validate_relay_url`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelayUrlNormalized {
    url: String,
    network: Network,
    relay_url: RelayUrl,
}

impl RelayUrlNormalized {
    /// The normalised URL, such as `wss://relay.example.com/nostr`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// How the relay is reached, from its host.
    #[must_use]
    pub fn network(&self) -> Network {
        self.network
    }

    /// The URL as a `nostr` relay URL, to connect with.
    #[must_use]
    pub fn relay_url(&self) -> &RelayUrl {
        &self.relay_url
    }
}

impl fmt::Display for RelayUrlNormalized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// Checks a relay URL with [`nostr::RelayUrl::parse`] and brings it to the
/// one form the archive stores, so that one relay gets one row:
///
/// - the scheme is `ws` or `wss` (anything else is refused), in lowercase;
/// - the host is in lowercase (international names in punycode), and
///   required;
/// - the default port (80 for `ws`, 443 for `wss`) is dropped;
/// - user information, query and fragment are dropped;
/// - trailing slashes are dropped, so `wss://relay.example/` and
///   `wss://relay.example` are the same relay; the rest of the path is kept
///   as written (percent-encoded).
///
/// The [`Network`] comes from the host: `.onion` is [`Network::Tor`].
///
/// ```
/// use bigbrotr_brotr::{validate_relay_url, Network};
///
/// let url = validate_relay_url(" WSS://Relay.Example.COM:443/nostr/?x=1#top ")?;
/// assert_eq!(url.as_str(), "wss://relay.example.com/nostr");
/// assert_eq!(url.network(), Network::Clearnet);
/// # Ok::<(), bigbrotr_brotr::InvalidRelayUrl>(())
/// ```
pub fn validate_relay_url(url: &str) -> Result<RelayUrlNormalized, InvalidRelayUrl> {
    let parsed = RelayUrl::parse(url.trim()).map_err(|source| InvalidRelayUrl::Parse { source })?;
    let mut url: Url = parsed.into();
    if url.host_str().is_none_or(str::is_empty) {
        return Err(InvalidRelayUrl::MissingHost);
    }
    // These cannot fail on a URL with a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    let network = Network::of_host(url.host_str().unwrap_or_default());
    let text = url.as_str().trim_end_matches('/').to_owned();
    let relay_url = RelayUrl::parse(&text).map_err(|source| InvalidRelayUrl::Parse { source })?;
    Ok(RelayUrlNormalized {
        url: text,
        network,
        relay_url,
    })
}

/// A relay as the archive records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// Its id.
    pub id: RelayId,
    /// Its URL, as stored.
    pub url: String,
    /// How it is reached.
    pub network: Network,
    /// When it was first recorded (Unix seconds).
    pub inserted_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(url: &str) -> String {
        validate_relay_url(url)
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .as_str()
            .to_owned()
    }

    #[test]
    fn a_clean_url_stays_as_it_is() {
        assert_eq!(normal("wss://relay.damus.io"), "wss://relay.damus.io");
        assert_eq!(normal("ws://127.0.0.1:7777"), "ws://127.0.0.1:7777");
        assert_eq!(
            normal("wss://relay.example.com/nostr"),
            "wss://relay.example.com/nostr"
        );
    }

    #[test]
    fn scheme_and_host_are_lowercased_and_whitespace_trimmed() {
        assert_eq!(normal("  WSS://Relay.Damus.IO  "), "wss://relay.damus.io");
    }

    #[test]
    fn default_ports_are_dropped_and_others_kept() {
        assert_eq!(normal("wss://relay.example:443"), "wss://relay.example");
        assert_eq!(normal("ws://relay.example:80"), "ws://relay.example");
        assert_eq!(normal("wss://relay.example:80"), "wss://relay.example:80");
        assert_eq!(normal("ws://relay.example:443"), "ws://relay.example:443");
    }

    #[test]
    fn trailing_slashes_are_dropped() {
        assert_eq!(normal("wss://relay.example/"), "wss://relay.example");
        assert_eq!(normal("wss://relay.example//"), "wss://relay.example");
        assert_eq!(
            normal("wss://relay.example/a/b/"),
            "wss://relay.example/a/b"
        );
    }

    #[test]
    fn query_fragment_and_user_information_are_dropped() {
        assert_eq!(
            normal("wss://user:secret@relay.example/path?token=1#frag"),
            "wss://relay.example/path"
        );
        assert_eq!(normal("wss://relay.example/?"), "wss://relay.example");
        assert_eq!(normal("wss://relay.example#"), "wss://relay.example");
    }

    #[test]
    fn international_hosts_become_punycode() {
        assert_eq!(
            normal("wss://bücher.example"),
            "wss://xn--bcher-kva.example"
        );
    }

    #[test]
    fn ip_hosts_are_kept() {
        assert_eq!(normal("ws://[::1]:7000/"), "ws://[::1]:7000");
        assert_eq!(normal("ws://10.0.0.1"), "ws://10.0.0.1");
    }

    #[test]
    fn equal_relays_written_differently_normalise_alike() {
        let forms = [
            "wss://relay.example",
            "wss://RELAY.example/",
            "wss://relay.example:443",
            "wss://relay.example/?a=b",
            "wss://u@relay.example#x",
        ];
        for form in forms {
            assert_eq!(normal(form), "wss://relay.example", "{form}");
        }
    }

    #[test]
    fn other_schemes_and_non_urls_are_refused() {
        for url in [
            "https://relay.example",
            "http://relay.example",
            "relay.example",
            "",
            "wss://",
            "wss://a.example://b",
            "not a url",
        ] {
            assert!(
                matches!(validate_relay_url(url), Err(InvalidRelayUrl::Parse { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn onion_hosts_are_tor_and_the_rest_clearnet() {
        let tor = "ws://2jsnlhfnelig5acq6iacydmzdbdmg7xwunm4xl6qwbvzacw4lwrjmlyd.onion";
        let url = validate_relay_url(tor).unwrap();
        assert_eq!(url.network(), Network::Tor);
        assert_eq!(url.as_str(), tor);
        assert_eq!(
            validate_relay_url("wss://ONION.example").unwrap().network(),
            Network::Clearnet
        );
        assert_eq!(
            validate_relay_url("wss://notonion").unwrap().network(),
            Network::Clearnet
        );
    }

    #[test]
    fn the_normalised_url_is_a_nostr_relay_url_of_the_same_text() {
        let url = validate_relay_url("wss://Relay.Example/").unwrap();
        assert_eq!(url.relay_url().as_str(), url.as_str());
        assert_eq!(url.to_string(), "wss://relay.example");
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for url in [
            "wss://relay.example/a/",
            "ws://x.onion:9000/",
            "wss://bücher.example",
        ] {
            let once = normal(url);
            assert_eq!(normal(&once), once);
        }
    }

    #[test]
    fn the_network_of_unparsed_text_looks_at_the_host_only() {
        assert_eq!(Network::of_url_text("ws://abc.onion:80/x"), Network::Tor);
        assert_eq!(Network::of_url_text("ws://u:p@abc.ONION/"), Network::Tor);
        assert_eq!(
            Network::of_url_text("wss://relay.example/abc.onion"),
            Network::Clearnet
        );
        assert_eq!(Network::of_url_text("abc.onion"), Network::Tor);
        assert_eq!(Network::of_url_text(""), Network::Clearnet);
    }

    #[test]
    fn a_network_serializes_as_its_name() {
        assert_eq!(
            serde_json::to_string(&[Network::Clearnet, Network::Tor]).unwrap(),
            r#"["clearnet","tor"]"#
        );
    }

    #[test]
    fn network_names_round_trip_and_unknown_ones_are_refused() {
        for network in [Network::Clearnet, Network::Tor] {
            assert_eq!(network.as_str().parse::<Network>(), Ok(network));
        }
        assert_eq!(
            "i2p".parse::<Network>(),
            Err(UnknownNetwork("i2p".to_owned()))
        );
    }
}
