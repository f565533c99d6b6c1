//! `pgsafe lint --fix` and `--diff`: the mechanical safe form of a finding, written as textual edits of
//! the statement it is about, so that the file's comments and layout outside the changed statements stay
//! as they were.
//!
//! ```text
//! lint (the findings not allowed) -> per statement: a plan (insertions at token positions, a
//! replacement, statements to add after it, a move out of its transaction) -> edits of byte ranges
//! -> the fixed text, which must parse
//! ```
//!
//! The fixes: `CONCURRENTLY` after the `INDEX` (or `TABLE`, ...) keyword, moved after the `COMMIT` of its
//! transaction when nothing after it in that transaction can depend on it; ` NOT VALID` at the end of an
//! added `CHECK` or `FOREIGN KEY` (named as PostgreSQL would name it when it has no name), then
//! `VALIDATE CONSTRAINT` after it, or after the `COMMIT` when it is in a transaction; `SET NOT NULL`
//! through a validated `CHECK (col IS NOT NULL)`; a `SET lock_timeout` preamble. Statements are never
//! deparsed: `pg_query`'s deparser loses comments and formatting.

use std::collections::BTreeMap;
use std::ops::Range;

use pg_query::NodeEnum;
use pg_query::protobuf::{AlterTableType, ConstrType, DropBehavior, ReindexObjectType, TransactionStmtKind};
use serde::Serialize;

use super::pass::RelName;
use super::{Facts, Finding, LintOptions, ParsedFile, SourceFile, line_column, lint, parse};
use crate::error::{Error, ErrorKind, Result};
use crate::sql::quote_ident;

/// The statement the `lock_timeout` preamble adds.
pub const PREAMBLE: &str = "SET lock_timeout = '2s';";

/// PostgreSQL's identifier limit (NAMEDATALEN - 1), which generated constraint names respect.
const MAX_IDENTIFIER: usize = 63;

/// What a fix did to a finding, or why it left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixNote {
    /// The finding's line in the text before the fix.
    pub line: usize,
    pub rule: &'static str,
    pub note: String,
}

/// One file's fix.
#[derive(Debug, Clone)]
pub struct FileFix {
    pub name: String,
    pub before: String,
    pub after: String,
    pub applied: Vec<FixNote>,
    /// Findings with a mechanical form that were left, and why.
    pub skipped: Vec<FixNote>,
}

impl FileFix {
    /// Whether the fix changed the text.
    pub fn changed(&self) -> bool {
        self.before != self.after
    }

    /// The fixed file, to lint again.
    pub fn source(&self) -> SourceFile {
        SourceFile { name: self.name.clone(), text: self.after.clone() }
    }
}

/// Fixes the findings of linting `files` as one run (the same findings `lint` reports: allowed ones
/// are left alone). An error only when a fixed text does not parse, which would be a bug of the fix.
pub fn fix(files: &[ParsedFile], options: &LintOptions, facts: Option<&Facts>) -> Result<Vec<FileFix>> {
    let report = lint(files, options, facts);
    let pg_version = facts.map_or(options.pg_version, |f| f.server_version);
    files
        .iter()
        .map(|file| {
            let findings: Vec<&Finding> = report.findings.iter().filter(|f| f.file == file.name).collect();
            fix_file(file, &findings, pg_version, options.assume_lock_timeout)
        })
        .collect()
}

/// A transaction block of a file: its `BEGIN`'s statement, and its end's when it has one.
#[derive(Debug, Clone, Copy)]
struct Block {
    begin: usize,
    end: Option<usize>,
    /// It ends with `COMMIT` (not `ROLLBACK`, `PREPARE TRANSACTION` or `COMMIT AND CHAIN`).
    committed: bool,
}

/// The transaction block each statement is inside (a `BEGIN` and its `COMMIT` are not inside).
fn blocks(file: &ParsedFile) -> Vec<Option<Block>> {
    use TransactionStmtKind::*;
    let mut inside = vec![None; file.statements.len()];
    let mut open: Option<usize> = None;
    for (i, statement) in file.statements.iter().enumerate() {
        match &statement.node {
            Some(NodeEnum::TransactionStmt(t)) if matches!(t.kind(), TransStmtBegin | TransStmtStart) => {
                open.get_or_insert(i);
            }
            Some(NodeEnum::TransactionStmt(t))
                if matches!(t.kind(), TransStmtCommit | TransStmtRollback | TransStmtPrepare) =>
            {
                if let Some(begin) = open.take() {
                    let block = Block { begin, end: Some(i), committed: t.kind() == TransStmtCommit && !t.chain };
                    inside[begin + 1..i].fill(Some(block));
                }
            }
            _ => {}
        }
    }
    if let Some(begin) = open {
        inside[begin + 1..].fill(Some(Block { begin, end: None, committed: false }));
    }
    inside
}

