//! One discovery cycle: [`Finder::run_cycle`], the pages of the archive it
//! reads ([`scan_page`]) and what it did ([`CycleReport`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::Context as _;
use bigbrotr_brotr::Brotr;
use bigbrotr_pool::{column, Type};
use bigbrotr_utils::{bounded_text, REMOTE_TEXT_MAX_BYTES};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::candidate::{check_url, contact_list_relays, relay_domain, Rejection, Source};
use crate::error::{database, Error, Result};
use crate::http::fetch_http_source;
use crate::scanner::{Finder, ScanCursor, TARGET};

/// What a cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// Sightings (`events_relays` rows) read; an event is looked at only at
    /// its first sighting, and only when its kind is configured.
    pub sightings: u64,
    /// Candidate URLs found, before any check, duplicates included:
    /// `accepted` plus every rejection except
    /// [`Rejection::MalformedContactList`] and
    /// [`Rejection::TooManyForDomain`] (given to relays already accepted).
    pub candidates: u64,
    /// Candidates per source.
    pub by_source: BTreeMap<Source, u64>,
    /// Candidates that passed the checks, duplicates included.
    pub accepted: u64,
    /// Distinct relays (normalised URLs) among them.
    pub distinct: u64,
    /// Relays that were not in the archive and were recorded.
    pub new: u64,
    /// Refusals per reason: URLs, and contact lists whose content could not
    /// be read.
    pub rejected: BTreeMap<Rejection, u64>,
    /// HTTP sources that could not be fetched or read.
    pub http_failures: u64,
    /// Whether the cycle was cancelled before it finished.
    pub cancelled: bool,
}

impl CycleReport {
    /// All refusals, every reason together.
    #[must_use]
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// One row of [`scan_page`]: a sighting read, or a candidate it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanRow {
    /// A sighting read; the last one of a page is the next cursor.
    Sighting(ScanCursor),
    /// A candidate URL as written (for [`Source::ContactList`], the whole
    /// content of the contact list).
    Candidate {
        /// Where it was found.
        source: Source,
        /// The text.
        text: String,
    },
}

/// One page of the scan through the implementation's `finder_candidates`:
/// the first `limit` sightings after `after` (from the start when `None`),
/// of events of `kinds` (any kind when `None`), with the candidates they
/// give, in scan order. Only sightings inserted by transactions older than
/// every transaction still open are read, so none can commit behind the
/// page later.
pub async fn scan_page(
    brotr: &Brotr,
    after: Option<&ScanCursor>,
    kinds: Option<&[i32]>,
    limit: u32,
) -> Result<Vec<ScanRow>> {
    const WHAT: &str = "finder_candidates";
    let limit = i32::try_from(limit).unwrap_or(i32::MAX);
    let after_insert_xid = after.map(|cursor| cursor.insert_xid);
    let after_seen_at = after.map(|cursor| cursor.seen_at);
    let after_event_id: Option<&[u8]> = after.map(|cursor| cursor.event_id.as_slice());
    let after_relay_id = after.map(|cursor| cursor.relay_id);
    let kinds: Option<Vec<i32>> = kinds.map(<[i32]>::to_vec);
    let rows = brotr
        .pool()
        .fetch_all(
            "SELECT insert_xid, seen_at, event_id, relay_id, source, url \
             FROM finder_candidates($1, $2, $3, $4, $5, $6)",
            &[
                (&after_insert_xid, Type::INT8),
                (&after_seen_at, Type::INT8),
                (&after_event_id, Type::BYTEA),
                (&after_relay_id, Type::INT4),
                (&kinds, Type::INT4_ARRAY),
                (&limit, Type::INT4),
            ],
        )
        .await
        .map_err(database(WHAT))?;
    rows.iter()
        .map(|row| {
            let source: Option<String> = column(row, 4, WHAT, "source").map_err(database(WHAT))?;
            let Some(source) = source else {
                return ScanCursor::from_row(row, WHAT)
                    .map(ScanRow::Sighting)
                    .map_err(database(WHAT));
            };
            let source = Source::from_name(&source).ok_or(Error::UnknownSource {
                what: WHAT,
                source_name: source,
            })?;
            let text: Option<String> = column(row, 5, WHAT, "url").map_err(database(WHAT))?;
            Ok(ScanRow::Candidate {
                source,
                text: text.unwrap_or_default(),
            })
        })
        .collect()
}

/// Candidates of a cycle, checked and not yet stored.
struct Found<'a> {
    finder: &'a Finder,
    report: CycleReport,
    /// Normalised URLs met in this cycle.
    seen: HashSet<String>,
    /// Those of them not yet looked up in the archive.
    pending: Vec<String>,
    /// Candidates the current event may still give; `None` outside events
    /// (HTTP sources).
    event_budget: Option<u32>,
    /// New relays recorded in this cycle, per domain ([`relay_domain`]).
    new_per_domain: HashMap<String, u32>,
}

