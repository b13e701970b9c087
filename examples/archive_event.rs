//! Example 1: make an event with the `nostr` crate, check it, and archive it
//! with its provenance.
//!
//! ```sh
//! cargo run --example archive_event                       # seen on wss://relay.example.com
//! cargo run --example archive_event -- wss://my.relay.example
//! ```
//!
//! A new key signs a kind 1 note; [`validate_event`] checks its id and
//! signature as the archive does; the relay it is recorded as seen on is
//! stored (normalised) with [`Brotr::insert_relay`], then the note with
//! [`Brotr::insert_event`]. The database is the one of
//! `implementations/bigbrotr/config/core/pool.yaml` (`DB_HOST`, `DB_NAME`, …),
//! whose schema is created first when missing, as `bigbrotr db init` does.
//! Nothing is sent to the relay.

use anyhow::Context as _;
use bigbrotr_brotr::{validate_event, Brotr, RelayId};
use bigbrotr_config::Env;
use bigbrotr_examples::POOL_CLOSE_GRACE;
use nostr::{Event, EventBuilder, Keys, ToBech32 as _};

/// The relay the note is recorded as seen on when none is given.
const DEFAULT_RELAY: &str = "wss://relay.example.com";

/// What [`archive_note`] archived.
struct Archived {
    /// The signed note.
    event: Event,
    /// The relay it was recorded as seen on.
    relay: RelayId,
    /// Whether the note was new to the archive.
    new: bool,
}

/// Signs a note saying `content` with `keys`, checks it, records
/// `relay_url` and archives the note as seen there now.
async fn archive_note(
    brotr: &Brotr,
    keys: &Keys,
    content: &str,
    relay_url: &str,
) -> anyhow::Result<Archived> {
    let event = EventBuilder::text_note(content)
        .sign_with_keys(keys)
        .context("signing the note")?;
    // `insert_event` checks it again (brotr.enable_event_validation): checking
    // first gives the reason of a refusal before the database is reached.
    validate_event(&event).context("the note does not verify")?;
    let now = bigbrotr_utils::now_timestamp();
    let relay = brotr
        .insert_relay(relay_url, now)
        .await
        .with_context(|| format!("recording relay `{relay_url}`"))?;
    let new = brotr
        .insert_event(&event, relay, now)
        .await
        .context("archiving the note")?;
    Ok(Archived { event, relay, new })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let relay_url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_RELAY.to_owned());
    let (implementation, env) = bigbrotr_examples::implementation(Env::from_process())?;
    let brotr =
        bigbrotr_examples::open_archive(&implementation, &env, "bigbrotr-example-archive").await?;
    let keys = Keys::generate();
    let archived = archive_note(&brotr, &keys, "Hello from BigBrotr!", &relay_url).await;
    brotr.pool().disconnect(POOL_CLOSE_GRACE).await;
    let archived = archived?;
    println!(
        "archived note {} ({}) by {}, seen on relay {} (id {}): {}",
        archived.event.id,
        archived.event.id.to_bech32()?,
        archived.event.pubkey.to_bech32()?,
        relay_url,
        archived.relay.get(),
        if archived.new { "new" } else { "known already" }
    );
    println!(
        "read it back: cargo run --example read_event -- {}",
        archived.event.id
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use bigbrotr_examples::testing::{fresh_database, scalar};

    use super::*;

    #[tokio::test]
    async fn notes_are_archived_with_the_relay_they_were_seen_on_stored_once() {
        let (db, implementation, env) = fresh_database().await;
        let brotr = bigbrotr_examples::open_archive(&implementation, &env, "test")
            .await
            .unwrap();
        let keys = Keys::generate();

        let first = archive_note(&brotr, &keys, "hello", "wss://Relay.Example.com/")
            .await
            .unwrap();
        assert!(first.new);
        assert_eq!(first.event.pubkey, keys.public_key());
        assert_eq!(
            scalar(
                &db,
                "SELECT count(*) FROM relays WHERE url = 'wss://relay.example.com'"
            )
            .await,
            1,
            "the URL is stored normalised"
        );

        // The same relay in another spelling is the same relay.
        let again = archive_note(&brotr, &keys, "hello again", "wss://relay.example.com")
            .await
            .unwrap();
        assert_eq!(again.relay, first.relay);
        assert_eq!(scalar(&db, "SELECT count(*) FROM events").await, 2);
        assert_eq!(scalar(&db, "SELECT count(*) FROM events_relays").await, 2);
        let schema_files = bigbrotr_brotr::read_schema_dir(&implementation.sql_dir()).unwrap();
        assert_eq!(
            scalar(&db, "SELECT count(*) FROM schema_migrations").await,
            i64::try_from(schema_files.len()).unwrap(),
            "the schema was created as `bigbrotr db init` does"
        );
        brotr.pool().disconnect(POOL_CLOSE_GRACE).await;
    }
}
