//! The metrics of a process: [`Metrics`], one `prometheus-client` registry
//! of the counters and gauges services ask for by name, written in the
//! Prometheus text format (version 0.0.4) with the runtime's own collectors.
//!
//! ```
//! use bigbrotr_service_runtime::Metrics;
//!
//! let metrics = Metrics::new();
//! let seen = metrics.counter("bigbrotr_relays_seen_total", "Relays seen.", &[("network", "tor")]);
//! seen.add(3);
//! let text = metrics.render();
//! assert!(text.contains("# TYPE bigbrotr_relays_seen_total counter\n"));
//! assert!(text.contains("bigbrotr_relays_seen_total{network=\"tor\"} 3\n"));
//! ```

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as PromGauge;
use prometheus_client::registry::Registry;

use crate::process_status::lock;

/// The `Content-Type` of the text format.
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The prefix of every metric name of BigBrotr.
const PREFIX: &str = "bigbrotr_";

/// The suffix of every counter's name; the library writes it itself.
const TOTAL: &str = "_total";

/// The most label sets (series) one metric name holds. A label set asked
/// for beyond it gets a value that is not exported, and the refusal is
/// counted in [`SERIES_DROPPED`] under the metric's name: a label fed by
/// relays or URLs must not grow the registry, or a scrape, without bound.
pub const MAX_SERIES_PER_METRIC: usize = 1000;

/// The counter of label sets refused by [`MAX_SERIES_PER_METRIC`], labelled
/// with `metric`.
pub const SERIES_DROPPED: &str = "bigbrotr_metrics_series_dropped_total";

/// A label set, in the order given.
type Labels = Vec<(String, String)>;

/// The value of a gauge: an `f64` in an atomic.
type F64Gauge = PromGauge<f64, AtomicU64>;

/// A counter of a [`Metrics`] registry. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Counter(PromCounter);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.inc();
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }

    /// The value now.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A gauge of a [`Metrics`] registry. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Gauge(F64Gauge);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: f64) {
        self.0.set(value);
    }

    /// Adds `delta` (negative to subtract).
    pub fn add(&self, delta: f64) {
        self.0.inc_by(delta);
    }

    /// The value now.
    #[must_use]
    pub fn get(&self) -> f64 {
        self.0.get()
    }
}

/// One family of the registry, by the kind of its values, and how many
/// label sets it holds.
#[derive(Debug, Clone)]
struct Registered {
    family: Kind,
    series: usize,
}

/// A family by the kind of its values.
#[derive(Debug, Clone)]
enum Kind {
    Counter(Family<Labels, PromCounter>),
    Gauge(Family<Labels, F64Gauge>),
}

impl Kind {
    fn as_str(&self) -> &'static str {
        match self {
            Kind::Counter(_) => "counter",
            Kind::Gauge(_) => "gauge",
        }
    }
}

impl Registered {
    fn new(family: Kind) -> Self {
        Self { family, series: 0 }
    }

