//! The snapshot store: where the migration-safety workflow keeps its snapshots (archives taken before a
//! change), a metadata document for each, and the append-only audit log of every operation.
//!
//! ```text
//! snapshot: lock-free dump into the store -> verify -> lock -> metadata -> audit line -> retention -> unlock
//! prune:    lock -> list -> RetentionPlan (pure) -> remove what it says -> audit line -> unlock
//! ```
//!
//! The store sits behind the [`Store`] trait, small enough to put on object storage later; [`LocalStore`]
//! is the folder implementation (`PGSAFE_DIR`, else `BACKUP_DIR`, else `./.pgsafe`). A snapshot's id is its
//! archive's file stem, `<database>-<UTC time>[-<label>]`. [`retention`] decides what a prune removes, as a
//! pure function of the snapshots' metadata and the time; [`audit`] is the log's line; [`operation`]
//! runs `snapshot` and `prune` on any store; [`status`] is the store at a glance (`pgsafe status`).

pub mod audit;
mod bucket;
mod local;
mod lock;
#[cfg(test)]
mod memory;
pub mod operation;
pub mod retention;
pub mod status;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::archive::{ArchiveReader, ArchiveTarget, ObjectLocation};
use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::format::Keyring;
pub use audit::{AuditCommand, AuditEntry, AuditLog, Outcome};
pub use bucket::BucketStore;
pub use local::LocalStore;
pub use lock::{LockHolder, StoreLock};

/// The folder the store is in when neither `--store`, `PGSAFE_DIR` nor `BACKUP_DIR` names one.
pub const DEFAULT_DIR: &str = ".pgsafe";

/// The store's folder: `explicit` (the `--store` option), else env `PGSAFE_DIR`, else env `BACKUP_DIR` (what
/// the backup scripts pgsafe replaces used), else `./.pgsafe`. An empty variable counts as unset.
pub fn resolve_dir(explicit: Option<&Path>) -> PathBuf {
    resolve_dir_with(explicit, |name| std::env::var_os(name))
}

