//! `pgsafe check` as a user meets it, on the throwaway cluster: pagila healthy, then broken in each way a
//! migration can break it and fixed again; against a snapshot; as a non-superuser owner; `--watch`; the
//! user's own SQL; the audit log.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dump_restore::{pgsafe, run, run_ok};
use crate::support::{self, TestDb, cluster};

/// `pgsafe check --json` with `args`: the exit code, the report, and stderr.
fn check(args: &[&str]) -> (i32, Value, String) {
    let (code, stdout, stderr) = run(pgsafe().args(["check", "--json"]).args(args));
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no report ({e}):\n{stdout}\n{stderr}"));
    (code, report, stderr)
}

/// The report's findings of `id`.
fn findings<'a>(report: &'a Value, id: &str) -> Vec<&'a Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["check"] == id).collect()
}

/// The one finding of `id` about `object`; panics naming the report when there is none.
fn finding<'a>(report: &'a Value, id: &str, object: &str) -> &'a Value {
    findings(report, id)
        .into_iter()
        .find(|f| f["object"] == object)
        .unwrap_or_else(|| panic!("no `{id}` finding about `{object}` in {report:#}"))
}

fn errors(report: &Value) -> Vec<&Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["level"] == "error").collect()
}

/// Runs `sql` through psql on `db`, expecting it to fail (a statement that cannot run in a script
/// stopping at errors, such as a `CREATE INDEX CONCURRENTLY` that finds duplicates).
fn psql_fails(db: &TestDb, sql: &str) {
    let out = Command::new(cluster().bin("psql"))
        .args(["-X", "-q", "-d", &db.conn_string(), "-c", sql])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success(), "`{sql}` did not fail");
}

