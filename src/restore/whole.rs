//! A whole restore, schema and rows, run as its plan says.
//!
//! ```text
//! --create's database -> in one transaction: refuse a non-empty target (or drop the archive's objects),
//! roles, pre-data -> rows on -j sessions -> post-data on -j sessions, by dependency,
//! biggest first -> sequence values -> privileges -> default privileges, refreshes, event triggers
//! -> verification -> the new database's own properties
//! ```
//! With `--single-transaction` all of it runs in one transaction on one session. A database `--create`
//! made is dropped again when nothing of the restore was committed in it.

use std::collections::HashMap;
use std::time::Instant;

use super::plan::{Before, ObjectStep, RestorePlan, SCHEMA_SETTINGS};
use super::units::Unit;
use super::{RestoreReport, Run, TriggerMode, interrupted, target};
use crate::cancel::Cancel;
use crate::error::{Result, SqlState};
use crate::pg::Session;
use crate::pool::{self, Task};

pub(super) async fn run(plan: &RestorePlan, run: &mut Run) -> Result<RestoreReport> {
    let Some(db) = &plan.database else {
        return restore_into(plan, run, &mut false).await;
    };
    let through = run.connect.clone();
    run.connect = target::create_database(&through, db).await?;
    let mut committed = false;
    let result = restore_into(plan, run, &mut committed).await;
    // Nothing of the restore committed in the database `--create` made: it goes again, so that trying
    // again needs nothing cleared by hand.
    let drop_again = |hint: &str| {
        let name = db.name.clone();
        let hint = hint.to_string();
        async move {
            match target::drop_database(&through, &name).await {
                Ok(()) => format!("the database `{name}` that `--create` made was dropped again"),
                Err(e) => format!("the database `{name}` that `--create` made is still there ({e}); {hint}"),
            }
        }
    };
    match result {
        Err(e) if !committed => Err(e.and_hint(drop_again("drop it before trying again").await)),
        Err(e) => Err(e.and_hint(format!(
            "the database `{}` that `--create` made holds what was restored so far: add `--clean` to make it anew",
            db.name
        ))),
        Ok(mut report) if report.rolled_back => {
            report.warnings.push(drop_again("drop it before trying again").await);
            Ok(report)
        }
        Ok(report) => Ok(report),
    }
}

/// Restores into the database `run` connects to; `committed` becomes true once something of it was
/// committed there.
async fn restore_into(plan: &RestorePlan, run: &Run, committed: &mut bool) -> Result<RestoreReport> {
    let leader = run.session().await?;
    leader.batch(SCHEMA_SETTINGS).await?;
    let mut report = RestoreReport::start(leader.target(), plan, TriggerMode::NotYetCreated);
    run.progress.start("restore", plan.data_bytes(), plan.data_rows());
    // The target's old objects go, and the roles come, in the transaction of the schema's first phase:
    // if that fails, or is interrupted, the target is as it was.

    if plan.single_transaction {
        leader.batch("BEGIN").await?;
        let outcome = async {
            let mut phase = FirstPhase::atomic(&leader, &run.cancel);
            before(plan, &mut phase).await?;
            phase.create_in_order(&plan.pre_data).await?;
            report.rows = run.load_serial(&leader, plan).await?;
            if let Some(set) = target::index_build_memory(&leader, 1).await? {
                leader.batch(&set).await?;
            }
            create_in_order(&leader, &plan.post_data, &run.cancel).await?;
            finish(run, plan, &leader, true, &mut report).await
        }
        .await;
        super::end_single_transaction(&leader, &run.cancel, outcome, &mut report).await?;
        *committed = !report.rolled_back;
    } else {
        let started = Instant::now();
        leader.batch("BEGIN").await?;
        let mut phase = FirstPhase::split_when_full(&leader, &run.cancel).await?;
        let created = async {
            before(plan, &mut phase).await?;
            phase.create_in_order(&plan.pre_data).await?;
            // A cancel request that reaches an idle session does nothing: ask before committing.
            run.cancel.check("the restore")?;
            leader.batch("COMMIT").await
        }
        .await;
        tracing::info!("pre-data: {} objects in {:.1}s", plan.pre_data.len(), started.elapsed().as_secs_f64());
        if let Some(warning) = phase.split_warning() {
            report.warnings.push(warning);
        }
        if let Err(e) = created {
            let _ = leader.batch("ROLLBACK").await;
            let what = match (phase.commits, &plan.before) {
                (0, Before::DropArchiveObjects { .. }) => {
                    "nothing was restored and nothing was dropped (the schema's first phase rolled back)"
                }
                (0, _) => "nothing was restored (the schema's first phase rolled back)",
                (_, Before::DropArchiveObjects { .. }) => {
                    "the schema's first phase stopped part way: it committed in steps, so what it dropped and made before its last step is in place"
                }
                (_, _) => {
                    "the schema's first phase stopped part way: it committed in steps, so what it made before its last step is in place"
                }
            };
            *committed = phase.commits > 0;
            return Err(interrupted(&run.cancel, e, what));
        }
        *committed = true;
        let stage = async {
            report.rows = run.load(plan, Unit::each_part(plan), None, &Default::default()).await?;
            let phase = Instant::now();
            post_data(run, plan, &leader).await?;
            tracing::info!("post-data: {} objects in {:.1}s", plan.post_data.len(), phase.elapsed().as_secs_f64());
            finish(run, plan, &leader, false, &mut report).await
        }
        .await;
        stage.map_err(|e| {
            interrupted(
                &run.cancel,
                e,
                "the restore stopped part way: the schema's first phase is in place, later objects and rows may be missing",
            )
        })?;
    }
    if let (Some(db), false) = (&plan.database, report.rolled_back)
        && !db.finish.is_empty()
    {
        leader.batch(&db.finish.join("\n")).await.map_err(|e| {
            e.context(format!(
                "the restore is complete, but giving `{}` its owner, comment, privileges and settings failed",
                db.name
            ))
        })?;
    }
    run.progress.finish();
    Ok(report)
}

