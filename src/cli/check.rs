//! `pgsafe check`: the health check from the command line, once, or every `--watch INTERVAL` until
//! interrupted (or until unhealthy); exit 0 healthy, 1 unhealthy, 2 when it could not run.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use pgsafe::cancel::Cancel;
use pgsafe::check::{CheckOptions, CheckReport, DEFAULT_LONG_RUNNING, Level, read_sql_checks};
use pgsafe::store::{SnapshotId, SnapshotMeta, Store, resolve_dir};
use pgsafe::{Error, ErrorKind};

use super::common::{ConnectArgs, block_on_cancellable};
use super::notify::NotifyArgs;
use super::output::{self, Exit};

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The identity that reads the store's encrypted snapshots (see `PGSAFE_RECIPIENTS`).
    #[command(flatten)]
    identity: super::keys::IdentityArgs,

    /// Compare with this snapshot of the store (its id): its tables must exist, their rows are counted.
    #[arg(long, value_name = "SNAPSHOT", conflicts_with = "latest")]
    against: Option<String>,

    /// Compare with the newest snapshot of this database in the store.
    #[arg(long)]
    latest: bool,

    /// A file of queries that must each return no rows, each named by the `--` comment above it
    /// (repeatable).
    #[arg(long = "sql", value_name = "FILE", num_args = 1.., action = clap::ArgAction::Append)]
    sql: Vec<PathBuf>,

    /// With `--against`/`--latest`: a table that lost more than PCT percent of its rows since the
    /// snapshot makes the database unhealthy (otherwise a loss is information only).
    #[arg(long = "max-row-loss", value_name = "PCT")]
    max_row_loss: Option<f64>,

    /// Check again every INTERVAL (`30s`, `5m`), one line per round, until interrupted.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    watch: Option<Duration>,

    /// With `--watch`: stop at the first unhealthy round, with exit code 1.
    #[arg(long, requires = "watch")]
    until_unhealthy: bool,

    /// Name active statements running longer than SECONDS.
    #[arg(long = "long-running", value_name = "SECONDS", default_value_t = DEFAULT_LONG_RUNNING.as_secs_f64())]
    long_running: f64,

    /// Print the report as JSON on stdout (with `--watch`, one report per line and round).
    #[arg(long)]
    json: bool,

    /// The store: where `--against` finds snapshots and the audit log is. Default: env `PGSAFE_DIR`, else
    /// env `BACKUP_DIR`, else `./.pgsafe`. A check never creates it.
    #[arg(long = "store", value_name = "DIR")]
    store: Option<PathBuf>,

    #[command(flatten)]
    notify: NotifyArgs,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(format!("`{text}`: the interval must be longer than zero")),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("`{text}` is not an interval such as `30s` or `5m`: {e}")),
    }
}

