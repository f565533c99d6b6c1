//! The snapshot store as a user meets it: `pgsafe snapshot`, `pgsafe snapshots` and `pgsafe prune` on the
//! throwaway cluster, with pagila; retention, the writer lock, modes, failures and the audit log.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pgsafe::store::{LocalStore, LockHolder, Store};
use serde_json::Value;

use crate::dump_restore::{pgsafe, run, run_ok};
use crate::support::{self, PrivateClusterOptions, TestDb};

/// The corpus folder shared with the fidelity suite.
fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

/// `pgsafe snapshot` into `store` with `args`, returning its JSON report.
fn snapshot(store: &Path, args: &[&str]) -> Value {
    let out = run_ok(pgsafe().args(["snapshot", "-q", "--json", "--store"]).arg(store).args(args));
    serde_json::from_str(&out).unwrap()
}

fn list(store: &Path, args: &[&str]) -> Vec<Value> {
    let out = run_ok(pgsafe().args(["snapshots", "--json", "--store"]).arg(store).args(args));
    serde_json::from_str::<Vec<Value>>(&out).unwrap()
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect()
}

/// The audit log's lines.
fn audit(store: &Path) -> Vec<Value> {
    std::fs::read_to_string(store.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every file in the store with its bytes, by name.
fn contents(store: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<_> = std::fs::read_dir(store)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    all.sort();
    all
}

fn small_db(hint: &str) -> TestDb {
    let db = TestDb::new(hint);
    db.psql("CREATE TABLE item (id int PRIMARY KEY, name text); INSERT INTO item SELECT g, 'n' || g FROM generate_series(1, 500) g;");
    db
}

#[test]
fn a_snapshot_of_pagila_is_listed_with_its_rows_in_a_private_store() {
    let db = TestDb::new("store_pagila");
    let pagila = corpus().join("pagila");
    if !pagila.is_dir() {
        support::cannot_run("a_snapshot_of_pagila_is_listed_with_its_rows", "no ../shared/corpus/pagila");
        return;
    }
    for file in ["pagila-schema.sql", "pagila-data.sql", "pagila-schema-jsonb.sql"] {
        db.psql(&std::fs::read_to_string(pagila.join(file)).unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    // A store folder that does not exist yet, below one that does.
    let store = dir.path().join("backups");
    let report = snapshot(&store, &["-d", &db.conn_string(), "--label", "before 0042 add index"]);
    let id = report["snapshot"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with(&format!("{}-20", db.name())), "{id}");
    assert!(id.ends_with("Z-before_0042_add_index"), "{id}");
    assert!(report["snapshot"]["verified_at"].is_string(), "{report}");

    // Listed with its per-table rows, which are the database's.
    let listed = list(&store, &["-d", db.name()]);
    assert_eq!(ids(&listed), std::slice::from_ref(&id));
    let tables = listed[0]["tables"].as_array().unwrap();
    let rows_of = |name: &str| {
        tables.iter().find(|t| t["table"] == name).unwrap_or_else(|| panic!("{name} not in {tables:?}"))["rows"]
            .as_u64()
            .unwrap()
    };
    for table in ["public.rental", "public.film", "public.payment_p2022_01"] {
        let count: u64 = db.psql(&format!("SELECT count(*) FROM {table}")).trim().parse().unwrap();
        assert!(count > 0, "{table} is empty in pagila");
        assert_eq!(rows_of(table), count, "{table}");
    }
    let total: u64 = tables.iter().map(|t| t["rows"].as_u64().unwrap()).sum();
    assert_eq!(listed[0]["rows"].as_u64().unwrap(), total);
    assert_eq!(listed[0]["database"], db.name());
    assert_eq!(listed[0]["label"], "before 0042 add index");
    assert_eq!(listed[0]["role"], "postgres");
    assert_eq!(listed[0]["scope"], serde_json::json!({"content": "both", "no_unlogged_table_data": false}));
    assert_eq!(listed[0]["server_version"], db.psql("SHOW server_version").trim());

    // The text listing shows the id, the rows and that it is verified.
    let text = run_ok(pgsafe().args(["snapshots", "--store"]).arg(&store));
    let line = text.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{id} not in\n{text}"));
    assert!(line.contains(&format!(" {total} ")) && line.trim_end().ends_with("yes"), "{line}");

    // The store is the user's alone.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store), 0o700);
    for (name, _) in contents(&store) {
        assert_eq!(mode(&store.join(&name)), 0o600, "{name}");
    }
    assert!(store.join(format!("{id}.pgsafe")).is_file() && store.join(format!("{id}.json")).is_file());

    // The archive is an ordinary one.
    run_ok(pgsafe().args(["verify"]).arg(store.join(format!("{id}.pgsafe"))));
}

#[test]
fn retention_keeps_the_newest_n_and_a_dry_run_changes_nothing() {
    let db = small_db("store_retention");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let conn = db.conn_string();
    for label in ["one", "two", "three"] {
        snapshot(store, &["-d", &conn, "--label", label, "--keep", "10"]);
    }
    let three = ids(&list(store, &[]));
    assert_eq!(three.len(), 3);
    assert!(three[0].ends_with("-three") && three[2].ends_with("-one"), "newest first: {three:?}");

    // A dry run names what would go, and changes nothing, not even the audit log.
    let before = contents(store);
    let out = run_ok(pgsafe().args(["prune", "--dry-run", "--keep", "1", "--store"]).arg(store));
    assert!(out.contains(&format!("would remove  {}", three[1])), "{out}");
    assert!(out.contains(&format!("would remove  {}", three[2])), "{out}");
    assert!(out.contains(&format!("keep  {}  (newest 1)", three[0])), "{out}");
    assert_eq!(contents(store), before, "`prune --dry-run` changed the store");

    // A fourth snapshot with `--keep 2` leaves the newest two.
    let fourth = snapshot(store, &["-d", &conn, "--label", "four", "--keep", "2"]);
    let fourth = fourth["snapshot"]["id"].as_str().unwrap().to_owned();
    assert_eq!(ids(&list(store, &[])), [fourth.clone(), three[0].clone()]);
    for gone in &three[1..] {
        assert!(!store.join(format!("{gone}.pgsafe")).exists() && !store.join(format!("{gone}.json")).exists());
    }
    let last = audit(store).pop().unwrap();
    assert_eq!(last["command"], "snapshot");
    assert_eq!(last["snapshot"], fourth.as_str());
    assert_eq!(last["removed"], serde_json::json!([three[1], three[2]]));

    // `prune` takes the connection options every command takes (a dry run changes nothing).
    run_ok(pgsafe().args(["prune", "--dry-run", "-d", db.name(), "-U", "someone", "-p", "5432", "--store"]).arg(store));
    // `prune` with `MAX_BACKUPS` keeps one, and says so in the log.
    run_ok(pgsafe().args(["prune", "-d", db.name(), "--store"]).arg(store).env("MAX_BACKUPS", "1"));
    assert_eq!(ids(&list(store, &[])), [fourth]);
    let last = audit(store).pop().unwrap();
    assert_eq!((&last["command"], &last["outcome"]), (&"prune".into(), &"ok".into()));
    assert_eq!(last["removed"], serde_json::json!([three[0]]));

    // Two snapshots in the same second get ids of their own: the second waits for the next second.
    // Their metadata says what each took, for a rollback that must not take a part for the whole.
    let a = snapshot(store, &["-d", &conn, "--no-prune", "-t", "public.item"]);
    let b = snapshot(store, &["-d", &conn, "--no-prune", "--schema-only"]);
    assert_ne!(a["snapshot"]["id"], b["snapshot"]["id"]);
    assert_eq!(list(store, &[]).len(), 3);
    assert_eq!(
        a["snapshot"]["scope"],
        serde_json::json!({"content": "both", "tables": ["public.item"], "no_unlogged_table_data": false})
    );
    assert_eq!(a["snapshot"]["rows"], 500);
    assert_eq!(b["snapshot"]["scope"]["content"], "schema-only");
    assert_eq!(b["snapshot"]["rows"], 0);
}

#[test]
fn a_failed_snapshot_leaves_no_snapshot_and_an_audit_line_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let db = small_db("store_failed");
    let missing = db.conn_string().replace(db.name(), "pgsafe_no_such_database");
    let (code, stdout, stderr) = run(pgsafe().args(["snapshot", "-q", "-d", &missing, "--store"]).arg(store));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("pgsafe_no_such_database"), "{stderr}");
    let names: Vec<String> = contents(store).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["audit.jsonl"], "a failed snapshot left files behind");
    assert!(list(store, &[]).is_empty());
    let lines = audit(store);
    assert_eq!(lines.len(), 1);
    assert_eq!((&lines[0]["command"], &lines[0]["outcome"]), (&"snapshot".into(), &"failed".into()));
    assert!(lines[0]["error"].as_str().unwrap().contains("pgsafe_no_such_database"), "{}", lines[0]);
    assert_eq!(lines[0]["database"], "pgsafe_no_such_database");
    assert!(lines[0].get("snapshot").is_none(), "{}", lines[0]);

    // A label with nothing file-safe in it is refused by name, and logged too.
    let (code, _, stderr) =
        run(pgsafe().args(["snapshot", "-q", "-d", &db.conn_string(), "--label", "!!!", "--store"]).arg(store));
    assert_eq!(code, 2);
    assert!(stderr.contains("the label `!!!` cannot name a snapshot file"), "{stderr}");
    assert_eq!(audit(store).len(), 2);
    assert!(list(store, &[]).is_empty());
}

#[test]
fn a_second_writer_waits_for_the_lock_then_refuses_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let holder = LockHolder::this_process("pgsafe rollback (test holder)");
    let held = store.lock(&holder, Duration::ZERO, &pgsafe::cancel::Cancel::new()).unwrap();

    let started = Instant::now();
    let (code, _, stderr) = run(pgsafe().args(["prune", "--store-lock-timeout", "1", "--store"]).arg(dir.path()));
    assert_eq!(code, 2, "{stderr}");
    assert!(started.elapsed() >= Duration::from_secs(1), "it did not wait: {:?}", started.elapsed());
    assert!(
        stderr.contains(&format!(
            "is locked by `pgsafe rollback (test holder)` (pid {} on {}",
            std::process::id(),
            holder.host
        )),
        "{stderr}"
    );
    assert_eq!(audit(dir.path()).pop().unwrap()["outcome"], "failed");

    // Released while the second writer waits: it goes on.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(held);
    });
    let started = Instant::now();
    run_ok(pgsafe().args(["prune", "--store-lock-timeout", "30", "--store"]).arg(dir.path()));
    assert!(started.elapsed() >= Duration::from_millis(1000), "it did not wait: {:?}", started.elapsed());
    release.join().unwrap();
    assert_eq!(audit(dir.path()).pop().unwrap()["outcome"], "ok");

    // A snapshot dumps without the lock, but writes its metadata under it: refused, it keeps nothing.
    let db = small_db("store_locked");
    let held = store.lock(&holder, Duration::ZERO, &pgsafe::cancel::Cancel::new()).unwrap();
    let (code, stdout, stderr) = run(pgsafe()
        .args(["snapshot", "-q", "--store-lock-timeout", "0.5", "-d", &db.conn_string(), "--store"])
        .arg(dir.path()));
    drop(held);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(stderr.contains("is locked by `pgsafe rollback (test holder)`"), "{stderr}");
    let names: Vec<String> = contents(dir.path()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["audit.jsonl", "lock"], "a refused snapshot left files behind");
    let last = audit(dir.path()).pop().unwrap();
    assert_eq!((&last["command"], &last["outcome"]), (&"snapshot".into(), &"failed".into()));
}

