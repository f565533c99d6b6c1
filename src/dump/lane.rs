//! A dump worker's session on a thread of its own.
//!
//! A part streams through COPY as thousands of messages, each handed from the connection's task to the
//! task that scans and cuts it into chunks. On the shared multi-threaded runtime those two tasks wake each
//! other across threads: measured on a 658 MB database at `-j 2`, 15,600 context switches against 9,600
//! and 14% more time than with each session on a thread of its own. So each worker session of the dump
//! lives on its own thread, with a single-threaded runtime for its connection and its parts, as the dump
//! had it before the worker pool; the pool still decides which part goes where and stops all at the first
//! error. Only a part's start and its result cross threads.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::worker::Job;
use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
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
                    while let Some((part, reply)) = incoming.recv().await {
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

async fn session(setup: &LaneSetup, stop: &Cancel) -> Result<Session> {
    let session = Session::open(&setup.connect, Some(&setup.encoding)).await?.cancelled_by(stop);
    session.batch("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    session.batch(&format!("SET TRANSACTION SNAPSHOT {}", quote_literal(&setup.exported_snapshot))).await?;
    Ok(session)
}

/// A lane's thread ended without an answer: it panicked.
fn stopped(what: &str) -> Error {
    Error::new(ErrorKind::Io, format!("a dump worker stopped unexpectedly while {what} (it panicked)"))
}
