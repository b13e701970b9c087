//! [`Cleanups`]: the maintenance the refresher runs every
//! `brotr.cleanup_interval` beside its refreshes: relay checks past
//! `brotr.relay_metadata_retention`, the NIP-11 and NIP-66 documents no check
//! refers to any more, and (only when `brotr.cleanup_orphan_events`) the
//! events seen on no relay any more; each in bounded statements.

use std::time::Duration;

use bigbrotr_brotr::Brotr;
use bigbrotr_config::BrotrConfig;
use bigbrotr_logging::ErrorChain;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cycle::TARGET;

/// One kind of cleanup, named as in logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Relay checks older than the retention, each relay's latest kept.
    RelayMetadata,
    /// NIP-11 documents no relay check refers to.
    Nip11,
    /// NIP-66 documents no relay check refers to.
    Nip66,
    /// Events seen on no relay any more.
    Events,
}

impl Cleanup {
    /// The name in logs and in the `what` label of the metrics.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::RelayMetadata => "relay_metadata",
            Self::Nip11 => "nip11",
            Self::Nip66 => "nip66",
            Self::Events => "events",
        }
    }
}

/// When the cleanups run and what they delete, from the `brotr` section.
#[derive(Debug, Clone)]
pub struct Cleanups {
    interval: Duration,
    batch_size: u32,
    orphan_events: bool,
    retention: Duration,
    last: Option<Instant>,
}

impl Cleanups {
    /// The cleanups `config` asks for; the first is due at once.
    #[must_use]
    pub fn new(config: &BrotrConfig) -> Self {
        Self {
            interval: config.cleanup_interval,
            batch_size: u32::try_from(config.cleanup_batch_size).unwrap_or(u32::MAX),
            orphan_events: config.cleanup_orphan_events,
            retention: config.relay_metadata_retention,
            last: None,
        }
    }

    /// Whether `cleanup_interval` has passed since the cleanups last ran
    /// (or they never ran).
    #[must_use]
    pub fn due(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval)
    }

    /// The cleanups that run, in order: retention first, since it makes
    /// orphan documents.
    #[must_use]
    pub fn planned(&self) -> Vec<Cleanup> {
        let mut planned = Vec::new();
        if !self.retention.is_zero() {
            planned.push(Cleanup::RelayMetadata);
        }
        planned.extend([Cleanup::Nip11, Cleanup::Nip66]);
        if self.orphan_events {
            planned.push(Cleanup::Events);
        }
        planned
    }

    /// Runs every planned cleanup on `brotr`, each to the end in statements
    /// of at most `cleanup_batch_size` rows, calling `record` with its
    /// outcome (rows deleted, or why it failed). One that fails is logged
    /// and the others still run; cancelling stops before the next one.
    /// Afterwards the cleanups are not due before `cleanup_interval` has
    /// passed again.
    pub async fn run(
        &mut self,
        brotr: &Brotr,
        cancel: &CancellationToken,
        mut record: impl FnMut(Cleanup, &Result<u64, bigbrotr_brotr::Error>),
    ) {
        let before = bigbrotr_utils::now_timestamp()
            .saturating_sub(i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX));
        for cleanup in self.planned() {
            let work = async {
                match cleanup {
                    Cleanup::RelayMetadata => {
                        brotr
                            .delete_old_relay_metadata(before, self.batch_size)
                            .await
                    }
                    Cleanup::Nip11 => brotr.delete_orphan_nip11(self.batch_size).await,
                    Cleanup::Nip66 => brotr.delete_orphan_nip66(self.batch_size).await,
                    Cleanup::Events => brotr.delete_orphan_events(self.batch_size).await,
                }
            };
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                result = work => result,
            };
            match &result {
                Ok(deleted) => tracing::info!(
                    target: TARGET,
                    what = cleanup.name(),
                    deleted,
                    "cleanup done"
                ),
                Err(error) => tracing::warn!(
                    target: TARGET,
                    what = cleanup.name(),
                    error.chain = %ErrorChain::new(error),
                    "cleanup failed; the others go on"
                ),
            }
            record(cleanup, &result);
        }
        self.last = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_cleaned_only_when_asked_and_retention_only_when_set() {
        let mut config = BrotrConfig::default();
        let cleanups = Cleanups::new(&config);
        assert_eq!(cleanups.planned(), [Cleanup::Nip11, Cleanup::Nip66]);
        config.cleanup_orphan_events = true;
        config.relay_metadata_retention = Duration::from_secs(30 * 86_400);
        assert_eq!(
            Cleanups::new(&config).planned(),
            [
                Cleanup::RelayMetadata,
                Cleanup::Nip11,
                Cleanup::Nip66,
                Cleanup::Events
            ]
        );
        let names: Vec<&str> = Cleanups::new(&config)
            .planned()
            .into_iter()
            .map(Cleanup::name)
            .collect();
        assert_eq!(names, ["relay_metadata", "nip11", "nip66", "events"]);
    }

    #[test]
    fn the_cleanups_are_due_at_first_then_once_per_interval() {
        let mut cleanups = Cleanups::new(&BrotrConfig::default());
        let now = Instant::now();
        assert!(cleanups.due(now));
        cleanups.last = Some(now);
        assert!(!cleanups.due(now + Duration::from_secs(3599)));
        assert!(cleanups.due(now + Duration::from_secs(3600)));
    }
}
