//! The restore's target: what it holds (user objects, tables and their columns, roles) and what a restore
//! does to it before the load (creating the database, dropping the archive's objects, creating roles,
//! emptying tables). What fires during a load is [`super::units`]'s.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use super::plan::{DatabaseStep, PlannedTable, RestorePlan, table_names};
use crate::archive::ArchiveReader;
use crate::error::{Error, ErrorKind, Result, SqlState};
use crate::format::{BinaryTuples, CopyError, CopyFormat, PartKind, TableName};
use crate::pg::{ConnectOptions, Session, quote_ident, quote_qualified};

/// Refuses a target that holds any user object: restoring over one would mix two databases. The
/// archive's extensions that the target has already (`kept`) are no such object, nor what the restore
/// needs and leaves out (`needed`: [`Needed::probe`](super::plan::Needed::probe)s), which must be there.
pub(super) async fn refuse_non_empty(session: &Session, kept: &[String], needed: &[String]) -> Result<()> {
    let rows = session.query(include_str!("sql/target_objects.sql"), &[&kept, &needed]).await?;
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

/// Of the extensions `names`, those the target has already.
pub(super) async fn extensions_present(session: &Session, names: &[String]) -> Result<Vec<String>> {
    const SQL: &str = "SELECT extname::text FROM pg_catalog.pg_extension WHERE extname = ANY ($1::text[]) ORDER BY 1";
    let rows = session.query(SQL, &[&names]).await?;
    rows.iter().map(|r| crate::pg::value(r, 0, SQL)).collect()
}

/// Of the extensions `names`, those the target has and the restoring role may not drop: owned by a role
/// it is not a member of (a superuser made it for a database's owner, as managed services do).
pub(super) async fn extensions_of_others(session: &Session, names: &[String]) -> Result<Vec<String>> {
    const SQL: &str = "SELECT extname::text FROM pg_catalog.pg_extension
                       WHERE extname = ANY ($1::text[]) AND NOT pg_catalog.pg_has_role(extowner, 'USAGE') ORDER BY 1";
    let rows = session.query(SQL, &[&names]).await?;
    rows.iter().map(|r| crate::pg::value(r, 0, SQL)).collect()
}

/// Drops the archive's objects that exist in the target, dependents first (`--clean`), in the session's
/// transaction.
pub(super) async fn drop_objects(
    phase: &mut super::whole::FirstPhase<'_>,
    statements: &[String],
    plan: &RestorePlan,
    archive: &ArchiveReader,
) -> Result<()> {
    // The archive's large objects the target has: the load makes them again with their OIDs.
    for unlink in unlink_large_objects(plan, archive)? {
        phase.run(&unlink, 1).await.map_err(|e| e.context("removing the archive's large objects (`--clean`)"))?;
    }
    // In batches, as the objects are made: the phase may have to commit between them (and a commit ends
    // a SET LOCAL).
    for batch in statements.chunks(phase.batch_objects()) {
        let sql = format!("SET LOCAL client_min_messages = warning;\n{}", batch.join("\n"));
        phase.run(&sql, batch.len()).await.map_err(|e| {
            let e = e.context("dropping the archive's objects (`--clean`)");
            // The server's "Use DROP ... CASCADE" is no advice for a restore: what depends on the object
            // is not in the archive (or not in what the filters take).
            match e.sqlstate() {
                Some(SqlState::DEPENDENT_OBJECTS_STILL_EXIST) => e.retain_hint(|_| false).with_hint(
                    "objects of the target that this restore does not drop (the server names them above) depend \
                     on one it drops: drop them first; with `-t` or `-n`, restore without them so that those are \
                     dropped and restored too, or reload only the rows (`--data-only --clean`, with `-1` when \
                     another table references them)",
                ),
                _ => e,
            }
        })?;
    }
    Ok(())
}

/// Which of the objects `probes` ([`Needed::probe`](super::plan::Needed::probe): `function:public.f(text)`,
/// `type:...`, `schema:...`, `extension:...`, `relation:...`) the target does not have.
pub(super) async fn missing_objects(session: &Session, probes: &[String]) -> Result<Vec<String>> {
    const SQL: &str = "SELECT p FROM unnest($1::text[]) AS p WHERE NOT CASE split_part(p, ':', 1)
        WHEN 'schema' THEN pg_catalog.to_regnamespace(substr(p, 8)) IS NOT NULL
        WHEN 'extension' THEN EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = substr(p, 11))
        WHEN 'type' THEN pg_catalog.to_regtype(substr(p, 6)) IS NOT NULL
        WHEN 'function' THEN pg_catalog.to_regprocedure(substr(p, 10)) IS NOT NULL
        WHEN 'relation' THEN pg_catalog.to_regclass(substr(p, 10)) IS NOT NULL
        ELSE true END";
    let rows = session.query(SQL, &[&probes]).await?;
    rows.iter().map(|r| crate::pg::value(r, 0, SQL)).collect()
}

