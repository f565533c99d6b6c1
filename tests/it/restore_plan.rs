//! The restore plan: `--dry-run` prints it and touches nothing, and `--list`, `-f` and the run follow the
//! same plan, item for item; a load that disagrees with the plan stops the restore.

use pgsafe::archive::ArchiveReader;
use pgsafe::format::{Compression, CopyFormat, PartId, PartInfo, SchemaDocument, sample};

use crate::dump_restore::{dump, pgsafe, run, run_ok};
use crate::support::TestDb;

const SOURCE: &str = "
CREATE TABLE customer (id int PRIMARY KEY, name text);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customer, note text);
CREATE INDEX orders_note ON orders (note);
CREATE MATERIALIZED VIEW order_count AS SELECT count(*) FROM orders;
GRANT SELECT ON orders TO PUBLIC;
INSERT INTO customer SELECT i, 'c' || i FROM generate_series(1, 50) i;
INSERT INTO orders (customer_id, note) SELECT 1 + i % 50, 'n' || i FROM generate_series(1, 500) i;
REFRESH MATERIALIZED VIEW order_count;
";

#[test]
fn dry_run_prints_the_plan_that_list_script_and_the_run_follow() {
    let src = TestDb::new("plan_src");
    src.psql(SOURCE);
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);
    let dst = TestDb::new("plan_dst");

    let text = run_ok(pgsafe().args(["restore", "--dry-run", "-j", "3", "-d", &dst.conn_string()]).arg(&archive));
    for step in [
        "refuse the target if it holds any user object",
        "pre-data: ",
        "data: 2 parts of 2 tables",
        "on 3 sessions",
        "post-data: ",
        "sequence values: 1",
        "privileges of 1 object",
        "verification (row counts and content digests): 2 tables, 1 sequence",
        "nothing was done",
    ] {
        assert!(text.contains(step), "`{step}` missing from the plan:\n{text}");
    }
    assert_eq!(dst.psql("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"), "0\n");
    let counting =
        run_ok(pgsafe().args(["restore", "--dry-run", "--verify", "count", "-d", &dst.conn_string()]).arg(&archive));
    assert!(
        counting.contains("verification (row counts): 2 tables (counted as they load)"),
        "the tables a whole restore makes are counted as they load:\n{counting}"
    );
    let counting = run_ok(
        pgsafe()
            .args(["restore", "--dry-run", "--data-only", "--verify", "count", "-d", &dst.conn_string()])
            .arg(&archive),
    );
    assert!(counting.contains("verification (row counts): 2 tables (read back)"), "{counting}");

    let json: serde_json::Value = serde_json::from_str(&run_ok(
        pgsafe().args(["restore", "--dry-run", "--json", "-d", &dst.conn_string()]).arg(&archive),
    ))
    .unwrap();
    let ids =
        |key: &str| -> Vec<String> { json[key].as_array().unwrap().iter().map(|o| o["id"].to_string()).collect() };
    // The labels of the steps that run statements of their own.
    let labels = |key: &str| -> Vec<String> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| !o["sql"].as_str().unwrap().is_empty())
            .map(|o| o["label"].as_str().unwrap().to_string())
            .collect()
    };
    // `--list` is the plan's items in the plan's order.
    let mut expected: Vec<String> = ids("pre_data");
    expected.extend(json["data"].as_array().unwrap().iter().map(|p| format!("part {}", p["part"])));
    expected.extend(ids("post_data"));
    expected.extend(json["sequences"].as_array().unwrap().iter().map(|_| "sequence value".to_string()));
    expected.extend(ids("after_privileges"));
    let listed = run_ok(pgsafe().args(["restore", "--list"]).arg(&archive));
    let heads: Vec<String> =
        listed.lines().filter(|l| !l.starts_with(';')).map(|l| l.split(';').next().unwrap().to_string()).collect();
    assert_eq!(heads, expected, "{listed}");

    // `-f` writes the plan's statements in the plan's order.
    let script = run_ok(pgsafe().args(["restore", "-f", "-"]).arg(&archive));
    let mut at = 0;
    for label in labels("pre_data").iter().chain(&labels("post_data")).chain(&labels("after_privileges")) {
        let found = script[at..].find(&format!("-- {label}\n"));
        at += found.unwrap_or_else(|| panic!("`{label}` is not where the plan puts it:\n{script}"));
    }
    assert!(script.contains("REFRESH MATERIALIZED VIEW public.order_count"), "{script}");
    assert!(script.find("-- post-data").unwrap() < script.find("REFRESH MATERIALIZED VIEW").unwrap(), "{script}");

    // The run makes what the plan says.
    let (code, stdout, stderr) =
        run(pgsafe().args(["restore", "-q", "--json", "-d", &dst.conn_string()]).arg(&archive));
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["rows"], 550);
    for step in json["pre_data"].as_array().unwrap().iter().chain(json["post_data"].as_array().unwrap()) {
        let (kind, label) = (step["kind"].as_str().unwrap(), step["label"].as_str().unwrap());
        if let Some(name) =
            label.strip_prefix("TABLE ").or(label.strip_prefix("INDEX ")).filter(|_| ["TABLE", "INDEX"].contains(&kind))
        {
            assert_eq!(dst.psql(&format!("SELECT to_regclass('{name}') IS NOT NULL")), "t\n", "{label}");
        }
    }
    assert_eq!(dst.psql("SELECT count FROM order_count"), "500\n");

    // Again over it with `--clean`: the foreign key between the archive's tables goes first. (Before the fix:
    // `cannot drop table public.customer because other objects depend on it`.)
    let (code, _, stderr) = run(pgsafe().args(["restore", "-q", "--clean", "-d", &dst.conn_string()]).arg(&archive));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(dst.psql("SELECT count(*) FROM orders"), "500\n");

    // `-f` writes all the run does: the drops of `--clean`, the role, the one transaction, sequence values.
    let script = run_ok(
        pgsafe().args(["restore", "-f", "-", "--clean", "--single-transaction", "--role", "postgres"]).arg(&archive),
    );
    for line in [
        "SET ROLE postgres;",
        "BEGIN;",
        "ALTER TABLE IF EXISTS public.orders DROP CONSTRAINT IF EXISTS orders_customer_id_fkey;",
        "DROP TABLE IF EXISTS public.customer;",
        "SELECT pg_catalog.setval('public.orders_id_seq', 500, true);",
        "COMMIT;",
    ] {
        assert!(script.contains(line), "`{line}` missing from the script:\n{script}");
    }
    assert!(script.find("DROP CONSTRAINT").unwrap() < script.find("DROP TABLE IF EXISTS public.customer").unwrap());
}

