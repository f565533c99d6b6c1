//! Throughput of the archive codec on COPY data shaped like a real table, so that defaults (the zstd
//! level, the chunk size) rest on numbers.
//!
//! Run `cargo bench --bench format` (add `-- --quick` for a pass of a minute or two). Before the timings
//! it prints, once, the compression ratio of each level at each chunk size.
//!
//! The data is an `orders`-like table, generated deterministically so every run and machine measures the
//! same bytes: `id int8` counting up, `created_at timestamp` moving forward by up to two seconds a row,
//! `customer text` from a small vocabulary, `amount numeric` (as text), `score float8` (NULL in one row
//! of twenty). The binary COPY stream comes from [`binary_stream`]; the text COPY stream holds the same
//! rows as PostgreSQL prints them.

use std::hint::black_box;
use std::io;
use std::ops::Range;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pgsafe::format::{
    ArchiveEncoder, Catalog, ChunkSeq, Compression, CopyFormat, Element, EncodedChunk, PartId, PartInfo, PartSummary,
    TupleScanner, binary_stream, encode_chunk, sample,
};

const MIB: usize = 1 << 20;
/// The chunk sizes a writer might cut at.
const CHUNK_SIZES: [usize; 2] = [MIB, 4 * MIB];
/// The stored forms to compare: no codec, zstd from its fastest negative level to a slow one, and columnar.
const LEVELS: [Compression; 6] = [
    Compression::None,
    Compression::Zstd { level: -1 },
    Compression::Zstd { level: 1 },
    Compression::Zstd { level: 3 },
    Compression::Zstd { level: 6 },
    Compression::Columnar { level: 1 },
];
/// Size of the COPY stream behind the whole-archive benchmark, and so of the generated table.
const ARCHIVE_BYTES: usize = 64 * MIB;
/// The part id every benchmark chunk belongs to.
const PART: PartId = PartId(1);

fn label(c: Compression) -> String {
    match c {
        Compression::None => "none".into(),
        // zstd's own name for the negative levels is `--fast=N`.
        Compression::Zstd { level } if level < 0 => format!("zstd-fast{}", -level),
        Compression::Zstd { level } => format!("zstd{level}"),
        Compression::Columnar { level } => format!("columnar{level}"),
    }
}

/// SplitMix64: enough randomness for plausible data, and the same sequence everywhere.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const CUSTOMERS: [&str; 16] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
    "peggy", "rupert", "sybil",
];

/// Microseconds between the Unix epoch and PostgreSQL's, 2000-01-01: binary timestamps count from the latter.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// One row of the generated table.
struct Row {
    id: i64,
    /// Microseconds since 2000-01-01, as a binary `timestamp` holds it.
    created_at: i64,
    customer: &'static str,
    amount: String,
    score: Option<f64>,
}

impl Row {
    fn binary_fields(&self) -> Vec<Option<Vec<u8>>> {
        vec![
            Some(self.id.to_be_bytes().to_vec()),
            Some(self.created_at.to_be_bytes().to_vec()),
            Some(self.customer.as_bytes().to_vec()),
            Some(self.amount.as_bytes().to_vec()),
            self.score.map(|s| s.to_be_bytes().to_vec()),
        ]
    }

    fn write_text(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let seconds = self.created_at.div_euclid(1_000_000);
        let micros = self.created_at.rem_euclid(1_000_000);
        let at = jiff::Timestamp::from_second(seconds + PG_EPOCH_US / 1_000_000).expect("a timestamp in range");
        let score = self.score.map_or_else(|| r"\N".to_string(), |s| s.to_string());
        writeln!(
            out,
            "{}\t{}.{micros:06}\t{}\t{}\t{score}",
            self.id,
            at.strftime("%Y-%m-%d %H:%M:%S"),
            self.customer,
            self.amount
        )
        .expect("writing to a Vec");
    }
}

/// The generated table as both COPY formats.
struct Table {
    binary: Vec<u8>,
    text: Vec<u8>,
}

impl Table {
    fn stream(&self, format: CopyFormat) -> &[u8] {
        match format {
            CopyFormat::Binary => &self.binary,
            CopyFormat::Text => &self.text,
        }
    }
}

