//! `snapshot` and `prune` on any [`Store`]: the steps, their order, and the audit line each leaves.
//!
//! A snapshot is the dump engine writing into the store, then the verify engine reading what it wrote;
//! only a complete (and, unless told otherwise, verified) archive gets metadata, so a failure leaves no
//! snapshot behind, only an audit line saying why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;

use super::retention::{self, RetentionPlan, RetentionPolicy};
use super::{
    AuditCommand, AuditEntry, LockHolder, Outcome, SnapshotArchive, SnapshotId, SnapshotMeta, SnapshotScope, Store,
    StoreLock, TableRows,
};
use crate::archive::ArchiveReader;
use crate::cancel::Cancel;
use crate::dump::{DumpOptions, DumpReport};
use crate::error::{Error, ErrorKind, Result};
use crate::progress::Progress;

/// What `pgsafe snapshot` does.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    pub dump: DumpOptions,
    pub label: Option<String>,
    /// The migration the snapshot is taken before (`pgsafe migrate`).
    pub migration: Option<String>,
    /// The snapshot this one protects (a rollback's safety snapshot).
    pub protects: Option<SnapshotId>,
    /// Why retention must keep it (`pgsafe migrate` pins the snapshot it may roll back to).
    pub pinned: Option<String>,
    /// The process whose run the pin lasts for (see [`SnapshotMeta::pinned_by`]).
    pub pinned_by: Option<super::LockHolder>,
    /// Verify the written archive in full (the default).
    pub verify: bool,
    /// Retention for the snapshot's database afterwards; `None` for none.
    pub retention: Option<RetentionPolicy>,
    /// How long to wait for the store's lock.
    pub lock_wait: Duration,
}

/// What a snapshot did.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotReport {
    pub snapshot: SnapshotMeta,
    /// Where the store is.
    pub store: String,
    pub dump: DumpReport,
    /// The retention applied afterwards.
    pub retention: Option<PruneReport>,
}

/// What `pgsafe prune` does.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub policy: RetentionPolicy,
    /// Only this database's snapshots; `None` for all.
    pub database: Option<String>,
    /// Decide, print, and change nothing.
    pub dry_run: bool,
    pub lock_wait: Duration,
    /// Ends a wait for the lock.
    pub cancel: Cancel,
}

/// What a prune decided and did.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub store: String,
    pub dry_run: bool,
    pub plan: RetentionPlan,
    /// What was removed (empty for a dry run).
    pub removed: Vec<SnapshotId>,
    /// Files of no snapshot, left alone (see [`Store::leftovers`]).
    pub leftovers: Vec<String>,
}

/// How long a snapshot waits for a free id: ids carry the time to the second, so two snapshots of one
/// database with the same label in the same second take turns.
const ID_ATTEMPTS: usize = 5;

/// Dumps `options.dump` into the store, verifies it, records its metadata, appends the audit line, and
/// applies retention. On any failure the store holds no trace of the snapshot but the audit line.
pub async fn snapshot(
    store: &dyn Store,
    options: &SnapshotOptions,
    progress: Arc<dyn Progress>,
) -> Result<SnapshotReport> {
    snapshot_locked(store, options, progress, None).await
}

/// [`snapshot`] for an operation that holds the store's lock already (a rollback's safety snapshot): the
/// metadata is written under `held` instead of a lock of its own.
pub(crate) async fn snapshot_locked(
    store: &dyn Store,
    options: &SnapshotOptions,
    progress: Arc<dyn Progress>,
    held: Option<&StoreLock>,
) -> Result<SnapshotReport> {
    let started_at = Timestamp::now();
    let started = Instant::now();
    let mut kept = None;
    let result = take(store, options, progress, held.is_some(), &mut kept).await;
    let mut entry =
        AuditEntry::new(AuditCommand::Snapshot, started_at, Outcome::of(&result), started.elapsed().as_secs_f64());
    entry.server = Some(options.dump.connect.describe());
    entry.role = Some(options.dump.connect.user().to_owned());
    entry.database = Some(options.dump.connect.dbname().to_owned());
    entry.migration = options.migration.clone();
    // A snapshot whose retention failed is kept, and the line names it.
    entry.snapshot = kept;
    if let Ok(report) = &result {
        entry.removed = report.retention.as_ref().map(|r| r.removed.clone()).unwrap_or_default();
        entry.manifest_blake3 = report.snapshot.manifest_blake3.clone();
    }
    let logged = store.append_audit(&entry);
    match (result, logged) {
        (Ok(report), Ok(())) => Ok(report),
        (Ok(report), Err(e)) => Err(e.context(format!("snapshot `{}` was taken, but", report.snapshot.id))),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(log)) => Err(e.and_hint(format!("the audit log could not record the failure either: {log}"))),
    }
}

