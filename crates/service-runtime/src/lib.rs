#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Layout
//!
//! - `service`: the contract of a service ([`Service`]: a name, a typed
//!   file, `run` with a cancellation token), the loop most services run
//!   ([`LoopService`]: `loop_iteration`, `should_continue`, `on_error`,
//!   driven by [`run_loop`]) and what a service is given
//!   ([`ServiceContext`]).
//! - `config`: the file `config/core/runtime.yaml` ([`RuntimeFile`]: grace
//!   periods, what a failed service stops ([`OnServiceFailure`]), HTTP
//!   endpoint), the [`ServiceFile`] trait every service file implements
//!   and the [`service_file!`] macro declaring one with the common sections
//!   `service`, `loop` and `nostr`.
//! - `entry`: [`run_services`], the whole life of a process: load the
//!   files, set up logging ([`setup_logging`]), connect, serve, run, and
//!   stop on SIGINT or SIGTERM ([`Signals`]; a second one ends it at once).
//! - `lifecycle`: [`Runtime`], several services on one shared archive:
//!   start, stop, shutdown within a grace period, pool closing; a
//!   [`ServiceHandle`] per service; the [`RunReport`] of how each ended.
//! - `process_status`: [`ProcessState`], what the endpoint reports on
//!   (readiness: the services, the pool, and the database's answer to a
//!   `SELECT 1` asked at most once per interval), and [`ProcessStatus`],
//!   what `/status` shows.
//! - `builtin_metrics`: the collectors of what the runtime reports on
//!   `/metrics` itself, read at each scrape: each service's state and loop
//!   figures and the pool's figures.
//! - `registry`: [`ServiceRegistry`], the services a program knows by
//!   name.
//! - `status`: [`State`] and [`ServiceStatus`] of each service.
//! - `metrics`: [`Metrics`], the process's one `prometheus-client`
//!   registry, written in the Prometheus text format, and the counters and
//!   gauges services ask it for by name ([`ServiceMetrics`]), at most
//!   [`MAX_SERIES_PER_METRIC`] label sets each.
//! - `http`: [`HttpServer`], `/health/live`, `/health/ready` (and
//!   `/health`), `/status`, `/metrics` and the provenance endpoints.
//! - `provenance`: the answers of `/events/<id>/relays` (the relays an event
//!   was seen on) and `/relays/<url>` (a relay and its latest check), JSON
//!   read from the archive.
//! - `serving`: [`Serving`], the handle of a task serving a listening
//!   socket (the HTTP endpoint's, a service's such as the archive relay's),
//!   stopped by `shutdown` or drop.
//! - `egress`: the egress policy of `config/core/egress.yaml`
//!   ([`load_egress_file`]) and WebSocket connections through it
//!   ([`connect_websocket`], [`EgressTransport`] for `nostr-sdk` clients).
//! - `error`: the [`Error`] of this crate.

mod builtin_metrics;
mod config;
mod egress;
mod entry;
mod error;
mod http;
mod keys;
mod lifecycle;
mod metrics;
mod process_status;
mod provenance;
mod registry;
mod service;
mod serving;
mod status;

pub use config::{
    core_files, load_runtime_file, load_service_file, HttpConfig, OnServiceFailure, RuntimeConfig,
    RuntimeFile, ServiceFile,
};
pub use egress::{
    connect_websocket, connect_websocket_with, load_egress_file, resolve_socks5, Egress,
    EgressTransport,
};
pub use entry::{run_services, setup_logging, RunOptions, Signals};
pub use error::{Error, Result};
pub use http::HttpServer;
pub use keys::{keys_from_env, service_keys};
pub use lifecycle::{RunReport, Runtime, ServiceHandle};
pub use metrics::{Counter, Gauge, Metrics, ServiceMetrics, MAX_SERIES_PER_METRIC, SERIES_DROPPED};
pub use process_status::{ProcessState, ProcessStatus};
pub use registry::{LoadedService, ServiceRegistry};
pub use service::{run_loop, LoopService, Service, ServiceContext};
pub use serving::Serving;
pub use status::{ServiceStatus, State, StatusCell};
pub use tokio_util::sync::CancellationToken;

/// What the exported macros need, so their callers need not depend on the
/// crates behind it.
#[doc(hidden)]
pub mod __private {
    pub use bigbrotr_config::{LoopConfig, NostrConfig, Problems, ServiceConfig, Validate};
}
