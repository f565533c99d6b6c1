//! `pgsafe status`: the store at a glance, as text, Markdown (for an incident or a pull request) or JSON.

use clap::Args;
use jiff::Timestamp;
use pgsafe::Error;
use pgsafe::store::status::{self, DEFAULT_LAST, StatusOptions, StoreStatus};
use pgsafe::store::{ArchiveState, AuditCommand, AuditEntry, Outcome};

use super::output::{self, Exit, bytes};
use super::store::{StoreArgs, age, database_name, pin_line, pinned_block, warn_leftovers};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only this database (a name, or a connection string naming one).
    #[arg(short = 'd', long = "dbname", value_name = "DBNAME")]
    dbname: Option<String>,
    /// How many of the audit log's last operations to show.
    #[arg(long = "last", value_name = "N", default_value_t = DEFAULT_LAST)]
    last: usize,
    /// Print the status as JSON on stdout.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the status as Markdown (a heading and tables), for an incident or a pull request.
    #[arg(long)]
    markdown: bool,
}

pub fn run(args: StatusArgs) -> Result<Exit, Error> {
    let dir = args.store.dir();
    let options = StatusOptions { database: database_name(args.dbname.as_deref())?, last: args.last };
    let now = Timestamp::now();
    let status = match pgsafe::store::existing(&dir, Default::default())? {
        Some(store) => status::read(&*store, &options, now)?,
        None => StoreStatus::missing(dir.display().to_string(), now),
    };
    for skipped in &status.skipped_audit_lines {
        eprintln!(
            "warning: line {} of the audit log `{}` is not an entry, skipped: {}",
            skipped.line,
            dir.join("audit.jsonl").display(),
            skipped.error
        );
    }
    if args.json {
        output::stdout(&(serde_json::to_string_pretty(&status).expect("the status serializes") + "\n"))?;
    } else if args.markdown {
        output::stdout(&markdown(&status))?;
    } else {
        warn_leftovers(&status.store, &status.leftovers);
        output::stdout(&text(&status))?;
    }
    Ok(Exit::Success)
}

/// The status as text: a line naming the store, a table of databases, a table of operations.
fn text(s: &StoreStatus) -> String {
    if !s.exists {
        return format!("there is no store at `{}` (`pgsafe snapshot` makes it)\n", s.store);
    }
    let mut out = format!("store `{}` at {} UTC\n\n", s.store, s.at.strftime("%Y-%m-%d %H:%M:%S"));
    if s.databases.is_empty() {
        out.push_str("no snapshots\n");
    } else {
        let mut rows = vec![DATABASE_HEADER.map(str::to_uppercase).to_vec()];
        rows.extend(database_rows(s, |id| id.to_owned()));
        out.push_str(&output::columns(&rows));
        for line in unusable_lines(s, |id| id.to_owned()) {
            out.push_str(&format!("warning: {line}\n"));
        }
        out.push_str(&pinned_block(pinned_lines(s)));
    }
    out.push('\n');
    if s.operations.is_empty() {
        out.push_str("no operations in the audit log\n");
    } else {
        out.push_str(&format!("{}:\n", last_operations(s.operations.len())));
        let mut rows = vec![OPERATION_HEADER.map(str::to_uppercase).to_vec()];
        rows.extend(operation_rows(s, |id| id.to_owned()));
        out.push_str(&output::columns(&rows));
    }
    out
}

