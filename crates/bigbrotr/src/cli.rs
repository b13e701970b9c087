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
