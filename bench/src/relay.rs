//! The soak benchmark's relays: a WebSocket server on `127.0.0.1` per
//! relay, answering from a [`WindowStore`] the way the relay of a case
//! behaves: every `REQ` whole, at most a silent cap per `REQ`, or with
//! NIP-77 reconciliation too.
//!
//! They are written here rather than with `nostr-relay-builder` because a
//! case needs a relay that does not reconcile and says so: the builder's
//! relay answers `NEG-OPEN` from any database, and a database refusing it
//! makes the builder drop the connection.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use async_wsocket::futures_util::{SinkExt, StreamExt};
use async_wsocket::native::{self, Message};
use negentropy::{Negentropy, NegentropyStorageVector};
use nostr::{ClientMessage, JsonUtil, RelayMessage, SubscriptionId};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::store::WindowStore;

/// How a relay answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// Every `REQ` up to its `limit`; `NEG-OPEN` gets a `NOTICE`, as from a
    /// relay that does not know the message.
    Honest,
    /// At most this many events per `REQ` whatever its `limit`, without
    /// saying so; `NEG-OPEN` gets a `NEG-ERR`.
    Capped(usize),
    /// Every `REQ` up to its `limit`, and NIP-77 reconciliation.
    Nip77,
}

/// A relay listening on loopback; stops, with its connections, when
/// dropped.
pub(crate) struct BenchRelay {
    url: String,
    task: JoinHandle<()>,
}

impl BenchRelay {
    /// Starts a relay answering from `store` as `behaviour` says.
    pub(crate) async fn start(
        store: Arc<WindowStore>,
        behaviour: Behaviour,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a relay to 127.0.0.1")?;
        let address = listener.local_addr().context("reading a relay's address")?;
        let task = tokio::spawn(accept(listener, store, behaviour));
        Ok(Self {
            url: format!("ws://{address}"),
            task,
        })
    }

    /// Its `ws://` URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for BenchRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections until aborted; the connections end with it.
async fn accept(listener: TcpListener, store: Arc<WindowStore>, behaviour: Behaviour) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(serve(stream, Arc::clone(&store), behaviour));
                }
            }
            // Reaps the finished connections.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One client's connection, until it closes or breaks.
async fn serve(stream: TcpStream, store: Arc<WindowStore>, behaviour: Behaviour) {
    let Ok(socket) = native::accept(stream).await else {
        return;
    };
    let (mut tx, mut rx) = socket.split();
    let mut reconciliations: HashMap<SubscriptionId, Negentropy<'static, NegentropyStorageVector>> =
        HashMap::new();
    while let Some(Ok(message)) = rx.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let answers = match ClientMessage::from_json(text.as_bytes()) {
            Ok(message) => answer(&store, behaviour, &mut reconciliations, message),
            Err(error) => vec![RelayMessage::notice(format!("invalid: {error}")).as_json()],
        };
        for json in answers {
            if tx.feed(Message::Text(json.into())).await.is_err() {
                return;
            }
        }
        if tx.flush().await.is_err() {
            return;
        }
    }
}

/// The messages answering `message`, as JSON.
fn answer(
    store: &WindowStore,
    behaviour: Behaviour,
    reconciliations: &mut HashMap<SubscriptionId, Negentropy<'static, NegentropyStorageVector>>,
    message: ClientMessage<'_>,
) -> Vec<String> {
    match message {
        ClientMessage::Req {
            subscription_id,
            filters,
        } => {
            let mut cap = match behaviour {
                Behaviour::Capped(cap) => cap,
                Behaviour::Honest | Behaviour::Nip77 => usize::MAX,
            };
            let mut answers = Vec::new();
            for filter in &filters {
                let events = store.query(filter, cap);
                cap -= events.len().min(cap);
                answers.extend(events.iter().map(|event| {
                    RelayMessage::Event {
                        subscription_id: Cow::Borrowed(subscription_id.as_ref()),
                        event: Cow::Borrowed(event.as_ref()),
                    }
                    .as_json()
                }));
            }
            answers.push(RelayMessage::eose(subscription_id.into_owned()).as_json());
            answers
        }
        ClientMessage::Count {
            subscription_id,
            filter,
        } => vec![RelayMessage::count(
            subscription_id.into_owned(),
            store.query(&filter, usize::MAX).len(),
        )
        .as_json()],
        ClientMessage::NegOpen {
            subscription_id,
            filter,
            initial_message,
            ..
        } => {
            let subscription_id = subscription_id.into_owned();
            match behaviour {
                Behaviour::Honest => {
                    vec![RelayMessage::notice("unknown message type: NEG-OPEN").as_json()]
                }
                Behaviour::Capped(_) => vec![RelayMessage::NegErr {
                    subscription_id: Cow::Owned(subscription_id),
                    message: Cow::Borrowed("blocked: negentropy disabled"),
                }
                .as_json()],
                Behaviour::Nip77 => {
                    let opened = store.negentropy(&filter).map_err(|e| e.to_string());
                    let answer = opened.and_then(|mut negentropy| {
                        let reply = reconcile(&mut negentropy, &initial_message)?;
                        reconciliations.insert(subscription_id.clone(), negentropy);
                        Ok(reply)
                    });
                    vec![neg_answer(subscription_id, answer)]
                }
            }
        }
        ClientMessage::NegMsg {
            subscription_id,
            message,
        } => {
            let subscription_id = subscription_id.into_owned();
            let answer = match reconciliations.get_mut(&subscription_id) {
                Some(negentropy) => reconcile(negentropy, &message),
                None => Err("closed: no such reconciliation".to_owned()),
            };
            vec![neg_answer(subscription_id, answer)]
        }
        ClientMessage::NegClose { subscription_id } => {
            reconciliations.remove(subscription_id.as_ref());
            Vec::new()
        }
        ClientMessage::Event(event) => {
            vec![RelayMessage::ok(event.id, false, "blocked: this relay is read-only").as_json()]
        }
        ClientMessage::Close(_) | ClientMessage::Auth(_) => Vec::new(),
    }
}

/// The next message of a reconciliation, in hex, answering the hex
/// `message`.
fn reconcile(
    negentropy: &mut Negentropy<'static, NegentropyStorageVector>,
    message: &str,
) -> Result<String, String> {
    let bytes = hex::decode(message).map_err(|error| format!("invalid: {error}"))?;
    negentropy
        .reconcile(&bytes)
        .map(hex::encode)
        .map_err(|error| format!("error: {error}"))
}

/// `NEG-MSG` with the reply, or `NEG-ERR` with the reason.
fn neg_answer(subscription_id: SubscriptionId, answer: Result<String, String>) -> String {
    match answer {
        Ok(reply) => RelayMessage::NegMsg {
            subscription_id: Cow::Owned(subscription_id),
            message: Cow::Owned(reply),
        },
        Err(reason) => RelayMessage::NegErr {
            subscription_id: Cow::Owned(subscription_id),
            message: Cow::Owned(reason),
        },
    }
    .as_json()
}
