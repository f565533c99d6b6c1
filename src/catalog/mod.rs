//! Reads what a dump needs from the system catalogs, inside the dump's snapshot: server facts, the
//! tables whose rows it copies (with their columns and the COPY format each needs), sequence values and
//! large objects; and the foreign keys whose rows `pgsafe check` and a data-only restore check
//! (`foreign_keys`). The SQL lives in `sql/`, one query per file, each runnable as-is in psql.

pub(crate) mod foreign_keys;
mod pattern;
pub(crate) mod query;

pub use pattern::NamePattern;

use query::get;

use crate::error::Result;
use crate::format::{ColumnInfo, CopyFormat, SequenceValue, ServerFacts, TableName};
use crate::pg::{Session, quote_qualified};
use crate::schema::ObjectKind;

/// Which objects a dump or restore takes, with pg_dump's rules for `-n`, `-N`, `-t`, `-T`.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub include_schemas: Vec<NamePattern>,
    pub exclude_schemas: Vec<NamePattern>,
    pub include_tables: Vec<NamePattern>,
    pub exclude_tables: Vec<NamePattern>,
    /// Tables whose definition is kept but whose rows are not (`--exclude-table-data`).
    pub exclude_table_data: Vec<NamePattern>,
    /// Unlogged tables and sequences are kept without their rows and values (`--no-unlogged-table-data`).
    pub no_unlogged_table_data: bool,
    /// `--table-and-children`, `--exclude-table-and-children`, `--exclude-table-data-and-children` (a
    /// dump's, as pg_dump 16's): as `-t`, `-T` and `--exclude-table-data`, and each matched table's
    /// partitions and inheritance children at every level. [`with_children`] turns them into exact names.
    pub include_tables_and_children: Vec<NamePattern>,
    pub exclude_tables_and_children: Vec<NamePattern>,
    pub exclude_table_data_and_children: Vec<NamePattern>,
}

impl Filters {
    /// Does the dump take this table (or sequence)? With `-t`, exactly the tables it names (`-n` and
    /// `-N` then have no effect, as in pg_dump); otherwise those of the included schemas.
    pub fn selects(&self, schema: &str, name: &str, visible: bool) -> bool {
        let any = |ps: &[NamePattern]| ps.iter().any(|p| p.matches_object(schema, name, visible));
        if any(&self.exclude_tables) {
            return false;
        }
        if !self.include_tables.is_empty() {
            return any(&self.include_tables);
        }
        if self.exclude_schemas.iter().any(|p| p.matches_schema(schema)) {
            return false;
        }
        self.include_schemas.is_empty() || self.include_schemas.iter().any(|p| p.matches_schema(schema))
    }

    /// Is this schema in the dump (`-n`, `-N`)?
    pub fn selects_schema(&self, schema: &str) -> bool {
        if self.exclude_schemas.iter().any(|p| p.matches_schema(schema)) {
            return false;
        }
        self.include_schemas.is_empty() || self.include_schemas.iter().any(|p| p.matches_schema(schema))
    }

    /// Does the dump take this schema object? Objects of a table (`table`, with whether it is visible)
    /// follow the table; with `-t` nothing else is taken; with `-n`, objects outside schemas are not
    /// taken, as pg_dump does. A table's (or schema's) membership of a publication goes with the
    /// publication, which `-t` and `-n` leave out, as pg_dump does: without it the membership could not
    /// be made.
    pub fn selects_object(
        &self,
        kind: &ObjectKind,
        schema: Option<&str>,
        name: &str,
        table: Option<(&TableName, bool)>,
    ) -> bool {
        if matches!(kind, ObjectKind::PublicationTable | ObjectKind::PublicationTablesInSchema) && self.narrows() {
            return false;
        }
        if let Some((t, visible)) = table {
            return self.selects(&t.schema, &t.name, visible);
        }
        if !self.include_tables.is_empty() {
            return false;
        }
        match (schema, kind) {
            (_, ObjectKind::Schema) => self.selects_schema(name),
            (Some(s), _) => self.selects_schema(s),
            (None, _) => !self.narrows(),
        }
    }

    /// Does the dump take this table's rows?
    pub fn selects_data(&self, schema: &str, name: &str, visible: bool) -> bool {
        !self.exclude_table_data.iter().any(|p| p.matches_object(schema, name, visible))
    }