/// A snapshot's archive, opened for a restore (a rollback, a rehearsal) once it is known to be the archive
/// the snapshot was taken as: the BLAKE3 of its manifest (which holds the hash of every part's rows) must
/// be the one the snapshot's metadata recorded, and the one its audit line recorded. A store an attacker
/// or an accident can write to (a bucket, a shared folder) could otherwise hand a rollback another
/// archive: a valid one of another day passes every checksum.
pub fn open_snapshot(store: &dyn Store, meta: &SnapshotMeta) -> Result<ArchiveReader> {
    let archive = store.archive(&meta.id);
    let reader = archive.open(&store.keys().keyring).map_err(|e| e.context(format!("snapshot `{}`", meta.id)))?;
    let actual = hex::encode(reader.index().footer().manifest_blake3);
    let refuse = |recorded: &str, where_: &str| {
        Error::new(
            ErrorKind::CorruptArchive,
            format!(
                "snapshot `{}`: its archive `{}` is not the one {where_} recorded (manifest BLAKE3 {actual}, recorded {recorded}): it was replaced or altered after the snapshot was taken",
                meta.id, archive
            ),
        )
        .with_hint("nothing was restored; roll back to another snapshot (`pgsafe snapshots` lists them)")
    };
    if let Some(recorded) = &meta.manifest_blake3
        && *recorded != actual
    {
        return Err(refuse(recorded, "its metadata"));
    }
    // The snapshot's line was appended when it finished, on the machine whose clock gave `created_at`; a
    // day's margin covers that clock stepping back.
    let since = meta.created_at.checked_sub(jiff::SignedDuration::from_hours(24)).unwrap_or(meta.created_at);
    match store.read_audit_since(since) {
        Ok(log) => {
            let line = log.entries.iter().rev().find(|e| {
                e.command == AuditCommand::Snapshot
                    && e.snapshot.as_ref() == Some(&meta.id)
                    && e.manifest_blake3.is_some()
            });
            if let Some(recorded) = line.and_then(|e| e.manifest_blake3.as_deref())
                && recorded != actual
            {
                return Err(refuse(recorded, "the audit log"));
            }
        }
        Err(e) => tracing::warn!("the audit log could not be read to check snapshot `{}` against it: {e}", meta.id),
    }
    Ok(reader)
}

/// `meta` with its tables' rows and digests, which the checks against a snapshot compare: an encrypted
/// snapshot's metadata holds none, so they are read from its archive's manifest with the store's identity
/// (an error saying it is needed when the store has none).
pub fn with_tables(store: &dyn Store, meta: SnapshotMeta) -> Result<SnapshotMeta> {
    if meta.encrypted_to.is_empty() || !meta.tables.is_empty() {
        return Ok(meta);
    }
    let reader = open_snapshot(store, &meta)?;
    Ok(tables_from(meta, &reader))
}

/// `meta` with the tables of `reader`'s manifest (the snapshot's archive, already open).
pub fn tables_from(mut meta: SnapshotMeta, reader: &ArchiveReader) -> SnapshotMeta {
    if meta.tables.is_empty() {
        meta.tables = manifest_tables(reader);
        meta.rows = meta.tables.iter().map(|t| t.rows).sum();
    }
    meta
}

fn manifest_tables(reader: &ArchiveReader) -> Vec<TableRows> {
    reader
        .index()
        .manifest()
        .tables
        .iter()
        .filter(|t| t.table.schema != "pg_catalog")
        .map(|t| TableRows { table: t.table.to_string(), rows: t.rows, digest: format!("{:032x}", t.digest.0) })
        .collect()
}

