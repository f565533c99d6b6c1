//! The health check (`pgsafe check`): is the database sound after a change, and does it still hold what
//! a snapshot held?
//!
//! ```text
//! check: connect (read only) -> lock waits, long-running statements -> tables of the snapshot, row counts
//!        -> foreign key violations -> invalid indexes, duplicates under them -> NOT VALID constraints
//!        -> disabled triggers -> sequences behind their column -> the user's SQL checks -> CheckReport
//! ```
//!
//! Each probe (`probes`, SQL in `check/sql/`) turns what it finds into [`Finding`]s with a stable id and a
//! [`Level`]; the database is healthy when no finding is an error ([`is_healthy`]). A probe the role's
//! privileges do not allow (a non-superuser owner, a table of another role) does not stop the check: it
//! becomes an `info` finding `not-checked` saying what was not checked and why. The check only reads: its
//! session is read only, and waits at most [`LOCK_TIMEOUT`] for a table's lock.

mod probes;
mod sql_checks;

use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result, SqlState};
use crate::pg::{ConnectOptions, Session};
use crate::store::{AuditCommand, AuditEntry, Outcome, SnapshotId, SnapshotMeta};
pub use sql_checks::{SqlCheck, read_sql_checks};

/// How long an active statement may run before the check names it, unless told otherwise.
pub const DEFAULT_LONG_RUNNING: Duration = Duration::from_secs(300);

/// How long the check waits for a table's lock before it names the table as not checked: a health check
/// must not hang behind a migration's ACCESS EXCLUSIVE lock.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// What `pgsafe check` does.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub connect: ConnectOptions,
    /// The snapshot whose tables must exist and whose row counts the tables' are compared with.
    pub against: Option<SnapshotMeta>,
    /// The user's checks: queries that must return no rows.
    pub sql: Vec<SqlCheck>,
    /// Rows lost from a table of the snapshot, in percent of its rows there, beyond which the loss is an
    /// error; `None`: any loss is information only.
    pub max_row_loss: Option<f64>,
    /// Active statements running longer than this are named.
    pub long_running: Duration,
    /// Cancels the running statement and ends the check.
    pub cancel: Cancel,
    /// Findings of the snapshot's tables that a migration since dropped or renamed (its doing, not a
    /// missing table: [`by_migration`]), added to the report.
    pub by_migration: Vec<Finding>,
}

/// Takes out of `snapshot`'s tables those a migration since it dropped (`dropped`), and checks those it
/// renamed (`renamed`: old and new names) under their new names; returns the findings that say so
/// (`dropped-by-migration`, `renamed-by-migration`), for [`CheckOptions::by_migration`].
pub fn by_migration(snapshot: &mut SnapshotMeta, dropped: &[String], renamed: &[(String, String)]) -> Vec<Finding> {
    let mut meant = Vec::new();
    let id = snapshot.id.clone();
    snapshot.tables.retain_mut(|t| {
        if dropped.contains(&t.table) {
            let message = format!("in snapshot `{id}` ({} rows); the migration dropped it", t.rows);
            meant.push(Finding::new("dropped-by-migration", Level::Info, Some(&t.table), message));
            return false;
        }
        if let Some((_, new)) = renamed.iter().find(|(old, _)| *old == t.table) {
            let message = format!("the migration renamed it `{new}`: its rows are counted there");
            meant.push(Finding::new("renamed-by-migration", Level::Info, Some(&t.table), message));
            t.table = new.clone();
        }
        true
    });
    meant
}

/// How much a finding matters. Only errors make a database unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Info,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
        })
    }
}

/// One thing the check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The probe's stable id, such as `foreign-key-violation` (the README lists them all).
    pub check: String,
    pub level: Level,
    /// What it is about: a table, index, constraint, trigger or sequence (qualified and quoted as SQL
    /// needs), a session (`pid 4242`), or the name of a user's check.
    pub object: Option<String>,
    pub message: String,
    /// Facts for scripts: counts, names, SQLSTATEs, example rows; `null` when there are none.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl Finding {
    /// A finding of `check` about `object`, without details.
    pub fn new(check: &str, level: Level, object: Option<&str>, message: impl Into<String>) -> Finding {
        Finding {
            check: check.to_owned(),
            level,
            object: object.map(str::to_owned),
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// The same finding with `details`.
    pub fn with_details(mut self, details: serde_json::Value) -> Finding {
        self.details = details;
        self
    }
}

/// What a check found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The database's name.
    pub database: String,
    /// `user@host:port/dbname`, never a password.
    pub server: String,
    /// When the check started, in UTC.
    pub started_at: Timestamp,
    /// The snapshot it compared with.
    pub against: Option<SnapshotId>,
    /// No finding is an error.
    pub healthy: bool,
    /// Errors first, then warnings, then information; in the order the probes ran within a level.
    pub findings: Vec<Finding>,
    pub seconds: f64,
}

