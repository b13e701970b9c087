//! `bigbrotr run`: the services this program knows, and running them.

use std::io::Write;

use bigbrotr_config::{Env, Implementation};
use bigbrotr_service_runtime::{RunOptions, ServiceRegistry};

/// The services `bigbrotr run` knows, by the name of their file under
/// `config/services/`. A new service is one more `register` line.
#[must_use]
pub(crate) fn registry() -> ServiceRegistry {
    ServiceRegistry::new()
        .register::<bigbrotr_initializer::Initializer>()
        .register::<bigbrotr_monitor::MonitorService>()
        .register::<bigbrotr_finder::FinderService>()
        .register::<bigbrotr_synchronizer::SynchronizerService>()
        .register::<bigbrotr_refresher::RefresherService>()
        .register::<bigbrotr_relay::RelayService>()
}

/// Runs the services `names` of `implementation` as
/// [`bigbrotr_service_runtime::run_services`] does, then writes how each
/// ended to `out`. Fails when a service failed, a name is unknown, a file is
/// invalid or the database cannot be reached.
pub async fn run_services(
    implementation: &Implementation,
    env: &Env,
    names: &[String],
    options: RunOptions,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let report =
        bigbrotr_service_runtime::run_services(implementation, env, &registry(), names, options)
            .await?;
    writeln!(out, "{report}")?;
    let failed: Vec<String> = report
        .failed()
        .iter()
        .map(|status| match &status.last_error {
            Some(error) => format!("{} ({error})", status.name),
            None => status.name.clone(),
        })
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "{} of {} services failed: {}",
        failed.len(),
        report.services.len(),
        failed.join(", ")
    );
    Ok(())
}

/// Whether `error` is the end of a run cut short by a second signal: the
/// process should exit at once.
#[must_use]
pub fn is_interrupted(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<bigbrotr_service_runtime::Error>(),
        Some(bigbrotr_service_runtime::Error::Interrupted)
    )
}
