//! Concurrency: overlapping batches written at once.

use std::collections::BTreeSet;

use bigbrotr_test_support::TestDb;
use serde_json::json;

use super::helpers::{
    count, delete_orphans, document, hex, insert_events, insert_relay_metadata, insert_relays,
    key32, Check, Event, Sighting,
};

for_each_implementation!(concurrent_overlapping_batches_insert_without_error_and_count_exactly);

async fn concurrent_overlapping_batches_insert_without_error_and_count_exactly(
    implementation: &str,
) {
    const TASKS: usize = 64;
    const RELAYS: usize = 8;
    const EVENTS: u64 = 400;
    // A connection per task, all taken before any starts: 64 callers at
    // once (PgBouncer runs up to its pool size of them at a time).
    let db = TestDb::with_pool_size(implementation, TASKS).await.unwrap();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(TASKS));
    let urls: Vec<String> = (0..RELAYS)
        .map(|r| format!("wss://relay{r}.example"))
        .collect();
    let events: Vec<Event> = (0..EVENTS)
        .map(|n| Event::note(n).with_tags(json!([["p", hex(&key32(3, n % 17))], ["t", "x"]])))
        .collect();

    // What each task inserts: two overlapping batches of (event, relay index).
    let plan = |task: usize| -> Vec<Vec<(usize, usize)>> {
        (0..2)
            .map(|batch| {
                let mut rows: Vec<(usize, usize)> = (0..120)
                    .map(|j| {
                        let event = (task * 29 + batch * 61 + j * 3) % EVENTS as usize;
                        (event, (task + j) % RELAYS)
                    })
                    .collect();
                // Repeats within the batch, too.
                let repeats = rows[..5].to_vec();
                rows.extend(repeats);
                rows
            })
            .collect()
    };
    let mut expected_events = BTreeSet::new();
    let mut expected_pairs = BTreeSet::new();
    for task in 0..TASKS {
        for (event, relay) in plan(task).into_iter().flatten() {
            expected_events.insert(event);
            expected_pairs.insert((event, relay));
        }
    }

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let pool = db.pool().clone();
            let urls = urls.clone();
            let events = events.clone();
            let batches = plan(task);
            let start = start.clone();
            tokio::spawn(async move {
                let client = pool.get().await.unwrap();
                start.wait().await;
                // Every task names every relay, from a different start.
                let mut relays: Vec<(&str, &str)> = (0..RELAYS)
                    .map(|r| (urls[(task + r) % RELAYS].as_str(), "clearnet"))
                    .collect();
                relays.push(relays[0]);
                let returned = insert_relays(&client, &relays, task as i64).await?;
                let mut ids = vec![0; RELAYS];
                for (ord, id) in returned {
                    ids[(task + ord as usize - 1) % RELAYS] = id;
                }
                let mut inserted = (0, 0);
                for rows in &batches {
                    let batch: Vec<Sighting<'_>> = rows
                        .iter()
                        .map(|&(event, relay)| (&events[event], ids[relay], task as i64))
                        .collect();
                    let (new_events, new_relations) = insert_events(&client, &batch).await?;
                    inserted.0 += new_events;
                    inserted.1 += new_relations;
                    if task % 8 == 0 {
                        // Cleanups running meanwhile find nothing to delete.
                        for function in [
                            "delete_orphan_events",
                            "delete_orphan_nip11",
                            "delete_orphan_nip66",
                        ] {
                            assert_eq!(delete_orphans(&client, function, 50).await?, 0);
                        }
                    }
                }
                let checks: Vec<Check> = (0..4)
                    .map(|k| {
                        Check::new(ids[(task + k) % RELAYS], k as i64, true)
                            .nip11(&document(0x11, ((task + k) % 3) as u64))
                            .nip66(&document(0x66, ((task + k) % 5) as u64))
                    })
                    .collect();
                let new_checks = insert_relay_metadata(&client, &checks).await?;
                Ok::<_, tokio_postgres::Error>((ids, inserted, new_checks))
            })
        })
        .collect();

    let mut relay_ids = None;
    let (mut new_events, mut new_relations, mut new_checks) = (0, 0, 0);
    for task in tasks {
        let (ids, inserted, checks) = task.await.unwrap().unwrap();
        assert_eq!(
            relay_ids.get_or_insert_with(|| ids.clone()),
            &ids,
            "every task gets the same relay ids"
        );
        new_events += inserted.0;
        new_relations += inserted.1;
        new_checks += checks;
    }

    let client = db.client().await.unwrap();
    assert_eq!(count(&client, "relays").await, RELAYS as i64);
    assert_eq!(new_events, expected_events.len() as i64);
    assert_eq!(count(&client, "events").await, expected_events.len() as i64);
    assert_eq!(new_relations, expected_pairs.len() as i64);
    assert_eq!(
        count(&client, "events_relays").await,
        expected_pairs.len() as i64
    );
    assert_eq!(new_checks, (RELAYS * 4) as i64);
    assert_eq!(count(&client, "relay_metadata").await, (RELAYS * 4) as i64);
    assert_eq!(count(&client, "nip11").await, 3);
    assert_eq!(count(&client, "nip66").await, 5);
}
