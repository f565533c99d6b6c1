//! The probes of a health check, one function each: a catalog query from `check/sql/`, then for each
//! object it names, where needed, a query of the object's rows. Each returns its findings; an object the
//! role may not read becomes a `not-checked` finding ([`not_checked`]) rather than an error.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::{Finding, LOCK_TIMEOUT, Level, is_privilege_refusal, sqlstate_text};
use crate::catalog::{foreign_keys, query};
use crate::error::{Error, Result, SqlState};
use crate::pg::sequence as seq;
use crate::pg::{Row, Session, quote_literal};
use crate::store::SnapshotMeta;

const SNAPSHOT_TABLES: &str = "snapshot_tables";
const INVALID_INDEXES: &str = "invalid_indexes";
const NOT_VALID_CONSTRAINTS: &str = "not_valid_constraints";
const DISABLED_TRIGGERS: &str = "disabled_triggers";
const OWNED_SEQUENCES: &str = "owned_sequences";
const LOCK_WAITS: &str = "lock_waits";
const LONG_RUNNING: &str = "long_running";
const CAN_READ_ALL_STATS: &str = "can_read_all_stats";

/// What could not be checked, as a finding, when `e` says why in a way the user can act on: the role
/// lacks a privilege (SQLSTATE 42501: `info`), or a table stayed locked past [`LOCK_TIMEOUT`] (55P03:
/// `warning`, as a lock held that long is news by itself). Any other error is returned: the check could
/// not run.
pub(super) fn not_checked(e: Error, what: &str, object: Option<&str>) -> Result<Finding> {
    let (level, why) = if is_privilege_refusal(&e) {
        (Level::Info, "the role lacks the privilege it needs".to_owned())
    } else if e.sqlstate() == Some(SqlState::LOCK_NOT_AVAILABLE) {
        (Level::Warning, format!("a lock it needs was not granted within {}s", LOCK_TIMEOUT.as_secs()))
    } else {
        return Err(e);
    };
    let sqlstate = sqlstate_text(&e).unwrap_or_default();
    Ok(Finding::new("not-checked", level, object, format!("{what}: not checked, {why} (SQLSTATE {sqlstate})"))
        .with_details(json!({ "what": what, "sqlstate": sqlstate, "error": e.to_string() })))
}

/// Reads `column` of a row of the query `name`.
fn get<'a, T: crate::pg::FromSql<'a>>(row: &'a Row, name: &str, column: &str) -> Result<T> {
    query::get(row, name, column)
}

/// `ONLY ` before a table whose own rows are all its rows; nothing before a partitioned one, whose rows
/// are in its partitions.
fn only(partitioned: bool) -> &'static str {
    if partitioned { "" } else { "ONLY " }
}

/// The snapshot's tables exist, and their rows against the snapshot's: `missing-table` errors, and
/// `row-loss` findings (see [`super::row_loss`]). Counts every row of each table (`count(*)`).
pub(super) async fn snapshot_tables(
    s: &Session,
    snapshot: &SnapshotMeta,
    max_loss: Option<f64>,
) -> Result<Vec<Finding>> {
    let names: Vec<String> = snapshot.tables.iter().map(|t| t.table.clone()).collect();
    let rows = query::run(s, SNAPSHOT_TABLES, include_str!("sql/snapshot_tables.sql"), &[&names]).await?;
    let mut out = Vec::new();
    for (row, table) in rows.iter().zip(&snapshot.tables) {
        if !get::<bool>(row, SNAPSHOT_TABLES, "present")? {
            out.push(
                Finding::new(
                    "missing-table",
                    Level::Error,
                    Some(&table.table),
                    format!("in snapshot `{}` ({} rows) but not in the database", snapshot.id, table.rows),
                )
                .with_details(json!({ "snapshot_rows": table.rows })),
            );
            continue;
        }
        let partitioned: bool = get(row, SNAPSHOT_TABLES, "partitioned")?;
        let sql = format!("SELECT count(*) FROM {}{}", only(partitioned), table.table);
        match s.query_one(&sql, &[]).await {
            Ok(count) => {
                let now: i64 = crate::pg::value(&count, 0, &sql)?;
                out.extend(super::row_loss(&table.table, table.rows, now.max(0) as u64, max_loss));
            }
            Err(e) => out.push(not_checked(e, &format!("rows of `{}`", table.table), Some(&table.table))?),
        }
    }
    Ok(out)
}

