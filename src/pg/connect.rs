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

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode as DriverSslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, ErrorKind, Result};

/// The Unix socket folder of libpq as Debian, Ubuntu and most Linux distributions build it.
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

const DEFAULT_PORT: u16 = 5432;

/// The `application_name` the server shows in `pg_stat_activity` unless the user gives another.
const DEFAULT_APPLICATION_NAME: &str = "pgsafe";

/// The libpq connection keywords pgsafe accepts, each with the environment variable that fills it
/// when neither the flags nor the connection string set it.
const KEYWORDS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("port", Some("PGPORT")),
    ("dbname", Some("PGDATABASE")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("sslmode", Some("PGSSLMODE")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("options", Some("PGOPTIONS")),
    ("gssencmode", Some("PGGSSENCMODE")),
    ("sslnegotiation", Some("PGSSLNEGOTIATION")),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("load_balance_hosts", Some("PGLOADBALANCEHOSTS")),
    ("keepalives", None),
    ("keepalives_idle", None),
    ("keepalives_interval", None),
    ("keepalives_count", None),
    ("tcp_user_timeout", None),
];

/// Keywords handed to the driver as they are, with the driver's name for each; it checks the values.
const DRIVER_KEYWORDS: &[(&str, &str)] = &[
    ("sslnegotiation", "sslnegotiation"),
    ("channel_binding", "channel_binding"),
    ("target_session_attrs", "target_session_attrs"),
    ("load_balance_hosts", "load_balance_hosts"),
    ("keepalives", "keepalives"),
    ("keepalives_idle", "keepalives_idle"),
    ("keepalives_interval", "keepalives_interval"),
    ("keepalives_count", "keepalives_retries"),
    ("tcp_user_timeout", "tcp_user_timeout"),
];

/// libpq keywords that pgsafe knows but cannot honour; they get a clearer error than a typo does.
const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "client_encoding",
    "gssdelegation",
    "gsslib",
    "krbsrvname",
    "replication",
    "require_auth",
    "requirepeer",
    "requiressl",
    "service",
    "ssl_max_protocol_version",
    "ssl_min_protocol_version",
    "sslcert",
    "sslcertmode",
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslkey",
    "sslpassword",
    "sslsni",
];

/// How much TLS a connection insists on: libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first; TLS only when the server turns a plain connection away.
    Allow,
    /// TLS when the server offers it, else plain; libpq's default. Never TLS over a Unix socket.
    #[default]
    Prefer,
    /// TLS or nothing. The certificate is checked only when there is a root certificate to check it
    /// against (`sslrootcert`, or `~/.postgresql/root.crt`), and then as `verify-ca` does.
    Require,
    /// TLS with a certificate signed by the root certificate.
    VerifyCa,
    /// As `verify-ca`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling: `disable`, `verify-full`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an unknown `sslmode` is told.
const SSL_MODES: &str = "expected `disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full`";

