//! The kinds of schema object: pg_dump's TOC labels (`TABLE`, `FK CONSTRAINT`, ...) as an enum, so that the
//! engine and the restore match on kinds instead of comparing strings. The label is the kind's text
//! everywhere it leaves the program: in the archive's catalog, in `--list` and in `--json` plans. An archive
//! of a newer pgsafe may hold a kind this one does not know; it reads as [`ObjectKind::Other`] and is written
//! back unchanged, so that such an archive still opens.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares [`ObjectKind`] with its labels, so that each label is written once.
macro_rules! object_kinds {
    ($($(#[$doc:meta])* $variant:ident = $label:literal,)*) => {
        /// The kind of a schema object, as pg_dump's TOC labels it. Declared in pg_dump's order of kinds.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ObjectKind {
            $($(#[$doc])* $variant,)*
            /// A label this pgsafe does not know, from an archive of a newer one. Never holds a known label:
            /// [`ObjectKind::from_label`] reads those as their own variants.
            Other(String),
        }

        impl ObjectKind {
            /// Every kind this pgsafe knows.
            pub const ALL: &[ObjectKind] = &[$(ObjectKind::$variant,)*];

            /// pg_dump's label for the kind.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ObjectKind::$variant => $label,)*
                    ObjectKind::Other(label) => label,
                }
            }

            /// The kind a label names; [`ObjectKind::Other`] for a label this pgsafe does not know.
            pub fn from_label(label: &str) -> ObjectKind {
                match label {
                    $($label => ObjectKind::$variant,)*
                    _ => ObjectKind::Other(label.to_string()),
                }
            }
        }
    };
}

object_kinds! {
    Schema = "SCHEMA",
    ProceduralLanguage = "PROCEDURAL LANGUAGE",
    Collation = "COLLATION",
    Transform = "TRANSFORM",
    Extension = "EXTENSION",
    /// `CREATE TYPE s.t;`, the first step of a base type (or a range type with a canonical function),
    /// which its I/O functions need before the type itself.
    ShellType = "SHELL TYPE",
    Type = "TYPE",
    Domain = "DOMAIN",
    Cast = "CAST",
    Function = "FUNCTION",
    Procedure = "PROCEDURE",
    Aggregate = "AGGREGATE",
    AccessMethod = "ACCESS METHOD",
    Operator = "OPERATOR",
    OperatorFamily = "OPERATOR FAMILY",
    OperatorClass = "OPERATOR CLASS",
    Conversion = "CONVERSION",
    TextSearchParser = "TEXT SEARCH PARSER",
    TextSearchTemplate = "TEXT SEARCH TEMPLATE",
    TextSearchDictionary = "TEXT SEARCH DICTIONARY",
    TextSearchConfiguration = "TEXT SEARCH CONFIGURATION",
    ForeignDataWrapper = "FOREIGN DATA WRAPPER",
    Server = "SERVER",
    Table = "TABLE",
    Sequence = "SEQUENCE",
    View = "VIEW",
    MaterializedView = "MATERIALIZED VIEW",
    ForeignTable = "FOREIGN TABLE",
    /// `ALTER TABLE ONLY parent ATTACH PARTITION child ...`, a partition's second step.
    TableAttach = "TABLE ATTACH",
    /// A table's or a domain's CHECK constraint made apart from its table or domain.
    CheckConstraint = "CHECK CONSTRAINT",
    /// A column default: `ALTER TABLE ONLY t ALTER COLUMN c SET DEFAULT e;`.
    Default = "DEFAULT",
    SequenceOwnedBy = "SEQUENCE OWNED BY",
    UserMapping = "USER MAPPING",
    /// The owner, privileges and comments of large objects, whose rows are data.
    LargeObject = "LARGE OBJECT",
    /// A system object's privileges as the user changed them; no statement of its own.
    Acl = "ACL",
    /// The real query of a view in a dependency loop (`CREATE OR REPLACE VIEW`), made by the engine
    /// after a stand-in of the same columns.
    ViewDefinition = "VIEW DEFINITION",
    /// A primary key, unique or exclusion constraint (and from PostgreSQL 18, NOT NULL).
    Constraint = "CONSTRAINT",
    Index = "INDEX",
    /// `ALTER INDEX parent ATTACH PARTITION child;`.
    IndexAttach = "INDEX ATTACH",
    Statistics = "STATISTICS",
    Rule = "RULE",
    Trigger = "TRIGGER",
    FkConstraint = "FK CONSTRAINT",
    /// `ALTER TABLE t ENABLE ROW LEVEL SECURITY;`.
    RowSecurity = "ROW SECURITY",
    Policy = "POLICY",
    Publication = "PUBLICATION",
    PublicationTable = "PUBLICATION TABLE",
    PublicationTablesInSchema = "PUBLICATION TABLES IN SCHEMA",
    Subscription = "SUBSCRIPTION",
    /// `ALTER DEFAULT PRIVILEGES ...`.
    DefaultAcl = "DEFAULT ACL",
    EventTrigger = "EVENT TRIGGER",
    /// `REFRESH MATERIALIZED VIEW`, after the privileges.
    MaterializedViewData = "MATERIALIZED VIEW DATA",
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ObjectKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ObjectKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let label = Cow::<'de, str>::deserialize(deserializer)?;
        Ok(ObjectKind::from_label(&label))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::schema::objects::OBJECT_QUERIES;

    #[test]
    fn every_kind_round_trips_through_the_archive_as_its_label() {
        for kind in ObjectKind::ALL {
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(&serde_json::from_str::<ObjectKind>(&json).unwrap(), kind);
            assert_eq!(&ObjectKind::from_label(kind.as_str()), kind);
            assert!(!matches!(kind, ObjectKind::Other(_)));
        }
        let labels: BTreeSet<&str> = ObjectKind::ALL.iter().map(ObjectKind::as_str).collect();
        assert_eq!(labels.len(), ObjectKind::ALL.len(), "two kinds share a label");
    }

    #[test]
    fn an_archive_of_a_newer_pgsafe_opens_and_keeps_the_kinds_it_does_not_know() {
        let json = r#"{"kind":"PUBLICATION SEQUENCE","other":"TABLE"}"#;
        #[derive(Serialize, Deserialize)]
        struct Step {
            kind: ObjectKind,
            other: ObjectKind,
        }
        let step: Step = serde_json::from_str(json).unwrap();
        assert_eq!(step.kind, ObjectKind::Other("PUBLICATION SEQUENCE".to_string()));
        assert_eq!(step.other, ObjectKind::Table);
        assert_eq!(serde_json::to_string(&step).unwrap(), json);
        assert_eq!(step.kind.to_string(), "PUBLICATION SEQUENCE");
        // Labels are exact: pg_dump's are uppercase.
        assert_eq!(ObjectKind::from_label("table"), ObjectKind::Other("table".to_string()));
    }

    /// The labels an object query's `kind` column can hold. By the convention of `sql/README.md`, that column
    /// is written `<expression> AS kind` (a label, or a CASE whose THEN and ELSE branches are labels) in the
    /// first branch of a query, and as a label on a line of its own in later `UNION ALL` branches.
    fn labels_in_kind_column(sql: &str) -> BTreeSet<String> {
        let label = regex::Regex::new(r"(?:^|\bTHEN |\bELSE )'([A-Z][A-Z ]*)'").unwrap();
        let alone = regex::Regex::new(r"^'([A-Z][A-Z ]*)',$").unwrap();
        let mut found = BTreeSet::new();
        for line in sql.lines().map(str::trim) {
            let line = line.split("--").next().unwrap_or("").trim();
            let defines_kind = line.trim_end_matches(',').ends_with(" AS kind");
            if defines_kind {
                found.extend(label.captures_iter(line).map(|c| c[1].to_string()));
            } else if let Some(c) = alone.captures(line) {
                found.insert(c[1].to_string());
            }
        }
        found
    }

    #[test]
    fn the_kinds_are_those_the_object_queries_produce() {
        let mut from_sql = BTreeSet::new();
        for q in OBJECT_QUERIES {
            let labels = labels_in_kind_column(q.sql);
            assert!(!labels.is_empty(), "no kind found in `{}`: does its `kind` column follow sql/README.md?", q.name);
            from_sql.extend(labels);
        }
        // The engine makes this one itself, from a view's row.
        let from_code = [ObjectKind::ViewDefinition];
        let known: BTreeSet<String> =
            ObjectKind::ALL.iter().filter(|k| !from_code.contains(k)).map(|k| k.as_str().to_string()).collect();
        let missing: Vec<&String> = from_sql.difference(&known).collect();
        assert!(missing.is_empty(), "object queries produce kinds `ObjectKind` lacks: {missing:?}");
        let unused: Vec<&String> = known.difference(&from_sql).collect();
        assert!(unused.is_empty(), "no object query produces these kinds: {unused:?}");
    }

    #[test]
    fn the_kind_column_is_found_in_each_way_the_queries_write_it() {
        let sql = "SELECT 1,\n       CASE WHEN x = 'S' THEN 'A B' ELSE 'C' END::text AS kind,\n       'NOT A KIND' AS name\n\
                   UNION ALL\nSELECT 2,\n       'D',\n  -- 'E',\n       'F'::text AS kind, -- 'G'\n\
                   SELECT CASE WHEN t = 'x' THEN 's'::\"char\" ELSE t END AS kind";
        let found: Vec<String> = labels_in_kind_column(sql).into_iter().collect();
        assert_eq!(found, ["A B", "C", "D", "F"]);
    }
}
