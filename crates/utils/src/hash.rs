//! SHA-256 over canonical JSON, for content-addressing structured values.
//!
//! Two values that serialise to equal JSON objects must get the same hash no
//! matter in which order their keys were produced, so hashing goes through
//! [`canonical_json`], which fixes one textual form per JSON value.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How many hex characters [`short_hash`] keeps.
pub(crate) const SHORT_HASH_LEN: usize = 8;

/// Writes `value` as canonical JSON.
///
/// The value is first converted to a [`serde_json::Value`], then written as:
///
/// - **objects** with their keys sorted by their UTF-8 bytes (which is
///   Unicode code point order), at every depth, sorted here explicitly so the
///   result does not depend on serde_json's `preserve_order` feature;
/// - **arrays** in their original order;
/// - **no whitespace** anywhere;
/// - **strings** (keys included) escaped as serde_json does: `"` as `\"`,
///   `\` as `\\`, the control characters U+0008, U+0009, U+000A, U+000C and
///   U+000D as `\b`, `\t`, `\n`, `\f` and `\r`, every other character below
///   U+0020 as `\u00XX` with lowercase hex, and everything else, non-ASCII
///   included, as raw UTF-8 (`/` is not escaped);
/// - **numbers** as serde_json prints them: integers in decimal without a
///   sign for non-negative values, floats in serde_json's shortest
///   round-trip form (`1.0`, `0.1`, `1e+20`); non-finite floats become `null`;
/// - **`true`**, **`false`** and **`null`** literally.
///
/// Fails with [`Error::Json`] when `value` has no JSON form, for example a
/// map whose keys are not strings.
///
/// ```
/// use serde_json::json;
///
/// let text = bigbrotr_utils::canonical_json(&json!({"b": 1, "a": [true, null, "x"]}))?;
/// assert_eq!(text, r#"{"a":[true,null,"x"],"b":1}"#);
/// # Ok::<(), bigbrotr_utils::Error>(())
/// ```
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    let value = serde_json::to_value(value).map_err(|source| Error::Json { source })?;
    let mut out = String::new();
    write_canonical(&value, &mut out)?;
    Ok(out)
}

fn write_canonical(value: &Value, out: &mut String) -> Result<()> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_scalar(key, out)?;
                out.push(':');
                write_canonical(item, out)?;
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out)?;
            }
            out.push(']');
        }
        scalar => write_scalar(scalar, out)?,
    }
    Ok(())
}

fn write_scalar<T: Serialize + ?Sized>(scalar: &T, out: &mut String) -> Result<()> {
    let text = serde_json::to_string(scalar).map_err(|source| Error::Json { source })?;
    out.push_str(&text);
    Ok(())
}

/// SHA-256 of the [`canonical_json`] form of `value`.
///
/// ```
/// use serde_json::json;
/// use bigbrotr_utils::{compute_hash, hash_hex};
///
/// let hash = compute_hash(&json!({"b": 1, "a": [true, null, "x"]}))?;
/// assert_eq!(
///     hash_hex(&hash),
///     "54a65415ad370228851a1da4b31b6fd42dc58b19a50d35cae759325f7388ce64",
/// );
/// # Ok::<(), bigbrotr_utils::Error>(())
/// ```
pub fn compute_hash<T: Serialize + ?Sized>(value: &T) -> Result<[u8; 32]> {
    let text = canonical_json(value)?;
    Ok(Sha256::digest(text.as_bytes()).into())
}

/// A hash as 64 lowercase hex characters.
#[must_use]
pub fn hash_hex(hash: &[u8; 32]) -> String {
    hex::encode(hash)
}

