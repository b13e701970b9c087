//! End-to-end tests of BigBrotr. One test binary for the whole folder keeps link
//! time low; each module covers one area.

mod archive_cli;
mod deploy;
mod dev_database;
mod faults;
mod prometheus;
mod relay_to_relay;
mod schema;
mod services;
