//! Integration tests of `bigbrotr-brotr`, in one test binary. Each database
//! test gets a fresh database through the development PgBouncer, with the
//! SQL of the implementation it names.

mod concurrency;
mod corpus;
mod events;
mod lossless;
mod metadata;
mod provenance;
mod relays;
mod schema;
mod support;
