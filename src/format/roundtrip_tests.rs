//! Whole-archive property tests: anything the encoder writes, both readers read back exactly.

use proptest::prelude::*;

use super::*;

type Rows = Vec<Vec<Option<Vec<u8>>>>;

/// Rows of one table: every row has the same number of fields.
fn rows() -> impl Strategy<Value = (usize, Rows)> {
    (0usize..4).prop_flat_map(|fields| {
        let row =
            proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)), fields);
        (Just(fields), proptest::collection::vec(row, 0..12))
    })
}

/// Cuts a stream into chunks on tuple boundaries, each at least `min` bytes where possible.
fn chunked(stream: &[u8], format: CopyFormat, min: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut scanner = TupleScanner::new(format);
    let mut start = 0;
    let mut pos = 0;
    while pos < stream.len() {
        // Take one more tuple (or the header and first tuple) at a time.
        let end = (pos + min).min(stream.len());
        let mut probe_end = end;
        let used = loop {
            let mut probe = scanner.clone();
            let used = probe.scan(&stream[pos..probe_end]).expect("valid stream");
            if used > 0 || probe_end == stream.len() {
                break used;
            }
            probe_end += 1;
        };
        scanner.scan(&stream[pos..pos + used]).expect("valid stream");
        pos += used;
        out.push(stream[start..pos].to_vec());
        start = pos;
    }
    out
}

fn encode(parts: &[(CopyFormat, usize, Vec<u8>)], min_chunk: usize, compression: Compression) -> (Vec<u8>, Catalog) {
    let infos = parts
        .iter()
        .enumerate()
        .map(|(i, (format, fields, _))| PartInfo {
            columns: (0..*fields).map(|c| ColumnInfo { name: format!("c{c}"), type_name: "bytea".into() }).collect(),
            ..sample::part(PartId(i as u32 * 3 + 1), &format!("t{}", i % 2), *format, &[])
        })
        .collect();
    let schema = crate::format::SchemaDocument::of(&serde_json::json!({"anything": [1, 2]})).unwrap();
    let catalog = Catalog { schema: Some(schema), ..sample::catalog(infos) };
    let mut enc = ArchiveEncoder::new(Vec::new(), &catalog, compression).unwrap();
    let encoded: Vec<_> = parts
        .iter()
        .zip(&catalog.parts)
        .map(|((format, _, stream), info)| {
            let chunks = chunked(stream, *format, min_chunk);
            sample::encode_part(info.id, *format, chunks, compression)
        })
        .collect();
    let most = encoded.iter().map(|(chunks, _)| chunks.len()).max().unwrap_or(0);
    // Interleave parts as parallel workers would.
    for seq in 0..most {
        for (chunks, _) in &encoded {
            if let Some(chunk) = chunks.get(seq) {
                enc.write_chunk(chunk).unwrap();
            }
        }
    }
    for (_, summary) in encoded {
        enc.finish_part(summary).unwrap();
    }
    let (bytes, _, len) = enc.finish("2026-01-01T00:00:01Z".into()).unwrap();
    assert_eq!(len, bytes.len() as u64);
    (bytes, catalog)
}

fn part_stream() -> impl Strategy<Value = (CopyFormat, usize, Vec<u8>)> {
    prop_oneof![
        rows().prop_map(|(fields, r)| (CopyFormat::Binary, fields, binary_stream(&r))),
        proptest::collection::vec("[^\n]{0,20}", 0..10).prop_map(|lines| {
            (CopyFormat::Text, 1, lines.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes())
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn archives_round_trip(parts in proptest::collection::vec(part_stream(), 0..5), min_chunk in 1usize..200,
                           level in prop_oneof![Just(None), (-2i32..5).prop_map(Some)]) {
        let compression = level.map_or(Compression::None, |level| Compression::Zstd { level });
        let (bytes, catalog) = encode(&parts, min_chunk, compression);

        let index = ArchiveIndex::open(&bytes[..]).unwrap();
        prop_assert_eq!(index.catalog(), &catalog);
        for (i, (_, _, stream)) in parts.iter().enumerate() {
            let id = catalog.parts[i].id;
            index.check_part(id).unwrap();
            let decoded: Vec<u8> = index.chunks(id).flat_map(|c| index.read_chunk(&c).unwrap()).collect();
            prop_assert_eq!(&decoded, stream);
        }

        let mut seq = FrameStream::new(&bytes[..]);
        let mut streams = vec![Vec::new(); parts.len()];
        let mut manifest = None;
        while let Some(event) = seq.next_event().unwrap() {
            match event {
                StreamEvent::Catalog(c) => prop_assert_eq!(&*c, &catalog),
                StreamEvent::Chunk { header, offset, stored } => {
                    let i = catalog.parts.iter().position(|p| p.id == header.part).unwrap();
                    streams[i].extend(header.decode_payload(&stored, offset, Element::Frame { index: 0 }).unwrap());
                }
                StreamEvent::Manifest(m) => manifest = Some(m),
            }
        }
        prop_assert_eq!(manifest.as_deref(), Some(index.manifest()));
        for (i, (_, _, stream)) in parts.iter().enumerate() {
            prop_assert_eq!(&streams[i], stream);
        }
        // Tables sum their parts.
        for t in &index.manifest().tables {
            let rows: u64 = t.parts.iter().map(|p| index.part(*p).unwrap().rows).sum();
            prop_assert_eq!(rows, t.rows);
        }
    }
}

#[test]
fn encoder_refuses_misuse() {
    let (_, catalog) = encode(&[(CopyFormat::Text, 1, b"a\nb\n".to_vec())], 1, Compression::None);
    let mut enc = ArchiveEncoder::new(Vec::new(), &catalog, Compression::None).unwrap();
    let id = catalog.parts[0].id;
    let out_of_order = encode_chunk(id, ChunkSeq(1), b"a\n", 1, Compression::None);
    assert!(enc.write_chunk(&out_of_order).unwrap_err().to_string().contains("out of order"));
    let unknown = encode_chunk(PartId(999), ChunkSeq(0), b"a\n", 1, Compression::None);
    assert!(enc.write_chunk(&unknown).unwrap_err().to_string().contains("unknown part"));
    enc.write_chunk(&encode_chunk(id, ChunkSeq(0), b"a\n", 1, Compression::None)).unwrap();
    let wrong = PartSummary { part: id, rows: 2, raw_bytes: 4, blake3: [0; 32], digest: ContentDigest::default() };
    assert!(enc.finish_part(wrong).unwrap_err().to_string().contains("chunks hold 1 rows"));
    let err = enc.finish(String::new()).unwrap_err();
    assert!(err.to_string().contains("never finished"), "{err}");
}
