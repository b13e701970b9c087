//! The error type of this crate, and the reasons an event or a relay URL is
//! refused.

use std::path::PathBuf;
use std::time::Duration;

use bigbrotr_config::{Problem, ProblemList};
use bigbrotr_pool::tokio_postgres::error::SqlState;
use nostr::EventId;

/// Everything that can go wrong while writing to or reading from the
/// archive, or while applying its schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `brotr` configuration section failed validation; each problem
    /// names the offending key.
    #[error("invalid brotr configuration: {}", ProblemList(problems))]
    InvalidConfig {
        /// What is wrong, one entry per offending key.
        problems: Vec<Problem>,
    },

    /// A stored procedure or statement failed, or a column of its result
    /// could not be read; `source` tells whether the database refused it, a
    /// timeout fired, no connection was available or which column was
    /// unreadable.
    #[error("{what} failed")]
    Database {
        /// The procedure or step: `insert_events`, `get_event_by_id`, …
        what: &'static str,
        /// What the pool said.
        #[source]
        source: bigbrotr_pool::Error,
    },

    /// A chunk of a batch did not finish within `brotr.insert_timeout`; its
    /// statement was cancelled, so the chunk was almost surely not stored (a
    /// chunk is never stored in part: it may only have committed just
    /// before the cancellation). Inserting it again is safe.
    #[error("{what} did not finish within {after:?}")]
    Timeout {
        /// The procedure that was cut off.
        what: &'static str,
        /// The limit.
        after: Duration,
    },

    /// A single event given to [`Brotr::insert_event`](crate::Brotr::insert_event)
    /// was refused before reaching the database.
    #[error("event {event_id} was refused: {reason}")]
    RejectedEvent {
        /// The id the event claims.
        event_id: EventId,
        /// Why it was refused.
        #[source]
        reason: RejectReason,
    },

    /// A relay URL of a batch is not a valid relay URL; nothing of the batch
    /// was stored.
    #[error("relay URL #{index} `{url}` is invalid")]
    InvalidRelayUrl {
        /// Position of the URL in the input, from 0.
        index: usize,
        /// The URL as given.
        url: String,
        /// Why it was refused.
        #[source]
        source: InvalidRelayUrl,
    },

    /// A limit of 0 was given to a cleanup, which would never make progress.
    #[error("the limit of {what} must be at least 1")]
    InvalidLimit {
        /// The cleanup.
        what: &'static str,
    },

    /// A NIP-11 or NIP-66 document could not be hashed.
    #[error("the {what} document of relay metadata #{index} could not be hashed")]
    Document {
        /// `nip11` or `nip66`.
        what: &'static str,
        /// Position of the metadata in the input, from 0.
        index: usize,
        /// What the hashing said.
        #[source]
        source: bigbrotr_utils::Error,
    },

    /// A value read from the database could not be decoded into what it
    /// stands for (an event id, a network, …).
    #[error("column `{column}` returned by {what} could not be decoded")]
    Decode {
        /// The procedure that returned it.
        what: &'static str,
        /// The column.
        column: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A procedure returned a result of an unexpected shape, such as fewer
    /// rows than inputs.
    #[error("{what} returned {found} where {expected} was expected")]
    UnexpectedResult {
        /// The procedure.
        what: &'static str,
        /// What was expected.
        expected: String,
        /// What came back.
        found: String,
    },

    /// The event rebuilt from its stored row does not verify: the
    /// implementation does not keep whole events (`lilbrotr` stores neither
    /// content nor tags), or the row was altered.
    #[error("event {event_id} cannot be reproduced from the database: {reason}")]
    EventNotReproducible {
        /// The id asked for.
        event_id: EventId,
        /// What check the rebuilt event failed.
        #[source]
        reason: RejectReason,
    },

    /// Checking event signatures on worker threads failed: a worker
    /// panicked or the runtime is shutting down.
    #[error("event validation could not finish")]
    Validation {
        /// What tokio said.
        #[source]
        source: tokio::task::JoinError,
    },

    /// The schema folder could not be read, or its files are not named
    /// `NNN_name.sql` and numbered 1, 2, 3, … without a gap; `source` (one
    /// of [`bigbrotr_pool::Error`]'s schema-file variants) says which, and
    /// is shown as this error.
    #[error(transparent)]
    SchemaFiles {
        /// What [`read_schema_dir`](crate::read_schema_dir) said.
        source: bigbrotr_pool::Error,
    },

    /// A file applied earlier has changed since: the database no longer
    /// matches what the files describe.
    #[error(
        "schema file {} (version {version}, `{name}`) changed after it was applied",
        file.display()
    )]
    SchemaChecksumMismatch {
        /// The version.
        version: i32,
        /// Its name, without the number and extension.
        name: String,
        /// The file.
        file: PathBuf,
    },

    /// A schema file failed to apply; its transaction was rolled back, so
    /// nothing of it is in the database.
    #[error("applying schema file {} failed", file.display())]
    SchemaApply {
        /// The file.
        file: PathBuf,
        /// What the pool said.
        #[source]
        source: bigbrotr_pool::Error,
    },

    /// The database has a schema version that no file describes: it was set
    /// up by a newer release.
    #[error(
        "the database has schema version {database_version}, newer than {known_version}, \
         the latest this release knows"
    )]
    SchemaTooNew {
        /// The highest version recorded in the database.
        database_version: i32,
        /// The highest version of the files.
        known_version: i32,
    },
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// [`Error::Database`] for `what`, to hand to `map_err`.
pub(crate) fn database(what: &'static str) -> impl Fn(bigbrotr_pool::Error) -> Error {
    move |source| Error::Database { what, source }
}

