//! Reads: relays by URL, events by id, and pages of events in
//! `(created_at, id)` order ([`EventFilter`], [`EventCursor`]), each event
//! rebuilt from its columns and verified.

use bigbrotr_pool::{column, Row, Type};
use nostr::{Event, EventId};

use super::{network_column, Brotr};
use crate::error::{database, Error, Result};
use crate::event::{validate_event, StoredEvent};
use crate::relay::{validate_relay_url, Relay, RelayId};
use crate::verify::validate_all;

impl Brotr {
    /// The relay recorded under `url`, if any. With relay validation on, a
    /// URL that normalises is looked up in its normal form, so any spelling
    /// finds the relay.
    #[tracing::instrument(
        name = "brotr.get_relay_by_url",
        target = "bigbrotr::brotr",
        skip_all,
        fields(url = %url),
        err(level = "debug")
    )]
    pub async fn get_relay_by_url(&self, url: &str) -> Result<Option<Relay>> {
        const WHAT: &str = "get_relay_by_url";
        let url = self.lookup_form(url);
        let row = self
            .pool
            .fetch_optional(
                "SELECT id, url, network, inserted_at FROM get_relay_by_url($1)",
                &[(&url, Type::TEXT)],
            )
            .await
            .map_err(database(WHAT))?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Relay {
            id: RelayId(column(&row, 0, WHAT, "id").map_err(database(WHAT))?),
            url: column(&row, 1, WHAT, "url").map_err(database(WHAT))?,
            network: network_column(&row, 2, WHAT)?,
            inserted_at: column(&row, 3, WHAT, "inserted_at").map_err(database(WHAT))?,
        }))
    }

    /// Whether a relay is recorded under `url` (looked up as by
    /// [`get_relay_by_url`](Self::get_relay_by_url)).
    #[tracing::instrument(
        name = "brotr.relay_exists",
        target = "bigbrotr::brotr",
        skip_all,
        fields(url = %url),
        err(level = "debug")
    )]
    pub async fn relay_exists(&self, url: &str) -> Result<bool> {
        const WHAT: &str = "relay_exists";
        let url = self.lookup_form(url);
        let row = self
            .pool
            .fetch_one("SELECT relay_exists($1)", &[(&url, Type::TEXT)])
            .await
            .map_err(database(WHAT))?;
        column(&row, 0, WHAT, WHAT).map_err(database(WHAT))
    }

    /// The archived event with that id, rebuilt from its columns (the exact
    /// `tags_raw` / `content_raw` when present) and verified.
    ///
    /// An event that does not verify once rebuilt is
    /// [`Error::EventNotReproducible`]: this is always the case with an
    /// implementation that does not keep content and tags (`lilbrotr`);
    /// use [`event_exists`](Self::event_exists) there.
    #[tracing::instrument(
        name = "brotr.get_event_by_id",
        target = "bigbrotr::brotr",
        skip_all,
        fields(id = %id),
        err(level = "debug")
    )]
    pub async fn get_event_by_id(&self, id: &EventId) -> Result<Option<Event>> {
        const WHAT: &str = "get_event_by_id";
        let id_bytes: &[u8] = id.as_bytes();
        let row = self
            .pool
            .fetch_optional(
                "SELECT id, pubkey, created_at, kind, tags, tags_raw, content, content_raw, sig \
                 FROM get_event_by_id($1)",
                &[(&id_bytes, Type::BYTEA)],
            )
            .await
            .map_err(database(WHAT))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let event = stored_event(&row, WHAT)
            .map_err(database(WHAT))?
            .into_event(WHAT)?;
        validate_event(&event).map_err(|reason| Error::EventNotReproducible {
            event_id: *id,
            reason,
        })?;
        Ok(Some(event))
    }

    /// Up to `limit` archived events matching `filter`, in `(created_at, id)`
    /// order, starting after `after` (from the start when `None`). Pass the
    /// [`EventCursor::of`] the last event of a page to get the next page; an
    /// empty page is the end. Every event is checked (id and signature, on all
    /// cores) so that what is returned is exactly what was signed; an
    /// implementation that does not store whole events (`lilbrotr`) gives
    /// [`Error::EventNotReproducible`].
    #[tracing::instrument(
        name = "brotr.select_events",
        target = "bigbrotr::brotr",
        skip_all,
        fields(limit),
        err(level = "debug")
    )]
    pub async fn select_events(
        &self,
        filter: &EventFilter,
        after: Option<&EventCursor>,
        limit: u32,
    ) -> Result<Vec<Event>> {
        const WHAT: &str = "select_events";
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let after_created_at = after.map(|cursor| cursor.created_at);
        let after_id: Option<&[u8]> = after.map(|cursor| cursor.id.as_bytes().as_slice());
        let rows = self
            .pool
            .fetch_all(
                "SELECT id, pubkey, created_at, kind, tags, tags_raw, content, content_raw, sig \
                 FROM select_events($1, $2, $3, $4, $5, $6)",
                &[
                    (&filter.since, Type::INT8),
                    (&filter.until, Type::INT8),
                    (&filter.kinds, Type::INT4_ARRAY),
                    (&after_created_at, Type::INT8),
                    (&after_id, Type::BYTEA),
                    (&limit, Type::INT4),
                ],
            )
            .await
            .map_err(database(WHAT))?;
        let events = rows
            .iter()
            .map(|row| {
                stored_event(row, WHAT)
                    .map_err(database(WHAT))?
                    .into_event(WHAT)
            })
            .collect::<Result<Vec<Event>>>()?;
        let refs: Vec<&Event> = events.iter().collect();
        let checks = validate_all(&refs, &self.verified).await?;
        for (event, check) in events.iter().zip(checks) {
            check.map_err(|reason| Error::EventNotReproducible {
                event_id: event.id,
                reason,
            })?;
        }
        Ok(events)
    }

    /// Whether an event with that id is archived.
    #[tracing::instrument(
        name = "brotr.event_exists",
        target = "bigbrotr::brotr",
        skip_all,
        fields(id = %id),
        err(level = "debug")
    )]
    pub async fn event_exists(&self, id: &EventId) -> Result<bool> {
        const WHAT: &str = "event_exists";
        let id_bytes: &[u8] = id.as_bytes();
        let row = self
            .pool
            .fetch_one("SELECT event_exists($1)", &[(&id_bytes, Type::BYTEA)])
            .await
            .map_err(database(WHAT))?;
        column(&row, 0, WHAT, WHAT).map_err(database(WHAT))
    }

    /// The form of `url` to look up: normalised when validation is on and it
    /// normalises, as given otherwise.
    pub(super) fn lookup_form(&self, url: &str) -> String {
        if self.config.enable_relay_validation {
            if let Ok(normal) = validate_relay_url(url) {
                return normal.as_str().to_owned();
            }
        }
        url.to_owned()
    }
}

