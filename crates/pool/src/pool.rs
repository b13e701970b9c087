//! [`ConnectionPool`]: the pool itself, its lifecycle and the one-call
//! statement methods.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bigbrotr_config::{DatabaseConfig, PoolConfig, RetryConfig};
use bigbrotr_utils::{RetryError, RetryPolicy};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_postgres::Row;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::call::{self, Call, Request};
use crate::connection::{Outcome, PooledConnection};
use crate::error::{from_pool_error, Error, PoolErrorKind, Result};
use crate::setup::{self, Target};
use crate::stats::{Counters, PoolStats};
use crate::transaction::PoolTransaction;
use crate::Param;

/// A boxed, sendable future borrowing for `'a`: what the closure given to
/// [`ConnectionPool::transaction`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A PostgreSQL connection pool that is safe behind PgBouncer in
/// transaction pool mode.
///
/// Cloning is cheap and every clone shares the same connections and
/// counters. Building it does no I/O: connections open on first use, or up
/// front with [`connect`](Self::connect).
///
/// Every call waits at most `pool.timeout` for a connection and runs at most
/// `pool.command_timeout`. Which calls retry on a transient error (see
/// [`Error::is_transient`]), following the `retry` section:
///
/// | method | retries |
/// | --- | --- |
/// | [`connect`](Self::connect) | yes, also when its `SELECT 1` times out |
/// | [`fetch_one`](Self::fetch_one), [`fetch_optional`](Self::fetch_optional), [`fetch_all`](Self::fetch_all) | yes |
/// | [`execute_idempotent`](Self::execute_idempotent) | yes |
/// | [`execute`](Self::execute), [`batch_execute`](Self::batch_execute), [`begin`](Self::begin), [`transaction`](Self::transaction), [`health_check`](Self::health_check) | no |
/// | everything on [`PooledConnection`] and [`PoolTransaction`] | no |
///
/// A retried call that keeps failing ends with [`Error::Unavailable`]
/// holding the last error; SQL errors and timeouts are never retried.
#[derive(Clone)]
pub struct ConnectionPool {
    inner: Arc<Inner>,
}

/// State shared by the pool, its connections and its transactions.
/// Longest wait in [`ConnectionPool::disconnect`] for the calls stopped at
/// the end of the grace period to send their cancel requests.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

pub(crate) struct Inner {
    pool: deadpool_postgres::Pool,
    pub(crate) target: Target,
    /// The connector of the pool's connections, for their cancel requests.
    pub(crate) tls: crate::tls::TlsConnector,
    pub(crate) command_timeout: Duration,
    wait_timeout: Duration,
    min_size: usize,
    max_size: usize,
    retry: RetryPolicy,
    pub(crate) counters: Counters,
    /// `disconnect` was called: no new connection is handed out.
    closing: AtomicBool,
    /// `connect` succeeded.
    connected: AtomicBool,
    /// Fired when `disconnect`'s grace period ends: calls still running stop.
    pub(crate) abort: CancellationToken,
    /// Connections handed out and not yet dropped.
    pub(crate) leases: AtomicUsize,
    /// Notified each time a lease ends.
    pub(crate) released: Notify,
    /// Cancel requests of discarded connections still being sent.
    pub(crate) cancels: TaskTracker,
}

impl Inner {
    /// Runs `future` within `limit`, unless the pool is closed for good
    /// first.
    pub(crate) async fn bounded<F: Future>(
        &self,
        limit: Duration,
        future: F,
    ) -> Outcome<F::Output> {
        tokio::select! {
            biased;
            () = self.abort.cancelled() => Outcome::Aborted,
            result = tokio::time::timeout(limit, future) => match result {
                Ok(output) => Outcome::Done(output),
                Err(_) => Outcome::TimedOut(limit),
            },
        }
    }
}

impl ConnectionPool {
    /// Builds a pool from the three sections of `config/core/pool.yaml`,
    /// after checking them; connections report the `application_name`
    /// `bigbrotr`. No connection is opened yet.
    pub fn new(database: &DatabaseConfig, pool: &PoolConfig, retry: &RetryConfig) -> Result<Self> {
        Self::with_application_name(database, pool, retry, setup::APPLICATION_NAME)
    }

