//! The restore's target: what it holds (user objects, tables, triggers, foreign keys, roles) and the few
//! things a restore does to it before and around the load (creating the database, dropping the archive's
//! objects, emptying tables, switching triggers and foreign keys off and back on).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::plan::{DatabaseStep, PlannedTable, RestorePlan, table_names};
use crate::archive::ArchiveReader;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{BinaryTuples, CopyError, PartKind};
use crate::pg::{ConnectOptions, Session, quote_ident, quote_qualified};

/// Refuses a target that holds any user object: restoring over one would mix two databases.
pub(super) async fn refuse_non_empty(session: &Session) -> Result<()> {
    let rows = session.query(include_str!("sql/target_objects.sql"), &[]).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut names = Vec::new();
    for r in rows.iter().take(5) {
        let description: Option<String> = r.try_get("description").ok().flatten();
        names.push(format!("`{}`", description.unwrap_or_else(|| "an object".into())));
    }
    let more = if rows.len() > 5 { " and more" } else { "" };
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!("`{}` is not empty: it holds {}{more}; nothing was restored", session.target(), names.join(", ")),
    )
    .with_hint("restore into a new database (`createdb`, or `--create`), or pass `--clean` to drop the archive's objects first"))
}

/// Drops the archive's objects that exist in the target, dependents first, in one transaction (`--clean`).
pub(super) async fn drop_objects(session: &Session, statements: &[String]) -> Result<()> {
    let mut sql = String::from("BEGIN;\nSET LOCAL search_path = ''; SET LOCAL client_min_messages = warning;\n");
    for s in statements {
        sql.push_str(s);
        sql.push('\n');
    }
    sql.push_str("COMMIT;");
    session.batch(&sql).await.map_err(|e| e.context("dropping the archive's objects (`--clean`); nothing was dropped"))
}

/// Creates the roles the cluster lacks, without login (`--create-roles`).
pub(super) async fn create_roles(session: &Session, roles: &[String]) -> Result<()> {
    let rows = session
        .query(
            "SELECT r FROM unnest($1::text[]) AS r WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r)",
            &[&roles],
        )
        .await?;
    for row in rows {
        let role: String = row.try_get(0).map_err(|e| unreadable("the missing roles", e))?;
        session.batch(&format!("CREATE ROLE {} NOLOGIN", quote_ident(&role))).await?;
    }
    Ok(())
}

/// Creates the database `--create` names, through the one `connect` names, and returns the connection
/// options for the new one.
pub(super) async fn create_database(connect: &ConnectOptions, step: &DatabaseStep) -> Result<ConnectOptions> {
    let session = Session::open(connect, None).await?;
    let name = &step.name;
    // With `--clean`, as pg_restore has it: the database is dropped and made anew.
    if step.drop_first {
        session.batch(&format!("DROP DATABASE IF EXISTS {}", quote_ident(name))).await.map_err(|e| {
            e.context(format!("`--clean --create`: dropping the database `{name}` to make it anew failed"))
                .with_hint("nobody may be connected to it, and `-d` must name another database of the cluster")
        })?;
    }
    let exists: bool = session
        .query_one("SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = $1)", &[name])
        .await?
        .try_get(0)
        .map_err(|e| unreadable("whether the database exists", e))?;
    if exists {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`--create`: the database `{name}` already exists on `{}`; nothing was changed", session.target()),
        )
        .with_hint(
            "restore into it without `--create` (it must be empty), or add `--clean` to drop and make it anew",
        ));
    }
    session.batch(&step.create).await?;
    Ok(connect.with_dbname(name))
}

/// The server's `server_version_num`.
pub(super) async fn server_version(session: &Session) -> Result<u32> {
    let v: i32 = session
        .query_one("SELECT pg_catalog.current_setting('server_version_num')::int", &[])
        .await?
        .try_get(0)
        .map_err(|e| unreadable("the server's version", e))?;
    Ok(v.max(0) as u32)
}

/// Whether the session's role is a superuser: it may then keep foreign keys from firing with
/// `session_replication_role`, which other roles may not set.
pub(super) async fn is_superuser(session: &Session) -> Result<bool> {
    session
        .query_one("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user", &[])
        .await?
        .try_get(0)
        .map_err(|e| unreadable("whether the role is a superuser", e))
}

