//! `pgsafe dump`.

use std::time::Instant;

use clap::Args;
use jiff::Timestamp;
use pgsafe::archive::ArchiveTarget;
use pgsafe::cancel::Cancel;
use pgsafe::catalog::{Filters, NamePattern};
use pgsafe::dump::{DumpContent, DumpOptions, DumpReport};
use pgsafe::format::Compression;
use pgsafe::store::{AuditCommand, AuditEntry, Outcome};
use pgsafe::{Error, ErrorKind};

use super::ArchiveArg;
use super::common::{ConnectArgs, FilterArgs, block_on_cancellable, default_jobs, progress};
use super::keys::EncryptArgs;
use super::output::{self, Exit, bytes};
use super::store::{AuditArgs, absolute};

#[derive(Debug, Args)]
pub struct DumpArgs {
    #[command(flatten)]
    engine: DumpEngineArgs,

    #[command(flatten)]
    encrypt: EncryptArgs,

    /// The archive to write, or `-` for standard output. Written as FILE.partial and renamed when complete (a
    /// device or a pipe, such as `/dev/null`, is written in place). `s3://bucket/key` uploads it in parts;
    /// the object appears only once the archive is complete.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<String>,

    #[command(flatten)]
    audit: AuditArgs,

    /// Print the plan (parts, their COPY statements, biggest first) and dump nothing.
    #[arg(long)]
    dry_run: bool,

    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// No progress output.
    #[arg(short, long)]
    quiet: bool,
}

/// What the dump engine reads and how: the options `pgsafe dump` and `pgsafe snapshot` share.
#[derive(Debug, Args)]
pub struct DumpEngineArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    filters: FilterArgs,

    /// Parallel workers (connections). Default: the machine's cores.
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,

    /// `columnar[:LEVEL]` (the default, level 1) stores each chunk of a binary part as per-column streams
    /// under zstd when that is smaller than row-wise zstd (format 1.2); a zstd level, -7 (fastest) to 19,
    /// stores every chunk row-wise (format 1.0, which older pgsafe reads); 0 stores chunks uncompressed.
    #[arg(
        short = 'Z',
        long = "compress",
        value_name = "LEVEL",
        default_value = "columnar",
        allow_hyphen_values = true
    )]
    compress: String,

    /// Decoded size of a chunk in KiB: chunks end on the first row boundary past it. Default: 4096,
    /// smaller with many jobs (down to 1024), so that the workers' buffers stay within 32 MiB.
    #[arg(long = "chunk-size", value_name = "KIB")]
    chunk_kib: Option<u64>,

    /// Cut tables bigger than this many MiB into page ranges dumped in parallel (PostgreSQL 14+).
    /// Default: chosen from the database size and `-j`.
    #[arg(long = "part-size", value_name = "MIB")]
    part_mib: Option<u64>,

    /// Do not dump the rows of tables matching PATTERN (repeatable).
    #[arg(long = "exclude-table-data", value_name = "PATTERN")]
    exclude_table_data: Vec<String>,

    /// As `-t`, and every partition and inheritance child of the tables PATTERN matches, at every level
    /// (repeatable; pg_dump 16's option).
    #[arg(long = "table-and-children", value_name = "PATTERN")]
    table_and_children: Vec<String>,
    /// As `-T`, and every partition and inheritance child of the tables PATTERN matches (repeatable).
    #[arg(long = "exclude-table-and-children", value_name = "PATTERN")]
    exclude_table_and_children: Vec<String>,
    /// As `--exclude-table-data`, and for every partition and inheritance child of the tables PATTERN
    /// matches (repeatable).
    #[arg(long = "exclude-table-data-and-children", value_name = "PATTERN")]
    exclude_table_data_and_children: Vec<String>,

    /// Do not dump the rows of unlogged tables, nor the values of unlogged sequences.
    #[arg(long = "no-unlogged-table-data")]
    no_unlogged_table_data: bool,

    /// Include large objects (the default unless `-n` or `-t` narrow the dump).
    #[arg(short = 'b', long = "large-objects", overrides_with = "no_large_objects")]
    large_objects: bool,
    /// Leave large objects out.
    #[arg(short = 'B', long = "no-large-objects")]
    no_large_objects: bool,

    /// Fail instead of waiting longer than SECONDS for the tables' locks (someone holds or awaits an
    /// ACCESS EXCLUSIVE lock). Default: wait, as pg_dump does.
    #[arg(long = "lock-wait-timeout", value_name = "SECONDS")]
    lock_wait_timeout: Option<f64>,

    /// Dump in this exported snapshot (from `pg_export_snapshot()` or a replication slot) instead of a
    /// new one: the archive then shows the database exactly as that snapshot sees it.
    #[arg(long = "snapshot", value_name = "NAME")]
    snapshot: Option<String>,

    /// Dump only the schema, no rows.
    #[arg(short = 's', long = "schema-only", conflicts_with = "data_only")]
    schema_only: bool,
    /// Dump only the rows (and sequence values, large objects), no schema.
    #[arg(short = 'a', long = "data-only")]
    data_only: bool,
}

