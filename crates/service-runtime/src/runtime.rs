//! The process side: [`Runtime`] runs services on one shared archive,
//! stops them, and closes the pool; [`ProcessState`] is what the HTTP
//! endpoint reports.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bigbrotr_brotr::Brotr;
use bigbrotr_config::{BrotrFile, Env, Implementation, PoolFile};
use bigbrotr_pool::{ConnectionPool, PoolStats};
use serde::Serialize;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::config::{load_runtime_file, RuntimeConfig, ServiceFile};
use crate::egress::{load_egress_file, Egress};
use crate::error::{Error, Result};
use crate::http::HttpServer;
use crate::metrics::{Exposition, MetricKind, Metrics};
use crate::service::{Service, ServiceContext, TARGET};
use crate::status::{ServiceStatus, State, StatusCell};

/// Services of one process on one archive: starts each in its own task,
/// cancels all when one fails or [`stop`](Self::stop) is called, and
/// [`shutdown`](Self::shutdown) waits for them within the grace period and
/// closes the pool.
///
/// Dropping it cancels the services and aborts their tasks; call
/// [`shutdown`](Self::shutdown) for an orderly end.
pub struct Runtime {
    implementation: Implementation,
    env: Env,
    egress: Egress,
    brotr: Brotr,
    settings: RuntimeConfig,
    state: Arc<ProcessState>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    tasks: Mutex<Vec<(StatusCell, AbortHandle)>>,
    http: Option<HttpServer>,
    report: Option<RunReport>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("implementation", &self.implementation.name())
            .field("settings", &self.settings)
            .field("services", &self.state.services())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime for `implementation` on `brotr` (whose pool should be
    /// connected), configured by `settings`. The HTTP endpoint starts with
    /// [`serve_http`](Self::serve_http).
    #[must_use]
    pub fn new(implementation: Implementation, brotr: Brotr, settings: RuntimeConfig) -> Self {
        let state = Arc::new(ProcessState {
            implementation: implementation.name().to_owned(),
            pool: brotr.pool().clone(),
            metrics: Metrics::new(),
            services: Mutex::new(Vec::new()),
            shutting_down: AtomicBool::new(false),
        });
        Self {
            implementation,
            env: Env::empty(),
            egress: Egress::default(),
            brotr,
            settings,
            state,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            tasks: Mutex::new(Vec::new()),
            http: None,
            report: None,
        }
    }

    /// The same runtime, giving its services the environment `env` (see
    /// [`ServiceContext::env`]).
    #[must_use]
    pub fn with_env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// The same runtime, its services connecting through `egress` (see
    /// [`ServiceContext::egress`]); the strict policy by default.
    #[must_use]
    pub fn with_egress(mut self, egress: Egress) -> Self {
        self.egress = egress;
        self
    }

    /// The egress policy its services connect through.
    #[must_use]
    pub fn egress(&self) -> &Egress {
        &self.egress
    }

    /// Loads `config/core/pool.yaml`, `brotr.yaml`, `runtime.yaml` and
    /// `egress.yaml` (the strict policy when missing) of
    /// `implementation`, connects the pool (its connections reporting
    /// `application_name`) and sets the archive up over it.
    pub async fn connect(
        implementation: &Implementation,
        env: &Env,
        application_name: &str,
    ) -> Result<Self> {
        let config_error = |what: &str| {
            let what = what.to_owned();
            move |source| Error::Config { what, source }
        };
        let pool_file: PoolFile = implementation
            .load("core", "pool", env)
            .map_err(config_error("the pool"))?;
        let brotr_file: BrotrFile = implementation
            .load("core", "brotr", env)
            .map_err(config_error("the archive"))?;
        let runtime_file = load_runtime_file(implementation, env)?;
        let egress_file = load_egress_file(implementation, env)?;
        let pool = ConnectionPool::with_application_name(
            &pool_file.database,
            &pool_file.pool,
            &pool_file.retry,
            application_name,
        )
        .map_err(|source| Error::Pool {
            what: "set up the connection pool".to_owned(),
            source,
        })?;
        let database = &pool_file.database;
        pool.connect().await.map_err(|source| Error::Pool {
            what: format!(
                "connect to database `{}` at {}:{}",
                database.database, database.host, database.port
            ),
            source,
        })?;
        let brotr = match Brotr::new(pool.clone(), brotr_file.brotr) {
            Ok(brotr) => brotr,
            Err(source) => {
                pool.disconnect(runtime_file.runtime.pool_close_grace).await;
                return Err(Error::Brotr { source });
            }
        };
        Ok(
            Self::new(implementation.clone(), brotr, runtime_file.runtime)
                .with_env(env.clone())
                .with_egress(Egress::new(egress_file.egress.policy())),
        )
    }

    /// The archive every service shares.
    #[must_use]
    pub fn brotr(&self) -> &Brotr {
        &self.brotr
    }

    /// The implementation it runs.
    #[must_use]
    pub fn implementation(&self) -> &Implementation {
        &self.implementation
    }

    /// Its settings: grace periods and HTTP endpoint.
    #[must_use]
    pub fn settings(&self) -> &RuntimeConfig {
        &self.settings
    }

    /// The metrics registry the services' own metrics go to.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// What the HTTP endpoint reports.
    #[must_use]
    pub fn state(&self) -> &Arc<ProcessState> {
        &self.state
    }

    /// Starts the HTTP endpoint on `runtime.http.listen` when
    /// `runtime.http.enabled`, and returns the address it listens on.
    /// Calling it again returns the same address.
    pub async fn serve_http(&mut self) -> Result<Option<SocketAddr>> {
        if self.http.is_none() && self.settings.http.enabled {
            let server =
                HttpServer::bind(self.settings.http.listen, Arc::clone(&self.state)).await?;
            tracing::info!(
                target: TARGET,
                address = %server.local_addr(),
                "serving /health, /status and /metrics"
            );
            self.http = Some(server);
        }
        Ok(self.http_address())
    }

    /// The address of the HTTP endpoint, when it runs.
    #[must_use]
    pub fn http_address(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(HttpServer::local_addr)
    }

    /// Starts service `S` with `config` in a task of its own and returns its
    /// handle. The service is named `service.name`, else `S::NAME`. A
    /// service whose `service.enabled` is false is not started: its state
    /// is [`State::Stopped`] at once.
    ///
    /// When the service fails, its state becomes [`State::Failed`], an
    /// ERROR line names it with its error, and every other service is
    /// cancelled.
    pub fn start<S: Service>(&self, config: S::Config) -> ServiceHandle {
        let name = match config.service().name.as_str() {
            "" => S::NAME.to_owned(),
            name => name.to_owned(),
        };
        let status = StatusCell::new(&name);
        self.state.add(status.clone());
        let cancel = self.cancel.child_token();
        let handle = ServiceHandle {
            name: name.clone(),
            status: status.clone(),
            cancel: cancel.clone(),
        };
        if !config.service().enabled {
            tracing::info!(target: TARGET, service = %name, "service disabled by service.enabled: not started");
            status.stop();
            return handle;
        }
        let ctx = ServiceContext::new(
            &name,
            config,
            self.brotr.clone(),
            self.implementation.clone(),
            self.state.metrics.for_service(&name),
            status.clone(),
        )
        .with_env(self.env.clone())
        .with_egress(self.egress.clone());
        let span = tracing::info_span!(target: TARGET, "service", service = %name);
        let task = self
            .tracker
            .spawn(drive::<S>(ctx, cancel, self.cancel.clone()).instrument(span));
        lock(&self.tasks).push((status, task.abort_handle()));
        handle
    }

    /// The status of every service started, in start order.
    #[must_use]
    pub fn services(&self) -> Vec<ServiceStatus> {
        self.state.services()
    }

    /// What `/status` shows.
    #[must_use]
    pub fn status(&self) -> ProcessStatus {
        self.state.status()
    }

    /// What `/health` says; see [`ProcessState::is_healthy`].
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.state.is_healthy()
    }

