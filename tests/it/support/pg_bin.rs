//! Finding the folder that holds the PostgreSQL programs (`initdb`, `pg_ctl`, `psql`, ...).
//!
//! The search order is the one DESIGN.md §10 promises: `PGSAFE_PG_BIN`, `pg_config --bindir`,
//! the newest `/usr/lib/postgresql/<version>/bin`, then `PATH`. A folder counts only when it holds
//! every program the caller needs, so a client-only `pg_config` does not hide a full installation
//! further down the list.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming a PostgreSQL bin folder, which wins over every other place.
pub const PG_BIN_ENV: &str = "PGSAFE_PG_BIN";

/// Where Debian and Ubuntu install each PostgreSQL major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// Finds the first bin folder that holds all of `programs`.
///
/// The error lists every place searched and what was wrong with it, ready to be a panic message.
pub fn find(programs: &[&str]) -> Result<PathBuf, String> {
    let mut searched = String::new();

    if let Some(dir) = std::env::var_os(PG_BIN_ENV).filter(|v| !v.is_empty()) {
        // An explicit choice must not be silently skipped for something else.
        let dir = PathBuf::from(dir);
        return match missing(&dir, programs) {
            None => Ok(dir),
            Some(program) => Err(format!(
                "env `{PG_BIN_ENV}` is `{}`, but that folder has no `{program}` \
                 (the tests need {})",
                dir.display(),
                list(programs)
            )),
        };
    }
    let _ = writeln!(searched, "  - env `{PG_BIN_ENV}`: not set");

    match Command::new("pg_config").arg("--bindir").output() {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            match missing(&dir, programs) {
                None => return Ok(dir),
                Some(program) => {
                    let _ = writeln!(searched, "  - `pg_config --bindir`: `{}` has no `{program}`", dir.display());
                }
            }
        }
        Ok(out) => {
            let _ = writeln!(searched, "  - `pg_config --bindir`: failed ({})", out.status);
        }
        Err(e) => {
            let _ = writeln!(searched, "  - `pg_config --bindir`: could not run it ({e})");
        }
    }

    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(DEBIAN_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = parse_version(&entry.file_name())?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    if let Some((_, dir)) = versions.iter().find(|(_, dir)| missing(dir, programs).is_none()) {
        return Ok(dir.clone());
    }
    let _ = writeln!(
        searched,
        "  - `{DEBIAN_ROOT}/*/bin`: {}",
        if versions.is_empty() {
            "no version folders".to_owned()
        } else {
            format!("no folder with all of {}", list(programs))
        }
    );

    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let Ok(first) = dir.join(programs[0]).canonicalize() else {
            continue;
        };
        // `/usr/local/bin/initdb` is often a link into the real bin folder, which also holds the
        // programs that were never linked (psql, pg_dump); prefer that folder.
        let real_dir = first.parent().map(Path::to_path_buf);
        for candidate in real_dir.into_iter().chain([dir.clone()]) {
            if missing(&candidate, programs).is_none() {
                return Ok(candidate);
            }
        }
    }
    let _ = writeln!(searched, "  - `PATH`: no folder with all of {}", list(programs));

    Err(format!(
        "no PostgreSQL programs found (the tests need {}); searched:\n{searched}\
         hint: set `{PG_BIN_ENV}` to a PostgreSQL bin folder, \
         or `PGSAFE_TEST_DATABASE_URL` to a running server",
        list(programs)
    ))
}

/// The first of `programs` that `dir` lacks, if any.
fn missing<'a>(dir: &Path, programs: &[&'a str]) -> Option<&'a str> {
    programs.iter().copied().find(|p| !dir.join(p).is_file())
}

/// `15` or `9.6` as comparable numbers; `None` for anything else in the folder.
fn parse_version(name: &OsStr) -> Option<Vec<u32>> {
    name.to_str()?.split('.').map(|part| part.parse().ok()).collect()
}

fn list(programs: &[&str]) -> String {
    programs.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
}