/// The status as Markdown: a heading, a table of databases, a table of operations, the leftovers.
fn markdown(s: &StoreStatus) -> String {
    let mut out = format!("## pgsafe status of `{}`\n\n", s.store);
    if !s.exists {
        out.push_str("There is no store there.\n");
        return out;
    }
    out.push_str(&format!("At {} UTC.\n\n", s.at.strftime("%Y-%m-%d %H:%M:%S")));
    let code = |id: &str| if id == "-" { id.to_owned() } else { format!("`{id}`") };
    if s.databases.is_empty() {
        out.push_str("No snapshots.\n\n");
    } else {
        out.push_str(&markdown_table(&DATABASE_HEADER, &database_rows(s, code)));
        let unusable = unusable_lines(s, code);
        if !unusable.is_empty() {
            out.push_str("### Snapshots that restore nothing\n\n");
            for line in unusable {
                out.push_str(&format!("- {line}\n"));
            }
            out.push('\n');
        }
        let pinned = pinned_lines(s);
        if !pinned.is_empty() {
            out.push_str("### Pinned snapshots (retention keeps them)\n\n");
            for line in pinned {
                out.push_str(&format!("- {line}\n"));
            }
            out.push('\n');
        }
    }
    if s.operations.is_empty() {
        out.push_str("No operations in the audit log.\n\n");
    } else {
        let title = last_operations(s.operations.len());
        out.push_str(&format!("### {}{}\n\n", title[..1].to_uppercase(), &title[1..]));
        out.push_str(&markdown_table(&OPERATION_HEADER, &operation_rows(s, code)));
    }
    if !s.leftovers.is_empty() {
        out.push_str("### Files of no snapshot\n\n");
        for name in &s.leftovers {
            out.push_str(&format!("- `{name}`\n"));
        }
        out.push('\n');
    }
    if !s.skipped_audit_lines.is_empty() {
        let lines: Vec<String> = s.skipped_audit_lines.iter().map(|l| l.line.to_string()).collect();
        out.push_str(&format!("Audit log lines that are not entries, skipped: {}.\n", lines.join(", ")));
    }
    out
}

/// `last 3 operations, newest first`, `the last operation`.
fn last_operations(n: usize) -> String {
    if n == 1 { "the last operation".into() } else { format!("last {n} operations, newest first") }
}

const DATABASE_HEADER: [&str; 7] = ["database", "snapshots", "size", "newest", "age", "verified", "last check"];

/// One row per database; `id` formats a snapshot id (backticks in Markdown).
fn database_rows(s: &StoreStatus, id: impl Fn(&str) -> String) -> Vec<Vec<String>> {
    s.databases
        .iter()
        .map(|d| {
            let (newest, age_text, verified) = match &d.newest {
                Some(n) => (id(n.id.as_str()), age(s.at, n.created_at), verified_cell(n.verified, n.archive_state)),
                None => ("-".into(), "-".into(), "-"),
            };
            let check = match &d.last_check {
                Some(c) => format!("{} {} ago", outcome_word(c), age(s.at, c.time)),
                None => "-".into(),
            };
            vec![d.database.clone(), d.snapshots.to_string(), bytes(d.bytes), newest, age_text, verified.into(), check]
        })
        .collect()
}

/// `yes`/`no`, or what is wrong with the archive when it is not there as recorded: then nothing was
/// verified that still exists.
pub(super) fn verified_cell(verified: bool, archive: ArchiveState) -> &'static str {
    match archive {
        ArchiveState::Missing => "archive missing",
        ArchiveState::WrongSize { .. } => "archive wrong size",
        ArchiveState::Present if verified => "yes",
        ArchiveState::Present => "no",
    }
}

/// A line for each snapshot whose archive is gone or of another size; `id` formats its id.
fn unusable_lines(s: &StoreStatus, id: impl Fn(&str) -> String) -> Vec<String> {
    s.databases
        .iter()
        .flat_map(|d| {
            d.unusable.iter().map(|u| {
                format!(
                    "snapshot {} of `{}`: {}; it restores nothing (`pgsafe prune` removes it)",
                    id(u.id.as_str()),
                    d.database,
                    u.archive_state
                )
            })
        })
        .collect()
}

/// A line for each pinned snapshot, database by database.
fn pinned_lines(s: &StoreStatus) -> Vec<String> {
    s.databases
        .iter()
        .flat_map(|d| d.pinned.iter().map(|p| pin_line(p.id.as_str(), &d.database, &p.reason, p.holder)))
        .collect()
}

const OPERATION_HEADER: [&str; 6] = ["time (UTC)", "command", "database", "outcome", "snapshot", "duration"];

