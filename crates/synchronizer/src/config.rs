//! The file `config/services/synchronizer.yaml` ([`SynchronizerFile`]) and
//! its own section, [`SynchronizerConfig`].

use std::collections::BTreeMap;
use std::time::Duration;

use bigbrotr_config::{Problems, Validate};
use serde::{Deserialize, Serialize};

/// The largest `limit` and `second_limit` accepted.
pub const MAX_LIMIT: usize = 100_000;

bigbrotr_service_runtime::service_file! {
    /// The file `config/services/synchronizer.yaml`.
    pub struct SynchronizerFile {
        /// What the synchronizer archives, how fast, and how it shares the
        /// relays with other synchronizers.
        pub synchronizer: SynchronizerConfig,
    }
}

/// What the synchronizer archives, how fast, and how it shares the relays
/// with other synchronizers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SynchronizerConfig {
    /// Relays synced besides those the monitor last found readable
    /// (`wss://…`); recorded in the archive when missing. Default none.
    pub relays: Vec<String>,
    /// Which events are archived. Default: all.
    pub filter: FilterConfig,
    /// Events created before this time (Unix seconds) are not fetched from a
    /// relay that has no cursor yet. Default 0: everything.
    pub start_time: i64,
    /// Events created during the last `end_lag` are left for a later cycle,
    /// so that events still spreading between relays are not passed over.
    /// Default 5 min.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub end_lag: Duration,
    /// Length of the first time window asked of a relay in a cycle; shortened
    /// while windows take several pages, doubled while they come back less
    /// than half full. Whole seconds, at least 1 s. Default 1 h.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub window: Duration,
    /// Events asked for per `REQ` (the filter's `limit`); lowered to the
    /// `limitation.max_limit` of the relay's NIP-11 document when that is
    /// smaller. A window whose answer reaches this, or the most the relay
    /// ever returned to one `REQ` (its effective cap, learned and stored),
    /// is paged further with `until` at its oldest event until a `REQ`
    /// brings nothing new. From 1 to 100 000. Default 500.
    pub limit: usize,
    /// The `limit` of the `REQ` that retries a pending second (one holding
    /// more events than the relay returned at once) on a relay without
    /// NIP-77. From `limit` to 100 000. Default 5000.
    pub second_limit: usize,
    /// Re-sweeps of the period behind each relay's cursor, for events that
    /// reach relays late (rebroadcast, wrong clocks, NIP-59 gift wraps
    /// dated up to two days back).
    pub resweep: ResweepConfig,
    /// NIP-77 negentropy reconciliation.
    pub nip77: Nip77Config,
    /// NIP-42 authentication, for relays that answer `auth-required:`.
    pub auth: AuthConfig,
    /// Pending ranges (seconds the relay would not serve whole) retried per
    /// relay and cycle. Default 20.
    pub pending_per_cycle: u32,
    /// Limits on what a relay may send and what is held in memory.
    pub sizes: SizeLimits,
    /// Time limits of each relay.
    pub timeouts: SyncTimeouts,
    /// Relays synced at once, per network.
    pub concurrency: Concurrency,
    /// Events stored per database call, and the most a relay holds in memory
    /// besides the window being fetched. From 1 to 100 000. Default 1000.
    pub batch_size: usize,
    /// A relay is left for the rest of the cycle, once its current window is
    /// complete, when it has served more than this many rejected events in
    /// it (invalid, malformed, repeated, oversized, or not matching the
    /// request): garbage slows a relay down, it never costs its valid
    /// events. Default 100.
    pub max_rejected: u64,
    /// The leases that share the relays between synchronizers.
    pub lease: LeaseConfig,
    /// The name this synchronizer holds leases under; unique per process.
    /// Letters, digits and `-_.:@`, at most 128. Empty (the default) means
    /// `<hostname>-<process id>`.
    pub worker_id: String,
}

impl Default for SynchronizerConfig {
    fn default() -> Self {
        Self {
            relays: Vec::new(),
            filter: FilterConfig::default(),
            start_time: 0,
            end_lag: Duration::from_secs(300),
            window: Duration::from_secs(3600),
            limit: 500,
            second_limit: 5000,
            resweep: ResweepConfig::default(),
            nip77: Nip77Config::default(),
            auth: AuthConfig::default(),
            pending_per_cycle: 20,
            sizes: SizeLimits::default(),
            timeouts: SyncTimeouts::default(),
            concurrency: Concurrency::default(),
            batch_size: 1000,
            max_rejected: 100,
            lease: LeaseConfig::default(),
            worker_id: String::new(),
        }
    }
}

