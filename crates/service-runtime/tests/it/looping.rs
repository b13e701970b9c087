//! The loop: iterations, error budget, retry delay, `--once`, stopping and
//! abandoning, each with exact counts.

use std::time::Duration;

use bigbrotr_config::Env;
use bigbrotr_service_runtime::{Egress, OnServiceFailure, ServiceRegistry, State};
use bigbrotr_test_support::TestDb;
use bigbrotr_utils::{AllowEntry, EgressPolicy};
use tokio::time::Instant;

use crate::support::{
    count, offline_runtime, probe_file, runtime_on, settings, Probe, ProbeConfig,
};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn max_iterations_are_honoured_one_interval_apart() {
    let mut runtime = offline_runtime(settings(SECOND));
    let started = Instant::now();
    let handle = runtime.start::<Probe>(probe_file(
        "probe",
        ProbeConfig::default(),
        10 * SECOND,
        3,
        SECOND,
        5,
    ));
    runtime.wait().await;
    assert_eq!(started.elapsed(), 20 * SECOND);
    let report = runtime.shutdown().await;
    assert!(report.is_success(), "{report}");
    let status = handle.status();
    assert_eq!(status.name, "probe");
    assert_eq!(status.state, State::Stopped);
    assert_eq!(
        (status.iterations, status.errors, status.consecutive_errors),
        (3, 0, 0)
    );
    assert_eq!(status.last_error, None);
    assert!(status.last_success_at.is_some());
    assert!(!status.abandoned);
    assert_eq!(report.services, [status]);
    assert!(report.abandoned.is_empty());
}

#[tokio::test(start_paused = true)]
async fn with_stop_process_consecutive_errors_fail_the_service_after_retry_delays_and_stop_the_others(
) {
    let mut config = settings(30 * SECOND);
    config.on_service_failure = OnServiceFailure::StopProcess;
    let mut runtime = offline_runtime(config);
    let started = Instant::now();
    let failing = runtime.start::<Probe>(probe_file(
        "failing",
        ProbeConfig {
            fail_from: 1,
            ..ProbeConfig::default()
        },
        1000 * SECOND,
        0,
        7 * SECOND,
        3,
    ));
    let steady = runtime.start::<Probe>(probe_file(
        "steady",
        ProbeConfig::default(),
        3 * SECOND,
        0,
        SECOND,
        3,
    ));
    runtime.wait().await;
    // Three failures, two retry delays between them.
    assert_eq!(started.elapsed(), 14 * SECOND);
    let report = runtime.shutdown().await;

    let failed = failing.status();
    assert_eq!(failed.state, State::Failed);
    assert_eq!(
        (failed.iterations, failed.errors, failed.consecutive_errors),
        (3, 3, 3)
    );
    assert_eq!(
        failed.last_error.as_deref(),
        Some("service `failing` stopped after 3 failed iterations in a row: probe failure at iteration 3")
    );
    assert_eq!(failed.last_success_at, None);

    let stopped = steady.status();
    assert_eq!(stopped.state, State::Stopped);
    assert_eq!(stopped.iterations, 5, "at 0, 3, 6, 9 and 12 s");
    assert_eq!(stopped.errors, 0);

    assert!(!report.is_success());
    let names: Vec<&str> = report.failed().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["failing"]);
    assert!(report.to_string().contains(
        "failing: failed after 3 iteration(s), 3 failed: service `failing` stopped after 3 failed iterations in a row"
    ), "{report}");
}

