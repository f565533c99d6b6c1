//! Archives in S3-compatible object storage, against a local S3 server (moto's): dump uploads, verify,
//! inspect and restore read by ranged requests, an interrupted upload leaves no object, and a missing
//! bucket, a missing key or wrong credentials are errors naming the bucket and the key.
//!
//! moto is required: without it these tests fail (`pip install 'moto[server]'`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::dump_restore::{fingerprint, pgsafe, run};
use crate::faults::{big_db, finish};
use crate::interrupt::{signal, wait_until};
use crate::support::TestDb;

/// A moto S3 server on a free port, stopped when dropped.
pub(crate) struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    /// Starts moto. `auth` makes it check credentials (every key is then unknown to it).
    pub(crate) fn start(auth: bool) -> S3Server {
        let probe = Command::new("python3").args(["-c", "import moto.server"]).output();
        assert!(
            probe.as_ref().is_ok_and(|o| o.status.success()),
            "the S3 tests need moto's server: `pip install 'moto[server]'` ({})",
            probe.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_else(|e| e.to_string())
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if auth {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        let mut server = S3Server { child: cmd.spawn().expect("starting moto's server"), port };
        let deadline = Instant::now() + Duration::from_secs(30);
        // Any answer will do: with `auth`, an unsigned request is refused.
        while matches!(ureq::get(&server.url("")).call(), Err(e) if !matches!(e, ureq::Error::StatusCode(_))) {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("moto's server exited ({status}) before it served");
            }
            assert!(Instant::now() < deadline, "moto's server did not answer on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Creates a bucket (moto takes unsigned requests unless `auth`).
    pub(crate) fn create_bucket(&self, bucket: &str) {
        ureq::put(&self.url(bucket)).send_empty().expect("creating the bucket");
    }

    /// Whether `bucket/key` exists.
    pub(crate) fn exists(&self, bucket: &str, key: &str) -> bool {
        match ureq::head(&self.url(&format!("{bucket}/{key}"))).call() {
            Ok(_) => true,
            Err(ureq::Error::StatusCode(404)) => false,
            Err(e) => panic!("HEAD {bucket}/{key}: {e}"),
        }
    }

    /// The ids of the multipart uploads in progress in `bucket`.
    fn uploads(&self, bucket: &str) -> Vec<String> {
        let xml =
            ureq::get(&self.url(&format!("{bucket}?uploads"))).call().unwrap().body_mut().read_to_string().unwrap();
        xml.split("<UploadId>")
            .skip(1)
            .filter_map(|s| s.split_once("</UploadId>").map(|(id, _)| id.to_string()))
            .collect()
    }

    /// How many parts of upload `id` to `bucket/key` arrived.
    fn parts(&self, bucket: &str, key: &str, id: &str) -> usize {
        let url = self.url(&format!("{bucket}/{key}?uploadId={id}"));
        let xml = ureq::get(&url).call().unwrap().body_mut().read_to_string().unwrap();
        xml.matches("<PartNumber>").count()
    }

    /// pgsafe with the AWS environment pointing at this server.
    pub(crate) fn pgsafe(&self) -> Command {
        pgsafe_at(self.port)
    }
}

/// pgsafe with the AWS environment pointing at an endpoint on `port`, and nothing else of it.
fn pgsafe_at(port: u16) -> Command {
    let mut cmd = pgsafe();
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") || key == "PGSAFE_OBJECT_TIMEOUT" {
            cmd.env_remove(key);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "pgsafe-test-key")
        .env("AWS_SECRET_ACCESS_KEY", "pgsafe-test-secret-never-printed")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A database worth several parts of an upload: 12 MB of rows stored uncompressed (`-Z 0`).
fn sample_db(hint: &str) -> TestDb {
    let db = TestDb::new(hint);
    db.psql(
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2));
         INSERT INTO items SELECT i, repeat(md5(i::text), 3), i / 7.0 FROM generate_series(1, 100000) i;
         CREATE TABLE notes (id serial PRIMARY KEY, item int REFERENCES items, body text);
         INSERT INTO notes (item, body) SELECT i, 'note ' || i FROM generate_series(1, 5000) i;",
    );
    db
}

#[test]
fn a_dump_to_s3_verifies_inspects_and_restores_identically() {
    let s3 = S3Server::start(false);
    s3.create_bucket("backups");
    let src = sample_db("s3_src");
    let url = "s3://backups/nightly/src.pgsafe";

    let (code, _, stderr) = run(s3.pgsafe().args(["dump", "-q", "-Z", "0", "-d", &src.conn_string(), "-f", url]));
    assert_eq!(code, 0, "{stderr}");
    assert!(s3.exists("backups", "nightly/src.pgsafe"));
    assert!(s3.uploads("backups").is_empty(), "the upload was completed");

    let (code, stdout, stderr) = run(s3.pgsafe().args(["verify", url]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("sound: 2 parts") && stdout.contains("105000 rows"), "{stdout}");

    let (code, stdout, stderr) = run(s3.pgsafe().args(["inspect", url]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with(&format!("archive   {url} (")), "{stdout}");
    assert!(stdout.contains("public.items") && stdout.contains("100000"), "{stdout}");

    let dst = TestDb::new("s3_dst");
    let (code, _, stderr) = run(s3.pgsafe().args(["restore", "-q", "--no-owner", "-d", &dst.conn_string(), url]));
    assert_eq!(code, 0, "{stderr}");
    for table in ["items", "notes"] {
        assert_eq!(fingerprint(&dst, table), fingerprint(&src, table), "{table}");
    }
    assert!(!stderr.contains("pgsafe-test-secret"), "{stderr}");
}

#[test]
fn keys_region_and_endpoint_come_from_the_aws_profile_the_environment_names() {
    let s3 = S3Server::start(false);
    s3.create_bucket("backups");
    let db = TestDb::new("s3_profile");
    db.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000);");
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIAUNUSED\naws_secret_access_key = unused\n\n[backup]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = pgsafe-test-secret-of-a-profile\r\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        format!(
            "[profile backup]\nregion = us-east-1\nendpoint_url = {}\ns3 =\n  addressing_style = path\n",
            s3.url("")
        ),
    )
    .unwrap();
    // Nothing of AWS in the environment but the profile's name: without the profile there are no keys
    // (and no instance to ask), no region and no endpoint.
    let profile = |name: &str| {
        let mut cmd = pgsafe();
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOME", home.path()).env("AWS_PROFILE", name).env("AWS_EC2_METADATA_DISABLED", "true");
        cmd
    };
    let url = "s3://backups/profile.pgsafe";
    let (code, _, stderr) = run(profile("backup").args(["dump", "-q", "-d", &db.conn_string(), "-f", url]));
    assert_eq!(code, 0, "{stderr}");
    assert!(s3.exists("backups", "profile.pgsafe"));
    let (code, stdout, stderr) = run(profile("backup").args(["verify", url]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1000 rows"), "{stdout}");

    let (code, _, stderr) = run(profile("nightly").args(["verify", url]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the AWS profile `nightly` (`AWS_PROFILE`) is in neither"), "{stderr}");
    assert!(!stderr.contains("pgsafe-test-secret"), "{stderr}");
}

/// A dump of `db` to `s3://backups/db.pgsafe`, in small chunks, once its first part has been uploaded.
fn dump_uploading(s3: &S3Server, db: &TestDb) -> std::process::Child {
    let mut child = s3
        .pgsafe()
        .args(["dump", "-q", "-j", "1", "-Z", "0", "--chunk-size", "64", "-d", &db.conn_string()])
        .args(["-f", "s3://backups/db.pgsafe"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("a part was uploaded", &mut child, || {
        s3.uploads("backups").first().is_some_and(|id| s3.parts("backups", "db.pgsafe", id) > 0)
    });
    child
}

#[test]
fn a_dump_interrupted_by_sigterm_aborts_its_upload_and_leaves_no_object() {
    let s3 = S3Server::start(false);
    s3.create_bucket("backups");
    let db = big_db("s3_sigterm");
    let child = dump_uploading(&s3, &db);
    signal(&child, "TERM");
    let (code, stderr) = finish(child);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the dump was interrupted") && stderr.contains("no archive was written"), "{stderr}");
    assert!(!s3.exists("backups", "db.pgsafe"), "an interrupted dump leaves no object");
    assert_eq!(s3.uploads("backups"), Vec::<String>::new(), "the upload was aborted");
}

#[test]
fn a_dump_that_fails_leaves_no_object() {
    let s3 = S3Server::start(false);
    s3.create_bucket("backups");
    let db = big_db("s3_fails");
    let child = dump_uploading(&s3, &db);
    // The server ends the dump's sessions: the dump fails on its own, no signal involved.
    db.psql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
        db.name()
    ));
    let (code, stderr) = finish(child);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no archive was written to `s3://backups/db.pgsafe`"), "{stderr}");
    assert!(!s3.exists("backups", "db.pgsafe"), "a failed dump leaves no object");
    assert_eq!(s3.uploads("backups"), Vec::<String>::new(), "the upload was aborted");
}

#[test]
fn a_missing_bucket_or_key_is_an_error_naming_both() {
    let s3 = S3Server::start(false);
    s3.create_bucket("backups");
    let db = TestDb::new("s3_missing");
    db.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);");

    let (code, _, stderr) =
        run(s3.pgsafe().args(["dump", "-q", "-d", &db.conn_string(), "-f", "s3://no-such-bucket/a.pgsafe"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`s3://no-such-bucket/a.pgsafe`: the bucket `no-such-bucket` does not exist"), "{stderr}");

    for command in ["verify", "inspect", "restore"] {
        let mut cmd = s3.pgsafe();
        cmd.arg(command);
        if command == "restore" {
            cmd.args(["-d", &db.conn_string()]);
        }
        let (code, _, stderr) = run(cmd.arg("s3://backups/missing.pgsafe"));
        assert_eq!(code, 2, "{command}: {stderr}");
        assert!(
            stderr
                .contains("`s3://backups/missing.pgsafe`: there is no object `missing.pgsafe` in the bucket `backups`"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn wrong_credentials_are_an_error_that_never_shows_the_secret() {
    let s3 = S3Server::start(true);
    let db = TestDb::new("s3_denied");
    let (code, _, stderr) =
        run(s3.pgsafe().args(["dump", "-q", "-d", &db.conn_string(), "-f", "s3://backups/a.pgsafe"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("writing `s3://backups/a.pgsafe`: access denied"), "{stderr}");
    assert!(stderr.contains("AWS_ACCESS_KEY_ID"), "the hint names the variables: {stderr}");
    assert!(!stderr.contains("pgsafe-test-secret"), "{stderr}");

    let (code, _, stderr) = run(s3.pgsafe().args(["verify", "s3://backups/a.pgsafe"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`s3://backups/a.pgsafe`: access denied"), "{stderr}");
}

#[test]
fn an_unreachable_endpoint_is_an_error_naming_the_archive() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (code, _, stderr) = run(pgsafe()
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .args(["inspect", "s3://backups/a.pgsafe"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`s3://backups/a.pgsafe`: cannot reach the storage endpoint"), "{stderr}");
}

/// What the S3 client panicked on (a backtrace, then "a request to object storage stopped"): an endpoint
/// without a scheme, an empty one, a key with a Windows line ending. Now refused, naming the variable.
#[test]
fn an_endpoint_that_is_no_url_or_a_key_with_a_line_ending_is_refused_naming_the_variable() {
    let cases = [
        ("AWS_ENDPOINT_URL", "127.0.0.1:5055"),
        ("AWS_ENDPOINT_URL", ""),
        ("AWS_ENDPOINT_URL", "notaurl"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE\r"),
        ("AWS_SECRET_ACCESS_KEY", "secret with space"),
    ];
    for (var, value) in cases {
        let mut cmd = pgsafe();
        cmd.env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env(var, value)
            .args(["verify", "s3://backups/a.pgsafe"]);
        let (code, _, stderr) = run(&mut cmd);
        assert_eq!(code, 2, "{var}={value:?}: {stderr}");
        assert!(stderr.contains(&format!("`{var}`")) && !stderr.contains("panicked"), "{var}={value:?}: {stderr}");
    }
}

#[test]
fn other_schemes_are_refused_before_anything_runs() {
    let (code, _, stderr) = run(pgsafe().args(["verify", "gs://bucket/a.pgsafe"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`gs://` is not supported"), "{stderr}");
}

#[test]
fn a_damaged_object_is_reported_by_verify_and_inspect_naming_the_chunk() {
    let s3 = S3Server::start(false);
    s3.create_bucket("backups");
    let db = sample_db("s3_damaged");
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(crate::dump_restore::dump(&db, dir.path(), &["-Z", "0"])).unwrap();
    // The middle of the archive lies in a chunk's payload.
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    ureq::put(&s3.url("backups/damaged.pgsafe")).send(&bytes[..]).unwrap();

    let (code, stdout, stderr) = run(s3.pgsafe().args(["verify", "s3://backups/damaged.pgsafe"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.starts_with("`s3://backups/damaged.pgsafe` is damaged: 1 problem(s)"), "{stdout}");
    assert!(stdout.contains("of part") && stdout.contains("checksum mismatch"), "{stdout}");

    let (code, _, stderr) = run(s3.pgsafe().args(["inspect", "s3://backups/damaged.pgsafe"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`s3://backups/damaged.pgsafe`: chunk") && stderr.contains("checksum mismatch"),
        "{stderr}"
    );
}

#[test]
fn an_encrypted_object_is_checked_without_the_identity_and_a_flipped_byte_is_found() {
    let s3 = S3Server::start(false);
    s3.create_bucket("backups");
    let db = sample_db("s3_sealed");
    let dir = tempfile::tempdir().unwrap();
    let (id_path, public, _) = crate::encryption::identity(dir.path(), "me.txt");
    let url = "s3://backups/sealed.pgsafe";
    let dump = ["dump", "-q", "--chunk-size", "256", "-d", &db.conn_string(), "--encrypt-to", &public, "-f", url];
    let (code, _, stderr) = run(s3.pgsafe().args(dump));
    assert_eq!(code, 0, "{stderr}");

    // Without the identity: the whole object's structure is read and checked, then exit 2.
    let (code, _, stderr) = run(s3.pgsafe().args(["verify", url]).env_remove("PGSAFE_IDENTITY"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("`{url}`: the structure is sound")) && stderr.contains("(X25519)"), "{stderr}");
    let (code, _, stderr) = run(s3.pgsafe().args(["inspect", url]).env_remove("PGSAFE_IDENTITY"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("is an encrypted archive (format 1.{})", pgsafe::format::FORMAT_MINOR))
            && stderr.contains("(X25519)"),
        "{stderr}"
    );
    let (code, stdout, stderr) = run(s3.pgsafe().args(["verify", url]).env("PGSAFE_IDENTITY", &id_path));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("sound: "), "{stdout}");

    // A byte flipped in the middle of a sealed chunk: found without the identity, as with it.
    let mut bytes = ureq::get(&s3.url("backups/sealed.pgsafe")).call().unwrap().body_mut().read_to_vec().unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    ureq::put(&s3.url("backups/damaged.pgsafe")).send(&bytes[..]).unwrap();
    let damaged = "s3://backups/damaged.pgsafe";
    let (code, stdout, stderr) = run(s3.pgsafe().args(["verify", damaged]).env_remove("PGSAFE_IDENTITY"));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("checksum mismatch"), "{stdout}");
    let (code, stdout, stderr) = run(s3.pgsafe().args(["verify", damaged]).env("PGSAFE_IDENTITY", &id_path));
    assert_eq!(code, 1, "{stdout}{stderr}");
}

/// An S3 endpoint that accepts connections and never answers (a hung server, a load balancer whose
/// backend is gone): it holds every connection open, reading nothing.
struct HungEndpoint {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl HungEndpoint {
    fn start() -> HungEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        // Runs until the test process ends, holding what it accepted.
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        HungEndpoint { port, accepted }
    }

    fn pgsafe(&self) -> Command {
        pgsafe_at(self.port)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// `child`'s exit code and standard error once it exits, and how long that took; killed, and the test
/// failed, when it is still running after `limit`.
fn finish_within(mut child: Child, limit: Duration) -> (i32, String, Duration) {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let (_, stderr) = finish(child);
            panic!("pgsafe was still running {limit:?} later: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    let (code, stderr) = finish(child);
    (code, stderr, took)
}

/// What a CI runner's timeout does to a dump whose endpoint hangs: SIGTERM stops it within seconds, as an
/// interrupted dump, though its thread was waiting for an answer that never comes (it waited the
/// client's 300 s timeout, then retried, ignoring every signal).
/// Runs pgsafe with `args` (and `-d` a database of a table, with `hint`) against an endpoint that never
/// answers and sends it `sig` once it is waiting for an answer: its exit code, stderr and how long it took
/// to stop.
fn interrupted_while_hung(hint: Option<&str>, args: &[&str], sig: &str) -> (i32, String, Duration) {
    let endpoint = HungEndpoint::start();
    let db = hint.map(TestDb::new);
    let mut command = endpoint.pgsafe();
    command.args(args);
    if let Some(db) = &db {
        db.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000);");
        command.args(["-d", &db.conn_string()]);
    }
    let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
    wait_until("pgsafe connected to the endpoint", &mut child, || endpoint.accepted() > 0);
    // Well into the wait for an answer.
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, sig);
    finish_within(child, Duration::from_secs(10))
}

#[test]
fn a_dump_to_an_endpoint_that_never_answers_stops_at_sigterm() {
    let (code, stderr, took) =
        interrupted_while_hung(Some("s3_hung_sigterm"), &["dump", "-q", "-f", "s3://backups/hung.pgsafe"], "TERM");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("SIGTERM received") && stderr.contains("the dump was interrupted"), "{stderr}");
    assert!(stderr.contains("no archive was written"), "{stderr}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    eprintln!("stopped {took:?} after SIGTERM");
}

/// A restore from an endpoint that hangs while the archive is opened stops at Ctrl-C as an interrupted
/// restore does.
#[test]
fn a_restore_from_an_endpoint_that_never_answers_stops_at_ctrl_c() {
    let (code, stderr, _) =
        interrupted_while_hung(Some("s3_hung_sigint"), &["restore", "-q", "s3://backups/hung.pgsafe"], "INT");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("SIGINT received") && stderr.contains("was interrupted"), "{stderr}");
}

/// `verify` and `inspect` have nothing to clean up: a signal ends them at once, saying so, exit 2 as any
/// interrupted command. Before, the signal's default action ended them without a word (exit 130, 143),
/// and one started in the background by a script, which ignores SIGINT, waited out the endpoint.
#[test]
fn verify_and_inspect_of_an_endpoint_that_never_answers_stop_at_a_signal() {
    for (command, sig, name) in [("verify", "TERM", "SIGTERM"), ("inspect", "INT", "SIGINT")] {
        let (code, stderr, took) = interrupted_while_hung(None, &[command, "s3://backups/hung.pgsafe"], sig);
        assert_eq!(code, 2, "{command}: {stderr}");
        assert!(stderr.contains(&format!("{command}: {name} received: stopped")), "{command}: {stderr}");
        assert!(took < Duration::from_secs(10), "{took:?}");
    }
}

/// Without a signal, an endpoint that never answers is an error within the answer timeout (and, for
/// reads, its retries), naming the archive and saying what happened; `PGSAFE_OBJECT_TIMEOUT` shortens the
/// default 60 s for the test.
#[test]
fn an_endpoint_that_never_answers_is_an_error_in_bounded_time_naming_the_archive() {
    let endpoint = HungEndpoint::start();
    let db = TestDb::new("s3_hung_timeout");
    db.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);");
    for command in ["dump", "verify", "restore"] {
        let mut cmd = endpoint.pgsafe();
        cmd.env("PGSAFE_OBJECT_TIMEOUT", "1s").arg(command);
        match command {
            "dump" => cmd.args(["-q", "-d", &db.conn_string(), "-f"]),
            "restore" => cmd.args(["-q", "-d", &db.conn_string()]),
            _ => &mut cmd,
        };
        let child = cmd.arg("s3://backups/hung.pgsafe").stderr(Stdio::piped()).spawn().unwrap();
        let (code, stderr, took) = finish_within(child, Duration::from_secs(20));
        assert_eq!(code, 2, "{command}: {stderr}");
        assert!(
            stderr.contains("`s3://backups/hung.pgsafe`: the storage endpoint did not answer"),
            "{command}: {stderr}"
        );
        assert!(stderr.contains("PGSAFE_OBJECT_TIMEOUT"), "{command}: the hint names the variable: {stderr}");
        eprintln!("{command}: failed after {took:?}");
    }
    let (code, _, stderr) =
        run(endpoint.pgsafe().env("PGSAFE_OBJECT_TIMEOUT", "soon").args(["verify", "s3://backups/a.pgsafe"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`PGSAFE_OBJECT_TIMEOUT` is `soon`"), "{stderr}");
}
