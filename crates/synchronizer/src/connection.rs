//! `RelayConnection`: one WebSocket connection to a relay: the `REQ` loop
//! that reads one request until its `EOSE`, NIP-77 reconciliation, and
//! NIP-42 authentication when the relay asks for it.
//!
//! The connection speaks NIP-01 itself rather than through `nostr-sdk`'s
//! relay pool, because an archive needs what the pool hides: the pool drops
//! events whose signature fails without telling (they could not be
//! counted), keeps from its caller events its own database calls replaced
//! or deleted (older versions of replaceable events, which an archive
//! keeps), and hands events over a bounded broadcast channel that drops them
//! when the reader lags. Here every message is read in order, with
//! back-pressure, and every event is accounted for.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_wsocket::futures_util::{SinkExt, StreamExt};
use async_wsocket::{Message, Url, WebSocket};
use bigbrotr_service_runtime::{connect_websocket_with, Error as RuntimeError};
use bigbrotr_utils::Egress;
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use nostr::secp256k1::schnorr::Signature;
use nostr::{
    ClientMessage, Event, EventBuilder, EventId, Filter, JsonUtil, Keys, RelayMessage, RelayUrl,
    SubscriptionId,
};
use tokio::time::Instant;
use tokio_socks::tcp::Socks5Stream;
use tokio_tungstenite::client_async_tls_with_config;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_util::sync::CancellationToken;

use crate::filter::Mismatch;

/// The prefix of a relay's reason when it wants the client authenticated.
const AUTH_REQUIRED: &str = "auth-required:";

/// The largest NIP-77 message the archiver sends, in bytes before hex: the
/// frame size the common relays use themselves.
const NEGENTROPY_FRAME_LIMIT: u64 = 60_000;

/// Why a request could not be completed: the relay is left for this cycle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The connection could not be opened.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The egress policy refuses the relay's address: no connection was
    /// attempted.
    #[error("refused by the egress policy: {0}")]
    Denied(String),
    /// No `EOSE` within the request timeout.
    #[error("no EOSE within the request timeout")]
    RequestTimeout,
    /// The relay stayed silent longer than the idle timeout.
    #[error("silent longer than the idle timeout")]
    IdleTimeout,
    /// The time allowed for the relay in this cycle ran out.
    #[error("the relay's time in this cycle ran out")]
    TotalTimeout,
    /// The relay ended the subscription with `CLOSED`.
    #[error("subscription closed by the relay: {0}")]
    Closed(String),
    /// The relay wants the client authenticated (NIP-42), and the archiver
    /// does not authenticate to it (turned off, no challenge, or refused
    /// recently).
    #[error("authentication required: {0}")]
    AuthRequired(String),
    /// The relay refused the archiver's NIP-42 authentication, or refused
    /// the request after it.
    #[error("authentication refused: {0}")]
    AuthRefused(String),
    /// The relay sent a message or frame larger than the WebSocket limit;
    /// the connection is unusable.
    #[error("message too large: {0}")]
    MessageTooLarge(String),
    /// The connection broke or was closed.
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// The cycle was cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// Why a NIP-77 reconciliation did not end.
#[derive(Debug)]
pub(crate) enum ReconcileError {
    /// The relay does not reconcile this request: `NEG-ERR`, a `NOTICE`,
    /// `CLOSED`, a message that does not decode, or silence. The window is
    /// walked with `REQ`s instead.
    Unsupported(String),
    /// The request failed as a `REQ` would.
    Fetch(FetchError),
}

/// What one `REQ` brought back.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    /// The events that answer the request, each once, in arrival order.
    pub(crate) events: Vec<Event>,
    /// `EVENT` messages of the subscription, rejected ones included.
    pub(crate) received: u64,
    /// Events outside the window asked for.
    pub(crate) outside_window: u64,
    /// Events not matching the filter (or not among the ids asked for).
    pub(crate) filter_mismatch: u64,
    /// Events sent twice in the subscription.
    pub(crate) repeated: u64,
    /// `EVENT` messages of the subscription that are not events.
    pub(crate) malformed: u64,
    /// Events whose id is not their hash.
    pub(crate) invalid_id: u64,
    /// Events larger than the event limit: `(id, created_at, size)`.
    pub(crate) oversized: Vec<(EventId, i64, usize)>,
    /// Whether reading stopped at the byte budget before `EOSE`: the answer
    /// is cut short.
    pub(crate) truncated: bool,
}

