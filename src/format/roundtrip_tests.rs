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
    encode_sealed(parts, min_chunk, compression, None)
}

fn encode_sealed(
    parts: &[(CopyFormat, usize, Vec<u8>)],
    min_chunk: usize,
    compression: Compression,
    sealing: Option<Sealing>,
) -> (Vec<u8>, Catalog) {
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
    let mut enc = ArchiveEncoder::with_sealing(Vec::new(), &catalog, compression, sealing.clone()).unwrap();
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
                // In an encrypted archive, every other chunk comes sealed by its producer, as a dump's
                // workers seal them; the encoder seals the others.
                match &sealing {
                    Some(s) if seq % 2 == 0 => enc.write_chunk(&seal_chunk(chunk.clone(), s)).unwrap(),
                    _ => enc.write_chunk(chunk).unwrap(),
                }
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

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        (-2i32..5).prop_map(|level| Compression::Zstd { level }),
        (-2i32..5).prop_map(|level| Compression::Columnar { level }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn archives_round_trip(parts in proptest::collection::vec(part_stream(), 0..5), min_chunk in 1usize..200,
                           compression in compression(), encrypted in any::<bool>()) {
        let id = age::x25519::Identity::generate();
        let sealing = encrypted.then(|| Sealing::to(&recipients_of(&id)).unwrap());
        let (bytes, catalog) = encode_sealed(&parts, min_chunk, compression, sealing);
        let keyring = || if encrypted { Keyring::of(Box::new(id.clone())) } else { Keyring::none() };

        let index = ArchiveIndex::open_with(&bytes[..], &keyring()).unwrap();
        prop_assert_eq!(index.header().encrypted, encrypted);
        // The header names the oldest minor that defines what the archive may hold.
        let minor = match compression { Compression::Columnar { .. } => 2, _ => u16::from(encrypted) };
        prop_assert_eq!(index.header().minor, minor);
        if encrypted {
            let layout = check_structure(&bytes).unwrap();
            prop_assert_eq!(layout.chunks, index.footer().chunk_count);
            prop_assert_eq!(layout.recipient_kinds, vec!["X25519".to_string()]);
        }
        prop_assert_eq!(index.catalog(), &catalog);
        for (i, (_, _, stream)) in parts.iter().enumerate() {
            let id = catalog.parts[i].id;
            index.check_part(id).unwrap();
            let decoded: Vec<u8> = index.chunks(id).flat_map(|c| index.read_chunk(&c).unwrap()).collect();
            prop_assert_eq!(&decoded, stream);
        }

        let mut seq = FrameStream::with_keyring(&bytes[..], keyring());
        let mut streams = vec![Vec::new(); parts.len()];
        let mut manifest = None;
        while let Some(event) = seq.next_event().unwrap() {
            match event {
                StreamEvent::Catalog(c) => prop_assert_eq!(&*c, &catalog),
                StreamEvent::Chunk { header, offset, stored } => {
                    let i = catalog.parts.iter().position(|p| p.id == header.part).unwrap();
                    let raw = header.open_payload(seq.data_key(), &stored, offset, Element::Frame { index: 0 }).unwrap();
                    streams[i].extend(raw);
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
fn a_sealed_chunk_goes_only_into_an_encrypted_archive() {
    let (_, catalog) = encode(&[(CopyFormat::Text, 1, b"a\nb\n".to_vec())], 1, Compression::None);
    let id = catalog.parts[0].id;
    let sealing = Sealing::to(&recipients_of(&age::x25519::Identity::generate())).unwrap();
    let sealed = seal_chunk(encode_chunk(id, ChunkSeq(0), b"a\n", 1, Compression::None), &sealing);
    let mut plain = ArchiveEncoder::new(Vec::new(), &catalog, Compression::None).unwrap();
    assert!(plain.write_chunk(&sealed).unwrap_err().to_string().contains("header and payload disagree"));
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

fn recipients_of(id: &age::x25519::Identity) -> Recipients {
    let mut r = Recipients::default();
    r.add(&id.to_public().to_string(), "test").unwrap();
    r
}

/// A small encrypted archive: one text part in three chunks of the same size, and the identity that
/// opens it.
fn sealed_sample() -> (Vec<u8>, age::x25519::Identity) {
    let id = age::x25519::Identity::generate();
    let sealing = Sealing::to(&recipients_of(&id)).unwrap();
    let (bytes, _) =
        encode_sealed(&[(CopyFormat::Text, 1, b"aaaa\nbbbb\ncccc\n".to_vec())], 5, Compression::None, Some(sealing));
    (bytes, id)
}

fn read_everything(bytes: &[u8], id: &age::x25519::Identity) -> Result<(), FormatError> {
    let index = ArchiveIndex::open_with(bytes, &Keyring::of(Box::new(id.clone())))?;
    for p in &index.catalog().parts {
        index.check_part(p.id)?;
    }
    let mut stream = FrameStream::with_keyring(bytes, Keyring::of(Box::new(id.clone())));
    while let Some(event) = stream.next_event()? {
        if let StreamEvent::Chunk { header, offset, stored } = event {
            header.open_payload(stream.data_key(), &stored, offset, Element::Frame { index: 0 })?;
        }
    }
    Ok(())
}

#[test]
fn an_encrypted_archive_holds_no_plaintext_and_needs_its_identity() {
    let (bytes, id) = sealed_sample();
    read_everything(&bytes, &id).unwrap();
    for needle in [&b"aaaa"[..], b"public", b"archive_id", b"rows"] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{:?} in the file", String::from_utf8_lossy(needle));
    }
    let err = ArchiveIndex::open(&bytes[..]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the archive is encrypted to 1 recipient (X25519): reading its content needs an identity of one of its recipients"
    );
    let err = FrameStream::new(&bytes[..]).next_event().unwrap_err();
    assert!(matches!(err, FormatError::NeedsIdentity { .. }), "{err}");
    let other = Keyring::of(Box::new(age::x25519::Identity::generate()));
    let err = ArchiveIndex::open_with(&bytes[..], &other).unwrap_err();
    assert_eq!(
        err.to_string(),
        "none of the identities given opens the archive, which is encrypted to 1 recipient (X25519)"
    );
}

#[test]
fn any_flipped_byte_of_an_encrypted_archive_is_an_error() {
    let (bytes, id) = sealed_sample();
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        assert!(read_everything(&bad, &id).is_err(), "byte {i} flipped went unnoticed with the identity");
        assert!(check_structure(&bad).is_err(), "byte {i} flipped went unnoticed without the identity");
    }
    // Read through a small window, as a bucket's object is read in ranges: the same layout, the same damage.
    let whole = check_structure(&bytes).unwrap();
    for window in [1, 33, 100, 4096] {
        let layout = super::crypt::check_structure_in(&bytes, window).unwrap();
        assert_eq!((layout.chunks, layout.parts_with_chunks), (whole.chunks, whole.parts_with_chunks), "{window}");
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(super::crypt::check_structure_in(&bad, window).is_err(), "byte {i}, window {window}");
        }
    }
    for cut in [1, 10, 64, bytes.len() / 2, bytes.len() - 70] {
        assert!(read_everything(&bytes[..bytes.len() - cut], &id).is_err(), "cut by {cut}");
        assert!(check_structure(&bytes[..bytes.len() - cut]).is_err(), "cut by {cut}");
    }
}

/// The first error a sequential read meets, decoding each chunk as it goes by, as a restore from a pipe
/// would: before the manifest, which would tell too.
fn first_sequential_error(bytes: &[u8], id: &age::x25519::Identity) -> FormatError {
    let mut stream = FrameStream::with_keyring(bytes, Keyring::of(Box::new(id.clone())));
    loop {
        match stream.next_event() {
            Ok(Some(StreamEvent::Chunk { header, offset, stored })) => {
                if let Err(e) = header.open_payload(stream.data_key(), &stored, offset, Element::Frame { index: 0 }) {
                    return e;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the change went unnoticed"),
            Err(e) => return e,
        }
    }
}

/// An attacker who can write the file swaps two chunk frames' payloads and recomputes every CRC: only
/// the seal, which binds a payload to its part and sequence, can tell.
#[test]
fn a_chunk_moved_to_another_place_does_not_open() {
    let (bytes, id) = sealed_sample();
    let index = ArchiveIndex::open_with(&bytes[..], &Keyring::of(Box::new(id.clone()))).unwrap();
    let chunks = index.all_chunks();
    assert_eq!(chunks.len(), 3);
    let (a, b) = (chunks[0].entry, chunks[1].entry);
    assert_eq!(a.stored_len, b.stored_len);
    let len = a.stored_len as usize;
    let (pa, pb) = (a.offset as usize + FrameHeader::LEN, b.offset as usize + FrameHeader::LEN);
    let mut swapped = bytes.clone();
    swapped[pa..pa + len].copy_from_slice(&bytes[pb..pb + len]);
    swapped[pb..pb + len].copy_from_slice(&bytes[pa..pa + len]);
    // The CRCs travel with the payloads, so every CRC still checks.
    for at in [a.offset as usize, b.offset as usize] {
        let mut h: [u8; FrameHeader::LEN] = swapped[at..at + FrameHeader::LEN].try_into().unwrap();
        h[24..28].copy_from_slice(&crc32(&swapped[at + FrameHeader::LEN..at + FrameHeader::LEN + len]).to_le_bytes());
        let crc = crc32(&h[0..28]);
        h[28..32].copy_from_slice(&crc.to_le_bytes());
        swapped[at..at + FrameHeader::LEN].copy_from_slice(&h);
    }
    let err = first_sequential_error(&swapped, &id);
    assert!(err.to_string().contains("does not authenticate"), "{err}");
    assert!(read_everything(&swapped, &id).is_err());

    // A chunk of another archive, encrypted to the same recipient, put in this one's place: another key.
    let sealing = Sealing::to(&recipients_of(&id)).unwrap();
    let (other, _) =
        encode_sealed(&[(CopyFormat::Text, 1, b"aaaa\nbbbb\ncccc\n".to_vec())], 5, Compression::None, Some(sealing));
    let theirs = ArchiveIndex::open_with(&other[..], &Keyring::of(Box::new(id.clone()))).unwrap().all_chunks()[0].entry;
    let mut mixed = bytes.clone();
    let (at, from) = (a.offset as usize, theirs.offset as usize);
    mixed[at..at + FrameHeader::LEN + len].copy_from_slice(&other[from..from + FrameHeader::LEN + len]);
    // Its CRC is in the (sealed) manifest, so even a reader that went by CRCs alone would refuse it.
    let err = read_everything(&mixed, &id).unwrap_err();
    assert!(err.to_string().contains("differs from the manifest's entry"), "{err}");
    let err = first_sequential_error(&mixed, &id);
    assert!(err.to_string().contains("does not authenticate"), "{err}");
}

/// A columnar archive: binary chunks with tuples go columnar (sealed too, the codec applies before
/// sealing), text chunks stay row-wise, and both readers give back the exact streams.
#[test]
fn binary_parts_go_columnar_and_text_parts_stay_row_wise() {
    let rows: Rows = (0..400i64)
        .map(|i| vec![Some((i * 2).to_be_bytes().to_vec()), Some(format!("mode {}", i % 3).into_bytes())])
        .collect();
    let text = b"aaaa\nbbbb\ncccc\n".repeat(50);
    let parts = [(CopyFormat::Binary, 2, binary_stream(&rows)), (CopyFormat::Text, 1, text)];
    for encrypted in [false, true] {
        let id = age::x25519::Identity::generate();
        let sealing = encrypted.then(|| Sealing::to(&recipients_of(&id)).unwrap());
        let (bytes, catalog) = encode_sealed(&parts, 2000, Compression::Columnar { level: 1 }, sealing);
        let keyring = if encrypted { Keyring::of(Box::new(id.clone())) } else { Keyring::none() };
        let index = ArchiveIndex::open_with(&bytes[..], &keyring).unwrap();
        assert_eq!((index.header().minor, index.header().encrypted), (2, encrypted));
        for (i, (format, _, stream)) in parts.iter().enumerate() {
            let part = catalog.parts[i].id;
            index.check_part(part).unwrap();
            let mut decoded = Vec::new();
            for c in index.chunks(part) {
                let expected = if *format == CopyFormat::Binary { Codec::Columnar } else { Codec::Zstd };
                assert_eq!(index.chunk_codec(&c).unwrap(), expected, "part {i} chunk {}", c.entry.seq);
                decoded.extend(index.read_chunk(&c).unwrap());
            }
            assert_eq!(&decoded, stream);
        }
    }
}

/// A columnar chunk in a text part, or in an archive that says format 1.0, is damage: its writer could
/// not have written it.
#[test]
fn a_columnar_chunk_outside_a_binary_part_of_a_1_2_archive_is_refused() {
    let rows: Rows = (0..100i64).map(|i| vec![Some(i.to_be_bytes().to_vec())]).collect();
    let stream = binary_stream(&rows);
    let chunk = encode_chunk(PartId(1), ChunkSeq(0), &stream, 100, Compression::Columnar { level: 1 });
    assert_eq!(chunk.header.codec, Codec::Columnar);
    let header = chunk.header.encode();
    let old = FileHeader::default();
    let err = FrameHeader::decode(&header, &old, 0, Element::Frame { index: 0 }).unwrap_err();
    assert_eq!(
        err.to_string(),
        "frame 0 at offset 5: codec 2 (columnar) is defined by format 1.2, but the archive is format 1.0"
    );

    // The catalog says part 1 is text: the writer refuses nothing (it writes what it is given), the
    // readers refuse the chunk.
    let info = sample::part(PartId(1), "t", CopyFormat::Text, &[("c", "bytea")]);
    let catalog = sample::catalog(vec![info]);
    let mut enc = ArchiveEncoder::new(Vec::new(), &catalog, Compression::Columnar { level: 1 }).unwrap();
    enc.write_chunk(&chunk).unwrap();
    let mut scanner = TupleScanner::new(CopyFormat::Text);
    scanner.scan(&stream).unwrap();
    enc.finish_part(PartSummary {
        part: PartId(1),
        rows: 100,
        raw_bytes: stream.len() as u64,
        blake3: *blake3::hash(&stream).as_bytes(),
        digest: scanner.digest(),
    })
    .unwrap();
    let (bytes, _, _) = enc.finish("2026-01-01T00:00:01Z".into()).unwrap();
    let index = ArchiveIndex::open(&bytes[..]).unwrap();
    let err = index.check_part(PartId(1)).unwrap_err().to_string();
    assert!(err.ends_with("codec 2 (columnar) in a part of text format: it is only for binary parts"), "{err}");
    let mut seq = FrameStream::new(&bytes[..]);
    let err = loop {
        match seq.next_event() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the sequential reader read a columnar chunk of a text part"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(err.ends_with("codec 2 (columnar) in a part of text format: it is only for binary parts"), "{err}");
}
