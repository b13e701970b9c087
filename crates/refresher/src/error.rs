//! The [`Error`] of this crate.

use std::time::Duration;

use bigbrotr_config::{Problem, ProblemList};

/// What can go wrong while setting the refresher up, listing the views or
/// refreshing one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `refresher` section is invalid.
    #[error("invalid refresher configuration: {}", ProblemList(problems))]
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
    /// `refresher.views` names views the implementation's `stats_views()`
    /// does not list.
    #[error(
        "refresher.views names {} that stats_views() does not list: {}; it lists {}",
        if unknown.len() == 1 { "a view" } else { "views" },
        unknown.join(", "),
        known.join(", ")
    )]
    UnknownViews {
        /// The names not listed.
        unknown: Vec<String>,
        /// The names listed.
        known: Vec<String>,
    },
    /// The refresh of a view failed.
    #[error("refreshing {view} failed")]
    Refresh {
        /// The view.
        view: String,
        /// Why.
        #[source]
        source: bigbrotr_pool::Error,
    },
    /// The refresh of a view did not end within `refresher.timeout`; it was
    /// cancelled and nothing of it is kept.
    #[error("refreshing {view} took longer than {after:?}; cancelled")]
    Timeout {
        /// The view.
        view: String,
        /// Its time limit.
        after: Duration,
    },
}

impl Error {
    /// The reason of a failed refresh as the metrics label it: `timeout`
    /// or `error`.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Timeout { .. } => "timeout",
            _ => "error",
        }
    }
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
    fn unknown_views_are_named_with_those_known() {
        let one = Error::UnknownViews {
            unknown: vec!["stats_kind".to_owned()],
            known: vec!["stats_kinds".to_owned(), "stats_totals".to_owned()],
        };
        assert_eq!(
            one.to_string(),
            "refresher.views names a view that stats_views() does not list: stats_kind; \
             it lists stats_kinds, stats_totals"
        );
        let two = Error::UnknownViews {
            unknown: vec!["a".to_owned(), "b".to_owned()],
            known: vec!["stats_kinds".to_owned()],
        };
        assert!(two
            .to_string()
            .starts_with("refresher.views names views that"));
        assert_eq!(one.reason(), "error");
    }

    #[test]
    fn a_timeout_names_the_view_and_its_limit() {
        let error = Error::Timeout {
            view: "stats_pubkeys".to_owned(),
            after: Duration::from_secs(2),
        };
        assert_eq!(
            error.to_string(),
            "refreshing stats_pubkeys took longer than 2s; cancelled"
        );
        assert_eq!(error.reason(), "timeout");
    }
}
