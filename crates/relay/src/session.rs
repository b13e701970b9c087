//! One client connection: its messages read one at a time and answered,
//! its subscriptions, and the new events sent to them after `EOSE`.
//!
//! Everything a client sends is bounded before it costs anything: the
//! message size (by the WebSocket), the subscriptions open at once, the
//! filters of a `REQ`, the values of a filter, the events a `REQ` gets and a
//! `NEG-OPEN` reconciles, and the time of each query. A client that stops
//! reading is cut off once a write has waited [`WRITE_TIMEOUT`]; one that
//! sends nothing, pongs included, for `relay.idle_timeout` is closed.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use nostr::message::MachineReadablePrefix;
use nostr::{ClientMessage, Filter, JsonUtil, RelayMessage, SubscriptionId};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::live::{LiveBatch, Waiting};
use crate::query::{Conditions, Refusal};
use crate::reads::{self, Found};
use crate::server::Shared;
use crate::TARGET;

/// Longest wait for one message to be written to a client.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest negentropy message the relay writes, in bytes before hex: what
/// other relays use, well under a client's message limit.
const NEGENTROPY_FRAME_LIMIT: u64 = 60_000;

/// Why sending a filter's stored events stopped.
enum History {
    /// The query failed.
    Query(crate::Error),
    /// The connection was lost.
    Lost(End),
}

/// The answer to an `EVENT`.
pub(crate) const READ_ONLY: &str = "blocked: read-only archive";

/// A subscription after its `EOSE`: its filters, and its place among those
/// waiting for new events.
struct LiveSubscription {
    filters: Vec<Conditions>,
    _waiting: Waiting,
}

/// A reconciliation open, and its place among those of every connection.
struct Reconciliation {
    negentropy: Negentropy<'static, NegentropyStorageVector>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Why a connection ends.
#[derive(Debug, Clone, Copy)]
enum End {
    /// The client closed it, or the relay is stopping.
    Closed,
    /// A write failed or timed out, or the client went quiet.
    Lost(&'static str),
}

/// One connection's state.
struct Session<S> {
    ws: WebSocketStream<S>,
    shared: Arc<Shared>,
    subscriptions: HashMap<SubscriptionId, LiveSubscription>,
    reconciliations: HashMap<SubscriptionId, Reconciliation>,
    live: Option<tokio::sync::broadcast::Receiver<LiveBatch>>,
}

/// Serves one WebSocket connection until the client leaves, it breaks a
/// limit that ends it, or `cancel` fires.
pub(crate) async fn serve<S>(ws: WebSocketStream<S>, shared: Arc<Shared>, cancel: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut session = Session {
        ws,
        shared,
        subscriptions: HashMap::new(),
        reconciliations: HashMap::new(),
        live: None,
    };
    let end = session.run(&cancel).await;
    let reason = match end {
        End::Closed => "closed",
        End::Lost(reason) => reason,
    };
    tracing::debug!(target: TARGET, reason, "connection ended");
    let _ = tokio::time::timeout(WRITE_TIMEOUT, session.ws.close(None)).await;
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    async fn run(&mut self, cancel: &CancellationToken) -> End {
        let idle = self.shared.config.idle_timeout;
        let mut ping = tokio::time::interval(idle / 3);
        ping.reset();
        let mut last_heard = Instant::now();
        loop {
            let deadline = last_heard + idle;
            tokio::select! {
                () = cancel.cancelled() => return End::Closed,
                () = tokio::time::sleep_until(deadline) => return End::Lost("idle"),
                _ = ping.tick() => {
                    if let Err(end) = self.write(Message::Ping(Vec::new().into())).await {
                        return end;
                    }
                }
                batch = recv_live(&mut self.live) => {
                    if let Err(end) = self.deliver(batch).await {
                        return end;
                    }
                }
                message = self.ws.next() => {
                    last_heard = Instant::now();
                    let text = match message {
                        None | Some(Ok(Message::Close(_))) => return End::Closed,
                        Some(Err(error)) => {
                            tracing::debug!(target: TARGET, %error, "WebSocket error");
                            return End::Lost("protocol");
                        }
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Binary(_))) => {
                            let notice = RelayMessage::notice("error: binary messages are not Nostr messages");
                            if let Err(end) = self.send(&notice).await {
                                return end;
                            }
                            continue;
                        }
                        // Pings are answered by the WebSocket; pongs only
                        // show the client is there.
                        Some(Ok(_)) => continue,
                    };
                    if let Err(end) = self.handle(text.as_str()).await {
                        return end;
                    }
                }
            }
        }
    }