impl Validate for SynchronizerConfig {
    fn validate(&self, problems: &mut Problems) {
        for (index, url) in self.relays.iter().enumerate() {
            if let Err(error) = bigbrotr_brotr::validate_relay_url(url) {
                problems.push(format!("relays[{index}]"), error.to_string());
            }
        }
        problems.section("filter", &self.filter);
        if self.start_time < 0 {
            problems.push("start_time", "must be ≥ 0 (Unix seconds)");
        }
        if self.window < Duration::from_secs(1) {
            problems.push("window", "must be ≥ 1s");
        }
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            problems.push("limit", format!("must be from 1 to {MAX_LIMIT}"));
        }
        if self.second_limit < self.limit || self.second_limit > MAX_LIMIT {
            problems.push(
                "second_limit",
                format!("must be from `limit` ({}) to {MAX_LIMIT}", self.limit),
            );
        }
        problems.section("resweep", &self.resweep);
        problems.section("nip77", &self.nip77);
        problems.section("auth", &self.auth);
        problems.section("sizes", &self.sizes);
        problems.section("timeouts", &self.timeouts);
        problems.section("concurrency", &self.concurrency);
        if !(1..=100_000).contains(&self.batch_size) {
            problems.push("batch_size", "must be from 1 to 100000");
        }
        problems.section("lease", &self.lease);
        if self.worker_id.len() > 128
            || !self
                .worker_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c))
        {
            problems.push(
                "worker_id",
                "may only contain letters, digits and `-_.:@`, at most 128",
            );
        }
    }
}

/// Which events are archived: a NIP-01 filter without `ids`, `since`,
/// `until` or `limit`, which the synchronizer sets itself. Every list left
/// empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// Event kinds. Default: all.
    pub kinds: Vec<u16>,
    /// Authors' public keys, hex or `npub`. Default: all.
    pub authors: Vec<String>,
    /// Single-letter tags and the values one of which an event must carry
    /// (`{"t": ["nostr"]}` asks for `#t`). Default: none.
    pub tags: BTreeMap<String, Vec<String>>,
}

impl Validate for FilterConfig {
    fn validate(&self, problems: &mut Problems) {
        for (index, author) in self.authors.iter().enumerate() {
            if nostr::PublicKey::parse(author).is_err() {
                problems.push(
                    format!("authors[{index}]"),
                    "is not a public key (hex or npub)",
                );
            }
        }
        for (letter, values) in &self.tags {
            let mut chars = letter.chars();
            let single =
                matches!((chars.next(), chars.next()), (Some(c), None) if c.is_ascii_alphabetic());
            if !single {
                problems.push(
                    format!("tags.{letter}"),
                    "a tag name must be one ASCII letter",
                );
            }
            if values.is_empty() {
                problems.push(format!("tags.{letter}"), "must list at least one value");
            }
        }
    }
}

/// Limits on what a relay may send and on what is held in memory, in bytes.
/// The defaults hold every real event seen so far (the largest of a corpus
/// of real events is 1.8 MB) with room to spare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SizeLimits {
    /// Largest WebSocket message read; a larger one breaks the connection,
    /// and the second holding it is found and skipped (recorded in
    /// `quarantine`). Default 5 MiB.
    pub max_message: usize,
    /// Largest WebSocket frame read. Default 5 MiB.
    pub max_frame: usize,
    /// Largest event stored, as JSON; a larger one is recorded in
    /// `quarantine` and not stored. Default 4 MiB.
    pub max_event: usize,
    /// A relay's batch is stored once its events take this many bytes (or
    /// hold `batch_size` events), and one answer is read up to about this
    /// much before it is paged further. Default 8 MiB.
    pub batch_bytes: usize,
    /// The bytes of events held in batches by all relays together; a relay
    /// that would pass it stores its batch and waits. Default 128 MiB.
    pub held_bytes: usize,
}

impl Default for SizeLimits {
    fn default() -> Self {
        Self {
            max_message: 5 << 20,
            max_frame: 5 << 20,
            max_event: 4 << 20,
            batch_bytes: 8 << 20,
            held_bytes: 128 << 20,
        }
    }
}

impl Validate for SizeLimits {
    fn validate(&self, problems: &mut Problems) {
        const MIN: usize = 64 << 10;
        for (key, value) in [
            ("max_message", self.max_message),
            ("max_frame", self.max_frame),
            ("max_event", self.max_event),
            ("batch_bytes", self.batch_bytes),
        ] {
            if value < MIN {
                problems.push(key, format!("must be ≥ {MIN} bytes"));
            }
        }
        if self.max_event > self.max_message {
            problems.push("max_event", "must not exceed `max_message`");
        }
        if self.held_bytes < self.batch_bytes.saturating_mul(2).max(self.max_message) {
            problems.push(
                "held_bytes",
                "must be at least twice `batch_bytes` and at least `max_message`",
            );
        }
    }
}

