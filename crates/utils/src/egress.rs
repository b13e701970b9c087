//! The egress policy: which addresses BigBrotr may open connections to.
//!
//! BigBrotr connects to URLs strangers publish. A relay URL naming
//! `127.0.0.1:5432`, `metadata.google.internal` or a name that resolves to
//! `10.0.0.5` would turn the archiver into a scanner of the network it runs
//! in. So every outgoing connection goes through one [`EgressPolicy`],
//! checked on the **resolved** address, right before connecting:
//!
//! - [`EgressPolicy::check`] says whether one socket address may be
//!   reached, and if not, why ([`Denied`], naming the [`AddressKind`]).
//! - [`Resolve`] is how names become addresses: [`SystemResolver`]
//!   (`tokio::net::lookup_host`) by default, [`StaticResolver`] in tests.
//! - [`Egress`] bundles a policy and a resolver; [`Egress::connect`]
//!   resolves a name once, checks every address it got, and connects a
//!   [`TcpStream`] to one of those checked addresses (never resolving
//!   again, so a DNS answer that changes between the check and the
//!   connection — DNS rebinding — cannot slip through).
//!
//! Denied by default: loopback, private (RFC 1918), link-local, shared
//! address space (CGNAT, `100.64.0.0/10`), benchmarking (`198.18.0.0/15`),
//! multicast, broadcast, reserved and unspecified addresses, the
//! documentation ranges, IPv6 unique-local (`fc00::/7`) and site-local
//! (`fec0::/10`) addresses, and the IPv4-mapped (`::ffff:0:0/96`), 6to4
//! (`2002::/16`) and NAT64 (`64:ff9b::/96`) forms of every denied IPv4
//! address. `allow_private` lets the private kinds through (see
//! [`AddressKind::is_private`]); [`AllowEntry`]s let exactly the networks
//! or `address:port` pairs they name through.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// The tracing target of egress events.
const TARGET: &str = "bigbrotr_utils::egress";

/// What kind of special-purpose address an address is; public addresses
/// have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressKind {
    /// `0.0.0.0/8`, `::`: "this host", never a destination.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// `169.254.0.0/16`, `fe80::/10` (where cloud metadata services live).
    LinkLocal,
    /// Shared address space of carrier-grade NAT, `100.64.0.0/10`.
    SharedAddressSpace,
    /// Network benchmarking, `198.18.0.0/15`.
    Benchmarking,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`.
    Documentation,
    /// IPv6 unique-local addresses, `fc00::/7`.
    UniqueLocal,
    /// IPv6 site-local addresses (deprecated), `fec0::/10`.
    SiteLocal,
    /// Reserved for future or protocol use: `240.0.0.0/4`, `192.0.0.0/24`,
    /// IPv4-compatible IPv6 (`::/96`), discard-only `100::/64`, Teredo
    /// `2001::/32`.
    Reserved,
}

impl AddressKind {
    /// Whether `allow_private` lets this kind through: loopback, private,
    /// link-local, shared address space, unique-local and site-local
    /// addresses, the addresses of machines on a local or operator
    /// network. Unspecified, multicast, broadcast, documentation,
    /// benchmarking and reserved addresses stay denied: no relay lives
    /// there.
    #[must_use]
    pub fn is_private(self) -> bool {
        matches!(
            self,
            Self::Loopback
                | Self::Private
                | Self::LinkLocal
                | Self::SharedAddressSpace
                | Self::UniqueLocal
                | Self::SiteLocal
        )
    }

    /// A short name for logs and stored reasons: `loopback`,
    /// `shared-address-space`, …
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::SharedAddressSpace => "shared-address-space",
            Self::Benchmarking => "benchmarking",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Documentation => "documentation",
            Self::UniqueLocal => "unique-local",
            Self::SiteLocal => "site-local",
            Self::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an IPv6 address carries the IPv4 address it was judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Embedding {
    /// IPv4-mapped, `::ffff:a.b.c.d`.
    Mapped,
    /// 6to4, `2002:AABB:CCDD::/48`.
    SixToFour,
    /// NAT64, `64:ff9b::a.b.c.d`.
    Nat64,
}

impl Embedding {
    fn as_str(self) -> &'static str {
        match self {
            Self::Mapped => "IPv4-mapped",
            Self::SixToFour => "6to4",
            Self::Nat64 => "NAT64",
        }
    }
}

/// Why the policy refuses an address: the address, its kind, and the IPv4
/// address it embeds when that is what was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct Denied {
    /// The address refused.
    pub addr: SocketAddr,
    /// What kind of address it is.
    pub kind: AddressKind,
    /// The IPv4 address inside an IPv6 one, and how it is embedded, when
    /// the IPv6 address was judged by it.
    pub embedded: Option<(Embedding, Ipv4Addr)>,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is a {} address", self.addr, self.kind)?;
        if let Some((embedding, v4)) = self.embedded {
            write!(f, " ({} form of {v4})", embedding.as_str())?;
        }
        f.write_str(", denied by the egress policy")
    }
}

/// The special-purpose kind of `ip`, judging IPv6 forms that embed an IPv4
/// address by that address; `None` for a public address.
///
/// ```
/// use bigbrotr_utils::{classify, AddressKind};
///
/// assert_eq!(classify("10.1.2.3".parse()?), Some(AddressKind::Private));
/// assert_eq!(classify("::ffff:127.0.0.1".parse()?), Some(AddressKind::Loopback));
/// assert_eq!(classify("1.1.1.1".parse()?), None);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[must_use]
pub fn classify(ip: IpAddr) -> Option<AddressKind> {
    classify_embedded(ip).map(|(kind, _)| kind)
}

