//! Command-line parsing (clap stays in this module) and dispatch to the library.

/// `eprintln!` for the binary, which never panics: std's panics when stderr cannot be written, and
/// stderr is often a pipe whose reader goes away (`pgsafe migrate ... 2>&1 | head`). A panic there would
/// stop a migration between two files, with nothing rolled back and its snapshot left pinned; a message
/// nobody reads is dropped instead, and the work goes on. Defined before the modules, it is the one they
/// use.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that never panics (see `eprintln!` above).
macro_rules! eprint {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod check;
mod cluster;
mod common;
mod demo;
mod dryrun;
mod dump;
mod inspect;
mod keys;
mod lint;
mod migrate;
mod notify;
mod output;
mod restore;
mod rollback;
mod status;
mod store;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A native PostgreSQL logical backup engine with a migration-safety workflow.
#[derive(Debug, Parser)]
// `-h` is the host, as in pg_dump; help is `--help` only.
#[command(name = "pgsafe", version, about, propagate_version = true, disable_help_flag = true)]
struct Cli {
    /// Print help.
    #[arg(long, global = true, action = clap::ArgAction::Help)]
    help: Option<bool>,

    /// More log output on stderr (`-v` info, `-vv` debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Dump a database's data into one archive, in parallel, from one consistent snapshot.
    Dump(dump::DumpArgs),
    /// Prove an archive sound without a database: every checksum, row count and digest.
    Verify(verify::VerifyArgs),
    /// Load an archive's data into a database, then prove that what landed is what was dumped.
    Restore(restore::RestoreArgs),
    /// Take a snapshot: a verified dump into the store, then retention.
    Snapshot(store::SnapshotArgs),
    /// List the store's snapshots, newest first.
    Snapshots(store::SnapshotsArgs),
    /// Apply retention to the store's snapshots (`--dry-run` shows what would go).
    Prune(store::PruneArgs),
    /// Put a database back to a snapshot, after saying what that loses (`--plan` changes nothing).
    Rollback(rollback::RollbackArgs),
    /// The store at a glance: snapshots per database, the last operations and checks (`--markdown`, `--json`).
    Status(status::StatusArgs),
    /// Check the database's health: foreign keys, indexes, sequences, sessions, your SQL, a snapshot's rows.
    Check(check::CheckArgs),
    /// Lint migration SQL with PostgreSQL's parser: locks, rewrites, data loss (`-d` adds the database's facts).
    Lint(lint::LintArgs),
    /// Apply migrations (SQL files, a folder, or `-- COMMAND`) with a snapshot first, a health check after,
    /// and a rollback by itself when anything fails.
    Migrate(migrate::MigrateArgs),
    /// A migrations folder's state: applied, pending, and changed since applied (drift).
    Migrations(migrate::MigrationsArgs),
    /// Rehearse SQL migrations in a transaction that is rolled back: per statement its rows, rewrites,
    /// locks, time and the data it would lose.
    #[command(name = "dry-run")]
    DryRun(dryrun::DryRunArgs),
    /// Show what an archive holds: format, server, tables, parts, chunks and checksums.
    Inspect(inspect::InspectArgs),
    /// Try it: a throwaway cluster, sample data, dump, verify, restore, compare, next to pg_dump.
    Demo(demo::DemoArgs),
    /// A throwaway PostgreSQL cluster in a folder, for scripts: `start` prints how to connect, `stop` removes it.
    Cluster(cluster::ClusterArgs),
}

/// Parses the command line, runs the command, and returns its exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    output::init_logging(cli.verbose);
    let outcome = match cli.command {
        Command::Dump(args) => dump::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Restore(args) => restore::run(args),
        Command::Snapshot(args) => store::snapshot(args),
        Command::Snapshots(args) => store::snapshots(args),
        Command::Prune(args) => store::prune(args),
        Command::Rollback(args) => rollback::run(args),
        Command::Status(args) => status::run(args),
        Command::Check(args) => check::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Migrate(args) => migrate::run(args),
        Command::Migrations(args) => migrate::list(args),
        Command::DryRun(args) => dryrun::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Cluster(args) => cluster::run(args),
    };
    output::finish(outcome)
}

/// A path argument where `-` means standard input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathOrStdio {
    Stdio,
    Path(PathBuf),
}

impl From<&std::ffi::OsStr> for PathOrStdio {
    fn from(s: &std::ffi::OsStr) -> Self {
        if s == "-" { PathOrStdio::Stdio } else { PathOrStdio::Path(PathBuf::from(s)) }
    }
}

/// An archive argument: a file, `-` for standard input or output, or an `s3://bucket/key` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveArg {
    Stdio,
    Path(PathBuf),
    Object(pgsafe::archive::ObjectLocation),
}

impl ArchiveArg {
    pub fn parse(s: &std::ffi::OsStr) -> Result<Self, pgsafe::Error> {
        if let Some(location) = s.to_str().map(pgsafe::archive::ObjectLocation::parse).transpose()?.flatten() {
            return Ok(ArchiveArg::Object(location));
        }
        Ok(match PathOrStdio::from(s) {
            PathOrStdio::Stdio => ArchiveArg::Stdio,
            PathOrStdio::Path(p) => ArchiveArg::Path(p),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
