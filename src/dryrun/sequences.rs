//! At the rehearsal's end: the sequences the migration leaves behind the values of the columns they
//! fill, where the application's next INSERT that takes the default fails on the unique key. A table
//! rebuilt by copying (`CREATE TABLE t_new (id bigserial PRIMARY KEY, ...); INSERT INTO t_new SELECT *
//! FROM t`) has a new sequence that starts at 1 under rows up to the old table's highest id; a sequence
//! restarted, or rows inserted with ids of their own, do the same.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::pg::sequence as seq;
use crate::pg::{Session, quote_ident, quote_literal, value};

const STATES: &str = include_str!("sql/sequence_states.sql");
const FED: &str = include_str!("sql/sequence_fed.sql");

/// A sequence the migration leaves at or behind the values of the unique column it fills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SequenceBehind {
    pub table: String,
    pub column: String,
    pub sequence: String,
    /// The value the sequence gives next.
    pub next: i64,
    /// The column's highest value (its lowest, for a sequence that counts down).
    pub highest: i64,
    /// The sequence's step: below 0 it counts down.
    pub increment: i64,
    /// Rows the migration did not write already held values the sequence has yet to give, and the
    /// migration did not move the sequence: it was behind before the migration.
    pub before: bool,
}

/// The last value each sequence the session can read gave, by oid (`None`: it gives its start value
/// next, or is not readable).
pub async fn states(s: &Session) -> Result<BTreeMap<i64, Option<i64>>> {
    let rows = s.query(STATES, &[]).await?;
    rows.iter().map(|r| Ok((value(r, "oid", STATES)?, value(r, "last_value", STATES)?))).collect()
}

/// `result`, a step of the sequences' check, as `Some`; `None` when the server refused it (a privilege, a
/// lock), which `refused` is told: the sequences go unchecked, the rehearsal goes on. Any other error
/// (the connection, an interruption) ends it.
pub fn unless_refused<T>(result: Result<T>, refused: impl FnOnce(&Error)) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.sqlstate().is_some() => {
            refused(&e);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The sequences the migration made or moved back (compared with `before`, [`states`] at the
/// rehearsal's start: a sequence that only went forward was used, not moved).
fn moved(before: &BTreeMap<i64, Option<i64>>, after: &BTreeMap<i64, Option<i64>>) -> Vec<i64> {
    after
        .iter()
        .filter(|(oid, last)| match before.get(oid) {
            None => true,
            Some(was) => last != &was && (last.is_none() || last < &was),
        })
        .map(|(oid, _)| *oid)
        .collect()
}

/// Where the migration ran, for [`behind`].
pub enum Ran {
    /// In the checking session's transaction (`pgsafe dry-run FILE`).
    Here,
    /// In other sessions, after the transaction `xid` (a command on a scratch copy), writing `tables`.
    After { xid: String, tables: Vec<String> },
}

/// Of the columns a sequence fills and a unique index of their own keeps unique, in the tables the
/// migration wrote or fed by a sequence it made or moved back, those whose values reach the value the
/// sequence gives next. `before` and `after`: [`states`] before and after the migration ran.
pub async fn behind(
    s: &Session,
    before: &BTreeMap<i64, Option<i64>>,
    after: &BTreeMap<i64, Option<i64>>,
    ran: &Ran,
) -> Result<Vec<SequenceBehind>> {
    let moved = moved(before, after);
    let (tables, older) = match ran {
        Ran::Here => (Vec::new(), "pg_catalog.age(xmin) > 0".to_owned()),
        Ran::After { xid, tables } => {
            (tables.clone(), format!("pg_catalog.age(xmin) > pg_catalog.age({}::xid)", quote_literal(xid)))
        }
    };
    let mut found = Vec::new();
    for row in s.query(FED, &[&moved, &tables]).await? {
        let table: String = value(&row, "table", FED)?;
        let column: String = value(&row, "column", FED)?;
        let sequence: String = value(&row, "sequence", FED)?;
        let oid: i64 = value(&row, "sequence_oid", FED)?;
        let increment: i64 = value(&row, "increment", FED)?;
        let col = quote_ident(&column);
        let state = format!(
            "SELECT s.last_value, s.is_called, (SELECT {}({col})::int8 FROM {table}) FROM {sequence} s",
            seq::edge(increment)
        );
        let row = s.query_one(&state, &[]).await?;
        let (last, called): (i64, bool) = (value(&row, 0, &state)?, value(&row, 1, &state)?);
        let highest: Option<i64> = value(&row, 2, &state)?;
        // A sequence at its end gives no next value: its own error, not a key's. An empty column holds none.
        let (Some(next), Some(highest)) = (seq::next_value(last, called, increment), highest) else { continue };
        if !seq::collides(next, increment, highest) {
            continue;
        }
        // A row older than the migration already holding a value to come.
        let reaches = if increment > 0 { ">=" } else { "<=" };
        let sql = format!("SELECT EXISTS (SELECT FROM {table} WHERE {col} {reaches} {next} AND {older})");
        let old: bool = s.query(&sql, &[]).await?.first().map(|r| value(r, 0, &sql)).transpose()?.unwrap_or(false);
        let before = old && !moved.contains(&oid);
        found.push(SequenceBehind { table, column, sequence, next, highest, increment, before });
    }
    Ok(found)
}

impl SequenceBehind {
    /// What it means, and the statement that puts the sequence past the values.
    pub fn describe(&self) -> String {
        let SequenceBehind { table, column, sequence, next, highest, increment, .. } = self;
        let (which, edge) = (if *increment > 0 { "up to" } else { "down to" }, seq::edge(*increment));
        format!(
            "sequence `{sequence}` gives {next} next, and `{table}.{column}` holds values {which} {highest}: an INSERT \
             that takes the default would fail on the unique key (`SELECT setval({}, {edge}({})) FROM {table}` puts \
             it past them)",
            quote_literal(sequence),
            quote_ident(column),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_counts_as_moved_when_it_is_new_or_went_back() {
        let before = BTreeMap::from([(1, Some(10)), (2, Some(10)), (3, Some(10)), (4, None)]);
        let after = BTreeMap::from([(1, Some(12)), (2, None), (3, Some(5)), (4, None), (5, None)]);
        assert_eq!(moved(&before, &after), [2, 3, 5]);
    }

    #[test]
    fn the_finding_says_how_to_put_the_sequence_past_the_values() {
        let found = SequenceBehind {
            table: "t_new".into(),
            column: "id".into(),
            sequence: "t_new_id_seq".into(),
            next: 1,
            highest: 1000,
            increment: 1,
            before: false,
        };
        assert_eq!(
            found.describe(),
            "sequence `t_new_id_seq` gives 1 next, and `t_new.id` holds values up to 1000: an INSERT that takes the \
             default would fail on the unique key (`SELECT setval('t_new_id_seq', max(id)) FROM t_new` puts it past them)"
        );
    }
}
