//! Encoding an archive: the header and catalog first, then chunk frames as they come, then the manifest
//! and the footer. [`ArchiveEncoder`] writes to any [`Write`] and never seeks, so an archive can stream
//! to a pipe.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::crypt::{SEAL_OVERHEAD, Sealing};
use super::frame::{CodecTrials, store, store_chunk};
use super::{
    Catalog, ChunkEntry, ChunkSeq, Compression, ContentDigest, FileHeader, Footer, FrameHeader, FrameKind,
    MAX_CHUNK_RAW, MAX_DOCUMENT_RAW, Manifest, PartId, PartRecord, TableName, TableRecord, crc32,
};

/// A chunk ready to be appended: its frame header and stored payload. Built by [`encode_chunk`], which
/// is where the compression work happens, so producers can do it in parallel before handing the chunk to
/// the one writer.
#[derive(Debug, Clone)]
pub struct EncodedChunk {
    pub header: FrameHeader,
    pub payload: Vec<u8>,
    /// Complete rows in the chunk.
    pub rows: u64,
}

/// Compresses and checksums one chunk of a part's COPY stream. `raw` must end on a tuple boundary and hold
/// 1 to [`MAX_CHUNK_RAW`] bytes; a larger chunk is a bug in the caller, which cuts chunks, and panics.
/// With [`Compression::Columnar`], the chunk is stored both columnar and row-wise and the smaller kept.
pub fn encode_chunk(part: PartId, seq: ChunkSeq, raw: &[u8], rows: u64, compression: Compression) -> EncodedChunk {
    encode_part_chunk(part, seq, raw, rows, compression, None)
}

/// [`encode_chunk`] for the chunks of one part's stream, which share `trials`: with
/// [`Compression::Columnar`], only the chunks it picks are stored both ways (see [`CodecTrials`]).
pub fn encode_part_chunk(
    part: PartId,
    seq: ChunkSeq,
    raw: &[u8],
    rows: u64,
    compression: Compression,
    trials: Option<&CodecTrials>,
) -> EncodedChunk {
    assert!(!raw.is_empty() && raw.len() <= MAX_CHUNK_RAW as usize, "chunk of {} bytes", raw.len());
    let (codec, payload) = store_chunk(raw, compression, trials);
    let header = FrameHeader {
        kind: FrameKind::Chunk,
        codec,
        sealed: false,
        part,
        seq,
        stored_len: payload.len() as u32,
        raw_len: raw.len() as u32,
        payload_crc: crc32(&payload),
    };
    EncodedChunk { header, payload, rows }
}

/// What a producer knows about a part once its whole stream went by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSummary {
    pub part: PartId,
    pub rows: u64,
    pub raw_bytes: u64,
    pub blake3: [u8; 32],
    pub digest: ContentDigest,
}

#[derive(Debug, Default)]
struct PartState {
    chunks: Vec<ChunkEntry>,
    summary: Option<PartSummary>,
}

/// Writes one archive in order. Misuse (a chunk of an unknown part, a chunk out of order, a part left
/// unfinished) is an `InvalidInput` error, so a bug upstream can never produce an archive that lies.
pub struct ArchiveEncoder<W: Write> {
    out: W,
    offset: u64,
    compression: Compression,
    archive_id: String,
    catalog_blake3: String,
    tables: BTreeMap<PartId, TableName>,
    parts: BTreeMap<PartId, PartState>,
    chunk_count: u64,
    /// Seals every frame after the key frame, in an encrypted archive.
    sealing: Option<Sealing>,
    /// The format minor version in the header, at least that of every codec written.
    minor: u16,
}

impl<W: Write> ArchiveEncoder<W> {
    /// Writes the header and the catalog frame of a plain archive.
    pub fn new(out: W, catalog: &Catalog, compression: Compression) -> io::Result<Self> {
        Self::with_sealing(out, catalog, compression, None)
    }

