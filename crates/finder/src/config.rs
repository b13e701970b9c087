//! The file `config/services/finder.yaml` ([`FinderFile`]) and its own
//! section, [`FinderConfig`].

use std::time::Duration;

use bigbrotr_config::{Problems, Validate};
use serde::{Deserialize, Serialize};

/// The largest page and batch the configuration accepts.
pub const MAX_PAGE_SIZE: u32 = 100_000;

bigbrotr_service_runtime::service_file! {
    /// The file `config/services/finder.yaml`.
    pub struct FinderFile {
        /// Where the finder looks for relays and how fast.
        pub finder: FinderConfig,
    }
}

/// Where the finder looks for relays and how fast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FinderConfig {
    /// Sightings (`events_relays` rows) read per database call. At most
    /// 100000. Default 1000.
    pub page_size: u32,
    /// New relays recorded per database call. At most 100000. Default 500.
    pub batch_size: usize,
    /// Pages read in one cycle at most, so that a long backlog is worked
    /// off over several cycles; 0 (the default) reads until caught up.
    pub max_pages_per_cycle: u32,
    /// Longest relay URL accepted, in bytes, as written and once
    /// normalised. Default 255.
    pub max_url_bytes: usize,
    /// Most candidate URLs taken from one event; the rest are counted as
    /// `too_many_in_event` and dropped. Default 50.
    pub max_urls_per_event: u32,
    /// Most new relays recorded per domain (the last two labels of the host,
    /// or its IP address) in one cycle; the rest are counted as
    /// `too_many_for_domain` and dropped, since a wildcard DNS domain can
    /// name any number of distinct relays. Default 20.
    pub max_new_relays_per_domain: u32,
    /// Which archived events are read.
    pub sources: EventSources,
    /// HTTP(S) addresses answering with a JSON array of relay URLs, fetched
    /// each cycle, e.g.
    /// `[{url: https://lists.example/relays.json, timeout: 30s}]`. Default
    /// none.
    pub http_sources: Vec<HttpSource>,
    /// Largest answer read from an HTTP source, in bytes. Default 4 MiB.
    pub http_max_bytes: usize,
}

impl Default for FinderConfig {
    fn default() -> Self {
        Self {
            page_size: 1000,
            batch_size: 500,
            max_pages_per_cycle: 0,
            max_url_bytes: 255,
            max_urls_per_event: 50,
            max_new_relays_per_domain: 20,
            sources: EventSources::default(),
            http_sources: Vec::new(),
            http_max_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Validate for FinderConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            problems.push("page_size", format!("must be from 1 to {MAX_PAGE_SIZE}"));
        }
        if self.batch_size == 0 || self.batch_size > MAX_PAGE_SIZE as usize {
            problems.push("batch_size", format!("must be from 1 to {MAX_PAGE_SIZE}"));
        }
        // "ws://a" is the shortest URL worth a look.
        if self.max_url_bytes < 6 {
            problems.push("max_url_bytes", "must be ≥ 6");
        }
        if self.max_urls_per_event == 0 {
            problems.push("max_urls_per_event", "must be ≥ 1");
        }
        if self.max_new_relays_per_domain == 0 {
            problems.push("max_new_relays_per_domain", "must be ≥ 1");
        }
        problems.section("sources", &self.sources);
        for (index, source) in self.http_sources.iter().enumerate() {
            problems.section(&format!("http_sources[{index}]"), source);
        }
        if self.http_max_bytes == 0 {
            problems.push("http_max_bytes", "must be ≥ 1");
        }
    }
}

/// Which archived events are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EventSources {
    /// Whether the archived events are scanned at all. Default `true`.
    pub events: bool,
    /// The kinds of the events read; empty reads every kind. Relay URLs
    /// come from the `r` tags of kind 10002, the relay map in the content of
    /// kind 3, the `d` tag of kind 30166, and the relay hints of `e` and `p`
    /// tags of any kind listed. Default `[1, 3, 10002, 30166]`.
    pub kinds: Vec<u16>,
}

impl Default for EventSources {
    fn default() -> Self {
        Self {
            events: true,
            kinds: vec![1, 3, 10002, 30166],
        }
    }
}

impl Validate for EventSources {
    fn validate(&self, _problems: &mut Problems) {}
}

/// An HTTP(S) address answering with a JSON array of relay URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSource {
    /// The `http://` or `https://` address. Required.
    pub url: String,
    /// Time limit of the whole request, answer included. Default 30 s.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub timeout: Duration,
}

