//! The `standard` and `detailed` line formats; `bunyan` is
//! `tracing-bunyan-formatter`'s own.
//!
//! Both show the fields of the event followed by the fields of the spans
//! around it, innermost span first; a name appears once, the event winning
//! over its spans and inner spans over outer ones. Timestamps are UTC.
//!
//! A field reads `key=value`. A string value is written bare unless it is
//! empty, contains whitespace or a control character, or starts with `"`:
//! then it is quoted and escaped as a JSON string, so
//! `relay=wss://a.example` but `reason="connection refused"`. Numbers and
//! booleans are written as in JSON. Control characters in the message are
//! escaped (`\n`), so an event is always exactly one line.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use time::{OffsetDateTime, UtcOffset};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::clock::{Clock, SystemClock};
use crate::fields::{decode, Collected, StructuredFields};

/// What the two formats share: the service name and the clock.
#[derive(Debug, Clone)]
struct Stamp {
    service: Arc<str>,
    clock: Arc<dyn Clock>,
}

impl Stamp {
    fn new(service: &str) -> Self {
        Self {
            service: Arc::from(service),
            clock: Arc::new(SystemClock),
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now().to_offset(UtcOffset::UTC)
    }
}

/// `2024-01-15 10:30:45 INFO [service] Message key=value`.
#[derive(Debug, Clone)]
pub struct StandardFormat(Stamp);

/// `2024-01-15 10:30:45.123 INFO [service:target:line] Message key=value`.
///
/// The target is the module path unless the event names another; the line is
/// left out when unknown.
#[derive(Debug, Clone)]
pub struct DetailedFormat(Stamp);

macro_rules! constructors {
    ($format:ident) => {
        impl $format {
            /// A format naming `service` on every line, timed by the system clock.
            #[must_use]
            pub fn new(service: &str) -> Self {
                Self(Stamp::new(service))
            }

            /// The same format timed by `clock`.
            #[must_use]
            pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
                self.0.clock = clock;
                self
            }
        }
    };
}

constructors!(StandardFormat);
constructors!(DetailedFormat);

impl<S> FormatEvent<S, StructuredFields> for StandardFormat
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, StructuredFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let collected = gather(ctx, event);
        let now = self.0.now();
        write_date_time(&mut writer, now)?;
        write!(writer, " {} [{}]", event.metadata().level(), self.0.service)?;
        write_message_and_fields(&mut writer, &collected)
    }
}

impl<S> FormatEvent<S, StructuredFields> for DetailedFormat
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, StructuredFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let collected = gather(ctx, event);
        let metadata = event.metadata();
        let now = self.0.now();
        write_date_time(&mut writer, now)?;
        write!(writer, ".{:03}", now.millisecond())?;
        let target = collected.log_target.as_deref().unwrap_or(metadata.target());
        write!(writer, " {} [{}:{target}", metadata.level(), self.0.service)?;
        match collected.log_line.or(metadata.line().map(u64::from)) {
            Some(line) => write!(writer, ":{line}]")?,
            None => writer.write_char(']')?,
        }
        write_message_and_fields(&mut writer, &collected)
    }
}

/// The fields of the event, then of its spans from the innermost out.
fn gather<S>(ctx: &FmtContext<'_, S, StructuredFields>, event: &Event<'_>) -> Collected
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    let mut collected = Collected::for_event();
    event.record(&mut collected);
    if let Some(scope) = ctx.event_scope() {
        for span in scope {
            let extensions = span.extensions();
            if let Some(stored) = extensions.get::<FormattedFields<StructuredFields>>() {
                for (name, value) in decode(&stored.fields) {
                    collected.put_if_absent(name, value);
                }
            }
        }
    }
    collected
}