impl Error {
    /// The SQLSTATE of the database error behind this error, if the database
    /// refused a statement: for example
    /// [`SqlState::FOREIGN_KEY_VIOLATION`] when a batch names a relay id
    /// that does not exist.
    #[must_use]
    pub fn sql_state(&self) -> Option<&SqlState> {
        let Self::Database { source, .. } = self else {
            return None;
        };
        let mut error = source;
        loop {
            match error {
                bigbrotr_pool::Error::Query { source, .. } => return source.code(),
                bigbrotr_pool::Error::Unavailable { source, .. } => error = source,
                _ => return None,
            }
        }
    }
}

/// Why an event was refused before reaching the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The id is not the SHA-256 of the event's NIP-01 serialisation: the
    /// event was altered after it was signed, or never hashed correctly.
    #[error("its id does not match its content")]
    InvalidId,
    /// The id matches the content, but the signature is not a valid BIP-340
    /// signature of the id by the pubkey.
    #[error("its signature does not verify")]
    InvalidSignature,
    /// `created_at` is beyond what a PostgreSQL `bigint` holds.
    #[error("created_at {created_at} is beyond the largest storable timestamp")]
    CreatedAtOutOfRange {
        /// The claimed creation time, in Unix seconds.
        created_at: u64,
    },
}

/// Why a relay URL was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidRelayUrl {
    /// `nostr::RelayUrl` refused it: not a URL, a scheme other than `ws` or
    /// `wss`, or several `://`.
    #[error("it is not a ws:// or wss:// URL")]
    Parse {
        /// What `nostr` said.
        #[source]
        source: nostr::types::url::Error,
    },
    /// It has no host name or address.
    #[error("it has no host")]
    MissingHost,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_configuration_lists_every_problem() {
        let error = Error::InvalidConfig {
            problems: vec![
                Problem::new("brotr.batch_size", "must be from 1 to 100000"),
                Problem::new("brotr.insert_timeout", "must be > 0"),
            ],
        };
        assert_eq!(
            error.to_string(),
            "invalid brotr configuration: brotr.batch_size: must be from 1 to 100000; \
             brotr.insert_timeout: must be > 0"
        );
    }

    #[test]
    fn errors_without_a_database_cause_have_no_sql_state() {
        let error = Error::InvalidLimit {
            what: "delete_orphan_events",
        };
        assert!(error.sql_state().is_none());
        let error = Error::Database {
            what: "insert_events",
            source: bigbrotr_pool::Error::Closed,
        };
        assert!(error.sql_state().is_none());
    }

    #[test]
    fn a_schema_folder_problem_reads_as_the_readers_error() {
        let error = Error::SchemaFiles {
            source: bigbrotr_pool::Error::SchemaEmpty {
                dir: PathBuf::from("sql"),
            },
        };
        assert_eq!(error.to_string(), "sql holds no NNN_name.sql file");
    }

    #[test]
    fn a_rejected_event_keeps_its_reason_as_source() {
        let error = Error::RejectedEvent {
            event_id: EventId::all_zeros(),
            reason: RejectReason::InvalidSignature,
        };
        let source = std::error::Error::source(&error).expect("a source");
        assert_eq!(source.to_string(), "its signature does not verify");
    }
}
