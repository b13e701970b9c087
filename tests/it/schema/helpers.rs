//! Helpers of the schema tests: synthetic events, relays and relay checks,
//! and thin wrappers around the functions of the SQL contract.

use serde_json::{json, Value};
use tokio_postgres::types::Type;
use tokio_postgres::Client;

/// Whether the implementation stores tags and content (`lilbrotr` does not).
pub(super) fn stores_content(implementation: &str) -> bool {
    implementation == "bigbrotr"
}

/// 32 bytes: `fill` repeated, ending with `n` big-endian.
pub(super) fn key32(fill: u8, n: u64) -> Vec<u8> {
    let mut key = vec![fill; 32];
    key[24..].copy_from_slice(&n.to_be_bytes());
    key
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An event as the application sends it to `insert_events`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Event {
    pub(super) id: Vec<u8>,
    pub(super) pubkey: Vec<u8>,
    pub(super) created_at: i64,
    pub(super) kind: i32,
    pub(super) tags: Value,
    pub(super) tags_raw: Option<Vec<u8>>,
    pub(super) content: String,
    pub(super) content_raw: Option<Vec<u8>>,
    pub(super) sig: Vec<u8>,
}

impl Event {
    /// A kind-1 note, unique per `n`.
    pub(super) fn note(n: u64) -> Self {
        let mut sig = key32(0x5a, n);
        sig.extend(key32(0xa5, n));
        Self {
            id: key32(0xee, n),
            pubkey: key32(0x99, n % 5),
            created_at: 1_700_000_000 + n as i64,
            kind: 1,
            tags: json!([]),
            tags_raw: None,
            content: format!("note {n}"),
            content_raw: None,
            sig,
        }
    }

    pub(super) fn with_tags(mut self, tags: Value) -> Self {
        self.tags = tags;
        self
    }

    pub(super) fn with_content(mut self, content: &str) -> Self {
        self.content = content.to_owned();
        self
    }

    /// What `get_event_by_id` returns for it in `implementation`.
    pub(super) fn as_stored_by(&self, implementation: &str) -> Self {
        if stores_content(implementation) {
            self.clone()
        } else {
            Self {
                tags: json!([]),
                tags_raw: None,
                content: String::new(),
                content_raw: None,
                ..self.clone()
            }
        }
    }
}

/// One sighting: the event, the relay id and when it was seen.
pub(super) type Sighting<'a> = (&'a Event, i32, i64);

