//! `pgsafe migrate`: lint -> snapshot -> dry run -> apply -> check, and a rollback by itself when anything
//! fails after the snapshot.
//!
//! ```text
//! what to apply (files, a folder's pending migrations, or another tool's command)
//!   -> lint (SQL; reads the catalog only: refused, no snapshot is taken)
//!   -> snapshot (pinned while the migration runs; its id said first)
//!   -> dry run (SQL, rolled back; refused, the snapshot is removed)
//!   -> apply: each file in a transaction under lock_timeout, retried on lock timeouts; or the command
//!   -> ANALYZE what was created or rewritten -> check against the snapshot
//!   -> done (snapshot unpinned; --snapshot-after; --observe keeps checking)
//! any failure after the snapshot -> rollback to it (swap, or in place without CREATEDB) -> check
//! however the run ends: the snapshot unpinned, unless the rollback failed too (then pinned, saying so)
//! ```
//! The whole run holds the database's lock ([`DatabaseLock`]): a second `migrate` or a `rollback` of
//! the database refuses at once. Every step appends an audit line (`command: migrate`, its `step`, the
//! migration).

pub mod apply;
pub mod flyway;
pub mod runner;
pub mod scratch;
pub mod tools;
pub mod values;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;

pub use apply::LockPolicy;
use apply::Piece;
use runner::{FolderStatus, MigrationFile};

use crate::cancel::Cancel;
use crate::check::{CheckOptions, CheckReport};
use crate::dump::DumpOptions;
use crate::error::{Error, ErrorKind, Result};
use crate::format::TableName;
use crate::pg::{ConnectOptions, Session};
use crate::progress::Progress;
use crate::rollback::{DatabaseLock, Mode, RollbackOptions, RollbackReport, SessionPolicy};
use crate::store::operation::SnapshotOptions;
use crate::store::retention::RetentionPolicy;
use crate::store::{AuditCommand, AuditEntry, LockHolder, Outcome, SnapshotId, Store};

/// What a migration applies.
#[derive(Debug, Clone)]
pub enum Source {
    /// These SQL files, in this order, each in its own transaction; not tracked.
    Files(Vec<PathBuf>),
    /// A folder of `NNNN_name.sql` files: its pending migrations, tracked in the table.
    Folder(PathBuf),
    /// Another tool's command (`-- npx prisma migrate deploy`).
    Command(Vec<String>),
}

/// What `pgsafe migrate` does.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    pub connect: ConnectOptions,
    pub source: Source,
    /// The folder's tracking table.
    pub table: TableName,
    /// The tracking table of the tool the folder is written for, where it is not the tool's default.
    pub tool_table: Option<TableName>,
    /// Lint SQL migrations first; errors refuse them unless `force`.
    pub lint: bool,
    /// Rehearse SQL migrations first (`pgsafe dry-run`); a failure refuses them unless `force`, data loss
    /// unless `allow_data_loss` (or `force`).
    pub dry_run: bool,
    /// Go on despite lint errors and a rehearsal that fails or loses data.
    pub force: bool,
    /// Go on despite a rehearsal that loses data.
    pub allow_data_loss: bool,
    /// `--down`: run the down scripts of the latest applied migration (`None`), or of every applied
    /// migration after this version (`--to VERSION`), newest first.
    pub down: Option<Option<String>>,
    /// `--baseline VERSION`: record every pending migration of the folder up to this version as applied,
    /// without running any (a database migrated by hand before the folder was adopted), and apply
    /// nothing else.
    pub baseline: Option<String>,
    /// Flyway's configuration (its files, its environment variables, `--placeholder`), for a folder
    /// written for Flyway: its placeholders' values and its history table's place.
    pub flyway: flyway::FlywayConfig,
    pub lock: LockPolicy,
    /// Take the snapshot first (the default). Without it, only what one transaction can undo is run.
    pub snapshot: bool,
    /// Also keep a snapshot of the migrated state.
    pub snapshot_after: bool,
    /// Keep checking this long after success; roll back when the database turns unhealthy.
    pub observe: Option<Duration>,
    /// How often `observe` checks.
    pub observe_every: Duration,
    /// Retention for the snapshots it takes; `None` for none.
    pub retention: Option<RetentionPolicy>,
    /// A swap rollback waits this long for other sessions, then terminates them.
    pub terminate_after: Duration,
    pub jobs: usize,
    pub lock_wait: Duration,
    pub cancel: Cancel,
}

/// How a migration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    /// Nothing to apply.
    UpToDate,
    /// Applied, and the database is healthy.
    Applied,
    /// Refused before any change (drift, lint, dry run, nothing it could undo).
    Refused,
    /// Failed after the snapshot, and the snapshot was restored: the database is as it was.
    RolledBack,
    /// Failed, and the rollback failed too: the database needs a person.
    NeedsAttention,
    /// `--baseline`: migrations recorded as applied without being run (`MigrateReport::baselined`).
    Baselined,
}

/// One step, as it went.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub outcome: Outcome,
    pub detail: String,
    pub seconds: f64,
}

/// What a migration did.
#[derive(Debug, Clone, Serialize)]
pub struct MigrateReport {
    pub database: String,
    pub ending: Ending,
    /// The snapshot taken before anything changed.
    pub snapshot: Option<SnapshotId>,
    /// The snapshot was removed again: the dry run refused the migration, so nothing was applied.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub snapshot_removed: bool,
    /// What was applied (file labels, or the command), in order; rolled back when `ending` says so.
    pub applied: Vec<String>,
    /// `--baseline`: the migrations recorded as applied without being run, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub baselined: Vec<String>,
    /// Tables analyzed after the migration (created or rewritten by it).
    pub analyzed: Vec<String>,
    pub health: Option<CheckReport>,
    /// The lint of the SQL migrations (allowed findings included).
    pub lint: Option<crate::lint::LintReport>,
    /// The rehearsal of the SQL migrations.
    pub dry_run: Option<crate::dryrun::DryRunReport>,
    pub rollback: Option<RollbackReport>,
    /// After a rollback: the tables whose rows it replaced or dropped, as its report counted them once no
    /// other session could write (see [`RollbackReport::changes`]): rows written since the snapshot, by
    /// the migration or by other sessions (the application's writes during the migration, `--observe`
    /// and the rollback itself are lost with the migration's).
    pub discarded: Vec<crate::rollback::TableChange>,
    /// The snapshot of the migrated state (`--snapshot-after`).
    pub snapshot_after: Option<SnapshotId>,
    /// Why it was refused, failed or rolled back.
    pub reason: Option<String>,
    /// When the database needs a person: the command that puts it back as it was before the migration.
    pub next_step: Option<String>,
    pub steps: Vec<Step>,
    pub seconds: f64,
}

impl MigrateReport {
    /// A report of `database` before anything was done: up to date, nothing applied.
    pub fn new(database: &str) -> MigrateReport {
        MigrateReport {
            database: database.to_owned(),
            ending: Ending::UpToDate,
            snapshot: None,
            snapshot_removed: false,
            applied: Vec::new(),
            baselined: Vec::new(),
            analyzed: Vec::new(),
            health: None,
            lint: None,
            dry_run: None,
            rollback: None,
            discarded: Vec::new(),
            snapshot_after: None,
            reason: None,
            next_step: None,
            steps: Vec::new(),
            seconds: 0.0,
        }
    }
}

/// One unit of work to apply.
struct Unit {
    label: String,
    file: Option<MigrationFile>,
    path: Option<PathBuf>,
    /// What runs, where it is not `path` as written: a Flyway file with its placeholders filled, or the
    /// down section of a goose, dbmate or sql-migrate file alone, at its lines. Findings still name `path`.
    text: Option<String>,
    /// A down script: it forgets `file` in the tracking table instead of recording it.
    down: bool,
    /// Its statements (SQL units), split by PostgreSQL's parser.
    statements: Vec<crate::dryrun::Statement>,
    /// What writes it to the tracking table of the tool the folder is written for, as that tool would.
    tool_record: String,
}

/// Runs a migration. `Err` only when it could not start (bad input, no connection, another migration or
/// rollback of the database running) or failed before the snapshot changed anything; every other ending
/// is in the report.
///
/// The snapshot taken before it is pinned while it runs, and unpinned when it ends, however it ends (an
/// error, an interruption, a refusal, a rollback), so that retention treats it as any other snapshot;
/// except when the database NEEDS ATTENTION (the rollback failed): the snapshot is the state to go back
/// to, and stays pinned, saying so.
pub async fn migrate(
    store: &dyn Store,
    options: &MigrateOptions,
    progress: Arc<dyn Progress>,
) -> Result<MigrateReport> {
    // Held from before anything is read until after the run's own rollback: another run's snapshot
    // taken meanwhile would be of a half-applied state, and its rollback would discard this run's work.
    let lock = DatabaseLock::take(&options.connect, "pgsafe migrate").await?;
    warn_of_abandoned_pins(store, options);
    let mut pinned = None;
    let result = run(store, options, progress, &lock, &mut pinned).await;
    if let Some(id) = pinned {
        let attention = matches!(&result, Ok(r) if r.ending == Ending::NeedsAttention);
        let pin = |meta: &crate::store::SnapshotMeta| {
            attention.then(|| {
                format!(
                    "`{}` NEEDS ATTENTION: migration `{}` failed and so did its rollback to this snapshot",
                    meta.database,
                    meta.migration.as_deref().unwrap_or("?")
                )
            })
        };
        if let Err(e) = set_pin(store, options, &id, pin) {
            tracing::warn!("snapshot `{id}` could not be unpinned after the migration: {e}");
        }
    }
    lock.release().await;
    result
}

