//! Connection settings read the way libpq reads them, and connecting with them.
//!
//! [`ConnectOptions::new`] merges the `-h -p -U` flags, the `-d` argument (a `postgres://` URI, a
//! `key=value` string or a plain database name, or else `DATABASE_URL`), the `PG*` environment
//! variables and libpq's defaults, and checks all it can without the network, so that a typo fails
//! before any work starts. [`ConnectOptions::connect`] then takes a password from `~/.pgpass` when none
//! was given, negotiates TLS as `sslmode` says (rustls with the ring provider: no OpenSSL), and turns
//! the driver's failures into one-line messages that name the target and never the password.
//!
//! Where pgsafe differs from libpq, on purpose:
//! - an empty value (`host=`, `PGUSER=""`) counts as unset;
//! - `~/.pgpass` lines for `localhost` match every Unix socket folder, not only the default one;
//! - `sslrootcert=system` means the Mozilla root certificates (`webpki-roots`), not the OS store;
//! - the keywords libpq has and pgsafe cannot honour (`sslcert`, `service`, ...) are errors, not
//!   silently ignored.
//!
//! One file for each part: `settings` (the keyword tables and which source wins), `conninfo` (reading
//! connection strings and URIs), `tls` (`sslmode` and checking certificates), `pgpass` (the password
//! file), `explain` (a failed connection as one message), `child` (the same connection for a child
//! process, through its environment).

mod child;
mod conninfo;
mod explain;
mod pgpass;
mod settings;
mod tls;

use std::fmt;
use std::path::{Path, PathBuf};

use tokio_postgres::config::{Host, SslMode as DriverSslMode};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, ErrorKind, Result};
pub use child::ChildEnv;
use explain::{error_chain_text, is_handshake_failure, is_turned_away};
use pgpass::passfile_password;
use settings::{Environment, Origin};
pub use tls::SslMode;
use tls::{TlsAnswer, WatchedTls};

/// The Unix socket folder of libpq as Debian, Ubuntu and most Linux distributions build it.
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

const DEFAULT_PORT: u16 = 5432;

/// The `application_name` the server shows in `pg_stat_activity` unless the user gives another.
const DEFAULT_APPLICATION_NAME: &str = "pgsafe";

/// Where and how to connect to a server, resolved once; cheap to clone.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Everything the driver needs but a password from the password file, which is looked up on
    /// each connect because it depends on the database (see [`ConnectOptions::with_dbname`]).
    config: Config,
    ssl_mode: SslMode,
    /// `None` when TLS is never tried: `sslmode=disable`, or every host is a Unix socket.
    tls: Option<MakeRustlsConnect>,
    /// The password file to read when no password was given.
    passfile: Option<PathBuf>,
    /// Where the password in `config` came from, for the hint after a failed login.
    password_origin: Option<Origin>,
    /// `sslrootcert` as given (a path, or `system`), for a child process's connection.
    root_cert: Option<String>,
}

impl fmt::Debug for ConnectOptions {
    // Not derived: it shows what `describe` shows and no more, so no password can slip in.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("target", &self.describe())
            .field("sslmode", &self.ssl_mode)
            .finish_non_exhaustive()
    }
}