/// What comes before the pre-data objects in the first phase: the target's old objects go (or the
/// target is found empty), and the roles come.
async fn before(plan: &RestorePlan, phase: &mut FirstPhase<'_>) -> Result<()> {
    match &plan.before {
        Before::RefuseNonEmpty => target::refuse_non_empty(phase.session()).await?,
        Before::DropArchiveObjects { statements } => target::drop_objects(phase, statements).await?,
        Before::NewDatabase | Before::RequireEmptyTables | Before::EmptyTables => {}
    }
    if !plan.create_roles.is_empty() {
        target::create_roles(phase.session(), &plan.create_roles).await?;
    }
    Ok(())
}

/// Runs one object's statements, naming the object when they fail.
async fn create(session: &Session, o: &ObjectStep, cancel: &Cancel) -> Result<()> {
    if o.sql.is_empty() {
        return Ok(());
    }
    cancel.check("the restore")?;
    let mut attempts = 0;
    loop {
        match session.batch(&o.sql).await {
            Ok(()) => return Ok(()),
            // Two post-data statements can lock two tables in opposite orders (foreign keys); the
            // server aborts one, which runs again once the other is done.
            Err(e) if attempts < 5 && e.sqlstate() == Some(SqlState::DEADLOCK_DETECTED) => attempts += 1,
            Err(e) => return Err(e.context(format!("creating `{}`", o.label))),
        }
    }
}

/// Statements of at most this many objects, or about this many bytes, go to the server in one batch: a
/// round trip per object would make a schema of 50,000 tables wait on the network and the server's
/// per-message work as much as on the statements themselves.
const BATCH_OBJECTS: usize = 200;
const BATCH_BYTES: usize = 256 << 10;

/// Makes `objects` one after the other, in batches, in the session's transaction.
async fn create_in_order(session: &Session, objects: &[ObjectStep], cancel: &Cancel) -> Result<()> {
    FirstPhase::atomic(session, cancel).create_in_order(objects).await
}

/// The transaction of the schema's first phase: `--clean`'s drops, `--create-roles`' roles and the
/// pre-data objects, so that a failure or an interruption leaves the target as it was.
///
/// A transaction holds a lock on every relation it drops or makes until it ends, and the server's lock
/// table, shared by all sessions, holds about `max_locks_per_transaction` × (`max_connections` +
/// `max_prepared_transactions`) of them: a schema of tens of thousands of tables fills it ("out of shared
/// memory", SQLSTATE 53200), where pg_restore, which commits each object on its own, goes through. So
/// unless the restore is one transaction by request (`--single-transaction`), the phase counts its
/// session's locks after each batch and, past a third of the table, commits and goes on in a new
/// transaction; it then says so, and what setting would have kept it whole.
pub(super) struct FirstPhase<'a> {
    session: &'a Session,
    cancel: &'a Cancel,
    /// Locks the transaction may hold before the phase commits; `None`: it never does.
    budget: Option<LockBudget>,
    /// Times it committed part way.
    commits: usize,
    /// Locks held when it committed part way, summed: about what one transaction would have needed.
    locks_committed: i64,
}

