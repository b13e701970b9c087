//! `bigbrotr config reference`: the Markdown reference of every
//! configuration file of an implementation, `docs/configuration.md` for
//! the shipped one.
//!
//! The reference is generated so that it cannot drift from the code or from
//! the shipped files. For each file it puts side by side:
//!
//! - the file's typed struct: its keys and defaults are the serialized
//!   [`Default`], and the form of each key (a duration, an integer, a list
//!   of strings…) is learnt by offering the struct probe values and reading
//!   what serde answers;
//! - the YAML file: its keys, the value each is given as written
//!   (`${VAR:default}` included) and the comment lines directly above each
//!   key, which become its description;
//! - the file loaded without any environment variable, to tell which
//!   values differ from the defaults.
//!
//! A key of the struct missing from the file, a key of the file the struct
//! lacks, a key without a comment and a file no struct is known for are all
//! reported together as one error: fix the YAML file or the struct, then
//! regenerate the reference with [`REGENERATE`].
//!
//! The YAML files are read in the block style they are written in: one key
//! per line, `- ` for list items, comments on lines of their own.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use bigbrotr_config::{BrotrFile, ConfigFile, EgressFile, Env, Implementation, PoolFile};
use bigbrotr_finder::FinderFile;
use bigbrotr_initializer::InitializerFile;
use bigbrotr_logging::LoggingFile;
use bigbrotr_monitor::MonitorFile;
use bigbrotr_service_runtime::RuntimeFile;
use bigbrotr_synchronizer::SynchronizerFile;
use serde_json::{Map, Value as Json};

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
/// (a key on one side only, or a key without a comment).
pub fn reference(implementation: &Implementation) -> anyhow::Result<String> {
    let files = implementation
        .list_config_files()
        .context("listing the configuration files")?;
    let mut problems = Vec::new();
    let mut sources = Vec::new();
    for (kind, file, path) in files {
        if !KNOWN_FILES
            .iter()
            .any(|known| known.kind == kind && known.file == file)
        {
            problems.push(format!(
                "{kind}/{file}.yaml: no configuration struct is known for this file"
            ));
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {kind}/{file}.yaml"))?;
        let shown = format!(
            "implementations/{}/config/{kind}/{file}.yaml",
            implementation.name()
        );
        sources.push(Source {
            kind,
            file,
            shown,
            text,
        });
    }
    let mut documents = Vec::new();
    for known in KNOWN_FILES {
        let Some(source) = sources
            .iter()
            .find(|source| source.kind == known.kind && source.file == known.file)
        else {
            continue;
        };
        match (known.document)(source) {
            Ok(document) => documents.push(document),
            Err(found) => problems.extend(
                found
                    .into_iter()
                    .map(|problem| format!("{}/{}.yaml: {problem}", source.kind, source.file)),
            ),
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

/// A configuration file the reference knows, and how to document it.
struct KnownFile {
    /// The folder under `config/`.
    kind: &'static str,
    /// The name of the file without `.yaml`.
    file: &'static str,
    /// Documents the file with its struct; the problems found otherwise.
    document: fn(&Source) -> Result<Document, Vec<String>>,
}

/// Every configuration file the reference knows, in the order it shows
/// them: the core files, then the file of each service of the
/// [`registry`](crate::services::registry).
const KNOWN_FILES: &[KnownFile] = &[
    KnownFile {
        kind: "core",
        file: "pool",
        document: |source| document::<PoolFile>(source, |_| Vec::new()),
    },
    KnownFile {
        kind: "core",
        file: "brotr",
        document: |source| document::<BrotrFile>(source, |_| Vec::new()),
    },
    KnownFile {
        kind: "core",
        file: "logging",
        document: |source| document::<LoggingFile>(source, |_| Vec::new()),
    },
    KnownFile {
        kind: "core",
        file: "runtime",
        document: |source| document::<RuntimeFile>(source, |_| Vec::new()),
    },
    KnownFile {
        kind: "core",
        file: "egress",
        document: |source| document::<EgressFile>(source, |_| Vec::new()),
    },
    KnownFile {
        kind: "services",
        file: "initializer",
        document: |source| document::<InitializerFile>(source, |_| Vec::new()),
    },
    KnownFile {
        kind: "services",
        file: "monitor",
        document: |source| document::<MonitorFile>(source, monitor_variables),
    },
    KnownFile {
        kind: "services",
        file: "finder",
        document: |source| document::<FinderFile>(source, |_| Vec::new()),
    },
    KnownFile {
        kind: "services",
        file: "synchronizer",
        document: |source| document::<SynchronizerFile>(source, synchronizer_variables),
    },
];

/// The variable the monitor reads its secret key from, named by a key
/// rather than through `${…}`.
fn monitor_variables(file: &MonitorFile) -> Vec<Variable> {
    vec![Variable {
        name: file.monitor.keys_env.clone(),
        default: "none: a new key at each start".to_owned(),
        read_for: "the monitor's secret key (hex or `nsec`), named by `monitor.keys_env` of `services/monitor.yaml`".to_owned(),
    }]
}

/// The variable the synchronizer reads its secret key from (NIP-42).
fn synchronizer_variables(file: &SynchronizerFile) -> Vec<Variable> {
    vec![Variable {
        name: file.synchronizer.auth.keys_env.clone(),
        default: "none: a new key at each start".to_owned(),
        read_for: "the synchronizer's secret key for NIP-42 authentication (hex or `nsec`), named by `synchronizer.auth.keys_env` of `services/synchronizer.yaml`".to_owned(),
    }]
}

/// One configuration file as read.
struct Source {
    kind: String,
    file: String,
    /// Its path relative to the root, for the reference and for errors.
    shown: String,
    text: String,
}

/// What the reference shows of one file.
struct Document {
    kind: String,
    file: String,
    /// `(crate, type)` of the file struct.
    type_name: (String, String),
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

/// Word meant to be refused wherever a value with meaning is expected.
const PROBE_TEXT: &str = "zz probe";

/// Key no configuration struct has.
const PROBE_KEY: &str = "zz_probe";

/// Documents `source` with the struct `T`; `extra` adds the variables `T`
/// reads by other means than `${…}`.
fn document<T: ConfigFile>(
    source: &Source,
    extra: fn(&T) -> Vec<Variable>,
) -> Result<Document, Vec<String>> {
    let file = Path::new(&source.shown);
    let env = Env::empty();
    let loaded: T = bigbrotr_config::load_str(&source.text, file, &env)
        .map_err(|error| vec![error.to_string()])?;
    let serialize = |value: &T| {
        serde_json::to_value(value).map_err(|error| {
            vec![format!(
                "cannot serialize `{}`: {error}",
                short_type_name::<T>().1
            )]
        })
    };
    let defaults = serialize(&T::default())?;
    // Serialized again as YAML, which keeps the order of the fields.
    let defaults_yaml = serde_yaml::to_value(T::default()).map_err(|error| {
        vec![format!(
            "cannot serialize `{}`: {error}",
            short_type_name::<T>().1
        )]
    })?;
    let loaded_json = serialize(&loaded)?;
    let expanded = bigbrotr_config::expand(&source.text, &env, file)
        .map_err(|error| vec![error.to_string()])?;
    let tree: serde_yaml::Value =
        serde_yaml::from_str(&expanded).map_err(|error| vec![error.to_string()])?;
    // The values as written; files whose `${…}` make no YAML unexpanded
    // show expanded values instead.
    let written = serde_yaml::from_str(&source.text).unwrap_or_else(|_| tree.clone());
    let scan = scan(&source.text);
    let Json::Object(fields) = &defaults else {
        return Err(vec![format!(
            "`{}` is not serialized as a mapping of sections",
            short_type_name::<T>().1
        )]);
    };
    let accepts = |doc: &Json| {
        serde_json::from_value::<T>(doc.clone())
            .map(drop)
            .map_err(|error| error.to_string())
    };
    let mut walker = Walker {
        accepts: &accepts,
        type_name: short_type_name::<T>().1,
        defaults: &defaults,
        defaults_yaml: &defaults_yaml,
        loaded: &loaded_json,
        written: &written,
        keys: scan
            .keys
            .iter()
            .map(|key| (key.path.as_str(), key))
            .collect(),
        rows: Vec::new(),
        problems: Vec::new(),
    };
    walker.walk(&[], fields, Some(&tree));
    let Walker { rows, problems, .. } = walker;
    if !problems.is_empty() {
        return Err(problems);
    }
    let shown_file = format!("{}/{}.yaml", source.kind, source.file);
    let mut variables: Vec<Variable> = scan
        .references
        .iter()
        .map(|reference| Variable {
            name: code(&reference.name),
            default: reference
                .default
                .as_deref()
                .map_or_else(|| "none: required".to_owned(), code),
            read_for: format!("{} of {}", code(&reference.path), code(&shown_file)),
        })
        .collect();
    variables.extend(extra(&loaded).into_iter().map(|variable| Variable {
        name: code(&variable.name),
        ..variable
    }));
    let (krate, name) = short_type_name::<T>();
    Ok(Document {
        kind: source.kind.clone(),
        file: source.file.clone(),
        type_name: (krate.to_owned(), name.to_owned()),
        header: scan.header,
        rows,
        variables,
    })
}

/// The crate and the name of `T`.
fn short_type_name<T>() -> (&'static str, &'static str) {
    let full = std::any::type_name::<T>();
    let krate = full.split("::").next().unwrap_or(full);
    let name = full.rsplit("::").next().unwrap_or(full);
    (krate, name)
}

/// Walks a file struct and its YAML file together.
struct Walker<'a> {
    /// Whether the struct accepts a document; serde's complaint otherwise.
    accepts: &'a dyn Fn(&Json) -> Result<(), String>,
    type_name: &'a str,
    defaults: &'a Json,
    /// The same defaults as YAML, to show them in field order.
    defaults_yaml: &'a serde_yaml::Value,
    loaded: &'a Json,
    written: &'a serde_yaml::Value,
    keys: HashMap<&'a str, &'a ScannedKey>,
    rows: Vec<Row>,
    problems: Vec<String>,
}

impl Walker<'_> {
    /// Documents the section at `path` (the file itself when empty), whose
    /// fields default to `fields` and whose YAML is `yaml`: the keys of the
    /// file in their order, then the keys of the struct the file lacks.
    fn walk(
        &mut self,
        path: &[String],
        fields: &Map<String, Json>,
        yaml: Option<&serde_yaml::Value>,
    ) {
        let mapping = yaml.and_then(serde_yaml::Value::as_mapping);
        for (key, value) in mapping.into_iter().flatten() {
            let Some(key) = key.as_str() else {
                self.problems
                    .push(format!("{}: a key that is not a string", dotted(path)));
                continue;
            };
            let child = child(path, key);
            match fields.get(key) {
                None => self.problems.push(format!(
                    "{}: in the file but not in `{}`",
                    dotted(&child),
                    self.type_name
                )),
                Some(default) => match self.section(&child, default) {
                    Some(inner) => self.walk(&child, inner, Some(value)),
                    None => self.leaf(&child, default),
                },
            }
        }
        for (key, default) in fields {
            if mapping.is_some_and(|mapping| mapping.contains_key(key.as_str())) {
                continue;
            }
            let child = child(path, key);
            match self.section(&child, default) {
                Some(inner) => self.walk(&child, inner, None),
                None => self.problems.push(format!(
                    "{}: in `{}` but not in the file",
                    dotted(&child),
                    self.type_name
                )),
            }
        }
    }

    /// The fields of the value at `path` when it is a section: a struct
    /// that refuses unknown keys, rather than a map of any keys.
    fn section<'d>(&self, path: &[String], default: &'d Json) -> Option<&'d Map<String, Json>> {
        let Json::Object(fields) = default else {
            return None;
        };
        let mut probe = fields.clone();
        probe.insert(PROBE_KEY.to_owned(), Json::from(0));
        let refused = (self.accepts)(&with_value(self.defaults, path, Json::Object(probe)))
            .is_err_and(|error| error.starts_with(&format!("unknown field `{PROBE_KEY}`")));
        (!fields.is_empty() && refused).then_some(fields)
    }

    /// Documents the key at `path`, whose default is `default`.
    fn leaf(&mut self, path: &[String], default: &Json) {
        let dotted = dotted(path);
        let place = |value: Json| with_value(self.defaults, path, value);
        let mut form = form(self.accepts, &place);
        if (self.accepts)(&place(Json::Null)).is_ok() {
            form.one = format!("optional {}", form.one);
        }
        let scanned = self.keys.get(dotted.as_str());
        let description = scanned
            .map(|key| one_line(&key.comments))
            .unwrap_or_default();
        if description.is_empty() {
            self.problems
                .push(format!("{dotted}: no comment directly above the key"));
        }
        let written = scanned
            .map(|key| key.value.clone())
            .filter(|value| !value.is_empty())
            .or_else(|| bigbrotr_config::get_path(self.written, &dotted).map(flow))
            .unwrap_or_default();
        let differs = lookup(self.loaded, path) != Some(default);
        let shipped = if differs || written.contains("${") {
            code(&written)
        } else {
            "same".to_owned()
        };
        let default = match default {
            Json::Null => "none".to_owned(),
            Json::Number(seconds) if form.duration => code(
                &seconds
                    .as_f64()
                    .map_or_else(|| seconds.to_string(), format_duration),
            ),
            other => code(
                &bigbrotr_config::get_path(self.defaults_yaml, &dotted)
                    .map_or_else(|| other.to_string(), flow),
            ),
        };
        let variable = format!(
            "BIGBROTR_{}",
            path.iter()
                .map(|key| key.to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join("__")
        );
        self.rows.push(Row {
            path: code(&dotted),
            form: form.one,
            default,
            shipped,
            variable: code(&variable),
            description,
        });
    }
}

/// `path` and one more key.
fn child(path: &[String], key: &str) -> Vec<String> {
    let mut child = path.to_vec();
    child.push(key.to_owned());
    child
}

/// `path` with dots between the keys.
fn dotted(path: &[String]) -> String {
    path.join(".")
}

/// The value at `path` in `doc`.
fn lookup<'a>(doc: &'a Json, path: &[String]) -> Option<&'a Json> {
    path.iter().try_fold(doc, |value, key| value.get(key))
}

