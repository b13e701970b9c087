//! The metric families the runtime writes itself, before the services' own:
//! the loop figures of each service and the figures of the shared pool.

use bigbrotr_pool::PoolStats;

use crate::metrics::{Exposition, MetricKind};
use crate::status::{ServiceStatus, State};

/// A metric with one sample per service: name, help, kind, and its value
/// for a service (none to leave the service out).
type PerService = (
    &'static str,
    &'static str,
    MetricKind,
    fn(&ServiceStatus) -> Option<f64>,
);

/// Every service's state, iterations, errors and iteration times.
pub(crate) fn encode_services(out: &mut Exposition, services: &[ServiceStatus]) {
    use MetricKind::{Counter, Gauge, Summary};

    out.family(
        "bigbrotr_service_state",
        "1 for the state each service is in, 0 for the others.",
        Gauge,
    );
    for status in services {
        for state in State::ALL {
            let value = if status.state == state { 1.0 } else { 0.0 };
            out.sample(
                "bigbrotr_service_state",
                &[("service", &status.name), ("state", state.as_str())],
                value,
            );
        }
    }
    let per_service: [PerService; 6] = [
        (
            "bigbrotr_service_iterations_total",
            "Iterations run, failed ones included.",
            Counter,
            |s| Some(s.iterations as f64),
        ),
        (
            "bigbrotr_service_errors_total",
            "Iterations that failed.",
            Counter,
            |s| Some(s.errors as f64),
        ),
        (
            "bigbrotr_service_consecutive_errors",
            "Iterations that failed since the last one that succeeded.",
            Gauge,
            |s| Some(f64::from(s.consecutive_errors)),
        ),
        (
            "bigbrotr_service_last_iteration_duration_seconds",
            "How long the last iteration took.",
            Gauge,
            |s| s.last_iteration_seconds,
        ),
        (
            "bigbrotr_service_last_success_timestamp_seconds",
            "When the last successful iteration ended (Unix time).",
            Gauge,
            |s| s.last_success_at.map(|at| at as f64),
        ),
        (
            "bigbrotr_service_last_error_timestamp_seconds",
            "When the last error happened (Unix time).",
            Gauge,
            |s| s.last_error_at.map(|at| at as f64),
        ),
    ];
    for (name, help, kind, value) in per_service {
        out.family(name, help, kind);
        for status in services {
            if let Some(value) = value(status) {
                out.sample(name, &[("service", &status.name)], value);
            }
        }
    }
    out.family(
        "bigbrotr_service_iteration_duration_seconds",
        "Time spent in iterations.",
        Summary,
    );
    for status in services {
        let labels = [("service", status.name.as_str())];
        out.sample(
            "bigbrotr_service_iteration_duration_seconds_sum",
            &labels,
            status.iteration_seconds_total,
        );
        out.sample(
            "bigbrotr_service_iteration_duration_seconds_count",
            &labels,
            status.iterations as f64,
        );
    }
}

/// Whether the pool is connected, its connections and its call counters.
pub(crate) fn encode_pool(out: &mut Exposition, connected: bool, stats: &PoolStats) {
    use MetricKind::{Counter, Gauge};

    out.single(
        "bigbrotr_pool_connected",
        "1 when the pool is connected and not closed.",
        Gauge,
        if connected { 1.0 } else { 0.0 },
    );
    out.single(
        "bigbrotr_pool_max_connections",
        "Most connections the pool may hold.",
        Gauge,
        stats.max_size as f64,
    );
    out.family(
        "bigbrotr_pool_connections",
        "Connections open now, by state.",
        Gauge,
    );
    out.sample(
        "bigbrotr_pool_connections",
        &[("state", "idle")],
        stats.idle as f64,
    );
    out.sample(
        "bigbrotr_pool_connections",
        &[("state", "in_use")],
        stats.in_use as f64,
    );
    out.single(
        "bigbrotr_pool_waiting",
        "Callers waiting for a connection now.",
        Gauge,
        stats.waiting as f64,
    );
    for (name, help, value) in [
        ("bigbrotr_pool_calls_total", "Statements sent.", stats.calls),
        (
            "bigbrotr_pool_errors_total",
            "Calls that failed.",
            stats.errors,
        ),
        (
            "bigbrotr_pool_timeouts_total",
            "Calls cut off by the command timeout.",
            stats.timeouts,
        ),
        (
            "bigbrotr_pool_retries_total",
            "Attempts repeated after a transient error.",
            stats.retries,
        ),
        (
            "bigbrotr_pool_discarded_total",
            "Connections closed instead of being handed out again.",
            stats.discarded,
        ),
        (
            "bigbrotr_pool_wait_timeouts_total",
            "Times no connection became free in time.",
            stats.wait_timeouts,
        ),
        (
            "bigbrotr_pool_connect_errors_total",
            "Failed attempts at opening a connection.",
            stats.connect_errors,
        ),
    ] {
        out.single(name, help, Counter, value as f64);
    }
}
