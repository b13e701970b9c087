//! What the unit tests share: a fixed time, a service name and capture of lines.

use time::macros::datetime;
use time::OffsetDateTime;

use crate::{
    ConsoleOutput, FixedClock, Format, Logging, LoggingConfig, MemoryWriter, OutputConfig,
};

/// The time on every line the tests produce.
pub(crate) const NOW: OffsetDateTime = datetime!(2024-01-15 10:30:45.123 UTC);

/// The service on every line the tests produce.
pub(crate) const SERVICE: &str = "monitor";

/// A console output at `level` in `format`.
pub(crate) fn console(format: Format, level: &str) -> OutputConfig {
    OutputConfig::Console(ConsoleOutput {
        level: level.to_owned(),
        format,
        ..ConsoleOutput::default()
    })
}

/// Runs `emit` under the outputs, each redirected to its own buffer, and
/// returns the lines of each output.
pub(crate) fn capture(outputs: Vec<OutputConfig>, emit: impl FnOnce()) -> Vec<Vec<String>> {
    let config = LoggingConfig { outputs };
    let writers: Vec<MemoryWriter> = config.outputs.iter().map(|_| MemoryWriter::new()).collect();
    let mut logging = Logging::new(&config, SERVICE).clock(FixedClock(NOW));
    for (index, writer) in writers.iter().enumerate() {
        logging = logging.writer(index, writer.clone());
    }
    let (subscriber, _guard) = logging.build().expect("the test configuration is valid");
    tracing::subscriber::with_default(subscriber, emit);
    writers.iter().map(MemoryWriter::lines).collect()
}

/// The lines of one console output at `level` in `format`.
pub(crate) fn capture_one(format: Format, level: &str, emit: impl FnOnce()) -> Vec<String> {
    capture(vec![console(format, level)], emit)
        .pop()
        .unwrap_or_default()
}

/// `line` read as one JSON object.
pub(crate) fn json_of(line: &str) -> serde_json::Value {
    serde_json::from_str(line).expect("one JSON object")
}
