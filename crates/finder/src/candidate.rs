//! Candidate relay URLs: where one came from ([`Source`]), the checks it must
//! pass ([`check_url`]) and why it may be refused ([`Rejection`]).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use bigbrotr_brotr::{validate_relay_url, InvalidRelayUrl, RelayUrlNormalized};
use bigbrotr_utils::EgressPolicy;
use nostr::types::url::{Error as UrlError, Host, Url};

/// Where a candidate relay URL was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// An `r` tag of a NIP-65 relay list (kind 10002).
    RelayList,
    /// A key of the relay map in the content of a contact list (kind 3).
    ContactList,
    /// The relay hint of an `e` or `p` tag (third element), any kind.
    Hint,
    /// The `d` tag of a NIP-66 relay discovery event (kind 30166).
    Nip66,
    /// An element of an HTTP source's list.
    Http,
}

impl Source {
    /// Every source, in the order reports list them.
    pub const ALL: [Self; 5] = [
        Self::RelayList,
        Self::ContactList,
        Self::Hint,
        Self::Nip66,
        Self::Http,
    ];

    /// The name used in the database and in logs: `nip65`, `contacts`,
    /// `hint`, `nip66` or `http`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RelayList => "nip65",
            Self::ContactList => "contacts",
            Self::Hint => "hint",
            Self::Nip66 => "nip66",
            Self::Http => "http",
        }
    }

    /// The source named `name` (see [`as_str`](Self::as_str)).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|source| source.as_str() == name)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a candidate was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    /// Not a URL at all (or several `://`).
    NotAUrl,
    /// A URL whose scheme is not `ws` or `wss`.
    UnsupportedScheme,
    /// A URL without a host.
    MissingHost,
    /// Longer than `max_url_bytes`, as written or once normalised.
    TooLong,
    /// An IP address (or a `localhost` name) the egress policy denies:
    /// loopback, private, link-local, documentation, … (see
    /// `config/core/egress.yaml`).
    LocalAddress,
    /// An element of an HTTP source's list that is not a string.
    NotAString,
    /// A contact list (kind 3) whose content is neither empty nor a JSON
    /// object: counted once per event, not per URL.
    MalformedContactList,
    /// A URL past the first `max_urls_per_event` of its event: an event
    /// listing thousands of relays is a flood, not a relay list.
    TooManyInEvent,
    /// A new relay past the first `max_new_relays_per_domain` of its domain
    /// in one cycle (see [`relay_domain`]): a wildcard DNS domain can name
    /// any number of distinct relays. Counted among `accepted` and
    /// `distinct` too, since it passed the URL checks.
    TooManyForDomain,
}

impl Rejection {
    /// The name used in logs and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAUrl => "not_a_url",
            Self::UnsupportedScheme => "unsupported_scheme",
            Self::MissingHost => "missing_host",
            Self::TooLong => "too_long",
            Self::LocalAddress => "local_address",
            Self::NotAString => "not_a_string",
            Self::MalformedContactList => "malformed_contact_list",
            Self::TooManyInEvent => "too_many_in_event",
            Self::TooManyForDomain => "too_many_for_domain",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a candidate URL must satisfy besides being a relay URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRules {
    /// Longest URL accepted, in bytes, as written (trimmed) and normalised.
    pub max_bytes: usize,
    /// The egress policy: a URL whose host is an IP address (or a
    /// `localhost` name) the policy denies is refused at once, since no
    /// service could ever connect to it. Names are not resolved here; the
    /// policy is enforced again, on the resolved addresses, whenever a
    /// service connects.
    pub egress: EgressPolicy,
}

impl UrlRules {
    /// Rules with `max_bytes` and the strict egress policy.
    #[must_use]
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            egress: EgressPolicy::strict(),
        }
    }
}