/// Re-sweeps of the period behind each relay's cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ResweepConfig {
    /// The period behind the cursor walked again: events created in it
    /// that reached the relay after the cursor passed them are archived.
    /// 0 turns re-sweeps off. Default 48 h (NIP-59 gift wraps are dated up
    /// to two days back).
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub lookback: Duration,
    /// How often a relay is re-swept; 0 means every cycle. Cheap on relays
    /// speaking NIP-77 (one reconciliation per window), a download of the
    /// period on the others. Default 6 h.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub interval: Duration,
}

impl Default for ResweepConfig {
    fn default() -> Self {
        Self {
            lookback: Duration::from_secs(48 * 3600),
            interval: Duration::from_secs(6 * 3600),
        }
    }
}

impl Validate for ResweepConfig {
    fn validate(&self, _problems: &mut Problems) {}
}

/// NIP-77 negentropy reconciliation: where a relay speaks it, each window
/// is reconciled against what the archive holds from that relay, and only
/// the missing events are downloaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Nip77Config {
    /// Whether relays are probed for NIP-77 (with `NEG-OPEN`, whatever their
    /// NIP-11 says) and reconciled where it works. Default `true`.
    pub enabled: bool,
    /// How long the answer of a probe is trusted before the relay is probed
    /// again. Default 24 h.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub recheck: Duration,
    /// Ids asked for per `REQ` when fetching the events a reconciliation
    /// found missing; lowered to the relay's limits. From 1 to 100 000.
    /// Default 500.
    pub ids_per_request: usize,
}

impl Default for Nip77Config {
    fn default() -> Self {
        Self {
            enabled: true,
            recheck: Duration::from_secs(24 * 3600),
            ids_per_request: 500,
        }
    }
}

impl Validate for Nip77Config {
    fn validate(&self, problems: &mut Problems) {
        if !(1..=MAX_LIMIT).contains(&self.ids_per_request) {
            problems.push("ids_per_request", format!("must be from 1 to {MAX_LIMIT}"));
        }
    }
}

/// NIP-42 authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Whether the synchronizer authenticates to relays that answer
    /// `auth-required:`, then repeats the request. Default `true`.
    pub enabled: bool,
    /// Name of the environment variable holding the secret key it
    /// authenticates with (hex or `nsec`); by default the monitor's. When
    /// the variable is unset or empty, a new key is generated at each start.
    #[schemars(extend("x-names-variable" = {
        "read_for": "the synchronizer's secret key for NIP-42 authentication (hex or `nsec`)",
        "unset": "a new key at each start"
    }))]
    pub keys_env: String,
    /// A relay that refused the authentication is not asked again for this
    /// long. Default 24 h.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub retry_after: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            keys_env: "MONITOR_PRIVATE_KEY".to_owned(),
            retry_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl Validate for AuthConfig {
    fn validate(&self, problems: &mut Problems) {
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
    }
}

/// Time limits of each relay. Tor is slow: the same limits apply to both
/// networks, so set them for Tor when `.onion` relays are synced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SyncTimeouts {
    /// One `REQ` until its `EOSE` (or its `limit` of events). Default 30 s.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub request: Duration,
    /// Silence of the relay while a `REQ` is answered. Default 10 s.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub idle: Duration,
    /// All the work on one relay in one cycle; when it runs out, what is
    /// complete is stored and the rest waits for the next cycle. Default
    /// 10 min.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub total: Duration,
}

impl Default for SyncTimeouts {
    fn default() -> Self {
        Self {
            request: Duration::from_secs(30),
            idle: Duration::from_secs(10),
            total: Duration::from_secs(600),
        }
    }
}

impl Validate for SyncTimeouts {
    fn validate(&self, problems: &mut Problems) {
        for (key, value) in [
            ("request", self.request),
            ("idle", self.idle),
            ("total", self.total),
        ] {
            if value.is_zero() {
                problems.push(key, "must be > 0");
            }
        }
    }
}

/// Relays synced at once, per network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Concurrency {
    /// Clearnet relays at once. Default 20.
    pub clearnet: usize,
    /// `.onion` relays at once, through the SOCKS5 proxy. Default 5.
    pub tor: usize,
}

impl Default for Concurrency {
    fn default() -> Self {
        Self {
            clearnet: 20,
            tor: 5,
        }
    }
}

impl Validate for Concurrency {
    fn validate(&self, problems: &mut Problems) {
        for (key, value) in [("clearnet", self.clearnet), ("tor", self.tor)] {
            if !(1..=10_000).contains(&value) {
                problems.push(key, "must be from 1 to 10000");
            }
        }
    }
}

/// The leases that share the relays between synchronizers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LeaseConfig {
    /// How long a lease lasts unless renewed; renewed every third of it
    /// while the relay is synced. The relays of a synchronizer that stopped
    /// without releasing them are taken over this long after its last
    /// renewal. Whole seconds, at least 3 s. Default 2 min.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub duration: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(120),
        }
    }
}

