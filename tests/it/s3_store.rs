//! The snapshot store on a bucket (`PGSAFE_DIR=s3://bucket/prefix`), against a local S3 server (moto's):
//! snapshots, the list, prune, rollback, status and the audit log all there; the lock a lease that a
//! second writer waits for and that an ended lease gives up; an archive replaced on the bucket refused.

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Value;

use crate::dump_restore::{fingerprint, run};
use crate::rollback::{compare_dbs, copy_of, databases_like};
use crate::s3::S3Server;
use crate::support::TestDb;

const STORE: &str = "s3://backups/pgsafe/prod";

impl S3Server {
    /// Runs `f` with a client of `bucket` signed with the test's credentials (moto keeps what a signed
    /// request wrote from anonymous ones).
    fn with_bucket<T>(&self, bucket: &str, f: impl AsyncFnOnce(&AmazonS3) -> T) -> T {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id("pgsafe-test-key")
            .with_secret_access_key("pgsafe-test-secret-never-printed")
            .with_endpoint(self.url("").trim_end_matches('/'))
            .with_allow_http(true)
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(f(&client))
    }

    /// The keys in `bucket` under `prefix`, sorted.
    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let listed = self.with_bucket(bucket, async |c| {
            c.list(Some(&ObjectPath::from(prefix))).try_collect::<Vec<_>>().await.unwrap()
        });
        let mut keys: Vec<String> = listed.into_iter().map(|o| o.location.to_string()).collect();
        keys.sort();
        keys
    }

    fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.with_bucket(bucket, async |c| c.get(&ObjectPath::from(key)).await.unwrap().bytes().await.unwrap().to_vec())
    }

    fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        let body = body.to_vec();
        self.with_bucket(bucket, async |c| c.put(&ObjectPath::from(key), body.into()).await.unwrap());
    }

    /// pgsafe with the store on this server's bucket.
    fn pgsafe_store(&self) -> std::process::Command {
        let mut cmd = self.pgsafe();
        cmd.env("PGSAFE_DIR", STORE).env_remove("BACKUP_DIR");
        cmd
    }
}

fn ok(s3: &S3Server, args: &[&str]) -> String {
    let (code, stdout, stderr) = run(s3.pgsafe_store().args(args));
    assert_eq!(code, 0, "pgsafe {args:?}: {stderr}");
    stdout
}

fn items_db(hint: &str) -> TestDb {
    let db = TestDb::new(hint);
    db.psql(
        "CREATE TABLE item (id int PRIMARY KEY, name text NOT NULL);
         INSERT INTO item SELECT g, md5(g::text) FROM generate_series(1, 20000) g;",
    );
    db
}

