//! What the synchronizer learns of each relay ([`RelayState`]: its
//! effective cap, NIP-77, authentication, re-sweeps), its pending ranges
//! ([`PendingRange`]), and the archive calls of NIP-77 reconciliation: the
//! calls of the functions of `007_complete_sync.sql`.

use bigbrotr_brotr::{Brotr, RelayId};
use bigbrotr_pool::{column, Type};
use nostr::EventId;

use crate::error::{database, Error, Result};

/// What the synchronizer learned of a relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayState {
    /// The most events the relay ever returned to one `REQ`.
    pub effective_cap: Option<u32>,
    /// Whether it reconciles (NIP-77), as last probed.
    pub nip77: Option<bool>,
    /// When NIP-77 was last probed (Unix seconds).
    pub nip77_checked_at: Option<i64>,
    /// When it last refused the archiver's authentication (Unix seconds).
    pub auth_refused_at: Option<i64>,
    /// When the period behind its cursor was last re-swept completely.
    pub resweep_at: Option<i64>,
}

/// Why a range is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingReason {
    /// One second holds more events than the relay returns to one `REQ`.
    Capped,
    /// The relay listed events in reconciliation that it did not serve.
    Unserved,
}

impl PendingReason {
    /// Its name in the database.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Capped => "capped",
            Self::Unserved => "unserved",
        }
    }
}

/// A time range of a relay whose events could not all be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingRange {
    /// First second (Unix seconds).
    pub since: i64,
    /// Last second, included.
    pub until: i64,
    /// Why it is pending.
    pub reason: PendingReason,
    /// The most events of it fetched in one attempt.
    pub events_seen: u32,
    /// Retries so far.
    pub attempts: u32,
}

/// What the synchronizer learned of `relay` (`sync_get_state`); the
/// default when the relay was never claimed.
pub async fn relay_state(brotr: &Brotr, relay: RelayId) -> Result<RelayState> {
    const WHAT: &str = "sync_get_state";
    let relay_id = relay.get();
    let row = brotr
        .pool()
        .fetch_optional(
            "SELECT effective_cap, nip77, nip77_checked_at, auth_refused_at, resweep_at \
             FROM sync_get_state($1)",
            &[(&relay_id, Type::INT4)],
        )
        .await
        .map_err(database(WHAT))?;
    let Some(row) = row else {
        return Ok(RelayState::default());
    };
    let cap: Option<i32> = column(&row, 0, WHAT, "effective_cap").map_err(database(WHAT))?;
    Ok(RelayState {
        effective_cap: cap.and_then(|cap| u32::try_from(cap).ok()),
        nip77: column(&row, 1, WHAT, "nip77").map_err(database(WHAT))?,
        nip77_checked_at: column(&row, 2, WHAT, "nip77_checked_at").map_err(database(WHAT))?,
        auth_refused_at: column(&row, 3, WHAT, "auth_refused_at").map_err(database(WHAT))?,
        resweep_at: column(&row, 4, WHAT, "resweep_at").map_err(database(WHAT))?,
    })
}

/// Records what `worker` learned of `relay` (`sync_set_state`); the
/// effective cap only grows. Returns `false` when the lease is not
/// `worker`'s any more.
pub(crate) async fn save_relay_state(
    brotr: &Brotr,
    worker: &str,
    relay: RelayId,
    state: &RelayState,
) -> Result<bool> {
    const WHAT: &str = "sync_set_state";
    let relay_id = relay.get();
    let cap: Option<i32> = state
        .effective_cap
        .map(|cap| i32::try_from(cap).unwrap_or(i32::MAX));
    let row = brotr
        .pool()
        .fetch_one(
            "SELECT sync_set_state($1, $2, $3, $4, $5, $6, $7)",
            &[
                (&worker, Type::TEXT),
                (&relay_id, Type::INT4),
                (&cap, Type::INT4),
                (&state.nip77, Type::BOOL),
                (&state.nip77_checked_at, Type::INT8),
                (&state.auth_refused_at, Type::INT8),
                (&state.resweep_at, Type::INT8),
            ],
        )
        .await
        .map_err(database(WHAT))?;
    column(&row, 0, WHAT, WHAT).map_err(database(WHAT))
}

