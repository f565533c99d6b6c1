//! `pgsafe dry-run`: rehearse SQL migrations on the database in a transaction that is rolled back, and
//! say per statement what it would do and lose; exit 0 when it would run and lose nothing, 1 when it
//! would fail or lose data, 2 when it could not run.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use pgsafe::cancel::Cancel;
use pgsafe::dryrun::{
    DEFAULT_MAX_COMPARE_ROWS, DEFAULT_MAX_REWRITE_BYTES, DryRunOptions, DryRunReport, Loss, LossKind, StatementOutcome,
    StatementReport, migration_files,
};
use pgsafe::store::resolve_dir;
use pgsafe::{Error, ErrorKind};

use super::common::{ConnectArgs, block_on_cancellable, parse_timeout};
use super::output::{self, Exit};

#[derive(Debug, Args)]
pub struct DryRunArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The identity that reads the store's encrypted snapshots (see `PGSAFE_RECIPIENTS`).
    #[command(flatten)]
    identity: super::keys::IdentityArgs,

    /// Migration files, run in the order given; a folder runs its migrations in the order `migrate`
    /// applies them (by version: `V1_2` before `V1_11`), without `*.down.sql`.
    #[arg(value_name = "FILE|DIR", required_unless_present = "command")]
    paths: Vec<PathBuf>,

    /// Another tool's migration command, after `--`: rehearsed on a scratch copy restored from a snapshot.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,

    /// With a command: where the scratch copy lives, `server` (a new database on the same server, needs
    /// CREATEDB) or `local` (a throwaway cluster of the server's major version from this machine's
    /// binaries).
    #[arg(long, value_name = "WHERE", default_value = "server", value_parser = ["server", "local"])]
    scratch: String,

    /// With a command: the snapshot to start from (default: the newest of the database, or one taken now
    /// when the store holds none).
    #[arg(long, value_name = "SNAPSHOT", conflicts_with = "fresh")]
    snapshot: Option<String>,

    /// With a command: take a new snapshot to start from.
    #[arg(long)]
    fresh: bool,

    /// No progress output (with a command).
    #[arg(short, long)]
    quiet: bool,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// How long a statement may wait for another session's lock before the rehearsal stops (`2s`).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_timeout)]
    lock_timeout: Duration,

    /// How long one statement may run (`60s`).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_timeout)]
    statement_timeout: Duration,

    /// A statement that would rewrite or scan a table bigger than this (with its indexes) is not run on
    /// the database, only reported with the table's size: bytes, or `500MiB`, `2GiB`. Default 1 GiB.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_REWRITE_BYTES, value_parser = parse_bytes)]
    max_rewrite_bytes: u64,

    /// A type change compares at most this many values; on a bigger table the count is extrapolated.
    #[arg(long, value_name = "ROWS", default_value_t = DEFAULT_MAX_COMPARE_ROWS)]
    max_compare_rows: u64,

    /// Flyway migrations (`V1__x.sql`, `R__x.sql`) are rehearsed with their placeholders filled, as
    /// `pgsafe migrate` fills them.
    #[command(flatten)]
    flyway: super::migrate::FlywayArgs,

    /// The store whose audit log records the dry run. Default: env `PGSAFE_DIR`, else env `BACKUP_DIR`,
    /// else `./.pgsafe`. A dry run never creates it.
    #[arg(long = "store", value_name = "DIR")]
    store: Option<PathBuf>,
}

/// Bytes as a number, or with a unit: `kB`, `MB`, `GB` (powers of 1000), `KiB`, `MiB`, `GiB`, `TiB`.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => return Err(format!("`{other}` is not a unit of bytes (B, kB, MB, GB, KiB, MiB, GiB, TiB)")),
    };
    let number: u64 = number.parse().map_err(|_| format!("`{text}` is not a number of bytes such as `1GiB`"))?;
    number.checked_mul(unit).ok_or_else(|| format!("`{text}` is too big"))
}

