//! [`RelayServer`]: the listening socket, the connection limits, and HTTP on
//! the relay's port: the NIP-11 document for `Accept:
//! application/nostr+json`, a short page for browsers, and the upgrade to a
//! WebSocket, each connection then served by `session`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bigbrotr_pool::ConnectionPool;
use bigbrotr_service_runtime::{ServiceMetrics, Serving};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use nostr::nips::nip11::{Limitation, RelayInformationDocument};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::RelayConfig;
use crate::error::{Error, Result};
use crate::live::{live_start, LiveFeed};
use crate::{reads, session, TARGET};

/// Longest wait for the headers of the HTTP request that opens a
/// connection.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The NIPs the relay serves.
pub const SUPPORTED_NIPS: [u16; 4] = [1, 11, 45, 77];

/// The media type of a NIP-11 document.
const NIP11_MEDIA_TYPE: &str = "application/nostr+json";

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) pool: ConnectionPool,
    pub(crate) config: RelayConfig,
    /// Whether the implementation keeps whole events (`REQ` is refused
    /// otherwise).
    pub(crate) serves_events: bool,
    pub(crate) live: LiveFeed,
    pub(crate) metrics: RelayMetrics,
    /// One permit per reconciliation open (`relay.max_negentropy_sessions`).
    pub(crate) reconciliations: Arc<tokio::sync::Semaphore>,
    /// The NIP-11 document, written once.
    document: String,
    /// Open connections per client address.
    per_ip: Mutex<HashMap<IpAddr, u32>>,
}

/// The relay's metrics, labelled with the service.
#[derive(Debug, Clone)]
pub(crate) struct RelayMetrics(ServiceMetrics);

impl RelayMetrics {
    pub(crate) fn message(&self, kind: &str) {
        self.0
            .counter(
                "relay_messages_total",
                "Messages received from clients, by type: req, count, close, event, auth, neg-open, neg-msg, neg-close or invalid.",
                &[("type", kind)],
            )
            .inc();
    }

    pub(crate) fn events_sent(&self, n: u64) {
        if n > 0 {
            self.0
                .counter(
                    "relay_events_sent_total",
                    "Events sent to clients, stored and new.",
                    &[],
                )
                .add(n);
        }
    }

    pub(crate) fn refused(&self, reason: &str) {
        self.0
            .counter(
                "relay_refusals_total",
                "Requests and connections refused or cut short, by reason.",
                &[("reason", reason)],
            )
            .inc();
    }

    fn connections(&self, delta: f64) {
        self.0
            .gauge("relay_connections", "Client connections open.", &[])
            .add(delta);
    }
}

/// The archive relay, serving until [`shutdown`](Self::shutdown) or drop.
#[derive(Debug)]
pub struct RelayServer(Serving);

impl RelayServer {
    /// Listens on `config.listen` (port 0 takes a free one) and serves the
    /// archive behind `pool`: asks the implementation whether it keeps whole
    /// events, and where new events start, before the first connection.
    pub async fn bind(
        config: RelayConfig,
        pool: ConnectionPool,
        metrics: ServiceMetrics,
    ) -> Result<Self> {
        let serves_events = reads::serves_events(&pool).await?;
        let address = config.listen;
        let bind_error = |source| Error::Bind { address, source };
        let listener = TcpListener::bind(address).await.map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let cancel = CancellationToken::new();
        let live = LiveFeed::new();
        if serves_events {
            let start = live_start(&pool).await?;
            tokio::spawn(live.clone().run(
                pool.clone(),
                start,
                config.live_poll_interval,
                config.live_batch_size,
                cancel.clone(),
            ));
        }
        let shared = Arc::new(Shared {
            document: nip11_document(&config),
            reconciliations: Arc::new(tokio::sync::Semaphore::new(
                config.max_negentropy_sessions as usize,
            )),
            pool,
            config,
            serves_events,
            live,
            metrics: RelayMetrics(metrics),
            per_ip: Mutex::new(HashMap::new()),
        });
        let accepting = accept(listener, shared, cancel.clone());
        Ok(Self(Serving::spawn(address, cancel, accepting)))
    }

    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Stops listening, closes every connection and waits for them.
    pub async fn shutdown(self) {
        self.0.shutdown().await;
    }
}

/// A connection counted against its address and the total until dropped.
struct Admitted {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut per_ip = self
            .shared
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
        self.shared.metrics.connections(-1.0);
    }
}

/// Counts a connection from `ip`, or `None` (and why) past a limit.
fn admit(shared: &Arc<Shared>, ip: IpAddr) -> Result<Admitted, &'static str> {
    let mut per_ip = shared
        .per_ip
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let total: u32 = per_ip.values().sum();
    if total >= shared.config.max_connections {
        return Err("max_connections");
    }
    let count = per_ip.entry(ip).or_insert(0);
    if *count >= shared.config.max_connections_per_ip {
        return Err("max_connections_per_ip");
    }
    *count += 1;
    shared.metrics.connections(1.0);
    Ok(Admitted {
        shared: Arc::clone(shared),
        ip,
    })
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, cancel: CancellationToken) {
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(target: TARGET, %error, "could not accept a connection");
                    // Out of file descriptors, most likely: let some close.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Each message is flushed whole: waiting to fill a segment would
        // only delay the last one of an answer.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(target: TARGET, %error, "could not set TCP_NODELAY");
        }
        let admitted = match admit(&shared, peer.ip()) {
            Ok(admitted) => admitted,
            Err(limit) => {
                shared.metrics.refused(limit);
                tracing::debug!(target: TARGET, %peer, limit, "connection refused");
                drop(stream);
                continue;
            }
        };
        connections.spawn(serve_http(stream, admitted, cancel.clone()));
    }
    connections.close();
    connections.wait().await;
}

