//! `pgsafe inspect FILE`.

use std::fmt::Write as _;

use clap::Args;
use pgsafe::Error;
use pgsafe::format::describe_kinds;
use pgsafe::inspect::{InspectReport, inspect_file_with_keys, inspect_object_with_keys, inspect_stream_with_keys};

use super::ArchiveArg;
use super::keys::IdentityArgs;
use super::output::{self, Exit, bytes};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The archive: a file, `s3://bucket/key`, or `-` to read it from standard input.
    #[arg(value_name = "FILE")]
    file: std::ffi::OsString,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// List every chunk of every part (offset, sizes, rows, CRC-32).
    #[arg(long)]
    chunks: bool,

    #[command(flatten)]
    identity: IdentityArgs,
}

pub fn run(args: InspectArgs) -> Result<Exit, Error> {
    super::common::stop_at_signal("inspect");
    let keyring = args.identity.keyring()?;
    let report = match ArchiveArg::parse(args.file.as_os_str())? {
        ArchiveArg::Path(path) => inspect_file_with_keys(&path, &keyring)?,
        ArchiveArg::Object(location) => inspect_object_with_keys(&location, &keyring)?,
        ArchiveArg::Stdio => inspect_stream_with_keys("standard input", std::io::stdin().lock(), keyring)?,
    };
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&report).expect("the report serializes");
        s.push('\n');
        s
    } else {
        render(&report, args.chunks)
    };
    output::stdout(&text)?;
    Ok(Exit::Success)
}

fn render(r: &InspectReport, chunks: bool) -> String {
    let mut s = String::new();
    let t = &r.totals;
    let ratio = if t.raw_bytes > 0 { t.stored_bytes as f64 / t.raw_bytes as f64 } else { 1.0 };
    let _ = writeln!(s, "archive   {} ({})", r.source, bytes(r.bytes));
    let _ = writeln!(s, "format    {}, id {}", r.format_version, r.archive_id);
    if !r.encrypted_to.is_empty() {
        let _ = writeln!(s, "encrypted to {}", describe_kinds(&r.encrypted_to));
    }
    let _ = writeln!(s, "written   {} to {} by {}", r.created_at, r.finished_at, r.tool);
    let _ = writeln!(
        s,
        "server    PostgreSQL {} ({}), database `{}`, encoding {}, integer_datetimes {}",
        r.server.version,
        r.server.version_num,
        r.server.database,
        r.server.encoding,
        if r.server.integer_datetimes { "on" } else { "off" }
    );
    let _ = writeln!(
        s,
        "holds     {} tables, {} parts, {} chunks, {} rows; {} of COPY data stored in {} ({:.2})",
        t.tables,
        t.parts,
        t.chunks,
        t.rows,
        bytes(t.raw_bytes),
        bytes(t.stored_bytes),
        ratio
    );
    match r.schema_objects {
        Some(n) => {
            let _ = writeln!(
                s,
                "schema    {n} objects (`pgsafe restore --list` lists them), {} sequence values",
                r.sequences.len()
            );
        }
        None => {
            let _ = writeln!(s, "schema    none (dumped with --data-only), {} sequence values", r.sequences.len());
        }
    }
    let _ = writeln!(s, "checked   every frame's CRC-32 and the manifest's BLAKE3");

    if !r.tables.is_empty() {
        let _ = writeln!(s, "\n{:<40} {:>12} {:>5} {:>10} {:>10}  DIGEST", "TABLE", "ROWS", "PARTS", "RAW", "STORED");
        for tr in &r.tables {
            let _ = writeln!(
                s,
                "{:<40} {:>12} {:>5} {:>10} {:>10}  {}",
                tr.table,
                tr.rows,
                tr.parts,
                bytes(tr.raw_bytes),
                bytes(tr.stored_bytes),
                tr.digest
            );
        }
    }
    if !r.sequences.is_empty() {
        let _ = writeln!(s, "\n{:<40} {:>20}  CALLED", "SEQUENCE", "LAST VALUE");
        for q in &r.sequences {
            let _ = writeln!(s, "{:<40} {:>20}  {}", q.name.to_string(), q.last_value, q.is_called);
        }
    }
    if !r.parts.is_empty() {
        let _ = writeln!(
            s,
            "\n{:>5} {:<32} {:<6} {:>12} {:>6} {:>10} {:>10}  BLAKE3",
            "PART", "TABLE", "FORMAT", "ROWS", "CHUNKS", "RAW", "STORED"
        );
        for p in &r.parts {
            let mut table = p.table.clone();
            if let Some(pages) = p.pages {
                let end = pages.end.map(|e| e.to_string()).unwrap_or_default();
                let _ = write!(table, " [pages {}..{end}]", pages.start);
            }
            let _ = writeln!(
                s,
                "{:>5} {:<32} {:<6} {:>12} {:>6} {:>10} {:>10}  {}",
                p.id,
                table,
                format!("{:?}", p.format).to_lowercase(),
                p.rows,
                p.chunks.len(),
                bytes(p.raw_bytes),
                bytes(p.stored_bytes),
                p.blake3
            );
            if chunks {
                for c in &p.chunks {
                    let _ = writeln!(
                        s,
                        "        chunk {:>5} at {:>12}: {:>9} stored, {:>9} decoded, {:>8} rows, crc32 {:08x}",
                        c.seq, c.offset, c.stored_len, c.raw_len, c.rows, c.crc32
                    );
                }
            }
        }
    }
    s
}