fn classify_embedded(ip: IpAddr) -> Option<(AddressKind, Option<(Embedding, Ipv4Addr)>)> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4).map(|kind| (kind, None)),
        IpAddr::V6(v6) => {
            if let Some((embedding, v4)) = embedded_v4(v6) {
                return classify_v4(v4).map(|kind| (kind, Some((embedding, v4))));
            }
            classify_v6(v6).map(|kind| (kind, None))
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressKind> {
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        (0, _, _) => AddressKind::Unspecified,
        (127, _, _) => AddressKind::Loopback,
        (10, _, _) | (192, 168, _) => AddressKind::Private,
        (172, b, _) if (16..32).contains(&b) => AddressKind::Private,
        (169, 254, _) => AddressKind::LinkLocal,
        (100, b, _) if (64..128).contains(&b) => AddressKind::SharedAddressSpace,
        (198, 18 | 19, _) => AddressKind::Benchmarking,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressKind::Documentation,
        (192, 0, 0) => AddressKind::Reserved,
        (224..=239, _, _) => AddressKind::Multicast,
        _ if ip == Ipv4Addr::BROADCAST => AddressKind::Broadcast,
        (240..=255, _, _) => AddressKind::Reserved,
        _ => return None,
    };
    Some(kind)
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressKind> {
    let segments = ip.segments();
    let kind = if ip.is_unspecified() {
        AddressKind::Unspecified
    } else if ip.is_loopback() {
        AddressKind::Loopback
    } else if segments[..6] == [0; 6] {
        // IPv4-compatible (deprecated): never a real destination.
        AddressKind::Reserved
    } else if segments[0] & 0xff00 == 0xff00 {
        AddressKind::Multicast
    } else if segments[0] & 0xffc0 == 0xfe80 {
        AddressKind::LinkLocal
    } else if segments[0] & 0xffc0 == 0xfec0 {
        AddressKind::SiteLocal
    } else if segments[0] & 0xfe00 == 0xfc00 {
        AddressKind::UniqueLocal
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        AddressKind::Documentation
    } else if segments[..4] == [0x0100, 0, 0, 0] || segments[..2] == [0x2001, 0] {
        AddressKind::Reserved
    } else {
        return None;
    };
    Some(kind)
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped, 6to4 and NAT64
/// (well-known prefix) forms.
fn embedded_v4(ip: Ipv6Addr) -> Option<(Embedding, Ipv4Addr)> {
    let s = ip.segments();
    let v4 = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if s[..6] == [0, 0, 0, 0, 0, 0xffff] {
        Some((Embedding::Mapped, v4(s[6], s[7])))
    } else if s[0] == 0x2002 {
        Some((Embedding::SixToFour, v4(s[1], s[2])))
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some((Embedding::Nat64, v4(s[6], s[7])))
    } else {
        None
    }
}

/// An exception to the policy: a network in CIDR notation
/// (`127.0.0.1/32`, `fd00::/8`; a bare address is a single-address
/// network) or one `address:port` pair (`127.0.0.1:7777`,
/// `[::1]:7777`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllowEntry {
    /// Every address of a network, any port.
    Network {
        /// The network's address (bits past the prefix are ignored).
        addr: IpAddr,
        /// The prefix length: at most 32 for IPv4, 128 for IPv6.
        prefix: u8,
    },
    /// One address and port.
    Socket(SocketAddr),
}

impl AllowEntry {
    /// Whether this entry lets `addr` through.
    #[must_use]
    pub fn matches(&self, addr: SocketAddr) -> bool {
        let ip = addr.ip().to_canonical();
        match *self {
            Self::Socket(allowed) => {
                allowed.ip().to_canonical() == ip && allowed.port() == addr.port()
            }
            Self::Network {
                addr: network,
                prefix,
            } => match (network.to_canonical(), ip) {
                (IpAddr::V4(network), IpAddr::V4(ip)) => {
                    prefix_matches(u32::from(network).into(), u32::from(ip).into(), prefix, 32)
                }
                (IpAddr::V6(network), IpAddr::V6(ip)) => {
                    prefix_matches(u128::from(network), u128::from(ip), prefix, 128)
                }
                _ => false,
            },
        }
    }
}

fn prefix_matches(network: u128, ip: u128, prefix: u8, bits: u8) -> bool {
    let prefix = prefix.min(bits);
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix);
    (network >> shift) == (ip >> shift)
}

