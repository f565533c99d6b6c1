//! `pgsafe migrate` and `pgsafe migrations`: apply migrations with a snapshot to fall back on, and see a
//! folder's state.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use pgsafe::migrate::{Ending, LockPolicy, MigrateOptions, MigrateReport, Source};
use pgsafe::{Error, ErrorKind};

use super::common::{Abandoned, ConnectArgs, block_on, block_on_abandoning, default_jobs, progress};
use super::notify::NotifyArgs;
use super::output::{self, Exit};
use super::store::{RetentionArgs, StoreArgs};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The identity that reads the store's encrypted snapshots (see `PGSAFE_RECIPIENTS`).
    #[command(flatten)]
    identity: super::keys::IdentityArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    retention: RetentionArgs,
    #[command(flatten)]
    notify: NotifyArgs,

    /// SQL files to apply in this order, or one folder of `NNNN_name.sql` migrations (its pending ones).
    #[arg(value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,

    /// Another tool's migration command, after `--` (`-- npx prisma migrate deploy`).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,

    /// The folder's tracking table.
    #[arg(long = "migrations-table", value_name = "SCHEMA.TABLE", default_value = "pgsafe.migrations")]
    table: String,
    /// The tracking table of the tool the folder is written for, where it is not that tool's default in
    /// the search path's first schema (Flyway's `flyway.table` or `flyway.schemas`, golang-migrate's
    /// `x-migrations-table`).
    #[arg(long = "tool-table", value_name = "SCHEMA.TABLE")]
    tool_table: Option<String>,

    /// Run the down script of the latest applied migration of the folder (with `--to`, of every one
    /// applied after that version), newest first, with a snapshot first.
    #[arg(long)]
    down: bool,

    /// With `--down`: go down to this version (it stays applied).
    #[arg(long, value_name = "VERSION", requires = "down")]
    to: Option<String>,

    /// Record every pending migration of the folder up to this version as applied without running any
    /// (a database whose schema was made by hand or by other means before the folder was adopted), and
    /// apply nothing else; no snapshot, lint or dry run.
    #[arg(long, value_name = "VERSION", conflicts_with = "down")]
    baseline: Option<String>,

    #[command(flatten)]
    flyway: FlywayArgs,

    /// `lock_timeout` of each statement's transaction (`2s`, `500ms`).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "2s", value_parser = super::common::parse_timeout)]
    sql_lock_timeout: Duration,

    /// How many times a file is tried again when a lock is not granted in time (with backoff and jitter).
    #[arg(long = "lock-retries", value_name = "N", default_value_t = 3)]
    lock_retries: u32,

    /// Go on despite lint errors and a dry run that fails or would lose data.
    #[arg(long)]
    force: bool,

    /// Go on despite a dry run that would lose data, and lint errors whose only hazard is data loss (`drop-column`, `drop-table`, `truncate`, ...).
    #[arg(long)]
    allow_data_loss: bool,

    /// Do not lint SQL migrations first.
    #[arg(long)]
    skip_lint: bool,

    /// Do not rehearse SQL migrations first (the rehearsal runs them in a transaction that is rolled
    /// back, which costs as long as the migration).
    #[arg(long)]
    skip_dry_run: bool,

    /// No snapshot first (a database too big to snapshot): then all of it runs in one transaction, and a
    /// command, which no transaction can undo, is refused.
    #[arg(long)]
    skip_snapshot: bool,

    /// Also keep a snapshot of the migrated state.
    #[arg(long)]
    snapshot_after: bool,

    /// Keep checking the database this long after success (`10m`), rolling back if it turns unhealthy.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    observe: Option<Duration>,

    /// How often `--observe` checks.
    #[arg(long = "observe-every", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    observe_every: Duration,

    /// A rollback by swap waits this long for other sessions, then terminates them.
    #[arg(long = "terminate-after", value_name = "SECONDS", default_value_t = 30)]
    terminate_after: u64,

    /// No retention after the snapshots it takes.
    #[arg(long)]
    no_prune: bool,

    /// Workers for the snapshot and a rollback (default: the machine's cores).
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// No progress output.
    #[arg(short, long)]
    quiet: bool,
}

