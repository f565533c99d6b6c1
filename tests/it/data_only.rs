//! Data-only restores as the people who run them: the tables' owner, who is not a superuser (the
//! workflow's table rollback runs so), and a superuser; triggers of every mode and foreign keys (plain,
//! self-referencing, on a partitioned table) must not fire during the load and must come back exactly
//! as they were, in a single transaction too; `--role` is honoured; a role that may not load a table is
//! refused before `--clean` empties anything.

use crate::dump_restore::{copy_schema, dump, fingerprint, pgsafe, run, run_ok};
use crate::support::TestDb;

/// Tables with every kind of trigger and foreign key a load could fire, and rows that only load when
/// none fires (a child row before the parent row it references, a row referencing a later row of its
/// own table). `audit` records every trigger that fires.
pub(crate) const SCHEMA: &str = "
CREATE TABLE audit (trigger_name text);
CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO public.audit VALUES (TG_NAME); RETURN NEW; END$$;
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent, next_id int REFERENCES child);
CREATE TABLE reading (id int, parent_id int REFERENCES parent, at date) PARTITION BY RANGE (at);
CREATE TABLE reading_2024 PARTITION OF reading FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TRIGGER t_origin AFTER INSERT ON child FOR EACH ROW EXECUTE FUNCTION note();
CREATE TRIGGER t_always AFTER INSERT ON child FOR EACH ROW EXECUTE FUNCTION note();
CREATE TRIGGER t_replica AFTER INSERT ON child FOR EACH ROW EXECUTE FUNCTION note();
CREATE TRIGGER t_off AFTER INSERT ON child FOR EACH ROW EXECUTE FUNCTION note();
CREATE TRIGGER t_partition BEFORE INSERT ON reading FOR EACH ROW EXECUTE FUNCTION note();
ALTER TABLE child ENABLE ALWAYS TRIGGER t_always;
ALTER TABLE child ENABLE REPLICA TRIGGER t_replica;
ALTER TABLE child DISABLE TRIGGER t_off;
";

pub(crate) const DATA: &str = "
INSERT INTO parent SELECT i FROM generate_series(1, 2000) i;
INSERT INTO child SELECT i, 1 + i % 2000, NULL FROM generate_series(1, 3000) i;
UPDATE child SET next_id = id + 1 WHERE id < 3000;
INSERT INTO reading SELECT i, 1 + i % 2000, date '2024-01-01' + i % 300 FROM generate_series(1, 3000) i;
TRUNCATE audit;
";

/// Every trigger's mode and every foreign key's validity in `db`: what must come back unchanged.
pub(crate) fn triggers_and_keys(db: &TestDb) -> String {
    db.psql(
        "SELECT string_agg(tgrelid::regclass::text || '.' || tgname || '=' || tgenabled::text, ' '
                           ORDER BY tgrelid::regclass::text, tgname)
           FROM pg_trigger WHERE NOT tgisinternal;
         SELECT string_agg(conrelid::regclass::text || '.' || conname || '=' || convalidated || ':'
                           || pg_get_constraintdef(oid), ' '
                           ORDER BY conrelid::regclass::text, conname)
           FROM pg_constraint WHERE contype = 'f';",
    )
}

/// A login role that is not a superuser, owning every table and the trigger function of `db`, and a
/// connection string that logs in as it.
pub(crate) fn owner_of(db: &TestDb, role: &str) -> String {
    db.psql(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
           CREATE ROLE {role} LOGIN PASSWORD 'owner-pw'; END IF; END $$;
         GRANT CREATE ON SCHEMA public TO {role};
         ALTER TABLE audit OWNER TO {role}; ALTER TABLE parent OWNER TO {role}; ALTER TABLE child OWNER TO {role};
         ALTER TABLE reading OWNER TO {role}; ALTER TABLE reading_2024 OWNER TO {role};
         ALTER FUNCTION note() OWNER TO {role};"
    ));
    format!("{} user={role} password=owner-pw", db.conn_string())
}

