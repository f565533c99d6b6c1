//! What a rollback would lose, computed rather than guessed: the live database compared with a snapshot.
//!
//! Each table of the snapshot is read back from the live database the way a restore's verification reads
//! it (the archive's column list and format), and its row count and order-independent content digest
//! compared with the manifest's: equal digests mean the rows are the snapshot's, so a table that changed
//! since is told apart from one whose count merely matches. The live schema is read with the dump's own
//! schema engine and compared object by object with the snapshot's: what exists now and not in the
//! snapshot is dropped by a rollback, what differs is put back as it was.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::archive::ArchiveReader;
use crate::catalog::Filters;
use crate::error::{Error, Result, SqlState};
use crate::format::{PartKind, TableName};
use crate::pg::Session;
use crate::restore::plan::PlannedTable;
use crate::restore::{RestoreOptions, VerifyLevel};
use crate::schema::{ObjectKind, SchemaCatalog, SchemaObject};
use crate::sql::quote_qualified;

/// How a table or object differs between the live database and the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// The same rows (or the same definition) as in the snapshot: a rollback loses nothing here.
    Unchanged,
    /// Its rows (or its definition) changed since the snapshot: a rollback puts the snapshot's back.
    Changed,
    /// It exists now and not in the snapshot: a rollback drops it.
    New,
    /// The snapshot has it and the database does not: a rollback brings it back.
    Gone,
    /// It could not be read (`note` says why): whether it changed is not known.
    Unknown,
}

/// One table, now and in the snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct TableChange {
    /// `schema.name`, quoted as SQL needs it (`large objects` for the database's large objects).
    pub table: String,
    pub change: Change,
    pub rows_now: Option<u64>,
    pub rows_in_snapshot: Option<u64>,
    /// A table the snapshot has as a table of its own, and that is partitioned now (made so by copying
    /// its rows into a new partitioned table that took its name): the rows of its partitions, where its
    /// rows now are. Counted by a rehearsal only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rows_in_partitions: Option<u64>,
    /// Columns of the snapshot's table that the table no longer has: their values are lost.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub columns_gone: Vec<String>,
    /// Columns the table has now and the snapshot's lacks, holding values (other than NULL and the
    /// column's default): a rollback drops them with their values, though the snapshot's columns hold the
    /// snapshot's rows.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub columns_new: Vec<NewColumn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A column added since the snapshot, with the values it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewColumn {
    pub column: String,
    /// Its values that are neither NULL nor its default (as the default evaluates now).
    pub values: u64,
}

/// One schema object that differs.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectChange {
    /// `KIND schema.name`, as `--list` names it.
    pub object: String,
    pub change: Change,
}

/// The live database against a snapshot.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Changes {
    /// Every table the comparison covers, unchanged ones too, by name.
    pub tables: Vec<TableChange>,
    /// Schema objects that differ (none unchanged), by label. Empty when only tables were compared.
    pub objects: Vec<ObjectChange>,
}

impl Changes {
    /// Tables whose rows a rollback replaces or drops: everything but the unchanged and the gone.
    pub fn tables_losing_rows(&self) -> impl Iterator<Item = &TableChange> {
        self.tables.iter().filter(|t| matches!(t.change, Change::Changed | Change::New | Change::Unknown))
    }

    /// Whether a rollback would lose anything at all.
    pub fn loses_anything(&self) -> bool {
        self.tables_losing_rows().next().is_some()
            || self.objects.iter().any(|o| matches!(o.change, Change::Changed | Change::New))
    }
}

/// The tables a rollback in one transaction locks, in order. Works on PostgreSQL 9.6 and later.
const LOCK_ORDER_SQL: &str = include_str!("sql/rollback_lock_order.sql");

/// What a comparison covers.
pub(crate) enum Scope<'a> {
    /// Every table and object: a whole rollback.
    Whole,
    /// These tables' rows only (`--tables`).
    Tables(&'a Filters),
}

