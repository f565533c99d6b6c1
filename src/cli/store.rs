//! `pgsafe snapshot`, `pgsafe snapshots` and `pgsafe prune`: the snapshot store from the command line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use pgsafe::format::describe_kinds;
use pgsafe::store::operation::{PruneOptions, PruneReport, SnapshotOptions, SnapshotReport};
use pgsafe::store::retention::{DEFAULT_KEEP_LAST, RetentionPolicy};
use pgsafe::store::{AuditEntry, Listed, Outcome, PinHolder, SnapshotArchive, SnapshotId, resolve_dir};
use pgsafe::{Error, ErrorKind};

use super::common::{ConnectArgs, block_on_cancellable, progress};
use super::dump::DumpEngineArgs;
use super::notify::NotifyArgs;
use super::output::{self, Exit, bytes};

/// Where the store is.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The store: a folder, or `s3://BUCKET/PREFIX`. Default: env `PGSAFE_DIR`, else env `BACKUP_DIR`, else
    /// `./.pgsafe`.
    #[arg(long = "store", value_name = "DIR")]
    store: Option<PathBuf>,
}

impl StoreArgs {
    pub(super) fn dir(&self) -> PathBuf {
        resolve_dir(self.store.as_deref())
    }
}

/// The audit line of a plain `dump` or `restore`: written to the store's log when there is a store.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Write no line to the store's audit log.
    #[arg(long)]
    no_audit: bool,
}

impl AuditArgs {
    /// Appends `entry` to the audit log of the store, when there is one (none is made for it) and
    /// `--no-audit` was not given. A failure is a warning: the operation it records is done either way.
    pub(super) fn record(&self, entry: &AuditEntry) {
        if self.no_audit {
            return;
        }
        let dir = self.store.dir();
        let written = pgsafe::store::existing(&dir, Default::default()).and_then(|store| match store {
            Some(store) => store.append_audit(entry),
            None => Ok(()),
        });
        if let Err(e) = written {
            eprintln!("warning: the audit log of the store `{}` could not record this operation: {e}", dir.display());
        }
    }

    /// The snapshot whose archive `archive` is, when it is one of the store's.
    pub(super) fn snapshot_of(&self, archive: &SnapshotArchive) -> Option<SnapshotId> {
        let store = pgsafe::store::existing(&self.store.dir(), Default::default()).ok()??;
        let id = SnapshotId::parse(&archive.name()).ok()?;
        let in_store = match (archive, store.archive(&id)) {
            (SnapshotArchive::File(given), SnapshotArchive::File(own)) => {
                given.canonicalize().ok()? == own.canonicalize().ok()?
            }
            (given, own) => *given == own,
        };
        (in_store && store.get(&id).is_ok()).then_some(id)
    }
}

/// An absolute form of `path` for an audit line (as given when it has none).
pub(super) fn absolute(path: &Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

/// What retention keeps.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Keep the newest N snapshots of each database.
    #[arg(long = "keep", value_name = "N", env = "MAX_BACKUPS", default_value_t = DEFAULT_KEEP_LAST)]
    keep: usize,
    /// Also keep every snapshot younger than DURATION (`12h`, `7d`, `2w`).
    #[arg(long = "keep-within", value_name = "DURATION", value_parser = parse_duration)]
    keep_within: Option<Duration>,
    /// Also keep the newest snapshot of each of the last N days (UTC) that have one.
    #[arg(long = "keep-daily", value_name = "N", default_value_t = 0)]
    keep_daily: usize,
    /// Also keep the newest snapshot of each of the last N ISO weeks that have one.
    #[arg(long = "keep-weekly", value_name = "N", default_value_t = 0)]
    keep_weekly: usize,
    /// Wait up to SECONDS for another writer of the store (a prune, a snapshot's retention) to finish.
    #[arg(long = "store-lock-timeout", value_name = "SECONDS", default_value_t = 60.0)]
    lock_timeout: f64,
}

impl RetentionArgs {
    pub(super) fn policy(&self) -> RetentionPolicy {
        RetentionPolicy {
            keep_last: self.keep,
            keep_within: self.keep_within,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
        }
    }

    pub(super) fn lock_wait(&self) -> Result<Duration, Error> {
        Duration::try_from_secs_f64(self.lock_timeout).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("`--store-lock-timeout {}` must be a number of seconds, 0 or more", self.lock_timeout),
            )
        })
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration such as `12h` or `7d`: {e}"))
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    engine: DumpEngineArgs,
    /// The identity that reads the store's encrypted snapshots (see `PGSAFE_RECIPIENTS`).
    #[command(flatten)]
    identity: super::keys::IdentityArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    retention: RetentionArgs,
    #[command(flatten)]
    notify: NotifyArgs,

    /// A label for the snapshot, part of its id (letters, digits, `.`, `_`, `-`; others become `_`).
    #[arg(long, value_name = "LABEL")]
    label: Option<String>,

    /// Do not verify the written archive (verification reads it all back: every checksum, row and digest).
    #[arg(long)]
    no_verify: bool,

    /// Do not apply retention afterwards.
    #[arg(long)]
    no_prune: bool,

    /// Print the report as JSON on stdout instead of the id.
    #[arg(long)]
    json: bool,

    /// No progress output.
    #[arg(short, long)]
    quiet: bool,
}

