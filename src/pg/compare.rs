//! How the values of a column whose type changed are compared with the values it held before, so that a
//! change of spelling is not taken for a change of value: the dry run's `altered-values` and a rehearsed
//! command's values changed.

use std::collections::HashMap;

use super::{Session, value};
use crate::error::Result;

/// How an old and a new value are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// As values of their own types (`12.00` and `12` are equal): where the server has an operator for
    /// the pair.
    Typed,
    /// As values of the new type (named as `format_type` names it), the old one cast to it: for a new
    /// type whose text is a canonical form ([`canonical`]).
    AsNew(String),
    /// As text, which every type has: `007` and `7` differ.
    Text,
}

impl Compare {
    /// The expressions that compare `old` and `new` this way: `(old, new)`.
    pub fn sides(&self, old: &str, new: &str) -> (String, String) {
        match self {
            Compare::Typed => (old.to_owned(), new.to_owned()),
            Compare::AsNew(ty) => (format!("({old})::{ty}"), new.to_owned()),
            Compare::Text => (format!("({old})::text"), format!("({new})::text")),
        }
    }

    /// `old IS DISTINCT FROM new`, compared this way.
    pub fn differs(&self, old: &str, new: &str) -> String {
        let (old, new) = self.sides(old, new);
        format!("{old} IS DISTINCT FROM {new}")
    }
}

/// Whether a type's text is a canonical form of its value: two texts that read as the same value (JSON
/// with other whitespace or key order, a UUID in capitals, `2024-1-5`, `yes`) are the same value, so a
/// change from text to such a type that keeps the value loses nothing. `base`: the type's name, or its
/// elements' (an array) or its base type's (a domain). Numbers are not among them: a text's `007` or
/// `1.50` says more than the number.
pub fn canonical(base: &str) -> bool {
    const CANONICAL: &[&str] = &[
        "json",
        "jsonb",
        "uuid",
        "date",
        "time",
        "timetz",
        "timestamp",
        "timestamptz",
        "interval",
        "inet",
        "cidr",
        "macaddr",
        "macaddr8",
        "bool",
    ];
    CANONICAL.contains(&base)
}

/// The columns of `relation`, by name: each one's type as `format_type` names it, and the name of its
/// base (the type itself, its elements' for an array, its base type's for a domain). Empty when there is
/// no such relation.
pub async fn column_types(session: &Session, relation: &str) -> Result<HashMap<String, (String, String)>> {
    const SQL: &str = "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), b.typname::text
                       FROM pg_catalog.pg_attribute a
                       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                       JOIN pg_catalog.pg_type b
                         ON b.oid = COALESCE(NULLIF(t.typelem, 0), NULLIF(t.typbasetype, 0), t.oid)
                       WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped";
    let rows = session.query(SQL, &[&relation]).await?;
    rows.iter().map(|row| Ok((value(row, 0, SQL)?, (value(row, 1, SQL)?, value(row, 2, SQL)?)))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_way_compares_the_old_value_with_the_new_one() {
        assert_eq!(Compare::Typed.differs("o.v", "t.v"), "o.v IS DISTINCT FROM t.v");
        assert_eq!(Compare::AsNew("jsonb".into()).differs("o.v", "t.v"), "(o.v)::jsonb IS DISTINCT FROM t.v");
        assert_eq!(Compare::Text.differs("o.v", "t.v"), "(o.v)::text IS DISTINCT FROM (t.v)::text");
        assert!(canonical("jsonb") && canonical("timestamptz") && !canonical("int4") && !canonical("numeric"));
    }
}
