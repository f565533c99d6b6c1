//! A rehearsal of another tool's migration command on a scratch copy (`pgsafe dry-run -d DB --
//! COMMAND`): a snapshot restored into a scratch database, the command run against it, and the copy
//! compared with the snapshot; the scratch database goes away whatever happens.
//!
//! ```text
//! snapshot (the latest, or one taken now) -> scratch database (same server, or a throwaway local cluster
//! of the same major version) -> DDL capture (an event trigger, where the role may make one) -> the
//! command, with DATABASE_URL and PG* pointing at the scratch copy -> compare with the snapshot:
//! schema diff, rows per table, rows lost -> drop the scratch copy (a copy that cannot be dropped is a
//! warning naming it: the verdict stands)
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;

use crate::archive::ArchiveReader;
use crate::cancel::Cancel;
use crate::dryrun::sequences::{self, SequenceBehind};
use crate::error::{Error, ErrorKind, Result};
use crate::pg::{ConnectOptions, Session};
use crate::progress::Progress;
use crate::restore::{RestoreOptions, VerifyLevel};
use crate::rollback::changes::{self, Change, Changes, Scope};
use crate::store::{SnapshotId, Store};

use super::values::{KeptIn, TableValues};

/// Where the scratch copy lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScratchKind {
    /// A new database on the same server (needs CREATEDB).
    Server,
    /// A throwaway cluster of the same major version, started from this machine's server binaries.
    Local,
}

/// What the rehearsal does.
#[derive(Debug, Clone)]
pub struct RehearsalOptions {
    pub connect: ConnectOptions,
    pub command: Vec<String>,
    /// The snapshot to start from; `None`: the newest of the database (not a rollback's safety
    /// snapshot), or one taken now when there is none or `fresh` asks for it.
    pub snapshot: Option<SnapshotId>,
    pub fresh: bool,
    pub scratch: ScratchKind,
    pub jobs: usize,
    pub lock_wait: Duration,
    pub cancel: Cancel,
}

/// A table whose rows the command removed, on the scratch copy.
#[derive(Debug, Clone, Serialize)]
pub struct RowsLost {
    pub table: String,
    pub rows_in_snapshot: u64,
    /// `None`: the table is gone.
    pub rows_after: Option<u64>,
    pub lost: u64,
}

/// A column the command dropped.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnDropped {
    pub table: String,
    pub column: String,
    pub rows_in_snapshot: u64,
    /// How many of those rows held a value (not NULL) in it, counted on the snapshot's rows (`None`: not
    /// counted, the rows could not be loaded), less those `kept_in` holds.
    pub values: Option<u64>,
    /// The column the command added that holds the others, row by row (a rename: add, copy, drop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_in: Option<KeptIn>,
}

/// The newest snapshot of the database, not rehearsed on because pgsafe changed the database after it
/// began: the rehearsal took a snapshot of the database as it is instead.
#[derive(Debug, Clone, Serialize)]
pub struct StaleSnapshot {
    pub snapshot: SnapshotId,
    /// What changed the database since, as the audit log names it (`migrate apply`, `rollback`, ...).
    pub changed_by: String,
    /// When that change ended.
    pub changed_at: Timestamp,
}

/// When the snapshot rehearsed on was taken.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotTaken {
    pub at: Timestamp,
    /// Taken by this rehearsal (`--fresh`, no usable one, or the newest one older than a change).
    pub by_this_rehearsal: bool,
}

/// What the command did to the scratch copy.
#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    pub database: String,
    pub snapshot: SnapshotId,
    /// When that snapshot was taken, and whether this rehearsal took it: rows written since an older one
    /// are not in the copy.
    pub snapshot_taken: SnapshotTaken,
    /// The newest snapshot, passed over because it is older than the database's last change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_snapshot: Option<StaleSnapshot>,
    pub scratch: ScratchKind,
    /// The command's exit code (`None`: ended by a signal).
    pub exit_code: Option<i32>,
    /// Schema objects added, dropped, altered, and every table with its rows before and after.
    pub changes: Changes,
    /// Tables that hold fewer rows than the snapshot, or are gone.
    pub rows_lost: Vec<RowsLost>,
    /// Columns of the snapshot's tables that are gone, with their table's rows in the snapshot (each row's
    /// value in them is lost).
    pub columns_dropped: Vec<ColumnDropped>,
    /// Each table whose rows changed, compared with the snapshot's row by row (by primary key): rows
    /// deleted, values changed per column, values of dropped columns.
    pub values: Vec<super::values::TableValues>,
    /// The DDL statements the command ran, captured by an event trigger on the scratch copy; `None`
    /// when the role may not make one.
    pub ddl: Option<Vec<String>>,
    /// `pgsafe lint` of those statements (`None` without a capture, or when they do not parse).
    pub lint: Option<crate::lint::LintReport>,
    /// The sequences the command (when it succeeded) left at or behind the values of the unique column
    /// they fill; `before`: so already in the snapshot, which does not make the rehearsal bad.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sequences_behind: Vec<SequenceBehind>,
    /// The scratch database, when it could not be dropped afterwards: a warning, the verdict stands.
    pub scratch_left_over: Option<ScratchLeftOver>,
    pub seconds: f64,
}