/// Tables of the snapshot renamed (or moved to another schema) since it was taken, as the caller told
/// them by their OIDs: (the snapshot's name, the name now), each `schema.name` quoted as
/// [`TableName`]'s text. Such a table is no new table: a rollback brings its rows back under the
/// snapshot's name, and discards only what changed in them.
pub(crate) type Renamed = [(String, String)];

/// Compares the database `session` is connected to with the snapshot in `archive`, in one read-only
/// repeatable-read transaction of its own (the session is left outside any transaction); a table of
/// `renamed` is compared under its name now. Also returns the live objects the snapshot lacks, which a
/// rollback in place drops.
pub(crate) async fn compare(
    session: &Session,
    archive: &ArchiveReader,
    options: &RestoreOptions,
    scope: Scope<'_>,
    renamed: &Renamed,
) -> Result<(Changes, Vec<SchemaObject>)> {
    let index = archive.index();
    let snapshot_schema = SchemaCatalog::read(index.catalog().schema.as_ref())?.unwrap_or_default();
    let plan = data_plan(archive, options, &scope)?;

    session.batch("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    let result = async {
        let mut changes = Changes::default();
        let mut extra = Vec::new();
        for t in &plan.tables {
            changes.tables.push(compare_as_named_now(session, t, renamed).await?);
        }
        if let Scope::Whole = scope {
            let (objects, new_objects) = objects_against(session, &snapshot_schema).await?;
            changes.objects = objects;
            let new_tables: Vec<TableName> = new_objects.iter().filter_map(table_name).collect();
            count_new_tables(session, &mut changes, &new_tables, renamed).await?;
            extra = new_objects;
        }
        changes.tables.sort_by(|a, b| a.table.cmp(&b.table));
        Ok::<_, Error>((changes, extra))
    }
    .await;
    let ended = session.batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" }).await;
    let (changes, extra) = result?;
    ended?;
    Ok((changes, extra))
}

/// What a rollback in one transaction (in place, tables) discards, counted in that transaction, on
/// `session`, before it changes anything: every table the rollback drops or empties is locked first (`ACCESS
/// EXCLUSIVE`, as its `DROP` or `TRUNCATE` would lock it; under the transaction's `lock_timeout`), so no
/// session commits rows into it between the count and the rollback's commit. The tables are the snapshot's
/// ones (in `scope`) and `extra`'s, the objects a rollback in place drops as its plan found them; the
/// objects' changes are left to the caller (the plan's). Large objects are counted, not locked. A table of
/// `renamed` is compared, and locked, under its name now.
///
/// A table gone since the plan is not locked (it has nothing to lose); a lock not granted in time is the
/// error of the transaction, which the caller tries again. Ancestors (partitioned and inheritance
/// parents) are locked first, `ONLY`, so that no reader of a parent waits for a partition while holding
/// the parent (see the query).
pub(crate) async fn count_locked(
    session: &Session,
    archive: &ArchiveReader,
    options: &RestoreOptions,
    scope: Scope<'_>,
    extra: &[SchemaObject],
    renamed: &Renamed,
) -> Result<Changes> {
    let plan = data_plan(archive, options, &scope)?;
    let new_tables: Vec<TableName> = extra.iter().filter_map(table_name).collect();
    let named: Vec<String> = plan
        .tables
        .iter()
        .filter(|t| t.kind == PartKind::Table)
        .map(|t| &t.name)
        .chain(&new_tables)
        .map(quote_qualified)
        .collect();
    lock_exclusive(session, &named).await?;
    let mut changes = Changes::default();
    for t in &plan.tables {
        changes.tables.push(compare_as_named_now(session, t, renamed).await?);
    }
    count_new_tables(session, &mut changes, &new_tables, renamed).await?;
    changes.tables.sort_by(|a, b| a.table.cmp(&b.table));
    Ok(changes)
}

