//! Example 3: a service of your own on the BigBrotr runtime.
//!
//! ```sh
//! cargo run --example custom_service
//! ```
//!
//! [`EventCounter`] is a [`LoopService`]: at each iteration it counts the
//! archived events and shows the count as the gauge
//! `bigbrotr_example_archived_events`, next to what the runtime measures
//! itself (iterations, errors, durations, the pool). [`run_once`] connects
//! as `bigbrotr run` does and runs one iteration, as `--once` does.
//!
//! In a program of your own, register it and give it a file
//! `implementations/<name>/config/services/event_counter.yaml` (the sections
//! `service`, `loop` and `nostr`): `run_services` with
//! `ServiceRegistry::new().register::<EventCounter>()` then runs it by name
//! like the shipped services, with `/health`, `/status` and `/metrics`
//! (see `crates/service-runtime/README.md`).

use anyhow::Context as _;
use bigbrotr_config::{Env, Implementation};
use bigbrotr_service_runtime::{
    CancellationToken, Gauge, LoopService, RunReport, Runtime, ServiceContext,
};

// ---- The service -------------------------------------------------------

bigbrotr_service_runtime::service_file! {
    /// The file of the service: the sections every service has, nothing else.
    struct EventCounterFile {}
}

/// Counts the archived events at each iteration.
struct EventCounter {
    /// `bigbrotr_example_archived_events{service="event_counter"}`.
    archived: Gauge,
}

impl LoopService for EventCounter {
    const NAME: &'static str = "event_counter";
    type Config = EventCounterFile;

    fn build(ctx: &ServiceContext<EventCounterFile>) -> anyhow::Result<Self> {
        let archived = ctx.metrics().gauge(
            "example_archived_events",
            "Events in the archive at the last iteration.",
            &[],
        );
        Ok(Self { archived })
    }

    async fn loop_iteration(
        &mut self,
        ctx: &ServiceContext<EventCounterFile>,
        _cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let row = ctx
            .brotr()
            .pool()
            .fetch_one("SELECT count(*) FROM events", &[])
            .await
            .context("counting the archived events")?;
        let count: i64 = row.get(0);
        self.archived.set(count as f64);
        Ok(())
    }
}

// ---- Running it --------------------------------------------------------

/// Runs [`EventCounter`] on `implementation` for one iteration: the pool,
/// archive and runtime settings of its `config/core/*.yaml` (as `bigbrotr
/// run` loads them), the schema ensured, then the service until it stops.
/// Returns how it ended and the `/metrics` text at its end.
async fn run_once(
    implementation: &Implementation,
    env: &Env,
) -> anyhow::Result<(RunReport, String)> {
    let mut runtime = Runtime::connect(implementation, env, "bigbrotr-example-service").await?;
    let schema =
        bigbrotr_brotr::apply_schema(runtime.brotr().pool(), &implementation.sql_dir()).await;
    if let Err(error) = schema {
        runtime.shutdown().await;
        return Err(error).context("applying the schema");
    }
    let mut file = EventCounterFile::default();
    // What `--once` does to every service's `loop` section.
    file.looping.max_iterations = 1;
    runtime.start::<EventCounter>(file);
    runtime.wait().await;
    let metrics = runtime.state().render_metrics();
    Ok((runtime.shutdown().await, metrics))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (implementation, env) = bigbrotr_examples::implementation(Env::from_process())?;
    let (report, metrics) = run_once(&implementation, &env).await?;
    println!("{report}");
    for line in metrics
        .lines()
        .filter(|line| line.contains("event_counter"))
    {
        println!("{line}");
    }
    anyhow::ensure!(report.is_success(), "the service failed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use bigbrotr_examples::testing::fresh_database;
    use bigbrotr_examples::POOL_CLOSE_GRACE;
    use nostr::{EventBuilder, Keys};

    use super::*;

    #[tokio::test]
    async fn one_iteration_counts_the_archived_events_into_its_gauge() {
        let (_db, implementation, env) = fresh_database().await;
        let brotr = bigbrotr_examples::open_archive(&implementation, &env, "test")
            .await
            .unwrap();
        let relay = brotr
            .insert_relay("wss://relay.example.com", 1)
            .await
            .unwrap();
        let keys = Keys::generate();
        let events: Vec<_> = (0..3)
            .map(|i| {
                let note = EventBuilder::text_note(format!("note {i}"));
                (note.sign_with_keys(&keys).unwrap(), relay)
            })
            .collect();
        assert_eq!(
            brotr.insert_event_batch(&events, 1).await.unwrap().stored,
            3
        );
        brotr.pool().disconnect(POOL_CLOSE_GRACE).await;

        let (report, metrics) = run_once(&implementation, &env).await.unwrap();
        assert!(report.is_success(), "{report}");
        assert_eq!(report.services[0].name, "event_counter");
        assert_eq!(report.services[0].iterations, 1);
        assert!(
            metrics.contains("bigbrotr_example_archived_events{service=\"event_counter\"} 3.0\n"),
            "{metrics}"
        );
    }
}
