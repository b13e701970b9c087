//! Integration tests of `bigbrotr-synchronizer`, in one test binary:
//! in-process relays on 127.0.0.1 (real ones from `nostr-relay-builder`, and
//! a fake one serving bad events), servers that never answer, and a fresh
//! database per test through the development PgBouncer.

mod archive;
mod complete;
mod config;
mod hostile;
mod leases;
mod rejects;
mod resume;
mod service;
mod support;
