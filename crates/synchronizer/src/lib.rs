#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Layout
//!
//! - `config`: the file `config/services/synchronizer.yaml`
//!   ([`SynchronizerFile`]) and its section [`SynchronizerConfig`]: the
//!   filter, the time range, window and limits, timeouts, concurrency per
//!   network, batch size, leases and the worker id.
//! - `worker`: [`Synchronizer`], the checked
//!   configuration, filter, worker id and proxy; [`default_worker_id`].
//! - `cycle`: [`Synchronizer::run_cycle`], one pass: relays claimed per
//!   network, synced concurrently, leases renewed and released.
//! - `sync`: the sync of one relay: the forward walk from its
//!   cursor, its pending ranges, the re-sweep behind its cursor; events
//!   stored in batches, the cursor advanced after each commit.
//! - `walk`: the windows: walked with `REQ`s and paged while an
//!   answer may have been cut short by the relay's cap, or reconciled with
//!   NIP-77 and fetched by id; seconds the relay will not serve whole
//!   recorded as pending.
//! - `state`: what is learned of each relay ([`RelayState`]: effective
//!   cap, NIP-77, authentication, re-sweeps) and its pending ranges
//!   ([`PendingRange`]), in the database.
//! - `connection`: the WebSocket connection to a relay: the `REQ` loop
//!   with its timeouts and the check of every event, NIP-77 reconciliation
//!   and NIP-42 authentication ([`FetchError`] when it fails).
//! - `filter`: [`SyncFilter`], the configured filter, its window filters
//!   and hash, and [`Cursor`], a relay's position.
//! - `leases`: the calls of the `sync_*` functions: [`claim_relays`],
//!   [`renew_leases`], [`release_relays`] and [`advance_cursor`].
//! - `report`: [`CycleReport`], [`RelayReport`], [`SyncCounts`],
//!   [`Rejections`] and [`RelayOutcome`]: what a cycle did.
//! - `service`: [`SynchronizerService`], the synchronizer as a service of
//!   the runtime (`bigbrotr run synchronizer`), with its metrics.
//! - `error`: the [`Error`] of this crate.

mod config;
mod connection;
mod cycle;
mod error;
mod filter;
mod leases;
mod report;
mod service;
mod state;
mod sync;
mod walk;
mod worker;

pub use config::{
    AuthConfig, Concurrency, FilterConfig, LeaseConfig, Nip77Config, ResweepConfig, SizeLimits,
    SyncTimeouts, SynchronizerConfig, SynchronizerFile, MAX_LIMIT,
};
pub use connection::FetchError;
pub use error::{Error, Result};
pub use filter::{Cursor, Mismatch, SyncFilter};
pub use leases::{advance_cursor, claim_relays, release_relays, renew_leases, Claim, ClaimedRelay};
pub use report::{CycleReport, Rejections, RelayOutcome, RelayReport, SyncCounts};
pub use service::SynchronizerService;
pub use state::{
    due_pending, nip77_relay_count, pending_count, relay_state, PendingRange, PendingReason,
    RelayState,
};
pub use worker::{default_worker_id, Synchronizer};
