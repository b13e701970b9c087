//! The file `config/services/relay.yaml` ([`RelayFile`]) and its own
//! section, [`RelayConfig`]: where the relay listens, its limits, and what
//! its NIP-11 document says.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bigbrotr_config::{Problems, Validate};
use serde::{Deserialize, Serialize};

bigbrotr_service_runtime::service_file! {
    /// The file `config/services/relay.yaml`. Its `loop` section is unused:
    /// the relay serves until it is stopped.
    pub struct RelayFile {
        /// Where the relay listens, its limits and its NIP-11 document.
        pub relay: RelayConfig,
    }
}

/// Where the archive relay listens, its limits and its NIP-11 document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Address and port the relay listens on, WebSocket and NIP-11 alike.
    /// Default `127.0.0.1:7447`: only this machine. Put a TLS-terminating
    /// reverse proxy in front to serve `wss://` to the world.
    #[schemars(with = "String", extend("format" = "socket-address"))]
    pub listen: SocketAddr,
    /// Connections served at once; one more is closed as soon as it is
    /// accepted. Default 1000.
    pub max_connections: u32,
    /// Connections served at once from one IP address; one more is closed as
    /// soon as it is accepted. Behind a reverse proxy every client has the
    /// proxy's address: raise it there, and limit per client in the proxy.
    /// Default 20.
    pub max_connections_per_ip: u32,
    /// Largest message a client may send, in bytes; a larger one closes the
    /// connection. Default 65536.
    pub max_message_bytes: u32,
    /// Subscriptions (`REQ` and `NEG-OPEN`) open at once on one connection;
    /// one more is answered `CLOSED` (or `NEG-ERR`). Default 20.
    pub max_subscriptions: u32,
    /// Filters in one `REQ`; more are answered `CLOSED`. Default 10.
    pub max_filters: u32,
    /// Largest `limit` of a filter: a larger one is lowered to it, as NIP-11
    /// says. Default 500.
    pub max_limit: u32,
    /// The `limit` of a filter that gives none. Default 100.
    pub default_limit: u32,
    /// Ids, authors, kinds or values of one tag a filter may list, each; more
    /// are answered `CLOSED`. Default 1000.
    pub max_filter_values: u32,
    /// Longest subscription id, in characters. Default 64.
    pub max_subid_length: u32,
    /// Most events a `NEG-OPEN` may reconcile: a filter matching more is
    /// answered `NEG-ERR` (narrow it with `since`/`until`), so that no
    /// reconciliation holds millions of ids in memory (40 bytes each).
    /// Default 500000.
    pub max_negentropy_events: u32,
    /// Reconciliations open at once over all connections; one more is
    /// answered `NEG-ERR` until one ends. With `max_negentropy_events` it
    /// bounds their memory: 8 × 500000 × 40 bytes, 160 MB, at most by
    /// default. Default 8.
    pub max_negentropy_sessions: u32,
    /// Longest time one query may run in the database (`statement_timeout`
    /// of its transaction); past it the request is answered `CLOSED` (or
    /// `NEG-ERR`, or a `NOTICE` for `COUNT`). Keep it below
    /// `pool.command_timeout`. Default 5 s.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub query_timeout: Duration,
    /// How often the archive is asked for events archived since the last
    /// time, to send to subscriptions after their `EOSE`; one query for all
    /// subscriptions, and none while no subscription waits. Default 1 s.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub live_poll_interval: Duration,
    /// Sightings read by one of those queries at most; more wait for the
    /// next one, which follows at once. Default 2000.
    pub live_batch_size: u32,
    /// A connection that sends nothing (not even a pong) for this long is
    /// closed; the relay pings every third of it. Default 2 min.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub idle_timeout: Duration,
    /// What the NIP-11 document says of this relay.
    pub info: RelayInfo,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 7447)),
            max_connections: 1000,
            max_connections_per_ip: 20,
            max_message_bytes: 65_536,
            max_subscriptions: 20,
            max_filters: 10,
            max_limit: 500,
            default_limit: 100,
            max_filter_values: 1000,
            max_subid_length: 64,
            max_negentropy_events: 500_000,
            max_negentropy_sessions: 8,
            query_timeout: Duration::from_secs(5),
            live_poll_interval: Duration::from_secs(1),
            live_batch_size: 2000,
            idle_timeout: Duration::from_secs(120),
            info: RelayInfo::default(),
        }
    }
}

/// What the NIP-11 document says of this relay, beyond its software,
/// supported NIPs and limits (which the relay fills in itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RelayInfo {
    /// The relay's name. Default `BigBrotr archive`.
    pub name: String,
    /// What the relay serves, for people.
    pub description: String,
    /// Who runs it: an email address or URL; empty for none.
    pub contact: String,
    /// The operator's public key, 64 hex characters; empty for none.
    pub pubkey: String,
    /// URL of an icon; empty for none.
    pub icon: String,
}

impl Default for RelayInfo {
    fn default() -> Self {
        Self {
            name: "BigBrotr archive".to_owned(),
            description: "A read-only archive of the Nostr network: events as signed, from the \
                          relays they were seen on."
                .to_owned(),
            contact: String::new(),
            pubkey: String::new(),
            icon: String::new(),
        }
    }
}

