//! Writes `format-spec/test-vectors/`: valid archives with their decoded content, and invalid ones with
//! the exact error each reader must give. Run `cargo run --example make_test_vectors` after a deliberate
//! format change; the `vectors` tests check the committed files.
//!
//! The encrypted vectors cannot come out the same twice (age wraps the data key with a fresh ephemeral
//! key, and every sealed payload has a random nonce), so the committed `valid-encrypted.pgsafe` and its
//! identity, `encrypted.identity.txt`, are kept when present and only checked; delete both to make new
//! ones. The invalid encrypted vectors are derived from the committed file, so they do come out the same.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::str::FromStr;

use age::secrecy::ExposeSecret;

use pgsafe::format::{
    ArchiveEncoder, ArchiveIndex, BINARY_SIGNATURE, Catalog, ChunkSeq, ColumnInfo, Compression, CopyFormat,
    FORMAT_MINOR, Footer, FrameHeader, FrameKind, FrameStream, Keyring, Manifest, PartId, PartInfo, PartSummary,
    Recipients, Sealing, ServerFacts, TableName, TupleScanner, binary_stream, encode_chunk,
};
use serde_json::json;

#[path = "../format-spec/test-vectors/hand_assembled.rs"]
mod hand_assembled;

const DIR: &str = "format-spec/test-vectors";

/// BLAKE3 of Appendix A's worked example, as the appendix prints it.
const APPENDIX_A_BLAKE3: &str = "5144c3232c3f035208c6aa90e2ea2fe2f699b03b3deea679682acb6414d7720f";

