//! A throwaway PostgreSQL cluster made from installed server binaries: `initdb` into a folder of its own,
//! the server on a free port with its Unix socket in that folder and no TCP unless a setting asks for it,
//! `fsync` off. The one implementation behind `pgsafe demo`, `pgsafe cluster start` (which the test
//! scripts and the benchmark use) and the integration tests' servers.
//!
//! The binaries come from `PGSAFE_PG_BIN`, `pg_config --bindir`, the newest `/usr/lib/postgresql/*/bin`,
//! then `PATH` ([`find_bin`]). Run as root, every server program runs as the OS user `postgres` through
//! `runuser`, because `initdb` refuses root; binaries that user cannot run (under root's home, as the
//! cross-version suite's are) are copied into the cluster's folder first.
//!
//! A cluster never outlives what it belongs to. One with [`Lifetime::ThisProcess`] (the default) is
//! stopped and its folder removed when the [`Cluster`] is dropped; and because a killed process runs no
//! destructor (and a static is never dropped), also by a watchdog: a small shell process that waits for
//! end-of-file on a pipe whose only write end this process holds. Rust opens pipes close-on-exec, so the
//! server and other programs do not inherit it, and the kernel closes it however this process ends, even
//! on SIGKILL; the watchdog then stops the server and removes the folder. Unlike polling a process id,
//! this reacts at once and cannot be fooled by a reused id. A cluster handed to a script by
//! `pgsafe cluster start` ([`Cluster::detach`]) outlives pgsafe: it is stopped by [`stop`] or, with
//! [`Lifetime::UntilProcessEnds`], by a watchdog that checks every second whether the script's process
//! still runs (the same id with the same start time). Every watchdog runs in a process group of its own
//! and ignores SIGHUP and SIGINT, so a Ctrl-C aimed at the tests does not take it down first, and it
//! removes the folder only while the folder's state file still holds the cluster's token, so it never
//! removes a folder someone has reused since.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::pg::ConnectOptions;

/// The environment variable naming the folder of the PostgreSQL programs; it wins over every other place.
pub const PG_BIN_ENV: &str = "PGSAFE_PG_BIN";

/// The programs a folder must hold to start a cluster.
pub const SERVER_PROGRAMS: &[&str] = &["initdb", "pg_ctl", "postgres"];

/// The superuser `initdb` creates, and the name to connect as.
pub const SUPERUSER: &str = "postgres";

/// Where Debian and Ubuntu install each PostgreSQL major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The OS user that runs the server when pgsafe runs as root.
const SERVER_OS_USER: &str = "postgres";

/// The file in the cluster's folder that says it is one, for [`stop`] and the watchdog.
const STATE_FILE: &str = "pgsafe-cluster.json";

/// How many free ports to try before giving up on starting the server.
const START_ATTEMPTS: u32 = 5;

/// How much of a log an error shows, from its end.
const LOG_TAIL_LINES: usize = 20;

/// How long a cluster lasts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lifetime {
    /// Until the [`Cluster`] is dropped or this process ends, however it ends.
    #[default]
    ThisProcess,
    /// Once [detached](Cluster::detach): until [`stop`], or until the process of this id ends.
    UntilProcessEnds(u32),
    /// Once [detached](Cluster::detach): until [`stop`].
    UntilStopped,
}

