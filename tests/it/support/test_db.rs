//! A fresh database for one test, dropped when the test is done with it.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use super::cluster::{Cluster, cluster};

/// PostgreSQL's limit on identifier length, in bytes.
const MAX_NAME_BYTES: usize = 63;

/// A database of its own for one test, on the shared [`cluster()`]; dropped on `Drop`.
pub struct TestDb {
    name: String,
    cluster: &'static Cluster,
}

impl TestDb {
    /// Creates an empty database named `t_<hint>_<pid>_<n>`, unique within the server.
    ///
    /// `hint` (usually the test's name) only makes the database easy to recognise in logs;
    /// characters other than ASCII letters, digits and `_` are dropped.
    pub fn new(hint: &str) -> TestDb {
        Self::with_options(hint, "")
    }

    /// [`TestDb::new`], with `options` after `CREATE DATABASE name` (`ENCODING 'LATIN1' ...`).
    pub fn with_options(hint: &str, options: &str) -> TestDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let suffix = format!("_{}_{n}", std::process::id());
        let hint: String = hint
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .map(|c| c.to_ascii_lowercase())
            .take(MAX_NAME_BYTES - "t_".len() - suffix.len())
            .collect();
        let name = format!("t_{hint}{suffix}");

        let cluster = cluster();
        cluster
            .execute_admin(&format!("CREATE DATABASE {} {options}", quote_ident(&name)))
            .unwrap_or_else(|e| panic!("could not create test database `{name}`: {e}"));
        TestDb { name, cluster }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A libpq key=value connection string for this database.
    pub fn conn_string(&self) -> String {
        self.cluster.conn_string(&self.name)
    }

    /// A client connected to this database; its connection runs as a task on the caller's runtime.
    pub async fn connect(&self) -> Client {
        let (client, connection) = tokio_postgres::connect(&self.conn_string(), NoTls)
            .await
            .unwrap_or_else(|e| panic!("could not connect to test database `{}`: {e}", self.name));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // `DROP DATABASE ... WITH (FORCE)` ends connections the test left open; that is
                // the cleanup working, not news.
                if e.code() != Some(&SqlState::ADMIN_SHUTDOWN) {
                    eprintln!("test database connection failed: {e}");
                }
            }
        });
        client
    }

    /// Gives the database to `role`, a login role that is no superuser and may not make databases (made
    /// if missing), with `CREATE` on `public`: its owner as on a managed service. `then` runs after, as
    /// that role.
    pub fn give_to(&self, role: &str, then: &str) {
        self.psql(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
               CREATE ROLE {role} LOGIN; END IF; END $$;
             ALTER DATABASE \"{db}\" OWNER TO {role};
             GRANT CREATE ON SCHEMA public TO {role};
             SET ROLE {role};
             {then}",
            db = self.name()
        ));
    }

    /// Runs `sql` as a script through `psql` and returns what it printed.
    ///
    /// `psql -X -q -A -t -v ON_ERROR_STOP=1`: no `.psqlrc`, no command tags, rows as `|`-separated
    /// lines without headers, stop at the first error. Panics with psql's stderr when it fails.
    /// Blocks the calling thread.
    pub fn psql(&self, sql: &str) -> String {
        let psql = self.cluster.bin("psql");
        let mut child = Command::new(&psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-", "-d"])
            .arg(self.conn_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not run `{}`: {e}", psql.display()));
        let mut stdin = child.stdin.take().expect("psql was spawned with a stdin pipe");
        // Written from another thread so that a long script and a long output cannot block each
        // other on full pipes.
        let script = sql.to_owned();
        let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
        let output = child.wait_with_output().unwrap_or_else(|e| panic!("could not wait for `psql`: {e}"));
        let written = writer.join().expect("the thread writing to psql panicked");
        assert!(
            output.status.success(),
            "psql failed ({}) on database `{}`\n--- SQL ---\n{sql}\n--- stderr ---\n{}",
            output.status,
            self.name,
            String::from_utf8_lossy(&output.stderr),
        );
        written.unwrap_or_else(|e| panic!("could not send the SQL to psql: {e}"));
        String::from_utf8(output.stdout).expect("psql printed something that is not UTF-8")
    }
}

impl Drop for TestDb {
    /// Drops the database, best effort: a failure is reported but never panics, so it cannot hide
    /// the test's own failure.
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&self.name));
        if let Err(e) = self.cluster.execute_admin(&sql) {
            eprintln!("could not drop test database `{}`: {e}", self.name);
        }
    }
}

/// `name` as a PostgreSQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