/// What a fix does to one statement.
#[derive(Debug, Default)]
struct Plan {
    /// Text inserted at byte offsets of the file inside the statement.
    inserts: Vec<(usize, String)>,
    /// The statement's new text (without its `;`), instead of the insertions.
    replace: Option<String>,
    /// Statements (without `;`) to run after it: right after it, or after its transaction's `COMMIT`.
    after: Vec<String>,
    /// Moved after its transaction's `COMMIT`, with the comments above it.
    move_out: bool,
}

/// `migrate`: the file will run under `pgsafe migrate` (`--migrate`).
fn fix_file(file: &ParsedFile, findings: &[&Finding], pg_version: u32, migrate: bool) -> Result<FileFix> {
    let blocks = blocks(file);
    let wrapped = crate::sql::runs_in_tool_transaction(&file.text);
    // Why a validation added after statement `index` would run in the transaction that added the
    // constraint `NOT VALID`, holding its lock through the scan as if it had none: the whole file's, or a
    // block that does not end with `COMMIT`.
    let same_transaction = |index: usize| -> Option<String> {
        match blocks[index] {
            Some(Block { end: Some(_), committed: true, .. }) => None,
            Some(block) => Some(format!(
                "the transaction opened on line {} does not end with `COMMIT`, so the `VALIDATE CONSTRAINT` would \
                 run in it: end it with `COMMIT` first",
                statement_line(file, block.begin)
            )),
            None if migrate && super::pass::migrate_runs_in_one_transaction(file, pg_version) => Some(
                "`pgsafe migrate` runs the file in one transaction, where the `VALIDATE CONSTRAINT` would hold the \
                 lock of adding the constraint through its scan: validate it in a migration of its own"
                    .to_owned(),
            ),
            None if !migrate && wrapped => Some(
                "the file runs in its tool's transaction, where the `VALIDATE CONSTRAINT` would hold the lock of \
                 adding the constraint through its scan: validate it in a migration of its own, or mark the file \
                 `-- +goose NO TRANSACTION`, `-- migrate:up transaction:false` or `-- +migrate Up notransaction` first"
                    .to_owned(),
            ),
            None => None,
        }
    };
    let mut plans: BTreeMap<usize, Plan> = BTreeMap::new();
    let mut applied = Vec::new();
    let mut skipped = Vec::new();
    let mut preamble = None;
    // Statements that must leave their transaction to run `CONCURRENTLY`, and their findings.
    let mut leaving: BTreeMap<usize, Vec<(&Finding, String)>> = BTreeMap::new();
    for &finding in findings {
        let (index, offset) = finding.at;
        let note = |note: String| FixNote { line: finding.line, rule: finding.rule, note };
        let Some(node) = file.statements.get(index).and_then(|s| s.node.as_ref()) else { continue };
        let outcome = match finding.rule {
            "create-index-without-concurrently"
            | "drop-index-without-concurrently"
            | "reindex-without-concurrently"
                if wrapped && blocks[index].is_none() =>
            {
                Err("the file runs in its tool's transaction, where `CONCURRENTLY` cannot run: mark it `-- +goose NO \
                     TRANSACTION`, `-- migrate:up transaction:false` or `-- +migrate Up notransaction` first"
                    .to_owned())
            }
            "create-index-on-partitioned-table" => {
                Err("the table is partitioned: an index on it cannot be built `CONCURRENTLY`; build each partition's \
                 `CONCURRENTLY`, then the table's `ON ONLY` and `ALTER INDEX ... ATTACH PARTITION` each"
                    .to_owned())
            }
            "create-index-without-concurrently"
            | "drop-index-without-concurrently"
            | "reindex-without-concurrently" => concurrently(file, index, node, pg_version).map(|insert| {
                let what = "`CONCURRENTLY` added".to_owned();
                plans.entry(index).or_default().inserts.push(insert);
                what
            }),
            "concurrently-in-transaction" if blocks[index].is_none() => {
                Err("the file runs in its tool's transaction: mark it `-- +goose NO TRANSACTION`, `-- migrate:up \
                 transaction:false` or `-- +migrate Up notransaction`"
                    .to_owned())
            }
            "concurrently-in-transaction" => Ok(String::new()),
            "add-check-without-not-valid" | "add-foreign-key-without-not-valid" | "set-not-null"
                if let Some(why) = same_transaction(index) =>
            {
                Err(why)
            }
            "add-check-without-not-valid" | "add-foreign-key-without-not-valid" => not_valid(file, index, node, offset)
                .map(|(inserts, name, validate)| {
                    let plan = plans.entry(index).or_default();
                    plan.inserts.extend(inserts);
                    plan.after.push(validate);
                    format!("`NOT VALID` added, then `VALIDATE CONSTRAINT {name}`{}", where_after(file, blocks[index]))
                }),
            "set-not-null" => set_not_null(file, index, node, pg_version).map(|(replace, after)| {
                let plan = plans.entry(index).or_default();
                plan.replace = Some(replace);
                plan.after = after;
                format!("`SET NOT NULL` through a validated `CHECK`{}", where_after(file, blocks[index]))
            }),
            "missing-lock-timeout" => match lock_timeout_preamble(file) {
                Ok(insert) => {
                    preamble = Some(insert);
                    Ok(format!("`{PREAMBLE}` added at the top of the file"))
                }
                Err(why) => Err(why),
            },
            _ => continue,
        };
        // A finding inside a `DO` block (whose node every fix refuses): its safe form (`CONCURRENTLY`, a second
        // transaction) cannot run inside the block, and moving it out is the author's call.
        let outcome = outcome.map_err(|why| match node {
            NodeEnum::DoStmt(_) => "inside a `DO` block, which runs as one statement: move it out to fix it".into(),
            _ => why,
        });
        match outcome {
            Ok(what) if blocks[index].is_some() && is_concurrent_fix(finding.rule) => {
                leaving.entry(index).or_default().push((finding, what));
            }
            Ok(what) => applied.push(note(what)),
            Err(why) => skipped.push(note(why)),
        }
    }
    // A statement leaves its transaction when every statement after it there leaves too: nothing left
    // in the transaction can depend on it.
    let mut moves = vec![false; file.statements.len()];
    for (&index, outcomes) in leaving.iter().rev() {
        let Some(block) = blocks[index] else { continue };
        let why = match block.end {
            Some(end) if block.committed => {
                let rest_leave = (index + 1..end).all(|j| moves[j]);
                match (rest_leave, movable(file, index), commit_line_end(file, end)) {
                    (false, ..) => Some(format!(
                        "`CONCURRENTLY` cannot run in the transaction opened on line {}, and the statements after it \
                         there may depend on it: move it after the `COMMIT` by hand",
                        statement_line(file, block.begin)
                    )),
                    (true, None, _) | (true, _, None) => Some(
                        "`CONCURRENTLY` cannot run inside a transaction, and this statement shares its line with \
                         another: move it after the `COMMIT` by hand"
                            .to_owned(),
                    ),
                    (true, Some(_), Some(_)) => None,
                }
            }
            _ => Some(format!(
                "`CONCURRENTLY` cannot run inside a transaction, and the one opened on line {} does not end with \
                 `COMMIT`: move the statement out by hand",
                statement_line(file, block.begin)
            )),
        };
        match why {
            None => {
                moves[index] = true;
                plans.entry(index).or_default().move_out = true;
                let commit = block.end.map_or(0, |end| statement_line(file, end));
                for (finding, what) in outcomes {
                    let what = if what.is_empty() { String::new() } else { format!("{what}; ") };
                    let note =
                        format!("{what}moved after the `COMMIT` on line {commit}: it cannot run in a transaction");
                    applied.push(FixNote { line: finding.line, rule: finding.rule, note });
                }
            }
            Some(why) => {
                plans.remove(&index);
                for (finding, _) in outcomes {
                    skipped.push(FixNote { line: finding.line, rule: finding.rule, note: why.clone() });
                }
            }
        }
    }
    let after = apply(file, &blocks, &plans, preamble)?;
    applied.sort_by_key(|n| n.line);
    skipped.sort_by_key(|n| n.line);
    Ok(FileFix { name: file.name.clone(), before: file.text.clone(), after, applied, skipped })
}

