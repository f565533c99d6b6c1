//! `pgsafe verify`: proves an archive sound without a database. Every checksum is checked, every chunk
//! decoded, every COPY stream walked tuple by tuple to recount rows and recompute the content digests,
//! and all of it compared with the manifest. Parts are checked in parallel, and each part's next chunks
//! are decoded ahead of the one being walked, within a budget of bytes.

use std::collections::HashMap;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::runtime::Handle;

use crate::archive::{ArchiveReader, ChunkPrefetch, ObjectLocation, panic_message, reopen, spool};
use crate::budget::ByteBudget;
use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{
    Element, FileHeader, FormatError, FrameStream, Keyring, PartCheck, PartId, SealedLayout, StreamEvent,
    describe_kinds,
};

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub source: String,
    pub parts: usize,
    pub chunks: usize,
    pub rows: u64,
    pub raw_bytes: u64,
    /// Everything wrong, each naming the table, part, chunk and offset. Empty when the archive is sound.
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Decoded bytes the workers may have in flight together: chunks decoded ahead of the ones being checked
/// (see [`ByteBudget`]). A chunk larger than this is still read, alone.
pub const READ_AHEAD_BYTES: u64 = 32 << 20;

/// Verifies an archive file with `jobs` threads checking parts, each decoding its part's next chunks
/// ahead, within [`READ_AHEAD_BYTES`] for all of them.
pub fn verify_file(path: &Path, jobs: usize) -> Result<VerifyReport> {
    verify_file_with_keys(path, jobs, &Keyring::none())
}

/// Like [`verify_file`], opening an encrypted archive with `keyring`. Without an identity, an encrypted
/// archive's structure and checksums are checked, and then an error says that its content needs one.
pub fn verify_file_with_keys(path: &Path, jobs: usize, keyring: &Keyring) -> Result<VerifyReport> {
    verify_file_with(path, jobs, keyring, check_part)
}

/// Verifies an archive in object storage, as [`verify_file`] does a file: its chunks are fetched by
/// ranged requests, by `jobs` threads at once.
pub fn verify_object(location: &ObjectLocation, jobs: usize) -> Result<VerifyReport> {
    verify_object_with_keys(location, jobs, &Keyring::none())
}

/// Like [`verify_object`], opening an encrypted archive with `keyring`.
pub fn verify_object_with_keys(location: &ObjectLocation, jobs: usize, keyring: &Keyring) -> Result<VerifyReport> {
    verify_opened(
        location.to_string(),
        ArchiveReader::open_object_with(location, keyring),
        jobs,
        keyring,
        &|| ArchiveReader::check_object_structure(location),
        check_part,
    )
}

/// How one part is checked: `Ok(None)` sound, `Ok(Some(problem))` damaged, `Err` when it could not be
/// checked. A parameter so that tests can make it fail in ways a real archive cannot.
type CheckPart = fn(&Arc<ArchiveReader>, PartId, &Handle, &Arc<ByteBudget>, &Cancel) -> Result<Option<String>>;

fn verify_file_with(path: &Path, jobs: usize, keyring: &Keyring, check: CheckPart) -> Result<VerifyReport> {
    let structure = || ArchiveReader::check_structure(path);
    verify_opened(path.display().to_string(), ArchiveReader::open_with(path, keyring), jobs, keyring, &structure, check)
}

