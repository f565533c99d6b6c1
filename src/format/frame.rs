//! Frames: a 32-byte frame header followed by a payload stored with a codec.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::crypt::{DataKey, SEAL_OVERHEAD};
use super::error::checksum_mismatch;
use super::{
    ChunkSeq, Element, FORMAT_MINOR, FileHeader, FormatError, MAX_CHUNK_RAW, MAX_DOCUMENT_RAW, MAX_KEY_RAW, PartId,
    crc32, le_u32,
};

/// Frame flag bit 0 (format 1.1): the payload is sealed with the archive's data key.
const FLAG_SEALED: u16 = 1;

/// Every frame header starts with these bytes, so a reader that lost its place can tell a frame header
/// from payload, and a hex dump shows where frames begin.
pub const FRAME_MAGIC: [u8; 4] = *b"PGSF";

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Catalog = 1,
    Chunk = 2,
    Manifest = 3,
    /// Format 1.1: the archive's data key, wrapped with age for its recipients. Only in encrypted
    /// archives, right after the file header.
    Key = 4,
}

impl FrameKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(FrameKind::Catalog),
            2 => Some(FrameKind::Chunk),
            3 => Some(FrameKind::Manifest),
            4 => Some(FrameKind::Key),
            _ => None,
        }
    }

    /// The largest decoded payload a frame of this kind may declare.
    pub fn max_raw_len(self) -> u32 {
        match self {
            FrameKind::Chunk => MAX_CHUNK_RAW,
            FrameKind::Catalog | FrameKind::Manifest => MAX_DOCUMENT_RAW,
            FrameKind::Key => MAX_KEY_RAW,
        }
    }
}

/// How a frame's payload is stored. Each frame names its own, so new codecs need no new major version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Stored as is.
    None = 0,
    /// One zstd frame (RFC 8878) holding exactly the decoded payload.
    Zstd = 1,
    /// Format 1.2: a chunk of binary COPY tuples split into per-column streams, each compressed with
    /// zstd (`format-spec/columnar.md`). Only on chunk frames of binary parts.
    Columnar = 2,
}

impl Codec {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Codec::None),
            1 => Some(Codec::Zstd),
            2 => Some(Codec::Columnar),
            _ => None,
        }
    }

    /// The codec's name in messages and reports.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Zstd => "zstd",
            Codec::Columnar => "columnar",
        }
    }

    /// The format minor version that defines the codec: an archive of an older minor cannot hold it.
    pub fn minor(self) -> u16 {
        match self {
            Codec::None | Codec::Zstd => 0,
            Codec::Columnar => COLUMNAR_MINOR,
        }
    }
}

/// The format minor version that defines the columnar codec.
pub const COLUMNAR_MINOR: u16 = 2;

/// How to store payloads when writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd {
        level: i32,
    },
    /// Chunks of binary parts with the columnar codec when it stores them smaller, else as with
    /// [`Compression::Zstd`] at the same level; the catalog, the manifest and text parts with zstd.
    Columnar {
        level: i32,
    },
}

impl Compression {
    /// The format minor version an archive written with this compression declares: 1.2 when columnar
    /// chunks may appear, else 1.0.
    pub fn minor(self) -> u16 {
        match self {
            Compression::Columnar { .. } => COLUMNAR_MINOR,
            Compression::None | Compression::Zstd { .. } => 0,
        }
    }

    /// The compression for a part of `format`: text parts stay row-wise.
    pub fn for_format(self, format: super::CopyFormat) -> Self {
        match (self, format) {
            (Compression::Columnar { level }, super::CopyFormat::Text) => Compression::Zstd { level },
            _ => self,
        }
    }
}

impl Default for Compression {
    /// Columnar at zstd level 1: archives half to two thirds the size of row-wise zstd's for the same dump
    /// time (README, "Performance"); level 1 is the fastest that still compresses COPY streams well.
    fn default() -> Self {
        Compression::Columnar { level: 1 }
    }
}

