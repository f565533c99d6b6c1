//! After the load: proof that what landed is what was dumped. Every restored table is read back with the
//! archive's column list and format, its rows counted and (at `--verify full`) their content digest
//! recomputed and compared with the manifest's; sequences are read back. At `--verify count` a table the
//! restore made is not read back: its rows were counted as they loaded ([`PlannedTable::counted_by_load`]).

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::plan::PlannedTable;
use super::{Run, VerifyLevel};
use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result, SqlState};
use crate::format::{ContentDigest, PageRange, PartKind, SequenceValue, TupleScanner};
use crate::pg::{Session, quote_qualified};
use crate::plan::{LARGE_OBJECTS_QUERY, column_list, copy_out_sql, format_option};
use crate::pool::{self, Task};

/// What verification found.
pub(super) struct Checked {
    pub verified: usize,
    pub problems: Vec<String>,
}

/// What one read of verification found: the table's position in the plan's list, and its rows and
/// content digest, or why the restoring role could not read it back.
pub(super) type Found = (usize, std::result::Result<(u64, Option<ContentDigest>), String>);

/// Checks every restored table in one session (inside a single-transaction restore only that session
/// sees the rows). Each read has a savepoint of its own, so that a read the role is refused leaves the
/// restore's transaction usable.
pub(super) async fn tables(session: &Session, tables: &[PlannedTable], level: VerifyLevel) -> Result<Checked> {
    let mut checked = Checked { verified: 0, problems: Vec::new() };
    for t in tables.iter().filter(|t| !t.parts.is_empty()) {
        checked.verified += 1;
        if !read_back_at(t, level) {
            continue;
        }
        session.batch("SAVEPOINT pgsafe_read").await?;
        let mut read = session.under_search_path(t.search_path.as_ref(), read(session, t, level, None)).await;
        if read.as_ref().is_err_and(|e| refused(e) && t.kind == PartKind::Table) {
            session.batch("ROLLBACK TO SAVEPOINT pgsafe_read").await?;
            read = read_lifted(session, t, level, None, true).await;
        }
        match read {
            Ok((rows, digest)) => {
                session.batch("RELEASE SAVEPOINT pgsafe_read").await?;
                checked.problems.extend(judge(t, rows, digest));
            }
            Err(e) if refused(&e) => {
                session.batch("ROLLBACK TO SAVEPOINT pgsafe_read; RELEASE SAVEPOINT pgsafe_read").await?;
                checked.problems.push(not_read(t, &e));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(checked)
}

/// Whether the server refused a read for want of a privilege (`42501`: permission denied, or row security
/// in the way of a read that must see every row).
fn refused(e: &Error) -> bool {
    e.sqlstate() == Some(SqlState::INSUFFICIENT_PRIVILEGE)
}

/// The problem of a table the restoring role could not read back: it was restored, but nothing proves it.
fn not_read(t: &PlannedTable, e: &Error) -> String {
    format!(
        "{}: not read back, so not verified: the restoring role may not read all its rows ({e}); a role that may \
         (its owner, a superuser, or one with BYPASSRLS) can check it with `pgsafe check --against` the archive's \
         snapshot, or restore with `--verify count`",
        t.label()
    )
}

/// Reads `t` back as its owner where the restoring role may not read it as it is: row security forced on
/// it (`FORCE ROW LEVEL SECURITY`: policies hold for the owner too), or `SELECT` revoked from its own
/// owner (an append-only table). What stands in the way is lifted for this read alone, in a transaction
/// (`savepoint`: inside the restore's own, a savepoint) rolled back after it, so the table keeps what the
/// archive gave it. A role that does not own the table is refused again.
async fn read_lifted(
    session: &Session,
    t: &PlannedTable,
    level: VerifyLevel,
    range: Option<PageRange>,
    savepoint: bool,
) -> Result<(u64, Option<ContentDigest>)> {
    let (begin, end) = if savepoint {
        ("SAVEPOINT pgsafe_lift", "ROLLBACK TO SAVEPOINT pgsafe_lift; RELEASE SAVEPOINT pgsafe_lift")
    } else {
        ("BEGIN", "ROLLBACK")
    };
    let name = quote_qualified(&t.name);
    session.batch(begin).await?;
    let read = async {
        session
            .batch(&format!("ALTER TABLE {name} NO FORCE ROW LEVEL SECURITY; GRANT SELECT ON {name} TO CURRENT_USER"))
            .await?;
        session.under_search_path(t.search_path.as_ref(), read(session, t, level, range)).await
    }
    .await;
    session.batch(end).await?;
    read
}

/// Whether verification at `level` reads `t` back: not at `Count` when its rows were counted as they
/// loaded, which the restore stops at unless they are the archive's.
fn read_back_at(t: &PlannedTable, level: VerifyLevel) -> bool {
    level == VerifyLevel::Full || level == VerifyLevel::Count && !t.counted_by_load
}

/// Bounds of the pages one verification session reads of a big table at once. A table of more than
/// twice the range is read in slices by several sessions (its digest is the sum of theirs, whatever
/// the row order); the range is a quarter of each session's share of all tables, within these bounds.
const MIN_RANGE_PAGES: u64 = 256;
const MAX_RANGE_PAGES: u64 = 16_384;

/// The page size a table's slices are reckoned in before it is loaded (the server's default).
const ESTIMATE_PAGE_BYTES: u64 = 8192;

/// One read of verification: a table (at `at` in the plan's list), whole or one slice of its pages.
pub(super) struct Read {
    pub at: usize,
    pub table: PlannedTable,
    pub slice: Option<Slice>,
}

/// Slice `k` of `n` equal page ranges of a table, the last one open (it takes whatever lies past the
/// others). The table's size is read by the first of its slices to run, once the table is loaded, and
/// shared with the others, so that together they cover every page once.
pub(super) struct Slice {
    pub k: u32,
    pub n: u32,
    pages: Arc<OnceCell<u32>>,
}

impl Slice {
    /// The slices of a table of about `pages` pages, of about `range` pages each, when there are more
    /// than two.
    pub(super) fn of(pages: u64, range: u64) -> Option<Vec<Slice>> {
        if pages <= 2 * range {
            return None;
        }
        let n = pages.div_ceil(range).min(u64::from(u32::MAX)) as u32;
        let shared = Arc::new(OnceCell::new());
        Some((0..n).map(|k| Slice { k, n, pages: shared.clone() }).collect())
    }

    /// Its pages, in a table of `pages` pages.
    fn range(&self, pages: u32) -> PageRange {
        let at = |k: u32| (u64::from(k) * u64::from(pages) / u64::from(self.n)) as u32;
        PageRange { start: at(self.k), end: (self.k + 1 < self.n).then(|| at(self.k + 1)) }
    }
}

impl Read {
    /// Reads the table (or slice) back: its position, rows and, at `Full`, content digest, or why the
    /// restoring role could not.
    pub async fn run(self, session: &Session, level: VerifyLevel) -> Result<Found> {
        let t = &self.table;
        let range = match &self.slice {
            Some(slice) => Some(slice.range(*slice.pages.get_or_try_init(|| pages(session, t)).await?)),
            None => None,
        };
        // Its session is no transaction's: a refused read is tried again as the table's owner.
        let read = match read_back(session, t, level, range).await {
            Err(e) if refused(&e) && t.kind == PartKind::Table => read_lifted(session, t, level, range, false).await,
            read => read,
        };
        match read {
            Ok(found) => Ok((self.at, Ok(found))),
            Err(e) if refused(&e) => Ok((self.at, Err(not_read(t, &e)))),
            Err(e) => Err(e),
        }
    }
}

/// The pages of a restored table.
async fn pages(session: &Session, t: &PlannedTable) -> Result<u32> {
    const PAGES: &str = "SELECT pg_catalog.pg_relation_size($1::text::regclass) \
                         / pg_catalog.current_setting('block_size')::int8";
    let pages: i64 = crate::pg::value(&session.query_one(PAGES, &[&quote_qualified(&t.name)]).await?, 0, PAGES)?;
    Ok(pages.clamp(0, i64::from(u32::MAX)) as u32)
}

/// The reads that verify `tables` (those with parts) on `jobs` sessions, each weighing its share of the
/// table's bytes, so that the biggest start first. At `Full` on PostgreSQL 14 and later (TID range scans),
/// a big table is read in slices of its pages, so that it does not leave the other sessions idle at the
/// end; how many is reckoned from the archive's bytes, so that the reads can be planned before the rows
/// are loaded. `session` is asked the server's version.
pub(super) async fn reads(
    session: &Session,
    tables: &[PlannedTable],
    jobs: usize,
    level: VerifyLevel,
) -> Result<Vec<Task<Read>>> {
    let slicing = level == VerifyLevel::Full && session.server_version() >= 140000;
    let tables: Vec<(usize, &PlannedTable)> =
        tables.iter().enumerate().filter(|(_, t)| !t.parts.is_empty() && read_back_at(t, level)).collect();
    let estimate = |t: &PlannedTable| if t.kind == PartKind::Table { t.bytes / ESTIMATE_PAGE_BYTES } else { 0 };
    let share = tables.iter().map(|(_, t)| estimate(t)).sum::<u64>() / (jobs.max(1) as u64 * 4);
    let range = share.clamp(MIN_RANGE_PAGES, MAX_RANGE_PAGES);
    let mut tasks = Vec::new();
    for (at, t) in tables {
        // A partitioned table's rows are read back whole: its partitions' pages are not one range.
        match Slice::of(estimate(t), range).filter(|_| slicing && !t.routed) {
            Some(slices) => {
                let weight = t.bytes / slices.len() as u64;
                tasks.extend(slices.into_iter().map(|slice| {
                    let name = format!("verifying {} (slice {} of {})", t.label(), slice.k + 1, slice.n);
                    Task::new(Read { at, table: t.clone(), slice: Some(slice) }, name, weight)
                }))
            }
            None => {
                let read = Read { at, table: t.clone(), slice: None };
                tasks.push(Task::new(read, format!("verifying {}", t.label()), t.bytes))
            }
        }
    }
    Ok(tasks)
}

/// What the reads of `tables` at `level` found, summed per table and judged; a table not read back at
/// `level` was counted as it loaded.
pub(super) fn judge_reads(
    tables: &[PlannedTable],
    level: VerifyLevel,
    found: impl IntoIterator<Item = Found>,
) -> Checked {
    let mut totals: Vec<(u64, Option<ContentDigest>)> = vec![(0, None); tables.len()];
    // A table any read of which was refused: not verified, said once.
    let mut unread: Vec<Option<String>> = vec![None; tables.len()];
    for (at, read) in found {
        match read {
            Ok((rows, digest)) => {
                totals[at].0 += rows;
                if let Some(d) = digest {
                    *totals[at].1.get_or_insert_with(ContentDigest::default) += d;
                }
            }
            Err(why) => unread[at] = Some(why),
        }
    }
    let mut all = Checked { verified: 0, problems: Vec::new() };
    let judged = tables.iter().zip(totals).zip(unread).filter(|((t, _), _)| !t.parts.is_empty());
    for ((t, (rows, digest)), unread) in judged {
        all.verified += 1;
        match unread {
            Some(why) => all.problems.push(why),
            None if read_back_at(t, level) => all.problems.extend(judge(t, rows, digest)),
            None => {}
        }
    }
    all.problems.sort();
    all
}

/// The reads of `tables` on `jobs` sessions of their own, biggest first, for data already committed.
pub(super) async fn tables_parallel(
    run: &Run,
    jobs: usize,
    tables: &[PlannedTable],
    level: VerifyLevel,
) -> Result<Checked> {
    let tasks = reads(&run.session().await?, tables, jobs, level).await?;
    let found = pool::run(
        "verification",
        jobs,
        tasks,
        &run.cancel,
        |stop: &Cancel| {
            let stop = stop.clone();
            async move { run.session_watched_by(&stop).await }
        },
        move |session, read: Read| async move {
            let result = read.run(&session, level).await;
            (session, result)
        },
    )
    .await?;
    Ok(judge_reads(tables, level, found))
}

/// Reads a restored table (or a page range of it) back: its rows, and at `Full` their content digest,
/// under the `search_path` its text was written under, if the archive says. A rollback reads the live
/// tables so, to tell which changed since a snapshot.
pub(crate) async fn read_back(
    session: &Session,
    t: &PlannedTable,
    level: VerifyLevel,
    range: Option<PageRange>,
) -> Result<(u64, Option<ContentDigest>)> {
    session.under_search_path(t.search_path.as_ref(), read(session, t, level, range)).await
}

async fn read(
    session: &Session,
    t: &PlannedTable,
    level: VerifyLevel,
    range: Option<PageRange>,
) -> Result<(u64, Option<ContentDigest>)> {
    let label = t.label();
    if level == VerifyLevel::Count {
        let sql = match t.kind {
            PartKind::Table => {
                format!("SELECT count(*) FROM {}{}{}", t.only(), quote_qualified(&t.name), t.where_clause())
            }
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
        PartKind::Table if t.routed => format!(
            "COPY (SELECT {} FROM {}) TO STDOUT {}",
            column_list(&t.columns),
            quote_qualified(&t.name),
            format_option(t.format)
        ),
        PartKind::Table => copy_out_sql(&t.name, &t.columns, t.format, range, t.filter.as_deref()),
        PartKind::LargeObjects => format!("COPY ({LARGE_OBJECTS_QUERY}) TO STDOUT (FORMAT binary)"),
    };
    let mut scanner = TupleScanner::new(t.format).with_fields(t.columns.len());
    // What the scanner has not taken yet: the start of a row that the next message goes on with. The
    // server sends a row a message, so this is usually empty and each message is scanned where it lies.
    let mut pending: Vec<u8> = Vec::new();
    let scan = |scanner: &mut TupleScanner, bytes: &[u8]| {
        scanner.scan(bytes).map_err(|e| Error::new(ErrorKind::Database, format!("{label}: reading it back: {e}")))
    };
    let mut stream = session.copy_out(&sql).await?;
    while let Some(data) = stream.next().await? {
        if pending.is_empty() {
            let used = scan(&mut scanner, &data)?;
            pending.extend_from_slice(&data[used..]);
        } else {
            pending.extend_from_slice(&data);
            let used = scan(&mut scanner, &pending)?;
            pending.drain(..used);
        }
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
    fn slices_cover_every_page_once_whatever_the_tables_size() {
        assert!(Slice::of(512, 256).is_none());
        let slices = Slice::of(1000, 256).unwrap();
        assert_eq!(slices.len(), 4);
        // The pages reckoned from the archive's bytes are only an estimate: the table may have more,
        // fewer, or none.
        for pages in [0, 1, 3, 4, 5, 999, 1000, 1001, 4096, u32::MAX] {
            let ranges: Vec<PageRange> = slices.iter().map(|s| s.range(pages)).collect();
            assert_eq!(ranges[0].start, 0, "{pages}");
            for w in ranges.windows(2) {
                assert_eq!(w[0].end, Some(w[1].start), "{pages}");
                assert!(w[0].start <= w[1].start, "{pages}");
            }
            assert_eq!(ranges[3].end, None, "{pages}");
            assert!(ranges[3].start <= pages, "{pages}");
        }
        assert_eq!(slices[1].range(1000), PageRange { start: 250, end: Some(500) });
    }
}
