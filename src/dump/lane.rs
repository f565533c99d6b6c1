//! A dump worker's session on a thread of its own.
//!
//! A part streams through COPY as thousands of messages, each handed from the connection's task to the
//! task that scans and cuts it into chunks. On the shared multi-threaded runtime those two tasks wake each
//! other across threads: measured on a 658 MB database at `-j 2`, 15,600 context switches against 9,600
//! and 14% more time than with each session on a thread of its own. So each worker session of the dump
//! lives on its own thread, with a single-threaded runtime for its connection and its parts, as the dump
//! had it before the worker pool; the pool still decides which part goes where and stops all at the first
//! error. Only a part's start and its result cross threads.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::worker::Job;
use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::format::TableName;
use crate::pg::{ConnectOptions, Session, quote_literal};
use crate::plan::PlannedPart;

type Request = (PlannedPart, oneshot::Sender<Result<()>>);

/// A worker session inside the dump's snapshot, on its own thread. Dropped, its thread ends (its session
/// with it), and so does its share of the [`Job`] (the archive writer finishes once every share is gone).
pub(super) struct Lane {
    requests: mpsc::UnboundedSender<Request>,
}

/// What a lane's session needs.
pub(super) struct LaneSetup {
    pub connect: ConnectOptions,
    pub encoding: String,
    pub exported_snapshot: String,
    pub job: Arc<Job>,
}

impl Lane {
    /// Starts the thread, opens its session in the snapshot (watched by `stop`), and returns once ready.
    pub async fn open(setup: Arc<LaneSetup>, stop: Cancel) -> Result<Lane> {
        let (ready_tx, ready_rx) = oneshot::channel::<Result<()>>();
        let (requests, mut incoming) = mpsc::unbounded_channel::<Request>();
        std::thread::Builder::new()
            .name("pgsafe-dump-worker".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let error = Error::new(ErrorKind::Io, "starting a dump worker's runtime").with_source(e);
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let session = match session(&setup, &stop).await {
                        Ok(session) => session,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let mut locked: HashSet<TableName> = HashSet::new();
                    while let Some((part, reply)) = incoming.recv().await {
                        if !locked.contains(&part.info.table) && locked.len() >= TABLES_PER_TRANSACTION {
                            if let Err(e) = next_transaction(&session, &setup).await {
                                let _ = reply.send(Err(e));
                                continue;
                            }
                            locked.clear();
                        }
                        locked.insert(part.info.table.clone());
                        let _ = reply.send(setup.job.dump_part(&session, &part).await);
                    }
                });
            })
            .map_err(|e| Error::new(ErrorKind::Io, "starting a dump worker's thread").with_source(e))?;
        ready_rx.await.map_err(|_| stopped("opening its session"))??;
        Ok(Lane { requests })
    }

    /// Dumps `part` on the lane's thread, and gives the lane back with the result.
    pub async fn dump(self, part: PlannedPart) -> (Lane, Result<()>) {
        let what = format!("dumping part {} (`{}`)", part.info.id, part.info.table);
        let (reply, result) = oneshot::channel();
        if self.requests.send((part, reply)).is_err() {
            return (self, Err(stopped(&what)));
        }
        let result = result.await.unwrap_or_else(|_| Err(stopped(&what)));
        (self, result)
    }
}

/// How many tables a worker reads in one transaction. Each `COPY` takes an `ACCESS SHARE` lock on its table,
/// held until the transaction ends, in the server's lock table, which all sessions share (about
/// `max_locks_per_transaction` × `max_connections` entries): the leader already holds one on every table
/// the dump reads, and workers that kept theirs too would need the room again per worker (6,200 tables
/// at `-j 2`: 18,600 entries, where the server's default settings have 6,400). So a worker ends its
/// transaction after this many tables and begins the next in the same exported snapshot, which the
/// leader's transaction keeps alive: its rows are those of the one snapshot all along, and the leader's
/// locks keep every table as it was.
const TABLES_PER_TRANSACTION: usize = 64;

/// Ends the worker's transaction and begins the next in the dump's snapshot.
async fn next_transaction(session: &Session, setup: &LaneSetup) -> Result<()> {
    session.batch("COMMIT").await?;
    begin(session, setup).await
}

async fn begin(session: &Session, setup: &LaneSetup) -> Result<()> {
    join_snapshot(session, &setup.exported_snapshot).await
}

/// Begins a read-only transaction of `session` in the dump's exported snapshot.
pub(super) async fn join_snapshot(session: &Session, snapshot: &str) -> Result<()> {
    session.batch("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    session.batch(&format!("SET TRANSACTION SNAPSHOT {}", quote_literal(snapshot))).await
}

async fn session(setup: &LaneSetup, stop: &Cancel) -> Result<Session> {
    let session = Session::open(&setup.connect, Some(&setup.encoding)).await?.cancelled_by(stop);
    begin(&session, setup).await?;
    Ok(session)
}

/// A lane's thread ended without an answer: it panicked.
fn stopped(what: &str) -> Error {
    Error::new(ErrorKind::Io, format!("a dump worker stopped unexpectedly while {what} (it panicked)"))
}