#[test]
fn a_non_superuser_owner_can_snapshot_their_database() {
    let db = TestDb::new("store_owner");
    let role = "pgsafe_store_owner";
    db.psql(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
           CREATE ROLE {role} LOGIN; END IF; END $$;
         ALTER DATABASE \"{db}\" OWNER TO {role};
         SET ROLE {role};
         CREATE TABLE owned (id int PRIMARY KEY, note text);
         INSERT INTO owned SELECT g, 'x' FROM generate_series(1, 42) g;",
        db = db.name()
    ));
    let dir = tempfile::tempdir().unwrap();
    let report = snapshot(dir.path(), &["-d", &db.conn_string(), "-U", role]);
    assert_eq!(report["snapshot"]["role"], role);
    assert_eq!(report["snapshot"]["rows"], 42);
    let line = audit(dir.path()).pop().unwrap();
    assert_eq!((&line["role"], &line["outcome"]), (&role.into(), &"ok".into()));

    // A subscription's connection string is for a superuser's eyes only: the owner's snapshot cannot hold
    // it, and says so by name rather than leaving it out.
    db.psql(
        "CREATE SUBSCRIPTION pgsafe_store_sub CONNECTION 'dbname=nowhere' PUBLICATION pub
         WITH (connect = false, slot_name = NONE)",
    );
    let (code, _, stderr) =
        run(pgsafe().args(["snapshot", "-q", "-d", &db.conn_string(), "-U", role, "--store"]).arg(dir.path()));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("pgsafe_store_sub"), "{stderr}");
    db.psql("ALTER SUBSCRIPTION pgsafe_store_sub SET (slot_name = NONE); DROP SUBSCRIPTION pgsafe_store_sub");
}