fn main() {
    let dir = Path::new(DIR);
    fs::create_dir_all(dir).expect("creating the vectors folder");
    let mut index = Vec::new();

    // The codec the default was when this vector was made (zstd level 1, format 1.0): the header's minor
    // version and the catalog frame follow the dump's compression, and the committed bytes must not
    // change with the default (columnar, 1.2, since 2026-12-02).
    let minimal = build(&[], Compression::Zstd { level: 1 });
    let two = build(&two_tables(), Compression::Zstd { level: 3 });
    let plain = build(&two_tables(), Compression::None);
    let (layout, _) = frames(&two);
    let chunk =
        |part: u32, seq: u32| layout.iter().find(|f| f.part == Some((part, seq))).expect("chunk exists").clone();
    let catalog_frame = layout[0].clone();
    let manifest_frame = layout[layout.len() - 1].clone();
    let c = chunk(0, 1);
    let columnar = build(&columnar_tables(), Compression::Columnar { level: 3 });
    let mut newer_minor = two.clone();
    newer_minor[10..12].copy_from_slice(&(FORMAT_MINOR + 1).to_le_bytes());
    reseal_header(&mut newer_minor);

    for (name, bytes, about) in [
        ("valid-minimal", &minimal, "no parts at all: header, catalog, manifest, footer"),
        (
            "valid-two-tables",
            &two,
            "binary part in 3 chunks interleaved with a text part, an empty text part and a zero-column binary part; zstd",
        ),
        ("valid-uncompressed", &plain, "the same content stored with codec 0 (none)"),
        (
            "valid-columnar",
            &columnar,
            "format 1.2: a binary part of 160 rows (ascending bigint, int4, a date, a one-byte flag, low-cardinality text, numeric, text with NULLs) in 2 chunks with codec 2 (columnar), the first holding the COPY header and the second the trailer, and a text part stored with zstd",
        ),
        (
            "valid-newer-minor",
            &newer_minor,
            "valid-two-tables with a minor version newer than this pgsafe's in the header (CRC recomputed): a newer minor whose frames use only codecs of 1.0 reads as usual",
        ),
    ] {
        write_valid(dir, name, bytes, about, &mut index);
    }
    // Assembled from the spec's tables, not by the writer: its expected content is what the assembler laid
    // down, not what pgsafe's readers make of it. The same assembler must reproduce Appendix A first.
    let example = hand_assembled::appendix_a();
    assert_eq!(blake3::hash(&example.bytes).to_hex().as_str(), APPENDIX_A_BLAKE3, "Appendix A reassembled");
    let hand = hand_assembled::hand_assembled();
    random_access(&hand.bytes).expect("the hand-assembled vector reads");
    sequential(&hand.bytes).expect("the hand-assembled vector reads");
    fs::write(dir.join("valid-hand-assembled.pgsafe"), &hand.bytes).expect("writing a vector");
    fs::write(
        dir.join("valid-hand-assembled.expected.json"),
        serde_json::to_string_pretty(&hand.expected).expect("json") + "\n",
    )
    .expect("writing");
    index.push(json!({
        "file": "valid-hand-assembled.pgsafe",
        "valid": true,
        "about": "laid down byte by byte from the spec's tables by hand_assembled.rs, not by pgsafe's writer: a binary part with a NULL stored with codec 0, a text part in a hand-made zstd frame (an RLE and a raw block), a text part with no rows",
        "expected": "valid-hand-assembled.expected.json",
    }));

    let mut invalid: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    let mut v = two.clone();
    v[0..8].copy_from_slice(b"PGDMP\x01\x0e\x00");
    invalid.push(("bad-magic", v, "a pg_dump custom-format file's first bytes"));
    invalid.push(("truncated-in-header", two[..20].to_vec(), "cut inside the file header"));
    invalid.push(("truncated-in-catalog", two[..catalog_frame.at + 40].to_vec(), "cut inside the catalog frame"));
    invalid.push(("truncated-in-chunk", two[..c.at + 10].to_vec(), "cut inside a chunk frame's header"));
    invalid.push(("truncated-in-manifest", two[..manifest_frame.at + 50].to_vec(), "cut inside the manifest frame"));
    invalid.push(("truncated-in-footer", two[..two.len() - 1].to_vec(), "the last byte missing"));
    let mut v = two.clone();
    v[c.at + FrameHeader::LEN + c.len / 2] ^= 0x01;
    invalid.push(("flipped-payload-byte", v, "one bit flipped in the payload of chunk 1 of part 0"));
    let mut v = two.clone();
    v[10] ^= 0x01;
    invalid.push(("flipped-header-byte", v, "one bit flipped in the file header's minor version"));
    let mut v = two.clone();
    v[c.at + 8] ^= 0x02;
    invalid.push(("flipped-frame-header-byte", v, "one bit flipped in the part id of a chunk frame header"));
    let mut v = two.clone();
    v[12] = 0x01;
    reseal_header(&mut v);
    invalid.push(("reserved-bit-set", v, "bit 0 of the header's reserved flags set, header CRC recomputed"));
    let mut v = two.clone();
    v[8..10].copy_from_slice(&2u16.to_le_bytes());
    reseal_header(&mut v);
    invalid.push(("unknown-major-version", v, "major version 2, header CRC recomputed"));
    let mut order: Vec<Frame> = layout[1..layout.len() - 1].to_vec();
    let i0 = order.iter().position(|f| f.part == Some((0, 0))).expect("chunk 0");
    let i1 = order.iter().position(|f| f.part == Some((0, 1))).expect("chunk 1");
    order.swap(i0, i1);
    invalid.push((
        "chunk-out-of-order",
        relayout(&two, &order, |_| {}),
        "chunks 0 and 1 of part 0 swapped in the file, manifest offsets consistent",
    ));
    let mut v = two.clone();
    let h = c.at;
    v[h + 20..h + 24].copy_from_slice(&(pgsafe::format::MAX_CHUNK_RAW + 1).to_le_bytes());
    let crc = crc32fast::hash(&v[h..h + 28]);
    v[h + 28..h + 32].copy_from_slice(&crc.to_le_bytes());
    invalid.push((
        "declared-size-too-large",
        v,
        "a chunk frame declaring one byte more than the 1 GiB + 1 MiB limit, frame header CRC recomputed",
    ));
    let mut v = two.clone();
    v.extend_from_slice(b"appended");
    invalid.push(("bytes-after-footer", v, "8 bytes appended after the footer"));
    invalid.push((
        "manifest-of-another-archive",
        relayout(&two, &layout[1..layout.len() - 1], |m| m.archive_id = "ffffffffffffffffffffffffffffffff".into()),
        "the manifest's archive id differs from the catalog's, manifest and footer otherwise consistent",
    ));

    let unknown = (FORMAT_MINOR + 1) as u8;
    let mut v = newer_minor.clone();
    set_codec(&mut v, c.at, unknown);
    invalid.push((
        "codec-of-newer-minor",
        v,
        "valid-newer-minor with codec 3, which 1.2 does not define, in chunk 1 of part 0 (frame header CRC recomputed): incompatible, not damaged",
    ));
    let (columnar_layout, _) = frames(&columnar);
    let cc = columnar_layout.iter().find(|f| f.part == Some((0, 1))).expect("chunk exists").clone();
    let mut v = columnar.clone();
    // Byte 8 of the columnar payload is the low byte of its prefix length (§ columnar.md 2).
    v[cc.at + FrameHeader::LEN + 8] ^= 0x04;
    recompute_crcs(&mut v, cc.at, cc.len);
    let crc = u32::from_le_bytes(v[cc.at + 24..cc.at + 28].try_into().expect("4"));
    let v = relayout(&v, &columnar_layout[1..columnar_layout.len() - 1], |m| {
        m.parts[0].chunks[1].crc32 = crc;
    });
    invalid.push((
        "columnar-prefix-length",
        v,
        "valid-columnar with the prefix length of chunk 1's columnar payload changed from 0 to 4, CRCs and manifest made to agree: the streams no longer add up",
    ));
    let mut v = two.clone();
    set_codec(&mut v, c.at, 2);
    invalid.push((
        "unknown-codec",
        v,
        "codec 2, which 1.0 does not define, in chunk 1 of part 0 of a 1.0 archive (frame header CRC recomputed): damaged",
    ));

    // Refused because this reader is too old for them, not because they are damaged (§3.2 H3, §4.3 F4).
    let incompatible = ["unknown-major-version", "codec-of-newer-minor"];
    for (name, bytes, about) in invalid {
        let file = format!("{name}.pgsafe");
        fs::write(dir.join(&file), &bytes).expect("writing a vector");
        let error = random_access(&bytes).expect_err("an invalid vector must fail").to_string();
        let stream_error = sequential(&bytes).expect_err("an invalid vector must fail").to_string();
        let mut entry =
            json!({ "file": file, "valid": false, "about": about, "error": error, "stream_error": stream_error });
        if incompatible.contains(&name) {
            entry["incompatible"] = json!(true);
        }
        index.push(entry);
    }
    encrypted_vectors(dir, &mut index);
    let text = serde_json::to_string_pretty(&json!({ "format": format!("1.{FORMAT_MINOR}"), "vectors": index }))
        .expect("json");
    fs::write(dir.join("vectors.json"), text + "\n").expect("writing vectors.json");
    println!("wrote {} vectors to {DIR}", index.len());
}

