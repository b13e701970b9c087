//! Events: checking them before they are stored, and their lossless
//! mapping to and from the columns of `events`.
//!
//! PostgreSQL `text` and `jsonb` cannot hold U+0000, which Nostr strings may
//! contain. An event whose content holds it is stored with U+0000 replaced
//! by U+FFFD in `content` (still searchable) and the exact UTF-8 bytes in
//! `content_raw`; likewise a tag string holding it puts the replaced tags
//! in `tags` and the exact JSON text of the tags array in `tags_raw`. Both
//! raw columns are NULL otherwise, and reading prefers them.

use std::borrow::Cow;

use nostr::secp256k1::schnorr::Signature;
use nostr::{Event, EventId, Kind, PublicKey, Tags, Timestamp};
use serde::ser::{Serialize, SerializeSeq, Serializer};

use crate::error::{Error, RejectReason, Result};

/// Longest tag value (in bytes) put in `tagvalues`: a longer one could
/// overflow a GIN index entry, and nobody looks one up.
const MAX_TAGVALUE_BYTES: usize = 256;

/// What replaces U+0000 in the queryable columns.
const REPLACEMENT: &str = "\u{FFFD}";

/// Checks an event as the archive does before storing it: its id is the
/// hash of its content and its signature verifies (`nostr`'s
/// [`Event::verify`]), and its `created_at` fits a PostgreSQL `bigint`.
///
/// [`Event::from_json`](nostr::JsonUtil::from_json) does not verify: call
/// this (or let [`Brotr`](crate::Brotr) do it) before trusting an event.
///
/// ```
/// use bigbrotr_brotr::{validate_event, RejectReason};
/// use nostr::{EventBuilder, Keys};
///
/// let keys = Keys::generate();
/// let mut event = EventBuilder::text_note("hello").sign_with_keys(&keys)?;
/// assert_eq!(validate_event(&event), Ok(()));
/// event.content.push('!');
/// assert_eq!(validate_event(&event), Err(RejectReason::InvalidId));
/// # Ok::<(), nostr::event::builder::Error>(())
/// ```
pub fn validate_event(event: &Event) -> Result<(), RejectReason> {
    check_storable(event)?;
    event.verify().map_err(|error| match error {
        nostr::event::Error::InvalidId => RejectReason::InvalidId,
        _ => RejectReason::InvalidSignature,
    })
}

/// The `tagvalues` column of `event` as the archive computes it (see
/// `tags_to_tagvalues` in the implementation's SQL): `<letter>:<value>` for
/// each tag whose name is one ASCII letter and whose value has at most 256
/// bytes, U+0000 replaced by U+FFFD, in tag order, repeats kept.
///
/// ```
/// use nostr::{EventBuilder, Keys, Tag};
///
/// let event = EventBuilder::text_note("hi")
///     .tags([Tag::parse(["t", "nostr"])?, Tag::parse(["title", "x"])?])
///     .sign_with_keys(&Keys::generate())?;
/// assert_eq!(bigbrotr_brotr::tagvalues(&event), ["t:nostr"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn tagvalues(event: &Event) -> Vec<String> {
    let mut values = Vec::new();
    if let Some(row) = EventRow::of(event) {
        row.tags.tagvalues_into(&mut values);
    }
    values
}

/// The checks made even when event validation is off: what the columns
/// cannot hold.
pub(crate) fn check_storable(event: &Event) -> Result<(), RejectReason> {
    let created_at = event.created_at.as_secs();
    if i64::try_from(created_at).is_err() {
        return Err(RejectReason::CreatedAtOutOfRange { created_at });
    }
    Ok(())
}

/// The queryable form of an event's tags: as they are, or with U+0000
/// replaced.
#[derive(Debug)]
pub(crate) enum QueryTags<'a> {
    /// No tag string holds U+0000.
    Original(&'a Tags),
    /// Some did; these are the tags with it replaced.
    Replaced(Vec<Vec<String>>),
}