    /// Asks every service to stop taking new work. Returns at once; see
    /// [`shutdown`](Self::shutdown).
    pub fn stop(&self) {
        self.state.shutting_down.store(true, Ordering::SeqCst);
        for status in lock(&self.state.services).iter() {
            status.begin_stopping();
        }
        self.cancel.cancel();
    }

    /// A token that fires when the services are asked to stop: by
    /// [`stop`](Self::stop), or because one failed. Cancelling it stops
    /// them like [`stop`](Self::stop).
    #[must_use]
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Waits until every service has ended, or one failed, or
    /// [`stop`](Self::stop) was called.
    pub async fn wait(&self) {
        self.tracker.close();
        tokio::select! {
            () = self.tracker.wait() => {}
            () = self.cancel.cancelled() => {}
        }
    }

    /// Stops every service and waits up to `runtime.shutdown_grace` for
    /// them to finish their current iteration; past that, their tasks are
    /// aborted (their iteration abandoned, a database call in flight
    /// cancelled by the pool). Then stops the HTTP endpoint and closes the
    /// pool, giving calls still running `runtime.pool_close_grace`.
    ///
    /// Returns how each service ended. Calling it again returns the same
    /// report at once.
    pub async fn shutdown(&mut self) -> RunReport {
        if let Some(report) = &self.report {
            return report.clone();
        }
        let started = Instant::now();
        self.stop();
        self.tracker.close();
        let grace = self.settings.shutdown_grace;
        let mut abandoned = Vec::new();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            let tasks = lock(&self.tasks).clone();
            for (_, task) in &tasks {
                task.abort();
            }
            self.tracker.wait().await;
            for (status, _) in &tasks {
                if !status.state().is_final() {
                    status.abandon();
                    abandoned.push(status.snapshot().name);
                }
            }
            tracing::warn!(
                target: TARGET,
                services = %abandoned.join(","),
                grace_ms = grace.as_millis() as u64,
                "abandoned the current iteration of services still running after the grace period"
            );
        }
        if let Some(http) = self.http.take() {
            http.shutdown().await;
        }
        let connections_cut = self
            .brotr
            .pool()
            .disconnect(self.settings.pool_close_grace)
            .await;
        let report = RunReport {
            services: self.state.services(),
            abandoned,
            connections_cut,
        };
        tracing::info!(
            target: TARGET,
            elapsed_ms = started.elapsed().as_millis() as u64,
            failed = report.failed().len(),
            "services shut down"
        );
        self.report = Some(report.clone());
        report
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.cancel.cancel();
        for (_, task) in lock(&self.tasks).iter() {
            task.abort();
        }
    }
}

