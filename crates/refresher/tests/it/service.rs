//! The refresher as a service of the runtime: one iteration, its status and
//! its metrics; an iteration in which every view failed; an unknown view.

use std::time::Duration;

use bigbrotr_brotr::Brotr;
use bigbrotr_config::{BrotrConfig, Implementation};
use bigbrotr_refresher::{RefresherFile, RefresherService};
use bigbrotr_service_runtime::{Runtime, RuntimeConfig, ServiceStatus, State};
use bigbrotr_test_support::workspace_root;

use crate::support::{Fixture, VIEWS};

/// Runs one iteration of the refresher configured by `file` on `f`, and
/// returns its status and the metrics text.
async fn run_once(
    f: &Fixture,
    implementation: &str,
    mut file: RefresherFile,
) -> (ServiceStatus, String) {
    file.looping.max_iterations = 1;
    let implementation = Implementation::open(&workspace_root(), implementation).unwrap();
    let brotr = Brotr::new(f.pool.clone(), BrotrConfig::default()).unwrap();
    let settings = RuntimeConfig {
        shutdown_grace: Duration::from_secs(5),
        ..RuntimeConfig::default()
    };
    let mut runtime = Runtime::new(implementation, brotr, settings);
    let handle = runtime.start::<RefresherService>(file);
    runtime.wait().await;
    let status = handle.status();
    let metrics = runtime.metrics().render();
    runtime.shutdown().await;
    (status, metrics)
}

/// The value of the sample `series` (name and labels as written) in
/// `metrics`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|value| value.parse().expect("a number"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_iteration_refreshes_every_view_and_sets_its_gauges() {
    let f = Fixture::new("bigbrotr").await;
    let before = bigbrotr_utils::now_timestamp() as f64;
    let (status, metrics) = run_once(&f, "bigbrotr", RefresherFile::default()).await;
    assert_eq!(status.state, State::Stopped, "{status:?}");
    assert_eq!((status.iterations, status.errors), (1, 0));
    for view in VIEWS {
        let labels = format!("{{service=\"refresher\",view=\"{view}\"}}");
        let took = sample(
            &metrics,
            &format!("bigbrotr_refresher_refresh_duration_seconds{labels}"),
        )
        .unwrap_or_else(|| panic!("no duration of {view}:\n{metrics}"));
        assert!((0.0..60.0).contains(&took), "{view}: {took}");
        let at = sample(
            &metrics,
            &format!("bigbrotr_refresher_last_success_timestamp_seconds{labels}"),
        )
        .unwrap();
        assert!(at >= before, "{view}: {at} < {before}");
        for reason in ["timeout", "error"] {
            let failures = format!(
                "bigbrotr_refresher_failures_total{{service=\"refresher\",view=\"{view}\",reason=\"{reason}\"}}"
            );
            assert_eq!(sample(&metrics, &failures), Some(0.0), "{failures}");
        }
    }
    assert_eq!(f.scalar("SELECT count(*) FROM stats_refreshes").await, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iteration_in_which_every_view_failed_fails_and_is_counted() {
    let f = Fixture::new("lilbrotr").await;
    f.pool
        .batch_execute("DROP MATERIALIZED VIEW stats_nips")
        .await
        .unwrap();
    let mut file = RefresherFile::default();
    file.service.name = "stats".to_owned();
    file.refresher.views = vec!["stats_nips".to_owned()];
    let (status, metrics) = run_once(&f, "lilbrotr", file).await;
    assert_eq!(status.state, State::Failed, "{status:?}");
    assert_eq!((status.iterations, status.errors), (1, 1));
    let error = status.last_error.unwrap();
    assert!(
        error.contains("every statistics view failed to refresh (1)")
            && error.contains("refreshing stats_nips failed"),
        "{error}"
    );
    assert_eq!(
        sample(
            &metrics,
            "bigbrotr_refresher_failures_total{service=\"stats\",view=\"stats_nips\",reason=\"error\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "bigbrotr_refresher_last_success_timestamp_seconds{service=\"stats\",view=\"stats_nips\"}"
        ),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_view_fails_the_iteration_naming_it() {
    let f = Fixture::new("bigbrotr").await;
    let mut file = RefresherFile::default();
    file.refresher.views = vec!["stats_everything".to_owned()];
    let (status, _) = run_once(&f, "bigbrotr", file).await;
    assert_eq!(status.state, State::Failed, "{status:?}");
    let error = status.last_error.unwrap();
    assert!(error.contains("stats_everything"), "{error}");
    assert_eq!(f.scalar("SELECT count(*) FROM stats_refreshes").await, 0);
}