/// What the snapshot found when it read back the archive it wrote.
struct Written {
    /// Whether it was verified (every row, or, encrypted without the identity, every checksum).
    verified: bool,
    tables: Vec<TableRows>,
    manifest_blake3: [u8; 32],
    encrypted_to: Vec<String>,
}

/// Reads back what the snapshot wrote. With the means to read it, the archive is verified in full (unless
/// `verify` is off) and its manifest gives the tables' rows. An encrypted archive on a machine without the
/// identity, which only holds the recipients, gets what can be done without the key, every time: its
/// structure, every frame's CRC-32 and the sealed manifest's BLAKE3, read once front to back.
async fn check_written(
    store: &dyn Store,
    archive: &SnapshotArchive,
    id: &SnapshotId,
    verify: bool,
    encrypted: bool,
    jobs: usize,
    cancel: &Cancel,
) -> Result<Written> {
    let unsound = |problems: &[String]| {
        Error::new(
            ErrorKind::CheckFailed,
            format!(
                "the archive of snapshot `{id}` did not verify: {}",
                problems.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            ),
        )
        .with_hint("the snapshot was not kept; check the disk of the store, then take it again")
    };
    let blocking_failed = |e: tokio::task::JoinError| Error::new(ErrorKind::Io, format!("verifying `{archive}`: {e}"));
    if encrypted && store.keys().keyring.is_empty() {
        let checked = archive.clone();
        return match tokio::task::spawn_blocking(move || checked.check_structure()).await.map_err(blocking_failed)? {
            Ok(layout) => Ok(Written {
                verified: true,
                tables: Vec::new(),
                manifest_blake3: layout.manifest_blake3,
                encrypted_to: layout.recipient_kinds,
            }),
            Err(e) if e.kind() == ErrorKind::CorruptArchive => Err(unsound(&[e.to_string()])),
            Err(e) => Err(e),
        };
    }
    // Opened once: the verification checks the reader that then describes the snapshot.
    let reader = Arc::new(archive.open(&store.keys().keyring)?);
    if verify {
        let (checked, source, cancel) = (reader.clone(), archive.to_string(), cancel.clone());
        let report = tokio::task::spawn_blocking(move || crate::verify::verify_reader(source, checked, jobs, &cancel))
            .await
            .map_err(blocking_failed)??;
        if !report.is_sound() {
            return Err(unsound(&report.problems));
        }
    }
    let index = reader.index();
    Ok(Written {
        verified: verify,
        tables: manifest_tables(&reader),
        manifest_blake3: index.footer().manifest_blake3,
        encrypted_to: index.recipient_kinds().to_vec(),
    })
}

