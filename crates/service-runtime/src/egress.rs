//! The egress policy for services: the file `config/core/egress.yaml`
//! loaded ([`load_egress_file`]), and WebSocket connections made through
//! the policy ([`connect_websocket`], and [`EgressTransport`] for
//! `nostr-sdk` clients); [`resolve_socks5`] finds the proxy `.onion`
//! relays go through.
//!
//! Every service gets its [`Egress`] from
//! [`ServiceContext::egress`](crate::ServiceContext::egress). A direct
//! connection resolves the relay's host once, checks every address and
//! connects only to a checked one ([`Egress::connect`]); the WebSocket
//! handshake (and TLS for `wss`) then runs over that TCP connection, so no
//! second resolution can lead elsewhere. Connections through the SOCKS5
//! proxy (`.onion` relays) are not checked: the proxy is the operator's
//! choice and resolves the name itself.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_wsocket::futures_util::stream::SplitSink;
use async_wsocket::futures_util::{Sink, SinkExt, StreamExt, TryStreamExt};
use async_wsocket::{ConnectionMode, Message, Url, WebSocket};
use bigbrotr_config::{EgressFile, Env, Implementation};
pub use bigbrotr_utils::Egress;
use nostr_sdk::pool::transport::error::TransportError;
use nostr_sdk::pool::transport::websocket::{
    DefaultWebsocketTransport, WebSocketSink, WebSocketStream, WebSocketTransport,
};
use nostr_sdk::util::BoxedFuture;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::error::{Error, Result};

/// The address of the SOCKS5 proxy at `host`:`port` (the `nostr` section's
/// `socks5_proxy`, split by [`NostrConfig::socks5_host_port`]), resolved
/// within `timeout`; the reason as text when it cannot be, to be reported
/// as the outcome of the relay that needed it.
///
/// [`NostrConfig::socks5_host_port`]: bigbrotr_config::NostrConfig::socks5_host_port
pub async fn resolve_socks5(
    proxy: Option<&(String, u16)>,
    timeout: Duration,
) -> std::result::Result<SocketAddr, String> {
    let Some((host, port)) = proxy else {
        return Err("no SOCKS5 proxy is configured for .onion relays".to_owned());
    };
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), *port))).await {
        Ok(Ok(mut addresses)) => addresses
            .next()
            .ok_or_else(|| format!("the SOCKS5 proxy {host} has no address")),
        Ok(Err(error)) => Err(format!(
            "the SOCKS5 proxy {host} cannot be resolved: {error}"
        )),
        Err(_elapsed) => Err(format!(
            "the SOCKS5 proxy {host} was not resolved within {} ms",
            timeout.as_millis()
        )),
    }
}

/// Loads `config/core/egress.yaml` of `implementation`; an implementation
/// without that file gets the strict default.
pub fn load_egress_file(implementation: &Implementation, env: &Env) -> Result<EgressFile> {
    match implementation.load::<EgressFile>("core", "egress", env) {
        Ok(file) => Ok(file),
        Err(bigbrotr_config::Error::FileNotFound { .. }) => Ok(EgressFile::default()),
        Err(source) => Err(Error::Config {
            what: "the egress policy".to_owned(),
            source,
        }),
    }
}

/// A WebSocket connection to `url` (`ws` or `wss`) through `egress`,
/// handshake included, within `timeout`: the host is resolved once, every
/// address checked, the TCP connection made to a checked address, then
/// TLS (for `wss`, verified against the host name) and the WebSocket
/// handshake run over it.
///
/// Fails with [`Error::Egress`] when the policy refuses the relay
/// ([`bigbrotr_utils::Error::egress_denied`] then tells why; nothing was
/// connected), the name does not resolve or the TCP connection fails, and
/// with [`Error::WebSocket`] when the handshake fails or `timeout` passes.
pub async fn connect_websocket(egress: &Egress, url: &Url, timeout: Duration) -> Result<WebSocket> {
    connect_websocket_with(egress, url, timeout, None).await
}

