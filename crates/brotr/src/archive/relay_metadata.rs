//! Recording relay checks: whether the relay answered, and its NIP-11 and
//! NIP-66 documents, each stored once under its content address.

use bigbrotr_pool::{column, Type};
use serde_json::Value;

use super::{count, Brotr};
use crate::error::{database, Result};
use crate::metadata::{document, Document, RelayMetadata};
use crate::relay::RelayId;

impl Brotr {
    /// Records one check of a relay made at `generated_at` (Unix seconds):
    /// whether it `connected`, and the NIP-11 and NIP-66 documents obtained.
    /// Each document is stored once, under its [`document_id`]; returns
    /// `true` when the check is new (a relay has at most one check per
    /// `generated_at`).
    ///
    /// [`document_id`]: crate::document_id
    pub async fn insert_relay_metadata(
        &self,
        relay_id: RelayId,
        nip11: Option<Value>,
        nip66: Option<Value>,
        connected: bool,
        generated_at: i64,
    ) -> Result<bool> {
        let metadata = RelayMetadata {
            relay_id,
            generated_at,
            connected,
            nip11,
            nip66,
        };
        let stored = self
            .insert_relay_metadata_batch(std::slice::from_ref(&metadata))
            .await?;
        Ok(stored == 1)
    }

    /// Records relay checks and returns how many are new. Documents are
    /// stored once per [`document_id`](crate::document_id), with U+0000
    /// removed (which `jsonb` cannot hold). See [`Brotr`] for chunking.
    #[tracing::instrument(
        name = "brotr.insert_relay_metadata_batch",
        target = "bigbrotr::brotr",
        skip_all,
        fields(items = items.len()),
        err(level = "debug")
    )]
    pub async fn insert_relay_metadata_batch(&self, items: &[RelayMetadata]) -> Result<u64> {
        let mut prepared = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let nip11 = item
                .nip11
                .as_ref()
                .map(|doc| document(doc, "nip11", index))
                .transpose()?;
            let nip66 = item
                .nip66
                .as_ref()
                .map(|doc| document(doc, "nip66", index))
                .transpose()?;
            prepared.push((item, nip11, nip66));
        }
        let mut stored = 0;
        for chunk in prepared.chunks(self.config.batch_size) {
            stored += self.insert_relay_metadata_chunk(chunk).await?;
        }
        Ok(stored)
    }

    async fn insert_relay_metadata_chunk(
        &self,
        chunk: &[(&RelayMetadata, Option<Document>, Option<Document>)],
    ) -> Result<u64> {
        const WHAT: &str = "insert_relay_metadata";
        let relay_ids: Vec<i32> = chunk.iter().map(|(m, _, _)| m.relay_id.get()).collect();
        let generated_at: Vec<i64> = chunk.iter().map(|(m, _, _)| m.generated_at).collect();
        let connected: Vec<bool> = chunk.iter().map(|(m, _, _)| m.connected).collect();
        let nip11_ids: Vec<Option<&[u8]>> = chunk
            .iter()
            .map(|(_, d, _)| d.as_ref().map(|d| &d.id[..]))
            .collect();
        let nip11_data: Vec<Option<&Value>> = chunk
            .iter()
            .map(|(_, d, _)| d.as_ref().map(|d| &d.data))
            .collect();
        let nip66_ids: Vec<Option<&[u8]>> = chunk
            .iter()
            .map(|(_, _, d)| d.as_ref().map(|d| &d.id[..]))
            .collect();
        let nip66_data: Vec<Option<&Value>> = chunk
            .iter()
            .map(|(_, _, d)| d.as_ref().map(|d| &d.data))
            .collect();
        let row = self
            .bounded_insert(WHAT, async {
                self.pool
                    .fetch_one(
                        "SELECT insert_relay_metadata($1, $2, $3, $4, $5, $6, $7)",
                        &[
                            (&relay_ids, Type::INT4_ARRAY),
                            (&generated_at, Type::INT8_ARRAY),
                            (&connected, Type::BOOL_ARRAY),
                            (&nip11_ids, Type::BYTEA_ARRAY),
                            (&nip11_data, Type::JSONB_ARRAY),
                            (&nip66_ids, Type::BYTEA_ARRAY),
                            (&nip66_data, Type::JSONB_ARRAY),
                        ],
                    )
                    .await
            })
            .await?;
        let stored: i64 = column(&row, 0, WHAT, "insert_relay_metadata").map_err(database(WHAT))?;
        Ok(count(stored))
    }
}
