//! A data-only restore: the archive's rows into tables that exist, run as its plan says, for superusers
//! and for the tables' owners alike.
//!
//! ```text
//! check the tables (exist, columns, empty) -> user triggers off (by name), foreign keys that would fire
//! off (superuser: session_replication_role; owner: dropped), tables emptied (--clean), in one
//! transaction -> rows on -j sessions -> triggers and foreign keys back, in every outcome -> sequence
//! values -> foreign keys checked (and validated where they were dropped) -> verification
//! ```
//! A non-superuser cannot switch off the triggers that implement foreign keys (they are system
//! triggers), so the foreign keys whose checks the load would fire are dropped and, after the load,
//! added back `NOT VALID` and validated: a key that held before holds again, or the restore names the rows
//! that break it and leaves the key `NOT VALID` (it still checks every new row). With
//! `--single-transaction` all of this is one transaction: nothing changes unless everything holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::plan::{Before, RestorePlan};
use super::target::{self, ForeignKey, Trigger};
use super::{RestoreReport, Run, TriggerMode};
use crate::error::{Error, ErrorKind, Result};
use crate::pg::{Session, quote_qualified};

pub(super) async fn run(plan: &RestorePlan, run: &mut Run) -> Result<RestoreReport> {
    if let Some(role) = &plan.role {
        run.connect = run.connect.with_role(role);
    }
    let leader = run.session().await?;
    let empty_first = plan.before == Before::EmptyTables;
    let looked = async {
        target::check_tables(&leader, plan, empty_first).await?;
        let superuser = target::is_superuser(&leader).await?;
        let version = target::server_version(&leader).await?;
        let triggers = Trigger::read(&leader, plan).await?;
        let foreign_keys = ForeignKey::read(&leader, plan).await?;
        Ok::<_, Error>((superuser, version, triggers, foreign_keys))
    }
    .await;
    let (superuser, version, triggers, foreign_keys) = looked.map_err(|e| match e.kind() {
        ErrorKind::InvalidInput => e,
        _ => e.context("looking at the target before the load; nothing was restored"),
    })?;
    // A key that cannot come back NOT VALID (on a partitioned table before 18) stays, and the load
    // fills what it references first.
    let (dropped, kept): (Vec<ForeignKey>, Vec<ForeignKey>) = if superuser {
        (Vec::new(), Vec::new())
    } else {
        foreign_keys.iter().filter(|f| f.loaded).cloned().partition(|f| f.can_come_back_not_valid(version))
    };
    let order = load_order(plan, &kept)?;
    let switch = Switch { triggers, dropped };
    let mode = if superuser { TriggerMode::ReplicationRole } else { TriggerMode::DisableTriggers };
    let mut report = RestoreReport::start(leader.target(), plan, mode);
    report.schema_objects = 0;
    run.progress.start("restore", plan.data_bytes(), plan.data_rows());

    if plan.single_transaction {
        leader.batch("BEGIN").await?;
        let outcome = async {
            if superuser {
                leader.batch("SET LOCAL session_replication_role = replica").await?;
            }
            switch.off(&leader).await?;
            if empty_first {
                target::empty_tables(&leader, plan, &run.archive).await?;
            }
            report.rows = run.load_serial(&leader, plan, &order).await?;
            if superuser {
                leader.batch("SET LOCAL session_replication_role = origin").await?;
            }
            switch.on(&leader).await?;
            after_load(run, plan, &leader, &foreign_keys, &switch, true, &mut report).await
        }
        .await;
        super::end_single_transaction(&leader, &run.cancel, outcome, &mut report).await?;
    } else {
        leader.batch("BEGIN").await?;
        let prepared = async {
            switch.off(&leader).await?;
            if empty_first {
                target::empty_tables(&leader, plan, &run.archive).await?;
            }
            leader.batch("COMMIT").await
        }
        .await;
        if let Err(e) = prepared {
            let _ = leader.batch("ROLLBACK").await;
            return Err(super::interrupted(&run.cancel, e, "nothing was restored (the preparation rolled back)"));
        }
        let loaded_parts = Arc::new(AtomicUsize::new(0));
        let prepare = superuser.then_some("SET session_replication_role = replica");
        let loaded = run.load_parallel(plan, prepare, &order, loaded_parts.clone()).await;
        // In every outcome, and on a session an interruption does not stop: the triggers and foreign
        // keys come back before anything else happens.
        let put_back = async {
            let session = run.cleanup_session().await?;
            session.batch("BEGIN").await?;
            switch.on(&session).await?;
            session.batch("COMMIT").await?;
            Ok::<_, Error>(session)
        }
        .await;
        match (loaded, put_back) {
            (Ok(rows), Ok(_)) => {
                report.rows = rows;
                after_load(run, plan, &leader, &foreign_keys, &switch, false, &mut report).await?;
            }
            (Ok(_), Err(e)) => return Err(switch.not_back(e, "the rows were loaded")),
            (Err(e), Err(back)) => {
                return Err(switch.not_back(back, &format!("the load stopped ({e}): {}", stopped(plan, &loaded_parts))));
            }
            (Err(e), Ok(session)) => {
                let still_not_valid = switch.validate_what_holds(&session).await;
                let mut what = format!(
                    "{}; the tables' triggers and foreign keys are back as they were",
                    stopped(plan, &loaded_parts)
                );
                if !still_not_valid.is_empty() {
                    what.push_str(&format!(
                        ", except that these foreign keys are back NOT VALID because the rows loaded so far break them: {}",
                        still_not_valid.join(", ")
                    ));
                }
                let error = if run.cancel.is_cancelled() {
                    Error::new(ErrorKind::Cancelled, format!("the restore was interrupted: {what}"))
                } else {
                    e.context(format!("the restore stopped part way ({what})"))
                };
                return Err(error.and_hint("empty the tables and restore again with `--clean`"));
            }
        }
    }
    run.progress.finish();
    Ok(report)
}