/// Records `since..=until` of `relay` as pending (`sync_add_pending`).
pub(crate) async fn add_pending(
    brotr: &Brotr,
    relay: RelayId,
    filter_hash: &[u8; 32],
    range: &PendingRange,
) -> Result<()> {
    const WHAT: &str = "sync_add_pending";
    let relay_id = relay.get();
    let hash: &[u8] = filter_hash;
    let seen = i32::try_from(range.events_seen).unwrap_or(i32::MAX);
    let now = bigbrotr_utils::now_timestamp();
    brotr
        .pool()
        .fetch_all(
            "SELECT sync_add_pending($1, $2, $3, $4, $5, $6, $7)",
            &[
                (&relay_id, Type::INT4),
                (&hash, Type::BYTEA),
                (&range.since, Type::INT8),
                (&range.until, Type::INT8),
                (&range.reason.as_str(), Type::TEXT),
                (&seen, Type::INT4),
                (&now, Type::INT8),
            ],
        )
        .await
        .map_err(database(WHAT))?;
    Ok(())
}

/// At most `limit` pending ranges of `relay`, the least retried first
/// (`sync_due_pending`).
pub async fn due_pending(
    brotr: &Brotr,
    relay: RelayId,
    filter_hash: &[u8; 32],
    limit: u32,
) -> Result<Vec<PendingRange>> {
    const WHAT: &str = "sync_due_pending";
    let relay_id = relay.get();
    let hash: &[u8] = filter_hash;
    let limit = i32::try_from(limit).unwrap_or(i32::MAX);
    let rows = brotr
        .pool()
        .fetch_all(
            "SELECT since, until, reason, events_seen, attempts FROM sync_due_pending($1, $2, $3)",
            &[
                (&relay_id, Type::INT4),
                (&hash, Type::BYTEA),
                (&limit, Type::INT4),
            ],
        )
        .await
        .map_err(database(WHAT))?;
    rows.iter()
        .map(|row| {
            let reason: String = column(row, 2, WHAT, "reason").map_err(database(WHAT))?;
            let reason = match reason.as_str() {
                "capped" => PendingReason::Capped,
                "unserved" => PendingReason::Unserved,
                _ => {
                    return Err(Error::Unexpected {
                        what: WHAT,
                        column: "reason",
                        found: reason,
                    })
                }
            };
            let seen: i32 = column(row, 3, WHAT, "events_seen").map_err(database(WHAT))?;
            let attempts: i32 = column(row, 4, WHAT, "attempts").map_err(database(WHAT))?;
            Ok(PendingRange {
                since: column(row, 0, WHAT, "since").map_err(database(WHAT))?,
                until: column(row, 1, WHAT, "until").map_err(database(WHAT))?,
                reason,
                events_seen: u32::try_from(seen).unwrap_or(0),
                attempts: u32::try_from(attempts).unwrap_or(0),
            })
        })
        .collect()
}

/// Settles a retry of a pending range: removed when `complete`
/// (`sync_pending_done`), otherwise counted (`sync_pending_attempted`).
pub(crate) async fn settle_pending(
    brotr: &Brotr,
    relay: RelayId,
    filter_hash: &[u8; 32],
    range: &PendingRange,
    complete: bool,
    events_seen: u32,
) -> Result<()> {
    let relay_id = relay.get();
    let hash: &[u8] = filter_hash;
    let result = if complete {
        brotr
            .pool()
            .fetch_all(
                "SELECT sync_pending_done($1, $2, $3, $4)",
                &[
                    (&relay_id, Type::INT4),
                    (&hash, Type::BYTEA),
                    (&range.since, Type::INT8),
                    (&range.until, Type::INT8),
                ],
            )
            .await
            .map_err(database("sync_pending_done"))
    } else {
        let seen = i32::try_from(events_seen).unwrap_or(i32::MAX);
        let now = bigbrotr_utils::now_timestamp();
        brotr
            .pool()
            .fetch_all(
                "SELECT sync_pending_attempted($1, $2, $3, $4, $5, $6)",
                &[
                    (&relay_id, Type::INT4),
                    (&hash, Type::BYTEA),
                    (&range.since, Type::INT8),
                    (&range.until, Type::INT8),
                    (&seen, Type::INT4),
                    (&now, Type::INT8),
                ],
            )
            .await
            .map_err(database("sync_pending_attempted"))
    };
    result.map(|_| ())
}

