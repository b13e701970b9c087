//! The statistics views (`010_statistics.sql`): the exact contents of every
//! view on a small fixture (relays, events with replaceable and addressable
//! ones, ties and replacements, sightings, NIP-11 documents), new events seen
//! after the next refresh only, and `refresh_stats_view`'s checks.

use serde_json::{json, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use bigbrotr_test_support::TestDb;

use super::helpers::{insert_events, insert_relay_metadata, insert_relays, key32, Check, Event};

for_each_implementation!(
    every_statistics_view_holds_exactly_the_fixture_after_a_refresh,
    every_statistics_view_is_listed_commented_and_uniquely_keyed,
    refresh_stats_view_refuses_other_names,
);

/// Midnight UTC of 2023-11-14.
const DAY: i64 = 1_699_920_000;
/// The first second of the year 10000: past what `stats_daily` dates.
const YEAR_10000: i64 = 253_402_300_800;

/// Event `n` (id `key32(0xee, n)`) by `author`, of `kind` with `tags`,
/// created at `created_at`.
fn event(n: u64, author: u64, kind: i32, tags: Value, created_at: i64) -> Event {
    Event {
        pubkey: key32(0xa1, author),
        kind,
        created_at,
        ..Event::note(n)
    }
    .with_tags(tags)
}

/// Refreshes every statistics view, in order.
async fn refresh_all(client: &Client) {
    client
        .batch_execute("SELECT refresh_stats_view(v) FROM unnest(stats_views()) AS v")
        .await
        .unwrap();
}

/// The rows of `sql`, each row's columns as text (NULL as `None`).
async fn rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let rows = client.simple_query(sql).await.unwrap();
    rows.iter()
        .filter_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Expected rows, written as text.
fn expect(rows: &[&[Option<&str>]]) -> Vec<Vec<Option<String>>> {
    rows.iter()
        .map(|row| row.iter().map(|cell| cell.map(str::to_owned)).collect())
        .collect()
}

/// `\x…` hex of `key32(fill, n)`, as PostgreSQL writes a bytea.
fn bytea(fill: u8, n: u64) -> String {
    format!("\\x{}", super::helpers::hex(&key32(fill, n)))
}

async fn every_statistics_view_holds_exactly_the_fixture_after_a_refresh(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let onion = "ws://2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";
    let ids = insert_relays(
        &client,
        &[
            ("wss://one.example", "clearnet"),
            ("wss://two.example", "clearnet"),
            (onion, "tor"),
            ("wss://idle.example", "clearnet"),
        ],
        1,
    )
    .await
    .unwrap();
    let [r1, r2, r3, r4] = [ids[0].1, ids[1].1, ids[2].1, ids[3].1];

    // Authors 1, 2 and 3; day DAY unless said otherwise.
    let events = [
        event(1, 1, 1, json!([]), DAY + 10),
        event(2, 1, 1, json!([]), DAY + 86_400 + 5), // the next day
        event(3, 2, 7, json!([]), DAY + 20),
        event(4, 1, 0, json!([]), DAY + 100), // replaced by 5
        event(5, 1, 0, json!([]), DAY + 200),
        event(6, 2, 3, json!([]), DAY + 300), // ties with 7: the lower id wins
        event(7, 2, 3, json!([]), DAY + 300),
        event(8, 3, 10002, json!([]), DAY + 50),
        event(9, 1, 30023, json!([["d", "post"]]), DAY + 400), // replaced by 10
        event(10, 1, 30023, json!([["d", "post"]]), DAY + 500),
        event(11, 1, 30023, json!([["d", "other"]]), DAY + 450),
        event(12, 1, 30023, json!([["t", "x"]]), DAY + 460), // no d: ''
        event(13, 1, 30023, json!([["d", ""]]), DAY + 460),  // d '' and a tie with 12
        event(14, 2, 30000, json!([["d", "b"], ["d", "a"]]), DAY + 600),
        event(15, 3, 1, json!([]), YEAR_10000),
        event(16, 3, 10002, json!([]), DAY + 40), // older than 8
        event(17, 2, 20000, json!([]), DAY + 700), // ephemeral: neither view
    ];
    let e = |n: usize| &events[n - 1];
    let sightings = [
        (e(1), r1, 100),
        (e(2), r1, 110),
        (e(4), r1, 130),
        (e(6), r1, 160),
        (e(7), r1, 170),
        (e(9), r1, 180),
        (e(10), r1, 190),
        (e(11), r1, 200),
        (e(17), r1, 210),
        (e(1), r2, 150),
        (e(5), r2, 140),
        (e(12), r2, 220),
        (e(13), r2, 230),
        (e(15), r2, 240),
        (e(3), r3, 120),
        (e(8), r3, 125),
        (e(14), r3, 250),
        (e(16), r3, 260),
    ];
    assert_eq!(insert_events(&client, &sightings).await.unwrap(), (17, 18));

    let strfry = (
        key32(0x11, 1),
        json!({"software": "strfry", "version": "1.0", "supported_nips": [1, 11, "42", 1.5, "x", -3, 123456, 11]}),
    );
    let khatru = (
        key32(0x11, 2),
        json!({"software": "khatru", "supported_nips": [11, 1]}),
    );
    let odd = (
        key32(0x11, 3),
        json!({"software": 7, "supported_nips": "all"}),
    );
    let checks = [
        Check::new(r1, 10, true).nip11(&strfry),
        Check::new(r1, 20, false), // the latest check, without a document
        Check::new(r2, 10, true).nip11(&odd),
        Check::new(r2, 30, true).nip11(&khatru),
        Check::new(r3, 40, true).nip11(&strfry),
        Check::new(r4, 5, false),
    ];
    assert_eq!(insert_relay_metadata(&client, &checks).await.unwrap(), 6);

    // Not populated before the first refresh.
    let error = client
        .simple_query("SELECT * FROM stats_totals")
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(&SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE)
    );
    refresh_all(&client).await;

    let (r1s, r2s, r3s, r4s) = (
        r1.to_string(),
        r2.to_string(),
        r3.to_string(),
        r4.to_string(),
    );
    let t = |offset: i64| (DAY + offset).to_string();
    let far = YEAR_10000.to_string();

    assert_eq!(
        rows(
            &client,
            "SELECT id, events, pubkeys, kinds, relays, sightings FROM stats_totals"
        )
        .await,
        expect(&[&[
            Some("1"),
            Some("17"),
            Some("3"),
            Some("8"),
            Some("4"),
            Some("18")
        ]])
    );

    let mut expected_relays = vec![
        vec![
            r1s.clone(),
            "wss://one.example".into(),
            "clearnet".into(),
            "9".into(),
            t(10),
            t(86_405),
            "210".into(),
        ],
        vec![
            r2s.clone(),
            "wss://two.example".into(),
            "clearnet".into(),
            "5".into(),
            t(10),
            far.clone(),
            "240".into(),
        ],
        vec![
            r3s.clone(),
            onion.into(),
            "tor".into(),
            "4".into(),
            t(20),
            t(600),
            "260".into(),
        ],
    ]
    .into_iter()
    .map(|row| row.into_iter().map(Some).collect::<Vec<_>>())
    .collect::<Vec<_>>();
    expected_relays.push(vec![
        Some(r4s.clone()),
        Some("wss://idle.example".into()),
        Some("clearnet".into()),
        Some("0".into()),
        None,
        None,
        None,
    ]);
    expected_relays.sort_by_key(|row| row[0].clone().unwrap().parse::<i32>().unwrap());
    assert_eq!(
        rows(
            &client,
            "SELECT relay_id, url, network, events, first_created_at, last_created_at, \
             last_seen_at FROM stats_relays ORDER BY relay_id"
        )
        .await,
        expected_relays
    );

    let mut expected_relay_kinds: Vec<Vec<Option<String>>> = [
        (r1, 0, 1, t(100), t(100)),
        (r1, 1, 2, t(10), t(86_405)),
        (r1, 3, 2, t(300), t(300)),
        (r1, 20000, 1, t(700), t(700)),
        (r1, 30023, 3, t(400), t(500)),
        (r2, 0, 1, t(200), t(200)),
        (r2, 1, 2, t(10), far.clone()),
        (r2, 30023, 2, t(460), t(460)),
        (r3, 7, 1, t(20), t(20)),
        (r3, 10002, 2, t(40), t(50)),
        (r3, 30000, 1, t(600), t(600)),
    ]
    .into_iter()
    .map(|(relay, kind, events, first, last)| {
        vec![
            Some(relay.to_string()),
            Some(kind.to_string()),
            Some(events.to_string()),
            Some(first),
            Some(last),
        ]
    })
    .collect();
    expected_relay_kinds.sort_by_key(|row| {
        (
            row[0].clone().unwrap().parse::<i32>().unwrap(),
            row[1].clone().unwrap().parse::<i32>().unwrap(),
        )
    });
    assert_eq!(
        rows(
            &client,
            "SELECT relay_id, kind, events, first_created_at, last_created_at \
             FROM stats_relay_kinds ORDER BY relay_id, kind"
        )
        .await,
        expected_relay_kinds
    );

    assert_eq!(
        rows(
            &client,
            "SELECT kind, events FROM stats_kinds ORDER BY kind"
        )
        .await,
        expect(&[
            &[Some("0"), Some("2")],
            &[Some("1"), Some("3")],
            &[Some("3"), Some("2")],
            &[Some("7"), Some("1")],
            &[Some("10002"), Some("2")],
            &[Some("20000"), Some("1")],
            &[Some("30000"), Some("1")],
            &[Some("30023"), Some("5")],
        ])
    );

    let (a, b, c) = (bytea(0xa1, 1), bytea(0xa1, 2), bytea(0xa1, 3));
    let mut expected_pubkeys = vec![
        vec![a.clone(), "9".into(), "3".into(), t(10), t(86_405)],
        vec![b.clone(), "5".into(), "4".into(), t(20), t(700)],
        vec![c.clone(), "3".into(), "2".into(), t(40), far.clone()],
    ];
    expected_pubkeys.sort();
    assert_eq!(
        rows(
            &client,
            "SELECT pubkey, events, kinds, first_created_at, last_created_at \
             FROM stats_pubkeys ORDER BY pubkey"
        )
        .await,
        expected_pubkeys
            .into_iter()
            .map(|row| row.into_iter().map(Some).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );

    assert_eq!(
        rows(
            &client,
            "SELECT network, relays, events, sightings FROM stats_networks ORDER BY network"
        )
        .await,
        expect(&[
            &[Some("clearnet"), Some("3"), Some("13"), Some("14")],
            &[Some("tor"), Some("1"), Some("4"), Some("4")],
        ])
    );

    assert_eq!(
        rows(
            &client,
            "SELECT day, events FROM stats_daily ORDER BY day NULLS LAST"
        )
        .await,
        expect(&[
            &[Some("2023-11-14"), Some("15")],
            &[Some("2023-11-15"), Some("1")],
            &[None, Some("1")],
        ])
    );

    let mut expected_replaceable = vec![
        vec![a.clone(), "0".into(), bytea(0xee, 5), t(200)],
        vec![b.clone(), "3".into(), bytea(0xee, 6), t(300)],
        vec![c.clone(), "10002".into(), bytea(0xee, 8), t(50)],
    ];
    expected_replaceable.sort();
    assert_eq!(
        rows(
            &client,
            "SELECT pubkey, kind, id, created_at FROM stats_replaceable_latest \
             ORDER BY pubkey, kind"
        )
        .await,
        expected_replaceable
            .into_iter()
            .map(|row| row.into_iter().map(Some).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );

    let mut expected_addressable = vec![
        vec![
            a.clone(),
            "30023".into(),
            String::new(),
            bytea(0xee, 12),
            t(460),
        ],
        vec![
            a.clone(),
            "30023".into(),
            "other".into(),
            bytea(0xee, 11),
            t(450),
        ],
        vec![
            a.clone(),
            "30023".into(),
            "post".into(),
            bytea(0xee, 10),
            t(500),
        ],
        vec![
            b.clone(),
            "30000".into(),
            "a".into(),
            bytea(0xee, 14),
            t(600),
        ],
    ];
    expected_addressable.sort();
    assert_eq!(
        rows(
            &client,
            "SELECT pubkey, kind, d, id, created_at FROM stats_addressable_latest \
             ORDER BY pubkey, kind, d COLLATE \"C\""
        )
        .await,
        expected_addressable
            .into_iter()
            .map(|row| row.into_iter().map(Some).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );

    let mut expected_software = vec![
        vec![
            Some(r1s.clone()),
            Some("wss://one.example".into()),
            Some("10".into()),
            Some("strfry".into()),
            Some("1.0".into()),
            Some("{1,11,42}".into()),
        ],
        vec![
            Some(r2s.clone()),
            Some("wss://two.example".into()),
            Some("30".into()),
            Some("khatru".into()),
            None,
            Some("{1,11}".into()),
        ],
        vec![
            Some(r3s.clone()),
            Some(onion.into()),
            Some("40".into()),
            Some("strfry".into()),
            Some("1.0".into()),
            Some("{1,11,42}".into()),
        ],
    ];
    expected_software.sort_by_key(|row| row[0].clone().unwrap().parse::<i32>().unwrap());
    assert_eq!(
        rows(
            &client,
            "SELECT relay_id, url, nip11_at, software, version, supported_nips \
             FROM stats_relay_software ORDER BY relay_id"
        )
        .await,
        expected_software
    );
    assert_eq!(
        rows(
            &client,
            "SELECT software, version, relays FROM stats_software ORDER BY software, version"
        )
        .await,
        expect(&[
            &[Some("khatru"), Some(""), Some("1")],
            &[Some("strfry"), Some("1.0"), Some("2")],
        ])
    );
    assert_eq!(
        rows(&client, "SELECT nip, relays FROM stats_nips ORDER BY nip").await,
        expect(&[
            &[Some("1"), Some("3")],
            &[Some("11"), Some("3")],
            &[Some("42"), Some("2")],
        ])
    );
    assert_eq!(
        rows(&client, "SELECT count(*) FROM stats_refreshes").await,
        expect(&[&[Some("12")]])
    );

    // A new profile of author 1, seen on the idle relay, and a NIP-11
    // document for it: nothing moves until the next refresh.
    let newer = event(18, 1, 0, json!([]), DAY + 900);
    assert_eq!(
        insert_events(&client, &[(&newer, r4, 300)]).await.unwrap(),
        (1, 1)
    );
    let replaceable_of_1 =
        format!("SELECT id FROM stats_replaceable_latest WHERE pubkey = '{a}' AND kind = 0");
    assert_eq!(
        rows(&client, &replaceable_of_1).await,
        expect(&[&[Some(bytea(0xee, 5).as_str())]])
    );
    refresh_all(&client).await;
    assert_eq!(
        rows(&client, &replaceable_of_1).await,
        expect(&[&[Some(bytea(0xee, 18).as_str())]])
    );
    assert_eq!(
        rows(
            &client,
            "SELECT events, pubkeys, kinds, relays, sightings FROM stats_totals"
        )
        .await,
        expect(&[&[Some("18"), Some("3"), Some("8"), Some("4"), Some("19")]])
    );
    assert_eq!(
        rows(
            &client,
            &format!("SELECT events, last_seen_at FROM stats_relays WHERE relay_id = {r4}")
        )
        .await,
        expect(&[&[Some("1"), Some("300")]])
    );
    assert_eq!(
        rows(&client, "SELECT events FROM stats_kinds WHERE kind = 0").await,
        expect(&[&[Some("3")]])
    );
}

async fn every_statistics_view_is_listed_commented_and_uniquely_keyed(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    let listed: Vec<String> = client
        .query_typed_one("SELECT stats_views()", &[])
        .await
        .unwrap()
        .get(0);
    let mut sorted = listed.clone();
    sorted.sort();
    let views: Vec<String> = client
        .query_typed(
            "SELECT matviewname::text FROM pg_matviews WHERE schemaname = current_schema() \
             ORDER BY matviewname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(sorted, views, "stats_views() lists every materialized view");
    assert_eq!(listed.len(), 12);
    for view in &listed {
        let row = client
            .query_typed_one(
                "SELECT obj_description(c.oid, 'pg_class') IS NOT NULL, \
                        NOT c.relispopulated, \
                        EXISTS (SELECT 1 FROM pg_index AS i \
                                WHERE i.indrelid = c.oid AND i.indisunique \
                                  AND i.indexprs IS NULL AND i.indpred IS NULL) \
                 FROM pg_class AS c WHERE c.oid = $1::text::regclass",
                &[(view, Type::TEXT)],
            )
            .await
            .unwrap();
        let (commented, empty, keyed): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
        assert!(commented, "{view} has no comment");
        assert!(empty, "{view} is created empty");
        assert!(keyed, "{view} has no unique index on plain columns");
        let uncommented: i64 = client
            .query_typed_one(
                "SELECT count(*) FROM pg_attribute \
                 WHERE attrelid = $1::text::regclass AND attnum > 0 \
                   AND col_description(attrelid, attnum) IS NULL",
                &[(view, Type::TEXT)],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(uncommented, 0, "every column of {view} is described");
    }
    // Each view is listed after the views it reads.
    let dependencies = client
        .query_typed(
            "SELECT DISTINCT v.relname::text, d.relname::text \
             FROM pg_rewrite AS rw \
             JOIN pg_class AS v ON v.oid = rw.ev_class AND v.relkind = 'm' \
             JOIN pg_depend AS dep ON dep.classid = 'pg_rewrite'::regclass \
                                  AND dep.objid = rw.oid \
                                  AND dep.refclassid = 'pg_class'::regclass \
                                  AND dep.refobjid <> v.oid \
             JOIN pg_class AS d ON d.oid = dep.refobjid AND d.relkind = 'm'",
            &[],
        )
        .await
        .unwrap();
    assert!(!dependencies.is_empty());
    let position = |name: &str| listed.iter().position(|v| v == name).unwrap();
    for row in dependencies {
        let (view, reads): (String, String) = (row.get(0), row.get(1));
        assert!(
            position(&reads) < position(&view),
            "{view} reads {reads}, listed after it"
        );
    }
}

async fn refresh_stats_view_refuses_other_names(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();
    for name in [
        "events",
        "relay_metadata_latest",
        "stats_totals; DROP TABLE events",
    ] {
        let error = client
            .query_typed("SELECT refresh_stats_view($1)", &[(&name, Type::TEXT)])
            .await
            .unwrap_err();
        assert_eq!(
            error.code(),
            Some(&SqlState::INVALID_PARAMETER_VALUE),
            "{name}"
        );
    }
    let error = client
        .query_typed("SELECT refresh_stats_view(NULL)", &[])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));

    client
        .batch_execute("DROP MATERIALIZED VIEW stats_nips")
        .await
        .unwrap();
    let error = client
        .query_typed("SELECT refresh_stats_view('stats_nips')", &[])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::UNDEFINED_TABLE));

    // Inside a transaction, under the caller's statement_timeout: the first
    // refresh fills the view, the second is concurrent.
    client
        .batch_execute(
            "BEGIN; SET LOCAL statement_timeout = '10s'; \
             SELECT refresh_stats_view('stats_kinds'); COMMIT; \
             BEGIN; SELECT refresh_stats_view('stats_kinds'); COMMIT",
        )
        .await
        .unwrap();
    let row = client
        .query_typed_one(
            "SELECT view_name, refreshed_at > 0, duration_ms >= 0 FROM stats_refreshes",
            &[],
        )
        .await
        .unwrap();
    let (view, at, took): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((view.as_str(), at, took), ("stats_kinds", true, true));
}
