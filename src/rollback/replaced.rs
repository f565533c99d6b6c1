//! The databases swap rollbacks renamed aside (`DB_replaced_TIME`), kept for a post-mortem until a prune
//! drops them. Only names the audit log records as a rollback's replaced database are ever dropped: a
//! database is never chosen by the shape of its name.

use std::time::Instant;

use jiff::Timestamp;
use serde::Serialize;

use crate::error::{Result, SqlState};
use crate::pg::ConnectOptions;
use crate::store::{AuditCommand, AuditEntry, Outcome, Store};

/// What `pgsafe prune --drop-replaced` did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplacedReport {
    pub database: String,
    pub dry_run: bool,
    /// Dropped (or to drop), newest first.
    pub dropped: Vec<String>,
    /// Kept: the newest `keep`.
    pub kept: Vec<String>,
    /// Recorded but already gone (dropped by hand, or by an earlier prune).
    pub gone: Vec<String>,
    /// Not dropped because sessions are connected to them (SQLSTATE 55006).
    pub in_use: Vec<String>,
}

/// Drops the databases that swap rollbacks of `connect`'s database replaced, but the newest `keep`,
/// through the maintenance database; appends an audit line when it dropped any.
pub async fn drop_replaced(
    store: &dyn Store,
    connect: &ConnectOptions,
    keep: usize,
    dry_run: bool,
) -> Result<ReplacedReport> {
    let database = connect.dbname().to_owned();
    let mut recorded: Vec<(Timestamp, String)> = store
        .read_audit()?
        .entries
        .into_iter()
        .filter(|e| e.command == AuditCommand::Rollback && e.outcome == Outcome::Ok)
        .filter(|e| e.database.as_deref() == Some(database.as_str()))
        .filter_map(|e| Some((e.time, e.replaced_database?)))
        .collect();
    recorded.sort_by_key(|(time, _)| std::cmp::Reverse(*time));
    let mut report = ReplacedReport { database: database.clone(), dry_run, ..ReplacedReport::default() };
    if recorded.is_empty() {
        return Ok(report);
    }
    let (started_at, started) = (Timestamp::now(), Instant::now());
    let session = super::swap::maintenance_session(connect, &database, "to drop replaced databases").await?;
    for (_, name) in recorded {
        let exists: bool = crate::pg::value(
            &session
                .query_one("SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = $1)", &[&name])
                .await?,
            0,
            "whether the replaced database exists",
        )?;
        if !exists {
            report.gone.push(name);
        } else if report.kept.len() < keep {
            report.kept.push(name);
        } else if dry_run {
            report.dropped.push(name);
        } else {
            match session.batch(&format!("DROP DATABASE {}", crate::sql::quote_ident(&name))).await {
                Ok(()) => report.dropped.push(name),
                Err(e) if e.sqlstate() == Some(SqlState::OBJECT_IN_USE) => report.in_use.push(name),
                Err(e) => return Err(e.context(format!("dropping the replaced database `{name}`"))),
            }
        }
    }
    if !dry_run && !report.dropped.is_empty() {
        let mut entry = AuditEntry::new(AuditCommand::Prune, started_at, Outcome::Ok, started.elapsed().as_secs_f64())
            .connected_to(connect);
        entry.dropped_databases = report.dropped.clone();
        store.append_audit(&entry)?;
    }
    Ok(report)
}
