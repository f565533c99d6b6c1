//! The dry run (`pgsafe dry-run`): a rehearsal of SQL migrations on the real database, in one
//! transaction that is always rolled back, measuring what each statement would do.
//!
//! ```text
//! dry run: files -> statements (pg_query, file:line) -> connect -> BEGIN; SET LOCAL timeouts
//!          -> per statement: read its tree (analyze) -> too big to rewrite? estimate, do not run
//!             -> count what it can lose -> relations and locks before -> SAVEPOINT; run it
//!             -> relations, locks, losses after (or, when it failed, the rows that make it fail)
//!          -> ROLLBACK -> DryRunReport
//! ```
//!
//! The rehearsal runs under `lock_timeout` and `statement_timeout`, so that it never keeps the
//! application waiting longer than those; a statement that would rewrite or scan a table bigger than
//! [`DryRunOptions::max_rewrite_bytes`] is not run at all but reported with the table's size
//! ([`StatementOutcome::Estimated`]); statements that cannot run in a transaction are reported and
//! skipped. Measurements of its own run in savepoints that are rolled back, so that a failing one does
//! not abort the rehearsal and the locks they take are not held to its end.

mod analyze;
mod observe;
mod recover;
pub mod sequences;
mod split;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result, SqlState};
use crate::pg::{ConnectOptions, Session};
use crate::store::{AuditCommand, AuditEntry, Outcome};
pub use analyze::{
    TransactionBlock, TransactionModes, TransactionRun, copies_to_stdout, file_modes, is_transaction_control,
    keeps_own_transactions, outside_transaction, runs_as_written, transaction_runs,
};
pub use sequences::SequenceBehind;
pub use split::{CopyRows, FOLDER_LAYOUTS, Statement, folder_migrations, migration_files, split_file, split_text};

/// How long the rehearsal waits for a lock, unless told otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one statement may run, unless told otherwise.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Above this size (a table with its indexes and TOAST), a statement that rewrites or scans the table
/// is estimated rather than run, unless told otherwise: 1 GiB.
pub const DEFAULT_MAX_REWRITE_BYTES: u64 = 1 << 30;
/// Above this many rows, a type change's values are compared on this many and the rest estimated.
pub const DEFAULT_MAX_COMPARE_ROWS: u64 = 1_000_000;

/// What `pgsafe dry-run` does.
#[derive(Debug, Clone)]
pub struct DryRunOptions {
    pub connect: ConnectOptions,
    /// The migration files, in the order they run (see [`migration_files`] for a folder).
    pub files: Vec<PathBuf>,
    /// The text to rehearse for a file of `files`, where the caller read it already or it is not the file
    /// as written (a Flyway file with its placeholders filled, a down section alone at its lines); a file
    /// not here is read. Findings still name the file.
    pub texts: std::collections::BTreeMap<PathBuf, String>,
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
    /// A statement that would rewrite or scan a table bigger than this is not run.
    pub max_rewrite_bytes: u64,
    /// A type change compares at most this many values; beyond, the count is an estimate.
    pub max_compare_rows: u64,
    /// The migration runs every file in one transaction (`migrate --skip-snapshot`), which holds each
    /// lock to the end of the last file; otherwise each file's transactions end where `migrate` commits
    /// them.
    pub one_transaction: bool,
    /// Cancels the running statement and ends the dry run (rolled back all the same).
    pub cancel: Cancel,
}

/// What was done with a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatementOutcome {
    /// It ran, and was measured.
    Ran,
    /// It would rewrite or scan a table too big to do so on a live database: not run, the table's size
    /// and rows reported instead.
    Estimated,
    /// Not run: it cannot run in a transaction, it is BEGIN or COMMIT, or an earlier statement failed.
    NotRun,
    /// It failed: its SQLSTATE and message, and the rows that make it fail where they can be found.
    Failed,
    /// It waited longer than the lock timeout for another session's lock.
    LockTimeout,
    /// It ran longer than the statement timeout and was cancelled (SQLSTATE 57014).
    Timeout,
}

impl std::fmt::Display for StatementOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StatementOutcome::Ran => "ran",
            StatementOutcome::Estimated => "estimated",
            StatementOutcome::NotRun => "not-run",
            StatementOutcome::Failed => "failed",
            StatementOutcome::LockTimeout => "lock-timeout",
            StatementOutcome::Timeout => "timeout",
        })
    }
}

impl StatementOutcome {
    /// The migration would stop at this statement: it failed, or met one of the rehearsal's timeouts.
    pub fn stops(self) -> bool {
        matches!(self, StatementOutcome::Failed | StatementOutcome::LockTimeout | StatementOutcome::Timeout)
    }
}

