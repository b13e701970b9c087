//! Sections shared by the service files under `config/services/`:
//! `service`, `loop` and `nostr`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::validate::{Problems, Validate};

/// Identity of a service and whether it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Name shown in logs and metrics; letters, digits, `-` and `_`. Empty
    /// (the default) means the service's own name.
    pub name: String,
    /// Whether the service runs at all. Default `true`.
    pub enabled: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            enabled: true,
        }
    }
}

impl Validate for ServiceConfig {
    fn validate(&self, problems: &mut Problems) {
        if !self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problems.push("name", "may only contain letters, digits, `-` and `_`");
        }
    }
}

/// How often a service runs its cycle and when it gives up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoopConfig {
    /// Time from the start of one cycle to the start of the next. Default
    /// 60 s.
    #[serde(with = "crate::duration")]
    #[schemars(with = "crate::duration::Seconds")]
    pub interval: Duration,
    /// Cycles to run before stopping; 0 (the default) runs forever.
    pub max_iterations: u64,
    /// Wait after a failed cycle before the next one. Default 10 s.
    #[serde(with = "crate::duration")]
    #[schemars(with = "crate::duration::Seconds")]
    pub error_retry_delay: Duration,
    /// Failed cycles in a row after which the service stops; 0 never stops.
    /// Default 5.
    pub max_consecutive_errors: u32,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            max_iterations: 0,
            error_retry_delay: Duration::from_secs(10),
            max_consecutive_errors: 5,
        }
    }
}

impl Validate for LoopConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.interval.is_zero() {
            problems.push("interval", "must be > 0");
        }
    }
}

/// How a service reaches Nostr relays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NostrConfig {
    /// SOCKS5 proxy for relays that need one (`.onion`), as `host:port`,
    /// `[ipv6]:port` or `socks5://host:port`, e.g. `127.0.0.1:9050` for Tor.
    /// Without one, `.onion` relays are skipped. Default none.
    pub socks5_proxy: Option<String>,
    /// Longest wait for a relay to connect or answer. Default 10 s.
    #[serde(with = "crate::duration")]
    #[schemars(with = "crate::duration::Seconds")]
    pub timeout: Duration,
}

impl Default for NostrConfig {
    fn default() -> Self {
        Self {
            socks5_proxy: None,
            timeout: Duration::from_secs(10),
        }
    }
}

impl NostrConfig {
    /// The host and port of the SOCKS5 proxy; `None` when no proxy is set
    /// or the setting is invalid (which validation reports).
    #[must_use]
    pub fn socks5_host_port(&self) -> Option<(&str, u16)> {
        parse_socks5(self.socks5_proxy.as_deref()?).ok()
    }
}

impl Validate for NostrConfig {
    fn validate(&self, problems: &mut Problems) {
        if let Some(proxy) = &self.socks5_proxy {
            if let Err(reason) = parse_socks5(proxy) {
                problems.push(
                    "socks5_proxy",
                    format!("{reason}; expected `host:port` or `socks5://host:port`"),
                );
            }
        }
        if self.timeout.is_zero() {
            problems.push("timeout", "must be > 0");
        }
    }
}

