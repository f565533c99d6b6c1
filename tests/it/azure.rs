//! Archives and the snapshot store in Azure Blob Storage (`az://container/key`), against Azurite, the
//! Azure Storage emulator from npm: a dump that verifies and restores identically, a store that snapshots,
//! lists, refuses a held lock and prunes, and a missing container named.
//!
//! Azurite is required: without it these tests fail (`.ci/run` installs it with npm into
//! `~/.cache/pgsafe/azurite`, or set `PGSAFE_AZURITE` to its `azurite-blob`), as is Python's
//! `azure-storage-blob`, which makes the container.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dump_restore::{fingerprint, pgsafe, run};
use crate::support::TestDb;

/// Azurite's well-known account and key (public: the emulator's, in every Azure SDK).
const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

struct Azurite {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

fn azurite_blob() -> PathBuf {
    if let Some(path) = std::env::var_os("PGSAFE_AZURITE") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let cached = home.join(".cache/pgsafe/azurite/node_modules/.bin/azurite-blob");
    if cached.exists() { cached } else { PathBuf::from("azurite-blob") }
}

impl Azurite {
    fn start() -> Azurite {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data = tempfile::tempdir().unwrap();
        let program = azurite_blob();
        let child = Command::new(&program)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--skipApiVersionCheck", "--loose"])
            .arg("--location")
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "the Azure tests need Azurite (`npm install --prefix ~/.cache/pgsafe/azurite azurite@3`, or `PGSAFE_AZURITE`): `{}`: {e}",
                    program.display()
                )
            });
        let mut server = Azurite { child, port, _data: data };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("Azurite exited ({status}) before it served");
            }
            assert!(Instant::now() < deadline, "Azurite did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a container, with the Azure SDK for Python (object storage clients make no containers).
    fn create_container(&self, name: &str) {
        let script = format!(
            "from azure.storage.blob import BlobServiceClient\n\
             BlobServiceClient.from_connection_string('DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={}/{ACCOUNT};').create_container('{name}')",
            self.url()
        );
        let out = Command::new("python3").args(["-c", &script]).output().unwrap();
        assert!(
            out.status.success(),
            "creating the container (needs `pip install azure-storage-blob`): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// pgsafe with the Azure environment pointing at this emulator.
    fn pgsafe(&self) -> Command {
        let mut cmd = pgsafe();
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AZURE") {
                cmd.env_remove(key);
            }
        }
        cmd.env("AZURE_STORAGE_USE_EMULATOR", "true").env("AZURITE_BLOB_STORAGE_URL", self.url());
        cmd
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn archives_and_the_store_in_an_azure_container() {
    let azure = Azurite::start();
    azure.create_container("backups");
    let src = TestDb::new("az_src");
    src.psql(
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
         INSERT INTO items SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, 50000) i;",
    );
    let url = "az://backups/nightly/src.pgsafe";
    let ok = |cmd: &mut Command| {
        let (code, stdout, stderr) = run(cmd);
        assert_eq!(code, 0, "{stderr}");
        stdout
    };
    ok(azure.pgsafe().args(["dump", "-q", "-Z", "0", "-d", &src.conn_string(), "-f", url]));
    let verified = ok(azure.pgsafe().args(["verify", url]));
    assert!(verified.starts_with("sound: 1 parts") && verified.contains("50000 rows"), "{verified}");
    let dst = TestDb::new("az_dst");
    ok(azure.pgsafe().args(["restore", "-q", "--no-owner", "-d", &dst.conn_string(), url]));
    assert_eq!(fingerprint(&dst, "items"), fingerprint(&src, "items"));

    // The store in the container: a snapshot, its listing, a lock held elsewhere refused, a prune.
    let store = "az://backups/pgsafe";
    let id = ok(azure.pgsafe().args(["snapshot", "-q", "--store", store, "-d", &src.conn_string()]));
    let listed: Vec<Value> =
        serde_json::from_str(&ok(azure.pgsafe().args(["snapshots", "--json", "--store", store]))).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.trim());
    assert_eq!(listed[0]["rows"], 50000);
    let (code, _, stderr) = run(azure.pgsafe().args(["verify", &format!("{store}/{}.pgsafe", id.trim())]));
    assert_eq!(code, 0, "{stderr}");

    let lease = r#"{"holder":{"pid":4242,"host":"backup-host-2","command":"pgsafe prune","since":"2026-01-01T00:00:00Z"},"until":"2999-01-01T00:00:00Z"}"#;
    let script = format!(
        "from azure.storage.blob import BlobServiceClient\n\
         c = BlobServiceClient.from_connection_string('DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={}/{ACCOUNT};')\n\
         c.get_blob_client('backups', 'pgsafe/lock').upload_blob(b'{lease}')",
        azure.url()
    );
    let out = Command::new("python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, _, stderr) =
        run(azure.pgsafe().args(["prune", "--keep", "0", "--store", store, "--store-lock-timeout", "1"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is locked by `pgsafe prune` (pid 4242 on backup-host-2"), "{stderr}");

    let (code, _, stderr) = run(azure.pgsafe().args(["verify", "az://no-such-container/a.pgsafe"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the container `no-such-container` does not exist"), "{stderr}");
}
