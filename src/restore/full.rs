//! A whole-database restore: the schema in three phases around the rows.
//!
//! ```text
//! refuse a non-empty target (or drop the archive's objects with --clean) -> roles (--create-roles)
//! -> pre-data in one transaction -> rows in parallel -> post-data in parallel, by dependency, biggest
//! first -> sequence values -> materialized view refreshes -> privileges and default privileges
//! -> verification
//! ```
//! With `--single-transaction` all of it runs in one transaction on one session.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use super::{LeaveOut, RestoreOptions, RestoreReport, TargetTable, TriggerMode, load};
use crate::archive::ArchiveReader;
use crate::catalog::Filters;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{PartKind, SequenceValue};
use crate::pg::{ConnectOptions, Session, quote_ident, quote_literal};
use crate::progress::Progress;
use crate::schema::{DatabaseProperties, SchemaCatalog, SchemaObject, Section};

/// Settings for every session that runs schema statements: names in the archive's statements are all
/// qualified, and function bodies may refer to objects created later, as pg_restore has it.
const SCHEMA_SETTINGS: &str = "SET search_path = ''; SET check_function_bodies = off; \
    SET client_min_messages = warning; SET default_tablespace = ''; SET default_table_access_method = heap";

/// What a whole restore makes after the privileges, in this order, as pg_restore makes them after its
/// ACL pass: default privileges (which must not apply to the objects the restore creates), then the
/// refreshes of materialized views (whose queries run as their owners and may need the grants), then
/// event triggers (which must not fire on the restore's own statements).
const AFTER_PRIVILEGES: [&str; 3] = ["DEFAULT ACL", "MATERIALIZED VIEW DATA", "EVENT TRIGGER"];

fn after_privileges(o: &SchemaObject) -> bool {
    AFTER_PRIVILEGES.contains(&o.kind.as_str())
}

/// The objects made after the privileges, in their order; default privileges left out by
/// `--no-privileges`.
fn late<'a>(objects: &[&'a SchemaObject], leave_out: &LeaveOut) -> Vec<&'a SchemaObject> {
    AFTER_PRIVILEGES
        .iter()
        .filter(|&&kind| !(leave_out.privileges && kind == "DEFAULT ACL"))
        .flat_map(|&kind| objects.iter().copied().filter(move |o| o.kind == kind))
        .collect()
}

/// Whether a restore (or its script) makes `o`: the `-n`/`-t` filters select it, no `--no-*` option
/// leaves its kind out, and a `-L` list, if any, keeps it.
fn chosen(o: &SchemaObject, filters: &Filters, leave_out: &LeaveOut, list: Option<&super::ListSelection>) -> bool {
    o.selected(filters) && !leave_out.kind(&o.kind) && list.is_none_or(|l| l.objects.contains(&o.id))
}

/// A large object's owner, privileges and comments: they apply to rows the data load makes, so they
/// go only where the large objects are loaded.
fn is_large_object(o: &SchemaObject) -> bool {
    o.kind == "LARGE OBJECT"
}

/// The statements that create one object (in its tablespace), its owner, comments and security labels,
/// less what `leave_out` says.
fn statements(o: &SchemaObject, leave_out: &LeaveOut) -> String {
    let mut sql = String::new();
    let tablespace = o.tablespace.as_ref().filter(|_| !leave_out.tablespaces && o.create.is_some());
    if let Some(ts) = tablespace {
        sql.push_str(&format!("SET default_tablespace = {};\n", quote_ident(ts)));
    }
    if let Some(create) = &o.create {
        // An extension's members belong to whoever creates it, and ALTER EXTENSION has no OWNER TO:
        // the source's owner creates it.
        match (&o.owner, o.kind.as_str()) {
            (Some(owner), "EXTENSION") if !leave_out.owner => {
                sql.push_str(&format!("SET ROLE {};\n{create}\nRESET ROLE;\n", quote_ident(owner)))
            }
            _ => {
                sql.push_str(create);
                sql.push('\n');
            }
        }
    }
    if tablespace.is_some() {
        sql.push_str("SET default_tablespace = '';\n");
    }
    if !leave_out.owner
        && let Some(owner) = &o.set_owner
    {
        sql.push_str(owner);
        sql.push('\n');
    }
    for c in o.comments.iter().filter(|c| !leave_out.note(c)) {
        sql.push_str(c);
        sql.push('\n');
    }
    sql
}

