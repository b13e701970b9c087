#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - [`cli`]: the command line ([`Cli`]) and what each command does ([`run`]).
//! - [`check`]: `config check`, which loads every configuration file of an
//!   implementation and reports all problems.
//! - [`archive`]: opens an implementation's pool and archive from its
//!   configuration.
//! - [`import`]: `import`, which archives JSON-lines events in batches.
//! - [`services`]: `run`, which runs services by name from the
//!   [`registry`](services::registry) of the services this program knows.
//! - [`export`]: `export`, which writes archived events as JSON lines.
//! - [`reference`](mod@reference): `config reference`, the Markdown reference of every
//!   configuration file, generated from the structs and the shipped files.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod archive;
pub mod check;
pub mod cli;
pub mod export;
pub mod import;
pub mod reference;
pub mod services;

pub use cli::{run, Cli, Command};
