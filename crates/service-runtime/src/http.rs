//! The HTTP endpoint: `/health/live`, `/health/ready` (and `/health`),
//! `/status`, `/metrics` and the provenance endpoints `/events/<id>/relays`
//! and `/relays/<url>` on a local address, served with `hyper`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use crate::process_status::ProcessState;
use crate::provenance::{self, Query};
use crate::service::TARGET;
use crate::serving::Serving;

/// Longest wait for the headers of a request.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The endpoint, serving until [`shutdown`](Self::shutdown) or drop.
///
/// | path | answer |
/// | --- | --- |
/// | `/health/live` | `200 live` while the process answers |
/// | `/health/ready`, `/health` | `200 ready` when [`ProcessState::readiness`] finds nothing wrong, else `503 not ready` and what it found, one a line |
/// | `/status` | the [`ProcessStatus`](crate::ProcessStatus) as JSON |
/// | `/metrics` | the Prometheus text format |
/// | `/events/<id>/relays` | the relays the event `<id>` (64 hexadecimal digits) was seen on, with when, earliest first, as JSON: `{"id": …, "relays": [{"url": …, "network": …, "seen_at": …}, …]}`; `404` when the event is not archived, `400` when `<id>` is not an event id |
/// | `/relays/<url>` | the relay recorded under `<url>` (percent-encoded or written plainly, in any spelling that normalises alike) and its latest check as JSON: `url`, `network`, `inserted_at`, `latest_check` (`generated_at`, `connected`, `nip11`, `nip66`; `null` when never checked); `404` when unknown, `400` when `<url>` does not decode |
///
/// The provenance answers are JSON, errors included (`{"error": …}`); when
/// the archive cannot answer they are `503`, logged. Other paths are `404`;
/// methods other than `GET` and `HEAD` are `405`.
#[derive(Debug)]
pub struct HttpServer(Serving);

impl HttpServer {
    /// Listens on `address` (port 0 takes a free one) and serves what
    /// `state` reports.
    pub async fn bind(address: SocketAddr, state: Arc<ProcessState>) -> Result<Self> {
        let bind_error = |source| Error::Bind { address, source };
        let listener = TcpListener::bind(address).await.map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let cancel = CancellationToken::new();
        let serve = serve(listener, state, cancel.clone());
        Ok(Self(Serving::spawn(address, cancel, serve)))
    }

    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Stops listening and closes every connection.
    pub async fn shutdown(self) {
        self.0.shutdown().await;
    }
}

async fn serve(listener: TcpListener, state: Arc<ProcessState>, cancel: CancellationToken) {
    let connections = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(target: TARGET, %error, "could not accept an HTTP connection");
                    // Out of file descriptors, most likely: let some close.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let state = Arc::clone(&state);
        let cancel = cancel.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(respond(&state, &request).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = connection => {
                    if let Err(error) = result {
                        tracing::debug!(target: TARGET, %error, "HTTP connection ended with an error");
                    }
                }
                () = cancel.cancelled() => {}
            }
        });
    }
    connections.close();
    connections.wait().await;
}

async fn respond(state: &ProcessState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match request.uri().path() {
        "/health/live" => text(StatusCode::OK, "live\n"),
        "/health/ready" | "/health" => {
            let problems = state.readiness().await;
            if problems.is_empty() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, &not_ready(&problems))
            }
        }
        "/status" => match serde_json::to_vec(&state.status()) {
            Ok(body) => with_type(StatusCode::OK, body, "application/json"),
            Err(error) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("could not write the status: {error}\n"),
            ),
        },
        "/metrics" => with_type(
            StatusCode::OK,
            state.render_metrics().into_bytes(),
            METRICS_CONTENT_TYPE,
        ),
        path => match Query::of_path(path) {
            Some(query) => {
                let (status, body) = provenance::answer(state.brotr(), query).await;
                with_type(status, body, "application/json")
            }
            None => text(
                StatusCode::NOT_FOUND,
                "not found: try /health/live, /health/ready, /status, /metrics, \
                 /events/<id>/relays or /relays/<url>\n",
            ),
        },
    }
}

/// The body of a `503`: `not ready`, then each problem on a line of its
/// own.
fn not_ready(problems: &[String]) -> String {
    let mut body = "not ready\n".to_owned();
    for problem in problems {
        body.push_str("- ");
        body.push_str(&problem.replace('\n', " "));
        body.push('\n');
    }
    body
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    with_type(
        status,
        body.as_bytes().to_vec(),
        "text/plain; charset=utf-8",
    )
}

fn with_type(
    status: StatusCode,
    body: Vec<u8>,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