/// What cluster to make. `ClusterOptions::default()` is `pgsafe demo`'s: binaries found by [`find_bin`],
/// a new temporary folder, no password, initdb's `pg_hba.conf` (trust).
#[derive(Clone, Default)]
pub struct ClusterOptions {
    /// The folder of `initdb`, `pg_ctl` and `postgres`; `None` finds one ([`find_bin`]).
    pub bin: Option<PathBuf>,
    /// The cluster's folder, made if missing, refused unless empty, removed with the cluster; `None` makes
    /// a new temporary folder `pgsafe-cluster-*`.
    pub dir: Option<PathBuf>,
    /// Server settings, `(name, value)`, after the defaults (`listen_addresses = ''`, the socket folder,
    /// `fsync = off`), so that they win.
    pub settings: Vec<(String, String)>,
    /// The superuser's password, for logins that ask for one; `None` sets none.
    pub password: Option<String>,
    /// The whole `pg_hba.conf`; `None` keeps initdb's, which trusts everyone.
    pub hba: Option<String>,
    /// Files written into the data folder for the server's user alone (mode 0600), by name, such as a
    /// TLS key and certificate the settings name.
    pub data_files: Vec<(String, Vec<u8>)>,
    pub lifetime: Lifetime,
}

/// A running throwaway cluster; see the module's documentation for when it goes away.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    runner: Runner,
    token: String,
    /// Set by [`Cluster::detach`]: dropping the value leaves the cluster running.
    detached: bool,
    /// The write end of the [`Lifetime::ThisProcess`] watchdog's pipe.
    watchdog: Option<ChildStdin>,
}

/// What the cluster's folder records about it, for [`stop`] and for the watchdog.
#[derive(Serialize, Deserialize)]
struct State {
    /// Unique to this cluster: a folder whose state file holds another token is not this cluster.
    token: String,
    bin: PathBuf,
    port: u16,
    /// The OS user the server runs as, when not the one running pgsafe.
    os_user: Option<String>,
}

