//! The file `config/services/monitor.yaml` ([`MonitorFile`]) and its own
//! section, [`MonitorConfig`].

use std::time::Duration;

use bigbrotr_config::{Problems, Validate};
use serde::{Deserialize, Serialize};

/// The environment variable holding the monitor's secret key, by default.
pub const DEFAULT_KEYS_ENV: &str = "MONITOR_PRIVATE_KEY";

/// The highest proof-of-work difficulty the configuration accepts: each
/// bit doubles the work of the write check.
pub const MAX_POW_DIFFICULTY: u8 = 32;

bigbrotr_service_runtime::service_file! {
    /// The file `config/services/monitor.yaml`.
    pub struct MonitorFile {
        /// What the monitor checks, how often and how fast.
        pub monitor: MonitorConfig,
    }
}

/// What the monitor checks, how often and how fast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// A relay is checked again once its latest check is at least this old;
    /// a relay never checked is always due. Default 1 h.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub min_age: Duration,
    /// Most relays checked in one cycle, the longest unchecked first.
    /// Default 1000.
    pub max_relays_per_cycle: u32,
    /// Percentage of `max_relays_per_cycle` kept for due relays that were
    /// readable at least once, so that never-checked relays (which come
    /// first otherwise, and which anyone can add by the thousand) cannot
    /// starve the re-checks of real relays. Unused places go to the other
    /// due relays. From 0 to 100. Default 50.
    pub readable_share_percent: u8,
    /// Checks running at once, per network.
    pub concurrency: Concurrency,
    /// Time limits of each check.
    pub timeouts: CheckTimeouts,
    /// Largest NIP-11 document accepted, in bytes. Default 65536.
    pub nip11_max_bytes: usize,
    /// HTTP redirects followed when fetching a NIP-11 document. Default 3.
    pub max_redirects: usize,
    /// Checks stored per database call. Default 100.
    pub batch_size: usize,
    /// Which checks run.
    pub checks: Checks,
    /// Highest proof-of-work difficulty the write check mines when a relay's
    /// NIP-11 `limitation.min_pow_difficulty` asks for one; a relay asking
    /// for more is recorded as not writable, with the reason, and nothing is
    /// mined. Mining stops at `timeouts.pow`. At most 32. Default 16.
    pub max_pow_difficulty: u8,
    /// Name of the environment variable holding the monitor's secret key
    /// (hex or `nsec`), which signs the write check and published results.
    /// When the variable is unset or empty, a new key is generated at each
    /// start. Default `MONITOR_PRIVATE_KEY`.
    #[schemars(extend("x-names-variable" = {
        "read_for": "the monitor's secret key (hex or `nsec`)",
        "unset": "a new key at each start"
    }))]
    pub keys_env: String,
    /// Publishing the results as NIP-66 events.
    pub publish: PublishConfig,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            min_age: Duration::from_secs(3600),
            max_relays_per_cycle: 1000,
            readable_share_percent: 50,
            concurrency: Concurrency::default(),
            timeouts: CheckTimeouts::default(),
            nip11_max_bytes: 64 * 1024,
            max_redirects: 3,
            batch_size: 100,
            checks: Checks::default(),
            max_pow_difficulty: 16,
            keys_env: DEFAULT_KEYS_ENV.to_owned(),
            publish: PublishConfig::default(),
        }
    }
}

impl Validate for MonitorConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.max_relays_per_cycle == 0 {
            problems.push("max_relays_per_cycle", "must be ≥ 1");
        }
        if self.readable_share_percent > 100 {
            problems.push("readable_share_percent", "must be from 0 to 100");
        }
        problems.section("concurrency", &self.concurrency);
        problems.section("timeouts", &self.timeouts);
        if self.nip11_max_bytes == 0 {
            problems.push("nip11_max_bytes", "must be ≥ 1");
        }
        if self.batch_size == 0 {
            problems.push("batch_size", "must be ≥ 1");
        }
        problems.section("checks", &self.checks);
        if self.max_pow_difficulty > MAX_POW_DIFFICULTY {
            problems.push(
                "max_pow_difficulty",
                format!("must be ≤ {MAX_POW_DIFFICULTY}"),
            );
        }
        if self.keys_env.is_empty()
            || !self
                .keys_env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            problems.push(
                "keys_env",
                "must be a variable name: letters, digits and `_`",
            );
        }
        problems.section("publish", &self.publish);
    }
}