impl QueryTags<'_> {
    /// Appends the `tagvalues` of these tags to `out`, exactly as the SQL
    /// function `tags_to_tagvalues` computes them (but possibly repeated and
    /// unsorted, which `insert_events` folds): `<letter>:<value>` for each
    /// tag whose name is one ASCII letter and whose value has at most
    /// [`MAX_TAGVALUE_BYTES`] bytes.
    pub(crate) fn tagvalues_into(&self, out: &mut Vec<String>) {
        let mut push = |tag: &[String]| {
            if let [name, value, ..] = tag {
                if name.len() == 1
                    && name.as_bytes()[0].is_ascii_alphabetic()
                    && value.len() <= MAX_TAGVALUE_BYTES
                {
                    out.push(format!("{name}:{value}"));
                }
            }
        };
        match self {
            Self::Original(tags) => tags.iter().for_each(|tag| push(tag.as_slice())),
            Self::Replaced(tags) => tags.iter().for_each(|tag| push(tag)),
        }
    }
}

impl Serialize for QueryTags<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Original(tags) => tags.serialize(serializer),
            Self::Replaced(tags) => {
                let mut seq = serializer.serialize_seq(Some(tags.len()))?;
                for tag in tags {
                    seq.serialize_element(tag)?;
                }
                seq.end()
            }
        }
    }
}

/// One event as the parameters of `insert_events` take it.
#[derive(Debug)]
pub(crate) struct EventRow<'a> {
    pub(crate) id: &'a [u8],
    pub(crate) pubkey: &'a [u8],
    pub(crate) created_at: i64,
    pub(crate) kind: i32,
    pub(crate) tags: QueryTags<'a>,
    pub(crate) tags_raw: Option<Vec<u8>>,
    pub(crate) content: Cow<'a, str>,
    pub(crate) content_raw: Option<&'a [u8]>,
    pub(crate) sig: [u8; 64],
}

impl<'a> EventRow<'a> {
    /// The columns of `event`; `None` when its `created_at` does not fit a
    /// `bigint` (which [`check_storable`] reports first: serialising the
    /// tags, the only other fallible step, cannot fail for strings).
    pub(crate) fn of(event: &'a Event) -> Option<Self> {
        let created_at = i64::try_from(event.created_at.as_secs()).ok()?;
        let tags_have_nul = event
            .tags
            .iter()
            .any(|tag| tag.as_slice().iter().any(|s| s.contains('\0')));
        let (tags, tags_raw) = if tags_have_nul {
            let replaced = event
                .tags
                .iter()
                .map(|tag| {
                    tag.as_slice()
                        .iter()
                        .map(|s| s.replace('\0', REPLACEMENT))
                        .collect()
                })
                .collect();
            // Serialising a list of strings cannot fail.
            let raw = serde_json::to_vec(&event.tags).ok()?;
            (QueryTags::Replaced(replaced), Some(raw))
        } else {
            (QueryTags::Original(&event.tags), None)
        };
        let (content, content_raw) = if event.content.contains('\0') {
            (
                Cow::Owned(event.content.replace('\0', REPLACEMENT)),
                Some(event.content.as_bytes()),
            )
        } else {
            (Cow::Borrowed(event.content.as_str()), None)
        };
        Some(Self {
            id: event.id.as_bytes(),
            pubkey: event.pubkey.as_bytes(),
            created_at,
            kind: i32::from(event.kind.as_u16()),
            tags,
            tags_raw,
            content,
            content_raw,
            sig: event.sig.serialize(),
        })
    }
}

/// The columns of one row of `get_event_by_id`.
#[derive(Debug)]
pub(crate) struct StoredEvent {
    pub(crate) id: Vec<u8>,
    pub(crate) pubkey: Vec<u8>,
    pub(crate) created_at: i64,
    pub(crate) kind: i32,
    pub(crate) tags: serde_json::Value,
    pub(crate) tags_raw: Option<Vec<u8>>,
    pub(crate) content: String,
    pub(crate) content_raw: Option<Vec<u8>>,
    pub(crate) sig: Vec<u8>,
}