/// A scratch database left on the server because it could not be dropped.
#[derive(Debug, Clone, Serialize)]
pub struct ScratchLeftOver {
    pub database: String,
    /// Why the drop failed.
    pub error: String,
}

impl Rehearsal {
    /// Whether the command failed or would lose rows.
    pub fn is_bad(&self) -> bool {
        self.exit_code != Some(0)
            || !self.rows_lost.is_empty()
            || self.columns_dropped.iter().any(|c| c.values.unwrap_or(c.rows_in_snapshot) > 0)
            || self.values.iter().any(|v| v.loses_anything())
            || self.sequences_behind.iter().any(|b| !b.before)
    }
}

const CAPTURE_SCHEMA: &str = "pgsafe_rehearsal";

/// Runs the rehearsal.
pub async fn rehearse(store: &dyn Store, options: &RehearsalOptions, progress: Arc<dyn Progress>) -> Result<Rehearsal> {
    let started = Instant::now();
    let database = options.connect.dbname().to_owned();
    let (snapshot, stale_snapshot, taken_now) = pick_snapshot(store, options, progress.clone()).await?;
    let meta = store.get(&snapshot)?;
    let snapshot_taken = SnapshotTaken { at: meta.created_at, by_this_rehearsal: taken_now };
    let archive = Arc::new(crate::store::operation::open_snapshot(store, &meta)?);
    let scratch_name = crate::rollback::swap::derived_name(
        &database,
        &format!("_pgsafe_scratch_{}", Timestamp::now().strftime("%Y%m%dT%H%M%S")),
    );
    // Where the scratch database is made, and kept alive (a local cluster) until it is dropped.
    let (through, _cluster) = match options.scratch {
        ScratchKind::Server => (options.connect.clone(), None),
        ScratchKind::Local => {
            let (cluster, connect) = local_cluster(&options.connect).await?;
            (connect, Some(cluster))
        }
    };
    progress.step(&format!("restoring snapshot `{snapshot}` into the scratch database `{scratch_name}`"));
    let restore = RestoreOptions {
        verify: VerifyLevel::Count,
        create_roles: options.scratch == ScratchKind::Local,
        create: Some(scratch_name.clone()),
        ..RestoreOptions::whole(through.clone(), options.jobs, options.cancel.clone())
    };
    crate::restore::restore(archive.clone(), &restore, progress.clone()).await.map_err(|e| {
        let e = e.context(format!("restoring the snapshot into the scratch database `{scratch_name}`"));
        match (options.scratch, e.sqlstate()) {
            (ScratchKind::Server, Some(crate::SqlState::INSUFFICIENT_PRIVILEGE)) => {
                e.with_hint("the role may not create databases: `--scratch local` uses a throwaway cluster instead")
            }
            _ => e,
        }
    })?;
    let scratch = through.with_dbname(&scratch_name);
    let result = run_on_scratch(&scratch, options, &archive, progress.clone()).await;
    progress.step(&format!("dropping the scratch database `{scratch_name}`"));
    let dropped = async {
        let session =
            crate::rollback::swap::maintenance_session(&through, &scratch_name, "to drop the scratch database").await?;
        crate::restore::target::drop_database(&session, &scratch_name).await
    }
    .await;
    // A copy that could not be dropped does not change what the rehearsal found: the verdict stands, and
    // the copy is named for the user to drop. One on a local scratch cluster goes with the cluster.
    let (done, scratch_left_over) = match (result, dropped, options.scratch) {
        (Ok(done), Ok(()), _) => (done, None),
        (Ok(done), Err(e), ScratchKind::Local) => {
            tracing::debug!("the scratch database `{scratch_name}` goes with its cluster: {e}");
            (done, None)
        }
        (Ok(done), Err(e), ScratchKind::Server) => {
            (done, Some(ScratchLeftOver { database: scratch_name.clone(), error: e.to_string() }))
        }
        (Err(e), Ok(()), _) => return Err(e),
        (Err(e), Err(d), _) => {
            return Err(e.and_hint(format!("the scratch database `{scratch_name}` is still there ({d}); drop it")));
        }
    };
    let OnScratch { exit_code, changes, values, ddl, behind } = done;
    let rows_lost = rows_lost(&changes);
    let columns_dropped = changes
        .tables
        .iter()
        .flat_map(|t| {
            t.columns_gone.iter().map(|c| {
                let counted = values
                    .iter()
                    .find(|v| v.table == t.table)
                    .and_then(|v| v.columns_dropped.iter().find(|d| &d.column == c));
                ColumnDropped {
                    table: t.table.clone(),
                    column: c.clone(),
                    rows_in_snapshot: t.rows_in_snapshot.unwrap_or(0),
                    values: counted.map(|d| d.values),
                    kept_in: counted.and_then(|d| d.kept_in.clone()),
                }
            })
        })
        .collect();
    let lint = ddl.as_ref().filter(|d| !d.is_empty()).and_then(|statements| {
        let text: String = statements.iter().map(|s| format!("{};\n", s.trim().trim_end_matches(';'))).collect();
        crate::lint::lint_text("captured DDL", &text, &crate::lint::LintOptions::default())
            .map_err(|e| tracing::warn!("the captured DDL could not be linted: {e}"))
            .ok()
    });
    Ok(Rehearsal {
        database,
        snapshot,
        snapshot_taken,
        stale_snapshot,
        scratch: options.scratch,
        exit_code,
        changes,
        rows_lost,
        columns_dropped,
        values,
        ddl,
        lint,
        sequences_behind: behind,
        scratch_left_over,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The snapshot to start from: the one named, else the newest whole one whose archive is there, unless the
/// audit log records a change of the database by pgsafe since it began (a `migrate`, a `rollback`, a
/// `restore`: rehearsing on it would judge the command against a database that no longer exists); else,
/// or when asked, one taken now. The stale snapshot passed over is returned with it.
async fn pick_snapshot(
    store: &dyn Store,
    options: &RehearsalOptions,
    progress: Arc<dyn Progress>,
) -> Result<(SnapshotId, Option<StaleSnapshot>, bool)> {
    let database = options.connect.dbname();
    if let Some(id) = &options.snapshot {
        return Ok((store.get(id)?.id, None, false));
    }
    let mut stale = None;
    if !options.fresh
        && let Some(s) = crate::store::newest_restorable(store, database, crate::store::whole)?
    {
        let log = store.read_audit_since(s.created_at)?;
        match log.last_change(database) {
            Some((change, ended)) if ended >= s.created_at => {
                let changed_by = match &change.step {
                    Some(step) => format!("{} {step}", command_name(change.command)),
                    None => command_name(change.command),
                };
                progress.step(&format!(
                    "the newest snapshot `{}` is older than the `{changed_by}` of `{database}` that ended at {}: it does not hold the database as it is",
                    s.id,
                    ended.strftime("%Y-%m-%d %H:%M:%S UTC")
                ));
                stale = Some(StaleSnapshot { snapshot: s.id, changed_by, changed_at: ended });
            }
            _ => return Ok((s.id, None, false)),
        }
    }
    // A store that encrypts its snapshots, without the identity to read one back: refused before a
    // snapshot is taken that the rehearsal could not restore. (A snapshot the store has already is
    // opened as it is: a plain one needs no identity, and an encrypted one says that it does.)
    if !store.keys().recipients.is_empty() && store.keys().keyring.is_empty() {
        return Err(Error::new(
            ErrorKind::Identity,
            format!(
                "the store `{}` encrypts its snapshots (`PGSAFE_RECIPIENTS`) and no identity was given to read one back \
                 into the scratch database: nothing was run and no snapshot was taken",
                store.location()
            ),
        )
        .with_hint("pass `--identity FILE` (or set `PGSAFE_IDENTITY`) naming an age identity of one of the store's recipients"));
    }
    progress.step(&format!("taking a snapshot of `{database}` to rehearse on"));
    let taken = crate::store::operation::snapshot(
        store,
        &crate::store::operation::SnapshotOptions {
            dump: crate::dump::DumpOptions::whole(options.connect.clone(), options.jobs.max(1), options.cancel.clone()),
            label: Some("rehearsal".into()),
            migration: Some(options.command.join(" ")),
            protects: None,
            pinned: None,
            pinned_by: None,
            verify: true,
            retention: None,
            lock_wait: options.lock_wait,
        },
        progress,
    )
    .await?;
    Ok((taken.snapshot.id, stale, true))
}

/// `migrate`, `dry-run`: a command as the audit log spells it.
fn command_name(command: crate::store::AuditCommand) -> String {
    serde_json::to_value(command).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// A throwaway cluster of the server's major version, from `/usr/lib/postgresql/MAJOR/bin` (or
/// `PGSAFE_PG_BIN`), and how to reach its `postgres` database.
async fn local_cluster(connect: &ConnectOptions) -> Result<(crate::cluster::Cluster, ConnectOptions)> {
    let session = Session::open(connect, None).await?;
    let major = session.server_version() / 10000;
    drop(session);
    let bin = match std::env::var_os(crate::cluster::PG_BIN_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")),
    };
    if !bin.join("postgres").is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`--scratch local` needs PostgreSQL {major}'s server binaries, and `{}` has none", bin.display()),
        )
        .with_hint(format!(
            "install PostgreSQL {major}'s server, or point `{}` at its bin folder",
            crate::cluster::PG_BIN_ENV
        )));
    }
    let options = crate::cluster::ClusterOptions { bin: Some(bin), ..Default::default() };
    let cluster = tokio::task::spawn_blocking(move || crate::cluster::Cluster::start(&options))
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("starting the scratch cluster: {e}")))??;
    let through = cluster.connect("postgres")?;
    Ok((cluster, through))
}

