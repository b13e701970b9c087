//! Where the lines of an output go: a console stream, or files in a
//! directory rotated by time and written by a background thread.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::{OutputConfig, Stream};
use crate::error::{Error, Result};

/// The console stream or the rotated files of an output.
pub(crate) fn open(output: &OutputConfig, workers: &mut Vec<WorkerGuard>) -> Result<BoxMakeWriter> {
    match output {
        OutputConfig::Console(console) => Ok(match console.stream {
            Stream::Stdout => BoxMakeWriter::new(std::io::stdout),
            Stream::Stderr => BoxMakeWriter::new(std::io::stderr),
        }),
        OutputConfig::File(file) => {
            // Validation guarantees a directory.
            let directory = file.directory.clone().unwrap_or_default();
            let appender = tracing_appender::rolling::Builder::new()
                .rotation(file.rotation.to_appender())
                .filename_prefix(file.file_prefix.as_str())
                .filename_suffix("log")
                .max_log_files(file.max_files)
                .build(&directory)
                .map_err(|source| Error::OpenFile {
                    directory,
                    prefix: file.file_prefix.clone(),
                    source,
                })?;
            // Lossy: under a flood of lines the service drops some rather
            // than waiting for the disk.
            let (writer, worker) = tracing_appender::non_blocking(appender);
            workers.push(worker);
            Ok(BoxMakeWriter::new(writer))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::path::PathBuf;

    use tracing::{debug, info};

    use super::*;
    use crate::testing::{json_of, NOW, SERVICE};
    use crate::{
        build, ConsoleOutput, FileOutput, FixedClock, Format, Logging, LoggingConfig, Rotation,
    };

    fn file_output(directory: PathBuf, format: Format, rotation: Rotation) -> OutputConfig {
        OutputConfig::File(FileOutput {
            level: "debug".to_owned(),
            format,
            directory: Some(directory),
            file_prefix: "bigbrotr".to_owned(),
            rotation,
            max_files: 2,
        })
    }

    fn files_in(directory: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(directory)
            .expect("the directory exists")
            .map(|entry| {
                entry
                    .expect("readable entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_file_output_writes_its_lines_to_a_file_in_its_directory() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let logs = directory.path().join("logs");
        let config = LoggingConfig {
            outputs: vec![file_output(logs.clone(), Format::Standard, Rotation::Never)],
        };
        let (subscriber, guard) = Logging::new(&config, SERVICE)
            .clock(FixedClock(NOW))
            .build()
            .expect("valid configuration");
        assert_eq!(guard.workers(), 1);
        tracing::subscriber::with_default(subscriber, || {
            debug!(size = 2, "written to disk");
        });
        drop(guard);
        assert_eq!(files_in(&logs), vec!["bigbrotr.log"]);
        let text = std::fs::read_to_string(logs.join("bigbrotr.log")).expect("readable");
        assert_eq!(
            text,
            "2024-01-15 10:30:45 DEBUG [monitor] written to disk size=2\n"
        );
    }

    #[test]
    fn a_rotated_file_is_named_after_its_period() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let config = LoggingConfig {
            outputs: vec![file_output(
                directory.path().to_owned(),
                Format::Bunyan,
                Rotation::Daily,
            )],
        };
        let (subscriber, guard) = build(&config, SERVICE).expect("valid configuration");
        let name_on = |date: time::Date| {
            format!(
                "bigbrotr.{:04}-{:02}-{:02}.log",
                date.year(),
                u8::from(date.month()),
                date.day()
            )
        };
        let before = name_on(time::OffsetDateTime::now_utc().date());
        tracing::subscriber::with_default(subscriber, || info!("rotated"));
        drop(guard);
        let after = name_on(time::OffsetDateTime::now_utc().date());
        let files = files_in(directory.path());
        // Midnight may pass while the test runs.
        assert!(
            files == [before.clone()] || files == [after.clone()],
            "{files:?}"
        );
        let name = &files[0];
        let text = std::fs::read_to_string(directory.path().join(name)).expect("readable");
        assert_eq!(json_of(text.trim_end())["msg"], "rotated");
    }

    #[test]
    fn every_rotation_builds_a_file_output() {
        for rotation in [
            Rotation::Never,
            Rotation::Minutely,
            Rotation::Hourly,
            Rotation::Daily,
            Rotation::Weekly,
        ] {
            let directory = tempfile::tempdir().expect("a temporary directory");
            let config = LoggingConfig {
                outputs: vec![file_output(
                    directory.path().to_owned(),
                    Format::Detailed,
                    rotation,
                )],
            };
            let (_subscriber, guard) = build(&config, SERVICE).expect("valid configuration");
            assert_eq!(guard.workers(), 1, "{rotation:?}");
        }
    }

    #[test]
    fn a_directory_that_cannot_be_created_is_an_open_file_error() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let blocker = directory.path().join("a-file");
        std::fs::write(&blocker, b"").expect("writable");
        let logs = blocker.join("logs");
        let config = LoggingConfig {
            outputs: vec![file_output(logs.clone(), Format::Bunyan, Rotation::Never)],
        };
        let error = build(&config, SERVICE)
            .err()
            .expect("the directory is under a file");
        assert!(
            matches!(&error, Error::OpenFile { directory, prefix, .. } if *directory == logs && prefix == "bigbrotr"),
            "{error:?}"
        );
        assert!(error.source().is_some());
    }

    #[test]
    fn console_outputs_build_for_both_streams() {
        let config = LoggingConfig {
            outputs: vec![
                OutputConfig::Console(ConsoleOutput {
                    level: "off".to_owned(),
                    stream: Stream::Stdout,
                    ..ConsoleOutput::default()
                }),
                OutputConfig::Console(ConsoleOutput {
                    level: "off".to_owned(),
                    stream: Stream::Stderr,
                    ..ConsoleOutput::default()
                }),
            ],
        };
        let (subscriber, guard) = build(&config, SERVICE).expect("valid configuration");
        assert_eq!(guard.workers(), 0);
        tracing::subscriber::with_default(subscriber, || info!("silenced"));
    }
}
