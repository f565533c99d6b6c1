//! The audit log's line: one JSON object per operation, appended to `audit.jsonl`, never rewritten. It
//! lives outside the database, so restoring a snapshot cannot erase it.
//!
//! What goes in names people and places (OS user, host, role, the server as `user@host:port/db`), never
//! a password: the server is always rendered by [`crate::pg::ConnectOptions::describe`].

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::SnapshotId;

/// Which operation a line records. Every operation of the workflow has its variant, so that the log's
/// readers (`pgsafe status`) match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AuditCommand {
    Dump,
    Restore,
    Snapshot,
    Prune,
    Rollback,
    Check,
    Lint,
    DryRun,
    /// One step of `pgsafe migrate` (the step is in [`AuditEntry::step`]).
    Migrate,
}

/// How the operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    Ok,
    /// It failed; `error` is the message (with its causes) the user saw.
    Failed {
        error: String,
    },
    /// A check that failed and that an override went on past (`migrate --force`'s lint and dry run, or
    /// `--allow-data-loss`'s): `error` is what failed.
    Forced {
        error: String,
    },
}

impl Outcome {
    /// The outcome of an operation that ended with `result`.
    pub fn of<T>(result: &crate::error::Result<T>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::failed(e),
        }
    }

    /// The outcome of an operation that failed with `e`.
    pub fn failed(e: &crate::error::Error) -> Outcome {
        Outcome::Failed { error: error_text(e) }
    }
}

/// An error with its causes, as the user saw it.
fn error_text(e: &crate::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When the operation started, in UTC.
    pub time: Timestamp,
    pub command: AuditCommand,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub os_user: String,
    /// The machine pgsafe ran on.
    pub host: String,
    /// The server as `user@host:port/dbname` (never a password), when the operation had one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub server: Option<String>,
    /// The database role it logged in as.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub database: Option<String>,
    /// The snapshot taken, restored or checked against.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snapshot: Option<SnapshotId>,
    /// The archive file a plain `dump` wrote or a `restore` read, as an absolute path.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub archive: Option<String>,
    /// Snapshots the operation removed (retention).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub removed: Vec<SnapshotId>,
    /// A swap rollback: the name the database it replaced is kept under, until a prune drops it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub replaced_database: Option<String>,
    /// A prune with `--drop-replaced`: the replaced databases it dropped.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub dropped_databases: Vec<String>,
    /// The migration, for the workflow's steps.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub migration: Option<String>,
    /// The step of `pgsafe migrate` (`snapshot`, `lint`, `dry-run`, `apply`, `check`, `rollback`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step: Option<String>,
    /// A migration's health check: the tables of its snapshot the migration dropped, and those it renamed
    /// (old and new names), which a later check against that snapshot knows as its doing.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub dropped_tables: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub renamed_tables: Vec<(String, String)>,
    /// A snapshot taken: the BLAKE3 of its archive's manifest (hex), a record of its content kept apart
    /// from its metadata.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub manifest_blake3: Option<String>,
    pub seconds: f64,
}

impl AuditEntry {
    /// Whether the line records a health check of its database: a `pgsafe check`, or a migration's
    /// `check` step.
    pub fn is_health_check(&self) -> bool {
        match self.command {
            AuditCommand::Check => true,
            AuditCommand::Migrate => self.step.as_deref() == Some("check"),
            _ => false,
        }
    }

    /// Whether the line records a migration's health check that found the database healthy: the
    /// migration stands, and the tables it dropped and renamed (`dropped_tables`, `renamed_tables`) are
    /// its doing.
    pub fn is_healthy_migration(&self) -> bool {
        self.command == AuditCommand::Migrate && self.step.as_deref() == Some("check") && self.outcome == Outcome::Ok
    }