struct PartSpec {
    info: PartInfo,
    /// The part's COPY stream cut into chunks, each ending on a tuple boundary.
    chunks: Vec<Vec<u8>>,
}

fn two_tables() -> Vec<PartSpec> {
    let col = |name: &str, t: &str| ColumnInfo { name: name.into(), type_name: t.into() };
    let accounts: Vec<Vec<Option<Vec<u8>>>> = (1..=5i32)
        .map(|i| {
            let name = if i == 3 { None } else { Some(format!("account-{i}").into_bytes()) };
            vec![Some(i.to_be_bytes().to_vec()), name, Some((i64::from(i) * 100).to_be_bytes().to_vec())]
        })
        .collect();
    let cuts = tuple_cuts(&accounts, &[2, 4]);
    let empty_cols: Vec<Vec<Option<Vec<u8>>>> = vec![vec![], vec![]];
    vec![
        PartSpec {
            info: part(
                0,
                "public",
                "accounts",
                vec![col("id", "integer"), col("name", "text"), col("balance", "bigint")],
                CopyFormat::Binary,
            ),
            chunks: cuts,
        },
        PartSpec {
            info: part(1, "Odd Schema", "Ünïcode", vec![col("k", "text"), col("v", "regclass")], CopyFormat::Text),
            chunks: vec![b"a\tpg_class\n\\N\tpg_type\nz\xc3\xa9\\t\\n\tpublic.t\n".to_vec()],
        },
        PartSpec { info: part(2, "public", "empty", vec![col("x", "aclitem")], CopyFormat::Text), chunks: vec![] },
        PartSpec {
            info: part(3, "public", "no_columns", vec![], CopyFormat::Binary),
            chunks: vec![binary_stream(&empty_cols)],
        },
    ]
}

