//! The columnar chunk codec (codec 2): hostile payloads never panic nor decode to another size, and any
//! binary tuple stream round-trips bit for bit.
//!
//! The first input byte picks the mode. Even: the rest is a columnar payload whose first 4 bytes declare
//! the decoded size (capped at 1 MiB, so the memory limits of `run-smoke.sh` hold for a correct decoder),
//! decoded through a chunk frame as a reader does; it must fail with an error or give exactly the
//! declared size. Odd: the rest drives a generator of binary COPY tuples (column count, widths, NULLs,
//! lengths, values), whose chunk, with and without the stream's header and trailer, is stored with
//! `Compression::Columnar` and must decode to the same bytes; the raw input is also tried as a chunk.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pgsafe::format::{
    BINARY_SIGNATURE, ChunkSeq, Codec, Compression, Element, FrameHeader, FrameKind, PartId, encode_chunk,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        decode_hostile(rest);
    } else {
        let stream = tuples(rest);
        let header = BINARY_SIGNATURE.len() + 8;
        round_trip(&stream);
        round_trip(&stream[header..stream.len() - 2]);
        round_trip(rest);
    }
});

fn decode_hostile(data: &[u8]) {
    let Some((len, payload)) = data.split_first_chunk::<4>() else {
        return;
    };
    let raw_len = (u32::from_le_bytes(*len) % (1 << 20)).max(1);
    let h = FrameHeader {
        kind: FrameKind::Chunk,
        codec: Codec::Columnar,
        sealed: false,
        part: PartId(0),
        seq: ChunkSeq(0),
        stored_len: payload.len() as u32,
        raw_len,
        payload_crc: crc32fast::hash(payload),
    };
    if let Ok(out) = h.decode_payload(payload, 0, Element::Frame { index: 0 }) {
        assert_eq!(out.len(), raw_len as usize, "decoded to another size than declared");
    }
}

fn round_trip(raw: &[u8]) {
    if raw.is_empty() {
        return;
    }
    let chunk = encode_chunk(PartId(1), ChunkSeq(0), raw, 0, Compression::Columnar { level: 1 });
    let back = chunk.header.decode_payload(&chunk.payload, 0, Element::Frame { index: 0 });
    match back {
        Ok(back) => assert!(back == raw, "stored with codec {:?}, decoded to other bytes", chunk.header.codec),
        Err(e) => panic!("stored with codec {:?}, does not decode: {e}", chunk.header.codec),
    }
}

/// A binary COPY stream made from the input: byte 0 the column count (0..8), then per column a width
/// (0: varying), then for each tuple per field a control byte (NULL, or a length) and its value's bytes.
fn tuples(data: &[u8]) -> Vec<u8> {
    let mut it = data.iter().copied();
    let columns = usize::from(it.next().unwrap_or(0) % 8);
    let widths: Vec<u8> = (0..columns).map(|_| it.next().unwrap_or(0) % 10).collect();
    let mut out = BINARY_SIGNATURE.to_vec();
    out.extend_from_slice(&[0; 8]);
    'rows: for _ in 0..10_000 {
        let mut row = (columns as i16).to_be_bytes().to_vec();
        for &w in &widths {
            let Some(control) = it.next() else {
                break 'rows;
            };
            if control == 0xff {
                row.extend_from_slice(&(-1i32).to_be_bytes());
                continue;
            }
            let len = if w == 0 { usize::from(control % 32) } else { usize::from(w) };
            row.extend_from_slice(&(len as i32).to_be_bytes());
            row.extend((0..len).map(|_| it.next().unwrap_or(0)));
        }
        out.extend_from_slice(&row);
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}
