//! Server errors as pgsafe decides on them and names them: by SQLSTATE on a server whose messages are
//! German (`lc_messages`), never by English text; in a batch of statements, the statement that failed
//! rather than the first; a NULL where a value must be, as an error rather than a panic.
//!
//! The German tests need the OS locale `de_DE.UTF-8` and PostgreSQL's German translations (Debian:
//! `locales`, then `localedef -i de_DE -f UTF-8 de_DE.UTF-8`; `.ci/run` makes it). Without them they
//! fail under `CI=true` and only say "not run" elsewhere.

use std::time::{Duration, Instant};

use pgsafe::pg::{ConnectOptions, Session, quote_ident};
use pgsafe::{Error, ErrorKind, SqlState};

use crate::dump_restore::{pgsafe, run};
use crate::support::{self, TestDb};

/// Says that `test` cannot run here and why; a failure under CI, where it must run.
fn not_run(test: &str, reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} cannot run: {reason}");
    }
    eprintln!("{test}: not run: {reason}");
}

/// A database whose sessions get the server's messages in German, or `None` when this machine cannot
/// give them (after [`not_run`]).
async fn german_db(test: &str) -> Option<TestDb> {
    let db = TestDb::new(test);
    let set = format!("ALTER DATABASE {} SET lc_messages = 'de_DE.UTF-8'", quote_ident(db.name()));
    if let Err(e) = support::cluster().execute_admin(&set) {
        not_run(test, &format!("the OS has no locale `de_DE.UTF-8` ({e})"));
        return None;
    }
    let session = open(&db).await;
    let e = session.batch("SELECT 1/0").await.expect_err("division by zero");
    if !e.to_string().contains("Division durch Null") {
        not_run(test, &format!("the server's messages are not translated: {e}"));
        return None;
    }
    Some(db)
}

fn options(db: &TestDb) -> ConnectOptions {
    ConnectOptions::new(Some(&db.conn_string()), None, None, None).unwrap()
}

async fn open(db: &TestDb) -> Session {
    Session::open(&options(db), None).await.unwrap()
}

#[test]
fn a_lock_wait_timeout_on_a_german_server_is_named_as_one() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(db) = rt.block_on(german_db("lock_wait_german")) else { return };
    db.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);");
    let holder = rt.block_on(open(&db));
    rt.block_on(holder.batch("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (code, _, stderr) = run(pgsafe()
        .args(["dump", "-q", "--lock-wait-timeout", "0.5", "-d", &db.conn_string(), "-f"])
        .arg(dir.path().join("db.pgsafe")));
    rt.block_on(holder.batch("COMMIT")).unwrap();
    assert_eq!(code, 2, "{stderr}");
    // The server said `Zeitüberschreitung beim Warten auf Sperre`; pgsafe knew it by 55P03.
    assert!(stderr.contains("could not lock the tables to dump within 500ms"), "{stderr}");
    assert!(stderr.contains("--lock-wait-timeout"), "the hint: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(20), "the dump must give up, not wait");
}

#[tokio::test]
async fn a_deadlock_on_a_german_server_has_its_sqlstate() {
    let Some(db) = german_db("deadlock_german").await else { return };
    db.psql("CREATE TABLE a (id int); CREATE TABLE b (id int);");
    let (first, second) = (open(&db).await, open(&db).await);
    first.batch("BEGIN; LOCK TABLE a").await.unwrap();
    second.batch("BEGIN; LOCK TABLE b").await.unwrap();
    // Each now waits for the other's table; the server ends one of them after `deadlock_timeout`.
    let (one, other) = tokio::join!(first.batch("LOCK TABLE b"), second.batch("LOCK TABLE a"));
    let e: Error = match (one, other) {
        (Err(e), Ok(())) | (Ok(()), Err(e)) => e,
        (one, other) => panic!("exactly one side of a deadlock fails: {one:?} / {other:?}"),
    };
    assert_eq!(e.sqlstate(), Some(SqlState::DEADLOCK_DETECTED), "{e}");
    assert!(e.to_string().contains("Verklemmung"), "the message is the server's German one: {e}");
    // Context added on the way up keeps the code the restore's retry decides by.
    assert_eq!(e.context("creating `public.a`").sqlstate(), Some(SqlState::DEADLOCK_DETECTED));
}

#[tokio::test]
async fn a_statement_timeout_and_a_refused_lock_on_a_german_server_have_their_sqlstates() {
    let Some(db) = german_db("timeouts_german").await else { return };
    db.psql("CREATE TABLE t (id int);");
    let session = open(&db).await;
    let e = session.batch("SET statement_timeout = '50ms'; SELECT pg_sleep(5)").await.unwrap_err();
    assert_eq!(e.sqlstate(), Some(SqlState::QUERY_CANCELED), "{e}");
    assert_eq!(e.kind(), ErrorKind::Database);

    let holder = open(&db).await;
    holder.batch("BEGIN; LOCK TABLE t").await.unwrap();
    let e = session.batch("SET statement_timeout = 0; BEGIN; LOCK TABLE t NOWAIT").await.unwrap_err();
    assert_eq!(e.sqlstate(), Some(SqlState::LOCK_NOT_AVAILABLE), "{e}");
    let e = session.batch("SELECT 1").await.unwrap_err();
    assert_eq!(e.sqlstate(), Some(SqlState::IN_FAILED_SQL_TRANSACTION), "{e}");
}

#[tokio::test]
async fn a_batch_names_its_third_statement_when_that_one_fails() {
    let db = TestDb::new("batch_third");
    let session = open(&db).await;

    // The server places this error (a missing table) by its position in the text.
    let e = session
        .batch("CREATE TABLE a (i int); INSERT INTO a VALUES (1); SELECT * FROM missing_table; SELECT 4")
        .await
        .unwrap_err();
    let message = e.to_string();
    assert!(message.starts_with("`SELECT * FROM missing_table` (statement 3 of 4) failed on `"), "{message}");

    // This one (an overflow while running) has no position: the statements the server finished tell.
    let e = session
        .batch(
            "CREATE TABLE b (i int);\nINSERT INTO b VALUES (1);\n\
             INSERT INTO b SELECT i * 2147483647 FROM generate_series(1, 3) i;\nSELECT 4",
        )
        .await
        .unwrap_err();
    let message = e.to_string();
    assert!(
        message.starts_with(
            "`INSERT INTO b SELECT i * 2147483647 FROM generate_series(1, 3) i` (statement 3 of 4) failed on `"
        ),
        "{message}"
    );
    assert!(message.ends_with("integer out of range"), "{message}");

    // Strings with semicolons and characters of two bytes before it do not throw the count off.
    let e = session.batch("SELECT 'ä;ö;ü' AS x; SELECT $$;$$, 'é'; SELECT nope; SELECT 4").await.unwrap_err();
    assert!(e.to_string().starts_with("`SELECT nope` (statement 3 of 4) failed on `"), "{e}");

    // The privileges batch: a later GRANT fails, not the first REVOKE. (A batch is one transaction, so
    // the table the first batch made is gone.)
    db.psql("CREATE TABLE a (i int)");
    let e = session
        .batch("REVOKE ALL ON a FROM PUBLIC; GRANT SELECT ON a TO PUBLIC; GRANT SELECT ON a TO no_such_role")
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("`GRANT SELECT ON a TO no_such_role` (statement 3 of 3) failed on `"), "{e}");
}