async fn run(
    store: &dyn Store,
    options: &MigrateOptions,
    progress: Arc<dyn Progress>,
    lock: &DatabaseLock,
    pinned: &mut Option<SnapshotId>,
) -> Result<MigrateReport> {
    let started = Instant::now();
    let database = options.connect.dbname().to_owned();
    let mut report = MigrateReport::new(&database);
    let session = Session::open(&options.connect, None).await?.cancelled_by(&options.cancel);
    // The migration runs under the role's and database's settings, as under psql.
    session.use_own_settings().await?;
    let mut log = Log { store, options, migration: None, changes: None };

    // What to apply.
    let units: Vec<Unit> = match &options.source {
        Source::Files(paths) => paths
            .iter()
            .map(|p| Unit {
                label: p.display().to_string(),
                file: None,
                path: Some(p.clone()),
                text: None,
                down: false,
                statements: Vec::new(),
                tool_record: String::new(),
            })
            .collect(),
        Source::Command(argv) => {
            vec![Unit {
                label: argv.join(" "),
                file: None,
                path: None,
                text: None,
                down: false,
                statements: Vec::new(),
                tool_record: String::new(),
            }]
        }
        Source::Folder(dir) => {
            let status =
                folder_status(&session, dir, &options.table, options.tool_table.as_ref(), &options.flyway).await?;
            if let Some(reason) =
                drift(&status).or_else(|| status.tool_failed.clone().map(|why| format!("{why}; nothing was applied")))
            {
                report.ending = Ending::Refused;
                report.reason = Some(reason.clone());
                log.step(&mut report, "plan", Err(reason), 0.0);
                return finish(report, started);
            }
            if let Some(version) = &options.baseline {
                let at = Instant::now();
                report.baselined = baseline(&session, options, &status, version, progress.as_ref()).await?;
                if !report.baselined.is_empty() {
                    report.ending = Ending::Baselined;
                    let detail = format!("recorded as applied without running them: {}", report.baselined.join(", "));
                    log.step(&mut report, "baseline", Ok(detail), at.elapsed().as_secs_f64());
                }
                return finish(report, started);
            }
            if let Some(table) = &status.tool_table {
                if !status.tool_unrecorded.is_empty() {
                    tracing::warn!(
                        "pgsafe's `{}` records {} as applied and {table} does not (undone by that tool since, or \
                         applied by a pgsafe that did not write the tool's table); pgsafe counts them as applied: \
                         to apply one again, delete its row from `{}`",
                        options.table,
                        status.tool_unrecorded.join(", "),
                        options.table
                    );
                }
                // Applied and not in pgsafe's table: the tool's alone; in the tool's: all but those only
                // pgsafe's records.
                let only_theirs = status.applied.iter().filter(|a| a.tool.is_some()).count();
                let theirs = status.applied.len() - status.tool_unrecorded.len();
                progress.step(&format!(
                    "{table} records {theirs} of the folder's migrations as applied (pgsafe's table records {}); \
                     what pgsafe applies or undoes is written there too",
                    status.applied.len() - only_theirs
                ));
            }
            // A pending migration older than one applied (a branch merged after a later one was applied)
            // is applied, as Rails' and pgsafe's runners do, where Flyway by default refuses and golang-migrate
            // never applies it: said, since it was written against an older schema.
            if options.down.is_none()
                && let Some(latest) = status
                    .applied
                    .iter()
                    .max_by(|a, b| runner::version_key(&a.version).cmp(&runner::version_key(&b.version)))
            {
                let older: Vec<String> = status
                    .pending
                    .iter()
                    .filter(|f| runner::version_key(&f.version) < runner::version_key(&latest.version))
                    .map(MigrationFile::label)
                    .collect();
                if !older.is_empty() {
                    tracing::warn!(
                        "applied out of order: {} older than `{}`, which is applied already; each was written \
                         against the schema before it, and the lint and the dry run check it against this one",
                        older.iter().map(|l| format!("`{l}` is")).collect::<Vec<_>>().join(", "),
                        latest.label()
                    );
                }
            }
            let mut units: Vec<Unit> = match &options.down {
                // Flyway's repeatable migrations due run after the versioned ones, as Flyway runs them.
                None => status
                    .pending
                    .iter()
                    .chain(&status.repeatables_due)
                    .map(|f| Unit {
                        label: f.label(),
                        path: Some(f.path.clone()),
                        text: None,
                        file: Some(f.clone()),
                        down: false,
                        statements: Vec::new(),
                        tool_record: String::new(),
                    })
                    .collect(),
                Some(to) => match down_units(&status, to.as_deref(), &database) {
                    Ok(units) => units,
                    Err(reason) => {
                        report.ending = Ending::Refused;
                        report.reason = Some(reason.clone());
                        log.step(&mut report, "plan", Err(reason), 0.0);
                        return finish(report, started);
                    }
                },
            };
            // A folder written for a tool, migrated by pgsafe on a database without the tool's table: the
            // first migration makes it, with what pgsafe applied before, so that the tool agrees too.
            let tool_table = match (&options.down, units.is_empty()) {
                (None, false) => tool_table_to_write(&session, &status, &options.flyway).await?,
                _ => status.tool_table.clone(),
            };
            // A Flyway folder's `${...}` placeholders, filled as Flyway fills them, in the texts that run;
            // one without a value refuses the run, as Flyway refuses it.
            if tools::folder_tool(&status.files) == Some(tools::Tool::Flyway) {
                let table = tool_table.as_ref();
                if let Err(reason) = fill_placeholders(&session, options, table, &mut units).await? {
                    report.ending = Ending::Refused;
                    report.reason = Some(reason.clone());
                    log.step(&mut report, "plan", Err(reason), 0.0);
                    return finish(report, started);
                }
            }
            if let Some(table) = &tool_table {
                let mut first = table.to_make;
                for u in &mut units {
                    let Some(f) = &u.file else { continue };
                    let at = status.files.iter().position(|g| g.version == f.version);
                    let previous = at.and_then(|i| i.checked_sub(1)).map(|i| &status.files[i]);
                    u.tool_record = tools::record_sql(table, f, previous, u.down)?;
                    if std::mem::take(&mut first) {
                        let applied = status.applied_files();
                        u.tool_record = tools::made(table, &applied)? + &u.tool_record;
                        progress.step(&format!(
                            "the database has no {}; `{}` makes it, as {} makes it, in its transaction, with the {} \
                             migrations applied before, so that the tool, run later, agrees",
                            table,
                            u.label,
                            table.tool.name(),
                            applied.len()
                        ));
                    }
                }
            }
            units
        }
    };
    if units.is_empty() {
        progress.step(&format!("`{database}` is up to date: nothing to apply"));
        return finish(report, started);
    }
    // Every SQL file is split by PostgreSQL's parser before anything happens: one that does not parse
    // stops the migration here, exit 2, with its file:line:column.
    let mut units = units;
    for u in &mut units {
        if let Some(path) = &u.path {
            let text = match u.text.take() {
                Some(text) => text,
                None => std::fs::read_to_string(path).map_err(|e| Error::io("reading the migration", path, e))?,
            };
            u.statements = crate::dryrun::split_text(path, &text)?;
            u.text = Some(text);
        }
        // pgsafe commits each file's transactions: what a file means to discard would be kept.
        crate::dryrun::refuse_uncommitted(&u.statements)?;
    }
    let server_version = session.server_version();
    let autocommit: Vec<&str> =
        units.iter().filter(|u| one_transaction_cannot_hold(u, server_version)).map(|u| u.label.as_str()).collect();
    let name = match units.len() {
        1 => units[0].label.clone(),
        n => format!("{} (+{} more)", units[0].label, n - 1),
    };
    log.migration = Some(name.clone());
    let one_transaction_refuses = if options.snapshot {
        None
    } else if matches!(options.source, Source::Command(_)) {
        Some("`--skip-snapshot` runs only what one transaction can undo, and a command's changes cannot be".to_owned())
    } else if let Some(label) = autocommit.first() {
        Some(format!(
            "`--skip-snapshot` runs only what one transaction can undo, and `{label}` holds a statement that cannot run in a transaction, or commits transactions of its own"
        ))
    } else {
        // One transaction begins in one set of modes: files that ask for different ones cannot share it.
        let first = modes(&units[0]);
        units.iter().map(|u| (u, modes(u))).find(|(_, m)| *m != first).map(|(u, m)| {
            format!(
                "`--skip-snapshot` runs every file in one transaction, and `{}` asks for other modes (`{}`) than `{}` (`{}`)",
                u.label,
                m.begin(),
                units[0].label,
                first.begin()
            )
        })
    };
    if let Some(reason) = one_transaction_refuses {
        report.ending = Ending::Refused;
        report.reason = Some(reason.clone());
        log.step(&mut report, "plan", Err(reason), 0.0);
        return finish(report, started);
    }

    // An encrypted store on a machine without the identity takes the snapshot, but then can neither
    // check the database against it nor roll back to it: refused before anything happens.
    if options.snapshot && !store.keys().recipients.is_empty() && store.keys().keyring.is_empty() {
        let reason = format!(
            "the store `{}` encrypts its snapshots (`PGSAFE_RECIPIENTS`) and no identity was given to read them back: `{name}` could be applied, but not checked against its snapshot nor rolled back to it; nothing was applied",
            store.location()
        );
        log.step(&mut report, "plan", Err(reason.clone()), 0.0);
        return Err(Error::new(ErrorKind::Identity, reason).with_hint(
            "pass `--identity FILE` (or set `PGSAFE_IDENTITY`) naming an age identity of one of the store's recipients",
        ));
    }

    // Lint, which only reads the catalog: a migration it refuses costs no snapshot. Down scripts drop
    // what their migrations made by design: asked for by name, they are linted and rehearsed for the
    // report only.
    let linted = lint_step(options, &units, &mut report, &mut log, &progress).await?;
    if let Some(reason) = linted.filter(|_| options.down.is_none()) {
        report.ending = Ending::Refused;
        report.reason = Some(reason);
        return finish(report, started);
    }

    // The snapshot, before anything changes (the rehearsal runs the statements, rolled back).
    if options.snapshot {
        let t = Instant::now();
        progress.step(&format!("taking the snapshot of `{database}` before `{name}`"));
        let label = snapshot_label(&options.source, &units[0].label);
        let taken =
            crate::store::operation::snapshot(store, &snapshot_options(options, &label, &name), progress.clone()).await;
        match taken {
            Ok(t2) => {
                progress.step(&format!("snapshot `{}`", t2.snapshot.id));
                *pinned = Some(t2.snapshot.id.clone());
                report.snapshot = Some(t2.snapshot.id.clone());
                options.cancel.set_at_stake(Some(format!(
                    "`{database}` may be part way through the migration; `pgsafe rollback -d {} {} --yes` puts it \
                     back as it was before",
                    crate::cluster::sh_word(&database),
                    t2.snapshot.id
                )));
                log.step(&mut report, "snapshot", Ok(format!("`{}`", t2.snapshot.id)), t.elapsed().as_secs_f64());
            }
            Err(e) => {
                log.step(&mut report, "snapshot", Err(e.to_string()), t.elapsed().as_secs_f64());
                return Err(e.context(format!("the snapshot before `{name}` failed, so nothing was applied")));
            }
        }
    }

    // Rehearse SQL: refused before any change, unless forced. Nothing was applied then, and the snapshot
    // taken for it would only push an older one out of retention: it is removed.
    let verdict = rehearse_step(options, &units, &mut report, &mut log, &progress).await?;
    if let Some(reason) = verdict {
        report.ending = Ending::Refused;
        report.reason = Some(reason);
        remove_unneeded_snapshot(store, pinned, &mut report, &mut log, "refused", "nothing was applied");
        return finish(report, started);
    }

    // Apply, while no other run may: the lock is still held.
    lock.still_held().await.map_err(|e| {
        Error::new(ErrorKind::InvalidInput, format!("nothing was applied: {e}"))
            .with_hint("run the migration again once no other migration or rollback of the database runs")
    })?;
    let t = Instant::now();
    let before = apply::relations(&session).await?;
    let snapshot = report.snapshot.clone();
    let mut committed = false;
    let applied = apply_all(&session, options, &units, snapshot.as_ref(), &progress, &mut report, &mut committed).await;
    let failure = match applied {
        Err(e) => {
            // A statement cancelled because pgsafe was interrupted says only "canceling statement due to
            // user request": say what cancelled it.
            let e = if options.cancel.is_cancelled() { e.context("interrupted (SIGINT or SIGTERM)") } else { e };
            log.step(&mut report, "apply", Err(e.to_string()), t.elapsed().as_secs_f64());
            Some(e.to_string())
        }
        Ok(()) => {
            let detail = report.applied.join(", ");
            log.step(&mut report, "apply", Ok(detail), t.elapsed().as_secs_f64());
            None
        }
    };

    // Statistics and health. The tables the migration dropped or renamed are not missing.
    let mut changes = apply::TableChanges::default();
    let failure = match failure {
        Some(f) => Some(f),
        None => {
            match apply::relations(&session).await {
                Ok(after) => {
                    changes = apply::TableChanges::between(&before, &after);
                    log.changes = Some(changes.clone());
                    report.analyzed = apply::analyze_changed(&session, &before, &after).await.unwrap_or_else(|e| {
                        tracing::warn!("ANALYZE after the migration failed: {e}");
                        Vec::new()
                    });
                }
                Err(e) => tracing::warn!("reading the tables after the migration failed, so none was analyzed: {e}"),
            }
            let t = Instant::now();
            progress.step(&format!("checking the health of `{database}`"));
            // A down migration drops what its migration made: the snapshot's tables are not all expected.
            let against = if options.down.is_some() { None } else { report.snapshot.as_ref() };
            match check(store, options, against, &changes).await {
                Ok(h) if h.healthy => {
                    log.step(&mut report, "check", Ok("healthy".into()), t.elapsed().as_secs_f64());
                    report.health = Some(h);
                    None
                }
                Ok(h) => {
                    let errors = error_list(&h);
                    log.step(&mut report, "check", Err(format!("unhealthy: {errors}")), t.elapsed().as_secs_f64());
                    report.health = Some(h);
                    Some(format!("the database is unhealthy after the migration: {errors}"))
                }
                Err(e) => {
                    log.step(&mut report, "check", Err(e.to_string()), t.elapsed().as_secs_f64());
                    Some(format!("the health check could not run: {e}"))
                }
            }
        }
    };

    // Observe.
    let failure = match (failure, options.observe) {
        (None, Some(window)) => {
            let against = if options.down.is_some() { None } else { snapshot.as_ref() };
            observe(store, options, against, &changes, window, &progress, &mut report, &mut log).await
        }
        (failure, _) => failure,
    };

    match failure {
        None => {
            report.ending = Ending::Applied;
            // Unpinned before the snapshot after it, whose retention may then remove it.
            if let Some(id) = pinned.take() {
                set_pin(store, options, &id, |_| None)?;
            }
            if options.snapshot_after {
                let t = Instant::now();
                let after = crate::store::operation::snapshot(
                    store,
                    &SnapshotOptions {
                        pinned: None,
                        pinned_by: None,
                        ..snapshot_options(options, "after-migration", &name)
                    },
                    progress.clone(),
                )
                .await;
                match after {
                    Ok(s) => {
                        log.step(
                            &mut report,
                            "snapshot-after",
                            Ok(format!("`{}`", s.snapshot.id)),
                            t.elapsed().as_secs_f64(),
                        );
                        report.snapshot_after = Some(s.snapshot.id);
                    }
                    Err(e) => {
                        // The migration is in place and healthy: a failed second snapshot is said, not undone.
                        log.step(&mut report, "snapshot-after", Err(e.to_string()), t.elapsed().as_secs_f64());
                        tracing::warn!("the snapshot after the migration failed: {e}");
                    }
                }
            }
        }
        Some(reason) => {
            report.reason = Some(reason.clone());
            // A SQL migration whose first transaction failed committed nothing: there is nothing to undo.
            let nothing_committed = !committed && !matches!(options.source, Source::Command(_));
            match report.snapshot.clone() {
                None => {
                    // Without a snapshot everything ran in one transaction, which rolled back.
                    report.ending = Ending::RolledBack;
                    report.applied.clear();
                }
                Some(_) if nothing_committed => {
                    progress.step("the migration's transaction rolled back: nothing was changed, nothing to restore");
                    report.ending = Ending::RolledBack;
                    // Nothing to fall back on it for: removed, as a refused migration's is, so that attempts
                    // at a failing migration do not push older snapshots out of retention.
                    remove_unneeded_snapshot(store, pinned, &mut report, &mut log, "failed", "nothing was changed");
                }
                Some(id) => {
                    // A table the migration renamed is no new table: its rows come back under the old name.
                    let renamed = match apply::relations(&session).await {
                        Ok(after) => apply::TableChanges::between(&before, &after).renamed,
                        Err(e) => {
                            tracing::warn!(
                                "reading the tables after the migration failed, so a table it renamed is counted as new: {e}"
                            );
                            Vec::new()
                        }
                    };
                    // The rollback's swap must not wait for the migration's own session.
                    drop(session);
                    progress.step(&format!("the migration failed ({reason}); rolling `{database}` back to `{id}`"));
                    options.cancel.set_at_stake(Some(format!(
                        "`{database}` holds what the migration committed ({}), and its rollback to `{id}` may have \
                         left a copy being restored (`{database}_rollback_...`) on the server; `pgsafe rollback -d {} \
                         {id} --yes` puts it back as it was before",
                        if report.applied.is_empty() { "nothing".to_owned() } else { report.applied.join(", ") },
                        crate::cluster::sh_word(&database)
                    )));
                    let t = Instant::now();
                    let mut tried = Mode::Swap;
                    match roll_back(store, options, &id, renamed, lock, progress.clone(), &mut tried).await {
                        Ok(r) => {
                            log.step(
                                &mut report,
                                "rollback",
                                Ok(format!("to `{id}`, {}", r.mode)),
                                t.elapsed().as_secs_f64(),
                            );
                            report.ending = Ending::RolledBack;
                            report.discarded = r.changes.tables_losing_rows().cloned().collect();
                            report.rollback = Some(r);
                        }
                        Err(e) => {
                            log.step(&mut report, "rollback", Err(e.to_string()), t.elapsed().as_secs_f64());
                            report.ending = Ending::NeedsAttention;
                            // The way this run's role could roll back: in place when it may not swap.
                            let how = if tried == Mode::InPlace { " --in-place" } else { "" };
                            report.next_step = Some(format!(
                                "pgsafe rollback -d {} {id} --yes{how} (with this run's connection options and store)",
                                crate::cluster::sh_word(&database)
                            ));
                            report.reason = Some(format!(
                                "{reason}; then the rollback to `{id}` failed: {e}{}",
                                e.hint().map(|h| format!(" ({h})")).unwrap_or_default()
                            ));
                        }
                    }
                }
            }
        }
    }
    finish(report, started)
}