impl CheckReport {
    /// How many findings are at `level`.
    pub fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
}

/// Whether a database with these findings is healthy: none of them is an error.
pub fn is_healthy(findings: &[Finding]) -> bool {
    findings.iter().all(|f| f.level != Level::Error)
}

/// What a table that held `before` rows in the snapshot and holds `now` rows lost, as a finding: none
/// when it lost nothing; an error when it lost more than `max_loss` percent of its rows, information
/// otherwise.
pub fn row_loss(table: &str, before: u64, now: u64, max_loss: Option<f64>) -> Option<Finding> {
    let lost = before.checked_sub(now).filter(|&lost| lost > 0)?;
    let percent = lost as f64 * 100.0 / before as f64;
    let over = max_loss.is_some_and(|max| percent > max);
    let level = if over { Level::Error } else { Level::Info };
    let limit = match max_loss {
        Some(max) if over => format!(", more than the {max}% allowed"),
        _ => String::new(),
    };
    Some(
        Finding::new(
            "row-loss",
            level,
            Some(table),
            format!("{lost} of its {before} rows in the snapshot are gone ({percent:.2}%{limit}); {now} left"),
        )
        .with_details(serde_json::json!({ "snapshot_rows": before, "rows": now, "lost": lost, "percent": percent })),
    )
}

/// Session settings of a check: it only reads, and does not wait long behind another session's lock.
fn session_settings() -> String {
    format!("SET default_transaction_read_only = on; SET lock_timeout = '{}ms'", LOCK_TIMEOUT.as_millis())
}

