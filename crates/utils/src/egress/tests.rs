//! Tests of `egress`.

use tokio::net::TcpListener;

use super::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn kind_of(ip: &str) -> Option<AddressKind> {
    classify(ip.parse().unwrap())
}

#[test]
fn every_special_ipv4_range_has_its_kind_and_public_ones_have_none() {
    use AddressKind::*;
    let cases = [
        ("0.0.0.0", Some(Unspecified)),
        ("0.1.2.3", Some(Unspecified)),
        ("127.0.0.1", Some(Loopback)),
        ("127.255.255.254", Some(Loopback)),
        ("10.0.0.5", Some(Private)),
        ("172.16.0.1", Some(Private)),
        ("172.31.255.255", Some(Private)),
        ("172.15.255.255", None),
        ("172.32.0.0", None),
        ("192.168.1.1", Some(Private)),
        ("169.254.169.254", Some(LinkLocal)),
        ("100.64.0.1", Some(SharedAddressSpace)),
        ("100.127.255.255", Some(SharedAddressSpace)),
        ("100.63.255.255", None),
        ("100.128.0.0", None),
        ("198.18.0.1", Some(Benchmarking)),
        ("198.19.255.255", Some(Benchmarking)),
        ("198.20.0.0", None),
        ("192.0.2.7", Some(Documentation)),
        ("198.51.100.7", Some(Documentation)),
        ("203.0.113.7", Some(Documentation)),
        ("192.0.0.8", Some(Reserved)),
        ("224.0.0.1", Some(Multicast)),
        ("239.255.255.255", Some(Multicast)),
        ("240.0.0.1", Some(Reserved)),
        ("255.255.255.254", Some(Reserved)),
        ("255.255.255.255", Some(Broadcast)),
        ("1.1.1.1", None),
        ("8.8.8.8", None),
        ("93.184.215.14", None),
        ("192.0.3.1", None),
    ];
    for (ip, kind) in cases {
        assert_eq!(kind_of(ip), kind, "{ip}");
    }
}

#[test]
fn every_special_ipv6_range_has_its_kind_and_public_ones_have_none() {
    use AddressKind::*;
    let cases = [
        ("::", Some(Unspecified)),
        ("::1", Some(Loopback)),
        ("::10.0.0.1", Some(Reserved)),
        ("fe80::1", Some(LinkLocal)),
        ("febf::1", Some(LinkLocal)),
        ("fec0::1", Some(SiteLocal)),
        ("feff::1", Some(SiteLocal)),
        ("fc00::1", Some(UniqueLocal)),
        ("fd12:3456::1", Some(UniqueLocal)),
        ("ff02::1", Some(Multicast)),
        ("2001:db8::1", Some(Documentation)),
        ("100::1", Some(Reserved)),
        ("2001::1", Some(Reserved)),
        ("2606:4700:4700::1111", None),
        ("2a00:1450:4001::200e", None),
        ("2001:db9::1", None),
    ];
    for (ip, kind) in cases {
        assert_eq!(kind_of(ip), kind, "{ip}");
    }
}

#[test]
fn mapped_6to4_and_nat64_forms_are_judged_by_their_ipv4_address() {
    use AddressKind::*;
    let cases = [
        ("::ffff:127.0.0.1", Some(Loopback), Embedding::Mapped),
        ("::ffff:10.0.0.5", Some(Private), Embedding::Mapped),
        ("::ffff:169.254.169.254", Some(LinkLocal), Embedding::Mapped),
        ("::ffff:1.1.1.1", None, Embedding::Mapped),
        ("2002:7f00:1::1", Some(Loopback), Embedding::SixToFour),
        ("2002:a00:5::", Some(Private), Embedding::SixToFour),
        ("2002:c612:1::1", Some(Benchmarking), Embedding::SixToFour),
        ("2002:101:101::1", None, Embedding::SixToFour),
        ("64:ff9b::a9fe:a9fe", Some(LinkLocal), Embedding::Nat64),
        (
            "64:ff9b::6440:1",
            Some(SharedAddressSpace),
            Embedding::Nat64,
        ),
        ("64:ff9b::c000:207", Some(Documentation), Embedding::Nat64),
        ("64:ff9b::808:808", None, Embedding::Nat64),
    ];
    for (ip, kind, embedding) in cases {
        assert_eq!(kind_of(ip), kind, "{ip}");
        if kind.is_some() {
            let denied = EgressPolicy::strict()
                .check(SocketAddr::new(ip.parse().unwrap(), 80))
                .unwrap_err();
            assert_eq!(denied.embedded.map(|(e, _)| e), Some(embedding), "{ip}");
        }
    }
}