/// The fixed-size header in front of every frame's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: FrameKind,
    pub codec: Codec,
    /// Format 1.1: the payload is sealed with the archive's data key (flag bit 0). Set on every frame of
    /// an encrypted archive but its key frame, and on no frame of a plain one.
    pub sealed: bool,
    /// The part a chunk belongs to; zero for the catalog and the manifest.
    pub part: PartId,
    /// The chunk's position in its part; zero for the catalog and the manifest.
    pub seq: ChunkSeq,
    /// Bytes of payload that follow this header.
    pub stored_len: u32,
    /// Bytes of payload after decoding.
    pub raw_len: u32,
    /// CRC-32 of the stored payload bytes.
    pub payload_crc: u32,
}

impl FrameHeader {
    pub const LEN: usize = 32;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..4].copy_from_slice(&FRAME_MAGIC);
        b[4] = self.kind as u8;
        b[5] = self.codec as u8;
        let flags = if self.sealed { FLAG_SEALED } else { 0 };
        b[6..8].copy_from_slice(&flags.to_le_bytes());
        b[8..12].copy_from_slice(&self.part.0.to_le_bytes());
        b[12..16].copy_from_slice(&self.seq.0.to_le_bytes());
        b[16..20].copy_from_slice(&self.stored_len.to_le_bytes());
        b[20..24].copy_from_slice(&self.raw_len.to_le_bytes());
        b[24..28].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a frame header found at `offset` in an archive whose file header is `archive`;
    /// `element` names the frame in errors. The archive's minor version decides what an unknown codec
    /// means: one a newer minor may have defined (incompatible), or damage.
    pub fn decode(
        b: &[u8; Self::LEN],
        archive: &FileHeader,
        offset: u64,
        element: Element,
    ) -> Result<Self, FormatError> {
        let corrupt = |at: u64, problem: String| FormatError::corrupt(element.clone(), offset + at, problem);
        if b[0..4] != FRAME_MAGIC {
            return Err(corrupt(0, format!("no frame magic (found bytes {})", hex::encode(&b[0..4]))));
        }
        let stored = le_u32(b, 28);
        let computed = crc32(&b[0..28]);
        if stored != computed {
            return Err(corrupt(0, format!("frame header {}", checksum_mismatch(stored, computed))));
        }
        let kind = FrameKind::from_byte(b[4]).ok_or_else(|| corrupt(4, format!("unknown frame kind {}", b[4])))?;
        let codec = Codec::from_byte(b[5]).ok_or_else(|| {
            if archive.minor > FORMAT_MINOR {
                FormatError::NewerCodec {
                    element: element.clone(),
                    offset: offset + 5,
                    codec: b[5],
                    major: archive.major,
                    minor: archive.minor,
                }
            } else {
                corrupt(5, format!("unknown codec {}", b[5]))
            }
        })?;
        // An archive's minor names the oldest format that defines all it holds: a codec of a later minor is
        // one its writer did not know, so not one it wrote.
        if codec.minor() > archive.minor {
            return Err(corrupt(
                5,
                format!(
                    "codec {} ({}) is defined by format 1.{}, but the archive is format 1.{}",
                    b[5],
                    codec.name(),
                    codec.minor(),
                    archive.minor
                ),
            ));
        }
        if codec == Codec::Columnar && kind != FrameKind::Chunk {
            return Err(corrupt(5, format!("codec 2 (columnar) on a {kind:?} frame: it is only for chunks")));
        }
        let flags = u16::from_le_bytes([b[6], b[7]]);
        let known = if archive.encrypted { FLAG_SEALED } else { 0 };
        if flags & !known != 0 {
            return Err(corrupt(6, format!("reserved flag bits are set ({flags:#06x}); they must be zero")));
        }
        let sealed = flags & FLAG_SEALED != 0;
        // In an encrypted archive every frame is sealed but the key frame, which holds what opens them.
        if archive.encrypted && sealed != (kind != FrameKind::Key) {
            return Err(corrupt(
                6,
                if sealed {
                    "the key frame is marked sealed".into()
                } else {
                    format!("{kind:?} frame is not sealed in an encrypted archive")
                },
            ));
        }
        if kind == FrameKind::Key && (!archive.encrypted || codec != Codec::None) {
            return Err(corrupt(
                4,
                if archive.encrypted {
                    "the key frame must be stored with codec 0".into()
                } else {
                    "a key frame in an archive that is not encrypted".into()
                },
            ));
        }
        let h = FrameHeader {
            kind,
            codec,
            sealed,
            part: PartId(le_u32(b, 8)),
            seq: ChunkSeq(le_u32(b, 12)),
            stored_len: le_u32(b, 16),
            raw_len: le_u32(b, 20),
            payload_crc: le_u32(b, 24),
        };
        if kind != FrameKind::Chunk && (h.part.0 != 0 || h.seq.0 != 0) {
            return Err(corrupt(8, "part and sequence must be zero outside chunk frames".into()));
        }
        if h.raw_len > kind.max_raw_len() {
            return Err(corrupt(
                20,
                format!("declared decoded size {} exceeds the limit of {}", h.raw_len, kind.max_raw_len()),
            ));
        }
        if kind == FrameKind::Chunk && h.raw_len == 0 {
            return Err(corrupt(20, "chunk declares an empty payload".into()));
        }
        if sealed && h.stored_len < SEAL_OVERHEAD {
            return Err(corrupt(
                16,
                format!("sealed payload of {} bytes is shorter than its nonce and tag ({SEAL_OVERHEAD})", h.stored_len),
            ));
        }
        let plain_len = h.plain_len();
        match codec {
            Codec::None if plain_len != h.raw_len => {
                return Err(corrupt(
                    16,
                    format!("stored size {plain_len} differs from decoded size {} with no codec", h.raw_len),
                ));
            }
            Codec::Zstd | Codec::Columnar if plain_len > h.raw_len => {
                return Err(corrupt(16, format!("compressed size {plain_len} exceeds decoded size {}", h.raw_len)));
            }
            _ => {}
        }
        Ok(h)
    }

    /// Total bytes of the frame on disk: header and payload.
    pub fn frame_len(&self) -> u64 {
        Self::LEN as u64 + u64::from(self.stored_len)
    }

    /// Bytes of the payload once unsealed: the stored bytes less the nonce and tag of a sealed payload.
    pub fn plain_len(&self) -> u32 {
        if self.sealed { self.stored_len.saturating_sub(SEAL_OVERHEAD) } else { self.stored_len }
    }

    /// Checks the payload's CRC and decodes it to exactly `raw_len` bytes. `offset` is the frame's. A
    /// sealed payload needs its archive's key: see [`open_payload`](Self::open_payload).
    pub fn decode_payload(&self, stored: &[u8], offset: u64, element: Element) -> Result<Vec<u8>, FormatError> {
        self.open_payload(None, stored, offset, element)
    }

    /// Checks the payload's CRC, unseals it with `key` when it is sealed, and decodes it to exactly
    /// `raw_len` bytes. `offset` is the frame's.
    pub fn open_payload(
        &self,
        key: Option<&DataKey>,
        stored: &[u8],
        offset: u64,
        element: Element,
    ) -> Result<Vec<u8>, FormatError> {
        let payload_at = offset + Self::LEN as u64;
        debug_assert_eq!(stored.len(), self.stored_len as usize);
        let computed = crc32(stored);
        if computed != self.payload_crc {
            return Err(FormatError::corrupt(
                element,
                payload_at,
                format!("payload {}", checksum_mismatch(self.payload_crc, computed)),
            ));
        }
        if !self.sealed {
            return self.decode_plain(stored, payload_at, element);
        }
        let Some(key) = key else {
            return Err(FormatError::NeedsIdentity { recipients: String::new() });
        };
        let plain = key.open(self, stored).ok_or_else(|| {
            FormatError::corrupt(
                element.clone(),
                payload_at,
                "sealed payload does not authenticate: it was modified, or moved from another frame or archive",
            )
        })?;
        self.decode_plain(&plain, payload_at, element)
    }

    /// Decodes an unsealed payload with the frame's codec.
    fn decode_plain(&self, stored: &[u8], payload_at: u64, element: Element) -> Result<Vec<u8>, FormatError> {
        match self.codec {
            Codec::None => Ok(stored.to_vec()),
            Codec::Zstd => {
                unzstd(stored, self.raw_len).map_err(|problem| FormatError::corrupt(element, payload_at, problem))
            }
            Codec::Columnar => super::columnar::decode(stored, self.raw_len)
                .map_err(|e| FormatError::corrupt(element, payload_at, e.to_string())),
        }
    }
}