/// Runs one service in its task: build, run, record how it ended.
async fn drive<S: Service>(
    ctx: ServiceContext<S::Config>,
    cancel: CancellationToken,
    everyone: CancellationToken,
) {
    let status = ctx.status_cell().clone();
    let started = Instant::now();
    let result = match S::build(&ctx) {
        Ok(service) => {
            if cancel.is_cancelled() {
                status.set_state(State::Stopping);
            } else {
                status.set_state(State::Running);
            }
            tracing::info!(target: TARGET, service = %ctx.name(), "service started");
            service.run(ctx.clone(), cancel).await
        }
        Err(error) => Err(error.context(format!("could not build service `{}`", ctx.name()))),
    };
    let now = bigbrotr_utils::now_timestamp();
    match result {
        Ok(()) => {
            if S::ONE_SHOT {
                status.record_success(started.elapsed(), now);
            }
            status.stop();
            let done = status.snapshot();
            tracing::info!(
                target: TARGET,
                service = %done.name,
                iterations = done.iterations,
                errors = done.errors,
                "service stopped"
            );
        }
        Err(error) => {
            if S::ONE_SHOT {
                status.record_error(started.elapsed(), now, &error);
            }
            status.fail(&error, now);
            bigbrotr_logging::log_error!(
                target: TARGET,
                error.as_ref(),
                service = %ctx.name(),
                "service `{}` failed: {error:#}",
                ctx.name()
            );
            everyone.cancel();
        }
    }
}

/// One running service, as [`Runtime::start`] returns it. Cloning shares it.
#[derive(Debug, Clone)]
pub struct ServiceHandle {
    name: String,
    status: StatusCell,
    cancel: CancellationToken,
}

