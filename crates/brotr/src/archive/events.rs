//! Archiving events with the relays they were seen on: validated first (on
//! all cores for large batches), then stored in chunks; [`InsertEventsReport`]
//! and [`Rejected`] tell what a batch did.

use bigbrotr_pool::tokio_postgres::types::Json;
use bigbrotr_pool::{column, Type};
use nostr::{Event, EventId};

use super::{count, Brotr};
use crate::error::{database, Error, RejectReason, Result};
use crate::event::{check_storable, EventRow};
use crate::relay::RelayId;
use crate::verify::validate_all;

/// What [`Brotr::insert_event_batch`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsertEventsReport {
    /// Events newly archived.
    pub stored: u64,
    /// Accepted items that archived no new event: the event was archived
    /// already, or came earlier in the same batch (from another relay, say).
    /// `stored + duplicates` is the number of items not rejected.
    pub duplicates: u64,
    /// New (event, relay) pairs: the first sighting of an event on a relay.
    pub relations_stored: u64,
    /// The items refused before reaching the database, in input order.
    pub rejected: Vec<Rejected>,
}

/// One item of a batch refused before reaching the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Its position in the input, from 0.
    pub index: usize,
    /// The id the event claims, when there is one.
    pub event_id: Option<EventId>,
    /// Why it was refused.
    pub reason: RejectReason,
}

impl Brotr {
    /// Archives one event seen on `relay_id` at `seen_at` (Unix seconds).
    /// Returns `true` when the event is new to the archive, `false` when it
    /// was known (the relay is still recorded as a source when new).
    /// An event refused by validation is [`Error::RejectedEvent`].
    pub async fn insert_event(
        &self,
        event: &Event,
        relay_id: RelayId,
        seen_at: i64,
    ) -> Result<bool> {
        let report = self.insert_events(vec![(event, relay_id, seen_at)]).await?;
        if let Some(rejected) = report.rejected.first() {
            return Err(Error::RejectedEvent {
                event_id: event.id,
                reason: rejected.reason,
            });
        }
        Ok(report.stored == 1)
    }

    /// Archives events, each seen on its relay, all at `seen_at` (Unix
    /// seconds); see [`insert_event_batch_seen`](Self::insert_event_batch_seen)
    /// for a time per event.
    ///
    /// With event validation on, every event's id and signature are checked
    /// first ([`validate_event`](crate::validate_event)), on all cores for
    /// large batches; refused events are listed in the report with their
    /// reason and the others are stored. See [`Brotr`] for chunking.
    pub async fn insert_event_batch(
        &self,
        events: &[(Event, RelayId)],
        seen_at: i64,
    ) -> Result<InsertEventsReport> {
        self.insert_events(
            events
                .iter()
                .map(|(event, relay)| (event, *relay, seen_at))
                .collect(),
        )
        .await
    }

    /// Like [`insert_event_batch`](Self::insert_event_batch), with the time
    /// each event was seen. For an (event, relay) pair given more than once,
    /// the earliest time is kept.
    pub async fn insert_event_batch_seen(
        &self,
        events: &[(Event, RelayId, i64)],
    ) -> Result<InsertEventsReport> {
        self.insert_events(
            events
                .iter()
                .map(|(event, relay, seen_at)| (event, *relay, *seen_at))
                .collect(),
        )
        .await
    }

