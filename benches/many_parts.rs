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
use pgsafe::format::{Catalog, Compression, CopyFormat, PartId, PartInfo, TableName, binary_stream, sample};

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
        let (chunks, summary) =
            sample::encode_part(PartId(id), CopyFormat::Binary, [binary_stream(&rows)], compression);
        for chunk in &chunks {
            writer.write_chunk(chunk).expect("writing a chunk");
        }
        writer.finish_part(summary).expect("finishing a part");
    }
    writer.finish().expect("finishing the archive").bytes
}

/// One part per table, a hundred tables to a tenant's schema, as schema-per-tenant applications have them.
fn catalog(parts: u32) -> Catalog {
    sample::catalog(
        (0..parts)
            .map(|id| {
                let name = format!("t{id}");
                PartInfo {
                    table: TableName { schema: format!("tenant_{}", id / 100), name: name.clone() },
                    estimated_rows: 2,
                    estimated_bytes: 64,
                    ..sample::part(PartId(id), &name, CopyFormat::Binary, &[("id", "integer"), ("name", "text")])
                }
            })
            .collect(),
    )
}