/// The label of the snapshot taken before a migration: `before-` and the first file's name, or for a
/// command its program's name and the words after it that name what it does (`npx prisma migrate
/// deploy` gives `before-npx-prisma-migrate`), not its options or a script's text.
fn snapshot_label(source: &Source, first: &str) -> String {
    let what = match source {
        Source::Command(argv) => {
            let program = argv.first().map(|p| p.rsplit('/').next().unwrap_or(p)).unwrap_or("command");
            let words = argv
                .iter()
                .skip(1)
                .take_while(|w| {
                    !w.starts_with('-')
                        && w.len() <= 24
                        && w.chars().all(|c| c.is_ascii_alphanumeric() || "_.:".contains(c))
                })
                .take(2);
            std::iter::once(program).chain(words.map(String::as_str)).collect::<Vec<_>>().join("-")
        }
        _ => {
            // A folder per migration (diesel's `2020-01-02-123456_add_x/up.sql`, Prisma's
            // `20200102123456_add_x/migration.sql`): the folder names it, not its file.
            let mut parts = first.rsplit('/');
            let file = parts.next().unwrap_or(first);
            match parts.next() {
                Some(folder) if ["up.sql", "migration.sql", "down.sql"].contains(&file) && !folder.is_empty() => {
                    folder.to_owned()
                }
                _ => file.to_owned(),
            }
        }
    };
    format!("before-{what}")
}