/// A source with the rows, a target with the schema owned by `role`, and the archive.
fn source_and_target(hint: &str, role: &str) -> (TestDb, TestDb, String, tempfile::TempDir, std::path::PathBuf) {
    let src = TestDb::new(&format!("{hint}_src"));
    src.psql(SCHEMA);
    src.psql(DATA);
    let dst = TestDb::new(&format!("{hint}_dst"));
    copy_schema(&src, &dst);
    let as_owner = owner_of(&dst, role);
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &["--exclude-table-data", "audit"]);
    (src, dst, as_owner, dir, archive)
}

fn assert_restored(src: &TestDb, dst: &TestDb, before: &str) {
    for table in ["parent", "child", "reading"] {
        assert_eq!(fingerprint(dst, table), fingerprint(src, table), "{table}");
    }
    assert_eq!(dst.psql("SELECT count(*) FROM audit"), "0\n", "no trigger may fire during the load");
    assert_eq!(triggers_and_keys(dst), before, "triggers and foreign keys must come back as they were");
}

#[test]
fn the_tables_owner_restores_data_with_foreign_keys_and_triggers() {
    // Before the fix: `permission denied: "RI_ConstraintTrigger_c_..." is a system trigger`.
    let (src, dst, as_owner, _dir, archive) = source_and_target("owner_data", "pgsafe_owner_data");
    let before = triggers_and_keys(&dst);
    assert!(before.contains("child.t_always=A") && before.contains("child.t_off=D"), "{before}");
    let (code, stdout, stderr) =
        run(pgsafe().args(["restore", "--data-only", "-q", "-j", "2", "--json", "-d", &as_owner]).arg(&archive));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"triggers\": \"disable_triggers\""), "{stdout}");
    assert_restored(&src, &dst, &before);

    // Again, all in one transaction: before the fix it committed with the triggers off.
    let (code, _, stderr) = run(pgsafe()
        .args(["restore", "--data-only", "-q", "--clean", "--single-transaction", "-d", &as_owner])
        .arg(&archive));
    assert_eq!(code, 0, "{stderr}");
    assert_restored(&src, &dst, &before);
}

#[test]
fn a_superusers_load_fires_no_always_or_replica_trigger_and_puts_every_mode_back() {
    // Before the fix, `session_replication_role = replica` left ENABLE ALWAYS and ENABLE REPLICA
    // triggers firing, and the single-transaction restore never enabled the triggers again.
    let (src, dst, _, _dir, archive) = source_and_target("super_data", "pgsafe_owner_super");
    let before = triggers_and_keys(&dst);
    for extra in [&["-j", "2"][..], &["--clean", "--single-transaction"][..]] {
        let (code, _, stderr) =
            run(pgsafe().args(["restore", "--data-only", "-q", "-d", &dst.conn_string()]).args(extra).arg(&archive));
        assert_eq!(code, 0, "{extra:?}: {stderr}");
        assert_restored(&src, &dst, &before);
    }
}

#[test]
fn an_owners_restore_that_breaks_a_foreign_key_names_it_and_changes_no_key_or_trigger() {
    let (src, dst, as_owner, dir, _) = source_and_target("owner_fk", "pgsafe_owner_fk");
    let before = triggers_and_keys(&dst);
    // Only the children: their parents are missing in the target.
    let archive = dump(&src, dir.path(), &["-t", "public.child"]);
    // All in one transaction: the keys are checked after the load, violations named, nothing kept.
    let (code, _, stderr) =
        run(pgsafe().args(["restore", "--data-only", "-q", "--single-transaction", "-d", &as_owner]).arg(&archive));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "foreign key `child_parent_id_fkey` of `public.child`: 3000 rows reference keys missing from `public.parent`"
        ) && stderr.contains("nothing was restored"),
        "{stderr}"
    );
    assert_eq!(dst.psql("SELECT count(*) FROM child"), "0\n");
    assert_eq!(triggers_and_keys(&dst), before);
    // In parallel: the key checks each row as it loads, so the load stops at the first row that breaks it.
    let (code, _, stderr) = run(pgsafe().args(["restore", "--data-only", "-q", "-d", &as_owner]).arg(&archive));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("child_parent_id_fkey") && stderr.contains("the restore stopped part way"), "{stderr}");
    assert!(stderr.contains("their triggers and foreign keys are as they were"), "{stderr}");
    assert_eq!(triggers_and_keys(&dst), before);
}

