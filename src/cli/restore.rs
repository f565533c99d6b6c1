//! `pgsafe restore FILE`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use pgsafe::archive::ArchiveReader;
use pgsafe::restore::{RestoreOptions, RestoreReport, VerifyLevel};
use pgsafe::{Error, ErrorKind};

use super::common::{ConnectArgs, FilterArgs, block_on, default_jobs, progress};
use super::output::{self, Exit};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum VerifyArg {
    Full,
    Count,
    None,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    filters: FilterArgs,

    /// Parallel workers (connections). Default: the machine's cores.
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,

    /// Load only the data, into tables that already exist.
    #[arg(short = 'a', long = "data-only")]
    data_only: bool,

    /// Empty the archive's tables (and remove its large objects) in the target before loading.
    #[arg(short = 'c', long)]
    clean: bool,

    /// All or nothing: one transaction, verification included (one worker).
    #[arg(short = '1', long = "single-transaction")]
    single_transaction: bool,

    /// What to check after loading: row counts and content digests (full), row counts only, or nothing.
    #[arg(long, value_enum, default_value = "full")]
    verify: VerifyArg,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// No progress output.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: RestoreArgs) -> Result<Exit, Error> {
    if !args.data_only {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "restoring the schema is not implemented yet: this pgsafe restores data into existing tables",
        )
        .with_hint("pass `--data-only` to load the archive's rows into tables that already exist"));
    }
    if args.file.as_os_str() == "-" {
        return Err(Error::new(ErrorKind::InvalidInput, "`pgsafe restore` cannot read from standard input yet")
            .with_hint("save the archive to a file first; `pgsafe verify -` and `pgsafe inspect -` do read pipes"));
    }
    let archive = Arc::new(ArchiveReader::open(&args.file)?);
    let options = RestoreOptions {
        connect: args.connect.options()?,
        jobs: if args.single_transaction { 1 } else { args.jobs.unwrap_or_else(default_jobs).max(1) },
        filters: args.filters.filters(&[])?,
        single_transaction: args.single_transaction,
        verify: match args.verify {
            VerifyArg::Full => VerifyLevel::Full,
            VerifyArg::Count => VerifyLevel::Count,
            VerifyArg::None => VerifyLevel::None,
        },
        clean: args.clean,
    };
    let report = block_on("restore", pgsafe::restore::restore_data(archive, &options, progress(args.quiet)))?;
    if args.json {
        output::stdout(&(serde_json::to_string_pretty(&report).expect("the report serializes") + "\n"))?;
    } else if !args.quiet || !report.problems.is_empty() {
        eprint!("{}", summary(&report));
    }
    Ok(if report.problems.is_empty() { Exit::Success } else { Exit::CheckFailed })
}

fn summary(r: &RestoreReport) -> String {
    let mut s = format!(
        "restored {} tables ({} parts), {} rows, {} sequences, {} large objects into `{}` in {:.1}s\n",
        r.tables, r.parts, r.rows, r.sequences, r.large_objects, r.target, r.seconds
    );
    match (r.verify, r.problems.is_empty()) {
        (VerifyLevel::None, true) => s.push_str("not verified (`--verify none`); foreign keys hold\n"),
        (_, true) => s.push_str(&format!(
            "verified {} tables ({}): what landed is what was dumped; foreign keys hold\n",
            r.tables_verified,
            if r.verify == VerifyLevel::Full { "row counts and content digests" } else { "row counts" }
        )),
        (_, false) => {
            s.push_str(&format!("verification failed: {} problem(s)\n", r.problems.len()));
            for p in &r.problems {
                s.push_str(&format!("  {p}\n"));
            }
            if r.rolled_back {
                s.push_str("the transaction rolled back: nothing was restored\n");
            }
        }
    }
    s
}
