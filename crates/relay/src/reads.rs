//! The relay's reads of the archive: events, counts and negentropy items
//! for filters ([`Conditions`]), each statement in a transaction whose
//! `statement_timeout` is `relay.query_timeout` (a single statement's
//! `BEGIN`, query and `COMMIT` in one round trip); and the pages of events
//! archived since a position, for subscriptions after their `EOSE`.

use std::time::Duration;

use bigbrotr_pool::{column, ConnectionPool, Row, Type};

use crate::error::{database, Error, Result};
use crate::query::{event_json, Conditions, LiveEvent, StoredColumns, EVENT_BY_ID};
use crate::TARGET;

/// Whether the implementation keeps whole events (`relay_serves_events()`).
pub(crate) async fn serves_events(pool: &ConnectionPool) -> Result<bool> {
    const WHAT: &str = "relay_serves_events";
    let row = pool
        .fetch_one("SELECT relay_serves_events()", &[])
        .await
        .map_err(database(WHAT))?;
    column(&row, 0, WHAT, WHAT).map_err(database(WHAT))
}

/// One of a filter's stored events: ready to send, or too large to have
/// come with the others (see [`Conditions::events_query`]), to be read with
/// [`event`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// Its id and JSON, ready to send.
    Ready([u8; 32], String),
    /// Its id.
    Large([u8; 32]),
}

/// The newest `limit` events matching `conditions`, newest first, in a
/// transaction bounded by `timeout`.
pub(crate) async fn events(
    pool: &ConnectionPool,
    conditions: &Conditions,
    limit: i64,
    timeout: Duration,
) -> Result<Vec<Found>> {
    const WHAT: &str = "events";
    let (sql, params) = conditions.events_query(&limit);
    let rows = pool
        .fetch_all_within(timeout, &sql, &params)
        .await
        .map_err(database(WHAT))?;
    let mut found = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: Vec<u8> = column(row, 0, WHAT, "id").map_err(database(WHAT))?;
        let Ok(key) = <[u8; 32]>::try_from(id.as_slice()) else {
            tracing::warn!(target: TARGET, id = %hex::encode(&id), "stored event skipped: its id is not 32 bytes");
            continue;
        };
        // One row that cannot be written (altered by hand) costs only
        // itself.
        match row_event(row, WHAT, EVENTS_QUERY) {
            Ok(Some(event)) => found.push(Found::Ready(key, event.json)),
            Ok(None) => found.push(Found::Large(key)),
            Err(error) => tracing::warn!(target: TARGET, %error, "stored event skipped"),
        }
    }
    Ok(found)
}

/// The stored event `id` as JSON ready to send, if it is archived (still)
/// and can be written.
pub(crate) async fn event(
    pool: &ConnectionPool,
    id: &[u8; 32],
    timeout: Duration,
) -> Result<Option<String>> {
    const WHAT: &str = "event";
    let id: &[u8] = id;
    let rows = pool
        .fetch_all_within(timeout, EVENT_BY_ID, &[(&id, Type::BYTEA)])
        .await
        .map_err(database(WHAT))?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    match row_event(row, WHAT, EVENTS_QUERY) {
        Ok(event) => Ok(event.map(|event| event.json)),
        Err(error) => {
            tracing::warn!(target: TARGET, %error, "stored event skipped");
            Ok(None)
        }
    }
}

