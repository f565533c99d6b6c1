//! After the load: proof that what landed is what was dumped (row counts, content digests, sequence
//! values), and that every foreign key still holds although it was not enforced during the load.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::{TargetTable, VerifyLevel};
use crate::error::Result;
use crate::format::{PartKind, SequenceValue, TupleScanner};
use crate::pg::{ConnectOptions, Session, quote_qualified};
use crate::plan::{LARGE_OBJECTS_QUERY, copy_out_sql};

pub(super) struct Checked {
    pub verified: usize,
    pub problems: Vec<String>,
}

/// Counts (and, at `Full`, digests) every restored table in one session and compares with the archive.
pub(super) async fn tables(session: &Session, tables: &[TargetTable], level: VerifyLevel) -> Result<Checked> {
    let mut checked = Checked { verified: 0, problems: Vec::new() };
    for t in tables {
        if let Some(verdict) = table(session, t, level).await? {
            checked.verified += 1;
            checked.problems.extend(verdict);
        }
    }
    Ok(checked)
}

/// The same with `jobs` sessions at once, biggest tables first; for data already committed.
pub(super) async fn tables_parallel(
    connect: &ConnectOptions,
    encoding: &str,
    jobs: usize,
    tables: &[TargetTable],
    level: VerifyLevel,
) -> Result<Checked> {
    let mut order: Vec<TargetTable> = tables.to_vec();
    order.sort_by_key(|t| std::cmp::Reverse(t.rows));
    let queue = Arc::new(Mutex::new(order.into_iter().collect::<VecDeque<_>>()));
    let mut handles = Vec::new();
    for _ in 0..jobs.max(1).min(tables.len().max(1)) {
        let (connect, encoding, queue) = (connect.clone(), encoding.to_string(), queue.clone());
        handles.push(tokio::spawn(async move {
            let session = Session::open(&connect, Some(&encoding)).await?;
            let mut checked = Checked { verified: 0, problems: Vec::new() };
            loop {
                let next = queue.lock().expect("queue lock").pop_front();
                let Some(t) = next else { break };
                if let Some(verdict) = table(&session, &t, level).await? {
                    checked.verified += 1;
                    checked.problems.extend(verdict);
                }
            }
            Ok::<Checked, crate::Error>(checked)
        }));
    }
    let mut all = Checked { verified: 0, problems: Vec::new() };
    for h in handles {
        let c = h
            .await
            .map_err(|e| crate::Error::new(crate::ErrorKind::Io, format!("a verification worker failed: {e}")))??;
        all.verified += c.verified;
        all.problems.extend(c.problems);
    }
    all.problems.sort();
    Ok(all)
}

/// Checks one table; `None` when it has no parts to check against, else the problem found, if any.
async fn table(session: &Session, t: &TargetTable, level: VerifyLevel) -> Result<Option<Option<String>>> {
    let Some(first) = t.parts.first() else { return Ok(None) };
    let label = match t.kind {
        PartKind::Table => format!("table `{}`", t.name),
        PartKind::LargeObjects => "large objects".to_string(),
    };
    let (rows, digest) = if level == VerifyLevel::Count {
        let sql = match t.kind {
            PartKind::Table => {
                format!("SELECT count(*) FROM ONLY {}{}", quote_qualified(&t.name), super::load::where_(t))
            }
            PartKind::LargeObjects => "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata".to_string(),
        };
        (session.query_one(&sql, &[]).await?.get::<_, i64>(0) as u64, None)
    } else {
        let sql = match t.kind {
            PartKind::Table => copy_out_sql(&t.name, &first.columns, first.format, None, first.filter.as_deref()),
            PartKind::LargeObjects => format!("COPY ({LARGE_OBJECTS_QUERY}) TO STDOUT (FORMAT binary)"),
        };
        let mut scanner = TupleScanner::new(first.format).with_fields(first.columns.len());
        let mut pending: Vec<u8> = Vec::new();
        let mut stream = session.copy_out(&sql).await?;
        while let Some(data) = stream.next().await? {
            pending.extend_from_slice(&data);
            let used = scanner
                .scan(&pending)
                .map_err(|e| crate::Error::new(crate::ErrorKind::Database, format!("{label}: reading it back: {e}")))?;
            pending.drain(..used);
        }
        (scanner.rows(), Some(scanner.digest()))
    };
    if rows != t.rows {
        return Ok(Some(Some(format!("{label}: {rows} rows in the database, the archive holds {}", t.rows))));
    }
    if let Some(d) = digest
        && d != t.digest
    {
        return Ok(Some(Some(format!(
            "{label}: the rows differ from the archive's although their number matches (content digest {d}, archive {})",
            t.digest
        ))));
    }
    Ok(Some(None))
}

/// Reads every restored sequence back.
pub(super) async fn sequences(session: &Session, sequences: &[SequenceValue]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for s in sequences {
        let row =
            session.query_one(&format!("SELECT last_value, is_called FROM {}", quote_qualified(&s.name)), &[]).await?;
        let (last, called): (i64, bool) = (row.get(0), row.get(1));
        if (last, called) != (s.last_value, s.is_called) {
            problems.push(format!(
                "sequence `{}`: last_value {last} (is_called {called}), the archive holds {} (is_called {})",
                s.name, s.last_value, s.is_called
            ));
        }
    }
    Ok(problems)
}

/// Checks every foreign key on or to a restored table, naming each violated one.
pub(super) async fn foreign_keys(session: &Session, tables: &[TargetTable]) -> Result<Vec<String>> {
    let names = super::table_names(tables);
    let mut problems = Vec::new();
    for fk in session.query(include_str!("sql/foreign_keys.sql"), &[&names]).await? {
        let name: String = fk.get("name");
        let child: String = fk.get("child");
        let parent: String = fk.get("parent");
        let child_cols: Vec<String> = fk.get("child_columns");
        let parent_cols: Vec<String> = fk.get("parent_columns");
        // Partitioned tables hold their rows in partitions; a plain parent's inheritance children are
        // not covered by its foreign keys.
        let only = |kind: String| if kind == "p" { "" } else { "ONLY " };
        let join: Vec<String> = child_cols.iter().zip(&parent_cols).map(|(c, p)| format!("p.{p} = c.{c}")).collect();
        let missing = format!(
            "NOT EXISTS (SELECT 1 FROM {}{parent} p WHERE {})",
            only(fk.get("parent_kind")),
            join.join(" AND ")
        );
        let is = |test: &str, glue: &str| {
            child_cols.iter().map(|c| format!("c.{c} IS {test}")).collect::<Vec<_>>().join(glue)
        };
        let condition = if fk.get::<_, String>("match_type") == "f" {
            // MATCH FULL: all null is fine; a mix of null and not null is a violation by itself.
            format!("NOT ({}) AND (({}) OR {missing})", is("NULL", " AND "), is("NULL", " OR "))
        } else {
            format!("{} AND {missing}", is("NOT NULL", " AND "))
        };
        let cols = child_cols.iter().map(|c| format!("c.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT count(*), (array_agg(ROW({cols})::text))[1] FROM {}{child} c WHERE {condition}",
            only(fk.get("child_kind"))
        );
        let row = session.query_one(&sql, &[]).await?;
        let count: i64 = row.get(0);
        if count > 0 {
            let example: Option<String> = row.get(1);
            problems.push(format!(
                "foreign key `{name}` of `{child}`: {count} rows reference keys missing from `{parent}` (for example {})",
                example.unwrap_or_default()
            ));
        }
    }
    Ok(problems)
}
