//! `bigbrotr import` and `export` end to end: the real corpus in, the same
//! events out, through PgBouncer, for both shipped implementations.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Cursor};
use std::num::NonZeroUsize;

use bigbrotr::{import, ImportOptions, ImportSummary};
use bigbrotr_brotr::{Brotr, EventFilter};
use bigbrotr_config::{BrotrConfig, PoolConfig, RetryConfig};
use bigbrotr_pool::ConnectionPool;
use bigbrotr_test_support::{corpus_dir, TestDb};

async fn archive(db: &TestDb) -> Brotr {
    let pool = ConnectionPool::new(
        &db.database_config(),
        &PoolConfig::default(),
        &RetryConfig::default(),
    )
    .unwrap();
    pool.connect().await.unwrap();
    Brotr::new(pool, BrotrConfig::default()).unwrap()
}

fn options() -> ImportOptions {
    ImportOptions {
        batch_size: NonZeroUsize::new(500).unwrap(),
        in_flight: NonZeroUsize::new(3).unwrap(),
        seen_at: Some(1_700_000_000),
    }
}

async fn import_text(
    brotr: &Brotr,
    text: String,
    relay: &str,
) -> (ImportSummary, Vec<serde_json::Value>) {
    let relay = brotr.insert_relay(relay, 1_700_000_000).await.unwrap();
    let mut rejects = Vec::new();
    let summary = import(
        brotr,
        Cursor::new(text.into_bytes()),
        relay,
        &options(),
        Some(&mut rejects),
        |_| {},
    )
    .await
    .unwrap();
    let rejects = BufReader::new(rejects.as_slice())
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    (summary, rejects)
}

