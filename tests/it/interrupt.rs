//! Interruptions as a terminal or a CI runner sends them (SIGINT, SIGTERM): the running statements are
//! cancelled on the server, the cleanup runs (no `.partial` left, triggers and foreign keys back), the
//! exit code is 2, and the message says what was and was not done.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::data_only::{DATA, SCHEMA, owner_of, triggers_and_keys};
use crate::dump_restore::{copy_schema, dump, pgsafe};
use crate::faults::{big_db, finish};
use crate::support::{TestDb, cluster};

pub(crate) fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(ok.success(), "kill -{name} failed");
}

/// Polls `done` every 20 ms for up to a minute; panics with `what` when it never holds.
pub(crate) fn wait_until(what: &str, child: &mut Child, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("pgsafe exited ({status}) before {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} never happened");
}

/// Another session that takes `lock` (a `LOCK TABLE` statement) on `db` and holds it; wait for it with
/// `held`, end it with `release`.
pub(crate) fn hold(db: &TestDb, lock: &str) -> Child {
    Command::new(cluster().bin("psql"))
        .args(["-X", "-q", "-d", &db.conn_string(), "-c"])
        .arg(format!("BEGIN; {lock}; SELECT pg_sleep(300);"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// [`hold`], once the lock (`mode` on `table`) is granted: waits for it up to `within`.
pub(crate) fn hold_until_held(db: &TestDb, lock: &str, table: &str, mode: &str, within: Duration) -> Child {
    let holder = hold(db, lock);
    let deadline = Instant::now() + within;
    while !held(db, table, mode) {
        assert!(Instant::now() < deadline, "the other session never took its lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    holder
}

/// Whether a lock of `mode` on `table` is granted in `db`.
pub(crate) fn held(db: &TestDb, table: &str, mode: &str) -> bool {
    db.psql(&format!(
        "SELECT count(*) FROM pg_locks WHERE relation = '{table}'::regclass AND mode = '{mode}' AND granted"
    )) == "1\n"
}

/// Ends the session `hold` started.
pub(crate) fn release(db: &TestDb, mut holder: Child) {
    db.psql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE '%pg_sleep(300)%'
           AND pid <> pg_backend_pid()",
        db.name()
    ));
    let _ = holder.wait();
}

/// Statements pgsafe still runs on `db` (anything but this query's own session and `holder`).
pub(crate) fn pgsafe_statements(db: &TestDb) -> String {
    db.psql(&format!(
        "SELECT coalesce(string_agg(left(query, 60), '; '), '') FROM pg_stat_activity
          WHERE datname = '{}' AND pid <> pg_backend_pid() AND application_name = 'pgsafe' AND state = 'active'",
        db.name()
    ))
}

/// [`pgsafe_statements`] once they are gone, or after five seconds: a backend whose statement was
/// cancelled reports itself idle a moment after its client heard of it, which a loaded machine can let
/// pgsafe's exit outrun. One never cancelled (a wait on a lock held for minutes) is still there.
pub(crate) fn statements_left(db: &TestDb) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = pgsafe_statements(db);
        if left == "\n" || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_dump_interrupted_by_sigterm_leaves_no_file_and_exits_2() {
    let db = big_db("sigterm_dump");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("db.pgsafe");
    let partial = dir.path().join("db.pgsafe.partial");
    let mut child = pgsafe()
        .args(["dump", "-q", "-j", "1", "--chunk-size", "64", "-d", &db.conn_string(), "-f"])
        .arg(&archive)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the archive grew", &mut child, || std::fs::metadata(&partial).is_ok_and(|m| m.len() > 200_000));
    signal(&child, "TERM");
    let (code, stderr) = finish(child);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("SIGTERM received") && stderr.contains("the dump was interrupted"), "{stderr}");
    assert!(stderr.contains("no archive was written"), "{stderr}");
    assert!(!archive.exists() && !partial.exists(), "an interrupted dump leaves no file: {:?}", list(dir.path()));
    assert_eq!(statements_left(&db), "\n");
}

fn list(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

#[test]
fn an_interrupted_owners_restore_cancels_its_statements_and_leaves_triggers_and_keys_as_they_were() {
    let src = TestDb::new("sigint_src");
    src.psql(SCHEMA);
    src.psql(DATA);
    src.psql("CREATE TABLE blocked (id int); INSERT INTO blocked SELECT generate_series(1, 1000);");
    let dst = TestDb::new("sigint_dst");
    copy_schema(&src, &dst);
    let as_owner = owner_of(&dst, "pgsafe_owner_sigint");
    dst.psql("ALTER TABLE blocked OWNER TO pgsafe_owner_sigint;");
    let before = triggers_and_keys(&dst);
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &["--exclude-table-data", "audit"]);

    // Another session holds a lock that the load of `blocked` must wait for.
    let mut holder = Command::new(cluster().bin("psql"))
        .args(["-X", "-q", "-d", &dst.conn_string(), "-c"])
        .arg("BEGIN; LOCK TABLE blocked IN SHARE MODE; SELECT pg_sleep(300);")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the lock was taken", &mut holder, || {
        dst.psql(
            "SELECT count(*) FROM pg_locks WHERE relation = 'blocked'::regclass AND mode = 'ShareLock' AND granted",
        ) == "1\n"
    });
    let mut child = pgsafe()
        .args(["restore", "--data-only", "-q", "-j", "2", "-d", &as_owner])
        .arg(&archive)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the load waited for the lock", &mut child, || pgsafe_statements(&dst).contains("COPY public.blocked"));
    // Everything else is in: the foreign keys hold again once they are back.
    wait_until("the other tables were loaded", &mut child, || {
        dst.psql("SELECT (SELECT count(*) FROM parent) + (SELECT count(*) FROM child) + (SELECT count(*) FROM reading)")
            == "8000\n"
    });
    signal(&child, "INT");
    let (code, stderr) = finish(child);
    // Without the cancel request the COPY would wait on as long as the lock is held.
    let left = statements_left(&dst);
    release(&dst, holder);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("SIGINT received") && stderr.contains("the restore was interrupted"), "{stderr}");
    assert!(
        stderr.contains("parts were loaded") && stderr.contains("their triggers and foreign keys are as they were"),
        "{stderr}"
    );
    assert_eq!(left, "\n", "the interrupted COPY must be cancelled on the server");
    assert_eq!(triggers_and_keys(&dst), before, "triggers and foreign keys must be back as they were");
    assert_eq!(dst.psql("SELECT count(*) FROM audit"), "0\n");
}

