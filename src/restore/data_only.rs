//! A data-only restore: the archive's rows into tables that exist, run as its plan says, for superusers
//! and for the tables' owners alike.
//!
//! ```text
//! check the tables (exist, columns, empty, the role may COPY into each) -> read the target's triggers
//! and foreign keys -> units -> in one transaction: tables emptied (--clean), what the units switch off
//! tried and rolled back -> units on -j sessions, each in its own transaction when it switches anything
//! off -> sequence values -> foreign keys checked -> verification
//! ```
//! Nothing is switched off outside the transaction that loads (see [`super::units`]): an interruption,
//! an error or a killed pgsafe leaves every trigger and foreign key as it was. With
//! `--single-transaction` all of it is one transaction: nothing changes unless everything holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::plan::{Before, RestorePlan};
use super::target;
use super::units::{self, ForeignKey, Trigger};
use super::{RestoreReport, Run, TriggerMode, interrupted};
use crate::error::{Error, ErrorKind, Result};
use crate::pg::Session;

pub(super) async fn run(plan: &RestorePlan, run: &Run) -> Result<RestoreReport> {
    let leader = run.session().await?;
    let empty_first = plan.before == Before::EmptyTables;
    let looked = async {
        target::check_tables(&leader, plan, empty_first).await?;
        let superuser = target::is_superuser(&leader).await?;
        if !superuser {
            target::refuse_unloadable(&leader, plan, empty_first).await?;
        }
        let triggers = Trigger::read(&leader, plan).await?;
        let keys = ForeignKey::read(&leader, plan).await?;
        Ok::<_, Error>((superuser, triggers, keys))
    }
    .await;
    let (superuser, triggers, keys) = looked.map_err(|e| match e.kind() {
        ErrorKind::InvalidInput => e,
        _ => interrupted(&run.cancel, e, "looking at the target before the load; nothing was restored"),
    })?;
    let mode = if superuser { TriggerMode::ReplicationRole } else { TriggerMode::DisableTriggers };
    let mut report = RestoreReport::start(leader.target(), plan, mode);
    report.schema_objects = 0;
    run.progress.start("restore", plan.data_bytes(), plan.data_rows());

    if plan.single_transaction {
        let (off, on) = units::switch_all(&triggers, &keys, superuser, empty_first);
        run.begin_single(&leader).await?;
        let outcome = async {
            run.first_in_transaction(&leader).await?;
            if superuser {
                leader.batch("SET LOCAL session_replication_role = replica").await?;
            }
            units::batch(&leader, &off).await?;
            if empty_first {
                // In this one transaction nothing fires on the rows deleted (the role's keys from
                // outside are dropped above, or kept quiet), so a table another table references is
                // emptied row by row, which TRUNCATE would refuse; the keys are checked afterwards.
                let outside: Vec<String> =
                    keys.iter().flat_map(|k| k.referenced_from_outside().iter().cloned()).collect();
                target::empty_tables(&leader, plan, &run.archive, &outside).await?;
            }
            report.rows = run.load_serial(&leader, plan).await?;
            if superuser {
                leader.batch("SET LOCAL session_replication_role = origin").await?;
            }
            super::set_sequences(&leader, &plan.sequences).await?;
            // Every key, before the dropped ones come back: adding one back validates it, and a key
            // that the rows break is better named with an example than refused.
            check_keys(run, &leader, &keys, |_| true, &mut report).await?;
            if report.problems.is_empty() {
                units::immediate_then(&leader, &on).await?;
            }
            run.verify(plan, &leader, true, None, &mut report).await
        }
        .await;
        super::end_single_transaction(&leader, &run.cancel, outcome, &mut report).await?;
    } else {
        // A big part loads in pieces on every session, as in a whole restore (`RestorePlan::pieces`).
        let cut = RestorePlan { data: plan.pieces(run.archive.index()), ..plan.clone() };
        let units = units::units(&cut, &triggers, &keys, superuser)?;
        // The tables are emptied, and what the load switches off tried, in one transaction: a role that may
        // not switch it off is refused before anything is emptied.
        let switches = !superuser && units.iter().any(|u| !u.before.is_empty() || !u.after.is_empty());
        let what = if empty_first { "nothing was emptied and nothing was restored" } else { "nothing was restored" };
        run.check_chunks_first(plan, empty_first, what).await?;
        if empty_first || switches {
            leader.batch("BEGIN").await?;
            let ready = async {
                if empty_first {
                    target::empty_tables(&leader, plan, &run.archive, &[]).await?;
                }
                if switches {
                    units::rehearse(&leader, plan, &units, &run.cancel).await?;
                }
                // A cancel request that reaches an idle session does nothing: ask before committing.
                run.cancel.check("the restore")?;
                leader.batch(if empty_first { "COMMIT" } else { "ROLLBACK" }).await
            }
            .await;
            if let Err(e) = ready {
                let _ = leader.batch("ROLLBACK").await;
                let what = if empty_first {
                    "nothing was restored, and nothing was emptied (`--clean`'s `TRUNCATE` rolled back)"
                } else {
                    "nothing was restored"
                };
                return Err(interrupted(&run.cancel, e, what));
            }
        }
        let loaded_parts = Arc::new(AtomicUsize::new(0));
        let prepare = superuser.then_some("SET session_replication_role = replica");
        let loaded = run.load(&cut, units, prepare, &loaded_parts).await;
        match loaded {
            Ok(rows) => report.rows = rows,
            Err(e) => {
                let emptied = if empty_first { "the tables were emptied (`--clean`) and " } else { "" };
                let loaded = loaded_parts.load(Ordering::SeqCst);
                let loads = match cut.data.len() {
                    n if n == plan.data.len() => format!("{loaded} of {n} parts were loaded"),
                    n => format!(
                        "{loaded} of {n} loads (the archive's {} parts, the big ones cut in pieces) were done",
                        plan.data.len()
                    ),
                };
                let what = format!(
                    "{emptied}{loads}, so the tables may hold some of their rows; their triggers and foreign keys are as they were"
                );
                let error = if run.cancel.is_cancelled() {
                    Error::new(ErrorKind::Cancelled, format!("the restore was interrupted: {what}"))
                } else {
                    e.context(format!("the restore stopped part way ({what})"))
                };
                return Err(error.and_hint(
                    "once what stopped it is put right, restore again with `--clean`; with `--single-transaction` \
                     (`-1`) a failure leaves the tables as they were",
                ));
            }
        }
        let checked = async {
            super::set_sequences(&leader, &plan.sequences).await?;
            // A non-superuser's load checked every row against the keys that fire on it.
            check_keys(run, &leader, &keys, |k| superuser || !k.fires_on_load(), &mut report).await?;
            run.verify(plan, &leader, false, None, &mut report).await
        }
        .await;
        checked.map_err(|e| {
            interrupted(&run.cancel, e, "every row was loaded, but the checks after the load did not finish")
        })?;
    }
    run.progress.finish();
    Ok(report)
}

/// Checks the validated keys `which` selects (a temporal key's rows cannot be matched by equality: it is
/// reported as not checked) and puts what breaks them into the report.
async fn check_keys(
    run: &Run,
    session: &Session,
    keys: &[ForeignKey],
    which: impl Fn(&ForeignKey) -> bool,
    report: &mut RestoreReport,
) -> Result<()> {
    for k in keys.iter().filter(|k| k.key.validated && which(k)) {
        run.cancel.check("the restore")?;
        if k.key.period {
            report.warnings.push(format!(
                "temporal foreign key `{}` of `{}` was not checked after the load (its rows are matched by periods)",
                k.key.name, k.key.child
            ));
            continue;
        }
        report.problems.extend(k.violations(session).await?);
    }
    Ok(())
}