/// Payloads up to this size are decoded in one call into an output of their declared size; larger ones
/// (a chunk holding one huge row) grow with what the frame really holds, so that a small frame cannot make
/// the reader reserve the gigabyte a chunk may declare.
const ONE_CALL_MAX: u32 = 64 << 20;

thread_local! {
    /// This thread's zstd decompression context, made once: not once per chunk and column stream.
    static DECOMPRESSOR: std::cell::RefCell<zstd::zstd_safe::DCtx<'static>> =
        std::cell::RefCell::new(zstd::zstd_safe::DCtx::create());
}

/// Decodes `stored`, which must be exactly one zstd frame, to exactly `raw_len` bytes; the error says
/// what is wrong with it. Up to [`ONE_CALL_MAX`] the frame is decoded in one call with this thread's
/// context, straight into the output (no window buffer to copy out of, no zeroed memory); a frame that
/// does not decode so, or a larger one, is decoded as a stream, whose errors name the problem.
pub(super) fn unzstd(stored: &[u8], raw_len: u32) -> Result<Vec<u8>, String> {
    // Nothing may follow the frame, not even a skippable frame.
    match zstd::zstd_safe::find_frame_compressed_size(stored) {
        Ok(n) if n == stored.len() => {}
        Ok(n) => return Err(format!("{} bytes follow the zstd frame, which ends at byte {n}", stored.len() - n)),
        Err(code) => return Err(format!("zstd: {}", zstd::zstd_safe::get_error_name(code))),
    }
    if raw_len <= ONE_CALL_MAX {
        let mut out = Vec::with_capacity(raw_len as usize);
        let decoded = DECOMPRESSOR.with(|d| d.borrow_mut().decompress(&mut out, stored));
        if decoded == Ok(raw_len as usize) {
            return Ok(out);
        }
    }
    unzstd_streaming(stored, raw_len)
}