/// A relation a statement rewrote, created or dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelationChange {
    /// Qualified as SQL needs it where it is not on the search path (`regclass` text).
    pub relation: String,
    /// `table`, `index`, `materialized view`, `partitioned table`, `partitioned index`.
    pub kind: String,
}

/// A lock a statement took (one it did not hold before).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockTaken {
    pub relation: String,
    /// PostgreSQL's name in `pg_locks`, such as `AccessExclusiveLock`.
    pub mode: String,
    /// The name the documentation and `LOCK TABLE` use, such as `ACCESS EXCLUSIVE`.
    pub lock: String,
    /// How long `migrate` would hold it: the time of the statement and of those after it in the
    /// transaction `migrate` runs it in, which ends with its file, or with its block or itself in a file
    /// run as written (with the last file under `--skip-snapshot`).
    pub held_seconds: f64,
}

/// What kind of data a statement loses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Non-null values of a dropped column.
    DroppedColumn,
    /// Non-null values of a dropped attribute of a composite type, in a column of that type (or of a
    /// domain over it; in an array of it, the elements' values): `column` is `column.attribute`.
    DroppedAttribute,
    /// Rows of a dropped table: one the statement names, or one it takes with it (the tables of a
    /// dropped schema, partitions, inheritance children).
    DroppedTable,
    /// Rows deleted: from the table a DELETE names, one ON DELETE CASCADE reaches, or one a trigger or a
    /// function deleted from.
    Deleted,
    /// Rows changed: by an UPDATE of the table, ON UPDATE CASCADE, a trigger or a function; with a
    /// `column`, the values of a foreign key's column that ON DELETE or ON UPDATE SET NULL or SET DEFAULT
    /// set.
    Updated,
    /// Values a type change altered (rounded, truncated, converted).
    AlteredValues,
    /// Rows of a truncated table.
    Truncated,
    /// Large objects removed (`lo_unlink`) that were there before the rehearsal; no table.
    LargeObjects,
}

/// Data a statement would lose, counted on the real rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Loss {
    pub kind: LossKind,
    /// Empty for large objects, which belong to no table.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub table: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Values or rows lost.
    pub count: u64,
    /// The count is extrapolated from the first `--max-compare-rows` rows.
    pub estimated: bool,
}

/// Why a statement failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub sqlstate: Option<String>,
    pub message: String,
    /// The rows that make it fail, where they can be found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<FailingRows>,
}

/// The rows that make a statement fail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailingRows {
    /// What is counted: `values longer than 3 characters in t.name`.
    pub what: String,
    pub count: u64,
    /// Up to five of them, as text (60 characters at most each).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

/// The table behind an estimated statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Estimate {
    pub table: String,
    /// How the statement works on it: `ALTER COLUMN TYPE rewrites or scans it`.
    pub work: String,
    /// With its indexes and TOAST.
    pub bytes: u64,
    /// The planner's estimate.
    pub rows: u64,
}

/// What one statement did, or would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementReport {
    pub file: String,
    pub line: usize,
    /// Its first line, for the report.
    pub statement: String,
    pub outcome: StatementOutcome,
    /// Why it was not run, or how the outcome came about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub seconds: f64,
    /// The rows its command tag counts, for INSERT, UPDATE, DELETE, MERGE, SELECT and CREATE TABLE AS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Relations whose data it wrote anew (a new file node): a rewrite, or a TRUNCATE.
    pub rewritten: Vec<RelationChange>,
    pub created: Vec<RelationChange>,
    pub dropped: Vec<RelationChange>,
    pub locks: Vec<LockTaken>,
    pub losses: Vec<Loss>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub estimates: Vec<Estimate>,
    /// What was not measured, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// (from, to): the tables whose rows or values it took out were found in `to`, a table this
    /// migration filled, and not counted as lost.
    #[serde(skip)]
    moved: Vec<(String, String)>,
    /// (table, column): columns this migration added or filled that were found to hold the values of a
    /// column it dropped.
    #[serde(skip)]
    carried: Vec<(String, String)>,
}

impl StatementReport {
    fn new(statement: &Statement, outcome: StatementOutcome) -> StatementReport {
        StatementReport {
            file: statement.file.display().to_string(),
            line: statement.line,
            statement: statement.first_line(),
            outcome,
            reason: None,
            seconds: 0.0,
            rows: None,
            rewritten: Vec::new(),
            created: Vec::new(),
            dropped: Vec::new(),
            locks: Vec::new(),
            losses: Vec::new(),
            failure: None,
            estimates: Vec::new(),
            notes: Vec::new(),
            moved: Vec::new(),
            carried: Vec::new(),
        }
    }

