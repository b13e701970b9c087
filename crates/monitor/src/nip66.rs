//! The NIP-66 checks over one WebSocket connection: open, read and write,
//! each timed, with NIP-42 authentication answered and NIP-13 proof of work
//! mined when the relay asks for them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bigbrotr_service_runtime::{Egress, EgressTransport};
use nostr::message::MachineReadablePrefix;
use nostr::{
    ClientMessage, Event, EventBuilder, EventId, Filter, Keys, Kind, RelayMessage, RelayUrl,
    SubscriptionId, Tag, Timestamp,
};
use nostr_sdk::prelude::{ConnectionMode, Relay, RelayNotification, RelayOptions, RelayStatus};
use nostr_sdk::{Client, ClientOptions};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// The kind of the event the write check publishes: NIP-78 application
/// data, addressable, so each check replaces the previous one on the relay.
pub const WRITE_CHECK_KIND: u16 = 30078;

/// The `d` tag of the write check's event.
pub const WRITE_CHECK_IDENTIFIER: &str = "bigbrotr-monitor-write-check";

/// How long after its creation the write check's event expires (NIP-40),
/// so relays may drop it.
pub(crate) const WRITE_CHECK_EXPIRATION: Duration = Duration::from_secs(3600);

/// The outcome of one timed probe (read or write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Whether the probe succeeded.
    pub ok: bool,
    /// Its round-trip time in milliseconds, when it succeeded.
    pub rtt_ms: Option<u64>,
    /// Why it failed, when it did: the relay's own message (`CLOSED` or
    /// `OK` false) when it gave one.
    pub error: Option<String>,
}

impl Probe {
    fn success(rtt_ms: u64) -> Self {
        Self {
            ok: true,
            rtt_ms: Some(rtt_ms),
            error: None,
        }
    }

    fn failure(reason: impl Into<String>) -> Self {
        Self {
            ok: false,
            rtt_ms: None,
            error: Some(reason.into()),
        }
    }
}

/// Nonces tried between two looks at the deadline and the cancellation
/// while mining: a few milliseconds of work.
const NONCES_PER_CHUNK: u128 = 4096;

/// The event the write check publishes, signed by `keys`, created at
/// `created_at`, with NIP-13 proof of work of `difficulty` bits when not 0.
///
/// Mining is CPU work that may not end for a high difficulty (each bit
/// doubles it), so it stops with [`Error::PowTimeout`] once `budget` has
/// passed since it began and with [`Error::PowCancelled`] once `cancel` fires, both looked at between
/// chunks of a few thousand nonces. It blocks the thread: run it on the
/// blocking pool (`tokio::task::spawn_blocking`) for any difficulty above a
/// few bits.
pub fn write_check_event(
    keys: &Keys,
    created_at: Timestamp,
    difficulty: u8,
    budget: std::time::Duration,
    cancel: &CancellationToken,
) -> Result<Event> {
    let expiration = Timestamp::from_secs(
        created_at
            .as_secs()
            .saturating_add(WRITE_CHECK_EXPIRATION.as_secs()),
    );
    let builder = EventBuilder::new(
        Kind::Custom(WRITE_CHECK_KIND),
        "BigBrotr monitor write check",
    )
    .tag(Tag::identifier(WRITE_CHECK_IDENTIFIER))
    .tag(Tag::expiration(expiration))
    .custom_created_at(created_at);
    let sign_error = |source| Error::Sign {
        what: "write check",
        source,
    };
    if difficulty == 0 {
        return builder.sign_with_keys(keys).map_err(sign_error);
    }
    let mut unsigned = builder.build(keys.public_key());
    let deadline = std::time::Instant::now() + budget;
    let mut nonce: u128 = 0;
    loop {
        if cancel.is_cancelled() {
            return Err(Error::PowCancelled { difficulty });
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::PowTimeout {
                difficulty,
                within: budget,
            });
        }
        for _ in 0..NONCES_PER_CHUNK {
            nonce += 1;
            unsigned.tags.push(Tag::pow(nonce, difficulty));
            let id = EventId::new(
                &unsigned.pubkey,
                &unsigned.created_at,
                &unsigned.kind,
                &unsigned.tags,
                &unsigned.content,
            );
            if id.check_pow(difficulty) {
                unsigned.id = Some(id);
                return unsigned
                    .sign_with_keys(keys)
                    .map_err(|error| sign_error(error.into()));
            }
            unsigned.tags.pop();
        }
    }
}

