//! The user's own checks (`--sql FILE`): each query of a file must return no rows. A query that returns
//! rows is a `sql-check` error showing the first few; one that fails is a `sql-check` error with its
//! SQLSTATE. A query is named by the `--` comment just above it, else by its file and line.

use std::path::Path;

use serde::Serialize;
use serde_json::json;

use super::{Finding, Level, sqlstate_text};
use crate::error::{Error, ErrorKind, Result, SqlState};
use crate::pg::Session;

/// How many of a failing check's rows its finding shows.
const SHOWN_ROWS: usize = 5;

/// One of the user's checks: a query that must return no rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SqlCheck {
    /// The first line of the `--` comment just above the query, else `file:line`.
    pub name: String,
    /// The file it is in, as given.
    pub file: String,
    /// The line its query starts on, from 1.
    pub line: usize,
    /// The query, without its `;`.
    pub sql: String,
}

/// The checks of the file at `path`: one per statement, split on `;` outside strings, quoted
/// identifiers, dollar quotes and comments (as psql splits). A file with no statement is an error.
pub fn read_sql_checks(path: &Path) -> Result<Vec<SqlCheck>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading the checks in", path, e))?;
    let checks = split(&path.display().to_string(), &text);
    if checks.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, format!("`{}` holds no query", path.display())).with_hint(
            "a check is a query that must return no rows, such as `SELECT id FROM payment WHERE amount < 0;`",
        ));
    }
    Ok(checks)
}

/// The checks in `text`, the contents of `file`.
fn split(file: &str, text: &str) -> Vec<SqlCheck> {
    let statements = crate::sql::statements(text);
    let mut checks = Vec::new();
    let mut previous_end: Option<usize> = None;
    for sql in (0..statements.len()).filter_map(|i| statements.get(i)) {
        // `sql` is a slice of `text`: its offset is the distance between the two.
        let start = (sql.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
        let before = text.get(previous_end.unwrap_or(0)..start).unwrap_or_default();
        // What follows the previous statement on its own line is a comment on that one, not on this one.
        let before = match previous_end {
            Some(_) => before.split_once('\n').map_or("", |(_, rest)| rest),
            None => before,
        };
        let line = 1 + text.get(..start).unwrap_or_default().matches('\n').count();
        checks.push(SqlCheck {
            name: leading_comment(before).unwrap_or_else(|| format!("{file}:{line}")),
            file: file.to_owned(),
            line,
            sql: sql.to_owned(),
        });
        previous_end = Some(start + sql.len());
    }
    checks
}

/// The first non-empty line of the block of `--` comment lines that ends `text` (blank lines after it
/// allowed), without its dashes.
fn leading_comment(text: &str) -> Option<String> {
    let mut block: Vec<&str> = Vec::new();
    for line in text.lines().rev().map(str::trim).skip_while(|l| l.is_empty()) {
        match line.strip_prefix("--") {
            Some(comment) => block.push(comment.trim_start_matches('-').trim()),
            None => break,
        }
    }
    block.into_iter().rev().find(|l| !l.is_empty()).map(str::to_owned)
}

/// Runs one check: no finding when its query returns no rows.
pub(super) async fn run(session: &Session, check: &SqlCheck) -> Result<Vec<Finding>> {
    // row_to_json shows rows of any types; the line breaks keep a trailing `--` comment of the query
    // from swallowing the parenthesis.
    let sql = format!(
        "SELECT count(*) OVER ()::int8, pg_catalog.row_to_json(q)::text FROM (\n{}\n) AS q LIMIT {SHOWN_ROWS}",
        check.sql
    );
    let place = json!({ "file": check.file, "line": check.line });
    let rows = match session.query(&sql, &[]).await {
        Ok(rows) => rows,
        // No SQLSTATE: the connection broke; cancelled: the check was interrupted. Neither is the query's.
        Err(e) if matches!(e.sqlstate(), None | Some(SqlState::QUERY_CANCELED)) => return Err(e),
        Err(e) => {
            let sqlstate = sqlstate_text(&e).unwrap_or_default();
            let said = server_said(&e.to_string(), session.target());
            let mut details = place;
            details["sqlstate"] = json!(sqlstate);
            return Ok(vec![
                Finding::new(
                    "sql-check",
                    Level::Error,
                    Some(&check.name),
                    format!("failed: {said} (SQLSTATE {sqlstate}; {}:{})", check.file, check.line),
                )
                .with_details(details),
            ]);
        }
    };
    let Some(first) = rows.first() else { return Ok(Vec::new()) };
    let count: i64 = crate::pg::value(first, 0, &sql)?;
    let mut shown = Vec::new();
    let mut first_row = String::new();
    for row in &rows {
        let text: String = crate::pg::value(row, 1, &sql)?;
        shown.push(serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|_| json!(text)));
        if first_row.is_empty() {
            // The server's text keeps the columns in the query's order.
            first_row = text;
        }
    }
    let mut details = place;
    details["rows"] = json!(count);
    details["first_rows"] = json!(shown);
    Ok(vec![
        Finding::new(
            "sql-check",
            Level::Error,
            Some(&check.name),
            format!(
                "returned {count} rows, where it must return none (the first: {first_row}; {}:{})",
                check.file, check.line
            ),
        )
        .with_details(details),
    ])
}