impl ConnectOptions {
    /// Resolves the connection settings like libpq, from strongest to weakest:
    ///
    /// 1. `host`, `port`, `user`: the `-h -p -U` flags;
    /// 2. `conninfo`: the `-d` argument, a URI (`postgres://` or `postgresql://`), a `key=value`
    ///    string, or else a plain database name; when it is `None`, env `DATABASE_URL` stands in for it;
    /// 3. the environment: `PGHOST`, `PGHOSTADDR`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`,
    ///    `PGPASSFILE`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGAPPNAME`, `PGCONNECT_TIMEOUT`, `PGOPTIONS`,
    ///    `PGGSSENCMODE`, `PGSSLNEGOTIATION`, `PGCHANNELBINDING`, `PGTARGETSESSIONATTRS`,
    ///    `PGLOADBALANCEHOSTS`, each for what the flags and the connection string left unset;
    /// 4. the defaults: host `/var/run/postgresql` when that folder exists, else `localhost`; port
    ///    5432; user the OS user (`USER`, `LOGNAME`, `id -un`); database the user's name;
    ///    `sslmode=prefer`; `application_name=pgsafe`; the password from `~/.pgpass` (or `passfile`),
    ///    read when connecting and only when no password was given.
    ///
    /// An empty value anywhere counts as unset. Fails with [`ErrorKind::InvalidInput`] on a bad
    /// connection string or value, and on a root certificate file that cannot be read.
    pub fn new(conninfo: Option<&str>, host: Option<&str>, port: Option<u16>, user: Option<&str>) -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok();
        let env = Environment { var: &var, default_socket_dir_exists: Path::new(DEFAULT_SOCKET_DIR).is_dir() };
        ConnectOptions::from_env_with(conninfo, host, port, user, &env)
    }

    /// A copy pointing at another database (for restore targets, scratch databases).
    pub fn with_dbname(&self, dbname: &str) -> Self {
        let mut copy = self.clone();
        copy.config.dbname(dbname);
        copy
    }

    /// A copy whose sessions act as `role` (`SET ROLE` at connection start, as `--role` asks).
    pub fn with_role(&self, role: &str) -> Self {
        let mut copy = self.clone();
        // Backslashes and spaces are escaped in the startup `options`, as libpq's PGOPTIONS expects.
        let escaped = role.replace('\\', "\\\\").replace(' ', "\\ ");
        let options = match copy.config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} -c role={escaped}"),
            _ => format!("-c role={escaped}"),
        };
        copy.config.options(&options);
        copy
    }

    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or_default()
    }

    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or_default()
    }

    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// The TLS connector sessions use, if any: a cancel request must reach the server the same way.
    pub(crate) fn tls(&self) -> Option<MakeRustlsConnect> {
        self.tls.clone()
    }

    /// `user@host:port/dbname`, never the password; every message about the connection uses it.
    pub fn describe(&self) -> String {
        format!("{}@{}/{}", self.user(), self.address(), self.dbname())
    }

    /// Connects, spawning the connection's task on the current tokio runtime.
    ///
    /// Fails with [`ErrorKind::Connect`] and a message that says what went wrong where: a wrong
    /// password, a host that does not resolve, nobody listening, TLS refused or a certificate that
    /// does not check out, a database that does not exist.
    pub async fn connect(&self) -> Result<Client> {
        use DriverSslMode::{Disable, Prefer, Require};

        let mut config = self.config.clone();
        let mut password_origin = self.password_origin.clone();
        if config.get_password().is_none()
            && let Some(passfile) = &self.passfile
            && let Some(password) = passfile_password(passfile, &config)
        {
            config.password(password);
            password_origin = Some(Origin::Passfile(passfile.clone()));
        }

        let target = self.describe();
        let plain = |e| (e, TlsAnswer::NotAsked);
        let result = match (&self.tls, self.ssl_mode) {
            (None, _) | (_, SslMode::Disable) => start(&config, Disable, NoTls, target).await.map_err(plain),
            (Some(tls), SslMode::Allow) => match start(&config, Disable, NoTls, target.clone()).await {
                Err(e) if is_turned_away(&e) => start_tls(&config, Require, tls, target).await,
                result => result.map_err(plain),
            },
            (Some(tls), SslMode::Prefer) => match start_tls(&config, Prefer, tls, target.clone()).await {
                // libpq too tries again without TLS when the server agreed to TLS and the handshake
                // failed under `prefer`.
                Err((e, TlsAnswer::Accepted)) if is_handshake_failure(&e) => {
                    start(&config, Disable, NoTls, target).await.map_err(plain)
                }
                result => result,
            },
            (Some(tls), _) => start_tls(&config, Require, tls, target).await,
        };
        match result {
            Ok(client) => Ok(client),
            Err((e, answer)) => Err(self.explain(e, answer, password_origin.as_ref()).await),
        }
    }

    /// `host:port` of every host, comma-separated; Unix sockets as their folder.
    fn address(&self) -> String {
        let ports = self.config.get_ports();
        let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(DEFAULT_PORT);
        let hosts: Vec<String> = if self.config.get_hosts().is_empty() {
            self.config.get_hostaddrs().iter().map(|addr| addr.to_string()).collect()
        } else {
            self.config.get_hosts().iter().map(host_label).collect()
        };
        hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                if host.contains(':') && !host.starts_with('/') {
                    format!("[{host}]:{}", port(i))
                } else {
                    format!("{host}:{}", port(i))
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Connects with TLS as `mode` says and spawns the connection's task, which logs how it ended if
/// not cleanly.
async fn start<T>(config: &Config, mode: DriverSslMode, tls: T, target: String) -> Result<Client, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let mut config = config.clone();
    config.ssl_mode(mode);
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("connection to `{target}` ended: {}", error_chain_text(&e));
        }
    });
    Ok(client)
}

