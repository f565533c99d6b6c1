//! Random-access reading of an archive through an [`ArchiveSource`] (a file, an object in a bucket,
//! or a `Vec` in tests): the footer leads to the manifest, the manifest to every chunk, so any part's
//! chunks can be read at once and in parallel.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::crypt::{DataKey, Keyring, open_key_frame};
use super::{
    ArchiveSource, Catalog, ChunkEntry, ChunkSeq, Codec, CopyFormat, Element, FileHeader, Footer, FormatError,
    FrameHeader, FrameKind, Manifest, PartId, PartInfo, PartRecord, crc32, digest::is_lower_hex,
};

/// A chunk's place in the archive, as the manifest records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    pub part: PartId,
    pub entry: ChunkEntry,
}

/// An opened archive: header, catalog, manifest and footer decoded and cross-checked; chunks read on demand.
///
/// [`open`](Self::open) checks everything but the chunk payloads: every byte of the header, catalog,
/// manifest and footer, and that the manifest's chunk frames tile the space between the catalog and the
/// manifest exactly. [`read_chunk`](Self::read_chunk) checks a chunk's frame and payload.
#[derive(Debug)]
pub struct ArchiveIndex<B> {
    bytes: B,
    header: FileHeader,
    catalog: Catalog,
    manifest: Manifest,
    footer: Footer,
    parts: HashMap<PartId, PartSlot>,
    /// The data key of an encrypted archive, and the kinds of recipient it was wrapped for.
    key: Option<(DataKey, Vec<String>)>,
}

/// Where one part is described: its positions in the catalog's parts and in the manifest's records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartSlot {
    info: usize,
    record: usize,
}

impl<B: ArchiveSource> ArchiveIndex<B> {
    /// Opens the plain archive in `bytes`: a file, an object in a bucket, a `Vec`, a slice. Reads the
    /// header, the footer, the manifest and the catalog, not the chunks. An encrypted one is refused as
    /// needing an identity.
    pub fn open(bytes: B) -> Result<Self, FormatError> {
        Self::open_with(bytes, &Keyring::none())
    }

    /// Opens the archive in `bytes`, unwrapping the data key of an encrypted one with `keyring`.
    pub fn open_with(bytes: B, keyring: &Keyring) -> Result<Self, FormatError> {
        let data = &bytes;
        let len = data.len();
        let header = FileHeader::decode(&read(data, 0, len.min(FileHeader::LEN as u64) as usize)?)?;
        let min = (FileHeader::LEN + 2 * FrameHeader::LEN + Footer::LEN) as u64;
        if len < min {
            return Err(FormatError::Truncated { element: Element::File, offset: 0, needed: min, available: len });
        }
        let footer_at = len - Footer::LEN as u64;
        let footer = Footer::decode(&fixed(data, footer_at)?, footer_at)?;

        let (key, catalog_at) = if header.encrypted {
            let at = FileHeader::LEN as u64;
            let (h, stored) = read_frame(data, &header, at, FrameKind::Key, Element::Key)?;
            (Some(open_key_frame(&h, &stored, at, keyring)?), at + h.frame_len())
        } else {
            (None, FileHeader::LEN as u64)
        };
        let data_key = key.as_ref().map(|(k, _)| k);

        // The manifest frame must end exactly where the footer starts.
        let manifest_at = footer.manifest_offset;
        if manifest_at < catalog_at + FrameHeader::LEN as u64 || manifest_at > footer_at - FrameHeader::LEN as u64 {
            return Err(FormatError::corrupt(
                Element::Footer,
                footer_at,
                format!("manifest offset {manifest_at} lies outside the archive's frames"),
            ));
        }
        let (mh, stored) = read_frame(data, &header, manifest_at, FrameKind::Manifest, Element::Manifest)?;
        if manifest_at + mh.frame_len() != footer_at {
            return Err(FormatError::corrupt(
                Element::Manifest,
                manifest_at,
                format!("frame ends at offset {} but the footer starts at {footer_at}", manifest_at + mh.frame_len()),
            ));
        }
        if header.encrypted {
            // The footer hashes the sealed manifest: check it before unsealing.
            check_manifest_hash(&stored, &footer, manifest_at)?;
        }
        let manifest_json = mh.open_payload(data_key, &stored, manifest_at, Element::Manifest)?;
        drop(stored);
        if !header.encrypted {
            check_manifest_hash(&manifest_json, &footer, manifest_at)?;
        }
        let manifest: Manifest = parse_json(&manifest_json, Element::Manifest, manifest_at)?;
        // The decoded JSON can be large (up to the document limit): free it before decoding the catalog.
        drop(manifest_json);

        let (ch, stored) = read_frame(data, &header, catalog_at, FrameKind::Catalog, Element::Catalog)?;
        let catalog_json = ch.open_payload(data_key, &stored, catalog_at, Element::Catalog)?;
        drop(stored);
        let catalog_end = catalog_at + ch.frame_len();
        if catalog_end > manifest_at {
            return Err(FormatError::corrupt(Element::Catalog, catalog_at, "frame overlaps the manifest frame"));
        }
        let catalog: Catalog = parse_json(&catalog_json, Element::Catalog, catalog_at)?;

        let catalog_blake3 = blake3::hash(&catalog_json);
        let parts =
            check_manifest(&catalog, catalog_blake3.to_hex().as_str(), &manifest, &footer, catalog_end, manifest_at)?;
        Ok(ArchiveIndex { bytes, header, catalog, manifest, footer, parts, key })
    }