impl Cluster {
    /// Makes a cluster as `options` say and starts its server.
    ///
    /// Fails with [`ErrorKind::InvalidInput`] when no binaries are found or the folder is not empty, and
    /// with [`ErrorKind::Io`] when a step fails (the message holds the program's output and the end of the
    /// server log). Whatever was made is removed again on failure.
    pub fn start(options: &ClusterOptions) -> Result<Cluster> {
        let bin = match &options.bin {
            Some(dir) => match missing(dir, SERVER_PROGRAMS) {
                None => dir.clone(),
                Some(program) => {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!("the PostgreSQL bin folder `{}` has no `{program}`", dir.display()),
                    ));
                }
            },
            None => find_bin(SERVER_PROGRAMS)?,
        };
        for (name, _) in &options.settings {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                return Err(Error::new(ErrorKind::InvalidInput, format!("`{name}` is not a server setting's name")));
            }
        }
        let runner = Runner::detect()?;
        let dir = make_dir(options.dir.as_deref())?;
        let mut cluster = Cluster { dir, bin, port: 0, runner, token: token(), detached: false, watchdog: None };
        // From here on, dropping `cluster` (on any error below) stops whatever runs and removes the folder.
        cluster.write_state()?;
        cluster.watchdog = match options.lifetime {
            Lifetime::ThisProcess => cluster.spawn_watchdog(None)?,
            Lifetime::UntilProcessEnds(pid) => cluster.spawn_watchdog(Some(pid))?,
            Lifetime::UntilStopped => None,
        };
        cluster.hand_over()?;
        cluster.initdb(options.password.as_deref())?;
        cluster.configure(options)?;
        cluster.start_server()?;
        cluster.write_state()?;
        Ok(cluster)
    }

    /// Connection options for database `dbname` as the superuser, through the socket.
    pub fn connect(&self, dbname: &str) -> Result<ConnectOptions> {
        ConnectOptions::new(Some(&self.conninfo(dbname)), None, None, None)
    }

    /// A libpq `key=value` connection string for database `dbname` as the superuser, for other programs.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user={SUPERUSER} dbname={} sslmode=disable",
            conninfo_value(&self.dir.display().to_string()),
            self.port,
            conninfo_value(dbname)
        )
    }

    /// A `postgresql://` URL for database `dbname` as the superuser, through the socket.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgresql://{SUPERUSER}@/{}?host={}&port={}",
            percent_encode(dbname),
            percent_encode(&self.dir.display().to_string()),
            self.port
        )
    }

    /// The cluster's folder, which is also the socket's (libpq's `host`); files put here go with it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser to connect as.
    pub fn user(&self) -> &str {
        SUPERUSER
    }

    /// The folder of the server programs this cluster runs (a copy inside [`Cluster::dir`] when the
    /// server's OS user could not run the originals).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// A client program next to the server binaries (`pg_dump`, `psql`), if installed there.
    pub fn tool(&self, name: &str) -> Option<PathBuf> {
        let p = self.bin.join(name);
        p.is_file().then_some(p)
    }

    /// The server's log.
    pub fn server_log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The OS user the server runs as when it is not the one running pgsafe (running as root).
    pub fn os_user(&self) -> Option<&'static str> {
        match self.runner {
            Runner::Me => None,
            Runner::AsOsUser(user) => Some(user),
        }
    }

    /// `postgres (PostgreSQL) 15.18`, from `postgres --version`; empty when it cannot be run.
    pub fn version(&self) -> String {
        Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    /// Leaves the cluster running when the value is dropped, for as long as its [`Lifetime`] says: until
    /// [`stop`], or until the process it watches ends. A [`Lifetime::ThisProcess`] cluster still goes away
    /// when this process ends.
    pub fn detach(mut self) {
        self.detached = true;
        if let Some(pipe) = self.watchdog.take() {
            // Closing the pipe would set the watchdog off now; the kernel closes it when this process ends.
            std::mem::forget(pipe);
        }
    }

    /// Hands the folder to the server's OS user, and the binaries too when that user cannot run them.
    fn hand_over(&mut self) -> Result<()> {
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("setting the mode of", &self.dir, e))?;
        let Runner::AsOsUser(user) = self.runner else {
            return Ok(());
        };
        run(Command::new("chown").arg(user).arg(&self.dir), "chown")?;
        if !self.runner.succeeds(Command::new("test").arg("-w").arg(&self.dir)) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("the OS user `{user}`, which runs the server, cannot reach `{}`", self.dir.display()),
            )
            .with_hint(format!(
                "every folder above it must let `{user}` in; one made by `mktemp -d` directly under `/tmp` does"
            )));
        }
        let postgres = self.bin.join("postgres");
        if !self.runner.succeeds(Command::new("test").arg("-x").arg(&postgres)) {
            // The whole installation, for the libraries and share files the binaries find relative to themselves.
            let copy = self.dir.join("native");
            run(Command::new("cp").arg("-a").arg(self.bin.join("..")).arg(&copy), "cp")?;
            run(Command::new("chown").arg("-R").arg(user).arg(&copy), "chown")?;
            self.bin = copy.join("bin");
        }
        Ok(())
    }

    fn initdb(&self, password: Option<&str>) -> Result<()> {
        let pwfile = self.dir.join("pwfile");
        if let Some(password) = password {
            fs::write(&pwfile, password).map_err(|e| Error::io("writing", &pwfile, e))?;
            self.give(&pwfile)?;
        }
        let initdb = |locale: &str| {
            let mut command = self.command("initdb");
            command.arg("-D").arg(self.data()).args(["-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--no-sync"]);
            command.arg(locale);
            if password.is_some() {
                command.arg("--pwfile").arg(&pwfile);
            }
            run(&mut command, "initdb")
        };
        // Some builds (the npm packages of older versions) have no C.UTF-8; a failed initdb leaves nothing.
        let result = initdb("--locale=C.UTF-8").or_else(|first| {
            initdb("--no-locale").map_err(|second| {
                second
                    .and_hint(format!("before that, with `--locale=C.UTF-8`: {first}; {}", first.hint().unwrap_or("")))
            })
        });
        let _ = fs::remove_file(&pwfile);
        result
    }

    /// Appends the settings to `postgresql.conf`, writes `pg_hba.conf` and the data files.
    fn configure(&self, options: &ClusterOptions) -> Result<()> {
        let mut conf = String::from("\n# pgsafe throwaway cluster\n");
        let socket = self.dir.display().to_string();
        let defaults = [("listen_addresses", ""), ("unix_socket_directories", socket.as_str()), ("fsync", "off")];
        let settings = defaults.iter().map(|&(k, v)| (k, v)).chain(options.settings.iter().map(|(k, v)| (&**k, &**v)));
        for (name, value) in settings {
            let _ = writeln!(conf, "{name} = '{}'", value.replace('\'', "''"));
        }
        let path = self.data().join("postgresql.conf");
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(|e| Error::io("appending to", &path, e))?;
        if let Some(hba) = &options.hba {
            let path = self.data().join("pg_hba.conf");
            fs::write(&path, format!("{hba}\n")).map_err(|e| Error::io("writing", &path, e))?;
        }
        for (name, contents) in &options.data_files {
            let path = self.data().join(name);
            fs::write(&path, contents)
                .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o600)))
                .map_err(|e| Error::io("writing", &path, e))?;
            self.give(&path)?;
        }
        Ok(())
    }

    /// Starts the server on a free port, trying a few: another process may take the port first.
    fn start_server(&mut self) -> Result<()> {
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let mut start = self.command("pg_ctl");
            start.args(["start", "-w", "-t", "60", "-D"]).arg(self.data()).arg("-l").arg(self.server_log());
            start.arg("-o").arg(format!("-p {port}"));
            match run(&mut start, "pg_ctl start") {
                Ok(()) => {
                    self.port = port;
                    return Ok(());
                }
                Err(e) => {
                    // A server that came up too slowly for `-w` would hold the data folder.
                    self.stop_server();
                    last = Some(e);
                }
            }
        }
        let log = fs::read_to_string(self.server_log()).unwrap_or_default();
        let e = last.unwrap_or_else(|| Error::new(ErrorKind::Io, "`pg_ctl start` never ran"));
        Err(e
            .context(format!("the server in `{}` did not start in {START_ATTEMPTS} tries", self.dir.display()))
            .and_hint(tail("server log", &log)))
    }

    fn stop_server(&self) {
        let mut stop = self.command("pg_ctl");
        stop.args(["stop", "-m", "immediate", "-D"]).arg(self.data());
        let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }

    /// Starts the watchdog: on the pipe it returns when `pid` is `None`, else watching process `pid`.
    fn spawn_watchdog(&self, pid: Option<u32>) -> Result<Option<ChildStdin>> {
        let mut command = Command::new("sh");
        command.arg("-c").arg(WATCHDOG).arg("pgsafe-cluster-watchdog");
        if let Runner::AsOsUser(user) = self.runner {
            command.args(["runuser", "-u", user, "--"]);
        }
        command.arg(self.bin.join("pg_ctl"));
        command.env("PGSAFE_CLUSTER_DIR", &self.dir).env("PGSAFE_CLUSTER_TOKEN", &self.token);
        if let Some(pid) = pid {
            let started = process_start(pid).ok_or_else(|| {
                Error::new(ErrorKind::InvalidInput, format!("there is no process {pid} to stop the cluster with"))
            })?;
            command.env("PGSAFE_CLUSTER_WATCH_PID", pid.to_string()).env("PGSAFE_CLUSTER_WATCH_START", started);
        }
        let mut child = command
            .current_dir("/")
            .stdin(if pid.is_some() { Stdio::null() } else { Stdio::piped() })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| Error::new(ErrorKind::Io, "cannot start the cluster's watchdog `sh`").with_source(e))?;
        Ok(child.stdin.take())
    }

    fn write_state(&self) -> Result<()> {
        let state = State {
            token: self.token.clone(),
            bin: self.bin.clone(),
            port: self.port,
            os_user: self.os_user().map(str::to_owned),
        };
        let path = self.dir.join(STATE_FILE);
        let json = serde_json::to_vec_pretty(&state)
            .map_err(|e| Error::new(ErrorKind::Io, "cannot encode the cluster's state").with_source(e))?;
        fs::write(&path, json).map_err(|e| Error::io("writing", &path, e))
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Gives `path` to the server's OS user.
    fn give(&self, path: &Path) -> Result<()> {
        match self.runner {
            Runner::Me => Ok(()),
            Runner::AsOsUser(user) => run(Command::new("chown").arg(user).arg(path), "chown"),
        }
    }

    fn command(&self, program: &str) -> Command {
        self.runner.command(&self.bin.join(program), &self.dir)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        self.stop_server();
        let _ = fs::remove_dir_all(&self.dir);
        // The watchdog's pipe closes after this; it finds no state file and leaves.
    }
}

