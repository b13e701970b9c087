//! One monitoring cycle over the database: [`Monitor::run_cycle`], the
//! relays it selects ([`select_due_relays`]) and what it did
//! ([`CycleReport`]).

use std::collections::{HashMap, VecDeque};

use anyhow::Context as _;
use bigbrotr_brotr::{Brotr, Network, RelayId, RelayMetadata};
use bigbrotr_pool::{column, Row, Type};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::checker::{Monitor, RelayCheck, TARGET};
use crate::error::{database, Error, Result};
use crate::publish::{monitor_announcement_event, publish_events, relay_discovery_event};

/// Both networks, in the order they are reported.
const NETWORKS: [Network; 2] = [Network::Clearnet, Network::Tor];

/// A relay due for a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRelay {
    /// Its id.
    pub id: RelayId,
    /// Its URL, as stored.
    pub url: String,
    /// How it is reached.
    pub network: Network,
    /// When its latest check was made (Unix seconds); `None` when it was
    /// never checked.
    pub last_checked: Option<i64>,
}

/// The relays on `networks` due for a check: never checked, or whose latest
/// check (in `relay_metadata_latest`) was made at or before `checked_before`
/// (Unix seconds); at most `limit`, never-checked relays first, then the
/// longest unchecked.
///
/// Up to `readable_places` of the `limit` places go first to due relays
/// that were readable at some check (a NIP-66 document with `readable:
/// true`), the longest unchecked first; the other places, and those the
/// readable relays leave unused, go to the rest in the order above. Anyone
/// can add never-checked relays by the thousand: without these places they
/// would always come first and starve the re-checks of real relays.
///
/// The relays are returned in the order above.
pub async fn select_due_relays(
    brotr: &Brotr,
    networks: &[Network],
    checked_before: i64,
    limit: u32,
    readable_places: u32,
) -> Result<Vec<DueRelay>> {
    const WHAT: &str = "selecting the relays due for a check";
    let networks: Vec<&str> = networks.iter().map(|n| n.as_str()).collect();
    let limit = i64::from(limit);
    let readable_places = i64::from(readable_places);
    let rows = brotr
        .pool()
        .fetch_all(
            "WITH due AS ( \
                 SELECT r.id, r.url, r.network, l.generated_at, \
                        CASE WHEN l.generated_at IS NULL THEN false ELSE EXISTS ( \
                            SELECT 1 FROM relay_metadata AS m \
                            JOIN nip66 AS n ON n.id = m.nip66_id \
                            WHERE m.relay_id = r.id AND n.data @> '{\"readable\": true}' \
                        ) END AS readable \
                 FROM relays AS r \
                 LEFT JOIN relay_metadata_latest AS l ON l.relay_id = r.id \
                 WHERE r.network = ANY($1) \
                   AND (l.generated_at IS NULL OR l.generated_at <= $2) \
             ), \
             ranked AS ( \
                 SELECT *, row_number() OVER ( \
                     PARTITION BY readable ORDER BY generated_at ASC NULLS FIRST, id \
                 ) AS within \
                 FROM due \
             ), \
             picked AS ( \
                 SELECT id, url, network, generated_at \
                 FROM ranked \
                 ORDER BY (readable AND within <= $4) DESC, generated_at ASC NULLS FIRST, id \
                 LIMIT $3 \
             ) \
             SELECT id, url, network, generated_at FROM picked \
             ORDER BY generated_at ASC NULLS FIRST, id",
            &[
                (&networks, Type::TEXT_ARRAY),
                (&checked_before, Type::INT8),
                (&limit, Type::INT8),
                (&readable_places, Type::INT8),
            ],
        )
        .await
        .map_err(database(WHAT))?;
    rows.iter().map(due_relay).collect()
}

fn due_relay(row: &Row) -> Result<DueRelay> {
    const WHAT: &str = "reading a relay due for a check";
    let id: i32 = column(row, 0, WHAT, "id").map_err(database(WHAT))?;
    let url: String = column(row, 1, WHAT, "url").map_err(database(WHAT))?;
    let network: String = column(row, 2, WHAT, "network").map_err(database(WHAT))?;
    let last_checked: Option<i64> = column(row, 3, WHAT, "generated_at").map_err(database(WHAT))?;
    let network = network.parse().map_err(|source| Error::UnknownNetwork {
        url: url.clone(),
        source,
    })?;
    Ok(DueRelay {
        id: RelayId(id),
        url,
        network,
        last_checked,
    })
}

