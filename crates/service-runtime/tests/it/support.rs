//! A probe service whose behaviour its file sets, and runtimes to run it.

use std::net::SocketAddr;
use std::time::Duration;

use bigbrotr_brotr::Brotr;
use bigbrotr_config::{
    BrotrConfig, DatabaseConfig, Implementation, PoolConfig, Problems, RetryConfig, Validate,
};
use bigbrotr_pool::ConnectionPool;
use bigbrotr_service_runtime::{Counter, LoopService, Runtime, RuntimeConfig, ServiceContext};
use bigbrotr_test_support::{workspace_root, TestDb};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the probe does at each iteration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProbeConfig {
    /// Iterations (from 1) that fail.
    pub(crate) fail: Vec<u64>,
    /// Every iteration from this one on fails; 0 = none.
    pub(crate) fail_from: u64,
    /// How long each iteration takes.
    #[serde(with = "bigbrotr_config::duration")]
    #[schemars(with = "bigbrotr_config::duration::Seconds")]
    pub(crate) work: Duration,
    /// Record relay `wss://<name>-<n>.example` at iteration `n`.
    pub(crate) write: bool,
    /// Socket addresses the service's egress policy must let through, or
    /// the iteration fails.
    pub(crate) must_reach: Vec<SocketAddr>,
}

impl Validate for ProbeConfig {
    fn validate(&self, _problems: &mut Problems) {}
}

bigbrotr_service_runtime::service_file! {
    /// The file `config/services/probe.yaml`.
    pub(crate) struct ProbeFile {
        /// What the probe does.
        pub(crate) probe: ProbeConfig,
    }
}

/// A loop service doing what its `probe` section says.
pub(crate) struct Probe {
    iteration: u64,
    seen: Counter,
}

impl LoopService for Probe {
    const NAME: &'static str = "probe";
    type Config = ProbeFile;

    fn build(ctx: &ServiceContext<ProbeFile>) -> anyhow::Result<Self> {
        Ok(Self {
            iteration: 0,
            seen: ctx.metrics().counter(
                "probe_iterations_seen_total",
                "Iterations the probe saw.",
                &[("kind", "test")],
            ),
        })
    }

    async fn loop_iteration(
        &mut self,
        ctx: &ServiceContext<ProbeFile>,
        _cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        self.iteration += 1;
        self.seen.inc();
        let probe = &ctx.config().probe;
        if !probe.work.is_zero() {
            tokio::time::sleep(probe.work).await;
        }
        for addr in &probe.must_reach {
            ctx.egress().policy().check(*addr)?;
        }
        if probe.write {
            let url = format!("wss://{}-{}.example", ctx.name(), self.iteration);
            ctx.brotr().insert_relay(&url, 1_700_000_000).await?;
        }
        if probe.fail.contains(&self.iteration)
            || (probe.fail_from != 0 && self.iteration >= probe.fail_from)
        {
            anyhow::bail!("probe failure at iteration {}", self.iteration);
        }
        Ok(())
    }
}

/// A probe file named `name` with `probe` and a loop of `interval`,
/// `max_iterations`, `error_retry_delay` and `max_consecutive_errors`.
pub(crate) fn probe_file(
    name: &str,
    probe: ProbeConfig,
    interval: Duration,
    max_iterations: u64,
    error_retry_delay: Duration,
    max_consecutive_errors: u32,
) -> ProbeFile {
    let mut file = ProbeFile {
        probe,
        ..ProbeFile::default()
    };
    file.service.name = name.to_owned();
    file.looping.interval = interval;
    file.looping.max_iterations = max_iterations;
    file.looping.error_retry_delay = error_retry_delay;
    file.looping.max_consecutive_errors = max_consecutive_errors;
    file
}

/// The shipped `bigbrotr` implementation.
pub(crate) fn implementation() -> Implementation {
    Implementation::open(&workspace_root(), "bigbrotr").expect("the shipped implementation")
}

/// A runtime on a pool that never connects: for tests that touch no
/// database and run under paused time.
pub(crate) fn offline_runtime(settings: RuntimeConfig) -> Runtime {
    let pool = ConnectionPool::new(
        &DatabaseConfig::default(),
        &PoolConfig::default(),
        &RetryConfig::default(),
    )
    .expect("a valid pool configuration");
    let brotr = Brotr::new(pool, BrotrConfig::default()).expect("a valid archive configuration");
    Runtime::new(implementation(), brotr, settings)
}

/// A runtime on `db`, its pool connected.
pub(crate) async fn runtime_on(db: &TestDb, settings: RuntimeConfig) -> Runtime {
    runtime_on_pool(pool_to(db.database_config()), settings).await
}

/// A pool of the default size to `database`.
pub(crate) fn pool_to(database: DatabaseConfig) -> ConnectionPool {
    ConnectionPool::new(&database, &PoolConfig::default(), &RetryConfig::default())
        .expect("a valid pool configuration")
}

/// Settings with `grace` and the HTTP endpoint on any free loopback port.
pub(crate) fn settings(grace: Duration) -> RuntimeConfig {
    let mut settings = RuntimeConfig {
        shutdown_grace: grace,
        pool_close_grace: Duration::from_secs(1),
        ..RuntimeConfig::default()
    };
    settings.http.listen = "127.0.0.1:0".parse().expect("an address");
    settings
}

/// The status, `Content-Type` and body of a `GET` of `path` on the HTTP
/// endpoint at `address`.
pub(crate) async fn get(address: SocketAddr, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("http://{address}{path}"))
        .await
        .expect("the endpoint answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("a body"))
}

/// Rows of `table` in `db`.
pub(crate) async fn count(db: &TestDb, table: &str) -> i64 {
    let client = db.client().await.expect("a connection");
    let rows = client
        .query_typed(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("a count");
    rows[0].get(0)
}

/// A runtime on `pool`, connected first: for a pool that reaches the
/// database another way than the test database's own settings.
pub(crate) async fn runtime_on_pool(pool: ConnectionPool, settings: RuntimeConfig) -> Runtime {
    pool.connect().await.expect("the database answers");
    let brotr = Brotr::new(pool, BrotrConfig::default()).expect("a valid archive configuration");
    Runtime::new(implementation(), brotr, settings)
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that a test can
/// [`freeze`](Self::freeze) (connections stay open and nothing passes) or
/// [`cut`](Self::cut) (connections close and new ones are refused): a
/// database that stops answering.
pub(crate) struct Proxy {
    address: SocketAddr,
    frozen: watch::Sender<bool>,
    cut: CancellationToken,
}

impl Proxy {
    /// A proxy forwarding every connection to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("an address");
        let (frozen, _) = watch::channel(false);
        let cut = CancellationToken::new();
        let (frozen_rx, stop) = (frozen.subscribe(), cut.clone());
        tokio::spawn(async move {
            loop {
                let mut client = tokio::select! {
                    () = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => continue,
                    },
                };
                let mut frozen = frozen_rx.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    if *frozen.borrow() {
                        // Held open, never answered.
                        stop.cancelled().await;
                        return;
                    }
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                        _ = frozen.wait_for(|frozen| *frozen) => {}
                        () = stop.cancelled() => return,
                    }
                    // Frozen: both ends stay open until the cut.
                    stop.cancelled().await;
                });
            }
        });
        Self {
            address,
            frozen,
            cut,
        }
    }

    /// The address to connect to instead of `upstream`.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Nothing passes any more; connections stay open.
    pub(crate) fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Every connection closes and new ones are refused.
    pub(crate) fn cut(&self) {
        self.cut.cancel();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut.cancel();
    }
}
