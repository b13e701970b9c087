//! Shared set-up: a fresh database, a pool on it, synthetic events stored
//! through the implementation's `insert_events`, and a second session that
//! holds a view locked.

use std::time::Duration;

use bigbrotr_config::{PoolConfig, RetryConfig};
use bigbrotr_pool::{ConnectionPool, Type};
use bigbrotr_refresher::{Refresher, RefresherConfig};
use bigbrotr_test_support::TestDb;

/// The views of the shipped implementations, in the order `stats_views()`
/// gives them.
pub(crate) const VIEWS: [&str; 12] = [
    "stats_relay_kinds",
    "stats_relays",
    "stats_networks",
    "stats_kinds",
    "stats_pubkeys",
    "stats_daily",
    "stats_replaceable_latest",
    "stats_addressable_latest",
    "stats_relay_software",
    "stats_software",
    "stats_nips",
    "stats_totals",
];

/// A fresh database of `implementation` and a pool on it; the database is
/// dropped with it when the test passed.
pub(crate) struct Fixture {
    pub(crate) pool: ConnectionPool,
    pub(crate) db: TestDb,
}

impl Fixture {
    pub(crate) async fn new(implementation: &str) -> Self {
        bigbrotr_test_support::init_logging();
        let db = TestDb::new(implementation).await.expect("test database");
        let pool = ConnectionPool::new(
            &db.database_config(),
            &PoolConfig {
                min_size: 1,
                max_size: 4,
                timeout: Duration::from_secs(20),
                // Shorter than some refreshes are allowed to take.
                command_timeout: Duration::from_secs(2),
            },
            &RetryConfig {
                max_attempts: 3,
                initial_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                exponential_base: 2.0,
            },
        )
        .expect("valid pool configuration");
        pool.connect().await.expect("connect");
        Self { pool, db }
    }

    /// Records the relay `url` (clearnet) and returns its id.
    pub(crate) async fn relay(&self, url: &str) -> i32 {
        let urls = vec![url];
        let networks = vec!["clearnet"];
        self.pool
            .fetch_one(
                "SELECT relay_id FROM insert_relays($1, $2, 1)",
                &[(&urls, Type::TEXT_ARRAY), (&networks, Type::TEXT_ARRAY)],
            )
            .await
            .expect("relay stored")
            .get(0)
    }

    /// Archives `count` synthetic events of `kind` named after `label`
    /// (distinct labels give distinct events), by three authors, seen on
    /// `relay`; returns how many were new.
    pub(crate) async fn events(&self, label: &str, count: i32, kind: i32, relay: i32) -> i64 {
        self.pool
            .fetch_one(
                "SELECT events_inserted FROM insert_events(\
                   ARRAY(SELECT sha256(convert_to($1 || ':' || g, 'UTF8')) \
                         FROM generate_series(1, $2) AS g), \
                   ARRAY(SELECT sha256(convert_to('author ' || g % 3, 'UTF8')) \
                         FROM generate_series(1, $2) AS g), \
                   ARRAY(SELECT 1700000000::int8 + g FROM generate_series(1, $2) AS g), \
                   array_fill($3::int4, ARRAY[$2]), \
                   array_fill('[]'::jsonb, ARRAY[$2]), NULL, \
                   array_fill(''::text, ARRAY[$2]), NULL, \
                   array_fill(decode(repeat('00', 64), 'hex'), ARRAY[$2]), \
                   array_fill($4::int4, ARRAY[$2]), \
                   array_fill(100::int8, ARRAY[$2]))",
                &[
                    (&label, Type::TEXT),
                    (&count, Type::INT4),
                    (&kind, Type::INT4),
                    (&relay, Type::INT4),
                ],
            )
            .await
            .expect("events stored")
            .get(0)
    }

    /// One bigint of a query, on a session of its own (the pool may be
    /// closed).
    pub(crate) async fn scalar(&self, sql: &str) -> i64 {
        let client = self.db.client().await.expect("a session");
        client.query_typed(sql, &[]).await.expect(sql)[0].get(0)
    }

    /// A session of its own that holds `view` locked until it is rolled
    /// back: a plain refresh of its own, left in an open transaction, holds
    /// the ACCESS EXCLUSIVE lock of the view (`LOCK TABLE` refuses
    /// materialized views).
    pub(crate) async fn lock(&self, view: &str) -> deadpool_postgres::Object {
        let locker = self.db.client().await.expect("a session");
        locker
            .batch_execute(&format!("BEGIN; REFRESH MATERIALIZED VIEW {view}"))
            .await
            .expect("locked");
        locker
    }
}

/// A refresher of `views` (all when empty), each refresh within `timeout`.
pub(crate) fn refresher(views: &[&str], timeout: Duration) -> Refresher {
    Refresher::new(&RefresherConfig {
        views: views.iter().map(|view| (*view).to_owned()).collect(),
        timeout,
    })
    .expect("a valid configuration")
}

/// `names` as owned strings.
pub(crate) fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}
