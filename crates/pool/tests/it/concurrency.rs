//! Many tasks sharing one pool through PgBouncer.

use std::time::Duration;

use bigbrotr_config::PoolConfig;
use bigbrotr_pool::{Error, Type};

use crate::support::{delta, fast_retry, fixture_with, pool_config, Delta};

const TASKS: i64 = 64;
const ROUNDS: i64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_share_the_pool_without_a_single_failure() {
    let pool_cfg = PoolConfig {
        timeout: Duration::from_secs(10),
        ..pool_config(8)
    };
    let f = fixture_with(pool_cfg, fast_retry(3)).await;
    f.pool
        .batch_execute(
            "CREATE TABLE hit (task int8 NOT NULL, round int8 NOT NULL, PRIMARY KEY (task, round))",
        )
        .await
        .expect("create");
    let before = f.pool.stats();

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let pool = f.pool.clone();
        tasks.spawn(async move {
            for round in 0..ROUNDS {
                let n = pool
                    .execute_idempotent(
                        "INSERT INTO hit (task, round) VALUES ($1, $2)",
                        &[(&task, Type::INT8), (&round, Type::INT8)],
                    )
                    .await?;
                assert_eq!(n, 1);
                let echoed: i64 = pool
                    .fetch_one(
                        "SELECT $1::int8 * 1000 + $2::int8",
                        &[(&task, Type::INT8), (&round, Type::INT8)],
                    )
                    .await?
                    .get(0);
                assert_eq!(echoed, task * 1000 + round);
            }
            pool.transaction(|tx| {
                Box::pin(async move {
                    tx.execute(
                        "DELETE FROM hit WHERE task = $1 AND round = 0",
                        &[(&task, Type::INT8)],
                    )
                    .await?;
                    let left: i64 = tx
                        .fetch_one(
                            "SELECT count(*) FROM hit WHERE task = $1",
                            &[(&task, Type::INT8)],
                        )
                        .await?
                        .get(0);
                    assert_eq!(left, ROUNDS - 1);
                    Ok::<_, Error>(())
                })
            })
            .await
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Err(error) = joined.expect("task did not panic") {
            failures.push(error.to_string());
        }
    }

    assert_eq!(failures, Vec::<String>::new());
    let per_task = u64::try_from(ROUNDS * 2 + 4).expect("small");
    assert_eq!(
        delta(before, f.pool.stats()),
        Delta {
            calls: u64::try_from(TASKS).expect("small") * per_task,
            ..Delta::default()
        }
    );
    let total: i64 = f
        .pool
        .fetch_one("SELECT count(*) FROM hit", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(total, TASKS * (ROUNDS - 1));
    let stats = f.pool.stats();
    assert!(
        stats.size <= 8 && stats.in_use == 0 && stats.waiting == 0,
        "{stats:?}"
    );
}
