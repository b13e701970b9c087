//! Recording relays: each URL normalised (when relay validation is on) and
//! stored unless known, its id returned.

use bigbrotr_pool::{column, Type};

use super::Brotr;
use crate::error::{database, Error, Result};
use crate::relay::{validate_relay_url, Network, RelayId};

impl Brotr {
    /// Records a relay unless known, and returns its id. With relay
    /// validation on, `url` is checked and normalised by
    /// [`validate_relay_url`] first, so every spelling of one relay gets the
    /// same id. `inserted_at` (Unix seconds) is kept only when the relay is
    /// new.
    pub async fn insert_relay(&self, url: &str, inserted_at: i64) -> Result<RelayId> {
        let ids = self.insert_relay_batch(&[url], inserted_at).await?;
        ids.into_iter()
            .next()
            .ok_or_else(|| Error::UnexpectedResult {
                what: "insert_relays",
                expected: "1 row".to_owned(),
                found: "0 rows".to_owned(),
            })
    }

    /// Records the relays not yet known and returns the id of every input
    /// URL, in input order (a URL given twice gets its id twice). With relay
    /// validation on, every URL is normalised first, and an invalid one fails
    /// the call ([`Error::InvalidRelayUrl`], naming it and its position)
    /// before anything is stored; with it off, URLs are stored as given and
    /// their network guessed from the host ([`Network::of_url_text`]).
    #[tracing::instrument(
        name = "brotr.insert_relay_batch",
        target = "bigbrotr::brotr",
        skip_all,
        fields(items = urls.len()),
        err(level = "debug")
    )]
    pub async fn insert_relay_batch<S: AsRef<str>>(
        &self,
        urls: &[S],
        inserted_at: i64,
    ) -> Result<Vec<RelayId>> {
        let mut texts = Vec::with_capacity(urls.len());
        let mut networks = Vec::with_capacity(urls.len());
        for (index, url) in urls.iter().enumerate() {
            let url = url.as_ref();
            if self.config.enable_relay_validation {
                let normal = validate_relay_url(url).map_err(|source| Error::InvalidRelayUrl {
                    index,
                    url: url.to_owned(),
                    source,
                })?;
                networks.push(normal.network().as_str());
                texts.push(normal.as_str().to_owned());
            } else {
                networks.push(Network::of_url_text(url).as_str());
                texts.push(url.to_owned());
            }
        }
        let mut ids = Vec::with_capacity(urls.len());
        for (texts, networks) in texts
            .chunks(self.config.batch_size)
            .zip(networks.chunks(self.config.batch_size))
        {
            ids.extend(
                self.insert_relays_chunk(texts, networks, inserted_at)
                    .await?,
            );
        }
        Ok(ids)
    }

    async fn insert_relays_chunk(
        &self,
        urls: &[String],
        networks: &[&str],
        inserted_at: i64,
    ) -> Result<Vec<RelayId>> {
        const WHAT: &str = "insert_relays";
        let rows = self
            .bounded_insert(WHAT, async {
                self.pool
                    .fetch_all(
                        "SELECT ord, relay_id FROM insert_relays($1, $2, $3)",
                        &[
                            (&urls, Type::TEXT_ARRAY),
                            (&networks, Type::TEXT_ARRAY),
                            (&inserted_at, Type::INT8),
                        ],
                    )
                    .await
            })
            .await?;
        let mut ids = Vec::with_capacity(urls.len());
        for (expected, row) in (1..).zip(&rows) {
            let ord: i32 = column(row, 0, WHAT, "ord").map_err(database(WHAT))?;
            if ord != expected {
                return Err(unexpected_rows(WHAT, urls.len(), rows.len()));
            }
            ids.push(RelayId(
                column(row, 1, WHAT, "relay_id").map_err(database(WHAT))?,
            ));
        }
        if ids.len() != urls.len() {
            return Err(unexpected_rows(WHAT, urls.len(), rows.len()));
        }
        Ok(ids)
    }
}

fn unexpected_rows(what: &'static str, expected: usize, found: usize) -> Error {
    Error::UnexpectedResult {
        what,
        expected: format!("{expected} rows numbered 1 to {expected}"),
        found: format!("{found} rows"),
    }
}

#[cfg(test)]
mod tests {
    use crate::archive::tests::offline;
    use crate::error::Error;

    #[tokio::test]
    async fn an_invalid_relay_url_fails_the_batch_before_the_database() {
        let brotr = offline();
        let Err(Error::InvalidRelayUrl { index, url, .. }) = brotr
            .insert_relay_batch(&["wss://ok.example", "https://no.example"], 0)
            .await
        else {
            panic!("expected InvalidRelayUrl");
        };
        assert_eq!(index, 1);
        assert_eq!(url, "https://no.example");
    }
}
