//! `/health`, `/status` and `/metrics` of a runtime on the real pool.

use std::net::SocketAddr;
use std::time::Duration;

use bigbrotr_service_runtime::State;
use bigbrotr_test_support::TestDb;
use serde_json::Value;

use crate::support::{probe_file, runtime_on, settings, Probe, ProbeConfig};

const MS: Duration = Duration::from_millis(1);

async fn get(address: SocketAddr, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("http://{address}{path}"))
        .await
        .expect("the endpoint answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("a body"))
}

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

    // No service yet: not healthy.
    assert_eq!(get(address, "/health").await.0, 503);
    let handle = runtime.start::<Probe>(probe_file(
        "probe",
        ProbeConfig::default(),
        20 * MS,
        0,
        20 * MS,
        3,
    ));
    wait_for_health(address, 200).await;
    assert_eq!(
        get(address, "/health").await,
        (200, "text/plain; charset=utf-8".into(), "ok\n".into())
    );
    while handle.status().iterations < 2 {
        tokio::time::sleep(10 * MS).await;
    }

    let (code, content_type, body) = get(address, "/status").await;
    assert_eq!((code, content_type.as_str()), (200, "application/json"));
    let status: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(status["implementation"], "bigbrotr");
    assert_eq!(status["healthy"], true);
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
        "# TYPE bigbrotr_service_iteration_duration_seconds summary\n",
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
    assert_eq!(get(address, "/health").await.0, 503);
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
async fn a_failed_service_makes_the_process_unhealthy_and_shows_its_error() {
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
            format!("unhealthy\n- {failure}\n")
        )
    );
    let status: Value = serde_json::from_str(&get(address, "/status").await.2).unwrap();
    assert_eq!(status["healthy"], false);
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
