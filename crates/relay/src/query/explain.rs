//! Every filter shape is read through an index: the statements of
//! [`Conditions`] explained by PostgreSQL on each implementation's schema.
//!
//! Sequential scans are disabled for the `EXPLAIN`: on a test database of a
//! few rows the planner rightly prefers reading the whole table, while on an
//! archive of millions only an index serves. What is checked is that an
//! index *can* serve each statement, that is, that its predicates and order
//! match one; a shape no index fits is planned as a sequential scan even so.

use bigbrotr_test_support::TestDb;
use nostr::{Filter, JsonUtil};
use serde_json::Value;

use super::{Conditions, EVENT_BY_ID};
use crate::config::RelayConfig;

/// The scans of `events` in a plan: `(node type, index name)`.
fn scans(plan: &Value, found: &mut Vec<(String, String)>) {
    if plan["Relation Name"] == "events" || plan["Index Name"].is_string() {
        found.push((
            plan["Node Type"].as_str().unwrap_or_default().to_owned(),
            plan["Index Name"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    if let Some(children) = plan["Plans"].as_array() {
        for child in children {
            scans(child, found);
        }
    }
}

/// The scans of `events` in the plan of `sql` with `params`.
async fn explain(
    db: &TestDb,
    sql: &str,
    params: &[bigbrotr_pool::Param<'_>],
) -> Vec<(String, String)> {
    let mut client = db.client().await.expect("client");
    let tx = client.transaction().await.expect("transaction");
    tx.batch_execute("SET LOCAL enable_seqscan = off")
        .await
        .expect("set");
    let rows = tx
        .query_typed(&format!("EXPLAIN (FORMAT JSON) {sql}"), params)
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"));
    let plan: Value = rows[0].get(0);
    let mut found = Vec::new();
    scans(&plan[0]["Plan"], &mut found);
    found
}

/// Each shape with the index that should serve it.
const SHAPES: [(&str, &str); 8] = [
    (
        r#"{"ids":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]}"#,
        "events_pkey",
    ),
    (
        r#"{"authors":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]}"#,
        "events_pubkey_created_at_idx",
    ),
    (r#"{"kinds":[1,7]}"#, "events_kind_created_at_idx"),
    (r##"{"#p":["x"]}"##, "events_tagvalues_idx"),
    (
        r##"{"#e":["x"],"#t":["y"],"since":1}"##,
        "events_tagvalues_idx",
    ),
    (r#"{"since":1,"until":2}"#, "events_created_at_id_idx"),
    (r#"{}"#, "events_created_at_id_idx"),
    (
        r#"{"authors":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],"kinds":[1]}"#,
        "events_",
    ),
];

/// Whether `found` reads `events` only through indexes, one of them named
/// like `index`.
fn indexed(found: &[(String, String)], index: &str) -> bool {
    !found.is_empty()
        && found.iter().all(|(node, _)| node != "Seq Scan")
        && found.iter().any(|(_, name)| name.starts_with(index))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_shape_reads_events_through_an_index() {
    let config = RelayConfig::default();
    for implementation in ["bigbrotr", "lilbrotr"] {
        let db = TestDb::new(implementation).await.expect("test database");
        for (json, index) in SHAPES {
            let filter = Filter::from_json(json).expect("filter");
            let conditions = Conditions::of(&filter, &config)
                .expect("valid")
                .expect("matches some");
            let limit = conditions.history_limit(&config);
            let after = (1_700_000_000, vec![0; 32]);
            // A later page of negentropy items may be read through the
            // `(created_at, id)` index from the page's start: any index will
            // do there.
            let mut statements = vec![
                (index, conditions.count_query()),
                (index, conditions.negentropy_query(None, &limit)),
                ("events_", conditions.negentropy_query(Some(&after), &limit)),
            ];
            // lilbrotr keeps no tags or content: it serves no events.
            if implementation == "bigbrotr" {
                statements.push((index, conditions.events_query(&limit)));
            }
            for (index, (sql, params)) in statements {
                let found = explain(&db, &sql, &params).await;
                assert!(
                    indexed(&found, index),
                    "{implementation}: {json} through {index}: {sql}: {found:?}"
                );
            }
        }
        if implementation == "bigbrotr" {
            // A large event, read on its own.
            let id = vec![0_u8; 32];
            let found = explain(&db, EVENT_BY_ID, &[(&id, bigbrotr_pool::Type::BYTEA)]).await;
            assert!(indexed(&found, "events_pkey"), "{found:?}");
        }
    }
}
