//! [`Synchronizer`]: the configuration checked once, the filter, the worker
//! id and the proxy, shared by the relays of a cycle.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bigbrotr_brotr::Network;
use bigbrotr_config::{NostrConfig, Problems};
use bigbrotr_service_runtime::resolve_socks5;
use bigbrotr_utils::Egress;
use nostr::Keys;
use tokio::sync::Semaphore;

use crate::connection::WireLimits;

use crate::config::SynchronizerConfig;
use crate::error::{Error, Result};
use crate::filter::SyncFilter;

/// The target of the synchronizer's log events.
pub(crate) const TARGET: &str = "bigbrotr::synchronizer";

/// Archives the events relays hold: see the crate documentation, and
/// [`run_cycle`](Self::run_cycle).
///
/// Cloning is cheap; clones share everything.
#[derive(Clone)]
pub struct Synchronizer {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) config: SynchronizerConfig,
    pub(crate) filter: SyncFilter,
    pub(crate) worker_id: String,
    pub(crate) socks5: Option<(String, u16)>,
    pub(crate) connect_timeout: Duration,
    /// The keys it authenticates with (NIP-42).
    pub(crate) keys: Arc<Keys>,
    /// The bytes of events all relays may hold in batches at once, in KiB.
    pub(crate) held: Arc<Semaphore>,
    /// Where it may connect.
    pub(crate) egress: Egress,
}

impl fmt::Debug for Synchronizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Synchronizer")
            .field("worker_id", &self.inner.worker_id)
            .field("socks5", &self.inner.socks5)
            .finish_non_exhaustive()
    }
}

impl Synchronizer {
    /// A synchronizer archiving as `config` says and reaching relays as
    /// `nostr` says (its `timeout` bounds opening a connection; `.onion`
    /// relays are synced only with its SOCKS5 proxy). Checks both first;
    /// does no I/O. An empty `worker_id` becomes [`default_worker_id`].
    pub fn new(config: &SynchronizerConfig, nostr: &NostrConfig) -> Result<Self> {
        let mut problems = Problems::new();
        problems.section("synchronizer", config);
        problems.section("nostr", nostr);
        if !problems.is_empty() {
            return Err(Error::InvalidConfig {
                problems: problems.into_vec(),
            });
        }
        let filter = SyncFilter::new(&config.filter)?;
        let worker_id = if config.worker_id.is_empty() {
            default_worker_id()
        } else {
            config.worker_id.clone()
        };
        Ok(Self {
            inner: Arc::new(Inner {
                config: config.clone(),
                filter,
                worker_id,
                socks5: nostr
                    .socks5_host_port()
                    .map(|(host, port)| (host.to_owned(), port)),
                connect_timeout: nostr.timeout,
                keys: Arc::new(Keys::generate()),
                held: Arc::new(Semaphore::new(kib(config.sizes.held_bytes))),
                egress: Egress::default(),
            }),
        })
    }

    /// The same synchronizer, authenticating to relays (NIP-42) with `keys`
    /// rather than with keys generated for this run.
    #[must_use]
    pub fn with_keys(self, keys: Keys) -> Self {
        let inner = Arc::unwrap_or_clone(self.inner);
        Self {
            inner: Arc::new(Inner {
                keys: Arc::new(keys),
                ..inner
            }),
        }
    }

    /// The same synchronizer, connecting to relays (other than `.onion`
    /// ones, reached through the proxy) only where `egress` allows, rather
    /// than under the strict default policy.
    #[must_use]
    pub fn with_egress(self, egress: Egress) -> Self {
        let inner = Arc::unwrap_or_clone(self.inner);
        Self {
            inner: Arc::new(Inner { egress, ..inner }),
        }
    }

    /// The public key it authenticates with.
    #[must_use]
    pub fn public_key(&self) -> nostr::PublicKey {
        self.inner.keys.public_key()
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &SynchronizerConfig {
        &self.inner.config
    }

    /// The name it holds leases under.
    #[must_use]
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// The filter it archives with.
    #[must_use]
    pub fn filter(&self) -> &SyncFilter {
        &self.inner.filter
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
}

impl Inner {
    /// The sizes a relay's messages may have.
    pub(crate) fn wire(&self) -> WireLimits {
        let sizes = &self.config.sizes;
        WireLimits {
            max_message: sizes.max_message,
            max_frame: sizes.max_frame,
            max_event: sizes.max_event,
            answer_bytes: sizes.batch_bytes,
        }
    }

    /// The address of the SOCKS5 proxy, resolved.
    pub(crate) async fn proxy(&self) -> Result<SocketAddr, String> {
        resolve_socks5(self.socks5.as_ref(), self.connect_timeout).await
    }
}

/// `bytes` in KiB, rounded up, as the semaphore of held bytes counts them.
pub(crate) fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024).min(Semaphore::MAX_PERMITS)
}

/// The worker id used when none is configured: `<hostname>-<process id>`
/// (the host name from `HOSTNAME` or `/etc/hostname`, reduced to the
/// characters a worker id may hold), or `worker-<random>-<process id>` when
/// there is no host name.
#[must_use]
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| {
            name.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .take(100)
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("worker-{:08x}", fastrand::u32(..)));
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_worker_id_is_a_valid_worker_id_ending_with_the_process_id() {
        let id = default_worker_id();
        assert!(id.ends_with(&format!("-{}", std::process::id())), "{id}");
        let config = SynchronizerConfig {
            worker_id: id,
            ..SynchronizerConfig::default()
        };
        assert!(Synchronizer::new(&config, &NostrConfig::default()).is_ok());
    }

    #[test]
    fn an_invalid_configuration_is_refused_with_every_problem() {
        let config = SynchronizerConfig {
            limit: 0,
            ..SynchronizerConfig::default()
        };
        let nostr = NostrConfig {
            timeout: Duration::ZERO,
            ..NostrConfig::default()
        };
        let Err(Error::InvalidConfig { problems }) = Synchronizer::new(&config, &nostr) else {
            panic!("expected InvalidConfig");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["synchronizer.limit", "nostr.timeout"]);
    }

    #[test]
    fn onion_relays_need_a_proxy() {
        let plain = Synchronizer::new(&SynchronizerConfig::default(), &NostrConfig::default())
            .expect("valid");
        assert!(plain.reaches(Network::Clearnet));
        assert!(!plain.reaches(Network::Tor));
        let nostr = NostrConfig {
            socks5_proxy: Some("127.0.0.1:9050".to_owned()),
            ..NostrConfig::default()
        };
        let tor = Synchronizer::new(&SynchronizerConfig::default(), &nostr).expect("valid");
        assert!(tor.reaches(Network::Tor));
    }
}
