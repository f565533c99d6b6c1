//! Connecting as libpq would, against real servers: the settings reach the server, and each failure a
//! user can meet (wrong password, no such host, nobody listening, TLS refused or a certificate that
//! does not check out) is one plain message that names the target and never the password.
//!
//! The password and TLS tests start servers of their own, listening on 127.0.0.1 only.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use pgsafe::pg::{ConnectOptions, SslMode};
use pgsafe::{Error, ErrorKind};

use crate::support::{self, PrivateCluster, PrivateClusterOptions, TestDb};

/// The superuser's password on the servers started here.
const PASSWORD: &str = "correct-horse-7Qx";

/// A password that is wrong, and distinctive enough to search the error for.
const WRONG_PASSWORD: &str = "wrong-Zk93-battery";

/// A server that logs in over TCP with a password (SCRAM), and has no TLS.
fn password_server() -> &'static PrivateCluster {
    static SERVER: OnceLock<PrivateCluster> = OnceLock::new();
    SERVER.get_or_init(|| {
        support::start_private(&PrivateClusterOptions {
            password: Some(PASSWORD.to_owned()),
            hba: Some("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256".to_owned()),
            ..PrivateClusterOptions::default()
        })
    })
}

/// A server that takes only TLS over TCP (`hostssl`), with a certificate for `localhost` signed by a
/// test CA.
struct TlsServer {
    cluster: PrivateCluster,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// A CA that signed nothing the server has.
    other_ca: PathBuf,
}

fn tls_server() -> &'static TlsServer {
    static SERVER: OnceLock<TlsServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let certs = tempfile::tempdir().expect("temp dir for the certificates");
        let dir = certs.path();
        make_ca(dir, "ca", "pgsafe test CA");
        make_ca(dir, "other-ca", "pgsafe other test CA");
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-nodes",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        let read = |name: &str| std::fs::read(dir.join(name)).expect(name);

        let cluster = support::start_private(&PrivateClusterOptions {
            password: Some(PASSWORD.to_owned()),
            hba: Some("local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256".to_owned()),
            conf: vec![
                "ssl = on".to_owned(),
                "ssl_cert_file = 'server.crt'".to_owned(),
                "ssl_key_file = 'server.key'".to_owned(),
            ],
            data_files: vec![
                ("server.crt".to_owned(), read("server.crt")),
                ("server.key".to_owned(), read("server.key")),
            ],
        });
        // Kept in the cluster's folder, which goes away with it.
        let ca = cluster.socket_dir().join("ca.crt");
        let other_ca = cluster.socket_dir().join("other-ca.crt");
        std::fs::write(&ca, read("ca.crt")).expect("write ca.crt");
        std::fs::write(&other_ca, read("other-ca.crt")).expect("write other-ca.crt");
        TlsServer { cluster, ca, other_ca }
    })
}

