//! `pgsafe lint`: reads migration SQL with PostgreSQL's own parser (`pg_query`, libpg_query) and says,
//! statement by statement, what each one locks, whether it scans or rewrites a table, what it destroys,
//! and the safe sequence to use instead.
//!
//! ```text
//! lint: files -> parse (pg_query: statements, comments) -> [facts: one read-only query per kind, -d]
//!       -> pass over statements (transactions, lock_timeout, tables created in the file) -> hits
//!       -> facts adjust levels (small tables drop to hints) -> suppressions -> LintReport
//! ```
//!
//! Rules are declared once in [`rules::RULES`] (id, level, lock, rewrite, why, help, examples); the pass
//! (`pass`) decides which apply. A statement on a table created earlier in the same file is no hazard:
//! the table has no rows and no readers yet. The library only reads files' text and, with a connection,
//! the catalog ([`facts`]); it never prints and never writes.

mod diff;
pub mod do_block;
pub mod facts;
pub mod fix;
mod pass;
pub mod rules;
pub mod types;

use std::collections::HashSet;

use pg_query::NodeEnum;
use pg_query::protobuf::Token;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
pub use facts::{Facts, ForeignKeyFact, TableFacts, read_facts};
pub use pass::set_columns;
pub use rules::{Family, Level, RULES, Rewrites, Rule, rule};

/// The PostgreSQL major version rules assume without a connection.
pub const DEFAULT_PG_VERSION: u32 = 15;

/// A table under this many rows (its estimate) is small: a lock or rewrite hazard on it is a hint.
pub const DEFAULT_SMALL_TABLE_ROWS: u64 = 10_000;

/// What a lint run assumes.
#[derive(Debug, Clone)]
pub struct LintOptions {
    /// The server's major version, for version-dependent rules (a connection's facts override it).
    pub pg_version: u32,
    /// The files will run under `pgsafe migrate`, which sets `lock_timeout` itself: no
    /// `missing-lock-timeout` findings.
    pub assume_lock_timeout: bool,
    /// With facts: a table with fewer rows than this is small.
    pub small_table_rows: u64,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            pg_version: DEFAULT_PG_VERSION,
            assume_lock_timeout: false,
            small_table_rows: DEFAULT_SMALL_TABLE_ROWS,
        }
    }
}

/// A file of SQL to lint: its name as the user gave it (`-` for standard input) and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

/// One finding: where, which rule, how much it matters, and what to do instead.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub file: String,
    /// From 1.
    pub line: usize,
    /// From 1, in characters.
    pub column: usize,
    /// The rule's id.
    pub rule: &'static str,
    pub level: Level,
    pub message: String,
    /// The lock the statement takes, in PostgreSQL's mode names.
    pub lock: Option<&'static str>,
    pub rewrites: Rewrites,
    pub why: &'static str,
    pub help: &'static str,
    /// The line it points into, from its statement's start when the statement starts on that line.
    pub statement: String,
    /// Where it is for `--fix`: the statement's index in its file (`usize::MAX` for a comment's own
    /// findings) and the byte offset it points at.
    #[serde(skip)]
    pub(crate) at: (usize, usize),
}

/// A finding a `-- pgsafe:allow` comment allowed: kept in the report, not counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allowed {
    #[serde(flatten)]
    pub finding: Finding,
    /// The suppression's reason (empty when it gave none, itself a finding).
    pub reason: String,
}

/// What a lint run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LintReport {
    /// In file order, then line and column.
    pub findings: Vec<Finding>,
    pub allowed: Vec<Allowed>,
    /// The files PostgreSQL's parser refused, which were not linted (the others were).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub syntax_errors: Vec<SyntaxError>,
}

/// A file the parser refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyntaxError {
    pub file: String,
    /// From 1.
    pub line: usize,
    /// From 1, in characters.
    pub column: usize,
    /// The parser's message (`syntax error at or near "constraint"`).
    pub message: String,
}

impl SyntaxError {
    /// As an error of the command, with a hint.
    pub fn to_error(&self) -> Error {
        Error::new(ErrorKind::InvalidInput, self.to_string())
            .with_hint("pgsafe reads SQL with PostgreSQL's own parser: what it refuses, the server refuses too")
    }
}

