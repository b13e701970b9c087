#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod child;
mod cli;
mod corpus;
mod cpu;
mod db;
mod ingest;
mod measure;
mod output;
mod refresh;
mod relay;
mod scrape;
mod soak;
mod store;

use std::num::NonZeroUsize;

use clap::Parser as _;

use crate::cli::{Cli, Command};

/// The implementation measured.
const IMPLEMENTATION: &str = "bigbrotr";

/// The cores available to this process.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => ingest::run(cli.ingest),
        Some(Command::Soak(args)) => soak::run(args),
        Some(Command::Refresh(args)) => refresh::run(args),
        Some(Command::Relay(args)) => relay::run(args),
    }
}