    /// Whether this family (named `name`) may take `labels`, counting it
    /// when new; `known` says whether it holds them already.
    fn admits(&mut self, name: &str, known: bool) -> bool {
        if known {
            return true;
        }
        if self.series >= MAX_SERIES_PER_METRIC && name != SERIES_DROPPED {
            return false;
        }
        self.series += 1;
        true
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Every family and collector, encoded at each scrape.
    registry: Mutex<Registry>,
    /// The families services asked for, by the name they are exported
    /// under (a counter's with `_total`).
    families: Mutex<HashMap<String, Registered>>,
}

/// The metrics of a process: one `prometheus-client` registry of named
/// counters and gauges with labels, and of the collectors that read the
/// runtime's state at each scrape. Cloning shares it.
///
/// Asking twice for the same name and labels returns the same value. The
/// first registration of a name fixes its help text and kind; asking for a
/// counter under the name of a gauge (or the reverse) returns a value that
/// is not exported, and so does asking for a new label set of a name that
/// has [`MAX_SERIES_PER_METRIC`] already.
///
/// A counter is exported under its name ending in `_total` (added when
/// missing); names and label names are cleaned to what the format allows
/// (other characters become `_`).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Metrics {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter `name` with `labels`, created at 0 when new.
    #[must_use]
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        let mut name = metric_name(name);
        if !name.ends_with(TOTAL) {
            name.push_str(TOTAL);
        }
        let labels = label_set(labels);
        let found = {
            let mut families = lock(&self.inner.families);
            let registered = families.entry(name.clone()).or_insert_with(|| {
                let family = Family::<Labels, PromCounter>::default();
                let bare = name.strip_suffix(TOTAL).unwrap_or(&name);
                lock(&self.inner.registry).register(bare, help_text(help), family.clone());
                Registered::new(Kind::Counter(family))
            });
            match registered.family.clone() {
                Kind::Counter(family) => {
                    if registered.admits(&name, family.get(&labels).is_some()) {
                        Found::Value(family.get_or_create_owned(&labels))
                    } else {
                        Found::Full
                    }
                }
                other => Found::Other(other.as_str()),
            }
        };
        Counter(self.value(found, &name, "counter"))
    }

    /// The gauge `name` with `labels`, created at 0 when new.
    #[must_use]
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        let name = metric_name(name);
        let labels = label_set(labels);
        let found = {
            let mut families = lock(&self.inner.families);
            let registered = families.entry(name.clone()).or_insert_with(|| {
                let family = Family::<Labels, F64Gauge>::default();
                lock(&self.inner.registry).register(&name, help_text(help), family.clone());
                Registered::new(Kind::Gauge(family))
            });
            match registered.family.clone() {
                Kind::Gauge(family) => {
                    if registered.admits(&name, family.get(&labels).is_some()) {
                        Found::Value(family.get_or_create_owned(&labels))
                    } else {
                        Found::Full
                    }
                }
                other => Found::Other(other.as_str()),
            }
        };
        Gauge(self.value(found, &name, "gauge"))
    }

    /// The value found for the `wanted` `name`, or one that is not
    /// exported, after saying why.
    fn value<M: Default>(&self, found: Found<M>, name: &str, wanted: &str) -> M {
        match found {
            Found::Value(value) => return value,
            Found::Other(registered) => tracing::warn!(
                target: "bigbrotr::runtime",
                metric = %name,
                "a metric was asked for as a {wanted} but is registered as a {registered}: it is not exported"
            ),
            Found::Full => {
                let dropped = self.counter(
                    SERIES_DROPPED,
                    "Label sets refused because their metric has too many already.",
                    &[("metric", name)],
                );
                if dropped.get() == 0 {
                    tracing::warn!(
                        target: "bigbrotr::runtime",
                        metric = %name,
                        max = MAX_SERIES_PER_METRIC,
                        "a metric has too many label sets: new ones are not exported"
                    );
                }
                dropped.inc();
            }
        }
        M::default()
    }

    /// Adds `collector`, asked for its metrics at each scrape.
    pub(crate) fn register_collector(&self, collector: impl Collector) {
        lock(&self.inner.registry).register_collector(Box::new(collector));
    }

    /// Every family of the registry and what its collectors report, in the
    /// text format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = String::new();
        let registry = lock(&self.inner.registry);
        // Writing to a `String` does not fail, and neither do our
        // collectors.
        let _ = prometheus_text::encode(&mut text, &registry);
        text
    }

    /// The metrics of one service: the same registry, with names prefixed
    /// by `bigbrotr_` and a first label `service="<service>"`.
    #[must_use]
    pub fn for_service(&self, service: &str) -> ServiceMetrics {
        ServiceMetrics {
            metrics: self.clone(),
            service: service.into(),
        }
    }
}

