//! The error type of this crate.

use std::net::SocketAddr;

/// Everything that can go wrong while setting services up, running them and
/// shutting them down. What a service itself fails with is not here: it is
/// an [`anyhow::Error`] reported in the service's
/// [`ServiceStatus`](crate::ServiceStatus) and the [`RunReport`](crate::RunReport).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration file could not be loaded; the source names the file
    /// and every key with a problem.
    #[error("could not load the configuration of {what}")]
    Config {
        /// Which configuration: `service \`initializer\``, `the pool`, …
        what: String,
        /// Why.
        #[source]
        source: bigbrotr_config::Error,
    },

    /// The environment variable meant to hold a service's secret key holds
    /// something else. The value is never shown.
    #[error("the environment variable {variable} does not hold a valid secret key (hex or nsec)")]
    InvalidKey {
        /// The name of the variable.
        variable: String,
        /// Why the value was refused.
        #[source]
        source: nostr_sdk::nostr::key::Error,
    },

    /// Logging could not be set up.
    #[error("could not set up logging")]
    Logging {
        /// Why.
        #[source]
        source: bigbrotr_logging::Error,
    },

    /// The connection pool could not be built or connected.
    #[error("could not {what}")]
    Pool {
        /// What was being done: `set up the connection pool`, …
        what: String,
        /// Why.
        #[source]
        source: bigbrotr_pool::Error,
    },

    /// The archive could not be set up over the pool.
    #[error("could not set up the archive")]
    Brotr {
        /// Why.
        #[source]
        source: bigbrotr_brotr::Error,
    },

    /// The HTTP endpoint could not listen on its address.
    #[error("could not listen on {address} for /health, /status and /metrics")]
    Bind {
        /// The address of `runtime.http.listen`.
        address: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A connection was refused by the egress policy, or could not be made
    /// to the checked addresses.
    #[error("could not connect")]
    Egress {
        /// Why: [`bigbrotr_utils::Error::egress_denied`] tells a refusal
        /// of the policy.
        #[source]
        source: bigbrotr_utils::Error,
    },

    /// A WebSocket connection could not be opened over a checked TCP
    /// connection.
    #[error("WebSocket connection to {url} failed: {reason}")]
    WebSocket {
        /// The relay's URL.
        url: String,
        /// What the handshake (or the clock) said.
        reason: String,
    },

    /// The handlers of SIGINT and SIGTERM could not be installed.
    #[error("could not install the handlers of SIGINT and SIGTERM")]
    Signals {
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A service name is not in the registry.
    #[error("unknown service `{name}`; known services: {}", known.join(", "))]
    UnknownService {
        /// The name as given.
        name: String,
        /// The names the registry knows, sorted.
        known: Vec<&'static str>,
    },

    /// No service was named.
    #[error("no service to run; known services: {}", known.join(", "))]
    NoService {
        /// The names the registry knows, sorted.
        known: Vec<&'static str>,
    },

    /// A second SIGINT or SIGTERM arrived while shutting down: the process
    /// should exit at once, without waiting for anything else.
    #[error("a second signal arrived during shutdown: exiting at once")]
    Interrupted,
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_service_lists_the_known_ones() {
        let error = Error::UnknownService {
            name: "finder".into(),
            known: vec!["initializer", "monitor"],
        };
        assert_eq!(
            error.to_string(),
            "unknown service `finder`; known services: initializer, monitor"
        );
    }
}
