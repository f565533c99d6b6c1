//! The catalog frame's document: server facts and the list of parts, written before any data.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::PartId;

/// What the dump read before any data: the archive's identity, the server, and every part to come.
///
/// Encoded as a UTF-8 JSON object. Readers ignore fields they do not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// 32 hex digits shared with the manifest, so a manifest cannot be paired with another archive's data.
    pub archive_id: String,
    /// When the dump started, RFC 3339 in UTC.
    pub created_at: String,
    /// The program and version that wrote the archive, for example `pgsafe 0.1.0`.
    pub tool: String,
    pub server: ServerFacts,
    /// Every part the archive will hold, in the order the dump planned them.
    pub parts: Vec<PartInfo>,
    /// Sequence values, read when the dump started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequences: Vec<SequenceValue>,
    /// The schema (DDL, objects, dependencies). Owned by the schema engine; opaque to the codec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaDocument>,
}

/// The schema document as its JSON text, parsed by the schema engine when it needs the objects. Kept as
/// text, not as a `serde_json::Value` tree: a tree of 250,000 objects costs many times the text's size, and
/// the catalog stays in memory for the whole restore.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SchemaDocument(Box<serde_json::value::RawValue>);

impl SchemaDocument {
    /// `value` as a JSON document.
    pub fn of(value: &impl Serialize) -> serde_json::Result<SchemaDocument> {
        serde_json::value::to_raw_value(value).map(SchemaDocument)
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for SchemaDocument {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

/// Facts about the server the dump read, needed to judge whether a restore target is compatible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFacts {
    /// `server_version`, for example `15.18`.
    pub version: String,
    /// `server_version_num`, for example `150018`.
    pub version_num: u32,
    pub database: String,
    /// `server_encoding`, for example `UTF8`.
    pub encoding: String,
    pub integer_datetimes: bool,
}

/// A schema-qualified table name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl fmt::Display for TableName {
    /// `schema.name`, each part quoted as the SQL that pgsafe runs quotes it (`sql::quote_ident`), so a
    /// name in a message can be pasted into SQL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::sql::quote_qualified(self))
    }
}

impl crate::sql::SchemaQualified for TableName {
    fn schema(&self) -> &str {
        &self.schema
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// The format of a part's COPY stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyFormat {
    /// `COPY ... (FORMAT binary)`.
    Binary,
    /// `COPY ... (FORMAT text)`, for tables with a column type whose binary form is not portable.
    Text,
}

/// A column as the COPY stream carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    /// The type as `format_type` prints it, for example `numeric(10,2)`.
    #[serde(rename = "type")]
    pub type_name: String,
}

/// One planned COPY stream: a whole table, or a page range of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    pub id: PartId,
    /// What the stream holds; absent means a table's rows.
    #[serde(default, skip_serializing_if = "PartKind::is_table")]
    pub kind: PartKind,
    pub table: TableName,
    /// The columns in stream order (generated columns are not in the stream).
    pub columns: Vec<ColumnInfo>,
    pub format: CopyFormat,
    /// For a slice of a table: the heap pages `[start, end)` it covers; `end` absent means to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<PageRange>,
    /// For an extension's configuration table: the `WHERE ...` clause its extension registered. The part
    /// holds only the rows it selects; the others are the extension's own, made by `CREATE EXTENSION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// For a partition under a hash partitioning on an enum column, whose hashes follow the enum values'
    /// OIDs that a restore makes anew: the topmost partitioned table, which a restore loads the rows into
    /// so that the server routes each to the partition it now hashes to (and verifies as a whole).
    /// Absent for every other table, and in archives written before 2026-12-06.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_via: Option<TableName>,
    /// The `search_path` the stream was written under, which a restore loads and reads it back under: the
    /// text of reg* values (`regclass`, `regtype`, ...) names objects relative to it. pgsafe writes `""` for
    /// text parts, so that every such name is schema-qualified; absent (binary parts, and text parts of
    /// archives written before it existed), the session's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_path: Option<String>,
    /// The planner's estimates when the dump started, for progress reporting.
    #[serde(default)]
    pub estimated_rows: u64,
    #[serde(default)]
    pub estimated_bytes: u64,
}

/// What a part's COPY stream holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// Rows of the table the part names.
    #[default]
    Table,
    /// Every large object as a row `(oid, data bytea)`; the part's table is `pg_catalog.pg_largeobject`.
    LargeObjects,
}

impl PartKind {
    pub fn is_table(&self) -> bool {
        *self == PartKind::Table
    }
}

/// A sequence's state: what `setval(name, last_value, is_called)` restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceValue {
    pub name: TableName,
    pub last_value: i64,
    pub is_called: bool,
}

/// Heap pages `[start, end)` of a table; `end` absent means to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRange {
    pub start: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<u32>,
}

impl Catalog {
    /// Each part's position in [`parts`](Self::parts), by id. Build it once and look parts up in it: an
    /// archive may hold hundreds of thousands of parts, and scanning the list for each would make reading
    /// it quadratic. `Err` names an id that appears twice.
    pub fn part_positions(&self) -> Result<HashMap<PartId, usize>, PartId> {
        let mut positions = HashMap::with_capacity(self.parts.len());
        for (i, p) in self.parts.iter().enumerate() {
            if positions.insert(p.id, i).is_some() {
                return Err(p.id);
            }
        }
        Ok(positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_display_quoted_as_the_sql_pgsafe_runs() {
        let shown = |schema: &str, name: &str| TableName { schema: schema.into(), name: name.into() }.to_string();
        assert_eq!(shown("public", "orders"), "public.orders");
        // Keywords were left bare here, unlike everywhere else.
        assert_eq!(shown("public", "user"), "public.\"user\"");
        assert_eq!(shown("select", "json_table"), "\"select\".\"json_table\"");
        assert_eq!(shown("a$b", "Order"), "\"a$b\".\"Order\"");
    }
}
