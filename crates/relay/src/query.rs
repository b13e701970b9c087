//! Filters as SQL: one statement per filter, over the columns of `events`
//! every implementation has and their indexes, and the same filter matched
//! in memory against events archived after a subscription's `EOSE`.
//!
//! The statements are composed here rather than called as stored
//! procedures: each filter shape (ids, authors, kinds, tags, time range) is
//! served by a different index (the primary key, `(pubkey, created_at)`,
//! `(kind, created_at)`, the GIN index on `tagvalues`, `(created_at, id)`),
//! and a function with optional predicates would leave the planner one plan
//! for all of them. Only the predicates a filter uses are written; every
//! value goes as a typed parameter, never into the text. The tests check
//! with `EXPLAIN` that each shape reads through an index.

use bigbrotr_pool::{Param, Type};
use nostr::Filter;

use crate::config::RelayConfig;

/// The longest tag value `tagvalues` holds (see `tags_to_tagvalues`): a
/// longer one in a filter can match nothing.
const MAX_TAG_VALUE_BYTES: usize = 256;

/// Tags and content an event may have, in bytes, to come with the others
/// in [`Conditions::events_query`]; a larger one is read on its own.
pub(crate) const INLINE_BYTES: usize = 16 * 1024;

/// One stored event by id (`$1`), with the columns the relay writes an
/// event from: `id`, `pubkey`, `created_at`, `kind`, `tags` as JSON text
/// (`tags_raw` when set), `content`, `content_raw`, `sig`.
pub(crate) const EVENT_BY_ID: &str = "SELECT e.id, e.pubkey, e.created_at, e.kind, \
     coalesce(convert_from(e.tags_raw, 'UTF8'), e.tags::text) AS tags, e.content, e.content_raw, \
     e.sig FROM events AS e WHERE e.id = $1";

/// Why a filter is refused, written as the reason of a `CLOSED`, `NEG-ERR`
/// or `NOTICE` (NIP-01's machine-readable prefixes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// A filter lists more values in one field than `max_filter_values`.
    #[error("blocked: a filter lists more than {max} {field}")]
    TooManyValues {
        /// `ids`, `authors`, `kinds` or `#<letter> values`.
        field: String,
        /// The limit.
        max: u32,
    },
    /// NIP-50 `search`, which the archive does not index.
    #[error("unsupported: search (NIP-50) is not supported")]
    Search,
}

/// The conditions of one filter, with their values in the form the
/// database compares (bytes, `<letter>:<value>` strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conditions {
    ids: Option<Vec<[u8; 32]>>,
    authors: Option<Vec<[u8; 32]>>,
    /// `ids` and `authors` as the database takes them (`bytea[]`).
    id_params: Option<Vec<Vec<u8>>>,
    author_params: Option<Vec<Vec<u8>>>,
    kinds: Option<Vec<i32>>,
    /// One list per tag letter: an event matches when it has one of them.
    tags: Vec<Vec<String>>,
    since: Option<i64>,
    until: Option<i64>,
    /// The filter's `limit`, if it gave one.
    limit: Option<usize>,
}

