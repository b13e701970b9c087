//! One BigBrotr archiving from another: the synchronizer of a second archive
//! reads the first through its archive relay (`bigbrotr run relay`), by
//! plain `REQ`s and by NIP-77 reconciliation, and ends with every event and
//! none twice, though the relay serves at most `max_limit` events a `REQ`.

use std::collections::HashSet;
use std::time::Duration;

use bigbrotr_brotr::{Brotr, RelayId};
use bigbrotr_config::{BrotrConfig, NostrConfig};
use bigbrotr_pool::Type;
use bigbrotr_relay::{RelayConfig, RelayServer};
use bigbrotr_synchronizer::{Synchronizer, SynchronizerConfig};
use bigbrotr_test_support::TestDb;
use bigbrotr_utils::{Egress, EgressPolicy};
use nostr::{Event, EventBuilder, EventId, Keys, Kind, Timestamp};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const BASE: i64 = 1_700_000_000;

async fn archive(db: &TestDb) -> Brotr {
    let pool = db.connection_pool(8).await.expect("pool");
    Brotr::new(pool, BrotrConfig::default()).expect("brotr")
}

async fn event_ids(brotr: &Brotr, relay: RelayId) -> HashSet<EventId> {
    brotr
        .pool()
        .fetch_all(
            "SELECT event_id FROM events_relays WHERE relay_id = $1",
            &[(&relay.0, Type::INT4)],
        )
        .await
        .expect("ids")
        .iter()
        .map(|row| EventId::from_slice(row.get::<_, &[u8]>(0)).expect("an id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_archive_reads_the_first_whole_through_its_relay() {
    let keys = Keys::generate();
    // 3 000 notes over a day; the relay serves at most 200 a REQ.
    let events: Vec<Event> = (0..3_000)
        .map(|i| {
            EventBuilder::new(Kind::TextNote, format!("note {i}"))
                .custom_created_at(Timestamp::from_secs((BASE + i * 29) as u64))
                .sign_with_keys(&keys)
                .expect("signed")
        })
        .collect();
    let first_db = TestDb::new("bigbrotr").await.expect("test database");
    let first = archive(&first_db).await;
    let seen = first
        .insert_relay("wss://seen.example", 1)
        .await
        .expect("relay");
    let batch: Vec<(Event, RelayId)> = events.iter().cloned().map(|e| (e, seen)).collect();
    first.insert_event_batch(&batch, 1).await.expect("stored");
    let config = RelayConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        max_limit: 200,
        ..RelayConfig::default()
    };
    let metrics = bigbrotr_service_runtime::Metrics::new().for_service("relay");
    let server = RelayServer::bind(config, first.pool().clone(), metrics)
        .await
        .expect("relay");
    let url = format!("ws://{}", server.local_addr());
    let want: HashSet<EventId> = events.iter().map(|e| e.id).collect();

    for nip77 in [false, true] {
        let second_db = TestDb::new("bigbrotr").await.expect("test database");
        let second = archive(&second_db).await;
        let relay = second.insert_relay(&url, 1).await.expect("relay");
        let nip66 = json!({"network": "clearnet", "rtt_open": 1, "readable": true});
        second
            .insert_relay_metadata(relay, None, Some(nip66), true, BASE)
            .await
            .expect("check");
        let mut sync = SynchronizerConfig {
            start_time: BASE,
            window: Duration::from_secs(6 * 3600),
            worker_id: "w1".to_owned(),
            ..SynchronizerConfig::default()
        };
        sync.nip77.enabled = nip77;
        let nostr = NostrConfig {
            timeout: Duration::from_secs(5),
            ..NostrConfig::default()
        };
        let egress =
            Egress::new(EgressPolicy::strict().allowing("127.0.0.1/32".parse().expect("a CIDR")));
        let report = Synchronizer::new(&sync, &nostr)
            .expect("synchronizer")
            .with_egress(egress)
            .run_cycle(&second, &CancellationToken::new())
            .await
            .expect("a cycle");
        let counts = report.relay(relay).expect("synced").counts;
        assert_eq!(counts.stored, 3_000, "nip77 {nip77}: {counts:?}");
        assert_eq!(event_ids(&second, relay).await, want, "nip77 {nip77}");
        if nip77 {
            assert_eq!(counts.stored_by_reconcile, 3_000, "{counts:?}");
        }
    }
    server.shutdown().await;
}