    /// The `-n` and `-t` patterns (as `-n PATTERN`, `-t PATTERN`) that match none of `schemas` and none of
    /// `relations` (schema, name, visible on the search path): refused by dump and restore alike, so that a
    /// mistyped name cannot quietly select nothing.
    pub fn unmatched(&self, schemas: &[&str], relations: &[(&str, &str, bool)]) -> Vec<String> {
        let schemas = self
            .include_schemas
            .iter()
            .filter(|p| !schemas.iter().any(|s| p.matches_schema(s)))
            .map(|p| format!("-n {}", p.source()));
        let tables = self
            .include_tables
            .iter()
            .filter(|p| !relations.iter().any(|&(s, n, visible)| p.matches_object(s, n, visible)))
            .map(|p| format!("-t {}", p.source()));
        let families = self
            .include_tables_and_children
            .iter()
            .filter(|p| !relations.iter().any(|&(s, n, visible)| p.matches_object(s, n, visible)))
            .map(|p| format!("--table-and-children {}", p.source()));
        schemas.chain(tables).chain(families).collect()
    }

    /// The hint for `unmatched` patterns with a capital letter outside double quotes: pg_dump's rules fold
    /// it to lower case, so `Orders` finds `orders`, not the table `"Orders"`.
    pub fn case_hint(unmatched: &[String]) -> Option<&'static str> {
        let folds = |pattern: &str| {
            let mut quoted = false;
            pattern.chars().any(|c| {
                quoted ^= c == '"';
                !quoted && c.is_ascii_uppercase()
            })
        };
        unmatched.iter().any(|u| folds(u.get(3..).unwrap_or_default())).then_some(
            "a pattern is folded to lower case outside double quotes, as pg_dump's: name a mixed-case table \
             as `-t '\"Orders\"'`",
        )
    }

    /// True when any `-n` or `-t` narrows the dump; pg_dump then leaves large objects out.
    pub fn narrows(&self) -> bool {
        !self.include_schemas.is_empty()
            || !self.include_tables.is_empty()
            || !self.include_tables_and_children.is_empty()
    }
}

/// A table whose rows the dump copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub oid: u32,
    pub name: TableName,
    /// Size of the main fork when the dump started, in bytes and pages.
    pub bytes: u64,
    pub pages: u64,
    pub estimated_rows: u64,
    /// For an extension's configuration table, the filter its extension registered (`WHERE ...`).
    pub extension_condition: Option<String>,
    /// For a partition whose rows a restore must route again (see `PartInfo::load_via`): the topmost
    /// partitioned table.
    pub load_via: Option<TableName>,
    pub columns: Vec<ColumnInfo>,
    pub format: CopyFormat,
}

/// Large objects in the database, as the dump found them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LargeObjects {
    pub count: u64,
    pub bytes: u64,
}

/// Everything the data path of a dump reads from the catalogs.
#[derive(Debug, Clone)]
pub struct DataCatalog {
    pub server: ServerFacts,
    pub tables: Vec<Table>,
    pub sequences: Vec<SequenceValue>,
    pub large_objects: Option<LargeObjects>,
}

/// Reads the server's facts: the first catalog query of a dump, which also turns JIT compilation off for the
/// session. The catalog queries that follow are big (the schema engine's tables query deparses every
/// column), and on a database of thousands of tables their cost passes `jit_above_cost`: compiling them
/// then took longer than running them (7 of 9.5 seconds of one query at 7,000 tables), and grew faster than
/// the catalog did.
pub async fn read_server_facts(session: &Session) -> Result<ServerFacts> {
    session.batch("SET jit = off").await?;
    const SERVER_FACTS: &str = "server_facts";
    let row = query::run_one(session, SERVER_FACTS, include_str!("sql/server_facts.sql")).await?;
    Ok(ServerFacts {
        version: get(&row, SERVER_FACTS, "version")?,
        version_num: get::<i32>(&row, SERVER_FACTS, "version_num")? as u32,
        database: get(&row, SERVER_FACTS, "database")?,
        encoding: get(&row, SERVER_FACTS, "encoding")?,
        integer_datetimes: get(&row, SERVER_FACTS, "integer_datetimes")?,
    })
}

