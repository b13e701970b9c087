//! [`PooledConnection`]: one connection taken from the pool, with the
//! statement methods every call goes through.

use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{ClientWrapper, Object};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{CancelToken, Row};

use crate::call::{self, Call, Miscount, Request};
use crate::error::{breaks_connection, excerpt, Error, Result};
use crate::pool::Inner;
use crate::stats::Counters;
use crate::tls::TlsConnector;
use crate::transaction::PoolTransaction;
use crate::Param;

/// The name of a [`PooledConnection::batch_execute`] call.
pub(crate) const SCRIPT: &str = "batch_execute";

/// How long a discarded connection's cancel request may take.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// How a bounded call ended.
pub(crate) enum Outcome<T> {
    /// It finished, well or not.
    Done(T),
    /// It ran out of time after the given limit.
    TimedOut(Duration),
    /// The pool was closed and the grace period ran out.
    Aborted,
}

/// A connection taken from the pool, returned to it when dropped.
///
/// Every method sends unnamed statements only (typed parameters sent with
/// the statement in one round trip, or the simple protocol for scripts),
/// which PgBouncer in transaction mode passes through safely, and is bounded
/// by `pool.command_timeout`.
/// None of them retries. A connection whose call timed out, broke, or was
/// cancelled half-way (its future dropped) is discarded: detached from the
/// pool and closed, its running statement cancelled; every later call on it
/// fails with [`Error::Discarded`].
pub struct PooledConnection {
    /// `None` once discarded.
    object: Option<Object>,
    inner: Arc<Inner>,
    /// A statement is in flight; still set when its future was dropped.
    busy: bool,
    /// A `BEGIN` succeeded and no `COMMIT` or `ROLLBACK` has yet.
    in_transaction: bool,
}

impl PooledConnection {
    pub(crate) fn new(object: Object, inner: Arc<Inner>) -> Self {
        inner.leases.fetch_add(1, Ordering::SeqCst);
        Self {
            object: Some(object),
            inner,
            busy: false,
            in_transaction: false,
        }
    }

    /// Whether the connection was discarded after a failure; every call on
    /// it then fails with [`Error::Discarded`].
    #[must_use]
    pub fn is_discarded(&self) -> bool {
        self.object.is_none()
    }

