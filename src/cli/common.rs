//! Arguments several commands share (connection, filters) and the progress renderer.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pgsafe::cancel::Cancel;
use pgsafe::catalog::{Filters, NamePattern};
use pgsafe::format::PartId;
use pgsafe::pg::ConnectOptions;
use pgsafe::progress::{Progress, Silent};
use pgsafe::{Error, Result};

use super::output::bytes;

/// How to reach the server, spelled like pg_dump's options.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// Database name, `key=value` connection string, or `postgres://` URI.
    #[arg(short = 'd', long = "dbname", value_name = "DBNAME|CONNINFO")]
    pub dbname: Option<String>,
    /// Server host or Unix socket folder.
    #[arg(short = 'h', long, value_name = "HOST")]
    pub host: Option<String>,
    /// Server port.
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,
    /// User name.
    #[arg(short = 'U', long = "username", value_name = "USER")]
    pub user: Option<String>,
}

impl ConnectArgs {
    pub fn options(&self) -> Result<ConnectOptions> {
        ConnectOptions::new(self.dbname.as_deref(), self.host.as_deref(), self.port, self.user.as_deref())
    }
}

/// Which schemas and tables, with pg_dump's pattern rules.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Only schemas matching PATTERN (repeatable).
    #[arg(short = 'n', long = "schema", value_name = "PATTERN")]
    pub schema: Vec<String>,
    /// Not schemas matching PATTERN (repeatable).
    #[arg(short = 'N', long = "exclude-schema", value_name = "PATTERN")]
    pub exclude_schema: Vec<String>,
    /// Only tables matching PATTERN (repeatable); `-n`/`-N` then have no effect.
    #[arg(short = 't', long = "table", value_name = "PATTERN")]
    pub table: Vec<String>,
    /// Not tables matching PATTERN (repeatable).
    #[arg(short = 'T', long = "exclude-table", value_name = "PATTERN")]
    pub exclude_table: Vec<String>,
}

impl FilterArgs {
    pub fn filters(&self, exclude_table_data: &[String]) -> Result<Filters> {
        let objects = |ps: &[String]| ps.iter().map(|p| NamePattern::object(p)).collect::<Result<Vec<_>>>();
        let schemas = |ps: &[String]| ps.iter().map(|p| NamePattern::schema(p)).collect::<Result<Vec<_>>>();
        Ok(Filters {
            include_schemas: schemas(&self.schema)?,
            exclude_schemas: schemas(&self.exclude_schema)?,
            include_tables: objects(&self.table)?,
            exclude_tables: objects(&self.exclude_table)?,
            exclude_table_data: objects(exclude_table_data)?,
            ..Filters::default()
        })
    }
}

/// The default number of workers: the machine's cores.
pub fn default_jobs() -> usize {
    pgsafe::cores()
}

/// A progress bar on a terminal, a line every ten seconds otherwise, nothing when quiet.
pub fn progress(quiet: bool) -> std::sync::Arc<dyn Progress> {
    if quiet {
        return std::sync::Arc::new(Silent);
    }
    std::sync::Arc::new(CliProgress::new(std::io::stderr().is_terminal()))
}

struct CliProgress {
    bar: ProgressBar,
    terminal: bool,
    state: Mutex<LineState>,
}

struct LineState {
    phase: String,
    started: Instant,
    last_line: Instant,
    rows: u64,
}

const LINE_EVERY: Duration = Duration::from_secs(10);

impl CliProgress {
    fn new(terminal: bool) -> Self {
        let bar = if terminal {
            ProgressBar::new(0)
        } else {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
        };
        let style = ProgressStyle::with_template(
            "{prefix:>8} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12}  eta {eta:<4} {msg}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let now = Instant::now();
        CliProgress {
            bar,
            terminal,
            state: Mutex::new(LineState { phase: String::new(), started: now, last_line: now, rows: 0 }),
        }
    }
}

impl Progress for CliProgress {
    fn start(&self, phase: &str, estimated_bytes: u64, _estimated_rows: u64) {
        self.bar.set_prefix(phase.to_string());
        self.bar.set_length(estimated_bytes);
        self.bar.set_position(0);
        self.bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut s) = self.state.lock() {
            let now = Instant::now();
            *s = LineState { phase: phase.to_string(), started: now, last_line: now, rows: 0 };
        }
    }

