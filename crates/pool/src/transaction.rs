//! [`PoolTransaction`]: a transaction on one pooled connection, and
//! [`BinaryCopyIn`], the binary `COPY … FROM STDIN` that only a transaction
//! offers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row};

use crate::call::{self, Answer, Call, Request};
use crate::connection::PooledConnection;
use crate::error::{excerpt, Error, Result};
use crate::Param;

/// A transaction on one pooled connection.
///
/// Finish it with [`commit`](Self::commit) or [`rollback`](Self::rollback).
/// Dropped without either, it is rolled back in the background and its
/// connection returned to the pool (or discarded when that cannot be done).
/// When one of its statements failed, the database has aborted it, so
/// `commit` rolls back and returns [`Error::TransactionAborted`]: a
/// transaction never reports success for work the database threw away.
///
/// Every statement is bounded by `pool.command_timeout` (but those of
/// [`execute_within`](Self::execute_within)); none is retried.
pub struct PoolTransaction {
    /// `None` only while `commit`/`rollback` consume the transaction.
    conn: Option<PooledConnection>,
    /// A statement failed, so the database aborted the transaction.
    aborted: bool,
}

impl PoolTransaction {
    /// Sends `BEGIN` on `conn`.
    pub(crate) async fn begin(mut conn: PooledConnection) -> Result<Self> {
        conn.begin_transaction().await?;
        Ok(Self {
            conn: Some(conn),
            aborted: false,
        })
    }

    /// Sends `BEGIN` on `conn`, with `statement_timeout` set to `limit` for
    /// the transaction.
    pub(crate) async fn begin_within(mut conn: PooledConnection, limit: Duration) -> Result<Self> {
        conn.begin_transaction_within(limit).await?;
        Ok(Self {
            conn: Some(conn),
            aborted: false,
        })
    }

    /// Whether a statement of the transaction failed, so that it can only be
    /// rolled back.
    #[must_use]
    pub fn is_aborted(&self) -> bool {
        self.aborted
    }

    /// Runs one statement and returns the number of rows it affected.
    pub async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        self.run(&call::execute(sql, params)).await
    }

    /// Like [`execute`](Self::execute), bounded by `limit` instead of
    /// `pool.command_timeout`: for the rare statement known to run long,
    /// such as the refresh of a materialized view over the whole archive.
    /// Set the server's limit in the same transaction first
    /// (`SELECT set_config('statement_timeout', '…ms', true)`): the role's
    /// `statement_timeout` applies otherwise. Past `limit` it fails with
    /// [`Error::Timeout`] and the connection is discarded, its statement
    /// cancelled.
    pub async fn execute_within(
        &mut self,
        limit: Duration,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<u64> {
        let result = self
            .conn("execute")?
            .run_within(limit, &call::execute(sql, params))
            .await;
        self.note(result)
    }

    /// Runs a query and returns its only row; no row or more than one is
    /// [`Error::RowCount`] (which does not abort the transaction).
    pub async fn fetch_one(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Row> {
        self.run(&call::fetch_one(sql, params)).await
    }

    /// Runs a query and returns its row, if any; more than one row is
    /// [`Error::RowCount`] (which does not abort the transaction).
    pub async fn fetch_optional(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        self.run(&call::fetch_optional(sql, params)).await
    }

    /// Runs a query and returns all its rows.
    pub async fn fetch_all(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        self.run(&call::fetch_all("fetch_all", sql, params)).await
    }

    /// Runs a script of statements separated by `;` with the simple
    /// protocol, without parameters.
    pub async fn batch_execute(&mut self, script: &str) -> Result<()> {
        self.run(&call::script(crate::connection::SCRIPT, script))
            .await
    }

    /// Starts a binary `COPY … FROM STDIN` (`sql` such as
    /// `COPY t (a, b) FROM STDIN (FORMAT binary)`), whose rows have the
    /// column `types`. Write rows with [`BinaryCopyIn::write`], then call
    /// [`BinaryCopyIn::finish`]; a copy dropped before `finish` is abandoned
    /// and aborts the transaction.
    ///
    /// `COPY` is offered only inside a transaction: outside one, PgBouncer in
    /// transaction mode can leave the connection hanging. The driver also
    /// prepares the `COPY` statement under a name, which only a transaction
    /// keeps on one server connection.
    #[tracing::instrument(
        name = "pool.transaction.copy_in_binary",
        target = "bigbrotr::pool",
        level = "debug",
        skip_all,
        fields(sql = %excerpt(sql)),
        err(level = "debug")
    )]
    pub async fn copy_in_binary(&mut self, sql: &str, types: &[Type]) -> Result<BinaryCopyIn<'_>> {
        let writer = self
            .run(&Call {
                what: "COPY",
                sql,
                request: CopyIn(types),
            })
            .await?;
        Ok(BinaryCopyIn {
            writer: Box::pin(writer),
            columns: types.len(),
            statement: excerpt(sql),
            transaction: self,
            finished: false,
        })
    }

    /// Commits. When a statement failed earlier, rolls back instead and
    /// returns [`Error::TransactionAborted`].
    #[tracing::instrument(
        name = "pool.transaction.commit",
        target = "bigbrotr::pool",
        level = "debug",
        skip_all,
        err(level = "debug")
    )]
    pub async fn commit(mut self) -> Result<()> {
        let mut conn = self
            .conn
            .take()
            .ok_or(Error::Discarded { what: "COMMIT" })?;
        if self.aborted {
            conn.end_transaction("ROLLBACK").await?;
            return Err(Error::TransactionAborted);
        }
        conn.end_transaction("COMMIT").await
    }

    /// Rolls back.
    #[tracing::instrument(
        name = "pool.transaction.rollback",
        target = "bigbrotr::pool",
        level = "debug",
        skip_all,
        err(level = "debug")
    )]
    pub async fn rollback(mut self) -> Result<()> {
        let mut conn = self
            .conn
            .take()
            .ok_or(Error::Discarded { what: "ROLLBACK" })?;
        conn.end_transaction("ROLLBACK").await
    }

    /// Runs `call` on the transaction's connection, noting a failure.
    async fn run<R: Request>(&mut self, call: &Call<'_, R>) -> Result<R::Output> {
        let result = self.conn(call.what)?.run(call).await;
        self.note(result)
    }

    /// Runs one step of a `COPY` already started (a row written, or the end)
    /// on the transaction's connection, noting a failure.
    async fn copy_step<T>(
        &mut self,
        statement: &str,
        step: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        const WHAT: &str = "COPY";
        let conn = self.conn(WHAT)?;
        conn.resume(WHAT)?;
        let outcome = conn.bounded(step).await;
        let result = conn.settle(WHAT, statement, outcome);
        self.note(result)
    }

    fn conn(&mut self, what: &'static str) -> Result<&mut PooledConnection> {
        self.conn.as_mut().ok_or(Error::Discarded { what })
    }

    /// Records that the transaction is aborted when `result` is an error the
    /// database saw.
    fn note<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(error) = &result {
            if !matches!(error, Error::RowCount { .. }) {
                self.aborted = true;
            }
        }
        result
    }
}

