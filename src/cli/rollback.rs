//! `pgsafe rollback`: a database back to a snapshot, after saying what that loses.

use std::io::IsTerminal as _;
use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use pgsafe::migrate::LockPolicy;
use pgsafe::rollback::{
    Change, Mode, ROLLBACK_LOCK_RETRIES, RollbackOptions, RollbackPlan, RollbackReport, SessionPolicy, TableChange,
};
use pgsafe::store::{Outcome, SnapshotId};
use pgsafe::{Error, ErrorKind};

use super::common::{Abandoned, ConnectArgs, block_on_abandoning, default_jobs, parse_timeout, progress};
use super::notify::NotifyArgs;
use super::output::{self, Exit};
use super::store::StoreArgs;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["snapshot", "latest"]))]
pub struct RollbackArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The identity that reads the store's encrypted snapshots (see `PGSAFE_RECIPIENTS`).
    #[command(flatten)]
    identity: super::keys::IdentityArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    notify: NotifyArgs,

    /// The snapshot's id (`pgsafe snapshots` lists them).
    #[arg(value_name = "SNAPSHOT")]
    snapshot: Option<String>,

    /// The newest snapshot of the database (a rollback's safety snapshots are named by id only).
    #[arg(long)]
    latest: bool,

    /// Print what the rollback would lose and the steps it would take, with estimated times; change nothing.
    #[arg(long)]
    plan: bool,

    /// Do not ask for the confirmation code (for scripts). Without a terminal, required.
    #[arg(long)]
    yes: bool,

    /// Roll back inside the current database, in one transaction (for roles without CREATEDB).
    #[arg(long, conflicts_with = "tables")]
    in_place: bool,

    /// Put back only these tables' rows (patterns as `-t`), in one transaction; other tables untouched.
    #[arg(long, value_name = "TABLE", num_args = 1..)]
    tables: Vec<String>,

    /// Swap: wait this long for other sessions to leave the database, then terminate those left.
    #[arg(long, value_name = "SECONDS", conflicts_with = "wait_sessions")]
    terminate_after: Option<u64>,

    /// Swap: wait up to this long for other sessions to leave, then give up, changing nothing.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    wait_sessions: u64,

    /// Do not take a snapshot of the current state first.
    #[arg(long)]
    no_safety_snapshot: bool,

    /// Do not run the health check (`pgsafe check` against the snapshot) afterwards.
    #[arg(long)]
    no_check: bool,

    /// Workers for verification, the safety snapshot and the restore (default: the machine's cores).
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,

    /// In place and `--tables`: `lock_timeout` of the rollback's transaction. A lock another session holds
    /// longer rolls the attempt back, releasing every lock it took, and it is tried again after a pause.
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "2s", value_parser = parse_timeout)]
    sql_lock_timeout: Duration,

    /// In place and `--tables`: attempts after the first when a lock is not granted in time.
    #[arg(long = "lock-retries", value_name = "N", default_value_t = ROLLBACK_LOCK_RETRIES)]
    lock_retries: u32,

    /// Wait up to SECONDS for another writer of the store.
    #[arg(long = "store-lock-timeout", value_name = "SECONDS", default_value_t = 60)]
    lock_timeout: u64,

    /// Print the plan (with `--plan`) or the report as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// No progress output.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: RollbackArgs) -> Result<Exit, Error> {
    let mode = match (args.in_place, args.tables.is_empty()) {
        (true, _) => Mode::InPlace,
        (false, false) => Mode::Tables(args.tables.clone()),
        (false, true) => Mode::Swap,
    };
    let options = RollbackOptions {
        connect: args.connect.options()?,
        snapshot: args.snapshot.as_deref().map(SnapshotId::parse).transpose()?,
        mode,
        jobs: args.jobs.unwrap_or_else(default_jobs).max(1),
        safety_snapshot: !args.no_safety_snapshot,
        sessions: match args.terminate_after {
            Some(s) => SessionPolicy { wait: Duration::from_secs(s), terminate: true },
            None => SessionPolicy { wait: Duration::from_secs(args.wait_sessions), terminate: false },
        },
        lock_wait: Duration::from_secs(args.lock_timeout),
        lock: LockPolicy { timeout: args.sql_lock_timeout, retries: args.lock_retries },
        health_check: !args.no_check,
        // No OIDs from before and after a migration here: the plan reads the renames its migration's
        // health check recorded in the audit log.
        renamed: Vec::new(),
        cancel: pgsafe::cancel::Cancel::new(),
    };
    let dir = args.store.dir();
    let Some(store) = pgsafe::store::existing(&dir, super::keys::store_keys(&args.identity)?)? else {
        return Err(Error::new(ErrorKind::InvalidInput, format!("there is no store at `{}`", dir.display()))
            .with_hint("`--store DIR`, `PGSAFE_DIR` or `BACKUP_DIR` name the store; `pgsafe snapshot` makes it"));
    };
    let cancel = options.cancel.clone();
    block_on_abandoning("rollback", &cancel, Abandoned::Database, async {
        if args.plan {
            // A plan changes nothing: it needs no lock, and may be read while a migration runs.
            let plan = pgsafe::rollback::plan(&*store, &options).await?;
            if args.json {
                output::stdout(&(serde_json::to_string_pretty(&plan).expect("the plan serializes") + "\n"))?;
            } else {
                output::stdout(&render_plan(&plan, Timestamp::now()))?;
            }
            return Ok(Exit::Success);
        }
        // Taken before the plan: a migration or rollback of the database running now refuses this one
        // at once, and none can start until this one ends.
        let lock = pgsafe::rollback::DatabaseLock::take(&options.connect, "pgsafe rollback").await?;
        let result = run_locked(&args, &options, &*store, &lock).await;
        lock.release().await;
        result
    })
}