impl ServiceHandle {
    /// The service's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A snapshot of its status.
    #[must_use]
    pub fn status(&self) -> ServiceStatus {
        self.status.snapshot()
    }

    /// Whether it runs: its state is [`State::Running`].
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.status.state() == State::Running
    }

    /// Asks this service alone to stop taking new work.
    pub fn stop(&self) {
        self.status.begin_stopping();
        self.cancel.cancel();
    }
}

/// How each service of a [`Runtime`] ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunReport {
    /// The final status of each service, in start order.
    pub services: Vec<ServiceStatus>,
    /// Services whose current iteration was abandoned after the grace
    /// period.
    pub abandoned: Vec<String>,
    /// Connections still in use when the pool closed.
    pub connections_cut: usize,
}

impl RunReport {
    /// The services that failed.
    #[must_use]
    pub fn failed(&self) -> Vec<&ServiceStatus> {
        self.services
            .iter()
            .filter(|status| status.state == State::Failed)
            .collect()
    }

    /// Whether no service failed.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.failed().is_empty()
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, status) in self.services.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(
                f,
                "{}: {} after {} iteration(s), {} failed",
                status.name, status.state, status.iterations, status.errors
            )?;
            if status.abandoned {
                f.write_str(", current iteration abandoned")?;
            }
            if let (State::Failed, Some(error)) = (status.state, &status.last_error) {
                write!(f, ": {error}")?;
            }
        }
        Ok(())
    }
}

/// What the HTTP endpoint reports on: the services of the process and the
/// pool they share.
#[derive(Debug)]
pub struct ProcessState {
    implementation: String,
    pool: ConnectionPool,
    metrics: Metrics,
    services: Mutex<Vec<StatusCell>>,
    shutting_down: AtomicBool,
}

impl ProcessState {
    fn add(&self, status: StatusCell) {
        lock(&self.services).push(status);
    }

    /// The status of every service, in start order.
    #[must_use]
    pub fn services(&self) -> Vec<ServiceStatus> {
        lock(&self.services)
            .iter()
            .map(StatusCell::snapshot)
            .collect()
    }

    /// Healthy means: not shutting down, the pool connected, at least one
    /// service, and every service running or (a one-shot one) done without
    /// error.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        let services = self.services();
        !self.shutting_down.load(Ordering::SeqCst)
            && self.pool.is_connected()
            && !services.is_empty()
            && services.iter().all(|status| {
                status.state == State::Running
                    || (status.state == State::Stopped && !status.abandoned)
            })
    }

    /// What `/status` shows.
    #[must_use]
    pub fn status(&self) -> ProcessStatus {
        ProcessStatus {
            implementation: self.implementation.clone(),
            healthy: self.is_healthy(),
            shutting_down: self.shutting_down.load(Ordering::SeqCst),
            services: self.services(),
            pool: self.pool.stats(),
        }
    }

    /// What `/metrics` shows: every service's loop figures, the pool's
    /// figures, then the services' own metrics.
    #[must_use]
    pub fn render_metrics(&self) -> String {
        let mut out = Exposition::new();
        encode_services(&mut out, &self.services());
        encode_pool(&mut out, self.pool.is_connected(), &self.pool.stats());
        self.metrics.encode(&mut out);
        out.finish()
    }
}

/// What `/status` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessStatus {
    /// The implementation the process runs.
    pub implementation: String,
    /// What `/health` says.
    pub healthy: bool,
    /// Whether the services were asked to stop.
    pub shutting_down: bool,
    /// Every service, in start order.
    pub services: Vec<ServiceStatus>,
    /// The shared connection pool.
    pub pool: PoolStats,
}

/// A metric with one sample per service: name, help, kind, and its value
/// for a service (none to leave the service out).
type PerService = (
    &'static str,
    &'static str,
    MetricKind,
    fn(&ServiceStatus) -> Option<f64>,
);

fn encode_services(out: &mut Exposition, services: &[ServiceStatus]) {
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

fn encode_pool(out: &mut Exposition, connected: bool, stats: &PoolStats) {
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
