//! The whole rollback's last step: the restored, verified database takes the current one's name.
//!
//! ```text
//! maintenance session -> current database closed to new sessions -> other sessions leave (or are
//! terminated after --terminate-after) -> current renamed aside -> restored renamed into its name ->
//! the aside database opened again (kept until someone drops it)
//! ```
//! Every step before the second rename is undone on failure, so the current database keeps its name and
//! its rows; a failure of the second rename renames the current one back. Only when that fails too is
//! the state one a person must mend, and the error says exactly what it is and what to run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result, SqlState};
use crate::pg::{ConnectOptions, Session};
use crate::sql::quote_ident;

/// A session of another client on the database being replaced.
#[derive(Debug, Clone, Serialize)]
pub struct OtherSession {
    pub pid: i32,
    pub role: String,
    pub application: String,
    /// The client's address, or `local` for a Unix socket.
    pub client: String,
    pub state: String,
}

impl std::fmt::Display for OtherSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({} from {}", self.pid, self.role, self.client)?;
        if !self.application.is_empty() {
            write!(f, ", `{}`", self.application)?;
        }
        write!(f, ", {})", self.state)
    }
}

/// How the other sessions are dealt with.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Wait this long for them to leave.
    pub wait: Duration,
    /// Then terminate those left (`--terminate-after`), or give up.
    pub terminate: bool,
}

/// What the swap did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Swapped {
    /// Sessions that left by themselves while the swap waited.
    pub left: Vec<OtherSession>,
    /// Sessions the swap terminated.
    pub terminated: Vec<OtherSession>,
}

/// A session on a database of the cluster other than `avoid`, for statements on databases: `postgres`,
/// else `template1`, as the server's own tools look for one. `purpose` says what for, when it fails
/// (`to rename databases`).
pub(crate) async fn maintenance_session(connect: &ConnectOptions, avoid: &str, purpose: &str) -> Result<Session> {
    let mut last = None;
    for name in ["postgres", "template1"].into_iter().filter(|n| *n != avoid) {
        match Session::open(&connect.with_dbname(name), None).await {
            Ok(session) => return Ok(session),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| Error::new(ErrorKind::Connect, "no maintenance database"))
        .context(format!("connecting to the maintenance database (`postgres`, else `template1`) {purpose}")))
}

/// Whether the role may make and rename databases, and give the copy the database's own settings: a
/// superuser, or a role with CREATEDB that owns `database`, and has CREATEROLE where the database holds
/// settings of other roles (`ALTER ROLE r IN DATABASE d SET ...`, which only such a role may make again).
/// `None` when it may, else what it lacks.
pub(crate) async fn missing_rights(session: &Session, database: &str) -> Result<Option<String>> {
    let sql = "SELECT r.rolsuper, r.rolcreatedb, d.datdba = r.oid AS owns, \
                      (SELECT pg_catalog.string_agg(o.rolname::text, '`, `' ORDER BY o.rolname) \
                       FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_roles o ON o.oid = s.setrole \
                       WHERE s.setdatabase = d.oid AND s.setrole <> r.oid AND NOT r.rolcreaterole) AS others \
               FROM pg_catalog.pg_roles r, pg_catalog.pg_database d \
               WHERE r.rolname = current_user AND d.datname = $1";
    let row = session.query_one(sql, &[&database]).await?;
    let get = |i: usize| crate::pg::value::<bool, _>(&row, i, sql);
    let (superuser, createdb, owns) = (get(0)?, get(1)?, get(2)?);
    let others: Option<String> = crate::pg::value(&row, 3, sql)?;
    Ok(match (superuser, createdb, owns) {
        (true, _, _) => None,
        (_, true, true) => others.map(|roles| {
            format!(
                "`{database}` holds settings of the roles `{roles}` (`ALTER ROLE ... IN DATABASE ... SET`), which the \
                 role, without CREATEROLE, cannot give the new database"
            )
        }),
        (_, false, true) => Some(format!("the role `{}` lacks CREATEDB", session_user(session).await?)),
        (_, true, false) => Some(format!("the role `{}` does not own `{database}`", session_user(session).await?)),
        (_, false, false) => {
            Some(format!("the role `{}` lacks CREATEDB and does not own `{database}`", session_user(session).await?))
        }
    })
}

