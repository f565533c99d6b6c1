//! `pgsafe dump`, `verify` and `restore --data-only` against the throwaway cluster, run as a user runs
//! them: every column type round trips, big tables split, the snapshot is consistent under concurrent
//! writes, and verification catches what it must.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pgsafe::archive::{ArchiveReader, ArchiveTarget, ArchiveWriter};
use pgsafe::format::{Compression, CopyFormat, sample};

use crate::support::{self, TestDb};

pub(crate) fn pgsafe() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgsafe"));
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Runs pgsafe and returns its exit code, stdout and stderr.
pub(crate) fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("running pgsafe");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

pub(crate) fn run_ok(cmd: &mut Command) -> String {
    let (code, stdout, stderr) = run(cmd);
    assert_eq!(code, 0, "pgsafe failed:\n{stderr}");
    stdout
}

/// Dumps `db` into a fresh folder and returns the archive's path.
pub(crate) fn dump(db: &TestDb, dir: &Path, extra: &[&str]) -> PathBuf {
    let path = dir.join(format!("{}.pgsafe", db.name()));
    run_ok(pgsafe().args(["dump", "-q", "-d", &db.conn_string(), "-f"]).arg(&path).args(extra));
    path
}

/// Creates `dst`'s schema like `src`'s, with pgsafe's own schema-only dump and restore.
pub(crate) fn copy_schema(src: &TestDb, dst: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(src, dir.path(), &["--schema-only"]);
    run_ok(pgsafe().args(["restore", "-q", "--schema-only", "--no-owner", "-d", &dst.conn_string()]).arg(&archive));
}

/// Row count and a hash of every row's text form, in a stable order.
pub(crate) fn fingerprint(db: &TestDb, table: &str) -> String {
    db.psql(&format!(
        "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {table} t"
    ))
}

fn restore(archive: &Path, db: &TestDb, extra: &[&str]) -> (i32, String, String) {
    run(pgsafe().args(["restore", "--data-only", "-q", "-d", &db.conn_string()]).arg(archive).args(extra))
}

const TYPES_SCHEMA: &str = r#"
CREATE EXTENSION hstore;
CREATE EXTENSION citext;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
-- Every type whose binary form is portable: this table must travel as binary COPY.
CREATE TABLE binary_types (
  id int PRIMARY KEY, c_bool boolean, c_int2 smallint, c_int4 int, c_int8 bigint, c_num numeric, c_num_p numeric(12,3),
  c_float4 real, c_float8 double precision, c_money money, c_char char(5), c_varchar varchar(20), c_text text,
  c_name name, c_bytea bytea, c_date date, c_time time, c_timetz timetz, c_ts timestamp, c_tstz timestamptz,
  c_interval interval, c_uuid uuid, c_json json, c_jsonb jsonb, c_xml xml, c_inet inet, c_cidr cidr,
  c_macaddr macaddr, c_macaddr8 macaddr8, c_point point, c_line line, c_lseg lseg, c_box box, c_path path,
  c_polygon polygon, c_circle circle, c_bit bit(8), c_varbit varbit, c_tsvector tsvector,
  c_oid oid, c_pg_lsn pg_lsn, c_txid txid_snapshot, c_snapshot pg_snapshot, c_int4range int4range,
  c_int8range int8range, c_numrange numrange, c_tsrange tsrange, c_tstzrange tstzrange, c_daterange daterange,
  c_int4multi int4multirange, c_datemulti datemultirange, c_int_arr int[], c_text_arr2 text[][],
  c_empty_arr int[], c_enum mood, c_pair pair, c_domain posint, c_hstore hstore, c_citext citext,
  c_qchar "char", c_tid tid, c_xid xid, c_cid cid,
  c_generated int GENERATED ALWAYS AS (id * 2) STORED
);
-- Types whose binary form names OIDs or has no binary I/O: this table must travel as text COPY.
CREATE TABLE text_types (
  id int PRIMARY KEY, c_regclass regclass, c_regproc regproc, c_regprocedure regprocedure, c_regtype regtype,
  c_regoper regoper, c_regoperator regoperator, c_regnamespace regnamespace, c_regrole regrole,
  c_regconfig regconfig, c_regdictionary regdictionary, c_regcollation regcollation, c_aclitem aclitem,
  c_enum_arr mood[], c_pair_arr pair[], c_domain_arr posint[], c_hstore_arr hstore[],
  c_int2vector int2vector, c_oidvector oidvector,
  -- tsquery: its binary receive refuses the empty query (stop words only), which the other rows hold.
  c_tsquery tsquery
);
CREATE TABLE no_columns ();
-- A tsquery alone is enough to make a table go as text.
CREATE TABLE tsqueries (id int PRIMARY KEY, q tsquery);
"#;

const TYPES_DATA: &str = r#"
INSERT INTO binary_types (id) VALUES (1);  -- all NULL
INSERT INTO binary_types (id, c_bool, c_int2, c_int4, c_int8, c_num, c_num_p, c_float4, c_float8, c_money, c_char,
  c_varchar, c_text, c_name, c_bytea, c_date, c_time, c_timetz, c_ts, c_tstz, c_interval, c_uuid, c_json, c_jsonb,
  c_xml, c_inet, c_cidr, c_macaddr, c_macaddr8, c_point, c_line, c_lseg, c_box, c_path, c_polygon, c_circle, c_bit,
  c_varbit, c_tsvector, c_oid, c_pg_lsn, c_txid, c_snapshot, c_int4range, c_int8range, c_numrange,
  c_tsrange, c_tstzrange, c_daterange, c_int4multi, c_datemulti, c_int_arr, c_text_arr2, c_empty_arr, c_enum,
  c_pair, c_domain, c_hstore, c_citext, c_qchar, c_tid, c_xid, c_cid)
VALUES
 (2, true, -32768, 2147483647, -9223372036854775808, 123456789.123456789, -1.5, 3.25, 2.718281828459045, 12.34,
  'ab', 'héllo wörld ✓ 日本', E'tab\there\nnewline \\ backslash', 'a_name', '\x000102ff00', '2024-02-29',
  '23:59:59.999999', '12:00+05:30', '1999-12-31 23:59:59.5', '2024-06-01 12:00:00+02', '1 year 2 mons -3 days 04:05:06',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1, "a": [1, 2.50]}', '{"b": 1, "a": [1, 2.50], "ü": null}',
  '<a>x &amp; y</a>', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', '(1.5,2)',
  '{1,-1,0}', '[(0,0),(1,1)]', '(1,1),(0,0)', '[(0,0),(1,1),(2,0)]', '((0,0),(1,1),(1,0))', '<(0,0),2>',
  B'10101010', B'101', 'a fat cat:1A sat', 4294967295, '16/B374D848', '10:20:10,14,15',
  '10:20:10,14,15', '[1,10)', '(,100]', '[1.5,2.5]', '[2024-01-01,2024-02-01)', '[2024-01-01 00:00+00,)',
  'empty', '{[1,3), [5,7)}', '{[2024-01-01,2024-01-05)}', '{1,NULL,3}', '{{a,b},{c,NULL}}', '{}', 'happy',
  '(7,"x y")', 42, 'a=>1, "b c"=>NULL', 'MiXeD CaSe', 'q', '(5,7)', '1234', '5'),
 (3, false, 0, 0, 0, 'NaN', 0, 'NaN', '-Infinity', 0, '', '', '', '', '', 'infinity', '00:00', '00:00+00',
  '-infinity', 'infinity', '0', '00000000-0000-0000-0000-000000000000', '""', '[]', '', '::1', '::/0',
  '00:00:00:00:00:00', '00:00:00:00:00:00:00:00', '(0,0)', '{1,0,0}', '[(0,0),(0,0)]', '(0,0),(0,0)', '((0,0))',
  '((0,0))', '<(0,0),0>', B'00000000', B'', '', 0, '0/0', '1:1:', '1:1:', 'empty', 'empty', 'empty', 'empty',
  'empty', 'empty', '{}', '{}', '{{{1}},{{2}}}', '{}', '{}', 'sad', '(,)', 1, '', '', ' ', '(0,0)', '0', '0');
