//! A store in memory, for tests of what runs on any [`Store`]: it keeps metadata, claims, audit lines
//! and the lock as the folder does, without a file system.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::lock::{LockHolder, StoreLock};
use super::{AuditEntry, AuditLog, SnapshotArchive, SnapshotId, SnapshotMeta, Store, StoreKeys};
use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Default)]
struct State {
    metas: BTreeMap<SnapshotId, SnapshotMeta>,
    claims: BTreeSet<SnapshotId>,
    /// The archives' sizes: a snapshot's metadata brings its archive, of the recorded size.
    archives: BTreeMap<SnapshotId, u64>,
    audit: Vec<AuditEntry>,
    holder: Option<LockHolder>,
}

/// Cheap to clone: clones share one store.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("the memory store's mutex")
    }

    /// Loses the archive of `id`, as a file deleted by hand; its metadata stays.
    pub fn lose_archive(&self, id: &SnapshotId) {
        self.state().archives.remove(id);
    }

    /// The audit log's lines so far.
    pub fn audit(&self) -> Vec<AuditEntry> {
        self.state().audit.clone()
    }
}

/// Releases the memory store's lock when dropped.
struct Held(Arc<Mutex<State>>);

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut state) = self.0.lock() {
            state.holder = None;
        }
    }
}

impl Store for MemoryStore {
    fn location(&self) -> String {
        "memory".to_owned()
    }

    fn list(&self) -> Result<Vec<SnapshotMeta>> {
        let mut all: Vec<SnapshotMeta> = self.state().metas.values().cloned().collect();
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        Ok(all)
    }

    fn get(&self, id: &SnapshotId) -> Result<SnapshotMeta> {
        self.state()
            .metas
            .get(id)
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::InvalidInput, format!("no snapshot `{id}` in the store `memory`")))
    }

    fn put(&self, meta: &SnapshotMeta) -> Result<()> {
        let mut state = self.state();
        state.claims.remove(&meta.id);
        state.archives.entry(meta.id.clone()).or_insert(meta.bytes);
        state.metas.insert(meta.id.clone(), meta.clone());
        Ok(())
    }

    fn archive(&self, id: &SnapshotId) -> SnapshotArchive {
        SnapshotArchive::File(PathBuf::from(format!("/nonexistent/{id}.pgsafe")))
    }

    fn archive_sizes(&self) -> Result<BTreeMap<SnapshotId, u64>> {
        Ok(self.state().archives.clone())
    }

    fn reserve(&self, id: &SnapshotId) -> Result<bool> {
        let mut state = self.state();
        Ok(!state.metas.contains_key(id) && state.claims.insert(id.clone()))
    }

    fn remove(&self, id: &SnapshotId) -> Result<()> {
        let mut state = self.state();
        state.metas.remove(id);
        state.claims.remove(id);
        state.archives.remove(id);
        Ok(())
    }

    fn leftovers(&self) -> Result<Vec<String>> {
        Ok(self.state().claims.iter().map(|id| format!("{id}.pgsafe.partial")).collect())
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        self.state().audit.push(entry.clone());
        Ok(())
    }

    fn read_audit(&self) -> Result<AuditLog> {
        Ok(AuditLog { entries: self.audit(), skipped: Vec::new() })
    }

    fn keys(&self) -> Arc<StoreKeys> {
        Arc::default()
    }

    fn lock(&self, holder: &LockHolder, wait: Duration, cancel: &Cancel) -> Result<StoreLock> {
        let started = Instant::now();
        loop {
            cancel.check("waiting for the store's lock")?;
            {
                let mut state = self.state();
                match &state.holder {
                    None => {
                        state.holder = Some(holder.clone());
                        return Ok(StoreLock::new(Held(self.state.clone())));
                    }
                    Some(other) if started.elapsed() >= wait => {
                        return Err(Error::new(
                            ErrorKind::InvalidInput,
                            format!("the store `memory` is locked by {other}; gave up after {wait:.0?}"),
                        ));
                    }
                    Some(_) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
