//! The columnar chunk codec (codec 2, format 1.2): a chunk of binary COPY tuples stored as one stream per
//! column, so that zstd sees like next to like.
//!
//! Binary COPY interleaves every field with a 4-byte length and mixes the bytes of all columns, which
//! compresses worse than text. Splitting a chunk into a NULL map, a length stream and a value stream per
//! column, and laying fixed-width values out as byte planes (optionally of their deltas), makes each
//! stream far more regular. Decoding reassembles the exact bytes: the digests, the CRC semantics of the
//! frame and the restore see the same COPY stream as with any other codec. `format-spec/columnar.md` is
//! the normative description of the layout built here.
//!
//! The encoder models a chunk as `prefix | N tuples of C fields | suffix`: the prefix holds the binary
//! COPY header of a part's first chunk and the suffix the trailer of its last; both are kept verbatim.
//! Anything else (tuples of differing field counts, bytes that are not whole tuples) is refused, and the
//! caller stores the chunk row-wise.

use super::copy::{BINARY_SIGNATURE, binary_header_len};
use super::frame::with_compressor;

use super::MAX_CHUNK_RAW;

/// The first byte of a columnar payload: its layout version.
pub const LAYOUT_VERSION: u8 = 1;
/// Bytes of the fixed header: version, flags, column count, tuple count, prefix and suffix lengths.
const HEADER_LEN: usize = 16;
/// Bytes of one column descriptor: transform and width.
const COLUMN_LEN: usize = 5;
/// Bytes of one stream descriptor: codec, decoded length, stored length.
const STREAM_LEN: usize = 9;
/// A column's width when its non-NULL values differ in length: its lengths are in a stream of their own.
const VARYING: u32 = u32::MAX;

/// How a column's value stream is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// The values one after another, as COPY has them.
    Plain = 0,
    /// Values of a fixed width *w* (2, 4 or 8): *w* planes, byte 0 of every value first, then byte 1, ...
    Planes = 1,
    /// Values of a fixed width *w* (2, 4 or 8) read as big-endian unsigned integers, each replaced by its
    /// difference (wrapping) from the one before (the first from 0), then laid out as byte planes.
    DeltaPlanes = 2,
    /// Columns of at most 256 distinct values: the stream holds the distinct values (their count as a
    /// u16, their lengths as u32, their bytes) then one byte per value, its index among them. Width is
    /// always varying and there is no length stream: the lengths are the entries'.
    Dictionary = 3,
}

impl Transform {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Transform::Plain),
            1 => Some(Transform::Planes),
            2 => Some(Transform::DeltaPlanes),
            3 => Some(Transform::Dictionary),
            _ => None,
        }
    }
}

/// How one stream is stored in the payload.
const STREAM_STORED: u8 = 0;
const STREAM_ZSTD: u8 = 1;

/// Encodes `raw`, a chunk of a binary COPY stream, with zstd at `level` for every stream. `None` when the
/// chunk does not fit the model (no tuples, differing field counts, bytes that are not whole tuples): the
/// caller then stores it row-wise.
pub fn encode(raw: &[u8], level: i32) -> Option<Vec<u8>> {
    let chunk = split(raw)?;
    let columns = chunk.columns.len();
    // The tables have fixed sizes: laid down zeroed first, filled in as each column is finished and its
    // streams compressed, so that a column's streams are dropped before the next column is transformed.
    let streams_at = HEADER_LEN + COLUMN_LEN * columns;
    let body_at = streams_at + STREAM_LEN * (1 + 3 * columns);
    let mut out = Vec::with_capacity(body_at + raw.len() / 4);
    out.push(LAYOUT_VERSION);
    out.push(0);
    out.extend_from_slice(&(columns as u16).to_le_bytes());
    out.extend_from_slice(&(chunk.tuples as u32).to_le_bytes());
    out.extend_from_slice(&(chunk.prefix.len() as u32).to_le_bytes());
    out.extend_from_slice(&(chunk.suffix.len() as u32).to_le_bytes());
    out.resize(body_at, 0);
    let (prefix, suffix, tuples) = (chunk.prefix, chunk.suffix, chunk.tuples);
    with_compressor(level, |compressor| {
        let mut writer = StreamWriter { compressor, scratch: Vec::new() };
        writer.append(&mut out, streams_at, &[prefix, suffix].concat());
        for (k, column) in chunk.columns.into_iter().enumerate() {
            let c = column.finish(tuples);
            let entry = HEADER_LEN + COLUMN_LEN * k;
            out[entry] = c.transform as u8;
            out[entry + 1..entry + 5].copy_from_slice(&c.width.to_le_bytes());
            for (i, stream) in [c.nulls, c.lengths, c.values].iter().enumerate() {
                writer.append(&mut out, streams_at + STREAM_LEN * (1 + 3 * k + i), stream);
            }
        }
    })?;
    Some(out)
}

/// Compresses streams into a payload, one zstd context and one scratch buffer for all of them.
struct StreamWriter<'a> {
    compressor: &'a mut zstd::bulk::Compressor<'static>,
    scratch: Vec<u8>,
}