    fn not_run(statement: &Statement, reason: impl Into<String>) -> StatementReport {
        StatementReport { reason: Some(reason.into()), ..StatementReport::new(statement, StatementOutcome::NotRun) }
    }
}

/// What a dry run found.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunReport {
    pub database: String,
    /// `user@host:port/dbname`, never a password.
    pub server: String,
    /// `server_version_num`.
    pub server_version: u32,
    pub started_at: Timestamp,
    pub statements: Vec<StatementReport>,
    /// Some statement would lose values or rows.
    pub loses_data: bool,
    /// Some statement failed, waited too long for a lock or ran too long; or the migration leaves a
    /// sequence behind the values of the unique column it fills, so that the next INSERT fails.
    pub would_fail: bool,
    /// The sequences the migration leaves at or behind the values of the unique column they fill.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sequences_behind: Vec<SequenceBehind>,
    /// The rehearsal stopped at a statement that ran longer than its `--statement-timeout`, a limit of its
    /// own (the migration has none): what that statement and the ones after it do is not known. Not
    /// `would_fail`, which says the migration itself would fail.
    pub timed_out: bool,
    /// Every statement ran (none estimated, none not run).
    pub complete: bool,
    /// Whatever applies to the whole rehearsal.
    pub notes: Vec<String>,
    pub seconds: f64,
}

impl DryRunReport {
    /// A statement stopped the migration (it failed, or met a timeout). `would_fail` without it is a
    /// sequence left behind: the migration runs, and the application's inserts fail after it.
    pub fn stopped(&self) -> bool {
        stops(&self.statements)
    }

    /// How many statements had `outcome`.
    pub fn count(&self, outcome: StatementOutcome) -> usize {
        self.statements.iter().filter(|s| s.outcome == outcome).count()
    }
}

/// Rehearses the migration: every statement of `options.files` in one transaction on the database,
/// measured, then rolled back, whatever happened (an error, a failed statement, an interruption). An
/// `Err` only when it could not run (a file that does not parse, no connection, a statement of its own
/// failing, an interruption); a migration that would fail or lose data is an `Ok` report saying so.
pub async fn dry_run(options: &DryRunOptions) -> Result<DryRunReport> {
    let started_at = Timestamp::now();
    let started = Instant::now();
    check_options(options)?;
    let mut statements = Vec::new();
    for file in &options.files {
        let split = match options.texts.get(file) {
            Some(text) => split_text(file, text)?,
            None => split_file(file)?,
        };
        refuse_uncommitted(&split)?;
        statements.extend(split);
    }
    let session = Session::open(&options.connect, None).await?.cancelled_by(&options.cancel);
    // Rehearsed under the settings `migrate` runs it under: the role's and database's, as under psql.
    session.use_own_settings().await?;
    let server_version = session.server_version();
    session.batch(&begin(options)).await?;
    let mut notes = Vec::new();
    let result = async {
        let before = sequence_states(&session, &mut notes).await?;
        let reports = rehearse(&session, &statements, options, server_version, before.as_ref()).await?;
        // Once at the end, for what the rehearsal drew and what it leaves behind.
        let after = match &before {
            Some(_) => sequence_states(&session, &mut notes).await?,
            None => None,
        };
        let mut behind = Vec::new();
        if let (Some(before), Some(after)) = (&before, &after) {
            sequences_drawn(&session, before, after, &mut notes).await?;
            // A migration that stops fails already; what it would leave behind is moot.
            if !stops(&reports) {
                behind = sequences_after(&session, before, after, &reports, &mut notes).await?;
            }
        }
        Ok::<_, Error>((reports, behind))
    }
    .await;
    // Always, even after an error: nothing of the rehearsal may stay. A closed connection has rolled
    // back already.
    let rolled_back = if session.is_closed() { Ok(()) } else { session.batch("ROLLBACK").await };
    let (mut reports, sequences_behind) = result?;
    rolled_back.map_err(|e| e.context("the dry run ended, but its ROLLBACK failed"))?;
    hold_locks(&mut reports, &transactions(&statements, server_version, options.one_transaction));
    if reports.iter().any(|r| r.reason.as_deref() == Some(TRANSACTION_CONTROL)) {
        notes.push(format!("the whole rehearsal is one transaction, rolled back at its end: {TRANSACTION_CONTROL}"));
    }
    let loses_data = reports.iter().any(|r| r.losses.iter().any(|l| l.count > 0));
    let timed_out = reports.iter().any(|r| r.outcome == StatementOutcome::Timeout);
    let would_fail = reports.iter().any(|r| r.outcome.stops() && r.outcome != StatementOutcome::Timeout)
        || !sequences_behind.is_empty();
    let complete = reports.iter().all(|r| r.outcome == StatementOutcome::Ran);
    Ok(DryRunReport {
        database: options.connect.dbname().to_owned(),
        server: options.connect.describe(),
        server_version,
        started_at,
        statements: reports,
        loses_data,
        would_fail,
        timed_out,
        complete,
        sequences_behind,
        notes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Refuses a file (`statements`, all of one file) that leaves a transaction uncommitted: it ends one with
/// `ROLLBACK` or `PREPARE TRANSACTION`, or opens one with `BEGIN` that it never commits, which psql leaves
/// open at the end of the file and the server rolls back. `migrate` runs each file in transactions that it
/// commits, so what the file means to discard would be kept: refused before anything runs, as is its
/// rehearsal.
pub fn refuse_uncommitted(statements: &[Statement]) -> Result<()> {
    let at =
        |st: &Statement| format!("{}:{}: `{}`", st.file.display(), st.line, st.sql.lines().next().unwrap_or_default());
    if let Some(st) = statements.iter().find(|st| analyze::discards_transaction(&st.sql)) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} ends the file's transaction without committing it, and pgsafe runs each file in one transaction \
                 that it commits: what the file means to discard would be kept; nothing was changed",
                at(st)
            ),
        )
        .with_hint("take the `ROLLBACK` (and the statements it discards) out of the migration"));
    }
    if let Some(st) = analyze::never_committed(statements, |st| st.sql.as_str()) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} opens a transaction that the file never commits: psql ends the file with it open and the \
                 server rolls it back, and pgsafe commits each file's transactions: what the file means to discard \
                 would be kept; nothing was changed",
                at(st)
            ),
        )
        .with_hint("add the `COMMIT` that ends the transaction, or remove the `BEGIN` (pgsafe runs the file in a transaction of its own)"));
    }
    Ok(())
}