/// Why a text is not an [`AllowEntry`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither a network (`127.0.0.1/32`, `fd00::/8`) nor an `address:port` (`127.0.0.1:7777`, `[::1]:7777`)")]
pub struct InvalidAllowEntry(pub String);

impl FromStr for AllowEntry {
    type Err = InvalidAllowEntry;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        let invalid = || InvalidAllowEntry(text.to_owned());
        let trimmed = text.trim();
        if let Some((addr, prefix)) = trimmed.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
            let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
            let bits = if addr.is_ipv4() { 32 } else { 128 };
            if prefix > bits {
                return Err(invalid());
            }
            return Ok(Self::Network { addr, prefix });
        }
        if let Ok(addr) = trimmed.parse::<SocketAddr>() {
            return Ok(Self::Socket(addr));
        }
        let addr: IpAddr = trimmed.parse().map_err(|_| invalid())?;
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Ok(Self::Network { addr, prefix })
    }
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Network { addr, prefix } => write!(f, "{addr}/{prefix}"),
            Self::Socket(addr) => write!(f, "{addr}"),
        }
    }
}

/// Which addresses may be connected to. The default denies every
/// special-purpose address (see [`classify`] and [`AddressKind`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allow_private: bool,
    allow: Vec<AllowEntry>,
}

impl EgressPolicy {
    /// The strict policy: every special-purpose address denied, no
    /// exception.
    #[must_use]
    pub fn strict() -> Self {
        Self::default()
    }

    /// A policy letting the private kinds through when `allow_private`
    /// (see [`AddressKind::is_private`]), and whatever `allow` names.
    #[must_use]
    pub fn new(allow_private: bool, allow: Vec<AllowEntry>) -> Self {
        Self {
            allow_private,
            allow,
        }
    }

    /// The same policy, also letting `entry` through.
    #[must_use]
    pub fn allowing(mut self, entry: AllowEntry) -> Self {
        self.allow.push(entry);
        self
    }

    /// Whether the private kinds are let through.
    #[must_use]
    pub fn allow_private(&self) -> bool {
        self.allow_private
    }

    /// The exceptions.
    #[must_use]
    pub fn allow(&self) -> &[AllowEntry] {
        &self.allow
    }

    /// Whether `addr` may be connected to: allowed when an [`AllowEntry`]
    /// names it, when it is a public address, or when it is of a private
    /// kind and `allow_private` is on; otherwise [`Denied`] says why.
    ///
    /// ```
    /// use bigbrotr_utils::AddressKind;
    /// use bigbrotr_utils::EgressPolicy;
    ///
    /// let strict = EgressPolicy::strict();
    /// assert!(strict.check("93.184.215.14:443".parse()?).is_ok());
    /// let denied = strict.check("[::ffff:10.0.0.5]:80".parse()?).unwrap_err();
    /// assert_eq!(denied.kind, AddressKind::Private);
    ///
    /// let tests = EgressPolicy::strict().allowing("127.0.0.1:7777".parse()?);
    /// assert!(tests.check("127.0.0.1:7777".parse()?).is_ok());
    /// assert!(tests.check("127.0.0.1:5432".parse()?).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self, addr: SocketAddr) -> std::result::Result<(), Denied> {
        if self.allow.iter().any(|entry| entry.matches(addr)) {
            return Ok(());
        }
        match classify_embedded(addr.ip()) {
            None => Ok(()),
            Some((kind, _)) if self.allow_private && kind.is_private() => Ok(()),
            Some((kind, embedded)) => Err(Denied {
                addr,
                kind,
                embedded,
            }),
        }
    }
}

