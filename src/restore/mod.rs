//! `pgsafe restore`: recreates an archive's database (or loads its rows into existing tables), then
//! proves that what landed is what was dumped.
//!
//! ```text
//! archive + options -> RestorePlan (pure: plan.rs; --dry-run, --list, -L and -f use it)
//!   whole (whole.rs):     before -> pre-data -> data -> post-data -> sequences -> privileges -> later
//!                         objects -> verification
//!   data only (data_only.rs): check tables -> triggers and foreign keys off, tables emptied -> data
//!                         -> triggers and foreign keys back -> sequences -> verification
//! data: parts on -j sessions (load.rs: chunks -> check -> decode -> COPY FROM STDIN)
//! ```
//! Nothing is written before the checks of the target pass. With `--single-transaction` everything, the
//! verification included, runs in one transaction, so a failure leaves the database as it was. An
//! interruption (Ctrl-C, SIGTERM) cancels the server's statements, puts triggers and foreign keys back
//! (or rolls back) and says what was and was not restored.

mod autovacuum;
mod data_only;
mod key_index;
mod list;
pub(crate) mod load;
mod not_valid;
pub(crate) mod plan;
pub(crate) mod target;
mod units;
pub(crate) mod verify;
mod whole;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use list::{ListSelection, list};
pub use not_valid::NotValidKey;
pub use plan::{Before, DatabaseStep, ObjectStep, PartStep, PlannedTable, RestoreKind, RestorePlan, Source};

use crate::archive::ArchiveReader;
use crate::cancel::Cancel;
use crate::catalog::Filters;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{PartKind, SequenceValue};
use crate::pg::{ConnectOptions, Session};
use crate::pool;
use crate::progress::Progress;
use crate::schema::ObjectKind;
use units::Unit;

/// How much checking follows a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyLevel {
    /// Row counts and content digests of every table, sequence values.
    Full,
    /// Row counts only.
    Count,
    /// Nothing beyond what the load itself reports.
    None,
}

/// What of the schema a whole restore, or its script, leaves out: pg_restore's `--no-*` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeaveOut {
    /// Ownership: everything is owned by the restoring role (`--no-owner`).
    pub owner: bool,
    /// `GRANT`/`REVOKE` and default privileges (`--no-privileges`).
    pub privileges: bool,
    /// Tablespaces: everything goes to the target database's default (`--no-tablespaces`).
    pub tablespaces: bool,
    /// `COMMENT ON` (`--no-comments`).
    pub comments: bool,
    /// `SECURITY LABEL` (`--no-security-labels`), for a target without the label provider.
    pub security_labels: bool,
    /// Publications and what they publish (`--no-publications`).
    pub publications: bool,
    /// Subscriptions (`--no-subscriptions`).
    pub subscriptions: bool,
}

impl LeaveOut {
    /// Whether a schema object of `kind` is left out whole.
    pub fn kind(&self, kind: &ObjectKind) -> bool {
        match kind {
            ObjectKind::Publication | ObjectKind::PublicationTable | ObjectKind::PublicationTablesInSchema => {
                self.publications
            }
            ObjectKind::Subscription => self.subscriptions,
            // Every label of a publication's parts starts with its own: a kind of a newer pgsafe that does
            // is taken for one, which restored without its publication would fail.
            ObjectKind::Other(label) => self.publications && label.starts_with("PUBLICATION"),
            _ => false,
        }
    }

    /// Whether one of an object's comment statements (`COMMENT ON`, `SECURITY LABEL`) is left out.
    pub fn note(&self, statement: &str) -> bool {
        (self.comments && statement.starts_with("COMMENT ON "))
            || (self.security_labels && statement.starts_with("SECURITY LABEL "))
    }
}