/// Runs a file as it is written, for one that one transaction cannot hold: each of its own `BEGIN ...
/// COMMIT` blocks in a transaction of its own, in the modes it asks for (under `lock_timeout`, retried as
/// a file's transaction is), every statement outside a block on its own, under `lock_timeout` and retried
/// on lock timeouts too. A block holding a statement that cannot run in a transaction runs statement by
/// statement, as before. `committed` turns true once anything may have been committed (before a statement
/// that cannot run in a transaction, which may leave something behind when it fails): a failure after that
/// needs the snapshot.
async fn as_written(
    session: &Session,
    u: &Unit,
    lock: LockPolicy,
    cancel: &Cancel,
    committed: &mut bool,
) -> Result<()> {
    use crate::dryrun::TransactionRun;
    let server_version = session.server_version();
    let cannot_be_in_one = |st: &&crate::dryrun::Statement| crate::dryrun::outside_transaction(&st.sql, server_version);
    session.batch(&format!("SET lock_timeout = '{}ms'", lock.timeout.as_millis())).await?;
    let result = async {
        for run in crate::dryrun::transaction_runs(&u.statements, |st| st.sql.as_str()) {
            cancel.check("the migration")?;
            let alone = match run {
                TransactionRun::Block(block) if !block.statements.iter().any(cannot_be_in_one) => {
                    let statements: Vec<crate::dryrun::Statement> = block.statements.into_iter().cloned().collect();
                    let line = statements.first().map_or(0, |st| st.line);
                    let sql = pieces(&statements);
                    apply::in_transaction(session, &[(None, sql.as_slice())], "", &block.modes, lock, cancel)
                        .await
                        .map_err(|e| e.context(format!("`{}`, in its transaction from line {line}", u.label)))?;
                    *committed = true;
                    continue;
                }
                TransactionRun::Block(block) => block.statements,
                TransactionRun::Alone(st) => vec![st],
            };
            for st in alone {
                cancel.check("the migration")?;
                if cannot_be_in_one(&st) || may_commit_inside(&st.sql) {
                    *committed = true;
                }
                statement_alone(session, u, st, lock).await?;
                *committed = true;
            }
        }
        Ok(())
    }
    .await;
    // Back to the pinned 0 of every pgsafe session (RESET would give the role's or database's own).
    let _ = session.batch("SET lock_timeout = 0").await;
    result
}

/// Runs one statement of `u` on its own, retried on lock timeouts (but a concurrent index build).
async fn statement_alone(session: &Session, u: &Unit, st: &crate::dryrun::Statement, lock: LockPolicy) -> Result<()> {
    // A concurrent index build that fails leaves its index behind, INVALID: tried again, it fails
    // on the name (or, with `IF NOT EXISTS`, keeps the invalid index and says nothing).
    // A DO block or a procedure that commits inside is not tried again either: what it committed before
    // the lock timeout would be done twice.
    let retries = if builds_index_concurrently(&st.sql) || may_commit_inside(&st.sql) { 0 } else { lock.retries };
    let mut attempt = 0;
    let piece = match &pieces(std::slice::from_ref(st))[..] {
        [piece] => piece.clone(),
        _ => return Ok(()),
    };
    loop {
        match piece.run(session).await {
            Ok(()) => return Ok(()),
            Err(e) if e.sqlstate() == Some(crate::SqlState::LOCK_NOT_AVAILABLE) && attempt < retries => {
                attempt += 1;
                let wait = Duration::from_millis(500 << attempt.min(4));
                tracing::warn!("a lock was not granted within {:?}; trying again in {wait:?}", lock.timeout);
                tokio::time::sleep(wait).await;
            }
            Err(e) if e.sqlstate() == Some(crate::SqlState::LOCK_NOT_AVAILABLE) && may_commit_inside(&st.sql) => {
                return Err(e.context(format!("`{}` line {}", u.label, st.line)).with_hint(
                    "a `DO` block or procedure that commits inside is not tried again after a lock timeout, since \
                     what it committed before would be done twice",
                ));
            }
            Err(e) if e.sqlstate() == Some(crate::SqlState::LOCK_NOT_AVAILABLE) && retries == 0 => {
                return Err(e.context(format!("`{}` line {}", u.label, st.line)).with_hint(
                    "a concurrent index build waits for every transaction older than it: one stayed open \
                     longer than `--lock-timeout`; it is not tried again, since the index it leaves behind \
                     is INVALID (the rollback removes it)",
                ));
            }
            // A COPY names its line (and its rows') already.
            Err(e) if matches!(piece, Piece::Copy { .. } | Piece::CopyOut { .. }) => {
                return Err(e.context(format!("`{}`", u.label)));
            }
            Err(e) => return Err(e.context(format!("`{}` line {}", u.label, st.line))),
        }
    }
}

/// Whether the file of `u` cannot run in one transaction: a statement of it cannot run in one, or it
/// commits transactions of its own (it has a `BEGIN ... COMMIT` block and more beside it).
fn one_transaction_cannot_hold(u: &Unit, server_version: u32) -> bool {
    crate::dryrun::runs_as_written(&u.statements, |st| st.sql.as_str(), server_version)
}

/// The modes of the transaction that runs the file of `u` (when one can hold it), as its `BEGIN` asks for
/// them: pgsafe's own `BEGIN` takes the place of the file's.
fn modes(u: &Unit) -> crate::dryrun::TransactionModes {
    crate::dryrun::file_modes(&u.statements, |st| st.sql.as_str())
}

/// Whether `sql` may commit inside, where it runs outside a transaction block: a `DO` block whose body
/// says `COMMIT` or `ROLLBACK`, or a `CALL` (whose procedure's body is not here to read). Before it runs,
/// its work may be committed; tried again, committed work would be done twice.
fn may_commit_inside(sql: &str) -> bool {
    let Ok(parsed) = pg_query::parse(sql, 0) else { return false };
    parsed.protobuf.stmts.iter().any(|raw| match raw.stmt.as_ref().and_then(|s| s.node.as_ref()) {
        Some(pg_query::NodeEnum::CallStmt(_)) => true,
        Some(pg_query::NodeEnum::DoStmt(_)) => {
            let upper = sql.to_ascii_uppercase();
            let words = upper.split(|c: char| !c.is_ascii_alphanumeric() && c != '_');
            words.into_iter().any(|w| w == "COMMIT" || w == "ROLLBACK")
        }
        _ => false,
    })
}

/// Whether `sql` is a `CREATE INDEX CONCURRENTLY`.
fn builds_index_concurrently(sql: &str) -> bool {
    let Ok(parsed) = pg_query::parse(sql, 0) else { return false };
    parsed.protobuf.stmts.iter().any(|raw| {
        matches!(raw.stmt.as_ref().and_then(|s| s.node.as_ref()), Some(pg_query::NodeEnum::IndexStmt(i)) if i.concurrent)
    })
}

/// The SQL files among `units` (a command has none), which lint and the rehearsal read, each with the
/// text that runs (read by the time the units are split).
fn sql_files(units: &[Unit]) -> Vec<(PathBuf, String)> {
    units.iter().filter_map(|u| Some((u.path.clone()?, u.text.clone().unwrap_or_default()))).collect()
}

/// Lints the SQL migrations with the database's facts: the reason to refuse them, if any.
async fn lint_step(
    options: &MigrateOptions,
    units: &[Unit],
    report: &mut MigrateReport,
    log: &mut Log<'_>,
    progress: &Arc<dyn Progress>,
) -> Result<Option<String>> {
    let files = sql_files(units);
    let mut refuse = None;
    if options.lint && !files.is_empty() {
        let t = Instant::now();
        progress.step("linting the migrations");
        let mut parsed = Vec::new();
        for (path, text) in files {
            parsed.push(crate::lint::parse(crate::lint::SourceFile { name: path.display().to_string(), text })?);
        }
        let facts = crate::lint::read_facts(&options.connect, &crate::lint::named(&parsed)).await?;
        let lint_options = crate::lint::LintOptions { assume_lock_timeout: true, ..Default::default() };
        let lint = crate::lint::lint(&parsed, &lint_options, Some(&facts));
        let errors: Vec<String> = lint
            .findings
            .iter()
            .filter(|f| f.level == crate::lint::Level::Error)
            .map(|f| format!("{}:{} {}", f.file, f.line, f.rule))
            .collect();
        let allowed: Vec<String> = lint
            .allowed
            .iter()
            .map(|a| format!("{}:{} {} allowed ({})", a.finding.file, a.finding.line, a.finding.rule, a.reason))
            .collect();
        let mut detail = format!("{} finding(s), {} error(s)", lint.findings.len(), errors.len());
        if !allowed.is_empty() {
            detail.push_str(&format!("; {}", allowed.join("; ")));
        }
        // `--allow-data-loss` goes past errors that only lose data: the dry run counts what they lose.
        let only_loses_data = lint
            .findings
            .iter()
            .filter(|f| f.level == crate::lint::Level::Error)
            .all(|f| crate::lint::rules::LOSES_DATA_ONLY.contains(&f.rule));
        let went_on = match (options.force, options.allow_data_loss && only_loses_data) {
            (true, _) => Some("--force"),
            (false, true) => Some("--allow-data-loss"),
            (false, false) => None,
        };
        let outcome = match (errors.is_empty(), went_on) {
            (true, _) => Ok(detail),
            (false, Some(flag)) => {
                let error = format!("lint found {} error(s): {}", errors.len(), errors.join(", "));
                log.forced(report, "lint", error, format!("{detail}: {}; `{flag}` went on", errors.join(", ")), t);
                report.lint = Some(lint);
                return Ok(None);
            }
            (false, None) => {
                let flags = if only_loses_data { "`--allow-data-loss` or `--force`" } else { "`--force`" };
                refuse = Some(format!(
                    "lint found {} error(s): {}; nothing was applied ({flags} goes on)",
                    errors.len(),
                    errors.join(", ")
                ));
                Err(format!("{detail}: {}", errors.join(", ")))
            }
        };
        log.step(report, "lint", outcome, t.elapsed().as_secs_f64());
        report.lint = Some(lint);
    }
    Ok(refuse)
}