/// Rows enough for an [`ARCHIVE_BYTES`] binary stream, built once for every benchmark.
fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rng = SplitMix(0x5eed);
        let mut created_at = 820_000_000_000_000; // early 2026
        let mut rows = Vec::new();
        let mut text = Vec::with_capacity(ARCHIVE_BYTES + ARCHIVE_BYTES / 2);
        // The signature, flags and extension length, and the trailer.
        let mut binary_len = 19 + 2;
        let mut id = 0;
        while binary_len < ARCHIVE_BYTES {
            id += 1;
            created_at += rng.below(2_000_000) as i64;
            let row = Row {
                id,
                created_at,
                customer: CUSTOMERS[rng.below(CUSTOMERS.len() as u64) as usize],
                amount: format!("{}.{:02}", rng.below(100_000), rng.below(100)),
                score: (rng.below(20) != 0).then(|| (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * 100.0),
            };
            let fields = row.binary_fields();
            binary_len += 2 + fields.iter().map(|f| 4 + f.as_ref().map_or(0, Vec::len)).sum::<usize>();
            row.write_text(&mut text);
            rows.push(fields);
        }
        Table { binary: binary_stream(&rows), text }
    })
}

/// A stream cut into chunks of at most `size` bytes, each ending on a tuple boundary, as the dump cuts it.
struct Chunks {
    ranges: Vec<(Range<usize>, u64)>,
    scanner: TupleScanner,
}

fn cut(stream: &[u8], format: CopyFormat, size: usize) -> Chunks {
    let mut scanner = TupleScanner::new(format);
    let mut ranges = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let before = scanner.rows();
        let used = scanner.scan(&stream[at..stream.len().min(at + size)]).expect("generated COPY is well formed");
        assert!(used > 0, "a tuple longer than the chunk size");
        ranges.push((at..at + used, scanner.rows() - before));
        at += used;
    }
    Chunks { ranges, scanner }
}

/// One chunk of each size from the start of each format's stream, encoded at every level.
struct Sample {
    format: CopyFormat,
    size: usize,
    raw: &'static [u8],
    rows: u64,
    encoded: Vec<(Compression, EncodedChunk)>,
}

fn samples() -> &'static [Sample] {
    static SAMPLES: OnceLock<Vec<Sample>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut samples = Vec::new();
        for format in [CopyFormat::Binary, CopyFormat::Text] {
            let stream = table().stream(format);
            for size in CHUNK_SIZES {
                let mut scanner = TupleScanner::new(format);
                let used = scanner.scan(&stream[..size]).expect("generated COPY is well formed");
                let (raw, rows) = (&stream[..used], scanner.rows());
                let encoded = LEVELS.map(|c| (c, encode_chunk(PART, ChunkSeq(0), raw, rows, c))).to_vec();
                samples.push(Sample { format, size, raw, rows, encoded });
            }
        }
        print_ratios(&samples);
        samples
    })
}

fn print_ratios(samples: &[Sample]) {
    eprintln!("\ncompression ratio (decoded bytes / stored payload bytes):");
    eprint!("{:<8}{:>7}", "format", "chunk");
    for c in LEVELS {
        eprint!("{:>12}", label(c));
    }
    eprintln!();
    for s in samples {
        eprint!("{:<8}{:>5}Mi", name(s.format), s.size / MIB);
        for (_, e) in &s.encoded {
            eprint!("{:>12.2}", s.raw.len() as f64 / e.payload.len() as f64);
        }
        eprintln!();
    }
    eprintln!();
}

fn name(format: CopyFormat) -> &'static str {
    match format {
        CopyFormat::Binary => "binary",
        CopyFormat::Text => "text",
    }
}

/// Settings for benchmarks whose one iteration takes milliseconds or more.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
}

fn bench_encode_chunk(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_chunk");
    configure(&mut group);
    for s in samples() {
        group.throughput(Throughput::Bytes(s.raw.len() as u64));
        for (compression, _) in &s.encoded {
            let id = BenchmarkId::new(format!("{}/{}MiB", name(s.format), s.size / MIB), label(*compression));
            group.bench_function(id, |b| {
                b.iter(|| encode_chunk(PART, ChunkSeq(0), black_box(s.raw), s.rows, *compression))
            });
        }
    }
    group.finish();
}