/// How a `REQ` was answered.
enum Answer {
    Event(Box<Event>),
    Eose,
    Closed(String),
    Failed(String),
}

/// What the relay said about authentication during the session.
#[derive(Debug, Default)]
struct AuthState {
    challenged: AtomicBool,
    authenticated: AtomicBool,
    failed: AtomicBool,
}

/// One open WebSocket connection to a relay, through a client of its own
/// that signs with the monitor's key and answers AUTH challenges.
pub(crate) struct Session {
    client: Client,
    relay: Relay,
    auth: Arc<AuthState>,
    watcher: JoinHandle<()>,
    /// Round-trip time of the opening, in milliseconds.
    pub(crate) rtt_open: u64,
}

impl Session {
    /// Opens a connection to `url` within `timeout`, through the SOCKS5
    /// `proxy` when given, else through the egress policy (the address
    /// resolved once, checked, and the only one connected to).
    pub(crate) async fn open(
        url: &RelayUrl,
        keys: &Keys,
        proxy: Option<SocketAddr>,
        timeout: Duration,
        egress: &Egress,
    ) -> Result<Self, String> {
        let client = Client::builder()
            .signer(keys.clone())
            .opts(ClientOptions::new().automatic_authentication(true))
            .websocket_transport(EgressTransport::new(egress.clone()))
            .build();
        let mut opts = RelayOptions::new().reconnect(false).ping(false);
        if let Some(proxy) = proxy {
            opts = opts.connection_mode(ConnectionMode::Proxy(proxy));
        }
        let relay = match client.pool().add_relay(url.clone(), opts).await {
            Ok(_) => client.pool().relay(url.clone()).await,
            Err(error) => Err(error),
        };
        let relay = match relay {
            Ok(relay) => relay,
            Err(error) => {
                shutdown(&client).await;
                return Err(error.to_string());
            }
        };
        let auth = Arc::new(AuthState::default());
        let watcher = tokio::spawn(watch_auth(relay.notifications(), Arc::clone(&auth)));
        let session = Self {
            client,
            relay,
            auth,
            watcher,
            rtt_open: 0,
        };
        let started = Instant::now();
        let connected = tokio::time::timeout(timeout, session.relay.try_connect(timeout)).await;
        let rtt_open = millis(started.elapsed());
        match connected {
            Ok(Ok(())) => Ok(Self {
                rtt_open,
                ..session
            }),
            // The library reports its own timeout in several ways (`timeout`
            // from the transport, say): the clock tells which it was.
            Ok(Err(_)) | Err(_) if started.elapsed() >= timeout => {
                session.close().await;
                Err(format!("not connected within {} ms", timeout.as_millis()))
            }
            Ok(Err(error)) => {
                session.close().await;
                Err(error.to_string())
            }
            Err(_elapsed) => {
                session.close().await;
                Err(format!("not connected within {} ms", timeout.as_millis()))
            }
        }
    }

    /// The read check: a `REQ` for one event, answered by `EVENT` or `EOSE`
    /// within `timeout`.
    pub(crate) async fn read(&self, timeout: Duration) -> Probe {
        let started = Instant::now();
        match self.request(Filter::new().limit(1), timeout).await {
            Answer::Event(_) | Answer::Eose => Probe::success(millis(started.elapsed())),
            Answer::Closed(reason) => Probe::failure(format!("closed: {reason}")),
            Answer::Failed(reason) => Probe::failure(reason),
        }
    }