/// An analytical table whose binary chunks the columnar codec stores, and a text part it must not.
fn columnar_tables() -> Vec<PartSpec> {
    let col = |name: &str, t: &str| ColumnInfo { name: name.into(), type_name: t.into() };
    let modes = ["AIR", "RAIL", "SHIP", "TRUCK"];
    let rows: Vec<Vec<Option<Vec<u8>>>> = (0..160i64)
        .map(|i| {
            // numeric 12.34 * i in PostgreSQL's binary form: ndigits, weight, sign, dscale, base-10000 digits.
            let cents = 1234 * i;
            let mut numeric = Vec::new();
            for v in [2i16, 0, 0, 2, (cents / 100) as i16, ((cents % 100) * 100) as i16] {
                numeric.extend_from_slice(&v.to_be_bytes());
            }
            let comment = (i % 7 != 3).then(|| format!("row {i} of the columnar vector").into_bytes());
            vec![
                Some((1_000_000 + i * 4).to_be_bytes().to_vec()),
                Some(((i * 37) % 50 + 1).to_be_bytes()[4..].to_vec()),
                Some((9000 + (i % 30) as i32).to_be_bytes().to_vec()),
                Some(vec![b"NAR"[i as usize % 3]]),
                Some(modes[(i % 4) as usize].as_bytes().to_vec()),
                Some(numeric),
                comment,
            ]
        })
        .collect();
    vec![
        PartSpec {
            info: part(
                0,
                "public",
                "lineitem",
                vec![
                    col("orderkey", "bigint"),
                    col("quantity", "integer"),
                    col("shipdate", "date"),
                    col("flag", "\"char\""),
                    col("shipmode", "text"),
                    col("price", "numeric(15,2)"),
                    col("comment", "text"),
                ],
                CopyFormat::Binary,
            ),
            chunks: tuple_cuts(&rows, &[90]),
        },
        PartSpec {
            info: part(1, "public", "notes", vec![col("note", "text")], CopyFormat::Text),
            chunks: vec![b"first note\nsecond note\n".repeat(8)],
        },
    ]
}

fn part(id: u32, schema: &str, name: &str, columns: Vec<ColumnInfo>, format: CopyFormat) -> PartInfo {
    PartInfo {
        kind: pgsafe::format::PartKind::default(),
        id: PartId(id),
        table: TableName { schema: schema.into(), name: name.into() },
        columns,
        format,
        pages: None,
        filter: None,
        load_via: None,
        search_path: None,
        estimated_rows: 0,
        estimated_bytes: 0,
    }
}

/// Cuts a binary COPY stream of `rows` into chunks after the given numbers of rows.
fn tuple_cuts(rows: &[Vec<Option<Vec<u8>>>], after_rows: &[usize]) -> Vec<Vec<u8>> {
    let stream = binary_stream(rows);
    // A tuple's length: the stream of that one row, less the 19-byte header and the 2-byte trailer.
    let header = BINARY_SIGNATURE.len() + 8;
    let tuple_len = |r: &Vec<Option<Vec<u8>>>| binary_stream(std::slice::from_ref(r)).len() - header - 2;
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut end = header;
    for (i, row) in rows.iter().enumerate() {
        end += tuple_len(row);
        if after_rows.contains(&(i + 1)) {
            chunks.push(stream[start..end].to_vec());
            start = end;
        }
    }
    chunks.push(stream[start..].to_vec());
    chunks
}

fn catalog(parts: &[PartSpec]) -> Catalog {
    Catalog {
        archive_id: "0123456789abcdef0123456789abcdef".into(),
        created_at: "2026-11-21T10:00:00Z".into(),
        tool: "pgsafe test vectors".into(),
        server: ServerFacts {
            version: "15.18".into(),
            version_num: 150018,
            database: "vectors".into(),
            encoding: "UTF8".into(),
            integer_datetimes: true,
        },
        parts: parts.iter().map(|p| p.info.clone()).collect(),
        sequences: vec![],
        schema: None,
    }
}

