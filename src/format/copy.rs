//! Walks a COPY stream (binary or text) tuple by tuple: finds tuple boundaries, counts rows, and
//! computes the content digest. The dump uses it to cut chunks on tuple boundaries; `verify` and restore
//! use it to recount what an archive or a table holds.

use super::{ContentDigest, CopyFormat};

/// The 11-byte signature that opens a binary COPY stream.
pub const BINARY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// The binary header's flag that says tuples carry OIDs; pgsafe never writes it.
const FLAG_HAS_OIDS: u32 = 1 << 16;
/// Bits 0-15 of the binary header's flags are critical: a reader must refuse any it does not know.
const CRITICAL_FLAGS: u32 = 0xffff;

/// A COPY stream that is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("COPY stream at byte {offset} of the scanned bytes: {problem}")]
pub struct CopyError {
    /// Offset within the bytes given to the failing [`TupleScanner::scan`] call.
    pub offset: usize,
    pub problem: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Binary: the signature, flags and header extension come next.
    Header,
    /// Tuples (or, for binary, the trailer) come next.
    Tuples,
    /// Binary: the trailer was read; nothing may follow.
    Ended,
}

/// An incremental tuple walker over one COPY stream.
///
/// Feed it the stream in pieces with [`scan`](Self::scan); each call consumes the complete items at the
/// start of the piece and leaves an incomplete tuple for the next call.
///
/// The row bytes that feed the digest are, in binary format, a tuple from its 16-bit field count to the
/// end of its last field; in text format, a line without its terminating newline.
#[derive(Debug, Clone)]
pub struct TupleScanner {
    format: CopyFormat,
    state: State,
    rows: u64,
    digest: ContentDigest,
    /// Binary: the field count every tuple must have, when known.
    fields: Option<usize>,
}

impl TupleScanner {
    /// A scanner at the start of a stream.
    pub fn new(format: CopyFormat) -> Self {
        let state = match format {
            CopyFormat::Binary => State::Header,
            CopyFormat::Text => State::Tuples,
        };
        TupleScanner { format, state, rows: 0, digest: ContentDigest::default(), fields: None }
    }

    /// Requires every binary tuple to have `n` fields: the part's column count.
    pub fn with_fields(mut self, n: usize) -> Self {
        self.fields = Some(n);
        self
    }

    /// A scanner in the middle of a stream, past any header: for a chunk other than a part's first.
    pub fn resume(format: CopyFormat) -> Self {
        TupleScanner { state: State::Tuples, ..Self::new(format) }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn digest(&self) -> ContentDigest {
        self.digest
    }

    /// True when the stream could end here: after the trailer (binary) or after a full line (text).
    pub fn at_end(&self) -> bool {
        match self.format {
            CopyFormat::Binary => self.state == State::Ended,
            CopyFormat::Text => true,
        }
    }

    /// Consumes the complete items at the start of `buf` and returns how many bytes they span.
    pub fn scan(&mut self, buf: &[u8]) -> Result<usize, CopyError> {
        match self.format {
            CopyFormat::Binary => self.scan_binary(buf),
            CopyFormat::Text => Ok(self.scan_text(buf)),
        }
    }

    fn scan_text(&mut self, buf: &[u8]) -> usize {
        let mut pos = 0;
        // Text COPY escapes newlines inside values, so every row is exactly one line.
        for nl in memchr::memchr_iter(b'\n', buf) {
            self.digest.add_row(&buf[pos..nl]);
            self.rows += 1;
            pos = nl + 1;
        }
        pos
    }

    fn scan_binary(&mut self, buf: &[u8]) -> Result<usize, CopyError> {
        let mut pos = 0;
        if self.state == State::Header {
            let Some(n) = binary_header_len(buf)? else {
                return Ok(0);
            };
            pos = n;
            self.state = State::Tuples;
        }
        while pos < buf.len() {
            if self.state == State::Ended {
                return Err(CopyError { offset: pos, problem: "data after the end of the stream".into() });
            }
            let Some(count) = read_i16(buf, pos) else {
                break;
            };
            if count == -1 {
                self.state = State::Ended;
                pos += 2;
                continue;
            }
            if count < 0 {
                return Err(CopyError { offset: pos, problem: format!("negative field count {count}") });
            }
            if let Some(n) = self.fields
                && count as usize != n
            {
                return Err(CopyError {
                    offset: pos,
                    problem: format!("tuple has {count} fields, the part has {n} columns"),
                });
            }
            let mut end = pos + 2;
            let mut complete = true;
            for _ in 0..count {
                let Some(len) = read_i32(buf, end) else {
                    complete = false;
                    break;
                };
                end += 4;
                if len == -1 {
                    continue;
                }
                if len < 0 {
                    return Err(CopyError { offset: end - 4, problem: format!("negative field length {len}") });
                }
                end = end.saturating_add(len as usize);
                if end > buf.len() {
                    complete = false;
                    break;
                }
            }
            if !complete {
                break;
            }
            self.digest.add_row(&buf[pos..end]);
            self.rows += 1;
            pos = end;
        }
        Ok(pos)
    }
}

/// The length of a complete binary COPY header at the start of `buf`, or `None` when more bytes are needed.
fn binary_header_len(buf: &[u8]) -> Result<Option<usize>, CopyError> {
    let sig = BINARY_SIGNATURE.len();
    let have = buf.len().min(sig);
    if buf[..have] != BINARY_SIGNATURE[..have] {
        return Err(CopyError { offset: 0, problem: "no binary COPY signature".into() });
    }
    if buf.len() < sig + 8 {
        return Ok(None);
    }
    let flags = u32::from_be_bytes([buf[sig], buf[sig + 1], buf[sig + 2], buf[sig + 3]]);
    if flags & FLAG_HAS_OIDS != 0 || flags & CRITICAL_FLAGS != 0 {
        return Err(CopyError { offset: sig, problem: format!("unsupported header flags {flags:#010x}") });
    }
    let ext = u32::from_be_bytes([buf[sig + 4], buf[sig + 5], buf[sig + 6], buf[sig + 7]]) as usize;
    let len = (sig + 8).saturating_add(ext);
    Ok((buf.len() >= len).then_some(len))
}

fn read_i16(buf: &[u8], at: usize) -> Option<i16> {
    buf.get(at..at + 2).map(|b| i16::from_be_bytes([b[0], b[1]]))
}

fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    buf.get(at..at + 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Builds a binary COPY stream: for tests, test vectors and benchmarks.
pub fn binary_stream(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(BINARY_SIGNATURE);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    for row in rows {
        out.extend_from_slice(&(row.len() as i16).to_be_bytes());
        for field in row {
            match field {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    out.extend_from_slice(v);
                }
            }
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows() -> impl Strategy<Value = Vec<Vec<Option<Vec<u8>>>>> {
        proptest::collection::vec(
            proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)), 0..5),
            0..20,
        )
    }

