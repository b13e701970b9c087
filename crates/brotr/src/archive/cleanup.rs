//! Cleanups: deleting the events and documents no relay refers to any
//! more, and relay checks past their retention, a bounded number per call
//! of the procedure.

use bigbrotr_pool::{column, Type};

use super::{count, Brotr};
use crate::error::{database, Error, Result};

impl Brotr {
    /// Deletes every event seen on no relay any more (its relays were
    /// deleted), `limit` at a time so that no call holds many locks, and
    /// returns how many were deleted. Safe while events are inserted.
    pub async fn delete_orphan_events(&self, limit: u32) -> Result<u64> {
        self.delete_orphans("delete_orphan_events", limit).await
    }

    /// Deletes every NIP-11 document no relay check refers to, `limit` at a
    /// time, and returns how many were deleted.
    pub async fn delete_orphan_nip11(&self, limit: u32) -> Result<u64> {
        self.delete_orphans("delete_orphan_nip11", limit).await
    }

    /// Deletes every NIP-66 document no relay check refers to, `limit` at a
    /// time, and returns how many were deleted.
    pub async fn delete_orphan_nip66(&self, limit: u32) -> Result<u64> {
        self.delete_orphans("delete_orphan_nip66", limit).await
    }

    /// Deletes every relay check generated before `before` (Unix seconds)
    /// except each relay's latest, `limit` at a time, and returns how many
    /// were deleted. The documents they referred to may become orphans:
    /// [`delete_orphan_nip11`](Self::delete_orphan_nip11) and
    /// [`delete_orphan_nip66`](Self::delete_orphan_nip66) remove them.
    pub async fn delete_old_relay_metadata(&self, before: i64, limit: u32) -> Result<u64> {
        const WHAT: &str = "delete_old_relay_metadata";
        if limit == 0 {
            return Err(Error::InvalidLimit { what: WHAT });
        }
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        self.delete_until_none(
            WHAT,
            "SELECT delete_old_relay_metadata($1, $2)",
            &[(&before, Type::INT8), (&limit, Type::INT4)],
        )
        .await
    }

    #[tracing::instrument(
        name = "brotr.delete_orphans",
        target = "bigbrotr::brotr",
        skip(self),
        err(level = "debug")
    )]
    async fn delete_orphans(&self, what: &'static str, limit: u32) -> Result<u64> {
        if limit == 0 {
            return Err(Error::InvalidLimit { what });
        }
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let sql = format!("SELECT {what}($1)");
        self.delete_until_none(what, &sql, &[(&limit, Type::INT4)])
            .await
    }

    /// Runs `sql`, a call of the cleanup procedure `what` returning how
    /// many rows it deleted, until it deletes none; the total.
    async fn delete_until_none(
        &self,
        what: &'static str,
        sql: &str,
        params: &[bigbrotr_pool::Param<'_>],
    ) -> Result<u64> {
        let mut total = 0;
        loop {
            let row = self
                .pool
                .fetch_one(sql, params)
                .await
                .map_err(database(what))?;
            let deleted = count(column::<i64>(&row, 0, what, what).map_err(database(what))?);
            if deleted == 0 {
                break;
            }
            total += deleted;
        }
        if total > 0 {
            tracing::info!(target: "bigbrotr::brotr", what, deleted = total, "rows deleted by a cleanup");
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use crate::archive::tests::offline;
    use crate::error::Error;

    #[tokio::test]
    async fn a_zero_cleanup_limit_is_refused_without_touching_the_database() {
        let brotr = offline();
        assert!(matches!(
            brotr.delete_orphan_events(0).await,
            Err(Error::InvalidLimit {
                what: "delete_orphan_events"
            })
        ));
    }
}