impl Found<'_> {
    /// Counts a candidate of `source`, checks it and keeps it when it is a
    /// relay not met yet in this cycle.
    fn candidate(&mut self, source: Source, text: &str) {
        self.report.candidates += 1;
        *self.report.by_source.entry(source).or_default() += 1;
        if let Some(budget) = &mut self.event_budget {
            if *budget == 0 {
                self.reject(Rejection::TooManyInEvent);
                return;
            }
            *budget -= 1;
        }
        match check_url(text, self.finder.url_rules()) {
            Ok(normal) => {
                self.report.accepted += 1;
                if self.seen.insert(normal.as_str().to_owned()) {
                    self.report.distinct += 1;
                    self.pending.push(normal.as_str().to_owned());
                }
            }
            Err(reason) => self.reject(reason),
        }
    }

    fn reject(&mut self, reason: Rejection) {
        *self.report.rejected.entry(reason).or_default() += 1;
    }

    /// The candidates of a new event follow: at most `max_urls_per_event`
    /// are taken from it.
    fn start_event(&mut self) {
        self.event_budget = Some(self.finder.config().max_urls_per_event);
    }

    /// Keeps the new relays of `unknown` whose domain has room left in this
    /// cycle; counts the others as [`Rejection::TooManyForDomain`].
    fn within_domain_caps(&mut self, unknown: Vec<String>) -> Vec<String> {
        let cap = self.finder.config().max_new_relays_per_domain;
        let mut kept = Vec::with_capacity(unknown.len());
        for url in unknown {
            let domain = relay_domain(&url).unwrap_or_default();
            let count = self.new_per_domain.entry(domain).or_default();
            if *count >= cap {
                self.reject(Rejection::TooManyForDomain);
            } else {
                *count += 1;
                kept.push(url);
            }
        }
        kept
    }

    /// Records the pending relays the archive does not have, `batch_size`
    /// at a time.
    async fn store(&mut self, brotr: &Brotr) -> anyhow::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        for chunk in pending.chunks(self.finder.config().batch_size) {
            let unknown = unknown_relays(brotr, chunk)
                .await
                .context("looking up the relays found")?;
            let unknown = self.within_domain_caps(unknown);
            if unknown.is_empty() {
                continue;
            }
            brotr
                .insert_relay_batch(&unknown, bigbrotr_utils::now_timestamp())
                .await
                .with_context(|| format!("recording {} new relays", unknown.len()))?;
            self.report.new += u64::try_from(unknown.len()).unwrap_or(u64::MAX);
            tracing::debug!(target: TARGET, new = unknown.len(), "relays recorded");
        }
        Ok(())
    }
}

/// The elements of `urls` (normalised) that the archive does not have.
async fn unknown_relays(brotr: &Brotr, urls: &[String]) -> Result<Vec<String>> {
    const WHAT: &str = "finder_unknown_relays";
    let rows = brotr
        .pool()
        .fetch_all(
            "SELECT url FROM finder_unknown_relays($1)",
            &[(&urls, Type::TEXT_ARRAY)],
        )
        .await
        .map_err(database(WHAT))?;
    rows.iter()
        .map(|row| column(row, 0, WHAT, "url").map_err(database(WHAT)))
        .collect()
}