#[test]
fn no_file_in_the_store_holds_the_password_it_connected_with() {
    const PASSWORD: &str = "store-secret-Vq83z";
    let server = support::start_private(&PrivateClusterOptions {
        password: Some(PASSWORD.to_owned()),
        hba: Some("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256".to_owned()),
        ..PrivateClusterOptions::default()
    });
    let url = |db: &str| format!("postgres://{}:{PASSWORD}@127.0.0.1:{}/{db}", server.user(), server.port());
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let psql = std::process::Command::new(support::cluster().bin("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url("postgres"), "-c"])
        .arg("CREATE TABLE item (id int PRIMARY KEY); INSERT INTO item SELECT generate_series(1, 100);")
        .status()
        .unwrap();
    assert!(psql.success());
    // A snapshot, a failed one (its error goes into the log), a check, a rollback (with its safety snapshot
    // and its check) and a prune, all given the password.
    let report = snapshot(store, &["-d", &url("postgres"), "--label", "with-password"]);
    assert_eq!(report["snapshot"]["server"], format!("postgres@127.0.0.1:{}/postgres", server.port()));
    let (code, _, stderr) = run(pgsafe().args(["snapshot", "-q", "-d", &url("nope"), "--store"]).arg(store));
    assert_eq!(code, 2);
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    run_ok(pgsafe().args(["check", "--latest", "-d", &url("postgres"), "--store"]).arg(store));
    run_ok(
        pgsafe()
            .args(["rollback", "-q", "--latest", "--yes", "--tables", "item", "-d", &url("postgres"), "--store"])
            .arg(store),
    );
    run_ok(pgsafe().args(["prune", "--keep", "0", "-d", &url("postgres"), "--store"]).arg(store));

    let lines = audit(store);
    let commands: Vec<&str> = lines.iter().map(|l| l["command"].as_str().unwrap()).collect();
    assert_eq!(commands, ["snapshot", "snapshot", "check", "snapshot", "check", "rollback", "prune"], "{lines:?}");
    let files = contents(store);
    assert!(files.iter().any(|(n, _)| n.ends_with(".pgsafe")), "the verified snapshot was pruned");
    for (name, bytes) in files {
        assert!(!bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()), "`{name}` holds the password");
    }
}

#[test]
fn files_of_no_snapshot_are_named_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let killed = "shop-20261201T000000Z.pgsafe.partial";
    let orphan = "shop-20261201T000001Z.pgsafe";
    for name in [killed, orphan] {
        std::fs::write(store.join(name), b"not an archive").unwrap();
    }
    let (code, stdout, stderr) = run(pgsafe().args(["snapshots", "--store"]).arg(store));
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
    assert!(stderr.contains(&format!("2 file(s) in `{}` belong to no snapshot", store.display())), "{stderr}");
    assert!(stderr.contains(&format!("  {killed}\n  {orphan}\n")), "{stderr}");

    let out = run_ok(pgsafe().args(["prune", "--keep", "0", "--json", "--store"]).arg(store));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["leftovers"], serde_json::json!([killed, orphan]));
    assert!(store.join(killed).exists() && store.join(orphan).exists(), "prune removed a file of no snapshot");
}

