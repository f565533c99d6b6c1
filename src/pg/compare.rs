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
    /// The new value read back as the old type (named as `pg_type` names it), compared with the old one:
    /// a number made a floating-point one or the reverse. The server would compare the pair as `float8`,
    /// where `5.12345678901234567890` and its `float8` are equal, and so are `9007199254741001` and
    /// `9007199254741000`; as `numeric`, the cast of a `float8` keeps 15 digits, so the exact
    /// `9007199254740992` read back as `9007199254740990`, and `1.2345678901234567` made `numeric` (which
    /// keeps those 15 digits) compared equal to itself. What reads back as it was is kept, whichever way.
    AsOld(String),
    /// As values of a type of the new type's family (named as `format_type` names it), both cast to it:
    /// for a new type whose text is a canonical form ([`canonical`]). A date or a time compares as the
    /// widest of its family (`timestamptz`, `time`, `interval`), so that what the cast to the new type
    /// itself drops (the time of `2024-01-05 13:45` made a `date`, an offset, fractions of a second) is no
    /// equality.
    AsNew(String),
    /// As `jsonb` (named as `format_type` names the new type, a domain over `jsonb` too), as
    /// [`AsNew`](Compare::AsNew), from a JSON text (a text or `json`): where an object of the text names a
    /// key twice with other values, `jsonb` keeps the last and the earlier values are gone, though the two
    /// compare equal as `jsonb`. Such an old value counts as changed ([`Compare::lost_in_cast`]).
    AsJsonb(String),
    /// As text, which every type has: `007` and `7` differ.
    Text,
    /// An array made a value of its elements' type (`USING tags[1]`): the old array as its only element,
    /// compared with the new value the inner way. An array of more elements (or of more dimensions) has
    /// no only element and reads as NULL, which no new value equals: reduced to one, it lost the others.
    Element(Box<Compare>),
}

impl Compare {
    /// The expressions that compare `old` and `new` this way: `(old, new)`.
    pub fn sides(&self, old: &str, new: &str) -> (String, String) {
        match self {
            Compare::Typed => (old.to_owned(), new.to_owned()),
            Compare::AsOld(ty) => (old.to_owned(), format!("({new})::{ty}")),
            Compare::AsNew(ty) | Compare::AsJsonb(ty) => (format!("({old})::{ty}"), format!("({new})::{ty}")),
            Compare::Text => (format!("({old})::text"), format!("({new})::text")),
            Compare::Element(inner) => inner.sides(
                &format!(
                    "CASE WHEN pg_catalog.cardinality({old}) = 1 AND pg_catalog.array_ndims({old}) = 1 \
                     THEN ({old})[pg_catalog.array_lower({old}, 1)] END"
                ),
                new,
            ),
        }
    }

    /// The condition of the old values that hold something to lose: not NULL, and for an array made its
    /// element, not empty either (`{}` made NULL, as `tags[1]` makes it, loses nothing).
    pub fn holds(&self, old: &str) -> String {
        match self {
            Compare::Element(_) => format!("pg_catalog.cardinality({old}) > 0"),
            _ => format!("{old} IS NOT NULL"),
        }
    }

    /// The ways to compare a value whose type changed from `old_type` (as `format_type` names it, its
    /// base `old_base`) to `new` (its base `new_base`): as [`ways`](Compare::ways), each through the only
    /// element of the old value ([`Compare::Element`]) where an array was made a value that is none.
    pub fn ways_from(old_type: &str, old_base: &str, new: &str, new_base: &str) -> Vec<Compare> {
        let ways = Compare::ways(old_base, new, new_base);
        if old_type.ends_with("[]") && !new.ends_with("[]") {
            ways.into_iter().map(|w| Compare::Element(Box::new(w))).collect()
        } else {
            ways
        }
    }

    /// The ways to compare a value whose type changed from `old` (its type or base type, as `format_type`
    /// or `pg_type` names it) to `new` (`new_base` its base type's name), in order: the first the server
    /// can run is the one (no operator, no cast, or an old value that is no input of the new type: the
    /// next).
    pub fn ways(old: &str, new: &str, new_base: &str) -> Vec<Compare> {
        let mut ways = Vec::new();
        if let (Some(a), Some(b)) = (exact(old), exact(new_base))
            && a != b
        {
            ways.push(Compare::AsOld(old.split('(').next().unwrap_or(old).trim().to_owned()));
        }
        ways.push(Compare::Typed);
        // Only a text, or a value of the same family: what the cast of another type to the new one drops
        // is no spelling (`5::boolean` is `true`, as `1::boolean` is).
        if canonical(new_base) && (textual(old) || family(old).is_some_and(|f| family(new_base) == Some(f))) {
            let ty = widest(new_base).unwrap_or(new).to_owned();
            let json_text = textual(old) || old.split('(').next().is_some_and(|o| o.trim() == "json");
            ways.push(match new_base == "jsonb" && json_text && !new.ends_with("[]") {
                true => Compare::AsJsonb(ty),
                false => Compare::AsNew(ty),
            });
        }
        ways.push(Compare::Text);
        ways
    }