/// The number of events matching `conditions`.
pub(crate) async fn count(
    pool: &ConnectionPool,
    conditions: &Conditions,
    limit: Duration,
) -> Result<u64> {
    const WHAT: &str = "count";
    let (sql, params) = conditions.count_query();
    let rows = pool
        .fetch_all_within(limit, &sql, &params)
        .await
        .map_err(database(WHAT))?;
    let count: i64 = match rows.first() {
        Some(row) => column(row, 0, WHAT, "count").map_err(database(WHAT))?,
        None => 0,
    };
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Rows read by one statement of [`negentropy_items`]: what it holds in
/// memory besides the items.
const NEGENTROPY_PAGE: i64 = 20_000;

/// `(created_at, id)` of up to `limit` events matching `conditions`,
/// newest first, read in pages of [`NEGENTROPY_PAGE`] rows, each bounded by
/// `timeout`, in one transaction.
pub(crate) async fn negentropy_items(
    pool: &ConnectionPool,
    conditions: &Conditions,
    limit: i64,
    timeout: Duration,
) -> Result<Vec<(u64, [u8; 32])>> {
    const WHAT: &str = "negentropy items";
    let mut tx = pool.begin_within(timeout).await.map_err(database(WHAT))?;
    let mut items = Vec::new();
    let mut after: Option<(i64, Vec<u8>)> = None;
    loop {
        let left = limit - i64::try_from(items.len()).unwrap_or(i64::MAX);
        let page = left.min(NEGENTROPY_PAGE);
        if page <= 0 {
            break;
        }
        let (sql, params) = conditions.negentropy_query(after.as_ref(), &page);
        let rows = tx.fetch_all(&sql, &params).await.map_err(database(WHAT))?;
        for row in &rows {
            let created_at: i64 = column(row, 0, WHAT, "created_at").map_err(database(WHAT))?;
            let id: Vec<u8> = column(row, 1, WHAT, "id").map_err(database(WHAT))?;
            let key: [u8; 32] = id.as_slice().try_into().map_err(|_| Error::BadRow {
                id: hex::encode(&id),
                reason: format!("id is {} bytes, not 32", id.len()),
            })?;
            items.push((u64::try_from(created_at).unwrap_or(0), key));
            after = Some((created_at, id));
        }
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) < page {
            break;
        }
    }
    tx.commit().await.map_err(database(WHAT))?;
    Ok(items)
}

/// A position in the order sightings are read in after `EOSE`:
/// `(insert_xid, seen_at, event_id, relay_id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LivePosition {
    insert_xid: i64,
    seen_at: i64,
    event_id: Vec<u8>,
    relay_id: i32,
}

impl LivePosition {
    /// Before every sighting of a transaction `insert_xid` or later.
    fn before(insert_xid: i64) -> Self {
        Self {
            insert_xid,
            seen_at: i64::MIN,
            event_id: Vec::new(),
            relay_id: i32::MIN,
        }
    }
}

/// Where reading new events starts: before every sighting that is not yet
/// final (`relay_live_horizon()`).
pub(crate) async fn live_start(pool: &ConnectionPool) -> Result<LivePosition> {
    const WHAT: &str = "relay_live_horizon";
    let row = pool
        .fetch_one("SELECT relay_live_horizon()", &[])
        .await
        .map_err(database(WHAT))?;
    let horizon: i64 = column(&row, 0, WHAT, WHAT).map_err(database(WHAT))?;
    Ok(LivePosition::before(horizon))
}

/// Up to `limit` sightings after `after` (`relay_live_page`): the events
/// first seen there, and the position of the last sighting read (`None`
/// when there was none).
pub(crate) async fn live_page(
    pool: &ConnectionPool,
    after: &LivePosition,
    limit: i32,
) -> Result<(Vec<LiveEvent>, Option<LivePosition>, usize)> {
    const WHAT: &str = "relay_live_page";
    let rows = pool
        .fetch_all(
            "SELECT insert_xid, seen_at, event_id, relay_id, first, pubkey, created_at, kind, \
             tagvalues, tags, content, content_raw, sig \
             FROM relay_live_page($1, $2, $3, $4, $5)",
            &[
                (&after.insert_xid, Type::INT8),
                (&after.seen_at, Type::INT8),
                (&after.event_id, Type::BYTEA),
                (&after.relay_id, Type::INT4),
                (&limit, Type::INT4),
            ],
        )
        .await
        .map_err(database(WHAT))?;
    let mut events = Vec::new();
    let mut last = None;
    for row in &rows {
        let position = LivePosition {
            insert_xid: column(row, 0, WHAT, "insert_xid").map_err(database(WHAT))?,
            seen_at: column(row, 1, WHAT, "seen_at").map_err(database(WHAT))?,
            event_id: column(row, 2, WHAT, "event_id").map_err(database(WHAT))?,
            relay_id: column(row, 3, WHAT, "relay_id").map_err(database(WHAT))?,
        };
        let first: bool = column(row, 4, WHAT, "first").map_err(database(WHAT))?;
        let pubkey: Option<Vec<u8>> = column(row, 5, WHAT, "pubkey").map_err(database(WHAT))?;
        // Deleted between the sighting and the read: nothing to send.
        if first && pubkey.is_some() {
            match live_event(row) {
                Ok(Some(event)) => events.push(event),
                Ok(None) => {}
                Err(error) => tracing::warn!(target: TARGET, %error, "new event skipped"),
            }
        }
        last = Some(position);
    }
    Ok((events, last, rows.len()))
}