/// Verifies the archive `opened`, named `source` in the report; an archive too damaged to open is a
/// problem in the report, any other failure to open it an error. `structure` checks what can be checked
/// of an encrypted archive when there is no identity.
fn verify_opened(
    source: String,
    opened: Result<ArchiveReader>,
    jobs: usize,
    keyring: &Keyring,
    structure: &dyn Fn() -> Result<SealedLayout>,
    check: CheckPart,
) -> Result<VerifyReport> {
    let mut report = VerifyReport { source: source.clone(), ..VerifyReport::default() };
    let reader = match opened {
        Ok(r) => Arc::new(r),
        Err(e) if e.kind() == ErrorKind::CorruptArchive => {
            report.problems.push(e.to_string());
            return Ok(report);
        }
        Err(e) if e.kind() == ErrorKind::Identity && keyring.is_empty() => {
            // What can be checked without the key is checked: damage is still a failed check.
            let layout = match structure() {
                Ok(layout) => layout,
                Err(e) if e.kind() == ErrorKind::CorruptArchive => {
                    report.problems.push(e.to_string());
                    return Ok(report);
                }
                Err(e) => return Err(e),
            };
            return Err(Error::new(
                ErrorKind::Identity,
                format!(
                    "`{source}`: the structure is sound ({} chunks; every frame's CRC-32 and the sealed manifest's BLAKE3 check), but the archive is encrypted to {}: checking its rows and digests needs an identity of one of its recipients",
                    layout.chunks,
                    describe_kinds(&layout.recipient_kinds)
                ),
            )
            .with_hint("pass `--identity FILE` (or set `PGSAFE_IDENTITY`) naming an age identity file of one of the archive's recipients"));
        }
        Err(e) => return Err(e),
    };
    check_parts(report, reader, jobs, check, &Cancel::new())
}

/// Verifies an archive already open (a snapshot the store just wrote and is about to describe, or one a
/// rollback is about to restore from), named `source` in the report: every part checked as
/// [`verify_file`] checks them, with `jobs` threads. Blocks. `cancel` stops it between two chunks, with
/// [`ErrorKind::Cancelled`].
pub fn verify_reader(source: String, reader: Arc<ArchiveReader>, jobs: usize, cancel: &Cancel) -> Result<VerifyReport> {
    check_parts(VerifyReport { source, ..VerifyReport::default() }, reader, jobs, check_part, cancel)
}