impl StreamWriter<'_> {
    /// Appends `stream` to `out`, compressed when that makes it smaller, and fills its table entry at
    /// `entry`.
    fn append(&mut self, out: &mut Vec<u8>, entry: usize, stream: &[u8]) {
        let start = out.len();
        // A buffer one byte short of the stream: zstd fails when it cannot make the stream smaller.
        self.scratch.clear();
        self.scratch.reserve(stream.len().saturating_sub(1));
        let zstd = !stream.is_empty() && self.compressor.compress_to_buffer(stream, &mut self.scratch).is_ok();
        let codec = if zstd && self.scratch.len() < stream.len() {
            out.extend_from_slice(&self.scratch);
            STREAM_ZSTD
        } else {
            out.extend_from_slice(stream);
            STREAM_STORED
        };
        out[entry] = codec;
        out[entry + 1..entry + 5].copy_from_slice(&(stream.len() as u32).to_le_bytes());
        let stored = (out.len() - start) as u32;
        out[entry + 5..entry + 9].copy_from_slice(&stored.to_le_bytes());
    }
}

/// A chunk split into its parts.
struct Split<'a> {
    prefix: &'a [u8],
    suffix: &'a [u8],
    tuples: usize,
    columns: Vec<ColumnBuilder>,
}

/// The tuples after which [`split`] reckons how much room the columns need.
const ESTIMATE_AFTER: usize = 64;

/// Walks the tuples of a chunk into per-column builders, in one pass over the bytes.
fn split(raw: &[u8]) -> Option<Split<'_>> {
    if raw.is_empty() || raw.len() > MAX_CHUNK_RAW as usize {
        return None;
    }
    // A part's first chunk opens with the stream's signature; no other chunk can: it opens with a field
    // count, and "PG" read as one (20551) is far above PostgreSQL's 1664 columns.
    let prefix_len = if raw.starts_with(&BINARY_SIGNATURE[..2]) { binary_header_len(raw).ok()?? } else { 0 };
    let mut pos = prefix_len;
    let mut tuples = 0usize;
    let mut columns: Vec<ColumnBuilder> = Vec::new();
    while pos < raw.len() {
        let count = i16::from_be_bytes(raw.get(pos..pos + 2)?.try_into().ok()?);
        if count == -1 {
            // The trailer ends the stream: nothing may follow it.
            if pos + 2 != raw.len() {
                return None;
            }
            break;
        }
        let count = usize::try_from(count).ok()?;
        if tuples == 0 {
            columns = (0..count).map(|_| ColumnBuilder::default()).collect();
        } else if count != columns.len() {
            return None;
        }
        if tuples == ESTIMATE_AFTER {
            // The first tuples' size says about how many the chunk holds and their fields how big each
            // column's values get: room for them now, rather than growing each by doubling. (However
            // wrong, this reserves about a quarter more than the chunk's bytes in all.)
            let expected = (raw.len() - pos) * tuples / (pos - prefix_len).max(1);
            for column in &mut columns {
                column.reserve(tuples, expected);
            }
        }
        pos += 2;
        for column in &mut columns {
            let len = i32::from_be_bytes(raw.get(pos..pos + 4)?.try_into().ok()?);
            pos += 4;
            if len == -1 {
                column.push(tuples, None);
                continue;
            }
            let len = usize::try_from(len).ok()?;
            column.push(tuples, Some(raw.get(pos..pos.checked_add(len)?)?));
            pos += len;
        }
        tuples += 1;
    }
    if tuples == 0 || tuples > u32::MAX as usize {
        return None;
    }
    let end = raw.len() - if pos < raw.len() { 2 } else { 0 };
    Some(Split { prefix: &raw[..prefix_len], suffix: &raw[end..], tuples, columns })
}

/// One column's streams as the encoder collects them.
#[derive(Default)]
struct ColumnBuilder {
    /// Bit *i* (least significant first) set when tuple *i*'s field is NULL; empty while there is none.
    nulls: Vec<u8>,
    lengths: Vec<u32>,
    values: Vec<u8>,
}

impl ColumnBuilder {
    fn push(&mut self, tuple: usize, field: Option<&[u8]>) {
        match field {
            None => {
                let byte = tuple / 8;
                if self.nulls.len() <= byte {
                    self.nulls.resize(byte + 1, 0);
                }
                self.nulls[byte] |= 1 << (tuple % 8);
            }
            Some(v) => {
                self.lengths.push(v.len() as u32);
                self.values.extend_from_slice(v);
            }
        }
    }

    /// Room for about `tuples` more tuples like those pushed so far (`pushed` of them), and a quarter
    /// more.
    fn reserve(&mut self, pushed: usize, tuples: usize) {
        let tuples = tuples + tuples / 4;
        self.lengths.reserve_exact(tuples);
        self.values.reserve_exact(self.values.len().saturating_mul(tuples) / pushed.max(1));
    }

    /// The column's streams, its values transformed where that helps.
    fn finish(self, tuples: usize) -> ColumnStreams {
        let ColumnBuilder { mut nulls, lengths, values } = self;
        // The map grew up to the last NULL; when there is one, it covers every tuple.
        if !nulls.is_empty() {
            nulls.resize(tuples.div_ceil(8), 0);
        }
        let first = lengths.first().copied().unwrap_or(0);
        let width = first as usize;
        let varying = !lengths.iter().all(|&l| l == first);
        // Few distinct values (flags aside, which are a byte already) cost a byte each as an index, where
        // their bytes and lengths, however repetitive, cost more.
        let dictionary = if varying || width > 1 { dictionary(&lengths, &values) } else { None };
        let (transform, width, lengths, values) = if let Some(stream) = dictionary {
            (Transform::Dictionary, VARYING, Vec::new(), stream)
        } else if varying {
            (Transform::Plain, VARYING, planes(&le_bytes(&lengths), 4), values)
        } else if !matches!(width, 2 | 4 | 8) {
            (Transform::Plain, first, Vec::new(), values)
        } else {
            // Fewer places where a plane's byte differs from the one before it means longer runs and a
            // smaller zstd output: a cheap estimate on the first values instead of compressing both.
            let sample = &values[..values.len().min(4096 * width)];
            if run_breaks(&planes(&delta_encode(sample, width), width)) < run_breaks(&planes(sample, width)) {
                (Transform::DeltaPlanes, first, Vec::new(), planes(&delta_encode(&values, width), width))
            } else {
                (Transform::Planes, first, Vec::new(), planes(&values, width))
            }
        };
        ColumnStreams { transform, width, nulls, lengths, values }
    }
}

