//! What the HTTP endpoint reports on: [`ProcessState`], the services of the
//! process and the archive they share, and [`ProcessStatus`], what `/status`
//! shows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bigbrotr_brotr::Brotr;
use bigbrotr_logging::ErrorChain;
use bigbrotr_pool::{ConnectionPool, PoolStats};
use serde::Serialize;
use tokio::time::Instant;

use crate::builtin_metrics::{PoolCollector, ServiceCollector, Services};
use crate::metrics::Metrics;
use crate::status::{ServiceStatus, State, StatusCell};

/// How long the database may take to answer the readiness check.
const DATABASE_CHECK_LIMIT: Duration = Duration::from_secs(2);

/// What the HTTP endpoint reports on: the services of the process and the
/// archive they share (its pool, and what the provenance endpoints read).
#[derive(Debug)]
pub struct ProcessState {
    implementation: String,
    brotr: Brotr,
    metrics: Metrics,
    services: Services,
    shutting_down: AtomicBool,
    database: DatabaseCheck,
}

/// The readiness check of the database: its last answer, reused for
/// `every`; the lock makes concurrent probes wait for one query.
#[derive(Debug)]
struct DatabaseCheck {
    every: Duration,
    last: tokio::sync::Mutex<Option<Checked>>,
}

/// One answer of the database to the readiness check.
#[derive(Debug, Clone)]
struct Checked {
    at: Instant,
    /// Why it did not answer; none when it did.
    problem: Option<String>,
}

impl ProcessState {
    /// The state of a process running `implementation` on `brotr`, with no
    /// service yet, asking the database whether it answers at most once
    /// per `database_check_interval`. Its metrics registry reads the
    /// services' and the pool's figures at each scrape.
    pub(crate) fn new(
        implementation: &str,
        brotr: Brotr,
        database_check_interval: Duration,
    ) -> Self {
        let services = Services::default();
        let metrics = Metrics::new();
        metrics.register_collector(ServiceCollector::new(Arc::clone(&services)));
        metrics.register_collector(PoolCollector::new(brotr.pool().clone()));
        Self {
            implementation: implementation.to_owned(),
            brotr,
            metrics,
            services,
            shutting_down: AtomicBool::new(false),
            database: DatabaseCheck {
                every: database_check_interval,
                last: tokio::sync::Mutex::new(None),
            },
        }
    }

    pub(crate) fn add(&self, status: StatusCell) {
        lock(&self.services).push(status);
    }

    /// The archive the provenance endpoints read.
    pub(crate) fn brotr(&self) -> &Brotr {
        &self.brotr
    }

    /// The pool the services share.
    fn pool(&self) -> &ConnectionPool {
        self.brotr.pool()
    }

    /// The registry the services' own metrics go to.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Marks the process as shutting down and every service as stopping.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for status in lock(&self.services).iter() {
            status.begin_stopping();
        }
    }

    /// The status of every service, in start order.
    #[must_use]
    pub fn services(&self) -> Vec<ServiceStatus> {
        lock(&self.services)
            .iter()
            .map(StatusCell::snapshot)
            .collect()
    }

    /// What `/health/ready` (and `/health`) says: why the process is not
    /// ready, a sentence each, none when it is. Ready means: not shutting
    /// down, at least one service, every service running or done without
    /// error (a one-shot service, or one that is disabled or ran its
    /// `loop.max_iterations`), the pool connected, and the database
    /// answering a `SELECT 1` within 2 s. A failed service is named with
    /// its last error.
    ///
    /// The database is asked at most once per
    /// `runtime.http.database_check_interval`; probes in between get its
    /// last answer.
    pub async fn readiness(&self) -> Vec<String> {
        let mut problems = self.service_problems();
        match self.pool_problem() {
            Some(problem) => problems.push(problem),
            None => problems.extend(self.check_database().await),
        }
        problems
    }

    /// What [`readiness`](Self::readiness) says, without asking the
    /// database: its last answer counts.
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.service_problems();
        match self.pool_problem() {
            Some(problem) => problems.push(problem),
            None => problems.extend(self.last_database_problem()),
        }
        problems
    }

    /// What `/status` shows.
    #[must_use]
    pub fn status(&self) -> ProcessStatus {
        let problems = self.problems();
        ProcessStatus {
            implementation: self.implementation.clone(),
            ready: problems.is_empty(),
            problems,
            shutting_down: self.shutting_down.load(Ordering::SeqCst),
            services: self.services(),
            pool: self.pool().stats(),
        }
    }

    /// What `/metrics` shows, in the Prometheus text format: the services'
    /// own metrics, then every service's state and loop figures and the
    /// pool's figures, read now.
    #[must_use]
    pub fn render_metrics(&self) -> String {
        self.metrics.render()
    }

    /// Why the services make the process not ready.
    fn service_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.shutting_down.load(Ordering::SeqCst) {
            problems.push("the process is shutting down".to_owned());
        }
        let services = self.services();
        if services.is_empty() {
            problems.push("no service was started".to_owned());
        }
        for status in services {
            let name = &status.name;
            match status.state {
                State::Running => {}
                State::Stopped if !status.abandoned => {}
                State::Stopped => problems.push(format!(
                    "service `{name}` stopped with its current iteration abandoned"
                )),
                State::Failed => problems.push(match &status.last_error {
                    Some(error) => format!("service `{name}` failed: {error}"),
                    None => format!("service `{name}` failed"),
                }),
                State::Starting | State::Stopping => {
                    problems.push(format!("service `{name}` is {}", status.state));
                }
            }
        }
        problems
    }

    /// Why the pool cannot be used, if it cannot.
    fn pool_problem(&self) -> Option<String> {
        if self.pool().is_closed() {
            Some("the connection pool is closed".to_owned())
        } else if !self.pool().is_connected() {
            Some("the connection pool is not connected".to_owned())
        } else {
            None
        }
    }

    /// Whether the database answers: its last answer while younger than the
    /// interval, else a new `SELECT 1`.
    async fn check_database(&self) -> Option<String> {
        let mut last = self.database.last.lock().await;
        if let Some(checked) = &*last {
            if checked.at.elapsed() < self.database.every {
                return checked.problem.clone();
            }
        }
        let problem = match self.pool().health_check(DATABASE_CHECK_LIMIT).await {
            Ok(_) => None,
            Err(error) => Some(format!(
                "the database does not answer: {}",
                ErrorChain::new(&error)
            )),
        };
        *last = Some(Checked {
            at: Instant::now(),
            problem: problem.clone(),
        });
        problem
    }

    /// The last answer of the database, unless a check is under way.
    fn last_database_problem(&self) -> Option<String> {
        let last = self.database.last.try_lock().ok()?;
        last.as_ref().and_then(|checked| checked.problem.clone())
    }
}

/// What `/status` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessStatus {
    /// The implementation the process runs.
    pub implementation: String,
    /// Whether it is ready: what `/health/ready` last said (the database's
    /// last answer counts, no new one is asked for).
    pub ready: bool,
    /// Why it is not ready, a sentence each: a failed service is named with
    /// its last error.
    pub problems: Vec<String>,
    /// Whether the services were asked to stop.
    pub shutting_down: bool,
    /// Every service, in start order.
    pub services: Vec<ServiceStatus>,
    /// The shared connection pool.
    pub pool: PoolStats,
}

/// Locks `mutex`, using it even when a panic poisoned it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
