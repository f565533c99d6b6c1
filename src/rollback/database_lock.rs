//! One `migrate` or `rollback` of a database at a time, across every machine that reaches its server.
//!
//! Two runs at once undo each other: a rollback puts back a snapshot that one run took while the other
//! was applying, and discards what the other had applied and reported as done. So each run holds a
//! PostgreSQL advisory lock for its whole length, and a second run refuses at once, naming the first.
//! The lock lives in the server, not in the store: two CI runners with stores of their own see it.
//!
//! ```text
//! session on the maintenance database (`postgres`, else `template1`; else, for a role that may connect
//! to its own database only, that database), named after the run
//!   -> pg_try_advisory_lock(key of the database's name): taken, or refused naming the holder's session
//!   -> held by that idle session until the run (and its own rollback) is over -> pg_advisory_unlock
//! ```
//!
//! Why there, and keyed so: a swap rollback renames the database, which needs every session on it
//! gone, and makes a database of another OID under the same name. A lock session on the database
//! itself would be terminated by the run's own swap (or would block it), and a key from its OID would
//! not stop a run that starts after the swap. A session on the maintenance database, with a key made
//! from the database's name, outlives the swap and means the same database before and after it. An
//! advisory lock belongs to its session, so a run that dies (killed, its machine gone) lets go as its
//! connection closes: no stale lock.

use crate::error::{Error, ErrorKind, Result};
use crate::pg::{ConnectOptions, Session};

/// The lock's holder, as the server shows it: what `pg_locks` and `pg_stat_activity` tell of the
/// session holding it. Works on PostgreSQL 10 and later.
const HOLDER_SQL: &str = include_str!("sql/database_lock_holder.sql");

/// The longest `application_name` the server keeps (NAMEDATALEN - 1).
const MAX_APPLICATION_NAME: usize = 63;

/// The lock of one database, held by a session of its own until [`DatabaseLock::release`] (or until
/// it is dropped, when the connection closes).
pub struct DatabaseLock {
    session: Session,
    database: String,
    key: i64,
}

impl std::fmt::Debug for DatabaseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseLock").field("database", &self.database).finish_non_exhaustive()
    }
}

impl DatabaseLock {
    /// Takes the lock of `connect`'s database for `command` (`pgsafe migrate`), or refuses at once
    /// (nothing waits: a second run of a migration is a mistake to report, not to queue), naming the run
    /// that holds it.
    pub async fn take(connect: &ConnectOptions, command: &str) -> Result<DatabaseLock> {
        let database = connect.dbname().to_owned();
        let maintenance = super::swap::maintenance_session(
            connect,
            &database,
            &format!("to hold the lock that keeps other migrations and rollbacks of `{database}` out"),
        )
        .await;
        // A role that may connect to its own database only (a managed service's) holds the lock there: it
        // cannot swap either (the rename needs another database), so nothing of its run ends the session.
        let session = match maintenance {
            Ok(session) => session,
            Err(e) => match Session::open(connect, None).await {
                Ok(session) => {
                    tracing::warn!(
                        "the lock keeping other migrations and rollbacks of `{database}` out is held in `{database}` \
                         itself ({e}): runs whose role reaches `postgres` lock there, and do not see it"
                    );
                    session
                }
                Err(_) => return Err(e),
            },
        };
        // Named before the lock is taken, so that whoever finds it held sees who holds it. An idle
        // session must not be ended by `idle_session_timeout` (14 and later): that would let go.
        let name = application_name(command, std::process::id(), &crate::store::audit::host_name());
        session.query("SELECT pg_catalog.set_config('application_name', $1, false)", &[&name]).await?;
        session
            .batch(
                "SELECT pg_catalog.set_config('idle_session_timeout', '0', false) \
                 WHERE pg_catalog.current_setting('server_version_num')::int >= 140000",
            )
            .await?;
        let key = key(&database);
        const TRY: &str = "SELECT pg_catalog.pg_try_advisory_lock($1)";
        let taken: bool = crate::pg::value(&session.query_one(TRY, &[&key]).await?, 0, TRY)?;
        if taken {
            return Ok(DatabaseLock { session, database, key });
        }
        let (high, low) = (((key as u64) >> 32) as i64, ((key as u64) & 0xffff_ffff) as i64);
        let holder = match session.query(HOLDER_SQL, &[&high, &low]).await?.first() {
            Some(row) => Some(Holder {
                pid: crate::pg::value(row, 0, HOLDER_SQL)?,
                application: crate::pg::value(row, 1, HOLDER_SQL)?,
                role: crate::pg::value(row, 2, HOLDER_SQL)?,
                client: crate::pg::value(row, 3, HOLDER_SQL)?,
                since: crate::pg::value(row, 4, HOLDER_SQL)?,
            }),
            None => None,
        };
        Err(refusal(&database, holder.as_ref()))
    }

