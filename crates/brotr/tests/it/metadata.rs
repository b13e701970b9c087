//! Relay metadata with content-addressed documents, and the cleanups of
//! orphaned rows.

use bigbrotr_brotr::{document_id, Error, Network, RelayId, RelayMetadata};
use bigbrotr_config::BrotrConfig;
use bigbrotr_pool::tokio_postgres::error::SqlState;
use bigbrotr_pool::Type;
use nostr::Event;
use serde_json::{json, Value};

use crate::support::{fixture, fixture_with, notes, IMPLEMENTATIONS};

fn nip11(name: &str) -> Value {
    json!({"name": name, "supported_nips": [1, 11, 66], "limitation": {"max_message_length": 65536}})
}

#[tokio::test]
async fn identical_documents_are_stored_once_and_checks_once_per_time() {
    for imp in IMPLEMENTATIONS {
        let f = fixture(imp).await;
        let ids = f
            .brotr
            .insert_relay_batch(&["wss://a.example", "wss://b.example"], 1)
            .await
            .unwrap();
        let rtt = json!({"rtt_open": 120, "network": "clearnet"});
        assert!(f
            .brotr
            .insert_relay_metadata(ids[0], Some(nip11("shared")), Some(rtt.clone()), true, 100)
            .await
            .unwrap());
        // The same document with its keys in another order.
        let reordered: Value = serde_json::from_str(
            r#"{"limitation": {"max_message_length": 65536}, "supported_nips": [1, 11, 66], "name": "shared"}"#,
        )
        .unwrap();
        assert!(f
            .brotr
            .insert_relay_metadata(ids[1], Some(reordered), None, false, 100)
            .await
            .unwrap());
        assert!(
            !f.brotr
                .insert_relay_metadata(ids[0], None, None, false, 100)
                .await
                .unwrap(),
            "{imp}: a second check at the same time is not new"
        );
        assert_eq!(f.count("relay_metadata").await, 2, "{imp}");
        assert_eq!(f.count("nip11").await, 1, "{imp}");
        assert_eq!(f.count("nip66").await, 1, "{imp}");

        let expected_id = document_id(&nip11("shared")).unwrap();
        let stored_id: Vec<u8> = f
            .pool()
            .fetch_one("SELECT id FROM nip11", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(stored_id, expected_id, "{imp}");
    }
}

#[tokio::test]
async fn the_latest_check_of_each_relay_is_in_the_view() {
    let f = fixture("bigbrotr").await;
    let relay = f.brotr.insert_relay("ws://abcdef.onion", 1).await.unwrap();
    let checks: Vec<RelayMetadata> = [(100, "old"), (300, "newest"), (200, "middle")]
        .into_iter()
        .map(|(at, name)| RelayMetadata {
            relay_id: relay,
            generated_at: at,
            connected: at != 300,
            nip11: Some(nip11(name)),
            nip66: None,
        })
        .collect();
    assert_eq!(
        f.brotr.insert_relay_metadata_batch(&checks).await.unwrap(),
        3
    );
    let row = f
        .pool()
        .fetch_one(
            "SELECT relay_id, network, generated_at, connected, nip11_data, nip66_data \
             FROM relay_metadata_latest",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(RelayId(row.get(0)), relay);
    assert_eq!(row.get::<_, String>(1), Network::Tor.as_str());
    assert_eq!(row.get::<_, i64>(2), 300);
    assert!(!row.get::<_, bool>(3));
    assert_eq!(row.get::<_, Value>(4), nip11("newest"));
    assert_eq!(row.get::<_, Option<Value>>(5), None);
}

#[tokio::test]
async fn a_document_with_nul_is_stored_without_it() {
    let f = fixture("bigbrotr").await;
    let relay = f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
    let doc = json!({"name": "bad\u{0}name", "desc\u{0}": ["\u{0}"]});
    assert!(f
        .brotr
        .insert_relay_metadata(relay, Some(doc), None, true, 1)
        .await
        .unwrap());
    let row = f
        .pool()
        .fetch_one("SELECT id, data FROM nip11", &[])
        .await
        .unwrap();
    let clean = json!({"name": "badname", "desc": [""]});
    assert_eq!(row.get::<_, Value>(1), clean);
    assert_eq!(row.get::<_, Vec<u8>>(0), document_id(&clean).unwrap());
}

#[tokio::test]
async fn metadata_of_an_unknown_relay_stores_nothing_of_its_chunk() {
    let f = fixture("bigbrotr").await;
    let relay = f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
    let checks = [
        RelayMetadata {
            relay_id: relay,
            generated_at: 1,
            connected: true,
            nip11: Some(nip11("x")),
            nip66: None,
        },
        RelayMetadata {
            relay_id: RelayId(424_242),
            generated_at: 1,
            connected: true,
            nip11: None,
            nip66: None,
        },
    ];
    let error = f
        .brotr
        .insert_relay_metadata_batch(&checks)
        .await
        .expect_err("unknown relay");
    assert_eq!(error.sql_state(), Some(&SqlState::FOREIGN_KEY_VIOLATION));
    assert_eq!(f.count("relay_metadata").await, 0);
    assert_eq!(f.count("nip11").await, 0);
}

#[tokio::test]
async fn cleanups_delete_exactly_the_orphans_in_steps_of_the_limit() {
    for imp in IMPLEMENTATIONS {
        let config = BrotrConfig {
            batch_size: 4,
            ..BrotrConfig::default()
        };
        let f = fixture_with(imp, config).await;
        let ids = f
            .brotr
            .insert_relay_batch(&["wss://gone.example", "wss://kept.example"], 1)
            .await
            .unwrap();
        let (gone, kept) = (ids[0], ids[1]);
        let events = notes(10);
        // Events 0..7 only on the relay that goes; 7..10 on both.
        let mut batch: Vec<(Event, RelayId)> = events.iter().cloned().map(|e| (e, gone)).collect();
        batch.extend(events[7..].iter().cloned().map(|e| (e, kept)));
        f.brotr.insert_event_batch(&batch, 1).await.unwrap();
        let checks: Vec<RelayMetadata> = (0..5)
            .map(|i| RelayMetadata {
                relay_id: if i < 3 { gone } else { kept },
                generated_at: i,
                connected: true,
                nip11: Some(nip11(&format!("doc {i}"))),
                nip66: Some(json!({"rtt_open": i})),
            })
            .collect();
        assert_eq!(
            f.brotr.insert_relay_metadata_batch(&checks).await.unwrap(),
            5
        );

        assert_eq!(f.brotr.delete_orphan_events(3).await.unwrap(), 0, "{imp}");
        f.pool()
            .execute(
                "DELETE FROM relays WHERE id = $1",
                &[(&gone.get(), Type::INT4)],
            )
            .await
            .unwrap();

        assert_eq!(f.brotr.delete_orphan_events(3).await.unwrap(), 7, "{imp}");
        assert_eq!(f.brotr.delete_orphan_nip11(2).await.unwrap(), 3, "{imp}");
        assert_eq!(f.brotr.delete_orphan_nip66(1).await.unwrap(), 3, "{imp}");
        assert_eq!(f.count("events").await, 3, "{imp}");
        assert_eq!(f.count("nip11").await, 2, "{imp}");
        assert_eq!(f.count("nip66").await, 2, "{imp}");
        for (i, event) in events.iter().enumerate() {
            assert_eq!(
                f.brotr.event_exists(&event.id).await.unwrap(),
                i >= 7,
                "{imp}: {i}"
            );
        }
        assert_eq!(f.brotr.delete_orphan_events(3).await.unwrap(), 0, "{imp}");
        assert!(matches!(
            f.brotr.delete_orphan_nip11(0).await,
            Err(Error::InvalidLimit { .. })
        ));
    }
}