/// [`connect_websocket`] reading messages within `config` (its message
/// and frame sizes, say) rather than the library's defaults.
pub async fn connect_websocket_with(
    egress: &Egress,
    url: &Url,
    timeout: Duration,
    config: Option<WebSocketConfig>,
) -> Result<WebSocket> {
    let websocket = |reason: String| Error::WebSocket {
        url: url.to_string(),
        reason,
    };
    let host = url
        .host_str()
        .ok_or_else(|| websocket("the URL has no host".to_owned()))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| websocket("the URL has no port".to_owned()))?;
    let attempt = async {
        let stream = egress
            .connect(host, port, timeout)
            .await
            .map_err(|source| Error::Egress { source })?;
        let (socket, _response) = Box::pin(tokio_tungstenite::client_async_tls_with_config(
            url.as_str(),
            stream,
            config,
            None,
        ))
        .await
        .map_err(|error| websocket(error.to_string()))?;
        Ok(WebSocket::Tokio(socket))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| websocket(format!("no connection within {} ms", timeout.as_millis())))?
}

/// A `nostr-sdk` WebSocket transport whose direct connections go through
/// the egress policy ([`connect_websocket`]); connections through a proxy
/// (the SOCKS5 proxy of `.onion` relays) are made as the library does.
///
/// ```
/// use bigbrotr_service_runtime::{Egress, EgressTransport};
///
/// let client = nostr_sdk::Client::builder()
///     .websocket_transport(EgressTransport::new(Egress::default()))
///     .build();
/// # drop(client);
/// ```
#[derive(Debug, Clone)]
pub struct EgressTransport {
    egress: Egress,
}

impl EgressTransport {
    /// A transport connecting through `egress`.
    #[must_use]
    pub fn new(egress: Egress) -> Self {
        Self { egress }
    }
}

impl WebSocketTransport for EgressTransport {
    fn support_ping(&self) -> bool {
        true
    }

    fn connect<'a>(
        &'a self,
        url: &'a Url,
        mode: &'a ConnectionMode,
        timeout: Duration,
    ) -> BoxedFuture<'a, Result<(WebSocketSink, WebSocketStream), TransportError>> {
        if !matches!(mode, ConnectionMode::Direct) {
            return DefaultWebsocketTransport.connect(url, mode, timeout);
        }
        Box::pin(async move {
            let socket = connect_websocket(&self.egress, url, timeout)
                .await
                .map_err(TransportError::backend)?;
            let (tx, rx) = socket.split();
            let sink: WebSocketSink = Box::new(TransportSink(tx));
            let stream: WebSocketStream = Box::pin(rx.map_err(TransportError::backend));
            Ok((sink, stream))
        })
    }
}

/// The sending half, its errors those of the transport (what the library's
/// own transport does, without `sink_map_err`, which it found to panic).
struct TransportSink(SplitSink<WebSocket, Message>);

impl Sink<Message> for TransportSink {
    type Error = TransportError;