/// Rehearses the SQL migrations in a transaction that is rolled back: the reason to refuse them, if any.
async fn rehearse_step(
    options: &MigrateOptions,
    units: &[Unit],
    report: &mut MigrateReport,
    log: &mut Log<'_>,
    progress: &Arc<dyn Progress>,
) -> Result<Option<String>> {
    let files = sql_files(units);
    let mut refuse = None;
    if options.dry_run && !files.is_empty() {
        let t = Instant::now();
        progress.step("rehearsing the migrations in a transaction that is rolled back");
        let dry_options = crate::dryrun::DryRunOptions {
            connect: options.connect.clone(),
            files: files.iter().map(|(path, _)| path.clone()).collect(),
            texts: files.into_iter().collect(),
            lock_timeout: options.lock.timeout,
            statement_timeout: crate::dryrun::DEFAULT_STATEMENT_TIMEOUT,
            max_rewrite_bytes: crate::dryrun::DEFAULT_MAX_REWRITE_BYTES,
            max_compare_rows: crate::dryrun::DEFAULT_MAX_COMPARE_ROWS,
            // Without a snapshot, every file runs in one transaction.
            one_transaction: !options.snapshot,
            cancel: options.cancel.clone(),
        };
        // A lock another session holds stops the rehearsal as it would stop the migration: it is tried
        // again as the migration's transactions are, with the same backoff.
        let mut attempt = 0;
        let rehearsed = async {
            loop {
                let rehearsal = crate::dryrun::dry_run(&dry_options).await?;
                let blocked =
                    rehearsal.statements.iter().any(|st| st.outcome == crate::dryrun::StatementOutcome::LockTimeout);
                if !blocked || attempt >= options.lock.retries {
                    return Ok::<_, Error>(rehearsal);
                }
                let wait = apply::backoff(attempt);
                tracing::warn!("the rehearsal waited too long for a lock; trying again in {wait:?}");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = options.cancel.cancelled() => {}
                }
                options.cancel.check("the migration")?;
                attempt += 1;
            }
        }
        .await;
        // A rehearsal that could not run (interrupted, the connection gone) is a step that failed, in the
        // audit log too: the run ends here, and `status` must not show the snapshot as its last word.
        let rehearsal = match rehearsed {
            Ok(rehearsal) => rehearsal,
            Err(e) => {
                log.step(report, "dry-run", Err(e.to_string()), t.elapsed().as_secs_f64());
                return Err(e);
            }
        };
        let verdict = match (rehearsal.would_fail, rehearsal.loses_data) {
            (true, _) if !rehearsal.stopped() => Some("it would leave inserts failing"),
            (true, _) => Some("it would fail"),
            // Not a failure of the migration (it runs without a statement timeout), but nothing is known
            // of that statement and those after it.
            (false, _) if rehearsal.timed_out => Some(
                "a statement ran longer than the rehearsal's time limit (60s, its own: the migration has none), so what it and the rest do is not known",
            ),
            (false, true) => Some("it would lose data"),
            (false, false) => None,
        };
        let allowed = match verdict {
            None => true,
            // A down script drops what its migration made by design: its losses are for the report. One
            // that would fail is refused as any migration is.
            Some(v) if options.down.is_some() && !rehearsal.would_fail && !rehearsal.timed_out => {
                let detail = format!("{v} (a down script, rehearsed for the report; the snapshot holds what it drops)");
                log.step(report, "dry-run", Ok(detail), t.elapsed().as_secs_f64());
                report.dry_run = Some(rehearsal);
                return Ok(None);
            }
            Some(_) if options.force => true,
            Some(_) => !rehearsal.would_fail && !rehearsal.timed_out && options.allow_data_loss,
        };
        let outcome = match (verdict, allowed) {
            (None, _) => Ok("it would run and lose nothing".to_owned()),
            (Some(v), true) => {
                // Recorded as failed and gone past, not as ok: `status` and the log say the override.
                let flag = if rehearsal.would_fail || rehearsal.timed_out || !options.allow_data_loss {
                    "--force"
                } else {
                    "--allow-data-loss"
                };
                log.forced(report, "dry-run", v.to_owned(), format!("{v}; `{flag}` went on"), t);
                report.dry_run = Some(rehearsal);
                return Ok(refuse);
            }
            (Some(v), false) => {
                refuse = Some(format!(
                    "the dry run says {v} (its report follows; `dry_run` in `--json`); nothing was applied ({})",
                    if rehearsal.timed_out && !rehearsal.would_fail {
                        "`--skip-dry-run` or `--force` goes on"
                    } else if rehearsal.would_fail {
                        "`--force` goes on"
                    } else {
                        "`--allow-data-loss` goes on"
                    }
                ));
                Err(v.to_owned())
            }
        };
        log.step(report, "dry-run", outcome, t.elapsed().as_secs_f64());
        report.dry_run = Some(rehearsal);
    }
    Ok(refuse)
}

/// Removes the snapshot a migration took (`pinned`) when the run ended with nothing to fall back on it for
/// (`outcome`: `refused`, `failed`; `because`: nothing was applied, nothing was changed), so that attempts
/// at such a migration do not push older snapshots out of retention. One that cannot be removed stays,
/// pinned, with a warning.
fn remove_unneeded_snapshot(
    store: &dyn Store,
    pinned: &mut Option<SnapshotId>,
    report: &mut MigrateReport,
    log: &mut Log<'_>,
    outcome: &str,
    because: &str,
) {
    let Some(id) = pinned.take() else { return };
    match store.remove(&id) {
        Ok(()) => {
            report.snapshot_removed = true;
            log.step(report, "snapshot", Ok(format!("`{id}` removed: {because}")), 0.0);
        }
        Err(e) => {
            tracing::warn!("snapshot `{id}` of the {outcome} migration could not be removed: {e}");
            *pinned = Some(id);
        }
    }
}

/// Fills the `${NAME}` placeholders of a Flyway folder's files to apply, as Flyway does before it runs
/// them: the values Flyway's configuration gives ([`flyway::FlywayConfig`]: its files, its environment
/// variables, `--placeholder NAME=VALUE`; names compared without case, as Flyway compares them; its
/// prefix and suffix where configured), and Flyway's own `${flyway:defaultSchema}` (the schema of its
/// table), `${flyway:user}`, `${flyway:database}`, `${flyway:timestamp}`, `${flyway:filename}`,
/// `${flyway:table}` and `${flyway:workingDirectory}`. A file that holds one runs, in the lint, the dry run and the apply, with
/// the values in it (findings still name the file); its checksum stays the file's own, as Flyway's does
/// for a versioned migration. `Ok(Err(reason))` when a placeholder has no value, naming the file, line
/// and name: run as written, it would fail, or write `${NAME}` into the data.
async fn fill_placeholders(
    session: &Session,
    options: &MigrateOptions,
    table: Option<&tools::ToolTable>,
    units: &mut [Unit],
) -> Result<std::result::Result<(), String>> {
    let config = &options.flyway;
    let mut values = config.values(flyway::builtins(config, Some(session), table.map(|t| &t.table)).await?);
    for u in units.iter_mut() {
        let Some(path) = u.path.clone() else { continue };
        let text = match &u.text {
            Some(text) => text.clone(),
            None => std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?,
        };
        // The text read is kept, filled or not: the units' split reads it rather than the file again.
        match config.fill_file(&path, &text, &mut values) {
            Ok(filled) => u.text = Some(filled.unwrap_or(text)),
            Err(reason) => return Ok(Err(format!("{reason}; nothing was applied"))),
        }
    }
    Ok(Ok(()))
}

/// The tool's table that a run applying migrations writes to: the database's, or, when it has none and
/// the folder is written for a tool, the one the run makes ([`tools::to_make`]).
async fn tool_table_to_write(
    session: &Session,
    status: &FolderStatus,
    flyway: &flyway::FlywayConfig,
) -> Result<Option<tools::ToolTable>> {
    match (&status.tool_table, tools::folder_tool(&status.files)) {
        (Some(found), _) => Ok(Some(found.clone())),
        (None, Some(tool)) => tools::to_make(session, tool, &configured(tool, flyway)).await,
        (None, None) => Ok(None),
    }
}

/// Where the tool's configuration puts its table: Flyway's `table` and default schema, for a Flyway folder.
fn configured(tool: tools::Tool, flyway: &flyway::FlywayConfig) -> tools::Configured {
    match tool {
        tools::Tool::Flyway => {
            tools::Configured { schema: flyway.default_schema().map(str::to_owned), name: flyway.table.clone() }
        }
        _ => tools::Configured::default(),
    }
}

