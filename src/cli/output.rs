//! How the binary speaks: `error:` / `caused by:` / `hint:` on stderr, exit codes, sizes, logging.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use pgsafe::{Error, ErrorKind};

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked.
    Success = 0,
    /// A check ran and failed cleanly (verify mismatch, lint findings, unhealthy, rolled back).
    CheckFailed = 1,
    /// An operational error: bad input, corrupt archive, connection, I/O.
    Error = 2,
    /// A rollback failed part way and the database needs attention (the message says its state).
    NeedsAttention = 3,
}

/// Renders an outcome and returns its exit code. A closed stdout (a pipe into `head`) is not an error.
pub fn finish(outcome: Result<Exit, Error>) -> ExitCode {
    match outcome {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            print_error(&e);
            let code = match e.kind() {
                ErrorKind::CheckFailed => Exit::CheckFailed,
                ErrorKind::NeedsAttention => Exit::NeedsAttention,
                _ => Exit::Error,
            };
            ExitCode::from(code as u8)
        }
    }
}

fn is_broken_pipe(e: &Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return io.kind() == io::ErrorKind::BrokenPipe;
        }
        source = s.source();
    }
    false
}

/// `error: ...`, one `caused by: ...` per cause, then a blank line and `hint: ...`.
pub fn print_error(e: &Error) {
    let color = use_color();
    let mut out = String::new();
    out.push_str(&paint(color, "1;31", "error"));
    out.push_str(&format!(": {e}\n"));
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(&format!("  {}: {s}\n", paint(color, "1", "caused by")));
        source = s.source();
    }
    if let Some(hint) = e.hint() {
        out.push('\n');
        for line in hint.lines() {
            out.push_str(&format!("{}: {line}\n", paint(color, "1;36", "hint")));
        }
    }
    let _ = io::stderr().write_all(out.as_bytes());
}

fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && io::stderr().is_terminal()
}

fn paint(color: bool, code: &str, text: &str) -> String {
    if color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
}

/// Logs through `tracing` to stderr; `-v` info, `-vv` debug; `RUST_LOG` overrides.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // A warning that cannot be written (stderr a pipe whose reader went away) is dropped: the subscriber's
    // own report of it would go through std's `eprintln!`, which panics there.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(use_color())
        .log_internal_errors(false)
        .init();
}

/// `1.5 MiB`-style sizes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// Rows as columns, each as wide as its widest cell, two spaces apart, no trailing blanks.
pub fn columns(rows: &[Vec<String>]) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Writes a report to stdout.
pub fn stdout(text: &str) -> Result<(), Error> {
    io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Error::new(ErrorKind::Io, "writing to standard output").with_source(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn columns_line_up_under_their_widest_cell() {
        let rows = vec![vec!["ID".into(), "AGE".into(), "X".into()], vec!["shop-1".into(), "5s".into(), "".into()]];
        assert_eq!(columns(&rows), "ID      AGE  X\nshop-1  5s\n");
    }
}
