//! What the live database says about the objects a migration names, read once for all the files of a
//! run, in a read-only session under a statement timeout: row estimates and sizes (a hazard on a small
//! table is a hint), columns and their types (which type changes are free), indexes (one that exists
//! already; a foreign key without one), validated `CHECK (col IS NOT NULL)` constraints, the server's
//! version, the labels of enum types, the domains with constraints, the tables of indexes and their
//! owners, which names are views, and whether a table exists at all.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Deserialize;

use super::Named;
use super::pass::{RelName, not_null_check_columns};
use super::types::ColumnType;
use crate::error::{Error, ErrorKind, Result};
use crate::pg::{ConnectOptions, Session, value};

/// How long one of lint's catalog queries may run: lint must never weigh on the server it reads.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

const TABLES: &str = include_str!("sql/tables.sql");
const INDEXES: &str = include_str!("sql/indexes.sql");
const ENUMS: &str = include_str!("sql/enums.sql");
const FUNCTIONS: &str = include_str!("sql/functions.sql");
const DOMAINS: &str = include_str!("sql/domains.sql");
const USER: &str = include_str!("sql/user.sql");
const VIEWS: &str = include_str!("sql/views.sql");
const CASCADES: &str = include_str!("sql/cascades.sql");

/// The database's facts about the named objects.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The server's major version (`15`).
    pub server_version: u32,
    /// By `RelName::key`.
    pub tables: HashMap<String, TableFacts>,
    /// Indexes that exist, by `RelName::key`.
    pub indexes: HashSet<String>,
    /// The table of each index that exists, by the index's `RelName::key`.
    pub index_tables: HashMap<String, RelName>,
    /// The columns of each index that exists, in key order (an expression left out), by its key.
    pub index_columns: HashMap<String, Vec<String>>,
    /// The role that owns the table of each index that exists (and so the index), by the index's key.
    pub index_owners: HashMap<String, String>,
    /// The roles `CURRENT_USER` and `SESSION_USER` name in the session that read the facts.
    pub current_user: String,
    pub session_user: String,
    /// The views among the names, by `RelName::key`.
    pub views: HashSet<String>,
    /// The labels of each enum type, in order, by `RelName::key`.
    pub enums: HashMap<String, Vec<String>>,
    /// Whether the functions of each name a new column's default calls are volatile (any of them).
    pub volatile_functions: HashMap<String, bool>,
    /// The types of new columns that are domains with constraints, by `RelName::key`.
    pub constrained_domains: HashSet<String>,
    /// The foreign keys a `DELETE` from each named table checks, by the table's `RelName::key`: those that
    /// reference it, and those that reference the tables its deletes cascade to.
    pub delete_checks: HashMap<String, Vec<KeyChecked>>,
    /// The tables the facts were read for, by `RelName::key`: a table among them that `tables` lacks is
    /// not in the database; of another, nothing is known. Empty: every table the database has is in
    /// `tables`.
    pub asked: HashSet<String>,
}

/// One table's facts.
#[derive(Debug, Clone, Default)]
pub struct TableFacts {
    /// The planner's estimate; `None` when the table was never analyzed.
    pub rows: Option<u64>,
    /// The main fork's size in bytes.
    pub bytes: u64,
    pub partitioned: bool,
    pub columns: HashMap<String, ColumnType>,
    /// Each index's columns, in key order (an expression is left out).
    pub indexes: Vec<Vec<String>>,
    /// The validated `CHECK` constraints that prove columns NOT NULL (`CHECK (col IS NOT NULL)`), by
    /// name: those columns. A statement that drops one by name takes its proof away.
    pub not_null_checks: HashMap<String, Vec<String>>,
    /// Columns that are `NOT NULL` already.
    pub not_null: HashSet<String>,
    /// The foreign keys between this table and another, either way.
    pub foreign_keys: Vec<ForeignKeyFact>,
}

/// A foreign key between a table and another table.
#[derive(Debug, Clone, Deserialize)]
pub struct ForeignKeyFact {
    pub name: String,
    /// This table's columns in the key (the referenced ones when `referencing` is false).
    pub columns: Vec<String>,
    /// The table at the key's other end.
    pub other: RelName,
    /// Whether this table holds the key (references the other).
    pub referencing: bool,
}

/// A foreign key that each row a `DELETE` removes is checked against (`sql/cascades.sql`).
#[derive(Debug, Clone)]
pub struct KeyChecked {
    pub name: String,
    /// The table that holds the key, and its columns in the key.
    pub table: RelName,
    pub columns: Vec<String>,
    /// Its `ON DELETE` action, as `pg_constraint.confdeltype` spells it (`c` cascade, `a` no action).
    pub on_delete: String,
    /// Whether a valid index of its table leads with its columns, which the check uses; else the check
    /// of each deleted row scans the table.
    pub indexed: bool,
    /// The table's row estimate (`None`: never analyzed) and size.
    pub rows: Option<u64>,
    pub bytes: u64,
}