/// One row per operation, newest first; `id` formats a snapshot id.
fn operation_rows(s: &StoreStatus, id: impl Fn(&str) -> String) -> Vec<Vec<String>> {
    s.operations
        .iter()
        .map(|e| {
            let outcome = match &e.outcome {
                Outcome::Failed { error } => format!("failed: {}", shorten(error)),
                Outcome::Forced { error } => format!("forced past: {}", shorten(error)),
                Outcome::Ok => "ok".into(),
            };
            let snapshot = match (&e.snapshot, e.removed.len()) {
                (Some(s), _) => id(s.as_str()),
                (None, 0) => "-".into(),
                // A migration removes only its own snapshot, refused or failed before it changed anything.
                (None, 1) if e.command == AuditCommand::Migrate => format!("removed {}", id(e.removed[0].as_str())),
                (None, n) => format!("removed {n}"),
            };
            vec![
                e.time.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                command_name(e),
                e.database.clone().unwrap_or_else(|| "-".into()),
                outcome,
                snapshot,
                format!("{:.1}s", e.seconds),
            ]
        })
        .collect()
}

/// `snapshot`, `dry-run`: the command as the log spells it; `migrate apply` for a step.
fn command_name(e: &AuditEntry) -> String {
    let name = serde_json::to_value(e.command).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    match (&e.step, e.command) {
        (Some(step), AuditCommand::Migrate) => format!("{name} {step}"),
        _ => name,
    }
}

fn outcome_word(e: &AuditEntry) -> &'static str {
    match e.outcome {
        Outcome::Ok => "ok",
        Outcome::Failed { .. } => "failed",
        Outcome::Forced { .. } => "forced",
    }
}

/// The most characters of an error a table shows.
const ERROR_CHARS: usize = 60;

