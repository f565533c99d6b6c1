//! SQL text as pgsafe writes and reads it, without a server: quoting identifiers and literals the way
//! PostgreSQL's own `quote_ident` and `quote_literal` do, telling where the statements of a batch
//! begin and end and where the rows of a file's `COPY ... FROM STDIN` are (`copy_rows`), and the query
//! that finds the rows breaking a foreign key (`foreign_key`).
//!
//! Pure and synchronous, so that planning (`plan/`) and the archive codec (`format/`) use the same
//! quoting as the SQL pgsafe runs, without reaching into `pg/`, which talks to servers. `pg` re-exports
//! the quoting functions.

mod copy_rows;
mod escape;
pub(crate) mod foreign_key;
mod keywords;
mod sections;
mod statements;

pub use copy_rows::{CopyBlock, CopyBlockError, blank_copy_rows, copy_blocks};
pub use escape::ascii_escaped;
pub use keywords::{Category, KEYWORDS};
pub use sections::{down_only, down_sections, marking_tool, runs_in_tool_transaction};
pub use statements::{Statements, skip_block_comment, statements};

/// A name inside a schema, such as a table's: what [`quote_qualified`] quotes.
pub trait SchemaQualified {
    fn schema(&self) -> &str;
    fn name(&self) -> &str;
}

/// Quotes an identifier when it needs it, exactly as the server's `quote_ident` does: it stays bare
/// only when it is lower-case ASCII letters, digits and underscores, does not start with a digit, and
/// is no keyword of PostgreSQL 13 to 18 other than an UNRESERVED one.
pub fn quote_ident(s: &str) -> String {
    let bare = s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && keywords::category(s).is_none();
    if bare { s.to_string() } else { format!("\"{}\"", s.replace('"', "\"\"")) }
}

/// `schema.name`, each part quoted as [`quote_ident`] does.
pub fn quote_qualified(name: &(impl SchemaQualified + ?Sized)) -> String {
    format!("{}.{}", quote_ident(name.schema()), quote_ident(name.name()))
}

/// A string literal as the server's `quote_literal` writes it: `'...'` with quotes doubled, or
/// `E'...'` with backslashes doubled too when it holds one (so it reads the same whatever
/// `standard_conforming_strings` is).
pub fn quote_literal(s: &str) -> String {
    let body = s.replace('\'', "''");
    if s.contains('\\') { format!("E'{}'", body.replace('\\', "\\\\")) } else { format!("'{body}'") }
}

/// The identifier `text` starts with, as written (`"O w"`, `app`) and as the name it stands for.
pub fn leading_ident(text: &str) -> Option<(&str, String)> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '"' {
                name.push(c);
            } else if chars.peek().is_some_and(|(_, c)| *c == '"') {
                name.push('"');
                chars.next();
            } else {
                return Some((&text[..i + 2], name));
            }
        }
        return None;
    }
    let end = text.find(|c: char| c.is_whitespace() || c == ';').unwrap_or(text.len());
    (end > 0).then(|| (&text[..end], text[..end].to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identifier_is_read_as_written_and_as_the_name_it_stands_for() {
        assert_eq!(leading_ident("\"a\"\"\" x"), Some(("\"a\"\"\"", "a\"".to_owned())));
        assert_eq!(leading_ident("app;"), Some(("app", "app".to_owned())));
        assert_eq!(leading_ident("\"open"), None);
    }

    #[test]
    fn plain_lower_case_names_stay_bare() {
        for name in ["accounts", "_private", "order_items", "t2", "a_1_b", "abort", "text", "name", "merge"] {
            assert_eq!(quote_ident(name), name, "{name} is a plain name or an UNRESERVED keyword");
        }
    }

    #[test]
    fn every_keyword_that_is_not_unreserved_is_quoted() {
        for (word, _, _) in KEYWORDS {
            assert_eq!(quote_ident(word), format!("\"{word}\""));
        }
        // One of each category, as the server's `quote_ident` answers.
        assert_eq!(quote_ident("user"), "\"user\"", "reserved");
        assert_eq!(quote_ident("between"), "\"between\"", "column name keyword");
        assert_eq!(quote_ident("left"), "\"left\"", "type or function name keyword");
    }

    #[test]
    fn words_that_became_keywords_after_13_are_quoted() {
        // An archive from 13 restores into 18, where these are keywords.
        for word in ["system_user", "json_array", "json_table", "json_value", "merge_action", "json"] {
            assert_eq!(quote_ident(word), format!("\"{word}\""));
        }
        let later: Vec<_> = KEYWORDS.iter().filter(|(_, _, since)| *since > 13).map(|(w, _, _)| *w).collect();
        assert_eq!(later.len(), 13, "{later:?}");
    }

    #[test]
    fn mixed_case_digits_first_and_other_characters_are_quoted() {
        assert_eq!(quote_ident("Accounts"), "\"Accounts\"");
        assert_eq!(quote_ident("USER"), "\"USER\"");
        assert_eq!(quote_ident("1abc"), "\"1abc\"");
        assert_eq!(quote_ident("9"), "\"9\"");
        assert_eq!(quote_ident("a b"), "\"a b\"");
        assert_eq!(quote_ident("a-b"), "\"a-b\"");
        assert_eq!(
            quote_ident("a$b"),
            "\"a$b\"",
            "quote_ident quotes `$`, which the grammar allows after the first letter"
        );
        assert_eq!(quote_ident("a.b"), "\"a.b\"");
        assert_eq!(quote_ident(""), "\"\"");
    }

    #[test]
    fn quotes_inside_are_doubled() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("\""), "\"\"\"\"");
        assert_eq!(quote_ident("it's"), "\"it's\"");
    }

    #[test]
    fn unicode_is_quoted_and_kept() {
        assert_eq!(quote_ident("Ünï"), "\"Ünï\"");
        assert_eq!(quote_ident("ünï"), "\"ünï\"", "lower case but not ASCII");
        assert_eq!(quote_ident("日本"), "\"日本\"");
        assert_eq!(quote_ident("café"), "\"café\"");
    }

    #[test]
    fn qualified_names_quote_each_part() {
        struct Name(&'static str, &'static str);
        impl SchemaQualified for Name {
            fn schema(&self) -> &str {
                self.0
            }
            fn name(&self) -> &str {
                self.1
            }
        }
        assert_eq!(quote_qualified(&Name("public", "t")), "public.t");
        assert_eq!(quote_qualified(&Name("My Schema", "user")), "\"My Schema\".\"user\"");
        assert_eq!(quote_qualified(&Name("a.b", "c")), "\"a.b\".c");
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(quote_literal("plain"), "'plain'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
        assert_eq!(quote_literal("it's a\\b"), "E'it''s a\\\\b'");
        assert_eq!(quote_literal(""), "''");
    }

    #[test]
    fn the_reserved_list_is_sorted_for_binary_search() {
        // Every adjacent pair, so that binary search finds every word.
        for pair in KEYWORDS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "`{}` must come before `{}`", pair[0].0, pair[1].0);
        }
        for (word, category, _) in KEYWORDS {
            assert_eq!(keywords::category(word), Some(*category), "{word}");
            assert!(word.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{word}");
        }
        assert_eq!(KEYWORDS.len(), 164, "PostgreSQL 18 has 164 keywords that are not UNRESERVED");
    }
}
