#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Layout
//!
//! - `pool`: [`ConnectionPool`], built from the configuration
//!   sections without I/O; its lifecycle ([`connect`](ConnectionPool::connect),
//!   [`disconnect`](ConnectionPool::disconnect), health check), one-call
//!   statement methods (the reads retried on transient errors) and
//!   transactions.
//! - `connection`: [`PooledConnection`], one connection taken from the
//!   pool; every statement goes through it, bounded by the command timeout,
//!   and a connection that timed out or broke is discarded there.
//! - `call`: each statement call (`execute`, `fetch_one`, `fetch_optional`,
//!   `fetch_all`, `batch_execute`, …) written once: what it sends and what
//!   it makes of the answer. The pool, a connection and a transaction run
//!   the same calls, each with its own policy (retries, discarding, noting a
//!   failed transaction).
//! - `transaction`: [`PoolTransaction`], committed or rolled back as a
//!   whole, and [`BinaryCopyIn`], the binary `COPY … FROM STDIN` offered only
//!   inside a transaction.
//! - `row`: [`column()`], one typed column of a returned row, or an
//!   [`Error::Column`] naming it.
//! - `stats`: [`PoolStats`], the connections now and the counters since
//!   the pool was built.
//! - `error`: the [`Error`] of this crate, [`PoolErrorKind`] telling which
//!   deadpool step failed, and which errors are transient.
//! - `schema_files`: [`read_schema_dir`], the numbered SQL files of a schema
//!   folder ([`SchemaFile`]) listed, checked, ordered and checksummed, for
//!   the schema runner of `bigbrotr-brotr` and for the test databases alike.
//! - `setup`: the driver configuration (application name, connect timeout,
//!   keepalives), the deadpool pool and the retry policy.
//! - `tls`: [`tls_connector`], the rustls connector of every connection,
//!   following `database.sslmode` as libpq does ([`driver_ssl_mode`]), and
//!   the [`TlsProblem`] of a refused handshake.
//!
//! Statements and parameters come from [`tokio_postgres`], re-exported
//! together with the items callers need: [`Row`], [`ToSql`], [`Type`].

mod call;
mod connection;
mod error;
mod pool;
mod row;
mod schema_files;
mod setup;
mod stats;
mod tls;
mod transaction;

pub use connection::PooledConnection;
pub use error::{Error, PoolErrorKind, Result};
pub use pool::{BoxFuture, ConnectionPool};
pub use row::column;
pub use schema_files::{read_schema_dir, SchemaFile};
pub use setup::APPLICATION_NAME;
pub use stats::PoolStats;
pub use tls::{driver_ssl_mode, tls_connector, TlsConnector, TlsProblem};
pub use tokio_postgres;
pub use tokio_postgres::types::{ToSql, Type};
pub use tokio_postgres::Row;
pub use transaction::{BinaryCopyIn, PoolTransaction};

/// One statement parameter with its PostgreSQL type, as `query_typed` takes
/// it: `(&value, Type::INT8)`. Typing every parameter lets each statement
/// go out unnamed, in one round trip, which PgBouncer's transaction mode
/// needs.
pub type Param<'a> = (&'a (dyn ToSql + Sync), Type);