/// The metrics of one service in a [`Metrics`] registry: each name gets the
/// prefix `bigbrotr_` and each series the label `service`. Cloning shares
/// it.
///
/// ```
/// use bigbrotr_service_runtime::Metrics;
///
/// let metrics = Metrics::new();
/// let relays = metrics.for_service("finder");
/// relays.counter("relays_found_total", "Relays found.", &[]).add(2);
/// assert!(metrics.render().contains("bigbrotr_relays_found_total{service=\"finder\"} 2\n"));
/// ```
#[derive(Debug, Clone)]
pub struct ServiceMetrics {
    metrics: Metrics,
    service: Arc<str>,
}

impl ServiceMetrics {
    /// The counter `bigbrotr_<name>` of this service with `labels`.
    #[must_use]
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        self.metrics
            .counter(&self.full_name(name), help, &self.labels(labels))
    }

    /// The gauge `bigbrotr_<name>` of this service with `labels`.
    #[must_use]
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        self.metrics
            .gauge(&self.full_name(name), help, &self.labels(labels))
    }

    /// The registry underneath.
    #[must_use]
    pub fn registry(&self) -> &Metrics {
        &self.metrics
    }

    fn full_name(&self, name: &str) -> String {
        if name.starts_with(PREFIX) {
            name.to_owned()
        } else {
            format!("{PREFIX}{name}")
        }
    }

    fn labels<'a>(&'a self, labels: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        std::iter::once(("service", &*self.service))
            .chain(
                labels
                    .iter()
                    .copied()
                    .filter(|(label, _)| *label != "service"),
            )
            .collect()
    }
}

