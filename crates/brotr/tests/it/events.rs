//! Events: validation before the transaction, exact counts, idempotency,
//! provenance, chunks stored whole or not at all.

use bigbrotr_brotr::{Error, InsertEventsReport, RejectReason, Rejected, RelayId};
use bigbrotr_config::BrotrConfig;
use bigbrotr_pool::tokio_postgres::error::SqlState;
use bigbrotr_pool::Type;
use nostr::{Event, Keys, Timestamp};

use crate::support::{fixture, fixture_with, note, notes, IMPLEMENTATIONS};

#[tokio::test]
async fn an_event_is_stored_once_and_a_second_insert_stores_nothing() {
    for imp in IMPLEMENTATIONS {
        let f = fixture(imp).await;
        let relay = f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
        let event = note(&Keys::generate(), "hello");
        assert!(
            f.brotr.insert_event(&event, relay, 10).await.unwrap(),
            "{imp}"
        );
        assert!(
            !f.brotr.insert_event(&event, relay, 20).await.unwrap(),
            "{imp}"
        );
        assert_eq!(f.count("events").await, 1, "{imp}");
        assert_eq!(f.count("events_relays").await, 1, "{imp}");
        assert!(f.brotr.event_exists(&event.id).await.unwrap(), "{imp}");

        let batch: Vec<(Event, RelayId)> = notes(5).into_iter().map(|e| (e, relay)).collect();
        let first = f.brotr.insert_event_batch(&batch, 30).await.unwrap();
        assert_eq!(
            first,
            InsertEventsReport {
                stored: 5,
                duplicates: 0,
                relations_stored: 5,
                rejected: vec![],
            },
            "{imp}"
        );
        let second = f.brotr.insert_event_batch(&batch, 40).await.unwrap();
        assert_eq!(
            second,
            InsertEventsReport {
                stored: 0,
                duplicates: 5,
                relations_stored: 0,
                rejected: vec![],
            },
            "{imp}"
        );
        assert_eq!(f.count("events").await, 6, "{imp}");
    }
}

#[tokio::test]
async fn the_same_event_from_a_second_relay_adds_only_the_relation() {
    for imp in IMPLEMENTATIONS {
        let f = fixture(imp).await;
        let ids = f
            .brotr
            .insert_relay_batch(&["wss://a.example", "wss://b.example"], 1)
            .await
            .unwrap();
        let event = note(&Keys::generate(), "seen twice");
        assert!(f.brotr.insert_event(&event, ids[0], 10).await.unwrap());
        let report = f
            .brotr
            .insert_event_batch(&[(event.clone(), ids[1])], 20)
            .await
            .unwrap();
        assert_eq!(
            (report.stored, report.duplicates, report.relations_stored),
            (0, 1, 1),
            "{imp}"
        );
        assert_eq!(f.count("events").await, 1, "{imp}");
        assert_eq!(f.count("events_relays").await, 2, "{imp}");
    }
}

