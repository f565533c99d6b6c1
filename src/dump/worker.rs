//! What a dump worker does with one part: streams it through COPY, cuts it into chunks on tuple
//! boundaries, compresses them (overlapping with the reading) and sends them to the archive writer.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::archive::{FrameSender, WriterMessage};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{
    ChunkSeq, CodecTrials, Compression, EncodedChunk, PartSummary, Sealing, TupleScanner, encode_part_chunk, seal_chunk,
};
use crate::pg::{SearchPath, Session};
use crate::plan::PlannedPart;
use crate::progress::Progress;

pub(super) struct Job {
    pub tx: FrameSender,
    pub compression: Compression,
    /// An encrypted archive's sealing: chunks are sealed here, in parallel, as they are compressed.
    pub sealing: Option<Arc<Sealing>>,
    pub chunk_bytes: usize,
    pub progress: Arc<dyn Progress>,
    /// Earlier chunks a worker may still be compressing while it reads on (see [`chunks_in_flight`]).
    pub in_flight: usize,
    /// One permit per core: the chunks compressed at once, whatever `-j`. More would not compress faster,
    /// and each holds its columns' streams and its compressed output.
    pub compressing: Arc<Semaphore>,
}

/// The raw chunk bytes that the workers of a dump hold together, in their buffers and in compression,
/// unless their chunks would be smaller than [`MIN_CHUNK_BYTES`]: so a dump's memory does not grow with
/// `-j`.
const CHUNK_MEMORY: usize = 32 << 20;

/// The smallest chunk that the memory of many workers cuts: smaller chunks compress worse.
const MIN_CHUNK_BYTES: usize = 1 << 20;

/// The size at which `jobs` workers, each keeping `in_flight` earlier chunks in compression, cut chunks
/// unless `--chunk-size` says: `largest` while their buffers (one being filled, one being compressed and those in
/// flight) fit [`CHUNK_MEMORY`], smaller with more workers, down to [`MIN_CHUNK_BYTES`].
pub(super) fn chunk_bytes(largest: usize, jobs: usize, in_flight: usize) -> usize {
    let buffers = jobs.max(1) * (in_flight + 2);
    (CHUNK_MEMORY / buffers).clamp(MIN_CHUNK_BYTES.min(largest), largest)
}

/// Earlier chunks each of `jobs` workers keeps compressing while it reads on, on a machine of `cores`:
/// two while the workers are fewer than twice the cores, so that a worker's reading and compressing
/// overlap; none beyond, where the other workers' reading keeps the cores busy and more chunks in flight
/// would only hold more memory (measured on 2 cores, TPC-H-like data: at `-j 4` 59 MB instead of 102 to
/// 123 MB, at `-j 8` 96 MB instead of 191 to 220 MB, in the same time).
pub(super) fn chunks_in_flight(jobs: usize, cores: usize) -> usize {
    if jobs < 2 * cores { 2 } else { 0 }
}

/// A chunk in compression: its frame, or why compressing it failed.
type Compressing = JoinHandle<std::result::Result<EncodedChunk, String>>;

impl Job {
    /// Streams one part through COPY into chunks, on a session inside the dump's snapshot, under the
    /// `search_path` the part records, if any.
    pub async fn dump_part(&self, session: &Session, part: &PlannedPart) -> Result<()> {
        let path = part.info.search_path.clone().map(SearchPath::Recorded);
        session.under_search_path(path.as_ref(), self.stream_part(session, part)).await
    }