impl std::fmt::Display for SyntaxError {
    /// `file:line:column: message`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl LintReport {
    /// Whether a finding is at `fail_on` or more severe (`None`: never fails).
    pub fn fails(&self, fail_on: Option<Level>) -> bool {
        fail_on.is_some_and(|at| self.findings.iter().any(|f| f.level <= at))
    }

    /// How many findings are at `level`.
    pub fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
}

/// A statement of a parsed file.
#[derive(Debug, Clone)]
struct Statement {
    node: Option<NodeEnum>,
    /// Byte offset just past the previous statement's `;`: its leading blanks and comments start here.
    location: usize,
    /// Byte offset of its first token (past leading blanks and comments).
    start: usize,
    /// Byte offset just past its end (before the `;`).
    end: usize,
    /// A `DO` block's statements, linted as statements of the file at their place in the block.
    inner: Vec<do_block::Inner>,
}

/// A `-- pgsafe:allow` comment.
#[derive(Debug, Clone)]
struct Suppression {
    offset: usize,
    rules: Vec<String>,
    reason: String,
    /// `None`: the whole file (it is above the first statement); else the statement's index.
    statement: Option<usize>,
}

/// A file, parsed: its statements and suppressions. Build with [`parse`].
#[derive(Debug, Clone)]
pub struct ParsedFile {
    name: String,
    text: String,
    statements: Vec<Statement>,
    suppressions: Vec<Suppression>,
}

