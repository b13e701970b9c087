//! The [`Error`] of the archive relay.

use std::net::SocketAddr;

/// What can go wrong in the archive relay outside one connection: a
/// connection's own trouble is answered on it (`CLOSED`, `NOTICE`) or ends
/// it, and is never an error of the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be opened.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address in `relay.listen`.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A query of the archive failed.
    #[error("{what} failed")]
    Database {
        /// The query: `relay_serves_events`, `events`, `count`, …
        what: &'static str,
        /// What the pool said.
        #[source]
        source: bigbrotr_pool::Error,
    },
    /// A stored event could not be written as an event.
    #[error("stored event {id} cannot be served: {reason}")]
    BadRow {
        /// Its id, hex.
        id: String,
        /// Which column is wrong.
        reason: String,
    },
}

impl Error {
    /// Whether the database cancelled the query for running past
    /// `relay.query_timeout`.
    #[must_use]
    pub fn is_query_timeout(&self) -> bool {
        matches!(self, Self::Database { source, .. }
            if source.code() == Some(&bigbrotr_pool::tokio_postgres::error::SqlState::QUERY_CANCELED)
                || matches!(source, bigbrotr_pool::Error::Timeout { .. }))
    }
}

/// The result of the archive relay's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps a pool error of the query `what` to [`Error::Database`].
pub(crate) fn database(what: &'static str) -> impl FnOnce(bigbrotr_pool::Error) -> Error {
    move |source| Error::Database { what, source }
}
