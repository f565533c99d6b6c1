//! Lays archives down byte by byte from the tables of `format-spec/archive-v1.md`, with none of pgsafe's
//! own encoders, so that the test vectors check the specification and not only the code that wrote them.
//! Each field is written where its table puts it; the checksums and hashes come from the crates the
//! specification names (CRC-32: crc32fast, §6.1; BLAKE3: blake3, §6.2; XXH3-128: xxhash-rust, §12); the
//! one zstd payload is a frame laid down by hand from RFC 8878.
//!
//! Included by `examples/make_test_vectors.rs`, which writes `valid-hand-assembled.pgsafe` and its
//! expected content, and by `tests/it/vectors.rs`, which checks that the committed vector is exactly these
//! bytes and that Appendix A's worked example comes out as the appendix prints it.

use serde_json::{Value, json};

/// An archive as the specification describes it, before it is laid down.
struct Archive {
    archive_id: &'static str,
    created_at: &'static str,
    tool: &'static str,
    /// `version`, `version_num`, `database`, `encoding`, `integer_datetimes` (§9.2).
    server: (&'static str, u32, &'static str, &'static str, bool),
    finished_at: &'static str,
    /// In id order, which is the order of their chunk frames in the file.
    parts: Vec<Part>,
}

/// One part, whose stream is stored in one chunk (or none, when the stream is empty).
struct Part {
    id: u32,
    schema: &'static str,
    table: &'static str,
    /// Name and type of each column (§9.4).
    columns: &'static [(&'static str, &'static str)],
    binary: bool,
    /// Each row's row bytes (§11.5): a binary tuple from its field count on, or a text line without `\n`.
    rows: Vec<Vec<u8>>,
    /// The chunk's payload stored with codec 1 (zstd); `None` stores the stream itself with codec 0.
    zstd: Option<Vec<u8>>,
}

impl Part {
    /// The part's COPY stream (§11.3, §11.4).
    fn stream(&self) -> Vec<u8> {
        let mut s = Vec::new();
        if self.binary {
            s.extend_from_slice(b"PGCOPY\n\xff\r\n\0"); // signature
            s.extend_from_slice(&0u32.to_be_bytes()); // flags
            s.extend_from_slice(&0u32.to_be_bytes()); // header extension length
            for row in &self.rows {
                s.extend_from_slice(row);
            }
            s.extend_from_slice(&(-1i16).to_be_bytes()); // trailer
        } else {
            for row in &self.rows {
                s.extend_from_slice(row);
                s.push(b'\n');
            }
        }
        s
    }

