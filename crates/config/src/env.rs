//! An immutable snapshot of environment variables.

use std::collections::BTreeMap;
use std::fmt;
use std::io::ErrorKind;
use std::path::Path;

use crate::error::{Error, Result};

/// An immutable snapshot of environment variables.
///
/// Everything in this crate that reads variables takes an `&Env` rather than
/// the process environment, so the process environment is read once, at
/// start-up, and never changed; tests build their own with
/// [`Env::from_pairs`].
///
/// `Debug` shows the names of the variables, never their values, which may
/// be secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// No variables at all.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// The variables of the current process. Variables whose name or value
    /// is not valid UTF-8 are left out.
    #[must_use]
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        }))
    }

    /// The given variables; a later pair with the same name wins.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        }
    }

    /// The value of the variable `name`, if set.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Every variable, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// Adds the variables of the `.env` file at `path` that are not set yet:
    /// variables already present win over the file.
    ///
    /// A missing file is not an error: `self` comes back unchanged. The file
    /// is only read; the process environment is left alone. References such
    /// as `${OTHER}` inside the file are resolved by the `.env` parser
    /// against earlier entries of the file and the process environment.
    pub fn with_dotenv(mut self, path: &Path) -> Result<Self> {
        let entries = match dotenvy::from_path_iter(path) {
            Ok(entries) => entries,
            Err(dotenvy::Error::Io(source)) if source.kind() == ErrorKind::NotFound => {
                return Ok(self)
            }
            Err(source) => return Err(dotenv_error(path, source)),
        };
        for entry in entries {
            let (name, value) = entry.map_err(|source| dotenv_error(path, source))?;
            self.vars.entry(name).or_insert(value);
        }
        Ok(self)
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("names", &self.vars.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A typed error for a bad `.env` file, with the line of the bad entry when
/// it can be found.
fn dotenv_error(path: &Path, source: dotenvy::Error) -> Error {
    let source = match source {
        dotenvy::Error::Io(source) => {
            return Error::Read {
                path: path.to_path_buf(),
                source,
            }
        }
        other => other,
    };
    let line = match &source {
        dotenvy::Error::LineParse(entry, _) => std::fs::read_to_string(path)
            .ok()
            .and_then(|text| line_of(&text, entry)),
        _ => None,
    };
    Error::Dotenv {
        path: path.to_path_buf(),
        line,
        source,
    }
}

/// The line, counted from 1, where `entry` first starts in `text`.
fn line_of(text: &str, entry: &str) -> Option<usize> {
    let trimmed = entry.trim();
    if trimmed.is_empty() {
        return None;
    }
    let offset = text.find(trimmed)?;
    Some(text[..offset].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn dotenv(contents: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join(".env");
        fs::write(&path, contents).expect("writable");
        (dir, path)
    }

    #[test]
    fn an_empty_env_has_no_variables() {
        assert_eq!(Env::empty().get("PATH"), None);
        assert_eq!(Env::empty().iter().count(), 0);
    }

    #[test]
    fn pairs_are_looked_up_by_name_and_a_later_pair_wins() {
        let env = Env::from_pairs([("A", "1"), ("B", "2"), ("A", "3")]);
        assert_eq!(env.get("A"), Some("3"));
        assert_eq!(env.get("B"), Some("2"));
        assert_eq!(env.get("C"), None);
        assert_eq!(env.iter().collect::<Vec<_>>(), [("A", "3"), ("B", "2")]);
    }

    #[test]
    fn the_process_snapshot_holds_the_process_variables() {
        let env = Env::from_process();
        let expected: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        for (name, value) in expected {
            assert_eq!(env.get(&name), Some(value.as_str()));
        }
    }

    #[test]
    fn a_dotenv_file_adds_variables_without_overriding_present_ones() {
        let (_dir, path) = dotenv("# comment\nDB_HOST=db\nDB_PORT=5432\nQUOTED=\"a b\"\n");
        let env = Env::from_pairs([("DB_HOST", "from-process")])
            .with_dotenv(&path)
            .expect("a valid .env");
        assert_eq!(env.get("DB_HOST"), Some("from-process"));
        assert_eq!(env.get("DB_PORT"), Some("5432"));
        assert_eq!(env.get("QUOTED"), Some("a b"));
    }

    #[test]
    fn a_missing_dotenv_file_leaves_the_env_unchanged() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let env = Env::from_pairs([("A", "1")]);
        let same = env
            .clone()
            .with_dotenv(&dir.path().join(".env"))
            .expect("a missing file is fine");
        assert_eq!(same, env);
    }

    #[test]
    fn a_malformed_dotenv_file_is_an_error_naming_the_file_and_line() {
        let (_dir, path) = dotenv("A=1\n# fine\nNOT VALID LINE\n");
        match Env::empty().with_dotenv(&path) {
            Err(Error::Dotenv {
                path: named,
                line,
                source: dotenvy::Error::LineParse(..),
            }) => {
                assert_eq!(named, path);
                assert_eq!(line, Some(3));
            }
            other => panic!("expected a Dotenv error, got {other:?}"),
        }
    }

    #[test]
    fn a_dotenv_path_that_is_a_folder_is_a_read_error() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let result = Env::empty().with_dotenv(dir.path());
        assert!(
            matches!(&result, Err(Error::Read { path, .. }) if path == dir.path()),
            "got {result:?}"
        );
    }

    #[test]
    fn debug_output_shows_names_but_never_values() {
        let env = Env::from_pairs([("DB_PASSWORD", "hunter2"), ("DB_HOST", "db")]);
        assert_eq!(
            format!("{env:?}"),
            r#"Env { names: ["DB_HOST", "DB_PASSWORD"], .. }"#
        );
    }

    #[test]
    fn the_line_of_an_entry_is_counted_from_one() {
        assert_eq!(line_of("A=1\nB C\n", "B C"), Some(2));
        assert_eq!(line_of("A=1\n", "Z"), None);
        assert_eq!(line_of("A=1\n", "  "), None);
    }
}
