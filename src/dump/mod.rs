//! `pgsafe dump`: the leader exports a snapshot, reads the catalog in it and plans; workers join the
//! snapshot and stream their parts through COPY into chunks, which one writer appends to the archive.
//!
//! ```text
//! leader: BEGIN REPEATABLE READ -> pg_export_snapshot() -> catalog + ACCESS SHARE locks -> plan
//! worker: SET TRANSACTION SNAPSHOT -> COPY TO STDOUT -> cut on tuple boundaries -> compress
//!         -> bounded channel -> archive writer thread -> NAME.partial -> fsync -> rename
//! ```
//! The leader's transaction stays open until the last worker is done, so the snapshot and the locks
//! hold for the whole dump.

mod lane;
mod worker;

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::archive::{ArchiveTarget, ArchiveWriter, WriterMessage, staging_path};
use crate::cancel::Cancel;
use crate::catalog::{self, DataCatalog, Filters};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{Catalog, Compression, Recipients, Sealing};
use crate::pg::{ConnectOptions, Session, quote_literal};
use crate::plan::{DumpPlan, PlanOptions, plan_dump};
use crate::pool::{self, Task};
use crate::progress::Progress;
use crate::schema::{self, SchemaCatalog};
use lane::Lane;

/// What to dump and how.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    pub connect: ConnectOptions,
    pub jobs: usize,
    pub filters: Filters,
    pub compression: Compression,
    /// Encrypt the archive to these recipients (public keys); empty writes a plain archive.
    pub encrypt_to: Recipients,
    /// Decoded bytes per chunk; chunks end on the first tuple boundary past this. `None`:
    /// [`DEFAULT_CHUNK_BYTES`], smaller with many jobs, so that the workers' buffers stay within 32 MiB.
    pub chunk_bytes: Option<usize>,
    /// Table slice size; `None` lets the plan choose.
    pub part_bytes: Option<u64>,
    /// Include large objects: `None` follows pg_dump (yes unless `-n` or `-t` narrow the dump).
    pub large_objects: Option<bool>,
    /// How long the table locks may wait; `None` waits as long as it takes, as pg_dump does.
    pub lock_wait: Option<std::time::Duration>,
    /// What the archive holds: the schema, the data, or both.
    pub content: DumpContent,
    /// Dump in this exported snapshot (`pg_export_snapshot()`, a replication slot's) instead of a new one.
    /// (Not the store's snapshots, which are archives: this is PostgreSQL's word for a view of the data.)
    pub exported_snapshot: Option<String>,
    /// Stops the dump cooperatively (Ctrl-C, SIGTERM): see [`crate::cancel`].
    pub cancel: Cancel,
}

impl DumpOptions {
    /// The whole database `connect` names, with the defaults of `pgsafe dump`: what the workflow's own
    /// snapshots take (a rollback's safety snapshot, a migration's, a rehearsal's).
    pub fn whole(connect: ConnectOptions, jobs: usize, cancel: Cancel) -> DumpOptions {
        DumpOptions {
            connect,
            jobs: jobs.max(1),
            filters: Filters::default(),
            compression: Compression::default(),
            encrypt_to: Recipients::default(),
            chunk_bytes: None,
            part_bytes: None,
            large_objects: None,
            lock_wait: None,
            content: DumpContent::Both,
            exported_snapshot: None,
            cancel,
        }
    }
}

/// `--schema-only`, `--data-only`, or both (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DumpContent {
    #[default]
    Both,
    SchemaOnly,
    DataOnly,
}

/// Default decoded chunk size: big enough for zstd to find redundancy, small enough that a restore can
/// spread a part over workers and memory stays small.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// What a finished dump did.
#[derive(Debug, Clone, Serialize)]
pub struct DumpReport {
    pub path: Option<String>,
    pub archive_bytes: u64,
    /// Creation steps of the schema in the archive (0 for `--data-only`).
    pub schema_objects: usize,
    pub tables: usize,
    pub parts: usize,
    pub chunks: usize,
    pub rows: u64,
    /// COPY stream bytes before compression.
    pub raw_bytes: u64,
    /// Chunk frames on disk.
    pub stored_bytes: u64,
    pub sequences: usize,
    pub large_objects: u64,
    pub seconds: f64,
    /// The server's version, as the archive's catalog records it (`15.18`).
    pub server_version: String,
    /// What the user should know of what was left out: a partitioned table or inheritance parent dumped
    /// without descendants that `-t` did not name.
    pub warnings: Vec<String>,
}