/// Which of `tables` the target does not have.
pub(super) async fn missing_tables(session: &Session, tables: &BTreeSet<TableName>) -> Result<BTreeSet<TableName>> {
    let names: Vec<String> = tables.iter().map(quote_qualified).collect();
    let mut missing = BTreeSet::new();
    let sql = "SELECT n FROM unnest($1::text[]) AS n WHERE pg_catalog.to_regclass(n) IS NULL";
    let rows = session
        .query(sql, &[&names])
        .await
        .map_err(|e| e.context("asking the target for the tables the restore needs but does not make"))?;
    for row in rows {
        let name: String = row.try_get(0).map_err(|e| unreadable("which tables the target lacks", e))?;
        missing.extend(tables.iter().filter(|t| quote_qualified(*t) == name).cloned());
    }
    Ok(missing)
}

/// How long [`drop_database`] waits for sessions to leave a database before it ends them.
const DROP_PATIENCE: Duration = Duration::from_secs(10);

/// Drops `name`, a database only pgsafe has used (one `restore --create` made, a swap's restored copy, a
/// rehearsal's scratch copy), through `maintenance`, a session on another database of the cluster.
///
/// A plain `DROP DATABASE` first: the server itself ends the autovacuum workers in it (a fresh copy
/// often has one), which `WITH (FORCE)` would instead have to terminate, and a role that is no
/// superuser may not terminate them (42501). A session still there (55006, object in use: one the
/// rehearsed command left, a moment before it is gone) is waited for a few seconds, and only then
/// ended by `WITH (FORCE)` (13 and later).
pub(crate) async fn drop_database(maintenance: &Session, name: &str) -> Result<()> {
    let plain = format!("DROP DATABASE IF EXISTS {}", quote_ident(name));
    let started = Instant::now();
    loop {
        let in_use = match maintenance.batch(&plain).await {
            Ok(()) => return Ok(()),
            Err(e) if e.sqlstate() == Some(SqlState::OBJECT_IN_USE) => e,
            Err(e) => return Err(e),
        };
        if started.elapsed() >= DROP_PATIENCE {
            if maintenance.server_version() < 130000 {
                return Err(in_use);
            }
            let forced = format!("{plain} WITH (FORCE)");
            return maintenance.batch(&forced).await.map_err(|e| {
                e.context(format!(
                    "sessions stayed on `{name}` for {}s, and ending them failed",
                    DROP_PATIENCE.as_secs()
                ))
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
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

/// Whether the session's role is a superuser: it may then keep foreign keys from firing with
/// `session_replication_role`, which other roles may not set.
pub(super) async fn is_superuser(session: &Session) -> Result<bool> {
    session
        .query_one("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user", &[])
        .await?
        .try_get(0)
        .map_err(|e| unreadable("whether the role is a superuser", e))
}

/// The most memory one post-data session sorts an index build in: a B-tree build of a table of some
/// tens of millions of rows fits, and more buys nothing measurable.
const MOST_INDEX_MEMORY: i64 = 1 << 30;

/// The `maintenance_work_mem` each of `jobs` post-data sessions builds indexes with, when it is more than
/// the server's own: a quarter of `effective_cache_size` (the server's statement of the memory its
/// machine caches data in; 4 GB unless set) shared among the sessions, at most 1 GiB each. pg_restore
/// leaves the server's setting, 64 MB by default, with which the sort of a big index spills to disk.
/// `None` keeps the server's.
/// Returns the statement that sets it, which the log names too.
pub(super) async fn index_build_memory(session: &Session, jobs: usize) -> Result<Option<String>> {
    let row = session
        .query_one(
            "SELECT pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem')),
                    pg_catalog.pg_size_bytes(pg_catalog.current_setting('effective_cache_size'))",
            &[],
        )
        .await?;
    let unreadable = |e| unreadable("the server's memory settings", e);
    let (current, cache): (i64, i64) = (row.try_get(0).map_err(unreadable)?, row.try_get(1).map_err(unreadable)?);
    Ok(index_memory_share(current, cache, jobs).map(|bytes| format!("SET maintenance_work_mem = '{}kB'", bytes >> 10)))
}

/// Which of `tables` (qualified names) inherit from a table: partitions and inheritance children. A key of
/// one is made as written, not through its index: from PostgreSQL 18 on, `ADD CONSTRAINT ... USING INDEX`
/// would make the `NOT NULL` constraint that its column inherits the table's own (`conislocal`).
pub(super) async fn inheriting(session: &Session, tables: &[String]) -> Result<HashSet<String>> {
    if tables.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = "SELECT n FROM unnest($1::text[]) AS n
               WHERE EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhrelid = pg_catalog.to_regclass(n))";
    let mut found = HashSet::new();
    for row in session.query(sql, &[&tables]).await? {
        found.insert(row.try_get(0).map_err(|e| unreadable("which tables inherit", e))?);
    }
    Ok(found)
}

fn index_memory_share(current: i64, cache: i64, jobs: usize) -> Option<i64> {
    let share = (cache / 4 / jobs.max(1) as i64).min(MOST_INDEX_MEMORY);
    // Whole kilobytes: the unit the setting is given in.
    let share = share / 1024 * 1024;
    (share > current).then_some(share)
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
    refuse_other_types(session, plan).await?;
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
                format!(
                    "SELECT {i} WHERE EXISTS (SELECT FROM {}{}{})",
                    t.only(),
                    quote_qualified(&t.name),
                    t.where_clause()
                )
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

/// What the target's catalog says of the restoring role and one table a data-only load writes into
/// (`sql/target_rights.sql`).
#[derive(Debug, Clone)]
pub(super) struct Rights {
    /// The table, qualified and quoted.
    pub table: String,
    pub owner: String,
    /// The role the session acts as.
    pub role: String,
    /// Row security applies to the role on the table: the server refuses a `COPY ... FROM` into it.
    pub row_security: bool,
    /// The columns the load writes that the role may not insert into.
    pub no_insert: Vec<String>,
    /// The table loads without a column list, and the role may insert into none of its columns.
    pub no_insert_at_all: bool,
}

impl Rights {
    /// Reads them for the ordinary tables of `tables`, each with the columns its load writes.
    pub async fn read<'a>(
        session: &Session,
        tables: impl IntoIterator<Item = &'a PlannedTable>,
    ) -> Result<Vec<Rights>> {
        let (mut names, mut columns): (Vec<String>, Vec<Option<String>>) = (Vec::new(), Vec::new());
        for t in tables.into_iter().filter(|t| t.kind == PartKind::Table) {
            let name = quote_qualified(&t.name);
            if t.columns.is_empty() {
                names.push(name.clone());
                columns.push(None);
            }
            for c in &t.columns {
                names.push(name.clone());
                columns.push(Some(c.name.clone()));
            }
        }
        let mut out = Vec::new();
        for row in session.query(include_str!("sql/target_rights.sql"), &[&names, &columns]).await? {
            let fail = |e| unreadable("the role's rights on the tables", e);
            out.push(Rights {
                table: row.try_get("table_name").map_err(fail)?,
                owner: row.try_get("owner").map_err(fail)?,
                role: row.try_get("role").map_err(fail)?,
                row_security: row.try_get("row_security").map_err(fail)?,
                no_insert: row.try_get("no_insert").map_err(fail)?,
                no_insert_at_all: row.try_get("no_insert_at_all").map_err(fail)?,
            });
        }
        Ok(out)
    }

    /// What of a `COPY ... FROM` into the table the server would refuse the role, if anything.
    fn refused(&self) -> Option<String> {
        if self.row_security {
            Some("row security applies to the role there, which refuses a `COPY` into it".to_string())
        } else if !self.no_insert.is_empty() {
            Some(format!("no INSERT on `{}`", self.no_insert.join("`, `")))
        } else if self.no_insert_at_all {
            Some("no INSERT on any column".to_string())
        } else {
            None
        }
    }
}

/// For a hint, the owners of the tables `rights` describe: the first, quoted (for `--role`), and all of
/// them, each quoted in backticks; `None` for no table.
pub(super) fn owners_hint(rights: &[&Rights]) -> Option<(String, String)> {
    let mut owners: Vec<String> = rights.iter().map(|r| quote_ident(&r.owner)).collect();
    owners.sort();
    owners.dedup();
    let first = owners.first()?.clone();
    Some((first, format!("`{}`", owners.join("` or `"))))
}

/// Refuses, before anything is written, a data-only load by a role that is not a superuser into a table
/// whose `COPY` the server would refuse it (no INSERT on a column it writes, row security): stopped there
/// after `--clean` emptied the tables, the load would have left them empty.
pub(super) async fn refuse_unloadable(session: &Session, plan: &RestorePlan, emptied: bool) -> Result<()> {
    let rights = Rights::read(session, &plan.tables).await?;
    let refused: Vec<(&Rights, String)> = rights.iter().filter_map(|r| Some((r, r.refused()?))).collect();
    let Some((first, _)) = refused.first() else { return Ok(()) };
    let problems: Vec<String> = refused.iter().map(|(r, why)| format!("`{}` ({why})", r.table)).collect();
    let clean = if emptied { ", and nothing was emptied" } else { "" };
    let mut hints = Vec::new();
    let no_insert: Vec<&str> = refused.iter().filter(|(r, _)| !r.row_security).map(|(r, _)| r.table.as_str()).collect();
    if !no_insert.is_empty() {
        hints.push(format!("`GRANT INSERT ON {} TO {}`", no_insert.join(", "), quote_ident(&first.role)));
    }
    if refused.iter().any(|(r, _)| r.row_security) {
        hints.push(
            "row security lets a superuser and a role with `BYPASSRLS` through, and a table's owner unless the table forces it"
                .to_string(),
        );
    }
    let tables: Vec<&Rights> = refused.iter().map(|(r, _)| *r).collect();
    if let Some((role, owners)) = owners_hint(&tables) {
        hints.push(format!("or restore as the owner, {owners} (`--role {role}` for a member of it)"));
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!(
            "role `{}` may not load the archive's rows into {} on `{}`; nothing was restored{clean}",
            first.role,
            problems.join(", "),
            session.target()
        ),
    )
    .with_hint(hints.join("; ")))
}

/// Empties the plan's tables (of an extension's configuration table, only the rows its filter selects:
/// the others are the extension's own) and removes the large objects whose OIDs the archive holds. The
/// tables named in `by_delete` (qualified and quoted) are emptied with `DELETE`: a table outside the
/// restore references them, so `TRUNCATE` would be refused; the caller keeps that key from firing.
pub(super) async fn empty_tables(
    session: &Session,
    plan: &RestorePlan,
    archive: &ArchiveReader,
    by_delete: &[String],
) -> Result<()> {
    let (filtered, whole): (Vec<&PlannedTable>, Vec<&PlannedTable>) = plan
        .tables
        .iter()
        .filter(|t| t.kind == PartKind::Table)
        .partition(|t| t.filter.is_some() || by_delete.contains(&quote_qualified(&t.name)));
    // One TRUNCATE, so that tables that reference each other go together; a partitioned table whose
    // every partition is emptied goes whole, which its foreign keys require.
    let names = table_names(&plan.tables);
    // A routed table is partitioned: it goes with every partition under it, whose rows it loads.
    let mut list: Vec<String> = whole.iter().map(|t| format!("{}{}", t.only(), quote_qualified(&t.name))).collect();
    for row in session.query(include_str!("sql/target_partitioned.sql"), &[&names]).await? {
        list.push(row.try_get::<_, String>("name").map_err(|e| unreadable("the partitioned tables", e))?);
    }
    if !list.is_empty() {
        session.batch(&format!("TRUNCATE {}", list.join(", "))).await.map_err(|e| {
            // "cannot truncate a table referenced in a foreign key constraint": the server's advice
            // (TRUNCATE ... CASCADE) would empty a table the restore leaves out.
            match (e.sqlstate(), by_delete.is_empty()) {
                (Some(SqlState::FEATURE_NOT_SUPPORTED), true) => e.retain_hint(|_| false).with_hint(
                    "a table the restore leaves out references one it empties (the server names both): take it \
                     too (`-t`), or restore with `-1` (`--single-transaction`), which empties the table row by row \
                     with its keys quiet and checks them afterwards",
                ),
                _ => e,
            }
        })?;
    }
    for t in filtered {
        session.batch(&format!("DELETE FROM {}{}{}", t.only(), quote_qualified(&t.name), t.where_clause())).await?;
    }
    for unlink in unlink_large_objects(plan, archive)? {
        session.batch(&unlink).await?;
    }
    Ok(())
}

/// The statements that remove those of the archive's large objects (that `plan` loads) the target has, a
/// batch of 10,000 OIDs each: the load makes them again with their OIDs, which must be free.
fn unlink_large_objects(plan: &RestorePlan, archive: &ArchiveReader) -> Result<Vec<String>> {
    let oids = archive_large_objects(plan, archive)?;
    Ok(oids
        .chunks(10_000)
        .map(|batch| {
            let list: Vec<String> = batch.iter().map(i64::to_string).collect();
            format!(
                "SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata \
                 WHERE oid = ANY ('{{{}}}'::int8[]::oid[])",
                list.join(",")
            )
        })
        .collect())
}

/// The OIDs of the large objects the archive holds, when `plan` loads them.
fn archive_large_objects(plan: &RestorePlan, archive: &ArchiveReader) -> Result<Vec<i64>> {
    let mut oids: Vec<i64> = Vec::new();
    for t in plan.tables.iter().filter(|t| t.kind == PartKind::LargeObjects) {
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
    }
    Ok(oids)
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

/// A value the server sent that pgsafe cannot read as expected: a bug or a very odd server.
/// Refuses, before anything changes, to load binary rows into a column whose type is not the archive's:
/// binary COPY reads the bytes as the target's type, so a `bigint` loads into `double precision` as
/// another number (and reads back as the bytes it loaded, so verification cannot see it), or an `int`
/// into `bigint` fails half way. Text-format parts are converted by the server, as pg_restore's are.
async fn refuse_other_types(session: &Session, plan: &RestorePlan) -> Result<()> {
    const SQL: &str = include_str!("sql/type_mismatches.sql");
    let (mut tables, mut columns, mut types) = (Vec::new(), Vec::new(), Vec::new());
    for t in plan.tables.iter().filter(|t| t.kind == PartKind::Table && t.format == CopyFormat::Binary) {
        for c in &t.columns {
            tables.push(quote_qualified(&t.name));
            columns.push(c.name.clone());
            types.push(c.type_name.clone());
        }
    }
    if tables.is_empty() {
        return Ok(());
    }
    let mut found = Vec::new();
    for row in session.query(SQL, &[&tables, &columns, &types]).await? {
        let get = |i: usize| row.try_get::<_, String>(i).map_err(|e| unreadable("the target's column types", e));
        found.push(format!("`{}`.`{}` is `{}` there and `{}` in the archive", get(0)?, get(1)?, get(3)?, get(2)?));
    }
    if found.is_empty() {
        return Ok(());
    }
    let more = if found.len() > 10 { format!(" (and {} more)", found.len() - 10) } else { String::new() };
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!(
            "`{}` has columns of other types than the archive's, which its binary rows cannot load into: {}{more}; \
             nothing was restored",
            session.target(),
            found.into_iter().take(10).collect::<Vec<_>>().join("; ")
        ),
    )
    .with_hint(
        "the tables changed since the archive was made (a migration altered a column's type): restore the whole \
         archive into a new database, or roll the whole database back, or change the columns back first",
    ))
}

pub(super) fn unreadable(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorKind::Database, format!("reading {what}: an unexpected value")).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_refused_for_row_security_or_a_column_without_insert_and_the_owners_are_hinted() {
        let rights = |owner: &str, row_security, no_insert: &[&str], no_insert_at_all| Rights {
            table: "public.t".into(),
            owner: owner.into(),
            role: "etl".into(),
            row_security,
            no_insert: no_insert.iter().map(|c| c.to_string()).collect(),
            no_insert_at_all,
        };
        assert_eq!(rights("app", false, &[], false).refused(), None);
        assert_eq!(rights("app", false, &["id", "Note"], false).refused().unwrap(), "no INSERT on `id`, `Note`");
        assert_eq!(rights("app", false, &[], true).refused().unwrap(), "no INSERT on any column");
        assert!(rights("app", true, &["id"], false).refused().unwrap().starts_with("row security applies"));
        let (a, b) = (rights("Owner", false, &[], false), rights("app", false, &[], false));
        assert_eq!(owners_hint(&[&a, &b, &a]), Some(("\"Owner\"".to_string(), "`\"Owner\"` or `app`".to_string())));
        assert_eq!(owners_hint(&[]), None);
    }

    #[test]
    fn index_builds_get_a_share_of_the_cache_when_more_than_the_server_setting() {
        const MB: i64 = 1 << 20;
        // The defaults (64 MB, 4 GB) at -j 2: 512 MB each.
        assert_eq!(index_memory_share(64 * MB, 4096 * MB, 2), Some(512 * MB));
        // A big machine: at most 1 GiB each.
        assert_eq!(index_memory_share(64 * MB, 96 * 1024 * MB, 2), Some(1024 * MB));
        // A small one, or a server already set higher: the server's own.
        assert_eq!(index_memory_share(64 * MB, 128 * MB, 1), None);
        assert_eq!(index_memory_share(2048 * MB, 4096 * MB, 2), None);
        // Many sessions share it; -j 0 is taken as 1.
        assert_eq!(index_memory_share(16 * MB, 4096 * MB, 32), Some(32 * MB));
        assert_eq!(index_memory_share(64 * MB, 4096 * MB, 0), Some(1024 * MB));
    }

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