/// Runs one object's statements, naming the object when they fail.
async fn create(session: &Session, o: &SchemaObject, options: &RestoreOptions) -> Result<()> {
    let sql = statements(o, &options.leave_out);
    if sql.is_empty() {
        return Ok(());
    }
    let mut attempts = 0;
    loop {
        match session.batch(&sql).await {
            Ok(()) => return Ok(()),
            // Two post-data statements can lock two tables in opposite orders (foreign keys); the
            // server aborts one, which runs again once the other is done.
            Err(e) if attempts < 5 && e.sqlstate() == Some(crate::SqlState::DEADLOCK_DETECTED) => attempts += 1,
            Err(e) => return Err(e.context(format!("creating `{}`", o.label()))),
        }
    }
}

/// Restores the archive's schema and data into an empty database.
pub(super) async fn restore_full(
    archive: Arc<ArchiveReader>,
    options: &RestoreOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let index = archive.index();
    let catalog = index.catalog();
    let schema = SchemaCatalog::from_value(&catalog.schema)?.ok_or_else(|| {
        Error::new(ErrorKind::InvalidInput, "the archive holds no schema (it was made with `--data-only`)")
            .with_hint("restore its rows into existing tables with `--data-only`")
    })?;
    let encoding = catalog.server.encoding.clone();
    let list = options.use_list.as_ref();
    let tables = if options.schema_only { Vec::new() } else { super::select_tables(index, &options.filters, list) };
    let with_large_objects = tables.iter().any(|t| t.kind == PartKind::LargeObjects);
    let objects: Vec<&SchemaObject> = schema
        .objects
        .iter()
        .filter(|o| {
            chosen(o, &options.filters, &options.leave_out, list) && (with_large_objects || !is_large_object(o))
        })
        .collect();
    let sequences: Vec<SequenceValue> =
        if options.schema_only { Vec::new() } else { super::select_sequences(index, &options.filters, list) };

    let connect = match &options.create {
        Some(name) => create_database(options, name, &encoding, schema.database.as_ref()).await?,
        None => options.connect.clone(),
    };
    let connect = match &options.role {
        Some(role) => connect.with_role(role),
        None => connect,
    };
    let leader = Session::open(&connect, Some(&encoding)).await?;
    // A database `--create` just made is empty.
    if options.create.is_none() {
        if options.clean {
            drop_objects(&leader, &objects).await?;
        } else {
            refuse_non_empty(&leader).await?;
        }
    }
    if options.create_roles {
        let mut roles = schema.roles.clone();
        // A new database also needs its owner and the roles with settings in it.
        if let (Some(_), Some(db)) = (&options.create, &schema.database) {
            roles.push(db.owner.clone());
            roles.extend(db.role_settings.iter().map(|(r, _)| r.clone()));
        }
        roles.sort();
        roles.dedup();
        create_roles(&leader, &roles).await?;
    }
    leader.batch(SCHEMA_SETTINGS).await?;

    let mut report = RestoreReport {
        schema_objects: objects.len(),
        warnings: subscription_warnings(&objects),
        ..RestoreReport::start(leader.target(), &tables, sequences.len(), TriggerMode::NotYetCreated, options.verify)
    };
    let parts = super::parts_biggest_first(index, &tables);
    progress.start("restore", parts.iter().filter_map(|p| index.part(p.id)).map(|r| r.raw_bytes).sum(), 0);
    // In one transaction the tables are created by the transaction that loads them.
    let loader =
        load::Loader { archive: archive.clone(), progress: progress.clone(), freeze: options.single_transaction };
    let (pre, post): (Vec<&SchemaObject>, Vec<&SchemaObject>) =
        objects.iter().copied().filter(|o| !after_privileges(o)).partition(|o| o.section == Section::PreData);

    if options.single_transaction {
        leader.batch("BEGIN").await?;
        let outcome = async {
            for o in &pre {
                create(&leader, o, options).await?;
            }
            for part in &parts {
                report.rows += loader.load_part(&leader, part).await?;
            }
            for o in &post {
                create(&leader, o, options).await?;
            }
            finish(&leader, None, &objects, &tables, &sequences, options, &mut report).await
        }
        .await;
        super::end_single_transaction(&leader, outcome, &mut report).await?;
    } else {
        leader.batch("BEGIN").await?;
        let phase = Instant::now();
        let created = async {
            for o in &pre {
                create(&leader, o, options).await?;
            }
            leader.batch("COMMIT").await
        }
        .await;
        tracing::info!("pre-data: {} objects in {:.1}s", pre.len(), phase.elapsed().as_secs_f64());
        if let Err(e) = created {
            let _ = leader.batch("ROLLBACK").await;
            return Err(e.context("nothing was restored (the schema's first phase rolled back)"));
        }
        let stage = async {
            load::preflight(&leader, &tables, false).await?;
            report.rows =
                super::load_parallel(&loader, &connect, &encoding, TriggerMode::NotYetCreated, options.jobs, parts)
                    .await?;
            let phase = Instant::now();
            run_parallel(&connect, &encoding, options, &post).await?;
            tracing::info!("post-data: {} objects in {:.1}s", post.len(), phase.elapsed().as_secs_f64());
            let parallel = Some((&connect, encoding.as_str()));
            finish(&leader, parallel, &objects, &tables, &sequences, options, &mut report).await
        }
        .await;
        stage.map_err(|e| {
            e.context("the restore stopped part way: the schema's first phase is in place, later objects and rows may be missing")
        })?;
    }
    if let (Some(name), Some(db), false) = (&options.create, &schema.database, report.rolled_back) {
        let sql = db.finishing_statements(name, options.leave_out.owner, options.leave_out.privileges)?.join("\n");
        leader.batch(&sql).await.map_err(|e| {
            e.context(format!(
                "the restore is complete, but giving `{name}` its owner, comment, privileges and settings failed"
            ))
        })?;
    }
    progress.finish();
    report.large_objects = super::large_objects_in(index, &tables);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// After the objects and rows: sequence values, privileges, what comes after them (default privileges,
/// materialized view refreshes, event triggers), verification.
async fn finish(
    session: &Session,
    parallel: Option<(&ConnectOptions, &str)>,
    objects: &[&SchemaObject],
    tables: &[TargetTable],
    sequences: &[SequenceValue],
    options: &RestoreOptions,
    report: &mut RestoreReport,
) -> Result<()> {
    let phase = Instant::now();
    load::set_sequences(session, sequences).await?;
    if !options.leave_out.privileges {
        let mut sql = String::new();
        for o in objects {
            for p in &o.privileges {
                sql.push_str(p);
                sql.push('\n');
            }
        }
        if !sql.is_empty() {
            session.batch(&sql).await.map_err(|e| e.context("restoring privileges"))?;
        }
    }
    let late = late(objects, &options.leave_out);
    for o in &late {
        create(session, o, options).await?;
    }
    tracing::info!(
        "sequence values, privileges and {} later objects (default privileges, materialized view refreshes, event triggers) in {:.1}s",
        late.len(),
        phase.elapsed().as_secs_f64()
    );
    if tables.is_empty() {
        return Ok(());
    }
    super::verify_restored(session, parallel, tables, sequences, options, report).await
}

/// Runs post-data objects on `options.jobs` sessions: an object starts once the objects it depends on
/// are done, biggest first among those ready.
async fn run_parallel(
    connect: &ConnectOptions,
    encoding: &str,
    options: &RestoreOptions,
    objects: &[&SchemaObject],
) -> Result<()> {
    if objects.is_empty() {
        return Ok(());
    }
    let position: HashMap<u32, usize> = objects.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
    let mut waiting = vec![0usize; objects.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); objects.len()];
    for (i, o) in objects.iter().enumerate() {
        for d in &o.deps {
            if let Some(&j) = position.get(d) {
                waiting[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: BinaryHeap<(u64, Reverse<usize>)> =
        (0..objects.len()).filter(|&i| waiting[i] == 0).map(|i| (objects[i].size, Reverse(i))).collect();
    let jobs = options.jobs.max(1).min(objects.len());
    let mut idle = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        let session = Session::open(connect, Some(encoding)).await?;
        session.batch(SCHEMA_SETTINGS).await?;
        idle.push(session);
    }
    let shared: Arc<Vec<SchemaObject>> = Arc::new(objects.iter().map(|o| (*o).clone()).collect());
    let options = Arc::new(options.clone());
    let mut running = tokio::task::JoinSet::new();
    let mut done = 0;
    let mut first_error: Option<Error> = None;
    loop {
        while first_error.is_none() && !idle.is_empty() && !ready.is_empty() {
            let Some((_, Reverse(i))) = ready.pop() else { break };
            let session = idle.pop().expect("an idle session");
            let (shared, options) = (shared.clone(), options.clone());
            running.spawn(async move {
                let result = create(&session, &shared[i], &options).await;
                (i, session, result)
            });
        }
        let Some(joined) = running.join_next().await else { break };
        let (i, session, result) =
            joined.map_err(|e| Error::new(ErrorKind::Io, format!("a restore worker failed: {e}")))?;
        idle.push(session);
        match result {
            Ok(()) => {
                done += 1;
                for &d in &dependents[i] {
                    waiting[d] -= 1;
                    if waiting[d] == 0 {
                        ready.push((objects[d].size, Reverse(d)));
                    }
                }
            }
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if done < objects.len() {
        return Err(Error::new(
            ErrorKind::CorruptArchive,
            format!("{} post-data objects wait on each other and cannot be created", objects.len() - done),
        ));
    }
    Ok(())
}

/// Subscriptions come back disabled and without a connection to their publisher, as pg_dump makes
/// them: replicating into a copy is a decision for the user, not for a restore.
fn subscription_warnings(objects: &[&SchemaObject]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o.kind == "SUBSCRIPTION" && o.create.is_some())
        .map(|o| {
            let name = quote_ident(&o.name);
            format!(
                "subscription `{}` was created disabled and without connecting to its publisher; to replicate into this database, check its replication slot on the publisher, then run `ALTER SUBSCRIPTION {name} ENABLE` and `ALTER SUBSCRIPTION {name} REFRESH PUBLICATION`",
                o.name
            )
        })
        .collect()
}

/// Refuses a target that holds any user object: restoring over one would mix two databases.
async fn refuse_non_empty(session: &Session) -> Result<()> {
    let rows = session.query(include_str!("sql/target_objects.sql"), &[]).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = rows.iter().take(5).map(|r| format!("`{}`", r.get::<_, String>("description"))).collect();
    let more = if rows.len() > 5 { " and more" } else { "" };
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!("`{}` is not empty: it holds {}{more}; nothing was restored", session.target(), names.join(", ")),
    )
    .with_hint("restore into a new database (`createdb`, or `--create`), or pass `--clean` to drop the archive's objects first"))
}

/// Drops the archive's objects that exist in the target, dependents first (`--clean`).
async fn drop_objects(session: &Session, objects: &[&SchemaObject]) -> Result<()> {
    let mut sql = String::from("SET search_path = ''; SET client_min_messages = warning;\n");
    for o in objects.iter().rev() {
        if let Some(drop) = drop_statement(o) {
            sql.push_str(&drop);
            sql.push('\n');
        }
    }
    session
        .batch(&format!("BEGIN;\n{sql}COMMIT;"))
        .await
        .map_err(|e| e.context("dropping the archive's objects (`--clean`); nothing was dropped"))
}

/// `DROP ... IF EXISTS` for an object that has a statement of its own and is not dropped with its table.
fn drop_statement(o: &SchemaObject) -> Option<String> {
    o.create.as_ref()?;
    let keyword = match o.kind.as_str() {
        "TABLE"
        | "VIEW"
        | "MATERIALIZED VIEW"
        | "SEQUENCE"
        | "FOREIGN TABLE"
        | "SCHEMA"
        | "EXTENSION"
        | "DOMAIN"
        | "FUNCTION"
        | "PROCEDURE"
        | "AGGREGATE"
        | "COLLATION"
        | "CONVERSION"
        | "EVENT TRIGGER"
        | "PUBLICATION"
        | "SERVER"
        | "FOREIGN DATA WRAPPER"
        | "STATISTICS"
        | "TEXT SEARCH CONFIGURATION"
        | "TEXT SEARCH DICTIONARY"
        | "TEXT SEARCH PARSER"
        | "TEXT SEARCH TEMPLATE" => o.kind.as_str(),
        "TYPE" => "TYPE",
        _ => return None,
    };
    let name = match &o.schema {
        Some(s) if keyword != "SCHEMA" && !matches!(keyword, "FUNCTION" | "PROCEDURE" | "AGGREGATE") => {
            format!("{}.{}", quote_ident(s), quote_ident(&o.name))
        }
        // A routine's label carries its argument types, which DROP needs as written.
        Some(s) => format!("{}.{}", quote_ident(s), routine_signature(&o.name)?),
        None => quote_ident(&o.name),
    };
    Some(format!("DROP {keyword} IF EXISTS {name};"))
}

/// `f(integer, text)` as a DROP target: the name quoted, the argument list as it is.
fn routine_signature(label: &str) -> Option<String> {
    let open = label.find('(')?;
    Some(format!("{}{}", quote_ident(&label[..open]), &label[open..]))
}

/// Creates the roles the archive names that the target cluster lacks, without login (`--create-roles`).
async fn create_roles(session: &Session, roles: &[String]) -> Result<()> {
    for role in roles {
        let missing = session.query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", &[role]).await?.is_empty();
        if missing {
            session.batch(&format!("CREATE ROLE {} NOLOGIN", quote_ident(role))).await?;
        }
    }
    Ok(())
}

/// Creates the database `--create` names, connected through the database `-d` names, and returns the
/// connection options for the new one.
async fn create_database(
    options: &RestoreOptions,
    name: &str,
    encoding: &str,
    properties: Option<&DatabaseProperties>,
) -> Result<ConnectOptions> {
    let session = Session::open(&options.connect, None).await?;
    // With `--clean`, as pg_restore has it: the database is dropped and made anew.
    if options.clean {
        session.batch(&format!("DROP DATABASE IF EXISTS {}", quote_ident(name))).await.map_err(|e| {
            e.context(format!("`--clean --create`: dropping the database `{name}` to make it anew failed"))
                .with_hint("nobody may be connected to it, and `-d` must name another database of the cluster")
        })?;
    }
    let sql = match properties {
        Some(p) => p.create_statement(name, options.leave_out.tablespaces),
        None => {
            format!("CREATE DATABASE {} TEMPLATE template0 ENCODING {}", quote_ident(name), quote_literal(encoding))
        }
    };
    let exists: bool = session
        .query_one("SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = $1)", &[&name])
        .await?
        .get(0);
    if exists {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`--create`: the database `{name}` already exists on `{}`; nothing was changed", session.target()),
        )
        .with_hint(
            "restore into it without `--create` (it must be empty), or add `--clean` to drop and make it anew",
        ));
    }
    session.batch(&sql).await?;
    Ok(options.connect.with_dbname(name))
}