/// Whether one of `reports` stopped the migration.
fn stops(reports: &[StatementReport]) -> bool {
    reports.iter().any(|r| r.outcome.stops())
}

/// The sequences' states ([`sequences::states`]), at the rehearsal's start and at its end; `None`, with a
/// note, when the server refused to give them.
async fn sequence_states(session: &Session, notes: &mut Vec<String>) -> Result<Option<BTreeMap<i64, Option<i64>>>> {
    let states = observe::measure(session, sequences::states(session)).await;
    sequences::unless_refused(states, |e| notes.push(format!("the sequences were not checked: {e}")))
}

/// The sequences there before the rehearsal that gave values during it, each a note: a sequence is not
/// transactional, so the rollback gives none back, and the migration's rows will be numbered after them
/// (`nextval` of a serial's default, as any `INSERT` draws it; other sessions' draws meanwhile count too).
/// `before` and `now`: the states at the rehearsal's start and end.
async fn sequences_drawn(
    session: &Session,
    before: &BTreeMap<i64, Option<i64>>,
    now: &BTreeMap<i64, Option<i64>>,
    notes: &mut Vec<String>,
) -> Result<()> {
    const NAMES: &str = "SELECT s.oid::int8, s.oid::pg_catalog.regclass::text \
                         FROM pg_catalog.pg_class s WHERE s.oid = ANY($1::int8[]::oid[])";
    let drawn: Vec<(i64, Option<i64>, i64)> = before
        .iter()
        .filter_map(|(oid, was)| match now.get(oid) {
            Some(Some(last)) if Some(*last) != *was => Some((*oid, *was, *last)),
            _ => None,
        })
        .collect();
    if drawn.is_empty() {
        return Ok(());
    }
    let oids: Vec<i64> = drawn.iter().map(|(oid, ..)| *oid).collect();
    let rows = observe::measure(session, session.query(NAMES, &[&oids])).await?;
    let names: HashMap<i64, String> = rows
        .iter()
        .map(|r| Ok((crate::pg::value(r, 0, NAMES)?, crate::pg::value(r, 1, NAMES)?)))
        .collect::<Result<_>>()?;
    for (oid, was, last) in drawn {
        let name = names.get(&oid).cloned().unwrap_or_else(|| format!("sequence {oid}"));
        let was = was.map_or("none yet".to_owned(), |v| v.to_string());
        notes.push(format!(
            "sequence `{name}` gave values during the rehearsal (its last value {was} before, {last} after): a \
             sequence is not rolled back, so they are not given back, and the migration's rows will be numbered \
             after them (other sessions' values meanwhile count too)"
        ));
    }
    Ok(())
}