fn is_concurrent_fix(rule: &str) -> bool {
    matches!(
        rule,
        "create-index-without-concurrently"
            | "drop-index-without-concurrently"
            | "reindex-without-concurrently"
            | "concurrently-in-transaction"
    )
}

/// Where the statements a fix adds after a statement go, for its note.
fn where_after(file: &ParsedFile, block: Option<Block>) -> String {
    match block {
        Some(Block { end: Some(end), committed: true, .. }) => {
            format!(", in its own transaction after the `COMMIT` on line {}", statement_line(file, end))
        }
        _ => String::new(),
    }
}

fn statement_line(file: &ParsedFile, index: usize) -> usize {
    file.statements.get(index).map_or(0, |s| line_column(&file.text, s.start).0)
}

/// The tokens of statement `index` (without its `;`), as byte ranges of the file.
fn tokens(file: &ParsedFile, index: usize) -> Vec<Range<usize>> {
    let Some(statement) = file.statements.get(index) else { return Vec::new() };
    let Some(text) = file.text.get(statement.start..statement.end) else { return Vec::new() };
    let Ok(scan) = pg_query::scan(text) else { return Vec::new() };
    scan.tokens
        .iter()
        .filter_map(|t| {
            Some(statement.start + usize::try_from(t.start).ok()?..statement.start + usize::try_from(t.end).ok()?)
        })
        .collect()
}