impl Fetched {
    /// Events refused before validation.
    pub(crate) fn refused(&self) -> u64 {
        self.outside_window
            + self.filter_mismatch
            + self.repeated
            + self.malformed
            + self.invalid_id
            + self.oversized.len() as u64
    }
}

/// Sizes a relay's messages may have.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WireLimits {
    /// Largest WebSocket message.
    pub(crate) max_message: usize,
    /// Largest WebSocket frame.
    pub(crate) max_frame: usize,
    /// Largest event, as JSON.
    pub(crate) max_event: usize,
    /// Bytes of one answer read before it is cut short.
    pub(crate) answer_bytes: usize,
}

/// When a request must end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Until `EOSE`.
    pub(crate) request: Duration,
    /// Between two messages.
    pub(crate) idle: Duration,
    /// The end of the relay's time in this cycle.
    pub(crate) deadline: Instant,
}

/// How the connection authenticates when a relay asks (NIP-42).
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    /// The archiver's keys.
    pub(crate) keys: Arc<Keys>,
    /// Whether to authenticate at all (not when the relay refused recently).
    pub(crate) allowed: bool,
}

/// One WebSocket connection to a relay.
pub(crate) struct RelayConnection {
    socket: WebSocket,
    url: RelayUrl,
    /// A subscription to close, sent together with the next `REQ`: two
    /// small writes in a row would wait for the relay's delayed
    /// acknowledgement of the first (Nagle's algorithm), tens of
    /// milliseconds per window.
    to_close: Option<SubscriptionId>,
    /// The latest NIP-42 challenge of the relay.
    challenge: Option<String>,
    auth: Option<Auth>,
    authenticated: bool,
    /// Whether the relay refused the authentication on this connection.
    pub(crate) auth_refused: bool,
    /// `REQ`s sent (repeats after authenticating included).
    pub(crate) requests: u64,
    /// Bytes of the text messages received.
    pub(crate) bytes_received: u64,
    wire: WireLimits,
}

/// The next message read, or why there is none.
enum Next {
    Text(String),
    Timeout(FetchError),
}