/// `--baseline VERSION`: records every pending migration of the folder up to `version` as applied,
/// without running any, in one transaction: in pgsafe's table (made if need be) and, for a folder written
/// for a tool, in the tool's table as the tool records them (made as in a run that applies, when the
/// database has none). Returns their labels; none when every migration up to `version` is recorded
/// already. A version the folder lacks is refused (exit 2) before anything.
async fn baseline(
    session: &Session,
    options: &MigrateOptions,
    status: &FolderStatus,
    version: &str,
    progress: &dyn Progress,
) -> Result<Vec<String>> {
    let key = runner::version_key(version);
    if !status.files.iter().any(|f| runner::version_key(&f.version) == key) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`--baseline {version}`: the folder has no migration of that version"),
        )
        .with_hint("`pgsafe migrations -d DB DIR` lists the folder's versions"));
    }
    let to_record: Vec<&MigrationFile> =
        status.pending.iter().filter(|f| runner::version_key(&f.version) <= key).collect();
    if to_record.is_empty() {
        progress.step(&format!("every migration up to {version} is recorded as applied already: nothing to baseline"));
        return Ok(Vec::new());
    }
    let mut sql = runner::create_table_sql(&options.table);
    if let Some(table) = tool_table_to_write(session, status, &options.flyway).await? {
        if table.to_make {
            sql.push_str(&tools::made(&table, &status.applied_files())?);
        }
        for f in &to_record {
            sql.push_str(&tools::record_sql(&table, f, None, false)?);
        }
    }
    for f in &to_record {
        sql.push_str(&runner::record_sql(&options.table, f, 0.0, None));
    }
    session.batch("BEGIN").await?;
    if let Err(e) = session.batch(&sql).await {
        let _ = session.batch("ROLLBACK").await;
        return Err(e.context(format!("recording the migrations up to {version} as applied; nothing was recorded")));
    }
    session.batch("COMMIT").await?;
    let labels: Vec<String> = to_record.iter().map(|f| f.label()).collect();
    progress.step(&format!("recorded as applied without running them: {}", labels.join(", ")));
    Ok(labels)
}

fn finish(mut report: MigrateReport, started: Instant) -> Result<MigrateReport> {
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The folder against its tracking table.
///
/// When the folder is written for another tool (golang-migrate, diesel, Prisma, Flyway, dbmate, goose,
/// sql-migrate) and the database has that tool's tracking table, the migrations that table records as
/// applied count as applied too (`Applied::tool` names it), and one it records as failed part way is
/// `tool_failed`.
pub async fn folder_status(
    session: &Session,
    dir: &std::path::Path,
    table: &TableName,
    named: Option<&TableName>,
    flyway: &flyway::FlywayConfig,
) -> Result<FolderStatus> {
    let files = runner::scan(dir)?;
    let repeatables = runner::scan_repeatables(dir)?;
    let mut applied = runner::read_applied(session, table).await?;
    // pgsafe's rows of repeatable migrations are no versions: kept apart, by version (`R__name`).
    let ran_again: std::collections::HashMap<String, String> = applied
        .iter()
        .filter(|a| a.version.starts_with(runner::REPEATABLE))
        .map(|a| (a.version.clone(), a.checksum.clone()))
        .collect();
    applied.retain(|a| !a.version.starts_with(runner::REPEATABLE));
    let mut tool_table = None;
    let mut tool_failed = None;
    let mut unrecorded = Vec::new();
    let tool = tools::folder_tool(&files);
    if let Some(r) = repeatables.first()
        && tool != Some(tools::Tool::Flyway)
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "`{}` is a Flyway repeatable migration, in a folder whose migrations are not all Flyway's",
                r.path.display()
            ),
        )
        .with_hint("a folder of Flyway's `V1__name.sql` migrations runs its `R__name.sql` after them"));
    }
    if let (None, Some(named)) = (tool, named) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`--tool-table {named}`: the folder `{}` is not written for one tool", dir.display()),
        )
        .with_hint("all its migrations in one tool's layout: golang-migrate, diesel, Prisma, Flyway, dbmate, goose or sql-migrate"));
    }
    if let Some(tool) = tool
        && let Some(found) = tools::find(session, tool, named, &configured(tool, flyway)).await?
    {
        let (theirs, failed) = tools::applied(session, &found, &files).await?;
        let key = |a: &runner::Applied| runner::version_key(&a.version).0;
        let recorded: std::collections::HashSet<_> = theirs.iter().map(key).collect();
        let ours: std::collections::HashSet<_> = applied.iter().map(key).collect();
        // Applied by pgsafe, not in the tool's table: undone by the tool since, or applied by a pgsafe that
        // did not write the tool's table. Counted as applied (applying it again could apply it twice), and
        // said.
        unrecorded = applied
            .iter()
            .filter(|a| !recorded.contains(&key(a)) && files.iter().any(|f| f.version == a.version))
            .map(|a| a.label())
            .collect();
        applied.extend(theirs.into_iter().filter(|a| !ours.contains(&key(a))));
        applied.sort_by(|a, b| runner::version_key(&a.version).cmp(&runner::version_key(&b.version)));
        tool_table = Some(found);
        tool_failed = failed;
    }
    // A repeatable migration runs when it never ran or changed since it last did, as the tool's table (or,
    // without one, pgsafe's) records it.
    let mut due = Vec::new();
    let recorded = match &tool_table {
        Some(found) if found.tool == tools::Tool::Flyway && !repeatables.is_empty() => {
            Some(tools::flyway_repeatables(session, found).await?)
        }
        _ => None,
    };
    for r in &repeatables {
        let run = match &recorded {
            Some(recorded) => tools::repeatable_due(r, recorded)?,
            None => ran_again.get(&r.version) != Some(&r.checksum),
        };
        if run {
            due.push(r.clone());
        }
    }
    let mut status = runner::compare(files, applied);
    status.repeatables = repeatables;
    status.repeatables_due = due;
    status.tool_table = tool_table;
    status.tool_failed = tool_failed;
    status.tool_unrecorded = unrecorded;
    Ok(status)
}

/// The down scripts to run, newest first: the latest applied migration's, or those of every migration
/// applied after `to`. A migration without one refuses the whole run, naming the snapshot taken before it.
///
/// A down section of the migration's own file (goose, dbmate, sql-migrate) is the unit's text, alone at its
/// lines, so that lint, the rehearsal and the apply step read it as they read a down script, and name the
/// file.
fn down_units(status: &FolderStatus, to: Option<&str>, database: &str) -> std::result::Result<Vec<Unit>, String> {
    let mut targets: Vec<&runner::Applied> = match to {
        None => status.applied.iter().last().into_iter().collect(),
        Some(to) => {
            status.applied.iter().filter(|a| runner::version_key(&a.version) > runner::version_key(to)).collect()
        }
    };
    targets.reverse();
    let mut units = Vec::new();
    for a in targets {
        let Some(f) = status.files.iter().find(|f| f.version == a.version) else {
            return Err(format!(
                "migration {}_{} is applied but its file is gone from the folder; nothing was changed",
                a.version, a.name
            ));
        };
        let Some(down) = &f.down else {
            let offer = match &a.snapshot {
                Some(id) => format!(
                    "; the snapshot taken before it is `{id}`: `pgsafe rollback -d {database} {id}` puts that state back (later changes are lost)"
                ),
                None => String::new(),
            };
            return Err(format!("migration `{}` has no down script ({}){offer}", f.label(), f.down_name()));
        };
        // A down section of the migration's own file runs alone, at its lines, named by the file.
        let text = if *down == f.path {
            let text = std::fs::read_to_string(down).map_err(|e| format!("reading `{}`: {e}", down.display()))?;
            Some(crate::sql::down_only(&text).unwrap_or_default())
        } else {
            None
        };
        units.push(Unit {
            label: format!("{} (down)", f.label()),
            path: Some(down.clone()),
            text,
            file: Some(f.clone()),
            down: true,
            statements: Vec::new(),
            tool_record: String::new(),
        });
    }
    Ok(units)
}

/// Why a folder cannot be migrated as it is: applied files that changed.
fn drift(status: &FolderStatus) -> Option<String> {
    if status.changed.is_empty() {
        return None;
    }
    let names: Vec<String> = status.changed.iter().map(|(f, _)| format!("`{}`", f.path.display())).collect();
    Some(format!(
        "{} changed since it was applied (its checksum differs from the one recorded then): {}; nothing was applied",
        if names.len() == 1 { "a migration file" } else { "migration files" },
        names.join(", ")
    ))
}

fn snapshot_options(options: &MigrateOptions, label: &str, migration: &str) -> SnapshotOptions {
    let label: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .take(60)
        .collect();
    let holder = LockHolder::this_process("pgsafe migrate");
    SnapshotOptions {
        dump: DumpOptions::whole(options.connect.clone(), options.jobs.max(1), options.cancel.clone()),
        label: Some(label),
        migration: Some(migration.to_owned()),
        protects: None,
        pinned: Some(format!(
            "migration `{migration}` is running (pid {} on {}, since {})",
            holder.pid,
            holder.host,
            holder.since.strftime("%Y-%m-%dT%H:%M:%SZ")
        )),
        pinned_by: Some(holder),
        verify: true,
        retention: options.retention.clone(),
        lock_wait: options.lock_wait,
    }
}