/// Splits a proxy address into host and port.
fn parse_socks5(proxy: &str) -> Result<(&str, u16), &'static str> {
    let address = ["socks5://", "socks5h://"]
        .iter()
        .find_map(|scheme| proxy.strip_prefix(scheme))
        .unwrap_or(proxy);
    if address.contains("://") {
        return Err("only the socks5:// scheme is supported");
    }
    let (host, port) = if let Some(bracketed) = address.strip_prefix('[') {
        bracketed
            .split_once("]:")
            .ok_or("an IPv6 host needs `[address]:port`")?
    } else {
        let (host, port) = address.rsplit_once(':').ok_or("the port is missing")?;
        if host.contains(':') {
            return Err("an IPv6 host must be written in brackets");
        }
        (host, port)
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "/@[]".contains(c)) {
        return Err("the host is missing or invalid");
    }
    match port.parse::<u16>() {
        Ok(port) if port != 0 => Ok((host, port)),
        _ => Err("the port must be a number from 1 to 65535"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Problem;

    fn problems_of<V: Validate>(section: &str, value: &V) -> Vec<Problem> {
        let mut problems = Problems::new();
        problems.section(section, value);
        problems.into_vec()
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(
            ServiceConfig::default(),
            ServiceConfig {
                name: String::new(),
                enabled: true
            }
        );
        assert_eq!(
            LoopConfig::default(),
            LoopConfig {
                interval: Duration::from_secs(60),
                max_iterations: 0,
                error_retry_delay: Duration::from_secs(10),
                max_consecutive_errors: 5,
            }
        );
        assert_eq!(NostrConfig::default().timeout, Duration::from_secs(10));
        assert_eq!(NostrConfig::default().socks5_host_port(), None);
        assert_eq!(problems_of("service", &ServiceConfig::default()), []);
        assert_eq!(problems_of("loop", &LoopConfig::default()), []);
        assert_eq!(problems_of("nostr", &NostrConfig::default()), []);
    }

    #[test]
    fn a_service_name_with_odd_characters_is_reported() {
        let named = |name: &str| ServiceConfig {
            name: name.to_owned(),
            enabled: true,
        };
        assert_eq!(problems_of("service", &named("finder-2_b")), []);
        assert_eq!(
            problems_of("service", &named("my finder")),
            [Problem::new(
                "service.name",
                "may only contain letters, digits, `-` and `_`"
            )]
        );
    }

    #[test]
    fn zero_intervals_and_timeouts_are_reported() {
        let looping = LoopConfig {
            interval: Duration::ZERO,
            ..LoopConfig::default()
        };
        assert_eq!(
            problems_of("loop", &looping),
            [Problem::new("loop.interval", "must be > 0")]
        );
        let nostr = NostrConfig {
            timeout: Duration::ZERO,
            ..NostrConfig::default()
        };
        assert_eq!(
            problems_of("nostr", &nostr),
            [Problem::new("nostr.timeout", "must be > 0")]
        );
    }

    #[test]
    fn proxy_addresses_are_split_into_host_and_port() {
        for (proxy, host, port) in [
            ("127.0.0.1:9050", "127.0.0.1", 9050),
            ("socks5://tor:9050", "tor", 9050),
            ("socks5h://tor:9050", "tor", 9050),
            ("[::1]:9050", "::1", 9050),
            ("socks5://[::1]:1", "::1", 1),
        ] {
            let nostr = NostrConfig {
                socks5_proxy: Some(proxy.to_owned()),
                ..NostrConfig::default()
            };
            assert_eq!(nostr.socks5_host_port(), Some((host, port)), "for {proxy}");
            assert_eq!(problems_of("nostr", &nostr), [], "for {proxy}");
        }
    }

    #[test]
    fn invalid_proxy_addresses_are_reported_with_the_reason() {
        for (proxy, reason) in [
            ("tor", "the port is missing"),
            ("http://tor:9050", "only the socks5:// scheme is supported"),
            ("::1:9050", "an IPv6 host must be written in brackets"),
            ("[::1]9050", "an IPv6 host needs `[address]:port`"),
            (":9050", "the host is missing or invalid"),
            ("a b:9050", "the host is missing or invalid"),
            ("tor:0", "the port must be a number from 1 to 65535"),
            ("tor:70000", "the port must be a number from 1 to 65535"),
            ("tor:x", "the port must be a number from 1 to 65535"),
        ] {
            let nostr = NostrConfig {
                socks5_proxy: Some(proxy.to_owned()),
                ..NostrConfig::default()
            };
            assert_eq!(nostr.socks5_host_port(), None, "for {proxy}");
            assert_eq!(
                problems_of("nostr", &nostr),
                [Problem::new(
                    "nostr.socks5_proxy",
                    format!("{reason}; expected `host:port` or `socks5://host:port`")
                )],
                "for {proxy}"
            );
        }
    }
}
