//! Running one catalog query (a `.sql` file of `catalog/sql/` or `schema/sql/`) and reading its rows:
//! errors name the query and the column, never panic on a NULL or an unexpected type, and `-vv` logs
//! how long each query took and how many rows it returned, so that a slow query on a big catalog shows.

use std::time::Instant;

use crate::error::{Error, ErrorKind, Result};
use crate::pg::{FromSql, Row, Session, ToSql};

/// Runs the catalog query `name` (its file name, for messages and logs).
pub(crate) async fn run(session: &Session, name: &str, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
    let started = Instant::now();
    let rows = session.query(sql, params).await.map_err(|e| e.context(format!("catalog query `{name}`")))?;
    tracing::debug!("catalog query `{name}`: {} rows in {:.3}s", rows.len(), started.elapsed().as_secs_f64());
    Ok(rows)
}

/// Runs the catalog query `name`, which returns exactly one row.
pub(crate) async fn run_one(session: &Session, name: &str, sql: &str) -> Result<Row> {
    let mut rows = run(session, name, sql, &[]).await?;
    match rows.len() {
        1 => Ok(rows.remove(0)),
        n => Err(Error::new(ErrorKind::Database, format!("catalog query `{name}` returned {n} rows instead of one"))),
    }
}

/// Column `column` of a row of the catalog query `name`: an error naming both, instead of a panic, when the
/// server sent NULL where `T` cannot hold it, or a value of another type.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, name: &str, column: &str) -> Result<T> {
    row.try_get(column).map_err(|e| {
        Error::new(ErrorKind::Database, format!("catalog query `{name}`: column `{column}` is unreadable: {e}"))
    })
}
