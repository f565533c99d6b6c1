//! A whole restore, schema and rows, run as its plan says.
//!
//! ```text
//! --create's database -> in one transaction: refuse a non-empty target (or drop the archive's objects),
//! roles, pre-data -> rows on -j sessions -> post-data and the tables' verification on -j sessions, by
//! dependency, biggest first -> sequence values -> privileges -> default privileges, refreshes, event
//! triggers -> the sequences' verification -> the new database's own properties
//! ```
//! With `--single-transaction` all of it runs in one transaction on one session. A database `--create`
//! made is dropped again when nothing of the restore was committed in it.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::autovacuum::HeldOff;
use super::key_index::{KeyThroughIndex, key_through_index};
use super::not_valid::{self, NotValidKey};
use super::plan::{Before, Freeze, ObjectStep, PartStep, RestorePlan, SCHEMA_SETTINGS};
use super::verify::{self, Checked, Read};
use super::{RestoreReport, Run, TriggerMode, VerifyLevel, interrupted, target};
use crate::cancel::Cancel;
use crate::error::{Result, SqlState};
use crate::format::{PartKind, TableName};
use crate::pg::{Session, quote_qualified};
use crate::pool::{self, Task};
use crate::schema::ObjectKind;

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
            let dropped = match Session::open(&through, None).await {
                Ok(maintenance) => target::drop_database(&maintenance, &name).await,
                Err(e) => Err(e),
            };
            match dropped {
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
    let settled = settle(plan, &leader).await?;
    let plan = &*settled;
    refuse_missing_needs(plan, &leader).await?;
    let mut report = RestoreReport::start(leader.target(), plan, TriggerMode::NotYetCreated);
    run.progress.start("restore", plan.data_bytes(), plan.data_rows());
    // The target's old objects go, and the roles come, in the transaction of the schema's first phase:
    // if that fails, or is interrupted, the target is as it was.

    if plan.single_transaction {
        run.begin_single(&leader).await?;
        let outcome = async {
            run.first_in_transaction(&leader).await?;
            let mut phase = FirstPhase::atomic(&leader, &run.cancel);
            before(plan, &run.archive, &mut phase).await?;
            phase.create_in_order(&plan.pre_data).await?;
            report.rows = run.load_serial(&leader, plan).await?;
            if let Some(set) = target::index_build_memory(&leader, 1).await? {
                leader.batch(&set).await?;
            }
            let keys = create_post_data_in_transaction(&leader, &plan.post_data, &run.cancel).await?;
            report.keys_not_valid(keys, false);
            finish(run, plan, &leader, None, &mut report).await
        }
        .await;
        super::end_single_transaction(&leader, &run.cancel, outcome, &mut report).await?;
        *committed = !report.rolled_back;
    } else {
        let dropping = matches!(plan.before, Before::DropArchiveObjects { .. });
        let what = if dropping { "nothing was dropped and nothing was restored" } else { "nothing was restored" };
        run.check_chunks_first(plan, dropping, what).await?;
        let started = Instant::now();
        leader.batch("BEGIN").await?;
        let mut phase = FirstPhase::split_when_full(&leader, &run.cancel).await?;
        let created = async {
            before(plan, &run.archive, &mut phase).await?;
            phase.create_in_order(&plan.pre_data).await?;
            rehearse_post_data(plan, &leader, &run.cancel).await?;
            let held = HeldOff::hold(&leader, &plan.held_from_autovacuum()).await?;
            // A cancel request that reaches an idle session does nothing: ask before committing.
            run.cancel.check("the restore")?;
            leader.batch("COMMIT").await?;
            Ok(held)
        }
        .await;
        tracing::info!("pre-data: {} objects in {:.1}s", plan.pre_data.len(), started.elapsed().as_secs_f64());
        if let Some(warning) = phase.split_warning() {
            report.warnings.push(warning);
        }
        let held = match created {
            Ok(held) => held,
            Err(e) => {
                let _ = leader.batch("ROLLBACK").await;
                let e = left_out_needed(plan, &leader, e).await;
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
        };
        *committed = true;
        let stage = async {
            // Autovacuum comes back before `finish` makes the archive's event triggers, which would fire.
            let done = rows_post_data_and_verification(run, plan, &leader).await;
            let (rows, keys, checked) = match (done, held.give_back(&leader).await) {
                (Err(e), Some(kept_off)) => return Err(e.and_hint(kept_off)),
                (Err(e), None) => return Err(e),
                (Ok(done), kept_off) => {
                    report.warnings.extend(kept_off);
                    done
                }
            };
            report.rows = rows;
            report.keys_not_valid(keys, true);
            finish(run, plan, &leader, checked, &mut report).await
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

/// The plan as the target settles it: without the objects that need a table this restore does not make
/// and the target does not have ([`RestorePlan::leave_out_needing`]). Nothing the restore does makes or
/// drops such a table (`--clean` drops only the objects the restore makes), so the target is asked once, first.
///
/// Into a target that must be empty, an extension of the archive's that the target has already (one a
/// non-superuser owner cannot make, made for it by a superuser) is kept as it is: it is no object that
/// makes the target not empty, and the restore does not make it again.
async fn settle<'a>(plan: &'a RestorePlan, session: &Session) -> Result<Cow<'a, RestorePlan>> {
    let mut settled = Cow::Borrowed(plan);
    if matches!(plan.before, Before::RefuseNonEmpty) {
        let extension = |o: &ObjectStep| {
            (o.kind == ObjectKind::Extension).then(|| o.label.strip_prefix("EXTENSION ").map(str::to_owned)).flatten()
        };
        // Every extension of the archive: one that `-t` or `-n` leaves out, which the target has, does not
        // make it not empty either.
        let names = &plan.archive_extensions;
        let present = if names.is_empty() { Vec::new() } else { target::extensions_present(session, names).await? };
        // Of those, the ones this restore would make: not made again, and said.
        let made: Vec<String> = plan.pre_data.iter().filter_map(extension).filter(|n| present.contains(n)).collect();
        if !present.is_empty() {
            settled.to_mut().kept_extensions = present;
        }
        if !made.is_empty() {
            let present = made;
            let p = settled.to_mut();
            for o in p.pre_data.iter_mut().filter(|o| extension(o).is_some_and(|n| present.contains(&n))) {
                o.sql.clear();
            }
            p.warnings.push(format!(
                "the target has {} already: kept as {} (not made again, nor {} comment changed)",
                present.iter().map(|e| format!("extension `{e}`")).collect::<Vec<_>>().join(", "),
                if present.len() == 1 { "it is" } else { "they are" },
                if present.len() == 1 { "its" } else { "their" }
            ));
        }
    }
    // `--clean` over a target whose copy of an archive's extension another role owns (a superuser made
    // it, as managed services do): the restoring role may not drop it, and need not; it is kept as it is.
    if let Before::DropArchiveObjects { .. } = &plan.before {
        let extension = |o: &ObjectStep| {
            (o.kind == ObjectKind::Extension).then(|| o.label.strip_prefix("EXTENSION ").map(str::to_owned)).flatten()
        };
        let names: Vec<String> = plan.pre_data.iter().filter_map(extension).collect();
        let kept = if names.is_empty() { Vec::new() } else { target::extensions_of_others(session, &names).await? };
        if !kept.is_empty() {
            let p = settled.to_mut();
            if let Before::DropArchiveObjects { statements } = &mut p.before {
                let drops: Vec<String> =
                    kept.iter().map(|n| format!("DROP EXTENSION IF EXISTS {};", crate::pg::quote_ident(n))).collect();
                statements.retain(|s| !drops.contains(s));
            }
            for o in p.pre_data.iter_mut().filter(|o| extension(o).is_some_and(|n| kept.contains(&n))) {
                o.sql.clear();
            }
            p.warnings.push(format!(
                "{} owned by another role: kept as {} (neither dropped nor made again)",
                kept.iter().map(|e| format!("extension `{e}`")).collect::<Vec<_>>().join(", "),
                if kept.len() == 1 { "it is" } else { "they are" }
            ));
        }
    }
    let outside = settled.outside_tables();
    if outside.is_empty() {
        return Ok(settled);
    }
    let missing = target::missing_tables(session, &outside).await?;
    if !missing.is_empty() {
        settled.to_mut().leave_out_needing(&missing);
    }
    Ok(settled)
}

/// When post-data objects need what the restore leaves out (`-t t` restores an index on `lower2(name)` and
/// not the function `lower2`), makes each of them (after the post-data objects it depends on) once in the
/// schema's first phase, on the empty tables, and takes them back (a savepoint): one the target cannot
/// make fails there, and the first phase rolls back with nothing restored, where it would otherwise fail
/// after the rows are in, the table left without its keys and indexes. A pre-data object that needs such
/// an object fails in the first phase by itself. Costs nothing when the restore leaves out nothing they
/// need, and little when it does: the tables are empty. The objects go in batches of [`BATCH_OBJECTS`],
/// each taken back before the next, so that the locks they take do not add up in the first phase's
/// transaction (a schema of thousands of indexes on an extension's operator class).
async fn rehearse_post_data(plan: &RestorePlan, session: &Session, cancel: &Cancel) -> Result<()> {
    let position: HashMap<u32, usize> = plan.post_data.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
    let mut batch: BTreeSet<usize> = BTreeSet::new();
    let needing: Vec<usize> = (0..plan.post_data.len()).filter(|&i| !plan.post_data[i].left_out.is_empty()).collect();
    for (n, &i) in needing.iter().enumerate() {
        // The object and the post-data objects it needs first (a foreign key: the key it references).
        let mut stack = vec![i];
        while let Some(at) = stack.pop() {
            if batch.insert(at) {
                stack.extend(plan.post_data[at].deps.iter().filter_map(|d| position.get(d).copied()));
            }
        }
        if batch.len() >= BATCH_OBJECTS || n + 1 == needing.len() {
            let objects: Vec<ObjectStep> = batch.iter().map(|&at| plan.post_data[at].clone()).collect();
            session.batch("SAVEPOINT pgsafe_post_data").await?;
            create_in_order(session, &objects, cancel).await?;
            session.batch("ROLLBACK TO SAVEPOINT pgsafe_post_data; RELEASE SAVEPOINT pgsafe_post_data").await?;
            batch.clear();
        }
    }
    Ok(())
}

/// `e`, an object's failure in the schema's first phase (rolled back), with what the restore leaves out
/// that its objects need and the target lacks (or may lack: a kind it is not asked for by name), when
/// there is any.
async fn left_out_needed(plan: &RestorePlan, session: &Session, e: crate::Error) -> crate::Error {
    if e.kind() != crate::error::ErrorKind::Database {
        return e;
    }
    match lacking(plan, session, true).await.ok().flatten() {
        Some(needing) => e
            .context(format!(
                "the restore leaves out what some of its objects need ({needing}), and the target lacks it"
            ))
            .with_hint(LEFT_OUT_HINT),
        None => e,
    }
}

const LEFT_OUT_HINT: &str = "restore those objects too (`--list` names them; `-L` restores a list that keeps them), \
    or make them in the target first (those the archive does not hold, which its dump's `-t`, `-T`, `-n` or `-N` \
    left out)";

/// What the plan's objects need that it leaves out and the target lacks, as `` `INDEX x` needs `FUNCTION
/// y` ``, joined; `None` when nothing. A need of a kind the target is not asked for by name counts as
/// lacking when `unprobed`.
async fn lacking(plan: &RestorePlan, session: &Session, unprobed: bool) -> Result<Option<String>> {
    let needs = || plan.pre_data.iter().chain(&plan.post_data).flat_map(|o| o.left_out.iter());
    let probes: BTreeSet<String> = needs().filter_map(|n| n.probe.clone()).collect();
    let probes: Vec<String> = probes.into_iter().collect();
    let missing = if probes.is_empty() { Vec::new() } else { target::missing_objects(session, &probes).await? };
    let needing: Vec<String> = plan
        .pre_data
        .iter()
        .chain(&plan.post_data)
        .filter_map(|o| {
            let lacking: Vec<String> = o
                .left_out
                .iter()
                .filter(|n| match &n.probe {
                    Some(p) => missing.contains(p),
                    None => unprobed,
                })
                .map(|n| format!("`{}`", n.label))
                .collect();
            (!lacking.is_empty()).then(|| format!("`{}` needs {}", o.label, lacking.join(", ")))
        })
        .collect();
    // A schema a thousand partitions are in would otherwise be named a thousand times.
    const SHOWN: usize = 10;
    let more = match needing.len() {
        n if n > SHOWN => format!("; and {} more objects", n - SHOWN),
        _ => String::new(),
    };
    Ok((!needing.is_empty()).then(|| needing[..needing.len().min(SHOWN)].join("; ") + &more))
}

/// Refuses the restore before anything is written when an object it makes needs one it leaves out that
/// the target does not have, of a kind the target is asked for by name (a schema, an extension, a type,
/// a function, a relation): the first phase would fail on it, and on a schema big enough to commit that
/// phase in steps, after some of them. Needs of other kinds are left to the rehearsal
/// ([`rehearse_post_data`]) and the first phase.
async fn refuse_missing_needs(plan: &RestorePlan, session: &Session) -> Result<()> {
    match lacking(plan, session, false).await? {
        None => Ok(()),
        Some(needing) => Err(crate::Error::new(
            crate::error::ErrorKind::InvalidInput,
            format!(
                "nothing was restored: the restore leaves out what some of its objects need, and `{}` lacks it: {needing}",
                session.target()
            ),
        )
        .with_hint(LEFT_OUT_HINT)),
    }
}

/// What comes before the pre-data objects in the first phase: the target's old objects go (or the
/// target is found empty), and the roles come.
async fn before(plan: &RestorePlan, archive: &crate::archive::ArchiveReader, phase: &mut FirstPhase<'_>) -> Result<()> {
    match &plan.before {
        Before::RefuseNonEmpty => {
            // What the restore needs and leaves out is the target's to have: the extensions among it (and
            // their members), and the objects it names, and the tables a key or an attachment is made to
            // where the target has them.
            let needed: BTreeSet<String> = plan
                .pre_data
                .iter()
                .chain(&plan.post_data)
                .flat_map(|o| o.left_out.iter().filter_map(|n| n.probe.clone()))
                .chain(plan.outside_tables().iter().map(|t| format!("relation:{}", crate::pg::quote_qualified(t))))
                .collect();
            let mut kept = plan.kept_extensions.clone();
            kept.extend(needed.iter().filter_map(|p| p.strip_prefix("extension:").map(str::to_owned)));
            let needed: Vec<String> = needed.into_iter().collect();
            target::refuse_non_empty(phase.session(), &kept, &needed).await?
        }
        Before::DropArchiveObjects { statements } => target::drop_objects(phase, statements, plan, archive).await?,
        Before::NewDatabase | Before::RequireEmptyTables | Before::EmptyTables => {}
    }
    if !plan.create_roles.is_empty() {
        target::create_roles(phase.session(), &plan.create_roles).await?;
    }
    Ok(())
}

/// Runs one object's statements, naming the object when they fail.
async fn create(session: &Session, o: &ObjectStep, cancel: &Cancel) -> Result<()> {
    run_statements(session, o, &o.sql, cancel).await
}

/// Makes a primary key or unique constraint as [`KeyThroughIndex`] cuts its statements: its index, then
/// the constraint over it, in two transactions.
async fn create_through_index(session: &Session, o: &ObjectStep, key: &KeyThroughIndex, cancel: &Cancel) -> Result<()> {
    run_statements(session, o, &key.index, cancel).await?;
    run_statements(session, o, &key.rest, cancel).await?;
    tracing::debug!("`{}`: made over its index, which built beside its table's others", o.label);
    Ok(())
}

/// Runs `sql`, statements of `o`, in one transaction, naming the object when they fail.
pub(super) async fn run_statements(session: &Session, o: &ObjectStep, sql: &str, cancel: &Cancel) -> Result<()> {
    if sql.is_empty() {
        return Ok(());
    }
    cancel.check("the restore")?;
    let mut attempts = 0;
    loop {
        match session.batch(sql).await {
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
/// The locks one object of the schema's first phase is taken to need, at least: a dropped table may take
/// half a dozen (its TOAST table and index, its types).
const LOCKS_PER_OBJECT: i64 = 8;
const BATCH_BYTES: usize = 256 << 10;

/// Makes `objects` one after the other, in batches, in the session's transaction.
async fn create_in_order(session: &Session, objects: &[ObjectStep], cancel: &Cancel) -> Result<()> {
    FirstPhase::atomic(session, cancel).create_in_order(objects).await
}

/// Makes the post-data objects as [`create_in_order`] does, in the session's transaction
/// (`--single-transaction`), each run of foreign keys in a savepoint: when rows break one of them, the run
/// is taken back and made again key by key, each key whose rows do not hold added `NOT VALID`
/// ([`not_valid::create`]) and returned, the transaction still usable. One savepoint a run, not one a
/// key: each that writes takes a subtransaction, and a transaction of thousands of them slows every
/// snapshot on the server.
async fn create_post_data_in_transaction(
    session: &Session,
    objects: &[ObjectStep],
    cancel: &Cancel,
) -> Result<Vec<NotValidKey>> {
    let mut keys = Vec::new();
    let is_key = |o: &ObjectStep| o.kind == ObjectKind::FkConstraint;
    for run in objects.chunk_by(|a, b| is_key(a) == is_key(b)) {
        if !is_key(&run[0]) {
            create_in_order(session, run, cancel).await?;
            continue;
        }
        session.batch("SAVEPOINT pgsafe_keys").await?;
        match create_in_order(session, run, cancel).await {
            Ok(()) => session.batch("RELEASE SAVEPOINT pgsafe_keys").await?,
            Err(e) if e.sqlstate() == Some(SqlState::FOREIGN_KEY_VIOLATION) => {
                session.batch("ROLLBACK TO SAVEPOINT pgsafe_keys; RELEASE SAVEPOINT pgsafe_keys").await?;
                for o in run {
                    keys.extend(not_valid::create(session, o, cancel, true).await?);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(keys)
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
    /// Objects made in the open transaction.
    objects_in_transaction: usize,
    /// Objects that may still be made before the locks are counted again: counting reads the whole lock
    /// table (`pg_locks`, 11 to 13 ms with `max_locks_per_transaction` = 4096 and 30,000 locks held),
    /// which after each batch of a 10,000-table schema cost over a second.
    uncounted_room: usize,
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

    /// Objects to a batch, at [`LOCKS_PER_OBJECT`] each, so that a batch stays well inside what is left of
    /// the budget.
    fn batch_objects(&self) -> usize {
        usize::try_from(self.limit() / LOCKS_PER_OBJECT).unwrap_or(0).clamp(1, BATCH_OBJECTS)
    }

    /// Objects that may be made before the locks are counted again, `held` locks being held after `made`
    /// objects in the transaction: those that could take half of what is left of the budget, at
    /// [`LOCKS_PER_OBJECT`] each or at the average so far when that is more.
    fn objects_before_count(&self, held: i64, made: usize) -> usize {
        let made = i64::try_from(made.max(1)).unwrap_or(i64::MAX);
        let per_object = ((held + made - 1) / made).max(LOCKS_PER_OBJECT);
        usize::try_from((self.limit() - held) / (2 * per_object)).unwrap_or(0)
    }
}

impl<'a> FirstPhase<'a> {
    /// A phase that stays one transaction whatever it holds.
    fn atomic(session: &'a Session, cancel: &'a Cancel) -> Self {
        FirstPhase {
            session,
            cancel,
            budget: None,
            commits: 0,
            locks_committed: 0,
            objects_in_transaction: 0,
            uncounted_room: 0,
        }
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

    /// Runs `sql`, which makes or drops `objects` objects, in the phase's transaction, then commits part
    /// way if the locks it holds call for it. The locks are counted again only when the objects made since
    /// could have taken half of what was left of the budget ([`LockBudget::objects_before_count`]).
    pub(super) async fn run(&mut self, sql: &str, objects: usize) -> Result<()> {
        self.cancel.check("the restore")?;
        let single = self.budget.is_none();
        self.session.batch(sql).await.map_err(|e| explain_roles(explain_full_lock_table(e, single)))?;
        let Some(budget) = &self.budget else { return Ok(()) };
        self.objects_in_transaction += objects;
        self.uncounted_room = self.uncounted_room.saturating_sub(objects);
        if self.uncounted_room > 0 {
            return Ok(());
        }
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
            self.objects_in_transaction = 0;
            tracing::info!("the schema's first phase holds {held} locks: committed part way ({})", self.commits);
        } else {
            self.uncounted_room = budget.objects_before_count(held, self.objects_in_transaction);
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
                self.run(&batch, in_batch.len()).await.map_err(|e| match in_batch.as_slice() {
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

/// A role the target lacks (42704) or the restoring role may not act as (42501) fails an object's owner
/// or grants: say which options leave them out, as pg_restore users reach for `-O` and `-x`.
fn explain_roles(e: crate::Error) -> crate::Error {
    match e.sqlstate() {
        Some(SqlState::UNDEFINED_OBJECT) => e.and_hint(
            "when it names a role the target lacks: `--create-roles` makes the roles the archive names, or \
             `--no-owner` and `--no-privileges` leave ownership and grants out",
        ),
        Some(SqlState::INSUFFICIENT_PRIVILEGE) => e.and_hint(
            "when it gives an object to another role or grants for one: `--no-owner` leaves every object to the \
             restoring role and `--no-privileges` leaves the grants out; or restore as that role's member or a \
             superuser",
        ),
        _ => e,
    }
}

/// What runs on the sessions of a restore that is not one transaction, once the pre-data objects are made.
enum Step {
    /// Rows, of the parts at these positions in the plan's data: one part, or every part of a table that
    /// loads frozen in a transaction of its own ([`Freeze::AfterTruncate`]).
    Load(Vec<usize>),
    /// An object, and when it is a key that builds beside its table's other indexes, its statements cut so.
    /// Boxed, as is a read: the schedule holds a step for every object of the schema, twice while it runs
    /// (at 10,000 tables, 40,000 steps of 360 bytes each, 32 MB, where boxed they take 32 bytes).
    Object(Box<ObjectStep>, Option<Box<KeyThroughIndex>>),
    Read(Box<Read>),
    /// Nothing: done once every load is, for the objects that wait for every load to wait for it alone.
    EveryLoad,
}

/// Loads the rows, makes the post-data objects and reads the tables back for verification, on the plan's
/// sessions together, the biggest ready task first: a table's post-data objects start once its rows are
/// in (as pg_restore -j builds a table's indexes while other tables load), a table's reads once its rows
/// are in and the objects that keep readers out of it are made. So the sessions that one big table's load
/// or index build would leave idle build or read others. `leader`, idle meanwhile, is asked for the
/// server's version and memory settings. Returns the rows loaded, the foreign keys whose rows do not hold
/// (added `NOT VALID`, see [`not_valid`]) and, unless `--verify none`, what the verification found.
async fn rows_post_data_and_verification(
    run: &Run,
    plan: &RestorePlan,
    leader: &Session,
) -> Result<(u64, Vec<NotValidKey>, Option<Checked>)> {
    let started = Instant::now();
    let level = plan.verify;
    let reads = match level {
        VerifyLevel::None => Vec::new(),
        _ => verify::reads(leader, &plan.tables, plan.jobs, level).await?,
    };
    // Each table with a key once, whatever the number of its keys.
    let keyed: BTreeSet<String> = plan
        .post_data
        .iter()
        .filter(|o| o.kind == ObjectKind::Constraint)
        .filter_map(|o| o.table.as_ref().map(quote_qualified))
        .collect();
    let inheriting = target::inheriting(leader, &keyed.into_iter().collect::<Vec<_>>()).await?;
    let data = plan.pieces(run.archive.index());
    let tasks = steps(&data, &plan.post_data, reads, &inheriting);
    let settings = match target::index_build_memory(leader, plan.jobs).await? {
        Some(set) if !plan.post_data.is_empty() => {
            tracing::info!("sessions build indexes after `{set}`");
            format!("{SCHEMA_SETTINGS}; {set}")
        }
        _ => SCHEMA_SETTINGS.to_string(),
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
    let (loader, parts, cancel) = (run.loader(), Arc::new(data), run.cancel.clone());
    let what = "the restore's rows, post-data and verification";
    let done = pool::run(what, plan.jobs, tasks, &run.cancel, open, |session, step| {
        let (loader, parts, cancel) = (loader.clone(), parts.clone(), cancel.clone());
        async move {
            let result = match step {
                Step::Load(at) => {
                    let steps: Vec<&PartStep> = at.iter().map(|&i| &parts[i]).collect();
                    loader.load_parts(&session, &steps).await.map(Done::Rows)
                }
                Step::Object(o, None) if o.kind == ObjectKind::FkConstraint => {
                    not_valid::create(&session, &o, &cancel, false).await.map(|k| k.map_or(Done::Made, Done::NotValid))
                }
                Step::Object(o, None) => create(&session, &o, &cancel).await.map(|()| Done::Made),
                Step::Object(o, Some(key)) => {
                    create_through_index(&session, &o, &key, &cancel).await.map(|()| Done::Made)
                }
                Step::Read(read) => read.run(&session, level).await.map(Done::Read),
                Step::EveryLoad => Ok(Done::Made),
            };
            (session, result)
        }
    })
    .await?;
    let mut rows = 0;
    let mut found = Vec::new();
    let mut keys = Vec::new();
    for d in done {
        match d {
            Done::Rows(r) => rows += r,
            Done::Made => {}
            Done::NotValid(key) => keys.push(key),
            Done::Read(read) => found.push(read),
        }
    }
    let checked = (level != VerifyLevel::None).then(|| verify::judge_reads(&plan.tables, level, found));
    tracing::info!(
        "rows: {rows} in {} parts, post-data: {} objects{}, on {} sessions in {:.1}s",
        plan.data.len(),
        plan.post_data.len(),
        checked.as_ref().map(|c| format!(", verification: {} tables", c.verified)).unwrap_or_default(),
        plan.jobs,
        started.elapsed().as_secs_f64()
    );
    Ok((rows, keys, checked))
}

/// What a [`Step`] did.
enum Done {
    Rows(u64),
    Made,
    /// A foreign key whose rows do not hold, made `NOT VALID`.
    NotValid(NotValidKey),
    Read(verify::Found),
}

/// The tasks of [`rows_post_data_and_verification`]: the parts' loads (a table that loads frozen, all its
/// parts in one task); each object after the objects it
/// depends on and after its table's loads, or after every load when its table has none here (a partitioned
/// table, whose partitions hold the rows), when it names none, and for a foreign key, which checks the rows
/// of another table too; each read of a table after the table's loads and the objects that keep readers out
/// of it. A key of a table that loads here, inherits from none of `inheriting` and has other indexes to
/// build is made through its index ([`key_through_index`]), so that they build together.
fn steps(
    data: &[PartStep],
    objects: &[ObjectStep],
    reads: Vec<Task<Read>>,
    inheriting: &HashSet<String>,
) -> Vec<Task<Step>> {
    let mut loads: Vec<Vec<usize>> = Vec::new();
    let mut frozen_load: HashMap<&TableName, usize> = HashMap::new();
    for (i, p) in data.iter().enumerate() {
        if p.freeze == Freeze::AfterTruncate {
            if let Some(&load) = frozen_load.get(&p.table) {
                loads[load].push(i);
                continue;
            }
            frozen_load.insert(&p.table, loads.len());
        }
        loads.push(vec![i]);
    }
    let all_loads: Vec<usize> = (0..loads.len()).collect();
    // The objects that wait for every load (a foreign key, an object of a table without rows here) wait
    // for one task that waits for them, once the loads are many: naming every load in each such object's
    // dependencies made the schedule quadratic (6,200 tables, 41,000 indexes of tables without rows: 1.3 GB).
    let every_load_at = loads.len() + objects.len() + reads.len();
    let every_load = if all_loads.len() > EVERY_LOAD_NAMED { vec![every_load_at] } else { all_loads.clone() };
    let mut loads_of: HashMap<&TableName, Vec<usize>> = HashMap::new();
    let mut large_objects = Vec::new();
    for (load, at) in loads.iter().enumerate() {
        let p = &data[at[0]];
        match p.kind {
            PartKind::Table => loads_of.entry(&p.table).or_default().push(load),
            PartKind::LargeObjects => large_objects.push(load),
        }
    }
    let first_object = loads.len();
    let position: HashMap<u32, usize> = objects.iter().enumerate().map(|(i, o)| (o.id, first_object + i)).collect();
    let mut keep_out: HashMap<&TableName, Vec<usize>> = HashMap::new();
    for (i, o) in objects.iter().enumerate() {
        if let Some(table) = o.table.as_ref().filter(|_| o.blocks_readers()) {
            keep_out.entry(table).or_default().push(first_object + i);
        }
    }
    // Sized once: grown by doubling, the list of 40,000 tasks of 10,000 tables held 80,000 tasks' room
    // (31 MB) beside the 20,000 it was copied from.
    let mut tasks: Vec<Task<Step>> = Vec::with_capacity(every_load_at + 1);
    tasks.extend(loads.into_iter().map(|at| {
        let p = &data[at[0]];
        let name = match at.len() {
            1 => p.label(),
            n => format!("the {n} parts of `{}`", p.table),
        };
        let weight = at.iter().map(|&i| data[i].bytes).sum();
        Task { item: Step::Load(at), name, deps: Vec::new(), weight }
    }));
    // The tables with more than one index to build: their keys are made through their indexes, which
    // then build together.
    let mut indexes_of: HashMap<&TableName, usize> = HashMap::new();
    for o in objects.iter().filter(|o| matches!(o.kind, ObjectKind::Index | ObjectKind::Constraint)) {
        if let Some(table) = &o.table {
            *indexes_of.entry(table).or_default() += 1;
        }
    }
    for o in objects {
        // Only a table whose rows load here (not a partitioned table, whose key cannot be added so) and that
        // inherits no columns (see target::inheriting).
        let key = match &o.table {
            Some(table)
                if o.kind == ObjectKind::Constraint
                    && indexes_of.get(table) > Some(&1)
                    && loads_of.contains_key(table)
                    && !inheriting.contains(&quote_qualified(table)) =>
            {
                key_through_index(&o.sql)
            }
            _ => None,
        };
        let rows = match &o.table {
            Some(table) if o.kind != ObjectKind::FkConstraint => loads_of.get(table).unwrap_or(&every_load),
            _ => &every_load,
        };
        let mut deps: Vec<usize> = o.deps.iter().filter_map(|d| position.get(d).copied()).collect();
        deps.extend(rows);
        let item = Step::Object(Box::new(o.clone()), key.map(Box::new));
        tasks.push(Task { item, name: format!("`{}`", o.label), deps, weight: o.size });
    }
    for (i, turns) in lock_turns(objects).into_iter().enumerate() {
        let deps = &mut tasks[first_object + i].deps;
        for t in turns.into_iter().map(|t| first_object + t) {
            if !deps.contains(&t) {
                deps.push(t);
            }
        }
    }
    for read in reads {
        let mut deps = Vec::new();
        if read.item.table.kind == PartKind::Table {
            let name = &read.item.table.name;
            deps.extend(loads_of.get(name).into_iter().flatten());
            deps.extend(keep_out.get(name).into_iter().flatten());
        } else {
            deps.extend(&large_objects);
        }
        tasks.push(Task { item: Step::Read(Box::new(read.item)), name: read.name, deps, weight: read.weight });
    }
    if every_load == [every_load_at] {
        tasks.push(Task { item: Step::EveryLoad, name: "every table's rows".into(), deps: all_loads, weight: 0 });
    }
    tasks
}

/// For each of `objects`, the objects (by position) it waits for so that no two of them that lock the same
/// table in modes that conflict run at once: the one before it, in a dependency order, among those that
/// lock each table it locks ([`locked_tables`]). Two sessions that add foreign keys to one referenced
/// table otherwise wait for each other's lock (`SHARE ROW EXCLUSIVE`, which conflicts with itself), one
/// session idle meanwhile: on a GitLab-shaped schema, whose 2,254 keys reference a few tables, 264 waits
/// of 2 ms or more, 1.5 s of the 8 s post-data phase at `-j 2`. pg_restore -j likewise starts no object
/// that would wait for a running one's lock. The order puts foreign keys last, as they wait for every
/// table's rows: an object that waits for its own table's rows only (a primary key, which a table's
/// reads wait for) never waits for a key. Empty when the objects wait on each other in a loop (the pool
/// says so).
fn lock_turns(objects: &[ObjectStep]) -> Vec<Vec<usize>> {
    let mut turns = vec![Vec::new(); objects.len()];
    let position: HashMap<u32, usize> = objects.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
    // The order of `graph::order` among ready objects is their position: sorted so, foreign keys come last.
    let mut sorted: Vec<usize> = (0..objects.len()).collect();
    sorted.sort_by_key(|&i| (objects[i].kind == ObjectKind::FkConstraint, i));
    let mut at = vec![0; objects.len()];
    for (s, &i) in sorted.iter().enumerate() {
        at[i] = s;
    }
    let deps: Vec<Vec<usize>> = sorted
        .iter()
        .map(|&i| objects[i].deps.iter().filter_map(|d| position.get(d)).map(|&d| at[d]).collect())
        .collect();
    let Some(order) = crate::graph::order(objects.len(), &deps) else { return turns };
    let mut last: HashMap<&TableName, usize> = HashMap::new();
    for i in order.into_iter().map(|s| sorted[s]) {
        for table in locked_tables(&objects[i], objects, &position) {
            if let Some(before) = last.insert(table, i)
                && before != i
            {
                turns[i].push(before);
            }
        }
    }
    turns
}

/// The tables `o` locks in a mode that conflicts with itself: its own table for a constraint, a trigger,
/// a rule or a policy (`ACCESS EXCLUSIVE`, or `SHARE ROW EXCLUSIVE` for a trigger); for a foreign key, its
/// table and the table of the key it references (`SHARE ROW EXCLUSIVE` on both). An index (`SHARE`, which
/// does not conflict with itself) locks none here, as in pg_restore.
fn locked_tables<'a>(
    o: &'a ObjectStep,
    objects: &'a [ObjectStep],
    position: &HashMap<u32, usize>,
) -> Vec<&'a TableName> {
    let Some(own) = &o.table else { return Vec::new() };
    match o.kind {
        ObjectKind::FkConstraint => {
            let referenced = o
                .deps
                .iter()
                .filter_map(|d| position.get(d).map(|&p| &objects[p]))
                .filter(|k| matches!(k.kind, ObjectKind::Constraint | ObjectKind::Index))
                .filter_map(|k| k.table.as_ref());
            let mut tables: Vec<&TableName> = std::iter::once(own).chain(referenced).collect();
            tables.sort();
            tables.dedup();
            tables
        }
        ObjectKind::Constraint
        | ObjectKind::CheckConstraint
        | ObjectKind::Trigger
        | ObjectKind::Rule
        | ObjectKind::Policy
        | ObjectKind::RowSecurity => vec![own],
        _ => Vec::new(),
    }
}

/// Up to this many loads, an object that waits for every load names each; past it, it waits for one
/// [`Step::EveryLoad`] task.
const EVERY_LOAD_NAMED: usize = 32;

/// After the objects and rows: sequence values, privileges, what comes after them (default privileges,
/// materialized view refreshes, event triggers), verification: of the sequences, and of the tables unless
/// `checked` has it done already (beside the post-data objects, when the restore is not one transaction,
/// whose only session `session` then is).
async fn finish(
    run: &Run,
    plan: &RestorePlan,
    session: &Session,
    checked: Option<Checked>,
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
    run.verify(plan, session, plan.single_transaction, checked, report).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{ContentDigest, CopyFormat};
    use crate::restore::plan::PlannedTable;
    use crate::restore::verify::Slice;
    use crate::schema::Section;

    #[test]
    fn the_locks_are_counted_rarely_when_the_lock_table_is_big_and_after_every_batch_near_its_end() {
        // `max_locks_per_transaction` = 4096 and 100 sessions: a limit of 136,533 locks. After a first
        // batch of 200 tables (3 locks each), the next count is 8,500 objects later.
        let big = LockBudget { per_session: 4096, sessions: 100 };
        assert_eq!(big.objects_before_count(600, 200), (136_533 - 600) / 16);
        // An average above 8 locks an object counts sooner.
        assert_eq!(big.objects_before_count(20_000, 1_000), (136_533 - 20_000) / 40);
        // PostgreSQL's default, 64: a limit of 2,133; after 200 tables, 95 objects, less than a batch.
        let small = LockBudget { per_session: 64, sessions: 100 };
        assert_eq!(small.batch_objects(), 200);
        assert_eq!(small.objects_before_count(600, 200), 95);
        assert!(small.objects_before_count(2_100, 700) < 10);
        assert_eq!(small.objects_before_count(2_133, 700), 0);
    }

    fn name(t: &str) -> TableName {
        TableName { schema: "public".into(), name: t.into() }
    }

    fn object(id: u32, kind: ObjectKind, table: Option<&str>, deps: &[u32]) -> ObjectStep {
        ObjectStep {
            id,
            label: format!("{kind} {id}"),
            kind,
            section: Section::PostData,
            owner: None,
            sql: String::new(),
            deps: deps.to_vec(),
            table: table.map(name),
            size: 100,
            outside_tables: Vec::new(),
            left_out: Vec::new(),
        }
    }

    fn read(at: usize, t: &str, kind: PartKind, slice: Option<Slice>) -> Task<Read> {
        let table = PlannedTable {
            name: name(t),
            kind,
            parts: vec![crate::format::PartId(at as u32)],
            columns: Vec::new(),
            format: CopyFormat::Binary,
            filter: None,
            search_path: None,
            rows: 1,
            bytes: 10,
            digest: ContentDigest::default(),
            counted_by_load: false,
            routed: false,
        };
        Task::new(Read { at, table, slice }, format!("verifying {t}"), 10)
    }

    fn part(id: u32, t: &str, kind: PartKind) -> PartStep {
        PartStep {
            part: crate::format::PartId(id),
            table: name(t),
            kind,
            before: None,
            copy: String::new(),
            freeze: Freeze::No,
            after: None,
            search_path: None,
            rows: 1,
            bytes: 10,
            chunks: None,
        }
    }

    #[test]
    fn objects_wait_for_their_tables_rows_and_reads_for_what_keeps_readers_out() {
        let data = vec![
            part(0, "a", PartKind::Table),
            part(1, "a", PartKind::Table),
            part(2, "b", PartKind::Table),
            part(3, "c", PartKind::Table),
            part(4, "pg_largeobject", PartKind::LargeObjects),
        ];
        let objects = vec![
            object(10, ObjectKind::Constraint, Some("a"), &[]),
            object(11, ObjectKind::Index, Some("a"), &[]),
            object(12, ObjectKind::FkConstraint, Some("b"), &[10]),
            object(13, ObjectKind::Constraint, Some("b"), &[]),
            object(14, ObjectKind::Policy, Some("b"), &[]),
            object(15, ObjectKind::Trigger, Some("b"), &[]),
            // An archive written before objects named their table.
            object(16, ObjectKind::Rule, None, &[]),
            // A partitioned table: its partitions hold the rows.
            object(17, ObjectKind::Index, Some("p"), &[]),
        ];
        let mut slices = Slice::of(1000, 256).unwrap().into_iter();
        let reads = vec![
            read(0, "a", PartKind::Table, slices.next()),
            read(0, "a", PartKind::Table, slices.next()),
            read(1, "b", PartKind::Table, None),
            read(2, "c", PartKind::Table, None),
            read(3, "pg_largeobject", PartKind::LargeObjects, None),
        ];
        let tasks = steps(&data, &objects, reads, &HashSet::new());
        let deps: Vec<Vec<usize>> = tasks.iter().map(|t| t.deps.clone()).collect();
        let all = vec![0, 1, 2, 3, 4];
        let expected: Vec<Vec<usize>> = vec![
            // the loads
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            // the objects
            vec![0, 1],
            vec![0, 1],
            // after the last object that locks `b` too (its trigger): see lock_turns
            [vec![5], all.clone(), vec![10]].concat(),
            vec![2],
            // after the key of `b`, then after the policy
            vec![2, 8],
            vec![2, 9],
            all.clone(),
            all.clone(),
            // the reads
            vec![0, 1, 5],
            vec![0, 1, 5],
            vec![2, 8, 9],
            vec![3],
            vec![4],
        ];
        assert_eq!(deps, expected);
        assert!(matches!(&tasks[3].item, Step::Load(at) if at == &[3]));
        assert!(matches!(&tasks[7].item, Step::Object(o, None) if o.id == 12));
        assert!(matches!(&tasks[14].item, Step::Read(r) if r.at == 0 && r.slice.as_ref().is_some_and(|s| s.k == 1)));
    }

    /// Past [`EVERY_LOAD_NAMED`] loads, an object that waits for every load waits for one task that does:
    /// each naming every load made the schedule quadratic in the tables (1.3 GB for 41,000 indexes).
    #[test]
    fn objects_that_wait_for_every_load_of_many_wait_for_one_task() {
        let data: Vec<PartStep> = (0..40).map(|i| part(i, &format!("t{i}"), PartKind::Table)).collect();
        let objects = vec![
            object(100, ObjectKind::FkConstraint, Some("t1"), &[]),
            object(101, ObjectKind::Index, Some("empty"), &[]),
            object(102, ObjectKind::Index, Some("t2"), &[]),
        ];
        let tasks = steps(&data, &objects, Vec::new(), &HashSet::new());
        assert_eq!(tasks.len(), 44);
        assert!(matches!(tasks[43].item, Step::EveryLoad));
        assert_eq!(tasks[43].deps, (0..40).collect::<Vec<_>>());
        assert_eq!(tasks[40].deps, [43]);
        assert_eq!(tasks[41].deps, [43]);
        assert_eq!(tasks[42].deps, [2]);
    }

    #[test]
    fn a_key_is_made_through_its_index_when_its_table_loads_here_and_has_other_indexes_to_build() {
        let data = vec![part(0, "a", PartKind::Table), part(1, "b", PartKind::Table), part(2, "c", PartKind::Table)];
        let key = |id, t: &str, kind| ObjectStep {
            sql: format!("ALTER TABLE ONLY public.{t} ADD CONSTRAINT k{id} {kind} (x);\n"),
            ..object(id, ObjectKind::Constraint, Some(t), &[])
        };
        let objects = vec![
            key(10, "a", "PRIMARY KEY"),
            key(11, "a", "UNIQUE"),
            object(12, ObjectKind::Index, Some("a"), &[]),
            // Its table's only index.
            key(13, "b", "PRIMARY KEY"),
            // A partitioned table's, whose partitions hold the rows.
            key(14, "p", "PRIMARY KEY"),
            object(15, ObjectKind::Index, Some("p"), &[]),
            // A partition's.
            key(16, "c", "PRIMARY KEY"),
            object(17, ObjectKind::Index, Some("c"), &[]),
        ];
        let tasks = steps(&data, &objects, Vec::new(), &HashSet::from(["public.c".to_string()]));
        let cut: Vec<(u32, Option<&str>)> = tasks
            .iter()
            .filter_map(|t| match &t.item {
                Step::Object(o, key) if o.kind == ObjectKind::Constraint => {
                    Some((o.id, key.as_ref().map(|k| k.index.as_str())))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            cut,
            [
                (10, Some("CREATE UNIQUE INDEX k10 ON public.a USING btree (x);\n")),
                (11, Some("CREATE UNIQUE INDEX k11 ON public.a USING btree (x);\n")),
                (13, None),
                (14, None),
                (16, None),
            ]
        );
    }

    #[test]
    fn a_table_that_loads_frozen_loads_all_its_parts_in_one_task_which_its_objects_and_reads_wait_for() {
        let frozen = |id, t| PartStep { freeze: Freeze::AfterTruncate, ..part(id, t, PartKind::Table) };
        let data = vec![frozen(0, "a"), part(1, "b", PartKind::Table), frozen(2, "a"), part(3, "b", PartKind::Table)];
        let objects =
            vec![object(10, ObjectKind::Index, Some("a"), &[]), object(11, ObjectKind::Index, Some("b"), &[])];
        let reads = vec![read(0, "a", PartKind::Table, None), read(1, "b", PartKind::Table, None)];
        let tasks = steps(&data, &objects, reads, &HashSet::new());
        let loads: Vec<&[usize]> = tasks
            .iter()
            .filter_map(|t| if let Step::Load(at) = &t.item { Some(at.as_slice()) } else { None })
            .collect();
        assert_eq!(loads, [&[0, 2][..], &[1], &[3]]);
        assert_eq!(tasks[0].weight, 20, "the weight of both parts");
        let deps: Vec<Vec<usize>> = tasks[3..].iter().map(|t| t.deps.clone()).collect();
        assert_eq!(deps, [vec![0], vec![1, 2], vec![0], vec![1, 2]]);
    }

    #[test]
    fn objects_that_lock_one_table_take_turns_keys_last_so_no_session_waits_for_another() {
        let fk = |id, t, references| object(id, ObjectKind::FkConstraint, Some(t), &[references]);
        let objects = vec![
            // Keys of two tables that many others reference, and an index, which locks nothing that
            // conflicts with itself.
            object(10, ObjectKind::Constraint, Some("projects"), &[]),
            object(11, ObjectKind::Constraint, Some("namespaces"), &[]),
            object(12, ObjectKind::Index, Some("projects"), &[]),
            fk(13, "a", 10),
            fk(14, "b", 10),
            fk(15, "a", 11),
            // Listed after the keys, made before them: it waits for its table's rows only.
            object(16, ObjectKind::Trigger, Some("a"), &[]),
            fk(17, "projects", 11),
            object(18, ObjectKind::Index, Some("a"), &[]),
        ];
        let turns = lock_turns(&objects);
        assert_eq!(
            turns,
            [
                vec![],
                vec![],
                vec![],
                // `a` after its trigger, `projects` after its key
                vec![6, 0],
                // `projects` after the key of `a`
                vec![3],
                // `a` after the key of `a` to `projects`, `namespaces` after its key
                vec![3, 1],
                vec![],
                // `namespaces` after the key of `a` to it, `projects` after the key of `b`
                vec![5, 4],
                vec![],
            ]
        );
        // And the schedule holds them: each waits for its turns besides what it depended on.
        let tasks = steps(&[], &objects, Vec::new(), &HashSet::new());
        assert_eq!(tasks[3].deps, [0, 6]);
        assert_eq!(tasks[7].deps, [1, 5, 4]);
        // Objects in a loop take no turns: the pool names them.
        let looped = vec![fk(1, "a", 2), object(2, ObjectKind::Constraint, Some("a"), &[1])];
        assert_eq!(lock_turns(&looped), [Vec::<usize>::new(), vec![]]);
    }

    #[test]
    fn indexes_triggers_and_foreign_keys_let_readers_through() {
        for kind in [
            ObjectKind::Index,
            ObjectKind::IndexAttach,
            ObjectKind::Statistics,
            ObjectKind::Trigger,
            ObjectKind::FkConstraint,
            ObjectKind::PublicationTable,
        ] {
            assert!(!object(1, kind.clone(), Some("a"), &[]).blocks_readers(), "{kind}");
        }
        for kind in [
            ObjectKind::Constraint,
            ObjectKind::CheckConstraint,
            ObjectKind::Rule,
            ObjectKind::RowSecurity,
            ObjectKind::Policy,
            ObjectKind::Other("SOMETHING NEW".into()),
        ] {
            assert!(object(1, kind.clone(), Some("a"), &[]).blocks_readers(), "{kind}");
        }
    }
}