async fn take(
    store: &dyn Store,
    options: &SnapshotOptions,
    progress: Arc<dyn Progress>,
    held: bool,
    kept: &mut Option<SnapshotId>,
) -> Result<SnapshotReport> {
    let database = options.dump.connect.dbname().to_owned();
    let (id, created_at) = claim_id(store, &database, options.label.as_deref()).await?;
    let archive = store.archive(&id);
    let result = async {
        // The store's recipients encrypt its snapshots, unless the options name their own.
        let mut dump_options = options.dump.clone();
        if dump_options.encrypt_to.is_empty() {
            dump_options.encrypt_to = store.keys().recipients.clone();
        }
        let encrypted = !dump_options.encrypt_to.is_empty();
        let dump = crate::dump::dump(&dump_options, archive.target(), progress).await?;
        let started = Instant::now();
        let cancel = &options.dump.cancel;
        let checked =
            check_written(store, &archive, &id, options.verify, encrypted, options.dump.jobs.max(1), cancel).await?;
        let verify_seconds = checked.verified.then(|| started.elapsed().as_secs_f64());
        let tables = match encrypted {
            // An encrypted snapshot's metadata names no table: its archive reveals none.
            true => Vec::new(),
            false => checked.tables,
        };
        let meta = SnapshotMeta {
            id: id.clone(),
            database: database.clone(),
            created_at,
            label: options.label.clone(),
            migration: options.migration.clone(),
            server: options.dump.connect.describe(),
            server_version: dump.server_version.clone(),
            pgsafe_version: format!("pgsafe {}", env!("CARGO_PKG_VERSION")),
            os_user: super::audit::os_user(),
            role: options.dump.connect.user().to_owned(),
            scope: SnapshotScope::of(&options.dump),
            archive: archive.name(),
            bytes: dump.archive_bytes,
            rows: tables.iter().map(|t| t.rows).sum(),
            tables,
            dump_seconds: dump.seconds,
            verify_seconds: verify_seconds.unwrap_or(0.0),
            verified_at: verify_seconds.map(|_| Timestamp::now()),
            protects: options.protects.clone(),
            pinned: options.pinned.clone(),
            pinned_by: options.pinned_by.clone(),
            manifest_blake3: Some(hex::encode(checked.manifest_blake3)),
            encrypted_to: checked.encrypted_to,
        };
        // Interrupted once the archive was read back: still no snapshot.
        cancel.check("the snapshot")?;
        // Metadata is written under the lock, so that a prune sees a snapshot whole or not at all.
        let lock = match held {
            true => None,
            false => Some(super::lock_in_async(
                store,
                &LockHolder::this_process("pgsafe snapshot"),
                options.lock_wait,
                &options.dump.cancel,
            )?),
        };
        store.put(&meta)?;
        Ok::<_, Error>((dump, meta, lock))
    }
    .await;
    let (dump, meta, _lock) = match result {
        Ok(done) => done,
        Err(e) => {
            // The dump removes its own `.partial`; an archive that did not verify, or whose metadata could
            // not be written, goes too: no snapshot without metadata.
            if let Err(removing) = store.remove(&id) {
                return Err(e.and_hint(format!("could not remove what it left: {removing}")));
            }
            return Err(e);
        }
    };
    *kept = Some(id.clone());
    let retention = match &options.retention {
        Some(policy) => Some(apply(store, policy, Some(&database), false).map_err(|e| {
            e.context(format!("snapshot `{id}` was taken and kept in `{}`, but retention failed", store.location()))
        })?),
        None => None,
    };
    Ok(SnapshotReport { snapshot: meta, store: store.location(), dump, retention })
}

/// Claims the id for a snapshot of `database` now, and returns it with the time it names; when another
/// snapshot has it (same second, same label), waits for the next second.
async fn claim_id(store: &dyn Store, database: &str, label: Option<&str>) -> Result<(SnapshotId, Timestamp)> {
    for _ in 0..ID_ATTEMPTS {
        let now = Timestamp::now();
        let id = SnapshotId::new(database, now, label)?;
        if store.reserve(&id)? {
            return Ok((id, now));
        }
        let into_second = Timestamp::now().subsec_nanosecond().max(0) as u64;
        tokio::time::sleep(Duration::from_nanos(1_000_000_000 - into_second.min(999_999_999))).await;
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!("no free snapshot id for database `{database}` in the store `{}`", store.location()),
    )
    .with_hint("a snapshot of that name exists for each of the last seconds; give this one a `--label`"))
}

/// Applies retention by itself (`pgsafe prune`), under the store's lock unless it is a dry run, and
/// appends the audit line of a real run.
pub fn prune(store: &dyn Store, options: &PruneOptions) -> Result<PruneReport> {
    if options.dry_run {
        return apply(store, &options.policy, options.database.as_deref(), true);
    }
    let started_at = Timestamp::now();
    let started = Instant::now();
    let result = store
        .lock(&LockHolder::this_process("pgsafe prune"), options.lock_wait, &options.cancel)
        .and_then(|_lock| apply(store, &options.policy, options.database.as_deref(), false));
    let mut entry =
        AuditEntry::new(AuditCommand::Prune, started_at, Outcome::of(&result), started.elapsed().as_secs_f64());
    entry.database = options.database.clone();
    if let Ok(report) = &result {
        entry.removed = report.removed.clone();
    }
    let logged = store.append_audit(&entry);
    match (result, logged) {
        (Ok(_), Err(e)) => Err(e.context("the prune is done, but")),
        (result, _) => result,
    }
}

