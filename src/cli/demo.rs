//! `pgsafe demo`: the quick start. Starts a throwaway cluster, loads a sample shop, dumps it, verifies
//! the archive, restores it into a new database, compares the copy with the source, and times the same
//! round trip with pg_dump and pg_restore when they are installed. Everything goes away at the end.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use pgsafe::archive::{ArchiveReader, ArchiveTarget};
use pgsafe::catalog::Filters;
use pgsafe::cluster::{Cluster, ClusterOptions};
use pgsafe::dump::{DEFAULT_CHUNK_BYTES, DumpContent, DumpOptions};
use pgsafe::format::Compression;
use pgsafe::pg::Session;
use pgsafe::restore::{RestoreOptions, VerifyLevel};
use pgsafe::{Error, ErrorKind};

use super::common::{block_on, progress};
use super::output::{Exit, bytes};

/// The most order rows the sample data is written for (demo.sql keeps every value in range up to here):
/// far more than any machine holds, and an honest refusal past it.
const MAX_ROWS: u64 = 1_000_000_000_000_000;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Order rows in the sample database (customers are a tenth of it).
    #[arg(long, value_name = "N", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(..=MAX_ROWS))]
    rows: u64,

    /// Parallel workers for pgsafe and for pg_dump/pg_restore.
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 2)]
    jobs: usize,
}

pub fn run(args: DemoArgs) -> Result<Exit, Error> {
    let step = |s: &str| eprintln!("==> {s}");
    step("starting a throwaway PostgreSQL cluster from the installed server binaries");
    let cluster = Cluster::start(&ClusterOptions::default())?;
    eprintln!("    {} in {}, port {}", cluster.version(), cluster.dir().display(), cluster.port());
    let admin = cluster.connect("postgres")?;

    step(&format!("loading the sample shop ({} order rows) into database `demo`", args.rows));
    let sql = include_str!("demo.sql").replace("ORDERS", &args.rows.to_string());
    block_on("demo", async {
        let s = Session::open(&admin, None).await?;
        s.batch("CREATE DATABASE demo").await?;
        let demo = Session::open(&cluster.connect("demo")?, None).await?;
        demo.batch(&sql).await
    })?;

    let archive = cluster.dir().join("demo.pgsafe");
    step(&format!("pgsafe dump -j {} -d demo -f {}", args.jobs, archive.display()));
    let dump_options = DumpOptions {
        connect: cluster.connect("demo")?,
        jobs: args.jobs,
        filters: Filters::default(),
        compression: Compression::Zstd { level: 1 },
        encrypt_to: Default::default(),
        chunk_bytes: DEFAULT_CHUNK_BYTES,
        part_bytes: None,
        large_objects: None,
        lock_wait: None,
        content: DumpContent::Both,
        exported_snapshot: None,
        cancel: Default::default(),
    };
    let started = Instant::now();
    let dumped =
        block_on("dump", pgsafe::dump::dump(&dump_options, ArchiveTarget::File(archive.clone()), progress(true)))?;
    let dump_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "    {} schema objects, {} tables, {} rows; archive {} in {dump_seconds:.1}s",
        dumped.schema_objects,
        dumped.tables,
        dumped.rows,
        bytes(dumped.archive_bytes)
    );

    step(&format!("pgsafe verify {}", archive.display()));
    let verified = pgsafe::verify::verify_file(&archive, args.jobs)?;
    if !verified.is_sound() {
        return Err(Error::new(ErrorKind::CheckFailed, "the demo's archive did not verify"));
    }
    eprintln!("    sound: every checksum, row count and content digest matches the manifest");

    step("pgsafe restore into a new database `demo_copy` (with verification)");
    block_on("demo", async { Session::open(&admin, None).await?.batch("CREATE DATABASE demo_copy").await })?;
    let restore_options = RestoreOptions {
        connect: cluster.connect("demo_copy")?,
        jobs: args.jobs,
        filters: Filters::default(),
        single_transaction: false,
        verify: VerifyLevel::Full,
        clean: false,
        data_only: false,
        schema_only: false,
        leave_out: Default::default(),
        use_list: None,
        drop_also: Vec::new(),
        role: None,
        create_roles: false,
        create: None,
        cancel: Default::default(),
    };
    let started = Instant::now();
    let reader = Arc::new(ArchiveReader::open(&archive)?);
    let restored = block_on("restore", pgsafe::restore::restore(reader, &restore_options, progress(true)))?;
    let restore_seconds = started.elapsed().as_secs_f64();
    if !restored.problems.is_empty() {
        return Err(Error::new(ErrorKind::CheckFailed, format!("the restore found problems: {:?}", restored.problems)));
    }
    eprintln!(
        "    {} schema objects, {} rows in {restore_seconds:.1}s; verified {} tables: what landed is what was dumped",
        restored.schema_objects, restored.rows, restored.tables_verified
    );

    let pg_dump = cluster.tool("pg_dump");
    let pg_restore = cluster.tool("pg_restore");
    let mut table = vec![("pgsafe dump".to_string(), dump_seconds, Some(dumped.archive_bytes))];
    table.push(("pgsafe restore (verified)".to_string(), restore_seconds, None));
    match (&pg_dump, &pg_restore) {
        (Some(pg_dump), Some(pg_restore)) => {
            step("comparing `pg_dump --schema-only` of `demo` and `demo_copy`");
            let source = schema_text(pg_dump, &cluster, "demo")?;
            let copy = schema_text(pg_dump, &cluster, "demo_copy")?;
            if source != copy {
                let differing = source.lines().filter(|l| !copy.lines().any(|c| c == *l)).count();
                return Err(Error::new(
                    ErrorKind::CheckFailed,
                    format!(
                        "the copy's schema differs: {differing} lines of `demo`'s `pg_dump --schema-only` are not in `demo_copy`'s"
                    ),
                ));
            }
            eprintln!("    identical ({} lines)", source.lines().count());

            step(&format!("the same round trip with pg_dump -Fd -j {0} and pg_restore -j {0}", args.jobs));
            let out = cluster.dir().join("demo.pg_dump");
            let started = Instant::now();
            tool(
                Command::new(pg_dump)
                    .args(["-Fd", "-j", &args.jobs.to_string(), "-f"])
                    .arg(&out)
                    .args(client(&cluster, "demo")),
                "pg_dump",
            )?;
            let pg_dump_seconds = started.elapsed().as_secs_f64();
            block_on("demo", async {
                Session::open(&admin, None).await?.batch("CREATE DATABASE demo_pg_restore").await
            })?;
            let started = Instant::now();
            tool(
                Command::new(pg_restore)
                    .args(["-j", &args.jobs.to_string()])
                    .args(client(&cluster, "demo_pg_restore"))
                    .arg(&out),
                "pg_restore",
            )?;
            let pg_restore_seconds = started.elapsed().as_secs_f64();
            table.push(("pg_dump -Fd".to_string(), pg_dump_seconds, Some(folder_bytes(&out))));
            table.push(("pg_restore (not verified)".to_string(), pg_restore_seconds, None));
        }
        _ => step("pg_dump and pg_restore are not installed next to the server: no timings to compare with"),
    }

    eprintln!("\n{:<28} {:>9} {:>12}", "", "seconds", "archive");
    for (what, seconds, size) in &table {
        eprintln!("{what:<28} {seconds:>9.2} {:>12}", size.map(bytes).unwrap_or_default());
    }
    eprintln!("\n(one run on this machine; `benches/compare.py` measures properly, with repeats)");
    step("stopping the cluster and removing its folder");
    drop(cluster);
    Ok(Exit::Success)
}

