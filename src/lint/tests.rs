//! Every rule's examples, findings on the right lines, versions, the created-in-this-file exemption,
//! transactions, suppressions, facts and parse errors.

use super::*;

/// Lints an example as the registry writes them: `-- pg N` on the first line picks the version, and
/// `-- next file` splits it into files linted together.
fn lint_example(sql: &str, options: &LintOptions, facts: Option<&Facts>) -> LintReport {
    let mut options = options.clone();
    if let Some(version) = sql.strip_prefix("-- pg ").and_then(|r| r.lines().next()) {
        options.pg_version = version.trim().parse().expect("`-- pg N`");
    }
    let files: Vec<ParsedFile> = sql
        .split("-- next file\n")
        .enumerate()
        .map(|(i, text)| {
            parse(SourceFile { name: format!("{i}.sql"), text: text.to_owned() })
                .unwrap_or_else(|e| panic!("{e}: {text}"))
        })
        .collect();
    lint(&files, &options, facts)
}

/// The lines at which `rule` fired on `sql` (in its last file).
fn lines(rule: &str, sql: &str) -> Vec<usize> {
    lines_with(rule, sql, &LintOptions::default(), None)
}

fn lines_with(rule: &str, sql: &str, options: &LintOptions, facts: Option<&Facts>) -> Vec<usize> {
    let report = lint_example(sql, options, facts);
    report.findings.iter().filter(|f| f.rule == rule).map(|f| f.line).collect()
}

#[test]
fn every_rule_flags_its_bad_examples_and_not_its_good_ones() {
    let mut ids = std::collections::HashSet::new();
    for rule in RULES {
        assert!(ids.insert(rule.id), "`{}` is declared twice", rule.id);
        assert!(rule.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "`{}` is not kebab-case", rule.id);
        // Most facts need a database; those with examples show them on a schema the run creates.
        if rule.family == Family::Facts && rule.bad.is_empty() {
            continue;
        }
        assert!(!rule.bad.is_empty() && !rule.good.is_empty(), "`{}` needs a bad and a good example", rule.id);
        for bad in rule.bad {
            assert!(!lines(rule.id, bad).is_empty(), "`{}` does not flag its bad example:\n{bad}", rule.id);
        }
        for good in rule.good {
            assert_eq!(lines(rule.id, good), Vec::<usize>::new(), "`{}` flags its good example:\n{good}", rule.id);
        }
    }
}

#[test]
fn findings_are_on_the_line_of_their_statement_or_column() {
    let cases: &[(&str, &str, &[usize])] = &[
        ("create-index-without-concurrently", "SELECT 1;\n\nCREATE INDEX i ON orders (a);\n", &[3]),
        ("create-index-without-concurrently", "-- a comment\n  CREATE INDEX i\n  ON orders (a);", &[2]),
        ("drop-table", "DROP TABLE a;\nDROP TABLE IF EXISTS b;\n", &[1, 2]),
        ("prefer-timestamptz", "CREATE TABLE t (\n  id bigint,\n  at timestamp,\n  b timestamp\n);", &[3, 4]),
        (
            "add-column-volatile-default",
            "ALTER TABLE orders\n  ADD COLUMN a int,\n  ADD COLUMN b float8 DEFAULT random();",
            &[3],
        ),
        ("add-check-without-not-valid", "ALTER TABLE orders\n  ADD CONSTRAINT c CHECK (a > 0);", &[2]),
        ("delete-without-where", "DELETE FROM a WHERE id = 1;\nDELETE FROM a;", &[2]),
        ("update-without-where", "UPDATE a SET x = 1;\nUPDATE a SET x = 1 WHERE id = 2;", &[1]),
        ("rename-column", "ALTER TABLE a RENAME COLUMN x TO y;", &[1]),
        ("missing-lock-timeout", "SELECT 1;\nALTER TABLE a ADD COLUMN x int;\nALTER TABLE b ADD COLUMN x int;", &[2]),
        (
            "missing-lock-timeout",
            "SET lock_timeout = '1s';\nALTER TABLE a ADD COLUMN x int;\nRESET lock_timeout;\nDROP TABLE b;",
            &[4],
        ),
        (
            "missing-lock-timeout",
            "BEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE a ADD COLUMN x int;\nCOMMIT;\nTRUNCATE b;",
            &[5],
        ),
        ("missing-lock-timeout", "SET lock_timeout = 0;\nVACUUM a;\nVACUUM FULL a;", &[3]),
        ("cascade", "DROP TABLE a CASCADE;\nTRUNCATE b CASCADE;\nDROP TABLE c;", &[1, 2]),
        ("drop-column", "ALTER TABLE a DROP COLUMN IF EXISTS x;", &[1]),
        (
            "drop-attribute",
            "CREATE TYPE made AS (a int, b int);\nALTER TYPE made DROP ATTRIBUTE b;\nALTER TYPE address DROP ATTRIBUTE zip;",
            &[3],
        ),
        ("prefer-bigint-primary-key", "CREATE TABLE t (\n  a text,\n  id int PRIMARY KEY\n);", &[3]),
    ];
    for (rule, sql, expected) in cases {
        assert_eq!(lines(rule, sql), expected.to_vec(), "`{rule}` on:\n{sql}");
    }
}

#[test]
fn a_table_created_in_the_same_file_is_no_hazard() {
    let sql = "BEGIN;\nCREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a text);\n\
               CREATE INDEX t_a ON t (a);\nALTER TABLE t ADD COLUMN b uuid DEFAULT gen_random_uuid();\n\
               ALTER TABLE t ALTER COLUMN a SET NOT NULL;\nALTER TABLE t ADD CONSTRAINT c CHECK (a <> '');\n\
               ALTER TABLE t ALTER COLUMN a TYPE varchar(10);\nUPDATE t SET a = 'x';\nALTER TABLE t RENAME COLUMN a TO c;\n\
               DROP INDEX t_a;\nDROP TABLE t;\nCOMMIT;";
    let report = lint_text("m.sql", sql, &LintOptions::default()).unwrap();
    let hazards: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| {
            rule(f.rule).is_some_and(|r| matches!(r.family, Family::Locks | Family::DataLoss | Family::Transactions))
        })
        .collect();
    assert!(hazards.is_empty(), "{hazards:#?}");
    // The same statements on an existing table are hazards.
    let existing = sql.replace("CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a text);\n", "");
    let report = lint_text("m.sql", &existing, &LintOptions::default()).unwrap();
    let rules: HashSet<&str> = report.findings.iter().map(|f| f.rule).collect();
    for id in [
        "create-index-without-concurrently",
        "add-column-volatile-default",
        "set-not-null",
        "add-check-without-not-valid",
        "update-without-where",
        "rename-column",
        "drop-table",
        "missing-lock-timeout",
    ] {
        assert!(rules.contains(id), "no `{id}` in {rules:?}");
    }
}

#[test]
fn a_column_renamed_aside_and_added_again_under_its_name_breaks_no_code() {
    // cal.com's enum change: the old column moved aside, a new one of the name, the values copied.
    let sql = "ALTER TABLE \"Input\" RENAME COLUMN \"type\" TO \"type_old\";
ALTER TABLE \"Input\" ADD COLUMN \"type\" \"InputType\";
UPDATE \"Input\" SET \"type\" = CAST(\"type_old\" AS \"InputType\");";
    assert_eq!(lines("rename-column", sql), Vec::<usize>::new());
    // Added to another table, or under another name: the rename still breaks code.
    assert_eq!(lines("rename-column", "ALTER TABLE a RENAME COLUMN x TO y;\nALTER TABLE b ADD COLUMN x int;"), [1]);
    assert_eq!(lines("rename-column", "ALTER TABLE a RENAME COLUMN x TO y;\nALTER TABLE a ADD COLUMN z int;"), [1]);
}

#[test]
fn a_table_created_in_an_earlier_file_is_no_longer_new() {
    let sql = "CREATE TABLE t (id bigint);\n-- next file\nCREATE INDEX t_id ON t (id);";
    assert_eq!(lines("create-index-without-concurrently", sql), [1]);
}

#[test]
fn version_dependent_rules_follow_the_version() {
    let default = "ALTER TABLE orders ADD COLUMN status text DEFAULT 'new';";
    assert_eq!(lines("add-column-volatile-default", default), Vec::<usize>::new());
    let v10 = LintOptions { pg_version: 10, ..LintOptions::default() };
    assert_eq!(lines_with("add-column-volatile-default", default, &v10, None), [1]);
    let enum_in_tx = "BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nCOMMIT;";
    assert_eq!(lines("enum-add-value-in-transaction", enum_in_tx), Vec::<usize>::new());
    let v11 = LintOptions { pg_version: 11, ..LintOptions::default() };
    assert_eq!(lines_with("enum-add-value-in-transaction", enum_in_tx, &v11, None), [2]);
    // A validated check lets SET NOT NULL skip its scan from 12 on.
    let checked = "ALTER TABLE o ADD CONSTRAINT nn CHECK (s IS NOT NULL) NOT VALID;\n\
                   ALTER TABLE o VALIDATE CONSTRAINT nn;\nALTER TABLE o ALTER COLUMN s SET NOT NULL;";
    assert_eq!(lines("set-not-null", checked), Vec::<usize>::new());
    assert_eq!(lines_with("set-not-null", checked, &v11, None), [3]);
    // Not validated: still a scan.
    let unvalidated =
        "ALTER TABLE o ADD CONSTRAINT nn CHECK (s IS NOT NULL) NOT VALID;\nALTER TABLE o ALTER COLUMN s SET NOT NULL;";
    assert_eq!(lines("set-not-null", unvalidated), [2]);
}

#[test]
fn transactions_nest_only_once_and_must_be_closed() {
    assert_eq!(lines("transaction-nesting", "BEGIN;\nSTART TRANSACTION;\nCOMMIT;\nCOMMIT;"), [2, 4]);
    assert_eq!(lines("transaction-nesting", "BEGIN;\nCOMMIT;\nBEGIN;\nROLLBACK;"), Vec::<usize>::new());
    // `COMMIT AND CHAIN` opens the next transaction at once: the `COMMIT` after it ends that one.
    assert_eq!(
        lines("transaction-nesting", "BEGIN;\nSELECT 1;\nCOMMIT AND CHAIN;\nSELECT 2;\nCOMMIT;"),
        Vec::<usize>::new()
    );
    assert_eq!(lines("transaction-nesting", "COMMIT AND CHAIN;\nSELECT 2;\nCOMMIT;"), [1, 3]);
    assert_eq!(lines("transaction-left-open", "SELECT 1;\nBEGIN;\nSELECT 2;"), [2]);
    assert_eq!(lines("transaction-left-open", "BEGIN;\nSELECT 2;\nEND;"), Vec::<usize>::new());
    assert_eq!(
        lines(
            "concurrently-in-transaction",
            "BEGIN;\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON t (a);\nBEGIN;\nDROP INDEX CONCURRENTLY i;\nCOMMIT;"
        ),
        [5]
    );
}

#[test]
fn with_migrate_there_is_no_lock_timeout_finding() {
    let sql = "ALTER TABLE orders ADD COLUMN note text;";
    let migrate = LintOptions { assume_lock_timeout: true, ..LintOptions::default() };
    assert_eq!(lines("missing-lock-timeout", sql), [1]);
    assert_eq!(lines_with("missing-lock-timeout", sql, &migrate, None), Vec::<usize>::new());
}

#[test]
fn suppressions_allow_with_a_reason_and_are_findings_without_one_or_unused() {
    let sql = "-- pgsafe:allow missing-lock-timeout pgsafe migrate runs this file\n\
               CREATE TABLE x (id bigint);\n\
               -- pgsafe:allow truncate the table is a cache\n\
               TRUNCATE cache;\n\
               -- pgsafe:allow drop-table\n\
               DROP TABLE IF EXISTS old;\n\
               -- pgsafe:allow drop-column nothing here drops one\n\
               ALTER TABLE a ADD COLUMN IF NOT EXISTS b int;\n\
               -- pgsafe:allow no-such-rule because\n\
               SELECT 1;\n";
    let report = lint_text("m.sql", sql, &LintOptions::default()).unwrap();
    let allowed: Vec<(&str, usize, &str)> =
        report.allowed.iter().map(|a| (a.finding.rule, a.finding.line, a.reason.as_str())).collect();
    assert_eq!(
        allowed,
        [
            ("truncate", 4, "the table is a cache"),
            ("missing-lock-timeout", 4, "pgsafe migrate runs this file"),
            ("drop-table", 6, ""),
        ]
    );
    let findings: Vec<(&str, usize)> = report.findings.iter().map(|f| (f.rule, f.line)).collect();
    assert!(findings.contains(&("suppression-without-reason", 5)), "{findings:?}");
    assert!(findings.contains(&("unused-suppression", 7)), "{findings:?}");
    assert!(findings.contains(&("unused-suppression", 9)), "{findings:?}");
    assert!(
        !findings.iter().any(|(r, _)| ["truncate", "drop-table", "missing-lock-timeout"].contains(r)),
        "{findings:?}"
    );
    // Without a reason it still fails the run.
    assert!(report.fails(Some(Level::Error)));
    let clean = "-- pgsafe:allow truncate the table is a cache\nTRUNCATE cache;\n";
    let options = LintOptions { assume_lock_timeout: true, ..LintOptions::default() };
    assert!(!lint_text("m.sql", clean, &options).unwrap().fails(Some(Level::Warning)));
}

#[test]
fn drizzle_breakpoints_and_prisma_quoting_parse_and_lint() {
    let sql = "CREATE TABLE IF NOT EXISTS \"users\" (\n\t\"id\" serial PRIMARY KEY NOT NULL,\n\t\"email\" varchar(256)\n);\n\
               --> statement-breakpoint\n\
               ALTER TABLE \"orders\" ADD CONSTRAINT \"orders_user_id_users_id_fk\" FOREIGN KEY (\"user_id\") REFERENCES \"public\".\"users\"(\"id\") ON DELETE no action ON UPDATE no action;\n\
               --> statement-breakpoint\n\
               DO $$ BEGIN\n CREATE TYPE \"public\".\"mood\" AS ENUM('sad', 'ok');\nEXCEPTION\n WHEN duplicate_object THEN null;\nEND $$;\n\
               --> statement-breakpoint\n\
               CREATE INDEX IF NOT EXISTS \"orders_user_idx\" ON \"orders\" USING btree (\"user_id\");";
    let report = lint_text("0001_init.sql", sql, &LintOptions::default()).unwrap();
    let found: Vec<(&str, usize)> = report.findings.iter().map(|f| (f.rule, f.line)).collect();
    for expected in [
        ("prefer-bigint-primary-key", 2),
        ("prefer-identity-over-serial", 2),
        ("prefer-text-over-varchar", 3),
        ("add-foreign-key-without-not-valid", 6),
        ("missing-lock-timeout", 6),
        ("create-index-without-concurrently", 14),
    ] {
        assert!(found.contains(&expected), "no {expected:?} in {found:?}");
    }
}

