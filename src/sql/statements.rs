//! Where the statements of a batch begin and end, found the way psql finds them: a `;` ends a statement
//! unless it is inside a string, a quoted identifier, a dollar-quoted body, a comment, parentheses (a
//! rule's action list), or the `BEGIN ATOMIC ... END` body of a `CREATE FUNCTION` or `CREATE PROCEDURE`.
//!
//! The server runs a batch (the simple query protocol) statement by statement and stops at the first
//! error, which it places by a character offset into the whole text when it can. This module turns that
//! offset, or the number of statements the server finished, into the statement that failed.

use std::ops::Range;

/// The statements of a batch of SQL, in order; empty ones (`;;`, only comments) are left out, as the
/// server leaves them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statements<'a> {
    sql: &'a str,
    /// Byte ranges into `sql`, each from its first token to the end of its last one (the `;` not
    /// included).
    ranges: Vec<Range<usize>>,
}

/// Splits `sql` into its statements.
pub fn statements(sql: &str) -> Statements<'_> {
    Statements { sql, ranges: split(sql.as_bytes()) }
}

impl<'a> Statements<'a> {
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The text of statement `index` (from 0), without its `;`.
    pub fn get(&self, index: usize) -> Option<&'a str> {
        self.ranges.get(index).and_then(|r| self.sql.get(r.clone()))
    }

    /// The statement that holds byte `offset` of the batch (its `;` included), the first one after it
    /// when the offset falls between two statements, or the last one when it is past them all (the
    /// server's "at end of input").
    pub fn index_at_byte(&self, offset: usize) -> Option<usize> {
        self.ranges.iter().position(|r| offset <= r.end).or_else(|| self.len().checked_sub(1))
    }

    /// The statement at `position`, the server's error position: a 1-based count of characters into the
    /// batch (statements cross in UTF-8, see [`crate::pg::Session::open`]).
    pub fn index_at_position(&self, position: usize) -> Option<usize> {
        let skip = position.checked_sub(1)?;
        let offset = self.sql.char_indices().nth(skip).map_or(self.sql.len(), |(byte, _)| byte);
        self.index_at_byte(offset)
    }
}

/// What the scanner is inside of that makes a `;` not end the statement.
#[derive(Default)]
struct Depth {
    parentheses: usize,
    /// `BEGIN` (and `CASE` inside one) not yet closed by `END`, in a routine's SQL-standard body.
    begin: usize,
}

/// The first words of a statement, lower-cased, to recognise `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
#[derive(Default)]
struct Head {
    words: Vec<String>,
}

impl Head {
    const WORDS: usize = 4;

    fn push(&mut self, word: &str) {
        if self.words.len() < Self::WORDS {
            self.words.push(word.to_ascii_lowercase());
        }
    }

    /// Whether the statement creates a function or procedure, whose body may be `BEGIN ATOMIC ... END`.
    fn is_routine(&self) -> bool {
        let w: Vec<&str> = self.words.iter().map(String::as_str).collect();
        matches!(
            w.as_slice(),
            ["create", "function" | "procedure", ..] | ["create", "or", "replace", "function" | "procedure"]
        )
    }
}

fn split(b: &[u8]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    scan(b, 0, |range, _| {
        ranges.push(range);
        true
    });
    ranges
}