    /// The line as a store whose snapshots are encrypted keeps it: a failure's message, which may name
    /// tables and show rows (a key's duplicate value), is withheld, as nothing else in such a store
    /// reveals them. The user saw the message when it happened.
    pub fn withheld(&self) -> AuditEntry {
        let mut entry = self.clone();
        if let Outcome::Failed { error } | Outcome::Forced { error } = &mut entry.outcome {
            *error = "(the message is withheld: the store's snapshots are encrypted)".to_string();
        }
        // Nor does a line name tables.
        entry.dropped_tables.clear();
        entry.renamed_tables.clear();
        entry
    }

    /// The JSON line `store` appends: [`AuditEntry::withheld`] when the store has keys.
    pub(crate) fn line_for(&self, keys: &super::StoreKeys) -> String {
        let encrypted = !keys.recipients.is_empty() || !keys.keyring.is_empty();
        let entry = if encrypted { std::borrow::Cow::Owned(self.withheld()) } else { std::borrow::Cow::Borrowed(self) };
        serde_json::to_string(&*entry).expect("an audit line serializes") + "\n"
    }

    /// The server, role and database of `connect` (never its password).
    pub fn connected_to(mut self, connect: &crate::pg::ConnectOptions) -> AuditEntry {
        self.server = Some(connect.describe());
        self.role = Some(connect.user().to_owned());
        self.database = Some(connect.dbname().to_owned());
        self
    }

    /// A line for `command` started at `time` by this OS user on this host; the caller fills the rest.
    pub fn new(command: AuditCommand, time: Timestamp, outcome: Outcome, seconds: f64) -> AuditEntry {
        AuditEntry {
            time,
            command,
            outcome,
            os_user: os_user(),
            host: host_name(),
            server: None,
            role: None,
            database: None,
            snapshot: None,
            archive: None,
            removed: Vec::new(),
            replaced_database: None,
            dropped_databases: Vec::new(),
            migration: None,
            step: None,
            dropped_tables: Vec::new(),
            renamed_tables: Vec::new(),
            manifest_blake3: None,
            seconds,
        }
    }
}

/// The audit log read back: its entries in the order they were written, and the lines that are not
/// entries (a line cut short by a full disk, a hand edit), which readers skip and name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
    pub skipped: Vec<SkippedLine>,
}

/// A line of the audit log that is not an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedLine {
    /// Its line number, from 1.
    pub line: usize,
    /// Why it is not an entry.
    pub error: String,
}

impl AuditLog {
    /// The entries of `text`, the log's contents; blank lines are nothing, other lines that do not read as
    /// an entry are skipped with their number. Never fails: one bad line must not hide the others.
    pub fn parse(text: &str) -> AuditLog {
        let mut log = AuditLog::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(entry) => log.entries.push(entry),
                Err(e) => log.skipped.push(SkippedLine { line: i + 1, error: e.to_string() }),
            }
        }
        log
    }

    /// The position of the last healthy health check ([`AuditEntry::is_healthy_migration`]) of a
    /// migration that started from `snapshot`.
    pub fn last_healthy_migration_from(&self, snapshot: &SnapshotId) -> Option<usize> {
        self.entries.iter().rposition(|e| e.is_healthy_migration() && e.snapshot.as_ref() == Some(snapshot))
    }

    /// The last line recording that pgsafe changed `database` (a migration's `apply` or `rollback` step,
    /// a `rollback`, a `restore` into it), with the time it ended: a snapshot begun before then does not
    /// hold the database as it is. A failed one counts too, since it may have changed part of it; a change
    /// made without pgsafe is not in the log.
    pub fn last_change(&self, database: &str) -> Option<(&AuditEntry, Timestamp)> {
        self.entries
            .iter()
            .filter(|e| e.database.as_deref() == Some(database))
            .filter(|e| match e.command {
                AuditCommand::Migrate => matches!(e.step.as_deref(), Some("apply" | "rollback")),
                AuditCommand::Rollback | AuditCommand::Restore => true,
                _ => false,
            })
            .map(|e| {
                let ended = e.time.checked_add(jiff::SignedDuration::from_secs_f64(e.seconds.max(0.0)));
                (e, ended.unwrap_or(e.time))
            })
            .max_by_key(|(_, ended)| *ended)
    }
}