#[test]
fn an_owners_restore_loads_a_self_referencing_partitioned_table_cut_into_many_parts() {
    // A key on a partitioned table that refers to the table itself cannot be satisfied by an order of
    // parts: the table loads in one transaction that drops the key and adds it back. (Before 18 such a
    // key cannot come back NOT VALID, and with the key on, rows referencing later parts broke the load.)
    let src = TestDb::new("owner_tree_src");
    src.psql(
        "CREATE TABLE tree (id int, at date, parent_id int, PRIMARY KEY (id, at),
           FOREIGN KEY (parent_id, at) REFERENCES tree (id, at)) PARTITION BY RANGE (at);
         CREATE TABLE tree_a PARTITION OF tree FOR VALUES FROM ('2024-01-01') TO ('2024-07-01');
         CREATE TABLE tree_b PARTITION OF tree FOR VALUES FROM ('2024-07-01') TO ('2025-01-01');
         COMMENT ON CONSTRAINT tree_parent_id_at_fkey ON tree IS 'each node in its parent''s period';
         INSERT INTO tree SELECT i, date '2024-01-01' + (i % 2) * 200, NULL FROM generate_series(1, 200000) i;
         UPDATE tree SET parent_id = id + 2 WHERE id <= 199998;",
    );
    let dst = TestDb::new("owner_tree_dst");
    copy_schema(&src, &dst);
    dst.psql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgsafe_owner_tree') THEN
           CREATE ROLE pgsafe_owner_tree LOGIN PASSWORD 'owner-pw'; END IF; END $$;
         ALTER TABLE tree OWNER TO pgsafe_owner_tree; ALTER TABLE tree_a OWNER TO pgsafe_owner_tree;
         ALTER TABLE tree_b OWNER TO pgsafe_owner_tree;",
    );
    let as_owner = format!("{} user=pgsafe_owner_tree password=owner-pw", dst.conn_string());
    let before = triggers_and_keys(&dst)
        + &dst.psql("SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conname = 'tree_parent_id_at_fkey' AND conparentid = 0");
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &["-j", "2", "--part-size", "2"]);
    let parts = run_ok(pgsafe().args(["restore", "--list"]).arg(&archive)).matches("; data; ").count();
    assert!(parts > 2, "the tables must be cut into several parts: {parts}");
    let (code, _, stderr) =
        run(pgsafe().args(["restore", "--data-only", "-q", "-j", "2", "-d", &as_owner]).arg(&archive));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fingerprint(&dst, "tree"), fingerprint(&src, "tree"));
    let after = triggers_and_keys(&dst)
        + &dst.psql("SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conname = 'tree_parent_id_at_fkey' AND conparentid = 0");
    assert_eq!(after, before, "the key comes back valid, with its comment");
}

#[test]
fn role_is_honoured_by_a_data_only_restore() {
    // Before the fix `--role` was silently ignored with `--data-only`: the load ran as the login role.
    let (src, dst, _, _dir, archive) = source_and_target("role_data", "pgsafe_owner_role");
    dst.psql("ALTER TABLE reading_2024 OWNER TO postgres; REVOKE ALL ON reading_2024 FROM PUBLIC;");
    let (code, _, stderr) = run(pgsafe()
        .args(["restore", "--data-only", "-q", "--role", "pgsafe_owner_role", "-d", &dst.conn_string()])
        .arg(&archive));
    assert_eq!(code, 2, "the role may not write `reading_2024`: {stderr}");
    assert!(stderr.contains("reading_2024") && stderr.contains("nothing was restored"), "{stderr}");
    assert_eq!(dst.psql("SELECT count(*) FROM child"), "0\n");

    dst.psql("ALTER TABLE reading_2024 OWNER TO pgsafe_owner_role;");
    let before = triggers_and_keys(&dst);
    let (code, stdout, stderr) = run(pgsafe()
        .args(["restore", "--data-only", "-q", "--json", "--role", "pgsafe_owner_role", "-d", &dst.conn_string()])
        .arg(&archive));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("\"triggers\": \"disable_triggers\""),
        "the load ran as the role, not the superuser: {stdout}"
    );
    assert_restored(&src, &dst, &before);
}

