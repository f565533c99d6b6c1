//! Random access to an archive's bytes, wherever they are: a `Vec` (borrowed, no copy), a file (read at
//! offsets) or an object in a bucket (fetched by ranged requests). [`ArchiveIndex`](super::ArchiveIndex) reads
//! through this trait only what it needs: the footer, the manifest, the catalog, then each chunk asked for.

use std::borrow::Cow;
use std::io;

/// An archive's bytes, read at any offset from any thread.
pub trait ArchiveSource {
    /// The archive's length in bytes.
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `len` bytes at `offset`, all of them or an error. Callers check that they lie inside the
    /// source. Bytes already in memory are lent, not copied.
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>>;
}

impl<B: AsRef<[u8]> + ?Sized> ArchiveSource for B {
    fn len(&self) -> u64 {
        self.as_ref().len() as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        let bytes = self.as_ref();
        let start = usize::try_from(offset).ok().filter(|&s| s <= bytes.len());
        match start.and_then(|s| Some(s..s.checked_add(len)?)).filter(|r| r.end <= bytes.len()) {
            Some(range) => Ok(Cow::Borrowed(&bytes[range])),
            None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the archive")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::format::{
        ArchiveEncoder, ArchiveIndex, Compression, CopyFormat, FileHeader, Footer, FormatError, PartId, binary_stream,
        sample,
    };

    /// An archive in memory that records every read, as a bucket's requests would be counted.
    #[derive(Debug)]
    struct Recorded {
        bytes: Vec<u8>,
        reads: Mutex<Vec<(u64, usize)>>,
        /// Reads that start in this range fail, as a request to an unreachable bucket would.
        fails: std::ops::Range<u64>,
    }

    impl ArchiveSource for Recorded {
        fn len(&self) -> u64 {
            self.bytes.len() as u64
        }

        fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
            self.reads.lock().unwrap().push((offset, len));
            if self.fails.contains(&offset) {
                return Err(io::Error::other("the endpoint went away"));
            }
            // Owned, as from a network source.
            self.bytes.read_at(offset, len).map(|b| Cow::Owned(b.into_owned()))
        }
    }

    /// Three parts, each one chunk of 4 KiB of rows, uncompressed.
    fn archive() -> Vec<u8> {
        let catalog = sample::catalog(
            (0..3)
                .map(|id| sample::part(PartId(id), &format!("t{id}"), CopyFormat::Binary, &[("v", "bytea")]))
                .collect(),
        );
        let mut encoder = ArchiveEncoder::new(Vec::new(), &catalog, Compression::None).unwrap();
        for id in 0..3u32 {
            let rows: Vec<_> = (0..4).map(|i| vec![Some(vec![(id * 4 + i) as u8; 1024])]).collect();
            let (chunks, summary) =
                sample::encode_part(PartId(id), CopyFormat::Binary, [binary_stream(&rows)], Compression::None);
            encoder.write_chunk(&chunks[0]).unwrap();
            encoder.finish_part(summary).unwrap();
        }
        encoder.finish(String::new()).unwrap().0
    }

    fn recorded(bytes: Vec<u8>, fails: std::ops::Range<u64>) -> Recorded {
        Recorded { bytes, reads: Mutex::new(Vec::new()), fails }
    }

    #[test]
    fn opening_reads_the_ends_of_the_archive_and_a_chunk_reads_its_frame_alone() {
        let bytes = archive();
        let len = bytes.len() as u64;
        let index = ArchiveIndex::open(recorded(bytes.clone(), 0..0)).unwrap();
        let opened: Vec<(u64, usize)> = std::mem::take(&mut *index.bytes().reads.lock().unwrap());
        assert_eq!(opened[0], (0, FileHeader::LEN));
        assert_eq!(opened[1], (len - Footer::LEN as u64, Footer::LEN));
        let chunks = index.all_chunks();
        let first_chunk = chunks[0].entry.offset;
        let manifest_at = index.footer().manifest_offset;
        // Nothing between the catalog and the manifest, where the chunks lie, was read.
        for &(offset, n) in &opened {
            assert!(offset + n as u64 <= first_chunk || offset >= manifest_at, "{opened:?}");
        }
        let chunk = chunks[1];
        assert_eq!(index.read_chunk(&chunk).unwrap(), bytes_of_chunk(&bytes, &chunk));
        let frame = (chunk.entry.offset, crate::format::FrameHeader::LEN + chunk.entry.stored_len as usize);
        assert_eq!(*index.bytes().reads.lock().unwrap(), vec![frame]);
        index.check_part(PartId(2)).unwrap();
    }

    /// An uncompressed chunk's payload is its decoded bytes.
    fn bytes_of_chunk(bytes: &[u8], chunk: &crate::format::ChunkRef) -> Vec<u8> {
        let start = chunk.entry.offset as usize + crate::format::FrameHeader::LEN;
        bytes[start..start + chunk.entry.stored_len as usize].to_vec()
    }

    #[test]
    fn a_failed_read_is_an_io_error_at_its_offset() {
        let bytes = archive();
        let footer_at = bytes.len() as u64 - Footer::LEN as u64;
        match ArchiveIndex::open(recorded(bytes.clone(), footer_at..u64::MAX)) {
            Err(FormatError::Io { offset, source }) => {
                assert_eq!(offset, footer_at);
                assert_eq!(source.to_string(), "the endpoint went away");
            }
            other => panic!("{other:?}"),
        }
        let chunk = ArchiveIndex::open(&bytes[..]).unwrap().all_chunks()[0];
        // The catalog lies before the chunks and the manifest after them: only reading a chunk fails.
        let index = ArchiveIndex::open(recorded(bytes, chunk.entry.offset..chunk.entry.offset + 1)).unwrap();
        assert!(matches!(index.read_chunk(&chunk), Err(FormatError::Io { .. })), "{:?}", index.read_chunk(&chunk));
    }

    /// A broken source that returns one byte less than asked for.
    #[derive(Debug)]
    struct Short(Vec<u8>);

    impl ArchiveSource for Short {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }

        fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
            self.0.read_at(offset, len.saturating_sub(1))
        }
    }

    #[test]
    fn a_source_that_returns_too_few_bytes_is_an_error_not_a_panic() {
        let bytes = archive();
        match ArchiveIndex::open(Short(bytes)) {
            Err(FormatError::Io { offset: 0, source }) => {
                let expected =
                    format!("asked for {} bytes, the source returned {}", FileHeader::LEN, FileHeader::LEN - 1);
                assert_eq!(source.to_string(), expected);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bytes_in_memory_are_lent_and_reads_past_the_end_fail() {
        let bytes = vec![1u8, 2, 3, 4];
        assert!(matches!(bytes.read_at(1, 2).unwrap(), Cow::Borrowed([2, 3])));
        assert!(bytes.read_at(3, 2).is_err());
        assert!(bytes.read_at(u64::MAX, 1).is_err());
        assert!(bytes.read_at(4, 0).unwrap().is_empty());
    }
}
