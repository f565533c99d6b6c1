//! The archive writer: one owner of the output, fed through a bounded channel.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::object::{ObjectLocation, ObjectUpload};
use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{ArchiveEncoder, Catalog, Compression, EncodedChunk, Manifest, PartSummary, Sealing};

/// Where an archive goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveTarget {
    /// A file, written as `PATH.partial` and renamed into place once complete; or, when `PATH` exists and is
    /// not a regular file (`/dev/null`, a named pipe, `/dev/fd/N`), written to in place.
    File(PathBuf),
    /// Standard output, for pipes.
    Stdout,
    /// An object in a bucket, uploaded in parts; it appears once complete.
    Object(ObjectLocation),
}

enum Sink {
    /// `NAME.partial`, renamed to `NAME` when complete.
    File(File),
    /// A file that is not a regular file, written in place.
    Special(File),
    Stdout(io::Stdout),
    /// A multipart upload, completed when the archive is; aborted when dropped before.
    Object(Box<ObjectUpload>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(f) | Sink::Special(f) => f.write(buf),
            Sink::Stdout(s) => s.write(buf),
            Sink::Object(o) => o.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(f) | Sink::Special(f) => f.flush(),
            Sink::Stdout(s) => s.flush(),
            Sink::Object(o) => o.flush(),
        }
    }
}

/// A finished archive.
#[derive(Debug, Clone)]
pub struct WrittenArchive {
    /// The final path, for a file target; the `s3://` URL for an object.
    pub path: Option<PathBuf>,
    /// Bytes written.
    pub bytes: u64,
    pub manifest: Manifest,
}

/// Writes one archive. Dropped or interrupted before [`finish`](Self::finish), it leaves `NAME.partial`
/// and never a file under the final name (for an object: an aborted upload, and no object): a file that
/// looks complete is complete.
pub struct ArchiveWriter {
    encoder: ArchiveEncoder<BufWriter<Sink>>,
    target: ArchiveTarget,
}

/// Output buffer: large enough that chunk frames go out in few system calls.
const BUFFER: usize = 1 << 20;

impl ArchiveWriter {
    /// Creates the output and writes the header and the catalog.
    pub fn create(target: ArchiveTarget, catalog: &Catalog, compression: Compression) -> Result<Self> {
        Self::create_sealed(target, catalog, compression, None, &Cancel::new())
    }

    /// Creates the output and writes the header, with `sealing` the key frame, and the catalog. With
    /// `sealing` the archive is encrypted. `cancel` interrupts an object's upload wherever it waits for
    /// the endpoint (a file's writes do not wait on anyone).
    pub fn create_sealed(
        target: ArchiveTarget,
        catalog: &Catalog,
        compression: Compression,
        sealing: Option<Sealing>,
        cancel: &Cancel,
    ) -> Result<Self> {
        let sink = match &target {
            ArchiveTarget::File(path) => match staging_path(path) {
                Some(partial) => Sink::File(create_partial(path, &partial)?),
                // A device, a pipe or a socket (`/dev/null`, `>(zstd ...)`): written to as it is.
                None => {
                    Sink::Special(OpenOptions::new().write(true).open(path).map_err(|e| Error::io("opening", path, e))?)
                }
            },
            ArchiveTarget::Stdout => Sink::Stdout(io::stdout()),
            ArchiveTarget::Object(location) => Sink::Object(Box::new(ObjectUpload::start(location, cancel)?)),
        };
        let encoder =
            ArchiveEncoder::with_sealing(BufWriter::with_capacity(BUFFER, sink), catalog, compression, sealing)
                .map_err(|e| write_error(&target, e))?;
        Ok(ArchiveWriter { encoder, target })
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.encoder.offset()
    }

    pub fn write_chunk(&mut self, chunk: &EncodedChunk) -> Result<()> {
        self.encoder.write_chunk(chunk).map_err(|e| write_error(&self.target, e))
    }

    pub fn finish_part(&mut self, summary: PartSummary) -> Result<()> {
        self.encoder.finish_part(summary).map_err(|e| write_error(&self.target, e))
    }