#[test]
fn the_strict_policy_denies_every_kind_with_a_reason_naming_it() {
    let denied = EgressPolicy::strict()
        .check(addr("[2002:a00:5::]:443"))
        .unwrap_err();
    assert_eq!(denied.kind, AddressKind::Private);
    assert_eq!(
        denied.embedded,
        Some((Embedding::SixToFour, Ipv4Addr::new(10, 0, 0, 5)))
    );
    assert_eq!(
        denied.to_string(),
        "[2002:a00:5::]:443 is a private address (6to4 form of 10.0.0.5), denied by the egress policy"
    );
    assert_eq!(
        EgressPolicy::strict()
            .check(addr("127.0.0.1:80"))
            .unwrap_err()
            .to_string(),
        "127.0.0.1:80 is a loopback address, denied by the egress policy"
    );
    assert!(EgressPolicy::strict().check(addr("1.1.1.1:443")).is_ok());
}

#[test]
fn allow_private_lets_exactly_the_private_kinds_through() {
    let policy = EgressPolicy::new(true, Vec::new());
    assert!(policy.allow_private());
    for ip in [
        "127.0.0.1",
        "10.0.0.5",
        "169.254.169.254",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "fec0::1",
        "::ffff:192.168.0.1",
    ] {
        assert!(
            policy
                .check(SocketAddr::new(ip.parse().unwrap(), 80))
                .is_ok(),
            "{ip}"
        );
    }
    for ip in [
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "240.0.0.1",
        "2001:db8::1",
        "ff02::1",
    ] {
        assert!(
            policy
                .check(SocketAddr::new(ip.parse().unwrap(), 80))
                .is_err(),
            "{ip}"
        );
    }
}

#[test]
fn allow_entries_let_exactly_their_networks_or_pairs_through() {
    let policy = EgressPolicy::new(
        false,
        vec![
            "127.0.0.1:7777".parse().unwrap(),
            "10.1.0.0/16".parse().unwrap(),
            "fd00::/8".parse().unwrap(),
            "[::1]:9000".parse().unwrap(),
        ],
    );
    assert_eq!(policy.allow().len(), 4);
    for ok in [
        "127.0.0.1:7777",
        "[::ffff:127.0.0.1]:7777",
        "10.1.2.3:1",
        "10.1.255.255:65535",
        "[fd12::1]:443",
        "[::1]:9000",
    ] {
        assert!(policy.check(addr(ok)).is_ok(), "{ok}");
    }
    for denied in [
        "127.0.0.1:7778",
        "127.0.0.2:7777",
        "10.2.0.1:80",
        "[fe80::1]:443",
        "[::1]:9001",
    ] {
        assert!(policy.check(addr(denied)).is_err(), "{denied}");
    }
}

#[test]
fn allow_entries_parse_networks_pairs_and_bare_addresses() {
    let parse = |text: &str| text.parse::<AllowEntry>();
    assert_eq!(
        parse("127.0.0.1/32").unwrap(),
        AllowEntry::Network {
            addr: "127.0.0.1".parse().unwrap(),
            prefix: 32
        }
    );
    assert_eq!(
        parse(" 10.0.0.7 ").unwrap().to_string(),
        "10.0.0.7/32".to_owned()
    );
    assert_eq!(parse("::1").unwrap().to_string(), "::1/128");
    assert_eq!(
        parse("[::1]:7777").unwrap(),
        AllowEntry::Socket(addr("[::1]:7777"))
    );
    assert_eq!(
        parse("127.0.0.1:7777").unwrap().to_string(),
        "127.0.0.1:7777"
    );
    assert!(parse("0.0.0.0/0").unwrap().matches(addr("10.0.0.1:1")));
    assert!(!parse("0.0.0.0/0").unwrap().matches(addr("[::1]:1")));
    for bad in [
        "",
        "localhost:7777",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/x",
        "relay.example",
        "127.0.0.1:99999",
    ] {
        let error = parse(bad).unwrap_err();
        assert_eq!(error.0, bad);
        assert!(error.to_string().contains("neither a network"), "{error}");
    }
}

