//! Arbitrary bytes through both archive readers: neither panics, and they agree on what an archive holds.
//!
//! [`ArchiveIndex`] checks the structure when it opens and each part on demand; [`FrameStream`] checks the
//! same structure front to back, as a restore from a pipe does. A restore from a file and one from a pipe
//! must not disagree: an archive that passes every random-access check must stream to the same catalog,
//! manifest and chunk bytes, and an archive that streams to the end must open for random access.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use pgsafe::format::{ArchiveIndex, Catalog, Element, FormatError, FrameHeader, FrameStream, Manifest, StreamEvent};

fuzz_target!(|data: &[u8]| {
    let random = random_access(data);
    let sequential = sequential(data);
    match (&random, &sequential) {
        (Some(r), Ok(s)) => {
            assert_eq!(s.catalog, r.catalog, "the readers decode different catalogs");
            assert_eq!(s.manifest, r.manifest, "the readers decode different manifests");
            for (offset, (header, stored)) in &s.chunks {
                let streamed = header.decode_payload(stored, *offset, Element::File);
                if let Some(raw) = r.chunks.get(offset) {
                    let streamed = streamed.expect("a chunk the index decodes fails to decode from the stream");
                    assert_eq!(&streamed, raw, "chunk at offset {offset} decodes differently from the stream");
                }
            }
        }
        (Some(r), Err(e)) => {
            assert!(!r.every_part_checks, "the index checks every part but the stream fails: {e}");
        }
        (None, Ok(_)) => panic!("the stream reads to the end but the index does not open"),
        (None, Err(_)) => {}
    }
});

/// What the random-access reader made of the bytes.
struct RandomAccess {
    catalog: Catalog,
    manifest: Manifest,
    /// `check_part` passed for every part of the catalog.
    every_part_checks: bool,
    /// The decoded chunks that `read_chunk` accepted, by frame offset.
    chunks: BTreeMap<u64, Vec<u8>>,
}

fn random_access(data: &[u8]) -> Option<RandomAccess> {
    let index = ArchiveIndex::open(data).ok()?;
    let mut every_part_checks = true;
    for part in &index.catalog().parts {
        let checked = index.check_part(part.id).is_ok();
        every_part_checks &= checked;
        for chunk in index.chunks(part.id) {
            let crc_ok = index.check_chunk(&chunk).is_ok();
            let read = index.read_chunk(&chunk);
            if checked {
                assert!(read.is_ok(), "part {} checks but its chunk {} does not read", part.id, chunk.entry.seq);
            }
            if !crc_ok {
                assert!(read.is_err(), "chunk {} of part {} reads despite a bad CRC", chunk.entry.seq, part.id);
            }
        }
    }
    let mut chunks = BTreeMap::new();
    for chunk in index.all_chunks() {
        if let Ok(raw) = index.read_chunk(&chunk) {
            assert_eq!(
                raw.len(),
                chunk.entry.raw_len as usize,
                "read_chunk returned a size the manifest does not declare"
            );
            chunks.insert(chunk.entry.offset, raw);
        }
    }
    Some(RandomAccess {
        catalog: index.catalog().clone(),
        manifest: index.manifest().clone(),
        every_part_checks,
        chunks,
    })
}

/// What the sequential reader made of the bytes, when it read them to the end.
struct Sequential {
    catalog: Catalog,
    manifest: Manifest,
    /// Every chunk frame by offset: its header and stored payload.
    chunks: BTreeMap<u64, (FrameHeader, Vec<u8>)>,
}

fn sequential(data: &[u8]) -> Result<Sequential, FormatError> {
    let mut stream = FrameStream::new(data);
    let mut catalog = None;
    let mut chunks = BTreeMap::new();
    loop {
        match stream.next_event()? {
            Some(StreamEvent::Catalog(c)) => {
                assert!(catalog.is_none(), "the stream yields a second catalog");
                catalog = Some(*c);
            }
            Some(StreamEvent::Chunk { header, offset, stored }) => {
                assert!(catalog.is_some(), "the stream yields a chunk before the catalog");
                assert_eq!(stored.len(), header.stored_len as usize);
                assert!(chunks.insert(offset, (header, stored)).is_none(), "two chunks at offset {offset}");
            }
            Some(StreamEvent::Manifest(m)) => {
                assert!(stream.next_event()?.is_none(), "the stream goes on after the manifest");
                assert_eq!(stream.offset(), data.len() as u64, "the stream ends before the input does");
                let catalog = catalog.expect("the stream yields the manifest before the catalog");
                return Ok(Sequential { catalog, manifest: *m, chunks });
            }
            None => panic!("the stream ends without a manifest and without an error"),
        }
    }
}
