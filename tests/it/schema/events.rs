//! Events: `insert_events`, what reads back, tag values and provenance.

use std::collections::BTreeSet;

use bigbrotr_test_support::TestDb;
use serde_json::{json, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use super::helpers::{
    assert_reads_back, count, event_exists, events_tagged, get_event, hex, insert_events,
    insert_events_with_tagvalues, key32, relay_ids, stores_content, tagvalues, Event, Sighting,
};

for_each_implementation!(
    insert_events_counts_exactly_the_new_events_and_new_relations,
    an_event_repeated_within_one_batch_counts_once,
    nul_characters_round_trip_byte_exact_through_the_raw_columns,
    a_tag_value_of_5_kb_is_stored_but_left_out_of_tagvalues,
    an_event_with_10_000_tags_is_stored,
    a_content_of_500_kb_is_stored,
    characters_outside_the_basic_plane_are_stored_exactly,
    tagvalues_hold_single_letter_tags_prefixed_by_their_letter,
    tagvalues_given_by_the_caller_are_stored_per_event_without_repeats,
    deleting_events_or_relays_deletes_their_provenance,
);

async fn insert_events_counts_exactly_the_new_events_and_new_relations(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [r1, r2] = relay_ids(&client, &["wss://one.example", "wss://two.example"]).await[..] else {
        panic!("two relays");
    };
    let events: Vec<Event> = (1..=4).map(Event::note).collect();
    let [e1, e2, e3, e4] = &events[..] else {
        unreachable!()
    };

    let batch = [(e1, r1, 10), (e2, r1, 10), (e3, r1, 10)];
    assert_eq!(insert_events(&client, &batch).await.unwrap(), (3, 3));
    assert_eq!(insert_events(&client, &batch).await.unwrap(), (0, 0));
    // A later sighting from the same relay changes nothing, not even seen_at.
    assert_eq!(
        insert_events(&client, &[(e1, r1, 999)]).await.unwrap(),
        (0, 0)
    );
    assert_eq!(
        insert_events(&client, &[(e1, r2, 20)]).await.unwrap(),
        (0, 1)
    );
    assert_eq!(
        insert_events(&client, &[(e4, r2, 30), (e2, r2, 30)])
            .await
            .unwrap(),
        (1, 2)
    );
    assert_eq!(insert_events(&client, &[]).await.unwrap(), (0, 0));

    assert_eq!(count(&client, "events").await, 4);
    assert_eq!(count(&client, "events_relays").await, 6);
    let seen = client
        .query_typed_one(
            "SELECT seen_at FROM events_relays WHERE event_id = $1 AND relay_id = $2",
            &[(&e1.id, Type::BYTEA), (&r1, Type::INT4)],
        )
        .await
        .unwrap();
    assert_eq!(seen.get::<_, i64>(0), 10);
    for event in &events {
        assert!(event_exists(&client, &event.id).await);
        assert_reads_back(&client, implementation, event).await;
    }
    assert!(!event_exists(&client, &Event::note(5).id).await);
    assert!(get_event(&client, &Event::note(5).id).await.is_none());
}

async fn an_event_repeated_within_one_batch_counts_once(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [r1, r2] = relay_ids(&client, &["wss://one.example", "wss://two.example"]).await[..] else {
        panic!("two relays");
    };
    let (e1, e2) = (Event::note(1), Event::note(2));

    let batch = [
        (&e2, r1, 40),
        (&e1, r1, 20),
        (&e1, r2, 30),
        (&e1, r1, 10),
        (&e2, r1, 40),
    ];
    assert_eq!(insert_events(&client, &batch).await.unwrap(), (2, 3));
    assert_eq!(count(&client, "events").await, 2);
    assert_eq!(count(&client, "events_relays").await, 3);
    // The earliest sighting in the batch is kept.
    let seen = client
        .query_typed_one(
            "SELECT seen_at FROM events_relays WHERE event_id = $1 AND relay_id = $2",
            &[(&e1.id, Type::BYTEA), (&r1, Type::INT4)],
        )
        .await
        .unwrap();
    assert_eq!(seen.get::<_, i64>(0), 10);
}

async fn nul_characters_round_trip_byte_exact_through_the_raw_columns(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [relay] = relay_ids(&client, &["wss://one.example"]).await[..] else {
        panic!("one relay");
    };

    let content = "before\0after \0";
    let tags = json!([["t", "x\u{0}y"], ["p", hex(&key32(1, 1))], ["alt", "\0"]]);
    // Neither text nor jsonb can hold U+0000: the event as is is refused.
    let nul_in_content = Event::note(1).with_content(content);
    let error = insert_events(&client, &[(&nul_in_content, relay, 10)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::CHARACTER_NOT_IN_REPERTOIRE));
    let nul_in_tags = Event::note(1).with_tags(tags.clone());
    let error = insert_events(&client, &[(&nul_in_tags, relay, 10)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::UNTRANSLATABLE_CHARACTER));
    assert_eq!(count(&client, "events").await, 0);

    // So the application sends a queryable form and the exact original.
    let queryable = |s: &str| s.replace('\0', "\u{FFFD}");
    let tags_text = serde_json::to_string(&tags).unwrap();
    assert!(tags_text.contains(r"x\u0000y"), "{tags_text}");
    let event = Event {
        tags: json!([
            ["t", "x\u{FFFD}y"],
            ["p", hex(&key32(1, 1))],
            ["alt", "\u{FFFD}"]
        ]),
        tags_raw: Some(tags_text.clone().into_bytes()),
        content: queryable(content),
        content_raw: Some(content.as_bytes().to_vec()),
        ..Event::note(1)
    };
    assert_eq!(event.tags[0][1], "x\u{FFFD}y");
    assert_eq!(
        insert_events(&client, &[(&event, relay, 10)])
            .await
            .unwrap(),
        (1, 1)
    );
    assert_reads_back(&client, implementation, &event).await;

    let stored = get_event(&client, &event.id).await.unwrap();
    if stores_content(implementation) {
        assert_eq!(stored.content_raw.as_deref(), Some(content.as_bytes()));
        assert_eq!(stored.tags_raw.as_deref(), Some(tags_text.as_bytes()));
        let tags_back: Value = serde_json::from_slice(stored.tags_raw.as_deref().unwrap()).unwrap();
        assert_eq!(tags_back, tags);
        assert_eq!(stored.content, "before\u{FFFD}after \u{FFFD}");
    }
    // The queryable columns hold no U+0000, stored or as SQL renders them.
    assert!(!stored.content.contains('\0'));
    assert!(!stored.tags.to_string().contains('\0'));
    let rendered = client
        .query_typed_one(
            "SELECT g.tags::text, g.content, array_to_string(e.tagvalues, ' ') \
             FROM get_event_by_id($1) AS g JOIN events AS e ON e.id = g.id",
            &[(&event.id, Type::BYTEA)],
        )
        .await
        .unwrap();
    for column in 0..3 {
        let text: &str = rendered.get(column);
        assert!(!text.contains('\0') && !text.contains(r"\u0000"), "{text}");
    }
    assert_eq!(
        tagvalues(&client, &event.id).await,
        [
            format!("p:{}", hex(&key32(1, 1))),
            "t:x\u{FFFD}y".to_owned()
        ]
    );
}

async fn a_tag_value_of_5_kb_is_stored_but_left_out_of_tagvalues(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [relay] = relay_ids(&client, &["wss://one.example"]).await[..] else {
        panic!("one relay");
    };

    let long = "ab€😀".repeat(5 * 1024 / 9 + 1);
    assert!(long.len() > 5 * 1024);
    // The limit is 256 bytes, not characters: é is two bytes.
    let at_limit = "é".repeat(128);
    let over_limit = format!("{at_limit}x");
    let event = Event::note(1).with_tags(json!([
        ["e", long],
        ["r", at_limit],
        ["r", over_limit],
        ["p", "short"],
        ["x", long, long],
    ]));
    assert_eq!(
        insert_events(&client, &[(&event, relay, 10)])
            .await
            .unwrap(),
        (1, 1)
    );
    assert_reads_back(&client, implementation, &event).await;
    assert_eq!(
        tagvalues(&client, &event.id).await,
        ["p:short".to_owned(), format!("r:{at_limit}")]
    );
    assert!(events_tagged(&client, &format!("e:{long}"))
        .await
        .is_empty());
    assert_eq!(
        events_tagged(&client, &format!("r:{at_limit}")).await,
        std::slice::from_ref(&event.id)
    );
}

async fn an_event_with_10_000_tags_is_stored(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [relay] = relay_ids(&client, &["wss://one.example"]).await[..] else {
        panic!("one relay");
    };

    let tags: Vec<Value> = (0..10_000)
        .map(|n| json!(["p", hex(&key32(7, n)), "wss://relay.example", "mention"]))
        .collect();
    let event = Event::note(1).with_tags(Value::Array(tags));
    assert_eq!(
        insert_events(&client, &[(&event, relay, 10)])
            .await
            .unwrap(),
        (1, 1)
    );
    assert_reads_back(&client, implementation, &event).await;
    let values = tagvalues(&client, &event.id).await;
    assert_eq!(values.len(), 10_000);
    assert_eq!(
        events_tagged(&client, &format!("p:{}", hex(&key32(7, 9_999)))).await,
        std::slice::from_ref(&event.id)
    );
}

async fn a_content_of_500_kb_is_stored(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [relay] = relay_ids(&client, &["wss://one.example"]).await[..] else {
        panic!("one relay");
    };

    let content = "Long-form text ✓ with emoji 😀 and \"quotes\"\n".repeat(500 * 1024 / 48 + 1);
    assert!(content.len() > 500 * 1024);
    let event = Event::note(1).with_content(&content);
    assert_eq!(
        insert_events(&client, &[(&event, relay, 10)])
            .await
            .unwrap(),
        (1, 1)
    );
    assert_reads_back(&client, implementation, &event).await;
}

async fn characters_outside_the_basic_plane_are_stored_exactly(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [relay] = relay_ids(&client, &["wss://one.example"]).await[..] else {
        panic!("one relay");
    };

    let event = Event::note(1)
        .with_content(
            "𝄞 clef, 😀 emoji, 👩‍👩‍👧 family (ZWJ), ❤️ (VS16), \u{10FFFF} last, \
             \u{2028}\u{2029} separators, \t\r\n\u{1}\u{8}\u{c}\u{1f} controls, \u{7f}",
        )
        .with_tags(json!([
            ["t", "🦀"],
            ["emoji", "party", "https://example.com/🎉.png"],
            ["e", "😀\u{200d}💻"],
            ["subject", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"],
        ]));
    assert_eq!(
        insert_events(&client, &[(&event, relay, 10)])
            .await
            .unwrap(),
        (1, 1)
    );
    assert_reads_back(&client, implementation, &event).await;
    assert_eq!(
        tagvalues(&client, &event.id).await,
        ["e:😀\u{200d}💻", "t:🦀"]
    );
    assert_eq!(
        events_tagged(&client, "t:🦀").await,
        std::slice::from_ref(&event.id)
    );
}

async fn tagvalues_hold_single_letter_tags_prefixed_by_their_letter(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [relay] = relay_ids(&client, &["wss://one.example"]).await[..] else {
        panic!("one relay");
    };

    let (id, key) = (hex(&key32(1, 1)), hex(&key32(2, 2)));
    let tagged = Event::note(1).with_tags(json!([
        ["e", id, "wss://relay.example", "root"],
        ["p", key],
        ["e", id],
        ["t", "nostr"],
        ["d", ""],
        ["P", "upper"],
        ["title", "multi-letter names are left out"],
        ["alt", "so is this"],
        ["e"],
        [],
        ["é", "not an ASCII letter"],
        ["1", "not a letter"],
    ]));
    // Same value, other letter: only the prefix tells them apart.
    let other = Event::note(2).with_tags(json!([["p", id], ["e", key]]));
    let untagged = Event::note(3);
    let batch = [
        (&tagged, relay, 10),
        (&other, relay, 10),
        (&untagged, relay, 10),
    ];
    assert_eq!(insert_events(&client, &batch).await.unwrap(), (3, 3));

    let expected: BTreeSet<String> = [
        "P:upper".to_owned(),
        "d:".to_owned(),
        format!("e:{id}"),
        format!("p:{key}"),
        "t:nostr".to_owned(),
    ]
    .into();
    let values = tagvalues(&client, &tagged.id).await;
    assert_eq!(values.len(), expected.len(), "no duplicates: {values:?}");
    assert_eq!(values.into_iter().collect::<BTreeSet<_>>(), expected);
    assert!(tagvalues(&client, &untagged.id).await.is_empty());

    assert_eq!(
        events_tagged(&client, &format!("e:{id}")).await,
        std::slice::from_ref(&tagged.id)
    );
    assert_eq!(
        events_tagged(&client, &format!("p:{id}")).await,
        std::slice::from_ref(&other.id)
    );
    assert!(
        events_tagged(&client, "title:multi-letter names are left out")
            .await
            .is_empty()
    );
    // The SQL helper itself, on shapes an event cannot even have.
    let row = client
        .query_typed_one(
            "SELECT tags_to_tagvalues('{}'), tags_to_tagvalues(NULL), \
                    tags_to_tagvalues('[[\"a\", 1], [\"b\", \"ok\"], \"c\"]')",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, Vec<String>>(0).is_empty());
    assert!(row.get::<_, Vec<String>>(1).is_empty());
    assert_eq!(row.get::<_, Vec<String>>(2), ["b:ok"]);
}

async fn tagvalues_given_by_the_caller_are_stored_per_event_without_repeats(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [relay] = relay_ids(&client, &["wss://one.example"]).await[..] else {
        panic!("one relay");
    };
    // The tags are not looked at when the values are given.
    let events: Vec<Event> = (1..=3)
        .map(|n| Event::note(n).with_tags(json!([["t", "ignored"]])))
        .collect();
    let batch: Vec<Sighting<'_>> = events.iter().map(|e| (e, relay, 10)).collect();
    let values = ["t:b", "p:k", "t:b", "t:a"];
    let owners = [3, 1, 3, 3];
    assert_eq!(
        insert_events_with_tagvalues(&client, &batch, Some((&values, &owners)))
            .await
            .unwrap(),
        (3, 3)
    );
    assert_eq!(tagvalues(&client, &events[0].id).await, ["p:k"]);
    assert!(tagvalues(&client, &events[1].id).await.is_empty());
    let mut third = tagvalues(&client, &events[2].id).await;
    third.sort();
    assert_eq!(third, ["t:a", "t:b"]);

    let error = insert_events_with_tagvalues(&client, &batch, Some((&values, &owners[..3])))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
}

async fn deleting_events_or_relays_deletes_their_provenance(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [one, two] = relay_ids(&client, &["wss://one.example", "wss://two.example"]).await[..]
    else {
        panic!("two relays");
    };
    let events: Vec<Event> = (1..=3).map(Event::note).collect();
    let batch: Vec<Sighting<'_>> = events
        .iter()
        .flat_map(|e| [(e, one, 10), (e, two, 11)])
        .collect();
    assert_eq!(insert_events(&client, &batch).await.unwrap(), (3, 6));

    // A relay that does not exist: refused as a foreign-key violation,
    // nothing of the batch stored.
    let fourth = Event::note(4);
    let error = insert_events(&client, &[(&fourth, one, 12), (&fourth, 999_999, 12)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::FOREIGN_KEY_VIOLATION));
    let db_error = error.as_db_error().expect("a database error");
    assert_eq!(db_error.constraint(), Some("events_relays_relay_id_fkey"));
    assert!(
        db_error.message().contains("999999"),
        "{}",
        db_error.message()
    );
    assert!(!event_exists(&client, &fourth.id).await);

    client
        .execute_typed(
            "DELETE FROM events WHERE id = $1",
            &[(&events[0].id, Type::BYTEA)],
        )
        .await
        .unwrap();
    assert_eq!(count(&client, "events_relays").await, 4);
    client
        .execute_typed("DELETE FROM relays WHERE id = $1", &[(&two, Type::INT4)])
        .await
        .unwrap();
    assert_eq!(count(&client, "events_relays").await, 2);
    assert_eq!(
        count(&client, &format!("events_relays WHERE relay_id = {one}")).await,
        2
    );
    client.batch_execute("TRUNCATE events").await.unwrap();
    assert_eq!(count(&client, "events_relays").await, 0);
}
