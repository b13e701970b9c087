//! The `logging` section of a service's configuration and its validation.

use std::collections::BTreeSet;
use std::path::PathBuf;

use bigbrotr_config::{Problem, Problems, Validate};
use serde::{Deserialize, Serialize};

use crate::level::parse_level;

/// The whole logging configuration file: a single `logging` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingFile {
    /// Where log lines go, at which level and in which format.
    pub logging: LoggingConfig,
}

impl Validate for LoggingFile {
    fn validate(&self, problems: &mut Problems) {
        problems.section("logging", &self.logging);
    }
}

/// Where log lines go, at which level and in which format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// The outputs, all active at once, each with its own level and format.
    /// Defaults to one console output on stderr at `info` in the standard format.
    pub outputs: Vec<OutputConfig>,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            outputs: vec![OutputConfig::Console(ConsoleOutput::default())],
        }
    }
}

impl LoggingConfig {
    /// Everything wrong with this configuration, each problem naming its key
    /// as `logging.outputs[N].key`. Empty when the configuration is usable.
    #[must_use]
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Problems::new();
        problems.section("logging", self);
        problems.into_vec()
    }
}

impl Validate for LoggingConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.outputs.is_empty() {
            problems.push(
                "outputs",
                "at least one output is needed; use the level `off` to silence one",
            );
        }
        let mut files = BTreeSet::new();
        for (index, output) in self.outputs.iter().enumerate() {
            let at = |key: &str| format!("outputs[{index}].{key}");
            if let Err(message) = parse_level(output.level()) {
                problems.push(at("level"), message);
            }
            let OutputConfig::File(file) = output else {
                continue;
            };
            match &file.directory {
                None => problems.push(at("directory"), "a file output needs a directory"),
                Some(directory) if directory.as_os_str().is_empty() => {
                    problems.push(at("directory"), "must not be empty");
                }
                Some(directory) => {
                    if !files.insert((directory.clone(), file.file_prefix.clone())) {
                        problems.push(
                            at("file_prefix"),
                            "another file output already writes files with this prefix in this directory",
                        );
                    }
                }
            }
            if file.file_prefix.is_empty() {
                problems.push(at("file_prefix"), "must not be empty");
            } else if file.file_prefix.contains(['/', '\\']) {
                problems.push(
                    at("file_prefix"),
                    "must be a file name, without `/` or `\\`",
                );
            }
            if file.max_files == 0 {
                problems.push(at("max_files"), "must be at least 1");
            }
        }
    }
}

/// One destination of log lines.
///
/// In YAML the `type` key picks the kind:
///
/// ```yaml
/// - type: console
///   level: info
/// - type: file
///   directory: logs
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputConfig {
    /// Lines to the standard output or standard error of the process.
    Console(ConsoleOutput),
    /// Lines to files in a directory, rotated by time.
    File(FileOutput),
}

impl OutputConfig {
    /// The level or filter directives of this output.
    #[must_use]
    pub fn level(&self) -> &str {
        match self {
            Self::Console(console) => &console.level,
            Self::File(file) => &file.level,
        }
    }

    /// The line format of this output.
    #[must_use]
    pub fn format(&self) -> Format {
        match self {
            Self::Console(console) => console.format,
            Self::File(file) => file.format,
        }
    }
}

/// An output to the standard output or standard error of the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleOutput {
    /// The most verbose level written (`trace`, `debug`, `info`, `warn`,
    /// `error` or `off`), or filter directives such as
    /// `info,bigbrotr::pool=debug`. Default `info`.
    pub level: String,
    /// How each line looks. Default `standard`.
    pub format: Format,
    /// Which stream of the process receives the lines. Default `stderr`.
    pub stream: Stream,
}

impl Default for ConsoleOutput {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: Format::Standard,
            stream: Stream::Stderr,
        }
    }
}