fn bench_decode_payload(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_payload");
    configure(&mut group);
    for s in samples() {
        group.throughput(Throughput::Bytes(s.raw.len() as u64));
        for (compression, e) in &s.encoded {
            let id = BenchmarkId::new(format!("{}/{}MiB", name(s.format), s.size / MIB), label(*compression));
            group.bench_function(id, |b| {
                b.iter(|| {
                    e.header
                        .decode_payload(black_box(&e.payload), 0, Element::Frame { index: 0 })
                        .expect("an encoded chunk decodes")
                })
            });
        }
    }
    group.finish();
}

/// The checksums every frame and part pays for, and the tuple walk behind row counts and digests.
fn bench_checksum_and_scan(c: &mut Criterion) {
    let binary = samples().iter().find(|s| s.format == CopyFormat::Binary && s.size == 4 * MIB);
    let text = samples().iter().find(|s| s.format == CopyFormat::Text && s.size == 4 * MIB);
    let (Some(binary), Some(text)) = (binary, text) else { unreachable!("samples hold every format and size") };

    let mut group = c.benchmark_group("checksum");
    group.throughput(Throughput::Bytes(binary.raw.len() as u64));
    group.bench_function("crc32fast/4MiB", |b| b.iter(|| crc32fast::hash(black_box(binary.raw))));
    group.bench_function("blake3/4MiB", |b| b.iter(|| blake3::hash(black_box(binary.raw))));
    group.finish();

    let mut group = c.benchmark_group("tuple_scanner");
    for s in [binary, text] {
        group.throughput(Throughput::Bytes(s.raw.len() as u64));
        group.bench_function(format!("{}/4MiB", name(s.format)), |b| {
            b.iter(|| {
                let mut scanner = TupleScanner::new(s.format);
                let used = scanner.scan(black_box(s.raw)).expect("generated COPY is well formed");
                (used, scanner.rows(), scanner.digest())
            })
        });
    }
    group.finish();
}

/// A whole archive of one binary part, chunked at 4 MiB, compressed and written to a sink: the writer's
/// path of a dump, less the database and the disk.
fn bench_archive(c: &mut Criterion) {
    let stream = &table().binary;
    let chunks = cut(stream, CopyFormat::Binary, 4 * MIB);
    let summary = PartSummary {
        part: PART,
        rows: chunks.scanner.rows(),
        raw_bytes: stream.len() as u64,
        blake3: *blake3::hash(stream).as_bytes(),
        digest: chunks.scanner.digest(),
    };
    let catalog = catalog(summary.rows, summary.raw_bytes);
    let write = |compression: Compression| -> u64 {
        let mut encoder = ArchiveEncoder::new(io::sink(), &catalog, compression).expect("writing to a sink");
        for (seq, (range, rows)) in chunks.ranges.iter().enumerate() {
            let chunk = encode_chunk(PART, ChunkSeq(seq as u32), &stream[range.clone()], *rows, compression);
            encoder.write_chunk(&chunk).expect("chunks in order");
        }
        encoder.finish_part(summary).expect("the summary matches the chunks");
        // Everything but the manifest and footer, which add a few KiB: a sink cannot count those.
        let written = encoder.offset();
        encoder.finish("2026-01-01T00:00:00Z".into()).expect("writing to a sink");
        written
    };
    let written = write(Compression::default());
    eprintln!(
        "archive of {} MiB of binary COPY in {} chunks with {}: {:.2} MiB up to the manifest (ratio {:.2})\n",
        stream.len() / MIB,
        chunks.ranges.len(),
        label(Compression::default()),
        written as f64 / MIB as f64,
        stream.len() as f64 / written as f64,
    );

    let mut group = c.benchmark_group("archive_encoder");
    configure(&mut group);
    group.throughput(Throughput::Bytes(stream.len() as u64));
    for compression in [Compression::None, Compression::default()] {
        group.bench_function(format!("64MiB/{}", label(compression)), |b| b.iter(|| write(compression)));
    }
    group.finish();
}

fn catalog(rows: u64, bytes: u64) -> Catalog {
    let columns = [
        ("id", "bigint"),
        ("created_at", "timestamp without time zone"),
        ("customer", "text"),
        ("amount", "numeric(12,2)"),
        ("score", "double precision"),
    ];
    let part = PartInfo {
        estimated_rows: rows,
        estimated_bytes: bytes,
        ..sample::part(PART, "orders", CopyFormat::Binary, &columns)
    };
    sample::catalog(vec![part])
}

criterion_group!(benches, bench_encode_chunk, bench_decode_payload, bench_checksum_and_scan, bench_archive);
criterion_main!(benches);