/// Reads the tables the filters select, takes `ACCESS SHARE` locks on them (so concurrent DDL cannot drop
/// or alter them before the dump is done, as pg_dump does), then reads their columns and COPY formats.
/// Tables whose data is excluded are left out: this is the data path.
///
/// `lock_wait` bounds how long a lock may wait (pg_dump's `--lock-wait-timeout`): a table that someone
/// holds or awaits in `ACCESS EXCLUSIVE` mode then fails the dump instead of stalling it.
pub async fn read_tables(
    session: &Session,
    server: &ServerFacts,
    filters: &Filters,
    lock_wait: Option<std::time::Duration>,
) -> Result<Vec<Table>> {
    // Reading sizes takes locks too, so the limit holds from the first catalog query to the last lock.
    if let Some(wait) = lock_wait {
        session.batch(&format!("SET lock_timeout = {}", wait.as_millis().max(1))).await?;
    }
    let tables = read_and_lock(session, server, filters).await.map_err(|e| match lock_wait {
        Some(wait) if e.sqlstate() == Some(crate::SqlState::LOCK_NOT_AVAILABLE) => crate::Error::new(
            crate::ErrorKind::Database,
            format!(
                "could not lock the tables to dump within {wait:?}: another session holds or awaits an ACCESS EXCLUSIVE lock on one of them"
            ),
        )
        .with_hint("see `pg_locks` for who holds it, or raise `--lock-wait-timeout`"),
        _ => e,
    })?;
    if lock_wait.is_some() {
        session.batch("SET lock_timeout = 0").await?;
    }
    Ok(tables)
}

async fn read_and_lock(session: &Session, server: &ServerFacts, filters: &Filters) -> Result<Vec<Table>> {
    const TABLES: &str = "tables";
    let rows = query::run(session, TABLES, include_str!("sql/tables.sql"), &[]).await?;
    let mut tables = Vec::new();
    for row in rows {
        let schema: String = get(&row, TABLES, "schema")?;
        let name: String = get(&row, TABLES, "name")?;
        // The functions below read the latest catalog, not the snapshot: NULL for a table dropped since
        // the snapshot began (locking it then fails by name).
        let visible = get::<Option<bool>>(&row, TABLES, "visible")?.unwrap_or(false);
        if !filters.selects(&schema, &name, visible)
            || !filters.selects_data(&schema, &name, visible)
            || (filters.no_unlogged_table_data && get::<bool>(&row, TABLES, "unlogged")?)
        {
            continue;
        }
        let size =
            |column: &str| -> Result<u64> { Ok(get::<Option<i64>>(&row, TABLES, column)?.unwrap_or(0).max(0) as u64) };
        tables.push(Table {
            oid: get::<i64>(&row, TABLES, "oid")? as u32,
            name: TableName { schema, name },
            bytes: size("bytes")?,
            pages: size("pages")?,
            estimated_rows: size("estimated_rows")?,
            extension_condition: get(&row, TABLES, "extension_condition")?,
            load_via: match (get(&row, TABLES, "route_schema")?, get(&row, TABLES, "route_name")?) {
                (Some(schema), Some(name)) => Some(TableName { schema, name }),
                _ => None,
            },
            columns: Vec::new(),
            format: CopyFormat::Binary,
        });
    }
    lock(session, &tables).await?;

    const COLUMNS: &str = "columns";
    let oids: Vec<i64> = tables.iter().map(|t| i64::from(t.oid)).collect();
    let by_oid: std::collections::HashMap<u32, usize> = tables.iter().enumerate().map(|(i, t)| (t.oid, i)).collect();
    let mut type_of: Vec<(usize, i64)> = Vec::new();
    for row in query::run(session, COLUMNS, include_str!("sql/columns.sql"), &[&oids]).await? {
        let oid = get::<i64>(&row, COLUMNS, "table_oid")? as u32;
        let Some(&table) = by_oid.get(&oid) else { continue };
        type_of.push((table, get(&row, COLUMNS, "type_oid")?));
        tables[table]
            .columns
            .push(ColumnInfo { name: get(&row, COLUMNS, "name")?, type_name: get(&row, COLUMNS, "type")? });
    }
    let mut type_oids: Vec<i64> = type_of.iter().map(|(_, t)| *t).collect();
    type_oids.sort_unstable();
    type_oids.dedup();
    let (name, sql) = if server.version_num >= 140000 {
        ("text_types_14", include_str!("sql/text_types_14.sql"))
    } else {
        ("text_types_13", include_str!("sql/text_types_13.sql"))
    };
    let text: std::collections::HashSet<i64> = query::run(session, name, sql, &[&type_oids])
        .await?
        .iter()
        .map(|r| get::<i64>(r, name, "type_oid"))
        .collect::<Result<_>>()?;
    for (table, type_oid) in type_of {
        if text.contains(&type_oid) {
            tables[table].format = CopyFormat::Text;
        }
    }
    Ok(tables)
}

