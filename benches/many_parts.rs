//! Opening, verifying and inspecting an archive of many small parts: the shape of a database of many
//! tables (schema-per-tenant applications, years of daily partitions), where anything done per part that
//! looks at every other part makes the whole quadratic.
//!
//! Run `cargo bench --bench many_parts` (100,000 parts); `-- --parts N` for another count, `-- --jobs N`
//! for `verify`'s threads (default 2). It writes the archive with the project's own writer into a
//! temporary folder, then times each step once and prints the times.

use std::path::Path;
use std::time::{Duration, Instant};

use pgsafe::archive::{ArchiveReader, ArchiveTarget, ArchiveWriter};
use pgsafe::format::{
    Catalog, ChunkSeq, ColumnInfo, Compression, CopyFormat, PartId, PartInfo, PartSummary, ServerFacts, TableName,
    TupleScanner, binary_stream, encode_chunk,
};

fn main() {
    let mut parts: u32 = 100_000;
    let mut jobs: usize = 2;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} needs a whole number"))
        };
        match arg.as_str() {
            "--parts" => parts = value("--parts"),
            "--jobs" => jobs = value("--jobs") as usize,
            _ => {} // `cargo bench` adds `--bench`
        }
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("many-parts.pgsafe");

    let (built, took) = timed(|| build(&path, parts));
    println!("wrote {parts} parts, {} bytes, in {}", built, secs(took));
    let (reader, took) = timed(|| ArchiveReader::open(&path).expect("the archive opens"));
    println!("open     {}", secs(took));
    assert_eq!(reader.index().catalog().parts.len(), parts as usize);
    drop(reader);
    let (report, took) = timed(|| pgsafe::verify::verify_file(&path, jobs).expect("verify runs"));
    assert!(report.is_sound(), "{:?}", report.problems);
    println!("verify   {} (-j {jobs})", secs(took));
    let (report, took) = timed(|| pgsafe::inspect::inspect_file(&path).expect("inspect runs"));
    assert_eq!(report.totals.parts, parts as usize);
    println!("inspect  {}", secs(took));
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Writes `parts` tables of one part each, every part two rows of `(id int4, name text)` in one chunk.
fn build(path: &Path, parts: u32) -> u64 {
    let catalog = catalog(parts);
    let compression = Compression::default();
    let mut writer = ArchiveWriter::create(ArchiveTarget::File(path.to_path_buf()), &catalog, compression)
        .expect("creating the archive");
    for id in 0..parts {
        let rows: Vec<Vec<Option<Vec<u8>>>> = (0..2i32)
            .map(|r| vec![Some((id as i32 * 2 + r).to_be_bytes().to_vec()), Some(format!("row {r}").into_bytes())])
            .collect();
        let stream = binary_stream(&rows);
        let mut scanner = TupleScanner::new(CopyFormat::Binary);
        scanner.scan(&stream).expect("a well-formed stream");
        let chunk = encode_chunk(PartId(id), ChunkSeq(0), &stream, scanner.rows(), compression);
        writer.write_chunk(&chunk).expect("writing a chunk");
        writer
            .finish_part(PartSummary {
                part: PartId(id),
                rows: scanner.rows(),
                raw_bytes: stream.len() as u64,
                blake3: *blake3::hash(&stream).as_bytes(),
                digest: scanner.digest(),
            })
            .expect("finishing a part");
    }
    writer.finish().expect("finishing the archive").bytes
}

fn catalog(parts: u32) -> Catalog {
    let column = |name: &str, type_name: &str| ColumnInfo { name: name.into(), type_name: type_name.into() };
    Catalog {
        archive_id: "0123456789abcdef0123456789abcdef".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        tool: "pgsafe benches".into(),
        server: ServerFacts {
            version: "17.2".into(),
            version_num: 170_002,
            database: "bench".into(),
            encoding: "UTF8".into(),
            integer_datetimes: true,
        },
        parts: (0..parts)
            .map(|id| PartInfo {
                kind: pgsafe::format::PartKind::default(),
                id: PartId(id),
                table: TableName { schema: format!("tenant_{}", id / 100), name: format!("t{id}") },
                columns: vec![column("id", "integer"), column("name", "text")],
                format: CopyFormat::Binary,
                pages: None,
                filter: None,
                estimated_rows: 2,
                estimated_bytes: 64,
            })
            .collect(),
        sequences: vec![],
        schema: serde_json::Value::Null,
    }
}