-- TOASTed values of several MB, infinities.
INSERT INTO binary_types (id, c_num, c_float4, c_float8, c_text, c_bytea, c_jsonb, c_int_arr) VALUES
 (4, 'Infinity', 'Infinity', 'NaN', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 100000) i),
  (SELECT string_agg(decode(md5(i::text), 'hex'), '') FROM generate_series(1, 150000) i),
  (SELECT jsonb_agg(i) FROM generate_series(1, 100000) i), (SELECT array_agg(i) FROM generate_series(1, 300000) i));
INSERT INTO text_types VALUES
 (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (2, 'binary_types', 'now', 'abs(integer)', 'mood', '||/', '+(integer,integer)', 'public', 'postgres', 'english',
  'simple', '"C"', 'postgres=arwdDxt/postgres', '{sad,happy}', '{"(1,a)","(2,\"b c\")"}', '{1,2}',
  ARRAY['a=>1'::hstore, 'b=>NULL'::hstore], '1 2 3', '23 25', 'fat & (rat | cat)'),
 (3, 'text_types', 'int4in', 'now()', 'pair', '|/', '-(integer,integer)', 'pg_catalog', 'postgres', 'simple',
  'english_stem', 'default', '=r/postgres', '{}', '{}', '{}', '{}', '', '', plainto_tsquery('english', 'the a of'));
INSERT INTO no_columns DEFAULT VALUES;
INSERT INTO no_columns DEFAULT VALUES;
INSERT INTO no_columns DEFAULT VALUES;
INSERT INTO tsqueries VALUES (1, plainto_tsquery('english', 'the a of')), (2, 'fat & !rat'), (3, NULL);
SELECT lo_from_bytea(0, '\x00ff00'::bytea), lo_from_bytea(0, ''::bytea);
CREATE SEQUENCE counter START 100;
SELECT nextval('counter'), nextval('counter');
"#;

#[test]
fn every_column_type_round_trips() {
    let src = TestDb::new("types_src");
    src.psql(TYPES_SCHEMA);
    src.psql(TYPES_DATA);
    let dst = TestDb::new("types_dst");
    copy_schema(&src, &dst);
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &["-j", "2"]);

    let inspect: serde_json::Value =
        serde_json::from_str(&run_ok(pgsafe().args(["inspect", "--json"]).arg(&archive))).unwrap();
    let format_of = |table: &str| {
        inspect["parts"].as_array().unwrap().iter().find(|p| p["table"] == table).map(|p| p["format"].clone()).unwrap()
    };
    assert_eq!(format_of("public.binary_types"), "binary");
    assert_eq!(
        format_of("public.text_types"),
        "text",
        "reg*, aclitem, arrays of user types and empty int2vectors must go as text"
    );
    assert_eq!(format_of("public.no_columns"), "binary");
    assert_eq!(format_of("public.tsqueries"), "text", "an empty tsquery's binary form does not load on most servers");

    assert!(run_ok(pgsafe().arg("verify").arg(&archive)).starts_with("sound:"));
    let (code, _, stderr) = restore(&archive, &dst, &["-j", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert_types_restored(&src, &dst);
}

/// A `regclass` value names a table relative to the `search_path` it is written and read under. The source
/// database puts a schema before `public`, where a table of the same name lives: the value must come back
/// naming the same table, in a whole restore (parallel and single-transaction) and a data-only one, and
/// verification must pass, whatever the target's own `search_path`.
#[test]
fn reg_values_name_the_same_objects_whatever_the_search_path() {
    let src = TestDb::new("regpath_src");
    src.psql(&format!(
        "CREATE SCHEMA app;
         CREATE TABLE app.orders (id int);
         CREATE TABLE public.orders (id int);
         CREATE TABLE app.audit (id int, rel regclass, typ regtype);
         CREATE TYPE app.state AS ENUM ('a');
         CREATE TYPE public.state AS ENUM ('b');
         INSERT INTO app.audit VALUES (1, 'app.orders', 'app.state'), (2, 'public.orders', 'public.state');
         ALTER DATABASE {} SET search_path = app, public;",
        src.name()
    ));
    let names = "SELECT string_agg(rel::text || ' ' || typ::text, ', ' ORDER BY id) \
                 FROM app.audit";
    let qualified = |db: &TestDb| db.psql(&format!("SET search_path = ''; {names}")).trim().to_string();
    assert_eq!(qualified(&src), "app.orders app.state, public.orders public.state");
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);
    let inspect: serde_json::Value =
        serde_json::from_str(&run_ok(pgsafe().args(["inspect", "--json"]).arg(&archive))).unwrap();
    let audit = inspect["parts"].as_array().unwrap().iter().find(|p| p["table"] == "app.audit").unwrap().clone();
    assert_eq!(audit["format"], "text");

    for extra in [&["-j", "2"][..], &["--single-transaction"][..]] {
        let dst = TestDb::new("regpath_dst");
        let (code, _, stderr) =
            run(pgsafe().args(["restore", "-q", "-d", &dst.conn_string()]).arg(&archive).args(extra));
        assert_eq!(code, 0, "{extra:?}: {stderr}");
        assert_eq!(qualified(&dst), "app.orders app.state, public.orders public.state", "{extra:?}");
    }
    let dst = TestDb::new("regpath_data");
    copy_schema(&src, &dst);
    let (code, _, stderr) = restore(&archive, &dst, &["-j", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(qualified(&dst), "app.orders app.state, public.orders public.state");
}

/// An archive written before parts recorded the `search_path` of their text holds reg* values relative to
/// the dumping session's. A whole restore loads it, and verifies it (beside the post-data objects, in
/// sessions that make them under an empty `search_path`, or in one transaction), under the target
/// session's own `search_path`, as it always did: the values name the same objects and read back the same.
#[test]
fn an_archive_without_search_paths_restores_under_the_sessions_own() {
    let src = TestDb::new("oldpath_src");
    src.psql(
        "CREATE TABLE orders (id int PRIMARY KEY);
         CREATE TABLE audit (id int PRIMARY KEY, rel regclass);
         INSERT INTO audit VALUES (1, 'orders'), (2, 'pg_class');",
    );
    let dir = tempfile::tempdir().unwrap();
    let new = dump(&src, dir.path(), &[]);
    let old = dir.path().join("old.pgsafe");
    let reader = ArchiveReader::open(&new).unwrap();
    let mut catalog = reader.index().catalog().clone();
    for p in &mut catalog.parts {
        assert_eq!(p.search_path.as_deref(), (p.format == CopyFormat::Text).then_some(""), "{}", p.table);
        p.search_path = None;
    }
    let mut writer = ArchiveWriter::create(ArchiveTarget::File(old.clone()), &catalog, Compression::None).unwrap();
    for p in &catalog.parts {
        let mut stream: Vec<u8> = reader.index().chunks(p.id).flat_map(|c| reader.read_chunk(&c).unwrap()).collect();
        if p.format == CopyFormat::Text {
            // As pgsafe wrote it before: names relative to the dumping session's `search_path`.
            let text = String::from_utf8(stream).unwrap();
            assert!(text.contains("public.orders"), "{text}");
            stream = text.replace("public.orders", "orders").into_bytes();
        }
        let (chunks, summary) = sample::encode_part(p.id, p.format, [stream], Compression::None);
        for c in &chunks {
            writer.write_chunk(c).unwrap();
        }
        writer.finish_part(summary).unwrap();
    }
    writer.finish().unwrap();

    for extra in [&["-j", "2"][..], &["--single-transaction"][..]] {
        let dst = TestDb::new("oldpath_dst");
        let (code, _, stderr) = run(pgsafe().args(["restore", "-q", "-d", &dst.conn_string()]).arg(&old).args(extra));
        assert_eq!(code, 0, "{extra:?}: {stderr}");
        assert_eq!(
            dst.psql("SET search_path = ''; SELECT string_agg(rel::text, ' ' ORDER BY id) FROM public.audit").trim(),
            "public.orders pg_class",
            "{extra:?}"
        );
    }
}

#[test]
fn a_table_cut_into_many_parts_round_trips() {
    let src = TestDb::new("split_src");
    src.psql(
        "CREATE TABLE big (id int PRIMARY KEY, payload text, n numeric);
         INSERT INTO big SELECT i, repeat(md5(i::text), 3), i / 7.0 FROM generate_series(1, 60000) i;
         DELETE FROM big WHERE id % 11 = 0;  -- holes in the pages
         VACUUM ANALYZE big;",
    );
    let dst = TestDb::new("split_dst");
    copy_schema(&src, &dst);
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &["-j", "3", "--part-size", "1", "--chunk-size", "64"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&run_ok(pgsafe().args(["inspect", "--json"]).arg(&archive))).unwrap();
    let parts = inspect["parts"].as_array().unwrap().len();
    assert!(parts >= 5, "a 7 MB table with 1 MiB parts should be cut in several, got {parts}");
    assert_eq!(inspect["totals"]["rows"], 60000 - 60000 / 11);
    let (code, _, stderr) = restore(&archive, &dst, &["-j", "3"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fingerprint(&src, "big"), fingerprint(&dst, "big"));
}

/// Many workers cut smaller chunks (so that the dump's memory does not grow with `-j`); few keep the
/// default 4 MiB. Both archives restore the same rows.
#[test]
fn many_workers_cut_smaller_chunks_and_round_trip() {
    let src = TestDb::new("jobs_src");
    src.psql(
        "CREATE TABLE t (id int PRIMARY KEY, payload text);
         INSERT INTO t SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, 120000) i;",
    );
    let largest_chunk = |archive: &Path| -> u64 {
        let inspect: serde_json::Value =
            serde_json::from_str(&run_ok(pgsafe().args(["inspect", "--json"]).arg(archive))).unwrap();
        let parts = inspect["parts"].as_array().unwrap();
        parts
            .iter()
            .flat_map(|p| p["chunks"].as_array().unwrap())
            .map(|c| c["raw_len"].as_u64().unwrap())
            .max()
            .unwrap()
    };
    const MIB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let few = dump(&src, dir.path(), &["-j", "1"]);
    assert!(largest_chunk(&few) > 2 * MIB, "one worker keeps 4 MiB chunks: {}", largest_chunk(&few));
    let many_dir = tempfile::tempdir().unwrap();
    let many = dump(&src, many_dir.path(), &["-j", "16"]);
    let largest = largest_chunk(&many);
    assert!(largest > MIB / 2 && largest <= MIB + 200, "16 workers cut 1 MiB chunks: {largest}");
    for (archive, name) in [(&few, "jobs_dst1"), (&many, "jobs_dst16")] {
        let dst = TestDb::new(name);
        copy_schema(&src, &dst);
        let (code, _, stderr) = restore(archive, &dst, &["-j", "16"]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(fingerprint(&src, "t"), fingerprint(&dst, "t"));
    }
}

/// While the dump runs, transfers move money between accounts in transactions. The dump must see one
/// instant: total balance unchanged, each balance equal to its opening balance plus its transfers.
#[test]
fn the_dump_sees_one_snapshot_while_money_moves() {
    let src = TestDb::new("bank_src");
    src.psql(
        "CREATE TABLE account (id int PRIMARY KEY, balance bigint NOT NULL);
         CREATE TABLE transfer (id bigserial PRIMARY KEY, from_id int, to_id int, amount bigint, filler text);
         INSERT INTO account SELECT i, 1000 FROM generate_series(1, 200) i;
         -- Enough rows that the workers start their parts at different moments.
         CREATE TABLE ballast (id int, t text);
         INSERT INTO ballast SELECT i, repeat('x', 200) FROM generate_series(1, 200000) i;",
    );
    let dst = TestDb::new("bank_dst");
    copy_schema(&src, &dst);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let conn = src.conn_string();
    let mover = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                let mut n: u64 = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (a, b) = ((n * 7919) % 200 + 1, (n * 104_729 + 13) % 200 + 1);
                    let sql = format!(
                        "BEGIN; UPDATE account SET balance = balance - 3 WHERE id = {a};
                         UPDATE account SET balance = balance + 3 WHERE id = {b};
                         INSERT INTO transfer (from_id, to_id, amount, filler) VALUES ({a}, {b}, 3, repeat('y', 500));
                         COMMIT;"
                    );
                    client.batch_execute(&sql).await.unwrap();
                    n += 1;
                }
                n
            })
        })
    };
    // Let transfers start, then dump with many small parts so the workers run at different times.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let before: u64 = src.psql("SELECT count(*) FROM transfer").trim().parse().unwrap();
    let archive = dump(&src, dir.path(), &["-j", "4", "--part-size", "1", "--chunk-size", "32"]);
    let after: u64 = src.psql("SELECT count(*) FROM transfer").trim().parse().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let moved = mover.join().unwrap();
    assert!(after > before, "transfers must happen while the dump runs ({before} -> {after}, {moved} in all)");

    let (code, _, stderr) = restore(&archive, &dst, &["-j", "4"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(dst.psql("SELECT sum(balance) FROM account"), "200000\n");
    let wrong = dst.psql(
        "SELECT count(*) FROM account a WHERE a.balance <> 1000
           + coalesce((SELECT sum(amount) FROM transfer WHERE to_id = a.id), 0)
           - coalesce((SELECT sum(amount) FROM transfer WHERE from_id = a.id), 0)",
    );
    assert_eq!(wrong, "0\n", "balances and transfers come from different moments");
    let restored: u64 = dst.psql("SELECT count(*) FROM transfer").trim().parse().unwrap();
    assert!(restored >= before && restored <= after, "{before} <= {restored} <= {after}");
}

/// A row altered as it lands (here by the target's narrower numeric column, which rounds one value):
/// verification must name the table and fail, and with `--single-transaction` nothing stays. The table
/// is big enough (about 1000 pages) for the parallel verification to read it in page ranges.
#[test]
fn verification_catches_a_row_altered_during_the_restore() {
    let src = TestDb::new("alter_src");
    src.psql(
        "CREATE TABLE t (id int PRIMARY KEY, v text, n numeric);
         INSERT INTO t SELECT i, 'v' || i || repeat('x', 100), CASE WHEN i = 59000 THEN 0.25 ELSE i END
         FROM generate_series(1, 60000) i;",
    );
    let dst = TestDb::new("alter_dst");
    copy_schema(&src, &dst);
    dst.psql("ALTER TABLE t ALTER COLUMN n TYPE numeric(12, 1);");
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);

    let (code, _, stderr) = restore(&archive, &dst, &["--single-transaction"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("table `public.t`: the rows differ from the archive's"), "{stderr}");
    assert!(stderr.contains("nothing was restored"), "{stderr}");
    assert_eq!(dst.psql("SELECT count(*) FROM t"), "0\n");

    let (code, _, stderr) = restore(&archive, &dst, &["-j", "2"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("table `public.t`: the rows differ"), "{stderr}");

    // Counting alone cannot see it: the number of rows is right.
    let (code, _, stderr) = restore(&archive, &dst, &["--clean", "--verify", "count"]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_target_that_is_not_ready_is_refused_before_anything_is_written() {
    let src = TestDb::new("refuse_src");
    src.psql("CREATE TABLE a (id int); CREATE TABLE b (id int, extra text); INSERT INTO a VALUES (1); INSERT INTO b VALUES (1, 'x');");
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);

    let dst = TestDb::new("refuse_dst");
    dst.psql("CREATE TABLE a (id int); CREATE TABLE b (id int);");
    let (code, _, stderr) = restore(&archive, &dst, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("table `public.b` lacks the column(s) `extra`"), "{stderr}");
    assert_eq!(dst.psql("SELECT count(*) FROM a"), "0\n", "nothing may be written");

    dst.psql("ALTER TABLE b ADD COLUMN extra text; INSERT INTO a VALUES (42);");
    let (code, _, stderr) = restore(&archive, &dst, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("already holds data: `public.a`"), "{stderr}");
    assert!(stderr.contains("hint: `--clean`"), "{stderr}");
    assert_eq!(dst.psql("SELECT count(*) FROM b"), "0\n", "nothing may be written");

    let (code, _, stderr) = restore(&archive, &dst, &["--clean"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(dst.psql("SELECT id FROM a"), "1\n");
}

#[test]
fn foreign_key_violations_are_named() {
    let src = TestDb::new("fk_src");
    src.psql(
        "CREATE TABLE parent (id int PRIMARY KEY);
         CREATE TABLE child (id int, parent_id int REFERENCES parent);
         INSERT INTO parent VALUES (1), (2); INSERT INTO child VALUES (1, 1), (2, 2), (3, NULL);",
    );
    let dst = TestDb::new("fk_dst");
    copy_schema(&src, &dst);
    let dir = tempfile::tempdir().unwrap();
    // Only the child: its parents are missing in the target.
    let archive = dump(&src, dir.path(), &["-t", "public.child"]);
    let (code, _, stderr) = restore(&archive, &dst, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "foreign key `child_parent_id_fkey` of `public.child`: 2 rows reference keys missing from `public.parent`"
        ),
        "{stderr}"
    );
}

#[test]
fn a_not_valid_foreign_key_that_the_source_breaks_is_no_violation() {
    // A NOT VALID foreign key (and PostgreSQL 18's NOT ENFORCED one, which is never valid) promises
    // nothing about the rows: the copy holds the source's rows exactly, so it must not fail for them.
    let src = TestDb::new("fk_nv_src");
    src.psql(
        "CREATE TABLE parent (id int PRIMARY KEY);
         CREATE TABLE child (id int, parent_id int);
         INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1, 1), (2, 9);
         ALTER TABLE child ADD CONSTRAINT child_parent_fk FOREIGN KEY (parent_id) REFERENCES parent NOT VALID;",
    );
    let dst = TestDb::new("fk_nv_dst");
    copy_schema(&src, &dst);
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);
    let (code, _, stderr) = restore(&archive, &dst, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fingerprint(&dst, "child"), fingerprint(&src, "child"));
}

#[test]
fn filters_follow_pg_dump() {
    let src = TestDb::new("filters");
    src.psql(
        "CREATE SCHEMA app; CREATE SCHEMA audit;
         CREATE TABLE app.users (id int); CREATE TABLE app.orders (id int); CREATE TABLE audit.log (id int);
         CREATE TABLE public.\"MixedCase\" (id int);",
    );
    let plan = |args: &[&str]| {
        let out = run_ok(pgsafe().args(["dump", "--dry-run", "--json", "-d", &src.conn_string()]).args(args));
        let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
        let mut tables: Vec<String> = plan["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{}.{}",
                    p["info"]["table"]["schema"].as_str().unwrap(),
                    p["info"]["table"]["name"].as_str().unwrap()
                )
            })
            .collect();
        tables.sort();
        tables
    };
    assert_eq!(plan(&["-n", "app"]), ["app.orders", "app.users"]);
    assert_eq!(plan(&["-N", "app", "-N", "audit"]), ["public.MixedCase"]);
    assert_eq!(plan(&["-t", "app.u*"]), ["app.users"]);
    assert_eq!(plan(&["-t", "\"MixedCase\""]), ["public.MixedCase"]);
    // A pattern that names nothing is refused by name before anything is dumped (pg_dump's
    // --strict-names): here, folded to lower case, it misses "MixedCase".
    let (code, _, stderr) =
        run(pgsafe().args(["dump", "--dry-run", "-d", &src.conn_string(), "-n", "app", "-t", "mixedcase"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nothing matches `-t mixedcase`"), "{stderr}");
    let (code, _, stderr) = run(pgsafe().args(["dump", "--dry-run", "-d", &src.conn_string(), "-n", "nosuch"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nothing matches `-n nosuch`"), "{stderr}");
    // Written as the table is named, it is folded too: the hint says to quote it.
    let (code, _, stderr) = run(pgsafe().args(["dump", "--dry-run", "-d", &src.conn_string(), "-t", "MixedCase"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("name a mixed-case table as `-t '\"Orders\"'`"), "{stderr}");
    assert_eq!(plan(&["-n", "app", "-T", "app.orders"]), ["app.users"]);
    assert_eq!(plan(&["--exclude-table-data", "audit.*"]), ["app.orders", "app.users", "public.MixedCase"]);
}

#[test]
fn no_unlogged_table_data_keeps_unlogged_tables_empty() {
    let src = TestDb::new("unlogged_src");
    src.psql(
        "CREATE UNLOGGED TABLE cache (k int PRIMARY KEY, v text); INSERT INTO cache SELECT i, 'c' FROM generate_series(1, 30) i;
         CREATE TABLE kept (id int); INSERT INTO kept VALUES (1), (2);",
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &["--no-unlogged-table-data"]);
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(pgsafe().args(["inspect", "--json"]).arg(&archive))).unwrap();
    let tables: Vec<&str> = json["tables"].as_array().unwrap().iter().map(|t| t["table"].as_str().unwrap()).collect();
    assert_eq!(tables, ["public.kept"]);
    let dst = TestDb::new("unlogged_dst");
    run_ok(pgsafe().args(["restore", "-q", "-d", &dst.conn_string()]).arg(&archive));
    assert_eq!(
        dst.psql("SELECT relpersistence, (SELECT count(*) FROM cache), (SELECT count(*) FROM kept) FROM pg_class WHERE relname = 'cache'"),
        "u|0|2\n"
    );
}

#[test]
fn a_dump_can_use_an_exported_snapshot() {
    let src = TestDb::new("snapshot_src");
    src.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10);");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        // The exporting transaction stays open while the dump runs, as a replication slot's would.
        let client = src.connect().await;
        client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ").await.unwrap();
        let name: String = client.query_one("SELECT pg_export_snapshot()", &[]).await.unwrap().get(0);
        src.psql("INSERT INTO t SELECT generate_series(11, 25); CREATE TABLE later (id int);");
        let dir = tempfile::tempdir().unwrap();
        let archive = dump(&src, dir.path(), &["--snapshot", &name, "-j", "2"]);
        let json: serde_json::Value =
            serde_json::from_str(&run_ok(pgsafe().args(["inspect", "--json"]).arg(&archive))).unwrap();
        assert_eq!(json["totals"]["rows"], 10, "the rows the snapshot sees, not the 15 added after it");
        let listed = run_ok(pgsafe().args(["restore", "--list"]).arg(&archive));
        assert!(!listed.contains("later"), "{listed}");
        client.batch_execute("COMMIT").await.unwrap();
        // A snapshot whose transaction has ended is refused by name.
        let (code, _, stderr) = run(pgsafe()
            .args(["dump", "-q", "--snapshot", &name, "-d", &src.conn_string(), "-f"])
            .arg(dir.path().join("x")));
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(&format!("using the snapshot `{name}`")), "{stderr}");
    });
}

#[test]
fn an_archive_streams_through_a_pipe() {
    let src = TestDb::new("pipe");
    src.psql("CREATE TABLE t (id int, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 5000) i;");
    let mut dumping =
        pgsafe().args(["dump", "-q", "-f", "-", "-d", &src.conn_string()]).stdout(Stdio::piped()).spawn().unwrap();
    let piped = dumping.stdout.take().unwrap();
    let out = pgsafe().args(["verify", "-"]).stdin(Stdio::from(piped)).output().unwrap();
    assert_eq!(dumping.wait().unwrap().code(), Some(0), "the dump to standard output failed");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("5000 rows"));

    // Straight into a new database: `pgsafe dump -f - | pgsafe restore - -d ...`.
    let dst = TestDb::new("pipe_dst");
    let mut dumping =
        pgsafe().args(["dump", "-q", "-f", "-", "-d", &src.conn_string()]).stdout(Stdio::piped()).spawn().unwrap();
    let piped = dumping.stdout.take().unwrap();
    let out =
        pgsafe().args(["restore", "-q", "-d", &dst.conn_string(), "-"]).stdin(Stdio::from(piped)).output().unwrap();
    assert_eq!(dumping.wait().unwrap().code(), Some(0), "the dump to standard output failed");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fingerprint(&dst, "t"), fingerprint(&src, "t"));

    // A pipe that breaks off part way is a damaged archive, refused before anything is written.
    let dir = tempfile::tempdir().unwrap();
    let archive = std::fs::read(dump(&src, dir.path(), &[])).unwrap();
    let empty = TestDb::new("pipe_cut");
    let mut restore = pgsafe()
        .args(["restore", "-q", "-d", &empty.conn_string(), "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut restore.stdin.take().unwrap(), &archive[..archive.len() / 2]).unwrap();
    let out = restore.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("archive"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(empty.psql("SELECT count(*) FROM pg_class WHERE relname = 't'").trim(), "0");
}

#[test]
fn inspect_shows_the_schema_and_sequence_values() {
    let src = TestDb::new("inspect_seq");
    src.psql(
        "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) SELECT 'x' FROM generate_series(1, 42);",
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);
    let text = run_ok(pgsafe().arg("inspect").arg(&archive));
    assert!(text.contains("1 sequence values"), "{text}");
    let line = text.lines().find(|l| l.starts_with("public.t_id_seq")).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(line.split_whitespace().collect::<Vec<_>>(), ["public.t_id_seq", "42", "true"]);
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(pgsafe().args(["inspect", "--json"]).arg(&archive))).unwrap();
    assert_eq!(json["sequences"][0]["last_value"], 42);
    // The table, its sequence, the sequence's OWNED BY, the primary key, ...: more than one object.
    assert!(json["schema_objects"].as_u64().unwrap() > 1, "{json}");
}

/// A copy of `archive` in `dir` with one bit of a byte in its middle flipped (a chunk's payload, for an
/// archive of one table dumped uncompressed in small chunks).
fn damaged_copy(archive: &Path, dir: &Path) -> std::path::PathBuf {
    let mut bytes = std::fs::read(archive).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    let damaged = dir.join("damaged.pgsafe");
    std::fs::write(&damaged, &bytes).unwrap();
    damaged
}

#[test]
fn verify_lists_what_is_damaged_and_exits_1() {
    let src = TestDb::new("damage");
    src.psql("CREATE TABLE t (id int, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 50000) i;");
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &["--chunk-size", "64", "-Z", "0"]);
    let damaged = damaged_copy(&archive, dir.path());
    let (code, stdout, _) = run(pgsafe().arg("verify").arg(&damaged));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("part 0 (`public.t`)") && stdout.contains("checksum mismatch"), "{stdout}");
    let (code, stdout, _) = run(pgsafe().args(["verify", "-"]).stdin(std::fs::File::open(&damaged).unwrap()));
    assert_eq!(code, 1, "{stdout}");
    // `-q`: nothing said of a sound archive, the damage still listed.
    let (code, stdout, stderr) = run(pgsafe().args(["verify", "-q"]).arg(&archive));
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "", ""));
    let (code, stdout, _) = run(pgsafe().args(["verify", "-q"]).arg(&damaged));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("checksum mismatch"), "{stdout}");
}

