//! The life of services on one shared archive: [`Runtime`] starts each in
//! its own task, stops them, and closes the pool; [`ServiceHandle`] is one
//! of them; [`RunReport`] is how each ended.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bigbrotr_brotr::Brotr;
use bigbrotr_config::{BrotrFile, Env, Implementation, PoolFile};
use bigbrotr_pool::ConnectionPool;
use serde::Serialize;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::config::{load_runtime_file, OnServiceFailure, RuntimeConfig, ServiceFile};
use crate::egress::{load_egress_file, Egress};
use crate::error::{Error, Result};
use crate::http::HttpServer;
use crate::metrics::Metrics;
use crate::process_status::{lock, ProcessState, ProcessStatus};
use crate::service::{Service, ServiceContext, TARGET};
use crate::status::{ServiceStatus, State, StatusCell};

/// Services of one process on one archive: starts each in its own task,
/// stops one that fails (all of them with `runtime.on_service_failure:
/// stop_process`), cancels all when [`stop`](Self::stop) is called, and
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
        let state = Arc::new(ProcessState::new(
            implementation.name(),
            brotr.clone(),
            settings.http.database_check_interval,
        ));
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
        self.state.metrics()
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
                "serving /health, /health/live, /health/ready, /status, /metrics, /events/<id>/relays and /relays/<url>"
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
    /// When the service fails, its state becomes [`State::Failed`] and an
    /// ERROR line names it with its error; the other services go on, or,
    /// with `runtime.on_service_failure: stop_process`, are stopped too.
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
            self.state.metrics().for_service(&name),
            status.clone(),
        )
        .with_env(self.env.clone())
        .with_egress(self.egress.clone());
        let span = tracing::info_span!(target: TARGET, "service", service = %name);
        let task = self
            .tracker
            .spawn(drive::<S>(ctx, cancel, self.on_failure()).instrument(span));
        lock(&self.tasks).push((status, task.abort_handle()));
        handle
    }

    /// What the failure of a service does: nothing more than stopping it,
    /// or stopping every service too.
    fn on_failure(&self) -> OnFailure {
        match self.settings.on_service_failure {
            OnServiceFailure::StopService => OnFailure::StopService,
            OnServiceFailure::StopProcess => OnFailure::StopProcess(self.cancel.clone()),
        }
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

    /// What `/health/ready` says: why the process is not ready, none when
    /// it is; see [`ProcessState::readiness`].
    pub async fn readiness(&self) -> Vec<String> {
        self.state.readiness().await
    }

    /// Asks every service to stop taking new work. Returns at once; see
    /// [`shutdown`](Self::shutdown).
    pub fn stop(&self) {
        self.state.begin_shutdown();
        self.cancel.cancel();
    }

    /// A token that fires when the services are asked to stop: by
    /// [`stop`](Self::stop), or because one failed with
    /// `runtime.on_service_failure: stop_process`. Cancelling it stops them
    /// like [`stop`](Self::stop).
    #[must_use]
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Waits until every service has ended (a failed one included), or
    /// one failed with `runtime.on_service_failure: stop_process`, or
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

/// What [`drive`] does when its service fails, beyond recording it.
enum OnFailure {
    /// Nothing: the other services go on.
    StopService,
    /// Cancels this token, which stops every service.
    StopProcess(CancellationToken),
}

/// Runs one service in its task: build, run, record how it ended.
async fn drive<S: Service>(
    ctx: ServiceContext<S::Config>,
    cancel: CancellationToken,
    on_failure: OnFailure,
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
            let then = match on_failure {
                OnFailure::StopService => "the other services go on",
                OnFailure::StopProcess(_) => "stopping every service",
            };
            bigbrotr_logging::log_error!(
                target: TARGET,
                error.as_ref(),
                service = %ctx.name(),
                "service `{}` failed ({then}): {error:#}",
                ctx.name()
            );
            if let OnFailure::StopProcess(everyone) = on_failure {
                everyone.cancel();
            }
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
