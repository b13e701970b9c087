//! The database connection, its pool and retries: the file
//! `config/core/pool.yaml`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

use crate::load::ExpansionDefaults;
use crate::validate::{Problems, Validate};

/// The file `config/core/pool.yaml`: how to reach the database and how to
/// pool connections to it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PoolFile {
    /// Where the database is and who to log in as.
    pub database: DatabaseConfig,
    /// How many connections to keep and how long to wait for them.
    pub pool: PoolConfig,
    /// How to retry when the database cannot be reached.
    pub retry: RetryConfig,
    /// Session limits `bigbrotr db init` stores on the server for the role.
    pub role: RoleConfig,
    /// Roles `bigbrotr db init` creates or updates beside the schema.
    pub roles: RolesConfig,
}

impl Validate for PoolFile {
    fn validate(&self, problems: &mut Problems) {
        problems.section("database", &self.database);
        problems.section("pool", &self.pool);
        problems.section("retry", &self.retry);
        problems.section("role", &self.role);
        problems.section("roles", &self.roles);
        for (key, name) in [
            ("roles.reader", &self.roles.reader),
            ("roles.writer", &self.roles.writer),
        ] {
            if !name.is_empty() && *name == self.database.user {
                problems.push(key, "must differ from database.user, which owns the schema");
            }
        }
        let limit = self.role.statement_timeout;
        if !limit.is_zero() && limit < self.pool.command_timeout {
            problems.push(
                "role.statement_timeout",
                format!(
                    "must be 0 (off) or ≥ pool.command_timeout ({:?}), so that the client gives up first",
                    self.pool.command_timeout
                ),
            );
        }
    }

    /// A password that only the default of `${DB_PASSWORD:…}` gave is the
    /// development one: refused unless the database is on this machine.
    fn validate_sources(&self, defaults: &ExpansionDefaults, problems: &mut Problems) {
        if defaults.gave("database.password") && !is_loopback(&self.database.host) {
            problems.push(
                "database.password",
                format!(
                    "comes from the default of a `${{VAR:default}}` reference, which is meant for the \
                     development database only, and host `{}` is not on this machine: set the variable \
                     (or BIGBROTR_DATABASE__PASSWORD)",
                    self.database.host
                ),
            );
        }
    }
}

/// Whether `host` is this machine: `localhost`, a loopback address, or a
/// unix socket folder.
#[must_use]
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim();
    let bare = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host.starts_with('/')
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether and how connections to the database use TLS; the meanings of
/// libpq's `sslmode` of the same names.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never TLS.
    #[default]
    Disable,
    /// TLS when the server offers it, else in clear; the certificate is not
    /// checked.
    Prefer,
    /// TLS or no connection; the certificate is not checked (encryption
    /// without authentication of the server).
    Require,
    /// TLS, with the server's certificate chained to `sslrootcert`.
    VerifyCa,
    /// TLS, with the server's certificate chained to `sslrootcert` and
    /// naming `host`.
    VerifyFull,
}

impl SslMode {
    /// The name written in the configuration: `verify-full`, …
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// Whether the server's certificate is checked against `sslrootcert`.
    #[must_use]
    pub fn verifies(self) -> bool {
        matches!(self, Self::VerifyCa | Self::VerifyFull)
    }
}