    proptest! {
        /// Scanning in arbitrary pieces finds the same rows and digest as scanning at once.
        #[test]
        fn binary_split_anywhere(rows in rows(), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
            let stream = binary_stream(&rows);
            let mut whole = TupleScanner::new(CopyFormat::Binary);
            prop_assert_eq!(whole.scan(&stream).unwrap(), stream.len());
            prop_assert!(whole.at_end());
            prop_assert_eq!(whole.rows(), rows.len() as u64);

            let mut pieces = TupleScanner::new(CopyFormat::Binary);
            let mut pending: Vec<u8> = Vec::new();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.sort();
            let mut last = 0;
            for c in cuts.into_iter().chain([stream.len()]) {
                pending.extend_from_slice(&stream[last..c]);
                last = c;
                let n = pieces.scan(&pending).unwrap();
                pending.drain(..n);
            }
            prop_assert!(pending.is_empty());
            prop_assert_eq!(pieces.rows(), whole.rows());
            prop_assert_eq!(pieces.digest(), whole.digest());
        }

        #[test]
        fn text_counts_lines(lines in proptest::collection::vec("[^\n]{0,30}", 0..30)) {
            let stream: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let mut s = TupleScanner::new(CopyFormat::Text);
            prop_assert_eq!(s.scan(stream.as_bytes()).unwrap(), stream.len());
            prop_assert_eq!(s.rows(), lines.len() as u64);
        }
    }

    #[test]
    fn text_leaves_a_partial_line() {
        let mut s = TupleScanner::new(CopyFormat::Text);
        assert_eq!(s.scan(b"a\tb\nc\td").unwrap(), 4);
        assert_eq!(s.rows(), 1);
    }

    #[test]
    fn data_after_the_trailer_is_an_error() {
        let mut stream = binary_stream(&[vec![Some(b"x".to_vec())]]);
        stream.extend_from_slice(&[0, 1]);
        let err = TupleScanner::new(CopyFormat::Binary).scan(&stream).unwrap_err();
        assert_eq!(err.problem, "data after the end of the stream");
    }

    #[test]
    fn a_foreign_stream_is_refused() {
        let err = TupleScanner::new(CopyFormat::Binary).scan(b"1\tfoo\n").unwrap_err();
        assert_eq!(err.problem, "no binary COPY signature");
    }
}
