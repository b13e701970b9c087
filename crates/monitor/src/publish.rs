//! Publishing results as NIP-66 events: kind 30166 per relay reached, kind
//! 10166 announcing the monitor. `nostr` 0.44 has no NIP-66 types, so the
//! kinds and tags are built here.

use std::time::Duration;

use bigbrotr_brotr::Network;
use bigbrotr_service_runtime::{Egress, EgressTransport};
use bigbrotr_utils::{bounded_text, REMOTE_TEXT_MAX_BYTES};
use nostr::{Event, EventBuilder, Keys, Kind, Tag, TagKind, Timestamp};
use nostr_sdk::Client;

use crate::checker::{RelayCheck, TARGET};
use crate::config::MonitorConfig;
use crate::error::{Error, Result};
use crate::nip66::millis;

/// Kind of a NIP-66 relay discovery event: one per relay, replaced by the
/// next check (its `d` tag is the relay's URL).
pub const RELAY_DISCOVERY_KIND: u16 = 30166;

/// Kind of a NIP-66 monitor announcement: what the monitor checks, how
/// often, and with which timeouts.
pub const MONITOR_ANNOUNCEMENT_KIND: u16 = 10166;

fn custom(name: &str, values: &[&str]) -> Tag {
    Tag::custom(TagKind::custom(name.to_owned()), values.iter().copied())
}

/// The kind 30166 event of `check`, signed by `keys`, dated when the check
/// was made. Tags: `d` (the normalised URL), `n` (network), `rtt-open`,
/// `rtt-read` and `rtt-write` (milliseconds, those measured), one `N` per
/// NIP the relay's NIP-11 document lists, and `R auth` / `R pow` when the
/// relay asked for authentication or proof of work. The content is the
/// NIP-11 document as JSON, or empty.
pub fn relay_discovery_event(check: &RelayCheck, keys: &Keys) -> Result<Event> {
    let mut tags = vec![
        Tag::identifier(check.url.clone()),
        custom("n", &[check.network.as_str()]),
    ];
    let rtts = [
        ("rtt-open", check.rtt_open),
        ("rtt-read", check.read.as_ref().and_then(|p| p.rtt_ms)),
        ("rtt-write", check.write.as_ref().and_then(|p| p.rtt_ms)),
    ];
    for (name, rtt) in rtts {
        if let Some(rtt) = rtt {
            tags.push(custom(name, &[&rtt.to_string()]));
        }
    }
    for nip in check.supported_nips.iter().flatten() {
        tags.push(custom("N", &[&nip.to_string()]));
    }
    if check.auth.is_some() {
        tags.push(custom("R", &["auth"]));
    }
    if check.pow.is_some() {
        tags.push(custom("R", &["pow"]));
    }
    let content = check
        .nip11
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let created_at = Timestamp::from_secs(u64::try_from(check.generated_at).unwrap_or(0));
    EventBuilder::new(Kind::Custom(RELAY_DISCOVERY_KIND), content)
        .tags(tags)
        .custom_created_at(created_at)
        .sign_with_keys(keys)
        .map_err(|source| Error::Sign {
            what: "relay discovery",
            source,
        })
}

/// The kind 10166 announcement of a monitor checking as `config` says, on
/// `networks`, signed by `keys`. Tags: `frequency` (seconds between two
/// checks of a relay), one `c` per check that runs, one
/// `timeout <check> <ms>` per check, and one `n` per network.
pub fn monitor_announcement_event(
    config: &MonitorConfig,
    networks: &[Network],
    keys: &Keys,
) -> Result<Event> {
    let mut tags = vec![custom(
        "frequency",
        &[&config.min_age.as_secs().to_string()],
    )];
    let checks = [
        ("open", config.checks.open, config.timeouts.open),
        ("read", config.checks.read, config.timeouts.read),
        ("write", config.checks.write, config.timeouts.write),
        ("nip11", config.checks.nip11, config.timeouts.nip11),
    ];
    for (name, enabled, _) in checks {
        if enabled {
            tags.push(custom("c", &[name]));
        }
    }
    for (name, enabled, timeout) in checks {
        if enabled {
            tags.push(custom("timeout", &[name, &millis(timeout).to_string()]));
        }
    }
    for network in networks {
        tags.push(custom("n", &[network.as_str()]));
    }
    EventBuilder::new(Kind::Custom(MONITOR_ANNOUNCEMENT_KIND), "")
        .tags(tags)
        .sign_with_keys(keys)
        .map_err(|source| Error::Sign {
            what: "monitor announcement",
            source,
        })
}