impl Conditions {
    /// The conditions of `filter`, or `None` when it can match nothing (a
    /// field listing no value, only tag values too long to be indexed, or
    /// `since` after `until`).
    pub(crate) fn of(filter: &Filter, config: &RelayConfig) -> Result<Option<Self>, Refusal> {
        if filter.search.is_some() {
            return Err(Refusal::Search);
        }
        let max = config.max_filter_values;
        let check = |field: &str, count: usize| {
            if count > max as usize {
                Err(Refusal::TooManyValues {
                    field: field.to_owned(),
                    max,
                })
            } else {
                Ok(())
            }
        };
        let mut empty = false;
        let ids = filter.ids.as_ref().map(|ids| {
            empty |= ids.is_empty();
            ids.iter().map(|id| id.to_bytes()).collect::<Vec<_>>()
        });
        check("ids", ids.as_ref().map_or(0, Vec::len))?;
        let authors = filter.authors.as_ref().map(|authors| {
            empty |= authors.is_empty();
            authors.iter().map(|key| key.to_bytes()).collect::<Vec<_>>()
        });
        check("authors", authors.as_ref().map_or(0, Vec::len))?;
        let kinds = filter.kinds.as_ref().map(|kinds| {
            empty |= kinds.is_empty();
            kinds
                .iter()
                .map(|kind| i32::from(kind.as_u16()))
                .collect::<Vec<_>>()
        });
        check("kinds", kinds.as_ref().map_or(0, Vec::len))?;
        let mut tags = Vec::with_capacity(filter.generic_tags.len());
        for (letter, values) in &filter.generic_tags {
            check(&format!("#{letter} values"), values.len())?;
            let mut wanted: Vec<String> = values
                .iter()
                .filter(|value| value.len() <= MAX_TAG_VALUE_BYTES)
                .map(|value| format!("{letter}:{value}"))
                .collect();
            wanted.sort_unstable();
            empty |= wanted.is_empty();
            tags.push(wanted);
        }
        let since = filter.since.map(|t| timestamp(t.as_secs()));
        let until = filter.until.map(|t| timestamp(t.as_secs()));
        if let (Some(since), Some(until)) = (since, until) {
            empty |= since > until;
        }
        if empty {
            return Ok(None);
        }
        let sorted = |mut keys: Vec<[u8; 32]>| {
            keys.sort_unstable();
            keys
        };
        let params = |keys: &Option<Vec<[u8; 32]>>| {
            keys.as_ref()
                .map(|keys| keys.iter().map(|key| key.to_vec()).collect())
        };
        Ok(Some(Self {
            id_params: params(&ids),
            author_params: params(&authors),
            ids: ids.map(sorted),
            authors: authors.map(sorted),
            kinds: kinds.map(|mut kinds| {
                kinds.sort_unstable();
                kinds
            }),
            tags,
            since,
            until,
            limit: filter.limit,
        }))
    }

    /// How many events a `REQ` gets before its `EOSE`: the filter's `limit`
    /// (`default_limit` when it has none), at most `max_limit`.
    pub(crate) fn history_limit(&self, config: &RelayConfig) -> i64 {
        let asked = self.limit.map_or(u64::from(config.default_limit), |limit| {
            u64::try_from(limit).unwrap_or(u64::MAX)
        });
        i64::try_from(asked.min(u64::from(config.max_limit))).unwrap_or(i64::MAX)
    }

    /// The filter's own `limit`, if any.
    pub(crate) fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// `WHERE` text and parameters; `first` is the number of the first
    /// parameter.
    fn predicates(&self, first: usize) -> (String, Vec<Param<'_>>) {
        let mut sql = Vec::new();
        let mut params: Vec<Param<'_>> = Vec::new();
        let next = |params: &mut Vec<Param<'_>>| first + params.len();
        // One value is compared with `=`, not `= ANY`: PostgreSQL (before
        // 17) reads a btree index in order only for `=`, so `pubkey =
        // ANY('{x}') ORDER BY created_at DESC LIMIT 50` walks the whole
        // `created_at` index filtering by author (or fetches every event of
        // the author and sorts them) where `pubkey = x` reads 50 entries of
        // `(pubkey, created_at)`.
        if let Some(ids) = &self.id_params {
            sql.push(one_of(
                "e.id",
                ids,
                Type::BYTEA,
                Type::BYTEA_ARRAY,
                &mut params,
                first,
            ));
        }
        if let Some(authors) = &self.author_params {
            sql.push(one_of(
                "e.pubkey",
                authors,
                Type::BYTEA,
                Type::BYTEA_ARRAY,
                &mut params,
                first,
            ));
        }
        if let Some(kinds) = &self.kinds {
            sql.push(one_of(
                "e.kind",
                kinds,
                Type::INT4,
                Type::INT4_ARRAY,
                &mut params,
                first,
            ));
        }
        for values in &self.tags {
            sql.push(format!("e.tagvalues && ${}", next(&mut params)));
            params.push((values, Type::TEXT_ARRAY));
        }
        if let Some(since) = &self.since {
            sql.push(format!("e.created_at >= ${}", next(&mut params)));
            params.push((since, Type::INT8));
        }
        if let Some(until) = &self.until {
            sql.push(format!("e.created_at <= ${}", next(&mut params)));
            params.push((until, Type::INT8));
        }
        let sql = if sql.is_empty() {
            "true".to_owned()
        } else {
            sql.join(" AND ")
        };
        (sql, params)
    }

