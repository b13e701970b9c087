//! Configuration of the runtime (`config/core/runtime.yaml`) and the shape
//! every service file (`config/services/<service>.yaml`) shares.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bigbrotr_config::{
    BrotrFile, ConfigFile, EgressFile, Env, FileType, Implementation, LoopConfig, NostrConfig,
    PoolFile, Problems, ServiceConfig, Validate,
};
use bigbrotr_logging::LoggingFile;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Port of the HTTP endpoint by default (9100 is usually taken by the
/// Prometheus node exporter).
pub(crate) const DEFAULT_HTTP_PORT: u16 = 9109;

/// The files under `config/core/` that every program of the workspace
/// reads, in the order the configuration reference shows them.
#[must_use]
pub fn core_files() -> Vec<FileType> {
    vec![
        FileType::of::<PoolFile>("core", "pool"),
        FileType::of::<BrotrFile>("core", "brotr"),
        FileType::of::<LoggingFile>("core", "logging"),
        FileType::of::<RuntimeFile>("core", "runtime"),
        FileType::of::<EgressFile>("core", "egress"),
    ]
}

/// The file `config/core/runtime.yaml`: a single `runtime` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeFile {
    /// How services stop, and the HTTP endpoint.
    pub runtime: RuntimeConfig,
}

impl Validate for RuntimeFile {
    fn validate(&self, problems: &mut Problems) {
        problems.section("runtime", &self.runtime);
    }
}

/// How services stop, and the HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// After SIGINT, SIGTERM or the failure of a service, how long the
    /// services may take to finish their current iteration before it is
    /// abandoned (nothing is half-written: every batch is one transaction).
    /// A second signal exits at once. Default 30 s.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub shutdown_grace: Duration,
    /// When the pool closes, how long database calls still running may
    /// take before they are cancelled. Default 5 s.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub pool_close_grace: Duration,
    /// What the failure of a service stops (it fails after
    /// `loop.max_consecutive_errors` failed iterations in a row, or when its
    /// work ends with an error): `stop_service`, that service alone while
    /// the others of the process go on, or `stop_process`, every service.
    /// Either way `/health` answers 503 from then on, `/status` names the
    /// service and its last error, and the process exits non-zero when it
    /// ends. Default `stop_service`.
    pub on_service_failure: OnServiceFailure,
    /// The endpoint serving `/health`, `/status` and `/metrics`.
    pub http: HttpConfig,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            shutdown_grace: Duration::from_secs(30),
            pool_close_grace: Duration::from_secs(5),
            on_service_failure: OnServiceFailure::default(),
            http: HttpConfig::default(),
        }
    }
}

/// What the failure of one service stops: `runtime.on_service_failure`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnServiceFailure {
    /// The failed service alone; the others go on.
    #[default]
    StopService,
    /// Every service of the process, which then ends.
    StopProcess,
}

impl Validate for RuntimeConfig {
    fn validate(&self, _problems: &mut Problems) {}
}

/// The endpoint serving `/health`, `/status`, `/metrics` and the
/// provenance endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Whether the endpoint serving `/health/live` (200 while the process
    /// answers), `/health/ready` and `/health` (200 or 503), `/status`
    /// (JSON), `/metrics` (Prometheus), `/events/<id>/relays` (the relays an
    /// event was seen on, JSON) and `/relays/<url>` (a relay and its latest
    /// check, JSON) runs. Default `true`.
    pub enabled: bool,
    /// IP address and port to listen on. Default `127.0.0.1:9109`; port 0
    /// takes any free port. Keep it on loopback unless a firewall guards it.
    #[schemars(extend("format" = "socket-address"))]
    pub listen: SocketAddr,
    /// How long `/health/ready` reuses the database's last answer to its
    /// `SELECT 1`, so that frequent probes cannot load the database; 0
    /// asks at every probe (one at a time). Default 5 s.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub database_check_interval: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_HTTP_PORT)),
            database_check_interval: Duration::from_secs(5),
        }
    }
}

/// Loads `config/core/runtime.yaml` of `implementation`; an implementation
/// without that file gets the defaults.
pub fn load_runtime_file(implementation: &Implementation, env: &Env) -> Result<RuntimeFile> {
    match implementation.load::<RuntimeFile>("core", "runtime", env) {
        Ok(file) => Ok(file),
        Err(bigbrotr_config::Error::FileNotFound { .. }) => Ok(RuntimeFile::default()),
        Err(source) => Err(Error::Config {
            what: "the runtime".to_owned(),
            source,
        }),
    }
}