    /// Answers one message.
    async fn handle(&mut self, text: &str) -> Result<(), End> {
        let message = match ClientMessage::from_json(text) {
            Ok(message) => message,
            Err(error) => {
                self.shared.metrics.message("invalid");
                return self
                    .send(&RelayMessage::notice(format!(
                        "error: could not read the message: {error}"
                    )))
                    .await;
            }
        };
        match message {
            ClientMessage::Req {
                subscription_id,
                filters,
            } => {
                self.shared.metrics.message("req");
                let filters: Vec<Filter> = filters.into_iter().map(Cow::into_owned).collect();
                self.req(subscription_id.into_owned(), &filters).await
            }
            ClientMessage::Count {
                subscription_id,
                filter,
            } => {
                self.shared.metrics.message("count");
                self.count(subscription_id.into_owned(), &filter).await
            }
            ClientMessage::Close(subscription_id) => {
                self.shared.metrics.message("close");
                self.subscriptions.remove(&*subscription_id);
                if self.subscriptions.is_empty() {
                    self.live = None;
                }
                Ok(())
            }
            ClientMessage::Event(event) => {
                self.shared.metrics.message("event");
                self.send(&RelayMessage::ok(event.id, false, READ_ONLY))
                    .await
            }
            ClientMessage::Auth(event) => {
                self.shared.metrics.message("auth");
                self.send(&RelayMessage::ok(
                    event.id,
                    false,
                    "blocked: this archive asks for no authentication",
                ))
                .await
            }
            ClientMessage::NegOpen {
                subscription_id,
                filter,
                initial_message,
                ..
            } => {
                self.shared.metrics.message("neg-open");
                self.neg_open(subscription_id.into_owned(), &filter, &initial_message)
                    .await
            }
            ClientMessage::NegMsg {
                subscription_id,
                message,
            } => {
                self.shared.metrics.message("neg-msg");
                self.neg_msg(subscription_id.into_owned(), &message).await
            }
            ClientMessage::NegClose { subscription_id } => {
                self.shared.metrics.message("neg-close");
                self.reconciliations.remove(&*subscription_id);
                Ok(())
            }
        }
    }

    /// Why a new subscription `id` cannot be opened, if it cannot.
    fn subscription_refusal(&self, id: &SubscriptionId) -> Option<String> {
        let config = &self.shared.config;
        if id.as_str().chars().count() > config.max_subid_length as usize {
            return Some(format!(
                "invalid: subscription id longer than {} characters",
                config.max_subid_length
            ));
        }
        let open = self.subscriptions.len() + self.reconciliations.len();
        let replaces = self.subscriptions.contains_key(id) || self.reconciliations.contains_key(id);
        if !replaces && open >= config.max_subscriptions as usize {
            return Some(format!(
                "{}: at most {} subscriptions at once",
                MachineReadablePrefix::RateLimited,
                config.max_subscriptions
            ));
        }
        None
    }

    /// The conditions of `filters`, dropping those that match nothing.
    fn conditions(&self, filters: &[Filter]) -> Result<Vec<Conditions>, Refusal> {
        let mut all = Vec::with_capacity(filters.len());
        for filter in filters {
            if let Some(conditions) = Conditions::of(filter, &self.shared.config)? {
                all.push(conditions);
            }
        }
        Ok(all)
    }

