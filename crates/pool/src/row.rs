//! Reading the typed columns of a returned row.

use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use crate::error::{Error, Result};

/// Column `index` of `row` as a `T`, or [`Error::Column`] naming `what` was
/// being done and the column (`name`): the row has no such column, or its
/// value is of another type, or NULL where `T` is not an `Option`.
pub fn column<'r, T: FromSql<'r>>(
    row: &'r Row,
    index: usize,
    what: &'static str,
    name: &'static str,
) -> Result<T> {
    row.try_get(index).map_err(|source| Error::Column {
        what,
        column: name,
        source,
    })
}
