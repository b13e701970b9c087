//! The synchronizer as a service of the runtime: what `/metrics` and
//! `/status` show of a cycle, pending ranges and NIP-77 relays included.

use bigbrotr_config::{Implementation, LoopConfig, NostrConfig, ServiceConfig};
use bigbrotr_service_runtime::{LoopService, Metrics, ServiceContext, StatusCell};
use bigbrotr_synchronizer::{SynchronizerFile, SynchronizerService};
use nostr::Keys;
use tokio_util::sync::CancellationToken;

use crate::support::{local_egress, note, notes, sync_config, Fixture, TestRelay, BASE};

#[tokio::test]
async fn metrics_and_status_show_what_a_cycle_did_pending_ranges_and_nip77_relays() {
    let keys = Keys::generate();
    let mut events = notes(&keys, 100, 0, 60);
    events.extend((0..30).map(|i| note(&keys, 1, BASE + 9_000, &format!("crowd {i}"))));
    // One relay capping at 10 without NIP-77 in the configuration: its
    // crowded second stays pending.
    let capped = TestRelay::start(&events, Some(10)).await;
    let fixture = Fixture::new().await;
    fixture.readable(&capped.url, None).await;
    let mut config = sync_config("w1");
    config.nip77.enabled = false;
    config.limit = 10;
    config.second_limit = 10;
    let file = SynchronizerFile {
        service: ServiceConfig::default(),
        looping: LoopConfig::default(),
        nostr: NostrConfig::default(),
        synchronizer: config,
    };
    let root = bigbrotr_test_support::workspace_root();
    let implementation = Implementation::open(&root, "bigbrotr").expect("the implementation");
    let metrics = Metrics::new();
    let status = StatusCell::new("synchronizer");
    let ctx = ServiceContext::new(
        "synchronizer",
        file,
        fixture.brotr.clone(),
        implementation,
        metrics.for_service("synchronizer"),
        status.clone(),
    )
    .with_egress(local_egress());
    let mut service = SynchronizerService::build(&ctx).expect("built");
    service
        .loop_iteration(&ctx, &CancellationToken::new())
        .await
        .expect("a cycle");

    let text = metrics.render();
    for line in [
        "bigbrotr_synchronizer_events_stored_total{service=\"synchronizer\"} 110",
        "bigbrotr_synchronizer_pending_ranges{service=\"synchronizer\"} 1",
        "bigbrotr_synchronizer_nip77_relays{service=\"synchronizer\"} 0",
        "bigbrotr_synchronizer_pending_added_total{service=\"synchronizer\"} 1",
        "bigbrotr_synchronizer_events_stored_by_total{service=\"synchronizer\",way=\"window\"} 110",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    assert!(
        !text.contains("relay=\""),
        "no series labelled with a relay"
    );
    let snapshot = status.snapshot();
    assert_eq!(snapshot.details["pending_ranges"], 1);
    assert_eq!(snapshot.details["nip77_relays"], 0);
}
