//! Discovery cycles over the archive: exactly the expected relays from a
//! fixture of relay lists, contact lists, relay hints and NIP-66 events, the
//! cursor, late arrivals, paging, and what `lilbrotr` can find.

use std::collections::BTreeMap;

use bigbrotr_finder::{CycleReport, FinderConfig, Rejection, Source};
use nostr::{Event, Keys};
use tokio_util::sync::CancellationToken;

use crate::support::{event, finder_config, finder_with, sorted, Fixture};

/// The relay every fixture event was first seen on.
const SOURCE: &str = "wss://source.example";
/// The relay where one fixture event (a relay list) was seen again later.
const SOURCE2: &str = "wss://source2.example";

/// The relays the bigbrotr fixture mentions that are not known beforehand.
const NEW_RELAYS: [&str; 8] = [
    "wss://alpha.example",
    "wss://beta.example",
    "wss://gamma.example/nostr",
    "wss://delta.example",
    "wss://epsilon.example",
    "wss://zeta.example",
    "wss://eta.example",
    "wss://theta.example",
];

/// Kind 10002 (with markers, duplicates written differently, invalid and
/// local URLs, a known relay and one too long), kind 3 (a relay map, and one
/// malformed), kind 1 with relay hints, kind 30166, and a kind 7 with a
/// hint, which the default kinds do not read.
fn fixture_events() -> Vec<Event> {
    let id = "a".repeat(64);
    let pubkey = Keys::generate().public_key().to_hex();
    let long = format!("wss://long.example/{}", "a".repeat(300));
    let created_at = 1_700_000_000;
    vec![
        event(
            10002,
            "",
            &[
                &["r", "wss://alpha.example"],
                &["r", "wss://Beta.Example:443/", "read"],
                &["r", "wss://beta.example", "write"],
                &["r", "https://not-a-relay.example"],
                &["r", "not a url"],
                &["r", "ws://127.0.0.1:7777"],
                &["r", SOURCE],
                &["r", long.as_str()],
            ],
            created_at,
        ),
        event(
            10002,
            "",
            &[
                &["r", "WSS://ALPHA.example/"],
                &["r", "wss://gamma.example/nostr"],
            ],
            created_at,
        ),
        event(
            3,
            r#"{"wss://delta.example/":{"read":true,"write":true},"wss://alpha.example":{"read":true,"write":false},"ftp://files.example":{}}"#,
            &[&["p", pubkey.as_str()]],
            created_at,
        ),
        event(3, "not json", &[&["p", pubkey.as_str()]], created_at),
        event(
            1,
            "hello",
            &[
                &["e", id.as_str(), "wss://epsilon.example"],
                &["p", pubkey.as_str(), "wss://zeta.example/"],
                &["p", pubkey.as_str()],
                &["e", id.as_str(), ""],
            ],
            created_at,
        ),
        event(
            30166,
            "{}",
            &[&["d", "wss://eta.example"], &["n", "clearnet"]],
            created_at,
        ),
        event(30166, "", &[&["d", "wss://THETA.example:443"]], created_at),
        event(
            7,
            "+",
            &[&["e", id.as_str(), "wss://iota.example"]],
            created_at,
        ),
    ]
}

/// Archives the fixture: every event seen on [`SOURCE`] at `seen_at`, and
/// the second relay list seen again on [`SOURCE2`] ten seconds later.
async fn archive_fixture(fixture: &Fixture, seen_at: i64) -> Vec<Event> {
    let events = fixture_events();
    let source = fixture.relay(SOURCE).await;
    let source2 = fixture.relay(SOURCE2).await;
    fixture.archive(&events, source, seen_at).await;
    fixture.archive(&events[1..2], source2, seen_at + 10).await;
    events
}

fn counts<K: Ord, const N: usize>(items: [(K, u64); N]) -> BTreeMap<K, u64> {
    items.into_iter().collect()
}

fn the_bigbrotr_report() -> CycleReport {
    CycleReport {
        sightings: 9,
        candidates: 17,
        by_source: counts([
            (Source::RelayList, 10),
            (Source::ContactList, 3),
            (Source::Hint, 2),
            (Source::Nip66, 2),
        ]),
        accepted: 12,
        distinct: 9,
        new: 8,
        rejected: counts([
            (Rejection::NotAUrl, 1),
            (Rejection::UnsupportedScheme, 2),
            (Rejection::TooLong, 1),
            (Rejection::LocalAddress, 1),
            (Rejection::MalformedContactList, 1),
        ]),
        http_failures: 0,
        cancelled: false,
    }
}

fn now() -> i64 {
    bigbrotr_utils::now_timestamp()
}

