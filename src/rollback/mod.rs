//! `pgsafe rollback`: a database back to a snapshot of the store, saying first what that loses, and never
//! changing the current database before its replacement is proven.
//!
//! ```text
//! plan:  snapshot's metadata -> archive opened -> live database compared with it (changes) -> steps
//! run:   (the database's lock, held by the caller) -> store lock -> snapshot verified in full ->
//!        safety snapshot of the current state ->
//!        swap:     restore into a new database (verified) -> rename the current aside, the new into place
//!        in place: one transaction: drop what the snapshot lacks, --clean restore, verify
//!        tables:   one transaction: empty them, load with triggers off, check keys, verify
//!        -> audit line
//! ```
//! A damaged snapshot is refused before anything changes; a restore that fails or does not verify
//! leaves the current database as it was (the swap's new database is dropped again; the other modes
//! roll their one transaction back).

pub mod changes;
pub mod database_lock;
pub mod replaced;
pub mod swap;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;

use crate::archive::ArchiveReader;
use crate::cancel::Cancel;
use crate::catalog::Filters;
use crate::dump::DumpOptions;
use crate::error::{Error, ErrorKind, Result, SqlState};
use crate::migrate::LockPolicy;
use crate::pg::{ConnectOptions, Session};
use crate::progress::Progress;
use crate::restore::{RestoreOptions, RestoreReport};
use crate::store::operation::{SnapshotOptions, snapshot_locked};
use crate::store::{AuditCommand, AuditEntry, LockHolder, Outcome, SnapshotId, SnapshotMeta, Store};
pub use changes::{Change, Changes, ObjectChange, TableChange};
pub use database_lock::DatabaseLock;
pub use swap::{OtherSession, SessionPolicy, Swapped};

/// How a rollback puts the snapshot back.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Restore into a new database, verify it, then swap names (the default; needs CREATEDB).
    Swap,
    /// One transaction in the current database: drop and restore, all or nothing (`--in-place`).
    InPlace,
    /// These tables' rows only, in one transaction (`--tables`), as patterns of `-t`.
    Tables(Vec<String>),
}

impl Mode {
    fn name(&self) -> &'static str {
        match self {
            Mode::Swap => "swap",
            Mode::InPlace => "in-place",
            Mode::Tables(_) => "tables",
        }
    }
}

/// Whether a line of a restore's hint is about `pgsafe restore`'s own options, which a rollback has not.
fn restore_option_hint(line: &str) -> bool {
    ["`--clean`", "`--create`", "--single-transaction", "`-1`"].iter().any(|o| line.contains(o))
}

/// The lock retries of a rollback in place (or of tables) by default: about a minute and a half of
/// attempts, each holding its locks at most `--lock-timeout`, before it gives up changing nothing.
pub const ROLLBACK_LOCK_RETRIES: u32 = 10;

/// What `pgsafe rollback` does.
#[derive(Debug, Clone)]
pub struct RollbackOptions {
    /// The database to roll back.
    pub connect: ConnectOptions,
    /// The snapshot; `None` for the newest of the database that is not a rollback's safety snapshot
    /// (`--latest`).
    pub snapshot: Option<SnapshotId>,
    pub mode: Mode,
    /// Workers for verification, the safety snapshot and the restore.
    pub jobs: usize,
    /// Take a snapshot of the current state first (the default).
    pub safety_snapshot: bool,
    /// How the swap deals with other sessions.
    pub sessions: SessionPolicy,
    /// How long to wait for the store's lock.
    pub lock_wait: Duration,
    /// In place and tables: the transaction's `lock_timeout`, and how often a lock not granted in time is
    /// tried again (the attempt rolled back, every lock it took released, then a pause).
    pub lock: LockPolicy,
    /// Run `pgsafe check` against the snapshot afterwards (the default).
    pub health_check: bool,
    /// Tables of the snapshot the caller knows were renamed since (`migrate`, by their OIDs): what the
    /// rollback discards is counted under their names now, and they are no new tables.
    pub renamed: Vec<(String, String)>,
    pub cancel: Cancel,
}

/// One step a rollback will take, with its estimated time.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStep {
    pub step: String,
    pub estimated_seconds: f64,
}

/// What a rollback would do and lose: `--plan` prints it, and the rollback runs it.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackPlan {
    pub database: String,
    pub server: String,
    pub mode: &'static str,
    pub snapshot: SnapshotMeta,
    pub changes: Changes,
    pub steps: Vec<PlanStep>,
    pub estimated_seconds: f64,
    /// How the estimate was made.
    pub estimate_basis: String,
    /// The live objects the snapshot lacks, for the in-place drops.
    #[serde(skip)]
    extra: Vec<crate::schema::SchemaObject>,
    /// The snapshot's tables renamed since, compared under their names now: the caller's
    /// ([`RollbackOptions::renamed`]) or, when it names none, the migrations' as the audit log recorded
    /// them ([`renamed_since`]).
    #[serde(skip)]
    renamed: Vec<(String, String)>,
}

