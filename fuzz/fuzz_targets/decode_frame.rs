//! Frame headers and payloads from arbitrary bytes, and chunks round-tripped through `encode_chunk`.
//!
//! A frame header that decodes re-encodes to the same 32 bytes (no field is dropped or normalized), and
//! a payload that decodes has exactly the declared size, so the declared size really bounds allocation.
//! Random bytes rarely carry a matching CRC, so the bytes after the header are also decoded under a
//! resealed header (the input's codec and declared size, the right CRCs): that puts hostile zstd input,
//! decompression bombs included, in front of the decoder. Any bytes encoded as a chunk, with or without
//! zstd, decode back to themselves.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pgsafe::format::{
    ChunkSeq, Codec, Compression, Element, FORMAT_MAJOR, FORMAT_MINOR, FileHeader, FormatError, FrameHeader,
    FrameKind, MAX_CHUNK_RAW, PartId, encode_chunk,
};

/// Largest input used as a chunk payload: round trips of bigger ones find nothing new, only run slower.
const MAX_ROUND_TRIP: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    decode(data);
    decode_resealed(data);
    if !data.is_empty() && data.len() <= MAX_ROUND_TRIP {
        round_trip(data);
    }
});

fn decode(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<{ FrameHeader::LEN }>() else {
        return;
    };
    // The archive's minor version comes from the input's length, so that unknown codecs meet both the
    // reader's own minor (damage) and a newer one (incompatible); every third input is read as a frame of
    // an encrypted archive, whose sealed payloads need a key this target does not have.
    let archive =
        FileHeader { major: FORMAT_MAJOR, minor: FORMAT_MINOR + (data.len() % 2) as u16, encrypted: data.len() % 3 == 0 };
    let h = match FrameHeader::decode(head, &archive, 0, Element::Frame { index: 0 }) {
        Ok(h) => h,
        Err(FormatError::NewerCodec { codec, minor, .. }) => {
            assert!(minor > FORMAT_MINOR, "codec {codec} called newer in an archive of format 1.{minor}");
            return;
        }
        Err(_) => return,
    };
    assert_eq!(&h.encode(), head, "a decoded frame header re-encodes differently");
    assert!(h.raw_len <= h.kind.max_raw_len(), "declared size {} passes the {:?} limit", h.raw_len, h.kind);
    let Some(stored) = rest.get(..h.stored_len as usize) else {
        return;
    };
    let Ok(raw) = h.decode_payload(stored, 0, Element::Frame { index: 0 }) else {
        return;
    };
    assert_eq!(raw.len(), h.raw_len as usize, "decoded size differs from the declared size");
    if h.codec == Codec::None {
        assert_eq!(raw, stored, "a plain payload decodes to other bytes");
    }
}

/// Decodes the bytes after the first 32 as the payload of a chunk frame whose codec and declared size
/// come from the input's header bytes, and whose CRCs are computed to match.
fn decode_resealed(data: &[u8]) {
    let Some((head, stored)) = data.split_first_chunk::<{ FrameHeader::LEN }>() else {
        return;
    };
    let codec = [Codec::None, Codec::Zstd, Codec::Columnar][usize::from(head[5] % 3)];
    let raw_len = u32::from_le_bytes([head[20], head[21], head[22], head[23]]);
    // Columnar tuples of no fields are 2 bytes each whatever the payload, so a few bytes may rightly
    // declare, and decode to, a whole gigabyte: keep its declared size within the memory limits.
    let raw_len = if codec == Codec::Columnar { raw_len % (1 << 20) } else { raw_len % (MAX_CHUNK_RAW + 1) };
    let Ok(stored_len) = u32::try_from(stored.len()) else {
        return;
    };
    let h = FrameHeader {
        kind: FrameKind::Chunk,
        codec,
        sealed: false,
        part: PartId(0),
        seq: ChunkSeq(0),
        stored_len,
        raw_len,
        payload_crc: crc32fast::hash(stored),
    };
    // Only headers a reader would accept: the size checks stay in force.
    let archive = FileHeader { minor: FORMAT_MINOR, ..FileHeader::default() };
    let Ok(h) = FrameHeader::decode(&h.encode(), &archive, 0, Element::Frame { index: 0 }) else {
        return;
    };
    if let Ok(raw) = h.decode_payload(stored, 0, Element::Frame { index: 0 }) {
        assert_eq!(raw.len(), raw_len as usize, "decoded size differs from the declared size");
    }
}

fn round_trip(raw: &[u8]) {
    let archive = FileHeader { minor: FORMAT_MINOR, ..FileHeader::default() };
    for compression in [Compression::None, Compression::Zstd { level: 1 }, Compression::Columnar { level: 1 }] {
        let chunk = encode_chunk(PartId(7), ChunkSeq(3), raw, 1, compression);
        let h = chunk.header;
        assert_eq!(h.stored_len as usize, chunk.payload.len());
        assert_eq!(h.raw_len as usize, raw.len());
        match h.codec {
            Codec::None => assert_eq!(chunk.payload, raw, "a plain chunk stores other bytes"),
            // Compression is kept only when it saves space.
            Codec::Zstd | Codec::Columnar => {
                assert!(chunk.payload.len() < raw.len(), "{:?} kept although it saves nothing", h.codec)
            }
        }
        let decoded = FrameHeader::decode(&h.encode(), &archive, 0, Element::Frame { index: 0 })
            .expect("an encoded chunk's frame header decodes");
        assert_eq!(decoded, h);
        assert_eq!(decoded.kind, FrameKind::Chunk);
        let back = decoded
            .decode_payload(&chunk.payload, 0, Element::Frame { index: 0 })
            .expect("an encoded chunk's payload decodes");
        assert_eq!(back, raw, "{compression:?} round trip changed the bytes");
    }
}