fn resolve_dir_with(explicit: Option<&Path>, var: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let var = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    explicit
        .map(Path::to_path_buf)
        .or_else(|| var("PGSAFE_DIR"))
        .or_else(|| var("BACKUP_DIR"))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

/// A snapshot's id: its archive's file stem, `<database>-<UTC time>[-<label>]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SnapshotId(String);

/// The most bytes of a label kept in an id, so that ids stay well under file-name limits.
const MAX_LABEL_BYTES: usize = 64;

impl SnapshotId {
    /// The id of a snapshot of `database` taken at `at`, with an optional label. The database name is
    /// made file-safe the way labels are; a label with nothing file-safe left in it is refused by name.
    pub fn new(database: &str, at: Timestamp, label: Option<&str>) -> Result<SnapshotId> {
        let time = at.strftime("%Y%m%dT%H%M%SZ");
        let database = match sanitize(database) {
            s if s.is_empty() => "db".to_owned(),
            s => s,
        };
        let id = match label {
            None => format!("{database}-{time}"),
            Some(label) => {
                let safe = sanitize(label);
                if safe.is_empty() || safe.len() > MAX_LABEL_BYTES {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!("the label `{label}` cannot name a snapshot file"),
                    )
                    .with_hint(format!(
                        "use 1 to {MAX_LABEL_BYTES} letters, digits, `.`, `_` or `-`; other characters become `_`"
                    )));
                }
                format!("{database}-{time}-{safe}")
            }
        };
        Ok(SnapshotId(id))
    }

    /// An id given by the user (`pgsafe rollback ID`): any file stem the store could have written.
    pub fn parse(text: &str) -> Result<SnapshotId> {
        let text = text.strip_suffix(".pgsafe").unwrap_or(text);
        if text.is_empty() || text.starts_with('.') || sanitize(text) != text {
            return Err(Error::new(ErrorKind::InvalidInput, format!("`{text}` is not a snapshot id"))
                .with_hint("`pgsafe snapshots` lists the ids"));
        }
        Ok(SnapshotId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `text` in the file-name charset of ids: ASCII letters, digits, `.`, `_` and `-`; any other character
/// becomes `_`; leading and trailing `.`, `_` and `-` go (no hidden files, no `..`).
fn sanitize(text: &str) -> String {
    let mapped: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    mapped.trim_matches(|c| matches!(c, '.' | '_' | '-')).to_owned()
}

/// What the store knows of one snapshot: written once the archive is complete (and verified), read by
/// `snapshots`, retention, and later rollback (which tables changed since) and check (row counts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub id: SnapshotId,
    /// The database's name on its server.
    pub database: String,
    /// When the dump started, in UTC.
    pub created_at: Timestamp,
    pub label: Option<String>,
    /// The migration this snapshot was taken before (set by `pgsafe migrate`).
    pub migration: Option<String>,
    /// `user@host:port/dbname`, never a password.
    pub server: String,
    /// The server's `version()`.
    pub server_version: String,
    /// `pgsafe X.Y.Z` that took it.
    pub pgsafe_version: String,
    pub os_user: String,
    /// The database role the dump logged in as.
    pub role: String,
    /// What the dump took: a rollback to a snapshot of some tables, or of the schema alone, must know it.
    pub scope: SnapshotScope,
    /// The archive's file name in the store.
    pub archive: String,
    /// The archive's size in bytes.
    pub bytes: u64,
    /// Rows of every table, summed.
    pub rows: u64,
    /// Each table's rows and content digest, from the archive's manifest.
    pub tables: Vec<TableRows>,
    /// How long the dump took.
    pub dump_seconds: f64,
    /// How long verification took (0 when not verified).
    pub verify_seconds: f64,
    /// When the archive was verified in full (every checksum, row count and digest); `None` when it was not
    /// (`--no-verify`).
    pub verified_at: Option<Timestamp>,
    /// The snapshot this one was taken to protect (a rollback's safety snapshot of the state it replaces).
    pub protects: Option<SnapshotId>,
    /// Why retention must keep this snapshot (a running or failed migration depends on it); `None` when
    /// nothing does.
    pub pinned: Option<String>,
    /// The process that pinned it while it runs (a running migration's), so that a pin whose process is
    /// gone (killed outright) can be told from a live one; `None` for a pin that outlives its process by
    /// design (NEEDS ATTENTION), and for snapshots of a pgsafe before it recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_by: Option<LockHolder>,
    /// The BLAKE3 of the archive's manifest (hex), as its footer held it when the snapshot was taken. The
    /// manifest holds the hash of every part's rows, so this names the archive's whole content: a rollback
    /// refuses an archive whose manifest hashes otherwise (replaced or altered in the store). Also in the
    /// snapshot's audit line. `None` for snapshots taken before pgsafe recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_blake3: Option<String>,
    /// The kinds of recipient an encrypted snapshot is encrypted to (`X25519`, `ssh-ed25519`); empty for a
    /// plain one. An encrypted snapshot's metadata names no table and counts no row (`tables` is empty,
    /// `rows` 0), as its archive reveals none: they are read from the archive, with the identity, when a
    /// check needs them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encrypted_to: Vec<String>,
}

impl SnapshotMeta {
    pub fn is_verified(&self) -> bool {
        self.verified_at.is_some()
    }
}

/// Whether a snapshot's archive is in the store as its metadata recorded it. Someone may have deleted or
/// replaced the file after the snapshot was taken: such a snapshot can restore nothing, so `--latest`
/// passes over it and retention does not count it among those it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveState {
    /// There, of the recorded size.
    Present,
    /// Not in the store.
    Missing,
    /// There, but `bytes` long instead of the `recorded` size: cut off, or another file.
    WrongSize { bytes: u64, recorded: u64 },
}

impl ArchiveState {
    /// The state of `meta`'s archive among the store's `archives` (from [`Store::archive_sizes`]).
    pub fn of(meta: &SnapshotMeta, archives: &BTreeMap<SnapshotId, u64>) -> ArchiveState {
        match archives.get(&meta.id) {
            None => ArchiveState::Missing,
            Some(&bytes) if bytes != meta.bytes => ArchiveState::WrongSize { bytes, recorded: meta.bytes },
            Some(_) => ArchiveState::Present,
        }
    }

    pub fn is_present(&self) -> bool {
        *self == ArchiveState::Present
    }
}