/// What a rollback did.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub database: String,
    pub mode: &'static str,
    /// The snapshot put back.
    pub snapshot: SnapshotId,
    /// The snapshot of the state the rollback replaced; `None` with `--no-safety-snapshot`.
    pub safety_snapshot: Option<SnapshotId>,
    /// Swap: the name the replaced database is kept under.
    pub replaced_database_kept_as: Option<String>,
    pub sessions: Option<Swapped>,
    pub restore: RestoreReport,
    /// What the rollback discarded, counted once no other session could add to it: a swap compares the
    /// replaced database with the snapshot right after the rename; a rollback in one transaction
    /// compares the tables it replaces in that transaction, once it holds their locks. The plan's
    /// comparison (before the safety snapshot, the restore and the swap's wait) is an estimate: an
    /// application that keeps writing commits more rows until the rollback shuts it out.
    pub changes: Changes,
    /// Why `changes` are the plan's, counted before the rollback shut other sessions out, rather than
    /// what it discarded: counting again failed (the replaced database could not be read). Rows
    /// committed after the plan's count were discarded too, and are not in them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes_not_recounted: Option<String>,
    /// The health check run afterwards against the snapshot; `None` with `--no-check`, or when it could
    /// not run.
    pub health: Option<crate::check::CheckReport>,
    /// Why the health check could not run (it was interrupted, the server went away): the rollback is
    /// done, and whether the database is healthy is not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_not_run: Option<String>,
    pub seconds: f64,
}

impl RollbackReport {
    /// Whether the database passed the health check that followed (or none was asked for).
    pub fn is_healthy(&self) -> bool {
        self.health_not_run.is_none() && self.health.as_ref().is_none_or(|h| h.healthy)
    }
}

/// Restores run about this many times a dump's time on the benchmark (`benches/compare.py`): the
/// estimate's factor from a snapshot's measured dump time to its restore.
const RESTORE_PER_DUMP: f64 = 3.0;

/// Plans a rollback: finds the snapshot, opens its archive and compares the live database with it. Reads
/// every table of the snapshot from the database (one repeatable-read transaction); changes nothing.
pub async fn plan(store: &dyn Store, options: &RollbackOptions) -> Result<RollbackPlan> {
    let database = options.connect.dbname().to_owned();
    let snapshot = match &options.snapshot {
        Some(id) => store.get(id)?,
        // A rollback's safety snapshot holds the state a rollback replaced: `--latest` twice must not undo
        // the first rollback, so it names such a snapshot only by its id.
        // A snapshot whose archive is gone, or that does not hold what the mode restores (a partial one,
        // for a whole rollback), is passed over, with a warning naming it.
        None => crate::store::newest_restorable(store, &database, |s| match &options.mode {
            Mode::Swap | Mode::InPlace => crate::store::whole(s),
            Mode::Tables(_) if s.scope.content == "schema-only" => {
                Err("it holds no rows (schema-only)".to_owned())
            }
            Mode::Tables(_) => Ok(()),
        })?
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the store `{}` holds no snapshot of `{database}` whose archive is there and that holds what {} restores",
                    store.location(),
                    match &options.mode {
                        Mode::Tables(_) => "`--tables`",
                        Mode::Swap | Mode::InPlace => "a whole rollback",
                    }
                ),
            )
            .with_hint("`pgsafe snapshots` lists them; `pgsafe snapshot -d DB` takes one")
        })?,
    };
    if snapshot.database != database {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("snapshot `{}` is of the database `{}`, not `{database}`", snapshot.id, snapshot.database),
        )
        .with_hint("`pgsafe restore` puts an archive into another database"));
    }
    let scope_ok = match &options.mode {
        Mode::Swap | Mode::InPlace => snapshot.scope.is_whole(),
        Mode::Tables(_) => snapshot.scope.content != "schema-only",
    };
    if !scope_ok {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "snapshot `{}` does not hold the whole database ({}), so it cannot replace it",
                snapshot.id,
                describe_scope(&snapshot)
            ),
        )
        .with_hint("`--tables T...` puts back the rows of tables it holds"));
    }
    let archive = open(store, &snapshot)?;
    let session = Session::open(&options.connect, None).await?.cancelled_by(&options.cancel);
    let filters = tables_filters(&options.mode)?;
    let scope = match &filters {
        Some(f) => changes::Scope::Tables(f),
        None => changes::Scope::Whole,
    };
    let restore_options = restore_options(options);
    let renamed = match options.renamed.is_empty() {
        true => renamed_since(store, &session, &snapshot).await?,
        false => options.renamed.clone(),
    };
    let (changes, extra) = changes::compare(&session, &archive, &restore_options, scope, &renamed).await?;
    let steps = steps(&options.mode, &snapshot, options);
    Ok(RollbackPlan {
        database,
        server: options.connect.describe(),
        mode: options.mode.name(),
        estimated_seconds: steps.iter().map(|s| s.estimated_seconds).sum(),
        estimate_basis: format!(
            "from the snapshot's measured dump ({:.1}s) and verification ({:.1}s) of {} bytes; a restore taken as {RESTORE_PER_DUMP} times the dump",
            snapshot.dump_seconds, snapshot.verify_seconds, snapshot.bytes
        ),
        steps,
        snapshot,
        changes,
        extra,
        renamed,
    })
}

