//! Example 2: read an archived event back by its id and verify it with the
//! `nostr` crate.
//!
//! ```sh
//! cargo run --example read_event -- EVENT_ID    # hex or note1…, e.g. printed by archive_event
//! cargo run --example read_event                # archives a new note first, then reads it
//! ```
//!
//! [`Brotr::get_event_by_id`] returns the event exactly as it was signed,
//! even when its content or tags hold U+0000 (which PostgreSQL text cannot):
//! its id is still the hash of its content and its signature still
//! verifies, which [`read_back`] checks with `nostr`'s own
//! [`Event::verify_id`] and [`Event::verify_signature`].

use anyhow::Context as _;
use bigbrotr_brotr::Brotr;
use bigbrotr_config::Env;
use bigbrotr_examples::POOL_CLOSE_GRACE;
use nostr::{Event, EventBuilder, EventId, JsonUtil as _, Keys};

/// Reads the event `id` from the archive and checks that it is exactly the
/// event its author signed.
async fn read_back(brotr: &Brotr, id: &EventId) -> anyhow::Result<Event> {
    let event = brotr
        .get_event_by_id(id)
        .await
        .with_context(|| format!("reading event {id}"))?
        .with_context(|| format!("no event {id} in the archive"))?;
    anyhow::ensure!(event.id == *id, "asked for {id}, got {}", event.id);
    // The id is the SHA-256 of the NIP-01 serialisation: any change to the
    // content, tags, kind, time or author would show here.
    anyhow::ensure!(
        event.verify_id(),
        "the id of {id} does not match its content"
    );
    // The BIP-340 signature of the id by the author's key.
    anyhow::ensure!(
        event.verify_signature(),
        "the signature of {id} does not verify"
    );
    Ok(event)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let id = std::env::args()
        .nth(1)
        .map(|arg| EventId::parse(&arg).with_context(|| format!("`{arg}` is not an event id")))
        .transpose()?;
    let (implementation, env) = bigbrotr_examples::implementation(Env::from_process())?;
    let brotr =
        bigbrotr_examples::open_archive(&implementation, &env, "bigbrotr-example-read").await?;
    let result = async {
        let id = match id {
            Some(id) => id,
            None => {
                let event = EventBuilder::text_note("Read me back.")
                    .sign_with_keys(&Keys::generate())
                    .context("signing a note")?;
                let now = bigbrotr_utils::now_timestamp();
                let relay = brotr.insert_relay("wss://relay.example.com", now).await?;
                brotr.insert_event(&event, relay, now).await?;
                println!("archived a new note, {}", event.id);
                event.id
            }
        };
        read_back(&brotr, &id).await
    }
    .await;
    brotr.pool().disconnect(POOL_CLOSE_GRACE).await;
    let event = result?;
    println!("id and signature verify; the event as signed:");
    println!("{}", event.as_pretty_json());
    Ok(())
}

#[cfg(test)]
mod tests {
    use bigbrotr_examples::testing::fresh_database;
    use nostr::{Kind, Tag};

    use super::*;

    #[tokio::test]
    async fn an_event_reads_back_exactly_as_signed_even_with_nul_characters() {
        let (_db, implementation, env) = fresh_database().await;
        let brotr = bigbrotr_examples::open_archive(&implementation, &env, "test")
            .await
            .unwrap();
        let event = EventBuilder::new(Kind::TextNote, "nul \u{0} inside")
            .tags([
                Tag::parse(["t", "nostr"]).unwrap(),
                Tag::parse(["x", "a\u{0}b"]).unwrap(),
            ])
            .sign_with_keys(&Keys::generate())
            .unwrap();
        let relay = brotr
            .insert_relay("wss://relay.example.com", 1)
            .await
            .unwrap();
        assert!(brotr.insert_event(&event, relay, 1).await.unwrap());

        let read = read_back(&brotr, &event.id).await.unwrap();
        assert_eq!(read, event);
        assert_eq!(read.as_json(), event.as_json());

        let unknown = EventBuilder::text_note("never archived")
            .sign_with_keys(&Keys::generate())
            .unwrap();
        let error = read_back(&brotr, &unknown.id).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("no event {} in the archive", unknown.id)
        );
        brotr.pool().disconnect(POOL_CLOSE_GRACE).await;
    }
}
