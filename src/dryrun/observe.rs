//! One statement of the rehearsal, measured: the size of the tables it would rewrite (and not running it
//! when one is too big), what it can lose counted before, the relations and locks before and after, the
//! statement in a savepoint, what it lost counted after, or the rows that made it fail.
//!
//! The rehearsal's own queries run in a savepoint of their own ([`measure`]) that is rolled back: one
//! that fails (a table the statement names does not exist yet) costs a note, not the rehearsal, and
//! the locks it took are not held to the end. One that waits too long for a lock means another session
//! holds the table, as the statement itself would find: the statement is a lock timeout.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use super::analyze::{Analysis, Conversion, Effect};
use super::recover;
use super::{
    DryRunOptions, Estimate, FailingRows, Failure, LockTaken, Loss, LossKind, RelationChange, Statement,
    StatementOutcome, StatementReport, lock_name,
};
use crate::error::{Error, Result, ServerObject, SqlState};
use crate::pg::compare::{Compare, column_types};
use crate::pg::{Session, quote_ident, quote_literal, value};

const RELATIONS: &str = include_str!("sql/relations.sql");
const LOCKS: &str = include_str!("sql/locks.sql");
const REACH: &str = include_str!("sql/reach.sql");
const PRIMARY_KEY: &str = include_str!("sql/primary_key.sql");
const SIZE: &str = include_str!("sql/size.sql");
const VOLATILE: &str = include_str!("sql/volatile.sql");
const DROPPED_WITH: &str = include_str!("sql/dropped_with.sql");
const SET_COLUMNS: &str = include_str!("sql/set_columns.sql");
const ROW_CHANGES: &str = include_str!("sql/row_changes.sql");
const FILLED: &str = include_str!("sql/filled.sql");
const EXISTING: &str = include_str!("sql/existing.sql");
const WRITTEN: &str = include_str!("sql/written.sql");
const NUMBERED: &str = include_str!("sql/numbered.sql");

/// Rehearses `statement` (the `index`th of the migration), which `analysis` read, and reports it. An
/// `Err` only when the rehearsal cannot go on (the connection, an interruption, a query of its own that
/// must not fail).
/// `run`: what the earlier statements of the rehearsal did.
pub(super) async fn statement(
    s: &Session,
    statement: &Statement,
    analysis: &Analysis,
    options: &DryRunOptions,
    index: usize,
    run: &mut Run,
    new_here: &HashSet<(String, String)>,
) -> Result<StatementReport> {
    let mut report = StatementReport::new(statement, StatementOutcome::Ran);
    for effect in &analysis.effects {
        let (table, what) = match effect {
            Effect::Scans { table, what } => (table, *what),
            Effect::DefaultCalls { table, functions } => {
                let found = measure(s, volatile(s, functions)).await;
                match settle(found, "the volatility of the new column's default", options, &mut report)? {
                    Some(true) => (table, "ADD COLUMN with a volatile default rewrites it"),
                    _ => continue,
                }
            }
            _ => continue,
        };
        let Some(size) = settle(measure(s, size(s, table)).await, "its table's size", options, &mut report)? else {
            continue;
        };
        if let Some((bytes, rows)) = size.filter(|(bytes, _)| *bytes > options.max_rewrite_bytes) {
            report.estimates.push(Estimate { table: table.clone(), work: what.to_owned(), bytes, rows });
        }
    }
    if stopped(&report) {
        return Ok(report);
    }
    if !report.estimates.is_empty() {
        report.outcome = StatementOutcome::Estimated;
        report.reason = Some(format!(
            "not run on the live database: it would rewrite or scan a table bigger than --max-rewrite-bytes \
             ({} bytes), holding its lock as long; a scratch copy of the database measures it",
            options.max_rewrite_bytes
        ));
        return Ok(report);
    }

    let pending = before(s, analysis, options, index, run, new_here, &mut report).await?;
    if stopped(&report) {
        return Ok(report);
    }
    let large_objects_before = run.large_objects(s, options, &mut report).await?;
    let relations_before = relations(s).await?;
    let locks_before = locks(s).await?;
    let mut changes_before = row_changes(s, &[], &[], &[]).await?;
    if !analysis.savepoint {
        s.batch("SAVEPOINT pgsafe_statement").await?;
    }
    let ran = Instant::now();
    let result = execute(s, statement).await;
    report.seconds = ran.elapsed().as_secs_f64();
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => {
            options.cancel.check("the dry run")?;
            let Some(code) = e.sqlstate() else { return Err(e) };
            if !analysis.savepoint {
                s.batch("ROLLBACK TO SAVEPOINT pgsafe_statement; RELEASE SAVEPOINT pgsafe_statement").await?;
            }
            failed(s, analysis, options, &mut report, e, code).await?;
            return Ok(report);
        }
    };
    let mut rows = rows;
    let mut relations_after = relations(s).await?;
    if !analysis.savepoint {
        // What its text did not say it would take (a function's body, a `DO` block's dynamic SQL): counted
        // by running it again.
        let unforeseen = unforeseen(analysis, &relations_before, &relations_after);
        if !unforeseen.is_empty() {
            s.batch("ROLLBACK TO SAVEPOINT pgsafe_statement").await?;
            // The transaction's counters keep what the first run wrote: the second is measured from here.
            changes_before = row_changes(s, &[], &[], &[]).await?;
            let counted = unforeseen.count(s).await?;
            let ran = Instant::now();
            rows = execute(s, statement).await?;
            report.seconds = ran.elapsed().as_secs_f64();
            relations_after = relations(s).await?;
            counted.losses(s, &mut report).await?;
        }
        s.batch("RELEASE SAVEPOINT pgsafe_statement").await?;
    }
    if analysis.counts_rows {
        report.rows = Some(rows);
    }
    if let Some(before) = large_objects_before
        && let Some(now) = run.large_objects(s, options, &mut report).await?
    {
        let count = before.saturating_sub(now);
        report.losses.push(Loss {
            kind: LossKind::LargeObjects,
            table: String::new(),
            column: None,
            count,
            estimated: false,
        });
    }
    let locks_after = locks(s).await?;
    for ((oid, mode), name) in &locks_after {
        if !locks_before.contains_key(&(*oid, mode.clone())) {
            // A relation gone that was not the user's is the transient copy a rewrite made and dropped.
            let dropped = relations_before.get(oid).filter(|r| !r.temporary);
            let Some(relation) = name.clone().or_else(|| dropped.map(|r| r.name.clone())) else {
                continue;
            };
            report.locks.push(LockTaken { relation, mode: mode.clone(), lock: lock_name(mode), held_seconds: 0.0 });
        }
    }
    report.locks.sort_by(|a, b| (&a.relation, &a.mode).cmp(&(&b.relation, &b.mode)));
    compare_relations(&relations_before, &relations_after, &mut report);
    // The columns it added are there to hold what a `DO` block dropped ([`kept_after`]).
    run.added.extend(new_here.iter().cloned());
    let updates = analysis.effects.iter().filter_map(|e| match e {
        Effect::Update { table, columns } => Some((table, columns)),
        _ => None,
    });
    for (table, columns) in updates.chain(analysis.block_updates.iter().map(|(t, c)| (t, c))) {
        run.filled.extend(columns.iter().map(|c| (table.clone(), c.clone())));
    }
    let backfilled = after(s, pending, rows, run, options, &mut report, &mut changes_before).await?;
    run.carried.extend(std::mem::take(&mut report.carried));
    uncounted_drops(&mut report);
    changed_elsewhere(s, &changes_before, &backfilled, &analysis.named, &mut report).await?;
    run.made.follow(s, &relations_before, &relations_after, &mut report).await?;
    settle_losses(&mut report.losses);
    Ok(report)
}

/// Runs `statement` and returns the rows its command tag counts; a `COPY ... FROM STDIN` with the rows the
/// file holds after it; a `COPY ... TO STDOUT` with its output read and left out of the rehearsal.
async fn execute(s: &Session, statement: &Statement) -> Result<u64> {
    match &statement.copy_rows {
        Some(rows) => s.copy_rows(&statement.sql, &rows.text).await,
        None if super::copies_to_stdout(&statement.sql) => s.copy_out_to(&statement.sql, |_| {}).await.map(|_| 0),
        None => s.execute_simple(&statement.sql).await,
    }
}

/// What the statements of the rehearsal did so far, that the next one is measured against.
#[derive(Debug, Default)]
pub(super) struct Run {
    /// For each statement of the migration, whether it or one after it fills a table (`INSERT`, `COPY
    /// ... FROM`, `MERGE`): where rows a DELETE removes may come back ([`fills_from`]).
    pub fills_from: Vec<bool>,
    /// The columns they added: an UPDATE of only those backfills them.
    pub added: HashSet<(String, String)>,
    /// The columns their UPDATEs (a `DO` block's too) wrote: where a column dropped later may have been
    /// copied first (`UPDATE t SET root_id = parent_id WHERE root_id = ''; ALTER TABLE t DROP parent_id`).
    filled: HashSet<(String, String)>,
    /// The tables they made, and which hold data that was there before.
    made: Made,
    /// Their string constants, and the running statement's: where the migration names a time zone it
    /// converts times with ([`recover`](super::recover)).
    pub strings: Vec<String>,
    /// By table, the values their UPDATEs replaced (or filled in), which are the migration's own from then
    /// on: a later UPDATE of the same row and column replaces nothing that was there before.
    replaced: HashMap<String, Replaced>,
    /// The (table, column) of columns they added (or filled) that hold the values of a column dropped
    /// since: data that was there before, which dropping or updating them loses.
    carried: HashSet<(String, String)>,
    /// Whether there were large objects before the rehearsal, whose oids [`LARGE_OBJECTS`] then keeps.
    large_objects: bool,
    /// The rows their DELETEs took out of tables, to look for at the end ([`back_again`]).
    deleted: Vec<DeletedRows>,
    /// The last value each sequence had given at the rehearsal's start, by oid (`None` in the map: none
    /// yet); `None` when the server refused to say.
    pub sequences_at_start: Option<BTreeMap<i64, Option<i64>>>,
}

/// The temporary table of the oids of the large objects there before the rehearsal: those the migration
/// creates and removes again (`lo_from_bytea`, then `lo_unlink`) are its own.
const LARGE_OBJECTS: &str = "pg_temp.pgsafe_dryrun_large_objects";

/// For each of `statements`, whether it or one after it fills a table: an `INSERT` (in a `WITH` too, as
/// its top statement), a `COPY ... FROM` or a `MERGE`.
pub(super) fn fills_from(statements: &[crate::dryrun::Statement]) -> Vec<bool> {
    let fills = |sql: &str| {
        let Ok(parsed) = pg_query::parse(sql, 0) else { return true };
        parsed.protobuf.stmts.iter().any(|raw| match raw.stmt.as_ref().and_then(|s| s.node.as_ref()) {
            Some(pg_query::NodeEnum::InsertStmt(_) | pg_query::NodeEnum::MergeStmt(_)) => true,
            Some(pg_query::NodeEnum::CopyStmt(c)) => c.is_from,
            _ => false,
        })
    };
    let mut later = false;
    let mut from: Vec<bool> = statements
        .iter()
        .rev()
        .map(|st| {
            later = later || fills(&st.sql);
            later
        })
        .collect();
    from.reverse();
    from
}

impl Run {
    /// Whether sequence `seq` (whose last value given is `last`, `None` when it gave none or is not
    /// `readable`) numbered rows during the migration: it gave values since the rehearsal's start (or was
    /// made by it and gave any). Explicit ids written into its column (a table copied with its ids) are no
    /// sequence's. Not readable, or without the states at the start: numbered once it gave any value.
    fn numbered_here(&self, seq: i64, readable: bool, last: Option<i64>) -> bool {
        match (&self.sequences_at_start, readable) {
            (Some(start), true) => last.is_some() && start.get(&seq).is_none_or(|&was| was != last),
            (_, false) => true,
            (None, true) => last.is_some(),
        }
    }

    /// Keeps the oids of the large objects there before the rehearsal, if any (from
    /// `pg_largeobject_metadata`, which any user can read), to count those each statement removes.
    pub(super) async fn remember_large_objects(&mut self, s: &Session) -> Result<()> {
        let kept = measure_keep(s, async {
            s.batch(&format!(
                "CREATE TEMPORARY TABLE {LARGE_OBJECTS} AS SELECT oid AS lo FROM pg_catalog.pg_largeobject_metadata"
            ))
            .await?;
            count(s, &format!("SELECT count(*) FROM {LARGE_OBJECTS}")).await
        })
        .await;
        self.large_objects = match kept {
            Ok(n) => n > 0,
            // Not readable (a server that refuses it): large objects are not counted.
            Err(e) if e.sqlstate().is_some() => false,
            Err(e) => return Err(e),
        };
        Ok(())
    }

    /// How many of the large objects there before the rehearsal are still there; `None` when there were
    /// none.
    async fn large_objects(
        &self,
        s: &Session,
        options: &DryRunOptions,
        report: &mut StatementReport,
    ) -> Result<Option<u64>> {
        if !self.large_objects {
            return Ok(None);
        }
        let sql =
            format!("SELECT count(*) FROM pg_catalog.pg_largeobject_metadata m JOIN {LARGE_OBJECTS} o ON o.lo = m.oid");
        settle(measure(s, count(s, &sql)).await, "the large objects", options, report)
    }
}

/// The values UPDATEs of the rehearsal replaced in a table: the temporary table `temp` holds the primary
/// key (`key`) of each row and the column (`pgsafe_column`) whose value was replaced.
#[derive(Debug)]
struct Replaced {
    temp: String,
    key: Vec<String>,
}

/// The tables the migration made in the rehearsal (by oid: names change), and whether each carries data
/// that was in the database before it: rows or values a statement took out of another table (one the
/// migration did not make, or one that carries) and that were found in it (`INSERT INTO t_new SELECT *
/// FROM t; DROP TABLE t`), or rows of a partitioned table that was there before. The rows of a made
/// table that carries nothing (a staging table filled from others, dropped at the end; a temporary
/// table) are the migration's own: deleting, updating or dropping them loses nothing that was there
/// before.
#[derive(Debug, Default)]
struct Made {
    /// The oids of the tables it made.
    tables: HashSet<i64>,
    /// The oids of the tables (made or not) in which rows or values a statement took out of a table that
    /// carries were found: a made one among them carries; in any, the rows the migration wrote hold data
    /// that was there before.
    received: HashSet<i64>,
    /// The oids of the tables that were there before the migration and that a statement of it rewrote
    /// (`ALTER COLUMN ... TYPE`, a volatile default, `SET UNLOGGED`, `CLUSTER`): every row is then written
    /// by this transaction, so which rows it inserted can no longer be told by who wrote them.
    rewritten: HashSet<i64>,
}

impl Made {
    /// After a statement: the tables it made, those its moved rows went to, and its losses in made tables
    /// that carry nothing turned into notes.
    async fn follow(
        &mut self,
        s: &Session,
        before: &BTreeMap<i64, Relation>,
        after: &BTreeMap<i64, Relation>,
        report: &mut StatementReport,
    ) -> Result<()> {
        let table = |r: &Relation| r.kind == "table" || r.kind == "partitioned table";
        for (oid, _) in after.iter().filter(|(oid, r)| table(r) && !before.contains_key(oid)) {
            self.tables.insert(*oid);
        }
        for (oid, r) in after.iter().filter(|(oid, r)| table(r) && !self.tables.contains(oid)) {
            if before.get(oid).is_some_and(|b| b.filenode != 0 && b.filenode != r.filenode) {
                self.rewritten.insert(*oid);
            }
        }
        let mut names = Names { s, before, after, resolved: HashMap::new() };
        for (from, to) in std::mem::take(&mut report.moved) {
            let (Some(from), Some(to)) = (names.oid(&from).await?, names.oid(&to).await?) else { continue };
            if self.carries(from, before, after) {
                self.received.insert(to);
            }
        }
        if self.tables.is_empty() {
            return Ok(());
        }
        let mut kept = Vec::new();
        for loss in std::mem::take(&mut report.losses) {
            let own = match names.oid(&loss.table).await? {
                Some(oid) => self.tables.contains(&oid) && !self.carries(oid, before, after),
                None => false,
            };
            if !own {
                kept.push(loss);
            } else if loss.count > 0 {
                report.notes.push(format!(
                    "`{}` is a table this migration made, holding nothing that was in the database before it: {} \
                     not counted as lost",
                    loss.table,
                    lost_what(&loss)
                ));
            }
        }
        report.losses = kept;
        Ok(())
    }

    /// Whether the rows of `oid` are data that was there before the migration: a table it did not make,
    /// one it made that carries, or a partition of either.
    fn carries(&self, oid: i64, before: &BTreeMap<i64, Relation>, after: &BTreeMap<i64, Relation>) -> bool {
        let root = after.get(&oid).or_else(|| before.get(&oid)).and_then(|r| r.root);
        let carries = |oid: i64| !self.tables.contains(&oid) || self.received.contains(&oid);
        carries(oid) || root.is_some_and(carries)
    }
}

/// Table names, as a report writes them, resolved to oids: by the `regclass` text of the relations before
/// or after the statement, else by the server (a name as the statement wrote it, `public.t`).
struct Names<'a> {
    s: &'a Session,
    before: &'a BTreeMap<i64, Relation>,
    after: &'a BTreeMap<i64, Relation>,
    resolved: HashMap<String, Option<i64>>,
}

impl Names<'_> {
    async fn oid(&mut self, name: &str) -> Result<Option<i64>> {
        if let Some(oid) = self.resolved.get(name) {
            return Ok(*oid);
        }
        let by_name = |map: &BTreeMap<i64, Relation>| map.iter().find(|(_, r)| r.name == name).map(|(oid, _)| *oid);
        let mut oid = by_name(self.before).or_else(|| by_name(self.after));
        if oid.is_none() {
            const SQL: &str = "SELECT pg_catalog.to_regclass($1)::oid::int8";
            oid = match measure(self.s, self.s.query(SQL, &[&name])).await {
                Ok(rows) => rows.first().map(|r| value::<Option<i64>, _>(r, 0, SQL)).transpose()?.flatten(),
                // Not a name the server reads (`to_regclass` refuses some): not a table it made.
                Err(e) if e.sqlstate().is_some() => None,
                Err(e) => return Err(e),
            };
        }
        self.resolved.insert(name.to_owned(), oid);
        Ok(oid)
    }
}

/// What `loss` counts, for a note: `the 1000 rows it deletes`.
fn lost_what(loss: &Loss) -> String {
    let n = loss.count;
    let column = loss.column.as_deref().unwrap_or_default();
    match (loss.kind, &loss.column) {
        (LossKind::DroppedTable, _) => format!("the {n} rows it drops are"),
        (LossKind::Deleted, _) => format!("the {n} rows it deletes are"),
        (LossKind::Updated, None) => format!("the {n} rows it updates are"),
        (LossKind::Updated, Some(_)) => format!("the {n} values of `{column}` it sets are"),
        (LossKind::DroppedColumn, _) => format!("the {n} values of `{column}` it drops are"),
        (LossKind::DroppedAttribute, _) => format!("the {n} values of `{column}` it drops are"),
        (LossKind::AlteredValues, _) => format!("the {n} values of `{column}` it changes are"),
        (LossKind::Truncated, _) => format!("the {n} rows it empties are"),
        (LossKind::LargeObjects, _) => format!("the {n} large objects it removes are"),
    }
}

/// The losses as reported: each (kind, table, column) once (a `DO` block's branches may each drop the
/// same column), with the largest count, and none of nothing. A count of 0 only served to keep the
/// transaction's counters from counting the rows again.
fn settle_losses(losses: &mut Vec<Loss>) {
    losses.retain(|l| l.count > 0);
    let mut seen: Vec<Loss> = Vec::with_capacity(losses.len());
    for loss in losses.drain(..) {
        match seen.iter_mut().find(|s| s.kind == loss.kind && s.table == loss.table && s.column == loss.column) {
            Some(kept) if kept.count >= loss.count => {}
            Some(kept) => *kept = loss,
            None => seen.push(loss),
        }
    }
    *losses = seen;
}

fn stopped(report: &StatementReport) -> bool {
    report.outcome.stops()
}