/// Checks running at once, per network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Concurrency {
    /// Checks of clearnet relays at once. Default 50.
    pub clearnet: usize,
    /// Checks of `.onion` relays at once, through the SOCKS5 proxy.
    /// Default 10.
    pub tor: usize,
}

impl Default for Concurrency {
    fn default() -> Self {
        Self {
            clearnet: 50,
            tor: 10,
        }
    }
}

impl Validate for Concurrency {
    fn validate(&self, problems: &mut Problems) {
        if self.clearnet == 0 {
            problems.push("clearnet", "must be ≥ 1");
        }
        if self.tor == 0 {
            problems.push("tor", "must be ≥ 1");
        }
    }
}

/// Time limits of each check. Tor is slow: the same limits apply to both
/// networks, so set them for Tor when `.onion` relays are checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CheckTimeouts {
    /// The whole NIP-11 request, redirects and body included. Default 10 s.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub nip11: Duration,
    /// Opening the WebSocket connection. Default 10 s.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub open: Duration,
    /// A `REQ` until its first `EVENT`, `EOSE` or `CLOSED` (authentication
    /// included); also bounds reading back the written event. Default 10 s.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub read: Duration,
    /// Publishing the write check's event until its `OK` (authentication
    /// included). Default 10 s.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub write: Duration,
    /// Mining the proof of work a relay asks for, on a blocking thread;
    /// when it runs out, the relay is recorded as not writable with the
    /// reason. Default 5 s.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub pow: Duration,
}

impl Default for CheckTimeouts {
    fn default() -> Self {
        Self {
            nip11: Duration::from_secs(10),
            open: Duration::from_secs(10),
            read: Duration::from_secs(10),
            write: Duration::from_secs(10),
            pow: Duration::from_secs(5),
        }
    }
}

impl Validate for CheckTimeouts {
    fn validate(&self, problems: &mut Problems) {
        for (key, value) in [
            ("nip11", self.nip11),
            ("open", self.open),
            ("read", self.read),
            ("write", self.write),
            ("pow", self.pow),
        ] {
            if value.is_zero() {
                problems.push(key, "must be > 0");
            }
        }
    }
}

/// Which checks run. `read` and `write` need `open`; with `open` off only
/// NIP-11 documents are gathered and every check is stored as not
/// connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Checks {
    /// Fetch the NIP-11 document over HTTP(S). Default `true`.
    pub nip11: bool,
    /// Open a WebSocket connection and time it. Default `true`.
    pub open: bool,
    /// Send a `REQ` and time its answer. Default `true`.
    pub read: bool,
    /// Publish a signed event, time its `OK` and read it back. Default
    /// `true`.
    pub write: bool,
}

impl Default for Checks {
    fn default() -> Self {
        Self {
            nip11: true,
            open: true,
            read: true,
            write: true,
        }
    }
}

impl Validate for Checks {
    fn validate(&self, problems: &mut Problems) {
        if !self.open {
            if self.read {
                problems.push("read", "needs `open`");
            }
            if self.write {
                problems.push("write", "needs `open`");
            }
        }
    }
}

/// Publishing the results as NIP-66 events: one kind 30166 event per relay
/// reached, and a kind 10166 announcement of the monitor, each cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PublishConfig {
    /// Whether results are published. Default `false`.
    pub enabled: bool,
    /// The relays to publish to (`wss://…`). Default none; at least one is
    /// needed when publishing is enabled.
    pub relays: Vec<String>,
}