/// Stops the cluster a [detached](Cluster::detach) [`Cluster`] left in `dir` and removes the folder.
///
/// Refuses, with [`ErrorKind::InvalidInput`] and without touching it, a folder that holds no cluster made
/// by [`Cluster::start`].
pub fn stop(dir: &Path) -> Result<()> {
    let not_a_cluster = || {
        Error::new(ErrorKind::InvalidInput, format!("`{}` holds no cluster of `pgsafe cluster start`", dir.display()))
    };
    // Absolute, as `start` made it: `pg_ctl` runs from the cluster's folder, where a relative `dir/data`
    // is not found (`pgsafe cluster stop c` failed so).
    let dir = &dir.canonicalize().map_err(|e| not_a_cluster().with_source(e))?;
    let path = dir.join(STATE_FILE);
    let text = fs::read(&path).map_err(|e| not_a_cluster().with_source(e))?;
    let state: State = serde_json::from_slice(&text).map_err(|e| not_a_cluster().with_source(e))?;
    let runner = match state.os_user.as_deref() {
        None => Runner::Me,
        Some(SERVER_OS_USER) => Runner::AsOsUser(SERVER_OS_USER),
        Some(other) => {
            return Err(not_a_cluster().with_hint(format!("its state file names the OS user `{other}`")));
        }
    };
    let data = dir.join("data");
    if data.join("postmaster.pid").exists() {
        let mut stop = runner.command(&state.bin.join("pg_ctl"), dir);
        stop.args(["stop", "-m", "fast", "-D"]).arg(&data);
        // A server that is gone already (killed, its machine rebooted) leaves a stale pid file behind.
        if let Err(e) = run(&mut stop, "pg_ctl stop")
            && data.join("postmaster.pid").exists()
        {
            return Err(e.context(format!("stopping the cluster in `{}`", dir.display())));
        }
    }
    fs::remove_dir_all(dir).map_err(|e| Error::io("removing", dir, e))
}