impl LeaseConfig {
    /// The duration in whole seconds, as the database takes it.
    #[must_use]
    pub fn seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX)
    }
}

impl Validate for LeaseConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.duration < Duration::from_secs(3) {
            problems.push("duration", "must be ≥ 3s");
        }
    }
}

#[cfg(test)]
mod tests {
    use bigbrotr_config::{load_str, Env, Problem};

    use super::*;

    fn problems_of(file: &SynchronizerFile) -> Vec<Problem> {
        let mut problems = Problems::new();
        file.validate(&mut problems);
        problems.into_vec()
    }

    #[test]
    fn the_defaults_are_valid_and_documented_values() {
        let config = SynchronizerConfig::default();
        assert!(config.relays.is_empty());
        assert_eq!(config.filter, FilterConfig::default());
        assert_eq!(config.start_time, 0);
        assert_eq!(config.end_lag, Duration::from_secs(300));
        assert_eq!(config.window, Duration::from_secs(3600));
        assert_eq!((config.limit, config.second_limit), (500, 5000));
        assert_eq!(config.timeouts.request, Duration::from_secs(30));
        assert_eq!(config.timeouts.idle, Duration::from_secs(10));
        assert_eq!(config.timeouts.total, Duration::from_secs(600));
        assert_eq!(
            config.concurrency,
            Concurrency {
                clearnet: 20,
                tor: 5
            }
        );
        assert_eq!(config.batch_size, 1000);
        assert_eq!(config.max_rejected, 100);
        assert_eq!(config.lease.seconds(), 120);
        assert_eq!(config.worker_id, "");
        assert_eq!(problems_of(&SynchronizerFile::default()), []);
    }

    #[test]
    fn an_empty_file_gives_the_defaults_and_nested_keys_are_read() {
        let path = std::path::Path::new("synchronizer.yaml");
        let file: SynchronizerFile = load_str("", path, &Env::empty()).expect("valid");
        assert_eq!(file, SynchronizerFile::default());
        let text = "loop:\n  interval: 5m\nsynchronizer:\n  filter:\n    kinds: [1, 7]\n    tags:\n      t: [nostr]\n  timeouts:\n    idle: 2s\n  lease:\n    duration: 30s\n";
        let file: SynchronizerFile = load_str(text, path, &Env::empty()).expect("valid");
        assert_eq!(file.looping.interval, Duration::from_secs(300));
        assert_eq!(file.synchronizer.filter.kinds, [1, 7]);
        assert_eq!(file.synchronizer.filter.tags["t"], ["nostr"]);
        assert_eq!(file.synchronizer.timeouts.idle, Duration::from_secs(2));
        assert_eq!(file.synchronizer.timeouts.request, Duration::from_secs(30));
        assert_eq!(file.synchronizer.lease.seconds(), 30);
    }

    #[test]
    fn every_invalid_value_is_reported_with_its_path() {
        let mut file = SynchronizerFile::default();
        let config = &mut file.synchronizer;
        config.relays = vec!["https://relay.example".to_owned()];
        config.filter.authors = vec!["nobody".to_owned()];
        config
            .filter
            .tags
            .insert("tt".to_owned(), vec!["x".to_owned()]);
        config.filter.tags.insert("p".to_owned(), Vec::new());
        config.start_time = -1;
        config.window = Duration::from_millis(500);
        config.limit = 0;
        config.second_limit = MAX_LIMIT + 1;
        config.timeouts.idle = Duration::ZERO;
        config.concurrency.tor = 0;
        config.batch_size = 0;
        config.lease.duration = Duration::from_secs(2);
        config.worker_id = "a b".to_owned();
        let problems: Vec<String> = problems_of(&file).iter().map(ToString::to_string).collect();
        assert!(
            problems[0].starts_with("synchronizer.relays[0]: "),
            "{}",
            problems[0]
        );
        assert_eq!(
            problems[1..],
            [
                "synchronizer.filter.authors[0]: is not a public key (hex or npub)",
                "synchronizer.filter.tags.p: must list at least one value",
                "synchronizer.filter.tags.tt: a tag name must be one ASCII letter",
                "synchronizer.start_time: must be ≥ 0 (Unix seconds)",
                "synchronizer.window: must be ≥ 1s",
                "synchronizer.limit: must be from 1 to 100000",
                "synchronizer.second_limit: must be from `limit` (0) to 100000",
                "synchronizer.timeouts.idle: must be > 0",
                "synchronizer.concurrency.tor: must be from 1 to 10000",
                "synchronizer.batch_size: must be from 1 to 100000",
                "synchronizer.lease.duration: must be ≥ 3s",
                "synchronizer.worker_id: may only contain letters, digits and `-_.:@`, at most 128",
            ]
        );
    }
}