impl FromStr for SslMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return Err(invalid(format!("unknown sslmode `{s}` ({SSL_MODES})"))),
        })
    }
}

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
        let result = match (&self.tls, self.ssl_mode) {
            (None, _) | (_, SslMode::Disable) => start(&config, Disable, NoTls, target).await,
            (Some(tls), SslMode::Allow) => match start(&config, Disable, NoTls, target.clone()).await {
                Err(e) if is_turned_away(&e) => start(&config, Require, tls.clone(), target).await,
                result => result,
            },
            (Some(tls), SslMode::Prefer) => {
                match start(&config, Prefer, tls.clone(), target.clone()).await {
                    // libpq too tries again without TLS when the handshake fails under `prefer`.
                    Err(e) if is_tls_failure(&e) => start(&config, Disable, NoTls, target).await,
                    result => result,
                }
            }
            (Some(tls), _) => start(&config, Require, tls.clone(), target).await,
        };
        match result {
            Ok(client) => Ok(client),
            Err(e) => Err(self.explain(e, password_origin.as_ref()).await),
        }
    }

    /// [`ConnectOptions::new`] with the environment given, so that tests need not change the
    /// process's own.
    fn from_env_with(
        conninfo: Option<&str>,
        host: Option<&str>,
        port: Option<u16>,
        user: Option<&str>,
        env: &Environment<'_>,
    ) -> Result<Self> {
        let mut params = Params::default();
        let (conninfo, origin) = match conninfo.filter(|s| !s.is_empty()) {
            Some(conninfo) => (Some(conninfo.to_owned()), Origin::ConnInfo),
            None => (env.var("DATABASE_URL"), Origin::DatabaseUrl),
        };
        if let Some(conninfo) = conninfo {
            let pairs = parse_conninfo(&conninfo).map_err(|reason| {
                let place = match &origin {
                    Origin::ConnInfo => String::new(),
                    origin => format!(" in {origin}"),
                };
                invalid(format!("invalid connection string{place}: {reason}"))
            })?;
            let mut previous = None;
            for (key, value) in pairs {
                let key = keyword(&key, previous, &origin)?;
                params.set(key, value, origin.clone());
                previous = Some(key);
            }
        }
        if let Some(host) = host.filter(|host| !host.is_empty()) {
            params.set("host", host.to_owned(), Origin::Flag("-h"));
        }
        if let Some(port) = port {
            params.set("port", port.to_string(), Origin::Flag("-p"));
        }
        if let Some(user) = user.filter(|user| !user.is_empty()) {
            params.set("user", user.to_owned(), Origin::Flag("-U"));
        }
        for (key, var) in KEYWORDS {
            if let Some(var) = var
                && let Some(value) = env.var(var)
            {
                params.fill(key, value, Origin::Env(var));
            }
        }
        ConnectOptions::from_params(&params, env)
    }

    /// The settings from the merged keywords, with the defaults for what is still unset.
    fn from_params(params: &Params, env: &Environment<'_>) -> Result<Self> {
        let mut config = driver_config(params)?;

        let user = match params.get("user") {
            Some(user) => user.to_owned(),
            None => env.os_user().ok_or_else(|| {
                invalid("could not tell the user name to connect as").with_hint("pass `-U`, or set env `PGUSER`")
            })?,
        };
        config.user(&user);
        config.dbname(params.get("dbname").unwrap_or(&user));

        let hostaddrs = match params.get_with_origin("hostaddr") {
            Some((list, origin)) => list
                .split(',')
                .map(|addr| {
                    addr.trim().parse::<IpAddr>().map_err(|_| {
                        invalid(format!("invalid `hostaddr` `{addr}` in {origin}"))
                            .with_hint("`hostaddr` takes numeric IP addresses; a name goes in `host`")
                    })
                })
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        let default_host = if env.default_socket_dir_exists { DEFAULT_SOCKET_DIR } else { "localhost" };
        match params.get("host") {
            Some(list) => {
                for host in list.split(',') {
                    config.host(if host.is_empty() { default_host } else { host });
                }
            }
            None if hostaddrs.is_empty() => {
                config.host(default_host);
            }
            None => {}
        }
        for addr in hostaddrs {
            config.hostaddr(addr);
        }
        match params.get_with_origin("port") {
            Some((list, origin)) => {
                for port in list.split(',') {
                    let port = match port {
                        "" => DEFAULT_PORT,
                        port => port.parse().ok().filter(|port| *port != 0).ok_or_else(|| {
                            invalid(format!("invalid port `{port}` in {origin}"))
                                .with_hint("a port is a number from 1 to 65535")
                        })?,
                    };
                    config.port(port);
                }
            }
            None => {
                config.port(DEFAULT_PORT);
            }
        }

        let password_origin = params.get_with_origin("password").map(|(password, origin)| {
            config.password(password);
            origin.clone()
        });
        let passfile = match (&password_origin, params.get("passfile")) {
            (Some(_), _) => None,
            (None, Some(path)) => Some(PathBuf::from(path)),
            (None, None) => env.home().map(|home| home.join(".pgpass")),
        };

        config.application_name(
            params
                .get("application_name")
                .or(params.get("fallback_application_name"))
                .unwrap_or(DEFAULT_APPLICATION_NAME),
        );
        if let Some(options) = params.get("options") {
            config.options(options);
        }
        if let Some((timeout, origin)) = params.get_with_origin("connect_timeout") {
            let seconds: i64 = timeout.trim().parse().map_err(|_| {
                invalid(format!("invalid `connect_timeout` `{timeout}` in {origin}"))
                    .with_hint("`connect_timeout` is a whole number of seconds; 0 waits forever")
            })?;
            if let Ok(seconds @ 1..) = u64::try_from(seconds) {
                config.connect_timeout(Duration::from_secs(seconds));
            }
        }
        if let Some((mode, origin)) = params.get_with_origin("gssencmode") {
            match mode {
                // pgsafe never tries GSSAPI encryption, which is what these two come to without it.
                "disable" | "prefer" => {}
                "require" => {
                    return Err(invalid(format!(
                        "`gssencmode=require` in {origin}: pgsafe does not support GSSAPI encryption"
                    ))
                    .with_hint("use TLS instead: `sslmode=verify-full`"));
                }
                _ => return Err(invalid(format!("invalid `gssencmode` `{mode}` in {origin}"))),
            }
        }

        let all_unix =
            config.get_hosts().iter().all(|host| matches!(host, Host::Unix(_))) && config.get_hostaddrs().is_empty();
        let (ssl_mode, tls) = tls_settings(params, env, all_unix)?;

        Ok(ConnectOptions { config, ssl_mode, tls, passfile, password_origin })
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

    /// The one failure in `e` as a user should read it.
    async fn explain(&self, e: tokio_postgres::Error, password: Option<&Origin>) -> Error {
        let address = self.address();
        let user = self.user();
        let failed = |message: String| Error::new(ErrorKind::Connect, message);

        if let Some(db) = e.as_db_error() {
            let code = db.code();
            let error = if *code == SqlState::INVALID_PASSWORD {
                let hint = match password {
                    Some(Origin::Passfile(path)) => {
                        format!("the password came from `{}`; correct the line for this server there", path.display())
                    }
                    Some(origin) => format!("the password came from {origin}; check it"),
                    None => "set env `PGPASSWORD`, or add a line for this server to `~/.pgpass`".to_owned(),
                };
                failed(format!("password authentication failed for user `{user}` at `{address}`")).with_hint(hint)
            } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
                failed(format!("server at `{address}` turned away user `{user}`: {}", db.message())).with_hint(
                    "check the user name, and that the server's `pg_hba.conf` lets it in from here \
                     (with TLS, if it says `hostssl`)",
                )
            } else if *code == SqlState::INVALID_CATALOG_NAME {
                failed(format!("database `{}` does not exist at `{address}`", self.dbname()))
                    .with_hint("create it, or name another database with `-d`")
            } else {
                failed(format!("could not connect to `{}`: {}", self.describe(), db.message()))
            };
            return error.with_source(e);
        }

        if e.to_string() == TLS_FAILURE {
            if first_source_text(&e).as_deref() == Some(TLS_UNSUPPORTED) {
                return failed(format!("server at `{address}` does not support TLS, but sslmode={}", self.ssl_mode))
                    .with_hint("turn on `ssl` in the server's configuration, or connect with `sslmode=prefer`")
                    .with_source(e);
            }
            let reason = find_rustls_error(&e)
                .map(ToString::to_string)
                .or_else(|| first_source_text(&e))
                .unwrap_or_else(|| "unknown reason".to_owned());
            let error = failed(format!("TLS handshake with `{address}` failed: {reason}"));
            let error = match find_rustls_error(&e) {
                Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. },
                )) => error.with_hint(
                    "connect with a host name that the certificate names, or check only the \
                     signature with `sslmode=verify-ca`",
                ),
                Some(rustls::Error::InvalidCertificate(_)) => error.with_hint(
                    "set `sslrootcert` (or env `PGSSLROOTCERT`) to the certificate of the CA that \
                     signed the server's certificate",
                ),
                _ => error,
            };
            return error.with_source(e);
        }

        if first_source_text(&e).as_deref() == Some(PASSWORD_MISSING) {
            return failed(format!("server at `{address}` asks for a password for user `{user}`, but none was given"))
                .with_hint(
                    "set env `PGPASSWORD`, add a line for this server to `~/.pgpass` (mode 0600), or \
                 put the password in the connection string",
                )
                .with_source(e);
        }

        if let Some(io) = find_io_error(&e) {
            let unix_dir = match self.config.get_hosts() {
                [Host::Unix(dir)] => Some(dir),
                _ => None,
            };
            let error = match (io.kind(), unix_dir) {
                (io::ErrorKind::ConnectionRefused, None) => Some(
                    failed(format!("could not connect to `{address}`: connection refused"))
                        .with_hint("is the server running on that host and accepting TCP/IP connections on that port?"),
                ),
                (io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound, Some(dir)) => Some(
                    failed(format!(
                        "could not connect to `{address}`: no server listens on socket `{}`",
                        dir.join(format!(
                            ".s.PGSQL.{}",
                            self.config.get_ports().first().copied().unwrap_or(DEFAULT_PORT)
                        ))
                        .display()
                    ))
                    .with_hint("is the server running locally and accepting connections on that socket?"),
                ),
                (io::ErrorKind::TimedOut, _) => Some(failed(format!("could not connect to `{address}`: timed out"))),
                _ => None,
            };
            if let Some(error) = error {
                return error.with_source(e);
            }
        }

        // The driver does not say that a name did not resolve, so ask the resolver again; only now,
        // so that a connection that works costs no second look-up.
        if let ([Host::Tcp(name)], []) = (self.config.get_hosts(), self.config.get_hostaddrs())
            && name.parse::<IpAddr>().is_err()
            && let Err(lookup) = tokio::net::lookup_host((name.as_str(), DEFAULT_PORT)).await
        {
            return failed(format!("could not resolve host `{name}`"))
                .with_hint("check the host name in `-h`, the connection string or env `PGHOST`")
                .with_source(lookup);
        }

        failed(format!("could not connect to `{}`: {}", self.describe(), error_chain_text(&e))).with_source(e)
    }
}