pub(super) async fn insert_relays(
    client: &Client,
    relays: &[(&str, &str)],
    inserted_at: i64,
) -> Result<Vec<(i32, i32)>, tokio_postgres::Error> {
    let urls: Vec<&str> = relays.iter().map(|(url, _)| *url).collect();
    let networks: Vec<&str> = relays.iter().map(|(_, network)| *network).collect();
    let rows = client
        .query_typed(
            "SELECT ord, relay_id FROM insert_relays($1, $2, $3)",
            &[
                (&urls, Type::TEXT_ARRAY),
                (&networks, Type::TEXT_ARRAY),
                (&inserted_at, Type::INT8),
            ],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Ids of `urls`, inserted as clearnet relays, in order.
pub(super) async fn relay_ids(client: &Client, urls: &[&str]) -> Vec<i32> {
    let relays: Vec<(&str, &str)> = urls.iter().map(|url| (*url, "clearnet")).collect();
    insert_relays(client, &relays, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect()
}

pub(super) async fn insert_events(
    client: &Client,
    batch: &[Sighting<'_>],
) -> Result<(i64, i64), tokio_postgres::Error> {
    insert_events_with_tagvalues(client, batch, None).await
}

/// `insert_events` with the tag values given by the caller, as (values,
/// 1-based ordinal of the event each belongs to); `None` leaves them to
/// the database.
pub(super) async fn insert_events_with_tagvalues(
    client: &Client,
    batch: &[Sighting<'_>],
    tagvalues: Option<(&[&str], &[i32])>,
) -> Result<(i64, i64), tokio_postgres::Error> {
    let (values, owners) = tagvalues.unzip();
    let ids: Vec<&[u8]> = batch.iter().map(|(e, _, _)| e.id.as_slice()).collect();
    let pubkeys: Vec<&[u8]> = batch.iter().map(|(e, _, _)| e.pubkey.as_slice()).collect();
    let created_at: Vec<i64> = batch.iter().map(|(e, _, _)| e.created_at).collect();
    let kinds: Vec<i32> = batch.iter().map(|(e, _, _)| e.kind).collect();
    let tags: Vec<&Value> = batch.iter().map(|(e, _, _)| &e.tags).collect();
    let tags_raw: Vec<Option<&[u8]>> = batch
        .iter()
        .map(|(e, _, _)| e.tags_raw.as_deref())
        .collect();
    let contents: Vec<&str> = batch.iter().map(|(e, _, _)| e.content.as_str()).collect();
    let contents_raw: Vec<Option<&[u8]>> = batch
        .iter()
        .map(|(e, _, _)| e.content_raw.as_deref())
        .collect();
    let sigs: Vec<&[u8]> = batch.iter().map(|(e, _, _)| e.sig.as_slice()).collect();
    let relay_ids: Vec<i32> = batch.iter().map(|(_, relay, _)| *relay).collect();
    let seen_at: Vec<i64> = batch.iter().map(|(_, _, seen)| *seen).collect();
    let row = client
        .query_typed_one(
            "SELECT events_inserted, relations_inserted \
             FROM insert_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                (&ids, Type::BYTEA_ARRAY),
                (&pubkeys, Type::BYTEA_ARRAY),
                (&created_at, Type::INT8_ARRAY),
                (&kinds, Type::INT4_ARRAY),
                (&tags, Type::JSONB_ARRAY),
                (&tags_raw, Type::BYTEA_ARRAY),
                (&contents, Type::TEXT_ARRAY),
                (&contents_raw, Type::BYTEA_ARRAY),
                (&sigs, Type::BYTEA_ARRAY),
                (&relay_ids, Type::INT4_ARRAY),
                (&seen_at, Type::INT8_ARRAY),
                (&values, Type::TEXT_ARRAY),
                (&owners, Type::INT4_ARRAY),
            ],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

pub(super) async fn get_event(client: &Client, id: &[u8]) -> Option<Event> {
    let row = client
        .query_typed_opt(
            "SELECT id, pubkey, created_at, kind, tags, tags_raw, content, content_raw, sig \
             FROM get_event_by_id($1)",
            &[(&id, Type::BYTEA)],
        )
        .await
        .unwrap()?;
    Some(Event {
        id: row.get(0),
        pubkey: row.get(1),
        created_at: row.get(2),
        kind: row.get(3),
        tags: row.get(4),
        tags_raw: row.get(5),
        content: row.get(6),
        content_raw: row.get(7),
        sig: row.get(8),
    })
}

/// The event reads back as `implementation` stores it (compared without
/// printing: some are half a megabyte).
pub(super) async fn assert_reads_back(client: &Client, implementation: &str, event: &Event) {
    let stored = get_event(client, &event.id)
        .await
        .unwrap_or_else(|| panic!("event {} is not archived", hex(&event.id)));
    assert!(
        stored == event.as_stored_by(implementation),
        "event {} reads back differently",
        hex(&event.id)
    );
}

pub(super) async fn event_exists(client: &Client, id: &[u8]) -> bool {
    client
        .query_typed_one("SELECT event_exists($1)", &[(&id, Type::BYTEA)])
        .await
        .unwrap()
        .get(0)
}

pub(super) async fn tagvalues(client: &Client, id: &[u8]) -> Vec<String> {
    client
        .query_typed_one(
            "SELECT tagvalues FROM events WHERE id = $1",
            &[(&id, Type::BYTEA)],
        )
        .await
        .unwrap()
        .get(0)
}

/// Ids of the events whose tagvalues contain `value`, sorted.
pub(super) async fn events_tagged(client: &Client, value: &str) -> Vec<Vec<u8>> {
    let rows = client
        .query_typed(
            "SELECT id FROM events WHERE tagvalues @> ARRAY[$1] ORDER BY id",
            &[(&value, Type::TEXT)],
        )
        .await
        .unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

/// `SELECT count(*) FROM <table>`.
pub(super) async fn count(client: &Client, table: &str) -> i64 {
    client
        .query_typed_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// A relay check as `insert_relay_metadata` takes it.
pub(super) struct Check {
    relay_id: i32,
    generated_at: i64,
    connected: bool,
    nip11: Option<(Vec<u8>, Value)>,
    nip66: Option<(Vec<u8>, Value)>,
}

impl Check {
    pub(super) fn new(relay_id: i32, generated_at: i64, connected: bool) -> Self {
        Self {
            relay_id,
            generated_at,
            connected,
            nip11: None,
            nip66: None,
        }
    }

    pub(super) fn nip11(mut self, doc: &(Vec<u8>, Value)) -> Self {
        self.nip11 = Some(doc.clone());
        self
    }

    pub(super) fn nip66(mut self, doc: &(Vec<u8>, Value)) -> Self {
        self.nip66 = Some(doc.clone());
        self
    }
}

/// A document and a stand-in for its hash (the application computes the
/// real one; the SQL takes it as given).
pub(super) fn document(fill: u8, n: u64) -> (Vec<u8>, Value) {
    (
        key32(fill, n),
        json!({"name": format!("document {n}"), "supported_nips": [1, 11, n]}),
    )
}

pub(super) async fn insert_relay_metadata(
    client: &Client,
    checks: &[Check],
) -> Result<i64, tokio_postgres::Error> {
    let relay_ids: Vec<i32> = checks.iter().map(|c| c.relay_id).collect();
    let generated_at: Vec<i64> = checks.iter().map(|c| c.generated_at).collect();
    let connected: Vec<bool> = checks.iter().map(|c| c.connected).collect();
    let nip11_ids: Vec<Option<&[u8]>> = checks
        .iter()
        .map(|c| c.nip11.as_ref().map(|(id, _)| id.as_slice()))
        .collect();
    let nip11_data: Vec<Option<&Value>> = checks
        .iter()
        .map(|c| c.nip11.as_ref().map(|(_, data)| data))
        .collect();
    let nip66_ids: Vec<Option<&[u8]>> = checks
        .iter()
        .map(|c| c.nip66.as_ref().map(|(id, _)| id.as_slice()))
        .collect();
    let nip66_data: Vec<Option<&Value>> = checks
        .iter()
        .map(|c| c.nip66.as_ref().map(|(_, data)| data))
        .collect();
    let row = client
        .query_typed_one(
            "SELECT insert_relay_metadata($1, $2, $3, $4, $5, $6, $7)",
            &[
                (&relay_ids, Type::INT4_ARRAY),
                (&generated_at, Type::INT8_ARRAY),
                (&connected, Type::BOOL_ARRAY),
                (&nip11_ids, Type::BYTEA_ARRAY),
                (&nip11_data, Type::JSONB_ARRAY),
                (&nip66_ids, Type::BYTEA_ARRAY),
                (&nip66_data, Type::JSONB_ARRAY),
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// `SELECT <function>(limit)` for a `delete_orphan_*` function.
pub(super) async fn delete_orphans(
    client: &Client,
    function: &str,
    limit: i32,
) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_typed_one(&format!("SELECT {function}($1)"), &[(&limit, Type::INT4)])
        .await?;
    Ok(row.get(0))
}
