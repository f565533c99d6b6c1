//! `pgsafe verify FILE`.

use clap::Args;
use pgsafe::Error;
use pgsafe::verify::{VerifyReport, verify_file_with_keys, verify_object_with_keys, verify_stream_with_keys};

use super::ArchiveArg;
use super::common::default_jobs;
use super::keys::IdentityArgs;
use super::output::{self, Exit, bytes};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The archive: a file, `s3://bucket/key`, or `-` to read it from standard input.
    #[arg(value_name = "FILE")]
    file: std::ffi::OsString,

    /// Threads checking parts in parallel. Default: the machine's cores.
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// Print nothing when the archive is sound (the exit code says it); damage is still listed.
    #[arg(short = 'q', long = "quiet", conflicts_with = "json")]
    quiet: bool,

    #[command(flatten)]
    identity: IdentityArgs,
}

pub fn run(args: VerifyArgs) -> Result<Exit, Error> {
    super::common::stop_at_signal("verify");
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    let keyring = args.identity.keyring()?;
    let report = match ArchiveArg::parse(args.file.as_os_str())? {
        ArchiveArg::Path(path) => verify_file_with_keys(&path, jobs, &keyring)?,
        ArchiveArg::Object(location) => verify_object_with_keys(&location, jobs, &keyring)?,
        ArchiveArg::Stdio => verify_stream_with_keys("standard input", std::io::stdin().lock(), keyring)?,
    };
    if args.json {
        output::stdout(&(serde_json::to_string_pretty(&report).expect("the report serializes") + "\n"))?;
    } else if !(args.quiet && report.is_sound()) {
        output::stdout(&render(&report))?;
    }
    Ok(if report.is_sound() { Exit::Success } else { Exit::CheckFailed })
}

fn render(r: &VerifyReport) -> String {
    if r.is_sound() {
        return format!(
            "sound: {} parts, {} chunks, {} rows, {} of COPY data: every checksum, row count and digest matches\n",
            r.parts,
            r.chunks,
            r.rows,
            bytes(r.raw_bytes)
        );
    }
    let mut s = format!("`{}` is damaged: {} problem(s)\n", r.source, r.problems.len());
    for p in &r.problems {
        s.push_str(&format!("  {p}\n"));
    }
    s
}
