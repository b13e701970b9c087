//! Collecting the fields of events and spans as typed values.

use std::fmt;

use serde_json::{Number, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, FormattedFields};

use crate::report::ErrorChain;

/// Fields in the order they were recorded, each name once.
pub(crate) type FieldList = Vec<(String, Value)>;

/// Stores the fields of each span as a JSON list of `[name, value]` pairs, so
/// the formats of this crate can show them with their types on every event
/// inside the span.
#[derive(Debug, Clone, Copy, Default)]
pub struct StructuredFields;

impl<'writer> FormatFields<'writer> for StructuredFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut collected = Collected::for_span(FieldList::new());
        fields.record(&mut collected);
        writer.write_str(&encode(&collected.fields))
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut collected = Collected::for_span(decode(&current.fields));
        fields.record(&mut collected);
        current.fields = encode(&collected.fields);
        Ok(())
    }
}

fn encode(fields: &FieldList) -> String {
    // A list of string/JSON pairs always serialises.
    serde_json::to_string(fields).unwrap_or_else(|_| "[]".to_owned())
}

/// Reads back what [`StructuredFields`] stored.
pub(crate) fn decode(stored: &str) -> FieldList {
    serde_json::from_str(stored).unwrap_or_default()
}

/// A visitor keeping every field with its JSON type.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// Whether `message` is the message of an event rather than a field.
    is_event: bool,
    /// The message of an event.
    pub(crate) message: Option<String>,
    /// The fields other than the message, each name once.
    pub(crate) fields: FieldList,
    /// The target of a record forwarded from the `log` crate.
    pub(crate) log_target: Option<String>,
    /// The source line of a record forwarded from the `log` crate.
    pub(crate) log_line: Option<u64>,
}

impl Collected {
    /// A visitor for an event: `message` is the message and the `log.*`
    /// fields of forwarded `log` records become target and line.
    pub(crate) fn for_event() -> Self {
        Self {
            is_event: true,
            ..Self::default()
        }
    }

    /// A visitor for a span, starting from the fields it already has.
    pub(crate) fn for_span(fields: FieldList) -> Self {
        Self {
            fields,
            ..Self::default()
        }
    }

    /// Sets a field, replacing an earlier value of the same name in place.
    pub(crate) fn put(&mut self, name: &str, value: Value) {
        if let Some(slot) = self.fields.iter_mut().find(|(key, _)| key == name) {
            slot.1 = value;
        } else {
            self.fields.push((name.to_owned(), value));
        }
    }

    /// Adds a field unless one of that name is already there.
    pub(crate) fn put_if_absent(&mut self, name: String, value: Value) {
        if !self.fields.iter().any(|(key, _)| *key == name) {
            self.fields.push((name, value));
        }
    }

    fn record_value(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if self.is_event {
            match (name, &value) {
                ("message", Value::String(text)) => {
                    self.message = Some(text.clone());
                    return;
                }
                ("log.target", Value::String(text)) => {
                    self.log_target = Some(text.clone());
                    return;
                }
                ("log.line", Value::Number(number)) => {
                    self.log_line = number.as_u64();
                    return;
                }
                ("log.module_path" | "log.file" | "log.line", _) => return,
                _ => {}
            }
        }
        self.put(name, value);
    }
}

impl Visit for Collected {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value =
            Number::from_f64(value).map_or_else(|| Value::String(value.to_string()), Value::Number);
        self.record_value(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_value(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_value(field, Value::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let value =
            i64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.record_value(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let value =
            u64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.record_value(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_value(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_value(field, Value::String(value.to_owned()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_value(field, Value::String(ErrorChain::new(value).to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_value(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stored_span_fields_read_back_with_their_types() {
        let fields: FieldList = vec![
            ("relay".to_owned(), json!("wss://relay.example")),
            ("attempt".to_owned(), json!(3)),
            ("ok".to_owned(), json!(true)),
        ];
        assert_eq!(decode(&encode(&fields)), fields);
    }

    #[test]
    fn unreadable_stored_fields_read_back_as_none() {
        assert_eq!(decode("not json"), FieldList::new());
    }

    #[test]
    fn a_field_set_twice_keeps_its_place_and_takes_the_new_value() {
        let mut collected = Collected::for_span(FieldList::new());
        collected.put("a", json!(1));
        collected.put("b", json!(2));
        collected.put("a", json!(3));
        collected.put_if_absent("b".to_owned(), json!(4));
        collected.put_if_absent("c".to_owned(), json!(5));
        assert_eq!(
            collected.fields,
            vec![
                ("a".to_owned(), json!(3)),
                ("b".to_owned(), json!(2)),
                ("c".to_owned(), json!(5)),
            ]
        );
    }
}