/// At the end of a rehearsal no statement of which stopped: the sequences the migration leaves behind the
/// values of the unique columns they fill. Those that were behind before the migration, and those a
/// `setval` the rehearsal did not run may put right, are notes; the server refusing to say is one too.
async fn sequences_after(
    session: &Session,
    before: &BTreeMap<i64, Option<i64>>,
    after: &BTreeMap<i64, Option<i64>>,
    reports: &[StatementReport],
    notes: &mut Vec<String>,
) -> Result<Vec<SequenceBehind>> {
    let found = observe::measure(session, sequences::behind(session, before, after, &sequences::Ran::Here)).await;
    let Some(found) = sequences::unless_refused(found, |e| notes.push(format!("the sequences were not checked: {e}")))?
    else {
        return Ok(Vec::new());
    };
    let setval = reports.iter().find(|r| r.reason.as_deref() == Some(analyze::SETVAL_NOT_RUN));
    let mut behind = Vec::new();
    for sequence in found {
        if sequence.before {
            notes.push(format!("{}; it was so before the migration", sequence.describe()));
        } else if let Some(setval) = setval {
            notes.push(format!(
                "{}, unless the `setval` at {}:{}, not rehearsed, moves it",
                sequence.describe(),
                setval.file,
                setval.line
            ));
        } else {
            behind.push(sequence);
        }
    }
    Ok(behind)
}

/// Why a migration's BEGIN, COMMIT or ROLLBACK is not run.
const TRANSACTION_CONTROL: &str = "BEGIN, COMMIT and ROLLBACK of the file are skipped";

fn check_options(options: &DryRunOptions) -> Result<()> {
    if options.files.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "no migration file to rehearse"));
    }
    for (name, value) in [("--lock-timeout", options.lock_timeout), ("--statement-timeout", options.statement_timeout)]
    {
        if value.as_millis() == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("`{name}` must be at least a millisecond: without it the rehearsal could block the database"),
            ));
        }
    }
    if options.max_compare_rows == 0 {
        return Err(Error::new(ErrorKind::InvalidInput, "`--max-compare-rows` must be at least 1"));
    }
    Ok(())
}

/// The rehearsal's transaction and its timeouts. A pgsafe that stops answering between two statements
/// leaves an idle transaction: the server ends it after the statement timeout.
fn begin(options: &DryRunOptions) -> String {
    let ms = |d: Duration| d.as_millis();
    format!(
        "BEGIN; SET LOCAL lock_timeout = '{}ms'; SET LOCAL statement_timeout = '{}ms'; \
         SET LOCAL idle_in_transaction_session_timeout = '{}ms'",
        ms(options.lock_timeout),
        ms(options.statement_timeout),
        ms(options.statement_timeout),
    )
}

/// Each statement in turn, until one fails; then the rest are not run.
async fn rehearse(
    session: &Session,
    statements: &[Statement],
    options: &DryRunOptions,
    server_version: u32,
    sequences_at_start: Option<&BTreeMap<i64, Option<i64>>>,
) -> Result<Vec<StatementReport>> {
    let mut reports = Vec::new();
    let mut stopped: Option<String> = None;
    let mut run = observe::Run::default();
    run.sequences_at_start = sequences_at_start.cloned();
    run.fills_from = observe::fills_from(statements);
    run.remember_large_objects(session).await?;
    // The file of the last statement that added a value to an enum type, and whether a COMMIT of that
    // file came after it (a file that keeps its own transactions commits there).
    let mut enum_value_added_in: Option<(&std::path::Path, bool)> = None;
    // The migration's own savepoints, each with the number of statements before it.
    let mut savepoints: Vec<(String, usize)> = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        options.cancel.check("the dry run")?;
        if let Some(why) = &stopped {
            reports.push(StatementReport::not_run(statement, why.clone()));
            continue;
        }
        let mut analysis = analyze::analyze(&statement.sql, server_version);
        if analysis.kind == analyze::Kind::Runs && !analysis.calls.is_empty() {
            for (language, body) in observe::function_bodies(session, &analysis.calls).await? {
                analysis.absorb_function(&language, &body, server_version);
            }
        }
        let report = match &analysis.kind {
            analyze::Kind::TransactionControl => {
                if let Some((file, committed)) = &mut enum_value_added_in
                    && *file == statement.file
                    && analyze::commits(&statement.sql)
                {
                    *committed = true;
                }
                StatementReport::not_run(statement, TRANSACTION_CONTROL)
            }
            analyze::Kind::NotRun(reason) => StatementReport::not_run(statement, reason.clone()),
            analyze::Kind::Runs => {
                run.strings.extend(analyze::strings(&statement.sql));
                let new_here = observe::new_columns(session, &analysis.added_columns).await?;
                let mut report =
                    observe::statement(session, statement, &analysis, options, i, &mut run, &new_here).await?;
                if report.outcome == StatementOutcome::Ran {
                    run.added.extend(new_here);
                    if analysis.adds_enum_value {
                        enum_value_added_in = Some((&statement.file, false));
                    }
                }
                // A value an earlier file added is usable once that file's transaction commits, as a
                // migration tool applies it; the rehearsal's one transaction never commits.
                let uses_new_value =
                    report.failure.as_ref().and_then(|f| f.sqlstate.as_deref()).and_then(SqlState::parse)
                        == Some(SqlState::UNSAFE_NEW_ENUM_VALUE_USAGE);
                let committed_since =
                    enum_value_added_in.filter(|(f, committed)| *committed || *f != statement.file.as_path());
                if let Some((file, _)) = committed_since.filter(|_| uses_new_value) {
                    report.outcome = StatementOutcome::NotRun;
                    report.reason = Some(format!(
                        "it uses an enum value `{}` adds, which PostgreSQL lets a transaction use once the one that \
                         added it commits: applied file by file and each of a file's own transactions as written, \
                         it is usable, and the rehearsal, one transaction, cannot show what it does",
                        file.display()
                    ));
                    report.failure = None;
                }
                if report.outcome == StatementOutcome::Ran
                    && let Some((op, name)) = &analysis.savepoint_op
                {
                    undo_to_savepoint(&mut savepoints, *op, name, &mut reports);
                }
                if report.outcome.stops() {
                    let how = match report.outcome {
                        StatementOutcome::LockTimeout => "timed out on a lock",
                        StatementOutcome::Timeout => "ran longer than --statement-timeout",
                        _ => "failed",
                    };
                    stopped = Some(format!("not run: the statement at {}:{} {how}", report.file, report.line));
                }
                reports.push(report);
                continue;
            }
        };
        reports.push(report);
    }
    run.back_again(session, &mut reports).await?;
    Ok(reports)
}

