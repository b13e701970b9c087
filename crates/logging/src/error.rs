//! The error type of this crate.

use std::path::PathBuf;

use tracing_subscriber::filter::ParseError;
use tracing_subscriber::util::TryInitError;

use bigbrotr_config::{Problem, ProblemList};

/// Everything that can go wrong while setting up logging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration failed validation; each problem names the offending key.
    #[error("invalid logging configuration: {}", ProblemList(problems))]
    Invalid {
        /// What is wrong, one entry per offending key.
        problems: Vec<Problem>,
    },

    /// The level of an output is neither a level nor a list of filter directives.
    #[error("the level `{directive}` of logging.outputs[{output}] is not a valid filter")]
    Level {
        /// Position of the output in `logging.outputs`.
        output: usize,
        /// The level or directive list as configured.
        directive: String,
        /// Why the directives were rejected.
        source: ParseError,
    },

    /// A file output could not create its directory or open its first file.
    #[error("could not open the log file `{prefix}.*log` in `{}`", directory.display())]
    OpenFile {
        /// The configured directory.
        directory: PathBuf,
        /// The configured file name prefix.
        prefix: String,
        /// What the file system said.
        source: tracing_appender::rolling::InitError,
    },

    /// The subscriber could not be installed globally, usually because one
    /// (or a `log` logger) is installed already.
    #[error("could not install the global tracing subscriber")]
    Install {
        /// Which of the two installations failed.
        source: TryInitError,
    },
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn an_invalid_configuration_lists_every_problem() {
        let error = Error::Invalid {
            problems: vec![
                Problem::new("logging.outputs[0].level", "must not be empty"),
                Problem::new("logging.outputs[1].max_files", "must be at least 1"),
            ],
        };
        assert_eq!(
            error.to_string(),
            "invalid logging configuration: logging.outputs[0].level: must not be empty; \
             logging.outputs[1].max_files: must be at least 1"
        );
    }

    #[test]
    fn a_level_error_keeps_the_parse_error_as_its_source() {
        let source = "info,a=nonsense"
            .parse::<tracing_subscriber::EnvFilter>()
            .expect_err("the directive is invalid");
        let expected_source = source.to_string();
        let error = Error::Level {
            output: 2,
            directive: "info,a=nonsense".to_owned(),
            source,
        };
        assert_eq!(
            error.to_string(),
            "the level `info,a=nonsense` of logging.outputs[2] is not a valid filter"
        );
        assert_eq!(
            error.source().map(ToString::to_string),
            Some(expected_source)
        );
    }
}
