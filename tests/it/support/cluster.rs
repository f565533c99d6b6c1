//! The one PostgreSQL server the tests of this process share: started here, or given by URL.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::str::FromStr as _;
use std::sync::OnceLock;

use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

use super::pg_bin;

/// The environment variable naming a running server to use instead of starting one.
pub const DATABASE_URL_ENV: &str = "PGSAFE_TEST_DATABASE_URL";

/// The OS user that runs the server when the tests run as root (`initdb` refuses root).
const SERVER_OS_USER: &str = "postgres";

/// The superuser `initdb` creates in our own cluster.
const SUPERUSER: &str = "postgres";

/// How many free ports to try before giving up on starting the server.
const START_ATTEMPTS: u32 = 5;

/// How much of the server log a failure message shows, from its end.
const LOG_TAIL_BYTES: usize = 8 * 1024;

/// The server of this test process, started on first use.
///
/// Panics, in every test that asks, with the reason when no server can be had.
pub fn cluster() -> &'static Cluster {
    // A `Result`, not a panic inside the initializer, so that a failed start is tried once and
    // every test then reports the same reason instead of starting its own doomed `initdb`.
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(Cluster::from_env) {
        Ok(cluster) => cluster,
        Err(reason) => panic!("no PostgreSQL server for the tests: {reason}"),
    }
}

/// A PostgreSQL server the tests can create databases on.
// No `Debug`: it would print the password of a server given by URL.
pub struct Cluster {
    /// libpq `host`: a Unix socket folder (our own cluster) or a host name.
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    /// The database to connect to for `CREATE DATABASE` and `DROP DATABASE`.
    maintenance_db: String,
    /// An error when the server came by URL and no local bin folder has `psql`.
    bin_dir: Result<PathBuf, String>,
    /// `None` when the server came by URL.
    local: Option<LocalServer>,
}

/// What belongs to a cluster this process started.
struct LocalServer {
    /// In the cluster's temporary folder, beside the data folder and the socket.
    log: PathBuf,
    /// Held open for the life of the process; see [`Watchdog`].
    _watchdog: Watchdog,
}

impl Cluster {
    /// libpq `host`: the Unix socket folder of our own cluster, or the host from the URL.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser name to connect as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The folder with the PostgreSQL programs of this server's version (or, for a server given
    /// by URL, of the local installation found by the usual search).
    pub fn bin_dir(&self) -> &Path {
        match &self.bin_dir {
            Ok(dir) => dir,
            Err(reason) => panic!("{reason}"),
        }
    }

    /// The path of one PostgreSQL program, such as `psql` or `pg_dump`; panics when it is missing.
    pub fn bin(&self, program: &str) -> PathBuf {
        let path = self.bin_dir().join(program);
        assert!(
            path.is_file(),
            "`{program}` is not in the PostgreSQL bin folder `{}` (set `{}` to another folder)",
            self.bin_dir().display(),
            pg_bin::PG_BIN_ENV,
        );
        path
    }

    /// A libpq key=value connection string for database `dbname`.
    pub fn conn_string(&self, dbname: &str) -> String {
        let mut s = format!(
            "host={} port={} user={} dbname={}",
            conninfo_value(&self.host),
            self.port,
            conninfo_value(&self.user),
            conninfo_value(dbname),
        );
        if let Some(password) = &self.password {
            s.push_str(" password=");
            s.push_str(&conninfo_value(password));
        }
        s
    }

    /// The server log of the cluster this process started; `None` for a server given by URL.
    pub fn server_log(&self) -> Option<&Path> {
        self.local.as_ref().map(|local| local.log.as_path())
    }

    /// An empty folder the server may use as a tablespace's location (`CREATE TABLESPACE ... LOCATION`),
    /// removed when dropped. Panics when the server is not this process's own (it came by URL): the
    /// folder must be on the server's machine.
    pub fn tablespace_location(&self) -> tempfile::TempDir {
        assert!(self.local.is_some(), "a tablespace needs the tests' own local server, not one given by URL");
        let dir = tempfile::Builder::new().prefix("pgsafe-it-tablespace-").tempdir().expect("a temporary folder");
        if let Runner::AsOsUser(user) = Runner::detect().expect("the OS user") {
            run(Command::new("chown").arg(user).arg(dir.path()), "chown").expect("chown");
        }
        dir
    }

