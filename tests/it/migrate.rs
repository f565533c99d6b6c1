//! `pgsafe migrate` and `pgsafe migrations` on the throwaway cluster: a folder applied, skipped once
//! applied, refused on drift and reverted with down scripts; a command and a SQL migration that fail
//! after changing data rolled back to a database that compares identical (`compare-dbs`) to before.

use std::path::Path;

use serde_json::Value;

use crate::dump_restore::{pgsafe, run};
use crate::rollback::{compare_dbs, copy_of, drop_database, pagila};
use crate::support::{self, PrivateClusterOptions, TestDb, cluster};

fn migrate(store: &Path, db: &TestDb, args: &[&str]) -> (i32, Value, String) {
    let (code, out, err) = run(pgsafe()
        .args(["migrate", "-q", "--json", "--store"])
        .arg(store)
        .args(["-d", &db.conn_string()])
        .args(args));
    let report = serde_json::from_str(&out).unwrap_or(Value::Null);
    (code, report, err)
}

fn migrations(db: &TestDb, dir: &Path) -> (i32, Value) {
    let (code, out, err) = run(pgsafe().args(["migrations", "--json", "-d", &db.conn_string()]).arg(dir));
    assert!(code == 0 || code == 1, "{err}");
    (code, serde_json::from_str(&out).unwrap())
}

fn labels(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}_{}", m["version"].as_str().unwrap(), m["name"].as_str().unwrap()))
        .collect()
}

/// Drops the database a swap rollback kept, if the report names one.
fn drop_replaced(report: &Value) {
    if let Some(name) = report["rollback"]["replaced_database_kept_as"].as_str() {
        drop_database(name);
    }
}

/// Why the snapshot the migration `report` names is pinned in `store` (null: it is not).
fn pinned(store: &Path, report: &Value) -> Value {
    let meta: Vec<Value> = serde_json::from_str(&crate::dump_restore::run_ok(
        pgsafe().args(["snapshots", "--json", "--store"]).arg(store),
    ))
    .unwrap();
    meta.iter().find(|s| s["id"] == report["snapshot"]).unwrap()["pinned"].clone()
}

/// `pgsafe dry-run --json -- sh -c 'psql ... PSQL_ARGS'` of `db`, with `store`: its exit code, report and
/// stderr. `psql_args`: psql's commands as shell words (`-c '...'`).
fn rehearse_psql(db: &TestDb, store: &Path, psql_args: &str) -> (i32, Value, String) {
    let psql = cluster().bin("psql");
    let script = format!("\"{}\" -X -q -v ON_ERROR_STOP=1 \"$DATABASE_URL\" {psql_args}", psql.display());
    let (code, out, err) = run(pgsafe().args(["dry-run", "-q", "--json", "--store"]).arg(store).args([
        "-d",
        &db.conn_string(),
        "--",
        "sh",
        "-c",
        &script,
    ]));
    let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("no report ({e}): {out}\n{err}"));
    (code, report, err)
}