/// [`unzstd`] as a stream: the window a frame may ask for is bounded by its declared output, and the
/// output grows with what arrives, up to the declared size.
fn unzstd_streaming(stored: &[u8], raw_len: u32) -> Result<Vec<u8>, String> {
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(stored).map_err(|e| format!("zstd: {e}"))?.single_frame();
    decoder.window_log_max(window_log_for(raw_len)).map_err(|e| format!("zstd: {e}"))?;
    match read_bounded(&mut decoder, raw_len as usize).map_err(|e| format!("zstd: {e}"))? {
        Ok(out) => Ok(out),
        Err(got) => Err(format!(
            "decoded size {}{got} differs from the declared {raw_len}",
            if got > raw_len as usize { "at least " } else { "" },
        )),
    }
}

/// Reads exactly `len` bytes from `r`. The buffer grows with what arrives, never past `len`, so neither
/// a header's declaration nor a decompression bomb can make it allocate more than the output really
/// holds, up to the declared size. `Ok(Err(n))`: the output had `n` bytes, other than `len` (`len + 1`
/// when there was more).
fn read_bounded(r: &mut impl Read, len: usize) -> std::io::Result<Result<Vec<u8>, usize>> {
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.len() == len {
            let mut probe = [0u8; 1];
            return Ok(match r.read(&mut probe)? {
                0 => Ok(out),
                _ => Err(len + 1),
            });
        }
        if out.len() == out.capacity() {
            // Double, starting at 1 MiB, capped at the declared size.
            let grow = out.len().max(1 << 20).min(len - out.len());
            out.reserve_exact(grow);
        }
        let start = out.len();
        out.resize(out.capacity().min(len), 0);
        let n = r.read(&mut out[start..])?;
        out.truncate(start + n);
        if n == 0 {
            return Ok(Err(out.len()));
        }
    }
}