#[test]
fn an_interrupted_snapshot_leaves_no_snapshot_and_an_audit_line_saying_so() {
    use crate::interrupt::{hold_until_held, pgsafe_statements, release, signal, wait_until};
    let db = small_db("store_interrupted");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // The dump waits for its ACCESS SHARE lock behind this one, so the snapshot is surely in flight.
    let holder = hold_until_held(
        &db,
        "LOCK TABLE item IN ACCESS EXCLUSIVE MODE",
        "item",
        "AccessExclusiveLock",
        Duration::from_secs(60),
    );
    let mut child = pgsafe()
        .args(["snapshot", "-q", "-d", &db.conn_string(), "--store"])
        .arg(&store)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the snapshot's dump waits for its lock", &mut child, || !pgsafe_statements(&db).trim().is_empty());
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    release(&db, holder);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the dump was interrupted: no archive was written"), "{stderr}");
    let names: Vec<String> = contents(&store).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["audit.jsonl"], "an interrupted snapshot left files behind");
    let last = audit(&store).pop().unwrap();
    assert_eq!((&last["command"], &last["outcome"]), (&"snapshot".into(), &"failed".into()));
    assert!(last["error"].as_str().unwrap().contains("interrupted"), "{last}");
}

#[test]
fn a_snapshot_waiting_for_the_stores_lock_stops_at_sigterm_and_keeps_nothing() {
    // A CI runner's timeout sends SIGTERM: a snapshot waiting for another writer ends then, not when its
    // wait for the lock runs out.
    use crate::interrupt::{signal, wait_until};
    let db = small_db("store_lock_sigterm");
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let held = store
        .lock(&LockHolder::this_process("pgsafe prune (test holder)"), Duration::ZERO, &pgsafe::cancel::Cancel::new())
        .unwrap();
    let mut child = pgsafe()
        .args(["snapshot", "-q", "--store-lock-timeout", "60", "-d", &db.conn_string(), "--store"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The archive is complete (dumped and verified) before the snapshot asks for the lock.
    wait_until("the snapshot's archive is written", &mut child, || {
        contents(dir.path()).iter().any(|(n, _)| n.ends_with(".pgsafe"))
    });
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    drop(held);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "it waited on: {:?}", started.elapsed());
    assert!(stderr.contains("waiting for the store's lock"), "{stderr}");
    let names: Vec<String> = contents(dir.path()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["audit.jsonl", "lock"], "an interrupted snapshot left files behind");
    assert_eq!(audit(dir.path()).pop().unwrap()["outcome"], "failed");
}

#[test]
fn a_plain_dump_and_restore_leave_an_audit_line_each_in_an_existing_store() {
    let db = small_db("store_audit_dump");
    let copy = TestDb::new("store_audit_copy");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let archive = dir.path().join("shop.pgsafe");
    run_ok(pgsafe().args(["dump", "-q", "-d", &db.conn_string(), "-f"]).arg(&archive).arg("--store").arg(&store));
    // What touches no database leaves no line: a plan, a listing, a script, a dump's dry run.
    run_ok(pgsafe().args(["dump", "--dry-run", "-d", &db.conn_string(), "--store"]).arg(&store));
    for extra in [&["--dry-run"][..], &["--list"], &["-f", "-"]] {
        run_ok(
            pgsafe()
                .arg("restore")
                .arg(&archive)
                .args(["-d", &copy.conn_string()])
                .args(extra)
                .arg("--store")
                .arg(&store),
        );
    }
    run_ok(pgsafe().arg("restore").arg(&archive).args(["-q", "-d", &copy.conn_string(), "--store"]).arg(&store));
    assert_eq!(copy.psql("SELECT count(*) FROM item").trim(), "500");

    let lines = audit(&store);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let archive_path = archive.display().to_string();
    for (line, command, database) in [(&lines[0], "dump", db.name()), (&lines[1], "restore", copy.name())] {
        assert_eq!((&line["command"], &line["outcome"]), (&command.into(), &"ok".into()), "{line}");
        assert_eq!(line["database"], database, "{line}");
        assert_eq!(line["archive"], archive_path.as_str(), "{line}");
        assert_eq!(line["role"], "postgres", "{line}");
        assert!(line["server"].as_str().unwrap().ends_with(&format!("/{database}")), "{line}");
        assert!(line.get("snapshot").is_none(), "{line}");
    }

    // `--no-audit` writes nothing; a restore that fails leaves a failed line.
    let other = TestDb::new("store_audit_noaudit");
    run_ok(
        pgsafe()
            .arg("restore")
            .arg(&archive)
            .args(["-q", "--no-audit", "-d", &other.conn_string(), "--store"])
            .arg(&store),
    );
    assert_eq!(audit(&store).len(), 2);
    let missing = copy.conn_string().replace(copy.name(), "pgsafe_no_such_database");
    let (code, _, stderr) =
        run(pgsafe().arg("restore").arg(&archive).args(["-q", "-d", &missing, "--store"]).arg(&store));
    assert_eq!(code, 2, "{stderr}");
    let last = audit(&store).pop().unwrap();
    assert_eq!((&last["command"], &last["outcome"]), (&"restore".into(), &"failed".into()), "{last}");
    assert_eq!(last["database"], "pgsafe_no_such_database");
    assert!(last["error"].as_str().unwrap().contains("pgsafe_no_such_database"), "{last}");

    // A restore of a snapshot's archive names the snapshot.
    let id = snapshot(&store, &["-d", &db.conn_string(), "--no-prune"])["snapshot"]["id"].as_str().unwrap().to_owned();
    let fresh = TestDb::new("store_audit_snap");
    run_ok(
        pgsafe()
            .arg("restore")
            .arg(store.join(format!("{id}.pgsafe")))
            .args(["-q", "-d", &fresh.conn_string(), "--store"])
            .arg(&store),
    );
    let last = audit(&store).pop().unwrap();
    assert_eq!((&last["command"], &last["snapshot"]), (&"restore".into(), &id.as_str().into()), "{last}");
}

#[test]
fn a_dump_without_a_store_makes_none() {
    let db = small_db("store_audit_none");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.pgsafe");
    let named = dir.path().join("named");
    // Neither the default `./.pgsafe` nor a store named by `--store` or `PGSAFE_DIR` is made to log a dump.
    run_ok(
        pgsafe()
            .args(["dump", "-q", "-d", &db.conn_string(), "-f"])
            .arg(&archive)
            .current_dir(dir.path())
            .env_remove("PGSAFE_DIR")
            .env_remove("BACKUP_DIR"),
    );
    run_ok(pgsafe().args(["dump", "-q", "-d", &db.conn_string(), "-f"]).arg(&archive).env("PGSAFE_DIR", &named));
    run_ok(pgsafe().args(["dump", "-q", "-d", &db.conn_string(), "-f"]).arg(&archive).arg("--store").arg(&named));
    let names: Vec<String> = contents(dir.path()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a.pgsafe"]);

    // A log that cannot be written to is a warning: the dump is done, and its archive is sound.
    std::fs::create_dir_all(named.join("audit.jsonl")).unwrap();
    let (code, _, stderr) =
        run(pgsafe().args(["dump", "-q", "-d", &db.conn_string(), "-f"]).arg(&archive).arg("--store").arg(&named));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("warning: the audit log of the store `"), "{stderr}");
    assert!(stderr.contains("could not record this operation: appending to the audit log"), "{stderr}");
}

/// A webhook on 127.0.0.1 that answers one request with `status` and hands back the JSON it was sent.
pub(crate) fn webhook(status: u16) -> (String, std::thread::JoinHandle<Value>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/services/T0/B0/secretTOKEN", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        write!(&stream, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
        serde_json::from_slice(&body).unwrap()
    });
    (url, server)
}