    async fn req(&mut self, id: SubscriptionId, filters: &[Filter]) -> Result<(), End> {
        self.subscriptions.remove(&id);
        let config = &self.shared.config;
        let refusal = if !self.shared.serves_events {
            Some(
                "unsupported: this archive keeps no event content or tags (lilbrotr), so it \
                 cannot serve events that verify; COUNT and NEG-OPEN work"
                    .to_owned(),
            )
        } else if filters.len() > config.max_filters as usize {
            Some(format!(
                "blocked: at most {} filters in a REQ",
                config.max_filters
            ))
        } else {
            self.subscription_refusal(&id)
        };
        if let Some(reason) = refusal {
            return self.closed(id, reason).await;
        }
        let conditions = match self.conditions(filters) {
            Ok(conditions) => conditions,
            Err(refusal) => return self.closed(id, refusal.to_string()).await,
        };
        // Counted (and listening) before the stored events are read: what
        // is archived after that read arrives as a new event.
        let waiting = self.shared.live.waiting();
        if self.live.is_none() {
            self.live = Some(self.shared.live.subscribe());
        }
        let mut sent = HashSet::new();
        let prefix = event_prefix(&id);
        for filter in &conditions {
            if let Err(error) = self.history(filter, &prefix, &mut sent).await {
                let error = match error {
                    History::Query(error) => error,
                    History::Lost(end) => return Err(end),
                };
                if self.subscriptions.is_empty() {
                    self.live = None;
                }
                return self.closed(id, self.query_failure(&error)).await;
            }
        }
        self.send(&RelayMessage::eose(id.clone())).await?;
        self.subscriptions.insert(
            id,
            LiveSubscription {
                filters: conditions,
                _waiting: waiting,
            },
        );
        Ok(())
    }

    /// Sends the stored events of one filter, newest first, skipping those
    /// already in `sent`; a large event is read on its own when its turn
    /// comes, so that memory holds one at a time.
    async fn history(
        &mut self,
        filter: &Conditions,
        prefix: &str,
        sent: &mut HashSet<[u8; 32]>,
    ) -> Result<(), History> {
        let shared = Arc::clone(&self.shared);
        let limit = filter.history_limit(&shared.config);
        if limit == 0 {
            return Ok(());
        }
        let timeout = shared.config.query_timeout;
        let found = reads::events(&shared.pool, filter, limit, timeout)
            .await
            .map_err(History::Query)?;
        let mut count = 0;
        for found in found {
            let (event_id, json) = match found {
                Found::Ready(event_id, json) => (event_id, Some(json)),
                Found::Large(event_id) if !sent.contains(&event_id) => {
                    let json = reads::event(&shared.pool, &event_id, timeout)
                        .await
                        .map_err(History::Query)?;
                    (event_id, json)
                }
                Found::Large(event_id) => (event_id, None),
            };
            // An event matching several filters is sent once.
            if let Some(json) = json {
                if sent.insert(event_id) {
                    count += 1;
                    self.feed_text(format!("{prefix}{json}]"))
                        .await
                        .map_err(History::Lost)?;
                }
            }
        }
        shared.metrics.events_sent(count);
        Ok(())
    }

    async fn count(&mut self, id: SubscriptionId, filter: &Filter) -> Result<(), End> {
        if let Some(reason) = self.subscription_refusal(&id) {
            return self.closed(id, reason).await;
        }
        let conditions = match Conditions::of(filter, &self.shared.config) {
            Ok(conditions) => conditions,
            Err(refusal) => return self.closed(id, refusal.to_string()).await,
        };
        let counted = match conditions {
            None => Ok(0),
            Some(conditions) => {
                reads::count(
                    &self.shared.pool,
                    &conditions,
                    self.shared.config.query_timeout,
                )
                .await
            }
        };
        match counted {
            Ok(count) => {
                let count = usize::try_from(count).unwrap_or(usize::MAX);
                self.send(&RelayMessage::count(id, count)).await
            }
            Err(error) => self.closed(id, self.query_failure(&error)).await,
        }
    }