    fn advance(&self, _part: PartId, bytes_done: u64, rows: u64) {
        self.bar.inc(bytes_done);
        // The estimate came from the catalog; the stream may be larger.
        if self.bar.position() > self.bar.length().unwrap_or(0) {
            self.bar.set_length(self.bar.position());
        }
        let Ok(mut s) = self.state.lock() else { return };
        s.rows += rows;
        self.bar.set_message(format!("{} rows", s.rows));
        if !self.terminal && s.last_line.elapsed() >= LINE_EVERY {
            s.last_line = Instant::now();
            eprintln!(
                "{}: {} of about {} after {:.0?}, {} rows",
                s.phase,
                bytes(self.bar.position()),
                bytes(self.bar.length().unwrap_or(0)),
                s.started.elapsed(),
                s.rows
            );
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn step(&self, what: &str) {
        self.bar.suspend(|| eprintln!("==> {what}"));
    }
}

/// Runs a future on a multi-threaded runtime; Ctrl-C or SIGTERM drops it with a clear error. For steps
/// that have nothing to clean up; operations that do use [`block_on_cancellable`].
pub fn block_on<T>(what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let runtime = runtime()?;
    let what = what.to_string();
    let process = watch_signals();
    runtime.block_on(async move {
        tokio::select! {
            r = f => r,
            _ = process.cancelled() => Err(Error::new(pgsafe::ErrorKind::Cancelled, format!("{what} was interrupted"))),
        }
    })
}

/// What a second signal leaves behind when it stops an operation at once.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Abandoned {
    /// Nothing a person must see to (exit 2): a dump's or restore's partial output is named as such.
    Output,
    /// A database that may be part way through a migration or a rollback (exit 3).
    Database,
}

/// Runs an operation that watches `cancel` on a multi-threaded runtime. The first Ctrl-C (SIGINT) or
/// SIGTERM (what a CI runner sends when it times out) cancels it: the operation stops its server-side
/// statements, cleans up and returns its own error, which says what was and was not done. A second
/// signal stops the process at once, with exit code 2.
pub fn block_on_cancellable<T>(
    what: &str,
    cancel: &Cancel,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    block_on_abandoning(what, cancel, Abandoned::Output, f)
}

/// [`block_on_cancellable`], for an operation whose second signal may leave `abandoned` behind: a
/// migration's or rollback's exits 3 and says where to look.
pub fn block_on_abandoning<T>(
    what: &str,
    cancel: &Cancel,
    abandoned: Abandoned,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let runtime = runtime()?;
    // The handlers are in place before the operation starts; a signal that came before it (while the
    // command planned, between two operations) cancels it at once, so it stops as it would have.
    let process = watch_signals();
    *WATCHED.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(Watched { what: what.to_string(), cancel: cancel.clone(), abandoned });
    if process.is_cancelled() {
        cancel.cancel();
    }
    let result = runtime.block_on(f);
    *WATCHED.lock().unwrap_or_else(|e| e.into_inner()) = None;
    result
}

/// For a command with nothing to clean up (`verify`, `inspect`): a first SIGINT or SIGTERM ends it at
/// once, saying so, with exit code 2 as any interrupted command. Without it the signal's default action
/// would end it without a word (exit 130 or 143), or, started in the background by a script, not at all.
pub fn stop_at_signal(what: &str) {
    *STOP_AT_ONCE.lock().unwrap_or_else(|e| e.into_inner()) = Some(what.to_string());
    watch_signals();
}

static STOP_AT_ONCE: Mutex<Option<String>> = Mutex::new(None);

/// The operation running now, which a signal cancels.
#[derive(Clone)]
struct Watched {
    what: String,
    cancel: Cancel,
    abandoned: Abandoned,
}

static WATCHED: Mutex<Option<Watched>> = Mutex::new(None);

fn watched() -> Option<Watched> {
    WATCHED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Watches SIGINT and SIGTERM for the rest of the process, from the first command step that can clean
/// up after one, and returns the process's cancellation, which the first signal cancels. Once a signal
/// handler is in place the signals' default action (ending the process) is gone for good, so the watch
/// outlives every operation: a signal that comes between two operations, or while the command plans,
/// is not lost but cancels the next operation as it starts (and any [`block_on`] step at once).
fn watch_signals() -> Cancel {
    static PROCESS: std::sync::OnceLock<Cancel> = std::sync::OnceLock::new();
    PROCESS
        .get_or_init(|| {
            let process = Cancel::new();
            let (ready, registered) = std::sync::mpsc::channel();
            let cancel = process.clone();
            let spawned = std::thread::Builder::new().name("pgsafe-signals".into()).spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
                let Ok(runtime) = runtime.map_err(|e| ready.send(Err(e.to_string()))) else { return };
                runtime.block_on(async move {
                    use tokio::signal::unix::{SignalKind, signal};
                    match signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?))) {
                        Ok((interrupt, terminate)) => {
                            let _ = ready.send(Ok(()));
                            on_signals(cancel, interrupt, terminate).await;
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e.to_string()));
                        }
                    }
                });
            });
            let outcome = match spawned {
                Ok(_) => registered.recv().unwrap_or_else(|_| Err("the thread stopped".into())),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = outcome {
                tracing::warn!("cannot watch for Ctrl-C and SIGTERM ({e}): an interruption will not clean up");
            }
            process
        })
        .clone()
}

