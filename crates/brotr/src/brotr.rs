//! [`Brotr`]: the archive's reads and writes, each one call of a stored
//! procedure of the implementation's function contract.

use std::sync::Arc;
use std::time::Duration;

use bigbrotr_config::{BrotrConfig, Problems};
use bigbrotr_pool::tokio_postgres::types::{FromSql, Json};
use bigbrotr_pool::{ConnectionPool, Row, Type};
use nostr::{Event, EventId};
use serde_json::Value;

use crate::error::{Error, RejectReason, Result};
use crate::event::{check_storable, validate_event, EventRow, StoredEvent};
use crate::metadata::{document, Document, RelayMetadata};
use crate::relay::{validate_relay_url, Network, Relay, RelayId};
use crate::verify::{validate_all, VerifiedSignatures};

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

/// The archive: relays, events with the relays they were seen on, and relay
/// metadata, written and read through the stored procedures every
/// implementation provides.
///
/// Cloning is cheap; clones share the pool.
///
/// # Batches
///
/// Every `*_batch` method first checks each item (event ids and signatures,
/// relay URLs) as the configuration asks, then splits what it accepted into
/// chunks of at most `brotr.batch_size` items and stores each chunk with one
/// procedure call, which is one transaction: a chunk is stored whole or not
/// at all. An invalid event is listed in the report and never keeps the
/// others from being stored; an invalid relay URL fails the whole call
/// before anything is stored, as the ids are returned by position.
///
/// When a chunk fails, the chunks before it stay stored and the error is
/// returned. Every insert skips what exists, so calling again with the same
/// input is safe and stores exactly what is missing.
///
/// # Time limits
///
/// Each chunk of an insert must finish within `brotr.insert_timeout`
/// ([`Error::Timeout`]; the statement is cancelled and the chunk, in all
/// likelihood, not stored). The pool's `command_timeout` bounds every
/// statement too, so the shorter of the two applies. Reads and cleanups are
/// bounded by `command_timeout` only (a cleanup, per call of its procedure).
///
/// # Retries
///
/// Calls are retried by the pool when the connection broke or the database
/// could not be reached (see [`ConnectionPool`]); SQL errors and timeouts
/// are not. Inserts are idempotent, so a retry never stores twice; but if
/// the connection broke after the database committed a chunk, the retry
/// finds its rows present and reports them as duplicates.
#[derive(Debug, Clone)]
pub struct Brotr {
    pool: ConnectionPool,
    config: BrotrConfig,
    /// Shared by clones, like the pool.
    verified: Arc<VerifiedSignatures>,
}

impl Brotr {
    /// An archive writing through `pool` as `config` says, after checking
    /// `config`. Does no I/O.
    pub fn new(pool: ConnectionPool, config: BrotrConfig) -> Result<Self> {
        let mut problems = Problems::new();
        problems.section("brotr", &config);
        if !problems.is_empty() {
            return Err(Error::InvalidConfig {
                problems: problems.into_vec(),
            });
        }
        let verified = Arc::new(VerifiedSignatures::new(config.verified_signatures));
        Ok(Self {
            pool,
            config,
            verified,
        })
    }

