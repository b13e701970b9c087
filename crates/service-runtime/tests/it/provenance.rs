//! `/events/<id>/relays` and `/relays/<url>` of a runtime on the real pool:
//! JSON answers, errors included.

use std::net::SocketAddr;
use std::time::Duration;

use bigbrotr_service_runtime::Runtime;
use bigbrotr_test_support::TestDb;
use nostr_sdk::{Event, EventBuilder, Keys};
use serde_json::{json, Value};

use crate::support::{get, runtime_on, settings};

const JSON: &str = "application/json";

/// A runtime on a fresh `bigbrotr` database, serving on a free port.
async fn serving() -> (TestDb, Runtime, SocketAddr) {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    let mut runtime = runtime_on(&db, settings(Duration::from_secs(5))).await;
    let address = runtime.serve_http().await.unwrap().expect("enabled");
    (db, runtime, address)
}

/// The status, `Content-Type` and body, as JSON, of a `GET` of `path`.
async fn get_json(address: SocketAddr, path: &str) -> (u16, String, Value) {
    let (status, content_type, body) = get(address, path).await;
    let body = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, content_type, body)
}

fn note(content: &str) -> Event {
    EventBuilder::text_note(content)
        .sign_with_keys(&Keys::generate())
        .expect("signed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relays_of_an_archived_event_are_answered_earliest_first() {
    let (_db, mut runtime, address) = serving().await;
    let brotr = runtime.brotr();
    let ids = brotr
        .insert_relay_batch(&["wss://b.example", "ws://abcdefghij234567.onion"], 1)
        .await
        .unwrap();
    let event = note("seen twice");
    brotr
        .insert_event_batch_seen(&[(event.clone(), ids[0], 200), (event.clone(), ids[1], 100)])
        .await
        .unwrap();
    let id = event.id.to_hex();
    assert_eq!(
        get_json(address, &format!("/events/{id}/relays")).await,
        (
            200,
            JSON.to_owned(),
            json!({
                "id": id,
                "relays": [
                    {"url": "ws://abcdefghij234567.onion", "network": "tor", "seen_at": 100},
                    {"url": "wss://b.example", "network": "clearnet", "seen_at": 200},
                ],
            })
        )
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_event_whose_relays_were_deleted_is_answered_with_no_relays() {
    let (db, mut runtime, address) = serving().await;
    let relay = runtime
        .brotr()
        .insert_relay("wss://gone.example", 1)
        .await
        .unwrap();
    let event = note("its relay is gone");
    runtime
        .brotr()
        .insert_event(&event, relay, 10)
        .await
        .unwrap();
    let client = db.client().await.expect("a connection");
    client
        .execute("DELETE FROM relays WHERE url = 'wss://gone.example'", &[])
        .await
        .expect("the relay deleted");
    let id = event.id.to_hex();
    assert_eq!(
        get_json(address, &format!("/events/{id}/relays")).await,
        (200, JSON.to_owned(), json!({"id": id, "relays": []}))
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_not_archived_is_a_404_and_a_malformed_id_a_400() {
    let (_db, mut runtime, address) = serving().await;
    let unknown = "07".repeat(32);
    assert_eq!(
        get_json(address, &format!("/events/{unknown}/relays")).await,
        (
            404,
            JSON.to_owned(),
            json!({"error": format!("event {unknown} is not archived")})
        )
    );
    for id in [
        "xyz".to_owned(),
        "07".repeat(31) + "0",
        "07".repeat(33),
        "zz".repeat(32),
        "note1qqqq".to_owned(),
    ] {
        assert_eq!(
            get_json(address, &format!("/events/{id}/relays")).await,
            (
                400,
                JSON.to_owned(),
                json!({"error": "an event id is 64 hexadecimal digits"})
            ),
            "{id}"
        );
    }
    // Not a provenance path.
    assert_eq!(get(address, &format!("/events/{unknown}")).await.0, 404);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_is_answered_with_its_latest_check_whether_its_url_is_percent_encoded_or_plain() {
    let (_db, mut runtime, address) = serving().await;
    let brotr = runtime.brotr();
    let relay = brotr
        .insert_relay("wss://relay.example.com", 100)
        .await
        .unwrap();
    let nip11 = json!({"name": "example", "supported_nips": [1, 11]});
    let nip66 = json!({"rtt_open": 120});
    brotr
        .insert_relay_metadata(relay, None, None, false, 200)
        .await
        .unwrap();
    brotr
        .insert_relay_metadata(relay, Some(nip11.clone()), Some(nip66.clone()), true, 300)
        .await
        .unwrap();
    let expected = json!({
        "url": "wss://relay.example.com",
        "network": "clearnet",
        "inserted_at": 100,
        "latest_check": {
            "generated_at": 300,
            "connected": true,
            "nip11": nip11,
            "nip66": nip66,
        },
    });
    for path in [
        "/relays/wss%3A%2F%2Frelay.example.com",
        "/relays/wss%3a%2f%2fRELAY.Example.com%2F",
        "/relays/wss://relay.example.com",
        "/relays/wss://relay.example.com/",
    ] {
        assert_eq!(
            get_json(address, path).await,
            (200, JSON.to_owned(), expected.clone()),
            "{path}"
        );
    }
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_never_checked_is_answered_without_a_latest_check() {
    let (_db, mut runtime, address) = serving().await;
    runtime
        .brotr()
        .insert_relay("ws://abcdefghij234567.onion", 100)
        .await
        .unwrap();
    assert_eq!(
        get_json(address, "/relays/ws%3A%2F%2Fabcdefghij234567.onion").await,
        (
            200,
            JSON.to_owned(),
            json!({
                "url": "ws://abcdefghij234567.onion",
                "network": "tor",
                "inserted_at": 100,
                "latest_check": null,
            })
        )
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_relay_is_a_404_and_an_undecodable_url_a_400() {
    let (_db, mut runtime, address) = serving().await;
    runtime
        .brotr()
        .insert_relay("wss://relay.example.com", 1)
        .await
        .unwrap();
    assert_eq!(
        get_json(address, "/relays/wss%3A%2F%2Fnope.example").await,
        (
            404,
            JSON.to_owned(),
            json!({"error": "no relay is recorded under wss://nope.example"})
        )
    );
    for path in [
        "/relays/wss%3A%2F%2Frelay%ZZ",
        "/relays/wss%3",
        "/relays/%FF",
    ] {
        assert_eq!(
            get_json(address, path).await,
            (
                400,
                JSON.to_owned(),
                json!({"error": "the relay URL is not validly percent-encoded UTF-8"})
            ),
            "{path}"
        );
    }
    assert_eq!(
        get_json(address, "/relays/").await,
        (
            400,
            JSON.to_owned(),
            json!({"error": "no relay URL: ask for /relays/<url>"})
        )
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_that_cannot_answer_is_a_503() {
    let (_db, mut runtime, address) = serving().await;
    runtime.brotr().pool().disconnect(Duration::ZERO).await;
    let unavailable = (
        503,
        JSON.to_owned(),
        json!({"error": "the archive could not answer; try again later"}),
    );
    let id = "07".repeat(32);
    assert_eq!(
        get_json(address, &format!("/events/{id}/relays")).await,
        unavailable
    );
    assert_eq!(
        get_json(address, "/relays/wss%3A%2F%2Frelay.example.com").await,
        unavailable
    );
    runtime.shutdown().await;
}