pub fn run(args: DryRunArgs) -> Result<Exit, Error> {
    if !args.command.is_empty() {
        return rehearse(args);
    }
    let connect = args.connect.options()?;
    let dir = resolve_dir(args.store.as_deref());
    let store = pgsafe::store::existing(&dir, Default::default())?;
    let files = migration_files(&args.paths)?;
    // Flyway migrations run with their placeholders filled, as `migrate` runs them; every text read here
    // is the one rehearsed, so that no file is read twice.
    let mut read = Vec::new();
    for path in &files {
        read.push(std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?);
    }
    let named: Vec<(PathBuf, &str)> = files.iter().cloned().zip(read.iter().map(String::as_str)).collect();
    let filled = args.flyway.fill(&named, Some(&connect))?;
    let texts = files
        .iter()
        .cloned()
        .zip(read)
        .zip(filled)
        .map(|((path, text), filled)| (path, filled.unwrap_or(text)))
        .collect();
    let options = DryRunOptions {
        connect,
        files,
        texts,
        lock_timeout: args.lock_timeout,
        statement_timeout: args.statement_timeout,
        max_rewrite_bytes: args.max_rewrite_bytes,
        max_compare_rows: args.max_compare_rows,
        one_transaction: false,
        cancel: Cancel::new(),
    };
    let started_at = Timestamp::now();
    let result = block_on_cancellable("dry run", &options.cancel, pgsafe::dryrun::dry_run(&options));
    let logged = match &store {
        Some(store) => {
            let seconds = match &result {
                Ok(report) => report.seconds,
                Err(_) => Timestamp::now().duration_since(started_at).as_secs_f64(),
            };
            let entry = pgsafe::dryrun::audit_entry(&options, started_at, seconds, &result);
            store.append_audit(&entry).map_err(|e| e.context("the dry run ran, but its audit line was not written"))
        }
        None => Ok(()),
    };
    let report = result?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)
            .map_err(|e| Error::new(ErrorKind::Io, "writing the report").with_source(e))?
            + "\n"
    } else {
        render(&report)
    };
    output::stdout(&text)?;
    logged?;
    Ok(if report.would_fail || report.loses_data || report.timed_out { Exit::CheckFailed } else { Exit::Success })
}

/// `pgsafe dry-run -d DB -- COMMAND`: the command rehearsed on a scratch copy of a snapshot.
fn rehearse(args: DryRunArgs) -> Result<Exit, Error> {
    use pgsafe::migrate::scratch::{RehearsalOptions, ScratchKind};
    if !args.paths.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "give SQL files or a command after `--`, not both"));
    }
    let options = RehearsalOptions {
        connect: args.connect.options()?,
        command: args.command.clone(),
        snapshot: args.snapshot.as_deref().map(pgsafe::store::SnapshotId::parse).transpose()?,
        fresh: args.fresh,
        scratch: if args.scratch == "local" { ScratchKind::Local } else { ScratchKind::Server },
        jobs: super::common::default_jobs(),
        lock_wait: Duration::from_secs(60),
        cancel: Cancel::new(),
    };
    // A rehearsal may take a snapshot: the store is made when missing, as `pgsafe snapshot` makes it.
    let store = pgsafe::store::open(&resolve_dir(args.store.as_deref()), super::keys::store_keys(&args.identity)?)?;
    let started_at = Timestamp::now();
    let result = block_on_cancellable(
        "dry run",
        &options.cancel,
        pgsafe::migrate::scratch::rehearse(&*store, &options, super::common::progress(args.quiet)),
    );
    let mut entry = pgsafe::store::AuditEntry::new(
        pgsafe::store::AuditCommand::DryRun,
        started_at,
        match &result {
            Ok(r) if r.is_bad() => pgsafe::store::Outcome::Failed {
                error: format!(
                    "the command exited {:?}; {} table(s) lost rows, {} had rows deleted or values changed",
                    r.exit_code,
                    r.rows_lost.len(),
                    r.values.iter().filter(|v| v.loses_anything()).count()
                ),
            },
            other => pgsafe::store::Outcome::of(other),
        },
        Timestamp::now().duration_since(started_at).as_secs_f64(),
    )
    .connected_to(&options.connect);
    entry.migration = Some(options.command.join(" "));
    entry.snapshot = result.as_ref().ok().map(|r| r.snapshot.clone());
    if let Err(e) = store.append_audit(&entry) {
        eprintln!("warning: the dry run's audit line was not written: {e}");
    }
    let report = result?;
    if args.json {
        output::stdout(&(serde_json::to_string_pretty(&report).expect("the report serializes") + "\n"))?;
    } else {
        output::stdout(&render_rehearsal(&report))?;
    }
    if let Some(left) = &report.scratch_left_over {
        eprintln!(
            "warning: the scratch database `{}` could not be dropped ({}); drop it: DROP DATABASE {};",
            left.database,
            left.error,
            pgsafe::sql::quote_ident(&left.database)
        );
    }
    Ok(if report.is_bad() { Exit::CheckFailed } else { Exit::Success })
}