/// Checks a candidate and brings it to the archive's normal form with
/// [`validate_relay_url`] (which parses it with `nostr::RelayUrl`).
///
/// ```
/// use bigbrotr_finder::{check_url, Rejection, UrlRules};
///
/// let rules = UrlRules::new(255);
/// assert_eq!(check_url("WSS://Relay.Example:443/", &rules).unwrap().as_str(), "wss://relay.example");
/// assert_eq!(check_url("https://relay.example", &rules), Err(Rejection::UnsupportedScheme));
/// assert_eq!(check_url("ws://127.0.0.1:7777", &rules), Err(Rejection::LocalAddress));
/// ```
pub fn check_url(url: &str, rules: &UrlRules) -> Result<RelayUrlNormalized, Rejection> {
    if url.trim().len() > rules.max_bytes {
        return Err(Rejection::TooLong);
    }
    let normal = validate_relay_url(url).map_err(|error| match error {
        InvalidRelayUrl::Parse {
            source: UrlError::UnsupportedScheme,
        } => Rejection::UnsupportedScheme,
        InvalidRelayUrl::MissingHost => Rejection::MissingHost,
        _ => Rejection::NotAUrl,
    })?;
    if normal.as_str().len() > rules.max_bytes {
        return Err(Rejection::TooLong);
    }
    let parsed = Url::parse(normal.as_str()).map_err(|_| Rejection::NotAUrl)?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    let Some(host) = parsed.host() else {
        return Err(Rejection::MissingHost);
    };
    if local_addresses(&host, port)
        .into_iter()
        .any(|addr| rules.egress.check(addr).is_err())
    {
        return Err(Rejection::LocalAddress);
    }
    Ok(normal)
}

/// The addresses a host stands for without any resolution: an IP address
/// itself, and loopback for `localhost` and its subdomains (which resolve
/// there by definition). Any other name gives none.
fn local_addresses(host: &Host<&str>, port: u16) -> Vec<SocketAddr> {
    match host {
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                vec![
                    SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
                    SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
                ]
            } else {
                Vec::new()
            }
        }
        Host::Ipv4(ip) => vec![SocketAddr::new((*ip).into(), port)],
        Host::Ipv6(ip) => vec![SocketAddr::new((*ip).into(), port)],
    }
}

/// The domain a relay's new URLs are counted under, per cycle: the last two
/// labels of its host name (`a1.evil.example` → `evil.example`), or its
/// whole address when the host is an IP address; `None` for a URL without
/// a host.
///
/// Two labels is the registrable domain under most suffixes; under
/// multi-label public suffixes (`co.uk`) unrelated sites share one count,
/// which only slows their discovery down to the per-cycle cap.
///
/// ```
/// use bigbrotr_finder::relay_domain;
///
/// assert_eq!(relay_domain("wss://a1.relays.Evil.Example./x").as_deref(), Some("evil.example"));
/// assert_eq!(relay_domain("ws://relay.example:7777").as_deref(), Some("relay.example"));
/// assert_eq!(relay_domain("ws://203.0.113.7:7777").as_deref(), Some("203.0.113.7"));
/// ```
#[must_use]
pub fn relay_domain(url: &str) -> Option<String> {
    let parsed = Url::parse(url).ok()?;
    match parsed.host()? {
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let mut labels = name.rsplitn(3, '.');
            let last = labels.next()?;
            Some(match labels.next() {
                Some(second) => format!("{second}.{last}"),
                None => last.to_owned(),
            })
        }
        Host::Ipv4(ip) => Some(ip.to_string()),
        Host::Ipv6(ip) => Some(ip.to_string()),
    }
}

