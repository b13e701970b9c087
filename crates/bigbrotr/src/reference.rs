//! `bigbrotr config reference`: the Markdown reference of every
//! configuration file of an implementation, `docs/configuration.md` for
//! the shipped one.
//!
//! The reference is generated so that it cannot drift from the code or from
//! the shipped files. The files it knows are the core files
//! ([`core_files`]) and the file of each service of the
//! [`registry`](crate::services::registry), in that order. For each it puts
//! side by side:
//!
//! - the JSON Schema of the file's struct (`schemars`): each key's form,
//!   default and description, the description being the field's doc
//!   comment;
//! - the YAML file as written: its keys in order, each value as written
//!   (`${VAR:default}` included), the comment at its top and the variables
//!   it reads;
//! - the file loaded without any environment variable, to tell which
//!   values differ from the defaults.
//!
//! A key of the struct missing from the file, a key of the file the struct
//! lacks, a field without a doc comment and a file no struct is known for
//! are all reported together as one error: fix the YAML file or the struct,
//! then regenerate the reference with [`REGENERATE`].

mod markdown;
mod schema;
mod written;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use bigbrotr_config::{references, Env, FileType, Implementation};
use bigbrotr_service_runtime::core_files;

use markdown::{cell, code, header_markdown, slug};
use schema::Walker;
use written::Written;

/// The command that regenerates the reference of the shipped implementation.
pub const REGENERATE: &str = "cargo run -p bigbrotr -- config reference > docs/configuration.md";

