//! Column types as the parser gives them, and what changing one into another costs: nothing (binary
//! coercible, a catalog change), a rewrite, or a rewrite that can fail or lose precision.

use pg_query::NodeEnum;
use pg_query::protobuf::{TypeName, a_const};

/// A column type: its canonical name (`int4`, `varchar`, `timestamptz`), its modifiers (`varchar(20)`:
/// `[20]`; `numeric(10,2)`: `[10, 2]`) and whether it is an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    pub name: String,
    pub mods: Vec<i64>,
    pub array: bool,
}

impl ColumnType {
    /// The type of a parsed `TypeName`, with PostgreSQL's aliases folded (`int` and `integer` are
    /// `int4`, `character varying` is `varchar`, `decimal` is `numeric`).
    pub fn of(type_name: &TypeName) -> Option<ColumnType> {
        let last = type_name.names.last()?;
        let Some(NodeEnum::String(s)) = &last.node else { return None };
        // The parser has folded an unquoted name to lower case already; a quoted one keeps its case
        // (`"Mood"` and `mood` are two types).
        let name = match s.sval.as_str() {
            "int" | "integer" => "int4".to_owned(),
            "bigint" => "int8".to_owned(),
            "smallint" => "int2".to_owned(),
            "decimal" => "numeric".to_owned(),
            "character varying" => "varchar".to_owned(),
            // Unquoted, `char(n)` and `character(n)` come as `bpchar`; a quoted `"char"` is the one-byte
            // internal type, no `char(n)`.
            "character" => "bpchar".to_owned(),
            "serial4" => "serial".to_owned(),
            "serial8" => "bigserial".to_owned(),
            "serial2" => "smallserial".to_owned(),
            other => other.to_owned(),
        };
        let mods = type_name
            .typmods
            .iter()
            .filter_map(|m| match &m.node {
                Some(NodeEnum::AConst(c)) => match &c.val {
                    Some(a_const::Val::Ival(i)) => Some(i64::from(i.ival)),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        Some(ColumnType { name, mods, array: !type_name.array_bounds.is_empty() })
    }

    /// The type written as `format_type` writes it (`character varying(50)`, `numeric(10,2)`), as the
    /// live catalog gives it.
    pub fn parse(text: &str) -> Option<ColumnType> {
        let parsed = pg_query::parse(&format!("SELECT NULL::{text}"), 0).ok()?;
        let raw = parsed.protobuf.stmts.first()?.stmt.as_ref()?;
        let Some(NodeEnum::SelectStmt(select)) = &raw.node else { return None };
        let Some(NodeEnum::ResTarget(target)) = &select.target_list.first()?.node else { return None };
        let Some(NodeEnum::TypeCast(cast)) = &target.val.as_deref()?.node else { return None };
        ColumnType::of(cast.type_name.as_ref()?)
    }

    /// A serial pseudo-type (its default calls `nextval`).
    pub fn is_serial(&self) -> bool {
        matches!(self.name.as_str(), "serial" | "bigserial" | "smallserial")
    }

    /// Readable, by its SQL name: `varchar(20)`, `numeric(10,2)`, `integer[]`, `"Mood"`.
    pub fn display(&self) -> String {
        let mut text = match self.name.as_str() {
            "int2" => "smallint".to_owned(),
            "int4" => "integer".to_owned(),
            "int8" => "bigint".to_owned(),
            "float4" => "real".to_owned(),
            "float8" => "double precision".to_owned(),
            "bool" => "boolean".to_owned(),
            "bpchar" => "char".to_owned(),
            // Quoted when folding would change it; a keyword (`varchar`, `numeric`) reads as the type.
            name if name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ' ') => {
                name.to_owned()
            }
            name => format!("\"{}\"", name.replace('"', "\"\"")),
        };
        if !self.mods.is_empty() {
            let mods: Vec<String> = self.mods.iter().map(ToString::to_string).collect();
            text.push_str(&format!("({})", mods.join(",")));
        }
        if self.array {
            text.push_str("[]");
        }
        text
    }
}

/// What changing a column from one type to another does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeChange {
    /// Binary coercible: only the catalog changes (an ACCESS EXCLUSIVE lock, briefly).
    Free,
    /// `timestamp` to `timestamptz`: a rewrite unless the session's TimeZone is UTC (PostgreSQL 12+).
    TimeZone,
    /// The table and its indexes are rewritten.
    Rewrite,
    /// Rewritten, and values that do not fit fail the statement or are rounded.
    Narrowing,
}

const INTEGERS: [&str; 3] = ["int2", "int4", "int8"];

fn integer_width(name: &str) -> Option<usize> {
    INTEGERS.iter().position(|&n| n == name)
}

/// What changing a column of type `from` to `to` does.
pub fn change(from: &ColumnType, to: &ColumnType) -> TypeChange {
    use TypeChange::*;
    if from.array != to.array {
        return Rewrite;
    }
    let (f, t) = (from.name.as_str(), to.name.as_str());
    let (fm, tm) = (from.mods.as_slice(), to.mods.as_slice());
    match (f, t) {
        _ if from == to => Free,
        ("varchar", "varchar") => match (fm.first(), tm.first()) {
            (_, None) => Free,
            (Some(a), Some(b)) if b >= a => Free,
            _ => Narrowing,
        },
        ("varchar", "text") | ("cidr", "inet") | ("xml", "text") => Free,
        ("text", "varchar") => {
            if tm.is_empty() {
                Free
            } else {
                Narrowing
            }
        }
        ("numeric", "numeric") => match (fm, tm) {
            (_, []) => Free,
            ([p, s], [p2, s2]) if p2 >= p && s2 == s => Free,
            ([p], [p2]) if p2 >= p => Free,
            ([p], [p2, 0]) if p2 >= p => Free,
            _ => Narrowing,
        },
        ("varbit", "varbit") => match (fm.first(), tm.first()) {
            (_, None) => Free,
            (Some(a), Some(b)) if b >= a => Free,
            _ => Narrowing,
        },
        ("timestamp", "timestamptz") => TimeZone,
        ("numeric" | "float4" | "float8", t) if integer_width(t).is_some() => Narrowing,
        (f, t) if integer_width(f).is_some() && integer_width(t).is_some() => {
            if integer_width(t) >= integer_width(f) {
                Rewrite
            } else {
                Narrowing
            }
        }
        ("bpchar", "bpchar") => {
            if tm.first() >= fm.first() {
                Rewrite
            } else {
                Narrowing
            }
        }
        ("text" | "varchar", "bpchar") => Narrowing,
        ("timestamptz", "timestamp" | "date") | ("timestamp", "date") | ("float8", "float4") => Narrowing,
        // `char(n)` to a `varchar` as long: its values fit (their trailing blanks go).
        ("bpchar", "varchar") => match (fm.first(), tm.first()) {
            (_, None) => Rewrite,
            (Some(a), Some(b)) if b >= a => Rewrite,
            _ => Narrowing,
        },
        // Any other type's text in a bounded `varchar` or `char` may not fit (a jsonb's text, a big number).
        (_, "varchar" | "bpchar") if !tm.is_empty() => Narrowing,
        _ => Rewrite,
    }
}

/// Whether a change to `to` can be free from some other type (text, an unconstrained varchar or
/// numeric, a wider varchar or numeric, inet), so that without the column's current type the linter
/// cannot tell a rewrite.
pub fn may_be_free(to: &ColumnType) -> bool {
    matches!(to.name.as_str(), "text" | "varchar" | "numeric" | "inet" | "varbit")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> ColumnType {
        ColumnType::parse(text).unwrap_or_else(|| panic!("`{text}` is no type"))
    }

    #[test]
    fn aliases_fold_to_one_name_and_modifiers_are_kept() {
        assert_eq!(t("integer").name, "int4");
        assert_eq!(t("int").name, "int4");
        assert_eq!(t("character varying(50)"), ColumnType { name: "varchar".into(), mods: vec![50], array: false });
        assert_eq!(t("numeric(10,2)").mods, [10, 2]);
        assert_eq!(t("decimal(10,2)").name, "numeric");
        assert_eq!(t("timestamp with time zone").name, "timestamptz");
        assert_eq!(t("timestamp without time zone").name, "timestamp");
        assert_eq!(t("character(3)").name, "bpchar");
        assert!(t("text[]").array);
    }

    #[test]
    fn binary_coercible_changes_are_free_and_the_rest_rewrite_or_narrow() {
        use TypeChange::*;
        let cases = [
            ("varchar(50)", "varchar(100)", Free),
            ("varchar(50)", "varchar", Free),
            ("varchar(50)", "text", Free),
            ("text", "varchar", Free),
            ("numeric(10,2)", "numeric(12,2)", Free),
            ("numeric(10,2)", "numeric", Free),
            ("cidr", "inet", Free),
            ("varchar(100)", "varchar(20)", Narrowing),
            ("text", "varchar(20)", Narrowing),
            ("numeric(10,2)", "numeric(12,1)", Narrowing),
            ("numeric(10,2)", "integer", Narrowing),
            ("bigint", "integer", Narrowing),
            ("integer", "bigint", Rewrite),
            ("text", "jsonb", Rewrite),
            ("timestamp", "timestamptz", TimeZone),
            ("jsonb", "varchar(64)", Narrowing),
            ("bigint", "varchar(5)", Narrowing),
            ("jsonb", "text", Rewrite),
            ("char(10)", "varchar(10)", Rewrite),
            ("char(10)", "varchar(5)", Narrowing),
        ];
        for (from, to, expected) in cases {
            assert_eq!(change(&t(from), &t(to)), expected, "{from} -> {to}");
        }
    }
}