/// The largest value of the counting limits: NIP-11 writes them as 32-bit
/// signed integers.
const MAX_COUNT: u32 = i32::MAX as u32;

impl Validate for RelayConfig {
    fn validate(&self, problems: &mut Problems) {
        let positive = [
            ("max_connections", self.max_connections),
            ("max_connections_per_ip", self.max_connections_per_ip),
            ("max_subscriptions", self.max_subscriptions),
            ("max_filters", self.max_filters),
            ("max_limit", self.max_limit),
            ("max_filter_values", self.max_filter_values),
            ("max_subid_length", self.max_subid_length),
            ("max_negentropy_sessions", self.max_negentropy_sessions),
            ("live_batch_size", self.live_batch_size),
        ];
        for (key, value) in positive {
            if value == 0 || value > MAX_COUNT {
                problems.push(key, "must be > 0 and at most 2147483647");
            }
        }
        if self.max_message_bytes < 1024 || self.max_message_bytes > 16 * 1024 * 1024 {
            problems.push(
                "max_message_bytes",
                "must be at least 1024 and at most 16 MiB",
            );
        }
        if self.default_limit > self.max_limit {
            problems.push("default_limit", "must not exceed max_limit");
        }
        if self.max_connections_per_ip > self.max_connections {
            problems.push("max_connections_per_ip", "must not exceed max_connections");
        }
        if self.max_negentropy_events > MAX_COUNT {
            problems.push("max_negentropy_events", "must be at most 2147483647");
        }
        let bounded = [
            (
                "query_timeout",
                self.query_timeout,
                Duration::from_secs(3600),
            ),
            (
                "live_poll_interval",
                self.live_poll_interval,
                Duration::from_secs(3600),
            ),
            (
                "idle_timeout",
                self.idle_timeout,
                Duration::from_secs(24 * 3600),
            ),
        ];
        for (key, value, max) in bounded {
            if value < Duration::from_millis(10) || value > max {
                problems.push(
                    key,
                    format!("must be at least 10ms and at most {}s", max.as_secs()),
                );
            }
        }
        let pubkey = &self.info.pubkey;
        if !pubkey.is_empty()
            && (pubkey.len() != 64 || !pubkey.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            problems.push("info.pubkey", "must be 64 hex characters, or empty");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bigbrotr_config::{load_str, Env};

    use super::*;

    fn problems_of(file: &RelayFile) -> Vec<String> {
        let mut problems = Problems::new();
        file.validate(&mut problems);
        problems
            .into_vec()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_defaults_listen_on_loopback_port_7447_and_are_valid() {
        let config = RelayConfig::default();
        assert_eq!(config.listen, "127.0.0.1:7447".parse().expect("address"));
        assert_eq!((config.max_limit, config.default_limit), (500, 100));
        assert_eq!(problems_of(&RelayFile::default()), Vec::<String>::new());
    }

    #[test]
    fn a_file_sets_the_address_limits_and_document() {
        let text = "relay:\n  listen: 0.0.0.0:8080\n  max_limit: 1000\n  query_timeout: 2s\n  \
                    info:\n    name: Mine\n    contact: ops@example.com\n";
        let file: RelayFile =
            load_str(text, Path::new("relay.yaml"), &Env::empty()).expect("valid");
        assert_eq!(file.relay.listen, "0.0.0.0:8080".parse().expect("address"));
        assert_eq!(file.relay.max_limit, 1000);
        assert_eq!(file.relay.query_timeout, Duration::from_secs(2));
        assert_eq!(file.relay.info.name, "Mine");
        assert_eq!(file.relay.info.contact, "ops@example.com");
        assert_eq!(
            file.relay.info.description,
            RelayInfo::default().description
        );
    }

    #[test]
    fn an_unknown_key_is_an_error() {
        let error = load_str::<RelayFile>(
            "relay:\n  max_limits: 5\n",
            Path::new("relay.yaml"),
            &Env::empty(),
        )
        .expect_err("invalid");
        assert!(error.to_string().contains("max_limits"), "{error}");
    }

    #[test]
    fn every_invalid_value_is_reported_with_its_path() {
        let mut file = RelayFile::default();
        let relay = &mut file.relay;
        relay.max_connections = 0;
        relay.max_filters = u32::MAX;
        relay.max_message_bytes = 10;
        relay.default_limit = 600;
        relay.max_negentropy_events = u32::MAX;
        relay.query_timeout = Duration::ZERO;
        relay.idle_timeout = Duration::from_secs(2 * 24 * 3600);
        relay.info.pubkey = "abc".to_owned();
        assert_eq!(
            problems_of(&file),
            [
                "relay.max_connections: must be > 0 and at most 2147483647",
                "relay.max_filters: must be > 0 and at most 2147483647",
                "relay.max_message_bytes: must be at least 1024 and at most 16 MiB",
                "relay.default_limit: must not exceed max_limit",
                "relay.max_connections_per_ip: must not exceed max_connections",
                "relay.max_negentropy_events: must be at most 2147483647",
                "relay.query_timeout: must be at least 10ms and at most 3600s",
                "relay.idle_timeout: must be at least 10ms and at most 86400s",
                "relay.info.pubkey: must be 64 hex characters, or empty",
            ]
        );
    }
}