/// The plan, the confirmation and the rollback, under the database's lock.
async fn run_locked(
    args: &RollbackArgs,
    options: &RollbackOptions,
    store: &dyn pgsafe::store::Store,
    lock: &pgsafe::rollback::DatabaseLock,
) -> Result<Exit, Error> {
    let (started_at, started) = (Timestamp::now(), std::time::Instant::now());
    let plan = match pgsafe::rollback::plan(store, options).await {
        Ok(plan) => plan,
        Err(e) => {
            let entry = pgsafe::rollback::refusal_entry(options, started_at, started.elapsed().as_secs_f64(), &e);
            if let Err(logged) = store.append_audit(&entry) {
                tracing::warn!("the refused rollback's audit line could not be written: {logged}");
            }
            return Err(e);
        }
    };
    if !args.yes {
        confirm(&plan)?;
    }
    let snapshot = plan.snapshot.id.clone();
    let result = pgsafe::rollback::rollback(store, options, plan, lock, progress(args.quiet)).await;
    notify(&args.notify, options.connect.dbname(), &snapshot, &result);
    let report = result?;
    if args.json {
        output::stdout(&(serde_json::to_string_pretty(&report).expect("the report serializes") + "\n"))?;
    } else {
        output::stdout(&render_report(&report))?;
    }
    if let Some(why) = &report.health_not_run {
        // Rolled back, but whether the database is healthy is not known: not a success (an interrupted
        // check is an interrupted command).
        eprintln!(
            "error: the rollback of `{}` is done, but its health check could not run: {why}\nhint: run `pgsafe check -d {} --against {}`",
            report.database, report.database, report.snapshot
        );
        return Ok(Exit::Error);
    }
    Ok(if report.is_healthy() { Exit::Success } else { Exit::CheckFailed })
}

/// Posts how the rollback ended to `--notify`'s URL, if any.
fn notify(notify: &NotifyArgs, database: &str, snapshot: &SnapshotId, result: &Result<RollbackReport, Error>) {
    let host = pgsafe::store::audit::host_name();
    match result {
        Ok(r) => notify.send(
            &format!(
                "pgsafe rolled `{database}` back to snapshot `{snapshot}` on {host} ({}): {} rows restored and verified{}",
                r.mode,
                r.restore.rows,
                r.replaced_database_kept_as.as_deref().map(|a| format!("; the replaced database is kept as `{a}`")).unwrap_or_default()
            ),
            r,
        ),
        Err(e) => {
            let Outcome::Failed { error } = Outcome::of(result) else { return };
            let attention = e.kind() == ErrorKind::NeedsAttention;
            notify.send(
                &format!(
                    "pgsafe rollback of `{database}` to snapshot `{snapshot}` failed on {host}{}: {error}",
                    if attention { " and the database NEEDS ATTENTION" } else { "" }
                ),
                &serde_json::json!({
                    "command": "rollback", "database": database, "snapshot": snapshot, "host": host,
                    "outcome": "failed", "needs_attention": attention, "error": error, "hint": e.hint(),
                }),
            );
        }
    }
}