#[test]
fn an_interrupted_single_transaction_restore_leaves_nothing_and_says_so() {
    let src = big_db("sigterm_whole_src");
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);
    let dst = TestDb::new("sigterm_whole_dst");
    let mut child = pgsafe()
        .args(["restore", "-q", "--single-transaction", "-d", &dst.conn_string()])
        .arg(&archive)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the load started", &mut child, || pgsafe_statements(&dst).contains("COPY public.big"));
    signal(&child, "TERM");
    let (code, stderr) = finish(child);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("the restore was interrupted: nothing was restored (the transaction rolled back)"),
        "{stderr}"
    );
    assert_eq!(statements_left(&dst), "\n");
    assert_eq!(dst.psql("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"), "0\n");
}

#[test]
fn a_dump_waiting_on_a_lock_is_cancelled_on_the_server_when_interrupted() {
    let db = TestDb::new("sigterm_lock_dump");
    db.psql("CREATE TABLE locked (id int); INSERT INTO locked VALUES (1);");
    let mut holder = hold(&db, "LOCK TABLE locked IN ACCESS EXCLUSIVE MODE");
    wait_until("the lock was taken", &mut holder, || held(&db, "locked", "AccessExclusiveLock"));
    let dir = tempfile::tempdir().unwrap();
    let mut child = pgsafe()
        .args(["dump", "-q", "-d", &db.conn_string(), "-f"])
        .arg(dir.path().join("db.pgsafe"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = || {
        db.psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'pgsafe'
               AND wait_event_type = 'Lock'",
            db.name()
        )) == "1\n"
    };
    wait_until("the dump waited for the lock", &mut child, waiting);
    signal(&child, "TERM");
    let (code, stderr) = finish(child);
    // A backend waiting on a lock does not notice that its client is gone: only the cancel request ends it.
    let left = statements_left(&db);
    release(&db, holder);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the dump was interrupted: no archive was written"), "{stderr}");
    assert_eq!(left, "\n", "the dump's statement must be cancelled on the server");
    assert!(list(dir.path()).is_empty(), "{:?}", list(dir.path()));
}

