//! The one worker pool: N sessions work through a list of tasks, each task starting once the tasks it
//! depends on are done, the heaviest ready task first. The first error wins: no new task starts, the
//! statements the running ones run are cancelled (their sessions watch the pool's own cancellation), and
//! that error is returned once they have stopped. An interruption stops it the same way and returns
//! [`ErrorKind::Cancelled`], unless every task was done by then. A task that panics becomes an error
//! naming the task.
//!
//! Loading parts, verifying tables and building post-data objects are all this loop; only what a task
//! does and what a session is differ.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::Waits;

/// The machine's cores (as the OS lets this process use them), 2 when it cannot tell: the default number
/// of workers, and what the dump weighs its workers against.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// One unit of work.
#[derive(Debug)]
pub(crate) struct Task<T> {
    pub item: T,
    /// Names the task in errors, for example ``part 3 (`public.orders`)``.
    pub name: String,
    /// Positions (in the same list) of the tasks that must be done first.
    pub deps: Vec<usize>,
    /// Among the tasks ready at once, heavier ones start first (ties: the earlier one).
    pub weight: u64,
}

impl<T> Task<T> {
    /// A task without dependencies.
    pub fn new(item: T, name: String, weight: u64) -> Self {
        Task { item, name, deps: Vec::new(), weight }
    }
}