/// The live objects the snapshot lacks that `known` (the plan's [`compare`] found them) does not name:
/// made by another session after the plan read the database. Read on `session`, in the rollback's
/// transaction after its locks, so that what a rollback in place drops is what is there when it drops.
pub(crate) async fn arrived_since(
    session: &Session,
    archive: &ArchiveReader,
    known: &[SchemaObject],
) -> Result<Vec<SchemaObject>> {
    let snapshot_schema = SchemaCatalog::read(archive.index().catalog().schema.as_ref())?.unwrap_or_default();
    let (_, new_objects) = objects_against(session, &snapshot_schema).await?;
    let known: HashSet<_> = known.iter().map(key).collect();
    Ok(new_objects.into_iter().filter(|o| !known.contains(&key(o))).collect())
}

/// Locks the tables among `arrived` (as [`count_locked`] locks the others) and adds them, with their
/// rows, to `changes`, and every object of `arrived` to its objects, as new.
pub(crate) async fn count_arrived(
    session: &Session,
    changes: &mut Changes,
    arrived: &[SchemaObject],
    renamed: &Renamed,
) -> Result<()> {
    let new_tables: Vec<TableName> = arrived.iter().filter_map(table_name).collect();
    let named: Vec<String> = new_tables.iter().map(quote_qualified).collect();
    lock_exclusive(session, &named).await?;
    count_new_tables(session, changes, &new_tables, renamed).await?;
    changes.tables.sort_by(|a, b| a.table.cmp(&b.table));
    let then: HashSet<String> = changes.objects.iter().map(|o| o.object.clone()).collect();
    for o in arrived.iter().filter(|o| !then.contains(&o.label())) {
        changes.objects.push(ObjectChange { object: o.label(), change: Change::New });
    }
    changes.objects.sort_by(|a, b| a.object.cmp(&b.object));
    Ok(())
}