    /// The newest `limit` matching events, newest first (ties by id), with
    /// the columns of [`EVENT_BY_ID`]; but an event whose tags and content
    /// together pass [`INLINE_BYTES`] comes with `tags`, `content` and
    /// `content_raw` NULL, to be read on its own ([`EVENT_BY_ID`]): a
    /// connection holds at most `limit` small events and one large one,
    /// however large the archive's events are.
    pub(crate) fn events_query<'a>(&'a self, limit: &'a i64) -> (String, Vec<Param<'a>>) {
        let (predicates, mut params) = self.predicates(1);
        let small = format!(
            "octet_length(e.content) + pg_column_size(e.tags) \
             + coalesce(octet_length(e.tags_raw), 0) + coalesce(octet_length(e.content_raw), 0) \
             <= {INLINE_BYTES}"
        );
        let sql = format!(
            "SELECT e.id, e.pubkey, e.created_at, e.kind, \
             CASE WHEN {small} THEN coalesce(convert_from(e.tags_raw, 'UTF8'), e.tags::text) END, \
             CASE WHEN {small} THEN e.content END, CASE WHEN {small} THEN e.content_raw END, e.sig \
             FROM events AS e WHERE {predicates} ORDER BY e.created_at DESC, e.id LIMIT ${}",
            params.len() + 1
        );
        params.push((limit, Type::INT8));
        (sql, params)
    }

    /// The number of matching events.
    pub(crate) fn count_query(&self) -> (String, Vec<Param<'_>>) {
        let (predicates, params) = self.predicates(1);
        (
            format!("SELECT count(*) FROM events AS e WHERE {predicates}"),
            params,
        )
    }

    /// `(created_at, id)` of up to `limit` matching events, newest first,
    /// after `after` when given: one page of the items of a negentropy
    /// reconciliation.
    pub(crate) fn negentropy_query<'a>(
        &'a self,
        after: Option<&'a (i64, Vec<u8>)>,
        limit: &'a i64,
    ) -> (String, Vec<Param<'a>>) {
        let (mut predicates, mut params) = self.predicates(1);
        if let Some((created_at, id)) = after {
            let (c, i) = (params.len() + 1, params.len() + 2);
            predicates.push_str(&format!(
                " AND e.created_at <= ${c} AND (e.created_at < ${c} OR e.id > ${i})"
            ));
            params.push((created_at, Type::INT8));
            params.push((id, Type::BYTEA));
        }
        let sql = format!(
            "SELECT e.created_at, e.id FROM events AS e WHERE {predicates} \
             ORDER BY e.created_at DESC, e.id LIMIT ${}",
            params.len() + 1
        );
        params.push((limit, Type::INT8));
        (sql, params)
    }

    /// Whether an event archived after `EOSE` matches, by the same rules as
    /// the SQL (tags through `tagvalues`); `limit` does not apply.
    pub(crate) fn matches(&self, event: &LiveEvent) -> bool {
        self.ids
            .as_ref()
            .is_none_or(|ids| ids.binary_search(&event.id).is_ok())
            && self
                .authors
                .as_ref()
                .is_none_or(|authors| authors.binary_search(&event.pubkey).is_ok())
            && self
                .kinds
                .as_ref()
                .is_none_or(|kinds| kinds.binary_search(&event.kind).is_ok())
            && self.since.is_none_or(|since| event.created_at >= since)
            && self.until.is_none_or(|until| event.created_at <= until)
            && self.tags.iter().all(|values| {
                event
                    .tagvalues
                    .iter()
                    .any(|value| values.binary_search(value).is_ok())
            })
    }
}

/// `column = $n` for one value, `column = ANY($n)` for several, with its
/// parameter pushed onto `params` (numbered from `first`).
// A `Vec` rather than a slice: the array parameter is the `Vec` itself.
#[allow(clippy::ptr_arg)]
fn one_of<'a, T: bigbrotr_pool::ToSql + Sync>(
    column: &str,
    values: &'a Vec<T>,
    one: Type,
    many: Type,
    params: &mut Vec<Param<'a>>,
    first: usize,
) -> String {
    let number = first + params.len();
    if let [value] = values.as_slice() {
        params.push((value, one));
        format!("{column} = ${number}")
    } else {
        params.push((values, many));
        format!("{column} = ANY(${number})")
    }
}

/// An event archived after some subscription's `EOSE`: what filters match
/// on, and the event's JSON as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveEvent {
    pub(crate) id: [u8; 32],
    pub(crate) pubkey: [u8; 32],
    pub(crate) created_at: i64,
    pub(crate) kind: i32,
    pub(crate) tagvalues: Vec<String>,
    /// The event object, exactly as [`event_json`] writes it.
    pub(crate) json: String,
}

