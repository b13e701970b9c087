//! Errors logged with their causes.

use std::error::Error as StdError;
use std::fmt;

/// How many causes [`ErrorChain`] follows before it stops, in case a chain
/// loops back on itself.
const MAX_CAUSES: usize = 32;

/// Displays an error followed by its causes: `outer: middle: inner`.
///
/// ```
/// use bigbrotr_logging::ErrorChain;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("could not connect")]
/// struct Connect {
///     source: std::io::Error,
/// }
///
/// let error = Connect { source: std::io::Error::other("timed out") };
/// assert_eq!(ErrorChain::new(&error).to_string(), "could not connect: timed out");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(&'a (dyn StdError + 'static));

impl<'a> ErrorChain<'a> {
    /// The chain starting at `error`.
    #[must_use]
    pub fn new(error: &'a (dyn StdError + 'static)) -> Self {
        Self(error)
    }
}

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        let mut depth = 0;
        while let Some(error) = cause {
            if depth == MAX_CAUSES {
                return f.write_str(": …");
            }
            write!(f, ": {error}")?;
            cause = error.source();
            depth += 1;
        }
        Ok(())
    }
}

/// Logs an error at ERROR with its whole cause chain in the field
/// `error.chain` (`outer: middle: inner`), followed by any context fields and
/// a message, written as for [`tracing::error!`].
///
/// An optional `target: "bigbrotr::pool",` comes first, as in `tracing`.
///
/// ```
/// # let error = std::io::Error::other("timed out");
/// # let url = "wss://relay.example";
/// bigbrotr_logging::log_error!(&error, relay = %url, attempt = 3, "could not connect");
/// bigbrotr_logging::log_error!(target: "bigbrotr::pool", &error, "could not connect");
/// ```
///
/// In the standard format this reads:
/// `… ERROR [service] could not connect error.chain="timed out" relay=wss://relay.example attempt=3`.
#[macro_export]
macro_rules! log_error {
    (target: $target:expr, $error:expr $(,)?) => {
        $crate::__private::tracing::event!(
            target: $target,
            $crate::__private::tracing::Level::ERROR,
            error.chain = %$crate::ErrorChain::new($error)
        )
    };
    (target: $target:expr, $error:expr, $($rest:tt)+) => {
        $crate::__private::tracing::event!(
            target: $target,
            $crate::__private::tracing::Level::ERROR,
            error.chain = %$crate::ErrorChain::new($error),
            $($rest)+
        )
    };
    ($error:expr $(,)?) => {
        $crate::__private::tracing::event!(
            $crate::__private::tracing::Level::ERROR,
            error.chain = %$crate::ErrorChain::new($error)
        )
    };
    ($error:expr, $($rest:tt)+) => {
        $crate::__private::tracing::event!(
            $crate::__private::tracing::Level::ERROR,
            error.chain = %$crate::ErrorChain::new($error),
            $($rest)+
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::capture_one;
    use crate::Format;

    #[derive(Debug)]
    struct Looping;

    impl fmt::Display for Looping {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("again")
        }
    }

    impl StdError for Looping {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&Looping)
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("could not connect")]
    struct Outer {
        source: Middle,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("handshake failed")]
    struct Middle {
        source: std::io::Error,
    }

    fn connect_error() -> Outer {
        Outer {
            source: Middle {
                source: std::io::Error::other("timed out"),
            },
        }
    }

    #[test]
    fn log_error_writes_the_chain_then_the_context_at_error() {
        let error = connect_error();
        let url = "wss://relay.example";
        let lines = capture_one(Format::Standard, "info", || {
            crate::log_error!(&error, relay = %url, attempt = 3, "giving up on {}", "relay");
        });
        assert_eq!(
            lines,
            vec![concat!(
                "2024-01-15 10:30:45 ERROR [monitor] giving up on relay ",
                "error.chain=\"could not connect: handshake failed: timed out\" ",
                "relay=wss://relay.example attempt=3"
            )]
        );
    }

    #[test]
    fn log_error_takes_a_target() {
        let error = std::io::Error::other("refused");
        let mut first = 0;
        let lines = capture_one(Format::Detailed, "info", || {
            first = line!() + 1;
            crate::log_error!(target: "bigbrotr::pool", &error, "no connection");
            crate::log_error!(target: "bigbrotr::pool", &error);
        });
        let second = first + 1;
        assert_eq!(
            lines,
            vec![
                format!(
                    "2024-01-15 10:30:45.123 ERROR [monitor:bigbrotr::pool:{first}] no connection \
                     error.chain=refused"
                ),
                format!(
                    "2024-01-15 10:30:45.123 ERROR [monitor:bigbrotr::pool:{second}] \
                     error.chain=refused"
                ),
            ]
        );
    }

    #[test]
    fn log_error_works_with_the_error_alone() {
        let error = connect_error();
        let lines = capture_one(Format::Standard, "error", || {
            crate::log_error!(&error);
            crate::log_error!(&error,);
        });
        let line = "2024-01-15 10:30:45 ERROR [monitor] \
                    error.chain=\"could not connect: handshake failed: timed out\"";
        assert_eq!(lines, vec![line, line]);
    }

    #[test]
    fn a_chain_lists_every_cause_from_the_outside_in() {
        let error = Outer {
            source: Middle {
                source: std::io::Error::other("timed out"),
            },
        };
        assert_eq!(
            ErrorChain::new(&error).to_string(),
            "could not connect: handshake failed: timed out"
        );
    }

    #[test]
    fn an_error_without_cause_is_shown_alone() {
        let error = std::fmt::Error;
        assert_eq!(
            ErrorChain::new(&error).to_string(),
            "an error occurred when formatting an argument"
        );
    }

    #[test]
    fn a_chain_that_never_ends_is_cut() {
        let text = ErrorChain::new(&Looping).to_string();
        assert_eq!(text, format!("again{}: …", ": again".repeat(MAX_CAUSES)));
    }
}