/// Reads the statements of `b` from byte `from` on, calling `found` with each one's range and the offset
/// just past the `;` that ends it (the end of `b` for a last one without), until `found` returns false.
pub(super) fn scan(b: &[u8], from: usize, mut found: impl FnMut(Range<usize>, usize) -> bool) {
    let mut i = from;
    // The first token of the statement being read, and the end of its last token so far.
    let mut current: Option<Range<usize>> = None;
    let mut depth = Depth::default();
    let mut head = Head::default();
    while let Some(&c) = b.get(i) {
        // Whitespace and comments are not tokens: they neither start a statement nor extend it.
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            i = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |n| i + n + 1);
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i = skip_block_comment(b, i);
            continue;
        }
        if c == b';' && depth.parentheses == 0 && depth.begin == 0 {
            if let Some(range) = current.take()
                && !found(range, i + 1)
            {
                return;
            }
            head = Head::default();
            i += 1;
            continue;
        }
        let start = i;
        i = match c {
            b'\'' => skip_string(b, i, false),
            b'"' => skip_quoted(b, i, b'"'),
            b'$' => dollar_quote_end(b, i).unwrap_or(i + 1),
            b'(' => {
                depth.parentheses += 1;
                i + 1
            }
            b')' => {
                depth.parentheses = depth.parentheses.saturating_sub(1);
                i + 1
            }
            c if is_ident_start(c) => {
                let end = i + b[i..].iter().take_while(|&&c| is_ident_continue(c)).count();
                let word = std::str::from_utf8(&b[i..end]).unwrap_or_default();
                if word.eq_ignore_ascii_case("e") && b.get(end) == Some(&b'\'') {
                    // E'...': backslash escapes.
                    skip_string(b, end, true)
                } else {
                    head.push(word);
                    if head.is_routine() && depth.parentheses == 0 {
                        if word.eq_ignore_ascii_case("begin") {
                            depth.begin += 1;
                        } else if word.eq_ignore_ascii_case("case") && depth.begin > 0 {
                            // CASE ends with END too, which must not close the BEGIN.
                            depth.begin += 1;
                        } else if word.eq_ignore_ascii_case("end") {
                            depth.begin = depth.begin.saturating_sub(1);
                        }
                    }
                    end
                }
            }
            c if c.is_ascii_digit() => {
                i + b[i..].iter().take_while(|&&c| c.is_ascii_alphanumeric() || c == b'.').count()
            }
            _ => i + 1,
        };
        match &mut current {
            Some(range) => range.end = i,
            None => current = Some(start..i),
        }
    }
    if let Some(range) = current {
        found(range, b.len());
    }
}

pub(super) fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