    /// Like [`new`](Self::new), with connections reporting
    /// `application_name` (shown by PgBouncer's `SHOW CLIENTS` and the
    /// server's `pg_stat_activity`).
    pub fn with_application_name(
        database: &DatabaseConfig,
        pool: &PoolConfig,
        retry: &RetryConfig,
        application_name: &str,
    ) -> Result<Self> {
        setup::validate(database, pool, retry)?;
        let retry_policy = setup::retry_policy(retry)?;
        let tls = crate::tls::tls_connector(database)?;
        let deadpool = setup::deadpool(
            setup::pg_config(database, pool, application_name),
            tls.clone(),
            pool,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool: deadpool,
                target: Target::of(database),
                tls,
                command_timeout: pool.command_timeout,
                wait_timeout: pool.timeout,
                min_size: setup::to_usize(pool.min_size),
                max_size: setup::to_usize(pool.max_size),
                retry: retry_policy,
                counters: Counters::default(),
                closing: AtomicBool::new(false),
                connected: AtomicBool::new(false),
                abort: CancellationToken::new(),
                leases: AtomicUsize::new(0),
                cancels: TaskTracker::new(),
                released: Notify::new(),
            }),
        })
    }

    /// Opens `pool.min_size` connections (at least one) and runs `SELECT 1`
    /// on each, retrying with backoff while the database is unreachable.
    ///
    /// Fails with [`Error::Unavailable`] (holding the last [`Error::Connect`]
    /// or [`Error::Timeout`]) after `retry.max_attempts` failed attempts, at
    /// once with a permanent error such as a rejected password, and with
    /// [`Error::Closed`] after [`disconnect`](Self::disconnect).
    #[tracing::instrument(
        name = "pool.connect",
        target = "bigbrotr::pool",
        skip_all,
        fields(
            host = %self.inner.target.host,
            port = self.inner.target.port,
            database = %self.inner.target.database,
        ),
        err(level = "warn")
    )]
    pub async fn connect(&self) -> Result<()> {
        self.ensure_open()?;
        let started = Instant::now();
        let wanted = self.inner.min_size.clamp(1, self.inner.max_size.max(1));
        // A `SELECT 1` that times out means PgBouncer accepted the client
        // but cannot reach the server yet: worth another attempt here.
        self.retrying(
            |error| error.is_transient() || matches!(error, Error::Timeout { .. }),
            || self.open_connections(wanted),
        )
        .await?;
        self.ensure_open()?;
        self.inner.connected.store(true, Ordering::SeqCst);
        tracing::info!(
            target: "bigbrotr::pool",
            host = %self.inner.target.host,
            port = self.inner.target.port,
            database = %self.inner.target.database,
            connections = wanted,
            elapsed_ms = millis(started.elapsed()),
            "connected to the database"
        );
        Ok(())
    }

    /// Closes the pool. Idle connections close at once and every later call
    /// fails with [`Error::Closed`]; connections in use may finish their
    /// work within `grace`, after which their calls stop with
    /// [`Error::Closed`] and their statements are cancelled.
    ///
    /// Returns how many connections were still in use when `grace` ran out
    /// (0 when everything finished in time). Calling it again is harmless.
    #[tracing::instrument(
        name = "pool.disconnect",
        target = "bigbrotr::pool",
        skip_all,
        fields(grace_ms = millis(grace))
    )]
    pub async fn disconnect(&self, grace: Duration) -> usize {
        let inner = &self.inner;
        inner.closing.store(true, Ordering::SeqCst);
        inner.connected.store(false, Ordering::SeqCst);
        inner.pool.close();
        let deadline = Instant::now() + grace;
        loop {
            let released = inner.released.notified();
            tokio::pin!(released);
            // Registered before the check, so no release is missed.
            released.as_mut().enable();
            if inner.leases.load(Ordering::SeqCst) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                break;
            }
        }
        let still_in_use = inner.leases.load(Ordering::SeqCst);
        inner.abort.cancel();
        // The calls stopped now discard their connections and cancel their
        // statements: wait for those cancel requests to be answered.
        // PgBouncer 1.18 (Debian 12's) exits on a fatal error when a cancel
        // connection closes before it forwarded the request, as it would if
        // this process ended now.
        let stopped = tokio::time::timeout(CANCEL_WAIT, async {
            while inner.leases.load(Ordering::SeqCst) > 0 {
                let released = inner.released.notified();
                tokio::pin!(released);
                released.as_mut().enable();
                if inner.leases.load(Ordering::SeqCst) == 0 {
                    break;
                }
                released.await;
            }
            inner.cancels.close();
            inner.cancels.wait().await;
        })
        .await;
        if stopped.is_err() {
            tracing::debug!(
                target: "bigbrotr::pool",
                "cancel requests of the calls stopped were still in flight when the pool closed"
            );
        }
        if still_in_use == 0 {
            tracing::info!(target: "bigbrotr::pool", "connection pool closed");
        } else {
            tracing::warn!(
                target: "bigbrotr::pool",
                still_in_use,
                "connection pool closed with connections still in use after the grace period"
            );
        }
        still_in_use
    }

    /// Whether [`connect`](Self::connect) succeeded and
    /// [`disconnect`](Self::disconnect) has not been called. It does not
    /// probe the database: use [`health_check`](Self::health_check) for
    /// that.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::SeqCst) && !self.is_closed()
    }

    /// Whether [`disconnect`](Self::disconnect) was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.closing.load(Ordering::SeqCst)
    }

    /// The limit of each statement, `pool.command_timeout`.
    #[must_use]
    pub fn command_timeout(&self) -> Duration {
        self.inner.command_timeout
    }

    /// Takes a connection, opening one when none is idle and the pool is
    /// not full. Waits at most `pool.timeout` for a free connection
    /// ([`Error::Pool`] with [`PoolErrorKind::WaitTimeout`]); opening one
    /// fails with [`Error::Connect`], [`Error::Tls`] or
    /// [`PoolErrorKind::CreateTimeout`].
    /// Does not retry.
    pub async fn get_connection(&self) -> Result<PooledConnection> {
        self.ensure_open()?;
        match self.inner.pool.get().await {
            Ok(object) => Ok(PooledConnection::new(object, Arc::clone(&self.inner))),
            Err(error) => {
                let error = from_pool_error(error, self.inner.wait_timeout, &self.inner.target);
                let counters = &self.inner.counters;
                match &error {
                    Error::Pool {
                        kind: PoolErrorKind::WaitTimeout { .. },
                        ..
                    } => Counters::bump(&counters.wait_timeouts),
                    Error::Connect { .. }
                    | Error::Tls { .. }
                    | Error::Pool {
                        kind: PoolErrorKind::CreateTimeout { .. },
                        ..
                    } => Counters::bump(&counters.connect_errors),
                    _ => {}
                }
                tracing::debug!(target: "bigbrotr::pool", error = %error, "no connection from the pool");
                Err(error)
            }
        }
    }

    /// Runs one statement and returns the number of rows it affected. Not
    /// retried: after a broken connection the statement may or may not have
    /// been applied. See [`execute_idempotent`](Self::execute_idempotent).
    pub async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        self.run(&call::execute(sql, params)).await
    }

    /// Like [`execute`](Self::execute), retried on transient errors: for
    /// statements that may safely run twice, such as
    /// `INSERT … ON CONFLICT DO NOTHING`.
    pub async fn execute_idempotent(&self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        self.run_retried(&call::execute(sql, params)).await
    }

    /// Runs a query and returns its only row, retried on transient errors;
    /// no row or more than one is [`Error::RowCount`].
    pub async fn fetch_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row> {
        self.run_retried(&call::fetch_one(sql, params)).await
    }

    /// Runs a query and returns its row, if any, retried on transient
    /// errors; more than one row is [`Error::RowCount`].
    pub async fn fetch_optional(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        self.run_retried(&call::fetch_optional(sql, params)).await
    }

    /// Runs a query and returns all its rows, retried on transient errors.
    pub async fn fetch_all(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        self.run_retried(&call::fetch_all("fetch_all", sql, params))
            .await
    }

    /// Runs a query and returns all its rows, as [`fetch_all`](Self::fetch_all)
    /// does, in a transaction of its own whose `statement_timeout` is
    /// `limit`: the server cancels it past that (SQLSTATE `57014`,
    /// `query_canceled`) and the connection stays usable. `BEGIN`, the
    /// setting, the query and `COMMIT` go in one round trip. For queries
    /// whose cost a stranger chooses, such as the archive relay's.
    pub async fn fetch_all_within(
        &self,
        limit: Duration,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>> {
        self.run_retried(&call::fetch_all_within(limit, sql, params))
            .await
    }

    /// Runs a script of statements separated by `;` with the simple
    /// protocol, without parameters; not retried. Several statements run as
    /// one implicit transaction unless the script has its own
    /// `BEGIN`/`COMMIT`.
    pub async fn batch_execute(&self, script: &str) -> Result<()> {
        self.run(&call::script(crate::connection::SCRIPT, script))
            .await
    }

    /// Takes a connection and starts a transaction on it; not retried.
    #[tracing::instrument(
        name = "pool.begin",
        target = "bigbrotr::pool",
        level = "debug",
        skip_all,
        err(level = "debug")
    )]
    pub async fn begin(&self) -> Result<PoolTransaction> {
        self.get_connection().await?.begin().await
    }

    /// Starts a transaction whose statements the server cancels past
    /// `limit` (`SET LOCAL statement_timeout`, sent with the `BEGIN` in one
    /// round trip): for statements whose cost a stranger chooses, such as
    /// the archive relay's queries. A statement past it fails with SQLSTATE
    /// `57014` (`query_canceled`) and leaves the connection usable; the
    /// client-side `pool.command_timeout` still bounds each call too.
    #[tracing::instrument(
        name = "pool.begin_within",
        target = "bigbrotr::pool",
        level = "debug",
        skip_all,
        err(level = "debug")
    )]
    pub async fn begin_within(&self, limit: Duration) -> Result<PoolTransaction> {
        PoolTransaction::begin_within(self.get_connection().await?, limit).await
    }

    /// Runs `work` in a transaction: commits when it returns `Ok`, rolls
    /// back when it returns `Err` (and returns that error). Not retried:
    /// `work` runs at most once.
    ///
    /// ```no_run
    /// # async fn demo(pool: &bigbrotr_pool::ConnectionPool) -> Result<(), bigbrotr_pool::Error> {
    /// use bigbrotr_pool::Type;
    ///
    /// let moved = pool
    ///     .transaction(|tx| {
    ///         Box::pin(async move {
    ///             let n = tx.execute("DELETE FROM inbox WHERE id = $1", &[(&7_i64, Type::INT8)]).await?;
    ///             tx.execute("INSERT INTO archive (id) VALUES ($1)", &[(&7_i64, Type::INT8)]).await?;
    ///             Ok::<_, bigbrotr_pool::Error>(n)
    ///         })
    ///     })
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn transaction<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'t> FnOnce(&'t mut PoolTransaction) -> BoxFuture<'t, Result<T, E>>,
        E: From<Error>,
    {
        let mut tx = self.begin().await?;
        match work(&mut tx).await {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(error) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::debug!(
                        target: "bigbrotr::pool",
                        error = %rollback,
                        "rollback after a failed transaction failed"
                    );
                }
                Err(error)
            }
        }
    }

    /// Takes a connection and runs `SELECT 1`, all within `limit`, and
    /// returns how long that took. Not retried; exceeding `limit` is
    /// [`Error::Timeout`].
    #[tracing::instrument(
        name = "pool.health_check",
        target = "bigbrotr::pool",
        level = "debug",
        skip_all,
        err(level = "debug")
    )]
    pub async fn health_check(&self, limit: Duration) -> Result<Duration> {
        const WHAT: &str = "health check";
        let started = Instant::now();
        let mut conn = match tokio::time::timeout(limit, self.get_connection()).await {
            Ok(conn) => conn?,
            Err(_) => {
                return Err(Error::Timeout {
                    what: WHAT,
                    after: limit,
                })
            }
        };
        conn.ping(WHAT, limit.saturating_sub(started.elapsed()))
            .await
            .map_err(|error| match error {
                Error::Timeout { what, .. } => Error::Timeout { what, after: limit },
                other => other,
            })?;
        Ok(started.elapsed())
    }

    /// A snapshot of the connections and counters.
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        self.inner
            .counters
            .snapshot(self.is_connected(), self.inner.pool.status())
    }

    fn ensure_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Runs `call` once, on a connection of its own.
    async fn run<R: Request>(&self, call: &Call<'_, R>) -> Result<R::Output> {
        self.get_connection().await?.run(call).await
    }

    /// Runs `call` as [`run`](Self::run) does, again after a transient
    /// error, as the `retry` section says.
    async fn run_retried<R: Request>(&self, call: &Call<'_, R>) -> Result<R::Output> {
        self.retrying(Error::is_transient, || self.run(call)).await
    }

    /// Opens `wanted` connections at once (holding each, so they are
    /// distinct) and checks each with `SELECT 1`.
    async fn open_connections(&self, wanted: usize) -> Result<()> {
        let mut held = Vec::with_capacity(wanted);
        for _ in 0..wanted {
            let mut conn = self.get_connection().await?;
            conn.ping("connect", self.inner.command_timeout).await?;
            held.push(conn);
        }
        Ok(())
    }

    /// Runs `op` until it succeeds, fails with an error `retryable` refuses,
    /// or the `retry` section's attempts run out ([`Error::Unavailable`]).
    async fn retrying<T, F, Fut, P>(&self, retryable: P, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
        P: FnMut(&Error) -> bool,
    {
        let mut attempts: u64 = 0;
        let result = bigbrotr_utils::retry(&self.inner.retry, retryable, || {
            attempts += 1;
            op()
        })
        .await;
        Counters::add(&self.inner.counters.retries, attempts.saturating_sub(1));
        result.map_err(|error| match error {
            RetryError::Exhausted { attempts, source } => Error::Unavailable {
                attempts,
                source: Box::new(source),
            },
            other => other.into_inner(),
        })
    }
}

