//! Small archives for tests and benchmarks: a catalog with fixed identity and server facts, its parts, and
//! a part's chunks with the summary a dump worker would send after them. Not an API: it is public only
//! because integration tests and benchmarks cannot see `#[cfg(test)]` items, and it may change with them.
//!
//! The test vectors (`format-spec/test-vectors/`, made by `examples/make_test_vectors.rs`) are not built
//! with this: their bytes are committed, and the hand-assembled one checks the specification independently
//! of the project's own writer.

use super::{
    Catalog, ChunkSeq, ColumnInfo, Compression, CopyFormat, EncodedChunk, PartId, PartInfo, PartKind, PartSummary,
    ServerFacts, TableName, TupleScanner, encode_chunk,
};

/// A catalog of `parts`, with a fixed archive id, time, tool and server (PostgreSQL 15.18, UTF8).
pub fn catalog(parts: Vec<PartInfo>) -> Catalog {
    Catalog {
        archive_id: "0123456789abcdef0123456789abcdef".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        tool: "pgsafe sample".into(),
        server: ServerFacts {
            version: "15.18".into(),
            version_num: 150018,
            database: "sample".into(),
            encoding: "UTF8".into(),
            integer_datetimes: true,
        },
        parts,
        sequences: vec![],
        schema: None,
    }
}

/// A whole-table part of `public.name` whose stream carries `columns`, given as `(name, type)`.
pub fn part(id: PartId, name: &str, format: CopyFormat, columns: &[(&str, &str)]) -> PartInfo {
    PartInfo {
        id,
        kind: PartKind::Table,
        table: TableName { schema: "public".into(), name: name.into() },
        columns: columns
            .iter()
            .map(|(name, type_name)| ColumnInfo { name: (*name).into(), type_name: (*type_name).into() })
            .collect(),
        format,
        pages: None,
        filter: None,
        load_via: None,
        search_path: None,
        estimated_rows: 0,
        estimated_bytes: 0,
    }
}

/// Encodes a part's COPY stream, already cut into `chunks`, as a dump worker does: chunks numbered from 0,
/// each with the rows it holds, then the part's summary (rows, bytes, BLAKE3 and content digest of the
/// whole stream). The caller writes the chunks, in any interleaving with other parts, then the summary.
///
/// Panics if a chunk is empty or does not end on a tuple boundary of a well-formed stream: a sample is
/// built by the test that uses it, so that is a bug in the test.
pub fn encode_part<C: AsRef<[u8]>>(
    part: PartId,
    format: CopyFormat,
    chunks: impl IntoIterator<Item = C>,
    compression: Compression,
) -> (Vec<EncodedChunk>, PartSummary) {
    let mut scanner = TupleScanner::new(format);
    let mut hasher = blake3::Hasher::new();
    let mut raw_bytes = 0u64;
    let mut encoded = Vec::new();
    for (seq, raw) in chunks.into_iter().enumerate() {
        let raw = raw.as_ref();
        let before = scanner.rows();
        let used = scanner.scan(raw).expect("a sample chunk is part of a well-formed COPY stream");
        assert_eq!(used, raw.len(), "sample chunk {seq} of part {part} ends inside a tuple");
        hasher.update(raw);
        raw_bytes += raw.len() as u64;
        let compression = compression.for_format(format);
        encoded.push(encode_chunk(part, ChunkSeq(seq as u32), raw, scanner.rows() - before, compression));
    }
    let summary = PartSummary {
        part,
        rows: scanner.rows(),
        raw_bytes,
        blake3: *hasher.finalize().as_bytes(),
        digest: scanner.digest(),
    };
    (encoded, summary)
}

/// Writes an archive file at `path` of `catalog` and its `parts`' chunks, as [`encode_part`] returns them:
/// the parts' chunks interleaved (the first chunk of each part, then the second, as parallel workers would
/// send them), then their summaries. Panics on any error: a sample is written by the test that uses it.
pub fn write_file(
    path: &std::path::Path,
    catalog: &Catalog,
    compression: Compression,
    parts: &[(Vec<EncodedChunk>, PartSummary)],
) {
    use crate::archive::{ArchiveTarget, ArchiveWriter};
    let mut writer = ArchiveWriter::create(ArchiveTarget::File(path.to_path_buf()), catalog, compression)
        .expect("creating a sample archive");
    let most = parts.iter().map(|(chunks, _)| chunks.len()).max().unwrap_or(0);
    for k in 0..most {
        for chunk in parts.iter().filter_map(|(chunks, _)| chunks.get(k)) {
            writer.write_chunk(chunk).expect("writing a sample chunk");
        }
    }
    for (_, summary) in parts {
        writer.finish_part(*summary).expect("finishing a sample part");
    }
    writer.finish().expect("finishing a sample archive");
}