struct LockBudget {
    /// `max_locks_per_transaction`.
    per_session: i64,
    /// `max_connections` + `max_prepared_transactions`.
    sessions: i64,
}

impl LockBudget {
    fn limit(&self) -> i64 {
        self.per_session * self.sessions / 3
    }

    /// Objects to a batch: a dropped table may take half a dozen locks (its TOAST table and index, its
    /// types), so that a batch stays well inside what is left of the budget.
    fn batch_objects(&self) -> usize {
        usize::try_from(self.limit() / 8).unwrap_or(0).clamp(1, BATCH_OBJECTS)
    }
}

impl<'a> FirstPhase<'a> {
    /// A phase that stays one transaction whatever it holds.
    fn atomic(session: &'a Session, cancel: &'a Cancel) -> Self {
        FirstPhase { session, cancel, budget: None, commits: 0, locks_committed: 0 }
    }

    /// A phase that commits part way when its locks would otherwise fill the server's lock table.
    async fn split_when_full(session: &'a Session, cancel: &'a Cancel) -> Result<Self> {
        let row = session
            .query_one(
                "SELECT pg_catalog.current_setting('max_locks_per_transaction')::int8,
                        pg_catalog.current_setting('max_connections')::int8
                        + pg_catalog.current_setting('max_prepared_transactions')::int8",
                &[],
            )
            .await?;
        let budget = LockBudget {
            per_session: row.try_get(0).map_err(|e| target::unreadable(LOCK_SETTINGS, e))?,
            sessions: row.try_get(1).map_err(|e| target::unreadable(LOCK_SETTINGS, e))?,
        };
        Ok(FirstPhase { budget: Some(budget), ..Self::atomic(session, cancel) })
    }

    pub(super) fn session(&self) -> &'a Session {
        self.session
    }

    /// Objects to a batch.
    pub(super) fn batch_objects(&self) -> usize {
        self.budget.as_ref().map_or(BATCH_OBJECTS, LockBudget::batch_objects)
    }

    /// Runs `sql` in the phase's transaction, then commits part way if the locks it holds call for it.
    pub(super) async fn run(&mut self, sql: &str) -> Result<()> {
        self.cancel.check("the restore")?;
        let single = self.budget.is_none();
        self.session.batch(sql).await.map_err(|e| explain_full_lock_table(e, single))?;
        let Some(budget) = &self.budget else { return Ok(()) };
        // Fast-path locks (a few per session, on relations it only reads) take no room in the shared table.
        let held: i64 = self
            .session
            .query_one(
                "SELECT count(*) FROM pg_catalog.pg_locks WHERE pid = pg_catalog.pg_backend_pid() AND NOT fastpath",
                &[],
            )
            .await?
            .try_get(0)
            .map_err(|e| target::unreadable("the session's locks", e))?;
        if held >= budget.limit() {
            self.cancel.check("the restore")?;
            self.session.batch("COMMIT; BEGIN").await?;
            self.commits += 1;
            self.locks_committed += held;
            tracing::info!("the schema's first phase holds {held} locks: committed part way ({})", self.commits);
        }
        Ok(())
    }

    /// Makes `objects` one after the other, in batches. A failing statement is named by the batch's error
    /// (the server's error position).
    async fn create_in_order(&mut self, objects: &[ObjectStep]) -> Result<()> {
        let most = self.batch_objects();
        let mut batch = String::new();
        let mut in_batch: Vec<&ObjectStep> = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            if !o.sql.is_empty() {
                batch.push_str(&o.sql);
                // Each object's statements run alone elsewhere, where a last `;` is optional.
                if !o.sql.trim_end().ends_with(';') {
                    batch.push_str(";\n");
                }
                in_batch.push(o);
            }
            let last = i + 1 == objects.len();
            if !batch.is_empty() && (last || in_batch.len() >= most || batch.len() >= BATCH_BYTES) {
                self.run(&batch).await.map_err(|e| match in_batch.as_slice() {
                    [one] => e.context(format!("creating `{}`", one.label)),
                    many => e.context(format!(
                        "creating the {} objects from `{}` to `{}`",
                        many.len(),
                        many[0].label,
                        many[many.len() - 1].label
                    )),
                })?;
                batch.clear();
                in_batch.clear();
            }
        }
        Ok(())
    }

    /// What to tell the user when the phase committed part way.
    fn split_warning(&self) -> Option<String> {
        let budget = self.budget.as_ref().filter(|_| self.commits > 0)?;
        let needed = budget.per_session + (self.locks_committed + budget.sessions - 1) / budget.sessions;
        Some(format!(
            "the schema's first phase committed in {} steps, not one transaction: it needed more locks than a \
             third of the server's lock table (`max_locks_per_transaction` = {} for each of {} sessions and \
             prepared transactions), so a failure part way would have left its earlier steps in place; \
             `max_locks_per_transaction` = {needed} (and a restart) keeps it whole",
            self.commits + 1,
            budget.per_session,
            budget.sessions,
        ))
    }
}