/// The first folder that holds all of `programs`: `PGSAFE_PG_BIN`, `pg_config --bindir`, the newest
/// `/usr/lib/postgresql/*/bin`, then `PATH`.
///
/// A folder counts only when it holds every program asked for, so a client-only `pg_config` does not
/// hide a full installation further down the list; but `PGSAFE_PG_BIN`, an explicit choice, is never
/// skipped for another. The error lists every place searched and what was wrong with it.
pub fn find_bin(programs: &[&str]) -> Result<PathBuf> {
    let wanted = programs.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ");
    if let Some(dir) = std::env::var_os(PG_BIN_ENV).filter(|v| !v.is_empty()).map(PathBuf::from) {
        return match missing(&dir, programs) {
            None => Ok(dir),
            Some(program) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("env `{PG_BIN_ENV}` is `{}`, but that folder has no `{program}`", dir.display()),
            )
            .with_hint(format!("point `{PG_BIN_ENV}` at a folder with {wanted}"))),
        };
    }
    let mut searched = format!("env `{PG_BIN_ENV}`: not set");

    match Command::new("pg_config").arg("--bindir").output() {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            match missing(&dir, programs) {
                None => return Ok(dir),
                Some(program) => {
                    let _ = write!(searched, "; `pg_config --bindir`: `{}` has no `{program}`", dir.display());
                }
            }
        }
        Ok(out) => {
            let _ = write!(searched, "; `pg_config --bindir` failed ({})", out.status);
        }
        Err(_) => searched.push_str("; no `pg_config`"),
    }

    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(DEBIAN_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.split('.').map(|n| n.parse().ok()).collect::<Option<_>>()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    if let Some((_, dir)) = versions.iter().find(|(_, dir)| missing(dir, programs).is_none()) {
        return Ok(dir.clone());
    }
    let _ = write!(searched, "; `{DEBIAN_ROOT}/*/bin`: none with all of them");

    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let Ok(first) = dir.join(programs.first().copied().unwrap_or("initdb")).canonicalize() else {
            continue;
        };
        // `/usr/local/bin/initdb` is often a link into the real bin folder, which also holds the programs
        // that were never linked (psql, pg_dump); prefer that folder.
        for candidate in first.parent().map(Path::to_path_buf).into_iter().chain([dir]) {
            if missing(&candidate, programs).is_none() {
                return Ok(candidate);
            }
        }
    }
    searched.push_str("; `PATH`: no folder with all of them");
    Err(Error::new(ErrorKind::InvalidInput, format!("no PostgreSQL programs {wanted} found ({searched})"))
        .with_hint(format!(
            "install PostgreSQL's server (Debian: `apt-get install postgresql`), or set `{PG_BIN_ENV}` to its bin folder"
        )))
}

