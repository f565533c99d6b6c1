//! `pgsafe verify`: proves an archive sound without a database. Every checksum is checked, every chunk
//! decoded, every COPY stream walked tuple by tuple to recount rows and recompute the content digests,
//! and all of it compared with the manifest. Parts are checked in parallel.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::archive::ArchiveReader;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{FormatError, FrameStream, PartCheck, PartId, StreamEvent};

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

/// Verifies an archive file with `jobs` threads.
pub fn verify_file(path: &Path, jobs: usize) -> Result<VerifyReport> {
    let mut report = VerifyReport { source: path.display().to_string(), ..VerifyReport::default() };
    let reader = match ArchiveReader::open(path) {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::CorruptArchive => {
            report.problems.push(e.to_string());
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    let index = reader.index();
    let parts: Vec<PartId> = index.catalog().parts.iter().map(|p| p.id).collect();
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::new());
    let fatal = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, parts.len().max(1)) {
            s.spawn(|| {
                while let Some(&part) = parts.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match reader.check_part(part).map_err(Error::from) {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::CorruptArchive => {
                            problems.lock().expect("problems lock").push((part, e.to_string()));
                        }
                        // Not damage (an archive this pgsafe is too old for): no report can say "sound".
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
        return Err(e.context(format!("`{}`", path.display())));
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

/// Verifies an archive read front to back, as from a pipe. The checks are the same as [`verify_file`]'s.
pub fn verify_stream(source: &str, r: impl Read) -> Result<VerifyReport> {
    let mut report = VerifyReport { source: source.to_string(), ..VerifyReport::default() };
    let mut stream = FrameStream::new(r);
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
                let result = header.decode_payload(&stored, offset, element).and_then(|raw| check.chunk(&raw, offset));
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
