//! The command line of `bigbrotr`.

use std::path::PathBuf;

use anyhow::Context as _;
use bigbrotr_config::{Env, Implementation};
use clap::{Parser, Subcommand};

/// BigBrotr archives the Nostr network into PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "bigbrotr", version, about)]
pub struct Cli {
    /// Folder holding `implementations/` (default: $BIGBROTR_ROOT, else the current folder).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Name of the implementation to use: a folder of `implementations/`.
    #[arg(
        long,
        short = 'i',
        global = true,
        default_value = "bigbrotr",
        value_name = "NAME"
    )]
    pub implementation: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Configuration commands.
    Config {
        /// What to do with the configuration.
        #[command(subcommand)]
        action: ConfigAction,
    },
}

/// What `config` does.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Load every configuration file of the implementation and print all problems.
    Check,
}

/// Runs a parsed command line; what it prints for the user goes to `out`.
pub fn run(cli: &Cli, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let process = Env::from_process();
    let root = Implementation::discover_root(cli.root.as_deref(), &process);
    let implementation = Implementation::open(&root, &cli.implementation)
        .with_context(|| format!("opening implementation `{}`", cli.implementation))?;
    let env = process
        .with_dotenv(&implementation.dotenv_path())
        .context("reading the implementation's .env")?;
    match &cli.command {
        Command::Config {
            action: ConfigAction::Check,
        } => crate::check::check(&implementation, &env, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository_root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn run_args(args: &[&str]) -> (anyhow::Result<()>, String) {
        let cli = Cli::try_parse_from(args).unwrap();
        let mut out = Vec::new();
        let result = run(&cli, &mut out);
        (result, String::from_utf8(out).unwrap())
    }

    #[test]
    fn config_check_passes_on_the_shipped_implementation() {
        let root = repository_root();
        let (result, out) = run_args(&[
            "bigbrotr",
            "--root",
            root.to_str().unwrap(),
            "config",
            "check",
        ]);
        result.unwrap();
        assert!(out.contains("ok      core/pool.yaml"), "{out}");
        assert!(out.contains("ok      core/brotr.yaml"), "{out}");
        assert!(out.contains("ok      core/logging.yaml"), "{out}");
    }

    #[test]
    fn config_check_reports_every_bad_file_and_fails() {
        let root = tempfile::tempdir().unwrap();
        let core = root.path().join("implementations/mine/config/core");
        std::fs::create_dir_all(&core).unwrap();
        std::fs::write(core.join("pool.yaml"), "pool:\n  max_size: 0\n  bogus: 1\n").unwrap();
        std::fs::write(core.join("brotr.yaml"), "brotr: [unclosed\n").unwrap();
        let (result, out) = run_args(&[
            "bigbrotr",
            "--root",
            root.path().to_str().unwrap(),
            "-i",
            "mine",
            "config",
            "check",
        ]);
        let error = result.unwrap_err().to_string();
        assert_eq!(error, "2 of 2 configuration files of `mine` have problems");
        assert!(out.contains("problem core/pool.yaml"), "{out}");
        assert!(out.contains("pool.max_size"), "{out}");
        assert!(out.contains("pool.bogus"), "{out}");
        assert!(out.contains("problem core/brotr.yaml"), "{out}");
    }

    #[test]
    fn an_unknown_implementation_is_named_in_the_error() {
        let root = tempfile::tempdir().unwrap();
        let (result, _) = run_args(&[
            "bigbrotr",
            "--root",
            root.path().to_str().unwrap(),
            "-i",
            "nope",
            "config",
            "check",
        ]);
        let error = format!("{:#}", result.unwrap_err());
        assert!(error.contains("opening implementation `nope`"), "{error}");
        assert!(error.contains("implementations/nope"), "{error}");
    }
}