/// The places of `limit` kept for relays ever readable: `percent` of it,
/// rounded up.
fn readable_places(limit: u32, percent: u8) -> u32 {
    let places = (u64::from(limit) * u64::from(percent.min(100))).div_ceil(100);
    u32::try_from(places).unwrap_or(limit)
}

/// What one network saw in a cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkReport {
    /// Relays selected for a check.
    pub due: u64,
    /// Checks completed: `connected + failed`.
    pub checked: u64,
    /// Checks whose connection opened.
    pub connected: u64,
    /// Checks whose connection did not open (or was not tried).
    pub failed: u64,
    /// Checks stored as new `relay_metadata` rows.
    pub stored: u64,
}

impl NetworkReport {
    fn add(&mut self, other: &Self) {
        self.due += other.due;
        self.checked += other.checked;
        self.connected += other.connected;
        self.failed += other.failed;
        self.stored += other.stored;
    }
}

/// What a cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// Clearnet relays.
    pub clearnet: NetworkReport,
    /// `.onion` relays.
    pub tor: NetworkReport,
    /// NIP-66 events that a publishing relay accepted (0 when publishing is
    /// off).
    pub published: u64,
    /// Whether the cycle was cancelled before every due relay was checked.
    pub cancelled: bool,
}

impl CycleReport {
    /// The report of `network`.
    #[must_use]
    pub fn network(&self, network: Network) -> &NetworkReport {
        match network {
            Network::Clearnet => &self.clearnet,
            Network::Tor => &self.tor,
        }
    }

    fn network_mut(&mut self, network: Network) -> &mut NetworkReport {
        match network {
            Network::Clearnet => &mut self.clearnet,
            Network::Tor => &mut self.tor,
        }
    }

    /// Both networks together.
    #[must_use]
    pub fn total(&self) -> NetworkReport {
        let mut total = self.clearnet;
        total.add(&self.tor);
        total
    }
}

/// Checks measured and waiting to be stored, per network.
struct Pending {
    rows: HashMap<Network, Vec<RelayMetadata>>,
    batch_size: usize,
}

impl Pending {
    fn push(&mut self, network: Network, row: RelayMetadata) -> bool {
        let rows = self.rows.entry(network).or_default();
        rows.push(row);
        rows.len() >= self.batch_size
    }

    /// Stores the waiting checks of `network`.
    async fn flush(
        &mut self,
        brotr: &Brotr,
        network: Network,
        report: &mut CycleReport,
    ) -> anyhow::Result<()> {
        let rows = std::mem::take(self.rows.entry(network).or_default());
        if rows.is_empty() {
            return Ok(());
        }
        let stored = brotr
            .insert_relay_metadata_batch(&rows)
            .await
            .with_context(|| format!("storing {} checks of {network} relays", rows.len()))?;
        report.network_mut(network).stored += stored;
        Ok(())
    }
}

