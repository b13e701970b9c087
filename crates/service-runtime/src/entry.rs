//! The entry of a process: [`run_services`] loads the services' files,
//! sets up logging, connects the pool, serves the HTTP endpoint, runs the
//! services and shuts down on SIGINT or SIGTERM.

use std::time::Duration;

use bigbrotr_config::{Env, Implementation};
use bigbrotr_logging::{LoggingFile, LoggingGuard};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::error::{Error, Result};
use crate::lifecycle::{RunReport, Runtime};
use crate::registry::ServiceRegistry;
use crate::service::TARGET;

/// After a second signal, how long the exit may wait for the cancel requests
/// of the database calls it stops.
const INTERRUPT_CANCEL_WAIT: Duration = Duration::from_secs(1);

/// How [`run_services`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Run a single iteration of each service, then stop.
    pub once: bool,
    /// Handle SIGINT and SIGTERM: the first stops the services gracefully,
    /// a second one ends the run at once with [`Error::Interrupted`].
    pub signals: bool,
    /// Install the logging of `config/core/logging.yaml` for the process.
    pub logging: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            once: false,
            signals: true,
            logging: true,
        }
    }
}

/// Runs the services `names` of `registry` on `implementation` until they
/// end, one fails, or a signal stops them:
///
/// 1. loads and validates each service's file (nothing starts when one is
///    wrong or a name is unknown);
/// 2. sets up logging (with [`RunOptions::logging`]);
/// 3. connects the pool ([`Runtime::connect`]) and serves the HTTP
///    endpoint;
/// 4. starts every service, each in its own task on the shared archive;
/// 5. on the end of every service, the failure of one, or SIGINT/SIGTERM,
///    shuts down ([`Runtime::shutdown`]).
///
/// Returns how each service ended; the caller fails when
/// [`RunReport::is_success`] is false. A second signal during shutdown
/// returns [`Error::Interrupted`] at once.
pub async fn run_services(
    implementation: &Implementation,
    env: &Env,
    registry: &ServiceRegistry,
    names: &[String],
    options: RunOptions,
) -> Result<RunReport> {
    if names.is_empty() {
        return Err(Error::NoService {
            known: registry.names(),
        });
    }
    let mut unique: Vec<&str> = Vec::new();
    for name in names {
        if !unique.contains(&name.as_str()) {
            unique.push(name);
        }
    }
    // Every name and file first: an unknown name or a bad file starts
    // nothing.
    for name in &unique {
        if !registry.contains(name) {
            return Err(Error::UnknownService {
                name: (*name).to_owned(),
                known: registry.names(),
            });
        }
    }
    let loaded = unique
        .iter()
        .map(|name| registry.load(name, implementation, env, options.once))
        .collect::<Result<Vec<_>>>()?;
    let process_name = unique.join("+");
    let _logging = if options.logging {
        Some(setup_logging(implementation, env, &process_name)?)
    } else {
        None
    };
    let mut signals = if options.signals {
        Some(Signals::install()?)
    } else {
        None
    };

    let application_name = format!("bigbrotr-{process_name}");
    let connecting = Runtime::connect(implementation, env, &application_name);
    let mut runtime = match &mut signals {
        Some(signals) => tokio::select! {
            runtime = connecting => runtime?,
            signal = signals.recv() => {
                tracing::info!(target: TARGET, signal, "stopped before the services started");
                return Ok(RunReport::default());
            }
        },
        None => connecting.await?,
    };
    if let Err(error) = runtime.serve_http().await {
        runtime.shutdown().await;
        return Err(error);
    }
    for service in loaded {
        service.start(&runtime);
    }

    let Some(signals) = &mut signals else {
        runtime.wait().await;
        return Ok(runtime.shutdown().await);
    };
    tokio::select! {
        () = runtime.wait() => {}
        signal = signals.recv() => {
            tracing::info!(
                target: TARGET,
                signal,
                grace_ms = runtime.settings().shutdown_grace.as_millis() as u64,
                "stopping: the current iterations may finish within the grace period"
            );
        }
    }
    tokio::select! {
        report = runtime.shutdown() => Ok(report),
        signal = signals.recv() => {
            tracing::warn!(target: TARGET, signal, "second signal: exiting at once");
            // Calls still running are stopped and their statements cancelled
            // now, and the exit waits (briefly) for those cancel requests to
            // be delivered: PgBouncer 1.18 exits on a fatal error when a
            // process ends in the middle of one.
            let _ = tokio::time::timeout(
                INTERRUPT_CANCEL_WAIT,
                runtime.brotr().pool().disconnect(Duration::ZERO),
            )
            .await;
            Err(Error::Interrupted)
        }
    }
}

/// Installs the logging of `config/core/logging.yaml` for the process,
/// naming `service` on every line.
pub fn setup_logging(
    implementation: &Implementation,
    env: &Env,
    service: &str,
) -> Result<LoggingGuard> {
    let file: LoggingFile = implementation
        .load("core", "logging", env)
        .map_err(|source| Error::Config {
            what: "logging".to_owned(),
            source,
        })?;
    bigbrotr_logging::init(&file.logging, service).map_err(|source| Error::Logging { source })
}

/// SIGINT and SIGTERM, from the moment they are installed.
#[derive(Debug)]
pub struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    /// Installs the handlers: from now on these signals no longer end the
    /// process by themselves.
    pub fn install() -> Result<Self> {
        let install = |kind| signal(kind).map_err(|source| Error::Signals { source });
        Ok(Self {
            terminate: install(SignalKind::terminate())?,
            interrupt: install(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next signal and returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