pub(super) fn is_ident_continue(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// The end of the `'...'` string starting at `i`: `''` is a quote inside it, and so is `\'` when
/// `backslashes` escape (an `E'...'` string). An unterminated string runs to the end.
pub(super) fn skip_string(b: &[u8], i: usize, backslashes: bool) -> usize {
    let mut j = i + 1;
    while let Some(&c) = b.get(j) {
        match c {
            b'\\' if backslashes => j += 2,
            b'\'' if b.get(j + 1) == Some(&b'\'') => j += 2,
            b'\'' => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

/// The end of the `"..."` identifier starting at `i`, where a doubled quote stands for one.
pub(super) fn skip_quoted(b: &[u8], i: usize, quote: u8) -> usize {
    quoted_end(b, i, quote).unwrap_or(b.len())
}

/// Just past the quote that closes the one at `i` (a doubled quote stays inside); `None` when none does.
pub(super) fn quoted_end(b: &[u8], i: usize, quote: u8) -> Option<usize> {
    let mut j = i + 1;
    while let Some(&c) = b.get(j) {
        if c == quote {
            if b.get(j + 1) == Some(&quote) {
                j += 2;
                continue;
            }
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

/// The end of a `/* ... */` comment starting at `i`; they nest.
pub fn skip_block_comment(b: &[u8], i: usize) -> usize {
    let mut nesting = 0usize;
    let mut j = i;
    while j < b.len() {
        if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
            nesting += 1;
            j += 2;
        } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
            nesting -= 1;
            j += 2;
            if nesting == 0 {
                return j;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

/// The end of the dollar-quoted string (`$$...$$`, `$tag$...$tag$`) starting at `i`, or `None` when the
/// `$` starts none (a parameter such as `$1`). An unterminated one runs to the end.
pub(super) fn dollar_quote_end(b: &[u8], i: usize) -> Option<usize> {
    let tag_len = 1 + b[i + 1..].iter().take_while(|&&c| is_ident_continue(c) && c != b'$').count();
    if b.get(i + tag_len) != Some(&b'$') || b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    let tag = &b[i..=i + tag_len];
    let body = i + tag.len();
    Some(b[body..].windows(tag.len()).position(|w| w == tag).map_or(b.len(), |n| body + n + tag.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<&str> {
        let s = statements(sql);
        (0..s.len()).filter_map(|i| s.get(i)).collect()
    }

    #[test]
    fn semicolons_end_statements() {
        assert_eq!(texts("SELECT 1; SELECT 2;\nSELECT 3"), ["SELECT 1", "SELECT 2", "SELECT 3"]);
        assert_eq!(texts("  SELECT 1 ;  "), ["SELECT 1"]);
        assert_eq!(texts(""), Vec::<&str>::new());
    }

    #[test]
    fn empty_statements_and_comments_alone_are_not_statements() {
        assert_eq!(texts(";; SELECT 1;;; -- done\n/* nothing */;"), ["SELECT 1"]);
        assert_eq!(texts("-- only a comment"), Vec::<&str>::new());
    }

    #[test]
    fn semicolons_inside_strings_identifiers_and_comments_do_not_end_statements() {
        let sql = "INSERT INTO t VALUES ('a;b', 'it''s;'); \
                   CREATE TABLE \"x;y\" (\"c\"\"d;\" int); \
                   SELECT E'\\';' AS e; \
                   SELECT 1 /* ; /* nested ; */ still ; */ + 2; \
                   SELECT 3 -- ; not here\n + 4";
        assert_eq!(
            texts(sql),
            [
                "INSERT INTO t VALUES ('a;b', 'it''s;')",
                "CREATE TABLE \"x;y\" (\"c\"\"d;\" int)",
                "SELECT E'\\';' AS e",
                "SELECT 1 /* ; /* nested ; */ still ; */ + 2",
                "SELECT 3 -- ; not here\n + 4",
            ]
        );
    }

    #[test]
    fn dollar_quoted_bodies_are_one_token() {
        let sql = "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$; \
                   DO $body$ BEGIN PERFORM 'x;'; END $body$; SELECT $1::int, a$b$ FROM t";
        assert_eq!(
            texts(sql),
            [
                "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
                "DO $body$ BEGIN PERFORM 'x;'; END $body$",
                "SELECT $1::int, a$b$ FROM t",
            ]
        );
    }

    #[test]
    fn parentheses_hold_a_rules_actions() {
        let sql =
            "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); SELECT 1";
        assert_eq!(texts(sql).len(), 2);
    }

    #[test]
    fn sql_standard_routine_bodies_hold_their_statements() {
        let sql = "CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC \
                   SELECT CASE WHEN x > 0 THEN 1 ELSE 2 END; SELECT 3; END; \
                   CREATE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END; \
                   BEGIN; SELECT 1; END";
        assert_eq!(
            texts(sql),
            [
                "CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC \
                 SELECT CASE WHEN x > 0 THEN 1 ELSE 2 END; SELECT 3; END",
                "CREATE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END",
                "BEGIN",
                "SELECT 1",
                "END",
            ]
        );
    }

    #[test]
    fn unterminated_quotes_run_to_the_end() {
        assert_eq!(texts("SELECT 1; SELECT 'open; SELECT 2"), ["SELECT 1", "SELECT 'open; SELECT 2"]);
        assert_eq!(texts("SELECT $$ open; SELECT 2"), ["SELECT $$ open; SELECT 2"]);
    }

    #[test]
    fn a_position_finds_its_statement_counting_characters() {
        let sql = "SELECT 'éééééééééé'; SELECT 1; SELECT nope FROM x";
        let s = statements(sql);
        let byte = sql.find("nope").expect("the statement is there");
        let position = sql[..byte].chars().count() + 1;
        assert_eq!(position, byte - 9, "ten characters of two bytes each come before it");
        assert_eq!(s.index_at_position(position), Some(2));
        // Read as bytes, the same number would land in `SELECT 1`.
        assert_eq!(s.index_at_byte(position - 1), Some(1));
        assert_eq!(s.index_at_position(1), Some(0));
        assert_eq!(s.index_at_position(0), None);
        assert_eq!(s.index_at_position(10_000), Some(2), "at end of input");
    }

    #[test]
    fn an_offset_between_statements_belongs_to_the_next() {
        let s = statements("SELECT 1;   SELECT 2");
        assert_eq!(s.index_at_byte(8), Some(0), "the `;` of the first");
        assert_eq!(s.index_at_byte(10), Some(1), "the gap");
        assert_eq!(s.index_at_byte(12), Some(1));
    }
}