/// `CONCURRENTLY` after the keyword that names what is indexed: the insertion.
fn concurrently(
    file: &ParsedFile,
    index: usize,
    node: &NodeEnum,
    pg_version: u32,
) -> std::result::Result<(usize, String), String> {
    let keywords: &[&str] = match node {
        NodeEnum::IndexStmt(_) => &["INDEX"],
        NodeEnum::DropStmt(d) => {
            if d.objects.len() > 1 {
                return Err("`DROP INDEX CONCURRENTLY` drops one index at a time: give each its own statement".into());
            }
            if d.behavior() == DropBehavior::DropCascade {
                return Err("`DROP INDEX CONCURRENTLY` cannot `CASCADE`: drop what depends on it first".into());
            }
            &["INDEX"]
        }
        NodeEnum::ReindexStmt(r) => {
            if pg_version < 12 {
                return Err(format!("`REINDEX CONCURRENTLY` needs PostgreSQL 12 or later, not {pg_version}"));
            }
            if r.kind() == ReindexObjectType::ReindexObjectSystem {
                return Err("`REINDEX SYSTEM` has no `CONCURRENTLY` form".into());
            }
            &["INDEX", "TABLE", "SCHEMA", "DATABASE"]
        }
        _ => return Err("not a statement `CONCURRENTLY` applies to".into()),
    };
    tokens(file, index)
        .into_iter()
        .find(|t| keywords.iter().any(|k| file.text[t.clone()].eq_ignore_ascii_case(k)))
        .map(|t| (t.end, " CONCURRENTLY".to_owned()))
        .ok_or_else(|| "the statement's keyword was not found".to_owned())
}