impl fmt::Display for ArchiveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveState::Present => f.write_str("its archive is there"),
            ArchiveState::Missing => f.write_str("its archive is missing"),
            ArchiveState::WrongSize { bytes, recorded } => {
                write!(f, "its archive has {bytes} bytes, not the {recorded} recorded")
            }
        }
    }
}

/// A snapshot as the store lists it: its metadata, and whether its archive is there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub meta: SnapshotMeta,
    pub archive_state: ArchiveState,
    /// Whether the process that pinned it still runs, when one did (see [`PinHolder`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_holder: Option<PinHolder>,
}

impl Listed {
    /// `meta` with its archive as recorded, pinned by no process (for tests and lists already checked).
    pub fn present(meta: SnapshotMeta) -> Listed {
        Listed { meta, archive_state: ArchiveState::Present, pin_holder: None }
    }
}

/// Whether the process that pinned a snapshot while it runs ([`SnapshotMeta::pinned_by`]) still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinHolder {
    /// It runs, on this host.
    Running,
    /// It runs no more (killed outright, or its machine restarted): nothing will unpin the snapshot
    /// but `pgsafe snapshots --unpin`.
    Gone,
    /// It ran on another host, which this one cannot look at.
    Elsewhere,
}

impl PinHolder {
    /// The state of `meta`'s pinning process; `None` when it is not pinned by one.
    pub fn of(meta: &SnapshotMeta) -> Option<PinHolder> {
        let reason = meta.pinned.as_deref()?;
        let holder = meta.pinned_by.clone().or_else(|| Self::named_in(reason))?;
        Some(match holder.is_running_here() {
            Some(true) => PinHolder::Running,
            Some(false) => PinHolder::Gone,
            None => PinHolder::Elsewhere,
        })
    }

    /// The process a pin's reason names, `... (pid N on HOST, since TIME)`, as a migration wrote it before
    /// the metadata kept [`SnapshotMeta::pinned_by`].
    fn named_in(reason: &str) -> Option<LockHolder> {
        let inner = reason.strip_suffix(')')?.rsplit_once(" (pid ")?.1;
        let (pid, rest) = inner.split_once(" on ")?;
        let (host, since) = rest.rsplit_once(", since ")?;
        Some(LockHolder {
            pid: pid.parse().ok()?,
            host: host.to_owned(),
            command: "pgsafe migrate".into(),
            since: since.parse().ok()?,
        })
    }
}

/// Every snapshot of the store, newest first, each with the state of its archive: two listings (the
/// metadata, then the archives), whatever the number of snapshots. The metadata is listed first, so a
/// snapshot that finishes in between is not taken for one whose archive is missing.
pub fn list_checked(store: &dyn Store) -> Result<Vec<Listed>> {
    let metas = store.list()?;
    let archives = store.archive_sizes()?;
    Ok(metas
        .into_iter()
        .map(|meta| {
            let archive_state = ArchiveState::of(&meta, &archives);
            let pin_holder = PinHolder::of(&meta);
            Listed { meta, archive_state, pin_holder }
        })
        .collect())
}

/// The newest snapshot of `database` that `wanted` takes and whose archive is there (`--latest`); each
/// newer one passed over for its archive is warned about, naming why. `None` when there is none.
pub fn newest_usable(
    store: &dyn Store,
    database: &str,
    wanted: impl Fn(&SnapshotMeta) -> bool,
) -> Result<Option<SnapshotMeta>> {
    for listed in list_checked(store)? {
        if listed.meta.database != database || !wanted(&listed.meta) {
            continue;
        }
        if listed.archive_state.is_present() {
            return Ok(Some(listed.meta));
        }
        tracing::warn!(
            "skipped snapshot `{}` of `{database}`: {} in the store `{}`",
            listed.meta.id,
            listed.archive_state,
            store.location()
        );
    }
    Ok(None)
}

