//! `pgsafe inspect`: what an archive holds, read from its catalog and manifest, with every frame's
//! checksums checked on the way.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::archive::{ArchiveReader, ObjectLocation};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{
    Catalog, ChunkEntry, ContentDigest, CopyFormat, FrameStream, Keyring, Manifest, PageRange, PartId, SealedLayout,
    SequenceValue, ServerFacts, StreamEvent, describe_kinds,
};
use crate::schema::SchemaCatalog;

/// Everything `inspect` shows, as text or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    /// The file, or `-` for standard input.
    pub source: String,
    pub bytes: u64,
    /// `major.minor` of the archive format.
    pub format_version: String,
    /// The kinds of recipient an encrypted archive is encrypted to, one per recipient (`X25519`,
    /// `ssh-ed25519`, `ssh-rsa`); empty for a plain archive.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub encrypted_to: Vec<String>,
    pub archive_id: String,
    pub tool: String,
    pub created_at: String,
    pub finished_at: String,
    pub server: ServerFacts,
    pub totals: Totals,
    pub tables: Vec<TableReport>,
    pub parts: Vec<PartReport>,
    /// Sequence values, as a restore sets them.
    pub sequences: Vec<SequenceValue>,
    /// Schema objects (steps a whole restore runs); `None` for an archive made with `--data-only`.
    pub schema_objects: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    pub tables: usize,
    pub parts: usize,
    pub chunks: usize,
    pub rows: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub rows: u64,
    pub parts: usize,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub digest: ContentDigest,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartReport {
    pub id: PartId,
    pub table: String,
    pub format: CopyFormat,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<PageRange>,
    pub columns: Vec<String>,
    pub rows: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub blake3: String,
    pub digest: ContentDigest,
    pub chunks: Vec<ChunkEntry>,
}

/// Inspects an archive file, checking every frame's checksums (not decoding the chunks: that is `verify`).
pub fn inspect_file(path: &Path) -> Result<InspectReport> {
    inspect_file_with_keys(path, &Keyring::none())
}

/// Like [`inspect_file`], opening an encrypted archive with `keyring`. Without an identity, an encrypted
/// archive's structure is checked and an error says what it is encrypted to.
pub fn inspect_file_with_keys(path: &Path, keyring: &Keyring) -> Result<InspectReport> {
    let opened = ArchiveReader::open_with(path, keyring);
    let reader =
        without_identity(opened, keyring, &path.display().to_string(), || ArchiveReader::check_structure(path))?;
    inspect_reader(&reader, 1)
}

/// `opened`, or, when it is encrypted and there is no identity, the error that says what it is encrypted
/// to once `structure` has checked what can be checked without the key.
fn without_identity(
    opened: Result<ArchiveReader>,
    keyring: &Keyring,
    name: &str,
    structure: impl FnOnce() -> Result<SealedLayout>,
) -> Result<ArchiveReader> {
    match opened {
        Err(e) if e.kind() == ErrorKind::Identity && keyring.is_empty() => {
            let layout = structure()?;
            Err(Error::new(
                ErrorKind::Identity,
                format!(
                    "`{name}` is an encrypted archive (format {}) of {} chunks, encrypted to {}: its catalog and manifest (tables, rows, schema) need an identity of one of its recipients",
                    layout.format_version,
                    layout.chunks,
                    describe_kinds(&layout.recipient_kinds)
                ),
            )
            .with_hint("pass `--identity FILE` (or set `PGSAFE_IDENTITY`) naming an age identity file of one of the archive's recipients"))
        }
        opened => opened,
    }
}

/// Chunk frames checked at once in an object: each is a request, and overlapping them hides their latency.
const OBJECT_CHECKS: usize = 8;

/// Inspects an archive in object storage, as [`inspect_file`] does a file: every chunk frame is fetched
/// (a few at a time, by ranged requests) to check its CRC.
pub fn inspect_object(location: &ObjectLocation) -> Result<InspectReport> {
    inspect_object_with_keys(location, &Keyring::none())
}