/// The tables of `snapshot` that migrations renamed since it was taken, as the store's audit log recorded
/// them (a standalone rollback has no OIDs from before and after a migration, as `migrate`'s own has):
/// the renames of the last migration that started from the snapshot and ended healthy, followed through
/// those of every healthy migration of the database after it (`a` renamed `b`, later `b` renamed `c`:
/// `a` is `c` now). A pair is kept only while the database has the new name and not the old one, so
/// that a rename undone since, or a table made again under the old name, is compared as it is. An
/// audit log that cannot be read leaves none, with a warning: renamed tables are then reported as new,
/// which overstates what a rollback discards, never understates it.
async fn renamed_since(store: &dyn Store, session: &Session, snapshot: &SnapshotMeta) -> Result<Vec<(String, String)>> {
    let log = match store.read_audit() {
        Ok(log) => log,
        Err(e) => {
            tracing::warn!("the store's audit log could not be read, so tables migrations renamed count as new: {e}");
            return Ok(Vec::new());
        }
    };
    let Some(from) = log.last_healthy_migration_from(&snapshot.id) else {
        return Ok(Vec::new());
    };
    let mut renamed = log.entries[from].renamed_tables.clone();
    let of_database = |e: &&AuditEntry| e.database.as_deref() == Some(snapshot.database.as_str());
    for later in log.entries[from + 1..].iter().filter(|e| e.is_healthy_migration()).filter(of_database) {
        for (old, new) in &later.renamed_tables {
            for pair in renamed.iter_mut().filter(|(_, now)| now == old) {
                pair.1 = new.clone();
            }
        }
    }
    if renamed.is_empty() {
        return Ok(renamed);
    }
    const SQL: &str = "SELECT pg_catalog.to_regclass(o) IS NULL AND pg_catalog.to_regclass(n) IS NOT NULL \
                       FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) \
                       WITH ORDINALITY AS r (o, n, i) ORDER BY i";
    let (old, new): (Vec<String>, Vec<String>) = renamed.iter().cloned().unzip();
    // A rollback is what puts a database right: one that cannot tell renames counts them as new tables
    // (overstating what it discards) rather than stop.
    let rows = match session.query(SQL, &[&old, &new]).await {
        Ok(rows) => rows,
        Err(e) if e.kind() == ErrorKind::Cancelled => return Err(e),
        Err(e) => {
            tracing::warn!("the tables migrations renamed could not be looked up, so they count as new: {e}");
            return Ok(Vec::new());
        }
    };
    let mut kept = Vec::new();
    for (pair, row) in renamed.into_iter().zip(&rows) {
        if crate::pg::value::<bool, _>(row, 0, SQL)? {
            kept.push(pair);
        }
    }
    Ok(kept)
}

fn describe_scope(s: &SnapshotMeta) -> String {
    s.scope.describe()
}

/// The snapshot's archive, opened (header, catalog, manifest) and known to be the one the snapshot was
/// taken as; its chunks are checked by the run.
fn open(store: &dyn Store, snapshot: &SnapshotMeta) -> Result<ArchiveReader> {
    crate::store::operation::open_snapshot(store, snapshot)
}

fn tables_filters(mode: &Mode) -> Result<Option<Filters>> {
    match mode {
        Mode::Tables(patterns) => {
            let include_tables =
                patterns.iter().map(|p| crate::catalog::NamePattern::object(p)).collect::<Result<Vec<_>>>()?;
            Ok(Some(Filters { include_tables, ..Filters::default() }))
        }
        _ => Ok(None),
    }
}

/// The restore each mode runs (the swap's `--create` name is set by the run).
fn restore_options(options: &RollbackOptions) -> RestoreOptions {
    let (single_transaction, clean, data_only) = match options.mode {
        Mode::Swap => (false, false, false),
        Mode::InPlace => (true, true, false),
        Mode::Tables(_) => (true, true, true),
    };
    let jobs = if single_transaction { 1 } else { options.jobs };
    RestoreOptions {
        single_transaction,
        clean,
        data_only,
        lock_timeout: single_transaction.then_some(options.lock.timeout),
        ..RestoreOptions::whole(options.connect.clone(), jobs, options.cancel.clone())
    }
}