/// Runs `work`, a measurement of the rehearsal's own, in a savepoint that is then rolled back, whether it
/// worked or not.
pub(super) async fn measure<T>(s: &Session, work: impl Future<Output = Result<T>>) -> Result<T> {
    s.batch("SAVEPOINT pgsafe_measure").await?;
    let result = work.await;
    s.batch("ROLLBACK TO SAVEPOINT pgsafe_measure; RELEASE SAVEPOINT pgsafe_measure").await?;
    result
}

/// Like [`measure`], but keeps what `work` made (a temporary copy of values) when it worked.
async fn measure_keep<T>(s: &Session, work: impl Future<Output = Result<T>>) -> Result<T> {
    s.batch("SAVEPOINT pgsafe_measure").await?;
    let result = work.await;
    let end = if result.is_ok() {
        "RELEASE SAVEPOINT pgsafe_measure"
    } else {
        "ROLLBACK TO SAVEPOINT pgsafe_measure; RELEASE SAVEPOINT pgsafe_measure"
    };
    s.batch(end).await?;
    result
}

/// What a measurement's `result` means for the statement: its value; `None` with the statement made a
/// lock timeout (another session holds the table) or with a note saying `what` was not measured and
/// why. An interruption, or an error that is no server's refusal, ends the rehearsal.
fn settle<T>(
    result: Result<T>,
    what: &str,
    options: &DryRunOptions,
    report: &mut StatementReport,
) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) => {
            options.cancel.check("the dry run")?;
            match e.sqlstate() {
                Some(SqlState::LOCK_NOT_AVAILABLE) => {
                    report.outcome = StatementOutcome::LockTimeout;
                    report.reason = Some(format!(
                        "measuring {what} waited longer than --lock-timeout ({} ms) for a lock another session \
                         holds on the table; the statement would wait for it too",
                        options.lock_timeout.as_millis()
                    ));
                    report.failure = Some(failure(&e, None));
                    Ok(None)
                }
                Some(_) => {
                    report.notes.push(format!("{what} not measured: {e}"));
                    Ok(None)
                }
                None => Err(e),
            }
        }
    }
}

fn failure(e: &Error, rows: Option<FailingRows>) -> Failure {
    Failure { sqlstate: e.sqlstate().map(|c| c.as_str().to_owned()), message: e.to_string(), rows }
}

/// A measurement to finish once the statement ran.
enum Pending {
    /// Counted before, lost if the statement runs: a dropped column's values, a dropped or truncated
    /// table's rows.
    Lost(Loss),
    /// Counted before, lost if the statement drops the table: the rows of a table a DROP can take with
    /// it.
    Dropped(Loss),
    /// Counted before, lost if the column is gone after the statement (a `DO` block's `DROP COLUMN`);
    /// `copy`: its values by primary key, to look for where the block kept them ([`kept_after`]).
    Gone { loss: Loss, copy: Option<Copy> },
    /// Counted before, lost if the table has another file node after the statement (a `DO` block's
    /// `TRUNCATE`), or, having no storage of its own (partitioned), no rows.
    Emptied { loss: Loss, filenode: u64 },
    /// A table's rows before a DELETE, to count again after; `copy`: a temporary table holding them all
    /// (their columns' text), where the migration filled a table they may have been copied to first.
    /// `inserted`: of them, the rows the migration inserted ([`inserted_here`]), where it looks for them.
    /// `statement`: the statement's index in the rehearsal, whose loss [`back_again`] may lessen.
    Rows { table: String, before: u64, copy: Option<KeptRows>, inserted: Option<u64>, statement: usize },
    /// How many values of `table.column` a referential action's SET NULL or SET DEFAULT would give
    /// (`condition`), before the statement: those it sets are counted after.
    Set { table: String, column: String, condition: String, before: u64 },
    /// The rows an UPDATE changes: its command tag.
    Updated { table: String },
    /// The rows an UPDATE changes, by the values of the columns it sets, copied before into a temporary
    /// table by primary key: those with another value after.
    UpdatedValues(Updates),
    /// An UPDATE that sets only columns the rehearsal added: the values it replaces are the migration's
    /// own (NULL or the new column's default), not data; `block`: the UPDATEs of a `DO` block, whose
    /// command tag has no count.
    Backfilled { table: String, block: bool },
    /// The values of a column before its type changed, copied into a temporary table.
    Values(Copy),
}

/// A column's values before a type change, in the temporary table `temp` (`pgsafe_old` holds them in
/// their old type), by the primary key `key`, or as a multiset when there is none (or the key has the
/// column).
struct Copy {
    table: String,
    column: String,
    temp: String,
    key: Vec<String>,
    rows: u64,
    copied: u64,
}

/// The columns an UPDATE sets (those that were there before the migration), before it runs, in the
/// temporary table `temp` by `table`'s primary key `key`.
struct Updates {
    table: String,
    /// Empty when `columns` is: nothing is copied.
    temp: String,
    /// Empty when the table has no primary key or the UPDATE sets it (see `renumbered`).
    key: Vec<String>,
    /// The columns of the table's primary key that the UPDATE sets, where the rows are compared unpaired
    /// for it (its numbers and UUIDs, which only name the rows, are not compared).
    renumbered: Vec<String>,
    columns: Vec<String>,
    /// Of `columns`, those the UPDATE does not set, which a BEFORE UPDATE trigger of the table may (see
    /// [`trigger_columns`]): a value of one that the trigger stamped with the transaction's time (an
    /// `updated_at`) is the bookkeeping of any UPDATE, not counted as lost.
    stamped: Vec<Stamp>,
    /// How many of `columns`, first, the UPDATE sets; the others are those a trigger may set.
    set: usize,
    /// What earlier UPDATEs replaced in the table, by the same key.
    replaced: Option<String>,
}

/// A column a trigger may set, and how a stamp of the transaction's time reads in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamp {
    /// Set by the UPDATE itself, or of a type that holds no time: every change counts.
    None,
    /// A `timestamp` or `timestamptz`: from `now()` on.
    Instant,
    /// A `date`: from `current_date` on.
    Date,
}

/// The columns of `table` other than `set` that a BEFORE UPDATE row trigger of it may change in the rows
/// an UPDATE touches (`NEW.note := ...`), with how a time stamp reads in each: every stored column that is
/// not generated, when the table has such a trigger enabled; none otherwise. Comparing only the columns
/// the UPDATE sets missed what the trigger overwrote.
async fn trigger_columns(s: &Session, table: &str, set: &[String]) -> Result<Vec<(String, Stamp)>> {
    const SQL: &str = "SELECT a.attname::text, t.typname::text
                       FROM pg_catalog.pg_attribute a
                       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                       WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
                         AND a.attgenerated = ''
                         AND EXISTS (SELECT FROM pg_catalog.pg_trigger g
                                     WHERE g.tgrelid = a.attrelid AND NOT g.tgisinternal AND g.tgenabled <> 'D'
                                       AND g.tgtype::int & 19 = 19)
                       ORDER BY a.attnum";
    // tgtype: 1 a row trigger, 2 before, 16 on UPDATE.
    let rows = s.query(SQL, &[&table]).await?;
    let mut columns = Vec::new();
    for row in &rows {
        let (name, ty): (String, String) = (value(row, 0, SQL)?, value(row, 1, SQL)?);
        if set.contains(&name) {
            continue;
        }
        let stamp = match ty.as_str() {
            "timestamp" | "timestamptz" => Stamp::Instant,
            "date" => Stamp::Date,
            _ => Stamp::None,
        };
        columns.push((name, stamp));
    }
    Ok(columns)
}

/// Copies what `Updates` says, when `table` has at most `--max-compare-rows` rows; `None` otherwise (the
/// command tag counts then). The columns compared are those of `set` and those a BEFORE UPDATE trigger
/// may set ([`trigger_columns`]), less the migration's own (`own`: columns it added, whose values are no
/// data). By primary key, unless the table has none or the UPDATE sets it (`SET id = id + 1000`, keys
/// renumbered) and the rest of the key does not tell the rows apart: its rows cannot be paired then, and
/// the values of the columns are compared as multisets ([`missing_values`]), but for the key's numbers
/// and UUIDs, which only name rows; an UPDATE that sets only those copies nothing.
async fn copy_updated(
    s: &Session,
    table: &str,
    set: &[String],
    own: &dyn Fn(&String) -> bool,
    temp: &str,
    run: &Run,
    options: &DryRunOptions,
) -> Result<Option<Updates>> {
    let mut key = primary_key(s, table).await?;
    let mut set: Vec<String> = set.iter().filter(|c| !own(c)).cloned().collect();
    if set.is_empty() {
        return Ok(None);
    }
    if count(s, &format!("SELECT count(*) FROM {table}")).await? > options.max_compare_rows {
        return Ok(None);
    }
    let by_trigger: Vec<(String, Stamp)> =
        trigger_columns(s, table, &set).await?.into_iter().filter(|(c, _)| !own(c) && !key.contains(c)).collect();
    let mut renumbered: Vec<String> = key.iter().filter(|k| set.contains(k)).cloned().collect();
    if !renumbered.is_empty() {
        // The rest of the key, where it tells the rows apart (`id` of a key `(id, at)` that the UPDATE
        // shifts `at` in), pairs them still, and the key's columns it sets are values like the others.
        let rest: Vec<String> = key.iter().filter(|k| !set.contains(k)).cloned().collect();
        if !rest.is_empty() && distinct(s, table, &rest).await? {
            key = rest;
            renumbered.clear();
        } else {
            // A key of one number or UUID only names the rows: renumbered, it loses nothing. A column of a
            // key of several (a year, a tenant) holds data, as one of a date or a name does: compared as
            // the other columns are.
            let types = column_types(s, table).await?;
            let single = key.len() == 1;
            let names = |c: &String| {
                single
                    && types.get(c).is_some_and(|(_, base)| matches!(base.as_str(), "int2" | "int4" | "int8" | "uuid"))
            };
            set.retain(|c| !(renumbered.contains(c) && names(c)));
            key.clear();
        }
    }
    let columns: Vec<String> = set.iter().cloned().chain(by_trigger.iter().map(|(c, _)| c.clone())).collect();
    let stamped: Vec<Stamp> =
        std::iter::repeat_n(Stamp::None, set.len()).chain(by_trigger.iter().map(|(_, stamp)| *stamp)).collect();
    if !columns.is_empty() {
        let keys: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
        let values: Vec<String> =
            columns.iter().enumerate().map(|(i, c)| format!("{} AS pgsafe_old_{i}", quote_ident(c))).collect();
        let own = if inserted_here(s, table, &run.made).await? { WRITTEN_HERE } else { "false" };
        s.batch(&format!(
            "CREATE TEMPORARY TABLE {temp} AS SELECT {}, {own} AS pgsafe_own FROM {table}",
            keys.iter().chain(&values).cloned().collect::<Vec<_>>().join(", "),
        ))
        .await?;
    }
    let replaced = run.replaced.get(table).filter(|r| !key.is_empty() && r.key == key).map(|r| r.temp.clone());
    let set = set.len();
    Ok(Some(Updates {
        table: table.to_owned(),
        temp: temp.to_owned(),
        key,
        renumbered,
        columns,
        stamped,
        set,
        replaced,
    }))
}

/// Whether no two rows of `table` hold the same values of `columns` (none NULL: a primary key's).
async fn distinct(s: &Session, table: &str, columns: &[String]) -> Result<bool> {
    let list: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let sql = format!("SELECT count(*) = count(DISTINCT ROW({})) FROM {table}", list.join(", "));
    value(&s.query_one(&sql, &[]).await?, 0, &sql)
}

/// `t.k = o.k AND ...` for the columns of `key`: a table `t` joined by its key to its copy `o`.
fn same_key(key: &[String]) -> String {
    key.iter().map(|k| format!("t.{k} = o.{k}", k = quote_ident(k))).collect::<Vec<_>>().join(" AND ")
}

/// The rows this transaction wrote: in a table the migration filled, only those can be its copy of other
/// rows (a table with an `id` column holds the ids of another table's rows whatever the migration did).
const WRITTEN_HERE: &str = "pg_catalog.age(xmin) <= 0";

/// The condition of the rows of `table` the migration inserted with values of its own: those this
/// transaction wrote, while it has updated none of the table's rows (nor has anything else: a trigger, a
/// referential action), and no rows taken out of another table were found in it (`received`, by oid:
/// those are data that was there before), nor was it rewritten (then every row is one it wrote): whether
/// those rows are [`WRITTEN_HERE`]. Not once a row was updated: a row this transaction wrote may then hold
/// values that were there before in the columns that UPDATE left alone.
async fn inserted_here(s: &Session, table: &str, made: &Made) -> Result<bool> {
    const WRITTEN: &str = "SELECT coalesce(sum(s.n_tup_upd), 0)::int8, coalesce(sum(s.n_tup_ins), 0)::int8,
                                  pg_catalog.to_regclass($1)::oid::int8
                           FROM pg_catalog.pg_stat_xact_user_tables s
                           WHERE s.relid = pg_catalog.to_regclass($1)
                              OR s.relid IN (SELECT relid FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass($1)))";
    let row = s.query_one(WRITTEN, &[&table]).await?;
    let (updated, inserted, oid): (i64, i64, Option<i64>) =
        (value(&row, 0, WRITTEN)?, value(&row, 1, WRITTEN)?, value(&row, 2, WRITTEN)?);
    let copy = oid.is_none_or(|oid| made.received.contains(&oid) || made.rewritten.contains(&oid));
    // No row inserted: none to look for (and no scan for them).
    Ok(updated == 0 && inserted > 0 && !copy)
}

/// How many rows of `table` this transaction wrote ([`WRITTEN_HERE`]).
async fn written_here(s: &Session, table: &str) -> Result<u64> {
    count(s, &format!("SELECT count(*) FROM {table} WHERE {WRITTEN_HERE}")).await
}

/// What an UPDATE changed, by row: see [`changed_rows`].
struct Changed {
    /// Rows with a value of a column it sets that is not the same text as before.
    rows: u64,
    /// Of them, rows with a value (not NULL) replaced that was there before the migration: the loss.
    replaced: u64,
    /// Rows with a value replaced that the migration had inserted itself ([`copy_updated`]).
    own: u64,
    /// Rows with only values replaced that an earlier UPDATE of the migration set ([`Run::replaced`]).
    earlier: u64,
    /// Rows with only values replaced that a function of the new ones gives back ([`given_back`]).
    given_back: u64,
    /// Of `replaced`, rows with a value replaced in a column the UPDATE does not set (by a trigger).
    by_trigger: u64,
}

/// Of the rows of `u`, those whose values of the columns the UPDATE set are not the same text as before,
/// and of them, those that lost a value that was there before the migration. A row of which only NULLs
/// were filled (`UPDATE t SET c = false WHERE c IS NULL` before `SET NOT NULL`) loses nothing, nor does
/// one the migration inserted, nor a value an earlier UPDATE of the migration set (a backfill then a
/// correction of it), whose loss, if any, that UPDATE counted, nor a value [`given_back`] gives back: of
/// the columns it names, in the rows its condition holds of.
async fn changed_rows(s: &Session, u: &Updates, given_back: &BTreeMap<usize, GivenBack>) -> Result<Changed> {
    let on = same_key(&u.key);
    // A time a trigger stamped (`updated_at`) is no change of the row's data.
    let stamp = |i: usize, c: &String| match u.stamped[i] {
        Stamp::None => String::new(),
        Stamp::Instant => format!(" AND NOT coalesce(t.{} >= pg_catalog.now(), false)", quote_ident(c)),
        Stamp::Date => format!(" AND NOT coalesce(t.{} >= CURRENT_DATE, false)", quote_ident(c)),
    };
    let differs = |i: usize, c: &String| {
        format!("((o.pgsafe_old_{i})::text IS DISTINCT FROM (t.{})::text{})", quote_ident(c), stamp(i, c))
    };
    let changed: Vec<String> = u.columns.iter().enumerate().map(|(i, c)| differs(i, c)).collect();
    // A value (not NULL) the UPDATE replaced in a column (`all`: also those [`given_back`] gives back), and
    // (`first`) only those no earlier UPDATE of the migration set.
    let replaced_any = |first: bool, all: bool, from: usize| -> String {
        let conditions: Vec<String> = u
            .columns
            .iter()
            .enumerate()
            .skip(from)
            .filter(|(i, _)| all || given_back.get(i).is_none_or(|g| g.rows.is_some()))
            .map(|(i, c)| {
                let not_given_back = match given_back.get(&i).and_then(|g| g.rows.as_ref()) {
                    Some(rows) if !all => format!(" AND NOT {rows}"),
                    _ => String::new(),
                };
                let set_before = match (&u.replaced, first) {
                    (Some(temp), true) => {
                        let same: Vec<String> =
                            u.key.iter().map(|k| format!("x.{k} = o.{k}", k = quote_ident(k))).collect();
                        format!(
                            " AND NOT EXISTS (SELECT FROM {temp} x WHERE {} AND x.pgsafe_column = {})",
                            same.join(" AND "),
                            quote_literal(c)
                        )
                    }
                    _ => String::new(),
                };
                // An empty string is no value either (`NOT NULL DEFAULT ''` columns).
                format!(
                    "(o.pgsafe_old_{i} IS NOT NULL AND (o.pgsafe_old_{i})::text <> '' AND {}{set_before}{not_given_back})",
                    differs(i, c)
                )
            })
            .collect();
        if conditions.is_empty() { "false".to_owned() } else { conditions.join(" OR ") }
    };
    let (replaced, any, all) =
        (replaced_any(true, false, 0), replaced_any(false, false, 0), replaced_any(false, true, 0));
    let by_trigger = replaced_any(true, false, u.set);
    let sql = format!(
        "SELECT count(*), count(*) FILTER (WHERE ({replaced}) AND NOT o.pgsafe_own), \
                count(*) FILTER (WHERE ({all}) AND o.pgsafe_own), \
                count(*) FILTER (WHERE ({any}) AND NOT ({replaced}) AND NOT o.pgsafe_own), \
                count(*) FILTER (WHERE ({all}) AND NOT ({any}) AND NOT o.pgsafe_own), \
                count(*) FILTER (WHERE ({by_trigger}) AND NOT o.pgsafe_own) \
         FROM {} o JOIN {} t ON {} WHERE {}",
        u.temp,
        u.table,
        on,
        changed.join(" OR "),
    );
    let row = s.query_one(&sql, &[]).await?;
    let count = |i: usize| value::<i64, _>(&row, i, &sql).map(|n| u64::try_from(n).unwrap_or(0));
    Ok(Changed {
        rows: count(0)?,
        replaced: count(1)?,
        own: count(2)?,
        earlier: count(3)?,
        given_back: count(4)?,
        by_trigger: count(5)?,
    })
}

/// How the values of a column an UPDATE changed are given back ([`given_back`]).
struct GivenBack {
    /// How the new values are made from the old ([`recover::Recovered::how`]).
    how: String,
    /// The condition of the rows whose old value is given back, where that is a rule of each row (keys
    /// added to a document); `None`: every row's.
    rows: Option<String>,
    /// The rows whose old value is not, where `rows` is a condition.
    unrecovered: u64,
}

/// Of the values (not NULL nor empty) the columns of `u` held before the UPDATE, those not in the column
/// after it, as multisets of their text: the comparison of a table without a primary key, whose rows
/// cannot be paired (`UPDATE t SET thread_id = 'main' WHERE thread_id IS NULL` loses nothing, `SET s = s`
/// nothing). Each column's missing values are in as many rows; the rows counted are their sum over the
/// columns (the same row may be counted for two), at most the rows copied. A time a trigger stamped from
/// the transaction's start on stands for an old value it replaced. Returns the rows that lost a value
/// that was there before the migration, and those that lost one it inserted itself.
async fn missing_values(s: &Session, u: &Updates) -> Result<(u64, u64)> {
    let missing = |own: bool| {
        let mut sums = Vec::new();
        for (i, c) in u.columns.iter().enumerate() {
            let col = quote_ident(c);
            let stamp = match u.stamped[i] {
                Stamp::None => "false".to_owned(),
                Stamp::Instant => format!("{col} >= pg_catalog.now()"),
                Stamp::Date => format!("{col} >= CURRENT_DATE"),
            };
            sums.push(format!(
                "(SELECT greatest(coalesce(sum(greatest(o.n - coalesce(a.n, 0), 0)), 0) \
                                  - (SELECT count(*) FROM {table} WHERE {stamp}), 0) \
                  FROM (SELECT (pgsafe_old_{i})::text AS v, count(*) AS n FROM {temp} \
                        WHERE pgsafe_old_{i} IS NOT NULL AND (pgsafe_old_{i})::text <> '' AND pgsafe_own = {own} \
                        GROUP BY 1) o \
                  LEFT JOIN (SELECT ({col})::text AS v, count(*) AS n FROM {table} WHERE {col} IS NOT NULL GROUP BY 1) a \
                    ON a.v = o.v)",
                table = u.table,
                temp = u.temp,
            ));
        }
        format!("least({}, (SELECT count(*) FROM {} WHERE pgsafe_own = {own}))::int8", sums.join(" + "), u.temp)
    };
    let sql = format!("SELECT {}, {}", missing(false), missing(true));
    let row = s.query_one(&sql, &[]).await?;
    let count = |i: usize| value::<i64, _>(&row, i, &sql).map(|n| u64::try_from(n).unwrap_or(0));
    Ok((count(0)?, count(1)?))
}