    /// The write check: publishes `event` and waits for its `OK` within
    /// `write_timeout`, then reads it back by id within `read_timeout`, to
    /// prove the relay stored it.
    pub(crate) async fn write(
        &self,
        event: &Event,
        write_timeout: Duration,
        read_timeout: Duration,
    ) -> Probe {
        let started = Instant::now();
        match tokio::time::timeout(write_timeout, self.relay.send_event(event)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Probe::failure(format!("rejected: {error}")),
            Err(_elapsed) => {
                return Probe::failure(format!("no OK within {} ms", write_timeout.as_millis()))
            }
        }
        let rtt_ms = millis(started.elapsed());
        match self.request(Filter::new().id(event.id), read_timeout).await {
            Answer::Event(found) if found.id == event.id => Probe::success(rtt_ms),
            Answer::Event(_) | Answer::Eose => {
                Probe::failure("accepted, but not returned when read back")
            }
            Answer::Closed(reason) => Probe::failure(format!("read back closed: {reason}")),
            Answer::Failed(reason) => Probe::failure(format!("read back failed: {reason}")),
        }
    }

    /// Whether the relay asked to authenticate (NIP-42), and whether that
    /// succeeded: `None` when it never asked.
    pub(crate) fn auth(&self) -> Option<bool> {
        if !self.auth.challenged.load(Ordering::SeqCst) {
            return None;
        }
        Some(
            self.auth.authenticated.load(Ordering::SeqCst)
                && !self.auth.failed.load(Ordering::SeqCst),
        )
    }

    /// Closes the connection and stops the client's tasks.
    pub(crate) async fn close(self) {
        self.watcher.abort();
        shutdown(&self.client).await;
    }

    /// Sends a `REQ` for `filter` and waits, at most `timeout`, for its
    /// first answer. A `CLOSED` asking for authentication is retried once
    /// the client has authenticated (which it does on its own).
    async fn request(&self, filter: Filter, timeout: Duration) -> Answer {
        let mut notifications = self.relay.notifications();
        let id = SubscriptionId::generate();
        let req = || ClientMessage::req(id.clone(), vec![filter.clone()]);
        if let Err(error) = self.relay.send_msg(req()) {
            return Answer::Failed(error.to_string());
        }
        let mut awaiting_auth = false;
        let mut retried = false;
        let answer =
            tokio::time::timeout(timeout, async {
                loop {
                    let notification = match notifications.recv().await {
                        Ok(notification) => notification,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            return Answer::Failed("the connection closed".to_owned())
                        }
                    };
                    match notification {
                        RelayNotification::Message { message } => match message {
                            RelayMessage::Event {
                                subscription_id,
                                event,
                            } if *subscription_id == id => {
                                return Answer::Event(Box::new(event.into_owned()))
                            }
                            RelayMessage::EndOfStoredEvents(subscription_id)
                                if *subscription_id == id =>
                            {
                                return Answer::Eose
                            }
                            RelayMessage::Closed {
                                subscription_id,
                                message,
                            } if *subscription_id == id => {
                                let auth_required = matches!(
                                    MachineReadablePrefix::parse(&message),
                                    Some(MachineReadablePrefix::AuthRequired)
                                );
                                if !auth_required || retried {
                                    return Answer::Closed(message.into_owned());
                                }
                                if self.auth.authenticated.load(Ordering::SeqCst) {
                                    retried = true;
                                    if let Err(error) = self.relay.send_msg(req()) {
                                        return Answer::Failed(error.to_string());
                                    }
                                } else {
                                    awaiting_auth = true;
                                }
                            }
                            _ => {}
                        },
                        RelayNotification::Authenticated if awaiting_auth && !retried => {
                            retried = true;
                            awaiting_auth = false;
                            if let Err(error) = self.relay.send_msg(req()) {
                                return Answer::Failed(error.to_string());
                            }
                        }
                        RelayNotification::AuthenticationFailed if awaiting_auth => {
                            return Answer::Closed(
                                "auth-required: authentication failed".to_owned(),
                            )
                        }
                        RelayNotification::RelayStatus {
                            status:
                                RelayStatus::Disconnected
                                | RelayStatus::Terminated
                                | RelayStatus::Banned,
                        }
                        | RelayNotification::Shutdown => {
                            return Answer::Failed("the connection closed".to_owned())
                        }
                        _ => {}
                    }
                }
            })
            .await;
        let answer = answer.unwrap_or_else(|_elapsed| {
            Answer::Failed(format!("no answer within {} ms", timeout.as_millis()))
        });
        if !matches!(answer, Answer::Closed(_)) {
            // Best effort: the relay may be gone already.
            let _ = self.relay.send_msg(ClientMessage::close(id));
        }
        answer
    }
}

