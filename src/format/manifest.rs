//! The manifest frame's document: the archive's table of contents and proof, written after all data.

use serde::{Deserialize, Serialize};

use super::{ChunkSeq, ContentDigest, PartId, TableName};

/// Row counts, hashes, digests and chunk locations of everything the archive holds.
///
/// Encoded as a UTF-8 JSON object. Readers ignore fields they do not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Equal to the catalog's `archive_id`.
    pub archive_id: String,
    /// BLAKE3 of the catalog frame's decoded bytes, 64 hex digits: with the footer's hash of the manifest,
    /// it puts the catalog in the chain of hashes too.
    pub catalog_blake3: String,
    /// The completion marker: true once every part was written in full.
    pub complete: bool,
    /// When the last part was written, RFC 3339 in UTC.
    pub finished_at: String,
    /// One record per part of the catalog, ordered by part id.
    pub parts: Vec<PartRecord>,
    /// One record per table, its parts summed, ordered by name.
    pub tables: Vec<TableRecord>,
}

/// What one part holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub id: PartId,
    pub rows: u64,
    /// Length of the COPY stream: the decoded chunks' sizes summed.
    pub raw_bytes: u64,
    /// The chunk frames' sizes on disk (headers included), summed.
    pub stored_bytes: u64,
    /// BLAKE3 of the whole COPY stream, 64 hex digits.
    pub blake3: String,
    /// Order-independent digest of the part's rows.
    pub digest: ContentDigest,
    /// The part's chunks in stream order (`seq` 0, 1, 2, ...).
    pub chunks: Vec<ChunkEntry>,
}

/// Where one chunk is and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkEntry {
    pub seq: ChunkSeq,
    /// Absolute offset of the chunk's frame header.
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    /// Complete rows in the chunk.
    pub rows: u64,
    /// CRC-32 of the stored payload, the same value as in the frame header.
    pub crc32: u32,
}

/// A table's totals over its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRecord {
    pub table: TableName,
    pub rows: u64,
    pub digest: ContentDigest,
    pub parts: Vec<PartId>,
}