/// What the registry holds for a name and label set.
enum Found<M> {
    /// The value.
    Value(M),
    /// Nothing: the name has [`MAX_SERIES_PER_METRIC`] other label sets.
    Full,
    /// Nothing: the name is registered as this other kind.
    Other(&'static str),
}

/// `help` without its final period: the registry adds one.
fn help_text(help: &str) -> &str {
    help.strip_suffix('.').unwrap_or(help)
}

/// `labels` with cleaned names, owned.
fn label_set(labels: &[(&str, &str)]) -> Labels {
    labels
        .iter()
        .map(|(label, value)| (label_name(label), (*value).to_owned()))
        .collect()
}

/// `name` with every character the format does not allow in a metric name
/// replaced by `_`.
fn metric_name(name: &str) -> String {
    clean(name, true)
}

/// `name` with every character the format does not allow in a label name
/// replaced by `_`.
fn label_name(name: &str) -> String {
    clean(name, false)
}

fn clean(name: &str, colons: bool) -> String {
    let mut cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.starts_with(|c: char| c.is_ascii_digit()) {
        cleaned.insert(0, '_');
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_and_type_lines_and_escaped_labels() {
        let metrics = Metrics::new();
        metrics
            .counter(
                "bigbrotr_demo_total",
                "Demo\\ help\nline.",
                &[("relay", "wss://a\"b\\c\nd"), ("kind", "1")],
            )
            .add(3);
        metrics.gauge("bigbrotr_ratio", "A ratio.", &[]).set(0.25);
        assert_eq!(
            metrics.render(),
            "# HELP bigbrotr_demo_total Demo\\\\ help\\nline.\n\
             # TYPE bigbrotr_demo_total counter\n\
             bigbrotr_demo_total{relay=\"wss://a\\\"b\\\\c\\nd\",kind=\"1\"} 3\n\
             # HELP bigbrotr_ratio A ratio.\n\
             # TYPE bigbrotr_ratio gauge\n\
             bigbrotr_ratio 0.25\n"
        );
    }

    #[test]
    fn names_are_cleaned_to_what_the_format_allows() {
        assert_eq!(metric_name("a-b.c:d"), "a_b_c:d");
        assert_eq!(metric_name("9lives"), "_9lives");
        assert_eq!(label_name("a:b"), "a_b");
        assert_eq!(label_name(""), "_");
        let metrics = Metrics::new();
        metrics
            .gauge("queue-length", "Length.", &[("a.b", "x")])
            .set(2.0);
        assert!(
            metrics.render().contains("queue_length{a_b=\"x\"} 2.0\n"),
            "{}",
            metrics.render()
        );
    }

    #[test]
    fn a_counter_is_exported_with_total_whether_its_name_has_it_or_not() {
        let metrics = Metrics::new();
        metrics.counter("jobs", "Jobs.", &[]).inc();
        metrics.counter("jobs_total", "Jobs.", &[]).inc();
        assert_eq!(
            metrics.render(),
            "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total 2\n"
        );
    }

    #[test]
    fn the_same_name_and_labels_give_the_same_counter() {
        let metrics = Metrics::new();
        let a = metrics.counter("x_total", "X.", &[("k", "v")]);
        let b = metrics.counter("x_total", "ignored", &[("k", "v")]);
        let other = metrics.counter("x_total", "X.", &[("k", "w")]);
        a.inc();
        b.add(2);
        other.inc();
        assert_eq!(a.get(), 3);
        let text = metrics.render();
        assert!(
            text.starts_with("# HELP x_total X.\n# TYPE x_total counter\n"),
            "{text}"
        );
        assert!(text.contains("x_total{k=\"v\"} 3\n"), "{text}");
        assert!(text.contains("x_total{k=\"w\"} 1\n"), "{text}");
        assert_eq!(text.lines().count(), 4, "{text}");
    }

    #[test]
    fn a_name_registered_as_a_gauge_is_not_exported_as_a_counter_too() {
        let metrics = Metrics::new();
        metrics.gauge("level_total", "Level.", &[]).set(1.5);
        metrics.counter("level", "Level.", &[]).add(7);
        metrics.counter("level_total", "Level.", &[]).add(7);
        metrics.gauge("level_total", "Level.", &[]).add(-0.5);
        assert_eq!(
            metrics.render(),
            "# HELP level_total Level.\n# TYPE level_total gauge\nlevel_total 1.0\n"
        );
        // A gauge named like a counter already registered is refused too.
        metrics.counter("done_total", "Done.", &[]).inc();
        metrics.gauge("done_total", "Done.", &[]).set(9.0);
        assert!(metrics
            .render()
            .ends_with("# TYPE done_total counter\ndone_total 1\n"));
    }

    #[test]
    fn a_metric_holds_at_most_max_series_label_sets_and_counts_the_rest() {
        let metrics = Metrics::new();
        for index in 0..MAX_SERIES_PER_METRIC + 5 {
            metrics
                .gauge(
                    "lag",
                    "Lag.",
                    &[("relay", &format!("wss://r{index}.example"))],
                )
                .set(1.0);
        }
        // Known label sets still work.
        let first = metrics.gauge("lag", "Lag.", &[("relay", "wss://r0.example")]);
        first.set(2.0);
        let text = metrics.render();
        let series = text.lines().filter(|line| line.starts_with("lag{")).count();
        assert_eq!(series, MAX_SERIES_PER_METRIC);
        assert!(
            text.contains("lag{relay=\"wss://r0.example\"} 2.0\n"),
            "{text}"
        );
        assert!(!text.contains("wss://r1000.example"));
        assert!(
            text.contains("bigbrotr_metrics_series_dropped_total{metric=\"lag\"} 5\n"),
            "{text}"
        );
    }

    #[test]
    fn service_metrics_are_prefixed_and_labelled_with_the_service() {
        let metrics = Metrics::new();
        let service = metrics.for_service("monitor");
        service
            .counter(
                "checks_total",
                "Checks.",
                &[("service", "spoofed"), ("network", "tor")],
            )
            .inc();
        service.gauge("bigbrotr_queue", "Queue.", &[]).set(4.0);
        assert!(std::ptr::eq(service.registry(), &service.metrics));
        let text = metrics.render();
        assert!(
            text.contains("bigbrotr_checks_total{service=\"monitor\",network=\"tor\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("bigbrotr_queue{service=\"monitor\"} 4.0\n"),
            "{text}"
        );
    }
}
