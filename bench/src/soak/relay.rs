//! The soak benchmark's relays: a WebSocket server on `127.0.0.1` per
//! relay, answering from a [`WindowStore`] the way the relay of a case
//! behaves: every `REQ` whole, at most a silent cap per `REQ`, with NIP-77
//! reconciliation too, or every `REQ` whole with garbage and forged copies
//! mixed in.
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
use nostr::secp256k1::Message as Digest;
use nostr::{ClientMessage, Event, JsonUtil, Keys, RelayMessage, SubscriptionId};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::store::{Entry, WindowStore};

/// What a hostile relay serves in place of an event: not an event at all.
const GARBAGE: &str = r#"{"id":"garbage"}"#;
/// A hostile relay puts a bad message before every this-many-th event.
const HOSTILE_EVERY: u64 = 3;

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
    /// As [`Behaviour::Honest`], but before every third event of a
    /// connection another `EVENT`: in turn a garbage one (`{"id":"garbage"}`)
    /// and a forged copy of the event (the same id, another key's
    /// signature); garbage before a raw entry. The limit of a `REQ` counts
    /// the real events only.
    Hostile,
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

/// What a relay keeps about one connection.
struct Session {
    behaviour: Behaviour,
    reconciliations: HashMap<SubscriptionId, Negentropy<'static, NegentropyStorageVector>>,
    /// Events sent so far (hostile relays).
    events_sent: u64,
    /// Bad messages sent so far (hostile relays).
    bad_sent: u64,
    /// The key signing forged copies (hostile relays).
    forger: Option<Keys>,
}

/// One client's connection, until it closes or breaks.
async fn serve(stream: TcpStream, store: Arc<WindowStore>, behaviour: Behaviour) {
    let Ok(socket) = native::accept(stream).await else {
        return;
    };
    let (mut tx, mut rx) = socket.split();
    let mut session = Session {
        behaviour,
        reconciliations: HashMap::new(),
        events_sent: 0,
        bad_sent: 0,
        forger: (behaviour == Behaviour::Hostile).then(Keys::generate),
    };
    while let Some(Ok(message)) = rx.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let answers = match ClientMessage::from_json(text.as_bytes()) {
            Ok(message) => answer(&store, &mut session, message),
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
fn answer(store: &WindowStore, session: &mut Session, message: ClientMessage<'_>) -> Vec<String> {
    let behaviour = session.behaviour;
    let reconciliations = &mut session.reconciliations;
    match message {
        ClientMessage::Req {
            subscription_id,
            filters,
        } => {
            let mut cap = match behaviour {
                Behaviour::Capped(cap) => cap,
                Behaviour::Honest | Behaviour::Nip77 | Behaviour::Hostile => usize::MAX,
            };
            let mut answers = Vec::new();
            for filter in &filters {
                let entries = store.query(filter, cap);
                cap -= entries.len().min(cap);
                for entry in &entries {
                    if let Some(bad) = session.bad_before(entry, &subscription_id) {
                        answers.push(bad);
                    }
                    answers.push(event_message(&subscription_id, entry));
                }
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
                Behaviour::Honest | Behaviour::Hostile => {
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

impl Session {
    /// The bad message a hostile relay sends before `entry`, if this is
    /// the time for one; counts the event.
    fn bad_before(&mut self, entry: &Entry, subscription_id: &SubscriptionId) -> Option<String> {
        let forger = self.forger.as_ref()?;
        self.events_sent += 1;
        if self.events_sent % HOSTILE_EVERY != 0 {
            return None;
        }
        self.bad_sent += 1;
        let forged = match entry {
            Entry::Event(event) if self.bad_sent % 2 == 0 => Some(forge(event, forger)),
            Entry::Event(_) | Entry::Raw(_) => None,
        };
        Some(match forged {
            Some(forged) => RelayMessage::Event {
                subscription_id: Cow::Borrowed(subscription_id),
                event: Cow::Owned(forged),
            }
            .as_json(),
            None => raw_event_message(subscription_id, GARBAGE),
        })
    }
}

/// A copy of `event` with the same id, signed by `forger`: its id checks,
/// its signature does not.
fn forge(event: &Event, forger: &Keys) -> Event {
    let sig = forger.sign_schnorr(&Digest::from_digest(event.id.to_bytes()));
    Event::new(
        event.id,
        event.pubkey,
        event.created_at,
        event.kind,
        event.tags.iter().cloned(),
        event.content.clone(),
        sig,
    )
}

/// The `EVENT` message carrying `entry` to `subscription_id`.
fn event_message(subscription_id: &SubscriptionId, entry: &Entry) -> String {
    match entry {
        Entry::Event(event) => RelayMessage::Event {
            subscription_id: Cow::Borrowed(subscription_id),
            event: Cow::Borrowed(event.as_ref()),
        }
        .as_json(),
        Entry::Raw(raw) => raw_event_message(subscription_id, &raw.json),
    }
}

/// `["EVENT", <subscription id>, <json>]`, with `json` as it is.
fn raw_event_message(subscription_id: &SubscriptionId, json: &str) -> String {
    let id = nostr::serde_json::to_string(subscription_id.as_str())
        .unwrap_or_else(|_| "\"\"".to_owned());
    let mut message = String::with_capacity(json.len() + id.len() + 12);
    message.push_str("[\"EVENT\",");
    message.push_str(&id);
    message.push(',');
    message.push_str(json);
    message.push(']');
    message
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
