//! Integration tests of `bigbrotr-finder`, in one test binary: signed events
//! archived in a fresh database per test (through the development
//! PgBouncer), HTTP sources served on 127.0.0.1, and the shipped
//! configuration files.

mod config;
mod cycle;
mod floods;
mod http;
mod sightings;
mod support;
