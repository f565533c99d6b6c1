//! The same connection for a child process (`pgsafe migrate -- npx prisma migrate deploy`), given
//! through its environment only: `DATABASE_URL` for ORMs and `PG*` variables for libpq, with the
//! password in both and never on a command line or in a log.
//!
//! `DATABASE_URL` for a Unix socket is `postgresql://USER:PASSWORD@localhost:PORT/DB?host=/socket/dir`:
//! the one form that libpq (so psql and psycopg), node-postgres and Prisma all read as that socket.
//! libpq and node-postgres let the `host` parameter override the authority's `localhost`; Prisma
//! documents exactly this form for sockets and rejects a percent-encoded path as the host, which libpq
//! would take. For TCP it is the plain `postgresql://USER:PASSWORD@HOST:PORT/DB`. `sslmode` is added
//! only when it is not libpq's default `prefer` (Prisma knows `disable`, `prefer` and `require`;
//! `verify-ca` and `verify-full` are for libpq and node-postgres), with `sslrootcert` when there is one.

use std::fmt;
use std::process::Command;

use tokio_postgres::config::Host;

use super::pgpass::passfile_password;
use super::{ConnectOptions, DEFAULT_PORT, SslMode, host_label};

/// The libpq environment variables that choose a connection. A child gets pgsafe's values for those
/// pgsafe sets and none of the others, so that nothing left in pgsafe's own environment (a
/// `PGHOSTADDR`, a `PGSERVICE`) sends it elsewhere.
const LIBPQ_CONNECTION_VARS: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGSSLMODE",
    "PGREQUIRESSL",
    "PGSSLNEGOTIATION",
    "PGSSLCOMPRESSION",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSSLCERTMODE",
    "PGSSLROOTCERT",
    "PGSSLCRL",
    "PGSSLCRLDIR",
    "PGSSLSNI",
    "PGREQUIREPEER",
    "PGSSLMINPROTOCOLVERSION",
    "PGSSLMAXPROTOCOLVERSION",
    "PGGSSENCMODE",
    "PGKRBSRVNAME",
    "PGGSSLIB",
    "PGGSSDELEGATION",
    "PGCHANNELBINDING",
    "PGREQUIREAUTH",
    "PGCONNECT_TIMEOUT",
    "PGCLIENTENCODING",
    "PGTARGETSESSIONATTRS",
    "PGLOADBALANCEHOSTS",
];

/// The environment that gives a child process the connection of a [`ConnectOptions`]; see the module
/// documentation for the form of `DATABASE_URL`. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ChildEnv {
    vars: Vec<(&'static str, String)>,
}

impl ChildEnv {
    /// The variables to set, in a stable order.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(name, value)| (*name, value.as_str()))
    }

    /// The value of one variable, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| *n == name).map(|(_, value)| value.as_str())
    }

    /// Sets these variables on `command` and removes the other libpq connection variables it would
    /// inherit. Nothing goes on its command line.
    pub fn apply(&self, command: &mut Command) {
        for name in LIBPQ_CONNECTION_VARS {
            if self.get(name).is_none() {
                command.env_remove(name);
            }
        }
        command.envs(self.vars());
    }
}

impl fmt::Debug for ChildEnv {
    // Not derived: the password is in `PGPASSWORD` and in `DATABASE_URL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = self.get("PGPASSWORD").filter(|p| !p.is_empty());
        let mut map = f.debug_map();
        for (name, value) in self.vars() {
            match (name, password) {
                ("PGPASSWORD", _) => map.entry(&name, &"<hidden>"),
                ("DATABASE_URL", Some(password)) => {
                    map.entry(&name, &value.replace(&percent_encode(password, b""), "<hidden>"))
                }
                _ => map.entry(&name, &value),
            };
        }
        map.finish()
    }
}

