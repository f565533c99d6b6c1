//! The store on object storage (`PGSAFE_DIR=s3://bucket/prefix`, or `az://container/prefix`): the same objects as the folder's files,
//! under the prefix.
//!
//! ```text
//! PREFIX/ID.pgsafe           the archive: a multipart upload, which appears only once complete
//! PREFIX/ID.json             its metadata: one PUT, which S3 makes visible whole
//! PREFIX/ID.pgsafe.partial   a snapshot's claim on its id: created with If-None-Match, gone with the metadata
//! PREFIX/audit/TIME-RAND.json  one object per audit line: a bucket cannot append, and two writers never race
//! PREFIX/lock                the writer lock: a lease, created with If-None-Match and renewed with If-Match
//! ```
//!
//! A bucket has no `flock`, and a machine that dies holding a lock cannot release it. So the lock is a
//! lease: its object names the holder and when the lease ends; a thread of the holder renews it well before
//! (each renewal conditional on the version it last wrote, so a holder that lost its lease learns it), and
//! a waiter that finds a lease ended takes the lock over with a conditional write on the version it read:
//! of two waiters, one wins. Two machines cannot hold the lock at once unless one of them stalled for longer
//! than a whole lease without noticing; a holder whose renewal fails says so.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::lock::{LockHolder, StoreLock};
use super::{AuditEntry, AuditLog, SnapshotArchive, SnapshotId, SnapshotMeta, Store, StoreKeys};
use crate::archive::ObjectLocation;
use crate::archive::object::{Bucket, Service, connect_bucket, object_error, wait};
use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};

const META_SUFFIX: &str = ".json";
const ARCHIVE_SUFFIX: &str = ".pgsafe";
const CLAIM_SUFFIX: &str = ".pgsafe.partial";
const AUDIT_FOLDER: &str = "audit";
const LOCK_OBJECT: &str = "lock";

/// How long a lock lasts unless renewed.
const LEASE: Duration = Duration::from_secs(120);
/// How often the holder renews it: four times a lease, so a slow request or two cannot lose it.
const RENEW: Duration = Duration::from_secs(30);
/// How often a waiter looks again.
const POLL: Duration = Duration::from_millis(500);
/// Objects read at once when listing metadata or the audit log.
const CONCURRENT_READS: usize = 16;

/// A store under a prefix of an S3 bucket.
#[derive(Debug, Clone)]
pub struct BucketStore {
    s3: Bucket,
    service: Service,
    bucket: String,
    /// Without a trailing `/`; empty for the bucket's root.
    prefix: String,
    keys: Arc<StoreKeys>,
}

/// Parses `s3://bucket[/prefix]` (or `az://container[/prefix]`) as a store's place: `Ok(None)` when
/// `text` is no URL.
pub(super) fn parse_url(text: &str) -> Result<Option<(Service, String, String)>> {
    let Some((scheme, rest)) = text.split_once("://") else { return Ok(None) };
    let invalid = |problem: String| Error::new(ErrorKind::InvalidInput, format!("the store `{text}`: {problem}"));
    let Some(service) = Service::of(scheme) else {
        return Err(invalid(format!(
            "`{scheme}://` is not supported: a store is a folder, `s3://bucket/prefix` or `az://container/prefix`"
        )));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(invalid(format!("a store on object storage is `{scheme}://bucket/prefix`, with a bucket")));
    }
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        ObjectPath::parse(prefix).map_err(|e| invalid(format!("invalid prefix: {e}")))?;
    }
    Ok(Some((service, bucket.to_owned(), prefix.to_owned())))
}

impl BucketStore {
    /// The store under `prefix` of `bucket`. Makes no request: a missing bucket or wrong credentials are
    /// named by the first operation.
    pub fn open(service: Service, bucket: &str, prefix: &str) -> Result<BucketStore> {
        let url = format!("{}://{bucket}/{prefix}", service.scheme());
        let s3 = connect_bucket(service, bucket, &url)?;
        Ok(BucketStore {
            s3,
            service,
            bucket: bucket.to_owned(),
            prefix: prefix.trim_end_matches('/').to_owned(),
            keys: Arc::default(),
        })
    }

    /// The store reading and writing encrypted snapshots with `keys`.
    pub fn with_keys(self, keys: StoreKeys) -> BucketStore {
        BucketStore { keys: Arc::new(keys), ..self }
    }