impl DumpEngineArgs {
    /// The library's options, every value checked.
    pub fn options(&self) -> Result<DumpOptions, Error> {
        let args = self;
        let compression = parse_compression(&args.compress)?;
        let objects = |ps: &[String]| ps.iter().map(|p| NamePattern::object(p)).collect::<Result<Vec<_>, Error>>();
        if args.chunk_kib.is_some_and(|k| k == 0 || k > 256 << 10) {
            return Err(Error::new(ErrorKind::InvalidInput, "`--chunk-size` must be between 1 KiB and 256 MiB"));
        }
        Ok(DumpOptions {
            connect: args.connect.options()?,
            jobs: args.jobs.unwrap_or_else(default_jobs).max(1),
            filters: Filters {
                no_unlogged_table_data: args.no_unlogged_table_data,
                include_tables_and_children: objects(&args.table_and_children)?,
                exclude_tables_and_children: objects(&args.exclude_table_and_children)?,
                exclude_table_data_and_children: objects(&args.exclude_table_data_and_children)?,
                ..args.filters.filters(&args.exclude_table_data)?
            },
            compression,
            // `pgsafe dump` sets the recipients of `--encrypt-to`; `pgsafe snapshot` writes plain archives.
            encrypt_to: Default::default(),
            chunk_bytes: args.chunk_kib.map(|k| (k << 10) as usize),
            part_bytes: args.part_mib.map(|m| m << 20),
            exported_snapshot: args.snapshot.clone(),
            cancel: Cancel::new(),
            lock_wait: match args.lock_wait_timeout {
                Some(s) if s.is_finite() && s > 0.0 => Some(std::time::Duration::from_secs_f64(s)),
                Some(s) => {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!("`--lock-wait-timeout {s}` must be a positive number of seconds"),
                    ));
                }
                None => None,
            },
            large_objects: match (args.large_objects, args.no_large_objects) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            content: match (args.schema_only, args.data_only) {
                (true, _) => DumpContent::SchemaOnly,
                (_, true) => DumpContent::DataOnly,
                _ => DumpContent::Both,
            },
        })
    }
}