/// `filters` with its `...-and-children` patterns made exact names: each table they match and every
/// partition and inheritance child of it, added to `-t`, `-T` or `--exclude-table-data`; and a warning for
/// each parent the dump takes without some of its descendants, none of which `-T` left out by name (a
/// partitioned table holds no rows of its own: its partitions do).
pub async fn with_children(session: &Session, filters: &Filters) -> Result<(Filters, Vec<String>)> {
    let mut filters = filters.clone();
    let families = [
        &filters.include_tables_and_children,
        &filters.exclude_tables_and_children,
        &filters.exclude_table_data_and_children,
    ];
    if filters.include_tables.is_empty() && families.iter().all(|f| f.is_empty()) {
        return Ok((filters, Vec::new()));
    }
    const DESCENDANTS: &str = "descendants";
    let rows = query::run(session, DESCENDANTS, include_str!("sql/descendants.sql"), &[]).await?;
    struct Descent {
        child: TableName,
        visible: bool,
        ancestor: TableName,
        ancestor_visible: bool,
        partitioned: bool,
    }
    let mut descents = Vec::with_capacity(rows.len());
    for r in &rows {
        descents.push(Descent {
            child: TableName { schema: get(r, DESCENDANTS, "schema")?, name: get(r, DESCENDANTS, "name")? },
            visible: get::<Option<bool>>(r, DESCENDANTS, "visible")?.unwrap_or(false),
            ancestor: TableName {
                schema: get(r, DESCENDANTS, "ancestor_schema")?,
                name: get(r, DESCENDANTS, "ancestor_name")?,
            },
            ancestor_visible: get::<Option<bool>>(r, DESCENDANTS, "ancestor_visible")?.unwrap_or(false),
            partitioned: get(r, DESCENDANTS, "ancestor_partitioned")?,
        });
    }
    let exact = |t: &TableName| NamePattern::exact(&t.schema, &t.name);
    let expand = |patterns: &[NamePattern], into: &mut Vec<NamePattern>| -> Result<()> {
        if patterns.is_empty() {
            return Ok(());
        }
        into.extend(patterns.iter().cloned());
        for d in &descents {
            if patterns.iter().any(|p| p.matches_object(&d.ancestor.schema, &d.ancestor.name, d.ancestor_visible)) {
                into.push(exact(&d.child)?);
            }
        }
        Ok(())
    };
    let (include, exclude, data) = (
        filters.include_tables_and_children.clone(),
        filters.exclude_tables_and_children.clone(),
        filters.exclude_table_data_and_children.clone(),
    );
    expand(&include, &mut filters.include_tables)?;
    expand(&exclude, &mut filters.exclude_tables)?;
    expand(&data, &mut filters.exclude_table_data)?;

    // A parent taken without descendants that no `-T` names.
    let mut missing: std::collections::BTreeMap<&TableName, (bool, Vec<&TableName>)> = Default::default();
    if !filters.include_tables.is_empty() {
        let excluded = |t: &TableName, visible: bool| {
            filters.exclude_tables.iter().any(|p| p.matches_object(&t.schema, &t.name, visible))
        };
        for d in &descents {
            if filters.selects(&d.ancestor.schema, &d.ancestor.name, d.ancestor_visible)
                && !filters.selects(&d.child.schema, &d.child.name, d.visible)
                && !excluded(&d.child, d.visible)
            {
                let entry = missing.entry(&d.ancestor).or_insert((d.partitioned, Vec::new()));
                entry.1.push(&d.child);
            }
        }
    }
    let warnings = missing
        .into_iter()
        .map(|(parent, (partitioned, children))| {
            let names: Vec<String> = children.iter().take(5).map(|c| format!("`{c}`")).collect();
            let more = match children.len() {
                n if n > 5 => format!(" and {} more", n - 5),
                _ => String::new(),
            };
            let what = if partitioned { "partitions" } else { "inheritance children" };
            format!(
                "`{parent}` is dumped without {} of its {what} ({}{more}), whose rows are not in the archive; \
                 `--table-and-children {}` takes them (as pg_dump 16's)",
                children.len(),
                names.join(", "),
                quote_qualified(parent),
            )
        })
        .collect();
    Ok((filters, warnings))
}

