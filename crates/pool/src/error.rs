//! The error type of this crate, and how errors are classified: whether the
//! connection they happened on must be discarded, and whether trying again
//! may help.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bigbrotr_config::{Problem, ProblemList, SslMode};
use deadpool_postgres::{PoolError, TimeoutType};

use crate::tls::TlsProblem;

/// Everything that can go wrong while pooling connections and running
/// statements, or reading the SQL files of a schema folder.
///
/// [`Error::is_transient`] tells the errors worth retrying (the connection or
/// the server went away) from the others (SQL errors, timeouts, a closed
/// pool).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration sections failed validation; each problem names the
    /// offending key.
    #[error("invalid pool configuration: {}", ProblemList(problems))]
    InvalidConfig {
        /// What is wrong, one entry per offending key.
        problems: Vec<Problem>,
    },

    /// The underlying deadpool pool could not be built.
    #[error("could not build the connection pool")]
    Build {
        /// What deadpool said.
        #[source]
        source: deadpool_postgres::BuildError,
    },

    /// A new connection could not be opened. Never shows the password.
    #[error("could not connect to database `{database}` at {host}:{port}")]
    Connect {
        /// Host of the server (or of PgBouncer).
        host: String,
        /// TCP port.
        port: u16,
        /// Database name.
        database: String,
        /// What the driver said.
        #[source]
        source: tokio_postgres::Error,
    },

    /// A new connection failed in its TLS handshake: the server's
    /// certificate was refused, or no TLS could be agreed on. Never
    /// transient: trying again meets the same certificate.
    #[error("could not connect to database `{database}` at {host}:{port} with sslmode {}: {problem}", sslmode.as_str())]
    Tls {
        /// Host of the server (or of PgBouncer).
        host: String,
        /// TCP port.
        port: u16,
        /// Database name.
        database: String,
        /// The configured `database.sslmode`.
        sslmode: SslMode,
        /// What was wrong, read from rustls's error.
        problem: TlsProblem,
        /// What the driver said; rustls's error is in its chain.
        #[source]
        source: tokio_postgres::Error,
    },

    /// `database.sslrootcert` could not be read as PEM.
    #[error("could not read the root certificates of {}", path.display())]
    ReadRootCertificate {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::pki_types::pem::Error,
    },

    /// `database.sslrootcert` holds no certificate.
    #[error("{} holds no PEM certificate", path.display())]
    NoRootCertificate {
        /// The file.
        path: PathBuf,
    },

    /// A certificate of `database.sslrootcert` cannot serve as a root.
    #[error("a certificate of {} cannot serve as a root", path.display())]
    InvalidRootCertificate {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },

    /// rustls refused the TLS client configuration.
    #[error("could not set TLS up")]
    TlsConfig {
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },

    /// No connection could be taken from the pool; [`PoolErrorKind`] says
    /// which of deadpool's steps failed.
    #[error("could not get a connection from the pool: {kind}")]
    Pool {
        /// Which step failed, and after how long for timeouts.
        kind: PoolErrorKind,
        /// What deadpool said.
        #[source]
        source: PoolError,
    },

    /// A statement failed: an SQL error reported by the server, or the
    /// connection broke while it ran.
    #[error("{what} failed: {statement}")]
    Query {
        /// The operation: `execute`, `fetch_all`, `COMMIT`, `COPY`, …
        what: &'static str,
        /// The start of the statement, on one line.
        statement: String,
        /// What the driver said; [`tokio_postgres::Error::code`] gives the
        /// SQLSTATE of server errors.
        #[source]
        source: tokio_postgres::Error,
    },

    /// A column of a returned row could not be read by
    /// [`column()`](crate::column()) as the type asked for: the row has no
    /// such column, or its value is of another type, or NULL where no NULL
    /// is accepted.
    #[error("{what}: column `{column}` could not be read")]
    Column {
        /// What was being done: the procedure, or the step reading the row.
        what: &'static str,
        /// The column.
        column: &'static str,
        /// What the driver said.
        #[source]
        source: tokio_postgres::Error,
    },

    /// A call did not finish within its time limit; its connection was
    /// discarded and the statement cancelled.
    #[error("{what} did not finish within {after:?}")]
    Timeout {
        /// The operation that was cut off.
        what: &'static str,
        /// The time limit.
        after: Duration,
    },

    /// A statement returned a number of rows the method does not accept
    /// (none for `fetch_one`, more than one for `fetch_one` or
    /// `fetch_optional`).
    #[error("{what} expected {expected} row, got {found}: {statement}")]
    RowCount {
        /// The method.
        what: &'static str,
        /// The start of the statement, on one line.
        statement: String,
        /// What the method accepts: `exactly one` or `at most one`.
        expected: &'static str,
        /// How many rows came back.
        found: usize,
    },

    /// A `COPY` row has a different number of values than the copy has
    /// columns; nothing of the row was written.
    #[error("a COPY row has {found} values but the copy has {expected} columns")]
    CopyRowLength {
        /// The number of column types the copy was started with.
        expected: usize,
        /// The number of values in the row.
        found: usize,
    },

    /// A statement of the transaction failed earlier, so the database rolled
    /// it back instead of committing it.
    #[error("the transaction was rolled back because one of its statements failed")]
    TransactionAborted,

    /// The connection was discarded after an earlier failure on it (a
    /// timeout, a broken connection, a call cancelled half-way); take
    /// another one.
    #[error("{what} on a connection that was discarded after an earlier failure")]
    Discarded {
        /// The operation that was refused.
        what: &'static str,
    },

    /// The pool is closed: [`ConnectionPool::disconnect`] was called.
    ///
    /// [`ConnectionPool::disconnect`]: crate::ConnectionPool::disconnect
    #[error("the connection pool is closed")]
    Closed,

    /// The schema folder or one of its files could not be read.
    #[error("could not read {}", path.display())]
    ReadSchema {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The schema folder holds no `NNN_name.sql` file.
    #[error("{} holds no NNN_name.sql file", dir.display())]
    SchemaEmpty {
        /// The folder.
        dir: PathBuf,
    },

    /// A `.sql` file of the schema folder is not named `NNN_name.sql`
    /// (at least three digits, from 001, then `_`, then letters, digits,
    /// `_` or `-`).
    #[error("{} is not named NNN_name.sql", file.display())]
    SchemaFileName {
        /// The file.
        file: PathBuf,
    },

    /// Two files of the schema folder have the same version.
    #[error("{} and {} both have version {version}", first.display(), second.display())]
    SchemaDuplicateVersion {
        /// The version.
        version: i32,
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },

    /// The versions of the schema files do not run 1, 2, 3, … without a gap.
    #[error("schema version {expected} is missing: the next file is {}", found.display())]
    SchemaVersionGap {
        /// The version that should come next.
        expected: i32,
        /// The file found in its place.
        found: PathBuf,
    },

    /// The database stayed unreachable through every configured attempt;
    /// `source` is the error of the last one.
    #[error("database unavailable after {attempts} attempt(s)")]
    Unavailable {
        /// Attempts made, the first included.
        attempts: u32,
        /// The error of the last attempt.
        #[source]
        source: Box<Error>,
    },
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which step of taking a connection from the pool failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolErrorKind {
    /// Every connection stayed busy for the whole wait (`pool.timeout`).
    WaitTimeout {
        /// The configured wait.
        after: Duration,
    },
    /// Opening a new connection took longer than `pool.timeout`.
    CreateTimeout {
        /// The configured limit.
        after: Duration,
    },
    /// Checking an idle connection before handing it out took longer than
    /// `pool.timeout`.
    RecycleTimeout {
        /// The configured limit.
        after: Duration,
    },
    /// Anything else deadpool reports (a hook, a missing runtime).
    Other,
}

impl fmt::Display for PoolErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WaitTimeout { after } => {
                write!(f, "no connection became free within {after:?}")
            }
            Self::CreateTimeout { after } => {
                write!(f, "opening a connection took longer than {after:?}")
            }
            Self::RecycleTimeout { after } => {
                write!(f, "checking an idle connection took longer than {after:?}")
            }
            Self::Other => f.write_str("deadpool failed"),
        }
    }
}

