//! Shared set-up: in-process relays behind a small HTTP front that serves
//! their NIP-11 document on the same port, servers that never answer, a
//! fresh database with an archive on it, and helpers to read the rows a
//! cycle stored.

use std::net::SocketAddr;
use std::time::Duration;

use bigbrotr_brotr::Brotr;
use bigbrotr_config::{BrotrConfig, NostrConfig, PoolConfig, RetryConfig};
use bigbrotr_monitor::{Monitor, MonitorConfig};
use bigbrotr_pool::ConnectionPool;
use bigbrotr_test_support::TestDb;
use nostr::{Event, Keys};
use nostr_relay_builder::prelude::{
    BoxedFuture, Filter, PolicyResult, QueryPolicy, RateLimit, RelayBuilder, WritePolicy,
};
use nostr_relay_builder::LocalRelay;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the HTTP front answers to a NIP-11 request.
#[derive(Debug, Clone)]
pub(crate) enum Nip11 {
    /// `200` with this document as `application/nostr+json`.
    Document(Value),
    /// `200` with this body as `text/html`.
    Body(&'static str),
}

/// A relay builder whose rate limit does not get in the way of tests.
pub(crate) fn builder() -> RelayBuilder {
    RelayBuilder::default().rate_limit(RateLimit {
        max_reqs: 500,
        notes_per_minute: 10_000,
    })
}

/// Refuses every event, as a read-only relay does.
#[derive(Debug)]
pub(crate) struct ReadOnly;

impl WritePolicy for ReadOnly {
    fn admit_event<'a>(
        &'a self,
        _event: &'a Event,
        _addr: &'a SocketAddr,
    ) -> BoxedFuture<'a, PolicyResult> {
        Box::pin(async { PolicyResult::Reject("read only".to_owned()) })
    }
}

/// Refuses every `REQ`, as a write-only relay does.
#[derive(Debug)]
pub(crate) struct WriteOnly;

impl QueryPolicy for WriteOnly {
    fn admit_query<'a>(
        &'a self,
        _query: &'a Filter,
        _addr: &'a SocketAddr,
    ) -> BoxedFuture<'a, PolicyResult> {
        Box::pin(async { PolicyResult::Reject("no reads here".to_owned()) })
    }
}

/// Refuses every event and every `REQ` with its reason, as a hostile relay
/// may, with megabytes of it.
#[derive(Debug)]
pub(crate) struct Refuse(pub(crate) String);

impl WritePolicy for Refuse {
    fn admit_event<'a>(
        &'a self,
        _event: &'a Event,
        _addr: &'a SocketAddr,
    ) -> BoxedFuture<'a, PolicyResult> {
        Box::pin(async { PolicyResult::Reject(self.0.clone()) })
    }
}

impl QueryPolicy for Refuse {
    fn admit_query<'a>(
        &'a self,
        _query: &'a Filter,
        _addr: &'a SocketAddr,
    ) -> BoxedFuture<'a, PolicyResult> {
        Box::pin(async { PolicyResult::Reject(self.0.clone()) })
    }
}

/// An in-process relay behind an HTTP front on another port: the front
/// answers NIP-11 requests itself and forwards WebSocket upgrades to the
/// relay, so the relay's URL and its NIP-11 URL share host and port, as on
/// a real relay. Both stop when this is dropped.
pub(crate) struct TestRelay {
    pub(crate) url: String,
    relay: LocalRelay,
    front: JoinHandle<()>,
}

impl TestRelay {
    /// Starts the relay `builder` describes, its front serving `nip11`.
    pub(crate) async fn start(builder: RelayBuilder, nip11: Nip11) -> Self {
        let relay = LocalRelay::new(builder);
        relay.run().await.expect("the relay starts");
        let backend: SocketAddr = relay
            .url()
            .await
            .as_str_without_trailing_slash()
            .trim_start_matches("ws://")
            .parse()
            .expect("a socket address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("an address");
        let front = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let nip11 = nip11.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, backend, nip11).await;
                });
            }
        });
        Self {
            url: format!("ws://{addr}"),
            relay,
            front,
        }
    }

    /// The events the relay holds that match `filter`, read over its own
    /// WebSocket.
    pub(crate) async fn events(&self, filter: Filter) -> Vec<Event> {
        let client = nostr_sdk::Client::default();
        client.add_relay(self.url.as_str()).await.expect("add");
        client
            .try_connect_relay(self.url.as_str(), Duration::from_secs(5))
            .await
            .expect("connect");
        let events = client
            .fetch_events(filter, Duration::from_secs(5))
            .await
            .expect("fetch");
        client.shutdown().await;
        events.into_iter().collect()
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.front.abort();
        self.relay.shutdown();
    }
}

