//! Loading a configuration file: expansion, layering and validation.
//!
//! [`load_file`] reads a YAML file, expands its variable references (see
//! [`expand`](crate::expand())) and builds one figment chain:
//!
//! 1. the defaults of the file struct (`T::default()`),
//! 2. the expanded YAML,
//! 3. environment overrides `BIGBROTR_<SECTION>__<KEY>` taken from the
//!    [`Env`] snapshot: `BIGBROTR_POOL__MAX_SIZE=50` sets `pool.max_size`.
//!    Only sections the file struct has are read, so one variable does not
//!    break the files that lack its section. A value is kept as a string
//!    where the default is a string; elsewhere `50` is a number, `true` a
//!    boolean and `[a, b]` a list. A list is replaced as a whole, not
//!    element by element.
//!
//! A key written without a value (`socks5_proxy:` or `~`) takes its
//! default. Then the struct is extracted and [`Validate`]d. Unknown keys,
//! values of the wrong type and failed checks are all collected and
//! returned together as [`Error::Invalid`], each naming its key path.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use figment::error::Kind;
use figment::value::{Dict, Empty, Map, Tag, Value};
use figment::{Figment, Metadata, Profile, Provider};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::env::Env;
use crate::error::{Error, Result};
use crate::expand::expand;
use crate::validate::{Problem, Problems, Validate};

/// Prefix of the environment variables that override configuration keys.
pub(crate) const ENV_PREFIX: &str = "BIGBROTR_";

/// Separator between the section and the keys in an override variable name.
pub(crate) const ENV_SEPARATOR: &str = "__";

/// A type that can be loaded from a configuration file: the whole file,
/// made of sections.
///
/// Every type that is `Serialize + DeserializeOwned + Default + Validate +
/// JsonSchema` is one; the struct should use
/// `#[serde(deny_unknown_fields, default)]` so that typos are reported and
/// missing keys take their defaults. Its JSON Schema, doc comments
/// included, is what the configuration reference is generated from.
pub trait ConfigFile: Serialize + DeserializeOwned + Default + Validate + JsonSchema {}

impl<T: Serialize + DeserializeOwned + Default + Validate + JsonSchema> ConfigFile for T {}

/// Loads the configuration file at `path` into `T`: read, expand with
/// `env`, parse, layer over `T::default()` with the overrides of `env`,
/// extract and validate.
pub fn load_file<T: ConfigFile>(path: &Path, env: &Env) -> Result<T> {
    let text = read(path)?;
    load_str(&text, path, env)
}

/// Like [`load_file`] for text already read; `file` only names the text in
/// errors.
pub fn load_str<T: ConfigFile>(text: &str, file: &Path, env: &Env) -> Result<T> {
    let yaml = parse_yaml(text, file, env)?;
    let defaults = ExpansionDefaults::find(text, file, env);
    load_value(yaml, file, env, defaults)
}

/// The keys of a file whose values only the default of a `${VAR:default}`
/// reference gave: the variable was not set, and no
/// `BIGBROTR_<SECTION>__<KEY>` override replaced the value.
///
/// Found by expanding the text a second time with every default that is
/// used replaced by a marker, and noting the keys whose values then hold
/// it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpansionDefaults {
    paths: std::collections::BTreeSet<String>,
}

/// Stands for a default in the second expansion; no configuration value
/// holds it.
const DEFAULT_MARKER: &str = "\u{E000}bigbrotr-expansion-default\u{E000}";