/// Records what the relay says about authentication.
async fn watch_auth(
    mut notifications: tokio::sync::broadcast::Receiver<RelayNotification>,
    auth: Arc<AuthState>,
) {
    loop {
        match notifications.recv().await {
            Ok(RelayNotification::Message {
                message: RelayMessage::Auth { .. },
            }) => auth.challenged.store(true, Ordering::SeqCst),
            Ok(RelayNotification::Authenticated) => {
                auth.authenticated.store(true, Ordering::SeqCst);
            }
            Ok(RelayNotification::AuthenticationFailed) => {
                auth.failed.store(true, Ordering::SeqCst);
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// Shuts `client` down, without waiting long for a relay that hangs.
async fn shutdown(client: &Client) {
    let _ = tokio::time::timeout(Duration::from_secs(2), client.shutdown()).await;
}

/// `duration` in whole milliseconds.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> Duration {
        Duration::from_secs(3600)
    }

    #[test]
    fn the_write_event_has_proof_of_work_when_asked() {
        let keys = Keys::generate();
        let created_at = Timestamp::from_secs(1_700_000_000);
        let event =
            write_check_event(&keys, created_at, 12, far(), &CancellationToken::new()).unwrap();
        assert!(event.id.check_pow(12), "{}", event.id);
        assert!(event.tags.iter().any(|tag| tag.as_slice()[0] == "nonce"
            && tag.as_slice().get(2).map(String::as_str) == Some("12")));
        assert_eq!(event.created_at, created_at);
        event.verify().unwrap();
    }

    #[test]
    fn mining_stops_at_the_deadline() {
        let keys = Keys::generate();
        let started = std::time::Instant::now();
        let error = write_check_event(
            &keys,
            Timestamp::now(),
            40,
            Duration::from_millis(200),
            &CancellationToken::new(),
        )
        .unwrap_err();
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        match error {
            Error::PowTimeout { difficulty, within } => {
                assert_eq!(difficulty, 40);
                assert_eq!(within, Duration::from_millis(200));
                assert!(elapsed >= within, "{elapsed:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn mining_stops_once_cancelled_and_frees_its_thread() {
        let keys = Keys::generate();
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let mining = tokio::task::spawn_blocking(move || {
            write_check_event(&keys, Timestamp::now(), 40, far(), &stop)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
        let result = tokio::time::timeout(Duration::from_secs(2), mining)
            .await
            .expect("the thread is freed soon after the cancellation")
            .expect("no panic");
        let error = result.unwrap_err();
        assert!(
            matches!(error, Error::PowCancelled { difficulty: 40 }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "proof of work of difficulty 40 not mined: the check was abandoned"
        );
    }

    #[test]
    fn the_write_event_is_addressable_expiring_and_has_no_nonce_without_pow() {
        let keys = Keys::generate();
        let created_at = Timestamp::from_secs(1_700_000_000);
        let event =
            write_check_event(&keys, created_at, 0, far(), &CancellationToken::new()).unwrap();
        assert_eq!(event.kind, Kind::Custom(30078));
        assert_eq!(event.pubkey, keys.public_key());
        assert_eq!(event.created_at, created_at);
        let tags: Vec<Vec<String>> = event.tags.iter().map(|t| t.as_slice().to_vec()).collect();
        assert_eq!(
            tags,
            [
                vec!["d".to_owned(), WRITE_CHECK_IDENTIFIER.to_owned()],
                vec!["expiration".to_owned(), "1700003600".to_owned()],
            ]
        );
    }
}