/// The largest zstd window log a payload of `raw_len` bytes may use: the smallest power of two that holds
/// it, at least 2^10. zstd's one-shot compressor never uses a larger window than its input needs.
pub fn window_log_for(raw_len: u32) -> u32 {
    (32 - raw_len.saturating_sub(1).leading_zeros()).max(10)
}

/// Stores `raw` with `compression`, falling back to no codec when compressing does not make it smaller.
/// Returns the codec used and the stored bytes.
pub(crate) fn store(raw: &[u8], compression: Compression) -> (Codec, Vec<u8>) {
    if let Compression::Zstd { level } | Compression::Columnar { level } = compression
        && let Some(z) = with_compressor(level, |c| c.compress(raw).ok()).flatten()
        && z.len() < raw.len()
    {
        return (Codec::Zstd, z);
    }
    (Codec::None, raw.to_vec())
}

thread_local! {
    /// This thread's zstd context and the level it was made for: made once, not once per chunk (its
    /// tables are megabytes, which the system would map and zero again for every chunk).
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's zstd context at `level`; `None` when zstd cannot make one.
pub(crate) fn with_compressor<T>(level: i32, f: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> T) -> Option<T> {
    COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|(l, _)| *l != level) {
            *cell = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        cell.as_mut().map(|(_, c)| f(c))
    })
}

/// Stores a chunk of a part's COPY stream: with [`Compression::Columnar`], with whichever of the columnar
/// codec and row-wise zstd stores it smaller (columnar only for binary COPY tuples), else as [`store`]
/// does. With `trials`, the two are both tried only on the chunks [`CodecTrials`] picks, and the others of
/// the part go the way of the latest trial.
pub(crate) fn store_chunk(raw: &[u8], compression: Compression, trials: Option<&CodecTrials>) -> (Codec, Vec<u8>) {
    let Compression::Columnar { level } = compression else {
        return store(raw, compression);
    };
    let columnar = || super::columnar::encode(raw, level).filter(|c| c.len() < raw.len());
    if !trials.is_none_or(CodecTrials::next_is_trial) {
        // Not a trial: the way of the latest one.
        if trials.is_some_and(CodecTrials::prefers_row_wise) {
            return store(raw, compression);
        }
        return match columnar() {
            Some(c) => (Codec::Columnar, c),
            None => store(raw, compression),
        };
    }
    let columnar = columnar();
    let row_wise = store(raw, compression);
    let row_wise_wins = columnar.as_ref().is_none_or(|c| row_wise.1.len() <= c.len());
    if let Some(trials) = trials {
        trials.record(row_wise_wins);
    }
    match columnar {
        Some(c) if !row_wise_wins => (Codec::Columnar, c),
        _ => row_wise,
    }
}

/// Which chunks of one part's stream try both the columnar codec and row-wise zstd, and which of the two
/// won the latest trial. Compressing every chunk both ways would cost the dump a second zstd pass over all
/// its data; a part's chunks come from one table, so its first two chunks and every 16th after them are
/// tried, and the rest follow. Shared by the threads that encode a part's chunks at once: a chunk that
/// starts before an earlier trial ends follows the trial before that.
#[derive(Debug, Default)]
pub struct CodecTrials {
    chunks: AtomicU32,
    row_wise_won: AtomicBool,
}

/// Every how many chunks a part tries both codecs again (after its first two).
const TRIAL_EVERY: u32 = 16;

impl CodecTrials {
    fn next_is_trial(&self) -> bool {
        let n = self.chunks.fetch_add(1, Ordering::Relaxed);
        n < 2 || n.is_multiple_of(TRIAL_EVERY)
    }

    fn prefers_row_wise(&self) -> bool {
        self.row_wise_won.load(Ordering::Relaxed)
    }

