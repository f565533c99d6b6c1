//! The sections of a migration file that undo it, in the formats that keep both directions in one file:
//! goose (`-- +goose Up` / `-- +goose Down`), sql-migrate (`-- +migrate Up` / `-- +migrate Down`) and
//! dbmate (`-- migrate:up` / `-- migrate:down`). Linting, rehearsing or applying such a file is about
//! its up section; its down section runs only when the migration is rolled back.

use std::ops::Range;

/// Which way a marker comment turns a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// The byte ranges of `text` that are down sections: from a down marker's line to the next up marker's
/// line, or to the end. Empty for a file without markers.
pub fn down_sections(text: &str) -> Vec<Range<usize>> {
    let mut sections = Vec::new();
    let mut down_from = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        match (marker(line), down_from) {
            (Some(Direction::Down), None) => down_from = Some(at),
            (Some(Direction::Up), Some(from)) => {
                sections.push(from..at);
                down_from = None;
            }
            _ => {}
        }
        at += line.len();
    }
    if let Some(from) = down_from {
        sections.push(from..text.len());
    }
    sections
}

/// `text` with only its down sections' statements left, each on its own line as in `text` (everything
/// else, the markers included, blanked to its line ends), so that it reads as a plain SQL file whose
/// positions are the original's; `None` when it has no down section with anything but comments in it.
pub fn down_only(text: &str) -> Option<String> {
    let sections = down_sections(text);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut any = false;
    for line in text.split_inclusive('\n') {
        let keep = sections.iter().any(|s| s.contains(&at) && s.start != at);
        if keep {
            out.push_str(line);
            let code = line.trim();
            any |= !code.is_empty() && !code.starts_with("--");
        } else if line.ends_with('\n') {
            out.push('\n');
        }
        at += line.len();
    }
    any.then_some(out)
}

/// Whether the tool a file is written for runs its up section in a transaction of its own: goose (`--
/// +goose Up`) unless `-- +goose NO TRANSACTION`, sql-migrate (`-- +migrate Up`) unless `notransaction`
/// follows it, dbmate (`-- migrate:up`) unless `transaction:false` does. A file without their markers:
/// false (whatever runs it decides).
pub fn runs_in_tool_transaction(text: &str) -> bool {
    let (mut wrapped, mut unwrapped) = (false, false);
    for line in text.lines() {
        let Some(comment) = line.trim_start().strip_prefix("--") else { continue };
        let comment = comment.trim().to_ascii_lowercase();
        let words: Vec<&str> = comment.split_whitespace().collect();
        match words.as_slice() {
            ["+goose", "up", ..] => wrapped = true,
            ["+goose", "no", "transaction", ..] => unwrapped = true,
            ["+migrate", "up", rest @ ..] => {
                wrapped = true;
                unwrapped |= rest.contains(&"notransaction");
            }
            [first, rest @ ..] if *first == "migrate:up" => {
                wrapped = true;
                unwrapped |= rest.contains(&"transaction:false");
            }
            _ => {}
        }
    }
    wrapped && !unwrapped
}

/// The tool whose up marker a file carries (`-- +goose Up`, `-- +migrate Up`, `-- migrate:up`), named as
/// its project names it: `goose`, `sql-migrate`, `dbmate`.
pub fn marking_tool(text: &str) -> Option<&'static str> {
    text.lines().filter(|line| marker(line) == Some(Direction::Up)).find_map(|line| {
        let comment = line.trim_start().strip_prefix("--")?.trim().to_ascii_lowercase();
        Some(if comment.starts_with("+goose") {
            "goose"
        } else if comment.starts_with("+migrate") {
            "sql-migrate"
        } else {
            "dbmate"
        })
    })
}