    /// Runs one statement and returns the number of rows it affected.
    pub async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        self.run(&call::execute(sql, params)).await
    }

    /// Runs a query and returns its only row; no row or more than one is
    /// [`Error::RowCount`].
    pub async fn fetch_one(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Row> {
        self.run(&call::fetch_one(sql, params)).await
    }

    /// Runs a query and returns its row, if any; more than one row is
    /// [`Error::RowCount`].
    pub async fn fetch_optional(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        self.run(&call::fetch_optional(sql, params)).await
    }

    /// Runs a query and returns all its rows.
    pub async fn fetch_all(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        self.run(&call::fetch_all("fetch_all", sql, params)).await
    }

    /// Runs a script of one or more statements separated by `;` with the
    /// simple protocol, without parameters. A script of several statements
    /// runs as one implicit transaction unless it contains its own
    /// `BEGIN`/`COMMIT`.
    pub async fn batch_execute(&mut self, script: &str) -> Result<()> {
        self.run(&call::script(SCRIPT, script)).await
    }

    /// Starts a transaction on this connection.
    pub async fn begin(self) -> Result<PoolTransaction> {
        PoolTransaction::begin(self).await
    }

    /// Runs `call` within `pool.command_timeout`.
    pub(crate) async fn run<R: Request>(&mut self, call: &Call<'_, R>) -> Result<R::Output> {
        self.run_within(self.inner.command_timeout, call).await
    }

    /// `SELECT 1` within `limit`, as call `what`.
    pub(crate) async fn ping(&mut self, what: &'static str, limit: Duration) -> Result<()> {
        let call = call::fetch_all(what, "SELECT 1", &[]);
        self.run_within(limit, &call).await.map(drop)
    }

    /// Every call on a connection goes through here: it is counted, sent
    /// within `limit`, and settled; a statement answered with a number of
    /// rows the call refuses is [`Error::RowCount`].
    #[tracing::instrument(
        name = "pool.call",
        target = "bigbrotr::pool",
        level = "debug",
        skip_all,
        fields(call = call.what, sql = %excerpt(call.sql)),
        err(level = "debug")
    )]
    pub(crate) async fn run_within<R: Request>(
        &mut self,
        limit: Duration,
        call: &Call<'_, R>,
    ) -> Result<R::Output> {
        self.start(call.what)?;
        let client = self.client(call.what)?;
        let outcome = self
            .inner
            .bounded(limit, call.request.send(call.sql, client))
            .await;
        self.settle(call.what, call.sql, outcome)?
            .map_err(|miscount| self.row_count(call.what, call.sql, miscount))
    }

    /// Sends `BEGIN`.
    pub(crate) async fn begin_transaction(&mut self) -> Result<()> {
        self.run(&call::script("BEGIN", "BEGIN")).await?;
        self.in_transaction = true;
        Ok(())
    }

    /// Sends `BEGIN` and `SET LOCAL statement_timeout` in one script: one
    /// round trip. Marked in a transaction first: should the script fail
    /// after its `BEGIN`, the connection is discarded when dropped rather
    /// than handed out inside an aborted transaction.
    pub(crate) async fn begin_transaction_within(&mut self, limit: Duration) -> Result<()> {
        self.in_transaction = true;
        let script = call::begin_within(limit);
        self.run(&call::script("BEGIN", &script)).await
    }

    /// Sends `COMMIT` or `ROLLBACK` (`what`). Any answer from the server ends
    /// the transaction, a failed `COMMIT` included (the server rolled back).
    pub(crate) async fn end_transaction(&mut self, what: &'static str) -> Result<()> {
        let result = self.run(&call::script(what, what)).await;
        if result.is_ok()
            || matches!(&result, Err(Error::Query { source, .. }) if source.as_db_error().is_some())
        {
            self.in_transaction = false;
        }
        result
    }

    /// Rolls back the transaction of a dropped [`PoolTransaction`], without
    /// counting a call; the connection is discarded when that fails.
    pub(crate) async fn rollback_quietly(&mut self) {
        let outcome = match self.object.as_deref() {
            Some(client) => {
                self.busy = true;
                self.inner
                    .bounded(self.inner.command_timeout, client.batch_execute("ROLLBACK"))
                    .await
            }
            None => return,
        };
        self.busy = false;
        match outcome {
            Outcome::Done(Ok(())) => self.in_transaction = false,
            Outcome::Done(Err(_)) => {
                self.discard(false, "rollback of a dropped transaction failed")
            }
            Outcome::TimedOut(_) | Outcome::Aborted => {
                self.discard(true, "rollback of a dropped transaction did not finish");
            }
        }
    }

    /// Whether a statement is in flight, or was when its future was dropped.
    pub(crate) fn is_busy(&self) -> bool {
        self.busy
    }

    /// Counts a call and marks the connection busy. A connection still busy
    /// from an earlier call was abandoned half-way: its state is unknown, so
    /// it is discarded.
    fn start(&mut self, what: &'static str) -> Result<()> {
        self.resume(what)?;
        Counters::bump(&self.inner.counters.calls);
        Ok(())
    }

    /// Marks the connection busy for a step of a call already counted (a
    /// `COPY` write).
    pub(crate) fn resume(&mut self, what: &'static str) -> Result<()> {
        if self.busy {
            self.discard(true, "an earlier call was abandoned half-way");
        }
        if self.object.is_none() {
            return Err(Error::Discarded { what });
        }
        if self.inner.abort.is_cancelled() {
            return Err(Error::Closed);
        }
        self.busy = true;
        Ok(())
    }

    /// The driver client, unless discarded.
    fn client(&self, what: &'static str) -> Result<&tokio_postgres::Client> {
        self.object
            .as_deref()
            .map(|wrapper: &ClientWrapper| &**wrapper)
            .ok_or(Error::Discarded { what })
    }

    /// Runs `future` within `pool.command_timeout`, unless the pool is
    /// closed for good first.
    pub(crate) async fn bounded<F: Future>(&self, future: F) -> Outcome<F::Output> {
        self.inner.bounded(self.inner.command_timeout, future).await
    }

    /// Ends a call: counts its failure, discards the connection when the
    /// failure leaves it untrustworthy, and turns the outcome into a result.
    pub(crate) fn settle<T>(
        &mut self,
        what: &'static str,
        sql: &str,
        outcome: Outcome<Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        self.busy = false;
        let counters = &self.inner.counters;
        match outcome {
            Outcome::Done(Ok(value)) => Ok(value),
            Outcome::Done(Err(source)) => {
                Counters::bump(&counters.errors);
                if breaks_connection(&source) {
                    self.discard(false, "the connection broke");
                } else if what == SCRIPT && !self.in_transaction {
                    // A script may have begun a transaction and failed inside
                    // it (`BEGIN; …; COMMIT`): the session would stay in an
                    // aborted transaction, so it is not handed out again.
                    self.discard(
                        false,
                        "a script failed, maybe inside a transaction it began",
                    );
                }
                Err(Error::Query {
                    what,
                    statement: excerpt(sql),
                    source,
                })
            }
            Outcome::TimedOut(after) => {
                Counters::bump(&counters.errors);
                Counters::bump(&counters.timeouts);
                self.discard(true, "a call timed out");
                Err(Error::Timeout { what, after })
            }
            Outcome::Aborted => {
                Counters::bump(&counters.errors);
                self.discard(true, "the pool was closed");
                Err(Error::Closed)
            }
        }
    }

    fn row_count(&self, what: &'static str, sql: &str, miscount: Miscount) -> Error {
        Counters::bump(&self.inner.counters.errors);
        Error::RowCount {
            what,
            statement: excerpt(sql),
            expected: miscount.expected,
            found: miscount.found,
        }
    }

    /// Detaches the connection from the pool and closes it; with `cancel`,
    /// first asks the server to cancel whatever it still runs.
    pub(crate) fn discard(&mut self, cancel: bool, reason: &'static str) {
        self.busy = false;
        self.in_transaction = false;
        let Some(object) = self.object.take() else {
            return;
        };
        Counters::bump(&self.inner.counters.discarded);
        tracing::debug!(target: "bigbrotr::pool", reason, cancel, "connection discarded");
        let client = Object::take(object);
        if cancel {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let cancel = self
                    .inner
                    .cancels
                    .track_future(cancel_then_close(client, Arc::clone(&self.inner)));
                runtime.spawn(cancel);
                return;
            }
        }
        drop(client);
    }
}

