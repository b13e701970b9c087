//! Integration tests of `bigbrotr-refresher`, in one test binary: cycles
//! over the statistics views of a fresh database per test (through the
//! development PgBouncer), the service in the runtime with its metrics, and
//! the shipped configuration files.

mod cleanup;
mod config;
mod cycle;
mod service;
mod support;
