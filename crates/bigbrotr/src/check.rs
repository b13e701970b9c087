//! `bigbrotr config check`.

use std::io::Write;

use anyhow::Context as _;
use bigbrotr_config::{BrotrFile, Env, Implementation, PoolFile};
use bigbrotr_logging::LoggingFile;
use bigbrotr_service_runtime::RuntimeFile;

/// Loads every configuration file of `implementation` — each core file with
/// its typed struct, each service file with its service's (through the
/// [`registry`](crate::services::registry)) — writes one line per file
/// (`ok` or its problems) to `out`, and fails when any file has a problem.
pub(crate) fn check(
    implementation: &Implementation,
    env: &Env,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let files = implementation
        .list_config_files()
        .context("listing the configuration files")?;
    let registry = crate::services::registry();
    let mut failed = 0;
    for (kind, file, path) in &files {
        let result: Result<(), String> = match (kind.as_str(), file.as_str()) {
            ("core", "pool") => loaded(implementation.load::<PoolFile>(kind, file, env)),
            ("core", "brotr") => loaded(implementation.load::<BrotrFile>(kind, file, env)),
            ("core", "logging") => loaded(implementation.load::<LoggingFile>(kind, file, env)),
            ("core", "runtime") => loaded(implementation.load::<RuntimeFile>(kind, file, env)),
            ("services", service) if registry.contains(service) => registry
                .check(service, implementation, env)
                .map_err(|error| match error {
                    // The configuration error names the file and each key.
                    bigbrotr_service_runtime::Error::Config { source, .. } => source.to_string(),
                    other => other.to_string(),
                }),
            ("services", service) => {
                // A file of a service this program does not know (a typo, or
                // a service of another build): reported, checked as YAML only.
                if let Err(error) = bigbrotr_config::load_yaml(path, env) {
                    Err(error.to_string())
                } else {
                    writeln!(
                        out,
                        "unknown {kind}/{file}.yaml: no service is named `{service}`; known services: {}; checked as YAML only",
                        registry.names().join(", ")
                    )?;
                    continue;
                }
            }
            // Files of other folders only need to be valid YAML.
            _ => loaded(bigbrotr_config::load_yaml(path, env)),
        };
        match result {
            Ok(()) => writeln!(out, "ok      {kind}/{file}.yaml")?,
            Err(problem) => {
                failed += 1;
                writeln!(out, "problem {kind}/{file}.yaml: {problem}")?;
            }
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} configuration files of `{}` have problems",
        files.len(),
        implementation.name()
    );
    Ok(())
}

fn loaded<T>(result: bigbrotr_config::Result<T>) -> Result<(), String> {
    result.map(drop).map_err(|error| error.to_string())
}