pub fn snapshot(args: SnapshotArgs) -> Result<Exit, Error> {
    let dump = args.engine.options()?;
    let options = SnapshotOptions {
        dump,
        label: args.label.clone(),
        migration: None,
        protects: None,
        pinned: None,
        pinned_by: None,
        verify: !args.no_verify,
        retention: (!args.no_prune).then(|| args.retention.policy()),
        lock_wait: args.retention.lock_wait()?,
    };
    let store = pgsafe::store::open(&args.store.dir(), super::keys::store_keys(&args.identity)?)?;
    let result = block_on_cancellable(
        "snapshot",
        &options.dump.cancel,
        pgsafe::store::operation::snapshot(&*store, &options, progress(args.quiet)),
    );
    notify_snapshot(&args.notify, options.dump.connect.dbname(), &store.location(), &result);
    let report = result?;
    if args.json {
        output::stdout(&(serde_json::to_string_pretty(&report).expect("the report serializes") + "\n"))?;
        return Ok(Exit::Success);
    }
    let s = &report.snapshot;
    if !args.quiet {
        let content = match s.encrypted_to.is_empty() {
            true => format!("{} tables, {} rows", s.tables.len(), s.rows),
            false => format!("encrypted to {}", describe_kinds(&s.encrypted_to)),
        };
        eprintln!(
            "snapshot `{}` of `{}` in `{}`: {content}, {} in {:.1}s, {}",
            s.id,
            s.database,
            report.store,
            bytes(s.bytes),
            s.dump_seconds,
            if s.is_verified() { format!("verified in {:.1}s", s.verify_seconds) } else { "not verified".into() }
        );
        if let Some(r) = report.retention.as_ref().filter(|r| !r.removed.is_empty()) {
            let ids: Vec<String> = r.removed.iter().map(|id| format!("`{id}`")).collect();
            eprintln!("retention removed {}", ids.join(", "));
        }
    }
    output::stdout(&format!("{}\n", s.id))?;
    Ok(Exit::Success)
}

/// Posts how the snapshot ended, with its report (or the error) to `--notify`'s URL, if any.
fn notify_snapshot(notify: &NotifyArgs, database: &str, store: &str, result: &Result<SnapshotReport, Error>) {
    let host = pgsafe::store::audit::host_name();
    match result {
        Ok(r) => notify.send(
            &format!(
                "pgsafe snapshot `{}` of `{database}` taken on {host}: {} rows, {}, {}",
                r.snapshot.id,
                r.snapshot.rows,
                bytes(r.snapshot.bytes),
                if r.snapshot.is_verified() { "verified" } else { "not verified" }
            ),
            r,
        ),
        Err(e) => {
            let Outcome::Failed { error } = Outcome::of(result) else { return };
            notify.send(
                &format!("pgsafe snapshot of `{database}` failed on {host}: {error}"),
                &serde_json::json!({
                    "command": "snapshot", "database": database, "store": store, "host": host,
                    "outcome": "failed", "error": error, "hint": e.hint(),
                }),
            );
        }
    }
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only this database's snapshots (a name, or a connection string naming one).
    #[arg(short = 'd', long = "dbname", value_name = "DBNAME")]
    dbname: Option<String>,
    /// Print them as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Unpin snapshot ID, so that retention treats it as any other: one a migration left pinned (killed
    /// outright, or after its database NEEDS ATTENTION was seen to). Waits up to 60 s for the store's lock.
    #[arg(long, value_name = "ID")]
    unpin: Option<String>,
}

pub fn snapshots(args: SnapshotsArgs) -> Result<Exit, Error> {
    let dir = args.store.dir();
    if let Some(id) = &args.unpin {
        return unpin(&dir, id);
    }
    let database = database_name(args.dbname.as_deref())?;
    let (all, leftovers) = match pgsafe::store::existing(&dir, Default::default())? {
        Some(store) => (pgsafe::store::list_checked(&*store)?, store.leftovers()?),
        None => (Vec::new(), Vec::new()),
    };
    warn_leftovers(&dir.display().to_string(), &leftovers);
    let list: Vec<Listed> =
        all.into_iter().filter(|s| database.as_deref().is_none_or(|d| s.meta.database == d)).collect();
    for s in list.iter().filter(|s| !s.archive_state.is_present()) {
        eprintln!(
            "warning: snapshot `{}` of `{}`: {} in `{}`; it restores nothing (`pgsafe prune` removes it)",
            s.meta.id,
            s.meta.database,
            s.archive_state,
            dir.display()
        );
    }
    if args.json {
        output::stdout(&(serde_json::to_string_pretty(&list).expect("metadata serializes") + "\n"))?;
        return Ok(Exit::Success);
    }
    if list.is_empty() {
        eprintln!("no snapshots in the store `{}`", dir.display());
        return Ok(Exit::Success);
    }
    output::stdout(&render_list(&list, Timestamp::now()))?;
    Ok(Exit::Success)
}