    /// Writes the header, then with `sealing` the key frame, then the catalog frame. With `sealing`, the
    /// archive is encrypted (format 1.1): every frame after the key frame is sealed with its data key.
    pub fn with_sealing(
        mut out: W,
        catalog: &Catalog,
        compression: Compression,
        sealing: Option<Sealing>,
    ) -> io::Result<Self> {
        if !super::digest::is_lower_hex(&catalog.archive_id, 32) {
            return Err(misuse(format!("archive id `{}` is not 32 lowercase hex digits", catalog.archive_id)));
        }
        let mut parts = BTreeMap::new();
        let mut tables = BTreeMap::new();
        for p in &catalog.parts {
            if parts.insert(p.id, PartState::default()).is_some() {
                return Err(misuse(format!("part {} appears twice in the catalog", p.id)));
            }
            tables.insert(p.id, p.table.clone());
        }
        let mut offset = FileHeader::LEN as u64;
        // The header names the oldest minor that defines what the archive may hold.
        let minor = compression.minor();
        match &sealing {
            None => out.write_all(&FileHeader { minor, ..FileHeader::default() }.encode())?,
            Some(s) => {
                let header = FileHeader::encrypted();
                out.write_all(&FileHeader { minor: header.minor.max(minor), ..header }.encode())?;
                offset += write_key_frame(&mut out, &s.wrapped)?;
            }
        }
        let json = serde_json::to_vec(catalog).map_err(io::Error::other)?;
        let (catalog_len, _) = write_document(&mut out, FrameKind::Catalog, &json, compression, sealing.as_ref())?;
        Ok(ArchiveEncoder {
            out,
            offset: offset + catalog_len,
            compression,
            archive_id: catalog.archive_id.clone(),
            catalog_blake3: blake3::hash(&json).to_hex().to_string(),
            tables,
            parts,
            chunk_count: 0,
            sealing,
            minor,
        })
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Appends a chunk frame. Chunks of one part must come in sequence order; parts may interleave.
    pub fn write_chunk(&mut self, chunk: &EncodedChunk) -> io::Result<()> {
        let h = &chunk.header;
        let sizes_fit_codec = match h.codec {
            super::Codec::None => h.plain_len() == h.raw_len,
            super::Codec::Zstd => h.plain_len() <= h.raw_len,
            super::Codec::Columnar => h.plain_len() <= h.raw_len && self.minor >= super::COLUMNAR_MINOR,
        };
        // A chunk comes sealed (by [`seal_chunk`], on the producer's thread) only into an encrypted archive.
        let well_formed = h.kind == FrameKind::Chunk
            && (!h.sealed || (self.sealing.is_some() && h.stored_len >= SEAL_OVERHEAD))
            && sizes_fit_codec
            && chunk.payload.len() == h.stored_len as usize
            && h.raw_len > 0
            && h.raw_len <= MAX_CHUNK_RAW
            && crc32(&chunk.payload) == h.payload_crc;
        if !well_formed {
            return Err(misuse(format!("chunk {} of part {}: header and payload disagree", h.seq, h.part)));
        }
        let state = self.parts.get_mut(&h.part).ok_or_else(|| misuse(format!("chunk of unknown part {}", h.part)))?;
        if state.summary.is_some() {
            return Err(misuse(format!("chunk {} of part {} after the part was finished", h.seq, h.part)));
        }
        let expected = state.chunks.len() as u32;
        if h.seq.0 != expected {
            return Err(misuse(format!("chunk {} of part {} out of order: expected chunk {expected}", h.seq, h.part)));
        }
        let sealed;
        let (h, payload) = match &self.sealing {
            Some(s) if !h.sealed => {
                let (header, payload) = seal(h, &chunk.payload, s);
                sealed = payload;
                (header, &sealed)
            }
            _ => (*h, &chunk.payload),
        };
        self.out.write_all(&h.encode())?;
        self.out.write_all(payload)?;
        state.chunks.push(ChunkEntry {
            seq: h.seq,
            offset: self.offset,
            stored_len: h.stored_len,
            raw_len: h.raw_len,
            rows: chunk.rows,
            crc32: h.payload_crc,
        });
        self.offset += h.frame_len();
        self.chunk_count += 1;
        Ok(())
    }

    /// Records that a part's stream is complete. Its chunks' rows and sizes must add up to the summary.
    pub fn finish_part(&mut self, summary: PartSummary) -> io::Result<()> {
        let part = summary.part;
        let state = self.parts.get_mut(&part).ok_or_else(|| misuse(format!("unknown part {part}")))?;
        if state.summary.is_some() {
            return Err(misuse(format!("part {part} finished twice")));
        }
        let rows: u64 = state.chunks.iter().map(|c| c.rows).sum();
        let raw: u64 = state.chunks.iter().map(|c| u64::from(c.raw_len)).sum();
        if rows != summary.rows || raw != summary.raw_bytes {
            return Err(misuse(format!(
                "part {part}: chunks hold {rows} rows in {raw} bytes, the summary says {} rows in {} bytes",
                summary.rows, summary.raw_bytes
            )));
        }
        state.summary = Some(summary);
        Ok(())
    }

    /// Writes the manifest and the footer, flushes, and returns the sink, the manifest and the archive's
    /// length.
    pub fn finish(mut self, finished_at: String) -> io::Result<(W, Manifest, u64)> {
        let mut parts = Vec::with_capacity(self.parts.len());
        let mut tables: BTreeMap<&TableName, TableRecord> = BTreeMap::new();
        for (id, state) in &self.parts {
            let s = state.summary.ok_or_else(|| misuse(format!("part {id} was never finished")))?;
            let table = &self.tables[id];
            let t = tables.entry(table).or_insert_with(|| TableRecord {
                table: table.clone(),
                rows: 0,
                digest: ContentDigest::default(),
                parts: Vec::new(),
            });
            t.rows += s.rows;
            t.digest += s.digest;
            t.parts.push(*id);
            parts.push(PartRecord {
                id: *id,
                rows: s.rows,
                raw_bytes: s.raw_bytes,
                stored_bytes: state.chunks.iter().map(|c| FrameHeader::LEN as u64 + u64::from(c.stored_len)).sum(),
                blake3: hex::encode(s.blake3),
                digest: s.digest,
                chunks: state.chunks.clone(),
            });
        }
        let manifest = Manifest {
            archive_id: self.archive_id.clone(),
            catalog_blake3: self.catalog_blake3.clone(),
            complete: true,
            finished_at,
            parts,
            tables: tables.into_values().collect(),
        };
        let json = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
        let manifest_offset = self.offset;
        let (len, stored) =
            write_document(&mut self.out, FrameKind::Manifest, &json, self.compression, self.sealing.as_ref())?;
        self.offset += len;
        // An encrypted archive's footer hashes the sealed manifest, which anyone can check and which tells
        // nothing of the manifest's content; a plain one's hashes the manifest itself.
        let hashed = if self.sealing.is_some() { blake3::hash(&stored) } else { blake3::hash(&json) };
        let footer = Footer { manifest_offset, chunk_count: self.chunk_count, manifest_blake3: *hashed.as_bytes() };
        self.out.write_all(&footer.encode())?;
        self.offset += Footer::LEN as u64;
        self.out.flush()?;
        Ok((self.out, manifest, self.offset))
    }
}

/// Seals an encoded chunk for an encrypted archive, so that producers seal in parallel, as they compress,
/// rather than the one writer. A chunk sealed with another archive's [`Sealing`] makes an archive that does
/// not open: give every producer the writer's.
pub fn seal_chunk(chunk: EncodedChunk, sealing: &Sealing) -> EncodedChunk {
    if chunk.header.sealed {
        return chunk;
    }
    let (header, payload) = seal(&chunk.header, &chunk.payload, sealing);
    EncodedChunk { header, payload, rows: chunk.rows }
}

/// Seals a plain frame's payload: its header gains the sealed flag and the sealed payload's size and CRC.
fn seal(h: &FrameHeader, payload: &[u8], sealing: &Sealing) -> (FrameHeader, Vec<u8>) {
    let mut header = FrameHeader { sealed: true, stored_len: h.stored_len + SEAL_OVERHEAD, ..*h };
    let sealed = sealing.key.seal(&header, payload);
    header.payload_crc = crc32(&sealed);
    (header, sealed)
}

/// Writes the key frame of an encrypted archive and returns its length.
fn write_key_frame(out: &mut impl Write, wrapped: &[u8]) -> io::Result<u64> {
    if wrapped.len() > super::MAX_KEY_RAW as usize {
        return Err(misuse(format!("the wrapped data key of {} bytes exceeds the format's limit", wrapped.len())));
    }
    let header = FrameHeader {
        kind: FrameKind::Key,
        codec: super::Codec::None,
        sealed: false,
        part: PartId(0),
        seq: ChunkSeq(0),
        stored_len: wrapped.len() as u32,
        raw_len: wrapped.len() as u32,
        payload_crc: crc32(wrapped),
    };
    out.write_all(&header.encode())?;
    out.write_all(wrapped)?;
    Ok(header.frame_len())
}

/// Writes a catalog or manifest frame, sealed with `sealing` when given; returns its length and its
/// stored payload.
fn write_document(
    out: &mut impl Write,
    kind: FrameKind,
    json: &[u8],
    compression: Compression,
    sealing: Option<&Sealing>,
) -> io::Result<(u64, Vec<u8>)> {
    if json.len() > MAX_DOCUMENT_RAW as usize {
        return Err(misuse(format!(
            "{kind:?} of {} bytes exceeds the format's limit of {MAX_DOCUMENT_RAW}",
            json.len()
        )));
    }
    let (codec, payload) = store(json, compression);
    let mut header = FrameHeader {
        kind,
        codec,
        sealed: false,
        part: PartId(0),
        seq: ChunkSeq(0),
        stored_len: payload.len() as u32,
        raw_len: json.len() as u32,
        payload_crc: crc32(&payload),
    };
    let mut payload = payload;
    if let Some(s) = sealing {
        (header, payload) = seal(&header, &payload, s);
    }
    out.write_all(&header.encode())?;
    out.write_all(&payload)?;
    Ok((header.frame_len(), payload))
}

fn misuse(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}