/// Rows that break a foreign key, whether or not it is enforced now: `foreign-key-violation` errors. Every
/// key is checked by an anti-join of its rows, so that a key added NOT VALID over rows that break it, or
/// one whose triggers were disabled while rows were written, shows. Temporal keys (18+), whose rows are
/// matched by periods, are named as not checked.
pub(super) async fn foreign_keys(s: &Session) -> Result<Vec<Finding>> {
    let every_key: Option<Vec<String>> = None;
    let rows = query::run(s, foreign_keys::NAME, foreign_keys::SQL, &[&every_key]).await?;
    let mut out = Vec::new();
    for row in &rows {
        let key = foreign_keys::read(row)?;
        let what = key.what();
        if key.period {
            out.push(Finding::new(
                "not-checked",
                Level::Info,
                Some(&key.child),
                format!("{what}: not checked, a temporal key's rows are matched by periods"),
            ));
            continue;
        }
        let sql = key.violations_sql();
        let found = match s.query_one(&sql, &[]).await {
            Ok(found) => found,
            Err(e) => {
                out.push(not_checked(e, &what, Some(&key.child))?);
                continue;
            }
        };
        let count: i64 = crate::pg::value(&found, 0, &sql)?;
        if count == 0 {
            continue;
        }
        let example: Option<String> = crate::pg::value(&found, 1, &sql)?;
        let example = example.unwrap_or_default();
        let not_valid = if key.validated { "" } else { " (the key is NOT VALID)" };
        out.push(
            Finding::new(
                "foreign-key-violation",
                Level::Error,
                Some(&key.child),
                format!("{}{not_valid}", key.violation(count, &example)),
            )
            .with_details(json!({
                "constraint": key.name,
                "table": key.child,
                "references": key.parent,
                "rows": count,
                "example": example,
                "validated": key.validated,
            })),
        );
    }
    Ok(out)
}

/// Indexes that are not valid: `invalid-index` errors; under a unique one, which enforces nothing, the
/// keys held by more than one row: `duplicate-key` errors.
pub(super) async fn invalid_indexes(s: &Session) -> Result<Vec<Finding>> {
    let rows = query::run(s, INVALID_INDEXES, include_str!("sql/invalid_indexes.sql"), &[]).await?;
    let mut out = Vec::new();
    for row in &rows {
        let index: String = get(row, INVALID_INDEXES, "index")?;
        let table: String = get(row, INVALID_INDEXES, "table")?;
        let unique: bool = get(row, INVALID_INDEXES, "is_unique")?;
        let definition: String = get(row, INVALID_INDEXES, "definition")?;
        let enforces = if unique { ", and it does not enforce uniqueness" } else { "" };
        out.push(
            Finding::new(
                "invalid-index",
                Level::Error,
                Some(&index),
                format!(
                    "index on `{table}` is not valid (a failed CREATE INDEX CONCURRENTLY or REINDEX): queries do not use it{enforces}; drop it and create it again"
                ),
            )
            .with_details(json!({ "table": table, "unique": unique, "definition": definition })),
        );
        if !unique {
            continue;
        }
        let keys: Vec<String> = get(row, INVALID_INDEXES, "keys")?;
        let predicate: Option<String> = get(row, INVALID_INDEXES, "predicate")?;
        let nulls_not_distinct: bool = get(row, INVALID_INDEXES, "nulls_not_distinct")?;
        let partitioned: bool = get(row, INVALID_INDEXES, "partitioned")?;
        let sql = duplicates_sql(&table, partitioned, &keys, predicate.as_deref(), nulls_not_distinct);
        let found = match s.query_one(&sql, &[]).await {
            Ok(found) => found,
            Err(e) => {
                out.push(not_checked(e, &format!("duplicates under `{index}`"), Some(&index))?);
                continue;
            }
        };
        let groups: i64 = crate::pg::value(&found, 0, &sql)?;
        let rows: Option<i64> = crate::pg::value(&found, 1, &sql)?;
        if groups > 0 {
            let rows = rows.unwrap_or_default();
            out.push(
                Finding::new(
                    "duplicate-key",
                    Level::Error,
                    Some(&index),
                    format!("{groups} keys of unique index on `{table}` are each held by more than one row ({rows} rows in all)"),
                )
                .with_details(json!({ "table": table, "keys": groups, "rows": rows })),
            );
        }
    }
    Ok(out)
}

