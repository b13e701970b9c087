#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Layout
//!
//! - [`config`]: the file `config/services/synchronizer.yaml`
//!   ([`SynchronizerFile`]) and its section [`SynchronizerConfig`]: the
//!   filter, the time range, window and limits, timeouts, concurrency per
//!   network, batch size, leases and the worker id.
//! - [`synchronizer`](mod@synchronizer): [`Synchronizer`], the checked
//!   configuration, filter, worker id and proxy; [`default_worker_id`].
//! - [`cycle`]: [`Synchronizer::run_cycle`], one pass: relays claimed per
//!   network, synced concurrently, leases renewed and released.
//! - `sync` (private): the sync of one relay: windows walked from its
//!   cursor and split while full, events stored in batches, the cursor
//!   advanced after each commit.
//! - [`connection`]: the WebSocket connection to a relay and the `REQ` loop
//!   of one window, with its timeouts and the check of every event
//!   ([`FetchError`] when it fails).
//! - [`filter`]: [`SyncFilter`], the configured filter, its window filters
//!   and hash, and [`Cursor`], a relay's position.
//! - [`leases`]: the calls of the `sync_*` functions: [`claim_relays`],
//!   [`renew_leases`], [`release_relays`] and [`advance_cursor`].
//! - [`report`]: [`CycleReport`], [`RelayReport`], [`SyncCounts`],
//!   [`Rejections`] and [`RelayOutcome`]: what a cycle did.
//! - [`service`]: [`SynchronizerService`], the synchronizer as a service of
//!   the runtime (`bigbrotr run synchronizer`), with its metrics.
//! - [`error`]: the [`Error`] of this crate.

pub mod config;
pub mod connection;
pub mod cycle;
pub mod error;
pub mod filter;
pub mod leases;
pub mod report;
pub mod service;
mod sync;
pub mod synchronizer;

pub use config::{
    Concurrency, FilterConfig, LeaseConfig, SyncTimeouts, SynchronizerConfig, SynchronizerFile,
    MAX_LIMIT,
};
pub use connection::FetchError;
pub use error::{Error, Result};
pub use filter::{Cursor, Mismatch, SyncFilter};
pub use leases::{advance_cursor, claim_relays, release_relays, renew_leases, Claim, ClaimedRelay};
pub use report::{CycleReport, Rejections, RelayOutcome, RelayReport, SyncCounts};
pub use service::SynchronizerService;
pub use synchronizer::{default_worker_id, Synchronizer};
