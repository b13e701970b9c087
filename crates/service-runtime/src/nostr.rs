//! The `nostr` section as `nostr-sdk` client options: `.onion` relays
//! through the SOCKS5 proxy, every relay within the timeout.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bigbrotr_config::NostrConfig;
use nostr_sdk::client::{Connection, ConnectionTarget};
use nostr_sdk::ClientOptions;

use crate::error::{Error, Result};

/// What a service needs to build a `nostr_sdk::Client` as the `nostr`
/// section says.
#[derive(Debug, Clone)]
pub struct NostrOptions {
    /// Options for `Client::builder().opts(..)`: no automatic connection,
    /// and [`connection`](Self::connection).
    pub client: ClientOptions,
    /// How relays are reached: `.onion` relays through the SOCKS5 proxy
    /// when one is set, everything else directly.
    pub connection: Connection,
    /// The proxy's address, when one is set.
    pub proxy: Option<SocketAddr>,
    /// Longest wait for a relay to connect or answer: give it to
    /// `Client::try_connect_relay(url, timeout)` and every fetch.
    pub timeout: Duration,
}

/// Builds the client options `config` describes. A proxy given by host name
/// is resolved now ([`Error::Proxy`] when that fails).
///
/// ```
/// use std::time::Duration;
///
/// use bigbrotr_config::NostrConfig;
/// use bigbrotr_service_runtime::nostr::nostr_options;
/// use nostr_sdk::client::{Connection, ConnectionTarget};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let config = NostrConfig {
///     socks5_proxy: Some("127.0.0.1:9050".into()),
///     timeout: Duration::from_secs(20),
/// };
/// let options = nostr_options(&config).await?;
/// assert_eq!(
///     options.connection,
///     Connection::new()
///         .proxy("127.0.0.1:9050".parse()?)
///         .target(ConnectionTarget::Onion)
/// );
/// assert_eq!(options.timeout, Duration::from_secs(20));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn nostr_options(config: &NostrConfig) -> Result<NostrOptions> {
    let proxy = match config.socks5_proxy.as_deref() {
        None => None,
        Some(setting) => Some(resolve_proxy(setting, config).await?),
    };
    Ok(options_with_proxy(proxy, config.timeout))
}

/// The options for an already resolved proxy address (or none).
#[must_use]
pub fn options_with_proxy(proxy: Option<SocketAddr>, timeout: Duration) -> NostrOptions {
    let connection = match proxy {
        Some(address) => Connection::new()
            .proxy(address)
            .target(ConnectionTarget::Onion),
        None => Connection::new().direct(),
    };
    let client = ClientOptions::new()
        .autoconnect(false)
        .connection(connection.clone());
    NostrOptions {
        client,
        connection,
        proxy,
        timeout,
    }
}

async fn resolve_proxy(setting: &str, config: &NostrConfig) -> Result<SocketAddr> {
    let invalid = |message: &str| Error::Proxy {
        proxy: setting.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, message.to_owned()),
    };
    let (host, port) = config
        .socks5_host_port()
        .ok_or_else(|| invalid("not a `host:port` or `socks5://host:port` address"))?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let lookup = tokio::time::timeout(config.timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| invalid("the name did not resolve within nostr.timeout"))?;
    lookup
        .map_err(|source| Error::Proxy {
            proxy: setting.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| invalid("the name has no address"))
}

#[cfg(test)]
mod tests {
    use nostr_sdk::pool::ConnectionMode;

    use super::*;

    fn config(proxy: Option<&str>) -> NostrConfig {
        NostrConfig {
            socks5_proxy: proxy.map(str::to_owned),
            timeout: Duration::from_secs(7),
        }
    }

    #[tokio::test]
    async fn without_a_proxy_every_relay_is_reached_directly() {
        let options = nostr_options(&config(None)).await.unwrap();
        assert_eq!(options.connection.mode, ConnectionMode::Direct);
        assert_eq!(options.connection.target, ConnectionTarget::All);
        assert_eq!(options.proxy, None);
        assert_eq!(options.timeout, Duration::from_secs(7));
    }

    #[tokio::test]
    async fn with_a_proxy_only_onion_relays_go_through_it() {
        for (setting, address) in [
            ("127.0.0.1:9050", "127.0.0.1:9050"),
            ("socks5://10.0.0.2:1080", "10.0.0.2:1080"),
            ("[::1]:9050", "[::1]:9050"),
        ] {
            let options = nostr_options(&config(Some(setting))).await.unwrap();
            let address: SocketAddr = address.parse().unwrap();
            assert_eq!(
                options.connection.mode,
                ConnectionMode::Proxy(address),
                "{setting}"
            );
            assert_eq!(options.connection.target, ConnectionTarget::Onion);
            assert_eq!(options.proxy, Some(address));
            let debug = format!("{:?}", options.client);
            assert!(debug.contains("autoconnect: false"), "{debug}");
            assert!(debug.contains(&format!("Proxy({address})")), "{debug}");
        }
    }

    #[tokio::test]
    async fn a_proxy_host_name_is_resolved() {
        let options = nostr_options(&config(Some("localhost:9050")))
            .await
            .unwrap();
        let address = options.proxy.expect("resolved");
        assert!(address.ip().is_loopback(), "{address}");
        assert_eq!(address.port(), 9050);
    }

    #[tokio::test]
    async fn an_invalid_proxy_is_an_error_naming_it() {
        let error = nostr_options(&config(Some("tor"))).await.unwrap_err();
        assert!(
            matches!(&error, Error::Proxy { proxy, .. } if proxy == "tor"),
            "{error:?}"
        );
    }
}