    fn key(&self, name: &str) -> String {
        match self.prefix.is_empty() {
            true => name.to_owned(),
            false => format!("{}/{name}", self.prefix),
        }
    }

    fn object(&self, name: &str) -> ObjectLocation {
        ObjectLocation { service: self.service, bucket: self.bucket.clone(), key: self.key(name) }
    }

    /// The folder-like prefix the store's objects are listed under.
    fn folder(&self, sub: Option<&str>) -> Option<ObjectPath> {
        let joined = sub.map_or_else(|| self.prefix.clone(), |sub| self.key(sub));
        (!joined.is_empty()).then(|| ObjectPath::from(joined))
    }

    /// Runs one request about the object `name` on the object runtime.
    fn run<T, F, Fut>(&self, name: &str, f: F) -> Result<object_store::Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(Bucket, ObjectPath) -> Fut,
        Fut: Future<Output = object_store::Result<T>> + Send + 'static,
    {
        wait(f(self.s3.clone(), self.object(name).path()))
    }

    fn fail(&self, doing: &str, name: &str, e: object_store::Error) -> Error {
        object_error(doing, &self.object(name), e)
    }

    /// The file names (keys without the prefix) directly under the store, not in its sub-folders.
    fn names(&self) -> Result<Vec<String>> {
        Ok(self.sized_names()?.into_iter().map(|(name, _)| name).collect())
    }

    /// [`Self::names`] with each object's size, from the same listing.
    fn sized_names(&self) -> Result<Vec<(String, u64)>> {
        let (s3, folder) = (self.s3.clone(), self.folder(None));
        let listed = wait(async move { s3.list_with_delimiter(folder.as_ref()).await })?
            .map_err(|e| self.fail("listing the store", "", e))?;
        Ok(listed.objects.into_iter().filter_map(|o| o.location.filename().map(|n| (n.to_owned(), o.size))).collect())
    }

    /// The bodies of `names`, in their order; a name gone since the listing is skipped.
    /// The audit log's lines whose objects' names (`audit/` and the time they were appended) `wanted`
    /// takes, in the order of their names.
    fn read_audit_lines(&self, wanted: impl Fn(&str) -> bool) -> Result<AuditLog> {
        let (s3, folder) = (self.s3.clone(), self.folder(Some(AUDIT_FOLDER)));
        let listed = wait(async move { s3.list(folder.as_ref()).try_collect::<Vec<_>>().await })?
            .map_err(|e| self.fail("reading the audit log", AUDIT_FOLDER, e))?;
        let mut names: Vec<String> = listed
            .into_iter()
            .filter_map(|o| o.location.filename().filter(|f| wanted(f)).map(|f| format!("{AUDIT_FOLDER}/{f}")))
            .filter(|n| n.ends_with(META_SUFFIX))
            .collect();
        names.sort();
        let mut text = String::new();
        for (_, bytes) in self.read_all(names, "reading the audit log")? {
            text.push_str(String::from_utf8_lossy(&bytes).trim_end());
            text.push('\n');
        }
        Ok(AuditLog::parse(&text))
    }

    fn read_all(&self, names: Vec<String>, doing: &'static str) -> Result<Vec<(String, Vec<u8>)>> {
        let s3 = self.s3.clone();
        let paths: Vec<(String, ObjectPath)> = names.into_iter().map(|n| (n.clone(), self.object(&n).path())).collect();
        let read = wait(async move {
            futures_util::stream::iter(paths)
                .map(|(name, path)| {
                    let s3 = s3.clone();
                    async move {
                        match s3.get(&path).await {
                            Ok(got) => match got.bytes().await {
                                Ok(b) => Ok(Some((name, b.to_vec()))),
                                Err(e) => Err((name, e)),
                            },
                            Err(object_store::Error::NotFound { .. }) => Ok(None),
                            Err(e) => Err((name, e)),
                        }
                    }
                })
                .buffered(CONCURRENT_READS)
                .try_collect::<Vec<_>>()
                .await
        })?;
        match read {
            Ok(bodies) => Ok(bodies.into_iter().flatten().collect()),
            Err((name, e)) => Err(self.fail(doing, &name, e)),
        }
    }