/// What a folder written for Flyway takes from Flyway's configuration.
#[derive(Debug, Args)]
pub struct FlywayArgs {
    /// The value of a Flyway folder's `${NAME}` placeholder (repeatable), as `flyway.placeholders.NAME`;
    /// over the value Flyway's configuration gives.
    #[arg(long = "placeholder", value_name = "NAME=VALUE", value_parser = parse_placeholder)]
    placeholders: Vec<(String, String)>,
    /// A Flyway configuration file (`.conf` or `.toml`; repeatable), read after `flyway.conf` and
    /// `flyway.toml` of the home and working folders and those `FLYWAY_CONFIG_FILES` names, as Flyway
    /// reads them: its placeholders, `placeholderPrefix`, `placeholderSuffix`, `placeholderReplacement`,
    /// `table`, `defaultSchema` and `schemas`.
    #[arg(long = "flyway-config", value_name = "FILE")]
    config_files: Vec<PathBuf>,
}

impl FlywayArgs {
    /// Flyway's configuration, from where Flyway reads it and from these options.
    pub fn config(&self) -> Result<pgsafe::migrate::flyway::FlywayConfig, Error> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let cwd = std::env::current_dir()
            .map_err(|e| Error::io("finding the working folder", std::path::Path::new("."), e))?;
        let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
        let config = pgsafe::migrate::flyway::FlywayConfig::load(&self.config_files, home.as_deref(), &cwd, &env)?;
        Ok(config.with_placeholders(&self.placeholders))
    }

    /// For `lint` and `dry-run` of single files: the texts of the Flyway migrations among `files` (named
    /// `V1__x.sql`, `U1__x.sql`, `R__x.sql`) with their placeholders filled, as `migrate` fills them;
    /// `None` for a file that runs as written. With `connect`, Flyway's own placeholders are the database's
    /// values; without it, those that need a database (`flyway:user`, `flyway:database`,
    /// `flyway:timestamp`, `flyway:defaultSchema`) are stand-ins, which is enough to read the statements
    /// (the lint), never to run them. A placeholder without a value is an error naming its file and line.
    pub fn fill(
        &self,
        files: &[(PathBuf, &str)],
        connect: Option<&pgsafe::pg::ConnectOptions>,
    ) -> Result<Vec<Option<String>>, Error> {
        let config = self.config()?;
        let flyway = |(path, text): &(PathBuf, &str)| {
            pgsafe::migrate::flyway::is_flyway_file(path) && config.replacement && text.contains(&config.prefix)
        };
        if !files.iter().any(flyway) {
            return Ok(vec![None; files.len()]);
        }
        let builtins = match connect {
            Some(connect) => block_on("reading Flyway's placeholders", async {
                let session = pgsafe::pg::Session::open(connect, None).await?;
                pgsafe::migrate::flyway::builtins(&config, Some(&session), None).await
            })?,
            None => {
                let mut values =
                    block_on("reading Flyway's placeholders", pgsafe::migrate::flyway::builtins(&config, None, None))?;
                for (name, stand_in) in [
                    ("flyway:user", "flyway_user"),
                    ("flyway:database", "flyway_database"),
                    ("flyway:timestamp", "1970-01-01 00:00:00"),
                    ("flyway:defaultschema", "public"),
                ] {
                    values.entry(name.to_owned()).or_insert_with(|| stand_in.to_owned());
                }
                values
            }
        };
        let mut values = config.values(builtins);
        files
            .iter()
            .map(|file| match flyway(file) {
                true => config
                    .fill_file(&file.0, file.1, &mut values)
                    .map_err(|reason| Error::new(ErrorKind::InvalidInput, reason)),
                false => Ok(None),
            })
            .collect()
    }
}

fn parse_placeholder(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration such as `2s` or `10m`: {e}"))
}

