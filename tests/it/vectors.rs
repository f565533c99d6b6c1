//! Every test vector in `format-spec/test-vectors/` reads as `vectors.json` says: valid ones decode to
//! their expected content, invalid ones fail with their exact error, in both readers.

use std::fs;
use std::path::{Path, PathBuf};

use pgsafe::ErrorKind;
use pgsafe::format::{ArchiveIndex, Element, FormatError, FrameStream, Keyring, StreamEvent};
use serde::Deserialize;

#[derive(Deserialize)]
struct VectorIndex {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
pub struct Vector {
    pub file: String,
    pub valid: bool,
    expected: Option<String>,
    error: Option<String>,
    stream_error: Option<String>,
    /// Refused as an archive this reader is too old for, not as a damaged one.
    #[serde(default)]
    pub incompatible: bool,
    /// The identity file (in the vectors' folder) that opens an encrypted vector.
    identity: Option<String>,
}

impl Vector {
    /// The keyring that opens this vector: its identity's, or none.
    pub fn keyring(&self) -> Keyring {
        self.identity.as_ref().map_or_else(Keyring::none, |file| identity(file))
    }
}

/// The identity file that opens the vector `file`, when it is encrypted.
pub fn identity_of(file: &str) -> Option<PathBuf> {
    vectors().into_iter().find(|v| v.file == file).and_then(|v| v.identity).map(|i| vectors_dir().join(i))
}

/// The keyring of an identity file in the vectors' folder.
pub fn identity(file: &str) -> Keyring {
    let path = vectors_dir().join(file);
    Keyring::parse(&fs::read_to_string(&path).expect("reading an identity"), file).expect("parsing an identity")
}

#[path = "../../format-spec/test-vectors/hand_assembled.rs"]
mod hand_assembled;

pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec/test-vectors")
}

pub fn vectors() -> Vec<Vector> {
    let text = fs::read_to_string(vectors_dir().join("vectors.json")).expect("reading vectors.json");
    serde_json::from_str::<VectorIndex>(&text).expect("parsing vectors.json").vectors
}

/// Opens with random access and checks every part completely, as `verify` does.
pub fn random_access(bytes: &[u8]) -> Result<(), FormatError> {
    random_access_with(bytes, &Keyring::none())
}

/// [`random_access`] with the identities of `keyring`.
pub fn random_access_with(bytes: &[u8], keyring: &Keyring) -> Result<(), FormatError> {
    let index = ArchiveIndex::open_with(bytes, keyring)?;
    for p in &index.catalog().parts {
        index.check_part(p.id)?;
    }
    Ok(())
}

/// Reads front to back as from a pipe, decoding every chunk.
pub fn sequential(bytes: &[u8]) -> Result<(), FormatError> {
    sequential_with(bytes, Keyring::none())
}

