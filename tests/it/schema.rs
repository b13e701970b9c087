//! The SQL of every implementation: tables, function contract and view. Each
//! test body runs once per implementation (`schema::bigbrotr::*` and
//! `schema::lilbrotr::*`), on a fresh database. Events are synthetic byte
//! values: the application checks ids and signatures, the SQL does not.

use std::collections::BTreeSet;

use bigbrotr_test_support::TestDb;
use serde_json::{json, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

/// One `#[tokio::test]` per implementation for each test body `fn(&str)` named.
macro_rules! for_each_implementation {
    ($($test:ident),* $(,)?) => {
        tests_of!(bigbrotr: $($test),*);
        tests_of!(lilbrotr: $($test),*);
    };
}

macro_rules! tests_of {
    ($implementation:ident: $($test:ident),*) => {
        mod $implementation {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(stringify!($implementation)).await;
                }
            )*
        }
    };
}

for_each_implementation!(
    insert_relays_returns_an_id_for_every_input_row_in_input_order,
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
    insert_relay_metadata_counts_new_rows_and_stores_each_document_once,
    orphans_are_deleted_in_bounded_batches_with_exact_counts,
    relay_metadata_latest_shows_the_latest_check_of_each_relay,
    concurrent_overlapping_batches_insert_without_error_and_count_exactly,
);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Whether the implementation stores tags and content (`lilbrotr` does not).
fn stores_content(implementation: &str) -> bool {
    implementation == "bigbrotr"
}

/// 32 bytes: `fill` repeated, ending with `n` big-endian.
fn key32(fill: u8, n: u64) -> Vec<u8> {
    let mut key = vec![fill; 32];
    key[24..].copy_from_slice(&n.to_be_bytes());
    key
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An event as the application sends it to `insert_events`.
#[derive(Clone, Debug, PartialEq)]
struct Event {
    id: Vec<u8>,
    pubkey: Vec<u8>,
    created_at: i64,
    kind: i32,
    tags: Value,
    tags_raw: Option<Vec<u8>>,
    content: String,
    content_raw: Option<Vec<u8>>,
    sig: Vec<u8>,
}

impl Event {
    /// A kind-1 note, unique per `n`.
    fn note(n: u64) -> Self {
        let mut sig = key32(0x5a, n);
        sig.extend(key32(0xa5, n));
        Self {
            id: key32(0xee, n),
            pubkey: key32(0x99, n % 5),
            created_at: 1_700_000_000 + n as i64,
            kind: 1,
            tags: json!([]),
            tags_raw: None,
            content: format!("note {n}"),
            content_raw: None,
            sig,
        }
    }

    fn with_tags(mut self, tags: Value) -> Self {
        self.tags = tags;
        self
    }

    fn with_content(mut self, content: &str) -> Self {
        self.content = content.to_owned();
        self
    }

    /// What `get_event_by_id` returns for it in `implementation`.
    fn as_stored_by(&self, implementation: &str) -> Self {
        if stores_content(implementation) {
            self.clone()
        } else {
            Self {
                tags: json!([]),
                tags_raw: None,
                content: String::new(),
                content_raw: None,
                ..self.clone()
            }
        }
    }
}

/// One sighting: the event, the relay id and when it was seen.
type Sighting<'a> = (&'a Event, i32, i64);

