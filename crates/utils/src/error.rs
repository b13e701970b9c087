//! The error types of this crate.
//!
//! [`Error`] covers every fallible helper. [`RetryError`] is separate because
//! it wraps the caller's own error type, which this crate cannot know.

/// Everything that can go wrong in the helpers of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A string is neither an RFC 3339 date-time nor a `YYYY-MM-DD` date.
    #[error("`{input}` is neither an RFC 3339 date-time nor a YYYY-MM-DD date")]
    InvalidDateTime {
        /// The string as given.
        input: String,
        /// What the parser said.
        #[source]
        source: time::error::Parse,
    },

    /// A relay URL could not be turned into a NIP-11 HTTP URL.
    #[error("`{url}` is not a usable relay URL")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        #[source]
        reason: InvalidUrlReason,
    },

    /// A value could not be represented as JSON, for example a map whose
    /// keys are not strings.
    #[error("value cannot be represented as JSON")]
    Json {
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },

    /// A [`RetryPolicy`](crate::retry::RetryPolicy) was given inconsistent settings.
    #[error("invalid retry policy: `{field}` {reason}")]
    InvalidRetryPolicy {
        /// The offending setting.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The HTTP client could not be set up (for example the TLS backend failed
    /// to initialise); this is a local problem, not the remote host's.
    #[error("could not build the HTTP client")]
    HttpClient {
        /// What reqwest said.
        #[source]
        source: reqwest::Error,
    },

    /// The egress policy refuses an address `host` resolved to (or is): no
    /// connection was attempted.
    #[error("refused to connect to `{host}`")]
    EgressDenied {
        /// The host as given: a name or an IP address.
        host: String,
        /// Which address was refused, and why.
        #[source]
        denied: crate::egress::Denied,
    },

    /// A host name could not be resolved.
    #[error("could not resolve `{host}`")]
    Resolve {
        /// The name.
        host: String,
        /// What the resolver said.
        #[source]
        source: std::io::Error,
    },

    /// A host name resolved to no address at all.
    #[error("`{host}` has no address")]
    NoAddress {
        /// The name.
        host: String,
    },

    /// A TCP connection to a checked address failed.
    #[error("could not connect to {addr}")]
    Connect {
        /// The address tried last.
        addr: std::net::SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// Resolving and connecting took longer than allowed.
    #[error("no connection to `{host}` within {} ms", after.as_millis())]
    ConnectTimeout {
        /// The host as given.
        host: String,
        /// The time allowed.
        after: std::time::Duration,
    },

    /// An HTTP request through the egress policy did not complete within
    /// its time limit, redirects included.
    #[error("no answer from {url} within {} ms", after.as_millis())]
    HttpTimeout {
        /// The URL first requested.
        url: String,
        /// The time allowed.
        after: std::time::Duration,
    },

    /// An HTTP request failed.
    #[error("request to {url} failed")]
    Http {
        /// The URL of the failing hop.
        url: String,
        /// What reqwest said.
        #[source]
        source: reqwest::Error,
    },

    /// A redirect was not followed.
    #[error("redirect from {url} not followed: {reason}")]
    Redirect {
        /// The URL that redirected.
        url: String,
        /// Why it was not followed.
        reason: RedirectRefusal,
    },

    /// An answer was larger than allowed.
    #[error("the answer of {url} is larger than {limit} bytes")]
    TooLarge {
        /// The URL that answered.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
}

impl Error {
    /// The refusal of the egress policy, when this is one.
    #[must_use]
    pub fn egress_denied(&self) -> Option<&crate::egress::Denied> {
        match self {
            Self::EgressDenied { denied, .. } => Some(denied),
            _ => None,
        }
    }
}

/// Why a redirect was not followed; see [`Error::Redirect`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectRefusal {
    /// More redirects than allowed.
    #[error("more than {0} redirects")]
    TooMany(usize),
    /// From `https` to `http`: the answer would no longer be protected.
    #[error("it goes from https to http")]
    Downgrade,
    /// The `Location` is missing, not a URL, or not `http`/`https`.
    #[error("its Location `{0}` is not an http or https URL")]
    BadLocation(String),
}

/// Why a relay URL was refused; the source of [`Error::InvalidUrl`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidUrlReason {
    /// The string is not a URL at all.
    #[error("it cannot be parsed as a URL")]
    Parse(#[source] url::ParseError),

    /// The scheme is not `ws`, `wss`, `http` or `https`.
    #[error("scheme `{0}` is not ws, wss, http or https")]
    UnsupportedScheme(String),

    /// The URL has no host to connect to.
    #[error("it has no host")]
    MissingHost,
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How [`retry`](crate::retry::retry) gave up: the last error of the operation
/// and the number of attempts made, including the failing one.
///
/// The operation's error stays the [`source`](std::error::Error::source) so its
/// whole chain is still visible.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetryError<E> {
    /// The operation failed with an error the predicate called not retryable.
    #[error("operation failed with a non-retryable error on attempt {attempts}")]
    Permanent {
        /// Attempts made, the failing one included.
        attempts: u32,
        /// The error of the last attempt.
        #[source]
        source: E,
    },

    /// Every allowed attempt failed with a retryable error.
    #[error("operation still failed after {attempts} attempts")]
    Exhausted {
        /// Attempts made, equal to the policy's maximum.
        attempts: u32,
        /// The error of the last attempt.
        #[source]
        source: E,
    },
}

impl<E> RetryError<E> {
    /// Attempts made, the failing one included.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Permanent { attempts, .. } | Self::Exhausted { attempts, .. } => *attempts,
        }
    }

    /// The error of the last attempt.
    #[must_use]
    pub fn last_error(&self) -> &E {
        match self {
            Self::Permanent { source, .. } | Self::Exhausted { source, .. } => source,
        }
    }

    /// Unwraps the error of the last attempt.
    #[must_use]
    pub fn into_inner(self) -> E {
        match self {
            Self::Permanent { source, .. } | Self::Exhausted { source, .. } => source,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[derive(Debug, thiserror::Error, PartialEq)]
    #[error("boom")]
    struct Boom;

    #[test]
    fn retry_error_accessors_return_attempts_and_last_error() {
        let permanent = RetryError::Permanent {
            attempts: 2,
            source: Boom,
        };
        assert_eq!(permanent.attempts(), 2);
        assert_eq!(permanent.last_error(), &Boom);
        assert_eq!(permanent.into_inner(), Boom);

        let exhausted = RetryError::Exhausted {
            attempts: 5,
            source: Boom,
        };
        assert_eq!(exhausted.attempts(), 5);
        assert_eq!(exhausted.last_error(), &Boom);
        assert_eq!(exhausted.into_inner(), Boom);
    }

    #[test]
    fn retry_error_keeps_the_operation_error_as_source() {
        let err = RetryError::Exhausted {
            attempts: 3,
            source: Boom,
        };
        assert_eq!(err.to_string(), "operation still failed after 3 attempts");
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("boom")
        );

        let err = RetryError::Permanent {
            attempts: 1,
            source: Boom,
        };
        assert_eq!(
            err.to_string(),
            "operation failed with a non-retryable error on attempt 1"
        );
    }

    #[test]
    fn invalid_url_keeps_its_reason_as_source() {
        let err = Error::InvalidUrl {
            url: "ftp://x".to_owned(),
            reason: InvalidUrlReason::UnsupportedScheme("ftp".to_owned()),
        };
        assert_eq!(err.to_string(), "`ftp://x` is not a usable relay URL");
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("scheme `ftp` is not ws, wss, http or https")
        );
    }
}