impl ConnectOptions {
    /// The environment a child process needs to connect where these options connect, as the same
    /// user, to the same database: `DATABASE_URL`, and `PGHOST`, `PGHOSTADDR`, `PGPORT`, `PGUSER`,
    /// `PGDATABASE`, `PGPASSWORD` (when there is a password, from the settings or the password
    /// file), `PGSSLMODE`, `PGSSLROOTCERT`, `PGCONNECT_TIMEOUT`, `PGOPTIONS` (which carries `--role`)
    /// where they apply. Apply it with [`ChildEnv::apply`].
    pub fn child_env(&self) -> ChildEnv {
        let config = &self.config;
        let password = match config.get_password() {
            Some(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            None => self.passfile.as_ref().and_then(|path| passfile_password(path, config)),
        };
        let hosts: Vec<String> = config.get_hosts().iter().map(host_label).collect();
        let hostaddrs: Vec<String> = config.get_hostaddrs().iter().map(ToString::to_string).collect();
        let ports: Vec<String> = config.get_ports().iter().map(ToString::to_string).collect();
        let timeout = config.get_connect_timeout().map(|t| t.as_secs().to_string());
        let options = config.get_options().filter(|o| !o.is_empty());

        let mut vars = vec![("DATABASE_URL", self.database_url(password.as_deref()))];
        let mut set = |name: &'static str, value: Option<String>| {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                vars.push((name, value));
            }
        };
        set("PGHOST", Some(hosts.join(",")));
        set("PGHOSTADDR", Some(hostaddrs.join(",")));
        set("PGPORT", Some(ports.join(",")));
        set("PGUSER", Some(self.user().to_owned()));
        set("PGDATABASE", Some(self.dbname().to_owned()));
        set("PGPASSWORD", password);
        set("PGSSLMODE", Some(self.ssl_mode.as_str().to_owned()));
        set("PGSSLROOTCERT", self.root_cert.clone());
        set("PGCONNECT_TIMEOUT", timeout);
        set("PGOPTIONS", options.map(str::to_owned));
        ChildEnv { vars }
    }

    /// `postgresql://...` for these options and `password` (see the module documentation).
    fn database_url(&self, password: Option<&str>) -> String {
        let config = &self.config;
        let mut url = String::from("postgresql://");
        url.push_str(&percent_encode(self.user(), b""));
        if let Some(password) = password {
            url.push(':');
            url.push_str(&percent_encode(password, b""));
        }
        url.push('@');

        let ports = config.get_ports();
        let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(DEFAULT_PORT);
        let mut params: Vec<(&str, String)> = Vec::new();
        let socket = match config.get_hosts() {
            [Host::Unix(dir)] => Some(dir),
            _ => None,
        };
        if let Some(dir) = socket {
            url.push_str(&format!("localhost:{}", port(0)));
            params.push(("host", dir.display().to_string()));
        } else {
            let names: Vec<String> = if config.get_hosts().is_empty() {
                config.get_hostaddrs().iter().map(ToString::to_string).collect()
            } else {
                config.get_hosts().iter().map(host_label).collect()
            };
            let authority: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, name)| match name {
                    name if name.contains(':') => format!("[{name}]:{}", port(i)),
                    name => format!("{}:{}", percent_encode(name, b""), port(i)),
                })
                .collect();
            url.push_str(&authority.join(","));
            if !config.get_hosts().is_empty() && !config.get_hostaddrs().is_empty() {
                let addrs: Vec<String> = config.get_hostaddrs().iter().map(ToString::to_string).collect();
                params.push(("hostaddr", addrs.join(",")));
            }
        }
        url.push('/');
        url.push_str(&percent_encode(self.dbname(), b""));

        if self.ssl_mode != SslMode::Prefer {
            params.push(("sslmode", self.ssl_mode.as_str().to_owned()));
        }
        if let Some(root) = &self.root_cert {
            params.push(("sslrootcert", root.clone()));
        }
        if let Some(timeout) = config.get_connect_timeout() {
            params.push(("connect_timeout", timeout.as_secs().to_string()));
        }
        if let Some(options) = config.get_options().filter(|o| !o.is_empty()) {
            params.push(("options", options.to_owned()));
        }
        for (i, (key, value)) in params.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(key);
            url.push('=');
            // `/` may stand as it is in a query, and the socket folder reads better with it.
            url.push_str(&percent_encode(value, b"/"));
        }
        url
    }
}