/// The columns of `u` whose values, in every row the migration did not insert, the UPDATE changed by a
/// function that gives them back ([`recover`]: `SET price = price * 100` on every row), or in the rows
/// that meet a rule of their own (keys added to a `jsonb` object: those that kept the values of their
/// keys), with how; an UPDATE of some rows only leaves the others as they were, which no one function
/// describes.
async fn given_back(s: &Session, u: &Updates, strings: &[String]) -> Result<BTreeMap<usize, GivenBack>> {
    let on = same_key(&u.key);
    let from = format!("{} o JOIN {} t ON {} WHERE NOT o.pgsafe_own", u.temp, u.table, on);
    let mut found = BTreeMap::new();
    for (i, column) in u.columns.iter().enumerate() {
        let old = format!("o.pgsafe_old_{i}");
        let new = format!("t.{}", quote_ident(column));
        let old_column = format!("pgsafe_old_{i}");
        let old = recover::Column { relation: &u.temp, name: &old_column, expr: &old };
        let new = recover::Column { relation: &u.table, name: column, expr: &new };
        let recovered = quietly(measure(s, recover::between(s, &from, old, new, strings)).await)?;
        if let Some(r) = recovered.filter(|r| r.unrecovered == 0 || r.kept.is_some()) {
            found.insert(i, GivenBack { how: r.how, rows: r.kept, unrecovered: r.unrecovered });
        }
    }
    Ok(found)
}

/// Adds the values the UPDATE of `u` replaced or filled in to what the rehearsal's UPDATEs replaced in its
/// table ([`Run::replaced`]), by key and column: into `u.replaced`, or into a new table `temp`, which it
/// returns for the caller to keep once this worked.
async fn remember_replaced(s: &Session, u: &Updates, temp: &str) -> Result<Option<Replaced>> {
    let keys: Vec<String> = u.key.iter().map(|k| format!("o.{}", quote_ident(k))).collect();
    let on = same_key(&u.key);
    let (table, made) = match &u.replaced {
        Some(existing) => (existing.as_str(), None),
        None => {
            s.batch(&format!(
                "CREATE TEMPORARY TABLE {temp} AS SELECT {}, ''::text AS pgsafe_column FROM {} o WHERE false",
                keys.join(", "),
                u.temp
            ))
            .await?;
            (temp, Some(Replaced { temp: temp.to_owned(), key: u.key.clone() }))
        }
    };
    for (i, c) in u.columns.iter().enumerate() {
        s.batch(&format!(
            "INSERT INTO {table} SELECT {}, {} FROM {} o JOIN {} t ON {} \
             WHERE (o.pgsafe_old_{i})::text IS DISTINCT FROM (t.{})::text",
            keys.join(", "),
            quote_literal(c),
            u.temp,
            u.table,
            on,
            quote_ident(c)
        ))
        .await?;
    }
    Ok(made)
}

/// Counts what the statement can lose, before it runs: `added` are the columns earlier statements added,
/// `new_here` those this one adds (a `DO` block's, which its own statements may fill and drop again).
async fn before(
    s: &Session,
    analysis: &Analysis,
    options: &DryRunOptions,
    index: usize,
    run: &Run,
    new_here: &HashSet<(String, String)>,
    report: &mut StatementReport,
) -> Result<Vec<Pending>> {
    let mut pending = Vec::new();
    let mut counted = BTreeSet::new();
    // A column the migration added holds its own values, unless it was given values of a column dropped
    // since (`run.carried`).
    let own = |table: &String, column: &String| {
        let key = (table.clone(), column.clone());
        (run.added.contains(&key) || new_here.contains(&key)) && !run.carried.contains(&key)
    };
    for (n, effect) in analysis.effects.iter().enumerate() {
        match effect {
            Effect::DropColumn { table, column } | Effect::DropColumnIfGone { table, column } => {
                if own(table, column) {
                    report.notes.push(format!(
                        "`{table}.{column}` is a column this migration added: the values it drops are the migration's \
                         own, not counted as lost"
                    ));
                    continue;
                }
                let what = format!("whether `{table}.{column}` exists");
                let pair = [(table.clone(), column.clone())];
                if settle(measure(s, existing(s, &pair)).await, &what, options, report)? == Some(vec![false]) {
                    report.notes.push(format!("`{table}.{column}` does not exist: it holds no values to lose"));
                    continue;
                }
                let sql = format!("SELECT count({}) FROM {table}", quote_ident(column));
                let what = format!("the values of `{table}.{column}`");
                let generated = settle(measure(s, is_generated(s, table, column)).await, &what, options, report)?;
                if generated == Some(true) {
                    report.notes.push(format!(
                        "`{table}.{column}` is a generated column: its values come from the other columns, not counted as lost"
                    ));
                    continue;
                }
                if let Some(count) = settle(measure(s, count(s, &sql)).await, &what, options, report)? {
                    let loss = |count| Loss {
                        kind: LossKind::DroppedColumn,
                        table: table.clone(),
                        column: Some(column.clone()),
                        count,
                        estimated: false,
                    };
                    // A `DO` block may copy the values before it drops the column: they are looked for once
                    // it ran, in a copy taken now.
                    if matches!(effect, Effect::DropColumnIfGone { .. }) {
                        let temp = format!("pgsafe_dryrun_{index}_{n}");
                        let what = format!("the values of `{table}.{column}`, to look for after the block");
                        let kept = measure_keep(s, keep_dropped(s, table, column, &temp, options)).await;
                        if let Some(copy) = settle(kept, &what, options, report)?.flatten() {
                            pending.push(Pending::Gone { loss: loss(count), copy: Some(copy) });
                            continue;
                        }
                    }
                    let with = dropped_with_it(&analysis.effects, table, column);
                    let dropping = Dropping { table, column, total: count, with: &with };
                    let lost = not_moved(s, &dropping, run, options, report).await?;
                    // An inheritance parent's count holds its children's values: each table's own, under its
                    // name, when none was found elsewhere (those found are searched for in all at once).
                    let what = format!("the inheritance children of `{table}` holding `{column}`");
                    let each = settle(measure(s, own_values(s, table, column)).await, &what, options, report)?;
                    match each.filter(|each| lost == count && each.len() > 1) {
                        Some(each) => {
                            for (t, n) in each {
                                let loss = Loss { table: t.clone(), ..loss(n) };
                                // A child's column that is its own too (`attislocal`) stays.
                                pending.push(match effect {
                                    Effect::DropColumn { .. } if &t == table => Pending::Lost(loss),
                                    _ => Pending::Gone { loss, copy: None },
                                });
                            }
                        }
                        None => pending.push(match effect {
                            Effect::DropColumn { .. } => Pending::Lost(loss(lost)),
                            _ => Pending::Gone { loss: loss(lost), copy: None },
                        }),
                    }
                }
            }
            Effect::DropAttribute { type_name, attribute } => {
                let what = format!("the columns of type `{type_name}`");
                let found = settle(measure(s, columns_of_type(s, type_name)).await, &what, options, report)?;
                for (table, column, array) in found.unwrap_or_default() {
                    if own(&table, &column) {
                        continue;
                    }
                    let (column_q, attribute_q) = (quote_ident(&column), quote_ident(attribute));
                    let sql = match array {
                        true => format!(
                            "SELECT count(*) FROM {table} t, pg_catalog.unnest(t.{column_q}) e \
                             WHERE e.{attribute_q} IS NOT NULL"
                        ),
                        false => format!("SELECT count(*) FROM {table} WHERE ({column_q}).{attribute_q} IS NOT NULL"),
                    };
                    let what = format!("the values of `{attribute}` in `{table}.{column}`");
                    if let Some(count) = settle(measure(s, count(s, &sql)).await, &what, options, report)? {
                        let column = Some(format!("{column}.{attribute}"));
                        let loss = Loss { kind: LossKind::DroppedAttribute, table, column, count, estimated: false };
                        pending.push(Pending::Lost(loss));
                    }
                }
            }
            Effect::Drop { tables, schemas, types, extensions } => {
                let what = "the tables and columns it can drop";
                let dropping = dropped_with(s, tables, schemas, types, extensions);
                let found = settle(measure(s, dropping).await, what, options, report)?;
                let (found_tables, found_columns): (Vec<_>, Vec<_>) =
                    found.unwrap_or_default().into_iter().partition(|(_, column)| column.is_none());
                for (table, column) in found_columns {
                    let column = column.unwrap_or_default();
                    let sql = format!("SELECT count({}) FROM {table}", quote_ident(&column));
                    let what = format!("the values of `{table}.{column}`");
                    if let Some(count) = settle(measure(s, count(s, &sql)).await, &what, options, report)? {
                        let (kind, column) = (LossKind::DroppedColumn, Some(column));
                        let loss = Loss { kind, table, column, count, estimated: false };
                        pending.push(Pending::Gone { loss, copy: None });
                    }
                }
                for (table, _) in found_tables {
                    if !counted.insert((LossKind::DroppedTable as u8, table.clone())) {
                        continue;
                    }
                    let what = format!("the rows of `{table}`");
                    // Its own rows: an inheritance child is counted as a table of its own.
                    let rows = format!("FROM ONLY {table}");
                    let sql = format!("SELECT count(*) {rows}");
                    if let Some(count) = settle(measure(s, count(s, &sql)).await, &what, options, report)? {
                        let described = format!("rows of `{table}`");
                        let count = not_copied(s, &table, &described, &rows, count, tables, options, report).await?;
                        let kind = LossKind::DroppedTable;
                        pending.push(Pending::Dropped(Loss { kind, table, column: None, count, estimated: false }));
                    }
                }
            }
            Effect::Truncate { table, cascade } | Effect::TruncateIfRun { table, cascade } => {
                let kind = LossKind::Truncated;
                let mut tables = vec![table.clone()];
                if *cascade {
                    let what = format!("the tables referencing `{table}`");
                    tables.extend(
                        settle(measure(s, reach(s, table, true)).await, &what, options, report)?.unwrap_or_default(),
                    );
                }
                let emptied = tables.clone();
                for table in tables.into_iter().filter(|t| counted.insert((kind as u8, t.clone()))) {
                    let what = format!("the rows of `{table}`");
                    let sql = format!("SELECT count(*) FROM {table}");
                    let Some(rows) = settle(measure(s, count(s, &sql)).await, &what, options, report)? else {
                        continue;
                    };
                    let from = format!("FROM {table}");
                    let described = format!("rows of `{table}`");
                    let rows = not_copied(s, &table, &described, &from, rows, &emptied, options, report).await?;
                    let loss = Loss { kind, table, column: None, count: rows, estimated: false };
                    if matches!(effect, Effect::Truncate { .. }) {
                        pending.push(Pending::Lost(loss));
                    } else {
                        let what = format!("the file of `{}`", loss.table);
                        let sql = filenode_sql(&loss.table);
                        if let Some(filenode) = settle(measure(s, count(s, &sql)).await, &what, options, report)? {
                            pending.push(Pending::Emptied { loss, filenode });
                        }
                    }
                }
            }
            Effect::Delete { table } | Effect::Update { table, .. } => {
                let update = matches!(effect, Effect::Update { .. });
                let backfill = matches!(effect, Effect::Update { columns, .. }
                    if !columns.is_empty() && columns.iter().all(|c| own(table, c)));
                let what = format!("the tables referential actions reach from `{table}`");
                let reached = settle(measure(s, reach(s, table, false)).await, &what, options, report)?;
                let tables: Vec<String> = std::iter::once(table.clone()).chain(reached.unwrap_or_default()).collect();
                if backfill {
                    pending.push(Pending::Backfilled { table: table.clone(), block: false });
                } else if update {
                    // The values it sets in columns that were there before: the migration's own added
                    // columns hold nothing to lose.
                    let columns: &[String] = match effect {
                        Effect::Update { columns, .. } => columns,
                        _ => &[],
                    };
                    let temp = format!("pgsafe_dryrun_{index}_{n}");
                    let what = format!("the values the UPDATE of `{table}` sets");
                    let own = |c: &String| own(table, c);
                    let copied = measure_keep(s, copy_updated(s, table, columns, &own, &temp, run, options)).await;
                    match settle(copied, &what, options, report)?.flatten() {
                        Some(updates) => pending.push(Pending::UpdatedValues(updates)),
                        // An upsert's command tag counts the rows it inserted: the transaction's counters
                        // count those it updated.
                        None if analysis.upsert => {}
                        None => pending.push(Pending::Updated { table: table.clone() }),
                    }
                } else {
                    for (i, table) in tables.iter().enumerate() {
                        let what = format!("the rows of `{table}`");
                        let sql = format!("SELECT count(*) FROM {table}");
                        if let Some(before) = settle(measure(s, count(s, &sql)).await, &what, options, report)? {
                            // Rows the migration inserted, which it may delete again without loss.
                            let what = format!("the rows this migration inserted into `{table}`");
                            let inserted = match settle(
                                measure(s, inserted_here(s, table, &run.made)).await,
                                &what,
                                options,
                                report,
                            )? {
                                Some(true) => settle(measure(s, written_here(s, table)).await, &what, options, report)?,
                                _ => None,
                            };
                            // Rows archived first (`INSERT INTO t_archive SELECT ...` before the
                            // DELETE) are no loss: the table's rows are kept to find which went where.
                            let temp = format!("pgsafe_dryrun_{index}_{n}_{i}");
                            let what = format!("a copy of the rows of `{table}`");
                            let own = inserted.is_some();
                            let fills_later = run.fills_from.get(index).copied().unwrap_or(true);
                            let kept =
                                measure_keep(s, keep_rows(s, table, before, &temp, own, fills_later, options)).await;
                            let copy = settle(kept, &what, options, report)?.flatten();
                            pending.push(Pending::Rows {
                                table: table.clone(),
                                before,
                                copy,
                                inserted,
                                statement: index,
                            });
                        }
                    }
                }
                let what = format!("the columns SET NULL or SET DEFAULT sets from `{table}`");
                let set = settle(measure(s, set_columns(s, &tables, update)).await, &what, options, report)?;
                for (table, column, value) in set.unwrap_or_default() {
                    let condition = match value {
                        Some(value) => format!("{} IS NOT DISTINCT FROM ({value})", quote_ident(&column)),
                        None => format!("{} IS NULL", quote_ident(&column)),
                    };
                    let what = format!("the values of `{table}.{column}`");
                    let sql = format!("SELECT count(*) FROM {table} WHERE {condition}");
                    if let Some(before) = settle(measure(s, count(s, &sql)).await, &what, options, report)? {
                        pending.push(Pending::Set { table, column, condition, before });
                    }
                }
            }
            Effect::AlterType { table, column, .. } => {
                let temp = format!("pgsafe_dryrun_{index}_{n}");
                let what = format!("the values of `{table}.{column}`");
                let copied =
                    settle(measure_keep(s, copy(s, table, column, &temp, options)).await, &what, options, report)?;
                match copied {
                    Some(Ok(copy)) => pending.push(Pending::Values(copy)),
                    Some(Err(note)) => report.notes.push(note),
                    None => {}
                }
            }
            Effect::SetNotNull { .. }
            | Effect::Unique { .. }
            | Effect::Scans { .. }
            | Effect::DefaultCalls { .. }
            | Effect::Check { .. }
            | Effect::ForeignKey { .. }
            | Effect::Validate { .. } => {}
        }
        if stopped(report) {
            break;
        }
    }
    // A `DO` block's UPDATEs: a table all of whose UPDATEs set only columns the migration added is
    // backfilled; in another, the values of the columns they set are compared by primary key as for an
    // UPDATE of its own (a block that fills NULLs, `WHERE c IS NULL`, loses nothing), else the
    // transaction's counters count its rows.
    let mut tables: Vec<&String> = analysis.block_updates.iter().map(|(t, _)| t).collect();
    tables.sort();
    tables.dedup();
    for (i, table) in tables.into_iter().enumerate() {
        let updates: Vec<&Vec<String>> =
            analysis.block_updates.iter().filter(|(t, _)| t == table).map(|(_, columns)| columns).collect();
        if updates.iter().all(|columns| !columns.is_empty() && columns.iter().all(|c| own(table, c))) {
            pending.push(Pending::Backfilled { table: table.clone(), block: true });
            continue;
        }
        if updates.iter().any(|columns| columns.is_empty()) {
            continue;
        }
        let mut columns: Vec<String> = updates.into_iter().flatten().cloned().collect();
        columns.sort();
        columns.dedup();
        let temp = format!("pgsafe_dryrun_{index}_block_{i}");
        let what = format!("the values the block's UPDATEs of `{table}` set");
        let own = |c: &String| own(table, c);
        let copied = measure_keep(s, copy_updated(s, table, &columns, &own, &temp, run, options)).await;
        if let Some(updates) = settle(copied, &what, options, report)?.flatten() {
            pending.push(Pending::UpdatedValues(updates));
        }
    }
    Ok(pending)
}