#[test]
fn a_data_only_clean_by_a_role_that_cannot_load_a_table_refuses_before_emptying_anything() {
    // Before the fix the `TRUNCATE` of `--clean` was committed, then `ALTER TABLE public.t DISABLE TRIGGER
    // trg` failed ("must be owner of table t"): the tables went from 100 rows to none, and the hint said
    // to restore again with `--clean`, which failed the same way.
    let src = TestDb::new("rights_src");
    src.psql(
        "CREATE TABLE t (id int); CREATE TABLE u (id int);
         CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
         CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION tf();
         INSERT INTO t SELECT generate_series(1, 100); INSERT INTO u SELECT generate_series(1, 100);",
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);
    let dst = TestDb::new("rights_dst");
    run_ok(pgsafe().args(["restore", "-q", "-d", &dst.conn_string()]).arg(&archive));
    // The tables' owner, who is not a superuser, and a role that may read, write and empty them.
    dst.psql(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgsafe_rights_owner') THEN
             CREATE ROLE pgsafe_rights_owner NOLOGIN; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgsafe_rights_etl') THEN
             CREATE ROLE pgsafe_rights_etl LOGIN PASSWORD 'etl-pw'; END IF; END $$;
         REVOKE pgsafe_rights_owner FROM pgsafe_rights_etl;
         ALTER TABLE t OWNER TO pgsafe_rights_owner; ALTER TABLE u OWNER TO pgsafe_rights_owner;
         GRANT SELECT, INSERT, TRUNCATE ON t, u TO pgsafe_rights_etl;",
    );
    let as_etl = format!("{} user=pgsafe_rights_etl password=etl-pw", dst.conn_string());
    let counts = "SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM u), (SELECT tgenabled FROM pg_trigger WHERE tgname = 'trg')";
    let restore = |extra: &[&str]| {
        run(pgsafe().args(["restore", "--data-only", "--clean", "-q", "-d", &as_etl]).args(extra).arg(&archive))
    };

    let (code, _, stderr) = restore(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`public.t`") && stderr.contains("owner") && stderr.contains("nothing was emptied"),
        "the table and what the role lacks are named: {stderr}"
    );
    assert!(
        stderr.contains("hint: ")
            && stderr.contains("`--role pgsafe_rights_owner`")
            && !stderr.contains("again with `--clean`"),
        "{stderr}"
    );
    assert_eq!(dst.psql(counts), "100|100|O\n", "nothing was emptied");

    // Without the right to write a table, it is the same: refused by name before anything is emptied.
    dst.psql("REVOKE INSERT ON u FROM pgsafe_rights_etl;");
    let (code, _, stderr) = restore(&["-t", "u"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`public.u`") && stderr.contains("nothing was emptied"), "{stderr}");
    assert!(stderr.contains("hint: ") && stderr.contains("GRANT INSERT ON public.u TO pgsafe_rights_etl"), "{stderr}");
    assert_eq!(dst.psql(counts), "100|100|O\n", "nothing was emptied");

    // The hints hold: with INSERT granted the role loads `u`, and a member of the tables' owner restores
    // them all with `--role`.
    dst.psql("GRANT INSERT ON u TO pgsafe_rights_etl;");
    let (code, _, stderr) = restore(&["-t", "u"]);
    assert_eq!(code, 0, "{stderr}");
    dst.psql("GRANT pgsafe_rights_owner TO pgsafe_rights_etl;");
    let (code, _, stderr) = restore(&["--role", "pgsafe_rights_owner"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(dst.psql(counts), "100|100|O\n");
    assert_eq!(fingerprint(&dst, "t"), fingerprint(&src, "t"));
}

/// Found on a real application's schema (danbooru's): a table with a self-referencing key and another
/// `DEFERRABLE INITIALLY DEFERRED` key, loaded by its owner, who is no superuser: the load keeps the
/// other key on, whose checks wait for the commit, and adding the self-referencing key back in that
/// transaction was refused ("cannot ALTER TABLE because it has pending trigger events"). The checks are
/// made before the key comes back.
#[test]
fn an_owners_load_of_a_table_with_a_deferred_key_adds_its_other_keys_back() {
    let src = TestDb::new("deferred_src");
    let schema = "CREATE TABLE users (id int PRIMARY KEY);
                  CREATE TABLE posts (id int PRIMARY KEY,
                    uploader_id int NOT NULL REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED,
                    parent_id int REFERENCES posts (id) DEFERRABLE INITIALLY DEFERRED);";
    src.psql(schema);
    src.psql(
        "INSERT INTO users SELECT generate_series(1, 20);
         INSERT INTO posts SELECT g, 1 + g % 20, CASE WHEN g > 1 THEN g - 1 END FROM generate_series(1, 200) g;",
    );
    let dst = TestDb::new("deferred_dst");
    copy_schema(&src, &dst);
    let role = "pgsafe_deferred_owner";
    dst.psql(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
           CREATE ROLE {role} LOGIN PASSWORD 'owner-pw'; END IF; END $$;
         ALTER TABLE users OWNER TO {role}; ALTER TABLE posts OWNER TO {role};"
    ));
    let as_owner = format!("{} user={role} password=owner-pw", dst.conn_string());
    let keys = "SELECT string_agg(conname || '=' || convalidated || ':' || condeferred, ' ' ORDER BY conname)
                FROM pg_constraint WHERE contype = 'f'";
    let before = dst.psql(keys);
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);
    let (code, _, stderr) = run(pgsafe().args(["restore", "--data-only", "-q", "-d", &as_owner]).arg(&archive));
    assert_eq!(code, 0, "{stderr}");
    for table in ["users", "posts"] {
        assert_eq!(fingerprint(&dst, table), fingerprint(&src, table), "{table}");
    }
    assert_eq!(dst.psql(keys), before, "the keys come back as they were");
}

#[test]
fn a_data_only_restore_into_columns_of_other_types_is_refused_before_anything_changes() {
    // Found by testing after a migration: binary rows of `bigint` loaded into `double precision` as
    // 4.94e-322, a `varchar` '2024' into `integer` as 842019380, exit 0 and "verified" (the read-back
    // reads the bytes it loaded); `int` into `bigint` failed half way with a wire error.
    let src = TestDb::new("types_src");
    src.psql(
        "CREATE DOMAIN posint AS int CHECK (VALUE > 0);
         CREATE TABLE acct (id int PRIMARY KEY, balance bigint, rate int, code varchar(10), amount numeric(10, 2),
                            n posint, at timestamp);
         INSERT INTO acct SELECT g, g * 100, g, '20' || g, g * 1.5, g, timestamp '2024-01-01' + g * interval '1 day'
           FROM generate_series(1, 50) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);
    let restore =
        |dst: &TestDb| run(pgsafe().args(["restore", "--data-only", "-q", "-d", &dst.conn_string()]).arg(&archive));
    // Other types: refused, naming each column, nothing loaded.
    let dst = TestDb::new("types_other");
    dst.psql(
        "CREATE TABLE acct (id int PRIMARY KEY, balance double precision, rate bigint, code integer,
                            amount numeric(10, 2), n int, at timestamp);",
    );
    let (code, _, stderr) = restore(&dst);
    assert_eq!(code, 2, "{stderr}");
    for (column, here, there) in [
        ("balance", "double precision", "bigint"),
        ("rate", "bigint", "integer"),
        ("code", "integer", "character varying(10)"),
    ] {
        assert!(stderr.contains(&format!("`{column}` is `{here}` there and `{there}` in the archive")), "{stderr}");
    }
    assert!(!stderr.contains("`amount`") && !stderr.contains("`n`"), "{stderr}");
    assert!(stderr.contains("nothing was restored"), "{stderr}");
    assert_eq!(dst.psql("SELECT count(*) FROM acct"), "0\n");
    // The same bytes under another length, precision or domain load as they are.
    let dst = TestDb::new("types_same");
    dst.psql(
        "CREATE TABLE acct (id int PRIMARY KEY, balance bigint, rate int, code varchar(20), amount numeric(12, 2),
                            n int, at timestamp);",
    );
    let (code, _, stderr) = restore(&dst);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fingerprint(&dst, "acct"), fingerprint(&src, "acct"));
}

