//! The calls of the `sync_*` functions: leases claimed, renewed and
//! released, and cursors advanced. Each is one statement, retried by the
//! pool on a transient error, which is safe: each is idempotent for its
//! worker.

use bigbrotr_brotr::{Brotr, Network, RelayId};
use bigbrotr_pool::{column, Row, Type};
use nostr::EventId;

use crate::error::{database, Error, Result};
use crate::filter::Cursor;

/// A relay leased to this worker, as [`claim_relays`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRelay {
    /// Its id.
    pub relay_id: RelayId,
    /// Its URL, as stored.
    pub url: String,
    /// How it is reached.
    pub network: Network,
    /// The `limitation.max_limit` of its latest NIP-11 document, when there
    /// is one.
    pub max_limit: Option<u32>,
    /// Its cursor, when it has one.
    pub cursor: Option<Cursor>,
    /// The hash of the filter its cursor was walked with.
    pub filter_hash: Option<[u8; 32]>,
}

/// What [`claim_relays`] asks for.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    /// The worker taking the leases.
    pub worker: &'a str,
    /// Only relays on these networks.
    pub networks: &'a [Network],
    /// Relays synced even when the monitor did not find them readable.
    pub extra: &'a [RelayId],
    /// Relays not to claim (those this worker synced in this cycle already,
    /// or syncs now).
    pub exclude: &'a [RelayId],
    /// Only relays whose last sync ended at or before this time (Unix
    /// milliseconds), or never synced.
    pub synced_before_ms: i64,
    /// How long the leases last unless renewed, in seconds.
    pub lease_seconds: i32,
    /// At most this many relays.
    pub limit: usize,
}

/// Leases relays to `claim.worker` (`sync_claim_relays`): readable relays
/// (or `extra` ones) not leased to another worker, never synced first.
/// Concurrent claims, from any process, never return the same relay.
pub async fn claim_relays(brotr: &Brotr, claim: &Claim<'_>) -> Result<Vec<ClaimedRelay>> {
    const WHAT: &str = "sync_claim_relays";
    let networks: Vec<&str> = claim.networks.iter().map(|n| n.as_str()).collect();
    let extra: Vec<i32> = claim.extra.iter().map(|id| id.get()).collect();
    let exclude: Vec<i32> = claim.exclude.iter().map(|id| id.get()).collect();
    let limit = i32::try_from(claim.limit).unwrap_or(i32::MAX);
    let rows = brotr
        .pool()
        .fetch_all(
            "SELECT relay_id, url, network, max_limit, cursor_created_at, cursor_event_id, filter_hash \
             FROM sync_claim_relays($1, $2, $3, $4, $5, $6, $7)",
            &[
                (&claim.worker, Type::TEXT),
                (&networks, Type::TEXT_ARRAY),
                (&extra, Type::INT4_ARRAY),
                (&exclude, Type::INT4_ARRAY),
                (&claim.synced_before_ms, Type::INT8),
                (&claim.lease_seconds, Type::INT4),
                (&limit, Type::INT4),
            ],
        )
        .await
        .map_err(database(WHAT))?;
    rows.iter().map(claimed_relay).collect()
}

