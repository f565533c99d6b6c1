//! Retention: which snapshots a prune keeps and which it removes, as a pure function of their metadata,
//! the policy and the time, so that `--dry-run` prints exactly what the run does.
//!
//! Per database, newest first, a snapshot is kept for every rule that wants it (as restic's `forget`):
//! the newest `keep_last`; every one taken within `keep_within` of now; the newest of each of the last
//! `keep_daily` UTC days and `keep_weekly` ISO weeks that have snapshots. Then two rules no option turns
//! off: a pinned snapshot (a running or failed migration depends on it) is kept, and when nothing kept is
//! verified, the newest verified snapshot is kept, so a database never loses its only verified snapshot.
//! A kept rollback's safety snapshot keeps the snapshot it `protects` (the one that rollback restores),
//! so that rollback attempts do not push the snapshot they restore out of the newest N.
//!
//! A snapshot whose archive is missing or of another size than recorded restores nothing: it takes no
//! rank among the newest, no day or week, and is never the verified one kept, so it cannot push a good
//! snapshot out; it is removed unless pinned.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::{ArchiveState, Listed, SnapshotId, SnapshotMeta};

/// What to keep; the default keeps the newest 7 per database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// The newest N per database (`--keep`, `MAX_BACKUPS`).
    pub keep_last: usize,
    /// Every snapshot taken within this long of now.
    pub keep_within: Option<Duration>,
    /// The newest snapshot of each of the last N days (UTC) that have one.
    pub keep_daily: usize,
    /// The newest snapshot of each of the last N ISO weeks that have one.
    pub keep_weekly: usize,
}

/// `MAX_BACKUPS`'s default, as the backup scripts pgsafe replaces had it.
pub const DEFAULT_KEEP_LAST: usize = 7;

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy { keep_last: DEFAULT_KEEP_LAST, keep_within: None, keep_daily: 0, keep_weekly: 0 }
    }
}

/// Why a snapshot is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum KeepReason {
    /// One of the newest `--keep` of its database (1 is the newest).
    Newest { rank: usize },
    /// Taken within `--keep-within`.
    Within,
    /// The newest of its day (`2026-12-02`).
    Daily { day: String },
    /// The newest of its ISO week (`2026-W49`).
    Weekly { week: String },
    /// A migration depends on it.
    Pinned { reason: String },
    /// Its database's only verified snapshot left.
    OnlyVerified,
    /// A kept safety snapshot of a rollback to it names it (`protects`): the rollback may be run again.
    Protected { by: SnapshotId },
}

impl std::fmt::Display for KeepReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeepReason::Newest { rank } => write!(f, "newest {rank}"),
            KeepReason::Within => f.write_str("within --keep-within"),
            KeepReason::Daily { day } => write!(f, "daily {day}"),
            KeepReason::Weekly { week } => write!(f, "weekly {week}"),
            KeepReason::Pinned { reason } => write!(f, "pinned: {reason}"),
            KeepReason::OnlyVerified => f.write_str("the only verified one"),
            KeepReason::Protected { by } => write!(f, "protected by safety snapshot {by}"),
        }
    }
}

/// One snapshot's fate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub id: SnapshotId,
    pub database: String,
    pub created_at: Timestamp,
    /// Empty for a snapshot to remove.
    pub reasons: Vec<KeepReason>,
    /// What is wrong with its archive, when something is (missing, or of another size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// What a prune does: every snapshot kept (with why) or removed, newest first.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RetentionPlan {
    pub keep: Vec<Decision>,
    pub remove: Vec<Decision>,
}

/// Decides, for every snapshot given (each with its archive there), whether `policy` keeps it at `now`.
pub fn plan(snapshots: &[SnapshotMeta], policy: &RetentionPolicy, now: Timestamp) -> RetentionPlan {
    let listed: Vec<Listed> = snapshots.iter().map(|meta| Listed::present(meta.clone())).collect();
    plan_listed(&listed, policy, now)
}

