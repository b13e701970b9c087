//! The schema runner: applies an implementation's numbered SQL files in
//! order, each once, and refuses a database that no longer matches them.
//!
//! Files are named `NNN_name.sql` (`001_tables.sql`, `002_functions.sql`,
//! …): versions from 1 without a gap, at least three digits. Other files of
//! the folder (a `README.md`) are ignored; a `.sql` file named otherwise is
//! an error. Each file is applied in one transaction together with its row
//! in `schema_migrations` (version, name, SHA-256 of the file's bytes,
//! applied_at), so a file is applied whole and recorded, or not at all. A
//! file must therefore not contain `BEGIN`/`COMMIT` itself, nor statements
//! that cannot run in a transaction (`CREATE INDEX CONCURRENTLY`).
//!
//! Several processes may run the runner at once: each transaction first
//! takes the same `pg_advisory_xact_lock` and checks again, inside the lock,
//! whether the file was applied meanwhile.
//!
//! Every statement, the body of a file included, is bounded by the pool's
//! `command_timeout`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use bigbrotr_pool::{ConnectionPool, PoolTransaction, Type};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Key of the advisory lock serialising schema changes: the bytes of
/// `bigbrotr`.
const LOCK_KEY: i64 = 0x6269_6762_726f_7472;

const CREATE_TABLE: &str = "\
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY CHECK (version > 0),
    name       text    NOT NULL,
    checksum   bytea   NOT NULL CHECK (octet_length(checksum) = 32),
    applied_at bigint  NOT NULL
);
COMMENT ON TABLE schema_migrations IS
    'The SQL files applied to this database, one row per file NNN_name.sql: version NNN, name, SHA-256 of the file, when it was applied (Unix seconds).'";

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

/// One schema version: its number and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The number `NNN` of the file.
    pub version: i32,
    /// Its name, `tables` for `001_tables.sql`.
    pub name: String,
}

impl From<&SchemaFile> for Migration {
    fn from(file: &SchemaFile) -> Self {
        Self {
            version: file.version,
            name: file.name.clone(),
        }
    }
}

/// What [`apply_schema`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaReport {
    /// The files applied by this call, in order.
    pub applied: Vec<Migration>,
    /// The files found already applied (by an earlier run, or by another
    /// process during this one), unchanged.
    pub already_present: Vec<Migration>,
}

