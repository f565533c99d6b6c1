//! The rows a `COPY ... FROM STDIN` of a SQL file carries after it, as `pg_dump` and psql write them: from
//! the line after the statement's `;` to a line `\.` (text and CSV alike). They are data, not SQL: a
//! parser must not read them and a runner sends them through the COPY sub-protocol. [`copy_blocks`] finds
//! them; [`blank_copy_rows`] hides them from a parser without moving any statement after them (every
//! byte of a block but its line ends becomes a space, so offsets, lines and columns stay as in the file).

use std::ops::Range;

use super::statements::{is_ident_continue, is_ident_start, scan, skip_block_comment, skip_quoted, skip_string};

/// A `COPY ... FROM STDIN` of a file and the rows after it, as byte ranges of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyBlock {
    /// The statement, from its first token, without its `;`.
    pub statement: Range<usize>,
    /// Its rows, each line with its line end, as they are sent to the server; the `\.` line not included.
    pub rows: Range<usize>,
    /// The rows and the `\.` line with its line end: what is not SQL.
    pub block: Range<usize>,
}

/// Why the rows of a `COPY ... FROM STDIN` cannot be read, at byte `offset` of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyBlockError {
    pub offset: usize,
    pub message: String,
}

/// The `COPY ... FROM STDIN` statements of `text` with their rows, in order.
pub fn copy_blocks(text: &str) -> Result<Vec<CopyBlock>, CopyBlockError> {
    let b = text.as_bytes();
    let mut blocks = Vec::new();
    let mut from = 0;
    loop {
        // Only up to the first COPY: what follows it is data until its `\.`, which the scanner must not read.
        let mut copy = None;
        let mut refused = None;
        scan(b, from, |range, after| {
            match from_stdin(&b[range.clone()]) {
                Some(Source::Stdin) if after <= b.len() && b.get(after - 1) == Some(&b';') => {
                    copy = Some((range, after))
                }
                Some(Source::PsqlStdin) => refused = Some(range.start),
                _ => return true,
            }
            false
        });
        if let Some(offset) = refused {
            return Err(CopyBlockError {
                offset,
                message: "`COPY ... FROM pstdin` reads psql's own standard input, which only psql has: write `FROM \
                          STDIN` with the rows after it in the file, ended by a line `\\.`"
                    .to_owned(),
            });
        }
        let Some((statement, after)) = copy else { return Ok(blocks) };
        let line_end = text[after..].find('\n').map_or(text.len(), |n| after + n);
        let rest = text[after..line_end].trim();
        if !rest.is_empty() && !rest.starts_with("--") {
            return Err(CopyBlockError {
                offset: after,
                message: "a `COPY ... FROM STDIN` must end its line: its rows start on the next one".to_owned(),
            });
        }
        let start = (line_end + 1).min(text.len());
        let mut line = start;
        let end = loop {
            if line >= text.len() {
                return Err(CopyBlockError {
                    offset: statement.start,
                    message: "the rows of this `COPY ... FROM STDIN` have no line `\\.` to end them".to_owned(),
                });
            }
            let next = text[line..].find('\n').map_or(text.len(), |n| line + n + 1);
            if text[line..next].trim_end_matches(['\n', '\r']) == "\\." {
                break next;
            }
            line = next;
        };
        blocks.push(CopyBlock { statement, rows: start..line, block: start..end });
        from = end;
    }
}