    /// Writes the manifest and footer; for a file: fsync, rename `NAME.partial` to `NAME`, fsync the folder.
    pub fn finish(self) -> Result<WrittenArchive> {
        let target = self.target;
        let (buf, manifest, bytes) = self.encoder.finish(now_rfc3339()).map_err(|e| write_error(&target, e))?;
        let sink = buf.into_inner().map_err(|e| write_error(&target, e.into_error()))?;
        let path = match (sink, &target) {
            (Sink::File(file), ArchiveTarget::File(path)) => {
                let partial = partial_path(path);
                file.sync_all().map_err(|e| Error::io("syncing", &partial, e))?;
                // Only ever this writer's own file into place, under its lock.
                if !same_file(&file, &partial) {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "`{}` is no longer this dump's file: the archive was not put in place",
                            partial.display()
                        ),
                    ));
                }
                fs::rename(&partial, path).map_err(|e| Error::io("renaming into place", &partial, e))?;
                drop(file);
                sync_parent(path)?;
                Some(path.clone())
            }
            (Sink::Special(file), ArchiveTarget::File(path)) => {
                // A pipe's reader may still be busy; a device has nothing to sync. Its name is still the one
                // the user gave.
                drop(file);
                Some(path.clone())
            }
            (Sink::Object(upload), ArchiveTarget::Object(location)) => {
                (*upload).complete()?;
                Some(PathBuf::from(location.to_string()))
            }
            _ => None,
        };
        Ok(WrittenArchive { path, bytes, manifest })
    }

    /// Moves the writer to a thread of its own fed by a channel of `capacity` messages, so that many
    /// producers can append while a slow disk throttles them instead of filling memory. Once every sender
    /// is gone it finishes the archive, unless `cancel` was cancelled by then: an interruption that came
    /// after the last chunk (a SIGTERM while the last part was sent) still leaves no archive.
    pub fn spawn(self, capacity: usize, cancel: Cancel) -> (FrameSender, WriterTask) {
        let (tx, mut rx) = mpsc::channel::<WriterMessage>(capacity);
        let handle = std::thread::Builder::new()
            .name("pgsafe-writer".into())
            .spawn(move || {
                let mut writer = self;
                while let Some(message) = rx.blocking_recv() {
                    match message {
                        WriterMessage::Chunk(chunk) => writer.write_chunk(&chunk)?,
                        WriterMessage::PartDone(summary) => writer.finish_part(summary)?,
                        WriterMessage::Abandon => {
                            return Err(Error::new(ErrorKind::Cancelled, "the archive was abandoned").consequence());
                        }
                    }
                }
                cancel.check("writing the archive")?;
                writer.finish()
            })
            .expect("spawning the archive writer thread");
        (FrameSender(tx), WriterTask(handle))
    }
}

/// What producers send to the writer thread.
#[derive(Debug)]
pub enum WriterMessage {
    Chunk(EncodedChunk),
    PartDone(PartSummary),
    /// The dump failed though every part may be in: the archive must not be finished.
    Abandon,
}

/// A producer's handle to the writer thread. The archive is finished once every sender is dropped.
#[derive(Debug, Clone)]
pub struct FrameSender(mpsc::Sender<WriterMessage>);

impl FrameSender {
    /// Sends from async code; waits while the channel is full.
    pub async fn send(&self, message: WriterMessage) -> Result<()> {
        self.0.send(message).await.map_err(|_| writer_gone())
    }

    /// Sends from a plain thread; blocks while the channel is full. Must not be called from async code.
    pub fn blocking_send(&self, message: WriterMessage) -> Result<()> {
        self.0.blocking_send(message).map_err(|_| writer_gone())
    }
}

/// The error a producer gets once the writer thread has stopped; the writer's own error is the cause.
pub const WRITER_GONE: &str = "the archive writer stopped";

fn writer_gone() -> Error {
    Error::new(ErrorKind::Io, WRITER_GONE).consequence()
}

/// The writer thread; [`join`](Self::join) returns the finished archive or the writer's error.
#[derive(Debug)]
pub struct WriterTask(std::thread::JoinHandle<Result<WrittenArchive>>);

impl WriterTask {
    pub fn join(self) -> Result<WrittenArchive> {
        self.0.join().unwrap_or_else(|_| Err(Error::new(ErrorKind::Io, "the archive writer thread panicked")))
    }
}

/// Where an archive for `path` is written before it is complete: `NAME.partial`, or `None` when `path`
/// exists and is not a regular file (a device or a pipe is written to in place; renaming a file over
/// `/dev/null` would replace the device).
pub fn staging_path(path: &Path) -> Option<PathBuf> {
    match fs::metadata(path) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => None,
        _ => Some(partial_path(path)),
    }
}