/// For each of `statements` (the whole run's, file after file), the transaction `migrate` runs it in, as
/// a number: its file's; in a file that runs as written ([`runs_as_written`]), its `BEGIN ... COMMIT`
/// block's, or its own outside one (or in a block holding a statement that cannot run in a
/// transaction); the whole run's with `one_transaction`. The file's own BEGIN and COMMIT, which are not
/// run, have one of their own.
fn transactions(statements: &[Statement], server_version: u32, one_transaction: bool) -> Vec<usize> {
    if one_transaction {
        return vec![0; statements.len()];
    }
    let mut count = 0;
    let mut another = || {
        count += 1;
        count
    };
    let mut of = Vec::with_capacity(statements.len());
    for file in statements.chunk_by(|a, b| a.file == b.file) {
        if !runs_as_written(file, |st| st.sql.as_str(), server_version) {
            of.extend(std::iter::repeat_n(another(), file.len()));
            continue;
        }
        let mut in_file: Vec<usize> = file.iter().map(|_| another()).collect();
        let cannot_be_in_one = |i: &&usize| outside_transaction(&file[**i].sql, server_version);
        let indices: Vec<usize> = (0..file.len()).collect();
        for run in transaction_runs(&indices, |i| file[*i].sql.as_str()) {
            if let TransactionRun::Block(block) = run
                && !block.statements.iter().any(cannot_be_in_one)
            {
                let number = another();
                block.statements.iter().for_each(|i| in_file[**i] = number);
            }
        }
        of.extend(in_file);
    }
    of
}

/// Sets how long each lock of `reports` is held: from its statement to the end of its transaction (the
/// statement's number in `transactions`), the time of the statements that run in it from there on. Those
/// not run add nothing; one that failed ends it.
fn hold_locks(reports: &mut [StatementReport], transactions: &[usize]) {
    let mut after: BTreeMap<usize, f64> = BTreeMap::new();
    for (report, transaction) in reports.iter_mut().zip(transactions).rev() {
        let held = after.entry(*transaction).or_default();
        *held += report.seconds;
        for lock in &mut report.locks {
            lock.held_seconds = *held;
        }
    }
}