/// [`sequential`] with the identities of `keyring`.
pub fn sequential_with(bytes: &[u8], keyring: Keyring) -> Result<(), FormatError> {
    let mut stream = FrameStream::with_keyring(bytes, keyring);
    while let Some(event) = stream.next_event()? {
        if let StreamEvent::Chunk { header, offset, stored } = event {
            header.open_payload(
                stream.data_key(),
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
        let kind = if v.incompatible { ErrorKind::IncompatibleArchive } else { ErrorKind::CorruptArchive };
        let err = random_access_with(&bytes, &v.keyring()).expect_err(&v.file);
        assert_eq!(Some(&err.to_string()), v.error.as_ref(), "random access, {}", v.file);
        assert_eq!(pgsafe::Error::from(err).kind(), kind, "random access, {}", v.file);
        let err = sequential_with(&bytes, v.keyring()).expect_err(&v.file);
        assert_eq!(Some(&err.to_string()), v.stream_error.as_ref(), "sequential, {}", v.file);
        assert_eq!(pgsafe::Error::from(err).kind(), kind, "sequential, {}", v.file);
    }
}

/// Defect: a codec that a newer minor version defines was reported as damage. The same frame is damage
/// in an archive of this reader's own minor version.
#[test]
fn an_unknown_codec_is_incompatible_only_in_an_archive_of_a_newer_minor() {
    let index = vectors();
    let incompatible = |file: &str| index.iter().find(|v| v.file == file).map(|v| (v.valid, v.incompatible));
    assert_eq!(incompatible("codec-of-newer-minor.pgsafe"), Some((false, true)));
    assert_eq!(incompatible("unknown-codec.pgsafe"), Some((false, false)));
    assert_eq!(incompatible("valid-newer-minor.pgsafe"), Some((true, false)));

    let bytes = fs::read(vectors_dir().join("codec-of-newer-minor.pgsafe")).unwrap();
    // Only the frame that uses the codec is refused: the archive opens, and its other parts read.
    let archive = ArchiveIndex::open(&bytes[..]).unwrap();
    assert_eq!(archive.header().minor, pgsafe::format::FORMAT_MINOR + 1);
    for p in &archive.catalog().parts[1..] {
        archive.check_part(p.id).unwrap();
    }
    let err = pgsafe::Error::from(archive.check_part(archive.catalog().parts[0].id).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::IncompatibleArchive);
    assert!(err.to_string().contains("format version 1.3, this pgsafe reads format version 1.2"), "{err}");
    assert!(err.hint().unwrap().contains("upgrade pgsafe"), "{:?}", err.hint());
}

#[test]
fn valid_vectors_decode_to_their_expected_content() {
    for v in vectors().iter().filter(|v| v.valid) {
        let bytes = fs::read(vectors_dir().join(&v.file)).expect("reading a vector");
        random_access_with(&bytes, &v.keyring()).unwrap_or_else(|e| panic!("{}: {e}", v.file));
        sequential_with(&bytes, v.keyring()).unwrap_or_else(|e| panic!("{}: {e}", v.file));

        let expected_path = vectors_dir().join(v.expected.as_ref().expect("valid vectors name their content"));
        let expected: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(expected_path).expect("reading")).expect("parsing");
        let index = ArchiveIndex::open_with(&bytes[..], &v.keyring()).unwrap();
        assert_eq!(serde_json::to_value(index.catalog()).unwrap(), expected["catalog"], "{}", v.file);
        assert_eq!(serde_json::to_value(index.manifest()).unwrap(), expected["manifest"], "{}", v.file);
        for p in &index.catalog().parts {
            let stream: Vec<u8> = index.chunks(p.id).flat_map(|c| index.read_chunk(&c).unwrap()).collect();
            assert_eq!(hex::encode(stream), expected["streams"][p.id.0.to_string()], "{} part {}", v.file, p.id);
        }
    }
}

/// The vectors must check the specification, not only themselves: one is laid down field by field from
/// the spec's tables by `format-spec/test-vectors/hand_assembled.rs`, with none of pgsafe's encoders, and
/// the valid-vector test above reads it to the content the assembler states. The same assembler must
/// reproduce the spec's worked example (Appendix A) exactly.
#[test]
fn the_hand_assembled_vector_is_laid_down_from_the_spec_tables() {
    let hand = hand_assembled::hand_assembled();
    let committed = fs::read(vectors_dir().join("valid-hand-assembled.pgsafe")).unwrap();
    assert!(committed == hand.bytes, "valid-hand-assembled.pgsafe is not what hand_assembled.rs lays down");
    let expected: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(vectors_dir().join("valid-hand-assembled.expected.json")).unwrap())
            .unwrap();
    assert_eq!(expected, hand.expected);
    assert!(vectors().iter().any(|v| v.valid && v.file == "valid-hand-assembled.pgsafe"));
    random_access(&hand.bytes).unwrap();
    sequential(&hand.bytes).unwrap();

    let example = hand_assembled::appendix_a();
    assert_eq!(example.bytes.len(), 1172, "Appendix A: a complete format 1.0 archive of 1172 bytes");
    assert_eq!(
        blake3::hash(&example.bytes).to_hex().as_str(),
        "5144c3232c3f035208c6aa90e2ea2fe2f699b03b3deea679682acb6414d7720f",
        "Appendix A's BLAKE3 of the whole file"
    );
    random_access(&example.bytes).unwrap();
}