#[tokio::test]
async fn one_event_twice_in_a_batch_is_stored_once_with_both_relays_and_the_earliest_time() {
    let f = fixture("bigbrotr").await;
    let ids = f
        .brotr
        .insert_relay_batch(&["wss://a.example", "wss://b.example"], 1)
        .await
        .unwrap();
    let event = note(&Keys::generate(), "twice");
    let report = f
        .brotr
        .insert_event_batch_seen(&[
            (event.clone(), ids[0], 50),
            (event.clone(), ids[1], 60),
            (event.clone(), ids[0], 40),
        ])
        .await
        .unwrap();
    assert_eq!(
        (report.stored, report.duplicates, report.relations_stored),
        (1, 2, 2)
    );
    let seen: i64 = f
        .pool()
        .fetch_one(
            "SELECT seen_at FROM events_relays WHERE relay_id = $1",
            &[(&ids[0].get(), Type::INT4)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(seen, 40);
}

#[tokio::test]
async fn a_batch_with_invalid_events_stores_exactly_the_valid_ones_and_lists_the_rest() {
    for imp in IMPLEMENTATIONS {
        let f = fixture(imp).await;
        let relay = f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
        let mut events = notes(10);
        let mut altered = events[0].clone();
        altered.content.push_str(" (edited)");
        let mut wrong_sig = events[1].clone();
        wrong_sig.sig = events[2].sig;
        let mut too_late = events[3].clone();
        too_late.created_at = Timestamp::from_secs(u64::MAX);
        events.insert(2, altered.clone());
        events.insert(5, wrong_sig.clone());
        events.push(too_late.clone());
        let batch: Vec<(Event, RelayId)> = events.into_iter().map(|e| (e, relay)).collect();

        let report = f.brotr.insert_event_batch(&batch, 10).await.unwrap();
        assert_eq!(
            (report.stored, report.duplicates, report.relations_stored),
            (10, 0, 10),
            "{imp}"
        );
        assert_eq!(
            report.rejected,
            [
                Rejected {
                    index: 2,
                    event_id: Some(altered.id),
                    reason: RejectReason::InvalidId,
                },
                Rejected {
                    index: 5,
                    event_id: Some(wrong_sig.id),
                    reason: RejectReason::InvalidSignature,
                },
                Rejected {
                    index: 12,
                    event_id: Some(too_late.id),
                    reason: RejectReason::CreatedAtOutOfRange {
                        created_at: u64::MAX
                    },
                },
            ],
            "{imp}"
        );
        assert_eq!(f.count("events").await, 10, "{imp}");
        // The forged copies share their ids with stored events: what is
        // stored is the original.
        let stored_content: i64 = f
            .pool()
            .fetch_one(
                "SELECT count(*) FROM events_relays WHERE event_id = $1",
                &[(&altered.id.as_bytes().as_slice(), Type::BYTEA)],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(stored_content, 1, "{imp}");
    }
}

#[tokio::test]
async fn a_single_invalid_event_is_a_typed_error() {
    let f = fixture("bigbrotr").await;
    let relay = f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
    let mut event = note(&Keys::generate(), "x");
    event.content = "y".into();
    let result = f.brotr.insert_event(&event, relay, 1).await;
    let Err(Error::RejectedEvent { event_id, reason }) = result else {
        panic!("expected RejectedEvent, got {result:?}");
    };
    assert_eq!((event_id, reason), (event.id, RejectReason::InvalidId));
    assert_eq!(f.count("events").await, 0);
}

#[tokio::test]
async fn without_event_validation_forged_events_are_stored_but_unstorable_ones_are_not() {
    let config = BrotrConfig {
        enable_event_validation: false,
        ..BrotrConfig::default()
    };
    let f = fixture_with("bigbrotr", config).await;
    let relay = f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
    let mut forged = note(&Keys::generate(), "x");
    forged.content = "y".into();
    let mut too_late = note(&Keys::generate(), "z");
    too_late.created_at = Timestamp::from_secs(u64::MAX);
    let report = f
        .brotr
        .insert_event_batch(&[(forged.clone(), relay), (too_late, relay)], 1)
        .await
        .unwrap();
    assert_eq!(report.stored, 1);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].index, 1);
    // Reading verifies: the forged row cannot be passed off as an event.
    let read = f.brotr.get_event_by_id(&forged.id).await;
    assert!(
        matches!(
            read,
            Err(Error::EventNotReproducible {
                reason: RejectReason::InvalidId,
                ..
            })
        ),
        "{read:?}"
    );
}

#[tokio::test]
async fn a_failing_chunk_stores_none_of_its_rows_and_the_chunks_before_it_stay() {
    for imp in IMPLEMENTATIONS {
        let config = BrotrConfig {
            batch_size: 5,
            ..BrotrConfig::default()
        };
        let f = fixture_with(imp, config).await;
        let relay = f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
        let events = notes(12);
        let mut batch: Vec<(Event, RelayId)> = events.iter().cloned().map(|e| (e, relay)).collect();
        batch[7].1 = RelayId(999_999);

        let result = f.brotr.insert_event_batch(&batch, 1).await;
        let error = result.expect_err("a relay that does not exist");
        assert!(
            matches!(
                error,
                Error::Database {
                    what: "insert_events",
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.sql_state(),
            Some(&SqlState::FOREIGN_KEY_VIOLATION),
            "{imp}"
        );

        assert_eq!(f.count("events").await, 5, "{imp}");
        assert_eq!(f.count("events_relays").await, 5, "{imp}");
        for (i, event) in events.iter().enumerate() {
            assert_eq!(
                f.brotr.event_exists(&event.id).await.unwrap(),
                i < 5,
                "{imp}: event {i}"
            );
        }

        // Once fixed, the same batch again stores exactly what is missing.
        batch[7].1 = relay;
        let report = f.brotr.insert_event_batch(&batch, 1).await.unwrap();
        assert_eq!((report.stored, report.duplicates), (7, 5), "{imp}");
        assert_eq!(f.count("events").await, 12, "{imp}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_is_validated_in_parallel_and_stored_in_chunks() {
    let config = BrotrConfig {
        batch_size: 100,
        ..BrotrConfig::default()
    };
    let f = fixture_with("bigbrotr", config).await;
    let relay = f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
    let mut events = notes(450);
    events[333].content.push('!');
    let batch: Vec<(Event, RelayId)> = events.into_iter().map(|e| (e, relay)).collect();
    let report = f.brotr.insert_event_batch(&batch, 1).await.unwrap();
    assert_eq!(report.stored, 449);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].index, 333);
    assert_eq!(f.count("events").await, 449);
}

#[tokio::test]
async fn an_insert_that_outlives_insert_timeout_is_a_timeout_and_the_pool_recovers() {
    let config = BrotrConfig {
        insert_timeout: std::time::Duration::from_nanos(1),
        enable_event_validation: false,
        ..BrotrConfig::default()
    };
    let f = fixture_with("bigbrotr", config).await;
    // Relays are written with the same limit: record one with a patient
    // archive on the same pool.
    let patient = bigbrotr_brotr::Brotr::new(f.pool().clone(), BrotrConfig::default()).unwrap();
    let relay = patient.insert_relay("wss://a.example", 1).await.unwrap();
    let batch: Vec<(Event, RelayId)> = notes(1000).into_iter().map(|e| (e, relay)).collect();
    let result = f.brotr.insert_event_batch(&batch, 1).await;
    assert!(
        matches!(
            result,
            Err(Error::Timeout {
                what: "insert_events",
                ..
            })
        ),
        "{result:?}"
    );
    let report = patient.insert_event_batch(&batch, 1).await.unwrap();
    assert_eq!(report.stored + report.duplicates, 1000);
    assert_eq!(f.count("events").await, 1000);
    // Lets the cancel request of the timed-out call finish before the test
    // ends: PgBouncer 1.18 exits when a cancel connection closes too early.
    f.pool().disconnect(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn unknown_ids_are_neither_present_nor_readable() {
    for imp in IMPLEMENTATIONS {
        let f = fixture(imp).await;
        let id = note(&Keys::generate(), "never stored").id;
        assert!(!f.brotr.event_exists(&id).await.unwrap(), "{imp}");
        assert_eq!(f.brotr.get_event_by_id(&id).await.unwrap(), None, "{imp}");
    }
}

#[tokio::test]
async fn lilbrotr_keeps_the_event_but_cannot_reproduce_it() {
    let f = fixture("lilbrotr").await;
    let relay = f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
    let event = note(&Keys::generate(), "content not kept");
    assert!(f.brotr.insert_event(&event, relay, 1).await.unwrap());
    assert!(f.brotr.event_exists(&event.id).await.unwrap());
    let read = f.brotr.get_event_by_id(&event.id).await;
    assert!(
        matches!(read, Err(Error::EventNotReproducible { event_id, .. }) if event_id == event.id),
        "{read:?}"
    );
}