/// Encodes the parts, interleaving their chunks round-robin as parallel workers would.
/// The committed identity of the encrypted vectors, made (and written) when there is none.
fn vector_identity(dir: &Path) -> age::x25519::Identity {
    let path = dir.join(IDENTITY_FILE);
    if let Ok(text) = fs::read_to_string(&path) {
        let line = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).expect("an identity in the file");
        return age::x25519::Identity::from_str(line).expect("a valid identity");
    }
    let id = age::x25519::Identity::generate();
    let text = format!(
        "# The identity of the encrypted test vectors: published on purpose, it protects nothing.\n# public key: {}\n{}\n",
        id.to_public(),
        id.to_string().expose_secret()
    );
    fs::write(&path, text).expect("writing the identity");
    id
}

const IDENTITY_FILE: &str = "encrypted.identity.txt";

/// `valid-encrypted` (kept when committed) and the invalid vectors derived from it.
fn encrypted_vectors(dir: &Path, index: &mut Vec<serde_json::Value>) {
    let id = vector_identity(dir);
    let path = dir.join("valid-encrypted.pgsafe");
    let bytes = match fs::read(&path) {
        Ok(bytes) if random_access_with(&bytes, Some(&id)).is_ok() => bytes,
        _ => {
            let mut recipients = Recipients::default();
            recipients.add(&id.to_public().to_string(), "the vectors' identity").expect("recipient");
            let sealing = Sealing::to(&recipients).expect("sealing");
            build_sealed(&two_tables(), Compression::Zstd { level: 3 }, Some(sealing))
        }
    };
    write_valid_with(
        dir,
        "valid-encrypted",
        &bytes,
        "valid-two-tables encrypted (format 1.1) to the X25519 recipient of encrypted.identity.txt; zstd",
        Some(&id),
        index,
    );
    let ix = ArchiveIndex::open_with(&bytes[..], &Keyring::of(Box::new(id.clone()))).expect("valid");
    let chunk = ix.all_chunks()[1].entry;
    let mut invalid: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    let mut v = bytes.clone();
    let at = chunk.offset as usize;
    v[at + FrameHeader::LEN + 30] ^= 0x01;
    recompute_crcs(&mut v, at, chunk.stored_len as usize);
    invalid.push((
        "encrypted-resealed-payload-byte",
        v,
        "valid-encrypted with one bit flipped in the sealed payload of its second chunk, the frame's CRCs recomputed: the seal does not authenticate (the manifest, which holds the CRC, also disagrees)",
    ));
    let mut v = bytes.clone();
    let key_len = u32::from_le_bytes(v[48..52].try_into().expect("4")) as usize;
    v[32 + FrameHeader::LEN + key_len - 3] ^= 0x01;
    recompute_crcs(&mut v, 32, key_len);
    invalid.push((
        "encrypted-key-frame-byte",
        v,
        "valid-encrypted with one bit flipped in the wrapped data key (the age payload), the key frame's CRCs recomputed",
    ));
    let mut v = bytes.clone();
    let (a, b) = (ix.all_chunks()[0].entry, ix.all_chunks()[2].entry);
    // The first and third chunk frames trade their part and sequence fields, CRCs recomputed.
    let (ha, hb) = (
        v[a.offset as usize + 8..a.offset as usize + 16].to_vec(),
        v[b.offset as usize + 8..b.offset as usize + 16].to_vec(),
    );
    v[a.offset as usize + 8..a.offset as usize + 16].copy_from_slice(&hb);
    v[b.offset as usize + 8..b.offset as usize + 16].copy_from_slice(&ha);
    recompute_crcs(&mut v, a.offset as usize, a.stored_len as usize);
    recompute_crcs(&mut v, b.offset as usize, b.stored_len as usize);
    invalid.push((
        "encrypted-chunks-renumbered",
        v,
        "valid-encrypted with the part and sequence fields of its first and third chunk frames exchanged, CRCs recomputed: each sealed payload is bound to its own place",
    ));
    for (name, bytes, about) in invalid {
        let file = format!("{name}.pgsafe");
        fs::write(dir.join(&file), &bytes).expect("writing a vector");
        let error = random_access_with(&bytes, Some(&id)).expect_err("an invalid vector must fail").to_string();
        let stream_error = sequential_with(&bytes, Some(&id)).expect_err("an invalid vector must fail").to_string();
        index.push(json!({ "file": file, "valid": false, "about": about, "error": error, "stream_error": stream_error, "identity": IDENTITY_FILE }));
    }
}