impl Validate for PublishConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.enabled && self.relays.is_empty() {
            problems.push("relays", "must name at least one relay when enabled");
        }
        for (index, url) in self.relays.iter().enumerate() {
            if let Err(error) = bigbrotr_brotr::validate_relay_url(url) {
                problems.push(format!("relays[{index}]"), error.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bigbrotr_config::{load_str, Env, Problem};

    use super::*;

    fn problems_of(file: &MonitorFile) -> Vec<Problem> {
        let mut problems = Problems::new();
        file.validate(&mut problems);
        problems.into_vec()
    }

    #[test]
    fn the_defaults_are_valid_and_documented_values() {
        let config = MonitorConfig::default();
        assert_eq!(config.min_age, Duration::from_secs(3600));
        assert_eq!(config.max_relays_per_cycle, 1000);
        assert_eq!(
            config.concurrency,
            Concurrency {
                clearnet: 50,
                tor: 10
            }
        );
        assert_eq!(config.timeouts.nip11, Duration::from_secs(10));
        assert_eq!(config.timeouts.write, Duration::from_secs(10));
        assert_eq!(config.timeouts.pow, Duration::from_secs(5));
        assert_eq!(config.readable_share_percent, 50);
        assert_eq!(config.nip11_max_bytes, 65_536);
        assert_eq!(config.max_redirects, 3);
        assert_eq!(config.batch_size, 100);
        assert_eq!(config.checks, Checks::default());
        assert!(config.checks.nip11 && config.checks.open && config.checks.read);
        assert_eq!(config.keys_env, "MONITOR_PRIVATE_KEY");
        assert_eq!(config.publish, PublishConfig::default());
        assert!(!config.publish.enabled);
        assert_eq!(problems_of(&MonitorFile::default()), []);
    }

    #[test]
    fn an_empty_file_gives_the_defaults_and_loop_is_read_as_loop() {
        let file: MonitorFile =
            load_str("", std::path::Path::new("monitor.yaml"), &Env::empty()).expect("valid");
        assert_eq!(file, MonitorFile::default());
        let text = "loop:\n  interval: 5m\nmonitor:\n  min_age: 30m\n  concurrency:\n    tor: 3\n";
        let file: MonitorFile =
            load_str(text, std::path::Path::new("monitor.yaml"), &Env::empty()).expect("valid");
        assert_eq!(file.looping.interval, Duration::from_secs(300));
        assert_eq!(file.monitor.min_age, Duration::from_secs(1800));
        assert_eq!(file.monitor.concurrency.tor, 3);
        assert_eq!(file.monitor.concurrency.clearnet, 50);
    }

    #[test]
    fn every_invalid_value_is_reported_with_its_path() {
        let mut file = MonitorFile::default();
        file.monitor.max_relays_per_cycle = 0;
        file.monitor.readable_share_percent = 101;
        file.monitor.concurrency.tor = 0;
        file.monitor.timeouts.read = Duration::ZERO;
        file.monitor.timeouts.pow = Duration::ZERO;
        file.monitor.nip11_max_bytes = 0;
        file.monitor.batch_size = 0;
        file.monitor.checks = Checks {
            nip11: true,
            open: false,
            read: true,
            write: true,
        };
        file.monitor.max_pow_difficulty = 33;
        file.monitor.keys_env = "MY KEY".to_owned();
        file.monitor.publish = PublishConfig {
            enabled: true,
            relays: vec!["https://relay.example".to_owned()],
        };
        file.looping.interval = Duration::ZERO;
        let problems: Vec<String> = problems_of(&file).iter().map(ToString::to_string).collect();
        assert_eq!(
            problems[..12],
            [
                "loop.interval: must be > 0",
                "monitor.max_relays_per_cycle: must be ≥ 1",
                "monitor.readable_share_percent: must be from 0 to 100",
                "monitor.concurrency.tor: must be ≥ 1",
                "monitor.timeouts.read: must be > 0",
                "monitor.timeouts.pow: must be > 0",
                "monitor.nip11_max_bytes: must be ≥ 1",
                "monitor.batch_size: must be ≥ 1",
                "monitor.checks.read: needs `open`",
                "monitor.checks.write: needs `open`",
                "monitor.max_pow_difficulty: must be ≤ 32",
                "monitor.keys_env: must be a variable name: letters, digits and `_`",
            ]
        );
        assert_eq!(problems.len(), 13);
        assert!(
            problems[12].starts_with("monitor.publish.relays[0]: "),
            "{}",
            problems[12]
        );
    }

    #[test]
    fn publishing_without_relays_is_reported() {
        let mut file = MonitorFile::default();
        file.monitor.publish.enabled = true;
        assert_eq!(
            problems_of(&file),
            [Problem::new(
                "monitor.publish.relays",
                "must name at least one relay when enabled"
            )]
        );
    }

    #[test]
    fn only_nip11_may_run_without_open() {
        let mut file = MonitorFile::default();
        file.monitor.checks = Checks {
            nip11: true,
            open: false,
            read: false,
            write: false,
        };
        assert_eq!(problems_of(&file), []);
    }
}