/// The error of a dump whose leader session ended before the workers were done (`lost`: its error), with
/// what a worker failed on first, if one did (its failure is the leader's doing).
fn leader_lost(lost: Error, worker: Option<Error>) -> Error {
    let mut e = Error::new(
        lost.kind(),
        format!(
            "the dump's first session, which holds the snapshot and the locks that keep every table as the \
             snapshot saw it, ended before the dump did ({lost})"
        ),
    )
    .with_hint(
        "no archive was finished: once its locks went, a table changed since (`ALTER TABLE`, `TRUNCATE`) could \
         read empty or fail; run the dump again, and keep whatever ended the session (`pg_terminate_backend`, a \
         job that ends idle transactions) away from pgsafe's sessions",
    );
    if let Some(sqlstate) = lost.sqlstate() {
        e = e.with_sqlstate(sqlstate);
    }
    match worker {
        Some(w) if !w.is_consequence() => e.and_hint(format!("a worker failed too: {w}")),
        _ => e,
    }
}

/// Whether `e` is a session's connection ended under it: closed, or ended by the server (SQLSTATE class 57,
/// operator intervention, or 08, connection exception).
fn connection_lost(e: &Error) -> bool {
    e.kind() == ErrorKind::Connect || e.sqlstate().is_some_and(|s| s.is_connection_exception() || s.class() == "57")
}

/// Connects, opens the snapshot and reads the catalog: the leader's first steps.
struct Leader {
    session: Session,
    /// The exported snapshot the workers join.
    exported_snapshot: String,
    catalog: DataCatalog,
    schema: Option<SchemaCatalog>,
    /// What the user should know of what the filters took (see [`catalog::with_children`]).
    warnings: Vec<String>,
}