#[tokio::test]
async fn a_single_statement_is_named_as_it_was() {
    let db = TestDb::new("batch_single");
    let session = open(&db).await;
    let e = session.batch("SELECT * FROM missing_table").await.unwrap_err();
    assert!(e.to_string().starts_with("`SELECT * FROM missing_table` failed on `"), "{e}");
    assert_eq!(e.sqlstate(), Some(SqlState::parse("42P01").unwrap()));
}

#[tokio::test]
async fn a_null_where_a_value_must_be_is_an_error_naming_the_query_and_column() {
    let db = TestDb::new("null_value");
    let session = open(&db).await;
    const QUERY: &str = "SELECT NULL::text AS name, 1::int4 AS n";
    let row = session.query_one(QUERY, &[]).await.unwrap();
    let e = pgsafe::pg::value::<String, _>(&row, "name", QUERY).unwrap_err();
    assert_eq!(e.to_string(), format!("column `name` of `{QUERY}`: a Postgres value was `NULL`"));
    let e = pgsafe::pg::value::<String, _>(&row, 1, QUERY).unwrap_err();
    assert!(e.to_string().starts_with(&format!("column `1` of `{QUERY}`: ")), "{e}");
    assert_eq!(pgsafe::pg::value::<Option<String>, _>(&row, "name", QUERY).unwrap(), None);
    assert_eq!(pgsafe::pg::value::<i32, _>(&row, "n", QUERY).unwrap(), 1);
}

/// A statement running when its operation is cancelled is stopped even when the first cancel request
/// stops nothing (it reached the backend before the statement began, or, here, the statement caught it):
/// the request is sent again until the statement ends. Found under load: a SIGINT to a snapshot whose
/// dump waited for a lock left it waiting minutes, until the other session let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_that_outlives_the_first_cancel_request_is_cancelled_again() {
    let db = TestDb::new("cancel_again");
    let cancel = pgsafe::cancel::Cancel::new();
    let session = Session::open(&options(&db), None).await.unwrap().cancelled_by(&cancel);
    let stubborn = "DO $$ BEGIN
                      BEGIN PERFORM pg_sleep(30); EXCEPTION WHEN query_canceled THEN NULL; END;
                      PERFORM pg_sleep(30);
                    END $$";
    let started = Instant::now();
    let later = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        later.cancel();
    });
    let e = session.batch(stubborn).await.expect_err("cancelled");
    assert_eq!(e.sqlstate(), Some(SqlState::parse("57014").unwrap()), "{e}");
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    // What begins after the cancellation (the operation's cleanup) runs.
    assert_eq!(session.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0), 1);
}