/// What to restore and how.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub connect: ConnectOptions,
    pub jobs: usize,
    pub filters: Filters,
    pub single_transaction: bool,
    pub verify: VerifyLevel,
    /// Data only: empty the archive's tables (and its large objects) before loading. Whole restore:
    /// drop the archive's objects that exist in the target first.
    pub clean: bool,
    /// Load rows into existing tables only (`--data-only`).
    pub data_only: bool,
    /// Create the schema only, no rows (`--schema-only`).
    pub schema_only: bool,
    /// What of the schema to leave out (`--no-owner`, `--no-privileges`, ...).
    pub leave_out: LeaveOut,
    /// Act as this role in every session (`--role`).
    pub role: Option<String>,
    /// Create missing roles the archive names, without login (`--create-roles`).
    pub create_roles: bool,
    /// Create this database first, through the one `connect` names, and restore into it (`--create`).
    pub create: Option<String>,
    /// Restore only what this list names (`-L`, an edited `--list`).
    pub use_list: Option<ListSelection>,
    /// With `clean`: statements run before the archive's own drops, in the same transaction. A rollback in
    /// place drops so what exists in the target but not in the archive.
    pub drop_also: Vec<String>,
    /// With `single_transaction`: the transaction's `lock_timeout`, so that a lock another session holds
    /// fails the restore (SQLSTATE `55P03`, everything rolled back) rather than making it wait, holding
    /// the locks it took already, without a limit. A rollback in place tries again.
    pub lock_timeout: Option<Duration>,
    /// With `single_transaction`: run first in the transaction, before the restore changes anything (a
    /// rollback locks the tables it replaces there, then counts what they hold). Its error ends the
    /// restore as any other, everything rolled back. Run again by each attempt of a caller that retries.
    pub first_in_transaction: Option<FirstInTransaction>,
    /// Stops the restore cooperatively (Ctrl-C, SIGTERM): see [`crate::cancel`].
    pub cancel: Cancel,
}

/// What [`RestoreOptions::first_in_transaction`] runs, on the session of the single transaction.
pub type FirstInTransactionFn =
    dyn for<'s> Fn(&'s Session) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 's>> + Send + Sync;

/// A step run first in a restore's single transaction (see [`RestoreOptions::first_in_transaction`]).
#[derive(Clone)]
pub struct FirstInTransaction(pub Arc<FirstInTransactionFn>);

impl std::fmt::Debug for FirstInTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FirstInTransaction(..)")
    }
}

impl RestoreOptions {
    /// Everything in the archive into the database `connect` names, with the defaults of `pgsafe restore`
    /// (full verification): what the workflow's own restores start from (a rollback's, a rehearsal's).
    pub fn whole(connect: ConnectOptions, jobs: usize, cancel: Cancel) -> RestoreOptions {
        RestoreOptions {
            connect,
            jobs: jobs.max(1),
            filters: Filters::default(),
            single_transaction: false,
            verify: VerifyLevel::Full,
            clean: false,
            data_only: false,
            schema_only: false,
            leave_out: LeaveOut::default(),
            role: None,
            create_roles: false,
            create: None,
            use_list: None,
            drop_also: Vec::new(),
            lock_timeout: None,
            first_in_transaction: None,
            cancel,
        }
    }
}

/// How triggers and foreign keys were kept from firing during a data-only load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerMode {
    /// Superusers: user triggers disabled by name, foreign keys kept from firing by
    /// `session_replication_role = replica` in each loading session.
    ReplicationRole,
    /// Other roles (the tables' owners): user triggers disabled by name, the foreign keys whose checks
    /// would fire dropped, then added back (`NOT VALID`, then `VALIDATE` where they held before).
    DisableTriggers,
    /// A whole restore: triggers and foreign keys are created after the rows.
    NotYetCreated,
}

/// What a restore did and found.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub target: String,
    /// Schema creation steps run (0 for `--data-only`).
    pub schema_objects: usize,
    pub tables: usize,
    pub parts: usize,
    pub rows: u64,
    pub sequences: usize,
    pub large_objects: u64,
    pub triggers: TriggerMode,
    pub verify: VerifyLevel,
    pub tables_verified: usize,
    /// Of them, at `--verify count`, the tables whose rows were counted as they loaded, not read back
    /// (the tables a whole restore makes).
    pub tables_counted_on_load: usize,
    /// Verification mismatches and foreign key violations, each naming its table. Empty when sound.
    pub problems: Vec<String>,
    /// A whole restore's foreign keys that the restored rows break: each was added `NOT VALID`, and is
    /// among the problems too (unless the restore rolled back, the key stays, and checks new rows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys_not_valid: Vec<NotValidKey>,
    /// What the user must act on although the restore succeeded (a subscription left disabled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// With `--single-transaction`, true when a problem made the restore roll back.
    pub rolled_back: bool,
    pub seconds: f64,
}