/// What the driver's TLS errors say of themselves, and the one reason it gives without a cause.
const TLS_FAILURE: &str = "error performing TLS handshake";
const TLS_UNSUPPORTED: &str = "server does not support TLS";
/// The driver's reason when the server asks for a password and there is none.
const PASSWORD_MISSING: &str = "password missing";

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

/// Whether the server turned a plain connection away, which `sslmode=allow` answers with TLS.
fn is_turned_away(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
}

fn is_tls_failure(e: &tokio_postgres::Error) -> bool {
    e.to_string() == TLS_FAILURE
}

/// The text of the error directly under `e`, such as the driver's reason for a TLS failure.
fn first_source_text(e: &tokio_postgres::Error) -> Option<String> {
    std::error::Error::source(e).map(ToString::to_string)
}

/// `e` and its causes, joined by `: `, for the rare failure no message above explains.
fn error_chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// The errors under `e`, including those an `io::Error` wraps (which its `source()` skips).
fn causes<'a>(e: &'a tokio_postgres::Error) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut found = Vec::new();
    let mut cause = std::error::Error::source(e);
    while let Some(e) = cause {
        found.push(e);
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            found.push(inner);
        }
        cause = e.source();
    }
    found
}

fn find_rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    causes(e).into_iter().find_map(|cause| cause.downcast_ref::<rustls::Error>())
}

fn find_io_error(e: &tokio_postgres::Error) -> Option<&io::Error> {
    causes(e).into_iter().find_map(|cause| cause.downcast_ref::<io::Error>())
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

/// What [`ConnectOptions::new`] reads besides its arguments; tests give their own.
struct Environment<'a> {
    var: &'a dyn Fn(&str) -> Option<String>,
    /// Whether libpq's default Unix socket folder exists on this machine.
    default_socket_dir_exists: bool,
}

impl Environment<'_> {
    /// An environment variable; empty counts as unset.
    fn var(&self, name: &str) -> Option<String> {
        (self.var)(name).filter(|value| !value.is_empty())
    }

    fn home(&self) -> Option<PathBuf> {
        self.var("HOME").map(PathBuf::from)
    }

    /// The OS user's name, libpq's default user.
    fn os_user(&self) -> Option<String> {
        self.var("USER").or_else(|| self.var("LOGNAME")).or_else(|| {
            let output = std::process::Command::new("id").arg("-un").output().ok()?;
            let name = String::from_utf8(output.stdout).ok()?;
            let name = name.trim();
            (output.status.success() && !name.is_empty()).then(|| name.to_owned())
        })
    }
}

/// Where a connection setting came from, for messages that tell the user what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Flag(&'static str),
    ConnInfo,
    DatabaseUrl,
    Env(&'static str),
    Passfile(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "`{flag}`"),
            Origin::ConnInfo => f.write_str("the connection string"),
            Origin::DatabaseUrl => f.write_str("env `DATABASE_URL`"),
            Origin::Env(var) => write!(f, "env `{var}`"),
            Origin::Passfile(path) => write!(f, "`{}`", path.display()),
        }
    }
}

