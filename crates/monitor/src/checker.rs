//! [`Monitor`] and [`RelayCheck`]: the checks of one relay.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bigbrotr_brotr::{validate_relay_url, Network, RelayId, RelayMetadata};
use bigbrotr_config::{NostrConfig, Problems};
use bigbrotr_service_runtime::resolve_socks5;
use bigbrotr_utils::{bounded_text, Egress, REMOTE_TEXT_MAX_BYTES};
use nostr::{Keys, Timestamp};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use crate::config::MonitorConfig;
use crate::error::{Error, Result};
use crate::nip11::{Nip11Client, Nip11Fetch};
use crate::nip66::{write_check_event, Probe, Session};

/// The target of the monitor's log events.
pub(crate) const TARGET: &str = "bigbrotr::monitor";

/// Checks relays: NIP-11 documents over HTTP(S), and the NIP-66 open, read
/// and write checks over WebSocket, `.onion` relays through the SOCKS5
/// proxy of the `nostr` section.
///
/// Cloning is cheap; clones share the HTTP clients and the key.
#[derive(Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
}

struct Inner {
    config: MonitorConfig,
    socks5: Option<(String, u16)>,
    nip11: Nip11Client,
    keys: Keys,
    publish_timeout: Duration,
    egress: Egress,
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("public_key", &self.inner.keys.public_key())
            .field("socks5", &self.inner.socks5)
            .finish_non_exhaustive()
    }
}