async fn session_user(session: &Session) -> Result<String> {
    crate::pg::value(&session.query_one("SELECT current_user::text", &[]).await?, 0, "current_user")
}

/// The other sessions on `database`.
pub(crate) async fn others(session: &Session, database: &str) -> Result<Vec<OtherSession>> {
    const SQL: &str = "SELECT pid, coalesce(usename::text, ''), coalesce(application_name, ''), \
        coalesce(host(client_addr), 'local'), coalesce(state, '') \
        FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid() \
        AND backend_type = 'client backend' ORDER BY pid";
    let mut list = Vec::new();
    for row in session.query(SQL, &[&database]).await? {
        list.push(OtherSession {
            pid: crate::pg::value(&row, 0, SQL)?,
            role: crate::pg::value(&row, 1, SQL)?,
            application: crate::pg::value(&row, 2, SQL)?,
            client: crate::pg::value(&row, 3, SQL)?,
            state: crate::pg::value(&row, 4, SQL)?,
        });
    }
    Ok(list)
}

/// Waits until nobody but pgsafe's own sessions is on `database`, for up to `wait`.
pub(crate) async fn wait_until_empty(
    session: &Session,
    database: &str,
    wait: Duration,
    cancel: &Cancel,
) -> Result<Vec<OtherSession>> {
    let started = Instant::now();
    loop {
        let left = others(session, database).await?;
        if left.is_empty() || started.elapsed() >= wait {
            return Ok(left);
        }
        cancel.check("the rollback")?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Gives `restored` the name `current`, keeping `current` as `aside`. `connect` is the user's, for the
/// session a second signal opens to put back what the swap left part way (see [`Stake`]).
pub(crate) async fn swap(
    session: &Session,
    connect: &ConnectOptions,
    current: &str,
    restored: &str,
    aside: &str,
    policy: SessionPolicy,
    cancel: &Cancel,
) -> Result<Swapped> {
    let (q_current, q_restored, q_aside) = (quote_ident(current), quote_ident(restored), quote_ident(aside));
    let mut swapped = Swapped::default();
    let _stake = Stake::new(cancel, connect, [current, restored, aside]);
    // The restore's own sessions may take a moment to be gone from the server.
    let lingering = wait_until_empty(session, restored, Duration::from_secs(10), cancel).await?;
    if let Some(s) = lingering.first() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the restored database `{restored}` has a session of another client: {s}; the current database was not changed"
            ),
        ));
    }
    session
        .batch(&format!("ALTER DATABASE {q_current} WITH ALLOW_CONNECTIONS false"))
        .await
        .map_err(|e| e.context(format!("closing `{current}` to new sessions for the swap; it was not changed")))?;
    let reopen = format!("ALTER DATABASE {q_current} WITH ALLOW_CONNECTIONS true");
    let closed = async {
        let before = others(session, current).await?;
        let left = wait_until_empty(session, current, policy.wait, cancel).await?;
        swapped.left = before.iter().filter(|b| !left.iter().any(|l| l.pid == b.pid)).cloned().collect();
        if !left.is_empty() {
            if !policy.terminate {
                let list: Vec<String> = left.iter().map(ToString::to_string).collect();
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "{} other session(s) stayed on `{current}` for {}s: {}",
                        left.len(),
                        policy.wait.as_secs(),
                        list.join("; ")
                    ),
                )
                .with_hint("`--terminate-after SECONDS` ends the sessions still there after that long"));
            }
            terminate(session, &left).await?;
            let still = wait_until_empty(session, current, Duration::from_secs(10), cancel).await?;
            if let Some(s) = still.first() {
                return Err(Error::new(
                    ErrorKind::Database,
                    format!("session {s} on `{current}` did not end after pg_terminate_backend"),
                ));
            }
            swapped.terminated = left;
        }
        cancel.check("the rollback")?;
        session.batch(&format!("ALTER DATABASE {q_current} RENAME TO {q_aside}")).await
    }
    .await;
    if let Err(e) = closed {
        let reopened = session.batch(&reopen).await;
        let e = e.context(format!("the database `{current}` was not changed"));
        return Err(match reopened {
            Ok(()) => e,
            Err(r) => e.and_hint(format!("it is still closed to new sessions ({r}); run: {reopen}")),
        });
    }
    if let Err(e) = session.batch(&format!("ALTER DATABASE {q_restored} RENAME TO {q_current}")).await {
        let back = format!("ALTER DATABASE {q_aside} RENAME TO {q_current}");
        return Err(match session.batch(&back).await {
            Ok(()) => {
                let _ = session.batch(&reopen).await;
                e.context(format!(
                    "renaming the restored database `{restored}` to `{current}` failed; `{current}` was renamed back and is unchanged"
                ))
            }
            Err(back_failed) => Error::new(
                ErrorKind::NeedsAttention,
                format!(
                    "the swap stopped half way: the current database is now named `{aside}` (closed to new sessions) and the restored one `{restored}`; no database is named `{current}`. Renaming the restored one failed ({e}), and so did renaming the current one back ({back_failed})"
                ),
            )
            .with_hint(format!(
                "to put the current database back, run on `postgres`: {back}; ALTER DATABASE {q_current} WITH ALLOW_CONNECTIONS true;"
            )),
        });
    }
    // The replaced database stays, for inspection, open to sessions as it was.
    let aside_reopened = format!("ALTER DATABASE {q_aside} WITH ALLOW_CONNECTIONS true");
    if let Err(e) = session.batch(&aside_reopened).await {
        tracing::warn!("the replaced database `{aside}` is still closed to new sessions ({e}); run: {aside_reopened}");
    }
    Ok(swapped)
}

