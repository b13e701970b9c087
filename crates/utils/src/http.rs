//! Whether a relay's web server answers at all.
//!
//! A relay serves its NIP-11 information document over plain HTTP(S) at the
//! same host, port and path as its WebSocket endpoint. Getting any HTTP
//! response there, whatever the status, shows the host is up and speaks
//! HTTP; this probe checks exactly that and nothing more.

use std::time::Duration;

use reqwest::header::ACCEPT;
use reqwest::{redirect, Client, Url};

use crate::error::{Error, InvalidUrlReason, Result};

/// The media type NIP-11 asks clients to send in `Accept`.
pub const NIP11_MEDIA_TYPE: &str = "application/nostr+json";

/// How many redirects the probe follows; a longer chain still counts as
/// an answer, since a response did arrive.
pub const MAX_REDIRECTS: usize = 3;

/// The HTTP URL of a relay's NIP-11 document: `ws` becomes `http`, `wss`
/// becomes `https`, and host, port, path and query stay as they are;
/// `http` and `https` URLs are returned unchanged.
///
/// Fails with [`Error::InvalidUrl`] when `url` does not parse, has another
/// scheme, or has no host.
///
/// ```
/// let url = bigbrotr_utils::nip11_http_url("wss://relay.example:7447/nostr")?;
/// assert_eq!(url.as_str(), "https://relay.example:7447/nostr");
/// # Ok::<(), bigbrotr_utils::Error>(())
/// ```
pub fn nip11_http_url(url: &str) -> Result<Url> {
    let invalid = |reason| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let mut parsed = Url::parse(url).map_err(|e| invalid(InvalidUrlReason::Parse(e)))?;
    let http_scheme = match parsed.scheme() {
        "ws" => "http",
        "wss" => "https",
        "http" | "https" => "",
        other => {
            return Err(invalid(InvalidUrlReason::UnsupportedScheme(
                other.to_owned(),
            )))
        }
    };
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(InvalidUrlReason::MissingHost));
    }
    // ws/wss and http/https are all "special" schemes with a host, so
    // switching between them is always allowed; the check is for safety.
    if !http_scheme.is_empty() && parsed.set_scheme(http_scheme).is_err() {
        return Err(invalid(InvalidUrlReason::UnsupportedScheme(
            parsed.scheme().to_owned(),
        )));
    }
    Ok(parsed)
}

/// Whether the relay at `url` sends any HTTP response to a NIP-11 request
/// within `timeout`.
///
/// Sends `GET` with `Accept: application/nostr+json` to
/// [`nip11_http_url`]`(url)`, directly (system proxy settings are ignored),
/// following at most [`MAX_REDIRECTS`] redirects. Any response, whatever its
/// status, gives `Ok(true)`; a refused connection, a TLS failure, a DNS
/// failure or the timeout give `Ok(false)`. Fails with
/// [`Error::InvalidUrl`] for a URL [`nip11_http_url`] refuses and with
/// [`Error::HttpClient`] when no HTTP client can be built.
///
/// Builds a client per call; to probe many relays, or through a proxy, build
/// one [`Client`] and use [`http_reachable_with`].
pub async fn http_reachable(url: &str, timeout: Duration) -> Result<bool> {
    let http_url = nip11_http_url(url)?;
    let client = probe_client(timeout)?;
    Ok(probe(&client, http_url, timeout).await)
}

/// [`http_reachable`] with a caller-supplied client, whose redirect and
/// proxy settings are used as they are; `timeout` still bounds the whole
/// request.
pub async fn http_reachable_with(client: &Client, url: &str, timeout: Duration) -> Result<bool> {
    let http_url = nip11_http_url(url)?;
    Ok(probe(client, http_url, timeout).await)
}

fn probe_client(timeout: Duration) -> Result<Client> {
    Client::builder()
        .redirect(redirect::Policy::limited(MAX_REDIRECTS))
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|source| Error::HttpClient { source })
}