impl Error {
    /// Whether trying again may succeed: the connection broke, the server (or
    /// PgBouncer) could not be reached or is restarting, or opening a
    /// connection timed out. SQL errors (a unique violation, a syntax
    /// error), statement timeouts, a pool exhausted by busy connections and
    /// a closed pool are not transient.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { source, .. } | Self::Query { source, .. } => is_transient_pg(source),
            Self::Pool { kind, .. } => matches!(
                kind,
                PoolErrorKind::CreateTimeout { .. } | PoolErrorKind::RecycleTimeout { .. }
            ),
            Self::Unavailable { .. } => true,
            _ => false,
        }
    }

    /// Whether no connection became free within the wait timeout because
    /// every connection was busy.
    #[must_use]
    pub fn is_wait_timeout(&self) -> bool {
        matches!(
            self,
            Self::Pool {
                kind: PoolErrorKind::WaitTimeout { .. },
                ..
            }
        )
    }

    /// The SQLSTATE code reported by the server, when the error is a server
    /// error (directly, or as the last attempt of [`Error::Unavailable`]).
    #[must_use]
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            Self::Connect { source, .. } | Self::Query { source, .. } => source.code(),
            Self::Unavailable { source, .. } => source.code(),
            _ => None,
        }
    }
}

/// Maps a deadpool error to ours, keeping which timeout fired. `timeout` is
/// the configured `pool.timeout`, used for all three deadpool timeouts.
pub(crate) fn from_pool_error(
    error: PoolError,
    timeout: Duration,
    target: &crate::setup::Target,
) -> Error {
    match error {
        PoolError::Backend(source) => target.connect_error(source),
        PoolError::Closed => Error::Closed,
        PoolError::Timeout(timeout_type) => Error::Pool {
            kind: match timeout_type {
                TimeoutType::Wait => PoolErrorKind::WaitTimeout { after: timeout },
                TimeoutType::Create => PoolErrorKind::CreateTimeout { after: timeout },
                TimeoutType::Recycle => PoolErrorKind::RecycleTimeout { after: timeout },
            },
            source: PoolError::Timeout(timeout_type),
        },
        other => Error::Pool {
            kind: PoolErrorKind::Other,
            source: other,
        },
    }
}

