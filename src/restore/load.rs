//! Loading one part: its chunks read, checked and decoded ahead on blocking threads (within a byte
//! budget), sent into one `COPY ... FROM STDIN`, and the server's row count compared with the archive's.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::plan::PartStep;
use crate::archive::ArchiveReader;
use crate::error::{Error, ErrorKind, Result};
use crate::format::FormatError;
use crate::pg::Session;
use crate::progress::Progress;

/// Decoded bytes a loader keeps in flight ahead of the chunk it is sending. At least one chunk is always
/// read, however big: a chunk may be up to 1 GiB decoded, so the budget is in bytes, not chunks.
const READ_AHEAD_BYTES: u64 = 32 << 20;

/// A chunk being read and decoded on a blocking thread.
type Decoding = JoinHandle<Result<Vec<u8>, FormatError>>;

/// Loads parts from one archive; cheap to clone into each worker.
#[derive(Clone)]
pub(super) struct Loader {
    pub archive: Arc<ArchiveReader>,
    pub progress: Arc<dyn Progress>,
}

impl Loader {
    /// Loads one part with one COPY and returns the rows the server loaded, which must be the rows the
    /// archive holds for the part.
    pub async fn load_part(&self, session: &Session, step: &PartStep) -> Result<u64> {
        let index = self.archive.index();
        let chunks: Vec<_> = index.chunks(step.part).collect();
        if chunks.is_empty() {
            return Ok(0);
        }
        if let Some(sql) = &step.before {
            session.batch(sql).await?;
        }
        let mut sink = session.copy_in(&step.copy).await?;
        let mut pending: VecDeque<(u64, Decoding)> = VecDeque::new();
        let mut in_flight = 0u64;
        let mut next = 0;
        while next < chunks.len() || !pending.is_empty() {
            while next < chunks.len() && (pending.is_empty() || in_flight < READ_AHEAD_BYTES) {
                let (archive, chunk) = (self.archive.clone(), chunks[next]);
                let size = u64::from(chunk.entry.raw_len);
                in_flight += size;
                pending.push_back((size, tokio::task::spawn_blocking(move || archive.read_chunk(&chunk))));
                next += 1;
            }
            let Some((size, handle)) = pending.pop_front() else { break };
            in_flight -= size;
            let raw = handle
                .await
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Io,
                        format!("part {} (`{}`): decoding a chunk failed: {e}", step.part, step.table),
                    )
                })?
                .map_err(|e| Error::from(e).context(format!("`{}`", self.archive.path().display())))?;
            self.progress.advance(step.part, raw.len() as u64, 0);
            sink.send(Bytes::from(raw)).await?;
        }
        let rows = sink.finish().await?;
        if rows != step.rows {
            // The archive checked out, yet the server loaded another number of rows: the restore cannot go
            // on, and this is no clean verdict on the data (exit 2, not 1).
            return Err(Error::new(
                ErrorKind::CorruptArchive,
                format!(
                    "part {} (`{}`): COPY loaded {rows} rows, the archive holds {}; the restore stopped",
                    step.part, step.table, step.rows
                ),
            ));
        }
        if let Some(sql) = &step.after {
            session.batch(sql).await?;
        }
        self.progress.part_done(step.part);
        Ok(rows)
    }
}