/// Decides, for every snapshot given with the state of its archive, whether `policy` keeps it at `now`.
pub fn plan_listed(snapshots: &[Listed], policy: &RetentionPolicy, now: Timestamp) -> RetentionPlan {
    let mut by_database: BTreeMap<&str, Vec<(&SnapshotMeta, ArchiveState)>> = BTreeMap::new();
    for s in snapshots {
        by_database.entry(&s.meta.database).or_default().push((&s.meta, s.archive_state));
    }
    let mut result = RetentionPlan::default();
    for (_, mut group) in by_database {
        group.sort_by(|(a, _), (b, _)| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        let mut reasons: Vec<Vec<KeepReason>> = vec![Vec::new(); group.len()];
        let mut last_day = None;
        let mut last_week = None;
        let (mut ranked, mut days, mut weeks) = (0, 0, 0);
        for (i, (s, archive)) in group.iter().enumerate() {
            let keep = &mut reasons[i];
            if let Some(reason) = &s.pinned {
                keep.push(KeepReason::Pinned { reason: reason.clone() });
            }
            if !archive.is_present() {
                continue;
            }
            if ranked < policy.keep_last {
                ranked += 1;
                keep.push(KeepReason::Newest { rank: ranked });
            }
            if let Some(within) = policy.keep_within
                && now.duration_since(s.created_at).unsigned_abs() <= within
            {
                keep.push(KeepReason::Within);
            }
            let date = s.created_at.to_zoned(jiff::tz::TimeZone::UTC).date();
            if days < policy.keep_daily && last_day != Some(date) {
                days += 1;
                last_day = Some(date);
                keep.push(KeepReason::Daily { day: date.to_string() });
            }
            let week = date.iso_week_date();
            let week = (week.year(), week.week());
            if weeks < policy.keep_weekly && last_week != Some(week) {
                weeks += 1;
                last_week = Some(week);
                keep.push(KeepReason::Weekly { week: format!("{}-W{:02}", week.0, week.1) });
            }
        }
        // A kept safety snapshot keeps the snapshot its rollback restores (and so on, for a rollback to a
        // safety snapshot), however many safety snapshots came since.
        loop {
            let mut added = false;
            for i in 0..group.len() {
                let Some(target) = group[i].0.protects.as_ref().filter(|_| !reasons[i].is_empty()) else { continue };
                let Some(j) = group.iter().position(|(s, archive)| &s.id == target && archive.is_present()) else {
                    continue;
                };
                if !reasons[j].iter().any(|r| matches!(r, KeepReason::Protected { .. })) {
                    reasons[j].push(KeepReason::Protected { by: group[i].0.id.clone() });
                    added = true;
                }
            }
            if !added {
                break;
            }
        }
        let usable = |(s, archive): &(&SnapshotMeta, ArchiveState)| s.is_verified() && archive.is_present();
        let kept_verified = group.iter().zip(&reasons).any(|(s, r)| !r.is_empty() && usable(s));
        if !kept_verified && let Some(i) = group.iter().position(usable) {
            reasons[i].push(KeepReason::OnlyVerified);
        }
        for ((s, archive), reasons) in group.into_iter().zip(reasons) {
            let decision = Decision {
                id: s.id.clone(),
                database: s.database.clone(),
                created_at: s.created_at,
                reasons,
                problem: (!archive.is_present()).then(|| archive.to_string()),
            };
            if decision.reasons.is_empty() {
                result.remove.push(decision);
            } else {
                result.keep.push(decision);
            }
        }
    }
    let newest_first = |a: &Decision, b: &Decision| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id));
    result.keep.sort_by(newest_first);
    result.remove.sort_by(newest_first);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn snap(database: &str, time: &str) -> SnapshotMeta {
        crate::store::sample_meta(database, time)
    }

    fn policy(keep_last: usize) -> RetentionPolicy {
        RetentionPolicy { keep_last, ..RetentionPolicy::default() }
    }

    fn ids(decisions: &[Decision]) -> Vec<String> {
        decisions.iter().map(|d| d.id.to_string()).collect()
    }

    const NOW: &str = "2026-12-02T12:00:00Z";

    #[test]
    fn the_newest_n_of_each_database_are_kept() {
        let snaps = [
            snap("a", "2026-12-01T10:00:00Z"),
            snap("a", "2026-12-01T11:00:00Z"),
            snap("a", "2026-12-01T09:00:00Z"),
            snap("b", "2026-11-01T00:00:00Z"),
        ];
        let p = plan(&snaps, &policy(2), at(NOW));
        assert_eq!(ids(&p.keep), ["a-20261201T110000Z", "a-20261201T100000Z", "b-20261101T000000Z"]);
        assert_eq!(ids(&p.remove), ["a-20261201T090000Z"]);
        assert_eq!(p.keep[0].reasons, [KeepReason::Newest { rank: 1 }]);
    }

    #[test]
    fn keep_within_keeps_what_is_younger_than_the_duration() {
        let snaps =
            [snap("a", "2026-12-02T11:00:00Z"), snap("a", "2026-12-02T01:00:00Z"), snap("a", "2026-12-01T23:59:59Z")];
        let within = RetentionPolicy { keep_within: Some(Duration::from_secs(12 * 3600)), ..policy(1) };
        let p = plan(&snaps, &within, at(NOW));
        assert_eq!(ids(&p.keep), ["a-20261202T110000Z", "a-20261202T010000Z"]);
        assert_eq!(p.keep[1].reasons, [KeepReason::Within]);
        assert_eq!(ids(&p.remove), ["a-20261201T235959Z"]);
    }

    #[test]
    fn daily_and_weekly_keep_the_newest_of_each_day_and_iso_week() {
        let snaps = [
            snap("a", "2026-12-02T10:00:00Z"), // Wednesday, week 49
            snap("a", "2026-12-02T08:00:00Z"),
            snap("a", "2026-12-01T08:00:00Z"), // Tuesday
            snap("a", "2026-11-30T08:00:00Z"), // Monday, week 49
            snap("a", "2026-11-29T08:00:00Z"), // Sunday, week 48
            snap("a", "2026-11-20T08:00:00Z"), // week 47
            snap("a", "2026-11-10T08:00:00Z"), // week 46
        ];
        let rules = RetentionPolicy { keep_daily: 3, keep_weekly: 3, ..policy(0) };
        let p = plan(&snaps, &rules, at(NOW));
        assert_eq!(
            ids(&p.keep),
            [
                "a-20261202T100000Z",
                "a-20261201T080000Z",
                "a-20261130T080000Z",
                "a-20261129T080000Z",
                "a-20261120T080000Z"
            ]
        );
        assert_eq!(
            p.keep[0].reasons,
            [KeepReason::Daily { day: "2026-12-02".into() }, KeepReason::Weekly { week: "2026-W49".into() }]
        );
        assert_eq!(p.keep[3].reasons, [KeepReason::Weekly { week: "2026-W48".into() }]);
        assert_eq!(ids(&p.remove), ["a-20261202T080000Z", "a-20261110T080000Z"]);
    }

    #[test]
    fn the_only_verified_snapshot_is_never_removed() {
        let mut newest = snap("a", "2026-12-02T10:00:00Z");
        newest.verified_at = None;
        let mut middle = snap("a", "2026-12-02T09:00:00Z");
        middle.verified_at = None;
        let snaps = [newest, middle, snap("a", "2026-12-02T08:00:00Z"), snap("a", "2026-12-02T07:00:00Z")];
        let p = plan(&snaps, &policy(1), at(NOW));
        assert_eq!(ids(&p.keep), ["a-20261202T100000Z", "a-20261202T080000Z"]);
        assert_eq!(p.keep[1].reasons, [KeepReason::OnlyVerified]);
        assert_eq!(ids(&p.remove), ["a-20261202T090000Z", "a-20261202T070000Z"]);
        // Once a kept one is verified, the rule keeps nothing more.
        let p = plan(&snaps[2..], &policy(1), at(NOW));
        assert_eq!(ids(&p.remove), ["a-20261202T070000Z"]);
        // Nothing verified at all: nothing to protect.
        let unverified: Vec<_> = snaps.iter().cloned().map(|s| SnapshotMeta { verified_at: None, ..s }).collect();
        assert_eq!(plan(&unverified, &policy(0), at(NOW)).keep, []);
    }

    #[test]
    fn a_kept_safety_snapshot_keeps_the_snapshot_it_protects() {
        let base = snap("a", "2026-12-01T10:00:00Z");
        let safety =
            |time: &str, protects: &SnapshotId| SnapshotMeta { protects: Some(protects.clone()), ..snap("a", time) };
        let first = safety("2026-12-01T11:00:00Z", &base.id);
        let second = safety("2026-12-01T12:00:00Z", &base.id);
        // A rollback to the first safety snapshot: its own safety snapshot keeps it, which keeps `base`.
        let third = safety("2026-12-01T13:00:00Z", &first.id);
        let nightly = snap("a", "2026-12-02T00:00:00Z");
        let snaps = [base.clone(), first.clone(), second.clone(), third.clone(), nightly.clone()];
        let p = plan(&snaps, &policy(3), at(NOW));
        assert_eq!(ids(&p.keep), [&nightly.id, &third.id, &second.id, &first.id, &base.id].map(|i| i.to_string()));
        assert_eq!(p.keep[3].reasons, [KeepReason::Protected { by: third.id.clone() }]);
        assert_eq!(p.keep[4].reasons, [KeepReason::Protected { by: second.id.clone() }]);
        assert_eq!(p.keep[4].reasons[0].to_string(), format!("protected by safety snapshot {}", second.id));
        assert_eq!(p.remove, []);
        // Once its safety snapshots are removed, it goes as any other.
        let p = plan(&snaps, &policy(1), at(NOW));
        assert_eq!(ids(&p.keep), [nightly.id.to_string()]);
    }

    #[test]
    fn a_pinned_snapshot_is_kept_whatever_its_age() {
        let mut old = snap("a", "2020-01-01T00:00:00Z");
        old.pinned = Some("migration `0042_add_index` failed".into());
        let snaps = [snap("a", "2026-12-02T10:00:00Z"), old];
        let p = plan(&snaps, &policy(0), at(NOW));
        assert_eq!(ids(&p.keep), ["a-20200101T000000Z"]);
        assert_eq!(p.keep[0].reasons, [KeepReason::Pinned { reason: "migration `0042_add_index` failed".into() }]);
        // The pinned one is verified, so the newest is not the only verified one.
        assert_eq!(ids(&p.remove), ["a-20261202T100000Z"]);
    }

    #[test]
    fn a_snapshot_whose_archive_is_gone_takes_no_place_among_the_kept_ones() {
        let listed =
            |time: &str, archive_state: ArchiveState| Listed { meta: snap("a", time), archive_state, pin_holder: None };
        let snaps = [
            listed("2026-12-02T10:00:00Z", ArchiveState::Missing),
            listed("2026-12-02T09:00:00Z", ArchiveState::WrongSize { bytes: 0, recorded: 1 }),
            listed("2026-12-02T08:00:00Z", ArchiveState::Present),
            listed("2026-12-02T07:00:00Z", ArchiveState::Present),
        ];
        let p = plan_listed(&snaps, &policy(1), at(NOW));
        assert_eq!(ids(&p.keep), ["a-20261202T080000Z"]);
        assert_eq!(p.keep[0].reasons, [KeepReason::Newest { rank: 1 }]);
        assert_eq!(ids(&p.remove), ["a-20261202T100000Z", "a-20261202T090000Z", "a-20261202T070000Z"]);
        assert_eq!(p.remove[0].problem.as_deref(), Some("its archive is missing"));
        assert_eq!(p.remove[1].problem.as_deref(), Some("its archive has 0 bytes, not the 1 recorded"));
        assert_eq!(p.remove[2].problem, None);
        // Nor is it the verified one kept when nothing else is, nor a day's newest.
        let rules = RetentionPolicy { keep_daily: 1, ..policy(0) };
        let p = plan_listed(&snaps, &rules, at(NOW));
        assert_eq!(ids(&p.keep), ["a-20261202T080000Z"]);
        // Pinned, it stays, with its problem said.
        let mut pinned = snaps[0].clone();
        pinned.meta.pinned = Some("x".into());
        let p = plan_listed(&[pinned], &policy(0), at(NOW));
        assert_eq!((p.keep.len(), p.keep[0].problem.as_deref()), (1, Some("its archive is missing")));
    }
}
