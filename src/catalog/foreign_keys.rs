//! The foreign keys of a database, as `sql/foreign_keys.sql` reads them, for the two places that look for
//! rows breaking them: `pgsafe check` (every key) and the data-only restore (the keys of the tables it
//! loads). The query that finds those rows is [`crate::sql::foreign_key`]'s.

use super::query::get;
use crate::error::Result;
use crate::pg::Row;
use crate::sql::foreign_key::ForeignKey;

/// The query's name, for messages and logs.
pub(crate) const NAME: &str = "foreign_keys";

/// The query, with one parameter (`text[]`): NULL for every key, or the qualified names of the tables
/// whose keys it returns. Beside the columns [`read`] reads, each row has `definition`, `comment`,
/// `loaded_tables` and `referenced_tables`.
pub(crate) const SQL: &str = include_str!("sql/foreign_keys.sql");

/// The key a row of [`SQL`] describes.
pub(crate) fn read(row: &Row) -> Result<ForeignKey> {
    let text = |c: &str| get::<String>(row, NAME, c);
    let flag = |c: &str| get::<bool>(row, NAME, c);
    let names = |c: &str| get::<Vec<String>>(row, NAME, c);
    Ok(ForeignKey {
        name: text("name")?,
        child: text("child")?,
        child_partitioned: flag("child_partitioned")?,
        parent: text("parent")?,
        parent_partitioned: flag("parent_partitioned")?,
        match_full: flag("match_full")?,
        child_columns: names("child_columns")?,
        parent_columns: names("parent_columns")?,
        validated: flag("validated")?,
        period: flag("period")?,
    })
}