/// Connection settings by libpq keyword, each with where it came from.
#[derive(Default)]
struct Params(BTreeMap<&'static str, (String, Origin)>);

impl Params {
    /// Sets `key`, replacing a weaker source; an empty value unsets it, as in libpq.
    fn set(&mut self, key: &'static str, value: String, origin: Origin) {
        if value.is_empty() {
            self.0.remove(key);
        } else {
            self.0.insert(key, (value, origin));
        }
    }

    /// Sets `key` unless something stronger already did.
    fn fill(&mut self, key: &'static str, value: String, origin: Origin) {
        if !value.is_empty() {
            self.0.entry(key).or_insert((value, origin));
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|(value, _)| value.as_str())
    }

    fn get_with_origin(&self, key: &str) -> Option<(&str, &Origin)> {
        self.0.get(key).map(|(value, origin)| (value.as_str(), origin))
    }
}

/// The canonical spelling of a keyword from a connection string, or an error that names it.
///
/// After a `password`, the error does not: text that looks like an unknown keyword there is most
/// likely the rest of a password with a space in it.
fn keyword(key: &str, previous: Option<&str>, origin: &Origin) -> Result<&'static str> {
    if let Some((known, _)) = KEYWORDS.iter().find(|(known, _)| *known == key) {
        return Ok(known);
    }
    if UNSUPPORTED_KEYWORDS.contains(&key) {
        return Err(invalid(format!("connection option `{key}` in {origin} is not supported by pgsafe")));
    }
    if previous == Some("password") {
        return Err(invalid(format!("unknown connection option after `password` in {origin}"))
            .with_hint("quote a password that holds spaces: `password='...'`"));
    }
    Err(invalid(format!("unknown connection option `{key}` in {origin}"))
        .with_hint("the options are libpq's: `host`, `port`, `dbname`, `user`, `sslmode`, ..."))
}

/// A driver `Config` with the keywords it checks itself set, and nothing else yet.
fn driver_config(params: &Params) -> Result<Config> {
    let mut text = String::new();
    for (key, driver_key) in DRIVER_KEYWORDS {
        let Some((value, origin)) = params.get_with_origin(key) else {
            continue;
        };
        let pair = format!("{driver_key}={}", quote_conninfo_value(value));
        // One at a time first, so the error can say which setting is wrong.
        Config::from_str(&pair)
            .map_err(|e| invalid(format!("invalid `{key}` `{value}` in {origin}")).with_source(e))?;
        text.push_str(&pair);
        text.push(' ');
    }
    if text.is_empty() {
        return Ok(Config::new());
    }
    Config::from_str(&text).map_err(|e| invalid("invalid connection options").with_source(e))
}

/// `value` quoted for a `key=value` connection string.
fn quote_conninfo_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
}

/// The `(keyword, value)` pairs of a connection string: a URI, `key=value` pairs, or a database name.
///
/// The error is a reason without the string itself, which may hold a password.
fn parse_conninfo(s: &str) -> std::result::Result<Vec<(String, String)>, String> {
    if let Some(rest) = s.strip_prefix("postgresql://").or_else(|| s.strip_prefix("postgres://")) {
        parse_uri(rest)
    } else if s.contains('=') {
        parse_key_values(s)
    } else {
        Ok(vec![("dbname".to_owned(), s.to_owned())])
    }
}

/// libpq's `key=value` form: spaces between pairs and around `=`, values in single quotes when they
/// hold spaces, `\` escaping the next character.
fn parse_key_values(s: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // Not the text itself: it may be the second half of a password with a space in it.
            return Err(match pairs.last() {
                Some((previous, _)) => format!(
                    "text without `=` after the value of `{previous}` (quote values that hold \
                     spaces: `{previous}='...'`)"
                ),
                None => "it does not start with `key=value`".to_owned(),
            });
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(format!("unterminated quoted value for `{key}`")),
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("unterminated quoted value for `{key}`")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

/// libpq's URI form after the scheme:
/// `[user[:password]@][host][:port][,host[:port]...][/dbname][?key=value&...]`, percent-encoded.
fn parse_uri(rest: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();

    // Like libpq, the credentials are whatever comes before an `@` that precedes any `/`.
    let rest = match rest.find(['@', '/']) {
        Some(at) if rest[at..].starts_with('@') => {
            let (user, password) = match rest[..at].split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (&rest[..at], None),
            };
            pairs.push(("user".to_owned(), percent_decode(user, "user name")?));
            if let Some(password) = password {
                pairs.push(("password".to_owned(), percent_decode(password, "password")?));
            }
            &rest[at + 1..]
        }
        _ => rest,
    };

    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (hostspec, rest) = rest.split_at(host_end);
    if !hostspec.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for spec in hostspec.split(',') {
            let (host, port) = if let Some(bracketed) = spec.strip_prefix('[') {
                let (host, after) = bracketed.split_once(']').ok_or("unterminated `[` in an IPv6 host address")?;
                let port = match after {
                    "" => "",
                    after => after.strip_prefix(':').ok_or("unexpected text after an IPv6 host address")?,
                };
                (host.to_owned(), port)
            } else {
                match spec.split_once(':') {
                    Some((host, port)) => (percent_decode(host, "host")?, port),
                    None => (percent_decode(spec, "host")?, ""),
                }
            };
            hosts.push(host);
            ports.push(port);
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            pairs.push(("host".to_owned(), hosts.join(",")));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            pairs.push(("port".to_owned(), ports.join(",")));
        }
    }

    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if let Some(dbname) = path.strip_prefix('/')
        && !dbname.is_empty()
    {
        pairs.push(("dbname".to_owned(), percent_decode(dbname, "database name")?));
    }
    for param in query.into_iter().flat_map(|q| q.split('&')) {
        if param.is_empty() {
            continue;
        }
        let (key, value) = param.split_once('=').ok_or_else(|| format!("URI parameter `{}` has no `=value`", param))?;
        let key = percent_decode(key, "parameter name")?;
        let value = percent_decode(value, &format!("`{key}` parameter"))?;
        // libpq takes JDBC's `ssl=true` too.
        if key == "ssl" {
            if value != "true" {
                return Err("URI parameter `ssl` takes only `true`".to_owned());
            }
            pairs.push(("sslmode".to_owned(), "require".to_owned()));
        } else {
            pairs.push((key, value));
        }
    }
    Ok(pairs)
}