#[tokio::test]
async fn bigbrotr_finds_exactly_the_new_relays_of_the_fixture_once() {
    let fixture = Fixture::new("bigbrotr").await;
    let seen_at = now() - 1000;
    archive_fixture(&fixture, seen_at).await;
    let finder = finder_with(&finder_config());
    assert_eq!(finder.cursor(&fixture.brotr).await.expect("read"), None);

    let report = finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(report, the_bigbrotr_report());
    let mut expected = NEW_RELAYS.to_vec();
    expected.extend([SOURCE, SOURCE2]);
    assert_eq!(fixture.relays().await, sorted(&expected));

    // The cursor is past everything: the next cycle reads nothing.
    let cursor = finder.cursor(&fixture.brotr).await.expect("read");
    assert_eq!(cursor.map(|c| c.seen_at), Some(seen_at + 10));
    let again = finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(again, CycleReport::default());
    assert_eq!(fixture.relays().await, sorted(&expected));
}

#[tokio::test]
async fn events_archived_later_are_found_by_the_next_cycle_even_with_an_old_created_at() {
    let fixture = Fixture::new("bigbrotr").await;
    let events = archive_fixture(&fixture, now() - 1000).await;
    let finder = finder_with(&finder_config());
    let first = finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(first.new, 8);

    // Created long before everything scanned so far, archived now; and a
    // known event seen again on another relay, which is not read twice.
    let late = [
        event(10002, "", &[&["r", "wss://late.example/"]], 1_000),
        event(30166, "", &[&["d", "wss://late-monitor.example"]], 5),
        event(10002, "", &[&["r", "wss://alpha.example"]], 2_000),
    ];
    let source = fixture.relay(SOURCE).await;
    let source3 = fixture.relay("wss://source3.example").await;
    fixture.archive(&late, source, now() - 500).await;
    fixture.archive(&events[..1], source3, now() - 500).await;

    let second = finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(
        second,
        CycleReport {
            sightings: 4,
            candidates: 3,
            by_source: counts([(Source::RelayList, 2), (Source::Nip66, 1)]),
            accepted: 3,
            distinct: 3,
            new: 2,
            ..CycleReport::default()
        }
    );
    let relays = fixture.relays().await;
    for url in ["wss://late.example", "wss://late-monitor.example"] {
        assert_eq!(relays.iter().filter(|r| *r == url).count(), 1, "{url}");
    }
    assert_eq!(relays.len(), 8 + 3 + 2);
    let third = finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(third, CycleReport::default());
}

#[tokio::test]
async fn a_cycle_reads_at_most_max_pages_and_the_next_ones_go_on_from_there() {
    let fixture = Fixture::new("bigbrotr").await;
    archive_fixture(&fixture, now() - 1000).await;
    let finder = finder_with(&FinderConfig {
        max_pages_per_cycle: 2,
        ..finder_config()
    });
    let mut sightings = Vec::new();
    let mut total_new = 0;
    let mut total_candidates = 0;
    loop {
        let report = finder
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        if report.sightings == 0 {
            break;
        }
        sightings.push(report.sightings);
        total_new += report.new;
        total_candidates += report.candidates;
    }
    assert_eq!(sightings, [4, 4, 1]);
    assert_eq!((total_new, total_candidates), (8, 17));
    let mut expected = NEW_RELAYS.to_vec();
    expected.extend([SOURCE, SOURCE2]);
    assert_eq!(fixture.relays().await, sorted(&expected));
}

#[tokio::test]
async fn every_kind_is_read_when_kinds_is_empty() {
    let fixture = Fixture::new("bigbrotr").await;
    archive_fixture(&fixture, now() - 1000).await;
    let mut config = finder_config();
    config.sources.kinds = Vec::new();
    let report = finder_with(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    // The kind 7 reaction's hint too.
    assert_eq!((report.candidates, report.new), (18, 9));
    assert!(fixture
        .relays()
        .await
        .contains(&"wss://iota.example".to_owned()));
}

#[tokio::test]
async fn lilbrotr_finds_the_relay_lists_and_nip66_events_only() {
    let fixture = Fixture::new("lilbrotr").await;
    archive_fixture(&fixture, now() - 1000).await;
    let finder = finder_with(&finder_config());
    let report = finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    // tagvalues holds each distinct first value of a single-letter tag up
    // to 256 bytes: no relay hints, no contact lists, no long URL.
    assert_eq!(
        report,
        CycleReport {
            sightings: 9,
            candidates: 11,
            by_source: counts([(Source::RelayList, 9), (Source::Nip66, 2)]),
            accepted: 8,
            distinct: 6,
            new: 5,
            rejected: counts([
                (Rejection::NotAUrl, 1),
                (Rejection::UnsupportedScheme, 1),
                (Rejection::LocalAddress, 1),
            ]),
            http_failures: 0,
            cancelled: false,
        }
    );
    assert_eq!(
        fixture.relays().await,
        sorted(&[
            SOURCE,
            SOURCE2,
            "wss://alpha.example",
            "wss://beta.example",
            "wss://gamma.example/nostr",
            "wss://eta.example",
            "wss://theta.example",
        ])
    );
    let again = finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(again, CycleReport::default());
}