    /// The content digest (§12): the sum modulo 2^128 of each row's XXH3-128, as 32 lowercase hex digits.
    fn digest(&self) -> u128 {
        self.rows.iter().fold(0u128, |sum, row| sum.wrapping_add(xxhash_rust::xxh3::xxh3_128(row)))
    }
}

/// An assembled archive and what a reader must decode it to (the `expected` file of §15).
pub struct Assembled {
    pub bytes: Vec<u8>,
    pub expected: Value,
}

/// The vector `valid-hand-assembled.pgsafe`: a binary part of two rows (one NULL) stored with codec 0, a
/// text part stored with codec 1 in a hand-made zstd frame, and a text part with no rows and so no chunk.
pub fn hand_assembled() -> Assembled {
    let int4 = |v: i32| [&1i16.to_be_bytes()[..], &4i32.to_be_bytes(), &v.to_be_bytes()].concat();
    let null = [&1i16.to_be_bytes()[..], &(-1i32).to_be_bytes()].concat();
    assemble(&Archive {
        archive_id: "00112233445566778899aabbccddeeff",
        created_at: "2026-12-01T12:00:00Z",
        tool: "format-spec/test-vectors/hand_assembled.rs",
        server: ("17.2", 170002, "hand", "UTF8", true),
        finished_at: "2026-12-01T12:00:01Z",
        parts: vec![
            Part {
                id: 0,
                schema: "public",
                table: "t",
                columns: &[("id", "integer")],
                binary: true,
                rows: vec![int4(42), null],
                zstd: None,
            },
            Part {
                id: 1,
                schema: "public",
                table: "notes",
                columns: &[("note", "text")],
                binary: false,
                rows: vec![vec![b'a'; 200]],
                zstd: Some(zstd_rle_then_raw(b'a', 200, b"\n")),
            },
            Part {
                id: 2,
                schema: "public",
                table: "empty",
                columns: &[("x", "text")],
                binary: false,
                rows: vec![],
                zstd: None,
            },
        ],
    })
}

/// Appendix A's worked example: one table `public.t`, one row, everything stored with codec 0.
pub fn appendix_a() -> Assembled {
    assemble(&Archive {
        archive_id: "0123456789abcdef0123456789abcdef",
        created_at: "2026-11-21T10:00:00Z",
        tool: "pgsafe 0.1.0",
        server: ("16.4", 160004, "app", "UTF8", true),
        finished_at: "2026-11-21T10:00:01Z",
        parts: vec![Part {
            id: 0,
            schema: "public",
            table: "t",
            columns: &[("id", "integer")],
            binary: true,
            rows: vec![[&1i16.to_be_bytes()[..], &4i32.to_be_bytes(), &42i32.to_be_bytes()].concat()],
            zstd: None,
        }],
    })
}

/// One zstd frame (RFC 8878 §3.1.1) that decodes to `n` copies of `byte` and then `tail`: a frame header
/// with `Single_Segment_Flag` set and a one-byte `Frame_Content_Size`, an RLE block, and a last raw block.
fn zstd_rle_then_raw(byte: u8, n: u32, tail: &[u8]) -> Vec<u8> {
    let content = n as usize + tail.len();
    assert!(content < 256, "a one-byte Frame_Content_Size holds up to 255");
    let block_header = |last: bool, block_type: u32, size: u32| {
        let v = u32::from(last) | (block_type << 1) | (size << 3);
        v.to_le_bytes()[..3].to_vec()
    };
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd]; // magic
    f.push(0b0010_0000); // Frame_Header_Descriptor: Single_Segment_Flag; no checksum, no dictionary
    f.push(content as u8); // Frame_Content_Size, which is also the window size (§4.2's bound: at most 2^10)
    f.extend(block_header(false, 1, n)); // RLE_Block: one byte, repeated Block_Size times
    f.push(byte);
    f.extend(block_header(true, 0, tail.len() as u32)); // Raw_Block, the last
    f.extend_from_slice(tail);
    f
}

/// A JSON string, escaped as RFC 8259 says.
fn s(v: &str) -> String {
    serde_json::to_string(v).expect("a string serializes")
}