impl RestoreReport {
    /// The report before anything is done: what the plan restores into `target`.
    fn start(target: &str, plan: &RestorePlan, triggers: TriggerMode) -> RestoreReport {
        RestoreReport {
            target: target.to_string(),
            schema_objects: plan.pre_data.len() + plan.post_data.len() + plan.after_privileges.len(),
            tables: plan.tables.iter().filter(|t| t.kind == PartKind::Table).count(),
            parts: plan.data.len(),
            rows: 0,
            sequences: plan.sequences.len(),
            large_objects: 0,
            triggers,
            verify: plan.verify,
            tables_verified: 0,
            tables_counted_on_load: 0,
            problems: Vec::new(),
            foreign_keys_not_valid: Vec::new(),
            warnings: plan.warnings.clone(),
            rolled_back: false,
            seconds: 0.0,
        }
    }

    /// Records the foreign keys that the restored rows break, each a problem too. `kept`: they stay
    /// (`NOT VALID`); not when the restore is one transaction, which the problems roll back.
    fn keys_not_valid(&mut self, mut keys: Vec<NotValidKey>, kept: bool) {
        // Found in the order the sessions finished them: named in a stable one.
        keys.sort_by(|a, b| (&a.table, &a.name).cmp(&(&b.table, &b.name)));
        self.problems.extend(keys.iter().map(|k| k.problem(kept)));
        self.foreign_keys_not_valid.extend(keys);
    }
}

/// Plans the restore of `archive` with `options`, without connecting: what `--dry-run` prints.
pub fn plan(archive: &ArchiveReader, options: &RestoreOptions) -> Result<RestorePlan> {
    RestorePlan::build(archive.index(), options)
}

