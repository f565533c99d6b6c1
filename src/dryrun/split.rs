//! A migration file cut into its statements by PostgreSQL's own parser (`pg_query`), each with the line
//! and column it starts at; a folder of migrations as its files in order.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

/// One statement of a migration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub file: PathBuf,
    /// Where its first token is, from 1 (the column counts characters).
    pub line: usize,
    pub column: usize,
    /// The statement without the `;` that ends it, from its first token.
    pub sql: String,
    /// The rows that follow it in the file when it is a `COPY ... FROM STDIN`.
    #[serde(skip)]
    pub copy_rows: Option<CopyRows>,
}

/// The rows of a `COPY ... FROM STDIN`, as the file holds them after the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRows {
    /// The line of the file they start at, from 1.
    pub line: usize,
    /// Each row with its line end, up to the line `\.` that ends them.
    pub text: String,
}

impl Statement {
    /// Its first line, shortened for a report.
    pub fn first_line(&self) -> String {
        let line = self.sql.lines().next().unwrap_or("").trim_end();
        if line.chars().count() > 100 {
            format!("{}...", line.chars().take(97).collect::<String>())
        } else {
            line.into()
        }
    }
}

/// The `.sql` files that `paths` name, in order: a file as it is, a folder as its migrations
/// ([`folder_migrations`]).
pub fn migration_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| Error::io("reading", path, e))?;
        if !meta.is_dir() {
            files.push(path.clone());
            continue;
        }
        let found = folder_migrations(path)?;
        if found.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, format!("`{}` holds no `.sql` file", path.display()))
                .with_hint(FOLDER_LAYOUTS));
        }
        files.extend(found);
    }
    Ok(files)
}

/// What a folder of migrations may hold, for the hint of an error about one.
pub const FOLDER_LAYOUTS: &str = "a folder of migrations holds `.sql` files (`*.down.sql` are left out), or a \
    folder per migration with its `migration.sql` (Prisma) or `up.sql` (diesel)";

/// The migrations of the folder `dir`, in the order `migrate` applies them: those it reads a version from
/// (`V1_1__x.sql`, `0042_x.sql`, `000001_x.up.sql`, `20240101000000_x/`) by version, numbers as numbers
/// ([`crate::migrate::runner::version_key`]), then the others in name order, numbers read as numbers (`2_`
/// before `10_`; Flyway's repeatable `R__` last): its `.sql` files without the scripts that undo a
/// migration (`*.down.sql`, Flyway's `U<version>__*.sql`), and of each subfolder its `migration.sql`
/// (Prisma's layout) or `up.sql` (diesel's).
pub fn folder_migrations(dir: &Path) -> Result<Vec<PathBuf>> {
    use crate::migrate::runner::{migration_version, version_key};
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))? {
        let path = entry.map_err(|e| Error::io("listing", dir, e))?.path();
        let version = migration_version(&name(&path), path.is_dir());
        entries.push((path, version));
    }
    entries.sort_by(|(a, va), (b, vb)| {
        let by_version = match (va, vb) {
            (Some(x), Some(y)) => version_key(x).cmp(&version_key(y)),
            _ => std::cmp::Ordering::Equal,
        };
        va.is_none().cmp(&vb.is_none()).then(by_version).then_with(|| natural_order(&name(a), &name(b)))
    });
    let mut found = Vec::new();
    for (entry, _) in entries {
        let name = name(&entry);
        if entry.is_dir() {
            // As `migrate` reads a folder: `up.sql` (Diesel) before `migration.sql` (Prisma).
            found.extend(["up.sql", "migration.sql"].iter().map(|f| entry.join(f)).find(|f| f.is_file()));
        } else if name.ends_with(".sql") && !name.ends_with(".down.sql") && !flyway_undo(&name) && entry.is_file() {
            found.push(entry);
        }
    }
    Ok(found)
}

