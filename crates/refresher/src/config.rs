//! The file `config/services/refresher.yaml` ([`RefresherFile`]) and its own
//! section, [`RefresherConfig`].

use std::collections::BTreeSet;
use std::time::Duration;

use bigbrotr_config::{Problems, Validate};
use serde::{Deserialize, Serialize};

/// The longest time limit of one refresh: a day (PostgreSQL's
/// `statement_timeout` holds about 24 days).
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The longest name of a view: PostgreSQL's identifier limit.
const MAX_NAME_BYTES: usize = 63;

bigbrotr_service_runtime::service_file! {
    /// The file `config/services/refresher.yaml`.
    pub struct RefresherFile {
        /// Which statistics views are refreshed, and how long each may take.
        pub refresher: RefresherConfig,
    }
}

/// Which statistics views are refreshed, and how long each may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RefresherConfig {
    /// The statistics views refreshed each cycle, by name, e.g.
    /// `[stats_kinds, stats_totals]`; empty (the default) refreshes every
    /// view the implementation's `stats_views()` lists. They are refreshed
    /// in that function's order (each after the views it is computed from),
    /// whatever the order here; a name it does not list fails the cycle. A
    /// view computed from others (`stats_totals`, `stats_relays`, …) reads
    /// them as they were last refreshed: list them too.
    pub views: Vec<String>,
    /// Longest time the refresh of one view may take, waiting for locks
    /// included; past it the refresh is cancelled, counted as a failure of
    /// that view, and the next view is refreshed. It replaces
    /// `pool.command_timeout` and the role's `statement_timeout` for the
    /// refreshes, so it may exceed both. At most 24 h. Default 30 min.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub timeout: Duration,
}

impl Default for RefresherConfig {
    fn default() -> Self {
        Self {
            views: Vec::new(),
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

impl Validate for RefresherConfig {
    fn validate(&self, problems: &mut Problems) {
        let mut seen = BTreeSet::new();
        for (index, view) in self.views.iter().enumerate() {
            if !is_plain_name(view) {
                problems.push(
                    format!("views[{index}]"),
                    "must be a view name: lowercase letters, digits and `_`, at most 63 bytes, not starting with a digit",
                );
            } else if !seen.insert(view.as_str()) {
                problems.push(
                    format!("views[{index}]"),
                    format!("`{view}` is listed twice"),
                );
            }
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            problems.push("timeout", "must be > 0 and at most 24h");
        }
    }
}

/// Whether `name` is a name PostgreSQL takes unquoted: what every view of
/// `stats_views()` is called.
fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_NAME_BYTES
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bigbrotr_config::{load_str, Env};

    use super::*;

    fn problems_of(file: &RefresherFile) -> Vec<String> {
        let mut problems = Problems::new();
        file.validate(&mut problems);
        problems
            .into_vec()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_defaults_refresh_every_view_within_30_minutes_each() {
        let config = RefresherConfig::default();
        assert_eq!(config.views, Vec::<String>::new());
        assert_eq!(config.timeout, Duration::from_secs(1800));
        assert_eq!(problems_of(&RefresherFile::default()), Vec::<String>::new());
    }

    #[test]
    fn a_file_names_views_and_a_timeout_and_loop_is_read_as_loop() {
        let path = Path::new("refresher.yaml");
        let file: RefresherFile = load_str("", path, &Env::empty()).expect("valid");
        assert_eq!(file, RefresherFile::default());
        let text = "loop:\n  interval: 1h\nrefresher:\n  views: [stats_kinds, stats_totals]\n  \
                    timeout: 90s\n";
        let file: RefresherFile = load_str(text, path, &Env::empty()).expect("valid");
        assert_eq!(file.looping.interval, Duration::from_secs(3600));
        assert_eq!(file.refresher.views, ["stats_kinds", "stats_totals"]);
        assert_eq!(file.refresher.timeout, Duration::from_secs(90));
    }

    #[test]
    fn an_unknown_key_is_an_error() {
        let text = "refresher:\n  view: [stats_kinds]\n";
        let error = load_str::<RefresherFile>(text, Path::new("refresher.yaml"), &Env::empty())
            .expect_err("invalid");
        assert!(error.to_string().contains("view"), "{error}");
    }

    #[test]
    fn every_invalid_value_is_reported_with_its_path() {
        let mut file = RefresherFile::default();
        file.refresher.views = vec![
            "stats_kinds".to_owned(),
            String::new(),
            "Stats".to_owned(),
            "stats_kinds".to_owned(),
            "1st".to_owned(),
            "stats; DROP TABLE events".to_owned(),
            "x".repeat(64),
        ];
        file.refresher.timeout = Duration::ZERO;
        let name_rule = "must be a view name: lowercase letters, digits and `_`, at most 63 \
                         bytes, not starting with a digit";
        assert_eq!(
            problems_of(&file),
            [
                format!("refresher.views[1]: {name_rule}"),
                format!("refresher.views[2]: {name_rule}"),
                "refresher.views[3]: `stats_kinds` is listed twice".to_owned(),
                format!("refresher.views[4]: {name_rule}"),
                format!("refresher.views[5]: {name_rule}"),
                format!("refresher.views[6]: {name_rule}"),
                "refresher.timeout: must be > 0 and at most 24h".to_owned(),
            ]
        );
        file.refresher.views = vec!["_x9".to_owned(), "x".repeat(63)];
        file.refresher.timeout = MAX_TIMEOUT + Duration::from_secs(1);
        assert_eq!(
            problems_of(&file),
            ["refresher.timeout: must be > 0 and at most 24h"]
        );
        file.refresher.timeout = MAX_TIMEOUT;
        assert_eq!(problems_of(&file), Vec::<String>::new());
    }
}
