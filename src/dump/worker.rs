//! What a dump worker does with one part: streams it through COPY, cuts it into chunks on tuple
//! boundaries, compresses them (overlapping with the reading) and sends them to the archive writer.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;
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
}

/// Earlier chunks each of `jobs` workers keeps compressing while it reads on, on a machine of `cores`:
/// two while the workers are fewer than twice the cores, so that a worker's reading and compressing
/// overlap; none beyond, where the other workers' reading keeps the cores busy and more chunks in flight
/// would only hold more memory (measured on 2 cores, TPC-H-like data: at `-j 4` 59 MB instead of 102 to
/// 123 MB, at `-j 8` 96 MB instead of 191 to 220 MB, in the same time).
pub(super) fn chunks_in_flight(jobs: usize, cores: usize) -> usize {
    if jobs < 2 * cores { 2 } else { 0 }
}

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
        let mut buf = BytesMut::with_capacity(self.chunk_bytes + (64 << 10));
        let mut scanned = 0usize;
        let mut hasher = blake3::Hasher::new();
        let mut seq = 0u32;
        let mut raw_bytes = 0u64;
        let mut rows_cut = 0u64;
        let mut in_flight: VecDeque<JoinHandle<EncodedChunk>> = VecDeque::new();
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
                let trials = trials.clone();
                in_flight.push_back(tokio::task::spawn_blocking(move || {
                    let chunk = encode_part_chunk(id, s, &raw, rows, compression, Some(&trials));
                    match sealing {
                        Some(sealing) => seal_chunk(chunk, &sealing),
                        None => chunk,
                    }
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

    async fn send_oldest(&self, in_flight: &mut VecDeque<JoinHandle<EncodedChunk>>) -> Result<()> {
        let handle = in_flight.pop_front().expect("called with chunks in flight");
        let chunk = handle.await.map_err(|e| Error::new(ErrorKind::Io, format!("compressing a chunk failed: {e}")))?;
        self.tx.send(WriterMessage::Chunk(chunk)).await
    }
}

#[cfg(test)]
mod tests {
    use super::chunks_in_flight;

    #[test]
    fn workers_overlap_reading_and_compressing_only_while_fewer_than_twice_the_cores() {
        assert_eq!([1, 2, 3, 4, 8].map(|jobs| chunks_in_flight(jobs, 2)), [2, 2, 2, 0, 0]);
        assert_eq!(chunks_in_flight(15, 8), 2);
        assert_eq!(chunks_in_flight(16, 8), 0);
    }
}