#[tracing::instrument(target = "bigbrotr_utils::http", skip_all, fields(url = %url))]
async fn probe(client: &Client, url: Url, timeout: Duration) -> bool {
    let request = client
        .get(url)
        .header(ACCEPT, NIP11_MEDIA_TYPE)
        .timeout(timeout);
    // reqwest's own timeout should fire first; this outer one also bounds
    // anything it might not cover, such as name resolution.
    match tokio::time::timeout(timeout, request.send()).await {
        Ok(Ok(_response)) => true,
        // Too many redirects still means the server answered.
        Ok(Err(error)) if error.is_redirect() => true,
        Ok(Err(error)) => {
            tracing::debug!(target: "bigbrotr_utils::http", error = %error, "no HTTP response");
            false
        }
        Err(_elapsed) => {
            tracing::debug!(
                target: "bigbrotr_utils::http",
                timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                "no HTTP response before the timeout"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;

    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;
    use proptest::prelude::*;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;
    use tokio::time::Instant;

    use super::*;

    const NIP11_DOC: &str = r#"{"name":"test relay","supported_nips":[1,11]}"#;
    const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

    fn reason_of(result: Result<impl std::fmt::Debug>) -> InvalidUrlReason {
        match result {
            Err(Error::InvalidUrl { reason, .. }) => reason,
            other => panic!("expected InvalidUrl, got {other:?}"),
        }
    }

    #[test]
    fn ws_and_wss_map_to_http_and_https_keeping_the_rest() {
        let cases = [
            ("ws://relay.example", "http://relay.example/"),
            ("wss://relay.example", "https://relay.example/"),
            (
                "wss://relay.example:7447/nostr?x=1",
                "https://relay.example:7447/nostr?x=1",
            ),
            ("ws://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
            ("ws://[::1]:7777", "http://[::1]:7777/"),
            ("WSS://Relay.Example/Path", "https://relay.example/Path"),
            ("ws://abc.onion", "http://abc.onion/"),
        ];
        for (input, expected) in cases {
            assert_eq!(nip11_http_url(input).unwrap().as_str(), expected, "{input}");
        }
    }

    #[test]
    fn explicit_default_ports_of_the_other_scheme_are_kept() {
        assert_eq!(
            nip11_http_url("ws://relay.example:443").unwrap().as_str(),
            "http://relay.example:443/"
        );
        assert_eq!(
            nip11_http_url("wss://relay.example:80").unwrap().as_str(),
            "https://relay.example:80/"
        );
        assert_eq!(
            nip11_http_url("wss://relay.example:443").unwrap().as_str(),
            "https://relay.example/"
        );
    }

    #[test]
    fn http_and_https_urls_are_returned_unchanged() {
        assert_eq!(
            nip11_http_url("https://relay.example/x").unwrap().as_str(),
            "https://relay.example/x"
        );
        assert_eq!(
            nip11_http_url("http://relay.example:81").unwrap().as_str(),
            "http://relay.example:81/"
        );
    }

    #[test]
    fn other_schemes_are_unsupported() {
        for (input, scheme) in [
            ("ftp://x", "ftp"),
            ("file:///tmp", "file"),
            ("mailto:a@b", "mailto"),
        ] {
            match reason_of(nip11_http_url(input)) {
                InvalidUrlReason::UnsupportedScheme(s) => assert_eq!(s, scheme),
                other => panic!("expected UnsupportedScheme for {input}, got {other:?}"),
            }
        }
    }

    #[test]
    fn unparsable_strings_are_parse_errors_naming_the_input() {
        for input in ["not a url", "", "wss://", "ws://exa mple.com", "wss://[::1"] {
            match nip11_http_url(input) {
                Err(Error::InvalidUrl {
                    url,
                    reason: InvalidUrlReason::Parse(_),
                }) => assert_eq!(url, input),
                other => panic!("expected a parse error for {input:?}, got {other:?}"),
            }
        }
    }

    /// Serves every connection with `respond`, and reports each request's
    /// `Accept` header.
    async fn serve(
        respond: fn() -> Response<Full<Bytes>>,
    ) -> (SocketAddr, mpsc::UnboundedReceiver<Option<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let accept = request
                        .headers()
                        .get(ACCEPT)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let _ = tx.send(accept);
                    async move { Ok::<_, Infallible>(respond()) }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        (addr, rx)
    }

    fn nip11_document() -> Response<Full<Bytes>> {
        Response::builder()
            .header("content-type", NIP11_MEDIA_TYPE)
            .body(Full::new(Bytes::from_static(NIP11_DOC.as_bytes())))
            .unwrap()
    }

    fn not_found() -> Response<Full<Bytes>> {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::default())
            .unwrap()
    }

    fn redirect_to_self() -> Response<Full<Bytes>> {
        Response::builder()
            .status(StatusCode::FOUND)
            .header("location", "/again")
            .body(Full::default())
            .unwrap()
    }

    #[tokio::test]
    async fn a_relay_serving_nip11_is_reachable_and_gets_the_nip11_accept_header() {
        let (addr, mut requests) = serve(nip11_document).await;
        let reachable = http_reachable(&format!("ws://{addr}"), Duration::from_secs(5)).await;
        assert!(reachable.unwrap());
        assert_eq!(
            requests.recv().await,
            Some(Some(NIP11_MEDIA_TYPE.to_owned()))
        );
    }

    #[tokio::test]
    async fn any_status_counts_as_reachable() {
        let (addr, _requests) = serve(not_found).await;
        let reachable = http_reachable(&format!("http://{addr}/x"), Duration::from_secs(5)).await;
        assert!(reachable.unwrap());
    }

    #[tokio::test]
    async fn a_redirect_loop_still_counts_as_reachable_after_the_limit() {
        let (addr, mut requests) = serve(redirect_to_self).await;
        let reachable = http_reachable(&format!("ws://{addr}"), Duration::from_secs(5)).await;
        assert!(reachable.unwrap());
        let mut seen = 0;
        while requests.try_recv().is_ok() {
            seen += 1;
        }
        assert_eq!(seen, MAX_REDIRECTS + 1);
    }

    #[tokio::test]
    async fn a_caller_supplied_client_is_used() {
        let (addr, mut requests) = serve(nip11_document).await;
        let client = Client::builder().no_proxy().build().unwrap();
        let reachable =
            http_reachable_with(&client, &format!("ws://{addr}"), Duration::from_secs(5)).await;
        assert!(reachable.unwrap());
        assert_eq!(
            requests.recv().await,
            Some(Some(NIP11_MEDIA_TYPE.to_owned()))
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let reachable = http_reachable(&format!("ws://{addr}"), Duration::from_secs(5)).await;
        assert!(!reachable.unwrap());
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_unreachable_within_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let start = Instant::now();
        let reachable = http_reachable(&format!("ws://{addr}"), PROBE_TIMEOUT).await;
        let elapsed = start.elapsed();
        holder.abort();
        assert!(!reachable.unwrap());
        assert!(elapsed >= PROBE_TIMEOUT, "gave up early: {elapsed:?}");
        assert!(
            elapsed < Duration::from_secs(3),
            "took too long: {elapsed:?}"
        );
    }

    #[tokio::test]
    async fn a_tls_failure_is_unreachable() {
        // A plain-HTTP server cannot complete a TLS handshake.
        let (addr, _requests) = serve(nip11_document).await;
        let reachable = http_reachable(&format!("wss://{addr}"), Duration::from_secs(5)).await;
        assert!(!reachable.unwrap());
    }

    #[tokio::test]
    async fn bad_urls_are_errors_not_unreachable() {
        let err = http_reachable("ftp://x", PROBE_TIMEOUT).await.unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidUrl {
                reason: InvalidUrlReason::UnsupportedScheme(_),
                ..
            }
        ));
        let err = http_reachable("not a url", PROBE_TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidUrl {
                reason: InvalidUrlReason::Parse(_),
                ..
            }
        ));
        let client = Client::new();
        let err = http_reachable_with(&client, "not a url", PROBE_TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }));
    }

    proptest! {
        #[test]
        fn nip11_http_url_gives_an_http_url_or_an_invalid_url_error(input in ".*") {
            match nip11_http_url(&input) {
                Ok(url) => prop_assert!(matches!(url.scheme(), "http" | "https")),
                Err(Error::InvalidUrl { url, .. }) => prop_assert_eq!(url, input),
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }

        #[test]
        fn nip11_http_url_maps_every_ws_url_to_http(
            host in "[a-z][a-z0-9]{0,20}(\\.[a-z]{2,6}){0,2}",
            port in proptest::option::of(1u16..=u16::MAX),
            path in "(/[a-zA-Z0-9_.-]{0,8}){0,3}",
            secure in any::<bool>(),
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let (ws, http) = if secure { ("wss", "https") } else { ("ws", "http") };
            let url = nip11_http_url(&format!("{ws}://{host}{port}{path}")).unwrap();
            let plain = Url::parse(&format!("{http}://{host}{port}{path}")).unwrap();
            prop_assert_eq!(url, plain);
        }
    }
}
