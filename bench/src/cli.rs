//! The command line: which benchmark runs, and its settings. Every setting
//! is an option that an environment variable sets too (`BENCH_EVENTS`,
//! `BENCH_SOAK_CASE`, …): `bigbrotr-bench --help`,
//! `bigbrotr-bench soak --help`, `bigbrotr-bench refresh --help` and
//! `bigbrotr-bench relay --help` list them with their defaults.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{ArgAction, Subcommand};

use crate::{ingest, refresh, relay, soak};

/// Benchmarks of BigBrotr, through PgBouncer; without a command, the ingest
/// benchmark (events per second and peak memory). Each option can also be
/// set by the environment variable shown beside it.
#[derive(Debug, clap::Parser)]
#[command(name = "bigbrotr-bench", args_conflicts_with_subcommands = true)]
pub(crate) struct Cli {
    /// The benchmark to run instead of the ingest benchmark.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// The settings of the ingest benchmark.
    #[command(flatten)]
    pub(crate) ingest: ingest::Args,
}

/// The benchmarks besides the ingest benchmark.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The soak run of the synchronizer: it archives from relays in this
    /// process for minutes; events/s, requests, bytes and memory over time.
    Soak(soak::Args),
    /// The refresh of every statistics view on an archive of a million
    /// events generated in the database: seconds per view, first, again and
    /// after 1 % more events.
    Refresh(refresh::Args),
    /// The archive relay and nostr-rs-relay answering the same filters on
    /// the same million events: requests per second and latency per filter
    /// shape.
    Relay(relay::Args),
}

/// The settings every benchmark takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Shared {
    /// Where the generated events and the command's output go [default:
    /// `bench` in the target folder]
    #[arg(long, env = "BENCH_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The `bigbrotr` executable [default: next to this one]
    #[arg(long = "bigbrotr-bin", env = "BIGBROTR_BIN", value_name = "FILE")]
    binary: Option<PathBuf>,
    /// Keep the databases for inspection (set to anything but empty or `0`)
    #[arg(
        long,
        env = "BENCH_KEEP_DB",
        action = ArgAction::SetTrue,
        value_parser = flag,
        default_value = "0"
    )]
    pub(crate) keep_db: bool,
}

/// Where the benchmarks' files, the `bigbrotr` command and the repository
/// are.
#[derive(Debug, Clone)]
pub(crate) struct Locations {
    /// Where generated events and the command's output go (`BENCH_DIR`).
    pub(crate) dir: PathBuf,
    /// The `bigbrotr` executable (`BIGBROTR_BIN`).
    pub(crate) binary: PathBuf,
    /// The repository: the folder holding `implementations/`.
    pub(crate) root: PathBuf,
}

impl Locations {
    /// The locations `shared` names, else those beside this executable.
    pub(crate) fn new(shared: &Shared) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the benchmark's executable")?;
        // The executable sits in `<target>/release/`; the corpus goes to
        // `<target>/bench/`, the `bigbrotr` command is its neighbour.
        let exe_dir = exe.parent().unwrap_or(Path::new("."));
        let dir = shared
            .dir
            .clone()
            .unwrap_or_else(|| exe_dir.parent().unwrap_or(exe_dir).join("bench"));
        let binary = shared
            .binary
            .clone()
            .unwrap_or_else(|| exe_dir.join(format!("bigbrotr{}", std::env::consts::EXE_SUFFIX)));
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir
            .join("..")
            .canonicalize()
            .unwrap_or_else(|_| manifest_dir.join(".."));
        Ok(Self { dir, binary, root })
    }
}

/// A positive count: digits, with `_` allowed between them (`1_000_000`).
pub(crate) fn count(text: &str) -> Result<usize, String> {
    let value: usize = text
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|error| format!("not a count ({error})"))?;
    if value == 0 {
        return Err("must be at least 1".to_owned());
    }
    Ok(value)
}

/// Whether a switch is on: set to anything but empty or `0`.
pub(crate) fn flag(text: &str) -> Result<bool, Infallible> {
    Ok(!text.is_empty() && text != "0")
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_count_may_group_its_digits_and_must_be_positive() {
        assert_eq!(count(" 1_000_000 "), Ok(1_000_000));
        assert!(count("0").is_err());
        assert!(count("ten").is_err());
        assert!(count("").is_err());
    }

    #[test]
    fn a_switch_is_on_unless_empty_or_zero() {
        assert_eq!(flag(""), Ok(false));
        assert_eq!(flag("0"), Ok(false));
        assert_eq!(flag("1"), Ok(true));
        assert_eq!(flag("yes"), Ok(true));
    }

    #[test]
    fn without_a_command_the_ingest_benchmark_runs_with_its_defaults() {
        let cli = Cli::try_parse_from(["bigbrotr-bench"]).unwrap();
        assert!(cli.command.is_none());
    }

    #[test]
    fn soak_refresh_and_relay_are_commands() {
        let cli = Cli::try_parse_from(["bigbrotr-bench", "soak"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Soak(_))));
        let cli = Cli::try_parse_from(["bigbrotr-bench", "refresh", "--events", "10_000"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Refresh(_))));
        let cli = Cli::try_parse_from(["bigbrotr-bench", "relay", "--requests", "100"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Relay(_))));
        assert!(Cli::try_parse_from(["bigbrotr-bench", "other"]).is_err());
    }
}
