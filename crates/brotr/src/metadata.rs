//! Relay metadata: one check of one relay, with its NIP-11 and NIP-66
//! documents, stored content-addressed.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::relay::RelayId;

/// One check of one relay, as [`Brotr::insert_relay_metadata_batch`]
/// takes it.
///
/// [`Brotr::insert_relay_metadata_batch`]: crate::Brotr::insert_relay_metadata_batch
#[derive(Debug, Clone, PartialEq)]
pub struct RelayMetadata {
    /// The relay checked.
    pub relay_id: RelayId,
    /// When the check was made (Unix seconds); a relay has at most one
    /// check per second.
    pub generated_at: i64,
    /// Whether a WebSocket connection to the relay succeeded.
    pub connected: bool,
    /// The NIP-11 relay information document obtained, if any.
    pub nip11: Option<Value>,
    /// The NIP-66 measurements made, if any.
    pub nip66: Option<Value>,
}

/// A document ready for the database: U+0000 removed, and its id.
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) id: [u8; 32],
    pub(crate) data: Value,
}

/// Prepares `value`: removes U+0000 from every string and key (`jsonb`
/// cannot hold it), then takes the [`document_id`] of what is left.
pub(crate) fn document(value: &Value, what: &'static str, index: usize) -> Result<Document> {
    let data = without_nul(value);
    let id = document_id(&data).map_err(|source| Error::Document {
        what,
        index,
        source,
    })?;
    Ok(Document { id, data })
}

/// The id of a NIP-11 or NIP-66 document in the archive: the SHA-256 of its
/// canonical JSON ([`bigbrotr_utils::compute_hash`]: keys sorted, no
/// whitespace), so identical documents share one row whatever the order of
/// their keys. Documents holding U+0000 are stored, and hashed, with it
/// removed.
///
/// ```
/// use serde_json::json;
///
/// let a = bigbrotr_brotr::document_id(&json!({"name": "r", "supported_nips": [1, 11]}))?;
/// let b = bigbrotr_brotr::document_id(&json!({"supported_nips": [1, 11], "name": "r"}))?;
/// assert_eq!(a, b);
/// # Ok::<(), bigbrotr_utils::Error>(())
/// ```
pub fn document_id(value: &Value) -> Result<[u8; 32], bigbrotr_utils::Error> {
    bigbrotr_utils::compute_hash(value)
}

/// `value` with every U+0000 removed from strings and object keys.
fn without_nul(value: &Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "")),
        Value::Array(items) => Value::Array(items.iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| (key.replace('\0', ""), without_nul(item)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nul_is_removed_from_strings_and_keys_at_every_depth() {
        let value = json!({"a\u{0}": ["x\u{0}y", {"k": "\u{0}"}], "n": 1, "b": null});
        assert_eq!(
            without_nul(&value),
            json!({"a": ["xy", {"k": ""}], "n": 1, "b": null})
        );
    }

    #[test]
    fn the_id_is_the_hash_of_the_canonical_json() {
        let doc = document(&json!({"b": 1, "a": [true, null, "x"]}), "nip11", 0).unwrap();
        assert_eq!(
            bigbrotr_utils::hash_hex(&doc.id),
            "54a65415ad370228851a1da4b31b6fd42dc58b19a50d35cae759325f7388ce64"
        );
    }

    #[test]
    fn a_document_with_nul_gets_the_id_of_the_document_without_it() {
        let with = document(&json!({"name": "re\u{0}lay"}), "nip11", 0).unwrap();
        let without = document(&json!({"name": "relay"}), "nip11", 0).unwrap();
        assert_eq!(with.id, without.id);
        assert_eq!(with.data, without.data);
    }
}