/// The file of a service, `config/services/<service>.yaml`: the sections
/// every service has (`service`, `loop`, `nostr`) and its own.
///
/// Write it with [`service_file!`](crate::service_file), which declares
/// the common sections with the same names and types in every service, or
/// implement it by hand.
pub trait ServiceFile: ConfigFile + Clone + Send + Sync + 'static {
    /// The `service` section: display name and whether the service runs.
    fn service(&self) -> &ServiceConfig;
    /// The `loop` section: interval, iterations and error budget.
    fn loop_config(&self) -> &LoopConfig;
    /// The `loop` section, to change (`--once` sets `max_iterations` to 1).
    fn loop_config_mut(&mut self) -> &mut LoopConfig;
    /// The `nostr` section: SOCKS5 proxy and timeout for relays.
    fn nostr(&self) -> &NostrConfig;
}

/// Loads the file of service `service` from `implementation`:
/// `config/services/<service>.yaml`, with `${VAR}` expansion, the
/// `BIGBROTR_<SECTION>__<KEY>` overrides of `env`, and validation.
pub fn load_service_file<C: ServiceFile>(
    implementation: &Implementation,
    service: &str,
    env: &Env,
) -> Result<C> {
    implementation
        .load::<C>("services", service, env)
        .map_err(|source| Error::Config {
            what: format!("service `{service}`"),
            source,
        })
}

