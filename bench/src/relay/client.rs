//! The clients: a number of WebSocket connections to one relay, each
//! sending a `REQ`, reading to its `EOSE`, sending `CLOSE`, then the next
//! `REQ`, until the list of requests is done. Each request's time from
//! sending the `REQ` to reading its `EOSE`, and its events, are kept.
//!
//! Messages are recognised by their start (`["EVENT","<id>",`,
//! `["EOSE","<id>"]`) rather than parsed, so that the client costs the
//! machine as little as it can: it shares the cores with the relays.
//!
//! The connections send without Nagle's algorithm and acknowledge what they
//! read at once (`TCP_QUICKACK`, set again after every read since Linux
//! drops it by itself). Neither relay sets `TCP_NODELAY`, so a relay's
//! second `EVENT` waits until the client acknowledges the first; a client
//! that delays its acknowledgements (Linux does by up to 40 ms) would then
//! measure that delay, the same for both relays, instead of the relays.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::{SinkExt as _, StreamExt as _};
use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Longest wait for one request's `EOSE`; past it the request failed and
/// its connection is opened again.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<QuickAck>;

/// What the requests of one run got.
#[derive(Debug)]
pub(super) struct Outcome {
    /// From the first `REQ` to the last `EOSE`.
    pub(super) elapsed: Duration,
    /// Each request's time to its `EOSE`, by its place in the list; `None`
    /// where it failed.
    pub(super) latencies: Vec<Option<Duration>>,
    /// Each request's events, by its place in the list.
    pub(super) events: Vec<u32>,
    /// Requests that failed, and the first reason.
    pub(super) failures: usize,
    pub(super) first_failure: Option<String>,
    /// From the first `REQ` to the last `EOSE` of an answered request.
    pub(super) answered_by: Duration,
}

impl Outcome {
    /// Answered requests per second, up to the last answer: a connection
    /// waiting out [`REQUEST_TIMEOUT`] for an `EOSE` that never comes does
    /// not stretch the time while the others carry on with the requests.
    pub(super) fn rate(&self) -> f64 {
        let answered = self.latencies.iter().flatten().count() as f64;
        answered / self.answered_by.as_secs_f64().max(1e-9)
    }
}

/// How one request ended.
enum Answer {
    /// Its `EOSE`, after this many events.
    Done(u32),
    /// A `CLOSED` or `NOTICE` instead, or nothing in time.
    Failed(String),
}

/// Sends `requests` (filters as JSON objects) to the relay at `url` over
/// `connections` connections at once.
pub(super) async fn run(
    url: &str,
    requests: Arc<Vec<String>>,
    connections: usize,
) -> anyhow::Result<Outcome> {
    let next = Arc::new(AtomicUsize::new(0));
    // Every connection opens before the clock starts.
    let mut sockets = Vec::with_capacity(connections);
    for _ in 0..connections {
        sockets.push(connect(url).await?);
    }
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for socket in sockets {
        let (url, requests, next) = (url.to_owned(), Arc::clone(&requests), Arc::clone(&next));
        tasks.spawn(async move {
            let mut socket = Some(socket);
            let mut done = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(filter) = requests.get(index) else {
                    break;
                };
                let mut ws = match socket.take() {
                    Some(ws) => ws,
                    None => connect(&url).await?,
                };
                let sent = Instant::now();
                let answer = tokio::time::timeout(REQUEST_TIMEOUT, request(&mut ws, index, filter))
                    .await
                    .unwrap_or_else(|_| Ok(Answer::Failed("no EOSE in time".to_owned())))?;
                let took = sent.elapsed();
                // A failed request leaves the connection in doubt: a new one.
                if matches!(answer, Answer::Done(_)) {
                    socket = Some(ws);
                }
                done.push((index, took, started.elapsed(), answer));
            }
            anyhow::Ok(done)
        });
    }
    let mut outcome = Outcome {
        elapsed: Duration::ZERO,
        latencies: vec![None; requests.len()],
        events: vec![0; requests.len()],
        failures: 0,
        first_failure: None,
        answered_by: Duration::ZERO,
    };
    while let Some(done) = tasks.join_next().await {
        for (index, took, at, answer) in done.context("a client task panicked")?? {
            match answer {
                Answer::Done(events) => {
                    outcome.answered_by = outcome.answered_by.max(at);
                    outcome.latencies[index] = Some(took);
                    outcome.events[index] = events;
                }
                Answer::Failed(reason) => {
                    outcome.failures += 1;
                    outcome.first_failure.get_or_insert(reason);
                }
            }
        }
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

/// A connection to `url` (`ws://<host>:<port>`).
async fn connect(url: &str) -> anyhow::Result<Socket> {
    let address = url
        .strip_prefix("ws://")
        .with_context(|| format!("{url} is not a ws:// URL"))?
        .trim_end_matches('/');
    let connecting = async {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (socket, _) = tokio_tungstenite::client_async(url, QuickAck(stream))
            .await
            .map_err(io::Error::other)?;
        io::Result::Ok(socket)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .with_context(|| format!("connecting to {url}: timed out"))?
        .with_context(|| format!("connecting to {url}"))
}

/// A TCP stream that acknowledges what it received as soon as it is read.
pub(super) struct QuickAck(TcpStream);

impl AsyncRead for QuickAck {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.0).poll_read(cx, buf);
        if polled.is_ready() {
            // Sends the acknowledgement Linux would have delayed; a failure
            // only costs that delay.
            let _ = SockRef::from(&this.0).set_tcp_quickack(true);
        }
        polled
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Request `index`: `REQ` with `filter`, its events to `EOSE`, `CLOSE`.
async fn request(ws: &mut Socket, index: usize, filter: &str) -> anyhow::Result<Answer> {
    let id = format!("b{index}");
    ws.send(Message::Text(format!(r#"["REQ","{id}",{filter}]"#).into()))
        .await
        .context("sending a REQ")?;
    let event_prefix = format!(r#"["EVENT","{id}","#);
    let eose = format!(r#"["EOSE","{id}"]"#);
    let mut events = 0;
    loop {
        let Some(message) = ws.next().await else {
            return Ok(Answer::Failed("the relay closed the connection".to_owned()));
        };
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) => {
                return Ok(Answer::Failed("the relay closed the connection".to_owned()))
            }
            Ok(_) => continue,
            Err(error) => return Ok(Answer::Failed(format!("WebSocket error: {error}"))),
        };
        let text = text.as_str();
        if text.starts_with(&event_prefix) {
            events += 1;
        } else if text.replace(' ', "") == eose {
            break;
        } else if text.starts_with(r#"["CLOSED""#) || text.starts_with(r#"["NOTICE""#) {
            return Ok(Answer::Failed(text.chars().take(200).collect()));
        }
    }
    ws.send(Message::Text(format!(r#"["CLOSE","{id}"]"#).into()))
        .await
        .context("sending a CLOSE")?;
    Ok(Answer::Done(events))
}

/// The `p`-th percentile (0 to 100) of `sorted`, nearest rank.
pub(super) fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&sorted, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&sorted, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(
            percentile(&sorted[..1], 90.0),
            Some(Duration::from_millis(1))
        );
        assert_eq!(percentile(&[], 50.0), None);
    }
}