async fn count(db: &TestDb, table: &str) -> i64 {
    let client = db.client().await.unwrap();
    let rows = client
        .query_typed(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap();
    rows[0].get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_corpus_is_imported_and_exported_exactly_as_signed() {
    let Some(dir) = corpus_dir() else { return };
    let text = std::fs::read_to_string(dir.join("real-events.jsonl")).unwrap();
    let db = TestDb::new("bigbrotr").await.unwrap();
    let brotr = archive(&db).await;

    let (summary, rejects) = import_text(&brotr, text.clone(), "wss://relay.one.example").await;
    assert_eq!(summary.read, 11_803);
    assert_eq!(summary.stored, 11_803);
    assert_eq!(summary.duplicates, 0);
    assert_eq!(summary.relations_stored, 11_803);
    assert_eq!(summary.rejected_total(), 0);
    assert!(rejects.is_empty());

    // Again from a second relay: nothing new but the provenance.
    let (again, _) = import_text(&brotr, text.clone(), "wss://relay.two.example").await;
    assert_eq!(
        (again.stored, again.duplicates, again.relations_stored),
        (0, 11_803, 11_803)
    );
    assert_eq!(count(&db, "events").await, 11_803);
    assert_eq!(count(&db, "events_relays").await, 2 * 11_803);
    // The tag values computed by the application are those the database's
    // own tags_to_tagvalues() gives.
    assert_eq!(
        count(
            &db,
            "events WHERE tagvalues IS DISTINCT FROM tags_to_tagvalues(tags)"
        )
        .await,
        0
    );
    assert!(count(&db, "events WHERE cardinality(tagvalues) > 0").await > 1000);

    let mut out = Vec::new();
    let written = bigbrotr::export(&brotr, &EventFilter::default(), &mut out)
        .await
        .unwrap();
    assert_eq!(written, 11_803);
    let exported: HashMap<String, serde_json::Value> = BufReader::new(out.as_slice())
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            (value["id"].as_str().unwrap().to_owned(), value)
        })
        .collect();
    for line in text.lines() {
        let original: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = original["id"].as_str().unwrap();
        assert_eq!(exported.get(id), Some(&original), "event {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_known_bad_event_is_rejected_with_its_reason_and_nothing_is_stored() {
    let Some(dir) = corpus_dir() else { return };
    let text: String = std::fs::read_to_string(dir.join("invalid-events.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let wrapped: serde_json::Value = serde_json::from_str(line).unwrap();
            format!("{}\n", wrapped["event"])
        })
        .collect();
    for implementation in ["bigbrotr", "lilbrotr"] {
        let db = TestDb::new(implementation).await.unwrap();
        let brotr = archive(&db).await;
        let (summary, rejects) = import_text(&brotr, text.clone(), "wss://bad.example").await;
        assert_eq!(summary.read, 825, "{implementation}");
        assert_eq!(summary.stored, 0, "{implementation}");
        assert_eq!(summary.rejected_total(), 825, "{implementation}");
        assert_eq!(rejects.len(), 825, "{implementation}");
        for reject in &rejects {
            assert!(reject["line"].as_u64().unwrap() >= 1);
            let reason = reject["reason"].as_str().unwrap();
            assert!(
                matches!(
                    reason,
                    "invalid_event_json" | "invalid_id" | "invalid_signature"
                ),
                "{reason}"
            );
            assert!(!reject["detail"].as_str().unwrap().is_empty());
        }
        assert_eq!(count(&db, "events").await, 0, "{implementation}");
        assert_eq!(count(&db, "events_relays").await, 0, "{implementation}");
    }
}

#[tokio::test]
async fn bad_lines_among_good_ones_lose_nothing_good() {
    use nostr::{EventBuilder, JsonUtil, Keys};
    let keys = Keys::generate();
    let good: Vec<String> = (0..5)
        .map(|i| {
            EventBuilder::text_note(format!("note {i}"))
                .sign_with_keys(&keys)
                .unwrap()
                .as_json()
        })
        .collect();
    let mut tampered: serde_json::Value = serde_json::from_str(&good[0]).unwrap();
    tampered["content"] = "changed".into();
    let text = format!(
        "{}\n\n{{not json\n{}\n{}\n   \n{}\n{}\n{}\n",
        good[0], good[1], tampered, good[2], good[3], good[4]
    );
    for implementation in ["bigbrotr", "lilbrotr"] {
        let db = TestDb::new(implementation).await.unwrap();
        let brotr = archive(&db).await;
        let (summary, rejects) = import_text(&brotr, text.clone(), "wss://mixed.example").await;
        assert_eq!(summary.read, 7, "{implementation}");
        assert_eq!(summary.stored, 5, "{implementation}");
        assert_eq!(
            summary
                .rejected
                .iter()
                .map(|(k, v)| (*k, *v))
                .collect::<Vec<_>>(),
            vec![("invalid_event_json", 1), ("invalid_id", 1)]
        );
        let lines: Vec<u64> = rejects
            .iter()
            .map(|r| r["line"].as_u64().unwrap())
            .collect();
        assert!(lines.contains(&3) && lines.contains(&5), "{lines:?}");
        assert_eq!(count(&db, "events").await, 5, "{implementation}");
    }
}

#[tokio::test]
async fn lines_that_are_not_utf8_are_rejected_not_fatal() {
    use nostr::{EventBuilder, JsonUtil, Keys};
    let good = EventBuilder::text_note("fine")
        .sign_with_keys(&Keys::generate())
        .unwrap()
        .as_json();
    let mut bytes = b"\xff\xfe{\"id\":1}\n".to_vec();
    bytes.extend_from_slice(good.as_bytes());
    bytes.push(b'\n');
    let db = TestDb::new("bigbrotr").await.unwrap();
    let brotr = archive(&db).await;
    let relay = brotr.insert_relay("wss://bytes.example", 0).await.unwrap();
    let summary = import(
        &brotr,
        Cursor::new(bytes),
        relay,
        &options(),
        None::<Vec<u8>>,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        (summary.read, summary.stored, summary.rejected_total()),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn lilbrotr_refuses_to_export_events_it_cannot_reproduce() {
    use nostr::{EventBuilder, JsonUtil, Keys};
    let good = EventBuilder::text_note("fine")
        .sign_with_keys(&Keys::generate())
        .unwrap()
        .as_json();
    let db = TestDb::new("lilbrotr").await.unwrap();
    let brotr = archive(&db).await;
    let (summary, _) = import_text(&brotr, format!("{good}\n"), "wss://lil.example").await;
    assert_eq!(summary.stored, 1);
    let error = bigbrotr::export(&brotr, &EventFilter::default(), &mut Vec::new())
        .await
        .unwrap_err();
    let brotr_error = error.downcast_ref::<bigbrotr_brotr::Error>().unwrap();
    assert!(
        matches!(
            brotr_error,
            bigbrotr_brotr::Error::EventNotReproducible { .. }
        ),
        "{brotr_error:?}"
    );
}

#[tokio::test]
async fn export_filters_by_time_and_kind() {
    use nostr::{EventBuilder, JsonUtil, Keys, Kind, Timestamp};
    let keys = Keys::generate();
    let lines: String = [(1, 100), (1, 200), (7, 200), (1, 300)]
        .iter()
        .map(|&(kind, at)| {
            EventBuilder::new(Kind::from_u16(kind), "x")
                .custom_created_at(Timestamp::from_secs(at))
                .sign_with_keys(&keys)
                .unwrap()
                .as_json()
                + "\n"
        })
        .collect();
    let db = TestDb::new("bigbrotr").await.unwrap();
    let brotr = archive(&db).await;
    import_text(&brotr, lines, "wss://filter.example").await;
    let exported = |filter: EventFilter| {
        let brotr = brotr.clone();
        async move {
            let mut out = Vec::new();
            bigbrotr::export(&brotr, &filter, &mut out).await.unwrap()
        }
    };
    assert_eq!(exported(EventFilter::default()).await, 4);
    let window = EventFilter {
        since: Some(200),
        until: Some(250),
        kinds: None,
    };
    assert_eq!(exported(window).await, 2);
    let kind = EventFilter {
        kinds: Some(vec![1]),
        since: Some(150),
        until: None,
    };
    assert_eq!(exported(kind).await, 2);
    assert_eq!(
        bigbrotr::parse_time("2024-01-15T00:00:00Z"),
        Ok(1_705_276_800)
    );
    assert_eq!(bigbrotr::parse_time("1705276800"), Ok(1_705_276_800));
    assert!(bigbrotr::parse_time("yesterday").is_err());
}