#[test]
fn a_snapshot_notifies_how_it_ended_and_a_failed_notification_is_a_warning() {
    let db = small_db("store_notify");
    let dir = tempfile::tempdir().unwrap();
    let (url, server) = webhook(200);
    let out =
        run_ok(pgsafe().args(["snapshot", "-q", "-d", &db.conn_string(), "--notify", &url, "--store"]).arg(dir.path()));
    let message = server.join().unwrap();
    let id = out.trim();
    assert!(
        message["text"].as_str().unwrap().starts_with(&format!("pgsafe snapshot `{id}` of `{}` taken on ", db.name())),
        "{message}"
    );
    assert_eq!(message["report"]["snapshot"]["id"], id);
    assert_eq!(message["report"]["snapshot"]["rows"], 500);

    // A failed snapshot is told too, with its error.
    let (url, server) = webhook(200);
    let missing = db.conn_string().replace(db.name(), "pgsafe_no_such_database");
    let (code, _, _) = run(pgsafe()
        .args(["snapshot", "-q", "-d", &missing, "--store"])
        .arg(dir.path())
        .env("PGSAFE_NOTIFY_URL", &url));
    assert_eq!(code, 2);
    let message = server.join().unwrap();
    assert!(
        message["text"].as_str().unwrap().starts_with("pgsafe snapshot of `pgsafe_no_such_database` failed on "),
        "{message}"
    );
    assert_eq!(message["report"]["outcome"], "failed");
    assert!(message["report"]["error"].as_str().unwrap().contains("pgsafe_no_such_database"), "{message}");

    // A receiver that refuses makes a warning that keeps the URL's token to itself; the snapshot stands.
    let (url, server) = webhook(500);
    let (code, out, stderr) =
        run(pgsafe().args(["snapshot", "-q", "-d", &db.conn_string(), "--notify", &url, "--store"]).arg(dir.path()));
    server.join().unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(!out.trim().is_empty());
    assert!(stderr.contains("warning: could not notify: the notification to `http://127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("answered with HTTP status 500"), "{stderr}");
    assert!(!stderr.contains("secretTOKEN") && !stderr.contains("services"), "{stderr}");
}

/// A snapshot whose archive file was deleted by hand restores nothing: `snapshots` and `status` say so,
/// retention keeps the newest good one instead, and `--latest` passes over it.
#[test]
fn a_snapshot_whose_archive_is_missing_is_not_listed_as_verified_nor_kept_nor_picked_by_latest() {
    let db = small_db("store_missing_archive");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let conn = db.conn_string();
    let good = snapshot(store, &["-d", &conn, "--label", "good", "--no-prune"]);
    let good = good["snapshot"]["id"].as_str().unwrap().to_owned();
    let broken = snapshot(store, &["-d", &conn, "--label", "broken", "--no-prune"]);
    let broken = broken["snapshot"]["id"].as_str().unwrap().to_owned();
    assert_eq!(list(store, &[])[1]["archive_state"], "present");
    std::fs::remove_file(store.join(format!("{broken}.pgsafe"))).unwrap();

    let listed = list(store, &[]);
    assert_eq!(ids(&listed), [broken.clone(), good.clone()]);
    assert_eq!((&listed[0]["archive_state"], &listed[1]["archive_state"]), (&"missing".into(), &"present".into()));
    let (code, text, err) = run(pgsafe().args(["snapshots", "--store"]).arg(store));
    assert_eq!(code, 0, "{err}");
    let line = text.lines().find(|l| l.starts_with(&broken)).unwrap();
    assert!(line.trim_end().ends_with("archive missing"), "{line}");
    assert!(err.contains(&format!("warning: snapshot `{broken}` of `{}`: its archive is missing", db.name())), "{err}");
    let status = run_ok(pgsafe().args(["status", "--store"]).arg(store));
    assert!(status.contains("archive missing"), "{status}");

    // Retention keeps the newest snapshot that can restore, not the broken one.
    let out = run_ok(pgsafe().args(["prune", "--dry-run", "--keep", "1", "--store"]).arg(store));
    assert!(out.contains(&format!("keep  {good}  (newest 1)")), "{out}");
    assert!(out.contains(&format!("would remove  {broken}  (its archive is missing)")), "{out}");

    // `--latest` takes the good one and says which it skipped.
    let (code, out, err) = run(pgsafe().args(["check", "-d", &conn, "--latest", "--store"]).arg(store));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("against snapshot `{good}`")), "{out}");
    assert!(err.contains(&format!("skipped snapshot `{broken}`")) && err.contains("its archive is missing"), "{err}");
    let (code, out, err) = run(pgsafe().args(["rollback", "-d", &conn, "--latest", "--plan", "--store"]).arg(store));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&good) && !out.contains(&broken), "{out}");
    assert!(err.contains(&format!("skipped snapshot `{broken}`")), "{err}");

    // A real prune removes it, and what is left restores.
    run_ok(pgsafe().args(["prune", "--keep", "1", "--store"]).arg(store));
    assert_eq!(ids(&list(store, &[])), [good]);
}