#[test]
fn the_whole_store_on_a_bucket_snapshots_lists_prunes_rolls_back_and_audits() {
    let s3 = S3Server::start(false);
    s3.create_bucket("backups");
    let db = items_db("s3store");
    let original = copy_of(&db, "s3store_original");

    let first = ok(&s3, &["snapshot", "-q", "-d", &db.conn_string(), "--label", "first"]).trim().to_owned();
    let prefix = "pgsafe/prod/";
    let keys = s3.keys("backups", "pgsafe/prod");
    assert!(keys.contains(&format!("{prefix}{first}.pgsafe")), "{keys:?}");
    assert!(keys.contains(&format!("{prefix}{first}.json")), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with(&format!("{prefix}audit/"))), "{keys:?}");
    assert!(!keys.iter().any(|k| k.ends_with(".partial") || k.ends_with("/lock")), "claim and lock are gone: {keys:?}");
    let secret = "pgsafe-test-secret-never-printed";
    for key in &keys {
        let body = String::from_utf8_lossy(&s3.get("backups", key)).into_owned();
        assert!(!body.contains(secret), "{key} holds the secret");
    }

    db.psql("DELETE FROM item WHERE id > 100; UPDATE item SET name = 'changed' WHERE id < 10;");
    let second = ok(&s3, &["snapshot", "-q", "-d", &db.conn_string(), "--label", "second"]).trim().to_owned();
    let listed: Vec<Value> = serde_json::from_str(&ok(&s3, &["snapshots", "--json"])).unwrap();
    let ids: Vec<&str> = listed.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first");
    assert_eq!(listed[1]["rows"], 20000);
    assert!(listed[1]["verified_at"].is_string(), "{}", listed[1]);
    // The bucket's listing gives each archive's size, as recorded.
    assert!(listed.iter().all(|s| s["archive_state"] == "present"), "{listed:?}");

    // The plan reads the snapshot from the bucket; the rollback (a swap, after a safety snapshot taken under
    // the bucket's lock) restores it, and its audit line is there.
    let plan: Value =
        serde_json::from_str(&ok(&s3, &["rollback", "-d", &db.conn_string(), &first, "--plan", "--json"])).unwrap();
    assert_eq!(plan["snapshot"]["id"], first.as_str(), "{plan}");
    let report: Value =
        serde_json::from_str(&ok(&s3, &["rollback", "-q", "-d", &db.conn_string(), &first, "--yes", "--json"]))
            .unwrap();
    let (same, text) = compare_dbs(original.name(), db.name());
    assert!(same, "{text}");
    let kept = report["replaced_database_kept_as"].as_str().unwrap().to_owned();
    let safety = report["safety_snapshot"].as_str().unwrap().to_owned();
    let listed: Vec<Value> = serde_json::from_str(&ok(&s3, &["snapshots", "--json"])).unwrap();
    let meta = listed.iter().find(|s| s["id"] == safety.as_str()).expect("the safety snapshot is listed");
    assert_eq!(meta["protects"], first.as_str());
    assert!(!s3.exists("backups", "pgsafe/prod/lock"), "the lock was released");

    let status: Value = serde_json::from_str(&ok(&s3, &["status", "--json"])).unwrap();
    let operations = status["operations"].as_array().unwrap();
    let commands: Vec<&str> = operations.iter().map(|o| o["command"].as_str().unwrap()).collect();
    // Newest first by the time each started: the rollback's health check, its safety snapshot, the
    // rollback itself (which started first and was written last), the two snapshots.
    assert_eq!(commands, ["check", "snapshot", "rollback", "snapshot", "snapshot"], "{status}");
    assert_eq!(operations[2]["snapshot"], first.as_str());
    assert_eq!(operations[2]["replaced_database"], kept.as_str());

    // Prune keeps the newest per database: what it removed is gone from the bucket, the log says so, and the
    // replaced database goes when asked.
    let pruned: Value = serde_json::from_str(&ok(
        &s3,
        &["prune", "--json", "--keep", "1", "--drop-replaced", "--keep-replaced", "0", "-d", &db.conn_string()],
    ))
    .unwrap();
    let removed: Vec<&str> = pruned["removed"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert!(removed.contains(&second.as_str()), "{pruned}");
    assert_eq!(pruned["replaced_databases"]["dropped"], serde_json::json!([kept]), "{pruned}");
    let keys = s3.keys("backups", "pgsafe/prod");
    for id in &removed {
        assert!(!keys.iter().any(|k| k.contains(id) && !k.contains("/audit/")), "{id}: {keys:?}");
    }
    assert!(keys.contains(&format!("{prefix}{safety}.pgsafe")), "{keys:?}");
    let listed: Vec<Value> = serde_json::from_str(&ok(&s3, &["snapshots", "--json"])).unwrap();
    assert_eq!(listed.len(), 3 - removed.len());
    let status = ok(&s3, &["status", "--json"]);
    assert!(status.contains("\"prune\""), "{status}");
    assert_eq!(databases_like(&kept), Vec::<String>::new());
}