/// The relay URLs of a contact list's content (kind 3): the keys of its JSON
/// object, as written. `None` when the content is not a JSON object.
///
/// ```
/// use bigbrotr_finder::contact_list_relays;
///
/// let content = r#"{"wss://relay.example": {"read": true, "write": true}}"#;
/// assert_eq!(contact_list_relays(content), Some(vec!["wss://relay.example".to_owned()]));
/// assert_eq!(contact_list_relays("not json"), None);
/// ```
#[must_use]
pub fn contact_list_relays(content: &str) -> Option<Vec<String>> {
    match serde_json::from_str::<serde_json::Value>(content) {
        Ok(serde_json::Value::Object(map)) => Some(map.into_iter().map(|(url, _)| url).collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> UrlRules {
        UrlRules::new(64)
    }

    #[test]
    fn relay_urls_are_normalised() {
        for (url, normal) in [
            ("wss://relay.example", "wss://relay.example"),
            (" WSS://Relay.Example:443/ ", "wss://relay.example"),
            ("ws://relay.example:80/nostr/", "ws://relay.example/nostr"),
            ("wss://user@relay.example/?q=1#x", "wss://relay.example"),
        ] {
            assert_eq!(
                check_url(url, &rules()).map(|u| u.to_string()),
                Ok(normal.to_owned()),
                "{url}"
            );
        }
    }

    #[test]
    fn each_refusal_has_its_reason() {
        let long = format!("wss://relay.example/{}", "a".repeat(60));
        for (url, reason) in [
            ("https://relay.example", Rejection::UnsupportedScheme),
            ("ftp://relay.example", Rejection::UnsupportedScheme),
            ("relay.example", Rejection::NotAUrl),
            ("not a url", Rejection::NotAUrl),
            ("", Rejection::NotAUrl),
            ("wss://a.example://b", Rejection::NotAUrl),
            (long.as_str(), Rejection::TooLong),
            ("ws://127.0.0.1:7777", Rejection::LocalAddress),
            ("ws://localhost:7777", Rejection::LocalAddress),
            ("ws://relay.LOCALHOST", Rejection::LocalAddress),
            ("ws://192.168.1.10", Rejection::LocalAddress),
            ("ws://10.1.2.3", Rejection::LocalAddress),
            ("ws://0.0.0.0", Rejection::LocalAddress),
            ("ws://[::1]:7000", Rejection::LocalAddress),
            ("ws://[fd00::1]", Rejection::LocalAddress),
            ("ws://[fe80::1]", Rejection::LocalAddress),
            ("ws://[::ffff:127.0.0.1]", Rejection::LocalAddress),
            ("ws://100.64.0.1", Rejection::LocalAddress),
            ("ws://198.51.100.7", Rejection::LocalAddress),
            ("ws://[2001:db8::1]:7000", Rejection::LocalAddress),
            ("ws://[2002:a00:1::1]", Rejection::LocalAddress),
        ] {
            assert_eq!(
                check_url(url, &rules()).map(|u| u.to_string()),
                Err(reason),
                "{url}"
            );
        }
    }

    #[test]
    fn public_addresses_pass_and_local_ones_pass_when_allowed() {
        for url in [
            "ws://8.8.8.8",
            "ws://[2606:4700::1]:7000",
            "wss://localhost.example",
            "wss://10.0.0.5.nip.io",
        ] {
            assert!(check_url(url, &rules()).is_ok(), "{url}");
        }
        let exact = UrlRules {
            egress: EgressPolicy::strict().allowing("127.0.0.1:7777".parse().unwrap()),
            ..rules()
        };
        assert_eq!(
            check_url("ws://127.0.0.1:7777/", &exact).map(|u| u.to_string()),
            Ok("ws://127.0.0.1:7777".to_owned())
        );
        assert_eq!(
            check_url("ws://127.0.0.1:7778/", &exact).map(|u| u.to_string()),
            Err(Rejection::LocalAddress)
        );
        // localhost stands for both loopback addresses: both must be allowed.
        assert_eq!(
            check_url("ws://localhost:7777/", &exact).map(|_| ()),
            Err(Rejection::LocalAddress)
        );
        let private = UrlRules {
            egress: EgressPolicy::new(true, Vec::new()),
            ..rules()
        };
        for url in ["ws://localhost:7777", "ws://10.0.0.5", "ws://[fd00::1]"] {
            assert!(check_url(url, &private).is_ok(), "{url}");
        }
        assert_eq!(
            check_url("ws://192.0.2.1", &private).map(|_| ()),
            Err(Rejection::LocalAddress)
        );
    }

    #[test]
    fn a_normal_form_longer_than_the_limit_is_too_long() {
        // Punycode makes the host longer than it was written.
        let rules = UrlRules::new(20);
        assert_eq!(
            check_url("wss://bücherbü.example", &rules).map(|_| ()),
            Err(Rejection::TooLong)
        );
    }

    #[test]
    fn a_contact_list_gives_the_keys_of_its_relay_map() {
        let content = r#"{"wss://a.example/": {"read": true}, "https://b.example": {}, "": 1}"#;
        let mut relays = contact_list_relays(content).expect("an object");
        relays.sort();
        assert_eq!(relays, ["", "https://b.example", "wss://a.example/"]);
        assert_eq!(contact_list_relays("{}"), Some(Vec::new()));
        for content in ["[]", "\"wss://a.example\"", "{", "null"] {
            assert_eq!(contact_list_relays(content), None, "{content}");
        }
    }

    #[test]
    fn relays_are_counted_under_the_last_two_labels_or_their_address() {
        for (url, domain) in [
            ("wss://a1.evil.example", Some("evil.example")),
            ("wss://a2.evil.example/path", Some("evil.example")),
            ("wss://EVIL.example.", Some("evil.example")),
            ("wss://localhost", Some("localhost")),
            ("wss://x.onion", Some("x.onion")),
            ("ws://[2001:db8::1]:7000", Some("2001:db8::1")),
            ("ws://8.8.8.8", Some("8.8.8.8")),
            ("not a url", None),
        ] {
            assert_eq!(relay_domain(url).as_deref(), domain, "{url}");
        }
    }

    #[test]
    fn source_names_round_trip() {
        for source in Source::ALL {
            assert_eq!(Source::from_name(source.as_str()), Some(source));
        }
        assert_eq!(Source::from_name("other"), None);
    }
}