    /// Runs `sql` on the maintenance database, from a thread of its own so that it works inside
    /// and outside a tokio runtime alike.
    pub(crate) fn execute_admin(&self, sql: &str) -> Result<(), String> {
        let conn_string = self.conn_string(&self.maintenance_db);
        let sql = sql.to_owned();
        let work = move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("could not build a tokio runtime: {e}"))?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&conn_string, NoTls)
                    .await
                    .map_err(|e| format!("could not connect to the server: {e}"))?;
                let connection = tokio::spawn(connection);
                let result = client.batch_execute(&sql).await.map_err(|e| format!("`{sql}` failed: {e}"));
                drop(client);
                let _ = connection.await;
                result
            })
        };
        std::thread::spawn(work).join().unwrap_or_else(|_| Err("the thread running the SQL panicked".to_owned()))
    }

    fn from_env() -> Result<Cluster, String> {
        match std::env::var(DATABASE_URL_ENV) {
            Ok(url) if !url.is_empty() => Cluster::from_url(&url),
            _ => Cluster::start_local(),
        }
    }

    /// A running server named by `url` (a URL or a key=value string; no TLS).
    fn from_url(url: &str) -> Result<Cluster, String> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| format!("env `{DATABASE_URL_ENV}` is not a connection string: {e}"))?;
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(name)) => name.clone(),
            Some(Host::Unix(dir)) => dir.display().to_string(),
            None => {
                return Err(format!(
                    "env `{DATABASE_URL_ENV}` names no host (for a Unix socket, add \
                     `?host=/var/run/postgresql` or similar)"
                ));
            }
        };
        let user = match config.get_user() {
            Some(user) => user.to_owned(),
            // libpq's default, which is what the user expects from a URL without a user.
            None => std::env::var("USER").unwrap_or_else(|_| SUPERUSER.to_owned()),
        };
        let password = match config.get_password() {
            Some(bytes) => Some(
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| format!("env `{DATABASE_URL_ENV}` has a password that is not UTF-8"))?,
            ),
            None => None,
        };
        Ok(Cluster {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            user,
            password,
            maintenance_db: config.get_dbname().unwrap_or("postgres").to_owned(),
            bin_dir: pg_bin::find(&["psql"]),
            local: None,
        })
    }

    /// Makes and starts a cluster in a new temporary folder.
    fn start_local() -> Result<Cluster, String> {
        let ClusterRoot { bin_dir, runner, root, data, log, pg_ctl, watchdog } =
            ClusterRoot::prepare("pgsafe-it-", &["initdb", "pg_ctl", "postgres", "psql"])?;

        let initdb = |locale: &str| {
            run(
                runner
                    .command(&bin_dir.join("initdb"), &root)
                    .arg("-D")
                    .arg(&data)
                    .args(["-A", "trust", "-U", SUPERUSER, "--encoding=UTF8", "--no-sync"])
                    .arg(locale),
                "initdb",
            )
        };
        if let Err(first) = initdb("--locale=C.UTF-8") {
            initdb("--no-locale")
                .map_err(|second| format!("{second}\n(before that, with `--locale=C.UTF-8`: {first})"))?;
        }

        let port = start_server(runner, &pg_ctl, &root, &data, &log, "-c listen_addresses='' -c max_connections=100")?;
        Ok(Cluster {
            host: root.display().to_string(),
            port,
            user: SUPERUSER.to_owned(),
            password: None,
            maintenance_db: "postgres".to_owned(),
            bin_dir: Ok(bin_dir),
            local: Some(LocalServer { log, _watchdog: watchdog }),
        })
    }
}

/// A new cluster's temporary folder, reachable by the server's user, and what starts a server in it.
struct ClusterRoot {
    bin_dir: PathBuf,
    runner: Runner,
    root: PathBuf,
    data: PathBuf,
    log: PathBuf,
    pg_ctl: PathBuf,
    watchdog: Watchdog,
}

impl ClusterRoot {
    /// Finds `programs`, makes the folder and hands it to a watchdog at once: from then on the
    /// watchdog stops the server and removes the folder when this process ends, or as soon as the
    /// caller returns an error and drops it.
    fn prepare(prefix: &str, programs: &[&str]) -> Result<ClusterRoot, String> {
        let bin_dir = pg_bin::find(programs)?;
        let runner = Runner::detect()?;
        let temp = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|e| format!("could not create a temporary folder: {e}"))?;
        let root = temp.path().to_path_buf();
        let data = root.join("data");
        let log = root.join("server.log");
        let pg_ctl = bin_dir.join("pg_ctl");
        let watchdog = Watchdog::spawn(runner, &pg_ctl, &root, &data)?;
        let _ = temp.keep();
        // The server's user must reach the folder; the socket and the log are created in it.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("could not chmod `{}`: {e}", root.display()))?;
        if let Runner::AsOsUser(user) = runner {
            run(Command::new("chown").arg(user).arg(&root), "chown")?;
        }
        Ok(ClusterRoot { bin_dir, runner, root, data, log, pg_ctl, watchdog })
    }
}