impl Finder {
    /// One discovery cycle.
    ///
    /// 1. With `sources.events` on, scans the archive from the finder's
    ///    cursor, `page_size` sightings (`events_relays` rows, in
    ///    `(insert_xid, seen_at, event_id, relay_id)` order) a page, up to
    ///    the sightings of the oldest transaction still open (see
    ///    [`scan_page`]), at most `max_pages_per_cycle` pages (0: until
    ///    caught up). Each event is read once, at its first sighting in that
    ///    order, when its kind is in `sources.kinds`. After each page the
    ///    relays found and not yet archived are recorded (`batch_size` a
    ///    call), and only then does the cursor move past the page: a failed
    ///    cycle loses nothing, and the next one reads the page again.
    /// 2. Fetches every HTTP source (a failure is logged and counted, and
    ///    does not fail the cycle) and records its new relays.
    ///
    /// Every candidate is checked by [`check_url`] and
    /// counted in the [`CycleReport`], refusals by reason. Floods are cut:
    /// at most `max_urls_per_event` candidates are taken from one event, and
    /// at most `max_new_relays_per_domain` new relays per domain
    /// ([`relay_domain`]) are recorded in one cycle; the rest are counted
    /// and dropped.
    ///
    /// When `cancel` fires, the page being read is finished and stored and
    /// the cursor saved, HTTP sources still being fetched are abandoned, and
    /// the report says `cancelled`.
    ///
    /// Fails when the database cannot be read or written.
    #[tracing::instrument(
        name = "finder.run_cycle",
        target = "bigbrotr::finder",
        skip_all,
        fields(name = %self.name()),
        err(level = "debug")
    )]
    pub async fn run_cycle(
        &self,
        brotr: &Brotr,
        cancel: &CancellationToken,
    ) -> anyhow::Result<CycleReport> {
        let mut found = Found {
            finder: self,
            report: CycleReport::default(),
            seen: HashSet::new(),
            pending: Vec::new(),
            event_budget: None,
            new_per_domain: HashMap::new(),
        };
        if self.config().sources.events {
            self.scan_events(brotr, cancel, &mut found).await?;
        }
        if !found.report.cancelled {
            self.fetch_http_sources(cancel, &mut found).await;
        }
        // What the HTTP sources gave before a cancellation is kept too.
        found.store(brotr).await?;
        let report = found.report;
        tracing::debug!(
            target: TARGET,
            sightings = report.sightings,
            candidates = report.candidates,
            distinct = report.distinct,
            new = report.new,
            rejected = report.rejected_total(),
            http_failures = report.http_failures,
            cancelled = report.cancelled,
            "discovery cycle done"
        );
        Ok(report)
    }

    async fn scan_events(
        &self,
        brotr: &Brotr,
        cancel: &CancellationToken,
        found: &mut Found<'_>,
    ) -> anyhow::Result<()> {
        let config = self.config();
        let kinds: Option<Vec<i32>> = (!config.sources.kinds.is_empty()).then(|| {
            config
                .sources
                .kinds
                .iter()
                .copied()
                .map(i32::from)
                .collect()
        });
        let mut cursor = self
            .cursor(brotr)
            .await
            .context("reading the finder's cursor")?;
        let mut pages = 0_u32;
        loop {
            if cancel.is_cancelled() {
                found.report.cancelled = true;
                break;
            }
            if config.max_pages_per_cycle != 0 && pages >= config.max_pages_per_cycle {
                break;
            }
            let rows = scan_page(brotr, cursor.as_ref(), kinds.as_deref(), config.page_size)
                .await
                .context("reading a page of the archive")?;
            pages += 1;
            let mut last = None;
            let mut sightings = 0_u32;
            for row in rows {
                match row {
                    ScanRow::Sighting(position) => {
                        sightings += 1;
                        last = Some(position);
                        found.start_event();
                    }
                    ScanRow::Candidate {
                        source: Source::ContactList,
                        text,
                    } => match contact_list_relays(&text) {
                        Some(urls) => {
                            for url in urls {
                                found.candidate(Source::ContactList, &url);
                            }
                        }
                        None => found.reject(Rejection::MalformedContactList),
                    },
                    ScanRow::Candidate { source, text } => found.candidate(source, &text),
                }
            }
            found.event_budget = None;
            found.report.sightings += u64::from(sightings);
            let Some(last) = last else { break };
            found.store(brotr).await?;
            self.set_cursor(brotr, &last)
                .await
                .context("saving the finder's cursor")?;
            cursor = Some(last);
            if sightings < config.page_size {
                break;
            }
        }
        Ok(())
    }

    async fn fetch_http_sources(&self, cancel: &CancellationToken, found: &mut Found<'_>) {
        let config = self.config();
        for source in &config.http_sources {
            let fetched = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    found.report.cancelled = true;
                    return;
                }
                fetched = fetch_http_source(self.egress(), source, config.http_max_bytes) => fetched,
            };
            match fetched {
                Ok(items) => {
                    tracing::debug!(target: TARGET, url = %source.url, items = items.len(), "HTTP source read");
                    for item in items {
                        match item {
                            Value::String(url) => found.candidate(Source::Http, &url),
                            _ => {
                                found.report.candidates += 1;
                                *found.report.by_source.entry(Source::Http).or_default() += 1;
                                found.reject(Rejection::NotAString);
                            }
                        }
                    }
                }
                Err(error) => {
                    found.report.http_failures += 1;
                    let error = anyhow::Error::new(error);
                    // The chain may quote the server (a redirect's target).
                    let error = format!("{error:#}");
                    tracing::warn!(
                        target: TARGET,
                        url = %source.url,
                        timeout_ms = millis(source.timeout),
                        error = %bounded_text(&error, REMOTE_TEXT_MAX_BYTES),
                        "HTTP source not read"
                    );
                }
            }
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
