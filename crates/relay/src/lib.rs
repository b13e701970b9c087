#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Layout
//!
//! The modules are private; their items are re-exported here.
//!
//! - `config`: the file `config/services/relay.yaml` ([`RelayFile`]) and
//!   its section [`RelayConfig`] (address, limits, [`RelayInfo`] for the
//!   NIP-11 document).
//! - `server`: [`RelayServer`], the listening socket, the connection limits
//!   per address and in all, and HTTP on the relay's port: the NIP-11
//!   document, and the upgrade to a WebSocket.
//! - `session`: one connection: `REQ`, `COUNT`, `CLOSE`, `NEG-OPEN`,
//!   `NEG-MSG`, `NEG-CLOSE` answered from the archive, `EVENT` refused.
//! - `query`: filters as SQL, one statement per filter shape over the
//!   indexes of `events`, the same filter matched in memory against new
//!   events, and an event written back as signed.
//! - `reads`: the queries themselves, each request in a transaction bounded
//!   by `relay.query_timeout`.
//! - `live`: the one task reading events archived after subscriptions'
//!   `EOSE`, shared by every connection through a bounded channel.
//! - `service`: [`RelayService`], the relay as a service of the runtime
//!   (`bigbrotr run relay`).
//! - `error`: the [`Error`] of this crate.

mod config;
mod error;
mod live;
mod query;
mod reads;
mod server;
mod service;
mod session;

pub use config::{RelayConfig, RelayFile, RelayInfo};
pub use error::{Error, Result};
pub use server::{RelayServer, SUPPORTED_NIPS};
pub use service::RelayService;

/// Tracing target of the relay's events.
const TARGET: &str = "bigbrotr::relay";