    fn poll_ready(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::result::Result<(), Self::Error>> {
        self.0.poll_ready_unpin(cx).map_err(TransportError::backend)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> std::result::Result<(), Self::Error> {
        self.0
            .start_send_unpin(item)
            .map_err(TransportError::backend)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::result::Result<(), Self::Error>> {
        self.0.poll_flush_unpin(cx).map_err(TransportError::backend)
    }

    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::result::Result<(), Self::Error>> {
        self.0.poll_close_unpin(cx).map_err(TransportError::backend)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use bigbrotr_utils::{AllowEntry, EgressPolicy, StaticResolver};
    use tokio::net::TcpListener;

    use super::*;

    /// A WebSocket echo server on loopback, and the number of TCP
    /// connections it accepted.
    async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    while let Some(Ok(message)) = socket.next().await {
                        if message.is_text() && socket.send(message).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[tokio::test]
    async fn an_allowed_relay_is_connected_and_speaks_websocket() {
        let (addr, accepted) = echo_server().await;
        let egress = Egress::new(EgressPolicy::strict().allowing(AllowEntry::Socket(addr)))
            .with_resolver(Arc::new(
                StaticResolver::new().with("relay.example", [addr.ip()]),
            ));
        let mut socket = connect_websocket(
            &egress,
            &url(&format!("ws://relay.example:{}", addr.port())),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        socket.send(Message::Text("hello".into())).await.unwrap();
        let echoed = socket.next().await.unwrap().unwrap();
        assert_eq!(echoed, Message::Text("hello".into()));
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_relay_resolving_to_a_denied_address_is_refused_without_a_connection() {
        let (addr, accepted) = echo_server().await;
        let egress = Egress::default().with_resolver(Arc::new(
            StaticResolver::new().with("rebind.example", [addr.ip()]),
        ));
        for target in [
            format!("ws://rebind.example:{}", addr.port()),
            format!("ws://{addr}"),
        ] {
            let Err(error) =
                connect_websocket(&egress, &url(&target), Duration::from_secs(5)).await
            else {
                panic!("{target} was connected");
            };
            match &error {
                Error::Egress { source } => assert!(source.egress_denied().is_some(), "{error:?}"),
                other => panic!("expected Egress, got {other:?}"),
            }
        }
        // Through the nostr-sdk transport too.
        let transport = EgressTransport::new(egress);
        assert!(transport.support_ping());
        let refused = transport
            .connect(
                &url(&format!("ws://rebind.example:{}", addr.port())),
                &ConnectionMode::Direct,
                Duration::from_secs(5),
            )
            .await;
        assert!(refused.is_err());
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_client_with_the_transport_reaches_only_allowed_relays() {
        let (allowed, allowed_count) = echo_server().await;
        let (denied, denied_count) = echo_server().await;
        let egress = Egress::new(EgressPolicy::strict().allowing(AllowEntry::Socket(allowed)));
        let transport = EgressTransport::new(egress);
        let (mut sink, mut stream) = transport
            .connect(
                &url(&format!("ws://{allowed}")),
                &ConnectionMode::Direct,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        sink.send(Message::Text("ping".into())).await.unwrap();
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            Message::Text("ping".into())
        );
        sink.close().await.unwrap();
        assert!(transport
            .connect(
                &url(&format!("ws://{denied}")),
                &ConnectionMode::Direct,
                Duration::from_secs(5),
            )
            .await
            .is_err());
        assert_eq!(allowed_count.load(Ordering::SeqCst), 1);
        assert_eq!(denied_count.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_url_without_a_host_or_a_handshake_that_fails_is_a_websocket_error() {
        let egress = Egress::new(EgressPolicy::new(true, Vec::new()));
        assert!(matches!(
            connect_websocket(&egress, &url("ws:///x"), Duration::from_secs(1)).await,
            Err(Error::WebSocket { .. } | Error::Egress { .. })
        ));
        // A plain TCP server that closes at once: the handshake fails.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        assert!(matches!(
            connect_websocket(
                &egress,
                &url(&format!("ws://{addr}")),
                Duration::from_secs(5)
            )
            .await,
            Err(Error::WebSocket { .. })
        ));
    }

    #[test]
    fn a_missing_egress_file_is_the_strict_policy_and_a_bad_one_an_error() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("implementations/demo/config/core");
        std::fs::create_dir_all(&dir).unwrap();
        let implementation = Implementation::open(root.path(), "demo").unwrap();
        let file = load_egress_file(&implementation, &Env::empty()).unwrap();
        assert_eq!(file, EgressFile::default());
        std::fs::write(
            dir.join("egress.yaml"),
            "egress:\n  allow: [\"127.0.0.1:7777\"]\n",
        )
        .unwrap();
        let file = load_egress_file(&implementation, &Env::empty()).unwrap();
        assert_eq!(file.egress.allow, ["127.0.0.1:7777"]);
        std::fs::write(dir.join("egress.yaml"), "egress:\n  allow: [\"nowhere\"]\n").unwrap();
        assert!(matches!(
            load_egress_file(&implementation, &Env::empty()),
            Err(Error::Config { .. })
        ));
    }
}