pub fn run(args: CheckArgs) -> Result<Exit, Error> {
    let connect = args.connect.options()?;
    let dir = resolve_dir(args.store.as_deref());
    let store = pgsafe::store::existing(&dir, super::keys::store_keys(&args.identity)?)?;
    let no_store = || {
        Error::new(ErrorKind::InvalidInput, format!("there is no store at `{}` to find the snapshot in", dir.display()))
            .with_hint("`--store DIR`, `PGSAFE_DIR` or `BACKUP_DIR` name the store; `pgsafe snapshot` makes it")
    };
    let against: Option<SnapshotMeta> = match (&args.against, args.latest) {
        (Some(id), _) => Some(store.as_ref().ok_or_else(no_store)?.get(&SnapshotId::parse(id)?)?),
        (None, true) => {
            let database = connect.dbname();
            // As `rollback --latest`: a rollback's safety snapshot holds a state that was replaced.
            // A snapshot whose archive is gone is passed over, with a warning naming it.
            let store = store.as_deref().ok_or_else(no_store)?;
            // And a partial snapshot (`-t`, `-T`, ...): the check compares every table with it.
            let newest = pgsafe::store::newest_restorable(store, database, pgsafe::store::whole)?;
            Some(newest.ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("no snapshot of `{database}` whose archive is there in the store `{}`", dir.display()),
                )
                .with_hint(format!("`pgsafe snapshot -d {database}` takes one"))
            })?)
        }
        (None, false) => None,
    };
    // An encrypted snapshot's tables are in its archive only.
    let mut against = match (against, store.as_deref()) {
        (Some(meta), Some(store)) => Some(pgsafe::store::operation::with_tables(store, meta)?),
        (against, _) => against,
    };
    // A migration that started from this snapshot and ended healthy dropped or renamed some of its tables on
    // purpose: as its own check did, they are its doing, not missing.
    let by_migration = match (&mut against, store.as_deref()) {
        (Some(meta), Some(store)) => {
            let log = store.read_audit()?;
            match log.last_healthy_migration_from(&meta.id).map(|at| &log.entries[at]) {
                Some(e) => pgsafe::check::by_migration(meta, &e.dropped_tables, &e.renamed_tables),
                None => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    // The library refuses a limit that is no percentage.
    if args.max_row_loss.is_some() && against.is_none() {
        return Err(Error::new(ErrorKind::InvalidInput, "`--max-row-loss` needs `--against SNAPSHOT` or `--latest`"));
    }
    let mut sql = Vec::new();
    for path in &args.sql {
        sql.extend(read_sql_checks(path)?);
    }
    let long_running = Duration::try_from_secs_f64(args.long_running).map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("`--long-running {}` must be a number of seconds, 0 or more", args.long_running),
        )
    })?;
    let options = CheckOptions {
        connect,
        against,
        sql,
        max_row_loss: args.max_row_loss,
        long_running,
        cancel: Cancel::new(),
        by_migration,
    };
    let store = store.as_deref();
    match args.watch {
        None => once(&options, store, args.json, &args.notify),
        Some(interval) => watch(&options, store, interval, args.until_unhealthy, args.json, &args.notify),
    }
}

/// Posts a round's verdict to `--notify`'s URL, if any: the text names the errors.
fn notify(notify: &NotifyArgs, options: &CheckOptions, result: &Result<CheckReport, Error>) {
    let host = pgsafe::store::audit::host_name();
    let database = options.connect.dbname();
    match result {
        Ok(report) => {
            let errors: Vec<String> = report
                .findings
                .iter()
                .filter(|f| f.level == Level::Error)
                .map(|f| format!("{}{}", f.check, f.object.as_deref().map(|o| format!(" `{o}`")).unwrap_or_default()))
                .collect();
            let text = match errors.is_empty() {
                true => format!("pgsafe check of `{database}` on {host}: {}", counts(report)),
                false => format!("pgsafe check of `{database}` on {host}: {}: {}", counts(report), errors.join(", ")),
            };
            notify.send(&text, report);
        }
        Err(e) => notify.send(
            &format!("pgsafe check of `{database}` on {host} could not run: {e}"),
            &serde_json::json!({
                "command": "check", "database": database, "host": host, "outcome": "failed",
                "error": e.to_string(), "hint": e.hint(),
            }),
        ),
    }
}

/// One check: the report, its audit line, healthy or not.
fn once(options: &CheckOptions, store: Option<&dyn Store>, json: bool, to: &NotifyArgs) -> Result<Exit, Error> {
    let started_at = Timestamp::now();
    let result = block_on_cancellable("check", &options.cancel, pgsafe::check::check(options));
    let logged = log(store, options, started_at, &result);
    notify(to, options, &result);
    let report = result?;
    output::stdout(&if json { pretty(&report) } else { render(&report) })?;
    logged?;
    Ok(exit(&report))
}

/// Rounds every `interval` until interrupted (exit as the last round), or with `until_unhealthy`, until
/// the first unhealthy one. Audit lines: each unhealthy round, and the last. Notifications: a round whose
/// verdict differs from the one before (the first round when unhealthy), and a round that cannot run.
fn watch(
    options: &CheckOptions,
    store: Option<&dyn Store>,
    interval: Duration,
    until_unhealthy: bool,
    json: bool,
    to: &NotifyArgs,
) -> Result<Exit, Error> {
    block_on_cancellable("check", &options.cancel, async {
        let mut last: Option<(CheckReport, bool)> = None;
        let mut healthy_before = true;
        loop {
            let started_at = Timestamp::now();
            let result = pgsafe::check::check(options).await;
            let report = match result {
                Err(e) if e.kind() == ErrorKind::Cancelled && last.is_some() => break,
                Err(e) => {
                    let failed = Err(e);
                    notify(to, options, &failed);
                    log(store, options, started_at, &failed)?;
                    return failed.map(|r| exit(&r));
                }
                Ok(report) => report,
            };
            if report.healthy != healthy_before {
                notify(to, options, &Ok(report.clone()));
                healthy_before = report.healthy;
            }
            let logged = !report.healthy;
            if logged {
                log(store, options, started_at, &Ok(report.clone()))?;
            }
            output::stdout(&if json { compact(&report) } else { line(&report) })?;
            let stop = until_unhealthy && !report.healthy;
            last = Some((report, logged));
            if stop {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = options.cancel.cancelled() => break,
            }
        }
        let Some((report, logged)) = last else { return Ok(Exit::Error) };
        if !logged {
            log(store, options, report.started_at, &Ok(report.clone()))?;
        }
        if !json && !report.healthy {
            output::stdout(&render(&report))?;
        }
        Ok(exit(&report))
    })
}