/// Locks the tables `named` (quoted) that exist `ACCESS EXCLUSIVE`, ancestors first (see the query).
async fn lock_exclusive(session: &Session, named: &[String]) -> Result<()> {
    let mut locking = Vec::new();
    for row in session.query(LOCK_ORDER_SQL, &[&named]).await? {
        locking.push(format!("ONLY {}", crate::pg::value::<String, _>(&row, 0, LOCK_ORDER_SQL)?));
    }
    if !locking.is_empty() {
        session.batch(&format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", locking.join(", "))).await?;
    }
    Ok(())
}

/// The data-only restore plan whose tables a comparison reads back.
fn data_plan(
    archive: &ArchiveReader,
    options: &RestoreOptions,
    scope: &Scope<'_>,
) -> Result<crate::restore::RestorePlan> {
    let mut data_options = options.clone();
    data_options.data_only = true;
    data_options.clean = false;
    data_options.single_transaction = false;
    data_options.create = None;
    data_options.first_in_transaction = None;
    if let Scope::Tables(filters) = scope {
        data_options.filters = (*filters).clone();
    }
    crate::restore::plan(archive, &data_options)
}

/// The name of `o` when it is a table.
fn table_name(o: &SchemaObject) -> Option<TableName> {
    match (&o.kind, &o.schema) {
        (ObjectKind::Table, Some(schema)) => Some(TableName { schema: schema.clone(), name: o.name.clone() }),
        _ => None,
    }
}

/// Adds each of `new_tables` that `changes` lacks (a table the snapshot lacks), with its rows; a table of
/// the snapshot `renamed` since is not one of them.
async fn count_new_tables(
    session: &Session,
    changes: &mut Changes,
    new_tables: &[TableName],
    renamed: &Renamed,
) -> Result<()> {
    let mut compared: HashSet<String> = changes.tables.iter().map(|t| t.table.clone()).collect();
    compared.extend(renamed.iter().map(|(_, now)| now.clone()));
    for name in new_tables {
        if !compared.contains(&name.to_string()) {
            changes.tables.push(count_new_table(session, name).await?);
        }
    }
    Ok(())
}

/// [`compare_table`] of `t`, under the name it has now when it is one of `renamed`: reported under the
/// snapshot's name, where a rollback puts its rows back.
async fn compare_as_named_now(session: &Session, t: &PlannedTable, renamed: &Renamed) -> Result<TableChange> {
    const SQL: &str = "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c \
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = pg_catalog.to_regclass($1)";
    let then = t.name.to_string();
    let Some((_, now)) = renamed.iter().find(|(old, _)| *old == then) else {
        return compare_table(session, t).await;
    };
    let Some(row) = session.query(SQL, &[now]).await?.into_iter().next() else {
        return compare_table(session, t).await;
    };
    let name = TableName { schema: crate::pg::value(&row, 0, SQL)?, name: crate::pg::value(&row, 1, SQL)? };
    let mut change = compare_table(session, &PlannedTable { name, ..t.clone() }).await?;
    change.table = then;
    let renamed = format!("renamed `{now}` since the snapshot, compared there; its rows come back under this name");
    change.note = Some(match change.note {
        Some(note) => format!("{renamed}; {note}"),
        None => renamed,
    });
    Ok(change)
}

/// One snapshot table read back from the live database, inside a savepoint: a table that is gone, or
/// whose columns changed, is a finding rather than the end of the comparison.
async fn compare_table(session: &Session, t: &PlannedTable) -> Result<TableChange> {
    let table = match t.kind {
        PartKind::Table => t.name.to_string(),
        PartKind::LargeObjects => "large objects".to_owned(),
    };
    let mut change = TableChange {
        table,
        change: Change::Unchanged,
        rows_now: None,
        rows_in_snapshot: Some(t.rows),
        rows_in_partitions: None,
        columns_gone: Vec::new(),
        columns_new: Vec::new(),
        note: None,
    };
    session.batch("SAVEPOINT pgsafe_compare").await?;
    match crate::restore::verify::read_back(session, t, VerifyLevel::Full, None).await {
        Ok((rows, digest)) => {
            session.batch("RELEASE SAVEPOINT pgsafe_compare").await?;
            change.rows_now = Some(rows);
            if rows != t.rows || digest != Some(t.digest) {
                change.change = Change::Changed;
            }
            if t.kind == PartKind::Table {
                change.columns_new = columns_new(session, t).await?;
                if !change.columns_new.is_empty() {
                    change.change = Change::Changed;
                    change.note = columns_note(&change);
                }
            }
        }
        Err(e) => {
            session.batch("ROLLBACK TO SAVEPOINT pgsafe_compare; RELEASE SAVEPOINT pgsafe_compare").await?;
            match e.sqlstate() {
                Some(SqlState::UNDEFINED_TABLE) => change.change = Change::Gone,
                // A column gone, or of another type: the rows cannot be the snapshot's.
                Some(s) if s.class() == "42" && s != SqlState::INSUFFICIENT_PRIVILEGE => {
                    change.change = Change::Changed;
                    change.note = Some(format!("its columns changed since the snapshot (SQLSTATE {})", s.as_str()));
                    if t.kind == PartKind::Table {
                        change.columns_gone = columns_gone(session, t).await?;
                        change.columns_new = columns_new(session, t).await?;
                        change.rows_now = Some(count_rows(session, &t.name).await?);
                        change.note = columns_note(&change).or(change.note);
                    }
                }
                Some(s) => {
                    change.change = Change::Unknown;
                    change.note = Some(format!("it could not be read: {e} (SQLSTATE {})", s.as_str()));
                }
                None => return Err(e),
            }
        }
    }
    Ok(change)
}

/// What the columns of a table that changed since the snapshot say: those gone (the rollback brings them
/// back) and those added holding values (it drops them); `None` when neither.
fn columns_note(change: &TableChange) -> Option<String> {
    let mut parts = Vec::new();
    if !change.columns_gone.is_empty() {
        let gone: Vec<String> = change.columns_gone.iter().map(|c| format!("`{c}`")).collect();
        parts.push(format!("columns gone since the snapshot, brought back: {}", gone.join(", ")));
    }
    if !change.columns_new.is_empty() {
        let new: Vec<String> =
            change.columns_new.iter().map(|c| format!("`{}` {} values", c.column, c.values)).collect();
        parts.push(format!("columns added since the snapshot, dropped: {}", new.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The snapshot's columns of `t` that the live table lacks.
async fn columns_gone(session: &Session, t: &PlannedTable) -> Result<Vec<String>> {
    const SQL: &str = "SELECT attname::text FROM pg_catalog.pg_attribute \
        WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped";
    let name = t.name.to_string();
    let mut live = HashSet::new();
    for row in session.query(SQL, &[&name]).await? {
        live.insert(crate::pg::value::<String, _>(&row, 0, SQL)?);
    }
    Ok(t.columns.iter().filter(|c| !live.contains(&c.name)).map(|c| c.name.clone()).collect())
}

/// The columns `t` has now and the snapshot's lacks, with the values they hold that are neither NULL nor
/// the column's default; generated and identity columns, whose values the table makes, are left out, as
/// are columns holding nothing else.
async fn columns_new(session: &Session, t: &PlannedTable) -> Result<Vec<NewColumn>> {
    const SQL: &str = "SELECT a.attname::text, pg_catalog.pg_get_expr(d.adbin, d.adrelid) \
        FROM pg_catalog.pg_attribute a \
        LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
        WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
          AND a.attgenerated = '' AND a.attidentity = '' ORDER BY a.attnum";
    let name = t.name.to_string();
    let known: HashSet<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    let mut found = Vec::new();
    for row in session.query(SQL, &[&name]).await? {
        let column: String = crate::pg::value(&row, 0, SQL)?;
        if known.contains(column.as_str()) {
            continue;
        }
        let default: Option<String> = crate::pg::value(&row, 1, SQL)?;
        let col = crate::sql::quote_ident(&column);
        let other = default.map(|d| format!(" AND {col} IS DISTINCT FROM ({d})")).unwrap_or_default();
        let sql = format!("SELECT count(*) FROM ONLY {} WHERE {col} IS NOT NULL{other}", quote_qualified(&t.name));
        session.batch("SAVEPOINT pgsafe_column").await?;
        let values: i64 = match session.query_one(&sql, &[]).await {
            Ok(row) => {
                session.batch("RELEASE SAVEPOINT pgsafe_column").await?;
                crate::pg::value(&row, 0, &sql)?
            }
            // A default that does not compare (a type without equality): every value not NULL.
            Err(e) if e.sqlstate().is_some() => {
                session.batch("ROLLBACK TO SAVEPOINT pgsafe_column; RELEASE SAVEPOINT pgsafe_column").await?;
                let sql = format!("SELECT count({col}) FROM ONLY {}", quote_qualified(&t.name));
                crate::pg::value(&session.query_one(&sql, &[]).await?, 0, &sql)?
            }
            Err(e) => return Err(e),
        };
        if values > 0 {
            found.push(NewColumn { column, values: values as u64 });
        }
    }
    Ok(found)
}

async fn count_rows(session: &Session, name: &TableName) -> Result<u64> {
    let sql = format!("SELECT count(*) FROM ONLY {}", quote_qualified(name));
    let rows: i64 = crate::pg::value(&session.query_one(&sql, &[]).await?, 0, &sql)?;
    Ok(rows as u64)
}

/// A table the snapshot lacks: all its rows are lost to a rollback.
async fn count_new_table(session: &Session, name: &TableName) -> Result<TableChange> {
    Ok(TableChange {
        table: name.to_string(),
        change: Change::New,
        rows_now: Some(count_rows(session, name).await?),
        rows_in_snapshot: None,
        rows_in_partitions: None,
        columns_gone: Vec::new(),
        columns_new: Vec::new(),
        note: None,
    })
}

/// The live schema, read on `session`, against the snapshot's: [`compare_objects`].
async fn objects_against(
    session: &Session,
    snapshot_schema: &SchemaCatalog,
) -> Result<(Vec<ObjectChange>, Vec<SchemaObject>)> {
    let server = crate::catalog::read_server_facts(session).await?;
    let live = crate::schema::read_schema(session, &server, &Filters::default()).await?;
    Ok(compare_objects(&live.objects, &snapshot_schema.objects))
}

/// The key an object is matched by, now and in the snapshot.
fn key(o: &SchemaObject) -> (String, Option<String>, String) {
    (o.kind.as_str().to_owned(), o.schema.clone(), o.name.clone())
}

/// Kinds compared by definition: those with statements of their own. Privileges, and the rows of a
/// materialized view (refreshed, not defined), are not objects a user names.
fn compared(o: &SchemaObject) -> bool {
    o.create.is_some() && !matches!(o.kind, ObjectKind::Acl | ObjectKind::MaterializedViewData)
}

/// The objects that differ between `live` and `snapshot` (sorted by label), and the live objects the
/// snapshot lacks, in the live creation order.
fn compare_objects(live: &[SchemaObject], snapshot: &[SchemaObject]) -> (Vec<ObjectChange>, Vec<SchemaObject>) {
    let then: HashMap<_, &SchemaObject> = snapshot.iter().filter(|o| compared(o)).map(|o| (key(o), o)).collect();
    let now: HashSet<_> = live.iter().filter(|o| compared(o)).map(key).collect();
    let mut changes = Vec::new();
    let mut new_objects = Vec::new();
    for o in live.iter().filter(|o| compared(o)) {
        match then.get(&key(o)) {
            None => {
                changes.push(ObjectChange { object: o.label(), change: Change::New });
                new_objects.push(o.clone());
            }
            Some(t) if t.create != o.create => {
                changes.push(ObjectChange { object: o.label(), change: Change::Changed })
            }
            Some(_) => {}
        }
    }
    for o in snapshot.iter().filter(|o| compared(o) && !now.contains(&key(o))) {
        changes.push(ObjectChange { object: o.label(), change: Change::Gone });
    }
    changes.sort_by(|a, b| a.object.cmp(&b.object));
    (changes, new_objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: ObjectKind, name: &str, create: &str) -> SchemaObject {
        SchemaObject::sample(kind, name, create)
    }

    #[test]
    fn objects_are_new_changed_or_gone_by_kind_schema_and_name() {
        let snapshot = [
            object(ObjectKind::Table, "a", "CREATE TABLE a (x int);"),
            object(ObjectKind::View, "v", "CREATE VIEW v AS SELECT 1;"),
            object(ObjectKind::Function, "f()", "CREATE FUNCTION f() ..."),
        ];
        let live = [
            object(ObjectKind::Table, "a", "CREATE TABLE a (x int);"),
            object(ObjectKind::View, "v", "CREATE VIEW v AS SELECT 2;"),
            object(ObjectKind::Table, "b", "CREATE TABLE b (y int);"),
            // Same name, another kind: a different object.
            object(ObjectKind::View, "a", "CREATE VIEW a AS SELECT 1;"),
        ];
        let (changes, new_objects) = compare_objects(&live, &snapshot);
        let got: Vec<(String, Change)> = changes.iter().map(|c| (c.object.clone(), c.change)).collect();
        assert_eq!(
            got,
            [
                ("FUNCTION public.f()".to_owned(), Change::Gone),
                ("TABLE public.b".to_owned(), Change::New),
                ("VIEW public.a".to_owned(), Change::New),
                ("VIEW public.v".to_owned(), Change::Changed),
            ]
        );
        let names: Vec<&str> = new_objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
    }

    #[test]
    fn only_changed_new_and_unreadable_tables_lose_rows() {
        let table = |name: &str, change| TableChange {
            table: name.into(),
            change,
            rows_now: None,
            rows_in_snapshot: None,
            rows_in_partitions: None,
            columns_gone: Vec::new(),
            columns_new: Vec::new(),
            note: None,
        };
        let mut changes =
            Changes { tables: vec![table("a", Change::Unchanged), table("g", Change::Gone)], objects: vec![] };
        assert!(!changes.loses_anything());
        changes.objects.push(ObjectChange { object: "VIEW public.v".into(), change: Change::Gone });
        assert!(!changes.loses_anything(), "an object that comes back loses nothing");
        changes.tables.push(table("c", Change::Changed));
        let losing: Vec<&str> = changes.tables_losing_rows().map(|t| t.table.as_str()).collect();
        assert_eq!(losing, ["c"]);
        assert!(changes.loses_anything());
    }
}