    /// The kinds of recipient an encrypted archive's data key is wrapped for (`X25519`, `ssh-ed25519`);
    /// empty for a plain archive.
    pub fn recipient_kinds(&self) -> &[String] {
        self.key.as_ref().map_or(&[], |(_, kinds)| kinds)
    }

    /// The data key of an encrypted archive.
    pub fn data_key(&self) -> Option<&DataKey> {
        self.key.as_ref().map(|(k, _)| k)
    }

    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// The source the archive was opened from.
    pub fn bytes(&self) -> &B {
        &self.bytes
    }

    /// The archive's length in bytes.
    pub fn len(&self) -> u64 {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The manifest's record of a part.
    pub fn part(&self, part: PartId) -> Option<&PartRecord> {
        self.parts.get(&part).map(|slot| &self.manifest.parts[slot.record])
    }

    /// The catalog's description of a part.
    pub fn part_info(&self, part: PartId) -> Option<&PartInfo> {
        self.parts.get(&part).map(|slot| &self.catalog.parts[slot.info])
    }

    /// A part's chunks in stream order.
    pub fn chunks(&self, part: PartId) -> impl Iterator<Item = ChunkRef> + '_ {
        self.part(part).into_iter().flat_map(move |p| p.chunks.iter().map(move |&entry| ChunkRef { part, entry }))
    }

    /// Every chunk in the archive, in file order.
    pub fn all_chunks(&self) -> Vec<ChunkRef> {
        let mut all: Vec<ChunkRef> = self
            .manifest
            .parts
            .iter()
            .flat_map(|p| p.chunks.iter().map(|&entry| ChunkRef { part: p.id, entry }))
            .collect();
        all.sort_by_key(|c| c.entry.offset);
        all
    }

    /// Checks a chunk's frame header against the manifest and its payload's CRC, without decoding it.
    pub fn check_chunk(&self, chunk: &ChunkRef) -> Result<(), FormatError> {
        let (h, frame) = self.chunk_frame(chunk)?;
        let computed = crc32(&frame[FrameHeader::LEN..]);
        if computed != h.payload_crc {
            return Err(FormatError::corrupt(
                self.chunk_element(chunk),
                chunk.entry.offset + FrameHeader::LEN as u64,
                format!("payload {}", super::error::checksum_mismatch(h.payload_crc, computed)),
            ));
        }
        Ok(())
    }

    /// How a chunk is stored: its frame header's codec, the header checked against the manifest, the
    /// payload not decoded.
    pub fn chunk_codec(&self, chunk: &ChunkRef) -> Result<Codec, FormatError> {
        self.chunk_frame(chunk).map(|(h, _)| h.codec)
    }

