//! Read-ahead: the next chunks of a part decoded on blocking threads while the reader works on the
//! current one, with the decoded bytes in flight bounded by a budget in bytes. Counting chunks would bound
//! nothing: a chunk decodes to as much as 1 GiB ([`crate::format::MAX_CHUNK_RAW`]).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};

use tokio::runtime::Handle;
use tokio::sync::{Semaphore, oneshot};

use super::ArchiveReader;
use crate::budget::ByteBudget;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{ChunkRef, FormatError, PartId};

/// One decoded chunk of a part's COPY stream.
#[derive(Debug)]
pub struct DecodedChunk {
    /// Which chunk it is and where it lies in the archive.
    pub chunk: ChunkRef,
    /// Its bytes of the part's COPY stream.
    pub bytes: Vec<u8>,
}

/// How a chunk is decoded: [`ArchiveReader::read_chunk`], or a stand-in in tests.
type Decode = fn(&ArchiveReader, &ChunkRef) -> Result<Vec<u8>, FormatError>;

/// Decodes at most as many chunks at once, process-wide, as there are cores. More at once is not faster,
/// and each holds its scratch (a columnar chunk's decompressed column streams) besides its output: at
/// `-j 8` on 2 cores, 12 decodes at once held 17 MB of it.
static DECODERS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Runs `decode` once one of the [`DECODERS`]' permits is free, waiting on this thread (never async
/// code's), which `runtime` is the handle of.
fn gated<T>(runtime: &Handle, decode: impl FnOnce() -> T) -> T {
    // The semaphore is never closed: a permit always comes. It is given back however `decode` ends.
    let _permit = runtime.block_on(DECODERS.acquire());
    decode()
}

/// What a decoding task sends back: the chunk, its error, or its panic's message.
type Decoded = std::result::Result<Result<Vec<u8>, FormatError>, String>;

/// Decodes the chunks of one part ahead of its reader, in stream order, on the blocking threads of a
/// tokio runtime, within a [`ByteBudget`] of decoded bytes it may share with others.
///
/// The chunk handed out last counts as held until the reader asks for the next. A prefetch holding
/// nothing always takes one chunk, however large, so that a part of chunks larger than the budget still
/// reads, one chunk at a time, and no reader waits on another's: memory is at most the budget plus the
/// largest chunk of each prefetch.
///
/// [`next`](Self::next) is for async code, [`next_blocking`](Self::next_blocking) for plain threads.
/// After an error the prefetch yields nothing more; dropping it abandons what is in flight.
pub struct ChunkPrefetch {
    archive: Arc<ArchiveReader>,
    runtime: Handle,
    /// The part's chunks not started yet, in stream order.
    waiting: VecDeque<ChunkRef>,
    /// Chunks started, in stream order.
    started: VecDeque<(ChunkRef, oneshot::Receiver<Decoded>)>,
    budget: Arc<ByteBudget>,
    /// Decoded bytes of the started chunks and of the chunk handed out last: this prefetch's share of
    /// the budget.
    in_flight: u64,
    /// Decoded bytes of the chunk handed out last, released when the next is asked for.
    handed_out: u64,
    decode: Decode,
}

impl ChunkPrefetch {
    /// A prefetch of `part`'s chunks, decoding on `runtime`'s blocking threads within `budget` (and
    /// always at least one chunk). Nothing starts before the first call to [`next`](Self::next) or
    /// [`next_blocking`](Self::next_blocking).
    pub fn new(archive: Arc<ArchiveReader>, part: PartId, budget: Arc<ByteBudget>, runtime: &Handle) -> Self {
        Self::of_chunks(archive, part, 0..usize::MAX, budget, runtime)
    }

    /// A prefetch of the chunks of `part` whose positions in stream order are in `range`, as
    /// [`new`](Self::new).
    pub fn of_chunks(
        archive: Arc<ArchiveReader>,
        part: PartId,
        range: std::ops::Range<usize>,
        budget: Arc<ByteBudget>,
        runtime: &Handle,
    ) -> Self {
        let waiting = archive.index().chunks(part).skip(range.start).take(range.len()).collect();
        ChunkPrefetch {
            archive,
            runtime: runtime.clone(),
            waiting,
            started: VecDeque::new(),
            budget,
            in_flight: 0,
            handed_out: 0,
            decode: ArchiveReader::read_chunk,
        }
    }