/// An output to files in a directory, one file per rotation period.
///
/// Files are named `<file_prefix>.<period>.log`, for example
/// `bigbrotr.2024-01-15.log` with daily rotation, or `<file_prefix>.log`
/// without rotation. Lines are written by a background thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FileOutput {
    /// The most verbose level written, or filter directives; see
    /// [`ConsoleOutput::level`]. Default `info`.
    pub level: String,
    /// How each line looks. Default `bunyan`.
    pub format: Format,
    /// The directory of the files, created when missing. Required.
    pub directory: Option<PathBuf>,
    /// The start of every file name. Default `bigbrotr`.
    pub file_prefix: String,
    /// How often a new file is started. Default `daily`.
    pub rotation: Rotation,
    /// How many files are kept; older ones are deleted when a new one starts.
    /// At least 1. Default 7.
    pub max_files: usize,
}

impl Default for FileOutput {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: Format::Bunyan,
            directory: None,
            file_prefix: "bigbrotr".to_owned(),
            rotation: Rotation::Daily,
            max_files: 7,
        }
    }
}

/// How each log line looks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `2024-01-15 10:30:45 INFO [service] Message key=value`.
    #[default]
    Standard,
    /// `2024-01-15 10:30:45.123 INFO [service:target:line] Message key=value`.
    Detailed,
    /// One JSON object per line in the Bunyan format: the service as `name`,
    /// time, level, message, target, source line and every field, with a
    /// line when a span starts and one when it ends.
    Bunyan,
}

impl Format {
    const NAMES: [&'static str; 3] = ["standard", "detailed", "bunyan"];
}

/// By hand so that the former `json` format is refused with a pointer to
/// `bunyan`, rather than as just another unknown name.
impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;

        let name = String::deserialize(deserializer)?;
        match name.as_str() {
            "standard" => Ok(Self::Standard),
            "detailed" => Ok(Self::Detailed),
            "bunyan" => Ok(Self::Bunyan),
            "json" => Err(D::Error::custom(
                "the `json` format is gone: use `bunyan`, which also writes one JSON object per line",
            )),
            other => Err(D::Error::unknown_variant(other, &Self::NAMES)),
        }
    }
}

/// A standard stream of the process.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// The standard output.
    Stdout,
    /// The standard error.
    #[default]
    Stderr,
}

/// How often a file output starts a new file. Periods follow UTC.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Rotation {
    /// One file forever.
    Never,
    /// A new file every minute.
    Minutely,
    /// A new file every hour.
    Hourly,
    /// A new file every day.
    #[default]
    Daily,
    /// A new file every week, starting on Sunday.
    Weekly,
}