/// While a swap runs, what a second signal (which stops pgsafe at once) finds at stake: the database
/// closed to new sessions, or renamed aside with nothing yet in its name. The signal first puts that
/// back, through a session of its own, by what it finds on the server (wherever the swap got to), then
/// says what is left, and what was at stake before the swap (what the database holds, what puts it back);
/// when the swap returns, what was at stake before it is again.
struct Stake<'a> {
    cancel: &'a Cancel,
    before: Option<String>,
}

impl<'a> Stake<'a> {
    fn new(cancel: &'a Cancel, connect: &ConnectOptions, [current, restored, aside]: [&str; 3]) -> Stake<'a> {
        let (q_current, q_aside) = (quote_ident(current), quote_ident(aside));
        let before = cancel.at_stake();
        let then = before.as_ref().map(|b| format!(". Once `{current}` is back: {b}")).unwrap_or_default();
        cancel.set_at_stake(Some(format!(
            "the swap of `{current}` was cut short, and putting it back failed: `{current}` may be closed to new sessions, or renamed `{aside}`, and the restored snapshot may be left as `{restored}`. On `postgres`: if no database is named `{current}`, run ALTER DATABASE {q_aside} RENAME TO {q_current}; then ALTER DATABASE {q_current} WITH ALLOW_CONNECTIONS true; and drop `{restored}` if it is there{then}"
        )));
        let names = [current, restored, aside].map(str::to_string);
        let (connect, stake, earlier) = (connect.clone(), cancel.clone(), before.clone());
        cancel.set_last_resort(Some(Arc::new(move || {
            let (connect, names, stake, earlier) = (connect.clone(), names.clone(), stake.clone(), earlier.clone());
            Box::pin(async move {
                match put_back(&connect, &names).await {
                    Ok(Put::Finished(said)) => stake.set_at_stake(Some(said)),
                    Ok(Put::Back(said)) => stake.set_at_stake(Some(match earlier {
                        Some(earlier) => format!("{said}; as before the swap, {earlier}"),
                        None => said,
                    })),
                    Err(e) => tracing::warn!("putting back what the swap left part way failed: {e}"),
                }
            })
        })));
        Stake { cancel, before }
    }
}

impl Drop for Stake<'_> {
    fn drop(&mut self) {
        self.cancel.set_last_resort(None);
        self.cancel.set_at_stake(self.before.take());
    }
}

/// What [`put_back`] found and did.
enum Put {
    /// The swap had finished: the snapshot is in place.
    Finished(String),
    /// The database is as it was before the swap.
    Back(String),
}

