//! The harness works: tests reach a real server, and each gets a database nobody else touches.

use crate::support::TestDb;

#[tokio::test]
async fn a_test_database_answers_queries_through_the_driver_and_psql() {
    let db = TestDb::new("answers_queries");
    let client = db.connect().await;

    let row = client
        .query_one("SELECT version(), current_setting('server_version_num')::int, current_database()", &[])
        .await
        .expect("query the server version");
    let version: String = row.get(0);
    let version_num: i32 = row.get(1);
    let database: String = row.get(2);
    assert!(version.starts_with("PostgreSQL "), "unexpected version() {version:?}");
    assert!(version_num >= 90_600, "server_version_num {version_num} is implausible");
    assert_eq!(database, db.name());

    // psql must reach the same server and database as the driver.
    let from_psql = db.psql("SELECT current_setting('server_version_num'), current_database();");
    assert_eq!(from_psql, format!("{version_num}|{}\n", db.name()));
}

#[test]
fn each_test_database_starts_empty_and_is_dropped_afterwards() {
    let first = TestDb::new("fresh");
    let second = TestDb::new("fresh");
    assert_ne!(first.name(), second.name());

    first.psql("CREATE TABLE only_in_first (id int); INSERT INTO only_in_first VALUES (1);");
    assert_eq!(first.psql("SELECT count(*) FROM only_in_first;"), "1\n");
    assert_eq!(
        second.psql("SELECT count(*) FROM pg_class WHERE relname = 'only_in_first';"),
        "0\n",
        "a table made in one test database showed up in another"
    );

    let first_name = first.name().to_owned();
    drop(first);
    let exists = format!("SELECT count(*) FROM pg_database WHERE datname = '{first_name}';");
    assert_eq!(second.psql(&exists), "0\n", "`{first_name}` outlived its TestDb");
}
