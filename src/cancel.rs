//! Cooperative cancellation of a running operation.
//!
//! A signal (Ctrl-C, or the SIGTERM a CI runner sends when it times out) or a caller cancels a
//! [`Cancel`]. Whatever the operation watches with it hears at once: every session it opened has its
//! running statement cancelled on the server (the protocol's cancel request, so a long COPY or index
//! build stops now rather than when the server next writes to a closed socket), and its loops stop
//! taking new work. The operation then still runs its own cleanup (removing a `.partial` file, putting
//! triggers and foreign keys back, rolling back) before it returns [`ErrorKind::Cancelled`], saying
//! what was and was not done. Dropping the operation's future instead would skip all of that.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::error::{Error, ErrorKind, Result};

/// A cancellation shared by everything one operation runs; cheap to clone.
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
    /// What to do to stop each watched thing (a session's running statement), by watch id.
    watched: Mutex<HashMap<u64, Stop>>,
    next_id: AtomicU64,
    /// For a [`Cancel::child`]: the parent's watch that cancels it too, ended with it.
    _parent_watch: Mutex<Option<Watch>>,
    /// What the operation would leave behind if stopped at once, for the message of a second signal.
    at_stake: Mutex<Option<String>>,
    /// What a second signal still does before it stops the process (see [`Cancel::set_last_resort`]).
    last_resort: Mutex<Option<LastResort>>,
}

/// A short undo that a second signal runs before it stops the process: a state no database should be
/// left in (closed to new sessions, without its name) put back in one statement or two.
pub type LastResort = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

type Stop = Arc<dyn Fn() + Send + Sync>;

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel").field("cancelled", &self.is_cancelled()).finish_non_exhaustive()
    }
}

impl Cancel {
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Cancels: wakes every waiter and stops everything watched. Calling it again does nothing more.
    pub fn cancel(&self) {
        if self.inner.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        self.inner.notify.notify_waiters();
        // Called without the lock: a stop may end a watch (a child cancelled and dropped).
        let stops: Vec<Stop> = self.inner.watched.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for stop in stops {
            stop();
        }
    }

    /// A cancellation of part of the operation (one run of the worker pool): cancelled when this one is,
    /// and on its own (a pool's first error stops its other tasks) without touching this one.
    pub(crate) fn child(&self) -> Cancel {
        let child = Cancel::new();
        let weak = Arc::downgrade(&child.inner);
        let watch = self.watch(move || {
            if let Some(inner) = weak.upgrade() {
                Cancel { inner }.cancel();
            }
        });
        *child.inner._parent_watch.lock().unwrap_or_else(|p| p.into_inner()) = Some(watch);
        if self.is_cancelled() {
            child.cancel();
        }
        child
    }

    /// Says what the operation would leave behind if stopped at once from now on (`None`: nothing more
    /// than the command says in general).
    pub fn set_at_stake(&self, what: Option<String>) {
        *self.inner.at_stake.lock().unwrap_or_else(|p| p.into_inner()) = what;
    }

    /// Sets what a second signal runs, for a few seconds at most, before it stops the process (`None`:
    /// nothing). Set for as long as a state that must not outlive pgsafe lasts.
    pub fn set_last_resort(&self, undo: Option<LastResort>) {
        *self.inner.last_resort.lock().unwrap_or_else(|p| p.into_inner()) = undo;
    }

    /// What [`Cancel::set_last_resort`] last set.
    pub fn last_resort(&self) -> Option<LastResort> {
        self.inner.last_resort.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What [`Cancel::set_at_stake`] last said.
    pub fn at_stake(&self) -> Option<String> {
        self.inner.at_stake.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// `Err(Cancelled)` naming `what` was interrupted, once cancelled; `Ok` before.
    pub fn check(&self, what: &str) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::new(ErrorKind::Cancelled, format!("{what} was interrupted")))
        } else {
            Ok(())
        }
    }

    /// Runs `stop` when cancelled, for as long as the returned guard lives. Once cancelled, nothing new
    /// is watched: what starts after the cancellation is the operation's own cleanup.
    pub(crate) fn watch(&self, stop: impl Fn() + Send + Sync + 'static) -> Watch {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut watched = self.inner.watched.lock().unwrap_or_else(|p| p.into_inner());
        if !self.is_cancelled() {
            watched.insert(id, Arc::new(stop));
        }
        Watch { cancel: self.clone(), id }
    }
}

/// Keeps something watched by a [`Cancel`]; dropping it ends the watch.
pub(crate) struct Watch {
    cancel: Cancel,
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watched = self.cancel.inner.watched.lock().unwrap_or_else(|p| p.into_inner());
        watched.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn cancelling_stops_what_is_watched_once_and_nothing_watched_later() {
        let cancel = Cancel::new();
        let stops = Arc::new(AtomicUsize::new(0));
        let counter = stops.clone();
        let watch = cancel.watch(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let ended = cancel.watch(|| panic!("an ended watch is not stopped"));
        drop(ended);
        assert!(cancel.check("dump").is_ok());
        cancel.cancel();
        cancel.cancel();
        assert_eq!(stops.load(Ordering::SeqCst), 1);
        drop(watch);
        let _late = cancel.watch(|| panic!("cleanup started after the cancellation is not stopped"));
        cancel.cancel();
        let e = cancel.check("dump").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cancelled);
        assert_eq!(e.to_string(), "dump was interrupted");
    }

    #[test]
    fn a_child_is_cancelled_with_its_parent_but_not_the_other_way() {
        let parent = Cancel::new();
        let child = parent.child();
        child.cancel();
        assert!(child.is_cancelled() && !parent.is_cancelled());
        let other = parent.child();
        parent.cancel();
        assert!(other.is_cancelled());
        assert!(parent.child().is_cancelled(), "a child of a cancelled parent starts cancelled");
        // A dropped child ends its watch: the parent no longer holds it.
        drop(other);
        drop(child);
        assert!(parent.inner.watched.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_cancelled() {
        let cancel = Cancel::new();
        let waiter = tokio::spawn({
            let cancel = cancel.clone();
            async move { cancel.cancelled().await }
        });
        tokio::task::yield_now().await;
        cancel.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
        // Already cancelled: returns at once.
        cancel.cancelled().await;
    }
}