/// Runs `tasks` on up to `jobs` sessions made by `open`, and returns each task's result, in the order
/// of `tasks`. `open` gets the pool's cancellation (a child of `cancel`, fired by the first error too),
/// which its sessions must watch. `work` takes the session and the task's item and gives the session back
/// with the result, so that a task may run on any thread of the runtime.
///
/// `what` names the whole run for a cancellation (`"the restore's data"`).
pub(crate) async fn run<T, S, R, Open, OpenFuture, Work, WorkFuture>(
    what: &str,
    jobs: usize,
    tasks: Vec<Task<T>>,
    cancel: &Cancel,
    open: Open,
    work: Work,
) -> Result<Vec<R>>
where
    T: Send + 'static,
    S: Send + 'static,
    R: Send + 'static,
    Open: Fn(&Cancel) -> OpenFuture,
    OpenFuture: Future<Output = Result<S>>,
    Work: Fn(S, T) -> WorkFuture,
    WorkFuture: Future<Output = (S, Result<R>)> + Send + 'static,
{
    let n = tasks.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    cancel.check(what)?;
    let mut waits = Waits::new(n, |i| tasks[i].deps.clone());
    let mut weights = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut items: Vec<Option<T>> = Vec::with_capacity(n);
    for task in tasks {
        weights.push(task.weight);
        names.push(task.name);
        items.push(Some(task.item));
    }
    let mut ready: BinaryHeap<(u64, Reverse<usize>)> = waits.ready().map(|i| (weights[i], Reverse(i))).collect();

    let stop = cancel.child();
    let sessions = jobs.clamp(1, n);
    let mut idle = Vec::with_capacity(sessions);
    for opened in futures_util::future::join_all((0..sessions).map(|_| open(&stop))).await {
        idle.push(opened?);
    }

    let mut results: Vec<Option<R>> = (0..n).map(|_| None).collect();
    let mut running = tokio::task::JoinSet::new();
    let mut running_task: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut first_error: Option<Error> = None;
    let mut done = 0;
    loop {
        while !stop.is_cancelled() && !idle.is_empty() {
            let Some((_, Reverse(i))) = ready.pop() else { break };
            let (Some(session), Some(item)) = (idle.pop(), items[i].take()) else { break };
            let task = work(session, item);
            tracing::debug!("{what}: started {}", names[i]);
            let started = std::time::Instant::now();
            let handle = running.spawn(async move {
                let (session, result) = task.await;
                (i, session, result, started.elapsed())
            });
            running_task.insert(handle.id(), i);
        }
        let Some(joined) = running.join_next_with_id().await else { break };
        match joined {
            Ok((_, (i, session, result, took))) => {
                tracing::debug!(
                    "{what}: {} {} in {:.2}s",
                    if result.is_ok() { "finished" } else { "failed" },
                    names[i],
                    took.as_secs_f64()
                );
                idle.push(session);
                match result {
                    Ok(r) => {
                        results[i] = Some(r);
                        done += 1;
                        ready.extend(waits.done(i).into_iter().map(|d| (weights[d], Reverse(d))));
                    }
                    Err(e) => {
                        first_error = first_error.or(Some(e));
                        stop.cancel();
                    }
                }
            }
            Err(e) => {
                let name = running_task.get(&e.id()).map_or("a task", |&i| names[i].as_str());
                first_error = first_error.or(Some(panicked(name, e)));
                stop.cancel();
            }
        }
    }
    // A statement an interruption stopped fails with the server's "canceling statement"; what the user
    // did is the cause worth reporting, unless everything was done anyway.
    if cancel.is_cancelled() && (done < n || first_error.is_some()) {
        return Err(Error::new(ErrorKind::Cancelled, format!("{what} was interrupted")));
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if done < n {
        let stuck: Vec<&str> = (0..n).filter(|&i| results[i].is_none()).take(5).map(|i| names[i].as_str()).collect();
        return Err(Error::new(
            ErrorKind::CorruptArchive,
            format!("{} task(s) wait on each other and cannot start: {}", n - done, stuck.join(", ")),
        ));
    }
    Ok(results.into_iter().map(|r| r.expect("every task is done")).collect())
}

/// A task that panicked, as an error that names it: a bug in pgsafe, never a reason to say nothing.
pub(crate) fn panicked(name: &str, e: tokio::task::JoinError) -> Error {
    let reason = match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string()),
        Err(e) => e.to_string(),
    };
    Error::new(ErrorKind::Io, format!("{name}: a worker of pgsafe failed ({reason}); this is a bug, please report it"))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn tasks(n: usize) -> Vec<Task<usize>> {
        (0..n).map(|i| Task::new(i, format!("task {i}"), 0)).collect()
    }

    #[tokio::test]
    async fn every_task_runs_once_and_results_keep_the_task_order() {
        let opened = Arc::new(Mutex::new(0));
        let counter = opened.clone();
        let out = run(
            "test",
            3,
            tasks(20),
            &Cancel::new(),
            |_: &Cancel| {
                let counter = counter.clone();
                async move {
                    *counter.lock().unwrap() += 1;
                    Ok(())
                }
            },
            |s, i| async move { (s, Ok(i * 10)) },
        )
        .await
        .unwrap();
        assert_eq!(out, (0..20).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(*opened.lock().unwrap(), 3, "one session per job, reused");
    }

    #[tokio::test]
    async fn a_task_starts_after_what_it_depends_on_and_heavier_ones_go_first() {
        let mut list: Vec<Task<usize>> = (0..4).map(|i| Task::new(i, format!("task {i}"), i as u64)).collect();
        // 3 needs 0 although 3 is the heaviest.
        list[3].deps = vec![0];
        let order = Arc::new(Mutex::new(Vec::new()));
        let seen = order.clone();
        run(
            "test",
            1,
            list,
            &Cancel::new(),
            |_: &Cancel| async { Ok(()) },
            |s, i| {
                seen.lock().unwrap().push(i);
                async move { (s, Ok(())) }
            },
        )
        .await
        .unwrap();
        assert_eq!(*order.lock().unwrap(), vec![2, 1, 0, 3]);
    }

    #[tokio::test]
    async fn the_first_error_wins_and_stops_new_tasks() {
        let started = Arc::new(Mutex::new(0));
        let seen = started.clone();
        let e = run(
            "test",
            1,
            tasks(10),
            &Cancel::new(),
            |_: &Cancel| async { Ok(()) },
            |s, i| {
                *seen.lock().unwrap() += 1;
                async move { (s, if i == 2 { Err(Error::new(ErrorKind::Database, "boom")) } else { Ok(()) }) }
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.to_string(), "boom");
        assert_eq!(*started.lock().unwrap(), 3, "nothing starts after the failure");
    }

    #[tokio::test]
    async fn a_panicking_task_is_an_error_naming_it() {
        let e = run(
            "test",
            2,
            tasks(3),
            &Cancel::new(),
            |_: &Cancel| async { Ok(()) },
            |s, i| async move {
                if i == 1 {
                    panic!("index out of bounds");
                }
                (s, Ok(()))
            },
        )
        .await
        .unwrap_err();
        assert!(e.to_string().starts_with("task 1: a worker of pgsafe failed (index out of bounds)"), "{e}");
    }

    #[tokio::test]
    async fn a_cancellation_stops_the_queue_and_says_so() {
        let cancel = Cancel::new();
        let trigger = cancel.clone();
        let started = Arc::new(Mutex::new(0));
        let seen = started.clone();
        let e = run(
            "the restore's data",
            1,
            tasks(10),
            &cancel,
            |_: &Cancel| async { Ok(()) },
            |s, i| {
                *seen.lock().unwrap() += 1;
                if i == 1 {
                    trigger.cancel();
                }
                async move { (s, Ok(())) }
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cancelled);
        assert_eq!(e.to_string(), "the restore's data was interrupted");
        assert_eq!(*started.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn tasks_that_wait_on_each_other_are_named() {
        let mut list = tasks(3);
        list[1].deps = vec![2];
        list[2].deps = vec![1];
        let e = run("test", 2, list, &Cancel::new(), |_: &Cancel| async { Ok(()) }, |s, _| async move { (s, Ok(())) })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("2 task(s) wait on each other and cannot start: task 1, task 2"), "{e}");
    }
}