    /// The pool it writes through.
    #[must_use]
    pub fn pool(&self) -> &ConnectionPool {
        &self.pool
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &BrotrConfig {
        &self.config
    }

    // -----------------------------------------------------------------
    // Relays
    // -----------------------------------------------------------------

    /// Records a relay unless known, and returns its id. With relay
    /// validation on, `url` is checked and normalised by
    /// [`validate_relay_url`] first, so every spelling of one relay gets the
    /// same id. `inserted_at` (Unix seconds) is kept only when the relay is
    /// new.
    pub async fn insert_relay(&self, url: &str, inserted_at: i64) -> Result<RelayId> {
        let ids = self.insert_relay_batch(&[url], inserted_at).await?;
        ids.into_iter()
            .next()
            .ok_or_else(|| Error::UnexpectedResult {
                what: "insert_relays",
                expected: "1 row".to_owned(),
                found: "0 rows".to_owned(),
            })
    }

    /// Records the relays not yet known and returns the id of every input
    /// URL, in input order (a URL given twice gets its id twice). With relay
    /// validation on, every URL is normalised first, and an invalid one fails
    /// the call ([`Error::InvalidRelayUrl`], naming it and its position)
    /// before anything is stored; with it off, URLs are stored as given and
    /// their network guessed from the host ([`Network::of_url_text`]).
    #[tracing::instrument(
        name = "brotr.insert_relay_batch",
        target = "bigbrotr::brotr",
        skip_all,
        fields(items = urls.len()),
        err(level = "debug")
    )]
    pub async fn insert_relay_batch<S: AsRef<str>>(
        &self,
        urls: &[S],
        inserted_at: i64,
    ) -> Result<Vec<RelayId>> {
        let mut texts = Vec::with_capacity(urls.len());
        let mut networks = Vec::with_capacity(urls.len());
        for (index, url) in urls.iter().enumerate() {
            let url = url.as_ref();
            if self.config.enable_relay_validation {
                let normal = validate_relay_url(url).map_err(|source| Error::InvalidRelayUrl {
                    index,
                    url: url.to_owned(),
                    source,
                })?;
                networks.push(normal.network().as_str());
                texts.push(normal.as_str().to_owned());
            } else {
                networks.push(Network::of_url_text(url).as_str());
                texts.push(url.to_owned());
            }
        }
        let mut ids = Vec::with_capacity(urls.len());
        for (texts, networks) in texts
            .chunks(self.config.batch_size)
            .zip(networks.chunks(self.config.batch_size))
        {
            ids.extend(
                self.insert_relays_chunk(texts, networks, inserted_at)
                    .await?,
            );
        }
        Ok(ids)
    }

    async fn insert_relays_chunk(
        &self,
        urls: &[String],
        networks: &[&str],
        inserted_at: i64,
    ) -> Result<Vec<RelayId>> {
        const WHAT: &str = "insert_relays";
        let rows = self
            .bounded_insert(WHAT, async {
                self.pool
                    .fetch_all(
                        "SELECT ord, relay_id FROM insert_relays($1, $2, $3)",
                        &[
                            (&urls, Type::TEXT_ARRAY),
                            (&networks, Type::TEXT_ARRAY),
                            (&inserted_at, Type::INT8),
                        ],
                    )
                    .await
            })
            .await?;
        let mut ids = Vec::with_capacity(urls.len());
        for (expected, row) in (1..).zip(&rows) {
            let ord: i32 = column(row, 0, WHAT, "ord")?;
            if ord != expected {
                return Err(unexpected_rows(WHAT, urls.len(), rows.len()));
            }
            ids.push(RelayId(column(row, 1, WHAT, "relay_id")?));
        }
        if ids.len() != urls.len() {
            return Err(unexpected_rows(WHAT, urls.len(), rows.len()));
        }
        Ok(ids)
    }

    // -----------------------------------------------------------------
    // Events
    // -----------------------------------------------------------------

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
    /// first ([`validate_event`]), on all cores for
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
        let events: i64 = column(&row, 0, WHAT, "events_inserted")?;
        let relations: i64 = column(&row, 1, WHAT, "relations_inserted")?;
        Ok((count(events), count(relations)))
    }

    // -----------------------------------------------------------------
    // Relay metadata
    // -----------------------------------------------------------------

    /// Records one check of a relay made at `generated_at` (Unix seconds):
    /// whether it `connected`, and the NIP-11 and NIP-66 documents obtained.
    /// Each document is stored once, under its [`document_id`]; returns
    /// `true` when the check is new (a relay has at most one check per
    /// `generated_at`).
    ///
    /// [`document_id`]: crate::document_id
    pub async fn insert_relay_metadata(
        &self,
        relay_id: RelayId,
        nip11: Option<Value>,
        nip66: Option<Value>,
        connected: bool,
        generated_at: i64,
    ) -> Result<bool> {
        let metadata = RelayMetadata {
            relay_id,
            generated_at,
            connected,
            nip11,
            nip66,
        };
        let stored = self
            .insert_relay_metadata_batch(std::slice::from_ref(&metadata))
            .await?;
        Ok(stored == 1)
    }

    /// Records relay checks and returns how many are new. Documents are
    /// stored once per [`document_id`](crate::document_id), with U+0000
    /// removed (which `jsonb` cannot hold). See [`Brotr`] for chunking.
    #[tracing::instrument(
        name = "brotr.insert_relay_metadata_batch",
        target = "bigbrotr::brotr",
        skip_all,
        fields(items = items.len()),
        err(level = "debug")
    )]
    pub async fn insert_relay_metadata_batch(&self, items: &[RelayMetadata]) -> Result<u64> {
        let mut prepared = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let nip11 = item
                .nip11
                .as_ref()
                .map(|doc| document(doc, "nip11", index))
                .transpose()?;
            let nip66 = item
                .nip66
                .as_ref()
                .map(|doc| document(doc, "nip66", index))
                .transpose()?;
            prepared.push((item, nip11, nip66));
        }
        let mut stored = 0;
        for chunk in prepared.chunks(self.config.batch_size) {
            stored += self.insert_relay_metadata_chunk(chunk).await?;
        }
        Ok(stored)
    }

    async fn insert_relay_metadata_chunk(
        &self,
        chunk: &[(&RelayMetadata, Option<Document>, Option<Document>)],
    ) -> Result<u64> {
        const WHAT: &str = "insert_relay_metadata";
        let relay_ids: Vec<i32> = chunk.iter().map(|(m, _, _)| m.relay_id.get()).collect();
        let generated_at: Vec<i64> = chunk.iter().map(|(m, _, _)| m.generated_at).collect();
        let connected: Vec<bool> = chunk.iter().map(|(m, _, _)| m.connected).collect();
        let nip11_ids: Vec<Option<&[u8]>> = chunk
            .iter()
            .map(|(_, d, _)| d.as_ref().map(|d| &d.id[..]))
            .collect();
        let nip11_data: Vec<Option<&Value>> = chunk
            .iter()
            .map(|(_, d, _)| d.as_ref().map(|d| &d.data))
            .collect();
        let nip66_ids: Vec<Option<&[u8]>> = chunk
            .iter()
            .map(|(_, _, d)| d.as_ref().map(|d| &d.id[..]))
            .collect();
        let nip66_data: Vec<Option<&Value>> = chunk
            .iter()
            .map(|(_, _, d)| d.as_ref().map(|d| &d.data))
            .collect();
        let row = self
            .bounded_insert(WHAT, async {
                self.pool
                    .fetch_one(
                        "SELECT insert_relay_metadata($1, $2, $3, $4, $5, $6, $7)",
                        &[
                            (&relay_ids, Type::INT4_ARRAY),
                            (&generated_at, Type::INT8_ARRAY),
                            (&connected, Type::BOOL_ARRAY),
                            (&nip11_ids, Type::BYTEA_ARRAY),
                            (&nip11_data, Type::JSONB_ARRAY),
                            (&nip66_ids, Type::BYTEA_ARRAY),
                            (&nip66_data, Type::JSONB_ARRAY),
                        ],
                    )
                    .await
            })
            .await?;
        let stored: i64 = column(&row, 0, WHAT, "insert_relay_metadata")?;
        Ok(count(stored))
    }

    // -----------------------------------------------------------------
    // Cleanup
    // -----------------------------------------------------------------

    /// Deletes every event seen on no relay any more (its relays were
    /// deleted), `limit` at a time so that no call holds many locks, and
    /// returns how many were deleted. Safe while events are inserted.
    pub async fn delete_orphan_events(&self, limit: u32) -> Result<u64> {
        self.delete_orphans("delete_orphan_events", limit).await
    }

    /// Deletes every NIP-11 document no relay check refers to, `limit` at a
    /// time, and returns how many were deleted.
    pub async fn delete_orphan_nip11(&self, limit: u32) -> Result<u64> {
        self.delete_orphans("delete_orphan_nip11", limit).await
    }

    /// Deletes every NIP-66 document no relay check refers to, `limit` at a
    /// time, and returns how many were deleted.
    pub async fn delete_orphan_nip66(&self, limit: u32) -> Result<u64> {
        self.delete_orphans("delete_orphan_nip66", limit).await
    }

    #[tracing::instrument(
        name = "brotr.delete_orphans",
        target = "bigbrotr::brotr",
        skip(self),
        err(level = "debug")
    )]
    async fn delete_orphans(&self, what: &'static str, limit: u32) -> Result<u64> {
        if limit == 0 {
            return Err(Error::InvalidLimit { what });
        }
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let sql = format!("SELECT {what}($1)");
        let mut total = 0;
        loop {
            let row = self
                .pool
                .fetch_one(&sql, &[(&limit, Type::INT4)])
                .await
                .map_err(|source| Error::Database { what, source })?;
            let deleted = count(column::<i64>(&row, 0, what, what)?);
            if deleted == 0 {
                break;
            }
            total += deleted;
        }
        if total > 0 {
            tracing::info!(target: "bigbrotr::brotr", what, deleted = total, "orphans deleted");
        }
        Ok(total)
    }

    // -----------------------------------------------------------------
    // Reads
    // -----------------------------------------------------------------

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
            .map_err(|source| Error::Database { what: WHAT, source })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let network: String = column(&row, 2, WHAT, "network")?;
        Ok(Some(Relay {
            id: RelayId(column(&row, 0, WHAT, "id")?),
            url: column(&row, 1, WHAT, "url")?,
            network: network.parse().map_err(|e| Error::Decode {
                what: WHAT,
                column: "network",
                source: Box::new(e),
            })?,
            inserted_at: column(&row, 3, WHAT, "inserted_at")?,
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
            .map_err(|source| Error::Database { what: WHAT, source })?;
        column(&row, 0, WHAT, WHAT)
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
            .map_err(|source| Error::Database { what: WHAT, source })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let event = stored_event(&row, WHAT)?.into_event(WHAT)?;
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
            .map_err(|source| Error::Database { what: WHAT, source })?;
        let events = rows
            .iter()
            .map(|row| stored_event(row, WHAT)?.into_event(WHAT))
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
            .map_err(|source| Error::Database { what: WHAT, source })?;
        column(&row, 0, WHAT, WHAT)
    }

    // -----------------------------------------------------------------
    // Helpers
    // -----------------------------------------------------------------

    /// The form of `url` to look up: normalised when validation is on and it
    /// normalises, as given otherwise.
    fn lookup_form(&self, url: &str) -> String {
        if self.config.enable_relay_validation {
            if let Ok(normal) = validate_relay_url(url) {
                return normal.as_str().to_owned();
            }
        }
        url.to_owned()
    }

    /// Runs one insert call within `brotr.insert_timeout`.
    async fn bounded_insert<T, F>(&self, what: &'static str, call: F) -> Result<T>
    where
        F: std::future::Future<Output = bigbrotr_pool::Result<T>>,
    {
        let limit: Duration = self.config.insert_timeout;
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result.map_err(|source| Error::Database { what, source }),
            Err(_) => Err(Error::Timeout { what, after: limit }),
        }
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

/// Column `index` of `row`, or [`Error::Decode`] naming it.
fn column<'r, T: FromSql<'r>>(
    row: &'r Row,
    index: usize,
    what: &'static str,
    name: &'static str,
) -> Result<T> {
    row.try_get(index).map_err(|source| Error::Decode {
        what,
        column: name,
        source: Box::new(source),
    })
}

/// The columns of one row of `get_event_by_id` or `select_events`.
fn stored_event(row: &Row, what: &'static str) -> Result<StoredEvent> {
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

fn unexpected_rows(what: &'static str, expected: usize, found: usize) -> Error {
    Error::UnexpectedResult {
        what,
        expected: format!("{expected} rows numbered 1 to {expected}"),
        found: format!("{found} rows"),
    }
}

/// A count returned by the database; never negative.
fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use bigbrotr_config::{DatabaseConfig, PoolConfig, RetryConfig};

    use super::*;

    fn pool() -> ConnectionPool {
        ConnectionPool::new(
            &DatabaseConfig::default(),
            &PoolConfig::default(),
            &RetryConfig::default(),
        )
        .expect("valid pool configuration")
    }

    #[test]
    fn an_invalid_configuration_is_refused_naming_each_key() {
        let config = BrotrConfig {
            batch_size: 0,
            insert_timeout: Duration::ZERO,
            ..BrotrConfig::default()
        };
        let Err(Error::InvalidConfig { problems }) = Brotr::new(pool(), config) else {
            panic!("expected InvalidConfig");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["brotr.batch_size", "brotr.insert_timeout"]);
    }

    #[test]
    fn raw_arrays_are_sent_only_when_some_value_is_present() {
        let none: [Option<&[u8]>; 2] = [None, None];
        assert_eq!(all_or_none(none.into_iter()), None);
        let some: [Option<&[u8]>; 2] = [None, Some(b"x")];
        assert_eq!(all_or_none(some.into_iter()), Some(some.to_vec()));
    }

    #[tokio::test]
    async fn a_zero_cleanup_limit_is_refused_without_touching_the_database() {
        let brotr = Brotr::new(pool(), BrotrConfig::default()).unwrap();
        assert!(matches!(
            brotr.delete_orphan_events(0).await,
            Err(Error::InvalidLimit {
                what: "delete_orphan_events"
            })
        ));
    }

    #[tokio::test]
    async fn an_invalid_relay_url_fails_the_batch_before_the_database() {
        let brotr = Brotr::new(pool(), BrotrConfig::default()).unwrap();
        let Err(Error::InvalidRelayUrl { index, url, .. }) = brotr
            .insert_relay_batch(&["wss://ok.example", "https://no.example"], 0)
            .await
        else {
            panic!("expected InvalidRelayUrl");
        };
        assert_eq!(index, 1);
        assert_eq!(url, "https://no.example");
    }

    #[tokio::test]
    async fn empty_batches_do_not_touch_the_database() {
        // The pool points at nothing that answers; an empty batch must not try.
        let brotr = Brotr::new(pool(), BrotrConfig::default()).unwrap();
        let none: [&str; 0] = [];
        assert_eq!(brotr.insert_relay_batch(&none, 0).await.unwrap(), []);
        assert_eq!(
            brotr.insert_event_batch(&[], 0).await.unwrap(),
            InsertEventsReport::default()
        );
        assert_eq!(brotr.insert_relay_metadata_batch(&[]).await.unwrap(), 0);
    }
}
