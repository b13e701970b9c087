//! The statement calls, each written once: a [`Call`] says what one call
//! sends on a connection and what it makes of the answer.
//!
//! The pool, a connection and a transaction all run these same calls, each
//! its own way: a connection bounds, counts and settles them (discarding
//! itself when a call leaves it untrustworthy); a transaction runs them on
//! its connection and notes a failure; the pool takes a connection for each
//! attempt and retries where the method allows. Their statement methods are
//! one line each, naming the call.

use std::future::Future;

use tokio_postgres::{Client, Row};

use crate::Param;

/// A number of rows a call does not accept.
pub(crate) struct Miscount {
    /// What the call accepts: `exactly one` or `at most one`.
    pub(crate) expected: &'static str,
    /// How many rows came back.
    pub(crate) found: usize,
}

/// What the driver answered to a call: its error, or the call's output
/// unless the statement returned a number of rows the call refuses.
pub(crate) type Answer<T> = Result<Result<T, Miscount>, tokio_postgres::Error>;

/// How a call talks to the driver.
pub(crate) trait Request: Sync {
    /// What the call returns.
    type Output: Send;

    /// Sends `sql` on `client` and reads the answer.
    fn send(&self, sql: &str, client: &Client)
        -> impl Future<Output = Answer<Self::Output>> + Send;
}

/// One call: its name, its statement and how it is sent.
pub(crate) struct Call<'a, R> {
    /// The operation, as errors name it: `execute`, `fetch_one`, `COMMIT`, …
    pub(crate) what: &'static str,
    /// The statement or script.
    pub(crate) sql: &'a str,
    /// How it is sent.
    pub(crate) request: R,
}

/// One statement, answered with the number of rows it affected.
pub(crate) struct Execute<'a, 'p>(&'a [Param<'p>]);

impl Request for Execute<'_, '_> {
    type Output = u64;

    async fn send(&self, sql: &str, client: &Client) -> Answer<u64> {
        client.execute_typed(sql, self.0).await.map(Ok)
    }
}

/// A query, answered with its rows, which `take` checks and shapes.
pub(crate) struct Query<'a, 'p, T> {
    params: &'a [Param<'p>],
    take: fn(Vec<Row>) -> Result<T, Miscount>,
}

impl<T: Send> Request for Query<'_, '_, T> {
    type Output = T;

    async fn send(&self, sql: &str, client: &Client) -> Answer<T> {
        let rows = client.query_typed(sql, self.params).await?;
        Ok((self.take)(rows))
    }
}

/// A query in a transaction of its own whose statements the server cancels
/// past a limit: `BEGIN; SET LOCAL statement_timeout`, the query and
/// `COMMIT` are sent together (the driver pipelines requests polled at
/// once), one round trip for the three. A query that fails leaves the
/// transaction aborted, and the `COMMIT` then ends it (as a rollback).
pub(crate) struct BoundedQuery<'a, 'p> {
    params: &'a [Param<'p>],
    begin: String,
}

impl Request for BoundedQuery<'_, '_> {
    type Output = Vec<Row>;

    async fn send(&self, sql: &str, client: &Client) -> Answer<Vec<Row>> {
        let (begun, rows, committed) = tokio::join!(
            client.batch_execute(&self.begin),
            client.query_typed(sql, self.params),
            client.batch_execute("COMMIT"),
        );
        begun?;
        let rows = rows?;
        committed?;
        Ok(Ok(rows))
    }
}

/// `fetch_all_within`: a query and all its rows, in a transaction of its
/// own whose `statement_timeout` is `limit`.
pub(crate) fn fetch_all_within<'a, 'p>(
    limit: std::time::Duration,
    sql: &'a str,
    params: &'a [Param<'p>],
) -> Call<'a, BoundedQuery<'a, 'p>> {
    Call {
        what: "fetch_all_within",
        sql,
        request: BoundedQuery {
            params,
            begin: begin_within(limit),
        },
    }
}

/// `BEGIN` and the transaction's `statement_timeout`, as one script.
pub(crate) fn begin_within(limit: std::time::Duration) -> String {
    let millis = limit.as_millis().max(1);
    format!("BEGIN; SET LOCAL statement_timeout = {millis}")
}

/// A script of statements separated by `;`, sent with the simple protocol.
pub(crate) struct Script;

impl Request for Script {
    type Output = ();

    async fn send(&self, sql: &str, client: &Client) -> Answer<()> {
        client.batch_execute(sql).await.map(Ok)
    }
}

/// `execute`: one statement, the number of rows it affected.
pub(crate) fn execute<'a, 'p>(sql: &'a str, params: &'a [Param<'p>]) -> Call<'a, Execute<'a, 'p>> {
    let request = Execute(params);
    Call {
        what: "execute",
        sql,
        request,
    }
}

/// `fetch_one`: a query that must return exactly one row.
pub(crate) fn fetch_one<'a, 'p>(
    sql: &'a str,
    params: &'a [Param<'p>],
) -> Call<'a, Query<'a, 'p, Row>> {
    query("fetch_one", sql, params, exactly_one)
}

/// `fetch_optional`: a query that must return at most one row.
pub(crate) fn fetch_optional<'a, 'p>(
    sql: &'a str,
    params: &'a [Param<'p>],
) -> Call<'a, Query<'a, 'p, Option<Row>>> {
    query("fetch_optional", sql, params, at_most_one)
}

/// A query returning all its rows, as call `what` (`fetch_all`, or the
/// `SELECT 1` of a health check).
pub(crate) fn fetch_all<'a, 'p>(
    what: &'static str,
    sql: &'a str,
    params: &'a [Param<'p>],
) -> Call<'a, Query<'a, 'p, Vec<Row>>> {
    query(what, sql, params, Ok)
}

/// A script, as call `what` (`batch_execute`, `BEGIN`, `COMMIT`, …).
pub(crate) fn script<'a>(what: &'static str, sql: &'a str) -> Call<'a, Script> {
    Call {
        what,
        sql,
        request: Script,
    }
}

fn query<'a, 'p, T>(
    what: &'static str,
    sql: &'a str,
    params: &'a [Param<'p>],
    take: fn(Vec<Row>) -> Result<T, Miscount>,
) -> Call<'a, Query<'a, 'p, T>> {
    let request = Query { params, take };
    Call { what, sql, request }
}

fn exactly_one(rows: Vec<Row>) -> Result<Row, Miscount> {
    let found = rows.len();
    match at_most_one(rows) {
        Ok(Some(row)) => Ok(row),
        Ok(None) | Err(_) => Err(Miscount {
            expected: "exactly one",
            found,
        }),
    }
}

fn at_most_one(rows: Vec<Row>) -> Result<Option<Row>, Miscount> {
    if rows.len() > 1 {
        return Err(Miscount {
            expected: "at most one",
            found: rows.len(),
        });
    }
    Ok(rows.into_iter().next())
}