/// The newest snapshot of `database` that [`newest_usable`] finds among those that are no rollback's
/// safety snapshot (which holds a state a rollback replaced) and that `restores` accepts: `--latest` of
/// `rollback`, `check` and `dry-run -- COMMAND`. A newer one `restores` refuses (it returns why: a
/// partial snapshot, for a whole rollback) is passed over with a warning naming it, as one whose archive
/// is gone.
pub fn newest_restorable(
    store: &dyn Store,
    database: &str,
    restores: impl Fn(&SnapshotMeta) -> std::result::Result<(), String>,
) -> Result<Option<SnapshotMeta>> {
    newest_usable(store, database, |s| {
        if s.protects.is_some() {
            return false;
        }
        match restores(s) {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!("skipped snapshot `{}` of `{database}`: {why}", s.id);
                false
            }
        }
    })
}

/// For [`newest_restorable`]: a snapshot that holds the whole database (not one taken with `-t`, `-T`,
/// `-n`, `-N`, `--exclude-table-data`, `--schema-only`, ...).
pub fn whole(s: &SnapshotMeta) -> std::result::Result<(), String> {
    if s.scope.is_whole() {
        Ok(())
    } else {
        Err(format!("it does not hold the whole database ({})", s.scope.describe()))
    }
}

/// What a snapshot's dump took, as its options said (patterns as given, with pg_dump's rules).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SnapshotScope {
    /// `both`, `schema-only` or `data-only`.
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schemas: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_schemas: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_tables: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_table_data: Vec<String>,
    #[serde(default)]
    pub no_unlogged_table_data: bool,
    /// `--table-and-children`, `--exclude-table-and-children`, `--exclude-table-data-and-children`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables_and_children: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_tables_and_children: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_table_data_and_children: Vec<String>,
}

impl SnapshotScope {
    /// The scope of a dump run with `options`.
    pub fn of(options: &crate::dump::DumpOptions) -> SnapshotScope {
        use crate::dump::DumpContent;
        let f = &options.filters;
        let sources = |ps: &[crate::catalog::NamePattern]| ps.iter().map(|p| p.source().to_owned()).collect();
        SnapshotScope {
            content: match options.content {
                DumpContent::Both => "both",
                DumpContent::SchemaOnly => "schema-only",
                DumpContent::DataOnly => "data-only",
            }
            .to_owned(),
            schemas: sources(&f.include_schemas),
            exclude_schemas: sources(&f.exclude_schemas),
            tables: sources(&f.include_tables),
            exclude_tables: sources(&f.exclude_tables),
            exclude_table_data: sources(&f.exclude_table_data),
            no_unlogged_table_data: f.no_unlogged_table_data,
            tables_and_children: sources(&f.include_tables_and_children),
            exclude_tables_and_children: sources(&f.exclude_tables_and_children),
            exclude_table_data_and_children: sources(&f.exclude_table_data_and_children),
        }
    }

    /// Whether the snapshot holds the whole database, schema and rows.
    pub fn is_whole(&self) -> bool {
        *self == SnapshotScope { content: "both".to_owned(), ..SnapshotScope::default() }
    }

    /// The scope as the options that took it: `both, -T big_log`.
    pub fn describe(&self) -> String {
        let mut parts = vec![self.content.clone()];
        for (flag, list) in [
            ("-n", &self.schemas),
            ("-N", &self.exclude_schemas),
            ("-t", &self.tables),
            ("-T", &self.exclude_tables),
            ("--exclude-table-data", &self.exclude_table_data),
            ("--table-and-children", &self.tables_and_children),
            ("--exclude-table-and-children", &self.exclude_tables_and_children),
            ("--exclude-table-data-and-children", &self.exclude_table_data_and_children),
        ] {
            parts.extend(list.iter().map(|p| format!("{flag} {p}")));
        }
        if self.no_unlogged_table_data {
            parts.push("--no-unlogged-table-data".to_owned());
        }
        parts.join(", ")
    }
}

/// One table's totals in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    /// `schema.name`, each quoted where SQL would need it.
    pub table: String,
    pub rows: u64,
    /// The order-independent content digest of its rows, 32 hex digits (see the archive format).
    pub digest: String,
}

/// Where the snapshots, their metadata and the audit log live. Small on purpose, so that object storage can
/// implement it: every method names one object, and nothing needs a directory walk beyond `list`.
pub trait Store: Send + Sync {
    /// Where the store is, for messages (`/srv/backups/.pgsafe`, later `s3://bucket/prefix`).
    fn location(&self) -> String;