/// The query counting the keys of a unique index held by more than one row, and those rows: over the
/// index's predicate, and, unless NULLs are not distinct, over rows whose key has no NULL (those never
/// collide).
fn duplicates_sql(
    table: &str,
    partitioned: bool,
    keys: &[String],
    predicate: Option<&str>,
    nulls_not_distinct: bool,
) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("({k})")).collect();
    let mut conditions: Vec<String> = predicate.map(|p| format!("({p})")).into_iter().collect();
    if !nulls_not_distinct {
        conditions.extend(keys.iter().map(|k| format!("{k} IS NOT NULL")));
    }
    let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    format!(
        "SELECT count(*), sum(n)::int8 FROM (SELECT count(*) AS n FROM {}{table}{filter} GROUP BY {} HAVING count(*) > 1) d",
        only(partitioned),
        keys.join(", ")
    )
}

/// Constraints added NOT VALID and never validated: `not-valid-constraint` warnings. (Whether the rows
/// of a NOT VALID foreign key hold is [`foreign_keys`]' to say.)
pub(super) async fn not_valid_constraints(s: &Session) -> Result<Vec<Finding>> {
    let rows = query::run(s, NOT_VALID_CONSTRAINTS, include_str!("sql/not_valid_constraints.sql"), &[]).await?;
    let mut out = Vec::new();
    for row in &rows {
        let name: String = get(row, NOT_VALID_CONSTRAINTS, "name")?;
        let table: String = get(row, NOT_VALID_CONSTRAINTS, "table")?;
        let kind: String = get(row, NOT_VALID_CONSTRAINTS, "kind")?;
        let definition: String = get(row, NOT_VALID_CONSTRAINTS, "definition")?;
        out.push(
            Finding::new(
                "not-valid-constraint",
                Level::Warning,
                Some(&table),
                format!(
                    "{kind} constraint `{name}` is NOT VALID: rows older than it are not known to satisfy it; `ALTER TABLE {table} VALIDATE CONSTRAINT {}` checks them",
                    crate::pg::quote_ident(&name)
                ),
            )
            .with_details(json!({ "constraint": name, "kind": kind, "definition": definition })),
        );
    }
    Ok(out)
}

/// Disabled triggers: the user's, `disabled-trigger` warnings; the internal ones behind a foreign key,
/// `foreign-key-not-enforced` warnings, one per key (whether its rows hold is [`foreign_keys`]' to say).
pub(super) async fn disabled_triggers(s: &Session) -> Result<Vec<Finding>> {
    let rows = query::run(s, DISABLED_TRIGGERS, include_str!("sql/disabled_triggers.sql"), &[]).await?;
    let mut out = Vec::new();
    // Each foreign key's table, with the tables whose triggers for it are disabled.
    let mut keys: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for row in &rows {
        let name: String = get(row, DISABLED_TRIGGERS, "name")?;
        let table: String = get(row, DISABLED_TRIGGERS, "table")?;
        if get::<bool>(row, DISABLED_TRIGGERS, "internal")? {
            let key: Option<String> = get(row, DISABLED_TRIGGERS, "foreign_key")?;
            let key_table: Option<String> = get(row, DISABLED_TRIGGERS, "foreign_key_table")?;
            if let (Some(key), Some(key_table)) = (key, key_table) {
                let tables = keys.entry((key_table, key)).or_default();
                if !tables.contains(&table) {
                    tables.push(table);
                }
            }
            continue;
        }
        out.push(
            Finding::new(
                "disabled-trigger",
                Level::Warning,
                Some(&table),
                format!("trigger `{name}` is disabled: it does not fire"),
            )
            .with_details(json!({ "trigger": name })),
        );
    }
    for ((table, key), on) in keys {
        let on: Vec<String> = on.iter().map(|t| format!("`{t}`")).collect();
        out.push(
            Finding::new(
                "foreign-key-not-enforced",
                Level::Warning,
                Some(&table),
                format!(
                    "foreign key `{key}` is not enforced: its triggers on {} are disabled (`DISABLE TRIGGER ALL`); `ENABLE TRIGGER ALL` enforces it again",
                    on.join(", ")
                ),
            )
            .with_details(json!({ "constraint": key, "triggers_on": on })),
        );
    }
    Ok(out)
}

