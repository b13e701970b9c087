//! A relay over a fresh archive, the corpus of real events, and a raw
//! WebSocket client that reads every message up to the one that ends a
//! request.

use std::net::SocketAddr;
use std::time::Duration;

use bigbrotr_brotr::{Brotr, RelayId};
use bigbrotr_config::BrotrConfig;
use bigbrotr_relay::{RelayConfig, RelayServer};
use bigbrotr_test_support::TestDb;
use futures_util::{SinkExt, StreamExt};
use nostr::{Event, JsonUtil};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// A relay serving a fresh archive; the database is dropped with it when the
/// test passed.
pub(crate) struct Served {
    pub(crate) server: RelayServer,
    pub(crate) brotr: Brotr,
    pub(crate) relay_id: RelayId,
    pub(crate) _db: TestDb,
}

impl Served {
    pub(crate) fn url(&self) -> String {
        format!("ws://{}", self.server.local_addr())
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Archives `events` as seen on the test's relay.
    pub(crate) async fn store(&self, events: &[Event]) {
        for part in events.chunks(1000) {
            let batch: Vec<(Event, RelayId)> =
                part.iter().cloned().map(|e| (e, self.relay_id)).collect();
            let report = self
                .brotr
                .insert_event_batch(&batch, 1)
                .await
                .expect("insert");
            assert_eq!(report.rejected, []);
        }
    }
}

/// Quick limits for tests: new events looked for every 50 ms.
pub(crate) fn config() -> RelayConfig {
    RelayConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        live_poll_interval: Duration::from_millis(50),
        ..RelayConfig::default()
    }
}

/// A relay configured by `config` over a fresh `implementation` archive
/// holding `events`.
pub(crate) async fn serve(implementation: &str, config: RelayConfig, events: &[Event]) -> Served {
    let db = TestDb::new(implementation).await.expect("test database");
    let pool = db.connection_pool(8).await.expect("pool");
    let brotr = Brotr::new(pool.clone(), BrotrConfig::default()).expect("brotr");
    let relay_id = brotr
        .insert_relay("wss://seen.example", 1)
        .await
        .expect("relay");
    let metrics = bigbrotr_service_runtime::Metrics::new().for_service("relay");
    let poll = config.live_poll_interval;
    let server = RelayServer::bind(config, pool, metrics)
        .await
        .expect("relay");
    let served = Served {
        server,
        brotr,
        relay_id,
        _db: db,
    };
    served.store(events).await;
    // Past the stored events, the feed of new ones starts from after them
    // (while no subscription waits, at each poll): none comes again after a
    // first `EOSE`.
    tokio::time::sleep(poll * 4).await;
    served
}

/// Every event of the corpus of real events, or `None` (the test skips)
/// when the corpus is not beside the repository.
pub(crate) fn corpus() -> Option<Vec<Event>> {
    let dir = bigbrotr_test_support::corpus_dir()?;
    let text = std::fs::read_to_string(dir.join("real-events.jsonl")).expect("corpus");
    Some(
        text.lines()
            .map(|line| Event::from_json(line).expect("an event"))
            .collect(),
    )
}

/// A raw WebSocket connection to the relay.
pub(crate) struct Raw {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Raw {
    pub(crate) async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        Self { ws }
    }

    pub(crate) async fn send(&mut self, message: &Value) {
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send");
    }

    pub(crate) async fn send_text(&mut self, text: String) -> Result<(), String> {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .map_err(|e| e.to_string())
    }

    /// The next text message, parsed; `None` when the connection ended.
    pub(crate) async fn next(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("a message within 20 s");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(text.as_str()).expect("JSON"))
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Every message up to and including the first whose type is one of
    /// `last` (`EOSE`, `CLOSED`, `COUNT`, …).
    pub(crate) async fn until(&mut self, last: &[&str]) -> Vec<Value> {
        let mut messages = Vec::new();
        while let Some(message) = self.next().await {
            let done = last.iter().any(|kind| message[0] == *kind);
            messages.push(message);
            if done {
                return messages;
            }
        }
        panic!("the connection ended before {last:?}: {messages:?}");
    }

    /// The events a `REQ` of `filters` gets before its `EOSE`, in order, and
    /// the closing message.
    pub(crate) async fn req(&mut self, id: &str, filters: &[Value]) -> (Vec<Event>, Value) {
        let mut message = vec![Value::from("REQ"), Value::from(id)];
        message.extend(filters.iter().cloned());
        self.send(&Value::Array(message)).await;
        let mut messages = self.until(&["EOSE", "CLOSED"]).await;
        let end = messages.pop().expect("the last message");
        let events = messages
            .into_iter()
            .map(|m| {
                assert_eq!(m[0], "EVENT", "{m}");
                assert_eq!(m[1], id);
                let event = Event::from_json(m[2].to_string()).expect("an event");
                event.verify().expect("every event served verifies");
                event
            })
            .collect();
        (events, end)
    }
}