/// `s` with every byte but RFC 3986's unreserved characters (and those in `keep`) as `%XX`.
fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::super::testing::*;

    #[test]
    fn a_unix_socket_goes_in_the_host_parameter_beside_localhost() {
        let options = ok(
            Some("host='/tmp/pg sock' port=6543 user='app user' dbname='my db' password='p@ss:w/rd%'"),
            NO_FLAGS,
            &[],
        );
        let env = options.child_env();
        assert_eq!(
            env.get("DATABASE_URL"),
            Some("postgresql://app%20user:p%40ss%3Aw%2Frd%25@localhost:6543/my%20db?host=/tmp/pg%20sock")
        );
        assert_eq!(env.get("PGHOST"), Some("/tmp/pg sock"));
        assert_eq!(env.get("PGPORT"), Some("6543"));
        assert_eq!(env.get("PGUSER"), Some("app user"));
        assert_eq!(env.get("PGDATABASE"), Some("my db"));
        assert_eq!(env.get("PGPASSWORD"), Some("p@ss:w/rd%"));
        assert_eq!(env.get("PGSSLMODE"), Some("prefer"));
        assert_eq!(env.get("PGHOSTADDR"), None);
    }

    #[test]
    fn tcp_hosts_tls_settings_and_the_role_carry_over() {
        let options = ok(
            Some("host=db.example.com,::1 port=5433,5434 user=u dbname=d sslmode=verify-full sslrootcert=system connect_timeout=7"),
            NO_FLAGS,
            &[],
        )
        .with_role("migrator");
        let env = options.child_env();
        assert_eq!(
            env.get("DATABASE_URL"),
            Some(
                "postgresql://u@db.example.com:5433,[::1]:5434/d?sslmode=verify-full&sslrootcert=system\
                 &connect_timeout=7&options=-c%20role%3Dmigrator"
            )
        );
        assert_eq!(env.get("PGHOST"), Some("db.example.com,::1"));
        assert_eq!(env.get("PGPORT"), Some("5433,5434"));
        assert_eq!(env.get("PGSSLMODE"), Some("verify-full"));
        assert_eq!(env.get("PGSSLROOTCERT"), Some("system"));
        assert_eq!(env.get("PGCONNECT_TIMEOUT"), Some("7"));
        assert_eq!(env.get("PGOPTIONS"), Some("-c role=migrator"));
        assert_eq!(env.get("PGPASSWORD"), None, "no password given, none in the (missing) password file");

        let options = ok(Some("hostaddr=10.0.0.5 user=u dbname=d"), NO_FLAGS, &[]);
        let env = options.child_env();
        assert_eq!(env.get("DATABASE_URL"), Some("postgresql://u@10.0.0.5:5432/d"));
        assert_eq!(env.get("PGHOSTADDR"), Some("10.0.0.5"));
        assert_eq!(env.get("PGHOST"), None);
    }

    #[test]
    fn the_password_comes_from_the_password_file_too() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "db:5432:d:u:from-file\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let conninfo = format!("host=db user=u dbname=d passfile={}", path.display());
        let env = ok(Some(&conninfo), NO_FLAGS, &[]).child_env();
        assert_eq!(env.get("PGPASSWORD"), Some("from-file"));
        assert_eq!(env.get("DATABASE_URL"), Some("postgresql://u:from-file@db:5432/d"));
    }

    #[test]
    fn debug_hides_the_password() {
        let env = ok(Some("host=/tmp user=u dbname=d password=s3cr3t:pw"), NO_FLAGS, &[]).child_env();
        let shown = format!("{env:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("\"PGPASSWORD\": \"<hidden>\""), "{shown}");
        assert!(shown.contains("postgresql://u:<hidden>@localhost:5432/d?host=/tmp"), "{shown}");
    }

    #[test]
    fn apply_sets_ours_and_removes_the_inherited_rest() {
        let env = ok(Some("host=/tmp user=u dbname=d"), NO_FLAGS, &[]).child_env();
        let mut command = std::process::Command::new("true");
        command.env("PGSERVICE", "elsewhere").env("PGHOSTADDR", "10.9.9.9");
        env.apply(&mut command);
        let set: Vec<(String, Option<String>)> = command
            .get_envs()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.map(|v| v.to_string_lossy().into_owned())))
            .collect();
        assert!(set.contains(&("PGSERVICE".to_owned(), None)), "{set:?}");
        assert!(set.contains(&("PGHOSTADDR".to_owned(), None)), "{set:?}");
        assert!(set.contains(&("PGHOST".to_owned(), Some("/tmp".to_owned()))), "{set:?}");
        assert!(set.contains(&("PGPASSWORD".to_owned(), None)), "no password: an inherited one is removed: {set:?}");
    }
}