    /// Reads, checks and decodes one chunk: its bytes of the part's COPY stream.
    pub fn read_chunk(&self, chunk: &ChunkRef) -> Result<Vec<u8>, FormatError> {
        let (h, frame) = self.chunk_frame(chunk)?;
        h.open_payload(self.data_key(), &frame[FrameHeader::LEN..], chunk.entry.offset, self.chunk_element(chunk))
    }

    /// Names a chunk in errors, with its table.
    pub fn chunk_element(&self, chunk: &ChunkRef) -> Element {
        Element::Chunk { part: chunk.part, seq: chunk.entry.seq, table: self.table_of(chunk.part) }
    }

    /// The qualified name of a part's table, for messages.
    pub fn table_of(&self, part: PartId) -> Option<String> {
        self.part_info(part).map(|p| p.table.to_string())
    }

    /// A chunk's frame, header and payload in one read, its header checked against the manifest.
    fn chunk_frame(&self, chunk: &ChunkRef) -> Result<(FrameHeader, Cow<'_, [u8]>), FormatError> {
        let bytes = &self.bytes;
        let e = &chunk.entry;
        let element = self.chunk_element(chunk);
        // A `ChunkRef` may be made by hand: check it lies inside the file before reading there.
        let end = e.offset.checked_add(FrameHeader::LEN as u64 + u64::from(e.stored_len));
        if end.is_none_or(|end| end > bytes.len()) {
            return Err(FormatError::corrupt(element, e.offset, "chunk reference lies outside the archive"));
        }
        let frame = read(bytes, e.offset, FrameHeader::LEN + e.stored_len as usize)?;
        let h = FrameHeader::decode(frame_header(&frame), &self.header, e.offset, element.clone())?;
        let matches = h.kind == FrameKind::Chunk
            && h.part == chunk.part
            && h.seq == e.seq
            && h.stored_len == e.stored_len
            && h.raw_len == e.raw_len
            && h.payload_crc == e.crc32;
        if !matches {
            return Err(FormatError::corrupt(
                element,
                e.offset,
                format!(
                    "frame header (kind {:?}, part {}, chunk {}, {} stored bytes, {} decoded, crc {:08x}) differs from the manifest's entry",
                    h.kind, h.part, h.seq, h.stored_len, h.raw_len, h.payload_crc
                ),
            ));
        }
        if h.codec == Codec::Columnar && self.part_info(chunk.part).is_some_and(|p| p.format != CopyFormat::Binary) {
            return Err(columnar_on_text(element, e.offset));
        }
        Ok((h, frame))
    }
}

/// A columnar chunk in a text part: the codec models binary COPY tuples only.
pub(crate) fn columnar_on_text(element: Element, frame_at: u64) -> FormatError {
    FormatError::corrupt(
        element,
        frame_at + 5,
        "codec 2 (columnar) in a part of text format: it is only for binary parts",
    )
}

/// The `len` bytes at `at`; callers have checked that they lie inside `source`.
fn read(source: &impl ArchiveSource, at: u64, len: usize) -> Result<Cow<'_, [u8]>, FormatError> {
    let bytes = source.read_at(at, len).map_err(|source| FormatError::Io { offset: at, source })?;
    // A source that returns another length than asked for is broken: an error, not a panic further on.
    // `(*bytes)`: the slice's `len`, not this trait's, which every `AsRef<[u8]>` such as `Cow` also has.
    if (*bytes).len() != len {
        let problem = format!("asked for {len} bytes, the source returned {}", (*bytes).len());
        return Err(FormatError::Io { offset: at, source: std::io::Error::other(problem) });
    }
    Ok(bytes)
}

/// The `N` bytes at `at`; callers have checked that they lie inside `source`.
fn fixed<const N: usize>(source: &impl ArchiveSource, at: u64) -> Result<[u8; N], FormatError> {
    Ok((*read(source, at, N)?).try_into().expect("`read` returns as many bytes as asked for"))
}

/// The frame header at the start of `frame`, which holds at least one.
fn frame_header(frame: &[u8]) -> &[u8; FrameHeader::LEN] {
    frame[..FrameHeader::LEN].try_into().expect("a frame read holds its header")
}