fn table_json(schema: &str, name: &str) -> String {
    format!(r#"{{"schema":{},"name":{}}}"#, s(schema), s(name))
}

/// The catalog document (§9), compact, members in the order of §9's tables.
fn catalog_json(a: &Archive) -> String {
    let (version, version_num, database, encoding, integer_datetimes) = a.server;
    let parts: Vec<String> = a
        .parts
        .iter()
        .map(|p| {
            let columns: Vec<String> =
                p.columns.iter().map(|(n, t)| format!(r#"{{"name":{},"type":{}}}"#, s(n), s(t))).collect();
            format!(
                r#"{{"id":{},"table":{},"columns":[{}],"format":"{}","estimated_rows":0,"estimated_bytes":0}}"#,
                p.id,
                table_json(p.schema, p.table),
                columns.join(","),
                if p.binary { "binary" } else { "text" }
            )
        })
        .collect();
    format!(
        r#"{{"archive_id":{},"created_at":{},"tool":{},"server":{{"version":{},"version_num":{version_num},"database":{},"encoding":{},"integer_datetimes":{integer_datetimes}}},"parts":[{}]}}"#,
        s(a.archive_id),
        s(a.created_at),
        s(a.tool),
        s(version),
        s(database),
        s(encoding),
        parts.join(",")
    )
}

/// A frame (§4.1): the 32-byte frame header, then the stored payload.
fn frame(out: &mut Vec<u8>, kind: u8, codec: u8, part: u32, seq: u32, stored: &[u8], raw_len: usize) {
    let start = out.len();
    out.extend_from_slice(b"PGSF"); // 0..4 magic
    out.push(kind); // 4
    out.push(codec); // 5
    out.extend_from_slice(&0u16.to_le_bytes()); // 6..8 flags
    out.extend_from_slice(&part.to_le_bytes()); // 8..12
    out.extend_from_slice(&seq.to_le_bytes()); // 12..16
    out.extend_from_slice(&(stored.len() as u32).to_le_bytes()); // 16..20 stored_len
    out.extend_from_slice(&(raw_len as u32).to_le_bytes()); // 20..24 raw_len
    out.extend_from_slice(&crc32fast::hash(stored).to_le_bytes()); // 24..28 payload_crc
    let header_crc = crc32fast::hash(&out[start..start + 28]);
    out.extend_from_slice(&header_crc.to_le_bytes()); // 28..32 header_crc
    out.extend_from_slice(stored);
}

/// Lays the archive down: header (§3), catalog frame (§4, §9), one chunk frame per non-empty part (§11),
/// manifest frame (§10), footer (§5).
fn assemble(a: &Archive) -> Assembled {
    let mut out = Vec::new();
    out.extend_from_slice(b"\x89PGSAFE\n"); // 0..8 magic
    out.extend_from_slice(&1u16.to_le_bytes()); // 8..10 major
    out.extend_from_slice(&0u16.to_le_bytes()); // 10..12 minor
    out.extend_from_slice(&0u32.to_le_bytes()); // 12..16 flags
    out.extend_from_slice(&[0; 12]); // 16..28 reserved
    let header_crc = crc32fast::hash(&out[0..28]);
    out.extend_from_slice(&header_crc.to_le_bytes()); // 28..32 header_crc

    let catalog = catalog_json(a);
    frame(&mut out, 1, 0, 0, 0, catalog.as_bytes(), catalog.len());

    let mut records = Vec::new();
    let mut streams = serde_json::Map::new();
    let mut chunk_count = 0u64;
    for p in &a.parts {
        let stream = p.stream();
        let digest = format!("{:032x}", p.digest());
        let blake3 = blake3::hash(&stream).to_hex().to_string();
        let mut chunks = Vec::new();
        let mut stored_bytes = 0;
        // A text part with no rows has an empty stream, and so no chunk (§11.1).
        if !stream.is_empty() {
            let offset = out.len();
            let (codec, stored) = match &p.zstd {
                Some(z) => (1, z.as_slice()),
                None => (0, stream.as_slice()),
            };
            frame(&mut out, 2, codec, p.id, 0, stored, stream.len());
            chunk_count += 1;
            stored_bytes = 32 + stored.len();
            chunks.push(format!(
                r#"{{"seq":0,"offset":{offset},"stored_len":{},"raw_len":{},"rows":{},"crc32":{}}}"#,
                stored.len(),
                stream.len(),
                p.rows.len(),
                crc32fast::hash(stored)
            ));
        }
        records.push(format!(
            r#"{{"id":{},"rows":{},"raw_bytes":{},"stored_bytes":{stored_bytes},"blake3":"{blake3}","digest":"{digest}","chunks":[{}]}}"#,
            p.id,
            p.rows.len(),
            stream.len(),
            chunks.join(",")
        ));
        streams.insert(p.id.to_string(), Value::String(hex(&stream)));
    }
    // One table record per table, ordered by schema then name (§10.1); here each table has one part.
    let mut tables: Vec<&Part> = a.parts.iter().collect();
    tables.sort_by_key(|p| (p.schema.as_bytes(), p.table.as_bytes()));
    let tables: Vec<String> = tables
        .iter()
        .map(|p| {
            format!(
                r#"{{"table":{},"rows":{},"digest":"{:032x}","parts":[{}]}}"#,
                table_json(p.schema, p.table),
                p.rows.len(),
                p.digest(),
                p.id
            )
        })
        .collect();
    let manifest = format!(
        r#"{{"archive_id":{},"catalog_blake3":"{}","complete":true,"finished_at":{},"parts":[{}],"tables":[{}]}}"#,
        s(a.archive_id),
        blake3::hash(catalog.as_bytes()).to_hex(),
        s(a.finished_at),
        records.join(","),
        tables.join(",")
    );
    let manifest_offset = out.len() as u64;
    frame(&mut out, 3, 0, 0, 0, manifest.as_bytes(), manifest.len());

    let footer_at = out.len();
    out.extend_from_slice(&manifest_offset.to_le_bytes()); // 0..8
    out.extend_from_slice(&chunk_count.to_le_bytes()); // 8..16
    out.extend_from_slice(blake3::hash(manifest.as_bytes()).as_bytes()); // 16..48 manifest_blake3
    out.extend_from_slice(&0u32.to_le_bytes()); // 48..52 flags
    let footer_crc = crc32fast::hash(&out[footer_at..footer_at + 52]);
    out.extend_from_slice(&footer_crc.to_le_bytes()); // 52..56 footer_crc
    out.extend_from_slice(b"\nPGSEND\x89"); // 56..64 magic

    let parse = |json: &str| serde_json::from_str::<Value>(json).expect("the assembled JSON parses");
    let expected = json!({ "catalog": parse(&catalog), "manifest": parse(&manifest), "streams": streams });
    Assembled { bytes: out, expected }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