#[test]
fn a_folder_is_applied_in_order_skipped_once_applied_refused_on_drift_and_reverted_with_down_scripts() {
    let db = TestDb::new("mig_folder");
    db.psql("CREATE TABLE setting (id int PRIMARY KEY, value text); INSERT INTO setting SELECT g, 's' FROM generate_series(1, 50) g;");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, sql: &str| std::fs::write(dir.path().join(name), sql).unwrap();
    write(
        "0001_note.sql",
        "CREATE TABLE note (id int PRIMARY KEY, body text);\nINSERT INTO note SELECT g, 'n' FROM generate_series(1, 50) g;\n",
    );
    write("0001_note.down.sql", "DROP TABLE note;\n");
    write(
        "0002_tag.sql",
        "ALTER TABLE note ADD COLUMN tag text;\nUPDATE note SET tag = 'x', body = 'm';\nUPDATE setting SET value = 'm' WHERE id <= 50;\n",
    );
    write("0002_tag.down.sql", "ALTER TABLE note DROP COLUMN tag;\n");
    let (_, pending) = migrations(&db, dir.path());
    assert_eq!(labels(&pending["pending"]), ["0001_note", "0002_tag"]);

    // An UPDATE of a table that was there: the dry run counts the values it changes, and refuses before
    // any change unless forced. (Those of `note`, a table an earlier file of the run makes and fills,
    // are the migration's own: no loss.)
    let (code, report, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(report["ending"], "refused");
    assert!(report["reason"].as_str().unwrap().contains("would lose data"), "{report}");
    assert_eq!(report["dry_run"]["statements"][3]["losses"], serde_json::json!([]), "{report}");
    assert_eq!(report["dry_run"]["statements"][4]["losses"][0]["table"], "setting", "{report}");
    assert_eq!(report["dry_run"]["statements"][4]["losses"][0]["count"], 50, "{report}");
    let (_, pending) = migrations(&db, dir.path());
    assert_eq!(labels(&pending["applied"]), Vec::<String>::new());
    let (code, report, err) =
        migrate(store.path(), &db, &["--force", "--snapshot-after", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["ending"], "applied");
    assert!(report["snapshot_after"].as_str().unwrap().ends_with("-after-migration"), "{report}");
    assert_eq!(report["applied"], serde_json::json!(["0001_note", "0002_tag"]));
    let snapshot = report["snapshot"].as_str().unwrap().to_owned();
    assert!(snapshot.ends_with("-before-0001_note"), "{snapshot}");
    assert_eq!(report["health"]["healthy"], true);
    let (code, state) = migrations(&db, dir.path());
    assert_eq!(code, 0);
    assert_eq!(labels(&state["applied"]), ["0001_note", "0002_tag"]);
    assert_eq!(state["applied"][0]["snapshot"], snapshot.as_str());
    assert_eq!(db.psql("SELECT count(*) FROM note WHERE tag = 'x'").trim(), "50");
    // The snapshot is no longer pinned once the migration succeeded.
    let meta: Vec<Value> = serde_json::from_str(&crate::dump_restore::run_ok(
        pgsafe().args(["snapshots", "--json", "--store"]).arg(store.path()),
    ))
    .unwrap();
    assert!(meta.iter().all(|s| s["pinned"].is_null()), "{meta:?}");

    // Applied: skipped, no snapshot.
    let (code, report, _) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!((code, &report["ending"], &report["snapshot"]), (0, &"up-to-date".into(), &Value::Null));

    // Drift: an applied file changed is refused by name, nothing changes.
    write("0003_more.sql", "INSERT INTO note VALUES (51, 'late', 'y');\n");
    let original = std::fs::read_to_string(dir.path().join("0001_note.sql")).unwrap();
    write("0001_note.sql", &(original.clone() + "-- edited after it was applied\n"));
    let (code, report, _) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(report["ending"], "refused");
    assert!(report["reason"].as_str().unwrap().contains("0001_note.sql"), "{report}");
    assert_eq!(db.psql("SELECT count(*) FROM note").trim(), "50");
    let (code, state) = migrations(&db, dir.path());
    assert_eq!(code, 1);
    assert_eq!(state["changed"][0][0]["version"], "0001");
    write("0001_note.sql", &original);
    std::fs::remove_file(dir.path().join("0003_more.sql")).unwrap();

    // Down: the latest, then to version 0 (everything); a snapshot before each run. What the down script
    // drops is said (the tester's bug 7: 40,078 values dropped without a word), and its rehearsal is an
    // `ok` step, not a `failed` one beside a run that succeeded.
    let (code, text, err) = run(pgsafe()
        .args(["migrate", "-q", "--store"])
        .arg(store.path())
        .args(["-d", &db.conn_string(), "--down"])
        .arg(dir.path()));
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("(down)") && text.contains("it lost, as its dry run measured:"), "{text}");
    assert!(text.contains("0002_tag.down.sql:1  50 non-null values of `note.tag` (column dropped)"), "{text}");
    let audit = std::fs::read_to_string(store.path().join("audit.jsonl")).unwrap();
    let rehearsal: Value =
        serde_json::from_str(audit.lines().rfind(|l| l.contains("\"step\":\"dry-run\"")).unwrap()).unwrap();
    assert_eq!(rehearsal["outcome"], "ok", "{rehearsal}");
    assert_eq!(
        db.psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'note' AND column_name = 'tag'")
            .trim(),
        "0"
    );
    let (_, state) = migrations(&db, dir.path());
    assert_eq!(labels(&state["applied"]), ["0001_note"]);
    assert_eq!(labels(&state["pending"]), ["0002_tag"]);
    // A migration without a down script refuses, offering the snapshot taken before it.
    std::fs::remove_file(dir.path().join("0001_note.down.sql")).unwrap();
    let (code, report, _) = migrate(store.path(), &db, &["--down", "--to", "0", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.contains("has no down script") && reason.contains(&snapshot), "{reason}");
    write("0001_note.down.sql", "DROP TABLE note;\n");
    let (code, _, err) = migrate(store.path(), &db, &["--down", "--to", "0", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(db.psql("SELECT to_regclass('note') IS NULL").trim(), "t");

    let audit = std::fs::read_to_string(store.path().join("audit.jsonl")).unwrap();
    let steps: Vec<String> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["command"] == "migrate")
        .map(|l| l["step"].as_str().unwrap().to_owned())
        .collect();
    // The refused run linted, took its snapshot, was refused by its dry run and removed the snapshot (the
    // second `snapshot` step); the forced one linted, then took its snapshot.
    assert_eq!(
        steps[..10],
        ["lint", "snapshot", "dry-run", "snapshot", "lint", "snapshot", "dry-run", "apply", "check", "snapshot-after"],
        "{steps:?}"
    );
}

#[test]
fn a_command_that_changes_data_then_fails_is_rolled_back_to_a_database_identical_to_before() {
    let db = TestDb::new("mig_command");
    if !pagila(&db, "a_command_that_changes_data_then_fails_is_rolled_back") {
        return;
    }
    let before = copy_of(&db, "mig_command_before");
    let store = tempfile::tempdir().unwrap();
    let psql = cluster().bin("psql");
    let script = format!(
        "\"{}\" -X -q -v ON_ERROR_STOP=1 \"$DATABASE_URL\" -c 'DELETE FROM payment WHERE amount > 5; CREATE TABLE half_done (x int)' && echo 'migration failed' >&2 && exit 3",
        psql.display()
    );
    let (code, report, err) = migrate(store.path(), &db, &["--terminate-after", "2", "--", "sh", "-c", &script]);
    drop_replaced(&report);
    assert_eq!(code, 1, "{err}");
    assert_eq!(report["ending"], "rolled-back", "{report}");
    assert!(report["reason"].as_str().unwrap().contains("exited with code 3"), "{report}");
    assert_eq!(report["rollback"]["health"]["healthy"], true, "{report}");
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");
    // The database is back to the snapshot: nothing depends on it any more, retention treats it as any.
    assert_eq!(pinned(store.path(), &report), Value::Null);
}

/// The snapshot altered in the store while the migration runs: the migration fails, the rollback finds
/// the archive corrupt before touching the database, and `migrate` ends with exit 3 ("needs attention"),
/// the database as the migration left it, the snapshot still pinned, and no restored copy left behind.
#[test]
fn a_failed_migration_whose_snapshot_was_damaged_needs_attention_and_changes_nothing_more() {
    let db = TestDb::new("mig_attention");
    db.psql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 5000) g;");
    let store = tempfile::tempdir().unwrap();
    let psql = cluster().bin("psql");
    // Flip one byte in the middle of every archive in the store, then change a row and fail.
    let script = format!(
        "for f in \"{store}\"/*.pgsafe; do python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, \"rb\").read()); b[len(b) // 2] ^= 0xff; open(p, \"wb\").write(b)' \"$f\"; done; \
         \"{psql}\" -X -q -v ON_ERROR_STOP=1 \"$DATABASE_URL\" -c \"UPDATE t SET v = 'changed' WHERE id = 1\" && exit 4",
        store = store.path().display(),
        psql = psql.display()
    );
    let (code, report, err) = migrate(store.path(), &db, &["--", "sh", "-c", &script]);
    drop_replaced(&report);
    assert_eq!(code, 3, "{err}\n{report}");
    assert_eq!(report["ending"], "needs-attention", "{report}");
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.contains("exited with code 4") && reason.contains("did not verify"), "{reason}");
    // The database was not replaced: the migration's change is still there, nothing else moved.
    assert_eq!(db.psql("SELECT v FROM t WHERE id = 1").trim(), "changed");
    assert_eq!(db.psql("SELECT count(*) FROM t").trim(), "5000");
    let copies = crate::rollback::databases_like(&format!("{}_%", db.name()));
    assert_eq!(copies, Vec::<String>::new(), "a restored or replaced copy of the database was left behind");
    // The snapshot is what the database must go back to: it stays pinned, saying so.
    let reason = pinned(store.path(), &report);
    assert!(
        reason.as_str().unwrap().contains("NEEDS ATTENTION") && reason.as_str().unwrap().contains("sh -c"),
        "{reason}"
    );
}

#[test]
fn a_sql_migration_whose_later_statement_fails_is_rolled_back_to_a_database_identical_to_before() {
    let db = TestDb::new("mig_sql");
    if !pagila(&db, "a_sql_migration_whose_later_statement_fails_is_rolled_back") {
        return;
    }
    let before = copy_of(&db, "mig_sql_before");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0001_prices.sql"), "UPDATE film SET rental_rate = rental_rate * 2;\n").unwrap();
    std::fs::write(
        dir.path().join("0002_broken.sql"),
        "DELETE FROM film_actor WHERE actor_id < 50;\nALTER TABLE film ADD COLUMN studio int REFERENCES no_such_table;\n",
    )
    .unwrap();
    let folder = dir.path().to_str().unwrap();

    // Lint refuses the UPDATE without WHERE; past it, the dry run finds that the migration would fail:
    // refused each time, nothing applied. Lint comes before the snapshot, which a refusal of the dry
    // run removes: refused runs leave no snapshot to push older ones out of retention.
    let snapshots = || {
        let list: Vec<Value> = serde_json::from_str(&crate::dump_restore::run_ok(
            pgsafe().args(["snapshots", "--json", "--store"]).arg(store.path()),
        ))
        .unwrap();
        list.len()
    };
    let (code, report, err) = migrate(store.path(), &db, &[folder]);
    assert_eq!(code, 1, "{err}");
    assert_eq!((&report["ending"], &report["snapshot"]), (&"refused".into(), &Value::Null), "{report}");
    assert!(report["reason"].as_str().unwrap().contains("update-without-where"), "{report}");
    let (code, report, err) = migrate(store.path(), &db, &["--skip-lint", folder]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(report["ending"], "refused", "{report}");
    assert_eq!(report["dry_run"]["would_fail"], true);
    assert_eq!(report["snapshot_removed"], true, "{report}");
    assert_eq!(snapshots(), 0);
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");

    // Past both (`--force`), without a snapshot: one transaction for both files, rolled
    // back whole.
    let (code, report, err) = migrate(store.path(), &db, &["--force", "--skip-snapshot", folder]);
    assert_eq!(code, 1, "{err}");
    assert_eq!((&report["ending"], &report["snapshot"]), (&"rolled-back".into(), &Value::Null));
    // The failed statement is named with its file and its place in it, as with a snapshot.
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("`0002_broken`: `ALTER TABLE film ADD COLUMN studio") && reason.contains("(statement 2 of 2)"),
        "{report}"
    );
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");
    // ... and a command, which no transaction can undo, is refused.
    let (code, report, _) = migrate(store.path(), &db, &["--skip-snapshot", "--", "true"]);
    assert_eq!((code, &report["ending"]), (1, &"refused".into()));

    // With the snapshot: the first file commits, the second fails, the snapshot comes back.
    let (code, report, err) = migrate(store.path(), &db, &["--force", "--terminate-after", "2", folder]);
    drop_replaced(&report);
    assert_eq!(code, 1, "{err}");
    assert_eq!(report["ending"], "rolled-back", "{report}");
    assert_eq!(report["applied"], serde_json::json!(["0001_prices"]));
    assert!(report["reason"].as_str().unwrap().contains("no_such_table"), "{report}");
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");

    // A first file that fails committed nothing: nothing to restore, nothing changed, and its snapshot,
    // needed for nothing, is removed (as a refused migration's is: the tester saw failed attempts push
    // the snapshot they wanted out of the newest 7).
    std::fs::remove_file(dir.path().join("0001_prices.sql")).unwrap();
    let (code, report, _) = migrate(store.path(), &db, &["--force", folder]);
    assert_eq!((code, &report["ending"], &report["rollback"]), (1, &"rolled-back".into(), &Value::Null));
    assert_eq!(report["snapshot_removed"], true, "{report}");
    let id = report["snapshot"].as_str().unwrap();
    assert!(!store.path().join(format!("{id}.pgsafe")).exists(), "{id}");
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");
}

#[test]
fn a_dry_run_of_a_command_reports_the_schema_diff_and_lost_rows_from_a_scratch_copy_and_leaves_none_behind() {
    let db = TestDb::new("mig_rehearse");
    if !pagila(&db, "a_dry_run_of_a_command_reports_the_schema_diff_and_lost_rows") {
        return;
    }
    let before = copy_of(&db, "mig_rehearse_before");
    let store = tempfile::tempdir().unwrap();
    let (code, report, err) = rehearse_psql(
        &db,
        store.path(),
        "-c 'DELETE FROM payment WHERE amount > 5' -c 'ALTER TABLE film DROP COLUMN rating CASCADE' -c 'CREATE INDEX ON rental (return_date)' \
         -c 'UPDATE customer SET email = lower(email) WHERE customer_id <= 10' -c 'ALTER TABLE film ALTER COLUMN rental_rate TYPE numeric(4,0)' \
         -c 'UPDATE film_category SET category_id = 17 - category_id WHERE film_id = 7'",
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(report["exit_code"], 0, "{report}");
    let lost: u64 = report["rows_lost"].as_array().unwrap().iter().map(|l| l["lost"].as_u64().unwrap()).sum();
    let expected: u64 = before.psql("SELECT count(*) FROM payment WHERE amount > 5").trim().parse().unwrap();
    assert_eq!(lost, expected, "{report}");
    assert_eq!(report["columns_dropped"][0]["table"], "public.film");
    assert_eq!(report["columns_dropped"][0]["column"], "rating");
    let not_null = |sql: &str| -> u64 { before.psql(sql).trim().parse().unwrap() };
    assert_eq!(report["columns_dropped"][0]["values"], not_null("SELECT count(rating) FROM film"), "{report}");
    // Value by value, by primary key: what counts alone cannot show.
    let values = |table: &str| report["values"].as_array().unwrap().iter().find(|v| v["table"] == table).cloned();
    let changed = |table: &str, column: &str| {
        let v = values(table).unwrap_or_else(|| panic!("no values for {table}: {report}"));
        let c = v["columns_changed"].as_array().into_iter().flatten().find(|c| c["column"] == column).cloned();
        c.map_or(0, |c| c["values"].as_u64().unwrap())
    };
    let lowered = not_null("SELECT count(*) FROM customer WHERE customer_id <= 10 AND email <> lower(email)");
    assert!(lowered > 0);
    assert_eq!(changed("public.customer", "email"), lowered, "{report}");
    assert_eq!(changed("public.customer", "first_name"), 0, "{report}");
    let rounded = not_null("SELECT count(*) FROM film WHERE rental_rate <> round(rental_rate)");
    assert_eq!(changed("public.film", "rental_rate"), rounded, "{report}");
    // A key changed: the count is the same, the row the snapshot had is gone.
    let film_category = values("public.film_category").unwrap();
    let gone = "FROM film_category f WHERE film_id = 7 \
                AND NOT EXISTS (SELECT 1 FROM film_category g WHERE g.film_id = 7 AND g.category_id = 17 - f.category_id)";
    assert_eq!(film_category["rows_deleted"], not_null(&format!("SELECT count(*) {gone}")), "{film_category}");
    let example = before.psql(&format!("SELECT min(ROW(film_id, category_id)::text) {gone}"));
    assert_eq!(film_category["deleted_example"], example.trim(), "{film_category}");
    // The partitions of `payment` hold its rows.
    let deleted: u64 = report["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["table"].as_str().unwrap().starts_with("public.payment_p"))
        .map(|v| v["rows_deleted"].as_u64().unwrap())
        .sum();
    assert_eq!(deleted, not_null("SELECT count(*) FROM payment WHERE amount > 5"), "{report}");
    let objects: Vec<String> = report["changes"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {}", o["change"], o["object"]))
        .collect();
    assert!(objects.contains(&"\"gone\" \"VIEW public.film_list\"".to_owned()), "{objects:?}");
    assert!(objects.contains(&"\"new\" \"INDEX public.rental_return_date_idx\"".to_owned()), "{objects:?}");
    // The DDL it ran was captured and linted.
    let ddl = report["ddl"].as_array().unwrap();
    assert!(ddl.iter().any(|s| s.as_str().unwrap().contains("CREATE INDEX")), "{ddl:?}");
    let rules: Vec<&str> =
        report["lint"]["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"create-index-without-concurrently"), "{rules:?}");
    // Nothing of it touched the database, and no scratch database is left.
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");
    assert_eq!(crate::rollback::databases_like(&format!("{}_pgsafe_scratch_%", db.name())), Vec::<String>::new());

    // On a throwaway local cluster, a command that loses nothing exits 0.
    let (code, out, err) = run(pgsafe()
        .args(["dry-run", "-q", "--json", "--scratch", "local", "--store"])
        .arg(store.path())
        .args(["-d", &db.conn_string(), "--", "sh", "-c"])
        .arg(format!(
            "\"{}\" -X -q \"$DATABASE_URL\" -c 'ALTER TABLE actor ADD COLUMN nickname text'",
            cluster().bin("psql").display()
        )));
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["scratch"], "local");
    assert_eq!(report["rows_lost"], serde_json::json!([]));
}

#[test]
fn a_dry_run_of_a_command_counts_values_a_type_change_altered_not_values_it_spells_otherwise() {
    // Before the fix every value of a column whose type changed was compared by its text: `1.50` became
    // `1.5000` (more digits), a timestamp gained its zone, `{"a":1}` became `{"a": 1}`, and each was
    // counted as a value the command changed.
    let db = TestDb::new("mig_retype");
    db.psql(&format!(
        r#"ALTER DATABASE {} SET TimeZone = 'America/New_York';
           CREATE TABLE item (id int PRIMARY KEY, seen timestamp, price numeric(10,2), ratio real, body text,
                              zip text, cents numeric(10,2), tags int[]);
           INSERT INTO item SELECT g, timestamp '2024-03-10 01:30' + g * interval '17 minutes', g / 4.0,
                  g / 3.0, '{{"a":' || g || ',"b":[1,2]}}', lpad(g::text, 5, '0'), g / 8.0,
                  CASE WHEN g % 10 = 0 THEN ARRAY[g, g + 1] WHEN g % 10 = 1 THEN '{{}}' ELSE ARRAY[g] END
           FROM generate_series(1, 40) g;"#,
        db.name()
    ));
    let store = tempfile::tempdir().unwrap();
    let (code, report, err) = rehearse_psql(
        &db,
        store.path(),
        "-c 'ALTER TABLE item ALTER COLUMN seen TYPE timestamptz, \
         ALTER COLUMN price TYPE numeric(12,4), ALTER COLUMN ratio TYPE double precision, \
         ALTER COLUMN body TYPE jsonb USING body::jsonb, ALTER COLUMN zip TYPE int USING zip::int, \
         ALTER COLUMN cents TYPE numeric(10,1), ALTER COLUMN tags TYPE int USING tags[1]'",
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(report["exit_code"], 0, "{report}");
    let item = report["values"].as_array().unwrap().iter().find(|v| v["table"] == "public.item").cloned().unwrap();
    let changed: Vec<(String, u64)> = item["columns_changed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (c["column"].as_str().unwrap().to_owned(), c["values"].as_u64().unwrap()))
        .collect();
    // Every zip lost its leading zeros; `g / 8.0`, kept to two decimals, loses its second one unless g is
    // a multiple of 4; `{g}` made `g` and `{}` made NULL lose nothing, the four `{g, g + 1}` their second.
    let expected = [("zip".to_owned(), 40), ("cents".to_owned(), 30), ("tags".to_owned(), 4)];
    assert_eq!(changed, expected, "{item:#}");
}

#[test]
fn a_dry_run_of_a_command_that_makes_a_table_partitioned_finds_its_rows_in_the_partitions() {
    // Before the fix the table's own rows were compared: `events 1000 -> 0`, all of them "lost", and
    // each of them "deleted" by key, although every one was in a partition.
    let db = TestDb::new("mig_partitioned");
    db.psql(
        "CREATE TABLE events (id int PRIMARY KEY, at date NOT NULL, what text);
         INSERT INTO events SELECT g, date '2024-01-01' + g % 60, 'e' || g FROM generate_series(1, 1000) g;",
    );
    let store = tempfile::tempdir().unwrap();
    let command = |copied: &str| {
        let sql = format!(
            "CREATE TABLE events_new (id int, at date NOT NULL, what text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
             CREATE TABLE events_jan PARTITION OF events_new FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
             CREATE TABLE events_feb PARTITION OF events_new FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
             INSERT INTO events_new SELECT * FROM events WHERE {copied};
             DROP TABLE events; ALTER TABLE events_new RENAME TO events;
             ALTER TABLE events ADD COLUMN label text; UPDATE events SET label = what;
             ALTER TABLE events DROP COLUMN what;"
        );
        let (code, report, err) = rehearse_psql(&db, store.path(), &format!("-c \"{sql}\""));
        assert_eq!(report["exit_code"], 0, "{report:#}\n{err}");
        (code, report)
    };
    let (code, report) = command("true");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["rows_lost"], serde_json::json!([]), "{report:#}");
    // The partitioned copy renamed `what` the safe way, add, copy, drop: its values are kept.
    assert_eq!(report["columns_dropped"][0]["column"], "what", "{report:#}");
    assert_eq!(report["columns_dropped"][0]["values"], 0, "{report:#}");
    assert_eq!(
        report["columns_dropped"][0]["kept_in"],
        serde_json::json!({"column": "label", "values": 1000}),
        "{report:#}"
    );
    let events =
        report["changes"]["tables"].as_array().unwrap().iter().find(|t| t["table"] == "public.events").cloned();
    assert_eq!(events.unwrap()["rows_in_partitions"], 1000, "{report:#}");

    // Rows the copy left out are lost, and found by key.
    let (code, report) = command("id > 10");
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["rows_lost"][0]["lost"], 10, "{report:#}");
    let values = report["values"].as_array().unwrap().iter().find(|v| v["table"] == "public.events").cloned().unwrap();
    assert_eq!(values["rows_deleted"], 10, "{values:#}");
}

#[test]
fn a_migration_with_a_statement_that_cannot_run_in_a_transaction_is_applied_statement_by_statement() {
    let db = TestDb::new("mig_concurrently");
    db.psql("CREATE TABLE item (id int PRIMARY KEY, sku text); INSERT INTO item SELECT g, 's' || g FROM generate_series(1, 1000) g;");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0001_sku_index.sql"),
        "-- build it without blocking writes\nSET statement_timeout = '5min';\nCREATE INDEX CONCURRENTLY item_sku ON item (sku);\n",
    )
    .unwrap();
    let folder = dir.path().to_str().unwrap();
    let (code, report, _) = migrate(store.path(), &db, &["--skip-snapshot", folder]);
    assert_eq!(code, 1);
    assert!(report["reason"].as_str().unwrap().contains("cannot run in a transaction"), "{report}");
    let (code, report, err) = migrate(store.path(), &db, &[folder]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["0001_sku_index"]));
    assert_eq!(db.psql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'item_sku'::regclass").trim(), "t");
    let (_, state) = migrations(&db, dir.path());
    assert_eq!(labels(&state["applied"]), ["0001_sku_index"]);
}

/// Found by testing as the users are: a concurrent index build that waited for a long transaction past
/// `--lock-timeout` was tried again, which failed on the INVALID index the first try left ("relation
/// already exists"), and the lock timeout was never shown.
#[test]
fn a_concurrent_index_build_that_times_out_on_a_lock_is_not_tried_again() {
    let db = TestDb::new("mig_cic_timeout");
    db.psql("CREATE TABLE item (id int PRIMARY KEY, sku text); INSERT INTO item SELECT g, 's' || g FROM generate_series(1, 1000) g;");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0001_sku_index.sql"), "CREATE INDEX CONCURRENTLY item_sku ON item (sku);\n")
        .unwrap();
    // A transaction older than the build, still running: the build waits for it.
    let holder = crate::interrupt::hold(&db, "SELECT 1");
    let started = std::time::Instant::now();
    while db.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(300)%' AND state = 'active' AND pid <> pg_backend_pid()").trim() != "1" {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "the other session never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let folder = dir.path().to_str().unwrap();
    let (code, report, err) =
        migrate(store.path(), &db, &["--lock-timeout", "300ms", "--terminate-after", "1", folder]);
    crate::interrupt::release(&db, holder);
    assert_eq!(code, 1, "{err}");
    let text = report.to_string();
    assert!(text.contains("canceling statement due to lock timeout"), "{report:#}");
    assert!(!text.contains("already exists"), "{report:#}");
    // The rollback removed the invalid index.
    assert_eq!(db.psql("SELECT count(*) FROM pg_class WHERE relname = 'item_sku'").trim(), "0");
}

/// Found by testing as the users are: the session holding a migration's lock ended (a script that ends
/// idle sessions), a second migration got in and applied, and the first one's rollback then undid it.
#[test]
fn a_migration_that_lost_its_lock_does_not_roll_back_over_what_another_run_may_have_done() {
    let db = TestDb::new("mig_lock_lost");
    // The database's owner, who may not make databases: its rollback would be in place.
    let role = "pgsafe_mig_lock_lost";
    db.give_to(
        role,
        "CREATE TABLE item (id int PRIMARY KEY); INSERT INTO item SELECT generate_series(1, 100);
         CREATE TABLE lock_owner (pid int);",
    );
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The migration itself ends its run's lock session (found by the pgsafe process's pid, which the test
    // puts in `lock_owner`), as another session would, then fails.
    std::fs::write(
        dir.path().join("0001_lose_lock.sql"),
        "SELECT pg_sleep(0.5);\n\
         SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a, lock_owner o\n\
          WHERE a.application_name LIKE 'pgsafe migrate (pid ' || o.pid || ' %';\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("0002_fail.sql"), "INSERT INTO item VALUES (1);\n").unwrap();
    let child = pgsafe()
        .args(["migrate", "-q", "--json", "--skip-dry-run", "--store"])
        .arg(store.path())
        .args(["-d", &db.conn_string(), "-U", role])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    db.psql(&format!("INSERT INTO lock_owner VALUES ({})", child.id()));
    let out = child.wait_with_output().unwrap();
    let (report, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{report}\n{err}");
    assert!(report.contains("was lost (its session ended)"), "{report}");
    // The way back it names is the one the role may take.
    assert!(report.contains("--yes --in-place"), "{report}");
    // Not rolled back: what was committed is still there, as the report says.
    let (_, state) = migrations(&db, dir.path());
    assert_eq!(labels(&state["applied"]), ["0001_lose_lock"]);
    db.psql(&format!("ALTER DATABASE \"{}\" OWNER TO {}; DROP OWNED BY {role};", db.name(), cluster().user()));
}

#[test]
fn a_lock_held_by_another_session_is_waited_out_with_retries_and_observing_rolls_back_when_health_turns() {
    let db = TestDb::new("mig_retry");
    db.psql(
        "CREATE TABLE parent (id int PRIMARY KEY); INSERT INTO parent SELECT generate_series(1, 10);
         CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent);",
    );
    let before = copy_of(&db, "mig_retry_before");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0001_note.sql"), "ALTER TABLE parent ADD COLUMN note text;\n").unwrap();
    // Another session holds a lock on the table for three seconds: two tries of 500 ms fail, a later one
    // gets it.
    let holder = crate::interrupt::hold_until_held(
        &db,
        "LOCK TABLE parent IN ACCESS SHARE MODE",
        "parent",
        "AccessShareLock",
        std::time::Duration::from_secs(10),
    );
    let releaser = {
        let name = db.name().to_owned();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(3));
            cluster()
                .execute_admin(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND query LIKE '%pg_sleep(300)%'"
                ))
                .unwrap();
        })
    };
    // Observing for 4 s, a second after the migration another session breaks a foreign key: rolled back.
    let breaker = {
        let conn = db.conn_string();
        let psql = cluster().bin("psql");
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(5));
            let sql = "ALTER TABLE child DISABLE TRIGGER ALL; INSERT INTO child VALUES (1, 999); ALTER TABLE child ENABLE TRIGGER ALL;";
            std::process::Command::new(psql).args(["-X", "-q", "-d", &conn, "-c", sql]).status().unwrap();
        })
    };
    let (code, report, err) = migrate(
        store.path(),
        &db,
        &[
            "--lock-timeout",
            "500ms",
            "--lock-retries",
            "20",
            "--observe",
            "8s",
            "--observe-every",
            "1s",
            "--terminate-after",
            "2",
            dir.path().to_str().unwrap(),
        ],
    );
    releaser.join().unwrap();
    breaker.join().unwrap();
    let _ = { holder }.wait();
    drop_replaced(&report);
    assert_eq!(code, 1, "{err}\n{report}");
    assert_eq!(report["applied"], serde_json::json!(["0001_note"]), "the retries never got the lock: {report}");
    assert_eq!(report["ending"], "rolled-back", "{report}");
    assert!(report["reason"].as_str().unwrap().contains("foreign-key-violation"), "{report}");
    let (same, text) = compare_dbs(before.name(), db.name());
    assert!(same, "{text}");
}