/// An archive of `public.t (id int)` whose manifest claims three rows where its stream holds two: every
/// checksum matches, as a buggy or malicious writer could make it. Data-only, or with `schema`.
fn lying_archive(path: &std::path::Path, schema: Option<SchemaDocument>) {
    let part = PartInfo {
        estimated_rows: 3,
        estimated_bytes: 4,
        ..sample::part(PartId(0), "t", CopyFormat::Text, &[("id", "integer")])
    };
    let catalog = pgsafe::format::Catalog { schema, ..sample::catalog(vec![part]) };
    let (mut chunks, mut summary) = sample::encode_part(PartId(0), CopyFormat::Text, [b"1\n2\n"], Compression::None);
    // The lie: the stream holds two rows.
    chunks[0].rows = 3;
    summary.rows = 3;
    sample::write_file(path, &catalog, Compression::None, &[(chunks, summary)]);
}

#[test]
fn a_load_that_disagrees_with_the_archive_stops_the_restore_with_exit_2() {
    // Before the fix this was exit 1, "a check failed cleanly", though the restore had stopped half way.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("lying.pgsafe");
    lying_archive(&archive, None);
    let dst = TestDb::new("plan_lying");
    dst.psql("CREATE TABLE t (id int);");
    let (code, _, stderr) =
        run(pgsafe().args(["restore", "--data-only", "-q", "-d", &dst.conn_string()]).arg(&archive));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("part 0 (`public.t`): COPY loaded 2 rows, the archive holds 3; the restore stopped"),
        "{stderr}"
    );
}

