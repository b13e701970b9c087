//! The synchronizer as a child process: stopped with `SIGTERM` (killed when
//! it does not exit), and its counters, read from its `/metrics` once its
//! cycle ended.

use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::Context as _;

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

/// The synchronizer as a child process; killed when dropped while still
/// running (after an error of the benchmark itself).
pub(super) struct Running {
    pub(super) child: Child,
}

impl Running {
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How the synchronizer ended.
#[derive(Debug)]
pub(super) struct Stop {
    pub(super) status: ExitStatus,
    /// It exited before the benchmark stopped it.
    pub(super) early: bool,
    /// From `SIGTERM` to its exit.
    pub(super) took: Duration,
    /// It did not exit in [`STOP_WAIT`] and was killed.
    pub(super) killed: bool,
}

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

/// Stops the child with `SIGTERM` (unless it has exited already) and waits
/// for it, killing it after [`STOP_WAIT`].
pub(super) async fn stop(
    running: &mut Running,
    early_exit: Option<ExitStatus>,
) -> anyhow::Result<Stop> {
    if let Some(status) = early_exit {
        return Ok(Stop {
            status,
            early: true,
            took: Duration::ZERO,
            killed: false,
        });
    }
    let pid = running.pid().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .context("running `kill -TERM`")?;
    anyhow::ensure!(sent.success(), "`kill -TERM {pid}` failed ({sent})");
    let asked = Instant::now();
    loop {
        if let Some(status) = running
            .child
            .try_wait()
            .context("waiting for the synchronizer")?
        {
            return Ok(Stop {
                status,
                early: false,
                took: asked.elapsed(),
                killed: false,
            });
        }
        if asked.elapsed() >= STOP_WAIT {
            running.child.kill().context("killing the synchronizer")?;
            let status = running
                .child
                .wait()
                .context("waiting for the synchronizer")?;
            return Ok(Stop {
                status,
                early: false,
                took: asked.elapsed(),
                killed: true,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