fn steps(mode: &Mode, s: &SnapshotMeta, options: &RollbackOptions) -> Vec<PlanStep> {
    let verify = if s.verify_seconds > 0.0 { s.verify_seconds } else { s.dump_seconds / 2.0 };
    let step = |step: String, estimated_seconds: f64| PlanStep { step, estimated_seconds };
    let mut steps =
        vec![step(format!("verify snapshot `{}` in full (nothing changes if it is damaged)", s.id), verify)];
    if options.safety_snapshot {
        steps.push(step(
            format!("take a safety snapshot of `{}` as it is now, verified", s.database),
            s.dump_seconds + verify,
        ));
    }
    let restore = s.dump_seconds * RESTORE_PER_DUMP + verify;
    match mode {
        Mode::Swap => {
            steps.push(step("restore the snapshot into a new database and verify it".into(), restore));
            let wait = options.sessions.wait.as_secs_f64();
            steps.push(step(
                format!(
                    "close `{}` to new sessions, wait up to {wait:.0}s for others to leave{}, rename it aside and the new database into its name",
                    s.database,
                    if options.sessions.terminate { " (then terminate them)" } else { "" }
                ),
                1.0,
            ));
        }
        Mode::InPlace => steps.push(step(
            "in one transaction: drop what the snapshot lacks and what it holds, restore it, verify; commit only if all of it holds"
                .into(),
            restore,
        )),
        Mode::Tables(t) => steps.push(step(
            format!(
                "in one transaction: empty {}, load the snapshot's rows with triggers off, check foreign keys, verify",
                t.join(", ")
            ),
            // Only the named tables: the estimate is the snapshot's share of rows, at least a second.
            restore.max(1.0) * table_share(s, t),
        )),
    }
    steps
}

/// The share of the snapshot's rows in tables matching `patterns` by name (a rough measure of work).
fn table_share(s: &SnapshotMeta, patterns: &[String]) -> f64 {
    if s.rows == 0 {
        return 1.0;
    }
    let bare = |t: &str| t.rsplit('.').next().unwrap_or(t).trim_matches('"').to_owned();
    let rows: u64 =
        s.tables.iter().filter(|t| patterns.iter().any(|p| bare(p) == bare(&t.table))).map(|t| t.rows).sum();
    (rows as f64 / s.rows as f64).clamp(0.01, 1.0)
}

/// The audit line of a rollback refused before it began, its plan having failed (a snapshot that cannot
/// be read: no identity or a wrong one, a missing or replaced archive): nothing changed, and the attempt
/// is recorded as [`rollback`] records one that ran.
pub fn refusal_entry(options: &RollbackOptions, started_at: Timestamp, seconds: f64, error: &Error) -> AuditEntry {
    let mut entry = AuditEntry::new(AuditCommand::Rollback, started_at, Outcome::failed(error), seconds)
        .connected_to(&options.connect);
    entry.snapshot = options.snapshot.clone();
    entry.step = Some(options.mode.name().to_owned());
    entry
}

/// Runs a planned rollback, appends its audit line, and returns its report. `plan` must come from
/// [`plan`] with the same options. The caller holds the database's lock (`pgsafe rollback` takes it
/// before its plan, `pgsafe migrate` for its whole run), so that no other migration or rollback of the
/// database runs meanwhile.
pub async fn rollback(
    store: &dyn Store,
    options: &RollbackOptions,
    plan: RollbackPlan,
    held: &DatabaseLock,
    progress: Arc<dyn Progress>,
) -> Result<RollbackReport> {
    if held.database() != plan.database {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("a rollback of `{}` needs that database's lock, not `{}`'s", plan.database, held.database()),
        ));
    }
    let started_at = Timestamp::now();
    let started = Instant::now();
    let mut safety = None;
    // What the plan compared as renamed, the rollback counts so too.
    let options = &RollbackOptions { renamed: plan.renamed.clone(), ..options.clone() };
    let result = run(store, options, &plan, progress, &mut safety).await;
    let mut entry =
        AuditEntry::new(AuditCommand::Rollback, started_at, Outcome::of(&result), started.elapsed().as_secs_f64());
    entry.server = Some(options.connect.describe());
    entry.role = Some(options.connect.user().to_owned());
    entry.database = Some(plan.database.clone());
    entry.snapshot = Some(plan.snapshot.id.clone());
    entry.step = Some(plan.mode.to_owned());
    entry.replaced_database = result.as_ref().ok().and_then(|r| r.replaced_database_kept_as.clone());
    let logged = store.append_audit(&entry);
    let result = match (result, &safety) {
        (Err(e), Some(id)) => Err(discard_safety_snapshot(store, options, id, e)),
        (result, _) => result,
    };
    match (result, logged) {
        (Ok(report), Ok(())) => Ok(report),
        (Ok(report), Err(e)) => Err(e.context(format!("`{}` was rolled back, but", report.database))),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(log)) => Err(e.and_hint(format!("the audit log could not record the failure either: {log}"))),
    }
}