/// What the positional arguments name.
fn source(paths: &[PathBuf], command: &[String]) -> Result<Source, Error> {
    match (paths, command) {
        ([], []) => Err(Error::new(ErrorKind::InvalidInput, "nothing to migrate")
            .with_hint("name SQL files, a folder of NNNN_name.sql migrations, or a command after `--`")),
        ([], command) => Ok(Source::Command(command.to_vec())),
        (_, [_, ..]) => {
            Err(Error::new(ErrorKind::InvalidInput, "give files or a folder, or a command after `--`, not both"))
        }
        ([dir], []) if dir.is_dir() => Ok(Source::Folder(dir.clone())),
        (files, []) => {
            if let Some(bad) = files.iter().find(|p| !p.is_file()) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "`{}` is not a file{}",
                        bad.display(),
                        if bad.is_dir() { " (one folder, alone, is a migrations folder)" } else { "" }
                    ),
                ));
            }
            Ok(Source::Files(files.to_vec()))
        }
    }
}

pub fn run(args: MigrateArgs) -> Result<Exit, Error> {
    let source = source(&args.paths, &args.command)?;
    if args.baseline.is_some() && !matches!(source, Source::Folder(_)) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "`--baseline` records the migrations of a migrations folder as applied: name the folder",
        ));
    }
    if args.down && !matches!(source, Source::Folder(_)) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "`--down` runs the down scripts of a migrations folder: name the folder",
        ));
    }
    let options = MigrateOptions {
        connect: args.connect.options()?,
        source,
        table: pgsafe::migrate::runner::table_name(&args.table)?,
        tool_table: args.tool_table.as_deref().map(pgsafe::migrate::runner::table_name).transpose()?,
        down: args.down.then(|| args.to.clone()),
        baseline: args.baseline.clone(),
        flyway: args.flyway.config()?,
        lint: !args.skip_lint,
        dry_run: !args.skip_dry_run,
        force: args.force,
        allow_data_loss: args.allow_data_loss,
        lock: LockPolicy { timeout: args.sql_lock_timeout, retries: args.lock_retries },
        snapshot: !args.skip_snapshot,
        snapshot_after: args.snapshot_after,
        observe: args.observe,
        observe_every: args.observe_every.max(Duration::from_secs(1)),
        retention: (!args.no_prune).then(|| args.retention.policy()),
        terminate_after: Duration::from_secs(args.terminate_after),
        jobs: args.jobs.unwrap_or_else(default_jobs).max(1),
        lock_wait: args.retention.lock_wait()?,
        cancel: pgsafe::cancel::Cancel::new(),
    };
    let store = pgsafe::store::open(&args.store.dir(), super::keys::store_keys(&args.identity)?)?;
    let result = block_on_abandoning(
        "migrate",
        &options.cancel,
        Abandoned::Database,
        pgsafe::migrate::migrate(&*store, &options, progress(args.quiet)),
    );
    notify(&args.notify, options.connect.dbname(), &result);
    let report = result?;
    if args.json {
        output::stdout(&(serde_json::to_string_pretty(&report).expect("the report serializes") + "\n"))?;
    } else {
        output::stdout(&render(&report))?;
    }
    Ok(match report.ending {
        Ending::UpToDate | Ending::Applied | Ending::Baselined => Exit::Success,
        Ending::Refused | Ending::RolledBack => Exit::CheckFailed,
        Ending::NeedsAttention => Exit::NeedsAttention,
    })
}