/// Sequences (a serial's, an identity's, or one a column's default calls) whose next value is not past
/// their integer column's values (for a descending one, not below them): the next insert that takes it
/// collides with a row. `sequence-behind` errors.
pub(super) async fn sequences(s: &Session) -> Result<Vec<Finding>> {
    let rows = query::run(s, OWNED_SEQUENCES, include_str!("sql/owned_sequences.sql"), &[]).await?;
    let mut out = Vec::new();
    for row in &rows {
        let sequence: String = get(row, OWNED_SEQUENCES, "sequence")?;
        let table: String = get(row, OWNED_SEQUENCES, "table")?;
        let column: String = get(row, OWNED_SEQUENCES, "column")?;
        let increment: i64 = get(row, OWNED_SEQUENCES, "increment")?;
        // Inheritance children and partitions take their values from the same sequence: all rows count.
        let sql = format!(
            "SELECT s.last_value, s.is_called, (SELECT max({column})::int8 FROM {table}), \
             (SELECT min({column})::int8 FROM {table}) FROM {sequence} s"
        );
        let found = match s.query_one(&sql, &[]).await {
            Ok(found) => found,
            Err(e) => {
                out.push(not_checked(e, &format!("sequence `{sequence}`"), Some(&sequence))?);
                continue;
            }
        };
        let last: i64 = crate::pg::value(&found, 0, &sql)?;
        let is_called: bool = crate::pg::value(&found, 1, &sql)?;
        let max: Option<i64> = crate::pg::value(&found, 2, &sql)?;
        let min: Option<i64> = crate::pg::value(&found, 3, &sql)?;
        if let Some(finding) = sequence_behind(&sequence, &table, &column, increment, last, is_called, max, min) {
            out.push(finding);
        }
    }
    Ok(out)
}

/// The finding for a sequence whose next value (`last` plus `increment` once called, `last` itself
/// before) does not pass the column's values, or `None`.
#[allow(clippy::too_many_arguments)]
fn sequence_behind(
    sequence: &str,
    table: &str,
    column: &str,
    increment: i64,
    last: i64,
    is_called: bool,
    max: Option<i64>,
    min: Option<i64>,
) -> Option<Finding> {
    // A sequence at its end fails on the next call rather than colliding: not this probe's finding.
    let next = seq::next_value(last, is_called, increment)?;
    let word = seq::edge(increment);
    let edge = if increment > 0 { max? } else { min? };
    if !seq::collides(next, increment, edge) {
        return None;
    }
    let fix = format!("SELECT setval({}, (SELECT {word}({column}) FROM {table}))", quote_literal(sequence));
    Some(
        Finding::new(
            "sequence-behind",
            Level::Error,
            Some(sequence),
            format!(
                "its next value {next} is not past {word}({column}) = {edge} in `{table}`: the next insert that takes it collides; `{fix}` moves it on"
            ),
        )
        .with_details(json!({ "table": table, "column": column, "next_value": next, "column_value": edge })),
    )
}

/// Sessions of this database waiting for a lock: `lock-wait` warnings naming who blocks them.
pub(super) async fn lock_waits(s: &Session) -> Result<Vec<Finding>> {
    let rows = query::run(s, LOCK_WAITS, include_str!("sql/lock_waits.sql"), &[]).await?;
    let mut out = Vec::new();
    for row in &rows {
        let pid: i32 = get(row, LOCK_WAITS, "pid")?;
        let locktype: String = get(row, LOCK_WAITS, "locktype")?;
        let mode: String = get(row, LOCK_WAITS, "mode")?;
        let relation: Option<String> = get(row, LOCK_WAITS, "relation")?;
        let seconds: Option<f64> = get(row, LOCK_WAITS, "seconds")?;
        let blocked_by: Vec<i32> = get(row, LOCK_WAITS, "blocked_by")?;
        let role: Option<String> = get(row, LOCK_WAITS, "role")?;
        let on = relation.as_ref().map_or_else(|| format!("a {locktype} lock"), |r| format!("`{r}`"));
        let waits = seconds.map_or_else(|| "waits".to_owned(), |s| format!("has waited {s:.0}s"));
        let by: Vec<String> = blocked_by.iter().map(ToString::to_string).collect();
        let object = format!("pid {pid}");
        out.push(
            Finding::new(
                "lock-wait",
                Level::Warning,
                Some(&object),
                format!(
                    "pid {pid} (role `{}`) {waits} for {mode} on {on}, blocked by pid {}",
                    role.as_deref().unwrap_or("?"),
                    if by.is_empty() { "?".to_owned() } else { by.join(", ") }
                ),
            )
            .with_details(json!({
                "pid": pid, "mode": mode, "relation": relation, "seconds": seconds, "blocked_by": blocked_by,
            })),
        );
    }
    Ok(out)
}