/// Clears snapshot `id`'s pin, under the store's lock, and says what the pin was.
fn unpin(dir: &std::path::Path, id: &str) -> Result<Exit, Error> {
    let id = pgsafe::store::SnapshotId::parse(id)?;
    let Some(store) = pgsafe::store::existing(dir, Default::default())? else {
        return Err(Error::new(ErrorKind::InvalidInput, format!("there is no store at `{}`", dir.display())));
    };
    let holder = pgsafe::store::LockHolder::this_process("pgsafe snapshots --unpin");
    let _lock = store.lock(&holder, std::time::Duration::from_secs(60), &pgsafe::cancel::Cancel::new())?;
    let mut meta = store.get(&id)?;
    match meta.pinned.take() {
        Some(reason) => {
            meta.pinned_by = None;
            store.put(&meta)?;
            output::stdout(&format!("unpinned `{id}` (it was pinned: {reason})\n"))?;
        }
        None => output::stdout(&format!("`{id}` was not pinned\n"))?,
    }
    Ok(Exit::Success)
}

fn render_list(list: &[Listed], now: Timestamp) -> String {
    let header = ["ID", "DATABASE", "TIME (UTC)", "AGE", "LABEL", "SIZE", "ROWS", "VERIFIED"].map(String::from);
    let mut rows = vec![header.to_vec()];
    for Listed { meta: s, archive_state, .. } in list {
        rows.push(vec![
            s.id.to_string(),
            s.database.clone(),
            s.created_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            age(now, s.created_at),
            s.label.clone().unwrap_or_else(|| "-".into()),
            bytes(s.bytes),
            match s.encrypted_to.is_empty() {
                true => s.rows.to_string(),
                false => "encrypted".into(),
            },
            super::status::verified_cell(s.is_verified(), *archive_state).into(),
        ]);
    }
    let mut out = output::columns(&rows);
    let pinned: Vec<String> = list
        .iter()
        .filter_map(|s| Some(pin_line(s.meta.id.as_str(), &s.meta.database, s.meta.pinned.as_deref()?, s.pin_holder)))
        .collect();
    if !pinned.is_empty() {
        out.push('\n');
        out.push_str(&pinned_block(pinned));
    }
    out
}

