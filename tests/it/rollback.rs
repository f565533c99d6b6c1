//! `pgsafe rollback` as a user meets it, on the throwaway cluster with pagila: what a rollback would lose,
//! the swap with another session connected, in place and by tables, each all or nothing, a damaged
//! snapshot and a restore that fails half way (the current database untouched), a database's owner
//! who is not a superuser, and an application that keeps writing (the report counts every row it
//! discarded). States are compared with the corpus's `compare-dbs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::dump_restore::{pgsafe, run, run_ok};
use crate::support::{self, TestDb, cluster};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

/// Loads pagila into `db`; `false` (and the test is reported as not run) without the corpus.
pub(crate) fn pagila(db: &TestDb, test: &str) -> bool {
    let dir = corpus().join("pagila");
    if !dir.is_dir() {
        support::cannot_run(test, "no ../shared/corpus/pagila");
        return false;
    }
    for file in ["pagila-schema.sql", "pagila-data.sql"] {
        db.psql(&std::fs::read_to_string(dir.join(file)).unwrap());
    }
    true
}

/// A database holding what `db` holds now (made from it as a template), dropped with the guard.
pub(crate) fn copy_of(db: &TestDb, hint: &str) -> TestDb {
    let copy = TestDb::new(hint);
    let admin = |sql: String| cluster().execute_admin(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    admin(format!("DROP DATABASE \"{}\"", copy.name()));
    admin(format!("CREATE DATABASE \"{}\" TEMPLATE \"{}\"", copy.name(), db.name()));
    copy
}

/// `compare-dbs a b`: whether the two databases match in schema and data, and what it printed.
pub(crate) fn compare_dbs(a: &str, b: &str) -> (bool, String) {
    let c = cluster();
    let path = format!("{}:{}", c.bin_dir().display(), std::env::var("PATH").unwrap_or_default());
    let diffs = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(corpus().join("compare-dbs"))
        .args([a, b])
        .arg(diffs.path())
        .env("PATH", path)
        .env("PGHOST", c.host())
        .env("PGPORT", c.port().to_string())
        .env("PGUSER", c.user())
        .stdin(Stdio::null())
        .output()
        .expect("running compare-dbs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for diff in ["schema.diff", "data.diff"] {
        let found = std::fs::read_to_string(diffs.path().join(diff)).unwrap_or_default();
        text.push_str(&found.lines().take(40).collect::<Vec<_>>().join("\n"));
    }
    assert!(matches!(out.status.code(), Some(0 | 1)), "compare-dbs could not run:\n{text}");
    (out.status.success(), text)
}

fn snapshot(store: &Path, db: &TestDb, extra: &[&str]) -> String {
    let out =
        run_ok(pgsafe().args(["snapshot", "-q", "--store"]).arg(store).args(["-d", &db.conn_string()]).args(extra));
    out.trim().to_owned()
}

fn rollback(store: &Path, db: &TestDb, args: &[&str]) -> (i32, String, String) {
    run(pgsafe().args(["rollback", "-q", "--store"]).arg(store).args(["-d", &db.conn_string()]).args(args))
}

fn plan(store: &Path, db: &TestDb, args: &[&str]) -> Value {
    let (code, out, err) = rollback(store, db, &[&["--plan", "--json"], args].concat());
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// The tables of a plan with the given change, by name.
fn tables(plan: &Value, change: &str) -> Vec<String> {
    plan["changes"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["change"] == change)
        .map(|t| t["table"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn databases_like(pattern: &str) -> Vec<String> {
    let admin = TestDb::new("list");
    let out = admin.psql(&format!("SELECT datname FROM pg_database WHERE datname LIKE '{pattern}' ORDER BY 1"));
    out.lines().map(str::to_owned).collect()
}

pub(crate) fn drop_database(name: &str) {
    cluster().execute_admin(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).unwrap();
}

fn snapshot_ids(store: &Path) -> Vec<String> {
    let out = run_ok(pgsafe().args(["snapshots", "--json", "--store"]).arg(store));
    serde_json::from_str::<Vec<Value>>(&out).unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_plan_names_exactly_the_tables_changed_since_the_snapshot_and_changes_nothing() {
    let db = TestDb::new("rb_plan");
    if !pagila(&db, "a_plan_names_exactly_the_tables_changed_since_the_snapshot") {
        return;
    }
    db.psql("CREATE TABLE tree (id int PRIMARY KEY, parent_id int); INSERT INTO tree SELECT g, g - 1 FROM generate_series(1, 10) g;");
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    let nothing = plan(dir.path(), &db, &[&id]);
    assert_eq!(tables(&nothing, "changed"), Vec::<String>::new(), "{nothing}");
    assert_eq!(nothing["changes"]["objects"], Value::Array(vec![]));

    // Same row count, other content; fewer rows; a new table, a new view, a view dropped; a new column
    // holding values (and one holding only its default, which loses nothing).
    db.psql(
        "ALTER TABLE tree ADD COLUMN path text; UPDATE tree SET path = id::text; ALTER TABLE tree DROP COLUMN parent_id;
         ALTER TABLE category ADD COLUMN note text; UPDATE category SET note = 'x' WHERE category_id <= 4;
         ALTER TABLE language ADD COLUMN active bool DEFAULT true;
         UPDATE customer SET first_name = 'CHANGED' WHERE customer_id = 7;
         DELETE FROM film_actor WHERE actor_id = 3;
         CREATE TABLE audit_note (id int); INSERT INTO audit_note VALUES (1), (2), (3);
         CREATE VIEW recent AS SELECT 1 AS x;
         DROP VIEW actor_info;",
    );
    let before = copy_of(&db, "rb_plan_before");
    let p = plan(dir.path(), &db, &["--latest"]);
    assert_eq!(p["snapshot"]["id"], id.as_str());
    assert_eq!(
        tables(&p, "changed"),
        ["public.category", "public.customer", "public.film_actor", "public.tree"],
        "{p}"
    );
    let tree = p["changes"]["tables"].as_array().unwrap().iter().find(|t| t["table"] == "public.tree").unwrap();
    assert_eq!(tree["columns_gone"], serde_json::json!(["parent_id"]), "{p}");
    assert_eq!(tree["columns_new"], serde_json::json!([{"column": "path", "values": 10}]), "{p}");
    assert_eq!(
        tree["note"],
        "columns gone since the snapshot, brought back: `parent_id`; columns added since the snapshot, dropped: `path` 10 values"
    );
    let category = p["changes"]["tables"].as_array().unwrap().iter().find(|t| t["table"] == "public.category").unwrap();
    assert_eq!(category["columns_new"], serde_json::json!([{"column": "note", "values": 4}]), "{p}");
    assert_eq!(tables(&p, "new"), ["public.audit_note"]);
    assert_eq!(tables(&p, "gone"), Vec::<String>::new());
    let new_table = p["changes"]["tables"].as_array().unwrap().iter().find(|t| t["change"] == "new").unwrap();
    assert_eq!(new_table["rows_now"], 3);
    let objects: Vec<(String, String)> = p["changes"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["object"].as_str().unwrap().to_owned(), o["change"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        objects,
        [
            ("DEFAULT public.language active".to_owned(), "new".to_owned()),
            ("TABLE public.audit_note".to_owned(), "new".to_owned()),
            ("TABLE public.category".to_owned(), "changed".to_owned()),
            ("TABLE public.language".to_owned(), "changed".to_owned()),
            ("TABLE public.tree".to_owned(), "changed".to_owned()),
            ("VIEW public.actor_info".to_owned(), "gone".to_owned()),
            ("VIEW public.recent".to_owned(), "new".to_owned()),
        ]
    );
    assert!(p["estimated_seconds"].as_f64().unwrap() > 0.0);
    // The text plan says the same, and nothing changed: no line in the audit log, the database as it was.
    let (code, text, err) = rollback(dir.path(), &db, &["--plan", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("public.customer  rows now 599, in the snapshot 599"), "{text}");
    assert!(text.contains("public.audit_note  rows now 3"), "{text}");
    let (same, report) = compare_dbs(before.name(), db.name());
    assert!(same, "{report}");
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(!audit.contains("\"rollback\""), "{audit}");
}

#[test]
fn a_whole_rollback_with_another_session_connected_puts_the_snapshot_in_place_and_keeps_the_replaced_one() {
    let db = TestDb::new("rb_swap");
    if !pagila(&db, "a_whole_rollback_with_another_session_connected") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &["--label", "before-0042"]);
    let expected = copy_of(&db, "rb_swap_expected");
    db.psql(
        "DELETE FROM payment WHERE amount < 2; UPDATE film SET title = lower(title);
         CREATE TABLE added (x int); INSERT INTO added VALUES (42);",
    );
    let changed = copy_of(&db, "rb_swap_changed");
    // Another client, in the middle of a query.
    let mut other = Command::new(cluster().bin("psql"))
        .args(["-X", "-q", "-d", &db.conn_string(), "-c", "SELECT pg_sleep(120)"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));

    // Without a terminal and without --yes: refused, nothing changed.
    let (code, _, err) = rollback(dir.path(), &db, &[&id]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs a confirmation") && err.contains("--yes"), "{err}");

    let (code, out, err) = rollback(dir.path(), &db, &[&id, "--yes", "--json", "--terminate-after", "1"]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let kept = report["replaced_database_kept_as"].as_str().unwrap().to_owned();
    assert_eq!(report["sessions"]["terminated"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["health"]["healthy"], true, "{report}");
    assert!(other.wait().unwrap().code() != Some(0), "the other session was not ended");
    let (same, text) = compare_dbs(expected.name(), db.name());
    assert!(same, "the rolled back database is not the snapshot's state:\n{text}");
    let (same, text) = compare_dbs(changed.name(), &kept);
    assert!(same, "the replaced database was not kept as it was:\n{text}");
    // The state it replaced is also a snapshot, protecting the one restored.
    let safety = report["safety_snapshot"].as_str().unwrap();
    assert!(safety.ends_with("-before-rollback"), "{safety}");
    let list: Vec<Value> =
        serde_json::from_str(&run_ok(pgsafe().args(["snapshots", "--json", "--store"]).arg(dir.path()))).unwrap();
    let meta = list.iter().find(|s| s["id"] == safety).unwrap();
    assert_eq!(meta["protects"], id.as_str());
    let line: Value =
        serde_json::from_str(std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap().lines().last().unwrap())
            .unwrap();
    assert_eq!(
        (&line["command"], &line["outcome"], &line["snapshot"]),
        (&"rollback".into(), &"ok".into(), &id.clone().into())
    );
    assert_eq!(line["replaced_database"], kept.as_str());
    // A prune drops the replaced database once asked to (the newest is kept by default).
    let prune = |extra: &[&str]| {
        let out = run_ok(
            pgsafe()
                .args(["prune", "--json", "--drop-replaced", "-d", &db.conn_string(), "--store"])
                .arg(dir.path())
                .args(extra),
        );
        serde_json::from_str::<Value>(&out).unwrap()["replaced_databases"].clone()
    };
    assert_eq!(prune(&[])["kept"], serde_json::json!([kept]));
    assert_eq!(prune(&["--keep-replaced", "0", "--dry-run"])["dropped"], serde_json::json!([kept]));
    assert_eq!(databases_like(&kept), std::slice::from_ref(&kept));
    assert_eq!(prune(&["--keep-replaced", "0"])["dropped"], serde_json::json!([kept]));
    assert_eq!(databases_like(&kept), Vec::<String>::new());
    assert_eq!(prune(&["--keep-replaced", "0"])["gone"], serde_json::json!([kept]));
    drop_database(&kept);
}

#[test]
fn a_damaged_snapshot_is_refused_before_anything_changes() {
    let db = TestDb::new("rb_damaged");
    db.psql("CREATE TABLE item (id int PRIMARY KEY, name text); INSERT INTO item SELECT g, md5(g::text) FROM generate_series(1, 20000) g;");
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    db.psql("DELETE FROM item WHERE id > 100");
    let before = copy_of(&db, "rb_damaged_before");
    // One byte flipped in the middle of the archive, in its data.
    let path = dir.path().join(format!("{id}.pgsafe"));
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 3;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    for mode in [&[][..], &["--in-place"][..], &["--tables", "item"][..]] {
        let (code, _, err) = rollback(dir.path(), &db, &[&[id.as_str(), "--yes"][..], mode].concat());
        assert_eq!(code, 2, "{mode:?}: {err}");
        assert!(err.contains("did not verify") && err.contains("nothing was changed"), "{err}");
    }
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");
    // No safety snapshot was taken, no database made.
    assert_eq!(snapshot_ids(dir.path()), std::slice::from_ref(&id));
    assert_eq!(databases_like(&format!("{}_rollback_%", db.name())), Vec::<String>::new());
}

/// Another snapshot's archive, sound in every checksum, put in the place of the one a snapshot was taken
/// as: the manifest's BLAKE3 in its metadata, and in its audit line when the metadata is forged too, tell.
#[test]
fn an_archive_replaced_in_the_store_is_refused_by_its_recorded_manifest_hash() {
    let db = TestDb::new("rb_replaced");
    db.psql("CREATE TABLE item (id int PRIMARY KEY, name text); INSERT INTO item SELECT g, md5(g::text) FROM generate_series(1, 2000) g;");
    let dir = tempfile::tempdir().unwrap();
    let old = snapshot(dir.path(), &db, &["--label", "old"]);
    db.psql("DELETE FROM item WHERE id > 100");
    let new = snapshot(dir.path(), &db, &["--label", "new"]);
    let meta = |id: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(format!("{id}.json"))).unwrap()).unwrap()
    };
    let (old_hash, new_hash) = (meta(&old)["manifest_blake3"].clone(), meta(&new)["manifest_blake3"].clone());
    assert_eq!(old_hash.as_str().map(str::len), Some(64), "{old_hash}");
    assert_ne!(old_hash, new_hash);
    let audited: Vec<Value> = std::fs::read_to_string(dir.path().join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["command"] == "snapshot" && e["snapshot"] == old.as_str())
        .collect();
    assert_eq!(audited[0]["manifest_blake3"], old_hash);
    db.psql("DELETE FROM item WHERE id > 10");
    let before = copy_of(&db, "rb_replaced_before");
    // The new snapshot's archive under the old one's name.
    std::fs::copy(dir.path().join(format!("{new}.pgsafe")), dir.path().join(format!("{old}.pgsafe"))).unwrap();
    let (code, _, err) = rollback(dir.path(), &db, &[old.as_str(), "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not the one its metadata recorded") && err.contains(new_hash.as_str().unwrap()), "{err}");
    // The metadata forged to match: the audit line still tells.
    let forged = std::fs::read_to_string(dir.path().join(format!("{old}.json")))
        .unwrap()
        .replace(old_hash.as_str().unwrap(), new_hash.as_str().unwrap());
    std::fs::write(dir.path().join(format!("{old}.json")), forged).unwrap();
    for mode in [&[][..], &["--in-place"][..], &["--plan"][..]] {
        let (code, _, err) = rollback(dir.path(), &db, &[&[old.as_str(), "--yes"][..], mode].concat());
        assert_eq!(code, 2, "{mode:?}: {err}");
        assert!(err.contains("is not the one the audit log recorded"), "{mode:?}: {err}");
    }
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");
    assert_eq!(databases_like(&format!("{}_rollback_%", db.name())), Vec::<String>::new());
}

#[test]
fn a_rollback_whose_restore_fails_half_way_leaves_the_database_untouched() {
    let db = TestDb::new("rb_half");
    let role = "pgsafe_rb_gone_owner";
    db.psql(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role}; END IF; END $$;
         CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 1000);
         CREATE TABLE b (id int PRIMARY KEY, a int REFERENCES a); INSERT INTO b SELECT g, g FROM generate_series(1, 1000) g;
         ALTER TABLE b OWNER TO {role};"
    ));
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    // The snapshot's `ALTER TABLE b OWNER TO` now names a role that is gone: its restore fails after it
    // has made the table and loaded a's rows.
    db.psql(&format!(
        "ALTER TABLE b OWNER TO CURRENT_USER; DROP ROLE {role};
         DELETE FROM b WHERE id > 500; CREATE TABLE c (x int); INSERT INTO c VALUES (1);"
    ));
    let before = copy_of(&db, "rb_half_before");
    for mode in [&[][..], &["--in-place"][..]] {
        let (code, _, err) = rollback(dir.path(), &db, &[&[id.as_str(), "--yes"][..], mode].concat());
        assert_eq!(code, 2, "{mode:?}: {err}");
        assert!(err.contains("was not changed"), "{mode:?}: {err}");
        assert!(err.contains(role), "{mode:?}: {err}");
        // Its safety snapshot holds the state the database is still in: it is removed again, so that
        // failed attempts do not fill retention's newest N.
        assert!(err.contains("-before-rollback` was removed again, as nothing was changed"), "{mode:?}: {err}");
        assert_eq!(snapshot_ids(dir.path()), std::slice::from_ref(&id), "{mode:?}");
        let (same, text) = compare_dbs(before.name(), db.name());
        assert!(same, "{mode:?}: {text}");
    }
    assert_eq!(databases_like(&format!("{}_rollback_%", db.name())), Vec::<String>::new());
    let lines = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let failed = lines.lines().filter(|l| l.contains("\"rollback\"") && l.contains("\"failed\"")).count();
    assert_eq!(failed, 2, "{lines}");
}

#[test]
fn a_rollback_of_tables_is_all_or_nothing_and_leaves_other_tables_alone() {
    let db = TestDb::new("rb_tables");
    if !pagila(&db, "a_rollback_of_tables_is_all_or_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    let snapshot_state = copy_of(&db, "rb_tables_snapshot");
    // A customer the snapshot lacks, with a payment (a table the rollback does not touch) referencing it.
    db.psql(
        "UPDATE customer SET last_name = 'CHANGED' WHERE customer_id = 9;
         INSERT INTO customer (customer_id, store_id, first_name, last_name, address_id, active)
           VALUES (9001, 1, 'New', 'Customer', 1, 1);
         INSERT INTO payment (payment_id, customer_id, staff_id, rental_id, amount, payment_date)
           VALUES (90001, 9001, 1, 1, 9.99, '2022-02-02');
         UPDATE actor SET first_name = 'X' WHERE actor_id = 1;",
    );
    let before = copy_of(&db, "rb_tables_before");
    let p = plan(dir.path(), &db, &["--latest", "--tables", "customer"]);
    assert_eq!(tables(&p, "changed"), ["public.customer"]);
    assert_eq!(p["changes"]["tables"].as_array().unwrap().len(), 1, "{p}");
    // The payment would point at a customer the rollback removes: refused, all of it rolled back.
    let (code, _, err) = rollback(dir.path(), &db, &[&id, "--yes", "--tables", "customer"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("rolled back") && err.contains("payment"), "{err}");
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");

    db.psql("DELETE FROM payment WHERE customer_id = 9001");
    let (code, _, err) = rollback(dir.path(), &db, &[&id, "--yes", "--tables", "customer"]);
    assert_eq!(code, 0, "{err}");
    let p = plan(dir.path(), &db, &[&id]);
    // Only the actor change (not rolled back) and the payment deleted above remain.
    let changed = tables(&p, "changed");
    assert!(!changed.contains(&"public.customer".to_owned()), "{changed:?}");
    assert!(changed.contains(&"public.actor".to_owned()), "{changed:?}");
    // Putting actor back too gives the snapshot's state.
    let (code, _, err) = rollback(dir.path(), &db, &[&id, "--yes", "--tables", "actor"]);
    assert_eq!(code, 0, "{err}");
    let (same, text) = compare_dbs(snapshot_state.name(), db.name());
    assert!(same, "{text}");
}

#[test]
fn a_rollback_of_tables_whose_columns_changed_type_is_refused_and_changes_nothing() {
    // Found by testing the workflow: a snapshot, a migration that made `bigint` `double precision`, then
    // `rollback --tables` loaded the snapshot's binary rows as 4.94e-322, said "restored and verified",
    // and the health check said healthy.
    let db = TestDb::new("rb_types");
    db.psql(
        "CREATE TABLE acct (id int PRIMARY KEY, balance bigint, rate int);
         INSERT INTO acct SELECT g, g * 100, g FROM generate_series(1, 20) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    db.psql("ALTER TABLE acct ALTER COLUMN balance TYPE double precision, ALTER COLUMN rate TYPE real");
    let before = copy_of(&db, "rb_types_before");
    let (code, _, err) = rollback(dir.path(), &db, &[&id, "--yes", "--tables", "acct"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`balance` is `double precision` there and `bigint` in the archive"), "{err}");
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");
    // The whole database rolled back in place puts the types back with the rows.
    let (code, _, err) = rollback(dir.path(), &db, &[&id, "--yes", "--in-place"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(db.psql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'acct'::regclass AND attname = 'balance'"), "bigint\n");
    assert_eq!(db.psql("SELECT sum(balance) FROM acct"), "21000\n");
}

/// Found by testing as the users are (a managed service): a database's owner rolling back in place, with
/// an extension a superuser made in the database, failed on `DROP EXTENSION` ("must be owner of
/// extension"): every failed migration of such a database needed a person.
#[test]
fn an_owner_rolls_back_in_place_keeping_an_extension_a_superuser_made() {
    let db = TestDb::new("rb_owner_ext");
    let role = "pgsafe_rb_owner_ext";
    db.psql("CREATE EXTENSION citext");
    db.give_to(
        role,
        "CREATE TABLE account (id int PRIMARY KEY, email citext);
         INSERT INTO account SELECT g, 'U' || g || '@x.org' FROM generate_series(1, 200) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &["-U", role]);
    let expected = copy_of(&db, "rb_owner_ext_expected");
    db.psql(&format!("SET ROLE {role}; DELETE FROM account WHERE id <= 50; CREATE TABLE tags (id int);"));
    let (code, _, err) = run(pgsafe().args(["rollback", "-q", "--store"]).arg(dir.path()).args([
        "-d",
        &db.conn_string(),
        "-U",
        role,
        &id,
        "--yes",
        "--in-place",
    ]));
    assert_eq!(code, 0, "{err}");
    let (same, text) = compare_dbs(expected.name(), db.name());
    assert!(same, "{text}");
    assert_eq!(db.psql("SELECT count(*) FROM account WHERE email = 'u7@X.ORG'").trim(), "1");
    db.psql(&format!("ALTER DATABASE \"{}\" OWNER TO {}; DROP OWNED BY {role};", db.name(), cluster().user()));
}

/// An owner with CREATEDB could start a swap on a database holding another role's settings (`ALTER ROLE
/// reader IN DATABASE ... SET`, a DBA's): the whole restore ran, then giving the copy those settings was
/// refused (42501), exit 2, and the hint named no way on. It is refused before anything, naming the role
/// and `--in-place`, which needs no such right; `migrate` rolls back in place by itself then.
#[test]
fn a_swap_the_owner_cannot_give_another_roles_settings_is_refused_before_anything() {
    let db = TestDb::new("rb_role_settings");
    let role = "pgsafe_rb_settings_owner";
    db.give_to(role, "CREATE TABLE item (id int PRIMARY KEY); INSERT INTO item SELECT generate_series(1, 100);");
    db.psql(&format!(
        "ALTER ROLE {role} CREATEDB;
         DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgsafe_rb_reader') THEN
           CREATE ROLE pgsafe_rb_reader; END IF; END $$;
         ALTER ROLE pgsafe_rb_reader IN DATABASE \"{db}\" SET statement_timeout = '5s';",
        db = db.name()
    ));
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &["-U", role]);
    db.psql("DELETE FROM item WHERE id <= 10;");
    let databases = "SELECT count(*) FROM pg_database WHERE datname LIKE 't_rb_role_settings%'";
    let before = db.psql(databases);
    let (code, _, err) = rollback(dir.path(), &db, &["-U", role, &id, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds settings of the roles `pgsafe_rb_reader`") && err.contains("--in-place"), "{err}");
    assert_eq!(db.psql(databases), before, "no copy was made");
    let (code, _, err) = rollback(dir.path(), &db, &["-U", role, &id, "--yes", "--in-place"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(db.psql("SELECT count(*) FROM item").trim(), "100");
    db.psql(&format!(
        "ALTER ROLE pgsafe_rb_reader IN DATABASE \"{db}\" RESET ALL; ALTER ROLE {role} NOCREATEDB;
         ALTER DATABASE \"{db}\" OWNER TO {}; DROP OWNED BY {role};",
        cluster().user(),
        db = db.name()
    ));
}

#[test]
fn a_non_superuser_owner_can_roll_back_in_place_and_by_tables_but_not_swap() {
    let db = TestDb::new("rb_owner");
    let role = "pgsafe_rb_owner";
    db.give_to(
        role,
        "CREATE TABLE parent (id int PRIMARY KEY, name text);
         CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent ON DELETE CASCADE, note text);
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $f$BEGIN NEW.note := 'touched'; RETURN NEW; END$f$;
         CREATE TRIGGER touch BEFORE INSERT ON child FOR EACH ROW EXECUTE FUNCTION touch();
         CREATE VIEW summary AS SELECT p.name, count(c.id) FROM parent p LEFT JOIN child c ON c.parent_id = p.id GROUP BY 1;
         INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 300) g;
         INSERT INTO child SELECT g, 1 + g % 300, 'x' FROM generate_series(1, 3000) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let as_owner = |args: &[&str]| {
        run(pgsafe()
            .args(["rollback", "-q", "--store"])
            .arg(dir.path())
            .args(["-d", &db.conn_string(), "-U", role])
            .args(args))
    };
    let id = snapshot(dir.path(), &db, &["-U", role]);
    let expected = copy_of(&db, "rb_owner_expected");
    let change = format!(
        "SET ROLE {role};
         DELETE FROM parent WHERE id <= 10;
         UPDATE child SET note = 'edited' WHERE id % 7 = 0;
         CREATE TABLE extra (x int);"
    );
    db.psql(&change);

    let (code, _, err) = as_owner(&[&id, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("lacks CREATEDB") && err.contains("--in-place"), "{err}");

    let (code, _, err) = as_owner(&[&id, "--yes", "--in-place"]);
    assert_eq!(code, 0, "{err}");
    let (same, text) = compare_dbs(expected.name(), db.name());
    assert!(same, "in place:\n{text}");

    db.psql(&change);
    db.psql("DROP TABLE extra");
    // Parent's rows come back although child (not rolled back) references them with ON DELETE CASCADE:
    // the rows deleted to empty parent must not cascade into child.
    let (code, _, err) = as_owner(&[&id, "--yes", "--tables", "parent", "child"]);
    assert_eq!(code, 0, "{err}");
    let (same, text) = compare_dbs(expected.name(), db.name());
    assert!(same, "tables:\n{text}");
    db.psql(&format!("SET ROLE {role}; UPDATE child SET note = 'edited' WHERE id = 5;"));
    let (code, _, err) = as_owner(&[&id, "--yes", "--tables", "parent"]);
    assert_eq!(code, 0, "{err}");
    let child_note = db.psql("SELECT note FROM child WHERE id = 5");
    assert_eq!(child_note.trim(), "edited", "a table outside --tables was changed");
    assert_eq!(db.psql("SELECT count(*) FROM child").trim(), "3000");
}

#[test]
fn the_health_check_after_a_rollback_names_what_the_snapshot_itself_held_wrong_and_exits_1() {
    let db = TestDb::new("rb_health");
    db.psql(
        "CREATE TABLE parent (id int PRIMARY KEY);
         CREATE TABLE child (id int PRIMARY KEY, parent_id int);
         INSERT INTO parent SELECT generate_series(1, 10);
         INSERT INTO child VALUES (1, 1), (2, 99);
         ALTER TABLE child ADD CONSTRAINT child_parent FOREIGN KEY (parent_id) REFERENCES parent NOT VALID;",
    );
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    db.psql("DELETE FROM child WHERE id = 2; INSERT INTO child VALUES (3, 3);");
    let (url, hook) = crate::store::webhook(200);
    let (code, out, err) = rollback(dir.path(), &db, &[&id, "--yes", "--json", "--tables", "child", "--notify", &url]);
    assert_eq!(code, 1, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let message = hook.join().unwrap();
    let text = message["text"].as_str().unwrap();
    assert!(text.starts_with(&format!("pgsafe rolled `{}` back to snapshot `{id}` on ", db.name())), "{text}");
    assert_eq!(message["report"]["health"]["healthy"], false);
    // `pgsafe check` says the same, and tells the webhook which error.
    let (url, hook) = crate::store::webhook(200);
    let (code, _, err) = run(pgsafe().args(["check", "-d", &db.conn_string(), "--notify", &url]));
    assert_eq!(code, 1, "{err}");
    let text = hook.join().unwrap()["text"].as_str().unwrap().to_owned();
    assert!(text.contains("unhealthy") && text.contains("foreign-key-violation"), "{text}");
    let health = &report["health"];
    assert_eq!(health["healthy"], false, "{report}");
    let violation = health["findings"].as_array().unwrap().iter().find(|f| f["check"] == "foreign-key-violation");
    assert!(violation.is_some_and(|f| f["object"].as_str().unwrap().contains("child")), "{health}");
    // The rollback itself happened: the rows are the snapshot's.
    assert_eq!(db.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM child").trim(), "1,2");
    // And --no-check skips it.
    db.psql("INSERT INTO child VALUES (4, 4)");
    let (code, _, err) = rollback(dir.path(), &db, &[&id, "--yes", "--no-check", "--tables", "child"]);
    assert_eq!(code, 0, "{err}");
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().filter(|l| l.contains("\"command\":\"check\"")).count(), 1, "{audit}");
}

#[test]
fn a_rollback_interrupted_by_sigterm_during_its_restore_drops_the_new_database_and_changes_nothing() {
    use crate::interrupt::{signal, wait_until};
    let db = crate::faults::big_db("rb_sigterm");
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    db.psql("DELETE FROM big WHERE id % 10 = 0");
    let before = copy_of(&db, "rb_sigterm_before");
    let mut child = pgsafe()
        .args(["rollback", "-q", "--yes", "--no-safety-snapshot", "-j", "1", "--store"])
        .arg(dir.path())
        .args(["-d", &db.conn_string(), &id])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let new_database = format!("{}_rollback_%", db.name());
    let loading = || {
        before.psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE '{new_database}' AND query LIKE 'COPY %' AND state = 'active'"
        )) == "1\n"
    };
    wait_until("the restore's load started", &mut child, loading);
    signal(&child, "TERM");
    let (code, stderr) = crate::faults::finish(child);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("was not changed"), "{stderr}");
    assert_eq!(databases_like(&new_database), Vec::<String>::new(), "the new database was left behind");
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!((&last["command"], &last["outcome"]), (&"rollback".into(), &"failed".into()));
}

/// A rollback whose health check is interrupted is not "rolled back and healthy": the rollback is done,
/// the check did not run, and the exit code says so (2, as any interrupted command), with the check to
/// run. Before, it exited 0 with only a warning. The check is held on another table's lock (it waits up
/// to 5 s for one), so the signal comes while it runs.
#[test]
fn a_rollback_whose_health_check_is_interrupted_does_not_exit_0() {
    use crate::interrupt::{hold_until_held, signal, wait_until};
    let db = TestDb::new("rb_check_sigterm");
    db.psql(
        "CREATE TABLE t1 (id int PRIMARY KEY, v text); INSERT INTO t1 SELECT g, g::text FROM generate_series(1, 1000) g;
         CREATE TABLE t2 (id int PRIMARY KEY); INSERT INTO t2 SELECT generate_series(1, 100);",
    );
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    db.psql("DELETE FROM t1 WHERE id <= 10");
    let mut application = hold_until_held(
        &db,
        "LOCK TABLE t2 IN ACCESS EXCLUSIVE MODE",
        "t2",
        "AccessExclusiveLock",
        std::time::Duration::from_secs(30),
    );
    let mut child = pgsafe()
        .args(["rollback", "-q", "--yes", "--no-safety-snapshot", "--tables", "t1", "--store"])
        .arg(dir.path())
        .args(["-d", &db.conn_string(), &id])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let checking = || {
        db.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT count(*) FROM %t2%' AND wait_event_type = 'Lock'",
        ) == "1\n"
    };
    wait_until("the health check waits for t2's lock", &mut child, checking);
    signal(&child, "TERM");
    let (code, stderr) = crate::faults::finish(child);
    let _ = application.kill();
    let _ = application.wait();
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is done, but its health check could not run"), "{stderr}");
    assert!(stderr.contains(&format!("pgsafe check -d {} --against {id}", db.name())), "{stderr}");
    assert_eq!(db.psql("SELECT count(*) FROM t1"), "1000\n", "the rollback itself is done");
}

/// A second Ctrl-C stops a rollback at once, but not with the database closed to new sessions: while the
/// swap waits for the application's session to leave, two signals put the database back open, under its
/// name and as it was, and say so (exit 3). Before, it stayed closed (`ALLOW_CONNECTIONS false`) and the
/// command the message gave failed on it.
#[test]
fn a_second_signal_during_the_swap_leaves_the_database_open_under_its_name() {
    use crate::interrupt::{hold, signal, wait_until};
    let db = TestDb::new("rb_twice");
    db.psql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g;");
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    db.psql("DELETE FROM t WHERE id % 2 = 0");
    let before = copy_of(&db, "rb_twice_before");
    let application = hold(&db, "LOCK TABLE t IN ACCESS SHARE MODE");
    let mut child = pgsafe()
        .args(["rollback", "-q", "--yes", "--no-safety-snapshot", "--no-check", "--wait-sessions", "60", "--store"])
        .arg(dir.path())
        .args(["-d", &db.conn_string(), &id])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let closed =
        || before.psql(&format!("SELECT datallowconn FROM pg_database WHERE datname = '{}'", db.name())) == "f\n";
    wait_until("the swap closed the database", &mut child, closed);
    signal(&child, "INT");
    // Apart, so that the two are not one to the signal handler; within the wait's first poll. (SIGINTs:
    // only a SIGTERM repeated within 100 ms counts as the same one.)
    std::thread::sleep(std::time::Duration::from_millis(50));
    signal(&child, "INT");
    let (code, stderr) = crate::faults::finish(child);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("the swap was put back") && stderr.contains("open to new sessions"), "{stderr}");
    let open = before.psql(&format!("SELECT datallowconn FROM pg_database WHERE datname = '{}'", db.name()));
    assert_eq!(open, "t\n", "{stderr}");
    assert_eq!(databases_like(&format!("{}_replaced_%", db.name())), Vec::<String>::new());
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");
    for left in databases_like(&format!("{}_rollback_%", db.name())) {
        drop_database(&left);
    }
    let mut application = application;
    let _ = application.kill();
    let _ = application.wait();
}

/// A rollback in place (or of tables) does not wait without a limit for a lock another session holds,
/// holding the locks it took already and so blocking the application's reads of other tables: each
/// attempt gives up after `--lock-timeout`, rolls back (releasing every lock) and tries again; after
/// `--lock-retries` it stops, changing nothing, and says which options allow more. Once the lock is free,
/// it rolls back.
#[test]
fn a_rollback_in_place_that_cannot_get_a_lock_tries_again_and_then_changes_nothing() {
    use crate::interrupt::{held, hold, release};
    let db = TestDb::new("rb_locked");
    db.psql(
        "CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 100);
         CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b SELECT generate_series(1, 100);",
    );
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    db.psql("DELETE FROM a WHERE id > 50; DELETE FROM b WHERE id > 50");
    let before = copy_of(&db, "rb_locked_before");
    let mut holder = hold(&db, "LOCK TABLE b IN ACCESS SHARE MODE");
    crate::interrupt::wait_until("the lock was taken", &mut holder, || held(&db, "b", "AccessShareLock"));
    for mode in [&["--in-place"][..], &["--tables", "a", "b"]] {
        let started = std::time::Instant::now();
        let args =
            [&[id.as_str(), "--yes", "--no-safety-snapshot", "--lock-timeout", "200ms", "--lock-retries", "2"], mode];
        let (code, _, err) = rollback(dir.path(), &db, &args.concat());
        assert_eq!(code, 2, "{mode:?}: {err}");
        assert!(err.contains("was not changed") && err.contains("through 3 attempts of 200ms"), "{mode:?}: {err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "{mode:?}: {:?}", started.elapsed());
        let (same, text) = compare_dbs(before.name(), db.name());
        assert!(same, "{mode:?}: {text}");
    }
    assert!(held(&db, "b", "AccessShareLock"));
    release(&db, holder);
    let (code, _, err) =
        rollback(dir.path(), &db, &[&id, "--yes", "--no-safety-snapshot", "--in-place", "--lock-timeout", "200ms"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(db.psql("SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)").trim(), "200");
}

/// A rollback in place of a migration that dropped or renamed a column with a default: the drops it
/// begins with take the defaults off first (so that a sequence a default uses can go), and the column is
/// no longer there by that name. Before: "column does not exist", exit 2 (and `migrate`'s own rollback of
/// such a migration needed a person).
#[test]
fn a_rollback_in_place_puts_back_columns_with_defaults_that_were_dropped_or_renamed() {
    let db = TestDb::new("rb_defaults");
    db.psql(
        "CREATE SEQUENCE codes; CREATE TABLE t (id int PRIMARY KEY, name text DEFAULT 'x', code int DEFAULT nextval('codes'),
                                                 \"Mixed Case\" text DEFAULT 'm');
         INSERT INTO t (id) SELECT generate_series(1, 20);",
    );
    let before = copy_of(&db, "rb_defaults_before");
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    db.psql("ALTER TABLE t DROP COLUMN name; ALTER TABLE t RENAME COLUMN code TO code2; ALTER TABLE t DROP COLUMN \"Mixed Case\";");
    let (code, _, err) = rollback(dir.path(), &db, &[&id, "--yes", "--in-place", "--no-safety-snapshot"]);
    assert_eq!(code, 0, "{err}");
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");
}

/// A snapshot taken with `--exclude-table-and-children` (or its siblings) was recorded as a whole one
/// (its scope kept only `-t`, `-T`, `-n`, `-N` and `--exclude-table-data`), so a rollback to it would
/// have dropped the tables it left out. It is partial, as one taken with `-T` is.
#[test]
fn a_snapshot_taken_with_a_children_filter_is_partial_and_cannot_replace_the_database() {
    let db = TestDb::new("rb_children_scope");
    db.psql(
        "CREATE TABLE big (id int, at date) PARTITION BY RANGE (at);
         CREATE TABLE big_2024 PARTITION OF big FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         INSERT INTO big VALUES (1, '2024-05-01'); CREATE TABLE small (id int PRIMARY KEY);",
    );
    let dir = tempfile::tempdir().unwrap();
    for filter in ["--exclude-table-and-children", "--table-and-children", "--exclude-table-data-and-children"] {
        let id = snapshot(dir.path(), &db, &[filter, "big"]);
        let (code, _, err) = rollback(dir.path(), &db, &[&id, "--plan"]);
        assert_eq!(code, 2, "{filter}: {err}");
        assert!(err.contains("does not hold the whole database") && err.contains(&format!("{filter} big")), "{err}");
    }
}

/// An application that keeps writing while a rollback runs: one `INSERT INTO events (n)` after another,
/// each in a session and a transaction of its own (a session the swap ends or a closed database only
/// fails that one), until stopped.
struct Writer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<i64>>,
}

impl Writer {
    fn start(db: &TestDb) -> Writer {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (stopped, conn) = (stop.clone(), db.conn_string());
        let thread = std::thread::spawn(move || {
            let mut committed = Vec::new();
            let mut n = 0;
            while !stopped.load(Ordering::Relaxed) {
                n += 1;
                let ok = Command::new(cluster().bin("psql"))
                    .args(["-X", "-q", "-d", &conn, "-c", &format!("INSERT INTO events (n) VALUES ({n})")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap()
                    .success();
                if ok {
                    committed.push(n);
                }
            }
            committed
        });
        Writer { stop, thread }
    }

    /// Stops it; the `n` of each insert whose commit it saw.
    fn stop(self) -> Vec<i64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// What a rollback's report says it discarded of `table`: rows before the rollback minus rows in the
/// snapshot.
fn discarded_of(report: &Value, table: &str) -> i64 {
    let t = report["changes"]["tables"].as_array().unwrap().iter().find(|t| t["table"] == table);
    let t = t.unwrap_or_else(|| panic!("`{table}` is not in the report's changes: {report}"));
    assert_eq!(t["change"], "changed", "{t}");
    t["rows_now"].as_i64().unwrap() - t["rows_in_snapshot"].as_i64().unwrap()
}

/// Found on Lemmy's schema: the rows a rollback discarded were counted by its plan, before the safety
/// snapshot, the restore and the swap's wait; an application that kept writing committed more in
/// between, discarded too and not reported (48 reported, 63 more in the replaced database than in the
/// snapshot). The swap's count is now the replaced database's.
#[test]
fn a_swap_reports_the_rows_the_replaced_database_held_though_an_application_kept_writing() {
    let db = TestDb::new("rb_writer_swap");
    db.psql(
        "CREATE TABLE filler AS SELECT g AS id, md5(g::text) AS t FROM generate_series(1, 100000) g;
         CREATE TABLE events (id serial PRIMARY KEY, n int);
         INSERT INTO events (n) SELECT -g FROM generate_series(1, 20) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    let writer = Writer::start(&db);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (code, out, err) = rollback(dir.path(), &db, &[&id, "--yes", "--json", "--terminate-after", "1"]);
    let committed = writer.stop();
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let kept = report["replaced_database_kept_as"].as_str().unwrap().to_owned();
    let in_kept = Command::new(cluster().bin("psql"))
        .args(["-X", "-A", "-t", "-d", &cluster().conn_string(&kept), "-c", "SELECT count(*) FROM events"])
        .output()
        .unwrap();
    let in_kept: i64 = String::from_utf8_lossy(&in_kept.stdout).trim().parse().unwrap();
    drop_database(&kept);
    assert!(in_kept > 20 && !committed.is_empty(), "the writer wrote nothing before the swap: {in_kept}");
    assert_eq!(
        discarded_of(&report, "public.events"),
        in_kept - 20,
        "the report's count is not what the replaced database held beyond the snapshot's 20 rows"
    );
    assert!(report.get("changes_not_recounted").is_none(), "{report}");
}

/// The same in place, by the database's owner (no superuser, no CREATEDB): the count is taken in the
/// rollback's transaction once it holds the tables' locks, so every row the writer committed is either
/// reported discarded or, committed after the rollback (its insert waited for the locks), in the table.
#[test]
fn a_rollback_in_place_reports_every_row_it_discarded_though_an_application_kept_writing() {
    let db = TestDb::new("rb_writer_in_place");
    let role = "pgsafe_rb_writer";
    db.give_to(
        role,
        "CREATE TABLE filler AS SELECT g AS id, md5(g::text) AS t FROM generate_series(1, 100000) g;
         CREATE TABLE events (id serial PRIMARY KEY, n int);
         INSERT INTO events (n) SELECT -g FROM generate_series(1, 20) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &["-U", role]);
    let writer = Writer::start(&db);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (code, out, err) = run(pgsafe().args(["rollback", "-q", "--store"]).arg(dir.path()).args([
        "-d",
        &db.conn_string(),
        "-U",
        role,
        &id,
        "--yes",
        "--json",
        "--in-place",
    ]));
    let committed = writer.stop();
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let after: i64 = db.psql("SELECT count(*) FROM events WHERE n > 0").trim().parse().unwrap();
    assert_eq!(db.psql("SELECT count(*) FROM events WHERE n < 0").trim(), "20");
    assert!(committed.len() as i64 > after, "the writer committed nothing before the rollback");
    assert_eq!(
        discarded_of(&report, "public.events"),
        committed.len() as i64 - after,
        "rows the writer committed ({}) are neither reported discarded nor in the table after the rollback ({after})",
        committed.len()
    );
    assert!(report.get("changes_not_recounted").is_none(), "{report}");
}

/// Found on Synapse's schema: `pgsafe rollback` said only how many rows it restored, and what it
/// discarded was in `--json` alone. Its text says it in every mode, as `migrate`'s does after a rollback.
#[test]
fn a_rollbacks_text_report_says_what_it_discarded() {
    let db = TestDb::new("rb_discarded_text");
    db.psql("CREATE TABLE users (name text PRIMARY KEY); INSERT INTO users SELECT 'u' || g FROM generate_series(1, 1000) g;");
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    for mode in [&["--tables", "users"][..], &["--in-place"], &[]] {
        // 112 of the names start with `u1`: u1, u10 to u19, u100 to u199 and u1000.
        db.psql("DELETE FROM users WHERE name LIKE 'u1%'; CREATE TABLE IF NOT EXISTS junk (a int); INSERT INTO junk VALUES (1);");
        let (code, out, err) =
            rollback(dir.path(), &db, &[&[id.as_str(), "--yes", "--no-safety-snapshot"], mode].concat());
        assert_eq!(code, 0, "{mode:?}: {err}");
        if let Some(name) = out.lines().find_map(|l| l.split("kept as `").nth(1)?.split('`').next()) {
            drop_database(name);
        }
        assert!(out.contains("the rollback discarded the rows written since the snapshot, in "), "{mode:?}: {out}");
        assert!(
            out.contains("  public.users  888 rows before the rollback, 1000 in the snapshot\n"),
            "{mode:?}: {out}"
        );
        // `--tables users` leaves `junk` as it is; a whole rollback drops it.
        let junk = out
            .lines()
            .any(|l| l.starts_with("  public.junk  ") && l.ends_with("(a table new since the snapshot, dropped)"));
        assert_eq!(junk, mode.is_empty() || mode == ["--in-place"], "{mode:?}: {out}");
        assert_eq!(db.psql("SELECT count(*) FROM users").trim(), "1000");
    }
}

/// A rollback in place drops what the snapshot lacks as the database has it when the rollback's
/// transaction holds its locks, not only what its plan found: a table (and a view on it) another
/// session made after the plan, while the rollback waited for a lock, goes too, and its rows are
/// reported discarded. Before: it survived the rollback, which said nothing of it.
#[test]
fn a_rollback_in_place_drops_a_table_made_after_its_plan() {
    use crate::interrupt::{hold_until_held, release, wait_until};
    let db = TestDb::new("rb_arrived");
    db.psql(
        "CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 10); CREATE TABLE b (id int);",
    );
    let dir = tempfile::tempdir().unwrap();
    let id = snapshot(dir.path(), &db, &[]);
    db.psql("DELETE FROM a WHERE id > 5; CREATE TABLE planned (id int); INSERT INTO planned VALUES (1), (2);");
    let holder = hold_until_held(
        &db,
        "LOCK TABLE b IN ACCESS SHARE MODE",
        "b",
        "AccessShareLock",
        std::time::Duration::from_secs(30),
    );
    let mut child = pgsafe()
        .args(["rollback", "-q", "--json", "--store"])
        .arg(dir.path())
        .args(["-d", &db.conn_string(), &id, "--yes", "--no-safety-snapshot", "--in-place", "--lock-timeout", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = "SELECT count(*) FROM pg_locks WHERE relation = 'b'::regclass AND NOT granted";
    wait_until("the rollback waited for its lock", &mut child, || db.psql(waiting).trim() == "1");
    db.psql(
        "CREATE TABLE late (id int); INSERT INTO late SELECT generate_series(1, 7);
         CREATE VIEW late_v AS SELECT id FROM late;",
    );
    release(&db, holder);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let gone =
        "SELECT to_regclass('late') IS NULL AND to_regclass('late_v') IS NULL AND to_regclass('planned') IS NULL";
    assert_eq!(db.psql(gone).trim(), "t");
    assert_eq!(db.psql("SELECT count(*) FROM a").trim(), "10");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let new_rows = |table: &str| {
        let t = report["changes"]["tables"].as_array().unwrap().iter().find(|t| t["table"] == table);
        let t = t.unwrap_or_else(|| panic!("`{table}` is not in the report's changes: {report:#}"));
        (t["change"].as_str().unwrap().to_owned(), t["rows_now"].as_i64())
    };
    assert_eq!(new_rows("public.late"), ("new".to_owned(), Some(7)));
    assert_eq!(new_rows("public.planned"), ("new".to_owned(), Some(2)));
    let objects: Vec<&str> =
        report["changes"]["objects"].as_array().unwrap().iter().map(|o| o["object"].as_str().unwrap()).collect();
    assert!(objects.contains(&"TABLE public.late") && objects.contains(&"VIEW public.late_v"), "{objects:?}");
    assert!(stderr.contains("made since the rollback's plan, and dropped"), "{stderr}");
}
