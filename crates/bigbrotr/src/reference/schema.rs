//! One file's rows of the reference, from the JSON Schema of its struct
//! (form, default, description) walked together with the file as written
//! (order, values as written) and as loaded (which values differ).

use serde_json::{Map, Value as Json};

use super::markdown::{code, doc_line, either};
use super::written::{flow_json, format_duration, Written};
use super::{Row, Variable};

/// The extension of a field naming an environment variable the program
/// reads: `{"read_for": "…", "unset": "…"}`.
const NAMES_VARIABLE: &str = "x-names-variable";

/// Walks the schema of a file struct and the file together.
pub(super) struct Walker<'a> {
    /// The schema's `$defs`.
    defs: &'a Map<String, Json>,
    /// The struct's name, for problems.
    type_name: &'a str,
    /// The file, for the variables it names: `services/monitor.yaml`.
    file: &'a str,
    /// The defaults of the whole file.
    defaults: Json,
    /// The file as loaded without any variable set.
    loaded: &'a Json,
    /// What was found.
    pub(super) rows: Vec<Row>,
    /// The variables named by keys (rather than through `${…}`).
    pub(super) variables: Vec<Variable>,
    /// Keys on one side only, and keys without a description.
    pub(super) problems: Vec<String>,
}

impl<'a> Walker<'a> {
    /// A walker of the file `file` whose struct has the JSON Schema
    /// `schema` and which loads to `loaded`.
    pub(super) fn new(
        schema: &'a Json,
        type_name: &'a str,
        file: &'a str,
        loaded: &'a Json,
    ) -> Self {
        static NO_DEFS: std::sync::OnceLock<Map<String, Json>> = std::sync::OnceLock::new();
        let defs = schema
            .get("$defs")
            .and_then(Json::as_object)
            .unwrap_or_else(|| NO_DEFS.get_or_init(Map::new));
        // The default of each section is on the property that holds it.
        let defaults = Json::Object(
            properties(schema)
                .map(|(key, property)| {
                    (
                        key.clone(),
                        property.get("default").cloned().unwrap_or(Json::Null),
                    )
                })
                .collect(),
        );
        Self {
            defs,
            type_name,
            file,
            defaults,
            loaded,
            rows: Vec::new(),
            variables: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Documents the section `object` at `path` (the file itself when
    /// empty), written as `written`: the keys of the file in their order,
    /// then the keys of the struct the file lacks.
    pub(super) fn walk(&mut self, path: &[String], object: &Json, written: Option<&Written>) {
        let fields: Map<String, Json> = properties(object)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let entries = written.and_then(Written::as_map).unwrap_or_default();
        for (key, value) in entries {
            let child = child(path, key);
            match fields.get(key) {
                None => self.problems.push(format!(
                    "{}: in the file but not in `{}`",
                    dotted(&child),
                    self.type_name
                )),
                Some(field) => match self.section(field) {
                    Some(section) => self.walk(&child, &section, Some(value)),
                    None => self.leaf(&child, field, value),
                },
            }
        }
        for (key, field) in &fields {
            if entries.iter().any(|(written, _)| written == key) {
                continue;
            }
            let child = child(path, key);
            match self.section(field) {
                Some(section) => self.walk(&child, &section, None),
                None => self.problems.push(format!(
                    "{}: in `{}` but not in the file",
                    dotted(&child),
                    self.type_name
                )),
            }
        }
    }

    /// The schema of `field` when it is a section: a struct that refuses
    /// unknown keys, rather than a map of any keys or a value.
    fn section(&self, field: &Json) -> Option<Json> {
        let resolved = self.resolve(field);
        let is_section = resolved.get("type") == Some(&Json::from("object"))
            && resolved.get("additionalProperties") == Some(&Json::Bool(false))
            && properties(resolved).next().is_some();
        is_section.then(|| resolved.clone())
    }

    /// Documents the key at `path`, whose schema is `field`, written as
    /// `written`.
    fn leaf(&mut self, path: &[String], field: &Json, written: &Written) {
        let dotted = dotted(path);
        let form = self.form(field);
        let description = field
            .get("description")
            .or_else(|| self.resolve(field).get("description"))
            .and_then(Json::as_str)
            .map(doc_line)
            .unwrap_or_default();
        if description.is_empty() {
            self.problems
                .push(format!("{dotted}: no doc comment on its field"));
        }
        let default = lookup(&self.defaults, path).cloned().unwrap_or(Json::Null);
        let written = written.flow();
        let differs = lookup(self.loaded, path) != Some(&default);
        let shipped = if differs || written.contains("${") {
            code(&written)
        } else {
            "same".to_owned()
        };
        if let Some(names) = field.get(NAMES_VARIABLE) {
            let text = |key: &str| names.get(key).and_then(Json::as_str).unwrap_or_default();
            let name = lookup(self.loaded, path)
                .and_then(Json::as_str)
                .unwrap_or_default();
            self.variables.push(Variable {
                name: code(name),
                default: format!("none: {}", text("unset")),
                read_for: format!(
                    "{}, named by {} of {}",
                    text("read_for"),
                    code(&dotted),
                    code(self.file)
                ),
            });
        }
        let default = match &default {
            Json::Null => "none".to_owned(),
            Json::Number(seconds) if form.duration => code(
                &seconds
                    .as_f64()
                    .map_or_else(|| seconds.to_string(), format_duration),
            ),
            other => code(&flow_json(other)),
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

    /// `schema` with its `$ref` followed.
    fn resolve<'s>(&'s self, schema: &'s Json) -> &'s Json {
        let target = schema
            .get("$ref")
            .and_then(Json::as_str)
            .and_then(|reference| reference.strip_prefix("#/$defs/"))
            .and_then(|name| self.defs.get(name));
        match target {
            Some(target) => self.resolve(target),
            None => schema,
        }
    }

    /// What values `schema` takes, in words.
    fn form(&self, schema: &Json) -> Form {
        let schema = self.resolve(schema);
        if let Some(inner) = self.nullable(schema) {
            let inner = self.form(&inner);
            return Form {
                one: format!("optional {}", inner.one),
                many: format!("optional {}", inner.many),
                duration: inner.duration,
            };
        }
        if schema.get("format") == Some(&Json::from("duration")) {
            return Form {
                duration: true,
                ..Form::new("duration", "durations")
            };
        }
        if let Some(variants) = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Json::as_array)
        {
            return self.variants(variants);
        }
        if let Some(values) = schema.get("enum").and_then(Json::as_array) {
            let choices = either(
                &values
                    .iter()
                    .map(|v| code(&flow_json(v)))
                    .collect::<Vec<_>>(),
            );
            return Form::new(choices.clone(), choices);
        }
        let format = schema.get("format").and_then(Json::as_str).unwrap_or("");
        match schema.get("type").and_then(Json::as_str).unwrap_or("") {
            "string" if format == "socket-address" => {
                Form::new("socket address", "socket addresses")
            }
            "string" => Form::new("string", "strings"),
            "boolean" => Form::new("boolean", "booleans"),
            "number" => Form::new("number", "numbers"),
            "integer" => match format {
                "uint8" => Form::new("integer 0–255", "integers 0–255"),
                "uint16" => Form::new("integer 0–65535", "integers 0–65535"),
                _ if format.starts_with("uint") => Form::new("integer ≥ 0", "integers ≥ 0"),
                _ => Form::new("integer", "integers"),
            },
            "array" => {
                let item = self.form(schema.get("items").unwrap_or(&Json::Null));
                Form::new(
                    format!("list of {}", item.many),
                    format!("lists of {}", item.many),
                )
            }
            "object" => match schema.get("additionalProperties") {
                Some(value @ Json::Object(_)) => {
                    let value = self.form(value);
                    Form::new(
                        format!("map of {}", value.many),
                        format!("maps of {}", value.many),
                    )
                }
                _ => {
                    let keys = properties(schema)
                        .map(|(key, _)| code(key))
                        .collect::<Vec<_>>()
                        .join(", ");
                    Form::new(
                        format!("mapping with keys {keys}"),
                        format!("mappings with keys {keys}"),
                    )
                }
            },
            _ => Form::new("value", "values"),
        }
    }

    /// The schema `schema` allows besides `null`, when it allows `null`.
    fn nullable(&self, schema: &Json) -> Option<Json> {
        if let Some(types) = schema.get("type").and_then(Json::as_array) {
            let others: Vec<&Json> = types.iter().filter(|t| *t != "null").collect();
            if others.len() == types.len() {
                return None;
            }
            let mut inner = schema.clone();
            if let (Some(object), [one]) = (inner.as_object_mut(), others.as_slice()) {
                object.insert("type".to_owned(), (*one).clone());
            }
            return Some(inner);
        }
        let variants = schema.get("anyOf").and_then(Json::as_array)?;
        let is_null =
            |variant: &Json| self.resolve(variant).get("type") == Some(&Json::from("null"));
        match variants.as_slice() {
            [a, b] if is_null(b) => Some(a.clone()),
            [a, b] if is_null(a) => Some(b.clone()),
            _ => None,
        }
    }

    /// The form of a value that is one of `variants`: names (an enum of
    /// unit variants), or mappings told apart by a tag key (`type: console`).
    fn variants(&self, variants: &[Json]) -> Form {
        let variants: Vec<&Json> = variants.iter().map(|v| self.resolve(v)).collect();
        let names: Option<Vec<String>> = variants
            .iter()
            .map(|variant| variant.get("const").map(|name| code(&flow_json(name))))
            .collect();
        if let Some(names) = names {
            let choices = either(&names);
            return Form::new(choices.clone(), choices);
        }
        let tag = variants.first().and_then(|first| {
            properties(first)
                .find(|(key, _)| {
                    variants.iter().all(|variant| {
                        variant
                            .get("properties")
                            .and_then(|properties| properties.get(key.as_str()))
                            .is_some_and(|property| property.get("const").is_some())
                    })
                })
                .map(|(key, _)| key.clone())
        });
        let Some(tag) = tag else {
            return Form::new("mapping", "mappings");
        };
        let choices: Vec<String> = variants
            .iter()
            .map(|variant| {
                let name = variant
                    .get("properties")
                    .and_then(|properties| properties.get(&tag))
                    .and_then(|property| property.get("const"))
                    .map(flow_json)
                    .unwrap_or_default();
                let keys = properties(variant)
                    .filter(|(key, _)| **key != tag)
                    .map(|(key, _)| code(key))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{} ({keys})", code(&format!("{tag}: {name}")))
            })
            .collect();
        let choices = either(&choices);
        Form::new(
            format!("mapping with {choices}"),
            format!("mappings, each with {choices}"),
        )
    }
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

/// The properties of an object schema, in the order the struct declares
/// them.
fn properties(schema: &Json) -> impl Iterator<Item = (&String, &Json)> {
    schema
        .get("properties")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
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