/// One column as the payload stores it.
struct ColumnStreams {
    transform: Transform,
    width: u32,
    nulls: Vec<u8>,
    lengths: Vec<u8>,
    values: Vec<u8>,
}

/// Most distinct values a dictionary holds: its indices are one byte.
const DICTIONARY_MAX: usize = 256;

/// The dictionary stream of a column whose values (`lengths` of them, back to back in `values`) take at
/// most [`DICTIONARY_MAX`] distinct values, each repeated four times on average, else `None`.
fn dictionary(lengths: &[u32], values: &[u8]) -> Option<Vec<u8>> {
    let count = lengths.len();
    // Too few values to repay the dictionary's own bytes.
    if count < 64 {
        return None;
    }
    let mut entries = Entries::default();
    let mut indices = Vec::with_capacity(count);
    let mut at = 0;
    for &len in lengths {
        let v = &values[at..at + len as usize];
        at += len as usize;
        indices.push(entries.index_of(v)?);
    }
    let order = entries.values;
    // A value that repeats less than four times on average is not worth an entry.
    if order.len() * 4 > count {
        return None;
    }
    let mut out = Vec::with_capacity(2 + 4 * order.len() + indices.len());
    out.extend_from_slice(&(order.len() as u16).to_le_bytes());
    for v in &order {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for v in &order {
        out.extend_from_slice(v);
    }
    out.extend_from_slice(&indices);
    Some(out)
}

/// Slots of the dictionary's hash table: four per entry at most, so that probes stay short.
const SLOTS: usize = 4 * DICTIONARY_MAX;

/// A dictionary's entries in the order of their first appearance, found by an open-addressing hash table
/// made for its few short values: every value of a chunk's column is looked up, so this is the columnar
/// encoder's hottest loop. A value's first 8 bytes (zero-padded) are kept as a word beside it, so that
/// values of up to 8 bytes compare as one integer and longer ones rarely reach a byte comparison.
struct Entries<'a> {
    /// Entry number plus one, 0 where free.
    slots: [u16; SLOTS],
    values: Vec<&'a [u8]>,
    words: Vec<u64>,
}

impl Default for Entries<'_> {
    fn default() -> Self {
        Entries { slots: [0; SLOTS], values: Vec::new(), words: Vec::new() }
    }
}

impl<'a> Entries<'a> {
    /// The entry of `v`, added if new; `None` once there would be more than [`DICTIONARY_MAX`].
    fn index_of(&mut self, v: &'a [u8]) -> Option<u8> {
        let word = first_word(v);
        let mut hash = (word ^ v.len() as u64).wrapping_mul(HASH_MULTIPLIER);
        for rest in v.get(8..).unwrap_or_default().chunks(8) {
            hash = (hash.rotate_left(5) ^ first_word(rest)).wrapping_mul(HASH_MULTIPLIER);
        }
        // The top bits of a multiplicative hash are its best mixed.
        let mut slot = (hash >> (64 - SLOTS.trailing_zeros())) as usize;
        loop {
            let Some(entry) = usize::from(self.slots[slot]).checked_sub(1) else {
                if self.values.len() == DICTIONARY_MAX {
                    return None;
                }
                self.values.push(v);
                self.words.push(word);
                self.slots[slot] = self.values.len() as u16;
                return Some(entry_index(self.values.len() - 1));
            };
            let known = self.values[entry];
            if self.words[entry] == word && known.len() == v.len() && (v.len() <= 8 || known == v) {
                return Some(entry_index(entry));
            }
            slot = (slot + 1) % SLOTS;
        }
    }
}

/// Fibonacci hashing's multiplier, 2^64 divided by the golden ratio.
const HASH_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// Up to the first 8 bytes of `v`, zero-padded, as one word.
fn first_word(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = v.len().min(8);
    b[..n].copy_from_slice(&v[..n]);
    u64::from_le_bytes(b)
}

/// An entry number as its one-byte index (there are at most [`DICTIONARY_MAX`] entries).
fn entry_index(entry: usize) -> u8 {
    u8::try_from(entry).expect("a dictionary holds at most 256 entries")
}

/// Expands a dictionary stream of `present` values into their lengths and bytes, checking it whole; the
/// values may not exceed `room` bytes.
fn undictionary(stream: &[u8], present: usize, room: u64) -> Result<(Vec<u32>, Vec<u8>), String> {
    let count = match stream.get(..2) {
        Some(b) => usize::from(u16::from_le_bytes([b[0], b[1]])),
        None => return Err("the dictionary stream ends inside its entry count".into()),
    };
    if count == 0 || count > DICTIONARY_MAX {
        return Err(format!("a dictionary of {count} entries (1 to {DICTIONARY_MAX})"));
    }
    let lengths_end = 2 + 4 * count;
    let Some(entry_lengths) = stream.get(2..lengths_end) else {
        return Err("the dictionary stream ends inside its entry lengths".into());
    };
    let mut entries = Vec::with_capacity(count);
    let mut at = lengths_end as u64;
    for b in entry_lengths.chunks_exact(4) {
        let len = u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        entries.push((at as usize, len as usize));
        at += len;
    }
    if at + present as u64 != stream.len() as u64 {
        return Err(format!(
            "the dictionary stream of {} bytes does not hold its entries and {present} indices",
            stream.len()
        ));
    }
    let indices = &stream[at as usize..];
    let mut total = 0u64;
    for &i in indices {
        match entries.get(usize::from(i)) {
            Some(&(_, len)) => total += len as u64,
            None => return Err(format!("index {i} of a dictionary of {count} entries")),
        }
    }
    if total > room {
        return Err("values beyond the declared decoded size".into());
    }
    let mut lengths = Vec::with_capacity(present);
    let mut values = Vec::with_capacity(total as usize);
    for &i in indices {
        let (start, len) = entries[usize::from(i)];
        lengths.push(len as u32);
        values.extend_from_slice(&stream[start..start + len]);
    }
    Ok((lengths, values))
}

