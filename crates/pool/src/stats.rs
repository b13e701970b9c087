//! What the pool holds and what it did: [`PoolStats`].

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// A snapshot of the pool: whether it is connected, its connections now, and
/// counters since it was built. It serialises as a flat object of these
/// fields, under their names here.
///
/// A *call* is one statement sent on the caller's behalf: each `execute`,
/// `fetch_*`, `batch_execute`, `COPY`, health check and transaction
/// `BEGIN`, `COMMIT` or `ROLLBACK`, and each attempt of a retried call. The
/// `SELECT 1` that [`connect`](crate::ConnectionPool::connect) runs on each
/// connection it opens counts too; the `ROLLBACK` sent for a transaction
/// dropped without commit or rollback does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct PoolStats {
    /// Whether [`connect`](crate::ConnectionPool::connect) succeeded and
    /// the pool is not closed (see
    /// [`is_connected`](crate::ConnectionPool::is_connected)).
    pub connected: bool,
    /// Most connections the pool may hold; 0 once closed.
    pub max_size: usize,
    /// Connections open now, idle or in use.
    pub size: usize,
    /// Connections open and idle now.
    pub idle: usize,
    /// Connections handed out now.
    pub in_use: usize,
    /// Callers waiting for a connection now.
    pub waiting: usize,
    /// Statements sent (see above).
    pub calls: u64,
    /// Calls that failed: SQL errors, broken connections and timeouts alike.
    pub errors: u64,
    /// Calls cut off by `pool.command_timeout` (or a health check's limit).
    pub timeouts: u64,
    /// Attempts repeated after a transient error.
    pub retries: u64,
    /// Connections detached from the pool and closed instead of being
    /// handed out again: after a timeout, a broken connection, or a call or
    /// transaction abandoned half-way.
    pub discarded: u64,
    /// Times no connection became free within `pool.timeout`.
    pub wait_timeouts: u64,
    /// Failed attempts at opening a new connection (refused, unreachable,
    /// rejected, or slower than `pool.timeout`).
    pub connect_errors: u64,
}

/// The counters behind [`PoolStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) calls: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) discarded: AtomicU64,
    pub(crate) wait_timeouts: AtomicU64,
    pub(crate) connect_errors: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        Self::add(counter, 1);
    }

    /// The counters, with the connection figures of `status`.
    pub(crate) fn snapshot(&self, connected: bool, status: deadpool_postgres::Status) -> PoolStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        PoolStats {
            connected,
            max_size: status.max_size,
            size: status.size,
            idle: status.available,
            in_use: status.size.saturating_sub(status.available),
            waiting: status.waiting,
            calls: load(&self.calls),
            errors: load(&self.errors),
            timeouts: load(&self.timeouts),
            retries: load(&self.retries),
            discarded: load(&self.discarded),
            wait_timeouts: load(&self.wait_timeouts),
            connect_errors: load(&self.connect_errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_derives_in_use_from_size_and_idle() {
        let counters = Counters::default();
        Counters::bump(&counters.calls);
        Counters::add(&counters.errors, 2);
        let stats = counters.snapshot(
            true,
            deadpool_postgres::Status {
                max_size: 10,
                size: 4,
                available: 1,
                waiting: 0,
            },
        );
        assert_eq!(
            stats,
            PoolStats {
                connected: true,
                max_size: 10,
                size: 4,
                idle: 1,
                in_use: 3,
                waiting: 0,
                calls: 1,
                errors: 2,
                ..PoolStats::default()
            }
        );
    }

    #[test]
    fn a_snapshot_serialises_as_a_flat_object_of_its_fields() {
        let json = serde_json::to_string(&PoolStats {
            connected: true,
            max_size: 10,
            calls: 3,
            ..PoolStats::default()
        })
        .unwrap();
        assert_eq!(
            json,
            "{\"connected\":true,\"max_size\":10,\"size\":0,\"idle\":0,\"in_use\":0,\
             \"waiting\":0,\"calls\":3,\"errors\":0,\"timeouts\":0,\"retries\":0,\
             \"discarded\":0,\"wait_timeouts\":0,\"connect_errors\":0}"
        );
    }
}