#[tokio::test(start_paused = true)]
async fn by_default_a_failed_service_stops_alone_and_the_others_go_on() {
    let mut runtime = offline_runtime(settings(30 * SECOND));
    assert_eq!(
        runtime.settings().on_service_failure,
        OnServiceFailure::StopService
    );
    let started = Instant::now();
    let failing = runtime.start::<Probe>(probe_file(
        "failing",
        ProbeConfig {
            fail_from: 1,
            ..ProbeConfig::default()
        },
        1000 * SECOND,
        0,
        7 * SECOND,
        3,
    ));
    let steady = runtime.start::<Probe>(probe_file(
        "steady",
        ProbeConfig::default(),
        3 * SECOND,
        10,
        SECOND,
        3,
    ));
    let cancelled = runtime.cancellation_token();

    // The failing one fails at 14 s; the steady one goes on to its tenth
    // iteration, at 27 s, and the process ends when both have.
    tokio::time::sleep(15 * SECOND).await;
    assert_eq!(failing.status().state, State::Failed);
    assert_eq!(steady.status().state, State::Running);
    assert!(!cancelled.is_cancelled());
    let problems = runtime.state().problems();
    assert_eq!(
        problems,
        [
            "service `failing` failed: service `failing` stopped after 3 failed iterations in a row: probe failure at iteration 3",
            "the connection pool is not connected",
        ]
    );
    assert_eq!(runtime.readiness().await, problems);
    assert!(!runtime.status().ready);
    assert_eq!(runtime.status().problems, problems);

    runtime.wait().await;
    assert_eq!(started.elapsed(), 27 * SECOND);
    let report = runtime.shutdown().await;
    let steady = steady.status();
    assert_eq!(
        (steady.state, steady.iterations, steady.errors),
        (State::Stopped, 10, 0)
    );
    assert!(!report.is_success(), "a failed service fails the run");
    let names: Vec<&str> = report.failed().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["failing"]);
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_streak_and_a_failed_last_iteration_fails_the_run() {
    let mut runtime = offline_runtime(settings(SECOND));
    let handle = runtime.start::<Probe>(probe_file(
        "probe",
        ProbeConfig {
            fail: vec![1, 2, 4, 5],
            ..ProbeConfig::default()
        },
        SECOND,
        5,
        SECOND,
        3,
    ));
    runtime.wait().await;
    let report = runtime.shutdown().await;
    let status = handle.status();
    assert_eq!(status.state, State::Failed);
    assert_eq!(
        (status.iterations, status.errors, status.consecutive_errors),
        (5, 4, 2)
    );
    assert_eq!(
        status.last_error.as_deref(),
        Some(
            "the last of the 5 iterations of service `probe` failed: probe failure at iteration 5"
        )
    );
    assert!(!report.is_success());
}

#[tokio::test(start_paused = true)]
async fn once_runs_a_single_iteration_of_the_service_file() {
    let root = tempfile::tempdir().unwrap();
    let services = root.path().join("implementations/demo/config/services");
    std::fs::create_dir_all(&services).unwrap();
    std::fs::write(
        services.join("probe.yaml"),
        "loop:\n  interval: 1s\n  max_iterations: 10\n",
    )
    .unwrap();
    let implementation =
        bigbrotr_config::Implementation::open(root.path(), "demo").expect("the fixture");
    let registry = ServiceRegistry::new().register::<Probe>();
    let mut runtime = offline_runtime(settings(SECOND));
    let started = Instant::now();
    let handle = registry
        .load("probe", &implementation, &Env::empty(), true)
        .expect("a valid file")
        .start(&runtime);
    runtime.wait().await;
    assert_eq!(started.elapsed(), Duration::ZERO);
    runtime.shutdown().await;
    let status = handle.status();
    assert_eq!((status.state, status.iterations), (State::Stopped, 1));
}

