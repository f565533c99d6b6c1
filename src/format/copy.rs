//! Walks a COPY stream (binary or text) tuple by tuple: finds tuple boundaries, counts rows, and
//! computes the content digest. The dump uses it to cut chunks on tuple boundaries; `verify` and restore
//! use it to recount what an archive or a table holds. [`BinaryTuples`] is the one walker over binary
//! COPY tuples: [`TupleScanner`] counts and digests with it, and a reader that needs the fields of each
//! tuple (the restore's large objects) iterates it.

use super::{ContentDigest, CopyFormat, Element, FormatError};

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
    /// Offset within the bytes walked: those given to the failing [`TupleScanner::scan`] call, or to
    /// [`BinaryTuples`].
    pub offset: usize,
    pub problem: String,
}

impl CopyError {
    /// The error as damage of the chunk `element`, whose frame starts at `frame_offset` in the archive and
    /// whose decoded bytes were walked.
    pub fn in_chunk(self, element: Element, frame_offset: u64) -> FormatError {
        FormatError::corrupt(element, frame_offset, format!("decoded byte {}: {}", self.offset, self.problem))
    }
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
        let mut tuples = BinaryTuples { buf, pos: 0, state: self.state, fields: self.fields, failed: false };
        while let Some(tuple) = tuples.next_complete()? {
            self.digest.add_row(tuple.bytes);
            self.rows += 1;
        }
        self.state = tuples.state;
        Ok(tuples.pos)
    }
}

/// The one walker over the tuples of a binary COPY stream (PostgreSQL's binary format, with the rules of
/// `format-spec/archive-v1.md` §11.3): an iterator of [`Tuple`]s, each giving its fields.
///
/// It walks bytes held whole, such as a decoded chunk: anything malformed, and bytes that end inside an
/// item, is an error naming its offset in those bytes, after which the iterator ends. The trailer is
/// consumed on the way and [`at_end`](Self::at_end) tells whether it was seen; bytes after it are an
/// error.
///
/// ```
/// use pgsafe::format::{BinaryTuples, binary_stream};
///
/// let stream = binary_stream(&[vec![Some(7u32.to_be_bytes().to_vec()), None]]);
/// let mut tuples = BinaryTuples::new(&stream).with_fields(2);
/// let tuple = tuples.next().unwrap().unwrap();
/// assert_eq!(tuple.field(0), Some(&7u32.to_be_bytes()[..]));
/// assert_eq!(tuple.field(1), None); // NULL
/// assert!(tuples.next().is_none() && tuples.at_end());
/// ```
#[derive(Debug, Clone)]
pub struct BinaryTuples<'a> {
    buf: &'a [u8],
    /// The end of the last complete item.
    pos: usize,
    state: State,
    /// The field count every tuple must have, when known.
    fields: Option<usize>,
    /// An error was returned: the iterator has ended.
    failed: bool,
}

impl<'a> BinaryTuples<'a> {
    /// Walks `buf` from the start of a stream: the binary header (signature, flags, extension) first.
    pub fn new(buf: &'a [u8]) -> Self {
        BinaryTuples { buf, pos: 0, state: State::Header, fields: None, failed: false }
    }

    /// Walks `buf` from the middle of a stream, past its header: a chunk other than a part's first.
    pub fn resume(buf: &'a [u8]) -> Self {
        BinaryTuples { state: State::Tuples, ..Self::new(buf) }
    }

    /// Requires every tuple to have `n` fields: the part's column count.
    pub fn with_fields(mut self, n: usize) -> Self {
        self.fields = Some(n);
        self
    }

    /// Bytes walked so far: the end of the last complete item.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// True once the trailer was read.
    pub fn at_end(&self) -> bool {
        self.state == State::Ended
    }