fn le_bytes(lengths: &[u32]) -> Vec<u8> {
    lengths.iter().flat_map(|l| l.to_le_bytes()).collect()
}

fn run_breaks(b: &[u8]) -> usize {
    b.windows(2).filter(|w| w[0] != w[1]).count()
}

/// Transposes `values` (whole values of `width` bytes) into `width` byte planes.
pub fn planes(values: &[u8], width: usize) -> Vec<u8> {
    let n = values.len() / width;
    let mut out = vec![0u8; n * width];
    for (i, v) in values.chunks_exact(width).enumerate() {
        for (j, &b) in v.iter().enumerate() {
            out[j * n + i] = b;
        }
    }
    out
}

/// Undoes [`planes`].
pub fn unplanes(planes: &[u8], width: usize) -> Vec<u8> {
    let n = planes.len() / width;
    let mut out = vec![0u8; n * width];
    for (j, plane) in planes.chunks_exact(n.max(1)).take(width).enumerate() {
        for (i, &b) in plane.iter().enumerate() {
            out[i * width + j] = b;
        }
    }
    out
}

/// Replaces each big-endian unsigned integer of `width` bytes by its wrapping difference from the one
/// before it (the first from 0).
pub fn delta_encode(values: &[u8], width: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len());
    let mut prev = 0u64;
    for v in values.chunks_exact(width) {
        let x = be_uint(v);
        push_be(&mut out, x.wrapping_sub(prev), width);
        prev = x;
    }
    out
}

/// Undoes [`delta_encode`].
pub fn delta_decode(deltas: &[u8], width: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(deltas.len());
    let mut prev = 0u64;
    for d in deltas.chunks_exact(width) {
        prev = prev.wrapping_add(be_uint(d)) & mask(width);
        push_be(&mut out, prev, width);
    }
    out
}

fn mask(width: usize) -> u64 {
    if width >= 8 { u64::MAX } else { (1u64 << (8 * width)) - 1 }
}