/// How many ranges are pending, all relays together
/// (`sync_pending_count`).
pub async fn pending_count(brotr: &Brotr) -> Result<u64> {
    const WHAT: &str = "sync_pending_count";
    let row = brotr
        .pool()
        .fetch_one("SELECT sync_pending_count()", &[])
        .await
        .map_err(database(WHAT))?;
    let count: i64 = column(&row, 0, WHAT, WHAT).map_err(database(WHAT))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// How many relays are known to reconcile (NIP-77), by their last probe.
pub async fn nip77_relay_count(brotr: &Brotr) -> Result<u64> {
    const WHAT: &str = "sync_cursors.nip77";
    let row = brotr
        .pool()
        .fetch_one("SELECT count(*) FROM sync_cursors WHERE nip77", &[])
        .await
        .map_err(database(WHAT))?;
    let count: i64 = column(&row, 0, WHAT, "count").map_err(database(WHAT))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The `(created_at, id)` of the events archived with provenance to
/// `relay` and created from `since` to `until` (`sync_relay_event_ids`),
/// at most `limit` of them: the local set of a reconciliation.
pub(crate) async fn relay_event_ids(
    brotr: &Brotr,
    relay: RelayId,
    since: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<(i64, EventId)>> {
    const WHAT: &str = "sync_relay_event_ids";
    let relay_id = relay.get();
    let rows = brotr
        .pool()
        .fetch_all(
            "SELECT id, created_at FROM sync_relay_event_ids($1, $2, $3) LIMIT $4",
            &[
                (&relay_id, Type::INT4),
                (&since, Type::INT8),
                (&until, Type::INT8),
                (&limit, Type::INT8),
            ],
        )
        .await
        .map_err(database(WHAT))?;
    rows.iter()
        .map(|row| {
            let id: &[u8] = column(row, 0, WHAT, "id").map_err(database(WHAT))?;
            let id = EventId::from_slice(id).map_err(|_| Error::Unexpected {
                what: WHAT,
                column: "id",
                found: format!("{} bytes", id.len()),
            })?;
            Ok((
                column(row, 1, WHAT, "created_at").map_err(database(WHAT))?,
                id,
            ))
        })
        .collect()
}

/// Records that `relay` serves those of `ids` the archive holds already,
/// seen at `seen_at` (`insert_sightings`), and returns them; the others
/// must be fetched.
pub(crate) async fn insert_sightings(
    brotr: &Brotr,
    relay: RelayId,
    ids: &[EventId],
    seen_at: i64,
) -> Result<Vec<EventId>> {
    const WHAT: &str = "insert_sightings";
    let relay_id = relay.get();
    let bytes: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes().as_slice()).collect();
    let rows = brotr
        .pool()
        .fetch_all(
            "SELECT event_id FROM insert_sightings($1, $2, $3)",
            &[
                (&relay_id, Type::INT4),
                (&bytes, Type::BYTEA_ARRAY),
                (&seen_at, Type::INT8),
            ],
        )
        .await
        .map_err(database(WHAT))?;
    rows.iter()
        .map(|row| {
            let id: &[u8] = column(row, 0, WHAT, "event_id").map_err(database(WHAT))?;
            EventId::from_slice(id).map_err(|_| Error::Unexpected {
                what: WHAT,
                column: "event_id",
                found: format!("{} bytes", id.len()),
            })
        })
        .collect()
}

/// Records in `quarantine` that `relay` served an event that is not stored
/// (`insert_quarantine`): its second, id and size when known, and why.
pub(crate) async fn quarantine(
    brotr: &Brotr,
    relay: RelayId,
    created_at: Option<i64>,
    event_id: Option<&EventId>,
    size: Option<usize>,
    reason: &str,
) -> Result<()> {
    const WHAT: &str = "insert_quarantine";
    let relay_id = relay.get();
    let id: Option<&[u8]> = event_id.map(|id| id.as_bytes().as_slice());
    let size = size.map(|size| i64::try_from(size).unwrap_or(i64::MAX));
    let now = bigbrotr_utils::now_timestamp();
    brotr
        .pool()
        .fetch_all(
            "SELECT insert_quarantine($1, $2, $3, $4, $5, $6)",
            &[
                (&relay_id, Type::INT4),
                (&created_at, Type::INT8),
                (&id, Type::BYTEA),
                (&size, Type::INT8),
                (&reason, Type::TEXT),
                (&now, Type::INT8),
            ],
        )
        .await
        .map_err(database(WHAT))?;
    Ok(())
}