    async fn neg_open(
        &mut self,
        id: SubscriptionId,
        filter: &Filter,
        initial: &str,
    ) -> Result<(), End> {
        self.reconciliations.remove(&id);
        if let Some(reason) = self.subscription_refusal(&id) {
            return self.neg_err(id, reason).await;
        }
        let conditions = match Conditions::of(filter, &self.shared.config) {
            Ok(conditions) => conditions,
            Err(refusal) => return self.neg_err(id, refusal.to_string()).await,
        };
        let Ok(permit) = Arc::clone(&self.shared.reconciliations).try_acquire_owned() else {
            self.shared.metrics.refused("negentropy_sessions");
            return self
                .neg_err(
                    id,
                    format!(
                        "rate-limited: {} reconciliations are open on this relay; try again later",
                        self.shared.config.max_negentropy_sessions
                    ),
                )
                .await;
        };
        let max = self.shared.config.max_negentropy_events;
        let items = match &conditions {
            None => Ok(Vec::new()),
            Some(conditions) => {
                // One more than allowed tells that there are too many.
                let wanted = conditions.limit().map_or(i64::from(max) + 1, |limit| {
                    i64::try_from(limit)
                        .unwrap_or(i64::MAX)
                        .min(i64::from(max) + 1)
                });
                reads::negentropy_items(
                    &self.shared.pool,
                    conditions,
                    wanted,
                    self.shared.config.query_timeout,
                )
                .await
            }
        };
        let items = match items {
            Ok(items) => items,
            Err(error) => return self.neg_err(id, self.query_failure(&error)).await,
        };
        if items.len() > max as usize {
            self.shared.metrics.refused("negentropy_too_large");
            return self
                .neg_err(
                    id,
                    format!(
                        "blocked: more than {max} events match; narrow the filter with since and until"
                    ),
                )
                .await;
        }
        let negentropy = match start_reconciliation(items) {
            Ok(negentropy) => negentropy,
            Err(error) => return self.neg_err(id, format!("error: {error}")).await,
        };
        self.reconciliations.insert(
            id.clone(),
            Reconciliation {
                negentropy,
                _permit: permit,
            },
        );
        self.neg_msg(id, initial).await
    }

    async fn neg_msg(&mut self, id: SubscriptionId, message: &str) -> Result<(), End> {
        let Some(Reconciliation { negentropy, .. }) = self.reconciliations.get_mut(&id) else {
            return self
                .neg_err(id, "closed: no reconciliation open with this id".to_owned())
                .await;
        };
        let answer = hex::decode(message)
            .map_err(|error| format!("invalid: the message is not hex: {error}"))
            .and_then(|bytes| {
                negentropy
                    .reconcile(&bytes)
                    .map_err(|error| format!("invalid: {error}"))
            });
        match answer {
            Ok(answer) => {
                self.send(&RelayMessage::NegMsg {
                    subscription_id: Cow::Owned(id),
                    message: Cow::Owned(hex::encode(answer)),
                })
                .await
            }
            Err(reason) => {
                self.reconciliations.remove(&id);
                self.neg_err(id, reason).await
            }
        }
    }

    /// Sends the new events of `batch` to the subscriptions they match.
    async fn deliver(&mut self, batch: Result<LiveBatch, RecvError>) -> Result<(), End> {
        let batch = match batch {
            Ok(batch) => batch,
            Err(RecvError::Lagged(_)) => {
                // Events were dropped for this connection: say so rather
                // than leave a silent gap.
                self.live = None;
                self.shared.metrics.refused("too_slow");
                let ids: Vec<SubscriptionId> = self.subscriptions.keys().cloned().collect();
                self.subscriptions.clear();
                for id in ids {
                    self.closed(
                        id,
                        "error: this connection fell behind the new events; subscribe again \
                         with since"
                            .to_owned(),
                    )
                    .await?;
                }
                return Ok(());
            }
            Err(RecvError::Closed) => {
                self.live = None;
                return Ok(());
            }
        };
        let mut out = Vec::new();
        for (id, subscription) in &self.subscriptions {
            for event in batch.iter() {
                if subscription.filters.iter().any(|f| f.matches(event)) {
                    out.push(format!("{}{}]", event_prefix(id), event.json));
                }
            }
        }
        self.shared.metrics.events_sent(out.len() as u64);
        for text in out {
            self.feed_text(text).await?;
        }
        self.flush().await
    }