/// A damaged chunk is found before `--clean` drops (or, data only, empties) anything: the target keeps
/// every row it had. Before, the drops committed first and the restore stopped at the chunk, leaving the
/// table with the rows of the chunks before it.
#[test]
fn a_clean_restore_of_a_damaged_archive_changes_nothing_in_the_target() {
    let db = TestDb::new("clean_damaged");
    db.psql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 50000) i;");
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&db, dir.path(), &["--chunk-size", "64", "-Z", "0"]);
    let damaged = damaged_copy(&archive, dir.path());
    let before = fingerprint(&db, "t");
    for extra in [&["--clean"][..], &["--clean", "-j", "2"], &["--data-only", "--clean"]] {
        let (code, _, stderr) =
            run(pgsafe().args(["restore", "-q", "-d", &db.conn_string()]).args(extra).arg(&damaged));
        assert_eq!(code, 2, "{extra:?}: {stderr}");
        assert!(
            stderr.contains("the archive is damaged, so nothing was")
                && stderr.contains("part 0 (`public.t`)")
                && stderr.contains("checksum mismatch"),
            "{extra:?}: {stderr}"
        );
        assert_eq!(fingerprint(&db, "t"), before, "{extra:?}");
        assert_eq!(db.psql("SELECT count(*) FROM t").trim(), "50000", "{extra:?}");
    }
}

