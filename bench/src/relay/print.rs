//! What the relay benchmark prints: a line per shape and relay, and the
//! shapes where the relays did not return the same number of events.

use std::time::Duration;

use super::client::{percentile, Outcome};
use super::shapes::Shape;
use crate::output::group;

/// One line of the table.
#[derive(Debug)]
pub(super) struct Line {
    shape: Shape,
    relay: &'static str,
    pub(super) qps: f64,
    pub(super) p50_ms: f64,
    p90_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) events_per_request: f64,
    failures: usize,
    first_failure: Option<String>,
    /// CPU time per request: the relay's, and for the archive relay
    /// PostgreSQL's and PgBouncer's too.
    cpu_ms: Option<f64>,
}

impl Line {
    pub(super) fn new(
        shape: Shape,
        relay: &'static str,
        outcome: &Outcome,
        cpu: Option<Duration>,
    ) -> Self {
        let mut sorted: Vec<Duration> = outcome.latencies.iter().flatten().copied().collect();
        sorted.sort_unstable();
        let ms = |p: f64| percentile(&sorted, p).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
        let answered = sorted.len().max(1) as f64;
        Self {
            shape,
            relay,
            qps: outcome.rate(),
            p50_ms: ms(50.0),
            p90_ms: ms(90.0),
            p99_ms: ms(99.0),
            events_per_request: outcome.events.iter().map(|&n| f64::from(n)).sum::<f64>()
                / answered,
            failures: outcome.failures,
            first_failure: outcome.first_failure.clone(),
            cpu_ms: cpu.map(|cpu| cpu.as_secs_f64() * 1e3 / answered),
        }
    }
}

pub(super) fn print_table(lines: &[Line]) {
    let width = lines
        .iter()
        .map(|line| line.shape.name().len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:<width$}  {:<14}  {:>7}  {:>7}  {:>7}  {:>7}  {:>10}  {:>10}  {:>6}  {:>7}",
        "shape",
        "relay",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "events/req",
        "CPU ms/req",
        "failed",
        "vs other"
    );
    let mut previous: Option<Shape> = None;
    for (index, line) in lines.iter().enumerate() {
        let shape = if previous == Some(line.shape) {
            ""
        } else {
            line.shape.name()
        };
        previous = Some(line.shape);
        // BigBrotr's throughput against nostr-rs-relay's, on its line.
        let ratio = lines
            .get(index + 1)
            .filter(|next| next.shape == line.shape && shape == line.shape.name())
            .map_or_else(String::new, |next| {
                format!("{:.2}x", line.qps / next.qps.max(1e-9))
            });
        let cpu = line
            .cpu_ms
            .map_or_else(String::new, |cpu| format!("{cpu:.2}"));
        println!(
            "{:<width$}  {:<14}  {:>7}  {:>7.2}  {:>7.2}  {:>7.2}  {:>10.1}  {:>10}  {:>6}  {:>7}",
            shape,
            line.relay,
            group(line.qps),
            line.p50_ms,
            line.p90_ms,
            line.p99_ms,
            line.events_per_request,
            cpu,
            line.failures,
            ratio
        );
    }
    println!(
        "CPU ms/req: the relay process's CPU time per request, plus every postgres and pgbouncer \
         process's for the archive relay; vs other: the archive relay's req/s over nostr-rs-relay's."
    );
    for line in lines.iter().filter(|line| line.failures > 0) {
        println!(
            "FAILED: {} requests of {} to {}; the first: {}",
            line.failures,
            line.shape.name(),
            line.relay,
            line.first_failure.as_deref().unwrap_or("")
        );
    }
}

/// The shapes whose requests did not get as many events from both relays:
/// `(shape, requests that differ, events of the archive relay, events of
/// nostr-rs-relay)`.
pub(super) fn print_mismatches(mismatches: &[(Shape, usize, u64, u64)]) {
    for (shape, requests, ours, theirs) in mismatches {
        println!(
            "WARNING: {}: {} requests got a different number of events from the two relays \
             (in all {} from bigbrotr, {} from nostr-rs-relay)",
            shape.name(),
            group(*requests as f64),
            group(*ours as f64),
            group(*theirs as f64)
        );
    }
}
