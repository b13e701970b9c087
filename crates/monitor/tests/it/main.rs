//! Integration tests of `bigbrotr-monitor`, in one test binary: in-process
//! relays on 127.0.0.1 (with their NIP-11 document served on the same port),
//! servers that never answer, closed ports, and a fresh database per test
//! through the development PgBouncer.

mod checks;
mod config;
mod cycle;
mod egress;
mod hostile;
mod support;
