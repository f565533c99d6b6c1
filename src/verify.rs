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
use crate::format::{Catalog, CopyFormat, Element, FrameStream, PartId, StreamEvent, TupleScanner};

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
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, parts.len().max(1)) {
            s.spawn(|| {
                while let Some(&part) = parts.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(e) = reader.check_part(part) {
                        problems.lock().expect("problems lock").push((part, e.to_string()));
                    }
                }
            });
        }
    });
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

/// Per-part state of a sequential verification.
struct PartState {
    scanner: TupleScanner,
    hasher: blake3::Hasher,
    chunk_rows: Vec<u64>,
    table: String,
    format: CopyFormat,
}

/// Verifies an archive read front to back, as from a pipe. The checks are the same as [`verify_file`]'s.
pub fn verify_stream(source: &str, r: impl Read) -> Result<VerifyReport> {
    let mut report = VerifyReport { source: source.to_string(), ..VerifyReport::default() };
    let mut stream = FrameStream::new(r);
    let mut parts: HashMap<PartId, PartState> = HashMap::new();
    let mut failed: Vec<PartId> = Vec::new();
    loop {
        let event = match stream.next_event() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(crate::format::FormatError::Io { offset, source }) => {
                return Err(Error::new(ErrorKind::Io, format!("reading {source:?} at offset {offset}")));
            }
            Err(e) => {
                report.problems.push(e.to_string());
                return Ok(report);
            }
        };
        match event {
            StreamEvent::Catalog(catalog) => parts = start_parts(&catalog),
            StreamEvent::Chunk { header, offset, stored } => {
                let Some(state) = parts.get_mut(&header.part) else { continue };
                if failed.contains(&header.part) {
                    continue;
                }
                let element = Element::Chunk { part: header.part, seq: header.seq, table: Some(state.table.clone()) };
                let raw = match header.decode_payload(&stored, offset, element.clone()) {
                    Ok(raw) => raw,
                    Err(e) => {
                        report.problems.push(e.to_string());
                        failed.push(header.part);
                        continue;
                    }
                };
                state.hasher.update(&raw);
                let before = state.scanner.rows();
                match state.scanner.scan(&raw) {
                    Ok(n) if n == raw.len() => state.chunk_rows.push(state.scanner.rows() - before),
                    Ok(n) => {
                        report.problems.push(format!(
                            "{element} at offset {offset}: ends inside a tuple (decoded byte {n} of {})",
                            raw.len()
                        ));
                        failed.push(header.part);
                    }
                    Err(e) => {
                        report
                            .problems
                            .push(format!("{element} at offset {offset}: decoded byte {}: {}", e.offset, e.problem));
                        failed.push(header.part);
                    }
                }
            }
            StreamEvent::Manifest(manifest) => {
                for record in &manifest.parts {
                    report.parts += 1;
                    report.chunks += record.chunks.len();
                    report.rows += record.rows;
                    report.raw_bytes += record.raw_bytes;
                    let Some(state) = parts.remove(&record.id) else { continue };
                    if failed.contains(&record.id) {
                        continue;
                    }
                    let name = format!("part {} (`{}`)", record.id, state.table);
                    let listed: Vec<u64> = record.chunks.iter().map(|c| c.rows).collect();
                    if listed != state.chunk_rows {
                        report.problems.push(format!(
                            "{name}: chunk row counts {:?} differ from the manifest's {listed:?}",
                            state.chunk_rows
                        ));
                    }
                    if state.format == CopyFormat::Binary && !state.scanner.at_end() {
                        report.problems.push(format!("{name}: the binary COPY stream has no end marker"));
                    }
                    let blake3 = state.hasher.finalize();
                    if blake3.to_hex().as_str() != record.blake3 {
                        report.problems.push(format!(
                            "{name}: BLAKE3 mismatch (manifest {}, computed {})",
                            record.blake3,
                            blake3.to_hex()
                        ));
                    }
                    if state.scanner.digest() != record.digest {
                        report.problems.push(format!(
                            "{name}: content digest mismatch (manifest {}, computed {})",
                            record.digest,
                            state.scanner.digest()
                        ));
                    }
                }
            }
        }
    }
    Ok(report)
}

fn start_parts(catalog: &Catalog) -> HashMap<PartId, PartState> {
    catalog
        .parts
        .iter()
        .map(|p| {
            let state = PartState {
                scanner: TupleScanner::new(p.format).with_fields(p.columns.len()),
                hasher: blake3::Hasher::new(),
                chunk_rows: Vec::new(),
                table: p.table.to_string(),
                format: p.format,
            };
            (p.id, state)
        })
        .collect()
}
