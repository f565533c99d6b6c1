//! `pgsafe lint` as a CI job runs it: a Prisma migrations folder and a Drizzle file flagged line by line,
//! JSON, GitHub annotations and SARIF, a syntax error's position, and with `-d` the live table sizes.

use std::path::Path;

use serde_json::Value;

use crate::dump_restore::{pgsafe, run};
use crate::support::TestDb;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `pgsafe lint --format json` with `args`: the exit code and the report.
fn lint_json(args: &[&str]) -> (i32, Value) {
    let (code, stdout, stderr) = run(pgsafe().args(["lint", "--format", "json"]).args(args));
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no report ({e}):\n{stdout}\n{stderr}"));
    (code, report)
}

/// (file name's end, line, rule) of each finding at `level` or any level when `None`.
/// The lines of the findings of `rule`, in order.
fn lines_of(report: &Value, rule: &str) -> Vec<u64> {
    found(report).into_iter().filter(|(_, _, r)| r == rule).map(|(_, line, _)| line).collect()
}

fn found(report: &Value) -> Vec<(String, u64, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap();
            let short = file.rsplit('/').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("/");
            (short, f["line"].as_u64().unwrap(), f["rule"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn has(found: &[(String, u64, String)], file: &str, line: u64, rule: &str) -> bool {
    found.iter().any(|(f, l, r)| f == file && *l == line && r == rule)
}

#[test]
fn a_prisma_migrations_folder_is_linted_in_order_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    write(
        &migrations.join("20240101000000_init/migration.sql"),
        "-- CreateTable\nCREATE TABLE \"User\" (\n    \"id\" SERIAL NOT NULL,\n    \"email\" TEXT NOT NULL,\n    \"name\" VARCHAR(50),\n\n    CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- CreateIndex\nCREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");\n",
    );
    write(
        &migrations.join("20240202000000_profile/migration.sql"),
        "-- AlterTable\nALTER TABLE \"User\" ADD COLUMN \"bio\" TEXT NOT NULL,\nALTER COLUMN \"name\" SET DATA TYPE VARCHAR(20);\n\n-- CreateIndex\nCREATE INDEX \"User_name_idx\" ON \"User\"(\"name\");\n\n-- DropTable\nDROP TABLE \"Legacy\";\n",
    );
    write(&migrations.join("migration_lock.toml"), "provider = \"postgresql\"\n");
    let (code, report) = lint_json(&[migrations.to_str().unwrap()]);
    assert_eq!(code, 1, "{report:#}");
    let found = found(&report);
    let first = "20240101000000_init/migration.sql";
    let second = "20240202000000_profile/migration.sql";
    // The first migration creates its table: its index is no hazard there, only habits.
    assert!(has(&found, first, 3, "prefer-bigint-primary-key"), "{found:?}");
    assert!(!found.iter().any(|(f, _, r)| f == first && r == "create-index-without-concurrently"), "{found:?}");
    // The second changes an existing table, and knows the column's type from the first.
    assert!(has(&found, second, 2, "add-column-not-null-without-default"), "{found:?}");
    assert!(has(&found, second, 2, "missing-lock-timeout"), "{found:?}");
    assert!(has(&found, second, 3, "alter-column-type-narrowing"), "{found:?}");
    assert!(has(&found, second, 6, "create-index-without-concurrently"), "{found:?}");
    assert!(has(&found, second, 9, "drop-table"), "{found:?}");
    // Files in folder order: every finding of the first comes before the second's.
    let files: Vec<&String> = found.iter().map(|(f, ..)| f).collect();
    assert!(files.windows(2).all(|w| w[0] <= w[1]), "{files:?}");
}

#[test]
fn a_drizzle_file_with_breakpoints_is_flagged_statement_by_statement_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("0001_orders.sql");
    write(
        &file,
        "ALTER TABLE \"orders\" ADD COLUMN \"token\" uuid DEFAULT gen_random_uuid();--> statement-breakpoint\n\
         ALTER TABLE \"orders\" ADD CONSTRAINT \"orders_user_id_users_id_fk\" FOREIGN KEY (\"user_id\") REFERENCES \"public\".\"users\"(\"id\") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint\n\
         -- pgsafe:allow truncate the table is a cache rebuilt every night\n\
         TRUNCATE \"order_cache\";--> statement-breakpoint\n\
         CREATE INDEX IF NOT EXISTS \"orders_user_idx\" ON \"orders\" USING btree (\"user_id\");\n",
    );
    let path = file.to_str().unwrap();
    let (code, report) = lint_json(&[path]);
    assert_eq!(code, 1, "{report:#}");
    let found = found(&report);
    let name = format!("{}/0001_orders.sql", dir.path().file_name().unwrap().to_str().unwrap());
    for (line, rule) in [
        (1, "add-column-volatile-default"),
        (1, "missing-lock-timeout"),
        (2, "add-foreign-key-without-not-valid"),
        (5, "create-index-without-concurrently"),
    ] {
        assert!(has(&found, &name, line, rule), "no {rule} on line {line}: {found:?}");
    }
    let allowed = &report["allowed"][0];
    assert_eq!((&allowed["rule"], &allowed["line"]), (&"truncate".into(), &4.into()), "{report:#}");
    assert_eq!(allowed["reason"], "the table is a cache rebuilt every night");
    let findings = report["findings"].as_array().unwrap();
    let first = findings.iter().find(|f| f["rule"] == "add-column-volatile-default").unwrap();
    for key in ["file", "line", "column", "rule", "level", "message", "lock", "rewrites", "help"] {
        assert!(first.get(key).is_some(), "no `{key}` in {first}");
    }
    assert_eq!((&first["lock"], &first["rewrites"]), (&"ACCESS EXCLUSIVE".into(), &"rewrite".into()), "{first}");

    // GitHub annotations: one per finding, errors as errors.
    let (code, stdout, _) = run(pgsafe().args(["lint", "--format", "github", path]));
    assert_eq!(code, 1);
    let annotation = format!("::error file={path},line=5,col=1,title=pgsafe create-index-without-concurrently::");
    assert!(stdout.lines().any(|l| l.starts_with(&annotation)), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("::warning file=") && l.contains("pgsafe missing-lock-timeout")),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), report["findings"].as_array().unwrap().len());

    // SARIF: the rules with their help, a result per finding with its location, the allowed one suppressed.
    let (code, stdout, _) = run(pgsafe().args(["lint", "--format", "sarif", path]));
    assert_eq!(code, 1);
    let sarif: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run0 = &sarif["runs"][0];
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["id"] == "create-index-without-concurrently" && r["help"]["text"].is_string()));
    let results = run0["results"].as_array().unwrap();
    let index = results.iter().find(|r| r["ruleId"] == "create-index-without-concurrently").unwrap();
    let location = &index["locations"][0]["physicalLocation"];
    assert_eq!((&location["artifactLocation"]["uri"], &location["region"]["startLine"]), (&path.into(), &5.into()));
    assert_eq!(index["level"], "error");
    let suppressed = results.iter().find(|r| r["ruleId"] == "truncate").unwrap();
    assert_eq!(suppressed["suppressions"][0]["justification"], "the table is a cache rebuilt every night");

    // The text report, and `--fail-on never` / `--migrate`.
    let (code, stdout, _) = run(pgsafe().args(["lint", "--fail-on", "never", "--migrate", path]));
    assert_eq!(code, 0);
    assert!(stdout.contains(&format!("{path}:5:1: error[create-index-without-concurrently]: ")), "{stdout}");
    assert!(stdout.contains("  = lock: SHARE, scans the table\n"), "{stdout}");
    assert!(!stdout.contains("missing-lock-timeout"), "{stdout}");
}