/// The direction a line marks, when it is one of the formats' markers (their tools read them in any case).
fn marker(line: &str) -> Option<Direction> {
    let comment = line.trim_start().strip_prefix("--")?.trim().to_ascii_lowercase();
    let rest = ["+goose", "+migrate"]
        .iter()
        .find_map(|tool| comment.strip_prefix(tool).filter(|r| r.starts_with(char::is_whitespace)))
        .map(str::trim_start)
        .or_else(|| comment.strip_prefix("migrate:"))?;
    let word = rest.split(|c: char| c.is_whitespace()).next().unwrap_or("");
    match word {
        "up" => Some(Direction::Up),
        "down" => Some(Direction::Down),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down(text: &str) -> Vec<&str> {
        down_sections(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn goose_dbmate_and_sql_migrate_files_run_in_their_tools_transaction_unless_they_say_not() {
        assert!(runs_in_tool_transaction("-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (a);\n"));
        assert_eq!(marking_tool("-- +goose Up\nSELECT 1;\n-- +goose Down\n"), Some("goose"));
        assert_eq!(marking_tool("-- +migrate Up notransaction\nSELECT 1;\n"), Some("sql-migrate"));
        assert_eq!(marking_tool("-- migrate:up\nSELECT 1;\n-- migrate:down\n"), Some("dbmate"));
        assert_eq!(marking_tool("-- migrate up the hill\nSELECT 1;\n"), None);
        let dbmate = "-- migrate:up\nCREATE TABLE t (a int);\n\n-- migrate:down\nDROP TABLE t;\n";
        assert_eq!(down_only(dbmate).as_deref(), Some("\n\n\n\nDROP TABLE t;\n"));
        assert_eq!(down_only("-- +goose Up\nSELECT 1;\n-- +goose Down\n-- nothing to undo\n"), None);
        assert_eq!(down_only("SELECT 1;\n"), None);
        assert!(!runs_in_tool_transaction(
            "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
        ));
        assert!(runs_in_tool_transaction("-- migrate:up\nSELECT 1;\n-- migrate:down\n"));
        assert!(!runs_in_tool_transaction("-- migrate:up transaction:false\nSELECT 1;\n"));
        assert!(runs_in_tool_transaction("-- +migrate Up\nSELECT 1;\n"));
        assert!(!runs_in_tool_transaction("-- +migrate Up notransaction\nSELECT 1;\n"));
        assert!(!runs_in_tool_transaction("CREATE INDEX CONCURRENTLY i ON t (a);\n"));
    }

    #[test]
    fn goose_dbmate_and_sql_migrate_down_sections_are_found() {
        let goose = "-- +goose Up\nALTER TABLE u ADD COLUMN p text;\n\n-- +goose Down\nALTER TABLE u DROP COLUMN p;\n";
        assert_eq!(down(goose), vec!["-- +goose Down\nALTER TABLE u DROP COLUMN p;\n"]);
        let dbmate =
            "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- migrate:down\nDROP INDEX i;";
        assert_eq!(down(dbmate), vec!["-- migrate:down\nDROP INDEX i;"]);
        let sql_migrate = "-- +migrate Down\nDROP TABLE t;\n-- +migrate Up\nCREATE TABLE t (a int);\n";
        assert_eq!(down(sql_migrate), vec!["-- +migrate Down\nDROP TABLE t;\n"]);
        // Markers are read in any case and with any spacing, as the tools read them.
        assert_eq!(down("--  +GOOSE   down\nDROP TABLE t;").len(), 1);
        assert_eq!(down("  -- +goose Down\r\nDROP TABLE t;\r\n").len(), 1);
    }

    #[test]
    fn other_comments_are_not_markers() {
        for text in [
            "ALTER TABLE t DROP COLUMN c;\n",
            "-- +goose StatementBegin\nSELECT 1;\n-- +goose StatementEnd\n",
            "-- +goose NO TRANSACTION\nSELECT 1;\n",
            "-- step down the prices\nUPDATE t SET p = p - 1;\n",
            "-- +gooseDown\nSELECT 1;\n",
            "SELECT '-- +goose Down';\n",
            "-- migrate:downgrade\nSELECT 1;\n",
        ] {
            assert!(down_sections(text).is_empty(), "{text}");
        }
    }
}