/// `text` with the bytes of `blocks` (but their line ends) made spaces: what a parser may read, its
/// statements at the same offsets, lines and columns as in `text`.
pub fn blank_copy_rows(text: &str, blocks: &[CopyBlock]) -> String {
    if blocks.is_empty() {
        return text.to_owned();
    }
    let mut bytes = text.as_bytes().to_vec();
    for block in blocks {
        for byte in &mut bytes[block.block.clone()] {
            if *byte != b'\n' && *byte != b'\r' {
                *byte = b' ';
            }
        }
    }
    // Only ASCII bytes were written, over whole characters (a block is whole lines).
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Where a `COPY ... FROM` reads, for the two that are the file's own input.
enum Source {
    Stdin,
    PsqlStdin,
}

/// Whether `statement` is a `COPY ... FROM STDIN` (or psql's `FROM pstdin`): its words outside
/// parentheses, strings, quoted names and comments.
fn from_stdin(statement: &[u8]) -> Option<Source> {
    let mut words = Vec::new();
    let (mut i, mut depth) = (0, 0usize);
    while let Some(&c) = statement.get(i) {
        i = match c {
            b'-' if statement.get(i + 1) == Some(&b'-') => {
                statement[i..].iter().position(|&c| c == b'\n').map_or(statement.len(), |n| i + n + 1)
            }
            b'/' if statement.get(i + 1) == Some(&b'*') => skip_block_comment(statement, i),
            b'\'' => skip_string(statement, i, false),
            b'"' => skip_quoted(statement, i, b'"'),
            b'(' => {
                depth += 1;
                i + 1
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i + 1
            }
            c if is_ident_start(c) => {
                let end = i + statement[i..].iter().take_while(|&&c| is_ident_continue(c)).count();
                if depth == 0 {
                    words.push(String::from_utf8_lossy(&statement[i..end]).to_ascii_lowercase());
                }
                end
            }
            _ => i + 1,
        };
        if words.first().is_some_and(|w| w != "copy") {
            return None;
        }
    }
    let source = words.windows(2).find(|w| w[0] == "from").map(|w| w[1].as_str());
    match source {
        Some("stdin") => Some(Source::Stdin),
        Some("pstdin") => Some(Source::PsqlStdin),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<(&str, &str)> {
        copy_blocks(text).unwrap().into_iter().map(|b| (&text[b.statement], &text[b.rows])).collect()
    }

    #[test]
    fn the_rows_after_a_copy_from_stdin_run_to_a_line_backslash_dot() {
        let text = "CREATE TABLE plan (id int, name text);\nCOPY public.plan (id, name) FROM stdin;\n1\tfree\n2\tit's;\n\\.\nSELECT 1;\n";
        assert_eq!(rows(text), [("COPY public.plan (id, name) FROM stdin", "1\tfree\n2\tit's;\n")]);
        let csv = "copy t from STDIN with (format csv, header);\r\na,b\r\n\"x\ny\",2\r\n\\.\r\ncopy t FROM stdin;\n\\.";
        assert_eq!(
            rows(csv),
            [("copy t from STDIN with (format csv, header)", "a,b\r\n\"x\ny\",2\r\n"), ("copy t FROM stdin", "")]
        );
    }

    #[test]
    fn other_copies_and_words_in_strings_or_parentheses_carry_no_rows() {
        for text in [
            "COPY t FROM '/seed/t.csv' (FORMAT csv);\nSELECT 1;",
            "COPY (SELECT * FROM stdin) TO STDOUT;\nSELECT 1;",
            "SELECT 'COPY t FROM stdin;';\nSELECT 1;",
            "COPY t TO STDOUT;",
            "-- COPY t FROM stdin;\nSELECT 1;",
        ] {
            assert_eq!(rows(text), [], "{text}");
        }
    }

    #[test]
    fn blanked_rows_keep_every_statement_after_them_in_place() {
        let text = "COPY t FROM stdin;\néé\t'\n\\.\nSELECT 1;\n";
        let blanked = blank_copy_rows(text, &copy_blocks(text).unwrap());
        assert_eq!(blanked.len(), text.len());
        assert_eq!(blanked.find("SELECT 1"), text.find("SELECT 1"));
        assert_eq!(blanked.lines().count(), text.lines().count());
        assert_eq!(crate::sql::statements(&blanked).len(), 2);
    }

    #[test]
    fn rows_without_an_end_psql_input_or_words_after_the_copy_are_refused() {
        let e = copy_blocks("SELECT 1;\nCOPY t FROM stdin;\n1\n2\n").unwrap_err();
        assert_eq!(e.offset, 10);
        assert!(e.message.contains("no line `\\.`"), "{}", e.message);
        let e = copy_blocks("COPY t FROM pstdin;\n1\n\\.\n").unwrap_err();
        assert!(e.message.contains("pstdin"), "{}", e.message);
        let e = copy_blocks("COPY t FROM stdin; SELECT 1;\n1\n\\.\n").unwrap_err();
        assert!(e.message.contains("must end its line"), "{}", e.message);
        assert_eq!(rows("COPY t FROM stdin; -- seed\n1\n\\.\n"), [("COPY t FROM stdin", "1\n")]);
    }
}
