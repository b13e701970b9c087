//! Events archived after a subscription's `EOSE` reach it, and only the
//! matching ones; a closed subscription gets none.

use std::time::Duration;

use nostr::{EventBuilder, Filter, Keys, Kind};
use nostr_sdk::{Client, RelayPoolNotification};
use serde_json::json;

use crate::support::{config, serve, Raw};

/// The next message that is not `old` sent again: an event archived just
/// before a subscription may come once before its `EOSE` and once after.
async fn next_new(raw: &mut Raw, old: &nostr::Event) -> serde_json::Value {
    loop {
        let message = raw.next().await.expect("a message");
        if message[0] != "EVENT" || message[2]["id"] != old.id.to_hex() {
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_matching_events_arrive_after_eose_and_others_do_not() {
    let keys = Keys::generate();
    let old = EventBuilder::text_note("old")
        .sign_with_keys(&keys)
        .expect("signed");
    let served = serve("bigbrotr", config(), std::slice::from_ref(&old)).await;
    let mut raw = Raw::connect(&served.url()).await;
    let (stored, end) = raw.req("notes", &[json!({"kinds": [1]})]).await;
    assert_eq!(stored.iter().map(|e| e.id).collect::<Vec<_>>(), [old.id]);
    assert_eq!(end, json!(["EOSE", "notes"]));
    let (_, end) = raw.req("closed", &[json!({"kinds": [1]})]).await;
    assert_eq!(end, json!(["EOSE", "closed"]));
    raw.send(&json!(["CLOSE", "closed"])).await;

    let note = EventBuilder::text_note("new")
        .sign_with_keys(&keys)
        .expect("signed");
    let reaction = EventBuilder::new(Kind::Reaction, "+")
        .sign_with_keys(&keys)
        .expect("signed");
    // Give the CLOSE time to arrive before the events are archived.
    tokio::time::sleep(Duration::from_millis(200)).await;
    served.store(&[reaction.clone(), note.clone()]).await;
    let message = next_new(&mut raw, &old).await;
    assert_eq!(message[0], "EVENT");
    assert_eq!(message[1], "notes");
    assert_eq!(message[2]["id"], note.id.to_hex());
    // Seen again on another relay: not a new event.
    let other = served
        .brotr
        .insert_relay("wss://other.example", 1)
        .await
        .expect("relay");
    served
        .brotr
        .insert_event_batch(&[(note.clone(), other)], 1)
        .await
        .expect("insert");
    let last = EventBuilder::text_note("last")
        .sign_with_keys(&keys)
        .expect("signed");
    served.store(std::slice::from_ref(&last)).await;
    let message = next_new(&mut raw, &old).await;
    assert_eq!(message[2]["id"], last.id.to_hex(), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nostr_sdk_subscriptions_receive_new_events() {
    let served = serve("bigbrotr", config(), &[]).await;
    let client = Client::default();
    client.add_relay(served.url()).await.expect("relay");
    client.connect().await;
    let keys = Keys::generate();
    let mut notifications = client.notifications();
    client
        .subscribe(Filter::new().author(keys.public_key()), None)
        .await
        .expect("subscribed");
    // The EOSE of the empty archive, then the new event.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let event = EventBuilder::text_note("live")
        .sign_with_keys(&keys)
        .expect("signed");
    served.store(std::slice::from_ref(&event)).await;
    let received = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(RelayPoolNotification::Event { event, .. }) = notifications.recv().await {
                return event;
            }
        }
    })
    .await
    .expect("an event within 20 s");
    assert_eq!(*received, event);
    client.disconnect().await;
}