/// Active statements running longer than `limit`: `long-running-query` warnings. A role that cannot see
/// other roles' statements gets an `info` saying so.
pub(super) async fn long_running(s: &Session, limit: Duration) -> Result<Vec<Finding>> {
    let seconds = limit.as_secs_f64();
    let rows = query::run(s, LONG_RUNNING, include_str!("sql/long_running.sql"), &[&seconds]).await?;
    let mut out = Vec::new();
    for row in &rows {
        let pid: i32 = get(row, LONG_RUNNING, "pid")?;
        let role: Option<String> = get(row, LONG_RUNNING, "role")?;
        let running: f64 = get(row, LONG_RUNNING, "seconds")?;
        let statement: Option<String> = get(row, LONG_RUNNING, "query")?;
        let object = format!("pid {pid}");
        let statement = statement.unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
        out.push(
            Finding::new(
                "long-running-query",
                Level::Warning,
                Some(&object),
                format!(
                    "pid {pid} (role `{}`) has run one statement for {running:.0}s (over {seconds:.0}s): `{statement}`",
                    role.as_deref().unwrap_or("?")
                ),
            )
            .with_details(json!({ "pid": pid, "seconds": running, "query": statement })),
        );
    }
    let all = query::run_one(s, CAN_READ_ALL_STATS, include_str!("sql/can_read_all_stats.sql")).await?;
    if !get::<bool>(&all, CAN_READ_ALL_STATS, "can_read_all_stats")? {
        out.push(Finding::new(
            "not-checked",
            Level::Info,
            None,
            "long-running statements of other roles: not checked, their sessions' statements are hidden from a role that is no superuser nor member of `pg_read_all_stats`",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_is_behind_when_its_next_value_does_not_pass_the_column() {
        let behind = |inc, last, called, max, min| {
            sequence_behind("public.s", "public.t", "id", inc, last, called, max, min)
                .map(|f| f.details["next_value"].clone())
        };
        // Called at 10: next is 11, past max 10; not called at 10: next is 10, taken.
        assert_eq!(behind(1, 10, true, Some(10), Some(1)), None);
        assert_eq!(behind(1, 10, false, Some(10), Some(1)), Some(json!(10)));
        assert_eq!(behind(1, 5, true, Some(10), Some(1)), Some(json!(6)));
        // An empty table holds nothing to collide with.
        assert_eq!(behind(1, 1, false, None, None), None);
        // Descending: next must be below the minimum.
        assert_eq!(behind(-1, -5, true, Some(-1), Some(-6)), Some(json!(-6)));
        assert_eq!(behind(-1, -7, true, Some(-1), Some(-6)), None);
        // At the end of its range it fails rather than collides.
        assert_eq!(behind(1, i64::MAX, true, Some(i64::MAX), Some(1)), None);
    }

    #[test]
    fn duplicates_are_counted_over_the_predicate_and_keys_without_nulls() {
        let keys = ["a".to_owned(), "lower(b)".to_owned()];
        assert_eq!(
            duplicates_sql("public.t", false, &keys, Some("c > 0"), false),
            "SELECT count(*), sum(n)::int8 FROM (SELECT count(*) AS n FROM ONLY public.t WHERE (c > 0) AND (a) IS NOT NULL \
             AND (lower(b)) IS NOT NULL GROUP BY (a), (lower(b)) HAVING count(*) > 1) d"
        );
        assert_eq!(
            duplicates_sql("public.p", true, &keys[..1], None, true),
            "SELECT count(*), sum(n)::int8 FROM (SELECT count(*) AS n FROM public.p GROUP BY (a) HAVING count(*) > 1) d"
        );
    }

    #[test]
    fn only_missing_privileges_and_locks_make_a_probe_not_checked() {
        let refused =
            Error::new(crate::ErrorKind::Database, "permission denied").with_sqlstate(SqlState::INSUFFICIENT_PRIVILEGE);
        let f = not_checked(refused, "rows of `public.t`", Some("public.t")).unwrap();
        assert_eq!((f.check.as_str(), f.level), ("not-checked", Level::Info));
        assert_eq!(
            f.message,
            "rows of `public.t`: not checked, the role lacks the privilege it needs (SQLSTATE 42501)"
        );
        let locked = Error::new(crate::ErrorKind::Database, "lock").with_sqlstate(SqlState::LOCK_NOT_AVAILABLE);
        assert_eq!(not_checked(locked, "x", None).unwrap().level, Level::Warning);
        let other = Error::new(crate::ErrorKind::Database, "x").with_sqlstate(SqlState::QUERY_CANCELED);
        assert!(not_checked(other, "x", None).is_err());
    }
}