/// A self-signed CA certificate `<name>.crt` with its key `<name>.key` in `dir`.
fn make_ca(dir: &Path, name: &str, common_name: &str) {
    let (key, crt, subject) = (format!("{name}.key"), format!("{name}.crt"), format!("/CN={common_name}"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run `openssl` (the TLS tests need the openssl command)");
    assert!(
        output.status.success(),
        "`openssl {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Settings for `server` on 127.0.0.1 as its superuser, followed by `extra` settings. The password
/// file is one that does not exist, so that the tester's own `~/.pgpass` plays no part.
fn options(port: u16, extra: &str) -> ConnectOptions {
    let conninfo = format!(
        "host=127.0.0.1 port={port} user=postgres dbname=postgres \
         passfile=/nonexistent/pgsafe-test-pgpass {extra}"
    );
    ConnectOptions::new(Some(&conninfo), None, None, None).unwrap_or_else(|e| panic!("settings `{extra}`: {e}"))
}

/// The error connecting with `options` gives; panics if it connects.
async fn connect_error(options: &ConnectOptions) -> Error {
    match options.connect().await {
        Ok(_) => panic!("connecting to `{}` should fail", options.describe()),
        Err(e) => e,
    }
}

/// Everything an error can show: its message, hint, causes, and its `Debug` form.
fn everything_shown(e: &Error) -> String {
    let mut text = format!("{e}\n{e:?}\n{:?}", e.hint());
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!("\n{c}\n{c:?}"));
        cause = c.source();
    }
    text
}

/// Whether the session runs over TLS, as the server sees it.
async fn uses_tls(client: &tokio_postgres::Client) -> bool {
    client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .expect("query pg_stat_ssl")
        .get(0)
}

/// A TCP port on 127.0.0.1 that nobody listens on.
fn unused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

#[tokio::test]
async fn a_connection_string_reaches_the_test_database_as_pgsafe() {
    let db = TestDb::new("connect_conninfo");
    let options = ConnectOptions::new(Some(&db.conn_string()), None, None, None).unwrap();
    let cluster = support::cluster();
    assert_eq!(options.describe(), format!("{}@{}:{}/{}", cluster.user(), cluster.host(), cluster.port(), db.name()));

    let client = options.connect().await.unwrap();
    let row = client.query_one("SELECT current_database(), current_setting('application_name')", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), db.name());
    assert_eq!(row.get::<_, String>(1), "pgsafe");

    let client = options.with_dbname("postgres").connect().await.unwrap();
    let row = client.query_one("SELECT current_database()", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "postgres");
}

#[tokio::test]
async fn the_flags_override_the_connection_string() {
    let cluster = support::cluster();
    if cluster.server_log().is_none() {
        // A server given by URL may want a password, which the flags cannot carry.
        return;
    }
    let db = TestDb::new("connect_flags");
    let conninfo = format!("host=/nonexistent port=1 user=nobody dbname={} application_name=flags-test", db.name());
    let options =
        ConnectOptions::new(Some(&conninfo), Some(cluster.host()), Some(cluster.port()), Some(cluster.user())).unwrap();
    let client = options.connect().await.unwrap();
    let row = client
        .query_one("SELECT current_database(), current_user, current_setting('application_name')", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), db.name());
    assert_eq!(row.get::<_, String>(1), cluster.user());
    assert_eq!(row.get::<_, String>(2), "flags-test");
}

#[tokio::test]
async fn a_database_that_does_not_exist_is_named() {
    let server = password_server();
    let options = options(server.port(), &format!("password={PASSWORD}")).with_dbname("pgsafe_no_such_database");
    let e = connect_error(&options).await;
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert_eq!(
        e.to_string(),
        format!("database `pgsafe_no_such_database` does not exist at `127.0.0.1:{}`", server.port())
    );
}

#[tokio::test]
async fn the_right_password_logs_in_without_tls_where_the_server_has_none() {
    let server = password_server();
    let client = options(server.port(), &format!("password={PASSWORD}")).connect().await.unwrap();
    assert!(!uses_tls(&client).await, "sslmode=prefer on a server without TLS");
}

#[tokio::test]
async fn a_wrong_password_is_named_and_never_shown() {
    let server = password_server();
    let options = options(server.port(), &format!("password={WRONG_PASSWORD}"));
    let e = connect_error(&options).await;
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert_eq!(
        e.to_string(),
        format!("password authentication failed for user `postgres` at `127.0.0.1:{}`", server.port())
    );
    assert_eq!(e.hint(), Some("the password came from the connection string; check it"));
    let shown = everything_shown(&e);
    assert!(!shown.contains(WRONG_PASSWORD), "{shown}");
    assert!(!format!("{options:?}").contains(WRONG_PASSWORD));
}