#[tokio::test]
async fn a_name_resolving_to_a_denied_address_is_refused_without_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let egress = Egress::default().with_resolver(Arc::new(
        StaticResolver::new().with("relay.example", ["127.0.0.1".parse().unwrap()]),
    ));
    let error = egress
        .connect("relay.example", port, Duration::from_secs(5))
        .await
        .unwrap_err();
    match error {
        Error::EgressDenied { host, denied } => {
            assert_eq!(host, "relay.example");
            assert_eq!(denied.kind, AddressKind::Loopback);
        }
        other => panic!("expected EgressDenied, got {other:?}"),
    }
    let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
    assert!(accepted.is_err(), "a connection was made");
}

#[tokio::test]
async fn one_denied_address_among_several_refuses_the_name() {
    let egress = Egress::default().with_resolver(Arc::new(StaticResolver::new().with(
        "mixed.example",
        ["1.1.1.1".parse().unwrap(), "10.0.0.5".parse().unwrap()],
    )));
    assert!(matches!(
        egress.resolve("mixed.example", 443).await,
        Err(Error::EgressDenied { denied, .. }) if denied.kind == AddressKind::Private
    ));
}

#[tokio::test]
async fn an_allowed_address_is_connected_to_the_checked_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let egress = Egress::new(EgressPolicy::strict().allowing(AllowEntry::Socket(local)))
        .with_resolver(Arc::new(
            StaticResolver::new().with("Relay.Example", [local.ip()]),
        ));
    let stream = egress
        .connect("relay.example", local.port(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(stream.peer_addr().unwrap(), local);
    let literal = egress
        .connect("127.0.0.1", local.port(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(literal.peer_addr().unwrap(), local);
    assert!(matches!(
        egress
            .connect("[::1]", local.port(), Duration::from_secs(5))
            .await,
        Err(Error::EgressDenied { .. })
    ));
}

#[tokio::test]
async fn resolution_and_connection_failures_are_told_apart() {
    let egress = Egress::new(EgressPolicy::new(true, Vec::new()))
        .with_resolver(Arc::new(StaticResolver::new().with("empty.example", [])));
    assert!(matches!(
        egress.resolve("unknown.example", 1).await,
        Err(Error::Resolve { host, .. }) if host == "unknown.example"
    ));
    assert!(matches!(
        egress.resolve("empty.example", 1).await,
        Err(Error::NoAddress { host }) if host == "empty.example"
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    assert!(matches!(
        egress.connect("127.0.0.1", closed.port(), Duration::from_secs(5)).await,
        Err(Error::Connect { addr, .. }) if addr == closed
    ));
}

/// A resolver that never answers.
#[derive(Debug)]
struct Silent;

impl Resolve for Silent {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> ResolveFuture<'a> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn resolving_and_connecting_end_within_the_timeout() {
    let egress = Egress::default().with_resolver(Arc::new(Silent));
    assert!(matches!(
        egress.connect("slow.example", 443, Duration::from_secs(3)).await,
        Err(Error::ConnectTimeout { host, after }) if host == "slow.example" && after == Duration::from_secs(3)
    ));
}

#[test]
fn kinds_have_names_and_private_ones_are_known() {
    assert_eq!(
        AddressKind::SharedAddressSpace.to_string(),
        "shared-address-space"
    );
    let private: Vec<_> = [
        AddressKind::Unspecified,
        AddressKind::Loopback,
        AddressKind::Private,
        AddressKind::LinkLocal,
        AddressKind::SharedAddressSpace,
        AddressKind::Benchmarking,
        AddressKind::Multicast,
        AddressKind::Broadcast,
        AddressKind::Documentation,
        AddressKind::UniqueLocal,
        AddressKind::SiteLocal,
        AddressKind::Reserved,
    ]
    .into_iter()
    .filter(|kind| kind.is_private())
    .map(AddressKind::as_str)
    .collect();
    assert_eq!(
        private,
        [
            "loopback",
            "private",
            "link-local",
            "shared-address-space",
            "unique-local",
            "site-local"
        ]
    );
    assert_eq!(Egress::default().policy(), &EgressPolicy::strict());
}

#[tokio::test]
async fn the_system_resolver_resolves_localhost() {
    let addrs = SystemResolver.resolve("localhost", 80).await.unwrap();
    assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
    assert!(matches!(
        Egress::default().resolve("localhost", 80).await,
        Err(Error::EgressDenied { .. })
    ));
}
