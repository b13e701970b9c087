//! What a cycle did: [`CycleReport`], with one [`RelayReport`] per relay
//! synced, each with its [`SyncCounts`] and [`RelayOutcome`].

use bigbrotr_brotr::{Network, RelayId};

use crate::connection::FetchError;
use crate::filter::Cursor;

/// Events refused, by reason. None of them is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejections {
    /// The id is not the hash of the event.
    pub invalid_id: u64,
    /// The signature does not verify.
    pub invalid_signature: u64,
    /// `created_at` is beyond what the database stores.
    pub out_of_range: u64,
    /// Created outside the window asked for.
    pub outside_window: u64,
    /// Kind, author or tags not what the filter asked for.
    pub filter_mismatch: u64,
    /// Sent twice in one subscription.
    pub repeated: u64,
    /// An `EVENT` message whose event could not be read.
    pub malformed: u64,
    /// Larger than `sizes.max_event`, or sent in a message larger than
    /// `sizes.max_message`; recorded in `quarantine`.
    pub oversized: u64,
}

impl Rejections {
    /// All of them.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.invalid_id
            + self.invalid_signature
            + self.out_of_range
            + self.outside_window
            + self.filter_mismatch
            + self.repeated
            + self.malformed
            + self.oversized
    }

    fn add(&mut self, other: &Self) {
        self.invalid_id += other.invalid_id;
        self.invalid_signature += other.invalid_signature;
        self.out_of_range += other.out_of_range;
        self.outside_window += other.outside_window;
        self.filter_mismatch += other.filter_mismatch;
        self.repeated += other.repeated;
        self.malformed += other.malformed;
        self.oversized += other.oversized;
    }
}

/// Counts of one relay, or of a whole cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// `EVENT` messages received in answer to a `REQ`, rejected ones and
    /// ones received again (a page overlapping the previous one, a
    /// re-sweep) included.
    pub received: u64,
    /// Events newly archived, however they were found.
    pub stored: u64,
    /// Of `stored`, those found by re-sweeps of the period behind the
    /// cursor.
    pub stored_by_resweep: u64,
    /// Of `stored`, those found by NIP-77 reconciliation (outside
    /// re-sweeps).
    pub stored_by_reconcile: u64,
    /// Events accepted that were archived already (from another relay,
    /// say); their provenance is recorded all the same.
    pub duplicates: u64,
    /// New (event, relay) provenance rows from downloaded events.
    pub relations: u64,
    /// Events a reconciliation found on the relay that the archive held
    /// already from other relays: their provenance is recorded without
    /// downloading them.
    pub sightings: u64,
    /// Events refused, by reason.
    pub rejected: Rejections,
    /// `REQ`s sent.
    pub requests: u64,
    /// Bytes of the messages received from relays.
    pub bytes_received: u64,
    /// Time windows completed (walked or reconciled).
    pub windows: u64,
    /// `REQ`s that paged further inside a window whose previous answer may
    /// have been cut short by the relay's cap.
    pub pages: u64,
    /// NIP-77 reconciliations completed.
    pub reconciliations: u64,
    /// Ranges recorded as pending (a second holding more events than the
    /// relay returns at once, or events a reconciliation listed that the
    /// relay did not serve).
    pub pending_added: u64,
    /// Pending ranges retried and found complete.
    pub pending_resolved: u64,
    /// Re-sweeps completed.
    pub resweeps: u64,
    /// Events the archive refused when their batch was stored: isolated
    /// from the rest of the batch, recorded in `quarantine`, not stored.
    pub quarantined: u64,
}

impl SyncCounts {
    pub(crate) fn add(&mut self, other: &Self) {
        self.received += other.received;
        self.stored += other.stored;
        self.stored_by_resweep += other.stored_by_resweep;
        self.stored_by_reconcile += other.stored_by_reconcile;
        self.duplicates += other.duplicates;
        self.relations += other.relations;
        self.sightings += other.sightings;
        self.rejected.add(&other.rejected);
        self.requests += other.requests;
        self.bytes_received += other.bytes_received;
        self.windows += other.windows;
        self.pages += other.pages;
        self.reconciliations += other.reconciliations;
        self.pending_added += other.pending_added;
        self.pending_resolved += other.pending_resolved;
        self.resweeps += other.resweeps;
        self.quarantined += other.quarantined;
    }

    /// Events archived from the relay: newly stored or already archived,
    /// downloaded or recorded as sightings.
    #[must_use]
    pub fn archived(&self) -> u64 {
        self.stored + self.duplicates + self.sightings
    }
}

/// How the sync of a relay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayOutcome {
    /// Everything up to `now - end_lag` is archived.
    CaughtUp,
    /// The relay's time in this cycle (`timeouts.total`) ran out; the next
    /// cycle continues from the cursor.
    TimeUp,
    /// The cycle was cancelled.
    Cancelled,
    /// Another worker holds the relay's lease now.
    LeaseLost,
    /// The relay served more rejected events than `max_rejected`.
    CutOff,
    /// The relay could not be reached or misbehaved on the wire.
    Failed(FetchError),
}

/// What happened to one relay in a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayReport {
    /// Its id.
    pub relay_id: RelayId,
    /// Its URL.
    pub url: String,
    /// How it is reached.
    pub network: Network,
    /// What was fetched and stored.
    pub counts: SyncCounts,
    /// Its cursor at the end: how far its events are archived.
    pub cursor: Option<Cursor>,
    /// Seconds from the cursor to the end of the cycle's range, `now -
    /// end_lag`, when the relay was left: 0 when caught up; `None` when it
    /// has no cursor.
    pub lag: Option<i64>,
    /// How it ended.
    pub outcome: RelayOutcome,
}

/// What a cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// Every relay synced, in the order they ended.
    pub relays: Vec<RelayReport>,
    /// The counts of all relays together.
    pub totals: SyncCounts,
    /// Whether the cycle was cancelled before it was done.
    pub cancelled: bool,
}

impl CycleReport {
    /// The report of the relay `relay_id`, when it was synced.
    #[must_use]
    pub fn relay(&self, relay_id: RelayId) -> Option<&RelayReport> {
        self.relays.iter().find(|relay| relay.relay_id == relay_id)
    }

    /// Relays cut off for serving too many rejected events.
    #[must_use]
    pub fn cut_off(&self) -> usize {
        self.count(|outcome| matches!(outcome, RelayOutcome::CutOff))
    }

    /// Relays that could not be reached or misbehaved on the wire.
    #[must_use]
    pub fn failed(&self) -> usize {
        self.count(|outcome| matches!(outcome, RelayOutcome::Failed(_)))
    }

    /// The largest lag of a relay, in seconds.
    #[must_use]
    pub fn max_lag(&self) -> Option<i64> {
        self.relays.iter().filter_map(|relay| relay.lag).max()
    }

    fn count(&self, predicate: impl Fn(&RelayOutcome) -> bool) -> usize {
        self.relays
            .iter()
            .filter(|relay| predicate(&relay.outcome))
            .count()
    }

    pub(crate) fn push(&mut self, relay: RelayReport) {
        self.totals.add(&relay.counts);
        self.relays.push(relay);
    }
}