/// Defect: `rollback --latest` took a partial snapshot (`-T`), newer than a whole one, and then refused it
/// ("does not hold the whole database"). `--latest` of `rollback` and `check` passes partial snapshots
/// over, naming them, as `dry-run -- COMMAND` does; `rollback --latest --tables` may still take one.
#[test]
fn latest_skips_a_partial_snapshot_for_the_newest_whole_one() {
    let db = TestDb::new("store_latest_partial");
    db.psql("CREATE TABLE users (id int PRIMARY KEY); INSERT INTO users SELECT generate_series(1, 100); CREATE TABLE big_log (id int);");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let conn = db.conn_string();
    let whole = snapshot(store, &["-d", &conn, "--label", "whole", "--no-prune"]);
    let whole = whole["snapshot"]["id"].as_str().unwrap().to_owned();
    let partial = snapshot(store, &["-d", &conn, "-T", "big_log", "--label", "partial", "--no-prune"]);
    let partial = partial["snapshot"]["id"].as_str().unwrap().to_owned();
    db.psql("DELETE FROM users WHERE id > 50");
    let skipped = format!("skipped snapshot `{partial}` of `{}`: it does not hold the whole database", db.name());

    let (code, out, err) = run(pgsafe().args(["rollback", "-d", &conn, "--latest", "--plan", "--store"]).arg(store));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&whole) && !out.contains(&partial), "{out}");
    assert!(err.contains(&skipped) && err.contains("-T big_log"), "{err}");
    let (code, out, err) = run(pgsafe().args(["check", "-d", &conn, "--latest", "--store"]).arg(store));
    assert!(matches!(code, 0 | 1), "{out}{err}");
    assert!(out.contains(&format!("against snapshot `{whole}`")), "{out}");
    assert!(err.contains(&skipped), "{err}");
    // Some tables' rows: the partial one holds them.
    let (code, out, err) =
        run(pgsafe().args(["rollback", "-d", &conn, "--latest", "--plan", "--tables", "users", "--store"]).arg(store));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&partial), "{out}");
}