/// `doc` with `value` at `path`, where every key but the last exists.
fn with_value(doc: &Json, path: &[String], value: Json) -> Json {
    let mut doc = doc.clone();
    let Some((last, parents)) = path.split_last() else {
        return value;
    };
    let parent = parents
        .iter()
        .try_fold(&mut doc, |node, key| node.get_mut(key));
    if let Some(Json::Object(parent)) = parent {
        parent.insert(last.clone(), value);
    }
    doc
}

/// What values a key takes, in words.
struct Form {
    /// For one value: "list of strings".
    one: String,
    /// For several: "lists of strings".
    many: String,
    /// Whether the value is a duration, serialized as seconds.
    duration: bool,
}

impl Form {
    fn new(one: impl Into<String>, many: impl Into<String>) -> Self {
        Self {
            one: one.into(),
            many: many.into(),
            duration: false,
        }
    }
}

/// The form of the value that `place` puts into a document, learnt from
/// what `accepts` says of probe values there.
fn form(accepts: &dyn Fn(&Json) -> Result<(), String>, place: &dyn Fn(Json) -> Json) -> Form {
    match accepts(&place(Json::from(PROBE_TEXT))) {
        Ok(()) => return Form::new("string", "strings"),
        Err(error) if error.starts_with("unknown variant") => {
            let choices = either(
                &expected_names(&error)
                    .iter()
                    .map(|name| code(name))
                    .collect::<Vec<_>>(),
            );
            return Form::new(choices.clone(), choices);
        }
        Err(_) => {}
    }
    let error = match accepts(&place(Json::Bool(true))) {
        Ok(()) => return Form::new("boolean", "booleans"),
        Err(error) => error,
    };
    let expected = error
        .split_once("expected ")
        .map_or(error.as_str(), |(_, expected)| expected)
        .trim();
    match expected {
        "a sequence" => {
            let item = form(accepts, &|value| place(Json::Array(vec![value])));
            Form::new(
                format!("list of {}", item.many),
                format!("lists of {}", item.many),
            )
        }
        "a map" => {
            let value = form(accepts, &|value| {
                place(Json::Object(Map::from_iter([("k".to_owned(), value)])))
            });
            Form::new(
                format!("map of {}", value.many),
                format!("maps of {}", value.many),
            )
        }
        "u8" => Form::new("integer 0–255", "integers 0–255"),
        "u16" => Form::new("integer 0–65535", "integers 0–65535"),
        "u32" | "u64" | "u128" | "usize" => Form::new("integer ≥ 0", "integers ≥ 0"),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => Form::new("integer", "integers"),
        "f32" | "f64" => Form::new("number", "numbers"),
        _ if expected.starts_with("a duration") => Form {
            duration: true,
            ..Form::new("duration", "durations")
        },
        _ if expected.starts_with("struct ") => {
            let keys = refused_key(accepts, place, Map::new());
            Form::new(
                format!("mapping with keys {keys}"),
                format!("mappings with keys {keys}"),
            )
        }
        _ if expected.starts_with("internally tagged enum") => tagged(accepts, place),
        other => {
            let name = other
                .strip_prefix("a ")
                .or_else(|| other.strip_prefix("an "))
                .unwrap_or(other);
            Form::new(name, format!("{name} values"))
        }
    }
}