    /// Every snapshot's metadata, newest first. A metadata file that cannot be read is an error naming it.
    fn list(&self) -> Result<Vec<SnapshotMeta>>;

    /// One snapshot's metadata; [`ErrorKind::InvalidInput`] naming the id and the store when absent.
    fn get(&self, id: &SnapshotId) -> Result<SnapshotMeta>;

    /// Writes a snapshot's metadata atomically: readers see the old document or the new one, never a part.
    fn put(&self, meta: &SnapshotMeta) -> Result<()>;

    /// Where the archive of `id` is written and read: a file, or an object the dump uploads in parts.
    fn archive(&self, id: &SnapshotId) -> SnapshotArchive;

    /// The size of every complete archive in the store (not a `.partial`), by the id its name gives, from
    /// one listing: whether a snapshot's archive is still there costs no request of its own.
    fn archive_sizes(&self) -> Result<BTreeMap<SnapshotId, u64>>;

    /// Claims `id` for a new snapshot, atomically: `false` when anything of it exists already (archive,
    /// metadata, or another writer's claim). The claim is the archive's `.partial`, which the dump then
    /// writes; [`Store::remove`] gives it up.
    fn reserve(&self, id: &SnapshotId) -> Result<bool>;

    /// Removes a snapshot: its metadata first (so it is no longer listed), then its archive (or claim).
    fn remove(&self, id: &SnapshotId) -> Result<()>;

    /// Archives that belong to no snapshot: a `.partial` (a snapshot running, or one killed before it
    /// finished) or an archive without metadata (killed between the two). Named for the user; never
    /// removed by retention, which cannot tell a running snapshot from a dead one.
    fn leftovers(&self) -> Result<Vec<String>>;

    /// Appends one line to the audit log.
    fn append_audit(&self, entry: &AuditEntry) -> Result<()>;

    /// The whole audit log, oldest line first (empty when there is none yet). Lines that are not entries
    /// are skipped and named in [`AuditLog::skipped`], never an error.
    fn read_audit(&self) -> Result<AuditLog>;

    /// The audit log's lines appended at `since` or later, oldest first; perhaps earlier ones too (a store
    /// that keeps the log in one file reads it whole). A store that keeps a line per object reads only
    /// those, instead of every line ever appended.
    fn read_audit_since(&self, since: Timestamp) -> Result<AuditLog> {
        let _ = since;
        self.read_audit()
    }

    /// Takes the store's writer lock, waiting up to `wait` for another holder; then refuses, naming it. An
    /// interruption (`cancel`) ends the wait at once.
    fn lock(&self, holder: &LockHolder, wait: Duration, cancel: &Cancel) -> Result<StoreLock>;

    /// The keys of its encrypted snapshots: new snapshots are encrypted to the recipients (when there are
    /// any), and read with the keyring.
    fn keys(&self) -> Arc<StoreKeys>;
}

/// The keys of a store's encrypted snapshots (`PGSAFE_RECIPIENTS`, `PGSAFE_IDENTITY`). The machine that
/// takes snapshots needs only the recipients (public keys): without the identity it still checks what it
/// wrote (structure and checksums), and only a machine with the identity can read the snapshots back.
#[derive(Debug, Default)]
pub struct StoreKeys {
    pub recipients: crate::format::Recipients,
    pub keyring: Keyring,
}

/// The store at `place` (`--store`, `PGSAFE_DIR`, ...): a folder, made if missing, or `s3://bucket/prefix`.
pub fn open(place: &Path, keys: StoreKeys) -> Result<Box<dyn Store>> {
    match bucket_of(place)? {
        Some((service, bucket, prefix)) => Ok(Box::new(BucketStore::open(service, &bucket, &prefix)?.with_keys(keys))),
        None => Ok(Box::new(LocalStore::open(place)?.with_keys(keys))),
    }
}

/// The store at `place` when there is one, for commands that only read: a folder that does not exist is
/// none (and is not made). A bucket's store always exists: an empty one lists nothing.
pub fn existing(place: &Path, keys: StoreKeys) -> Result<Option<Box<dyn Store>>> {
    match bucket_of(place)? {
        Some((service, bucket, prefix)) => {
            Ok(Some(Box::new(BucketStore::open(service, &bucket, &prefix)?.with_keys(keys))))
        }
        None => Ok(LocalStore::existing(place)?.map(|s| Box::new(s.with_keys(keys)) as Box<dyn Store>)),
    }
}

