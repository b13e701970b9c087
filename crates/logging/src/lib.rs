#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Layout
//!
//! - `config`: the `logging` section of the configuration — outputs, each a
//!   console stream or rotated files with its own level and format — and its
//!   validation.
//! - `level`: checks the level of each output, a level name or filter
//!   directives, before anything is built.
//! - `setup`: turns a configuration into a subscriber ([`build`],
//!   [`Logging`]) and installs it for the process ([`init`]); the returned
//!   [`LoggingGuard`] flushes file outputs when dropped.
//! - `destination`: where the lines of an output go, a console stream or
//!   rotated files written by a background thread.
//! - `format`: the `standard` and `detailed` line formats (the
//!   `bunyan` format is `tracing-bunyan-formatter`'s, set up in `setup`).
//! - `fields`: [`StructuredFields`], which keeps the fields of each span with
//!   their JSON types for the formats.
//! - `clock`: where the formats take the time from; [`FixedClock`] makes
//!   lines reproducible in tests.
//! - `report`: [`log_error!`] for an error with its cause chain.
//! - `writer`: [`MemoryWriter`], an in-memory destination for tests.
//! - `error`: the [`Error`] of this crate.

mod clock;
mod config;
mod destination;
mod error;
mod fields;
mod format;
mod level;
mod report;
mod setup;
#[cfg(test)]
mod testing;
mod writer;

pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{
    ConsoleOutput, FileOutput, Format, LoggingConfig, LoggingFile, OutputConfig, Rotation, Stream,
};
pub use error::{Error, Result};
pub use fields::StructuredFields;
pub use format::{DetailedFormat, StandardFormat};
pub use report::ErrorChain;
pub use setup::{build, init, Logging, LoggingGuard};
pub use writer::MemoryWriter;

/// What the exported macros need from other crates, so their callers need
/// not depend on them.
#[doc(hidden)]
pub mod __private {
    pub use tracing;
}
