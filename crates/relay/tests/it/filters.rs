//! `REQ` over the corpus of real events: every filter shape gets exactly
//! what the corpus holds, newest first, each event as signed; `COUNT`
//! agrees; `EVENT` is refused; lilbrotr refuses `REQ`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use nostr::filter::MatchEventOptions;
use nostr::{Event, EventBuilder, Filter, JsonUtil, Keys, Kind};
use nostr_sdk::Client;
use serde_json::{json, Value};

use crate::support::{config, corpus, serve, Raw};

/// What a relay holding `corpus` should send for `filter`: the matching
/// events, newest first, ties by id, at most its limit (100 when it has
/// none, 500 at most).
fn expected(corpus: &[Event], filter: &Filter) -> Vec<Event> {
    let mut matching: Vec<Event> = corpus
        .iter()
        .filter(|event| filter.match_event(event, MatchEventOptions::new()))
        .cloned()
        .collect();
    matching.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    matching.truncate(filter.limit.unwrap_or(100).min(500));
    matching
}

/// The most frequent value of `key` over `events`.
fn most_common<T: Ord + Clone>(events: &[Event], key: impl Fn(&Event) -> Vec<T>) -> T {
    let mut counts = BTreeMap::new();
    for event in events {
        for value in key(event) {
            *counts.entry(value).or_insert(0) += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, count)| *count)
        .expect("a value")
        .0
}