/// ` NOT VALID` at the end of the constraint added at `offset` (and a name when it has none): the
/// insertions, the constraint's name and its `VALIDATE CONSTRAINT` statement.
#[allow(clippy::type_complexity)]
fn not_valid(
    file: &ParsedFile,
    index: usize,
    node: &NodeEnum,
    offset: usize,
) -> std::result::Result<(Vec<(usize, String)>, String, String), String> {
    let NodeEnum::AlterTableStmt(alter) = node else { return Err("not an `ALTER TABLE`".into()) };
    let Some(rel) = alter.relation.as_ref().map(RelName::of) else { return Err("no table".into()) };
    let validates = alter.cmds.iter().any(|cmd| {
        matches!(&cmd.node, Some(NodeEnum::AlterTableCmd(c)) if c.subtype() == AlterTableType::AtValidateConstraint)
    });
    if validates {
        return Err("move `VALIDATE CONSTRAINT` to a transaction (a migration file) of its own".into());
    }
    let constraint = alter.cmds.iter().find_map(|cmd| match &cmd.node {
        Some(NodeEnum::AlterTableCmd(cmd)) if cmd.subtype() == AlterTableType::AtAddConstraint => {
            match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                Some(NodeEnum::Constraint(k)) if usize::try_from(k.location).ok() == Some(offset) => Some(k),
                _ => None,
            }
        }
        _ => None,
    });
    let Some(k) = constraint else {
        return Err("a constraint inline in `ADD COLUMN` has no `NOT VALID` form: add the column, then the \
                    constraint `NOT VALID`, then validate it"
            .into());
    };
    let mut inserts = Vec::new();
    let name = if k.conname.is_empty() {
        // As PostgreSQL names them: the second of one name gets `1`, the third `2` (`orders_amount_check1`).
        let mut taken: Vec<String> = Vec::new();
        for other in alter.cmds.iter().filter_map(|cmd| match &cmd.node {
            Some(NodeEnum::AlterTableCmd(cmd)) if cmd.subtype() == AlterTableType::AtAddConstraint => {
                match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                    Some(NodeEnum::Constraint(o)) => Some(o),
                    _ => None,
                }
            }
            _ => None,
        }) {
            let name = if other.conname.is_empty() {
                unique(generated_name(&rel, other), &taken)
            } else {
                other.conname.clone()
            };
            if std::ptr::eq(other, k) {
                break;
            }
            taken.push(name);
        }
        let name = unique(generated_name(&rel, k), &taken);
        inserts.push((offset, format!("CONSTRAINT {} ", quote_ident(&name))));
        name
    } else {
        k.conname.clone()
    };
    // The constraint ends at the last token before a `,` outside parentheses, or at the statement's end.
    let mut depth = 0i32;
    let mut end = None;
    // A comment is no token of the constraint: ` NOT VALID` after it would be inside a `--` comment.
    let comment = |t: &Range<usize>| file.text[t.clone()].starts_with("--") || file.text[t.clone()].starts_with("/*");
    for t in tokens(file, index).into_iter().filter(|t| t.start >= offset && !comment(t)) {
        match &file.text[t.clone()] {
            "(" => depth += 1,
            ")" => depth -= 1,
            "," if depth == 0 => break,
            _ => {}
        }
        end = Some(t.end);
    }
    let Some(end) = end else { return Err("the constraint's end was not found".into()) };
    inserts.push((end, " NOT VALID".to_owned()));
    let validate = format!("ALTER TABLE {} VALIDATE CONSTRAINT {}", rel.quoted(), quote_ident(&name));
    Ok((inserts, name, validate))
}

/// The name PostgreSQL gives an unnamed constraint `k` of `rel`: `t_col_fkey`, `t_col_check`.
fn generated_name(rel: &RelName, k: &pg_query::protobuf::Constraint) -> String {
    match k.contype() {
        ConstrType::ConstrForeign => {
            let columns: Vec<&str> = k.fk_attrs.iter().filter_map(string).collect();
            object_name(&rel.name, &columns.join("_"), "fkey")
        }
        _ => {
            let column = k.raw_expr.as_deref().and_then(|e| e.node.as_ref()).and_then(|e| {
                e.nodes().into_iter().find_map(|(n, ..)| match n {
                    pg_query::NodeRef::ColumnRef(c) => c.fields.last().and_then(string),
                    _ => None,
                })
            });
            object_name(&rel.name, column.unwrap_or(""), "check")
        }
    }
}

/// `name`, or `name1`, `name2`... the first that `taken` lacks.
fn unique(name: String, taken: &[String]) -> String {
    if !taken.contains(&name) {
        return name;
    }
    (1..).map(|n| format!("{name}{n}")).find(|n| !taken.contains(n)).unwrap_or(name)
}