/// On the scratch copy: the capture, the command, the comparison.
async fn run_on_scratch(
    scratch: &ConnectOptions,
    options: &RehearsalOptions,
    archive: &Arc<ArchiveReader>,
    progress: Arc<dyn Progress>,
) -> Result<OnScratch> {
    let session = Session::open(scratch, None).await?;
    let capturing = start_capture(&session).await?;
    // The sequences as the snapshot left them, and the last transaction before the command's; a server
    // that refuses them leaves the sequences unchecked ([`sequences::unless_refused`]), not the rehearsal
    // undone.
    let xid_sql = "SELECT (pg_catalog.pg_current_xact_id()::text::int8 % 4294967296)::text";
    let start = async {
        let states = sequences::states(&session).await?;
        let xid: String = crate::pg::value(&session.query_one(xid_sql, &[]).await?, 0, xid_sql)?;
        Ok::<_, Error>((states, xid))
    }
    .await;
    let start = sequences::unless_refused(start, unchecked)?;
    progress.step(&format!("running `{}` against the scratch copy", options.command.join(" ")));
    let exit_code = super::apply::run_command(&options.command, scratch).await?;
    let ddl = match capturing {
        true => Some(read_capture(&session).await?),
        false => None,
    };
    progress.step("comparing the scratch copy with the snapshot");
    let compare_options =
        RestoreOptions { data_only: true, ..RestoreOptions::whole(scratch.clone(), 1, options.cancel.clone()) };
    let (mut changes, _) = changes::compare(&session, archive, &compare_options, Scope::Whole, &[]).await?;
    // The capture's own objects are not the command's.
    changes.objects.retain(|o| !o.object.contains(CAPTURE_SCHEMA));
    changes.tables.retain(|t| !t.table.starts_with(&format!("{CAPTURE_SCHEMA}.")));
    for t in changes.tables.iter_mut().filter(|t| t.change == Change::Changed && t.rows_now < t.rows_in_snapshot) {
        t.rows_in_partitions = rows_in_partitions(&session, &t.table).await?;
    }
    progress.step("comparing the changed tables' values with the snapshot's");
    let values = super::values::compare(&session, archive, &changes, &options.cancel).await?;
    let tables = changes
        .tables
        .iter()
        .filter(|t| matches!(t.change, Change::Changed | Change::New))
        .map(|t| t.table.clone())
        .collect();
    let behind = match (exit_code, start) {
        (Some(0), Some((states, xid))) => {
            let ran = sequences::Ran::After { xid, tables };
            let found = match sequences::states(&session).await {
                Ok(after) => sequences::behind(&session, &states, &after, &ran).await,
                Err(e) => Err(e),
            };
            sequences::unless_refused(found, unchecked)?.unwrap_or_default()
        }
        _ => Vec::new(),
    };
    Ok(OnScratch { exit_code, changes, values, ddl, behind })
}