impl RelayConnection {
    /// Opens a connection to `url` within `timeout`, through the SOCKS5
    /// `proxy` when given (`.onion` relays), otherwise to an address
    /// `egress` allows; reads messages within `wire` and authenticates with
    /// `auth` when the relay asks.
    pub(crate) async fn open(
        url: &str,
        proxy: Option<SocketAddr>,
        egress: &Egress,
        timeout: Duration,
        wire: WireLimits,
        auth: Option<Auth>,
    ) -> Result<Self, FetchError> {
        let connect_error = |error: &dyn std::fmt::Display| FetchError::Connect(error.to_string());
        let relay_url = RelayUrl::parse(url).map_err(|error| connect_error(&error))?;
        let parsed = Url::parse(url).map_err(|error| connect_error(&error))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| FetchError::Connect("the URL has no host".to_owned()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| FetchError::Connect("the URL has no port".to_owned()))?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(wire.max_message))
            .max_frame_size(Some(wire.max_frame));
        let connect = async {
            let Some(proxy) = proxy else {
                // Resolved once and checked: the connection goes to an
                // address the policy allows, never to a second resolution.
                return connect_websocket_with(egress, &parsed, timeout, Some(config))
                    .await
                    .map_err(|error| match error {
                        RuntimeError::Egress { source } => match source.egress_denied() {
                            Some(denied) => FetchError::Denied(denied.to_string()),
                            None => connect_error(&source),
                        },
                        error => connect_error(&error),
                    });
            };
            let stream = Socks5Stream::connect(proxy, (host.as_str(), port))
                .await
                .map_err(|error| connect_error(&error))?
                .into_inner();
            let _ = stream.set_nodelay(true);
            let (socket, _) =
                client_async_tls_with_config(parsed.as_str(), stream, Some(config), None)
                    .await
                    .map_err(|error| connect_error(&error))?;
            Ok::<_, FetchError>(WebSocket::Tokio(socket))
        };
        // One bound for the TCP, SOCKS5, TLS and WebSocket handshakes.
        match tokio::time::timeout(timeout, Box::pin(connect)).await {
            Ok(Ok(socket)) => Ok(Self {
                socket,
                url: relay_url,
                to_close: None,
                challenge: None,
                auth,
                authenticated: false,
                auth_refused: false,
                requests: 0,
                bytes_received: 0,
                wire,
            }),
            Ok(Err(error)) => Err(error),
            Err(_elapsed) => Err(FetchError::Connect(format!(
                "not connected within {} ms",
                timeout.as_millis()
            ))),
        }
    }

    /// How the connection authenticates, for a new one to the same relay.
    pub(crate) fn auth(&self) -> Option<Auth> {
        self.auth.clone()
    }

    /// Sends one `REQ` with `filter` and reads its answer until `EOSE`,
    /// `limit` events, or a failure. Each event is checked with `check`;
    /// the ones that do not answer the request are counted and dropped. At
    /// most `limit` events are held. When the relay closes the request with
    /// `auth-required:`, the connection authenticates (once) and repeats it.
    pub(crate) async fn request(
        &mut self,
        filter: &Filter,
        check: &(dyn Fn(&Event) -> Result<(), Mismatch> + Sync),
        limit: usize,
        limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<Fetched, FetchError> {
        let started = Instant::now();
        let request_deadline = (started + limits.request).min(limits.deadline);
        let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
        'request: loop {
            let id = SubscriptionId::generate();
            let req = ClientMessage::req(id.clone(), vec![filter.clone()]);
            self.send_after_close(req.as_json()).await?;
            self.requests += 1;
            let mut fetched = Fetched::default();
            // Keyed by id and signature: a forged copy (same id, another
            // signature) must not make the real event a repeat.
            let mut seen: HashSet<(EventId, Signature)> = HashSet::new();
            let mut bytes = 0usize;
            loop {
                let text = match self.next(request_deadline, limits, cancel).await? {
                    Next::Text(text) => text,
                    Next::Timeout(error) => return Err(error),
                };
                match parse(&text, &id) {
                    Parsed::Event(event) => {
                        // Only this subscription's events count: those of
                        // one cut short may still be on their way.
                        bytes += text.len();
                        fetched.received += 1;
                        if text.len() > self.wire.max_event {
                            fetched.oversized.push((
                                event.id,
                                crate::filter::created_at(&event),
                                text.len(),
                            ));
                        } else if !event.verify_id() {
                            fetched.invalid_id += 1;
                        } else if !seen.insert((event.id, event.sig)) {
                            fetched.repeated += 1;
                        } else {
                            match check(&event) {
                                Ok(()) => fetched.events.push(*event),
                                Err(Mismatch::OutsideWindow) => fetched.outside_window += 1,
                                Err(Mismatch::Filter) => fetched.filter_mismatch += 1,
                            }
                        }
                    }
                    Parsed::Malformed => {
                        fetched.received += 1;
                        fetched.malformed += 1;
                    }
                    Parsed::Eose => {
                        self.to_close = Some(id);
                        return Ok(fetched);
                    }
                    Parsed::Closed(reason) if reason.starts_with(AUTH_REQUIRED) => {
                        if self.authenticate(request_deadline, limits, cancel).await? {
                            continue 'request;
                        }
                        return Err(if self.auth_refused {
                            FetchError::AuthRefused(reason)
                        } else {
                            FetchError::AuthRequired(reason)
                        });
                    }
                    Parsed::Closed(reason) => return Err(FetchError::Closed(reason)),
                    Parsed::Challenge(challenge) => self.challenge = Some(challenge),
                    Parsed::Other => continue,
                }
                if fetched.received >= limit_u64 || bytes >= self.wire.answer_bytes {
                    // The answer is full, or holds as many bytes as one
                    // answer may: what follows is not needed now, and a
                    // relay streaming without end is stopped here (its late
                    // events carry this subscription's id and are ignored).
                    fetched.truncated = fetched.received < limit_u64;
                    self.to_close = Some(id);
                    return Ok(fetched);
                }
            }
        }
    }

    /// Reconciles `filter` (NIP-77) against `local`, the `(created_at, id)`
    /// of the events the archive holds from this relay for it, and returns
    /// the ids the relay holds and the archive does not.
    pub(crate) async fn reconcile(
        &mut self,
        filter: &Filter,
        local: &[(i64, EventId)],
        limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<Vec<EventId>, ReconcileError> {
        let unsupported = |what: &str| ReconcileError::Unsupported(what.to_owned());
        let mut storage = NegentropyStorageVector::with_capacity(local.len());
        for (created_at, id) in local {
            storage
                .insert(
                    u64::try_from(*created_at).unwrap_or(0),
                    Id::from_byte_array(id.to_bytes()),
                )
                .map_err(|error| unsupported(&error.to_string()))?;
        }
        storage
            .seal()
            .map_err(|error| unsupported(&error.to_string()))?;
        let mut negentropy = Negentropy::owned(storage, NEGENTROPY_FRAME_LIMIT)
            .map_err(|error| unsupported(&error.to_string()))?;
        let initial = negentropy
            .initiate()
            .map_err(|error| unsupported(&error.to_string()))?;
        let id = SubscriptionId::generate();
        let open = ClientMessage::neg_open(id.clone(), filter.clone(), hex::encode(initial));
        self.send_after_close(open.as_json())
            .await
            .map_err(ReconcileError::Fetch)?;
        let mut need: Vec<Id> = Vec::new();
        let mut have: Vec<Id> = Vec::new();
        loop {
            // Every round is bounded by the request timeout of its own.
            let deadline = (Instant::now() + limits.request).min(limits.deadline);
            let text = match self.next(deadline, limits, cancel).await {
                Ok(Next::Text(text)) => text,
                Ok(Next::Timeout(FetchError::TotalTimeout)) => {
                    return Err(ReconcileError::Fetch(FetchError::TotalTimeout))
                }
                Ok(Next::Timeout(_)) => return Err(unsupported("no answer to NEG-OPEN")),
                Err(error) => return Err(ReconcileError::Fetch(error)),
            };
            let message = match RelayMessage::from_json(&text) {
                Ok(message) => message,
                Err(_) => continue,
            };
            match message {
                RelayMessage::NegMsg {
                    subscription_id,
                    message,
                } if *subscription_id == id => {
                    let bytes =
                        hex::decode(message.as_ref()).map_err(|_| unsupported("bad NEG-MSG"))?;
                    have.clear();
                    let next = negentropy
                        .reconcile_with_ids(&bytes, &mut have, &mut need)
                        .map_err(|error| unsupported(&format!("bad NEG-MSG: {error}")))?;
                    match next {
                        Some(next) => {
                            let reply = ClientMessage::NegMsg {
                                subscription_id: std::borrow::Cow::Borrowed(&id),
                                message: std::borrow::Cow::Owned(hex::encode(next)),
                            };
                            self.send(reply.as_json())
                                .await
                                .map_err(ReconcileError::Fetch)?;
                        }
                        None => {
                            let close = ClientMessage::NegClose {
                                subscription_id: std::borrow::Cow::Borrowed(&id),
                            };
                            self.send(close.as_json())
                                .await
                                .map_err(ReconcileError::Fetch)?;
                            return Ok(need
                                .into_iter()
                                .map(|id| EventId::from_byte_array(id.to_bytes()))
                                .collect());
                        }
                    }
                }
                RelayMessage::NegErr {
                    subscription_id,
                    message,
                } if *subscription_id == id => {
                    // Authenticating succeeds once per connection, so this
                    // repeats the reconciliation at most once.
                    if message.starts_with(AUTH_REQUIRED)
                        && self
                            .authenticate(deadline, limits, cancel)
                            .await
                            .map_err(ReconcileError::Fetch)?
                    {
                        return Box::pin(self.reconcile(filter, local, limits, cancel)).await;
                    }
                    return Err(ReconcileError::Unsupported(format!(
                        "NEG-ERR: {}",
                        bounded(&message)
                    )));
                }
                RelayMessage::Closed {
                    subscription_id,
                    message,
                } if *subscription_id == id => {
                    return Err(ReconcileError::Unsupported(format!(
                        "CLOSED: {}",
                        bounded(&message)
                    )));
                }
                RelayMessage::Notice(notice) => {
                    return Err(ReconcileError::Unsupported(format!(
                        "NOTICE: {}",
                        bounded(&notice)
                    )));
                }
                RelayMessage::Auth { challenge } => {
                    self.challenge = Some(challenge.into_owned());
                }
                _ => {}
            }
        }
    }

    /// Authenticates with the archiver's keys to the latest challenge, and
    /// waits for the relay's `OK`. Returns whether it succeeded; `false`
    /// without trying when authenticating is off, already done, or there is
    /// no challenge.
    async fn authenticate(
        &mut self,
        deadline: Instant,
        limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<bool, FetchError> {
        let Some(auth) = self.auth.clone().filter(|auth| auth.allowed) else {
            return Ok(false);
        };
        if self.authenticated || self.auth_refused {
            return Ok(false);
        }
        // A relay sends its challenge on connecting or right before its
        // `CLOSED`; wait a moment for one still on its way.
        while self.challenge.is_none() {
            let wait = (Instant::now() + limits.idle.min(Duration::from_secs(2))).min(deadline);
            match self.next(wait, limits, cancel).await? {
                Next::Text(text) => {
                    if let Ok(RelayMessage::Auth { challenge }) = RelayMessage::from_json(&text) {
                        self.challenge = Some(challenge.into_owned());
                    }
                }
                Next::Timeout(_) => return Ok(false),
            }
        }
        let challenge = self.challenge.clone().unwrap_or_default();
        let event = EventBuilder::auth(challenge, self.url.clone())
            .sign_with_keys(&auth.keys)
            .map_err(|error| FetchError::AuthRefused(format!("cannot sign: {error}")))?;
        let event_id = event.id;
        self.send(ClientMessage::auth(event).as_json()).await?;
        loop {
            let text = match self.next(deadline, limits, cancel).await? {
                Next::Text(text) => text,
                Next::Timeout(error) => return Err(error),
            };
            match RelayMessage::from_json(&text) {
                Ok(RelayMessage::Ok {
                    event_id: id,
                    status,
                    message,
                }) if id == event_id => {
                    if status {
                        self.authenticated = true;
                        return Ok(true);
                    }
                    tracing::debug!(
                        target: crate::worker::TARGET,
                        url = %self.url,
                        reason = %bounded(&message),
                        "the relay refused the authentication"
                    );
                    self.auth_refused = true;
                    return Ok(false);
                }
                Ok(RelayMessage::Auth { challenge }) => {
                    self.challenge = Some(challenge.into_owned());
                }
                _ => {}
            }
        }
    }

    /// The next text message, within `deadline` and the idle timeout.
    async fn next(
        &mut self,
        deadline: Instant,
        limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<Next, FetchError> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(Next::Timeout(if deadline >= limits.deadline {
                    FetchError::TotalTimeout
                } else {
                    FetchError::RequestTimeout
                }));
            }
            let idle_deadline = now + limits.idle;
            let wait_until = idle_deadline.min(deadline);
            let next = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(FetchError::Cancelled),
                next = tokio::time::timeout_at(wait_until, self.socket.next()) => next,
            };
            let message = match next {
                Err(_elapsed) if wait_until == idle_deadline && idle_deadline < deadline => {
                    return Ok(Next::Timeout(FetchError::IdleTimeout))
                }
                Err(_elapsed) => continue,
                Ok(None) => return Err(FetchError::Disconnected("the connection closed".into())),
                Ok(Some(Err(async_wsocket::Error::Ws(WsError::Capacity(error))))) => {
                    return Err(FetchError::MessageTooLarge(error.to_string()))
                }
                Ok(Some(Err(error))) => return Err(FetchError::Disconnected(error.to_string())),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    self.bytes_received += text.len() as u64;
                    return Ok(Next::Text(text.to_string()));
                }
                Message::Close(frame) => {
                    return Err(FetchError::Disconnected(match frame {
                        Some(frame) => format!("closed by the relay: {}", bounded(&frame.reason)),
                        None => "closed by the relay".to_owned(),
                    }))
                }
                // Pings are answered by the WebSocket layer; binary frames
                // are not NIP-01.
                _ => continue,
            }
        }
    }

    /// Closes the connection, without waiting long for a relay that hangs.
    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.socket.close()).await;
    }

    /// Sends `text`, with the `CLOSE` of the previous subscription first.
    async fn send_after_close(&mut self, text: String) -> Result<(), FetchError> {
        if let Some(previous) = self.to_close.take() {
            self.socket
                .feed(Message::Text(ClientMessage::close(previous).as_json()))
                .await
                .map_err(|error| FetchError::Disconnected(error.to_string()))?;
        }
        self.send(text).await
    }

    async fn send(&mut self, text: String) -> Result<(), FetchError> {
        self.socket
            .send(Message::Text(text))
            .await
            .map_err(|error| FetchError::Disconnected(error.to_string()))
    }
}