/// libpq-style arguments for the cluster's database `db`.
fn client(cluster: &Cluster, db: &str) -> Vec<String> {
    vec![
        "-h".into(),
        cluster.dir().display().to_string(),
        "-p".into(),
        cluster.port().to_string(),
        "-U".into(),
        cluster.user().into(),
        "-d".into(),
        db.into(),
    ]
}

fn tool(command: &mut Command, what: &str) -> Result<(), Error> {
    let out = command.output().map_err(|e| Error::new(ErrorKind::Io, format!("cannot run `{what}`")).with_source(e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::Io, format!("`{what}` failed: {}", String::from_utf8_lossy(&out.stderr).trim())))
    }
}

/// `pg_dump --schema-only` without the random `\restrict` lines of newer pg_dump releases.
fn schema_text(pg_dump: &Path, cluster: &Cluster, db: &str) -> Result<String, Error> {
    let out = Command::new(pg_dump)
        .arg("--schema-only")
        .args(client(cluster, db))
        .output()
        .map_err(|e| Error::new(ErrorKind::Io, "cannot run `pg_dump`").with_source(e))?;
    // An empty schema from a failed pg_dump would compare equal to another.
    if !out.status.success() {
        return Err(Error::new(
            ErrorKind::Io,
            format!("`pg_dump --schema-only` of `{db}` failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).into_iter().flatten().flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()
}