/// `NAME.partial` beside `NAME`.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Creates `partial`, the file an archive for `path` is written to before it is complete, and holds an
/// exclusive lock on it until the writer is done: another dump to the same file is refused rather than
/// let replace it (two overlapping cron jobs: the first to finish renamed the other's unfinished file into
/// place). A leftover no one holds (a crash) may have another owner or mode: it is removed first.
fn create_partial(path: &Path, partial: &Path) -> Result<File> {
    let busy = || {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "another pgsafe is writing `{}` (it holds `{}`): nothing was written",
                path.display(),
                partial.display()
            ),
        )
        .with_hint("wait for it to end, or write this archive to another file")
    };
    match OpenOptions::new().write(true).open(partial) {
        Ok(leftover) if hold(&leftover, partial)? => {
            fs::remove_file(partial).map_err(|e| Error::io("removing the leftover", partial, e))?
        }
        Ok(_) => return Err(busy()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("opening the leftover", partial, e)),
    }
    let file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600) // the archive holds the whole database
        .open(partial)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(busy()),
        Err(e) => return Err(Error::io("creating", partial, e)),
    };
    // Held by another writer, or removed by one that took it for a leftover between its creation and
    // its lock.
    if !hold(&file, partial)? || !same_file(&file, partial) {
        return Err(busy());
    }
    Ok(file)
}

/// Takes the exclusive lock on `file` (open on `partial`) without waiting: `false` when another writer
/// holds it.
fn hold(file: &File, partial: &Path) -> Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("locking", partial, e)),
    }
}

/// Removes `partial`, an archive's unfinished file, unless a writer holds it: a dump that failed removes
/// its own (which it no longer holds), never one another dump is writing.
pub fn remove_unheld(partial: &Path) {
    let Ok(file) = OpenOptions::new().write(true).open(partial) else { return };
    if hold(&file, partial).unwrap_or(false) {
        let _ = fs::remove_file(partial);
    }
}

/// Whether `path` names the file `file` is open on.
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent).and_then(|d| d.sync_all()).map_err(|e| Error::io("syncing the folder", parent, e))
}

fn write_error(target: &ArchiveTarget, e: io::Error) -> Error {
    // A reader that went away (`dump -f - | head`, a pipe's reader that exits) leaves the archive cut
    // short: an error, unlike a report cut short by a closed stdout, which is not one.
    let e = match e.kind() {
        io::ErrorKind::BrokenPipe => io::Error::other(format!("the reader went away before the archive ended ({e})")),
        _ => e,
    };
    match target {
        // A device or a pipe is written in place, under its own name.
        ArchiveTarget::File(path) => Error::io("writing", &staging_path(path).unwrap_or_else(|| path.clone()), e),
        ArchiveTarget::Stdout => Error::new(ErrorKind::Io, "writing the archive to standard output").with_source(e),
        // The upload's own error, which names the bucket and key, is the message.
        ArchiveTarget::Object(location) => match e.downcast::<Error>() {
            Ok(e) => e,
            Err(e) => Error::new(ErrorKind::Io, format!("writing `{location}`")).with_source(e),
        },
    }
}

/// The current time, RFC 3339 in UTC with seconds.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::sample;

    /// An archive of no parts written through the writer thread into `dir`, `cancel` as given.
    fn written(dir: &Path, cancel: Cancel) -> (PathBuf, Result<WrittenArchive>) {
        let path = dir.join("a.pgsafe");
        let writer =
            ArchiveWriter::create(ArchiveTarget::File(path.clone()), &sample::catalog(vec![]), Compression::None)
                .unwrap();
        let (tx, task) = writer.spawn(2, cancel);
        drop(tx);
        (path, task.join())
    }

    #[test]
    fn an_interruption_after_the_last_chunk_still_leaves_no_archive() {
        let dir = tempfile::tempdir().unwrap();
        let (path, done) = written(dir.path(), Cancel::new());
        assert!(done.is_ok() && path.is_file());
        let dir = tempfile::tempdir().unwrap();
        let cancel = Cancel::new();
        cancel.cancel();
        let (path, done) = written(dir.path(), cancel);
        assert_eq!(done.unwrap_err().kind(), ErrorKind::Cancelled);
        assert!(!path.exists(), "an interrupted archive never gets its final name");
    }
}
