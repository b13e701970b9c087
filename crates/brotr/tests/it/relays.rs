//! Relays: normalised, recorded once, ids returned in input order.

use bigbrotr_brotr::{Error, Network, RelayId};
use bigbrotr_config::BrotrConfig;

use crate::support::{fixture, fixture_with, IMPLEMENTATIONS};

#[tokio::test]
async fn relays_get_one_row_per_normalised_url_and_ids_in_input_order() {
    for imp in IMPLEMENTATIONS {
        let f = fixture(imp).await;
        let urls = [
            "wss://Relay.One.example/",
            "wss://relay.two.example",
            "wss://relay.one.example:443?x=1",
            "ws://abcdefghij234567.onion",
        ];
        let ids = f.brotr.insert_relay_batch(&urls, 100).await.unwrap();
        assert_eq!(ids.len(), 4, "{imp}");
        assert_eq!(ids[0], ids[2], "{imp}");
        assert_ne!(ids[0], ids[1], "{imp}");
        assert_ne!(ids[1], ids[3], "{imp}");
        assert_eq!(f.count("relays").await, 3, "{imp}");

        let one = f
            .brotr
            .get_relay_by_url("WSS://relay.one.example#frag")
            .await
            .unwrap()
            .expect("relay one");
        assert_eq!(one.id, ids[0]);
        assert_eq!(one.url, "wss://relay.one.example");
        assert_eq!(one.network, Network::Clearnet);
        assert_eq!(one.inserted_at, 100);
        let tor = f
            .brotr
            .get_relay_by_url("ws://abcdefghij234567.onion")
            .await
            .unwrap()
            .expect("tor relay");
        assert_eq!((tor.id, tor.network), (ids[3], Network::Tor));
    }
}

#[tokio::test]
async fn inserting_known_relays_again_returns_the_same_ids_and_keeps_inserted_at() {
    for imp in IMPLEMENTATIONS {
        let f = fixture(imp).await;
        let first = f.brotr.insert_relay("wss://a.example", 100).await.unwrap();
        let again = f
            .brotr
            .insert_relay_batch(&["wss://b.example", "wss://a.example/"], 200)
            .await
            .unwrap();
        assert_eq!(again[1], first, "{imp}");
        assert_eq!(f.count("relays").await, 2, "{imp}");
        let a = f.brotr.get_relay_by_url("wss://a.example").await.unwrap();
        assert_eq!(a.map(|r| r.inserted_at), Some(100), "{imp}");
    }
}

#[tokio::test]
async fn relay_exists_answers_for_any_spelling_of_a_recorded_relay() {
    let f = fixture("bigbrotr").await;
    f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
    assert!(f.brotr.relay_exists("wss://A.example:443/").await.unwrap());
    assert!(!f.brotr.relay_exists("wss://b.example").await.unwrap());
    assert!(!f.brotr.relay_exists("not a url").await.unwrap());
    assert_eq!(
        f.brotr.get_relay_by_url("wss://b.example").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_relay_batch_larger_than_batch_size_is_split_and_keeps_the_order() {
    let config = BrotrConfig {
        batch_size: 3,
        ..BrotrConfig::default()
    };
    let f = fixture_with("bigbrotr", config).await;
    let urls: Vec<String> = (0..10).map(|i| format!("wss://r{i}.example")).collect();
    let ids = f.brotr.insert_relay_batch(&urls, 1).await.unwrap();
    assert_eq!(f.count("relays").await, 10);
    for (url, id) in urls.iter().zip(&ids) {
        let relay = f.brotr.get_relay_by_url(url).await.unwrap().unwrap();
        assert_eq!(relay.id, *id, "{url}");
    }
}

#[tokio::test]
async fn an_invalid_url_fails_the_whole_batch_and_stores_nothing() {
    let f = fixture("bigbrotr").await;
    let result = f
        .brotr
        .insert_relay_batch(&["wss://ok.example", "http://web.example"], 1)
        .await;
    let Err(Error::InvalidRelayUrl { index: 1, url, .. }) = result else {
        panic!("expected InvalidRelayUrl at 1, got {result:?}");
    };
    assert_eq!(url, "http://web.example");
    assert_eq!(f.count("relays").await, 0);
}

#[tokio::test]
async fn without_relay_validation_urls_are_stored_as_given() {
    let config = BrotrConfig {
        enable_relay_validation: false,
        ..BrotrConfig::default()
    };
    let f = fixture_with("bigbrotr", config).await;
    let ids = f
        .brotr
        .insert_relay_batch(&["wss://A.example/", "wss://a.example", "ws://x.onion/"], 1)
        .await
        .unwrap();
    assert_ne!(ids[0], ids[1]);
    let raw = f
        .brotr
        .get_relay_by_url("wss://A.example/")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw.url, "wss://A.example/");
    let tor = f
        .brotr
        .get_relay_by_url("ws://x.onion/")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tor.network, Network::Tor);
    // The database still refuses what is not a WebSocket URL at all.
    let refused = f.brotr.insert_relay("garbage", 1).await;
    assert!(
        matches!(refused, Err(Error::Database { .. })),
        "{refused:?}"
    );
    assert_eq!(f.count("relays").await, 3);
    assert!(ids.iter().all(|id| id.get() > 0 && *id != RelayId(0)));
}