/// Whether a driver error means the connection can no longer be trusted: it
/// closed, an I/O error or a protocol error happened (anything that is not
/// an error reported by the server), or the server reported a connection
/// exception or a shutdown. Such a connection is discarded, never handed out
/// again.
pub(crate) fn breaks_connection(error: &tokio_postgres::Error) -> bool {
    match error.as_db_error() {
        None => true,
        Some(db) => is_connection_state(db.code().code()),
    }
}

/// Whether a driver error is worth retrying on another connection: the
/// connection closed or failed at the I/O level, or the server reported a
/// connection exception, a shutdown or too many connections.
fn is_transient_pg(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() || has_io_source(error) {
        return true;
    }
    match error.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            (is_connection_state(code) || code == "53300") && !is_failed_login(code, db.message())
        }
        None => false,
    }
}

/// PgBouncer reports a rejected login with SQLSTATE 08P01, like its
/// transient errors; only the message tells it apart. Trying again with the
/// same credentials cannot help.
fn is_failed_login(code: &str, message: &str) -> bool {
    code == "08P01" && message.contains("authentication failed")
}

/// SQLSTATE class 08 (connection exception, also what PgBouncer reports when
/// it cannot reach the server) and 57P01–57P03 (the server is shutting
/// down, crashed or is starting up).
fn is_connection_state(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

fn has_io_source(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<std::io::Error>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// The start of a statement on one line, for error messages and spans:
/// whitespace runs become one space, and text past 120 characters becomes `…`.
pub(crate) fn excerpt(sql: &str) -> String {
    const MAX_CHARS: usize = 120;
    let mut out = String::with_capacity(sql.len().min(MAX_CHARS + 3));
    let mut chars = 0;
    for word in sql.split_whitespace() {
        if chars > 0 {
            if chars >= MAX_CHARS {
                out.push('…');
                return out;
            }
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= MAX_CHARS {
                out.push('…');
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::setup::Target;

    fn target() -> Target {
        Target {
            host: "db.example".to_owned(),
            port: 6432,
            database: "archive".to_owned(),
            sslmode: bigbrotr_config::SslMode::Disable,
        }
    }

    #[test]
    fn each_deadpool_timeout_keeps_its_kind_and_the_configured_duration() {
        let after = Duration::from_millis(250);
        let cases = [
            (TimeoutType::Wait, PoolErrorKind::WaitTimeout { after }),
            (TimeoutType::Create, PoolErrorKind::CreateTimeout { after }),
            (
                TimeoutType::Recycle,
                PoolErrorKind::RecycleTimeout { after },
            ),
        ];
        for (timeout, expected) in cases {
            let error = from_pool_error(PoolError::Timeout(timeout), after, &target());
            match &error {
                Error::Pool { kind, source } => {
                    assert_eq!(*kind, expected);
                    assert!(
                        matches!(source, PoolError::Timeout(t) if std::mem::discriminant(t) == std::mem::discriminant(&timeout))
                    );
                }
                other => panic!("expected Pool, got {other:?}"),
            }
            assert!(error.source().is_some());
        }
    }

    #[test]
    fn only_a_wait_timeout_is_a_wait_timeout_and_it_is_not_transient() {
        let after = Duration::from_secs(1);
        let wait = from_pool_error(PoolError::Timeout(TimeoutType::Wait), after, &target());
        let create = from_pool_error(PoolError::Timeout(TimeoutType::Create), after, &target());
        assert!(wait.is_wait_timeout());
        assert!(!wait.is_transient());
        assert!(!create.is_wait_timeout());
        assert!(create.is_transient());
        assert_eq!(
            wait.to_string(),
            "could not get a connection from the pool: no connection became free within 1s"
        );
    }

    #[test]
    fn a_closed_deadpool_pool_is_our_closed_error() {
        let error = from_pool_error(PoolError::Closed, Duration::from_secs(1), &target());
        assert!(matches!(error, Error::Closed));
        assert!(!error.is_transient());
    }

    #[test]
    fn timeouts_closed_pools_and_row_counts_are_not_transient() {
        let errors = [
            Error::Timeout {
                what: "fetch_all",
                after: Duration::from_millis(200),
            },
            Error::Closed,
            Error::TransactionAborted,
            Error::Discarded { what: "execute" },
            Error::RowCount {
                what: "fetch_one",
                statement: "SELECT 1".to_owned(),
                expected: "exactly one",
                found: 0,
            },
        ];
        for error in errors {
            assert!(!error.is_transient(), "{error:?}");
            assert!(error.code().is_none());
        }
    }

    #[test]
    fn an_unavailable_error_is_transient_and_keeps_the_last_error_as_source() {
        let error = Error::Unavailable {
            attempts: 3,
            source: Box::new(Error::Closed),
        };
        assert!(error.is_transient());
        assert_eq!(error.to_string(), "database unavailable after 3 attempt(s)");
        assert_eq!(
            error.source().map(ToString::to_string).as_deref(),
            Some("the connection pool is closed")
        );
    }

    #[test]
    fn connection_exceptions_and_shutdowns_are_connection_states() {
        for code in [
            "08000", "08003", "08006", "08001", "08P01", "57P01", "57P02", "57P03",
        ] {
            assert!(is_connection_state(code), "{code}");
        }
        for code in ["23505", "42601", "40001", "57014", "25P02", "53300"] {
            assert!(!is_connection_state(code), "{code}");
        }
    }

    #[test]
    fn a_login_rejected_by_pgbouncer_is_a_failed_login() {
        assert!(is_failed_login("08P01", "SASL authentication failed"));
        assert!(is_failed_login(
            "08P01",
            "password authentication failed for user \"x\""
        ));
        assert!(!is_failed_login(
            "08P01",
            "server login has been failing, try again later"
        ));
        assert!(!is_failed_login("08006", "authentication failed"));
    }

    #[test]
    fn an_io_error_anywhere_in_the_chain_is_found() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        assert!(has_io_source(&Outer(std::io::Error::other("reset"))));
        assert!(!has_io_source(&Error::Closed));
    }

    #[test]
    fn the_excerpt_is_one_line_and_at_most_120_characters() {
        assert_eq!(
            excerpt("  SELECT id\n\t FROM   event\nWHERE x = $1 "),
            "SELECT id FROM event WHERE x = $1"
        );
        assert_eq!(excerpt(""), "");
        let long = "x".repeat(500);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), 121);
        assert!(cut.ends_with('…'));
        let words = "ab ".repeat(100);
        let cut = excerpt(&words);
        assert!(cut.chars().count() <= 121);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt(&"é".repeat(120)), "é".repeat(120));
    }

    #[test]
    fn invalid_config_lists_every_problem() {
        let error = Error::InvalidConfig {
            problems: vec![
                Problem::new("pool.max_size", "must be ≥ 1"),
                Problem::new("retry.max_attempts", "must be ≥ 1"),
            ],
        };
        assert_eq!(
            error.to_string(),
            "invalid pool configuration: pool.max_size: must be ≥ 1; retry.max_attempts: must be ≥ 1"
        );
    }
}