    /// The next complete tuple, consuming a header or trailer on the way. `Ok(None)` where the bytes end,
    /// or where what is left holds only the start of an item ([`offset`](Self::offset) is then short of
    /// the end): [`TupleScanner`] waits for more there, the iterator calls it an error.
    fn next_complete(&mut self) -> Result<Option<Tuple<'a>>, CopyError> {
        let buf = self.buf;
        if self.state == State::Header {
            let header = binary_header_len(&buf[self.pos..])
                .map_err(|e| CopyError { offset: self.pos + e.offset, problem: e.problem })?;
            let Some(n) = header else {
                return Ok(None);
            };
            self.pos += n;
            self.state = State::Tuples;
        }
        loop {
            let pos = self.pos;
            if pos >= buf.len() {
                return Ok(None);
            }
            if self.state == State::Ended {
                return Err(CopyError { offset: pos, problem: "data after the end of the stream".into() });
            }
            let Some(count) = read_i16(buf, pos) else {
                return Ok(None);
            };
            if count == -1 {
                self.state = State::Ended;
                self.pos += 2;
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
            for _ in 0..count {
                let Some(len) = read_i32(buf, end) else {
                    return Ok(None);
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
                    return Ok(None);
                }
            }
            self.pos = end;
            return Ok(Some(Tuple { bytes: &buf[pos..end], offset: pos, fields: count as u16 }));
        }
    }
}

impl<'a> Iterator for BinaryTuples<'a> {
    type Item = Result<Tuple<'a>, CopyError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = match self.next_complete() {
            Ok(Some(tuple)) => return Some(Ok(tuple)),
            // Nothing at all is not a stream: even an empty one has a header and a trailer.
            Ok(None) if self.pos == self.buf.len() && (self.state != State::Header || self.pos > 0) => return None,
            Ok(None) => {
                let inside = if self.state == State::Header { "the header" } else { "a tuple" };
                CopyError { offset: self.pos, problem: format!("the bytes end inside {inside}") }
            }
            Err(e) => e,
        };
        self.failed = true;
        Some(Err(item))
    }
}

/// One tuple of a binary COPY stream, as [`BinaryTuples`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple<'a> {
    /// From the field count to the end of the last field: the row bytes the content digest hashes.
    bytes: &'a [u8],
    offset: usize,
    fields: u16,
}

impl<'a> Tuple<'a> {
    /// The tuple's bytes, from its 16-bit field count to the end of its last field.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Where the tuple starts in the bytes walked.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// How many fields the tuple has.
    pub fn len(&self) -> usize {
        usize::from(self.fields)
    }

    pub fn is_empty(&self) -> bool {
        self.fields == 0
    }

    /// Field `i`'s value; `None` when it is NULL or the tuple has no field `i`.
    pub fn field(&self, i: usize) -> Option<&'a [u8]> {
        self.fields().nth(i).flatten()
    }

    /// Each field's value in order, `None` for NULL.
    pub fn fields(&self) -> Fields<'a> {
        Fields { rest: self.bytes.get(2..).unwrap_or_default(), left: self.fields }
    }
}

/// The fields of a [`Tuple`], in order: `Some(value)`, or `None` for NULL.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        // The walker checked every length before it made the tuple; `get` keeps this panic-free anyway.
        self.left = self.left.checked_sub(1)?;
        let len = read_i32(self.rest, 0)?;
        self.rest = self.rest.get(4..)?;
        if len < 0 {
            return Some(None);
        }
        let (value, rest) = self.rest.split_at_checked(len as usize)?;
        self.rest = rest;
        Some(Some(value))
    }
}