#[tokio::test]
async fn the_password_file_is_used_when_no_password_is_given_and_only_when_private() {
    let server = password_server();
    let dir = tempfile::tempdir().unwrap();
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!(
            "# another server first\n\
             127.0.0.1:1:*:postgres:{WRONG_PASSWORD}\n\
             127.0.0.1:{}:*:postgres:{PASSWORD}\n",
            server.port()
        ),
    )
    .unwrap();
    let passfile_setting = format!("passfile={}", passfile.display());

    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let client = options(server.port(), &passfile_setting).connect().await.unwrap();
    client.query_one("SELECT 1", &[]).await.unwrap();

    // libpq ignores a password file that others can read, and so does pgsafe.
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = connect_error(&options(server.port(), &passfile_setting)).await;
    assert_eq!(
        e.to_string(),
        format!("server at `127.0.0.1:{}` asks for a password for user `postgres`, but none was given", server.port())
    );

    // A wrong password from the file says where it came from.
    std::fs::write(&passfile, format!("*:*:*:postgres:{WRONG_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = connect_error(&options(server.port(), &passfile_setting)).await;
    assert!(e.to_string().starts_with("password authentication failed"), "{e}");
    let hint = e.hint().unwrap_or_default();
    assert!(hint.contains(&passfile.display().to_string()), "{hint}");
    assert!(!everything_shown(&e).contains(WRONG_PASSWORD));
}

#[tokio::test]
async fn sslmode_require_against_a_server_without_tls_says_so() {
    let server = password_server();
    let e = connect_error(&options(server.port(), &format!("password={PASSWORD} sslmode=require"))).await;
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert_eq!(
        e.to_string(),
        format!("server at `127.0.0.1:{}` does not support TLS, but sslmode=require", server.port())
    );
}

#[tokio::test]
async fn an_unknown_host_is_named() {
    let options = ConnectOptions::new(
        Some("host=nohost.invalid user=postgres dbname=postgres sslmode=disable"),
        None,
        None,
        None,
    )
    .unwrap();
    let e = connect_error(&options).await;
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert_eq!(e.to_string(), "could not resolve host `nohost.invalid`");
}

#[tokio::test]
async fn nobody_listening_is_connection_refused() {
    let port = unused_port();
    let e = connect_error(&options(port, "")).await;
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert_eq!(e.to_string(), format!("could not connect to `127.0.0.1:{port}`: connection refused"));
    let hint = e.hint().unwrap_or_default();
    assert!(hint.starts_with("is the server running"), "{hint}");
}

#[tokio::test]
async fn require_and_verify_full_succeed_with_the_servers_ca() {
    let server = tls_server();
    let port = server.cluster.port();
    let ca = server.ca.display();
    for extra in [
        format!("sslmode=require sslrootcert={ca}"),
        // The certificate names `localhost`; the address stays 127.0.0.1.
        format!("sslmode=verify-full sslrootcert={ca} host=localhost hostaddr=127.0.0.1"),
        // verify-ca checks the signature but not the name.
        format!("sslmode=verify-ca sslrootcert={ca}"),
        // Plain first; this server turns that away, so TLS.
        format!("sslmode=allow sslrootcert={ca}"),
        format!("sslmode=prefer sslrootcert={ca}"),
    ] {
        let options = options(port, &format!("password={PASSWORD} {extra}"));
        let client = options.connect().await.unwrap_or_else(|e| panic!("`{extra}`: {e} (hint: {:?})", e.hint()));
        assert!(uses_tls(&client).await, "`{extra}` connected without TLS");
    }
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_for_another_host_name() {
    let server = tls_server();
    let port = server.cluster.port();
    let options =
        options(port, &format!("password={PASSWORD} sslmode=verify-full sslrootcert={}", server.ca.display()));
    assert_eq!(options.ssl_mode(), SslMode::VerifyFull);
    let e = connect_error(&options).await;
    assert_eq!(e.kind(), ErrorKind::Connect);
    let message = e.to_string();
    assert!(message.starts_with(&format!("TLS handshake with `127.0.0.1:{port}` failed: ")), "{message}");
    assert!(message.contains("not valid for name"), "{message}");
    assert!(e.hint().unwrap_or_default().contains("sslmode=verify-ca"), "{:?}", e.hint());
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let server = tls_server();
    let port = server.cluster.port();
    // With a root certificate, `require` checks the signature too, as in libpq.
    for mode in ["require", "verify-ca"] {
        let e = connect_error(&options(
            port,
            &format!("password={PASSWORD} sslmode={mode} sslrootcert={}", server.other_ca.display()),
        ))
        .await;
        let message = e.to_string();
        assert!(message.starts_with(&format!("TLS handshake with `127.0.0.1:{port}` failed: ")), "{mode}: {message}");
        assert!(message.contains("UnknownIssuer"), "{mode}: {message}");
    }
}

#[tokio::test]
async fn sslmode_disable_against_a_tls_only_server_is_turned_away() {
    let server = tls_server();
    let port = server.cluster.port();
    let e = connect_error(&options(port, &format!("password={PASSWORD} sslmode=disable"))).await;
    assert_eq!(e.kind(), ErrorKind::Connect);
    let message = e.to_string();
    assert!(
        message.starts_with(&format!("server at `127.0.0.1:{port}` turned away user `postgres`: no pg_hba.conf entry")),
        "{message}"
    );
}

#[tokio::test]
async fn prefer_tries_again_without_tls_when_the_handshake_fails() {
    // The handshake fails on a certificate from another CA; the plain attempt that follows is what
    // this `hostssl`-only server turns away, so its message proves the second attempt was made.
    let server = tls_server();
    let port = server.cluster.port();
    let e = connect_error(&options(
        port,
        &format!("password={PASSWORD} sslmode=prefer sslrootcert={}", server.other_ca.display()),
    ))
    .await;
    let message = e.to_string();
    assert!(message.starts_with(&format!("server at `127.0.0.1:{port}` turned away user `postgres`")), "{message}");
    assert_eq!(e.sqlstate(), Some(pgsafe::SqlState::INVALID_AUTHORIZATION_SPECIFICATION));
}

#[tokio::test]
async fn tls_with_only_an_address_names_the_missing_host_name() {
    let server = tls_server();
    let port = server.cluster.port();
    let e =
        connect_error(&options(port, &format!("password={PASSWORD} host='' hostaddr=127.0.0.1 sslmode=require"))).await;
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert_eq!(e.to_string(), format!("TLS to `127.0.0.1:{port}` needs a host name to check the certificate against"));
}

/// A server that asks for a password on its Unix socket as well as over TCP.
fn socket_password_server() -> &'static PrivateCluster {
    static SERVER: OnceLock<PrivateCluster> = OnceLock::new();
    SERVER.get_or_init(|| {
        support::start_private(&PrivateClusterOptions {
            password: Some(PASSWORD.to_owned()),
            hba: Some("local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256".to_owned()),
            ..PrivateClusterOptions::default()
        })
    })
}

/// Runs `psql` with no environment but `env` (and `sql` on its stdin); returns its exit code, stdout
/// and stderr.
fn psql_with_only(env: &[(&str, &str)], sql: &str) -> (i32, String, String) {
    use std::io::Write as _;
    let mut command = Command::new(support::cluster().bin("psql"));
    command
        .env_clear()
        .envs(env.iter().copied())
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(sql.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test]
async fn a_child_process_connects_with_only_the_environment_pgsafe_gives_it() {
    let server = socket_password_server();
    let socket = server.socket_dir().display().to_string();
    let admin = ConnectOptions::new(
        Some(&format!(
            "host={socket} port={} user=postgres dbname=postgres password={PASSWORD} passfile=/nonexistent/pgsafe-test-pgpass",
            server.port()
        )),
        None,
        None,
        None,
    )
    .unwrap();
    // A user, password and database that need quoting and percent-encoding everywhere.
    let child_password = "p@ss:w/rd 100%&more";
    let client = admin.connect().await.unwrap();
    let role = format!("CREATE ROLE \"child app\" LOGIN PASSWORD {}", pgsafe::pg::quote_literal(child_password));
    client.batch_execute(&role).await.unwrap();
    client.batch_execute("CREATE DATABASE \"child db\" OWNER \"child app\"").await.unwrap();

    let conninfo = format!(
        "host={socket} port={} user='child app' dbname='child db' passfile=/nonexistent/pgsafe-test-pgpass password='{}'",
        server.port(),
        child_password.replace('\'', "\\'")
    );
    let options = ConnectOptions::new(Some(&conninfo), None, None, None).unwrap();
    let env = options.child_env();
    let vars: Vec<(&str, &str)> = env.vars().collect();
    assert!(!format!("{env:?}").contains(child_password));
    let who = "SELECT current_database(), current_user, current_setting('port');\n";
    let expected = format!("child db|child app|{}\n", server.port());

    // The PG* variables, as libpq reads them.
    let (code, stdout, stderr) = psql_with_only(&vars, who);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, expected);

    // The same without the password: the server does ask for it.
    let without: Vec<(&str, &str)> = vars.iter().copied().filter(|(name, _)| *name != "PGPASSWORD").collect();
    let (code, _, stderr) = psql_with_only(&without, who);
    assert_ne!(code, 0, "the server must ask for a password");
    assert!(stderr.contains("password"), "{stderr}");

    // DATABASE_URL alone: every PG* variable dropped inside psql before it connects by the URL, which
    // comes from the environment too and so never stands on a command line.
    let script = format!(
        "\\getenv url DATABASE_URL\n\\setenv PGPASSWORD\n\\setenv PGHOST\n\\setenv PGPORT\n\\setenv PGUSER\n\
         \\setenv PGDATABASE\n\\setenv PGSSLMODE\n\\connect :url\n{who}"
    );
    let (code, stdout, stderr) = psql_with_only(&vars, &script);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, expected);
}