/// Where the database is and who to log in as.
///
/// `Debug` never shows the password, and serializing writes `[REDACTED]` in
/// its place (or an empty string when it is empty), so a serialized
/// configuration can be logged but not read back with its password.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Host name or IP address of the server (or of PgBouncer in front of
    /// it). Default `127.0.0.1`.
    pub host: String,
    /// TCP port. Default `56432`, the PgBouncer of the development database.
    pub port: u16,
    /// Name of the database. Default `bigbrotr`.
    pub database: String,
    /// User to log in as. Default `bigbrotr`.
    pub user: String,
    /// Password of `user`; never shown in `Debug` output or logs. Default
    /// empty. The development database's password is refused when `host`
    /// is not this machine.
    #[serde(serialize_with = "serialize_redacted")]
    #[schemars(with = "String")]
    pub password: SecretString,
    /// Whether the connection goes through PgBouncer in transaction pool
    /// mode, where named prepared statements cannot be used. Default `true`.
    pub use_pgbouncer: bool,
    /// Whether connections use TLS and how the server is checked: `disable`,
    /// `prefer`, `require`, `verify-ca` or `verify-full`, as libpq means
    /// them. Default `disable`, as the development database listens on
    /// loopback only and has no TLS; use `verify-full` for a database on
    /// another machine.
    pub sslmode: SslMode,
    /// PEM file of the certificate authorities the server's certificate must
    /// chain to; required by `verify-ca` and `verify-full`. A relative path
    /// is taken from the working folder. Default none.
    pub sslrootcert: Option<PathBuf>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 56432,
            database: "bigbrotr".to_owned(),
            user: "bigbrotr".to_owned(),
            password: SecretString::default(),
            use_pgbouncer: true,
            sslmode: SslMode::Disable,
            sslrootcert: None,
        }
    }
}

impl Validate for DatabaseConfig {
    fn validate(&self, problems: &mut Problems) {
        for (key, value) in [
            ("host", &self.host),
            ("database", &self.database),
            ("user", &self.user),
        ] {
            if value.trim().is_empty() {
                problems.push(key, "must not be empty");
            }
        }
        if self.port == 0 {
            problems.push("port", "must not be 0");
        }
        if self.sslmode.verifies() && self.sslrootcert.is_none() {
            problems.push(
                "sslrootcert",
                format!("must be set when sslmode is {}", self.sslmode.as_str()),
            );
        }
    }
}

/// Writes `[REDACTED]` for a non-empty secret and an empty string for an
/// empty one.
fn serialize_redacted<S: Serializer>(
    secret: &SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if secret.expose_secret().is_empty() {
        serializer.serialize_str("")
    } else {
        serializer.serialize_str("[REDACTED]")
    }
}

/// How many connections to keep and how long to wait for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Connections opened at start and kept open. Default 1.
    pub min_size: u32,
    /// Most connections open at once. Default 10.
    pub max_size: u32,
    /// Longest wait for a free connection. Default 30 s.
    #[serde(with = "crate::duration")]
    #[schemars(with = "crate::duration::Seconds")]
    pub timeout: Duration,
    /// Longest time one statement may run. Default 60 s.
    #[serde(with = "crate::duration")]
    #[schemars(with = "crate::duration::Seconds")]
    pub command_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            min_size: 1,
            max_size: 10,
            timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(60),
        }
    }
}

impl Validate for PoolConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.max_size == 0 {
            problems.push("max_size", "must be ≥ 1");
        } else if self.max_size < self.min_size {
            problems.push(
                "max_size",
                format!("must be ≥ min_size ({})", self.min_size),
            );
        }
        for (key, value) in [
            ("timeout", self.timeout),
            ("command_timeout", self.command_timeout),
        ] {
            if value.is_zero() {
                problems.push(key, "must be > 0");
            }
        }
    }
}

/// How to retry when the database cannot be reached: exponential backoff
/// from `initial_delay`, multiplied by `exponential_base` after each
/// attempt, capped at `max_delay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts in all, the first included. Default 5.
    pub max_attempts: u32,
    /// Wait before the second attempt; multiplied by `exponential_base`
    /// after each attempt, up to `max_delay`. Default 1 s.
    #[serde(with = "crate::duration")]
    #[schemars(with = "crate::duration::Seconds")]
    pub initial_delay: Duration,
    /// Longest wait between two attempts. Default 30 s.
    #[serde(with = "crate::duration")]
    #[schemars(with = "crate::duration::Seconds")]
    pub max_delay: Duration,
    /// Factor the wait is multiplied by after each attempt; at least 1.
    /// Default 2.0.
    pub exponential_base: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            exponential_base: 2.0,
        }
    }
}

impl Validate for RetryConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.max_attempts == 0 {
            problems.push("max_attempts", "must be ≥ 1");
        }
        if self.initial_delay > self.max_delay {
            problems.push(
                "initial_delay",
                format!("must be ≤ max_delay ({:?})", self.max_delay),
            );
        }
        if !(self.exponential_base.is_finite() && self.exponential_base >= 1.0) {
            problems.push("exponential_base", "must be a finite number ≥ 1");
        }
    }
}

