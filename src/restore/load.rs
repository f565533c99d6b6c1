//! Loading one part: its chunks read, checked and decoded ahead on blocking threads (within a byte
//! budget), sent into one `COPY ... FROM STDIN`, and the server's row count compared with the archive's.

use std::sync::Arc;

use bytes::Bytes;

use super::plan::PartStep;
use crate::archive::{ArchiveReader, ChunkPrefetch};
use crate::budget::ByteBudget;
use crate::error::{Error, ErrorKind, Result};
use crate::pg::Session;
use crate::progress::Progress;

/// Decoded bytes the loaders of a restore keep in flight together, ahead of the chunks they are sending
/// (each always at least one chunk, however big: a chunk may decode to 1 GiB, so the budget is in bytes,
/// not chunks). Shared, so that memory does not grow with `-j`: 16 MiB restored the benchmark as fast as
/// 32 MiB, with a peak 18 MiB lower (README, "Performance").
const READ_AHEAD_BYTES: u64 = 16 << 20;

/// The most a loader hands its connection at once. Measured on the benchmark's data at `-j 2`: whole chunks
/// (4 MiB) peaked 70 MB, 1 MiB pieces 55 MB as fast, 256 KiB pieces 10% slower.
const SEND_BYTES: usize = 1 << 20;

/// Loads parts from one archive; cheap to clone into each worker, which share one read-ahead budget.
#[derive(Clone)]
pub(crate) struct Loader {
    pub archive: Arc<ArchiveReader>,
    pub progress: Arc<dyn Progress>,
    read_ahead: Arc<ByteBudget>,
}

impl Loader {
    pub fn new(archive: Arc<ArchiveReader>, progress: Arc<dyn Progress>) -> Self {
        Loader { archive, progress, read_ahead: ByteBudget::new(READ_AHEAD_BYTES) }
    }

    /// Loads one part with one COPY (under the `search_path` the plan gives it, where that matters) and
    /// returns the rows the server loaded, which must be the rows the archive holds for the part.
    pub async fn load_part(&self, session: &Session, step: &PartStep) -> Result<u64> {
        if self.archive.index().chunks(step.part).next().is_none() {
            return Ok(0);
        }
        session.under_search_path(step.search_path.as_ref(), self.copy_part(session, step)).await
    }

    async fn copy_part(&self, session: &Session, step: &PartStep) -> Result<u64> {
        if let Some(sql) = &step.before {
            session.batch(sql).await?;
        }
        let mut sink = session.copy_in(&step.copy).await?;
        let runtime = tokio::runtime::Handle::current();
        let mut chunks = ChunkPrefetch::new(self.archive.clone(), step.part, self.read_ahead.clone(), &runtime);
        while let Some(decoded) = chunks.next().await {
            let decoded = decoded.map_err(|e| e.context(format!("`{}`", self.archive.path().display())))?;
            self.progress.advance(step.part, decoded.bytes.len() as u64, 0);
            // In pieces: the connection copies what it is given into its write buffer, which then keeps
            // that size for as long as the session lives.
            let bytes = Bytes::from(decoded.bytes);
            for at in (0..bytes.len()).step_by(SEND_BYTES) {
                sink.send(bytes.slice(at..bytes.len().min(at + SEND_BYTES))).await?;
            }
        }
        let rows = sink.finish().await?;
        if rows != step.rows {
            // The archive's chunks checked out, yet the server took another number of rows: the restore
            // cannot go on, and this is no clean verdict on the data (exit 2, not 1).
            return Err(Error::new(
                ErrorKind::Database,
                format!(
                    "part {} (`{}`): COPY loaded {rows} rows, the archive holds {}; the restore stopped",
                    step.part, step.table, step.rows
                ),
            )
            .with_hint("something in the target (a rule, a trigger) took rows away or added some, or the archive is wrong: `pgsafe verify` tells which"));
        }
        if let Some(sql) = &step.after {
            session.batch(sql).await?;
        }
        self.progress.part_done(step.part);
        Ok(rows)
    }
}