impl fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("host", &self.inner.target.host)
            .field("port", &self.inner.target.port)
            .field("database", &self.inner.target.database)
            .field("closed", &self.is_closed())
            .field("stats", &self.stats())
            .finish()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn pool() -> ConnectionPool {
        let database = DatabaseConfig {
            password: SecretString::from("hunter2-s3cret"),
            ..DatabaseConfig::default()
        };
        ConnectionPool::new(&database, &PoolConfig::default(), &RetryConfig::default())
            .expect("valid configuration")
    }

    #[test]
    fn new_refuses_an_invalid_configuration_naming_each_key() {
        let pool = PoolConfig {
            min_size: 3,
            max_size: 2,
            ..PoolConfig::default()
        };
        let retry = RetryConfig {
            max_attempts: 0,
            ..RetryConfig::default()
        };
        let Err(Error::InvalidConfig { problems }) =
            ConnectionPool::new(&DatabaseConfig::default(), &pool, &retry)
        else {
            panic!("expected InvalidConfig");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["pool.max_size", "retry.max_attempts"]);
    }

    #[test]
    fn a_new_pool_has_no_connection_and_counts_nothing() {
        let pool = pool();
        assert!(!pool.is_connected());
        assert!(!pool.is_closed());
        assert_eq!(pool.command_timeout(), Duration::from_secs(60));
        assert_eq!(
            pool.stats(),
            PoolStats {
                max_size: 10,
                ..PoolStats::default()
            }
        );
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let shown = format!("{:?}", pool());
        assert!(shown.contains("127.0.0.1"));
        assert!(!shown.contains("hunter2"));
    }

    #[tokio::test]
    async fn disconnect_without_connections_returns_at_once_and_closes_the_pool() {
        let pool = pool();
        let clone = pool.clone();
        assert_eq!(pool.disconnect(Duration::from_secs(60)).await, 0);
        assert!(clone.is_closed());
        assert!(matches!(clone.get_connection().await, Err(Error::Closed)));
        assert!(matches!(clone.connect().await, Err(Error::Closed)));
        assert!(matches!(
            clone.execute("SELECT 1", &[]).await,
            Err(Error::Closed)
        ));
        assert!(matches!(
            clone.fetch_all("SELECT 1", &[]).await,
            Err(Error::Closed)
        ));
        assert_eq!(clone.stats().max_size, 0);
        assert_eq!(clone.disconnect(Duration::ZERO).await, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_bounded_runner_reports_a_timeout_after_the_limit() {
        let pool = pool();
        let started = Instant::now();
        let outcome = pool
            .inner
            .bounded(Duration::from_millis(200), std::future::pending::<()>())
            .await;
        assert!(matches!(outcome, Outcome::TimedOut(after) if after == Duration::from_millis(200)));
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        let outcome = pool
            .inner
            .bounded(Duration::from_millis(200), async { 7 })
            .await;
        assert!(matches!(outcome, Outcome::Done(7)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_bounded_runner_stops_once_the_pool_aborts() {
        let pool = pool();
        pool.inner.abort.cancel();
        let outcome = pool
            .inner
            .bounded(Duration::from_secs(1), async { 7 })
            .await;
        assert!(matches!(outcome, Outcome::Aborted));
    }
}