/// Reads the frame of `kind` at `at`: its checked header and its stored payload, still to be decoded.
fn read_frame<'a, S: ArchiveSource>(
    bytes: &'a S,
    header: &FileHeader,
    at: u64,
    kind: FrameKind,
    element: Element,
) -> Result<(FrameHeader, Cow<'a, [u8]>), FormatError> {
    if at + FrameHeader::LEN as u64 > bytes.len() {
        return Err(FormatError::Truncated {
            element,
            offset: at,
            needed: FrameHeader::LEN as u64,
            available: bytes.len().saturating_sub(at),
        });
    }
    let h = FrameHeader::decode(&fixed(bytes, at)?, header, at, element.clone())?;
    if h.kind != kind {
        return Err(FormatError::corrupt(
            element,
            at + 4,
            format!("expected a {kind:?} frame, found a {:?} frame", h.kind),
        ));
    }
    let start = at + FrameHeader::LEN as u64;
    let end = start + u64::from(h.stored_len);
    if end > bytes.len() {
        return Err(FormatError::Truncated { element, offset: at, needed: h.frame_len(), available: bytes.len() - at });
    }
    Ok((h, read(bytes, start, h.stored_len as usize)?))
}

/// The footer's BLAKE3 must be the hash of the manifest's decoded bytes.
pub(crate) fn check_manifest_hash(json: &[u8], footer: &Footer, at: u64) -> Result<(), FormatError> {
    let computed = blake3::hash(json);
    if computed.as_bytes() != &footer.manifest_blake3 {
        return Err(FormatError::corrupt(
            Element::Manifest,
            at,
            format!("BLAKE3 mismatch (footer {}, computed {})", hex::encode(footer.manifest_blake3), computed.to_hex()),
        ));
    }
    Ok(())
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    json: &[u8],
    element: Element,
    at: u64,
) -> Result<T, FormatError> {
    serde_json::from_slice(json).map_err(|e| FormatError::corrupt(element, at, format!("invalid document: {e}")))
}