/// The audit log's lines.
fn audit(store: &Path) -> Vec<Value> {
    std::fs::read_to_string(store.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A small database: `item` (500 rows, a serial key) and `tag` (10 rows) referencing it.
fn small_db(hint: &str) -> TestDb {
    let db = TestDb::new(hint);
    db.psql(
        "CREATE TABLE item (id serial PRIMARY KEY, name text);
         INSERT INTO item (name) SELECT 'n' || g FROM generate_series(1, 500) g;
         CREATE TABLE tag (item_id int REFERENCES item, tag text);
         INSERT INTO tag SELECT g, 't' FROM generate_series(1, 10) g;",
    );
    db
}

#[test]
fn pagila_is_healthy_then_each_breakage_is_named_then_healthy_again() {
    let pagila = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/pagila");
    if !pagila.is_dir() {
        support::cannot_run("pagila_is_healthy_then_each_breakage_is_named", "no ../shared/corpus/pagila");
        return;
    }
    let db = TestDb::new("check_pagila");
    for file in ["pagila-schema.sql", "pagila-data.sql", "pagila-schema-jsonb.sql"] {
        db.psql(&std::fs::read_to_string(pagila.join(file)).unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let checks = write(
        dir.path(),
        "checks.sql",
        "-- no negative amounts\nSELECT payment_id, amount FROM payment WHERE amount < 0;\n",
    );
    let checks = checks.to_str().unwrap();
    let conn = db.conn_string();
    let args = ["-d", &conn, "--sql", checks];

    let (code, report, stderr) = check(&args);
    assert_eq!((code, errors(&report).len()), (0, 0), "{report:#}\n{stderr}");
    assert_eq!(report["healthy"], true);
    assert_eq!(report["database"], db.name());

    // A foreign key whose triggers were disabled while an orphan went in; a NOT VALID one over an orphan;
    // a failed unique index over duplicates; a sequence set back; a negative amount.
    db.psql(
        "ALTER TABLE rental DISABLE TRIGGER ALL;
         INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) VALUES (now(), 999999, 1, 1);
         CREATE TABLE film_note (id int, film_id int);
         INSERT INTO film_note VALUES (1, 999999), (2, NULL), (3, 1);
         ALTER TABLE film_note ADD CONSTRAINT film_note_film_id_fkey FOREIGN KEY (film_id) REFERENCES film NOT VALID;
         SELECT setval('customer_customer_id_seq', 5);
         INSERT INTO payment (customer_id, staff_id, rental_id, amount, payment_date)
           VALUES (1, 1, 1, -5, '2022-02-01 10:00:00+00');",
    );
    psql_fails(&db, "CREATE UNIQUE INDEX CONCURRENTLY actor_last_name_key ON actor (last_name)");

    let (code, report, stderr) = check(&args);
    assert_eq!(code, 1, "{report:#}\n{stderr}");
    assert_eq!(report["healthy"], false);
    let orphan = finding(&report, "foreign-key-violation", "public.rental");
    assert_eq!(orphan["level"], "error");
    assert_eq!(orphan["details"]["constraint"], "rental_inventory_id_fkey");
    assert_eq!(orphan["details"]["rows"], 1);
    assert!(orphan["message"].as_str().unwrap().contains("(for example (999999))"), "{orphan}");
    // The NULL key references nothing (MATCH SIMPLE): one violating row, not two.
    let not_valid = finding(&report, "foreign-key-violation", "public.film_note");
    assert_eq!((&not_valid["details"]["rows"], &not_valid["details"]["validated"]), (&1.into(), &false.into()));
    assert_eq!(finding(&report, "not-valid-constraint", "public.film_note")["level"], "warning");
    assert_eq!(finding(&report, "foreign-key-not-enforced", "public.rental")["level"], "warning");
    assert_eq!(finding(&report, "invalid-index", "public.actor_last_name_key")["level"], "error");
    let duplicates = finding(&report, "duplicate-key", "public.actor_last_name_key");
    let expected: i64 = db
        .psql("SELECT count(*) FROM (SELECT last_name FROM actor GROUP BY 1 HAVING count(*) > 1) d")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(duplicates["details"]["keys"], expected);
    let behind = finding(&report, "sequence-behind", "public.customer_customer_id_seq");
    assert_eq!(behind["level"], "error");
    assert_eq!(behind["details"]["next_value"], 6);
    let negative = finding(&report, "sql-check", "no negative amounts");
    assert_eq!((&negative["level"], &negative["details"]["rows"]), (&"error".into(), &1.into()));
    assert_eq!(negative["details"]["first_rows"][0]["amount"], -5.0);
    assert_eq!(negative["details"]["line"], 2);

    // The text report: a line per finding, then the verdict.
    let (code, text, _) = run(pgsafe().args(["check"]).args(args));
    assert_eq!(code, 1);
    assert!(
        text.lines()
            .any(|l| l.starts_with("error") && l.contains("invalid-index") && l.contains("public.actor_last_name_key")),
        "{text}"
    );
    assert!(text.trim_end().lines().last().unwrap().starts_with("unhealthy: 6 errors,"), "{text}");

    db.psql(
        "DELETE FROM rental WHERE inventory_id = 999999;
         ALTER TABLE rental ENABLE TRIGGER ALL;
         DELETE FROM film_note WHERE film_id = 999999;
         ALTER TABLE film_note VALIDATE CONSTRAINT film_note_film_id_fkey;
         DROP INDEX actor_last_name_key;
         SELECT setval('customer_customer_id_seq', (SELECT max(customer_id) FROM customer));
         DELETE FROM payment WHERE amount < 0;",
    );
    let (code, report, stderr) = check(&args);
    assert_eq!((code, report["findings"].as_array().unwrap().len()), (0, 0), "{report:#}\n{stderr}");
}

#[test]
fn against_a_snapshot_a_dropped_table_is_an_error_and_lost_rows_pass_the_limit() {
    let db = small_db("check_against");
    db.psql("CREATE TABLE scratch (id int); INSERT INTO scratch SELECT generate_series(1, 20);");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let conn = db.conn_string();
    let out = run_ok(pgsafe().args(["snapshot", "-q", "-d", &conn, "--store"]).arg(&store));
    let id = out.trim().to_owned();
    let store_arg = store.to_str().unwrap();

    // 50 of item's 500 rows gone: information by default, an error past 1%, fine within 20%.
    db.psql("DELETE FROM tag; DELETE FROM item WHERE id <= 50;");
    let (code, report, stderr) = check(&["-d", &conn, "--store", store_arg, "--against", &id]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert_eq!(report["against"], id.as_str());
    let loss = finding(&report, "row-loss", "public.item");
    assert_eq!(
        (&loss["level"], &loss["details"]["lost"], &loss["details"]["rows"]),
        (&"info".into(), &50.into(), &450.into())
    );
    assert_eq!(finding(&report, "row-loss", "public.tag")["details"]["lost"], 10);
    let (code, report, _) = check(&["-d", &conn, "--store", store_arg, "--latest", "--max-row-loss", "1"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(finding(&report, "row-loss", "public.item")["level"], "error");
    let (code, report, _) = check(&["-d", &conn, "--store", store_arg, "--latest", "--max-row-loss", "20"]);
    assert_eq!(code, 1, "tag lost all its rows: {report:#}");
    assert_eq!(finding(&report, "row-loss", "public.item")["level"], "info");
    assert_eq!(finding(&report, "row-loss", "public.tag")["level"], "error");

    db.psql("DROP TABLE scratch;");
    let (code, report, _) = check(&["-d", &conn, "--store", store_arg, "--latest"]);
    assert_eq!(code, 1, "{report:#}");
    let missing = finding(&report, "missing-table", "public.scratch");
    assert_eq!((&missing["level"], &missing["details"]["snapshot_rows"]), (&"error".into(), &20.into()));

    // Every run left an audit line naming the snapshot; the unhealthy ones say why.
    let lines: Vec<Value> = audit(&store).into_iter().filter(|l| l["command"] == "check").collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(lines.iter().all(|l| l["snapshot"] == id.as_str() && l["database"] == db.name()), "{lines:#?}");
    assert_eq!(lines[0]["outcome"], "ok");
    assert_eq!(lines[3]["outcome"], "failed");
    assert!(lines[3]["error"].as_str().unwrap().contains("missing-table `public.scratch`"), "{}", lines[3]);

    // No snapshot of this database, and no store: refused before checking, exit 2.
    let (code, _, stderr) =
        run(pgsafe().args(["check", "-d", &conn, "--latest", "--store"]).arg(dir.path().join("none")));
    assert_eq!(code, 2);
    assert!(stderr.contains("there is no store at"), "{stderr}");
    assert!(!dir.path().join("none").exists(), "a check made a store");
}

#[test]
fn a_non_superuser_owner_can_check_their_database_and_what_it_cannot_read_is_info() {
    let db = TestDb::new("check_owner");
    let role = "pgsafe_check_owner";
    db.psql(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
           CREATE ROLE {role} LOGIN; END IF; END $$;
         ALTER DATABASE \"{db}\" OWNER TO {role};
         CREATE TABLE admin_only (id serial PRIMARY KEY);
         CREATE TABLE admin_ref (admin_id int REFERENCES admin_only);
         SET ROLE {role};
         CREATE TABLE owned (id serial PRIMARY KEY, note text);
         CREATE TABLE owned_ref (owned_id int REFERENCES owned);
         INSERT INTO owned (note) SELECT 'x' FROM generate_series(1, 42);
         INSERT INTO owned_ref SELECT generate_series(1, 42);",
        db = db.name()
    ));
    let conn = db.conn_string();
    let (code, report, stderr) = check(&["-d", &conn, "-U", role]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert!(errors(&report).is_empty(), "{report:#}");
    assert!(report["server"].as_str().unwrap().starts_with(&format!("{role}@")), "{report}");
    let sequence = finding(&report, "not-checked", "public.admin_only_id_seq");
    assert_eq!((&sequence["level"], &sequence["details"]["sqlstate"]), (&"info".into(), &"42501".into()));
    assert_eq!(finding(&report, "not-checked", "public.admin_ref")["level"], "info");

    // What it can read, it checks: its own sequence set back is an error.
    db.psql("SELECT setval('owned_id_seq', 3);");
    let (code, report, _) = check(&["-d", &conn, "-U", role]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(finding(&report, "sequence-behind", "public.owned_id_seq")["level"], "error");
}

#[test]
fn a_watch_until_unhealthy_stops_at_the_first_unhealthy_round() {
    let db = small_db("check_watch");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    // An existing store gets the audit lines; a check never makes one.
    pgsafe::store::LocalStore::open(store).unwrap();
    let started = Instant::now();
    let child = pgsafe()
        .args(["check", "--watch", "1s", "--until-unhealthy", "-d", &db.conn_string(), "--store"])
        .arg(store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    db.psql("SELECT setval('item_id_seq', 7);");
    let out = wait_with_timeout(child, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(30));
    // Round lines start with their time; the report after them does not.
    let rounds: Vec<&str> = stdout.lines().filter(|l| l.starts_with("20")).collect();
    assert!(rounds.last().unwrap().contains("  unhealthy: 1 errors"), "{stdout}");
    assert!(rounds[..rounds.len() - 1].iter().all(|l| l.contains("  healthy: ")), "{stdout}");
    // The last round's report follows, naming what broke.
    assert!(stdout.contains("sequence-behind") && stdout.contains("public.item_id_seq"), "{stdout}");
    let lines = audit(store);
    assert_eq!(lines.len(), 1, "healthy rounds are not logged: {lines:#?}");
    assert_eq!((&lines[0]["command"], &lines[0]["outcome"]), (&"check".into(), &"failed".into()));

    // Without `--until-unhealthy`, it runs until interrupted and exits as its last round: healthy again.
    db.psql("SELECT setval('item_id_seq', 500);");
    let mut child = pgsafe()
        .args(["check", "--watch", "1s", "-d", &db.conn_string(), "--store"])
        .arg(store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(child.try_wait().unwrap().is_none(), "the watch ended by itself");
    crate::interrupt::signal(&child, "INT");
    let out = wait_with_timeout(child, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().count() >= 2 && stdout.lines().all(|l| l.contains("  healthy: 0 errors")), "{stdout}");
    let lines = audit(store);
    assert_eq!(lines.len(), 2, "only the last healthy round is logged: {lines:#?}");
    assert_eq!(lines[1]["outcome"], "ok");
}

/// Waits for `child` at most `limit`, killing it and failing past that.
fn wait_with_timeout(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`pgsafe check --watch` still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_check_query_that_fails_is_an_error_with_its_sqlstate() {
    let db = small_db("check_sql");
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "checks.sql",
        "-- every tag names an item\nSELECT t.* FROM tag t LEFT JOIN item i ON i.id = t.item_id WHERE i.id IS NULL;\n\
         -- names are set\nSELECT id FROM item WHERE nam IS NULL;\n",
    );
    let (code, report, stderr) = check(&["-d", &db.conn_string(), "--sql", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{report:#}\n{stderr}");
    assert_eq!(errors(&report).len(), 1, "{report:#}");
    let failed = finding(&report, "sql-check", "names are set");
    assert_eq!((&failed["details"]["sqlstate"], &failed["details"]["line"]), (&"42703".into(), &4.into()));
    assert!(failed["message"].as_str().unwrap().contains("column \"nam\" does not exist"), "{failed}");
    assert!(findings(&report, "sql-check").iter().all(|f| f["object"] != "every tag names an item"));
}

/// The user's checks ran under pgsafe's pinned `TimeZone = UTC`: a query of "today's" rows by the
/// database's own zone (Pacific/Kiritimati, UTC+14) found another day's.
#[test]
fn a_check_query_runs_in_the_databases_time_zone() {
    let db = small_db("check_zone");
    db.psql(&format!(
        "ALTER DATABASE {} SET TimeZone = 'Pacific/Kiritimati';
         CREATE TABLE stamp (at timestamptz); INSERT INTO stamp VALUES ('2024-06-01 23:00+00');",
        db.name()
    ));
    let dir = tempfile::tempdir().unwrap();
    // In Kiritimati 2024-06-01 23:00 UTC is June 2nd, 13:00.
    let file = write(
        dir.path(),
        "zone.sql",
        "-- stamps are of June 2nd, local time
SELECT at FROM stamp WHERE at::date <> '2024-06-02';
",
    );
    let (code, report, stderr) = check(&["-d", &db.conn_string(), "--sql", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert!(findings(&report, "sql-check").is_empty(), "{report:#}");
}

#[test]
fn a_lock_wait_and_a_long_statement_are_warnings_and_a_locked_table_is_not_waited_for_long() {
    use crate::interrupt::{hold_until_held, release};
    let db = small_db("check_locks");
    let holder = hold_until_held(
        &db,
        "LOCK TABLE item IN ACCESS EXCLUSIVE MODE",
        "item",
        "AccessExclusiveLock",
        Duration::from_secs(60),
    );
    let mut waiter = Command::new(cluster().bin("psql"))
        .args(["-X", "-q", "-d", &db.conn_string(), "-c", "SELECT count(*) FROM item"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let (code, report, stderr) = check(&["-d", &db.conn_string(), "--long-running", "1"]);
    let took = started.elapsed();
    release(&db, holder);
    let _ = waiter.wait();
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    let waits = findings(&report, "lock-wait");
    assert_eq!(waits.len(), 1, "{report:#}");
    assert_eq!((&waits[0]["level"], &waits[0]["details"]["mode"]), (&"warning".into(), &"AccessShareLock".into()));
    assert_eq!(waits[0]["details"]["blocked_by"].as_array().unwrap().len(), 1, "{}", waits[0]);
    let long: Vec<&Value> = findings(&report, "long-running-query");
    assert!(long.iter().any(|f| f["details"]["query"] == "SELECT count(*) FROM item"), "{report:#}");
    // The foreign key to `item` and its sequence wait 5 s each for the lock, then are named as not checked.
    let locked: Vec<&Value> = findings(&report, "not-checked");
    assert!(
        !locked.is_empty() && locked.iter().all(|f| f["level"] == "warning" && f["details"]["sqlstate"] == "55P03"),
        "{report:#}"
    );
    assert!(took < Duration::from_secs(30), "it waited {took:?}");
}
