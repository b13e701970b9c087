#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Layout
//!
//! - `config`: the file `config/services/monitor.yaml` ([`MonitorFile`])
//!   and its section [`MonitorConfig`]: how often relays are checked, how
//!   many at once per network, the time limit of each check, which checks
//!   run, the key variable and publishing.
//! - `checker`: [`Monitor`] and [`Monitor::check_relay`], the
//!   checks of one relay, and [`RelayCheck`], their outcome, with the NIP-66
//!   document stored for it ([`RelayCheck::nip66`]).
//! - `nip11`: the HTTP(S) request of a relay's NIP-11 document, its size
//!   and redirect limits, and how the answer is read ([`Nip11Fetch`]).
//! - `nip66`: the WebSocket checks: open, read (a `REQ` answered) and write
//!   (an event published and read back), with NIP-42 authentication and
//!   NIP-13 proof of work ([`write_check_event`]); [`Probe`] is one timed
//!   check.
//! - `cycle`: [`Monitor::run_cycle`], one cycle over the database:
//!   [`select_due_relays`], checks bounded per network, results stored in
//!   batches, and the [`CycleReport`].
//! - `publish`: the NIP-66 events (kind 30166 per relay, kind 10166 for
//!   the monitor) and [`publish_events`].
//! - `service`: [`MonitorService`], the monitor as a service of the
//!   runtime (`bigbrotr run monitor`), with its metrics.
//! - `error`: the [`Error`] of this crate.

mod checker;
mod config;
mod cycle;
mod error;
mod nip11;
mod nip66;
mod publish;
mod service;

pub use checker::{Monitor, RelayCheck};
pub use config::{
    CheckTimeouts, Checks, Concurrency, MonitorConfig, MonitorFile, PublishConfig,
    DEFAULT_KEYS_ENV, MAX_POW_DIFFICULTY,
};
pub use cycle::{select_due_relays, CycleReport, DueRelay, NetworkReport};
pub use error::{Error, Result};
pub use nip11::{Nip11Fetch, NIP11_MEDIA_TYPE};
pub use nip66::{write_check_event, Probe, WRITE_CHECK_IDENTIFIER, WRITE_CHECK_KIND};
pub use publish::{
    monitor_announcement_event, publish_events, relay_discovery_event, MONITOR_ANNOUNCEMENT_KIND,
    RELAY_DISCOVERY_KIND,
};
pub use service::MonitorService;
