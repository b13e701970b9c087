//! [`Initializer`], the one-shot service.

use std::path::PathBuf;

use anyhow::Context as _;
use bigbrotr_service_runtime::{Counter, Service, ServiceContext};
use tokio_util::sync::CancellationToken;

use crate::config::InitializerFile;
use crate::seed::{seed_relays, SeedReport, TARGET};

/// Ensures the schema, then seeds the relays of the seed file: a one-shot
/// service, run with `bigbrotr run initializer`.
///
/// Its metrics, labelled with the service: `bigbrotr_initializer_relays_seeded_total`
/// (relays sent to the archive), `bigbrotr_initializer_invalid_lines_total`
/// and `bigbrotr_initializer_duplicate_lines_total`.
#[derive(Debug)]
pub struct Initializer {
    seed_file: PathBuf,
    seeded: Counter,
    invalid: Counter,
    duplicates: Counter,
}

impl Initializer {
    /// Ensures the schema (when `initializer.ensure_schema`) and seeds the
    /// relays; returns what the seeding did.
    pub async fn initialize(
        &self,
        ctx: &ServiceContext<InitializerFile>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<SeedReport> {
        let config = &ctx.config().initializer;
        if config.ensure_schema {
            let sql_dir = ctx.implementation().sql_dir();
            let schema = bigbrotr_brotr::apply_schema(ctx.brotr().pool(), &sql_dir)
                .await
                .with_context(|| format!("applying the schema of {}", sql_dir.display()))?;
            tracing::info!(
                target: TARGET,
                version = schema.version(),
                applied = schema.applied.len(),
                already_present = schema.already_present.len(),
                "schema ready"
            );
        }
        let report = seed_relays(ctx.brotr(), &self.seed_file, config.batch_size, cancel).await?;
        self.seeded.add(report.stored as u64);
        self.invalid.add(report.invalid.len() as u64);
        self.duplicates.add(report.duplicates as u64);
        tracing::info!(
            target: TARGET,
            file = %self.seed_file.display(),
            valid = report.valid,
            stored = report.stored,
            duplicates = report.duplicates,
            invalid = report.invalid.len(),
            "seed relays stored"
        );
        Ok(report)
    }

    /// The seed file it reads.
    #[must_use]
    pub fn seed_file(&self) -> &std::path::Path {
        &self.seed_file
    }
}

impl Service for Initializer {
    const NAME: &'static str = "initializer";
    type Config = InitializerFile;

    fn build(ctx: &ServiceContext<InitializerFile>) -> anyhow::Result<Self> {
        let seed_file = ctx
            .implementation()
            .data_dir()
            .join(&ctx.config().initializer.seed_file);
        let metrics = ctx.metrics();
        Ok(Self {
            seed_file,
            seeded: metrics.counter(
                "initializer_relays_seeded_total",
                "Relays of the seed file sent to the archive, new or already known.",
                &[],
            ),
            invalid: metrics.counter(
                "initializer_invalid_lines_total",
                "Lines of the seed file that are not a valid relay URL.",
                &[],
            ),
            duplicates: metrics.counter(
                "initializer_duplicate_lines_total",
                "Lines of the seed file repeating a relay already listed.",
                &[],
            ),
        })
    }

    async fn run(
        self,
        ctx: ServiceContext<InitializerFile>,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        self.initialize(&ctx, &cancel).await.map(drop)
    }
}