/// The first of `programs` that `dir` lacks, if any.
fn missing<'a>(dir: &Path, programs: &[&'a str]) -> Option<&'a str> {
    programs.iter().copied().find(|p| !dir.join(p).is_file())
}

/// Waits for the end of its stdin (this process's pipe) or of the watched process, then stops the server
/// and removes the folder, if the folder is still this cluster's. The arguments are the command that runs
/// `pg_ctl` (through `runuser` as root). `/proc/PID/stat`'s 22nd field is the process's start time, which
/// tells a process from a later one that reuses its id; the name before it is in parentheses and may hold
/// spaces, so the fields are counted after the last `) `.
const WATCHDOG: &str = r#"
trap '' HUP INT
ours() { grep -qF "$PGSAFE_CLUSTER_TOKEN" "$PGSAFE_CLUSTER_DIR/pgsafe-cluster.json" 2>/dev/null; }
if [ -n "${PGSAFE_CLUSTER_WATCH_PID:-}" ]; then
    alive() { [ "$(sed 's/^.*) //' "/proc/$PGSAFE_CLUSTER_WATCH_PID/stat" 2>/dev/null | cut -d' ' -f20)" = "$PGSAFE_CLUSTER_WATCH_START" ]; }
    while alive && ours; do sleep 1; done
else
    cat >/dev/null
fi
ours || exit 0
"$@" stop -D "$PGSAFE_CLUSTER_DIR/data" -m immediate -s >/dev/null 2>&1
rm -rf "$PGSAFE_CLUSTER_DIR"
"#;

/// The start time of process `pid` (`/proc/PID/stat`, field 22), as the watchdog reads it.
fn process_start(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(") ")?;
    after_name.split(' ').nth(19).map(str::to_owned)
}

/// Who runs `initdb`, `pg_ctl` and so the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runner {
    /// The user running pgsafe.
    Me,
    /// Another OS user, through `runuser`, because pgsafe runs as root.
    AsOsUser(&'static str),
}