/// `s` with `%XX` escapes decoded; `what` names the part for the error, which never shows `s`.
fn percent_decode(s: &str, what: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let digits = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("invalid percent-encoding in the URI's {what}"))?;
            out.push(digits);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("the URI's {what} is not UTF-8 once decoded"))
}

/// The TLS mode and, unless TLS is never tried, the connector that checks certificates as it says.
fn tls_settings(
    params: &Params,
    env: &Environment<'_>,
    all_unix: bool,
) -> Result<(SslMode, Option<MakeRustlsConnect>)> {
    let root = params.get_with_origin("sslrootcert");
    let system_roots = root.is_some_and(|(value, _)| value == "system");
    let mode = match params.get_with_origin("sslmode") {
        Some((mode, origin)) => mode
            .parse::<SslMode>()
            .map_err(|_| invalid(format!("unknown sslmode `{mode}` in {origin} ({SSL_MODES})")))?,
        // As in libpq: the public CAs vouch for any name, so only checking the name means anything.
        None if system_roots => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if system_roots && mode != SslMode::VerifyFull {
        return Err(invalid(format!("`sslmode={mode}` may not be used with `sslrootcert=system`"))
            .with_hint("use `sslmode=verify-full`: any public CA can sign for any other host"));
    }
    // The server never speaks TLS on a Unix socket, so there is nothing to set up or check.
    if mode == SslMode::Disable || all_unix {
        return Ok((mode, None));
    }

    let roots = match root {
        Some((_, _)) if system_roots => Some(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }),
        Some((path, origin)) => Some(load_roots(Path::new(path), &format!("`sslrootcert` in {origin}"))?),
        None => match env.home().map(|home| home.join(".postgresql").join("root.crt")) {
            Some(path) if path.exists() => Some(load_roots(&path, "the default root certificate")?),
            _ => None,
        },
    };
    if roots.is_none() && matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
        return Err(invalid(format!(
            "`sslmode={mode}` needs a root certificate to check the server's against, and none was given"
        ))
        .with_hint(
            "set `sslrootcert` (or env `PGSSLROOTCERT`) to the CA's certificate file, or put it at \
             `~/.postgresql/root.crt`; `sslrootcert=system` trusts the public CAs",
        ));
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let check = CertificateCheck {
        roots: roots.map(Arc::new),
        check_name: mode == SslMode::VerifyFull,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Connect, "could not set up TLS with the ring provider").with_source(e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(check))
        .with_no_client_auth();
    Ok((mode, Some(MakeRustlsConnect::new(config))))
}

/// The certificates in the PEM file `path`; `what` says where the path came from.
fn load_roots(path: &Path, what: &str) -> Result<RootCertStore> {
    let bytes = std::fs::read(path).map_err(|e| {
        invalid(format!("could not read the root certificate `{}` ({what})", path.display())).with_source(e)
    })?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| {
            invalid(format!("root certificate `{}` ({what}) is not valid PEM", path.display())).with_source(e)
        })?;
        roots.add(cert).map_err(|e| {
            invalid(format!("root certificate `{}` ({what}) holds a certificate that cannot be used", path.display()))
                .with_source(e)
        })?;
    }
    if roots.is_empty() {
        return Err(invalid(format!("root certificate `{}` ({what}) holds no certificate", path.display()))
            .with_hint("the file should hold one or more `-----BEGIN CERTIFICATE-----` blocks"));
    }
    Ok(roots)
}

/// How much of the server's certificate to check; the handshake's signatures are always checked.
#[derive(Debug)]
struct CertificateCheck {
    /// `None` accepts any certificate: libpq's `require` (and `prefer`) without a root certificate.
    roots: Option<Arc<RootCertStore>>,
    /// Whether the certificate must name the host (`verify-full`) or need only be signed (`verify-ca`).
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for CertificateCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(&cert, roots, intermediates, now, self.algorithms.all)?;
        if self.check_name {
            verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The password for `config`'s first host from the libpq password file `path`, if it has one and
/// may be used: libpq ignores a file that others can read, and so does pgsafe, with a warning.
fn passfile_password(path: &Path, config: &Config) -> Option<String> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("ignoring password file `{}`: {e}", path.display());
            return None;
        }
    };
    if !metadata.is_file() {
        tracing::warn!("ignoring password file `{}`: not a plain file", path.display());
        return None;
    }
    if metadata.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "ignoring password file `{}`: it has group or world access; permissions should be \
             u=rw (0600) or less",
            path.display()
        );
        return None;
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!("ignoring password file `{}`: {e}", path.display());
            return None;
        }
    };

    let host = match (config.get_hosts().first(), config.get_hostaddrs().first()) {
        (Some(host), _) => host_label(host),
        (None, Some(addr)) => addr.to_string(),
        (None, None) => "localhost".to_owned(),
    };
    // A socket folder matches `localhost` as well as itself (libpq: only its default folder).
    let mut hosts = vec![host.as_str()];
    if matches!(config.get_hosts().first(), Some(Host::Unix(_))) {
        hosts.push("localhost");
    }
    let port = config.get_ports().first().copied().unwrap_or(DEFAULT_PORT).to_string();
    pgpass_lookup(&text, &hosts, &port, config.get_dbname().unwrap_or_default(), config.get_user().unwrap_or_default())
}

/// The password of the first line of a password file's `text` that matches: libpq's
/// `hostname:port:database:username:password`, where a field of just `*` matches anything and `\`
/// makes the next character (`:` or `\`) literal. `hosts` are the names the host may match as.
fn pgpass_lookup(text: &str, hosts: &[&str], port: &str, dbname: &str, user: &str) -> Option<String> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let fields = pgpass_fields(line);
        let [host, port_field, dbname_field, user_field, password, ..] = fields.as_slice() else {
            return None;
        };
        let matches = |field: &PgpassField, want: &str| field.wildcard || field.text == want;
        (hosts.iter().any(|h| matches(host, h))
            && matches(port_field, port)
            && matches(dbname_field, dbname)
            && matches(user_field, user))
        .then(|| password.text.clone())
    })
}

