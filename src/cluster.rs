//! A throwaway PostgreSQL cluster made from the installed server binaries, in a folder of its own, on
//! a free port, reachable only through a Unix socket in that folder. `pgsafe demo` runs in one. It is
//! stopped and its folder removed when the [`Cluster`] is dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, ErrorKind, Result};
use crate::pg::ConnectOptions;

/// A running throwaway cluster.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Run as root: the server runs as the OS user `postgres`, as initdb refuses root.
    as_postgres: bool,
}

impl Cluster {
    /// Creates and starts a cluster from the binaries [`server_bin`] finds.
    pub fn start() -> Result<Cluster> {
        let bin = server_bin().ok_or_else(|| {
            Error::new(ErrorKind::InvalidInput, "no PostgreSQL server binaries found (`initdb`, `pg_ctl`)")
                .with_hint("install PostgreSQL, or point `PGSAFE_PG_BIN` at the folder that holds `initdb`")
        })?;
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!("pgsafe-cluster-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
        let port = free_port()?;
        let cluster = Cluster { dir, bin, port, as_postgres };
        if as_postgres {
            cluster.run(Command::new("chown").arg("postgres").arg(&cluster.dir), "chown")?;
        }
        let data = cluster.dir.join("data");
        let mut initdb = cluster.command("initdb");
        initdb.arg("-D").arg(&data).args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
        initdb.arg("--locale=C.UTF-8");
        cluster.run(&mut initdb, "initdb")?;
        let mut start = cluster.command("pg_ctl");
        start.arg("-D").arg(&data).arg("-l").arg(cluster.dir.join("server.log")).arg("-w").arg("-o").arg(format!(
            "-k {} -p {} -c listen_addresses='' -c fsync=off -c max_connections=40",
            cluster.dir.display(),
            cluster.port
        ));
        cluster.run(start.arg("start"), "pg_ctl start")?;
        Ok(cluster)
    }

    /// Connection options for database `dbname` as the superuser `postgres`.
    pub fn connect(&self, dbname: &str) -> Result<ConnectOptions> {
        let conninfo =
            format!("host={} port={} user=postgres dbname={dbname} sslmode=disable", self.dir.display(), self.port);
        ConnectOptions::new(Some(&conninfo), None, None, None)
    }

    /// The folder of the cluster; files put here are removed with it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A client program next to the server binaries (`pg_dump`, `pg_restore`), if installed.
    pub fn tool(&self, name: &str) -> Option<PathBuf> {
        let p = self.bin.join(name);
        p.is_file().then_some(p)
    }

    /// The server's major version, from `postgres --version`.
    pub fn version(&self) -> String {
        Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, command: &mut Command, what: &str) -> Result<()> {
        let out = command
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot run `{what}`")).with_source(e))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        Err(Error::new(ErrorKind::Io, format!("`{what}` failed: {}{}", stderr.trim(), tail(&log))))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D").arg(self.dir.join("data")).args(["-m", "immediate", "stop"]);
        let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The folder holding `initdb`: `PGSAFE_PG_BIN`, `pg_config --bindir`, the newest
/// `/usr/lib/postgresql/*/bin`, or the `PATH`.
pub fn server_bin() -> Option<PathBuf> {
    let has_initdb = |p: &Path| p.join("initdb").is_file() && p.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PGSAFE_PG_BIN").map(PathBuf::from) {
        return has_initdb(&dir).then_some(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_initdb(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p)| has_initdb(p))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).find(|p| has_initdb(p)))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::new(ErrorKind::Io, "cannot find a free port").with_source(e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::new(ErrorKind::Io, "cannot find a free port").with_source(e))
}

fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("cannot {what} `{}`", path.display())).with_source(e)
}

/// The last lines of the server log, for an error message.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().rev().take(5).collect();
    if lines.is_empty() {
        return String::new();
    }
    format!("\nserver log:\n  {}", lines.into_iter().rev().collect::<Vec<_>>().join("\n  "))
}