/// Warnings of the foreign keys from a table whose rows the dump takes to one whose rows
/// `--exclude-table-data` leaves out (both tables dumped): restored, such an archive's rows break the key
/// (the restore adds it NOT VALID and exits 1) unless no row references the table. Nothing is read
/// without an `--exclude-table-data`. A referenced partitioned table, whose rows its partitions hold, is
/// not followed.
pub async fn keys_to_rows_left_out(session: &Session, filters: &Filters) -> Result<Vec<String>> {
    if filters.exclude_table_data.is_empty() {
        return Ok(Vec::new());
    }
    const KEYS_ACROSS: &str = "keys_across";
    let rows = query::run(session, KEYS_ACROSS, include_str!("sql/keys_across.sql"), &[]).await?;
    let mut warnings = Vec::new();
    for r in &rows {
        let table = TableName { schema: get(r, KEYS_ACROSS, "schema")?, name: get(r, KEYS_ACROSS, "table_name")? };
        let visible = get::<Option<bool>>(r, KEYS_ACROSS, "visible")?.unwrap_or(false);
        let referenced = TableName {
            schema: get(r, KEYS_ACROSS, "referenced_schema")?,
            name: get(r, KEYS_ACROSS, "referenced_name")?,
        };
        let referenced_visible = get::<Option<bool>>(r, KEYS_ACROSS, "referenced_visible")?.unwrap_or(false);
        let dumped = |t: &TableName, visible: bool| filters.selects(&t.schema, &t.name, visible);
        if dumped(&table, visible)
            && dumped(&referenced, referenced_visible)
            && filters.selects_data(&table.schema, &table.name, visible)
            && !filters.selects_data(&referenced.schema, &referenced.name, referenced_visible)
        {
            let name: String = get(r, KEYS_ACROSS, "name")?;
            warnings.push(format!(
                "the foreign key `{name}` of `{table}` references `{referenced}`, whose rows `--exclude-table-data` \
                 leaves out: restored, rows of `{table}` that reference it break the key, which the restore then \
                 adds NOT VALID (exit 1)"
            ));
        }
    }
    Ok(warnings)
}

/// Refuses `-n` and `-t` patterns that name nothing, before anything is dumped: a mistyped name would
/// otherwise make an archive without what the user asked for (pg_dump's `--strict-names`, always on).
pub async fn check_patterns(session: &Session, filters: &Filters) -> Result<()> {
    if filters.include_schemas.is_empty()
        && filters.include_tables.is_empty()
        && filters.include_tables_and_children.is_empty()
    {
        return Ok(());
    }
    const PATTERN_TARGETS: &str = "pattern_targets";
    let rows = query::run(session, PATTERN_TARGETS, include_str!("sql/pattern_targets.sql"), &[]).await?;
    let mut schemas = Vec::new();
    let mut relations = Vec::new();
    for r in &rows {
        let schema: &str = get(r, PATTERN_TARGETS, "schema")?;
        match get::<Option<&str>>(r, PATTERN_TARGETS, "relation")? {
            Some(name) => {
                let visible = get::<Option<bool>>(r, PATTERN_TARGETS, "visible")?.unwrap_or(false);
                relations.push((schema, name, visible));
            }
            None => schemas.push(schema),
        }
    }
    let unmatched = filters.unmatched(&schemas, &relations);
    if unmatched.is_empty() {
        return Ok(());
    }
    let error = crate::Error::new(
        crate::ErrorKind::InvalidInput,
        format!("nothing matches `{}`; nothing was dumped", unmatched.join("`, `")),
    );
    let error = match Filters::case_hint(&unmatched) {
        Some(hint) => error.with_hint(hint),
        None => error,
    };
    Err(if unmatched.iter().any(|u| u.starts_with("-t ") && !u.contains('.')) {
        error.and_hint(
            "an unqualified `-t` pattern matches only tables on the search path; qualify it as `schema.table`",
        )
    } else {
        error
    })
}

