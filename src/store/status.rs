//! The store at a glance (`pgsafe status`): per database its snapshots, the newest, their size and the
//! last health check; the last operations of the audit log; the files of no snapshot.
//!
//! [`build`] is a pure function of what the store lists and logs and of the time, so that the text, the
//! Markdown and the JSON show the same facts, and tests need no store.

use jiff::Timestamp;
use serde::Serialize;

use super::audit::{AuditEntry, AuditLog, SkippedLine};
use super::{ArchiveState, Listed, PinHolder, SnapshotId, SnapshotMeta, Store};
use crate::error::Result;

/// How many operations a status shows unless told otherwise.
pub const DEFAULT_LAST: usize = 10;

/// What `pgsafe status` shows.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// Only this database; `None` for all.
    pub database: Option<String>,
    /// How many of the audit log's last operations.
    pub last: usize,
}

/// The store at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreStatus {
    /// Where the store is.
    pub store: String,
    /// Whether there is a store there at all; a missing one has nothing else to show.
    pub exists: bool,
    /// When the status was taken (ages count from it).
    pub at: Timestamp,
    /// Every database with a snapshot or a check, by name.
    pub databases: Vec<DatabaseStatus>,
    /// The audit log's last operations, newest first.
    pub operations: Vec<AuditEntry>,
    /// Files of no snapshot (see [`Store::leftovers`]).
    pub leftovers: Vec<String>,
    /// Lines of the audit log that are not entries, skipped.
    pub skipped_audit_lines: Vec<SkippedLine>,
}

/// One database's snapshots and last check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseStatus {
    pub database: String,
    /// How many snapshots the store holds of it.
    pub snapshots: usize,
    /// Their archives' bytes, summed.
    pub bytes: u64,
    pub newest: Option<NewestSnapshot>,
    /// Its snapshots whose archive is missing or of another size than recorded, newest first: they
    /// restore nothing (`--latest` passes over them, retention does not count them).
    pub unusable: Vec<UnusableSnapshot>,
    /// Its pinned snapshots, newest first: retention keeps them whatever their age.
    pub pinned: Vec<PinnedSnapshot>,
    /// The audit log's last line of a health check of it: a `check`, or a migration's `check` step.
    pub last_check: Option<AuditEntry>,
}

/// A database's newest snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewestSnapshot {
    pub id: SnapshotId,
    pub created_at: Timestamp,
    /// Seconds from its start to [`StoreStatus::at`].
    pub age_seconds: u64,
    pub label: Option<String>,
    pub verified: bool,
    pub archive_state: ArchiveState,
}

/// A snapshot retention must keep, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PinnedSnapshot {
    pub id: SnapshotId,
    pub reason: String,
    /// Whether the process that pinned it still runs, when one did: a migration killed outright leaves
    /// its snapshot pinned with its process `gone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<PinHolder>,
}

/// A snapshot whose archive is not as its metadata recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnusableSnapshot {
    pub id: SnapshotId,
    pub archive_state: ArchiveState,
}

impl StoreStatus {
    /// The status of a store that does not exist: nothing in it.
    pub fn missing(store: String, at: Timestamp) -> StoreStatus {
        StoreStatus {
            store,
            exists: false,
            at,
            databases: Vec::new(),
            operations: Vec::new(),
            leftovers: Vec::new(),
            skipped_audit_lines: Vec::new(),
        }
    }
}

/// Reads the store's snapshots, audit log and leftovers, and builds its status at `now`.
pub fn read(store: &dyn Store, options: &StatusOptions, now: Timestamp) -> Result<StoreStatus> {
    Ok(build(store.location(), &super::list_checked(store)?, &store.read_audit()?, store.leftovers()?, options, now))
}

