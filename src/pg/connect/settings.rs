//! Which connection setting wins: the libpq keywords pgsafe knows and the environment variable of
//! each, the order of precedence (the `-h -p -U` flags, then the `-d` connection string or
//! `DATABASE_URL`, then the `PG*` variables, then libpq's defaults), and where each value came from, for
//! messages that tell the user what to fix.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::Config;
use tokio_postgres::config::Host;

use super::conninfo::{parse_conninfo, quote_conninfo_value};
use super::tls::tls_settings;
use super::{ConnectOptions, DEFAULT_APPLICATION_NAME, DEFAULT_PORT, DEFAULT_SOCKET_DIR, invalid};
use crate::error::Result;

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

impl ConnectOptions {
    /// [`ConnectOptions::new`] with the environment given, so that tests need not change the
    /// process's own.
    pub(super) fn from_env_with(
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

        let root_cert = params.get("sslrootcert").map(str::to_owned);
        Ok(ConnectOptions { config, ssl_mode, tls, passfile, password_origin, root_cert })
    }
}

/// What [`ConnectOptions::new`] reads besides its arguments; tests give their own.
pub(super) struct Environment<'a> {
    pub(super) var: &'a dyn Fn(&str) -> Option<String>,
    /// Whether libpq's default Unix socket folder exists on this machine.
    pub(super) default_socket_dir_exists: bool,
}

impl Environment<'_> {
    /// An environment variable; empty counts as unset.
    fn var(&self, name: &str) -> Option<String> {
        (self.var)(name).filter(|value| !value.is_empty())
    }

    pub(super) fn home(&self) -> Option<PathBuf> {
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
pub(super) enum Origin {
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
pub(super) struct Params(BTreeMap<&'static str, (String, Origin)>);

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

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|(value, _)| value.as_str())
    }

    pub(super) fn get_with_origin(&self, key: &str) -> Option<(&str, &Origin)> {
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
#[cfg(test)]
mod tests {
    use super::super::SslMode;
    use super::super::testing::*;
    use super::*;
    use crate::error::ErrorKind;
    use std::path::Path;

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
    fn gssencmode_is_accepted_only_where_it_changes_nothing() {
        ok(Some("host=db gssencmode=disable"), NO_FLAGS, &[]);
        ok(None, NO_FLAGS, &[("PGGSSENCMODE", "prefer")]);
        let e = err(Some("host=db gssencmode=require"), &[]);
        assert!(e.to_string().contains("does not support GSSAPI"), "{e}");
    }
}