impl Drop for PoolTransaction {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // A discarded or mid-call connection is closed by its own drop; a
        // healthy one is rolled back off the caller's path. Without a runtime
        // the connection's drop discards it, as it is still in a transaction.
        if conn.is_discarded() || conn.is_busy() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { conn.rollback_quietly().await });
        }
    }
}

impl fmt::Debug for PoolTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolTransaction")
            .field("connection", &self.conn)
            .field("aborted", &self.aborted)
            .finish()
    }
}

/// A binary `COPY … FROM STDIN` in progress, from
/// [`PoolTransaction::copy_in_binary`].
///
/// Each [`write`](Self::write) and the [`finish`](Self::finish) are bounded
/// by `pool.command_timeout`. Dropped before `finish`, the copy is abandoned
/// and its transaction aborted.
pub struct BinaryCopyIn<'t> {
    transaction: &'t mut PoolTransaction,
    writer: Pin<Box<BinaryCopyInWriter>>,
    columns: usize,
    statement: String,
    finished: bool,
}

impl BinaryCopyIn<'_> {
    /// Writes one row, one value per column type given at the start; a row
    /// of another length is refused with [`Error::CopyRowLength`] and leaves
    /// the copy as it was.
    pub async fn write(&mut self, row: &[&(dyn ToSql + Sync)]) -> Result<()> {
        if row.len() != self.columns {
            // The driver would panic on a row of the wrong length.
            return Err(Error::CopyRowLength {
                expected: self.columns,
                found: row.len(),
            });
        }
        let step = self.writer.as_mut().write(row);
        self.transaction.copy_step(&self.statement, step).await
    }

    /// Ends the copy and returns the number of rows copied.
    pub async fn finish(mut self) -> Result<u64> {
        let step = self.writer.as_mut().finish();
        let result = self.transaction.copy_step(&self.statement, step).await;
        // A copy that could not end is abandoned, as when dropped.
        self.finished = result.is_ok();
        result
    }
}

/// The start of a binary `COPY … FROM STDIN`, answered with the writer of
/// its rows, whose column types it holds.
struct CopyIn<'t>(&'t [Type]);

impl Request for CopyIn<'_> {
    type Output = BinaryCopyInWriter;

    async fn send(&self, sql: &str, client: &Client) -> Answer<BinaryCopyInWriter> {
        let sink = client.copy_in(sql).await?;
        Ok(Ok(BinaryCopyInWriter::new(sink, self.0)))
    }
}

impl Drop for BinaryCopyIn<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // The driver aborts the copy (CopyFail) when the writer drops,
            // which aborts the transaction on the server.
            self.transaction.aborted = true;
        }
    }
}

impl fmt::Debug for BinaryCopyIn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BinaryCopyIn")
            .field("statement", &self.statement)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
