//! [`RefresherService`]: the refresher as a service of the runtime, run with
//! `bigbrotr run refresher`.

use std::time::Duration;

use anyhow::Context as _;
use bigbrotr_service_runtime::{LoopService, ServiceContext, ServiceMetrics};
use tokio_util::sync::CancellationToken;

use crate::cleanup::{Cleanup, Cleanups};
use crate::config::RefresherFile;
use crate::cycle::{Refresher, TARGET};
use crate::error::{Error, Result};

/// The refresher service: each iteration is one [`Refresher::run_cycle`].
/// An iteration fails when the views cannot be listed, when
/// `refresher.views` names one the implementation does not have, or when
/// every refresh failed; a view that fails among others that succeed is
/// logged and counted, and the iteration succeeds.
///
/// Its metrics, labelled with the service and `view`:
/// `bigbrotr_refresher_refresh_duration_seconds` (gauge: the last
/// successful refresh), `bigbrotr_refresher_last_success_timestamp_seconds`
/// (gauge, Unix seconds) and `bigbrotr_refresher_failures_total` (counter,
/// also labelled `reason`: `timeout` or `error`).
///
/// Every `brotr.cleanup_interval` an iteration also runs the [`Cleanups`]
/// after the refreshes; a cleanup that fails is logged and counted and
/// fails nothing else. Their metrics, labelled `what` (`relay_metadata`,
/// `nip11`, `nip66`, `events`): `bigbrotr_refresher_cleanup_deleted_total`
/// and `bigbrotr_refresher_cleanup_failures_total` (counters), and
/// `bigbrotr_refresher_last_cleanup_timestamp_seconds` (gauge).
#[derive(Debug)]
pub struct RefresherService {
    refresher: Refresher,
    cleanups: Cleanups,
    metrics: ServiceMetrics,
}

/// Records the outcome of one cleanup in `metrics`.
fn record_cleanup(
    metrics: &ServiceMetrics,
    cleanup: Cleanup,
    result: &std::result::Result<u64, bigbrotr_brotr::Error>,
) {
    let labels = [("what", cleanup.name())];
    let deleted = metrics.counter(
        "refresher_cleanup_deleted_total",
        "Rows deleted by the cleanups, by what: relay_metadata, nip11, nip66 or events.",
        &labels,
    );
    let failures = metrics.counter(
        "refresher_cleanup_failures_total",
        "Cleanups that failed, by what they were deleting.",
        &labels,
    );
    match result {
        Ok(rows) => deleted.add(*rows),
        Err(_) => failures.inc(),
    }
}

/// Records the outcome of one view's refresh in `metrics`.
fn record(metrics: &ServiceMetrics, view: &str, result: &Result<Duration>) {
    let failures = |reason: &str| {
        metrics.counter(
            "refresher_failures_total",
            "Refreshes of a statistics view that failed, by reason: timeout or error.",
            &[("view", view), ("reason", reason)],
        )
    };
    // Both series exist from the first refresh on, so that a rate reads 0
    // rather than nothing.
    let (timeouts, errors) = (failures("timeout"), failures("error"));
    match result {
        Ok(took) => {
            metrics
                .gauge(
                    "refresher_refresh_duration_seconds",
                    "Time the last successful refresh of a statistics view took.",
                    &[("view", view)],
                )
                .set(took.as_secs_f64());
            metrics
                .gauge(
                    "refresher_last_success_timestamp_seconds",
                    "When a statistics view was last refreshed successfully (Unix seconds).",
                    &[("view", view)],
                )
                .set(bigbrotr_utils::now_timestamp() as f64);
        }
        Err(Error::Timeout { .. }) => timeouts.inc(),
        Err(_) => errors.inc(),
    }
}

impl LoopService for RefresherService {
    const NAME: &'static str = "refresher";
    type Config = RefresherFile;

    fn build(ctx: &ServiceContext<RefresherFile>) -> anyhow::Result<Self> {
        Ok(Self {
            refresher: Refresher::new(&ctx.config().refresher)?,
            cleanups: Cleanups::new(ctx.brotr().config()),
            metrics: ctx.metrics().clone(),
        })
    }

    async fn loop_iteration(
        &mut self,
        ctx: &ServiceContext<RefresherFile>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let metrics = &self.metrics;
        let mut report = self
            .refresher
            .run_cycle(ctx.brotr().pool(), cancel, |view, result| {
                record(metrics, view, result);
            })
            .await?;
        tracing::info!(
            target: TARGET,
            service = %ctx.name(),
            refreshed = report.refreshed.len(),
            failed = report.failed.len(),
            cancelled = report.cancelled,
            "refresher cycle done"
        );
        if !cancel.is_cancelled() && self.cleanups.due(tokio::time::Instant::now()) {
            self.cleanups
                .run(ctx.brotr(), cancel, |cleanup, result| {
                    record_cleanup(metrics, cleanup, result);
                })
                .await;
            metrics
                .gauge(
                    "refresher_last_cleanup_timestamp_seconds",
                    "When the cleanups last ran (Unix seconds).",
                    &[],
                )
                .set(bigbrotr_utils::now_timestamp() as f64);
        }
        if report.all_failed() {
            let failed = report.failed.len();
            if let Some((_, last)) = report.failed.pop() {
                return Err(last).with_context(|| {
                    format!("every statistics view failed to refresh ({failed}); the last")
                });
            }
        }
        Ok(())
    }
}
