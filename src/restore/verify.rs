//! After the load: proof that what landed is what was dumped (row counts, content digests, sequence
//! values), and that every foreign key still holds although it was not enforced during the load.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::{TargetTable, VerifyLevel};
use crate::error::Result;
use crate::format::{ContentDigest, PageRange, PartKind, SequenceValue, TupleScanner};
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

/// Bounds of the pages one verification session reads of a big table at once. A table of more than
/// twice the range is read in ranges by several sessions (its digest is the sum of theirs, whatever
/// the row order); the range is a quarter of each session's share of all tables, within these bounds.
const MIN_RANGE_PAGES: i64 = 256;
const MAX_RANGE_PAGES: i64 = 16_384;

/// The same with `jobs` sessions at once, biggest tables first; for data already committed. At `Full`
/// on PostgreSQL 14 and later (TID range scans), a big table is cut into page ranges, so that it does not
/// leave the other sessions idle at the end.
pub(super) async fn tables_parallel(
    connect: &ConnectOptions,
    encoding: &str,
    jobs: usize,
    tables: &[TargetTable],
    level: VerifyLevel,
) -> Result<Checked> {
    let tables: Vec<&TargetTable> = tables.iter().filter(|t| !t.parts.is_empty()).collect();
    let first = Session::open(connect, Some(encoding)).await?;
    let ranges = if level == VerifyLevel::Full { page_ranges(&first, &tables, jobs).await? } else { HashMap::new() };
    let mut work: Vec<(usize, Option<PageRange>, u64)> = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        match ranges.get(&i) {
            Some(list) => work.extend(list.iter().map(|r| (i, Some(*r), t.rows / list.len() as u64))),
            None => work.push((i, None, t.rows)),
        }
    }
    work.sort_by_key(|w| std::cmp::Reverse(w.2));
    let queue = Arc::new(Mutex::new(work.into_iter().map(|(i, r, _)| (i, r)).collect::<VecDeque<_>>()));
    let shared: Arc<Vec<TargetTable>> = Arc::new(tables.iter().map(|t| (*t).clone()).collect());
    let mut handles = Vec::new();
    let mut first = Some(first);
    for _ in 0..jobs.max(1).min(queue.lock().expect("queue lock").len().max(1)) {
        let (connect, encoding, queue, shared) = (connect.clone(), encoding.to_string(), queue.clone(), shared.clone());
        let session = first.take();
        handles.push(tokio::spawn(async move {
            let session = match session {
                Some(s) => s,
                None => Session::open(&connect, Some(&encoding)).await?,
            };
            let mut read = Vec::new();
            loop {
                let next = queue.lock().expect("queue lock").pop_front();
                let Some((i, range)) = next else { break };
                let (rows, digest) = read_back(&session, &shared[i], level, range).await?;
                read.push((i, rows, digest));
            }
            Ok::<_, crate::Error>(read)
        }));
    }
    let mut totals: Vec<(u64, Option<ContentDigest>)> = vec![(0, None); tables.len()];
    for h in handles {
        let read = h
            .await
            .map_err(|e| crate::Error::new(crate::ErrorKind::Io, format!("a verification worker failed: {e}")))??;
        for (i, rows, digest) in read {
            totals[i].0 += rows;
            if let Some(d) = digest {
                *totals[i].1.get_or_insert_with(ContentDigest::default) += d;
            }
        }
    }
    let mut all = Checked { verified: tables.len(), problems: Vec::new() };
    for (t, (rows, digest)) in tables.iter().zip(totals) {
        all.problems.extend(judge(t, rows, digest));
    }
    all.problems.sort();
    Ok(all)
}