/// The first 8 lowercase hex characters of a hash, enough to tell values
/// apart in logs.
#[must_use]
pub fn short_hash(hash: &[u8; 32]) -> String {
    hex::encode(&hash[..SHORT_HASH_LEN / 2])
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// `printf '%s' '{"a":[true,null,"x"],"b":1}' | sha256sum`
    const FIXED_VECTOR_HEX: &str =
        "54a65415ad370228851a1da4b31b6fd42dc58b19a50d35cae759325f7388ce64";

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let value = json!({"b": 1, "a": [true, null, "x"]});
        assert_eq!(
            canonical_json(&value).unwrap(),
            r#"{"a":[true,null,"x"],"b":1}"#
        );
    }

    #[test]
    fn canonical_json_sorts_nested_objects_and_keeps_array_order() {
        let value = json!({"z": {"y": 1, "x": [{"d": 0, "c": 1}, 3, 2]}, "a": {}});
        assert_eq!(
            canonical_json(&value).unwrap(),
            r#"{"a":{},"z":{"x":[{"c":1,"d":0},3,2],"y":1}}"#
        );
    }

    #[test]
    fn canonical_json_orders_keys_by_code_point() {
        let value = json!({"é": 1, "z": 2, "Z": 3, "": 4, "😀": 5, "\u{ffff}": 6});
        assert_eq!(
            canonical_json(&value).unwrap(),
            "{\"\":4,\"Z\":3,\"z\":2,\"é\":1,\"\u{ffff}\":6,\"😀\":5}"
        );
    }

    #[test]
    fn canonical_json_escapes_strings_like_serde_json() {
        let value = json!(["\"\\/", "\n\t\r\u{8}\u{c}", "\u{0}\u{1f}\u{7f}", "héllo 😀"]);
        assert_eq!(
            canonical_json(&value).unwrap(),
            "[\"\\\"\\\\/\",\"\\n\\t\\r\\b\\f\",\"\\u0000\\u001f\u{7f}\",\"héllo 😀\"]"
        );
    }

    #[test]
    fn canonical_json_escapes_keys_too() {
        let value = json!({"a\"b\n": 1});
        assert_eq!(canonical_json(&value).unwrap(), r#"{"a\"b\n":1}"#);
    }

    #[test]
    fn canonical_json_prints_numbers_like_serde_json() {
        let value = json!([0, -1, u64::MAX, i64::MIN, 1.0, 0.1, 1e20, -2.5e-7]);
        assert_eq!(
            canonical_json(&value).unwrap(),
            "[0,-1,18446744073709551615,-9223372036854775808,1.0,0.1,1e+20,-2.5e-7]"
        );
        assert_eq!(
            canonical_json(&[f64::NAN, f64::INFINITY]).unwrap(),
            "[null,null]"
        );
    }

    #[test]
    fn canonical_json_of_scalars_is_their_json() {
        assert_eq!(canonical_json(&true).unwrap(), "true");
        assert_eq!(canonical_json(&()).unwrap(), "null");
        assert_eq!(canonical_json("x").unwrap(), r#""x""#);
        assert_eq!(canonical_json(&Vec::<u8>::new()).unwrap(), "[]");
    }

    #[test]
    fn canonical_json_of_a_struct_sorts_its_fields() {
        #[derive(Serialize)]
        struct Relay<'a> {
            url: &'a str,
            network: &'a str,
            discovered_at: i64,
        }
        let relay = Relay {
            url: "wss://relay.example",
            network: "clearnet",
            discovered_at: 1,
        };
        assert_eq!(
            canonical_json(&relay).unwrap(),
            r#"{"discovered_at":1,"network":"clearnet","url":"wss://relay.example"}"#
        );
    }

    #[test]
    fn a_map_with_non_string_keys_is_a_json_error() {
        let mut map = BTreeMap::new();
        map.insert((1, 2), "pair");
        assert!(matches!(canonical_json(&map), Err(Error::Json { .. })));
        assert!(matches!(compute_hash(&map), Err(Error::Json { .. })));
    }

    #[test]
    fn compute_hash_matches_the_fixed_vector() {
        let expected: [u8; 32] = Sha256::digest(br#"{"a":[true,null,"x"],"b":1}"#).into();
        let hash = compute_hash(&json!({"b": 1, "a": [true, null, "x"]})).unwrap();
        assert_eq!(hash, expected);
        assert_eq!(hash_hex(&hash), FIXED_VECTOR_HEX);
    }

    #[test]
    fn compute_hash_ignores_key_order_of_the_input() {
        let forward: HashMap<&str, i32> = [("a", 1), ("b", 2), ("c", 3)].into_iter().collect();
        let sorted: BTreeMap<&str, i32> = [("c", 3), ("b", 2), ("a", 1)].into_iter().collect();
        let text: Value = serde_json::from_str(r#"{"c":3,"a":1,"b":2}"#).unwrap();
        let hash = compute_hash(&forward).unwrap();
        assert_eq!(compute_hash(&sorted).unwrap(), hash);
        assert_eq!(compute_hash(&text).unwrap(), hash);
    }

    #[test]
    fn compute_hash_differs_when_array_order_differs() {
        assert_ne!(
            compute_hash(&json!([1, 2])).unwrap(),
            compute_hash(&json!([2, 1])).unwrap()
        );
    }

    #[test]
    fn hash_hex_and_short_hash_are_lowercase_prefixes() {
        let mut hash = [0u8; 32];
        hash[0] = 0xAB;
        hash[1] = 0x01;
        hash[31] = 0xFF;
        let full = hash_hex(&hash);
        assert_eq!(full.len(), 64);
        assert!(full.starts_with("ab01"));
        assert!(full.ends_with("ff"));
        assert_eq!(short_hash(&hash), "ab010000");
        assert_eq!(short_hash(&hash).len(), SHORT_HASH_LEN);
        assert!(full.starts_with(&short_hash(&hash)));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((".{0,6}", inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn canonical_json_parses_back_to_the_same_value(value in json_value()) {
            let text = canonical_json(&value).unwrap();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&parsed, &value);
            prop_assert_eq!(canonical_json(&parsed).unwrap(), text);
        }
    }
}
