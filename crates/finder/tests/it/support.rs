//! Shared set-up: a fresh database with an archive on it, signed events
//! stored with their provenance, and a finder with test settings.

use std::time::{Duration, Instant};

use bigbrotr_brotr::{Brotr, RelayId};
use bigbrotr_config::{BrotrConfig, PoolConfig, RetryConfig};
use bigbrotr_finder::{Finder, FinderConfig};
use bigbrotr_pool::{ConnectionPool, Type};
use bigbrotr_test_support::TestDb;
use bigbrotr_utils::{Egress, EgressPolicy};
use nostr::{Event, EventBuilder, Keys, Kind, Tag, Timestamp};

/// A fresh database of `implementation` and an archive on it; the database
/// is dropped with it when the test passed.
pub(crate) struct Fixture {
    pub(crate) brotr: Brotr,
    _db: TestDb,
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
                command_timeout: Duration::from_secs(30),
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
        let brotr = Brotr::new(pool, BrotrConfig::default()).expect("valid brotr configuration");
        Self { brotr, _db: db }
    }

    /// Records the relay `url` and returns its id.
    pub(crate) async fn relay(&self, url: &str) -> RelayId {
        self.brotr.insert_relay(url, 1).await.expect("relay stored")
    }

    /// Archives `events`, each seen on `relay` at `seen_at`, and waits
    /// until the finder can read them ([`settle`](Self::settle)).
    pub(crate) async fn archive(&self, events: &[Event], relay: RelayId, seen_at: i64) {
        self.store(events, relay, seen_at).await;
        self.settle().await;
    }

    /// Archives `events`, each seen on `relay` at `seen_at`, and returns at
    /// once.
    pub(crate) async fn store(&self, events: &[Event], relay: RelayId, seen_at: i64) {
        let batch: Vec<(Event, RelayId)> = events.iter().map(|e| (e.clone(), relay)).collect();
        let report = self
            .brotr
            .insert_event_batch(&batch, seen_at)
            .await
            .expect("events stored");
        assert_eq!(report.rejected, [], "every fixture event is valid");
    }

    /// Waits until every transaction begun so far has ended. The finder
    /// reads no sighting while a transaction older than it is open, in any
    /// database of the cluster: other tests' included.
    pub(crate) async fn settle(&self) {
        let pool = self.brotr.pool();
        let row = pool
            .fetch_one("SELECT pg_snapshot_xmax(pg_current_snapshot())::text", &[])
            .await
            .expect("snapshot read");
        let begun: String = row.get(0);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let row = pool
                .fetch_one(
                    "SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8",
                    &[(&begun, Type::TEXT)],
                )
                .await
                .expect("snapshot read");
            if row.get::<_, bool>(0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "transactions older than {begun} still open after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every relay URL of the archive, sorted.
    pub(crate) async fn relays(&self) -> Vec<String> {
        let rows = self
            .brotr
            .pool()
            .fetch_all("SELECT url FROM relays ORDER BY url", &[])
            .await
            .expect("relays read");
        rows.iter().map(|row| row.get(0)).collect()
    }
}

/// Test settings: small pages and batches.
pub(crate) fn finder_config() -> FinderConfig {
    FinderConfig {
        page_size: 2,
        batch_size: 3,
        ..FinderConfig::default()
    }
}

/// A finder named `finder` with `config` and the strict egress policy.
pub(crate) fn finder_with(config: &FinderConfig) -> Finder {
    Finder::new("", config).expect("a valid finder")
}

/// The strict policy, with 127.0.0.1 allowed: what the test servers use.
pub(crate) fn loopback_egress() -> Egress {
    Egress::new(EgressPolicy::strict().allowing("127.0.0.1/32".parse().expect("a network")))
}

/// An event of `kind` with `content` and `tags`, created at `created_at`.
pub(crate) fn event(kind: u16, content: &str, tags: &[&[&str]], created_at: u64) -> Event {
    let tags = tags
        .iter()
        .map(|tag| Tag::parse(tag.iter().copied()).expect("a tag"));
    EventBuilder::new(Kind::from(kind), content)
        .tags(tags)
        .custom_created_at(Timestamp::from(created_at))
        .sign_with_keys(&Keys::generate())
        .expect("signed")
}

/// `urls` as owned, sorted strings.
pub(crate) fn sorted(urls: &[&str]) -> Vec<String> {
    let mut urls: Vec<String> = urls.iter().map(|url| (*url).to_owned()).collect();
    urls.sort();
    urls
}