#[test]
fn a_syntax_error_names_its_file_line_and_column() {
    let e = lint_text("m.sql", "SELECT 1;\nCREATE TABEL t (id int);\n", &LintOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(e.to_string(), "m.sql:2:8: syntax error at or near \"TABEL\"");
    let e = lint_text("m.sql", "SELECT 1;\nSELECT 'é' || (1;\n", &LintOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "m.sql:2:17: syntax error at or near \";\"");
    let e = lint_text("m.sql", "SELECT 1;\nSELECT 'abc\n", &LintOptions::default()).unwrap_err();
    assert!(e.to_string().starts_with("m.sql:2:8: unterminated quoted string"), "{e}");
    let e = lint_text("m.sql", "CREATE TABLE t (id int", &LintOptions::default()).unwrap_err();
    assert!(e.to_string().starts_with("m.sql:1:23: syntax error at end of input"), "{e}");
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_eq!(line_column("ab\ncé d", 7), (2, 4));
    assert_eq!(line_column("x", 0), (1, 1));
}

fn facts_with(table: &str, facts: TableFacts) -> Facts {
    let mut f = Facts { server_version: 16, ..Facts::default() };
    f.tables.insert(table.to_owned(), facts);
    f
}

#[test]
fn facts_make_a_hazard_on_a_small_table_a_hint_and_name_a_big_table_size() {
    let sql = "SET lock_timeout = '1s';\nCREATE INDEX i ON orders (user_id);";
    let small = facts_with("orders", TableFacts { rows: Some(10), bytes: 8192, ..TableFacts::default() });
    let report = lint_example(sql, &LintOptions::default(), Some(&small));
    let f = report.findings.iter().find(|f| f.rule == "create-index-without-concurrently").unwrap();
    assert_eq!(f.level, Level::Hint);
    assert!(f.message.contains("is small (about 10 rows, under --small-table-rows 10000)"), "{}", f.message);
    let big = facts_with("orders", TableFacts { rows: Some(1_000_000), bytes: 50 << 20, ..TableFacts::default() });
    let report = lint_example(sql, &LintOptions::default(), Some(&big));
    let f = report.findings.iter().find(|f| f.rule == "create-index-without-concurrently").unwrap();
    assert_eq!(f.level, Level::Error);
    assert!(f.message.ends_with("`orders` has about 1000000 rows (50.0 MiB)"), "{}", f.message);
    // Data loss stays an error on a small table.
    let report = lint_example("DROP TABLE orders;", &LintOptions::default(), Some(&small));
    assert_eq!(report.findings.iter().find(|f| f.rule == "drop-table").unwrap().level, Level::Error);
    // Never analyzed (just restored): its size bounds its rows. 96 KiB hold at most 3510 rows, a hint
    // (the Mattermost tester's bug 4: an error, "its size is unknown"); 50 MiB may hold many more.
    let fresh = facts_with("orders", TableFacts { rows: None, bytes: 96 << 10, ..TableFacts::default() });
    let report = lint_example(sql, &LintOptions::default(), Some(&fresh));
    let f = report.findings.iter().find(|f| f.rule == "create-index-without-concurrently").unwrap();
    assert_eq!(f.level, Level::Hint, "{}", f.message);
    assert!(f.message.contains("never analyzed, but its 96.0 KiB hold at most 3510 rows"), "{}", f.message);
    let fresh = facts_with("orders", TableFacts { rows: None, bytes: 50 << 20, ..TableFacts::default() });
    let report = lint_example(sql, &LintOptions::default(), Some(&fresh));
    let f = report.findings.iter().find(|f| f.rule == "create-index-without-concurrently").unwrap();
    assert_eq!(f.level, Level::Error, "{}", f.message);
}

#[test]
fn facts_name_existing_indexes_unindexed_foreign_keys_checks_and_missing_objects() {
    let mut facts = facts_with(
        "orders",
        TableFacts {
            rows: Some(1_000_000),
            columns: [("user_id", "bigint"), ("status", "text"), ("note", "character varying(50)")]
                .into_iter()
                .map(|(c, t)| (c.to_owned(), types::ColumnType::parse(t).unwrap()))
                .collect(),
            indexes: vec![vec!["status".into()]],
            not_null_checks: [("orders_status_nn".to_owned(), vec!["status".to_owned()])].into(),
            ..TableFacts::default()
        },
    );
    facts.indexes.insert("orders_status_idx".into());
    let with = |rule: &str, sql: &str| lines_with(rule, sql, &LintOptions::default(), Some(&facts));
    assert_eq!(with("index-already-exists", "CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);"), [1]);
    assert_eq!(
        with("index-already-exists", "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);"),
        Vec::<usize>::new()
    );
    let fk = "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;";
    assert_eq!(with("foreign-key-without-index", fk), [1]);
    assert_eq!(with("foreign-key-without-index", &fk.replace("user_id", "status")), Vec::<usize>::new());
    assert_eq!(with("set-not-null", "ALTER TABLE orders ALTER COLUMN status SET NOT NULL;"), Vec::<usize>::new());
    assert_eq!(with("set-not-null", "ALTER TABLE orders ALTER COLUMN note SET NOT NULL;"), [1]);
    assert_eq!(with("object-not-found", "ALTER TABLE nothere ADD COLUMN a int;"), [1]);
    assert_eq!(with("object-not-found", "ALTER TABLE orders DROP COLUMN nothere;"), [1]);
    assert_eq!(
        with("object-not-found", "CREATE TABLE nothere (a int);\nALTER TABLE nothere ADD COLUMN b int;"),
        Vec::<usize>::new()
    );
    // The column's current type decides: varchar(50) to text is free, to varchar(10) narrows.
    assert_eq!(with("alter-column-type", "ALTER TABLE orders ALTER COLUMN note TYPE text;"), Vec::<usize>::new());
    assert_eq!(with("alter-column-type-narrowing", "ALTER TABLE orders ALTER COLUMN note TYPE varchar(10);"), [1]);
    // The server's version replaces the default: 16 has no rewrite for a constant default.
    let old = Facts { server_version: 10, ..facts.clone() };
    let sql = "ALTER TABLE orders ADD COLUMN s text DEFAULT 'x';";
    assert_eq!(lines_with("add-column-volatile-default", sql, &LintOptions::default(), Some(&old)), [1]);
}

#[test]
fn a_type_change_without_facts_is_an_error_unless_it_can_be_free() {
    let warn = lint_text("m.sql", "ALTER TABLE o ALTER COLUMN a TYPE text;", &LintOptions::default()).unwrap();
    let f = warn.findings.iter().find(|f| f.rule == "alter-column-type").unwrap();
    assert_eq!(f.level, Level::Warning);
    let error = lint_text("m.sql", "ALTER TABLE o ALTER COLUMN a TYPE bigint;", &LintOptions::default()).unwrap();
    assert_eq!(error.findings.iter().find(|f| f.rule == "alter-column-type").unwrap().level, Level::Error);
}

#[test]
fn fail_on_picks_the_level_that_fails() {
    let report =
        lint_text("m.sql", "CREATE TABLE IF NOT EXISTS t (name varchar(10));", &LintOptions::default()).unwrap();
    assert_eq!(report.count(Level::Hint), 1, "{:#?}", report.findings);
    assert!(!report.fails(Some(Level::Error)));
    assert!(!report.fails(Some(Level::Warning)));
    assert!(report.fails(Some(Level::Hint)));
    assert!(!report.fails(None));
}

/// The README's row for `rule`: id, level, lock, rewrites, what it flags, the safe alternative.
fn readme_row(rule: &Rule) -> String {
    format!(
        "| `{}` | {} | {} | {} | {} | {} |",
        rule.id,
        rule.level,
        rule.lock.unwrap_or("-"),
        rule.rewrites,
        rule.what,
        rule.help
    )
}

#[test]
fn the_readme_documents_every_rule_as_declared() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let rows: Vec<String> = RULES.iter().map(readme_row).collect();
    let missing: Vec<&String> = rows.iter().filter(|row| !readme.lines().any(|l| l == row.as_str())).collect();
    assert!(missing.is_empty(), "the README's rule table should have these rows:\n{}", rows.join("\n"));
    let documented = readme.lines().filter(|l| l.starts_with("| `") && rows.iter().any(|r| r == l)).count();
    assert_eq!(documented, RULES.len());
}

#[test]
fn facts_know_enum_labels_and_the_table_of_a_dropped_or_rebuilt_index() {
    let mut facts = facts_with("orders", TableFacts { rows: Some(10), bytes: 8192, ..TableFacts::default() });
    facts.enums.insert("mood".into(), vec!["sad".into(), "ok".into()]);
    facts
        .index_tables
        .insert("orders_a_idx".into(), pass::RelName { schema: Some("public".into()), name: "orders".into() });
    facts.indexes.insert("orders_a_idx".into());
    let with = |rule: &str, sql: &str| lines_with(rule, sql, &LintOptions::default(), Some(&facts));
    assert_eq!(with("enum-value-exists", "SELECT 1;\nALTER TYPE mood ADD VALUE 'ok';"), [2]);
    assert_eq!(with("enum-value-exists", "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ok';"), Vec::<usize>::new());
    assert_eq!(
        with("enum-value-exists", "ALTER TYPE mood ADD VALUE 'happy';\nALTER TYPE mood ADD VALUE 'happy';"),
        [2]
    );
    assert_eq!(with("enum-value-exists", "ALTER TYPE other ADD VALUE 'ok';"), Vec::<usize>::new());
    // The index's table is small: a hint that says so; an index the database lacks is dropped by no
    // `DROP INDEX IF EXISTS`, and one without `IF EXISTS` fails: said, with no lock hazard.
    for sql in ["DROP INDEX IF EXISTS orders_a_idx;", "REINDEX INDEX orders_a_idx;"] {
        let report = lint_example(sql, &LintOptions::default(), Some(&facts));
        let f = report.findings.iter().find(|f| f.rule.ends_with("-without-concurrently")).unwrap();
        assert_eq!(f.level, Level::Hint, "{sql}");
        assert!(f.message.contains("`orders` is small"), "{}", f.message);
    }
    assert_eq!(with("drop-index-without-concurrently", "DROP INDEX IF EXISTS other_idx;"), Vec::<usize>::new());
    assert_eq!(with("drop-index-without-concurrently", "DROP INDEX other_idx;"), Vec::<usize>::new());
    assert_eq!(with("object-not-found", "DROP INDEX other_idx;"), [1]);
    // `ALTER INDEX` of an index the database lacks fails (said, and no hazard), or with `IF EXISTS`
    // does nothing; one the run made, by `CREATE INDEX` or as a key's or a partition's, is there.
    let moved = "ALTER INDEX other_idx SET TABLESPACE fast;\nALTER INDEX IF EXISTS gone SET TABLESPACE fast;\n\
                 ALTER INDEX other_idx RENAME TO x;\nALTER INDEX orders_a_idx SET TABLESPACE fast;";
    assert_eq!(with("object-not-found", moved), [1, 3]);
    assert_eq!(with("set-tablespace", moved), [4]);
    let made = "CREATE TABLE items (id int PRIMARY KEY, code text UNIQUE);\n\
                ALTER INDEX items_pkey RENAME TO items_key;\nALTER TABLE orders ADD CONSTRAINT orders_code UNIQUE (id);\n\
                ALTER INDEX orders_code SET TABLESPACE fast;\nCREATE INDEX made_i ON orders (id);\n\
                ALTER INDEX made_i RENAME TO made_j;\nALTER INDEX orders_other RENAME TO y;";
    assert_eq!(with("object-not-found", made), Vec::<usize>::new());
}

#[test]
fn a_down_section_is_not_linted() {
    // goose and dbmate keep the statements that undo a migration in the same file, after a marker: they run
    // only on rollback. The up section is linted, on its own lines.
    let goose = "-- +goose Up\nALTER TABLE users ADD COLUMN password text;\n\n-- +goose Down\nALTER TABLE users DROP COLUMN password;\n";
    assert!(lines("drop-column", goose).is_empty());
    let up_after = "-- migrate:down\nALTER TABLE u DROP COLUMN a;\n-- migrate:up\nALTER TABLE u DROP COLUMN b;\n";
    assert_eq!(lines("drop-column", up_after), [4]);
}

#[test]
fn create_table_if_not_exists_of_a_table_that_exists_makes_nothing_new() {
    let sql = "CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, c text);
CREATE INDEX IF NOT EXISTS orders_c ON orders (c);
ALTER TABLE orders ALTER COLUMN c SET NOT NULL;";
    // Without facts the table is taken as made here, as it is on a fresh database.
    assert!(lines("create-index-without-concurrently", sql).is_empty());
    let big = facts_with("orders", TableFacts { rows: Some(1_000_000), bytes: 50 << 20, ..TableFacts::default() });
    let options = LintOptions::default();
    assert_eq!(lines_with("create-index-without-concurrently", sql, &options, Some(&big)), [2]);
    assert_eq!(lines_with("set-not-null", sql, &options, Some(&big)), [3]);
    // An earlier file of the run made it: not new in this one either.
    let run = format!("CREATE TABLE orders (id bigint, c text);\n-- next file\n{sql}");
    assert_eq!(lines("create-index-without-concurrently", &run), [2]);
}

#[test]
fn set_not_null_on_a_column_that_is_not_null_already_is_no_hazard() {
    // PostgreSQL does nothing for a column that is NOT NULL already: no scan.
    let run = "CREATE TABLE t (a text NOT NULL, b text, c int PRIMARY KEY);
-- next file
ALTER TABLE t ADD COLUMN d text NOT NULL DEFAULT 'x';
ALTER TABLE t ALTER COLUMN a SET NOT NULL;
ALTER TABLE t ALTER COLUMN c SET NOT NULL;
ALTER TABLE t ALTER COLUMN d SET NOT NULL;
ALTER TABLE t ALTER COLUMN b SET NOT NULL;
ALTER TABLE t ALTER COLUMN a DROP NOT NULL;
ALTER TABLE t ALTER COLUMN a SET NOT NULL;
ALTER TABLE t ALTER COLUMN b SET NOT NULL;";
    assert_eq!(lines("set-not-null", run), [5, 7]);
    // What the database says: `a` is NOT NULL there, `b` is not.
    let mut table = TableFacts { rows: Some(1_000_000), bytes: 50 << 20, ..TableFacts::default() };
    table.not_null.insert("a".to_owned());
    let facts = facts_with("orders", table);
    let sql = "ALTER TABLE orders ALTER COLUMN a SET NOT NULL;\nALTER TABLE orders ALTER COLUMN b SET NOT NULL;";
    assert_eq!(lines_with("set-not-null", sql, &LintOptions::default(), Some(&facts)), [2]);
    // A table made again, or a column added again, is what its new definition says (`t` is in the
    // database too, so the run's files do not make it anew for sessions that use it).
    let mut facts = facts;
    facts.tables.insert("t".to_owned(), TableFacts { rows: Some(1_000_000), ..TableFacts::default() });
    let again = "CREATE TABLE t (a text NOT NULL);\nDROP TABLE t;\nCREATE TABLE t (a text);\nALTER TABLE orders DROP COLUMN a;\n\
                 ALTER TABLE orders ADD COLUMN a text;\n-- next file\nALTER TABLE t ALTER COLUMN a SET NOT NULL;\n\
                 ALTER TABLE orders ALTER COLUMN a SET NOT NULL;";
    assert_eq!(lines_with("set-not-null", again, &LintOptions::default(), Some(&facts)), [1, 2]);
}

/// Found by a lint battery: after `SET search_path TO app`, `CREATE TABLE orders` makes `app.orders`; a
/// statement on `public.orders`, another table that exists already, is a hazard.
#[test]
fn a_table_made_under_a_search_path_is_in_its_first_schema() {
    let sql = "SET lock_timeout = '2s';
SET search_path TO app;
CREATE TABLE orders (id bigint PRIMARY KEY, x int);
CREATE INDEX o_x ON public.orders (x);
CREATE INDEX o_y ON orders (x);
CREATE INDEX o_z ON app.orders (x);";
    assert_eq!(lines("create-index-without-concurrently", sql), [4]);
    // With `public` first, or no `SET`, the table made is `public`'s.
    let public = sql.replace("TO app", "TO public, app");
    assert_eq!(lines("create-index-without-concurrently", &public), [6]);
    let reset = sql.replace("SET search_path TO app;", "SET search_path TO app;\nRESET search_path;");
    assert_eq!(lines("create-index-without-concurrently", &reset), [7]);
    // What the run knows of the table follows it: its partitioning.
    let partitioned = "SET search_path TO app, public;
CREATE TABLE events (at date) PARTITION BY RANGE (at);
-- next file
SET search_path TO app, public;
CREATE INDEX e_at ON events (at);";
    assert_eq!(lines("create-index-on-partitioned-table", partitioned), [2]);
}

