//! Turning a [`LoggingConfig`] into a subscriber, and installing it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use tracing::Subscriber;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_bunyan_formatter::{BunyanFormattingLayer, JsonStorageLayer};
use tracing_subscriber::fmt::format::FormatEvent;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Filter, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{filter::FilterExt, Layer, Registry};

use bigbrotr_config::Problem;

use crate::clock::{Clock, SystemClock};
use crate::config::{Format, LoggingConfig};
use crate::destination::open;
use crate::error::{Error, Result};
use crate::fields::StructuredFields;
use crate::format::{DetailedFormat, StandardFormat};
use crate::level::build_filter;

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;
type BoxedFilter = Box<dyn Filter<Registry> + Send + Sync>;

/// Keeps the background writers of file outputs running; dropping it writes
/// out what is still queued and stops them. Hold it until the process ends.
#[derive(Debug)]
#[must_use = "dropping the guard stops the file outputs"]
pub struct LoggingGuard {
    workers: Vec<WorkerGuard>,
}

impl LoggingGuard {
    /// How many background writers the guard keeps, one per file output.
    #[must_use]
    pub fn workers(&self) -> usize {
        self.workers.len()
    }
}

/// Builds the subscriber for a configuration, with the clock and writers
/// replaceable for tests.
///
/// [`build`] and [`init`] cover the usual case.
pub struct Logging {
    config: LoggingConfig,
    service: String,
    clock: Arc<dyn Clock>,
    writers: BTreeMap<usize, BoxMakeWriter>,
}