#[tokio::test(start_paused = true)]
async fn stopping_lets_the_current_iteration_finish_within_the_grace_period() {
    let mut runtime = offline_runtime(settings(30 * SECOND));
    let handle = runtime.start::<Probe>(probe_file(
        "probe",
        ProbeConfig {
            work: 5 * SECOND,
            ..ProbeConfig::default()
        },
        SECOND,
        0,
        SECOND,
        3,
    ));
    tokio::time::sleep(SECOND).await;
    assert_eq!(handle.status().state, State::Running);
    let started = Instant::now();
    runtime.stop();
    assert_eq!(handle.status().state, State::Stopping);
    let report = runtime.shutdown().await;
    assert_eq!(started.elapsed(), 4 * SECOND);
    let status = handle.status();
    assert_eq!(
        (status.state, status.iterations, status.abandoned),
        (State::Stopped, 1, false)
    );
    assert!(
        report.is_success() && report.abandoned.is_empty(),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_iteration_outlasting_the_grace_period_is_abandoned_cleanly() {
    let mut runtime = offline_runtime(settings(2 * SECOND));
    let handle = runtime.start::<Probe>(probe_file(
        "probe",
        ProbeConfig {
            work: 100 * SECOND,
            ..ProbeConfig::default()
        },
        SECOND,
        0,
        SECOND,
        3,
    ));
    tokio::time::sleep(SECOND).await;
    let started = Instant::now();
    let report = runtime.shutdown().await;
    assert_eq!(started.elapsed(), 2 * SECOND);
    let status = handle.status();
    assert_eq!(
        (status.state, status.iterations, status.abandoned),
        (State::Stopped, 0, true)
    );
    assert_eq!(report.abandoned, ["probe"]);
    assert!(report.is_success(), "{report}");
    // Shutting down again changes nothing and waits for nothing.
    assert_eq!(runtime.shutdown().await, report);
    assert_eq!(started.elapsed(), 2 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn a_disabled_service_does_not_start() {
    let mut runtime = offline_runtime(settings(SECOND));
    let mut file = probe_file("probe", ProbeConfig::default(), SECOND, 0, SECOND, 3);
    file.service.enabled = false;
    let handle = runtime.start::<Probe>(file);
    runtime.wait().await;
    runtime.shutdown().await;
    assert_eq!(
        (handle.status().state, handle.status().iterations),
        (State::Stopped, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn services_connect_through_the_runtime_egress_policy_strict_by_default() {
    let local: std::net::SocketAddr = "127.0.0.1:7777".parse().unwrap();
    let probe = ProbeConfig {
        must_reach: vec![local],
        ..ProbeConfig::default()
    };
    let file = probe_file("probe", probe, SECOND, 1, SECOND, 1);

    let mut strict = offline_runtime(settings(SECOND));
    let refused = strict.start::<Probe>(file.clone());
    strict.wait().await;
    strict.shutdown().await;
    assert_eq!(refused.status().state, State::Failed);

    let policy = EgressPolicy::strict().allowing(AllowEntry::Socket(local));
    let mut loose = offline_runtime(settings(SECOND)).with_egress(Egress::new(policy.clone()));
    assert_eq!(loose.egress().policy(), &policy);
    let allowed = loose.start::<Probe>(file);
    loose.wait().await;
    loose.shutdown().await;
    assert_eq!(
        (allowed.status().state, allowed.status().iterations),
        (State::Stopped, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_share_one_archive_and_the_pool_is_closed_at_the_end() {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    let mut runtime = runtime_on(&db, settings(5 * SECOND)).await;
    let writing = ProbeConfig {
        write: true,
        ..ProbeConfig::default()
    };
    let ms = Duration::from_millis(10);
    let a = runtime.start::<Probe>(probe_file("probe-a", writing.clone(), ms, 3, ms, 3));
    let b = runtime.start::<Probe>(probe_file("probe-b", writing, ms, 4, ms, 3));
    runtime.wait().await;
    let report = runtime.shutdown().await;
    assert!(report.is_success(), "{report}");
    assert_eq!((a.status().iterations, b.status().iterations), (3, 4));
    assert!(runtime.brotr().pool().is_closed());
    assert_eq!(report.connections_cut, 0);
    assert_eq!(count(&db, "relays").await, 7);
    let stats = runtime.brotr().pool().stats();
    assert_eq!(stats.errors, 0);
}