/// What goes into a restore script.
#[derive(Debug, Clone, Default)]
pub struct ScriptOptions {
    pub filters: crate::catalog::Filters,
    pub leave_out: LeaveOut,
    pub use_list: Option<super::ListSelection>,
}

/// The SQL script a whole restore would run for the schema (`-f`): pre-data, post-data, privileges,
/// in the order a restore runs them. Rows are not part of it: the archive's binary COPY streams have no
/// SQL form, so the script says where they would load.
pub fn script(catalog: &crate::format::Catalog, options: &ScriptOptions) -> Result<String> {
    super::check_patterns(catalog, &options.filters)?;
    let schema = SchemaCatalog::from_value(&catalog.schema)?.ok_or_else(|| {
        Error::new(ErrorKind::InvalidInput, "the archive holds no schema (it was made with `--data-only`)")
    })?;
    // The script has no rows, so no large objects either.
    let objects: Vec<&SchemaObject> = schema
        .objects
        .iter()
        .filter(|o| chosen(o, &options.filters, &options.leave_out, options.use_list.as_ref()) && !is_large_object(o))
        .collect();
    let mut out = format!(
        "-- pgsafe restore script of database `{}` ({}), dumped {}\n{SCHEMA_SETTINGS};\n",
        catalog.server.database, catalog.server.version, catalog.created_at
    );
    let section = |out: &mut String, title: &str, list: &mut dyn Iterator<Item = &&SchemaObject>| {
        out.push_str(&format!("\n-- {title}\n"));
        for o in list {
            let sql = statements(o, &options.leave_out);
            if !sql.is_empty() {
                out.push_str(&format!("\n-- {}\n{sql}", o.label()));
            }
        }
    };
    section(
        &mut out,
        "pre-data",
        &mut objects.iter().filter(|o| o.section == Section::PreData && !after_privileges(o)),
    );
    out.push_str("\n-- data: the archive's rows load here (`pgsafe restore` without `-f`)\n");
    section(
        &mut out,
        "post-data",
        &mut objects.iter().filter(|o| o.section == Section::PostData && !after_privileges(o)),
    );
    if !options.leave_out.privileges {
        out.push_str("\n-- privileges\n");
        for o in &objects {
            for p in &o.privileges {
                out.push_str(p);
                out.push('\n');
            }
        }
    }
    section(
        &mut out,
        "after the privileges: default privileges, materialized view refreshes, event triggers",
        &mut late(&objects, &options.leave_out).iter(),
    );
    Ok(out)
}