    /// `old IS DISTINCT FROM new`, compared this way, or the old value lost something in the cast itself
    /// ([`Compare::lost_in_cast`]).
    pub fn differs(&self, old: &str, new: &str) -> String {
        let lost = self.lost_in_cast(old);
        let (old, new) = self.sides(old, new);
        match lost {
            Some(lost) => format!("({old} IS DISTINCT FROM {new} OR {lost})"),
            None => format!("{old} IS DISTINCT FROM {new}"),
        }
    }

    /// The condition of an old value that the cast to the new type itself loses something of, so that no
    /// new value can hold it whole: a JSON text made `jsonb` ([`Compare::AsJsonb`]) with an object, at any
    /// depth, that names a key twice with values `jsonb` tells apart (`{"a": 1, "a": 2}` keeps `2`; `{"a":
    /// 1, "a": 1.0}` loses nothing). None for every other way.
    ///
    /// The search of every object is costly (about 40 µs a value); it runs only for a text that may name a
    /// key twice: one with more `:` than its `jsonb`'s text has. Without a duplicate the two have as many,
    /// since `jsonb` keeps every member and every string's `:`, unless the text spells one `\u003a`, which
    /// `jsonb` writes as `:` (such a text is searched too); a member `jsonb` drops takes its `:` with it.
    pub fn lost_in_cast(&self, old: &str) -> Option<String> {
        let Compare::AsJsonb(_) = self else { return None };
        let colons = |text: &str| {
            format!("(pg_catalog.length({text}) - pg_catalog.length(pg_catalog.replace({text}, ':', '')))")
        };
        let (text, jsonb) =
            (format!("({old})::pg_catalog.text"), format!("({old})::pg_catalog.jsonb::pg_catalog.text"));
        Some(format!(
            "CASE WHEN {} > {} OR pg_catalog.strpos(pg_catalog.lower({text}), '\\u003a') > 0 THEN EXISTS (WITH RECURSIVE node(v) AS ( \
               SELECT ({old})::pg_catalog.json \
               UNION ALL \
               SELECT inner_value.v FROM node CROSS JOIN LATERAL ( \
                 SELECT e.value FROM pg_catalog.json_each( \
                   CASE WHEN pg_catalog.json_typeof(node.v) = 'object' THEN node.v END) e \
                 UNION ALL \
                 SELECT e.value FROM pg_catalog.json_array_elements( \
                   CASE WHEN pg_catalog.json_typeof(node.v) = 'array' THEN node.v END) e) inner_value(v)) \
             SELECT FROM node WHERE pg_catalog.json_typeof(node.v) = 'object' \
               AND (SELECT count(DISTINCT k.key) < count(DISTINCT (k.key, (k.value)::pg_catalog.jsonb)) \
                      FROM pg_catalog.json_each(node.v) k)) ELSE false END",
            colons(&text),
            colons(&jsonb)
        ))
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

/// Whether a number type (named as `pg_type` or `format_type` names it, with or without its length) is
/// exact (integers, `numeric`) or floating-point; `None` for other types.
fn exact(ty: &str) -> Option<bool> {
    match ty.split('(').next().unwrap_or(ty).trim() {
        "int2" | "int4" | "int8" | "numeric" | "smallint" | "integer" | "bigint" => Some(true),
        "float4" | "float8" | "real" | "double precision" => Some(false),
        _ => None,
    }
}

/// Whether a type (named as `pg_type` or `format_type` names it, with or without its length) holds text.
fn textual(ty: &str) -> bool {
    matches!(
        ty.split('(').next().unwrap_or(ty).trim(),
        "text" | "varchar" | "character varying" | "bpchar" | "character" | "char" | "name" | "citext" | "unknown"
    )
}

/// The family of a type whose text is canonical: the types that hold the same kind of value.
fn family(ty: &str) -> Option<&'static str> {
    match ty.split('(').next().unwrap_or(ty).trim() {
        "json" | "jsonb" => Some("json"),
        "date" | "timestamp" | "timestamptz" | "timestamp without time zone" | "timestamp with time zone" => {
            Some("timestamp")
        }
        "time" | "timetz" | "time without time zone" | "time with time zone" => Some("time"),
        "interval" => Some("interval"),
        "inet" | "cidr" => Some("inet"),
        "macaddr" | "macaddr8" => Some("macaddr"),
        "uuid" => Some("uuid"),
        "bool" | "boolean" => Some("bool"),
        _ => None,
    }
}

/// The widest type of a date or time type's family, without a precision: what any of them holds.
fn widest(base: &str) -> Option<&'static str> {
    match base {
        "date" | "timestamp" | "timestamptz" => Some("timestamptz"),
        "time" => Some("time"),
        "timetz" => Some("timetz"),
        "interval" => Some("interval"),
        _ => None,
    }
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
        assert_eq!(Compare::AsNew("jsonb".into()).differs("o.v", "t.v"), "(o.v)::jsonb IS DISTINCT FROM (t.v)::jsonb");
        assert_eq!(Compare::AsOld("float4".into()).differs("o.v", "t.v"), "o.v IS DISTINCT FROM (t.v)::float4");
        assert_eq!(Compare::Text.differs("o.v", "t.v"), "(o.v)::text IS DISTINCT FROM (t.v)::text");
        assert!(canonical("jsonb") && canonical("timestamptz") && !canonical("int4") && !canonical("numeric"));
    }

    #[test]
    fn only_a_json_text_made_jsonb_is_searched_for_keys_named_twice() {
        let as_jsonb = |old: &str, new: &str, base: &str| {
            Compare::ways(old, new, base).iter().any(|w| matches!(w, Compare::AsJsonb(_)))
        };
        assert!(as_jsonb("text", "jsonb", "jsonb") && as_jsonb("character varying(20)", "jsonb", "jsonb"));
        assert!(as_jsonb("json", "jsonb", "jsonb") && as_jsonb("text", "doc", "jsonb"), "a domain over jsonb too");
        assert!(!as_jsonb("jsonb", "json", "json") && !as_jsonb("text", "json", "json"), "json keeps every key");
        assert!(!as_jsonb("text", "jsonb[]", "jsonb") && !as_jsonb("int4", "jsonb", "jsonb"));
        assert_eq!(Compare::AsNew("jsonb".into()).lost_in_cast("o.v"), None);
        let differs = Compare::AsJsonb("jsonb".into()).differs("o.v", "t.v");
        assert!(differs.starts_with("((o.v)::jsonb IS DISTINCT FROM (t.v)::jsonb OR CASE WHEN"), "{differs}");
    }

    #[test]
    fn numbers_made_floating_point_or_exact_read_back_as_the_old_type_and_times_in_the_widest_of_their_family() {
        let ways = |old: &str, new: &str, base: &str| Compare::ways(old, new, base);
        let back = |ty: &str| Compare::AsOld(ty.into());
        assert_eq!(ways("numeric", "double precision", "float8"), [back("numeric"), Compare::Typed, Compare::Text]);
        assert_eq!(ways("float4", "bigint", "int8"), [back("float4"), Compare::Typed, Compare::Text]);
        assert_eq!(ways("float8", "numeric", "numeric"), [back("float8"), Compare::Typed, Compare::Text]);
        assert_eq!(ways("numeric(10,2)", "numeric(10,1)", "numeric"), [Compare::Typed, Compare::Text]);
        assert_eq!(
            ways("text", "timestamp(0) without time zone", "timestamp"),
            [Compare::Typed, Compare::AsNew("timestamptz".into()), Compare::Text]
        );
        assert_eq!(ways("text", "jsonb", "jsonb"), [Compare::Typed, Compare::AsJsonb("jsonb".into()), Compare::Text]);
        assert_eq!(ways("json", "jsonb", "jsonb"), [Compare::Typed, Compare::AsJsonb("jsonb".into()), Compare::Text]);
        assert_eq!(
            ways("date", "timestamp with time zone", "timestamptz"),
            [Compare::Typed, Compare::AsNew("timestamptz".into()), Compare::Text]
        );
        // A number made boolean: `5::boolean` is `true` as `1::boolean` is, so the cast proves nothing.
        assert_eq!(ways("int4", "boolean", "bool"), [Compare::Typed, Compare::Text]);
        assert_eq!(ways("integer", "uuid", "uuid"), [Compare::Typed, Compare::Text]);
    }

    #[test]
    fn an_array_made_a_value_of_its_elements_type_is_compared_through_its_only_element() {
        let element = |w: Compare| Compare::Element(Box::new(w));
        assert_eq!(
            Compare::ways_from("integer[]", "int4", "integer", "int4"),
            [element(Compare::Typed), element(Compare::Text)]
        );
        assert_eq!(Compare::ways_from("integer[]", "int4", "bigint[]", "int8"), [Compare::Typed, Compare::Text]);
        assert_eq!(Compare::ways_from("integer", "int4", "bigint", "int8"), [Compare::Typed, Compare::Text]);
        let one = "CASE WHEN pg_catalog.cardinality(o.v) = 1 AND pg_catalog.array_ndims(o.v) = 1 \
                   THEN (o.v)[pg_catalog.array_lower(o.v, 1)] END";
        assert_eq!(element(Compare::Text).differs("o.v", "t.v"), format!("({one})::text IS DISTINCT FROM (t.v)::text"));
        assert_eq!(element(Compare::Typed).holds("o.v"), "pg_catalog.cardinality(o.v) > 0");
        assert_eq!(Compare::Typed.holds("o.v"), "o.v IS NOT NULL");
    }
}
