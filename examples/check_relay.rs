//! Example 5: check a relay's NIP-11 document and NIP-66 health with the
//! monitor's API, and store the result.
//!
//! ```sh
//! cargo run --example check_relay                           # an in-process relay
//! cargo run --example check_relay -- wss://relay.damus.io
//! ```
//!
//! A [`Monitor`] is built from the implementation's
//! `config/services/monitor.yaml` (its timeouts, checks and proof-of-work
//! limit) with the key of `MONITOR_PRIVATE_KEY`, or a new one, connecting
//! through the egress policy of `config/core/egress.yaml` (which refuses
//! loopback and private addresses: the in-process relay's address is added
//! to its exceptions with `BIGBROTR_EGRESS__ALLOW`).
//! [`Monitor::check_relay`] fetches the NIP-11 document and times the NIP-66
//! open, read and write checks (the write check publishes a kind 30078 event
//! that expires after an hour, and reads it back). [`check_and_store`]
//! stores the check as `bigbrotr run monitor` does: the relay, then one
//! `relay_metadata` row with both documents
//! ([`Brotr::insert_relay_metadata`]). Without a URL an in-process relay on
//! 127.0.0.1 is checked; it serves no NIP-11 document.

use anyhow::Context as _;
use bigbrotr_brotr::Brotr;
use bigbrotr_config::{Env, Implementation};
use bigbrotr_examples::{InProcessRelay, POOL_CLOSE_GRACE};
use bigbrotr_monitor::{Monitor, MonitorFile, RelayCheck};
use bigbrotr_service_runtime::{load_egress_file, service_keys, Egress};

/// The monitor of `implementation`, configured by its
/// `config/services/monitor.yaml`, connecting through the egress policy of
/// its `config/core/egress.yaml`, as `bigbrotr run monitor` does.
fn monitor(implementation: &Implementation, env: &Env) -> anyhow::Result<Monitor> {
    let file: MonitorFile = implementation
        .load("services", "monitor", env)
        .context("loading config/services/monitor.yaml")?;
    let keys = service_keys(env, &file.monitor.keys_env, "monitor")?;
    let egress = load_egress_file(implementation, env)?;
    Ok(Monitor::new(&file.monitor, &file.nostr, keys)?
        .with_egress(Egress::new(egress.egress.policy())))
}

/// `env` with the in-process relay at `url` (`ws://127.0.0.1:PORT`) as the
/// one exception to the egress policy.
fn allowing(env: &Env, url: &str) -> Env {
    let address = url.trim_start_matches("ws://").trim_end_matches('/');
    bigbrotr_examples::with_var(env, "BIGBROTR_EGRESS__ALLOW", &format!("[{address}]"))
}

/// Checks the relay at `relay_url` and stores the check. Returns the check
/// and whether it was stored (a relay has at most one check per second).
async fn check_and_store(
    brotr: &Brotr,
    monitor: &Monitor,
    relay_url: &str,
) -> anyhow::Result<(RelayCheck, bool)> {
    // Never fails: what went wrong is part of the check, and stored too.
    let check = monitor.check_relay(relay_url).await;
    let relay = brotr
        .insert_relay(&check.url, check.generated_at)
        .await
        .with_context(|| format!("recording relay `{}`", check.url))?;
    let stored = brotr
        .insert_relay_metadata(
            relay,
            check.nip11.clone(),
            check.nip66(),
            check.connected,
            check.generated_at,
        )
        .await
        .context("storing the check")?;
    Ok((check, stored))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Kept until the end: the in-process relay stops when dropped.
    let (url, _local_relay) = match std::env::args().nth(1) {
        Some(url) => (url, None),
        None => {
            let relay = InProcessRelay::start(&[]).await?;
            (relay.url().to_owned(), Some(relay))
        }
    };
    let (implementation, env) = bigbrotr_examples::implementation(Env::from_process())?;
    let env = match &_local_relay {
        Some(_) => allowing(&env, &url),
        None => env,
    };
    let monitor = monitor(&implementation, &env)?;
    let brotr =
        bigbrotr_examples::open_archive(&implementation, &env, "bigbrotr-example-check").await?;
    let result = check_and_store(&brotr, &monitor, &url).await;
    brotr.pool().disconnect(POOL_CLOSE_GRACE).await;
    let (check, stored) = result?;
    println!(
        "{}: connected {}, readable {}, writable {}; check {}",
        check.url,
        check.connected,
        check.readable(),
        check.writable(),
        if stored { "stored" } else { "already stored" }
    );
    match &check.nip11 {
        Some(nip11) => println!("NIP-11: {nip11}"),
        None => println!("NIP-11: none"),
    }
    match check.nip66() {
        Some(nip66) => println!("NIP-66: {nip66}"),
        None => println!("NIP-66: none ({})", check.open_error.unwrap_or_default()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bigbrotr_examples::testing::{fresh_database, scalar};
    use bigbrotr_examples::with_var;

    use super::*;

    #[tokio::test]
    async fn a_reachable_relay_is_stored_readable_and_writable_and_an_unreachable_one_as_failed() {
        let (db, implementation, env) = fresh_database().await;
        // Not the key of whoever runs the tests.
        let env = with_var(&env, "MONITOR_PRIVATE_KEY", "");
        let brotr = bigbrotr_examples::open_archive(&implementation, &env, "test")
            .await
            .unwrap();
        let relay = InProcessRelay::start(&[]).await.unwrap();
        // The shipped policy refuses loopback: a monitor without the
        // exception stores the relay refused, and never connects.
        let strict = monitor(&implementation, &env).unwrap();
        let refused = strict.check_relay(relay.url()).await;
        assert!(!refused.connected);
        assert!(refused.egress_denied.is_some(), "{refused:?}");
        let env = with_var(&env, "BIGBROTR_EGRESS__ALLOW", "[127.0.0.1/32]");
        let monitor = monitor(&implementation, &env).unwrap();

        let (check, stored) = check_and_store(&brotr, &monitor, relay.url())
            .await
            .unwrap();
        assert!(stored);
        assert!(check.connected, "{check:?}");
        assert!(check.readable(), "{check:?}");
        assert!(check.writable(), "{check:?}");
        assert_eq!(
            check.nip11, None,
            "the in-process relay has no NIP-11 document"
        );
        assert_eq!(
            scalar(
                &db,
                "SELECT count(*) FROM relay_metadata_latest \
                 WHERE connected AND (nip66_data->>'readable')::boolean \
                 AND (nip66_data->>'writable')::boolean AND nip11_id IS NULL"
            )
            .await,
            1
        );

        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (check, stored) = check_and_store(&brotr, &monitor, &format!("ws://127.0.0.1:{port}"))
            .await
            .unwrap();
        assert!(stored);
        assert!(!check.connected);
        assert_eq!(check.nip66(), None);
        assert_eq!(
            scalar(
                &db,
                "SELECT count(*) FROM relay_metadata WHERE NOT connected AND nip66_id IS NULL"
            )
            .await,
            1
        );
        brotr.pool().disconnect(POOL_CLOSE_GRACE).await;
    }
}