/// Found by a lint battery: `SELECT ... INTO t` makes a new table, as `CREATE TABLE t AS` does: an index
/// on it is no hazard.
#[test]
fn a_table_made_by_select_into_is_new() {
    let sql = "SET lock_timeout = '2s';
CREATE TABLE orders_copy AS SELECT * FROM orders;
CREATE INDEX oc_x ON orders_copy (x);
SELECT * INTO orders_copy2 FROM orders;
CREATE INDEX oc2_x ON orders_copy2 (x);
CREATE INDEX o_x ON orders (x);";
    assert_eq!(lines("create-index-without-concurrently", sql), [6]);
}

/// Found by a lint battery: a validated `CHECK (c IS NOT NULL AND d > 0)` proves `c` NOT NULL, as
/// PostgreSQL reads an `AND`'s terms (`predicate_implied_by`): `SET NOT NULL` does not scan; an `OR`
/// proves nothing.
#[test]
fn a_not_null_check_among_the_terms_of_an_and_proves_the_column() {
    let sql = "SET lock_timeout = '2s';
ALTER TABLE orders ADD CONSTRAINT c_nn CHECK (c IS NOT NULL AND d > 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT c_nn;
ALTER TABLE orders ALTER COLUMN c SET NOT NULL;
ALTER TABLE orders ALTER COLUMN d SET NOT NULL;";
    assert_eq!(lines("set-not-null", sql), [5]);
    assert_eq!(lines("set-not-null", &sql.replace(" AND ", " OR ")), [4, 5]);
}

/// Found by a lint battery (eugene's E4): a data change after an ACCESS EXCLUSIVE lock in the same
/// transaction keeps every query on the locked table waiting for the whole change, reads included.
#[test]
fn a_data_change_in_the_transaction_that_holds_an_access_exclusive_lock_is_a_finding() {
    let rule = "statement-after-access-exclusive";
    let sql = "SET lock_timeout = '2s';
BEGIN;
ALTER TABLE orders ADD COLUMN c int;
UPDATE orders SET c = qty WHERE c IS NULL;
DELETE FROM users WHERE id < 0;
INSERT INTO archive SELECT * FROM orders;
INSERT INTO audit (what) VALUES ('orders.c');
COMMIT;
UPDATE orders SET c = qty WHERE c IS NULL;";
    assert_eq!(lines(rule, sql), [4, 5, 6]);
    let report = lint_text("m.sql", sql, &LintOptions::default()).unwrap();
    let f = report.findings.iter().find(|f| f.rule == rule).unwrap();
    assert!(
        f.message.contains("holds the ACCESS EXCLUSIVE lock an earlier statement took on `orders`"),
        "{}",
        f.message
    );
    // A lock of a table the file made, or a change of one, is no hazard; a lock that blocks only writes
    // (SHARE, of `CREATE INDEX`) keeps reads going.
    let made = "BEGIN;\nCREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int;\nUPDATE orders SET x = 1 WHERE id = 1;\n\
                ALTER TABLE orders ADD COLUMN d int;\nUPDATE t SET b = 1 WHERE a = 1;\nCOMMIT;";
    assert_eq!(lines(rule, made), Vec::<usize>::new());
    let share = "BEGIN;\nCREATE INDEX o_x ON orders (x);\nUPDATE orders SET x = 1 WHERE id = 1;\nCOMMIT;";
    assert_eq!(lines(rule, share), Vec::<usize>::new());
    // One transaction: its tool's, and `migrate`'s.
    let goose = "-- +goose Up\nALTER TABLE orders ADD COLUMN c int;\nUPDATE orders SET c = qty WHERE c IS NULL;\n";
    assert_eq!(lines(rule, goose), [3]);
    let migrate = LintOptions { assume_lock_timeout: true, ..LintOptions::default() };
    let plain = "ALTER TABLE orders ADD COLUMN c int;\nUPDATE orders SET c = qty WHERE c IS NULL;";
    assert_eq!(lines_with(rule, plain, &migrate, None), [2]);
    assert_eq!(lines(rule, plain), Vec::<usize>::new());
}

/// Found by a lint battery: `SET LOCAL lock_timeout` outside a transaction block has no effect
/// (PostgreSQL only warns), and a `SET` in a transaction that is rolled back is undone.
#[test]
fn a_lock_timeout_set_local_outside_a_transaction_or_rolled_back_is_not_set() {
    let add = "ALTER TABLE orders ADD COLUMN a int;";
    assert_eq!(lines("missing-lock-timeout", &format!("SET LOCAL lock_timeout = '2s';\n{add}")), [2]);
    let config = "SELECT set_config('lock_timeout', '2s', true);";
    assert_eq!(lines("missing-lock-timeout", &format!("{config}\n{add}")), [2]);
    let rolled_back = format!("BEGIN;\nSET lock_timeout = '2s';\nROLLBACK;\n{add}");
    assert_eq!(lines("missing-lock-timeout", &rolled_back), [4]);
    // Committed, or set before the transaction, it holds; `SET LOCAL` holds in its transaction, and in a
    // file its tool runs in one.
    assert_eq!(lines("missing-lock-timeout", &rolled_back.replace("ROLLBACK", "COMMIT")), Vec::<usize>::new());
    let before = format!("SET lock_timeout = '2s';\nBEGIN;\nSET lock_timeout = '5s';\nROLLBACK;\n{add}");
    assert_eq!(lines("missing-lock-timeout", &before), Vec::<usize>::new());
    let local = format!("BEGIN;\nSET LOCAL lock_timeout = '2s';\n{add}\nCOMMIT;");
    assert_eq!(lines("missing-lock-timeout", &local), Vec::<usize>::new());
    let goose = format!("-- +goose Up\nSET LOCAL lock_timeout = '2s';\n{add}\n");
    assert_eq!(lines("missing-lock-timeout", &goose), Vec::<usize>::new());
}

/// Found by a lint battery (measured on PostgreSQL 15): an index on a partitioned table locks the table
/// and every partition SHARE, and `CONCURRENTLY` there fails ("cannot create index on partitioned table
/// concurrently"): the advice is `ON ONLY` and each partition's index, never `CONCURRENTLY`.
#[test]
fn an_index_on_a_partitioned_table_is_built_partition_by_partition() {
    let facts = facts_with(
        "events",
        TableFacts { partitioned: true, rows: Some(30_000), bytes: 1 << 20, ..TableFacts::default() },
    );
    let report = |sql: &str| lint_example(sql, &LintOptions::default(), Some(&facts)).findings;
    let plain = report("SET lock_timeout = '2s';\nCREATE INDEX events_x_idx ON events (x);");
    let rules: Vec<&str> = plain.iter().filter(|f| f.rule != "non-idempotent").map(|f| f.rule).collect();
    assert_eq!(rules, ["create-index-on-partitioned-table"]);
    let f = &plain.iter().find(|f| f.rule == "create-index-on-partitioned-table").unwrap();
    assert_eq!((f.level, f.lock), (Level::Error, Some("SHARE")));
    assert!(f.help.contains("ON ONLY parent") && !f.help.starts_with("`CREATE INDEX CONCURRENTLY`"), "{}", f.help);
    // `CONCURRENTLY` fails, whatever the table's size, on the database's table or the run's.
    let small = facts_with("events", TableFacts { partitioned: true, rows: Some(10), ..TableFacts::default() });
    let sql = "CREATE INDEX CONCURRENTLY events_x_idx ON events (x);";
    let found = lint_example(sql, &LintOptions::default(), Some(&small)).findings;
    let f = found.iter().find(|f| f.rule == "create-index-on-partitioned-table").expect("a finding");
    assert_eq!(f.level, Level::Error);
    assert!(f.message.contains("the statement fails"), "{}", f.message);
    let made =
        "CREATE TABLE m (id bigint, at date) PARTITION BY RANGE (at);\nCREATE INDEX CONCURRENTLY m_at ON m (at);";
    assert_eq!(lines("create-index-on-partitioned-table", made), [2]);
    assert_eq!(lines("create-index-on-partitioned-table", &made.replace("CONCURRENTLY ", "")), Vec::<usize>::new());
    // `ON ONLY` builds nothing; a table not partitioned is `create-index-without-concurrently`'s.
    assert!(report("CREATE INDEX events_x_idx ON ONLY events (x);").iter().all(|f| f.rule == "non-idempotent"));
    assert_eq!(lines("create-index-without-concurrently", "CREATE INDEX o_x ON orders (x);"), [1]);
}

/// Found by a lint battery (PostgreSQL 15: "CREATE INDEX CONCURRENTLY cannot be executed from a function"):
/// a `DO` block runs its statements as one function call, in one transaction, where `CONCURRENTLY` fails.
#[test]
fn concurrently_inside_a_do_block_fails() {
    let sql = "SET lock_timeout = '2s';
DO $$
BEGIN
  EXECUTE 'CREATE INDEX CONCURRENTLY orders_x_idx ON orders (x)';
END $$;
DO $$ BEGIN CREATE INDEX CONCURRENTLY IF NOT EXISTS o_x ON orders(x); END $$;
DO $$ BEGIN DROP INDEX CONCURRENTLY IF EXISTS o_x; END $$;
CREATE INDEX CONCURRENTLY IF NOT EXISTS o_y ON orders (y);";
    assert_eq!(lines("concurrently-in-transaction", sql), [4, 6, 7]);
    let report = lint_text("m.sql", sql, &LintOptions::default()).unwrap();
    let f = report.findings.iter().find(|f| f.rule == "concurrently-in-transaction").unwrap();
    assert!(f.message.contains("cannot be executed from a function"), "{}", f.message);
    // One transaction: a constraint validated in the block that added it `NOT VALID` holds its lock through
    // the scan; validated after the block, it does not.
    let block = "SET lock_timeout = '2s';
DO $$ BEGIN
  ALTER TABLE orders ADD CONSTRAINT c CHECK (x > 0) NOT VALID;
  ALTER TABLE orders VALIDATE CONSTRAINT c;
END $$;";
    assert_eq!(lines("add-check-without-not-valid", block), [4]);
    let after = "SET lock_timeout = '2s';
DO $$ BEGIN ALTER TABLE orders ADD CONSTRAINT c CHECK (x > 0) NOT VALID; END $$;
ALTER TABLE orders VALIDATE CONSTRAINT c;";
    assert_eq!(lines("add-check-without-not-valid", after), Vec::<usize>::new());
}

/// Found by a lint battery (measured on PostgreSQL 15: SHARE on every table with a column of the domain):
/// `ALTER DOMAIN ... ADD CONSTRAINT` checks every such column, and waits for those locks.
#[test]
fn a_domain_constraint_added_valid_scans_its_columns_and_wants_a_lock_timeout() {
    let add = "ALTER DOMAIN posint ADD CONSTRAINT posint_check CHECK (VALUE > 0);";
    assert_eq!(lines("alter-domain-add-constraint", add), [1]);
    assert_eq!(lines("missing-lock-timeout", add), [1]);
    let report = lint_text("m.sql", add, &LintOptions::default()).unwrap();
    let f = report.findings.iter().find(|f| f.rule == "missing-lock-timeout").unwrap();
    assert!(f.message.contains("a SHARE lock on every table with a column of `posint`"), "{}", f.message);
    let not_valid = add.replace(";", " NOT VALID;");
    assert_eq!(lines("missing-lock-timeout", &not_valid), Vec::<usize>::new());
    assert_eq!(lines("alter-domain-add-constraint", "SET lock_timeout = '2s';\nALTER DOMAIN email SET NOT NULL;"), [2]);
    // Made by the file: no column uses it yet, and dropping it loses nothing.
    let made = format!("CREATE DOMAIN posint AS integer;\n{add}\nDROP DOMAIN posint;");
    assert_eq!(lines("alter-domain-add-constraint", &made), Vec::<usize>::new());
    assert_eq!(lines("drop-type", &made), Vec::<usize>::new());
}

/// Found by a lint battery (confirmed on PostgreSQL 15: the table is rewritten): a volatile call is
/// volatile wherever it is in the default, `ARRAY[...]` and `ROW(...)` as well as `CASE` or `COALESCE`.
#[test]
fn a_volatile_call_anywhere_in_a_default_rewrites() {
    for default in [
        "ARRAY[random()::text]",
        "ARRAY[ARRAY[1], ARRAY[(random() * 10)::int]]",
        "(ROW(1, clock_timestamp())::pair).b",
        "COALESCE(NULL, md5(gen_random_uuid()::text))",
        "CASE WHEN true THEN ARRAY[nextval('s')] END",
    ] {
        let sql = format!("ALTER TABLE orders ADD COLUMN c text[] DEFAULT {default};");
        assert_eq!(lines("add-column-volatile-default", &sql), [1], "{sql}");
    }
    let stable = "ALTER TABLE orders ADD COLUMN c text[] DEFAULT ARRAY[now()::text, lower('A')];";
    assert_eq!(lines("add-column-volatile-default", stable), Vec::<usize>::new());
    // What the facts read the volatility of.
    let files = [parse(SourceFile {
        name: "m.sql".into(),
        text: "ALTER TABLE orders ADD COLUMN c text[] DEFAULT ARRAY[make_code()];".into(),
    })
    .unwrap()];
    assert_eq!(named(&files).functions, ["make_code"]);
}

/// Found by a lint battery (confirmed on PostgreSQL 15, which scans in each case): a validated `CHECK (col
/// IS NOT NULL)` spares `SET NOT NULL` its scan only while it exists; dropped, or dropped and added again
/// `NOT VALID` under its name, it proves nothing, whether the run or the database had it.
#[test]
fn a_not_null_check_dropped_before_set_not_null_proves_nothing() {
    let add = "ALTER TABLE orders ADD CONSTRAINT c1 CHECK (user_id IS NOT NULL) NOT VALID;\n\
               ALTER TABLE orders VALIDATE CONSTRAINT c1;\n";
    let set = "ALTER TABLE orders ALTER COLUMN user_id SET NOT NULL;";
    assert_eq!(lines("set-not-null", &format!("{add}{set}")), Vec::<usize>::new());
    let dropped = format!("{add}ALTER TABLE orders DROP CONSTRAINT c1;\n{set}");
    assert_eq!(lines("set-not-null", &dropped), [4]);
    let next_file = format!("{add}-- next file\nALTER TABLE orders DROP CONSTRAINT IF EXISTS c1;\n{set}");
    assert_eq!(lines("set-not-null", &next_file), [2]);
    // Another check of the column still proves it.
    let other = format!("{add}{}ALTER TABLE orders DROP CONSTRAINT c1;\n{set}", add.replace("c1", "c2"));
    assert_eq!(lines("set-not-null", &other), Vec::<usize>::new());
    // The database's check, by its name.
    let mut table = TableFacts { rows: Some(1_000_000), ..TableFacts::default() };
    table.not_null_checks.insert("orders_uid_nn".into(), vec!["user_id".into()]);
    let facts = facts_with("orders", table);
    let with = |sql: &str| lines_with("set-not-null", sql, &LintOptions::default(), Some(&facts));
    assert_eq!(with(set), Vec::<usize>::new());
    assert_eq!(with(&format!("ALTER TABLE orders DROP CONSTRAINT orders_uid_nn;\n{set}")), [2]);
    assert_eq!(with(&format!("ALTER TABLE orders DROP CONSTRAINT other;\n{set}")), Vec::<usize>::new());
    let replaced = "ALTER TABLE orders DROP CONSTRAINT orders_uid_nn, \
                    ADD CONSTRAINT orders_uid_nn CHECK (user_id IS NOT NULL) NOT VALID;\n";
    assert_eq!(with(&format!("{replaced}{set}")), [2]);
    // Validated again, the new one proves it.
    let validated = format!("{replaced}ALTER TABLE orders VALIDATE CONSTRAINT orders_uid_nn;\n{set}");
    assert_eq!(with(&validated), Vec::<usize>::new());
}

#[test]
fn statements_inside_a_do_block_are_linted_at_their_lines() {
    let sql = "SET lock_timeout = '2s';
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'posts' AND column_name = 'parentid') THEN
    ALTER TABLE posts ALTER COLUMN props TYPE jsonb USING props::jsonb;
    EXECUTE 'ALTER TABLE posts DROP COLUMN parentid';
  END IF;
  EXECUTE format('DROP TABLE %I', 'computed');
END $$;";
    assert_eq!(lines("alter-column-type", sql), [5]);
    assert_eq!(lines("drop-column", sql), [6]);
    let report = lint_example(sql, &LintOptions::default(), None);
    let drop = report.findings.iter().find(|f| f.rule == "drop-column").unwrap();
    assert_eq!(drop.statement, "EXECUTE 'ALTER TABLE posts DROP COLUMN parentid';");
    // A suppression above the block covers what it runs.
    let allowed = format!("-- pgsafe:allow drop-column the column moved to rootid in 0065\n{}", &sql[25..]);
    let report = lint_example(&allowed, &LintOptions::default(), None);
    assert!(report.findings.iter().all(|f| f.rule != "drop-column"), "{:?}", report.findings);
    assert_eq!(report.allowed.len(), 1);
    // A table the block creates is new, for the block and after it.
    let created =
        "DO $$ BEGIN CREATE TABLE t (id bigint); CREATE INDEX t_id ON t (id); END $$;\nCREATE INDEX t_id2 ON t (id);";
    assert!(lines("create-index-without-concurrently", created).is_empty());
}