/// An error's first line, cut to [`ERROR_CHARS`] characters with `…`.
fn shorten(error: &str) -> String {
    let line = error.lines().next().unwrap_or_default();
    if line.chars().count() <= ERROR_CHARS {
        return line.to_owned();
    }
    let cut: String = line.chars().take(ERROR_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

/// A Markdown table; `|` in a cell is escaped so that it stays one cell.
fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let row = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut out = row(header.iter().map(|h| h.to_string()).collect());
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for r in rows {
        out.push_str(&row(r.iter().map(|c| c.replace('|', "\\|")).collect()));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use pgsafe::store::audit::{AuditLog, SkippedLine};
    use pgsafe::store::{Listed, SnapshotMeta, sample_meta};

    use super::*;

    fn at(time: &str) -> Timestamp {
        time.parse().unwrap()
    }

    fn meta(database: &str, time: &str, bytes: u64, verified: bool) -> SnapshotMeta {
        let mut meta = sample_meta(database, time);
        meta.bytes = bytes;
        meta.verified_at = verified.then_some(meta.created_at);
        meta
    }

    fn entry(command: AuditCommand, time: &str, database: &str, outcome: Outcome) -> AuditEntry {
        let mut e = AuditEntry::new(command, at(time), outcome, 12.34);
        e.database = Some(database.into());
        e
    }

    fn sample() -> StoreStatus {
        let snapshots =
            [meta("shop", "2026-12-02T01:00:00Z", 2048, true), meta("shop", "2026-12-02T03:00:00Z", 1024, false)];
        let mut snap = entry(AuditCommand::Snapshot, "2026-12-02T03:00:00Z", "shop", Outcome::Ok);
        snap.snapshot = Some(snapshots[1].id.clone());
        let long = format!("database `shop` has | a pipe and {}\nsecond line", "x".repeat(80));
        let log = AuditLog {
            entries: vec![
                snap,
                entry(AuditCommand::Check, "2026-12-02T03:30:00Z", "shop", Outcome::Failed { error: long }),
            ],
            skipped: vec![SkippedLine { line: 2, error: "EOF".into() }],
        };
        let listed: Vec<Listed> = snapshots.into_iter().map(Listed::present).collect();
        status::build(
            "/srv/.pgsafe".into(),
            &listed,
            &log,
            vec!["shop-1.pgsafe.partial".into()],
            &StatusOptions { database: None, last: 10 },
            at("2026-12-02T04:00:00Z"),
        )
    }

    #[test]
    fn the_text_shows_each_database_and_the_last_operations() {
        let text = text(&sample());
        let expected = "\
store `/srv/.pgsafe` at 2026-12-02 04:00:00 UTC

DATABASE  SNAPSHOTS  SIZE     NEWEST                 AGE  VERIFIED  LAST CHECK
shop      2          3.0 KiB  shop-20261202T030000Z  1h   no        failed 30m ago

last 2 operations, newest first:
TIME (UTC)           COMMAND   DATABASE  OUTCOME                                                               SNAPSHOT               DURATION
2026-12-02 03:30:00  check     shop      failed: database `shop` has | a pipe and xxxxxxxxxxxxxxxxxxxxxxxxxx…  -                      12.3s
2026-12-02 03:00:00  snapshot  shop      ok                                                                    shop-20261202T030000Z  12.3s
";
        assert_eq!(text, expected);
    }

    #[test]
    fn the_markdown_has_a_heading_tables_and_the_leftovers() {
        let md = markdown(&sample());
        assert!(md.starts_with("## pgsafe status of `/srv/.pgsafe`\n\nAt 2026-12-02 04:00:00 UTC.\n\n"), "{md}");
        assert!(md.contains(
            "| database | snapshots | size | newest | age | verified | last check |\n|---|---|---|---|---|---|---|\n\
             | shop | 2 | 3.0 KiB | `shop-20261202T030000Z` | 1h | no | failed 30m ago |\n"
        ), "{md}");
        assert!(md.contains("### Last 2 operations, newest first\n\n| time (UTC) | command |"), "{md}");
        // A pipe in an error stays inside its cell; the error is cut to one short line.
        assert!(md.contains("| check | shop | failed: database `shop` has \\| a pipe and x"), "{md}");
        assert!(!md.contains("second line"), "{md}");
        assert!(md.contains("| `shop-20261202T030000Z` | 12.3s |"), "{md}");
        assert!(
            md.ends_with(
                "| `shop-20261202T030000Z` | 12.3s |\n\n### Files of no snapshot\n\n- `shop-1.pgsafe.partial`\n\n\
             Audit log lines that are not entries, skipped: 2.\n"
            ),
            "{md}"
        );
    }

    #[test]
    fn a_snapshot_whose_archive_is_gone_is_not_shown_as_verified() {
        let listed = [
            Listed {
                meta: meta("shop", "2026-12-02T03:00:00Z", 1024, true),
                archive_state: ArchiveState::Missing,
                pin_holder: None,
            },
            Listed {
                meta: meta("shop", "2026-12-02T01:00:00Z", 2048, true),
                archive_state: ArchiveState::Present,
                pin_holder: None,
            },
        ];
        let options = StatusOptions { database: None, last: 10 };
        let status =
            status::build("s".into(), &listed, &AuditLog::default(), Vec::new(), &options, at("2026-12-02T04:00:00Z"));
        let text = text(&status);
        assert!(text.contains("shop-20261202T030000Z  1h   archive missing"), "{text}");
        assert!(
            text.contains(
                "warning: snapshot shop-20261202T030000Z of `shop`: its archive is missing; it restores nothing"
            ),
            "{text}"
        );
        let md = markdown(&status);
        assert!(
            md.contains("### Snapshots that restore nothing\n\n- snapshot `shop-20261202T030000Z` of `shop`"),
            "{md}"
        );
    }

    #[test]
    fn a_missing_store_says_so_plainly() {
        let missing = StoreStatus::missing("/nowhere".into(), at("2026-12-02T04:00:00Z"));
        assert_eq!(text(&missing), "there is no store at `/nowhere` (`pgsafe snapshot` makes it)\n");
        assert_eq!(markdown(&missing), "## pgsafe status of `/nowhere`\n\nThere is no store there.\n");
        assert_eq!(last_operations(1), "the last operation");
    }

    #[test]
    fn errors_are_cut_to_one_short_line() {
        assert_eq!(shorten("short\nmore"), "short");
        let long = "y".repeat(100);
        let cut = shorten(&long);
        assert_eq!(cut.chars().count(), ERROR_CHARS);
        assert!(cut.ends_with('…'));
    }
}