/// Starts the server of `data` on a free port with `settings`, trying a few ports, and returns the
/// port. The socket goes into `root`, the log into `log`.
fn start_server(
    runner: Runner,
    pg_ctl: &Path,
    root: &Path,
    data: &Path,
    log: &Path,
    settings: &str,
) -> Result<u16, String> {
    let mut ports = Vec::new();
    let mut last_failure = String::new();
    for _ in 0..START_ATTEMPTS {
        let port = free_port()?;
        let options = format!("-k {} -p {port} -c fsync=off {settings}", sh_quote(&root.display().to_string()));
        let started = run(
            runner
                .command(pg_ctl, root)
                .args(["start", "-w", "-t", "60", "-D"])
                .arg(data)
                .arg("-l")
                .arg(log)
                .arg("-o")
                .arg(&options),
            "pg_ctl start",
        );
        match started {
            Ok(_) => return Ok(port),
            Err(e) => {
                ports.push(port.to_string());
                last_failure = e;
                // A server that came up too slowly for `-w` would hold the data folder.
                let _ =
                    run(runner.command(pg_ctl, root).args(["stop", "-m", "immediate", "-D"]).arg(data), "pg_ctl stop");
            }
        }
    }
    Err(format!(
        "the server in `{}` did not start on ports {}; the last attempt: {last_failure}\n\
         --- `server.log` (its last {LOG_TAIL_BYTES} bytes at most) ---\n{}",
        root.display(),
        ports.join(", "),
        log_tail(log)
    ))
}

/// Stops our cluster and removes its folder once this process is gone, however it ends.
///
/// Rust never drops statics and has no portable `atexit` without the `libc` crate, and a test
/// that fails or a killed `cargo test` skips any cleanup code of ours anyway. So a small shell
/// process does it: it reads its stdin, a pipe whose only write end this process holds (Rust
/// opens pipes close-on-exec, so `pg_ctl`, the server and the other programs the tests start do
/// not inherit it). The kernel closes that end when this process exits for any reason, even
/// SIGKILL; the shell then reads end-of-file, runs `pg_ctl stop -m immediate` and removes the
/// folder. It runs in a process group of its own and ignores SIGHUP and SIGINT, so a Ctrl-C aimed
/// at the tests does not take it down first. Unlike polling `kill -0 <pid>`, this reacts at once
/// and cannot be fooled by a reused process id.
struct Watchdog {
    _pipe: ChildStdin,
}

impl Watchdog {
    const SCRIPT: &str = r#"
trap '' HUP INT
cat >/dev/null
"$@" stop -D "$PGSAFE_IT_DATA" -m immediate -s >/dev/null 2>&1
rm -rf "$PGSAFE_IT_ROOT"
"#;

    fn spawn(runner: Runner, pg_ctl: &Path, root: &Path, data: &Path) -> Result<Watchdog, String> {
        let mut command = Command::new("sh");
        command.arg("-c").arg(Self::SCRIPT).arg("pgsafe-it-watchdog");
        if let Runner::AsOsUser(user) = runner {
            command.args(["runuser", "-u", user, "--"]);
        }
        let mut child = command
            .arg(pg_ctl)
            .env("PGSAFE_IT_DATA", data)
            .env("PGSAFE_IT_ROOT", root)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("could not start the cleanup watchdog `sh`: {e}"))?;
        let pipe = child.stdin.take().ok_or("the cleanup watchdog has no stdin pipe")?;
        Ok(Watchdog { _pipe: pipe })
    }
}

/// Who runs `initdb`, `pg_ctl` and so the server.
#[derive(Debug, Clone, Copy)]
enum Runner {
    /// The user running the tests.
    Me,
    /// Another OS user, through `runuser`, because the tests run as root.
    AsOsUser(&'static str),
}

impl Runner {
    fn detect() -> Result<Runner, String> {
        let uid = run(Command::new("id").arg("-u"), "id -u")?;
        if uid.trim() != "0" {
            return Ok(Runner::Me);
        }
        run(Command::new("id").args(["-u", SERVER_OS_USER]), "id").map_err(|e| {
            format!(
                "the tests run as root, which `initdb` refuses, and the OS user \
                 `{SERVER_OS_USER}` to run the server as is missing ({e}); create it, or set \
                 `{DATABASE_URL_ENV}`"
            )
        })?;
        Ok(Runner::AsOsUser(SERVER_OS_USER))
    }