/// The `alter-column-type` finding's message for the last file of `sql`.
fn type_change_message(sql: &str, facts: Option<&Facts>) -> String {
    let report = lint_example(sql, &LintOptions::default(), facts);
    let f = report.findings.iter().find(|f| f.rule == "alter-column-type").expect("an alter-column-type finding");
    f.message.clone()
}

#[test]
fn a_type_change_after_a_rename_knows_the_type_the_column_had() {
    // Lemmy's `add_avatar`: a bytea column renamed, then made text, in a later file than the table's.
    let made = "CREATE TABLE t (id int PRIMARY KEY, icon bytea);\n-- next file\n";
    for change in [
        "ALTER TABLE t ALTER COLUMN icon TYPE text;",
        "ALTER TABLE t RENAME COLUMN icon TO avatar;\nALTER TABLE t ALTER COLUMN avatar TYPE text;",
        "ALTER TABLE t RENAME TO u;\nALTER TABLE u ALTER COLUMN icon TYPE text;",
        "ALTER TABLE t RENAME TO u;\nALTER TABLE u RENAME COLUMN icon TO avatar;\nALTER TABLE u ALTER COLUMN avatar TYPE text;",
        "ALTER TABLE t RENAME COLUMN icon TO avatar;\n-- next file\nALTER TABLE t ALTER COLUMN avatar TYPE text;",
    ] {
        let report = lint_example(&format!("{made}{change}"), &LintOptions::default(), None);
        let f = report.findings.iter().find(|f| f.rule == "alter-column-type").expect("an alter-column-type finding");
        assert_eq!(f.level, Level::Error, "{change}: {}", f.message);
        assert!(f.message.contains("from `bytea`"), "{change}: {}", f.message);
    }
    // A widening under the new name is still free.
    let widened = "CREATE TABLE t (id int, name varchar(10));\n-- next file\n\
                   ALTER TABLE t RENAME COLUMN name TO title;\nALTER TABLE t ALTER COLUMN title TYPE varchar(20);";
    assert!(lines("alter-column-type", widened).is_empty());
}

#[test]
fn a_later_file_of_the_run_is_judged_against_what_earlier_ones_changed() {
    // Harbor changes `vulnerability_record.id` to bigint in 0071 and again in 0080, and makes indexes in
    // 0053 that 0060 makes again `IF NOT EXISTS`: with the database's facts (of before the run), each
    // second statement was an error, though it does nothing.
    let mut table = TableFacts { rows: Some(1_000_000), bytes: 50 << 20, ..TableFacts::default() };
    table.columns.insert("id".into(), crate::lint::types::ColumnType::parse("integer").unwrap());
    let mut facts = facts_with("vulnerability_record", table);
    facts.indexes.insert("idx_existing".into());
    let with = |rule: &str, sql: &str| lines_with(rule, sql, &LintOptions::default(), Some(&facts));
    let twice = "ALTER TABLE vulnerability_record ALTER COLUMN id TYPE bigint;
-- next file
\
                 ALTER TABLE vulnerability_record ALTER COLUMN id TYPE bigint;";
    assert_eq!(with("alter-column-type", twice), [1]);
    let index = "CREATE INDEX idx_new ON vulnerability_record (id);
-- next file
\
                 CREATE INDEX IF NOT EXISTS idx_new ON vulnerability_record (id);
\
                 CREATE INDEX IF NOT EXISTS idx_existing ON vulnerability_record (id);
\
                 CREATE INDEX IF NOT EXISTS idx_other ON vulnerability_record (id);";
    // Lines are each file's own: the first file's build, and the second file's `idx_other`.
    assert_eq!(with("create-index-without-concurrently", index), [1, 3]);
    // Dropped first, it is built again.
    let dropped = "DROP INDEX CONCURRENTLY IF EXISTS idx_existing;
-- next file
\
                   CREATE INDEX IF NOT EXISTS idx_existing ON vulnerability_record (id);";
    assert_eq!(with("create-index-without-concurrently", dropped), [1]);
}

#[test]
fn a_type_change_of_a_foreign_key_column_names_the_other_table_it_locks() {
    // Measured on PostgreSQL 15: either end of the key locks the other table ACCESS EXCLUSIVE.
    let made = "CREATE TABLE users (id int PRIMARY KEY);\n\
                CREATE TABLE orders (id bigint PRIMARY KEY, user_id int REFERENCES users, note text);\n\
                CREATE TABLE tags (id int PRIMARY KEY, order_id bigint, user_id int,\n  \
                FOREIGN KEY (user_id) REFERENCES users (id));\n-- next file\n";
    let referencing = type_change_message(&format!("{made}ALTER TABLE orders ALTER COLUMN user_id TYPE bigint;"), None);
    assert!(
        referencing.ends_with("ACCESS EXCLUSIVE lock on `users`, to rebuild the foreign key between them"),
        "{referencing}"
    );
    let referenced = type_change_message(&format!("{made}ALTER TABLE users ALTER COLUMN id TYPE bigint;"), None);
    assert!(referenced.contains("lock on `orders`, `tags`, to rebuild the foreign keys"), "{referenced}");
    // A column outside every key, and a key the run dropped, lock nothing else.
    let other = type_change_message(&format!("{made}ALTER TABLE orders ALTER COLUMN note TYPE bigint;"), None);
    assert!(!other.contains("ACCESS EXCLUSIVE"), "{other}");
    let named = "CREATE TABLE users (id int PRIMARY KEY);\n\
                 CREATE TABLE orders (user_id int CONSTRAINT orders_user_fk REFERENCES users);\n-- next file\n\
                 ALTER TABLE orders DROP CONSTRAINT orders_user_fk;\nALTER TABLE orders ALTER COLUMN user_id TYPE bigint;";
    assert!(!type_change_message(named, None).contains("ACCESS EXCLUSIVE"));

    // From the database's facts: the key of `orders` seen from `users`, which holds none itself.
    let fk = |referencing: bool, columns: &[&str], other: &str| ForeignKeyFact {
        name: "orders_user_id_fkey".into(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        other: pass::RelName { schema: Some("public".into()), name: other.into() },
        referencing,
    };
    let mut facts =
        facts_with("users", TableFacts { foreign_keys: vec![fk(false, &["id"], "orders")], ..TableFacts::default() });
    facts.tables.insert(
        "orders".into(),
        TableFacts { foreign_keys: vec![fk(true, &["user_id"], "users")], ..TableFacts::default() },
    );
    let from_users = type_change_message("ALTER TABLE users ALTER COLUMN id TYPE bigint;", Some(&facts));
    assert!(from_users.contains("lock on `orders`, to rebuild the foreign key between them"), "{from_users}");
    let from_orders = type_change_message("ALTER TABLE orders ALTER COLUMN user_id TYPE bigint;", Some(&facts));
    assert!(from_orders.contains("lock on `users`"), "{from_orders}");
    let dropped =
        "ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;\nALTER TABLE users ALTER COLUMN id TYPE bigint;";
    assert!(!type_change_message(dropped, Some(&facts)).contains("ACCESS EXCLUSIVE"));
}

#[test]
fn a_small_table_referenced_by_others_keeps_its_type_change_an_error() {
    let small = TableFacts { rows: Some(10), bytes: 8192, ..TableFacts::default() };
    let mut facts = facts_with("users", small.clone());
    let report = lint_example("ALTER TABLE users ALTER COLUMN id TYPE bigint;", &LintOptions::default(), Some(&facts));
    assert_eq!(report.findings.iter().find(|f| f.rule == "alter-column-type").unwrap().level, Level::Hint);
    facts.tables.get_mut("users").unwrap().foreign_keys = vec![ForeignKeyFact {
        name: "orders_user_id_fkey".into(),
        columns: vec!["id".into()],
        other: pass::RelName { schema: Some("public".into()), name: "orders".into() },
        referencing: false,
    }];
    let report = lint_example("ALTER TABLE users ALTER COLUMN id TYPE bigint;", &LintOptions::default(), Some(&facts));
    assert_eq!(report.findings.iter().find(|f| f.rule == "alter-column-type").unwrap().level, Level::Error);
}

#[test]
fn a_finding_shows_the_whole_line_it_points_into_from_its_statement() {
    let sql = "CREATE TABLE t (a int);\n-- next file\nSELECT 1; ALTER TABLE t\n  ALTER COLUMN a TYPE bigint, ALTER COLUMN a SET DEFAULT 0;\nALTER TABLE t DROP COLUMN a;";
    let report = lint_example(sql, &LintOptions::default(), None);
    let shown = |rule: &str| report.findings.iter().find(|f| f.rule == rule).unwrap().statement.clone();
    assert_eq!(shown("alter-column-type"), "ALTER COLUMN a TYPE bigint, ALTER COLUMN a SET DEFAULT 0;");
    assert_eq!(shown("drop-column"), "ALTER TABLE t DROP COLUMN a;");
    let first = lint_example("SELECT 1; DROP TABLE t;", &LintOptions::default(), None);
    assert_eq!(first.findings.iter().find(|f| f.rule == "drop-table").unwrap().statement, "DROP TABLE t;");
}

#[test]
fn type_names_read_as_written_in_sql_and_a_quoted_one_keeps_its_case() {
    let sql = "CREATE TABLE t (id int, m \"Mood\");\n-- next file\nALTER TABLE t ALTER COLUMN id TYPE bigint;\n\
               ALTER TABLE t ALTER COLUMN m TYPE mood;";
    let report = lint_example(sql, &LintOptions::default(), None);
    let messages: Vec<&str> =
        report.findings.iter().filter(|f| f.rule == "alter-column-type").map(|f| f.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].starts_with("changing `t.id` to `bigint` from `integer` rewrites"), "{}", messages[0]);
    assert!(messages[1].starts_with("changing `t.m` to `mood` from `\"Mood\"` rewrites"), "{}", messages[1]);
}

#[test]
fn a_partition_attached_after_its_bound_check_is_validated_is_no_finding() {
    let attach = "ALTER TABLE ev ATTACH PARTITION ev_26 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');";
    let check = "ALTER TABLE ev_26 ADD CONSTRAINT b CHECK (at >= '2026-01-01' AND at < '2027-01-01') NOT VALID;\n";
    // Across files, as migration tools split it; a check never validated does not spare the scan.
    let validated = format!("{check}-- next file\nALTER TABLE ev_26 VALIDATE CONSTRAINT b;\n-- next file\n{attach}");
    assert_eq!(lines("attach-partition-scan", &validated), Vec::<usize>::new());
    assert_eq!(lines("attach-partition-scan", &format!("{check}-- next file\n{attach}")), [1]);
    let other = format!("{check}ALTER TABLE ev_25 VALIDATE CONSTRAINT b;\n{attach}");
    assert_eq!(lines("attach-partition-scan", &other), [3]);
    // DETACH: CONCURRENTLY cannot run in a transaction; before 14 there is no CONCURRENTLY to ask for.
    let detach = "ALTER TABLE ev DETACH PARTITION ev_20 CONCURRENTLY;";
    assert_eq!(lines("concurrently-in-transaction", &format!("BEGIN;\n{detach}\nCOMMIT;")), [2]);
    assert_eq!(lines("detach-partition-without-concurrently", detach), Vec::<usize>::new());
    let plain = "ALTER TABLE ev DETACH PARTITION ev_20;";
    assert_eq!(lines("detach-partition-without-concurrently", plain), [1]);
    assert_eq!(lines("detach-partition-without-concurrently", &format!("-- pg 13\n{plain}")), Vec::<usize>::new());
    assert_eq!(lines("missing-lock-timeout", plain), [1]);
}

#[test]
fn an_explicit_lock_that_blocks_writes_wants_a_lock_timeout_unless_nowait() {
    assert_eq!(lines("missing-lock-timeout", "BEGIN;\nLOCK TABLE orders IN ACCESS EXCLUSIVE MODE;\nCOMMIT;"), [2]);
    assert_eq!(lines("missing-lock-timeout", "LOCK orders;"), [1]);
    assert_eq!(lines("missing-lock-timeout", "LOCK TABLE orders IN SHARE MODE NOWAIT;"), Vec::<usize>::new());
    assert_eq!(lines("missing-lock-timeout", "LOCK TABLE orders IN ROW EXCLUSIVE MODE;"), Vec::<usize>::new());
    let report = lint_example("LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE;", &LintOptions::default(), None);
    assert!(
        report.findings[0].message.contains("SHARE ROW EXCLUSIVE lock on `orders`"),
        "{}",
        report.findings[0].message
    );
}