    async fn stream_part(&self, session: &Session, part: &PlannedPart) -> Result<()> {
        let info = &part.info;
        let where_ = || format!("part {} (`{}`)", info.id, info.table);
        let mut stream = session.copy_out(&part.copy_sql).await?;
        let mut scanner = TupleScanner::new(info.format).with_fields(info.columns.len());
        // A chunk and the message that crosses its end.
        let room = self.chunk_bytes + (64 << 10);
        let mut buf = BytesMut::with_capacity(room);
        let mut scanned = 0usize;
        let mut hasher = blake3::Hasher::new();
        let mut seq = 0u32;
        let mut raw_bytes = 0u64;
        let mut rows_cut = 0u64;
        let mut in_flight: VecDeque<Compressing> = VecDeque::new();
        let trials = Arc::new(CodecTrials::default());
        loop {
            let data = stream.next().await?;
            let end = data.is_none();
            if let Some(d) = data {
                buf.extend_from_slice(&d);
                scanned += scanner.scan(&buf[scanned..]).map_err(|e| {
                    Error::new(
                        ErrorKind::Database,
                        format!("{}: the server sent a malformed COPY stream: {e}", where_()),
                    )
                })?;
            }
            if scanned > 0 && (scanned >= self.chunk_bytes || end) {
                let raw = buf.split_to(scanned).freeze();
                // The rest of the allocation went with the chunk: the next one gets its own whole, not
                // one that `BytesMut` grows from 64 KiB by doubling, copying what it holds each time
                // (3% of a columnar dump's client CPU).
                buf.reserve(room);
                scanned = 0;
                hasher.update(&raw);
                raw_bytes += raw.len() as u64;
                let rows = scanner.rows() - rows_cut;
                rows_cut = scanner.rows();
                self.progress.advance(info.id, raw.len() as u64, rows);
                let (id, compression, sealing) =
                    (info.id, self.compression.for_format(info.format), self.sealing.clone());
                let s = ChunkSeq(seq);
                seq += 1;
                let (trials, compressing) = (trials.clone(), self.compressing.clone());
                in_flight.push_back(tokio::spawn(async move {
                    let _permit = compressing.acquire_owned().await.map_err(|e| e.to_string())?;
                    let encode = tokio::task::spawn_blocking(move || {
                        let chunk = encode_part_chunk(id, s, &raw, rows, compression, Some(&trials));
                        match sealing {
                            Some(sealing) => seal_chunk(chunk, &sealing),
                            None => chunk,
                        }
                    });
                    encode.await.map_err(|e| e.to_string())
                }));
                if in_flight.len() > self.in_flight {
                    self.send_oldest(&mut in_flight).await?;
                }
            }
            if end {
                break;
            }
        }
        if !buf.is_empty() || !scanner.at_end() {
            return Err(Error::new(ErrorKind::Database, format!("{}: the COPY stream ended inside a tuple", where_())));
        }
        while !in_flight.is_empty() {
            self.send_oldest(&mut in_flight).await?;
        }
        let summary = PartSummary {
            part: info.id,
            rows: scanner.rows(),
            raw_bytes,
            blake3: *hasher.finalize().as_bytes(),
            digest: scanner.digest(),
        };
        self.tx.send(WriterMessage::PartDone(summary)).await?;
        self.progress.part_done(info.id);
        Ok(())
    }

    async fn send_oldest(&self, in_flight: &mut VecDeque<Compressing>) -> Result<()> {
        let handle = in_flight.pop_front().expect("called with chunks in flight");
        let failed = |e: String| Error::new(ErrorKind::Io, format!("compressing a chunk failed: {e}"));
        let chunk = handle.await.map_err(|e| failed(e.to_string()))?.map_err(failed)?;
        self.tx.send(WriterMessage::Chunk(chunk)).await
    }
}

#[cfg(test)]
mod tests {
    use super::{MIN_CHUNK_BYTES, chunk_bytes, chunks_in_flight};

    #[test]
    fn workers_overlap_reading_and_compressing_only_while_fewer_than_twice_the_cores() {
        assert_eq!([1, 2, 3, 4, 8].map(|jobs| chunks_in_flight(jobs, 2)), [2, 2, 2, 0, 0]);
        assert_eq!(chunks_in_flight(15, 8), 2);
        assert_eq!(chunks_in_flight(16, 8), 0);
    }

    #[test]
    fn many_workers_cut_smaller_chunks_so_that_their_buffers_stay_within_the_memory() {
        const MIB: usize = 1 << 20;
        let on_two_cores = |jobs| chunk_bytes(4 * MIB, jobs, chunks_in_flight(jobs, 2));
        assert_eq!([1, 2, 4, 8, 16, 64].map(on_two_cores), [4, 4, 4, 2, 1, 1].map(|m| m * MIB));
        assert_eq!(on_two_cores(3), 32 * MIB / 12);
        for jobs in 1..=16 {
            let held = jobs * (chunks_in_flight(jobs, 2) + 2) * on_two_cores(jobs);
            assert!(held <= super::CHUNK_MEMORY, "-j {jobs}: {held}");
        }
        // Never bigger than the largest asked for, nor smaller than the floor.
        assert_eq!(chunk_bytes(256 << 10, 64, 2), 256 << 10);
        assert_eq!(chunk_bytes(64 * MIB, 1, 2), 8 * MIB);
        assert_eq!(chunk_bytes(64 * MIB, 1000, 2), MIN_CHUNK_BYTES);
    }
}