fn tag_values(event: &Event, letter: &str) -> Vec<String> {
    event
        .tags
        .iter()
        .filter(|tag| tag.as_slice().first().map(String::as_str) == Some(letter))
        .filter_map(|tag| tag.as_slice().get(1).cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_shape_gets_what_the_corpus_holds_newest_first_as_signed() {
    let Some(corpus) = corpus() else { return };
    let served = serve("bigbrotr", config(), &corpus).await;
    let author = most_common(&corpus, |e| vec![e.pubkey.to_hex()]);
    let p = most_common(&corpus, |e| tag_values(e, "p"));
    let e = most_common(&corpus, |e| tag_values(e, "e"));
    let t = most_common(&corpus, |e| tag_values(e, "t"));
    let middle = corpus[corpus.len() / 2].created_at.as_secs();
    let mut by_author: Vec<&Event> = corpus
        .iter()
        .filter(|e| e.pubkey.to_hex() == author)
        .collect();
    by_author.sort_by_key(|e| e.created_at);
    let author_middle = by_author[by_author.len() / 2].created_at.as_secs();
    let author_kind = most_common(&corpus, |e| {
        if e.pubkey.to_hex() == author {
            vec![e.kind.as_u16()]
        } else {
            Vec::new()
        }
    });
    let ids: Vec<String> = corpus.iter().step_by(997).map(|e| e.id.to_hex()).collect();
    let filters = [
        json!({}),
        json!({"ids": ids}),
        json!({"authors": [author]}),
        json!({"kinds": [1]}),
        json!({"kinds": [0, 3], "limit": 40}),
        json!({"#p": [p]}),
        json!({"#e": [e]}),
        json!({"#t": [t, "nostr"]}),
        json!({"since": middle - 86_400, "until": middle + 86_400}),
        json!({"authors": [author], "kinds": [author_kind], "until": author_middle}),
        json!({"kinds": [1], "#p": [p], "limit": 3}),
        json!({"limit": 100_000}),
        json!({"limit": 0}),
    ];
    let mut raw = Raw::connect(&served.url()).await;
    let mut originals = std::collections::HashMap::new();
    for event in &corpus {
        originals.insert(event.id, event);
    }
    for (n, filter) in filters.iter().enumerate() {
        let (events, end) = raw
            .req(&format!("f{n}"), std::slice::from_ref(filter))
            .await;
        assert_eq!(end, json!(["EOSE", format!("f{n}")]), "{filter}");
        let want = expected(
            &corpus,
            &Filter::from_json(filter.to_string()).expect("filter"),
        );
        let got: Vec<_> = events.iter().map(|e| e.id).collect();
        let want_ids: Vec<_> = want.iter().map(|e| e.id).collect();
        assert_eq!(got, want_ids, "filter {filter}");
        if n != 12 {
            assert!(
                !got.is_empty(),
                "filter {filter} found nothing: a weak test"
            );
        }
        for event in &events {
            // As signed: the same JSON as the original, field for field.
            assert_eq!(
                serde_json::to_value(event).expect("json"),
                serde_json::to_value(originals[&event.id]).expect("json")
            );
        }
        raw.send(&json!(["CLOSE", format!("f{n}")])).await;
    }

    // COUNT agrees with the corpus, without a limit.
    for filter in [
        json!({"kinds": [1]}),
        json!({"#p": [p]}),
        json!({"authors": [author]}),
    ] {
        raw.send(&json!(["COUNT", "c", filter])).await;
        let answer = raw.until(&["COUNT", "CLOSED"]).await;
        let parsed = Filter::from_json(filter.to_string()).expect("filter");
        let want = corpus
            .iter()
            .filter(|e| parsed.match_event(e, MatchEventOptions::new()))
            .count();
        assert_eq!(answer, [json!(["COUNT", "c", {"count": want}])], "{filter}");
    }

    // nostr-sdk's client reads the same events, each verified on arrival.
    let client = Client::default();
    client.add_relay(served.url()).await.expect("relay");
    client.connect().await;
    let filter = Filter::new().kind(Kind::TextNote).limit(50);
    let fetched = client
        .fetch_events(filter.clone(), Duration::from_secs(20))
        .await
        .expect("fetched");
    let fetched: HashSet<_> = fetched.iter().map(|e| e.id).collect();
    let want: HashSet<_> = expected(&corpus, &filter).iter().map(|e| e.id).collect();
    assert_eq!(fetched, want);
    client.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_filters_in_one_req_send_each_event_once() {
    let keys = Keys::generate();
    let events: Vec<Event> = (0..10)
        .map(|i| {
            EventBuilder::new(
                Kind::from_u16(if i % 2 == 0 { 1 } else { 7 }),
                format!("n{i}"),
            )
            .custom_created_at(nostr::Timestamp::from_secs(1_700_000_000 + i))
            .sign_with_keys(&keys)
            .expect("signed")
        })
        .collect();
    let served = serve("bigbrotr", config(), &events).await;
    let mut raw = Raw::connect(&served.url()).await;
    let author = keys.public_key().to_hex();
    let (got, end) = raw
        .req(
            "s",
            &[
                json!({"kinds": [1], "limit": 2}),
                json!({"authors": [author], "limit": 3}),
                json!({"kinds": [7], "limit": 1}),
            ],
        )
        .await;
    assert_eq!(end, json!(["EOSE", "s"]));
    let created: Vec<u64> = got
        .iter()
        .map(|e| e.created_at.as_secs() - 1_700_000_000)
        .collect();
    // Filter by filter, each newest first; 9 (kind 7) once though two
    // filters match it.
    assert_eq!(created, [8, 6, 9, 7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_from_a_client_is_refused_and_nothing_is_stored() {
    let served = serve("bigbrotr", config(), &[]).await;
    let keys = Keys::generate();
    let event = EventBuilder::text_note("write me")
        .sign_with_keys(&keys)
        .expect("signed");
    let mut raw = Raw::connect(&served.url()).await;
    raw.send(&json!([
        "EVENT",
        serde_json::to_value(&event).expect("json")
    ]))
    .await;
    let answer = raw.until(&["OK"]).await;
    assert_eq!(
        answer,
        [json!([
            "OK",
            event.id.to_hex(),
            false,
            "blocked: read-only archive"
        ])]
    );
    let client = Client::new(keys);
    client.add_relay(served.url()).await.expect("relay");
    client.connect().await;
    let output = client.send_event(&event).await.expect("sent");
    assert!(output.success.is_empty());
    assert_eq!(
        output.failed.values().next().map(String::as_str),
        Some("blocked: read-only archive")
    );
    assert!(!served.brotr.event_exists(&event.id).await.expect("asked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lilbrotr_refuses_req_and_answers_count() {
    let keys = Keys::generate();
    let events: Vec<Event> = (0..3)
        .map(|i| {
            EventBuilder::text_note(format!("n{i}"))
                .sign_with_keys(&keys)
                .expect("signed")
        })
        .collect();
    let served = serve("lilbrotr", config(), &events).await;
    let mut raw = Raw::connect(&served.url()).await;
    let (got, end) = raw.req("r", &[json!({"kinds": [1]})]).await;
    assert!(got.is_empty());
    assert_eq!(end[0], "CLOSED");
    let reason = end[2].as_str().expect("a reason");
    assert!(reason.starts_with("unsupported: "), "{reason}");
    raw.send(&json!(["COUNT", "c", {"authors": [keys.public_key().to_hex()]}]))
        .await;
    assert_eq!(
        raw.until(&["COUNT"]).await,
        [json!(["COUNT", "c", {"count": 3}])]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_not_nostr_gets_a_notice_and_the_connection_goes_on() {
    let served = serve("bigbrotr", config(), &[]).await;
    let mut raw = Raw::connect(&served.url()).await;
    raw.send_text("not json".to_owned()).await.expect("sent");
    let notice = raw.next().await.expect("a notice");
    assert_eq!(notice[0], "NOTICE");
    assert!(
        notice[1].as_str().expect("text").starts_with("error: "),
        "{notice}"
    );
    let (_, end) = raw.req("after", &[json!({})]).await;
    assert_eq!(end, json!(["EOSE", "after"]));
    let _: Value = end;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_are_read_one_by_one_and_all_come_newest_first() {
    let keys = Keys::generate();
    // 12 events of 300 kB: each too large to come with the others.
    let events: Vec<Event> = (0..12)
        .map(|i| {
            EventBuilder::new(Kind::TextNote, format!("{i}").repeat(300_000))
                .custom_created_at(nostr::Timestamp::from_secs(1_700_000_000 + i / 2))
                .sign_with_keys(&keys)
                .expect("signed")
        })
        .collect();
    let served = serve("bigbrotr", config(), &events).await;
    let mut raw = Raw::connect(&served.url()).await;
    let (got, end) = raw.req("big", &[json!({"kinds": [1], "limit": 11})]).await;
    assert_eq!(end, json!(["EOSE", "big"]));
    let want = expected(&events, &Filter::new().kind(Kind::TextNote).limit(11));
    assert_eq!(
        got.iter().map(|e| e.id).collect::<Vec<_>>(),
        want.iter().map(|e| e.id).collect::<Vec<_>>()
    );
}