/// A table hash-partitioned on an enum loads through the partitioned table (its rows go where the new
/// enum OIDs hash them): the triggers that fire on its partitions are switched off too. Before, the
/// owner's load switched off only the partitioned table's own, and a partition's audit trigger wrote a
/// row for every row loaded; a superuser's load fired a partition's `ALWAYS` trigger.
#[test]
fn a_load_through_a_partitioned_table_fires_none_of_its_partitions_triggers() {
    let schema = "CREATE TYPE color AS ENUM ('red', 'green', 'blue', 'cyan', 'magenta');
         CREATE TABLE audit (t text, n int);
         CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN INSERT INTO public.audit VALUES (TG_TABLE_NAME, 1); RETURN NEW; END $$;
         CREATE TABLE hp (c color, v int) PARTITION BY HASH (c);
         CREATE TABLE hp0 PARTITION OF hp FOR VALUES WITH (MODULUS 2, REMAINDER 0) PARTITION BY LIST (v);
         CREATE TABLE hp0_odd PARTITION OF hp0 FOR VALUES IN (1, 3, 5);
         CREATE TABLE hp0_rest PARTITION OF hp0 DEFAULT;
         CREATE TABLE hp1 PARTITION OF hp FOR VALUES WITH (MODULUS 2, REMAINDER 1);
         CREATE TRIGGER on_hp1 BEFORE INSERT ON hp1 FOR EACH ROW EXECUTE FUNCTION note();
         CREATE TRIGGER on_odd AFTER INSERT ON hp0_odd FOR EACH ROW EXECUTE FUNCTION note();
         CREATE TRIGGER on_rest AFTER INSERT ON hp0_rest FOR EACH ROW EXECUTE FUNCTION note();
         ALTER TABLE hp0_rest ENABLE ALWAYS TRIGGER on_rest;";
    let src = TestDb::new("routed_trig_src");
    src.psql(schema);
    src.psql("INSERT INTO hp SELECT c, g FROM unnest(enum_range(NULL::color)) c, generate_series(1, 6) g");
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &["--exclude-table-data", "audit"]);
    let rows = "SELECT count(*) || ' ' || md5(string_agg(c::text || v, ',' ORDER BY c, v)) FROM hp";
    let owner = "pgsafe_owner_routed";
    for as_superuser in [false, true] {
        let dst = TestDb::new("routed_trig_dst");
        dst.psql(schema);
        let before = triggers_and_keys(&dst);
        let conn = if as_superuser {
            dst.conn_string()
        } else {
            dst.psql(&format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}') THEN
                   CREATE ROLE {owner} LOGIN PASSWORD 'owner-pw'; END IF; END $$;
                 ALTER TABLE audit OWNER TO {owner}; ALTER TABLE hp OWNER TO {owner};
                 ALTER TABLE hp0 OWNER TO {owner}; ALTER TABLE hp0_odd OWNER TO {owner};
                 ALTER TABLE hp0_rest OWNER TO {owner}; ALTER TABLE hp1 OWNER TO {owner};
                 ALTER FUNCTION note() OWNER TO {owner};"
            ));
            format!("{} user={owner} password=owner-pw", dst.conn_string())
        };
        let (code, _, stderr) = run(pgsafe().args(["restore", "--data-only", "-q", "-d", &conn]).arg(&archive));
        assert_eq!(code, 0, "superuser {as_superuser}: {stderr}");
        assert_eq!(dst.psql(rows), src.psql(rows), "superuser {as_superuser}");
        assert_eq!(dst.psql(rows).split(' ').next(), Some("30"));
        assert_eq!(dst.psql("SELECT count(*) FROM audit"), "0\n", "superuser {as_superuser}: a trigger fired");
        assert_eq!(triggers_and_keys(&dst), before, "superuser {as_superuser}: triggers as they were");
    }
}