/// The text block that lists pinned snapshots, one `pin_line` each, under its header; empty for none.
pub(super) fn pinned_block(lines: Vec<String>) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut out = String::from("pinned (retention keeps them whatever their age):\n");
    for line in lines {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

/// A pinned snapshot `id` of `database`: why, and whether the process that pinned it still runs; one that
/// is gone (a migration killed outright) says what clears the pin, since nothing else will.
pub(super) fn pin_line(id: &str, database: &str, reason: &str, holder: Option<PinHolder>) -> String {
    match holder {
        Some(PinHolder::Gone) => format!(
            "{id}: {reason}; that process is gone (killed outright?), so nothing will unpin it: see what \
             it committed (`pgsafe migrations -d {database} DIR`, `pgsafe check -d {database}`; `pgsafe \
             rollback -d {database} {id}` puts back the state before it), then `pgsafe snapshots --unpin {id}`"
        ),
        Some(PinHolder::Running) => format!("{id}: {reason}; it runs"),
        Some(PinHolder::Elsewhere) => format!("{id}: {reason}; on another host, which this one cannot look at"),
        None => format!("{id}: {reason}"),
    }
}

/// `45s`, `12m`, `3h`, `2d`: the largest whole unit.
pub(super) fn age(now: Timestamp, then: Timestamp) -> String {
    let secs = now.duration_since(then).as_secs().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    retention: RetentionArgs,
    /// `-d`: only this database's snapshots (a name, or a connection string naming one); with
    /// `--drop-replaced`, `-h`, `-p` and `-U` say how to connect, as for every other command.
    #[command(flatten)]
    connect: ConnectArgs,
    /// Print what would be removed and kept, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also drop the databases swap rollbacks of `-d`'s database replaced (`DB_replaced_TIME`, as the
    /// audit log records them) but the newest `--keep-replaced`; connects through `-d`.
    #[arg(long, requires = "dbname")]
    drop_replaced: bool,
    /// With `--drop-replaced`: keep the newest N replaced databases.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "drop_replaced")]
    keep_replaced: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn prune(args: PruneArgs) -> Result<Exit, Error> {
    let dir = args.store.dir();
    let options = PruneOptions {
        policy: args.retention.policy(),
        database: database_name(args.connect.dbname.as_deref())?,
        dry_run: args.dry_run,
        lock_wait: args.retention.lock_wait()?,
        // Ctrl-C ends the process (the OS releases the lock): a prune runs no cancellable operation.
        cancel: pgsafe::cancel::Cancel::new(),
    };
    let Some(store) = pgsafe::store::existing(&dir, Default::default())? else {
        return Err(Error::new(ErrorKind::InvalidInput, format!("there is no store at `{}`", dir.display()))
            .with_hint("`--store DIR`, `PGSAFE_DIR` or `BACKUP_DIR` name the store; `pgsafe snapshot` makes it"));
    };
    let report = pgsafe::store::operation::prune(&*store, &options)?;
    warn_leftovers(&report.store, &report.leftovers);
    let replaced = match (args.drop_replaced, args.connect.dbname.as_deref()) {
        (true, Some(_)) => {
            let connect = args.connect.options()?;
            Some(super::common::block_on(
                "prune",
                pgsafe::rollback::replaced::drop_replaced(&*store, &connect, args.keep_replaced, args.dry_run),
            )?)
        }
        _ => None,
    };
    if args.json {
        let mut json = serde_json::to_value(&report).expect("the report serializes");
        if let (Some(r), Some(object)) = (&replaced, json.as_object_mut()) {
            object.insert("replaced_databases".into(), serde_json::to_value(r).expect("the report serializes"));
        }
        output::stdout(&(serde_json::to_string_pretty(&json).expect("the report serializes") + "\n"))?;
    } else {
        let mut text = render_prune(&report);
        if let Some(r) = &replaced {
            let verb = if r.dry_run { "would drop database" } else { "dropped database" };
            for name in &r.dropped {
                text.push_str(&format!("{verb}  {name}\n"));
            }
            for name in &r.kept {
                text.push_str(&format!("keep database  {name}  (--keep-replaced {})\n", args.keep_replaced));
            }
            for name in &r.in_use {
                text.push_str(&format!("not dropped (sessions are connected to it)  {name}\n"));
            }
        }
        output::stdout(&text)?;
    }
    Ok(Exit::Success)
}

fn render_prune(r: &PruneReport) -> String {
    let mut out = String::new();
    let verb = if r.dry_run { "would remove" } else { "removed" };
    for d in &r.plan.remove {
        match &d.problem {
            Some(problem) => out.push_str(&format!("{verb}  {}  ({problem})\n", d.id)),
            None => out.push_str(&format!("{verb}  {}\n", d.id)),
        }
    }
    for d in &r.plan.keep {
        let why: Vec<String> = d.reasons.iter().map(ToString::to_string).chain(d.problem.clone()).collect();
        out.push_str(&format!("keep  {}  ({})\n", d.id, why.join(", ")));
    }
    out.push_str(&format!(
        "{} {} of {} snapshots in `{}`{}\n",
        verb,
        r.plan.remove.len(),
        r.plan.remove.len() + r.plan.keep.len(),
        r.store,
        if r.dry_run { "; nothing was changed" } else { "" }
    ));
    out
}

/// Names, on stderr, the files of no snapshot: the user decides whether a snapshot is still running.
pub(super) fn warn_leftovers(store: &str, leftovers: &[String]) {
    if leftovers.is_empty() {
        return;
    }
    eprintln!(
        "{} file(s) in `{store}` belong to no snapshot (one running, or one killed before it finished):",
        leftovers.len()
    );
    for name in leftovers {
        eprintln!("  {name}");
    }
    eprintln!("remove them by hand once no snapshot is running");
}

/// The database `-d` names: a plain name, or the database of a connection string or URI.
pub(super) fn database_name(dbname: Option<&str>) -> Result<Option<String>, Error> {
    match dbname {
        None => Ok(None),
        Some(d) if d.contains('=') || d.contains("://") => {
            Ok(Some(pgsafe::pg::ConnectOptions::new(Some(d), None, None, None)?.dbname().to_owned()))
        }
        Some(d) => Ok(Some(d.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_their_largest_unit() {
        let now: Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
        let ago = |s: i64| age(now, now - jiff::SignedDuration::from_secs(s));
        assert_eq!([ago(5), ago(600), ago(7200), ago(3 * 86_400 + 5)], ["5s", "10m", "2h", "3d"]);
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("seven days").unwrap_err().contains("`seven days` is not a duration"));
    }
}