fn render(r: &MigrateReport) -> String {
    let mut out = String::new();
    let snapshot = match (&r.snapshot, r.snapshot_removed) {
        (Some(s), false) => format!(" (snapshot `{s}`)"),
        _ => String::new(),
    };
    match r.ending {
        Ending::UpToDate => out.push_str(&format!("`{}` is up to date: nothing to apply\n", r.database)),
        Ending::Baselined => out.push_str(&format!(
            "recorded as applied in `{}` without running them (`--baseline`): {}\n",
            r.database,
            r.baselined.join(", ")
        )),
        Ending::Applied => {
            out.push_str(&format!("applied to `{}`{snapshot}: {}\n", r.database, r.applied.join(", ")));
            // What it lost, as its rehearsal measured it: a down script's, or one `--allow-data-loss` or
            // `--force` let through. The snapshot holds it.
            if let Some(dry) = r.dry_run.as_ref().filter(|d| d.loses_data) {
                out.push_str("it lost, as its dry run measured:\n");
                for s in &dry.statements {
                    for loss in s.losses.iter().filter(|l| l.count > 0) {
                        out.push_str(&format!("  {}:{}  {}\n", s.file, s.line, super::dryrun::loss_text(loss)));
                    }
                }
            }
            if !r.analyzed.is_empty() {
                out.push_str(&format!("analyzed {}\n", r.analyzed.join(", ")));
            }
            if let Some(s) = &r.snapshot_after {
                out.push_str(&format!("snapshot of the migrated state: `{s}`\n"));
            }
        }
        Ending::Refused => {
            out.push_str(&format!("refused, nothing was changed: {}\n", r.reason.as_deref().unwrap_or("")));
            // The statements that refused it, as `pgsafe dry-run` prints them: where, the SQLSTATE and
            // message, and what they would lose.
            if let Some(dry) = r.dry_run.as_ref().filter(|d| d.would_fail || d.loses_data) {
                for s in dry.statements.iter().filter(|s| super::dryrun::refuses(s)) {
                    super::dryrun::statement(&mut out, s);
                }
                super::dryrun::sequences(&mut out, dry);
                out.push_str(&super::dryrun::verdict(dry));
            }
        }
        Ending::RolledBack => {
            out.push_str(&format!("FAILED and rolled back{snapshot}: {}\n", r.reason.as_deref().unwrap_or("")));
            if let Some(rb) = &r.rollback {
                out.push_str(&format!(
                    "`{}` is back to the snapshot ({}, {} rows verified){}\n",
                    r.database,
                    rb.mode,
                    rb.restore.rows,
                    rb.replaced_database_kept_as
                        .as_deref()
                        .map(|a| format!("; the failed state is kept as `{a}`"))
                        .unwrap_or_default()
                ));
                out.push_str(&super::rollback::discarded(rb, Some("by the migration or by other sessions")));
                out.push_str(&super::rollback::terminated(rb));
            } else {
                out.push_str("its one transaction rolled back: nothing was applied\n");
            }
        }
        Ending::NeedsAttention => {
            out.push_str(&format!(
                "FAILED, and the rollback failed too: `{}` NEEDS ATTENTION: {}\n",
                r.database,
                r.reason.as_deref().unwrap_or("")
            ));
            let committed = if r.applied.is_empty() { "nothing".to_owned() } else { r.applied.join(", ") };
            out.push_str(&format!("committed before the failure: {committed}\n"));
            if let Some(next) = &r.next_step {
                out.push_str(&format!("to put `{}` back as it was before the migration: {next}\n", r.database));
            }
        }
    }
    out
}

/// Posts how the migration ended to `--notify`'s URL, if any.
fn notify(notify: &NotifyArgs, database: &str, result: &Result<MigrateReport, Error>) {
    let host = pgsafe::store::audit::host_name();
    match result {
        Ok(r) if r.ending == Ending::UpToDate => {}
        Ok(r) => notify.send(&format!("pgsafe migrate of `{database}` on {host}: {}", render(r).trim_end()), r),
        Err(e) => notify.send(
            &format!("pgsafe migrate of `{database}` on {host} could not run: {e}"),
            &serde_json::json!({"command": "migrate", "database": database, "host": host, "outcome": "failed", "error": e.to_string()}),
        ),
    }
}

#[derive(Debug, Args)]
pub struct MigrationsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The folder of `NNNN_name.sql` migrations.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The folder's tracking table.
    #[arg(long = "migrations-table", value_name = "SCHEMA.TABLE", default_value = "pgsafe.migrations")]
    table: String,
    /// The tracking table of the tool the folder is written for, where it is not that tool's default in
    /// the search path's first schema (Flyway's `flyway.table` or `flyway.schemas`, golang-migrate's
    /// `x-migrations-table`).
    #[arg(long = "tool-table", value_name = "SCHEMA.TABLE")]
    tool_table: Option<String>,
    /// A Flyway configuration file (repeatable; see `pgsafe migrate --flyway-config`): where its history
    /// table is.
    #[arg(long = "flyway-config", value_name = "FILE")]
    flyway_config: Vec<PathBuf>,
    /// Print the state as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Applied, pending and changed migrations of a folder.
