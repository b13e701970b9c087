//! The SQL of every implementation: tables, function contract and views, one
//! module per part. Each test body runs once per implementation
//! (`schema::<part>::bigbrotr::*` and `schema::<part>::lilbrotr::*`), on a
//! fresh database. Events are synthetic byte values: the application checks
//! ids and signatures, the SQL does not.

/// One `#[tokio::test]` per implementation for each test body `fn(&str)` named.
macro_rules! for_each_implementation {
    ($($test:ident),* $(,)?) => {
        tests_of!(bigbrotr: $($test),*);
        tests_of!(lilbrotr: $($test),*);
    };
}

macro_rules! tests_of {
    ($implementation:ident: $($test:ident),*) => {
        mod $implementation {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(stringify!($implementation)).await;
                }
            )*
        }
    };
}

mod cleanup;
mod concurrency;
mod events;
mod helpers;
mod relay_metadata;
mod relays;
mod statistics;