/// Names compared piece by piece, a run of digits as the number it writes (then by its padding); two
/// Flyway versions (`V1__`, `V1.1__`, `V2__`) by their version first; Flyway's repeatable migrations
/// (`R__views.sql`) after every other, as Flyway runs them.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    let repeatable = |name: &str| name.starts_with("R__");
    if repeatable(a) != repeatable(b) {
        return repeatable(a).cmp(&repeatable(b));
    }
    if let (Some(x), Some(y)) = (flyway_version(a), flyway_version(b)) {
        let numbers = |v: &str| {
            v.split(['.', '_'])
                .map(|p| (p.trim_start_matches('0').len(), p.trim_start_matches('0').to_owned()))
                .collect::<Vec<_>>()
        };
        let order = numbers(x).cmp(&numbers(y));
        if order.is_ne() {
            return order;
        }
    }
    natural_pieces(a, b)
}

/// The version of a Flyway migration's name: `1.1` of `V1.1__fix.sql`.
fn flyway_version(name: &str) -> Option<&str> {
    let (version, _) = name.strip_prefix('V')?.split_once("__")?;
    (!version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '_')).then_some(version)
}

fn natural_pieces(a: &str, b: &str) -> std::cmp::Ordering {
    fn pieces(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        for (i, c) in s.char_indices().skip(1) {
            let prev = s[..i].chars().next_back().is_some_and(|p| p.is_ascii_digit());
            if prev != c.is_ascii_digit() {
                out.push((prev, &s[start..i]));
                start = i;
            }
        }
        if !s.is_empty() {
            out.push((s[start..].starts_with(|c: char| c.is_ascii_digit()), &s[start..]));
        }
        out
    }
    fn key((digits, piece): (bool, &str)) -> (bool, usize, &str, &str) {
        let number = if digits { piece.trim_start_matches('0') } else { "" };
        (!digits, number.len(), number, piece)
    }
    pieces(a).into_iter().map(key).cmp(pieces(b).into_iter().map(key))
}

/// Flyway's undo scripts: `U` and a version, then `__` (`U2__drop_email.sql`).
fn flyway_undo(name: &str) -> bool {
    name.strip_prefix('U').is_some_and(|rest| flyway_version(&format!("V{rest}")).is_some())
}

/// The statements of the file at `path`, in order. A file that does not parse is an error naming the
/// file, line and column where PostgreSQL's parser stopped.
pub fn split_file(path: &Path) -> Result<Vec<Statement>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    split_text(path, &text)
}

/// The statements of `text`, the contents of the file `path`, without those of its down sections (goose,
/// dbmate and sql-migrate keep the statements that undo a migration after a marker comment in the same
/// file: [`down_sections`](crate::sql::down_sections)).
///
/// The rows after a `COPY ... FROM STDIN` are not SQL: the parser reads the file without them (each of
/// their characters a space, so what follows keeps its line and column), and they go with the statement.
pub fn split_text(path: &Path, text: &str) -> Result<Vec<Statement>> {
    let blocks = crate::sql::copy_blocks(text).map_err(|e| {
        let (line, column) = line_and_column(text, e.offset);
        Error::new(ErrorKind::InvalidInput, format!("`{}`:{line}:{column}: {}", path.display(), e.message))
            .with_hint("a `COPY ... FROM STDIN` is followed by its rows, one a line, and a line `\\.` after them, as `pg_dump` writes it")
    })?;
    let sql = crate::sql::blank_copy_rows(text, &blocks);
    let down = crate::sql::down_sections(&sql);
    let pieces = pg_query::split_with_parser(&sql).map_err(|e| parse_error(path, &sql, e))?;
    let mut statements: Vec<Statement> =
        pieces.into_iter().filter_map(|piece| statement(path, &sql, piece, &down)).collect();
    for block in &blocks {
        let at = line_and_column(text, block.statement.start);
        let (rows_line, _) = line_and_column(text, block.rows.start);
        // A COPY in a down section is not among the statements, and its rows go with it.
        if let Some(st) = statements.iter_mut().find(|st| (st.line, st.column) == at) {
            st.copy_rows = Some(CopyRows { line: rows_line, text: text[block.rows.clone()].to_owned() });
        }
    }
    Ok(statements)
}