/// Finishes the measurements once the statement ran (`rows`: its command tag's count).
/// Returns the tables an UPDATE backfilled, whose updated rows are no loss.
async fn after(
    s: &Session,
    pending: Vec<Pending>,
    rows: u64,
    run: &mut Run,
    options: &DryRunOptions,
    report: &mut StatementReport,
    changes_before: &mut BTreeMap<i64, RowChanges>,
) -> Result<Vec<String>> {
    let mut backfilled = Vec::new();
    for p in pending {
        match p {
            Pending::Backfilled { table, block } => {
                let updated = if block {
                    format!("the rows of `{table}` the block")
                } else {
                    format!("{rows} rows of `{table}`")
                };
                report.notes.push(format!(
                    "{updated} updated in columns this migration added: the values replaced are its own (NULL or \
                     the columns' defaults), not counted as lost"
                ));
                backfilled.push(table);
            }
            Pending::Lost(loss) => report.losses.push(loss),
            Pending::Gone { mut loss, copy } => {
                let column = loss.column.as_deref().unwrap_or_default().to_owned();
                let sql = format!(
                    "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass({}) \
                     AND attname = {} AND NOT attisdropped",
                    quote_literal(&loss.table),
                    quote_literal(&column)
                );
                let what = format!("whether `{}.{column}` is still there", loss.table);
                let gone = settle(measure(s, count(s, &sql)).await, &what, options, report)? == Some(0);
                if let Some(copy) = copy {
                    if gone {
                        let from = row_changes(s, &[], &[], &[]).await?;
                        let kept = measure(s, kept_after(s, &copy, loss.count, run, options, report)).await;
                        if let Some(lost) = quietly(kept)? {
                            loss.count = lost;
                        }
                        discount(changes_before, &from, &row_changes(s, &[], &[], &[]).await?);
                    }
                    drop_copies(s, &[&copy.temp]).await?;
                }
                if gone {
                    report.losses.push(loss);
                }
            }
            Pending::Emptied { loss, filenode } => {
                let what = format!("the file of `{}`", loss.table);
                let now = settle(measure(s, count(s, &filenode_sql(&loss.table))).await, &what, options, report)?;
                let emptied = match now {
                    Some(0) if filenode == 0 => {
                        let what = format!("the rows left in `{}`", loss.table);
                        let sql = format!("SELECT count(*) FROM {}", loss.table);
                        settle(measure(s, count(s, &sql)).await, &what, options, report)? == Some(0)
                    }
                    Some(now) => now != filenode,
                    None => false,
                };
                if emptied {
                    report.losses.push(loss);
                }
            }
            Pending::Dropped(loss) => {
                if report.dropped.iter().any(|r| r.relation == loss.table) {
                    report.losses.push(loss);
                }
            }
            Pending::Set { table, column, condition, before } => {
                let what = format!("the values of `{table}.{column}` set by a referential action");
                let sql = format!("SELECT count(*) FROM {table} WHERE {condition}");
                if let Some(now) = settle(measure(s, count(s, &sql)).await, &what, options, report)? {
                    let (count, column) = (now.saturating_sub(before), Some(column));
                    report.losses.push(Loss { kind: LossKind::Updated, table, column, count, estimated: false });
                }
            }
            Pending::Updated { table } => {
                report.losses.push(Loss {
                    kind: LossKind::Updated,
                    table,
                    column: None,
                    count: rows,
                    estimated: false,
                });
            }
            Pending::UpdatedValues(updates) if updates.columns.is_empty() => {
                // Keys renumbered, every other value of the rows as it was.
                report.notes.push(format!(
                    "the UPDATE of `{}` sets only its primary key ({}): the rows keep their other values, not \
                     counted as lost",
                    updates.table,
                    backticked(&updates.renumbered)
                ));
                let table = updates.table.clone();
                report.losses.push(Loss { kind: LossKind::Updated, table, column: None, count: 0, estimated: false });
            }
            Pending::UpdatedValues(updates) if updates.key.is_empty() => {
                let what = format!("the values the UPDATE of `{}` changed", updates.table);
                let missing = settle(measure(s, missing_values(s, &updates)).await, &what, options, report)?;
                if let Some((count, own)) = missing {
                    let columns = backticked(&updates.columns);
                    let unpaired = if updates.renumbered.is_empty() {
                        format!("`{}` has no primary key", updates.table)
                    } else {
                        format!(
                            "the UPDATE sets the primary key of `{}` ({}), which pairs no rows",
                            updates.table,
                            backticked(&updates.renumbered)
                        )
                    };
                    report.notes.push(format!(
                        "{unpaired}: the values of {columns} before and after the UPDATE were compared as \
                         multisets, column by column; {count} rows lost a value (not NULL nor empty) not there after"
                    ));
                    if own > 0 {
                        report.notes.push(format!(
                            "{own} rows of `{}` it changed are rows this migration inserted, not counted as lost",
                            updates.table
                        ));
                    }
                    let table = updates.table.clone();
                    report.losses.push(Loss { kind: LossKind::Updated, table, column: None, count, estimated: false });
                }
                drop_copies(s, &[&updates.temp]).await?;
            }
            Pending::UpdatedValues(updates) => {
                let what = format!("the values the UPDATE of `{}` changed", updates.table);
                let mut changed =
                    settle(measure(s, changed_rows(s, &updates, &BTreeMap::new())).await, &what, options, report)?;
                // Values changed by a function that gives them back (a change of unit on every row).
                if changed.as_ref().is_some_and(|c| c.replaced > 0) {
                    let functions = given_back(s, &updates, &run.strings).await?;
                    if !functions.is_empty() {
                        changed =
                            settle(measure(s, changed_rows(s, &updates, &functions)).await, &what, options, report)?;
                        for (i, GivenBack { how, rows, unrecovered }) in functions {
                            let (table, column) = (&updates.table, &updates.columns[i]);
                            report.notes.push(if rows.is_none() || unrecovered == 0 {
                                format!(
                                    "the values of `{table}.{column}` it changed can all be computed back from the \
                                     new ones ({how}): not counted as lost"
                                )
                            } else {
                                format!(
                                    "the values of `{table}.{column}` it changed can be computed back from the new \
                                     ones ({how}) but {unrecovered} of them, where a key the row had changed value \
                                     or is gone: those count"
                                )
                            });
                        }
                    }
                }
                if let Some(Changed { rows: changed, replaced, own, earlier, given_back, by_trigger }) = changed {
                    if changed < rows {
                        report.notes.push(format!(
                            "{} of the {rows} rows of `{}` it updated kept the values they had",
                            rows - changed,
                            updates.table
                        ));
                    }
                    if replaced + own + earlier + given_back < changed {
                        report.notes.push(format!(
                            "{} rows of `{}` had only NULLs (or empty strings) filled in, which loses nothing",
                            changed - replaced - own - earlier - given_back,
                            updates.table
                        ));
                    }
                    if earlier > 0 {
                        report.notes.push(format!(
                            "{earlier} rows of `{}` had only values an earlier UPDATE of this migration set replaced, \
                             not counted again",
                            updates.table
                        ));
                    }
                    if own > 0 {
                        report.notes.push(format!(
                            "{own} rows of `{}` it changed are rows this migration inserted, not counted as lost",
                            updates.table
                        ));
                    }
                    if by_trigger > 0 {
                        report.notes.push(format!(
                            "{by_trigger} of the {replaced} rows of `{}` counted had values replaced in columns the \
                             UPDATE does not set, by a BEFORE UPDATE trigger (a time it stamped, from the \
                             transaction's on, is not counted)",
                            updates.table
                        ));
                    }
                    let table = updates.table.clone();
                    report.losses.push(Loss {
                        kind: LossKind::Updated,
                        table,
                        column: None,
                        count: replaced,
                        estimated: false,
                    });
                }
                let what = format!("the values the UPDATE of `{}` replaced, for later UPDATEs", updates.table);
                let temp = format!("{}_replaced", updates.temp);
                let remembered = measure_keep(s, remember_replaced(s, &updates, &temp)).await;
                if let Some(Some(made)) = settle(remembered, &what, options, report)? {
                    run.replaced.insert(updates.table.clone(), made);
                }
                drop_copies(s, &[&updates.temp]).await?;
            }
            Pending::Rows { table, before, copy, inserted, statement } => {
                let mut gone_rows = None;
                let what = format!("the rows left in `{table}`");
                let sql = format!("SELECT count(*) FROM {table}");
                if let Some(now) = settle(measure(s, count(s, &sql)).await, &what, options, report)? {
                    let mut count = before.saturating_sub(now);
                    if let Some(own_before) = inserted {
                        let what = format!("the rows this migration inserted into `{table}`");
                        if let Some(own_now) =
                            settle(measure(s, written_here(s, &table)).await, &what, options, report)?
                        {
                            let deleted = own_before.saturating_sub(own_now);
                            if deleted > 0 {
                                count = count.saturating_sub(deleted);
                                report.notes.push(format!(
                                    "{deleted} of the rows it deleted from `{table}` are rows this migration inserted, \
                                     not counted as lost"
                                ));
                            }
                        }
                    }
                    if let Some(kept) = &copy
                        && count > 0
                    {
                        let what = format!("the rows deleted from `{table}`");
                        let gone = measure_keep(s, deleted_rows(s, &table, kept)).await;
                        if let Some(gone) = settle(gone, &what, options, report)? {
                            let described = format!("rows it deleted from `{table}`");
                            let rows = format!("FROM pg_temp.{}", quote_ident(&gone));
                            count = not_copied(s, &table, &described, &rows, count, &[], options, report).await?;
                            gone_rows = Some(gone).filter(|_| count > 0);
                        }
                    }
                    let loss =
                        Loss { kind: LossKind::Deleted, table: table.clone(), column: None, count, estimated: false };
                    report.losses.push(loss);
                }
                if let Some(kept) = copy {
                    // Rows the migration puts back later (a lookup table reseeded) are looked for at its end.
                    let found = match &gone_rows {
                        Some(_) => quietly(measure(s, identity(s, &table)).await)?,
                        None => None,
                    };
                    match (found, gone_rows) {
                        (Some((oid, key)), Some(gone)) => {
                            run.deleted.push(DeletedRows { statement, table, oid, key, kept, gone });
                        }
                        _ => drop_copies(s, &[&kept.temp, &format!("{}_gone", kept.temp)]).await?,
                    }
                }
            }
            Pending::Values(copy) => {
                let what = format!("the changed values of `{}.{}`", copy.table, copy.column);
                // As values of their types (12.00 and 12 are equal), as numeric where a number was made a
                // floating-point one or the reverse; where the two types do not compare, as values of the
                // new type's family when its text is a canonical form (text to jsonb, uuid, a date:
                // whitespace, letter case and spelling are no loss), else as text (text to integer: `007`
                // became `7`). The first way the server can run counts.
                let types = |relation: String| async move {
                    match measure(s, column_types(s, &relation)).await {
                        Ok(types) => Ok(types),
                        Err(e) if e.sqlstate().is_some() => Ok(HashMap::new()),
                        Err(e) => Err(e),
                    }
                };
                let temp = format!("pg_temp.{}", quote_ident(&copy.temp));
                let (old_ty, old) = types(temp).await?.remove("pgsafe_old").unwrap_or_default();
                let (ty, base) = types(copy.table.clone()).await?.remove(&copy.column).unwrap_or_default();
                let mut changed = Err(Error::new(crate::error::ErrorKind::Database, "no way to compare"));
                let ways = Compare::ways_from(&old_ty, &old, &ty, &base);
                let ways_count = ways.len();
                let mut lost_in_cast = None;
                for (i, how) in ways.into_iter().enumerate() {
                    let last = i + 1 == ways_count;
                    lost_in_cast = how.lost_in_cast("o.pgsafe_old");
                    changed = measure(s, compare(s, &copy, how)).await;
                    match &changed {
                        Err(e) if !last && e.sqlstate().is_some_and(|c| matches!(c.class(), "22" | "42")) => {}
                        _ => break,
                    }
                }
                if let Some(changed) = settle(changed, &what, options, report)? {
                    let changed =
                        computed_back(s, &copy, changed, lost_in_cast.as_deref(), &run.strings, report).await?;
                    let estimated = copy.copied < copy.rows;
                    let count = if estimated {
                        (changed as f64 * copy.rows as f64 / copy.copied.max(1) as f64).round() as u64
                    } else {
                        changed
                    };
                    if estimated {
                        report.notes.push(format!(
                            "the values of `{}.{}` were compared on {} of its {} rows (--max-compare-rows); the \
                             count of changed values is extrapolated",
                            copy.table, copy.column, copy.copied, copy.rows
                        ));
                    }
                    let (table, column) = (copy.table.clone(), Some(copy.column.clone()));
                    report.losses.push(Loss { kind: LossKind::AlteredValues, table, column, count, estimated });
                }
                // The copy holds values of the old type: while it stays, that type cannot be dropped, as a
                // migration that changes a column's type often does next (Prisma's enum changes).
                drop_copies(s, &[&copy.temp]).await?;
            }
        }
        if stopped(report) {
            break;
        }
    }
    Ok(backfilled)
}

/// Says which tables the statement dropped without their rows counted (dropped through an object that
/// is no table or schema: an extension, a type, `DROP OWNED`).
fn uncounted_drops(report: &mut StatementReport) {
    let uncounted: Vec<String> = report
        .dropped
        .iter()
        .filter(|r| r.kind == "table")
        .filter(|r| !report.losses.iter().any(|l| l.kind == LossKind::DroppedTable && l.table == r.relation))
        .map(|r| format!("`{}`", r.relation))
        .collect();
    if !uncounted.is_empty() {
        report.notes.push(format!("the rows of the tables it drops were not counted: {}", uncounted.join(", ")));
    }
}

/// Reports the statement's failure (`e`, SQLSTATE `code`), after its savepoint was rolled back: a lock
/// timeout, or a failure with the rows that make it fail where they can be found.
async fn failed(
    s: &Session,
    analysis: &Analysis,
    options: &DryRunOptions,
    report: &mut StatementReport,
    e: Error,
    code: SqlState,
) -> Result<()> {
    if code == SqlState::LOCK_NOT_AVAILABLE {
        report.outcome = StatementOutcome::LockTimeout;
        report.reason = Some(format!(
            "waited longer than --lock-timeout ({} ms) for a lock another session holds; the rehearsal stops here",
            options.lock_timeout.as_millis()
        ));
        report.failure = Some(failure(&e, None));
        return Ok(());
    }
    if code == SqlState::QUERY_CANCELED {
        // Not an interruption of pgsafe's own (the caller checked): the server's statement_timeout.
        report.outcome = StatementOutcome::Timeout;
        report.reason = Some(format!(
            "ran longer than --statement-timeout ({} ms) and was cancelled; the rehearsal stops here",
            options.statement_timeout.as_millis()
        ));
        report.failure = Some(failure(&e, None));
        return Ok(());
    }
    report.outcome = StatementOutcome::Failed;
    let rows = match failing_rows(analysis, code, e.server_object()) {
        Some(query) => {
            let found = async {
                let Some((what, count_sql, examples_sql)) = query.sql(s).await? else { return Ok(None) };
                let count = count(s, &count_sql).await?;
                let mut examples = Vec::new();
                if let Some(sql) = examples_sql {
                    for row in s.query(&sql, &[]).await? {
                        examples.push(value::<String, _>(&row, 0, &sql)?);
                    }
                }
                Ok(Some(FailingRows { what, count, examples }))
            };
            let reason = report.reason.clone();
            let found = settle(measure(s, found).await, "the rows that make it fail", options, report)?;
            // A lock timeout met while looking for them does not hide the failure.
            (report.outcome, report.reason) = (StatementOutcome::Failed, reason);
            found.flatten()
        }
        None => None,
    };
    report.failure = Some(failure(&e, rows));
    Ok(())
}

/// How to find the rows that make a statement fail: its queries, or those of a constraint that needs the
/// primary keys of its tables first.
enum FailingQuery<'a> {
    /// What makes it fail, the query counting it, and one giving examples.
    Ready(String, String, Option<String>),
    /// An added constraint: the queries once the primary keys are known.
    Constraint(&'a Effect),
    /// Type changes that a value did not survive (a data exception, class 22): the values of each that
    /// its conversion refuses, the first column with any.
    Conversions(&'a [Conversion]),
    /// A constraint validated (table, name): as the one added, once the catalog gives its definition.
    Validate(&'a str, &'a str),
}

/// A constraint of a table by name, as `ADD CONSTRAINT` would have written it: its type, a check's
/// expression, a foreign key's columns and those it references.
const CONSTRAINT: &str = "SELECT c.contype::text AS kind, pg_catalog.pg_get_expr(c.conbin, c.conrelid) AS expression,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(n, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i) AS columns,
       CASE WHEN c.confrelid <> 0 THEN c.confrelid::pg_catalog.regclass::text END AS referenced,
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(n, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
         AS referenced_columns
FROM pg_catalog.pg_constraint c
WHERE c.conrelid = pg_catalog.to_regclass($1) AND c.conname = $2";

/// The check or foreign key `name` of `table` as the effect of adding it; `None` for another kind, or
/// none of that name.
async fn constraint_effect(s: &Session, table: &str, name: &str) -> Result<Option<Effect>> {
    let Some(row) = s.query(CONSTRAINT, &[&table, &name]).await?.into_iter().next() else { return Ok(None) };
    let kind: String = value(&row, "kind", CONSTRAINT)?;
    let table = table.to_owned();
    Ok(match kind.as_str() {
        "c" => value::<Option<String>, _>(&row, "expression", CONSTRAINT)?
            .map(|expression| Effect::Check { table, expression }),
        "f" => value::<Option<String>, _>(&row, "referenced", CONSTRAINT)?
            .map(|referenced| -> Result<Effect> {
                Ok(Effect::ForeignKey {
                    table,
                    columns: value(&row, "columns", CONSTRAINT)?,
                    referenced,
                    referenced_columns: value(&row, "referenced_columns", CONSTRAINT)?,
                })
            })
            .transpose()?,
        _ => None,
    })
}

/// The queries of the rows that break `effect`, a check or foreign key, once the primary keys of its
/// tables (which name the rows) are known.
async fn constraint_failing(s: &Session, effect: &Effect) -> Result<Option<(String, String, Option<String>)>> {
    let mut keys = BTreeMap::new();
    if let Effect::Check { table, .. } | Effect::ForeignKey { table, .. } = effect {
        keys.insert(table.clone(), primary_key(s, table).await?);
    }
    if let Effect::ForeignKey { referenced, .. } = effect {
        keys.insert(referenced.clone(), primary_key(s, referenced).await?);
    }
    Ok(constraint_rows(effect, &keys))
}

/// How many values of a column a failed type change's conversion is tried on, at most.
const CONVERSIONS_TRIED: u64 = 100_000;

/// Whether converting `v` with `conversion` (a query of `$1`) raises a data exception (class 22): a
/// function of the rehearsal's own, made in `pg_temp` inside a savepoint that is rolled back.
const CONVERSION_FAILS: &str = "CREATE FUNCTION pg_temp.pgsafe_conversion_fails(conversion text, v anyelement)
RETURNS boolean LANGUAGE plpgsql AS $pgsafe$
BEGIN
    EXECUTE conversion USING v;
    RETURN false;
EXCEPTION WHEN data_exception THEN
    RETURN true;
END
$pgsafe$";

impl FailingQuery<'_> {
    /// What makes it fail, the query counting it, and one giving examples; `None` when there is nothing
    /// to look for.
    async fn sql(self, s: &Session) -> Result<Option<(String, String, Option<String>)>> {
        match self {
            FailingQuery::Ready(what, count, examples) => Ok(Some((what, count, examples))),
            FailingQuery::Constraint(effect) => constraint_failing(s, effect).await,
            FailingQuery::Validate(table, name) => match constraint_effect(s, table, name).await? {
                Some(effect) => constraint_failing(s, &effect).await,
                None => Ok(None),
            },
            FailingQuery::Conversions(conversions) => {
                s.batch(CONVERSION_FAILS).await?;
                let mut first = None;
                for c in conversions {
                    let (count_sql, examples) = conversion_rows(c);
                    let what = format!(
                        "values of `{}.{}` that do not convert to {} (trying {CONVERSIONS_TRIED} values at most)",
                        c.table, c.column, c.to
                    );
                    if count(s, &count_sql).await? > 0 {
                        return Ok(Some((what, count_sql, Some(examples))));
                    }
                    first.get_or_insert((what, count_sql, Some(examples)));
                }
                Ok(first)
            }
        }
    }
}

/// The queries that count and show the values of a type change's column that its conversion refuses.
fn conversion_rows(c: &Conversion) -> (String, String) {
    let column = quote_ident(&c.column);
    // The `USING` expression names the row's column, here the value under test.
    let conversion = match &c.using {
        Some(using) => format!("SELECT ({using})::{} FROM (SELECT $1 AS {column}) AS pgsafe_row", c.to),
        None => format!("SELECT ($1)::{}", c.to),
    };
    let values = format!(
        "(SELECT {column} AS v FROM {} WHERE {column} IS NOT NULL LIMIT {CONVERSIONS_TRIED}) AS r \
         WHERE pg_temp.pgsafe_conversion_fails({}, r.v)",
        c.table,
        quote_literal(&conversion)
    );
    (format!("SELECT count(*) FROM {values}"), format!("SELECT left((r.v)::text, 60) FROM {values} LIMIT 5"))
}

/// For an added CHECK or FOREIGN KEY constraint (`effect`), with the primary keys of its tables
/// (`keys`): what makes it fail, the query counting it, and one giving up to five examples, by primary
/// key where the table has one; `None` for another effect.
fn constraint_rows(effect: &Effect, keys: &BTreeMap<String, Vec<String>>) -> Option<(String, String, Option<String>)> {
    let key_of = |table: &String| keys.get(table).cloned().unwrap_or_default();
    let list = |columns: &[String], source: &str| {
        columns.iter().map(|c| format!("{source}.{}", quote_ident(c))).collect::<Vec<_>>().join(", ")
    };
    // A row of `table` read as `source` (an alias, or the table as written), by its primary key or whole.
    let shown = |table: &String, source: &str| {
        let key = key_of(table);
        if key.is_empty() { format!("row({source}.*)::text") } else { format!("row({})::text", list(&key, source)) }
    };
    let order = |table: &String, source: &str| {
        let key = key_of(table);
        if key.is_empty() { String::new() } else { format!(" ORDER BY {}", list(&key, source)) }
    };
    match effect {
        Effect::ForeignKey { table, columns, referenced, referenced_columns } => {
            let referenced_columns =
                if referenced_columns.is_empty() { key_of(referenced) } else { referenced_columns.clone() };
            // MATCH SIMPLE: a row with a NULL in the key references nothing.
            let not_null: Vec<String> = columns.iter().map(|c| format!("r.{} IS NOT NULL", quote_ident(c))).collect();
            let matches: Vec<String> = columns
                .iter()
                .zip(&referenced_columns)
                .map(|(c, p)| format!("p.{} = r.{}", quote_ident(p), quote_ident(c)))
                .collect();
            let orphan = format!(
                "{} AND NOT EXISTS (SELECT 1 FROM {referenced} p WHERE {})",
                not_null.join(" AND "),
                matches.join(" AND ")
            );
            Some((
                format!("rows of `{table}` whose ({}) is not in `{referenced}`", columns.join(", ")),
                format!("SELECT count(*) FROM {table} r WHERE {orphan}"),
                Some(format!(
                    "SELECT left({} || ' -> ' || row({})::text, 60) FROM {table} r WHERE {orphan}{} LIMIT 5",
                    shown(table, "r"),
                    list(columns, "r"),
                    order(table, "r")
                )),
            ))
        }
        Effect::Check { table, expression } => {
            // A CHECK fails on false only: NULL passes. No alias: the expression may name the table.
            let violates = format!("NOT coalesce({expression}, true)");
            Some((
                format!("rows of `{table}` for which {expression} is false"),
                format!("SELECT count(*) FROM {table} WHERE {violates}"),
                Some(format!(
                    "SELECT left({}, 60) FROM {table} WHERE {violates}{} LIMIT 5",
                    shown(table, table),
                    order(table, table)
                )),
            ))
        }
        _ => None,
    }
}

/// Drops the temporary copies `temps` once they were compared; one that cannot go stays until the
/// rehearsal ends.
async fn drop_copies(s: &Session, temps: &[&str]) -> Result<()> {
    let names: Vec<String> = temps.iter().map(|t| format!("pg_temp.{}", quote_ident(t))).collect();
    if let Err(e) = measure_keep(s, s.batch(&format!("DROP TABLE IF EXISTS {}", names.join(", ")))).await {
        tracing::warn!("the temporary copy `{}` stays until the rehearsal ends: {e}", temps.join("`, `"));
    }
    Ok(())
}

/// The other columns of `table` that `effects` drop with `column`.
fn dropped_with_it(effects: &[Effect], table: &str, column: &str) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::DropColumn { table: t, column: c } | Effect::DropColumnIfGone { table: t, column: c }
                if t == table && c != column =>
            {
                Some(c.clone())
            }
            _ => None,
        })
        .collect()
}

