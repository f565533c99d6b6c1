//! `pgsafe cluster start DIR` and `pgsafe cluster stop DIR`: the throwaway cluster `pgsafe demo` and the
//! integration tests run in (`pgsafe::cluster`), for scripts (the fidelity and cross-version suites, the
//! benchmark) and for trying things by hand.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use pgsafe::Error;
use pgsafe::cluster::{Cluster, ClusterOptions, Lifetime};

use super::output::{self, Exit};

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Make and start a cluster in DIR and print its connection settings as `sh` assignments (for `eval`).
    Start(StartArgs),
    /// Stop the cluster in DIR and remove DIR.
    Stop(StopArgs),
}

#[derive(Debug, Args)]
struct StartArgs {
    /// The cluster's folder: made if missing, refused unless empty, removed when the cluster stops.
    #[arg(value_name = "DIR")]
    dir: PathBuf,

    /// The folder of `initdb`, `pg_ctl` and `postgres`. Default: `PGSAFE_PG_BIN`, `pg_config --bindir`,
    /// the newest `/usr/lib/postgresql/*/bin`, then `PATH`.
    #[arg(long, value_name = "DIR")]
    bin: Option<PathBuf>,

    /// A server setting, such as `shared_buffers=1GB` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_setting)]
    settings: Vec<(String, String)>,

    /// Stop the cluster when the process PID ends. Default: the process that runs this command (the
    /// shell or script; for `eval "$(pgsafe cluster start DIR ...)"`, the shell that reads the output).
    #[arg(long, value_name = "PID", conflicts_with = "keep")]
    stop_with: Option<u32>,

    /// Keep the cluster until `pgsafe cluster stop DIR`, whatever else ends.
    #[arg(long)]
    keep: bool,

    /// Print the connection settings as JSON instead.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StopArgs {
    /// The folder `pgsafe cluster start` made the cluster in.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

pub fn run(args: ClusterArgs) -> Result<Exit, Error> {
    match args.command {
        ClusterCommand::Start(args) => start(args),
        ClusterCommand::Stop(args) => {
            pgsafe::cluster::stop(&args.dir)?;
            eprintln!("stopped the cluster in `{}` and removed the folder", args.dir.display());
            Ok(Exit::Success)
        }
    }
}

/// The process the cluster lives as long as: the one that runs this command, or, when that is a subshell
/// (a copy of its parent shell, forked without a new program) that ends once pgsafe has printed, the shell
/// above it that reads pgsafe's output. `eval "$(pgsafe cluster start DIR 2>/dev/null)"` runs pgsafe in
/// such a subshell; the cluster must outlive it, not stop with it. Only subshells are passed through, so
/// a harness that captures a script's output (a test runner, a CI agent) is never taken for the script.
fn shell_of_this_command() -> u32 {
    let parent = std::os::unix::process::parent_id();
    let Some(pipe) = std::fs::read_link("/proc/self/fd/1")
        .ok()
        .and_then(|l| l.to_str().filter(|l| l.starts_with("pipe:[")).map(str::to_owned))
    else {
        return parent;
    };
    let mut pid = parent;
    for _ in 0..4 {
        if reads_pipe(pid, &pipe) {
            return pid;
        }
        match parent_of(pid) {
            Some(up) if up > 1 && forked_copy(pid, up) => pid = up,
            _ => break,
        }
    }
    parent
}

/// Whether process `pid` holds `pipe` (`pipe:[INODE]`) open for reading.
fn reads_pipe(pid: u32, pipe: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|l| l.to_str() == Some(pipe))
            && std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy()))
                .ok()
                .and_then(|info| {
                    let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?.trim().to_owned();
                    u32::from_str_radix(&flags, 8).ok()
                })
                // O_ACCMODE: the read end is opened O_RDONLY (0).
                .is_some_and(|flags| flags & 0o3 == 0)
    })
}

/// The parent of process `pid`, from `/proc/PID/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's name in parentheses (which may hold spaces and parentheses): state, then the parent.
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` is a copy of its parent `up` forked without running another program (a subshell): the
/// same program and the same command line.
fn forked_copy(pid: u32, up: u32) -> bool {
    let exe = |p: u32| std::fs::read_link(format!("/proc/{p}/exe")).ok();
    let cmdline = |p: u32| std::fs::read(format!("/proc/{p}/cmdline")).ok();
    exe(pid).is_some() && exe(pid) == exe(up) && cmdline(pid).is_some() && cmdline(pid) == cmdline(up)
}

fn start(args: StartArgs) -> Result<Exit, Error> {
    let watched = args.stop_with.unwrap_or_else(shell_of_this_command);
    let lifetime = if args.keep { Lifetime::UntilStopped } else { Lifetime::UntilProcessEnds(watched) };
    let cluster = Cluster::start(&ClusterOptions {
        bin: args.bin,
        dir: Some(args.dir),
        settings: args.settings,
        lifetime,
        ..ClusterOptions::default()
    })?;
    let dir = cluster.dir().display().to_string();
    let bin = cluster.bin().display().to_string();
    let dbname = "postgres";
    let text = if args.json {
        let json = serde_json::json!({
            "dir": dir,
            "bin": bin,
            "version": cluster.version(),
            "host": dir,
            "port": cluster.port(),
            "user": cluster.user(),
            "dbname": dbname,
            "url": cluster.url(dbname),
            "conninfo": cluster.conninfo(dbname),
        });
        format!("{json:#}\n")
    } else {
        let mut text = String::new();
        for (name, value) in [
            ("PGHOST", dir.clone()),
            ("PGPORT", cluster.port().to_string()),
            ("PGUSER", cluster.user().to_owned()),
            ("PGDATABASE", dbname.to_owned()),
            ("DATABASE_URL", cluster.url(dbname)),
        ] {
            text.push_str(&format!("export {name}={}\n", pgsafe::cluster::sh_word(&value)));
        }
        // Either would send libpq elsewhere than the socket.
        text.push_str("unset PGHOSTADDR PGSERVICE\n");
        text.push_str(&format!("export PGSAFE_CLUSTER_DIR={}\n", pgsafe::cluster::sh_word(&dir)));
        text.push_str(&format!("export PGSAFE_CLUSTER_BIN={}\n", pgsafe::cluster::sh_word(&bin)));
        text
    };
    let until = if args.keep { String::new() } else { format!(" when process {watched} ends, or") };
    eprintln!(
        "started {} in `{dir}` on port {}; it stops{until} with `pgsafe cluster stop {dir}`",
        cluster.version(),
        cluster.port()
    );
    // Printed before it is left running, so that a failed write stops it again.
    output::stdout(&text).inspect_err(|_| drop(pgsafe::cluster::stop(cluster.dir())))?;
    cluster.detach();
    Ok(Exit::Success)
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_owned(), value.to_owned())),
        _ => Err(format!("`{s}` is not `NAME=VALUE`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_shell_words_parse_and_quote() {
        assert_eq!(parse_setting("work_mem=64MB"), Ok(("work_mem".to_owned(), "64MB".to_owned())));
        assert_eq!(parse_setting("search_path=a,b=c"), Ok(("search_path".to_owned(), "a,b=c".to_owned())));
        assert!(parse_setting("=x").is_err() && parse_setting("work_mem").is_err());
        assert_eq!(pgsafe::cluster::sh_word("/tmp/x-1"), "/tmp/x-1");
        assert_eq!(pgsafe::cluster::sh_word("it's here"), r"'it'\''s here'");
    }
}