pub fn run(args: DumpArgs) -> Result<Exit, Error> {
    let mut options = args.engine.options()?;
    options.encrypt_to = args.encrypt.recipients()?;
    if args.dry_run {
        let plan = block_on_cancellable("dump", &options.cancel, pgsafe::dump::plan(&options))?;
        let text = if args.json {
            serde_json::to_string_pretty(&plan).expect("the plan serializes") + "\n"
        } else {
            let mut s = format!(
                "{} parts for {} workers, about {} in {} rows{}\n",
                plan.parts.len(),
                plan.jobs,
                bytes(plan.estimated_bytes()),
                plan.estimated_rows(),
                if plan.part_bytes > 0 {
                    format!("; tables over {} cut into page ranges", bytes(plan.part_bytes))
                } else {
                    String::new()
                }
            );
            for p in &plan.parts {
                s.push_str(&format!("{:>5} {:>10}  {}\n", p.info.id, bytes(p.info.estimated_bytes), p.copy_sql));
            }
            s
        };
        output::stdout(&text)?;
        return Ok(Exit::Success);
    }
    let file = args.file.ok_or_else(|| {
        Error::new(ErrorKind::InvalidInput, "`pgsafe dump` needs `-f FILE` (or `-f -` for standard output)")
    })?;
    let (target, to_stdout) = match ArchiveArg::parse(std::ffi::OsStr::new(&file))? {
        ArchiveArg::Stdio => (ArchiveTarget::Stdout, true),
        ArchiveArg::Path(path) => {
            // Refused before the dump runs, not when its file is renamed into place at the end.
            if path.is_dir() || file.ends_with('/') {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("`{file}` is a folder: `-f` names the archive file itself"),
                )
                .with_hint(format!("for example `-f {}/backup.pgsafe`", file.trim_end_matches('/'))));
            }
            (ArchiveTarget::File(path), false)
        }
        ArchiveArg::Object(location) => (ArchiveTarget::Object(location), false),
    };
    let is_object = matches!(target, ArchiveTarget::Object(_));
    let (started_at, started) = (Timestamp::now(), Instant::now());
    let result =
        block_on_cancellable("dump", &options.cancel, pgsafe::dump::dump(&options, target, progress(args.quiet)))
            .map_err(|e| {
                // A failure after the archive was renamed into place (syncing its folder) leaves it there.
                if to_stdout || (!is_object && std::path::Path::new(&file).exists()) {
                    e
                } else {
                    e.and_hint(format!("no archive was written to `{file}`"))
                }
            });
    let mut entry =
        AuditEntry::new(AuditCommand::Dump, started_at, Outcome::of(&result), started.elapsed().as_secs_f64())
            .connected_to(&options.connect);
    entry.archive = if to_stdout {
        None
    } else if is_object {
        Some(file.clone())
    } else {
        Some(absolute(std::path::Path::new(&file)))
    };
    args.audit.record(&entry);
    let report = result?;
    if args.json {
        output::stdout(&(serde_json::to_string_pretty(&report).expect("the report serializes") + "\n"))?;
    } else {
        if !args.quiet {
            eprint!("{}", summary(&report));
        }
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(Exit::Success)
}

fn summary(r: &DumpReport) -> String {
    let ratio = if r.raw_bytes > 0 { r.stored_bytes as f64 / r.raw_bytes as f64 } else { 1.0 };
    format!(
        "dumped {} schema objects, {} tables ({} parts, {} chunks), {} rows, {} sequences, {} large objects in {:.1}s\n\
         {} of COPY data stored in {} ({:.2}); archive {} ({})\n",
        r.schema_objects,
        r.tables,
        r.parts,
        r.chunks,
        r.rows,
        r.sequences,
        r.large_objects,
        r.seconds,
        bytes(r.raw_bytes),
        bytes(r.stored_bytes),
        ratio,
        r.path.as_deref().unwrap_or("standard output"),
        bytes(r.archive_bytes)
    )
}

/// Reads `-Z`: a zstd level (0 for none), or `columnar` with an optional `:LEVEL` (default 1).
fn parse_compression(text: &str) -> Result<Compression, Error> {
    let (columnar, level) = match text.strip_prefix("columnar") {
        Some("") => (true, "1"),
        Some(rest) => match rest.strip_prefix(':') {
            Some(level) => (true, level),
            None => (false, text),
        },
        None => (false, text),
    };
    let invalid = |problem: &str| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("`--compress {text}`: {problem}; give a zstd level (0 for none) or `columnar[:LEVEL]`"),
        )
    };
    let level: i32 = level.parse().map_err(|_| invalid("not a zstd level"))?;
    if !(-7..=19).contains(&level) {
        return Err(invalid("the zstd level must be between -7 and 19"));
    }
    Ok(match (columnar, level) {
        (true, 0) => return Err(invalid("columnar needs a zstd level other than 0")),
        (true, level) => Compression::Columnar { level },
        (false, 0) => Compression::None,
        (false, level) => Compression::Zstd { level },
    })
}

#[cfg(test)]
mod compression_tests {
    use super::*;

    #[test]
    fn compress_takes_a_level_or_columnar_with_one() {
        assert_eq!(parse_compression("0").unwrap(), Compression::None);
        assert_eq!(parse_compression("-3").unwrap(), Compression::Zstd { level: -3 });
        assert_eq!(parse_compression("19").unwrap(), Compression::Zstd { level: 19 });
        assert_eq!(parse_compression("columnar").unwrap(), Compression::Columnar { level: 1 });
        assert_eq!(parse_compression("columnar:6").unwrap(), Compression::Columnar { level: 6 });
        assert_eq!(parse_compression("columnar:-1").unwrap(), Compression::Columnar { level: -1 });
        for bad in ["20", "columnar:0", "columnar6", "zstd", "columnar:x", ""] {
            let err = parse_compression(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("`--compress {bad}`: ")), "{err}");
        }
    }
}
