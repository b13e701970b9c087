//! Integration tests of the service runtime: the loop, shutdown, and the
//! HTTP endpoint (its provenance answers included), with a probe service on
//! the real pool.

mod http;
mod looping;
mod provenance;
mod support;