/// How soon after a first SIGTERM another counts as the same one, delivered twice (see [`on_signals`]).
const SAME_SIGNAL_WITHIN: std::time::Duration = std::time::Duration::from_millis(100);

/// Cancels the process and the operation running at the first SIGINT or SIGTERM, exits at the second
/// (a SIGTERM after a SIGTERM only at least [`SAME_SIGNAL_WITHIN`] after it).
async fn on_signals(
    process: Cancel,
    mut interrupt: tokio::signal::unix::Signal,
    mut terminate: tokio::signal::unix::Signal,
) {
    let name = tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    };
    let stop = STOP_AT_ONCE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match (watched(), stop) {
        (Some(w), _) => {
            eprintln!("{}: {name} received: stopping and cleaning up (a second Ctrl-C stops at once)", w.what);
            w.cancel.cancel();
        }
        (None, Some(what)) => {
            eprintln!("{what}: {name} received: stopped (it had nothing to clean up)");
            std::process::exit(2);
        }
        (None, None) => eprintln!("{name} received: stopping (a second Ctrl-C stops at once)"),
    }
    process.cancel();
    // A signal repeated within a moment is the same request delivered twice, not a second one: GNU
    // `timeout` (without `--foreground`) signals the command, then its whole process group, so pgsafe
    // got SIGTERM twice and stopped at once, its migration half applied and nothing rolled back.
    // (A person's second Ctrl-C is a SIGINT, which always counts.)
    let first = std::time::Instant::now();
    loop {
        let again = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        if !(name == "SIGTERM" && again == "SIGTERM" && first.elapsed() < SAME_SIGNAL_WITHIN) {
            break;
        }
    }
    let Some(Watched { what, cancel, abandoned }) = watched() else {
        eprintln!("stopped at once");
        std::process::exit(2);
    };
    if let Some(undo) = cancel.last_resort() {
        // A database closed to new sessions, or without its name, is not left so for want of a second:
        // the undo runs first, for a few seconds at most; a third signal stops at once.
        eprintln!("{what}: stopping at once, after putting back what cannot be left (a third Ctrl-C stops now)");
        tokio::select! {
            _ = tokio::time::timeout(std::time::Duration::from_secs(5), undo()) => {}
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
    if let (Abandoned::Database, Some(at_stake)) = (abandoned, cancel.at_stake()) {
        eprintln!("{what}: stopped at once; the cleanup did not finish: {at_stake}");
        std::process::exit(3);
    }
    if abandoned == Abandoned::Database {
        eprintln!(
            "{what}: stopped at once; the cleanup did not finish: the database may be part way through the \
             migration or its rollback, and a copy being restored may be left on the server. `pgsafe status` and \
             the audit log name the snapshot taken before; `pgsafe rollback -d DB SNAPSHOT --yes` puts it back"
        );
        std::process::exit(3);
    }
    eprintln!("{what}: stopped at once; the cleanup did not finish");
    std::process::exit(2);
}

/// The async runtime of a command: tokio's default, a worker per core. One worker on 2 cores was
/// measured (2026-12-04): a verified restore switched threads half as often and took 3 to 4% less time,
/// but a restore without reading back took 6% more on the bench archive, its sessions' sends waiting on
/// the one thread; so the default stays.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(pgsafe::ErrorKind::Io, "starting the async runtime").with_source(e))
}

/// A timeout such as `2s` or `500ms`, at least 1ms (a `lock_timeout` of 0 would wait without a limit).
pub fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.as_millis() == 0 => Err(format!("`{text}`: the timeout must be at least 1ms")),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("`{text}` is not a duration such as `2s` or `500ms`: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signal that comes while no operation runs (the command planning between two) is not swallowed
    /// by the handler left in place: the next operation starts cancelled, and a plain step stops.
    #[test]
    fn a_signal_between_operations_cancels_the_next_one() {
        let first = Cancel::new();
        block_on_cancellable("first", &first, async { Ok(()) }).unwrap();
        assert!(!first.is_cancelled());
        // SAFETY: raise only sends this process a signal, which the watch installed above catches.
        #[allow(unsafe_code)]
        let raised = unsafe { libc::raise(libc::SIGTERM) };
        assert_eq!(raised, 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !watch_signals().is_cancelled() {
            assert!(Instant::now() < deadline, "the signal was not seen");
            std::thread::sleep(Duration::from_millis(10));
        }
        let next = Cancel::new();
        let stopped = block_on_cancellable("next", &next, async {
            tokio::time::timeout(Duration::from_secs(10), next.cancelled())
                .await
                .map_err(|_| Error::new(pgsafe::ErrorKind::Io, "the operation was not cancelled".to_string()))?;
            next.check("next")
        });
        assert_eq!(stopped.unwrap_err().kind(), pgsafe::ErrorKind::Cancelled);
        let step = block_on("a step", std::future::pending::<Result<()>>());
        assert_eq!(step.unwrap_err().kind(), pgsafe::ErrorKind::Cancelled);
    }
}