/// `LOCK TABLE ... IN ACCESS SHARE MODE`, many tables per statement. The dump holds these locks until it
/// ends, and the server's lock table is shared by all sessions and sized by `max_locks_per_transaction`: a
/// database of many tables can fill it. The server then says only "out of shared memory" (SQLSTATE
/// 53200), which names no setting a user would look at; so each statement runs in a `DO` block that
/// catches that SQLSTATE on the server and says what the dump needs and what to change.
async fn lock(session: &Session, tables: &[Table]) -> Result<()> {
    for batch in tables.chunks(1000) {
        let names: Vec<String> = batch.iter().map(|t| format!("ONLY {}", quote_qualified(&t.name))).collect();
        let statement = format!("LOCK TABLE {} IN ACCESS SHARE MODE;", names.join(", "));
        session.batch(&explain_full_lock_table(&statement, tables.len())).await.map_err(unreadable_table)?;
    }
    Ok(())
}

/// A table the dumping role may not read (SQLSTATE 42501) fails the lock of the tables: said as such,
/// without the lock's own statement, with the two ways on.
fn unreadable_table(e: crate::Error) -> crate::Error {
    if e.sqlstate() != Some(crate::SqlState::INSUFFICIENT_PRIVILEGE) {
        return e;
    }
    // The server's own words follow the statement and the target: "`...` failed on `target`: ...".
    let message = e.to_string();
    let server = message.split_once("`: ").map_or(message.as_str(), |(_, said)| said);
    crate::Error::new(
        crate::ErrorKind::Database,
        format!("locking the tables to dump: {server}: the dumping role must be able to read every table it dumps"),
    )
    .with_sqlstate(crate::SqlState::INSUFFICIENT_PRIVILEGE)
    .with_hint("leave the table out (`-T SCHEMA.TABLE`), or `GRANT SELECT` on it to the dumping role")
}

/// `statement` (which locks some of the `tables` tables a dump locks) in a `DO` block that turns a full
/// lock table (SQLSTATE 53200, condition `out_of_memory`) into an error that says why and a hint that says
/// which setting to raise, to what, and that the server must restart.
fn explain_full_lock_table(statement: &str, tables: usize) -> String {
    // The body's dollar quote must not occur in it (a quoted table name may hold anything).
    let mut tag = String::from("$pgsafe_lock$");
    while statement.contains(&tag[..tag.len() - 1]) {
        tag.insert(tag.len() - 1, '_');
    }
    format!(
        "DO {tag}
DECLARE
    per_session int := pg_catalog.current_setting('max_locks_per_transaction')::int;
    sessions int := pg_catalog.current_setting('max_connections')::int
                    + pg_catalog.current_setting('max_prepared_transactions')::int;
BEGIN
    {statement}
EXCEPTION WHEN out_of_memory THEN
    RAISE EXCEPTION USING ERRCODE = 'out_of_memory',
        MESSAGE = pg_catalog.format('the server''s lock table is full: a dump locks each of the %s tables it dumps until it ends, and `max_locks_per_transaction` = %s leaves room for about %s locks (%s for each of %s sessions and prepared transactions), shared by all sessions', {tables}, per_session, per_session * sessions, per_session, sessions),
        HINT = pg_catalog.format('raise `max_locks_per_transaction` to at least %s (`ALTER SYSTEM SET max_locks_per_transaction = %s`, then restart the server), or dump fewer tables at once (`-n`, `-t`)', per_session + ({tables} + sessions - 1) / sessions, per_session + ({tables} + sessions - 1) / sessions);
END
{tag}"
    )
}