/// After a `migrate`, the newest snapshot is the one taken before it: a rehearsal on it would judge a
/// command against a database that no longer exists (a table the migration made is not in it, so dropping
/// it "loses no rows"). The dry run sees the change in the audit log and rehearses on a snapshot taken now.
#[test]
fn a_dry_run_of_a_command_after_a_migrate_does_not_rehearse_on_the_snapshot_taken_before_it() {
    let db = TestDb::new("mig_stale_rehearsal");
    db.psql("CREATE TABLE item (id int PRIMARY KEY); INSERT INTO item SELECT generate_series(1, 10);");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let promo = dir.path().join("promo.sql");
    std::fs::write(
        &promo,
        "CREATE TABLE promo (id int PRIMARY KEY, code text);\nINSERT INTO promo SELECT g, 'P' || g FROM generate_series(1, 500) g;\n",
    )
    .unwrap();
    let (code, report, err) = migrate(store.path(), &db, &[promo.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let before = report["snapshot"].as_str().unwrap().to_owned();

    let psql = cluster().bin("psql");
    let script =
        format!("\"{}\" -X -q -v ON_ERROR_STOP=1 \"$DATABASE_URL\" -c 'DROP TABLE IF EXISTS promo'", psql.display());
    let dry_run = |json: bool| {
        run(pgsafe().args(["dry-run", "-q", "--store"]).arg(store.path()).args(json.then_some("--json")).args([
            "-d",
            &db.conn_string(),
            "--",
            "sh",
            "-c",
            &script,
        ]))
    };
    let (code, out, err) = dry_run(true);
    assert_eq!(code, 1, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_ne!(report["snapshot"], before.as_str(), "{report}");
    assert_eq!(report["stale_snapshot"]["snapshot"], before.as_str(), "{report}");
    assert_eq!(report["stale_snapshot"]["changed_by"], "migrate apply", "{report}");
    assert_eq!(report["snapshot_taken"]["by_this_rehearsal"], true, "{report}");
    let lost: Vec<(&str, u64)> = report["rows_lost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["table"].as_str().unwrap(), l["lost"].as_u64().unwrap()))
        .collect();
    assert_eq!(lost, [("public.promo", 500)], "{report}");

    // The snapshot it took is newer than the change: the next dry run rehearses on it, saying nothing of
    // a change, but how old it is: the application's rows written since are not in it.
    let (code, out, err) = dry_run(false);
    assert_eq!(code, 1, "{out}{err}");
    assert!(!out.contains("is older than"), "{out}");
    let taken = format!("rehearsed on a scratch copy of snapshot `{}`, taken ", report["snapshot"].as_str().unwrap());
    assert!(out.contains(&taken) && out.contains(" ago: rows written since are not in it"), "{out}");
    assert!(out.contains("LOST: 500 rows of public.promo (table dropped)"), "{out}");
    assert_eq!(db.psql("SELECT count(*) FROM promo").trim(), "500");
}

/// A migration its dry run refuses says, in the text output, which statement fails (file:line), with
/// its SQLSTATE and message, and what another would lose: the user need not run it again with `--json`.
#[test]
fn a_migration_refused_by_its_dry_run_prints_the_failing_statement_its_sqlstate_and_the_losses() {
    let db = TestDb::new("mig_refused_text");
    db.psql("CREATE TABLE item (id int PRIMARY KEY, note text); INSERT INTO item SELECT g, 'n' FROM generate_series(1, 20) g;");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("0001_bad.sql");
    std::fs::write(&file, "ALTER TABLE item DROP COLUMN note;\n\nINSERT INTO item VALUES (1);\n").unwrap();
    let (code, out, err) = run(pgsafe()
        .args(["migrate", "-q", "--skip-lint", "--store"])
        .arg(store.path())
        .args(["-d", &db.conn_string()])
        .arg(&file));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("refused, nothing was changed: the dry run says it would fail"), "{out}");
    let name = file.display().to_string();
    assert!(out.contains(&format!("{name}:3  failed")), "{out}");
    assert!(out.contains("  error: 23505 "), "{out}");
    assert!(out.contains(&format!("{name}:1  ran")), "{out}");
    assert!(out.contains("  loses: 20 non-null values of `item.note` (column dropped)"), "{out}");
    assert!(out.contains("would fail and lose data: 2 statements"), "{out}");
    assert_eq!(db.psql("SELECT count(note) FROM item").trim(), "20");
}

/// Rows another session commits after the snapshot are lost when the migration then fails and is rolled
/// back: the text report names the table and its rows, as `rollback --plan` would, and `--json` has them.
#[test]
fn an_automatic_rollback_says_which_tables_had_rows_written_since_the_snapshot_and_how_many() {
    let db = TestDb::new("mig_discarded");
    db.psql(
        "CREATE TABLE item (id int PRIMARY KEY); INSERT INTO item SELECT generate_series(1, 10);
         CREATE TABLE orders (id serial PRIMARY KEY, total int); INSERT INTO orders (total) SELECT g FROM generate_series(1, 1000) g;",
    );
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0001_note.sql"), "ALTER TABLE item ADD COLUMN note text;\n").unwrap();
    std::fs::write(dir.path().join("0002_fail.sql"), "SELECT pg_sleep(3);\nINSERT INTO item (id) VALUES (NULL);\n")
        .unwrap();
    // The application: 25 orders committed once the snapshot is in the store, while the migration runs.
    let (store_dir, conn) = (store.path().to_owned(), db.conn_string());
    let app = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        while !std::fs::read_dir(&store_dir)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".json"))
        {
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "no snapshot was taken");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = std::process::Command::new(cluster().bin("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &conn, "-c"])
            .arg("INSERT INTO orders (total) SELECT 7 FROM generate_series(1, 25)")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    });
    let folder = dir.path().to_str().unwrap();
    let (code, out, err) = run(pgsafe()
        .args(["migrate", "-q", "--skip-lint", "--skip-dry-run", "--store"])
        .arg(store.path())
        .args(["-d", &db.conn_string(), folder]));
    app.join().unwrap();
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("FAILED and rolled back"), "{out}");
    assert!(
        out.contains(
            "the rollback discarded the rows written since the snapshot, by the migration or by other sessions"
        ),
        "{out}"
    );
    assert!(out.contains("  public.orders  1025 rows before the rollback, 1000 in the snapshot\n"), "{out}");
    assert_eq!(db.psql("SELECT count(*) FROM orders").trim(), "1000");
    let kept = out.lines().find_map(|l| l.split("kept as `").nth(1)).map(|r| r.trim_end_matches('`').to_owned());
    if let Some(name) = kept {
        drop_database(&name);
    }

    // The same in `--json`: the tables it discarded, with their rows.
    db.psql("INSERT INTO orders (total) VALUES (1)");
    std::fs::write(dir.path().join("0002_fail.sql"), "INSERT INTO item (id) VALUES (NULL);\n").unwrap();
    let (code, report, err) = migrate(store.path(), &db, &["--skip-lint", "--skip-dry-run", folder]);
    drop_replaced(&report);
    assert_eq!(code, 1, "{err}");
    // Only the migration wrote since this snapshot: its tracking table's row, and no order.
    let discarded: Vec<(&str, &str, u64)> = report["discarded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["table"].as_str().unwrap(), t["change"].as_str().unwrap(), t["rows_now"].as_u64().unwrap()))
        .collect();
    assert_eq!(discarded, [("pgsafe.migrations", "new", 1)], "{report}");
    assert_eq!(db.psql("SELECT count(*) FROM orders").trim(), "1001");
}

/// A table the migration renamed before it failed (Harbor's `cve_whitelist` made `cve_allowlist`) was
/// reported discarded with its 100 rows, "a table new since the snapshot, dropped", though the rollback
/// brings all of them back under the old name. Told by its OID, as the health check tells it: no new
/// table, and what changed in its rows still counts, as under the old name.
#[test]
fn a_table_renamed_before_the_migration_failed_is_no_table_whose_rows_the_rollback_discarded() {
    let db = TestDb::new("mig_renamed");
    db.psql("CREATE TABLE cve_whitelist (id int PRIMARY KEY, cve text); INSERT INTO cve_whitelist SELECT g, 'CVE-' || g FROM generate_series(1, 100) g;");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    std::fs::write(dir.path().join("0002_fail.sql"), "SELECT 1/0;\n").unwrap();
    let discarded = |report: &Value| -> Vec<(String, String, u64)> {
        let tables = report["discarded"].as_array().unwrap_or_else(|| panic!("no discarded tables: {report:#}"));
        let row = |t: &Value| (t["table"].as_str().unwrap().to_owned(), t["change"].as_str().unwrap().to_owned());
        tables.iter().map(|t| (row(t).0, row(t).1, t["rows_now"].as_u64().unwrap())).collect()
    };
    for (rename, lost) in [
        ("ALTER TABLE cve_whitelist RENAME TO cve_allowlist;\n", None),
        ("ALTER TABLE cve_whitelist RENAME TO cve_allowlist;\nDELETE FROM cve_allowlist WHERE id <= 10;\n", Some(90)),
    ] {
        std::fs::write(dir.path().join("0001_rename.sql"), rename).unwrap();
        let (code, report, err) = migrate(store.path(), &db, &["--skip-lint", "--skip-dry-run", folder]);
        drop_replaced(&report);
        assert_eq!(code, 1, "{report:#}\n{err}");
        assert_eq!(report["ending"], "rolled-back", "{report:#}");
        let mut expected = vec![("pgsafe.migrations".to_owned(), "new".to_owned(), 1)];
        if let Some(rows) = lost {
            expected.push(("public.cve_whitelist".to_owned(), "changed".to_owned(), rows));
        }
        assert_eq!(discarded(&report), expected, "{report:#}");
        assert_eq!(db.psql("SELECT count(*) FROM cve_whitelist").trim(), "100");
    }
}

/// A migration's snapshot is pinned while it runs and for no longer: refused, failed with nothing to
/// restore, or interrupted, the run ends and retention treats its snapshot as any other, instead of
/// keeping it for ever as "migration ... is running".
#[test]
fn a_migration_that_ends_without_applying_leaves_its_snapshot_unpinned_even_when_interrupted() {
    use crate::interrupt::{signal, wait_until};
    let db = TestDb::new("mig_unpin");
    db.psql("CREATE TABLE item (id int PRIMARY KEY); INSERT INTO item SELECT generate_series(1, 10);");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("0001_fail.sql");

    // Its one transaction failed: nothing to restore, and the snapshot, needed for nothing, is gone.
    std::fs::write(&file, "INSERT INTO item VALUES (1);\n").unwrap();
    let (code, report, err) = migrate(store.path(), &db, &["--skip-lint", "--skip-dry-run", file.to_str().unwrap()]);
    assert_eq!((code, &report["ending"]), (1, &"rolled-back".into()), "{err}");
    assert!(report["rollback"].is_null(), "{report}");
    assert_eq!(report["snapshot_removed"], true, "{report}");

    // Interrupted in its rehearsal: exit 2, nothing applied, and the snapshot is not left pinned.
    std::fs::write(&file, "SELECT pg_sleep(30);\n").unwrap();
    let mut child = pgsafe()
        .args(["migrate", "-q", "--skip-lint", "--store"])
        .arg(store.path())
        .args(["-d", &db.conn_string()])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the rehearsal's pg_sleep", &mut child, || {
        db.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'").trim() == "1"
    });
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: Vec<Value> = serde_json::from_str(&crate::dump_restore::run_ok(
        pgsafe().args(["snapshots", "--json", "--store"]).arg(store.path()),
    ))
    .unwrap();
    assert_eq!(meta.len(), 1, "{meta:?}");
    assert!(meta.iter().all(|s| s["pinned"].is_null()), "{meta:?}");
}

/// A migration killed outright (SIGKILL: nothing runs after it) leaves its snapshot pinned as running.
/// `snapshots`, `status` and the next `migrate` say that its process is gone and what clears the pin,
/// where before nothing told a pin whose process died from one still running.
#[test]
fn the_pin_of_a_migration_killed_outright_is_shown_as_its_process_gone() {
    use crate::interrupt::wait_until;
    let db = TestDb::new("mig_killed_pin");
    db.psql("CREATE TABLE item (id int PRIMARY KEY); INSERT INTO item SELECT generate_series(1, 10);");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0001_slow.sql"), "SELECT pg_sleep(60);\nALTER TABLE item ADD note text;\n")
        .unwrap();
    let mut child = pgsafe()
        .args(["migrate", "-q", "--skip-dry-run", "--store"])
        .arg(store.path())
        .args(["-d", &db.conn_string()])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the apply step's pg_sleep", &mut child, || {
        db.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'").trim() == "1"
    });
    let snapshots = || crate::dump_restore::run_ok(pgsafe().args(["snapshots", "--store"]).arg(store.path()));
    assert!(snapshots().contains("; it runs"), "{}", snapshots());
    child.kill().unwrap();
    child.wait().unwrap();

    let listed: Vec<Value> = serde_json::from_str(&crate::dump_restore::run_ok(
        pgsafe().args(["snapshots", "--json", "--store"]).arg(store.path()),
    ))
    .unwrap();
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!((listed.len(), &listed[0]["pin_holder"]), (1, &Value::from("gone")), "{listed:?}");
    assert_eq!(listed[0]["pinned_by"]["pid"], child.id(), "{listed:?}");
    let text = snapshots();
    assert!(text.contains("that process is gone") && text.contains(&format!("--unpin {id}")), "{text}");
    let status: Value = serde_json::from_str(&crate::dump_restore::run_ok(
        pgsafe().args(["status", "--json", "--store"]).arg(store.path()),
    ))
    .unwrap();
    assert_eq!(status["databases"][0]["pinned"][0]["holder"], "gone", "{status}");

    // The next run says so, and applies what is pending: the killed run committed nothing.
    let (code, report, err) = migrate(store.path(), &db, &["--skip-dry-run", dir.path().to_str().unwrap()]);
    assert_eq!((code, &report["ending"]), (0, &"applied".into()), "{err}");
    assert!(err.contains(&format!("snapshot `{id}` is still pinned")) && err.contains("that process is gone"), "{err}");
}

#[test]
fn a_file_that_rolls_its_own_transaction_back_is_refused_before_anything_changes() {
    let db = TestDb::new("mig_own_rollback");
    db.psql("CREATE TABLE coupon (code text PRIMARY KEY); INSERT INTO coupon VALUES ('WELCOME'), ('SPRING');");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("try.sql");
    std::fs::write(
        &file,
        "-- try the cleanup, keep nothing yet\nBEGIN;\nDELETE FROM coupon WHERE code = 'WELCOME';\nROLLBACK;\n",
    )
    .unwrap();
    let (code, _, err) = migrate(store.path(), &db, &["--allow-data-loss", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("try.sql:4: `ROLLBACK` ends the file's transaction without committing it"), "{err}");
    assert_eq!(db.psql("SELECT count(*) FROM coupon").trim(), "2");
    // `pgsafe dry-run` refuses it the same way, before anything runs.
    let (code, _, err) =
        run(pgsafe().args(["dry-run", "-q", "--store"]).arg(store.path()).args(["-d", &db.conn_string()]).arg(&file));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("try.sql:4: `ROLLBACK` ends the file's transaction without committing it"), "{err}");
    // Nothing was snapshotted either: the refusal comes before any step.
    let (_, out, _) = run(pgsafe().args(["snapshots", "--json", "--store"]).arg(store.path()));
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), Value::Array(vec![]));
}

