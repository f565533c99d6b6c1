//! The store's writer lock: one writer at a time (a snapshot's retention, a prune, later a rollback), the
//! others wait up to a timeout and then refuse, naming who holds it.
//!
//! Locally it is an OS advisory lock (`flock`) on the file `lock` in the store, which the OS releases when
//! the holder's process ends however it ends, so a crash never leaves a stale lock behind. While held, the
//! file says who holds it (pid, host, command, since when); that text is only for the refusal's message,
//! so a holder that cannot be written (a full disk) is a warning and the lock is held all the same.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};

/// Who holds (or asks for) the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    /// The command, such as `pgsafe prune`.
    pub command: String,
    pub since: Timestamp,
}

impl LockHolder {
    /// This process, running `command`.
    pub fn this_process(command: &str) -> LockHolder {
        LockHolder {
            pid: std::process::id(),
            host: super::audit::host_name(),
            command: command.to_owned(),
            since: Timestamp::now(),
        }
    }
}

impl LockHolder {
    /// Whether this holder's process still runs: `None` when it ran on another host. A pid the system
    /// gave to a process started after the holder's `since` is another process: the holder's is gone.
    pub fn is_running_here(&self) -> Option<bool> {
        if self.host == "unknown" || self.host != super::audit::host_name() {
            return None;
        }
        // Without /proc (not Linux) nothing here tells: as for another host.
        if !Path::new("/proc/self").exists() {
            return None;
        }
        let exists = Path::new(&format!("/proc/{}", self.pid)).exists();
        Some(exists && process_start(self.pid).is_none_or(|start| start <= self.since.as_second() + 1))
    }
}

/// When process `pid` started, in seconds since the epoch, from Linux's `/proc` (`None` when it cannot be
/// read).
fn process_start(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: the fields that count come after its last `)`.
    // `starttime` is the 22nd field, the 20th after the name, in clock ticks since boot: USER_HZ, which
    // Linux fixes at 100 for user space on the architectures pgsafe builds for.
    let ticks: u64 = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()?;
    let boot: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot + (ticks / 100) as i64)
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let since = self.since.round(jiff::Unit::Second).unwrap_or(self.since);
        write!(f, "`{}` (pid {} on {}, since {since})", self.command, self.pid, self.host)
    }
}

/// A held lock; dropping it releases it.
pub struct StoreLock {
    _guard: Box<dyn Send + Sync>,
}

impl StoreLock {
    /// Wraps whatever keeps a store's lock held until dropped.
    pub fn new(guard: impl Send + Sync + 'static) -> StoreLock {
        StoreLock { _guard: Box::new(guard) }
    }
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLock")
    }
}

/// How often a waiting writer tries again.
const POLL: Duration = Duration::from_millis(100);

/// The lock file, held: empties the holder's text when released.
struct FileLock(File);

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file releases the lock; the text goes first so nobody reads a holder that left.
        let _ = self.0.set_len(0);
        let _ = self.0.unlock();
    }
}

/// Takes the lock on `path` (created 0600 if missing) for `holder`, waiting up to `wait` unless `cancel`
/// fires first (Ctrl-C, SIGTERM).
pub(super) fn lock_file(
    path: &Path,
    holder: &LockHolder,
    wait: Duration,
    cancel: &Cancel,
    store: &str,
) -> Result<StoreLock> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("opening the store's lock", path, e))?;
    let started = Instant::now();
    let mut said_waiting = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                cancel.check(&format!("waiting for the store's lock (`{}`)", path.display()))?;
                let other = read_holder(&mut file);
                if started.elapsed() >= wait {
                    let who = other.map_or_else(|| "another pgsafe".to_owned(), |h| h.to_string());
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!("the store `{store}` is locked by {who}; gave up after {:.0?}", wait),
                    )
                    .with_hint(format!(
                        "wait for it to finish, or give `--store-lock-timeout` more seconds; the lock is `{}`",
                        path.display()
                    )));
                }
                if !said_waiting {
                    said_waiting = true;
                    let who = other.map_or_else(|| "another pgsafe".to_owned(), |h| h.to_string());
                    tracing::warn!("the store `{store}` is locked by {who}: waiting up to {wait:.0?}");
                }
                std::thread::sleep(POLL.min(wait.saturating_sub(started.elapsed())).max(Duration::from_millis(1)));
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("locking", path, e)),
        }
    }
    // The flock is the lock; the holder's name only explains a refusal. A store whose disk is full (often
    // full of snapshots, when a rollback is most needed) must still grant it: a failed write is a warning.
    if let Err(e) = write_holder(&mut file, holder) {
        tracing::warn!(
            "the store's lock `{}` is held, but its holder could not be written into it ({e}): another pgsafe waiting for it will not know who holds it",
            path.display()
        );
        let _ = file.set_len(0);
    }
    Ok(StoreLock::new(FileLock(file)))
}

/// Writes `holder` over the file's text.
fn write_holder(file: &mut File, holder: &LockHolder) -> std::io::Result<()> {
    let text = serde_json::to_string(holder).expect("a lock holder serializes") + "\n";
    file.rewind()?;
    file.write_all(text.as_bytes())?;
    file.set_len(text.len() as u64)
}

/// The holder the file names, if it names one. Reads a few kilobytes at most: the text is one short line.
fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(4096).read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tester's B4: a store whose disk is full blocked every rollback, since the holder's name could
    /// not be written into the lock file. A full disk cannot be made here; `/dev/full` can: it takes an
    /// `flock`, and every write to it fails with ENOSPC.
    #[test]
    fn the_lock_is_taken_when_the_holder_cannot_be_written_into_its_file() {
        let holder = LockHolder::this_process("pgsafe rollback");
        // Another test process may hold `/dev/full` for a moment: wait for it rather than fail.
        let lock = lock_file(Path::new("/dev/full"), &holder, Duration::from_secs(30), &Cancel::new(), "/full");
        assert!(lock.is_ok(), "{:?}", lock.err().map(|e| e.to_string()));
    }
}
