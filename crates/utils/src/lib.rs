#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - `timestamp`: the current Unix time and RFC 3339 text read as Unix
//!   seconds.
//! - `retry`: [`RetryPolicy`] (exponential backoff with a cap and optional
//!   full jitter) and the async [`retry()`] loop that applies it.
//! - `hash`: the canonical JSON form of any serialisable value and its
//!   SHA-256, plus hex helpers for showing hashes.
//! - `egress`: the egress policy ([`EgressPolicy`]): which resolved
//!   addresses may be connected to, the resolver it judges names with
//!   ([`Resolve`]), and [`Egress::connect`], a TCP connection to a checked
//!   address only; [`classify`] tells what kind of address one is.
//! - `http`: [`http_get`], a `GET` whose every hop goes through the
//!   egress policy, and the NIP-11 HTTP URL of a relay.
//! - `text`: [`bounded_text`] cuts text a remote party controls to a
//!   bound, on a character boundary, before it is logged or stored.
//! - `error`: [`Error`], the error of every fallible helper, and
//!   [`RetryError`], which wraps the caller's own error when retrying ends.
//!
//! The modules are private; their items are re-exported at the crate root.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod egress;
mod error;
mod hash;
mod http;
mod retry;
mod text;
mod timestamp;

pub use egress::{
    classify, AddressKind, AllowEntry, Denied, Egress, EgressPolicy, Resolve, ResolveFuture,
    StaticResolver, SystemResolver,
};
pub use error::{Error, InvalidUrlReason, RedirectRefusal, Result, RetryError};
pub use hash::{canonical_json, compute_hash, hash_hex, short_hash};
pub use http::{get as http_get, nip11_http_url, GetAnswer, GetRequest};
pub use retry::{retry, RetryPolicy};
pub use text::{bounded_text, REMOTE_TEXT_MAX_BYTES};
pub use timestamp::{now_timestamp, rfc3339_to_unix};