#[test]
fn a_syntax_error_exits_2_with_its_position_and_a_clean_file_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.sql");
    write(&bad, "SET lock_timeout = '2s';\nALTER TABLE orders\n  ADDD COLUMN note text;\n");
    let (code, stdout, stderr) = run(pgsafe().args(["lint"]).arg(&bad));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains(&format!("{}:3:3: syntax error at or near \"ADDD\"", bad.display())), "{stderr}");
    let good = dir.path().join("good.sql");
    write(&good, "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON orders (a);\n");
    let (code, stdout, _) = run(pgsafe().args(["lint"]).arg(&good));
    assert_eq!((code, stdout.as_str()), (0, "0 errors, 0 warnings, 0 hints, 0 allowed\n"));
    // An existing store gets an audit line per run; lint never makes one.
    let store = dir.path().join("store");
    let (code, ..) = run(pgsafe().args(["lint", "--store"]).arg(&store).arg(&good));
    assert_eq!(code, 0);
    assert!(!store.exists(), "lint made a store");
    pgsafe::store::LocalStore::open(&store).unwrap();
    run(pgsafe().args(["lint", "--store"]).arg(&store).arg(&good));
    run(pgsafe().args(["lint", "--store"]).arg(&store).arg(&bad));
    let audit = std::fs::read_to_string(store.join("audit.jsonl")).unwrap();
    let lines: Vec<Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{audit}");
    assert_eq!((&lines[0]["command"], &lines[0]["outcome"]), (&"lint".into(), &"ok".into()));
    assert_eq!(lines[0]["migration"], good.to_str().unwrap());
    assert_eq!(lines[1]["outcome"], "failed");
    assert!(lines[1]["error"].as_str().unwrap().contains("syntax error"), "{}", lines[1]);
    // With other files, in every format: the syntax error is reported where the format says it, and the
    // other files are still linted (their findings all there); the exit code is 2.
    let risky = dir.path().join("risky.sql");
    write(&risky, "CREATE INDEX i ON orders (a);\n");
    let (code, report) = lint_json(&[bad.to_str().unwrap(), risky.to_str().unwrap()]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["syntax_errors"][0]["line"], 3, "{report:#}");
    assert_eq!(report["syntax_errors"][0]["column"], 3, "{report:#}");
    let rules: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"create-index-without-concurrently"), "{report:#}");
    let (code, stdout, _) = run(pgsafe().args(["lint", "--format", "github"]).arg(&bad).arg(&risky));
    assert_eq!(code, 2);
    assert!(
        stdout.contains(&format!("::error file={},line=3,col=3,title=pgsafe syntax error::", bad.display())),
        "{stdout}"
    );
    assert!(stdout.contains("create-index-without-concurrently"), "{stdout}");
    let (code, stdout, _) = run(pgsafe().args(["lint", "--format", "sarif"]).arg(&bad).arg(&risky));
    assert_eq!(code, 2);
    let sarif: Value = serde_json::from_str(&stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["ruleId"] == "syntax-error"), "{sarif:#}");
    assert!(results.iter().any(|r| r["ruleId"] == "create-index-without-concurrently"), "{sarif:#}");
    // A folder's `*.down.sql` is skipped.
    write(&dir.path().join("m/0001_a.sql"), "SELECT 1;\n");
    write(&dir.path().join("m/0001_a.down.sql"), "DROP TABLE orders;\n");
    let (code, report) = lint_json(&[dir.path().join("m").to_str().unwrap()]);
    assert_eq!((code, report["findings"].as_array().unwrap().len()), (0, 0), "{report:#}");
}

