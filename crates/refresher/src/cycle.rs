//! [`Refresher`]: which views it refreshes, the refresh of one view within
//! its time limit, and one cycle over all of them ([`CycleReport`]).

use std::time::Duration;

use bigbrotr_config::{Problems, Validate as _};
use bigbrotr_logging::ErrorChain;
use bigbrotr_pool::tokio_postgres::error::SqlState;
use bigbrotr_pool::{column, ConnectionPool, Type};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::RefresherConfig;
use crate::error::{database, Error, Result};

/// Tracing target of the refresher's events.
pub(crate) const TARGET: &str = "bigbrotr::refresher";

/// Time the client waits past `refresher.timeout` before it gives up on a
/// refresh itself: the server's `statement_timeout` should have ended it
/// first, with an answer.
const CLIENT_MARGIN: Duration = Duration::from_secs(5);

/// Refreshes the statistics views of the archive: those that
/// `refresher.views` names (all when empty), in the order of the
/// implementation's `stats_views()`, each through `refresh_stats_view` in a
/// transaction of its own whose `statement_timeout` is `refresher.timeout`.
#[derive(Debug, Clone)]
pub struct Refresher {
    views: Vec<String>,
    timeout: Duration,
}

impl Refresher {
    /// A refresher as `config` says, after checking it.
    pub fn new(config: &RefresherConfig) -> Result<Self> {
        let mut problems = Problems::new();
        config.validate(&mut problems);
        if !problems.is_empty() {
            return Err(Error::InvalidConfig {
                problems: problems.into_vec(),
            });
        }
        Ok(Self {
            views: config.views.clone(),
            timeout: config.timeout,
        })
    }

    /// The views it refreshes, in order: those of `stats_views()` that
    /// `refresher.views` names, or all of them. A name `stats_views()` does
    /// not list is [`Error::UnknownViews`].
    pub async fn views(&self, pool: &ConnectionPool) -> Result<Vec<String>> {
        const WHAT: &str = "listing the statistics views (stats_views)";
        let row = pool
            .fetch_one("SELECT stats_views()", &[])
            .await
            .map_err(database(WHAT))?;
        let known: Vec<String> = column(&row, 0, WHAT, "stats_views").map_err(database(WHAT))?;
        if self.views.is_empty() {
            return Ok(known);
        }
        let unknown: Vec<String> = self
            .views
            .iter()
            .filter(|view| !known.contains(view))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(Error::UnknownViews { unknown, known });
        }
        Ok(known
            .into_iter()
            .filter(|view| self.views.contains(view))
            .collect())
    }

    /// Refreshes `view` (`refresh_stats_view`) within the time limit and
    /// returns how long it took. Past the limit the server cancels it
    /// ([`Error::Timeout`]); nothing of a failed refresh is kept, and the
    /// view keeps its previous contents.
    pub async fn refresh(&self, pool: &ConnectionPool, view: &str) -> Result<Duration> {
        let started = Instant::now();
        let failed = |source: bigbrotr_pool::Error| self.refresh_error(view, source);
        // At least 1 ms: 0 would mean no limit at all.
        let limit = format!("{}ms", self.timeout.as_millis().max(1));
        let mut tx = pool.begin().await.map_err(failed)?;
        tx.execute(
            "SELECT set_config('statement_timeout', $1, true)",
            &[(&limit, Type::TEXT)],
        )
        .await
        .map_err(failed)?;
        tx.execute_within(
            self.timeout + CLIENT_MARGIN,
            "SELECT refresh_stats_view($1)",
            &[(&view, Type::TEXT)],
        )
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(started.elapsed())
    }

    /// A failed refresh of `view`: [`Error::Timeout`] when a time limit
    /// ended it (the server's, SQLSTATE 57014, or the client's), else
    /// [`Error::Refresh`].
    fn refresh_error(&self, view: &str, source: bigbrotr_pool::Error) -> Error {
        let timed_out = matches!(source, bigbrotr_pool::Error::Timeout { .. })
            || source.code() == Some(&SqlState::QUERY_CANCELED);
        if timed_out {
            Error::Timeout {
                view: view.to_owned(),
                after: self.timeout,
            }
        } else {
            Error::Refresh {
                view: view.to_owned(),
                source,
            }
        }
    }

    /// One cycle: every view of [`views`](Self::views) refreshed in turn.
    /// A view that fails is logged, reported and passed to `each` like the
    /// others, and the next one is refreshed all the same; the cycle fails
    /// only when the views cannot be listed (or one named is unknown).
    ///
    /// When `cancel` fires, the refresh under way is cancelled (its
    /// transaction rolled back, the view left as it was) and no other is
    /// begun.
    pub async fn run_cycle(
        &self,
        pool: &ConnectionPool,
        cancel: &CancellationToken,
        mut each: impl FnMut(&str, &Result<Duration>),
    ) -> Result<CycleReport> {
        let views = self.views(pool).await?;
        let mut report = CycleReport::default();
        for view in views {
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    report.cancelled = true;
                    break;
                }
                result = self.refresh(pool, &view) => result,
            };
            each(&view, &result);
            match result {
                Ok(took) => {
                    tracing::info!(
                        target: TARGET,
                        view = %view,
                        elapsed_ms = took.as_millis() as u64,
                        "statistics view refreshed"
                    );
                    report.refreshed.push((view, took));
                }
                Err(error) => {
                    tracing::warn!(
                        target: TARGET,
                        view = %view,
                        reason = error.reason(),
                        error.chain = %ErrorChain::new(&error),
                        "refresh of a statistics view failed; the others go on"
                    );
                    report.failed.push((view, error));
                }
            }
        }
        Ok(report)
    }
}

/// What one cycle did.
#[derive(Debug, Default)]
pub struct CycleReport {
    /// The views refreshed, in order, with the time each took.
    pub refreshed: Vec<(String, Duration)>,
    /// The views whose refresh failed, in order, with why.
    pub failed: Vec<(String, Error)>,
    /// Whether the cycle stopped early because it was cancelled.
    pub cancelled: bool,
}

impl CycleReport {
    /// Whether views were refreshed and every one failed.
    #[must_use]
    pub fn all_failed(&self) -> bool {
        self.refreshed.is_empty() && !self.failed.is_empty()
    }
}
