//! The numbered SQL files of a schema folder, `NNN_name.sql`: listed,
//! checked, ordered by version and checksummed by [`read_schema_dir`].
//!
//! Files are named `NNN_name.sql` (`001_tables.sql`, `002_functions.sql`,
//! …): versions from 1 without a gap, at least three digits. Other files of
//! the folder (a `README.md`) are ignored; a `.sql` file named otherwise is
//! an error. Applying them is the schema runner's job (`bigbrotr-brotr`);
//! the test databases are built from the same files, read here too, so
//! both apply the same bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One `NNN_name.sql` file of a schema folder.
#[derive(Clone, PartialEq, Eq)]
pub struct SchemaFile {
    /// The number `NNN`.
    pub version: i32,
    /// The part between the number and `.sql`: `tables` for
    /// `001_tables.sql`.
    pub name: String,
    /// Where the file is.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes.
    pub checksum: [u8; 32],
    /// The file's text.
    pub sql: String,
}

impl fmt::Debug for SchemaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaFile")
            .field("version", &self.version)
            .field("name", &self.name)
            .field("path", &self.path)
            .field("checksum", &bigbrotr_utils::short_hash(&self.checksum))
            .finish_non_exhaustive()
    }
}

/// Reads the `NNN_name.sql` files of `dir`, sorted by version, and checks
/// their names: versions 1, 2, 3, … without gap or repeat.
pub fn read_schema_dir(dir: &Path) -> Result<Vec<SchemaFile>> {
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::ReadSchema { path, source }
    };
    let mut by_version: BTreeMap<i32, SchemaFile> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(read_error(dir))? {
        let path = entry.map_err(read_error(dir))?.path();
        if path.extension().is_none_or(|ext| ext != "sql") || !path.is_file() {
            continue;
        }
        let (version, name) =
            parse_file_name(&path).ok_or_else(|| Error::SchemaFileName { file: path.clone() })?;
        let bytes = std::fs::read(&path).map_err(read_error(&path))?;
        let checksum: [u8; 32] = Sha256::digest(&bytes).into();
        let sql = String::from_utf8(bytes).map_err(|e| Error::ReadSchema {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        let file = SchemaFile {
            version,
            name,
            path,
            checksum,
            sql,
        };
        if let Some(first) = by_version.get(&version) {
            let (first, second) = if first.path <= file.path {
                (first.path.clone(), file.path)
            } else {
                (file.path, first.path.clone())
            };
            return Err(Error::SchemaDuplicateVersion {
                version,
                first,
                second,
            });
        }
        by_version.insert(version, file);
    }
    if by_version.is_empty() {
        return Err(Error::SchemaEmpty {
            dir: dir.to_owned(),
        });
    }
    let files: Vec<SchemaFile> = by_version.into_values().collect();
    for (expected, file) in (1..).zip(&files) {
        if file.version != expected {
            return Err(Error::SchemaVersionGap {
                expected,
                found: file.path.clone(),
            });
        }
    }
    Ok(files)
}

/// The version and name of `NNN_name.sql`.
fn parse_file_name(path: &Path) -> Option<(i32, String)> {
    let stem = path.file_stem()?.to_str()?;
    let (digits, name) = stem.split_once('_')?;
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if digits.len() < 3 || !digits.chars().all(|c| c.is_ascii_digit()) || !valid_name {
        return None;
    }
    let version: i32 = digits.parse().ok()?;
    (version > 0).then(|| (version, name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn files_are_read_in_version_order_with_their_checksums() {
        let dir = dir_with(&[
            ("002_functions.sql", "SELECT 2;"),
            ("001_tables.sql", "SELECT 1;"),
            ("010_x.sql", "x"),
            ("README.md", "ignored"),
        ]);
        let Err(Error::SchemaVersionGap { expected: 3, found }) = read_schema_dir(dir.path())
        else {
            panic!("expected a gap at 3");
        };
        assert!(found.ends_with("010_x.sql"));

        std::fs::remove_file(dir.path().join("010_x.sql")).unwrap();
        let files = read_schema_dir(dir.path()).unwrap();
        let names: Vec<(i32, &str)> = files.iter().map(|f| (f.version, f.name.as_str())).collect();
        assert_eq!(names, [(1, "tables"), (2, "functions")]);
        let expected: [u8; 32] = Sha256::digest(b"SELECT 1;").into();
        assert_eq!(files[0].checksum, expected);
        assert_eq!(files[1].sql, "SELECT 2;");
    }

    #[test]
    fn a_badly_named_sql_file_is_refused() {
        for name in [
            "1_tables.sql",
            "001tables.sql",
            "001_.sql",
            "abc_tables.sql",
            "000_zero.sql",
            "001_ta bles.sql",
        ] {
            let dir = dir_with(&[(name, "")]);
            assert!(
                matches!(
                    read_schema_dir(dir.path()),
                    Err(Error::SchemaFileName { .. })
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn two_files_with_one_version_are_refused() {
        let dir = dir_with(&[("001_a.sql", ""), ("001_b.sql", "")]);
        let Err(Error::SchemaDuplicateVersion {
            version: 1,
            first,
            second,
        }) = read_schema_dir(dir.path())
        else {
            panic!("expected a duplicate");
        };
        assert!(first.ends_with("001_a.sql"));
        assert!(second.ends_with("001_b.sql"));
    }

    #[test]
    fn versions_must_start_at_one() {
        let dir = dir_with(&[("002_b.sql", "")]);
        assert!(matches!(
            read_schema_dir(dir.path()),
            Err(Error::SchemaVersionGap { expected: 1, .. })
        ));
    }

    #[test]
    fn a_folder_without_schema_files_is_refused() {
        let dir = dir_with(&[("README.md", "")]);
        assert!(matches!(
            read_schema_dir(dir.path()),
            Err(Error::SchemaEmpty { .. })
        ));
        let missing = dir.path().join("missing");
        assert!(matches!(
            read_schema_dir(&missing),
            Err(Error::ReadSchema { .. })
        ));
    }

    #[test]
    fn longer_version_numbers_are_accepted() {
        assert_eq!(
            parse_file_name(Path::new("0001_a-b_c.sql")),
            Some((1, "a-b_c".to_owned()))
        );
    }
}