/// `--clean -t orders` into a database where a view and another table's key depend on `orders`: refused,
/// nothing changed, and the hint is pgsafe's (not the server's "Use DROP ... CASCADE", which would drop
/// what the restore leaves out); `--data-only --clean -t orders` the same with TRUNCATE's refusal, and
/// `-1` then reloads the rows.
#[test]
fn a_clean_restore_of_a_table_others_depend_on_says_what_to_do_instead_of_cascade() {
    let db = TestDb::new("clean_dependents");
    db.psql(
        "CREATE TABLE orders (id int PRIMARY KEY, total int); INSERT INTO orders VALUES (1, 10), (2, 20);
         CREATE VIEW big AS SELECT * FROM orders WHERE total > 15;
         CREATE TABLE items (id int, order_id int REFERENCES orders);",
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&db, dir.path(), &[]);
    db.psql("DELETE FROM orders WHERE id = 2");
    for (extra, hint) in [
        (&["--clean"][..], "objects of the target that this restore does not drop"),
        (&["--data-only", "--clean"][..], "a table the restore leaves out references one it empties"),
    ] {
        let (code, _, stderr) =
            run(pgsafe().args(["restore", "-q", "-t", "orders", "-d", &db.conn_string()]).args(extra).arg(&archive));
        assert_eq!(code, 2, "{extra:?}: {stderr}");
        assert!(stderr.contains(hint) && !stderr.contains("CASCADE"), "{extra:?}: {stderr}");
        assert_eq!(db.psql("SELECT count(*) FROM orders").trim(), "1", "{extra:?}");
    }
    run_ok(
        pgsafe()
            .args(["restore", "-q", "-1", "--data-only", "--clean", "-t", "orders", "-d", &db.conn_string()])
            .arg(&archive),
    );
    assert_eq!(db.psql("SELECT count(*) FROM orders").trim(), "2");
}