const LOCK_SETTINGS: &str = "the server's lock table settings";

/// A full lock table (SQLSTATE 53200, "out of shared memory") names no setting: say which.
fn explain_full_lock_table(e: crate::Error, single_transaction: bool) -> crate::Error {
    if e.sqlstate() != Some(SqlState::OUT_OF_SHARED_MEMORY) {
        return e;
    }
    let why = if single_transaction {
        "the server's lock table is full: a transaction holds a lock on every table it makes or drops until it \
         ends, and `--single-transaction` makes the whole restore one; raise `max_locks_per_transaction` \
         (`ALTER SYSTEM SET max_locks_per_transaction = ...`, then restart the server), or restore without \
         `--single-transaction`"
    } else {
        "the server's lock table is full (other sessions hold locks too): raise `max_locks_per_transaction` \
         (`ALTER SYSTEM SET max_locks_per_transaction = ...`, then restart the server)"
    };
    e.and_hint(why)
}

/// Runs the post-data objects on the plan's sessions: an object starts once the objects it depends on
/// are done, the biggest first among those ready. `leader`, idle meanwhile, is asked for the server's
/// memory settings.
async fn post_data(run: &Run, plan: &RestorePlan, leader: &Session) -> Result<()> {
    if plan.post_data.is_empty() {
        return Ok(());
    }
    let position: HashMap<u32, usize> = plan.post_data.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
    let tasks = plan
        .post_data
        .iter()
        .map(|o| Task {
            item: o.clone(),
            name: format!("`{}`", o.label),
            deps: o.deps.iter().filter_map(|d| position.get(d).copied()).collect(),
            weight: o.size,
        })
        .collect();
    let settings = match target::index_build_memory(leader, plan.jobs).await? {
        Some(set) => {
            tracing::info!("post-data sessions build indexes after `{set}`");
            format!("{SCHEMA_SETTINGS}; {set}")
        }
        None => SCHEMA_SETTINGS.to_string(),
    };
    let open = |stop: &Cancel| {
        let stop = stop.clone();
        let settings = settings.clone();
        async move {
            let session = run.session_watched_by(&stop).await?;
            session.batch(&settings).await?;
            Ok(session)
        }
    };
    let cancel = run.cancel.clone();
    pool::run("the restore's post-data", plan.jobs, tasks, &run.cancel, open, |session, o: ObjectStep| {
        let cancel = cancel.clone();
        async move {
            let result = create(&session, &o, &cancel).await;
            (session, result)
        }
    })
    .await?;
    Ok(())
}

/// After the objects and rows: sequence values, privileges, what comes after them (default privileges,
/// materialized view refreshes, event triggers), verification.
async fn finish(
    run: &Run,
    plan: &RestorePlan,
    session: &Session,
    single: bool,
    report: &mut RestoreReport,
) -> Result<()> {
    let phase = Instant::now();
    super::set_sequences(session, &plan.sequences).await?;
    let privileges: String = plan.privileges.iter().map(|p| p.sql.as_str()).collect();
    if !privileges.is_empty() {
        run.cancel.check("the restore")?;
        session.batch(&privileges).await.map_err(|e| e.context("restoring privileges"))?;
    }
    for o in &plan.after_privileges {
        create(session, o, &run.cancel).await?;
    }
    tracing::info!(
        "sequence values, privileges and {} later objects (default privileges, materialized view refreshes, event triggers) in {:.1}s",
        plan.after_privileges.len(),
        phase.elapsed().as_secs_f64()
    );
    run.verify(plan, single.then_some(session), report).await
}