#[test]
fn a_where_that_always_holds_is_no_where_and_more_statements_that_break_or_lose_are_named() {
    assert_eq!(lines("delete-without-where", "DELETE FROM orders USING customers WHERE true;"), [1]);
    // A backfill of columns the run added is no data loss; one that also sets an existing column is.
    let backfill = "ALTER TABLE orders ADD COLUMN cents bigint;\nUPDATE orders SET cents = total * 100;";
    assert_eq!(lines("backfill-in-one-transaction", backfill), [2]);
    assert_eq!(lines("update-without-where", backfill), Vec::<usize>::new());
    let mixed = "ALTER TABLE orders ADD COLUMN cents bigint;\nUPDATE orders SET cents = total * 100, total = 0;";
    assert_eq!(lines("update-without-where", mixed), [2]);
    assert_eq!(lines("backfill-in-one-transaction", mixed), Vec::<usize>::new());
    assert_eq!(lines("update-without-where", "UPDATE orders SET total = 0 WHERE 1 = 1;"), [1]);
    assert_eq!(lines("update-without-where", "UPDATE orders SET total = 0 WHERE 'a' = 'a';"), [1]);
    assert_eq!(lines("update-without-where", "UPDATE orders SET total = 0 WHERE 1 = 2;"), Vec::<usize>::new());
    assert_eq!(lines("update-without-where", "UPDATE orders SET total = 0 WHERE id = 1;"), Vec::<usize>::new());
    assert_eq!(lines("set-tablespace", "ALTER INDEX IF EXISTS orders_pkey SET TABLESPACE fast;"), [1]);
    assert_eq!(lines("set-tablespace", "ALTER INDEX orders_pkey RENAME TO orders_key;"), Vec::<usize>::new());
    assert_eq!(lines("disable-trigger", "ALTER TABLE orders DISABLE TRIGGER audit;"), [1]);
    let all = lint_example("ALTER TABLE orders DISABLE TRIGGER ALL;", &LintOptions::default(), None);
    assert!(all.findings.iter().any(|f| f.message.contains("foreign key checks included")), "{:?}", all.findings);
    assert_eq!(lines("disable-trigger", "ALTER TABLE orders ENABLE TRIGGER ALL;"), Vec::<usize>::new());
    assert_eq!(lines("rename-type", "CREATE TYPE s AS ENUM ('a');\nALTER TYPE s RENAME TO t;"), Vec::<usize>::new());
    assert_eq!(lines("rename-type", "ALTER TYPE status ADD VALUE 'x';"), Vec::<usize>::new());
    assert_eq!(lines("drop-owned", "DROP OWNED BY a, b;"), [1]);
    assert_eq!(lines("cascade", "DROP OWNED BY a CASCADE;"), [1]);
}

#[test]
fn prismas_enum_change_swaps_two_types_and_drops_the_old_one_without_a_finding() {
    let prisma = "BEGIN;\nCREATE TYPE \"Role_new\" AS ENUM ('USER', 'ADMIN');\n\
                  ALTER TABLE \"User\" ALTER COLUMN \"role\" TYPE \"Role_new\" USING (\"role\"::text::\"Role_new\");\n\
                  ALTER TYPE \"Role\" RENAME TO \"Role_old\";\nALTER TYPE \"Role_new\" RENAME TO \"Role\";\n\
                  DROP TYPE \"Role_old\";\nCOMMIT;";
    let report = lint_example(prisma, &LintOptions::default(), None);
    let rules: Vec<&str> = report.findings.iter().map(|f| f.rule).collect();
    assert!(!rules.contains(&"rename-type") && !rules.contains(&"drop-type"), "{rules:?}");
    assert!(rules.contains(&"alter-column-type"), "the column's rewrite is still named: {rules:?}");
    // A rename without the swap, and a drop of a type the file did not move aside, are findings.
    assert_eq!(lines("rename-type", "ALTER TYPE \"Role\" RENAME TO \"Role_old\";"), [1]);
    assert_eq!(lines("drop-type", "ALTER TYPE a RENAME TO a_old;\nDROP TYPE b;"), [2]);
}

/// Found on real migration histories (Mattermost's and Lemmy's), with the database's facts: a `DROP ...
/// IF EXISTS` of what the database lacks does nothing, a column the run added and drops again holds
/// only the run's values, `ADD COLUMN IF NOT EXISTS` of a column the database has adds nothing (so the
/// UPDATE that follows changes data), a table or column the run renamed is found under its new name, a
/// view dropped and made again breaks no query, a key of several columns is no id counter, and a
/// NOT NULL column without a default fails on any table with rows, however small.
#[test]
fn facts_follow_what_the_run_does_to_the_names_it_finds() {
    let columns = |list: &[(&str, &str)]| {
        list.iter().map(|(c, t)| ((*c).to_owned(), types::ColumnType::parse(t).unwrap())).collect()
    };
    let mut facts = facts_with(
        "users",
        TableFacts { rows: Some(500), columns: columns(&[("id", "text"), ("icon", "text")]), ..TableFacts::default() },
    );
    facts.tables.insert(
        "commands".into(),
        TableFacts {
            rows: Some(3),
            columns: columns(&[("id", "text"), ("pluginid", "text")]),
            ..TableFacts::default()
        },
    );
    let with = |rule: &str, sql: &str| lines_with(rule, sql, &LintOptions::default(), Some(&facts));
    let absent = "ALTER TABLE users DROP COLUMN IF EXISTS acceptedterms;\nDROP TABLE IF EXISTS jobstatuses;\n\
                  DROP INDEX IF EXISTS idx_gone;\n";
    for rule in ["drop-column", "drop-table", "drop-index-without-concurrently", "object-not-found"] {
        assert_eq!(with(rule, absent), Vec::<usize>::new(), "{rule}");
    }
    assert_eq!(with("object-not-found", "ALTER TABLE users DROP COLUMN acceptedterms;"), [1]);
    assert_eq!(with("drop-column", "ALTER TABLE users DROP COLUMN acceptedterms;"), Vec::<usize>::new());
    assert_eq!(with("drop-column", "ALTER TABLE users DROP COLUMN icon;"), [1]);

    let add_then_drop = "ALTER TABLE users ADD COLUMN IF NOT EXISTS lastrootat bigint;\n\
                         UPDATE users SET lastrootat = 1 WHERE id <> '';\nALTER TABLE users DROP COLUMN IF EXISTS lastrootat;\n";
    for rule in ["drop-column", "object-not-found"] {
        assert_eq!(with(rule, add_then_drop), Vec::<usize>::new(), "{rule}");
    }
    let existing = "ALTER TABLE commands ADD COLUMN IF NOT EXISTS pluginid text;\nUPDATE commands SET pluginid = '';\n";
    assert_eq!(with("update-without-where", existing), [2]);
    assert_eq!(with("backfill-in-one-transaction", existing), Vec::<usize>::new());

    let renames = "ALTER TABLE users RENAME TO person;\nALTER TABLE person RENAME COLUMN icon TO avatar;\n\
                   ALTER TABLE person ALTER COLUMN avatar SET NOT NULL;\nALTER TABLE person DROP COLUMN avatar;\n";
    assert_eq!(with("object-not-found", renames), Vec::<usize>::new());
    assert_eq!(with("drop-column", renames), [4]);

    let view = "DROP VIEW user_view;\nCREATE VIEW user_view AS SELECT id FROM users;\nDROP VIEW other_view;\n";
    assert_eq!(lines("drop-view", view), [3]);
    assert_eq!(
        lines("prefer-bigint-primary-key", "CREATE TABLE s (a int, b int, PRIMARY KEY (a, b));"),
        Vec::<usize>::new()
    );
    assert_eq!(lines("prefer-bigint-primary-key", "CREATE TABLE s (a serial, b int, PRIMARY KEY (a, b));"), [1]);

    let not_null = "SET lock_timeout = '1s';\nALTER TABLE commands ADD COLUMN flag bool NOT NULL;";
    let report = lint_example(not_null, &LintOptions::default(), Some(&facts));
    let f = report.findings.iter().find(|f| f.rule == "add-column-not-null-without-default").unwrap();
    assert_eq!(f.level, Level::Error, "{}", f.message);
    assert!(f.message.ends_with("`commands` has about 3 rows: it fails"), "{}", f.message);
    let mut empty = facts.clone();
    empty.tables.get_mut("commands").unwrap().rows = Some(0);
    let report = lint_example(not_null, &LintOptions::default(), Some(&empty));
    let f = report.findings.iter().find(|f| f.rule == "add-column-not-null-without-default").unwrap();
    assert_eq!(f.level, Level::Hint, "{}", f.message);
}

/// Found on a real migration history (Lemmy's): a default calling a function of the run's or the
/// database's own that is volatile fills every row as a volatile built-in does.
#[test]
fn a_default_calling_a_volatile_function_of_the_run_or_the_database_rewrites() {
    let made = "CREATE FUNCTION gen_id() RETURNS text LANGUAGE sql AS $$SELECT md5(random()::text)$$;\n\
                ALTER TABLE t ADD COLUMN x text NOT NULL DEFAULT gen_id();\n";
    assert_eq!(lines("add-column-volatile-default", made), [2]);
    let stable = made.replace("LANGUAGE sql", "LANGUAGE sql STABLE");
    assert_eq!(lines("add-column-volatile-default", &stable), Vec::<usize>::new());
    let used = "ALTER TABLE t ADD COLUMN x text NOT NULL DEFAULT generate_unique_id();";
    let mut facts = facts_with("t", TableFacts { rows: Some(1_000_000), ..TableFacts::default() });
    facts.volatile_functions.insert("generate_unique_id".into(), true);
    assert_eq!(lines_with("add-column-volatile-default", used, &LintOptions::default(), Some(&facts)), [1]);
    let files = [parse(SourceFile { name: "m.sql".into(), text: used.into() }).unwrap()];
    assert_eq!(named(&files).functions, ["generate_unique_id"]);
}

/// Found by a lint battery: a default calling a function lint knows nothing of (not built in, not made by
/// the run) may be volatile, PostgreSQL's default for a function: a warning without `-d`; with it, the
/// database's `provolatile` decides.
#[test]
fn a_default_calling_a_function_lint_does_not_know_may_rewrite() {
    let sql = "ALTER TABLE orders ADD COLUMN code text DEFAULT make_code();";
    let report = lint_text("m.sql", sql, &LintOptions::default()).unwrap();
    let f = report.findings.iter().find(|f| f.rule == "add-column-volatile-default").expect("a finding");
    assert_eq!(f.level, Level::Warning);
    assert!(
        f.message.contains("`make_code()`, whose volatility lint does not know (lint with `-d` to know)"),
        "{}",
        f.message
    );
    // Built-ins that are not volatile, and the SQL standard's functions, are known.
    for default in ["lower(md5('x'))", "to_char(now(), 'YYYY')", "EXTRACT(year FROM now())", "trim(' x ')"] {
        let sql = format!("ALTER TABLE orders ADD COLUMN c text DEFAULT {default};");
        assert_eq!(lines("add-column-volatile-default", &sql), Vec::<usize>::new(), "{sql}");
    }
    // With facts: the database's function decides, stable or volatile.
    for (volatile, level) in [(false, None), (true, Some(Level::Error))] {
        let mut facts = facts_with("orders", TableFacts { rows: Some(1_000_000), ..TableFacts::default() });
        facts.volatile_functions.insert("make_code".into(), volatile);
        let report = lint_example(sql, &LintOptions::default(), Some(&facts));
        let found = report.findings.iter().find(|f| f.rule == "add-column-volatile-default").map(|f| f.level);
        assert_eq!(found, level, "volatile: {volatile}");
    }
    // A database without it: still unknown, and said so.
    let facts = facts_with("orders", TableFacts { rows: Some(1_000_000), ..TableFacts::default() });
    let report = lint_example(sql, &LintOptions::default(), Some(&facts));
    let f = report.findings.iter().find(|f| f.rule == "add-column-volatile-default").expect("a finding");
    assert_eq!(f.level, Level::Warning);
    assert!(f.message.contains("the database has no function of that name"), "{}", f.message);
}

/// Found on a real migration history (cal.com's): a column renamed away, or dropped, by an earlier
/// statement of the run is not there any more under that name; nor is a table renamed away.
#[test]
fn what_the_run_renamed_away_or_dropped_is_not_found_again() {
    let facts = facts_with(
        "t",
        TableFacts {
            rows: Some(5),
            columns: [("a", "int"), ("b", "int")]
                .into_iter()
                .map(|(c, ty)| (c.to_owned(), types::ColumnType::parse(ty).unwrap()))
                .collect(),
            ..TableFacts::default()
        },
    );
    let with = |rule: &str, sql: &str| lines_with(rule, sql, &LintOptions::default(), Some(&facts));
    let twice = "ALTER TABLE t RENAME COLUMN a TO a_old;\nALTER TABLE t RENAME COLUMN a TO a_old;\n";
    assert_eq!(with("object-not-found", twice), [2]);
    let dropped = "ALTER TABLE t DROP COLUMN b;\nALTER TABLE t DROP COLUMN b;\nALTER TABLE t ADD COLUMN b int;\n\
                   ALTER TABLE t ALTER COLUMN b SET NOT NULL;\n";
    assert_eq!(with("object-not-found", dropped), [2]);
    let renamed_then_dropped = "ALTER TABLE t RENAME COLUMN a TO c;\nALTER TABLE t DROP COLUMN c;\n\
                                ALTER TABLE t ALTER COLUMN a SET NOT NULL;\nALTER TABLE t ALTER COLUMN c SET NOT NULL;\n";
    assert_eq!(with("object-not-found", renamed_then_dropped), [3, 4]);
    let table = "ALTER TABLE t RENAME TO t2;\nALTER TABLE t ADD COLUMN x int;\nALTER TABLE t2 ADD COLUMN y int;\n";
    assert_eq!(with("object-not-found", table), [2]);
}

/// Found on real migration histories run by `migrate` (cal.com's, Lemmy's): an index on a table an
/// earlier pending file of the run makes was refused as an index on a live table. With the database's
/// facts saying the database lacks the table, it is the run's own, as one made in the same file is.
#[test]
fn a_table_an_earlier_file_of_the_run_makes_is_new_when_the_database_lacks_it() {
    let sql = "CREATE TABLE booking (id bigint, uid text);\n-- next file\nCREATE UNIQUE INDEX booking_uid ON booking (uid);\n";
    assert_eq!(lines("create-index-without-concurrently", sql), [1], "without facts: as before");
    let mut facts = Facts { server_version: 15, ..Facts::default() };
    facts.asked.insert("booking".into());
    facts.asked.insert("other".into());
    facts.tables.insert("other".into(), TableFacts { rows: Some(1_000_000), ..TableFacts::default() });
    let with = |sql: &str| lines_with("create-index-without-concurrently", sql, &LintOptions::default(), Some(&facts));
    assert_eq!(with(sql), Vec::<usize>::new());
    // A table the database has stays a live one, whoever made it.
    let live = "CREATE TABLE IF NOT EXISTS other (id int);\n-- next file\nCREATE INDEX other_id ON other (id);\n";
    assert_eq!(with(live), [1]);
}

/// Found by a battery of lint cases: with `-d`, the tables a `DROP TABLE` names (strings, not a
/// `RangeVar`) and the partition an `ATTACH PARTITION` names were never read, so the table was taken for
/// missing: `DROP TABLE IF EXISTS` of a live table with rows was no finding, and the partition was
/// "not found". They are read; and a table the facts were not read for is not taken for missing.
#[test]
fn tables_named_by_drop_and_attach_are_read_and_unread_ones_are_not_missing() {
    let file = |sql: &str| parse(SourceFile { name: "m.sql".into(), text: sql.into() }).unwrap();
    let named = named(&[file(
        "DROP TABLE IF EXISTS orgs, public.small;\nALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES IN (2025);\n",
    )]);
    let keys: Vec<String> = named.tables.iter().map(|t| t.key()).collect();
    for table in ["orgs", "small", "events", "events_2025"] {
        assert!(keys.iter().any(|k| k.ends_with(table)), "{table}: {keys:?}");
    }
    let mut facts = Facts { server_version: 15, ..Facts::default() };
    facts.asked.insert("orgs".into());
    facts.tables.insert("orgs".into(), TableFacts { rows: Some(20_001), ..TableFacts::default() });
    let with = |rule: &str, sql: &str| lines_with(rule, sql, &LintOptions::default(), Some(&facts));
    assert_eq!(with("drop-table", "DROP TABLE IF EXISTS orgs;"), [1]);
    // Not read for: nothing is known of it, so the drop is a drop.
    assert_eq!(with("drop-table", "DROP TABLE IF EXISTS unread;"), [1]);
    assert_eq!(
        with("object-not-found", "DROP TABLE unread;\nALTER TABLE unread2 ADD COLUMN a int;"),
        Vec::<usize>::new()
    );
}

