//! The collectors of the metrics the runtime reports itself, read at each
//! scrape rather than copied: [`ServiceCollector`], each service's state
//! and loop figures from its status, and [`PoolCollector`], the figures of
//! the shared pool.

use std::fmt;
use std::sync::{Arc, Mutex};

use bigbrotr_pool::ConnectionPool;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric as _, NoLabelSet,
};
use prometheus_client::metrics::MetricType;

use crate::process_status::lock;
use crate::status::{State, StatusCell};

/// The services of a process, in start order, shared with its state.
pub(crate) type Services = Arc<Mutex<Vec<StatusCell>>>;

/// Every service's state, iterations, errors and iteration times.
#[derive(Debug)]
pub(crate) struct ServiceCollector {
    services: Services,
}

impl ServiceCollector {
    pub(crate) fn new(services: Services) -> Self {
        Self { services }
    }
}

impl Collector for ServiceCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let cells = lock(&self.services).clone();
        let services: Vec<_> = cells
            .iter()
            .map(|cell| (cell.snapshot(), cell.durations()))
            .collect();
        let labels = |name: &str| [("service", name.to_owned())];

        let states = services.iter().flat_map(|(status, _)| {
            State::ALL.into_iter().map(|state| {
                (
                    [
                        ("service", status.name.clone()),
                        ("state", state.as_str().to_owned()),
                    ],
                    u64::from(status.state == state),
                )
            })
        });
        gauges(
            &mut encoder,
            "bigbrotr_service_state",
            "1 for the state each service is in, 0 for the others.",
            states,
        )?;
        counters(
            &mut encoder,
            "bigbrotr_service_iterations",
            "Iterations run, failed ones included.",
            services
                .iter()
                .map(|(status, _)| (labels(&status.name), status.iterations)),
        )?;
        counters(
            &mut encoder,
            "bigbrotr_service_errors",
            "Iterations that failed.",
            services
                .iter()
                .map(|(status, _)| (labels(&status.name), status.errors)),
        )?;
        gauges(
            &mut encoder,
            "bigbrotr_service_consecutive_errors",
            "Iterations that failed since the last one that succeeded.",
            services
                .iter()
                .map(|(status, _)| (labels(&status.name), status.consecutive_errors)),
        )?;
        gauges(
            &mut encoder,
            "bigbrotr_service_last_iteration_duration_seconds",
            "How long the last iteration took.",
            services.iter().filter_map(|(status, _)| {
                Some((labels(&status.name), status.last_iteration_seconds?))
            }),
        )?;
        gauges(
            &mut encoder,
            "bigbrotr_service_last_success_timestamp_seconds",
            "When the last successful iteration ended (Unix time).",
            services
                .iter()
                .filter_map(|(status, _)| Some((labels(&status.name), status.last_success_at?))),
        )?;
        gauges(
            &mut encoder,
            "bigbrotr_service_last_error_timestamp_seconds",
            "When the last error happened (Unix time).",
            services
                .iter()
                .filter_map(|(status, _)| Some((labels(&status.name), status.last_error_at?))),
        )?;
        if !services.is_empty() {
            let mut family = encoder.encode_descriptor(
                "bigbrotr_service_iteration_duration_seconds",
                "How long iterations took.",
                None,
                MetricType::Histogram,
            )?;
            for (status, durations) in &services {
                let labels = labels(&status.name);
                durations.encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// Whether the pool is connected, its connections and its call counters.
#[derive(Debug)]
pub(crate) struct PoolCollector {
    pool: ConnectionPool,
}

impl PoolCollector {
    pub(crate) fn new(pool: ConnectionPool) -> Self {
        Self { pool }
    }
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let stats = self.pool.stats();
        let none = |value| std::iter::once(([] as [(&str, &str); 0], value));
        gauges(
            &mut encoder,
            "bigbrotr_pool_connected",
            "1 when the pool is connected and not closed.",
            none(u64::from(stats.connected)),
        )?;
        gauges(
            &mut encoder,
            "bigbrotr_pool_max_connections",
            "Most connections the pool may hold.",
            none(stats.max_size as u64),
        )?;
        gauges(
            &mut encoder,
            "bigbrotr_pool_connections",
            "Connections open now, by state.",
            [
                ([("state", "idle")], stats.idle as u64),
                ([("state", "in_use")], stats.in_use as u64),
            ],
        )?;
        gauges(
            &mut encoder,
            "bigbrotr_pool_waiting",
            "Callers waiting for a connection now.",
            none(stats.waiting as u64),
        )?;
        for (name, help, value) in [
            ("bigbrotr_pool_calls", "Statements sent.", stats.calls),
            ("bigbrotr_pool_errors", "Calls that failed.", stats.errors),
            (
                "bigbrotr_pool_timeouts",
                "Calls cut off by the command timeout.",
                stats.timeouts,
            ),
            (
                "bigbrotr_pool_retries",
                "Attempts repeated after a transient error.",
                stats.retries,
            ),
            (
                "bigbrotr_pool_discarded",
                "Connections closed instead of being handed out again.",
                stats.discarded,
            ),
            (
                "bigbrotr_pool_wait_timeouts",
                "Times no connection became free in time.",
                stats.wait_timeouts,
            ),
            (
                "bigbrotr_pool_connect_errors",
                "Failed attempts at opening a connection.",
                stats.connect_errors,
            ),
        ] {
            counters(&mut encoder, name, help, none(value))?;
        }
        Ok(())
    }
}

/// The gauge family `name` with a sample per label set of `samples`;
/// nothing at all when there is none.
fn gauges<L: EncodeLabelSet, V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        family.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

/// The counter family `name` (written with `_total`) with a sample per
/// label set of `samples`; nothing at all when there is none.
fn counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        family
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}