fn render_rehearsal(r: &pgsafe::migrate::scratch::Rehearsal) -> String {
    use pgsafe::rollback::Change;
    let mut out = String::new();
    if let Some(stale) = &r.stale_snapshot {
        out.push_str(&format!(
            "the newest snapshot `{}` is older than the `{}` of `{}` that ended at {}: took snapshot `{}` of the database as it is\n",
            stale.snapshot,
            stale.changed_by,
            r.database,
            stale.changed_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            r.snapshot
        ));
    }
    let taken = match r.snapshot_taken.by_this_rehearsal {
        true => String::new(),
        false => format!(
            ", taken {} ago: rows written since are not in it (`--fresh` rehearses on one taken now)",
            super::store::age(jiff::Timestamp::now(), r.snapshot_taken.at)
        ),
    };
    out.push_str(&format!(
        "rehearsed on a scratch copy of snapshot `{}`{taken} ({}): the command {}\n",
        r.snapshot,
        if r.scratch == pgsafe::migrate::scratch::ScratchKind::Local {
            "a throwaway local cluster"
        } else {
            "the same server"
        },
        match r.exit_code {
            Some(0) => "succeeded".to_owned(),
            Some(code) => format!("FAILED with exit code {code}"),
            None => "was ended by a signal".to_owned(),
        }
    ));
    let objects =
        |change: Change| r.changes.objects.iter().filter(move |o| o.change == change).map(|o| o.object.clone());
    for (title, change) in [("added", Change::New), ("altered", Change::Changed), ("dropped", Change::Gone)] {
        let list: Vec<String> = objects(change).collect();
        if !list.is_empty() {
            out.push_str(&format!("schema {title}:\n"));
            for o in list {
                out.push_str(&format!("  {o}\n"));
            }
        }
    }
    let changed: Vec<_> = r.changes.tables.iter().filter(|t| t.change != Change::Unchanged).collect();
    if !changed.is_empty() {
        out.push_str("tables whose rows changed:\n");
        for t in changed {
            let rows = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
            let partitions = match t.rows_in_partitions {
                Some(n) => format!(" ({n} in its partitions)"),
                None => String::new(),
            };
            out.push_str(&format!(
                "  {}  {} -> {} rows{partitions}\n",
                t.table,
                rows(t.rows_in_snapshot),
                rows(t.rows_now)
            ));
        }
    }
    for l in &r.rows_lost {
        out.push_str(&format!(
            "LOST: {} rows of {}{}\n",
            l.lost,
            l.table,
            if l.rows_after.is_none() { " (table dropped)" } else { "" }
        ));
    }
    for c in &r.columns_dropped {
        if let Some(kept) = &c.kept_in {
            out.push_str(&format!(
                "column {}.{} dropped: {} of its values are in {}, which the command added\n",
                c.table, c.column, kept.values, kept.column
            ));
        }
        out.push_str(&match c.values {
            Some(0) if c.kept_in.is_some() => String::new(),
            Some(n) => format!("LOST: column {}.{} dropped ({n} values not NULL)\n", c.table, c.column),
            None => format!(
                "LOST: column {}.{} dropped ({} rows held a value or NULL in it)\n",
                c.table, c.column, c.rows_in_snapshot
            ),
        });
    }
    for v in &r.values {
        let example = |e: &Option<String>| e.as_ref().map(|e| format!(", for example key {e}")).unwrap_or_default();
        if v.rows_deleted > 0 {
            out.push_str(&format!(
                "LOST: {} rows of {} deleted{}\n",
                v.rows_deleted,
                v.table,
                example(&v.deleted_example)
            ));
        }
        for c in &v.columns_changed {
            out.push_str(&format!("CHANGED: {} values of {}.{}{}\n", c.values, v.table, c.column, example(&c.example)));
        }
        if let Some(note) = &v.note {
            out.push_str(&format!("note: {}: {note}\n", v.table));
        }
    }
    if let Some(ddl) = &r.ddl {
        out.push_str(&format!("DDL the command ran ({}):\n", ddl.len()));
        for s in ddl {
            out.push_str(&format!("  {}\n", s.trim().lines().next().unwrap_or("")));
        }
    }
    if let Some(lint) = &r.lint {
        out.push_str(&format!("lint of that DDL: {} finding(s)\n", lint.findings.len()));
        for f in &lint.findings {
            out.push_str(&format!("  {}[{}]: {}\n", f.level, f.rule, f.message));
        }
    }
    for b in &r.sequences_behind {
        let label = if b.before { "note: it was so in the snapshot already:" } else { "FAILS LATER:" };
        out.push_str(&format!("{label} {}\n", b.describe()));
    }
    out.push_str(if r.is_bad() {
        "verdict: the command would fail or lose data\n"
    } else {
        "verdict: the command would run and lose no rows\n"
    });
    out
}

