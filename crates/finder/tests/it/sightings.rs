//! Sightings that commit late, in every implementation: a batch stamped
//! with a `seen_at` the scan has already passed is read when it commits,
//! and a batch held open across a cycle is read by the next one.

use bigbrotr_brotr::RelayId;
use bigbrotr_finder::{CycleReport, Finder, ScanCursor};
use bigbrotr_pool::tokio_postgres::error::SqlState;
use bigbrotr_pool::{PoolTransaction, Type};
use nostr::Event;
use tokio_util::sync::CancellationToken;

use crate::support::{event, finder_config, finder_with, sorted, Fixture};

const SOURCE: &str = "wss://source.example";
const SOURCE2: &str = "wss://source2.example";

macro_rules! for_each_implementation {
    ($($test:ident),* $(,)?) => {
        mod bigbrotr {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test("bigbrotr").await;
                }
            )*
        }
        mod lilbrotr {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test("lilbrotr").await;
                }
            )*
        }
    };
}

for_each_implementation!(
    a_sighting_stamped_before_the_cursor_and_committed_after_it_is_read,
    a_batch_held_open_across_a_cycle_is_read_by_the_next_one,
    a_cursor_in_the_clusters_future_stops_the_scan,
);

fn now() -> i64 {
    bigbrotr_utils::now_timestamp()
}

async fn cycle(finder: &Finder, fixture: &Fixture) -> CycleReport {
    finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle")
}

/// A relay list naming `url`.
fn relay_list(url: &str) -> Event {
    event(10002, "", &[&["r", url]], 1_000)
}

async fn a_sighting_stamped_before_the_cursor_and_committed_after_it_is_read(implementation: &str) {
    let fixture = Fixture::new(implementation).await;
    let source = fixture.relay(SOURCE).await;
    let first = relay_list("wss://first.example");
    fixture
        .archive(std::slice::from_ref(&first), source, now() - 1000)
        .await;
    let finder = finder_with(&finder_config());
    let report = cycle(&finder, &fixture).await;
    assert_eq!((report.sightings, report.new), (1, 1));

    // A batch stamped when its window was fetched, before the sighting the
    // cursor stands on, committed only now. And the event already read,
    // seen on a second relay earlier than on the first, recorded by a plain
    // INSERT: read as a sighting, but the event is not read again.
    let source2 = fixture.relay(SOURCE2).await;
    fixture
        .archive(&[relay_list("wss://late.example")], source, now() - 2000)
        .await;
    let first_id: &[u8] = first.id.as_bytes();
    fixture
        .brotr
        .pool()
        .execute(
            "INSERT INTO events_relays (event_id, relay_id, seen_at) VALUES ($1, $2, $3)",
            &[
                (&first_id, Type::BYTEA),
                (&source2.get(), Type::INT4),
                (&(now() - 2000), Type::INT8),
            ],
        )
        .await
        .expect("sighting stored");
    fixture.settle().await;
    let report = cycle(&finder, &fixture).await;
    assert_eq!(
        (report.sightings, report.candidates, report.new),
        (2, 1, 1),
        "{report:?}"
    );
    assert_eq!(
        fixture.relays().await,
        sorted(&[SOURCE, SOURCE2, "wss://first.example", "wss://late.example"])
    );
    assert_eq!(cycle(&finder, &fixture).await, CycleReport::default());
}

async fn a_batch_held_open_across_a_cycle_is_read_by_the_next_one(implementation: &str) {
    let fixture = Fixture::new(implementation).await;
    let source = fixture.relay(SOURCE).await;
    let finder = finder_with(&finder_config());

    // A writer stamps its batch and takes its time to commit, while another
    // commits a batch stamped later.
    let mut writer = fixture.brotr.pool().begin().await.expect("begin");
    insert_in(
        &mut writer,
        &relay_list("wss://held.example"),
        source,
        now() - 100,
    )
    .await;
    fixture
        .store(&[relay_list("wss://later.example")], source, now() - 50)
        .await;
    let during = cycle(&finder, &fixture).await;
    let cursor_during = finder.cursor(&fixture.brotr).await.expect("read");

    writer.commit().await.expect("commit");
    fixture.settle().await;
    let after = cycle(&finder, &fixture).await;
    assert_eq!(
        fixture.relays().await,
        sorted(&[SOURCE, "wss://held.example", "wss://later.example"]),
        "during: {during:?}, after: {after:?}"
    );
    // Nothing was read while the writer was open: the later batch comes
    // after it in the scan.
    assert_eq!(during, CycleReport::default());
    assert_eq!(cursor_during, None);
    assert_eq!((after.sightings, after.new), (2, 2));
    assert_eq!(cycle(&finder, &fixture).await, CycleReport::default());
}

/// A database restored into another cluster keeps its cursor, whose
/// transaction id that cluster has not reached: scanning on would pass every
/// sighting inserted since, so the scan stops with an error.
async fn a_cursor_in_the_clusters_future_stops_the_scan(implementation: &str) {
    let fixture = Fixture::new(implementation).await;
    let finder = finder_with(&finder_config());
    let restored = ScanCursor {
        insert_xid: i64::MAX / 2,
        seen_at: now(),
        event_id: vec![0; 32],
        relay_id: 1,
    };
    assert!(finder
        .set_cursor(&fixture.brotr, &restored)
        .await
        .expect("set"));
    let error = finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect_err("the scan stops");
    let code = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<bigbrotr_pool::Error>())
        .and_then(bigbrotr_pool::Error::code);
    assert_eq!(code, Some(&SqlState::DATA_EXCEPTION), "{error:#}");
}

/// Archives `event`, seen on `relay` at `seen_at`, through `insert_events`
/// in the open transaction `tx`.
async fn insert_in(tx: &mut PoolTransaction, event: &Event, relay: RelayId, seen_at: i64) {
    let json = serde_json::to_value(event).expect("an event is JSON");
    let text = |key: &str| json[key].as_str().expect("a string").to_owned();
    let (id, pubkey, content, sig) = (text("id"), text("pubkey"), text("content"), text("sig"));
    let created_at = json["created_at"].as_i64().expect("a number");
    let kind = i32::from(event.kind.as_u16());
    let tags = json["tags"].to_string();
    let row = tx
        .fetch_one(
            "SELECT events_inserted, relations_inserted FROM insert_events(\
                 ARRAY[decode($1, 'hex')], ARRAY[decode($2, 'hex')], ARRAY[$3::bigint], \
                 ARRAY[$4::integer], ARRAY[$5::jsonb], NULL, ARRAY[$6], NULL, \
                 ARRAY[decode($7, 'hex')], ARRAY[$8::integer], ARRAY[$9::bigint])",
            &[
                (&id, Type::TEXT),
                (&pubkey, Type::TEXT),
                (&created_at, Type::INT8),
                (&kind, Type::INT4),
                (&tags, Type::TEXT),
                (&content, Type::TEXT),
                (&sig, Type::TEXT),
                (&relay.get(), Type::INT4),
                (&seen_at, Type::INT8),
            ],
        )
        .await
        .expect("inserted");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 1));
}
