//! Relays: `insert_relays`.

use bigbrotr_test_support::TestDb;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use super::helpers::{count, insert_relays};

for_each_implementation!(insert_relays_returns_an_id_for_every_input_row_in_input_order);

async fn insert_relays_returns_an_id_for_every_input_row_in_input_order(implementation: &str) {
    let db = TestDb::new(implementation).await.unwrap();
    let client = db.client().await.unwrap();

    let first = insert_relays(
        &client,
        &[
            ("wss://a.example", "clearnet"),
            ("wss://b.example", "clearnet"),
        ],
        100,
    )
    .await
    .unwrap();
    assert_eq!(
        first.iter().map(|(ord, _)| *ord).collect::<Vec<_>>(),
        [1, 2]
    );
    let (a, b) = (first[0].1, first[1].1);
    assert_ne!(a, b);

    // New, existing and repeated URLs mixed: every row comes back, in order.
    let onion = "ws://2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";
    let second = insert_relays(
        &client,
        &[
            (onion, "tor"),
            ("wss://a.example", "clearnet"),
            ("wss://b.example", "clearnet"),
            (onion, "tor"),
            ("wss://a.example", "clearnet"),
        ],
        200,
    )
    .await
    .unwrap();
    let c = second[0].1;
    assert_eq!(second, [(1, c), (2, a), (3, b), (4, c), (5, a)]);
    assert!(c != a && c != b);
    assert_eq!(count(&client, "relays").await, 3);

    let relay = client
        .query_typed_one(
            "SELECT id, url, network, inserted_at FROM get_relay_by_url($1)",
            &[(&onion, Type::TEXT)],
        )
        .await
        .unwrap();
    assert_eq!(relay.get::<_, i32>(0), c);
    assert_eq!(relay.get::<_, &str>(1), onion);
    assert_eq!(relay.get::<_, &str>(2), "tor");
    assert_eq!(relay.get::<_, i64>(3), 200);
    // An existing relay keeps its first inserted_at.
    let a_row = client
        .query_typed_one(
            "SELECT inserted_at FROM get_relay_by_url('wss://a.example')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(a_row.get::<_, i64>(0), 100);
    for (url, exists) in [("wss://a.example", true), ("wss://nope.example", false)] {
        let row = client
            .query_typed_one("SELECT relay_exists($1)", &[(&url, Type::TEXT)])
            .await
            .unwrap();
        assert_eq!(row.get::<_, bool>(0), exists, "{url}");
    }

    assert!(insert_relays(&client, &[], 300).await.unwrap().is_empty());
    let mismatch = client
        .query_typed(
            "SELECT * FROM insert_relays(ARRAY['wss://x.example'], ARRAY[]::text[], 1)",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(mismatch.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
}
