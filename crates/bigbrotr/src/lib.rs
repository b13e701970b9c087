//! The `bigbrotr` command as a library, so tests can run it as `main` does.
//!
//! # Layout
//!
//! - [`cli`]: the command line ([`Cli`]) and what each command does ([`run`]).
//! - [`check`]: `config check`, which loads every configuration file of an
//!   implementation and reports all problems.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod check;
pub mod cli;

pub use cli::{run, Cli, Command};
