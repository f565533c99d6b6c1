//! A failed connection as one message a user can act on: a wrong password and where it came from, a
//! user or database the server turns away, TLS refused or a certificate that does not check out, nobody
//! listening, a host that does not resolve. Never the password.

use std::io;
use std::net::IpAddr;

use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;

use super::settings::Origin;
use super::{ConnectOptions, DEFAULT_PORT};
use crate::error::{Error, ErrorKind};

impl ConnectOptions {
    /// The one failure in `e` as a user should read it.
    pub(super) async fn explain(&self, e: tokio_postgres::Error, password: Option<&Origin>) -> Error {
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

/// Whether the server turned a plain connection away, which `sslmode=allow` answers with TLS.
pub(super) fn is_turned_away(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
}

pub(super) fn is_tls_failure(e: &tokio_postgres::Error) -> bool {
    e.to_string() == TLS_FAILURE
}

/// The text of the error directly under `e`, such as the driver's reason for a TLS failure.
fn first_source_text(e: &tokio_postgres::Error) -> Option<String> {
    std::error::Error::source(e).map(ToString::to_string)
}

/// `e` and its causes, joined by `: `, for the rare failure no message above explains.
pub(super) fn error_chain_text(e: &(dyn std::error::Error + 'static)) -> String {
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