/// A Unix time as the database stores it.
fn timestamp(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Why a stored row cannot be written as an event.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadRow {
    /// A key, id or signature of the wrong length.
    #[error("{column} is {found} bytes, not {expected}")]
    Length {
        column: &'static str,
        found: usize,
        expected: usize,
    },
    /// `content_raw` that is not UTF-8.
    #[error("content_raw is not UTF-8")]
    Content,
}

/// The columns of a stored event, as [`EVENT_BY_ID`] reads them.
pub(crate) struct StoredColumns<'a> {
    pub(crate) id: &'a [u8],
    pub(crate) pubkey: &'a [u8],
    pub(crate) created_at: i64,
    pub(crate) kind: i32,
    /// The tags array as JSON text.
    pub(crate) tags: &'a str,
    pub(crate) content: &'a str,
    pub(crate) content_raw: Option<&'a [u8]>,
    pub(crate) sig: &'a [u8],
}

/// The event object of `columns`, as signed: `tags` is the stored JSON text
/// (the exact original when `tags_raw` was set), `content` the original
/// (`content_raw` when set), so the event verifies.
pub(crate) fn event_json(columns: &StoredColumns<'_>) -> Result<String, BadRow> {
    let check = |column: &'static str, bytes: &[u8], expected: usize| {
        if bytes.len() == expected {
            Ok(())
        } else {
            Err(BadRow::Length {
                column,
                found: bytes.len(),
                expected,
            })
        }
    };
    check("id", columns.id, 32)?;
    check("pubkey", columns.pubkey, 32)?;
    check("sig", columns.sig, 64)?;
    let content = match columns.content_raw {
        Some(raw) => std::str::from_utf8(raw).map_err(|_| BadRow::Content)?,
        None => columns.content,
    };
    let mut out = String::with_capacity(300 + columns.tags.len() + content.len() * 11 / 10);
    out.push_str("{\"id\":\"");
    out.push_str(&hex::encode(columns.id));
    out.push_str("\",\"pubkey\":\"");
    out.push_str(&hex::encode(columns.pubkey));
    out.push_str("\",\"created_at\":");
    out.push_str(&columns.created_at.to_string());
    out.push_str(",\"kind\":");
    out.push_str(&columns.kind.to_string());
    out.push_str(",\"tags\":");
    out.push_str(columns.tags);
    out.push_str(",\"content\":");
    // Writing a str as JSON cannot fail.
    out.push_str(&serde_json::to_string(content).unwrap_or_default());
    out.push_str(",\"sig\":\"");
    out.push_str(&hex::encode(columns.sig));
    out.push_str("\"}");
    Ok(out)
}

#[cfg(test)]
mod explain;

#[cfg(test)]
mod tests {
    use nostr::{EventBuilder, JsonUtil, Keys, Kind, Tag};

    use super::*;

    fn conditions(json: &str) -> Result<Option<Conditions>, Refusal> {
        Conditions::of(
            &Filter::from_json(json).expect("filter"),
            &RelayConfig::default(),
        )
    }

    #[test]
    fn each_field_becomes_one_predicate_with_a_typed_parameter() {
        let id = "a".repeat(64);
        let text = format!(
            r##"{{"ids":["{id}"],"authors":["{id}"],"kinds":[1,7],"#p":["x"],"#t":["a","b"],"since":10,"until":20,"limit":5}}"##
        );
        let conditions = conditions(&text).expect("valid").expect("matches some");
        let limit = conditions.history_limit(&RelayConfig::default());
        assert_eq!(limit, 5);
        let (sql, params) = conditions.events_query(&limit);
        assert!(
            sql.ends_with(
                "WHERE e.id = $1 AND e.pubkey = $2 AND e.kind = ANY($3) \
                 AND e.tagvalues && $4 AND e.tagvalues && $5 AND e.created_at >= $6 \
                 AND e.created_at <= $7 ORDER BY e.created_at DESC, e.id LIMIT $8"
            ),
            "{sql}"
        );
        assert!(sql.contains("<= 16384 THEN e.content END"), "{sql}");
        assert_eq!(params.len(), 8);
        assert_eq!(conditions.tags, [vec!["p:x"], vec!["t:a", "t:b"]]);
        let (count, params) = conditions.count_query();
        assert!(count.starts_with("SELECT count(*) FROM events AS e WHERE e.id"));
        assert_eq!(params.len(), 7);
    }

