//! The storage layer: the file `config/core/brotr.yaml`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::validate::{Problems, Validate};

/// The file `config/core/brotr.yaml`: how data is written to the database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BrotrFile {
    /// Batching, timeouts and validation of writes.
    pub brotr: BrotrConfig,
}

impl Validate for BrotrFile {
    fn validate(&self, problems: &mut Problems) {
        problems.section("brotr", &self.brotr);
    }
}

/// Most rows in one batch.
pub(crate) const MAX_BATCH_SIZE: usize = 100_000;

/// Batching, timeouts and validation of writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BrotrConfig {
    /// Rows written in one statement, from 1 to 100 000. Default 1000.
    pub batch_size: usize,
    /// Longest time one batch insert may take. Default 30 s.
    #[serde(with = "crate::duration")]
    #[schemars(with = "crate::duration::Seconds")]
    pub insert_timeout: Duration,
    /// Time between two cleanups, run by the refresher: NIP-11 and NIP-66
    /// documents no relay check refers to, the relay checks older than
    /// `relay_metadata_retention`, and (when `cleanup_orphan_events`) the
    /// events seen on no relay any more. Default 1 h.
    #[serde(with = "crate::duration")]
    #[schemars(with = "crate::duration::Seconds")]
    pub cleanup_interval: Duration,
    /// Rows one cleanup statement deletes at most, so that no statement
    /// holds many locks; a cleanup repeats it until nothing is left. From 1
    /// to 100 000. Default 10 000.
    pub cleanup_batch_size: usize,
    /// Whether cleanups delete the events seen on no relay any more (their
    /// relays were deleted). Default `false`: events are never deleted
    /// unless this says so.
    pub cleanup_orphan_events: bool,
    /// Relay checks (`relay_metadata` rows) older than this are deleted by
    /// the cleanups, each relay's latest check always kept. Default 0: every
    /// check is kept.
    #[serde(with = "crate::duration")]
    #[schemars(with = "crate::duration::Seconds")]
    pub relay_metadata_retention: Duration,
    /// Whether event ids and signatures are checked before insertion.
    /// Default `true`.
    pub enable_event_validation: bool,
    /// Whether relay URLs are checked and normalised before insertion.
    /// Default `true`.
    pub enable_relay_validation: bool,
    /// Signatures remembered as verified, so that an event seen again (from
    /// another relay, or in a later batch) costs only its id check: at most
    /// twice this many entries of 96 bytes are kept. 0 turns the memory off.
    /// Default 65 536 (at most about 15 MB).
    pub verified_signatures: usize,
}

impl Default for BrotrConfig {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            insert_timeout: Duration::from_secs(30),
            cleanup_interval: Duration::from_secs(3600),
            cleanup_batch_size: 10_000,
            cleanup_orphan_events: false,
            relay_metadata_retention: Duration::ZERO,
            enable_event_validation: true,
            enable_relay_validation: true,
            verified_signatures: 65_536,
        }
    }
}

impl Validate for BrotrConfig {
    fn validate(&self, problems: &mut Problems) {
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            problems.push("batch_size", format!("must be from 1 to {MAX_BATCH_SIZE}"));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.cleanup_batch_size) {
            problems.push(
                "cleanup_batch_size",
                format!("must be from 1 to {MAX_BATCH_SIZE}"),
            );
        }
        if !self.relay_metadata_retention.is_zero()
            && self.relay_metadata_retention < Duration::from_secs(3600)
        {
            problems.push(
                "relay_metadata_retention",
                "must be 0 (keep every check) or at least 1h",
            );
        }
        for (key, value) in [
            ("insert_timeout", self.insert_timeout),
            ("cleanup_interval", self.cleanup_interval),
        ] {
            if value.is_zero() {
                problems.push(key, "must be > 0");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Problem;

    fn problems_of(file: &BrotrFile) -> Vec<Problem> {
        let mut problems = Problems::new();
        file.validate(&mut problems);
        problems.into_vec()
    }

    #[test]
    fn the_defaults_are_valid() {
        let file = BrotrFile::default();
        assert_eq!(file.brotr.batch_size, 1000);
        assert_eq!(file.brotr.insert_timeout, Duration::from_secs(30));
        assert_eq!(file.brotr.cleanup_interval, Duration::from_secs(3600));
        assert!(file.brotr.enable_event_validation);
        assert!(file.brotr.enable_relay_validation);
        assert_eq!(file.brotr.verified_signatures, 65_536);
        assert_eq!(problems_of(&file), []);
    }

    #[test]
    fn batch_sizes_outside_the_range_are_reported() {
        for batch_size in [0, MAX_BATCH_SIZE + 1] {
            let mut file = BrotrFile::default();
            file.brotr.batch_size = batch_size;
            assert_eq!(
                problems_of(&file),
                [Problem::new("brotr.batch_size", "must be from 1 to 100000")]
            );
        }
        let mut file = BrotrFile::default();
        file.brotr.batch_size = MAX_BATCH_SIZE;
        assert_eq!(problems_of(&file), []);
    }

    #[test]
    fn zero_durations_are_reported() {
        let mut file = BrotrFile::default();
        file.brotr.insert_timeout = Duration::ZERO;
        file.brotr.cleanup_interval = Duration::ZERO;
        assert_eq!(
            problems_of(&file),
            [
                Problem::new("brotr.insert_timeout", "must be > 0"),
                Problem::new("brotr.cleanup_interval", "must be > 0"),
            ]
        );
    }
}