    fn parse_meta(&self, name: &str, bytes: &[u8]) -> Result<SnapshotMeta> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, format!("the snapshot metadata `{}` is not valid", self.object(name)))
                .with_source(e)
        })
    }

    fn exists(&self, name: &str) -> Result<bool> {
        match self.run(name, |s3, path| async move { s3.head(&path).await })? {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.fail("looking for", name, e)),
        }
    }

    fn delete(&self, name: &str) -> Result<()> {
        match self.run(name, |s3, path| async move { s3.delete(&path).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail("removing", name, e)),
        }
    }

    /// Writes `body` to `name` with `mode`: `Ok(None)` when the condition did not hold.
    fn put_if(&self, name: &str, body: Vec<u8>, mode: PutMode) -> Result<Option<UpdateVersion>> {
        let put = self.run(name, |s3, path| async move {
            s3.put_opts(&path, PutPayload::from(body), PutOptions { mode, ..Default::default() }).await
        })?;
        match put {
            Ok(done) => Ok(Some(UpdateVersion { e_tag: done.e_tag, version: done.version })),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(None),
            Err(e) => Err(self.fail("writing", name, e)),
        }
    }
}

impl Store for BucketStore {
    fn location(&self) -> String {
        match self.prefix.is_empty() {
            true => format!("{}://{}", self.service.scheme(), self.bucket),
            false => format!("{}://{}/{}", self.service.scheme(), self.bucket, self.prefix),
        }
    }

    fn list(&self) -> Result<Vec<SnapshotMeta>> {
        let names: Vec<String> = self.names()?.into_iter().filter(|n| n.ends_with(META_SUFFIX)).collect();
        let mut all = Vec::with_capacity(names.len());
        for (name, bytes) in self.read_all(names, "reading the snapshot metadata")? {
            all.push(self.parse_meta(&name, &bytes)?);
        }
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        Ok(all)
    }