/// The tester's files with transactions in modes of their own (`BEGIN ISOLATION LEVEL SERIALIZABLE`, `START
/// TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ WRITE`, `BEGIN; SET TRANSACTION ...`, `BEGIN DEFERRABLE`)
/// ran in pgsafe's plain `BEGIN`: read committed, whether the file ran in one transaction (its BEGIN left
/// out) or as written (each block); and the rehearsal failed on `SET TRANSACTION` (SQLSTATE 25001),
/// refusing the migration. Each transaction now begins in the modes the file asks for, as under psql: the
/// server's own `current_setting`s, recorded by the files, say so.
#[test]
fn a_files_transaction_modes_are_those_its_transactions_run_in_as_under_psql() {
    const SEEN: &str = "CREATE TABLE seen (what text PRIMARY KEY, isolation text, read_only text, deferred text);";
    let row = |what: &str| {
        format!(
            "INSERT INTO seen VALUES ('{what}', current_setting('transaction_isolation'), \
             current_setting('transaction_read_only'), current_setting('transaction_deferrable'));\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, sql: String| {
        std::fs::write(dir.path().join(name), sql).unwrap();
        dir.path().join(name).to_str().unwrap().to_owned()
    };
    // Run in one transaction, the file's BEGIN and COMMIT left out.
    let one = write(
        "one.sql",
        format!("BEGIN ISOLATION LEVEL SERIALIZABLE, READ WRITE, DEFERRABLE;\n{}COMMIT;\n", row("one")),
    );
    let set =
        write("set.sql", format!("BEGIN;\nSET TRANSACTION ISOLATION LEVEL REPEATABLE READ;\n{}COMMIT;\n", row("set")));
    // Run as written: each block in a transaction of its own.
    let blocks = write(
        "blocks.sql",
        format!(
            "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ WRITE;\n{}COMMIT;\n\
             BEGIN DEFERRABLE;\n{}COMMIT;\nBEGIN;\nSET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\n{}COMMIT;\n",
            row("first"),
            row("second"),
            row("third")
        ),
    );
    let files = [one.as_str(), set.as_str(), blocks.as_str()];
    let reference = TestDb::new("mig_modes_psql");
    reference.psql(SEEN);
    for file in files {
        reference.psql(&std::fs::read_to_string(file).unwrap());
    }
    let db = TestDb::new("mig_modes");
    db.psql(SEEN);
    let store = tempfile::tempdir().unwrap();
    // The rehearsal is looked at on its own, below.
    let (code, report, err) =
        migrate(store.path(), &db, &["--skip-dry-run"].into_iter().chain(files).collect::<Vec<_>>());
    assert_eq!((code, &report["ending"]), (0, &"applied".into()), "{report}\n{err}");
    let seen = "SELECT what, isolation, read_only, deferred FROM seen ORDER BY what";
    let expected = "first|repeatable read|off|off\none|serializable|off|on\nsecond|read committed|off|on\n\
                    set|repeatable read|off|off\nthird|serializable|off|off";
    assert_eq!(reference.psql(seen).trim(), expected, "what psql does");
    assert_eq!(db.psql(seen).trim(), expected, "what pgsafe migrate did");
    db.psql("DELETE FROM seen");

    // The rehearsal, one transaction, cannot switch modes: it leaves `SET TRANSACTION` out, not failing.
    let (code, out, err) = run(pgsafe()
        .args(["dry-run", "-q", "--json", "--store"])
        .arg(store.path())
        .args(["-d", &db.conn_string()])
        .args(files));
    assert_eq!(code, 0, "{out}\n{err}");
    let rehearsal: Value = serde_json::from_str(&out).unwrap();
    let set_transaction: Vec<&Value> = rehearsal["statements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|st| st["statement"].as_str().unwrap().starts_with("SET TRANSACTION"))
        .collect();
    assert_eq!(set_transaction.len(), 2, "{rehearsal}");
    assert!(set_transaction.iter().all(|st| st["outcome"] == "not-run"), "{rehearsal}");

    // Without a snapshot, every file in one transaction: begun in the modes they ask for; files that ask
    // for different ones cannot share it, and are refused.
    let (code, report, err) = migrate(store.path(), &db, &["--skip-snapshot", &one]);
    assert_eq!(code, 0, "{report}\n{err}");
    assert_eq!(db.psql(seen).trim(), "one|serializable|off|on");
    let (code, report, err) = migrate(store.path(), &db, &["--skip-snapshot", &one, &set]);
    assert_eq!((code, &report["ending"]), (1, &"refused".into()), "{report}\n{err}");
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.contains("`BEGIN ISOLATION LEVEL REPEATABLE READ`"), "{reason}");
    assert_eq!(db.psql("SELECT count(*) FROM seen").trim(), "1");
}

/// The tester's file whose last `BEGIN` has no `COMMIT` after it: psql ends the script with the
/// transaction open and the server rolls it back, discarding its statements; pgsafe committed them (a
/// file with a `BEGIN` and no `COMMIT` at all ran in pgsafe's transaction, which commits). It is refused
/// before anything runs (exit 2, no snapshot), as a file's `ROLLBACK` is, and so is its rehearsal.
#[test]
fn a_file_whose_begin_is_never_committed_is_refused_before_anything_changes() {
    let db = TestDb::new("mig_never_committed");
    db.psql("CREATE TABLE coupon (code text PRIMARY KEY); INSERT INTO coupon VALUES ('WELCOME'), ('SPRING');");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let as_written = dir.path().join("as_written.sql");
    std::fs::write(
        &as_written,
        "BEGIN;\nINSERT INTO coupon VALUES ('SUMMER');\nCOMMIT;\n-- try the cleanup\nBEGIN;\nDELETE FROM coupon;\n",
    )
    .unwrap();
    let one = dir.path().join("one.sql");
    std::fs::write(&one, "BEGIN ISOLATION LEVEL SERIALIZABLE;\nDELETE FROM coupon;\n").unwrap();
    for (file, line) in [(&as_written, 5), (&one, 1)] {
        let name = file.file_name().unwrap().to_str().unwrap();
        // `--force`: not lint's refusal, which it goes past.
        let (code, _, err) = migrate(store.path(), &db, &["--force", file.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(&format!("{name}:{line}: `BEGIN")), "{err}");
        assert!(err.contains("opens a transaction that the file never commits"), "{err}");
        assert!(err.contains("hint: add the `COMMIT`"), "{err}");
        assert_eq!(db.psql("SELECT string_agg(code, ',' ORDER BY code) FROM coupon").trim(), "SPRING,WELCOME");
        let (code, _, err) = run(pgsafe()
            .args(["dry-run", "-q", "--store"])
            .arg(store.path())
            .args(["-d", &db.conn_string()])
            .arg(file));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(&format!("{name}:{line}: `BEGIN")), "{err}");
    }
    let (_, out, _) = run(pgsafe().args(["snapshots", "--json", "--store"]).arg(store.path()));
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), Value::Array(vec![]), "no snapshot was taken");
}

/// Two CI runners with stores of their own migrate one database at once (the tester's A1): while run A
/// applies, run B and a `rollback` refuse at once (exit 2), naming A, and do nothing: no snapshot, no
/// change. Before, B snapshotted A's half-applied state, and B's own rollback then threw A's applied
/// migration away. Once A is done, B runs.
#[test]
fn a_second_migrate_or_rollback_of_a_database_refuses_at_once_while_one_runs() {
    let db = TestDb::new("mig_concurrent");
    db.psql("CREATE TABLE orders (id int PRIMARY KEY, total numeric NOT NULL); INSERT INTO orders SELECT g, g FROM generate_series(1, 100) g;");
    let (store_a, store_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.sql");
    std::fs::write(&a, "CREATE TABLE audit_log (id int PRIMARY KEY, msg text);\nSELECT pg_sleep(6);\n").unwrap();
    let b = dir.path().join("b.sql");
    std::fs::write(&b, "ALTER TABLE orders ADD COLUMN note text;\n").unwrap();
    let mut run_a = pgsafe()
        .args(["migrate", "-q", "--json", "--skip-dry-run", "--store"])
        .arg(store_a.path())
        .args(["-d", &db.conn_string()])
        .arg(&a)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::interrupt::wait_until("run A applies its migration", &mut run_a, || {
        db.psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE '%pg_sleep(6)%' AND state = 'active' AND pid <> pg_backend_pid()",
            db.name()
        ))
        .trim()
            == "1"
    });

    let started = std::time::Instant::now();
    let (code, report, err) = migrate(store_b.path(), &db, &["--skip-dry-run", b.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}\n{report}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "refused only after {:?}", started.elapsed());
    let holder = format!("pgsafe migrate (pid {}", run_a.id());
    assert!(err.contains(&holder) && err.contains("nothing was done"), "{err}");
    let archives = std::fs::read_dir(store_b.path())
        .map(|d| d.filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "pgsafe")).count())
        .unwrap_or(0);
    assert_eq!(archives, 0, "the refused run took a snapshot");
    // A rollback of the database refuses the same way, on A's own store too.
    let (code, _, err) = run(pgsafe()
        .args(["rollback", "-q", "--latest", "--yes", "--store"])
        .arg(store_a.path())
        .args(["-d", &db.conn_string()]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&holder), "{err}");

    let out = run_a.wait_with_output().unwrap();
    let report_a: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(0), "{}\n{report_a}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report_a["ending"], "applied");
    assert_eq!(db.psql("SELECT to_regclass('audit_log') IS NOT NULL, count(*) FROM orders").trim(), "t|100");
    assert_eq!(db.psql("SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'").trim(), "0");
    // A let go when it ended: B runs now.
    let (code, report, err) = migrate(store_b.path(), &db, &["--skip-dry-run", b.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}\n{report}");
    assert_eq!(db.psql("SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'").trim(), "1");
}

/// The tester's B3: a role that owns its database but is no superuser rehearses a command; autovacuum
/// works in the freshly restored scratch copy, and `DROP DATABASE ... WITH (FORCE)`, which would have to
/// terminate the autovacuum worker, is refused to such a role (SQLSTATE 42501). The rehearsal's verdict
/// was lost (exit 2) and the copy left behind. A plain `DROP DATABASE` makes autovacuum go: the copy is
/// dropped and the verdict stands. When the copy cannot be dropped at all (a superuser's session on it,
/// which the role may not end), the verdict is still printed and decides the exit code, and the copy is
/// named in a warning.
#[test]
fn a_non_superusers_rehearsal_drops_its_scratch_copy_despite_autovacuum_and_keeps_its_verdict_when_it_cannot() {
    // Autovacuum visits a new database within a second, and is slowed down to stay on the table.
    let server = support::start_private(&PrivateClusterOptions {
        conf: vec!["autovacuum_naptime = 1".to_owned()],
        ..Default::default()
    });
    let psql = cluster().bin("psql");
    let superuser = |db: &str, sql: &str| server.sql_as(server.user(), db, sql);
    superuser("postgres", "CREATE ROLE app LOGIN CREATEDB");
    superuser("postgres", "CREATE DATABASE shop OWNER app");
    superuser(
        "shop",
        "SET ROLE app; CREATE TABLE docs (id int PRIMARY KEY, h text) WITH (autovacuum_vacuum_cost_delay = 100, \
         autovacuum_vacuum_cost_limit = 1, autovacuum_analyze_threshold = 0, autovacuum_analyze_scale_factor = 0, \
         autovacuum_vacuum_insert_threshold = 0, autovacuum_vacuum_insert_scale_factor = 0); \
         INSERT INTO docs SELECT g, md5(g::text) FROM generate_series(1, 50000) g;",
    );
    let conn = format!("host={} port={} user=app dbname=shop", server.socket_dir().display(), server.port());
    let store = tempfile::tempdir().unwrap();
    let marker = store.path().join("autovacuum-seen");
    let as_superuser = format!(
        "\"{}\" -X -q -A -t -h \"$PGHOST\" -p \"$PGPORT\" -U {} -d \"$PGDATABASE\"",
        psql.display(),
        server.user()
    );
    let dry_run = |script: &str| {
        run(pgsafe()
            .args(["dry-run", "-q", "--fresh", "--store"])
            .arg(store.path())
            .args(["-d", &conn, "--", "sh", "-c", script]))
    };
    let scratch_copies =
        || superuser("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'shop_pgsafe_scratch_%'");

    // The command changes nothing; it ends once an autovacuum worker is at work on the scratch copy.
    let script = format!(
        "for i in $(seq 1 300); do \
           n=$({as_superuser} -c \"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'autovacuum worker' AND query LIKE '%docs%'\"); \
           if [ \"$n\" -gt 0 ]; then touch '{}'; exit 0; fi; sleep 0.2; \
         done",
        marker.display()
    );
    let (code, stdout, stderr) = dry_run(&script);
    assert!(marker.exists(), "no autovacuum worker came to the scratch copy: {stderr}");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("verdict: the command would run and lose no rows"), "{stdout}");
    assert_eq!(scratch_copies(), "", "the scratch copy was left behind: {stderr}");

    // A superuser's session stays on the copy: the role can neither wait it out nor end it.
    let script = format!(
        "nohup {as_superuser} -c 'SELECT pg_sleep(600)' >/dev/null 2>&1 </dev/null & \
         for i in $(seq 1 100); do \
           n=$({as_superuser} -c \"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()\"); \
           if [ \"$n\" -gt 0 ]; then exit 0; fi; sleep 0.1; \
         done; exit 9"
    );
    let (code, stdout, stderr) = dry_run(&script);
    let left = scratch_copies();
    superuser(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()",
    );
    for name in left.lines() {
        superuser("postgres", &format!("DROP DATABASE \"{name}\" WITH (FORCE)"));
    }
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("verdict: the command would run and lose no rows"), "{stdout}");
    let name = left.trim();
    assert!(name.starts_with("shop_pgsafe_scratch_"), "{left:?}");
    assert!(stderr.contains("warning:") && stderr.contains(&format!("`{name}`")), "{stderr}");
}

/// The tester's B2: a database owner that is no superuser, with the application connected as another
/// role it may not end. The swap of the automatic rollback changes nothing, so the rollback goes on in
/// place, which needs no session to leave; before, the migration stayed half applied, exit 3.
#[test]
fn an_owners_rollback_goes_in_place_when_the_swap_cannot_end_another_roles_session() {
    let server = support::start_private(&PrivateClusterOptions::default());
    let su = server.user();
    server.sql_as(su, "postgres", "CREATE ROLE app LOGIN CREATEDB; CREATE ROLE webapp LOGIN");
    server.sql_as(su, "postgres", "CREATE DATABASE r OWNER app");
    server.sql_as(
        "app",
        "r",
        "CREATE TABLE orders (id bigserial PRIMARY KEY, total numeric NOT NULL); \
         INSERT INTO orders (total) SELECT g FROM generate_series(1, 100) g; GRANT SELECT ON orders TO webapp",
    );
    let mut web = server.psql_as("webapp", "r").args(["-c", "SELECT pg_sleep(120)"]).spawn().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1.sql"), "ALTER TABLE orders ADD COLUMN note text;\n").unwrap();
    std::fs::write(dir.path().join("2.sql"), "INSERT INTO orders (total) VALUES (NULL);\n").unwrap();
    let store = tempfile::tempdir().unwrap();
    let (code, out, err) = run(pgsafe()
        .args(["migrate", "-q", "--json", "--skip-dry-run", "--terminate-after", "1", "--store"])
        .arg(store.path())
        .args(["-d", &server.conn_as("app", "r")])
        .arg(dir.path().join("1.sql"))
        .arg(dir.path().join("2.sql")));
    let _ = web.kill();
    let _ = web.wait();
    let report: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    assert_eq!(code, 1, "{report:#}\n{err}");
    assert_eq!(report["ending"], "rolled-back", "{report:#}");
    assert_eq!(report["rollback"]["mode"], "in-place", "{report:#}");
    let columns =
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'";
    assert_eq!(server.sql_as("app", "r", columns).trim(), "0");
    assert_eq!(server.sql_as("app", "r", "SELECT count(*) FROM orders").trim(), "100");
}