/// Follows the migration's own savepoints (`op` of the savepoint `name`; `savepoints` holds those set, with
/// the number of statements before each): `ROLLBACK TO SAVEPOINT` undoes what the statements since lost,
/// which `reports` then say in a note instead.
fn undo_to_savepoint(
    savepoints: &mut Vec<(String, usize)>,
    op: analyze::SavepointOp,
    name: &str,
    reports: &mut [StatementReport],
) {
    use analyze::SavepointOp;
    let at = savepoints.iter().rposition(|(n, _)| n == name);
    match op {
        SavepointOp::Set => savepoints.push((name.to_owned(), reports.len())),
        SavepointOp::Release => savepoints.truncate(at.unwrap_or(savepoints.len())),
        SavepointOp::RollbackTo => {
            let Some(at) = at else { return };
            // The savepoint stays; those set after it are gone.
            savepoints.truncate(at + 1);
            let since = savepoints[at].1;
            for report in reports.iter_mut().skip(since) {
                for loss in std::mem::take(&mut report.losses) {
                    let of =
                        if loss.table.is_empty() { "large objects".to_owned() } else { format!("`{}`", loss.table) };
                    report.notes.push(format!(
                        "what it would lose of {of} ({}) is undone by `ROLLBACK TO SAVEPOINT {name}`: not counted",
                        loss.count
                    ));
                }
            }
        }
    }
}

/// The audit line of a dry run of `options` that started at `started_at` and took `seconds`: `ok` when
/// the migration would run and lose nothing, `failed` saying what it would lose or where it fails.
pub fn audit_entry(
    options: &DryRunOptions,
    started_at: Timestamp,
    seconds: f64,
    result: &Result<DryRunReport>,
) -> AuditEntry {
    let outcome = match result {
        Ok(report) if report.would_fail || report.loses_data || report.timed_out => {
            let mut what = Vec::new();
            if let Some(bad) = report.statements.iter().find(|s| s.outcome.stops()) {
                match bad.outcome {
                    StatementOutcome::Timeout => what.push(format!(
                        "run past the rehearsal's statement timeout at {}:{} (not known further)",
                        bad.file, bad.line
                    )),
                    _ => what.push(format!("fail at {}:{} ({})", bad.file, bad.line, bad.outcome)),
                }
            }
            let lost: usize = report.statements.iter().map(|s| s.losses.iter().filter(|l| l.count > 0).count()).sum();
            if lost > 0 {
                what.push(format!("lose data ({lost} loss(es))"));
            }
            if let Some(sequence) = report.sequences_behind.first() {
                what.push(format!(
                    "leave sequence `{}` behind `{}.{}`",
                    sequence.sequence, sequence.table, sequence.column
                ));
            }
            Outcome::Failed { error: format!("the migration would {}", what.join(" and ")) }
        }
        result => Outcome::of(result),
    };
    let mut entry = AuditEntry::new(AuditCommand::DryRun, started_at, outcome, seconds).connected_to(&options.connect);
    let files: Vec<String> = options.files.iter().map(|f| f.display().to_string()).collect();
    entry.migration = Some(files.join(", "));
    entry
}

