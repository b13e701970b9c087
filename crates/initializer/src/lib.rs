#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Layout
//!
//! - `config`: the file `config/services/initializer.yaml`
//!   ([`InitializerFile`]) and its `initializer` section
//!   ([`InitializerConfig`]).
//! - `seed`: seed files ([`parse_seed_list`]: valid relays normalised and
//!   deduplicated, invalid lines with their number and reason) and
//!   [`seed_relays`], which stores them in batches.
//! - `service`: [`Initializer`], the one-shot [`Service`](bigbrotr_service_runtime::Service):
//!   schema first, then the seed relays.

mod config;
mod seed;
mod service;

pub use config::{InitializerConfig, InitializerFile};
pub use seed::{parse_seed_list, seed_relays, InvalidLine, SeedList, SeedReport};
pub use service::Initializer;