impl Default for HttpSource {
    fn default() -> Self {
        Self {
            url: String::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl Validate for HttpSource {
    fn validate(&self, problems: &mut Problems) {
        match nostr::Url::parse(&self.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => problems.push("url", "must be an http:// or https:// address"),
        }
        if self.timeout.is_zero() {
            problems.push("timeout", "must be > 0");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bigbrotr_config::{load_str, Env};

    use super::*;

    fn problems_of(file: &FinderFile) -> Vec<String> {
        let mut problems = Problems::new();
        file.validate(&mut problems);
        problems
            .into_vec()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_defaults_are_valid_and_documented_values() {
        let config = FinderConfig::default();
        assert_eq!(config.page_size, 1000);
        assert_eq!(config.batch_size, 500);
        assert_eq!(config.max_pages_per_cycle, 0);
        assert_eq!(config.max_url_bytes, 255);
        assert_eq!(config.max_urls_per_event, 50);
        assert_eq!(config.max_new_relays_per_domain, 20);
        assert!(config.sources.events);
        assert_eq!(config.sources.kinds, [1, 3, 10002, 30166]);
        assert_eq!(config.http_sources, []);
        assert_eq!(config.http_max_bytes, 4 * 1024 * 1024);
        assert_eq!(HttpSource::default().timeout, Duration::from_secs(30));
        assert_eq!(problems_of(&FinderFile::default()), Vec::<String>::new());
    }

    #[test]
    fn an_empty_file_gives_the_defaults_and_loop_is_read_as_loop() {
        let path = Path::new("finder.yaml");
        let file: FinderFile = load_str("", path, &Env::empty()).expect("valid");
        assert_eq!(file, FinderFile::default());
        let text = "loop:\n  interval: 5m\nfinder:\n  page_size: 10\n  sources:\n    kinds: []\n  \
                    http_sources:\n    - url: https://lists.example/relays.json\n";
        let file: FinderFile = load_str(text, path, &Env::empty()).expect("valid");
        assert_eq!(file.looping.interval, Duration::from_secs(300));
        assert_eq!(file.finder.page_size, 10);
        assert!(file.finder.sources.events);
        assert_eq!(file.finder.sources.kinds, Vec::<u16>::new());
        assert_eq!(
            file.finder.http_sources,
            [HttpSource {
                url: "https://lists.example/relays.json".to_owned(),
                timeout: Duration::from_secs(30),
            }]
        );
    }

    #[test]
    fn allow_local_addresses_is_gone_in_favour_of_the_egress_policy() {
        let text = "finder:\n  allow_local_addresses: true\n";
        let error = load_str::<FinderFile>(text, Path::new("finder.yaml"), &Env::empty())
            .expect_err("invalid");
        assert!(
            error.to_string().contains("allow_local_addresses")
                || format!("{error:?}").contains("allow_local_addresses"),
            "{error:?}"
        );
    }

    #[test]
    fn an_unknown_key_is_an_error() {
        let text = "finder:\n  page_sise: 10\n";
        let error = load_str::<FinderFile>(text, Path::new("finder.yaml"), &Env::empty())
            .expect_err("invalid");
        assert!(error.to_string().contains("page_sise"), "{error}");
    }

    #[test]
    fn every_invalid_value_is_reported_with_its_path() {
        let mut file = FinderFile::default();
        file.finder.page_size = 0;
        file.finder.batch_size = 100_001;
        file.finder.max_url_bytes = 5;
        file.finder.max_urls_per_event = 0;
        file.finder.max_new_relays_per_domain = 0;
        file.finder.http_sources = vec![
            HttpSource {
                url: "wss://relay.example".to_owned(),
                timeout: Duration::ZERO,
            },
            HttpSource::default(),
        ];
        file.finder.http_max_bytes = 0;
        assert_eq!(
            problems_of(&file),
            [
                "finder.page_size: must be from 1 to 100000",
                "finder.batch_size: must be from 1 to 100000",
                "finder.max_url_bytes: must be ≥ 6",
                "finder.max_urls_per_event: must be ≥ 1",
                "finder.max_new_relays_per_domain: must be ≥ 1",
                "finder.http_sources[0].url: must be an http:// or https:// address",
                "finder.http_sources[0].timeout: must be > 0",
                "finder.http_sources[1].url: must be an http:// or https:// address",
                "finder.http_max_bytes: must be ≥ 1",
            ]
        );
    }
}
