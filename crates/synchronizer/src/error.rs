//! The [`Error`] of this crate.

use bigbrotr_config::{Problem, ProblemList};

/// What can go wrong while setting the synchronizer up or keeping its state
/// in the database. What a relay does wrong is never an error: it is counted
/// in the [`RelayReport`](crate::RelayReport) of that relay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `synchronizer` or `nostr` section is invalid.
    #[error("invalid synchronizer configuration: {}", ProblemList(problems))]
    InvalidConfig {
        /// Every problem found, with its key path.
        problems: Vec<Problem>,
    },
    /// The filter could not be hashed into its cursor key.
    #[error("the filter could not be hashed")]
    FilterHash {
        /// Why.
        #[source]
        source: bigbrotr_utils::Error,
    },
    /// A call of one of the `sync_*` functions failed, or a column of a
    /// row it returned could not be read ([`bigbrotr_pool::Error::Column`]).
    #[error("{what} failed")]
    Database {
        /// Which function, or what was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: bigbrotr_pool::Error,
    },
    /// A value returned by a `sync_*` function is out of its range.
    #[error("{what}: column `{column}` holds an unexpected value: {found}")]
    Unexpected {
        /// Which function.
        what: &'static str,
        /// The column.
        column: &'static str,
        /// What it held.
        found: String,
    },
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// [`Error::Database`] for `what`, to hand to `map_err`.
pub(crate) fn database(what: &'static str) -> impl Fn(bigbrotr_pool::Error) -> Error {
    move |source| Error::Database { what, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_configuration_lists_every_problem() {
        let error = Error::InvalidConfig {
            problems: vec![
                Problem::new("synchronizer.limit", "must be ≥ 1"),
                Problem::new("nostr.timeout", "must be > 0"),
            ],
        };
        let shown = error.to_string();
        assert!(
            shown.starts_with("invalid synchronizer configuration: "),
            "{shown}"
        );
        assert!(shown.contains("synchronizer.limit: must be ≥ 1"), "{shown}");
        assert!(shown.contains("nostr.timeout: must be > 0"), "{shown}");
    }
}
