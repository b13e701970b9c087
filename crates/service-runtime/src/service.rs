//! The contract of a service ([`Service`]), the loop most services run
//! ([`LoopService`], driven by [`run_loop`]), and what a service is given
//! ([`ServiceContext`]).

use std::future::Future;
use std::sync::Arc;

use bigbrotr_brotr::Brotr;
use bigbrotr_config::{Env, Implementation};
use bigbrotr_utils::Egress;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::ServiceFile;
use crate::metrics::ServiceMetrics;
use crate::status::{ServiceStatus, StatusCell};

/// Tracing target of the runtime's events.
pub(crate) const TARGET: &str = "bigbrotr::runtime";

/// A service: one kind of work BigBrotr does, configured by the file
/// `config/services/<NAME>.yaml`.
///
/// The runtime loads the file into [`Config`](Self::Config), builds the
/// service with [`build`](Self::build) and calls [`run`](Self::run) in a
/// task of its own. `run` should stop taking new work once `cancel` fires;
/// work it has not finished when the grace period ends is abandoned (its
/// future dropped), so each unit of work must be safe to drop half-way —
/// as every archive write is, being one transaction.
///
/// Services that repeat one cycle implement [`LoopService`] instead, and
/// get this trait from it.
pub trait Service: Send + Sized + 'static {
    /// The name of the service: its file name under `config/services/`
    /// without `.yaml`, and the name `bigbrotr run` knows it by.
    const NAME: &'static str;

    /// The service file: common sections and the service's own.
    type Config: ServiceFile;

    /// Whether the runtime counts a whole [`run`](Self::run) as one
    /// iteration in the service's status. `true` by default; loop services
    /// count their own iterations.
    const ONE_SHOT: bool = true;

    /// Builds the service from its context.
    fn build(ctx: &ServiceContext<Self::Config>) -> anyhow::Result<Self>;

    /// Does the service's work until it is done or `cancel` fires. An error
    /// marks the service as failed; what else stops is
    /// `runtime.on_service_failure`'s choice (see
    /// [`Runtime::start`](crate::Runtime::start)).
    fn run(
        self,
        ctx: ServiceContext<Self::Config>,
        cancel: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A service that repeats one cycle, as its `loop` section says: an
/// iteration every `loop.interval`, `loop.max_iterations` of them (0 =
/// forever), `loop.error_retry_delay` after a failed one, and failure of the
/// service after `loop.max_consecutive_errors` failed ones in a row (0 =
/// never). See [`run_loop`].
pub trait LoopService: Send + Sized + 'static {
    /// The name of the service; see [`Service::NAME`].
    const NAME: &'static str;

    /// The service file; see [`Service::Config`].
    type Config: ServiceFile;

    /// Builds the service from its context.
    fn build(ctx: &ServiceContext<Self::Config>) -> anyhow::Result<Self>;

    /// Runs one cycle. `cancel` fires when the service should stop: a long
    /// iteration may end early then, leaving nothing half-written.
    fn loop_iteration(
        &mut self,
        ctx: &ServiceContext<Self::Config>,
        cancel: &CancellationToken,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Asked before each iteration; `false` stops the service without
    /// error. By default, always `true`.
    fn should_continue(&self, ctx: &ServiceContext<Self::Config>) -> bool {
        let _ = ctx;
        true
    }

    /// Called after each failed iteration, with the error and the number of
    /// failures in a row, before the wait of `loop.error_retry_delay`. The
    /// runtime logs the error already. By default, does nothing.
    fn on_error(
        &mut self,
        ctx: &ServiceContext<Self::Config>,
        error: &anyhow::Error,
        consecutive_errors: u32,
    ) {
        let _ = (ctx, error, consecutive_errors);
    }
}

impl<T: LoopService> Service for T {
    const NAME: &'static str = <T as LoopService>::NAME;
    type Config = <T as LoopService>::Config;
    const ONE_SHOT: bool = false;

    fn build(ctx: &ServiceContext<Self::Config>) -> anyhow::Result<Self> {
        <T as LoopService>::build(ctx)
    }

    fn run(
        self,
        ctx: ServiceContext<Self::Config>,
        cancel: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        run_loop(self, ctx, cancel)
    }
}

/// Runs `service` as its `loop` section says, recording every iteration in
/// the service's status, until `max_iterations` are done (`Err` when the
/// last one failed), [`should_continue`](LoopService::should_continue) says
/// no or `cancel` fires (`Ok`), or `max_consecutive_errors` iterations
/// failed in a row (`Err` with the last error; the runtime logs it at
/// ERROR, naming the service).
///
/// An iteration that has started is not interrupted by `cancel`: the
/// runtime abandons it when the grace period ends. The waits between
/// iterations end at once.
pub async fn run_loop<S: LoopService>(
    mut service: S,
    ctx: ServiceContext<S::Config>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let looping = ctx.config().loop_config().clone();
    let mut iterations: u64 = 0;
    loop {
        if cancel.is_cancelled() || !service.should_continue(&ctx) {
            return Ok(());
        }
        let started = Instant::now();
        let result = service.loop_iteration(&ctx, &cancel).await;
        let took = started.elapsed();
        let now = bigbrotr_utils::now_timestamp();
        iterations += 1;
        let last = iterations >= looping.max_iterations && looping.max_iterations != 0;
        let delay = match result {
            Ok(()) => {
                ctx.status.record_success(took, now);
                tracing::debug!(
                    target: TARGET,
                    service = %ctx.name(),
                    iteration = iterations,
                    elapsed_ms = took.as_millis() as u64,
                    "iteration done"
                );
                if last {
                    return Ok(());
                }
                looping.interval.saturating_sub(took)
            }
            Err(error) => {
                let consecutive = ctx.status.record_error(took, now, &error);
                service.on_error(&ctx, &error, consecutive);
                if looping.max_consecutive_errors != 0
                    && consecutive >= looping.max_consecutive_errors
                {
                    return Err(error.context(format!(
                        "service `{}` stopped after {consecutive} failed iterations in a row",
                        ctx.name()
                    )));
                }
                if last {
                    return Err(error.context(format!(
                        "the last of the {iterations} iterations of service `{}` failed",
                        ctx.name()
                    )));
                }
                tracing::warn!(
                    target: TARGET,
                    service = %ctx.name(),
                    iteration = iterations,
                    consecutive_errors = consecutive,
                    retry_in_ms = looping.error_retry_delay.as_millis() as u64,
                    "iteration failed: {error:#}"
                );
                looping.error_retry_delay
            }
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// What a service is given: its name and configuration, the archive, its
/// metrics and its status. Cloning is cheap and shares everything.
pub struct ServiceContext<C> {
    inner: Arc<Inner<C>>,
    status: StatusCell,
}

struct Inner<C> {
    name: String,
    config: C,
    brotr: Brotr,
    implementation: Implementation,
    metrics: ServiceMetrics,
    env: Env,
    egress: Egress,
}

impl<C> Clone for ServiceContext<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            status: self.status.clone(),
        }
    }
}

impl<C> std::fmt::Debug for ServiceContext<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceContext")
            .field("name", &self.inner.name)
            .field("implementation", &self.inner.implementation.name())
            .finish_non_exhaustive()
    }
}