/// `SET NOT NULL` through a validated check: the statement's replacement (the check added `NOT VALID`)
/// and what follows it (its validation, the statement as it was, the check dropped).
fn set_not_null(
    file: &ParsedFile,
    index: usize,
    node: &NodeEnum,
    pg_version: u32,
) -> std::result::Result<(String, Vec<String>), String> {
    if pg_version < 12 {
        return Err(format!(
            "before PostgreSQL 12 `SET NOT NULL` scans the table even with a validated check (this is {pg_version})"
        ));
    }
    let NodeEnum::AlterTableStmt(alter) = node else { return Err("not an `ALTER TABLE`".into()) };
    let Some(rel) = alter.relation.as_ref().map(RelName::of) else { return Err("no table".into()) };
    let [cmd] = alter.cmds.as_slice() else {
        return Err("the `ALTER TABLE` does more than `SET NOT NULL`: give it a statement of its own first".into());
    };
    let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node else { return Err("no subcommand".into()) };
    let statement = &file.statements[index];
    let original = file.text[statement.start..statement.end].to_owned();
    let (table, column) = (rel.quoted(), quote_ident(&cmd.name));
    let name = quote_ident(&object_name(&rel.name, &cmd.name, "not_null"));
    let add = format!("ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({column} IS NOT NULL) NOT VALID");
    let after = vec![
        format!("ALTER TABLE {table} VALIDATE CONSTRAINT {name}"),
        original,
        format!("ALTER TABLE {table} DROP CONSTRAINT {name}"),
    ];
    Ok((add, after))
}

/// Where the preamble goes: after the leading comments' last blank line (then a blank line), or at the
/// start of the first statement's line.
fn lock_timeout_preamble(file: &ParsedFile) -> std::result::Result<(usize, String), String> {
    let sets = file.statements.iter().find(|s| match &s.node {
        Some(NodeEnum::VariableSetStmt(v)) => {
            v.name.eq_ignore_ascii_case("lock_timeout") || v.kind() == pg_query::protobuf::VariableSetKind::VarResetAll
        }
        _ => false,
    });
    if let Some(s) = sets {
        return Err(format!(
            "the file sets or resets `lock_timeout` on line {}: set it where it is needed by hand",
            line_column(&file.text, s.start).0
        ));
    }
    let Some(first) = file.statements.first() else { return Err("the file has no statement".into()) };
    let line_start = file.text[..first.start].rfind('\n').map_or(0, |i| i + 1);
    if !file.text[line_start..first.start].trim().is_empty() {
        return Ok((first.start, format!("{PREAMBLE}\n")));
    }
    let leading = &file.text[..line_start];
    let mut blank_end = None;
    let mut at = 0;
    for line in leading.split_inclusive('\n') {
        at += line.len();
        if line.trim().is_empty() {
            blank_end = Some(at);
        }
    }
    Ok(match blank_end {
        Some(at) => (at, format!("{PREAMBLE}\n\n")),
        None => (line_start, format!("{PREAMBLE}\n")),
    })
}

/// A constraint's name as PostgreSQL chooses it (`makeObjectName`): `name1_name2_label`, the longer of
/// the two names shortened until it fits in 63 bytes.
fn object_name(name1: &str, name2: &str, label: &str) -> String {
    let overhead = label.len() + 1 + usize::from(!name2.is_empty());
    let available = MAX_IDENTIFIER.saturating_sub(overhead);
    let (mut len1, mut len2) = (name1.len(), name2.len());
    while len1 + len2 > available {
        if len1 > len2 {
            len1 -= 1;
        } else {
            len2 -= 1;
        }
    }
    let clip = |s: &str, mut len: usize| {
        while !s.is_char_boundary(len) {
            len -= 1;
        }
        s[..len].to_owned()
    };
    let mut name = clip(name1, len1);
    if !name2.is_empty() {
        name.push('_');
        name.push_str(&clip(name2, len2));
    }
    format!("{name}_{label}")
}

fn string(node: &pg_query::protobuf::Node) -> Option<&str> {
    match &node.node {
        Some(NodeEnum::String(s)) => Some(&s.sval),
        _ => None,
    }
}

/// Where the lines of statement `index` start, with the `--` comments right above it, and end (past its
/// `;` and the rest of its line), when it has those lines to itself: what moving it takes.
fn movable(file: &ParsedFile, index: usize) -> Option<Range<usize>> {
    let statement = &file.statements[index];
    let text = &file.text;
    // Past the previous statement (its location may already be past the comments above this one).
    let floor = index.checked_sub(1).map_or(0, |i| file.statements[i].end + 1).min(statement.location);
    let mut start = text[..statement.start].rfind('\n').map_or(0, |i| i + 1);
    if !text[start..statement.start].trim().is_empty() || start < floor {
        return None;
    }
    while start > floor {
        let above = text[..start - 1].rfind('\n').map_or(0, |i| i + 1);
        if above < floor || !text[above..start].trim_start().starts_with("--") {
            break;
        }
        start = above;
    }
    Some(start..line_end(text, statement.end)?)
}

