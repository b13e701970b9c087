//! NIP-77 from the relay side: a client reconciles against the archive,
//! empty or half full, and gets exactly what it lacks; a filter matching
//! more than the configured size is refused.

use std::collections::HashSet;

use nostr::{Event, EventBuilder, Filter, Keys, Kind, Timestamp};
use nostr_sdk::prelude::{MemoryDatabase, MemoryDatabaseOptions, NostrDatabase, SyncOptions};
use nostr_sdk::Client;
use serde_json::json;

use crate::support::{config, serve, Raw};

fn notes(n: u64) -> Vec<Event> {
    let keys = Keys::generate();
    (0..n)
        .map(|i| {
            EventBuilder::new(Kind::TextNote, format!("note {i}"))
                .custom_created_at(Timestamp::from_secs(1_700_000_000 + i))
                .sign_with_keys(&keys)
                .expect("signed")
        })
        .collect()
}

async fn client_holding(events: &[Event]) -> Client {
    let database = MemoryDatabase::with_opts(MemoryDatabaseOptions {
        events: true,
        max_events: None,
    });
    for event in events {
        database.save_event(event).await.expect("saved");
    }
    Client::builder().database(database).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reconciles_from_empty_and_from_half_full() {
    let events = notes(600);
    let served = serve("bigbrotr", config(), &events).await;
    let all: HashSet<_> = events.iter().map(|e| e.id).collect();
    for held in [0, 300] {
        let client = client_holding(&events[..held]).await;
        client.add_relay(served.url()).await.expect("relay");
        client.connect().await;
        let output = client
            .sync(Filter::new().kind(Kind::TextNote), &SyncOptions::default())
            .await
            .expect("reconciled");
        let want: HashSet<_> = events[held..].iter().map(|e| e.id).collect();
        assert_eq!(output.val.remote, want, "holding {held}");
        assert_eq!(output.val.received, want, "holding {held}");
        assert!(output.val.local.is_empty());
        let now = client
            .database()
            .query(Filter::new().kind(Kind::TextNote))
            .await
            .expect("queried");
        assert_eq!(now.iter().map(|e| e.id).collect::<HashSet<_>>(), all);
        client.disconnect().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_over_the_size_limit_is_refused() {
    let mut relay = config();
    relay.max_negentropy_events = 5;
    let served = serve("bigbrotr", relay, &notes(6)).await;
    let mut raw = Raw::connect(&served.url()).await;
    // An initial message of an empty set (protocol version 0x61).
    raw.send(&json!(["NEG-OPEN", "n", {"kinds": [1]}, "6100000200"]))
        .await;
    let answer = raw.until(&["NEG-ERR", "NEG-MSG"]).await;
    assert_eq!(
        answer,
        [json!([
            "NEG-ERR",
            "n",
            "blocked: more than 5 events match; narrow the filter with since and until"
        ])]
    );
    // Narrowed, it is answered.
    raw.send(&json!(["NEG-OPEN", "n", {"kinds": [1], "since": 1_700_000_001}, "6100000200"]))
        .await;
    let answer = raw.until(&["NEG-ERR", "NEG-MSG"]).await;
    assert_eq!(answer[0][0], "NEG-MSG", "{answer:?}");
    raw.send(&json!(["NEG-MSG", "unknown", "61"])).await;
    let answer = raw.until(&["NEG-ERR"]).await;
    assert_eq!(
        answer,
        [json!([
            "NEG-ERR",
            "unknown",
            "closed: no reconciliation open with this id"
        ])]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliations_past_the_relay_wide_limit_are_refused_until_one_ends() {
    let mut relay = config();
    relay.max_negentropy_sessions = 1;
    let served = serve("bigbrotr", relay, &notes(3)).await;
    let mut first = Raw::connect(&served.url()).await;
    let mut second = Raw::connect(&served.url()).await;
    first
        .send(&json!(["NEG-OPEN", "a", {}, "6100000200"]))
        .await;
    assert_eq!(first.until(&["NEG-MSG", "NEG-ERR"]).await[0][0], "NEG-MSG");
    second
        .send(&json!(["NEG-OPEN", "b", {}, "6100000200"]))
        .await;
    assert_eq!(
        second.until(&["NEG-MSG", "NEG-ERR"]).await,
        [json!([
            "NEG-ERR",
            "b",
            "rate-limited: 1 reconciliations are open on this relay; try again later"
        ])]
    );
    first.send(&json!(["NEG-CLOSE", "a"])).await;
    // The place frees once the relay read the NEG-CLOSE.
    let mut answered = Vec::new();
    for _ in 0..50 {
        second
            .send(&json!(["NEG-OPEN", "b", {}, "6100000200"]))
            .await;
        answered = second.until(&["NEG-MSG", "NEG-ERR"]).await;
        if answered[0][0] == "NEG-MSG" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(answered[0][0], "NEG-MSG", "{answered:?}");
}