impl Leader {
    async fn open(options: &DumpOptions) -> Result<Self> {
        options.cancel.check("the dump")?;
        let session = Session::open(&options.connect, None).await?.cancelled_by(&options.cancel);
        session.batch("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
        if let Some(name) = &options.exported_snapshot {
            session.batch(&format!("SET TRANSACTION SNAPSHOT {}", quote_literal(name))).await.map_err(|e| {
                e.context(format!("using the snapshot `{name}`"))
                    .with_hint("the transaction (or replication connection) that exported it must still be open")
            })?;
        }
        const EXPORT: &str = "SELECT pg_catalog.pg_export_snapshot()";
        let exported_snapshot: String = crate::pg::value(&session.query_one(EXPORT, &[]).await?, 0, EXPORT)?;
        let server = catalog::read_server_facts(&session).await?;
        catalog::check_patterns(&session, &options.filters).await?;
        let (filters, mut warnings) = catalog::with_children(&session, &options.filters).await?;
        let data = options.content != DumpContent::SchemaOnly;
        if data && options.content != DumpContent::DataOnly {
            warnings.extend(catalog::keys_to_rows_left_out(&session, &filters).await?);
        }
        // Reading the tables waits for their locks (for minutes, behind another session's ACCESS
        // EXCLUSIVE): not begun once interrupted, as a signal during the statements before it stopped none.
        options.cancel.check("the dump")?;
        let mut tables = catalog::read_tables(&session, &server, &filters, options.lock_wait).await?;
        let sequences = if data { catalog::read_sequences(&session, &filters).await? } else { Vec::new() };
        let large_objects = if data && options.large_objects.unwrap_or(!filters.narrows()) {
            catalog::read_large_objects(&session).await?
        } else {
            None
        };
        // The tables stay locked for a schema-only dump too; only their rows are left out.
        if !data {
            tables.clear();
        }
        let schema = match options.content {
            DumpContent::DataOnly => None,
            _ => {
                // With more than one worker, a second session in the snapshot shares the catalog queries;
                // it ends before the workers start.
                let helper =
                    if options.jobs > 1 { Some(Self::helper(options, &exported_snapshot).await?) } else { None };
                Some(schema::read_schema_with(&session, helper.as_ref(), &server, &filters).await?)
            }
        };
        Ok(Leader {
            session,
            exported_snapshot,
            catalog: DataCatalog { server, tables, sequences, large_objects },
            schema,
            warnings,
        })
    }

    /// A session in a read-only transaction of the exported snapshot.
    async fn helper(options: &DumpOptions, snapshot: &str) -> Result<Session> {
        let helper = Session::open(&options.connect, None).await?.cancelled_by(&options.cancel);
        lane::join_snapshot(&helper, snapshot).await?;
        Ok(helper)
    }

    fn plan(&self, options: &DumpOptions) -> DumpPlan {
        plan_dump(&self.catalog, &PlanOptions { jobs: options.jobs, part_bytes: options.part_bytes })
    }
}

/// Reads the catalog and returns the plan a dump would run, without dumping anything (`--dry-run`).
pub async fn plan(options: &DumpOptions) -> Result<DumpPlan> {
    let leader = Leader::open(options).await?;
    let plan = leader.plan(options);
    leader.session.batch("ROLLBACK").await?;
    Ok(plan)
}

/// Dumps the database into `target`. On failure no archive is left behind: a file target's `.partial`
/// is removed (only a crash or a kill leaves one, and it never looks complete), unless another dump
/// holds it (a dump refused because another writes the same file).
pub async fn dump(options: &DumpOptions, target: ArchiveTarget, progress: Arc<dyn Progress>) -> Result<DumpReport> {
    let partial = match &target {
        ArchiveTarget::File(path) => staging_path(path),
        // An upload is aborted by the writer's drop.
        ArchiveTarget::Stdout | ArchiveTarget::Object(_) => None,
    };
    let result = run(options, target, progress).await.map_err(|e| {
        // A statement the interruption stopped fails with the server's "canceling statement"; the
        // interruption is the cause worth reporting.
        if options.cancel.is_cancelled() {
            Error::new(ErrorKind::Cancelled, "the dump was interrupted: no archive was written")
        } else {
            e
        }
    });
    if let (Err(_), Some(partial)) = (&result, partial) {
        crate::archive::remove_unheld(&partial);
    }
    result
}

async fn run(options: &DumpOptions, target: ArchiveTarget, progress: Arc<dyn Progress>) -> Result<DumpReport> {
    let started = Instant::now();
    let mut leader = Leader::open(options).await?;
    let plan = leader.plan(options);
    // The archive's catalog holds the schema as JSON: the engine's own copy goes once converted, and the
    // catalog once written, so that a schema of many tables is not held twice (or thrice) during the dump.
    let schema_objects = leader.schema.as_ref().map_or(0, |s| s.objects.len());
    let schema = leader.schema.take().map(|s| s.to_document());
    let catalog = Catalog {
        archive_id: new_archive_id(),
        created_at: crate::archive::now_rfc3339(),
        tool: format!("pgsafe {}", env!("CARGO_PKG_VERSION")),
        server: leader.catalog.server.clone(),
        parts: plan.parts.iter().map(|p| p.info.clone()).collect(),
        sequences: leader.catalog.sequences.clone(),
        schema,
    };
    let sealing =
        if options.encrypt_to.is_empty() {
            None
        } else {
            Some(Sealing::to(&options.encrypt_to).map_err(|problem| {
                Error::new(ErrorKind::InvalidInput, format!("cannot encrypt the archive: {problem}"))
            })?)
        };
    let writer = ArchiveWriter::create_sealed(target, &catalog, options.compression, sealing.clone(), &options.cancel)?;
    let sequences = catalog.sequences.len();
    drop(catalog);
    // Two messages per worker in flight: enough to keep the disk busy, small enough to bound memory.
    let (tx, writer_task) = writer.spawn(options.jobs.max(1) * 2, options.cancel.clone());

    progress.start("dump", plan.estimated_bytes(), plan.estimated_rows());
    let cores = crate::pool::cores();
    let in_flight = worker::chunks_in_flight(options.jobs, cores);
    let chunk_bytes =
        options.chunk_bytes.unwrap_or_else(|| worker::chunk_bytes(DEFAULT_CHUNK_BYTES, options.jobs, in_flight));
    tracing::info!("chunks of {} KiB, at most {in_flight} more per worker in compression", chunk_bytes >> 10);
    let job = Arc::new(worker::Job {
        tx,
        compression: options.compression,
        sealing: sealing.map(Arc::new),
        chunk_bytes,
        progress: progress.clone(),
        in_flight,
        compressing: Arc::new(tokio::sync::Semaphore::new(cores.max(1))),
    });
    let setup = Arc::new(lane::LaneSetup {
        connect: options.connect.clone(),
        encoding: leader.catalog.server.encoding.clone(),
        exported_snapshot: leader.exported_snapshot.clone(),
        job,
    });
    let tasks = plan
        .parts
        .iter()
        .map(|p| Task::new(p.clone(), format!("part {} (`{}`)", p.info.id, p.info.table), p.info.estimated_bytes))
        .collect();
    let open = |stop: &Cancel| Lane::open(setup.clone(), stop.clone());
    let dumped =
        pool::run("the dump", options.jobs, tasks, &options.cancel, open, |lane: Lane, part| lane.dump(part)).await;
    let mut first_error = dumped.err();
    // The leader's locks kept every table as the snapshot saw it while the workers read. A leader ended
    // before they were done (by an administrator, or a tool that ends sessions idle in a transaction) let
    // go of them: a table rewritten since (`ALTER TABLE ... TYPE`, `TRUNCATE`) reads empty in the snapshot,
    // and a worker that had not joined the snapshot yet fails on it. Such an archive is not finished.
    if !options.cancel.is_cancelled()
        && let Err(e) = leader.session.batch("SELECT 1").await
    {
        let _ = setup.job.tx.send(WriterMessage::Abandon).await;
        // A worker that lost its connection too says the server went away for all: its error stays.
        let everyone = first_error.as_ref().is_some_and(connection_lost);
        if !everyone {
            first_error = Some(leader_lost(e, first_error));
        }
    }
    // The writer ends once every sender is gone: the lanes' threads end with the pool's lanes.
    drop(setup);
    let written = tokio::task::spawn_blocking(move || writer_task.join())
        .await
        .unwrap_or_else(|e| Err(Error::new(ErrorKind::Io, format!("the archive writer failed: {e}"))));
    // Only now may the snapshot and the locks go.
    let _ = leader.session.batch("COMMIT").await;
    progress.finish();
    let written = match (first_error, written) {
        (Some(e), Err(w)) if e.is_consequence() => return Err(w),
        (Some(e), _) => return Err(e),
        (None, w) => w?,
    };
    let m = &written.manifest;
    Ok(DumpReport {
        path: written.path.as_ref().map(|p| p.display().to_string()),
        archive_bytes: written.bytes,
        schema_objects,
        tables: m.tables.iter().filter(|t| t.table.schema != "pg_catalog").count(),
        parts: m.parts.len(),
        chunks: m.parts.iter().map(|p| p.chunks.len()).sum(),
        rows: m.parts.iter().map(|p| p.rows).sum(),
        raw_bytes: m.parts.iter().map(|p| p.raw_bytes).sum(),
        stored_bytes: m.parts.iter().map(|p| p.stored_bytes).sum(),
        sequences,
        large_objects: leader.catalog.large_objects.map_or(0, |l| l.count),
        seconds: started.elapsed().as_secs_f64(),
        server_version: leader.catalog.server.version.clone(),
        warnings: leader.warnings.clone(),
    })
}

/// 128 random-enough bits: BLAKE3 of the time, the process and a stack address.
fn new_archive_id() -> String {
    let mut h = blake3::Hasher::new();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    h.update(&now.as_nanos().to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    let marker = 0u8;
    h.update(&(&marker as *const u8 as usize).to_le_bytes());
    hex::encode(&h.finalize().as_bytes()[..16])
}