pub fn list(args: MigrationsArgs) -> Result<Exit, Error> {
    let connect = args.connect.options()?;
    let table = pgsafe::migrate::runner::table_name(&args.table)?;
    let tool_table = args.tool_table.as_deref().map(pgsafe::migrate::runner::table_name).transpose()?;
    let flyway = FlywayArgs { placeholders: Vec::new(), config_files: args.flyway_config.clone() }.config()?;
    let status = block_on("migrations", async {
        let session = pgsafe::pg::Session::open(&connect, None).await?;
        pgsafe::migrate::folder_status(&session, &args.dir, &table, tool_table.as_ref(), &flyway).await
    })?;
    let sound = status.changed.is_empty() && status.tool_failed.is_none();
    if args.json {
        output::stdout(&(serde_json::to_string_pretty(&status).expect("the state serializes") + "\n"))?;
        return Ok(if sound { Exit::Success } else { Exit::CheckFailed });
    }
    let mut out = String::new();
    if let Some(table) = &status.tool_table {
        out.push_str(&format!("read with {table}, which records what that tool applied\n"));
    }
    for a in &status.applied {
        let changed = status.changed.iter().any(|(f, _)| f.version == a.version);
        let missing = status.missing.iter().any(|m| m.version == a.version);
        let by_tool = match (&a.tool, &status.tool_table) {
            (Some(tool), _) => Some(format!("applied by {tool}")),
            (None, Some(table)) if status.tool_unrecorded.contains(&a.label()) => {
                Some(format!("applied, not in {}'s table", table.tool.name()))
            }
            _ => None,
        };
        let state = if changed {
            "CHANGED"
        } else if missing {
            "applied, file missing"
        } else {
            by_tool.as_deref().unwrap_or("applied")
        };
        out.push_str(&format!(
            "{:<22} {}  {}  {}\n",
            state,
            a.label(),
            a.applied_at,
            a.snapshot.as_deref().unwrap_or("-")
        ));
    }
    for p in &status.pending {
        out.push_str(&format!("{:<22} {}\n", "pending", p.label()));
    }
    for r in &status.repeatables {
        let due = status.repeatables_due.iter().any(|d| d.version == r.version);
        let state = if due { "repeatable, to run" } else { "repeatable, current" };
        out.push_str(&format!("{state:<22} {}\n", r.label()));
    }
    let repeatables = match status.repeatables.len() {
        0 => String::new(),
        n => format!(", {n} repeatable ({} to run)", status.repeatables_due.len()),
    };
    out.push_str(&format!(
        "{} applied, {} pending, {} changed since applied{repeatables}\n",
        status.applied.len(),
        status.pending.len(),
        status.changed.len()
    ));
    if let Some(why) = &status.tool_failed {
        out.push_str(&format!("FAILED: {why}\n"));
    }
    output::stdout(&out)?;
    Ok(if sound { Exit::Success } else { Exit::CheckFailed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_needs_attention_is_told_what_was_committed_and_what_to_run() {
        let report = MigrateReport {
            ending: Ending::NeedsAttention,
            applied: vec!["0001_add_flag".into()],
            reason: Some("`0002_backfill` failed; then the rollback failed: the server went away".into()),
            next_step: Some("pgsafe rollback -d shop shop-20261205T021620Z-before-0001 --yes".into()),
            ..MigrateReport::new("shop")
        };
        let text = render(&report);
        assert!(text.contains("`shop` NEEDS ATTENTION: `0002_backfill` failed"), "{text}");
        assert!(text.contains("committed before the failure: 0001_add_flag\n"), "{text}");
        assert!(
            text.contains("to put `shop` back as it was before the migration: pgsafe rollback -d shop shop-20261205T021620Z-before-0001 --yes"),
            "{text}"
        );
    }
}
