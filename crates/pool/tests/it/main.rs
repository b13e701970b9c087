//! Integration tests of `bigbrotr-pool`, in one test binary. Each database
//! test gets a fresh database through the development PgBouncer.

mod concurrency;
mod failures;
mod lifecycle;
mod proxy;
mod statements;
mod support;
mod tls;
mod transactions;