/// The status of the store at `store` holding `snapshots`, with `log` and `leftovers`, at `now`.
pub fn build(
    store: String,
    snapshots: &[Listed],
    log: &AuditLog,
    leftovers: Vec<String>,
    options: &StatusOptions,
    now: Timestamp,
) -> StoreStatus {
    let wanted = |database: Option<&str>| match (&options.database, database) {
        (None, _) => true,
        // A line of no database (a prune of every database) concerns each.
        (Some(_), None) => true,
        (Some(want), Some(d)) => want == d,
    };
    let mut names: Vec<&str> = snapshots
        .iter()
        .map(|s| s.meta.database.as_str())
        .chain(log.entries.iter().filter(|e| e.is_health_check()).filter_map(|e| e.database.as_deref()))
        .filter(|d| options.database.as_deref().is_none_or(|want| want == *d))
        .collect();
    names.sort_unstable();
    names.dedup();
    let databases = names
        .into_iter()
        .map(|database| {
            let mut listed: Vec<&Listed> = snapshots.iter().filter(|s| s.meta.database == database).collect();
            listed.sort_by(|a, b| b.meta.created_at.cmp(&a.meta.created_at).then_with(|| b.meta.id.cmp(&a.meta.id)));
            let own: Vec<(&SnapshotMeta, ArchiveState)> = listed.iter().map(|s| (&s.meta, s.archive_state)).collect();
            let newest = own.first();
            DatabaseStatus {
                database: database.to_owned(),
                snapshots: own.len(),
                bytes: own.iter().map(|(s, _)| s.bytes).sum(),
                newest: newest.map(|(s, archive_state)| NewestSnapshot {
                    id: s.id.clone(),
                    created_at: s.created_at,
                    age_seconds: now.duration_since(s.created_at).as_secs().max(0) as u64,
                    label: s.label.clone(),
                    verified: s.is_verified(),
                    archive_state: *archive_state,
                }),
                unusable: own
                    .iter()
                    .filter(|(_, a)| !a.is_present())
                    .map(|(s, a)| UnusableSnapshot { id: s.id.clone(), archive_state: *a })
                    .collect(),
                pinned: listed
                    .iter()
                    .filter_map(|s| {
                        let reason = s.meta.pinned.clone()?;
                        Some(PinnedSnapshot { id: s.meta.id.clone(), reason, holder: s.pin_holder })
                    })
                    .collect(),
                // The last line written, not the latest start: a check's line is written when it ends.
                last_check: log
                    .entries
                    .iter()
                    .rev()
                    .find(|e| e.is_health_check() && e.database.as_deref() == Some(database))
                    .cloned(),
            }
        })
        .collect();
    // Newest first by when each started, the time shown: a line is written when its operation ends, so a
    // migration's line comes after those of the check and rollback it ran.
    let mut operations: Vec<AuditEntry> =
        log.entries.iter().rev().filter(|e| wanted(e.database.as_deref())).cloned().collect();
    operations.sort_by_key(|e| std::cmp::Reverse(e.time));
    operations.truncate(options.last);
    StoreStatus {
        store,
        exists: true,
        at: now,
        databases,
        operations,
        leftovers,
        skipped_audit_lines: log.skipped.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::{AuditCommand, Outcome};
    use crate::store::sample_meta;

    fn at(time: &str) -> Timestamp {
        time.parse().unwrap()
    }

    const NOW: &str = "2026-12-02T04:00:00Z";

    fn line(command: AuditCommand, time: &str, database: Option<&str>, outcome: Outcome) -> AuditEntry {
        let mut entry = AuditEntry::new(command, at(time), outcome, 2.0);
        entry.database = database.map(str::to_owned);
        entry
    }

    /// Three snapshots of `shop` (the newest unverified), one of `blog`; a log of five lines.
    fn fixture() -> (Vec<Listed>, AuditLog) {
        let mut snapshots = vec![
            sample_meta("shop", "2026-12-02T01:00:00Z"),
            sample_meta("shop", "2026-12-02T03:00:00Z"),
            sample_meta("blog", "2026-11-30T00:00:00Z"),
            sample_meta("shop", "2026-12-02T02:00:00Z"),
        ];
        snapshots[1].verified_at = None;
        for (s, bytes) in snapshots.iter_mut().zip([100, 200, 7, 300]) {
            s.bytes = bytes;
        }
        let failed = || Outcome::Failed { error: "3 tables lost rows".into() };
        let log = AuditLog {
            entries: vec![
                line(AuditCommand::Check, "2026-12-02T00:00:00Z", Some("shop"), Outcome::Ok),
                line(AuditCommand::Snapshot, "2026-12-02T03:00:00Z", Some("shop"), Outcome::Ok),
                line(AuditCommand::Prune, "2026-12-02T03:10:00Z", None, Outcome::Ok),
                line(AuditCommand::Dump, "2026-12-02T03:20:00Z", Some("blog"), Outcome::Ok),
                line(AuditCommand::Check, "2026-12-02T03:30:00Z", Some("shop"), failed()),
                line(AuditCommand::Check, "2026-12-02T03:40:00Z", Some("gone"), Outcome::Ok),
            ],
            skipped: vec![SkippedLine { line: 4, error: "expected value".into() }],
        };
        let listed = snapshots.into_iter().map(Listed::present).collect();
        (listed, log)
    }

    fn options(database: Option<&str>, last: usize) -> StatusOptions {
        StatusOptions { database: database.map(str::to_owned), last }
    }

    #[test]
    fn each_database_shows_its_count_size_newest_and_last_check() {
        let (snapshots, log) = fixture();
        let now = at("2026-12-02T04:00:00Z");
        let status = build("s".into(), &snapshots, &log, vec!["x.pgsafe.partial".into()], &options(None, 10), now);
        let names: Vec<&str> = status.databases.iter().map(|d| d.database.as_str()).collect();
        assert_eq!(names, ["blog", "gone", "shop"]);
        let shop = &status.databases[2];
        assert_eq!((shop.snapshots, shop.bytes), (3, 600));
        let newest = shop.newest.as_ref().unwrap();
        assert_eq!(newest.id.as_str(), "shop-20261202T030000Z");
        assert_eq!((newest.age_seconds, newest.verified), (3600, false));
        let check = shop.last_check.as_ref().unwrap();
        assert_eq!((check.time, &check.outcome), (at("2026-12-02T03:30:00Z"), &log.entries[4].outcome));
        // A database checked but with no snapshot left is still shown, with its check.
        let gone = &status.databases[1];
        assert_eq!((gone.snapshots, gone.newest.is_none(), gone.last_check.is_some()), (0, true, true));
        assert!(status.databases[0].last_check.is_none());
        assert_eq!(status.leftovers, ["x.pgsafe.partial"]);
        assert_eq!(status.skipped_audit_lines, log.skipped);
        assert!(status.exists);
    }

    #[test]
    fn operations_are_the_last_n_newest_first_and_d_keeps_its_own_and_the_stores() {
        let (snapshots, log) = fixture();
        let now = at("2026-12-02T04:00:00Z");
        let times = |s: &StoreStatus| s.operations.iter().map(|e| e.time.to_string()).collect::<Vec<_>>();
        let all = build("s".into(), &snapshots, &log, Vec::new(), &options(None, 3), now);
        assert_eq!(times(&all), ["2026-12-02T03:40:00Z", "2026-12-02T03:30:00Z", "2026-12-02T03:20:00Z"]);
        let shop = build("s".into(), &snapshots, &log, Vec::new(), &options(Some("shop"), 10), now);
        assert_eq!(
            times(&shop),
            ["2026-12-02T03:30:00Z", "2026-12-02T03:10:00Z", "2026-12-02T03:00:00Z", "2026-12-02T00:00:00Z"]
        );
        assert_eq!(shop.databases.len(), 1);
        let none = build("s".into(), &snapshots, &log, Vec::new(), &options(Some("nope"), 10), now);
        assert!(none.databases.is_empty());
        assert_eq!(times(&none), ["2026-12-02T03:10:00Z"]);
        // A line is written when its operation ends: a migration that started first and ended last (its
        // rollback and check written before it) is listed by its start.
        let mut log = log;
        let mut migration = log.entries[0].clone();
        migration.time = at("2026-12-02T03:35:00Z");
        log.entries.push(migration);
        let all = build("s".into(), &snapshots, &log, Vec::new(), &options(None, 3), now);
        assert_eq!(times(&all), ["2026-12-02T03:40:00Z", "2026-12-02T03:35:00Z", "2026-12-02T03:30:00Z"]);
    }

    #[test]
    fn a_snapshot_whose_archive_is_gone_is_named_with_its_database() {
        let (mut snapshots, log) = fixture();
        snapshots[1].archive_state = ArchiveState::Missing;
        let status = build("s".into(), &snapshots, &log, Vec::new(), &options(Some("shop"), 10), at(NOW));
        let shop = &status.databases[0];
        assert_eq!(shop.newest.as_ref().unwrap().archive_state, ArchiveState::Missing);
        assert_eq!(
            shop.unusable,
            [UnusableSnapshot { id: snapshots[1].meta.id.clone(), archive_state: ArchiveState::Missing }]
        );
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["databases"][0]["unusable"][0]["archive_state"], "missing");
    }

    #[test]
    fn a_store_that_does_not_exist_shows_nothing() {
        let status = StoreStatus::missing("/nowhere".into(), at("2026-12-02T04:00:00Z"));
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["exists"], false);
        assert_eq!(json["databases"], serde_json::json!([]));
        assert_eq!(json["operations"], serde_json::json!([]));
    }

    #[test]
    fn read_takes_the_stores_own_list_and_log() {
        use crate::store::memory::MemoryStore;
        let store = MemoryStore::default();
        let (snapshots, log) = fixture();
        for s in &snapshots {
            store.put(&s.meta).unwrap();
        }
        for e in &log.entries {
            store.append_audit(e).unwrap();
        }
        let status = read(&store, &options(None, 10), at("2026-12-02T04:00:00Z")).unwrap();
        assert_eq!(status.store, "memory");
        assert_eq!(status.databases.iter().map(|d| d.snapshots).sum::<usize>(), 4);
        assert_eq!(status.operations.len(), 6);
    }
}