/// A boxed future of a resolution.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// How host names become addresses. [`Egress`] resolves through it, so
/// tests can inject [`StaticResolver`] and see exactly what would be
/// connected to.
pub trait Resolve: fmt::Debug + Send + Sync {
    /// The addresses of `host` (a name, never an IP literal) with `port`.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a>;
}

/// The system resolver, through `tokio::net::lookup_host`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// A resolver answering from a fixed table of names, for tests: a name not
/// in the table does not resolve.
///
/// ```
/// use bigbrotr_utils::StaticResolver;
///
/// let resolver = StaticResolver::new().with("relay.example", ["10.0.0.5".parse()?]);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    names: Vec<(String, Vec<IpAddr>)>,
}

impl StaticResolver {
    /// A resolver knowing no name.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The same resolver, answering `ips` for `name` (compared without
    /// regard to case).
    #[must_use]
    pub fn with(mut self, name: &str, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.names
            .push((name.to_ascii_lowercase(), ips.into_iter().collect()));
        self
    }
}

impl Resolve for StaticResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        let host = host.to_ascii_lowercase();
        let found = self
            .names
            .iter()
            .find(|(name, _)| *name == host)
            .map(|(_, ips)| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
        Box::pin(async move {
            found.ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("unknown name `{host}`"))
            })
        })
    }
}

/// A policy and the resolver it judges names with: what every outgoing
/// connection goes through. Cloning is cheap and shares both.
#[derive(Debug, Clone)]
pub struct Egress {
    policy: Arc<EgressPolicy>,
    resolver: Arc<dyn Resolve>,
}

impl Default for Egress {
    /// The strict policy with the system resolver.
    fn default() -> Self {
        Self::new(EgressPolicy::strict())
    }
}

impl Egress {
    /// `policy` with the system resolver.
    #[must_use]
    pub fn new(policy: EgressPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
            resolver: Arc::new(SystemResolver),
        }
    }

    /// The same policy, resolving names through `resolver`.
    #[must_use]
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = resolver;
        self
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// The resolver.
    #[must_use]
    pub fn resolver(&self) -> &Arc<dyn Resolve> {
        &self.resolver
    }

    /// The addresses of `host` (a name or an IP literal, IPv6 with or
    /// without brackets) and `port`, every one checked: an IP literal is
    /// checked as it is, a name is resolved once. Fails with
    /// [`Error::EgressDenied`] when **any** address is denied (a name
    /// answering both a public and a private address is refused whole),
    /// [`Error::Resolve`] or [`Error::NoAddress`] when the name does not
    /// resolve.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let addrs = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => self
                .resolver
                .resolve(bare, port)
                .await
                .map_err(|source| Error::Resolve {
                    host: bare.to_owned(),
                    source,
                })?,
        };
        if addrs.is_empty() {
            return Err(Error::NoAddress {
                host: bare.to_owned(),
            });
        }
        for addr in &addrs {
            if let Err(denied) = self.policy.check(*addr) {
                tracing::debug!(target: TARGET, host = bare, %denied, "connection refused by the egress policy");
                return Err(Error::EgressDenied {
                    host: bare.to_owned(),
                    denied,
                });
            }
        }
        Ok(addrs)
    }

    /// A TCP connection to `host:port` within `timeout`: resolves once
    /// ([`resolve`](Self::resolve), every address checked), then tries the
    /// checked addresses in order until one connects. Fails with the
    /// errors of [`resolve`](Self::resolve), [`Error::Connect`] (the last
    /// address's error) or [`Error::ConnectTimeout`].
    pub async fn connect(&self, host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
        let attempt = async {
            let addrs = self.resolve(host, port).await?;
            let mut last = None;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(stream) => return Ok(stream),
                    Err(source) => last = Some(Error::Connect { addr, source }),
                }
            }
            Err(last.unwrap_or_else(|| Error::NoAddress {
                host: host.to_owned(),
            }))
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| Error::ConnectTimeout {
                host: host.to_owned(),
                after: timeout,
            })?
    }
}

#[cfg(test)]
mod tests;