    fn get(&self, id: &SnapshotId) -> Result<SnapshotMeta> {
        let name = format!("{id}{META_SUFFIX}");
        let got = self.run(&name, |s3, path| async move {
            match s3.get(&path).await {
                Ok(got) => got.bytes().await,
                Err(e) => Err(e),
            }
        })?;
        match got {
            Ok(bytes) => self.parse_meta(&name, &bytes),
            Err(object_store::Error::NotFound { .. }) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("no snapshot `{id}` in the store `{}`", self.location()),
            )
            .with_hint("`pgsafe snapshots` lists the ids")),
            Err(e) => Err(self.fail("reading the snapshot metadata", &name, e)),
        }
    }

    fn put(&self, meta: &SnapshotMeta) -> Result<()> {
        let name = format!("{}{META_SUFFIX}", meta.id);
        let text = serde_json::to_string_pretty(meta).expect("snapshot metadata serializes") + "\n";
        self.put_if(&name, text.into_bytes(), PutMode::Overwrite)?;
        // The snapshot is whole: its claim has done its work.
        self.delete(&format!("{}{CLAIM_SUFFIX}", meta.id))
    }

    fn archive(&self, id: &SnapshotId) -> SnapshotArchive {
        SnapshotArchive::Object(self.object(&format!("{id}{ARCHIVE_SUFFIX}")))
    }

    fn archive_sizes(&self) -> Result<BTreeMap<SnapshotId, u64>> {
        Ok(self
            .sized_names()?
            .into_iter()
            .filter_map(|(name, size)| Some((SnapshotId(name.strip_suffix(ARCHIVE_SUFFIX)?.to_owned()), size)))
            .collect())
    }

    fn reserve(&self, id: &SnapshotId) -> Result<bool> {
        for name in [format!("{id}{META_SUFFIX}"), format!("{id}{ARCHIVE_SUFFIX}")] {
            if self.exists(&name)? {
                return Ok(false);
            }
        }
        Ok(self.put_if(&format!("{id}{CLAIM_SUFFIX}"), Vec::new(), PutMode::Create)?.is_some())
    }

    fn remove(&self, id: &SnapshotId) -> Result<()> {
        for name in [format!("{id}{META_SUFFIX}"), format!("{id}{CLAIM_SUFFIX}"), format!("{id}{ARCHIVE_SUFFIX}")] {
            self.delete(&name).map_err(|e| e.context(format!("removing snapshot `{id}`")))?;
        }
        Ok(())
    }

    fn leftovers(&self) -> Result<Vec<String>> {
        let names = self.names()?;
        let metas: BTreeSet<&str> = names.iter().filter_map(|n| n.strip_suffix(META_SUFFIX)).collect();
        let mut found: Vec<String> = names
            .iter()
            .filter(|n| match n.strip_suffix(ARCHIVE_SUFFIX) {
                Some(stem) => !metas.contains(stem),
                None => n.ends_with(CLAIM_SUFFIX),
            })
            .cloned()
            .collect();
        found.sort();
        Ok(found)
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        // Named by the time to the nanosecond and a random tail: listed in order, never overwritten.
        let now = Timestamp::now();
        let name = format!(
            "{AUDIT_FOLDER}/{}.{:09}Z-{:016x}{META_SUFFIX}",
            audit_name_time(now),
            now.subsec_nanosecond(),
            random_tail()
        );
        let line = entry.line_for(&self.keys());
        match self.put_if(&name, line.into_bytes(), PutMode::Create)? {
            Some(_) => Ok(()),
            None => Err(Error::new(
                ErrorKind::Io,
                format!("appending to the audit log: `{}` exists already", self.object(&name)),
            )),
        }
    }

    fn read_audit(&self) -> Result<AuditLog> {
        self.read_audit_lines(|_| true)
    }

    fn read_audit_since(&self, since: Timestamp) -> Result<AuditLog> {
        let since = audit_name_time(since);
        self.read_audit_lines(|name| name >= since.as_str())
    }

    fn keys(&self) -> Arc<StoreKeys> {
        self.keys.clone()
    }

    fn lock(&self, holder: &LockHolder, wait_for: Duration, cancel: &Cancel) -> Result<StoreLock> {
        let started = Instant::now();
        let mut said_waiting = false;
        loop {
            let lease = Lease { holder: holder.clone(), until: lease_end() };
            if let Some(version) = self.put_if(LOCK_OBJECT, lease.body(), PutMode::Create)? {
                return Ok(self.hold(lease, version));
            }
            // Somebody holds it, or held it and died: read who, and until when.
            let read = self.run(LOCK_OBJECT, |s3, path| async move {
                match s3.get(&path).await {
                    Ok(got) => {
                        let meta = got.meta.clone();
                        got.bytes().await.map(|b| (b, meta))
                    }
                    Err(e) => Err(e),
                }
            })?;
            let other = match read {
                Ok((bytes, meta)) => {
                    let current = serde_json::from_slice::<Lease>(&bytes).ok();
                    let ended = current.as_ref().is_none_or(|l| l.until < Timestamp::now());
                    if ended {
                        let version = UpdateVersion { e_tag: meta.e_tag, version: meta.version };
                        if let Some(taken) = self.put_if(LOCK_OBJECT, lease.body(), PutMode::Update(version))? {
                            if let Some(stale) = &current {
                                tracing::warn!(
                                    "the store `{}`: took over the lock of {}, whose lease ended at {} without a renewal",
                                    self.location(),
                                    stale.holder,
                                    stale.until
                                );
                            }
                            return Ok(self.hold(lease, taken));
                        }
                        // Another waiter took it over first.
                    }
                    current.map(|l| l.holder)
                }
                // Released meanwhile: try again at once.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.fail("reading the store's lock", LOCK_OBJECT, e)),
            };
            cancel.check(&format!("waiting for the store's lock (`{}`)", self.object(LOCK_OBJECT)))?;
            let who = other.map_or_else(|| "another pgsafe".to_owned(), |h| h.to_string());
            if started.elapsed() >= wait_for {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("the store `{}` is locked by {who}; gave up after {wait_for:.0?}", self.location()),
                )
                .with_hint(format!(
                    "wait for it to finish, or give `--store-lock-timeout` more seconds; the lock is `{}`, a lease that ends {} s after its holder's last renewal",
                    self.object(LOCK_OBJECT),
                    LEASE.as_secs()
                )));
            }
            if !said_waiting {
                said_waiting = true;
                tracing::warn!("the store `{}` is locked by {who}: waiting up to {wait_for:.0?}", self.location());
            }
            std::thread::sleep(POLL.min(wait_for.saturating_sub(started.elapsed())).max(Duration::from_millis(1)));
        }
    }
}