#[test]
fn an_archive_replaced_on_the_bucket_is_refused_before_a_rollback_uses_it() {
    let s3 = S3Server::start(false);
    s3.create_bucket("backups");
    let db = items_db("s3store_replaced");
    let old = ok(&s3, &["snapshot", "-q", "-d", &db.conn_string(), "--label", "old"]).trim().to_owned();
    db.psql("DELETE FROM item WHERE id > 10");
    let new = ok(&s3, &["snapshot", "-q", "-d", &db.conn_string(), "--label", "new"]).trim().to_owned();
    let before = fingerprint(&db, "item");
    // A sound archive of another day under the old snapshot's key: every checksum in it holds.
    let newer = s3.get("backups", &format!("pgsafe/prod/{new}.pgsafe"));
    s3.put("backups", &format!("pgsafe/prod/{old}.pgsafe"), &newer);
    let (code, _, stderr) = run(s3.pgsafe_store().args(["rollback", "-q", "-d", &db.conn_string(), &old, "--yes"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is not the one its metadata recorded"), "{stderr}");
    assert!(stderr.contains(&format!("s3://backups/pgsafe/prod/{old}.pgsafe")), "names the object: {stderr}");
    assert_eq!(fingerprint(&db, "item"), before, "nothing was restored");
}

/// A lock object as another machine's pgsafe writes it, its lease ending `until`.
fn lease(until: &str) -> Vec<u8> {
    format!(
        r#"{{"holder":{{"pid":4242,"host":"backup-host-2","command":"pgsafe prune","since":"2026-01-01T00:00:00Z"}},"until":"{until}"}}"#
    )
    .into_bytes()
}

#[test]
fn the_lock_on_a_bucket_refuses_a_second_writer_and_an_ended_lease_is_taken_over() {
    let s3 = S3Server::start(false);
    s3.create_bucket("backups");
    let db = items_db("s3store_lock");
    ok(&s3, &["snapshot", "-q", "-d", &db.conn_string(), "--no-prune"]);

    // Held by another machine, its lease running: a prune waits its timeout, then refuses naming it.
    s3.put("backups", "pgsafe/prod/lock", &lease("2999-01-01T00:00:00Z"));
    let (code, _, stderr) = run(s3.pgsafe_store().args(["prune", "--keep", "0", "--store-lock-timeout", "1"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is locked by `pgsafe prune` (pid 4242 on backup-host-2") && stderr.contains("gave up after"),
        "{stderr}"
    );
    let listed: Vec<Value> = serde_json::from_str(&ok(&s3, &["snapshots", "--json"])).unwrap();
    assert_eq!(listed.len(), 1, "a refused prune removes nothing");

    // A snapshot's retention needs the lock too: the snapshot is not kept.
    let (code, _, stderr) =
        run(s3.pgsafe_store().args(["snapshot", "-q", "-d", &db.conn_string(), "--store-lock-timeout", "0"]));
    assert_eq!(code, 2, "{stderr}");
    let listed: Vec<Value> = serde_json::from_str(&ok(&s3, &["snapshots", "--json"])).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");

    // The holder died: its lease ended without a renewal, so the next writer takes the lock over.
    s3.put("backups", "pgsafe/prod/lock", &lease("2020-01-01T00:00:00Z"));
    let (code, _, stderr) = run(s3.pgsafe_store().args(["prune", "--keep", "1"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("took over the lock of `pgsafe prune` (pid 4242 on backup-host-2"), "{stderr}");
    assert!(!s3.exists("backups", "pgsafe/prod/lock"), "released when done");
}

#[test]
fn a_store_on_a_missing_bucket_is_an_error_naming_it() {
    let s3 = S3Server::start(false);
    let db = TestDb::new("s3store_missing");
    let (code, _, stderr) =
        run(s3.pgsafe().env("PGSAFE_DIR", "s3://no-such-bucket/x").args(["snapshot", "-q", "-d", &db.conn_string()]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the bucket `no-such-bucket` does not exist"), "{stderr}");
    let (code, _, stderr) = run(s3.pgsafe().env("PGSAFE_DIR", "s3://no-such-bucket/x").args(["snapshots"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the bucket `no-such-bucket` does not exist"), "{stderr}");
}