/// A server that refused the sequences' check: a warning.
fn unchecked(e: &Error) {
    tracing::warn!("the sequences are not checked: {e}");
}

/// What [`run_on_scratch`] found.
struct OnScratch {
    exit_code: Option<i32>,
    changes: Changes,
    values: Vec<TableValues>,
    ddl: Option<Vec<String>>,
    behind: Vec<SequenceBehind>,
}

/// An event trigger that logs each DDL statement, where the role may make one (a superuser).
async fn start_capture(session: &Session) -> Result<bool> {
    let superuser: bool = crate::pg::value(
        &session.query_one("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user", &[]).await?,
        0,
        "whether the role is a superuser",
    )?;
    if !superuser {
        return Ok(false);
    }
    session
        .batch(&format!(
            "CREATE SCHEMA {CAPTURE_SCHEMA};
             CREATE TABLE {CAPTURE_SCHEMA}.ddl (id bigserial PRIMARY KEY, tag text, statement text);
             CREATE FUNCTION {CAPTURE_SCHEMA}.log() RETURNS event_trigger LANGUAGE plpgsql AS $f$
             BEGIN
               INSERT INTO {CAPTURE_SCHEMA}.ddl (tag, statement) VALUES (tg_tag, current_query());
             END $f$;
             CREATE EVENT TRIGGER pgsafe_rehearsal_ddl ON ddl_command_end EXECUTE FUNCTION {CAPTURE_SCHEMA}.log();
             CREATE EVENT TRIGGER pgsafe_rehearsal_drop ON sql_drop EXECUTE FUNCTION {CAPTURE_SCHEMA}.log();"
        ))
        .await?;
    Ok(true)
}

