//! The cleanups: relay checks past their retention (each relay's latest
//! kept), the documents they leave unreferenced, and orphan events only when
//! asked.

use std::time::Duration;

use bigbrotr_brotr::Brotr;
use bigbrotr_config::BrotrConfig;
use bigbrotr_refresher::{Cleanup, Cleanups};
use tokio_util::sync::CancellationToken;

use crate::support::Fixture;

/// Runs `cleanups` and returns what each deleted.
async fn run(cleanups: &mut Cleanups, brotr: &Brotr) -> Vec<(Cleanup, u64)> {
    let mut done = Vec::new();
    cleanups
        .run(brotr, &CancellationToken::new(), |cleanup, result| {
            done.push((cleanup, *result.as_ref().expect("the cleanup succeeds")));
        })
        .await;
    done
}

#[tokio::test]
async fn old_checks_and_unreferenced_documents_go_events_only_when_asked() {
    for implementation in ["bigbrotr", "lilbrotr"] {
        let fixture = Fixture::new(implementation).await;
        let checked = fixture.relay("wss://checked.example").await;
        let once = fixture.relay("wss://once.example").await;
        let now = bigbrotr_utils::now_timestamp();
        fixture
            .pool
            .batch_execute(&format!(
                "INSERT INTO nip11 (id, data) VALUES \
                   (sha256('old'), '{{}}'), (sha256('new'), '{{}}'), (sha256('none'), '{{}}'); \
                 INSERT INTO relay_metadata (relay_id, generated_at, connected, nip11_id) VALUES \
                   ({checked}, 1000, true, sha256('old')), \
                   ({checked}, 2000, true, sha256('old')), \
                   ({checked}, {now}, true, sha256('new')), \
                   ({once}, 1000, false, NULL)"
            ))
            .await
            .expect("checks stored");
        fixture.events("kept", 5, 1, checked).await;
        // Their sightings gone, the events are orphans.
        fixture
            .pool
            .batch_execute("DELETE FROM events_relays")
            .await
            .expect("sightings deleted");
        let brotr = Brotr::new(fixture.pool.clone(), BrotrConfig::default()).expect("valid");

        let mut config = BrotrConfig {
            relay_metadata_retention: Duration::from_secs(30 * 86_400),
            cleanup_batch_size: 1,
            ..BrotrConfig::default()
        };
        let mut cleanups = Cleanups::new(&config);
        assert_eq!(
            run(&mut cleanups, &brotr).await,
            [
                (Cleanup::RelayMetadata, 2),
                (Cleanup::Nip11, 2),
                (Cleanup::Nip66, 0)
            ],
            "{implementation}"
        );
        assert!(!cleanups.due(tokio::time::Instant::now()));
        // The latest check of each relay stays, however old.
        let checks = fixture
            .scalar("SELECT count(*) FROM relay_metadata_latest")
            .await;
        assert_eq!(checks, 2, "{implementation}");
        assert_eq!(
            fixture.scalar("SELECT count(*) FROM relay_metadata").await,
            2
        );
        assert_eq!(fixture.scalar("SELECT count(*) FROM nip11").await, 1);
        // Events are never deleted unless asked.
        assert_eq!(fixture.scalar("SELECT count(*) FROM events").await, 5);

        config.cleanup_orphan_events = true;
        let mut cleanups = Cleanups::new(&config);
        let done = run(&mut cleanups, &brotr).await;
        assert_eq!(done.last(), Some(&(Cleanup::Events, 5)), "{implementation}");
        assert_eq!(fixture.scalar("SELECT count(*) FROM events").await, 0);
    }
}

#[tokio::test]
async fn a_cancelled_run_stops_before_its_first_cleanup() {
    let fixture = Fixture::new("bigbrotr").await;
    let brotr = Brotr::new(fixture.pool.clone(), BrotrConfig::default()).expect("valid");
    let mut cleanups = Cleanups::new(&BrotrConfig::default());
    let cancel = CancellationToken::new();
    cancel.cancel();
    let mut ran = 0;
    cleanups.run(&brotr, &cancel, |_, _| ran += 1).await;
    assert_eq!(ran, 0);
    assert!(cleanups.due(tokio::time::Instant::now()));
}