impl ParsedFile {
    /// The file's name, as given.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Parses `file` with PostgreSQL's parser. A file that does not parse is an `InvalidInput` error whose
/// message starts with `file:line:column:` of the error, then the parser's message.
pub fn parse(file: SourceFile) -> Result<ParsedFile> {
    try_parse(file).map_err(|e| e.to_error())
}

/// [`parse`], its failure said as where the parser stopped.
///
/// The rows after a `COPY ... FROM STDIN` are data: the parser and the scanner read the file with each of
/// their characters a space, so that every statement keeps its offset, line and column.
pub fn try_parse(file: SourceFile) -> std::result::Result<ParsedFile, SyntaxError> {
    let blocks = crate::sql::copy_blocks(&file.text).map_err(|e| {
        let (line, column) = line_column(&file.text, e.offset);
        SyntaxError { file: file.name.clone(), line, column, message: e.message }
    })?;
    let sql = SourceFile { name: file.name.clone(), text: crate::sql::blank_copy_rows(&file.text, &blocks) };
    let parsed = match pg_query::parse(&sql.text, 0) {
        Ok(parsed) => parsed,
        Err(e) => return Err(syntax_error(&sql, e)),
    };
    // The parser accepted it, so the scanner does too; its comments carry the suppressions.
    let tokens = pg_query::scan(&sql.text).map(|s| s.tokens).unwrap_or_default();
    let is_comment =
        |t: &pg_query::protobuf::ScanToken| t.token == Token::SqlComment as i32 || t.token == Token::CComment as i32;
    // A down section (goose, dbmate, sql-migrate) runs only when the migration is undone: not linted.
    let down = crate::sql::down_sections(&sql.text);
    let mut statements = Vec::new();
    for raw in &parsed.protobuf.stmts {
        let location = usize::try_from(raw.stmt_location).unwrap_or(0);
        let end = match usize::try_from(raw.stmt_len) {
            Ok(0) | Err(_) => file.text.len(),
            Ok(len) => location + len,
        };
        let start = tokens
            .iter()
            .find(|t| usize::try_from(t.start).is_ok_and(|s| s >= location) && !is_comment(t))
            .and_then(|t| usize::try_from(t.start).ok())
            .unwrap_or(location);
        if down.iter().any(|d| d.contains(&start)) {
            continue;
        }
        let node = raw.stmt.as_ref().and_then(|s| s.node.clone());
        let inner = match &node {
            Some(NodeEnum::DoStmt(d)) => do_block::statements(&file.text, start, end, d),
            _ => Vec::new(),
        };
        statements.push(Statement { node, location, start, end, inner });
    }
    let mut suppressions = Vec::new();
    for token in tokens.iter().filter(|t| t.token == Token::SqlComment as i32) {
        let (Ok(from), Ok(to)) = (usize::try_from(token.start), usize::try_from(token.end)) else { continue };
        let Some(comment) = file.text.get(from..to) else { continue };
        let Some(rest) = comment.trim_start_matches('-').trim_start().strip_prefix("pgsafe:allow") else {
            continue;
        };
        let rest = rest.trim();
        let (ids, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let statement = if statements.first().is_none_or(|s| from < s.start) {
            None
        } else {
            // The statement the comment is in, or the next one after it.
            Some(statements.iter().position(|s| s.end >= from).unwrap_or(statements.len()))
        };
        suppressions.push(Suppression {
            offset: from,
            rules: ids.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            reason: reason.trim().to_owned(),
            statement,
        });
    }
    Ok(ParsedFile { name: file.name, text: file.text, statements, suppressions })
}

/// The parser's error with the file, line and column where it is. libpg_query's Rust binding gives no
/// position, so it is found by parsing ever longer prefixes: the shortest prefix that fails with an error
/// other than "at end of input" ends at the offending token. (libpg_query is built without translations:
/// its messages are always these English ones.)
pub(crate) fn syntax_error(file: &SourceFile, e: pg_query::Error) -> SyntaxError {
    let message = match &e {
        pg_query::Error::Parse(m) | pg_query::Error::Scan(m) | pg_query::Error::Split(m) => m.clone(),
        other => other.to_string(),
    };
    let text = &file.text;
    let fails_inside = |end: usize| match pg_query::parse(&text[..end], 0) {
        Ok(_) => false,
        Err(pg_query::Error::Parse(m)) => !m.ends_with("at end of input"),
        Err(_) => true,
    };
    let offset = match pg_query::scan(text) {
        // Whole tokens: the first token at which the prefix fails.
        Ok(scan) => {
            let ends: Vec<(usize, usize)> = scan
                .tokens
                .iter()
                .filter_map(|t| Some((usize::try_from(t.start).ok()?, usize::try_from(t.end).ok()?)))
                .filter(|&(_, end)| text.is_char_boundary(end))
                .collect();
            let first = ends.partition_point(|&(_, end)| !fails_inside(end));
            ends.get(first).map_or(text.len(), |&(start, _)| start)
        }
        // A lexical error (an unterminated string, quoted name or comment): the first character from
        // which the scanner fails.
        Err(_) => {
            let boundaries: Vec<usize> = text.char_indices().map(|(i, c)| i + c.len_utf8()).collect();
            let first = boundaries.partition_point(|&end| pg_query::scan(&text[..end]).is_ok());
            boundaries.get(first).map_or(text.len(), |&end| text[..end].char_indices().last().map_or(0, |(i, _)| i))
        }
    };
    let (line, column) = line_column(text, offset);
    SyntaxError { file: file.name.clone(), line, column, message }
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The line of `text` at `offset`, from `offset` to its end, trimmed.
/// The line a finding points into, from its statement's start when the statement starts on it: a
/// finding at a column of a multi-line statement shows that column's whole line.
fn line_at(file: &ParsedFile, hit: &pass::Hit) -> String {
    let text = &file.text;
    let offset = hit.offset.min(text.len());
    let line_start = text.get(..offset).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
    let start = match file.statements.get(hit.statement) {
        Some(s) if (line_start..=offset).contains(&s.start) => s.start,
        _ => line_start,
    };
    line_from(text, start)
}

fn line_from(text: &str, offset: usize) -> String {
    let rest = text.get(offset..).unwrap_or("");
    rest.lines().next().unwrap_or("").trim().to_owned()
}

/// The tables (as written, schema-qualified when they are) and indexes the files name: what facts are
/// read for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Named {
    pub tables: Vec<pass::RelName>,
    pub indexes: Vec<pass::RelName>,
    /// Enum types given values.
    pub types: Vec<pass::RelName>,
    /// The functions new columns' defaults call, by name without schema.
    pub functions: Vec<String>,
    /// The types of new columns, other than the built-in ones and arrays: those that are domains with
    /// constraints make adding the column rewrite the table.
    pub column_types: Vec<pass::RelName>,
}

/// Every table and index the files name, each once.
pub fn named(files: &[ParsedFile]) -> Named {
    let mut named = Named::default();
    let (mut tables, mut indexes) = (HashSet::new(), HashSet::new());
    for file in files {
        let nodes = file.statements.iter().flat_map(|s| s.node.iter().chain(s.inner.iter().map(|i| &i.node)));
        for node in nodes {
            if let Some(rel) = pass::enum_type(node)
                && !named.types.contains(&rel)
            {
                named.types.push(rel);
            }
            for function in pass::default_calls(node) {
                if !named.functions.contains(&function) {
                    named.functions.push(function);
                }
            }
            for ty in pass::added_column_types(node) {
                if !named.column_types.contains(&ty) {
                    named.column_types.push(ty);
                }
            }
            for (rel, is_index) in pass::names(node) {
                let (seen, list) =
                    if is_index { (&mut indexes, &mut named.indexes) } else { (&mut tables, &mut named.tables) };
                if seen.insert(rel.key()) {
                    list.push(rel);
                }
            }
        }
    }
    named
}

/// Lints `files` in order, as one migration run: tables created in one file are known to the next
/// (their columns' types), but only a table created in the same file exempts a statement from hazards.
pub fn lint(files: &[ParsedFile], options: &LintOptions, facts: Option<&Facts>) -> LintReport {
    let pg_version = facts.map_or(options.pg_version, |f| f.server_version);
    let mut known = pass::Known::default();
    let mut report = LintReport::default();
    for file in files {
        let hits = pass::run(file, options, pg_version, facts, &mut known);
        let mut used = vec![false; file.suppressions.len()];
        for hit in hits {
            let finding = finding(file, &hit, options, facts);
            let allowed_by = file.suppressions.iter().position(|s| {
                (s.statement.is_none() || s.statement == Some(hit.statement))
                    && s.rules.iter().any(|r| r == hit.rule.id)
            });
            match allowed_by {
                Some(i) if hit.rule.family != Family::Suppression => {
                    used[i] = true;
                    report.allowed.push(Allowed { finding, reason: file.suppressions[i].reason.clone() });
                }
                _ => report.findings.push(finding),
            }
        }
        for (s, used) in file.suppressions.iter().zip(used) {
            let unknown: Vec<&String> = s.rules.iter().filter(|r| rule(r).is_none()).collect();
            let hit = |id: &str, message: String| {
                let rule = rule(id).expect("suppression rules are declared");
                let hit = pass::Hit {
                    rule,
                    offset: s.offset,
                    statement: usize::MAX,
                    level: rule.level,
                    message,
                    table: None,
                };
                finding(file, &hit, options, None)
            };
            if s.rules.is_empty() {
                report.findings.push(hit("unused-suppression", "`pgsafe:allow` names no rule".into()));
                continue;
            }
            if s.reason.is_empty() {
                let message = format!("the suppression of `{}` gives no reason", s.rules.join(","));
                report.findings.push(hit("suppression-without-reason", message));
            }
            if !unknown.is_empty() {
                let names: Vec<String> = unknown.iter().map(|r| format!("`{r}`")).collect();
                report.findings.push(hit("unused-suppression", format!("no rule is named {}", names.join(", "))));
            } else if !used {
                let scope = if s.statement.is_none() { "in this file" } else { "on the next statement" };
                let message = format!("`{}` finds nothing {scope} to allow", s.rules.join(","));
                report.findings.push(hit("unused-suppression", message));
            }
        }
    }
    report.findings.sort_by(|a, b| {
        let file = |f: &Finding| files.iter().position(|p| p.name == f.file);
        (file(a), a.line, a.column).cmp(&(file(b), b.line, b.column))
    });
    report
}

/// The fewest bytes a heap row takes: its tuple header (23 bytes, aligned to 24) and its line pointer (4).
pub(crate) const MIN_ROW_BYTES: u64 = 28;

/// A hit as a finding, at its place in the file; facts about its table change its level and message.
fn finding(file: &ParsedFile, hit: &pass::Hit, options: &LintOptions, facts: Option<&Facts>) -> Finding {
    let (line, column) = line_column(&file.text, hit.offset);
    let mut level = hit.level;
    let mut message = hit.message.clone();
    let table = hit.table.as_ref().and_then(|t| Some((t, facts?.table(t)?)));
    if let Some((name, table)) = table
        && hit.rule.id == "add-column-not-null-without-default"
    {
        // Not a lock held too long but a statement that fails on any row: only an empty table spares it.
        match table.rows {
            Some(0) => {
                level = Level::Hint;
                message.push_str(&format!("; `{}` is empty (by its statistics), so this is a hint", name.display()));
            }
            Some(rows) => message.push_str(&format!("; `{}` has about {rows} rows: it fails", name.display())),
            None if table.bytes == 0 => {
                level = Level::Hint;
                message.push_str(&format!("; `{}` is empty (no pages), so this is a hint", name.display()));
            }
            None => message.push_str(&format!("; `{}` was never analyzed: its rows are unknown", name.display())),
        }
    } else if let Some((name, table)) = table
        && hit.rule.family == Family::Locks
    {
        match table.rows {
            Some(rows) if rows < options.small_table_rows => {
                level = Level::Hint;
                message.push_str(&format!(
                    "; `{}` is small (about {rows} rows, under --small-table-rows {}), so this is a hint",
                    name.display(),
                    options.small_table_rows
                ));
            }
            Some(rows) => message.push_str(&format!(
                "; `{}` has about {rows} rows ({})",
                name.display(),
                facts::size(table.bytes)
            )),
            // Never analyzed (a table just restored or loaded): its size still bounds its rows, since no
            // row takes less than a tuple header and its line pointer.
            None if table.bytes / MIN_ROW_BYTES < options.small_table_rows => {
                level = Level::Hint;
                message.push_str(&format!(
                    "; `{}` was never analyzed, but its {} hold at most {} rows, under --small-table-rows {}, so this is a hint",
                    name.display(),
                    facts::size(table.bytes),
                    table.bytes / MIN_ROW_BYTES,
                    options.small_table_rows
                ));
            }
            None => message.push_str(&format!(
                "; `{}` was never analyzed: its rows are unknown ({})",
                name.display(),
                facts::size(table.bytes)
            )),
        }
    }
    Finding {
        file: file.name.clone(),
        line,
        column,
        rule: hit.rule.id,
        level,
        message,
        lock: hit.rule.lock,
        rewrites: hit.rule.rewrites,
        why: hit.rule.why,
        help: hit.rule.help,
        statement: line_at(file, hit),
        at: (hit.statement, hit.offset),
    }
}

/// The audit line of a lint of `files` that started at `started_at` and took `seconds`: `ok` when nothing
/// reached `fail_on`, `failed` naming the findings that did (and the allowed ones), or the error that
/// stopped it (a file that does not parse).
pub fn audit_entry(
    files: &[String],
    started_at: jiff::Timestamp,
    seconds: f64,
    result: &Result<LintReport>,
    fail_on: Option<Level>,
) -> crate::store::AuditEntry {
    use crate::store::{AuditCommand, AuditEntry, Outcome};
    let outcome = match result {
        Ok(report) if !report.syntax_errors.is_empty() => {
            let at: Vec<String> = report.syntax_errors.iter().map(SyntaxError::to_string).collect();
            Outcome::Failed { error: format!("{} file(s) do not parse: {}", at.len(), at.join(", ")) }
        }
        Ok(report) if report.fails(fail_on) => {
            let failing: Vec<String> = report
                .findings
                .iter()
                .filter(|f| fail_on.is_some_and(|at| f.level <= at))
                .map(|f| format!("{} {}:{}", f.rule, f.file, f.line))
                .collect();
            let allowed: Vec<String> =
                report.allowed.iter().map(|a| format!("{} ({})", a.finding.rule, a.reason)).collect();
            let allowed = if allowed.is_empty() { String::new() } else { format!("; allowed: {}", allowed.join(", ")) };
            Outcome::Failed { error: format!("{} finding(s): {}{allowed}", failing.len(), failing.join(", ")) }
        }
        result => Outcome::of(result),
    };
    let mut entry = AuditEntry::new(AuditCommand::Lint, started_at, outcome, seconds);
    entry.migration = Some(files.join(", "));
    entry
}

/// Parses and lints one text: for tests and callers that have no files.
pub fn lint_text(name: &str, text: &str, options: &LintOptions) -> Result<LintReport> {
    let file = parse(SourceFile { name: name.to_owned(), text: text.to_owned() })?;
    Ok(lint(&[file], options, None))
}

#[cfg(test)]
mod tests;