/// Copies the values of `table.column` by its primary key into `temp`, before a `DO` block that may drop
/// the column, to look for them where the block kept them once it ran ([`kept_after`]); `None` (nothing
/// copied) without a primary key that leaves the column out, or with more than `--max-compare-rows` rows:
/// then they are looked for before the block.
async fn keep_dropped(
    s: &Session,
    table: &str,
    column: &str,
    temp: &str,
    options: &DryRunOptions,
) -> Result<Option<Copy>> {
    let key = primary_key(s, table).await?;
    if key.is_empty() || key.iter().any(|k| k == column) {
        return Ok(None);
    }
    match copy(s, table, column, temp, options).await? {
        Ok(copy) if copy.copied == copy.rows => Ok(Some(copy)),
        Ok(copy) => {
            s.batch(&format!("DROP TABLE pg_temp.{}", quote_ident(&copy.temp))).await?;
            Ok(None)
        }
        Err(_) => Ok(None),
    }
}

/// Of the `total` values (not NULL) of a column a `DO` block dropped, copied before it ran, how many
/// what the block left does not hold: the column is put back with them, by primary key, and looked for
/// as for a `DROP COLUMN` of its own ([`not_moved`]: in a duplicate, a column the migration added, a table
/// it filled). To run inside [`measure`], which takes the column back out; the table's own triggers are
/// off meanwhile, so that putting the values back writes nowhere else. `None` when not every value finds
/// its row (the block deleted rows, or changed keys).
async fn kept_after(
    s: &Session,
    copy: &Copy,
    total: u64,
    run: &Run,
    options: &DryRunOptions,
    report: &mut StatementReport,
) -> Result<Option<u64>> {
    let Copy { table, column, temp, key, .. } = copy;
    let temp = format!("pg_temp.{}", quote_ident(temp));
    // The type may be gone with the column (a `DROP TYPE ... CASCADE` takes the copy's column too).
    let Some((ty, _)) = column_types(s, &temp).await?.remove("pgsafe_old") else { return Ok(None) };
    let col = quote_ident(column);
    s.batch(&format!("ALTER TABLE {table} DISABLE TRIGGER USER, ADD COLUMN {col} {ty}")).await?;
    let put_back = s
        .execute_simple(&format!(
            "UPDATE {table} t SET {col} = o.pgsafe_old FROM {temp} o WHERE {} AND o.pgsafe_old IS NOT NULL",
            same_key(key)
        ))
        .await?;
    if put_back != total {
        return Ok(None);
    }
    let dropping = Dropping { table, column, total, with: &[] };
    Ok(Some(not_moved(s, &dropping, run, options, report).await?))
}

/// Takes the rows a measurement of the rehearsal's own wrote (the transaction's counters `from` before
/// it, `to` after) out of what the statement is found to have changed since `before`.
fn discount(before: &mut BTreeMap<i64, RowChanges>, from: &BTreeMap<i64, RowChanges>, to: &BTreeMap<i64, RowChanges>) {
    for (oid, now) in to {
        let (updated, deleted, inserted) = from.get(oid).map_or((0, 0, 0), |f| (f.updated, f.deleted, f.inserted));
        let counted =
            before.entry(*oid).or_insert_with(|| RowChanges { updated: 0, deleted: 0, inserted: 0, ..now.clone() });
        counted.updated += now.updated - updated;
        counted.deleted += now.deleted - deleted;
        counted.inserted += now.inserted - inserted;
    }
}

/// Another table's column of the same name that holds every value (not NULL) of `table.column`, in the
/// row a column of `table` names by that table's primary key: a copy kept for reads (`threads.teamid`,
/// the `teamid` of the channel `threads.channelid` names), which the join gives back; dropping it loses
/// nothing. No row may contradict the tie (its key there with another value), so that numbers that happen
/// to match (two serials) tie nothing. Tables of at most `--max-compare-rows` rows, five of them, and ten
/// columns of `table` each. The note that says so, if one is.
async fn copied_from(s: &Session, dropping: &Dropping<'_>, options: &DryRunOptions) -> Result<Option<String>> {
    const COPIED_FROM: &str = include_str!("sql/copied_from.sql");
    let &Dropping { table, column, total, .. } = dropping;
    if total == 0 || count(s, &format!("SELECT count(*) FROM {table}")).await? > options.max_compare_rows {
        return Ok(None);
    }
    let max = i64::try_from(options.max_compare_rows).unwrap_or(i64::MAX);
    let col = quote_ident(column);
    for row in s.query(COPIED_FROM, &[&table, &column, &max]).await? {
        let (other, key): (String, String) = (value(&row, "name", COPIED_FROM)?, value(&row, "key", COPIED_FROM)?);
        let ties: Vec<String> = s
            .query(LIKE_COLUMNS, &[&table, &other, &key, &max])
            .await?
            .iter()
            .map(|r| value(r, 0, LIKE_COLUMNS))
            .collect::<Result<_>>()?;
        for tie in ties.iter().filter(|c| *c != column).take(10) {
            let sql = format!(
                "SELECT count(*) FILTER (WHERE u.v IS DISTINCT FROM t.v), count(*) FILTER (WHERE u.k IS NOT NULL AND u.v IS DISTINCT FROM t.v) \
                 FROM (SELECT ({tie})::text AS x, ({col})::text AS v FROM {table} WHERE {col} IS NOT NULL) t \
                 LEFT JOIN (SELECT ({key})::text AS k, ({col})::text AS v FROM {other}) u ON u.k = t.x",
                tie = quote_ident(tie),
                key = quote_ident(&key)
            );
            let row = s.query_one(&sql, &[]).await?;
            let (missing, contradicted): (i64, i64) = (value(&row, 0, &sql)?, value(&row, 1, &sql)?);
            if missing == 0 && contradicted == 0 {
                return Ok(Some(format!(
                    "every value of `{table}.{column}` is `{other}.{column}` of the row `{tie}` names: a copy that a join \
                     gives back, not counted as lost"
                )));
            }
        }
    }
    Ok(None)
}

/// A column a statement drops: `table.column`, its `total` values (not NULL), and the other columns of
/// the table the statement drops `with` it, which keep none of them.
#[derive(Clone, Copy)]
struct Dropping<'a> {
    table: &'a str,
    column: &'a str,
    total: u64,
    with: &'a [String],
}

/// A column of `table` that was there before the migration, of the same type as `column`, equal to it in
/// every row, NULL (or an empty string, taken as the same) where it is NULL: dropping a duplicate loses
/// nothing (a column kept in two places, one of them dropped once the other was filled). Where the other
/// column holds a value and this one none, the NULL says something (`verified_email` NULL beside an
/// `email`: not verified), which dropping it loses. At most ten columns are tried, on a table of at most
/// `--max-compare-rows` rows. The note that says so, if one is.
async fn duplicated_in(
    s: &Session,
    dropping: &Dropping<'_>,
    run: &Run,
    options: &DryRunOptions,
) -> Result<Option<String>> {
    let &Dropping { table, column, with, .. } = dropping;
    if count(s, &format!("SELECT count(*) FROM {table}")).await? > options.max_compare_rows {
        return Ok(None);
    }
    let types = column_types(s, table).await?;
    let Some((ty, _)) = types.get(column) else { return Ok(None) };
    let mut columns: Vec<&String> = types
        .iter()
        .filter(|(c, (t, _))| {
            *c != column && t == ty && !with.contains(c) && !run.added.contains(&(table.to_owned(), (*c).clone()))
        })
        .map(|(c, _)| c)
        .collect();
    columns.sort();
    let col = quote_ident(column);
    for other in columns.into_iter().take(10) {
        // A generated column holds what it is computed from: the column dropped (with CASCADE, it too).
        if is_generated(s, table, other).await? {
            continue;
        }
        let there = quote_ident(other);
        // The first row that differs ends the search in this column: most columns differ at once.
        let sql = format!(
            "SELECT NOT EXISTS (SELECT FROM {table} WHERE NULLIF(({col})::text, '') \
                                IS DISTINCT FROM NULLIF(({there})::text, '')) \
                    AND EXISTS (SELECT FROM {table} WHERE {col} IS NOT NULL AND ({col})::text <> '')"
        );
        let duplicate: bool = value(&s.query_one(&sql, &[]).await?, 0, &sql)?;
        if duplicate {
            return Ok(Some(format!(
                "`{table}.{column}` equals `{other}` in every row (NULL or empty where it is): a duplicate, not \
                 counted as lost"
            )));
        }
    }
    Ok(None)
}

/// The non-null values of `table.column` in `table` itself (`FROM ONLY`) and in each inheritance
/// descendant of it holding the column, by table (named as `regclass` prints it), `table` first; none
/// when it is partitioned (a partition's values are its partitioned table's) or has no children.
async fn own_values(s: &Session, table: &str, column: &str) -> Result<Vec<(String, u64)>> {
    const SQL: &str = "WITH RECURSIVE d(oid, depth) AS (
                           SELECT c.oid, 0 FROM pg_catalog.pg_class c
                           WHERE c.oid = pg_catalog.to_regclass($1) AND c.relkind = 'r'
                           UNION ALL
                           SELECT i.inhrelid, d.depth + 1 FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent = d.oid)
                       SELECT DISTINCT ON (d.oid) d.oid::regclass::text, d.depth
                       FROM d JOIN pg_catalog.pg_class c ON c.oid = d.oid
                       WHERE c.relkind = 'r' AND EXISTS (SELECT FROM pg_catalog.pg_attribute a
                                                         WHERE a.attrelid = d.oid AND a.attname = $2
                                                           AND NOT a.attisdropped)
                       ORDER BY d.oid, d.depth";
    let rows = s.query(SQL, &[&table, &column]).await?;
    let mut tables: Vec<(i32, String)> = Vec::new();
    for row in &rows {
        tables.push((value(row, 1, SQL)?, value(row, 0, SQL)?));
    }
    tables.sort();
    let mut each = Vec::new();
    // No children: the count already taken is the table's own, not read again.
    if tables.len() < 2 {
        return Ok(each);
    }
    for (depth, name) in tables {
        // `table` as the statement names it: the losses' names must match.
        let name = if depth == 0 { table.to_owned() } else { name };
        let n = count(s, &format!("SELECT count({}) FROM ONLY {name}", quote_ident(column))).await?;
        each.push((name, n));
    }
    Ok(each)
}