    /// The reason given when a query failed; logged here.
    fn query_failure(&self, error: &crate::Error) -> String {
        if error.is_query_timeout() {
            self.shared.metrics.refused("query_timeout");
            format!(
                "error: the query ran past {} ms; narrow the filter",
                self.shared.config.query_timeout.as_millis()
            )
        } else {
            self.shared.metrics.refused("database");
            tracing::warn!(target: TARGET, error = %error, "a query of the archive failed");
            "error: the archive could not answer; try again later".to_owned()
        }
    }

    async fn closed(&mut self, id: SubscriptionId, reason: String) -> Result<(), End> {
        self.send(&RelayMessage::closed(id, reason)).await
    }

    async fn neg_err(&mut self, id: SubscriptionId, reason: String) -> Result<(), End> {
        self.send(&RelayMessage::NegErr {
            subscription_id: Cow::Owned(id),
            message: Cow::Owned(reason),
        })
        .await
    }

    async fn send(&mut self, message: &RelayMessage<'_>) -> Result<(), End> {
        self.write_text(message.as_json()).await
    }

    async fn write_text(&mut self, text: String) -> Result<(), End> {
        self.write(Message::Text(text.into())).await
    }

    /// Queues `text` to be written, flushing only when the buffer is full:
    /// the events of an answer go out in few writes, the message that ends
    /// it (`EOSE`, or a flush) sends them all.
    async fn feed_text(&mut self, text: String) -> Result<(), End> {
        within_write_timeout(self.ws.feed(Message::Text(text.into()))).await
    }

    async fn flush(&mut self) -> Result<(), End> {
        within_write_timeout(self.ws.flush()).await
    }

    async fn write(&mut self, message: Message) -> Result<(), End> {
        within_write_timeout(self.ws.send(message)).await
    }
}

/// A write to the client, which must be done within [`WRITE_TIMEOUT`].
async fn within_write_timeout(
    write: impl std::future::Future<Output = Result<(), tokio_tungstenite::tungstenite::Error>>,
) -> Result<(), End> {
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Lost("write")),
        Err(_) => Err(End::Lost("write timeout")),
    }
}

/// The next batch of new events, when this connection listens; never ready
/// otherwise.
async fn recv_live(
    live: &mut Option<tokio::sync::broadcast::Receiver<LiveBatch>>,
) -> Result<LiveBatch, RecvError> {
    match live {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// `["EVENT",<subscription id>,`: what every event sent to `id` starts
/// with.
fn event_prefix(id: &SubscriptionId) -> String {
    let id = serde_json::to_string(id.as_str()).unwrap_or_default();
    format!("[\"EVENT\",{id},")
}

/// A sealed negentropy storage of `items` and the reconciliation over it.
fn start_reconciliation(
    items: Vec<(u64, [u8; 32])>,
) -> Result<Negentropy<'static, NegentropyStorageVector>, negentropy::Error> {
    let mut storage = NegentropyStorageVector::with_capacity(items.len());
    for (created_at, id) in items {
        storage.insert(created_at, Id::from_byte_array(id))?;
    }
    storage.seal()?;
    Negentropy::owned(storage, NEGENTROPY_FRAME_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_prefix_escapes_the_subscription_id() {
        let id = SubscriptionId::new("a\"b");
        assert_eq!(event_prefix(&id), r#"["EVENT","a\"b","#);
    }
}