/// The columns of one row of `get_event_by_id` or `select_events`.
fn stored_event(row: &Row, what: &'static str) -> bigbrotr_pool::Result<StoredEvent> {
    Ok(StoredEvent {
        id: column(row, 0, what, "id")?,
        pubkey: column(row, 1, what, "pubkey")?,
        created_at: column(row, 2, what, "created_at")?,
        kind: column(row, 3, what, "kind")?,
        tags: column(row, 4, what, "tags")?,
        tags_raw: column(row, 5, what, "tags_raw")?,
        content: column(row, 6, what, "content")?,
        content_raw: column(row, 7, what, "content_raw")?,
        sig: column(row, 8, what, "sig")?,
    })
}

/// Which events [`Brotr::select_events`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events created at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Only events created at or before this time (Unix seconds).
    pub until: Option<i64>,
    /// Only events of these kinds; any kind when `None`.
    pub kinds: Option<Vec<i32>>,
}

/// A position in the `(created_at, id)` order of [`Brotr::select_events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    /// `created_at` of the last event read.
    pub created_at: i64,
    /// Its id.
    pub id: EventId,
}

impl EventCursor {
    /// The position just after `event`.
    #[must_use]
    pub fn of(event: &Event) -> Self {
        Self {
            created_at: i64::try_from(event.created_at.as_secs()).unwrap_or(i64::MAX),
            id: event.id,
        }
    }
}
