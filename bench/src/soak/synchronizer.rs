//! The synchronizer's counters, read from its `/metrics` once its cycle
//! ended.

use std::path::Path;
use std::time::{Duration, Instant};

use super::POLL;
use crate::scrape::{self, Metrics};

/// How long the synchronizer may take to exit after `SIGTERM` before it is
/// killed: longer than the default `runtime.shutdown_grace` (30 s) plus
/// `pool_close_grace`.
pub(super) const STOP_WAIT: Duration = Duration::from_secs(60);
/// How long to wait, once everything is archived, for the synchronizer's
/// cycle to end: its counters are added to at the end of a cycle.
const SETTLE_WAIT: Duration = Duration::from_secs(120);
/// The synchronizer's metrics read for the summary.
pub(super) const REQUESTS: &str = "bigbrotr_synchronizer_requests_total";
pub(super) const RECEIVED_BYTES: &str = "bigbrotr_synchronizer_received_bytes_total";
pub(super) const RECEIVED: &str = "bigbrotr_synchronizer_events_received_total";
pub(super) const STORED: &str = "bigbrotr_synchronizer_events_stored_total";
pub(super) const RECONCILIATIONS: &str = "bigbrotr_synchronizer_reconciliations_total";
pub(super) const SIGHTINGS: &str = "bigbrotr_synchronizer_sightings_total";
pub(super) const RELAY_SYNCS: &str = "bigbrotr_synchronizer_relays_total";
pub(super) const REJECTED: &str = "bigbrotr_synchronizer_events_rejected_total";

/// Waits for the cycle that reached the goal to end (every relay's sync
/// ended once more since), then reads the synchronizer's counters; `None`
/// when they could not be read.
pub(super) async fn settle(log: &Path, complete: bool, relays: usize) -> Option<Metrics> {
    let deadline = Instant::now() + SETTLE_WAIT;
    let mut address = scrape::http_address(log);
    while address.is_none() && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        address = scrape::http_address(log);
    }
    let Some(address) = address else {
        println!("metrics: the synchronizer's log names no HTTP address");
        return None;
    };
    let mut latest = match scrape::scrape(address).await {
        Ok(metrics) => metrics,
        Err(error) => {
            println!("metrics: {error:#}");
            return None;
        }
    };
    if !complete {
        return Some(latest);
    }
    let before = latest.total(RELAY_SYNCS);
    while latest.total(RELAY_SYNCS) < before + relays as f64 {
        if Instant::now() >= deadline {
            println!(
                "metrics: the cycle did not end within {} s; its counters are missing",
                SETTLE_WAIT.as_secs()
            );
            break;
        }
        tokio::time::sleep(POLL).await;
        match scrape::scrape(address).await {
            Ok(metrics) => latest = metrics,
            Err(error) => {
                println!("metrics: {error:#}");
                return None;
            }
        }
    }
    Some(latest)
}
