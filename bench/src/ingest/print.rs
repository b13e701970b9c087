//! What the ingest benchmark prints: the table of rates, the CPU time per
//! event, and the figures against their targets.

use std::time::Duration;

use super::Figure;
use crate::output::{group, megabytes};

/// Targets the figures are reported against.
const TARGET_VALIDATED_RATE: f64 = 25_000.0;
const TARGET_SHARE_OF_COPY: f64 = 0.70;
const TARGET_PEAK_RSS: u64 = 200_000_000;

pub(super) fn print_table(figures: &[Figure]) {
    let copy_rate = figures
        .iter()
        .find(|figure| figure.what.starts_with("binary COPY"))
        .map(Figure::rate);
    let width = figures
        .iter()
        .map(|figure| figure.what.chars().count())
        .max()
        .unwrap_or(0);
    println!(
        "{:<width$}  {:>9}  {:>8}  {:>9}  {:>7}  {:>8}",
        "what", "items", "seconds", "events/s", "vs COPY", "peak RSS"
    );
    for figure in figures {
        let share = copy_rate.map_or_else(String::new, |copy| {
            format!("{:.0} %", 100.0 * figure.rate() / copy)
        });
        let rss = figure.peak_rss.map_or_else(String::new, megabytes);
        println!(
            "{:<width$}  {:>9}  {:>8.2}  {:>9}  {:>7}  {:>8}",
            figure.what,
            group(figure.items as f64),
            figure.elapsed.as_secs_f64(),
            group(figure.rate()),
            share,
            rss
        );
    }
    println!(
        "events/s counts distinct events; the insert and import lines also store \
         every other event's sighting on a second relay (items = sightings)."
    );
}

/// Where the CPU time went, per distinct event, and the rate the machine
/// could reach if nothing else ran on it and every core were busy: the
/// figure that does not depend on what else the machine was doing.
pub(super) fn print_cpu(figures: &[Figure], workers: usize) {
    if figures.iter().all(|figure| figure.cpu.is_none()) {
        return;
    }
    let width = figures
        .iter()
        .map(|figure| figure.what.chars().count())
        .max()
        .unwrap_or(0);
    println!();
    println!(
        "CPU time per event (µs), from /proc; ceiling = events/s with all {workers} cores busy on this work alone"
    );
    println!(
        "{:<width$}  {:>7}  {:>8}  {:>9}  {:>7}  {:>9}",
        "what", "client", "postgres", "pgbouncer", "total", "ceiling"
    );
    for figure in figures {
        let Some(cpu) = figure.cpu else { continue };
        let per_event = |d: Duration| d.as_secs_f64() * 1e6 / figure.events.max(1) as f64;
        let total = per_event(cpu.total());
        let ceiling = if total > 0.0 {
            group(workers as f64 * 1e6 / total)
        } else {
            String::new()
        };
        println!(
            "{:<width$}  {:>7.1}  {:>8.1}  {:>9.1}  {:>7.1}  {:>9}",
            figure.what,
            per_event(cpu.client),
            per_event(cpu.postgres),
            per_event(cpu.pgbouncer),
            total,
            ceiling
        );
    }
}

pub(super) fn print_targets(figures: &[Figure], large_rss: Option<u64>, large: bool) {
    let rate_of = |prefix: &str| {
        figures
            .iter()
            .find(|figure| figure.what.starts_with(prefix))
            .map(Figure::rate)
    };
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!();
    println!("targets (reported, not enforced):");
    for (what, prefix) in [
        ("insert_event_batch", "insert_event_batch, validation on"),
        ("bigbrotr import", "bigbrotr import (2 runs"),
    ] {
        if let Some(rate) = rate_of(prefix) {
            println!(
                "  >= {} events/s with full validation, {what}: {} ({})",
                group(TARGET_VALIDATED_RATE),
                group(rate),
                verdict(rate >= TARGET_VALIDATED_RATE)
            );
        }
    }
    if let (Some(off), Some(copy)) = (
        rate_of("insert_event_batch, validation off"),
        rate_of("binary COPY"),
    ) {
        let share = off / copy;
        println!(
            "  >= {:.0} % of the COPY rate without validation, insert_event_batch: {:.0} % ({})",
            100.0 * TARGET_SHARE_OF_COPY,
            100.0 * share,
            verdict(share >= TARGET_SHARE_OF_COPY)
        );
        if let Some(schema) = rate_of("binary COPY into events") {
            println!(
                "    (against a COPY into the same indexed tables, which the schema itself costs: {:.0} %)",
                100.0 * off / schema
            );
        }
    }
    match (large, large_rss) {
        (true, Some(rss)) => println!(
            "  peak RSS < {} for the large import: {} ({})",
            megabytes(TARGET_PEAK_RSS),
            megabytes(rss),
            verdict(rss < TARGET_PEAK_RSS)
        ),
        (true, None) => println!("  peak RSS of the large import: could not be read"),
        (false, _) => println!("  peak RSS for 1M events: not measured (set BENCH_LARGE=1)"),
    }
}