/// Cross-checks the manifest against the catalog and the file's layout; returns where each part is
/// described, so that every later lookup by part id is one hash lookup.
///
/// `chunks_at..chunks_end` is the space between the catalog and the manifest frames, which the chunk
/// frames must fill exactly: no gaps, no overlaps, so no byte of the file goes unchecked.
pub(crate) fn check_manifest(
    catalog: &Catalog,
    catalog_blake3: &str,
    manifest: &Manifest,
    footer: &Footer,
    chunks_at: u64,
    chunks_end: u64,
) -> Result<HashMap<PartId, PartSlot>, FormatError> {
    let bad = |problem: String| FormatError::corrupt(Element::Manifest, chunks_end, problem);
    if manifest.archive_id != catalog.archive_id {
        return Err(bad(format!(
            "archive id {} differs from the catalog's {}: the manifest belongs to another archive",
            manifest.archive_id, catalog.archive_id
        )));
    }
    if manifest.catalog_blake3 != catalog_blake3 {
        return Err(bad(format!(
            "catalog BLAKE3 mismatch (manifest {}, computed {catalog_blake3})",
            manifest.catalog_blake3
        )));
    }
    if !is_lower_hex(&catalog.archive_id, 32) {
        return Err(FormatError::corrupt(
            Element::Catalog,
            FileHeader::LEN as u64,
            format!("archive id `{}` is not 32 lowercase hex digits", catalog.archive_id),
        ));
    }
    if !manifest.complete {
        return Err(bad("the completion marker is not set: the dump did not finish".into()));
    }
    let catalog_parts = catalog
        .part_positions()
        .map_err(|_| FormatError::corrupt(Element::Catalog, FileHeader::LEN as u64, "a part id appears twice"))?;
    let mut slots = HashMap::with_capacity(catalog_parts.len());
    let mut locations = Vec::new();
    for (record, p) in manifest.parts.iter().enumerate() {
        let Some(&info) = catalog_parts.get(&p.id) else {
            return Err(bad(format!("part {} is not in the catalog", p.id)));
        };
        if slots.insert(p.id, PartSlot { info, record }).is_some() {
            return Err(bad(format!("part {} appears twice", p.id)));
        }
        if !is_lower_hex(&p.blake3, 64) {
            return Err(bad(format!("part {}: BLAKE3 `{}` is not 64 lowercase hex digits", p.id, p.blake3)));
        }
        let (mut rows, mut raw, mut stored) = (0u64, 0u64, 0u64);
        for (n, c) in p.chunks.iter().enumerate() {
            if c.seq != ChunkSeq(n as u32) {
                return Err(bad(format!("part {}: chunk {} is listed where chunk {n} belongs", p.id, c.seq)));
            }
            // A part's chunks lie in the file in sequence order, so a sequential reader meets them in order.
            if n > 0 && c.offset <= p.chunks[n - 1].offset {
                return Err(bad(format!(
                    "part {}: chunk {} lies at offset {}, before chunk {} at {}: chunks out of order",
                    p.id,
                    c.seq,
                    c.offset,
                    n - 1,
                    p.chunks[n - 1].offset
                )));
            }
            rows = rows.checked_add(c.rows).ok_or_else(|| bad(format!("part {}: row count overflows", p.id)))?;
            raw += u64::from(c.raw_len);
            stored += FrameHeader::LEN as u64 + u64::from(c.stored_len);
            locations.push((c.offset, FrameHeader::LEN as u64 + u64::from(c.stored_len), p.id, c.seq));
        }
        if rows != p.rows || raw != p.raw_bytes || stored != p.stored_bytes {
            return Err(bad(format!(
                "part {}: its chunks hold {rows} rows, {raw} decoded and {stored} stored bytes, the part record says {}, {} and {}",
                p.id, p.rows, p.raw_bytes, p.stored_bytes
            )));
        }
    }
    if slots.len() != catalog_parts.len() {
        // Every record names a distinct catalog part, so some catalog part has none: name the first.
        let missing = catalog.parts.iter().find(|p| !slots.contains_key(&p.id)).map_or(0, |p| p.id.0);
        return Err(bad(format!("part {missing} of the catalog has no record")));
    }
    if locations.len() as u64 != footer.chunk_count {
        return Err(bad(format!("lists {} chunks, the footer counts {}", locations.len(), footer.chunk_count)));
    }
    locations.sort_unstable();
    let mut expected = chunks_at;
    for (offset, len, part, seq) in locations {
        if offset != expected {
            return Err(bad(format!(
                "chunk {seq} of part {part} is listed at offset {offset}, but the previous frame ends at {expected}"
            )));
        }
        expected = offset + len;
    }
    if expected != chunks_end {
        return Err(bad(format!(
            "chunk frames end at offset {expected}, but the manifest frame starts at {chunks_end}"
        )));
    }
    // Every part belongs to exactly one table record, the one of its catalog table.
    let mut claimed = HashSet::with_capacity(slots.len());
    let mut names = BTreeSet::new();
    for t in &manifest.tables {
        if t.parts.is_empty() || !names.insert(&t.table) {
            return Err(bad(format!("table `{}` has an empty or a second record", t.table)));
        }
        let mut rows = 0u64;
        let mut digest = super::ContentDigest::default();
        for id in &t.parts {
            let slot = slots.get(id).ok_or_else(|| bad(format!("table `{}` names unknown part {id}", t.table)))?;
            if !claimed.insert(*id) {
                return Err(bad(format!("part {id} is claimed by two table records")));
            }
            if catalog.parts[slot.info].table != t.table {
                return Err(bad(format!(
                    "table `{}` claims part {id}, which the catalog gives another table",
                    t.table
                )));
            }
            let record = &manifest.parts[slot.record];
            rows = rows
                .checked_add(record.rows)
                .ok_or_else(|| bad(format!("table `{}`: row count overflows", t.table)))?;
            digest += record.digest;
        }
        if rows != t.rows || digest != t.digest {
            return Err(bad(format!(
                "table `{}` records {} rows and digest {}, its parts sum to {rows} and {digest}",
                t.table, t.rows, t.digest
            )));
        }
    }
    if claimed.len() != slots.len() {
        return Err(bad("a part belongs to no table record".into()));
    }
    Ok(slots)
}