impl Monitor {
    /// One monitoring cycle: selects the relays due for a check
    /// ([`select_due_relays`], at most `max_relays_per_cycle`, `.onion`
    /// relays only when a SOCKS5 proxy is set), checks them with at most
    /// `concurrency.clearnet` / `concurrency.tor` checks at once, and stores
    /// every check, failures included, in batches of `batch_size`. Then,
    /// when enabled, publishes the results as NIP-66 events.
    ///
    /// Up to `readable_share_percent` of `max_relays_per_cycle` places go to
    /// relays that were readable once (see [`select_due_relays`]).
    ///
    /// When `cancel` fires, no new check starts; checks already finished are
    /// stored, checks still running are abandoned (half a check would be
    /// stored as a misleading result), and the report says `cancelled`.
    ///
    /// Fails when the database cannot be read or written; checks stored
    /// before the failure stay stored.
    #[tracing::instrument(
        name = "monitor.run_cycle",
        target = "bigbrotr::monitor",
        skip_all,
        err(level = "debug")
    )]
    pub async fn run_cycle(
        &self,
        brotr: &Brotr,
        cancel: &CancellationToken,
    ) -> anyhow::Result<CycleReport> {
        let config = self.config();
        let networks: Vec<Network> = NETWORKS.into_iter().filter(|n| self.reaches(*n)).collect();
        if !self.reaches(Network::Tor) {
            tracing::debug!(target: TARGET, "no SOCKS5 proxy: .onion relays are not checked");
        }
        let checked_before = bigbrotr_utils::now_timestamp()
            .saturating_sub(i64::try_from(config.min_age.as_secs()).unwrap_or(i64::MAX));
        let due = select_due_relays(
            brotr,
            &networks,
            checked_before,
            config.max_relays_per_cycle,
            readable_places(config.max_relays_per_cycle, config.readable_share_percent),
        )
        .await
        .context("selecting the relays due for a check")?;

        let mut report = CycleReport::default();
        let mut queues: HashMap<Network, VecDeque<DueRelay>> = HashMap::new();
        for relay in due {
            report.network_mut(relay.network).due += 1;
            queues.entry(relay.network).or_default().push_back(relay);
        }
        let limit = |network| match network {
            Network::Clearnet => config.concurrency.clearnet,
            Network::Tor => config.concurrency.tor,
        };
        let mut running: JoinSet<(RelayId, Network, RelayCheck)> = JoinSet::new();
        let mut in_flight: HashMap<Network, usize> = HashMap::new();
        let mut pending = Pending {
            rows: HashMap::new(),
            batch_size: config.batch_size,
        };
        let mut published = Vec::new();

        loop {
            if !cancel.is_cancelled() {
                for network in NETWORKS {
                    let queue = queues.entry(network).or_default();
                    let busy = in_flight.entry(network).or_default();
                    while *busy < limit(network) {
                        let Some(relay) = queue.pop_front() else {
                            break;
                        };
                        *busy += 1;
                        let monitor = self.clone();
                        running.spawn(async move {
                            let check = monitor.check_relay(&relay.url).await;
                            (relay.id, relay.network, check)
                        });
                    }
                }
            }
            if running.is_empty() {
                break;
            }
            let joined = tokio::select! {
                biased;
                () = cancel.cancelled(), if !report.cancelled => {
                    report.cancelled = true;
                    running.abort_all();
                    continue;
                }
                joined = running.join_next() => joined,
            };
            let Some(joined) = joined else { break };
            let (relay_id, network, check) = match joined {
                Ok(done) => done,
                Err(error) if error.is_cancelled() => continue,
                Err(error) => {
                    return Err(anyhow::Error::new(error).context("a relay check panicked"))
                }
            };
            if let Some(busy) = in_flight.get_mut(&network) {
                *busy = busy.saturating_sub(1);
            }
            let counts = report.network_mut(network);
            counts.checked += 1;
            if check.connected {
                counts.connected += 1;
            } else {
                counts.failed += 1;
            }
            if pending.push(network, check.metadata(relay_id)) {
                pending.flush(brotr, network, &mut report).await?;
            }
            if config.publish.enabled && check.connected {
                published.push(check);
            }
        }
        report.cancelled |= queues.values().any(|queue| !queue.is_empty());
        for network in NETWORKS {
            pending.flush(brotr, network, &mut report).await?;
        }

        if config.publish.enabled && !report.cancelled {
            report.published = self.publish(&networks, &published).await;
        }
        let total = report.total();
        tracing::debug!(
            target: TARGET,
            due = total.due,
            checked = total.checked,
            connected = total.connected,
            failed = total.failed,
            stored = total.stored,
            tor_checked = report.tor.checked,
            published = report.published,
            cancelled = report.cancelled,
            "monitoring cycle done"
        );
        Ok(report)
    }

    /// Publishes the announcement and one discovery event per check;
    /// returns how many were accepted. Failures are logged, not returned:
    /// publishing is a courtesy to the network, the archive is the job.
    async fn publish(&self, networks: &[Network], checks: &[RelayCheck]) -> u64 {
        let config = self.config();
        let keys = self.keys();
        let mut events = Vec::with_capacity(checks.len() + 1);
        let built = monitor_announcement_event(config, networks, keys).and_then(|announcement| {
            events.push(announcement);
            checks
                .iter()
                .try_for_each(|check| relay_discovery_event(check, keys).map(|e| events.push(e)))
        });
        if let Err(error) = built {
            tracing::warn!(target: TARGET, error = %error, "NIP-66 events not built");
            return 0;
        }
        match publish_events(
            &config.publish.relays,
            &events,
            keys,
            self.publish_timeout(),
            self.egress(),
        )
        .await
        {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(target: TARGET, error = %error, "NIP-66 events not published");
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readable_places_are_the_share_of_the_limit_rounded_up() {
        assert_eq!(readable_places(1000, 50), 500);
        assert_eq!(readable_places(3, 50), 2);
        assert_eq!(readable_places(1, 1), 1);
        assert_eq!(readable_places(10, 0), 0);
        assert_eq!(readable_places(10, 100), 10);
        assert_eq!(readable_places(u32::MAX, 100), u32::MAX);
    }
}