/// Rewrites the CRCs of the frame at `at` to match its payload of `len` bytes.
fn recompute_crcs(v: &mut [u8], at: usize, len: usize) {
    let payload = at + FrameHeader::LEN;
    let crc = crc32fast::hash(&v[payload..payload + len]);
    v[at + 24..at + 28].copy_from_slice(&crc.to_le_bytes());
    let crc = crc32fast::hash(&v[at..at + 28]);
    v[at + 28..at + 32].copy_from_slice(&crc.to_le_bytes());
}

fn build(parts: &[PartSpec], compression: Compression) -> Vec<u8> {
    build_sealed(parts, compression, None)
}

fn build_sealed(parts: &[PartSpec], compression: Compression, sealing: Option<Sealing>) -> Vec<u8> {
    let mut enc = ArchiveEncoder::with_sealing(Vec::new(), &catalog(parts), compression, sealing).expect("encoder");
    let most = parts.iter().map(|p| p.chunks.len()).max().unwrap_or(0);
    for seq in 0..most {
        for p in parts {
            if let Some(raw) = p.chunks.get(seq) {
                let rows = count_rows(p, seq);
                let compression = compression.for_format(p.info.format);
                enc.write_chunk(&encode_chunk(p.info.id, ChunkSeq(seq as u32), raw, rows, compression)).expect("chunk");
            }
        }
    }
    for p in parts {
        let whole: Vec<u8> = p.chunks.concat();
        let mut s = TupleScanner::new(p.info.format);
        assert_eq!(s.scan(&whole).expect("valid stream"), whole.len());
        enc.finish_part(PartSummary {
            part: p.info.id,
            rows: s.rows(),
            raw_bytes: whole.len() as u64,
            blake3: *blake3::hash(&whole).as_bytes(),
            digest: s.digest(),
        })
        .expect("part");
    }
    enc.finish("2026-11-21T10:00:01Z".into()).expect("finish").0
}

/// Rows in chunk `seq` of a part: rows up to its end less rows before it.
fn count_rows(p: &PartSpec, seq: usize) -> u64 {
    let before: Vec<u8> = p.chunks[..seq].concat();
    let upto: Vec<u8> = p.chunks[..=seq].concat();
    let rows = |b: &[u8]| {
        let mut s = TupleScanner::new(p.info.format);
        s.scan(b).expect("valid stream");
        s.rows()
    };
    rows(&upto) - rows(&before)
}

#[derive(Clone)]
struct Frame {
    at: usize,
    len: usize,
    part: Option<(u32, u32)>,
}

/// The frames of an archive in file order: catalog, chunks, manifest.
fn frames(bytes: &[u8]) -> (Vec<Frame>, Manifest) {
    let index = ArchiveIndex::open(bytes).expect("a valid archive");
    let mut out = Vec::new();
    let ch = FrameHeader::decode(
        bytes[32..64].try_into().expect("32"),
        index.header(),
        32,
        pgsafe::format::Element::Catalog,
    )
    .expect("catalog");
    out.push(Frame { at: 32, len: ch.stored_len as usize, part: None });
    for c in index.all_chunks() {
        out.push(Frame {
            at: c.entry.offset as usize,
            len: c.entry.stored_len as usize,
            part: Some((c.part.0, c.entry.seq.0)),
        });
    }
    let at = index.footer().manifest_offset as usize;
    let mh = FrameHeader::decode(
        bytes[at..at + 32].try_into().expect("32"),
        index.header(),
        at as u64,
        pgsafe::format::Element::Manifest,
    )
    .expect("manifest");
    out.push(Frame { at, len: mh.stored_len as usize, part: None });
    (out, index.manifest().clone())
}

