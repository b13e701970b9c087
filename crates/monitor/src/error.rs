//! The [`Error`] of this crate.

use bigbrotr_config::{Problem, ProblemList};

/// What can go wrong while setting the monitor up or publishing its
/// results. Checks themselves never fail: what a relay did wrong is part of
/// their [`RelayCheck`](crate::RelayCheck).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `monitor` section is invalid.
    #[error("invalid monitor configuration: {}", ProblemList(problems))]
    InvalidConfig {
        /// Every problem found, with its key path.
        problems: Vec<Problem>,
    },
    /// An HTTP client for NIP-11 documents could not be built.
    #[error("could not build the HTTP client for {what}")]
    HttpClient {
        /// Which client: `clearnet` or `tor`.
        what: &'static str,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// An event could not be built or signed.
    #[error("could not sign the {what} event")]
    Sign {
        /// Which event.
        what: &'static str,
        /// Why.
        #[source]
        source: nostr::event::builder::Error,
    },
    /// The proof of work a relay asks for was not mined in time.
    #[error("proof of work of difficulty {difficulty} not mined within {} ms", within.as_millis())]
    PowTimeout {
        /// The difficulty asked for, in bits.
        difficulty: u8,
        /// The time mining was given (`timeouts.pow`).
        within: std::time::Duration,
    },
    /// Mining proof of work was stopped: the check was abandoned.
    #[error("proof of work of difficulty {difficulty} not mined: the check was abandoned")]
    PowCancelled {
        /// The difficulty asked for, in bits.
        difficulty: u8,
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
    /// A relay of the database is on a network the monitor does not know.
    #[error("relay {url} is on an unknown network")]
    UnknownNetwork {
        /// The relay.
        url: String,
        /// The network.
        #[source]
        source: bigbrotr_brotr::UnknownNetwork,
    },
    /// A relay to publish to could not be added.
    #[error("could not add the relay {url} to publish to")]
    PublishRelay {
        /// The relay.
        url: String,
        /// Why.
        #[source]
        source: nostr_sdk::client::Error,
    },
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// [`Error::Database`] for `what`, to hand to `map_err`.
pub(crate) fn database(what: &'static str) -> impl Fn(bigbrotr_pool::Error) -> Error {
    move |source| Error::Database { what, source }
}