/// Page ranges for each big table (by position in `tables`), on servers with TID range scans.
async fn page_ranges(
    session: &Session,
    tables: &[&TargetTable],
    jobs: usize,
) -> Result<HashMap<usize, Vec<PageRange>>> {
    let version: i32 = session.query_one("SELECT current_setting('server_version_num')::int", &[]).await?.get(0);
    let mut out = HashMap::new();
    if version < 140000 {
        return Ok(out);
    }
    let names: Vec<String> = tables
        .iter()
        .map(|t| if t.kind == PartKind::Table { quote_qualified(&t.name) } else { String::new() })
        .collect();
    let rows = session
        .query(
            "SELECT CASE WHEN n = '' THEN 0 ELSE pg_catalog.pg_relation_size(n::regclass)
                    / pg_catalog.current_setting('block_size')::int8 END
             FROM unnest($1::text[]) WITH ORDINALITY AS u(n, i) ORDER BY i",
            &[&names],
        )
        .await?;
    let pages: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let share = pages.iter().sum::<i64>() / (jobs.max(1) as i64 * 4);
    let range = share.clamp(MIN_RANGE_PAGES, MAX_RANGE_PAGES);
    for (i, &p) in pages.iter().enumerate() {
        if let Some(list) = cut(p, range) {
            out.insert(i, list);
        }
    }
    Ok(out)
}

/// `pages` cut into ranges of `range` pages, when there are more than two; the last range is open, so
/// it takes whatever lies past the others.
fn cut(pages: i64, range: i64) -> Option<Vec<PageRange>> {
    if pages <= 2 * range {
        return None;
    }
    let count = (pages + range - 1) / range;
    Some(
        (0..count)
            .map(|k| PageRange { start: (k * range) as u32, end: (k + 1 < count).then_some(((k + 1) * range) as u32) })
            .collect(),
    )
}

/// Checks one table; `None` when it has no parts to check against, else the problem found, if any.
async fn table(session: &Session, t: &TargetTable, level: VerifyLevel) -> Result<Option<Option<String>>> {
    if t.parts.is_empty() {
        return Ok(None);
    }
    let (rows, digest) = read_back(session, t, level, None).await?;
    Ok(Some(judge(t, rows, digest)))
}

/// Reads a restored table (or a page range of it) back: its rows, and at `Full` their content digest.
async fn read_back(
    session: &Session,
    t: &TargetTable,
    level: VerifyLevel,
    range: Option<PageRange>,
) -> Result<(u64, Option<ContentDigest>)> {
    let first = &t.parts[0];
    let label = label(t);
    if level == VerifyLevel::Count {
        let sql = match t.kind {
            PartKind::Table => {
                format!("SELECT count(*) FROM ONLY {}{}", quote_qualified(&t.name), super::load::where_(t))
            }
            PartKind::LargeObjects => "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata".to_string(),
        };
        return Ok((session.query_one(&sql, &[]).await?.get::<_, i64>(0) as u64, None));
    }
    let sql = match t.kind {
        PartKind::Table => copy_out_sql(&t.name, &first.columns, first.format, range, first.filter.as_deref()),
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
    Ok((scanner.rows(), Some(scanner.digest())))
}

fn label(t: &TargetTable) -> String {
    match t.kind {
        PartKind::Table => format!("table `{}`", t.name),
        PartKind::LargeObjects => "large objects".to_string(),
    }
}

/// What is wrong with a restored table that holds `rows` rows with content digest `digest`, if anything.
fn judge(t: &TargetTable, rows: u64, digest: Option<ContentDigest>) -> Option<String> {
    let label = label(t);
    if rows != t.rows {
        return Some(format!("{label}: {rows} rows in the database, the archive holds {}", t.rows));
    }
    match digest {
        Some(d) if d != t.digest => Some(format!(
            "{label}: the rows differ from the archive's although their number matches (content digest {d}, archive {})",
            t.digest
        )),
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_page_once() {
        assert!(cut(512, 256).is_none());
        let r = cut(1000, 256).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].start, 0);
        for w in r.windows(2) {
            assert_eq!(w[0].end, Some(w[1].start));
        }
        assert_eq!(r[3].end, None);
    }
}