async fn insert_relays(
    client: &Client,
    relays: &[(&str, &str)],
    inserted_at: i64,
) -> Result<Vec<(i32, i32)>, tokio_postgres::Error> {
    let urls: Vec<&str> = relays.iter().map(|(url, _)| *url).collect();
    let networks: Vec<&str> = relays.iter().map(|(_, network)| *network).collect();
    let rows = client
        .query_typed(
            "SELECT ord, relay_id FROM insert_relays($1, $2, $3)",
            &[
                (&urls, Type::TEXT_ARRAY),
                (&networks, Type::TEXT_ARRAY),
                (&inserted_at, Type::INT8),
            ],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Ids of `urls`, inserted as clearnet relays, in order.
async fn relay_ids(client: &Client, urls: &[&str]) -> Vec<i32> {
    let relays: Vec<(&str, &str)> = urls.iter().map(|url| (*url, "clearnet")).collect();
    insert_relays(client, &relays, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect()
}

async fn insert_events(
    client: &Client,
    batch: &[Sighting<'_>],
) -> Result<(i64, i64), tokio_postgres::Error> {
    insert_events_with_tagvalues(client, batch, None).await
}

/// `insert_events` with the tag values given by the caller, as (values,
/// 1-based ordinal of the event each belongs to); `None` leaves them to
/// the database.
async fn insert_events_with_tagvalues(
    client: &Client,
    batch: &[Sighting<'_>],
    tagvalues: Option<(&[&str], &[i32])>,
) -> Result<(i64, i64), tokio_postgres::Error> {
    let (values, owners) = tagvalues.unzip();
    let ids: Vec<&[u8]> = batch.iter().map(|(e, _, _)| e.id.as_slice()).collect();
    let pubkeys: Vec<&[u8]> = batch.iter().map(|(e, _, _)| e.pubkey.as_slice()).collect();
    let created_at: Vec<i64> = batch.iter().map(|(e, _, _)| e.created_at).collect();
    let kinds: Vec<i32> = batch.iter().map(|(e, _, _)| e.kind).collect();
    let tags: Vec<&Value> = batch.iter().map(|(e, _, _)| &e.tags).collect();
    let tags_raw: Vec<Option<&[u8]>> = batch
        .iter()
        .map(|(e, _, _)| e.tags_raw.as_deref())
        .collect();
    let contents: Vec<&str> = batch.iter().map(|(e, _, _)| e.content.as_str()).collect();
    let contents_raw: Vec<Option<&[u8]>> = batch
        .iter()
        .map(|(e, _, _)| e.content_raw.as_deref())
        .collect();
    let sigs: Vec<&[u8]> = batch.iter().map(|(e, _, _)| e.sig.as_slice()).collect();
    let relay_ids: Vec<i32> = batch.iter().map(|(_, relay, _)| *relay).collect();
    let seen_at: Vec<i64> = batch.iter().map(|(_, _, seen)| *seen).collect();
    let row = client
        .query_typed_one(
            "SELECT events_inserted, relations_inserted \
             FROM insert_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                (&ids, Type::BYTEA_ARRAY),
                (&pubkeys, Type::BYTEA_ARRAY),
                (&created_at, Type::INT8_ARRAY),
                (&kinds, Type::INT4_ARRAY),
                (&tags, Type::JSONB_ARRAY),
                (&tags_raw, Type::BYTEA_ARRAY),
                (&contents, Type::TEXT_ARRAY),
                (&contents_raw, Type::BYTEA_ARRAY),
                (&sigs, Type::BYTEA_ARRAY),
                (&relay_ids, Type::INT4_ARRAY),
                (&seen_at, Type::INT8_ARRAY),
                (&values, Type::TEXT_ARRAY),
                (&owners, Type::INT4_ARRAY),
            ],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

async fn get_event(client: &Client, id: &[u8]) -> Option<Event> {
    let row = client
        .query_typed_opt(
            "SELECT id, pubkey, created_at, kind, tags, tags_raw, content, content_raw, sig \
             FROM get_event_by_id($1)",
            &[(&id, Type::BYTEA)],
        )
        .await
        .unwrap()?;
    Some(Event {
        id: row.get(0),
        pubkey: row.get(1),
        created_at: row.get(2),
        kind: row.get(3),
        tags: row.get(4),
        tags_raw: row.get(5),
        content: row.get(6),
        content_raw: row.get(7),
        sig: row.get(8),
    })
}

/// The event reads back as `implementation` stores it (compared without
/// printing: some are half a megabyte).
async fn assert_reads_back(client: &Client, implementation: &str, event: &Event) {
    let stored = get_event(client, &event.id)
        .await
        .unwrap_or_else(|| panic!("event {} is not archived", hex(&event.id)));
    assert!(
        stored == event.as_stored_by(implementation),
        "event {} reads back differently",
        hex(&event.id)
    );
}

async fn event_exists(client: &Client, id: &[u8]) -> bool {
    client
        .query_typed_one("SELECT event_exists($1)", &[(&id, Type::BYTEA)])
        .await
        .unwrap()
        .get(0)
}

async fn tagvalues(client: &Client, id: &[u8]) -> Vec<String> {
    client
        .query_typed_one(
            "SELECT tagvalues FROM events WHERE id = $1",
            &[(&id, Type::BYTEA)],
        )
        .await
        .unwrap()
        .get(0)
}

/// Ids of the events whose tagvalues contain `value`, sorted.
async fn events_tagged(client: &Client, value: &str) -> Vec<Vec<u8>> {
    let rows = client
        .query_typed(
            "SELECT id FROM events WHERE tagvalues @> ARRAY[$1] ORDER BY id",
            &[(&value, Type::TEXT)],
        )
        .await
        .unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

/// `SELECT count(*) FROM <table>`.
async fn count(client: &Client, table: &str) -> i64 {
    client
        .query_typed_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// A relay check as `insert_relay_metadata` takes it.
struct Check {
    relay_id: i32,
    generated_at: i64,
    connected: bool,
    nip11: Option<(Vec<u8>, Value)>,
    nip66: Option<(Vec<u8>, Value)>,
}

impl Check {
    fn new(relay_id: i32, generated_at: i64, connected: bool) -> Self {
        Self {
            relay_id,
            generated_at,
            connected,
            nip11: None,
            nip66: None,
        }
    }

    fn nip11(mut self, doc: &(Vec<u8>, Value)) -> Self {
        self.nip11 = Some(doc.clone());
        self
    }

    fn nip66(mut self, doc: &(Vec<u8>, Value)) -> Self {
        self.nip66 = Some(doc.clone());
        self
    }
}

/// A document and a stand-in for its hash (the application computes the
/// real one; the SQL takes it as given).
fn document(fill: u8, n: u64) -> (Vec<u8>, Value) {
    (
        key32(fill, n),
        json!({"name": format!("document {n}"), "supported_nips": [1, 11, n]}),
    )
}

async fn insert_relay_metadata(
    client: &Client,
    checks: &[Check],
) -> Result<i64, tokio_postgres::Error> {
    let relay_ids: Vec<i32> = checks.iter().map(|c| c.relay_id).collect();
    let generated_at: Vec<i64> = checks.iter().map(|c| c.generated_at).collect();
    let connected: Vec<bool> = checks.iter().map(|c| c.connected).collect();
    let nip11_ids: Vec<Option<&[u8]>> = checks
        .iter()
        .map(|c| c.nip11.as_ref().map(|(id, _)| id.as_slice()))
        .collect();
    let nip11_data: Vec<Option<&Value>> = checks
        .iter()
        .map(|c| c.nip11.as_ref().map(|(_, data)| data))
        .collect();
    let nip66_ids: Vec<Option<&[u8]>> = checks
        .iter()
        .map(|c| c.nip66.as_ref().map(|(id, _)| id.as_slice()))
        .collect();
    let nip66_data: Vec<Option<&Value>> = checks
        .iter()
        .map(|c| c.nip66.as_ref().map(|(_, data)| data))
        .collect();
    let row = client
        .query_typed_one(
            "SELECT insert_relay_metadata($1, $2, $3, $4, $5, $6, $7)",
            &[
                (&relay_ids, Type::INT4_ARRAY),
                (&generated_at, Type::INT8_ARRAY),
                (&connected, Type::BOOL_ARRAY),
                (&nip11_ids, Type::BYTEA_ARRAY),
                (&nip11_data, Type::JSONB_ARRAY),
                (&nip66_ids, Type::BYTEA_ARRAY),
                (&nip66_data, Type::JSONB_ARRAY),
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// `SELECT <function>(limit)` for a `delete_orphan_*` function.
async fn delete_orphans(
    client: &Client,
    function: &str,
    limit: i32,
) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_typed_one(&format!("SELECT {function}($1)"), &[(&limit, Type::INT4)])
        .await?;
    Ok(row.get(0))
}

// ---------------------------------------------------------------------------
// Relays
// ---------------------------------------------------------------------------

async fn insert_relays_returns_an_id_for_every_input_row_in_input_order(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();

    let first = insert_relays(
        &client,
        &[
            ("wss://a.example", "clearnet"),
            ("wss://b.example", "clearnet"),
        ],
        100,
    )
    .await
    .unwrap();
    assert_eq!(
        first.iter().map(|(ord, _)| *ord).collect::<Vec<_>>(),
        [1, 2]
    );
    let (a, b) = (first[0].1, first[1].1);
    assert_ne!(a, b);

    // New, existing and repeated URLs mixed: every row comes back, in order.
    let onion = "ws://2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";
    let second = insert_relays(
        &client,
        &[
            (onion, "tor"),
            ("wss://a.example", "clearnet"),
            ("wss://b.example", "clearnet"),
            (onion, "tor"),
            ("wss://a.example", "clearnet"),
        ],
        200,
    )
    .await
    .unwrap();
    let c = second[0].1;
    assert_eq!(second, [(1, c), (2, a), (3, b), (4, c), (5, a)]);
    assert!(c != a && c != b);
    assert_eq!(count(&client, "relays").await, 3);

    let relay = client
        .query_typed_one(
            "SELECT id, url, network, inserted_at FROM get_relay_by_url($1)",
            &[(&onion, Type::TEXT)],
        )
        .await
        .unwrap();
    assert_eq!(relay.get::<_, i32>(0), c);
    assert_eq!(relay.get::<_, &str>(1), onion);
    assert_eq!(relay.get::<_, &str>(2), "tor");
    assert_eq!(relay.get::<_, i64>(3), 200);
    // An existing relay keeps its first inserted_at.
    let a_row = client
        .query_typed_one(
            "SELECT inserted_at FROM get_relay_by_url('wss://a.example')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(a_row.get::<_, i64>(0), 100);
    for (url, exists) in [("wss://a.example", true), ("wss://nope.example", false)] {
        let row = client
            .query_typed_one("SELECT relay_exists($1)", &[(&url, Type::TEXT)])
            .await
            .unwrap();
        assert_eq!(row.get::<_, bool>(0), exists, "{url}");
    }

    assert!(insert_relays(&client, &[], 300).await.unwrap().is_empty());
    let mismatch = client
        .query_typed(
            "SELECT * FROM insert_relays(ARRAY['wss://x.example'], ARRAY[]::text[], 1)",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(mismatch.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Relay metadata
// ---------------------------------------------------------------------------

async fn insert_relay_metadata_counts_new_rows_and_stores_each_document_once(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [r1, r2] = relay_ids(&client, &["wss://one.example", "wss://two.example"]).await[..] else {
        panic!("two relays");
    };
    let shared = document(0x11, 1);
    let (m1, m2) = (document(0x66, 1), document(0x66, 2));

    let batch = [
        Check::new(r1, 100, true).nip11(&shared).nip66(&m1),
        Check::new(r2, 100, true).nip11(&shared).nip66(&m2),
        Check::new(r1, 200, false),
        // The same check twice in a batch counts once.
        Check::new(r2, 100, true).nip11(&shared).nip66(&m2),
    ];
    assert_eq!(insert_relay_metadata(&client, &batch).await.unwrap(), 3);
    assert_eq!(count(&client, "relay_metadata").await, 3);
    assert_eq!(count(&client, "nip11").await, 1);
    assert_eq!(count(&client, "nip66").await, 2);
    assert_eq!(insert_relay_metadata(&client, &batch).await.unwrap(), 0);

    let later = [
        Check::new(r2, 300, true).nip11(&shared),
        Check::new(r1, 300, true).nip11(&document(0x11, 2)),
    ];
    assert_eq!(insert_relay_metadata(&client, &later).await.unwrap(), 2);
    assert_eq!(count(&client, "relay_metadata").await, 5);
    assert_eq!(count(&client, "nip11").await, 2);
    assert_eq!(count(&client, "nip66").await, 2);

    let rows = client
        .query_typed(
            "SELECT m.relay_id, n.data FROM relay_metadata m JOIN nip11 n ON n.id = m.nip11_id \
             WHERE m.nip11_id = $1 ORDER BY m.relay_id, m.generated_at",
            &[(&shared.0, Type::BYTEA)],
        )
        .await
        .unwrap();
    let sharing: Vec<(i32, Value)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        sharing,
        [
            (r1, shared.1.clone()),
            (r2, shared.1.clone()),
            (r2, shared.1.clone())
        ]
    );

    // The document arrays may be NULL as a whole: no documents.
    let row = client
        .query_typed_one(
            "SELECT insert_relay_metadata(ARRAY[$1::int4], ARRAY[400::int8], ARRAY[false], \
                                          NULL, NULL, NULL, NULL)",
            &[(&r1, Type::INT4)],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    let error = client
        .query_typed(
            "SELECT insert_relay_metadata(ARRAY[1], ARRAY[1::int8, 2], ARRAY[true], \
                                          NULL, NULL, NULL, NULL)",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
}

async fn relay_metadata_latest_shows_the_latest_check_of_each_relay(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let onion = "ws://2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";
    let relays = insert_relays(
        &client,
        &[
            ("wss://one.example", "clearnet"),
            (onion, "tor"),
            ("wss://never-checked.example", "clearnet"),
        ],
        1,
    )
    .await
    .unwrap();
    let (r1, r2) = (relays[0].1, relays[1].1);
    let (a, b, c) = (document(0x11, 1), document(0x11, 2), document(0x66, 3));

    let checks = [
        Check::new(r1, 10, true).nip11(&a),
        Check::new(r1, 30, true).nip11(&b).nip66(&c),
        Check::new(r1, 20, false),
        Check::new(r2, 5, false).nip66(&c),
    ];
    assert_eq!(insert_relay_metadata(&client, &checks).await.unwrap(), 4);

    let rows = client
        .query_typed(
            "SELECT relay_id, url, network, generated_at, connected, nip11_id, nip11_data, \
                    nip66_id, nip66_data \
             FROM relay_metadata_latest ORDER BY relay_id",
            &[],
        )
        .await
        .unwrap();
    type Latest = (
        i32,
        String,
        String,
        i64,
        bool,
        Option<Vec<u8>>,
        Option<Value>,
        Option<Vec<u8>>,
        Option<Value>,
    );
    let latest: Vec<Latest> = rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
            )
        })
        .collect();
    let mut expected = vec![
        (
            r1,
            "wss://one.example".to_owned(),
            "clearnet".to_owned(),
            30,
            true,
            Some(b.0.clone()),
            Some(b.1.clone()),
            Some(c.0.clone()),
            Some(c.1.clone()),
        ),
        (
            r2,
            onion.to_owned(),
            "tor".to_owned(),
            5,
            false,
            None,
            None,
            Some(c.0.clone()),
            Some(c.1.clone()),
        ),
    ];
    // Relay ids follow the URLs' sort order, not the input order.
    expected.sort_by_key(|row| row.0);
    assert_eq!(latest, expected);

    // A newer check replaces the row of its relay only.
    let newer = [Check::new(r1, 40, false)];
    assert_eq!(insert_relay_metadata(&client, &newer).await.unwrap(), 1);
    let rows = client
        .query_typed(
            "SELECT relay_id, generated_at, nip11_data IS NULL \
             FROM relay_metadata_latest ORDER BY relay_id",
            &[],
        )
        .await
        .unwrap();
    let latest: Vec<(i32, i64, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut expected = vec![(r1, 40, true), (r2, 5, true)];
    expected.sort_by_key(|row| row.0);
    assert_eq!(latest, expected);
}

// ---------------------------------------------------------------------------
// Cleanup
// ---------------------------------------------------------------------------

async fn orphans_are_deleted_in_bounded_batches_with_exact_counts(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let [r1, r2] = relay_ids(&client, &["wss://one.example", "wss://two.example"]).await[..] else {
        panic!("two relays");
    };

    // 25 events from r1 only, 5 from both, 3 from r2 only.
    let events: Vec<Event> = (0..33).map(Event::note).collect();
    let mut batch: Vec<Sighting<'_>> = Vec::new();
    for (n, event) in events.iter().enumerate() {
        if n < 30 {
            batch.push((event, r1, 10));
        }
        if n >= 25 {
            batch.push((event, r2, 10));
        }
    }
    assert_eq!(insert_events(&client, &batch).await.unwrap(), (33, 38));
    // r1 uses nip11 documents 1..=7 and nip66 documents 1..=4; r2 nip11
    // document 1 and nip66 document 5.
    let mut checks: Vec<Check> = (1..=7)
        .map(|n| {
            let check = Check::new(r1, n as i64, true).nip11(&document(0x11, n));
            if n <= 4 {
                check.nip66(&document(0x66, n))
            } else {
                check
            }
        })
        .collect();
    checks.push(
        Check::new(r2, 1, true)
            .nip11(&document(0x11, 1))
            .nip66(&document(0x66, 5)),
    );
    assert_eq!(insert_relay_metadata(&client, &checks).await.unwrap(), 8);

    for function in [
        "delete_orphan_events",
        "delete_orphan_nip11",
        "delete_orphan_nip66",
    ] {
        assert_eq!(delete_orphans(&client, function, 100).await.unwrap(), 0);
        let error = delete_orphans(&client, function, 0).await.unwrap_err();
        assert_eq!(error.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
    }

    // Removing r1 removes its sightings and checks: 25 events, 6 NIP-11 and
    // 4 NIP-66 documents are left unreferenced.
    client
        .execute_typed("DELETE FROM relays WHERE id = $1", &[(&r1, Type::INT4)])
        .await
        .unwrap();
    let mut deleted = Vec::new();
    loop {
        let n = delete_orphans(&client, "delete_orphan_events", 10)
            .await
            .unwrap();
        deleted.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(deleted, [10, 10, 5, 0]);
    assert_eq!(count(&client, "events").await, 8);
    assert!(!event_exists(&client, &events[0].id).await);
    assert!(event_exists(&client, &events[25].id).await);
    assert!(event_exists(&client, &events[32].id).await);

    let mut deleted = Vec::new();
    while deleted.last() != Some(&0) {
        deleted.push(
            delete_orphans(&client, "delete_orphan_nip11", 4)
                .await
                .unwrap(),
        );
    }
    assert_eq!(deleted, [4, 2, 0]);
    assert_eq!(count(&client, "nip11").await, 1);

    let mut deleted = Vec::new();
    while deleted.last() != Some(&0) {
        deleted.push(
            delete_orphans(&client, "delete_orphan_nip66", 3)
                .await
                .unwrap(),
        );
    }
    assert_eq!(deleted, [3, 1, 0]);
    assert_eq!(count(&client, "nip66").await, 1);
    assert_eq!(count(&client, "relay_metadata").await, 1);
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

async fn concurrent_overlapping_batches_insert_without_error_and_count_exactly(
    implementation: &str,
) {
    const TASKS: usize = 64;
    const RELAYS: usize = 8;
    const EVENTS: u64 = 400;
    // A connection per task, all taken before any starts: 64 callers at
    // once (PgBouncer runs up to its pool size of them at a time).
    let db = TestDb::with_pool_size(implementation, TASKS).await.unwrap();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(TASKS));
    let urls: Vec<String> = (0..RELAYS)
        .map(|r| format!("wss://relay{r}.example"))
        .collect();
    let events: Vec<Event> = (0..EVENTS)
        .map(|n| Event::note(n).with_tags(json!([["p", hex(&key32(3, n % 17))], ["t", "x"]])))
        .collect();

    // What each task inserts: two overlapping batches of (event, relay index).
    let plan = |task: usize| -> Vec<Vec<(usize, usize)>> {
        (0..2)
            .map(|batch| {
                let mut rows: Vec<(usize, usize)> = (0..120)
                    .map(|j| {
                        let event = (task * 29 + batch * 61 + j * 3) % EVENTS as usize;
                        (event, (task + j) % RELAYS)
                    })
                    .collect();
                // Repeats within the batch, too.
                let repeats = rows[..5].to_vec();
                rows.extend(repeats);
                rows
            })
            .collect()
    };
    let mut expected_events = BTreeSet::new();
    let mut expected_pairs = BTreeSet::new();
    for task in 0..TASKS {
        for (event, relay) in plan(task).into_iter().flatten() {
            expected_events.insert(event);
            expected_pairs.insert((event, relay));
        }
    }

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let pool = db.pool().clone();
            let urls = urls.clone();
            let events = events.clone();
            let batches = plan(task);
            let start = start.clone();
            tokio::spawn(async move {
                let client = pool.get().await.unwrap();
                start.wait().await;
                // Every task names every relay, from a different start.
                let mut relays: Vec<(&str, &str)> = (0..RELAYS)
                    .map(|r| (urls[(task + r) % RELAYS].as_str(), "clearnet"))
                    .collect();
                relays.push(relays[0]);
                let returned = insert_relays(&client, &relays, task as i64).await?;
                let mut ids = vec![0; RELAYS];
                for (ord, id) in returned {
                    ids[(task + ord as usize - 1) % RELAYS] = id;
                }
                let mut inserted = (0, 0);
                for rows in &batches {
                    let batch: Vec<Sighting<'_>> = rows
                        .iter()
                        .map(|&(event, relay)| (&events[event], ids[relay], task as i64))
                        .collect();
                    let (new_events, new_relations) = insert_events(&client, &batch).await?;
                    inserted.0 += new_events;
                    inserted.1 += new_relations;
                    if task % 8 == 0 {
                        // Cleanups running meanwhile find nothing to delete.
                        for function in [
                            "delete_orphan_events",
                            "delete_orphan_nip11",
                            "delete_orphan_nip66",
                        ] {
                            assert_eq!(delete_orphans(&client, function, 50).await?, 0);
                        }
                    }
                }
                let checks: Vec<Check> = (0..4)
                    .map(|k| {
                        Check::new(ids[(task + k) % RELAYS], k as i64, true)
                            .nip11(&document(0x11, ((task + k) % 3) as u64))
                            .nip66(&document(0x66, ((task + k) % 5) as u64))
                    })
                    .collect();
                let new_checks = insert_relay_metadata(&client, &checks).await?;
                Ok::<_, tokio_postgres::Error>((ids, inserted, new_checks))
            })
        })
        .collect();

    let mut relay_ids = None;
    let (mut new_events, mut new_relations, mut new_checks) = (0, 0, 0);
    for task in tasks {
        let (ids, inserted, checks) = task.await.unwrap().unwrap();
        assert_eq!(
            relay_ids.get_or_insert_with(|| ids.clone()),
            &ids,
            "every task gets the same relay ids"
        );
        new_events += inserted.0;
        new_relations += inserted.1;
        new_checks += checks;
    }

    let client = db.client().await.unwrap();
    assert_eq!(count(&client, "relays").await, RELAYS as i64);
    assert_eq!(new_events, expected_events.len() as i64);
    assert_eq!(count(&client, "events").await, expected_events.len() as i64);
    assert_eq!(new_relations, expected_pairs.len() as i64);
    assert_eq!(
        count(&client, "events_relays").await,
        expected_pairs.len() as i64
    );
    assert_eq!(new_checks, (RELAYS * 4) as i64);
    assert_eq!(count(&client, "relay_metadata").await, (RELAYS * 4) as i64);
    assert_eq!(count(&client, "nip11").await, 3);
    assert_eq!(count(&client, "nip66").await, 5);
}
