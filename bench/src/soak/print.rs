//! What a case prints: its rates, memory, the synchronizer's exit and log;
//! and the summary table of every case.

use std::path::Path;

use super::case::{Case, CaseResult};
use super::fixtures::Layout;
use super::sampling::Sample;
use super::settings::Settings;
use super::statistics::{
    first_past, growth_from, rate, FLAT_GROWTH, MIN_VERDICT_SAMPLES, NEW_HIGH_MARGIN,
};
use super::synchronizer::{
    RECEIVED, RECEIVED_BYTES, RECONCILIATIONS, REQUESTS, SIGHTINGS, STOP_WAIT, STORED,
};
use crate::child::Stop;
use crate::output::{group, megabytes};

/// One line per case: the rate and what the archive cost in requests and
/// bytes, from the synchronizer's counters.
pub(super) fn print_summary(results: &[CaseResult], settings: &Settings) {
    println!();
    println!(
        "Summary: {} events, {} cores; \"per event\": per distinct event the relays hold, all \
         archived by each run (nip77-again walks them again and archives none)",
        group(settings.events as f64),
        settings.workers
    );
    println!(
        "{:<12} {:>6} {:>8} {:>9} {:>10} {:>11} {:>14} {:>9} {:>9} {:>10} {:>8} {:>6}",
        "case",
        "relays",
        "seconds",
        "events/s",
        "REQs/1000",
        "bytes/event",
        "received/event",
        "reconcil.",
        "sightings",
        "quarantine",
        "peak MB",
        "check"
    );
    for result in results {
        let per_event = |name: &str| {
            result.metrics.as_ref().map_or_else(
                || "?".to_owned(),
                |metrics| {
                    let value = metrics.total(name) / result.events.max(1) as f64;
                    if name == REQUESTS {
                        format!("{:.1}", value * 1000.0)
                    } else if name == RECEIVED {
                        format!("{value:.3}")
                    } else {
                        group(value)
                    }
                },
            )
        };
        let count = |name: &str| {
            result
                .metrics
                .as_ref()
                .map_or_else(|| "?".to_owned(), |metrics| group(metrics.total(name)))
        };
        println!(
            "{:<12} {:>6} {:>8} {:>9} {:>10} {:>11} {:>14} {:>9} {:>9} {:>10} {:>8} {:>6}",
            result.case.name(),
            result.relays,
            result.took.map_or_else(
                || "-".to_owned(),
                |took| format!("{:.0}", took.as_secs_f64())
            ),
            result
                .took
                .map_or_else(|| "-".to_owned(), |took| group(rate(result.events, took))),
            per_event(REQUESTS),
            per_event(RECEIVED_BYTES),
            per_event(RECEIVED),
            count(RECONCILIATIONS),
            count(SIGHTINGS),
            result
                .quarantined
                .map_or_else(|| "?".to_owned(), |rows| group(rows as f64)),
            mb(result.peak),
            if result.passed { "ok" } else { "FAILED" },
        );
        if let Some(metrics) = &result.metrics {
            if result.case != Case::Nip77Again && metrics.total(STORED) as u64 != result.events {
                println!(
                    "  ({} events stored by the counters, {} expected)",
                    group(metrics.total(STORED)),
                    group(result.events as f64)
                );
            }
        }
    }
}

/// Bytes in MB with one decimal, `?` when unknown.
pub(super) fn mb(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "?".to_owned(),
        |bytes| format!("{:.1}", bytes as f64 / 1e6),
    )
}

/// Rates from the synchronizer's start, and in the steady part: from the
/// first sample past 10 % to the last one before completion.
pub(super) fn print_rates(
    samples: &[Sample],
    complete: Option<usize>,
    layout: &Layout,
    settings: &Settings,
) {
    let Some(last) = samples.last() else {
        println!("no sample taken");
        return;
    };
    match complete {
        Some(index) => {
            let done = &samples[index];
            println!(
                "archived everything in {:.0} s (to the sample that saw it, every {} s)",
                done.at.as_secs_f64(),
                settings.sample.as_secs()
            );
        }
        None => println!(
            "INCOMPLETE: {} of {} sightings and {} of {} events archived when the run ended \
             after {:.0} s (BENCH_SOAK_SECS={})",
            group(last.sightings as f64),
            group(layout.sightings as f64),
            group(last.events as f64),
            group(layout.events as f64),
            last.at.as_secs_f64(),
            settings.limit.as_secs()
        ),
    }
    println!(
        "  from the synchronizer's start: {} events/s, {} sightings/s",
        group(rate(last.events, last.at)),
        group(rate(last.sightings, last.at))
    );
    let first = first_past(samples, layout.sightings, 0.10);
    let before_end = match complete {
        Some(index) if index > 0 => index - 1,
        Some(index) => index,
        None => samples.len() - 1,
    };
    if let Some(first) = first.filter(|first| *first < before_end) {
        let (from, to) = (&samples[first], &samples[before_end]);
        let elapsed = to.at - from.at;
        println!(
            "  steady part ({:.0} s to {:.0} s, {:.0} % to {:.0} %): {} events/s, {} sightings/s",
            from.at.as_secs_f64(),
            to.at.as_secs_f64(),
            100.0 * from.sightings as f64 / layout.sightings.max(1) as f64,
            100.0 * to.sightings as f64 / layout.sightings.max(1) as f64,
            group(rate(to.events - from.events.min(to.events), elapsed)),
            group(rate(
                to.sightings - from.sightings.min(to.sightings),
                elapsed
            )),
        );
    } else {
        println!("  steady part: too few samples (lower BENCH_SOAK_SAMPLE_SECS)");
    }
}

