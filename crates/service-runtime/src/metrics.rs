//! Metrics in the Prometheus text format (version 0.0.4): the
//! [`Exposition`] writer, and the [`Metrics`] registry of named counters and
//! gauges that services increment.
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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The `Content-Type` of the text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The prefix of every metric name of BigBrotr.
pub(crate) const PREFIX: &str = "bigbrotr_";

/// The most label sets (series) one metric name holds. A label set asked
/// for beyond it gets a value that is not exported, and the refusal is
/// counted in [`SERIES_DROPPED`] under the metric's name: a label fed by
/// relays or URLs must not grow the registry, or a scrape, without bound.
pub const MAX_SERIES_PER_METRIC: usize = 1000;

/// The counter of label sets refused by [`MAX_SERIES_PER_METRIC`], labelled
/// with `metric`.
pub const SERIES_DROPPED: &str = "bigbrotr_metrics_series_dropped_total";

/// What a metric family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A sum and a count (`_sum`, `_count`), without quantiles.
    Summary,
}

impl MetricKind {
    /// The name in a `# TYPE` line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Summary => "summary",
        }
    }
}

/// Writes metrics in the Prometheus text format: one [`family`] (its
/// `# HELP` and `# TYPE` lines) followed by its [`sample`]s.
///
/// Names are cleaned to what the format allows (other characters become
/// `_`); label values and help texts are escaped.
///
/// [`family`]: Exposition::family
/// [`sample`]: Exposition::sample
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// An empty exposition.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the family `name` of `kind`, described by `help`.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricKind) {
        let name = metric_name(name);
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.as_str());
    }

    /// Writes one sample: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(&metric_name(name));
        if !labels.is_empty() {
            self.text.push('{');
            for (index, (label, value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.text.push(',');
                }
                let _ = write!(
                    self.text,
                    "{}=\"{}\"",
                    label_name(label),
                    escape_label_value(value)
                );
            }
            self.text.push('}');
        }
        self.text.push(' ');
        self.text.push_str(&format_value(value));
        self.text.push('\n');
    }

    /// A family with a single sample without labels.
    pub fn single(&mut self, name: &str, help: &str, kind: MetricKind, value: f64) {
        self.family(name, help, kind);
        self.sample(name, &[], value);
    }

    /// The text written so far.
    #[must_use]
    pub fn finish(self) -> String {
        self.text
    }
}

/// A counter of a [`Metrics`] registry. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The value now.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge of a [`Metrics`] registry. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    /// Adds `delta` (negative to subtract).
    pub fn add(&self, delta: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + delta).to_bits())
            });
    }

    /// The value now.
    #[must_use]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// One value of a family.
#[derive(Debug, Clone)]
enum Cell {
    Counter(Counter),
    Gauge(Gauge),
}

type Labels = Vec<(String, String)>;

#[derive(Debug)]
struct Family {
    help: String,
    kind: MetricKind,
    series: BTreeMap<Labels, Cell>,
}

/// A registry of named counters and gauges with labels, rendered in the
/// Prometheus text format. Cloning shares it.
///
/// Asking twice for the same name and labels returns the same value. The
/// first registration of a name fixes its help text and kind; asking for a
/// counter under the name of a gauge (or the reverse) returns a value that
/// is not exported, and so does asking for a new label set of a name that
/// has [`MAX_SERIES_PER_METRIC`] already.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    families: Arc<Mutex<BTreeMap<String, Family>>>,
}

impl Metrics {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Family>> {
        self.families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The counter `name` with `labels`, created at 0 when new.
    #[must_use]
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        match self.cell(name, help, MetricKind::Counter, labels) {
            Some(Cell::Counter(counter)) => counter,
            _ => Counter::default(),
        }
    }