fn bucket_of(place: &Path) -> Result<Option<(crate::archive::object::Service, String, String)>> {
    match place.to_str() {
        Some(text) => bucket::parse_url(text),
        None => Ok(None),
    }
}

/// Where a snapshot's archive is: a file of a folder store, an object of a bucket's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotArchive {
    File(PathBuf),
    Object(ObjectLocation),
}

impl SnapshotArchive {
    /// Where the dump writes it.
    pub fn target(&self) -> ArchiveTarget {
        match self {
            SnapshotArchive::File(path) => ArchiveTarget::File(path.clone()),
            SnapshotArchive::Object(location) => ArchiveTarget::Object(location.clone()),
        }
    }

    /// The file's (or the key's) last name, as the metadata records it.
    pub fn name(&self) -> String {
        match self {
            SnapshotArchive::File(path) => {
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            }
            SnapshotArchive::Object(location) => location.key.rsplit('/').next().unwrap_or(&location.key).to_owned(),
        }
    }

    /// Opens it for reading, an encrypted one with `keyring`.
    pub fn open(&self, keyring: &Keyring) -> Result<ArchiveReader> {
        match self {
            SnapshotArchive::File(path) => ArchiveReader::open_with(path, keyring),
            SnapshotArchive::Object(location) => ArchiveReader::open_object_with(location, keyring),
        }
    }

    /// Checks what can be checked of an encrypted archive without its identity (see
    /// [`crate::format::check_structure`]). Blocks.
    pub fn check_structure(&self) -> Result<crate::format::SealedLayout> {
        match self {
            SnapshotArchive::File(path) => ArchiveReader::check_structure(path),
            SnapshotArchive::Object(location) => ArchiveReader::check_object_structure(location),
        }
    }

    /// Verifies it in full with `jobs` threads. Blocks: run it on a blocking thread.
    pub fn verify(&self, jobs: usize, keyring: &Keyring) -> Result<crate::verify::VerifyReport> {
        match self {
            SnapshotArchive::File(path) => crate::verify::verify_file_with_keys(path, jobs, keyring),
            SnapshotArchive::Object(location) => crate::verify::verify_object_with_keys(location, jobs, keyring),
        }
    }
}

impl fmt::Display for SnapshotArchive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotArchive::File(path) => write!(f, "{}", path.display()),
            SnapshotArchive::Object(location) => write!(f, "{location}"),
        }
    }
}

/// Takes `store`'s lock from async code: the wait for another holder blocks its thread, so on a
/// multi-threaded runtime the runtime is told first (`block_in_place`), and its other tasks (the
/// cancellation's watchers, other sessions' connections) move to other threads meanwhile.
pub(crate) fn lock_in_async(
    store: &dyn Store,
    holder: &LockHolder,
    wait: Duration,
    cancel: &Cancel,
) -> Result<StoreLock> {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
            tokio::task::block_in_place(|| store.lock(holder, wait, cancel))
        }
        _ => store.lock(holder, wait, cancel),
    }
}

