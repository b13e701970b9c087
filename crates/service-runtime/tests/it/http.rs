//! `/health`, `/status` and `/metrics` of a runtime on the real pool.

use std::net::SocketAddr;
use std::time::Duration;

use bigbrotr_service_runtime::State;
use bigbrotr_service_runtime::MAX_SERIES_PER_METRIC;
use bigbrotr_test_support::{metrics_problems, TestDb};
use serde_json::Value;

use crate::support::{
    get, pool_to, probe_file, runtime_on, runtime_on_pool, settings, Probe, ProbeConfig, Proxy,
};

const MS: Duration = Duration::from_millis(1);

/// Polls `/health` until it answers `expected`, for at most 10 s.
async fn wait_for_health(address: SocketAddr, expected: u16) {
    for _ in 0..200 {
        if get(address, "/health").await.0 == expected {
            return;
        }
        tokio::time::sleep(50 * MS).await;
    }
    panic!("/health never answered {expected}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_status_and_metrics_describe_a_running_service() {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    let mut runtime = runtime_on(&db, settings(Duration::from_secs(5))).await;
    let address = runtime.serve_http().await.unwrap().expect("enabled");
    assert_eq!(runtime.serve_http().await.unwrap(), Some(address));
    assert!(address.ip().is_loopback() && address.port() != 0);

    // No service yet: live, not ready.
    assert_eq!(
        get(address, "/health/live").await,
        (200, "text/plain; charset=utf-8".into(), "live\n".into())
    );
    assert_eq!(
        get(address, "/health").await,
        (
            503,
            "text/plain; charset=utf-8".into(),
            "not ready\n- no service was started\n".into()
        )
    );
    let handle = runtime.start::<Probe>(probe_file(
        "probe",
        ProbeConfig::default(),
        20 * MS,
        0,
        20 * MS,
        3,
    ));
    wait_for_health(address, 200).await;
    for path in ["/health", "/health/ready"] {
        assert_eq!(
            get(address, path).await,
            (200, "text/plain; charset=utf-8".into(), "ready\n".into())
        );
    }
    while handle.status().iterations < 2 {
        tokio::time::sleep(10 * MS).await;
    }

    let (code, content_type, body) = get(address, "/status").await;
    assert_eq!((code, content_type.as_str()), (200, "application/json"));
    let status: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(status["implementation"], "bigbrotr");
    assert_eq!(status["ready"], true);
    assert_eq!(status["problems"], serde_json::json!([]));
    assert_eq!(status["shutting_down"], false);
    let service = &status["services"][0];
    assert_eq!(service["name"], "probe");
    assert_eq!(service["state"], "running");
    assert!(service["iterations"].as_u64().unwrap() >= 2, "{service}");
    assert_eq!(service["errors"], 0);
    assert_eq!(service["consecutive_errors"], 0);
    assert_eq!(service["last_error"], Value::Null);
    assert!(service["last_success_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(status["pool"]["connected"], true);
    assert_eq!(status["pool"]["max_size"], 10);
    assert!(status["pool"]["calls"].as_u64().unwrap() >= 1);

    let (code, content_type, metrics) = get(address, "/metrics").await;
    assert_eq!(
        (code, content_type.as_str()),
        (200, "text/plain; version=0.0.4; charset=utf-8")
    );
    for expected in [
        "# TYPE bigbrotr_service_iterations_total counter\n",
        "# TYPE bigbrotr_service_errors_total counter\n",
        "bigbrotr_service_errors_total{service=\"probe\"} 0\n",
        "bigbrotr_service_state{service=\"probe\",state=\"running\"} 1\n",
        "bigbrotr_service_state{service=\"probe\",state=\"failed\"} 0\n",
        "# TYPE bigbrotr_service_iteration_duration_seconds histogram\n",
        "bigbrotr_service_iteration_duration_seconds_bucket{service=\"probe\",le=\"0.01\"} ",
        "bigbrotr_service_iteration_duration_seconds_count{service=\"probe\"} ",
        "bigbrotr_pool_connected 1\n",
        "bigbrotr_pool_max_connections 10\n",
        "bigbrotr_pool_connections{state=\"idle\"} ",
        "# TYPE bigbrotr_pool_calls_total counter\n",
        "# HELP bigbrotr_probe_iterations_seen_total Iterations the probe saw.\n",
        "bigbrotr_probe_iterations_seen_total{service=\"probe\",kind=\"test\"} ",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected:?} in\n{metrics}"
        );
    }
    assert!(metrics.contains("bigbrotr_service_iterations_total{service=\"probe\"} "));

    let (code, _, _) = get(address, "/nope").await;
    assert_eq!(code, 404);
    let posted = reqwest::Client::new()
        .post(format!("http://{address}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 405);

    runtime.stop();
    let (code, _, body) = get(address, "/health/ready").await;
    assert_eq!(code, 503);
    assert!(
        body.starts_with("not ready\n- the process is shutting down\n"),
        "{body}"
    );
    assert_eq!(get(address, "/health/live").await.0, 200);
    let report = runtime.shutdown().await;
    assert!(report.is_success(), "{report}");
    assert_eq!(handle.status().state, State::Stopped);
    assert!(
        reqwest::get(format!("http://{address}/health"))
            .await
            .is_err(),
        "the endpoint closed with the runtime"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_service_makes_the_process_not_ready_and_shows_its_error() {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    let mut runtime = runtime_on(&db, settings(Duration::from_secs(5))).await;
    let address = runtime.serve_http().await.unwrap().expect("enabled");
    runtime.start::<Probe>(probe_file(
        "probe",
        ProbeConfig {
            fail_from: 1,
            ..ProbeConfig::default()
        },
        MS,
        0,
        MS,
        2,
    ));
    runtime.wait().await;
    let failure = "service `probe` failed: service `probe` stopped after 2 failed iterations in a row: probe failure at iteration 2";
    assert_eq!(
        get(address, "/health").await,
        (
            503,
            "text/plain; charset=utf-8".into(),
            format!("not ready\n- {failure}\n")
        )
    );
    let status: Value = serde_json::from_str(&get(address, "/status").await.2).unwrap();
    assert_eq!(status["ready"], false);
    assert_eq!(status["problems"], serde_json::json!([failure]));
    let service = &status["services"][0];
    assert_eq!(service["state"], "failed");
    assert_eq!(service["iterations"], 2);
    assert_eq!(service["errors"], 2);
    assert_eq!(service["consecutive_errors"], 2);
    assert_eq!(
        service["last_error"],
        "service `probe` stopped after 2 failed iterations in a row: probe failure at iteration 2"
    );
    assert!(service["last_error_at"].as_i64().is_some());
    let metrics = get(address, "/metrics").await.2;
    assert!(
        metrics.contains("bigbrotr_service_errors_total{service=\"probe\"} 2\n"),
        "{metrics}"
    );
    assert!(metrics.contains("bigbrotr_service_state{service=\"probe\",state=\"failed\"} 1\n"));
    let report = runtime.shutdown().await;
    assert!(!report.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_in_use_is_an_error_naming_it() {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = settings(Duration::from_secs(1));
    config.http.listen = taken.local_addr().unwrap();
    let mut runtime = runtime_on(&db, config).await;
    let error = runtime.serve_http().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "could not listen on {} for /health, /status and /metrics",
            taken.local_addr().unwrap()
        )
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_asks_the_database_at_most_once_per_interval() {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    let mut config = settings(Duration::from_secs(5));
    config.http.database_check_interval = Duration::from_secs(600);
    let mut runtime = runtime_on(&db, config).await;
    let address = runtime.serve_http().await.unwrap().expect("enabled");
    // The probe itself never touches the database.
    runtime.start::<Probe>(probe_file(
        "probe",
        ProbeConfig::default(),
        20 * MS,
        0,
        20 * MS,
        3,
    ));
    let before = runtime.brotr().pool().stats().calls;
    wait_for_health(address, 200).await;
    assert_eq!(
        runtime.brotr().pool().stats().calls,
        before + 1,
        "one SELECT 1"
    );
    let mut probes = tokio::task::JoinSet::new();
    for _ in 0..20 {
        probes.spawn(get(address, "/health/ready"));
    }
    while let Some(answer) = probes.join_next().await {
        let (code, _, body) = answer.unwrap();
        assert_eq!((code, body.as_str()), (200, "ready\n"));
    }
    assert_eq!(
        runtime.brotr().pool().stats().calls,
        before + 1,
        "no other query within the interval"
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_says_why_when_the_database_stops_answering() {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    let database = db.database_config();
    let upstream = tokio::net::lookup_host((database.host.as_str(), database.port))
        .await
        .unwrap()
        .next()
        .expect("the database's address");
    let proxy = Proxy::start(upstream).await;
    let mut through = database.clone();
    through.host = "127.0.0.1".to_owned();
    through.port = proxy.address().port();
    let mut config = settings(Duration::from_secs(5));
    config.http.database_check_interval = 100 * MS;
    let mut runtime = runtime_on_pool(pool_to(through), config).await;
    let address = runtime.serve_http().await.unwrap().expect("enabled");
    runtime.start::<Probe>(probe_file(
        "probe",
        ProbeConfig::default(),
        20 * MS,
        0,
        20 * MS,
        3,
    ));
    wait_for_health(address, 200).await;

    // A database that no longer answers: the check gives up after 2 s.
    proxy.freeze();
    tokio::time::sleep(150 * MS).await;
    let asked = std::time::Instant::now();
    let (code, _, body) = get(address, "/health/ready").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        body,
        "not ready\n- the database does not answer: health check did not finish within 2s\n"
    );
    assert!(
        asked.elapsed() >= Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    // Still live, and /status says why it is not ready without asking.
    assert_eq!(get(address, "/health/live").await.0, 200);
    let status: Value = serde_json::from_str(&get(address, "/status").await.2).unwrap();
    assert_eq!(status["ready"], false);
    assert_eq!(
        status["problems"],
        serde_json::json!(["the database does not answer: health check did not finish within 2s"])
    );

    // A database whose connections close and which refuses new ones.
    proxy.cut();
    tokio::time::sleep(150 * MS).await;
    let (code, _, body) = get(address, "/health").await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.starts_with("not ready\n- the database does not answer: "),
        "{body}"
    );

    // A closed pool is not ready without asking anything.
    runtime.brotr().pool().disconnect(Duration::ZERO).await;
    assert_eq!(
        get(address, "/health/ready").await.2,
        "not ready\n- the connection pool is closed\n"
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_check_metrics_even_with_refused_label_sets() {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    let mut runtime = runtime_on(&db, settings(Duration::from_secs(5))).await;
    let address = runtime.serve_http().await.unwrap().expect("enabled");
    let handle = runtime.start::<Probe>(probe_file(
        "probe",
        ProbeConfig {
            fail: vec![2],
            ..ProbeConfig::default()
        },
        MS,
        0,
        MS,
        3,
    ));
    let service = runtime.metrics().for_service("probe");
    for index in 0..=MAX_SERIES_PER_METRIC {
        service
            .gauge(
                "probe_lag_seconds",
                "Lag by \"relay\", with\na newline.",
                &[("relay", &format!("wss://r{index}.example/\"\\"))],
            )
            .set(index as f64 / 4.0);
    }
    while handle.status().iterations < 3 {
        tokio::time::sleep(10 * MS).await;
    }
    let (code, _, metrics) = get(address, "/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(metrics_problems(&metrics), "", "in\n{metrics}");
    for expected in [
        "bigbrotr_metrics_series_dropped_total{metric=\"bigbrotr_probe_lag_seconds\"} 1\n",
        "bigbrotr_service_last_error_timestamp_seconds{service=\"probe\"} ",
        "bigbrotr_service_iteration_duration_seconds_bucket{service=\"probe\",le=\"+Inf\"} ",
        "bigbrotr_probe_lag_seconds{service=\"probe\",relay=\"wss://r1.example/\\\"\\\\\"} 0.25\n",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected:?} in\n{metrics}"
        );
    }
    runtime.shutdown().await;
}