/// Refuses, before anything is written, a target that lacks a table or column the archive needs, or
/// whose tables already hold rows (unless they are to be emptied).
pub(super) async fn check_tables(session: &Session, plan: &RestorePlan, emptied: bool) -> Result<()> {
    let tables = &plan.tables;
    let names = table_names(tables);
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in session.query(include_str!("sql/target_columns.sql"), &[&names]).await? {
        let table: String = row.try_get("table_name").map_err(|e| unreadable("the target's columns", e))?;
        let column: String = row.try_get("column_name").map_err(|e| unreadable("the target's columns", e))?;
        found.entry(table).or_default().insert(column);
    }
    let mut problems = Vec::new();
    for t in tables.iter().filter(|t| t.kind == PartKind::Table) {
        let name = quote_qualified(&t.name);
        let Some(columns) = found.get(&name) else {
            // A table without any loadable column still has a row in pg_class; ask directly.
            let exists: bool = session
                .query_one("SELECT pg_catalog.to_regclass($1) IS NOT NULL", &[&name])
                .await?
                .try_get(0)
                .map_err(|e| unreadable("whether a table exists", e))?;
            if !exists {
                problems.push(format!("table `{}` does not exist", t.name));
            } else if !t.columns.is_empty() {
                problems.push(format!("table `{}` has none of the archive's columns", t.name));
            }
            continue;
        };
        let missing: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).filter(|c| !columns.contains(*c)).collect();
        if !missing.is_empty() {
            problems.push(format!("table `{}` lacks the column(s) `{}`", t.name, missing.join("`, `")));
        }
    }
    if !problems.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "`{}` does not have the tables the archive's data goes into: {}; nothing was restored",
                session.target(),
                problems.join("; ")
            ),
        )
        .with_hint("a data-only restore loads into existing tables: create the schema first"));
    }
    if emptied {
        return Ok(());
    }
    let mut non_empty = Vec::new();
    let ordinary: Vec<&PlannedTable> = tables.iter().filter(|t| t.kind == PartKind::Table).collect();
    for batch in ordinary.chunks(200) {
        let sql = batch
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!("SELECT {i} WHERE EXISTS (SELECT FROM ONLY {}{})", quote_qualified(&t.name), t.where_clause())
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for row in session.query(&sql, &[]).await? {
            let i: i32 = row.try_get(0).map_err(|e| unreadable("which tables hold rows", e))?;
            if let Some(t) = batch.get(i as usize) {
                non_empty.push(format!("`{}`", t.name));
            }
        }
    }
    if tables.iter().any(|t| t.kind == PartKind::LargeObjects) {
        let any: bool = session
            .query_one("SELECT EXISTS (SELECT FROM pg_catalog.pg_largeobject_metadata)", &[])
            .await?
            .try_get(0)
            .map_err(|e| unreadable("whether large objects exist", e))?;
        if any {
            non_empty.push("large objects".to_string());
        }
    }
    if !non_empty.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{}` already holds data: {}; nothing was restored", session.target(), non_empty.join(", ")),
        )
        .with_hint("`--clean` empties the archive's tables first"));
    }
    Ok(())
}

/// Empties the plan's tables (of an extension's configuration table, only the rows its filter selects:
/// the others are the extension's own) and removes the large objects whose OIDs the archive holds.
pub(super) async fn empty_tables(session: &Session, plan: &RestorePlan, archive: &ArchiveReader) -> Result<()> {
    let (filtered, whole): (Vec<&PlannedTable>, Vec<&PlannedTable>) =
        plan.tables.iter().filter(|t| t.kind == PartKind::Table).partition(|t| t.filter.is_some());
    // One TRUNCATE, so that tables that reference each other go together; a partitioned table whose
    // every partition is emptied goes whole, which its foreign keys require.
    let names = table_names(&plan.tables);
    let mut list: Vec<String> = whole.iter().map(|t| format!("ONLY {}", quote_qualified(&t.name))).collect();
    for row in session.query(include_str!("sql/target_partitioned.sql"), &[&names]).await? {
        list.push(row.try_get::<_, String>("name").map_err(|e| unreadable("the partitioned tables", e))?);
    }
    if !list.is_empty() {
        session.batch(&format!("TRUNCATE {}", list.join(", "))).await?;
    }
    for t in filtered {
        session.batch(&format!("DELETE FROM ONLY {}{}", quote_qualified(&t.name), t.where_clause())).await?;
    }
    for t in plan.tables.iter().filter(|t| t.kind == PartKind::LargeObjects) {
        let mut oids: Vec<i64> = Vec::new();
        for &part in &t.parts {
            for chunk in archive.index().chunks(part) {
                let raw = archive.read_chunk(&chunk).map_err(Error::from)?;
                let found = large_object_oids(&raw, chunk.entry.seq.0 == 0).map_err(|e| {
                    Error::from(e.in_chunk(archive.index().chunk_element(&chunk), chunk.entry.offset))
                        .context(format!("`{}`", archive.path().display()))
                })?;
                oids.extend(found.into_iter().map(i64::from));
            }
        }
        session
            .query(
                "SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata WHERE oid = ANY ($1::int8[]::oid[])",
                &[&oids],
            )
            .await?;
    }
    Ok(())
}

/// The OIDs in a chunk of the large-objects part: the first field, a 4-byte `oid`, of each tuple.
fn large_object_oids(raw: &[u8], first_chunk: bool) -> Result<Vec<u32>, CopyError> {
    let tuples = if first_chunk { BinaryTuples::new(raw) } else { BinaryTuples::resume(raw) }.with_fields(2);
    tuples
        .map(|t| {
            let t = t?;
            t.field(0)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| CopyError { offset: t.offset(), problem: "a large object's oid is not 4 bytes".into() })
        })
        .collect()
}

/// A user trigger enabled on a restored table: disabled by name for the load, then given its own mode
/// back (origin, replica or always), so that a trigger the user had disabled stays disabled.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Trigger {
    table: String,
    name: String,
    mode: String,
}

impl Trigger {
    /// The enabled user triggers of the plan's tables.
    pub async fn read(session: &Session, plan: &RestorePlan) -> Result<Vec<Trigger>> {
        let names = plan.table_names();
        let mut out = Vec::new();
        for row in session.query(include_str!("sql/target_triggers.sql"), &[&names]).await? {
            let get = |c: &str| row.try_get::<_, String>(c).map_err(|e| unreadable("the target's triggers", e));
            out.push(Trigger { table: get("table_name")?, name: get("name")?, mode: get("mode")? });
        }
        Ok(out)
    }

    /// `ALTER TABLE` statements that switch the triggers off (`enable` false) or back to their modes.
    pub fn statements(triggers: &[Trigger], enable: bool) -> Vec<String> {
        let mut by_table: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for t in triggers {
            let action = match (enable, t.mode.as_str()) {
                (false, _) => "DISABLE TRIGGER",
                (true, "R") => "ENABLE REPLICA TRIGGER",
                (true, "A") => "ENABLE ALWAYS TRIGGER",
                (true, _) => "ENABLE TRIGGER",
            };
            by_table.entry(&t.table).or_default().push(format!("{action} {}", t.name));
        }
        by_table.into_iter().map(|(table, actions)| format!("ALTER TABLE {table} {};", actions.join(", "))).collect()
    }
}

/// A foreign key on or to a restored table, as the target declares it.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ForeignKey {
    pub name: String,
    /// The referencing and the referenced table, qualified.
    pub child: String,
    pub parent: String,
    child_kind: String,
    parent_kind: String,
    match_full: bool,
    child_columns: Vec<String>,
    parent_columns: Vec<String>,
    /// It promises the rows hold (not NOT VALID).
    pub validated: bool,
    /// `pg_get_constraintdef`: what re-adds it.
    definition: String,
    /// The load fills its referencing side: its checks would fire during the load.
    pub loaded: bool,
    /// The restored tables on each side (the table, or its partitions), as the plan names them.
    pub loaded_tables: Vec<String>,
    pub referenced_tables: Vec<String>,
}

impl ForeignKey {
    pub async fn read(session: &Session, plan: &RestorePlan) -> Result<Vec<ForeignKey>> {
        let names = plan.table_names();
        let mut out = Vec::new();
        for row in session.query(include_str!("sql/target_foreign_keys.sql"), &[&names]).await? {
            let fail = |e| unreadable("the target's foreign keys", e);
            let text = |c: &str| row.try_get::<_, String>(c).map_err(fail);
            out.push(ForeignKey {
                name: text("name")?,
                child: text("child")?,
                parent: text("parent")?,
                child_kind: text("child_kind")?,
                parent_kind: text("parent_kind")?,
                match_full: text("match_type")? == "f",
                child_columns: row.try_get("child_columns").map_err(fail)?,
                parent_columns: row.try_get("parent_columns").map_err(fail)?,
                validated: row.try_get("validated").map_err(fail)?,
                definition: text("definition")?,
                loaded: row.try_get("loaded").map_err(fail)?,
                loaded_tables: row.try_get("loaded_tables").map_err(fail)?,
                referenced_tables: row.try_get("referenced_tables").map_err(fail)?,
            });
        }
        Ok(out)
    }

    /// Whether it can be dropped for the load and added back `NOT VALID`: PostgreSQL takes `NOT VALID`
    /// foreign keys on partitioned tables only from 18 on.
    pub fn can_come_back_not_valid(&self, server_version: u32) -> bool {
        self.child_kind != "p" || server_version >= 180000
    }

    /// `ALTER TABLE ... DROP CONSTRAINT`.
    pub fn drop_statement(&self) -> String {
        format!("ALTER TABLE {} DROP CONSTRAINT {};", self.child, quote_ident(&self.name))
    }

    /// `ALTER TABLE ... ADD CONSTRAINT ... NOT VALID`: back at once, checking new rows, without reading
    /// the table (`VALIDATE` does that next, where it held before).
    pub fn add_statement(&self) -> String {
        let not_valid = if self.definition.ends_with(" NOT VALID") { "" } else { " NOT VALID" };
        format!("ALTER TABLE {} ADD CONSTRAINT {} {}{not_valid};", self.child, quote_ident(&self.name), self.definition)
    }

    pub fn validate_statement(&self) -> String {
        format!("ALTER TABLE {} VALIDATE CONSTRAINT {};", self.child, quote_ident(&self.name))
    }

    /// Counts the rows that break it, and names it with an example when there are any.
    pub async fn violations(&self, session: &Session) -> Result<Option<String>> {
        // Partitioned tables hold their rows in partitions; a plain parent's inheritance children are
        // not covered by its foreign keys.
        let only = |kind: &str| if kind == "p" { "" } else { "ONLY " };
        let join: Vec<String> =
            self.child_columns.iter().zip(&self.parent_columns).map(|(c, p)| format!("p.{p} = c.{c}")).collect();
        let missing = format!(
            "NOT EXISTS (SELECT 1 FROM {}{} p WHERE {})",
            only(&self.parent_kind),
            self.parent,
            join.join(" AND ")
        );
        let is = |test: &str, glue: &str| {
            self.child_columns.iter().map(|c| format!("c.{c} IS {test}")).collect::<Vec<_>>().join(glue)
        };
        let condition = if self.match_full {
            // MATCH FULL: all null is fine; a mix of null and not null is a violation by itself.
            format!("NOT ({}) AND (({}) OR {missing})", is("NULL", " AND "), is("NULL", " OR "))
        } else {
            format!("{} AND {missing}", is("NOT NULL", " AND "))
        };
        let cols = self.child_columns.iter().map(|c| format!("c.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT count(*), (array_agg(ROW({cols})::text))[1] FROM {}{} c WHERE {condition}",
            only(&self.child_kind),
            self.child
        );
        let row = session.query_one(&sql, &[]).await?;
        let count: i64 = row.try_get(0).map_err(|e| unreadable("a foreign key's violations", e))?;
        if count == 0 {
            return Ok(None);
        }
        let example: Option<String> = row.try_get(1).map_err(|e| unreadable("a foreign key's violations", e))?;
        Ok(Some(format!(
            "foreign key `{}` of `{}`: {count} rows reference keys missing from `{}` (for example {})",
            self.name,
            self.child,
            self.parent,
            example.unwrap_or_default()
        )))
    }
}

/// A value the server sent that pgsafe cannot read as expected: a bug or a very odd server.
pub(super) fn unreadable(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorKind::Database, format!("reading {what}: an unexpected value")).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_object_oids_are_read_and_a_malformed_row_is_an_error_not_the_end() {
        let row = |oid: &[u8]| vec![Some(oid.to_vec()), Some(b"data".to_vec())];
        let good = crate::format::binary_stream(&[row(&7u32.to_be_bytes()), row(&9u32.to_be_bytes())]);
        assert_eq!(large_object_oids(&good, true).unwrap(), vec![7, 9]);
        // Before, a three-byte oid ended the walk quietly, and the objects after it were never unlinked.
        let bad = crate::format::binary_stream(&[row(&7u32.to_be_bytes()), row(&[0, 0, 9]), row(&11u32.to_be_bytes())]);
        let e = large_object_oids(&bad, true).unwrap_err();
        assert!(e.problem.contains("oid is not 4 bytes"), "{e}");
    }
}