/// On a terminal: the plan, then a generated code the user must type. Anywhere else: refused, naming
/// `--yes`.
fn confirm(plan: &RollbackPlan) -> Result<(), Error> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "a rollback of `{}` needs a confirmation, and there is no terminal to ask on; nothing was changed",
                plan.database
            ),
        )
        .with_hint("`--plan` shows what it would do; `--yes` confirms it in a script"));
    }
    eprint!("{}", render_plan(plan, Timestamp::now()));
    let code = confirmation_code();
    eprint!("\nto roll back `{}`, type {code}: ", plan.database);
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::new(ErrorKind::Io, "reading the confirmation code").with_source(e))?;
    if line.trim() != code {
        return Err(Error::new(ErrorKind::InvalidInput, "the confirmation code did not match; nothing was changed"));
    }
    Ok(())
}

/// Six characters that cannot be misread (no 0/O, 1/I/L), from the process's random hasher seed.
fn confirmation_code() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Timestamp::now().as_nanosecond() as u128);
    let mut n = hasher.finish();
    (0..6)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn render_plan(plan: &RollbackPlan, now: Timestamp) -> String {
    let s = &plan.snapshot;
    let mut out = format!(
        "rollback of `{}` ({}) to snapshot `{}`, taken {} UTC ({} ago){}, by {}\n",
        plan.database,
        plan.server,
        s.id,
        s.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        super::store::age(now, s.created_at),
        s.label.as_deref().map(|l| format!(", label `{l}`")).unwrap_or_default(),
        plan.mode
    );
    let c = &plan.changes;
    let tables = |change: Change| c.tables.iter().filter(move |t| t.change == change);
    let rows = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    out.push_str("\nwhat the rollback loses, as the database is now (rows written until it shuts other sessions out are lost too):\n");
    if !c.loses_anything() {
        out.push_str("  nothing: every table holds the snapshot's rows and the schema is the snapshot's\n");
    }
    let mut section = |title: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            out.push_str(&format!("  {title}:\n"));
            for l in lines {
                out.push_str(&format!("    {l}\n"));
            }
        }
    };
    section(
        "tables changed since the snapshot (their rows go back to the snapshot's)",
        tables(Change::Changed)
            .map(|t| {
                format!(
                    "{}  rows now {}, in the snapshot {}{}",
                    t.table,
                    rows(t.rows_now),
                    rows(t.rows_in_snapshot),
                    t.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
                )
            })
            .collect(),
    );
    section(
        "tables that exist now and not in the snapshot (dropped with their rows)",
        tables(Change::New).map(|t| format!("{}  rows now {}", t.table, rows(t.rows_now))).collect(),
    );
    section(
        "tables that could not be compared",
        tables(Change::Unknown).map(|t| format!("{}  {}", t.table, t.note.as_deref().unwrap_or(""))).collect(),
    );
    let objects = |change: Change| c.objects.iter().filter(move |o| o.change == change).map(|o| o.object.clone());
    section("objects that exist now and not in the snapshot (dropped)", objects(Change::New).collect());
    section("objects changed since the snapshot (put back as they were)", objects(Change::Changed).collect());
    section(
        "tables and objects the snapshot has and the database lacks (they come back)",
        tables(Change::Gone)
            .map(|t| format!("{}  rows {}", t.table, rows(t.rows_in_snapshot)))
            .chain(objects(Change::Gone))
            .collect(),
    );
    let unchanged = tables(Change::Unchanged).count();
    out.push_str(&format!("  unchanged: {unchanged} table(s), same rows as the snapshot\n"));
    out.push_str(&format!("\nsteps (about {}, estimated {}):\n", seconds(plan.estimated_seconds), plan.estimate_basis));
    for (i, step) in plan.steps.iter().enumerate() {
        out.push_str(&format!("  {}. {} (~{})\n", i + 1, step.step, seconds(step.estimated_seconds)));
    }
    out
}