/// A role that may connect to its own database only (as on a managed service) still migrates: the lock
/// that keeps other runs out is held in the database itself when the maintenance databases turn it away.
#[test]
fn a_role_that_may_reach_only_its_own_database_still_migrates() {
    let server = support::start_private(&PrivateClusterOptions::default());
    let su = server.user();
    server.sql_as(su, "postgres", "CREATE ROLE app LOGIN");
    server.sql_as(su, "postgres", "CREATE DATABASE r OWNER app");
    server.sql_as(
        su,
        "postgres",
        "REVOKE CONNECT ON DATABASE postgres FROM PUBLIC; REVOKE CONNECT ON DATABASE template1 FROM PUBLIC",
    );
    server.sql_as(
        "app",
        "r",
        "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 10)",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("0001_note.sql");
    std::fs::write(&file, "ALTER TABLE orders ADD COLUMN note text;\n").unwrap();
    let (code, out, err) = run(pgsafe()
        .args(["migrate", "-q", "--json", "--store"])
        .arg(dir.path().join("store"))
        .args(["-d", &server.conn_as("app", "r")])
        .arg(&file));
    assert_eq!(code, 0, "{out}\n{err}");
    let columns =
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'";
    assert_eq!(server.sql_as("app", "r", columns).trim(), "1");
}

/// Found on a real migration history (Lemmy's): the health check after a migration took the tables it
/// dropped or renamed for missing ones, and rolled back every such migration. They are named as the
/// migration's doing, a renamed table's rows are counted under its new name, and the migration stands.
#[test]
fn a_migration_that_drops_or_renames_tables_is_healthy() {
    let db = TestDb::new("mig_drop_rename");
    db.psql(
        "CREATE TABLE user_ (id int PRIMARY KEY, name text); INSERT INTO user_ SELECT g, 'u' || g FROM generate_series(1, 30) g;
         CREATE TABLE old_log (id int); INSERT INTO old_log SELECT generate_series(1, 5);
         CREATE SCHEMA archive; CREATE TABLE notes (id int); INSERT INTO notes VALUES (1);",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("0001_split.sql");
    std::fs::write(
        &file,
        "ALTER TABLE user_ RENAME TO person;\nDROP TABLE old_log;\nALTER TABLE notes SET SCHEMA archive;\n",
    )
    .unwrap();
    let store = tempfile::tempdir().unwrap();
    let (code, report, err) = migrate(store.path(), &db, &["--force", &file.to_string_lossy()]);
    assert_eq!((code, &report["ending"]), (0, &"applied".into()), "{report:#}\n{err}");
    assert_eq!(report["health"]["healthy"], true, "{report:#}");
    let mut findings: Vec<(String, String)> = report["health"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"].as_str().unwrap().ends_with("-by-migration"))
        .map(|f| (f["check"].as_str().unwrap().to_owned(), f["object"].as_str().unwrap().to_owned()))
        .collect();
    findings.sort();
    assert_eq!(
        findings,
        [
            ("dropped-by-migration".to_owned(), "public.old_log".to_owned()),
            ("renamed-by-migration".to_owned(), "public.notes".to_owned()),
            ("renamed-by-migration".to_owned(), "public.user_".to_owned()),
        ],
        "{report:#}"
    );
    assert_eq!(db.psql("SELECT count(*) FROM person").trim(), "30");
    // A later check against the migration's snapshot knows them too (Synapse tester: `check --latest`
    // after a migration that exits 0 said `missing-table` for each table it dropped, exit 1).
    let (code, out, err) = run(pgsafe()
        .args(["check", "--json", "--latest", "--store"])
        .arg(store.path())
        .args(["-d", &db.conn_string()]));
    let check: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    assert_eq!((code, &check["healthy"]), (0, &true.into()), "{check:#}\n{err}");
    let mut later: Vec<(String, String)> = check["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"].as_str().unwrap().ends_with("-by-migration"))
        .map(|f| (f["check"].as_str().unwrap().to_owned(), f["object"].as_str().unwrap().to_owned()))
        .collect();
    later.sort();
    assert_eq!(later, findings, "{check:#}");

    // A standalone rollback's plan knows them too, from the audit log: the renamed tables are compared
    // under their names now, not reported as new ones whose rows a rollback discards. A later migration
    // that renames one again is followed.
    db.psql("INSERT INTO person VALUES (31, 'new');");
    let again = dir.path().join("0002_again.sql");
    std::fs::write(&again, "ALTER TABLE person RENAME TO people;\n").unwrap();
    let (code, report, err) = migrate(store.path(), &db, &["--force", &again.to_string_lossy()]);
    assert_eq!((code, &report["ending"]), (0, &"applied".into()), "{report:#}\n{err}");
    let plan = |snapshot: &str| -> Value {
        let (code, out, err) = run(pgsafe()
            .args(["rollback", "--plan", "--json", snapshot, "--store"])
            .arg(store.path())
            .args(["-d", &db.conn_string()]));
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let first = check["against"].as_str().expect("the check names its snapshot").to_owned();
    let plan = plan(&first);
    let tables = plan["changes"]["tables"].as_array().unwrap();
    let of = |name: &str| tables.iter().find(|t| t["table"] == name).cloned().unwrap_or(Value::Null);
    assert!(!tables.iter().any(|t| t["change"] == "new"), "{plan:#}");
    assert_eq!(of("public.user_")["change"], "changed", "{plan:#}");
    assert_eq!(
        (&of("public.user_")["rows_now"], &of("public.user_")["rows_in_snapshot"]),
        (&31.into(), &30.into()),
        "{plan:#}"
    );
    assert!(of("public.user_")["note"].as_str().unwrap().contains("renamed `public.people`"), "{plan:#}");
    assert_eq!(of("public.notes")["change"], "unchanged", "{plan:#}");
    assert_eq!(of("public.old_log")["change"], "gone", "{plan:#}");
    // A table made again under the old name since is compared as it is: the rename is not followed.
    db.psql("CREATE TABLE user_ (id int);");
    let plan2 = run_ok_json(
        pgsafe()
            .args(["rollback", "--plan", "--json", &first, "--store"])
            .arg(store.path())
            .args(["-d", &db.conn_string()]),
    );
    let tables = plan2["changes"]["tables"].as_array().unwrap();
    assert!(tables.iter().any(|t| t["table"] == "public.people" && t["change"] == "new"), "{plan2:#}");
}

fn run_ok_json(cmd: &mut std::process::Command) -> Value {
    serde_json::from_str(&crate::dump_restore::run_ok(cmd)).unwrap()
}

/// Defect (Cal.com tester): `--allow-data-loss` went past a dry run that loses data, but not past lint's
/// `drop-column` error on the same migration, so the flag alone never got a column dropped. It now goes
/// past lint errors whose only hazard is losing data (recorded as forced), not past a lock hazard.
#[test]
fn allow_data_loss_goes_past_lints_data_loss_errors_but_not_its_lock_errors() {
    let db = TestDb::new("mig_allow_loss");
    db.psql("CREATE TABLE users (id int PRIMARY KEY, nickname text); INSERT INTO users SELECT g, 'n' || g FROM generate_series(1, 20000) g;");
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let drop = dir.path().join("0001_drop.sql");
    std::fs::write(&drop, "ALTER TABLE users DROP COLUMN nickname;\n").unwrap();
    let (code, report, err) = migrate(store.path(), &db, &[&drop.to_string_lossy()]);
    assert_eq!((code, &report["ending"]), (1, &"refused".into()), "{err}");
    assert!(report["reason"].as_str().unwrap().contains("`--allow-data-loss` or `--force` goes on"), "{report}");
    let (code, report, err) = migrate(store.path(), &db, &["--allow-data-loss", &drop.to_string_lossy()]);
    assert_eq!((code, &report["ending"]), (0, &"applied".into()), "{err}");
    let lint = report["steps"].as_array().unwrap().iter().find(|s| s["step"] == "lint").expect("a lint step").clone();
    assert_eq!(lint["outcome"]["outcome"], "forced", "{report}");
    assert!(lint["detail"].as_str().unwrap().contains("`--allow-data-loss` went on"), "{report}");
    let columns = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users'";
    assert_eq!(db.psql(columns).trim(), "1");
    // An index built without CONCURRENTLY on the table: a lock hazard, which the flag does not pass.
    let index = dir.path().join("0002_index.sql");
    std::fs::write(&index, "DELETE FROM users;\nCREATE INDEX users_id_idx ON users (id);\n").unwrap();
    let (code, report, err) = migrate(store.path(), &db, &["--allow-data-loss", &index.to_string_lossy()]);
    assert_eq!((code, &report["ending"]), (1, &"refused".into()), "{err}");
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.contains("create-index-without-concurrently") && reason.contains("(`--force` goes on)"), "{report}");
    assert_eq!(db.psql("SELECT count(*) FROM users").trim(), "20000");
    // Nor a CASCADE, which drops objects beside the table (a view here).
    db.psql("CREATE TABLE old_log (id int); CREATE VIEW old_log_view AS SELECT * FROM old_log;");
    let cascade = dir.path().join("0003_cascade.sql");
    std::fs::write(&cascade, "DROP TABLE old_log CASCADE;\n").unwrap();
    let (code, report, err) = migrate(store.path(), &db, &["--allow-data-loss", &cascade.to_string_lossy()]);
    assert_eq!((code, &report["ending"]), (1, &"refused".into()), "{err}");
    assert!(report["reason"].as_str().unwrap().contains("cascade"), "{report}");
    assert_eq!(db.psql("SELECT count(*) FROM pg_views WHERE viewname = 'old_log_view'").trim(), "1");
}

/// Harbor's tester adopted a folder on a database whose schema an earlier process made: `--baseline
/// VERSION` records the folder's migrations up to it as applied without running any (in the tool's
/// table too, made where missing), and a later run applies only those after it.
#[test]
fn baseline_records_the_migrations_up_to_a_version_without_running_them() {
    let store = tempfile::tempdir().unwrap();
    let db = TestDb::new("mig_baseline");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, sql: &str| std::fs::write(dir.path().join(name), sql).unwrap();
    write("0001_init.sql", "CREATE TABLE b (a int);\n");
    write("0002_seed.sql", "INSERT INTO b VALUES (2);\n");
    write("0003_more.sql", "INSERT INTO b VALUES (3);\n");
    db.psql("CREATE TABLE b (a int); INSERT INTO b VALUES (1);");
    let folder = dir.path().to_str().unwrap();
    let (code, _, err) = migrate(store.path(), &db, &["--baseline", "7", folder]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`--baseline 7`: the folder has no migration of that version"), "{err}");
    let (code, report, err) = migrate(store.path(), &db, &["--baseline", "2", folder]);
    assert_eq!((code, &report["ending"]), (0, &"baselined".into()), "{report:#}\n{err}");
    assert_eq!(report["baselined"], serde_json::json!(["0001_init", "0002_seed"]), "{report}");
    assert_eq!(report["snapshot"], Value::Null, "{report}");
    assert_eq!(db.psql("SELECT string_agg(a::text, ',' ORDER BY a) FROM b").trim(), "1");
    let (code, state) = migrations(&db, dir.path());
    assert_eq!(code, 0, "{state}");
    assert_eq!(labels(&state["applied"]), ["0001_init", "0002_seed"], "{state}");
    assert_eq!(labels(&state["pending"]), ["0003_more"], "{state}");
    // Again: nothing more to record.
    let (code, report, err) = migrate(store.path(), &db, &["--baseline", "2", folder]);
    assert_eq!((code, &report["ending"]), (0, &"up-to-date".into()), "{report:#}\n{err}");
    let (code, report, err) = migrate(store.path(), &db, &[folder]);
    assert_eq!((code, &report["applied"]), (0, &serde_json::json!(["0003_more"])), "{report:#}\n{err}");
    assert_eq!(db.psql("SELECT string_agg(a::text, ',' ORDER BY a) FROM b").trim(), "1,3");

    // A golang-migrate folder: its table is made and names the baseline's version.
    let db = TestDb::new("mig_baseline_golang");
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in tool_folder("golang-migrate") {
        std::fs::write(dir.path().join(name), sql).unwrap();
    }
    db.psql("CREATE TABLE m (a int);");
    let (code, report, err) = migrate(store.path(), &db, &["--baseline", "1", dir.path().to_str().unwrap()]);
    assert_eq!((code, &report["baselined"]), (0, &serde_json::json!(["000001_init"])), "{report:#}\n{err}");
    assert_eq!(db.psql("SELECT string_agg(version || ' ' || dirty, ',') FROM schema_migrations").trim(), "1 false");
    let (code, report, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!((code, &report["applied"]), (0, &serde_json::json!(["000002_b"])), "{report:#}\n{err}");
    assert_eq!(db.psql("SELECT string_agg(version || ' ' || dirty, ',') FROM schema_migrations").trim(), "2 false");
}

/// A Flyway folder's `${...}` placeholders are filled as Flyway fills them (`--placeholder`, and Flyway's
/// own `${flyway:...}`); one without a value refuses the run before anything, rather than fail half way
/// or write `${app_url}` into the data. The checksum Flyway's table records is the file's own.
#[test]
fn a_flyway_folders_placeholders_are_filled_or_refuse_the_run() {
    let store = tempfile::tempdir().unwrap();
    let db = TestDb::new("mig_placeholders");
    let dir = tempfile::tempdir().unwrap();
    let seed = "-- seeds\nINSERT INTO f VALUES ('${app_url}'), ('${flyway:filename}'), ('${flyway:table}');\n";
    std::fs::write(dir.path().join("V1__init.sql"), "CREATE TABLE ${flyway:defaultSchema}.f (a text);\n").unwrap();
    std::fs::write(dir.path().join("V2__seed.sql"), seed).unwrap();
    let folder = dir.path().to_str().unwrap();
    let (code, report, err) = migrate(store.path(), &db, &[folder]);
    assert_eq!((code, &report["ending"]), (1, &"refused".into()), "{report:#}\n{err}");
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.contains("V2__seed.sql` line 2: the Flyway placeholder `${app_url}` has no value"), "{reason}");
    assert!(reason.contains("`--placeholder app_url=VALUE`"), "{reason}");
    assert_eq!(db.psql("SELECT to_regclass('f') IS NULL").trim(), "t");
    let (code, report, err) = migrate(store.path(), &db, &["--placeholder", "APP_URL=https://x.test", folder]);
    assert_eq!((code, &report["ending"]), (0, &"applied".into()), "{report:#}\n{err}");
    assert_eq!(
        db.psql("SELECT string_agg(a, ',' ORDER BY a) FROM f").trim(),
        "V2__seed.sql,flyway_schema_history,https://x.test"
    );
    // The rehearsal ran the filled text and names the user's files, not a copy of them.
    let named: Vec<&str> =
        report["dry_run"]["statements"].as_array().unwrap().iter().map(|st| st["file"].as_str().unwrap()).collect();
    let v1 = dir.path().join("V1__init.sql");
    let v2 = dir.path().join("V2__seed.sql");
    assert_eq!(named, [v1.to_str().unwrap(), v2.to_str().unwrap()], "{report:#}");
    let raw_sum = {
        let mut crc = crc32fast::Hasher::new();
        crc.update(b"-- seeds");
        crc.update(b"INSERT INTO f VALUES ('${app_url}'), ('${flyway:filename}'), ('${flyway:table}');");
        crc.finalize() as i32
    };
    assert_eq!(db.psql("SELECT checksum FROM flyway_schema_history WHERE version = '2'").trim(), raw_sum.to_string());
}

/// A Flyway project's configuration is read where Flyway reads it: `flyway.conf` in the working folder
/// (placeholders, their prefix, the history table's name and schema), the environment's
/// `FLYWAY_PLACEHOLDERS_*` over it, and `--placeholder` over both; the history table is made where the
/// configuration puts it, and found there by `migrations` and the next run.
#[test]
fn a_flyway_projects_configuration_gives_placeholders_and_the_history_tables_place() {
    let store = tempfile::tempdir().unwrap();
    let db = TestDb::new("mig_flyway_conf");
    db.psql("CREATE SCHEMA app");
    let project = tempfile::tempdir().unwrap();
    let sql = project.path().join("sql");
    std::fs::create_dir(&sql).unwrap();
    std::fs::write(
        project.path().join("flyway.conf"),
        "flyway.url=jdbc:postgresql://elsewhere/x\nflyway.locations=filesystem:sql\nflyway.schemas=app,public\n\
         flyway.table=schema_history\nflyway.placeholderPrefix=#{\nflyway.placeholders.owner=conf_owner\n\
         flyway.placeholders.region=conf_region\nflyway.placeholders.tier=conf_tier\n",
    )
    .unwrap();
    std::fs::write(sql.join("V1__init.sql"), "CREATE TABLE #{flyway:defaultSchema}.f (a text, b text);\n").unwrap();
    std::fs::write(
        sql.join("V2__seed.sql"),
        "INSERT INTO app.f VALUES ('owner', '#{owner}'), ('region', '#{region}'), ('tier', '#{tier}'), \
         ('kept', '${owner}');\n",
    )
    .unwrap();
    let migrate_here = |args: &[&str]| {
        let (code, out, err) = run(pgsafe()
            .current_dir(project.path())
            .env("FLYWAY_PLACEHOLDERS_REGION", "env_region")
            .args(["migrate", "-q", "--json", "--store"])
            .arg(store.path())
            .args(["-d", &db.conn_string()])
            .args(args)
            .arg("sql"));
        (code, serde_json::from_str::<Value>(&out).unwrap_or(Value::Null), err)
    };
    let (code, report, err) = migrate_here(&["--placeholder", "TIER=flag_tier"]);
    assert_eq!((code, &report["ending"]), (0, &"applied".into()), "{report:#}\n{err}");
    assert_eq!(
        db.psql("SELECT string_agg(a || '=' || b, ',' ORDER BY a) FROM app.f").trim(),
        "kept=${owner},owner=conf_owner,region=env_region,tier=flag_tier"
    );
    assert_eq!(
        db.psql("SELECT string_agg(version, ',' ORDER BY installed_rank) FROM app.schema_history").trim(),
        "1,2"
    );
    assert_eq!(db.psql("SELECT to_regclass('public.flyway_schema_history') IS NULL").trim(), "t");
    // `migrations`, from the project, reads the history table where the configuration puts it.
    let (code, out, err) =
        run(pgsafe().current_dir(project.path()).args(["migrations", "--json", "-d", &db.conn_string(), "sql"]));
    assert_eq!(code, 0, "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["tool_table"]["table"]["schema"], "app", "{status:#}");
    assert_eq!(status["tool_table"]["table"]["name"], "schema_history", "{status:#}");
    // A file that does not parse is refused, naming it, before anything.
    std::fs::write(project.path().join("flyway.conf"), "flyway.placeholderReplacement=yes please\n").unwrap();
    let (code, _, err) = migrate_here(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("flyway.conf`: line 1: `placeholderReplacement`"), "{err}");
}

/// Flyway's repeatable migrations (`R__name.sql`) run after the versioned ones, and again whenever they
/// change; where the database has no table of Flyway's (and pgsafe cannot make one: a table of that name
/// that is not Flyway's is there), pgsafe's own table records them, one row each. A folder of another
/// layout with an `R__` file is refused. Before: every `R__` file was refused, exit 2.
#[test]
fn flyway_repeatable_migrations_run_after_the_versioned_ones_and_again_when_they_change() {
    let store = tempfile::tempdir().unwrap();
    let db = TestDb::new("mig_repeatable");
    db.psql("CREATE TABLE flyway_schema_history (note text)");
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("V1__init.sql", "CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2);\n");
    write("R__counts.sql", "CREATE OR REPLACE VIEW counts AS SELECT count(*) AS n FROM t;\n");
    let (code, report, err) = migrate(store.path(), &db, &[folder]);
    assert_eq!(code, 0, "{report:#}\n{err}");
    assert_eq!(report["applied"], serde_json::json!(["1_init", "R__counts"]), "{report}");
    assert_eq!(db.psql("SELECT n FROM counts").trim(), "2");
    let (code, report, _) = migrate(store.path(), &db, &[folder]);
    assert_eq!((code, &report["ending"]), (0, &"up-to-date".into()), "{report}");
    write("R__counts.sql", "CREATE OR REPLACE VIEW counts AS SELECT count(*) AS n, max(a) AS top FROM t;\n");
    write("V2__more.sql", "INSERT INTO t VALUES (3);\n");
    let (code, report, err) = migrate(store.path(), &db, &[folder]);
    assert_eq!(code, 0, "{report:#}\n{err}");
    assert_eq!(report["applied"], serde_json::json!(["2_more", "R__counts"]), "{report}");
    assert_eq!(db.psql("SELECT n || ' ' || top FROM counts").trim(), "3 3");
    let rows = "SELECT string_agg(version, ',' ORDER BY version) FROM pgsafe.migrations";
    assert_eq!(db.psql(rows).trim(), "1,2,R__counts");
    let (code, report, _) = migrate(store.path(), &db, &[folder]);
    assert_eq!((code, &report["ending"]), (0, &"up-to-date".into()), "{report}");

    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("0001_init.sql"), "SELECT 1;\n").unwrap();
    std::fs::write(other.path().join("R__views.sql"), "SELECT 2;\n").unwrap();
    let (code, _, err) = migrate(store.path(), &db, &[other.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("R__views.sql` is a Flyway repeatable migration, in a folder whose migrations"), "{err}");
}

/// A folder in each tool's layout, of two migrations that make and alter table `m`: (file name, text)
/// for each, where a tool keeps a folder per migration the name holds it.
fn tool_folder(tool: &str) -> [(&'static str, &'static str); 2] {
    match tool {
        "golang-migrate" => [
            ("000001_init.up.sql", "CREATE TABLE m (a int);\n"),
            ("000002_b.up.sql", "ALTER TABLE m ADD COLUMN b int;\n"),
        ],
        "diesel" => [
            ("2019-02-26-002946_init/up.sql", "CREATE TABLE m (a int);\n"),
            ("2019-03-01-000000_b/up.sql", "ALTER TABLE m ADD COLUMN b int;\n"),
        ],
        "Prisma" => [
            ("20230101000000_init/migration.sql", "CREATE TABLE m (a int);\n"),
            ("20230202000000_b/migration.sql", "ALTER TABLE m ADD COLUMN b int;\n"),
        ],
        "Flyway" => {
            [("V1__init.sql", "CREATE TABLE m (a int);\n"), ("V2__add_b.sql", "ALTER TABLE m ADD COLUMN b int;\n")]
        }
        "dbmate" => [
            ("20230101000000_init.sql", "-- migrate:up\nCREATE TABLE m (a int);\n"),
            ("20230202000000_b.sql", "-- migrate:up\nALTER TABLE m ADD COLUMN b int;\n"),
        ],
        "goose" => [
            ("00001_init.sql", "-- +goose Up\nCREATE TABLE m (a int);\n"),
            ("00002_b.sql", "-- +goose Up\nALTER TABLE m ADD COLUMN b int;\n"),
        ],
        "sql-migrate" => [
            ("1_init.sql", "-- +migrate Up\nCREATE TABLE m (a int);\n"),
            ("2_b.sql", "-- +migrate Up\nALTER TABLE m ADD COLUMN b int;\n"),
        ],
        other => panic!("no folder for {other}"),
    }
}

/// A folder written for a tool, migrated by pgsafe on a database that has no table of the tool's (a
/// new database, or one an older pgsafe migrated): the tool's table is made as the tool makes it, with
/// every migration pgsafe applied written to it, so that the tool, run later, applies none again.
#[test]
fn a_folder_written_for_a_tool_makes_the_tools_table_where_the_database_has_none() {
    let store = tempfile::tempdir().unwrap();
    // (tool, its table, what the table holds once both migrations are applied)
    let tools = [
        (
            "golang-migrate",
            "schema_migrations",
            "SELECT string_agg(version || ' ' || dirty, ',') FROM schema_migrations",
            "2 false",
        ),
        (
            "diesel",
            "__diesel_schema_migrations",
            "SELECT string_agg(version, ',' ORDER BY version) FROM __diesel_schema_migrations",
            "20190226002946,20190301000000",
        ),
        (
            "Prisma",
            "_prisma_migrations",
            "SELECT string_agg(migration_name || ' ' || (finished_at IS NOT NULL) || ' ' || (checksum = encode(sha256(convert_to(CASE WHEN migration_name LIKE '%init' THEN 'CREATE TABLE m (a int);' ELSE 'ALTER TABLE m ADD COLUMN b int;' END || E'\\n', 'UTF8')), 'hex')), ',' ORDER BY migration_name) FROM _prisma_migrations",
            "20230101000000_init true true,20230202000000_b true true",
        ),
        (
            "Flyway",
            "flyway_schema_history",
            "SELECT string_agg(installed_rank || ' ' || version || ' ' || type || ' ' || script || ' ' || success, ',' ORDER BY installed_rank) FROM flyway_schema_history",
            "1 1 SQL V1__init.sql true,2 2 SQL V2__add_b.sql true",
        ),
        (
            "dbmate",
            "schema_migrations",
            "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations",
            "20230101000000,20230202000000",
        ),
        (
            "goose",
            "goose_db_version",
            "SELECT string_agg(version_id || ' ' || is_applied, ',' ORDER BY id) FROM goose_db_version",
            "0 true,1 true,2 true",
        ),
        (
            "sql-migrate",
            "gorp_migrations",
            "SELECT string_agg(id, ',' ORDER BY id) FROM gorp_migrations",
            "1_init.sql,2_b.sql",
        ),
    ];
    for (tool, table, holds, expected) in tools {
        let db = TestDb::new(&format!("mig_make_{}", tool.to_lowercase().replace('-', "_")));
        let dir = tempfile::tempdir().unwrap();
        let [first, second] = tool_folder(tool);
        let write = |(name, sql): (&str, &str)| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, sql).unwrap();
        };
        // The first migration, applied by a pgsafe that made no table of the tool's: as if the table
        // were dropped since.
        write(first);
        let (code, _, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
        assert_eq!(code, 0, "{tool}: {err}");
        assert_eq!(db.psql(&format!("SELECT to_regclass('{table}') IS NOT NULL")).trim(), "t", "{tool}: {err}");
        db.psql(&format!("DROP TABLE {table}"));
        // The second: the tool's table is made in its transaction, with the first written to it too.
        write(second);
        let (code, report, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
        assert_eq!(code, 0, "{tool}: {err}");
        assert_eq!(report["applied"].as_array().map(Vec::len), Some(1), "{tool}: {report}");
        assert_eq!(db.psql(holds).trim(), expected, "{tool}");
        // The tool's table alone says both are applied, as pgsafe reads it for the tool.
        db.psql("DROP TABLE pgsafe.migrations");
        let (code, state) = migrations(&db, dir.path());
        assert_eq!(code, 0, "{tool}: {state}");
        assert_eq!(state["tool_table"]["tool"], serde_json::json!(tool_kebab(tool)), "{tool}: {state}");
        assert_eq!(state["applied"].as_array().map(Vec::len), Some(2), "{tool}: {state}");
        assert_eq!(state["pending"].as_array().map(Vec::len), Some(0), "{tool}: {state}");
    }

    // A table of the tool's name that is not the tool's (Rails' `schema_migrations` has no `dirty`): kept
    // as it is, nothing written to it, and the migration applied.
    let db = TestDb::new("mig_make_taken");
    let dir = tempfile::tempdir().unwrap();
    let [(name, sql), _] = tool_folder("golang-migrate");
    std::fs::write(dir.path().join(name), sql).unwrap();
    db.psql("CREATE TABLE schema_migrations (version varchar PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20200101');");
    let (code, _, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("a table of that name that is not the tool's"), "{err}");
    assert_eq!(db.psql("SELECT string_agg(version, ',') FROM schema_migrations").trim(), "20200101");
    assert_eq!(db.psql("SELECT to_regclass('m') IS NOT NULL").trim(), "t");
}

/// A tool's name as the JSON reports spell it.
fn tool_kebab(tool: &str) -> String {
    tool.to_lowercase()
}

/// A team moving its folder to pgsafe has a database its own tool already migrated, and may still run
/// that tool: what the tool's table records as applied is applied, a migration it records as failed part
/// way stops the run, and what pgsafe applies or undoes is written to the tool's table as the tool writes
/// it (diesel's dashless versions, golang-migrate's one row, Flyway's ranks and checksums, Prisma's rows).
#[test]
fn a_folder_written_for_another_tool_goes_on_from_that_tools_table_and_keeps_it_current() {
    let store = tempfile::tempdir().unwrap();

    // diesel: the first folder was applied by diesel; pgsafe applies the second, then undoes it.
    let db = TestDb::new("mig_diesel");
    let dir = tempfile::tempdir().unwrap();
    for (folder, up, down) in [
        ("2019-02-26-002946_create_users", "CREATE TABLE users (id int PRIMARY KEY);\n", "DROP TABLE users;\n"),
        (
            "2019-03-03-163336_add_name",
            "ALTER TABLE users ADD COLUMN name text;\n",
            "ALTER TABLE users DROP COLUMN name;\n",
        ),
    ] {
        std::fs::create_dir(dir.path().join(folder)).unwrap();
        std::fs::write(dir.path().join(folder).join("up.sql"), up).unwrap();
        std::fs::write(dir.path().join(folder).join("down.sql"), down).unwrap();
    }
    db.psql(
        "CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY NOT NULL, \
         run_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP);
         CREATE TABLE users (id int PRIMARY KEY);
         INSERT INTO __diesel_schema_migrations (version) VALUES ('20190226002946');",
    );
    let (code, state) = migrations(&db, dir.path());
    assert_eq!(code, 0);
    assert_eq!(state["tool_table"]["tool"], "diesel", "{state}");
    assert_eq!(state["applied"][0]["tool"], "diesel", "{state}");
    assert_eq!(labels(&state["pending"]), ["2019-03-03-163336_add_name_add_name"]);
    let (code, report, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["2019-03-03-163336_add_name"]), "{report}");
    let versions = "SELECT string_agg(version, ',' ORDER BY version) FROM __diesel_schema_migrations";
    assert_eq!(db.psql(versions).trim(), "20190226002946,20190303163336");
    // Both in diesel's table, one in pgsafe's (the tester's bug 1: "records 0", counting only diesel's own).
    let (code, _, err) =
        run(pgsafe().args(["migrate", "--store"]).arg(store.path()).args(["-d", &db.conn_string()]).arg(dir.path()));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("records 2 of the folder's migrations as applied (pgsafe's table records 1)"), "{err}");
    let (code, _, err) = migrate(store.path(), &db, &["--down", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(db.psql(versions).trim(), "20190226002946");
    let (code, report, err) = migrate(store.path(), &db, &["--down", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["2019-02-26-002946_create_users (down)"]), "{report}");
    assert_eq!(db.psql("SELECT count(*) FROM __diesel_schema_migrations").trim(), "0");
    assert_eq!(db.psql("SELECT to_regclass('users') IS NULL").trim(), "t");

    // golang-migrate: a dirty version stops the run; once clean, the rest is applied and the one row
    // names the latest version.
    let db = TestDb::new("mig_golang");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, sql: &str| std::fs::write(dir.path().join(name), sql).unwrap();
    write("000001_init.up.sql", "CREATE TABLE t (a int);\n");
    write("000001_init.down.sql", "DROP TABLE t;\n");
    write("000002_b.up.sql", "ALTER TABLE t ADD COLUMN b int;\n");
    write("000002_b.down.sql", "ALTER TABLE t DROP COLUMN b;\n");
    write("000010_c.up.sql", "ALTER TABLE t ADD COLUMN c int;\n");
    write("000010_c.down.sql", "ALTER TABLE t DROP COLUMN c;\n");
    db.psql(
        "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
         CREATE TABLE t (a int);
         INSERT INTO schema_migrations VALUES (1, true);",
    );
    let (code, report, _) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(report["reason"].as_str().unwrap().contains("dirty"), "{report}");
    assert_eq!(db.psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 't'").trim(), "1");
    let (code, state) = migrations(&db, dir.path());
    assert_eq!(code, 1, "{state}");
    db.psql("UPDATE schema_migrations SET dirty = false");
    let (code, report, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["000002_b", "000010_c"]), "{report}");
    assert_eq!(db.psql("SELECT version || ' ' || dirty FROM schema_migrations").trim(), "10 false");
    let (code, _, err) = migrate(store.path(), &db, &["--down", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(db.psql("SELECT version || ' ' || dirty FROM schema_migrations").trim(), "2 false");

    // Flyway: a baseline at 1 and 1.1 applied; 1.2 and 2 pending, in that order (1.2 before 2, 1.10
    // after 1.9), recorded with the next ranks, their scripts and Flyway's checksums.
    let db = TestDb::new("mig_flyway");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, sql: &str| std::fs::write(dir.path().join(name), sql).unwrap();
    write("V1__init.sql", "CREATE TABLE f (a int);\n");
    write("V1_1__add_b.sql", "ALTER TABLE f ADD COLUMN b int;\n");
    write("V1_2__add_c.sql", "ALTER TABLE f ADD COLUMN c int;\r\n-- two lines\r\n");
    write("V2__add_d.sql", "ALTER TABLE f ADD COLUMN d int;\n");
    write("U2__add_d.sql", "ALTER TABLE f DROP COLUMN d;\n");
    let applied_sum = {
        let mut crc = crc32fast::Hasher::new();
        crc.update(b"ALTER TABLE f ADD COLUMN b int;");
        crc.finalize() as i32
    };
    db.psql(&format!(
        "CREATE TABLE flyway_schema_history (installed_rank int NOT NULL PRIMARY KEY, version varchar(50), \
         description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, \
         checksum int, installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(), \
         execution_time int NOT NULL, success boolean NOT NULL);
         CREATE TABLE f (a int, b int);
         INSERT INTO flyway_schema_history VALUES
             (1, '1', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, 'me', now(), 0, true),
             (2, '1.1', 'add b', 'SQL', 'V1_1__add_b.sql', {applied_sum}, 'me', now(), 5, true);"
    ));
    let (code, report, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["1.2_add_c", "2_add_d"]), "{report}");
    // What Flyway recorded of the migrations it applied: who, how long.
    let (_, state) = migrations(&db, dir.path());
    assert_eq!(
        (&state["applied"][1]["role"], &state["applied"][1]["seconds"]),
        (&"me".into(), &0.005.into()),
        "{state}"
    );
    let mut crc = crc32fast::Hasher::new();
    crc.update(b"ALTER TABLE f ADD COLUMN c int;-- two lines");
    let expected = crc.finalize() as i32;
    assert_eq!(
        db.psql(
            "SELECT string_agg(installed_rank || ' ' || version || ' ' || description || ' ' || type || ' ' \
             || script || ' ' || coalesce(checksum, 0) || ' ' || success, ',' ORDER BY installed_rank) \
             FROM flyway_schema_history WHERE installed_rank > 2"
        )
        .trim(),
        format!("3 1.2 add c SQL V1_2__add_c.sql {expected} true,4 2 add d SQL V2__add_d.sql {} true", {
            let mut crc = crc32fast::Hasher::new();
            crc.update(b"ALTER TABLE f ADD COLUMN d int;");
            crc.finalize() as i32
        })
    );
    let (code, report, err) = migrate(store.path(), &db, &["--down", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["2_add_d (down)"]), "{report}");
    // Flyway keeps the migration's row and records the undo as a row of its own, of its `U` script.
    assert_eq!(
        db.psql(
            "SELECT installed_rank || ' ' || version || ' ' || type || ' ' || script FROM flyway_schema_history \
                 ORDER BY installed_rank DESC LIMIT 1"
        )
        .trim(),
        "5 2 UNDO_SQL U2__add_d.sql"
    );
    let (_, state) = migrations(&db, dir.path());
    assert_eq!(labels(&state["pending"]), ["2_add_d"], "{state}");
    // A script whose checksum differs from the one Flyway recorded changed since: drift, nothing applied.
    // (Of a migration Flyway applied: pgsafe's own records have checksums of their own.)
    db.psql("UPDATE flyway_schema_history SET checksum = 12345 WHERE version = '1.1'");
    let (code, state) = migrations(&db, dir.path());
    assert_eq!((code, &state["changed"][0][0]["version"]), (1, &"1.1".into()), "{state}");
    let (code, report, _) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{report}");
    assert!(report["reason"].as_str().unwrap().contains("V1_1__add_b.sql"), "{report}");
    db.psql(&format!("UPDATE flyway_schema_history SET checksum = {applied_sum} WHERE version = '1.1'"));
    // A repeatable migration runs after the versioned ones, recorded as Flyway records it (no version),
    // and again whenever it changes.
    write("R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 1 AS x;\n");
    let (code, report, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["2_add_d", "R__views"]), "{report}");
    let last = "SELECT installed_rank || ' ' || coalesce(version, '-') || ' ' || description || ' ' || type || ' ' \
                || script || ' ' || checksum FROM flyway_schema_history ORDER BY installed_rank DESC LIMIT 1";
    let sum = |text: &[u8]| {
        let mut crc = crc32fast::Hasher::new();
        crc.update(text);
        crc.finalize() as i32
    };
    assert_eq!(
        db.psql(last).trim(),
        format!("7 - views SQL R__views.sql {}", sum(b"CREATE OR REPLACE VIEW v AS SELECT 1 AS x;"))
    );
    let (code, report, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!((code, &report["ending"]), (0, &"up-to-date".into()), "{report}\n{err}");
    write("R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 2 AS x;\n");
    let (code, state) = migrations(&db, dir.path());
    assert_eq!((code, &state["repeatables_due"][0]["version"]), (0, &"R__views".into()), "{state}");
    assert_eq!(state["repeatables_due"].as_array().map(Vec::len), Some(1), "{state}");
    let (code, report, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["R__views"]), "{report}");
    assert_eq!(db.psql("SELECT x FROM v").trim(), "2");
    assert_eq!(
        db.psql(last).trim(),
        format!("8 - views SQL R__views.sql {}", sum(b"CREATE OR REPLACE VIEW v AS SELECT 2 AS x;"))
    );

    // dbmate: a file holds its down script as a section of its own, which `--down` runs (and nothing of
    // the up section); the version goes from dbmate's table with it.
    let db = TestDb::new("mig_dbmate");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("20230101000000_init.sql"),
        "-- migrate:up\nCREATE TABLE d (a int);\n\n-- migrate:down\nDROP TABLE d;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("20230202000000_add_b.sql"),
        "-- migrate:up\nALTER TABLE d ADD COLUMN b int;\n\n-- migrate:down\nALTER TABLE d DROP COLUMN b;\n",
    )
    .unwrap();
    db.psql(
        "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);
         CREATE TABLE d (a int);
         INSERT INTO schema_migrations VALUES ('20230101000000');",
    );
    let (code, report, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["20230202000000_add_b"]), "{report}");
    let columns = "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns \
                   WHERE table_name = 'd'";
    assert_eq!(db.psql(columns).trim(), "a,b");
    assert_eq!(
        db.psql("SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations").trim(),
        "20230101000000,20230202000000"
    );
    let (code, report, err) = migrate(store.path(), &db, &["--down", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["20230202000000_add_b (down)"]), "{report}");
    // The rehearsal ran the down section alone and names the file, at the section's line.
    let rehearsed = &report["dry_run"]["statements"];
    assert_eq!(rehearsed.as_array().map(Vec::len), Some(1), "{report:#}");
    let file = dir.path().join("20230202000000_add_b.sql");
    assert_eq!((rehearsed[0]["file"].as_str(), rehearsed[0]["line"].as_u64()), (file.to_str(), Some(5)));
    assert_eq!(db.psql(columns).trim(), "a");
    assert_eq!(db.psql("SELECT string_agg(version, ',') FROM schema_migrations").trim(), "20230101000000");

    // goose: a file without a down section undoes nothing, as goose takes it, and forgets its version.
    let db = TestDb::new("mig_goose");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("00001_init.sql"),
        "-- +goose Up\nCREATE TABLE g (a int);\n-- +goose Down\nDROP TABLE g;\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("00002_empty.sql"), "-- +goose Up\n").unwrap();
    db.psql(
        "CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL, \
         tstamp timestamp DEFAULT now());
         INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true);",
    );
    let (code, report, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["00001_init", "00002_empty"]), "{report}");
    let versions = "SELECT string_agg(version_id::text, ',' ORDER BY id) FROM goose_db_version";
    assert_eq!(db.psql(versions).trim(), "0,1,2");
    let (code, report, err) = migrate(store.path(), &db, &["--down", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["00002_empty (down)"]), "{report}");
    assert_eq!(db.psql(versions).trim(), "0,1");
    assert_eq!(db.psql("SELECT to_regclass('g') IS NOT NULL").trim(), "t");

    // A tool's table elsewhere than its default (golang-migrate's `x-migrations-table`): `--tool-table`.
    let db = TestDb::new("mig_tool_table");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1_init.up.sql"), "CREATE TABLE w (a int);\n").unwrap();
    std::fs::write(dir.path().join("2_b.up.sql"), "ALTER TABLE w ADD COLUMN b int;\n").unwrap();
    db.psql(
        "CREATE SCHEMA app; CREATE TABLE app.migs (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
         CREATE TABLE w (a int); INSERT INTO app.migs VALUES (1, false);",
    );
    let (code, state) = migrations(&db, dir.path());
    assert_eq!((code, state["tool_table"].clone()), (0, Value::Null), "{state}");
    let (code, _, err) = migrate(store.path(), &db, &["--tool-table", "app.nothing", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("`--tool-table app.nothing`"), "{err}");
    let (code, report, err) = migrate(store.path(), &db, &["--tool-table", "app.migs", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["2_b"]), "{report}");
    assert_eq!(db.psql("SELECT version FROM app.migs").trim(), "2");

    // Prisma: a migration it started and did not finish stops the run; rolled back, it is applied again.
    let db = TestDb::new("mig_prisma");
    let dir = tempfile::tempdir().unwrap();
    for (folder, sql) in [
        ("20230101000000_init", "CREATE TABLE p (a int);\n"),
        ("20230202000000_add_b", "ALTER TABLE p ADD COLUMN b int;\n"),
    ] {
        std::fs::create_dir(dir.path().join(folder)).unwrap();
        std::fs::write(dir.path().join(folder).join("migration.sql"), sql).unwrap();
    }
    db.psql(
        "CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY NOT NULL, checksum varchar(64) NOT NULL, \
         finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz, \
         started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count int NOT NULL DEFAULT 0);
         CREATE TABLE p (a int);
         INSERT INTO _prisma_migrations (id, checksum, migration_name, finished_at, applied_steps_count) VALUES
             ('a', encode(sha256('CREATE TABLE p (a int);\n'::bytea), 'hex'), '20230101000000_init', now(), 1),
             ('b', 'y', '20230202000000_add_b', NULL, 0);",
    );
    let (code, report, _) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(report["reason"].as_str().unwrap().contains("20230202000000_add_b"), "{report}");
    db.psql("UPDATE _prisma_migrations SET rolled_back_at = now() WHERE id = 'b'");
    let (code, report, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["applied"], serde_json::json!(["20230202000000_add_b"]), "{report}");
    // sha256 of the script, as Prisma checks it.
    assert_eq!(
        db.psql(
            "SELECT checksum = encode(sha256('ALTER TABLE p ADD COLUMN b int;\n'::bytea), 'hex') \
             AND finished_at IS NOT NULL AND applied_steps_count = 1 \
             FROM _prisma_migrations WHERE migration_name = '20230202000000_add_b' AND rolled_back_at IS NULL"
        )
        .trim(),
        "t"
    );
}

#[test]
fn a_dry_run_of_a_command_that_leaves_a_sequence_behind_its_ids_fails() {
    let db = TestDb::new("mig_sequence");
    db.psql(
        "CREATE TABLE account (id serial PRIMARY KEY, name text);
         INSERT INTO account (name) SELECT 'a' || g FROM generate_series(1, 30) g;",
    );
    let store = tempfile::tempdir().unwrap();
    let rebuild = "-c 'CREATE TABLE account_new (id bigserial PRIMARY KEY, name text)' \
                   -c 'INSERT INTO account_new SELECT * FROM account'";
    let (code, report, err) = rehearse_psql(&db, store.path(), rebuild);
    assert_eq!(code, 1, "{err}\n{report:#}");
    let behind = &report["sequences_behind"][0];
    assert_eq!(behind["sequence"], "public.account_new_id_seq", "{report:#}");
    assert_eq!((behind["next"].as_i64(), behind["highest"].as_i64()), (Some(1), Some(30)), "{report:#}");
    assert_eq!(behind["before"], false);
    // With the setval that puts the sequence past the ids: nothing.
    let fixed = format!("{rebuild} -c \"SELECT setval('account_new_id_seq', max(id)) FROM account_new\"");
    let (code, report, err) = rehearse_psql(&db, store.path(), &fixed);
    assert_eq!(code, 0, "{err}\n{report:#}");
    assert!(report.get("sequences_behind").is_none(), "{report:#}");
}

/// A command's rehearsal on a table without a primary key: rows are matched whole. Before, an UPDATE of
/// every row said "the command would run and lose no rows", exit 0, while the SQL-file dry run of the same
/// statement counted every row.
#[test]
fn a_dry_run_of_a_command_matches_the_rows_of_a_table_without_a_key_whole() {
    let db = TestDb::new("mig_nokey");
    db.psql(
        "CREATE TABLE tokens (token text NOT NULL UNIQUE, expires date NOT NULL);
         INSERT INTO tokens SELECT md5(g::text), date '2025-01-01' + g FROM generate_series(1, 100) g;",
    );
    let store = tempfile::tempdir().unwrap();
    let (code, report, err) = rehearse_psql(
        &db,
        store.path(),
        "-c 'UPDATE tokens SET token = md5(token) WHERE expires < date '\\''2025-01-31'\\'''",
    );
    assert_eq!(report["exit_code"], 0, "{report:#}\n{err}");
    assert_eq!(code, 1, "{report:#}\n{err}");
    let tokens = report["values"].as_array().unwrap().iter().find(|v| v["table"] == "public.tokens").cloned().unwrap();
    assert_eq!(tokens["rows_deleted"], 29, "{tokens:#}");
    // A command that changes nothing of the rows: nothing counted.
    let (code, report, err) = rehearse_psql(&db, store.path(), "-c 'CREATE INDEX ON tokens (expires)'");
    assert_eq!(code, 0, "{report:#}\n{err}");
}

/// A `COPY ... TO STDOUT` in a migration (a check its author prints, as psql would) failed with
/// "unexpected message from server": its output now goes to stderr, in `migrate` and in a file run as
/// written, and the dry run reads it and goes on.
#[test]
fn a_copy_to_stdout_in_a_migration_prints_its_rows_on_stderr() {
    let db = TestDb::new("mig_copy_out");
    db.psql("CREATE TABLE plan (id int PRIMARY KEY, name text); INSERT INTO plan VALUES (1, 'free'), (2, 'pro');");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("0001_check.sql");
    std::fs::write(
        &file,
        "INSERT INTO plan VALUES (3, 'team');\nCOPY (SELECT id, name FROM plan ORDER BY id) TO STDOUT;\n",
    )
    .unwrap();
    let (code, _, err) = run(pgsafe().args(["dry-run", "-q", "-d", &db.conn_string()]).arg(&file));
    assert_eq!(code, 0, "{err}");
    let (code, report, err) = migrate(store.path(), &db, &[file.to_str().unwrap()]);
    assert_eq!((code, &report["ending"]), (0, &"applied".into()), "{err}");
    assert!(err.contains("1\tfree\n2\tpro\n3\tteam\n"), "{err}");
    // In a file with its own transactions, run as written.
    let own = dir.path().join("0002_own.sql");
    std::fs::write(
        &own,
        "BEGIN;\nUPDATE plan SET name = 'x' WHERE id = 1;\nCOMMIT;\nCOPY (SELECT name FROM plan ORDER BY id) TO STDOUT WITH (FORMAT csv);\n",
    )
    .unwrap();
    let (code, report, err) = migrate(store.path(), &db, &["--allow-data-loss", own.to_str().unwrap()]);
    assert_eq!((code, &report["ending"]), (0, &"applied".into()), "{err}");
    assert!(err.contains("x\npro\nteam\n"), "{err}");
}

/// Seed files as `pg_dump` or a person writes them (`COPY ... FROM stdin;`, the rows, a line `\.`) were a
/// syntax error at the first row: the rows are now data, sent through the COPY sub-protocol (text with
/// `\N` for NULL, and CSV), the statements after them run, and a row the server refuses fails the file
/// with the server's error at the file's line, undone as any failed statement.
#[test]
fn a_seed_file_with_copy_from_stdin_rows_is_applied_and_a_refused_row_rolls_it_back() {
    let db = TestDb::new("mig_copy_rows");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0001_plan.sql"),
        "CREATE TABLE plan (id int PRIMARY KEY, name text NOT NULL, price int);\n\
         COPY public.plan (id, name, price) FROM stdin;\n\
         1\tfree\t0\n\
         2\tit's pro;\t\\N\n\
         \\.\n\
         COPY plan (id, name, price) FROM STDIN WITH (FORMAT csv, HEADER);\n\
         id,name,price\n\
         3,\"team, annual\",100\n\
         \\.\n\
         CREATE INDEX plan_name ON plan (name);\n",
    )
    .unwrap();
    let folder = dir.path().to_str().unwrap();
    let (code, report, err) = migrate(store.path(), &db, &[folder]);
    assert_eq!(code, 0, "{report}\n{err}");
    assert_eq!(report["applied"], serde_json::json!(["0001_plan"]), "{report}");
    assert_eq!(
        db.psql("SELECT id, name, coalesce(price::text, 'NULL') FROM plan ORDER BY id").trim(),
        "1|free|0\n2|it's pro;|NULL\n3|team, annual|100"
    );
    assert_eq!(db.psql("SELECT count(*) FROM pg_indexes WHERE indexname = 'plan_name'").trim(), "1");

    // A row the server refuses: the rehearsal finds it first and refuses the migration ...
    std::fs::write(
        dir.path().join("0002_more.sql"),
        "INSERT INTO plan VALUES (10, 'gold', 50);\n\
         COPY plan (id, name, price) FROM stdin;\n\
         11\tplatinum\t70\n\
         12\tbroken\tnot-a-number\n\
         \\.\n",
    )
    .unwrap();
    let (code, report, err) = migrate(store.path(), &db, &[folder]);
    assert_eq!((code, &report["ending"]), (1, &"refused".into()), "{report}\n{err}");
    let s = report["dry_run"]["statements"].as_array().unwrap();
    assert_eq!((&s[1]["line"], &s[1]["outcome"]), (&2.into(), &"failed".into()), "{report}");
    assert_eq!(s[1]["failure"]["sqlstate"], "22P02", "{report}");
    // ... and applied past it, the file fails at its COPY, and its transaction takes the INSERT back.
    let (code, report, err) = migrate(store.path(), &db, &["--force", folder]);
    drop_replaced(&report);
    assert_eq!((code, &report["ending"]), (1, &"rolled-back".into()), "{report}\n{err}");
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("`0002_more`: line 2, its rows from line 3: `COPY plan (id, name, price) FROM stdin` failed")
            && reason.contains("not-a-number")
            && reason.contains("line 2, column price"),
        "{reason}"
    );
    assert_eq!(db.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM plan").trim(), "1,2,3");
    let (_, state) = migrations(&db, dir.path());
    assert_eq!(labels(&state["applied"]), ["0001_plan"]);
}

/// A file with transactions of its own (`BEGIN; ALTER TYPE mood ADD VALUE 'meh'; COMMIT; BEGIN; UPDATE
/// ... 'meh' ...; COMMIT;`) was run as one transaction, its BEGIN and COMMIT left out, and failed with
/// SQLSTATE 55P04 (the new value used before the transaction that added it commits), lint refusing it
/// first. It runs as written now, each of its transactions committed; a later one that fails is undone
/// with the rest by the snapshot, and `--skip-snapshot`, which only one transaction can undo, refuses it.
#[test]
fn a_file_with_transactions_of_its_own_runs_them_as_written_and_a_later_failure_rolls_back_to_the_snapshot() {
    let db = TestDb::new("mig_own_transactions");
    db.psql(
        "CREATE TYPE mood AS ENUM ('sad', 'happy'); CREATE TABLE people (id int PRIMARY KEY, feeling mood); \
         INSERT INTO people VALUES (1, 'sad'), (2, 'happy'), (3, NULL);",
    );
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0001_meh.sql"),
        "BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nCOMMIT;\n\nBEGIN;\nUPDATE people SET feeling = 'meh' WHERE feeling IS NULL;\nCOMMIT;\n",
    )
    .unwrap();
    let folder = dir.path().to_str().unwrap();
    let (code, report, err) = migrate(store.path(), &db, &["--skip-snapshot", folder]);
    assert_eq!((code, &report["ending"]), (1, &"refused".into()), "{report}\n{err}");
    assert!(report["reason"].as_str().unwrap().contains("commits transactions of its own"), "{report}");
    let (code, report, err) = migrate(store.path(), &db, &[folder]);
    assert_eq!(code, 0, "{report}\n{err}");
    assert_eq!(report["applied"], serde_json::json!(["0001_meh"]), "{report}");
    assert_eq!(db.psql("SELECT feeling FROM people WHERE id = 3").trim(), "meh");
    let (_, state) = migrations(&db, dir.path());
    assert_eq!(labels(&state["applied"]), ["0001_meh"]);

    // Two transactions commit, the third fails: the snapshot puts back what they committed.
    std::fs::write(
        dir.path().join("0002_angry.sql"),
        "BEGIN;\nALTER TYPE mood ADD VALUE 'angry';\nCOMMIT;\nBEGIN;\nUPDATE people SET feeling = 'angry' WHERE id = 1;\nCOMMIT;\n\
         BEGIN;\nALTER TABLE people ADD COLUMN team int REFERENCES no_such_table;\nCOMMIT;\n",
    )
    .unwrap();
    let (code, report, err) = migrate(store.path(), &db, &["--force", "--terminate-after", "2", folder]);
    drop_replaced(&report);
    assert_eq!((code, &report["ending"]), (1, &"rolled-back".into()), "{report}\n{err}");
    assert!(report["rollback"].is_object(), "the snapshot is restored: {report}");
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("`0002_angry`, in its transaction from line 8") && reason.contains("no_such_table"),
        "{reason}"
    );
    assert_eq!(db.psql("SELECT feeling FROM people WHERE id = 1").trim(), "sad");
    assert_eq!(db.psql("SELECT enum_range(NULL::mood)").trim(), "{sad,happy,meh}");
    let (_, state) = migrations(&db, dir.path());
    assert_eq!(labels(&state["applied"]), ["0001_meh"]);
}