/// Of the `total` values (not NULL) of `table.column` that a `DROP COLUMN` loses, how many are not in a
/// column of the same table that the migration added (`run.added`) or wrote (`run.filled`): a column
/// renamed the safe way (add the new one, copy the values with `UPDATE`, drop the old one) loses nothing,
/// and one copied into another where that was empty loses only the values that went nowhere. A value is kept when the
/// new column holds the same text in its row, or holds it changed by a function that gives it back
/// ([`recover`]: `price_cents = price * 100`); the added column holding the most is taken, and a note
/// names it.
async fn not_moved(
    s: &Session,
    dropping: &Dropping<'_>,
    run: &Run,
    options: &DryRunOptions,
    report: &mut StatementReport,
) -> Result<u64> {
    let &Dropping { table, column, total, with } = dropping;
    if let Some(note) = quietly(measure(s, duplicated_in(s, dropping, run, options)).await)? {
        report.notes.push(note);
        return Ok(0);
    }
    if let Some(note) = quietly(measure(s, copied_from(s, dropping, options)).await)? {
        report.notes.push(note);
        return Ok(0);
    }
    // The columns there now, and not dropped with it: an added column dropped since holds nothing.
    let present = quietly(measure(s, column_types(s, table)).await.map(Some))?.unwrap_or_default();
    let mut best: Option<(&str, u64)> = None;
    // How the added column holding the most was computed from the column, when its values are others.
    let mut how: Option<String> = None;
    let targets: std::collections::BTreeSet<&(String, String)> = run.added.iter().chain(&run.filled).collect();
    let added = targets.into_iter().filter(|(t, c)| t == table && c != column && !with.contains(c));
    for (_, new) in added.filter(|(_, c)| present.contains_key(c)) {
        let (old, new_column) = (quote_ident(column), quote_ident(new));
        let what = format!("the values of `{table}.{column}` in `{new}`");
        let Some(structured) = settle(measure(s, structured(s, table, new)).await, &what, options, report)? else {
            continue;
        };
        // A value put inside a document, an array or a row of the new column (`info = jsonb_build_object(
        // 'name', name)`): found at one path of it in every row that has the path, as a value or as its text
        // (a date the migration wrote as text).
        if structured {
            let from = format!("{table} WHERE true");
            let found = quietly(measure(s, recover::inside(s, &from, &old, &new_column)).await)?;
            let missing = found.map_or(total, |(_, absent)| absent);
            if best.is_none_or(|(_, m)| missing < m) {
                best = Some((new, missing));
                how = None;
            }
            continue;
        }
        let sql = format!(
            "SELECT count(*) FROM {table} WHERE {old} IS NOT NULL AND ({old})::text IS DISTINCT FROM ({new_column})::text"
        );
        let Some(mut missing) = settle(measure(s, count(s, &sql)).await, &what, options, report)? else { continue };
        // Values the migration changed on the way (`price_cents = price * 100`), which a fixed function
        // of the new ones gives back.
        let mut computed = None;
        if missing > 0 {
            let from = format!("{table} WHERE true");
            let old = recover::Column { relation: table, name: column, expr: &old };
            let new = recover::Column { relation: table, name: new, expr: &new_column };
            let found = measure(s, recover::between(s, &from, old, new, &run.strings)).await;
            if let Some(found) = quietly(found)?.filter(|f| f.unrecovered < missing) {
                missing = found.unrecovered;
                computed = Some(found.how);
            }
        }
        if best.is_none_or(|(_, m)| missing < m) {
            best = Some((new, missing));
            how = computed;
        }
    }
    let described = format!("values of `{table}.{column}`");
    // The values are taken to be in the added column: the note says how, when they were changed.
    let in_added = |report: &mut StatementReport| {
        if let (Some((new, missing)), Some(how)) = (best, &how)
            && missing < total
        {
            report.notes.push(format!(
                "`{table}.{new}` holds the values of `{column}` changed by a function that gives them back ({how})"
            ));
        }
        if let Some((new, missing)) = best
            && missing < total
        {
            report.carried.push((table.to_owned(), new.to_owned()));
        }
        let made = match best {
            Some((new, _)) if !run.added.contains(&(table.to_owned(), new.to_owned())) => "wrote",
            _ => "added",
        };
        kept_in(best, total, &described, made, report)
    };
    if best.is_some_and(|(_, missing)| missing == 0) || total == 0 || total > options.max_compare_rows {
        return Ok(in_added(report));
    }
    // Moved to another table the migration wrote (a table split in two, a column moved to the table it
    // belongs in): a column holding the values, compared as a multiset of texts (a column of the same
    // name, else any column of it), then row by row through a key that ties each value to its row
    // (`local_user.person_id = person.id`, or `person.address_id = address.id`, where one row may hold the
    // value of many: a lookup table): values moved without one are no longer anyone's.
    let what = format!("the tables `{table}.{column}` may have been moved to");
    let written: Vec<(String, bool)> =
        match settle(measure(s, s.query(WRITTEN, &[&table, &column])).await, &what, options, report)? {
            Some(rows) => rows
                .iter()
                .map(|r| Ok((value(r, "name", WRITTEN)?, value(r, "same", WRITTEN)?)))
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
    // The column holding them (`other.there`), how many it lacks, and the column that ties them.
    let mut elsewhere: Option<(String, u64, Option<TableColumn>)> = None;
    let col = quote_ident(column);
    for (other, same) in &written {
        // A column its sequence numbers holds the sequence's values, whatever they equal: no place the
        // values went, and no key that ties them (`schedule.id`, new serials 1 to 300 beside ids 1 to 1000).
        let what = format!("the columns a sequence numbers in `{other}`");
        let numbered: Vec<String> = match settle(measure(s, s.query(NUMBERED, &[other])).await, &what, options, report)?
        {
            Some(rows) => {
                let mut numbered = Vec::new();
                for r in &rows {
                    let (name, seq): (String, i64) = (value(r, 0, NUMBERED)?, value(r, 1, NUMBERED)?);
                    let (readable, last): (bool, Option<i64>) = (value(r, 2, NUMBERED)?, value(r, 3, NUMBERED)?);
                    if run.numbered_here(seq, readable, last) {
                        numbered.push(name);
                    }
                }
                numbered
            }
            None => continue,
        };
        let columns: Vec<String> = if *same {
            vec![column.to_owned()]
        } else {
            // Columns of another name: of the same kind of type (text, number, date...), in a table of at
            // most `--max-compare-rows` rows (a big table the migration updated a row of is not read
            // column by column).
            let what = format!("the columns of `{other}`");
            let max = i64::try_from(options.max_compare_rows).unwrap_or(i64::MAX);
            match settle(
                measure(s, s.query(LIKE_COLUMNS, &[other, &table, &column, &max])).await,
                &what,
                options,
                report,
            )? {
                Some(rows) => rows.iter().take(30).map(|r| value(r, 0, LIKE_COLUMNS)).collect::<Result<_>>()?,
                None => Vec::new(),
            }
        };
        for there in columns.iter().filter(|c| !numbered.contains(c)) {
            let sql = format!(
                "SELECT count(*) FROM (SELECT ({col})::text FROM {table} WHERE {col} IS NOT NULL \
                 EXCEPT ALL SELECT ({there})::text FROM {other} WHERE {there} IS NOT NULL AND {WRITTEN_HERE}) missing",
                there = quote_ident(there)
            );
            let what = format!("the values of `{table}.{column}` in `{other}.{there}`");
            let Some(mut missing) = settle(measure(s, count(s, &sql)).await, &what, options, report)? else { continue };
            if missing >= total || elsewhere.as_ref().is_some_and(|(_, m, _)| *m == 0) {
                continue;
            }
            // Row by row through a key, when there is one: a value there once may be the value of many
            // rows (a lookup table, `post.tag_id = tag.id`), which the multiset counts once.
            let mut by = None;
            let mut values = None;
            if let Some(tie) = quietly(measure(s, tied(s, table, column, other, there, &numbered)).await)? {
                missing = tie.missing.min(total);
                by = tie.by;
                values = Some(tie.values);
            }
            // Some found, all of one value: a constant the new rows hold (`status = 'Success'`) equals a
            // few by chance, which tells no copy from a coincidence.
            if missing > 0 && missing < total {
                let values = match values {
                    Some(values) => Some(values),
                    None => {
                        let sql = format!(
                            "SELECT count(*) FROM (SELECT ({col})::text FROM {table} WHERE {col} IS NOT NULL \
                             INTERSECT SELECT ({there})::text FROM {other} WHERE {there} IS NOT NULL AND {WRITTEN_HERE}) found",
                            there = quote_ident(there)
                        );
                        settle(measure(s, count(s, &sql)).await, &what, options, report)?
                    }
                };
                if values.is_none_or(|v| v < 2) {
                    missing = total;
                }
            }
            if elsewhere.as_ref().is_none_or(|(_, m, _)| missing < *m) {
                elsewhere = Some((format!("{other}.{there}"), missing, by));
            }
        }
    }
    match (best, elsewhere) {
        (Some((_, here)), Some((_, there, _))) if here <= there => Ok(in_added(report)),
        (_, Some((place, missing, by))) => {
            let lost = kept_in(Some((&place, missing)), total, &described, "filled", report);
            if lost < total {
                let (other, there) = place.rsplit_once('.').unwrap_or((place.as_str(), ""));
                report.moved.push((table.to_owned(), other.to_owned()));
                report.carried.push((other.to_owned(), there.to_owned()));
                // The key that ties them to their rows (`post.tag_id`) is no longer the migration's own.
                report.carried.extend(by);
            }
            Ok(lost)
        }
        (_, None) => Ok(in_added(report)),
    }
}

/// Of the values of `table.column` (not NULL), how many have no row of `other` that the migration wrote
/// holding the value in `there` and tied to the value's row: by a column of `other` holding the row's
/// primary key (one column; none of the `numbered` ones, which a sequence fills), or a column of `table`
/// holding `other`'s primary key (one column), whichever ties the most; `None` when `table` has no primary
/// key to tie by (then the values alone are compared).
async fn tied(
    s: &Session,
    table: &str,
    column: &str,
    other: &str,
    there: &str,
    numbered: &[String],
) -> Result<Option<Tie>> {
    let key = primary_key(s, table).await?;
    let [key] = key.as_slice() else { return Ok(None) };
    let other_key = primary_key(s, other).await?;
    let own: Vec<String> =
        s.query(COLUMNS, &[&table]).await?.iter().map(|r| value(r, 0, COLUMNS)).collect::<Result<_>>()?;
    let theirs: Vec<String> =
        s.query(COLUMNS, &[&other]).await?.iter().map(|r| value(r, 0, COLUMNS)).collect::<Result<_>>()?;
    // (a column of `other`, a column of `table`) that hold the same key, and which of them ties (is not
    // a key).
    let mut ties: Vec<(&str, &str, (&str, &str))> = theirs
        .iter()
        .filter(|c| *c != there && !numbered.contains(c))
        .take(30)
        .map(|c| (c.as_str(), key.as_str(), (other, c.as_str())))
        .collect();
    if let [other_key] = other_key.as_slice() {
        ties.extend(
            own.iter()
                .filter(|c| *c != column && *c != key)
                .take(30)
                .map(|c| (other_key.as_str(), c.as_str(), (table, c.as_str()))),
        );
    }
    let (col, there) = (quote_ident(column), quote_ident(there));
    let mut best: Option<Tie> = None;
    for (theirs, ours, by) in ties {
        let (theirs, ours) = (quote_ident(theirs), quote_ident(ours));
        // Rows of the other table this transaction wrote, by the key that ties them (as text), and with
        // the value each holds. A row whose key is there with another value, beside its own or not,
        // contradicts the tie: the key ties nothing (ids that happen to equal the old ones, where other
        // rows hold the same `vendor_id` with other ids). Joined, not looked up row by row: a subquery in
        // an aggregate's FILTER runs once for each row (30,000 rows took 138 s).
        let sql = format!(
            "WITH d AS (SELECT ({theirs})::text AS k, ({there})::text AS v FROM {other} \
                        WHERE pg_catalog.age(xmin) <= 0), \
                  pairs AS (SELECT DISTINCT k, v FROM d WHERE k IS NOT NULL AND v IS NOT NULL), \
                  keys AS (SELECT k, count(DISTINCT v) AS n FROM d WHERE k IS NOT NULL GROUP BY k) \
             SELECT count(*) FILTER (WHERE p.k IS NULL), \
                    count(*) FILTER (WHERE kk.k IS NOT NULL AND (p.k IS NULL OR kk.n > 1)), \
                    count(DISTINCT (t.{col})::text) FILTER (WHERE p.k IS NOT NULL) \
             FROM {table} t \
             LEFT JOIN pairs p ON p.k = (t.{ours})::text AND p.v = (t.{col})::text \
             LEFT JOIN keys kk ON kk.k = (t.{ours})::text \
             WHERE t.{col} IS NOT NULL"
        );
        let row = s.query_one(&sql, &[]).await?;
        let (missing, contradicted, values): (i64, i64, i64) =
            (value(&row, 0, &sql)?, value(&row, 1, &sql)?, value(&row, 2, &sql)?);
        let (missing, values) = (u64::try_from(missing).unwrap_or(0), u64::try_from(values).unwrap_or(0));
        if contradicted == 0 && best.as_ref().is_none_or(|b| missing < b.missing) {
            best = Some(Tie { missing, values, by: Some((by.0.to_owned(), by.1.to_owned())) });
        }
    }
    Ok(Some(best.unwrap_or(Tie { missing: u64::MAX, values: 0, by: None })))
}

/// What [`tied`] found: the values no row ties, how many distinct values the rows it ties hold, and the
/// column that ties them (table, column), which holds data that was there before from then on.
struct Tie {
    missing: u64,
    values: u64,
    by: Option<TableColumn>,
}

/// A column, as (table, column).
type TableColumn = (String, String);

/// Whether `table.column` holds values inside its values: `json`, `jsonb`, an array, a row type (or a
/// domain over one).
async fn structured(s: &Session, table: &str, column: &str) -> Result<bool> {
    Ok(recover::base_type(s, table, column).await?.is_some_and(|t| recover::structured(&t)))
}

/// What is lost of `total` `described` (`rows of t`) when `best` is the place the migration kept most of
/// them, and how many it lacks: those it lacks, with a note naming it, which the migration `made`
/// (`filled`, `added`); all of them when there is none, or it holds none.
fn kept_in(
    best: Option<(impl std::fmt::Display, u64)>,
    total: u64,
    described: &str,
    made: &str,
    report: &mut StatementReport,
) -> u64 {
    let Some((place, missing)) = best.filter(|(_, missing)| *missing < total) else { return total };
    report.notes.push(if missing == 0 {
        format!("all {total} {described} are in `{place}`, which this migration {made}: not counted as lost")
    } else {
        format!("{} of the {total} {described} are in `{place}`, which this migration {made}", total - missing)
    });
    missing
}

/// The columns of `table`, and the tables this migration filled earlier in the rehearsal (a partition
/// counting for its partitioned table; up to five, most rows inserted first) that have every one of them
/// by name, other than `table` and those of `statement` (the tables the statement itself drops or
/// empties): where its rows may have been copied.
async fn copies(s: &Session, table: &str, statement: &[String]) -> Result<(Vec<String>, Vec<String>)> {
    let mut own: Vec<String> = statement.to_vec();
    own.push(table.to_owned());
    let filled = s.query(FILLED, &[&own]).await?;
    if filled.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let columns = table_columns(s, table).await?;
    let mut found = Vec::new();
    for row in &filled {
        let has: Vec<String> = value(row, "columns", FILLED)?;
        if !columns.is_empty() && columns.iter().all(|c| has.contains(c)) {
            found.push(value(row, "name", FILLED)?);
        }
    }
    Ok((columns, found))
}

/// Whether `table.column` is a generated column (`GENERATED ALWAYS AS (...) STORED`), whose values the
/// other columns give.
async fn is_generated(s: &Session, table: &str, column: &str) -> Result<bool> {
    const SQL: &str = "SELECT a.attgenerated <> '' FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped";
    match s.query(SQL, &[&table, &column]).await?.first() {
        Some(row) => value(row, 0, SQL),
        None => Ok(false),
    }
}

/// A table's columns by name, in order.
/// The columns of `$1` whose type is of the category of `$2.$3`'s (a domain's base type's), when `$1` has at
/// most `$4` rows by the planner's estimate.
const LIKE_COLUMNS: &str = "SELECT a.attname::text FROM pg_catalog.pg_attribute a
                            JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                            JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
                            WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
                              AND c.reltuples <= $4::int8
                              AND (SELECT b.typcategory FROM pg_catalog.pg_type b WHERE b.oid = COALESCE(NULLIF(t.typbasetype, 0), t.oid))
                                = (SELECT b.typcategory FROM pg_catalog.pg_attribute x
                                   JOIN pg_catalog.pg_type y ON y.oid = x.atttypid
                                   JOIN pg_catalog.pg_type b ON b.oid = COALESCE(NULLIF(y.typbasetype, 0), y.oid)
                                   WHERE x.attrelid = pg_catalog.to_regclass($2) AND x.attname = $3)
                            ORDER BY a.attnum";

const COLUMNS: &str = "SELECT a.attname::text FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
                       ORDER BY a.attnum";

/// A table's rows kept before a DELETE: the temporary table `temp` holds its `columns`' text.
#[derive(Debug)]
struct KeptRows {
    temp: String,
    columns: Vec<String>,
}

/// Before a DELETE from `table` (`rows` rows): its rows, as their columns' text, in the temporary table
/// `temp`, when there are at most `--max-compare-rows` of them; `None` otherwise. They tell which rows
/// the DELETE removed, to look for in a table the migration filled ([`not_copied`]) and, at the end of
/// the rehearsal, in `table` itself ([`back_again`]). With `inserted`, the rows the migration inserted
/// ([`inserted_here`]) are left out: deleting them loses nothing.
async fn keep_rows(
    s: &Session,
    table: &str,
    rows: u64,
    temp: &str,
    inserted: bool,
    fills_later: bool,
    options: &DryRunOptions,
) -> Result<Option<KeptRows>> {
    if rows == 0 || rows > options.max_compare_rows {
        return Ok(None);
    }
    // Worth a copy of the whole table only where the rows may be found again: in a table the migration
    // filled before (an archive), or one it fills in this statement or after (the table reseeded).
    if !fills_later && copies(s, table, &[]).await?.1.is_empty() {
        return Ok(None);
    }
    let columns = table_columns(s, table).await?;
    if columns.is_empty() {
        return Ok(None);
    }
    let list = text_columns(&columns);
    let filter = if inserted { format!(" WHERE NOT ({WRITTEN_HERE})") } else { String::new() };
    s.batch(&format!("CREATE TEMPORARY TABLE {} AS SELECT {list} FROM {table}{filter}", quote_ident(temp))).await?;
    Ok(Some(KeptRows { temp: temp.to_owned(), columns }))
}

/// The columns of `table`, by name, in order ([`COLUMNS`]).
async fn table_columns(s: &Session, table: &str) -> Result<Vec<String>> {
    s.query(COLUMNS, &[&table]).await?.iter().map(|r| value(r, 0, COLUMNS)).collect()
}

/// After the DELETE: the rows `kept` that `table` no longer has (as a multiset), in the temporary table
/// `{temp}_gone`, whose name it returns.
async fn deleted_rows(s: &Session, table: &str, kept: &KeptRows) -> Result<String> {
    let gone = format!("{}_gone", kept.temp);
    s.batch(&format!(
        "CREATE TEMPORARY TABLE {} AS SELECT * FROM pg_temp.{} EXCEPT ALL SELECT {} FROM {table}",
        quote_ident(&gone),
        quote_ident(&kept.temp),
        text_columns(&kept.columns)
    ))
    .await?;
    Ok(gone)
}

/// The rows a DELETE of the rehearsal took out of a table (its `statement`th statement), kept to look for
/// at the rehearsal's end: a table emptied and filled again with the rows it had (a lookup table
/// reseeded, `DELETE FROM plan; INSERT INTO plan VALUES ...`) loses nothing.
#[derive(Debug)]
struct DeletedRows {
    statement: usize,
    /// As the statement's loss names it.
    table: String,
    /// The table's oid: it may be renamed since.
    oid: i64,
    /// Its primary key, when it has one.
    key: Vec<String>,
    /// Its rows before the DELETE, as their columns' text.
    kept: KeptRows,
    /// The temporary table of the rows the DELETE removed ([`deleted_rows`]), their columns' text.
    gone: String,
}

/// The oid of `table` and the columns of its primary key; `None` when there is no such table.
async fn identity(s: &Session, table: &str) -> Result<Option<(i64, Vec<String>)>> {
    const SQL: &str = "SELECT pg_catalog.to_regclass($1)::oid::int8";
    let oid: Option<i64> = value(&s.query_one(SQL, &[&table]).await?, 0, SQL)?;
    match oid {
        Some(oid) => Ok(Some((oid, primary_key(s, table).await?))),
        None => Ok(None),
    }
}

/// Of the rows `d` holds, as found at the rehearsal's end: those not there again, and those there again
/// under the same primary key with a value replaced (not NULL nor an empty string before, as for an
/// UPDATE); `None` when the table is gone or shares no column with them. By primary key when the table
/// had one (and still has its columns); else as multisets of whole rows: a deleted row is there again
/// when a row the migration left has its values and was not there after the DELETE.
async fn not_back(s: &Session, d: &DeletedRows) -> Result<Option<(u64, u64, bool)>> {
    const NAME: &str = "SELECT c.oid::pg_catalog.regclass::text FROM pg_catalog.pg_class c WHERE c.oid = $1::int8::oid";
    let Some(row) = s.query(NAME, &[&d.oid]).await?.into_iter().next() else { return Ok(None) };
    let table: String = value(&row, 0, NAME)?;
    let now = table_columns(s, &table).await?;
    let common: Vec<String> = d.kept.columns.iter().filter(|c| now.contains(c)).cloned().collect();
    // Columns dropped (or renamed) since: a row put back without them lost what it held there.
    let missing: Vec<&String> = d.kept.columns.iter().filter(|c| !now.contains(c)).collect();
    if common.is_empty() {
        return Ok(None);
    }
    let (gone, kept) = (format!("pg_temp.{}", quote_ident(&d.gone)), format!("pg_temp.{}", quote_ident(&d.kept.temp)));
    let texts = text_columns(&common);
    let by_key = !d.key.is_empty() && d.key.iter().all(|k| common.contains(k));
    if !by_key && !missing.is_empty() {
        // Whole rows cannot be matched on columns that are gone: none counts as put back.
        return Ok(None);
    }
    let sql = if by_key {
        let on: Vec<String> = d.key.iter().map(|k| format!("n.{k} = g.{k}", k = quote_ident(k))).collect();
        let matched = format!("n.{} IS NOT NULL", quote_ident(&d.key[0]));
        let mut same: Vec<String> = common
            .iter()
            .map(|c| format!("(g.{c} IS NULL OR g.{c} = '' OR g.{c} IS NOT DISTINCT FROM n.{c})", c = quote_ident(c)))
            .collect();
        // Back under its key, a row that held a value in a column now gone is a row with a value lost.
        same.extend(missing.iter().map(|c| format!("(g.{c} IS NULL OR g.{c} = '')", c = quote_ident(c))));
        format!(
            "SELECT count(*) FILTER (WHERE NOT m.back)::int8, count(*) FILTER (WHERE m.back AND NOT m.same)::int8 \
             FROM (SELECT bool_or({matched}) AS back, coalesce(bool_or({matched} AND {}), false) AS same \
                   FROM {gone} g LEFT JOIN (SELECT {texts} FROM {table}) n ON {} GROUP BY g.ctid) m",
            same.join(" AND "),
            on.join(" AND ")
        )
    } else {
        let list: Vec<String> = common.iter().map(|c| quote_ident(c)).collect();
        let list = list.join(", ");
        format!(
            "SELECT count(*)::int8, 0::int8 FROM (SELECT {list} FROM {gone} EXCEPT ALL \
               (SELECT {texts} FROM {table} EXCEPT ALL \
                 (SELECT {list} FROM {kept} EXCEPT ALL SELECT {list} FROM {gone}))) x"
        )
    };
    let row = s.query_one(&sql, &[]).await?;
    let count = |i: usize| value::<i64, _>(&row, i, &sql).map(|n| u64::try_from(n).unwrap_or(0));
    Ok(Some((count(0)?, count(1)?, by_key)))
}

impl Run {
    /// At the rehearsal's end: the rows each DELETE removed that the migration put back with the values
    /// they had are no loss; those put back under the same primary key with a value replaced count as
    /// updated rather than deleted. `reports`: the statements', by index.
    pub(super) async fn back_again(&mut self, s: &Session, reports: &mut [StatementReport]) -> Result<()> {
        let mut looked = HashSet::new();
        for d in std::mem::take(&mut self.deleted) {
            let Some(report) = reports.get_mut(d.statement) else { continue };
            let Some(at) = report.losses.iter().position(|l| l.kind == LossKind::Deleted && l.table == d.table) else {
                continue;
            };
            if report.losses[at].count == 0 || !looked.insert((d.statement, d.table.clone())) {
                continue;
            }
            let Some((absent, replaced, by_key)) = quietly(measure(s, not_back(s, &d)).await)? else { continue };
            let count = report.losses[at].count;
            let deleted = absent.min(count);
            let changed = replaced.min(count - deleted);
            let back = count - deleted - changed;
            if back + changed == 0 {
                continue;
            }
            report.losses[at].count = deleted;
            let table = &d.table;
            if back > 0 {
                let how = if by_key { "by primary key" } else { "as whole rows" };
                report.notes.push(format!(
                    "{back} of the {count} rows it deleted from `{table}` are there again at the end of the migration \
                     with the values they had ({how}): not counted as lost"
                ));
            }
            if changed > 0 {
                report.notes.push(format!(
                    "{changed} of the {count} rows it deleted from `{table}` are there again at the end of the \
                     migration under the same primary key with other values: counted as updated"
                ));
                match report
                    .losses
                    .iter_mut()
                    .find(|l| l.kind == LossKind::Updated && &l.table == table && l.column.is_none())
                {
                    Some(updated) => updated.count += changed,
                    None => report.losses.push(Loss {
                        kind: LossKind::Updated,
                        table: table.clone(),
                        column: None,
                        count: changed,
                        estimated: false,
                    }),
                }
            }
            report.losses.retain(|l| l.count > 0);
        }
        Ok(())
    }
}

/// `` `a`, `b` `` for `columns`, as a note names them.
fn backticked(columns: &[String]) -> String {
    columns.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
}

/// `(c)::text AS c, ...` for each of `columns`.
fn text_columns(columns: &[String]) -> String {
    columns.iter().map(|c| format!("({c})::text AS {c}", c = quote_ident(c))).collect::<Vec<_>>().join(", ")
}

/// Of the `total` rows of `table` (`rows`: `FROM ...` them, `described` as `rows of t` or `rows it
/// deleted from t`) that a statement drops, empties or deletes, how many are not in a table this
/// migration filled earlier in the rehearsal: a table rebuilt by copying (`INSERT INTO t_new SELECT *
/// FROM t; DROP TABLE t; ALTER TABLE t_new RENAME TO t`, a table made partitioned) or archived (`INSERT
/// INTO t_archive SELECT * FROM t WHERE ...`, then `TRUNCATE` or `DELETE`) loses nothing. A copy must have
/// every column of the table by name ([`copies`]); each row is looked for there as its columns' text (a
/// type widened on the way, `int` to `bigint`, still matches), as a multiset (`EXCEPT ALL`); the copy
/// holding the most is taken. `statement`: the tables the statement itself drops or empties, which hold
/// no copy. A note says what was found. Above `--max-compare-rows` rows no copy is looked for.
#[allow(clippy::too_many_arguments)]
async fn not_copied(
    s: &Session,
    table: &str,
    described: &str,
    rows: &str,
    total: u64,
    statement: &[String],
    options: &DryRunOptions,
    report: &mut StatementReport,
) -> Result<u64> {
    if total == 0 || total > options.max_compare_rows {
        return Ok(total);
    }
    let what = "the tables this migration filled";
    let Some((columns, found)) = settle(measure(s, copies(s, table, statement)).await, what, options, report)? else {
        return Ok(total);
    };
    let list = text_columns(&columns);
    // A copy that is a partitioned table or an inheritance parent of `table` (rows put back through the
    // partitioned table: `INSERT INTO measurement SELECT ...` then `DROP TABLE measurement_2025`) holds
    // the rows of `table` itself and of the tables the statement drops or empties: those are no copy.
    let own: Vec<String> =
        std::iter::once(table).chain(statement.iter().map(String::as_str)).map(quote_literal).collect();
    let own = format!(
        "WITH RECURSIVE own(oid) AS (SELECT pg_catalog.to_regclass(n)::oid FROM unnest(ARRAY[{}]::text[]) AS n \
         UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN own ON i.inhparent = own.oid) \
         SELECT oid FROM own WHERE oid IS NOT NULL",
        own.join(", ")
    );
    let mut best: Option<(String, u64)> = None;
    for copy in found {
        let sql = format!(
            "SELECT count(*) FROM (SELECT {list} {rows} EXCEPT ALL SELECT {list} FROM {copy} \
             WHERE tableoid NOT IN ({own}) AND {WRITTEN_HERE}) missing"
        );
        let what = format!("the {described} in `{copy}`");
        if let Some(missing) = settle(measure(s, count(s, &sql)).await, &what, options, report)?
            && best.as_ref().is_none_or(|(_, m)| missing < *m)
        {
            best = Some((copy, missing));
        }
    }
    let into = best.as_ref().map(|(copy, _)| copy.clone());
    let lost = kept_in(best, total, described, "filled", report);
    if let Some(into) = into.filter(|_| lost < total) {
        report.moved.push((table.to_owned(), into));
    }
    Ok(lost)
}

/// The columns of the primary key of `table`, in order; none when it has none.
async fn primary_key(s: &Session, table: &str) -> Result<Vec<String>> {
    let rows = s.query(PRIMARY_KEY, &[&table]).await?;
    rows.iter().map(|r| value::<String, _>(r, "name", PRIMARY_KEY)).collect()
}

/// For a failure of SQLSTATE `code`: how to find the rows that make it fail.
fn failing_rows<'a>(analysis: &'a Analysis, code: SqlState, object: Option<&ServerObject>) -> Option<FailingQuery<'a>> {
    // A NOT NULL violation names its column: the explanation is about that column or none, never about
    // another the statement also makes NOT NULL.
    let named_column = object.and_then(|o| o.column.as_deref()).filter(|_| code.as_str() == "23502");
    if let Some(column) = named_column {
        let set_not_null = analysis.effects.iter().find_map(|effect| match effect {
            Effect::SetNotNull { table, column: c } if c == column => Some(table),
            _ => None,
        });
        if let Some(table) = set_not_null {
            return Some(FailingQuery::Ready(
                format!("NULLs in `{table}.{column}`"),
                format!("SELECT count(*) FROM {table} WHERE {} IS NULL", quote_ident(column)),
                None,
            ));
        }
        let added = analysis.added_columns.iter().find(|(_, c)| c == column)?;
        return Some(FailingQuery::Ready(
            format!(
                "rows of `{}` that the new NOT NULL column `{column}` would leave NULL (it has no default, or one that gives NULL)",
                added.0
            ),
            format!("SELECT count(*) FROM {}", added.0),
            None,
        ));
    }
    analysis.effects.iter().find_map(|effect| match (code.as_str(), effect) {
        ("23514", Effect::Check { .. }) | ("23503", Effect::ForeignKey { .. }) => {
            Some(FailingQuery::Constraint(effect))
        }
        ("23514" | "23503", Effect::Validate { table, name }) => Some(FailingQuery::Validate(table, name)),
        ("22001", Effect::AlterType { table, column, length: Some(n) }) => {
            // Trailing blanks past the length are dropped, not refused.
            let too_long = format!("length(rtrim(({})::text, ' ')) > {n}", quote_ident(column));
            Some(FailingQuery::Ready(
                format!("values of `{table}.{column}` longer than {n} characters"),
                format!("SELECT count(*) FROM {table} WHERE {too_long}"),
                Some(format!(
                    "SELECT left(({col})::text, 60) FROM {table} WHERE {too_long} LIMIT 5",
                    col = quote_ident(column)
                )),
            ))
        }
        (code, Effect::AlterType { .. }) if code.starts_with("22") && !analysis.conversions.is_empty() => {
            Some(FailingQuery::Conversions(&analysis.conversions))
        }
        ("23502", Effect::SetNotNull { table, column }) => Some(FailingQuery::Ready(
            format!("NULLs in `{table}.{column}`"),
            format!("SELECT count(*) FROM {table} WHERE {} IS NULL", quote_ident(column)),
            None,
        )),
        ("23505", Effect::Unique { table, columns }) if !columns.is_empty() => {
            let list: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
            let not_null: Vec<String> = list.iter().map(|c| format!("{c} IS NOT NULL")).collect();
            Some(FailingQuery::Ready(
                format!("groups of rows of `{table}` with the same ({})", columns.join(", ")),
                format!(
                    "SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {} GROUP BY {} HAVING count(*) > 1) d",
                    not_null.join(" AND "),
                    list.join(", ")
                ),
                Some(format!(
                    "SELECT left(row({cols})::text, 60) FROM {table} WHERE {} GROUP BY {cols} HAVING count(*) > 1 LIMIT 5",
                    not_null.join(" AND "),
                    cols = list.join(", ")
                )),
            ))
        }
        _ => None,
    })
}