    #[tracing::instrument(
        name = "brotr.insert_events",
        target = "bigbrotr::brotr",
        skip_all,
        fields(items = items.len()),
        err(level = "debug")
    )]
    async fn insert_events(
        &self,
        items: Vec<(&Event, RelayId, i64)>,
    ) -> Result<InsertEventsReport> {
        let events: Vec<&Event> = items.iter().map(|(event, _, _)| *event).collect();
        let checks = if self.config.enable_event_validation {
            validate_all(&events, &self.verified).await?
        } else {
            events.iter().map(|event| check_storable(event)).collect()
        };
        let mut report = InsertEventsReport::default();
        let mut accepted = Vec::with_capacity(items.len());
        for (index, ((event, relay, seen_at), check)) in items.iter().zip(checks).enumerate() {
            let row = check.and_then(|()| {
                EventRow::of(event).ok_or(RejectReason::CreatedAtOutOfRange {
                    created_at: event.created_at.as_secs(),
                })
            });
            match row {
                Ok(row) => accepted.push((row, relay.get(), *seen_at)),
                Err(reason) => report.rejected.push(Rejected {
                    index,
                    event_id: Some(event.id),
                    reason,
                }),
            }
        }
        if !report.rejected.is_empty() {
            tracing::debug!(
                target: "bigbrotr::brotr",
                rejected = report.rejected.len(),
                items = items.len(),
                "events refused before insertion"
            );
        }
        for chunk in accepted.chunks(self.config.batch_size) {
            let (stored, relations) = self.insert_events_chunk(chunk).await?;
            report.stored += stored;
            report.relations_stored += relations;
        }
        report.duplicates = to_u64(accepted.len()).saturating_sub(report.stored);
        Ok(report)
    }

    async fn insert_events_chunk(&self, chunk: &[(EventRow<'_>, i32, i64)]) -> Result<(u64, u64)> {
        const WHAT: &str = "insert_events";
        let ids: Vec<&[u8]> = chunk.iter().map(|(row, _, _)| row.id).collect();
        let pubkeys: Vec<&[u8]> = chunk.iter().map(|(row, _, _)| row.pubkey).collect();
        let created_at: Vec<i64> = chunk.iter().map(|(row, _, _)| row.created_at).collect();
        let kinds: Vec<i32> = chunk.iter().map(|(row, _, _)| row.kind).collect();
        let tags: Vec<Json<_>> = chunk.iter().map(|(row, _, _)| Json(&row.tags)).collect();
        let tags_raw = all_or_none(chunk.iter().map(|(row, _, _)| row.tags_raw.as_deref()));
        let contents: Vec<&str> = chunk.iter().map(|(row, _, _)| &*row.content).collect();
        let contents_raw = all_or_none(chunk.iter().map(|(row, _, _)| row.content_raw));
        let sigs: Vec<&[u8]> = chunk.iter().map(|(row, _, _)| &row.sig[..]).collect();
        let relay_ids: Vec<i32> = chunk.iter().map(|(_, relay, _)| *relay).collect();
        let seen_at: Vec<i64> = chunk.iter().map(|(_, _, seen_at)| *seen_at).collect();
        // Computed here rather than by the database, where it costs more than
        // the rest of the row.
        let mut tagvalues = Vec::with_capacity(chunk.len() * 2);
        let mut tagvalue_owners = Vec::with_capacity(chunk.len() * 2);
        for (ordinal, (row, _, _)) in (1_i32..).zip(chunk) {
            row.tags.tagvalues_into(&mut tagvalues);
            tagvalue_owners.resize(tagvalues.len(), ordinal);
        }
        let row = self
            .bounded_insert(WHAT, async {
                self.pool
                    .fetch_one(
                        "SELECT events_inserted, relations_inserted \
                         FROM insert_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                        &[
                            (&ids, Type::BYTEA_ARRAY),
                            (&pubkeys, Type::BYTEA_ARRAY),
                            (&created_at, Type::INT8_ARRAY),
                            (&kinds, Type::INT4_ARRAY),
                            (&tags, Type::JSONB_ARRAY),
                            (&tags_raw, Type::BYTEA_ARRAY),
                            (&contents, Type::TEXT_ARRAY),
                            (&contents_raw, Type::BYTEA_ARRAY),
                            (&sigs, Type::BYTEA_ARRAY),
                            (&relay_ids, Type::INT4_ARRAY),
                            (&seen_at, Type::INT8_ARRAY),
                            (&tagvalues, Type::TEXT_ARRAY),
                            (&tagvalue_owners, Type::INT4_ARRAY),
                        ],
                    )
                    .await
            })
            .await?;
        let events: i64 = column(&row, 0, WHAT, "events_inserted").map_err(database(WHAT))?;
        let relations: i64 = column(&row, 1, WHAT, "relations_inserted").map_err(database(WHAT))?;
        Ok((count(events), count(relations)))
    }
}

/// `Some(values)` when any value is present, `None` (SQL NULL for the whole
/// array) when none is: the common case costs no array of NULLs.
fn all_or_none<'a>(
    values: impl Iterator<Item = Option<&'a [u8]>>,
) -> Option<Vec<Option<&'a [u8]>>> {
    let values: Vec<Option<&[u8]>> = values.collect();
    values.iter().any(Option::is_some).then_some(values)
}

fn to_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_arrays_are_sent_only_when_some_value_is_present() {
        let none: [Option<&[u8]>; 2] = [None, None];
        assert_eq!(all_or_none(none.into_iter()), None);
        let some: [Option<&[u8]>; 2] = [None, Some(b"x")];
        assert_eq!(all_or_none(some.into_iter()), Some(some.to_vec()));
    }
}