/// One `:`-separated field of a password file line, unescaped.
struct PgpassField {
    text: String,
    /// The field is a bare `*` (an escaped `\*` is a literal star).
    wildcard: bool,
}

fn pgpass_fields(line: &str) -> Vec<PgpassField> {
    let mut fields = Vec::new();
    let mut text = String::new();
    // The field as written, to tell a bare `*` from an escaped one.
    let mut raw = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ':' => {
                fields.push(PgpassField { wildcard: raw == "*", text: std::mem::take(&mut text) });
                raw.clear();
            }
            '\\' => {
                raw.push(c);
                if let Some(escaped) = chars.next() {
                    text.push(escaped);
                    raw.push(escaped);
                }
            }
            c => {
                text.push(c);
                raw.push(c);
            }
        }
    }
    fields.push(PgpassField { wildcard: raw == "*", text });
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolves with exactly the environment `vars`, HOME in a folder that does not exist, and
    /// no default socket folder unless `vars` says `SOCKET_DIR_EXISTS`.
    fn resolve(
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

    fn ok(
        conninfo: Option<&str>,
        flags: (Option<&str>, Option<u16>, Option<&str>),
        vars: &[(&str, &str)],
    ) -> ConnectOptions {
        resolve(conninfo, flags, vars).unwrap_or_else(|e| panic!("{e}: {:?}", e.hint()))
    }

    fn err(conninfo: Option<&str>, vars: &[(&str, &str)]) -> Error {
        match resolve(conninfo, (None, None, None), vars) {
            Ok(options) => panic!("expected an error, got {options:?}"),
            Err(e) => e,
        }
    }

    const NO_FLAGS: (Option<&str>, Option<u16>, Option<&str>) = (None, None, None);

    fn password(options: &ConnectOptions) -> Option<&str> {
        options.config.get_password().map(|p| std::str::from_utf8(p).expect("test passwords are UTF-8"))
    }

    #[test]
    fn defaults_are_libpqs() {
        let options = ok(None, NO_FLAGS, &[]);
        assert_eq!(options.describe(), "osuser@localhost:5432/osuser");
        assert_eq!(options.ssl_mode(), SslMode::Prefer);
        assert_eq!(options.config.get_application_name(), Some("pgsafe"));
        assert_eq!(password(&options), None);
        assert_eq!(options.passfile.as_deref(), Some(Path::new("/nonexistent/pgsafe-test-home/.pgpass")));

        let options = ok(None, NO_FLAGS, &[("SOCKET_DIR_EXISTS", "1")]);
        assert_eq!(options.describe(), "osuser@/var/run/postgresql:5432/osuser");
        assert!(options.tls.is_none(), "no TLS over a Unix socket");

        // The database defaults to the user, wherever the user came from.
        let options = ok(None, (None, None, Some("alice")), &[]);
        assert_eq!(options.describe(), "alice@localhost:5432/alice");
        let options = ok(None, NO_FLAGS, &[("USER", "bob"), ("LOGNAME", "carol")]);
        assert_eq!(options.dbname(), "bob");
        let options = ok(None, NO_FLAGS, &[("USER", ""), ("LOGNAME", "carol")]);
        assert_eq!(options.dbname(), "carol");
    }

    #[test]
    fn flags_beat_the_connection_string_which_beats_the_environment() {
        let env = [
            ("PGHOST", "envhost"),
            ("PGPORT", "7000"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
            ("PGAPPNAME", "envapp"),
        ];
        let conninfo = "host=cihost port=6000 user=ciuser dbname=cidb";

        let options = ok(Some(conninfo), (Some("flaghost"), Some(5000), Some("flaguser")), &env);
        assert_eq!(options.describe(), "flaguser@flaghost:5000/cidb");
        assert_eq!(options.config.get_application_name(), Some("envapp"));

        let options = ok(Some(conninfo), NO_FLAGS, &env);
        assert_eq!(options.describe(), "ciuser@cihost:6000/cidb");

        let options = ok(Some("dbname=cidb"), NO_FLAGS, &env);
        assert_eq!(options.describe(), "envuser@envhost:7000/cidb");

        let options = ok(None, NO_FLAGS, &env);
        assert_eq!(options.describe(), "envuser@envhost:7000/envdb");

        // A plain name is a database name, and still lets the environment fill the rest.
        let options = ok(Some("plaindb"), NO_FLAGS, &env);
        assert_eq!(options.describe(), "envuser@envhost:7000/plaindb");
    }

    #[test]
    fn database_url_stands_in_for_a_missing_connection_string_only() {
        let env = [
            ("DATABASE_URL", "postgres://urluser@urlhost:6543/urldb"),
            ("PGHOST", "envhost"),
            ("PGDATABASE", "envdb"),
            ("PGPASSWORD", "envpw"),
        ];
        let options = ok(None, NO_FLAGS, &env);
        assert_eq!(options.describe(), "urluser@urlhost:6543/urldb");
        // The environment still fills what the URL leaves out.
        assert_eq!(password(&options), Some("envpw"));
        assert_eq!(options.password_origin, Some(Origin::Env("PGPASSWORD")));

        // The flags still win over it.
        let options = ok(None, (Some("flaghost"), None, None), &env);
        assert_eq!(options.describe(), "urluser@flaghost:6543/urldb");

        // With `-d`, DATABASE_URL plays no part at all.
        let options = ok(Some("dbname=cidb"), NO_FLAGS, &env);
        assert_eq!(options.describe(), "osuser@envhost:5432/cidb");
        let options = ok(Some(""), NO_FLAGS, &env);
        assert_eq!(options.dbname(), "urldb", "an empty -d counts as no -d");

        let e = err(None, &[("DATABASE_URL", "postgres://u:pw@h:notaport/db")]);
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), "invalid port `notaport` in env `DATABASE_URL`");
    }

    #[test]
    fn uris_are_parsed_like_libpq() {
        let options = ok(
            Some(
                "postgresql://u%40x:p%3Aw%40d@db.example.com:6000/my%20db?sslmode=disable&application_name=nightly&connect_timeout=7",
            ),
            NO_FLAGS,
            &[],
        );
        assert_eq!(options.describe(), "u@x@db.example.com:6000/my db");
        assert_eq!(password(&options), Some("p:w@d"));
        assert_eq!(options.ssl_mode(), SslMode::Disable);
        assert_eq!(options.config.get_application_name(), Some("nightly"));
        assert_eq!(options.config.get_connect_timeout(), Some(&Duration::from_secs(7)));

        let options = ok(Some("postgres://%2Ftmp%2Fsock/db"), NO_FLAGS, &[]);
        assert_eq!(options.describe(), "osuser@/tmp/sock:5432/db");

        let options = ok(Some("postgres://[::1]:6000,other:6001/db"), NO_FLAGS, &[]);
        assert_eq!(options.describe(), "osuser@[::1]:6000,other:6001/db");

        let options = ok(Some("postgresql://"), NO_FLAGS, &[("PGHOST", "envhost")]);
        assert_eq!(options.describe(), "osuser@envhost:5432/osuser");

        let options = ok(Some("postgres://h/db?ssl=true"), NO_FLAGS, &[]);
        assert_eq!(options.ssl_mode(), SslMode::Require);

        let options = ok(Some("postgres://h?host=/tmp/elsewhere"), NO_FLAGS, &[]);
        assert_eq!(options.describe(), "osuser@/tmp/elsewhere:5432/osuser");
    }

    #[test]
    fn key_value_strings_are_parsed_like_libpq() {
        let options = ok(Some(r"host = h1,h2  port=1,2 user='my user' password=it\'s dbname=a\ b"), NO_FLAGS, &[]);
        assert_eq!(password(&options), Some("it's"));
        assert_eq!(options.describe(), "my user@h1:1,h2:2/a b");

        let options = ok(Some(r"password='a \'quoted\' \\ word' user=u"), NO_FLAGS, &[]);
        assert_eq!(password(&options), Some(r"a 'quoted' \ word"));
        assert_eq!(options.password_origin, Some(Origin::ConnInfo));
        assert!(options.passfile.is_none(), "a given password skips the file");

        // Later repeats win, and an empty value means the default.
        let options = ok(Some("dbname=first dbname=second host="), NO_FLAGS, &[]);
        assert_eq!(options.describe(), "osuser@localhost:5432/second");

        let options = ok(Some("hostaddr=127.0.0.1 port=6000"), NO_FLAGS, &[]);
        assert_eq!(options.describe(), "osuser@127.0.0.1:6000/osuser");
        assert!(options.config.get_hosts().is_empty(), "no default host beside a hostaddr");
    }

    #[test]
    fn bad_connection_strings_name_the_bad_part_and_never_the_password() {
        let cases: &[(&str, &str)] = &[
            ("host=h password='s3cr3t", "invalid connection string: unterminated quoted value for `password`"),
            (
                "host=h password=s3cr3t s3cr3t",
                "invalid connection string: text without `=` after the value of `password` (quote values that hold spaces: `password='...'`)",
            ),
            (
                "host=h password=s3cr3t s3cr3t=s3cr3t",
                "unknown connection option after `password` in the connection string",
            ),
            ("s3cr3t host=h", "invalid connection string: it does not start with `key=value`"),
            (
                "postgres://u:s3cr3t%zz@h/db",
                "invalid connection string: invalid percent-encoding in the URI's password",
            ),
            ("postgres://u:s3cr3t@[::1/db", "invalid connection string: unterminated `[` in an IPv6 host address"),
            (
                "password=s3cr3t sslcert=client.crt",
                "connection option `sslcert` in the connection string is not supported by pgsafe",
            ),
            ("hots=h password=s3cr3t", "unknown connection option `hots` in the connection string"),
            (
                "postgres://u:s3cr3t@h/db?sslmode=verify-everything",
                "unknown sslmode `verify-everything` in the connection string (expected `disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full`)",
            ),
            ("password=s3cr3t keepalives=often", "invalid `keepalives` `often` in the connection string"),
            ("password=s3cr3t connect_timeout=soon", "invalid `connect_timeout` `soon` in the connection string"),
            ("password=s3cr3t hostaddr=db.example.com", "invalid `hostaddr` `db.example.com` in the connection string"),
        ];
        for (conninfo, message) in cases {
            let e = err(Some(conninfo), &[]);
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{conninfo}");
            assert_eq!(e.to_string(), *message, "{conninfo}");
            let everything = format!("{e} {e:?} {:?}", e.hint());
            assert!(!everything.contains("s3cr3t"), "{conninfo}: {everything}");
        }
        let e = err(None, &[("PGPORT", "54x")]);
        assert_eq!(e.to_string(), "invalid port `54x` in env `PGPORT`");
    }

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

    #[test]
    fn ssl_modes_parse_and_print_as_libpq_spells_them() {
        for mode in [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(mode.as_str().parse::<SslMode>().ok(), Some(mode));
            assert_eq!(mode.to_string(), mode.as_str());
        }
        assert_eq!(SslMode::default(), SslMode::Prefer);
        for bad in ["", "Require", "verify_full", "true"] {
            let e = bad.parse::<SslMode>().expect_err(bad);
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn verifying_modes_need_a_root_certificate() {
        for mode in ["verify-ca", "verify-full"] {
            let e = err(None, &[("PGSSLMODE", mode), ("PGHOST", "db")]);
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.to_string().contains(&format!("`sslmode={mode}` needs a root certificate")), "{e}");
        }
        // Over a Unix socket there is no TLS, so nothing to check either, as in libpq.
        let options = ok(Some("host=/tmp sslmode=verify-full"), NO_FLAGS, &[]);
        assert!(options.tls.is_none());

        let e = err(Some("host=db sslrootcert=/nonexistent/root.crt sslmode=require"), &[]);
        assert!(e.to_string().starts_with("could not read the root certificate `/nonexistent/root.crt`"), "{e}");

        // `system` means the public CAs, and then nothing but verify-full.
        let options = ok(Some("host=db sslrootcert=system"), NO_FLAGS, &[]);
        assert_eq!(options.ssl_mode(), SslMode::VerifyFull);
        assert!(options.tls.is_some());
        let e = err(Some("host=db sslrootcert=system sslmode=require"), &[]);
        assert_eq!(e.to_string(), "`sslmode=require` may not be used with `sslrootcert=system`");
    }

    #[test]
    fn a_root_certificate_file_must_hold_certificates() {
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let conninfo = format!("host=db sslmode=verify-ca sslrootcert={}", empty.display());
        let e = err(Some(&conninfo), &[]);
        assert!(e.to_string().ends_with("holds no certificate"), "{e}");

        // The default `~/.postgresql/root.crt` is read when it exists, as in libpq.
        std::fs::create_dir(dir.path().join(".postgresql")).expect("mkdir");
        std::fs::write(dir.path().join(".postgresql/root.crt"), "").expect("write");
        let home = dir.path().display().to_string();
        let e = err(Some("host=db"), &[("HOME", &home)]);
        assert!(e.to_string().contains("(the default root certificate)"), "{e}");
    }

    #[test]
    fn gssencmode_is_accepted_only_where_it_changes_nothing() {
        ok(Some("host=db gssencmode=disable"), NO_FLAGS, &[]);
        ok(None, NO_FLAGS, &[("PGGSSENCMODE", "prefer")]);
        let e = err(Some("host=db gssencmode=require"), &[]);
        assert!(e.to_string().contains("does not support GSSAPI"), "{e}");
    }

    const PGPASS: &str = r"# a comment:*:*:*:never
db.example.com:5432:app:alice:first
db.example.com:5432:app:alice:second
db.example.com:*:*:bob:bob-anywhere
*:*:*:carol:with\:colon\\and\ escapes
localhost:5432:*:dave:dave-local
/tmp/sock:5432:*:erin:erin-socket
we\:ird:5432:*:frank:frank-escaped
\*:5432:*:gina:gina-literal-star
short:5432:app:alice
";

    fn lookup(hosts: &[&str], port: &str, dbname: &str, user: &str) -> Option<String> {
        pgpass_lookup(PGPASS, hosts, port, dbname, user)
    }

    #[test]
    fn pgpass_first_matching_line_wins() {
        assert_eq!(lookup(&["db.example.com"], "5432", "app", "alice").as_deref(), Some("first"));
        assert_eq!(lookup(&["db.example.com"], "5433", "app", "alice"), None);
        assert_eq!(lookup(&["db.example.com"], "5432", "other", "alice"), None);
        assert_eq!(lookup(&["short"], "5432", "app", "alice"), None, "a line without a password field");
        assert_eq!(lookup(&["# a comment"], "1", "2", "3"), None, "comment lines");
    }

    #[test]
    fn pgpass_wildcards_match_anything_and_escapes_are_literal() {
        assert_eq!(lookup(&["db.example.com"], "6000", "any", "bob").as_deref(), Some("bob-anywhere"));
        assert_eq!(lookup(&["anywhere"], "1", "x", "carol").as_deref(), Some(r"with:colon\and escapes"));
        assert_eq!(lookup(&["we:ird"], "5432", "x", "frank").as_deref(), Some("frank-escaped"));
        // `\*` is a host named `*`, not a wildcard.
        assert_eq!(lookup(&["elsewhere"], "5432", "x", "gina"), None);
        assert_eq!(lookup(&["*"], "5432", "x", "gina").as_deref(), Some("gina-literal-star"));
    }

    #[test]
    fn pgpass_unix_sockets_match_localhost_and_their_folder() {
        let config = |host: &str, user: &str| {
            let mut config = Config::new();
            config.host(host).port(5432).user(user).dbname("app");
            config
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pgpass");
        std::fs::write(&path, PGPASS).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");

        assert_eq!(passfile_password(&path, &config("/var/run/postgresql", "dave")).as_deref(), Some("dave-local"));
        assert_eq!(passfile_password(&path, &config("/tmp/sock", "erin")).as_deref(), Some("erin-socket"));
        // Over TCP, `localhost` is just a host name.
        assert_eq!(passfile_password(&path, &config("127.0.0.1", "dave")), None);
        assert_eq!(passfile_password(&path, &config("localhost", "dave")).as_deref(), Some("dave-local"));
    }

    #[test]
    fn pgpass_readable_by_others_is_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "*:*:*:*:pw\n").expect("write");
        let mut config = Config::new();
        config.host("db").port(5432).user("u").dbname("d");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(passfile_password(&path, &config), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert_eq!(passfile_password(&path, &config), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(passfile_password(&path, &config).as_deref(), Some("pw"));
        assert_eq!(passfile_password(&dir.path().join("missing"), &config), None);
    }

    #[test]
    fn the_passfile_comes_from_the_options_then_pgpassfile_then_home() {
        let options = ok(Some("host=db passfile=/x/pass"), NO_FLAGS, &[("PGPASSFILE", "/y/pass")]);
        assert_eq!(options.passfile.as_deref(), Some(Path::new("/x/pass")));
        let options = ok(Some("host=db"), NO_FLAGS, &[("PGPASSFILE", "/y/pass")]);
        assert_eq!(options.passfile.as_deref(), Some(Path::new("/y/pass")));
        let options = ok(Some("host=db"), NO_FLAGS, &[("HOME", "/home/z")]);
        assert_eq!(options.passfile.as_deref(), Some(Path::new("/home/z/.pgpass")));
    }
}
