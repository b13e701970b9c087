#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod child;
mod corpus;
mod cpu;
mod db;
mod ingest;
mod measure;
mod output;
mod relay;
mod scrape;
mod soak;
mod store;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The implementation measured.
const IMPLEMENTATION: &str = "bigbrotr";

/// Where the benchmarks' files, the `bigbrotr` command and the repository
/// are.
#[derive(Debug, Clone)]
struct Locations {
    /// Where generated events and the command's output go (`BENCH_DIR`).
    dir: PathBuf,
    /// The `bigbrotr` executable (`BIGBROTR_BIN`).
    binary: PathBuf,
    /// The repository: the folder holding `implementations/`.
    root: PathBuf,
}

impl Locations {
    fn from_env() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the benchmark's executable")?;
        // The executable sits in `<target>/release/`; the corpus goes to
        // `<target>/bench/`, the `bigbrotr` command is its neighbour.
        let exe_dir = exe.parent().unwrap_or(Path::new("."));
        let dir = std::env::var_os("BENCH_DIR").map_or_else(
            || exe_dir.parent().unwrap_or(exe_dir).join("bench"),
            PathBuf::from,
        );
        let binary = std::env::var_os("BIGBROTR_BIN").map_or_else(
            || exe_dir.join(format!("bigbrotr{}", std::env::consts::EXE_SUFFIX)),
            PathBuf::from,
        );
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir
            .join("..")
            .canonicalize()
            .unwrap_or_else(|_| manifest_dir.join(".."));
        Ok(Self { dir, binary, root })
    }
}

/// The cores available to this process.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// A positive count from the environment variable `name`, else `default`.
fn env_count(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(text) => {
            let value: usize = text
                .trim()
                .replace('_', "")
                .parse()
                .with_context(|| format!("{name}={text} is not a count"))?;
            anyhow::ensure!(value > 0, "{name} must be at least 1");
            Ok(value)
        }
        Err(_) => Ok(default),
    }
}

/// Whether the environment variable `name` is set to anything but empty or `0`.
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|value| !value.is_empty() && value != "0")
}

fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        None => ingest::run(),
        Some("soak") => soak::main(),
        Some(other) => anyhow::bail!(
            "unknown benchmark `{other}`: run without an argument for the ingest benchmark, \
             or with `soak` for the synchronizer's soak run"
        ),
    }
}
