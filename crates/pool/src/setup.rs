//! Turning the configuration sections into a driver configuration, a
//! deadpool pool and a retry policy. No I/O happens here (the TLS
//! connector, which reads `database.sslrootcert`, is built in `tls`).

use std::num::NonZeroU32;
use std::time::Duration;

use bigbrotr_config::{DatabaseConfig, PoolConfig, Problems, RetryConfig, SslMode};
use bigbrotr_utils::RetryPolicy;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::ExposeSecret;

use crate::error::{Error, Result};
use crate::tls::{driver_ssl_mode, TlsConnector};

/// The `application_name` connections report unless told otherwise.
pub const APPLICATION_NAME: &str = "bigbrotr";

/// Idle time after which TCP keepalive probes start. The operating system
/// default (two hours) would leave a connection to a vanished PgBouncer
/// looking healthy for far too long.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(30);
/// Time between two keepalive probes.
const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes before the connection counts as dead.
const KEEPALIVES_RETRIES: u32 = 3;

/// Where connections go, for error messages: everything but the
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) database: String,
    pub(crate) sslmode: SslMode,
}

impl Target {
    pub(crate) fn of(database: &DatabaseConfig) -> Self {
        Self {
            host: database.host.clone(),
            port: database.port,
            database: database.database.clone(),
            sslmode: database.sslmode,
        }
    }

    /// [`Error::Tls`] when rustls refused the handshake, else
    /// [`Error::Connect`].
    pub(crate) fn connect_error(&self, source: tokio_postgres::Error) -> Error {
        if let Some(problem) = crate::tls::tls_problem(&source) {
            return Error::Tls {
                host: self.host.clone(),
                port: self.port,
                database: self.database.clone(),
                sslmode: self.sslmode,
                problem,
                source,
            };
        }
        Error::Connect {
            host: self.host.clone(),
            port: self.port,
            database: self.database.clone(),
            source,
        }
    }
}

/// Checks the three sections together, reporting every problem at once.
pub(crate) fn validate(
    database: &DatabaseConfig,
    pool: &PoolConfig,
    retry: &RetryConfig,
) -> Result<()> {
    let mut problems = Problems::new();
    problems.section("database", database);
    problems.section("pool", pool);
    problems.section("retry", retry);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            problems: problems.into_vec(),
        })
    }
}

/// The driver configuration: credentials, `application_name`, whether to
/// ask for TLS, a connect timeout of `pool.timeout` and TCP keepalives.
pub(crate) fn pg_config(
    database: &DatabaseConfig,
    pool: &PoolConfig,
    application_name: &str,
) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&database.host)
        .port(database.port)
        .user(&database.user)
        .dbname(&database.database)
        .application_name(application_name)
        .ssl_mode(driver_ssl_mode(database.sslmode))
        .connect_timeout(pool.timeout)
        .keepalives(true)
        .keepalives_idle(KEEPALIVES_IDLE)
        .keepalives_interval(KEEPALIVES_INTERVAL)
        .keepalives_retries(KEEPALIVES_RETRIES);
    let password = database.password.expose_secret();
    if !password.is_empty() {
        config.password(password);
    }
    config
}

/// The deadpool pool: at most `pool.max_size` connections, every deadpool
/// timeout set to `pool.timeout`, and the cheap recycling check that is right
/// behind PgBouncer (the server side is pooled there).
pub(crate) fn deadpool(
    config: tokio_postgres::Config,
    tls: TlsConnector,
    pool: &PoolConfig,
) -> Result<Pool> {
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(to_usize(pool.max_size))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(pool.timeout))
        .create_timeout(Some(pool.timeout))
        .recycle_timeout(Some(pool.timeout))
        .build()
        .map_err(|source| Error::Build { source })
}

/// The backoff of [`RetryConfig`], without jitter so that the configured
/// delays are the delays waited.
pub(crate) fn retry_policy(retry: &RetryConfig) -> Result<RetryPolicy> {
    let invalid = |path: &str, message: &str| Error::InvalidConfig {
        problems: vec![bigbrotr_config::Problem::new(path, message)],
    };
    let attempts = NonZeroU32::new(retry.max_attempts)
        .ok_or_else(|| invalid("retry.max_attempts", "must be ≥ 1"))?;
    RetryPolicy::new(
        attempts,
        retry.initial_delay,
        retry.exponential_base,
        retry.max_delay,
    )
    .map(|policy| policy.with_jitter(false))
    .map_err(|_| {
        invalid(
            "retry",
            "exponential_base must be a finite number ≥ 1 and initial_delay ≤ max_delay",
        )
    })
}

pub(crate) fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn the_driver_config_carries_credentials_name_timeout_and_keepalives() {
        let database = DatabaseConfig {
            password: SecretString::from("s3cret"),
            ..DatabaseConfig::default()
        };
        let pool = PoolConfig {
            timeout: Duration::from_secs(7),
            ..PoolConfig::default()
        };
        let config = pg_config(&database, &pool, "bigbrotr-monitor");
        assert_eq!(config.get_user(), Some("bigbrotr"));
        assert_eq!(config.get_dbname(), Some("bigbrotr"));
        assert_eq!(config.get_ports(), [56432]);
        assert_eq!(config.get_password(), Some("s3cret".as_bytes()));
        assert_eq!(config.get_application_name(), Some("bigbrotr-monitor"));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(7)));
        assert!(config.get_keepalives());
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        assert_eq!(config.get_keepalives_idle(), KEEPALIVES_IDLE);
    }

    #[test]
    fn an_empty_password_is_not_sent() {
        let config = pg_config(
            &DatabaseConfig::default(),
            &PoolConfig::default(),
            APPLICATION_NAME,
        );
        assert_eq!(config.get_password(), None);
    }

    #[test]
    fn the_retry_policy_follows_the_configuration_without_jitter() {
        let retry = RetryConfig {
            max_attempts: 4,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            exponential_base: 2.0,
        };
        let policy = retry_policy(&retry).expect("valid");
        assert_eq!(policy.max_attempts().get(), 4);
        assert!(!policy.jitter());
        assert_eq!(policy.delay_for(1), Duration::from_millis(100));
        assert_eq!(policy.delay_for(2), Duration::from_millis(200));
        assert_eq!(policy.delay_for(3), Duration::from_millis(300));
    }

    #[test]
    fn zero_attempts_are_refused() {
        let retry = RetryConfig {
            max_attempts: 0,
            ..RetryConfig::default()
        };
        assert!(matches!(
            retry_policy(&retry),
            Err(Error::InvalidConfig { problems }) if problems[0].path == "retry.max_attempts"
        ));
    }

    #[test]
    fn validation_reports_every_section_at_once() {
        let database = DatabaseConfig {
            port: 0,
            ..DatabaseConfig::default()
        };
        let pool = PoolConfig {
            max_size: 0,
            ..PoolConfig::default()
        };
        let retry = RetryConfig {
            exponential_base: 0.5,
            ..RetryConfig::default()
        };
        let Err(Error::InvalidConfig { problems }) = validate(&database, &pool, &retry) else {
            panic!("expected InvalidConfig");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["database.port", "pool.max_size", "retry.exponential_base"]
        );
        assert!(validate(
            &DatabaseConfig::default(),
            &PoolConfig::default(),
            &RetryConfig::default()
        )
        .is_ok());
    }

    #[test]
    fn the_target_never_holds_the_password() {
        let database = DatabaseConfig {
            password: SecretString::from("hunter2"),
            ..DatabaseConfig::default()
        };
        let target = Target::of(&database);
        assert!(!format!("{target:?}").contains("hunter2"));
        assert_eq!(target.port, 56432);
    }
}