/// Plans retention over the store's snapshots (of `database`, or all) and, unless `dry_run`, removes what
/// the plan says. The caller holds the lock.
fn apply(store: &dyn Store, policy: &RetentionPolicy, database: Option<&str>, dry_run: bool) -> Result<PruneReport> {
    let snapshots: Vec<super::Listed> =
        super::list_checked(store)?.into_iter().filter(|s| database.is_none_or(|d| s.meta.database == d)).collect();
    let plan = retention::plan_listed(&snapshots, policy, Timestamp::now());
    let mut removed = Vec::new();
    if !dry_run {
        for d in &plan.remove {
            store.remove(&d.id)?;
            removed.push(d.id.clone());
        }
    }
    Ok(PruneReport { store: store.location(), dry_run, plan, removed, leftovers: store.leftovers()? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::sample_meta;

    /// A store holding four snapshots of `a` (the newest at 04:00) and one of `b`.
    fn store() -> MemoryStore {
        let store = MemoryStore::default();
        for time in ["2026-12-01T01:00:00Z", "2026-12-01T02:00:00Z", "2026-12-01T03:00:00Z", "2026-12-01T04:00:00Z"] {
            store.put(&sample_meta("a", time)).unwrap();
        }
        store.put(&sample_meta("b", "2026-11-01T00:00:00Z")).unwrap();
        store
    }

    fn options(keep_last: usize, database: Option<&str>, dry_run: bool) -> PruneOptions {
        PruneOptions {
            policy: RetentionPolicy { keep_last, ..RetentionPolicy::default() },
            database: database.map(str::to_owned),
            dry_run,
            lock_wait: Duration::from_millis(50),
            cancel: Cancel::new(),
        }
    }

    fn ids(store: &MemoryStore) -> Vec<String> {
        store.list().unwrap().iter().map(|s| s.id.to_string()).collect()
    }

    #[test]
    fn a_dry_run_removes_nothing_and_logs_nothing() {
        let store = store();
        let before = store.list().unwrap();
        let report = prune(&store, &options(1, None, true)).unwrap();
        assert_eq!(report.plan.remove.len(), 3);
        assert_eq!(report.removed, []);
        assert_eq!(store.list().unwrap(), before);
        assert_eq!(store.audit(), []);
    }

    #[test]
    fn a_prune_removes_what_its_plan_says_in_one_database_and_logs_it() {
        let store = store();
        let report = prune(&store, &options(2, Some("a"), false)).unwrap();
        let removed: Vec<String> = report.removed.iter().map(ToString::to_string).collect();
        assert_eq!(removed, ["a-20261201T020000Z", "a-20261201T010000Z"]);
        assert_eq!(ids(&store), ["a-20261201T040000Z", "a-20261201T030000Z", "b-20261101T000000Z"]);
        let audit = store.audit();
        assert_eq!(audit.len(), 1);
        assert_eq!((audit[0].command, &audit[0].outcome), (AuditCommand::Prune, &Outcome::Ok));
        assert_eq!(audit[0].removed, report.removed);
        assert_eq!(audit[0].database.as_deref(), Some("a"));
    }

    #[test]
    fn a_prune_keeps_the_newest_snapshot_whose_archive_is_there_not_one_whose_archive_is_gone() {
        let store = store();
        store.lose_archive(&SnapshotId::parse("a-20261201T040000Z").unwrap());
        let report = prune(&store, &options(1, Some("a"), false)).unwrap();
        let removed: Vec<String> = report.removed.iter().map(ToString::to_string).collect();
        assert_eq!(removed, ["a-20261201T040000Z", "a-20261201T020000Z", "a-20261201T010000Z"]);
        assert_eq!(ids(&store), ["a-20261201T030000Z", "b-20261101T000000Z"]);
    }

    #[test]
    fn a_prune_refuses_while_another_writer_holds_the_lock_and_logs_the_refusal() {
        let store = store();
        let holder = LockHolder::this_process("pgsafe rollback");
        let held = store.lock(&holder, Duration::ZERO, &Cancel::new()).unwrap();
        let e = prune(&store, &options(1, None, false)).unwrap_err();
        assert!(e.to_string().starts_with("the store `memory` is locked by `pgsafe rollback` (pid "), "{e}");
        assert_eq!(ids(&store).len(), 5);
        assert!(matches!(&store.audit()[0].outcome, Outcome::Failed { error } if error.contains("is locked by")));
        drop(held);
        assert_eq!(prune(&store, &options(1, None, false)).unwrap().removed.len(), 3);
    }
}