#[test]
fn a_whole_restore_that_counts_rows_as_they_load_stops_at_a_load_that_disagrees_with_the_archive() {
    // `--verify count` reads back no table a whole restore made: the count of each `COPY` is the proof,
    // and a disagreeing one must stop the restore, not pass unseen.
    let src = TestDb::new("plan_lying_whole_src");
    src.psql("CREATE TABLE t (id int);");
    let dir = tempfile::tempdir().unwrap();
    let real = dump(&src, dir.path(), &[]);
    let schema = ArchiveReader::open(&real).unwrap().index().catalog().schema.clone();
    assert!(schema.is_some());
    let archive = dir.path().join("lying.pgsafe");
    lying_archive(&archive, schema);
    for (i, args) in [&["--verify", "count"][..], &["--verify", "count", "--single-transaction"]].iter().enumerate() {
        let dst = TestDb::new(&format!("plan_lying_whole{i}"));
        let (code, _, stderr) =
            run(pgsafe().args(["restore", "-q"]).args(*args).args(["-d", &dst.conn_string()]).arg(&archive));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("part 0 (`public.t`): COPY loaded 2 rows, the archive holds 3; the restore stopped"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_table_left_out_with_t_takes_its_serial_and_identity_sequences_values_with_it() {
    // Found by testing: `restore -T skipme` (and a restore of an archive dumped with `-T skipme`) left
    // out the table's sequence but still set its value: exit 2 after the rows, and the privileges, made
    // after the values, were never granted.
    let src = TestDb::new("seq_left_src");
    src.psql(
        "CREATE TABLE keep (id serial PRIMARY KEY, v text);
         CREATE TABLE skipme (id serial PRIMARY KEY, v text);
         CREATE TABLE skip_ident (id int GENERATED ALWAYS AS IDENTITY, v text);
         INSERT INTO keep (v) SELECT 'k' || g FROM generate_series(1, 7) g;
         INSERT INTO skipme (v) VALUES ('x'); INSERT INTO skip_ident (v) VALUES ('i');
         GRANT SELECT ON keep TO PUBLIC;",
    );
    let dir = tempfile::tempdir().unwrap();
    let whole = dump(&src, dir.path(), &[]);
    let without = dir.path().join("without.pgsafe");
    run_ok(
        pgsafe().args(["dump", "-q", "-T", "skipme", "-T", "skip_ident", "-d", &src.conn_string(), "-f"]).arg(&without),
    );
    for (hint, archive, extra) in
        [("seq_left_t", &whole, &["-T", "skipme", "-T", "skip_ident"][..]), ("seq_left_dumped", &without, &[][..])]
    {
        let dst = TestDb::new(hint);
        let (code, _, stderr) =
            run(pgsafe().args(["restore", "-q", "-d", &dst.conn_string()]).args(extra).arg(archive));
        assert_eq!(code, 0, "{hint}: {stderr}");
        assert_eq!(
            dst.psql("SELECT string_agg(relname, ' ' ORDER BY relname) FROM pg_class WHERE relkind IN ('r', 'S') AND relnamespace = 'public'::regnamespace"),
            "keep keep_id_seq\n",
            "{hint}"
        );
        assert_eq!(dst.psql("SELECT last_value, is_called FROM keep_id_seq"), "7|t\n", "{hint}");
        assert_eq!(dst.psql("SELECT has_table_privilege('public', 'keep', 'SELECT')"), "t\n", "{hint}");
    }
}

#[test]
fn a_partition_left_out_of_a_dump_leaves_its_partitioned_table_before_its_rows() {
    // Found on GitLab's partitioned tables: `dump -T builds_2` of a partitioned table with a foreign key
    // took the left-out partition for a part of its table, and so its key for a part of the table's: a
    // "dependency cycle", the tables planned after their rows, and the restore failed (exit 2).
    let src = TestDb::new("part_left_src");
    src.psql(
        "CREATE TABLE projects (id int PRIMARY KEY);
         CREATE TABLE builds (id int, project_id int REFERENCES projects (id), part int) PARTITION BY LIST (part);
         CREATE TABLE builds_1 PARTITION OF builds FOR VALUES IN (1);
         CREATE TABLE builds_2 PARTITION OF builds FOR VALUES IN (2);
         INSERT INTO projects VALUES (1); INSERT INTO builds VALUES (1, 1, 1), (2, 1, 2);",
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("without.pgsafe");
    run_ok(pgsafe().args(["dump", "-q", "-T", "builds_2", "-d", &src.conn_string(), "-f"]).arg(&archive));
    let list = run_ok(pgsafe().args(["restore", "-l"]).arg(&archive));
    assert!(!list.contains("cycle"), "{list}");
    let table = list.lines().position(|l| l.contains("TABLE public.builds_1")).unwrap();
    let rows = list.lines().position(|l| l.contains("data; public.builds_1")).unwrap();
    assert!(table < rows, "{list}");
    let dst = TestDb::new("part_left_dst");
    let (code, _, stderr) = run(pgsafe().args(["restore", "-q", "-d", &dst.conn_string()]).arg(&archive));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(dst.psql("SELECT string_agg(id::text, ' ') FROM builds"), "1\n");
}