/// For each of the plan's parts, the parts that must load first: those of the tables a kept foreign key
/// references, before the tables it checks. Refuses, before anything changes, keys that reference each
/// other in a loop, which no order satisfies.
fn load_order(plan: &RestorePlan, kept: &[ForeignKey]) -> Result<Vec<Vec<usize>>> {
    let mut parts_of: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, p) in plan.data.iter().enumerate() {
        parts_of.entry(quote_qualified(&p.table)).or_default().push(i);
    }
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); plan.data.len()];
    for fk in kept {
        for child in &fk.loaded_tables {
            for parent in fk.referenced_tables.iter().filter(|p| *p != child) {
                for &i in parts_of.get(child).into_iter().flatten() {
                    deps[i].extend(parts_of.get(parent).into_iter().flatten().copied());
                }
            }
        }
    }
    if crate::pool::order(deps.len(), &deps).is_none() {
        let names: Vec<String> = kept.iter().map(|f| format!("`{}` of `{}`", f.name, f.child)).collect();
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the foreign keys {} of partitioned tables refer to each other in a loop: no order of the load satisfies them, and this server cannot add them back NOT VALID (PostgreSQL 18 can); nothing was restored",
                names.join(", ")
            ),
        )
        .with_hint("restore as a superuser, who keeps foreign keys from firing during the load"));
    }
    Ok(deps)
}

/// What a load that stopped had done.
fn stopped(plan: &RestorePlan, loaded_parts: &AtomicUsize) -> String {
    format!(
        "{} of {} parts were loaded and the tables may hold some of their rows",
        loaded_parts.load(Ordering::SeqCst),
        plan.data.len()
    )
}

/// After a complete load: sequence values, every foreign key on or to a restored table checked (and a
/// dropped one validated where it holds), verification. Problems go into the report.
async fn after_load(
    run: &Run,
    plan: &RestorePlan,
    session: &Session,
    foreign_keys: &[ForeignKey],
    switch: &Switch,
    single: bool,
    report: &mut RestoreReport,
) -> Result<()> {
    super::set_sequences(session, &plan.sequences).await?;
    for fk in foreign_keys.iter().filter(|f| f.validated) {
        run.cancel.check("the restore")?;
        let was_dropped = switch.dropped.iter().any(|d| d.name == fk.name && d.child == fk.child);
        match fk.violations(session).await? {
            Some(problem) if was_dropped => report.problems.push(format!(
                "{problem}; the foreign key is back NOT VALID (it checks new rows): fix the rows, then run `{}`",
                fk.validate_statement()
            )),
            Some(problem) => report.problems.push(problem),
            None if was_dropped => session.batch(&fk.validate_statement()).await?,
            None => {}
        }
    }
    run.verify(plan, single.then_some(session), report).await
}

/// The triggers and foreign keys a load switches off, and back on.
struct Switch {
    triggers: Vec<Trigger>,
    dropped: Vec<ForeignKey>,
}

impl Switch {
    /// User triggers disabled by name, foreign keys dropped.
    async fn off(&self, session: &Session) -> Result<()> {
        let mut sql = Trigger::statements(&self.triggers, false);
        sql.extend(self.dropped.iter().map(ForeignKey::drop_statement));
        batch(session, &sql).await.map_err(|e| {
            e.context("switching the tables' triggers and foreign keys off for the load")
                .with_hint("a data-only restore must run as a superuser or as the owner of the tables it loads")
        })
    }

    /// Foreign keys added back `NOT VALID` (validated after the check), triggers back in their own modes.
    async fn on(&self, session: &Session) -> Result<()> {
        let mut sql: Vec<String> = self.dropped.iter().map(ForeignKey::add_statement).collect();
        sql.extend(Trigger::statements(&self.triggers, true));
        batch(session, &sql).await
    }

    /// After a load that stopped: validates each dropped foreign key that was valid before, and returns
    /// those the rows loaded so far break.
    async fn validate_what_holds(&self, session: &Session) -> Vec<String> {
        let mut left = Vec::new();
        for fk in self.dropped.iter().filter(|f| f.validated) {
            if session.batch(&fk.validate_statement()).await.is_err() {
                left.push(format!("`{}` of `{}`", fk.name, fk.child));
            }
        }
        left
    }

    /// The error when putting the triggers and foreign keys back failed: the statements to run by hand.
    fn not_back(&self, e: Error, what: &str) -> Error {
        let mut sql: Vec<String> = self.dropped.iter().map(ForeignKey::add_statement).collect();
        sql.extend(Trigger::statements(&self.triggers, true));
        e.context(format!(
            "{what}, but putting the tables' triggers and foreign keys back failed; run these statements:\n{}\n",
            sql.join("\n")
        ))
    }
}

/// Runs `statements` in batches of 200.
async fn batch(session: &Session, statements: &[String]) -> Result<()> {
    for chunk in statements.chunks(200) {
        session.batch(&chunk.join("\n")).await?;
    }
    Ok(())
}