/// [`start`] with pgsafe's TLS connector, returning with an error what the server answered when asked
/// for TLS.
async fn start_tls(
    config: &Config,
    mode: DriverSslMode,
    tls: &MakeRustlsConnect,
    target: String,
) -> Result<Client, (tokio_postgres::Error, TlsAnswer)> {
    let watched = WatchedTls::new(tls);
    start(config, mode, watched.clone(), target).await.map_err(|e| (e, watched.answer()))
}

fn host_label(host: &Host) -> String {
    match host {
        Host::Tcp(name) => name.clone(),
        Host::Unix(dir) => dir.display().to_string(),
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod testing {
    //! What the tests of every part use: settings resolved in an environment of their own.

    use super::*;

    /// Resolves with exactly the environment `vars`, HOME in a folder that does not exist, and
    /// no default socket folder unless `vars` says `SOCKET_DIR_EXISTS`.
    pub(super) fn resolve(
        conninfo: Option<&str>,
        flags: (Option<&str>, Option<u16>, Option<&str>),
        vars: &[(&str, &str)],
    ) -> Result<ConnectOptions> {
        let lookup = |name: &str| {
            vars.iter().find(|(var, _)| *var == name).map(|(_, value)| (*value).to_owned()).or_else(|| match name {
                "USER" => Some("osuser".to_owned()),
                "HOME" => Some("/nonexistent/pgsafe-test-home".to_owned()),
                _ => None,
            })
        };
        let env = Environment {
            var: &lookup,
            default_socket_dir_exists: vars.iter().any(|(var, _)| *var == "SOCKET_DIR_EXISTS"),
        };
        ConnectOptions::from_env_with(conninfo, flags.0, flags.1, flags.2, &env)
    }

    pub(super) fn ok(
        conninfo: Option<&str>,
        flags: (Option<&str>, Option<u16>, Option<&str>),
        vars: &[(&str, &str)],
    ) -> ConnectOptions {
        resolve(conninfo, flags, vars).unwrap_or_else(|e| panic!("{e}: {:?}", e.hint()))
    }

    pub(super) fn err(conninfo: Option<&str>, vars: &[(&str, &str)]) -> Error {
        match resolve(conninfo, (None, None, None), vars) {
            Ok(options) => panic!("expected an error, got {options:?}"),
            Err(e) => e,
        }
    }

    pub(super) const NO_FLAGS: (Option<&str>, Option<u16>, Option<&str>) = (None, None, None);

    pub(super) fn password(options: &ConnectOptions) -> Option<&str> {
        options.config.get_password().map(|p| std::str::from_utf8(p).expect("test passwords are UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn describe_never_shows_the_password() {
        for (conninfo, vars) in [
            ("postgres://alice:s3cr3t@db:5433/app", &[][..]),
            ("postgresql://alice:s3cr3t@db/app?password=s3cr3t", &[][..]),
            ("host=db user=alice password=s3cr3t dbname=app", &[][..]),
            ("app", &[("PGPASSWORD", "s3cr3t"), ("PGUSER", "alice")][..]),
        ] {
            let options = ok(Some(conninfo), NO_FLAGS, vars);
            assert_eq!(password(&options), Some("s3cr3t"), "{conninfo}");
            for text in [options.describe(), format!("{options:?}")] {
                assert!(!text.contains("s3cr3t"), "{conninfo}: {text}");
                assert!(text.contains("alice@"), "{conninfo}: {text}");
            }
        }
        let options = ok(Some("postgres://alice:s3cr3t@db:5433/app"), NO_FLAGS, &[]);
        assert_eq!(options.describe(), "alice@db:5433/app");
        assert_eq!(options.with_dbname("other").describe(), "alice@db:5433/other");
    }

    #[test]
    fn with_dbname_changes_only_the_database() {
        let options = ok(Some("host=h port=6000 user=u dbname=a sslmode=require"), NO_FLAGS, &[]);
        let other = options.with_dbname("b");
        assert_eq!(other.describe(), "u@h:6000/b");
        assert_eq!(other.ssl_mode(), SslMode::Require);
        assert_eq!(options.dbname(), "a");
    }
}
