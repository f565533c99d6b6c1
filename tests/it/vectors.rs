//! Every test vector in `format-spec/test-vectors/` reads as `vectors.json` says: valid ones decode to
//! their expected content, invalid ones fail with their exact error, in both readers.

use std::fs;
use std::path::{Path, PathBuf};

use pgsafe::format::{ArchiveIndex, Element, FormatError, FrameStream, StreamEvent};
use serde::Deserialize;

#[derive(Deserialize)]
struct VectorIndex {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    file: String,
    valid: bool,
    expected: Option<String>,
    error: Option<String>,
    stream_error: Option<String>,
}

pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec/test-vectors")
}

fn vectors() -> Vec<Vector> {
    let text = fs::read_to_string(vectors_dir().join("vectors.json")).expect("reading vectors.json");
    serde_json::from_str::<VectorIndex>(&text).expect("parsing vectors.json").vectors
}

/// Opens with random access and checks every part completely, as `verify` does.
pub fn random_access(bytes: &[u8]) -> Result<(), FormatError> {
    let index = ArchiveIndex::open(bytes)?;
    for p in &index.catalog().parts {
        index.check_part(p.id)?;
    }
    Ok(())
}

/// Reads front to back as from a pipe, decoding every chunk.
pub fn sequential(bytes: &[u8]) -> Result<(), FormatError> {
    let mut stream = FrameStream::new(bytes);
    while let Some(event) = stream.next_event()? {
        if let StreamEvent::Chunk { header, offset, stored } = event {
            header.decode_payload(
                &stored,
                offset,
                Element::Chunk { part: header.part, seq: header.seq, table: None },
            )?;
        }
    }
    Ok(())
}

#[test]
fn there_are_valid_and_invalid_vectors() {
    let v = vectors();
    assert!(v.iter().filter(|v| v.valid).count() >= 3);
    assert!(v.iter().filter(|v| !v.valid).count() >= 12);
}

#[test]
fn invalid_vectors_fail_with_their_documented_errors() {
    for v in vectors().iter().filter(|v| !v.valid) {
        let bytes = fs::read(vectors_dir().join(&v.file)).expect("reading a vector");
        let err = random_access(&bytes).expect_err(&v.file).to_string();
        assert_eq!(Some(&err), v.error.as_ref(), "random access, {}", v.file);
        let err = sequential(&bytes).expect_err(&v.file).to_string();
        assert_eq!(Some(&err), v.stream_error.as_ref(), "sequential, {}", v.file);
    }
}

#[test]
fn valid_vectors_decode_to_their_expected_content() {
    for v in vectors().iter().filter(|v| v.valid) {
        let bytes = fs::read(vectors_dir().join(&v.file)).expect("reading a vector");
        random_access(&bytes).unwrap_or_else(|e| panic!("{}: {e}", v.file));
        sequential(&bytes).unwrap_or_else(|e| panic!("{}: {e}", v.file));

        let expected_path = vectors_dir().join(v.expected.as_ref().expect("valid vectors name their content"));
        let expected: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(expected_path).expect("reading")).expect("parsing");
        let index = ArchiveIndex::open(&bytes[..]).unwrap();
        assert_eq!(serde_json::to_value(index.catalog()).unwrap(), expected["catalog"], "{}", v.file);
        assert_eq!(serde_json::to_value(index.manifest()).unwrap(), expected["manifest"], "{}", v.file);
        for p in &index.catalog().parts {
            let stream: Vec<u8> = index.chunks(p.id).flat_map(|c| index.read_chunk(&c).unwrap()).collect();
            assert_eq!(hex::encode(stream), expected["streams"][p.id.0.to_string()], "{} part {}", v.file, p.id);
        }
    }
}
