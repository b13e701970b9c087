//! Sharing the relays: which relays are claimed, three synchronizers in
//! parallel, and the relays of a worker that died.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bigbrotr_brotr::{Network, RelayId};
use bigbrotr_synchronizer::{claim_relays, release_relays, renew_leases, Claim};
use nostr::Keys;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::{
    ids, notes, sync_config, synchronizer, FakeRelay, Fixture, Script, TestRelay,
};

fn claim<'a>(worker: &'a str, exclude: &'a [RelayId], extra: &'a [RelayId]) -> Claim<'a> {
    Claim {
        worker,
        networks: &[Network::Clearnet],
        extra,
        exclude,
        synced_before_ms: i64::MAX,
        lease_seconds: 60,
        limit: 100,
    }
}

fn relay_ids(claimed: &[bigbrotr_synchronizer::ClaimedRelay]) -> Vec<RelayId> {
    claimed.iter().map(|relay| relay.relay_id).collect()
}

#[tokio::test]
async fn readable_and_configured_relays_are_claimed_once_until_released() {
    for implementation in ["bigbrotr", "lilbrotr"] {
        claims_in(implementation).await;
    }
}

async fn claims_in(implementation: &str) {
    let fixture = Fixture::of(implementation, bigbrotr_config::BrotrConfig::default()).await;
    let readable = fixture.readable("wss://readable.example", None).await;
    let unreadable = fixture
        .checked("wss://unreadable.example", None, false)
        .await;
    let unchecked = fixture
        .brotr
        .insert_relay("wss://unchecked.example", 1)
        .await
        .unwrap();
    let onion = fixture
        .readable(
            "ws://2jsnlhfnelig5acq6iacydmzdbdmg7xwunm4xl6qwbvzacw4lwrjmlyd.onion",
            None,
        )
        .await;
    let brotr = &fixture.brotr;
    let unchecked_only = [unchecked];

    let claimed = claim_relays(brotr, &claim("a", &[], &[unchecked]))
        .await
        .unwrap();
    assert_eq!(relay_ids(&claimed), [readable, unchecked]);
    assert_eq!(claimed[0].url, "wss://readable.example");
    assert_eq!(claimed[0].cursor, None);
    assert!(!relay_ids(&claimed).contains(&unreadable));
    assert!(!relay_ids(&claimed).contains(&onion));

    // Leased: nobody else gets them, their holder gets them back.
    assert!(claim_relays(brotr, &claim("b", &[], &[unchecked]))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        relay_ids(
            &claim_relays(brotr, &claim("a", &[unchecked], &[]))
                .await
                .unwrap()
        ),
        [readable]
    );
    assert_eq!(
        renew_leases(brotr, "a", &[readable, unchecked], 60)
            .await
            .unwrap(),
        [readable, unchecked]
    );
    assert_eq!(renew_leases(brotr, "b", &[readable], 60).await.unwrap(), []);

    // Released: free again, except for a cycle that began before.
    assert_eq!(release_relays(brotr, "b", &[readable]).await.unwrap(), 0);
    assert_eq!(
        release_relays(brotr, "a", &[readable, unchecked])
            .await
            .unwrap(),
        2
    );
    let earlier = Claim {
        synced_before_ms: 0,
        ..claim("b", &[], &unchecked_only)
    };
    assert!(claim_relays(brotr, &earlier).await.unwrap().is_empty());
    let onions = Claim {
        networks: &[Network::Tor],
        ..claim("b", &[], &[])
    };
    assert_eq!(
        relay_ids(&claim_relays(brotr, &onions).await.unwrap()),
        [onion]
    );
    let limited = Claim {
        limit: 1,
        ..claim("b", &[], &unchecked_only)
    };
    assert_eq!(
        relay_ids(&claim_relays(brotr, &limited).await.unwrap()),
        [readable]
    );
}

