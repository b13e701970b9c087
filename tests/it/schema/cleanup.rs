//! Cleanup: the `delete_orphan_*` functions.

use bigbrotr_test_support::TestDb;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use super::helpers::{
    count, delete_orphans, document, event_exists, insert_events, insert_relay_metadata, relay_ids,
    Check, Event, Sighting,
};

for_each_implementation!(orphans_are_deleted_in_bounded_batches_with_exact_counts);

async fn orphans_are_deleted_in_bounded_batches_with_exact_counts(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [r1, r2] = relay_ids(&client, &["wss://one.example", "wss://two.example"]).await[..] else {
        panic!("two relays");
    };

    // 25 events from r1 only, 5 from both, 3 from r2 only.
    let events: Vec<Event> = (0..33).map(Event::note).collect();
    let mut batch: Vec<Sighting<'_>> = Vec::new();
    for (n, event) in events.iter().enumerate() {
        if n < 30 {
            batch.push((event, r1, 10));
        }
        if n >= 25 {
            batch.push((event, r2, 10));
        }
    }
    assert_eq!(insert_events(&client, &batch).await.unwrap(), (33, 38));
    // r1 uses nip11 documents 1..=7 and nip66 documents 1..=4; r2 nip11
    // document 1 and nip66 document 5.
    let mut checks: Vec<Check> = (1..=7)
        .map(|n| {
            let check = Check::new(r1, n as i64, true).nip11(&document(0x11, n));
            if n <= 4 {
                check.nip66(&document(0x66, n))
            } else {
                check
            }
        })
        .collect();
    checks.push(
        Check::new(r2, 1, true)
            .nip11(&document(0x11, 1))
            .nip66(&document(0x66, 5)),
    );
    assert_eq!(insert_relay_metadata(&client, &checks).await.unwrap(), 8);

    for function in [
        "delete_orphan_events",
        "delete_orphan_nip11",
        "delete_orphan_nip66",
    ] {
        assert_eq!(delete_orphans(&client, function, 100).await.unwrap(), 0);
        let error = delete_orphans(&client, function, 0).await.unwrap_err();
        assert_eq!(error.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
    }

    // Removing r1 removes its sightings and checks: 25 events, 6 NIP-11 and
    // 4 NIP-66 documents are left unreferenced.
    client
        .execute_typed("DELETE FROM relays WHERE id = $1", &[(&r1, Type::INT4)])
        .await
        .unwrap();
    let mut deleted = Vec::new();
    loop {
        let n = delete_orphans(&client, "delete_orphan_events", 10)
            .await
            .unwrap();
        deleted.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(deleted, [10, 10, 5, 0]);
    assert_eq!(count(&client, "events").await, 8);
    assert!(!event_exists(&client, &events[0].id).await);
    assert!(event_exists(&client, &events[25].id).await);
    assert!(event_exists(&client, &events[32].id).await);

    let mut deleted = Vec::new();
    while deleted.last() != Some(&0) {
        deleted.push(
            delete_orphans(&client, "delete_orphan_nip11", 4)
                .await
                .unwrap(),
        );
    }
    assert_eq!(deleted, [4, 2, 0]);
    assert_eq!(count(&client, "nip11").await, 1);

    let mut deleted = Vec::new();
    while deleted.last() != Some(&0) {
        deleted.push(
            delete_orphans(&client, "delete_orphan_nip66", 3)
                .await
                .unwrap(),
        );
    }
    assert_eq!(deleted, [3, 1, 0]);
    assert_eq!(count(&client, "nip66").await, 1);
    assert_eq!(count(&client, "relay_metadata").await, 1);
}