/// Every pgsafe session pinned `TimeZone = UTC` and `DateStyle = ISO`, the migration's too: with the
/// database's zone New York, `ALTER COLUMN at TYPE timestamptz` read 12:00 as 12:00 UTC where psql (and
/// the application's own migration tool) reads it as 12:00 in New York, and `'03/04/2024'` was March 4th
/// where the database's `DMY` makes it April 3rd. The migration, and its rehearsal, now run under the
/// role's and database's settings; the rehearsal's counts are the same.
#[test]
fn a_migration_runs_under_the_databases_time_zone_and_date_style_as_under_psql() {
    let db = TestDb::new("mig_settings");
    db.psql(&format!(
        "ALTER DATABASE {name} SET TimeZone = 'America/New_York'; ALTER DATABASE {name} SET DateStyle = 'SQL, DMY';
         CREATE TABLE ev (id int PRIMARY KEY, at timestamp, day date, note text);
         INSERT INTO ev VALUES (1, '2024-01-15 12:00', NULL, 'a'), (2, '2024-07-15 12:00', NULL, 'b');",
        name = db.name()
    ));
    let psql_copy = TestDb::new("mig_settings_psql");
    psql_copy.psql(&format!(
        "ALTER DATABASE {name} SET TimeZone = 'America/New_York'; ALTER DATABASE {name} SET DateStyle = 'SQL, DMY';
         CREATE TABLE ev (id int PRIMARY KEY, at timestamp, day date, note text);
         INSERT INTO ev VALUES (1, '2024-01-15 12:00', NULL, 'a'), (2, '2024-07-15 12:00', NULL, 'b');",
        name = psql_copy.name()
    ));
    let sql = "ALTER TABLE ev ALTER COLUMN at TYPE timestamptz, ADD COLUMN label text;\n\
               UPDATE ev SET day = '03/04/2024', label = note || ' ' || at::date WHERE id > 0;\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0001_zone.sql"), sql).unwrap();
    let store = tempfile::tempdir().unwrap();
    let (code, report, err) = migrate(store.path(), &db, &[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{report}\n{err}");
    psql_copy.psql(sql);
    let values = "SET TimeZone = 'UTC'; SELECT id, to_char(at, 'YYYY-MM-DD HH24:MI'), to_char(day, 'YYYY-MM-DD'), label FROM ev ORDER BY id";
    let expected = "1|2024-01-15 17:00|2024-04-03|a 15/01/2024\n2|2024-07-15 16:00|2024-04-03|b 15/07/2024";
    assert_eq!(psql_copy.psql(values).trim(), expected, "what psql does");
    assert_eq!(db.psql(values).trim(), expected, "what pgsafe migrate did");
}

/// Found by a review: in a file run as written, a `DO` block that commits inside ran on its own with
/// nothing yet counted as committed, so when it failed after its `COMMIT` the report said "nothing was
/// changed, nothing to restore" and its committed row stayed. It counts as committing before it runs:
/// its failure restores the snapshot.
#[test]
fn a_do_block_that_commits_inside_then_fails_is_undone_by_the_snapshot() {
    let db = TestDb::new("mig_do_commit");
    db.psql("CREATE TABLE log (n int); INSERT INTO log VALUES (0);");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0001_do.sql"),
        "DO $$ BEGIN INSERT INTO log VALUES (1); COMMIT; PERFORM 1 / 0; END $$;\n\
         BEGIN;\nINSERT INTO log VALUES (2);\nCOMMIT;\n",
    )
    .unwrap();
    let folder = dir.path().to_str().unwrap();
    let (code, report, err) = migrate(store.path(), &db, &["--force", "--terminate-after", "2", folder]);
    drop_replaced(&report);
    assert_eq!((code, &report["ending"]), (1, &"rolled-back".into()), "{report}\n{err}");
    assert!(report["rollback"].is_object(), "the snapshot is restored: {report}");
    assert_eq!(db.psql("SELECT string_agg(n::text, ',' ORDER BY n) FROM log").trim(), "0");
}

