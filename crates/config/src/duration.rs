//! Serde helpers for durations in configuration files.
//!
//! A duration is written as a number of seconds (`30`, `0.5`) or as a
//! string with a unit: `"500ms"`, `"30s"`, `"5m"`, `"1h"` (a space before
//! the unit is allowed, fractions too: `"1.5 h"`). Negative, infinite and
//! NaN values are rejected. Durations are serialized as a number of
//! seconds, possibly fractional.
//!
//! ```
//! use std::time::Duration;
//!
//! #[derive(serde::Deserialize)]
//! struct Section {
//!     #[serde(with = "bigbrotr_config::duration")]
//!     timeout: Duration,
//! }
//!
//! let section: Section = serde_json::from_str(r#"{"timeout": "500ms"}"#).unwrap();
//! assert_eq!(section.timeout, Duration::from_millis(500));
//! ```
//!
//! A field read this way is described to JSON Schema by [`Seconds`]:
//! `#[schemars(with = "bigbrotr_config::duration::Seconds")]`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// The JSON Schema of a duration read by this module: a number of seconds
/// or a string with a unit, marked with the format `duration`.
#[derive(Debug, Clone, Copy)]
pub struct Seconds;

impl schemars::JsonSchema for Seconds {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["number", "string"],
            "format": "duration",
            "description": "A number of seconds (`30`, `0.5`) or a string with a unit (`\"500ms\"`, `\"30s\"`, `\"5m\"`, `\"1h\"`)."
        })
    }
}

/// Serializes `duration` as a number of seconds.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// Deserializes a number of seconds or a string with a unit.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor)
}

/// Parses a duration written as a number of seconds or a number with a
/// unit (`ms`, `s`, `m`, `h`). The error is a phrase fit to follow a key
/// path.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .len();
    let (number, unit) = (text[..split].trim_end(), &text[split..]);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("`{text}` is not a duration: {EXPECTED}")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: {EXPECTED}"))?;
    from_secs(value * scale).map_err(|reason| format!("`{text}` {reason}"))
}

/// What a duration looks like, for error messages.
const EXPECTED: &str = "expected a number of seconds, or a number with a unit: ms, s, m or h";

/// A duration of `seconds`, rejecting negative, infinite, NaN and huge values.
fn from_secs(seconds: f64) -> Result<Duration, &'static str> {
    if seconds.is_nan() {
        Err("is not a number: a duration must be a number of seconds ≥ 0")
    } else if seconds < 0.0 {
        Err("is negative: a duration must be ≥ 0")
    } else {
        Duration::try_from_secs_f64(seconds).map_err(|_| "is too long for a duration")
    }
}

/// Accepts numbers of seconds and strings with units.
struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration: a number of seconds or a string such as \"500ms\", \"30s\", \"5m\", \"1h\"")
    }

    fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(seconds))
    }

    fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<Duration, E> {
        u64::try_from(seconds)
            .map(Duration::from_secs)
            .map_err(|_| E::custom(format!("`{seconds}` is negative: a duration must be ≥ 0")))
    }

    fn visit_f64<E: de::Error>(self, seconds: f64) -> Result<Duration, E> {
        from_secs(seconds).map_err(|reason| E::custom(format!("`{seconds}` {reason}")))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text).map_err(E::custom)
    }
}

/// The same helpers for an `Option<Duration>`: `null` or a missing key is
/// `None`. Use with `#[serde(default, with = "bigbrotr_config::duration::option")]`.
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes `Some` as a number of seconds and `None` as nothing.
    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => serializer.serialize_some(&duration.as_secs_f64()),
            None => serializer.serialize_none(),
        }
    }

    /// Deserializes `null` as `None` and anything else as a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        /// A duration in the format of the parent module.
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super")] Duration);

        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(duration)| duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Section {
        #[serde(with = "super")]
        timeout: Duration,
        #[serde(default, with = "super::option")]
        limit: Option<Duration>,
    }

    fn timeout(json: &str) -> Result<Duration, String> {
        serde_json::from_str::<Section>(&format!(r#"{{"timeout": {json}}}"#))
            .map(|section| section.timeout)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn a_number_is_seconds_and_may_be_fractional() {
        assert_eq!(timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(timeout("0.5"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn a_string_may_carry_a_unit() {
        assert_eq!(timeout(r#""500ms""#), Ok(Duration::from_millis(500)));
        assert_eq!(timeout(r#""30s""#), Ok(Duration::from_secs(30)));
        assert_eq!(timeout(r#""5m""#), Ok(Duration::from_secs(300)));
        assert_eq!(timeout(r#""1h""#), Ok(Duration::from_secs(3600)));
        assert_eq!(timeout(r#""1.5 h""#), Ok(Duration::from_secs(5400)));
        assert_eq!(timeout(r#""12""#), Ok(Duration::from_secs(12)));
    }

    #[test]
    fn negative_values_are_rejected() {
        assert_eq!(
            timeout("-1"),
            Err("`-1` is negative: a duration must be ≥ 0 at line 1 column 14".to_owned())
        );
        assert_eq!(
            parse("-0.5s"),
            Err("`-0.5s` is negative: a duration must be ≥ 0".to_owned())
        );
        assert_eq!(
            visit_f64(-2.5),
            Err("`-2.5` is negative: a duration must be ≥ 0".to_owned())
        );
    }

    #[test]
    fn nan_and_huge_values_are_rejected() {
        assert_eq!(
            parse("NaN"),
            Err("`NaN` is not a duration: expected a number of seconds, or a number with a unit: ms, s, m or h".to_owned())
        );
        assert_eq!(
            visit_f64(f64::NAN),
            Err("`NaN` is not a number: a duration must be a number of seconds ≥ 0".to_owned())
        );
        assert_eq!(
            parse("1e300h"),
            Err("`1e300h` is too long for a duration".to_owned())
        );
    }

    #[test]
    fn unknown_units_and_garbage_are_rejected() {
        for text in ["5x", "ms", "", "1 d", "s5"] {
            assert_eq!(
                parse(text),
                Err(format!("`{text}` is not a duration: {EXPECTED}")),
                "for {text:?}"
            );
        }
        assert!(timeout("true").is_err_and(|e| e.starts_with("invalid type: boolean `true`")));
    }

    #[test]
    fn durations_serialize_as_seconds() {
        let section = Section {
            timeout: Duration::from_millis(1500),
            limit: Some(Duration::from_secs(2)),
        };
        let json = serde_json::to_string(&section).expect("serializable");
        assert_eq!(json, r#"{"timeout":1.5,"limit":2.0}"#);
        let back: Section = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, section);
    }

    #[test]
    fn an_optional_duration_may_be_null_or_missing() {
        let missing: Section = serde_json::from_str(r#"{"timeout": 1}"#).expect("valid");
        assert_eq!(missing.limit, None);
        let null: Section =
            serde_json::from_str(r#"{"timeout": 1, "limit": null}"#).expect("valid");
        assert_eq!(null.limit, None);
        let set: Section = serde_json::from_str(r#"{"timeout": 1, "limit": "2m"}"#).expect("valid");
        assert_eq!(set.limit, Some(Duration::from_secs(120)));
        assert_eq!(
            serde_json::to_string(&null).expect("serializable"),
            r#"{"timeout":1.0,"limit":null}"#
        );
    }

    fn visit_f64(value: f64) -> Result<Duration, String> {
        DurationVisitor
            .visit_f64::<serde::de::value::Error>(value)
            .map_err(|error| error.to_string())
    }
}
