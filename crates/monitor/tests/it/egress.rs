//! The egress policy: relays it refuses are stored refused, with the reason,
//! and never connected to, whatever name or redirect leads there.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bigbrotr_config::NostrConfig;
use bigbrotr_monitor::Monitor;
use bigbrotr_utils::{AllowEntry, Egress, EgressPolicy, StaticResolver};
use nostr::Keys;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::support::{monitor_config, Fixture};

/// A listener standing for an internal service: it counts the connections
/// it accepts and answers none.
async fn internal_service() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("an address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (addr, accepted)
}

/// A web server answering every request with a redirect to `location`.
async fn redirector(location: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let location = location.clone();
            tokio::spawn(async move {
                let mut buffer = [0_u8; 2048];
                let _ = stream.read(&mut buffer).await;
                let response = format!(
                    "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

fn monitor(egress: Egress) -> Monitor {
    Monitor::new(&monitor_config(), &NostrConfig::default(), Keys::generate())
        .expect("a valid monitor")
        .with_egress(egress)
}

#[tokio::test]
async fn a_relay_whose_name_resolves_to_a_denied_address_is_stored_refused_without_a_connection() {
    let (internal, accepted) = internal_service().await;
    let egress = Egress::default().with_resolver(Arc::new(
        StaticResolver::new().with("relay.attacker.example", [internal.ip()]),
    ));
    let monitor = monitor(egress);
    let url = format!("ws://relay.attacker.example:{}", internal.port());

    let check = monitor.check_relay(&url).await;
    assert!(!check.connected);
    let reason = check.egress_denied.clone().expect("refused");
    assert!(reason.contains("loopback"), "{reason}");
    assert_eq!(check.nip11, None);

    let fixture = Fixture::new().await;
    fixture.relay(&url).await;
    let report = monitor
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(report.total().checked, 1);
    let stored = fixture.only_check(&url).await;
    assert!(!stored.connected);
    assert_eq!(stored.nip11, None);
    assert_eq!(
        stored.nip66,
        Some(json!({"network": "clearnet", "egress_denied": reason}))
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_nip11_redirect_to_a_denied_address_is_refused_and_nothing_is_stored() {
    let (internal, accepted) = internal_service().await;
    let relay = redirector(format!("http://{internal}/")).await;
    // The relay's own address and port are allowed, nothing else.
    let egress = Egress::new(EgressPolicy::strict().allowing(AllowEntry::Socket(relay)));
    let mut config = monitor_config();
    config.checks.open = false;
    config.checks.read = false;
    config.checks.write = false;
    let monitor = Monitor::new(&config, &NostrConfig::default(), Keys::generate())
        .expect("a valid monitor")
        .with_egress(egress);
    let url = format!("ws://{relay}");

    let check = monitor.check_relay(&url).await;
    assert_eq!(check.egress_denied, None, "the relay itself is allowed");
    assert_eq!(check.nip11, None);
    let error = check.nip11_error.clone().expect("a reason");
    assert!(
        error.contains("refused") && error.contains("loopback"),
        "{error}"
    );

    let fixture = Fixture::new().await;
    fixture.relay(&url).await;
    monitor
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    let stored = fixture.only_check(&url).await;
    assert_eq!(stored.nip11, None);
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}