    /// The next chunk in stream order, or `None` after the last one or after an error.
    pub async fn next(&mut self) -> Option<Result<DecodedChunk>> {
        let (chunk, receiver) = self.advance()?;
        let received = receiver.await;
        Some(self.finish(chunk, received.ok()))
    }

    /// Like [`next`](Self::next), waiting on this thread. Must not be called from async code.
    pub fn next_blocking(&mut self) -> Option<Result<DecodedChunk>> {
        if self.started.is_empty() && self.waiting.len() == 1 {
            // The last chunk, with nothing in flight beside it: there is nothing to overlap its decoding
            // with, so this thread decodes it and saves the handoff (most of the cost of a small part).
            self.release_handed_out();
            let chunk = self.waiting.pop_front()?;
            self.hold(u64::from(chunk.entry.raw_len), true);
            let decoded =
                catch_unwind(AssertUnwindSafe(|| gated(&self.runtime, || (self.decode)(&self.archive, &chunk))))
                    .map_err(panic_message);
            return Some(self.finish(chunk, Some(decoded)));
        }
        let (chunk, receiver) = self.advance()?;
        let received = receiver.blocking_recv();
        Some(self.finish(chunk, received.ok()))
    }

    /// Decoded bytes in flight now: being decoded, waiting, and handed out last.
    pub fn in_flight_bytes(&self) -> u64 {
        self.in_flight
    }

    /// Takes `size` bytes of the budget for this prefetch if they fit, or, with `always`, in any case.
    fn hold(&mut self, size: u64, always: bool) -> bool {
        let taken = self.budget.take(size, always);
        if taken {
            self.in_flight += size;
        }
        taken
    }

    /// Gives back `size` bytes this prefetch held.
    fn release(&mut self, size: u64) {
        self.in_flight -= size;
        self.budget.give_back(size);
    }

    fn release_handed_out(&mut self) {
        let size = std::mem::take(&mut self.handed_out);
        self.release(size);
    }

    /// Releases the chunk handed out last, starts what the budget allows, and takes the next chunk.
    fn advance(&mut self) -> Option<(ChunkRef, oneshot::Receiver<Decoded>)> {
        self.release_handed_out();
        while let Some(chunk) = self.waiting.front().copied() {
            if !self.hold(u64::from(chunk.entry.raw_len), self.in_flight == 0) {
                break;
            }
            self.waiting.pop_front();
            let (sender, receiver) = oneshot::channel();
            let (archive, decode, runtime) = (self.archive.clone(), self.decode, self.runtime.clone());
            self.runtime.spawn_blocking(move || {
                let decoded = catch_unwind(AssertUnwindSafe(|| gated(&runtime, || decode(&archive, &chunk))))
                    .map_err(panic_message);
                // The receiver is gone when the prefetch was dropped: nobody wants the chunk any more.
                let _ = sender.send(decoded);
            });
            self.started.push_back((chunk, receiver));
        }
        self.started.pop_front()
    }

    fn finish(&mut self, chunk: ChunkRef, received: Option<Decoded>) -> Result<DecodedChunk> {
        let size = u64::from(chunk.entry.raw_len);
        let failed = |problem: String| {
            let element = self.archive.index().chunk_element(&chunk);
            Error::new(ErrorKind::Io, format!("{element}: decoding failed: {problem}"))
        };
        let result = match received {
            Some(Ok(Ok(bytes))) => Ok(DecodedChunk { chunk, bytes }),
            Some(Ok(Err(e))) => Err(Error::from(e)),
            Some(Err(panic)) => Err(failed(format!("the decoding thread panicked: {panic}"))),
            None => Err(failed("the decoding thread stopped before it was done".into())),
        };
        match result {
            Ok(decoded) => {
                self.handed_out = size;
                Ok(decoded)
            }
            Err(e) => {
                // Nothing after a failed chunk can be used: stop, and let what is in flight finish unread.
                self.waiting.clear();
                self.started.clear();
                self.release(self.in_flight);
                self.handed_out = 0;
                Err(e)
            }
        }
    }
}