/// `2024-01-15 10:30:45`.
fn write_date_time(writer: &mut impl fmt::Write, at: OffsetDateTime) -> fmt::Result {
    write!(
        writer,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn write_message_and_fields(writer: &mut Writer<'_>, collected: &Collected) -> fmt::Result {
    if let Some(message) = collected.message.as_deref().filter(|m| !m.is_empty()) {
        writer.write_char(' ')?;
        for c in message.chars() {
            if c.is_control() {
                write!(writer, "{}", c.escape_debug())?;
            } else {
                writer.write_char(c)?;
            }
        }
    }
    for (name, value) in &collected.fields {
        write!(writer, " {name}=")?;
        match value {
            Value::String(text) if needs_quotes(text) => write_json(writer, value)?,
            Value::String(text) => writer.write_str(text)?,
            other => write_json(writer, other)?,
        }
    }
    writer.write_char('\n')
}

fn needs_quotes(text: &str) -> bool {
    text.is_empty()
        || text.starts_with('"')
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn write_json(writer: &mut impl fmt::Write, value: &Value) -> fmt::Result {
    // `Value`'s Display is its compact JSON text, escaped by serde_json.
    write!(writer, "{value}")
}

#[cfg(test)]
mod tests {
    use tracing::{debug, info, info_span, warn};

    use super::*;
    use crate::testing::capture_one;
    use crate::Format;

    #[derive(Debug, thiserror::Error)]
    #[error("could not connect")]
    struct Connect {
        source: std::io::Error,
    }

    #[test]
    fn a_standard_line_has_time_level_service_message_and_fields() {
        let lines = capture_one(Format::Standard, "info", || {
            info!(relays = 3, "cycle done");
        });
        assert_eq!(
            lines,
            vec!["2024-01-15 10:30:45 INFO [monitor] cycle done relays=3"]
        );
    }

    #[test]
    fn a_standard_line_writes_each_value_type_as_documented() {
        let url = "wss://relay.example";
        let lines = capture_one(Format::Standard, "info", || {
            info!(
                relay = %url,
                reason = "connection refused",
                empty = "",
                quoted = "\"hi\"",
                ok = true,
                rtt = 1.5,
                delta = -4,
                huge = u128::MAX,
                tiny = i128::MIN,
                nan = f64::NAN,
                list = ?vec![1, 2],
                "probe"
            );
        });
        assert_eq!(
            lines,
            vec![concat!(
                "2024-01-15 10:30:45 INFO [monitor] probe relay=wss://relay.example ",
                "reason=\"connection refused\" empty=\"\" quoted=\"\\\"hi\\\"\" ok=true rtt=1.5 ",
                "delta=-4 huge=340282366920938463463374607431768211455 ",
                "tiny=-170141183460469231731687303715884105728 nan=NaN list=\"[1, 2]\""
            )]
        );
    }

    #[test]
    fn a_message_on_several_lines_stays_on_one_line() {
        let lines = capture_one(Format::Standard, "info", || {
            info!("first\nsecond\r\u{1b}[31m");
        });
        assert_eq!(
            lines,
            vec!["2024-01-15 10:30:45 INFO [monitor] first\\nsecond\\r\\u{1b}[31m"]
        );
    }

    #[test]
    fn an_event_without_message_shows_only_its_fields() {
        let lines = capture_one(Format::Standard, "info", || {
            warn!(pending = 7u64);
        });
        assert_eq!(lines, vec!["2024-01-15 10:30:45 WARN [monitor] pending=7"]);
    }

    #[test]
    fn an_error_field_shows_its_whole_chain() {
        let error = Connect {
            source: std::io::Error::other("timed out"),
        };
        let lines = capture_one(Format::Standard, "info", || {
            info!(
                error = &error as &(dyn std::error::Error + 'static),
                "retrying"
            );
        });
        assert_eq!(
            lines,
            vec!["2024-01-15 10:30:45 INFO [monitor] retrying error=\"could not connect: timed out\""]
        );
    }

    #[test]
    fn span_fields_follow_the_event_fields_innermost_first_and_never_twice() {
        let lines = capture_one(Format::Standard, "info", || {
            let outer = info_span!("cycle", cycle = 5, relay = "outer");
            let _outer = outer.enter();
            let inner = info_span!(
                "probe",
                relay = "wss://a.example",
                rtt = tracing::field::Empty
            );
            let _inner = inner.enter();
            inner.record("rtt", 120);
            info!(attempt = 2, "connected");
            info!(relay = "event", "overridden");
        });
        assert_eq!(
            lines,
            vec![
                "2024-01-15 10:30:45 INFO [monitor] connected attempt=2 relay=wss://a.example rtt=120 cycle=5",
                "2024-01-15 10:30:45 INFO [monitor] overridden relay=event rtt=120 cycle=5",
            ]
        );
    }

    #[test]
    fn a_detailed_line_has_milliseconds_target_and_line() {
        let mut line = 0;
        let lines = capture_one(Format::Detailed, "debug", || {
            line = line!() + 1;
            debug!(target: "bigbrotr::pool", size = 4, "pool ready");
        });
        assert_eq!(
            lines,
            vec![format!(
                "2024-01-15 10:30:45.123 DEBUG [monitor:bigbrotr::pool:{line}] pool ready size=4"
            )]
        );
    }

    #[test]
    fn a_detailed_line_uses_the_module_path_as_default_target() {
        let mut line = 0;
        let lines = capture_one(Format::Detailed, "info", || {
            line = line!() + 1;
            info!("hello");
        });
        assert_eq!(
            lines,
            vec![format!(
                "2024-01-15 10:30:45.123 INFO [monitor:bigbrotr_logging::format::tests:{line}] hello"
            )]
        );
    }

    #[test]
    fn a_forwarded_log_record_shows_its_own_target_and_line() {
        let lines = capture_one(Format::Detailed, "info", || {
            tracing::event!(
                target: "log",
                tracing::Level::INFO,
                "log.target" = "tokio_postgres::query",
                "log.module_path" = "tokio_postgres::query",
                "log.file" = "src/query.rs",
                "log.line" = 7u64,
                "executing statement"
            );
        });
        assert_eq!(
            lines,
            vec!["2024-01-15 10:30:45.123 INFO [monitor:tokio_postgres::query:7] executing statement"]
        );
    }

    #[test]
    fn a_clock_with_an_offset_is_shown_in_utc() {
        let clock = crate::FixedClock(time::macros::datetime!(2024-01-15 12:30:45.123 +02:00));
        let writer = crate::MemoryWriter::new();
        let (subscriber, _guard) = crate::Logging::new(&crate::LoggingConfig::default(), "s")
            .clock(clock)
            .writer(0, writer.clone())
            .build()
            .expect("valid");
        tracing::subscriber::with_default(subscriber, || info!("x"));
        assert_eq!(writer.lines(), vec!["2024-01-15 10:30:45 INFO [s] x"]);
    }

    #[test]
    fn strings_are_quoted_only_when_they_would_be_ambiguous() {
        assert!(!needs_quotes("wss://relay.example"));
        assert!(!needs_quotes("a=b"));
        assert!(!needs_quotes(r#"{"a":1}"#));
        assert!(needs_quotes(""));
        assert!(needs_quotes("two words"));
        assert!(needs_quotes("tab\there"));
        assert!(needs_quotes("bell\u{7}"));
        assert!(needs_quotes(r#""quoted""#));
    }
}
