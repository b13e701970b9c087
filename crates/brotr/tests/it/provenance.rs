//! Provenance: the relays an event was seen on, and a relay with its latest
//! check.

use bigbrotr_brotr::{LatestCheck, Network, RelayMetadata, RelayReport, Sighting};
use nostr::{EventId, Keys};
use serde_json::json;

use crate::support::{fixture, note, IMPLEMENTATIONS};

fn sighting(url: &str, network: Network, seen_at: i64) -> Sighting {
    Sighting {
        url: url.to_owned(),
        network,
        seen_at,
    }
}

#[tokio::test]
async fn the_sightings_of_an_event_come_earliest_first_then_by_url() {
    for imp in IMPLEMENTATIONS {
        let f = fixture(imp).await;
        let urls = [
            "wss://b.example",
            "ws://abcdefghij234567.onion",
            "wss://a.example",
        ];
        let ids = f.brotr.insert_relay_batch(&urls, 1).await.unwrap();
        let event = note(&Keys::generate(), "seen three times");
        let other = note(&Keys::generate(), "seen elsewhere");
        f.brotr
            .insert_event_batch_seen(&[
                (event.clone(), ids[0], 70),
                (event.clone(), ids[1], 50),
                (event.clone(), ids[2], 70),
                (other, ids[0], 10),
            ])
            .await
            .unwrap();
        assert_eq!(
            f.brotr.event_relays(&event.id).await.unwrap(),
            [
                sighting("ws://abcdefghij234567.onion", Network::Tor, 50),
                sighting("wss://a.example", Network::Clearnet, 70),
                sighting("wss://b.example", Network::Clearnet, 70),
            ],
            "{imp}"
        );
    }
}

#[tokio::test]
async fn an_event_not_archived_has_no_sightings() {
    for imp in IMPLEMENTATIONS {
        let f = fixture(imp).await;
        let relay = f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
        f.brotr
            .insert_event(&note(&Keys::generate(), "archived"), relay, 10)
            .await
            .unwrap();
        let unknown = EventId::from_byte_array([7; 32]);
        assert_eq!(f.brotr.event_relays(&unknown).await.unwrap(), [], "{imp}");
    }
}

#[tokio::test]
async fn a_checked_relay_is_reported_with_its_latest_check_and_its_documents() {
    for imp in IMPLEMENTATIONS {
        let f = fixture(imp).await;
        let relay = f.brotr.insert_relay("wss://a.example", 100).await.unwrap();
        let nip11 = json!({"name": "newest", "supported_nips": [1, 11]});
        let nip66 = json!({"rtt_open": 120});
        let checks = [
            (200, json!({"name": "old"}), false),
            (400, nip11.clone(), true),
            (300, json!({"name": "middle"}), false),
        ]
        .map(|(generated_at, nip11, connected)| RelayMetadata {
            relay_id: relay,
            generated_at,
            connected,
            nip11: Some(nip11),
            nip66: (generated_at == 400).then(|| nip66.clone()),
        });
        f.brotr.insert_relay_metadata_batch(&checks).await.unwrap();
        assert_eq!(
            f.brotr.relay_report("wss://a.example").await.unwrap(),
            Some(RelayReport {
                url: "wss://a.example".to_owned(),
                network: Network::Clearnet,
                inserted_at: 100,
                latest_check: Some(LatestCheck {
                    generated_at: 400,
                    connected: true,
                    nip11: Some(nip11),
                    nip66: Some(nip66),
                }),
            }),
            "{imp}"
        );
    }
}

#[tokio::test]
async fn a_latest_check_without_documents_is_reported_without_them() {
    let f = fixture("bigbrotr").await;
    let relay = f.brotr.insert_relay("wss://a.example", 100).await.unwrap();
    f.brotr
        .insert_relay_metadata(relay, Some(json!({"name": "old"})), None, true, 200)
        .await
        .unwrap();
    f.brotr
        .insert_relay_metadata(relay, None, None, false, 300)
        .await
        .unwrap();
    let report = f.brotr.relay_report("wss://a.example").await.unwrap();
    assert_eq!(
        report.and_then(|report| report.latest_check),
        Some(LatestCheck {
            generated_at: 300,
            connected: false,
            nip11: None,
            nip66: None,
        })
    );
}

#[tokio::test]
async fn a_relay_never_checked_is_reported_without_a_latest_check() {
    for imp in IMPLEMENTATIONS {
        let f = fixture(imp).await;
        f.brotr
            .insert_relay("ws://abcdefghij234567.onion", 100)
            .await
            .unwrap();
        assert_eq!(
            f.brotr
                .relay_report("ws://abcdefghij234567.onion")
                .await
                .unwrap(),
            Some(RelayReport {
                url: "ws://abcdefghij234567.onion".to_owned(),
                network: Network::Tor,
                inserted_at: 100,
                latest_check: None,
            }),
            "{imp}"
        );
    }
}

#[tokio::test]
async fn an_unknown_relay_has_no_report() {
    let f = fixture("bigbrotr").await;
    f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
    assert_eq!(f.brotr.relay_report("wss://b.example").await.unwrap(), None);
    assert_eq!(f.brotr.relay_report("not a url").await.unwrap(), None);
}

#[tokio::test]
async fn a_relay_is_reported_whatever_the_spelling_of_its_url() {
    let f = fixture("bigbrotr").await;
    f.brotr
        .insert_relay("wss://relay.example.com", 1)
        .await
        .unwrap();
    for spelling in [
        "wss://RELAY.Example.COM",
        "wss://relay.example.com/",
        "WSS://relay.example.com:443/",
    ] {
        let report = f.brotr.relay_report(spelling).await.unwrap();
        assert_eq!(
            report.map(|report| report.url),
            Some("wss://relay.example.com".to_owned()),
            "{spelling}"
        );
    }
}

#[test]
fn a_report_serializes_with_its_network_name_and_documents() {
    let report = RelayReport {
        url: "wss://a.example".to_owned(),
        network: Network::Clearnet,
        inserted_at: 100,
        latest_check: Some(LatestCheck {
            generated_at: 200,
            connected: true,
            nip11: Some(json!({"name": "a"})),
            nip66: None,
        }),
    };
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        json!({
            "url": "wss://a.example",
            "network": "clearnet",
            "inserted_at": 100,
            "latest_check": {
                "generated_at": 200,
                "connected": true,
                "nip11": {"name": "a"},
                "nip66": null,
            },
        })
    );
}
