//! `bigbrotr config check`.

use std::io::Write;

use anyhow::Context as _;
use bigbrotr_config::{BrotrFile, Env, Implementation, PoolFile};
use bigbrotr_logging::LoggingFile;

/// Loads every configuration file of `implementation`, writes one line per file
/// (`ok` or its problems) to `out`, and fails when any file has a problem.
pub fn check(
    implementation: &Implementation,
    env: &Env,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let files = implementation
        .list_config_files()
        .context("listing the configuration files")?;
    let mut failed = 0;
    for (kind, file, path) in &files {
        let result = match (kind.as_str(), file.as_str()) {
            ("core", "pool") => implementation.load::<PoolFile>(kind, file, env).map(drop),
            ("core", "brotr") => implementation.load::<BrotrFile>(kind, file, env).map(drop),
            ("core", "logging") => implementation
                .load::<LoggingFile>(kind, file, env)
                .map(drop),
            // Service files get their typed check with their service.
            _ => bigbrotr_config::load_yaml(path, env).map(drop),
        };
        match result {
            Ok(()) => writeln!(out, "ok      {kind}/{file}.yaml")?,
            Err(error) => {
                failed += 1;
                writeln!(out, "problem {kind}/{file}.yaml: {error}")?;
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
