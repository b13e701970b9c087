//! What each service is doing and how it went: [`State`] and
//! [`ServiceStatus`], kept up to date in a shared [`StatusCell`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;
use serde::Serialize;

/// Where a service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Its task runs but the service is not built yet.
    Starting,
    /// It runs.
    Running,
    /// It was asked to stop and finishes its current iteration.
    Stopping,
    /// It ended without error: its work was done, it was stopped, or its
    /// current iteration was abandoned at shutdown.
    Stopped,
    /// It ended with an error.
    Failed,
}

impl State {
    /// Every state, in the order of a service's life.
    pub const ALL: [State; 5] = [
        State::Starting,
        State::Running,
        State::Stopping,
        State::Stopped,
        State::Failed,
    ];

    /// The state in lowercase, as in `/status` and `/metrics`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }

    /// Whether the service has ended, well or not.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(self, State::Stopped | State::Failed)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of one service: what `/status` shows for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStatus {
    /// Its name: `service.name`, else the name of its file.
    pub name: String,
    /// Where it is in its life.
    pub state: State,
    /// Iterations run, failed ones included (a one-shot service counts its
    /// run as one).
    pub iterations: u64,
    /// Iterations that failed.
    pub errors: u64,
    /// Iterations that failed since the last one that succeeded.
    pub consecutive_errors: u32,
    /// The last error, with its causes on one line.
    pub last_error: Option<String>,
    /// When the last error happened (Unix seconds).
    pub last_error_at: Option<i64>,
    /// When the last successful iteration ended (Unix seconds).
    pub last_success_at: Option<i64>,
    /// How long the last iteration took, in seconds.
    pub last_iteration_seconds: Option<f64>,
    /// How long all iterations took together, in seconds.
    pub iteration_seconds_total: f64,
    /// Whether the current iteration was abandoned at shutdown because it
    /// outlasted the grace period.
    pub abandoned: bool,
    /// Figures the service reports of its own (the synchronizer's pending
    /// ranges, say), by name; left out of the JSON when there are none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, i64>,
}

impl ServiceStatus {
    /// A service named `name` that is starting.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            state: State::Starting,
            iterations: 0,
            errors: 0,
            consecutive_errors: 0,
            last_error: None,
            last_error_at: None,
            last_success_at: None,
            last_iteration_seconds: None,
            iteration_seconds_total: 0.0,
            abandoned: false,
            details: BTreeMap::new(),
        }
    }
}