fn be_uint(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

fn push_be(out: &mut Vec<u8>, x: u64, width: usize) {
    out.extend_from_slice(&(x & mask(width)).to_be_bytes()[8 - width..]);
}

/// Why a columnar payload cannot be decoded: the caller names the frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("columnar payload byte {offset}: {problem}")]
pub struct ColumnarError {
    pub offset: usize,
    pub problem: String,
}

fn bad<T>(offset: usize, problem: impl Into<String>) -> Result<T, ColumnarError> {
    Err(ColumnarError { offset, problem: problem.into() })
}

/// Reads the little-endian fields of a payload, every read bounded.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ColumnarError> {
        match self.pos.checked_add(n).and_then(|end| self.b.get(self.pos..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => bad(self.pos, format!("the payload ends inside {what}")),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8, ColumnarError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, ColumnarError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, ColumnarError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// One stream as the stream table describes it.
#[derive(Clone, Copy)]
struct StreamRef {
    codec: u8,
    raw_len: u32,
    stored_at: usize,
    stored_len: u32,
}

/// Decodes a columnar payload into exactly `raw_len` bytes of binary COPY stream. Every length is checked
/// against `raw_len` before anything is allocated, so a hostile payload costs at most a few times
/// `raw_len` of memory, and never a panic.
pub fn decode(payload: &[u8], raw_len: u32) -> Result<Vec<u8>, ColumnarError> {
    if raw_len > MAX_CHUNK_RAW {
        return bad(0, format!("declared decoded size {raw_len} exceeds the limit of {MAX_CHUNK_RAW}"));
    }
    let raw_len = raw_len as usize;
    let mut c = Cursor { b: payload, pos: 0 };
    let version = c.u8("the header")?;
    if version != LAYOUT_VERSION {
        return bad(0, format!("unknown layout version {version}"));
    }
    let flags = c.u8("the header")?;
    if flags != 0 {
        return bad(1, format!("reserved flags are set ({flags:#04x}); they must be zero"));
    }
    let columns = usize::from(c.u16("the header")?);
    let tuples = c.u32("the header")? as usize;
    let prefix_len = c.u32("the header")? as usize;
    let suffix_len = c.u32("the header")? as usize;
    if columns > i16::MAX as usize {
        return bad(2, format!("{columns} columns: a binary COPY tuple has at most 32767 fields"));
    }
    // Every tuple takes its field count and a length word per field, whatever its values.
    let fixed = (tuples as u64) * (2 + 4 * columns as u64) + prefix_len as u64 + suffix_len as u64;
    if fixed > raw_len as u64 {
        return bad(
            4,
            format!(
                "{tuples} tuples of {columns} fields with a {prefix_len}-byte prefix and a {suffix_len}-byte suffix need at least {fixed} bytes, more than the declared {raw_len}"
            ),
        );
    }
    let tables = HEADER_LEN + COLUMN_LEN * columns + STREAM_LEN * (1 + 3 * columns);
    if payload.len() < tables {
        return bad(
            payload.len(),
            format!("the payload ends inside the column and stream tables of {columns} columns ({tables} bytes)"),
        );
    }
    let mut descriptors = Vec::with_capacity(columns);
    for _ in 0..columns {
        let at = c.pos;
        let transform = c.u8("the column table")?;
        let transform = Transform::from_byte(transform)
            .ok_or_else(|| ColumnarError { offset: at, problem: format!("unknown transform {transform}") })?;
        let width = c.u32("the column table")?;
        let fixed_width = matches!(width, 2 | 4 | 8);
        if matches!(transform, Transform::Planes | Transform::DeltaPlanes) && !fixed_width {
            return bad(at, format!("transform {} needs a width of 2, 4 or 8 bytes, not {width}", transform as u8));
        }
        if transform == Transform::Dictionary && width != VARYING {
            return bad(at, format!("transform 3 needs the varying width, not {width}"));
        }
        if width != VARYING && width as usize > raw_len {
            return bad(at + 1, format!("width {width} exceeds the declared decoded size {raw_len}"));
        }
        descriptors.push((transform, width));
    }
    let count = 1 + 3 * columns;
    let table_at = c.pos;
    let mut streams = Vec::with_capacity(count);
    let mut stored_total = 0usize;
    for i in 0..count {
        let at = c.pos;
        let codec = c.u8("the stream table")?;
        let raw = c.u32("the stream table")?;
        let stored = c.u32("the stream table")?;
        if codec != STREAM_STORED && codec != STREAM_ZSTD {
            return bad(at, format!("stream {i}: unknown stream codec {codec}"));
        }
        if raw as usize > raw_len {
            return bad(at + 1, format!("stream {i}: decoded size {raw} exceeds the chunk's {raw_len}"));
        }
        if codec == STREAM_STORED && stored != raw {
            return bad(at + 5, format!("stream {i}: stored size {stored} differs from decoded size {raw}"));
        }
        streams.push(StreamRef { codec, raw_len: raw, stored_at: 0, stored_len: stored });
        stored_total = stored_total.saturating_add(stored as usize);
    }
    let body = table_at + count * STREAM_LEN;
    if stored_total != payload.len() - body {
        return bad(
            table_at,
            format!(
                "the streams' stored sizes add up to {stored_total}, but {} bytes follow the tables",
                payload.len() - body
            ),
        );
    }
    let mut at = body;
    for s in &mut streams {
        s.stored_at = at;
        at += s.stored_len as usize;
    }

    // Every stream's size is checked against what the header allows before it is decoded, so the
    // streams of a payload never decode to much more than the chunk they make.
    if streams[0].raw_len as usize != prefix_len + suffix_len {
        return bad(
            table_at,
            format!(
                "the edge stream holds {} bytes, not the prefix and suffix's {}",
                streams[0].raw_len,
                prefix_len + suffix_len
            ),
        );
    }
    let edges = open_stream(payload, streams[0], 0)?;
    let mut cols = Vec::with_capacity(columns);
    let null_bytes = tuples.div_ceil(8);
    // Bytes of values the tuples may still hold: what the declared size leaves after the fixed parts.
    let mut room = raw_len as u64 - fixed;
    for (k, &(transform, width)) in descriptors.iter().enumerate() {
        let (ni, li, vi) = (1 + 3 * k, 2 + 3 * k, 3 + 3 * k);
        let entry = |i: usize| table_at + i * STREAM_LEN;
        let nulls_len = streams[ni].raw_len as usize;
        if nulls_len != 0 && nulls_len != null_bytes {
            return bad(entry(ni), format!("column {k}: NULL map of {nulls_len} bytes for {tuples} tuples"));
        }
        let nulls = open_stream(payload, streams[ni], ni)?;
        if nulls_len != 0 && !tuples.is_multiple_of(8) && nulls[null_bytes - 1] >> (tuples % 8) != 0 {
            return bad(entry(ni), format!("column {k}: NULL map has bits set past tuple {tuples}"));
        }
        let null_count: usize = nulls.iter().map(|b| b.count_ones() as usize).sum();
        let present = tuples - null_count;
        let (lengths_ref, values_ref) = (streams[li], streams[vi]);
        if transform == Transform::Dictionary {
            if lengths_ref.raw_len != 0 {
                return bad(entry(li), format!("column {k}: a length stream for a dictionary column"));
            }
            // The entries' bytes come from the values they stand for; their lengths and the indices add
            // what the header bounds.
            let most = room + 2 + 4 * DICTIONARY_MAX as u64 + present as u64;
            if u64::from(values_ref.raw_len) > most {
                return bad(entry(vi), format!("column {k}: dictionary stream of {} bytes", values_ref.raw_len));
            }
            let stream = open_stream(payload, values_ref, vi)?;
            let (lengths, values) = undictionary(&stream, present, room)
                .map_err(|problem| ColumnarError { offset: entry(vi), problem: format!("column {k}: {problem}") })?;
            room -= values.len() as u64;
            cols.push(Column { nulls, lengths: Some(lengths), width, values, at: 0, next_len: 0 });
            continue;
        }
        let (lengths, expected_values) = if width == VARYING {
            if lengths_ref.raw_len as usize != 4 * present {
                return bad(
                    entry(li),
                    format!("column {k}: length stream of {} bytes for {present} values", lengths_ref.raw_len),
                );
            }
            let lengths: Vec<u32> = unplanes(&open_stream(payload, lengths_ref, li)?, 4)
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (Some(lengths), None)
        } else {
            if lengths_ref.raw_len != 0 {
                return bad(entry(li), format!("column {k}: a length stream for a column of width {width}"));
            }
            (None, Some(present as u64 * u64::from(width)))
        };
        let expected_values = expected_values.unwrap_or_else(|| lengths.iter().flatten().map(|&l| u64::from(l)).sum());
        if u64::from(values_ref.raw_len) != expected_values {
            return bad(
                entry(vi),
                format!(
                    "column {k}: value stream of {} bytes, its lengths add up to {expected_values}",
                    values_ref.raw_len
                ),
            );
        }
        if expected_values > room {
            return bad(entry(vi), format!("column {k}: values beyond the declared decoded size {raw_len}"));
        }
        room -= expected_values;
        let raw_values = open_stream(payload, values_ref, vi)?;
        let values = match transform {
            Transform::Plain => raw_values,
            Transform::Planes => unplanes(&raw_values, width as usize),
            Transform::DeltaPlanes => delta_decode(&unplanes(&raw_values, width as usize), width as usize),
            Transform::Dictionary => unreachable!("dictionary columns are decoded above"),
        };
        cols.push(Column { nulls, lengths, width, values, at: 0, next_len: 0 });
    }
    if room != 0 {
        return bad(4, format!("the tuples make {} bytes, the frame declares {raw_len}", raw_len as u64 - room));
    }
    let mut out = Vec::with_capacity(raw_len);
    out.extend_from_slice(&edges[..prefix_len]);
    let field_count = (columns as i16).to_be_bytes();
    for t in 0..tuples {
        out.extend_from_slice(&field_count);
        for col in &mut cols {
            if col.nulls.get(t / 8).is_some_and(|b| b & (1 << (t % 8)) != 0) {
                out.extend_from_slice(&(-1i32).to_be_bytes());
                continue;
            }
            let len = match &col.lengths {
                Some(l) => l[col.next_len] as usize,
                None => col.width as usize,
            };
            col.next_len += 1;
            out.extend_from_slice(&(len as u32).to_be_bytes());
            out.extend_from_slice(&col.values[col.at..col.at + len]);
            col.at += len;
        }
    }
    out.extend_from_slice(&edges[prefix_len..]);
    debug_assert_eq!(out.len(), raw_len);
    Ok(out)
}

/// A decoded column being reassembled into tuples.
struct Column {
    nulls: Vec<u8>,
    lengths: Option<Vec<u32>>,
    width: u32,
    values: Vec<u8>,
    at: usize,
    next_len: usize,
}

/// Decodes stream `index` to exactly its declared size.
fn open_stream(payload: &[u8], s: StreamRef, index: usize) -> Result<Vec<u8>, ColumnarError> {
    let stored = &payload[s.stored_at..s.stored_at + s.stored_len as usize];
    if s.codec == STREAM_STORED {
        return Ok(stored.to_vec());
    }
    super::frame::unzstd(stored, s.raw_len).or_else(|problem| bad(s.stored_at, format!("stream {index}: {problem}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{BinaryTuples, binary_stream};
    use proptest::prelude::*;

    type Rows = Vec<Vec<Option<Vec<u8>>>>;

    /// Rows of one shape: each column has a kind (fixed width 1, 2, 4 or 8, or varying), NULLs anywhere.
    fn rows() -> impl Strategy<Value = Rows> {
        (0usize..6, 1usize..60).prop_flat_map(|(columns, n)| {
            let widths = proptest::collection::vec(prop_oneof![Just(None), (0usize..9).prop_map(Some)], columns);
            (widths, Just(n)).prop_flat_map(|(widths, n)| {
                let row: Vec<BoxedStrategy<Option<Vec<u8>>>> = widths
                    .iter()
                    .map(|w| match w {
                        Some(w) => proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), *w)).boxed(),
                        None => proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..40)).boxed(),
                    })
                    .collect();
                proptest::collection::vec(row, n)
            })
        })
    }

    /// Rows enough for dictionaries: a few distinct values (NULL among them) per column, repeated.
    fn dictionary_rows() -> impl Strategy<Value = Rows> {
        let column =
            proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6)), 1..12);
        (proptest::collection::vec(column, 1..4), 64usize..2500, any::<u64>()).prop_map(|(columns, n, mut seed)| {
            (0..n)
                .map(|_| {
                    columns
                        .iter()
                        .map(|values| {
                            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            values[(seed >> 33) as usize % values.len()].clone()
                        })
                        .collect()
                })
                .collect()
        })
    }

    /// Cuts a stream into chunks on tuple boundaries after the given rows, as the dump does.
    fn chunks(rows: &Rows, cuts: &[usize]) -> Vec<Vec<u8>> {
        let stream = binary_stream(rows);
        let mut bounds = vec![0];
        let mut walker = BinaryTuples::new(&stream);
        let mut i = 0;
        for t in walker.by_ref() {
            let t = t.unwrap();
            i += 1;
            if cuts.contains(&i) {
                bounds.push(t.offset() + t.bytes().len());
            }
        }
        bounds.push(stream.len());
        bounds.dedup();
        bounds.windows(2).map(|w| stream[w[0]..w[1]].to_vec()).collect()
    }

    fn round_trip(raw: &[u8], level: i32) -> Option<Vec<u8>> {
        let encoded = encode(raw, level)?;
        Some(decode(&encoded, raw.len() as u32).expect("an encoded chunk decodes"))
    }

    proptest! {
        /// Any chunk of any binary tuple stream, cut anywhere between tuples, comes back bit for bit.
        #[test]
        fn any_tuple_stream_round_trips(rows in rows(), cuts in proptest::collection::vec(0usize..60, 0..4), level in -3i32..4) {
            for chunk in chunks(&rows, &cuts) {
                if let Some(back) = round_trip(&chunk, level) {
                    prop_assert_eq!(back, chunk);
                } else {
                    // Only a chunk that holds no tuple (the header and trailer, or the trailer alone) is refused.
                    let walker = if chunk.starts_with(BINARY_SIGNATURE) { BinaryTuples::new(&chunk) } else { BinaryTuples::resume(&chunk) };
                    prop_assert_eq!(walker.count(), 0);
                }
            }
        }

        /// Columns of few distinct values, stored as dictionaries, come back bit for bit.
        #[test]
        fn dictionary_columns_round_trip(rows in dictionary_rows(), cut in 0usize..2500) {
            for chunk in chunks(&rows, &[cut]) {
                if let Some(back) = round_trip(&chunk, 1) {
                    prop_assert_eq!(back, chunk);
                }
            }
        }

        /// Tuples of differing field counts, or bytes that are not whole tuples, are refused, never mangled.
        #[test]
        fn streams_outside_the_model_are_refused_or_round_trip(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Some(back) = round_trip(&raw, 1) {
                prop_assert_eq!(back, raw);
            }
        }

        /// Arbitrary payloads give an error or some bytes of the declared size, never a panic.
        #[test]
        fn arbitrary_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..400), raw_len in 0u32..5000) {
            if let Ok(out) = decode(&payload, raw_len) {
                prop_assert_eq!(out.len(), raw_len as usize);
            }
        }

        /// Any flipped byte or truncation of a valid payload is an error or decodes to the declared size.
        #[test]
        fn damaged_payloads_never_panic(rows in prop_oneof![rows(), dictionary_rows()], at in any::<usize>(), bit in 0u8..8, cut in any::<bool>()) {
            let raw = binary_stream(&rows);
            let Some(mut encoded) = encode(&raw, 1) else { return Ok(()) };
            let at = at % encoded.len();
            if cut { encoded.truncate(at) } else { encoded[at] ^= 1 << bit }
            if let Ok(out) = decode(&encoded, raw.len() as u32) {
                prop_assert_eq!(out.len(), raw.len());
            }
        }

        #[test]
        fn planes_round_trip(values in proptest::collection::vec(any::<u8>(), 0..200), w in prop_oneof![Just(2usize), Just(4), Just(8)]) {
            let values = &values[..values.len() / w * w];
            prop_assert_eq!(unplanes(&planes(values, w), w), values);
        }

        #[test]
        fn deltas_round_trip(values in proptest::collection::vec(any::<u8>(), 0..200), w in prop_oneof![Just(2usize), Just(4), Just(8)]) {
            let values = &values[..values.len() / w * w];
            prop_assert_eq!(delta_decode(&delta_encode(values, w), w), values);
        }
    }

    #[test]
    fn planes_put_each_byte_position_together() {
        let values = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(planes(&values, 4), [1, 5, 2, 6, 3, 7, 4, 8]);
        assert_eq!(planes(&values, 2), [1, 3, 5, 7, 2, 4, 6, 8]);
    }

    #[test]
    fn deltas_of_ascending_ids_are_small_and_wrap() {
        let ids: Vec<u8> = [1000i64, 1001, 1003, 1002].iter().flat_map(|i| i.to_be_bytes()).collect();
        let d = delta_encode(&ids, 8);
        let words: Vec<u64> = d.chunks(8).map(be_uint).collect();
        assert_eq!(words, [1000, 1, 2, u64::MAX]);
        let days: Vec<u8> = [0x7fff_ffffu32, 0x8000_0000, 0].iter().flat_map(|i| i.to_be_bytes()).collect();
        assert_eq!(delta_decode(&delta_encode(&days, 4), 4), days);
    }

    #[test]
    fn an_ascending_key_is_stored_as_deltas_and_a_random_one_as_planes() {
        let ordered: Rows = (0..1000i64).map(|i| vec![Some((i * 3).to_be_bytes().to_vec())]).collect();
        let encoded = encode(&binary_stream(&ordered), 1).unwrap();
        assert_eq!(encoded[HEADER_LEN], Transform::DeltaPlanes as u8);
        let mut x = 12345u64;
        let random: Rows = (0..1000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                vec![Some(((x >> 40) as u32).to_be_bytes().to_vec())]
            })
            .collect();
        let encoded = encode(&binary_stream(&random), 1).unwrap();
        assert_eq!(encoded[HEADER_LEN], Transform::Planes as u8);
    }

    #[test]
    fn few_distinct_values_make_a_dictionary_and_many_do_not() {
        let modes = ["AIR", "RAIL", "SHIP", "TRUCK"];
        let few: Rows = (0..2000).map(|i| vec![Some(modes[i % 4].as_bytes().to_vec())]).collect();
        let stream = binary_stream(&few);
        let encoded = encode(&stream, 1).unwrap();
        assert_eq!((encoded[HEADER_LEN], &encoded[HEADER_LEN + 1..HEADER_LEN + 5]), (3, &[0xff; 4][..]));
        assert_eq!(decode(&encoded, stream.len() as u32).unwrap(), stream);
        assert!(dictionary(&[3, 4, 3], b"AIRRAILAIR").is_none(), "too few values to repay a dictionary");
        let lengths = vec![2u32; 2000];
        let values: Vec<u8> = (0..2000u32).flat_map(|i| ((i % 257) as u16).to_be_bytes()).collect();
        assert!(dictionary(&lengths, &values).is_none(), "257 distinct values");
        let values: Vec<u8> = (0..2000u32).flat_map(|i| ((i % 256) as u16).to_be_bytes()).collect();
        let stream = dictionary(&lengths, &values).unwrap();
        assert_eq!(undictionary(&stream, 2000, u64::MAX).unwrap(), (lengths, values));
        assert!(undictionary(&stream, 1999, u64::MAX).is_err());
        assert!(undictionary(&stream, 2000, 3999).unwrap_err().contains("beyond the declared"));
        // Values that agree on their first 8 bytes, or are a prefix of one another, or empty, stay apart.
        let words = ["DELIVER IN PERSON", "DELIVER IN", "DELIVER ", "DELIVER", "", "DELIVER IN PERSON!", "DELIVER\0"];
        let (mut lengths, mut values) = (Vec::new(), Vec::new());
        for i in 0..700 {
            let w = words[i * 5 % words.len()].as_bytes();
            lengths.push(w.len() as u32);
            values.extend_from_slice(w);
        }
        let stream = dictionary(&lengths, &values).unwrap();
        assert_eq!(u16::from_le_bytes([stream[0], stream[1]]), words.len() as u16);
        assert_eq!(undictionary(&stream, 700, u64::MAX).unwrap(), (lengths, values));
    }

    #[test]
    fn the_header_and_trailer_are_kept_verbatim() {
        let rows: Rows = vec![vec![Some(b"x".to_vec()), None]; 3];
        let stream = binary_stream(&rows);
        let encoded = encode(&stream, 1).unwrap();
        assert_eq!(&encoded[..HEADER_LEN], &[1, 0, 2, 0, 3, 0, 0, 0, 19, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(decode(&encoded, stream.len() as u32).unwrap(), stream);
    }

    #[test]
    fn the_room_made_for_the_columns_stays_near_the_chunks_size_whatever_its_first_tuple() {
        let held = |rows: &Rows| {
            let raw = binary_stream(rows);
            let chunk = split(&raw).unwrap();
            let bytes: usize = chunk.columns.iter().map(|c| c.values.capacity() + 4 * c.lengths.capacity()).sum();
            (bytes, raw.len())
        };
        // A small first tuple (NULLs, empty text) before big ones, and a big one before small ones.
        let small_first: Rows = std::iter::once(vec![None, Some(Vec::new()), Some(vec![1; 8])])
            .chain((0..2000).map(|_| vec![Some(vec![7; 300]), Some(vec![8; 300]), Some(vec![9; 8])]))
            .collect();
        let big_first: Rows = std::iter::once(vec![Some(vec![7; 100_000]), Some(vec![8; 8])])
            .chain((0..5000).map(|_| vec![Some(vec![7; 3]), Some(vec![8; 8])]))
            .collect();
        let uniform: Rows = (0..5000).map(|i| vec![Some(vec![i as u8; 8]), Some(vec![1; 20 + i % 7])]).collect();
        for rows in [small_first, big_first, uniform] {
            let (bytes, raw) = held(&rows);
            assert!(bytes <= 2 * raw + 4096, "{bytes} bytes of columns for a chunk of {raw}");
        }
        // The worst a guess can do: 64 tuples that are all NULLs before big ones reserve lengths for
        // many tuples that never come (at most a quarter more than the chunk), and the values grow.
        let misleading: Rows = (0..64)
            .map(|_| vec![None, None, None])
            .chain((0..500).map(|_| vec![Some(vec![7; 500]), Some(vec![8; 500]), Some(vec![9; 500])]))
            .collect();
        let (bytes, raw) = held(&misleading);
        assert!(bytes <= 3 * raw + 3 * raw / 10, "{bytes} bytes of columns for a chunk of {raw}");
    }

    #[test]
    fn tuples_of_differing_field_counts_are_refused() {
        let rows: Rows = vec![vec![Some(b"x".to_vec())], vec![Some(b"x".to_vec()), None]];
        assert!(encode(&binary_stream(&rows), 1).is_none());
        assert!(encode(b"1\tfoo\n", 1).is_none(), "a text chunk");
        assert!(encode(&binary_stream(&[]), 1).is_none(), "no tuples");
    }

    #[test]
    fn a_declared_size_that_disagrees_is_an_error() {
        let rows: Rows =
            (0..50u32).map(|i| vec![Some(i.to_be_bytes().to_vec()), Some(vec![b'a'; i as usize % 7])]).collect();
        let stream = binary_stream(&rows);
        let encoded = encode(&stream, 1).unwrap();
        for declared in [stream.len() - 1, stream.len() + 1, 0, 10] {
            let err = decode(&encoded, declared as u32).unwrap_err();
            assert!(err.problem.contains("declare") || err.problem.contains("exceeds"), "{err}");
        }
        let mut v = encoded.clone();
        v[0] = 9;
        assert_eq!(
            decode(&v, stream.len() as u32).unwrap_err().to_string(),
            "columnar payload byte 0: unknown layout version 9"
        );
    }

    #[test]
    fn a_huge_tuple_count_is_refused_before_anything_is_allocated() {
        let mut v = vec![1u8, 0, 1, 0];
        v.extend_from_slice(&u32::MAX.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        let err = decode(&v, 1 << 20).unwrap_err();
        assert!(err.problem.contains("need at least"), "{err}");
    }
}