/// Applies every unit in order: SQL files each in a transaction (without a snapshot, all in one), a
/// folder's migrations recorded in its table in the same transaction, or the command.
async fn apply_all(
    session: &Session,
    options: &MigrateOptions,
    units: &[Unit],
    snapshot: Option<&SnapshotId>,
    progress: &Arc<dyn Progress>,
    report: &mut MigrateReport,
    committed: &mut bool,
) -> Result<()> {
    if let Source::Command(argv) = &options.source {
        *committed = true;
        progress.step(&format!("running `{}`", argv.join(" ")));
        return match apply::run_command(argv, &options.connect).await? {
            Some(0) => {
                report.applied.push(argv.join(" "));
                Ok(())
            }
            code => Err(Error::new(
                ErrorKind::CheckFailed,
                match code {
                    Some(code) => format!("`{}` exited with code {code}", argv.join(" ")),
                    None => format!("`{}` was ended by a signal", argv.join(" ")),
                },
            )),
        };
    }
    // The tracking table is made in the transaction of the first migration recorded in it, so that a
    // migration that fails leaves nothing behind, the table included.
    let table = match options.source {
        Source::Folder(_) => runner::create_table_sql(&options.table),
        _ => String::new(),
    };
    // A file's own BEGIN and COMMIT are left out: pgsafe runs each file in a transaction of its own.
    let read = |u: &Unit| -> Result<Vec<Piece>> { Ok(pieces(&u.statements)) };
    if !options.snapshot {
        // Nothing else could undo a failure half way: one transaction for all of it.
        let mut all = Vec::new();
        let mut records = table.clone();
        for u in units {
            all.push((u.label.as_str(), read(u)?));
            match (&u.file, u.down) {
                (Some(f), false) => records.push_str(&runner::record_sql(&options.table, f, 0.0, None)),
                (Some(f), true) => records.push_str(&runner::forget_sql(&options.table, &f.version)),
                (None, _) => {}
            }
            records.push_str(&u.tool_record);
        }
        progress.step("applying every migration in one transaction (no snapshot to fall back on)");
        let parts: Vec<(Option<&str>, &[Piece])> =
            all.iter().map(|(label, pieces)| (Some(*label), pieces.as_slice())).collect();
        // The files ask for the same modes: those that do not are refused before anything runs.
        let modes = units.first().map(modes).unwrap_or_default();
        apply::in_transaction(session, &parts, &records, &modes, options.lock, &options.cancel).await?;
        *committed = true;
        report.applied.extend(units.iter().map(|u| u.label.clone()));
        return Ok(());
    }
    for u in units {
        progress.step(&format!("applying `{}`", u.label));
        let sql = read(u)?;
        let started = Instant::now();
        let server_version = session.server_version();
        if one_transaction_cannot_hold(u, server_version) {
            // A statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY), or transactions
            // of the file's own (a value `ALTER TYPE ... ADD VALUE` added, used after its COMMIT): the
            // file runs as written, each of its transactions and every other statement committed on its
            // own, then it is recorded. What a transaction cannot undo, the snapshot does.
            as_written(session, u, options.lock, &options.cancel, committed).await?;
            let record = match &u.file {
                Some(f) if u.down => runner::forget_sql(&options.table, &f.version),
                Some(f) => {
                    table.clone()
                        + &runner::record_sql(
                            &options.table,
                            f,
                            started.elapsed().as_secs_f64(),
                            snapshot.map(SnapshotId::as_str),
                        )
                }
                None => String::new(),
            } + &u.tool_record;
            if !record.is_empty() {
                session.batch(&record).await?;
            }
            report.applied.push(u.label.clone());
            continue;
        }
        // The record's duration is known only after the statements ran: it is updated in the same
        // transaction.
        let record = match &u.file {
            Some(f) if u.down => runner::forget_sql(&options.table, &f.version),
            Some(f) => {
                table.clone()
                    + &runner::record_sql(&options.table, f, 0.0, snapshot.map(SnapshotId::as_str))
                    + &format!(
                        "UPDATE {} SET seconds = extract(epoch FROM clock_timestamp() - now()) WHERE version = {};",
                        crate::sql::quote_qualified(&options.table),
                        crate::sql::quote_literal(&f.version)
                    )
            }
            None => String::new(),
        } + &u.tool_record;
        let parts = [(Some(u.label.as_str()), sql.as_slice())];
        apply::in_transaction(session, &parts, &record, &modes(u), options.lock, &options.cancel).await?;
        *committed = true;
        tracing::info!("applied `{}` in {:.1}s", u.label, started.elapsed().as_secs_f64());
        report.applied.push(u.label.clone());
    }
    Ok(())
}

/// The statements of a file as the server takes them, without its own transaction control: batches,
/// and each `COPY ... FROM STDIN` with its rows on its own.
fn pieces(statements: &[crate::dryrun::Statement]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, st) in statements.iter().enumerate() {
        let piece = match &st.copy_rows {
            Some(rows) => {
                Piece::Copy { sql: st.sql.clone(), rows: rows.text.clone(), line: st.line, rows_line: rows.line }
            }
            None if crate::dryrun::copies_to_stdout(&st.sql) => Piece::CopyOut { sql: st.sql.clone(), line: st.line },
            None => continue,
        };
        pieces.push(Piece::Batch(joined(&statements[start..i])));
        pieces.push(piece);
        start = i + 1;
    }
    pieces.push(Piece::Batch(joined(&statements[start..])));
    pieces.retain(|p| !matches!(p, Piece::Batch(sql) if sql.is_empty()));
    pieces
}

/// The statements of a file as one batch, without its own transaction control: each ends with a `;` of
/// its own line, since a statement's text may end in a `--` comment (`create table t (id int) -- why`
/// before the file's `;` on the next line), which would swallow a `;` put after it.
fn joined(statements: &[crate::dryrun::Statement]) -> String {
    statements
        .iter()
        .filter(|st| !crate::dryrun::is_transaction_control(&st.sql))
        .map(|st| format!("{}\n;\n", st.sql.trim_end().trim_end_matches(';')))
        .collect()
}

/// The health check after the migration, against its snapshot: a table of the snapshot that the migration
/// dropped (`changes`) is named, not missing, and one it renamed is checked under its new name.
async fn check(
    store: &dyn Store,
    options: &MigrateOptions,
    snapshot: Option<&SnapshotId>,
    changes: &apply::TableChanges,
) -> Result<CheckReport> {
    let mut by_migration = Vec::new();
    let against = match snapshot {
        Some(id) => {
            let mut meta = crate::store::operation::with_tables(store, store.get(id)?)?;
            by_migration = crate::check::by_migration(&mut meta, &changes.dropped, &changes.renamed);
            Some(meta)
        }
        None => None,
    };
    let check = CheckOptions {
        connect: options.connect.clone(),
        against,
        sql: Vec::new(),
        max_row_loss: None,
        long_running: crate::check::DEFAULT_LONG_RUNNING,
        cancel: options.cancel.clone(),
        by_migration,
    };
    crate::check::check(&check).await
}

fn error_list(h: &CheckReport) -> String {
    let errors: Vec<String> = h
        .findings
        .iter()
        .filter(|f| f.level == crate::check::Level::Error)
        .map(|f| format!("{}{}", f.check, f.object.as_deref().map(|o| format!(" `{o}`")).unwrap_or_default()))
        .collect();
    errors.join(", ")
}

/// Checks every `observe_every` for `window`; the first unhealthy round ends it with the reason to roll
/// back, after the plan of what that rollback loses is said.
#[allow(clippy::too_many_arguments)]
async fn observe(
    store: &dyn Store,
    options: &MigrateOptions,
    snapshot: Option<&SnapshotId>,
    changes: &apply::TableChanges,
    window: Duration,
    progress: &Arc<dyn Progress>,
    report: &mut MigrateReport,
    log: &mut Log<'_>,
) -> Option<String> {
    let started = Instant::now();
    progress.step(&format!("observing for {}", humantime::format_duration(window)));
    while started.elapsed() < window {
        let wait = options.observe_every.min(window.saturating_sub(started.elapsed()));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = options.cancel.cancelled() => return None,
        }
        match check(store, options, snapshot, changes).await {
            Ok(h) if h.healthy => continue,
            Ok(h) => {
                let errors = error_list(&h);
                log.step(report, "observe", Err(format!("unhealthy: {errors}")), started.elapsed().as_secs_f64());
                report.health = Some(h);
                return Some(format!("the database turned unhealthy while observed: {errors}"));
            }
            Err(e) => tracing::warn!("a check while observing could not run: {e}"),
        }
    }
    log.step(
        report,
        "observe",
        Ok(format!("healthy for {}", humantime::format_duration(window))),
        window.as_secs_f64(),
    );
    None
}

/// Puts the snapshot back: a swap when the role may make and rename databases, else in place; in place
/// too when a swap could not be made and changed nothing. `renamed`: the snapshot's tables the migration
/// renamed (the old name, the new), whose rows the rollback brings back rather than discards.
async fn roll_back(
    store: &dyn Store,
    options: &MigrateOptions,
    id: &SnapshotId,
    renamed: Vec<(String, String)>,
    lock: &DatabaseLock,
    progress: Arc<dyn Progress>,
    tried: &mut Mode,
) -> Result<RollbackReport> {
    let database = options.connect.dbname();
    let session = Session::open(&options.connect, None).await?;
    let rights = crate::rollback::swap::missing_rights(&session, database).await?;
    drop(session);
    let mode = match rights {
        None => Mode::Swap,
        Some(_) => Mode::InPlace,
    };
    *tried = mode.clone();
    // Not over another run's work: without the lock, one may have run since.
    lock.still_held().await?;
    let rollback = RollbackOptions {
        connect: options.connect.clone(),
        snapshot: Some(id.clone()),
        // In place replaces the failed state for good: keep it as a snapshot first. A swap keeps the
        // failed database itself.
        safety_snapshot: mode == Mode::InPlace,
        mode,
        jobs: options.jobs,
        sessions: SessionPolicy { wait: options.terminate_after, terminate: true },
        lock_wait: options.lock_wait,
        // The migration's own lock timeout, with at least a rollback's retries: giving up leaves the
        // database migrated part way.
        lock: LockPolicy {
            timeout: options.lock.timeout,
            retries: options.lock.retries.max(crate::rollback::ROLLBACK_LOCK_RETRIES),
        },
        health_check: true,
        renamed,
        cancel: Cancel::new(),
    };
    let plan = crate::rollback::plan(store, &rollback).await?;
    let swapped = crate::rollback::rollback(store, &rollback, plan, lock, progress.clone()).await;
    match swapped {
        // The swap changed nothing (sessions of other roles it may not end, most often): in place needs
        // no session to leave the database.
        Err(e)
            if rollback.mode == Mode::Swap && !matches!(e.kind(), ErrorKind::NeedsAttention | ErrorKind::Cancelled) =>
        {
            progress.step(&format!("the swap changed nothing ({e}); rolling `{database}` back in place instead"));
            *tried = Mode::InPlace;
            let in_place = RollbackOptions { mode: Mode::InPlace, safety_snapshot: true, ..rollback };
            let plan = crate::rollback::plan(store, &in_place).await?;
            crate::rollback::rollback(store, &in_place, plan, lock, progress)
                .await
                .map_err(|again| again.context(format!("a swap changed nothing ({e}), then in place")))
        }
        other => other,
    }
}