impl Monitor {
    /// A monitor checking as `config` says, reaching relays as `nostr` says,
    /// and signing with `keys` (see [`service_keys`](bigbrotr_service_runtime::service_keys)).
    /// Checks `config` first; does no I/O.
    pub fn new(config: &MonitorConfig, nostr: &NostrConfig, keys: Keys) -> Result<Self> {
        let mut problems = Problems::new();
        problems.section("monitor", config);
        problems.section("nostr", nostr);
        if !problems.is_empty() {
            return Err(Error::InvalidConfig {
                problems: problems.into_vec(),
            });
        }
        let socks5 = nostr
            .socks5_host_port()
            .map(|(host, port)| (host.to_owned(), port));
        let nip11 = Nip11Client::new(
            config.timeouts.nip11,
            config.max_redirects,
            config.nip11_max_bytes,
            nostr.socks5_host_port(),
            Egress::default(),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                config: config.clone(),
                socks5,
                nip11,
                keys,
                publish_timeout: nostr.timeout,
                egress: Egress::default(),
            }),
        })
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &MonitorConfig {
        &self.inner.config
    }

    /// The keys it signs with.
    #[must_use]
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// The same monitor, connecting through `egress` (the runtime gives the
    /// policy of `config/core/egress.yaml`; the strict policy by default):
    /// NIP-11 requests, WebSocket checks and publishing.
    #[must_use]
    pub fn with_egress(self, egress: Egress) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                config: inner.config.clone(),
                socks5: inner.socks5.clone(),
                nip11: inner.nip11.clone().with_egress(egress.clone()),
                keys: inner.keys.clone(),
                publish_timeout: inner.publish_timeout,
                egress,
            }),
        }
    }

    /// The egress policy its connections go through.
    #[must_use]
    pub fn egress(&self) -> &Egress {
        &self.inner.egress
    }

    /// Why the egress policy refuses the clearnet relay at `url`, when it
    /// does: its host is resolved once and every address checked. A name
    /// that does not resolve is not a refusal (the checks then fail on
    /// their own).
    async fn egress_denied(&self, url: &str) -> Option<String> {
        let parsed = nostr::Url::parse(url).ok()?;
        let host = parsed.host_str()?;
        let port = parsed.port_or_known_default()?;
        let resolving = self.inner.egress.resolve(host, port);
        match tokio::time::timeout(self.inner.config.timeouts.open, resolving).await {
            Ok(Err(error)) => error.egress_denied().map(ToString::to_string),
            Ok(Ok(_)) | Err(_) => None,
        }
    }

    /// The time limit of each step of publishing results: the `nostr`
    /// section's `timeout`.
    pub(crate) fn publish_timeout(&self) -> Duration {
        self.inner.publish_timeout
    }

    /// Whether it can reach relays of `network`: `.onion` relays need a
    /// SOCKS5 proxy.
    #[must_use]
    pub fn reaches(&self, network: Network) -> bool {
        match network {
            Network::Clearnet => true,
            Network::Tor => self.inner.socks5.is_some(),
        }
    }

    /// Checks the relay at `url`, running the checks the configuration
    /// enables: NIP-11 while the connection opens, then read, then write.
    /// Every step is bounded by its timeout, so this returns within about
    /// `max(nip11, open) + read + write + read` of the configured timeouts.
    /// Never fails: what went wrong is in the [`RelayCheck`].
    #[tracing::instrument(name = "monitor.check_relay", target = "bigbrotr::monitor", skip_all, fields(url = %url))]
    pub async fn check_relay(&self, url: &str) -> RelayCheck {
        let generated_at = bigbrotr_utils::now_timestamp();
        let normalized = match validate_relay_url(url) {
            Ok(normalized) => normalized,
            Err(error) => {
                let mut check = RelayCheck {
                    open_error: Some(format!("invalid relay URL: {error}")),
                    ..RelayCheck::empty(url, Network::of_url_text(url), generated_at)
                };
                check.bound_texts();
                return check;
            }
        };
        let network = normalized.network();
        let config = &self.inner.config;
        let mut check = RelayCheck::empty(normalized.as_str(), network, generated_at);
        // A relay the egress policy refuses is stored with the reason, and
        // nothing connects to it. The connections themselves check again,
        // on the addresses they resolve: the policy holds even if DNS
        // answers differently then.
        if matches!(network, Network::Clearnet) && (config.checks.nip11 || config.checks.open) {
            if let Some(reason) = self.egress_denied(normalized.as_str()).await {
                tracing::debug!(target: TARGET, url = %check.url, %reason, "relay refused by the egress policy");
                check.egress_denied = Some(reason);
                check.bound_texts();
                return check;
            }
        }

        let nip11 = async {
            if config.checks.nip11 {
                Some(self.inner.nip11.fetch(normalized.as_str(), network).await)
            } else {
                None
            }
        };
        let open = async {
            if !config.checks.open {
                return None;
            }
            let proxy = match network {
                Network::Clearnet => None,
                Network::Tor => match self.proxy().await {
                    Ok(proxy) => Some(proxy),
                    Err(reason) => return Some(Err(reason)),
                },
            };
            Some(
                Session::open(
                    normalized.relay_url(),
                    &self.inner.keys,
                    proxy,
                    config.timeouts.open,
                    &self.inner.egress,
                )
                .await,
            )
        };
        let (nip11, session) = tokio::join!(nip11, open);

        let mut min_pow = 0;
        if let Some(Nip11Fetch {
            document,
            info,
            error,
        }) = nip11
        {
            check.nip11 = document;
            check.nip11_error = error;
            if let Some(info) = info {
                check.supported_nips = info.supported_nips;
                min_pow = info
                    .limitation
                    .and_then(|limitation| limitation.min_pow_difficulty)
                    .unwrap_or(0);
            }
        }

        match session {
            None => {}
            Some(Err(reason)) => check.open_error = Some(reason),
            Some(Ok(session)) => {
                check.connected = true;
                check.rtt_open = Some(session.rtt_open);
                if config.checks.read {
                    check.read = Some(session.read(config.timeouts.read).await);
                }
                if config.checks.write {
                    check.write = Some(self.write(&session, min_pow, &mut check).await);
                }
                check.auth = session.auth();
                session.close().await;
            }
        }
        check.bound_texts();
        tracing::debug!(
            target: TARGET,
            url = %check.url,
            connected = check.connected,
            readable = ?check.read.as_ref().map(|p| p.ok),
            writable = ?check.write.as_ref().map(|p| p.ok),
            nip11 = check.nip11.is_some(),
            open_error = ?check.open_error,
            read_error = ?check.read.as_ref().and_then(|p| p.error.as_ref()),
            write_error = ?check.write.as_ref().and_then(|p| p.error.as_ref()),
            nip11_error = ?check.nip11_error,
            "relay checked"
        );
        check
    }

    /// The write check, with proof of work when the relay's NIP-11 document
    /// asks for `min_pow` bits.
    async fn write(&self, session: &Session, min_pow: i32, check: &mut RelayCheck) -> Probe {
        let config = &self.inner.config;
        let difficulty = match u8::try_from(min_pow.max(0)) {
            Ok(difficulty) if difficulty <= config.max_pow_difficulty => difficulty,
            _ => {
                return Probe {
                    ok: false,
                    rtt_ms: None,
                    error: Some(format!(
                        "the relay asks for proof of work of difficulty {min_pow}, above max_pow_difficulty ({})",
                        config.max_pow_difficulty
                    )),
                }
            }
        };
        if difficulty > 0 {
            check.pow = Some(difficulty);
        }
        let keys = self.inner.keys.clone();
        // Mining stops at its deadline, or as soon as this check is dropped
        // (a cycle cancelled or aborted), so no blocking thread is held
        // past the check.
        let stop = CancellationToken::new();
        let _stop_on_drop = stop.clone().drop_guard();
        let budget = config.timeouts.pow;
        let built = tokio::task::spawn_blocking(move || {
            write_check_event(&keys, Timestamp::now(), difficulty, budget, &stop)
        })
        .await;
        let event = match built {
            Ok(Ok(event)) => event,
            Ok(Err(error)) => {
                return Probe {
                    ok: false,
                    rtt_ms: None,
                    error: Some(error.to_string()),
                }
            }
            Err(error) => {
                return Probe {
                    ok: false,
                    rtt_ms: None,
                    error: Some(format!("signing failed: {error}")),
                }
            }
        };
        session
            .write(&event, config.timeouts.write, config.timeouts.read)
            .await
    }

    /// The address of the SOCKS5 proxy, resolved.
    async fn proxy(&self) -> Result<SocketAddr, String> {
        resolve_socks5(self.inner.socks5.as_ref(), self.inner.config.timeouts.open).await
    }
}

