//! The schema runner: applies an implementation's numbered SQL files in
//! order, each once, and refuses a database that no longer matches them.
//!
//! The files, `NNN_name.sql` numbered from 1 without a gap, are read by
//! [`read_schema_dir`], which lives in `bigbrotr-pool` so that the test
//! databases are built from the very same bytes. Each file is applied in
//! one transaction together with its row in `schema_migrations` (version,
//! name, SHA-256 of the file's bytes, applied_at), so a file is applied
//! whole and recorded, or not at all. A file must therefore not contain
//! `BEGIN`/`COMMIT` itself, nor statements that cannot run in a transaction
//! (`CREATE INDEX CONCURRENTLY`).
//!
//! Several processes may run the runner at once: each transaction first
//! takes the same `pg_advisory_xact_lock` and checks again, inside the lock,
//! whether the file was applied meanwhile.
//!
//! Every statement, the body of a file included, is bounded by the pool's
//! `command_timeout`.

use std::collections::BTreeMap;
use std::path::Path;

use bigbrotr_pool::{column, read_schema_dir, ConnectionPool, PoolTransaction, SchemaFile, Type};

use crate::error::{database, Error, Result};

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

/// Applies the schema files of `sql_dir` that the database does not have
/// yet, each in one transaction with its `schema_migrations` row, and
/// reports which were applied and which were present already. Running it
/// again applies nothing.
///
/// Refused, before anything is applied:
/// - a folder that cannot be read or whose file names are wrong
///   ([`Error::SchemaFiles`], holding the reader's
///   [`SchemaFileName`](bigbrotr_pool::Error::SchemaFileName),
///   [`SchemaDuplicateVersion`](bigbrotr_pool::Error::SchemaDuplicateVersion),
///   [`SchemaVersionGap`](bigbrotr_pool::Error::SchemaVersionGap) or
///   [`SchemaEmpty`](bigbrotr_pool::Error::SchemaEmpty));
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
    let files = read_schema_dir(sql_dir).map_err(|source| Error::SchemaFiles { source })?;
    let known_version = files.last().map_or(0, |f| f.version);

    let mut tx = begin_locked(pool, "create schema_migrations").await?;
    tx.batch_execute(CREATE_TABLE)
        .await
        .map_err(database("create schema_migrations"))?;
    tx.commit()
        .await
        .map_err(database("create schema_migrations"))?;

    const READ: &str = "read schema_migrations";
    let rows = pool
        .fetch_all(
            "SELECT version, checksum FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(database(READ))?;
    let recorded: BTreeMap<i32, Vec<u8>> = rows
        .iter()
        .map(|row| {
            Ok((
                column(row, 0, READ, "version")?,
                column(row, 1, READ, "checksum")?,
            ))
        })
        .collect::<bigbrotr_pool::Result<_>>()
        .map_err(database(READ))?;
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
        let recorded: &[u8] = column(&row, 0, WHAT, "checksum").map_err(database(WHAT))?;
        check_checksum(file, recorded)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