/// The keys a struct takes, as serde lists them when refusing an unknown
/// one added to `fields`.
fn refused_key(
    accepts: &dyn Fn(&Json) -> Result<(), String>,
    place: &dyn Fn(Json) -> Json,
    mut fields: Map<String, Json>,
) -> String {
    fields.insert(PROBE_KEY.to_owned(), Json::from(0));
    let names = accepts(&place(Json::Object(fields)))
        .err()
        .map(|error| expected_names(&error))
        .unwrap_or_default();
    names
        .iter()
        .map(|name| code(name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The form of an enum whose variant a key names (`type: console`).
fn tagged(accepts: &dyn Fn(&Json) -> Result<(), String>, place: &dyn Fn(Json) -> Json) -> Form {
    let tag = accepts(&place(Json::Object(Map::new())))
        .err()
        .and_then(|error| quoted(&error).into_iter().next());
    let Some(tag) = tag else {
        return Form::new("mapping", "mappings");
    };
    let named = |variant: &str| Map::from_iter([(tag.clone(), Json::from(variant))]);
    let variants = accepts(&place(Json::Object(named(PROBE_TEXT))))
        .err()
        .map(|error| expected_names(&error))
        .unwrap_or_default();
    let choices: Vec<String> = variants
        .iter()
        .map(|variant| {
            let keys = refused_key(accepts, place, named(variant));
            format!("{} ({keys})", code(&format!("{tag}: {variant}")))
        })
        .collect();
    let choices = either(&choices);
    Form::new(
        format!("mapping with {choices}"),
        format!("mappings, each with {choices}"),
    )
}

/// The names serde quotes after "expected" in `error`: the variants or
/// fields it would have accepted.
fn expected_names(error: &str) -> Vec<String> {
    error
        .split_once("expected")
        .map(|(_, expected)| quoted(expected))
        .unwrap_or_default()
}

/// The texts between backticks in `text`.
fn quoted(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// `a`, `a or b`, `a, b or c`.
fn either(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// A duration given in seconds, the way the files write it.
fn format_duration(seconds: f64) -> String {
    if seconds.fract() == 0.0 && seconds >= 1.0 {
        let whole = seconds as u64;
        if whole % 3600 == 0 {
            format!("{}h", whole / 3600)
        } else if whole % 60 == 0 {
            format!("{}m", whole / 60)
        } else {
            format!("{whole}s")
        }
    } else if seconds == 0.0 {
        "0s".to_owned()
    } else if (seconds * 1000.0).fract() == 0.0 {
        format!("{}ms", seconds * 1000.0)
    } else {
        seconds.to_string()
    }
}

/// `value` as one line of YAML in flow style: `[1, 3]`,
/// `{type: console, level: info}`.
fn flow(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::Null => "~".to_owned(),
        serde_yaml::Value::Bool(value) => value.to_string(),
        serde_yaml::Value::Number(number) => number.to_string(),
        serde_yaml::Value::String(text) if is_plain(text) => text.clone(),
        serde_yaml::Value::String(text) => Json::from(text.as_str()).to_string(),
        serde_yaml::Value::Sequence(items) => format!(
            "[{}]",
            items.iter().map(flow).collect::<Vec<_>>().join(", ")
        ),
        serde_yaml::Value::Mapping(mapping) => format!(
            "{{{}}}",
            mapping
                .iter()
                .map(|(key, value)| format!("{}: {}", flow(key), flow(value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        serde_yaml::Value::Tagged(tagged) => format!("{} {}", tagged.tag, flow(&tagged.value)),
    }
}

/// Whether `text` reads back as itself when written unquoted in a flow.
fn is_plain(text: &str) -> bool {
    !text.is_empty()
        && text.trim() == text
        && !text.contains([',', '[', ']', '{', '}', '#', '"', '\''])
        && !text.starts_with(['-', '?', ':', '&', '*', '!', '|', '>', '%', '@', '`'])
        && !text.contains(": ")
        && !text.ends_with(':')
        && serde_yaml::from_str::<serde_yaml::Value>(text)
            .is_ok_and(|value| value.as_str() == Some(text))
}

/// A Markdown code span.
fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// `text` safe in Markdown. Outside code spans, `<` is escaped so that
/// `<KEY>` is not taken for HTML, and `*` and `_` that could start or end
/// emphasis are escaped too (`_` inside a word, as in `max_size`, cannot).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    let chars: Vec<char> = text.chars().collect();
    for (at, &c) in chars.iter().enumerate() {
        let word = |index: Option<usize>| {
            index
                .and_then(|index| chars.get(index))
                .is_some_and(|c| c.is_alphanumeric())
        };
        match c {
            '`' => in_code = !in_code,
            '<' | '*' if !in_code => out.push('\\'),
            '_' if !in_code => {
                let run_start = chars[..at]
                    .iter()
                    .rposition(|&c| c != '_')
                    .map(|i| i + 1)
                    .unwrap_or(0);
                let run_end = chars[at..]
                    .iter()
                    .position(|&c| c != '_')
                    .map_or(chars.len(), |i| at + i);
                if !(word(run_start.checked_sub(1)) && word(Some(run_end))) {
                    out.push('\\');
                }
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// `text` safe in a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Comment lines as one line of Markdown. Indented lines are examples:
/// YAML ones become one code span in flow style, others a code span each.
fn one_line(comments: &[String]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut example: Vec<&str> = Vec::new();
    for line in comments.iter().chain([&String::new()]) {
        if line.starts_with(char::is_whitespace) {
            example.push(line);
            continue;
        }
        if !example.is_empty() {
            match serde_yaml::from_str::<serde_yaml::Value>(&dedent(&example).join("\n")) {
                Ok(value) if value.is_sequence() || value.is_mapping() => {
                    parts.push(code(&flow(&value)));
                }
                _ => parts.extend(example.iter().map(|line| code(line.trim()))),
            }
            example.clear();
        }
        if !line.trim().is_empty() {
            parts.push(line.trim().to_owned());
        }
    }
    escape(&parts.join(" "))
}

/// `lines` without the indentation they share.
fn dedent<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let indent = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|line| line.get(indent..).unwrap_or("").trim_end())
        .collect()
}

/// The comment at the top of a file as Markdown: paragraphs, and indented
/// lines as blocks of text.
fn header_markdown(lines: &[String]) -> String {
    let mut out = String::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    for line in lines.iter().map(String::as_str).chain([""]) {
        let indented = line.starts_with(char::is_whitespace) && !line.trim().is_empty();
        if !paragraph.is_empty() && (indented || line.trim().is_empty()) {
            out.push_str(&escape(&paragraph.join(" ")));
            out.push_str("\n\n");
            paragraph.clear();
        }
        if !block.is_empty() && !indented {
            out.push_str("```text\n");
            for line in dedent(&block) {
                out.push_str(line);
                out.push('\n');
            }
            out.push_str("```\n\n");
            block.clear();
        }
        if indented {
            block.push(line);
        } else if !line.trim().is_empty() {
            paragraph.push(line.trim());
        }
    }
    out
}

/// What the reference needs of a YAML file's text.
#[derive(Debug, Default)]
struct Scan {
    /// The comment lines before the first key, `""` for blank ones.
    header: Vec<String>,
    /// Every key, in order.
    keys: Vec<ScannedKey>,
    /// Every `${…}` outside comments.
    references: Vec<Reference>,
}

/// A key of a YAML file.
#[derive(Debug, PartialEq)]
struct ScannedKey {
    /// Dotted, with `[N]` for list items: `logging.outputs[0].level`.
    path: String,
    /// The comment lines directly above, without `#` and one space.
    comments: Vec<String>,
    /// The value written on the key's line, without a trailing comment.
    value: String,
}

/// A `${NAME}` or `${NAME:default}` in a YAML file.
#[derive(Debug, PartialEq)]
struct Reference {
    name: String,
    default: Option<String>,
    /// The key of the line it is on.
    path: String,
}

/// One open level while scanning: a key, or an item of a list.
struct Level {
    indent: usize,
    name: String,
    item: bool,
    items: usize,
}

/// Reads the keys, comments and variable references of a block-style YAML
/// text, line by line.
fn scan(text: &str) -> Scan {
    let mut found = Scan::default();
    let mut levels: Vec<Level> = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut in_header = true;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let mut indent = line.len() - trimmed.len();
        if trimmed.is_empty() {
            comments.clear();
            if in_header {
                found.header.push(String::new());
            }
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            let comment = comment.strip_prefix(' ').unwrap_or(comment).trim_end();
            comments.push(comment.to_owned());
            if in_header {
                found.header.push(comment.to_owned());
            }
            continue;
        }
        in_header = false;
        let above = std::mem::take(&mut comments);
        let mut content = strip_comment(trimmed);
        if content == "-" || content.starts_with("- ") {
            while levels.last().is_some_and(|level| {
                level.indent > indent || (level.indent == indent && level.item)
            }) {
                levels.pop();
            }
            let index = levels.last_mut().map_or(0, |parent| {
                parent.items += 1;
                parent.items - 1
            });
            levels.push(Level {
                indent,
                name: format!("[{index}]"),
                item: true,
                items: 0,
            });
            let rest = content[1..].trim_start();
            indent += content.len() - rest.len();
            content = rest;
        }
        let path = match split_key(content) {
            Some((key, value)) => {
                while levels.last().is_some_and(|level| level.indent >= indent) {
                    levels.pop();
                }
                levels.push(Level {
                    indent,
                    name: key.to_owned(),
                    item: false,
                    items: 0,
                });
                let path = level_path(&levels);
                found.keys.push(ScannedKey {
                    path: path.clone(),
                    comments: above,
                    value: value.to_owned(),
                });
                path
            }
            None => level_path(&levels),
        };
        found.references.extend(
            references(content)
                .into_iter()
                .map(|(name, default)| Reference {
                    name,
                    default,
                    path: path.clone(),
                }),
        );
    }
    found
}

/// The dotted path of the open levels.
fn level_path(levels: &[Level]) -> String {
    let mut path = String::new();
    for level in levels {
        if !path.is_empty() && !level.item {
            path.push('.');
        }
        path.push_str(&level.name);
    }
    path
}

/// `key: value` split into the key and the value; `None` when the line
/// holds no simple key.
fn split_key(content: &str) -> Option<(&str, &str)> {
    let end = content.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))?;
    let (key, rest) = content.split_at(end);
    let value = rest.strip_prefix(':')?;
    (!key.is_empty() && (value.is_empty() || value.starts_with(' '))).then(|| (key, value.trim()))
}

/// `content` without a trailing comment: a `#` after a blank, outside quotes.
fn strip_comment(content: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    for (at, c) in content.char_indices() {
        match quote {
            Some('"') if c == '\\' => {}
            Some(open) if c == open && !(open == '"' && previous == '\\') => quote = None,
            Some(_) => {}
            None if (c == '"' || c == '\'') && " [{,:".contains(previous) => quote = Some(c),
            None if c == '#' && previous.is_whitespace() => return content[..at].trim_end(),
            None => {}
        }
        previous = c;
    }
    content.trim_end()
}

/// The `${NAME}` and `${NAME:default}` of `text`; `$${` is not one.
fn references(text: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let from = &rest[at..];
        if let Some(after) = from.strip_prefix("$${") {
            rest = after;
        } else if let Some(body) = from.strip_prefix("${") {
            let Some(end) = body.find('}') else { break };
            let (name, default) = match body[..end].split_once(':') {
                Some((name, default)) => (name, Some(default.to_owned())),
                None => (&body[..end], None),
            };
            found.push((name.to_owned(), default));
            rest = &body[end + 1..];
        } else {
            rest = &from[1..];
        }
    }
    found
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
        let title = format!("{}/{}.yaml", document.kind, document.file);
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
            "\n## `{}/{}.yaml`\n\nLoaded into `{type_name}` of `{krate}`.\n\n{}",
            document.kind,
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

/// The anchor GitHub gives a heading.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
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
    fn every_service_of_the_registry_has_its_file_documented() {
        for name in crate::services::registry().names() {
            assert!(
                KNOWN_FILES
                    .iter()
                    .any(|known| known.kind == "services" && known.file == name),
                "no reference for services/{name}.yaml"
            );
        }
    }

    #[test]
    fn the_form_of_each_key_is_learnt_from_its_struct() {
        let reference = shipped();
        for row in [
            "| `database.port` | integer 0–65535 | `56432` | `${DB_PORT:56432}` | `BIGBROTR_DATABASE__PORT` |",
            "| `database.password` | string | `\"\"` | `\"${DB_PASSWORD:bigbrotr}\"` | `BIGBROTR_DATABASE__PASSWORD` |",
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
        assert!(reference.contains("| `MONITOR_PRIVATE_KEY` | none: a new key at each start |"));
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
    fn missing_keys_keys_without_comments_and_unknown_files_are_all_reported() {
        let (_root, implementation) = implementation_with(&[
            (
                "core/brotr.yaml",
                "brotr:\n  # Rows per statement.\n  batch_size: 10\n  insert_timeout: 5s\n  \
                 # Cleanups.\n  cleanup_interval: 1h\n  # Events.\n  enable_event_validation: true\n  \
                 # Relays.\n  enable_relay_validation: true\n",
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
             core/brotr.yaml: brotr.insert_timeout: no comment directly above the key\n  \
             core/brotr.yaml: brotr.verified_signatures: in `BrotrFile` but not in the file"
        );
    }

    #[test]
    fn a_complete_file_is_documented_with_its_values_as_written() {
        let (_root, implementation) = implementation_with(&[(
            "core/runtime.yaml",
            "# The runtime.\n#\n# Keys:\n#   a: <one>\n#   b: two\nruntime:\n  # Grace | pipe.\n  shutdown_grace: ${GRACE:1m}\n  \
             # Pool grace.\n  pool_close_grace: 5\n  http:\n    # Serve <it>.\n    enabled: false\n    \
             # Where, e.g.\n    #   - listen: 127.0.0.1:1\n    listen: 127.0.0.1:9109  # the default\n",
        )]);
        let reference = reference(&implementation).unwrap();
        assert!(reference
            .contains("Regenerate with `cargo run -p bigbrotr -- -i mine config reference`."));
        assert!(reference.contains(
            "Loaded into `RuntimeFile` of `bigbrotr_service_runtime`.\n\nThe runtime.\n\nKeys:\n\n```text\na: <one>\nb: two\n```\n\n| key |"
        ), "{reference}");
        for row in [
            "| `runtime.shutdown_grace` | duration | `30s` | `${GRACE:1m}` | `BIGBROTR_RUNTIME__SHUTDOWN_GRACE` | Grace \\| pipe. |",
            "| `runtime.pool_close_grace` | duration | `5s` | same | `BIGBROTR_RUNTIME__POOL_CLOSE_GRACE` | Pool grace. |",
            "| `runtime.http.enabled` | boolean | `true` | `false` | `BIGBROTR_RUNTIME__HTTP__ENABLED` | Serve \\<it>. |",
            "| `runtime.http.listen` | socket address | `127.0.0.1:9109` | same | `BIGBROTR_RUNTIME__HTTP__LISTEN` | Where, e.g. `[{listen: 127.0.0.1:1}]` |",
            "| `GRACE` | `1m` | `runtime.shutdown_grace` of `core/runtime.yaml` |",
        ] {
            assert!(reference.contains(row), "no row {row} in\n{reference}");
        }
    }

    #[test]
    fn the_scan_reads_keys_comments_values_and_variables() {
        let text = "# Top.\n#\n# More.\nsection:\n  # About a.\n  # Second line.\n  a: ${A:1}  # trailing\n\n  \
                    b: \"x # y\"\n  list:\n    - type: console\n      # The level.\n      level: ${LEVEL}\n    \
                    - type: file\n  c: $${NOT} and ${B:x:y}\n";
        let scan = scan(text);
        assert_eq!(scan.header, ["Top.", "", "More."]);
        let keys: Vec<(&str, &[String], &str)> = scan
            .keys
            .iter()
            .map(|key| {
                (
                    key.path.as_str(),
                    key.comments.as_slice(),
                    key.value.as_str(),
                )
            })
            .collect();
        let lines = |lines: &[&str]| {
            lines
                .iter()
                .map(|line| (*line).to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys,
            [
                ("section", lines(&["Top.", "", "More."]).as_slice(), ""),
                (
                    "section.a",
                    lines(&["About a.", "Second line."]).as_slice(),
                    "${A:1}"
                ),
                ("section.b", &[], "\"x # y\""),
                ("section.list", &[], ""),
                ("section.list[0].type", &[], "console"),
                (
                    "section.list[0].level",
                    lines(&["The level."]).as_slice(),
                    "${LEVEL}"
                ),
                ("section.list[1].type", &[], "file"),
                ("section.c", &[], "$${NOT} and ${B:x:y}"),
            ]
        );
        assert_eq!(
            scan.references,
            [
                Reference {
                    name: "A".into(),
                    default: Some("1".into()),
                    path: "section.a".into()
                },
                Reference {
                    name: "LEVEL".into(),
                    default: None,
                    path: "section.list[0].level".into()
                },
                Reference {
                    name: "B".into(),
                    default: Some("x:y".into()),
                    path: "section.c".into()
                },
            ]
        );
    }

    #[test]
    fn durations_are_written_with_the_largest_whole_unit() {
        for (seconds, text) in [
            (30.0, "30s"),
            (90.0, "90s"),
            (300.0, "5m"),
            (3600.0, "1h"),
            (0.5, "500ms"),
            (0.0, "0s"),
            (0.0001, "0.0001"),
        ] {
            assert_eq!(format_duration(seconds), text);
        }
    }

    #[test]
    fn values_are_quoted_only_when_yaml_would_misread_them() {
        for (value, text) in [
            ("info", "info"),
            ("''", "\"\""),
            ("'true'", "\"true\""),
            ("'1'", "\"1\""),
            ("'${LEVEL:info}'", "\"${LEVEL:info}\""),
            ("'a: b'", "\"a: b\""),
            ("[1, x, ~, 2.5]", "[1, x, ~, 2.5]"),
            ("{b: 1, a: [y]}", "{b: 1, a: [y]}"),
            ("!Sized 4", "!Sized 4"),
        ] {
            let value: serde_yaml::Value = serde_yaml::from_str(value).unwrap();
            assert_eq!(flow(&value), text);
        }
    }
}