/// The outcome of the checks of one relay.
///
/// [`RelayCheck::nip66`] is the NIP-66 document stored for it; its format
/// is described in the crate documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayCheck {
    /// The relay's URL, normalised when it is valid.
    pub url: String,
    /// How the relay is reached.
    pub network: Network,
    /// When the check started (Unix seconds).
    pub generated_at: i64,
    /// Whether the WebSocket connection opened.
    pub connected: bool,
    /// The NIP-11 document as received, when the relay served a JSON object.
    pub nip11: Option<Value>,
    /// Why no NIP-11 document, or no conforming one, was obtained.
    pub nip11_error: Option<String>,
    /// The NIPs the NIP-11 document says the relay supports.
    pub supported_nips: Option<Vec<u16>>,
    /// Time to open the connection, in milliseconds, when it opened.
    pub rtt_open: Option<u64>,
    /// Why the connection did not open.
    pub open_error: Option<String>,
    /// Why the egress policy refused the relay (nothing was connected to),
    /// when it did.
    pub egress_denied: Option<String>,
    /// The read check, when it ran.
    pub read: Option<Probe>,
    /// The write check, when it ran.
    pub write: Option<Probe>,
    /// Whether the relay asked to authenticate (NIP-42) and the monitor
    /// succeeded; `None` when it never asked.
    pub auth: Option<bool>,
    /// The proof-of-work difficulty mined for the write check, when the
    /// relay asked for one.
    pub pow: Option<u8>,
}

impl RelayCheck {
    fn empty(url: &str, network: Network, generated_at: i64) -> Self {
        Self {
            url: url.to_owned(),
            network,
            generated_at,
            connected: false,
            nip11: None,
            nip11_error: None,
            supported_nips: None,
            rtt_open: None,
            open_error: None,
            egress_denied: None,
            read: None,
            write: None,
            auth: None,
            pow: None,
        }
    }

    /// Cuts every reason to [`REMOTE_TEXT_MAX_BYTES`]: relays and their
    /// web servers write them (`CLOSED` and `OK` messages, errors quoting
    /// their answers), and each new text stored makes a new NIP-66 row.
    fn bound_texts(&mut self) {
        let bound = |text: &mut Option<String>| {
            if let Some(text) = text {
                if text.len() > REMOTE_TEXT_MAX_BYTES {
                    *text = bounded_text(text, REMOTE_TEXT_MAX_BYTES).into_owned();
                }
            }
        };
        bound(&mut self.open_error);
        bound(&mut self.nip11_error);
        bound(&mut self.egress_denied);
        for probe in [&mut self.read, &mut self.write].into_iter().flatten() {
            bound(&mut probe.error);
        }
    }

    /// Whether the read check ran and succeeded.
    #[must_use]
    pub fn readable(&self) -> bool {
        self.read.as_ref().is_some_and(|probe| probe.ok)
    }

    /// Whether the write check ran and succeeded.
    #[must_use]
    pub fn writable(&self) -> bool {
        self.write.as_ref().is_some_and(|probe| probe.ok)
    }