#[test]
fn an_interrupted_clean_single_transaction_restore_keeps_what_the_target_held() {
    // Before the fix `--clean` dropped the target's objects in a transaction of its own, before the
    // restore's: an interruption then left the target empty, saying that nothing was restored.
    let src = big_db("sigint_clean_src");
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);
    let dst = TestDb::new("sigint_clean_dst");
    crate::dump_restore::run_ok(pgsafe().args(["restore", "-q", "-d", &dst.conn_string()]).arg(&archive));
    let mut child = pgsafe()
        .args(["restore", "-q", "--clean", "--single-transaction", "-d", &dst.conn_string()])
        .arg(&archive)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the load started", &mut child, || pgsafe_statements(&dst).contains("COPY public.big"));
    signal(&child, "INT");
    let (code, stderr) = finish(child);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nothing was restored (the transaction rolled back)"), "{stderr}");
    assert_eq!(dst.psql("SELECT count(*) FROM big"), "400000\n", "the target keeps what it held");
}

#[test]
fn an_interrupted_create_drops_the_database_it_made() {
    let src = big_db("sigint_create_src");
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path(), &[]);
    // `--create` makes the archive's database, named as the source: restore through another database
    // of a cluster that lacks it, after dropping the source.
    let name = src.name().to_string();
    let through = TestDb::new("sigint_create_through");
    drop(src);
    let mut child = pgsafe()
        .args(["restore", "-q", "--create", "--single-transaction", "-d", &through.conn_string()])
        .arg(&archive)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let created = || {
        through.psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}' AND query LIKE 'COPY public.big%' AND state = 'active'"
        )) == "1\n"
    };
    wait_until("the load started", &mut child, created);
    signal(&child, "TERM");
    let (code, stderr) = finish(child);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("the database `{name}` that `--create` made was dropped again")), "{stderr}");
    assert_eq!(through.psql(&format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'")), "0\n");
}

/// `pgsafe migrate` of two files on a table `t` of `db`: the first adds a column and commits, the second
/// sleeps; returned once the second runs, its output piped.
fn slow_migration(db: &TestDb, dir: &Path) -> Child {
    db.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);");
    let first = dir.join("0001_note.sql");
    std::fs::write(&first, "ALTER TABLE t ADD COLUMN note text;\n").unwrap();
    let slow = dir.join("0002_slow.sql");
    std::fs::write(&slow, "SELECT pg_sleep(30);\n").unwrap();
    let mut child = pgsafe()
        .args(["migrate", "-q", "--skip-dry-run", "--store"])
        .arg(dir.join("store"))
        .args(["-d", &db.conn_string()])
        .args([&first, &slow])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the migration's statement ran", &mut child, || pgsafe_statements(db).contains("pg_sleep"));
    child
}

/// A second signal stops a migration at once, its cleanup unfinished: exit 3, which says a person must look
/// at the database, and where (a dump's or restore's second signal is exit 2: it leaves no database part way).
#[test]
fn a_migration_stopped_at_once_by_a_second_sigterm_exits_3_and_says_where_to_look() {
    let db = TestDb::new("sigterm_twice_migrate");
    let dir = tempfile::tempdir().unwrap();
    // The first file commits, so the first signal starts a rollback, which the second one cuts short.
    let child = slow_migration(&db, dir.path());
    signal(&child, "TERM");
    // Apart by more than the 100 ms within which a repeat counts as the same signal.
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    let (code, stderr) = finish(child);
    assert_eq!(code, 3, "{stderr}");
    // It names the database, what was committed and the rollback to run.
    assert!(stderr.contains("stopped at once; the cleanup did not finish: `"), "{stderr}");
    assert!(
        stderr.contains("0001_note.sql") && stderr.contains(&format!("`pgsafe rollback -d {} ", db.name())),
        "{stderr}"
    );
    // What the cut-short rollback left: its copy being restored, or the database it set aside.
    drop_databases_left_by(&db);
}

