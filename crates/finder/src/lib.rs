#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Layout
//!
//! - `config`: the file `config/services/finder.yaml` ([`FinderFile`])
//!   and its section [`FinderConfig`]: page and batch sizes, URL limits,
//!   which events are read ([`EventSources`]) and the HTTP sources
//!   ([`HttpSource`]).
//! - `scanner`: [`Finder`], its configuration checked, and its
//!   scan cursor in the database ([`ScanCursor`]).
//! - `candidate`: where a candidate URL comes from ([`Source`]), the checks
//!   it must pass ([`check_url`], built on
//!   [`validate_relay_url`](bigbrotr_brotr::validate_relay_url)) and why one
//!   is refused ([`Rejection`]); the relay map of a contact list
//!   ([`contact_list_relays`]).
//! - `http`: [`fetch_http_source`], a JSON list of relay URLs fetched
//!   through the egress policy (every redirect hop checked) within a time
//!   limit and a size cap.
//! - `cycle`: [`Finder::run_cycle`], one cycle: the pages of the archive
//!   ([`scan_page`], through the implementation's `finder_candidates`), the
//!   HTTP sources, the new relays recorded, and the [`CycleReport`].
//! - `service`: [`FinderService`], the finder as a service of the runtime
//!   (`bigbrotr run finder`), with its metrics.
//! - `error`: the [`Error`] of this crate.

mod candidate;
mod config;
mod cycle;
mod error;
mod http;
mod scanner;
mod service;

pub use candidate::{check_url, contact_list_relays, relay_domain, Rejection, Source, UrlRules};
pub use config::{EventSources, FinderConfig, FinderFile, HttpSource, MAX_PAGE_SIZE};
pub use cycle::{scan_page, CycleReport, ScanRow};
pub use error::{Error, Result};
pub use http::{fetch_http_source, MAX_REDIRECTS};
pub use scanner::{Finder, ScanCursor, DEFAULT_NAME};
pub use service::FinderService;
