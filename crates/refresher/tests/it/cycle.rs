//! Cycles over the statistics views: every view in order, new events seen
//! after the next refresh only, a view that fails among others, a refresh
//! past its time limit, a subset, an unknown name, and cancellation.

use std::time::Duration;

use bigbrotr_pool::tokio_postgres::error::SqlState;
use bigbrotr_refresher::Error;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::support::{owned, refresher, Fixture, VIEWS};

/// Names of the views of `refreshed`, in order.
fn names<T>(refreshed: &[(String, T)]) -> Vec<String> {
    refreshed.iter().map(|(view, _)| view.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_refreshes_every_view_in_order_and_the_next_one_shows_new_events() {
    for implementation in ["bigbrotr", "lilbrotr"] {
        let f = Fixture::new(implementation).await;
        let refresher = refresher(&[], Duration::from_secs(60));
        assert_eq!(refresher.views(&f.pool).await.unwrap(), owned(&VIEWS));

        let mut seen = Vec::new();
        let report = refresher
            .run_cycle(&f.pool, &CancellationToken::new(), |view, result| {
                seen.push((view.to_owned(), result.is_ok()));
            })
            .await
            .unwrap();
        assert_eq!(names(&report.refreshed), owned(&VIEWS), "{implementation}");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert!(!report.cancelled && !report.all_failed());
        assert_eq!(
            seen,
            VIEWS.map(|view| (view.to_owned(), true)),
            "{implementation}"
        );
        assert_eq!(f.scalar("SELECT events FROM stats_totals").await, 0);
        assert_eq!(f.scalar("SELECT count(*) FROM stats_refreshes").await, 12);

        // New events: the views hold what they held until the next cycle.
        let relay = f.relay("wss://relay.example").await;
        assert_eq!(f.events("a", 5, 1, relay).await, 5);
        assert_eq!(f.events("b", 2, 0, relay).await, 2);
        assert_eq!(f.scalar("SELECT events FROM stats_totals").await, 0);
        let report = refresher
            .run_cycle(&f.pool, &CancellationToken::new(), |_, _| {})
            .await
            .unwrap();
        assert_eq!(report.refreshed.len(), 12);
        assert_eq!(
            f.scalar("SELECT events + pubkeys + kinds + relays + sightings FROM stats_totals")
                .await,
            7 + 3 + 2 + 1 + 7,
            "{implementation}"
        );
        assert_eq!(
            f.scalar("SELECT events FROM stats_kinds WHERE kind = 1")
                .await,
            5
        );
        assert_eq!(
            f.scalar("SELECT count(*) FROM stats_replaceable_latest")
                .await,
            2,
            "two authors of kind 0"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_that_fails_is_reported_and_the_others_are_refreshed() {
    let f = Fixture::new("bigbrotr").await;
    f.pool
        .batch_execute("DROP MATERIALIZED VIEW stats_nips")
        .await
        .unwrap();
    let refresher = refresher(&[], Duration::from_secs(60));
    let mut outcomes = Vec::new();
    let report = refresher
        .run_cycle(&f.pool, &CancellationToken::new(), |view, result| {
            outcomes.push((view.to_owned(), result.as_ref().err().map(Error::reason)));
        })
        .await
        .unwrap();

    let others: Vec<&str> = VIEWS.into_iter().filter(|v| *v != "stats_nips").collect();
    assert_eq!(names(&report.refreshed), owned(&others));
    assert_eq!(names(&report.failed), ["stats_nips"]);
    let Error::Refresh { view, source } = &report.failed[0].1 else {
        panic!("expected Refresh, got {:?}", report.failed[0].1);
    };
    assert_eq!(view, "stats_nips");
    assert_eq!(source.code(), Some(&SqlState::UNDEFINED_TABLE));
    assert!(!report.all_failed());
    assert_eq!(outcomes.len(), 12);
    assert_eq!(outcomes[10], ("stats_nips".to_owned(), Some("error")));
    assert_eq!(
        f.scalar("SELECT count(*) FROM stats_refreshes").await,
        11,
        "the failed refresh is not recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_past_its_time_limit_is_cancelled_and_the_next_view_refreshed() {
    let f = Fixture::new("bigbrotr").await;
    let limit = Duration::from_millis(400);
    let refresher = refresher(&["stats_totals", "stats_daily", "stats_kinds"], limit);
    let locker = f.lock("stats_daily").await;

    let started = Instant::now();
    let report = refresher
        .run_cycle(&f.pool, &CancellationToken::new(), |_, _| {})
        .await
        .unwrap();
    let took = started.elapsed();

    // stats_totals reads views never filled: it fails too, as an error.
    assert_eq!(names(&report.refreshed), ["stats_kinds"]);
    assert_eq!(names(&report.failed), ["stats_daily", "stats_totals"]);
    assert!(
        matches!(&report.failed[0].1, Error::Timeout { view, after } if view == "stats_daily" && *after == limit),
        "{:?}",
        report.failed[0].1
    );
    assert_eq!(report.failed[1].1.reason(), "error");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // The server ended it: the connection answered and stays in the pool.
    assert_eq!(f.pool.stats().discarded, 0);

    locker.batch_execute("ROLLBACK").await.unwrap();
    let report = refresher
        .run_cycle(&f.pool, &CancellationToken::new(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(names(&report.refreshed), ["stats_kinds", "stats_daily"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_may_outlast_the_command_timeout_within_its_own() {
    let f = Fixture::new("bigbrotr").await;
    assert_eq!(f.pool.command_timeout(), Duration::from_secs(2));
    let refresher = refresher(&["stats_kinds"], Duration::from_secs(30));
    let locker = f.lock("stats_kinds").await;
    let release = async {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        locker.batch_execute("ROLLBACK").await.unwrap();
    };
    let cancel = CancellationToken::new();
    let (report, ()) = tokio::join!(refresher.run_cycle(&f.pool, &cancel, |_, _| {}), release);
    let report = report.unwrap();
    assert_eq!(names(&report.refreshed), ["stats_kinds"]);
    assert!(report.refreshed[0].1 > f.pool.command_timeout());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subset_is_refreshed_in_dependency_order_and_an_unknown_name_fails_the_cycle() {
    let f = Fixture::new("lilbrotr").await;
    let subset = refresher(
        &["stats_daily", "stats_relay_kinds"],
        Duration::from_secs(60),
    );
    assert_eq!(
        subset.views(&f.pool).await.unwrap(),
        ["stats_relay_kinds", "stats_daily"]
    );
    let report = subset
        .run_cycle(&f.pool, &CancellationToken::new(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        names(&report.refreshed),
        ["stats_relay_kinds", "stats_daily"]
    );
    assert_eq!(f.scalar("SELECT count(*) FROM stats_refreshes").await, 2);

    let unknown = refresher(&["stats_kinds", "stats_nope"], Duration::from_secs(60));
    let error = unknown
        .run_cycle(&f.pool, &CancellationToken::new(), |_, _| {})
        .await
        .unwrap_err();
    let Error::UnknownViews { unknown, known } = &error else {
        panic!("expected UnknownViews, got {error:?}");
    };
    assert_eq!(unknown, &["stats_nope"]);
    assert_eq!(known, &owned(&VIEWS));
    assert_eq!(f.scalar("SELECT count(*) FROM stats_refreshes").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_cycle_cancels_the_refresh_under_way_and_begins_no_other() {
    let f = Fixture::new("bigbrotr").await;
    let refresher = refresher(&[], Duration::from_secs(60));

    // Cancelled before it begins: nothing is refreshed.
    let cancelled = CancellationToken::new();
    cancelled.cancel();
    let report = refresher
        .run_cycle(&f.pool, &cancelled, |_, _| {})
        .await
        .unwrap();
    assert!(report.cancelled);
    assert!(report.refreshed.is_empty() && report.failed.is_empty());

    // Cancelled while the first refresh waits for a lock.
    let locker = f.lock("stats_relay_kinds").await;
    let cancel = CancellationToken::new();
    let stop = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    };
    let started = Instant::now();
    let (report, ()) = tokio::join!(refresher.run_cycle(&f.pool, &cancel, |_, _| {}), stop);
    let report = report.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(report.cancelled);
    assert!(report.refreshed.is_empty() && report.failed.is_empty());
    assert_eq!(f.pool.stats().discarded, 1, "its connection, cancelled");
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(f.scalar("SELECT count(*) FROM stats_refreshes").await, 0);
    // Lets the cancel request finish before the test ends: PgBouncer 1.18
    // exits when a cancel connection closes too early.
    f.pool.disconnect(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_the_cycle() {
    let f = Fixture::new("bigbrotr").await;
    f.pool.disconnect(Duration::from_secs(1)).await;
    let error = refresher(&[], Duration::from_secs(60))
        .run_cycle(&f.pool, &CancellationToken::new(), |_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Database { .. }), "{error:?}");
}