/// Without `--clean` too, a damaged chunk of an archive file is found before anything is written: a
/// whole restore leaves the empty database empty (before, it made the schema and stopped at the chunk),
/// and a data-only one loads no table.
#[test]
fn a_restore_of_a_damaged_archive_file_writes_nothing() {
    let src = TestDb::new("damaged_src");
    src.psql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 50000) i;");
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &["--chunk-size", "64", "-Z", "0"]);
    let damaged = damaged_copy(&archive, dir.path());
    for jobs in ["1", "2"] {
        let empty = TestDb::new("damaged_whole");
        let (code, _, stderr) =
            run(pgsafe().args(["restore", "-q", "-j", jobs, "-d", &empty.conn_string()]).arg(&damaged));
        assert_eq!(code, 2, "-j {jobs}: {stderr}");
        assert!(stderr.contains("the archive is damaged, so nothing was restored"), "-j {jobs}: {stderr}");
        assert_eq!(empty.psql("SELECT count(*) FROM pg_class WHERE relname = 't'").trim(), "0", "-j {jobs}");
    }
    let schema = TestDb::new("damaged_data");
    run_ok(pgsafe().args(["restore", "-q", "--schema-only", "-d", &schema.conn_string()]).arg(&archive));
    let (code, _, stderr) =
        run(pgsafe().args(["restore", "-q", "--data-only", "-d", &schema.conn_string()]).arg(&damaged));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the archive is damaged, so nothing was restored"), "{stderr}");
    assert_eq!(schema.psql("SELECT count(*) FROM t").trim(), "0");
}

