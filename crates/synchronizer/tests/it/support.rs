//! Shared set-up: signed events, in-process relays holding them, a fake
//! relay that serves whatever it is given (bad events included), servers
//! that never answer, a fresh database with an archive on it, and helpers
//! to read what a cycle stored.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_wsocket::futures_util::{SinkExt, StreamExt};
use async_wsocket::native::Message;
use bigbrotr_brotr::{Brotr, RelayId};
use bigbrotr_config::{BrotrConfig, NostrConfig};
use bigbrotr_pool::Type;
use bigbrotr_synchronizer::{
    due_pending, relay_state, Cursor, PendingRange, RelayState, Synchronizer, SynchronizerConfig,
};
use bigbrotr_test_support::TestDb;
use bigbrotr_utils::{Egress, EgressPolicy};
use nostr::{Event, EventBuilder, EventId, JsonUtil, Keys, Kind, Timestamp};
use nostr_relay_builder::prelude::{
    MemoryDatabase, MemoryDatabaseOptions, NostrDatabase, RateLimit, RelayBuilder,
    RelayBuilderNip42, RelayBuilderNip42Mode,
};
use nostr_relay_builder::LocalRelay;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The time the test events start at (Unix seconds): the past, so that
/// every event lies before `now - end_lag`.
pub(crate) const BASE: i64 = 1_700_000_000;

/// `count` kind 1 notes signed by `keys`, the `i`-th created at
/// `BASE + start + i * step`, each with its own content.
pub(crate) fn notes(keys: &Keys, count: usize, start: i64, step: i64) -> Vec<Event> {
    (0..count)
        .map(|i| {
            let offset = start + i64::try_from(i).expect("small") * step;
            note(keys, 1, BASE + offset, &format!("note {offset} {i}"))
        })
        .collect()
}

/// One event of `kind` created at `created_at`.
pub(crate) fn note(keys: &Keys, kind: u16, created_at: i64, content: &str) -> Event {
    EventBuilder::new(Kind::from(kind), content)
        .custom_created_at(Timestamp::from_secs(
            u64::try_from(created_at).expect("positive"),
        ))
        .sign_with_keys(keys)
        .expect("signed")
}

/// An in-process relay holding `events`, with a rate limit that does not get
/// in the way and, when given, a cap on the events one `REQ` returns. Stops
/// when dropped.
pub(crate) struct TestRelay {
    pub(crate) url: String,
    relay: LocalRelay,
    database: MemoryDatabase,
}

impl TestRelay {
    pub(crate) async fn start(events: &[Event], max_limit: Option<usize>) -> Self {
        Self::with(events, max_limit, false).await
    }

    /// A relay that, with `auth`, serves nobody who has not authenticated
    /// (NIP-42).
    pub(crate) async fn with(events: &[Event], max_limit: Option<usize>, auth: bool) -> Self {
        let database = MemoryDatabase::with_opts(MemoryDatabaseOptions {
            events: true,
            max_events: None,
        });
        for event in events {
            database.save_event(event).await.expect("saved");
        }
        let mut builder = RelayBuilder::default()
            .database(database.clone())
            .rate_limit(RateLimit {
                max_reqs: 1000,
                notes_per_minute: 100_000,
            });
        if let Some(max) = max_limit {
            builder = builder.max_filter_limit(max);
        }
        if auth {
            builder = builder.nip42(RelayBuilderNip42 {
                mode: RelayBuilderNip42Mode::Both,
            });
        }
        let relay = LocalRelay::new(builder);
        relay.run().await.expect("the relay starts");
        let url = relay.url().await.as_str_without_trailing_slash().to_owned();
        Self {
            url,
            relay,
            database,
        }
    }

    /// Adds `events` to what the relay holds, as if they had just reached
    /// it.
    pub(crate) async fn add(&self, events: &[Event]) {
        for event in events {
            self.database.save_event(event).await.expect("saved");
        }
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.relay.shutdown();
    }
}

/// What the fake relay does.
#[derive(Debug, Clone, Default)]
pub(crate) struct Script {
    /// Events served by `created_at`, honouring `since`, `until` and
    /// `limit` only (not kinds, authors or tags): `(created_at, JSON)`.
    pub(crate) events: Vec<(i64, String)>,
    /// Raw event JSON sent in answer to the first `REQ` of a connection,
    /// whatever it asks for.
    pub(crate) first_req_extra: Vec<String>,
    /// Never answer a `REQ`.
    pub(crate) silent: bool,
    /// Answer a `REQ` with a `NOTICE` every 100 ms, and nothing else.
    pub(crate) drip: bool,
    /// Wait this long before answering each `REQ`.
    pub(crate) delay: Duration,
    /// How a `NEG-OPEN` is answered.
    pub(crate) nip77: Nip77Answer,
    /// Close every `REQ` with `auth-required:` and refuse every `AUTH`.
    pub(crate) refuse_auth: bool,
}