    /// The NIP-66 document stored for this check; `None` when the relay was
    /// not connected, except for a relay the egress policy refused, whose
    /// document holds `network` and the reason (`egress_denied`).
    #[must_use]
    pub fn nip66(&self) -> Option<Value> {
        if let Some(reason) = &self.egress_denied {
            return Some(json!({"network": self.network.as_str(), "egress_denied": reason}));
        }
        if !self.connected {
            return None;
        }
        let mut doc = Map::new();
        doc.insert("network".into(), json!(self.network.as_str()));
        doc.insert("rtt_open".into(), json!(self.rtt_open));
        for (name, probe) in [("read", &self.read), ("write", &self.write)] {
            let Some(probe) = probe else { continue };
            let able = if name == "read" {
                "readable"
            } else {
                "writable"
            };
            doc.insert(able.into(), json!(probe.ok));
            doc.insert(format!("rtt_{name}"), json!(probe.rtt_ms));
            if let Some(error) = &probe.error {
                doc.insert(format!("{name}_error"), json!(error));
            }
        }
        if let Some(error) = &self.nip11_error {
            doc.insert("nip11_error".into(), json!(error));
        }
        if let Some(nips) = &self.supported_nips {
            doc.insert("supported_nips".into(), json!(nips));
        }
        if let Some(auth) = self.auth {
            doc.insert("auth".into(), json!(auth));
        }
        if let Some(pow) = self.pow {
            doc.insert("pow".into(), json!(pow));
        }
        Some(Value::Object(doc))
    }

    /// The row stored for this check of the relay `relay_id`.
    #[must_use]
    pub fn metadata(&self, relay_id: RelayId) -> RelayMetadata {
        RelayMetadata {
            relay_id,
            generated_at: self.generated_at,
            connected: self.connected,
            nip11: self.nip11.clone(),
            nip66: self.nip66(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected() -> RelayCheck {
        RelayCheck {
            connected: true,
            rtt_open: Some(12),
            ..RelayCheck::empty("wss://relay.example", Network::Clearnet, 1_700_000_000)
        }
    }

    #[test]
    fn a_relay_not_connected_has_no_nip66_document() {
        let check = RelayCheck {
            open_error: Some("refused".into()),
            nip11: Some(json!({"name": "r"})),
            ..RelayCheck::empty("wss://relay.example", Network::Tor, 5)
        };
        assert_eq!(check.nip66(), None);
        let row = check.metadata(RelayId(3));
        assert_eq!(row.relay_id, RelayId(3));
        assert_eq!(row.generated_at, 5);
        assert!(!row.connected);
        assert_eq!(row.nip11, Some(json!({"name": "r"})));
        assert_eq!(row.nip66, None);
    }

    #[test]
    fn the_nip66_document_holds_the_checks_that_ran() {
        let check = RelayCheck {
            read: Some(Probe {
                ok: true,
                rtt_ms: Some(3),
                error: None,
            }),
            write: Some(Probe {
                ok: false,
                rtt_ms: None,
                error: Some("rejected: blocked: read only".into()),
            }),
            nip11_error: Some("HTTP status 404".into()),
            auth: Some(true),
            pow: Some(8),
            supported_nips: Some(vec![1, 11]),
            ..connected()
        };
        assert_eq!(
            check.nip66(),
            Some(json!({
                "network": "clearnet",
                "rtt_open": 12,
                "readable": true,
                "rtt_read": 3,
                "writable": false,
                "rtt_write": null,
                "write_error": "rejected: blocked: read only",
                "nip11_error": "HTTP status 404",
                "supported_nips": [1, 11],
                "auth": true,
                "pow": 8,
            }))
        );
        assert!(check.readable());
        assert!(!check.writable());
    }

    #[test]
    fn a_relay_refused_by_the_egress_policy_stores_the_reason() {
        let check = RelayCheck {
            egress_denied: Some("10.0.0.5:443 is a private address".into()),
            ..RelayCheck::empty("wss://internal.example", Network::Clearnet, 5)
        };
        let row = check.metadata(RelayId(1));
        assert!(!row.connected);
        assert_eq!(
            row.nip66,
            Some(
                json!({"network": "clearnet", "egress_denied": "10.0.0.5:443 is a private address"})
            )
        );
    }

    #[test]
    fn checks_that_did_not_run_are_left_out() {
        assert_eq!(
            connected().nip66(),
            Some(json!({"network": "clearnet", "rtt_open": 12}))
        );
    }
}