/// Declares the file struct of a service: the common sections `service`
/// ([`ServiceConfig`]), `loop` ([`LoopConfig`], field `looping`) and
/// `nostr` ([`NostrConfig`]), followed by the service's own sections, each
/// a type that is `Debug + Clone + Default + PartialEq + Serialize +
/// Deserialize + JsonSchema + Validate`.
///
/// The struct derives `Debug`, `Clone`, `Default`, `PartialEq`, `Serialize`,
/// `Deserialize` with `#[serde(deny_unknown_fields, default)]` and
/// `schemars::JsonSchema` (its doc comments become the configuration
/// reference's descriptions), validates
/// every section under its name, and implements [`ServiceFile`]. The
/// calling crate needs `serde` (with `derive`) and `schemars` among its
/// dependencies.
///
/// ```
/// use bigbrotr_config::{Problems, Validate};
/// use serde::{Deserialize, Serialize};
///
/// /// The `greeter` section.
/// #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
/// #[serde(deny_unknown_fields, default)]
/// pub struct GreeterConfig {
///     /// Whom to greet.
///     pub whom: String,
/// }
///
/// impl Validate for GreeterConfig {
///     fn validate(&self, problems: &mut Problems) {
///         if self.whom.is_empty() {
///             problems.push("whom", "must not be empty");
///         }
///     }
/// }
///
/// bigbrotr_service_runtime::service_file! {
///     /// The file `config/services/greeter.yaml`.
///     pub struct GreeterFile {
///         /// What the greeter does.
///         pub greeter: GreeterConfig,
///     }
/// }
///
/// use bigbrotr_service_runtime::ServiceFile as _;
/// let file: GreeterFile = bigbrotr_config::load_str(
///     "greeter:\n  whom: relays\nloop:\n  interval: 5m\n",
///     std::path::Path::new("greeter.yaml"),
///     &bigbrotr_config::Env::empty(),
/// )?;
/// assert_eq!(file.greeter.whom, "relays");
/// assert_eq!(file.loop_config().interval.as_secs(), 300);
/// # Ok::<(), bigbrotr_config::Error>(())
/// ```
#[macro_export]
macro_rules! service_file {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field_vis:vis $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Default,
            PartialEq,
            ::serde::Serialize,
            ::serde::Deserialize,
            ::schemars::JsonSchema,
        )]
        #[serde(deny_unknown_fields, default)]
        $vis struct $name {
            /// Identity of the service and whether it runs.
            pub service: $crate::__private::ServiceConfig,
            /// How often the service runs its cycle and when it gives up:
            /// the `loop` section.
            #[serde(rename = "loop")]
            pub looping: $crate::__private::LoopConfig,
            /// How the service reaches Nostr relays.
            pub nostr: $crate::__private::NostrConfig,
            $(
                $(#[$field_meta])*
                $field_vis $field: $ty,
            )*
        }

        impl $crate::__private::Validate for $name {
            fn validate(&self, problems: &mut $crate::__private::Problems) {
                problems.section("service", &self.service);
                problems.section("loop", &self.looping);
                problems.section("nostr", &self.nostr);
                $(
                    problems.section(stringify!($field), &self.$field);
                )*
            }
        }

        impl $crate::ServiceFile for $name {
            fn service(&self) -> &$crate::__private::ServiceConfig {
                &self.service
            }
            fn loop_config(&self) -> &$crate::__private::LoopConfig {
                &self.looping
            }
            fn loop_config_mut(&mut self) -> &mut $crate::__private::LoopConfig {
                &mut self.looping
            }
            fn nostr(&self) -> &$crate::__private::NostrConfig {
                &self.nostr
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bigbrotr_config::{load_str, Problem};

    use super::*;

    fn load(text: &str, env: &Env) -> bigbrotr_config::Result<RuntimeFile> {
        load_str(text, Path::new("runtime.yaml"), env)
    }

    #[test]
    fn the_defaults_listen_on_loopback_and_wait_30_seconds() {
        let file = load("", &Env::empty()).expect("valid");
        assert_eq!(file.runtime.shutdown_grace, Duration::from_secs(30));
        assert_eq!(file.runtime.pool_close_grace, Duration::from_secs(5));
        assert!(file.runtime.http.enabled);
        assert_eq!(
            file.runtime.http.listen,
            "127.0.0.1:9109".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            file.runtime.http.database_check_interval,
            Duration::from_secs(5)
        );
    }

    #[test]
    fn the_address_and_grace_come_from_the_file_and_the_environment() {
        let env = Env::from_pairs([("BIGBROTR_RUNTIME__HTTP__LISTEN", "[::1]:0")]);
        let file = load(
            "runtime:\n  shutdown_grace: 2s\n  http:\n    enabled: false\n    listen: 0.0.0.0:80\n",
            &env,
        )
        .expect("valid");
        assert_eq!(file.runtime.shutdown_grace, Duration::from_secs(2));
        assert!(!file.runtime.http.enabled);
        assert_eq!(file.runtime.http.listen, "[::1]:0".parse().unwrap());
    }

    #[test]
    fn a_failed_service_stops_alone_unless_the_file_says_stop_process() {
        let file = load("", &Env::empty()).expect("valid");
        assert_eq!(
            file.runtime.on_service_failure,
            OnServiceFailure::StopService
        );
        let file = load(
            "runtime:\n  on_service_failure: stop_process\n",
            &Env::empty(),
        )
        .expect("valid");
        assert_eq!(
            file.runtime.on_service_failure,
            OnServiceFailure::StopProcess
        );
        let error =
            load("runtime:\n  on_service_failure: stop_all\n", &Env::empty()).expect_err("invalid");
        match error {
            bigbrotr_config::Error::Invalid { problems, .. } => {
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert_eq!(problems[0].path, "runtime.on_service_failure");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_listen_address_that_is_not_ip_and_port_is_reported_with_its_key() {
        let error =
            load("runtime:\n  http:\n    listen: localhost\n", &Env::empty()).expect_err("invalid");
        match error {
            bigbrotr_config::Error::Invalid { problems, .. } => {
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert_eq!(problems[0].path, "runtime.http.listen");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    service_file! {
        /// A test file.
        struct DemoFile {
            /// A demo section.
            demo: DemoSection,
        }
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields, default)]
    struct DemoSection {
        size: u32,
    }

    impl Validate for DemoSection {
        fn validate(&self, problems: &mut Problems) {
            if self.size > 3 {
                problems.push("size", "must be ≤ 3");
            }
        }
    }

    #[test]
    fn a_service_file_has_the_common_sections_under_their_names() {
        let env = Env::from_pairs([("BIGBROTR_LOOP__MAX_ITERATIONS", "7")]);
        let file: DemoFile = load_str(
            "service:\n  name: demo-1\nloop:\n  interval: 2s\nnostr:\n  timeout: 3s\ndemo:\n  size: 2\n",
            Path::new("demo.yaml"),
            &env,
        )
        .expect("valid");
        assert_eq!(file.service().name, "demo-1");
        assert_eq!(file.loop_config().interval, Duration::from_secs(2));
        assert_eq!(file.loop_config().max_iterations, 7);
        assert_eq!(file.nostr().timeout, Duration::from_secs(3));
        assert_eq!(file.demo.size, 2);
    }

    #[test]
    fn every_section_of_a_service_file_is_validated_under_its_name() {
        let error = load_str::<DemoFile>(
            "loop:\n  interval: 0\ndemo:\n  size: 9\n  colour: red\n",
            Path::new("demo.yaml"),
            &Env::empty(),
        )
        .expect_err("invalid");
        match error {
            bigbrotr_config::Error::Invalid { problems, .. } => assert_eq!(
                problems,
                [
                    Problem::new("demo.colour", "unknown key; expected one of `size`"),
                    Problem::new("loop.interval", "must be > 0"),
                    Problem::new("demo.size", "must be ≤ 3"),
                ]
            ),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
}
