//! Provenance: which relays served an event and when ([`Sighting`]), and
//! what the archive knows of a relay ([`RelayReport`], with its
//! [`LatestCheck`]).

use bigbrotr_pool::{column, Type};
use nostr::EventId;
use serde::Serialize;
use serde_json::Value;

use super::{network_column, Brotr};
use crate::error::{database, Result};
use crate::relay::Network;

/// One relay an event was seen on, as [`Brotr::event_relays`] returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sighting {
    /// The relay's URL, as stored.
    pub url: String,
    /// How the relay is reached.
    pub network: Network,
    /// When the event was first seen on that relay (Unix seconds).
    pub seen_at: i64,
}

/// A relay and its latest check, as [`Brotr::relay_report`] returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelayReport {
    /// The relay's URL, as stored.
    pub url: String,
    /// How it is reached.
    pub network: Network,
    /// When it was first recorded (Unix seconds).
    pub inserted_at: i64,
    /// Its latest check; none when it was never checked.
    pub latest_check: Option<LatestCheck>,
}

/// The latest check of a relay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatestCheck {
    /// When it was made (Unix seconds).
    pub generated_at: i64,
    /// Whether a WebSocket connection to the relay succeeded.
    pub connected: bool,
    /// The NIP-11 relay information document obtained, if any.
    pub nip11: Option<Value>,
    /// The NIP-66 measurements made, if any.
    pub nip66: Option<Value>,
}

impl Brotr {
    /// The relays the event `id` was seen on, each with when it was first
    /// seen there, earliest first (then by URL); empty when the event is not
    /// archived.
    ///
    /// Not paged: an event is seen on at most a few thousand relays, and the
    /// pool's `command_timeout` bounds the query.
    #[tracing::instrument(
        name = "brotr.event_relays",
        target = "bigbrotr::brotr",
        skip_all,
        fields(id = %id),
        err(level = "debug")
    )]
    pub async fn event_relays(&self, id: &EventId) -> Result<Vec<Sighting>> {
        const WHAT: &str = "event_relays";
        let id_bytes: &[u8] = id.as_bytes();
        let rows = self
            .pool
            .fetch_all(
                "SELECT url, network, seen_at FROM event_relays($1)",
                &[(&id_bytes, Type::BYTEA)],
            )
            .await
            .map_err(database(WHAT))?;
        rows.iter()
            .map(|row| {
                Ok(Sighting {
                    url: column(row, 0, WHAT, "url").map_err(database(WHAT))?,
                    network: network_column(row, 1, WHAT)?,
                    seen_at: column(row, 2, WHAT, "seen_at").map_err(database(WHAT))?,
                })
            })
            .collect()
    }

    /// The relay recorded under `url` (looked up as by
    /// [`get_relay_by_url`](Self::get_relay_by_url), so any spelling finds
    /// it) with its latest check; `None` when no relay is recorded there.
    #[tracing::instrument(
        name = "brotr.relay_report",
        target = "bigbrotr::brotr",
        skip_all,
        fields(url = %url),
        err(level = "debug")
    )]
    pub async fn relay_report(&self, url: &str) -> Result<Option<RelayReport>> {
        const WHAT: &str = "relay_report";
        let url = self.lookup_form(url);
        let row = self
            .pool
            .fetch_optional(
                "SELECT url, network, inserted_at, generated_at, connected, nip11, nip66 \
                 FROM relay_report($1)",
                &[(&url, Type::TEXT)],
            )
            .await
            .map_err(database(WHAT))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let generated_at: Option<i64> =
            column(&row, 3, WHAT, "generated_at").map_err(database(WHAT))?;
        let latest_check = match generated_at {
            Some(generated_at) => Some(LatestCheck {
                generated_at,
                connected: column(&row, 4, WHAT, "connected").map_err(database(WHAT))?,
                nip11: column(&row, 5, WHAT, "nip11").map_err(database(WHAT))?,
                nip66: column(&row, 6, WHAT, "nip66").map_err(database(WHAT))?,
            }),
            None => None,
        };
        Ok(Some(RelayReport {
            url: column(&row, 0, WHAT, "url").map_err(database(WHAT))?,
            network: network_column(&row, 1, WHAT)?,
            inserted_at: column(&row, 2, WHAT, "inserted_at").map_err(database(WHAT))?,
            latest_check,
        }))
    }
}
