//! The [`Error`] of this crate.

use std::time::Duration;

use bigbrotr_config::{Problem, ProblemList};

/// What can go wrong while setting the finder up, reading the database or
/// fetching an HTTP source. A relay URL that is refused is not an error: it
/// is counted by [`Rejection`](crate::Rejection) in the cycle's report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `finder` section is invalid.
    #[error("invalid finder configuration: {}", ProblemList(problems))]
    InvalidConfig {
        /// Every problem found, with its key path.
        problems: Vec<Problem>,
    },
    /// A query of the database failed, or a column of a row it returned
    /// could not be read ([`bigbrotr_pool::Error::Column`]).
    #[error("{what} failed")]
    Database {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: bigbrotr_pool::Error,
    },
    /// A source name returned by the database is not one the finder knows.
    #[error("{what}: unknown source `{source_name}`")]
    UnknownSource {
        /// What was being done.
        what: &'static str,
        /// The name returned.
        source_name: String,
    },
    /// An HTTP source could not be reached (the egress policy refusing
    /// one of its hops included: see
    /// [`bigbrotr_utils::Error::egress_denied`]), or its answer not read.
    #[error("HTTP source {url}: the request failed")]
    Http {
        /// The source.
        url: String,
        /// Why.
        #[source]
        source: bigbrotr_utils::Error,
    },
    /// An HTTP source answered with a status other than 2xx.
    #[error("HTTP source {url}: status {status}")]
    HttpStatus {
        /// The source.
        url: String,
        /// The status code.
        status: u16,
    },
    /// An HTTP source's answer is larger than `http_max_bytes`.
    #[error("HTTP source {url}: the answer is larger than {limit} bytes")]
    HttpTooLarge {
        /// The source.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// An HTTP source did not answer in time.
    #[error("HTTP source {url}: no complete answer within {after:?}")]
    HttpTimeout {
        /// The source.
        url: String,
        /// Its time limit.
        after: Duration,
    },
    /// An HTTP source's answer is not a JSON array.
    #[error("HTTP source {url}: the answer is not a JSON array")]
    HttpNotAList {
        /// The source.
        url: String,
        /// What the JSON parser said, when the answer is not JSON at all.
        #[source]
        source: Option<serde_json::Error>,
    },
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// [`Error::Database`] for `what`, to hand to `map_err`.
pub(crate) fn database(what: &'static str) -> impl Fn(bigbrotr_pool::Error) -> Error {
    move |source| Error::Database { what, source }
}