impl Rotation {
    pub(crate) fn to_appender(self) -> tracing_appender::rolling::Rotation {
        use tracing_appender::rolling::Rotation as Appender;
        match self {
            Self::Never => Appender::NEVER,
            Self::Minutely => Appender::MINUTELY,
            Self::Hourly => Appender::HOURLY,
            Self::Daily => Appender::DAILY,
            Self::Weekly => Appender::WEEKLY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_problems(file: &LoggingFile) -> Vec<Problem> {
        let mut problems = Problems::new();
        file.validate(&mut problems);
        problems.into_vec()
    }

    fn file_output(directory: &str) -> FileOutput {
        FileOutput {
            directory: Some(PathBuf::from(directory)),
            ..FileOutput::default()
        }
    }

    #[test]
    fn the_default_is_one_console_output_at_info_in_the_standard_format_on_stderr() {
        let config = LoggingConfig::default();
        assert_eq!(
            config.outputs,
            vec![OutputConfig::Console(ConsoleOutput {
                level: "info".to_owned(),
                format: Format::Standard,
                stream: Stream::Stderr,
            })]
        );
        assert_eq!(config.problems(), Vec::<Problem>::new());
        assert_eq!(
            file_problems(&LoggingFile::default()),
            Vec::<Problem>::new()
        );
    }

    #[test]
    fn outputs_are_told_apart_by_their_type_key() {
        let json = r#"{"logging":{"outputs":[
            {"type":"console","level":"debug","format":"detailed","stream":"stdout"},
            {"type":"file","directory":"logs","rotation":"hourly","max_files":3}
        ]}}"#;
        let file: LoggingFile = serde_json::from_str(json).expect("the file is valid");
        assert_eq!(
            file.logging.outputs,
            vec![
                OutputConfig::Console(ConsoleOutput {
                    level: "debug".to_owned(),
                    format: Format::Detailed,
                    stream: Stream::Stdout,
                }),
                OutputConfig::File(FileOutput {
                    directory: Some(PathBuf::from("logs")),
                    rotation: Rotation::Hourly,
                    max_files: 3,
                    ..FileOutput::default()
                }),
            ]
        );
    }

    #[test]
    fn a_file_key_on_a_console_output_is_rejected() {
        let json = r#"{"outputs":[{"type":"console","directory":"logs"}]}"#;
        let error = serde_json::from_str::<LoggingConfig>(json).expect_err("unknown key");
        assert!(
            error.to_string().contains("unknown field `directory`"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_output_type_is_rejected() {
        let json = r#"{"outputs":[{"type":"syslog"}]}"#;
        let error = serde_json::from_str::<LoggingConfig>(json).expect_err("unknown type");
        assert!(
            error.to_string().contains("unknown variant `syslog`"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_top_level_key_is_rejected() {
        let json = r#"{"logging":{"outputs":[],"colour":true}}"#;
        let error = serde_json::from_str::<LoggingFile>(json).expect_err("unknown key");
        assert!(
            error.to_string().contains("unknown field `colour`"),
            "{error}"
        );
    }

    #[test]
    fn the_output_type_is_written_back_as_the_type_key() {
        let config = LoggingConfig::default();
        let json = serde_json::to_string(&config).expect("serialisable");
        assert_eq!(
            json,
            r#"{"outputs":[{"type":"console","level":"info","format":"standard","stream":"stderr"}]}"#
        );
        let back: LoggingConfig = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, config);
    }

    #[test]
    fn every_problem_names_its_key() {
        let config = LoggingConfig {
            outputs: vec![
                OutputConfig::Console(ConsoleOutput::default()),
                OutputConfig::Console(ConsoleOutput {
                    level: "verbose".to_owned(),
                    ..ConsoleOutput::default()
                }),
                OutputConfig::File(FileOutput {
                    max_files: 0,
                    file_prefix: String::new(),
                    ..FileOutput::default()
                }),
                OutputConfig::File(FileOutput {
                    directory: Some(PathBuf::new()),
                    file_prefix: "a/b".to_owned(),
                    ..FileOutput::default()
                }),
            ],
        };
        let paths: Vec<String> = config.problems().into_iter().map(|p| p.path).collect();
        assert_eq!(
            paths,
            vec![
                "logging.outputs[1].level",
                "logging.outputs[2].directory",
                "logging.outputs[2].file_prefix",
                "logging.outputs[2].max_files",
                "logging.outputs[3].directory",
                "logging.outputs[3].file_prefix",
            ]
        );
    }

    #[test]
    fn a_file_output_without_directory_is_a_problem() {
        let config = LoggingConfig {
            outputs: vec![OutputConfig::File(FileOutput::default())],
        };
        assert_eq!(
            config.problems(),
            vec![Problem::new(
                "logging.outputs[0].directory",
                "a file output needs a directory"
            )]
        );
    }

    #[test]
    fn two_file_outputs_writing_the_same_files_are_a_problem() {
        let config = LoggingConfig {
            outputs: vec![
                OutputConfig::File(file_output("logs")),
                OutputConfig::File(file_output("other")),
                OutputConfig::File(file_output("logs")),
            ],
        };
        assert_eq!(
            config.problems(),
            vec![Problem::new(
                "logging.outputs[2].file_prefix",
                "another file output already writes files with this prefix in this directory"
            )]
        );
    }

    #[test]
    fn no_output_at_all_is_a_problem() {
        let config = LoggingConfig { outputs: vec![] };
        assert_eq!(
            config.problems(),
            vec![Problem::new(
                "logging.outputs",
                "at least one output is needed; use the level `off` to silence one"
            )]
        );
    }

    #[test]
    fn every_rotation_maps_to_the_appender_rotation() {
        use tracing_appender::rolling::Rotation as Appender;
        assert_eq!(Rotation::Never.to_appender(), Appender::NEVER);
        assert_eq!(Rotation::Minutely.to_appender(), Appender::MINUTELY);
        assert_eq!(Rotation::Hourly.to_appender(), Appender::HOURLY);
        assert_eq!(Rotation::Daily.to_appender(), Appender::DAILY);
        assert_eq!(Rotation::Weekly.to_appender(), Appender::WEEKLY);
    }

    const SHIPPED: &str =
        include_str!("../../../implementations/bigbrotr/config/core/logging.yaml");

    fn load(text: &str, env: &[(&str, &str)]) -> bigbrotr_config::Result<LoggingFile> {
        let env = bigbrotr_config::Env::from_pairs(env.iter().copied());
        bigbrotr_config::load_str(text, std::path::Path::new("logging.yaml"), &env)
    }

    #[test]
    fn the_shipped_file_loads_as_the_default() {
        let file = load(SHIPPED, &[]).expect("the shipped file loads");
        assert_eq!(file, LoggingFile::default());
    }

    #[test]
    fn the_shipped_file_takes_its_level_from_log_level() {
        let file = load(SHIPPED, &[("LOG_LEVEL", "debug,bigbrotr::pool=trace")]).expect("loads");
        assert_eq!(
            file.logging.outputs,
            vec![OutputConfig::Console(ConsoleOutput {
                level: "debug,bigbrotr::pool=trace".to_owned(),
                ..ConsoleOutput::default()
            })]
        );
    }

    #[test]
    fn the_commented_file_output_of_the_shipped_file_loads() {
        let text = SHIPPED
            .replace("    # - ", "    - ")
            .replace("    #   ", "      ");
        let file = load(&text, &[]).expect("the example loads");
        assert_eq!(
            file.logging.outputs.get(1),
            Some(&OutputConfig::File(FileOutput {
                level: "debug".to_owned(),
                format: Format::Bunyan,
                directory: Some(PathBuf::from("/var/log/bigbrotr")),
                file_prefix: "bigbrotr".to_owned(),
                rotation: Rotation::Daily,
                max_files: 7,
            }))
        );
    }

    #[test]
    fn every_format_reads_back_what_it_writes() {
        for format in [Format::Standard, Format::Detailed, Format::Bunyan] {
            let text = serde_json::to_string(&format).expect("serialisable");
            assert_eq!(serde_json::from_str::<Format>(&text).ok(), Some(format));
        }
    }

    #[test]
    fn the_former_json_format_is_refused_with_a_pointer_to_bunyan() {
        let text = "logging:\n  outputs:\n    - type: console\n      format: json\n";
        let error = load(text, &[]).expect_err("the json format is gone");
        let bigbrotr_config::Error::Invalid { problems, .. } = error else {
            panic!("expected Invalid, got {error:?}");
        };
        assert_eq!(
            problems,
            vec![Problem::new(
                "logging.outputs[0]",
                "the `json` format is gone: use `bunyan`, which also writes one JSON object per line"
            )]
        );
    }

    #[test]
    fn an_unknown_format_lists_the_formats() {
        let error = serde_json::from_str::<Format>(r#""xml""#).expect_err("no such format");
        assert!(
            error.to_string().starts_with(
                "unknown variant `xml`, expected one of `standard`, `detailed`, `bunyan`"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_bad_level_in_a_file_is_reported_with_its_key() {
        let text = "logging:\n  outputs:\n    - type: console\n    - type: file\n      directory: logs\n      level: inof\n";
        let error = load(text, &[]).expect_err("the level is misspelt");
        let bigbrotr_config::Error::Invalid { problems, .. } = error else {
            panic!("expected Invalid, got {error:?}");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["logging.outputs[1].level"]);
    }
}