impl Facts {
    /// The facts of table `rel`, when it exists.
    pub fn table(&self, rel: &RelName) -> Option<&TableFacts> {
        self.tables.get(&rel.key())
    }

    /// Whether the facts say anything of table `rel`: it was asked for, whether it exists or not.
    pub fn knows(&self, rel: &RelName) -> bool {
        self.asked.is_empty() || self.asked.contains(&rel.key()) || self.tables.contains_key(&rel.key())
    }

    /// Whether index `rel` exists.
    pub fn has_index(&self, rel: &RelName) -> bool {
        self.indexes.contains(&rel.key())
    }
}

impl TableFacts {
    /// Whether an index's leading columns are exactly `columns`, in any order: what a foreign key's
    /// checks can use.
    pub fn has_index_leading(&self, columns: &[String]) -> bool {
        self.indexes.iter().any(|index| index_leads(index, columns))
    }
}

/// Whether an index whose columns are `index` (in key order) leads with exactly `columns`, in any order.
pub fn index_leads(index: &[String], columns: &[String]) -> bool {
    index.len() >= columns.len() && columns.iter().all(|c| index[..columns.len()].contains(c))
}

/// `1.5 MiB`-style sizes, for messages.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

#[derive(Deserialize)]
struct CheckRow {
    name: String,
    definition: String,
}

#[derive(Deserialize)]
struct ColumnRow {
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default)]
    not_null: bool,
}

/// Reads the facts about `named` from the database `connect` reaches, in a read-only session.
pub async fn read_facts(connect: &ConnectOptions, named: &Named) -> Result<Facts> {
    let session = Session::open(connect, None).await?;
    session
        .batch(&format!(
            "SET default_transaction_read_only = on; SET statement_timeout = '{}ms'; SET lock_timeout = '{}ms'",
            STATEMENT_TIMEOUT.as_millis(),
            STATEMENT_TIMEOUT.as_millis()
        ))
        .await?;
    let mut facts = Facts { server_version: session.server_version() / 10000, ..Facts::default() };
    let by_quoted =
        |list: &[RelName]| -> HashMap<String, String> { list.iter().map(|r| (r.quoted(), r.key())).collect() };
    // Indexes first: the tables of those a statement drops or rebuilds are read too, for their size.
    let indexes = by_quoted(&named.indexes);
    let names: Vec<&String> = indexes.keys().collect();
    let mut tables_named = named.tables.clone();
    for row in session.query(INDEXES, &[&names]).await? {
        let name: String = value(&row, "name", INDEXES)?;
        let table =
            RelName { schema: Some(value(&row, "table_schema", INDEXES)?), name: value(&row, "table_name", INDEXES)? };
        if let Some(key) = indexes.get(&name) {
            facts.indexes.insert(key.clone());
            if !tables_named.iter().any(|t| t.key() == table.key()) {
                tables_named.push(table.clone());
            }
            facts.index_tables.insert(key.clone(), table);
            facts.index_columns.insert(key.clone(), value(&row, "columns", INDEXES)?);
            facts.index_owners.insert(key.clone(), value(&row, "owner", INDEXES)?);
        }
    }
    let user = session.query_one(USER, &[]).await?;
    facts.current_user = value(&user, "current_user", USER)?;
    facts.session_user = value(&user, "session_user", USER)?;
    let types = by_quoted(&named.types);
    let names: Vec<&String> = types.keys().collect();
    for row in session.query(ENUMS, &[&names]).await? {
        let name: String = value(&row, "name", ENUMS)?;
        if let Some(key) = types.get(&name) {
            facts.enums.insert(key.clone(), value(&row, "labels", ENUMS)?);
        }
    }
    for row in session.query(FUNCTIONS, &[&named.functions]).await? {
        facts.volatile_functions.insert(value(&row, "name", FUNCTIONS)?, value(&row, "volatile", FUNCTIONS)?);
    }
    let domains = by_quoted(&named.column_types);
    let names: Vec<&String> = domains.keys().collect();
    for row in session.query(DOMAINS, &[&names]).await? {
        let name: String = value(&row, "name", DOMAINS)?;
        if let Some(key) = domains.get(&name) {
            facts.constrained_domains.insert(key.clone());
        }
    }
    facts.asked = tables_named.iter().map(RelName::key).collect();
    let tables = by_quoted(&tables_named);
    let names: Vec<&String> = tables.keys().collect();
    for row in session.query(VIEWS, &[&names]).await? {
        let name: String = value(&row, "name", VIEWS)?;
        if let Some(key) = tables.get(&name) {
            facts.views.insert(key.clone());
        }
    }
    for row in session.query(TABLES, &[&names]).await? {
        let name: String = value(&row, "name", TABLES)?;
        let Some(key) = tables.get(&name) else { continue };
        let reltuples: f64 = value(&row, "reltuples", TABLES)?;
        let bytes: i64 = value(&row, "bytes", TABLES)?;
        let columns: String = value(&row, "columns", TABLES)?;
        let indexes: String = value(&row, "indexes", TABLES)?;
        let checks: String = value(&row, "checks", TABLES)?;
        let foreign_keys: String = value(&row, "foreign_keys", TABLES)?;
        let bad_json = |e: serde_json::Error| {
            Error::new(ErrorKind::Database, format!("the catalog's facts about `{name}` do not read")).with_source(e)
        };
        let columns: Vec<ColumnRow> = serde_json::from_str(&columns).map_err(bad_json)?;
        let indexes: Vec<Option<Vec<String>>> = serde_json::from_str(&indexes).map_err(bad_json)?;
        let checks: Vec<CheckRow> = serde_json::from_str(&checks).map_err(bad_json)?;
        let foreign_keys: Vec<ForeignKeyFact> = serde_json::from_str(&foreign_keys).map_err(bad_json)?;
        let table = TableFacts {
            // Before PostgreSQL 14 a table never analyzed has 0; from 14, -1.
            rows: (reltuples >= 0.0).then_some(reltuples as u64),
            bytes: u64::try_from(bytes).unwrap_or(0),
            partitioned: value(&row, "partitioned", TABLES)?,
            not_null: columns.iter().filter(|c| c.not_null).map(|c| c.name.clone()).collect(),
            columns: columns.into_iter().filter_map(|c| Some((c.name, ColumnType::parse(&c.type_name)?))).collect(),
            indexes: indexes.into_iter().flatten().collect(),
            not_null_checks: checks
                .into_iter()
                .map(|c| (check_columns(&c.definition), c.name))
                .filter(|(columns, _)| !columns.is_empty())
                .map(|(columns, name)| (name, columns))
                .collect(),
            foreign_keys,
        };
        facts.tables.insert(key.clone(), table);
    }
    for row in session.query(CASCADES, &[&names]).await? {
        let name: String = value(&row, "name", CASCADES)?;
        let Some(key) = tables.get(&name) else { continue };
        let reltuples: f64 = value(&row, "reltuples", CASCADES)?;
        let bytes: i64 = value(&row, "bytes", CASCADES)?;
        facts.delete_checks.entry(key.clone()).or_default().push(KeyChecked {
            name: value(&row, "key_name", CASCADES)?,
            table: RelName {
                schema: Some(value(&row, "table_schema", CASCADES)?),
                name: value(&row, "table_name", CASCADES)?,
            },
            columns: value(&row, "columns", CASCADES)?,
            on_delete: value(&row, "on_delete", CASCADES)?,
            indexed: value(&row, "indexed", CASCADES)?,
            rows: (reltuples >= 0.0).then_some(reltuples as u64),
            bytes: u64::try_from(bytes).unwrap_or(0),
        });
    }
    Ok(facts)
}