impl StoredEvent {
    /// Rebuilds the event, preferring the raw columns; does not verify it.
    pub(crate) fn into_event(self, what: &'static str) -> Result<Event> {
        let decode = |column: &'static str| {
            move |source: Box<dyn std::error::Error + Send + Sync>| Error::Decode {
                what,
                column,
                source,
            }
        };
        let id = EventId::from_slice(&self.id).map_err(|e| decode("id")(e.into()))?;
        let pubkey = PublicKey::from_slice(&self.pubkey).map_err(|e| decode("pubkey")(e.into()))?;
        let created_at = u64::try_from(self.created_at)
            .map(Timestamp::from_secs)
            .map_err(|e| decode("created_at")(e.into()))?;
        let kind = u16::try_from(self.kind)
            .map(Kind::from_u16)
            .map_err(|e| decode("kind")(e.into()))?;
        let tags: Tags = match &self.tags_raw {
            Some(raw) => serde_json::from_slice(raw).map_err(|e| decode("tags_raw")(e.into()))?,
            None => serde_json::from_value(self.tags).map_err(|e| decode("tags")(e.into()))?,
        };
        let content = match self.content_raw {
            Some(raw) => String::from_utf8(raw).map_err(|e| decode("content_raw")(e.into()))?,
            None => self.content,
        };
        let sig = Signature::from_slice(&self.sig).map_err(|e| decode("sig")(e.into()))?;
        Ok(Event::new(
            id,
            pubkey,
            created_at,
            kind,
            tags.to_vec(),
            content,
            sig,
        ))
    }
}

#[cfg(test)]
mod tests {
    use nostr::{EventBuilder, Keys, Tag};

    use super::*;

    fn signed(content: &str, tags: Vec<Vec<&str>>) -> Event {
        let tags = tags.into_iter().map(|t| Tag::parse(t).expect("a tag"));
        EventBuilder::text_note(content)
            .tags(tags)
            .sign_with_keys(&Keys::generate())
            .expect("signed")
    }

    /// What `get_event_by_id` would return for `row`.
    fn stored(row: &EventRow<'_>) -> StoredEvent {
        StoredEvent {
            id: row.id.to_vec(),
            pubkey: row.pubkey.to_vec(),
            created_at: row.created_at,
            kind: row.kind,
            tags: serde_json::to_value(&row.tags).unwrap(),
            tags_raw: row.tags_raw.clone(),
            content: row.content.to_string(),
            content_raw: row.content_raw.map(<[u8]>::to_vec),
            sig: row.sig.to_vec(),
        }
    }

    #[test]
    fn a_signed_event_is_valid() {
        assert_eq!(validate_event(&signed("hi", vec![vec!["t", "x"]])), Ok(()));
    }

    #[test]
    fn an_altered_content_is_an_invalid_id() {
        let mut event = signed("hi", vec![]);
        event.content = "ho".to_owned();
        assert_eq!(validate_event(&event), Err(RejectReason::InvalidId));
    }

    #[test]
    fn a_signature_of_another_event_is_an_invalid_signature() {
        let mut event = signed("hi", vec![]);
        event.sig = signed("other", vec![]).sig;
        assert_eq!(validate_event(&event), Err(RejectReason::InvalidSignature));
    }

    #[test]
    fn a_created_at_beyond_bigint_is_refused_before_anything_else() {
        let mut event = signed("hi", vec![]);
        event.created_at = Timestamp::from_secs(u64::MAX);
        assert_eq!(
            validate_event(&event),
            Err(RejectReason::CreatedAtOutOfRange {
                created_at: u64::MAX
            })
        );
        assert!(EventRow::of(&event).is_none());
    }