/// A test extension's control file and script in the server's extension folder, removed when dropped.
struct TestExtension {
    files: [std::path::PathBuf; 2],
}

impl TestExtension {
    /// Installs extension `name` at version 1.0; `None`, said as the test `test` that cannot run, when the
    /// folder is not writable (it needs root).
    fn install(test: &str, name: &str, control: &str, script: &str) -> Option<TestExtension> {
        let share = TestDb::new("ext_probe").psql("SELECT setting FROM pg_config WHERE name = 'SHAREDIR'");
        let dir = Path::new(share.trim()).join("extension");
        let files = [dir.join(format!("{name}.control")), dir.join(format!("{name}--1.0.sql"))];
        if let Err(e) = std::fs::write(&files[0], control) {
            support::cannot_run(test, &format!("it cannot write into `{}` ({e}; it needs root)", dir.display()));
            return None;
        }
        std::fs::write(&files[1], script).unwrap();
        Some(TestExtension { files })
    }
}

impl Drop for TestExtension {
    fn drop(&mut self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// An extension's configuration table holds the extension's own rows and the user's; the archive holds
/// only the user's (the extension's filter), and a restore into a database where the extension made its
/// own rows again keeps those, loads the user's, and verifies only what it loaded.
#[test]
fn extension_configuration_tables_keep_the_extensions_own_rows() {
    let Some(_extension) = TestExtension::install(
        "extension_configuration_tables_keep_the_extensions_own_rows",
        "pgsafe_test_config",
        "default_version = '1.0'\nrelocatable = false\nschema = public\n",
        "CREATE TABLE settings (key text PRIMARY KEY, value text, standard boolean NOT NULL DEFAULT false);
         INSERT INTO settings VALUES ('a', '1', true), ('b', '2', true);
         SELECT pg_catalog.pg_extension_config_dump('settings', 'WHERE NOT standard');",
    ) else {
        return;
    };
    let src = TestDb::new("ext_src");
    src.psql(
        "CREATE EXTENSION pgsafe_test_config; INSERT INTO settings (key, value) VALUES ('mine', 'x'), ('ours', 'y');",
    );
    let dst = TestDb::new("ext_dst");
    dst.psql("CREATE EXTENSION pgsafe_test_config;");
    let tmp = tempfile::tempdir().unwrap();
    let archive = dump(&src, tmp.path(), &[]);
    let inspect: serde_json::Value =
        serde_json::from_str(&run_ok(pgsafe().args(["inspect", "--json"]).arg(&archive))).unwrap();
    assert_eq!(inspect["totals"]["rows"], 2, "only the user's rows are data");

    let (code, _, stderr) = restore(&archive, &dst, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fingerprint(&src, "settings"), fingerprint(&dst, "settings"));
    let (code, _, stderr) = restore(&archive, &dst, &["--clean"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fingerprint(&src, "settings"), fingerprint(&dst, "settings"));
}

/// An extension's configuration table whose script made its keys, checks, indexes and defaults (as
/// PostGIS's `spatial_ref_sys`), and a configuration sequence: the restore leaves the table's parts to
/// `CREATE EXTENSION` and loads the user's rows, and the sequence gets the user's value. Before, the
/// restore added the primary key again ("multiple primary keys", exit 2), and the sequence came back
/// at its start although the restore said it verified.
#[test]
fn an_extensions_configuration_table_keeps_its_own_keys_and_its_sequence_the_users_value() {
    let Some(_extension) = TestExtension::install(
        "an_extensions_configuration_table_keeps_its_own_keys",
        "pgsafe_test_config2",
        "default_version = '1.0'\nrelocatable = false\nschema = cfg2\n",
        "CREATE TABLE cfg2.settings (k text PRIMARY KEY, v text CHECK (v <> ''), standard boolean NOT NULL DEFAULT false);
         CREATE INDEX settings_v ON cfg2.settings (v);
         INSERT INTO cfg2.settings VALUES ('version', '1', true);
         CREATE SEQUENCE cfg2.ids;
         SELECT pg_catalog.pg_extension_config_dump('cfg2.settings', 'WHERE NOT standard');
         SELECT pg_catalog.pg_extension_config_dump('cfg2.ids', '');",
    ) else {
        return;
    };
    let src = TestDb::new("ext2_src");
    src.psql(
        "CREATE SCHEMA cfg2; CREATE EXTENSION pgsafe_test_config2;
         INSERT INTO cfg2.settings (k, v) VALUES ('mine', 'x');
         SELECT setval('cfg2.ids', 33);
         CREATE TABLE uses (id int PRIMARY KEY, k text REFERENCES cfg2.settings (k));
         INSERT INTO uses VALUES (1, 'mine');",
    );
    let tmp = tempfile::tempdir().unwrap();
    let archive = dump(&src, tmp.path(), &[]);
    let dst = TestDb::new("ext2_dst");
    for extra in [&[][..], &["--clean"]] {
        let (code, _, stderr) =
            run(pgsafe().args(["restore", "-q", "-d", &dst.conn_string()]).args(extra).arg(&archive));
        assert_eq!(code, 0, "{extra:?}: {stderr}");
        for table in ["cfg2.settings", "uses"] {
            assert_eq!(fingerprint(&src, table), fingerprint(&dst, table), "{extra:?}: {table}");
        }
        assert_eq!(dst.psql("SELECT last_value || ' ' || is_called FROM cfg2.ids").trim(), "33 true", "{extra:?}");
        let constraints = "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'cfg2.settings'::regclass";
        assert_eq!(dst.psql(constraints), src.psql(constraints), "{extra:?}");
    }
}

/// The codecs of an archive's chunk frames, read from their headers, in file order.
fn chunk_codecs(archive: &Path) -> Vec<pgsafe::format::Codec> {
    let bytes = std::fs::read(archive).unwrap();
    let index = pgsafe::format::ArchiveIndex::open(&bytes[..]).unwrap();
    index.all_chunks().iter().map(|c| index.chunk_codec(c).unwrap()).collect()
}

/// The types' tables, large objects and sequence of `src` are in `dst` as they were.
fn assert_types_restored(src: &TestDb, dst: &TestDb) {
    for table in ["binary_types", "text_types", "no_columns", "tsqueries"] {
        assert_eq!(fingerprint(src, table), fingerprint(dst, table), "{table}");
    }
    let los = "SELECT string_agg(oid::text || ':' || encode(lo_get(oid), 'hex'), ',' ORDER BY oid) FROM pg_largeobject_metadata";
    assert_eq!(src.psql(los), dst.psql(los));
    assert_eq!(dst.psql("SELECT last_value, is_called FROM counter"), "101|t\n");
}

/// Every column type, NULLs, large objects and text parts travel through `-Z columnar` unchanged: binary
/// parts go columnar, text parts stay row-wise, and the archive says format 1.2.
#[test]
fn every_column_type_round_trips_with_the_columnar_codec() {
    use pgsafe::format::Codec;
    let src = TestDb::new("columnar_types_src");
    src.psql(TYPES_SCHEMA);
    src.psql(TYPES_DATA);
    let dst = TestDb::new("columnar_types_dst");
    copy_schema(&src, &dst);
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &["-j", "2", "-Z", "columnar"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&run_ok(pgsafe().args(["inspect", "--json"]).arg(&archive))).unwrap();
    assert_eq!(inspect["format_version"], "1.2");
    let codecs = chunk_codecs(&archive);
    assert!(codecs.contains(&Codec::Columnar), "{codecs:?}");
    assert!(run_ok(pgsafe().arg("verify").arg(&archive)).starts_with("sound:"));
    let (code, _, stderr) = restore(&archive, &dst, &["-j", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert_types_restored(&src, &dst);
}

/// An analytical table in many small chunks: every chunk of its binary stream with tuples is columnar, the archive is
/// smaller than with row-wise zstd at the same level, `verify` calls it sound (reading every chunk back
/// and recomputing its hashes), and the restore brings back the same rows.
#[test]
fn an_analytical_table_dumped_columnar_is_smaller_and_restores_identically() {
    use pgsafe::format::Codec;
    let src = TestDb::new("columnar_src");
    src.psql(
        "CREATE TABLE items (id bigint PRIMARY KEY, qty int, price numeric(15,2), shipped date, flag char(1),
                             mode text, note text);
         INSERT INTO items SELECT i, i % 50 + 1, (i % 9973) * 1.25, date '2020-01-01' + i % 900,
                (ARRAY['A', 'N', 'R'])[i % 3 + 1], (ARRAY['AIR', 'RAIL', 'SHIP', 'TRUCK'])[i % 4 + 1],
                CASE WHEN i % 5 = 0 THEN NULL ELSE 'note ' || (i % 97) END
         FROM generate_series(1, 40000) i;
         VACUUM ANALYZE items;",
    );
    let dst = TestDb::new("columnar_dst");
    copy_schema(&src, &dst);
    let dir = tempfile::tempdir().unwrap();
    let rowwise = dump(&src, dir.path(), &["--chunk-size", "64", "-Z", "1"]);
    let rowwise_len = std::fs::metadata(&rowwise).unwrap().len();
    let archive = dump(&src, dir.path(), &["--chunk-size", "64", "-Z", "columnar:1"]);
    let columnar_len = std::fs::metadata(&archive).unwrap().len();
    let codecs = chunk_codecs(&archive);
    // A last chunk that holds only the stream's trailer (when the server sends it apart) has no tuple to
    // split and stays row-wise.
    let rowwise_chunks = codecs.iter().filter(|c| **c != Codec::Columnar).count();
    assert!(codecs.len() > 10 && rowwise_chunks <= 1, "{codecs:?}");
    assert!(
        columnar_len * 10 < rowwise_len * 8,
        "columnar {columnar_len} bytes, row-wise {rowwise_len}: expected at least 20% smaller"
    );
    assert!(run_ok(pgsafe().arg("verify").arg(&archive)).starts_with("sound:"));
    let (code, _, stderr) = restore(&archive, &dst, &["-j", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fingerprint(&src, "items"), fingerprint(&dst, "items"));
}

#[test]
fn a_table_the_dumping_role_may_not_read_is_named_with_the_ways_on() {
    let db = TestDb::new("dump_unreadable");
    let role = format!("pgsafe_reader_{}", std::process::id());
    db.psql(&format!(
        "CREATE ROLE {role} LOGIN; CREATE TABLE open (id int); GRANT SELECT ON open TO {role};
         CREATE TABLE secret (id int);"
    ));
    let dir = tempfile::tempdir().unwrap();
    let conn = format!("{} user={role}", db.conn_string());
    let (code, _, stderr) = run(pgsafe().args(["dump", "-q", "-d", &conn, "-f"]).arg(dir.path().join("x.pgsafe")));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("locking the tables to dump: permission denied for table secret"), "{stderr}");
    assert!(stderr.contains("`-T SCHEMA.TABLE`") && !stderr.contains("DO $pgsafe_lock"), "{stderr}");
    // Left out, the rest dumps.
    run_ok(pgsafe().args(["dump", "-q", "-d", &conn, "-T", "public.secret", "-f"]).arg(dir.path().join("y.pgsafe")));
    db.psql(&format!("DROP OWNED BY {role}; DROP ROLE {role};"));
}

/// Found by testing as the users are: `pgsafe dump -f - | head -c 1000` (or a pipe whose reader exits)
/// exited 0 and said nothing, the archive cut short; and two dumps to the same file (overlapping cron
/// jobs) let the first to finish rename the other's unfinished file into place, and exit 0.
#[test]
fn a_dump_whose_reader_goes_away_or_whose_file_another_dump_writes_fails_and_replaces_nothing() {
    let db = TestDb::new("dump_reader_gone");
    // More than a pipe's buffer holds, compressed: the reader's exit is seen.
    db.psql("CREATE TABLE t AS SELECT g, md5(g::text) || md5((g * 7)::text) AS v FROM generate_series(1, 200000) g;");
    let mut child = pgsafe()
        .args(["dump", "-q", "-d", &db.conn_string(), "-f", "-"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 1000];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut head).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the reader went away before the archive ended"), "{stderr}");

    // Another dump holds the unfinished file: refused, nothing replaced or removed.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("db.pgsafe");
    let partial = dir.path().join("db.pgsafe.partial");
    std::fs::write(&archive, b"an older archive").unwrap();
    let held = std::fs::File::create(&partial).unwrap();
    held.lock().unwrap();
    let (code, _, stderr) = run(pgsafe().args(["dump", "-q", "-d", &db.conn_string(), "-f"]).arg(&archive));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("another pgsafe is writing"), "{stderr}");
    assert!(partial.exists(), "the other dump's file was removed");
    assert_eq!(std::fs::read(&archive).unwrap(), b"an older archive");
    // Once no one holds it, it is a leftover: removed, and the dump goes.
    drop(held);
    run_ok(pgsafe().args(["dump", "-q", "-d", &db.conn_string(), "-f"]).arg(&archive));
    assert!(!partial.exists());
    run_ok(pgsafe().arg("verify").arg(&archive));
}

/// `-f` naming a folder is refused before anything is dumped, not at the end, when the finished file
/// cannot be renamed into place ("Is a directory", "Not a directory").
#[test]
fn a_dump_to_a_folder_is_refused_before_it_runs() {
    let db = TestDb::new("dump_folder");
    db.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);");
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap().to_string();
    for target in [folder.clone(), format!("{folder}/"), format!("{folder}/new/")] {
        let (code, _, stderr) =
            run(pgsafe().args(["dump", "-q", "--no-audit", "-d", &db.conn_string(), "-f", &target]));
        assert_eq!(code, 2, "{target}: {stderr}");
        assert!(stderr.contains("is a folder"), "{target}: {stderr}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was written");
}

/// A table hash-partitioned on an enum column: the hashes follow the enum values' OIDs, which a restore
/// makes anew, so its rows load through the partitioned table and the server routes each to the
/// partition it now hashes to (pg_dump forces `--load-via-partition-root` for these). Before, every
/// partition's rows went into the partition they came from: "violates partition constraint", exit 2.
/// Verified as a whole; also in one transaction, on two sessions and data only.
#[test]
fn a_table_hash_partitioned_on_an_enum_restores_through_its_partitioned_table() {
    let src = TestDb::new("hash_enum_src");
    src.psql(
        "CREATE TYPE color AS ENUM ('red', 'green', 'blue', 'cyan', 'magenta', 'yellow', 'black', 'white');
         CREATE TABLE hp (c color, v int, note text) PARTITION BY HASH (c);
         CREATE TABLE hp0 PARTITION OF hp FOR VALUES WITH (MODULUS 3, REMAINDER 0);
         CREATE TABLE hp1 PARTITION OF hp FOR VALUES WITH (MODULUS 3, REMAINDER 1)
             PARTITION BY LIST (v);
         CREATE TABLE hp1_odd PARTITION OF hp1 FOR VALUES IN (1, 3, 5, 7, 9);
         CREATE TABLE hp1_even PARTITION OF hp1 DEFAULT;
         CREATE TABLE hp2 PARTITION OF hp FOR VALUES WITH (MODULUS 3, REMAINDER 2);
         INSERT INTO hp SELECT c, g, md5(g::text) FROM unnest(enum_range(NULL::color)) c, generate_series(1, 10) g;
         CREATE TABLE plain (id int PRIMARY KEY); INSERT INTO plain VALUES (1), (2);",
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);
    let inspect: serde_json::Value =
        serde_json::from_str(&run_ok(pgsafe().args(["inspect", "--json"]).arg(&archive))).unwrap();
    let rows = "SELECT count(*) || ' ' || md5(string_agg(c::text || v || note, ',' ORDER BY c, v)) FROM hp";
    for extra in [&[][..], &["-1"], &["-j", "2"], &["--verify", "count"]] {
        let dst = TestDb::new("hash_enum_dst");
        let (code, _, stderr) =
            run(pgsafe().args(["restore", "-q", "-d", &dst.conn_string()]).args(extra).arg(&archive));
        assert_eq!(code, 0, "{extra:?}: {stderr}\n{inspect}");
        assert_eq!(dst.psql(rows), src.psql(rows), "{extra:?}");
        assert_eq!(dst.psql(rows).split(' ').next(), Some("80"), "{extra:?}");
        assert_eq!(fingerprint(&dst, "plain"), fingerprint(&src, "plain"));
        if extra.is_empty() {
            let (code, _, stderr) =
                run(pgsafe().args(["restore", "-q", "--data-only", "--clean", "-d", &dst.conn_string()]).arg(&archive));
            assert_eq!(code, 0, "data only: {stderr}");
            assert_eq!(dst.psql(rows), src.psql(rows), "data only");
            // Without `--clean`, the rows in its partitions make the table not empty: refused.
            let (code, _, stderr) =
                run(pgsafe().args(["restore", "-q", "--data-only", "-d", &dst.conn_string()]).arg(&archive));
            assert_eq!(code, 2, "data only, not empty: {stderr}");
            assert!(stderr.contains("already holds data") && stderr.contains("`public.hp`"), "{stderr}");
            assert_eq!(dst.psql(rows), src.psql(rows), "data only, refused");
        }
    }
}

/// Found on GitLab's schema (`p_ci_builds`): a foreign key to a partitioned table's unique index, made
/// `ON ONLY` and completed by attaching each partition's index, waited for the indexes but not for their
/// attachments; on a big referencing table it started first and failed (`there is no unique constraint
/// matching given keys`), leaving the restore half done. A sub-partitioned level is attached in two steps.
#[test]
fn a_foreign_key_to_a_partitioned_tables_index_waits_for_every_attachment_of_it() {
    let src = TestDb::new("fk_attach_src");
    src.psql(
        "CREATE TABLE p (partition_id bigint NOT NULL, id bigint NOT NULL) PARTITION BY LIST (partition_id);
         CREATE TABLE p_100 PARTITION OF p FOR VALUES IN (100);
         CREATE TABLE p_101 PARTITION OF p FOR VALUES IN (101) PARTITION BY RANGE (id);
         CREATE TABLE p_101_a PARTITION OF p_101 FOR VALUES FROM (MINVALUE) TO (50);
         CREATE TABLE p_101_b PARTITION OF p_101 FOR VALUES FROM (50) TO (MAXVALUE);
         CREATE UNIQUE INDEX p_pid_id ON ONLY p (partition_id, id);
         CREATE UNIQUE INDEX p_100_pid_id ON p_100 (partition_id, id);
         ALTER INDEX p_pid_id ATTACH PARTITION p_100_pid_id;
         CREATE UNIQUE INDEX p_101_pid_id ON ONLY p_101 (partition_id, id);
         CREATE UNIQUE INDEX p_101_a_pid_id ON p_101_a (partition_id, id);
         CREATE UNIQUE INDEX p_101_b_pid_id ON p_101_b (partition_id, id);
         ALTER INDEX p_101_pid_id ATTACH PARTITION p_101_a_pid_id;
         ALTER INDEX p_101_pid_id ATTACH PARTITION p_101_b_pid_id;
         ALTER INDEX p_pid_id ATTACH PARTITION p_101_pid_id;
         CREATE TABLE c (id bigint PRIMARY KEY, partition_id bigint, build_id bigint);
         ALTER TABLE ONLY c ADD CONSTRAINT c_fk FOREIGN KEY (partition_id, build_id)
           REFERENCES p (partition_id, id) ON UPDATE CASCADE ON DELETE CASCADE;
         INSERT INTO p SELECT 100 + g % 2, g FROM generate_series(1, 100) g;
         INSERT INTO c SELECT g, 100 + (1 + g % 100) % 2, 1 + g % 100 FROM generate_series(1, 100000) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);
    for jobs in ["1", "2", "4"] {
        let dst = TestDb::new("fk_attach_dst");
        let (code, _, stderr) =
            run(pgsafe().args(["restore", "-q", "-j", jobs, "-d", &dst.conn_string()]).arg(&archive));
        assert_eq!(code, 0, "-j {jobs}: {stderr}");
        assert_eq!(fingerprint(&dst, "c"), fingerprint(&src, "c"), "-j {jobs}");
        let valid = "SELECT count(*) FILTER (WHERE indisvalid) || '/' || count(*) FROM pg_index \
                     WHERE indexrelid::regclass::text LIKE 'p%pid_id'";
        assert_eq!(dst.psql(valid).trim(), "5/5", "-j {jobs}");
        assert_eq!(dst.psql("SELECT convalidated FROM pg_constraint WHERE conname = 'c_fk'").trim(), "t", "-j {jobs}");
    }
}