impl fmt::Debug for Logging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logging")
            .field("config", &self.config)
            .field("service", &self.service)
            .field("clock", &self.clock)
            .field("writers", &self.writers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Logging {
    /// Logging as `config` says, naming `service` on every line.
    #[must_use]
    pub fn new(config: &LoggingConfig, service: &str) -> Self {
        Self {
            config: config.clone(),
            service: service.to_owned(),
            clock: Arc::new(SystemClock),
            writers: BTreeMap::new(),
        }
    }

    /// Takes timestamps from `clock` instead of the system clock (the
    /// `bunyan` format always uses the system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Sends the lines of output number `output` (counting from 0 in
    /// `outputs`) to `writer` instead of its console stream or files.
    #[must_use]
    pub fn writer<W>(mut self, output: usize, writer: W) -> Self
    where
        W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    {
        self.writers.insert(output, BoxMakeWriter::new(writer));
        self
    }

    /// Validates the configuration, opens the files and builds the
    /// subscriber, without installing it.
    pub fn build(
        mut self,
    ) -> Result<(
        impl Subscriber + Send + Sync + for<'lookup> LookupSpan<'lookup>,
        LoggingGuard,
    )> {
        let mut problems = self.config.problems();
        let outputs = self.config.outputs.len();
        problems.extend(
            self.writers
                .keys()
                .filter(|&&index| index >= outputs)
                .map(|index| {
                    Problem::new(
                        format!("logging.outputs[{index}]"),
                        "there is no such output to send elsewhere",
                    )
                }),
        );
        if !problems.is_empty() {
            return Err(Error::Invalid { problems });
        }

        let mut layers: Vec<BoxedLayer> = Vec::with_capacity(outputs + 1);
        let mut workers = Vec::new();
        let mut bunyan_spans: Option<BoxedFilter> = None;
        for (index, output) in self.config.outputs.iter().enumerate() {
            let filter = || {
                build_filter(output.level()).map_err(|source| Error::Level {
                    output: index,
                    directive: output.level().to_owned(),
                    source,
                })
            };
            let writer = match self.writers.remove(&index) {
                Some(writer) => writer,
                None => open(output, &mut workers)?,
            };
            let layer = match output.format() {
                Format::Standard => {
                    let format = StandardFormat::new(&self.service).with_clock(self.clock.clone());
                    text_layer(format, writer).with_filter(filter()?).boxed()
                }
                Format::Detailed => {
                    let format = DetailedFormat::new(&self.service).with_clock(self.clock.clone());
                    text_layer(format, writer).with_filter(filter()?).boxed()
                }
                Format::Bunyan => {
                    // The span storage must see every span a bunyan output sees.
                    let spans = filter()?;
                    bunyan_spans = Some(match bunyan_spans.take() {
                        None => FilterExt::boxed(spans),
                        Some(others) => FilterExt::boxed(others.or(spans)),
                    });
                    BunyanFormattingLayer::new(self.service.clone(), writer)
                        .with_filter(filter()?)
                        .boxed()
                }
            };
            layers.push(layer);
        }
        // Bunyan reads span fields from this storage, so it goes first.
        if let Some(filter) = bunyan_spans {
            layers.insert(0, JsonStorageLayer.with_filter(filter).boxed());
        }
        Ok((
            tracing_subscriber::registry().with(layers),
            LoggingGuard { workers },
        ))
    }

    /// Builds the subscriber and installs it for the whole process, with
    /// records of the `log` crate forwarded to it.
    ///
    /// Fails with [`Error::Install`] when a subscriber or `log` logger is
    /// installed already.
    pub fn init(self) -> Result<LoggingGuard> {
        let (subscriber, guard) = self.build()?;
        subscriber
            .try_init()
            .map_err(|source| Error::Install { source })?;
        Ok(guard)
    }
}

/// Builds the subscriber `config` describes, naming `service` on every line,
/// without installing it.
pub fn build(
    config: &LoggingConfig,
    service: &str,
) -> Result<(
    impl Subscriber + Send + Sync + for<'lookup> LookupSpan<'lookup>,
    LoggingGuard,
)> {
    Logging::new(config, service).build()
}

/// Builds the subscriber `config` describes and installs it for the whole
/// process; see [`Logging::init`]. Keep the returned guard until the end.
pub fn init(config: &LoggingConfig, service: &str) -> Result<LoggingGuard> {
    Logging::new(config, service).init()
}

fn text_layer<E>(
    format: E,
    writer: BoxMakeWriter,
) -> tracing_subscriber::fmt::Layer<Registry, StructuredFields, E, BoxMakeWriter>
where
    E: FormatEvent<Registry, StructuredFields> + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(StructuredFields)
        .event_format(format)
        .with_ansi(false)
        .with_writer(writer)
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use serde_json::{json, Value};
    use tracing::{debug, info, info_span, warn};

    use super::*;
    use crate::testing::{capture, console, json_of, SERVICE};
    use crate::{FileOutput, MemoryWriter, OutputConfig};

    #[test]
    fn each_output_filters_by_its_own_level() {
        let lines = capture(
            vec![
                console(Format::Standard, "info"),
                console(Format::Standard, "debug"),
            ],
            || {
                debug!("details");
                info!("summary");
            },
        );
        assert_eq!(
            lines,
            vec![
                vec!["2024-01-15 10:30:45 INFO [monitor] summary"],
                vec![
                    "2024-01-15 10:30:45 DEBUG [monitor] details",
                    "2024-01-15 10:30:45 INFO [monitor] summary",
                ],
            ]
        );
    }

    #[test]
    fn two_outputs_write_the_same_event_in_their_own_formats() {
        let lines = capture(
            vec![
                console(Format::Standard, "warn"),
                console(Format::Bunyan, "info"),
            ],
            || {
                info!(target: "bigbrotr::seeder", seeds = 4, "seeded");
                warn!(target: "bigbrotr::seeder", "slow");
            },
        );
        assert_eq!(lines[0], vec!["2024-01-15 10:30:45 WARN [monitor] slow"]);
        let bunyan: Vec<[Value; 5]> = lines[1]
            .iter()
            .map(|line| {
                let value = json_of(line);
                ["name", "level", "target", "msg", "seeds"].map(|key| value[key].clone())
            })
            .collect();
        assert_eq!(
            bunyan,
            vec![
                [
                    json!("monitor"),
                    json!(30),
                    json!("bigbrotr::seeder"),
                    json!("seeded"),
                    json!(4)
                ],
                [
                    json!("monitor"),
                    json!(40),
                    json!("bigbrotr::seeder"),
                    json!("slow"),
                    Value::Null
                ],
            ]
        );
    }

    #[test]
    fn a_bunyan_line_keeps_the_types_of_its_fields_and_a_utc_time() {
        let lines = capture(vec![console(Format::Bunyan, "info")], || {
            info!(
                rtt = 1.5,
                ok = true,
                events = 12,
                relay = "wss://a.example",
                "cycle done"
            );
        });
        let [line] = &lines[0][..] else {
            panic!("one line, got {lines:?}");
        };
        let value = json_of(line);
        assert_eq!(
            ["rtt", "ok", "events", "relay"].map(|key| value[key].clone()),
            [json!(1.5), json!(true), json!(12), json!("wss://a.example")]
        );
        let time = value["time"].as_str().expect("a time");
        assert!(time.ends_with('Z'), "{time}");
        time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
            .expect("an RFC 3339 time");
    }

    #[test]
    fn directives_set_the_level_of_one_target() {
        let lines = capture(
            vec![console(Format::Standard, "warn,bigbrotr::pool=debug")],
            || {
                debug!(target: "bigbrotr::pool", "checked out");
                debug!(target: "bigbrotr::brotr", "hidden");
                info!(target: "bigbrotr::brotr", "hidden too");
                warn!(target: "bigbrotr::brotr", "shown");
            },
        );
        assert_eq!(
            lines,
            vec![vec![
                "2024-01-15 10:30:45 DEBUG [monitor] checked out",
                "2024-01-15 10:30:45 WARN [monitor] shown",
            ]]
        );
    }

    #[test]
    fn the_service_is_on_every_line_of_every_format() {
        let lines = capture(
            vec![
                console(Format::Standard, "trace"),
                console(Format::Detailed, "trace"),
                console(Format::Bunyan, "trace"),
            ],
            || {
                let span = info_span!("cycle");
                let _span = span.enter();
                tracing::trace!("one");
                tracing::error!("two");
            },
        );
        let [standard, detailed, bunyan] = &lines[..] else {
            panic!("three outputs, got {lines:?}");
        };
        assert_eq!(standard.len(), 2);
        assert!(
            standard.iter().all(|line| line.contains(" [monitor] ")),
            "{standard:?}"
        );
        assert_eq!(detailed.len(), 2);
        assert!(
            detailed.iter().all(|line| line.contains(" [monitor:")),
            "{detailed:?}"
        );
        // Bunyan adds a line when the span starts and one when it ends.
        let names: Vec<Value> = bunyan
            .iter()
            .map(|line| json_of(line)["name"].clone())
            .collect();
        assert_eq!(names, vec!["monitor"; 4]);
    }

    #[test]
    fn bunyan_outputs_see_the_fields_of_their_spans() {
        let lines = capture(
            vec![
                console(Format::Bunyan, "info"),
                console(Format::Bunyan, "debug"),
            ],
            || {
                let span = info_span!("probe", relay = "wss://a.example");
                let _span = span.enter();
                debug!(rtt = 5, "measured");
            },
        );
        let messages: Vec<Vec<(String, String)>> = lines
            .iter()
            .map(|output| {
                output
                    .iter()
                    .map(|line| {
                        let value = json_of(line);
                        (value["msg"].to_string(), value["relay"].to_string())
                    })
                    .collect()
            })
            .collect();
        let start = (
            r#""[PROBE - START]""#.to_owned(),
            r#""wss://a.example""#.to_owned(),
        );
        let event = (
            r#""[PROBE - EVENT] measured""#.to_owned(),
            r#""wss://a.example""#.to_owned(),
        );
        let end = (
            r#""[PROBE - END]""#.to_owned(),
            r#""wss://a.example""#.to_owned(),
        );
        assert_eq!(
            messages,
            vec![vec![start.clone(), end.clone()], vec![start, event, end]]
        );
    }

    #[test]
    fn an_invalid_configuration_is_refused_before_anything_is_opened() {
        let config = LoggingConfig {
            outputs: vec![
                console(Format::Standard, "loud"),
                OutputConfig::File(FileOutput::default()),
            ],
        };
        let error = build(&config, SERVICE).err().expect("invalid");
        let Error::Invalid { problems } = error else {
            panic!("expected Invalid, got {error:?}");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["logging.outputs[0].level", "logging.outputs[1].directory"]
        );
    }

    #[test]
    fn a_writer_for_a_missing_output_is_a_problem() {
        let error = Logging::new(&LoggingConfig::default(), SERVICE)
            .writer(3, MemoryWriter::new())
            .build()
            .err()
            .expect("there is one output only");
        let Error::Invalid { problems } = error else {
            panic!("expected Invalid, got {error:?}");
        };
        assert_eq!(
            problems,
            vec![Problem::new(
                "logging.outputs[3]",
                "there is no such output to send elsewhere"
            )]
        );
    }

    #[test]
    fn the_builder_debug_output_lists_its_settings() {
        let logging =
            Logging::new(&LoggingConfig::default(), SERVICE).writer(0, MemoryWriter::new());
        let text = format!("{logging:?}");
        assert!(
            text.starts_with("Logging { config: LoggingConfig"),
            "{text}"
        );
        assert!(
            text.ends_with(r#"service: "monitor", clock: SystemClock, writers: [0] }"#),
            "{text}"
        );
    }

    #[test]
    fn a_second_global_installation_is_refused() {
        let silent = LoggingConfig {
            outputs: vec![console(Format::Standard, "off")],
        };
        let guard = init(&silent, SERVICE).expect("the first installation succeeds");
        assert_eq!(guard.workers(), 0);
        let error = init(&silent, SERVICE).expect_err("a subscriber is installed already");
        assert!(matches!(error, Error::Install { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "could not install the global tracing subscriber"
        );
        assert!(error.source().is_some());
    }
}