/// Answers one connection: a WebSocket upgrade is forwarded to `backend`,
/// anything else gets the NIP-11 answer.
async fn serve(mut stream: TcpStream, backend: SocketAddr, nip11: Nip11) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buffer = [0_u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    if text.contains("upgrade: websocket") {
        let mut upstream = TcpStream::connect(backend).await?;
        upstream.write_all(&head).await?;
        tokio::io::copy_bidirectional(&mut stream, &mut upstream).await?;
        return Ok(());
    }
    let (content_type, body) = match &nip11 {
        Nip11::Document(document) => ("application/nostr+json", document.to_string()),
        Nip11::Body(body) => ("text/html", (*body).to_owned()),
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\naccess-control-allow-origin: *\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// A server that accepts connections and never says a word; stops when
/// dropped.
pub(crate) struct Silent {
    pub(crate) url: String,
    task: JoinHandle<()>,
}

impl Silent {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("an address");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Self {
            url: format!("ws://{addr}"),
            task,
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port on 127.0.0.1 nothing listens on.
pub(crate) async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("an address").port()
}

/// Short limits, so that tests are quick.
pub(crate) fn monitor_config() -> MonitorConfig {
    let mut config = MonitorConfig::default();
    config.timeouts.nip11 = Duration::from_secs(2);
    config.timeouts.open = Duration::from_secs(2);
    config.timeouts.read = Duration::from_secs(2);
    config.timeouts.write = Duration::from_secs(2);
    config.batch_size = 2;
    config
}

/// A monitor with `config`, a new key and no proxy, reaching the test
/// relays on 127.0.0.1.
pub(crate) fn monitor_with(config: &MonitorConfig) -> Monitor {
    Monitor::new(config, &NostrConfig::default(), Keys::generate())
        .expect("a valid monitor")
        .with_egress(loopback_egress())
}

/// The strict egress policy with 127.0.0.1 allowed, where the test relays
/// listen.
pub(crate) fn loopback_egress() -> bigbrotr_utils::Egress {
    bigbrotr_utils::Egress::new(
        bigbrotr_utils::EgressPolicy::strict().allowing("127.0.0.1/32".parse().expect("a network")),
    )
}

/// A monitor with [`monitor_config`].
pub(crate) fn monitor() -> Monitor {
    monitor_with(&monitor_config())
}

/// A fresh `bigbrotr` database and an archive on it; the database is
/// dropped with it when the test passed.
pub(crate) struct Fixture {
    pub(crate) brotr: Brotr,
    _db: TestDb,
}

impl Fixture {
    pub(crate) async fn new() -> Self {
        let db = TestDb::new("bigbrotr").await.expect("test database");
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
    pub(crate) async fn relay(&self, url: &str) -> bigbrotr_brotr::RelayId {
        self.brotr.insert_relay(url, 1).await.expect("relay stored")
    }

    /// Every stored check of the relay `url`, oldest first.
    pub(crate) async fn checks(&self, url: &str) -> Vec<StoredCheck> {
        let rows = self
            .brotr
            .pool()
            .fetch_all(
                "SELECT m.connected, n11.data, n66.data, m.generated_at \
                 FROM relay_metadata AS m \
                 JOIN relays AS r ON r.id = m.relay_id \
                 LEFT JOIN nip11 AS n11 ON n11.id = m.nip11_id \
                 LEFT JOIN nip66 AS n66 ON n66.id = m.nip66_id \
                 WHERE r.url = $1 ORDER BY m.generated_at",
                &[(&url, bigbrotr_pool::Type::TEXT)],
            )
            .await
            .expect("checks read");
        rows.iter()
            .map(|row| StoredCheck {
                connected: row.get(0),
                nip11: row.get(1),
                nip66: row.get(2),
                generated_at: row.get(3),
            })
            .collect()
    }

    /// The one stored check of the relay `url`.
    pub(crate) async fn only_check(&self, url: &str) -> StoredCheck {
        let mut checks = self.checks(url).await;
        assert_eq!(checks.len(), 1, "checks of {url}: {checks:?}");
        checks.remove(0)
    }
}

/// One `relay_metadata` row with its documents.
#[derive(Debug)]
pub(crate) struct StoredCheck {
    pub(crate) connected: bool,
    pub(crate) nip11: Option<Value>,
    pub(crate) nip66: Option<Value>,
    pub(crate) generated_at: i64,
}

/// The keys of a JSON object, sorted.
pub(crate) fn keys_of(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Asserts that `value[key]` is a round-trip time: a whole number of
/// milliseconds, under the longest timeout of the tests.
#[track_caller]
pub(crate) fn assert_rtt(value: &Value, key: &str) {
    let rtt = value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a number of ms: {value}"));
    assert!(rtt < 5_000, "{key} = {rtt}");
}
