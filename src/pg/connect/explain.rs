//! A failed connection as one message a user can act on: a wrong password and where it came from, a
//! user or database the server turns away, TLS refused or a certificate that does not check out, nobody
//! listening, a host that does not resolve. Never the password.

use std::io;
use std::net::IpAddr;

use tokio_postgres::config::Host;

use super::settings::Origin;
use super::tls::{HandshakeFailed, TlsAnswer};
use super::{ConnectOptions, DEFAULT_PORT, SslMode};
use crate::error::{Error, ErrorKind, SqlState};

impl ConnectOptions {
    /// The one failure in `e` as a user should read it; `tls` is what the server answered when the
    /// failed attempt asked it for TLS.
    pub(super) async fn explain(&self, e: tokio_postgres::Error, tls: TlsAnswer, password: Option<&Origin>) -> Error {
        let address = self.address();
        let user = self.user();
        let failed = |message: String| Error::new(ErrorKind::Connect, message);

        if let Some(db) = e.as_db_error() {
            let code = SqlState::parse(db.code().code());
            let error = if code == Some(SqlState::INVALID_PASSWORD) {
                let hint = match password {
                    Some(Origin::Passfile(path)) => {
                        format!("the password came from `{}`; correct the line for this server there", path.display())
                    }
                    Some(origin) => format!("the password came from {origin}; check it"),
                    None => "set env `PGPASSWORD`, or add a line for this server to `~/.pgpass`".to_owned(),
                };
                failed(format!("password authentication failed for user `{user}` at `{address}`")).with_hint(hint)
            } else if code == Some(SqlState::INVALID_AUTHORIZATION_SPECIFICATION) {
                failed(format!("server at `{address}` turned away user `{user}`: {}", db.message())).with_hint(
                    "check the user name, and that the server's `pg_hba.conf` lets it in from here \
                     (with TLS, if it says `hostssl`)",
                )
            } else if code == Some(SqlState::INVALID_CATALOG_NAME) {
                failed(format!("database `{}` does not exist at `{address}`", self.dbname()))
                    .with_hint("create it, or name another database with `-d`")
            } else {
                failed(format!("could not connect to `{}`: {}", self.describe(), db.message()))
            };
            let error = match code {
                Some(code) => error.with_sqlstate(code),
                None => error,
            };
            return error.with_source(e);
        }

        if let Some(handshake) = find_handshake_failure(&e) {
            let reason = find_rustls_error(&e).map_or_else(|| handshake.0.to_string(), ToString::to_string);
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

        // Asked for TLS and not given it, with nothing broken on the way: under any mode but `prefer`
        // (which goes on without TLS) the server answered `N`, or there was no host name to check its
        // certificate against.
        if tls == TlsAnswer::Asked && self.ssl_mode != SslMode::Prefer && find_io_error(&e).is_none() {
            if self.config.get_hosts().is_empty() {
                return failed(format!("TLS to `{address}` needs a host name to check the certificate against"))
                    .with_hint("set `host` to the server's name beside `hostaddr`")
                    .with_source(e);
            }
            return failed(format!("server at `{address}` does not support TLS, but sslmode={}", self.ssl_mode))
                .with_hint("turn on `ssl` in the server's configuration, or connect with `sslmode=prefer`")
                .with_source(e);
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

/// The driver's reason when the server asks for a password and there is none. Its own text, not the
/// server's, so no translation changes it, and the driver has no kind to tell it by; the integration
/// test `the_password_file_is_used_when_no_password_is_given_and_only_when_private` pins it.
const PASSWORD_MISSING: &str = "password missing";

/// Whether the server turned a plain connection away, which `sslmode=allow` answers with TLS.
pub(super) fn is_turned_away(e: &tokio_postgres::Error) -> bool {
    e.code().map(|code| code.code()) == Some(SqlState::INVALID_AUTHORIZATION_SPECIFICATION.as_str())
}

/// Whether the server agreed to TLS and the handshake then failed, which `sslmode=prefer` answers by
/// trying again without TLS.
pub(super) fn is_handshake_failure(e: &tokio_postgres::Error) -> bool {
    find_handshake_failure(e).is_some()
}

fn find_handshake_failure(e: &tokio_postgres::Error) -> Option<&HandshakeFailed> {
    causes(e).into_iter().find_map(|cause| cause.downcast_ref::<HandshakeFailed>())
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