    /// The database it keeps.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Refuses when the lock is no longer held: its session ended (a script that ends idle sessions, a
    /// server restart), so another `migrate` or `rollback` may have run since, whose work a rollback now
    /// would undo. Before a run changes the database, and before its own rollback.
    pub async fn still_held(&self) -> Result<()> {
        const HELD: &str = "SELECT EXISTS (SELECT FROM pg_catalog.pg_locks WHERE locktype = 'advisory' \
                            AND pid = pg_catalog.pg_backend_pid() AND granted)";
        let held = match self.session.query_one(HELD, &[]).await {
            Ok(row) => crate::pg::value::<bool, _>(&row, 0, HELD).unwrap_or(false),
            Err(_) => false,
        };
        if held {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::NeedsAttention,
            format!(
                "the lock that keeps other migrations and rollbacks of `{}` out was lost (its session ended): another \
                 run may have changed the database since, which this one must not undo",
                self.database
            ),
        ))
    }

    /// Lets go, and waits until the server has: a run that starts right after this one ends finds the
    /// database free. A failure only closes the session, which lets go as well.
    pub async fn release(self) {
        if let Err(e) = self.session.query("SELECT pg_catalog.pg_advisory_unlock($1)", &[&self.key]).await {
            tracing::warn!("the lock of `{}` was let go by closing its session: {e}", self.database);
        }
    }
}

/// The session holding the lock.
struct Holder {
    pid: i32,
    application: String,
    role: String,
    /// Its client's address, `local` for a Unix socket; `None` when this role may not see it.
    client: Option<String>,
    /// When the session started (UTC, RFC 3339); `None` when this role may not see it.
    since: Option<String>,
}

fn refusal(database: &str, holder: Option<&Holder>) -> Error {
    let who = match holder {
        Some(h) => {
            let mut session = format!("server session pid {}", h.pid);
            if !h.role.is_empty() {
                session.push_str(&format!(", role `{}`", h.role));
            }
            match h.client.as_deref() {
                Some("local") => session.push_str(", on a Unix socket"),
                Some(client) => session.push_str(&format!(", from {client}")),
                None => {}
            }
            if let Some(since) = &h.since {
                session.push_str(&format!(", since {since}"));
            }
            match h.application.as_str() {
                "" => format!("another session ({session})"),
                app => format!("`{app}` ({session})"),
            }
        }
        None => "another pgsafe, which let go just now".to_owned(),
    };
    Error::new(
        ErrorKind::InvalidInput,
        format!("`{database}` is being migrated or rolled back by {who}; nothing was done"),
    )
    .with_hint(
        "two runs at once undo each other (a rollback of one discards what the other applied): wait for it to end, then run again",
    )
}

/// The session's `application_name`: the command, this process and its host, cut to what the server
/// keeps.
fn application_name(command: &str, pid: u32, host: &str) -> String {
    let mut name = format!("{command} (pid {pid} on {host})");
    if name.len() > MAX_APPLICATION_NAME {
        let mut cut = MAX_APPLICATION_NAME - 1;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
        name.push(')');
    }
    name
}

/// The advisory lock's key: from the database's name (its OID changes with a swap), in a space of its
/// own so that it meets no other application's keys by chance.
fn key(database: &str) -> i64 {
    let hash = blake3::Hasher::new().update(b"pgsafe database lock\0").update(database.as_bytes()).finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash.as_bytes()[..8]);
    i64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_names_and_stable() {
        assert_eq!(key("shop"), key("shop"));
        assert_ne!(key("shop"), key("shop2"));
        // Other pgsafe versions must compute the same key: a change here lets two versions run at once.
        assert_eq!(
            key("shop"),
            i64::from_le_bytes(blake3::hash(b"pgsafe database lock\0shop").as_bytes()[..8].try_into().unwrap())
        );
    }

    #[test]
    fn the_application_name_fits_in_what_the_server_keeps() {
        assert_eq!(application_name("pgsafe migrate", 4242, "runner-1"), "pgsafe migrate (pid 4242 on runner-1)");
        let long = application_name("pgsafe rollback", 4242, &"é".repeat(40));
        assert!(long.len() <= MAX_APPLICATION_NAME && long.starts_with("pgsafe rollback (pid 4242 on é"), "{long}");
    }

    #[test]
    fn a_refusal_names_the_holder_and_says_nothing_was_done() {
        let holder = Holder {
            pid: 12345,
            application: "pgsafe migrate (pid 4242 on runner-1)".into(),
            role: "app".into(),
            client: Some("10.0.0.5".into()),
            since: Some("2026-12-05T02:44:24Z".into()),
        };
        let e = refusal("shop", Some(&holder));
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            e.to_string(),
            "`shop` is being migrated or rolled back by `pgsafe migrate (pid 4242 on runner-1)` (server session pid 12345, role `app`, from 10.0.0.5, since 2026-12-05T02:44:24Z); nothing was done"
        );
    }
}
