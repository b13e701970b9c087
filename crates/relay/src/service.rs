//! [`RelayService`]: the archive relay as a service of the runtime, run with
//! `bigbrotr run relay`.

use anyhow::Context as _;
use bigbrotr_service_runtime::{Service, ServiceContext};
use tokio_util::sync::CancellationToken;

use crate::config::RelayFile;
use crate::server::RelayServer;
use crate::TARGET;

/// The archive relay: serves the archive read-only to Nostr clients on
/// `relay.listen` until the runtime stops it. It fails only when it cannot
/// start (the address is taken, the database does not answer); a client or
/// a query fails only its own request.
///
/// Its metrics, labelled with the service: `bigbrotr_relay_connections`
/// (gauge), `bigbrotr_relay_messages_total{type}`,
/// `bigbrotr_relay_events_sent_total` and
/// `bigbrotr_relay_refusals_total{reason}` (counters).
#[derive(Debug)]
pub struct RelayService {
    file: RelayFile,
}

impl Service for RelayService {
    const NAME: &'static str = "relay";
    type Config = RelayFile;

    fn build(ctx: &ServiceContext<RelayFile>) -> anyhow::Result<Self> {
        Ok(Self {
            file: ctx.config().clone(),
        })
    }

    async fn run(
        self,
        ctx: ServiceContext<RelayFile>,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        let config = self.file.relay;
        let listen = config.listen;
        let server = RelayServer::bind(config, ctx.brotr().pool().clone(), ctx.metrics().clone())
            .await
            .with_context(|| format!("the relay could not start on {listen}"))?;
        tracing::info!(
            target: TARGET,
            service = %ctx.name(),
            address = %server.local_addr(),
            "serving the archive as a read-only relay"
        );
        cancel.cancelled().await;
        server.shutdown().await;
        Ok(())
    }
}
