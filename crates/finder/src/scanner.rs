//! [`Finder`]: the relay finder, its configuration checked, and its scan
//! cursor ([`ScanCursor`]).

use std::sync::Arc;

use bigbrotr_brotr::Brotr;
use bigbrotr_config::Problems;
use bigbrotr_pool::{column, Row, Type};
use bigbrotr_utils::Egress;

use crate::candidate::UrlRules;
use crate::config::FinderConfig;
use crate::error::{database, Error, Result};

/// The target of the finder's log events.
pub(crate) const TARGET: &str = "bigbrotr::finder";

/// The name of a finder whose `service.name` is empty.
pub const DEFAULT_NAME: &str = "finder";

/// Finds relays: in the archived events (NIP-65 relay lists, contact-list
/// relay maps, relay hints, NIP-66 discovery events), scanned with a cursor
/// kept in the database, and in HTTP sources; records the new ones. See
/// [`run_cycle`](Self::run_cycle).
///
/// Every connection it opens (HTTP sources) goes through its egress policy
/// ([`with_egress`](Self::with_egress); the strict policy by default),
/// which also refuses candidates whose host is an IP address the policy
/// denies.
///
/// Cloning is cheap; clones share the configuration and the policy.
#[derive(Debug, Clone)]
pub struct Finder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    config: FinderConfig,
    rules: UrlRules,
    egress: Egress,
}

impl Finder {
    /// A finder named `name` (its cursor's key in the database; empty means
    /// [`DEFAULT_NAME`]) working as `config` says. Checks `config` first;
    /// does no I/O.
    pub fn new(name: &str, config: &FinderConfig) -> Result<Self> {
        let mut problems = Problems::new();
        problems.section("finder", config);
        if !problems.is_empty() {
            return Err(Error::InvalidConfig {
                problems: problems.into_vec(),
            });
        }
        let name = if name.is_empty() { DEFAULT_NAME } else { name };
        Ok(Self::build(name, config.clone(), Egress::default()))
    }

    fn build(name: &str, config: FinderConfig, egress: Egress) -> Self {
        let rules = UrlRules {
            max_bytes: config.max_url_bytes,
            egress: egress.policy().clone(),
        };
        Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                config,
                rules,
                egress,
            }),
        }
    }

    /// The same finder, connecting through `egress` and refusing the
    /// candidates its policy denies (the runtime gives the policy of
    /// `config/core/egress.yaml`).
    #[must_use]
    pub fn with_egress(self, egress: Egress) -> Self {
        Self::build(&self.inner.name, self.inner.config.clone(), egress)
    }

    /// Its name, the key of its cursor.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &FinderConfig {
        &self.inner.config
    }

    /// The rules every candidate URL must pass: the configuration's
    /// `max_url_bytes` and the egress policy.
    #[must_use]
    pub fn url_rules(&self) -> &UrlRules {
        &self.inner.rules
    }

    /// The egress policy its connections go through.
    #[must_use]
    pub fn egress(&self) -> &Egress {
        &self.inner.egress
    }

    /// Where its scan of the archive stands: `None` before the first
    /// sighting is read.
    pub async fn cursor(&self, brotr: &Brotr) -> Result<Option<ScanCursor>> {
        const WHAT: &str = "reading the finder's cursor";
        let row = brotr
            .pool()
            .fetch_optional(
                "SELECT insert_xid, seen_at, event_id, relay_id FROM finder_get_cursor($1)",
                &[(&self.name(), Type::TEXT)],
            )
            .await
            .map_err(database(WHAT))?;
        row.map(|row| ScanCursor::from_row(&row, WHAT))
            .transpose()
            .map_err(database(WHAT))
    }

    /// Moves its cursor forward to `cursor` (never back); returns whether it
    /// moved.
    pub async fn set_cursor(&self, brotr: &Brotr, cursor: &ScanCursor) -> Result<bool> {
        const WHAT: &str = "moving the finder's cursor";
        let now = bigbrotr_utils::now_timestamp();
        let event_id: &[u8] = &cursor.event_id;
        let row = brotr
            .pool()
            .fetch_one(
                "SELECT finder_set_cursor($1, $2, $3, $4, $5, $6)",
                &[
                    (&self.name(), Type::TEXT),
                    (&cursor.insert_xid, Type::INT8),
                    (&cursor.seen_at, Type::INT8),
                    (&event_id, Type::BYTEA),
                    (&cursor.relay_id, Type::INT4),
                    (&now, Type::INT8),
                ],
            )
            .await
            .map_err(database(WHAT))?;
        column(&row, 0, WHAT, "finder_set_cursor").map_err(database(WHAT))
    }
}

/// A position in the finder's scan: the last sighting read, in
/// `(insert_xid, seen_at, event_id, relay_id)` order of `events_relays`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScanCursor {
    /// The id of the transaction that inserted the sighting
    /// (`events_relays.insert_xid`, an `xid8`), set by the database.
    pub insert_xid: i64,
    /// When the event was received from the relay (Unix seconds).
    pub seen_at: i64,
    /// The event's id.
    pub event_id: Vec<u8>,
    /// The relay's id.
    pub relay_id: i32,
}

impl ScanCursor {
    pub(crate) fn from_row(row: &Row, what: &'static str) -> bigbrotr_pool::Result<Self> {
        Ok(Self {
            insert_xid: column(row, 0, what, "insert_xid")?,
            seen_at: column(row, 1, what, "seen_at")?,
            event_id: column(row, 2, what, "event_id")?,
            relay_id: column(row, 3, what, "relay_id")?,
        })
    }
}