/// Runs `sql`, a `count(*)`, and returns the count.
/// The query of `table`'s file node (0 when it has no storage, as a partitioned table).
fn filenode_sql(table: &str) -> String {
    format!(
        "SELECT coalesce(pg_catalog.pg_relation_filenode(pg_catalog.to_regclass({})), 0)::int8",
        quote_literal(table)
    )
}

/// The (language, body) of the SQL and PL/pgSQL functions named `calls` (as a statement writes them:
/// `name`, found on the search path, or `schema.name`), every overload of each: what a `SELECT f()` of a
/// migration runs, read once the migration's earlier statements made them.
pub(super) async fn function_bodies(s: &Session, calls: &[String]) -> Result<Vec<(String, String)>> {
    const SQL: &str = "SELECT l.lanname::text, p.prosrc FROM pg_catalog.pg_proc p \
                       JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
                       WHERE p.proname = $1 AND l.lanname IN ('sql', 'plpgsql') \
                       AND CASE WHEN $2::text IS NULL THEN pg_catalog.pg_function_is_visible(p.oid) \
                       ELSE p.pronamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = $2) END";
    let mut out = Vec::new();
    for call in calls {
        let (schema, name) = match call.rsplit_once('.') {
            Some((schema, name)) => (Some(schema), name),
            None => (None, call.as_str()),
        };
        for row in s.query(SQL, &[&name, &schema]).await? {
            out.push((value::<String, _>(&row, 0, SQL)?, value::<String, _>(&row, 1, SQL)?));
        }
    }
    Ok(out)
}

/// Of the columns a statement adds, those not there before it runs: `ADD COLUMN IF NOT EXISTS` of a
/// column the table has adds nothing, and what an `UPDATE` then writes into it replaces data. When the
/// catalog cannot say, none: its updates are counted.
pub(super) async fn new_columns(s: &Session, columns: &[(String, String)]) -> Result<HashSet<(String, String)>> {
    if columns.is_empty() {
        return Ok(HashSet::new());
    }
    let there = match measure(s, existing(s, columns)).await {
        Ok(there) => there,
        Err(e) if e.sqlstate().is_some() => return Ok(HashSet::new()),
        Err(e) => return Err(e),
    };
    Ok(columns.iter().zip(there).filter(|(_, there)| !there).map(|(c, _)| c.clone()).collect())
}

/// Whether `table.column` exists now, for each pair of `columns` (see `sql/existing.sql`).
pub(super) async fn existing(s: &Session, columns: &[(String, String)]) -> Result<Vec<bool>> {
    let (tables, names): (Vec<&str>, Vec<&str>) = columns.iter().map(|(t, c)| (t.as_str(), c.as_str())).unzip();
    let rows = s.query(EXISTING, &[&tables, &names]).await?;
    let found: HashSet<i64> = rows.iter().map(|r| value(r, "i", EXISTING)).collect::<Result<_>>()?;
    Ok((1..=columns.len() as i64).map(|i| found.contains(&i)).collect())
}

/// The columns of the composite type `type_name` (as the statement names it, resolved by the session's
/// search path), of a domain over it, or of an array of it (`true`), in tables: (table, column, array).
async fn columns_of_type(s: &Session, type_name: &str) -> Result<Vec<(String, String, bool)>> {
    const SQL: &str = "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), a.attname::text, \
                              a.atttypid = ty.typarray \
                       FROM pg_catalog.pg_type ty \
                       JOIN pg_catalog.pg_attribute a ON a.attnum > 0 AND NOT a.attisdropped \
                       JOIN pg_catalog.pg_type at ON at.oid = a.atttypid \
                       JOIN pg_catalog.pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p') \
                       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                       WHERE ty.oid = pg_catalog.to_regtype($1) \
                         AND (a.atttypid IN (ty.oid, ty.typarray) OR at.typbasetype = ty.oid) \
                       ORDER BY 1, 2";
    let mut found = Vec::new();
    for row in s.query(SQL, &[&type_name]).await? {
        found.push((value(&row, 0, SQL)?, value(&row, 1, SQL)?, value(&row, 2, SQL)?));
    }
    Ok(found)
}

async fn count(s: &Session, sql: &str) -> Result<u64> {
    let row = s.query_one(sql, &[]).await?;
    Ok(u64::try_from(value::<i64, _>(&row, 0, sql)?).unwrap_or(0))
}

/// The size in bytes and estimated rows of `table`; `None` when there is no such table (yet).
async fn size(s: &Session, table: &str) -> Result<Option<(u64, u64)>> {
    let Some(row) = s.query(SIZE, &[&table]).await?.into_iter().next() else { return Ok(None) };
    let bytes: i64 = value(&row, "bytes", SIZE)?;
    let rows: i64 = value(&row, "rows", SIZE)?;
    Ok(Some((u64::try_from(bytes).unwrap_or(0), u64::try_from(rows).unwrap_or(0))))
}

/// The rows a table had updated and deleted in the transaction, by the transaction's own counters.
#[derive(Clone)]
struct RowChanges {
    name: String,
    updated: i64,
    deleted: i64,
    inserted: i64,
    /// A partition's partitioned table at the top.
    root: Option<i64>,
    /// A materialized view.
    derived: bool,
    /// The statement names it.
    named: bool,
    /// Its deleted rows are counted otherwise (see `sql/row_changes.sql`).
    deletes_counted: bool,
    updates_counted: bool,
}

/// The rows each table has had updated, deleted and inserted in the transaction, by oid; `deletes_counted`
/// and `updates_counted` name the tables whose deleted or updated rows the caller counts otherwise, and
/// `named` those the statement names.
async fn row_changes(
    s: &Session,
    deletes_counted: &[String],
    updates_counted: &[String],
    named: &[String],
) -> Result<BTreeMap<i64, RowChanges>> {
    let mut found = BTreeMap::new();
    for row in s.query(ROW_CHANGES, &[&deletes_counted, &updates_counted, &named]).await? {
        let changes = RowChanges {
            name: value(&row, "name", ROW_CHANGES)?,
            updated: value(&row, "updated", ROW_CHANGES)?,
            deleted: value(&row, "deleted", ROW_CHANGES)?,
            inserted: value(&row, "inserted", ROW_CHANGES)?,
            root: value(&row, "root", ROW_CHANGES)?,
            derived: value(&row, "derived", ROW_CHANGES)?,
            named: value(&row, "named", ROW_CHANGES)?,
            deletes_counted: value(&row, "deletes_counted", ROW_CHANGES)?,
            updates_counted: value(&row, "updates_counted", ROW_CHANGES)?,
        };
        found.insert(value::<i64, _>(&row, "oid", ROW_CHANGES)?, changes);
    }
    Ok(found)
}

/// Adds the rows the statement deleted or updated in tables its losses do not count yet (a trigger, a
/// function, a referential action it did not foresee), from the transaction's own counters: `before` are
/// those before it ran.
async fn changed_elsewhere(
    s: &Session,
    before: &BTreeMap<i64, RowChanges>,
    backfilled: &[String],
    named: &[String],
    report: &mut StatementReport,
) -> Result<()> {
    let counted = |kinds: &[LossKind]| -> Vec<String> {
        report.losses.iter().filter(|l| kinds.contains(&l.kind)).map(|l| l.table.clone()).collect()
    };
    let deletes_counted = counted(&[LossKind::Deleted, LossKind::DroppedTable, LossKind::Truncated]);
    let mut updates_counted = counted(&[LossKind::Updated]);
    updates_counted.extend(backfilled.iter().cloned());
    let after = row_changes(s, &deletes_counted, &updates_counted, named).await?;
    let delta = |oid: &i64, now: &RowChanges| {
        let (updated, deleted, inserted) = before.get(oid).map_or((0, 0, 0), |b| (b.updated, b.deleted, b.inserted));
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        (count(now.updated - updated), count(now.deleted - deleted), count(now.inserted - inserted))
    };
    // An UPDATE of a partitioned table moves the rows whose key it changes to another partition: deleted
    // from one, inserted into another, and none gone. What the partitions of a table the statement names
    // had inserted nets what others had deleted.
    let mut moved_into: HashMap<i64, u64> = HashMap::new();
    for (oid, now) in after.iter().filter(|(_, r)| r.named && r.updates_counted) {
        if let Some(root) = now.root {
            *moved_into.entry(root).or_default() += delta(oid, now).2;
        }
    }
    for (oid, now) in after {
        let (updated, mut deleted, inserted) = delta(&oid, &now);
        if let Some(moved) = now.root.and_then(|root| moved_into.get_mut(&root)).filter(|_| now.updates_counted) {
            let netted = deleted.min(*moved);
            deleted -= netted;
            *moved -= netted;
        }
        if now.derived {
            if deleted + updated > 0 {
                report.notes.push(format!(
                    "`{}` is a materialized view: the rows its refresh replaced are derived, not counted as lost",
                    now.name
                ));
            }
            continue;
        }
        let loss = |kind, count| Loss { kind, table: now.name.clone(), column: None, count, estimated: false };
        if deleted > 0 && !now.deletes_counted {
            // Rows a trigger deletes and inserts again (a summary table rebuilt) are not all gone: what the
            // table has fewer of is. A table the statement names itself is not netted: rows it deletes and
            // others it inserts are two changes of the migration's own.
            let inserted = if now.named { 0 } else { inserted };
            if inserted > 0 {
                report.notes.push(format!(
                    "{deleted} rows of `{}` were deleted and {inserted} inserted by what the statement set off \
                     (a trigger rebuilding it): {} counted as lost",
                    now.name,
                    deleted.saturating_sub(inserted)
                ));
            }
            let lost = deleted.saturating_sub(inserted);
            if lost > 0 {
                report.losses.push(loss(LossKind::Deleted, lost));
            }
        }
        if updated > 0 && !now.updates_counted {
            report.losses.push(loss(LossKind::Updated, updated));
        }
    }
    Ok(())
}

/// The tables (column `None`) and columns that dropping `tables`, `schemas`, `types` and `extensions` can
/// drop (see `sql/dropped_with.sql`).
async fn dropped_with(
    s: &Session,
    tables: &[String],
    schemas: &[String],
    types: &[String],
    extensions: &[String],
) -> Result<Vec<(String, Option<String>)>> {
    let rows = s.query(DROPPED_WITH, &[&tables, &schemas, &types, &extensions]).await?;
    rows.iter().map(|r| Ok((value(r, "name", DROPPED_WITH)?, value(r, "column", DROPPED_WITH)?))).collect()
}

/// The columns a referential action sets when rows of `tables` are deleted or (`update`) have their key
/// changed, with the value it sets as SQL (`None`: NULL); see `sql/set_columns.sql`.
async fn set_columns(s: &Session, tables: &[String], update: bool) -> Result<Vec<(String, String, Option<String>)>> {
    let rows = s.query(SET_COLUMNS, &[&tables, &update]).await?;
    rows.iter()
        .map(|r| {
            Ok((value(r, "table", SET_COLUMNS)?, value(r, "column", SET_COLUMNS)?, value(r, "value", SET_COLUMNS)?))
        })
        .collect()
}

/// Whether one of `functions` is volatile (see `sql/volatile.sql`).
async fn volatile(s: &Session, functions: &[String]) -> Result<bool> {
    let row = s.query_one(VOLATILE, &[&functions]).await?;
    value(&row, "volatile", VOLATILE)
}

/// The tables that removing rows of `table` reaches (see `sql/reach.sql`).
async fn reach(s: &Session, table: &str, any_action: bool) -> Result<Vec<String>> {
    let rows = s.query(REACH, &[&table, &any_action]).await?;
    rows.iter().map(|r| value(r, "name", REACH)).collect()
}

/// Copies the values of `table.column` (with the primary key) into the temporary table `temp`;
/// `Ok(Err(note))` when they are not compared, and why.
async fn copy(
    s: &Session,
    table: &str,
    column: &str,
    temp: &str,
    options: &DryRunOptions,
) -> Result<std::result::Result<Copy, String>> {
    let rows = count(s, &format!("SELECT count(*) FROM {table}")).await?;
    let mut key = primary_key(s, table).await?;
    if key.iter().any(|k| k == column) {
        key.clear();
    }
    let max = options.max_compare_rows;
    if key.is_empty() && rows > max {
        return Ok(Err(format!(
            "the values of `{table}.{column}` were not compared: {rows} rows, more than --max-compare-rows ({max}), \
             and no primary key without the column to compare a part by"
        )));
    }
    let columns: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
    let select = columns.iter().map(|c| format!("{c}, ")).collect::<String>();
    s.batch(&format!(
        "CREATE TEMPORARY TABLE {temp} AS SELECT {select}{col} AS pgsafe_old FROM {table} LIMIT {max}",
        col = quote_ident(column)
    ))
    .await?;
    let copy = Copy {
        table: table.to_owned(),
        column: column.to_owned(),
        temp: temp.to_owned(),
        key,
        rows,
        copied: rows.min(max),
    };
    Ok(Ok(copy))
}

/// How many of the values copied before the type change are not there after it: by primary key, those
/// that changed; without one, those of the old values' multiset missing from the new one (a value that
/// became NULL is missing).
async fn compare(s: &Session, copy: &Copy, how: Compare) -> Result<u64> {
    let Copy { table, temp, .. } = copy;
    let col = quote_ident(&copy.column);
    let (old, new) = how.sides("o.pgsafe_old", &format!("t.{col}"));
    let holds = how.holds("o.pgsafe_old");
    let sql = if copy.key.is_empty() {
        // An old value the cast itself loses something of is lost whatever new value it matches.
        let (kept, lost) = match how.lost_in_cast("o.pgsafe_old") {
            Some(lost) => {
                (format!(" AND NOT {lost}"), format!(" + (SELECT count(*) FROM {temp} o WHERE {holds} AND {lost})"))
            }
            None => Default::default(),
        };
        format!(
            "SELECT (coalesce(sum(greatest(o.n - coalesce(a.n, 0), 0)), 0){lost})::int8 \
               FROM (SELECT {old} AS v, count(*) AS n FROM {temp} o WHERE {holds}{kept} GROUP BY 1) o \
               LEFT JOIN (SELECT {new} AS v, count(*) AS n FROM {table} t WHERE t.{col} IS NOT NULL GROUP BY 1) a \
                 ON a.v = o.v"
        )
    } else {
        let on = same_key(&copy.key);
        let differs = how.differs("o.pgsafe_old", &format!("t.{col}"));
        format!("SELECT count(*) FROM {temp} o JOIN {table} t ON {on} WHERE {differs}")
    };
    count(s, &sql).await
}