/// How the fake relay answers `NEG-OPEN`: it never reconciles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Nip77Answer {
    /// A `NOTICE`, as relays that do not know the message do.
    #[default]
    Notice,
    /// `NEG-ERR`.
    NegErr,
    /// Nothing at all.
    Silent,
}

/// A relay speaking just enough NIP-01 to serve what its [`Script`] says,
/// bad events included (real relays refuse to hold them). Stops when
/// dropped.
pub(crate) struct FakeRelay {
    pub(crate) url: String,
    task: JoinHandle<()>,
}

impl FakeRelay {
    pub(crate) async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("an address");
        let script = Arc::new(script);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let _ = serve(stream, &script).await;
                });
            }
        });
        Self {
            url: format!("ws://{addr}"),
            task,
        }
    }
}

impl Drop for FakeRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: TcpStream, script: &Script) -> Result<(), Box<dyn std::error::Error>> {
    let mut socket = async_wsocket::native::accept(stream).await?;
    let mut first = true;
    while let Some(message) = socket.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let Ok(Value::Array(parts)) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let id = parts
            .get(1)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match parts.first().and_then(Value::as_str) {
            Some("REQ") => {}
            Some("NEG-OPEN") => {
                let answer = match script.nip77 {
                    Nip77Answer::Notice => json!(["NOTICE", "unknown message type"]),
                    Nip77Answer::NegErr => json!(["NEG-ERR", id, "error: not supported"]),
                    Nip77Answer::Silent => continue,
                };
                socket
                    .send(Message::Text(answer.to_string().into()))
                    .await?;
                continue;
            }
            Some("AUTH") => {
                let event_id = parts[1]["id"].as_str().unwrap_or_default().to_owned();
                let answer = json!(["OK", event_id, false, "restricted: not on the list"]);
                socket
                    .send(Message::Text(answer.to_string().into()))
                    .await?;
                continue;
            }
            _ => continue,
        }
        if script.refuse_auth {
            for answer in [
                json!(["AUTH", "challenge-1"]),
                json!(["CLOSED", id, "auth-required: members only"]),
            ] {
                socket
                    .send(Message::Text(answer.to_string().into()))
                    .await?;
            }
            continue;
        }
        let filter = parts.get(2).cloned().unwrap_or(Value::Null);
        if script.silent {
            continue;
        }
        if script.drip {
            loop {
                socket
                    .send(Message::Text(
                        json!(["NOTICE", "still here"]).to_string().into(),
                    ))
                    .await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        tokio::time::sleep(script.delay).await;
        let since = filter["since"].as_i64().unwrap_or(i64::MIN);
        let until = filter["until"].as_i64().unwrap_or(i64::MAX);
        let limit = filter["limit"]
            .as_u64()
            .map_or(usize::MAX, |l| usize::try_from(l).expect("small"));
        let mut selected: Vec<&(i64, String)> = script
            .events
            .iter()
            .filter(|(created_at, _)| (since..=until).contains(created_at))
            .collect();
        selected.sort_by_key(|(created_at, _)| std::cmp::Reverse(*created_at));
        let mut out: Vec<&str> = selected
            .iter()
            .take(limit)
            .map(|(_, json)| json.as_str())
            .collect();
        if first {
            out.extend(script.first_req_extra.iter().map(String::as_str));
            first = false;
        }
        for json in out {
            let message = format!(r#"["EVENT",{},{json}]"#, Value::from(id.as_str()));
            socket.send(Message::Text(message.into())).await?;
        }
        socket
            .send(Message::Text(json!(["EOSE", id]).to_string().into()))
            .await?;
    }
    Ok(())
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
        let addr: SocketAddr = listener.local_addr().expect("an address");
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

/// Short limits and the test events' time range.
pub(crate) fn sync_config(worker: &str) -> SynchronizerConfig {
    let mut config = SynchronizerConfig {
        start_time: BASE,
        window: Duration::from_secs(6 * 3600),
        batch_size: 500,
        worker_id: worker.to_owned(),
        ..SynchronizerConfig::default()
    };
    config.timeouts.request = Duration::from_secs(10);
    config.timeouts.idle = Duration::from_secs(5);
    config.timeouts.total = Duration::from_secs(60);
    config.lease.duration = Duration::from_secs(30);
    config
}

/// A synchronizer with `config` and no proxy, connecting within 2 s.
pub(crate) fn synchronizer(config: &SynchronizerConfig) -> Synchronizer {
    let nostr = NostrConfig {
        timeout: Duration::from_secs(2),
        ..NostrConfig::default()
    };
    Synchronizer::new(config, &nostr)
        .expect("a valid synchronizer")
        .with_egress(local_egress())
}

/// The strict egress policy, but for the test relays on 127.0.0.1.
pub(crate) fn local_egress() -> Egress {
    Egress::new(EgressPolicy::strict().allowing("127.0.0.1/32".parse().expect("a CIDR")))
}

/// A fresh `bigbrotr` database and an archive on it; the database is
/// dropped with it when the test passed.
pub(crate) struct Fixture {
    pub(crate) brotr: Brotr,
    _db: TestDb,
}

impl Fixture {
    pub(crate) async fn new() -> Self {
        Self::with(BrotrConfig::default()).await
    }

    pub(crate) async fn with(config: BrotrConfig) -> Self {
        Self::of("bigbrotr", config).await
    }

    /// A fresh database of the implementation `implementation`.
    pub(crate) async fn of(implementation: &str, config: BrotrConfig) -> Self {
        let db = TestDb::new(implementation).await.expect("test database");
        let pool = db.connection_pool(8).await.expect("connect");
        let brotr = Brotr::new(pool, config).expect("valid brotr configuration");
        Self { brotr, _db: db }
    }

    /// Records the relay `url` as the monitor would after finding it
    /// readable, with `nip11` as its NIP-11 document, and returns its id.
    pub(crate) async fn readable(&self, url: &str, nip11: Option<Value>) -> RelayId {
        self.checked(url, nip11, true).await
    }

    /// Records the relay `url` with a latest check saying whether it is
    /// `readable`.
    pub(crate) async fn checked(&self, url: &str, nip11: Option<Value>, readable: bool) -> RelayId {
        let relay_id = self.brotr.insert_relay(url, 1).await.expect("relay stored");
        let nip66 = json!({"network": "clearnet", "rtt_open": 1, "readable": readable});
        self.brotr
            .insert_relay_metadata(relay_id, nip11, Some(nip66), true, BASE)
            .await
            .expect("check stored");
        relay_id
    }

    /// How many events are archived.
    pub(crate) async fn event_count(&self) -> i64 {
        self.count("SELECT count(*) FROM events", None).await
    }

    /// How many events are archived with provenance to `relay`.
    pub(crate) async fn relay_event_count(&self, relay: RelayId) -> i64 {
        self.count(
            "SELECT count(*) FROM events_relays WHERE relay_id = $1",
            Some(relay),
        )
        .await
    }

    async fn count(&self, sql: &str, relay: Option<RelayId>) -> i64 {
        let id = relay.map(RelayId::get);
        let params: Vec<bigbrotr_pool::Param<'_>> = match &id {
            Some(id) => vec![(id, Type::INT4)],
            None => Vec::new(),
        };
        let row = self
            .brotr
            .pool()
            .fetch_one(sql, &params)
            .await
            .expect("counted");
        row.get(0)
    }

    /// The ids of the events archived with provenance to `relay`.
    pub(crate) async fn relay_event_ids(&self, relay: RelayId) -> HashSet<EventId> {
        let id = relay.get();
        let rows = self
            .brotr
            .pool()
            .fetch_all(
                "SELECT event_id FROM events_relays WHERE relay_id = $1",
                &[(&id, Type::INT4)],
            )
            .await
            .expect("read");
        rows.iter()
            .map(|row| EventId::from_slice(row.get::<_, &[u8]>(0)).expect("an id"))
            .collect()
    }

    /// The pending ranges of `relay`.
    pub(crate) async fn pending(&self, relay: RelayId) -> Vec<PendingRange> {
        let hash = *synchronizer(&sync_config("any")).filter().hash();
        due_pending(&self.brotr, relay, &hash, 1000)
            .await
            .expect("read")
    }

    /// What the synchronizer learned of `relay`.
    pub(crate) async fn state(&self, relay: RelayId) -> RelayState {
        relay_state(&self.brotr, relay).await.expect("read")
    }

    /// The stored cursor of `relay` and the worker holding its lease.
    pub(crate) async fn cursor(&self, relay: RelayId) -> (Option<Cursor>, Option<String>) {
        let id = relay.get();
        let row = self
            .brotr
            .pool()
            .fetch_optional(
                "SELECT created_at, event_id, lease_worker FROM sync_cursors WHERE relay_id = $1",
                &[(&id, Type::INT4)],
            )
            .await
            .expect("read");
        let Some(row) = row else {
            return (None, None);
        };
        let created_at: Option<i64> = row.get(0);
        let event_id: Option<&[u8]> = row.get(1);
        let cursor = created_at.map(|created_at| Cursor {
            created_at,
            event_id: event_id.map(|bytes| EventId::from_slice(bytes).expect("an id")),
        });
        (cursor, row.get(2))
    }
}

/// The ids of `events`.
pub(crate) fn ids(events: &[Event]) -> HashSet<EventId> {
    events.iter().map(|event| event.id).collect()
}

/// The JSON of `event`.
pub(crate) fn json_of(event: &Event) -> String {
    event.as_json()
}