/// A TCP forwarder in front of a relay that counts the connections open at
/// once, to prove that no relay is synced by two workers at the same time.
struct Counted {
    url: String,
    open: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Counted {
    async fn start(backend: &str) -> Self {
        let backend = backend.trim_start_matches("ws://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let open = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let total = Arc::new(AtomicUsize::new(0));
        let (o, m, t) = (Arc::clone(&open), Arc::clone(&most), Arc::clone(&total));
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                t.fetch_add(1, Ordering::SeqCst);
                let (o, backend) = (Arc::clone(&o), backend.clone());
                tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(&backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            url,
            open,
            most,
            total,
            task,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn three_synchronizers_in_parallel_archive_every_event_once_and_never_share_a_relay() {
    let keys = Keys::generate();
    let events = notes(&keys, 1_150, 0, 40);
    let mut relays = Vec::new();
    for k in 0..6 {
        let relay = TestRelay::start(&events[k * 150..k * 150 + 400], None).await;
        let counted = Counted::start(&relay.url).await;
        relays.push((relay, counted));
    }
    let fixture = Fixture::new().await;
    let mut ids_of_relays = Vec::new();
    for (_, counted) in &relays {
        ids_of_relays.push(fixture.readable(&counted.url, None).await);
    }
    let workers: Vec<_> = ["w1", "w2", "w3"]
        .into_iter()
        .map(|worker| {
            let mut config = sync_config(worker);
            config.concurrency.clearnet = 2;
            config.limit = 50;
            config.batch_size = 60;
            synchronizer(&config)
        })
        .collect();

    let cancel = CancellationToken::new();
    let (a, b, c) = tokio::join!(
        workers[0].run_cycle(&fixture.brotr, &cancel),
        workers[1].run_cycle(&fixture.brotr, &cancel),
        workers[2].run_cycle(&fixture.brotr, &cancel),
    );
    let reports = [a.unwrap(), b.unwrap(), c.unwrap()];

    let synced: Vec<RelayId> = reports
        .iter()
        .flat_map(|report| report.relays.iter().map(|relay| relay.relay_id))
        .collect();
    assert_eq!(synced.len(), 6, "each relay synced once: {synced:?}");
    assert_eq!(
        synced.iter().copied().collect::<HashSet<_>>(),
        ids_of_relays.iter().copied().collect::<HashSet<_>>()
    );
    let stored: u64 = reports.iter().map(|r| r.totals.stored).sum();
    // Provenance of events archived already is recorded by reconciliation
    // without downloading them.
    let relations: u64 = reports
        .iter()
        .map(|r| r.totals.relations + r.totals.sightings)
        .sum();
    assert_eq!(stored, 1_150);
    assert_eq!(relations, 6 * 400);
    assert_eq!(fixture.event_count().await, 1_150);
    for (k, relay_id) in ids_of_relays.iter().enumerate() {
        assert_eq!(
            fixture.relay_event_ids(*relay_id).await,
            ids(&events[k * 150..k * 150 + 400])
        );
        assert_eq!(fixture.cursor(*relay_id).await.1, None, "released");
        let counted = &relays[k].1;
        assert_eq!(
            counted.most.load(Ordering::SeqCst),
            1,
            "one connection at a time"
        );
        assert_eq!(counted.total.load(Ordering::SeqCst), 1);
        let _ = counted.open.load(Ordering::SeqCst);
    }
}

#[tokio::test]
async fn the_relays_of_a_worker_that_died_are_taken_over_once_its_leases_expire() {
    let keys = Keys::generate();
    let events = notes(&keys, 200, 0, 60);
    let relay = TestRelay::start(&events, None).await;
    let fixture = Fixture::new().await;
    let relay_id = fixture.readable(&relay.url, None).await;
    // A worker claims the relay for 2 s and is never heard of again.
    let dead = Claim {
        lease_seconds: 2,
        ..claim("dead", &[], &[])
    };
    assert_eq!(
        relay_ids(&claim_relays(&fixture.brotr, &dead).await.unwrap()),
        [relay_id]
    );

    let sync = synchronizer(&sync_config("alive"));
    let report = sync
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .unwrap();
    assert!(report.relays.is_empty(), "the lease still holds");
    assert_eq!(fixture.relay_event_count(relay_id).await, 0);

    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let report = sync
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.relays.len(), 1);
    assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&events));
    // The dead worker cannot renew or move anything any more.
    assert_eq!(
        renew_leases(&fixture.brotr, "dead", &[relay_id], 60)
            .await
            .unwrap(),
        []
    );
}

#[tokio::test]
async fn a_lease_is_renewed_while_its_relay_is_synced() {
    // Answers every REQ, with nothing, after 1.2 s: the walk to now, some
    // 6 windows (each eight times the one before), takes longer than the
    // lease.
    let relay = FakeRelay::start(Script {
        delay: Duration::from_millis(1_200),
        ..Script::default()
    })
    .await;
    let fixture = Fixture::new().await;
    let relay_id = fixture.readable(&relay.url, None).await;
    let mut config = sync_config("holder");
    config.lease.duration = Duration::from_secs(3);
    config.window = Duration::from_secs(3_600);
    let sync = synchronizer(&config);
    let cycle = {
        let (sync, brotr) = (sync.clone(), fixture.brotr.clone());
        tokio::spawn(async move { sync.run_cycle(&brotr, &CancellationToken::new()).await })
    };
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    assert!(!cycle.is_finished(), "the sync should still run");
    assert!(
        claim_relays(&fixture.brotr, &claim("other", &[], &[]))
            .await
            .unwrap()
            .is_empty(),
        "renewed, so not claimable"
    );
    assert_eq!(fixture.cursor(relay_id).await.1.as_deref(), Some("holder"));
    let report = cycle.await.unwrap().unwrap();
    let outcome = &report.relay(relay_id).expect("synced").outcome;
    assert_eq!(*outcome, bigbrotr_synchronizer::RelayOutcome::CaughtUp);
    assert_eq!(fixture.cursor(relay_id).await.1, None);
}