/// Reads the values of the sequences the filters select: a table's own with the table.
pub async fn read_sequences(session: &Session, filters: &Filters) -> Result<Vec<SequenceValue>> {
    const SEQUENCES: &str = "sequences";
    let mut names = Vec::new();
    for row in query::run(session, SEQUENCES, include_str!("sql/sequences.sql"), &[]).await? {
        let (schema, name): (String, String) = (get(&row, SEQUENCES, "schema")?, get(&row, SEQUENCES, "name")?);
        let visible = get::<Option<bool>>(&row, SEQUENCES, "visible")?.unwrap_or(false);
        let unlogged: bool = get(&row, SEQUENCES, "unlogged")?;
        let owner: Option<String> = get(&row, SEQUENCES, "owner_name")?;
        let owner_schema: Option<String> = get(&row, SEQUENCES, "owner_schema")?;
        let owner_visible = get::<Option<bool>>(&row, SEQUENCES, "owner_visible")?.unwrap_or(false);
        // A table's own sequence (serial, identity) goes with the table, as the schema's definition of it
        // does: `-t t` takes it, `-T t` leaves it out.
        let selected = match owner_schema.zip(owner) {
            Some((s, t)) => filters.selects(&s, &t, owner_visible),
            None => filters.selects(&schema, &name, visible),
        };
        if selected && filters.selects_data(&schema, &name, visible) && !(filters.no_unlogged_table_data && unlogged) {
            names.push(TableName { schema, name });
        }
    }
    let mut values = Vec::with_capacity(names.len());
    for batch in names.chunks(500) {
        let sql = batch
            .iter()
            .enumerate()
            .map(|(i, n)| format!("SELECT {i} AS i, last_value, is_called FROM {}", quote_qualified(n)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        const VALUES: &str = "sequence values";
        let mut rows = query::run(session, VALUES, &sql, &[]).await?;
        rows.sort_by_key(|r| r.try_get::<_, i32>("i").unwrap_or(i32::MAX));
        for (n, row) in batch.iter().zip(rows) {
            values.push(SequenceValue {
                name: n.clone(),
                last_value: get(&row, VALUES, "last_value")?,
                is_called: get(&row, VALUES, "is_called")?,
            });
        }
    }
    Ok(values)
}

/// Counts the large objects; `None` when there are none.
pub async fn read_large_objects(session: &Session) -> Result<Option<LargeObjects>> {
    const LARGE_OBJECTS: &str = "large_objects";
    let row = query::run_one(session, LARGE_OBJECTS, include_str!("sql/large_objects.sql")).await?;
    let count = get::<i64>(&row, LARGE_OBJECTS, "count")?.max(0) as u64;
    let bytes = get::<Option<i64>>(&row, LARGE_OBJECTS, "bytes")?.unwrap_or(0).max(0) as u64;
    Ok((count > 0).then_some(LargeObjects { count, bytes }))
}

#[cfg(test)]
mod tests {
    use super::explain_full_lock_table;

    #[test]
    fn a_capital_outside_quotes_gets_the_hint_to_quote_it() {
        let hint =
            |patterns: &[&str]| super::Filters::case_hint(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>());
        assert!(hint(&["-t UPPER"]).is_some());
        assert!(hint(&["-t public.Orders", "-n x"]).is_some());
        assert_eq!(hint(&["-t \"UPPER\""]), None);
        assert!(hint(&["-t orders", "-n Sales\"\""]).is_some());
        assert_eq!(hint(&["-t orders"]), None);
    }

    #[test]
    fn the_lock_statements_dollar_quote_never_occurs_in_it() {
        let plain = explain_full_lock_table("LOCK TABLE ONLY public.t IN ACCESS SHARE MODE;", 1);
        assert!(plain.starts_with("DO $pgsafe_lock$\n") && plain.ends_with("\n$pgsafe_lock$"), "{plain}");
        let statement =
            "LOCK TABLE ONLY public.\"$pgsafe_lock$\", ONLY public.\"$pgsafe_lock_$\" IN ACCESS SHARE MODE;";
        let quoted = explain_full_lock_table(statement, 2);
        assert!(quoted.starts_with("DO $pgsafe_lock__$\n") && quoted.ends_with("\n$pgsafe_lock__$"), "{quoted}");
        assert!(quoted.contains(statement));
    }
}