/// What the server said, from the message of a statement's error (``` `SQL` failed on `target`: what ```):
/// the wrapped query is the check's, not the user's, so it is left out.
fn server_said(message: &str, target: &str) -> String {
    let marker = format!("failed on `{target}`: ");
    message.split_once(&marker).map_or(message, |(_, said)| said).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_statement_is_a_check_named_by_the_comment_above_it() {
        let text = "-- checks of the shop\n\n\
                    -- no negative amounts\n\
                    -- (refunds are rows of their own)\n\
                    SELECT * FROM payment WHERE amount < 0;\n\
                    SELECT 1 WHERE false; -- a comment on this one, not the next\n\
                    SELECT $$;$$, ';', \"a;b\" /* ; */ FROM t;\n\
                    --\n\
                    --- every order has a customer ---\n\
                    SELECT o.id FROM orders o\n  WHERE NOT EXISTS (SELECT 1 FROM customer c WHERE c.id = o.customer_id)\n;\n\
                    -- only a trailing comment\n";
        let checks = split("checks.sql", text);
        let got: Vec<(&str, usize)> = checks.iter().map(|c| (c.name.as_str(), c.line)).collect();
        assert_eq!(
            got,
            [
                ("no negative amounts", 5),
                ("checks.sql:6", 6),
                ("checks.sql:7", 7),
                ("every order has a customer ---", 10),
            ]
        );
        assert_eq!(checks[0].sql, "SELECT * FROM payment WHERE amount < 0");
        assert_eq!(checks[2].sql, "SELECT $$;$$, ';', \"a;b\" /* ; */ FROM t");
        assert!(checks[3].sql.ends_with("c.id = o.customer_id)"), "{}", checks[3].sql);
        assert!(checks.iter().all(|c| c.file == "checks.sql"));
    }

    #[test]
    fn a_dollar_quoted_body_with_semicolons_stays_one_check() {
        let text = "-- f\nSELECT $fn$ a; b; $$ c; $fn$ AS body WHERE false;\nSELECT 2;";
        let checks = split("f.sql", text);
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].sql, "SELECT $fn$ a; b; $$ c; $fn$ AS body WHERE false");
        assert_eq!((checks[1].name.as_str(), checks[1].line), ("f.sql:3", 3));
    }

    #[test]
    fn a_file_without_a_query_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.sql");
        std::fs::write(&path, "-- nothing yet\n;\n").unwrap();
        let e = read_sql_checks(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), format!("`{}` holds no query", path.display()));
        assert_eq!(read_sql_checks(&dir.path().join("none.sql")).unwrap_err().kind(), ErrorKind::Io);
    }

    #[test]
    fn the_server_message_is_kept_without_the_wrapping_query() {
        let target = "u@h:5432/db";
        assert_eq!(
            server_said("`SELECT count(*) OVER ()` failed on `u@h:5432/db`: column \"x\" does not exist", target),
            "column \"x\" does not exist"
        );
        assert_eq!(server_said("something else", target), "something else");
    }
}
