//! SQL text that reads the same in any client encoding: the quoted identifiers and string literals
//! holding characters outside ASCII written with Unicode escapes (`U&"caf\00E9"`), which the server turns
//! into its own encoding (PostgreSQL 13 and later accept any character of it, whatever that encoding).
//!
//! A `COPY` of rows in a client encoding other than UTF-8 must be sent in that encoding, and its
//! statement with it, while pgsafe holds every name as UTF-8 text.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::statements::{dollar_quote_end, quoted_end, skip_block_comment};

/// `sql` with each double-quoted identifier and plain `'...'` literal that holds a character outside
/// ASCII rewritten as its `U&` form; comments, dollar-quoted text, and literals with a prefix (`E'...'`,
/// `U&'...'`) are left as they are. ASCII text comes back as it is.
pub fn ascii_escaped(sql: &str) -> Cow<'_, str> {
    if sql.is_ascii() {
        return Cow::Borrowed(sql);
    }
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 32);
    let mut at = 0;
    while at < bytes.len() {
        let rest = &sql[at..];
        let end = match bytes[at] {
            quote @ (b'"' | b'\'') => match quoted_end(bytes, at, quote) {
                Some(end) => {
                    let body = &sql[at + 1..end - 1];
                    let prefixed =
                        at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || matches!(bytes[at - 1], b'_' | b'&'));
                    if !prefixed && !body.is_ascii() {
                        escape(&mut out, body, quote as char);
                        at = end;
                        continue;
                    }
                    end
                }
                None => bytes.len(),
            },
            b'-' if rest.starts_with("--") => rest.find('\n').map_or(bytes.len(), |n| at + n + 1),
            b'/' if rest.starts_with("/*") => skip_block_comment(bytes, at),
            b'$' => dollar_quote_end(bytes, at).unwrap_or(at + 1),
            _ => at + rest.chars().next().map_or(1, char::len_utf8),
        };
        out.push_str(&sql[at..end]);
        at = end;
    }
    Cow::Owned(out)
}

/// Writes `U&"body"` (or `U&'body'`), the characters outside ASCII as escapes and `\` doubled.
fn escape(out: &mut String, body: &str, quote: char) {
    out.push_str("U&");
    out.push(quote);
    for c in body.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii() => out.push(c),
            c if (c as u32) <= 0xFFFF => write!(out, "\\{:04X}", c as u32).expect("writing to a String"),
            c => write!(out, "\\+{:06X}", c as u32).expect("writing to a String"),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_literals_outside_ascii_are_escaped_and_the_rest_left_alone() {
        assert_eq!(ascii_escaped("COPY public.t (a) FROM STDIN"), "COPY public.t (a) FROM STDIN");
        assert_eq!(
            ascii_escaped(r#"COPY public."café" (id, "crè""me\x") TO STDOUT"#),
            r#"COPY public.U&"caf\00E9" (id, U&"cr\00E8""me\\x") TO STDOUT"#
        );
        assert_eq!(ascii_escaped("SELECT 'naïve 😀', E'é', U&'é'"), r"SELECT U&'na\00EFve \+01F600', E'é', U&'é'");
        assert_eq!(
            ascii_escaped("SELECT 1 -- où\n, $$é$$, $t$'é'$t$, $1 /* é /* é */ */"),
            "SELECT 1 -- où\n, $$é$$, $t$'é'$t$, $1 /* é /* é */ */"
        );
        // An unterminated quote is copied as it is.
        assert_eq!(ascii_escaped("SELECT 'é"), "SELECT 'é");
        assert_eq!(ascii_escaped("SELECT 'é''"), "SELECT 'é''");
    }
}