    #[test]
    fn an_empty_filter_reads_everything_and_the_limit_is_bounded() {
        let config = RelayConfig::default();
        let all = conditions("{}").expect("valid").expect("matches");
        assert_eq!(all.history_limit(&config), 100);
        let (sql, params) = all.events_query(&100);
        assert!(sql.contains("WHERE true ORDER BY"), "{sql}");
        assert_eq!(params.len(), 1);
        let many = conditions(r#"{"limit":100000}"#)
            .expect("valid")
            .expect("matches");
        assert_eq!(many.history_limit(&config), 500);
        let none = conditions(r#"{"limit":0}"#)
            .expect("valid")
            .expect("matches");
        assert_eq!(none.history_limit(&config), 0);
    }

    #[test]
    fn a_filter_that_can_match_nothing_is_none() {
        for json in [
            r#"{"ids":[]}"#,
            r#"{"kinds":[]}"#,
            r#"{"since":20,"until":10}"#,
            &format!(r##"{{"#t":["{}"]}}"##, "x".repeat(257)),
        ] {
            assert_eq!(conditions(json), Ok(None), "{json}");
        }
    }

    #[test]
    fn search_and_too_many_values_are_refused_with_a_reason() {
        assert_eq!(
            conditions(r#"{"search":"nostr"}"#).map(|_| ()),
            Err(Refusal::Search)
        );
        let kinds: Vec<String> = (0..1001).map(|k| k.to_string()).collect();
        let refusal =
            conditions(&format!(r#"{{"kinds":[{}]}}"#, kinds.join(","))).expect_err("too many");
        assert_eq!(
            refusal.to_string(),
            "blocked: a filter lists more than 1000 kinds"
        );
    }

    #[test]
    fn an_event_matches_in_memory_as_in_the_database() {
        let keys = Keys::generate();
        let event = EventBuilder::new(Kind::TextNote, "hi")
            .tags([Tag::parse(["t", "nostr"]).expect("tag")])
            .sign_with_keys(&keys)
            .expect("signed");
        let live = LiveEvent {
            id: event.id.to_bytes(),
            pubkey: keys.public_key().to_bytes(),
            created_at: event.created_at.as_secs() as i64,
            kind: 1,
            tagvalues: vec!["t:nostr".to_owned()],
            json: event.as_json(),
        };
        let author = keys.public_key().to_hex();
        let matching = [
            "{}".to_owned(),
            format!(r#"{{"authors":["{author}"],"kinds":[0,1]}}"#),
            r##"{"#t":["nostr","other"]}"##.to_owned(),
            format!(r#"{{"ids":["{}"],"since":1}}"#, event.id.to_hex()),
        ];
        for json in matching {
            let conditions = conditions(&json).expect("valid").expect("some");
            assert!(conditions.matches(&live), "{json}");
        }
        let other = [
            r#"{"kinds":[7]}"#.to_owned(),
            r##"{"#t":["other"]}"##.to_owned(),
            r##"{"#p":["nostr"]}"##.to_owned(),
            r#"{"until":1}"#.to_owned(),
            format!(r#"{{"authors":["{}"]}}"#, "b".repeat(64)),
        ];
        for json in other {
            let conditions = conditions(&json).expect("valid").expect("some");
            assert!(!conditions.matches(&live), "{json}");
        }
    }

    #[test]
    fn an_event_is_written_as_signed_and_verifies() {
        let keys = Keys::generate();
        let content = "nul \u{0} quote \" backslash \\ line\nend é";
        let event = EventBuilder::new(Kind::TextNote, content)
            .tags([Tag::parse(["t", "a\u{0}b"]).expect("tag")])
            .sign_with_keys(&keys)
            .expect("signed");
        let tags = serde_json::to_string(&event.tags).expect("tags");
        let columns = StoredColumns {
            id: event.id.as_bytes(),
            pubkey: &keys.public_key().to_bytes(),
            created_at: event.created_at.as_secs() as i64,
            kind: 1,
            tags: &tags,
            content: "replaced",
            content_raw: Some(content.as_bytes()),
            sig: event.sig.as_ref(),
        };
        let json = event_json(&columns).expect("written");
        let read = nostr::Event::from_json(&json).expect("parsed");
        read.verify().expect("verifies");
        assert_eq!(read, event);
        let short = StoredColumns {
            sig: &[0; 3],
            ..columns
        };
        assert_eq!(
            event_json(&short).expect_err("short").to_string(),
            "sig is 3 bytes, not 64"
        );
    }
}
