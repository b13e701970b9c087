//! What the HTTP endpoint reports on: [`ProcessState`], the services of the
//! process and the pool they share, and [`ProcessStatus`], what `/status`
//! shows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use bigbrotr_pool::{ConnectionPool, PoolStats};
use serde::Serialize;

use crate::builtin_metrics::{encode_pool, encode_services};
use crate::metrics::{Exposition, Metrics};
use crate::status::{ServiceStatus, State, StatusCell};

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
    /// The state of a process running `implementation` on `pool`, with no
    /// service yet.
    pub(crate) fn new(implementation: &str, pool: ConnectionPool) -> Self {
        Self {
            implementation: implementation.to_owned(),
            pool,
            metrics: Metrics::new(),
            services: Mutex::new(Vec::new()),
            shutting_down: AtomicBool::new(false),
        }
    }

    pub(crate) fn add(&self, status: StatusCell) {
        lock(&self.services).push(status);
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

    /// Healthy means [`problems`](Self::problems) finds none.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        problems(
            self.shutting_down.load(Ordering::SeqCst),
            &self.pool,
            &self.services(),
        )
        .is_empty()
    }

    /// Why the process is not healthy, a sentence each; none when it is
    /// healthy: not shutting down, the pool connected, at least one service,
    /// and every service running or done without error (a one-shot service,
    /// or one that is disabled or ran its `loop.max_iterations`). A failed
    /// service is named with its last error.
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        problems(
            self.shutting_down.load(Ordering::SeqCst),
            &self.pool,
            &self.services(),
        )
    }

    /// What `/status` shows.
    #[must_use]
    pub fn status(&self) -> ProcessStatus {
        let shutting_down = self.shutting_down.load(Ordering::SeqCst);
        let services = self.services();
        let problems = problems(shutting_down, &self.pool, &services);
        ProcessStatus {
            implementation: self.implementation.clone(),
            healthy: problems.is_empty(),
            problems,
            shutting_down,
            services,
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
    /// Why it is not healthy, a sentence each: a failed service is named
    /// with its last error.
    pub problems: Vec<String>,
    /// Whether the services were asked to stop.
    pub shutting_down: bool,
    /// Every service, in start order.
    pub services: Vec<ServiceStatus>,
    /// The shared connection pool.
    pub pool: PoolStats,
}

/// Why a process is not healthy; see [`ProcessState::problems`].
fn problems(shutting_down: bool, pool: &ConnectionPool, services: &[ServiceStatus]) -> Vec<String> {
    let mut problems = Vec::new();
    if shutting_down {
        problems.push("the process is shutting down".to_owned());
    }
    if pool.is_closed() {
        problems.push("the connection pool is closed".to_owned());
    } else if !pool.is_connected() {
        problems.push("the connection pool is not connected".to_owned());
    }
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

/// Locks `mutex`, using it even when a panic poisoned it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
