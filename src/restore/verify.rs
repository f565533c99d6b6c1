//! After the load: proof that what landed is what was dumped. Every restored table is read back with the
//! archive's column list and format, its rows counted and (at `--verify full`) their content digest
//! recomputed and compared with the manifest's; sequences are read back.

use std::collections::HashMap;

use super::plan::PlannedTable;
use super::{Run, VerifyLevel};
use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{ContentDigest, PageRange, PartKind, SequenceValue, TupleScanner};
use crate::pg::{Session, quote_qualified};
use crate::plan::{LARGE_OBJECTS_QUERY, copy_out_sql};
use crate::pool::{self, Task};

/// What verification found.
pub(super) struct Checked {
    pub verified: usize,
    pub problems: Vec<String>,
}

/// Checks every restored table in one session (inside a single-transaction restore only that session
/// sees the rows).
pub(super) async fn tables(session: &Session, tables: &[PlannedTable], level: VerifyLevel) -> Result<Checked> {
    let mut checked = Checked { verified: 0, problems: Vec::new() };
    for t in tables.iter().filter(|t| !t.parts.is_empty()) {
        let (rows, digest) = read_back(session, t, level, None).await?;
        checked.verified += 1;
        checked.problems.extend(judge(t, rows, digest));
    }
    Ok(checked)
}

/// Bounds of the pages one verification session reads of a big table at once. A table of more than
/// twice the range is read in ranges by several sessions (its digest is the sum of theirs, whatever
/// the row order); the range is a quarter of each session's share of all tables, within these bounds.
const MIN_RANGE_PAGES: i64 = 256;
const MAX_RANGE_PAGES: i64 = 16_384;

/// The same on `jobs` sessions at once, biggest first, for data already committed. At `Full` on
/// PostgreSQL 14 and later (TID range scans), a big table is cut into page ranges, so that it does not
/// leave the other sessions idle at the end.
pub(super) async fn tables_parallel(
    run: &Run,
    jobs: usize,
    tables: &[PlannedTable],
    level: VerifyLevel,
) -> Result<Checked> {
    let tables: Vec<&PlannedTable> = tables.iter().filter(|t| !t.parts.is_empty()).collect();
    let ranges = if level == VerifyLevel::Full {
        let session = run.session().await?;
        page_ranges(&session, &tables, jobs).await?
    } else {
        HashMap::new()
    };
    let mut tasks = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        match ranges.get(&i) {
            Some(list) => tasks.extend(list.iter().map(|r| {
                let name = format!("verifying {} (pages from {})", t.label(), r.start);
                Task::new((i, (*t).clone(), Some(*r)), name, t.rows / list.len() as u64)
            })),
            None => tasks.push(Task::new((i, (*t).clone(), None), format!("verifying {}", t.label()), t.rows)),
        }
    }
    let read = pool::run(
        "verification",
        jobs,
        tasks,
        &run.cancel,
        |stop: &Cancel| {
            let stop = stop.clone();
            async move { run.session_watched_by(&stop).await }
        },
        move |session, (i, table, range): (usize, PlannedTable, Option<PageRange>)| async move {
            let result = read_back(&session, &table, level, range).await.map(|(rows, digest)| (i, rows, digest));
            (session, result)
        },
    )
    .await?;
    let mut totals: Vec<(u64, Option<ContentDigest>)> = vec![(0, None); tables.len()];
    for (i, rows, digest) in read {
        totals[i].0 += rows;
        if let Some(d) = digest {
            *totals[i].1.get_or_insert_with(ContentDigest::default) += d;
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
    tables: &[&PlannedTable],
    jobs: usize,
) -> Result<HashMap<usize, Vec<PageRange>>> {
    let unreadable = |e| super::target::unreadable("the restored tables' sizes", e);
    let version: i32 = session
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?
        .try_get(0)
        .map_err(unreadable)?;
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
            "SELECT coalesce(CASE WHEN n = '' THEN 0 ELSE pg_catalog.pg_relation_size(n::regclass)
                    / pg_catalog.current_setting('block_size')::int8 END, 0)
             FROM unnest($1::text[]) WITH ORDINALITY AS u(n, i) ORDER BY i",
            &[&names],
        )
        .await?;
    let pages: Vec<i64> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>().map_err(unreadable)?;
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

/// Reads a restored table (or a page range of it) back: its rows, and at `Full` their content digest.
/// A rollback reads the live tables so, to tell which changed since a snapshot.
pub(crate) async fn read_back(
    session: &Session,
    t: &PlannedTable,
    level: VerifyLevel,
    range: Option<PageRange>,
) -> Result<(u64, Option<ContentDigest>)> {
    let label = t.label();
    if level == VerifyLevel::Count {
        let sql = match t.kind {
            PartKind::Table => format!("SELECT count(*) FROM ONLY {}{}", quote_qualified(&t.name), t.where_clause()),
            PartKind::LargeObjects => "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata".to_string(),
        };
        let count: i64 = session
            .query_one(&sql, &[])
            .await?
            .try_get(0)
            .map_err(|e| super::target::unreadable(&format!("the rows of {label}"), e))?;
        return Ok((count as u64, None));
    }
    let sql = match t.kind {
        PartKind::Table => copy_out_sql(&t.name, &t.columns, t.format, range, t.filter.as_deref()),
        PartKind::LargeObjects => format!("COPY ({LARGE_OBJECTS_QUERY}) TO STDOUT (FORMAT binary)"),
    };
    let mut scanner = TupleScanner::new(t.format).with_fields(t.columns.len());
    let mut pending: Vec<u8> = Vec::new();
    let mut stream = session.copy_out(&sql).await?;
    while let Some(data) = stream.next().await? {
        pending.extend_from_slice(&data);
        let used = scanner
            .scan(&pending)
            .map_err(|e| Error::new(ErrorKind::Database, format!("{label}: reading it back: {e}")))?;
        pending.drain(..used);
    }
    Ok((scanner.rows(), Some(scanner.digest())))
}

/// What is wrong with a restored table that holds `rows` rows with content digest `digest`, if anything.
fn judge(t: &PlannedTable, rows: u64, digest: Option<ContentDigest>) -> Option<String> {
    let label = t.label();
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

/// Reads every restored sequence back, a thousand to a query.
pub(super) async fn sequences(session: &Session, sequences: &[SequenceValue]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for batch in sequences.chunks(1000) {
        let sql = batch
            .iter()
            .enumerate()
            .map(|(i, s)| format!("SELECT {i}, last_value, is_called FROM {}", quote_qualified(&s.name)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for row in session.query(&sql, &[]).await? {
            let unreadable = |e| super::target::unreadable("the sequences' values", e);
            let i: i32 = row.try_get(0).map_err(unreadable)?;
            let (last, called): (i64, bool) =
                (row.try_get(1).map_err(unreadable)?, row.try_get(2).map_err(unreadable)?);
            let Some(s) = batch.get(i as usize) else { continue };
            if (last, called) != (s.last_value, s.is_called) {
                problems.push(format!(
                    "sequence `{}`: last_value {last} (is_called {called}), the archive holds {} (is_called {})",
                    s.name, s.last_value, s.is_called
                ));
            }
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
