#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Layout
//!
//! - `archive`: [`Brotr`], the archive's writes (relays, events with the
//!   relays they were seen on, relay metadata), cleanups and reads, each one
//!   call of the implementation's stored procedures, one module per job;
//!   batches are validated first, then stored in chunks of
//!   `brotr.batch_size`, one transaction each. [`InsertEventsReport`] and
//!   [`Rejected`] tell what a batch of events did; [`EventFilter`] and
//!   [`EventCursor`] page through events; provenance: the relays an event
//!   was seen on and when ([`Sighting`]), and a relay with its latest check
//!   and documents ([`RelayReport`], [`LatestCheck`]).
//! - `event`: [`validate_event`] (id and signature, through `nostr`), and
//!   the lossless mapping of an event to the `events` columns and back
//!   (U+0000 kept in `content_raw` / `tags_raw`, tag values computed for
//!   `tagvalues`).
//! - `verify`: batches validated on all cores, each signature
//!   verified once and remembered (`brotr.verified_signatures`), so an event
//!   seen on many relays costs one signature check.
//! - `relay`: [`RelayId`], [`Network`], [`Relay`] and
//!   [`validate_relay_url`], the one normal form of a relay URL.
//! - `metadata`: [`RelayMetadata`], one check of one relay, and
//!   [`document_id`], the content address of its NIP-11 and NIP-66
//!   documents.
//! - `schema`: [`apply_schema`], the runner applying an implementation's
//!   numbered SQL files once each, recorded with their checksums. The files
//!   are read by [`read_schema_dir`] ([`SchemaFile`]), which lives in
//!   `bigbrotr-pool` so that the test databases read them the same way.
//! - `error`: the [`Error`] of this crate, and why an event
//!   ([`RejectReason`]) or a relay URL ([`InvalidRelayUrl`]) is refused.

mod archive;
mod error;
mod event;
mod metadata;
mod relay;
mod schema;
mod verify;

pub use archive::{
    Brotr, EventCursor, EventFilter, InsertEventsReport, LatestCheck, Rejected, RelayReport,
    Sighting,
};
pub use bigbrotr_pool::{read_schema_dir, SchemaFile};
pub use error::{Error, InvalidRelayUrl, RejectReason, Result};
pub use event::{tagvalues, validate_event};
pub use metadata::{document_id, RelayMetadata};
pub use relay::{validate_relay_url, Network, Relay, RelayId, RelayUrlNormalized, UnknownNetwork};
pub use schema::{apply_schema, Migration, SchemaReport};