/// The text report: a block per statement, then the verdict.
fn render(report: &DryRunReport) -> String {
    let mut out = String::new();
    for s in &report.statements {
        statement(&mut out, s);
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    sequences(&mut out, report);
    out.push_str(&verdict(report));
    out
}

/// The sequences the migration leaves behind the values they fill, a line each.
pub(super) fn sequences(out: &mut String, report: &DryRunReport) {
    for sequence in &report.sequences_behind {
        out.push_str(&format!("after the migration: {}\n", sequence.describe()));
    }
}

/// Whether the statement is one that makes a rehearsal fail or lose data.
pub(super) fn refuses(s: &StatementReport) -> bool {
    s.failure.is_some()
        || matches!(s.outcome, StatementOutcome::Failed | StatementOutcome::LockTimeout | StatementOutcome::Timeout)
        || s.losses.iter().any(|l| l.count > 0)
}

pub(super) fn statement(out: &mut String, s: &StatementReport) {
    let time = if matches!(s.outcome, StatementOutcome::Ran | StatementOutcome::Failed | StatementOutcome::Timeout) {
        format!("  {:.3}s", s.seconds)
    } else {
        String::new()
    };
    out.push_str(&format!("{}:{}  {}{time}  {}\n", s.file, s.line, s.outcome, s.statement));
    let mut line = |label: &str, text: String| out.push_str(&format!("  {label}: {text}\n"));
    if let Some(reason) = &s.reason {
        line("why", reason.clone());
    }
    if let Some(rows) = s.rows {
        line("rows", rows.to_string());
    }
    let relations = |v: &[pgsafe::dryrun::RelationChange]| {
        v.iter().map(|r| format!("{} ({})", r.relation, r.kind)).collect::<Vec<_>>().join(", ")
    };
    if !s.rewritten.is_empty() {
        line("rewrites", relations(&s.rewritten));
    }
    if !s.created.is_empty() {
        line("creates", relations(&s.created));
    }
    if !s.dropped.is_empty() {
        line("drops", relations(&s.dropped));
    }
    for lock in &s.locks {
        line("lock", format!("{} on {} (held {:.3}s)", lock.lock, lock.relation, lock.held_seconds));
    }
    for loss in s.losses.iter().filter(|l| l.count > 0) {
        line("loses", loss_text(loss));
    }
    if let Some(failure) = &s.failure {
        let code = failure.sqlstate.as_deref().map(|c| format!("{c} ")).unwrap_or_default();
        line("error", format!("{code}{}", failure.message));
        if let Some(rows) = &failure.rows {
            let examples = if rows.examples.is_empty() {
                String::new()
            } else {
                format!(", such as {}", rows.examples.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", "))
            };
            line("because", format!("{} {}{examples}", rows.count, rows.what));
        }
    }
    for estimate in &s.estimates {
        line(
            "table",
            format!(
                "{}: {}, about {} rows; {}",
                estimate.table,
                output::bytes(estimate.bytes),
                estimate.rows,
                estimate.work
            ),
        );
    }
    for note in &s.notes {
        line("note", note.clone());
    }
}