/// Appends the audit line of a round, when the store exists: a check never creates one.
fn log(
    store: Option<&dyn Store>,
    options: &CheckOptions,
    started_at: Timestamp,
    result: &Result<CheckReport, Error>,
) -> Result<(), Error> {
    let Some(store) = store else { return Ok(()) };
    let seconds = match result {
        Ok(report) => report.seconds,
        Err(_) => Timestamp::now().duration_since(started_at).as_secs_f64(),
    };
    let entry = pgsafe::check::audit_entry(options, started_at, seconds, result);
    store.append_audit(&entry).map_err(|e| e.context("the check ran, but its audit line was not written"))
}

fn exit(report: &CheckReport) -> Exit {
    if report.healthy { Exit::Success } else { Exit::CheckFailed }
}

fn pretty(report: &CheckReport) -> String {
    serde_json::to_string_pretty(report).expect("the report serializes") + "\n"
}

fn compact(report: &CheckReport) -> String {
    serde_json::to_string(report).expect("the report serializes") + "\n"
}

/// `healthy` or `unhealthy`, then how many findings of each level.
fn counts(report: &CheckReport) -> String {
    format!(
        "{}: {} errors, {} warnings, {} info",
        if report.healthy { "healthy" } else { "unhealthy" },
        report.count(Level::Error),
        report.count(Level::Warning),
        report.count(Level::Info)
    )
}

/// A watch round's line: its time, the verdict and the counts.
fn line(report: &CheckReport) -> String {
    format!("{}  {}\n", report.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"), counts(report))
}

/// The text report: one line per finding (level, check, object, message), then the verdict.
fn render(report: &CheckReport) -> String {
    let rows: Vec<[String; 4]> = report
        .findings
        .iter()
        .map(|f| {
            [f.level.to_string(), f.check.clone(), f.object.clone().unwrap_or_else(|| "-".into()), f.message.clone()]
        })
        .collect();
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2)];
    let mut out = String::new();
    for r in &rows {
        out.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
    }
    let against = report.against.as_ref().map(|id| format!(", against snapshot `{id}`")).unwrap_or_default();
    out.push_str(&format!("{} (`{}`{against}, {:.1}s)\n", counts(report), report.server, report.seconds));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgsafe::check::Finding;

    #[test]
    fn intervals_read_as_people_write_them() {
        assert_eq!(parse_interval("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_interval("0s").unwrap_err().contains("longer than zero"));
        assert!(parse_interval("often").unwrap_err().contains("`often` is not an interval"));
    }

    #[test]
    fn the_text_report_is_a_line_per_finding_then_the_verdict() {
        let report = CheckReport {
            database: "shop".into(),
            server: "u@h:5432/shop".into(),
            started_at: "2026-12-02T03:15:00Z".parse().unwrap(),
            against: None,
            healthy: false,
            findings: vec![
                Finding::new("invalid-index", Level::Error, Some("public.i"), "not valid"),
                Finding::new("not-checked", Level::Info, None, "hidden"),
            ],
            seconds: 0.25,
        };
        assert_eq!(
            render(&report),
            "error  invalid-index  public.i  not valid\n\
             info   not-checked    -         hidden\n\
             unhealthy: 1 errors, 0 warnings, 1 info (`u@h:5432/shop`, 0.2s)\n"
        );
        assert_eq!(line(&report), "2026-12-02T03:15:00Z  unhealthy: 1 errors, 0 warnings, 1 info\n");
    }
}