/// Defect: SIGTERM during the verification of a snapshot was ignored, and the snapshot was kept (exit 0).
/// Sent once the archive is written, while it is read back, it stops the snapshot: exit 2, no archive.
#[test]
fn sigterm_during_a_snapshots_verification_keeps_no_snapshot_and_exits_2() {
    use crate::interrupt::{signal, wait_until};
    let db = crate::faults::big_db("store_verify_sigterm");
    let dir = tempfile::tempdir().unwrap();
    let mut child = pgsafe()
        .args(["snapshot", "-q", "-j", "1", "-d", &db.conn_string(), "--store"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The archive appears whole (renamed from its `.partial`) when the dump ends; verification follows.
    wait_until("the snapshot's archive is written", &mut child, || {
        std::fs::read_dir(dir.path()).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".pgsafe"))
    });
    let started = Instant::now();
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "it went on for {:?}", started.elapsed());
    let names: Vec<String> = contents(dir.path()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["audit.jsonl"], "an interrupted snapshot left files behind");
    let last = audit(dir.path()).pop().unwrap();
    assert_eq!((&last["command"], &last["outcome"]), (&"snapshot".into(), &"failed".into()));
}

#[test]
fn snapshots_unpin_clears_a_pin_a_killed_migration_left() {
    let db = TestDb::new("store_unpin");
    db.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);");
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &["-d", &db.conn_string()])["snapshot"]["id"].as_str().unwrap().to_owned();
    let store = LocalStore::open(dir.path()).unwrap();
    let parsed = pgsafe::store::SnapshotId::parse(&id).unwrap();
    let mut meta = store.get(&parsed).unwrap();
    meta.pinned = Some("migration `0001.sql` is running (pid 1 on gone)".into());
    store.put(&meta).unwrap();
    let out = run_ok(pgsafe().args(["snapshots", "--unpin", &id, "--store"]).arg(dir.path()));
    assert!(out.contains(&format!("unpinned `{id}` (it was pinned: migration `0001.sql` is running")), "{out}");
    assert_eq!(store.get(&parsed).unwrap().pinned, None);
    let again = run_ok(pgsafe().args(["snapshots", "--unpin", &id, "--store"]).arg(dir.path()));
    assert!(again.contains("was not pinned"), "{again}");
}