/// The reference of every configuration file of `implementation`, as
/// Markdown: the variables the files read, then one table per file with
/// each key's path, form, default, value in the file, override variable
/// and description.
///
/// Only the files and the code are read, never the environment, so the
/// result is the same on every machine. Fails, listing every problem, when
/// a file has no known struct, does not load, or disagrees with its struct
/// (a key on one side only, or a field without a doc comment).
pub fn reference(implementation: &Implementation) -> anyhow::Result<String> {
    let known: Vec<FileType> = core_files()
        .into_iter()
        .chain(crate::services::registry().files())
        .collect();
    let files = implementation
        .list_config_files()
        .context("listing the configuration files")?;
    let mut problems = Vec::new();
    let mut sources = Vec::new();
    for (folder, file, path) in files {
        let Some(file_type) = known
            .iter()
            .find(|known| known.folder() == folder && known.name() == file)
        else {
            problems.push(format!(
                "{folder}/{file}.yaml: no configuration struct is known for this file"
            ));
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {folder}/{file}.yaml"))?;
        sources.push((*file_type, text));
    }
    let mut documents = Vec::new();
    for file_type in &known {
        let Some((_, text)) = sources.iter().find(|(source, _)| {
            source.folder() == file_type.folder() && source.name() == file_type.name()
        }) else {
            continue;
        };
        match document(implementation.name(), file_type, text) {
            Ok(document) => documents.push(document),
            Err(found) => problems.extend(found.into_iter().map(|problem| {
                format!(
                    "{}/{}.yaml: {problem}",
                    file_type.folder(),
                    file_type.name()
                )
            })),
        }
    }
    anyhow::ensure!(
        problems.is_empty(),
        "the configuration files of `{}` and their structs disagree; fix them, then regenerate the reference:\n  {}",
        implementation.name(),
        problems.join("\n  ")
    );
    Ok(render(implementation.name(), &documents))
}

/// What the reference shows of one file.
struct Document {
    /// `core/pool`.
    file: String,
    /// `(crate, type)` of the file struct.
    type_name: (&'static str, &'static str),
    /// The comment at the top of the file.
    header: Vec<String>,
    rows: Vec<Row>,
    variables: Vec<Variable>,
}

/// One key of a file; every field is Markdown.
struct Row {
    path: String,
    form: String,
    default: String,
    shipped: String,
    variable: String,
    description: String,
}

/// An environment variable a file reads; every field is Markdown.
struct Variable {
    name: String,
    default: String,
    read_for: String,
}

/// Documents `text`, a file of `file_type` of the implementation `name`.
fn document(name: &str, file_type: &FileType, text: &str) -> Result<Document, Vec<String>> {
    let shown = format!(
        "implementations/{name}/config/{}/{}.yaml",
        file_type.folder(),
        file_type.name()
    );
    let file = format!("{}/{}.yaml", file_type.folder(), file_type.name());
    let loaded = file_type
        .load(text, Path::new(&shown), &Env::empty())
        .map_err(|error| vec![error.to_string()])?;
    // The values as written; a file whose `${…}` make no YAML unexpanded
    // shows expanded values instead.
    let written = Written::parse(text)
        .or_else(|_| {
            bigbrotr_config::expand(text, &Env::empty(), Path::new(&shown))
                .map_err(|error| error.to_string())
                .and_then(|expanded| Written::parse(&expanded))
        })
        .map_err(|error| vec![error])?;
    let schema = file_type.schema();
    let schema = schema.as_value();
    let (_, type_name) = file_type.type_name();
    let mut walker = Walker::new(schema, type_name, &file, &loaded);
    walker.walk(&[], schema, Some(&written));
    if !walker.problems.is_empty() {
        return Err(walker.problems);
    }
    let mut variables = Vec::new();
    let mut found = Vec::new();
    written.scalars("", &mut |path, value| {
        if let Ok(references) = references(value, Path::new(&shown)) {
            found.extend(references.into_iter().map(|reference| {
                Variable {
                    name: code(reference.name),
                    default: reference
                        .default
                        .map_or_else(|| "none: required".to_owned(), code),
                    read_for: format!("{} of {}", code(path), code(&file)),
                }
            }));
        }
    });
    variables.extend(found);
    variables.extend(walker.variables);
    Ok(Document {
        file: format!("{}/{}", file_type.folder(), file_type.name()),
        type_name: file_type.type_name(),
        header: written::header(text),
        rows: walker.rows,
        variables,
    })
}

/// The whole reference.
fn render(name: &str, documents: &[Document]) -> String {
    let regenerate = if name == "bigbrotr" {
        REGENERATE.to_owned()
    } else {
        format!("cargo run -p bigbrotr -- -i {name} config reference")
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "# Configuration reference\n\n\
         <!-- Generated from the configuration structs and the files of \
         implementations/{name}/config/ by `bigbrotr config reference`: do not edit. \
         Regenerate with `{regenerate}`. -->\n\n\
         Every key of every configuration file of the `{name}` implementation, \
         under `implementations/{name}/config/`. A value comes from three layers, \
         each overriding the one before:\n\n\
         1. the built-in default of the key (column *default*);\n\
         2. the YAML file, after `${{VAR}}` / `${{VAR:default}}` expansion (`$${{` is a \
         literal `${{`); column *file* shows the value as written when it differs from \
         the default or reads a variable, and *same* otherwise;\n\
         3. the environment variable of the key (column *override*), such as \
         `BIGBROTR_POOL__MAX_SIZE=50`: its value is read as in YAML (`50` is a number, \
         `[1, 3]` a list) unless the default is a string, and a list or map is \
         replaced as a whole.\n\n\
         Variables come from the process environment, then from the implementation's \
         `.env` file. Durations are a number of seconds (`30`, `0.5`) or a string with \
         a unit (`\"500ms\"`, `\"30s\"`, `\"5m\"`, `\"1h\"`). Unknown keys are errors: \
         `bigbrotr config check` loads every file and reports every problem at once.\n\n"
    );
    let variables_heading = "Variables read by the files";
    out.push_str("## Contents\n\n");
    let _ = writeln!(out, "- [{variables_heading}](#{})", slug(variables_heading));
    for document in documents {
        let title = format!("{}.yaml", document.file);
        let _ = writeln!(out, "- [`{title}`](#{})", slug(&title));
    }
    let _ = write!(
        out,
        "\n## {variables_heading}\n\n\
         | variable | default | read for |\n| --- | --- | --- |\n"
    );
    for variable in documents.iter().flat_map(|document| &document.variables) {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            cell(&variable.name),
            cell(&variable.default),
            cell(&variable.read_for)
        );
    }
    for document in documents {
        let (krate, type_name) = &document.type_name;
        let _ = write!(
            out,
            "\n## `{}.yaml`\n\nLoaded into `{type_name}` of `{krate}`.\n\n{}",
            document.file,
            header_markdown(&document.header)
        );
        out.push_str(
            "| key | form | default | file | override | description |\n\
             | --- | --- | --- | --- | --- | --- |\n",
        );
        for row in &document.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                cell(&row.path),
                cell(&row.form),
                cell(&row.default),
                cell(&row.shipped),
                cell(&row.variable),
                cell(&row.description)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn repository_root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn shipped() -> String {
        let implementation = Implementation::open(&repository_root(), "bigbrotr").unwrap();
        reference(&implementation).unwrap()
    }

    #[test]
    fn the_files_are_the_core_files_then_those_of_the_registry_in_its_order() {
        let reference = shipped();
        let titles: Vec<&str> = reference
            .lines()
            .filter_map(|line| line.strip_prefix("## `"))
            .collect();
        let expected: Vec<String> = core_files()
            .iter()
            .chain(&crate::services::registry().files())
            .map(|file| format!("{}/{}.yaml`", file.folder(), file.name()))
            .collect();
        assert_eq!(titles, expected);
        assert!(titles[5..]
            .iter()
            .all(|title| title.starts_with("services/")));
    }

    #[test]
    fn the_form_of_each_key_comes_from_the_schema_of_its_struct() {
        let reference = shipped();
        for row in [
            "| `database.port` | integer 0–65535 | `56432` | `${DB_PORT:56432}` | `BIGBROTR_DATABASE__PORT` |",
            "| `database.password` | string | `\"\"` | `\"${DB_PASSWORD:bigbrotr}\"` | `BIGBROTR_DATABASE__PASSWORD` |",
            "| `database.sslmode` | `disable`, `prefer`, `require`, `verify-ca` or `verify-full` | `disable` |",
            "| `pool.timeout` | duration | `30s` | same | `BIGBROTR_POOL__TIMEOUT` |",
            "| `retry.exponential_base` | number | `2.0` | same |",
            "| `runtime.http.listen` | socket address | `127.0.0.1:9109` | same | `BIGBROTR_RUNTIME__HTTP__LISTEN` |",
            "| `nostr.socks5_proxy` | optional string | none | same |",
            "| `synchronizer.filter.tags` | map of lists of strings | `{}` | same |",
            "| `synchronizer.start_time` | integer | `0` | same |",
            "| `finder.sources.kinds` | list of integers 0–65535 | `[1, 3, 10002, 30166]` | same |",
            "| `finder.http_sources` | list of mappings with keys `url`, `timeout` | `[]` | same |",
            "| `service.name` | string | `\"\"` | `initializer` |",
        ] {
            assert!(reference.contains(row), "no row starting {row}");
        }
        assert!(
            reference.contains(
                "| `logging.outputs` | list of mappings, each with `type: console` (`level`, `format`, `stream`) \
                 or `type: file` (`level`, `format`, `directory`, `file_prefix`, `rotation`, `max_files`) |"
            ),
            "{reference}"
        );
        assert!(reference.contains(
            "| `LOG_LEVEL` | `info` | `logging.outputs[0].level` of `core/logging.yaml` |"
        ));
        assert!(reference.contains(
            "| `MONITOR_PRIVATE_KEY` | none: a new key at each start | the monitor's secret key \
             (hex or `nsec`), named by `monitor.keys_env` of `services/monitor.yaml` |"
        ));
    }

    #[test]
    fn descriptions_are_the_doc_comments_of_the_fields() {
        let reference = shipped();
        assert!(reference.contains(
            "| `BIGBROTR_POOL__MAX_SIZE` | Most connections open at once. Default 10. |"
        ));
        assert!(reference.contains(
            "| `BIGBROTR_MONITOR__TIMEOUTS__NIP11` | The whole NIP-11 request, redirects and body included. Default 10 s. |"
        ), "{reference}");
    }

    fn implementation_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Implementation) {
        let root = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = root.path().join("implementations/mine/config").join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let implementation = Implementation::open(root.path(), "mine").unwrap();
        (root, implementation)
    }

    #[test]
    fn missing_keys_unknown_keys_and_unknown_files_are_all_reported() {
        let (_root, implementation) = implementation_with(&[
            (
                "core/brotr.yaml",
                "brotr:\n  batch_size: 10\n  insert_timeout: 5s\n  cleanup_interval: 1h\n  \
                 enable_event_validation: true\n  enable_relay_validation: true\n  \
                 cleanup_batch_size: 10\n  cleanup_orphan_events: false\n  relay_metadata_retention: 0\n",
            ),
            ("core/pool.yaml", "pool:\n  max_szie: 3\n"),
            ("extra/thing.yaml", "a: 1\n"),
        ]);
        let error = reference(&implementation).unwrap_err().to_string();
        assert_eq!(
            error,
            "the configuration files of `mine` and their structs disagree; fix them, then regenerate the reference:\n  \
             extra/thing.yaml: no configuration struct is known for this file\n  \
             core/pool.yaml: invalid configuration in implementations/mine/config/core/pool.yaml:\n  \
             pool.max_szie: unknown key; expected one of `min_size`, `max_size`, `timeout`, `command_timeout`\n  \
             core/brotr.yaml: brotr.verified_signatures: in `BrotrFile` but not in the file"
        );
    }

    #[test]
    fn a_complete_file_is_documented_with_its_values_as_written() {
        let (_root, implementation) = implementation_with(&[(
            "core/runtime.yaml",
            "# The runtime.\n#\n# Keys:\n#   a: <one>\n#   b: two\nruntime:\n  # Grace.\n  shutdown_grace: ${GRACE:1m}\n  \
             pool_close_grace: 5\n  on_service_failure: stop_process\n  http:\n    enabled: false\n    \
             listen: '127.0.0.1:9109'  # the default\n    database_check_interval: 5s\n",
        )]);
        let reference = reference(&implementation).unwrap();
        assert!(reference
            .contains("Regenerate with `cargo run -p bigbrotr -- -i mine config reference`."));
        assert!(reference.contains(
            "Loaded into `RuntimeFile` of `bigbrotr_service_runtime`.\n\nThe runtime.\n\nKeys:\n\n```text\na: <one>\nb: two\n```\n\n| key |"
        ), "{reference}");
        for row in [
            "| `runtime.shutdown_grace` | duration | `30s` | `${GRACE:1m}` | `BIGBROTR_RUNTIME__SHUTDOWN_GRACE` | After SIGINT,",
            "| `runtime.pool_close_grace` | duration | `5s` | same | `BIGBROTR_RUNTIME__POOL_CLOSE_GRACE` |",
            "| `runtime.on_service_failure` | `stop_service` or `stop_process` | `stop_service` | `stop_process` | `BIGBROTR_RUNTIME__ON_SERVICE_FAILURE` |",
            "| `runtime.http.enabled` | boolean | `true` | `false` | `BIGBROTR_RUNTIME__HTTP__ENABLED` |",
            "| `runtime.http.listen` | socket address | `127.0.0.1:9109` | same | `BIGBROTR_RUNTIME__HTTP__LISTEN` |",
            "| `GRACE` | `1m` | `runtime.shutdown_grace` of `core/runtime.yaml` |",
        ] {
            assert!(reference.contains(row), "no row {row} in\n{reference}");
        }
    }
}
