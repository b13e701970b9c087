//! A configuration file as written: its keys in order and each value in the
//! form it is written in (`"${DB_PASSWORD:x}"` keeps its quotes), read from
//! the events of a YAML parser rather than from the loaded values, which no
//! longer know how they were written.

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::Value as Json;

/// A YAML node as written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Written {
    /// A scalar: its value, and how it is written.
    Scalar {
        /// The value, quotes and escapes removed.
        value: String,
        /// The value as written: `info`, `"a # b"`.
        shown: String,
    },
    /// A sequence.
    List(Vec<Written>),
    /// A mapping, keys in order.
    Map(Vec<(String, Written)>),
}

impl Written {
    /// Parses the first document of `text`; the parser's complaint when it
    /// is not YAML.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let mut events = Parser::new_from_str(text).map(|event| {
            event
                .map(|(event, _span)| event)
                .map_err(|error| error.to_string())
        });
        loop {
            match events.next() {
                None | Some(Ok(Event::StreamEnd)) => return Ok(Self::Map(Vec::new())),
                Some(Ok(Event::StreamStart | Event::DocumentStart(_) | Event::Nothing)) => {}
                Some(Ok(event)) => return node(event, &mut events),
                Some(Err(error)) => return Err(error),
            }
        }
    }

    /// The entries of a mapping; `None` for other nodes.
    pub(super) fn as_map(&self) -> Option<&[(String, Written)]> {
        match self {
            Self::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The node in one line of YAML flow style: `[1, 3]`,
    /// `{type: console, level: info}`.
    pub(super) fn flow(&self) -> String {
        match self {
            Self::Scalar { shown, .. } => shown.clone(),
            Self::List(items) => format!(
                "[{}]",
                items.iter().map(Self::inner).collect::<Vec<_>>().join(", ")
            ),
            Self::Map(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(key, value)| format!("{key}: {}", value.inner()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The node inside a flow collection, where a plain scalar holding
    /// `,`, brackets, braces, `#` or `: ` would be misread: such a scalar is
    /// quoted.
    fn inner(&self) -> String {
        match self {
            Self::Scalar { value, shown }
                if *shown == *value
                    && (value.contains([',', '[', ']', '{', '}', '#']) || value.contains(": ")) =>
            {
                Json::from(value.as_str()).to_string()
            }
            other => other.flow(),
        }
    }

    /// Calls `visit` with the dotted path (`[N]` for list items, as in
    /// `logging.outputs[0].level`) and the value of every scalar, in order.
    pub(super) fn scalars(&self, path: &str, visit: &mut dyn FnMut(&str, &str)) {
        match self {
            Self::Scalar { value, .. } => visit(path, value),
            Self::List(items) => {
                for (index, item) in items.iter().enumerate() {
                    item.scalars(&format!("{path}[{index}]"), visit);
                }
            }
            Self::Map(entries) => {
                for (key, value) in entries {
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    value.scalars(&child, visit);
                }
            }
        }
    }
}

/// The node that `first` starts, reading the rest of it from `events`.
fn node(
    first: Event<'_>,
    events: &mut dyn Iterator<Item = Result<Event<'_>, String>>,
) -> Result<Written, String> {
    match first {
        Event::Scalar(value, style, _, _) => Ok(scalar(&value, style)),
        Event::Alias(_) => Ok(Written::Scalar {
            value: String::new(),
            shown: "*alias".to_owned(),
        }),
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            loop {
                match next(events)? {
                    Event::SequenceEnd => return Ok(Written::List(items)),
                    event => items.push(node(event, events)?),
                }
            }
        }
        Event::MappingStart(..) => {
            let mut entries = Vec::new();
            loop {
                let key = match next(events)? {
                    Event::MappingEnd => return Ok(Written::Map(entries)),
                    event => match node(event, events)? {
                        Written::Scalar { value, .. } => value,
                        other => other.flow(),
                    },
                };
                let value = node(next(events)?, events)?;
                entries.push((key, value));
            }
        }
        other => Err(format!("unexpected YAML event {other:?}")),
    }
}

/// The next event; an error at the end of the events.
fn next<'i>(
    events: &mut dyn Iterator<Item = Result<Event<'i>, String>>,
) -> Result<Event<'i>, String> {
    events
        .next()
        .unwrap_or_else(|| Err("the YAML ends inside a node".to_owned()))
}

/// A scalar written in `style`.
fn scalar(value: &str, style: ScalarStyle) -> Written {
    let shown = match style {
        ScalarStyle::Plain if value.is_empty() => "~".to_owned(),
        ScalarStyle::Plain => value.to_owned(),
        ScalarStyle::SingleQuoted => format!("'{}'", value.replace('\'', "''")),
        _ => Json::from(value).to_string(),
    };
    Written::Scalar {
        value: value.to_owned(),
        shown,
    }
}

/// The comment lines at the top of `text`, before its first key: without
/// `#` and one space, `""` for blank lines.
pub(super) fn header(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .take_while(|line| line.is_empty() || line.starts_with('#'))
        .map(|line| {
            let comment = line.strip_prefix('#').unwrap_or(line);
            comment
                .strip_prefix(' ')
                .unwrap_or(comment)
                .trim_end()
                .to_owned()
        })
        .collect()
}

/// `value` (a default) in one line of YAML flow style, strings quoted only
/// where YAML would read them otherwise.
pub(super) fn flow_json(value: &Json) -> String {
    match value {
        Json::Null => "~".to_owned(),
        Json::Bool(value) => value.to_string(),
        Json::Number(number) => number.to_string(),
        Json::String(text) if is_plain(text) => text.clone(),
        Json::String(text) => Json::from(text.as_str()).to_string(),
        Json::Array(items) => format!(
            "[{}]",
            items.iter().map(flow_json).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(key, value)| format!("{key}: {}", flow_json(value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Whether `text` reads back as itself when written unquoted in a flow, by
/// the YAML parser the configuration is loaded with.
pub(super) fn is_plain(text: &str) -> bool {
    !text.is_empty()
        && text.trim() == text
        && !text.contains([',', '[', ']', '{', '}', '#', '"', '\''])
        && !text.starts_with(['-', '?', ':', '&', '*', '!', '|', '>', '%', '@', '`'])
        && !text.contains(": ")
        && !text.ends_with(':')
        && serde_norway::from_str::<serde_norway::Value>(text)
            .is_ok_and(|value| value.as_str() == Some(text))
}

/// A duration given in seconds, the way the files write it.
pub(super) fn format_duration(seconds: f64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_the_form_they_are_written_in() {
        let text = "# Top.\n#\n# More.\nsection:\n  a: ${A:1}  # trailing\n\n  b: \"x # y\"\n  \
                    c: 'it''s'\n  d:\n  list:\n    - type: console\n      level: ${LEVEL}\n    \
                    - type: file\n  flow: [1, x, \"2\"]\n";
        let written = Written::parse(text).unwrap();
        let Some([(name, section)]) = written.as_map() else {
            panic!("{written:?}")
        };
        assert_eq!(name, "section");
        let shown: Vec<(&str, String)> = section
            .as_map()
            .unwrap()
            .iter()
            .map(|(key, value)| (key.as_str(), value.flow()))
            .collect();
        assert_eq!(
            shown,
            [
                ("a", "${A:1}".to_owned()),
                ("b", "\"x # y\"".to_owned()),
                ("c", "'it''s'".to_owned()),
                ("d", "~".to_owned()),
                (
                    "list",
                    "[{type: console, level: \"${LEVEL}\"}, {type: file}]".to_owned()
                ),
                ("flow", "[1, x, \"2\"]".to_owned()),
            ]
        );
        let mut scalars = Vec::new();
        written.scalars("", &mut |path, value| {
            scalars.push(format!("{path}={value}"));
        });
        assert_eq!(
            scalars,
            [
                "section.a=${A:1}",
                "section.b=x # y",
                "section.c=it's",
                "section.d=",
                "section.list[0].type=console",
                "section.list[0].level=${LEVEL}",
                "section.list[1].type=file",
                "section.flow[0]=1",
                "section.flow[1]=x",
                "section.flow[2]=2",
            ]
        );
        assert_eq!(header(text), ["Top.", "", "More."]);
    }

    #[test]
    fn text_that_is_not_yaml_is_refused() {
        assert!(Written::parse("a: [1, 2\n").is_err());
        assert_eq!(Written::parse("").unwrap(), Written::Map(Vec::new()));
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
    fn defaults_are_quoted_only_when_yaml_would_misread_them() {
        for (value, text) in [
            (serde_json::json!("info"), "info"),
            (serde_json::json!(""), "\"\""),
            (serde_json::json!("true"), "\"true\""),
            (serde_json::json!("1"), "\"1\""),
            (serde_json::json!("a: b"), "\"a: b\""),
            (serde_json::json!([1, "x", null, 2.5]), "[1, x, ~, 2.5]"),
            (serde_json::json!({"b": 1, "a": ["y"]}), "{b: 1, a: [y]}"),
        ] {
            assert_eq!(flow_json(&value), text);
        }
    }
}
