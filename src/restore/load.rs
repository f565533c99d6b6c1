//! Loading one part: its chunks read, checked and decoded ahead on blocking threads (within a byte
//! budget), sent into one `COPY ... FROM STDIN`, and the server's row count compared with the archive's.

use std::sync::Arc;

use bytes::Bytes;

use super::plan::{BINARY_HEADER, BINARY_TRAILER, Freeze, PartStep};
use crate::archive::{ArchiveReader, ChunkPrefetch};
use crate::budget::ByteBudget;
use crate::error::{Error, ErrorKind, Result, SqlState};
use crate::pg::{Session, quote_qualified};
use crate::progress::Progress;

/// Decoded bytes the loaders of a restore keep in flight together, ahead of the chunks they are sending
/// (each always at least one chunk, however big: a chunk may decode to 1 GiB, so the budget is in bytes,
/// not chunks). Shared, so that memory does not grow with `-j`: 16 MiB restored the benchmark as fast as
/// 32 MiB, with a peak 18 MiB lower (README, "Performance").
const READ_AHEAD_BYTES: u64 = 16 << 20;

/// The most a loader hands its connection at once. Measured on the benchmark's data at `-j 2`: whole chunks
/// (4 MiB) peaked 70 MB, 1 MiB pieces 55 MB as fast, 256 KiB pieces 10% slower.
const SEND_BYTES: usize = 1 << 20;

/// How long the `TRUNCATE` before a frozen load waits for another session's lock on the table (a reader
/// of the new table, a tool looking at it) before the rows load as they are instead: `COPY` takes a lock
/// that readers do not block, so the restore goes on rather than waiting behind them for as long as they
/// last (its sessions otherwise wait for locks without a limit).
const TRUNCATE_WAIT_MS: u32 = 1000;

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
        self.load(session, step, step.freeze != Freeze::No).await
    }

    /// Loads `steps`, one task of the restore's schedule: one part, or every part of a table the plan loads
    /// frozen after emptying it ([`Freeze::AfterTruncate`]). Returns the rows loaded.
    pub async fn load_parts(&self, session: &Session, steps: &[&PartStep]) -> Result<u64> {
        match steps.first() {
            Some(first) if first.freeze == Freeze::AfterTruncate => self.load_table(session, steps).await,
            _ => {
                let mut rows = 0;
                for step in steps {
                    rows += self.load_part(session, step).await?;
                }
                Ok(rows)
            }
        }
    }

    /// Loads the parts of one table in one transaction: `TRUNCATE`, each part's `COPY ... FREEZE`, `COMMIT`.
    /// Where the table cannot be emptied (the role may not truncate it, a foreign key refers to it, or
    /// another session holds a lock on it for longer than [`TRUNCATE_WAIT_MS`]: `TRUNCATE` needs the table
    /// to itself, `COPY` does not) they load as they are, each committed on its own. Returns the rows
    /// loaded.
    async fn load_table(&self, session: &Session, steps: &[&PartStep]) -> Result<u64> {
        let Some(first) = steps.first() else { return Ok(0) };
        let truncate = format!(
            "BEGIN; SET LOCAL lock_timeout = {TRUNCATE_WAIT_MS}; TRUNCATE ONLY {}; SET LOCAL lock_timeout = 0",
            quote_qualified(&first.table)
        );
        let frozen = match session.batch(&truncate).await {
            Ok(()) => true,
            Err(e)
                if matches!(
                    e.sqlstate(),
                    Some(
                        SqlState::INSUFFICIENT_PRIVILEGE
                            | SqlState::FEATURE_NOT_SUPPORTED
                            | SqlState::LOCK_NOT_AVAILABLE
                    )
                ) =>
            {
                session.batch("ROLLBACK").await?;
                tracing::info!(
                    "`{}` cannot be emptied to load its rows frozen ({e}): loading them as they are",
                    first.table
                );
                false
            }
            Err(e) => {
                let _ = session.batch("ROLLBACK").await;
                return Err(e);
            }
        };
        let loaded = async {
            let mut rows = 0;
            for step in steps {
                rows += self.load(session, step, frozen).await?;
            }
            if frozen {
                session.batch("COMMIT").await?;
            }
            Ok(rows)
        }
        .await;
        if loaded.is_err() && frozen {
            // The session goes with the failed restore; its transaction must not outlive the error.
            let _ = session.batch("ROLLBACK").await;
        }
        loaded
    }

    async fn load(&self, session: &Session, step: &PartStep, frozen: bool) -> Result<u64> {
        if self.archive.index().chunks(step.part).next().is_none() {
            return Ok(0);
        }
        session.under_search_path(step.search_path.as_ref(), self.copy_part(session, step, frozen)).await
    }

    async fn copy_part(&self, session: &Session, step: &PartStep, frozen: bool) -> Result<u64> {
        if let Some(sql) = &step.before {
            session.batch(sql).await?;
        }
        let copy = if frozen { step.copy_sql() } else { step.copy.clone() };
        let mut sink = session.copy_in(&copy).await?;
        let runtime = tokio::runtime::Handle::current();
        let (archive, budget) = (self.archive.clone(), self.read_ahead.clone());
        let mut chunks = match step.chunks {
            Some(piece) => {
                if piece.binary && piece.from > 0 {
                    sink.send(Bytes::from_static(BINARY_HEADER)).await?;
                }
                ChunkPrefetch::of_chunks(archive, step.part, piece.from..piece.to, budget, &runtime)
            }
            None => ChunkPrefetch::new(archive, step.part, budget, &runtime),
        };
        while let Some(decoded) = chunks.next().await {
            let decoded = decoded.map_err(|e| e.context(format!("`{}`", self.archive.path().display())))?;
            self.progress.advance(step.part, decoded.bytes.len() as u64, decoded.chunk.entry.rows);
            // In pieces: the connection copies what it is given into its write buffer, which then keeps
            // that size for as long as the session lives.
            let bytes = Bytes::from(decoded.bytes);
            for at in (0..bytes.len()).step_by(SEND_BYTES) {
                sink.send(bytes.slice(at..bytes.len().min(at + SEND_BYTES))).await?;
            }
        }
        if step.chunks.is_some_and(|p| p.binary && p.to < p.of) {
            sink.send(Bytes::from_static(BINARY_TRAILER)).await?;
        }
        let rows = sink.finish().await?;
        if rows != step.rows {
            // The archive's chunks checked out, yet the server took another number of rows: the restore
            // cannot go on, and this is no clean verdict on the data (exit 2, not 1).
            return Err(Error::new(
                ErrorKind::Database,
                format!("{}: COPY loaded {rows} rows, the archive holds {}; the restore stopped", step.label(), step.rows),
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
