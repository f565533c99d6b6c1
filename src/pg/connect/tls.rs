//! TLS as `sslmode` asks: the modes, the root certificates to check the server's against, the check
//! itself (rustls with the ring provider, so no OpenSSL), and what the server answered when asked for
//! TLS, which the fallback of `sslmode=prefer` and the messages decide by.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::Socket;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::invalid;
use super::settings::{Environment, Params};
use crate::error::{Error, ErrorKind, Result};

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

/// The TLS mode and, unless TLS is never tried, the connector that checks certificates as it says.
pub(super) fn tls_settings(
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

/// What the server answered when one connection attempt asked it for TLS.
///
/// The driver says it only in English text, so pgsafe's connector records it: the driver makes the
/// connector once the socket is connected, just before it sends the SSLRequest, and calls it only when
/// the server answered `S` (yes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum TlsAnswer {
    /// TLS was not asked for, or the attempt failed before (no socket).
    #[default]
    NotAsked,
    /// Asked, and the server did not say yes: it said `N`, or the attempt failed before its answer.
    Asked,
    /// The server said yes, and the handshake began.
    Accepted,
}

/// The TLS connector of one connection attempt: rustls, recording the server's answer ([`TlsAnswer`])
/// and marking a handshake that fails as [`HandshakeFailed`].
#[derive(Clone)]
pub(super) struct WatchedTls {
    inner: MakeRustlsConnect,
    answer: Arc<Mutex<TlsAnswer>>,
}

impl WatchedTls {
    pub(super) fn new(inner: &MakeRustlsConnect) -> Self {
        WatchedTls { inner: inner.clone(), answer: Arc::default() }
    }

    /// The answer of the last host tried.
    pub(super) fn answer(&self) -> TlsAnswer {
        self.answer.lock().map(|answer| *answer).unwrap_or_default()
    }

    fn record(answer: &Mutex<TlsAnswer>, now: TlsAnswer) {
        if let Ok(mut answer) = answer.lock() {
            *answer = now;
        }
    }
}

type RustlsConnect = <MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect;
type RustlsStream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

impl MakeTlsConnect<Socket> for WatchedTls {
    type Stream = RustlsStream;
    type TlsConnect = WatchedConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> std::result::Result<WatchedConnect, Self::Error> {
        // Made for each host the driver tries, so the answer is always the last host's.
        WatchedTls::record(&self.answer, TlsAnswer::Asked);
        let inner = MakeTlsConnect::<Socket>::make_tls_connect(&mut self.inner, domain)?;
        Ok(WatchedConnect { inner, answer: self.answer.clone() })
    }
}

/// The handshake of one connection, made by [`WatchedTls`].
pub(super) struct WatchedConnect {
    inner: RustlsConnect,
    answer: Arc<Mutex<TlsAnswer>>,
}

impl TlsConnect<Socket> for WatchedConnect {
    type Stream = RustlsStream;
    type Error = HandshakeFailed;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<RustlsStream, HandshakeFailed>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        WatchedTls::record(&self.answer, TlsAnswer::Accepted);
        let handshake = self.inner.connect(stream);
        Box::pin(async move { handshake.await.map_err(HandshakeFailed) })
    }
}

/// A TLS handshake that the server agreed to and that then failed: the certificate did not check out,
/// no protocol version or cipher in common, the connection broke. Its cause is rustls's error (inside
/// the I/O error) or the socket's.
#[derive(Debug)]
pub(super) struct HandshakeFailed(pub(super) io::Error);

impl fmt::Display for HandshakeFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the TLS handshake failed")
    }
}

impl std::error::Error for HandshakeFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
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
#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::error::ErrorKind;

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
}