    fn record(&self, row_wise_won: bool) {
        self.row_wise_won.store(row_wise_won, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A binary COPY stream of `n` rows: a counter and one of three words.
    fn regular_rows(n: i64) -> Vec<u8> {
        let rows: Vec<Vec<Option<Vec<u8>>>> = (0..n)
            .map(|i| vec![Some((i * 7).to_be_bytes().to_vec()), Some(format!("mode {}", i % 3).into_bytes())])
            .collect();
        super::super::copy::binary_stream(&rows)
    }

    #[test]
    fn a_chunk_goes_whichever_way_is_smaller() {
        let columnar = Compression::Columnar { level: 1 };
        // Thousands of regular rows: one stream per column wins.
        let big = regular_rows(5000);
        let (codec, stored) = store_chunk(&big, columnar, None);
        assert_eq!(codec, Codec::Columnar);
        assert!(stored.len() < store(&big, Compression::Zstd { level: 1 }).1.len());
        // Three rows: the columnar tables cost more than they save, and the chunk stays row-wise.
        let small = regular_rows(3);
        assert_eq!(store_chunk(&small, columnar, None).0, store(&small, Compression::Zstd { level: 1 }).0);
        assert_ne!(store_chunk(&small, columnar, None).0, Codec::Columnar);
        // Row-wise compressions never go columnar.
        assert_eq!(store_chunk(&big, Compression::Zstd { level: 1 }, None).0, Codec::Zstd);
    }

    #[test]
    fn a_part_tries_both_codecs_on_its_first_chunks_and_every_sixteenth() {
        let trials = CodecTrials::default();
        let picked: Vec<u32> = (0..40).filter(|_| trials.next_is_trial()).collect();
        assert_eq!(picked, [0, 1, 16, 32]);
        // Between trials the chunks follow the latest one, whatever they would win on their own.
        let columnar = Compression::Columnar { level: 1 };
        let (small, big) = (regular_rows(3), regular_rows(5000));
        let trials = CodecTrials::default();
        assert_ne!(store_chunk(&small, columnar, Some(&trials)).0, Codec::Columnar);
        assert_ne!(store_chunk(&small, columnar, Some(&trials)).0, Codec::Columnar);
        assert!(trials.prefers_row_wise());
        assert_eq!(store_chunk(&big, columnar, Some(&trials)).0, Codec::Zstd, "chunk 2 follows the trial");
        let trials = CodecTrials::default();
        store_chunk(&big, columnar, Some(&trials));
        store_chunk(&big, columnar, Some(&trials));
        assert!(!trials.prefers_row_wise());
        assert_eq!(store_chunk(&big, columnar, Some(&trials)).0, Codec::Columnar);
    }

    fn kind() -> impl Strategy<Value = FrameKind> {
        prop_oneof![Just(FrameKind::Catalog), Just(FrameKind::Chunk), Just(FrameKind::Manifest)]
    }

    proptest! {
        #[test]
        fn header_round_trips(kind in kind(), part in any::<u32>(), seq in any::<u32>(), raw in 1u32..MAX_DOCUMENT_RAW,
                              crc in any::<u32>(), zstd in any::<bool>(), shrink in 0u32..1000) {
            let (part, seq) = if kind == FrameKind::Chunk { (part, seq) } else { (0, 0) };
            let (codec, stored_len) = if zstd { (Codec::Zstd, raw.saturating_sub(shrink)) } else { (Codec::None, raw) };
            let h = FrameHeader { kind, codec, sealed: false, part: PartId(part), seq: ChunkSeq(seq), stored_len, raw_len: raw, payload_crc: crc };
            prop_assert_eq!(FrameHeader::decode(&h.encode(), &FileHeader::default(), 0, Element::Frame { index: 0 }).unwrap(), h);
        }

        #[test]
        fn payload_round_trips(raw in proptest::collection::vec(any::<u8>(), 1..5000), level in -3i32..6, compress in any::<bool>()) {
            let c = if compress { Compression::Zstd { level } } else { Compression::None };
            let (codec, stored) = store(&raw, c);
            let h = FrameHeader { kind: FrameKind::Chunk, codec, sealed: false, part: PartId(1), seq: ChunkSeq(0),
                stored_len: stored.len() as u32, raw_len: raw.len() as u32, payload_crc: crc32(&stored) };
            prop_assert_eq!(h.decode_payload(&stored, 0, Element::Frame { index: 0 }).unwrap(), raw);
        }

        #[test]
        fn any_flipped_header_bit_is_an_error(bit in 0usize..256) {
            let h = FrameHeader { kind: FrameKind::Chunk, codec: Codec::Zstd, sealed: false, part: PartId(3), seq: ChunkSeq(7),
                stored_len: 100, raw_len: 200, payload_crc: 0xdead_beef };
            let mut b = h.encode();
            b[bit / 8] ^= 1 << (bit % 8);
            let decoded = FrameHeader::decode(&b, &FileHeader::default(), 0, Element::Frame { index: 0 });
            prop_assert!(decoded.is_err(), "bit {} flipped went unnoticed", bit);
        }
    }

    /// Defect: a codec that a newer minor version defines was reported as damage, though the archive is
    /// sound and only this reader too old for it.
    #[test]
    fn an_unknown_codec_is_incompatible_in_a_newer_minor_and_damage_otherwise() {
        let h = FrameHeader {
            kind: FrameKind::Chunk,
            codec: Codec::Zstd,
            sealed: false,
            part: PartId(1),
            seq: ChunkSeq(0),
            stored_len: 10,
            raw_len: 20,
            payload_crc: 0,
        };
        let mut b = h.encode();
        b[5] = 7;
        let crc = crc32(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        let element = Element::Frame { index: 3 };

        let newer = FileHeader { major: 1, minor: FORMAT_MINOR + 1, encrypted: false };
        let err = FrameHeader::decode(&b, &newer, 100, element.clone()).unwrap_err();
        assert!(matches!(err, FormatError::NewerCodec { codec: 7, .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "frame 3 at offset 105: codec 7 is not known to this pgsafe: the archive is format version 1.{}, this pgsafe reads format version 1.{FORMAT_MINOR}",
                FORMAT_MINOR + 1
            )
        );
        let err = FrameHeader::decode(&b, &FileHeader::default(), 100, element).unwrap_err();
        assert!(matches!(err, FormatError::Corrupt { .. }), "{err:?}");
        assert_eq!(err.to_string(), "frame 3 at offset 105: unknown codec 7");
    }

    #[test]
    fn incompressible_payload_is_stored_plain() {
        let mut raw = vec![0u8; 4096];
        blake3::Hasher::new().finalize_xof().fill(&mut raw); // random-looking bytes do not compress
        let (codec, stored) = store(&raw, Compression::default());
        assert_eq!(codec, Codec::None);
        assert_eq!(stored, raw);
    }

    #[test]
    fn decompression_is_bounded_by_the_declared_size() {
        let raw = vec![0u8; 1 << 20];
        let (codec, stored) = store(&raw, Compression::default());
        assert_eq!(codec, Codec::Zstd);
        // Declare less than the payload really holds: the decoder must stop and say so.
        let h = FrameHeader {
            kind: FrameKind::Chunk,
            codec,
            sealed: false,
            part: PartId(0),
            seq: ChunkSeq(0),
            stored_len: stored.len() as u32,
            raw_len: 600_000,
            payload_crc: crc32(&stored),
        };
        let err = h.decode_payload(&stored, 0, Element::Frame { index: 0 }).unwrap_err();
        assert!(err.to_string().contains("at least 600001 differs from the declared 600000"), "{err}");
        // Declare far less: the frame's window alone is more than such a payload may ask for.
        let h = FrameHeader { raw_len: 1000, ..h };
        let err = h.decode_payload(&stored, 0, Element::Frame { index: 0 }).unwrap_err();
        assert!(err.to_string().contains("zstd: Frame requires too much memory"), "{err}");
        // Declare more: the payload ends short of it.
        let h = FrameHeader { raw_len: 2 << 20, ..h };
        let err = h.decode_payload(&stored, 0, Element::Frame { index: 0 }).unwrap_err();
        assert!(err.to_string().contains("decoded size 1048576 differs from the declared 2097152"), "{err}");
        // Declare it exactly: the bytes come back, and again on the same thread's context.
        let h = FrameHeader { raw_len: 1 << 20, ..h };
        for _ in 0..2 {
            assert_eq!(h.decode_payload(&stored, 0, Element::Frame { index: 0 }).unwrap(), raw);
        }
    }
}
