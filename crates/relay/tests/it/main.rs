//! Integration tests of the archive relay: a real relay over a real archive
//! (PostgreSQL through PgBouncer), read by nostr-sdk's client and by a raw
//! WebSocket where the order and wording of messages matter.

mod filters;
mod limits;
mod live;
mod negentropy;
mod support;