pub(super) fn loss_text(loss: &Loss) -> String {
    let column = loss.column.as_deref().unwrap_or("?");
    let (n, table) = (loss.count, &loss.table);
    let about = if loss.estimated { "about " } else { "" };
    match loss.kind {
        LossKind::DroppedColumn => format!("{n} non-null values of `{table}.{column}` (column dropped)"),
        LossKind::DroppedAttribute => format!("{n} non-null values of `{table}.{column}` (attribute dropped)"),
        LossKind::DroppedTable => format!("{n} rows of `{table}` (table dropped)"),
        LossKind::Deleted => format!("{n} rows deleted from `{table}`"),
        LossKind::Updated => match &loss.column {
            Some(column) => format!("{n} values of `{table}.{column}` set by a foreign key's referential action"),
            None => format!("{n} rows of `{table}` updated"),
        },
        LossKind::AlteredValues => format!("{about}{n} values of `{table}.{column}` altered by the type change"),
        LossKind::Truncated => format!("{n} rows of `{table}` (truncated)"),
        LossKind::LargeObjects => format!("{n} large objects removed"),
    }
}

/// `would fail`, `would lose data` or `safe`, then the counts of each outcome and the time.
pub(super) fn verdict(report: &DryRunReport) -> String {
    // A migration whose statements all run but that leaves a sequence behind fails later, at the
    // application's next INSERT.
    let stopped = report.stopped();
    let word = match (report.would_fail, report.loses_data) {
        (true, true) if !stopped => "would leave inserts failing and lose data",
        (true, false) if !stopped => "would leave inserts failing",
        (true, true) => "would fail and lose data",
        (true, false) => "would fail",
        // A statement ran past the rehearsal's own time limit: what it and the rest do is not known.
        (false, true) if report.timed_out => {
            "would lose data, and the rest is not known: a statement ran longer than --statement-timeout, the rehearsal's own limit"
        }
        (false, false) if report.timed_out => {
            "not known: a statement ran longer than --statement-timeout, the rehearsal's own limit (the migration has none)"
        }
        (false, true) => "would lose data",
        (false, false) => "would run and lose nothing",
    };
    let counts: Vec<String> = [
        StatementOutcome::Ran,
        StatementOutcome::Estimated,
        StatementOutcome::NotRun,
        StatementOutcome::Failed,
        StatementOutcome::LockTimeout,
        StatementOutcome::Timeout,
    ]
    .into_iter()
    .map(|o| (o, report.count(o)))
    .filter(|(_, n)| *n > 0)
    .map(|(o, n)| format!("{n} {o}"))
    .collect();
    format!(
        "{word}: {} statements, {} (rolled back; `{}`, {:.1}s)\n",
        report.statements.len(),
        counts.join(", "),
        report.server,
        report.seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_timeouts_read_as_people_write_them() {
        assert_eq!(parse_bytes("1073741824"), Ok(1 << 30));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("500 MB"), Ok(500_000_000));
        assert!(parse_bytes("1.5GiB").unwrap_err().contains("not a unit"));
        assert!(parse_bytes("GiB").unwrap_err().contains("not a number"));
        assert_eq!(parse_timeout("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_timeout("0s").unwrap_err().contains("at least 1ms"));
    }

    #[test]
    fn a_loss_reads_as_what_is_lost_and_where() {
        let loss = |kind, column: Option<&str>, estimated| Loss {
            kind,
            table: "public.item".into(),
            column: column.map(str::to_owned),
            count: 7,
            estimated,
        };
        assert_eq!(
            loss_text(&loss(LossKind::DroppedColumn, Some("note"), false)),
            "7 non-null values of `public.item.note` (column dropped)"
        );
        assert_eq!(
            loss_text(&loss(LossKind::AlteredValues, Some("price"), true)),
            "about 7 values of `public.item.price` altered by the type change"
        );
        assert_eq!(loss_text(&loss(LossKind::Deleted, None, false)), "7 rows deleted from `public.item`");
    }
}
