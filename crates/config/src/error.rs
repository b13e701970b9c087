//! The error type of this crate.

use std::fmt;
use std::path::PathBuf;

use crate::validate::Problem;

/// Everything that can go wrong while finding, reading, expanding, parsing
/// and checking configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The implementation name is empty or `.`, or contains `/`, `\` or `..`.
    #[error("`{name}` is not a valid implementation name: use a plain folder name")]
    InvalidImplementationName {
        /// The name as given.
        name: String,
    },

    /// There is no folder for the implementation.
    #[error("implementation `{name}` not found: {} is not a directory", path.display())]
    ImplementationNotFound {
        /// The name as given.
        name: String,
        /// The folder that was looked for.
        path: PathBuf,
    },

    /// A configuration file does not exist.
    #[error("configuration file {} not found", path.display())]
    FileNotFound {
        /// The file that was looked for.
        path: PathBuf,
    },

    /// A file or folder exists but could not be read.
    #[error("could not read {}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A `.env` file could not be parsed.
    #[error("invalid .env file {}{}", path.display(), Line(*line))]
    Dotenv {
        /// The `.env` file.
        path: PathBuf,
        /// The line of the offending entry, when it could be found.
        line: Option<usize>,
        /// What the parser said.
        #[source]
        source: dotenvy::Error,
    },

    /// `${NAME}` names a variable that is not set and has no default.
    #[error(
        "{}:{line}: variable `{name}` is not set and `${{{name}}}` has no default (write `${{{name}:default}}`)",
        file.display()
    )]
    MissingVariable {
        /// The variable.
        name: String,
        /// The file being expanded.
        file: PathBuf,
        /// The line of the reference, counted from 1.
        line: usize,
    },

    /// A `${` has no closing `}` on the same line.
    #[error("{}:{line}: `${{` without a closing `}}` on the same line (write `$${{` for a literal `${{`)", file.display())]
    UnterminatedVariable {
        /// The file being expanded.
        file: PathBuf,
        /// The line of the `${`, counted from 1.
        line: usize,
    },

    /// The text between `${` and `}` (or `:`) is not a variable name.
    #[error(
        "{}:{line}: `{name}` is not a variable name (letters, digits and `_`, not starting with a digit)",
        file.display()
    )]
    InvalidVariableName {
        /// The text found in place of a name.
        name: String,
        /// The file being expanded.
        file: PathBuf,
        /// The line of the reference, counted from 1.
        line: usize,
    },

    /// The expanded text is not valid YAML.
    #[error("{}{}: invalid YAML", file.display(), Location(*line, *column))]
    Parse {
        /// The file.
        file: PathBuf,
        /// The line of the error in the expanded text, counted from 1.
        line: Option<usize>,
        /// The column of the error in the expanded text, counted from 1.
        column: Option<usize>,
        /// What the YAML parser said.
        #[source]
        source: serde_norway::Error,
    },

    /// A loaded configuration could not be serialized to JSON.
    #[error("could not serialize `{type_name}` to JSON")]
    Serialize {
        /// The struct.
        type_name: &'static str,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },

    /// The file parsed, but some keys are unknown, have the wrong type or
    /// fail validation. Every problem of the file is listed.
    #[error("invalid configuration in {}:{}", file.display(), Problems(problems))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// What is wrong, one entry per problem, each naming its key.
        problems: Vec<Problem>,
    },
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Displays `:LINE` when a line is known.
struct Line(Option<usize>);

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, ":{line}"),
            None => Ok(()),
        }
    }
}

/// Displays `:LINE:COLUMN`, `:LINE` or nothing.
struct Location(Option<usize>, Option<usize>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(line), Some(column)) => write!(f, ":{line}:{column}"),
            (Some(line), None) => write!(f, ":{line}"),
            _ => Ok(()),
        }
    }
}

/// Displays each problem on its own indented line.
struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in self.0 {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_lists_every_problem_on_its_own_line() {
        let error = Error::Invalid {
            file: PathBuf::from("config/core/pool.yaml"),
            problems: vec![
                Problem::new("pool.max_size", "must be ≥ min_size (1)"),
                Problem::new("database.port", "must not be 0"),
            ],
        };
        assert_eq!(
            error.to_string(),
            "invalid configuration in config/core/pool.yaml:\n  pool.max_size: must be ≥ min_size (1)\n  database.port: must not be 0"
        );
    }

    #[test]
    fn a_missing_variable_names_the_variable_the_file_and_the_line() {
        let error = Error::MissingVariable {
            name: "DB_HOST".into(),
            file: PathBuf::from("pool.yaml"),
            line: 3,
        };
        assert_eq!(
            error.to_string(),
            "pool.yaml:3: variable `DB_HOST` is not set and `${DB_HOST}` has no default (write `${DB_HOST:default}`)"
        );
    }

    #[test]
    fn a_location_shows_only_what_is_known() {
        assert_eq!(Location(Some(2), Some(5)).to_string(), ":2:5");
        assert_eq!(Location(Some(2), None).to_string(), ":2");
        assert_eq!(Location(None, None).to_string(), "");
        assert_eq!(Line(Some(4)).to_string(), ":4");
        assert_eq!(Line(None).to_string(), "");
    }
}
