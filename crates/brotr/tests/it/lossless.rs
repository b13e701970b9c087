//! Events read back exactly as they were signed, U+0000 and very large
//! events included.

use bigbrotr_brotr::RelayId;
use bigbrotr_pool::Type;
use nostr::Event;

use crate::support::{fixture, signed, IMPLEMENTATIONS};

/// Synthetic signed events covering what `text` and `jsonb` make hard.
fn hard_events() -> Vec<(&'static str, Event)> {
    let tag = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>();
    let many_tags: Vec<Vec<String>> = (0..10_000)
        .map(|i| vec!["p".to_owned(), format!("{i:064x}")])
        .collect();
    vec![
        ("nul in content", signed(1, vec![], "before\u{0}after\u{0}")),
        (
            "nul in a tag",
            signed(1, vec![tag(&["t", "a\u{0}b"]), tag(&["e", "plain"])], "x"),
        ),
        (
            "nul in both",
            signed(30023, vec![tag(&["d", "\u{0}"]), tag(&["\u{0}"])], "\u{0}"),
        ),
        (
            "non-BMP and escapes",
            signed(
                1,
                vec![
                    tag(&["emoji", "😀🏳️‍🌈𝄞", "\u{10FFFF}"]),
                    tag(&["x", "\u{1}\u{1f}\u{7f}\u{2028}"]),
                ],
                "𝕳𝖊𝖑𝖑𝖔 😀 \u{FFFD} \"quoted\" \\ \n\t\r \u{8}\u{c}",
            ),
        ),
        (
            "5 KB tag value",
            signed(1, vec![tag(&["r", &"v".repeat(5 * 1024)])], ""),
        ),
        ("10 000 tags", signed(3, many_tags, "")),
        (
            "500 KB content",
            signed(30023, vec![tag(&["d", "long"])], &"é".repeat(250 * 1024)),
        ),
        (
            "empty and single-element tags",
            signed(1, vec![tag(&[""]), tag(&["a"]), tag(&["", ""])], ""),
        ),
    ]
}

#[tokio::test]
async fn hard_events_read_back_equal_and_verify() {
    let f = fixture("bigbrotr").await;
    let relay = f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
    let events = hard_events();
    let batch: Vec<(Event, RelayId)> = events.iter().map(|(_, e)| (e.clone(), relay)).collect();
    let report = f.brotr.insert_event_batch(&batch, 1).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.stored, events.len() as u64);

    for (what, event) in &events {
        let read = f
            .brotr
            .get_event_by_id(&event.id)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            .unwrap_or_else(|| panic!("{what}: not found"));
        assert_eq!(&read, event, "{what}");
        assert_eq!(read.verify(), Ok(()), "{what}");
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            serde_json::to_string(event).unwrap(),
            "{what}"
        );
    }
}

#[tokio::test]
async fn raw_columns_are_filled_only_for_nul_and_the_queryable_ones_hold_the_replacement() {
    let f = fixture("bigbrotr").await;
    let relay = f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
    let events = hard_events();
    let batch: Vec<(Event, RelayId)> = events.iter().map(|(_, e)| (e.clone(), relay)).collect();
    f.brotr.insert_event_batch(&batch, 1).await.unwrap();

    for (what, event) in &events {
        let id: &[u8] = event.id.as_bytes();
        let row = f
            .pool()
            .fetch_one(
                "SELECT content, content_raw IS NOT NULL, tags::text, tags_raw IS NOT NULL \
                 FROM events WHERE id = $1",
                &[(&id, Type::BYTEA)],
            )
            .await
            .unwrap();
        let content: String = row.get(0);
        let tags: String = row.get(2);
        let content_nul = event.content.contains('\0');
        let tags_nul = event
            .tags
            .iter()
            .any(|t| t.as_slice().iter().any(|s| s.contains('\0')));
        assert_eq!(row.get::<_, bool>(1), content_nul, "{what}");
        assert_eq!(row.get::<_, bool>(3), tags_nul, "{what}");
        assert_eq!(content, event.content.replace('\0', "\u{FFFD}"), "{what}");
        assert!(!tags.contains("\\u0000"), "{what}");
        if tags_nul {
            assert!(tags.contains('\u{FFFD}'), "{what}");
        }
    }
}

#[tokio::test]
async fn both_implementations_accept_the_hard_events() {
    for imp in IMPLEMENTATIONS {
        let f = fixture(imp).await;
        let relay = f.brotr.insert_relay("wss://a.example", 1).await.unwrap();
        let events = hard_events();
        let batch: Vec<(Event, RelayId)> = events.iter().map(|(_, e)| (e.clone(), relay)).collect();
        let report = f.brotr.insert_event_batch(&batch, 1).await.unwrap();
        assert_eq!(report.stored, events.len() as u64, "{imp}");
        assert_eq!(f.count("events").await, events.len() as i64, "{imp}");
        // Tag queries see the replaced value.
        let tagged: i64 = f
            .pool()
            .fetch_one(
                "SELECT count(*) FROM events WHERE tagvalues @> ARRAY['t:a\u{FFFD}b']",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(tagged, 1, "{imp}");
    }
}