/// Of the `changed` values of `copy` (by primary key), those that the new ones do not give back: all of
/// them unless an inverse of the change is found ([`recover`](super::recover): a change of unit, a time
/// zone), which a note names. `lost_in_cast`: the condition of an old value (`o.pgsafe_old`) that the cast
/// to the new type itself loses something of ([`Compare::lost_in_cast`]), which no inverse gives back.
async fn computed_back(
    s: &Session,
    copy: &Copy,
    changed: u64,
    lost_in_cast: Option<&str>,
    strings: &[String],
    report: &mut StatementReport,
) -> Result<u64> {
    if changed == 0 || copy.key.is_empty() {
        return Ok(changed);
    }
    let col = quote_ident(&copy.column);
    let on = same_key(&copy.key);
    let joined = format!("{} o JOIN {} t ON {}", copy.temp, copy.table, on);
    // Those the cast lost something of are lost whichever way the rest come back: a search among them
    // would find `{"a": 1, "a": 2}` given back by its `jsonb`, which compares equal to it.
    let (from, lost) = match lost_in_cast {
        Some(lost) => {
            let sql = format!("SELECT count(*) FROM {joined} WHERE {lost}");
            let counted = quietly(measure(s, count(s, &sql)).await.map(Some))?;
            let Some(counted) = counted else { return Ok(changed) };
            (format!("{joined} WHERE NOT {lost}"), counted)
        }
        None => (format!("{joined} WHERE true"), 0),
    };
    let new = format!("t.{col}");
    let old = recover::Column { relation: &copy.temp, name: "pgsafe_old", expr: "o.pgsafe_old" };
    let new = recover::Column { relation: &copy.table, name: &copy.column, expr: &new };
    let found = measure(s, recover::between(s, &from, old, new, strings)).await;
    let Some(mut found) = quietly(found)? else { return Ok(changed) };
    found.unrecovered += lost;
    let (table, column, how) = (&copy.table, &copy.column, &found.how);
    if found.unrecovered >= changed {
        return Ok(changed);
    }
    report.notes.push(if found.unrecovered == 0 {
        format!(
            "the {changed} values of `{table}.{column}` the type change altered can all be computed back from the new \
             ones ({how}): not counted as lost"
        )
    } else {
        format!(
            "{} of the {changed} values of `{table}.{column}` the type change altered can be computed back from the \
             new ones ({how}); the other {} count",
            changed - found.unrecovered,
            found.unrecovered
        )
    });
    Ok(found.unrecovered)
}

/// What a search for an inverse or a path `found`: none where the server refused a query of it (a type
/// without the function it needs, a number too big for `numeric` on an old server), which only means none
/// was found.
fn quietly<T>(found: Result<Option<T>>) -> Result<Option<T>> {
    match found {
        Ok(found) => Ok(found),
        Err(e) if e.sqlstate().is_some() => {
            tracing::debug!("no inverse of the change: {e}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A relation as `relations.sql` reads it.
pub(super) struct Relation {
    name: String,
    kind: String,
    filenode: i64,
    /// In the session's temporary schema: the migration's own, never reported as created or dropped.
    temporary: bool,
    /// A partition's partitioned table at the top.
    root: Option<i64>,
    /// A table's columns (not generated).
    columns: Vec<String>,
    /// Their numbers (`attnum`), in the same order: a renamed column keeps its number.
    numbers: Vec<i32>,
}

/// The relations of the user's schemas, by oid.
async fn relations(s: &Session) -> Result<BTreeMap<i64, Relation>> {
    let mut found = BTreeMap::new();
    for row in s.query(RELATIONS, &[]).await? {
        let kind: String = value(&row, "kind", RELATIONS)?;
        let kind = match kind.as_str() {
            "r" => "table",
            "i" => "index",
            "m" => "materialized view",
            "p" => "partitioned table",
            "I" => "partitioned index",
            other => other,
        };
        let relation = Relation {
            name: value(&row, "name", RELATIONS)?,
            kind: kind.to_owned(),
            filenode: value(&row, "filenode", RELATIONS)?,
            temporary: value(&row, "temporary", RELATIONS)?,
            root: value(&row, "root", RELATIONS)?,
            columns: value::<Option<Vec<String>>, _>(&row, "columns", RELATIONS)?.unwrap_or_default(),
            numbers: value::<Option<Vec<i32>>, _>(&row, "numbers", RELATIONS)?.unwrap_or_default(),
        };
        found.insert(value::<i64, _>(&row, "oid", RELATIONS)?, relation);
    }
    Ok(found)
}

/// The relation locks the session holds, by oid and mode, with the relation's name where it has one.
async fn locks(s: &Session) -> Result<BTreeMap<(i64, String), Option<String>>> {
    let mut found = BTreeMap::new();
    for row in s.query(LOCKS, &[]).await? {
        let oid: i64 = value(&row, "oid", LOCKS)?;
        let mode: String = value(&row, "mode", LOCKS)?;
        found.insert((oid, mode), value::<Option<String>, _>(&row, "name", LOCKS)?);
    }
    Ok(found)
}

/// The relations of `map` but the temporary tables of the migration's own.
fn user(map: &BTreeMap<i64, Relation>) -> impl Iterator<Item = (&i64, &Relation)> {
    map.iter().filter(|(_, r)| !r.temporary)
}

/// What a statement took that its text does not show, found by comparing the relations before and after
/// it: tables dropped, columns dropped, tables given a new file (emptied or rewritten) outside the tables
/// it names. A function it calls (`SELECT migrate_data()`), a `DO` block's `EXECUTE`, can do anything.
#[derive(Default)]
struct Unforeseen {
    tables: Vec<String>,
    columns: Vec<(String, String)>,
    refiled: Vec<String>,
}

impl Unforeseen {
    fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.columns.is_empty() && self.refiled.is_empty()
    }

    /// Counts what it would take, with the statement rolled back: the rows of the tables, the values of
    /// the columns, the rows of the tables given a new file (counted again after the statement).
    async fn count(self, s: &Session) -> Result<Counted> {
        let mut counted = Counted::default();
        for table in &self.tables {
            counted.tables.push((table.clone(), count(s, &format!("SELECT count(*) FROM ONLY {table}")).await?));
        }
        for (table, column) in &self.columns {
            let sql = format!("SELECT count({}) FROM ONLY {table}", quote_ident(column));
            counted.columns.push((table.clone(), column.clone(), count(s, &sql).await?));
        }
        for table in &self.refiled {
            counted.refiled.push((table.clone(), count(s, &format!("SELECT count(*) FROM ONLY {table}")).await?));
        }
        Ok(counted)
    }
}

/// What [`Unforeseen::count`] found before the statement ran again.
#[derive(Default)]
struct Counted {
    tables: Vec<(String, u64)>,
    columns: Vec<(String, String, u64)>,
    refiled: Vec<(String, u64)>,
}

impl Counted {
    /// The losses, once the statement ran again, with a note that says how they were found.
    async fn losses(self, s: &Session, report: &mut StatementReport) -> Result<()> {
        let loss = |kind, table: &str, column: Option<&str>, count| Loss {
            kind,
            table: table.to_owned(),
            column: column.map(str::to_owned),
            count,
            estimated: false,
        };
        let mut named = Vec::new();
        for (table, rows) in &self.tables {
            report.losses.push(loss(LossKind::DroppedTable, table, None, *rows));
            named.push(format!("`{table}` dropped"));
        }
        for (table, column, values) in &self.columns {
            report.losses.push(loss(LossKind::DroppedColumn, table, Some(column), *values));
            named.push(format!("`{table}.{column}` dropped"));
        }
        for (table, before) in &self.refiled {
            let now = count(s, &format!("SELECT count(*) FROM ONLY {table}")).await?;
            if now < *before {
                report.losses.push(loss(LossKind::Truncated, table, None, before - now));
                named.push(format!("`{table}` emptied or rewritten"));
            }
        }
        if !named.is_empty() {
            report.notes.push(format!(
                "it does what its text does not say ({}): counted with the statement rolled back, then run again",
                named.join(", ")
            ));
        }
        Ok(())
    }
}

/// [`Unforeseen`] between `before` and `after` the statement `analysis` read: what its own effects do
/// not account for. A table or column its effects count (`DROP`, `DROP COLUMN`, `TRUNCATE`, a rewrite
/// of a table it names) is not.
fn unforeseen(analysis: &Analysis, before: &BTreeMap<i64, Relation>, after: &BTreeMap<i64, Relation>) -> Unforeseen {
    let mut found = Unforeseen::default();
    // `DROP ... CASCADE` and its kin find what they take through the catalog already.
    if analysis.effects.iter().any(|e| matches!(e, Effect::Drop { .. })) {
        return found;
    }
    let bare = |name: &str| name.rsplit('.').next().unwrap_or(name).trim_matches('"').to_owned();
    let named: HashSet<String> = analysis.named.iter().map(|n| bare(n)).collect();
    let dropped_columns: HashSet<String> = analysis
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::DropColumn { column, .. } | Effect::DropColumnIfGone { column, .. } => Some(column.clone()),
            _ => None,
        })
        .collect();
    // `TRUNCATE ... CASCADE` counts the tables it reaches itself.
    let cascades = analysis
        .effects
        .iter()
        .any(|e| matches!(e, Effect::Truncate { cascade: true, .. } | Effect::TruncateIfRun { cascade: true, .. }));
    let table = |r: &Relation| r.kind == "table" || r.kind == "partitioned table";
    // A partition is named by its partitioned table's name (a type change of the table rewrites them).
    let named_as = |r: &Relation| {
        named.contains(&bare(&r.name))
            || r.root.and_then(|root| before.get(&root)).is_some_and(|t| named.contains(&bare(&t.name)))
    };
    for (oid, was) in user(before).filter(|(_, r)| table(r)) {
        let Some(now) = after.get(oid) else {
            // A partition goes with its partitioned table, counted there.
            if was.root.is_none_or(|root| after.contains_key(&root)) {
                found.tables.push(was.name.clone());
            }
            continue;
        };
        // A column whose number is still there was renamed (`RENAME COLUMN`, or in a `DO` block): its
        // values are where they were.
        let renamed = |i: usize| was.numbers.get(i).is_some_and(|n| now.numbers.contains(n));
        for (i, column) in was.columns.iter().enumerate() {
            if !now.columns.contains(column) && !dropped_columns.contains(column) && !renamed(i) {
                found.columns.push((was.name.clone(), column.clone()));
            }
        }
        if was.filenode != 0 && now.filenode != was.filenode && !cascades && !named_as(was) {
            found.refiled.push(was.name.clone());
        }
    }
    found
}

/// Relations rewritten (a new file node), created and dropped between `before` and `after`; the
/// temporary tables of the migration's own are left out.
fn compare_relations(before: &BTreeMap<i64, Relation>, after: &BTreeMap<i64, Relation>, report: &mut StatementReport) {
    let change = |r: &Relation| RelationChange { relation: r.name.clone(), kind: r.kind.clone() };
    for (oid, now) in user(after) {
        match before.get(oid) {
            Some(was) if was.filenode != now.filenode && was.filenode != 0 => report.rewritten.push(change(now)),
            Some(_) => {}
            None => report.created.push(change(now)),
        }
    }
    report.dropped.extend(user(before).filter(|(oid, _)| !after.contains_key(oid)).map(|(_, r)| change(r)));
    // An index a statement drops and makes again under its name (as `ALTER COLUMN ... TYPE` does to the
    // indexes of the column) is the same index: rebuilt when it has a new file, else kept as it was.
    let index = |kind: &str| kind == "index" || kind == "partitioned index";
    let gone: Vec<&Relation> =
        before.iter().filter(|(oid, r)| !after.contains_key(oid) && index(&r.kind)).map(|(_, r)| r).collect();
    for was in gone {
        let new = after
            .iter()
            .find(|(oid, r)| !before.contains_key(oid) && r.name == was.name && r.kind == was.kind)
            .map(|(_, r)| r);
        let Some(now) = new else { continue };
        let r = change(now);
        report.dropped.retain(|d| d != &r);
        report.created.retain(|c| c != &r);
        if now.filenode != was.filenode {
            report.rewritten.push(r);
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::dryrun::analyze::analyze;

    #[test]
    fn a_statement_fills_later_where_it_or_one_after_it_inserts_copies_in_or_merges() {
        let sql = "DELETE FROM plan;\nUPDATE t SET a = 1;\nINSERT INTO plan VALUES (1);\nDELETE FROM log;\n\
                   WITH d AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM d;\nDELETE FROM z;\n";
        let statements = crate::dryrun::split::split_text(std::path::Path::new("m.sql"), sql).unwrap();
        assert_eq!(fills_from(&statements), [true, true, true, true, true, false]);
    }

    #[test]
    fn losses_are_reported_once_each_and_never_of_nothing() {
        let loss = |kind, column: &str, count| Loss {
            kind,
            table: "t".into(),
            column: (!column.is_empty()).then(|| column.to_owned()),
            count,
            estimated: false,
        };
        let mut losses = vec![
            loss(LossKind::AlteredValues, "a", 0),
            loss(LossKind::DroppedColumn, "b", 20),
            loss(LossKind::DroppedColumn, "c", 5),
            loss(LossKind::DroppedColumn, "b", 30),
            loss(LossKind::Updated, "", 7),
            loss(LossKind::Deleted, "", 0),
        ];
        settle_losses(&mut losses);
        assert_eq!(
            losses,
            [
                loss(LossKind::DroppedColumn, "b", 30),
                loss(LossKind::DroppedColumn, "c", 5),
                loss(LossKind::Updated, "", 7)
            ]
        );
    }

    /// The queries of a failure that needs no primary key.
    fn ready(query: Option<FailingQuery<'_>>) -> (String, String, Option<String>) {
        match query {
            Some(FailingQuery::Ready(what, count, examples)) => (what, count, examples),
            Some(FailingQuery::Constraint(effect)) => panic!("needs keys: {effect:?}"),
            Some(FailingQuery::Conversions(c)) => panic!("needs a server: {c:?}"),
            Some(FailingQuery::Validate(table, name)) => panic!("needs the catalog: {table} {name}"),
            None => panic!("no query"),
        }
    }

    #[test]
    fn a_failed_type_change_is_explained_by_the_values_its_conversion_refuses() {
        let change = analyze("ALTER TABLE t ALTER COLUMN \"Code\" TYPE int USING trim(\"Code\")::int", 170000);
        let Some(FailingQuery::Conversions(conversions)) =
            failing_rows(&change, SqlState::parse("22P02").unwrap(), None)
        else {
            panic!("no conversions")
        };
        let (count, examples) = conversion_rows(&conversions[0]);
        assert_eq!(
            count,
            "SELECT count(*) FROM (SELECT \"Code\" AS v FROM t WHERE \"Code\" IS NOT NULL LIMIT 100000) AS r \
             WHERE pg_temp.pgsafe_conversion_fails('SELECT (trim(\"Code\")::int)::int FROM (SELECT $1 AS \"Code\") AS pgsafe_row', r.v)"
        );
        assert!(
            examples.starts_with("SELECT left((r.v)::text, 60) FROM (SELECT \"Code\" AS v")
                && examples.ends_with("LIMIT 5")
        );
        let plain = analyze("ALTER TABLE t ALTER COLUMN n TYPE smallint", 170000);
        let Some(FailingQuery::Conversions(conversions)) =
            failing_rows(&plain, SqlState::parse("22003").unwrap(), None)
        else {
            panic!("no conversions")
        };
        assert!(conversion_rows(&conversions[0]).0.contains("'SELECT ($1)::smallint'"));
        assert!(failing_rows(&plain, SqlState::parse("23505").unwrap(), None).is_none());
    }

    #[test]
    fn a_failure_is_explained_by_the_rows_its_sqlstate_and_statement_point_at() {
        let change = analyze("ALTER TABLE s.t ALTER COLUMN \"Name\" TYPE varchar(3)", 170000);
        let (what, count, examples) = ready(failing_rows(&change, SqlState::parse("22001").unwrap(), None));
        assert_eq!(what, "values of `s.t.Name` longer than 3 characters");
        assert_eq!(count, "SELECT count(*) FROM s.t WHERE length(rtrim((\"Name\")::text, ' ')) > 3");
        assert!(examples.unwrap().ends_with("LIMIT 5"));
        assert!(failing_rows(&change, SqlState::parse("23505").unwrap(), None).is_none());
        let not_null = analyze("ALTER TABLE t ALTER a SET NOT NULL", 170000);
        let (_, count, _) = ready(failing_rows(&not_null, SqlState::parse("23502").unwrap(), None));
        assert_eq!(count, "SELECT count(*) FROM t WHERE a IS NULL");
        let unique = analyze("CREATE UNIQUE INDEX i ON t (a, b)", 170000);
        let (what, count, _) = ready(failing_rows(&unique, SqlState::parse("23505").unwrap(), None));
        assert_eq!(what, "groups of rows of `t` with the same (a, b)");
        assert_eq!(
            count,
            "SELECT count(*) FROM (SELECT 1 FROM t WHERE a IS NOT NULL AND b IS NOT NULL GROUP BY a, b HAVING count(*) > 1) d"
        );
    }

    #[test]
    fn an_added_check_or_foreign_key_fails_on_the_rows_that_break_it_shown_by_primary_key() {
        let check = analyze("ALTER TABLE item ADD CONSTRAINT positive CHECK (price > 0 AND tag <> 'x')", 170000);
        let Some(FailingQuery::Constraint(effect)) = failing_rows(&check, SqlState::parse("23514").unwrap(), None)
        else {
            panic!("{check:?}")
        };
        let keys = BTreeMap::from([("item".to_owned(), vec!["id".to_owned()])]);
        let (what, count, examples) = constraint_rows(effect, &keys).unwrap();
        assert_eq!(what, "rows of `item` for which price > 0 AND tag <> 'x' is false");
        assert_eq!(count, "SELECT count(*) FROM item WHERE NOT coalesce(price > 0 AND tag <> 'x', true)");
        assert_eq!(
            examples.unwrap(),
            "SELECT left(row(item.id)::text, 60) FROM item WHERE NOT coalesce(price > 0 AND tag <> 'x', true) \
             ORDER BY item.id LIMIT 5"
        );
        assert!(failing_rows(&check, SqlState::parse("23503").unwrap(), None).is_none());

        let fk = analyze("ALTER TABLE note ADD FOREIGN KEY (a, \"B\") REFERENCES s.parent", 170000);
        let Some(FailingQuery::Constraint(effect)) = failing_rows(&fk, SqlState::parse("23503").unwrap(), None) else {
            panic!("{fk:?}")
        };
        let keys = BTreeMap::from([("s.parent".to_owned(), vec!["x".to_owned(), "y".to_owned()])]);
        let (what, count, examples) = constraint_rows(effect, &keys).unwrap();
        assert_eq!(what, "rows of `note` whose (a, B) is not in `s.parent`");
        assert_eq!(
            count,
            "SELECT count(*) FROM note r WHERE r.a IS NOT NULL AND r.\"B\" IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM s.parent p WHERE p.x = r.a AND p.y = r.\"B\")"
        );
        assert!(examples.unwrap().starts_with("SELECT left(row(r.*)::text || ' -> ' || row(r.a, r.\"B\")::text, 60)"));
    }

    #[test]
    fn a_new_file_node_is_a_rewrite_and_a_new_oid_a_creation() {
        let rel = |name: &str, filenode| Relation {
            name: name.into(),
            kind: "table".into(),
            filenode,
            temporary: name.starts_with("pg_temp"),
            root: None,
            columns: Vec::new(),
            numbers: Vec::new(),
        };
        let before = BTreeMap::from([
            (1, rel("a", 10)),
            (2, rel("b", 20)),
            (3, rel("p", 0)),
            (4, rel("gone", 40)),
            (6, rel("pg_temp_3.staging", 60)),
            (7, rel("pg_temp_3.emptied", 70)),
        ]);
        let after = BTreeMap::from([
            (1, rel("a", 11)),
            (2, rel("b", 20)),
            (3, rel("p", 0)),
            (5, rel("new", 50)),
            (7, rel("pg_temp_3.emptied", 71)),
            (8, rel("pg_temp_3.made", 80)),
        ]);
        let mut report = StatementReport::new(
            &Statement { file: "m.sql".into(), line: 1, column: 1, sql: "x".into(), copy_rows: None },
            StatementOutcome::Ran,
        );
        compare_relations(&before, &after, &mut report);
        let names = |v: &[RelationChange]| v.iter().map(|r| r.relation.clone()).collect::<Vec<_>>();
        assert_eq!(names(&report.rewritten), ["a"]);
        assert_eq!(names(&report.created), ["new"]);
        assert_eq!(names(&report.dropped), ["gone"]);
    }
}