/// The encrypted vector holds the same content as the plain one it was made from, needs its identity,
/// and shows no table name, column name or row of it.
#[test]
fn the_encrypted_vector_is_the_two_tables_vector_sealed() {
    let plain = fs::read(vectors_dir().join("valid-two-tables.pgsafe")).unwrap();
    let sealed = fs::read(vectors_dir().join("valid-encrypted.pgsafe")).unwrap();
    let plain = ArchiveIndex::open(&plain[..]).unwrap();
    let keyring = identity("encrypted.identity.txt");
    let index = ArchiveIndex::open_with(&sealed[..], &keyring).unwrap();
    assert_eq!((index.header().minor, index.header().encrypted), (1, true));
    assert_eq!(index.recipient_kinds(), ["X25519".to_string()]);
    assert_eq!(index.catalog(), plain.catalog());
    for p in &plain.catalog().parts {
        let a: Vec<u8> = plain.chunks(p.id).flat_map(|c| plain.read_chunk(&c).unwrap()).collect();
        let b: Vec<u8> = index.chunks(p.id).flat_map(|c| index.read_chunk(&c).unwrap()).collect();
        assert_eq!(a, b, "part {}", p.id);
    }
    for needle in ["accounts", "public", "CREATE", "archive_id"] {
        assert!(!sealed.windows(needle.len()).any(|w| w == needle.as_bytes()), "`{needle}` in the encrypted vector");
    }
    let err = pgsafe::Error::from(ArchiveIndex::open(&sealed[..]).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::Identity);
    let layout = pgsafe::format::check_structure(&sealed).unwrap();
    assert_eq!(layout.chunks, index.footer().chunk_count);
}

/// `valid-columnar` exercises what it says: format 1.2, its binary part's chunks stored with codec 2 (the
/// first holding the COPY header, the last the trailer), its text part's with zstd.
#[test]
fn the_columnar_vector_holds_columnar_chunks_in_its_binary_part_only() {
    use pgsafe::format::{BINARY_SIGNATURE, Codec, CopyFormat, FrameHeader};
    let bytes = fs::read(vectors_dir().join("valid-columnar.pgsafe")).unwrap();
    let index = ArchiveIndex::open(&bytes[..]).unwrap();
    assert_eq!((index.header().major, index.header().minor), (1, 2));
    let mut transforms = std::collections::BTreeSet::new();
    for p in &index.catalog().parts {
        let chunks: Vec<_> = index.chunks(p.id).collect();
        assert!(!chunks.is_empty());
        for c in &chunks {
            let at = c.entry.offset as usize;
            let codec = index.chunk_codec(c).unwrap();
            let expected = if p.format == CopyFormat::Binary { Codec::Columnar } else { Codec::Zstd };
            assert_eq!(codec, expected, "part {} chunk {}", p.id, c.entry.seq);
            if codec == Codec::Columnar {
                // The column table (columnar.md §3) names every transform: plain, planes or delta planes,
                // and dictionary all appear.
                let payload = &bytes[at + FrameHeader::LEN..];
                let columns = usize::from(u16::from_le_bytes([payload[2], payload[3]]));
                transforms.extend((0..columns).map(|k| payload[16 + 5 * k]));
            }
        }
        if p.format == CopyFormat::Binary {
            assert!(chunks.len() >= 2);
            assert!(index.read_chunk(&chunks[0]).unwrap().starts_with(BINARY_SIGNATURE));
            assert!(index.read_chunk(chunks.last().unwrap()).unwrap().ends_with(&[0xff, 0xff]));
        }
    }
    assert!(transforms.contains(&0) && transforms.contains(&3), "{transforms:?}");
    assert!(transforms.contains(&1) || transforms.contains(&2), "{transforms:?}");
}