/// Checks every part of `reader` with `jobs` threads, into `report`.
fn check_parts(
    mut report: VerifyReport,
    reader: Arc<ArchiveReader>,
    jobs: usize,
    check: CheckPart,
    cancel: &Cancel,
) -> Result<VerifyReport> {
    let jobs = jobs.max(1);
    // Decoding runs on the blocking threads of a tokio runtime: the caller's if it has one (a runtime
    // may not be dropped inside another), else one of our own.
    let own_runtime;
    let runtime = match Handle::try_current() {
        Ok(handle) => handle,
        Err(_) => {
            own_runtime = tokio::runtime::Builder::new_current_thread()
                .max_blocking_threads(jobs)
                .thread_name("pgsafe-verify")
                .build()
                .map_err(|e| Error::new(ErrorKind::Io, "starting the threads that decode chunks").with_source(e))?;
            own_runtime.handle().clone()
        }
    };
    let index = reader.index();
    let parts: Vec<PartId> = index.catalog().parts.iter().map(|p| p.id).collect();
    let next = AtomicUsize::new(0);
    let budget = ByteBudget::new(READ_AHEAD_BYTES);
    let problems = Mutex::new(Vec::new());
    let fatal = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(parts.len().max(1)) {
            s.spawn(|| {
                while let Some(&part) = parts.get(next.fetch_add(1, Ordering::Relaxed)) {
                    // A panic checking one part must not take the process down, nor lose which part it was.
                    let outcome = catch_unwind(AssertUnwindSafe(|| check(&reader, part, &runtime, &budget, cancel)))
                        .unwrap_or_else(|panic| {
                            Err(Error::new(
                                ErrorKind::Io,
                                format!(
                                    "checking {}: panicked: {}",
                                    Element::Part { part, table: index.table_of(part) },
                                    panic_message(panic)
                                ),
                            ))
                        });
                    match outcome {
                        Ok(None) => {}
                        Ok(Some(problem)) => problems.lock().expect("problems lock").push((part, problem)),
                        Err(e) => {
                            fatal.lock().expect("fatal lock").get_or_insert(e);
                            next.store(parts.len(), Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = fatal.into_inner().expect("fatal lock") {
        return Err(e.context(format!("`{}`", report.source)));
    }
    let mut problems = problems.into_inner().expect("problems lock");
    problems.sort();
    report.problems = problems.into_iter().map(|(_, p)| p).collect();
    let m = index.manifest();
    report.parts = m.parts.len();
    report.chunks = m.parts.iter().map(|p| p.chunks.len()).sum();
    report.rows = m.parts.iter().map(|p| p.rows).sum();
    report.raw_bytes = m.parts.iter().map(|p| p.raw_bytes).sum();
    Ok(report)
}

/// Checks one part completely (every chunk decoded, walked, hashed, and compared with the manifest),
/// decoding ahead with a [`ChunkPrefetch`]. Damage is a problem; anything else (an archive this pgsafe is
/// too old for, a failed decoding thread) an error.
fn check_part(
    reader: &Arc<ArchiveReader>,
    part: PartId,
    runtime: &Handle,
    budget: &Arc<ByteBudget>,
    cancel: &Cancel,
) -> Result<Option<String>> {
    let index = reader.index();
    let (Some(info), Some(record)) = (index.part_info(part), index.part(part)) else {
        // Opening the archive checked that every catalog part has a manifest record.
        return Ok(Some(format!("part {part}: not in both the catalog and the manifest")));
    };
    let mut check = PartCheck::new(info);
    let mut chunks = ChunkPrefetch::new(reader.clone(), part, budget.clone(), runtime);
    while let Some(decoded) = chunks.next_blocking() {
        cancel.check("the verification")?;
        let result = decoded.and_then(|d| check.chunk(&d.bytes, d.chunk.entry.offset).map_err(Error::from));
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::CorruptArchive => return Ok(Some(e.to_string())),
            Err(e) => return Err(e),
        }
    }
    Ok(check.finish(record).err().map(|e| e.to_string()))
}

/// Verifies an archive read front to back, as from a pipe. The checks are the same as [`verify_file`]'s.
pub fn verify_stream(source: &str, r: impl Read) -> Result<VerifyReport> {
    verify_stream_with_keys(source, r, Keyring::none())
}

/// Like [`verify_stream`], opening an encrypted archive with `keyring`. An encrypted archive read without
/// an identity is checked as far as it can be without one, as [`verify_file`] checks it: its structure
/// is checked from the end (the footer first), so the stream is copied into a temporary file in `TMPDIR`
/// that has no name, and damage is a problem in the report rather than lost behind the missing identity.
pub fn verify_stream_with_keys(source: &str, mut r: impl Read, keyring: Keyring) -> Result<VerifyReport> {
    let mut head = Vec::with_capacity(FileHeader::LEN);
    (&mut r)
        .take(FileHeader::LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::new(ErrorKind::Io, format!("reading `{source}` at offset 0")).with_source(e))?;
    let sealed = FileHeader::decode(&head).is_ok_and(|h| h.encrypted);
    let r = std::io::Cursor::new(head).chain(r);
    if sealed && keyring.is_empty() {
        return verify_sealed_stream(source, r, &keyring);
    }
    verify_frames(source, r, keyring)
}

/// An encrypted archive read from a stream without an identity: copied into a temporary file without a
/// name, then checked as [`verify_file`] checks one.
fn verify_sealed_stream(source: &str, r: impl Read, keyring: &Keyring) -> Result<VerifyReport> {
    let file = spool(r, source, "verify")?;
    let name = Path::new(source);
    let structure = || ArchiveReader::check_file_structure(&file, name);
    let opened = ArchiveReader::from_file_with(reopen(&file)?, name, keyring);
    verify_opened(source.to_string(), opened, 1, keyring, &structure, check_part)
}

/// The frames of an archive read front to back, each checked as it comes.
fn verify_frames(source: &str, r: impl Read, keyring: Keyring) -> Result<VerifyReport> {
    let mut report = VerifyReport { source: source.to_string(), ..VerifyReport::default() };
    let mut stream = FrameStream::with_keyring(r, keyring);
    // A part's check is dropped at its first problem; the other parts go on.
    let mut checks: HashMap<PartId, PartCheck> = HashMap::new();
    loop {
        let event = match stream.next_event() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(FormatError::Io { offset, source }) => {
                return Err(Error::new(ErrorKind::Io, format!("reading `{}` at offset {offset}", report.source))
                    .with_source(source));
            }
            Err(e) => {
                let e = Error::from(e);
                if e.kind() != ErrorKind::CorruptArchive {
                    return Err(e.context(&report.source));
                }
                report.problems.push(e.to_string());
                return Ok(report);
            }
        };
        match event {
            StreamEvent::Catalog(catalog) => {
                checks = catalog.parts.iter().map(|p| (p.id, PartCheck::new(p))).collect();
            }
            StreamEvent::Chunk { header, offset, stored } => {
                let Some(check) = checks.get_mut(&header.part) else { continue };
                let element = check.chunk_element(header.seq);
                let result = header
                    .open_payload(stream.data_key(), &stored, offset, element)
                    .and_then(|raw| check.chunk(&raw, offset));
                if let Err(e) = result {
                    report.problems.push(e.to_string());
                    checks.remove(&header.part);
                }
            }
            StreamEvent::Manifest(manifest) => {
                for record in &manifest.parts {
                    report.parts += 1;
                    report.chunks += record.chunks.len();
                    report.rows += record.rows;
                    report.raw_bytes += record.raw_bytes;
                    if let Some(check) = checks.remove(&record.id)
                        && let Err(e) = check.finish(record)
                    {
                        report.problems.push(e.to_string());
                    }
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::format::{Compression, CopyFormat, sample};

    /// An archive file of `n` text parts, `public.t0` to `public.tN`, each two chunks of a few rows.
    fn archive(dir: &Path, n: u32) -> std::path::PathBuf {
        let path = dir.join("verify.pgsafe");
        let catalog = sample::catalog(
            (0..n).map(|id| sample::part(PartId(id), &format!("t{id}"), CopyFormat::Text, &[])).collect(),
        );
        let parts: Vec<_> = (0..n)
            .map(|id| {
                let stream = (0..2).map(|seq| format!("{id}\t{seq}\n{id}\tmore\n"));
                sample::encode_part(PartId(id), CopyFormat::Text, stream, Compression::None)
            })
            .collect();
        sample::write_file(&path, &catalog, Compression::default(), &parts);
        path
    }

    #[test]
    fn a_sound_archive_verifies_with_read_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let path = archive(dir.path(), 5);
        let report = verify_file(&path, 2).unwrap();
        assert!(report.is_sound(), "{:?}", report.problems);
        assert_eq!((report.parts, report.chunks, report.rows), (5, 10, 20));
    }

    /// Defect: a worker that panicked while checking a part took `verify` down (or, in the restore,
    /// became an I/O error naming nothing). It is an error that names the part and its table.
    #[test]
    fn a_panic_checking_a_part_is_an_error_naming_the_part_and_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = archive(dir.path(), 4);
        let err = verify_file_with(&path, 2, &Keyring::none(), |reader, part, runtime, budget, cancel| {
            if part == PartId(2) {
                panic!("a bug in the check");
            }
            check_part(reader, part, runtime, budget, cancel)
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert_eq!(
            err.to_string(),
            format!("`{}`: checking part 2 (`public.t2`): panicked: a bug in the check", path.display())
        );
    }

    /// Defect: a cancelled verification ran to its end (SIGTERM during a snapshot's verification was
    /// ignored). It stops, as cancelled, instead of passing or failing the archive.
    #[test]
    fn a_cancelled_verification_stops_as_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let path = archive(dir.path(), 3);
        let reader = Arc::new(ArchiveReader::open(&path).unwrap());
        let cancel = Cancel::new();
        cancel.cancel();
        let err = verify_reader("x".into(), reader.clone(), 2, &cancel).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        assert!(verify_reader("x".into(), reader, 2, &Cancel::new()).unwrap().is_sound());
    }

    /// Errors that are not damage end `verify` with an error, not a problem in a report that could pass for
    /// a verdict on the archive.
    #[test]
    fn a_part_that_cannot_be_checked_is_an_error_not_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = archive(dir.path(), 3);
        let err = verify_file_with(&path, 1, &Keyring::none(), |reader, part, runtime, budget, cancel| match part {
            PartId(1) => Err(Error::new(ErrorKind::IncompatibleArchive, "part 1: a codec of a newer minor")),
            _ => check_part(reader, part, runtime, budget, cancel),
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IncompatibleArchive);
    }
}