    /// A command for `program`, run in `dir` (which the server's user can enter).
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

/// Runs `command` to the end; its stdout, or an error with its status and output.
fn run(command: &mut Command, what: &str) -> Result<String, String> {
    let output = command.output().map_err(|e| format!("could not run `{what}` ({command:?}): {e}"))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(format!(
        "`{what}` failed ({}): {command:?}\n--- stderr ---\n{}--- stdout ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout),
    ))
}

/// A TCP port nobody listens on now. The server listens on a Unix socket only, but the socket's
/// file name carries the port, and a port that is free for TCP as well keeps tools that assume a
/// free port honest.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("could not find a free port: {e}"))
}

/// The end of the server log, for failure messages.
fn log_tail(log: &Path) -> String {
    match fs::read(log) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(LOG_TAIL_BYTES);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(e) => format!("(could not read `{}`: {e})", log.display()),
    }
}

/// `s` as one word for `sh`, which `pg_ctl -o` passes the server options through.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `s` as a value in a libpq key=value connection string.
fn conninfo_value(s: &str) -> String {
    if !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

/// What a test's own cluster changes from the shared one's setup (see [`start_private`]).
#[derive(Default)]
pub struct PrivateClusterOptions {
    /// The superuser's password; `None` leaves it without one.
    pub password: Option<String>,
    /// Lines appended to `postgresql.conf`, such as `ssl = on`.
    pub conf: Vec<String>,
    /// The whole `pg_hba.conf`; `None` keeps initdb's, which trusts everyone.
    pub hba: Option<String>,
    /// Files written into the data folder for the server's user alone (mode 0600), by name, such as
    /// the TLS key and certificate that `conf` names.
    pub data_files: Vec<(String, Vec<u8>)>,
}

/// A server of one test's own that listens on TCP at 127.0.0.1 as well as on a Unix socket, for
/// what the shared cluster cannot show: password logins, TLS, a server that goes away. Its folder
/// is removed when the value is dropped or the process ends (see [`Watchdog`]).
pub struct PrivateCluster {
    port: u16,
    root: PathBuf,
    log: PathBuf,
    _watchdog: Watchdog,
}

impl PrivateCluster {
    /// The TCP port on 127.0.0.1, which is also the Unix socket's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser name to connect as.
    pub fn user(&self) -> &str {
        SUPERUSER
    }

    /// The Unix socket folder (trust authentication, whatever `hba` says of TCP).
    pub fn socket_dir(&self) -> &Path {
        &self.root
    }

    pub fn server_log(&self) -> &Path {
        &self.log
    }
}

/// Starts a new cluster like the shared one, changed as `options` say; panics with the reason when
/// it cannot.
pub fn start_private(options: &PrivateClusterOptions) -> PrivateCluster {
    start_private_cluster(options).unwrap_or_else(|e| panic!("no private PostgreSQL server: {e}"))
}

fn start_private_cluster(options: &PrivateClusterOptions) -> Result<PrivateCluster, String> {
    let ClusterRoot { bin_dir, runner, root, data, log, pg_ctl, watchdog } =
        ClusterRoot::prepare("pgsafe-it-private-", &["initdb", "pg_ctl", "postgres"])?;

    let mut initdb = runner.command(&bin_dir.join("initdb"), &root);
    initdb.arg("-D").arg(&data).args(["-A", "trust", "-U", SUPERUSER, "--encoding=UTF8", "--no-sync", "--no-locale"]);
    let pwfile = root.join("pwfile");
    if let Some(password) = &options.password {
        fs::write(&pwfile, password).map_err(|e| format!("could not write `{}`: {e}", pwfile.display()))?;
        initdb.arg("--pwfile").arg(&pwfile);
    }
    let initdb_result = run(&mut initdb, "initdb");
    let _ = fs::remove_file(&pwfile);
    initdb_result?;

    let append = |name: &str, text: &str, replace: bool| -> Result<(), String> {
        let path = data.join(name);
        let mut contents = if replace {
            String::new()
        } else {
            fs::read_to_string(&path).map_err(|e| format!("could not read `{}`: {e}", path.display()))?
        };
        contents.push('\n');
        contents.push_str(text);
        contents.push('\n');
        fs::write(&path, contents).map_err(|e| format!("could not write `{}`: {e}", path.display()))
    };
    append("postgresql.conf", &options.conf.join("\n"), false)?;
    if let Some(hba) = &options.hba {
        append("pg_hba.conf", hba, true)?;
    }
    for (name, contents) in &options.data_files {
        let path = data.join(name);
        fs::write(&path, contents)
            .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o600)))
            .map_err(|e| format!("could not write `{}`: {e}", path.display()))?;
        if let Runner::AsOsUser(user) = runner {
            run(Command::new("chown").arg(user).arg(&path), "chown")?;
        }
    }

    let port =
        start_server(runner, &pg_ctl, &root, &data, &log, "-c listen_addresses=127.0.0.1 -c max_connections=20")?;
    Ok(PrivateCluster { port, root, log, _watchdog: watchdog })
}