/// Like [`inspect_object`], opening an encrypted archive with `keyring`.
pub fn inspect_object_with_keys(location: &ObjectLocation, keyring: &Keyring) -> Result<InspectReport> {
    let opened = ArchiveReader::open_object_with(location, keyring);
    let reader =
        without_identity(opened, keyring, &location.to_string(), || ArchiveReader::check_object_structure(location))?;
    inspect_reader(&reader, OBJECT_CHECKS)
}

/// Checks every chunk frame's CRC on `threads` threads, then builds the report. Of several damaged
/// frames, the first in the file is reported.
fn inspect_reader(reader: &ArchiveReader, threads: usize) -> Result<InspectReport> {
    let index = reader.index();
    let name = reader.path().display().to_string();
    reader.check_chunks(&index.all_chunks(), threads)?;
    let version = format!("{}.{}", index.header().major, index.header().minor);
    let mut report = build(name, index.len(), version, index.catalog(), index.manifest())?;
    report.encrypted_to = index.recipient_kinds().to_vec();
    Ok(report)
}

/// Inspects an archive read sequentially, as from a pipe.
pub fn inspect_stream(source: &str, r: impl Read) -> Result<InspectReport> {
    inspect_stream_with_keys(source, r, Keyring::none())
}

/// Like [`inspect_stream`], opening an encrypted archive with `keyring`.
pub fn inspect_stream_with_keys(source: &str, r: impl Read, keyring: Keyring) -> Result<InspectReport> {
    let mut stream = FrameStream::with_keyring(r, keyring);
    let mut catalog = None;
    let mut version = String::new();
    loop {
        match stream.next_event().map_err(|e| Error::from(e).context(source))? {
            Some(StreamEvent::Catalog(c)) => {
                let (major, minor) = stream.header().map(|h| (h.major, h.minor)).unwrap_or_default();
                version = format!("{major}.{minor}");
                catalog = Some(c);
            }
            Some(StreamEvent::Chunk { .. }) => {}
            Some(StreamEvent::Manifest(m)) => {
                let catalog = catalog.expect("the stream yields the catalog first");
                let mut report = build(source.to_string(), stream.offset(), version, &catalog, &m)?;
                report.encrypted_to = stream.recipient_kinds().to_vec();
                return Ok(report);
            }
            None => unreachable!("the stream ends after the manifest"),
        }
    }
}