/// Warns of each snapshot of the database a migration pinned whose process is gone (killed outright): the
/// pin holds until someone clears it, and what that migration committed before it died is in the database
/// this run starts from.
fn warn_of_abandoned_pins(store: &dyn Store, options: &MigrateOptions) {
    let server = options.connect.describe();
    let Ok(listed) = crate::store::list_checked(store) else { return };
    for s in listed {
        if s.pin_holder == Some(crate::store::PinHolder::Gone) && s.meta.server == server {
            let id = &s.meta.id;
            tracing::warn!(
                "snapshot `{id}` is still pinned ({}), and that process is gone (killed outright?): what it \
                 committed before it died is in the database this run starts from; `pgsafe rollback -d {} {id}` \
                 puts back the state before it, and `pgsafe snapshots --unpin {id}` lets retention remove it",
                s.meta.pinned.as_deref().unwrap_or_default(),
                s.meta.database
            );
        }
    }
}

/// Pins the migration's snapshot with the `reason` its metadata gives, or unpins it (`None`) once the
/// migration no longer depends on it. Also after an interruption: the wait for the store's lock is not the
/// migration's to cancel, only bounded.
fn set_pin(
    store: &dyn Store,
    options: &MigrateOptions,
    id: &SnapshotId,
    reason: impl FnOnce(&crate::store::SnapshotMeta) -> Option<String>,
) -> Result<()> {
    let _lock = crate::store::lock_in_async(
        store,
        &LockHolder::this_process("pgsafe migrate"),
        options.lock_wait.min(Duration::from_secs(10)),
        &Cancel::new(),
    )?;
    let mut meta = store.get(id)?;
    let reason = reason(&meta);
    if meta.pinned == reason {
        return Ok(());
    }
    meta.pinned = reason;
    // The pins set here (NEEDS ATTENTION) outlive the run by design: no process holds them.
    meta.pinned_by = None;
    store.put(&meta)
}

/// The audit log's lines of one migration.
struct Log<'a> {
    store: &'a dyn Store,
    options: &'a MigrateOptions,
    migration: Option<String>,
    /// The tables the migration dropped and renamed, once known: written with the health check's line, so
    /// that a later `pgsafe check` against the migration's snapshot knows them as its doing.
    changes: Option<apply::TableChanges>,
}

impl Log<'_> {
    /// Records a step in the report and the audit log (a log that cannot be written is a warning: the
    /// migration goes on).
    fn step(
        &mut self,
        report: &mut MigrateReport,
        step: &'static str,
        result: std::result::Result<String, String>,
        seconds: f64,
    ) {
        let (outcome, detail) = match result {
            Ok(detail) => (Outcome::Ok, detail),
            Err(error) => (Outcome::Failed { error: error.clone() }, error),
        };
        self.record(report, step, outcome, detail, seconds);
    }

    /// Records a step whose check failed and that `--force` (or `--allow-data-loss`) went on past.
    fn forced(&mut self, report: &mut MigrateReport, step: &'static str, error: String, detail: String, t: Instant) {
        self.record(report, step, Outcome::Forced { error }, detail, t.elapsed().as_secs_f64());
    }

    fn record(
        &mut self,
        report: &mut MigrateReport,
        step: &'static str,
        outcome: Outcome,
        detail: String,
        seconds: f64,
    ) {
        let time = Timestamp::now() - jiff::SignedDuration::from_secs_f64(seconds);
        let mut entry =
            AuditEntry::new(AuditCommand::Migrate, time, outcome.clone(), seconds).connected_to(&self.options.connect);
        entry.step = Some(step.to_owned());
        entry.migration = self.migration.clone();
        entry.snapshot = report.snapshot.clone();
        // The step that removed the snapshot names it as removed, not as one there is.
        if step == "snapshot" && report.snapshot_removed {
            entry.removed = entry.snapshot.take().into_iter().collect();
        }
        if let (Some(changes), "check") = (&self.changes, step) {
            entry.dropped_tables = changes.dropped.clone();
            entry.renamed_tables = changes.renamed.clone();
        }
        if let Err(e) = self.store.append_audit(&entry) {
            tracing::warn!("the audit line of the migration's `{step}` step was not written: {e}");
        }
        report.steps.push(Step { step, outcome, detail, seconds });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_do_block_that_commits_or_a_call_may_commit_inside() {
        assert!(super::may_commit_inside("DO $$ BEGIN INSERT INTO t VALUES (1); COMMIT; END $$"));
        assert!(super::may_commit_inside("do $b$ begin rollback; end $b$"));
        assert!(super::may_commit_inside("CALL refresh_all()"));
        assert!(!super::may_commit_inside("DO $$ BEGIN UPDATE t SET committed_at = now(); END $$"));
        assert!(!super::may_commit_inside("UPDATE t SET a = 'COMMIT'"));
    }

    use super::*;

    /// Found on a real migration history (Lemmy's): a line comment before the `;` swallowed the `;` that
    /// was put back after the statement, and the next statement ran as part of it.
    #[test]
    fn a_file_joined_keeps_its_statements_apart_whatever_ends_them() {
        let text = "create table t2 (id int) -- why\n;\ncreate table t3 (id int); /* done */\nBEGIN;\nselect 1 -- last";
        let statements = crate::dryrun::split_text(std::path::Path::new("m.sql"), text).unwrap();
        let sql = joined(&statements);
        let parsed = pg_query::parse(&sql, 0).unwrap();
        let kinds: Vec<&str> = parsed.statement_types();
        assert_eq!(kinds, ["CreateStmt", "CreateStmt", "SelectStmt"], "{sql}");
    }

    #[test]
    fn a_copy_from_stdin_is_a_piece_of_its_own_with_its_rows() {
        let text = "BEGIN;\nCOPY t FROM stdin;\n1\n\\.\ncopy t from STDIN;\n2\n\\.\nSELECT 1;\nSELECT 2;\nCOMMIT;\n";
        let statements = crate::dryrun::split_text(std::path::Path::new("m.sql"), text).unwrap();
        let copy = |sql: &str, rows: &str, line, rows_line| Piece::Copy {
            sql: sql.into(),
            rows: rows.into(),
            line,
            rows_line,
        };
        assert_eq!(
            pieces(&statements),
            [
                copy("COPY t FROM stdin", "1\n", 2, 3),
                copy("copy t from STDIN", "2\n", 5, 6),
                Piece::Batch("SELECT 1\n;\nSELECT 2\n;\n".into())
            ]
        );
    }

    #[test]
    fn a_snapshot_is_labelled_by_the_first_file_or_the_commands_program_and_verbs() {
        let command = |words: &[&str]| Source::Command(words.iter().map(|w| (*w).to_owned()).collect());
        let files = Source::Files(vec![PathBuf::from("db/0003_add_email.sql")]);
        assert_eq!(snapshot_label(&files, "db/0003_add_email.sql"), "before-0003_add_email.sql");
        let diesel = Source::Files(vec![PathBuf::from("migrations/2020-01-02-123456_add_x/up.sql")]);
        assert_eq!(
            snapshot_label(&diesel, "migrations/2020-01-02-123456_add_x/up.sql"),
            "before-2020-01-02-123456_add_x"
        );
        let prisma = command(&["npx", "prisma", "migrate", "deploy"]);
        assert_eq!(snapshot_label(&prisma, "npx prisma migrate deploy"), "before-npx-prisma-migrate");
        let script = command(&["/bin/sh", "-c", "psql -c 'UPDATE t SET v = 1' && exit 4"]);
        assert_eq!(snapshot_label(&script, "/bin/sh -c ..."), "before-sh");
        let flyway = command(&["/opt/flyway/flyway", "-url=jdbc:postgresql://h/db", "migrate"]);
        assert_eq!(snapshot_label(&flyway, "flyway"), "before-flyway");
    }

    #[test]
    fn a_name_is_one_word_for_the_shell() {
        assert_eq!(crate::cluster::sh_word("shop"), "shop");
        assert_eq!(crate::cluster::sh_word("my shop"), "'my shop'");
        assert_eq!(crate::cluster::sh_word("it's"), "'it'\\''s'");
    }

    #[test]
    fn down_to_a_version_undoes_those_after_it_as_numbers() {
        let file = |v: &str| runner::MigrationFile {
            version: v.into(),
            name: "m".into(),
            path: PathBuf::from(format!("{v}_m.sql")),
            down: Some(PathBuf::from(format!("{v}_m.down.sql"))),
            checksum: String::new(),
            tool: None,
        };
        let applied = |v: &str| runner::Applied {
            version: v.into(),
            name: "m".into(),
            checksum: String::new(),
            applied_at: String::new(),
            seconds: 0.0,
            role: String::new(),
            snapshot: None,
            tool: None,
        };
        let status = FolderStatus {
            files: vec![file("1"), file("2"), file("10")],
            applied: vec![applied("1"), applied("2"), applied("10")],
            ..FolderStatus::default()
        };
        let labels = |to| down_units(&status, to, "db").unwrap().into_iter().map(|u| u.label).collect::<Vec<_>>();
        assert_eq!(labels(None), ["10_m (down)"]);
        assert_eq!(labels(Some("1")), ["10_m (down)", "2_m (down)"]);
        assert_eq!(labels(Some("2")), ["10_m (down)"]);
    }
}