fn claimed_relay(row: &Row) -> Result<ClaimedRelay> {
    const WHAT: &str = "sync_claim_relays";
    let relay_id: i32 = column(row, 0, WHAT, "relay_id").map_err(database(WHAT))?;
    let url: String = column(row, 1, WHAT, "url").map_err(database(WHAT))?;
    let network: String = column(row, 2, WHAT, "network").map_err(database(WHAT))?;
    let max_limit: Option<i32> = column(row, 3, WHAT, "max_limit").map_err(database(WHAT))?;
    let created_at: Option<i64> =
        column(row, 4, WHAT, "cursor_created_at").map_err(database(WHAT))?;
    let event_id: Option<Vec<u8>> =
        column(row, 5, WHAT, "cursor_event_id").map_err(database(WHAT))?;
    let filter_hash: Option<Vec<u8>> =
        column(row, 6, WHAT, "filter_hash").map_err(database(WHAT))?;
    let network = network.parse().map_err(|_| Error::Unexpected {
        what: WHAT,
        column: "network",
        found: network.clone(),
    })?;
    let event_id = event_id
        .map(|bytes| {
            EventId::from_slice(&bytes).map_err(|_| Error::Unexpected {
                what: WHAT,
                column: "cursor_event_id",
                found: format!("{} bytes", bytes.len()),
            })
        })
        .transpose()?;
    let filter_hash = filter_hash
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| Error::Unexpected {
                what: WHAT,
                column: "filter_hash",
                found: format!("{} bytes", bytes.len()),
            })
        })
        .transpose()?;
    Ok(ClaimedRelay {
        relay_id: RelayId(relay_id),
        url,
        network,
        max_limit: max_limit.and_then(|limit| u32::try_from(limit).ok()),
        cursor: created_at.map(|created_at| Cursor {
            created_at,
            event_id,
        }),
        filter_hash,
    })
}

/// Extends the leases `worker` still holds on `relays`
/// (`sync_renew_leases`) and returns the relays renewed: a relay missing
/// from the result is no longer this worker's to sync.
pub async fn renew_leases(
    brotr: &Brotr,
    worker: &str,
    relays: &[RelayId],
    lease_seconds: i32,
) -> Result<Vec<RelayId>> {
    const WHAT: &str = "sync_renew_leases";
    let ids: Vec<i32> = relays.iter().map(|id| id.get()).collect();
    let rows = brotr
        .pool()
        .fetch_all(
            "SELECT relay_id FROM sync_renew_leases($1, $2, $3)",
            &[
                (&worker, Type::TEXT),
                (&ids, Type::INT4_ARRAY),
                (&lease_seconds, Type::INT4),
            ],
        )
        .await
        .map_err(database(WHAT))?;
    rows.iter()
        .map(|row| {
            column(row, 0, WHAT, "relay_id")
                .map_err(database(WHAT))
                .map(RelayId)
        })
        .collect()
}

/// Ends the leases `worker` holds on `relays` (`sync_release_relays`),
/// recording the end of their sync, and returns how many it ended.
pub async fn release_relays(brotr: &Brotr, worker: &str, relays: &[RelayId]) -> Result<u64> {
    const WHAT: &str = "sync_release_relays";
    let ids: Vec<i32> = relays.iter().map(|id| id.get()).collect();
    let row = brotr
        .pool()
        .fetch_one(
            "SELECT sync_release_relays($1, $2)",
            &[(&worker, Type::TEXT), (&ids, Type::INT4_ARRAY)],
        )
        .await
        .map_err(database(WHAT))?;
    let released: i64 = column(&row, 0, WHAT, WHAT).map_err(database(WHAT))?;
    Ok(u64::try_from(released).unwrap_or(0))
}

/// Moves the cursor of `relay` forward to `cursor`, walked with the filter
/// of `filter_hash` (`sync_advance_cursor`); call it only once the events up
/// to there are committed. Returns `false` when `worker` no longer holds the
/// relay's lease, and nothing was changed.
pub async fn advance_cursor(
    brotr: &Brotr,
    worker: &str,
    relay: RelayId,
    cursor: &Cursor,
    filter_hash: &[u8; 32],
) -> Result<bool> {
    const WHAT: &str = "sync_advance_cursor";
    let relay_id = relay.get();
    let event_id: Option<&[u8]> = cursor.event_id.as_ref().map(|id| id.as_bytes().as_slice());
    let hash: &[u8] = filter_hash;
    let row = brotr
        .pool()
        .fetch_one(
            "SELECT sync_advance_cursor($1, $2, $3, $4, $5)",
            &[
                (&worker, Type::TEXT),
                (&relay_id, Type::INT4),
                (&cursor.created_at, Type::INT8),
                (&event_id, Type::BYTEA),
                (&hash, Type::BYTEA),
            ],
        )
        .await
        .map_err(database(WHAT))?;
    column(&row, 0, WHAT, WHAT).map_err(database(WHAT))
}