/// The columns a constraint definition `CHECK ((col IS NOT NULL))`, as `pg_get_constraintdef` writes it,
/// proves NOT NULL.
fn check_columns(def: &str) -> Vec<String> {
    let expr = || {
        let expr = def.strip_prefix("CHECK ")?;
        let parsed = pg_query::parse(&format!("SELECT {expr}"), 0).ok()?;
        let raw = parsed.protobuf.stmts.first()?.stmt.as_ref()?;
        let Some(pg_query::NodeEnum::SelectStmt(select)) = &raw.node else { return None };
        let target = select.target_list.first()?;
        let Some(pg_query::NodeEnum::ResTarget(t)) = &target.node else { return None };
        Some(not_null_check_columns(t.val.as_deref()?))
    };
    expr().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_not_null_check_is_read_from_its_definition() {
        assert_eq!(check_columns("CHECK ((status IS NOT NULL))"), ["status"]);
        assert_eq!(check_columns("CHECK ((\"Status\" IS NOT NULL))"), ["Status"]);
        assert_eq!(check_columns("CHECK ((amount > 0))"), Vec::<String>::new());
        assert_eq!(check_columns("CHECK ((status IS NULL))"), Vec::<String>::new());
        assert_eq!(check_columns("CHECK (((c IS NOT NULL) AND ((d > 0) AND (e IS NOT NULL))))"), ["c", "e"]);
        assert_eq!(check_columns("CHECK (((c IS NOT NULL) OR (d > 0)))"), Vec::<String>::new());
    }

    #[test]
    fn an_index_serves_a_foreign_key_when_it_leads_with_its_columns() {
        let t = TableFacts { indexes: vec![vec!["a".into(), "b".into()], vec!["c".into()]], ..TableFacts::default() };
        let cols = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(t.has_index_leading(&cols(&["a"])));
        assert!(t.has_index_leading(&cols(&["b", "a"])));
        assert!(!t.has_index_leading(&cols(&["b"])));
        assert!(t.has_index_leading(&cols(&["c"])));
    }
}