/// Where a row holds the columns of an event: `id`, `pubkey`,
/// `created_at`, `kind`, `tags` (JSON text), `content`, `content_raw`,
/// `sig`.
type EventAt = [usize; 8];

/// The columns of [`Conditions::events_query`] and [`EVENT_BY_ID`].
const EVENTS_QUERY: EventAt = [0, 1, 2, 3, 4, 5, 6, 7];
/// The columns of `relay_live_page`.
const LIVE_PAGE: EventAt = [2, 5, 6, 7, 9, 10, 11, 12];

/// An event read from `row` at `at`, as sent; `None` when the row has no
/// tags (an implementation that keeps none).
struct RowEvent {
    id: Vec<u8>,
    pubkey: Vec<u8>,
    created_at: i64,
    kind: i32,
    json: String,
}

fn row_event(row: &Row, what: &'static str, at: EventAt) -> Result<Option<RowEvent>> {
    let [id, pubkey, created_at, kind, tags, content, content_raw, sig] = at;
    let tags: Option<String> = column(row, tags, what, "tags").map_err(database(what))?;
    let Some(tags) = tags else {
        return Ok(None);
    };
    let id: Vec<u8> = column(row, id, what, "id").map_err(database(what))?;
    let pubkey: Vec<u8> = column(row, pubkey, what, "pubkey").map_err(database(what))?;
    let created_at: i64 = column(row, created_at, what, "created_at").map_err(database(what))?;
    let kind: i32 = column(row, kind, what, "kind").map_err(database(what))?;
    let content: String = column(row, content, what, "content").map_err(database(what))?;
    let content_raw: Option<Vec<u8>> =
        column(row, content_raw, what, "content_raw").map_err(database(what))?;
    let sig: Vec<u8> = column(row, sig, what, "sig").map_err(database(what))?;
    let json = event_json(&StoredColumns {
        id: &id,
        pubkey: &pubkey,
        created_at,
        kind,
        tags: &tags,
        content: &content,
        content_raw: content_raw.as_deref(),
        sig: &sig,
    })
    .map_err(|e| Error::BadRow {
        id: hex::encode(&id),
        reason: e.to_string(),
    })?;
    Ok(Some(RowEvent {
        id,
        pubkey,
        created_at,
        kind,
        json,
    }))
}

/// The event of a first sighting, or `None` where the implementation keeps
/// no tags and content.
fn live_event(row: &Row) -> Result<Option<LiveEvent>> {
    const WHAT: &str = "relay_live_page";
    let Some(event) = row_event(row, WHAT, LIVE_PAGE)? else {
        return Ok(None);
    };
    let mut tagvalues: Vec<String> = column(row, 8, WHAT, "tagvalues").map_err(database(WHAT))?;
    tagvalues.sort_unstable();
    // Written, so the id and key have 32 bytes.
    let (Ok(id), Ok(pubkey)) = (
        <[u8; 32]>::try_from(event.id.as_slice()),
        <[u8; 32]>::try_from(event.pubkey.as_slice()),
    ) else {
        return Ok(None);
    };
    Ok(Some(LiveEvent {
        id,
        pubkey,
        created_at: event.created_at,
        kind: event.kind,
        tagvalues,
        json: event.json,
    }))
}