/// The length of a complete binary COPY header at the start of `buf`, or `None` when more bytes are needed.
pub(super) fn binary_header_len(buf: &[u8]) -> Result<Option<usize>, CopyError> {
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

    proptest! {
        /// The walker gives back every tuple of a stream field by field, NULLs included.
        #[test]
        fn tuples_give_back_their_fields(rows in rows()) {
            let stream = binary_stream(&rows);
            let mut tuples = BinaryTuples::new(&stream);
            let mut got = Vec::new();
            for tuple in tuples.by_ref() {
                let tuple = tuple.unwrap();
                prop_assert_eq!(tuple.len(), tuple.fields().count());
                got.push(tuple.fields().map(|f| f.map(<[u8]>::to_vec)).collect::<Vec<_>>());
            }
            prop_assert_eq!(got, rows);
            prop_assert!(tuples.at_end());
            prop_assert_eq!(tuples.offset(), stream.len());
        }

        /// Bytes cut inside an item are an error at the end of the last whole item; cut on a boundary, they
        /// walk to the end. Either way the walker and the scanner agree.
        #[test]
        fn bytes_cut_inside_an_item_are_an_error_where_the_last_item_ends(rows in rows(), cut in any::<usize>()) {
            let stream = binary_stream(&rows);
            let cut = 1 + cut % stream.len();
            let mut scanner = TupleScanner::new(CopyFormat::Binary);
            let used = scanner.scan(&stream[..cut]).unwrap();
            let walked: Result<Vec<Tuple<'_>>, CopyError> = BinaryTuples::new(&stream[..cut]).collect();
            if used == cut {
                prop_assert_eq!(walked.unwrap().len() as u64, scanner.rows());
            } else {
                prop_assert_eq!(walked.unwrap_err().offset, used);
            }
        }
    }

    #[test]
    fn the_walker_names_the_offset_of_anything_malformed() {
        let header = BINARY_SIGNATURE.len() + 8;
        let tuple = |count: i16, lens: &[i32]| {
            let mut b = count.to_be_bytes().to_vec();
            for l in lens {
                b.extend_from_slice(&l.to_be_bytes());
                b.extend(std::iter::repeat_n(b'x', (*l).max(0) as usize));
            }
            b
        };
        let error = |bytes: &[u8], fields: Option<usize>| {
            let mut tuples = BinaryTuples::new(bytes);
            if let Some(n) = fields {
                tuples = tuples.with_fields(n);
            }
            let err = tuples.by_ref().find_map(Result::err).expect("an error");
            assert!(tuples.next().is_none(), "the walker goes on after an error");
            (err.offset, err.problem)
        };
        let stream = |tuples: &[Vec<u8>]| {
            let mut s = binary_stream(&[]);
            s.truncate(header);
            tuples.iter().for_each(|t| s.extend_from_slice(t));
            s
        };
        let ok = tuple(1, &[3]);
        assert_eq!(error(&stream(&[ok.clone(), tuple(-2, &[])]), None), (header + 9, "negative field count -2".into()));
        assert_eq!(
            error(&stream(&[ok.clone(), tuple(2, &[1, -3])]), None),
            (header + 9 + 2 + 4 + 1, "negative field length -3".into())
        );
        assert_eq!(
            error(&stream(&[ok.clone(), tuple(2, &[1, 1])]), Some(1)),
            (header + 9, "tuple has 2 fields, the part has 1 columns".into())
        );
        assert_eq!(
            error(&stream(&[ok.clone(), tuple(-1, &[]), ok.clone()]), None),
            (header + 9 + 2, "data after the end of the stream".into())
        );
        let cut = stream(&[ok.clone(), ok.clone()]);
        assert_eq!(error(&cut[..cut.len() - 1], None), (header + 9, "the bytes end inside a tuple".into()));
        assert_eq!(error(&cut[..5], None), (0, "the bytes end inside the header".into()));
        assert_eq!(error(&[], None), (0, "the bytes end inside the header".into()));
        assert_eq!(error(b"PGCOPY\nX", None), (0, "no binary COPY signature".into()));
    }

    /// The restore reads the OIDs of the large objects a chunk holds: the first field of each tuple.
    #[test]
    fn a_chunk_after_the_first_walks_without_a_header() {
        let rows: Vec<Vec<Option<Vec<u8>>>> = (0..3u32)
            .map(|oid| vec![Some((16384 + oid).to_be_bytes().to_vec()), Some(vec![7; oid as usize])])
            .collect();
        let stream = binary_stream(&rows);
        let second = &stream[BINARY_SIGNATURE.len() + 8 + 2 + 8 + 4..]; // past the header and the first tuple
        let mut tuples = BinaryTuples::resume(second).with_fields(2);
        let oids: Vec<u32> =
            tuples.by_ref().map(|t| u32::from_be_bytes(t.unwrap().field(0).unwrap().try_into().unwrap())).collect();
        assert_eq!(oids, [16385, 16386]);
        assert!(tuples.at_end());
        let first = BinaryTuples::new(&stream).next().unwrap().unwrap();
        assert_eq!((first.len(), first.field(1), first.field(2)), (2, Some(&[][..]), None));
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