/// Puts back what a swap cut short left, found on the server: the current database renamed back if it
/// was renamed aside and nothing took its name, and open to new sessions. Says what is then where.
async fn put_back(connect: &ConnectOptions, [current, restored, aside]: &[String; 3]) -> Result<Put> {
    let session = maintenance_session(connect, current, "to put back what the swap left").await?;
    let sql = "SELECT datname::text FROM pg_catalog.pg_database WHERE datname = ANY($1)";
    let found: Vec<String> = session
        .query(sql, &[&vec![current.clone(), restored.clone(), aside.clone()]])
        .await?
        .iter()
        .map(|row| crate::pg::value(row, 0, sql))
        .collect::<Result<_>>()?;
    let has = |name: &String| found.contains(name);
    let (q_current, q_aside) = (quote_ident(current), quote_ident(aside));
    let finished = has(current) && has(aside);
    if !has(current) && has(aside) {
        session.batch(&format!("ALTER DATABASE {q_aside} RENAME TO {q_current}")).await?;
    }
    if has(current) || has(aside) {
        session.batch(&format!("ALTER DATABASE {q_current} WITH ALLOW_CONNECTIONS true")).await?;
    }
    if finished {
        session.batch(&format!("ALTER DATABASE {q_aside} WITH ALLOW_CONNECTIONS true")).await?;
        return Ok(Put::Finished(format!(
            "the swap had finished: `{current}` holds the snapshot, open to new sessions, and the database it replaced is kept as `{aside}`; the health check did not run"
        )));
    }
    let left =
        if has(restored) { format!("; the restored snapshot is left as `{restored}`: drop it") } else { String::new() };
    Ok(Put::Back(format!("the swap was put back: `{current}` is as it was, open to new sessions{left}")))
}

/// Ends `sessions` with `pg_terminate_backend`, naming those it may not end.
async fn terminate(session: &Session, sessions: &[OtherSession]) -> Result<()> {
    let mut refused = Vec::new();
    for s in sessions {
        match session.query_one("SELECT pg_catalog.pg_terminate_backend($1)", &[&s.pid]).await {
            Ok(_) => {}
            Err(e) if e.sqlstate() == Some(SqlState::INSUFFICIENT_PRIVILEGE) => refused.push(s.to_string()),
            Err(e) => return Err(e),
        }
    }
    if !refused.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, format!("pgsafe may not terminate {}", refused.join("; ")))
            .with_hint("a role may end its own sessions; others need a superuser or membership in pg_signal_backend"));
    }
    Ok(())
}

/// A database name made of `base` and a suffix, within PostgreSQL's 63 bytes (the base is cut on a
/// character boundary).
pub(crate) fn derived_name(base: &str, suffix: &str) -> String {
    const MAX: usize = 63;
    let room = MAX.saturating_sub(suffix.len());
    let mut cut = base.len().min(room);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &base[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_fit_in_63_bytes_on_a_character_boundary() {
        assert_eq!(derived_name("shop", "_replaced_20261202T031500"), "shop_replaced_20261202T031500");
        let long = "é".repeat(40);
        let name = derived_name(&long, "_replaced_20261202T031500");
        assert!(name.len() <= 63, "{}", name.len());
        assert!(name.ends_with("_replaced_20261202T031500"));
    }

    /// A second signal during a migration's rollback by swap said only the swap's state, and one after
    /// the swap (while the rollback went on) nothing at all: the generic exit-3 message, though the
    /// migration had said what the database holds and which `pgsafe rollback` puts it back.
    #[test]
    fn what_was_at_stake_before_a_swap_is_said_with_it_and_again_after_it() {
        let cancel = Cancel::new();
        let migration = "`shop` holds what the migration committed; `pgsafe rollback -d shop ID --yes` puts it back";
        cancel.set_at_stake(Some(migration.to_owned()));
        let connect = ConnectOptions::new(Some("host=/tmp dbname=shop user=alice"), None, None, None).unwrap();
        let stake = Stake::new(&cancel, &connect, ["shop", "shop_rollback_1", "shop_replaced_1"]);
        let during = cancel.at_stake().unwrap();
        assert!(during.contains("ALTER DATABASE shop_replaced_1 RENAME TO shop"), "{during}");
        assert!(during.ends_with(&format!("Once `shop` is back: {migration}")), "{during}");
        assert!(cancel.last_resort().is_some());
        drop(stake);
        assert_eq!(cancel.at_stake().as_deref(), Some(migration));
        assert!(cancel.last_resort().is_none());
    }
}