impl Runner {
    fn detect() -> Result<Runner> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| Error::new(ErrorKind::Io, "cannot run `id -u`").with_source(e))?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Ok(Runner::Me);
        }
        let exists = Command::new("id").arg(SERVER_OS_USER).stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !exists.is_ok_and(|s| s.success()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("running as root, which `initdb` refuses, and there is no OS user `{SERVER_OS_USER}` to run the server as"),
            )
            .with_hint(format!("create it (`useradd --system {SERVER_OS_USER}`), or run as another user")));
        }
        Ok(Runner::AsOsUser(SERVER_OS_USER))
    }

    /// Whether `command` (a plain program, such as `test`) succeeds when this runner runs it.
    fn succeeds(self, command: &Command) -> bool {
        let mut run = self.command(Path::new(command.get_program()), Path::new("/"));
        run.args(command.get_args()).stdout(Stdio::null()).stderr(Stdio::null());
        run.status().is_ok_and(|s| s.success())
    }

    /// A command for `program`, run in `dir` (which the server's user can enter), stdin closed.
    fn command(self, program: &Path, dir: &Path) -> Command {
        let mut command = match self {
            Runner::Me => Command::new(program),
            Runner::AsOsUser(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
        };
        command.current_dir(dir).stdin(Stdio::null());
        command
    }
}

/// Runs `command` to its end; an error with its output when it fails.
fn run(command: &mut Command, what: &str) -> Result<()> {
    let out = command.output().map_err(|e| Error::new(ErrorKind::Io, format!("cannot run `{what}`")).with_source(e))?;
    if out.status.success() {
        return Ok(());
    }
    let output = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    Err(Error::new(ErrorKind::Io, format!("`{what}` failed ({})", out.status)).with_hint(tail("its output", &output)))
}

/// Makes the cluster's folder: `dir` (made if missing, refused unless empty) or a new temporary one.
fn make_dir(dir: Option<&Path>) -> Result<PathBuf> {
    let Some(dir) = dir else {
        let temp = tempfile::Builder::new()
            .prefix("pgsafe-cluster-")
            .tempdir()
            .map_err(|e| Error::new(ErrorKind::Io, "cannot create a temporary folder").with_source(e))?;
        return Ok(temp.keep());
    };
    fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    let mut entries = fs::read_dir(dir).map_err(|e| Error::io("reading", dir, e))?;
    if entries.next().is_some() {
        return Err(Error::new(ErrorKind::InvalidInput, format!("`{}` is not empty", dir.display()))
            .with_hint("a cluster needs a folder of its own, which it removes when it stops"));
    }
    // Absolute, because the server and the socket's users resolve it from other working folders.
    dir.canonicalize().map_err(|e| Error::io("resolving", dir, e))
}

fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| Error::new(ErrorKind::Io, "cannot find a free port").with_source(e))
}

/// Unique among clusters: this process and the time.
fn token() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// `s` as a value in a libpq key=value connection string.
fn conninfo_value(s: &str) -> String {
    if !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

/// `s` percent-encoded for a URL's path or query: everything but unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The last lines of `text`, as a hint naming `what` they are.
fn tail(what: &str, text: &str) -> String {
    let lines: Vec<&str> = text.lines().rev().take(LOG_TAIL_LINES).collect();
    if lines.is_empty() {
        return format!("{what} is empty");
    }
    format!("{what} ends:\n  {}", lines.into_iter().rev().collect::<Vec<_>>().join("\n  "))
}

/// `s` as one word for `sh`: as it is when it holds nothing the shell reads, else in single quotes (the
/// assignments `pgsafe cluster start` prints, the commands a report says to run).
pub fn sh_word(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-:@%+=,".contains(&b)) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_of_this_process_is_read_past_its_name() {
        let mine = process_start(std::process::id()).expect("this process's /proc entry");
        assert!(mine.parse::<u64>().is_ok(), "{mine}");
        assert_eq!(process_start(u32::MAX), None);
    }

    #[test]
    fn a_url_names_the_socket_folder_encoded() {
        assert_eq!(percent_encode("/tmp/a b"), "%2Ftmp%2Fa%20b");
        assert_eq!(conninfo_value("/tmp/a b"), "'/tmp/a b'");
    }
}