impl ExpansionDefaults {
    /// No key took its value from a default.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// These dotted key paths took their values from defaults.
    pub fn of<I: IntoIterator<Item = S>, S: Into<String>>(paths: I) -> Self {
        Self {
            paths: paths.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether the value at the dotted `path` (`database.password`) came
    /// from the default of a reference, in whole or in part.
    #[must_use]
    pub fn gave(&self, path: &str) -> bool {
        self.paths.contains(path)
    }

    fn find(text: &str, file: &Path, env: &Env) -> Self {
        let mut found = Self::default();
        let marked = crate::expand::expand_with(text, env, file, |_| DEFAULT_MARKER.to_owned());
        // A default that gives YAML structure rather than a value may not
        // parse once replaced: such a file simply has no marked keys.
        if let Some(yaml) = marked
            .ok()
            .and_then(|marked| serde_norway::from_str::<serde_norway::Value>(&marked).ok())
        {
            found.collect(&yaml, &mut Vec::new());
        }
        found
    }

    fn collect(&mut self, value: &serde_norway::Value, path: &mut Vec<String>) {
        match value {
            serde_norway::Value::String(text) if text.contains(DEFAULT_MARKER) => {
                self.paths.insert(display_path(path));
            }
            serde_norway::Value::Mapping(map) => {
                for (key, value) in map {
                    if let Some(key) = key.as_str() {
                        path.push(key.to_owned());
                        self.collect(value, path);
                        path.pop();
                    }
                }
            }
            serde_norway::Value::Sequence(items) => {
                for (index, item) in items.iter().enumerate() {
                    path.push(index.to_string());
                    self.collect(item, path);
                    path.pop();
                }
            }
            serde_norway::Value::Tagged(tagged) => self.collect(&tagged.value, path),
            _ => {}
        }
    }

    /// Forgets the keys that `overrides` sets.
    fn without_overrides(mut self, overrides: &Dict) -> Self {
        self.paths.retain(|path| {
            let keys: Vec<String> = path.split('.').map(str::to_owned).collect();
            lookup(overrides, &keys).is_none()
        });
        self
    }
}

/// Reads the file at `path`, expands it with `env` and parses it as YAML,
/// without any typed struct: for files whose shape is only known later.
pub fn load_yaml(path: &Path, env: &Env) -> Result<serde_norway::Value> {
    let text = read(path)?;
    parse_yaml(&text, path, env)
}

/// Reads a whole file as UTF-8.
fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| match source.kind() {
        ErrorKind::NotFound => Error::FileNotFound {
            path: path.to_path_buf(),
        },
        _ => Error::Read {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Expands `text` and parses it as YAML.
fn parse_yaml(text: &str, file: &Path, env: &Env) -> Result<serde_norway::Value> {
    let expanded = expand(text, env, file)?;
    serde_norway::from_str(&expanded).map_err(|source| {
        let location = source.location();
        Error::Parse {
            file: file.to_path_buf(),
            line: location.as_ref().map(serde_norway::Location::line),
            column: location.as_ref().map(serde_norway::Location::column),
            source,
        }
    })
}

/// Layers `yaml` over the defaults of `T`, applies the overrides of `env`,
/// extracts and validates.
fn load_value<T: ConfigFile>(
    yaml: serde_norway::Value,
    file: &Path,
    env: &Env,
    expansion_defaults: ExpansionDefaults,
) -> Result<T> {
    let invalid = |problems: Vec<Problem>| Error::Invalid {
        file: file.to_path_buf(),
        problems,
    };
    let mut problems = Vec::new();
    let mut from_file = match yaml {
        serde_norway::Value::Null => Dict::new(),
        serde_norway::Value::Mapping(map) => mapping_to_dict(map, &mut Vec::new(), &mut problems),
        other => {
            return Err(invalid(vec![Problem::new(
                "",
                format!(
                    "the file must be a mapping of sections such as `database:`, found {}",
                    yaml_kind(&other)
                ),
            )]))
        }
    };
    let defaults = match Value::serialize(T::default()) {
        Ok(Value::Dict(_, dict)) => dict,
        Ok(_) => Dict::new(),
        Err(error) => {
            return Err(invalid(vec![Problem::new(
                "",
                format!("the built-in defaults cannot be serialized: {error}"),
            )]))
        }
    };
    let mut from_env = env_overrides(env, &defaults);
    let expansion_defaults = expansion_defaults.without_overrides(&from_env);

    let extracted = loop {
        let figment = Figment::new()
            .merge(Layer::defaults(defaults.clone()))
            .merge(Layer::file(file, from_file.clone()))
            .merge(Layer::env(from_env.clone()));
        match figment.extract::<T>() {
            Ok(value) => break Some(value),
            Err(errors) => {
                let mut progress = false;
                for error in errors {
                    let keys = error_keys(&error);
                    problems.push(Problem::new(
                        display_path(&keys),
                        error_message(&error, &keys),
                    ));
                    // Dropping the offending key lets its default through, so
                    // the next round reports the next problem.
                    let removed_from_file = remove_path(&mut from_file, &keys);
                    let removed_from_env = remove_path(&mut from_env, &keys);
                    progress |= removed_from_file || removed_from_env;
                }
                if !progress {
                    break None;
                }
            }
        }
    };

    let Some(value) = extracted else {
        return Err(invalid(dedup(problems)));
    };
    let mut checks = Problems::new();
    value.validate(&mut checks);
    value.validate_sources(&expansion_defaults, &mut checks);
    let reported: Vec<String> = problems
        .iter()
        .map(|problem| problem.path.clone())
        .collect();
    // A value replaced by its default after a type error would only
    // produce confusing follow-up complaints about the same key.
    problems.extend(
        checks
            .into_vec()
            .into_iter()
            .filter(|check| !reported.iter().any(|path| overlaps(path, &check.path))),
    );
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(invalid(dedup(problems)))
    }
}

/// `problems` without repeats, in their first order.
fn dedup(problems: Vec<Problem>) -> Vec<Problem> {
    let mut seen = std::collections::HashSet::new();
    problems
        .into_iter()
        .filter(|problem| seen.insert(problem.clone()))
        .collect()
}

/// Whether one of two dotted paths is the other or lies inside it.
fn overlaps(a: &str, b: &str) -> bool {
    let inside = |outer: &str, inner: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    };
    inside(a, b) || inside(b, a)
}

/// The key path of a figment error; for an unknown field, the path of the
/// unknown key itself.
fn error_keys(error: &figment::Error) -> Vec<String> {
    let mut keys = error.path.clone();
    if let Kind::UnknownField(name, _) = &error.kind {
        if keys.last() != Some(name) {
            keys.push(name.clone());
        }
    }
    keys
}

/// A message for a figment error, naming the override variable when the
/// value came from one.
fn error_message(error: &figment::Error, keys: &[String]) -> String {
    let mut message = match &error.kind {
        Kind::UnknownField(_, []) => "unknown key".to_owned(),
        Kind::UnknownField(_, expected) => format!(
            "unknown key; expected one of {}",
            expected
                .iter()
                .map(|key| format!("`{key}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    };
    if let Some(metadata) = &error.metadata {
        if metadata.name == ENV_LAYER {
            let profile = error.profile.clone().unwrap_or(Profile::Default);
            message.push_str(&format!(
                " (from environment variable {})",
                metadata.interpolate(&profile, keys)
            ));
        } else if metadata.name == DEFAULTS_LAYER {
            message.push_str(" (in the built-in defaults)");
        }
    }
    message
}

/// Dotted display of a key path, with `[N]` for sequence indexes:
/// `logging.outputs[0].level`.
fn display_path(keys: &[String]) -> String {
    let mut path = String::new();
    for key in keys {
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{key}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
        }
    }
    path
}

/// Removes the value at `keys` from `dict`; whether something was removed.
/// Sequence elements themselves are never removed, only keys inside them,
/// so that the indexes of later problems stay right.
fn remove_path(dict: &mut Dict, keys: &[String]) -> bool {
    match keys {
        [] => false,
        [last] => dict.remove(last).is_some(),
        [first, rest @ ..] => dict
            .get_mut(first)
            .is_some_and(|value| remove_in_value(value, rest)),
    }
}

/// Removes the value at the non-empty `keys` inside `value`.
fn remove_in_value(value: &mut Value, keys: &[String]) -> bool {
    match value {
        Value::Dict(_, dict) => remove_path(dict, keys),
        Value::Array(_, items) => match keys {
            [index, rest @ ..] if !rest.is_empty() => index
                .parse::<usize>()
                .ok()
                .and_then(|index| items.get_mut(index))
                .is_some_and(|item| remove_in_value(item, rest)),
            _ => false,
        },
        _ => false,
    }
}

/// The overrides of `env` for the sections that `defaults` has.
fn env_overrides(env: &Env, defaults: &Dict) -> Dict {
    let mut overrides = Dict::new();
    for (name, raw) in env.iter() {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let keys: Vec<String> = rest
            .split(ENV_SEPARATOR)
            .map(str::to_ascii_lowercase)
            .collect();
        if keys.len() < 2 || keys.iter().any(String::is_empty) || !defaults.contains_key(&keys[0]) {
            continue;
        }
        let value = match lookup(defaults, &keys) {
            Some(Value::String(..)) => Value::from(raw.to_owned()),
            _ => typed(raw),
        };
        insert_path(&mut overrides, &keys, value);
    }
    overrides
}

/// `raw` read the way figment reads environment variables: `50` is a
/// number, `true` a boolean, `[a, b]` a list, anything else a string.
fn typed(raw: &str) -> Value {
    let Ok(value) = raw.parse::<Value>();
    value
}

/// The value at `keys` in `dict`, walking nested dictionaries.
fn lookup<'a>(dict: &'a Dict, keys: &[String]) -> Option<&'a Value> {
    let (first, rest) = keys.split_first()?;
    let value = dict.get(first)?;
    match (rest.is_empty(), value) {
        (true, value) => Some(value),
        (false, Value::Dict(_, inner)) => lookup(inner, rest),
        (false, _) => None,
    }
}

/// Sets the value at the non-empty `keys` in `dict`, creating (or
/// replacing non-dictionary values with) dictionaries on the way.
fn insert_path(dict: &mut Dict, keys: &[String], value: Value) {
    match keys {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// Converts a YAML mapping, leaving out keys without a value so that they
/// take their defaults.
fn mapping_to_dict(
    map: serde_norway::Mapping,
    path: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) -> Dict {
    let mut dict = Dict::new();
    for (key, value) in map {
        let key = match key {
            serde_norway::Value::String(key) => key,
            serde_norway::Value::Number(key) => key.to_string(),
            serde_norway::Value::Bool(key) => key.to_string(),
            other => {
                problems.push(Problem::new(
                    display_path(path),
                    format!("a key must be a string, found {}", yaml_kind(&other)),
                ));
                continue;
            }
        };
        if value.is_null() {
            continue;
        }
        path.push(key.clone());
        let value = yaml_to_value(value, path, problems);
        path.pop();
        dict.insert(key, value);
    }
    dict
}

/// Converts a YAML value; a tagged value `!Name value` becomes the map
/// `{Name: value}`, the way serde reads an enum variant.
fn yaml_to_value(
    value: serde_norway::Value,
    path: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) -> Value {
    match value {
        serde_norway::Value::Null => Value::Empty(Tag::Default, Empty::None),
        serde_norway::Value::Bool(b) => Value::from(b),
        serde_norway::Value::Number(n) => {
            if let Some(n) = n.as_u64() {
                Value::from(n)
            } else if let Some(n) = n.as_i64() {
                Value::from(n)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_norway::Value::String(s) => Value::from(s),
        serde_norway::Value::Sequence(items) => Value::from(
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| {
                    path.push(index.to_string());
                    let item = yaml_to_value(item, path, problems);
                    path.pop();
                    item
                })
                .collect::<Vec<_>>(),
        ),
        serde_norway::Value::Mapping(map) => Value::from(mapping_to_dict(map, path, problems)),
        serde_norway::Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.strip_prefix('!').unwrap_or(&tag).to_owned();
            path.push(name.clone());
            let inner = yaml_to_value(tagged.value, path, problems);
            path.pop();
            let mut dict = Dict::new();
            dict.insert(name, inner);
            Value::from(dict)
        }
    }
}

/// What kind of YAML value `value` is, for messages.
fn yaml_kind(value: &serde_norway::Value) -> &'static str {
    match value {
        serde_norway::Value::Null => "nothing",
        serde_norway::Value::Bool(_) => "a boolean",
        serde_norway::Value::Number(_) => "a number",
        serde_norway::Value::String(_) => "a string",
        serde_norway::Value::Sequence(_) => "a list",
        serde_norway::Value::Mapping(_) => "a mapping",
        serde_norway::Value::Tagged(_) => "a tagged value",
    }
}

/// Name of the layer holding the defaults of the file struct.
const DEFAULTS_LAYER: &str = "built-in defaults";

/// Name of the layer holding the environment overrides.
const ENV_LAYER: &str = "environment overrides";

/// One layer of the figment chain.
struct Layer {
    metadata: Metadata,
    data: Dict,
}

impl Layer {
    fn defaults(data: Dict) -> Self {
        Self {
            metadata: Metadata::named(DEFAULTS_LAYER),
            data,
        }
    }

    fn file(file: &Path, data: Dict) -> Self {
        Self {
            metadata: Metadata::from(file.display().to_string(), file),
            data,
        }
    }

    fn env(data: Dict) -> Self {
        Self {
            metadata: Metadata::named(ENV_LAYER).interpolater(|_: &Profile, keys: &[&str]| {
                let keys: Vec<String> = keys.iter().map(|key| key.to_ascii_uppercase()).collect();
                format!("{ENV_PREFIX}{}", keys.join(ENV_SEPARATOR))
            }),
            data,
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Ok(Profile::Default.collect(self.data.clone()))
    }
}

#[cfg(test)]
mod tests;