fn build(
    source: String,
    bytes: u64,
    format_version: String,
    catalog: &Catalog,
    manifest: &Manifest,
) -> Result<InspectReport> {
    // Both readers checked that the manifest's parts are exactly the catalog's, each once.
    let positions = catalog.part_positions().map_err(|id| {
        Error::new(ErrorKind::CorruptArchive, format!("{source}: part {id} appears twice in the catalog"))
    })?;
    let mut parts = Vec::with_capacity(manifest.parts.len());
    for record in &manifest.parts {
        let info = positions.get(&record.id).map(|&i| &catalog.parts[i]).ok_or_else(|| {
            Error::new(ErrorKind::CorruptArchive, format!("{source}: part {} is not in the catalog", record.id))
        })?;
        parts.push(PartReport {
            id: record.id,
            table: info.table.to_string(),
            format: info.format,
            pages: info.pages,
            columns: info.columns.iter().map(|c| c.name.clone()).collect(),
            rows: record.rows,
            raw_bytes: record.raw_bytes,
            stored_bytes: record.stored_bytes,
            blake3: record.blake3.clone(),
            digest: record.digest,
            chunks: record.chunks.clone(),
        });
    }
    let report_of: HashMap<PartId, usize> = parts.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    let tables: Vec<TableReport> = manifest
        .tables
        .iter()
        .map(|t| {
            let of_table = || t.parts.iter().filter_map(|id| report_of.get(id)).map(|&i| &parts[i]);
            TableReport {
                table: t.table.to_string(),
                rows: t.rows,
                parts: t.parts.len(),
                raw_bytes: of_table().map(|p| p.raw_bytes).sum(),
                stored_bytes: of_table().map(|p| p.stored_bytes).sum(),
                digest: t.digest,
            }
        })
        .collect();
    let totals = Totals {
        tables: tables.len(),
        parts: parts.len(),
        chunks: parts.iter().map(|p| p.chunks.len()).sum(),
        rows: parts.iter().map(|p| p.rows).sum(),
        raw_bytes: parts.iter().map(|p| p.raw_bytes).sum(),
        stored_bytes: parts.iter().map(|p| p.stored_bytes).sum(),
    };
    let schema_objects = SchemaCatalog::read(catalog.schema.as_ref())?.map(|schema| schema.objects.len());
    Ok(InspectReport {
        source,
        bytes,
        format_version,
        encrypted_to: Vec::new(),
        archive_id: catalog.archive_id.clone(),
        tool: catalog.tool.clone(),
        created_at: catalog.created_at.clone(),
        finished_at: manifest.finished_at.clone(),
        server: catalog.server.clone(),
        totals,
        tables,
        parts,
        sequences: catalog.sequences.clone(),
        schema_objects,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::format::{ArchiveEncoder, ArchiveIndex, Compression, Element, binary_stream, probe, sample};

    /// An archive of `n` tables of one part each, every part one chunk of two rows.
    fn archive(n: u32) -> Vec<u8> {
        let catalog = sample::catalog(
            (0..n)
                .map(|id| sample::part(PartId(id), &format!("t{id}"), CopyFormat::Binary, &[("id", "integer")]))
                .collect(),
        );
        let mut encoder = ArchiveEncoder::new(Vec::new(), &catalog, Compression::None).unwrap();
        for id in 0..n {
            let stream = binary_stream(&[vec![Some(id.to_be_bytes().to_vec())], vec![None]]);
            let (chunks, summary) = sample::encode_part(PartId(id), CopyFormat::Binary, [stream], Compression::None);
            encoder.write_chunk(&chunks[0]).unwrap();
            encoder.finish_part(summary).unwrap();
        }
        encoder.finish(String::new()).unwrap().0
    }

    /// Comparisons of part ids made to read an archive of `n` parts as `verify` and `inspect` do: open it
    /// with random access, check every part, read it as a stream, and build the report.
    fn comparisons_to_read(n: u32) -> u64 {
        let bytes = archive(n);
        probe::take();
        let index = ArchiveIndex::open(&bytes[..]).unwrap();
        for p in &index.catalog().parts {
            index.check_part(p.id).unwrap();
        }
        let report = build("many".into(), index.len(), "1.0".into(), index.catalog(), index.manifest()).unwrap();
        assert_eq!(report.tables.len(), n as usize);
        let mut stream = FrameStream::new(&bytes[..]);
        while let Some(event) = stream.next_event().unwrap() {
            if let StreamEvent::Chunk { header, offset, stored } = event {
                header.decode_payload(&stored, offset, Element::File).unwrap();
            }
        }
        probe::take()
    }

    /// Defect: `Catalog::part` scanned the catalog for every chunk read, per part in the manifest check and
    /// in `inspect`, so reading an archive took time quadratic in its parts (100,000 parts: minutes).
    /// Checked on several threads (as an object's chunks are), the first damaged chunk in the file is the
    /// one reported, whichever thread found its damage first.
    #[test]
    fn of_several_damaged_chunks_the_first_in_the_file_is_reported() {
        let mut bytes = archive(40);
        let chunks = ArchiveIndex::open(&bytes[..]).unwrap().all_chunks();
        for c in [&chunks[5], &chunks[30], &chunks[39]] {
            bytes[c.entry.offset as usize + crate::format::FrameHeader::LEN] ^= 0x10;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.pgsafe");
        std::fs::write(&path, &bytes).unwrap();
        let reader = ArchiveReader::open(&path).unwrap();
        for threads in [1, 4, 40] {
            let e = inspect_reader(&reader, threads).unwrap_err();
            assert!(e.to_string().contains(&format!("chunk 0 of part {}", chunks[5].part)), "{threads}: {e}");
        }
    }

    #[test]
    fn opening_an_archive_is_not_quadratic_in_its_parts() {
        let (n, four_n) = (comparisons_to_read(1000), comparisons_to_read(4000));
        // Four times the parts: four times the comparisons when each lookup is an index lookup, sixteen
        // times when each scans the parts.
        assert!(four_n <= 6 * n, "1000 parts: {n} comparisons of part ids; 4000 parts: {four_n}");
    }
}
