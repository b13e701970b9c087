#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - [`iter`]: [`chunk`] splits any iterator into `Vec`s of a fixed size,
//!   lazily; [`dedup`] and [`dedup_by_key`] drop repeats while keeping the
//!   first occurrence and the input order.
//! - [`timestamp`]: the current Unix time and conversions between Unix
//!   seconds and RFC 3339 text.
//! - [`retry`](mod@retry): [`RetryPolicy`] (exponential backoff with a cap and optional
//!   full jitter) and the async [`retry()`] loop that applies it.
//! - [`hash`]: the canonical JSON form of any serialisable value and its
//!   SHA-256, plus hex helpers for showing hashes.
//! - [`egress`]: the egress policy ([`EgressPolicy`]): which resolved
//!   addresses may be connected to, the resolver it judges names with
//!   ([`Resolve`]), and [`Egress::connect`], a TCP connection to a checked
//!   address only.
//! - [`http`]: [`http::get`], a `GET` whose every hop goes through the
//!   egress policy, the NIP-11 HTTP URL of a relay and a probe telling
//!   whether the relay's web server answers at all.
//! - [`text`]: [`bounded_text`] cuts text a remote party controls to a
//!   bound, on a character boundary, before it is logged or stored.
//! - [`error`]: [`Error`], the error of every fallible helper, and
//!   [`RetryError`], which wraps the caller's own error when retrying ends.
//!
//! The main items of each module are also re-exported at the crate root.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod egress;
pub mod error;
pub mod hash;
pub mod http;
pub mod iter;
pub mod retry;
pub mod text;
pub mod timestamp;

pub use egress::{
    AllowEntry, Denied, Egress, EgressPolicy, Resolve, StaticResolver, SystemResolver,
};
pub use error::{Error, InvalidUrlReason, RedirectRefusal, Result, RetryError};
pub use hash::{canonical_json, compute_hash, hash_hex, short_hash};
pub use http::{http_reachable, nip11_http_url, GetAnswer, GetRequest};
pub use iter::{chunk, dedup, dedup_by_key, Chunks};
pub use retry::{retry, RetryPolicy};
pub use text::{bounded_text, REMOTE_TEXT_MAX_BYTES};
pub use timestamp::{now_timestamp, rfc3339_to_unix, unix_to_rfc3339};