/// A verified snapshot of `database` taken at `time` (RFC 3339), for tests (the binary's too, hence public
/// and hidden).
#[doc(hidden)]
pub fn sample_meta(database: &str, time: &str) -> SnapshotMeta {
    let created_at: Timestamp = time.parse().expect("an RFC 3339 time");
    SnapshotMeta {
        id: SnapshotId::new(database, created_at, None).expect("a usable id"),
        database: database.into(),
        created_at,
        label: None,
        migration: None,
        server: "u@h:5432/db".into(),
        server_version: "15.18".into(),
        pgsafe_version: "pgsafe 0.1.0".into(),
        os_user: "u".into(),
        role: "u".into(),
        scope: SnapshotScope { content: "both".into(), ..SnapshotScope::default() },
        archive: "a.pgsafe".into(),
        bytes: 1,
        rows: 1,
        tables: Vec::new(),
        dump_seconds: 1.0,
        verify_seconds: 1.0,
        verified_at: Some(created_at),
        protects: None,
        pinned: None,
        pinned_by: None,
        manifest_blake3: None,
        encrypted_to: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_tells_whether_the_process_that_set_it_still_runs() {
        let mut meta = sample_meta("shop", "2026-12-02T03:00:00Z");
        assert_eq!(PinHolder::of(&meta), None);
        meta.pinned = Some("migration `0001_a` is running".into());
        assert_eq!(PinHolder::of(&meta), None, "a reason that names no process");
        let this = LockHolder::this_process("pgsafe migrate");
        meta.pinned_by = Some(this.clone());
        assert_eq!(PinHolder::of(&meta), Some(PinHolder::Running));
        // A process that has ended; and this process's pid, given to a pin set before it started.
        let mut ended = std::process::Command::new("true").spawn().unwrap();
        ended.wait().unwrap();
        meta.pinned_by = Some(LockHolder { pid: ended.id(), ..this.clone() });
        assert_eq!(PinHolder::of(&meta), Some(PinHolder::Gone));
        meta.pinned_by = Some(LockHolder { since: "2000-01-01T00:00:00Z".parse().unwrap(), ..this.clone() });
        assert_eq!(PinHolder::of(&meta), Some(PinHolder::Gone));
        meta.pinned_by = Some(LockHolder { host: "another-host".into(), ..this.clone() });
        assert_eq!(PinHolder::of(&meta), Some(PinHolder::Elsewhere));
        // Unpinned: no holder, whatever `pinned_by` says.
        meta.pinned = None;
        assert_eq!(PinHolder::of(&meta), None);
        // A pin written before `pinned_by` was kept: its reason names the process.
        meta.pinned_by = None;
        let since = this.since.strftime("%Y-%m-%dT%H:%M:%SZ");
        meta.pinned = Some(format!("migration `0001_a` is running (pid {} on {}, since {since})", this.pid, this.host));
        assert_eq!(PinHolder::of(&meta), Some(PinHolder::Running));
        meta.pinned =
            Some(format!("migration `0001_a` is running (pid {} on {}, since {since})", ended.id(), this.host));
        assert_eq!(PinHolder::of(&meta), Some(PinHolder::Gone));
    }

    #[test]
    fn ids_carry_the_database_the_utc_time_and_a_file_safe_label() {
        let at: Timestamp = "2026-12-02T03:15:00.75Z".parse().unwrap();
        assert_eq!(SnapshotId::new("shop", at, None).unwrap().as_str(), "shop-20261202T031500Z");
        let id = SnapshotId::new("shop", at, Some("before 0042/add index")).unwrap();
        assert_eq!(id.as_str(), "shop-20261202T031500Z-before_0042_add_index");
        assert_eq!(SnapshotId::new("../etc", at, Some("..x..")).unwrap().as_str(), "etc-20261202T031500Z-x");
        assert_eq!(SnapshotId::new("données", at, None).unwrap().as_str(), "donn_es-20261202T031500Z");
        for unusable in ["", "!!!", "...", &"x".repeat(MAX_LABEL_BYTES + 1)] {
            let e = SnapshotId::new("shop", at, Some(unusable)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert_eq!(e.to_string(), format!("the label `{unusable}` cannot name a snapshot file"));
        }
    }

    #[test]
    fn a_given_id_is_one_the_store_could_have_written() {
        assert_eq!(SnapshotId::parse("shop-20261202T031500Z.pgsafe").unwrap().as_str(), "shop-20261202T031500Z");
        for bad in ["", "../x", ".hidden", "a b", "a/b"] {
            assert!(SnapshotId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_store_is_the_option_then_pgsafe_dir_then_backup_dir_then_dot_pgsafe() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| std::ffi::OsString::from(v))
        };
        let both = env(&[("PGSAFE_DIR", "/p"), ("BACKUP_DIR", "/b")]);
        assert_eq!(resolve_dir_with(Some(Path::new("/x")), both), PathBuf::from("/x"));
        assert_eq!(resolve_dir_with(None, both), PathBuf::from("/p"));
        assert_eq!(resolve_dir_with(None, env(&[("PGSAFE_DIR", ""), ("BACKUP_DIR", "/b")])), PathBuf::from("/b"));
        assert_eq!(resolve_dir_with(None, env(&[])), PathBuf::from(".pgsafe"));
    }
}