/// PostgreSQL's name of a lock mode as `LOCK TABLE` and the documentation write it: `AccessExclusiveLock`
/// is `ACCESS EXCLUSIVE`. A mode it does not know stays as it is.
pub fn lock_name(mode: &str) -> String {
    let Some(stem) = mode.strip_suffix("Lock") else { return mode.to_owned() };
    let mut name = String::new();
    for c in stem.chars() {
        if c.is_ascii_uppercase() && !name.is_empty() {
            name.push(' ');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_modes_read_as_the_documentation_writes_them() {
        assert_eq!(lock_name("AccessExclusiveLock"), "ACCESS EXCLUSIVE");
        assert_eq!(lock_name("ShareRowExclusiveLock"), "SHARE ROW EXCLUSIVE");
        assert_eq!(lock_name("ShareLock"), "SHARE");
        assert_eq!(lock_name("RowExclusiveLock"), "ROW EXCLUSIVE");
        assert_eq!(lock_name("SIReadLock"), "S I READ");
        assert_eq!(lock_name("odd"), "odd");
    }

    #[test]
    fn a_dry_run_that_would_fail_or_lose_data_is_a_failed_audit_line_saying_where() {
        let options = DryRunOptions {
            connect: ConnectOptions::new(Some("host=/tmp dbname=shop user=alice"), None, None, None).unwrap(),
            files: vec!["m/0001.sql".into()],
            texts: Default::default(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            max_rewrite_bytes: DEFAULT_MAX_REWRITE_BYTES,
            max_compare_rows: DEFAULT_MAX_COMPARE_ROWS,
            one_transaction: false,
            cancel: Cancel::new(),
        };
        let statement =
            Statement { file: "m/0001.sql".into(), line: 3, column: 1, sql: "DROP TABLE t".into(), copy_rows: None };
        let mut dropped = StatementReport::new(&statement, StatementOutcome::Ran);
        let loss = Loss { kind: LossKind::DroppedTable, table: "t".into(), column: None, count: 4, estimated: false };
        dropped.losses.push(loss);
        let locked = StatementReport::new(&Statement { line: 5, ..statement }, StatementOutcome::LockTimeout);
        let report = DryRunReport {
            database: "shop".into(),
            server: "s".into(),
            server_version: 170000,
            started_at: Timestamp::now(),
            statements: vec![dropped, locked],
            loses_data: true,
            would_fail: true,
            timed_out: false,
            complete: true,
            sequences_behind: Vec::new(),
            notes: Vec::new(),
            seconds: 0.5,
        };
        let entry = audit_entry(&options, report.started_at, 0.5, &Ok(report.clone()));
        assert_eq!((entry.command, entry.migration.as_deref()), (AuditCommand::DryRun, Some("m/0001.sql")));
        let error = "the migration would fail at m/0001.sql:5 (lock-timeout) and lose data (1 loss(es))";
        assert_eq!(entry.outcome, Outcome::Failed { error: error.into() });
        let clean = DryRunReport { loses_data: false, would_fail: false, statements: Vec::new(), ..report };
        assert_eq!(audit_entry(&options, clean.started_at, 0.5, &Ok(clean)).outcome, Outcome::Ok);
    }

    #[test]
    fn a_lock_is_held_to_the_end_of_the_transaction_migrate_runs_its_statement_in() {
        let split = |file: &str, sql: &str| split_text(std::path::Path::new(file), sql).unwrap();
        let mut statements = split("1.sql", "ALTER TABLE t ADD x int; UPDATE t SET x = 1;");
        statements.extend(split("2.sql", "SELECT pg_sleep(5);"));
        // Its own blocks, committed as written, and statements outside them.
        statements.extend(split("3.sql", "BEGIN; ALTER TABLE t ADD y int; UPDATE t SET y = 1; COMMIT; ANALYZE t;"));
        statements.extend(split("4.sql", "ALTER TABLE t ADD z int; CREATE INDEX CONCURRENTLY i ON t (z);"));
        let numbers = transactions(&statements, 170000, false);
        let [a, b, c, begin, e, f, commit, g, h, i] = numbers[..] else { panic!("{numbers:?}") };
        assert_eq!(a, b, "one file, one transaction");
        assert_ne!(b, c, "each file its own");
        assert_eq!(e, f, "a block of a file run as written");
        // Each on its own: the BEGIN and COMMIT (not run), a statement beside the block, and each of a file
        // with a statement that cannot run in a transaction.
        let distinct = [a, c, begin, e, commit, g, h, i];
        assert!(distinct.iter().enumerate().all(|(n, x)| !distinct[n + 1..].contains(x)), "{numbers:?}");
        assert_eq!(transactions(&statements, 170000, true), vec![0; statements.len()], "--skip-snapshot");

        let mut reports: Vec<StatementReport> =
            statements.iter().map(|st| StatementReport::new(st, StatementOutcome::Ran)).collect();
        for (report, seconds) in reports.iter_mut().zip([0.25, 0.5, 5.0]) {
            report.seconds = seconds;
            report.locks.push(LockTaken {
                relation: "t".into(),
                mode: "AccessExclusiveLock".into(),
                lock: "ACCESS EXCLUSIVE".into(),
                held_seconds: 0.0,
            });
        }
        hold_locks(&mut reports, &numbers);
        let held: Vec<f64> = reports[..3].iter().map(|r| r.locks[0].held_seconds).collect();
        assert_eq!(held, [0.75, 0.5, 5.0]);
        hold_locks(&mut reports, &transactions(&statements, 170000, true));
        assert_eq!(reports[0].locks[0].held_seconds, 5.75);
    }

    #[test]
    fn the_transaction_sets_every_timeout_locally() {
        let options = DryRunOptions {
            connect: ConnectOptions::new(Some("host=/tmp dbname=shop user=alice"), None, None, None).unwrap(),
            files: vec!["m.sql".into()],
            texts: Default::default(),
            lock_timeout: Duration::from_millis(1500),
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            max_rewrite_bytes: DEFAULT_MAX_REWRITE_BYTES,
            max_compare_rows: DEFAULT_MAX_COMPARE_ROWS,
            one_transaction: false,
            cancel: Cancel::new(),
        };
        assert_eq!(
            begin(&options),
            "BEGIN; SET LOCAL lock_timeout = '1500ms'; SET LOCAL statement_timeout = '60000ms'; \
             SET LOCAL idle_in_transaction_session_timeout = '60000ms'"
        );
        let none = DryRunOptions { lock_timeout: Duration::ZERO, ..options.clone() };
        assert!(check_options(&none).unwrap_err().to_string().contains("`--lock-timeout`"));
        assert!(check_options(&DryRunOptions { files: vec![], ..options }).is_err());
    }
}
