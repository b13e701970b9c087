//! The corpus of real events: every valid one is stored and read back
//! equal, every invalid one refused. Skipped, with a note, when the corpus
//! is not beside the repository.

use std::path::Path;
use std::sync::Arc;

use bigbrotr_brotr::{Brotr, RejectReason, RelayId};
use bigbrotr_config::BrotrConfig;
use nostr::{Event, JsonUtil};
use serde_json::Value;

use crate::support::{corpus_dir, fixture_with};

const CALL_SIZE: usize = 1000;
const READERS: usize = 8;

fn config() -> BrotrConfig {
    BrotrConfig {
        batch_size: CALL_SIZE,
        ..BrotrConfig::default()
    }
}

/// Every line of `real-events.jsonl`, parsed as JSON and as an event.
fn real_events(dir: &Path) -> Vec<(Value, Event)> {
    let text = std::fs::read_to_string(dir.join("real-events.jsonl")).expect("real events");
    text.lines()
        .enumerate()
        .map(|(n, line)| {
            let value: Value = serde_json::from_str(line).expect("JSON line");
            let event = Event::from_json(line)
                .unwrap_or_else(|e| panic!("line {}: not an event: {e}", n + 1));
            (value, event)
        })
        .collect()
}

async fn store_all(brotr: &Brotr, relay: RelayId, events: &[Event]) -> u64 {
    let mut stored = 0;
    for part in events.chunks(CALL_SIZE) {
        let batch: Vec<(Event, RelayId)> = part.iter().cloned().map(|e| (e, relay)).collect();
        let report = brotr.insert_event_batch(&batch, 1).await.expect("insert");
        assert_eq!(report.rejected, [], "a real event was refused");
        stored += report.stored;
    }
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_real_event_is_stored_and_read_back_equal() {
    let Some(dir) = corpus_dir() else { return };
    let corpus = real_events(&dir);
    let f = fixture_with("bigbrotr", config()).await;
    let relay = f
        .brotr
        .insert_relay("wss://corpus.example", 1)
        .await
        .unwrap();
    let events: Vec<Event> = corpus.iter().map(|(_, e)| e.clone()).collect();

    assert_eq!(
        store_all(&f.brotr, relay, &events).await,
        corpus.len() as u64
    );
    assert_eq!(f.count("events").await, corpus.len() as i64);
    let again = &events[..CALL_SIZE.min(events.len())];
    assert_eq!(store_all(&f.brotr, relay, again).await, 0, "idempotent");

    let corpus = Arc::new(corpus);
    let mut readers = tokio::task::JoinSet::new();
    for reader in 0..READERS {
        let corpus = Arc::clone(&corpus);
        let brotr = f.brotr.clone();
        readers.spawn(async move {
            let mut mismatches = Vec::new();
            for (expected, event) in corpus.iter().skip(reader).step_by(READERS) {
                match brotr.get_event_by_id(&event.id).await {
                    Ok(Some(read)) => {
                        if serde_json::to_value(&read).unwrap() != *expected {
                            mismatches.push(format!("{}: differs", event.id));
                        }
                    }
                    Ok(None) => mismatches.push(format!("{}: missing", event.id)),
                    Err(error) => mismatches.push(format!("{}: {error}", event.id)),
                }
            }
            mismatches
        });
    }
    let mut mismatches = Vec::new();
    while let Some(joined) = readers.join_next().await {
        mismatches.extend(joined.expect("reader"));
    }
    assert_eq!(mismatches, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_object_is_refused_and_nothing_is_stored() {
    let Some(dir) = corpus_dir() else { return };
    let text = std::fs::read_to_string(dir.join("invalid-events.jsonl")).expect("invalid events");
    let mut unparsable = 0;
    let mut parsed = Vec::new();
    for line in text.lines() {
        let wrapper: Value = serde_json::from_str(line).expect("JSON line");
        let object = wrapper.get("event").expect("an event field").to_string();
        match Event::from_json(&object) {
            Ok(event) => parsed.push((wrapper["why"].to_string(), event)),
            Err(_) => unparsable += 1,
        }
    }
    assert_eq!(unparsable + parsed.len(), text.lines().count());
    assert!(
        !parsed.is_empty(),
        "some objects parse and must fail verification"
    );

    let f = fixture_with("bigbrotr", config()).await;
    let relay = f
        .brotr
        .insert_relay("wss://corpus.example", 1)
        .await
        .unwrap();
    let batch: Vec<(Event, RelayId)> = parsed.iter().map(|(_, e)| (e.clone(), relay)).collect();
    let report = f.brotr.insert_event_batch(&batch, 1).await.unwrap();
    let accepted: Vec<String> = {
        let rejected: std::collections::HashSet<usize> =
            report.rejected.iter().map(|r| r.index).collect();
        parsed
            .iter()
            .enumerate()
            .filter(|(i, _)| !rejected.contains(i))
            .map(|(_, (why, event))| format!("{}: {why}", event.id))
            .collect()
    };
    assert_eq!(accepted, Vec::<String>::new(), "invalid objects accepted");
    let reasons: std::collections::HashSet<RejectReason> =
        report.rejected.iter().map(|r| r.reason).collect();
    assert!(reasons.contains(&RejectReason::InvalidId), "{reasons:?}");
    assert!(
        reasons.contains(&RejectReason::InvalidSignature),
        "{reasons:?}"
    );
    assert_eq!(report.stored, 0);
    assert_eq!(f.count("events").await, 0);
    assert_eq!(f.count("events_relays").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lilbrotr_stores_every_real_event() {
    let Some(dir) = corpus_dir() else { return };
    let events: Vec<Event> = real_events(&dir).into_iter().map(|(_, e)| e).collect();
    let f = fixture_with("lilbrotr", config()).await;
    let relay = f
        .brotr
        .insert_relay("wss://corpus.example", 1)
        .await
        .unwrap();
    assert_eq!(
        store_all(&f.brotr, relay, &events).await,
        events.len() as u64
    );
    assert_eq!(f.count("events").await, events.len() as i64);
    for event in events.iter().step_by(97) {
        assert!(f.brotr.event_exists(&event.id).await.unwrap());
    }
}