/// The OS user's name: `USER`, else `LOGNAME`, else this process's uid looked up in `/etc/passwd`, else
/// `uid N`.
pub fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    var("USER").or_else(|| var("LOGNAME")).unwrap_or_else(|| {
        // `/proc/self` belongs to this process's user.
        let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else { return "unknown".to_owned() };
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        passwd
            .lines()
            .find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
            })
            .unwrap_or_else(|| format!("uid {uid}"))
    })
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `HOSTNAME`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_back_and_names_its_outcome() {
        let time: Timestamp = "2026-12-02T03:15:00Z".parse().unwrap();
        let mut entry = AuditEntry::new(
            AuditCommand::Snapshot,
            time,
            Outcome::Failed { error: "database `x` does not exist".into() },
            1.5,
        );
        entry.snapshot = Some(SnapshotId("x-20261202T031500Z".into()));
        let line = serde_json::to_string(&entry).unwrap();
        assert!(
            line.contains(r#""command":"snapshot","outcome":"failed","error":"database `x` does not exist""#),
            "{line}"
        );
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<AuditEntry>(&line).unwrap(), entry);
        let ok = AuditEntry::new(AuditCommand::DryRun, time, Outcome::Ok, 0.0);
        let line = serde_json::to_string(&ok).unwrap();
        assert!(line.contains(r#""command":"dry-run","outcome":"ok""#), "{line}");
    }

    #[test]
    fn the_last_change_is_the_latest_end_of_a_migrations_apply_or_rollback_a_rollback_or_a_restore() {
        let at = |t: &str| -> Timestamp { t.parse().unwrap() };
        let line = |command, time: &str, database: &str, step: Option<&str>, seconds: f64| {
            let mut e = AuditEntry::new(command, at(time), Outcome::Ok, seconds);
            e.database = Some(database.into());
            e.step = step.map(str::to_owned);
            e
        };
        let log = AuditLog {
            entries: vec![
                line(AuditCommand::Restore, "2026-12-02T01:00:00Z", "shop", None, 5.0),
                line(AuditCommand::Migrate, "2026-12-02T02:00:00Z", "shop", Some("apply"), 30.0),
                line(AuditCommand::Migrate, "2026-12-02T03:00:00Z", "shop", Some("check"), 1.0),
                line(AuditCommand::Snapshot, "2026-12-02T04:00:00Z", "shop", None, 1.0),
                line(AuditCommand::Rollback, "2026-12-02T05:00:00Z", "blog", None, 1.0),
            ],
            skipped: Vec::new(),
        };
        let (entry, ended) = log.last_change("shop").unwrap();
        assert_eq!((entry.step.as_deref(), ended), (Some("apply"), at("2026-12-02T02:00:30Z")));
        assert_eq!(log.last_change("blog").unwrap().1, at("2026-12-02T05:00:01Z"));
        assert!(log.last_change("other").is_none());
    }

    #[test]
    fn a_log_reads_back_past_its_bad_lines_and_names_them() {
        let time: Timestamp = "2026-12-02T03:15:00Z".parse().unwrap();
        let line = |c| serde_json::to_string(&AuditEntry::new(c, time, Outcome::Ok, 1.0)).unwrap();
        let text = format!(
            "{}\n{{\"time\": \"cut short\n\n{}\nnot json\n{}",
            line(AuditCommand::Dump),
            line(AuditCommand::Restore),
            line(AuditCommand::Prune)
        );
        let log = AuditLog::parse(&text);
        let commands: Vec<AuditCommand> = log.entries.iter().map(|e| e.command).collect();
        assert_eq!(commands, [AuditCommand::Dump, AuditCommand::Restore, AuditCommand::Prune]);
        let lines: Vec<usize> = log.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 5]);
        assert_eq!(AuditLog::parse(""), AuditLog::default());
    }
}
