#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Layout
//!
//! The modules are private; their items are re-exported here.
//!
//! - `config`: the file `config/services/refresher.yaml`
//!   ([`RefresherFile`]) and its section [`RefresherConfig`]: which views,
//!   and the time limit of each refresh.
//! - `cycle`: [`Refresher`], the views it refreshes (through the
//!   implementation's `stats_views()`), the refresh of one
//!   ([`Refresher::refresh`], through `refresh_stats_view` within its time
//!   limit) and one cycle over all of them ([`Refresher::run_cycle`],
//!   [`CycleReport`]).
//! - `cleanup`: [`Cleanups`], the maintenance run every
//!   `brotr.cleanup_interval`: relay checks past their retention, orphan
//!   documents and, when asked, orphan events ([`Cleanup`]).
//! - `service`: [`RefresherService`], the refresher as a service of the
//!   runtime (`bigbrotr run refresher`), with its metrics.
//! - `error`: the [`Error`] of this crate.

mod cleanup;
mod config;
mod cycle;
mod error;
mod service;

pub use cleanup::{Cleanup, Cleanups};
pub use config::{RefresherConfig, RefresherFile};
pub use cycle::{CycleReport, Refresher};
pub use error::{Error, Result};
pub use service::RefresherService;