/// Found by a lint battery: Django writes every type change as `TYPE t USING "col"::t`, the conversion
/// PostgreSQL makes without `USING`; a varchar widened so was called a rewrite, an error that made
/// `migrate` refuse a `max_length` increase.
#[test]
fn a_using_that_is_the_plain_conversion_rewrites_no_more_than_none() {
    let facts = facts_with(
        "users",
        TableFacts {
            rows: Some(1_000_000),
            columns: [("email", "character varying(100)"), ("bio", "text"), ("n", "integer")]
                .into_iter()
                .map(|(c, t)| (c.to_owned(), types::ColumnType::parse(t).unwrap()))
                .collect(),
            ..TableFacts::default()
        },
    );
    let with = |sql: &str| lines_with("alter-column-type", sql, &LintOptions::default(), Some(&facts));
    assert_eq!(
        with("ALTER TABLE users ALTER COLUMN email TYPE varchar(255) USING \"email\"::varchar(255);"),
        Vec::<usize>::new()
    );
    assert_eq!(with("ALTER TABLE users ALTER COLUMN bio TYPE text USING bio;"), Vec::<usize>::new());
    // A real conversion still rewrites.
    assert_eq!(with("ALTER TABLE users ALTER COLUMN email TYPE varchar(255) USING lower(email);"), [1]);
    assert_eq!(with("ALTER TABLE users ALTER COLUMN n TYPE bigint USING n::bigint;"), [1]);
}

/// Found by a lint battery: a constraint added `NOT VALID` and validated in the same transaction holds
/// the lock of its addition through the validation's scan, as without `NOT VALID`. Under `migrate`, which
/// runs each file in one transaction, the same holds in a file without `BEGIN`.
#[test]
fn a_constraint_validated_in_the_transaction_that_added_it_not_valid_is_a_finding() {
    let fk = "ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;";
    let check = "ALTER TABLE orders ADD CONSTRAINT orders_amount CHECK (amount > 0) NOT VALID;";
    let block = format!(
        "SET lock_timeout = '1s';\nBEGIN;\n{fk}\nALTER TABLE orders VALIDATE CONSTRAINT orders_user;\nCOMMIT;\n"
    );
    assert_eq!(lines("add-foreign-key-without-not-valid", &block), [4]);
    let apart = format!("SET lock_timeout = '1s';\n{check}\nALTER TABLE orders VALIDATE CONSTRAINT orders_amount;\n");
    assert_eq!(lines("add-check-without-not-valid", &apart), Vec::<usize>::new(), "autocommit: two transactions");
    let migrate = LintOptions { assume_lock_timeout: true, ..LintOptions::default() };
    assert_eq!(lines_with("add-check-without-not-valid", &apart, &migrate, None), [3]);
    let after_commit = format!("BEGIN;\n{check}\nCOMMIT;\nALTER TABLE orders VALIDATE CONSTRAINT orders_amount;\n");
    assert_eq!(lines("add-check-without-not-valid", &after_commit), Vec::<usize>::new());
}

/// Found by a lint battery: goose, sql-migrate and dbmate run a file's up section in a transaction unless
/// it says not to, so `CREATE INDEX CONCURRENTLY` there fails as inside `BEGIN`; under `migrate` (which
/// runs such a statement on its own) it does not.
#[test]
fn concurrently_in_a_file_its_tool_wraps_in_a_transaction_is_a_finding() {
    let goose = "-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- +goose Down\nDROP INDEX i;\n";
    assert_eq!(lines("concurrently-in-transaction", goose), [2]);
    let marked = format!("-- +goose NO TRANSACTION\n{goose}");
    assert_eq!(lines("concurrently-in-transaction", &marked), Vec::<usize>::new());
    let dbmate = "-- migrate:up\nCREATE INDEX CONCURRENTLY i ON t (a);\n";
    assert_eq!(lines("concurrently-in-transaction", dbmate), [2]);
    let migrate = LintOptions { assume_lock_timeout: true, ..LintOptions::default() };
    assert_eq!(lines_with("concurrently-in-transaction", goose, &migrate, None), Vec::<usize>::new());
}

/// Found by a lint battery: `SELECT set_config('lock_timeout', '2s', false)` sets a lock timeout as `SET`
/// does; and a quoted `"char"`, the one-byte internal type, is no `char(n)`.
#[test]
fn set_config_sets_a_lock_timeout_and_quoted_char_is_not_char_n() {
    let index = "CREATE INDEX CONCURRENTLY i ON orders (a);\nALTER TABLE orders ADD COLUMN b text;\n";
    assert_eq!(lines("missing-lock-timeout", index), [2]);
    let set = "SELECT set_config('lock_timeout', '2s', false);";
    assert_eq!(lines("missing-lock-timeout", &format!("{set}\n{index}")), Vec::<usize>::new(), "{set}");
    // For the transaction only: in one.
    let local = "BEGIN;\nSELECT pg_catalog.set_config('lock_timeout', '2s', true);\nALTER TABLE orders ADD COLUMN b text;\nCOMMIT;";
    assert_eq!(lines("missing-lock-timeout", local), Vec::<usize>::new());
    assert_eq!(lines("missing-lock-timeout", &format!("SELECT set_config('lock_timeout', '0', false);\n{index}")), [3]);
    assert_eq!(lines("prefer-text-over-char", "CREATE TABLE t (a \"char\", b char(3));"), [1]);
    let report = lint_example("CREATE TABLE t (a \"char\");", &LintOptions::default(), None);
    assert!(!report.findings.iter().any(|f| f.rule == "prefer-text-over-char"), "{:?}", report.findings);
}

/// `ADD PRIMARY KEY USING INDEX` makes the index's columns NOT NULL as `SET NOT NULL` does: a column that
/// may hold NULL is scanned for under the ACCESS EXCLUSIVE lock, unless a check validated earlier (in an
/// earlier file too) proves it.
#[test]
fn a_primary_key_using_an_index_of_a_nullable_column_scans_as_set_not_null_does() {
    let mut table = TableFacts { rows: Some(1_000_000), bytes: 50 << 20, ..TableFacts::default() };
    table.not_null.insert("n".to_owned());
    let mut facts = facts_with("orders", table);
    for (index, column) in [("orders_id", "id"), ("orders_n", "n")] {
        facts.indexes.insert(index.into());
        facts.index_columns.insert(index.into(), vec![column.into()]);
    }
    let with = |sql: &str| lines_with("set-not-null", sql, &LintOptions::default(), Some(&facts));
    assert_eq!(with("ALTER TABLE orders ADD CONSTRAINT pk PRIMARY KEY USING INDEX orders_id;"), [1]);
    assert_eq!(with("ALTER TABLE orders ADD CONSTRAINT pk PRIMARY KEY USING INDEX orders_n;"), Vec::<usize>::new());
    let run = "CREATE UNIQUE INDEX CONCURRENTLY orders_x ON orders (x);
ALTER TABLE orders ADD CONSTRAINT x_nn CHECK (x IS NOT NULL) NOT VALID;
-- next file
ALTER TABLE orders VALIDATE CONSTRAINT x_nn;
-- next file
ALTER TABLE orders ADD CONSTRAINT pk PRIMARY KEY USING INDEX orders_x;";
    assert_eq!(with(run), Vec::<usize>::new());
    assert_eq!(with(&run.replace("VALIDATE CONSTRAINT x_nn", "ALTER COLUMN y SET DEFAULT 1")), [1]);
}

#[test]
fn a_column_of_a_domain_with_constraints_rewrites_whatever_its_default() {
    let rule = "add-column-constrained-domain";
    // The run's own domains: made with a constraint, over one that has one, or given one later.
    let run = "CREATE DOMAIN qty AS integer CHECK (VALUE > 0);\nCREATE DOMAIN small_qty AS qty;\n\
               CREATE DOMAIN code AS text;\nCREATE DOMAIN tag AS text;\nALTER DOMAIN tag ADD CONSTRAINT short CHECK (length(VALUE) < 9);\n\
               CREATE DOMAIN name_nn AS text NOT NULL DEFAULT '';\n-- next file\n";
    let cases: &[(&str, usize)] = &[
        ("ALTER TABLE orders ADD COLUMN n qty;", 1),
        ("ALTER TABLE orders ADD COLUMN n qty DEFAULT 1;", 1),
        ("ALTER TABLE orders ADD COLUMN n small_qty DEFAULT 1;", 1),
        ("ALTER TABLE orders ADD COLUMN t tag;", 1),
        ("ALTER TABLE orders ADD COLUMN m name_nn;", 1),
        ("ALTER TABLE orders ADD COLUMN c code DEFAULT 'x';", 0),
        // An array of the domain checks nothing when added.
        ("ALTER TABLE orders ADD COLUMN ns qty[];", 0),
        // A table made in the same file has no rows to check.
        ("CREATE TABLE fresh (id bigint);\nALTER TABLE fresh ADD COLUMN n qty;", 0),
    ];
    for (sql, expected) in cases {
        assert_eq!(lines(rule, &format!("{run}{sql}")).len(), *expected, "{sql}");
    }
    // The database's domains, from the facts.
    let mut facts =
        facts_with("orders", TableFacts { rows: Some(1_000_000), bytes: 50 << 20, ..TableFacts::default() });
    facts.constrained_domains.insert("app.positive".into());
    let sql = "ALTER TABLE orders ADD COLUMN n app.positive DEFAULT 1;";
    let report = lint_example(sql, &LintOptions::default(), Some(&facts));
    let f = report.findings.iter().find(|f| f.rule == rule).expect("a finding from the facts");
    assert_eq!(f.level, Level::Error);
    assert!(f.message.contains("domain `app.positive`, which has constraints"), "{}", f.message);
    assert!(
        lines_with(rule, "ALTER TABLE orders ADD COLUMN n app.other;", &LintOptions::default(), Some(&facts))
            .is_empty()
    );
    // The facts are asked about the new columns' types that may be domains, and no others.
    let files = [parse(SourceFile {
        name: "a.sql".into(),
        text: "ALTER TABLE orders ADD COLUMN a app.positive, ADD COLUMN b integer, ADD COLUMN c qty[], ADD COLUMN d \"Qty\";"
            .into(),
    })
    .unwrap()];
    let types: Vec<String> = named(&files).column_types.iter().map(|t| t.key()).collect();
    assert_eq!(types, ["app.positive", "Qty"]);
}

#[test]
fn an_enum_value_used_in_the_transaction_that_added_it_fails() {
    let rule = "enum-value-used-in-transaction";
    let cases: &[(&str, &[usize])] = &[
        ("BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nUPDATE people SET feeling = 'meh' WHERE id = 1;\nCOMMIT;", &[3]),
        ("BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nINSERT INTO people (feeling) VALUES ('meh');\nCOMMIT;", &[3]),
        (
            "BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nALTER TABLE people ALTER feeling SET DEFAULT 'meh';\nCOMMIT;",
            &[3],
        ),
        (
            "BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nDO $$ BEGIN UPDATE people SET feeling = 'meh'::mood WHERE id = 1; END $$;\nCOMMIT;",
            &[3],
        ),
        // Committed first, or another value: nothing.
        ("BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nCOMMIT;\nSELECT 'meh'::mood;", &[]),
        ("BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nSELECT 'ok'::mood;\nCOMMIT;", &[]),
        // Outside a transaction each statement commits on its own.
        ("ALTER TYPE mood ADD VALUE 'meh';\nSELECT 'meh'::mood;", &[]),
        // A cast to another type is not a use of the value.
        ("BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nSELECT 'meh'::text;\nCOMMIT;", &[]),
        // The same string in a table whose columns are known and none of the type.
        (
            "CREATE TABLE notes (body text);\n-- next file\nBEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nINSERT INTO notes VALUES ('meh');\nCOMMIT;",
            &[],
        ),
        (
            "CREATE TABLE people (feeling mood);\n-- next file\nBEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nINSERT INTO people VALUES ('meh');\nCOMMIT;",
            &[3],
        ),
        // A type made in the same transaction: refused before PostgreSQL 17, allowed from 17.
        (
            "BEGIN;\nCREATE TYPE mood AS ENUM ('ok');\nALTER TYPE mood ADD VALUE 'meh';\nSELECT 'meh'::mood;\nCOMMIT;",
            &[4],
        ),
        (
            "-- pg 17\nBEGIN;\nCREATE TYPE mood AS ENUM ('ok');\nALTER TYPE mood ADD VALUE 'meh';\nSELECT 'meh'::mood;\nCOMMIT;",
            &[],
        ),
        // A tool's transaction around the file (dbmate) counts as one.
        ("-- migrate:up\nALTER TYPE mood ADD VALUE 'meh';\nUPDATE people SET feeling = 'meh' WHERE id = 1;", &[3]),
    ];
    for (sql, expected) in cases {
        assert_eq!(lines(rule, sql), *expected, "{sql}");
    }
    // Under `migrate` the file is one transaction, with or without its own `BEGIN`.
    let migrate = LintOptions { assume_lock_timeout: true, ..LintOptions::default() };
    let sql = "ALTER TYPE mood ADD VALUE 'meh';\nUPDATE people SET feeling = 'meh' WHERE id = 1;";
    assert_eq!(lines_with(rule, sql, &migrate, None), [2]);
    // Unless a statement of it cannot run in one: then `migrate` commits each statement on its own.
    let sql = format!("{sql}\nCREATE INDEX CONCURRENTLY people_feeling ON people (feeling);");
    assert_eq!(lines_with(rule, &sql, &migrate, None), Vec::<usize>::new());
    // The database's columns: a table with a column of the type, and one without.
    let mut columns = std::collections::HashMap::new();
    columns.insert("feeling".to_owned(), super::types::ColumnType::parse("mood").unwrap());
    let facts = facts_with("people", TableFacts { columns, ..TableFacts::default() });
    let sql = "BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nUPDATE people SET feeling = 'meh' WHERE id = 1;\nUPDATE notes SET body = 'meh' WHERE id = 1;\nCOMMIT;";
    assert_eq!(lines_with(rule, sql, &LintOptions::default(), Some(&facts)), [3, 4]);
    let mut notes = facts.clone();
    notes.tables.insert("notes".into(), TableFacts::default());
    assert_eq!(lines_with(rule, sql, &LintOptions::default(), Some(&notes)), [3]);
}

