//! The limits: filters per `REQ`, values per filter, subscriptions per
//! connection, subscription id length, message size, connections per
//! address; and the NIP-11 document that states them.

use serde_json::json;

use crate::support::{config, serve, Raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_a_limit_are_closed_with_a_reason() {
    let mut relay = config();
    relay.max_filters = 2;
    relay.max_subscriptions = 2;
    relay.max_filter_values = 3;
    relay.max_subid_length = 8;
    let served = serve("bigbrotr", relay, &[]).await;
    let mut raw = Raw::connect(&served.url()).await;

    let (_, end) = raw.req("three", &[json!({}), json!({}), json!({})]).await;
    assert_eq!(
        end,
        json!(["CLOSED", "three", "blocked: at most 2 filters in a REQ"])
    );
    let (_, end) = raw.req("values", &[json!({"kinds": [1, 2, 3, 4]})]).await;
    assert_eq!(
        end,
        json!([
            "CLOSED",
            "values",
            "blocked: a filter lists more than 3 kinds"
        ])
    );
    let (_, end) = raw.req("search", &[json!({"search": "nostr"})]).await;
    assert_eq!(
        end,
        json!([
            "CLOSED",
            "search",
            "unsupported: search (NIP-50) is not supported"
        ])
    );
    let (_, end) = raw.req("a-very-long-id", &[json!({})]).await;
    assert_eq!(
        end,
        json!([
            "CLOSED",
            "a-very-long-id",
            "invalid: subscription id longer than 8 characters"
        ])
    );
    for id in ["one", "two"] {
        let (_, end) = raw.req(id, &[json!({})]).await;
        assert_eq!(end, json!(["EOSE", id]));
    }
    let (_, end) = raw.req("three", &[json!({})]).await;
    assert_eq!(
        end,
        json!([
            "CLOSED",
            "three",
            "rate-limited: at most 2 subscriptions at once"
        ])
    );
    // The same id replaces its subscription; a closed one frees its place.
    let (_, end) = raw.req("two", &[json!({"kinds": [1]})]).await;
    assert_eq!(end, json!(["EOSE", "two"]));
    raw.send(&json!(["CLOSE", "one"])).await;
    let (_, end) = raw.req("three", &[json!({})]).await;
    assert_eq!(end, json!(["EOSE", "three"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_size_limit_ends_the_connection() {
    let mut relay = config();
    relay.max_message_bytes = 2048;
    let served = serve("bigbrotr", relay, &[]).await;
    let mut raw = Raw::connect(&served.url()).await;
    let big = json!(["REQ", "big", {"#t": ["x".repeat(4096)]}]).to_string();
    let _ = raw.send_text(big).await;
    assert_eq!(raw.next().await, None, "the relay closed the connection");
    // Others are served as before.
    let mut other = Raw::connect(&served.url()).await;
    let (_, end) = other.req("small", &[json!({})]).await;
    assert_eq!(end, json!(["EOSE", "small"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_per_address_are_refused() {
    let mut relay = config();
    relay.max_connections_per_ip = 2;
    let served = serve("bigbrotr", relay, &[]).await;
    let mut first = Raw::connect(&served.url()).await;
    let _second = Raw::connect(&served.url()).await;
    let third = tokio_tungstenite::connect_async(served.url()).await;
    assert!(
        third.is_err(),
        "a third connection from 127.0.0.1 was served"
    );
    let (_, end) = first.req("still", &[json!({})]).await;
    assert_eq!(end, json!(["EOSE", "still"]));
    drop(first);
    // A place frees when a connection ends.
    let mut again = None;
    for _ in 0..50 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(served.url()).await {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "no place freed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nip11_document_states_the_real_limits() {
    let mut relay = config();
    relay.max_limit = 321;
    let served = serve("bigbrotr", relay, &[]).await;
    let url = format!("http://{}", served.address());
    let client = reqwest::Client::new();
    let response = client
        .get(&url)
        .header("Accept", "application/nostr+json")
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/nostr+json");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let document: serde_json::Value =
        serde_json::from_str(&response.text().await.expect("body")).expect("JSON");
    assert_eq!(document["supported_nips"], json!([1, 11, 45, 77]));
    assert_eq!(document["limitation"]["max_limit"], 321);
    // nostr's own type reads it.
    let parsed: nostr::nips::nip11::RelayInformationDocument =
        serde_json::from_value(document).expect("a NIP-11 document");
    assert_eq!(parsed.name.as_deref(), Some("BigBrotr archive"));
    let page = client.get(&url).send().await.expect("answered");
    assert!(page
        .text()
        .await
        .expect("text")
        .contains("read-only Nostr relay"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let mut relay = config();
    relay.idle_timeout = std::time::Duration::from_millis(300);
    let served = serve("bigbrotr", relay, &[]).await;
    let mut raw = Raw::connect(&served.url()).await;
    // Not reading, the client answers no ping.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // `next` fails the test when nothing comes within 20 s: the relay ended
    // the connection, sending nothing before.
    assert_eq!(raw.next().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_the_time_limit_is_closed_and_the_connection_goes_on() {
    let mut relay = config();
    relay.query_timeout = std::time::Duration::from_millis(10);
    let served = serve("bigbrotr", relay, &[]).await;
    // Rows enough that counting them takes longer than 10 ms.
    served
        .brotr
        .pool()
        .execute(
            "INSERT INTO events (id, pubkey, created_at, kind, tags, content, sig) \
             SELECT sha256(int8send(i)), sha256(int8send(i % 1000)), i, 1, '[]', '', \
                    decode(repeat('00', 64), 'hex') \
             FROM generate_series(1, 600000) AS i",
            &[],
        )
        .await
        .expect("rows");
    let mut raw = Raw::connect(&served.url()).await;
    raw.send(&json!(["COUNT", "slow", {"kinds": [1, 2]}])).await;
    assert_eq!(
        raw.until(&["COUNT", "CLOSED"]).await,
        [json!([
            "CLOSED",
            "slow",
            "error: the query ran past 10 ms; narrow the filter"
        ])]
    );
    let (events, end) = raw.req("quick", &[json!({"ids": ["00".repeat(32)]})]).await;
    assert!(events.is_empty());
    assert_eq!(end, json!(["EOSE", "quick"]));
}