    #[test]
    fn an_event_without_nul_has_no_raw_columns() {
        let event = signed("héllo 😀\n", vec![vec!["p", "x"], vec!["single"]]);
        let row = EventRow::of(&event).unwrap();
        assert!(row.tags_raw.is_none());
        assert!(row.content_raw.is_none());
        assert!(matches!(row.tags, QueryTags::Original(_)));
        assert_eq!(row.content, "héllo 😀\n");
        assert_eq!(
            serde_json::to_string(&row.tags).unwrap(),
            r#"[["p","x"],["single"]]"#
        );
    }

    #[test]
    fn nul_in_content_is_replaced_and_kept_raw() {
        let event = signed("a\u{0}b", vec![]);
        let row = EventRow::of(&event).unwrap();
        assert_eq!(row.content, "a\u{FFFD}b");
        assert_eq!(row.content_raw, Some("a\u{0}b".as_bytes()));
        assert!(row.tags_raw.is_none());
    }

    #[test]
    fn nul_in_a_tag_is_replaced_and_the_exact_tags_kept_raw() {
        let event = signed("", vec![vec!["t", "x\u{0}y"], vec!["e", "z"]]);
        let row = EventRow::of(&event).unwrap();
        assert_eq!(
            serde_json::to_string(&row.tags).unwrap(),
            "[[\"t\",\"x\u{FFFD}y\"],[\"e\",\"z\"]]"
        );
        assert_eq!(
            row.tags_raw.as_deref(),
            Some(br#"[["t","x\u0000y"],["e","z"]]"#.as_slice())
        );
        assert!(row.content_raw.is_none());
    }

    #[test]
    fn a_stored_event_rebuilds_equal_and_verifies() {
        for event in [
            signed("plain", vec![vec!["p", "k"]]),
            signed("nul \u{0} here", vec![vec!["t", "\u{0}"], vec!["x"]]),
            signed("\u{0}", vec![]),
        ] {
            let row = EventRow::of(&event).unwrap();
            let rebuilt = stored(&row).into_event("test").unwrap();
            assert_eq!(rebuilt, event);
            assert_eq!(rebuilt.verify(), Ok(()));
        }
    }

    #[test]
    fn the_queryable_columns_alone_do_not_rebuild_an_event_with_nul() {
        let event = signed("a\u{0}", vec![]);
        let row = EventRow::of(&event).unwrap();
        let mut columns = stored(&row);
        columns.content_raw = None;
        let rebuilt = columns.into_event("test").unwrap();
        assert_eq!(rebuilt.verify(), Err(nostr::event::Error::InvalidId));
    }

    #[test]
    fn a_row_with_a_short_id_is_a_decode_error() {
        let event = signed("x", vec![]);
        let mut columns = stored(&EventRow::of(&event).unwrap());
        columns.id.pop();
        assert!(matches!(
            columns.into_event("get_event_by_id"),
            Err(Error::Decode { column: "id", .. })
        ));
    }

    #[test]
    fn tagvalues_are_those_of_single_letter_tags_with_short_values() {
        let long = "v".repeat(MAX_TAGVALUE_BYTES + 1);
        let fits = "w".repeat(MAX_TAGVALUE_BYTES);
        let event = signed(
            "",
            vec![
                vec!["e", "abc", "wss://r.example"],
                vec!["P", "k"],
                vec!["t", "x\u{0}y"],
                vec!["t", long.as_str()],
                vec!["t", fits.as_str()],
                vec!["tt", "two letters"],
                vec!["1", "digit"],
                vec!["é", "not ascii"],
                vec!["p"],
                vec!["e", "abc"],
            ],
        );
        let row = EventRow::of(&event).unwrap();
        let mut values = Vec::new();
        row.tags.tagvalues_into(&mut values);
        assert_eq!(
            values,
            [
                "e:abc".to_owned(),
                "P:k".to_owned(),
                "t:x\u{FFFD}y".to_owned(),
                format!("t:{fits}"),
                "e:abc".to_owned(),
            ]
        );
    }
}