    /// The gauge `name` with `labels`, created at 0 when new.
    #[must_use]
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        match self.cell(name, help, MetricKind::Gauge, labels) {
            Some(Cell::Gauge(gauge)) => gauge,
            _ => Gauge::default(),
        }
    }

    fn cell(
        &self,
        name: &str,
        help: &str,
        kind: MetricKind,
        labels: &[(&str, &str)],
    ) -> Option<Cell> {
        let name = metric_name(name);
        let labels: Labels = labels
            .iter()
            .map(|(label, value)| (label_name(label), (*value).to_owned()))
            .collect();
        let mut families = self.lock();
        let family = families.entry(name.clone()).or_insert_with(|| Family {
            help: help.to_owned(),
            kind,
            series: BTreeMap::new(),
        });
        if family.kind != kind {
            tracing::warn!(
                target: "bigbrotr::runtime",
                metric = %name,
                "a metric was asked for as a {} but is registered as a {}: it is not exported",
                kind.as_str(),
                family.kind.as_str()
            );
            return None;
        }
        if let Some(cell) = family.series.get(&labels) {
            return Some(cell.clone());
        }
        if family.series.len() >= MAX_SERIES_PER_METRIC && name != SERIES_DROPPED {
            drop(families);
            let dropped = self.counter(
                SERIES_DROPPED,
                "Label sets refused because their metric has too many already.",
                &[("metric", &name)],
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
            return None;
        }
        let cell = match kind {
            MetricKind::Gauge => Cell::Gauge(Gauge::default()),
            _ => Cell::Counter(Counter::default()),
        };
        family.series.insert(labels, cell.clone());
        Some(cell)
    }

    /// Writes every family of the registry, sorted by name, to `out`.
    pub fn encode(&self, out: &mut Exposition) {
        let families = self.lock();
        for (name, family) in families.iter() {
            out.family(name, &family.help, family.kind);
            for (labels, cell) in &family.series {
                let labels: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(label, value)| (label.as_str(), value.as_str()))
                    .collect();
                let value = match cell {
                    Cell::Counter(counter) => counter.get() as f64,
                    Cell::Gauge(gauge) => gauge.get(),
                };
                out.sample(name, &labels, value);
            }
        }
    }

    /// The whole registry in the text format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = Exposition::new();
        self.encode(&mut out);
        out.finish()
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

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A value as the format writes it: integers without a fraction, `NaN`,
/// `+Inf` and `-Inf` by name.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_and_type_lines_and_escaped_labels() {
        let mut out = Exposition::new();
        out.family(
            "bigbrotr_demo_total",
            "Demo\\ help\nline.",
            MetricKind::Counter,
        );
        out.sample(
            "bigbrotr_demo_total",
            &[("relay", "wss://a\"b\\c\nd"), ("kind", "1")],
            3.0,
        );
        out.single("bigbrotr_ratio", "A ratio.", MetricKind::Gauge, 0.25);
        assert_eq!(
            out.finish(),
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
    }

    #[test]
    fn special_values_are_written_by_name() {
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(-2.0), "-2");
        assert_eq!(format_value(1.5), "1.5");
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
        assert_eq!(
            metrics.render(),
            "# HELP x_total X.\n# TYPE x_total counter\nx_total{k=\"v\"} 3\nx_total{k=\"w\"} 1\n"
        );
    }

    #[test]
    fn a_name_registered_as_a_gauge_is_not_exported_as_a_counter_too() {
        let metrics = Metrics::new();
        metrics.gauge("level", "Level.", &[]).set(1.5);
        metrics.counter("level", "Level.", &[]).add(7);
        metrics.gauge("level", "Level.", &[]).add(-0.5);
        assert_eq!(
            metrics.render(),
            "# HELP level Level.\n# TYPE level gauge\nlevel 1\n"
        );
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
            text.contains("lag{relay=\"wss://r0.example\"} 2\n"),
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
        let text = metrics.render();
        assert!(
            text.contains("bigbrotr_checks_total{service=\"monitor\",network=\"tor\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("bigbrotr_queue{service=\"monitor\"} 4\n"),
            "{text}"
        );
    }
}