impl Drop for ChunkPrefetch {
    /// What is still in flight is abandoned: the decoding threads finish and drop it soon.
    fn drop(&mut self) {
        self.budget.give_back(self.in_flight);
    }
}

/// A panic's message, when it has one.
pub(crate) fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(s) => *s,
        Err(panic) => panic.downcast_ref::<&str>().map_or_else(|| "no message".to_string(), |s| s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::format::{ChunkSeq, Compression, CopyFormat, sample};

    /// An archive file of one text part, `public.big`, whose chunks decode to `sizes` bytes each.
    fn archive(sizes: &[usize]) -> (tempfile::TempDir, Arc<ArchiveReader>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prefetch.pgsafe");
        let catalog = sample::catalog(vec![sample::part(PartId(0), "big", CopyFormat::Text, &[])]);
        let stream = sizes.iter().enumerate().map(|(seq, &size)| {
            let mut raw = vec![b'a' + seq as u8; size];
            raw[size - 1] = b'\n';
            raw
        });
        let part = sample::encode_part(PartId(0), CopyFormat::Text, stream, Compression::default());
        sample::write_file(&path, &catalog, Compression::default(), &[part]);
        (dir, Arc::new(ArchiveReader::open(&path).unwrap()))
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().max_blocking_threads(4).build().unwrap()
    }

    const KIB: usize = 1024;

    /// Defect: read-ahead was bounded by a number of chunks, and a chunk may decode to 1 GiB. Here the
    /// decoded bytes in flight never exceed the budget, except for a single chunk larger than it.
    #[test]
    fn read_ahead_is_bounded_by_bytes_not_chunks() {
        let sizes =
            [300 * KIB, 10 * KIB, 10 * KIB, 700 * KIB, 200 * KIB, 5 * KIB, 5 * KIB, 400 * KIB, 1200 * KIB, 50 * KIB];
        let (_dir, reader) = archive(&sizes);
        let rt = runtime();
        let budget = 1000 * KIB as u64;
        let mut prefetch = ChunkPrefetch::new(reader.clone(), PartId(0), ByteBudget::new(budget), rt.handle());
        let mut seen = Vec::new();
        let mut most_ahead = 0;
        while let Some(decoded) = prefetch.next_blocking() {
            let decoded = decoded.unwrap();
            let alone = prefetch.started.is_empty();
            assert!(
                prefetch.in_flight_bytes() <= budget || alone,
                "{} bytes in flight with a budget of {budget}, {} chunks started",
                prefetch.in_flight_bytes(),
                prefetch.started.len()
            );
            most_ahead = most_ahead.max(prefetch.started.len());
            assert_eq!(decoded.bytes, reader.read_chunk(&decoded.chunk).unwrap());
            seen.push(decoded.bytes.len());
        }
        assert_eq!(seen, sizes, "every chunk once, in stream order");
        assert!(most_ahead >= 3, "small chunks are decoded several at a time ahead ({most_ahead})");
        assert_eq!(prefetch.in_flight_bytes(), 0);
    }

    /// Parts read at once share one budget: together they stay within it (but for one chunk each, which a
    /// reader holding nothing may always take), both read every chunk, and what one leaves is given back.
    #[test]
    fn prefetches_sharing_a_budget_stay_within_it_together() {
        let sizes = [100 * KIB; 8];
        let (_dir, reader) = archive(&sizes);
        let rt = runtime();
        let (chunk, limit) = (100 * KIB as u64, 300 * KIB as u64);
        let budget = ByteBudget::new(limit);
        let mut a = ChunkPrefetch::new(reader.clone(), PartId(0), budget.clone(), rt.handle());
        let mut b = ChunkPrefetch::new(reader.clone(), PartId(0), budget.clone(), rt.handle());
        let mut seen = (Vec::new(), Vec::new());
        seen.0.push(a.next_blocking().unwrap().unwrap().bytes.len());
        seen.1.push(b.next_blocking().unwrap().unwrap().bytes.len());
        // The first took the whole budget; the second, holding nothing, one chunk beyond it.
        assert_eq!((a.in_flight_bytes(), b.in_flight_bytes()), (limit, chunk));
        for _ in 0..2 {
            seen.0.push(a.next_blocking().unwrap().unwrap().bytes.len());
            seen.1.push(b.next_blocking().unwrap().unwrap().bytes.len());
            assert_eq!(budget.used(), a.in_flight_bytes() + b.in_flight_bytes());
            assert!(budget.used() <= limit + chunk, "{} bytes held together", budget.used());
        }
        // One reader stops half way: its share goes back, and the other reads as far ahead as it may.
        drop(b);
        assert_eq!(budget.used(), a.in_flight_bytes());
        while let Some(decoded) = a.next_blocking() {
            seen.0.push(decoded.unwrap().bytes.len());
            assert!(budget.used() <= limit);
        }
        assert_eq!(seen.0, sizes, "every chunk once, in stream order");
        assert_eq!(seen.1, sizes[..3]);
        drop(a);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_chunk_larger_than_the_budget_still_reads_alone() {
        let (_dir, reader) = archive(&[64 * KIB, 64 * KIB, 64 * KIB]);
        let rt = runtime();
        let mut prefetch = ChunkPrefetch::new(reader, PartId(0), ByteBudget::new(1), rt.handle());
        for _ in 0..3 {
            prefetch.next_blocking().unwrap().unwrap();
            assert!(prefetch.started.is_empty(), "nothing may start beside a chunk over the budget");
            assert_eq!(prefetch.in_flight_bytes(), 64 * KIB as u64);
        }
        assert!(prefetch.next_blocking().is_none());
    }

    #[test]
    fn async_readers_get_the_same_chunks() {
        let (_dir, reader) = archive(&[10 * KIB, 20 * KIB, 30 * KIB]);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        let sizes = rt.block_on(async {
            let mut prefetch =
                ChunkPrefetch::new(reader, PartId(0), ByteBudget::new(25 * KIB as u64), &Handle::current());
            let mut sizes = Vec::new();
            while let Some(decoded) = prefetch.next().await {
                sizes.push(decoded.unwrap().bytes.len());
            }
            sizes
        });
        assert_eq!(sizes, [10 * KIB, 20 * KIB, 30 * KIB]);
    }

    /// Defect: a decoding task that panicked became an I/O error naming nothing.
    #[test]
    fn a_panicked_decoding_task_is_an_error_naming_the_chunk_part_and_table() {
        let (_dir, reader) = archive(&[10 * KIB, 10 * KIB, 10 * KIB]);
        let rt = runtime();
        let mut prefetch = ChunkPrefetch::new(reader, PartId(0), ByteBudget::new(u64::MAX), rt.handle());
        prefetch.decode = |archive, chunk| {
            if chunk.entry.seq == ChunkSeq(1) {
                panic!("a decoder bug");
            }
            archive.read_chunk(chunk)
        };
        prefetch.next_blocking().unwrap().unwrap();
        let err = prefetch.next_blocking().unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "chunk 1 of part 0 (`public.big`): decoding failed: the decoding thread panicked: a decoder bug"
        );
        assert!(prefetch.next_blocking().is_none(), "nothing after a failed chunk");
    }

    #[test]
    fn a_damaged_chunk_is_a_corrupt_archive_error_and_the_end() {
        let (_dir, reader) = archive(&[10 * KIB, 10 * KIB, 10 * KIB]);
        let rt = runtime();
        let mut prefetch = ChunkPrefetch::new(reader, PartId(0), ByteBudget::new(u64::MAX), rt.handle());
        prefetch.decode = |archive, chunk| match chunk.entry.seq {
            ChunkSeq(0) => archive.read_chunk(chunk),
            _ => Err(FormatError::Corrupt {
                element: archive.index().chunk_element(chunk),
                offset: chunk.entry.offset,
                problem: "damaged".into(),
            }),
        };
        prefetch.next_blocking().unwrap().unwrap();
        let err = prefetch.next_blocking().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CorruptArchive);
        assert!(err.to_string().starts_with("chunk 1 of part 0 (`public.big`) at offset "), "{err}");
        assert!(prefetch.next_blocking().is_none());
    }
}
