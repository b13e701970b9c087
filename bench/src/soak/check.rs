//! The checks of a case, printed: the archive against what the relays held,
//! nothing downloaded again (`nip77-again`), and the quarantine of the
//! oversized events (`hostile`).

use anyhow::Context as _;
use bigbrotr_pool::ConnectionPool;

use super::fixtures::Layout;
use super::relay::BenchRelay;
use super::sampling::Quarantined;
use super::settings::Settings;
use super::synchronizer::{RECEIVED, RECONCILIATIONS, REQUESTS};
use crate::output::group;
use crate::scrape::Metrics;

/// Whether the run downloaded no event: on relays whose events are all
/// archived with provenance, reconciliation must find nothing missing.
pub(super) fn print_no_download(metrics: Option<&Metrics>) -> bool {
    let Some(metrics) = metrics else {
        println!("check: whether events were downloaded again is unknown (no metrics)");
        return false;
    };
    let (received, requests) = (metrics.total(RECEIVED), metrics.total(REQUESTS));
    if received == 0.0 {
        println!(
            "check: no event downloaded again ({} REQs, {} reconciliations)",
            group(requests),
            group(metrics.total(RECONCILIATIONS))
        );
        true
    } else {
        println!(
            "MISMATCH: {} events downloaded again ({} REQs) from relays whose events were all archived",
            group(received),
            group(requests)
        );
        false
    }
}

/// Whether the archive holds what the relays hold; returns whether it
/// does.
pub(super) fn print_check(
    layout: &Layout,
    relays: &[BenchRelay],
    complete: bool,
    events: u64,
    sightings: u64,
    per_relay: &[(String, u64)],
    settings: &Settings,
) -> bool {
    if !complete {
        println!(
            "check: not made, the run ended before everything was archived \
             ({} of {} events, {} of {} sightings; raise BENCH_SOAK_SECS or lower BENCH_SOAK_EVENTS)",
            group(events as f64),
            group(layout.events as f64),
            group(sightings as f64),
            group(layout.sightings as f64),
        );
        return false;
    }
    let mut problems = Vec::new();
    if events != layout.events {
        problems.push(format!(
            "{} events archived, {} expected",
            group(events as f64),
            group(layout.events as f64)
        ));
    }
    if sightings != layout.sightings {
        problems.push(format!(
            "{} sightings archived, {} expected",
            group(sightings as f64),
            group(layout.sightings as f64)
        ));
    }
    for (relay, range) in relays.iter().zip(&layout.ranges) {
        let found = per_relay
            .iter()
            .find(|(url, _)| url == relay.url())
            .map_or(0, |(_, count)| *count);
        if found != range.len() as u64 {
            problems.push(format!(
                "{} holds {} events, {} archived with provenance to it",
                relay.url(),
                group(range.len() as f64),
                group(found as f64)
            ));
        }
    }
    let extra: Vec<&str> = per_relay
        .iter()
        .filter(|(url, count)| *count > 0 && relays.iter().all(|relay| relay.url() != url))
        .map(|(url, _)| url.as_str())
        .collect();
    if !extra.is_empty() {
        problems.push(format!("sightings of unknown relays: {}", extra.join(", ")));
    }
    let passed = problems.is_empty();
    if passed {
        println!(
            "check: {} events and {} sightings archived, as expected; every relay's provenance complete",
            group(events as f64),
            group(sightings as f64)
        );
    } else {
        for problem in problems {
            println!("MISMATCH: {problem}");
        }
    }
    if settings.keep {
        println!("(BENCH_KEEP_DB=1: the database is kept for inspection)");
    }
    passed
}

/// Whether every relay's giant events were recorded in `quarantine` (by
/// their second or their id) and none was archived; returns whether so.
pub(super) async fn print_quarantine(
    layout: &Layout,
    relays: &[BenchRelay],
    rows: &[Quarantined],
    pool: &ConnectionPool,
) -> anyhow::Result<bool> {
    let expected = layout.giants.len() * relays.len();
    let mut problems = Vec::new();
    let mut matched = vec![false; rows.len()];
    for relay in relays {
        for giant in &layout.giants {
            let second = i64::try_from(giant.created_at.as_secs()).unwrap_or(i64::MAX);
            let id = giant.id.to_hex();
            let mut found = false;
            for (row, matched) in rows.iter().zip(matched.iter_mut()) {
                if row.url == relay.url()
                    && (row.created_at == Some(second) || row.event_id.as_deref() == Some(&id))
                {
                    *matched = true;
                    found = true;
                }
            }
            if !found {
                problems.push(format!(
                    "{} served the giant event of second {second}: not in quarantine",
                    relay.url()
                ));
            }
        }
    }
    let ids: Vec<String> = layout
        .giants
        .iter()
        .map(|giant| format!("decode('{}', 'hex')", giant.id.to_hex()))
        .collect();
    let row = pool
        .fetch_one(
            &format!(
                "SELECT count(*) FROM events WHERE id IN ({})",
                ids.join(", ")
            ),
            &[],
        )
        .await
        .context("looking for the giant events in the archive")?;
    let stored: i64 = row.get(0);
    if stored > 0 {
        problems.push(format!("{stored} giant events archived"));
    }
    let mut reasons: Vec<String> = Vec::new();
    for row in rows {
        let reason = row.reason.split(':').next().unwrap_or_default().to_owned();
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    let with_id = rows.iter().filter(|row| row.event_id.is_some()).count();
    let with_size = rows.iter().filter(|row| row.size.is_some()).count();
    println!(
        "quarantine: {} rows ({} giant events × {} relays = {expected}); reasons: {}; \
         {with_id} with an event id, {with_size} with a size",
        rows.len(),
        layout.giants.len(),
        relays.len(),
        if reasons.is_empty() {
            "none".to_owned()
        } else {
            reasons.join(", ")
        },
    );
    if let Some(row) = rows.first() {
        println!(
            "  e.g. {} second {} id {} size {}: {}",
            row.url,
            row.created_at
                .map_or_else(|| "?".to_owned(), |at| at.to_string()),
            row.event_id.as_deref().unwrap_or("?"),
            row.size
                .map_or_else(|| "?".to_owned(), |size| size.to_string()),
            row.reason.chars().take(200).collect::<String>()
        );
    }
    let extra = matched.iter().filter(|matched| !**matched).count();
    if extra > 0 {
        println!("  {extra} rows name no giant event of their relay");
    }
    let passed = problems.is_empty();
    if passed {
        println!("check: every giant event recorded in quarantine for every relay, none archived");
    } else {
        for problem in problems {
            println!("MISMATCH: {problem}");
        }
    }
    Ok(passed)
}