/// What the lock object says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    holder: LockHolder,
    /// When the lock is free for the taking unless renewed.
    until: Timestamp,
}

impl Lease {
    fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a lease serializes")
    }
}

fn lease_end() -> Timestamp {
    Timestamp::now() + jiff::SignedDuration::try_from(LEASE).expect("the lease fits")
}

impl BucketStore {
    /// Keeps the lock held: a thread renews the lease until the returned guard is dropped, which deletes
    /// the lock object (when it is still this holder's).
    fn hold(&self, lease: Lease, version: UpdateVersion) -> StoreLock {
        let (stop, stopped) = mpsc::channel::<()>();
        let store = self.clone();
        let renewer = std::thread::Builder::new().name("pgsafe-store-lease".into()).spawn(move || {
            let mut version = version;
            // Until the guard is dropped (the channel then disconnects).
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(RENEW) {
                let renewed = Lease { holder: lease.holder.clone(), until: lease_end() };
                match store.put_if(LOCK_OBJECT, renewed.body(), PutMode::Update(version.clone())) {
                    Ok(Some(next)) => version = next,
                    Ok(None) => {
                        tracing::error!(
                            "the store `{}`: this process lost its lock (another took it over after the lease ended); stop what writes to the store",
                            store.location()
                        );
                        return None;
                    }
                    // A failed renewal is tried again at the next turn, well within the lease.
                    Err(e) => tracing::warn!("the store `{}`: renewing the lock: {e}", store.location()),
                }
            }
            Some(version)
        });
        StoreLock::new(HeldLease { store: self.clone(), stop: Some(stop), renewer: renewer.ok() })
    }
}

/// A held lease: dropping it stops the renewals and deletes the lock object, unless another took it over.
struct HeldLease {
    store: BucketStore,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<Option<UpdateVersion>>>,
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        drop(self.stop.take());
        let Some(version) = self.renewer.take().and_then(|t| t.join().ok()).flatten() else { return };
        // S3 has no conditional delete: the lock is deleted if the version read is the one last written.
        let mine = self.store.run(LOCK_OBJECT, |s3, path| async move { s3.head(&path).await });
        if let Ok(Ok(meta)) = mine
            && meta.e_tag == version.e_tag
            && let Err(e) = self.store.delete(LOCK_OBJECT)
        {
            tracing::warn!("the store `{}`: releasing the lock: {e}; it ends with its lease", self.store.location());
        }
    }
}

/// 64 random bits, for names no other writer picks.
fn random_tail() -> u64 {
    use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
    OsRng.next_u64()
}

/// The start of the name of an audit line's object appended at `time`, to the second (`20261203T141502`): the
/// names sort as the times do.
fn audit_name_time(time: Timestamp) -> String {
    time.strftime("%Y%m%dT%H%M%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_url_is_a_bucket_and_an_optional_prefix() {
        assert_eq!(parse_url("/srv/backups").unwrap(), None);
        assert_eq!(parse_url("s3://b").unwrap(), Some((Service::S3, "b".into(), "".into())));
        assert_eq!(parse_url("s3://b/").unwrap(), Some((Service::S3, "b".into(), "".into())));
        assert_eq!(parse_url("s3://b/x/y/").unwrap(), Some((Service::S3, "b".into(), "x/y".into())));
        assert_eq!(parse_url("az://c/x").unwrap(), Some((Service::Azure, "c".into(), "x".into())));
        assert!(parse_url("gs://b/x").unwrap_err().to_string().contains("not supported"));
        assert!(parse_url("s3:///x").is_err());
    }

    #[test]
    fn audit_objects_sort_as_their_times_and_a_time_selects_those_from_its_second_on() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(audit_name_time(at("2026-12-03T14:15:02.999Z")), "20261203T141502");
        let names =
            ["20261203T141501.999999999Z-a.json", "20261203T141502.000000000Z-b.json", "20261204T000000.5Z-c.json"];
        let since = audit_name_time(at("2026-12-03T14:15:02.7Z"));
        let taken: Vec<&str> = names.iter().copied().filter(|n| *n >= since.as_str()).collect();
        assert_eq!(taken, names[1..]);
    }
}
