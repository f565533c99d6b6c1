//! `pgsafe status` on a real store: snapshots, a prune, a bad audit line, a store that does not exist.

use std::io::Write as _;

use serde_json::Value;

use crate::dump_restore::{pgsafe, run, run_ok};
use crate::support::TestDb;

#[test]
fn status_shows_the_snapshots_and_the_operations_of_the_store() {
    let db = TestDb::new("status_store");
    db.psql("CREATE TABLE item (id int PRIMARY KEY); INSERT INTO item SELECT generate_series(1, 100);");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path();
    let mut ids = Vec::new();
    for label in ["one", "two"] {
        let out = run_ok(
            pgsafe()
                .args(["snapshot", "-q", "--no-prune", "-d", &db.conn_string(), "--label", label, "--store"])
                .arg(store),
        );
        ids.push(out.trim().to_owned());
    }
    run_ok(pgsafe().args(["prune", "--keep", "1", "--store"]).arg(store).arg("-d").arg(db.name()));

    let out = run_ok(pgsafe().args(["status", "--json", "--store"]).arg(store));
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["exists"], true);
    let databases = status["databases"].as_array().unwrap();
    assert_eq!(databases.len(), 1, "{status}");
    assert_eq!(databases[0]["database"], db.name());
    assert_eq!(databases[0]["snapshots"], 1, "the prune left one");
    assert_eq!(databases[0]["newest"]["id"], ids[1].as_str());
    assert_eq!(databases[0]["newest"]["verified"], true);
    let size = std::fs::metadata(store.join(format!("{}.pgsafe", ids[1]))).unwrap().len();
    assert_eq!(databases[0]["bytes"], size);
    let commands: Vec<&str> =
        status["operations"].as_array().unwrap().iter().map(|o| o["command"].as_str().unwrap()).collect();
    assert_eq!(commands, ["prune", "snapshot", "snapshot"], "newest first");
    assert_eq!(status["operations"][0]["removed"], serde_json::json!([ids[0]]));
    assert_eq!(status["operations"][1]["snapshot"], ids[1].as_str());

    // `--last 1` keeps the prune alone.
    let out = run_ok(pgsafe().args(["status", "--json", "--last", "1", "--store"]).arg(store));
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["operations"].as_array().unwrap().len(), 1);

    let md = run_ok(pgsafe().args(["status", "--markdown", "--store"]).arg(store));
    assert!(md.starts_with(&format!("## pgsafe status of `{}`\n", store.display())), "{md}");
    assert!(md.contains(&format!("| {} | 1 | ", db.name())), "{md}");
    assert!(md.contains(&format!("| `{}` | ", ids[1])), "{md}");
    assert!(md.contains("### Last 3 operations, newest first"), "{md}");
    assert!(md.contains(&format!(" | prune | {} | ok | removed 1 | ", db.name())), "{md}");

    // A line that is not an entry is skipped with a warning naming it; the status still shows the rest.
    let mut log = std::fs::OpenOptions::new().append(true).open(store.join("audit.jsonl")).unwrap();
    log.write_all(b"{\"time\": \"cut sh\n").unwrap();
    let (code, out, stderr) = run(pgsafe().args(["status", "--store"]).arg(store));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("warning: line 4 of the audit log `"), "{stderr}");
    assert!(out.contains("last 3 operations, newest first:"), "{out}");
    assert!(out.lines().any(|l| l.starts_with(db.name()) && l.contains(&ids[1])), "{out}");
}

#[test]
fn a_store_that_does_not_exist_has_an_empty_status_and_is_not_made() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("none");
    let (code, out, stderr) = run(pgsafe().args(["status", "--store"]).arg(&store));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(out, format!("there is no store at `{}` (`pgsafe snapshot` makes it)\n", store.display()));
    let out = run_ok(pgsafe().args(["status", "--json", "--store"]).arg(&store));
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&status["exists"], &status["databases"], &status["operations"]),
        (&false.into(), &serde_json::json!([]), &serde_json::json!([]))
    );
    assert!(!store.exists(), "`status` made the store");
}

/// Found on Synapse's schema: after a dry run refused a migration and its snapshot was removed, the
/// status listed `migrate snapshot ok` naming that snapshot as if it were there; and a migration's
/// health check did not count as the database's last check (`-`).
#[test]
fn a_migrations_removed_snapshot_is_shown_removed_and_its_health_check_is_the_last_check() {
    let db = TestDb::new("status_migrate");
    db.psql("CREATE TABLE item (id int PRIMARY KEY); INSERT INTO item SELECT generate_series(1, 100);");
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let migrate = |file: &str, sql: &str| {
        std::fs::write(dir.path().join(file), sql).unwrap();
        let (code, out, _) = run(pgsafe()
            .args(["migrate", "-q", "--skip-lint", "--json", "--store"])
            .arg(store.path())
            .args(["-d", &db.conn_string()])
            .arg(dir.path().join(file)));
        (code, serde_json::from_str::<Value>(&out).unwrap())
    };
    // The dry run finds the duplicate key: refused, its snapshot removed.
    let (code, report) = migrate("0001_dup.sql", "UPDATE item SET id = 1 WHERE id = 2;\n");
    assert_eq!((code, &report["snapshot_removed"]), (1, &Value::Bool(true)), "{report}");
    let id = report["snapshot"].as_str().unwrap().to_owned();
    let out = run_ok(pgsafe().args(["status", "-d", db.name(), "--store"]).arg(store.path()));
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(" migrate snapshot ")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    // Newest first: the removal, then the snapshot taken.
    assert!(lines[0].contains(&format!(" removed {id} ")), "{out}");
    assert!(lines[1].contains(" ok ") && lines[1].contains(&format!(" {id} ")), "{out}");
    let status: Value =
        serde_json::from_str(&run_ok(pgsafe().args(["status", "--json", "--store"]).arg(store.path()))).unwrap();
    assert!(status["databases"][0]["last_check"].is_null(), "{status}");

    let (code, report) = migrate("0002_note.sql", "ALTER TABLE item ADD COLUMN note text;\n");
    assert_eq!(code, 0, "{report}");
    let status: Value =
        serde_json::from_str(&run_ok(pgsafe().args(["status", "--json", "--store"]).arg(store.path()))).unwrap();
    let check = &status["databases"][0]["last_check"];
    assert_eq!(
        (&check["command"], &check["step"], &check["outcome"]),
        (&"migrate".into(), &"check".into(), &"ok".into()),
        "{status}"
    );
    let out = run_ok(pgsafe().args(["status", "-d", db.name(), "--store"]).arg(store.path()));
    let row = out.lines().find(|l| l.starts_with(db.name())).unwrap();
    assert!(row.trim_end().ends_with(" ago") && row.contains(" ok "), "{out}");
}
