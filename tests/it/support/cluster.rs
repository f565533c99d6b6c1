//! The one PostgreSQL server the tests of this process share, started here by `pgsafe::cluster` (the
//! same throwaway cluster as `pgsafe demo` and `pgsafe cluster start`), or given by URL; and the private
//! servers of tests that need one of their own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr as _;
use std::sync::OnceLock;

use pgsafe::cluster::ClusterOptions;
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

/// The environment variable naming a running server to use instead of starting one.
pub const DATABASE_URL_ENV: &str = "PGSAFE_TEST_DATABASE_URL";

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
    /// `None` when the server came by URL. Never dropped (it lives in a static): its watchdog stops it
    /// and removes its folder when the test process ends, however it ends.
    local: Option<Local>,
}

struct Local {
    cluster: pgsafe::cluster::Cluster,
    log: PathBuf,
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
            pgsafe::cluster::PG_BIN_ENV,
        );
        path
    }

    /// A libpq key=value connection string for database `dbname`.
    pub fn conn_string(&self, dbname: &str) -> String {
        if let Some(local) = &self.local {
            return local.cluster.conninfo(dbname);
        }
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
        let local = self.local.as_ref().expect("a tablespace needs the tests' own local server, not one given by URL");
        let dir = tempfile::Builder::new().prefix("pgsafe-it-tablespace-").tempdir().expect("a temporary folder");
        if let Some(user) = local.cluster.os_user() {
            let status = Command::new("chown").arg(user).arg(dir.path()).status().expect("run chown");
            assert!(status.success(), "chown {user} {} failed", dir.path().display());
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
            None => std::env::var("USER").unwrap_or_else(|_| pgsafe::cluster::SUPERUSER.to_owned()),
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
            bin_dir: pgsafe::cluster::find_bin(&["psql"]).map_err(|e| describe(&e)),
            local: None,
        })
    }

    fn start_local() -> Result<Cluster, String> {
        let cluster = pgsafe::cluster::Cluster::start(&ClusterOptions::default())
            .map_err(|e| format!("{}\nhint: or set `{DATABASE_URL_ENV}` to a running server", describe(&e)))?;
        Ok(Cluster {
            host: cluster.dir().display().to_string(),
            port: cluster.port(),
            user: cluster.user().to_owned(),
            password: None,
            maintenance_db: "postgres".to_owned(),
            bin_dir: Ok(cluster.bin().to_path_buf()),
            local: Some(Local { log: cluster.server_log(), cluster }),
        })
    }
}

/// What a test's own cluster changes from the shared one's setup (see [`start_private`]).
#[derive(Default)]
pub struct PrivateClusterOptions {
    /// The superuser's password; `None` leaves it without one.
    pub password: Option<String>,
    /// Lines for `postgresql.conf`, each `name = value`, such as `ssl = on`.
    pub conf: Vec<String>,
    /// The whole `pg_hba.conf`; `None` keeps initdb's, which trusts everyone.
    pub hba: Option<String>,
    /// Files written into the data folder for the server's user alone (mode 0600), by name, such as
    /// the TLS key and certificate that `conf` names.
    pub data_files: Vec<(String, Vec<u8>)>,
}

/// A server of one test's own that listens on TCP at 127.0.0.1 as well as on a Unix socket, for
/// what the shared cluster cannot show: password logins, TLS, a server that goes away. It is stopped
/// and its folder removed when the value is dropped or the process ends.
pub struct PrivateCluster {
    cluster: pgsafe::cluster::Cluster,
    log: PathBuf,
}

impl PrivateCluster {
    /// The TCP port on 127.0.0.1, which is also the Unix socket's.
    pub fn port(&self) -> u16 {
        self.cluster.port()
    }

    /// The superuser name to connect as.
    pub fn user(&self) -> &str {
        self.cluster.user()
    }

    /// The Unix socket folder (trust authentication, whatever `hba` says of TCP).
    pub fn socket_dir(&self) -> &Path {
        self.cluster.dir()
    }

    pub fn server_log(&self) -> &Path {
        &self.log
    }

    /// A libpq `key=value` string for `role` on database `dbname`, through the Unix socket.
    pub fn conn_as(&self, role: &str, dbname: &str) -> String {
        format!("host={} port={} user={role} dbname={dbname}", self.socket_dir().display(), self.port())
    }

    /// `psql` as `role` on `dbname` (quiet, unaligned, stops at the first error), ready for `-c SQL`.
    pub fn psql_as(&self, role: &str, dbname: &str) -> std::process::Command {
        let mut psql = std::process::Command::new(super::cluster().bin("psql"));
        psql.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", &self.conn_as(role, dbname)]);
        psql
    }

    /// Runs `sql` as `role` on `dbname` and returns what it printed; panics with psql's stderr on failure.
    pub fn sql_as(&self, role: &str, dbname: &str, sql: &str) -> String {
        let out = self.psql_as(role, dbname).args(["-c", sql]).output().expect("running psql");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("psql printed UTF-8")
    }
}

/// Starts a new cluster like the shared one, changed as `options` say; panics with the reason when
/// it cannot.
pub fn start_private(options: &PrivateClusterOptions) -> PrivateCluster {
    let mut settings = vec![("listen_addresses".to_owned(), "127.0.0.1".to_owned())];
    for line in &options.conf {
        let (name, value) = line.split_once('=').unwrap_or_else(|| panic!("`{line}` is not `name = value`"));
        let value = value.trim();
        let value = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(value);
        settings.push((name.trim().to_owned(), value.replace("''", "'")));
    }
    let cluster = pgsafe::cluster::Cluster::start(&ClusterOptions {
        settings,
        password: options.password.clone(),
        hba: options.hba.clone(),
        data_files: options.data_files.clone(),
        ..ClusterOptions::default()
    })
    .unwrap_or_else(|e| panic!("no private PostgreSQL server: {}", describe(&e)));
    PrivateCluster { log: cluster.server_log(), cluster }
}

/// A library error with its causes and hint, for a panic message.
fn describe(e: &pgsafe::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!("\ncaused by: {s}"));
        source = s.source();
    }
    if let Some(hint) = e.hint() {
        text.push_str(&format!("\nhint: {hint}"));
    }
    text
}

/// `s` as a value in a libpq key=value connection string.
fn conninfo_value(s: &str) -> String {
    if !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}