/// Runs every probe on the database once and reports what they found. An `Err` only when the check could
/// not run (no connection, a probe failing for another reason than the role's privileges, an
/// interruption); an unhealthy database is an `Ok` report with `healthy: false`.
pub async fn check(options: &CheckOptions) -> Result<CheckReport> {
    let started_at = Timestamp::now();
    let started = Instant::now();
    if let Some(max) = options.max_row_loss
        && !(0.0..=100.0).contains(&max)
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("a row loss limit of {max}% is not a percentage from 0 to 100"),
        ));
    }
    let session = Session::open(&options.connect, None).await?.cancelled_by(&options.cancel);
    session.batch(&session_settings()).await?;
    let (s, cancel) = (&session, &options.cancel);
    // What a migration since the snapshot meant, said first; then sessions: they show the moment the
    // check started, before its own queries wait on anyone.
    let mut found = options.by_migration.clone();
    step(&mut found, cancel, "lock waits", probes::lock_waits(s)).await?;
    step(&mut found, cancel, "long-running statements", probes::long_running(s, options.long_running)).await?;
    if let Some(snapshot) = &options.against {
        let probe = probes::snapshot_tables(s, snapshot, options.max_row_loss);
        step(&mut found, cancel, "the snapshot's tables", probe).await?;
    }
    step(&mut found, cancel, "foreign keys", probes::foreign_keys(s)).await?;
    step(&mut found, cancel, "invalid indexes", probes::invalid_indexes(s)).await?;
    step(&mut found, cancel, "NOT VALID constraints", probes::not_valid_constraints(s)).await?;
    step(&mut found, cancel, "disabled triggers", probes::disabled_triggers(s)).await?;
    step(&mut found, cancel, "sequences", probes::sequences(s)).await?;
    // The user's queries mean what they mean under psql: in the role's and database's time zone and
    // date style (`created_at::date = current_date`).
    if !options.sql.is_empty() {
        session.use_own_settings().await?;
    }
    for user in &options.sql {
        step(&mut found, cancel, &format!("`{}`", user.name), sql_checks::run(s, user)).await?;
    }
    let mut findings = found;
    // Stable within a level: the probes' order.
    findings.sort_by_key(|f| f.level);
    Ok(CheckReport {
        database: options.connect.dbname().to_owned(),
        server: options.connect.describe(),
        started_at,
        against: options.against.as_ref().map(|s| s.id.clone()),
        healthy: is_healthy(&findings),
        findings,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The audit line of a check of `options` that started at `started_at` and took `seconds`: `ok` when it
/// found the database healthy, `failed` with its errors when not, or with the error that stopped it.
pub fn audit_entry(
    options: &CheckOptions,
    started_at: Timestamp,
    seconds: f64,
    result: &Result<CheckReport>,
) -> AuditEntry {
    let outcome = match result {
        Ok(report) if !report.healthy => {
            let errors: Vec<String> = report
                .findings
                .iter()
                .filter(|f| f.level == Level::Error)
                .map(|f| match &f.object {
                    Some(object) => format!("{} `{object}`", f.check),
                    None => f.check.clone(),
                })
                .collect();
            Outcome::Failed { error: format!("unhealthy: {} error(s): {}", errors.len(), errors.join(", ")) }
        }
        result => Outcome::of(result),
    };
    let mut entry = AuditEntry::new(AuditCommand::Check, started_at, outcome, seconds);
    entry.server = Some(options.connect.describe());
    entry.role = Some(options.connect.user().to_owned());
    entry.database = Some(options.connect.dbname().to_owned());
    entry.snapshot = options.against.as_ref().map(|s| s.id.clone());
    entry
}

/// Whether `e` is the server refusing for want of privileges (SQLSTATE 42501).
fn is_privilege_refusal(e: &Error) -> bool {
    e.sqlstate() == Some(SqlState::INSUFFICIENT_PRIVILEGE)
}

/// The SQLSTATE of `e` as text, for a finding's details.
fn sqlstate_text(e: &Error) -> Option<String> {
    e.sqlstate().map(|s| s.as_str().to_owned())
}

/// Runs one probe, unless the check was interrupted, and adds what it found to `findings`; a probe the
/// role may not run becomes a `not-checked` finding about `what` (see [`probes::not_checked`]).
async fn step(
    findings: &mut Vec<Finding>,
    cancel: &Cancel,
    what: &str,
    probe: impl Future<Output = Result<Vec<Finding>>>,
) -> Result<()> {
    cancel.check("the check")?;
    match probe.await {
        Ok(found) => findings.extend(found),
        // A statement cancelled by the interruption fails; the interruption is what to report.
        Err(_) if cancel.is_cancelled() => cancel.check("the check")?,
        Err(e) => findings.push(probes::not_checked(e, what, None)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(level: Level) -> Finding {
        Finding::new("x", level, None, "m")
    }

    #[test]
    fn only_an_error_makes_a_database_unhealthy() {
        assert!(is_healthy(&[]));
        assert!(is_healthy(&[finding(Level::Warning), finding(Level::Info)]));
        assert!(!is_healthy(&[finding(Level::Info), finding(Level::Error)]));
    }

    #[test]
    fn a_row_loss_is_information_unless_it_passes_the_limit() {
        assert_eq!(row_loss("public.t", 100, 100, Some(0.0)), None);
        assert_eq!(row_loss("public.t", 100, 150, Some(0.0)), None, "growth is no loss");
        assert_eq!(row_loss("public.t", 0, 0, Some(0.0)), None);
        let info = row_loss("public.t", 200, 199, None).unwrap();
        assert_eq!((info.check.as_str(), info.level), ("row-loss", Level::Info));
        assert_eq!(info.message, "1 of its 200 rows in the snapshot are gone (0.50%); 199 left");
        assert_eq!(info.details["lost"], 1);
        // Exactly at the limit is allowed; past it is an error.
        assert_eq!(row_loss("public.t", 200, 198, Some(1.0)).unwrap().level, Level::Info);
        let error = row_loss("public.t", 200, 197, Some(1.0)).unwrap();
        assert_eq!(error.level, Level::Error);
        assert!(error.message.contains("(1.50%, more than the 1% allowed)"), "{}", error.message);
        assert_eq!(row_loss("public.t", 5, 0, Some(0.0)).unwrap().level, Level::Error);
    }

    #[test]
    fn an_unhealthy_round_is_a_failed_audit_line_naming_its_errors() {
        let options = CheckOptions {
            connect: ConnectOptions::new(Some("host=/tmp dbname=shop user=alice"), None, None, None).unwrap(),
            against: None,
            sql: Vec::new(),
            max_row_loss: None,
            long_running: DEFAULT_LONG_RUNNING,
            cancel: Cancel::new(),
            by_migration: Vec::new(),
        };
        let now = Timestamp::now();
        let report = |findings: Vec<Finding>| CheckReport {
            database: "shop".into(),
            server: "s".into(),
            started_at: now,
            against: None,
            healthy: is_healthy(&findings),
            findings,
            seconds: 0.5,
        };
        let ok = audit_entry(&options, now, 0.5, &Ok(report(vec![finding(Level::Warning)])));
        assert_eq!((ok.command, &ok.outcome), (AuditCommand::Check, &Outcome::Ok));
        assert_eq!((ok.database.as_deref(), ok.role.as_deref()), (Some("shop"), Some("alice")));
        let bad = report(vec![Finding::new("invalid-index", Level::Error, Some("public.i"), "m")]);
        let entry = audit_entry(&options, now, 0.5, &Ok(bad));
        assert_eq!(entry.outcome, Outcome::Failed { error: "unhealthy: 1 error(s): invalid-index `public.i`".into() });
    }
}