/// Text the relay controls, cut to a bound before it is logged or stored.
fn bounded(text: &str) -> String {
    bigbrotr_utils::bounded_text(text, bigbrotr_utils::REMOTE_TEXT_MAX_BYTES).into_owned()
}

/// A relay message, as far as the current subscription cares.
enum Parsed {
    Event(Box<Event>),
    Malformed,
    Eose,
    Closed(String),
    Challenge(String),
    Other,
}

/// Reads `text` as a relay message about the subscription `id`.
fn parse(text: &str, id: &SubscriptionId) -> Parsed {
    match RelayMessage::from_json(text) {
        Ok(RelayMessage::Event {
            subscription_id,
            event,
        }) if *subscription_id == *id => Parsed::Event(Box::new(event.into_owned())),
        Ok(RelayMessage::EndOfStoredEvents(subscription_id)) if *subscription_id == *id => {
            Parsed::Eose
        }
        Ok(RelayMessage::Closed {
            subscription_id,
            message,
        }) if *subscription_id == *id => Parsed::Closed(bounded(&message)),
        Ok(RelayMessage::Auth { challenge }) => Parsed::Challenge(challenge.into_owned()),
        Ok(_) => Parsed::Other,
        Err(_) => {
            // Not a message the library reads: an `EVENT` of this
            // subscription whose event is malformed still counts.
            match serde_json::from_str::<(String, String, serde::de::IgnoredAny)>(text) {
                Ok((kind, subscription_id, _))
                    if kind == "EVENT" && subscription_id == id.as_str() =>
                {
                    Parsed::Malformed
                }
                _ => Parsed::Other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_other_subscriptions_are_ignored_and_broken_events_counted() {
        let id = SubscriptionId::new("w1");
        assert!(matches!(parse(r#"["EOSE","w1"]"#, &id), Parsed::Eose));
        assert!(matches!(parse(r#"["EOSE","w0"]"#, &id), Parsed::Other));
        assert!(matches!(
            parse(r#"["CLOSED","w1","error: no"]"#, &id),
            Parsed::Closed(reason) if reason == "error: no"
        ));
        assert!(matches!(
            parse(r#"["AUTH","abc"]"#, &id),
            Parsed::Challenge(challenge) if challenge == "abc"
        ));
        assert!(matches!(parse(r#"["NOTICE","hello"]"#, &id), Parsed::Other));
        assert!(matches!(
            parse(r#"["EVENT","w1",{"id":"zz"}]"#, &id),
            Parsed::Malformed
        ));
        assert!(matches!(
            parse(r#"["EVENT","w0",{"id":"zz"}]"#, &id),
            Parsed::Other
        ));
        assert!(matches!(parse("not json", &id), Parsed::Other));
    }
}
