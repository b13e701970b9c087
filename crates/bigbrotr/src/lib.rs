#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - `cli`: the command line ([`Cli`], [`Command`], [`DbAction`],
//!   [`ConfigAction`]) and what each command does ([`run`]).
//! - `check`: `config check`, which loads every configuration file of an
//!   implementation and reports all problems.
//! - `archive`: opens an implementation's pool and archive from its
//!   configuration ([`open_archive_as`]).
//! - `import`: [`import`], which archives JSON-lines events in batches
//!   ([`ImportOptions`], [`ImportSummary`]).
//! - `services`: `run`, which runs services by name
//!   ([`run_services`]) from the registry of the services this program
//!   knows, and [`is_interrupted`].
//! - `export`: [`export`], which writes archived events as JSON lines, and
//!   [`parse_time`], a time given on the command line.
//! - `reference`: `config reference`, the Markdown reference of every
//!   configuration file ([`reference()`]), generated from the structs and
//!   the shipped files.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod archive;
mod check;
mod cli;
mod export;
mod import;
mod reference;
mod services;

pub use archive::open_archive_as;
pub use cli::{run, Cli, Command, ConfigAction, DbAction};
pub use export::{export, parse_time};
pub use import::{import, ImportOptions, ImportSummary};
pub use reference::{reference, REGENERATE};
pub use services::{is_interrupted, run_services};
