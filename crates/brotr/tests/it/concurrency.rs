//! Many writers inserting overlapping batches at once.

use std::collections::HashSet;
use std::sync::Arc;

use bigbrotr_brotr::{Brotr, RelayId};
use bigbrotr_config::BrotrConfig;
use bigbrotr_test_support::TestDb;
use nostr::{Event, Keys};

use crate::support::{count, note, pool_on, IMPLEMENTATIONS};

const WRITERS: usize = 64;
const EVENTS: usize = 256;
const RELAYS: usize = 4;
const PER_WRITER: usize = 48;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_writers_with_overlapping_batches_store_everything_exactly_once() {
    for imp in IMPLEMENTATIONS {
        let db = TestDb::with_pool_size(imp, 2).await.expect("test database");
        let pool = pool_on(&db, 16).await;
        let config = BrotrConfig {
            batch_size: 16,
            ..BrotrConfig::default()
        };
        let brotr = Brotr::new(pool.clone(), config).unwrap();
        let urls: Vec<String> = (0..RELAYS).map(|i| format!("wss://r{i}.example")).collect();
        let relays = brotr.insert_relay_batch(&urls, 1).await.unwrap();

        let keys: Vec<Keys> = (0..8).map(|_| Keys::generate()).collect();
        let events: Arc<Vec<Event>> = Arc::new(
            (0..EVENTS)
                .map(|i| note(&keys[i % keys.len()], &format!("event {i}")))
                .collect(),
        );
        let mut expected_pairs = HashSet::new();
        let mut tasks = tokio::task::JoinSet::new();
        for writer in 0..WRITERS {
            let relay = relays[writer % RELAYS];
            // Windows that overlap their neighbours' and wrap around.
            let picks: Vec<usize> = (0..PER_WRITER)
                .map(|k| (writer * 13 + k) % EVENTS)
                .collect();
            for &i in &picks {
                expected_pairs.insert((i, relay));
            }
            let brotr = brotr.clone();
            let events = Arc::clone(&events);
            tasks.spawn(async move {
                let batch: Vec<(Event, RelayId)> =
                    picks.iter().map(|&i| (events[i].clone(), relay)).collect();
                let seen_at = i64::try_from(writer).unwrap();
                brotr.insert_event_batch(&batch, seen_at).await
            });
        }
        let (mut stored, mut relations, mut failures) = (0_u64, 0_u64, Vec::new());
        while let Some(joined) = tasks.join_next().await {
            match joined.expect("writer task") {
                Ok(report) => {
                    assert!(report.rejected.is_empty(), "{imp}");
                    assert_eq!(report.stored + report.duplicates, PER_WRITER as u64);
                    stored += report.stored;
                    relations += report.relations_stored;
                }
                Err(error) => failures.push(error.to_string()),
            }
        }
        assert_eq!(failures, Vec::<String>::new(), "{imp}: failed calls");
        let covered: HashSet<usize> = expected_pairs.iter().map(|(i, _)| *i).collect();
        assert_eq!(covered.len(), EVENTS, "every event is written by someone");
        assert_eq!(
            stored, EVENTS as u64,
            "{imp}: events stored over all writers"
        );
        assert_eq!(
            relations,
            expected_pairs.len() as u64,
            "{imp}: pairs stored"
        );
        assert_eq!(count(&pool, "events").await, EVENTS as i64, "{imp}");
        assert_eq!(
            count(&pool, "events_relays").await,
            expected_pairs.len() as i64,
            "{imp}"
        );
        pool.disconnect(std::time::Duration::from_secs(5)).await;
    }
}
