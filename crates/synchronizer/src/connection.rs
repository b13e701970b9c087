//! `RelayConnection`: one WebSocket connection to a relay, and the `REQ`
//! loop that fetches one window of events until its `EOSE`.
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
use std::time::Duration;

use async_wsocket::futures_util::{SinkExt, StreamExt};
use async_wsocket::{ConnectionMode, Message, Url, WebSocket};
use nostr::{ClientMessage, Event, EventId, JsonUtil, RelayMessage, SubscriptionId};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::filter::{Mismatch, SyncFilter};

/// Why a window could not be fetched: the relay is left for this cycle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The connection could not be opened.
    #[error("could not connect: {0}")]
    Connect(String),
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
    /// The connection broke or was closed.
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// The cycle was cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// What one `REQ` brought back.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    /// The events that answer the request, each once, in arrival order.
    pub(crate) events: Vec<Event>,
    /// `EVENT` messages of the subscription, rejected ones included.
    pub(crate) received: u64,
    /// Whether the relay sent `EOSE` before `limit` events: the window is
    /// complete.
    pub(crate) complete: bool,
    /// Events outside the window asked for.
    pub(crate) outside_window: u64,
    /// Events not matching the filter.
    pub(crate) filter_mismatch: u64,
    /// Events sent twice in the subscription.
    pub(crate) repeated: u64,
    /// `EVENT` messages of the subscription that are not events.
    pub(crate) malformed: u64,
}

impl Fetched {
    /// Events refused before validation.
    pub(crate) fn refused(&self) -> u64 {
        self.outside_window + self.filter_mismatch + self.repeated + self.malformed
    }
}

/// When a `REQ` must end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Until `EOSE`.
    pub(crate) request: Duration,
    /// Between two messages.
    pub(crate) idle: Duration,
    /// The end of the relay's time in this cycle.
    pub(crate) deadline: Instant,
}

/// One WebSocket connection to a relay.
pub(crate) struct RelayConnection {
    socket: WebSocket,
    /// A subscription to close, sent together with the next `REQ`: two
    /// small writes in a row would wait for the relay's delayed
    /// acknowledgement of the first (Nagle's algorithm), tens of
    /// milliseconds per window.
    to_close: Option<SubscriptionId>,
}

impl RelayConnection {
    /// Opens a connection to `url` within `timeout`, through the SOCKS5
    /// `proxy` when given.
    pub(crate) async fn open(
        url: &str,
        proxy: Option<SocketAddr>,
        timeout: Duration,
    ) -> Result<Self, FetchError> {
        let url = Url::parse(url).map_err(|error| FetchError::Connect(error.to_string()))?;
        let mode = match proxy {
            Some(proxy) => ConnectionMode::proxy(proxy),
            None => ConnectionMode::direct(),
        };
        // The library bounds the WebSocket handshake only; the SOCKS5
        // handshake is bounded here.
        match tokio::time::timeout(timeout, WebSocket::connect(&url, &mode, timeout)).await {
            Ok(Ok(socket)) => Ok(Self {
                socket,
                to_close: None,
            }),
            Ok(Err(error)) => Err(FetchError::Connect(error.to_string())),
            Err(_elapsed) => Err(FetchError::Connect(format!(
                "not connected within {} ms",
                timeout.as_millis()
            ))),
        }
    }

    /// Sends one `REQ` for the window `since..=until` of `filter` with
    /// `limit`, and reads its answer until `EOSE`, `limit` events, or a
    /// failure. Events are checked against the request; the ones that do
    /// not answer it are counted and dropped. At most `limit` events are
    /// held.
    pub(crate) async fn fetch(
        &mut self,
        filter: &SyncFilter,
        since: i64,
        until: i64,
        limit: usize,
        limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<Fetched, FetchError> {
        let id = SubscriptionId::generate();
        let req = ClientMessage::req(id.clone(), vec![filter.window(since, until, limit)]);
        if let Some(previous) = self.to_close.take() {
            self.socket
                .feed(Message::Text(ClientMessage::close(previous).as_json()))
                .await
                .map_err(|error| FetchError::Disconnected(error.to_string()))?;
        }
        self.send(req.as_json()).await?;
        let started = Instant::now();
        let request_deadline = (started + limits.request).min(limits.deadline);
        let mut fetched = Fetched::default();
        let mut seen: HashSet<EventId> = HashSet::new();
        let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
        loop {
            let now = Instant::now();
            if now >= request_deadline {
                return Err(if request_deadline == limits.deadline {
                    FetchError::TotalTimeout
                } else {
                    FetchError::RequestTimeout
                });
            }
            let idle_deadline = now + limits.idle;
            let wait_until = idle_deadline.min(request_deadline);
            let next = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(FetchError::Cancelled),
                next = tokio::time::timeout_at(wait_until, self.socket.next()) => next,
            };
            let message = match next {
                Err(_elapsed)
                    if wait_until == idle_deadline && idle_deadline < request_deadline =>
                {
                    return Err(FetchError::IdleTimeout)
                }
                Err(_elapsed) => continue,
                Ok(None) => return Err(FetchError::Disconnected("the connection closed".into())),
                Ok(Some(Err(error))) => return Err(FetchError::Disconnected(error.to_string())),
                Ok(Some(Ok(message))) => message,
            };
            let text = match &message {
                Message::Text(text) => text.as_str(),
                Message::Close(frame) => {
                    return Err(FetchError::Disconnected(match frame {
                        Some(frame) => format!("closed by the relay: {}", frame.reason),
                        None => "closed by the relay".to_owned(),
                    }))
                }
                // Pings are answered by the WebSocket layer; binary frames
                // are not NIP-01.
                _ => continue,
            };
            match parse(text, &id) {
                Parsed::Event(event) => {
                    fetched.received += 1;
                    if !seen.insert(event.id) {
                        fetched.repeated += 1;
                    } else {
                        match filter.check(&event, since, until) {
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
                    fetched.complete = fetched.received < limit_u64;
                    self.to_close = Some(id);
                    return Ok(fetched);
                }
                Parsed::Closed(reason) => return Err(FetchError::Closed(reason)),
                Parsed::Other => continue,
            }
            if fetched.received >= limit_u64 {
                // The window is full: what follows is not needed, and a relay
                // streaming without end is stopped here (its late events
                // carry this subscription's id and are ignored).
                self.to_close = Some(id);
                return Ok(fetched);
            }
        }
    }

    /// Closes the connection, without waiting long for a relay that hangs.
    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.socket.close()).await;
    }

    async fn send(&mut self, text: String) -> Result<(), FetchError> {
        self.socket
            .send(Message::Text(text))
            .await
            .map_err(|error| FetchError::Disconnected(error.to_string()))
    }
}

/// A relay message, as far as the current subscription cares.
enum Parsed {
    Event(Box<Event>),
    Malformed,
    Eose,
    Closed(String),
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
        }) if *subscription_id == *id => Parsed::Closed(message.into_owned()),
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