/// Publishes `events` to `relays`, signed already, each step bounded by
/// `timeout`, connecting through `egress`, and returns how many events at
/// least one relay accepted. A relay that cannot be reached (or that the
/// egress policy refuses) is logged and skipped.
pub async fn publish_events(
    relays: &[String],
    events: &[Event],
    keys: &Keys,
    timeout: Duration,
    egress: &Egress,
) -> Result<u64> {
    if events.is_empty() || relays.is_empty() {
        return Ok(0);
    }
    let client = Client::builder()
        .signer(keys.clone())
        .websocket_transport(EgressTransport::new(egress.clone()))
        .build();
    for url in relays {
        client
            .add_relay(url.as_str())
            .await
            .map_err(|source| Error::PublishRelay {
                url: url.clone(),
                source,
            })?;
    }
    let _ = tokio::time::timeout(timeout, client.try_connect(timeout)).await;
    let mut accepted = 0;
    for event in events {
        match tokio::time::timeout(timeout, client.send_event(event)).await {
            Ok(Ok(output)) if !output.success.is_empty() => accepted += 1,
            Ok(Ok(output)) => tracing::debug!(
                target: TARGET,
                event = %event.id,
                failed = ?output
                    .failed
                    .iter()
                    .map(|(relay, reason)| (relay.as_str(), bounded_text(reason, REMOTE_TEXT_MAX_BYTES)))
                    .collect::<Vec<_>>(),
                "no relay accepted the event"
            ),
            Ok(Err(error)) => tracing::debug!(
                target: TARGET,
                event = %event.id,
                error = %bounded_text(&error.to_string(), REMOTE_TEXT_MAX_BYTES),
                "the event was not published"
            ),
            Err(_elapsed) => tracing::debug!(
                target: TARGET,
                event = %event.id,
                "the event was not published in time"
            ),
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client.shutdown()).await;
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::nip66::Probe;

    fn tags(event: &Event) -> Vec<Vec<String>> {
        event.tags.iter().map(|t| t.as_slice().to_vec()).collect()
    }

    fn strings(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|row| row.iter().map(|s| (*s).to_owned()).collect())
            .collect()
    }

    #[test]
    fn the_discovery_event_carries_the_measurements_as_tags() {
        let keys = Keys::generate();
        let check = RelayCheck {
            url: "wss://relay.example".to_owned(),
            network: Network::Clearnet,
            generated_at: 1_700_000_000,
            connected: true,
            nip11: Some(json!({"name": "r", "supported_nips": [1, 11]})),
            nip11_error: None,
            supported_nips: Some(vec![1, 11]),
            rtt_open: Some(120),
            open_error: None,
            egress_denied: None,
            read: Some(Probe {
                ok: true,
                rtt_ms: Some(45),
                error: None,
            }),
            write: Some(Probe {
                ok: false,
                rtt_ms: None,
                error: Some("rejected".to_owned()),
            }),
            auth: Some(true),
            pow: None,
        };
        let event = relay_discovery_event(&check, &keys).unwrap();
        event.verify().unwrap();
        assert_eq!(event.kind, Kind::Custom(30166));
        assert_eq!(event.pubkey, keys.public_key());
        assert_eq!(event.created_at, Timestamp::from_secs(1_700_000_000));
        assert_eq!(
            tags(&event),
            strings(&[
                &["d", "wss://relay.example"],
                &["n", "clearnet"],
                &["rtt-open", "120"],
                &["rtt-read", "45"],
                &["N", "1"],
                &["N", "11"],
                &["R", "auth"],
            ])
        );
        let content: serde_json::Value = serde_json::from_str(&event.content).unwrap();
        assert_eq!(content, json!({"name": "r", "supported_nips": [1, 11]}));
    }

    #[test]
    fn the_announcement_lists_checks_timeouts_and_networks() {
        let keys = Keys::generate();
        let mut config = MonitorConfig::default();
        config.checks.write = false;
        config.timeouts.open = Duration::from_millis(2500);
        let event =
            monitor_announcement_event(&config, &[Network::Clearnet, Network::Tor], &keys).unwrap();
        event.verify().unwrap();
        assert_eq!(event.kind, Kind::Custom(10166));
        assert_eq!(event.content, "");
        assert_eq!(
            tags(&event),
            strings(&[
                &["frequency", "3600"],
                &["c", "open"],
                &["c", "read"],
                &["c", "nip11"],
                &["timeout", "open", "2500"],
                &["timeout", "read", "10000"],
                &["timeout", "nip11", "10000"],
                &["n", "clearnet"],
                &["n", "tor"],
            ])
        );
    }
}