/// Session limits that `bigbrotr db init` stores on the server for the
/// archive's role in its database (`ALTER ROLE … IN DATABASE … SET`).
/// PgBouncer drops such settings from the startup packet, so they must live
/// on the server; sessions opened after `db init` get them. 0 turns a limit
/// off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RoleConfig {
    /// `statement_timeout`: the server cancels a statement running longer,
    /// a backstop for statements whose client is gone; at least
    /// `pool.command_timeout`. Default 5 min.
    #[serde(with = "crate::duration")]
    #[schemars(with = "crate::duration::Seconds")]
    pub statement_timeout: Duration,
    /// `idle_in_transaction_session_timeout`: the server ends a session idle
    /// that long inside a transaction. Default 1 min.
    #[serde(with = "crate::duration")]
    #[schemars(with = "crate::duration::Seconds")]
    pub idle_in_transaction_session_timeout: Duration,
}

impl Default for RoleConfig {
    fn default() -> Self {
        Self {
            statement_timeout: Duration::from_secs(300),
            idle_in_transaction_session_timeout: Duration::from_secs(60),
        }
    }
}

impl Validate for RoleConfig {
    fn validate(&self, problems: &mut Problems) {
        for (key, value) in [
            ("statement_timeout", self.statement_timeout),
            (
                "idle_in_transaction_session_timeout",
                self.idle_in_transaction_session_timeout,
            ),
        ] {
            // PostgreSQL takes milliseconds in an int.
            if value.as_millis() > i32::MAX as u128 {
                problems.push(key, "must be at most 24 days");
            } else if !value.is_zero() && value.as_millis() == 0 {
                problems.push(key, "must be 0 (off) or at least 1ms");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Problem;

    fn problems_of(file: &PoolFile) -> Vec<Problem> {
        let mut problems = Problems::new();
        file.validate(&mut problems);
        problems.into_vec()
    }

    #[test]
    fn role_names_must_be_plain_distinct_and_not_the_owner() {
        let mut file = PoolFile::default();
        file.roles.reader = "analyst".to_owned();
        file.roles.writer = "archiver".to_owned();
        assert!(problems_of(&file).is_empty());
        for (reader, writer, key) in [
            ("Analyst", "archiver", "roles.reader"),
            ("analyst", "a-b", "roles.writer"),
            ("1st", "", "roles.reader"),
            ("same", "same", "roles.writer"),
            ("bigbrotr", "", "roles.reader"),
        ] {
            file.roles.reader = reader.to_owned();
            file.roles.writer = writer.to_owned();
            let problems = problems_of(&file);
            assert!(
                problems.iter().any(|problem| problem.path == key),
                "{reader}/{writer}: {problems:?}"
            );
        }
        file.roles = RolesConfig {
            reader_password_env: "NOT A NAME".to_owned(),
            ..RolesConfig::default()
        };
        assert_eq!(problems_of(&file).len(), 1);
    }

    #[test]
    fn the_defaults_are_the_development_database_and_valid() {
        let file = PoolFile::default();
        assert_eq!(file.database.host, "127.0.0.1");
        assert_eq!(file.database.port, 56432);
        assert_eq!(file.database.database, "bigbrotr");
        assert_eq!(file.database.user, "bigbrotr");
        assert_eq!(file.database.password.expose_secret(), "");
        assert!(file.database.use_pgbouncer);
        assert_eq!(
            file.pool,
            PoolConfig {
                min_size: 1,
                max_size: 10,
                timeout: Duration::from_secs(30),
                command_timeout: Duration::from_secs(60),
            }
        );
        assert_eq!(
            file.retry,
            RetryConfig {
                max_attempts: 5,
                initial_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(30),
                exponential_base: 2.0,
            }
        );
        assert_eq!(problems_of(&file), []);
    }

    #[test]
    fn every_sslmode_reads_by_its_libpq_name() {
        for (name, mode) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            let read: SslMode = serde_json::from_value(name.into()).expect("a mode");
            assert_eq!((read, read.as_str()), (mode, name));
            assert_eq!(mode.verifies(), name.starts_with("verify"));
        }
        assert!(serde_json::from_value::<SslMode>("verify_full".into()).is_err());
    }

    #[test]
    fn verifying_the_server_needs_a_root_certificate() {
        let mut file = PoolFile::default();
        file.database.sslmode = SslMode::VerifyCa;
        assert_eq!(
            problems_of(&file),
            [Problem::new(
                "database.sslrootcert",
                "must be set when sslmode is verify-ca"
            )]
        );
        file.database.sslrootcert = Some(PathBuf::from("root.crt"));
        assert_eq!(problems_of(&file), []);
        file.database.sslmode = SslMode::Require;
        file.database.sslrootcert = None;
        assert_eq!(problems_of(&file), []);
    }

    #[test]
    fn loopback_hosts_are_this_machine() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.9.8.7",
            "::1",
            "[::1]",
            "/run/postgresql",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "db.example.org",
            "10.0.0.1",
            "0.0.0.0",
            "::",
            "localhost.example",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn role_limits_are_checked() {
        let mut file = PoolFile::default();
        assert_eq!(file.role.statement_timeout, Duration::from_secs(300));
        assert_eq!(
            file.role.idle_in_transaction_session_timeout,
            Duration::from_secs(60)
        );
        file.role.statement_timeout = Duration::from_secs(59);
        file.role.idle_in_transaction_session_timeout = Duration::from_secs(30 * 24 * 3600);
        assert_eq!(
            problems_of(&file),
            [
                Problem::new(
                    "role.idle_in_transaction_session_timeout",
                    "must be at most 24 days"
                ),
                Problem::new(
                    "role.statement_timeout",
                    "must be 0 (off) or ≥ pool.command_timeout (60s), so that the client gives up first"
                ),
            ]
        );
        file.role.statement_timeout = Duration::ZERO;
        file.role.idle_in_transaction_session_timeout = Duration::from_micros(10);
        assert_eq!(
            problems_of(&file),
            [Problem::new(
                "role.idle_in_transaction_session_timeout",
                "must be 0 (off) or at least 1ms"
            )]
        );
    }

    #[test]
    fn sources_are_checked_only_for_the_password_of_a_remote_host() {
        let check = |host: &str, defaults: &ExpansionDefaults| {
            let mut file = PoolFile::default();
            file.database.host = host.to_owned();
            let mut problems = Problems::new();
            file.validate_sources(defaults, &mut problems);
            problems.into_vec()
        };
        let password = ExpansionDefaults::of(["database.password"]);
        assert_eq!(check("10.0.0.1", &password).len(), 1);
        assert_eq!(check("10.0.0.1", &password)[0].path, "database.password");
        assert_eq!(check("127.0.0.1", &password), []);
        assert_eq!(
            check("10.0.0.1", &ExpansionDefaults::of(["database.host"])),
            []
        );
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let mut file = PoolFile::default();
        file.database.password = SecretString::from("hunter2-s3cret");
        let debug = format!("{file:?} {file:#?} {:?}", file.database);
        assert!(!debug.contains("hunter2-s3cret"));
        assert!(debug.contains("REDACTED"));
    }

    #[test]
    fn serializing_redacts_the_password() {
        let mut database = DatabaseConfig::default();
        assert_eq!(
            serde_json::to_value(&database).expect("serializable")["password"],
            ""
        );
        database.password = SecretString::from("hunter2-s3cret");
        let json = serde_json::to_string(&database).expect("serializable");
        assert!(!json.contains("hunter2-s3cret"));
        assert!(json.contains(r#""password":"[REDACTED]""#));
    }

    #[test]
    fn empty_names_and_port_zero_are_reported_with_their_section() {
        let mut file = PoolFile::default();
        file.database.host = " ".into();
        file.database.database = String::new();
        file.database.user = String::new();
        file.database.port = 0;
        assert_eq!(
            problems_of(&file),
            [
                Problem::new("database.host", "must not be empty"),
                Problem::new("database.database", "must not be empty"),
                Problem::new("database.user", "must not be empty"),
                Problem::new("database.port", "must not be 0"),
            ]
        );
    }

    #[test]
    fn pool_sizes_and_timeouts_are_checked() {
        let mut file = PoolFile::default();
        file.pool.min_size = 5;
        file.pool.max_size = 2;
        file.pool.timeout = Duration::ZERO;
        file.pool.command_timeout = Duration::ZERO;
        assert_eq!(
            problems_of(&file),
            [
                Problem::new("pool.max_size", "must be ≥ min_size (5)"),
                Problem::new("pool.timeout", "must be > 0"),
                Problem::new("pool.command_timeout", "must be > 0"),
            ]
        );
        file = PoolFile::default();
        file.pool.min_size = 0;
        file.pool.max_size = 0;
        assert_eq!(
            problems_of(&file),
            [Problem::new("pool.max_size", "must be ≥ 1")]
        );
    }

    #[test]
    fn retry_settings_are_checked() {
        let mut file = PoolFile::default();
        file.retry.max_attempts = 0;
        file.retry.initial_delay = Duration::from_secs(60);
        file.retry.exponential_base = 0.5;
        assert_eq!(
            problems_of(&file),
            [
                Problem::new("retry.max_attempts", "must be ≥ 1"),
                Problem::new("retry.initial_delay", "must be ≤ max_delay (30s)"),
                Problem::new("retry.exponential_base", "must be a finite number ≥ 1"),
            ]
        );
        file = PoolFile::default();
        file.retry.exponential_base = f64::INFINITY;
        assert_eq!(
            problems_of(&file),
            [Problem::new(
                "retry.exponential_base",
                "must be a finite number ≥ 1"
            )]
        );
        file.retry.exponential_base = f64::NAN;
        assert_eq!(problems_of(&file).len(), 1);
    }
}

/// Roles `bigbrotr db init` creates (or updates) beside the schema, so that
/// the archive's owner is not the role everything logs in as: a writer for
/// the services and a reader for analysts. `db init` runs as
/// `database.user`, which owns the schema and must be allowed to create
/// roles (`CREATEROLE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RolesConfig {
    /// The role for analysts: it may connect, read every table and view
    /// (`SELECT`, tables made later included) and nothing else; its sessions
    /// are read-only. Empty (the default): no such role is made.
    pub reader: String,
    /// Name of the environment variable holding the reader's password, set
    /// at each `db init` when the variable is set and not empty (a new role
    /// without one cannot log in with a password). Default
    /// `BIGBROTR_READER_PASSWORD`.
    pub reader_password_env: String,
    /// The role the services log in as: it may read and write the rows of
    /// every table, use the sequences and call the functions, but not
    /// change the schema; it gets the session limits of `role`. Empty (the
    /// default): no such role is made.
    pub writer: String,
    /// Name of the environment variable holding the writer's password, as
    /// for the reader. Default `BIGBROTR_WRITER_PASSWORD`.
    pub writer_password_env: String,
}

impl Default for RolesConfig {
    fn default() -> Self {
        Self {
            reader: String::new(),
            reader_password_env: "BIGBROTR_READER_PASSWORD".to_owned(),
            writer: String::new(),
            writer_password_env: "BIGBROTR_WRITER_PASSWORD".to_owned(),
        }
    }
}

impl Validate for RolesConfig {
    fn validate(&self, problems: &mut Problems) {
        for (key, name) in [("reader", &self.reader), ("writer", &self.writer)] {
            if !name.is_empty() && !is_role_name(name) {
                problems.push(
                    key,
                    "must be a lower-case SQL name: letters a-z, digits and `_`, not starting with a digit, at most 63 bytes",
                );
            }
        }
        if !self.reader.is_empty() && self.reader == self.writer {
            problems.push("writer", "must differ from reader");
        }
        for (key, name) in [
            ("reader_password_env", &self.reader_password_env),
            ("writer_password_env", &self.writer_password_env),
        ] {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                problems.push(
                    key,
                    "must be an environment variable name: letters, digits and `_`",
                );
            }
        }
    }
}

/// Whether `name` is a role name that needs no quoting in SQL.
fn is_role_name(name: &str) -> bool {
    name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