#[test]
fn syntax_newer_than_the_target_server_is_a_finding() {
    let rule = "needs-newer-server";
    let cases: &[(&str, &[usize])] = &[
        ("-- pg 13\nALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;", &[2]),
        ("-- pg 14\nALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;", &[]),
        ("-- pg 13\nALTER TABLE events DETACH PARTITION events_2020 FINALIZE;", &[2]),
        ("-- pg 13\nALTER TABLE events DETACH PARTITION events_2020;", &[]),
        ("-- pg 14\nMERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v;", &[2]),
        ("-- pg 14\nCREATE UNIQUE INDEX CONCURRENTLY i ON t (a) NULLS NOT DISTINCT;", &[2]),
        ("-- pg 14\nCREATE TABLE t (a int UNIQUE NULLS NOT DISTINCT);", &[2]),
        ("-- pg 15\nCREATE TABLE t (a int UNIQUE NULLS NOT DISTINCT);", &[]),
        ("-- pg 11\nREINDEX INDEX CONCURRENTLY i;", &[2]),
        ("-- pg 11\nALTER TABLE t ADD COLUMN b int GENERATED ALWAYS AS (a * 2) STORED;", &[2]),
        ("-- pg 12\nALTER TABLE t ADD COLUMN b int GENERATED ALWAYS AS (a * 2) STORED;", &[]),
        // Without `STORED` the column is virtual, which only 18 has.
        ("-- pg 17\nALTER TABLE t ADD COLUMN b int GENERATED ALWAYS AS (a * 2);", &[2]),
        ("-- pg 18\nALTER TABLE t ADD COLUMN b int GENERATED ALWAYS AS (a * 2) VIRTUAL;", &[]),
        ("-- pg 13\nCREATE OR REPLACE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();", &[2]),
        ("-- pg 12\nDROP DATABASE old WITH (FORCE);", &[2]),
        ("-- pg 13\nALTER TABLE t ALTER COLUMN body SET COMPRESSION lz4;", &[2]),
        // SQL/JSON and MERGE's later clauses: each refused by the version before, measured on 15, 16 and 17.
        ("-- pg 15\nUPDATE t SET ok = body IS JSON WHERE id = 1;", &[2]),
        ("-- pg 15\nUPDATE t SET doc = JSON_OBJECT('a': v) WHERE id = 1;", &[2]),
        ("-- pg 15\nUPDATE t SET doc = json_object('{a,1}') WHERE id = 1;", &[]),
        ("-- pg 15\nUPDATE t SET doc = JSON_ARRAY(v) WHERE id = 1;", &[2]),
        ("-- pg 15\nINSERT INTO s SELECT JSON_ARRAYAGG(v), JSON_OBJECTAGG('k': v) FROM t;", &[2]),
        ("-- pg 16\nUPDATE t SET doc = JSON_OBJECT('a': v) WHERE id = 1;", &[]),
        ("-- pg 16\nINSERT INTO s SELECT jt.a FROM t, JSON_TABLE(t.doc, '$[*]' COLUMNS (a int PATH '$')) jt;", &[2]),
        ("-- pg 16\nUPDATE t SET v = JSON_VALUE(doc, '$.v' RETURNING int) WHERE id = 1;", &[2]),
        ("-- pg 16\nDELETE FROM t WHERE JSON_EXISTS(doc, '$.gone');", &[2]),
        ("-- pg 16\nUPDATE t SET d = JSON_SCALAR(v), e = JSON_SERIALIZE(doc) WHERE id = 1;", &[2]),
        ("-- pg 17\nDELETE FROM t WHERE JSON_EXISTS(doc, '$.gone');", &[]),
        ("-- pg 16\nMERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING t.id;", &[2]),
        ("-- pg 16\nMERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE;", &[2]),
        // (`NOT MATCHED BY TARGET`, 17's spelling of it, parses to the same tree: not told apart.)
        ("-- pg 16\nMERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id);", &[]),
        ("-- pg 17\nMERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING t.id;", &[]),
    ];
    for (sql, expected) in cases {
        assert_eq!(lines(rule, sql), *expected, "{sql}");
    }
    // Adding a virtual generated column writes nothing; a stored one rewrites the table.
    let add = |kind: &str| format!("-- pg 18\nALTER TABLE t ADD COLUMN b int GENERATED ALWAYS AS (a * 2) {kind};");
    assert_eq!(lines("add-column-volatile-default", &add("VIRTUAL")), Vec::<usize>::new());
    assert_eq!(lines("add-column-volatile-default", &add("STORED")), [2]);
    let report =
        lint_example("-- pg 13\nMERGE INTO t USING s ON true WHEN MATCHED THEN DELETE;", &LintOptions::default(), None);
    let f = report.findings.iter().find(|f| f.rule == rule).unwrap();
    assert_eq!(f.message, "`MERGE` needs PostgreSQL 15 or later: on PostgreSQL 13 the statement fails");
}

/// Found by linting real migration histories (Supabase's storage and auth, cal.com): triggers, policies,
/// rules and a new table's foreign keys lock existing tables, and lint said nothing of the lock. Each
/// statement's lock as `pg_locks` showed it on PostgreSQL 15.
#[test]
fn triggers_policies_rules_and_new_foreign_keys_wait_for_their_tables_locks() {
    let cases: &[(&str, &str)] = &[
        ("CREATE TRIGGER t BEFORE INSERT ON c FOR EACH ROW EXECUTE FUNCTION f();", "a SHARE ROW EXCLUSIVE lock on `c`"),
        (
            "CREATE OR REPLACE TRIGGER t AFTER UPDATE ON s.c FOR EACH ROW EXECUTE FUNCTION f();",
            "a SHARE ROW EXCLUSIVE lock on `s.c`",
        ),
        ("DROP TRIGGER IF EXISTS t ON s.c;", "an ACCESS EXCLUSIVE lock on `s.c`"),
        ("CREATE POLICY p ON c USING (true);", "an ACCESS EXCLUSIVE lock on `c`"),
        ("ALTER POLICY p ON c USING (false);", "an ACCESS EXCLUSIVE lock on `c`"),
        ("DROP POLICY p ON c;", "an ACCESS EXCLUSIVE lock on `c`"),
        ("CREATE RULE r AS ON UPDATE TO c DO INSTEAD NOTHING;", "an ACCESS EXCLUSIVE lock on `c`"),
        ("ALTER TABLE c DISABLE TRIGGER ALL;", "a SHARE ROW EXCLUSIVE lock on `c`"),
        ("ALTER TABLE c DISABLE TRIGGER t, ADD COLUMN x int;", "an ACCESS EXCLUSIVE lock on `c`"),
        ("CREATE TABLE n (id bigint PRIMARY KEY, pid bigint REFERENCES p);", "a SHARE ROW EXCLUSIVE lock on `p`"),
        (
            "CREATE TABLE n (id bigint PRIMARY KEY, pid bigint);\nALTER TABLE n ADD CONSTRAINT n_p FOREIGN KEY (pid) REFERENCES p (id);",
            "a SHARE ROW EXCLUSIVE lock on `p`",
        ),
    ];
    for (sql, lock) in cases {
        let report = lint_text("m.sql", sql, &LintOptions::default()).unwrap();
        let found: Vec<&Finding> = report.findings.iter().filter(|f| f.rule == "missing-lock-timeout").collect();
        assert_eq!(found.len(), 1, "{sql}: {:#?}", report.findings);
        assert!(found[0].message.contains(lock), "{sql}: {}", found[0].message);
    }
    // A table made in the file, referencing itself or another new table, waits for nobody.
    let sql = "CREATE TABLE a (id bigint PRIMARY KEY, up bigint REFERENCES a);\n\
               CREATE TABLE b (id bigint PRIMARY KEY, a_id bigint REFERENCES a);\n\
               CREATE TRIGGER t BEFORE INSERT ON b FOR EACH ROW EXECUTE FUNCTION f();";
    let report = lint_text("m.sql", sql, &LintOptions::default()).unwrap();
    assert!(report.findings.iter().all(|f| f.rule != "missing-lock-timeout"), "{:#?}", report.findings);
}

/// Found by linting cal.com's Prisma history whole: a column one migration added and one three weeks
/// later dropped was no `drop-column`, as if the two ran together; the values written in between are lost.
/// Without facts, only a column added in the same file is the file's own.
#[test]
fn a_column_an_earlier_file_added_holds_data_when_a_later_file_drops_or_rewrites_it() {
    let options = LintOptions::default();
    let parse = |name: &str, sql: &str| parse(SourceFile { name: name.into(), text: sql.into() }).unwrap();
    let files = [
        parse("0001.sql", "SET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN sc text;\n"),
        parse(
            "0002.sql",
            "SET lock_timeout = '2s';\nUPDATE orders SET sc = 'x';\nALTER TABLE orders DROP COLUMN sc;\n",
        ),
    ];
    let report = lint(&files, &options, None);
    let later: Vec<(&str, &str)> =
        report.findings.iter().filter(|f| f.file == "0002.sql").map(|f| (f.rule, f.message.as_str())).collect();
    assert!(later.iter().any(|(r, _)| *r == "update-without-where"), "{later:#?}");
    let (_, drop) = later.iter().find(|(r, _)| *r == "drop-column").expect("drop-column");
    assert!(drop.contains("an earlier file of this run added it"), "{drop}");
    // In one file: the file's own values.
    let one = [parse(
        "0001.sql",
        "SET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN sc text;\nUPDATE orders SET sc = 'x';\nALTER TABLE orders DROP COLUMN sc;\n",
    )];
    let rules: Vec<&str> = lint(&one, &options, None).findings.iter().map(|f| f.rule).collect();
    assert!(!rules.contains(&"drop-column") && !rules.contains(&"update-without-where"), "{rules:?}");
    assert!(rules.contains(&"backfill-in-one-transaction"), "{rules:?}");
}

#[test]
fn a_foreign_key_to_its_own_table_names_the_table_once() {
    let report = lint_example(
        "SET lock_timeout = '2s';\nALTER TABLE auth.tokens ADD CONSTRAINT up FOREIGN KEY (parent) REFERENCES auth.tokens (id);\n\
         ALTER TABLE orders ADD CONSTRAINT o_u FOREIGN KEY (user_id) REFERENCES users (id);",
        &LintOptions::default(),
        None,
    );
    let messages: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.rule == "add-foreign-key-without-not-valid")
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[0].ends_with("while `auth.tokens` is locked against writes"), "{}", messages[0]);
    assert!(messages[1].ends_with("while `orders` and `users` are locked against writes"), "{}", messages[1]);
}

/// Found in Mattermost's history: `DROP COLUMN IF EXISTS parentid` in a file after the one that dropped it
/// was a `drop-column`, though nothing was left to drop.
#[test]
fn a_column_the_run_dropped_already_is_no_loss_when_dropped_again() {
    let options = LintOptions::default();
    let parse = |name: &str, sql: &str| parse(SourceFile { name: name.into(), text: sql.into() }).unwrap();
    let files = [
        parse("0066.sql", "SET lock_timeout = '2s';\nALTER TABLE posts DROP COLUMN IF EXISTS parentid;\n"),
        parse("0095.sql", "SET lock_timeout = '2s';\nALTER TABLE posts DROP COLUMN IF EXISTS parentid;\n"),
    ];
    let report = lint(&files, &options, None);
    let drops: Vec<&str> =
        report.findings.iter().filter(|f| f.rule == "drop-column").map(|f| f.file.as_str()).collect();
    assert_eq!(drops, ["0066.sql"]);
}

/// Found on Matrix Synapse's delta 81/01 (`DROP INDEX event_relations_id;` then `CREATE UNIQUE INDEX
/// event_relations_id ...`): with `-d`, the `CREATE INDEX` was `index-already-exists`, though the index
/// it names was dropped the line before. The database's indexes are checked as the run leaves them:
/// dropped (by name or with their table) or renamed away, an index's name is free until made again.
#[test]
fn an_index_the_run_drops_or_renames_away_can_be_made_again() {
    let mut facts = facts_with("event_relations", TableFacts { rows: Some(10), bytes: 8192, ..TableFacts::default() });
    facts.tables.insert("orders".into(), TableFacts { rows: Some(10), bytes: 8192, ..TableFacts::default() });
    let table = pass::RelName { schema: Some("public".into()), name: "event_relations".into() };
    facts.indexes.insert("event_relations_id".into());
    facts.index_tables.insert("event_relations_id".into(), table);
    let with = |sql: &str| lines_with("index-already-exists", sql, &LintOptions::default(), Some(&facts));
    let create = "CREATE UNIQUE INDEX event_relations_id ON event_relations USING btree (event_id, relates_to_id);";
    let free = [
        format!("DROP INDEX event_relations_id;\n{create}"),
        format!("DROP INDEX CONCURRENTLY IF EXISTS event_relations_id;\n{create}"),
        format!("DROP INDEX public.event_relations_id;\n{create}"),
        format!("DROP INDEX other_idx, event_relations_id;\n{create}"),
        format!("DROP INDEX event_relations_id;\n-- next file\n{create}"),
        format!("ALTER INDEX event_relations_id RENAME TO event_relations_old;\n{create}"),
        // With its table: the name is free for an index on another table, and on the table made again by
        // an earlier file (which the database has: not a table new to the run).
        "DROP TABLE event_relations;\nCREATE INDEX event_relations_id ON orders (a);".to_owned(),
        format!("DROP TABLE event_relations;\nCREATE TABLE event_relations (event_id text);\n-- next file\n{create}"),
        // A constraint's index goes with it, or takes its new name.
        format!("ALTER TABLE event_relations DROP CONSTRAINT event_relations_id;\n{create}"),
        format!("ALTER TABLE event_relations RENAME CONSTRAINT event_relations_id TO event_relations_key;\n{create}"),
    ];
    for sql in &free {
        assert_eq!(with(sql), Vec::<usize>::new(), "{sql}");
    }
    let taken: &[(String, &[usize])] = &[
        (create.to_owned(), &[1]),
        (format!("DROP INDEX event_relations_id;\n{create}\n{create}"), &[3]),
        (format!("DROP INDEX other_idx;\n{create}"), &[2]),
        (format!("DROP INDEX app.event_relations_id;\n{create}"), &[2]),
        (format!("DROP TABLE orders;\n{create}"), &[2]),
        // A constraint of that name on another table has another index.
        (format!("ALTER TABLE orders DROP CONSTRAINT event_relations_id;\n{create}"), &[2]),
        (
            "ALTER INDEX event_relations_id RENAME TO event_relations_old;\n\
             CREATE INDEX event_relations_old ON orders (a);"
                .to_owned(),
            &[2],
        ),
    ];
    for (sql, lines) in taken {
        assert_eq!(with(sql), *lines, "{sql}");
    }
    // Dropped once, it is not there for a second `DROP INDEX IF EXISTS`; renamed, it is found under its
    // new name, on its table.
    let twice = "DROP INDEX event_relations_id;\nDROP INDEX IF EXISTS event_relations_id;";
    assert_eq!(lines_with("drop-index-without-concurrently", twice, &LintOptions::default(), Some(&facts)), [1]);
    let renamed = "SET lock_timeout = '1s';\nALTER INDEX event_relations_id RENAME TO e;\nDROP INDEX e;";
    let report = lint_example(renamed, &LintOptions::default(), Some(&facts));
    let f = report.findings.iter().find(|f| f.rule == "drop-index-without-concurrently").unwrap();
    assert!(f.message.contains("`event_relations` is small"), "{}", f.message);
    // What `-d` reads the facts of: the names an `ALTER INDEX` gives are indexes, not tables.
    let text = "ALTER INDEX a RENAME TO b;\nALTER INDEX s.c SET TABLESPACE fast;\n";
    let named = named(&[parse(SourceFile { name: "m.sql".into(), text: text.into() }).unwrap()]);
    assert_eq!(named.indexes.iter().map(pass::RelName::key).collect::<Vec<_>>(), ["a", "s.c"]);
    assert!(named.tables.is_empty(), "{:?}", named.tables);
}

