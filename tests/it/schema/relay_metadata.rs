//! Relay metadata: `insert_relay_metadata` and the `relay_metadata_latest` view.

use bigbrotr_test_support::TestDb;
use serde_json::Value;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use super::helpers::{count, document, insert_relay_metadata, insert_relays, relay_ids, Check};

for_each_implementation!(
    insert_relay_metadata_counts_new_rows_and_stores_each_document_once,
    relay_metadata_latest_shows_the_latest_check_of_each_relay,
);

async fn insert_relay_metadata_counts_new_rows_and_stores_each_document_once(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [r1, r2] = relay_ids(&client, &["wss://one.example", "wss://two.example"]).await[..] else {
        panic!("two relays");
    };
    let shared = document(0x11, 1);
    let (m1, m2) = (document(0x66, 1), document(0x66, 2));

    let batch = [
        Check::new(r1, 100, true).nip11(&shared).nip66(&m1),
        Check::new(r2, 100, true).nip11(&shared).nip66(&m2),
        Check::new(r1, 200, false),
        // The same check twice in a batch counts once.
        Check::new(r2, 100, true).nip11(&shared).nip66(&m2),
    ];
    assert_eq!(insert_relay_metadata(&client, &batch).await.unwrap(), 3);
    assert_eq!(count(&client, "relay_metadata").await, 3);
    assert_eq!(count(&client, "nip11").await, 1);
    assert_eq!(count(&client, "nip66").await, 2);
    assert_eq!(insert_relay_metadata(&client, &batch).await.unwrap(), 0);

    let later = [
        Check::new(r2, 300, true).nip11(&shared),
        Check::new(r1, 300, true).nip11(&document(0x11, 2)),
    ];
    assert_eq!(insert_relay_metadata(&client, &later).await.unwrap(), 2);
    assert_eq!(count(&client, "relay_metadata").await, 5);
    assert_eq!(count(&client, "nip11").await, 2);
    assert_eq!(count(&client, "nip66").await, 2);

    let rows = client
        .query_typed(
            "SELECT m.relay_id, n.data FROM relay_metadata m JOIN nip11 n ON n.id = m.nip11_id \
             WHERE m.nip11_id = $1 ORDER BY m.relay_id, m.generated_at",
            &[(&shared.0, Type::BYTEA)],
        )
        .await
        .unwrap();
    let sharing: Vec<(i32, Value)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        sharing,
        [
            (r1, shared.1.clone()),
            (r2, shared.1.clone()),
            (r2, shared.1.clone())
        ]
    );

    // The document arrays may be NULL as a whole: no documents.
    let row = client
        .query_typed_one(
            "SELECT insert_relay_metadata(ARRAY[$1::int4], ARRAY[400::int8], ARRAY[false], \
                                          NULL, NULL, NULL, NULL)",
            &[(&r1, Type::INT4)],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    let error = client
        .query_typed(
            "SELECT insert_relay_metadata(ARRAY[1], ARRAY[1::int8, 2], ARRAY[true], \
                                          NULL, NULL, NULL, NULL)",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
}

async fn relay_metadata_latest_shows_the_latest_check_of_each_relay(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let onion = "ws://2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";
    let relays = insert_relays(
        &client,
        &[
            ("wss://one.example", "clearnet"),
            (onion, "tor"),
            ("wss://never-checked.example", "clearnet"),
        ],
        1,
    )
    .await
    .unwrap();
    let (r1, r2) = (relays[0].1, relays[1].1);
    let (a, b, c) = (document(0x11, 1), document(0x11, 2), document(0x66, 3));

    let checks = [
        Check::new(r1, 10, true).nip11(&a),
        Check::new(r1, 30, true).nip11(&b).nip66(&c),
        Check::new(r1, 20, false),
        Check::new(r2, 5, false).nip66(&c),
    ];
    assert_eq!(insert_relay_metadata(&client, &checks).await.unwrap(), 4);

    let rows = client
        .query_typed(
            "SELECT relay_id, url, network, generated_at, connected, nip11_id, nip11_data, \
                    nip66_id, nip66_data \
             FROM relay_metadata_latest ORDER BY relay_id",
            &[],
        )
        .await
        .unwrap();
    type Latest = (
        i32,
        String,
        String,
        i64,
        bool,
        Option<Vec<u8>>,
        Option<Value>,
        Option<Vec<u8>>,
        Option<Value>,
    );
    let latest: Vec<Latest> = rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
            )
        })
        .collect();
    let mut expected = vec![
        (
            r1,
            "wss://one.example".to_owned(),
            "clearnet".to_owned(),
            30,
            true,
            Some(b.0.clone()),
            Some(b.1.clone()),
            Some(c.0.clone()),
            Some(c.1.clone()),
        ),
        (
            r2,
            onion.to_owned(),
            "tor".to_owned(),
            5,
            false,
            None,
            None,
            Some(c.0.clone()),
            Some(c.1.clone()),
        ),
    ];
    // Relay ids follow the URLs' sort order, not the input order.
    expected.sort_by_key(|row| row.0);
    assert_eq!(latest, expected);

    // A newer check replaces the row of its relay only.
    let newer = [Check::new(r1, 40, false)];
    assert_eq!(insert_relay_metadata(&client, &newer).await.unwrap(), 1);
    let rows = client
        .query_typed(
            "SELECT relay_id, generated_at, nip11_data IS NULL \
             FROM relay_metadata_latest ORDER BY relay_id",
            &[],
        )
        .await
        .unwrap();
    let latest: Vec<(i32, i64, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut expected = vec![(r1, 40, true), (r2, 5, true)];
    expected.sort_by_key(|row| row.0);
    assert_eq!(latest, expected);
}
