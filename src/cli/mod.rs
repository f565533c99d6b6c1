//! Command-line parsing (clap stays in this module) and dispatch to the library.

mod inspect;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A native PostgreSQL logical backup engine with a migration-safety workflow.
#[derive(Debug, Parser)]
#[command(name = "pgsafe", version, about, propagate_version = true)]
struct Cli {
    /// More log output on stderr (`-v` info, `-vv` debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what an archive holds: format, server, tables, parts, chunks and checksums.
    Inspect(inspect::InspectArgs),
}

/// Parses the command line, runs the command, and returns its exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    output::init_logging(cli.verbose);
    let outcome = match cli.command {
        Command::Inspect(args) => inspect::run(args),
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
        if s == "-" {
            PathOrStdio::Stdio
        } else {
            PathOrStdio::Path(PathBuf::from(s))
        }
    }
}