/// A data-only restore cuts a big part into pieces as a whole restore does: each a `COPY` of its own,
/// on every session when the table loads on its own, and one after the other in the one transaction of a
/// table whose triggers the load switches off. The rows are the archive's, no trigger fires.
#[test]
fn a_data_only_restore_loads_a_big_part_in_pieces_alone_or_in_its_tables_transaction() {
    let src = TestDb::new("pieces_data_src");
    let schema = "CREATE TABLE big (id int, pad text);
         CREATE TABLE loud (id int, pad text);
         CREATE TABLE noise (n int);
         CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO noise VALUES (1); RETURN NEW; END $$;";
    src.psql(schema);
    src.psql(
        "INSERT INTO big SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 150000) g;
         INSERT INTO loud SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 150000) g;",
    );
    let triggers = "CREATE TRIGGER t AFTER INSERT ON loud FOR EACH ROW EXECUTE FUNCTION bump();";
    src.psql(triggers);
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &["-j", "1", "--exclude-table-data", "noise"]);
    let dst = TestDb::new("pieces_data_dst");
    dst.psql(schema);
    dst.psql(triggers);
    let role = "pgsafe_pieces_owner";
    dst.psql(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
           CREATE ROLE {role} LOGIN PASSWORD 'owner-pw'; END IF; END $$;
         ALTER TABLE big OWNER TO {role}; ALTER TABLE loud OWNER TO {role}; ALTER TABLE noise OWNER TO {role};
         ALTER FUNCTION bump() OWNER TO {role};"
    ));
    let pieces = |stderr: &str, table: &str| {
        stderr.lines().filter(|l| l.contains("finished") && l.contains(&format!("(`public.{table}`, chunks "))).count()
    };
    // A superuser's sessions fire no trigger: every piece loads on its own, on any session.
    let (code, _, stderr) = run(pgsafe()
        .env("RUST_LOG", "pgsafe=debug")
        .args(["restore", "--data-only", "-j", "3", "-d", &dst.conn_string()])
        .arg(&archive));
    assert_eq!(code, 0, "{stderr}");
    assert!(pieces(&stderr, "big") >= 2 && pieces(&stderr, "loud") >= 2, "{stderr}");
    // The owner's load switches `loud`'s trigger off in one transaction that loads its pieces in turn.
    let as_owner = format!("{} user={role} password=owner-pw", dst.conn_string());
    let (code, _, stderr) = run(pgsafe()
        .env("RUST_LOG", "pgsafe=debug")
        .args(["restore", "--data-only", "--clean", "-j", "3", "-d", &as_owner])
        .arg(&archive));
    assert_eq!(code, 0, "{stderr}");
    assert!(pieces(&stderr, "big") >= 2, "{stderr}");
    assert!(stderr.contains("finished table `public.loud`"), "{stderr}");
    for table in ["big", "loud"] {
        assert_eq!(fingerprint(&dst, table), fingerprint(&src, table), "{table}");
    }
    assert_eq!(dst.psql("SELECT count(*) FROM noise"), "0\n", "no trigger may fire during the load");
    assert_eq!(dst.psql("SELECT tgenabled FROM pg_trigger WHERE tgname = 't'"), "O\n");
}
