//! [`Brotr`]: the handle on the archive, its configuration and what its
//! parts share. Each part is one job, in a module of its own, each adding
//! its methods to [`Brotr`]:
//!
//! - `relays`: recording relays, normalised, and returning their ids;
//! - `events`: archiving events with the relays they were seen on
//!   ([`InsertEventsReport`], [`Rejected`]);
//! - `relay_metadata`: recording relay checks and their NIP-11 and NIP-66
//!   documents;
//! - `cleanup`: deleting what no relay refers to any more;
//! - `reads`: looking relays and events up, and paging through events
//!   ([`EventFilter`], [`EventCursor`]);
//! - `provenance`: the relays an event was seen on ([`Sighting`]), and a
//!   relay with its latest check ([`RelayReport`], [`LatestCheck`]).
//!
//! Each call is one call of a stored procedure of the implementation's
//! function contract.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bigbrotr_config::{BrotrConfig, Problems};
use bigbrotr_pool::{column, ConnectionPool, Row};

use crate::error::{database, Error, Result};
use crate::relay::Network;
use crate::verify::VerifiedSignatures;

mod cleanup;
mod events;
mod provenance;
mod reads;
mod relay_metadata;
mod relays;

pub use events::{InsertEventsReport, Rejected};
pub use provenance::{LatestCheck, RelayReport, Sighting};
pub use reads::{EventCursor, EventFilter};

/// The archive: relays, events with the relays they were seen on, and relay
/// metadata, written and read through the stored procedures every
/// implementation provides.
///
/// Cloning is cheap; clones share the pool.
///
/// # Batches
///
/// Every `*_batch` method first checks each item (event ids and signatures,
/// relay URLs) as the configuration asks, then splits what it accepted into
/// chunks of at most `brotr.batch_size` items and stores each chunk with one
/// procedure call, which is one transaction: a chunk is stored whole or not
/// at all. An invalid event is listed in the report and never keeps the
/// others from being stored; an invalid relay URL fails the whole call
/// before anything is stored, as the ids are returned by position.
///
/// When a chunk fails, the chunks before it stay stored and the error is
/// returned. Every insert skips what exists, so calling again with the same
/// input is safe and stores exactly what is missing.
///
/// # Time limits
///
/// Each chunk of an insert must finish within `brotr.insert_timeout`
/// ([`Error::Timeout`]; the statement is cancelled and the chunk, in all
/// likelihood, not stored). The pool's `command_timeout` bounds every
/// statement too, so the shorter of the two applies. Reads and cleanups are
/// bounded by `command_timeout` only (a cleanup, per call of its procedure).
///
/// # Retries
///
/// Calls are retried by the pool when the connection broke or the database
/// could not be reached (see [`ConnectionPool`]); SQL errors and timeouts
/// are not. Inserts are idempotent, so a retry never stores twice; but if
/// the connection broke after the database committed a chunk, the retry
/// finds its rows present and reports them as duplicates.
#[derive(Debug, Clone)]
pub struct Brotr {
    pool: ConnectionPool,
    config: BrotrConfig,
    /// Shared by clones, like the pool.
    verified: Arc<VerifiedSignatures>,
}

impl Brotr {
    /// An archive writing through `pool` as `config` says, after checking
    /// `config`. Does no I/O.
    pub fn new(pool: ConnectionPool, config: BrotrConfig) -> Result<Self> {
        let mut problems = Problems::new();
        problems.section("brotr", &config);
        if !problems.is_empty() {
            return Err(Error::InvalidConfig {
                problems: problems.into_vec(),
            });
        }
        let verified = Arc::new(VerifiedSignatures::new(config.verified_signatures));
        Ok(Self {
            pool,
            config,
            verified,
        })
    }

    /// The pool it writes through.
    #[must_use]
    pub fn pool(&self) -> &ConnectionPool {
        &self.pool
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &BrotrConfig {
        &self.config
    }

    /// Runs one insert call within `brotr.insert_timeout`.
    async fn bounded_insert<T, F>(&self, what: &'static str, call: F) -> Result<T>
    where
        F: Future<Output = bigbrotr_pool::Result<T>>,
    {
        let limit: Duration = self.config.insert_timeout;
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result.map_err(database(what)),
            Err(_) => Err(Error::Timeout { what, after: limit }),
        }
    }
}

/// Column `index` of `row`, a network name, as a [`Network`].
fn network_column(row: &Row, index: usize, what: &'static str) -> Result<Network> {
    let name: String = column(row, index, what, "network").map_err(database(what))?;
    name.parse().map_err(|e| Error::Decode {
        what,
        column: "network",
        source: Box::new(e),
    })
}

/// A count returned by the database; never negative.
fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use bigbrotr_config::{DatabaseConfig, PoolConfig, RetryConfig};

    use super::*;

    fn pool() -> ConnectionPool {
        ConnectionPool::new(
            &DatabaseConfig::default(),
            &PoolConfig::default(),
            &RetryConfig::default(),
        )
        .expect("valid pool configuration")
    }

    /// An archive on a pool that points at nothing that answers.
    pub(super) fn offline() -> Brotr {
        Brotr::new(pool(), BrotrConfig::default()).unwrap()
    }

    #[test]
    fn an_invalid_configuration_is_refused_naming_each_key() {
        let config = BrotrConfig {
            batch_size: 0,
            insert_timeout: Duration::ZERO,
            ..BrotrConfig::default()
        };
        let Err(Error::InvalidConfig { problems }) = Brotr::new(pool(), config) else {
            panic!("expected InvalidConfig");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["brotr.batch_size", "brotr.insert_timeout"]);
    }

    #[tokio::test]
    async fn empty_batches_do_not_touch_the_database() {
        // The pool points at nothing that answers; an empty batch must not try.
        let brotr = offline();
        let none: [&str; 0] = [];
        assert_eq!(brotr.insert_relay_batch(&none, 0).await.unwrap(), []);
        assert_eq!(
            brotr.insert_event_batch(&[], 0).await.unwrap(),
            InsertEventsReport::default()
        );
        assert_eq!(brotr.insert_relay_metadata_batch(&[]).await.unwrap(), 0);
    }
}
