//! The COPY tuple scanner fed in two pieces agrees with the scanner fed at once.
//!
//! The dump cuts chunks wherever the network's reads end, carrying the unconsumed tail of one read into
//! the next scan, so the rows and content digest must not depend on where the input was split. The first
//! input byte picks the split point; the rest is the stream, scanned as text COPY and as binary COPY, the
//! latter both with no column count and with the count of the first tuple after a plain header (so that
//! both consistent and inconsistent tuples meet the field-count check).
//!
//! The binary scans are also compared with [`BinaryTuples`], the walker they are built on, walking the
//! stream whole as the restore walks a chunk: it finds the same tuples and digest, or fails at the same
//! offset (bytes that end inside an item being its error where the scanner waits for more), and each
//! tuple's fields account for every byte of it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pgsafe::format::{BinaryTuples, ContentDigest, CopyFormat, TupleScanner};

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let split = usize::from(split) % (stream.len() + 1);
    // A plain binary header is 19 bytes, so the first tuple's field count would be at 19..21.
    let first_count = stream.get(19..21).map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]]) & 0x7fff));
    let scanners = [
        TupleScanner::new(CopyFormat::Text),
        TupleScanner::new(CopyFormat::Binary),
        TupleScanner::new(CopyFormat::Binary).with_fields(first_count),
    ];
    for (i, scanner) in scanners.into_iter().enumerate() {
        let whole = scan_whole(scanner.clone(), stream);
        let pieces = scan_in_two(scanner.clone(), stream, split);
        assert_eq!(whole, pieces, "{scanner:?}: the stream split at byte {split} scans differently");
        if i > 0 && !stream.is_empty() {
            let walker = BinaryTuples::new(stream);
            let walker = if i == 2 { walker.with_fields(first_count) } else { walker };
            assert_eq!(walk(walker, stream.len()), whole, "the walker and {scanner:?} disagree");
        }
    }
});

/// What walking the whole stream found, in the scanner's terms.
fn walk(mut walker: BinaryTuples<'_>, len: usize) -> Outcome {
    let (mut rows, mut digest) = (0, ContentDigest::default());
    for tuple in walker.by_ref() {
        let tuple = match tuple {
            Ok(t) => t,
            // The scanner stops without error where the bytes end inside an item; the walker says so.
            Err(e) if e.problem.starts_with("the bytes end inside") => {
                return Outcome::Scanned { consumed: e.offset, rows, digest, at_end: false };
            }
            Err(e) => return Outcome::Failed { offset: e.offset, problem: e.problem },
        };
        let field_bytes: usize = tuple.fields().map(|f| 4 + f.map_or(0, <[u8]>::len)).sum();
        assert_eq!(2 + field_bytes, tuple.bytes().len(), "a tuple's fields do not account for its bytes");
        assert_eq!(tuple.fields().count(), tuple.len());
        digest.add_row(tuple.bytes());
        rows += 1;
    }
    assert_eq!(walker.offset(), len, "the walker ended early without an error");
    Outcome::Scanned { consumed: len, rows, digest, at_end: walker.at_end() }
}

/// What a scan found: bytes consumed, rows, digest and whether the stream could end there; or the stream
/// offset and problem of its error.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Scanned { consumed: usize, rows: u64, digest: ContentDigest, at_end: bool },
    Failed { offset: usize, problem: String },
}

fn scanned(s: &TupleScanner, consumed: usize) -> Outcome {
    Outcome::Scanned { consumed, rows: s.rows(), digest: s.digest(), at_end: s.at_end() }
}

fn scan_whole(mut s: TupleScanner, stream: &[u8]) -> Outcome {
    match s.scan(stream) {
        Ok(n) => {
            assert!(n <= stream.len(), "scan consumed {n} of {} bytes", stream.len());
            scanned(&s, n)
        }
        Err(e) => Outcome::Failed { offset: e.offset, problem: e.problem },
    }
}

/// Scans `stream[..split]`, then what it left unconsumed together with `stream[split..]`.
fn scan_in_two(mut s: TupleScanner, stream: &[u8], split: usize) -> Outcome {
    let first = match s.scan(&stream[..split]) {
        Ok(n) => n,
        Err(e) => {
            return Outcome::Failed { offset: e.offset, problem: e.problem };
        }
    };
    assert!(first <= split, "scan consumed {first} of {split} bytes");
    match s.scan(&stream[first..]) {
        Ok(n) => {
            assert!(first + n <= stream.len(), "scan consumed past the input");
            scanned(&s, first + n)
        }
        Err(e) => Outcome::Failed { offset: first + e.offset, problem: e.problem },
    }
}