/// A rollback that failed having changed nothing (sessions that did not leave, lock timeouts, a restore
/// that failed) removes its safety snapshot: it holds the state the database is still in, protects
/// nothing, and would count among the newest snapshots retention keeps. When what happened is not sure
/// (needs attention, interrupted) or the removal fails, it stays and the error names it.
fn discard_safety_snapshot(store: &dyn Store, options: &RollbackOptions, id: &SnapshotId, e: Error) -> Error {
    let kept = |e: Error| e.and_hint(format!("the state before the rollback is in safety snapshot `{id}`"));
    if matches!(e.kind(), ErrorKind::NeedsAttention | ErrorKind::Cancelled) {
        return kept(e);
    }
    let holder = LockHolder::this_process("pgsafe rollback");
    let removed = crate::store::lock_in_async(store, &holder, options.lock_wait, &options.cancel)
        .and_then(|_lock| store.remove(id));
    match removed {
        Ok(()) => e.and_hint(format!("its safety snapshot `{id}` was removed again, as nothing was changed")),
        Err(r) => {
            tracing::warn!("the safety snapshot `{id}` of a rollback that changed nothing could not be removed: {r}");
            kept(e)
        }
    }
}

async fn run(
    store: &dyn Store,
    options: &RollbackOptions,
    plan: &RollbackPlan,
    progress: Arc<dyn Progress>,
    safety: &mut Option<SnapshotId>,
) -> Result<RollbackReport> {
    let started = Instant::now();
    let snapshot = &plan.snapshot;
    let lock = crate::store::lock_in_async(
        store,
        &LockHolder::this_process("pgsafe rollback"),
        options.lock_wait,
        &options.cancel,
    )?;
    // The swap's rights are checked before anything takes time.
    if options.mode == Mode::Swap {
        let session = Session::open(&options.connect, None).await?;
        if let Some(missing) = swap::missing_rights(&session, &plan.database).await? {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a rollback by swap makes a new database and renames `{}`, but {missing}; nothing was changed",
                    plan.database
                ),
            )
            .with_hint(
                "`--in-place` rolls back inside the database in one transaction, `--tables T...` some tables' rows",
            ));
        }
    }

    progress.step(&format!("verifying snapshot `{}` in full", snapshot.id));
    let cannot = || format!("snapshot `{}` cannot be restored; nothing was changed", snapshot.id);
    // Opened once: verified in full, then restored from.
    let archive = Arc::new(open(store, snapshot).map_err(|e| e.context(cannot()))?);
    let (reader, source) = (archive.clone(), store.archive(&snapshot.id).to_string());
    let (jobs, cancel) = (options.jobs.max(1), options.cancel.clone());
    let verified = tokio::task::spawn_blocking(move || crate::verify::verify_reader(source, reader, jobs, &cancel))
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("verifying snapshot `{}`: {e}", snapshot.id)))?
        .map_err(|e| e.context(cannot()))?;
    if !verified.is_sound() {
        return Err(Error::new(
            ErrorKind::CorruptArchive,
            format!(
                "snapshot `{}` did not verify, so it was not restored and nothing was changed: {}",
                snapshot.id,
                verified.problems.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            ),
        )
        .with_hint("roll back to an older snapshot (`pgsafe snapshots` lists them)"));
    }
    options.cancel.check("the rollback")?;

    if options.safety_snapshot {
        progress.step(&format!("taking a safety snapshot of `{}` as it is now", plan.database));
        let dump = DumpOptions::whole(options.connect.clone(), jobs, options.cancel.clone());
        let taken = snapshot_locked(
            store,
            &SnapshotOptions {
                dump,
                label: Some("before-rollback".into()),
                migration: None,
                protects: Some(snapshot.id.clone()),
                pinned: None,
                pinned_by: None,
                verify: true,
                retention: None,
                lock_wait: options.lock_wait,
            },
            progress.clone(),
            Some(&lock),
        )
        .await
        .map_err(|e| {
            let full = e.is_out_of_space();
            let e = e.context("the safety snapshot of the current state failed, so nothing was changed");
            // A store out of room, in the emergency a rollback is (not an endpoint that stopped answering:
            // freeing room would not help that).
            if full {
                e.and_hint(
                    "the store needs room for a dump of the database: free some (`pgsafe prune`), or roll back \
                     with `--no-safety-snapshot`, which keeps no copy of the current state",
                )
            } else {
                e
            }
        })?;
        *safety = Some(taken.snapshot.id);
    }

    // What the health check compares with (an encrypted snapshot's tables are in its archive only).
    let against = crate::store::operation::tables_from(snapshot.clone(), &archive);
    let mut restore_options = restore_options(options);
    let mut kept_as = None;
    let mut sessions = None;
    // What each mode counts as discarded, once no other session can add to it (see
    // `RollbackReport::changes`); `Err` says why it could not.
    let counted: std::result::Result<Changes, String>;
    let restore = match &options.mode {
        Mode::Swap => {
            let time = Timestamp::now().strftime("%Y%m%dT%H%M%S").to_string();
            let new_name = swap::derived_name(&plan.database, &format!("_rollback_{time}"));
            let aside = swap::derived_name(&plan.database, &format!("_replaced_{time}"));
            restore_options.create = Some(new_name.clone());
            // What a second signal leaves, unless the migration that rolls back said already: a database
            // not yet changed, and the copy being restored.
            if options.cancel.at_stake().is_none() {
                options.cancel.set_at_stake(Some(format!(
                    "`{}` is as it was before the rollback, and the snapshot being restored into `{new_name}` \
                     may be left on the server: drop it; `pgsafe rollback -d {} {} --yes` rolls back again",
                    plan.database,
                    crate::cluster::sh_word(&plan.database),
                    snapshot.id
                )));
            }
            progress.step(&format!("restoring the snapshot into the new database `{new_name}`"));
            let restored = crate::restore::restore(archive.clone(), &restore_options, progress.clone()).await;
            let maintenance = swap::maintenance_session(&options.connect, &plan.database, "to rename databases").await;
            let report = match restored {
                Ok(report) => report,
                Err(e) => {
                    // What the restore committed of the new database before it stopped goes with it. Its
                    // hints about `restore`'s own options (`--clean`, `--create`, `-1`) do not apply here.
                    let e = e
                        .context(format!(
                            "restoring the snapshot into `{new_name}` failed; `{}` was not changed",
                            plan.database
                        ))
                        .retain_hint(|line| !restore_option_hint(line));
                    return Err(match &maintenance {
                        Ok(m) => match crate::restore::target::drop_database(m, &new_name).await {
                            Ok(()) => e,
                            Err(d) => e.and_hint(format!("`{new_name}` is still there ({d}); drop it")),
                        },
                        Err(_) => e.and_hint(format!("drop `{new_name}` if it is still there")),
                    });
                }
            };
            let maintenance = maintenance?;
            if !report.problems.is_empty() {
                let dropped = crate::restore::target::drop_database(&maintenance, &new_name).await;
                return Err(Error::new(
                    ErrorKind::CheckFailed,
                    format!(
                        "the restored database `{new_name}` did not verify, so `{}` was not changed: {}",
                        plan.database,
                        report.problems.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
                    ),
                )
                .and_hint(match dropped {
                    Ok(()) => format!("`{new_name}` was dropped again"),
                    Err(e) => format!("`{new_name}` is still there ({e}); drop it"),
                }));
            }
            progress.step(&format!("swapping: `{}` aside as `{aside}`, `{new_name}` into its name", plan.database));
            let swapped = swap::swap(
                &maintenance,
                &options.connect,
                &plan.database,
                &new_name,
                &aside,
                options.sessions,
                &options.cancel,
            )
            .await;
            match swapped {
                Ok(s) => {
                    sessions = Some(s);
                    options.cancel.set_at_stake(Some(format!(
                        "the swap had finished: `{}` holds the snapshot `{}`, and the database it replaced is kept as \
                         `{aside}`; the health check did not finish: `pgsafe check -d {} --against {}` runs it",
                        plan.database,
                        snapshot.id,
                        crate::cluster::sh_word(&plan.database),
                        snapshot.id
                    )));
                }
                Err(e) if e.kind() == ErrorKind::NeedsAttention => return Err(e),
                Err(e) => {
                    let dropped = crate::restore::target::drop_database(&maintenance, &new_name).await;
                    return Err(e.and_hint(match dropped {
                        Ok(()) => format!("the restored database `{new_name}` was dropped again"),
                        Err(d) => format!("the restored database `{new_name}` is still there ({d}); drop it"),
                    }));
                }
            }
            progress.step(&format!(
                "comparing the replaced database `{aside}` with the snapshot: what the rollback discarded"
            ));
            counted = count_replaced(options, &archive, &aside).await.map_err(|e| e.to_string());
            kept_as = Some(aside);
            report
        }
        Mode::InPlace => {
            let extra: Vec<&crate::schema::SchemaObject> = plan.extra.iter().collect();
            restore_options.drop_also = crate::restore::plan::drop_statements_cascading(&extra);
            let slot = count_first(&mut restore_options, options, &archive, &plan.extra);
            progress.step(&format!("restoring the snapshot into `{}` in one transaction", plan.database));
            let report =
                in_transaction(archive, &restore_options, options.lock, progress.clone(), &plan.database).await?;
            // The objects' changes are the plan's, and those made since, which the transaction drops too.
            counted = take(&slot).map(|c| {
                let mut objects = plan.changes.objects.clone();
                objects.extend(c.objects);
                objects.sort_by(|a, b| a.object.cmp(&b.object));
                Changes { objects, ..c }
            });
            report
        }
        Mode::Tables(_) => {
            restore_options.filters = tables_filters(&options.mode)?.unwrap_or_default();
            let slot = count_first(&mut restore_options, options, &archive, &[]);
            progress.step("restoring the tables' rows in one transaction");
            let report =
                in_transaction(archive, &restore_options, options.lock, progress.clone(), &plan.database).await?;
            counted = take(&slot);
            report
        }
    };
    let (changes, changes_not_recounted) = match counted {
        Ok(changes) => (changes, None),
        Err(why) => {
            tracing::warn!(
                "what the rollback discarded could not be counted once other sessions were shut out ({why}): \
                 the report gives the plan's count, taken before, and rows committed since were discarded too"
            );
            (plan.changes.clone(), Some(why))
        }
    };
    drop(lock);
    // The rollback is done: a check that cannot run is said in the report, not a failed rollback.
    let mut health_not_run = None;
    let health = if options.health_check {
        progress.step(&format!("checking the health of `{}` against the snapshot", plan.database));
        let check = crate::check::CheckOptions {
            connect: options.connect.clone(),
            against: Some(against),
            sql: Vec::new(),
            max_row_loss: None,
            long_running: crate::check::DEFAULT_LONG_RUNNING,
            cancel: options.cancel.clone(),
            by_migration: Vec::new(),
        };
        let (started_at, started) = (Timestamp::now(), Instant::now());
        let result = crate::check::check(&check).await;
        let entry = crate::check::audit_entry(&check, started_at, started.elapsed().as_secs_f64(), &result);
        if let Err(e) = store.append_audit(&entry) {
            tracing::warn!("the health check's audit line could not be written: {e}");
        }
        match result {
            Ok(report) => Some(report),
            Err(e) => {
                health_not_run = Some(e.to_string());
                None
            }
        }
    } else {
        None
    };
    Ok(RollbackReport {
        database: plan.database.clone(),
        mode: plan.mode,
        snapshot: snapshot.id.clone(),
        safety_snapshot: safety.clone(),
        replaced_database_kept_as: kept_as,
        sessions,
        restore,
        changes,
        changes_not_recounted,
        health,
        health_not_run,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What a swap discarded: the replaced database, kept as `aside`, compared with the snapshot right after
/// the rename. Since the database was closed to new sessions and the others had left, nothing wrote to
/// it; under its new name, no application's session finds it. Its schema's changes are counted too.
async fn count_replaced(options: &RollbackOptions, archive: &ArchiveReader, aside: &str) -> Result<Changes> {
    let session = Session::open(&options.connect.with_dbname(aside), None).await?.cancelled_by(&options.cancel);
    let whole = changes::Scope::Whole;
    let (changes, _) = changes::compare(&session, archive, &restore_options(options), whole, &options.renamed).await?;
    Ok(changes)
}

/// Where the count of a rollback in one transaction lands: each attempt's, the last one's kept.
type CountSlot = Arc<std::sync::Mutex<std::result::Result<Changes, String>>>;

/// Makes a rollback's restore in one transaction (in place, tables) count what it discards first, in
/// that transaction, once it holds the locks of the tables (see [`changes::count_locked`]): the tables'
/// changes, in the slot returned. `extra`: the objects a rollback in place drops.
///
/// A count that fails on an error of the server other than a lock not granted in time is rolled back to
/// its savepoint (its locks released, the restore takes its own) and said in the slot: the rollback goes
/// on with the plan's count.
fn count_first(
    restore_options: &mut RestoreOptions,
    options: &RollbackOptions,
    archive: &Arc<ArchiveReader>,
    extra: &[crate::schema::SchemaObject],
) -> CountSlot {
    let slot: CountSlot = Arc::new(std::sync::Mutex::new(Err("not counted".to_owned())));
    let (into, archive, extra) = (slot.clone(), archive.clone(), extra.to_vec());
    let (mode, compare_options, renamed) = (options.mode.clone(), restore_options.clone(), options.renamed.clone());
    restore_options.first_in_transaction =
        Some(crate::restore::FirstInTransaction(Arc::new(move |session: &Session| {
            let (into, archive, extra, mode, compare_options, renamed) =
                (into.clone(), archive.clone(), extra.clone(), mode.clone(), compare_options.clone(), renamed.clone());
            Box::pin(async move {
                let filters = tables_filters(&mode)?;
                let scope = match &filters {
                    Some(f) => changes::Scope::Tables(f),
                    None => changes::Scope::Whole,
                };
                let whole = matches!(scope, changes::Scope::Whole);
                session.batch("SAVEPOINT pgsafe_count").await?;
                let counted = changes::count_locked(session, &archive, &compare_options, scope, &extra, &renamed).await;
                let mut result = match counted {
                    Ok(changes) => {
                        session.batch("RELEASE SAVEPOINT pgsafe_count").await?;
                        Ok(changes)
                    }
                    // A lock not had is the attempt's to retry; a session gone or cancelled ends it.
                    Err(e) if e.sqlstate().is_none() || e.sqlstate() == Some(SqlState::LOCK_NOT_AVAILABLE) => {
                        return Err(e);
                    }
                    Err(e) => {
                        session.batch("ROLLBACK TO SAVEPOINT pgsafe_count; RELEASE SAVEPOINT pgsafe_count").await?;
                        Err(e.to_string())
                    }
                };
                // A rollback in place drops what the snapshot lacks: what another session made since the
                // plan read the database goes too, counted and said, once the tables are locked. (What is
                // made after this, while the restore runs, is not seen: no lock keeps new objects out.)
                if whole {
                    drop_arrived(session, &archive, &extra, &renamed, &mut result).await?;
                }
                *into.lock().unwrap_or_else(|p| p.into_inner()) = result;
                Ok(())
            })
        })));
    slot
}

/// Drops, in the rollback's transaction, the objects the snapshot lacks that were made after the plan
/// (`known`: those the plan found), adding them and their tables' rows to `counted`. An error of the
/// server other than a lock not granted leaves them, rolled back to a savepoint, with a warning.
async fn drop_arrived(
    session: &Session,
    archive: &ArchiveReader,
    known: &[crate::schema::SchemaObject],
    renamed: &changes::Renamed,
    counted: &mut std::result::Result<Changes, String>,
) -> Result<()> {
    session.batch("SAVEPOINT pgsafe_arrived").await?;
    let dropped = async {
        let arrived = changes::arrived_since(session, archive, known).await?;
        if arrived.is_empty() {
            return Ok(arrived);
        }
        let mut found = Changes::default();
        changes::count_arrived(session, &mut found, &arrived, renamed).await?;
        let objects: Vec<&crate::schema::SchemaObject> = arrived.iter().collect();
        session.batch(&crate::restore::plan::drop_statements_cascading(&objects).join("\n")).await?;
        if let Ok(changes) = counted {
            changes.tables.extend(found.tables);
            changes.tables.sort_by(|a, b| a.table.cmp(&b.table));
            changes.objects.extend(found.objects);
        }
        Ok::<_, Error>(arrived)
    }
    .await;
    match dropped {
        Ok(arrived) => {
            session.batch("RELEASE SAVEPOINT pgsafe_arrived").await?;
            if !arrived.is_empty() {
                tracing::warn!(
                    "made since the rollback's plan, and dropped with what the snapshot lacks: {}",
                    arrived.iter().map(|o| o.label()).collect::<Vec<_>>().join(", ")
                );
            }
            Ok(())
        }
        Err(e) if e.sqlstate().is_none() || e.sqlstate() == Some(SqlState::LOCK_NOT_AVAILABLE) => Err(e),
        Err(e) => {
            session.batch("ROLLBACK TO SAVEPOINT pgsafe_arrived; RELEASE SAVEPOINT pgsafe_arrived").await?;
            tracing::warn!(
                "what was made since the rollback's plan could not be looked for ({e}): an object made since \
                 then that the snapshot lacks is left in place"
            );
            Ok(())
        }
    }
}

/// The count in `slot`, taken out.
fn take(slot: &CountSlot) -> std::result::Result<Changes, String> {
    std::mem::replace(&mut *slot.lock().unwrap_or_else(|p| p.into_inner()), Err("not counted".to_owned()))
}

/// A restore in one transaction (in place, tables): a problem rolls all of it back.
async fn in_transaction(
    archive: Arc<ArchiveReader>,
    options: &RestoreOptions,
    lock: LockPolicy,
    progress: Arc<dyn Progress>,
    database: &str,
) -> Result<RestoreReport> {
    let mut attempt = 0;
    let report = loop {
        let restored = crate::restore::restore(archive.clone(), options, progress.clone()).await;
        match restored {
            Err(e) if e.sqlstate() == Some(SqlState::LOCK_NOT_AVAILABLE) && attempt < lock.retries => {
                let wait = crate::migrate::apply::backoff(attempt);
                attempt += 1;
                progress.step(&format!(
                    "another session held a lock the rollback needs for more than {}ms; everything was rolled back, trying again in {:.1}s ({attempt} of {} retries)",
                    lock.timeout.as_millis(),
                    wait.as_secs_f64(),
                    lock.retries
                ));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = options.cancel.cancelled() => {}
                }
            }
            Err(e) => {
                let e = e
                    .context(format!(
                        "the rollback's transaction failed and was rolled back; `{database}` was not changed"
                    ))
                    .retain_hint(|line| !restore_option_hint(line));
                return Err(crate::migrate::apply::out_of_attempts(e, "rollback", attempt + 1, lock));
            }
            Ok(report) => break report,
        }
    };
    if report.rolled_back || !report.problems.is_empty() {
        return Err(Error::new(
            ErrorKind::CheckFailed,
            format!(
                "the rollback did not verify and was rolled back; `{database}` was not changed: {}",
                report.problems.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            ),
        ));
    }
    Ok(report)
}
