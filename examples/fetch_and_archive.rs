//! Example 4: fetch events from a relay with `nostr-sdk` and archive them
//! with their provenance.
//!
//! ```sh
//! cargo run --example fetch_and_archive                            # an in-process relay
//! cargo run --example fetch_and_archive -- wss://relay.damus.io 50   # a relay, at most 50 notes
//! ```
//!
//! A `nostr_sdk::Client` connects to the relay and [`fetch_and_archive`]
//! asks it for a [`Filter`] (`Client::fetch_events`, until EOSE or the
//! timeout). The relay is recorded with [`Brotr::insert_relay`]; every event
//! fetched is archived as seen on that [`RelayId`] with
//! [`Brotr::insert_event_batch`], which checks each id and signature and
//! stores each event once, however many relays served it. Without a URL an
//! in-process relay on 127.0.0.1 serves a few notes signed for the occasion.

use std::time::Duration;

use anyhow::Context as _;
use bigbrotr_brotr::{Brotr, InsertEventsReport, RelayId};
use bigbrotr_config::Env;
use bigbrotr_examples::{InProcessRelay, POOL_CLOSE_GRACE};
use nostr::{Event, EventBuilder, Filter, Keys, Kind};
use nostr_sdk::Client;

/// Longest wait for the connection, then for the relay's answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Fetches the events of `relay_url` matching `filter` and archives them as
/// seen there now. Returns how many the relay sent and what was stored.
async fn fetch_and_archive(
    brotr: &Brotr,
    relay_url: &str,
    filter: Filter,
) -> anyhow::Result<(usize, InsertEventsReport)> {
    let client = Client::default();
    client
        .add_relay(relay_url)
        .await
        .with_context(|| format!("`{relay_url}` is not a relay URL"))?;
    let fetched = async {
        client.try_connect_relay(relay_url, TIMEOUT).await?;
        client.fetch_events(filter, TIMEOUT).await
    }
    .await;
    client.shutdown().await;
    let events = fetched.with_context(|| format!("fetching events from {relay_url}"))?;

    let now = bigbrotr_utils::now_timestamp();
    let relay: RelayId = brotr
        .insert_relay(relay_url, now)
        .await
        .with_context(|| format!("recording relay `{relay_url}`"))?;
    let batch: Vec<(Event, RelayId)> = events.into_iter().map(|event| (event, relay)).collect();
    let report = brotr
        .insert_event_batch(&batch, now)
        .await
        .context("archiving the events")?;
    Ok((batch.len(), report))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let limit: usize = match args.get(1) {
        Some(limit) => limit.parse().context("LIMIT must be a number")?,
        None => 20,
    };
    // Kept until the end: the in-process relay stops when dropped.
    let (url, _local_relay) = match args.first() {
        Some(url) => (url.clone(), None),
        None => {
            let keys = Keys::generate();
            let notes = (0..limit)
                .map(|i| EventBuilder::text_note(format!("note {i}")).sign_with_keys(&keys))
                .collect::<Result<Vec<_>, _>>()?;
            let relay = InProcessRelay::start(&notes).await?;
            (relay.url().to_owned(), Some(relay))
        }
    };

    let (implementation, env) = bigbrotr_examples::implementation(Env::from_process())?;
    let brotr =
        bigbrotr_examples::open_archive(&implementation, &env, "bigbrotr-example-fetch").await?;
    let filter = Filter::new().kind(Kind::TextNote).limit(limit);
    let result = fetch_and_archive(&brotr, &url, filter).await;
    brotr.pool().disconnect(POOL_CLOSE_GRACE).await;
    let (fetched, report) = result?;
    println!(
        "{url}: {fetched} events fetched, {} new, {} archived already, {} first seen there, {} refused",
        report.stored,
        report.duplicates,
        report.relations_stored,
        report.rejected.len()
    );
    for rejected in &report.rejected {
        println!("  refused {:?}: {}", rejected.event_id, rejected.reason);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bigbrotr_examples::testing::{fresh_database, scalar};

    use super::*;

    #[tokio::test]
    async fn events_are_archived_once_and_each_relay_that_served_them_is_recorded() {
        let (db, implementation, env) = fresh_database().await;
        let brotr = bigbrotr_examples::open_archive(&implementation, &env, "test")
            .await
            .unwrap();
        let keys = Keys::generate();
        let notes: Vec<Event> = (0..25)
            .map(|i| {
                EventBuilder::text_note(format!("note {i}"))
                    .sign_with_keys(&keys)
                    .unwrap()
            })
            .collect();
        let profile = EventBuilder::new(Kind::Metadata, "{}")
            .sign_with_keys(&keys)
            .unwrap();
        let mut held = notes.clone();
        held.push(profile);
        let one = InProcessRelay::start(&held).await.unwrap();
        let two = InProcessRelay::start(&notes[..10]).await.unwrap();
        let notes_filter = || Filter::new().kind(Kind::TextNote).limit(100);

        let (fetched, report) = fetch_and_archive(&brotr, one.url(), notes_filter())
            .await
            .unwrap();
        assert_eq!(fetched, 25, "the kind 0 event is not asked for");
        assert_eq!(
            (report.stored, report.duplicates, report.relations_stored),
            (25, 0, 25)
        );
        assert!(report.rejected.is_empty());

        // Another relay serving some of them: nothing new but the provenance.
        let (fetched, report) = fetch_and_archive(&brotr, two.url(), notes_filter())
            .await
            .unwrap();
        assert_eq!(fetched, 10);
        assert_eq!(
            (report.stored, report.duplicates, report.relations_stored),
            (0, 10, 10)
        );

        assert_eq!(scalar(&db, "SELECT count(*) FROM events").await, 25);
        let seen_on = |url: &str| {
            format!(
                "SELECT count(*) FROM events_relays er JOIN relays r ON r.id = er.relay_id \
                 WHERE r.url = '{url}'"
            )
        };
        assert_eq!(scalar(&db, &seen_on(one.url())).await, 25);
        assert_eq!(scalar(&db, &seen_on(two.url())).await, 10);
        brotr.pool().disconnect(POOL_CLOSE_GRACE).await;
    }

    #[tokio::test]
    async fn a_relay_that_cannot_be_reached_is_an_error_and_nothing_is_stored() {
        let (db, implementation, env) = fresh_database().await;
        let brotr = bigbrotr_examples::open_archive(&implementation, &env, "test")
            .await
            .unwrap();
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("ws://127.0.0.1:{port}");
        let error = fetch_and_archive(&brotr, &url, Filter::new().limit(1))
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), format!("fetching events from {url}"));
        assert_eq!(scalar(&db, "SELECT count(*) FROM relays").await, 0);
        brotr.pool().disconnect(POOL_CLOSE_GRACE).await;
    }
}