/// Upper bounds of the buckets of iteration durations, in seconds: from an
/// idle monitor's few milliseconds to a synchronizer's hour-long cycle.
const DURATION_BUCKETS: [f64; 12] = [
    0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// The status of one service, shared between its task, the runtime and the
/// HTTP endpoint. Cloning shares it.
#[derive(Debug, Clone)]
pub struct StatusCell {
    inner: Arc<Mutex<ServiceStatus>>,
    /// How long its iterations took, for `/metrics`.
    durations: Histogram,
}

impl StatusCell {
    /// A cell for a service named `name` that is starting.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            inner: Arc::new(Mutex::new(ServiceStatus::new(name))),
            durations: Histogram::new(DURATION_BUCKETS),
        }
    }

    /// How long its iterations took (shared, not copied).
    pub(crate) fn durations(&self) -> Histogram {
        self.durations.clone()
    }

    fn lock(&self) -> MutexGuard<'_, ServiceStatus> {
        // A panic while holding the lock leaves a consistent status: every
        // update is a few plain assignments.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of the status now.
    #[must_use]
    pub fn snapshot(&self) -> ServiceStatus {
        self.lock().clone()
    }

    /// The state now.
    #[must_use]
    pub fn state(&self) -> State {
        self.lock().state
    }

    /// Moves to `state`, unless the service has ended already.
    pub fn set_state(&self, state: State) {
        let mut status = self.lock();
        if !status.state.is_final() {
            status.state = state;
        }
    }

    /// Marks a running or starting service as stopping; an ended one stays
    /// as it is.
    pub fn begin_stopping(&self) {
        let mut status = self.lock();
        if matches!(status.state, State::Starting | State::Running) {
            status.state = State::Stopping;
        }
    }

    /// Marks the service as stopped after its current iteration was
    /// abandoned; an ended one stays as it is.
    pub fn abandon(&self) {
        let mut status = self.lock();
        if !status.state.is_final() {
            status.state = State::Stopped;
            status.abandoned = true;
        }
    }

    /// Records an iteration that succeeded after `took`, at `now` (Unix
    /// seconds).
    pub fn record_success(&self, took: Duration, now: i64) {
        let mut status = self.lock();
        status.iterations += 1;
        status.consecutive_errors = 0;
        status.last_success_at = Some(now);
        record_duration(&mut status, took);
        self.durations.observe(took.as_secs_f64());
    }

    /// Records an iteration that failed with `error` after `took`, at `now`
    /// (Unix seconds); returns the failures in a row.
    pub fn record_error(&self, took: Duration, now: i64, error: &anyhow::Error) -> u32 {
        let mut status = self.lock();
        status.iterations += 1;
        status.errors += 1;
        status.consecutive_errors = status.consecutive_errors.saturating_add(1);
        status.last_error = Some(format!("{error:#}"));
        status.last_error_at = Some(now);
        record_duration(&mut status, took);
        self.durations.observe(took.as_secs_f64());
        status.consecutive_errors
    }

    /// Marks the service as failed with `error` at `now`; the error is kept
    /// as the last one.
    pub fn fail(&self, error: &anyhow::Error, now: i64) {
        let mut status = self.lock();
        status.state = State::Failed;
        status.last_error = Some(format!("{error:#}"));
        status.last_error_at = Some(now);
    }

    /// Sets the figure `name` the service reports of its own.
    pub fn set_detail(&self, name: &str, value: i64) {
        self.lock().details.insert(name.to_owned(), value);
    }

    /// Marks the service as stopped without error.
    pub fn stop(&self) {
        let mut status = self.lock();
        if !status.state.is_final() {
            status.state = State::Stopped;
        }
    }
}

fn record_duration(status: &mut ServiceStatus, took: Duration) {
    let seconds = took.as_secs_f64();
    status.last_iteration_seconds = Some(seconds);
    status.iteration_seconds_total += seconds;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterations_errors_and_streaks_are_counted_exactly() {
        let cell = StatusCell::new("demo");
        cell.set_state(State::Running);
        cell.record_success(Duration::from_millis(500), 10);
        let error = anyhow::anyhow!("inner").context("outer");
        assert_eq!(cell.record_error(Duration::from_secs(1), 11, &error), 1);
        assert_eq!(cell.record_error(Duration::from_secs(1), 12, &error), 2);
        let status = cell.snapshot();
        assert_eq!(status.iterations, 3);
        assert_eq!(status.errors, 2);
        assert_eq!(status.consecutive_errors, 2);
        assert_eq!(status.last_error.as_deref(), Some("outer: inner"));
        assert_eq!(status.last_error_at, Some(12));
        assert_eq!(status.last_success_at, Some(10));
        assert_eq!(status.last_iteration_seconds, Some(1.0));
        assert_eq!(status.iteration_seconds_total, 2.5);
        cell.record_success(Duration::ZERO, 13);
        assert_eq!(cell.snapshot().consecutive_errors, 0);
    }

    #[test]
    fn an_ended_service_keeps_its_final_state() {
        let cell = StatusCell::new("demo");
        cell.fail(&anyhow::anyhow!("boom"), 1);
        cell.set_state(State::Running);
        cell.begin_stopping();
        cell.abandon();
        cell.stop();
        assert_eq!(cell.state(), State::Failed);
        assert!(!cell.snapshot().abandoned);
    }

    #[test]
    fn states_serialize_in_lowercase() {
        assert_eq!(
            serde_json::to_string(&State::ALL).unwrap(),
            r#"["starting","running","stopping","stopped","failed"]"#
        );
    }
}