/// `DROP INDEX` takes an ACCESS EXCLUSIVE lock on its table, as its own finding says, but wanted no
/// `lock_timeout`: a file of only `DROP INDEX IF EXISTS events_ts;` had no `missing-lock-timeout`, and in
/// `DROP INDEX x; CREATE INDEX x ...` it was on the `CREATE INDEX`. Nor did the other statements below;
/// each lock as `pg_locks` showed it on PostgreSQL 15.
#[test]
fn drop_index_and_the_renames_and_rebuilds_that_lock_a_table_want_a_lock_timeout() {
    let cases: &[(&str, usize, &str)] = &[
        ("DROP INDEX IF EXISTS events_ts;", 1, "an ACCESS EXCLUSIVE lock on the table of `events_ts`"),
        ("DROP INDEX x;\nCREATE INDEX x ON t (a);", 1, "an ACCESS EXCLUSIVE lock on the table of `x`"),
        ("DROP INDEX app.a, b;", 1, "an ACCESS EXCLUSIVE lock on the tables of `app.a`, `b`"),
        ("SELECT 1;\nALTER INDEX i SET TABLESPACE fast;", 2, "an ACCESS EXCLUSIVE lock on index `i`"),
        ("REINDEX SCHEMA app;", 1, "a SHARE lock on every table of schema `app`"),
        ("REINDEX DATABASE d;", 1, "a SHARE lock on every table of the database"),
        ("ALTER TRIGGER t ON c RENAME TO u;", 1, "an ACCESS EXCLUSIVE lock on `c`"),
        ("ALTER TABLE s.c RENAME CONSTRAINT k TO k2;", 1, "an ACCESS EXCLUSIVE lock on `s.c`"),
        ("ALTER POLICY p ON c RENAME TO q;", 1, "an ACCESS EXCLUSIVE lock on `c`"),
        ("ALTER RULE r ON c RENAME TO s;", 1, "an ACCESS EXCLUSIVE lock on `c`"),
        ("DROP VIEW v;\nCREATE VIEW v AS SELECT 1;", 1, "an ACCESS EXCLUSIVE lock on `v`"),
        ("DROP MATERIALIZED VIEW IF EXISTS m;", 1, "an ACCESS EXCLUSIVE lock on `m`"),
        ("ALTER VIEW v RENAME TO w;", 1, "an ACCESS EXCLUSIVE lock on `v`"),
    ];
    for (sql, line, lock) in cases {
        let report = lint_text("m.sql", sql, &LintOptions::default()).unwrap();
        let found: Vec<&Finding> = report.findings.iter().filter(|f| f.rule == "missing-lock-timeout").collect();
        assert_eq!(found.len(), 1, "{sql}: {:#?}", report.findings);
        assert_eq!(found[0].line, *line, "{sql}");
        assert!(found[0].message.contains(lock), "{sql}: {}", found[0].message);
    }
    // No lock that blocks reads or writes, or none on a table anyone uses yet.
    let none = [
        "DROP INDEX CONCURRENTLY i;",
        "REINDEX SCHEMA CONCURRENTLY app;",
        "ALTER INDEX i RENAME TO j;",
        "ALTER INDEX i SET (fillfactor = 70);",
        "COMMENT ON INDEX i IS 'by day';",
        "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);\nDROP INDEX i;",
        "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);\nALTER INDEX i SET TABLESPACE fast;",
        "SET lock_timeout = '2s';\nDROP INDEX i;",
        "CREATE VIEW v AS SELECT 1;\nDROP VIEW v;",
    ];
    for sql in none {
        assert_eq!(lines("missing-lock-timeout", sql), Vec::<usize>::new(), "{sql}");
    }
    // With facts: the index's table is named; an index the database lacks is dropped by no `IF EXISTS`.
    let mut facts = facts_with("orders", TableFacts { rows: Some(10), bytes: 8192, ..TableFacts::default() });
    facts.indexes.insert("orders_a_idx".into());
    facts
        .index_tables
        .insert("orders_a_idx".into(), pass::RelName { schema: Some("public".into()), name: "orders".into() });
    let report = lint_example("DROP INDEX orders_a_idx;", &LintOptions::default(), Some(&facts));
    let f = report.findings.iter().find(|f| f.rule == "missing-lock-timeout").unwrap();
    assert!(f.message.contains("an ACCESS EXCLUSIVE lock on `orders`"), "{}", f.message);
    let sql = "DROP INDEX IF EXISTS other_idx;";
    assert_eq!(lines_with("missing-lock-timeout", sql, &LintOptions::default(), Some(&facts)), Vec::<usize>::new());
}

/// The message of the one `missing-lock-timeout` finding of `sql`.
fn lock_timeout_message(sql: &str, facts: Option<&Facts>) -> String {
    let report = lint_example(sql, &LintOptions::default(), facts);
    let found: Vec<&Finding> = report.findings.iter().filter(|f| f.rule == "missing-lock-timeout").collect();
    assert_eq!(found.len(), 1, "{sql}: {:#?}", report.findings);
    found[0].message.clone()
}

/// With `-d`, `DROP SCHEMA app CASCADE` then the schema made again, and an index of a name it held made
/// again on the new table, was `index-already-exists`: the indexes that went with the schema were still
/// taken to exist. So with `DROP OWNED BY` a role owning the index's table (the facts name its owner).
#[test]
fn an_index_dropped_with_its_schema_or_its_owner_can_be_made_again() {
    let mut facts = facts_with("app.t", TableFacts { rows: Some(10), bytes: 8192, ..TableFacts::default() });
    facts.indexes.insert("app.t_a_idx".into());
    facts.index_tables.insert("app.t_a_idx".into(), pass::RelName { schema: Some("app".into()), name: "t".into() });
    facts.index_owners.insert("app.t_a_idx".into(), "alice".into());
    facts.current_user = "alice".into();
    facts.session_user = "postgres".into();
    let remade = "CREATE SCHEMA IF NOT EXISTS app;\nCREATE TABLE app.t (a int);\n-- next file\n\
                  CREATE INDEX t_a_idx ON app.t (a);";
    let with = |before: &str| {
        let sql = format!("{before}\n{remade}");
        lines_with("index-already-exists", &sql, &LintOptions::default(), Some(&facts))
    };
    for before in [
        "DROP SCHEMA app CASCADE;",
        "DROP SCHEMA IF EXISTS other, app CASCADE;",
        "DROP OWNED BY alice;",
        "DROP OWNED BY bob, alice CASCADE;",
        "DROP OWNED BY CURRENT_USER;",
    ] {
        assert_eq!(with(before), Vec::<usize>::new(), "{before}");
    }
    // Without `CASCADE` a schema with tables is not dropped; another schema's or role's drop leaves it.
    for before in
        ["DROP SCHEMA app;", "DROP SCHEMA other CASCADE;", "DROP OWNED BY bob;", "DROP OWNED BY SESSION_USER;"]
    {
        assert_eq!(with(before), [1], "{before}");
    }
}

/// `CREATE OR REPLACE VIEW` of a view that exists locks it ACCESS EXCLUSIVE (measured on 15, as `DROP
/// VIEW` does), and wanted no `lock_timeout`. A view made or dropped earlier in the file holds no lock
/// anyone waits for; without `-d`, one the file did not make is taken to exist; with it, the database says.
#[test]
fn create_or_replace_of_an_existing_view_wants_a_lock_timeout() {
    let replace = "CREATE OR REPLACE VIEW v AS SELECT 1 AS one;";
    assert!(lock_timeout_message(replace, None).contains("an ACCESS EXCLUSIVE lock on `v`"));
    let later = format!("CREATE VIEW v AS SELECT 1 AS one;\n-- next file\n{replace}");
    assert!(lock_timeout_message(&later, None).contains("an ACCESS EXCLUSIVE lock on `v`"));
    let none = [
        format!("CREATE VIEW v AS SELECT 1 AS one;\n{replace}"),
        format!("SET lock_timeout = '2s';\n{replace}"),
        "CREATE OR REPLACE TEMP VIEW v AS SELECT 1 AS one;".to_owned(),
        "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';".to_owned(),
        "CREATE VIEW w AS SELECT 1 AS one;".to_owned(),
    ];
    for sql in &none {
        assert_eq!(lines("missing-lock-timeout", sql), Vec::<usize>::new(), "{sql}");
    }
    // `DROP VIEW` wants it once, for itself.
    assert_eq!(lines("missing-lock-timeout", &format!("SELECT 1;\nDROP VIEW v;\n{replace}")), [2]);
    let mut facts = Facts { server_version: 15, ..Facts::default() };
    assert_eq!(lines_with("missing-lock-timeout", replace, &LintOptions::default(), Some(&facts)), Vec::<usize>::new());
    facts.views.insert("v".into());
    assert!(lock_timeout_message(replace, Some(&facts)).contains("an ACCESS EXCLUSIVE lock on `v`"));
}

/// `REINDEX INDEX i` locks `i`'s table SHARE (its writes wait) and `i` ACCESS EXCLUSIVE (measured on 15);
/// the `missing-lock-timeout` message named the index as the table. With `-d` it names the table.
#[test]
fn reindex_of_an_index_wants_a_lock_timeout_for_its_table() {
    let sql = "REINDEX INDEX orders_a_idx;";
    let message = lock_timeout_message(sql, None);
    assert!(message.contains("a SHARE lock on the table of `orders_a_idx`"), "{message}");
    let mut facts =
        facts_with("orders", TableFacts { rows: Some(1_000_000), bytes: 50 << 20, ..TableFacts::default() });
    facts.indexes.insert("orders_a_idx".into());
    facts
        .index_tables
        .insert("orders_a_idx".into(), pass::RelName { schema: Some("public".into()), name: "orders".into() });
    let message = lock_timeout_message(sql, Some(&facts));
    assert!(message.contains("a SHARE lock on `orders` with no"), "{message}");
    // An index the file made is on a table it made (or locked already).
    let made = "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);\nREINDEX INDEX i;";
    assert_eq!(lines("missing-lock-timeout", made), Vec::<usize>::new());
    assert_eq!(lines("reindex-without-concurrently", made), Vec::<usize>::new());
}

/// Dropping a foreign key locks the table it references ACCESS EXCLUSIVE too (measured on 15: its
/// triggers there go); the `missing-lock-timeout` message named only the key's table. The key is known
/// when the run made it, or, with `-d`, from the database.
#[test]
fn dropping_a_foreign_key_wants_a_lock_timeout_for_both_tables() {
    let drop = "ALTER TABLE orders DROP CONSTRAINT orders_user_fk;";
    let made = format!(
        "SET lock_timeout = '2s';\n\
         ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\n\
         -- next file\n{drop}"
    );
    let message = lock_timeout_message(&made, None);
    assert!(message.contains("an ACCESS EXCLUSIVE lock on `orders` and `users` with no"), "{message}");
    // Another constraint, or a key lint does not know, is the table's alone.
    let message = lock_timeout_message(drop, None);
    assert!(message.contains("an ACCESS EXCLUSIVE lock on `orders` with no"), "{message}");
    let mut facts = facts_with(
        "orders",
        TableFacts {
            foreign_keys: vec![ForeignKeyFact {
                name: "orders_user_fk".into(),
                columns: vec!["user_id".into()],
                other: pass::RelName { schema: Some("shop".into()), name: "users".into() },
                referencing: true,
            }],
            ..TableFacts::default()
        },
    );
    let message = lock_timeout_message(drop, Some(&facts));
    assert!(message.contains("an ACCESS EXCLUSIVE lock on `orders` and `shop.users` with no"), "{message}");
    // The key seen from the table it references drops nothing of `users`.
    facts.tables.get_mut("orders").unwrap().foreign_keys[0].referencing = false;
    let message = lock_timeout_message(drop, Some(&facts));
    assert!(message.contains("an ACCESS EXCLUSIVE lock on `orders` with no"), "{message}");
    // In a transaction, both locks are held to its end.
    let held = format!("BEGIN;\n{drop}\nUPDATE accounts SET n = 0 WHERE id = 1;\nCOMMIT;");
    let facts_both = {
        let mut f = facts.clone();
        f.tables.get_mut("orders").unwrap().foreign_keys[0].referencing = true;
        f
    };
    let report = lint_example(&held, &LintOptions::default(), Some(&facts_both));
    let f = report.findings.iter().find(|f| f.rule == "statement-after-access-exclusive").unwrap();
    assert!(f.message.contains("took on `orders`, `shop.users`"), "{}", f.message);
}

/// Lint carries what a file does to the next, so a folder must be linted in the order `migrate` applies
/// it: the folder's files, as lint lists them, against `migrate`'s scan of the same folder.
#[test]
fn a_folder_is_linted_in_the_order_migrate_applies_it() {
    let folders: &[&[&str]] = &[
        &["V1__a.sql", "V1_1__b.sql", "V1_11__c.sql", "V1_2__d.sql", "V2__e.sql", "V10__f.sql", "U2__e.sql"],
        &["000001_a.up.sql", "000001_a.down.sql", "000002_b.up.sql", "000010_c.up.sql", "000010_c.down.sql"],
        &["1_a.sql", "2_b.sql", "10_c.sql", "0011_d.sql", "100_e.sql"],
        // Flyway's names beside plain numbered ones: by version, as `migrate` reads both.
        &["V1__a.sql", "2_b.sql", "V3__c.sql", "10_d.sql"],
    ];
    for names in folders {
        let dir = tempfile::tempdir().unwrap();
        for name in *names {
            std::fs::write(dir.path().join(name), "SELECT 1;\n").unwrap();
        }
        let linted = crate::dryrun::folder_migrations(dir.path()).unwrap();
        let applied: Vec<std::path::PathBuf> =
            crate::migrate::runner::scan(dir.path()).unwrap().into_iter().map(|m| m.path).collect();
        assert_eq!(linted, applied, "{names:?}");
    }
}

#[test]
fn copy_from_stdin_rows_are_data_and_statements_after_them_keep_their_lines() {
    // A seed as `pg_dump` writes it: the rows (a quote, a `;`, a `\N`) are not SQL.
    let seed = "CREATE TABLE plan (id bigserial PRIMARY KEY, name text);\n\
                COPY public.plan (id, name) FROM stdin;\n\
                1\tit's free;\n\
                2\t\\N\n\
                \\.\n\
                CREATE INDEX plan_name ON orders (name);\n";
    assert_eq!(lines("explicit-id-without-setval", seed), [2]);
    assert_eq!(lines("create-index-without-concurrently", seed), [6]);
    let csv = "COPY plan FROM STDIN WITH (FORMAT csv);\n1,\"a\nb\"\n\\.\nDROP TABLE a;\n";
    assert_eq!(lines("drop-table", csv), [5], "a quoted value of CSV may hold a line end");
    let e = try_parse(SourceFile { name: "m.sql".into(), text: "SELECT 1;\nCOPY plan FROM stdin;\n1\n".into() })
        .unwrap_err();
    assert_eq!((e.line, e.column), (2, 1), "{}", e.message);
}

#[test]
fn under_migrate_a_value_used_after_the_files_own_commit_is_committed_by_then() {
    let options = LintOptions { assume_lock_timeout: true, ..LintOptions::default() };
    let rule = "enum-value-used-in-transaction";
    // Its own transactions are kept: the COMMIT commits the value before the UPDATE uses it.
    let own = "BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nCOMMIT;\nBEGIN;\nUPDATE people SET feeling = 'meh' WHERE feeling IS NULL;\nCOMMIT;\n";
    assert_eq!(lines_with(rule, own, &options, None), Vec::<usize>::new());
    // One block is the file's transaction, which migrate runs as one: the value is not committed yet.
    let one =
        "BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nUPDATE people SET feeling = 'meh' WHERE feeling IS NULL;\nCOMMIT;\n";
    assert_eq!(lines_with(rule, one, &options, None), [3]);
    // No block at all: migrate runs the file in one transaction of its own.
    let none = "ALTER TYPE mood ADD VALUE 'meh';\nUPDATE people SET feeling = 'meh' WHERE feeling IS NULL;\n";
    assert_eq!(lines_with(rule, none, &options, None), [2]);
}