impl SchemaReport {
    /// The schema version of the database now: the highest version applied
    /// or present, 0 when there are none.
    #[must_use]
    pub fn version(&self) -> i32 {
        self.applied
            .iter()
            .chain(&self.already_present)
            .map(|m| m.version)
            .max()
            .unwrap_or(0)
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

/// Applies the schema files of `sql_dir` that the database does not have
/// yet, each in one transaction with its `schema_migrations` row, and
/// reports which were applied and which were present already. Running it
/// again applies nothing.
///
/// Refused, before anything is applied:
/// - a folder whose file names are wrong ([`Error::SchemaFileName`],
///   [`Error::SchemaDuplicateVersion`], [`Error::SchemaVersionGap`],
///   [`Error::SchemaEmpty`]);
/// - a database with a version newer than every file
///   ([`Error::SchemaTooNew`]): it belongs to a newer release;
/// - an applied file whose bytes changed since ([`Error::SchemaChecksumMismatch`]).
///
/// A file that fails to apply is rolled back whole ([`Error::SchemaApply`]);
/// the files before it stay applied.
#[tracing::instrument(
    name = "brotr.apply_schema",
    target = "bigbrotr::brotr",
    skip_all,
    fields(dir = %sql_dir.display()),
    err(level = "debug")
)]
pub async fn apply_schema(pool: &ConnectionPool, sql_dir: &Path) -> Result<SchemaReport> {
    let files = read_schema_dir(sql_dir)?;
    let known_version = files.last().map_or(0, |f| f.version);

    let mut tx = begin_locked(pool, "create schema_migrations").await?;
    tx.batch_execute(CREATE_TABLE)
        .await
        .map_err(database("create schema_migrations"))?;
    tx.commit()
        .await
        .map_err(database("create schema_migrations"))?;

    let rows = pool
        .fetch_all(
            "SELECT version, checksum FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(database("read schema_migrations"))?;
    let recorded: BTreeMap<i32, Vec<u8>> = rows
        .iter()
        .map(|row| (row.get::<_, i32>(0), row.get::<_, Vec<u8>>(1)))
        .collect();
    if let Some(&database_version) = recorded.keys().next_back() {
        if database_version > known_version {
            return Err(Error::SchemaTooNew {
                database_version,
                known_version,
            });
        }
    }
    for file in &files {
        if let Some(checksum) = recorded.get(&file.version) {
            check_checksum(file, checksum)?;
        }
    }

    let mut report = SchemaReport::default();
    for file in &files {
        if recorded.contains_key(&file.version) {
            report.already_present.push(file.into());
            continue;
        }
        if apply_file(pool, file).await? {
            tracing::info!(
                target: "bigbrotr::brotr",
                version = file.version,
                name = %file.name,
                checksum = %bigbrotr_utils::short_hash(&file.checksum),
                "applied schema file"
            );
            report.applied.push(file.into());
        } else {
            report.already_present.push(file.into());
        }
    }
    tracing::debug!(
        target: "bigbrotr::brotr",
        applied = report.applied.len(),
        already_present = report.already_present.len(),
        version = report.version(),
        "schema up to date"
    );
    Ok(report)
}

/// Applies `file` in one transaction holding the schema lock; `false` when
/// another process applied it meanwhile.
async fn apply_file(pool: &ConnectionPool, file: &SchemaFile) -> Result<bool> {
    const WHAT: &str = "apply schema file";
    let mut tx = begin_locked(pool, WHAT).await?;
    let present = tx
        .fetch_optional(
            "SELECT checksum FROM schema_migrations WHERE version = $1",
            &[(&file.version, Type::INT4)],
        )
        .await
        .map_err(database(WHAT))?;
    if let Some(row) = present {
        tx.rollback().await.map_err(database(WHAT))?;
        check_checksum(file, &row.get::<_, Vec<u8>>(0))?;
        return Ok(false);
    }
    tx.batch_execute(&file.sql)
        .await
        .map_err(|source| Error::SchemaApply {
            file: file.path.clone(),
            source,
        })?;
    let checksum: &[u8] = &file.checksum;
    let applied_at = bigbrotr_utils::now_timestamp();
    tx.execute(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) \
         VALUES ($1, $2, $3, $4)",
        &[
            (&file.version, Type::INT4),
            (&file.name, Type::TEXT),
            (&checksum, Type::BYTEA),
            (&applied_at, Type::INT8),
        ],
    )
    .await
    .map_err(database("record schema file"))?;
    tx.commit().await.map_err(|source| Error::SchemaApply {
        file: file.path.clone(),
        source,
    })?;
    Ok(true)
}

/// A transaction holding the schema lock.
async fn begin_locked(pool: &ConnectionPool, what: &'static str) -> Result<PoolTransaction> {
    let mut tx = pool.begin().await.map_err(database(what))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[(&LOCK_KEY, Type::INT8)],
    )
    .await
    .map_err(database(what))?;
    Ok(tx)
}

fn check_checksum(file: &SchemaFile, recorded: &[u8]) -> Result<()> {
    if recorded == file.checksum {
        Ok(())
    } else {
        Err(Error::SchemaChecksumMismatch {
            version: file.version,
            name: file.name.clone(),
            file: file.path.clone(),
        })
    }
}

fn database(what: &'static str) -> impl Fn(bigbrotr_pool::Error) -> Error {
    move |source| Error::Database { what, source }
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

    #[test]
    fn the_report_version_is_the_highest_known() {
        let report = SchemaReport {
            applied: vec![Migration {
                version: 3,
                name: "c".into(),
            }],
            already_present: vec![Migration {
                version: 2,
                name: "b".into(),
            }],
        };
        assert_eq!(report.version(), 3);
        assert_eq!(SchemaReport::default().version(), 0);
    }
}