/// Asks the server to cancel the statement still running on `client`, waits
/// until it has ended, then closes `client`. The client stays open meanwhile:
/// PgBouncer forwards a cancel request only while the client is still linked
/// to the server connection running the statement.
async fn cancel_then_close(client: ClientWrapper, inner: Arc<Inner>) {
    let cancelled = tokio::time::timeout(CANCEL_TIMEOUT, async {
        send_cancel_request(
            &client.cancel_token(),
            &inner.tls,
            &inner.target.host,
            inner.target.port,
        )
        .await
        .map_err(CancelError::Io)?;
        // An empty query queues behind the cancelled statement: its answer
        // means the server is done with it.
        client.batch_execute("").await.map_err(CancelError::Pg)
    })
    .await;
    match cancelled {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(
            target: "bigbrotr::pool",
            error = %error,
            "cancelling the statement of a discarded connection failed"
        ),
        Err(_) => tracing::debug!(
            target: "bigbrotr::pool",
            "cancelling the statement of a discarded connection took too long"
        ),
    }
    drop(client);
}

/// Why a cancel request failed; only logged.
#[derive(Debug)]
enum CancelError {
    Io(std::io::Error),
    Pg(tokio_postgres::Error),
}

impl fmt::Display for CancelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(error) => write!(f, "{error}"),
            Self::Pg(error) => write!(f, "{error}"),
        }
    }
}

/// Sends `token`'s cancel request to `host:port`, through TLS when the
/// connection used it, and keeps the connection open until the other side
/// closes it.
///
/// The driver's own `cancel_query` closes its connection right after writing
/// the request, and PgBouncer drops a request whose connection is gone before
/// it forwarded it. So the driver talks to an in-memory pipe here (the TLS
/// handshake included), relayed to a connection of our own that is never
/// shut down from this side: it waits for PgBouncer (or the server) to hang
/// up, as libpq does.
async fn send_cancel_request(
    token: &CancelToken,
    tls: &TlsConnector,
    host: &str,
    port: u16,
) -> std::io::Result<()> {
    let server = TcpStream::connect((host, port)).await?;
    let (mut server_read, mut server_write) = server.into_split();
    let (ours, theirs) = tokio::io::duplex(16 * 1024);
    let (mut ours_read, mut ours_write) = tokio::io::split(ours);
    let Ok(connect) = MakeTlsConnect::<DuplexStream>::make_tls_connect(&mut tls.clone(), host);
    // Up to the server: what the driver writes; this side is never shut down.
    let upstream = tokio::io::copy(&mut ours_read, &mut server_write);
    // Down to the driver: what the server answers, until it hangs up. Once
    // the driver is done, what still comes (a TLS alert) is dropped.
    let downstream = async {
        let mut buffer = [0_u8; 4096];
        let mut driver_gone = false;
        loop {
            let read = server_read.read(&mut buffer).await?;
            if read == 0 {
                return Ok::<_, std::io::Error>(());
            }
            if !driver_gone && ours_write.write_all(&buffer[..read]).await.is_err() {
                driver_gone = true;
            }
        }
    };
    let (written, relayed) = tokio::join!(token.cancel_query_raw(theirs, connect), async {
        tokio::try_join!(upstream, downstream)
    });
    written.map_err(std::io::Error::other)?;
    relayed.map(|_| ())
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        if self.busy {
            self.discard(true, "a call was abandoned half-way");
        } else if self.in_transaction {
            self.discard(false, "a transaction was abandoned");
        }
        // What is left goes back to the pool before the lease ends, so that
        // `disconnect` sees the pool settled.
        drop(self.object.take());
        self.inner.leases.fetch_sub(1, Ordering::SeqCst);
        self.inner.released.notify_waiters();
    }
}

impl fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("discarded", &self.is_discarded())
            .field("in_transaction", &self.in_transaction)
            .finish_non_exhaustive()
    }
}