/// Rewrites an archive with its chunk frames in `order`, and a manifest and footer that agree with the
/// new layout after `edit`.
fn relayout(bytes: &[u8], order: &[Frame], edit: impl FnOnce(&mut Manifest)) -> Vec<u8> {
    let (layout, mut manifest) = frames(bytes);
    let cat = &layout[0];
    let mut out = bytes[..cat.at + FrameHeader::LEN + cat.len].to_vec();
    let mut moved = BTreeMap::new();
    for f in order {
        moved.insert(f.part.expect("chunk"), out.len() as u64);
        out.extend_from_slice(&bytes[f.at..f.at + FrameHeader::LEN + f.len]);
    }
    for p in &mut manifest.parts {
        for c in &mut p.chunks {
            c.offset = moved[&(p.id.0, c.seq.0)];
        }
    }
    edit(&mut manifest);
    let json = serde_json::to_vec(&manifest).expect("json");
    let manifest_offset = out.len() as u64;
    let header = FrameHeader {
        kind: FrameKind::Manifest,
        codec: pgsafe::format::Codec::None,
        sealed: false,
        part: PartId(0),
        seq: ChunkSeq(0),
        stored_len: json.len() as u32,
        raw_len: json.len() as u32,
        payload_crc: crc32fast::hash(&json),
    };
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(&json);
    let footer =
        Footer { manifest_offset, chunk_count: order.len() as u64, manifest_blake3: *blake3::hash(&json).as_bytes() };
    out.extend_from_slice(&footer.encode());
    out
}

/// Sets the codec of the frame at `at` and recomputes its header's CRC.
fn set_codec(v: &mut [u8], at: usize, codec: u8) {
    v[at + 5] = codec;
    let crc = crc32fast::hash(&v[at..at + 28]);
    v[at + 28..at + 32].copy_from_slice(&crc.to_le_bytes());
}

fn reseal_header(v: &mut [u8]) {
    let crc = crc32fast::hash(&v[0..28]);
    v[28..32].copy_from_slice(&crc.to_le_bytes());
}

/// Opens with random access and checks every part completely.
fn random_access(bytes: &[u8]) -> Result<(), pgsafe::format::FormatError> {
    random_access_with(bytes, None)
}

fn keyring(identity: Option<&age::x25519::Identity>) -> Keyring {
    identity.map_or_else(Keyring::none, |id| Keyring::of(Box::new(id.clone())))
}

fn random_access_with(
    bytes: &[u8],
    identity: Option<&age::x25519::Identity>,
) -> Result<(), pgsafe::format::FormatError> {
    let index = ArchiveIndex::open_with(bytes, &keyring(identity))?;
    for p in &index.catalog().parts {
        index.check_part(p.id)?;
    }
    Ok(())
}

/// Reads front to back, decoding every chunk.
fn sequential(bytes: &[u8]) -> Result<(), pgsafe::format::FormatError> {
    sequential_with(bytes, None)
}

fn sequential_with(bytes: &[u8], identity: Option<&age::x25519::Identity>) -> Result<(), pgsafe::format::FormatError> {
    let mut stream = FrameStream::with_keyring(bytes, keyring(identity));
    while let Some(event) = stream.next_event()? {
        if let pgsafe::format::StreamEvent::Chunk { header, offset, stored } = event {
            header.open_payload(
                stream.data_key(),
                &stored,
                offset,
                pgsafe::format::Element::Chunk { part: header.part, seq: header.seq, table: None },
            )?;
        }
    }
    Ok(())
}

fn write_valid(dir: &Path, name: &str, bytes: &[u8], about: &str, index: &mut Vec<serde_json::Value>) {
    write_valid_with(dir, name, bytes, about, None, index)
}

fn write_valid_with(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    about: &str,
    identity: Option<&age::x25519::Identity>,
    index: &mut Vec<serde_json::Value>,
) {
    random_access_with(bytes, identity).expect("a valid vector must pass");
    sequential_with(bytes, identity).expect("a valid vector must pass");
    let ix = ArchiveIndex::open_with(bytes, &keyring(identity)).expect("valid");
    let mut streams = BTreeMap::new();
    for p in &ix.catalog().parts {
        let stream: Vec<u8> = ix.chunks(p.id).flat_map(|c| ix.read_chunk(&c).expect("chunk")).collect();
        streams.insert(p.id.0.to_string(), hex::encode(stream));
    }
    let expected = json!({ "catalog": ix.catalog(), "manifest": ix.manifest(), "streams": streams });
    let file = format!("{name}.pgsafe");
    let expected_file = format!("{name}.expected.json");
    fs::write(dir.join(&file), bytes).expect("writing a vector");
    fs::write(dir.join(&expected_file), serde_json::to_string_pretty(&expected).expect("json") + "\n")
        .expect("writing");
    let mut entry = json!({ "file": file, "valid": true, "about": about, "expected": expected_file });
    if identity.is_some() {
        entry["identity"] = json!(IDENTITY_FILE);
    }
    index.push(entry);
}