/// Past the newline of the line where a statement ends at `end` (its `;` there), when the rest of the
/// line holds only blanks or a `--` comment.
fn line_end(text: &str, end: usize) -> Option<usize> {
    let after = text[end..].strip_prefix(';').map_or(end, |_| end + 1);
    let rest = &text[after..];
    let newline = rest.find('\n');
    let line = &rest[..newline.unwrap_or(rest.len())];
    let line = line.trim();
    if !line.is_empty() && !line.starts_with("--") {
        return None;
    }
    Some(newline.map_or(text.len(), |n| after + n + 1))
}

fn commit_line_end(file: &ParsedFile, end: usize) -> Option<usize> {
    line_end(&file.text, file.statements[end].end)
}

/// The edits of the plans, applied to the file's text; the result must parse.
fn apply(
    file: &ParsedFile,
    blocks: &[Option<Block>],
    plans: &BTreeMap<usize, Plan>,
    preamble: Option<(usize, String)>,
) -> Result<String> {
    let text = &file.text;
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    // What goes after each `COMMIT`, in statement order.
    let mut after_commit: BTreeMap<usize, String> = BTreeMap::new();
    for (&index, plan) in plans {
        let statement = &file.statements[index];
        let body = match &plan.replace {
            Some(replace) => replace.clone(),
            None => {
                let mut inserts = plan.inserts.clone();
                inserts.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
                let mut body = text[statement.start..statement.end].to_owned();
                for (at, insert) in inserts {
                    body.insert_str(at - statement.start, &insert);
                }
                body
            }
        };
        let commit = match blocks[index] {
            Some(Block { end: Some(end), committed: true, .. }) => Some(end),
            _ => None,
        };
        if plan.move_out {
            let (Some(range), Some(end)) = (movable(file, index), commit) else { continue };
            let mut moved = text[range.start..statement.start].to_owned();
            moved.push_str(&body);
            moved.push_str(&text[statement.end..range.end]);
            if !moved.ends_with('\n') {
                moved.push('\n');
            }
            after_commit.entry(end).or_default().push_str(&moved);
            edits.push((range, String::new()));
            continue;
        }
        let mut body = body;
        match commit {
            Some(end) if !plan.after.is_empty() => {
                let out = after_commit.entry(end).or_default();
                for statement in &plan.after {
                    out.push_str(&format!("{statement};\n"));
                }
            }
            _ => {
                let line_start = text[..statement.start].rfind('\n').map_or(0, |i| i + 1);
                let indent = &text[line_start..statement.start];
                let indent = if indent.trim().is_empty() { indent } else { "" };
                for statement in &plan.after {
                    body.push_str(&format!(";\n{indent}{statement}"));
                }
            }
        }
        edits.push((statement.start..statement.end, body));
    }
    for (end, statements) in after_commit {
        match commit_line_end(file, end) {
            Some(at) if at == text.len() && !text.ends_with('\n') => edits.push((at..at, format!("\n{statements}"))),
            Some(at) => edits.push((at..at, statements)),
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("{}: the `COMMIT` on line {} shares its line", file.name, statement_line(file, end)),
                ));
            }
        }
    }
    if let Some((at, insert)) = preamble {
        edits.push((at..at, insert));
    }
    // From the end, so earlier offsets stay valid; at one offset, a replacement before an insertion.
    edits.sort_by_key(|(range, _)| (std::cmp::Reverse(range.start), range.is_empty()));
    let mut fixed = text.clone();
    let mut limit = usize::MAX;
    for (range, insert) in edits {
        if range.end > limit {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{}: two fixes change the same text (at byte {}): this is a bug", file.name, range.start),
            ));
        }
        limit = range.start;
        fixed.replace_range(range, &insert);
    }
    parse(SourceFile { name: file.name.clone(), text: fixed.clone() }).map_err(|e| {
        Error::new(ErrorKind::InvalidInput, format!("{}: the fixed text does not parse: this is a bug", file.name))
            .with_source(e)
    })?;
    Ok(fixed)
}

/// A unified diff of `before` and `after` (`diff -u` style, three lines of context), empty when they
/// are the same.
pub fn unified_diff(name: &str, before: &str, after: &str) -> String {
    super::diff::unified(name, before, after)
}

#[cfg(test)]
mod tests;
