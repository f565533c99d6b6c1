//! The archive's on-disk codec, format v1: pure, synchronous, and free of tokio and PostgreSQL.
//!
//! An archive is `Header | Catalog frame | Chunk frames... | Manifest frame | Footer`
//! (`format-spec/archive-v1.md` is the normative description). This module owns every byte of that
//! layout: encoding ([`ArchiveEncoder`]), random-access decoding over any [`ArchiveSource`] ([`ArchiveIndex`]),
//! sequential decoding from any [`std::io::Read`] ([`FrameStream`]), and the COPY stream walker
//! ([`TupleScanner`]) that counts rows and computes content digests. Nothing here does I/O on files or
//! sockets beyond the `Read`/`Write` it is given, so it can be fuzzed and benchmarked alone.

mod catalog;
mod check;
mod columnar;
mod copy;
mod crypt;
mod digest;
mod encode;
mod error;
mod footer;
mod frame;
mod header;
mod index;
mod manifest;
#[doc(hidden)]
pub mod sample;
mod source;
mod stream;

pub use catalog::{
    Catalog, ColumnInfo, CopyFormat, PageRange, PartInfo, PartKind, SchemaDocument, SequenceValue, ServerFacts,
    TableName,
};
pub use check::PartCheck;
pub use copy::{BINARY_SIGNATURE, BinaryTuples, CopyError, Fields, Tuple, TupleScanner, binary_stream};
pub use crypt::{
    DataKey, Keyring, Recipients, SEAL_OVERHEAD, SealedLayout, Sealing, UnwrapError, check_structure, describe_kinds,
    recipient_kinds,
};
pub use digest::ContentDigest;
pub use encode::{ArchiveEncoder, EncodedChunk, PartSummary, encode_chunk, encode_part_chunk, seal_chunk};
pub use error::{Element, FormatError};
pub use footer::Footer;
pub use frame::{COLUMNAR_MINOR, Codec, CodecTrials, Compression, FrameHeader, FrameKind};
pub use header::{ENCRYPTION_MINOR, FileHeader};
pub use index::{ArchiveIndex, ChunkRef};
pub use manifest::{ChunkEntry, Manifest, PartRecord, TableRecord};
pub use source::ArchiveSource;
pub use stream::{FrameStream, StreamEvent};

/// The format major version this code writes and reads. A different major is refused.
pub const FORMAT_MAJOR: u16 = 1;
/// The newest format minor version this code reads and writes. Readers accept any minor of their major.
/// An archive says the oldest minor that defines what it holds: 1.0 plain, 1.1 encrypted (which defines
/// encryption), 1.2 written with columnar compression (which defines the columnar codec).
pub const FORMAT_MINOR: u16 = 2;

/// Largest decoded size of one chunk: 1 GiB + 1 MiB. Writers cut chunks of a few MiB, but a chunk holds
/// whole rows and PostgreSQL's largest row is 1 GiB, so one such row and a stream header must fit.
pub const MAX_CHUNK_RAW: u32 = (1 << 30) + (1 << 20);
/// Largest size of a key frame's payload (the data key wrapped with age for every recipient): 1 MiB,
/// room for thousands of recipients.
pub const MAX_KEY_RAW: u32 = 1 << 20;
/// Largest decoded size of the catalog or the manifest: 256 MiB.
pub const MAX_DOCUMENT_RAW: u32 = 256 << 20;

/// Identifies one part (one COPY stream) within an archive.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct PartId(pub u32);

// The comparisons are written out, not derived, so that unit tests can count them (`probe`): an archive
// may hold hundreds of thousands of parts, and a test proves that finding a part by id goes through an
// index instead of comparing it with every other part.
impl PartialEq for PartId {
    fn eq(&self, other: &Self) -> bool {
        #[cfg(test)]
        probe::compared();
        self.0 == other.0
    }
}

impl Eq for PartId {}

impl PartialOrd for PartId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PartId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        #[cfg(test)]
        probe::compared();
        self.0.cmp(&other.0)
    }
}

impl std::hash::Hash for PartId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// Counts, per thread, the comparisons of part ids, for the tests that prove lookups by id do not scan.
#[cfg(test)]
pub(crate) mod probe {
    use std::cell::Cell;

    thread_local! {
        static PART_ID_COMPARISONS: Cell<u64> = const { Cell::new(0) };
    }

    pub(crate) fn compared() {
        PART_ID_COMPARISONS.with(|c| c.set(c.get() + 1));
    }

    /// The comparisons made on this thread since the last call.
    pub(crate) fn take() -> u64 {
        PART_ID_COMPARISONS.with(|c| c.replace(0))
    }
}

/// The position of a chunk within its part, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ChunkSeq(pub u32);

impl std::fmt::Display for PartId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for ChunkSeq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod roundtrip_tests;