impl<C: ServiceFile> ServiceContext<C> {
    /// A context for the service `name` with `config`, writing through
    /// `brotr`, reporting to `metrics` and `status`.
    #[must_use]
    pub fn new(
        name: &str,
        config: C,
        brotr: Brotr,
        implementation: Implementation,
        metrics: ServiceMetrics,
        status: StatusCell,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                config,
                brotr,
                implementation,
                metrics,
                env: Env::empty(),
                egress: Egress::default(),
            }),
            status,
        }
    }

    /// The same context, with the environment `env` the process was started
    /// with (for the secrets a service reads from it, such as keys).
    #[must_use]
    pub fn with_env(mut self, env: Env) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.env = env;
            return self;
        }
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                name: inner.name.clone(),
                config: inner.config.clone(),
                brotr: inner.brotr.clone(),
                implementation: inner.implementation.clone(),
                metrics: inner.metrics.clone(),
                env,
                egress: inner.egress.clone(),
            }),
            status: self.status,
        }
    }

    /// The same context, connecting through `egress` (the runtime gives
    /// the policy of `config/core/egress.yaml`).
    #[must_use]
    pub fn with_egress(mut self, egress: Egress) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.egress = egress;
            return self;
        }
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                name: inner.name.clone(),
                config: inner.config.clone(),
                brotr: inner.brotr.clone(),
                implementation: inner.implementation.clone(),
                metrics: inner.metrics.clone(),
                env: inner.env.clone(),
                egress,
            }),
            status: self.status,
        }
    }

    /// The egress policy (and resolver) every connection of the service
    /// must go through: [`Egress::connect`] for a TCP connection to a
    /// checked address, [`connect_websocket`](crate::connect_websocket) or
    /// [`EgressTransport`](crate::EgressTransport) for WebSockets,
    /// [`bigbrotr_utils::http_get`] for HTTP. The strict policy unless
    /// given with [`with_egress`](Self::with_egress).
    #[must_use]
    pub fn egress(&self) -> &Egress {
        &self.inner.egress
    }

    /// The environment of the process (empty unless given with
    /// [`with_env`](Self::with_env); the runtime gives it).
    #[must_use]
    pub fn env(&self) -> &Env {
        &self.inner.env
    }

    /// The name of the service: `service.name`, else its file name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its configuration, as loaded and validated.
    #[must_use]
    pub fn config(&self) -> &C {
        &self.inner.config
    }

    /// The archive, shared by every service of the process.
    #[must_use]
    pub fn brotr(&self) -> &Brotr {
        &self.inner.brotr
    }

    /// The implementation the process runs, for its data files.
    #[must_use]
    pub fn implementation(&self) -> &Implementation {
        &self.inner.implementation
    }

    /// The service's metrics, exported on `/metrics`.
    #[must_use]
    pub fn metrics(&self) -> &ServiceMetrics {
        &self.inner.metrics
    }

    /// A snapshot of the service's status.
    #[must_use]
    pub fn status(&self) -> ServiceStatus {
        self.status.snapshot()
    }

    /// The shared status cell, for services that record their own
    /// iterations.
    #[must_use]
    pub fn status_cell(&self) -> &StatusCell {
        &self.status
    }
}