/// The synchronizer's resident memory over the run, and its growth with
/// the sightings archived.
pub(super) fn print_memory(samples: &[Sample], layout: &Layout) {
    let rss_at = |share: f64| {
        first_past(samples, layout.sightings, share)
            .and_then(|index| Some((samples[index], samples[index].rss?)))
    };
    let mut points = Vec::new();
    for (name, share) in [("10 %", 0.10), ("50 %", 0.50), ("100 %", 1.0)] {
        if let Some((sample, rss)) = rss_at(share) {
            points.push(format!(
                "{name} {} (at {:.0} s)",
                megabytes(rss),
                sample.at.as_secs_f64()
            ));
        }
    }
    let peak = samples.iter().filter_map(|sample| sample.peak).max();
    println!(
        "synchronizer RSS: {}; peak (VmHWM) {}",
        if points.is_empty() {
            "not sampled".to_owned()
        } else {
            points.join(", ")
        },
        peak.map_or_else(|| "?".to_owned(), megabytes)
    );
    let Some(growth) = growth_from(samples, layout, 0.10) else {
        println!("RSS growth: too few samples after 10 % archived");
        return;
    };
    println!(
        "RSS growth from 10 % to the end: {:+.2} MB per 100 000 sightings ({:+.1} MB over {} sightings; \
         least-squares slope over {} samples: {})",
        growth.per_100k / 1e6,
        growth.total / 1e6,
        group(growth.sightings),
        growth.samples,
        growth
            .slope
            .map_or_else(|| "?".to_owned(), |slope| format!("{:+.2} MB", slope / 1e6))
    );
    if let Some(second) = growth_from(samples, layout, 0.50) {
        println!(
            "  from 50 % to the end: {:+.2} MB per 100 000 sightings ({:+.1} MB)",
            second.per_100k / 1e6,
            second.total / 1e6
        );
    }
    if growth.samples < MIN_VERDICT_SAMPLES || growth.late_samples < 2 {
        println!(
            "verdict: none, {} samples after 10 % (at least {MIN_VERDICT_SAMPLES} needed, 2 in the \
             last quarter: more events or a shorter BENCH_SOAK_SAMPLE_SECS)",
            growth.samples
        );
    } else if growth
        .slope
        .map_or(growth.per_100k, |slope| slope.max(growth.per_100k))
        <= FLAT_GROWTH
    {
        println!(
            "verdict: flat, RSS does not grow with the events archived (at most {:.0} MB per \
             100 000 sightings from 10 % on)",
            FLAT_GROWTH / 1e6
        );
    } else if growth.peak_end <= growth.peak_before + NEW_HIGH_MARGIN {
        println!(
            "verdict: bounded, the growth is above {:.0} MB per 100 000 sightings but the peak \
             (VmHWM) rose no more than {:.0} MB over the last quarter of the sightings after 10 % \
             ({} to {}): the memory levelled off rather than growing with the events archived",
            FLAT_GROWTH / 1e6,
            NEW_HIGH_MARGIN / 1e6,
            megabytes(growth.peak_before as u64),
            megabytes(growth.peak_end as u64),
        );
    } else {
        println!(
            "verdict: RSS GROWS with the events archived: more than {:.0} MB per 100 000 sightings, \
             and the peak (VmHWM) still rose over the last quarter of the sightings after 10 % \
             ({} to {})",
            FLAT_GROWTH / 1e6,
            megabytes(growth.peak_before as u64),
            megabytes(growth.peak_end as u64),
        );
    }
}

/// How the synchronizer ended.
pub(super) fn print_stop(stop: &Stop) {
    let how = if stop.early {
        "exited before the end of the run".to_owned()
    } else if stop.killed {
        format!(
            "did NOT exit within {} s of SIGTERM and was killed",
            STOP_WAIT.as_secs()
        )
    } else {
        format!("exited {:.1} s after SIGTERM", stop.took.as_secs_f64())
    };
    let code = stop.status.code().map_or_else(
        || stop.status.to_string(),
        |code| format!("exit status {code}"),
    );
    let verdict = if stop.status.success() && !stop.early && !stop.killed {
        ""
    } else {
        " (UNEXPECTED: 0 after SIGTERM expected)"
    };
    println!("synchronizer: {how}, {code}{verdict}");
}

/// Counts the warnings and errors of the synchronizer's log and shows the
/// first few.
pub(super) fn print_log(path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        println!("log: {} could not be read", path.display());
        return;
    };
    let level = |line: &str, name: &str| line.split_whitespace().take(3).any(|word| word == name);
    let warnings: Vec<&str> = text.lines().filter(|line| level(line, "WARN")).collect();
    let errors: Vec<&str> = text.lines().filter(|line| level(line, "ERROR")).collect();
    println!(
        "log: {} lines, {} warnings, {} errors ({})",
        text.lines().count(),
        warnings.len(),
        errors.len(),
        path.display()
    );
    for line in errors.iter().chain(&warnings).take(5) {
        println!("  {}", line.chars().take(300).collect::<String>());
    }
}
