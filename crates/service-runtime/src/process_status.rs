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

/// Locks `mutex`, using it even when a panic poisoned it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