/// Serves the HTTP requests of one connection until it is upgraded to a
/// WebSocket, then the WebSocket.
async fn serve_http(stream: TcpStream, admitted: Admitted, cancel: CancellationToken) {
    // Held by the WebSocket session too: the connection counts until both
    // are done.
    let admitted = Arc::new(admitted);
    let held = Arc::clone(&admitted);
    let upgraded_cancel = cancel.clone();
    let service = service_fn(move |request| {
        let admitted = Arc::clone(&held);
        let cancel = upgraded_cancel.clone();
        async move { Ok::<_, Infallible>(respond(request, admitted, cancel)) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(target: TARGET, %error, "HTTP connection ended with an error");
            }
        }
        () = cancel.cancelled() => {}
    }
    drop(admitted);
}

fn respond(
    mut request: Request<Incoming>,
    admitted: Arc<Admitted>,
    cancel: CancellationToken,
) -> Response<Full<Bytes>> {
    let shared = Arc::clone(&admitted.shared);
    if let Some(key) = websocket_key(&request) {
        let accept = derive_accept_key(key.as_bytes());
        let config = WebSocketConfig::default()
            .max_message_size(Some(shared.config.max_message_bytes as usize))
            .max_frame_size(Some(shared.config.max_message_bytes as usize));
        let upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            match upgrade.await {
                Ok(upgraded) => {
                    let ws = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    session::serve(ws, shared, cancel).await;
                    drop(admitted);
                }
                Err(error) => {
                    tracing::debug!(target: TARGET, %error, "WebSocket upgrade failed");
                }
            }
        });
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        return response;
    }
    let mut response = if request.method() == Method::OPTIONS {
        // A browser's preflight before fetching the NIP-11 document.
        Response::new(Full::new(Bytes::new()))
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and WebSocket\n");
        response.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        response
    } else if accepts_nip11(&request) {
        let mut response = Response::new(Full::new(Bytes::from(shared.document.clone())));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(NIP11_MEDIA_TYPE),
        );
        response
    } else {
        text(
            StatusCode::OK,
            "BigBrotr archive relay: a read-only Nostr relay. Connect with a Nostr client \
             (WebSocket); ask with Accept: application/nostr+json for its NIP-11 document.\n",
        )
    };
    // NIP-11: the document must be readable from web pages.
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    response
}

/// The `Sec-WebSocket-Key` of a WebSocket upgrade request, if it is one.
fn websocket_key(request: &Request<Incoming>) -> Option<String> {
    let headers = request.headers();
    let upgrade = headers.get(header::UPGRADE)?.to_str().ok()?;
    if !upgrade.eq_ignore_ascii_case("websocket") || request.method() != Method::GET {
        return None;
    }
    Some(
        headers
            .get(header::SEC_WEBSOCKET_KEY)?
            .to_str()
            .ok()?
            .to_owned(),
    )
}

/// Whether the request asks for the NIP-11 document.
fn accepts_nip11(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains(NIP11_MEDIA_TYPE))
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The NIP-11 document of a relay configured by `config`, as JSON.
pub(crate) fn nip11_document(config: &RelayConfig) -> String {
    let count = |value: u32| Some(i32::try_from(value).unwrap_or(i32::MAX));
    let optional = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    let mut document = RelayInformationDocument::new();
    document.name = optional(&config.info.name);
    document.description = optional(&config.info.description);
    document.contact = optional(&config.info.contact);
    document.pubkey = optional(&config.info.pubkey);
    document.icon = optional(&config.info.icon);
    document.software = Some("https://github.com/bigbrotr/bigbrotr".to_owned());
    document.version = Some(env!("CARGO_PKG_VERSION").to_owned());
    document.supported_nips = Some(SUPPORTED_NIPS.to_vec());
    document.limitation = Some(Limitation {
        max_message_length: count(config.max_message_bytes),
        max_subscriptions: count(config.max_subscriptions),
        max_filters: count(config.max_filters),
        max_limit: count(config.max_limit),
        max_subid_length: count(config.max_subid_length),
        auth_required: Some(false),
        payment_required: Some(false),
        ..Limitation::default()
    });
    serde_json::to_string(&document).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_the_software_nips_and_real_limits() {
        let mut config = RelayConfig {
            max_limit: 250,
            ..RelayConfig::default()
        };
        config.info.contact = "ops@example.com".to_owned();
        let document: serde_json::Value =
            serde_json::from_str(&nip11_document(&config)).expect("JSON");
        assert_eq!(document["name"], "BigBrotr archive");
        assert_eq!(document["contact"], "ops@example.com");
        assert_eq!(document["software"], "https://github.com/bigbrotr/bigbrotr");
        assert_eq!(
            document["supported_nips"],
            serde_json::json!([1, 11, 45, 77])
        );
        let limitation = &document["limitation"];
        assert_eq!(limitation["max_limit"], 250);
        assert_eq!(limitation["max_message_length"], 65_536);
        assert_eq!(limitation["max_subscriptions"], 20);
        assert_eq!(limitation["max_filters"], 10);
        assert_eq!(limitation["auth_required"], false);
        assert!(document
            .get("pubkey")
            .is_none_or(serde_json::Value::is_null));
    }
}