fn seconds(s: f64) -> String {
    match s {
        s if s < 60.0 => format!("{s:.0}s"),
        s if s < 3600.0 => format!("{}m {:02}s", (s / 60.0) as u64, (s % 60.0) as u64),
        s => format!("{}h {:02}m", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64),
    }
}

fn render_report(r: &RollbackReport) -> String {
    let mut out = format!(
        "rolled back `{}` to snapshot `{}` ({}) in {:.1}s: {} tables, {} rows restored and verified\n",
        r.database, r.snapshot, r.mode, r.seconds, r.restore.tables, r.restore.rows
    );
    out.push_str(&discarded(r, None));
    if let Some(id) = &r.safety_snapshot {
        out.push_str(&format!("the state it replaced is in safety snapshot `{id}`\n"));
    }
    if let Some(aside) = &r.replaced_database_kept_as {
        out.push_str(&format!("the replaced database is kept as `{aside}` (drop it when no longer needed)\n"));
    }
    out.push_str(&terminated(r));
    for w in &r.restore.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    match &r.health {
        None if r.health_not_run.is_some() => out.push_str("health check: could not run\n"),
        None => out.push_str("health check: not run\n"),
        Some(h) if h.healthy => out.push_str(&format!(
            "health check: healthy ({} warning(s), {} note(s))\n",
            h.count(pgsafe::check::Level::Warning),
            h.count(pgsafe::check::Level::Info)
        )),
        Some(h) => {
            out.push_str("health check: UNHEALTHY after the rollback\n");
            for f in h.findings.iter().filter(|f| f.level == pgsafe::check::Level::Error) {
                out.push_str(&format!(
                    "  error {}{}: {}\n",
                    f.check,
                    f.object.as_deref().map(|o| format!(" {o}")).unwrap_or_default(),
                    f.message
                ));
            }
        }
    }
    out
}

/// What a rollback threw away, as it counted it once it had shut other sessions out (the replaced
/// database, or its own transaction): the rows written since the snapshot, `written_by` whom when the
/// caller knows (`pgsafe migrate`: the migration's and any other session's alike).
pub(super) fn discarded(r: &RollbackReport, written_by: Option<&str>) -> String {
    let tables: Vec<&TableChange> = r.changes.tables_losing_rows().collect();
    let mut out = if tables.is_empty() {
        "the rollback discarded no rows: every table held the snapshot's rows\n".to_owned()
    } else {
        format!(
            "the rollback discarded the rows written since the snapshot{}, in {} table(s):\n",
            written_by.map(|w| format!(", {w}")).unwrap_or_default(),
            tables.len()
        )
    };
    let rows = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    for t in tables {
        out.push_str(&match t.change {
            Change::New => {
                format!("  {}  {} rows (a table new since the snapshot, dropped)\n", t.table, rows(t.rows_now))
            }
            Change::Unknown => {
                format!("  {}  not compared: {}\n", t.table, t.note.as_deref().unwrap_or("unknown"))
            }
            _ => format!(
                "  {}  {} rows before the rollback, {} in the snapshot{}\n",
                t.table,
                rows(t.rows_now),
                rows(t.rows_in_snapshot),
                t.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
            ),
        });
    }
    if let Some(why) = &r.changes_not_recounted {
        out.push_str(&format!(
            "  (counted before the rollback shut other sessions out, as counting again failed: {why}; rows \
             committed after that count were discarded too)\n"
        ));
    }
    out
}

/// A line for each session a swap terminated, naming it as `pg_stat_activity` did.
pub(super) fn terminated(r: &RollbackReport) -> String {
    r.sessions.iter().flat_map(|s| &s.terminated).map(|t| format!("terminated session {t}\n")).collect()
}