/// The statements the capture logged, each once, in order.
async fn read_capture(session: &Session) -> Result<Vec<String>> {
    let sql = format!("SELECT DISTINCT ON (statement) id, statement FROM {CAPTURE_SCHEMA}.ddl ORDER BY statement, id");
    let mut rows: Vec<(i64, String)> = Vec::new();
    for row in session.query(&sql, &[]).await? {
        rows.push((crate::pg::value(&row, 0, &sql)?, crate::pg::value(&row, 1, &sql)?));
    }
    rows.sort();
    session
        .batch(&format!(
            "DROP EVENT TRIGGER pgsafe_rehearsal_ddl; DROP EVENT TRIGGER pgsafe_rehearsal_drop; DROP SCHEMA {CAPTURE_SCHEMA} CASCADE;"
        ))
        .await?;
    Ok(rows.into_iter().map(|(_, s)| s).collect())
}

/// The rows of `table`'s partitions when it is a partitioned table; `None` otherwise.
async fn rows_in_partitions(session: &Session, table: &str) -> Result<Option<u64>> {
    if !super::values::partitioned(session, table).await? {
        return Ok(None);
    }
    let sql = format!("SELECT count(*) FROM {table}");
    let rows: i64 = crate::pg::value(&session.query_one(&sql, &[]).await?, 0, &sql)?;
    Ok(Some(rows as u64))
}

/// Tables with fewer rows than in the snapshot (a table now partitioned: in its partitions), or gone.
fn rows_lost(changes: &Changes) -> Vec<RowsLost> {
    changes
        .tables
        .iter()
        .filter_map(|t| {
            let before = t.rows_in_snapshot?;
            let now = t.rows_in_partitions.or(t.rows_now);
            let lost = match (t.change, now) {
                (Change::Gone, _) => before,
                (_, Some(now)) if now < before => before - now,
                _ => return None,
            };
            (lost > 0).then(|| RowsLost {
                table: t.table.clone(),
                rows_in_snapshot: before,
                rows_after: if t.change == Change::Gone { None } else { now },
                lost,
            })
        })
        .collect()
}
