//! The store as a local folder: `ID.pgsafe` archives, `ID.json` metadata, `audit.jsonl`, and `lock`.
//! The folder is made 0700 and every file in it 0600: the archives hold whole databases, and the log
//! names who did what.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::lock::{LockHolder, StoreLock, lock_file};
use super::{AuditEntry, AuditLog, SnapshotArchive, SnapshotId, SnapshotMeta, Store, StoreKeys};
use crate::archive::partial_path;
use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};

const AUDIT_FILE: &str = "audit.jsonl";
const LOCK_FILE: &str = "lock";
const META_SUFFIX: &str = ".json";
const ARCHIVE_SUFFIX: &str = ".pgsafe";

/// A store in a folder of the local file system.
#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
    keys: Arc<StoreKeys>,
}

impl LocalStore {
    /// The store in `dir`, made (mode 0700, with its parents) if missing. An existing folder keeps its
    /// mode; one that others may read is warned about.
    pub fn open(dir: &Path) -> Result<LocalStore> {
        match fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        "the store `{}` may be read by other users (mode {:o}); `chmod 700` it",
                        dir.display(),
                        meta.permissions().mode() & 0o777
                    );
                }
            }
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("the store `{}` is not a folder", dir.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io("creating the store", dir, e))?,
            Err(e) => return Err(Error::io("reading the store", dir, e)),
        }
        Ok(LocalStore { dir: dir.to_path_buf(), keys: Arc::default() })
    }

    /// The store in `dir` when it exists, for commands that only read (`pgsafe snapshots`): they make no
    /// folder. `None` when there is none.
    pub fn existing(dir: &Path) -> Result<Option<LocalStore>> {
        match fs::metadata(dir) {
            Ok(_) => LocalStore::open(dir).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading the store", dir, e)),
        }
    }

    /// The store reading and writing encrypted snapshots with `keys`.
    pub fn with_keys(self, keys: StoreKeys) -> LocalStore {
        LocalStore { keys: Arc::new(keys), ..self }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn meta_path(&self, id: &SnapshotId) -> PathBuf {
        self.dir.join(format!("{id}{META_SUFFIX}"))
    }

    fn archive_path(&self, id: &SnapshotId) -> PathBuf {
        self.dir.join(format!("{id}{ARCHIVE_SUFFIX}"))
    }

    fn read_meta(&self, path: &Path) -> Result<SnapshotMeta> {
        let text = fs::read_to_string(path).map_err(|e| Error::io("reading the snapshot metadata", path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, format!("the snapshot metadata `{}` is not valid", path.display()))
                .with_source(e)
        })
    }
}

impl Store for LocalStore {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn list(&self) -> Result<Vec<SnapshotMeta>> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io("listing the store", &self.dir, e))?;
        let mut all = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing the store", &self.dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.ends_with(META_SUFFIX) || name.starts_with('.') {
                continue;
            }
            all.push(self.read_meta(&entry.path())?);
        }
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        Ok(all)
    }

    fn get(&self, id: &SnapshotId) -> Result<SnapshotMeta> {
        let path = self.meta_path(id);
        if !path.exists() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("no snapshot `{id}` in the store `{}`", self.dir.display()),
            )
            .with_hint("`pgsafe snapshots` lists the ids"));
        }
        self.read_meta(&path)
    }

    fn put(&self, meta: &SnapshotMeta) -> Result<()> {
        let path = self.meta_path(&meta.id);
        let temp = self.dir.join(format!(".{}{META_SUFFIX}.tmp", meta.id));
        let text = serde_json::to_string_pretty(meta).expect("snapshot metadata serializes") + "\n";
        let written = (|| {
            let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(Error::io("writing the snapshot metadata", &temp, e));
        }
        fs::rename(&temp, &path).map_err(|e| Error::io("renaming the snapshot metadata into place", &path, e))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("syncing the store", &self.dir, e))
    }

    fn archive(&self, id: &SnapshotId) -> SnapshotArchive {
        SnapshotArchive::File(self.archive_path(id))
    }

    fn archive_sizes(&self) -> Result<BTreeMap<SnapshotId, u64>> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io("listing the store", &self.dir, e))?;
        let mut sizes = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing the store", &self.dir, e))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            let Some(stem) = name.strip_suffix(ARCHIVE_SUFFIX).filter(|s| !s.starts_with('.')) else { continue };
            // Followed, as a restore follows it: an archive linked in from elsewhere is there.
            match fs::metadata(entry.path()) {
                Ok(meta) => {
                    sizes.insert(SnapshotId(stem.to_owned()), meta.len());
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("reading the size of", &entry.path(), e)),
            }
        }
        Ok(sizes)
    }

    fn reserve(&self, id: &SnapshotId) -> Result<bool> {
        let archive = self.archive_path(id);
        for path in [self.meta_path(id), archive.clone()] {
            match fs::symlink_metadata(&path) {
                Ok(_) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("looking for", &path, e)),
            }
        }
        let claim = partial_path(&archive);
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&claim) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::io("creating", &claim, e)),
        }
    }

    fn remove(&self, id: &SnapshotId) -> Result<()> {
        let archive = self.archive_path(id);
        for path in [self.meta_path(id), partial_path(&archive), archive] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&format!("removing snapshot `{id}`:"), &path, e)),
            }
        }
        Ok(())
    }

    fn leftovers(&self) -> Result<Vec<String>> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io("listing the store", &self.dir, e))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing the store", &self.dir, e))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            let orphan = match name.strip_suffix(ARCHIVE_SUFFIX) {
                Some(stem) => !self.dir.join(format!("{stem}{META_SUFFIX}")).exists(),
                None => name.ends_with(&format!("{ARCHIVE_SUFFIX}.partial")),
            };
            if orphan {
                found.push(name);
            }
        }
        found.sort();
        Ok(found)
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let path = self.dir.join(AUDIT_FILE);
        let line = entry.line_for(&self.keys());
        // One write of the whole line with O_APPEND: concurrent writers' lines never interleave.
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|()| f.sync_data()))
            .map_err(|e| Error::io("appending to the audit log", &path, e))
    }

    fn read_audit(&self) -> Result<AuditLog> {
        let path = self.dir.join(AUDIT_FILE);
        match fs::read(&path) {
            // A byte that is not UTF-8 spoils its line alone.
            Ok(bytes) => Ok(AuditLog::parse(&String::from_utf8_lossy(&bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(AuditLog::default()),
            Err(e) => Err(Error::io("reading the audit log", &path, e)),
        }
    }

    fn keys(&self) -> Arc<StoreKeys> {
        self.keys.clone()
    }

    fn lock(&self, holder: &LockHolder, wait: Duration, cancel: &Cancel) -> Result<StoreLock> {
        lock_file(&self.dir.join(LOCK_FILE), holder, wait, cancel, &self.location())
    }
}