#[test]
fn with_a_database_the_same_index_is_an_error_on_a_million_rows_and_a_hint_on_ten() {
    let db = TestDb::new("lint_facts");
    db.psql(
        "CREATE TABLE big (id bigint, user_id bigint);
         INSERT INTO big SELECT g, g % 1000 FROM generate_series(1, 1000000) g;
         CREATE TABLE small (id bigint, user_id bigint);
         INSERT INTO small SELECT g, g FROM generate_series(1, 10) g;
         ANALYZE big; ANALYZE small;",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, table: &str| {
        let path = dir.path().join(name);
        write(
            &path,
            &format!("SET lock_timeout = '2s';\nCREATE INDEX IF NOT EXISTS {table}_user_idx ON {table} (user_id);\n"),
        );
        path.to_str().unwrap().to_owned()
    };
    let conn = db.conn_string();
    let (code, report) = lint_json(&["-d", &conn, &file("big.sql", "big")]);
    assert_eq!(code, 1, "{report:#}");
    let f = &report["findings"][0];
    assert_eq!((&f["rule"], &f["level"]), (&"create-index-without-concurrently".into(), &"error".into()), "{report:#}");
    assert!(f["message"].as_str().unwrap().contains("`big` has about 1000000 rows ("), "{f}");

    let (code, report) = lint_json(&["-d", &conn, &file("small.sql", "small")]);
    assert_eq!(code, 0, "{report:#}");
    let f = &report["findings"][0];
    assert_eq!((&f["rule"], &f["level"]), (&"create-index-without-concurrently".into(), &"hint".into()), "{report:#}");

    // A table the file creates is no finding, and a table the database lacks is named.
    let created = dir.path().join("created.sql");
    write(
        &created,
        "SET lock_timeout = '2s';\nCREATE TABLE IF NOT EXISTS fresh (id bigint);\nCREATE INDEX IF NOT EXISTS fresh_id ON fresh (id);\nALTER TABLE missing ADD COLUMN IF NOT EXISTS a int;\n",
    );
    let (code, report) = lint_json(&["-d", &conn, created.to_str().unwrap()]);
    assert_eq!(code, 0, "{report:#}");
    let rules: Vec<(u64, &str)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["line"].as_u64().unwrap(), f["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(rules, [(4, "object-not-found")], "{report:#}");
}

#[test]
fn diff_prints_the_fix_and_writes_nothing_and_fix_rewrites_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("0003_orders.sql");
    let text = "-- orders by user\n\nBEGIN;\nALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);\n\
                -- lookups\nCREATE INDEX IF NOT EXISTS orders_user_idx ON orders (user_id);\nCOMMIT;\n";
    write(&file, text);
    let path = file.to_str().unwrap();
    let (code, stdout, stderr) = run(pgsafe().args(["lint", "--diff", path]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!(
            "--- {path}\n+++ {path}\n@@ -1,7 +1,10 @@\n -- orders by user\n \n+SET lock_timeout = '2s';\n+\n BEGIN;\n\
             -ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);\n\
             --- lookups\n-CREATE INDEX IF NOT EXISTS orders_user_idx ON orders (user_id);\n\
             +ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\n\
             \x20COMMIT;\n+ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;\n+-- lookups\n\
             +CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_idx ON orders (user_id);\n"
        )
    );
    assert!(stderr.contains(&format!("{path}:6: fixed[create-index-without-concurrently]: ")), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text, "--diff wrote the file");
    // The diff applies as `patch` reads it.
    let patch = dir.path().join("fix.patch");
    std::fs::write(&patch, &stdout).unwrap();
    let copy = dir.path().join("copy.sql");
    std::fs::write(&copy, text).unwrap();
    let status = std::process::Command::new("patch").arg("-s").arg(&copy).arg(&patch).status().unwrap();
    assert!(status.success());

    // Before the fix the file fails; after it, lint of the fixed text passes and a second fix is a no-op.
    let (code, ..) = run(pgsafe().args(["lint", path]));
    assert_eq!(code, 1);
    let (code, stdout, stderr) = run(pgsafe().args(["lint", "--fix", "--format", "json", path]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let fixed = std::fs::read_to_string(&file).unwrap();
    assert_eq!(fixed, std::fs::read_to_string(&copy).unwrap());
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["findings"].as_array().unwrap().iter().all(|f| f["level"] == "hint"), "{report:#}");
    let (code, stdout, _) = run(pgsafe().args(["lint", "--diff", path]));
    assert_eq!((code, stdout.as_str()), (0, ""));

    // What cannot be fixed keeps the exit code; standard input is never rewritten.
    write(&file, "SET lock_timeout = '2s';\nTRUNCATE orders;\nDROP INDEX a, b;\n");
    let (code, _, stderr) = run(pgsafe().args(["lint", "--fix", path]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not fixed[drop-index-without-concurrently]: `DROP INDEX CONCURRENTLY` drops one index"),
        "{stderr}"
    );
    let (code, _, stderr) = run(pgsafe().args(["lint", "--fix", "-"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("`--fix` cannot rewrite standard input"), "{stderr}");
}

#[test]
fn with_a_database_an_enum_value_that_exists_is_named_and_a_small_tables_index_drop_is_a_hint() {
    let db = TestDb::new("lint_enum");
    db.psql(
        "CREATE TYPE mood AS ENUM ('sad', 'ok');
         CREATE TABLE small (id bigint, m mood);
         CREATE INDEX small_id_idx ON small (id);
         INSERT INTO small SELECT g, 'ok' FROM generate_series(1, 10) g;
         ANALYZE small;",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.sql");
    write(
        &file,
        "SET lock_timeout = '2s';\nALTER TYPE mood ADD VALUE 'ok';\nALTER TYPE mood ADD VALUE IF NOT EXISTS 'sad';\n\
         ALTER TYPE mood ADD VALUE 'happy';\nDROP INDEX IF EXISTS small_id_idx;\n",
    );
    let conn = db.conn_string();
    let (code, report) = lint_json(&["-d", &conn, "--fail-on", "warning", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{report:#}");
    let rules: Vec<(u64, &str, &str)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["line"].as_u64().unwrap(), f["rule"].as_str().unwrap(), f["level"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rules,
        [(2, "enum-value-exists", "warning"), (5, "drop-index-without-concurrently", "hint")],
        "{report:#}"
    );
    // Without the database neither is known.
    let (_, report) = lint_json(&[file.to_str().unwrap()]);
    let f = &report["findings"][0];
    assert_eq!((&f["rule"], &f["level"]), (&"drop-index-without-concurrently".into(), &"warning".into()), "{report:#}");
}

#[test]
fn with_a_database_a_type_change_of_a_key_column_names_the_tables_at_the_keys_other_ends() {
    let db = TestDb::new("lint_fk");
    db.psql(
        "CREATE SCHEMA shop;
         CREATE TABLE users (id int PRIMARY KEY, name text);
         CREATE TABLE shop.orders (id bigint PRIMARY KEY, user_id int REFERENCES users);
         CREATE TABLE events (at date, user_id int REFERENCES users) PARTITION BY RANGE (at);
         CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         CREATE TABLE nodes (id int PRIMARY KEY, parent int REFERENCES nodes);",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.sql");
    write(
        &file,
        "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN id TYPE bigint;\n\
         ALTER TABLE shop.orders ALTER COLUMN user_id TYPE bigint;\nALTER TABLE users ALTER COLUMN name TYPE int USING 0;\n\
         ALTER TABLE nodes ALTER COLUMN parent TYPE bigint;\n",
    );
    let (code, report) = lint_json(&["-d", &db.conn_string(), file.to_str().unwrap()]);
    assert_eq!(code, 1, "{report:#}");
    let message = |line: u64| {
        let f = report["findings"].as_array().unwrap().iter().find(|f| f["line"] == line).expect("a finding");
        f["message"].as_str().unwrap().to_owned()
    };
    // Both tables referencing `users`, each once (the partition's copy of the key is left out).
    assert!(
        message(2).contains("lock on `events`, `shop.orders`, to rebuild the foreign keys")
            || message(2).contains("lock on `shop.orders`, `events`, to rebuild the foreign keys"),
        "{}",
        message(2)
    );
    assert!(message(3).contains("lock on `users`, to rebuild the foreign key between them"), "{}", message(3));
    assert!(!message(4).contains("ACCESS EXCLUSIVE lock on"), "{}", message(4));
    // A key to its own table locks nothing more.
    assert!(!message(5).contains("ACCESS EXCLUSIVE lock on"), "{}", message(5));
}

/// Two findings held against what the server does: a column of a domain with a constraint rewrites its
/// table (a new storage file) and one of a domain without does not; a value added to an enum type is
/// refused in the transaction that added it (SQLSTATE 55P04).
#[tokio::test]
async fn with_a_database_the_domain_columns_that_rewrite_and_enum_values_used_too_soon_are_named_as_the_server_behaves()
{
    let db = TestDb::new("lint_domain");
    db.psql(
        "CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
         CREATE DOMAIN strictly AS positive;
         CREATE DOMAIN label AS text;
         CREATE TYPE mood AS ENUM ('sad', 'ok');
         CREATE TABLE people (id bigint, feeling mood);
         INSERT INTO people SELECT g, 'ok' FROM generate_series(1, 100) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.sql");
    let rewrites = "ALTER TABLE people ADD COLUMN IF NOT EXISTS a strictly DEFAULT 1;";
    let free = "ALTER TABLE people ADD COLUMN IF NOT EXISTS b label DEFAULT 'x';";
    let enum_use = "BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nUPDATE people SET feeling = 'meh' WHERE id = 1;\nCOMMIT;";
    write(&file, &format!("SET lock_timeout = '2s';\n{rewrites}\n{free}\n{enum_use}\n"));
    let (_, report) = lint_json(&["-d", &db.conn_string(), file.to_str().unwrap()]);
    let found = found(&report);
    assert!(has(&found, dir_file(&dir, "m.sql").as_str(), 2, "add-column-constrained-domain"), "{report:#}");
    assert!(has(&found, dir_file(&dir, "m.sql").as_str(), 6, "enum-value-used-in-transaction"), "{report:#}");
    assert!(!found.iter().any(|(_, line, _)| *line == 3), "{report:#}");
    // Without the database, the domains are not known, the enum value's use still is.
    let (_, report) = lint_json(&[file.to_str().unwrap()]);
    let offline = self::found(&report);
    assert!(!offline.iter().any(|(_, _, rule)| rule == "add-column-constrained-domain"), "{report:#}");
    assert!(offline.iter().any(|(_, line, rule)| *line == 6 && rule == "enum-value-used-in-transaction"), "{report:#}");

    // What the server does.
    let client = db.connect().await;
    let node = "SELECT pg_relation_filenode('people')::oid";
    let before: u32 = client.query_one(node, &[]).await.unwrap().get(0);
    client.batch_execute(free).await.unwrap();
    let after_free: u32 = client.query_one(node, &[]).await.unwrap().get(0);
    assert_eq!(after_free, before, "a domain without constraints rewrote the table");
    client.batch_execute(rewrites).await.unwrap();
    let after: u32 = client.query_one(node, &[]).await.unwrap().get(0);
    assert_ne!(after, before, "a domain with a constraint did not rewrite the table");
    let e = client.batch_execute(enum_use).await.expect_err("the new value was used in its transaction");
    assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::UNSAFE_NEW_ENUM_VALUE_USAGE), "{e}");
}

/// `DIR/NAME` as `found` shortens a file's path.
fn dir_file(dir: &tempfile::TempDir, name: &str) -> String {
    format!("{}/{name}", dir.path().file_name().unwrap().to_str().unwrap())
}

/// With a database, a column an earlier file of the run adds and a later file drops is the run's own
/// when the database lacks it (that file has not run), and holds data when the database has it (the
/// earlier file ran: a history linted whole).
#[test]
fn with_a_database_a_column_an_earlier_file_added_is_the_runs_own_only_while_the_database_lacks_it() {
    let db = TestDb::new("lint_added");
    db.psql(
        "CREATE TABLE pending (id bigint PRIMARY KEY); CREATE TABLE applied (id bigint PRIMARY KEY, sc text);
         INSERT INTO applied VALUES (1, 'x');",
    );
    let dir = tempfile::tempdir().unwrap();
    for table in ["pending", "applied"] {
        let folder = dir.path().join(table);
        write(
            &folder.join("0001_add.sql"),
            &format!("SET lock_timeout = '2s';\nALTER TABLE {table} ADD COLUMN IF NOT EXISTS sc text;\n"),
        );
        write(
            &folder.join("0002_drop.sql"),
            &format!("SET lock_timeout = '2s';\nALTER TABLE {table} DROP COLUMN IF EXISTS sc;\n"),
        );
        let (_, report) = lint_json(&["-d", &db.conn_string(), folder.to_str().unwrap()]);
        let dropped =
            found(&report).iter().any(|(file, _, rule)| file.ends_with("0002_drop.sql") && rule == "drop-column");
        assert_eq!(dropped, table == "applied", "{table}: {report:#}");
    }
}

/// With a database, its validated `CHECK (col IS NOT NULL)` spares `SET NOT NULL` the scan only until
/// the migration drops it by name, or replaces it with one `NOT VALID` (PostgreSQL scans then).
#[test]
fn with_a_database_a_not_null_check_the_migration_drops_proves_nothing() {
    let db = TestDb::new("lint_nn_check");
    db.psql(
        "CREATE TABLE orders (id bigint, user_id bigint, x int);
         INSERT INTO orders SELECT g, g, g FROM generate_series(1, 100) g;
         ALTER TABLE orders ADD CONSTRAINT orders_uid_nn CHECK (user_id IS NOT NULL);
         ALTER TABLE orders ADD CONSTRAINT orders_x_pos CHECK (x > 0);
         ANALYZE orders;",
    );
    let dir = tempfile::tempdir().unwrap();
    let set = "ALTER TABLE orders ALTER COLUMN user_id SET NOT NULL;\n";
    let cases = [
        ("kept.sql", "ALTER TABLE orders DROP CONSTRAINT orders_x_pos;\n", false),
        ("dropped.sql", "ALTER TABLE orders DROP CONSTRAINT orders_uid_nn;\n", true),
        (
            "replaced.sql",
            "ALTER TABLE orders DROP CONSTRAINT orders_uid_nn,\n  \
             ADD CONSTRAINT orders_uid_nn CHECK (user_id IS NOT NULL) NOT VALID;\n",
            true,
        ),
    ];
    for (name, before, scans) in cases {
        let path = dir.path().join(name);
        write(&path, &format!("SET lock_timeout = '2s';\n{before}{set}"));
        let (_, report) = lint_json(&["-d", &db.conn_string(), path.to_str().unwrap()]);
        let found = found(&report);
        assert_eq!(found.iter().any(|(_, _, rule)| rule == "set-not-null"), scans, "{name}: {report:#}");
    }
}

/// Found on Matrix Synapse's delta 81/01: with a database, `DROP INDEX event_relations_id;` then
/// `CREATE UNIQUE INDEX event_relations_id ...` was `index-already-exists`, though the statement
/// succeeds. The database's indexes are checked as the run's earlier statements and files leave them;
/// and a `DROP INDEX` wants a `lock_timeout` for its table, which the database names.
#[test]
fn with_a_database_an_index_the_run_drops_or_renames_away_can_be_made_again() {
    let db = TestDb::new("lint_index_again");
    db.psql(
        "CREATE TABLE event_relations (event_id text, relates_to_id text, relation_type text);
         CREATE UNIQUE INDEX event_relations_id ON event_relations (event_id, relates_to_id);
         CREATE SCHEMA app; CREATE TABLE app.t (a int); CREATE INDEX ti ON app.t (a);
         ANALYZE event_relations; ANALYZE app.t;",
    );
    let dir = tempfile::tempdir().unwrap();
    let create = "CREATE UNIQUE INDEX event_relations_id ON event_relations USING btree (event_id, relates_to_id, relation_type);\n";
    let timeout = "SET lock_timeout = '2s';\n";
    let synapse = format!("DROP INDEX event_relations_id;\n{create}");
    let cases: &[(&str, &[&str], &[u64])] = &[
        ("synapse", &[&synapse], &[]),
        ("earlier_file", &["DROP INDEX IF EXISTS public.event_relations_id;\n", "", create], &[]),
        ("renamed", &["ALTER INDEX app.ti RENAME TO ti_old;\nCREATE INDEX ti ON app.t (a);\n"], &[]),
        ("kept", &[create], &[2]),
        // Renamed, it exists under its new name: the facts were read for the name `ALTER INDEX` gives.
        ("renamed_onto", &["ALTER INDEX app.ti RENAME TO ti2;\nCREATE INDEX ti2 ON app.t (a);\n"], &[3]),
    ];
    for (name, files, lines) in cases {
        let folder = dir.path().join(name);
        for (i, sql) in files.iter().enumerate() {
            write(&folder.join(format!("000{i}.sql")), &format!("{timeout}{sql}"));
        }
        let (_, report) = lint_json(&["-d", &db.conn_string(), folder.to_str().unwrap()]);
        assert_eq!(lines_of(&report, "index-already-exists"), *lines, "{name}: {report:#}");
    }
    let file = dir.path().join("drop.sql");
    write(&file, "DROP INDEX IF EXISTS event_relations_id;\n");
    let (_, report) = lint_json(&["-d", &db.conn_string(), file.to_str().unwrap()]);
    let timeout = report["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "missing-lock-timeout");
    let message = timeout.and_then(|f| f["message"].as_str()).unwrap_or_else(|| panic!("{report:#}"));
    assert!(message.contains("an ACCESS EXCLUSIVE lock on `event_relations`"), "{message}");
}

/// With a database: an index that went with its schema (`DROP SCHEMA ... CASCADE`) or with its table's
/// owner (`DROP OWNED BY`) can be made again; `CREATE OR REPLACE VIEW` of a view it has, `REINDEX INDEX`
/// and the drop of a foreign key want a `lock_timeout` for the tables they lock, named by the catalog.
#[test]
fn with_a_database_schema_and_owner_drops_views_reindex_and_foreign_keys_name_what_they_lock() {
    let db = TestDb::new("lint_gone");
    db.psql(
        "DROP ROLE IF EXISTS lint_gone_owner; CREATE ROLE lint_gone_owner;
         CREATE SCHEMA app; CREATE TABLE app.t (a int); CREATE INDEX t_a_idx ON app.t (a);
         CREATE TABLE public.owned (a int); CREATE INDEX owned_a_idx ON public.owned (a);
         ALTER TABLE public.owned OWNER TO lint_gone_owner;
         CREATE TABLE users (id bigint PRIMARY KEY);
         CREATE TABLE orders (id bigint, user_id bigint CONSTRAINT orders_user_fk REFERENCES users, a int);
         CREATE INDEX orders_a_idx ON orders (a);
         CREATE VIEW v AS SELECT id FROM orders;",
    );
    let dir = tempfile::tempdir().unwrap();
    let owned = "CREATE INDEX owned_a_idx ON public.owned (a);\n";
    let index_again: &[(&str, &str, &str, &[u64])] = &[
        (
            "schema",
            "DROP SCHEMA app CASCADE;\nCREATE SCHEMA app;\nCREATE TABLE app.t (a int);\n",
            "CREATE INDEX t_a_idx ON app.t (a);\n",
            &[],
        ),
        ("schema_kept", "SELECT 1;\n", "CREATE INDEX t_a_idx ON app.t (a);\n", &[2]),
        ("owned", "DROP OWNED BY lint_gone_owner;\nCREATE TABLE public.owned (a int);\n", owned, &[]),
        // The test's own role does not own `owned`.
        ("other_owner", "DROP OWNED BY CURRENT_USER;\n", owned, &[2]),
    ];
    for (name, first, again, lines) in index_again {
        let folder = dir.path().join(name);
        write(&folder.join("0001.sql"), &format!("SET lock_timeout = '2s';\n{first}"));
        write(&folder.join("0002.sql"), &format!("SET lock_timeout = '2s';\n{again}"));
        let (_, report) = lint_json(&["-d", &db.conn_string(), folder.to_str().unwrap()]);
        assert_eq!(lines_of(&report, "index-already-exists"), *lines, "{name}: {report:#}");
    }
    let locks = [
        ("view.sql", "CREATE OR REPLACE VIEW v AS SELECT id FROM orders;\n", "an ACCESS EXCLUSIVE lock on `v` "),
        ("reindex.sql", "REINDEX INDEX orders_a_idx;\n", "a SHARE lock on `orders` "),
        (
            "fk.sql",
            "ALTER TABLE orders DROP CONSTRAINT orders_user_fk;\n",
            "an ACCESS EXCLUSIVE lock on `orders` and `users` ",
        ),
    ];
    for (name, sql, lock) in locks {
        let file = dir.path().join(name);
        write(&file, sql);
        let (_, report) = lint_json(&["-d", &db.conn_string(), file.to_str().unwrap()]);
        let timeout = report["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "missing-lock-timeout");
        let message = timeout.and_then(|f| f["message"].as_str()).unwrap_or_else(|| panic!("{name}: {report:#}"));
        assert!(message.contains(lock), "{name}: {message}");
    }
    // A view the database lacks is made, not replaced: nobody waits for it.
    let file = dir.path().join("new_view.sql");
    write(&file, "CREATE OR REPLACE VIEW w AS SELECT 1 AS one;\n");
    let (_, report) = lint_json(&["-d", &db.conn_string(), file.to_str().unwrap()]);
    assert!(found(&report).is_empty(), "{report:#}");
}

#[test]
fn with_a_database_a_delete_names_the_unindexed_keys_its_rows_and_cascades_are_checked_against() {
    // Before the rule a `DELETE` from a table that 22 tables reference through unindexed keys, most of
    // them by cascade, was no finding (Lemmy's `remove_admin`, which took 5 to 8 minutes).
    let db = TestDb::new("lint_cascade");
    db.psql(
        "CREATE TABLE person (id int PRIMARY KEY);
         CREATE TABLE post (id int PRIMARY KEY, creator_id int REFERENCES person ON DELETE CASCADE);
         CREATE TABLE comment (id int PRIMARY KEY, post_id int REFERENCES post ON DELETE CASCADE,
                               creator_id int REFERENCES person ON DELETE CASCADE);
         CREATE INDEX comment_post ON comment (post_id);
         CREATE TABLE vote (comment_id int REFERENCES comment ON DELETE CASCADE, n int);
         CREATE TABLE mod_log (id int PRIMARY KEY, mod_id int REFERENCES person);
         CREATE TABLE tiny (person_id int REFERENCES person);
         INSERT INTO person SELECT generate_series(1, 100);
         INSERT INTO post SELECT g, g % 100 + 1 FROM generate_series(1, 2000) g;
         INSERT INTO comment SELECT g, g % 2000 + 1, g % 100 + 1 FROM generate_series(1, 5000) g;
         INSERT INTO vote SELECT g % 5000 + 1, g FROM generate_series(1, 5000) g;
         INSERT INTO mod_log SELECT g, g % 100 + 1 FROM generate_series(1, 3000) g;
         INSERT INTO tiny SELECT g FROM generate_series(1, 5) g;
         ANALYZE;",
    );
    let dir = tempfile::tempdir().unwrap();
    let conn = db.conn_string();
    let path = dir.path().join("remove_admin.sql");
    write(&path, "DELETE FROM person WHERE id > 90;\nDELETE FROM post WHERE id = 1;\n");
    let (code, report) = lint_json(&["-d", &conn, "--small-table-rows", "1000", path.to_str().unwrap()]);
    assert_eq!(code, 0, "warnings only: {report:#}");
    let hits: Vec<&Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["rule"] == "delete-unindexed-foreign-key").collect();
    assert_eq!(hits.len(), 2, "{report:#}");
    let person = hits[0]["message"].as_str().unwrap();
    // Six keys are checked (post's, comment's two, vote's through comment, mod_log's, tiny's): comment's
    // `post_id` has its index and `tiny` is small; the cascade reaches post, comment and vote.
    assert!(
        person.contains("from `person` is checked against 6 foreign keys, cascading to 3 other tables"),
        "{person}"
    );
    for scanned in ["`post` (creator_id;", "`comment` (creator_id;", "`vote` (comment_id;", "`mod_log` (mod_id;"] {
        assert!(person.contains(scanned), "{scanned} in {person}");
    }
    assert!(!person.contains("tiny") && !person.contains("(post_id"), "{person}");
    let post = hits[1]["message"].as_str().unwrap();
    assert!(post.contains("from `post` is checked against 2 foreign keys, cascading to 2 other tables"), "{post}");
    assert!(post.contains("these 1") || post.contains("this one"), "{post}");

    // An index the run makes first on the key's columns serves the checks.
    let indexed = dir.path().join("indexed.sql");
    write(&indexed, "CREATE INDEX CONCURRENTLY vote_comment ON vote (comment_id);\nDELETE FROM post WHERE id = 1;\n");
    let (_, report) = lint_json(&["-d", &conn, "--small-table-rows", "1000", indexed.to_str().unwrap()]);
    assert_eq!(lines_of(&report, "delete-unindexed-foreign-key"), Vec::<u64>::new(), "{report:#}");
}

/// A Flyway migration is linted with its placeholders filled, as `migrate` fills them (its findings at
/// the file's own lines); one without a value stops the lint naming it, and `--fix` leaves such a file
/// alone rather than write the values into it.
#[test]
fn a_flyway_files_placeholders_are_filled_before_it_is_linted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("V3__index.sql");
    write(&file, "-- ${flyway:filename} for ${flyway:user}\nCREATE INDEX i ON ${schema}.orders (${column});\n");
    let path = file.to_str().unwrap();
    let (code, stdout, stderr) = run(pgsafe().args(["lint", path]));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("V3__index.sql` line 2: the Flyway placeholder `${schema}` has no value"), "{stderr}");
    let (code, report) = lint_json(&["--placeholder", "schema=app", "--placeholder", "COLUMN=placed_at", path]);
    assert_eq!(code, 1, "{report:#}");
    let short = format!("{}/V3__index.sql", dir.path().file_name().unwrap().to_str().unwrap());
    assert!(found(&report).contains(&(short, 2, "create-index-without-concurrently".to_owned())), "{report:#}");
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "create-index-without-concurrently")
        .unwrap();
    assert!(finding["message"].as_str().unwrap().contains("app.orders"), "{finding:#}");
    let (code, stdout, stderr) =
        run(pgsafe().args(["lint", "--fix", "--placeholder", "schema=app", "--placeholder", "column=x", path]));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("holds Flyway placeholders: `--fix` would write their values into it"), "{stderr}");
    assert!(std::fs::read_to_string(&file).unwrap().contains("${schema}.orders"));
}