/// Defect: with `--force`, the lint and dry-run steps the migration went past were recorded as `ok` (in
/// `steps` and the audit log), and `status` showed "migrate dry-run ok" over a rehearsal that failed.
#[test]
fn steps_that_force_went_past_are_recorded_as_forced_not_ok() {
    let db = TestDb::new("mig_forced_steps");
    db.psql("CREATE TABLE users (id int PRIMARY KEY, nickname text); INSERT INTO users SELECT g, 'n' || g FROM generate_series(1, 10) g;");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("0001_drop.sql");
    std::fs::write(&file, "ALTER TABLE users DROP COLUMN nickname;\nSELECT 1/0;\n").unwrap();
    let store = tempfile::tempdir().unwrap();
    let (code, report, err) = migrate(store.path(), &db, &["--force", "--skip-snapshot", &file.to_string_lossy()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(report["dry_run"]["would_fail"], true, "{report}");
    let steps = report["steps"].as_array().unwrap();
    let dry_run = steps.iter().find(|s| s["step"] == "dry-run").expect("a dry-run step");
    assert_eq!(
        (&dry_run["outcome"]["outcome"], &dry_run["outcome"]["error"]),
        (&"forced".into(), &"it would fail".into()),
        "{report}"
    );
    assert!(dry_run["detail"].as_str().unwrap().contains("`--force` went on"), "{report}");
    // Lint's `drop-column` error, gone past too.
    for step in steps.iter().filter(|s| s["step"] == "lint" && !s["detail"].as_str().unwrap().contains(", 0 error(s)"))
    {
        assert_eq!(step["outcome"]["outcome"], "forced", "{report}");
    }
    let audit = std::fs::read_to_string(store.path().join("audit.jsonl")).unwrap();
    let line = audit.lines().find(|l| l.contains("\"step\":\"dry-run\"")).expect("the dry-run's audit line");
    assert!(line.contains("\"outcome\":\"forced\"") && line.contains("\"error\":\"it would fail\""), "{line}");
    let (_, status, _) = run(pgsafe().args(["status", "--store"]).arg(store.path()));
    let row = status.lines().find(|l| l.contains("migrate dry-run")).expect("the dry-run in status");
    assert!(row.contains("forced past: it would fail") && !row.contains(" ok "), "{status}");
}

/// `pgsafe migrate ... 2>&1 | head -2` (the tester's bug 2): the reader of stderr went away, the next
/// progress line panicked (exit 101) between two files, leaving the first committed, the second not run
/// and the snapshot pinned. A message nobody reads is now dropped, and the migration runs to its end.
#[test]
fn a_migration_whose_stderr_reader_went_away_runs_to_its_end() {
    let db = TestDb::new("mig_closed_stderr");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0001_a.sql"), "CREATE TABLE a (id int);\n").unwrap();
    std::fs::write(dir.path().join("0002_b.sql"), "CREATE TABLE b (id int);\n").unwrap();
    let mut child = pgsafe()
        .args(["migrate", "--store"])
        .arg(store.path())
        .args(["-d", &db.conn_string()])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(
        db.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'")
            .trim(),
        "a,b"
    );
    let (_, listed, _) = run(pgsafe().args(["snapshots", "--json", "--store"]).arg(store.path()));
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert!(listed.as_array().unwrap().iter().all(|s| s["pinned"].is_null()), "{listed:#}");
}

/// A down script whose rehearsal fails is refused before any change, as a migration is (the Mattermost
/// tester's bug 3: it was applied, failed, and a whole swap rollback followed); one that only loses data
/// runs, saying what it lost.
#[test]
fn a_down_script_that_would_fail_is_refused_before_anything() {
    let db = TestDb::new("mig_down_fails");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, sql: &str| std::fs::write(dir.path().join(name), sql).unwrap();
    write(
        "0001_code.sql",
        "CREATE TABLE item (id int PRIMARY KEY, code text);\nINSERT INTO item VALUES (1, 'x1'), (2, '7');\n",
    );
    write("0001_code.down.sql", "ALTER TABLE item ALTER COLUMN code TYPE int USING code::int;\n");
    let folder = dir.path().to_str().unwrap();
    let (code, _, err) = migrate(store.path(), &db, &[folder]);
    assert_eq!(code, 0, "{err}");
    let (code, report, err) = migrate(store.path(), &db, &["--down", folder]);
    assert_eq!((code, &report["ending"]), (1, &"refused".into()), "{err}");
    assert!(report["reason"].as_str().unwrap().contains("it would fail"), "{report}");
    assert_eq!(report["rollback"], Value::Null, "{report}");
    assert_eq!(
        db.psql("SELECT data_type FROM information_schema.columns WHERE table_name = 'item' AND column_name = 'code'")
            .trim(),
        "text"
    );
}

/// Found on Synapse's schema: a migration's rollback by swap terminated the session holding a lock that
/// made it fail, and only `--json` named that session. The text report names it as `pgsafe rollback`'s.
#[test]
fn a_failed_migrations_text_report_names_the_sessions_its_rollback_terminated() {
    let db = TestDb::new("mig_terminated_text");
    db.psql("CREATE TABLE item (id int PRIMARY KEY); INSERT INTO item SELECT generate_series(1, 100);");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The first file commits, so its failing second one is rolled back by a swap.
    std::fs::write(dir.path().join("0001_tag.sql"), "CREATE TABLE tag (id int);\n").unwrap();
    std::fs::write(dir.path().join("0002_flag.sql"), "ALTER TABLE item ADD COLUMN flag boolean;\n").unwrap();
    let holder = crate::interrupt::hold_until_held(
        &db,
        "LOCK TABLE item IN ACCESS SHARE MODE",
        "item",
        "AccessShareLock",
        std::time::Duration::from_secs(10),
    );
    let (code, out, err) = run(pgsafe()
        .args(["migrate", "-q", "--skip-lint", "--skip-dry-run", "--lock-timeout", "300ms", "--lock-retries", "0"])
        .args(["--terminate-after", "1", "--store"])
        .arg(store.path())
        .args(["-d", &db.conn_string()])
        .arg(dir.path()));
    crate::interrupt::release(&db, holder);
    if let Some(name) = out.lines().find_map(|l| l.split("kept as `").nth(1)?.split('`').next()) {
        drop_database(name);
    }
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("FAILED and rolled back"), "{out}");
    let terminated: Vec<&str> = out.lines().filter(|l| l.starts_with("terminated session pid ")).collect();
    assert_eq!(terminated.len(), 1, "{out}");
    assert!(terminated[0].contains(", `psql`, active)"), "{out}");
}

/// A migration whose transaction is tried again after a lock timeout printed the output of its `COPY ...
/// TO STDOUT` once per attempt; the output of an attempt that is rolled back and tried again is now held
/// back, and printed once, when the attempt that commits is done.
#[test]
fn a_migration_tried_again_after_a_lock_timeout_prints_its_copy_output_once() {
    let db = TestDb::new("mig_copy_out_retried");
    db.psql("CREATE TABLE held (id int); INSERT INTO held VALUES (1);");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("0001_flag.sql"),
        "COPY (SELECT 'printed-' || 'once') TO STDOUT;\nALTER TABLE held ADD COLUMN flag boolean;\n",
    )
    .unwrap();
    let holder = crate::interrupt::hold_until_held(
        &db,
        "LOCK TABLE held IN ACCESS SHARE MODE",
        "held",
        "AccessShareLock",
        std::time::Duration::from_secs(10),
    );
    let mut child = pgsafe()
        .args(["migrate", "-q", "--skip-lint", "--skip-dry-run", "--lock-timeout", "200ms", "--lock-retries", "30"])
        .arg("--store")
        .arg(store.path())
        .args(["-d", &db.conn_string()])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::interrupt::wait_until("the migration waited for the lock", &mut child, || {
        crate::interrupt::pgsafe_statements(&db).contains("ALTER TABLE held")
    });
    // The first attempt gives up after 200 ms, printing nothing; a later one gets the lock.
    std::thread::sleep(std::time::Duration::from_millis(700));
    crate::interrupt::release(&db, holder);
    let output = child.wait_with_output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{out}{err}");
    assert_eq!(err.matches("printed-once").count(), 1, "{err}");
    assert!(
        db.psql("SELECT count(*) FROM pg_attribute WHERE attrelid = 'held'::regclass AND attname = 'flag'") == "1\n"
    );
}