/// `piece` (a slice of `text`) as a statement, from its first token; `None` when it holds only comments or
/// starts in one of the `down` sections.
fn statement(path: &Path, text: &str, piece: &str, down: &[std::ops::Range<usize>]) -> Option<Statement> {
    let start = piece.as_ptr() as usize - text.as_ptr() as usize;
    let skipped = start_of_code(piece);
    let sql = piece.get(skipped..)?.trim_end();
    if sql.is_empty() || down.iter().any(|d| d.contains(&(start + skipped))) {
        return None;
    }
    let (line, column) = line_and_column(text, start + skipped);
    Some(Statement { file: path.to_owned(), line, column, sql: sql.to_owned(), copy_rows: None })
}

/// Where the code of `sql` starts: after blanks, `--` comments and (nested) `/* */` comments.
fn start_of_code(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i..].starts_with(b"--") {
            i = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n + 1);
        } else if bytes[i..].starts_with(b"/*") {
            i = crate::sql::skip_block_comment(bytes, i);
        } else {
            return i;
        }
    }
}

/// The line and column (from 1, the column in characters) of byte `offset` of `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The error of a file that does not parse, at the token where the parser stopped (found as lint finds
/// it: [`crate::lint::syntax_error`]).
fn parse_error(path: &Path, text: &str, error: pg_query::Error) -> Error {
    let file = crate::lint::SourceFile { name: path.display().to_string(), text: text.to_owned() };
    let e = crate::lint::syntax_error(&file, error);
    Error::new(ErrorKind::InvalidInput, format!("`{}`:{}:{}: {}", path.display(), e.line, e.column, e.message))
        .with_hint("the file must be SQL that PostgreSQL parses; `psql -f` shows the same error")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<(usize, usize, String)> {
        split_text(Path::new("m.sql"), text).unwrap().into_iter().map(|s| (s.line, s.column, s.sql)).collect()
    }

    #[test]
    fn a_folder_reads_its_numbers_as_numbers_and_leaves_out_undo_scripts() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "V10__add_price.sql",
            "V2__add_email.sql",
            "V1__init.sql",
            "V1.1__fix.sql",
            "U2__add_email.sql",
            "R__views.sql",
            "V11__wider.sql",
            "3_x.down.sql",
        ] {
            std::fs::write(dir.path().join(name), "SELECT 1;").unwrap();
        }
        let names: Vec<String> = folder_migrations(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "V1__init.sql",
                "V1.1__fix.sql",
                "V2__add_email.sql",
                "V10__add_price.sql",
                "V11__wider.sql",
                "R__views.sql"
            ]
        );
        assert!(natural_order("20240101_a", "20240102_a").is_lt() && natural_order("0002_a", "2_a").is_lt());
        assert!(natural_order("2_b", "10_a").is_lt() && natural_order("a", "a").is_eq());
    }

    #[test]
    fn statements_keep_their_line_and_column_and_lose_their_comments() {
        let text = "-- add the column\nALTER TABLE t ADD COLUMN x int;\n\n  /* a /* nested */ note */ UPDATE t\n   SET x = 1; ; \
                    SELECT ';' -- not the end\n;\n-- only a comment\n";
        assert_eq!(
            split(text),
            [
                (2, 1, "ALTER TABLE t ADD COLUMN x int".into()),
                (4, 29, "UPDATE t\n   SET x = 1".into()),
                (5, 17, "SELECT ';' -- not the end".into()),
            ]
        );
        assert_eq!(split("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;").len(), 1);
    }

    #[test]
    fn a_file_that_does_not_parse_names_the_line_and_column_of_the_wrong_token() {
        let text = "SELECT 1;\n-- next\nALTER TABLE t\n  ADD COLUMNN x int;\nSELECT 2;\n";
        let e = split_text(Path::new("m.sql"), text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().starts_with("`m.sql`:4:17: syntax error at or near \"int\""), "{e}");
        let e = split_text(Path::new("m.sql"), "SELECT 1;\nSELECT (1;\n").unwrap_err();
        assert!(e.to_string().starts_with("`m.sql`:2:"), "{e}");
        // A statement cut short before its `;`: the `;`, not the statement's start (as lint says it).
        let e = split_text(Path::new("m.sql"), "ALTER TABLE t ADD w int;\n\nUPDATE t\n  SET w = 1\n  WHERE v = ;\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("`m.sql`:5:13: syntax error at or near \";\""), "{e}");
    }

    #[test]
    fn a_folder_is_its_sql_files_in_name_order_without_down_scripts() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["0002_b.sql", "0001_a.sql", "0001_a.down.sql", "notes.md", "0010_c.sql"] {
            std::fs::write(dir.path().join(name), "SELECT 1;").unwrap();
        }
        let files = migration_files(&[dir.path().to_owned()]).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["0001_a.sql", "0002_b.sql", "0010_c.sql"]);
        let empty = tempfile::tempdir().unwrap();
        assert!(migration_files(&[empty.path().to_owned()]).unwrap_err().to_string().contains("holds no `.sql` file"));
    }

    #[test]
    fn a_folder_of_prisma_or_diesel_migrations_is_each_ones_up_script() {
        let dir = tempfile::tempdir().unwrap();
        for (sub, file) in [
            ("20240102_b", "migration.sql"),
            ("20240101_a", "up.sql"),
            ("20240101_a", "down.sql"),
            ("20240103_c", "README.md"),
            ("20240104_d", "migration.sql"),
            ("20240104_d", "up.sql"),
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
            std::fs::write(dir.path().join(sub).join(file), "SELECT 1;").unwrap();
        }
        std::fs::write(dir.path().join("migration_lock.toml"), "").unwrap();
        let files = migration_files(&[dir.path().to_owned()]).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.strip_prefix(dir.path()).unwrap().to_owned()).collect();
        // A folder with both scripts is read as `migrate` runs it: its `up.sql`.
        let expected = ["20240101_a/up.sql", "20240102_b/migration.sql", "20240104_d/up.sql"].map(Path::new);
        assert_eq!(names, expected);
    }

    #[test]
    fn the_rows_of_a_copy_from_stdin_go_with_it_and_what_follows_keeps_its_line() {
        let text = "CREATE TABLE plan (id int, name text);\nCOPY plan (id, name) FROM stdin;\n1\tit's\n2\t\\N\n\\.\n  UPDATE plan SET id = 3;\n";
        let statements = split_text(Path::new("m.sql"), text).unwrap();
        let at: Vec<_> = statements.iter().map(|s| (s.line, s.column, s.sql.as_str())).collect();
        assert_eq!(
            at,
            [
                (1, 1, "CREATE TABLE plan (id int, name text)"),
                (2, 1, "COPY plan (id, name) FROM stdin"),
                (6, 3, "UPDATE plan SET id = 3")
            ]
        );
        assert_eq!(statements[1].copy_rows, Some(CopyRows { line: 3, text: "1\tit's\n2\t\\N\n".into() }));
        assert_eq!(statements[2].copy_rows, None);
        let e = split_text(Path::new("m.sql"), "SELECT 1;\nCOPY plan FROM pstdin;\n1\n\\.\n").unwrap_err();
        assert!(e.to_string().starts_with("`m.sql`:2:1: `COPY ... FROM pstdin`"), "{e}");
        let e = split_text(Path::new("m.sql"), "COPY plan FROM stdin;\n1\n\\.\nSELECT (1;\n").unwrap_err();
        assert!(e.to_string().starts_with("`m.sql`:4:"), "{e}");
    }

    #[test]
    fn a_down_section_is_not_among_the_statements() {
        let text = "-- +goose Up\nALTER TABLE u ADD COLUMN p text;\n\n-- +goose Down\nALTER TABLE u DROP COLUMN p;\n";
        let statements = split_text(Path::new("m.sql"), text).unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!((statements[0].line, statements[0].sql.as_str()), (2, "ALTER TABLE u ADD COLUMN p text"));
        let dbmate = "-- migrate:down\nDROP TABLE t;\n-- migrate:up\nCREATE TABLE t (a int);\n";
        let statements = split_text(Path::new("m.sql"), dbmate).unwrap();
        assert_eq!(statements.iter().map(|s| s.line).collect::<Vec<_>>(), [4]);
    }
}