/// Restores `archive`: plans it, then runs exactly that plan.
pub async fn restore(
    archive: Arc<ArchiveReader>,
    options: &RestoreOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreReport> {
    let plan = plan(&archive, options)?;
    restore_planned(archive, plan, options, progress).await
}

/// Restores `archive` as `plan` (what [`plan`] made of it with `options`) says: a caller that planned
/// first (to refuse bad options before connecting) runs that plan rather than holding a second one.
pub async fn restore_planned(
    archive: Arc<ArchiveReader>,
    plan: RestorePlan,
    options: &RestoreOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let encoding = archive.index().catalog().server.encoding.clone();
    let connect = match &plan.role {
        Some(role) => options.connect.with_role(role),
        None => options.connect.clone(),
    };
    let mut run = Run {
        archive,
        connect,
        encoding,
        progress,
        lock_timeout: options.lock_timeout,
        first_in_transaction: options.first_in_transaction.clone(),
        cancel: options.cancel.clone(),
    };
    let mut report = match plan.kind {
        RestoreKind::DataOnly => data_only::run(&plan, &run).await?,
        RestoreKind::Whole | RestoreKind::SchemaOnly => whole::run(&plan, &mut run).await?,
    };
    if !report.rolled_back {
        report.large_objects = plan.data.iter().filter(|p| p.kind == PartKind::LargeObjects).map(|p| p.rows).sum();
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// What every step of a running restore needs: where its sessions connect, the archive, progress and
/// cancellation.
pub(crate) struct Run {
    pub archive: Arc<ArchiveReader>,
    /// The target, with `--role` (and, once made, `--create`'s database) applied.
    pub connect: ConnectOptions,
    pub encoding: String,
    pub progress: Arc<dyn Progress>,
    /// See [`RestoreOptions::lock_timeout`].
    pub lock_timeout: Option<Duration>,
    /// See [`RestoreOptions::first_in_transaction`].
    pub first_in_transaction: Option<FirstInTransaction>,
    pub cancel: Cancel,
}

impl Run {
    /// A session on the target whose statements the cancellation stops.
    pub async fn session(&self) -> Result<Session> {
        self.session_watched_by(&self.cancel).await
    }

    /// A session whose statements `cancel` stops (a worker pool's own cancellation).
    pub async fn session_watched_by(&self, cancel: &Cancel) -> Result<Session> {
        cancel.check("the restore")?;
        Ok(Session::open(&self.connect, Some(&self.encoding)).await?.cancelled_by(cancel))
    }

    /// Checks every chunk the plan loads (its frame and CRC, not decoded) before anything is written
    /// outside one transaction: damage found while loading would leave the target with some of the rows
    /// (and, with `--clean`, less than it had). A file's chunks (or a pipe's copy's) are read at disk
    /// speed, so they are always checked; an object's would be fetched once more, so they are checked
    /// only when `emptying` (`--clean`), which damage found later would leave with less than it had.
    async fn check_chunks_first(&self, plan: &RestorePlan, emptying: bool, what: &str) -> Result<()> {
        if !emptying && !self.archive.is_file() {
            return Ok(());
        }
        let started = Instant::now();
        let index = self.archive.index();
        let chunks: Vec<_> = plan.data.iter().flat_map(|p| index.chunks(p.part)).collect();
        let (archive, jobs) = (self.archive.clone(), plan.jobs);
        tokio::task::spawn_blocking(move || archive.check_chunks(&chunks, jobs))
            .await
            .map_err(|e| pool::panicked("checking the archive's chunks", e))?
            .map_err(|e| e.context(format!("the archive is damaged, so {what}")))?;
        tracing::info!("every chunk to load checked in {:.1}s", started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Begins the single transaction on `session`, under the restore's `lock_timeout` when it has one.
    async fn begin_single(&self, session: &Session) -> Result<()> {
        session.batch("BEGIN").await?;
        if let Some(timeout) = self.lock_timeout {
            session.batch(&format!("SET LOCAL lock_timeout = '{}ms'", timeout.as_millis().max(1))).await?;
        }
        Ok(())
    }

    /// Runs [`RestoreOptions::first_in_transaction`], if any, in the single transaction begun on `session`.
    async fn first_in_transaction(&self, session: &Session) -> Result<()> {
        match &self.first_in_transaction {
            Some(first) => (first.0)(session).await,
            None => Ok(()),
        }
    }

    fn loader(&self) -> load::Loader {
        load::Loader::new(self.archive.clone(), self.progress.clone())
    }

    /// Runs the load's units on the plan's sessions, each after the units it waits for, `prepare` run
    /// first in each session; returns the rows, and counts the parts loaded in `loaded_parts` (what a load
    /// that stopped had done). A unit that switches something off runs in a transaction of its own.
    async fn load(
        &self,
        plan: &RestorePlan,
        units: Vec<Unit>,
        prepare: Option<&'static str>,
        loaded_parts: &Arc<AtomicUsize>,
    ) -> Result<u64> {
        let started = Instant::now();
        let tasks: Vec<pool::Task<Unit>> = units
            .into_iter()
            .map(|u| pool::Task { name: u.name.clone(), deps: u.deps.clone(), weight: u.bytes, item: u })
            .collect();
        let open = |stop: &Cancel| {
            let stop = stop.clone();
            async move {
                let session = self.session_watched_by(&stop).await?;
                if let Some(sql) = prepare {
                    session.batch(sql).await?;
                }
                Ok(session)
            }
        };
        let (loader, parts, cancel) = (self.loader(), Arc::new(plan.data.clone()), self.cancel.clone());
        let rows: u64 = pool::run("the restore's data", plan.jobs, tasks, &self.cancel, open, |session, unit: Unit| {
            let (loader, parts, loaded, cancel) = (loader.clone(), parts.clone(), loaded_parts.clone(), cancel.clone());
            async move {
                let result = unit.run(&session, &loader, &parts, &loaded, &cancel).await;
                (session, result)
            }
        })
        .await?
        .into_iter()
        .sum();
        tracing::info!("data: {rows} rows on {} sessions in {:.1}s", plan.jobs, started.elapsed().as_secs_f64());
        Ok(rows)
    }

    /// Loads the plan's parts one after the other in `session` (a single transaction).
    async fn load_serial(&self, session: &Session, plan: &RestorePlan) -> Result<u64> {
        let loader = self.loader();
        let mut rows = 0;
        for part in &plan.data {
            self.cancel.check("the restore")?;
            rows += loader.load_part(session, part).await?;
        }
        Ok(rows)
    }

    /// The verification that ends every restore: row counts (and with `--verify full` content digests) of
    /// every table, and sequence values. `session` is the leader's: the single transaction's when `single`,
    /// and where the sequences are read otherwise, since a session opened after the restore made its
    /// event triggers would fire a login trigger (PostgreSQL 17) into the restored tables.
    /// `checked`: the tables' verification, when it was done already (beside the post-data objects).
    async fn verify(
        &self,
        plan: &RestorePlan,
        session: &Session,
        single: bool,
        checked: Option<verify::Checked>,
        report: &mut RestoreReport,
    ) -> Result<()> {
        if plan.verify == VerifyLevel::None || plan.tables.is_empty() && plan.sequences.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let beside = if checked.is_some() { " (the tables beside the post-data objects)" } else { "" };
        let checked = match (checked, single) {
            (Some(checked), _) => checked,
            (None, true) => verify::tables(session, &plan.tables, plan.verify).await?,
            (None, false) => verify::tables_parallel(self, plan.jobs, &plan.tables, plan.verify).await?,
        };
        report.tables_verified = checked.verified;
        report.tables_counted_on_load = plan.tables_counted_on_load();
        report.problems.extend(checked.problems);
        if plan.verify == VerifyLevel::Full {
            report.problems.extend(verify::sequences(session, &plan.sequences).await?);
        }
        tracing::info!("verification: {} tables{beside} in {:.1}s", checked.verified, started.elapsed().as_secs_f64());
        Ok(())
    }
}

/// `setval` for every sequence the plan restores, in one statement.
async fn set_sequences(session: &Session, sequences: &[SequenceValue]) -> Result<()> {
    if sequences.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = sequences.iter().map(|s| crate::pg::quote_qualified(&s.name)).collect();
    let values: Vec<i64> = sequences.iter().map(|s| s.last_value).collect();
    let called: Vec<bool> = sequences.iter().map(|s| s.is_called).collect();
    session
        .query(
            "SELECT pg_catalog.setval(n::regclass, v, c) FROM unnest($1::text[], $2::int8[], $3::bool[]) AS u(n, v, c)",
            &[&names, &values, &called],
        )
        .await
        .map_err(|e| e.context("setting the sequences' values"))?;
    Ok(())
}

/// Ends a `--single-transaction` restore: commits when it ran through and verification found nothing,
/// rolls back otherwise (a problem marks the report rolled back; an error says nothing was restored).
async fn end_single_transaction(
    session: &Session,
    cancel: &Cancel,
    outcome: Result<()>,
    report: &mut RestoreReport,
) -> Result<()> {
    match outcome {
        Ok(()) if report.problems.is_empty() => session.batch("COMMIT").await,
        Ok(()) => {
            session.batch("ROLLBACK").await?;
            report.rolled_back = true;
            Ok(())
        }
        Err(e) => {
            // A server that is gone has rolled back by itself.
            let _ = session.batch("ROLLBACK").await;
            Err(interrupted(cancel, e, "nothing was restored (the transaction rolled back)"))
        }
    }
}

/// The error of a run that stopped, saying `what` was and was not done: when the stop was an
/// interruption, that is the cause worth reporting ([`ErrorKind::Cancelled`]), not the cancelled statement.
fn interrupted(cancel: &Cancel, e: Error, what: &str) -> Error {
    if cancel.is_cancelled() {
        return Error::new(ErrorKind::Cancelled, format!("the restore was interrupted: {what}"));
    }
    e.context(what)
}
