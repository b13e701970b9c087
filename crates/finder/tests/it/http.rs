//! HTTP sources served on 127.0.0.1, and cancellation.

use std::time::Duration;

use bigbrotr_finder::{
    fetch_http_source, CycleReport, Error, FinderConfig, HttpSource, Rejection, Source,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::support::{event, finder_config, finder_with, loopback_egress, sorted, Fixture};

/// A small HTTP server: `/relays.json` a list of relays (some invalid),
/// `/missing` 404, `/big` a list larger than 1 KiB, `/object` a JSON object,
/// `/slow` nothing ever. Stops when dropped.
struct Server {
    base: String,
    task: JoinHandle<()>,
}

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = serve(stream).await;
                });
            }
        });
        Self { base, task }
    }

    fn source(&self, path: &str, timeout: Duration) -> HttpSource {
        HttpSource {
            url: format!("{}{path}", self.base),
            timeout,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const RELAYS: &str = r#"["wss://http-one.example", "WSS://HTTP-ONE.example/", "wss://http-two.example/path", 42, "http://web.example", "wss://known.example"]"#;

async fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buffer = [0_u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&head);
    let path = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let big = format!("[{}]", vec!["\"wss://big.example\""; 100].join(","));
    let (status, body) = match path.as_str() {
        "/relays.json" => ("200 OK", RELAYS.to_owned()),
        "/big" => ("200 OK", big),
        "/object" => ("200 OK", r#"{"relays": []}"#.to_owned()),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Ok(());
        }
        _ => ("404 Not Found", "no".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[tokio::test]
async fn http_sources_add_their_relays_and_failures_are_counted() {
    let server = Server::start().await;
    let fixture = Fixture::new("bigbrotr").await;
    fixture.relay("wss://known.example").await;
    let short = Duration::from_millis(500);
    let config = FinderConfig {
        http_sources: vec![
            server.source("/relays.json", short),
            server.source("/missing", short),
            server.source("/big", short),
            server.source("/object", short),
            server.source("/slow", short),
        ],
        http_max_bytes: 1024,
        ..finder_config()
    };
    let finder = finder_with(&config).with_egress(loopback_egress());
    let report = finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(
        report,
        CycleReport {
            candidates: 6,
            by_source: [(Source::Http, 6)].into_iter().collect(),
            accepted: 4,
            distinct: 3,
            new: 2,
            rejected: [
                (Rejection::NotAString, 1),
                (Rejection::UnsupportedScheme, 1)
            ]
            .into_iter()
            .collect(),
            http_failures: 4,
            ..CycleReport::default()
        }
    );
    assert_eq!(
        fixture.relays().await,
        sorted(&[
            "wss://known.example",
            "wss://http-one.example",
            "wss://http-two.example/path"
        ])
    );
    // Fetched again each cycle; nothing new the second time.
    let again = finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(
        (again.candidates, again.new, again.http_failures),
        (6, 0, 4)
    );
}

#[tokio::test]
async fn each_http_failure_is_its_own_error() {
    let server = Server::start().await;
    let egress = loopback_egress();
    let short = Duration::from_millis(300);
    let fetch = |path: &str| {
        let source = server.source(path, short);
        let egress = egress.clone();
        async move { fetch_http_source(&egress, &source, 1024).await }
    };
    assert_eq!(fetch("/relays.json").await.expect("a list").len(), 6);
    assert!(matches!(
        fetch("/missing").await,
        Err(Error::HttpStatus { status: 404, .. })
    ));
    assert!(matches!(
        fetch("/big").await,
        Err(Error::HttpTooLarge { limit: 1024, .. })
    ));
    assert!(matches!(
        fetch("/object").await,
        Err(Error::HttpNotAList { source: None, .. })
    ));
    assert!(matches!(
        fetch("/slow").await,
        Err(Error::HttpTimeout { .. })
    ));
    // The strict policy refuses the loopback server without connecting.
    let strict = fetch_http_source(
        &bigbrotr_utils::Egress::default(),
        &server.source("/relays.json", short),
        1024,
    )
    .await;
    match strict {
        Err(Error::Http { source, .. }) => assert!(source.egress_denied().is_some()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_cancelled_cycle_keeps_what_it_stored_and_stops_waiting_for_http_sources() {
    let server = Server::start().await;
    let fixture = Fixture::new("bigbrotr").await;
    let source = fixture.relay("wss://source.example").await;
    let lists: Vec<_> = (0..5)
        .map(|i| event(10002, "", &[&["r", &format!("wss://r{i}.example")]], 1_000))
        .collect();
    fixture
        .archive(&lists, source, bigbrotr_utils::now_timestamp() - 100)
        .await;
    let config = FinderConfig {
        http_sources: vec![server.source("/slow", Duration::from_secs(60))],
        ..finder_config()
    };
    let finder = finder_with(&config).with_egress(loopback_egress());

    // Cancelled before it starts: nothing is read.
    let cancelled = CancellationToken::new();
    cancelled.cancel();
    let report = finder
        .run_cycle(&fixture.brotr, &cancelled)
        .await
        .expect("a cycle");
    assert_eq!(
        report,
        CycleReport {
            cancelled: true,
            ..CycleReport::default()
        }
    );
    assert_eq!(finder.cursor(&fixture.brotr).await.expect("read"), None);
    assert_eq!(fixture.relays().await, ["wss://source.example"]);

    // Cancelled while an HTTP source keeps it waiting: the archive was
    // scanned and its relays recorded, and the cycle ends at once.
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let report = finder
        .run_cycle(&fixture.brotr, &cancel)
        .await
        .expect("a cycle");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(report.cancelled);
    assert_eq!(
        (report.sightings, report.new, report.http_failures),
        (5, 5, 0)
    );
    assert!(finder.cursor(&fixture.brotr).await.expect("read").is_some());
    assert_eq!(fixture.relays().await.len(), 6);
}

/// A listener that counts the connections it accepts and answers none.
async fn counting_listener() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("an address");
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn a_source_redirecting_to_an_address_outside_the_policy_is_refused_at_that_hop() {
    let (internal, internal_connections) = counting_listener().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let redirector = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0_u8; 1024];
            let _ = stream.read(&mut buffer).await;
            let response = format!(
                "HTTP/1.1 302 Found\r\nlocation: http://{internal}/relays.json\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    let egress = bigbrotr_utils::Egress::new(
        bigbrotr_utils::EgressPolicy::strict()
            .allowing(bigbrotr_utils::AllowEntry::Socket(redirector)),
    );
    let source = HttpSource {
        url: format!("http://{redirector}/list"),
        timeout: Duration::from_secs(5),
    };
    match fetch_http_source(&egress, &source, 1024).await {
        Err(Error::Http { source, .. }) => {
            assert_eq!(source.egress_denied().map(|d| d.addr), Some(internal));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        internal_connections.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}