/// One SIGTERM while a migration's statement runs: it is cancelled, the migration rolled back, and the
/// report says an interruption cancelled it (the server says only "canceling statement due to user request").
#[test]
fn a_migration_interrupted_while_applying_is_rolled_back_and_says_it_was_interrupted() {
    let db = TestDb::new("sigterm_migrate");
    let dir = tempfile::tempdir().unwrap();
    let child = slow_migration(&db, dir.path());
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("FAILED and rolled back") && stdout.contains("interrupted (SIGINT or SIGTERM)"),
        "{stdout}"
    );
    assert_eq!(db.psql(NOTE_COLUMNS).trim(), "0");
    drop_databases_left_by(&db);
}

/// A SIGTERM while `migrate` rehearses (the rehearsal's statement runs, here a long one): it stops, exit 2,
/// nothing applied, and the audit log ends with the rehearsal's step `failed` (the tester's bug 4: the log
/// ended with "migrate snapshot ok", and `status` showed that as the run's last word).
#[test]
fn a_migration_interrupted_while_rehearsing_records_the_rehearsal_as_failed() {
    let db = TestDb::new("sigterm_rehearsal");
    db.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("0001_slow.sql");
    std::fs::write(&file, "ALTER TABLE t ADD COLUMN note text;\nSELECT pg_sleep(30);\n").unwrap();
    let store = dir.path().join("store");
    let mut child = pgsafe()
        .args(["migrate", "-q", "--store"])
        .arg(&store)
        .args(["-d", &db.conn_string()])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the rehearsal's statement ran", &mut child, || pgsafe_statements(&db).contains("pg_sleep"));
    signal(&child, "TERM");
    let (code, stderr) = finish(child);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(db.psql(NOTE_COLUMNS).trim(), "0");
    let audit = std::fs::read_to_string(store.join("audit.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!((&last["step"], &last["outcome"]), (&"dry-run".into(), &"failed".into()), "{audit}");
}

/// GNU `timeout` (without `--foreground`) signals the command and then its process group: two SIGTERMs
/// at once (the Mattermost tester's bug 2). They counted as two, and the migration stopped at once, half
/// applied and not rolled back (exit 3). Two within a moment are now one: rolled back, exit 1.
#[test]
fn two_sigterms_at_once_as_timeout_sends_them_are_one_and_the_migration_rolls_back() {
    let db = TestDb::new("sigterm_twice_at_once");
    let dir = tempfile::tempdir().unwrap();
    let child = slow_migration(&db, dir.path());
    let pid = child.id().to_string();
    // Back to back, two may reach the handler as one; 20 ms apart they are always two signals.
    let ok =
        Command::new("sh").args(["-c", &format!("kill -TERM {pid}; sleep 0.02; kill -TERM {pid}")]).status().unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAILED and rolled back"), "{stdout}");
    assert_eq!(db.psql(NOTE_COLUMNS).trim(), "0");
    drop_databases_left_by(&db);
}

/// How many `note` columns `t` has: the one [`slow_migration`]'s first file adds.
const NOTE_COLUMNS: &str =
    "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'note'";

/// Drops the databases a migration's rollback of `db` left beside it (`DB_replaced_...`, `DB_rollback_...`).
fn drop_databases_left_by(db: &TestDb) {
    let left =
        db.psql(&format!("SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE '{}\\_%'", db.name()));
    for name in left.split_whitespace() {
        crate::rollback::drop_database(name);
    }
}
