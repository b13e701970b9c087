//! HTTP through the egress policy: [`get`], a `GET` whose every hop is
//! checked, and whether a relay's web server answers at all.
//!
//! A relay serves its NIP-11 information document over plain HTTP(S) at the
//! same host, port and path as its WebSocket endpoint. Getting any HTTP
//! response there, whatever the status, shows the host is up and speaks
//! HTTP.

use std::time::Duration;

use reqwest::header::{ACCEPT, LOCATION};
use reqwest::{redirect, Client, Url};
use url::Host;

use crate::egress::Egress;
use crate::error::{Error, InvalidUrlReason, RedirectRefusal, Result};

/// How many redirects [`get`] follows unless told otherwise; for the probe,
/// a longer chain still counts as an answer, since a response did arrive.
pub(crate) const MAX_REDIRECTS: usize = 3;

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

/// A `GET` through the egress policy: the headers sent and the limits
/// kept. See [`get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRequest {
    /// The `Accept` header.
    pub accept: String,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Time limit of the whole request: every hop, and the body.
    pub timeout: Duration,
    /// Redirects followed at most.
    pub max_redirects: usize,
    /// Largest body read, in bytes.
    pub max_bytes: usize,
}

impl GetRequest {
    /// A request sending `accept`, within `timeout`, following at most
    /// 3 redirects and reading at most 4 MiB.
    #[must_use]
    pub fn new(accept: &str, timeout: Duration) -> Self {
        Self {
            accept: accept.to_owned(),
            user_agent: concat!("bigbrotr/", env!("CARGO_PKG_VERSION")).to_owned(),
            timeout,
            max_redirects: MAX_REDIRECTS,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The answer of [`get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetAnswer {
    /// The URL that answered, after redirects.
    pub url: Url,
    /// The HTTP status.
    pub status: u16,
    /// The body, read only when the status is 2xx (empty otherwise).
    pub body: Vec<u8>,
}

/// `GET url` through `egress`, every hop checked.
///
/// Each hop's host is resolved once and every address checked by the
/// egress policy ([`Egress::resolve`]); the request then goes to those
/// checked addresses only. Redirects are followed by hand, at most
/// `request.max_redirects`, each hop checked again; a redirect from
/// `https` to `http` is refused. The whole exchange must end within
/// `request.timeout` ([`Error::HttpTimeout`]), and a 2xx body must not
/// exceed `request.max_bytes` ([`Error::TooLarge`]). System proxy settings
/// are ignored.
///
/// Fails with [`Error::EgressDenied`] when a hop's address is refused (no
/// connection is made to it), [`Error::Redirect`] for a redirect not
/// followed, [`Error::Http`] when a request fails, and the resolution
/// errors of [`Egress::resolve`].
#[tracing::instrument(target = "bigbrotr_utils::http", skip_all, fields(url = %url))]
pub async fn get(egress: &Egress, url: &Url, request: &GetRequest) -> Result<GetAnswer> {
    tokio::time::timeout(request.timeout, get_hops(egress, url.clone(), request))
        .await
        .map_err(|_| Error::HttpTimeout {
            url: url.to_string(),
            after: request.timeout,
        })?
}

async fn get_hops(egress: &Egress, mut url: Url, request: &GetRequest) -> Result<GetAnswer> {
    let mut redirects = 0;
    loop {
        let mut response = get_one(egress, &url, request).await?;
        let status = response.status();
        if status.is_redirection() {
            if let Some(location) = response.headers().get(LOCATION) {
                let location = String::from_utf8_lossy(location.as_bytes());
                url = next_hop(&url, &location, redirects, request.max_redirects).map_err(
                    |reason| Error::Redirect {
                        url: url.to_string(),
                        reason,
                    },
                )?;
                redirects += 1;
                continue;
            }
        }
        let mut body = Vec::new();
        if status.is_success() {
            let too_large = || Error::TooLarge {
                url: url.to_string(),
                limit: request.max_bytes,
            };
            if response
                .content_length()
                .is_some_and(|length| length > request.max_bytes as u64)
            {
                return Err(too_large());
            }
            let http = |source| Error::Http {
                url: url.to_string(),
                source,
            };
            while let Some(chunk) = response.chunk().await.map_err(http)? {
                if body.len() + chunk.len() > request.max_bytes {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
        }
        return Ok(GetAnswer {
            status: status.as_u16(),
            url,
            body,
        });
    }
}

/// Where a redirect from `url` to `location` leads, when it may be
/// followed: an `http`/`https` URL, not from `https` to `http`, and within
/// `max` redirects (`done` followed already).
fn next_hop(
    url: &Url,
    location: &str,
    done: usize,
    max: usize,
) -> std::result::Result<Url, RedirectRefusal> {
    let next = match url.join(location) {
        Ok(next) if matches!(next.scheme(), "http" | "https") => next,
        _ => return Err(RedirectRefusal::BadLocation(location.to_owned())),
    };
    if url.scheme() == "https" && next.scheme() == "http" {
        return Err(RedirectRefusal::Downgrade);
    }
    if done >= max {
        return Err(RedirectRefusal::TooMany(max));
    }
    Ok(next)
}

/// One hop: the host resolved and checked, then a client pinned to the
/// checked addresses (so nothing resolves the name again), no redirects.
async fn get_one(egress: &Egress, url: &Url, request: &GetRequest) -> Result<reqwest::Response> {
    let invalid = |reason| Error::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(InvalidUrlReason::UnsupportedScheme(
            url.scheme().to_owned(),
        )));
    }
    let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
        return Err(invalid(InvalidUrlReason::MissingHost));
    };
    let mut builder = Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .user_agent(request.user_agent.as_str());
    match host {
        Host::Domain(name) => {
            let addrs = egress.resolve(name, port).await?;
            builder = builder.resolve_to_addrs(name, &addrs);
        }
        Host::Ipv4(ip) => {
            egress.resolve(&ip.to_string(), port).await?;
        }
        Host::Ipv6(ip) => {
            egress.resolve(&ip.to_string(), port).await?;
        }
    }
    let client = builder
        .build()
        .map_err(|source| Error::HttpClient { source })?;
    client
        .get(url.clone())
        .header(ACCEPT, request.accept.as_str())
        .send()
        .await
        .map_err(|source| Error::Http {
            url: url.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

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

    /// The media type NIP-11 asks clients to send in `Accept`.
    const NIP11_MEDIA_TYPE: &str = "application/nostr+json";
    use crate::egress::{AllowEntry, EgressPolicy, StaticResolver};

    /// An egress letting loopback through, as local test servers need.
    fn local() -> Egress {
        Egress::new(EgressPolicy::new(true, Vec::new()))
    }

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

    /// A NIP-11 `GET` of the relay at `url`.
    async fn probe(egress: &Egress, url: &str, timeout: Duration) -> Result<GetAnswer> {
        let http_url = nip11_http_url(url)?;
        get(
            egress,
            &http_url,
            &GetRequest::new(NIP11_MEDIA_TYPE, timeout),
        )
        .await
    }

    #[tokio::test]
    async fn a_get_asks_for_the_media_type_it_is_given() {
        let (addr, mut requests) = serve(nip11_document).await;
        let reachable = probe(&local(), &format!("ws://{addr}"), Duration::from_secs(5)).await;
        assert_eq!(reachable.unwrap().status, 200);
        assert_eq!(
            requests.recv().await,
            Some(Some(NIP11_MEDIA_TYPE.to_owned()))
        );
    }

    #[tokio::test]
    async fn any_status_is_an_answer() {
        let (addr, _requests) = serve(not_found).await;
        let reachable = probe(
            &local(),
            &format!("http://{addr}/x"),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(reachable.unwrap().status, 404);
    }

    #[tokio::test]
    async fn a_redirect_loop_ends_at_the_limit() {
        let (addr, mut requests) = serve(redirect_to_self).await;
        let reachable = probe(&local(), &format!("ws://{addr}"), Duration::from_secs(5)).await;
        assert!(
            matches!(reachable, Err(Error::Redirect { .. })),
            "{reachable:?}"
        );
        let mut seen = 0;
        while requests.try_recv().is_ok() {
            seen += 1;
        }
        assert_eq!(seen, MAX_REDIRECTS + 1);
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let reachable = probe(&local(), &format!("ws://{addr}"), Duration::from_secs(5)).await;
        assert!(reachable.is_err(), "{reachable:?}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_an_error_at_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let start = Instant::now();
        let reachable = probe(&local(), &format!("ws://{addr}"), PROBE_TIMEOUT).await;
        let elapsed = start.elapsed();
        holder.abort();
        assert!(reachable.is_err(), "{reachable:?}");
        assert!(elapsed >= PROBE_TIMEOUT, "gave up early: {elapsed:?}");
        assert!(
            elapsed < Duration::from_secs(3),
            "took too long: {elapsed:?}"
        );
    }

    #[tokio::test]
    async fn a_tls_failure_is_an_error() {
        // A plain-HTTP server cannot complete a TLS handshake.
        let (addr, _requests) = serve(nip11_document).await;
        let reachable = probe(&local(), &format!("wss://{addr}"), Duration::from_secs(5)).await;
        assert!(reachable.is_err(), "{reachable:?}");
    }

    #[tokio::test]
    async fn bad_urls_are_invalid_url_errors() {
        let err = probe(&local(), "ftp://x", PROBE_TIMEOUT).await.unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidUrl {
                reason: InvalidUrlReason::UnsupportedScheme(_),
                ..
            }
        ));
        let err = probe(&local(), "not a url", PROBE_TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidUrl {
                reason: InvalidUrlReason::Parse(_),
                ..
            }
        ));
    }

    type Respond = Arc<dyn Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync>;

    /// A server answering with `respond`, and the number of TCP
    /// connections it accepted.
    async fn serve_counting(respond: Respond) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let respond = Arc::clone(&respond);
                let service = service_fn(move |request: Request<Incoming>| {
                    let response = respond(&request);
                    async move { Ok::<_, Infallible>(response) }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        (addr, accepted)
    }

    fn redirect_to(location: String) -> Respond {
        Arc::new(move |_| {
            Response::builder()
                .status(StatusCode::FOUND)
                .header("location", location.as_str())
                .body(Full::default())
                .unwrap()
        })
    }

    fn document() -> Respond {
        Arc::new(|_| nip11_document())
    }

    fn only(addr: SocketAddr) -> Egress {
        Egress::new(EgressPolicy::strict().allowing(AllowEntry::Socket(addr)))
    }

    fn request() -> GetRequest {
        GetRequest::new(NIP11_MEDIA_TYPE, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn a_get_follows_allowed_redirects_and_reads_the_body() {
        let (target, _) = serve_counting(document()).await;
        let (first, _) = serve_counting(redirect_to(format!("http://{target}/doc"))).await;
        let egress = Egress::new(EgressPolicy::strict()).with_resolver(Arc::new(
            StaticResolver::new().with("relay.example", [first.ip()]),
        ));
        let egress = Egress::new(
            egress
                .policy()
                .clone()
                .allowing(AllowEntry::Socket(first))
                .allowing(AllowEntry::Socket(target)),
        )
        .with_resolver(Arc::clone(egress.resolver()));
        let url = Url::parse(&format!("http://relay.example:{}/", first.port())).unwrap();
        let answer = get(&egress, &url, &request()).await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.url.as_str(), format!("http://{target}/doc"));
        assert_eq!(answer.body, NIP11_DOC.as_bytes());
    }

    #[tokio::test]
    async fn a_redirect_to_a_denied_address_is_refused_without_connecting_there() {
        let (internal, internal_connections) = serve_counting(document()).await;
        let (first, _) = serve_counting(redirect_to(format!("http://{internal}/secret"))).await;
        let url = Url::parse(&format!("http://{first}/")).unwrap();
        match get(&only(first), &url, &request()).await {
            Err(Error::EgressDenied { denied, .. }) => assert_eq!(denied.addr, internal),
            other => panic!("expected EgressDenied, got {other:?}"),
        }
        // A name resolving there is refused the same way.
        let egress = only(first).with_resolver(Arc::new(
            StaticResolver::new().with("internal.example", [internal.ip()]),
        ));
        let (named, _) = serve_counting(redirect_to(format!(
            "http://internal.example:{}/",
            internal.port()
        )))
        .await;
        let egress = Egress::new(egress.policy().clone().allowing(AllowEntry::Socket(named)))
            .with_resolver(Arc::clone(egress.resolver()));
        let url = Url::parse(&format!("http://{named}/")).unwrap();
        let error = get(&egress, &url, &request()).await.unwrap_err();
        assert!(error.egress_denied().is_some(), "{error:?}");
        assert_eq!(internal_connections.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn redirects_downgrading_too_many_or_unusable_are_refused() {
        let secure = Url::parse("https://relay.example/a").unwrap();
        assert_eq!(
            next_hop(&secure, "http://relay.example/b", 0, 3),
            Err(RedirectRefusal::Downgrade)
        );
        assert_eq!(
            next_hop(&secure, "/b", 0, 3).unwrap().as_str(),
            "https://relay.example/b"
        );
        assert_eq!(
            next_hop(&secure, "https://other.example/", 3, 3),
            Err(RedirectRefusal::TooMany(3))
        );

        let (looping, _) = serve_counting(redirect_to("/again".to_owned())).await;
        let url = Url::parse(&format!("http://{looping}/")).unwrap();
        assert!(matches!(
            get(&local(), &url, &request()).await,
            Err(Error::Redirect {
                reason: RedirectRefusal::TooMany(MAX_REDIRECTS),
                ..
            })
        ));
        let (bad, _) = serve_counting(redirect_to("ftp://files.example/x".to_owned())).await;
        let url = Url::parse(&format!("http://{bad}/")).unwrap();
        assert!(matches!(
            get(&local(), &url, &request()).await,
            Err(Error::Redirect {
                reason: RedirectRefusal::BadLocation(_),
                ..
            })
        ));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_and_other_statuses_have_no_body() {
        let (addr, _) = serve_counting(document()).await;
        let url = Url::parse(&format!("http://{addr}/")).unwrap();
        let mut small = request();
        small.max_bytes = 4;
        assert!(matches!(
            get(&local(), &url, &small).await,
            Err(Error::TooLarge { limit: 4, .. })
        ));
        let (missing, _) = serve_counting(Arc::new(|_| not_found())).await;
        let url = Url::parse(&format!("http://{missing}/")).unwrap();
        let answer = get(&local(), &url, &request()).await.unwrap();
        assert_eq!((answer.status, answer.body.len()), (404, 0));
    }

    #[tokio::test]
    async fn a_denied_relay_is_an_egress_error() {
        let (addr, accepted) = serve_counting(document()).await;
        let error = probe(&Egress::default(), &format!("ws://{addr}"), PROBE_TIMEOUT)
            .await
            .unwrap_err();
        assert!(error.egress_denied().is_some(), "{error:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
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
