//! Object name patterns with pg_dump's rules (`-n`, `-N`, `-t`, `-T`): `*` and `?` are wildcards, `.`
//! separates schema from name, unquoted letters fold to lower case, double quotes keep case and make
//! wildcards literal, and other regular-expression characters pass through for those who know them.

use regex::Regex;

use crate::error::{Error, ErrorKind, Result};

/// One compiled pattern: an optional schema part and a name part, each anchored.
#[derive(Debug, Clone)]
pub struct NamePattern {
    source: String,
    schema: Option<Regex>,
    name: Regex,
}

impl NamePattern {
    /// Parses a pattern for objects in a schema (`-t`). `a.b` splits into schema `a` and name `b`.
    pub fn object(pattern: &str) -> Result<Self> {
        let parts = split(pattern)?;
        let (schema, name) = match parts.as_slice() {
            [name] => (None, name.clone()),
            [schema, name] => (Some(schema.clone()), name.clone()),
            // database.schema.name: pg_dump refuses a database part too.
            _ => return Err(invalid(pattern, "too many dotted names")),
        };
        Ok(NamePattern {
            source: pattern.to_string(),
            schema: schema.map(|s| compile(pattern, &s)).transpose()?,
            name: compile(pattern, &name)?,
        })
    }

    /// The pattern that matches exactly the object `schema.name`, whatever characters its names hold.
    pub fn exact(schema: &str, name: &str) -> Result<Self> {
        let quoted = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        NamePattern::object(&format!("{}.{}", quoted(schema), quoted(name)))
    }

    /// Parses a schema pattern (`-n`).
    pub fn schema(pattern: &str) -> Result<Self> {
        let parts = split(pattern)?;
        match parts.as_slice() {
            [name] => Ok(NamePattern { source: pattern.to_string(), schema: None, name: compile(pattern, name)? }),
            _ => Err(invalid(pattern, "a schema pattern has no dots")),
        }
    }

    /// Does an object match? An unqualified object pattern matches only objects visible in the search
    /// path, as pg_dump's does.
    pub fn matches_object(&self, schema: &str, name: &str, visible: bool) -> bool {
        match &self.schema {
            Some(s) => s.is_match(schema) && self.name.is_match(name),
            None => visible && self.name.is_match(name),
        }
    }

    pub fn matches_schema(&self, schema: &str) -> bool {
        self.name.is_match(schema)
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Splits at unquoted dots, converting each part to a regular expression body.
fn split(pattern: &str) -> Result<Vec<String>> {
    let mut parts = vec![String::new()];
    let mut in_quotes = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let cur = parts.last_mut().expect("parts is never empty");
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => in_quotes = !in_quotes,
            '.' if !in_quotes => parts.push(String::new()),
            '*' if !in_quotes => cur.push_str(".*"),
            '?' if !in_quotes => cur.push('.'),
            '$' => cur.push_str("\\$"),
            c if in_quotes => cur.push_str(&regex::escape(&c.to_string())),
            c => cur.extend(c.to_lowercase()),
        }
    }
    if in_quotes {
        return Err(invalid(pattern, "unterminated double quote"));
    }
    Ok(parts)
}

fn compile(pattern: &str, body: &str) -> Result<Regex> {
    Regex::new(&format!("^(?:{body})$")).map_err(|e| invalid(pattern, &e.to_string()))
}

fn invalid(pattern: &str, why: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("invalid name pattern `{pattern}`: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_case_follow_pg_dump() {
        let p = NamePattern::object("Public.Acc*").unwrap();
        assert!(p.matches_object("public", "accounts", false));
        assert!(!p.matches_object("public", "Accounts", false));
        let q = NamePattern::object("\"Odd Schema\".\"T?\"").unwrap();
        assert!(q.matches_object("Odd Schema", "T?", false));
        assert!(!q.matches_object("Odd Schema", "Tx", false));
        let r = NamePattern::object("t?").unwrap();
        assert!(r.matches_object("s", "t1", true));
        assert!(!r.matches_object("s", "t1", false), "unqualified patterns see only the search path");
        assert!(!r.matches_object("s", "t12", true));
    }

    #[test]
    fn regex_characters_pass_through_outside_quotes() {
        let p = NamePattern::object("public.t[0-9]+").unwrap();
        assert!(p.matches_object("public", "t42", false));
        assert!(!p.matches_object("public", "tx", false));
        let d = NamePattern::object("public.a$b").unwrap();
        assert!(d.matches_object("public", "a$b", false));
    }

    #[test]
    fn schema_patterns() {
        let p = NamePattern::schema("app_*").unwrap();
        assert!(p.matches_schema("app_one"));
        assert!(!p.matches_schema("public"));
        assert!(NamePattern::schema("a.b").is_err());
        assert!(NamePattern::object("a.b.c").is_err());
        assert!(NamePattern::object("\"open").is_err());
    }
}
