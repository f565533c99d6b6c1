//! The schema engine: reads every object of a database from the system catalogs (inside the dump's
//! snapshot), turns it into the statements that recreate it, and orders them by `pg_depend`.
//!
//! ```text
//! object queries (sql/objects/*.sql, one row per creation step) -> drop extension members
//! -> coverage check against every user object (never silent) -> filters -> dependencies
//! -> owners, comments, security labels, privileges -> topological order -> SchemaCatalog
//! ```
//! The result travels in the archive's catalog frame; restore runs it in three phases: pre-data before
//! the rows, post-data (indexes, constraints, triggers, ...) after them, privileges last.

pub(crate) mod acl;
mod database;
mod kind;
mod objects;
mod order;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::catalog::Filters;
use crate::catalog::query::{self, get};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{ServerFacts, TableName};
use crate::pg::{Row, Session, quote_ident, quote_literal};

pub use database::DatabaseProperties;
pub use kind::ObjectKind;

/// When an object is created relative to the table data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    PreData,
    PostData,
}

/// One creation step of one object, in restore order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaObject {
    /// Position in [`SchemaCatalog::objects`]; `deps` refer to it.
    pub id: u32,
    /// The kind, written as pg_dump's label: `TABLE`, `INDEX`, `FK CONSTRAINT`, ...
    pub kind: ObjectKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub section: Section,
    /// The statements that create it; `None` when it comes into being with another object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<String>,
    /// How statements name a function, procedure or aggregate, schema-qualified and quoted, as `DROP` wants
    /// it: `s.pr(OUT integer,IN integer)`, `s.cnt(*)`. The label (`name`) lacks the argument modes that tell
    /// procedures apart. `None` for other kinds, and in archives written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routine: Option<String>,
    /// `ALTER ... OWNER TO`, left out by `--no-owner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_owner: Option<String>,
    /// `COMMENT ON` and `SECURITY LABEL` statements, run right after `create`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<String>,
    /// `GRANT` and `REVOKE` statements, run after everything else; left out by `--no-privileges`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<String>,
    /// Objects (by id, all earlier) that must exist first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<u32>,
    /// The table it belongs to, if any (for tables, the table itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableName>,
    /// Bytes of work it stands for (an index: its table's size), to start big post-data work first.
    #[serde(default)]
    pub size: u64,
    /// The tablespace `create` makes it in, when not the database's default: the restore sets
    /// `default_tablespace` around `create`, as pg_restore does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablespace: Option<String>,
    /// Tables its statement names that the archive does not hold, because the dump's filters left them
    /// out (`dump -t child`: the table a foreign key references, a partition's parent): a restore makes
    /// it only where the target has them, as it does for tables its own filters leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outside_tables: Vec<TableName>,
    /// Other objects it needs that the archive does not hold, because the dump's filters left them out
    /// (`dump -t projects`: the extension whose operator class an index uses, the function a trigger
    /// calls): a restore asks the target for them before anything is written, as it does for what its own
    /// filters leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outside: Vec<OutsideObject>,
}

/// An object the dump's filters left out of the archive, named as a [`SchemaObject`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutsideObject {
    pub kind: ObjectKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub name: String,
}

impl SchemaObject {
    /// An object of `kind` named `name` in `public` with this CREATE statement, for tests.
    #[cfg(test)]
    pub(crate) fn sample(kind: ObjectKind, name: &str, create: &str) -> SchemaObject {
        SchemaObject {
            id: 0,
            kind,
            schema: Some("public".into()),
            name: name.into(),
            owner: None,
            section: Section::PreData,
            create: Some(create.into()),
            routine: None,
            set_owner: None,
            comments: Vec::new(),
            privileges: Vec::new(),
            deps: Vec::new(),
            table: None,
            size: 0,
            tablespace: None,
            outside_tables: Vec::new(),
            outside: Vec::new(),
        }
    }

    /// `SCHEMA.NAME` or `NAME`, for messages and `--list`.
    pub fn label(&self) -> String {
        match &self.schema {
            Some(s) => format!("{} {}.{}", self.kind, s, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// Does a restore with these filters take this object? As [`Filters::selects_object`].
    pub fn selected(&self, filters: &Filters) -> bool {
        filters.selects_object(&self.kind, self.schema.as_deref(), &self.name, self.table.as_ref().map(|t| (t, true)))
    }
}

/// Everything a restore needs to recreate the schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemaCatalog {
    /// Creation steps in an order that satisfies every dependency.
    pub objects: Vec<SchemaObject>,
    /// Roles the objects name (owners, grantees, policy roles), for `--create-roles`.
    pub roles: Vec<String>,
    /// Dependency cycles the order had to break, each naming the object created early.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycles: Vec<String>,
    /// The database's own properties, for `restore --create`; `None` in archives made before they
    /// were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseProperties>,
}

impl SchemaCatalog {
    /// Reads the schema of an archive's catalog frame; `None` for archives made without one.
    /// The schema an archive's catalog holds, parsed from its JSON text; `None` when it holds none (a
    /// data-only archive).
    pub fn read(document: Option<&crate::format::SchemaDocument>) -> Result<Option<SchemaCatalog>> {
        let Some(document) = document else { return Ok(None) };
        serde_json::from_str(document.json())
            .map(Some)
            .map_err(|e| Error::new(ErrorKind::CorruptArchive, format!("the archive's schema cannot be read: {e}")))
    }

    /// The schema as the catalog's document.
    pub fn to_document(&self) -> crate::format::SchemaDocument {
        crate::format::SchemaDocument::of(self).expect("the schema serializes")
    }
}

/// A (catalog, object) pair: how pg_depend and the object queries name an object.
type Key = (u32, u32);

/// One row of an object query.
#[derive(Clone)]
struct Step {
    key: Key,
    kind: ObjectKind,
    schema: Option<String>,
    name: String,
    owner: Option<String>,
    section: Section,
    create: Option<String>,
    acl: Option<Vec<String>>,
    acl_default: Option<Vec<String>>,
    size: u64,
    table_oid: Option<u32>,
    /// A step that stands for a group of objects of one kind (large objects): their OIDs, the first being
    /// the step's own. Empty for a step that is one object.
    members: Vec<u32>,
    tablespace: Option<String>,
    /// An extension member kept for its privileges only: its owner is the one its privileges are measured
    /// against (grants it made need no role switch), but no `ALTER ... OWNER TO` is made for it.
    extension_member: bool,
}

fn read_step(query: &str, row: &Row) -> Result<Step> {
    macro_rules! get {
        ($col:literal) => {
            get(row, query, $col)?
        };
    }
    let section: String = get!("section");
    let section = match section.as_str() {
        "pre-data" => Section::PreData,
        "post-data" => Section::PostData,
        other => {
            return Err(Error::new(ErrorKind::Database, format!("catalog query `{query}`: unknown section `{other}`")));
        }
    };
    // The queries are ours, so a label `ObjectKind` lacks is a bug in them (that kind.rs's tests did not
    // catch): the dump fails naming it. Read as `Other`, the object would be ordered by the catch-all
    // priority and never dropped by `--clean`, silently.
    let kind: String = get!("kind");
    let kind = match ObjectKind::from_label(&kind) {
        ObjectKind::Other(other) => {
            return Err(Error::new(ErrorKind::Database, format!("catalog query `{query}`: unknown kind `{other}`")));
        }
        kind => kind,
    };
    let size: Option<i64> = get!("size");
    // Columns only some queries return.
    let has = |column: &str| row.columns().iter().any(|c| c.name() == column);
    Ok(Step {
        key: (get!("classid"), get!("objid")),
        kind,
        schema: get!("schema"),
        name: get!("name"),
        owner: get!("owner"),
        section,
        create: get!("create"),
        acl: get!("acl"),
        acl_default: get!("acl_default"),
        size: size.unwrap_or(0).max(0) as u64,
        table_oid: get!("table_oid"),
        members: if has("members") { get!("members") } else { Vec::new() },
        tablespace: if has("tablespace") { get!("tablespace") } else { None },
        extension_member: false,
    })
}

/// Logs (`-vv`) how long each stage of [`read_schema`] took, so that a stage that grows faster than the
/// catalog shows.
struct Lap(Instant);

impl Lap {
    fn done(&mut self, stage: &str) {
        tracing::debug!("schema: {stage} in {:.3}s", self.0.elapsed().as_secs_f64());
        self.0 = Instant::now();
    }
}

/// A pg_depend entry, sub-object ids dropped.
struct Dependency {
    from: Key,
    to: Key,
    deptype: char,
}

/// Reads the schema of the database `session` is connected to. `session` must be inside the dump's
/// transaction. Fails, naming them, when the database holds objects that no query reproduces.
pub async fn read_schema(session: &Session, server: &ServerFacts, filters: &Filters) -> Result<SchemaCatalog> {
    read_schema_with(session, None, server, filters).await
}

/// [`read_schema`], its catalog queries shared between `session` and `helper`, a second session in a
/// transaction of the same snapshot (a dump's workers' exported one): the biggest of them take about as
/// long as the rest together on a schema of many tables (at 10,000 tables, 2.7 of the 3.4 s a schema read
/// takes are queries, `tables` and `all_objects` 1.6 s of them).
pub async fn read_schema_with(
    session: &Session,
    helper: Option<&Session>,
    server: &ServerFacts,
    filters: &Filters,
) -> Result<SchemaCatalog> {
    let started = Instant::now();
    let mut lap = Lap(started);
    // Visibility decides unqualified `-t` patterns, so it is read before the search path empties.
    let relations = read_relations(session).await?;
    // No JIT: see `catalog::read_server_facts`; said again here for a caller that did not read those first.
    const SETTINGS: &str = "SET search_path = ''; SET jit = off";
    session.batch(SETTINGS).await?;
    if let Some(helper) = helper {
        helper.batch(SETTINGS).await?;
    }
    let version = server.version_num;

    // Only a superuser may read a subscription's connection string. For anyone else (a database's owner
    // taking a snapshot) the query is left out, as pg_dump leaves it; the coverage check below then names
    // any subscription the database has, so none is left out silently.
    const SUBSCRIPTIONS_READABLE: &str =
        "SELECT pg_catalog.has_column_privilege('pg_catalog.pg_subscription', 'subconninfo', 'SELECT')";
    let subscriptions_readable: bool =
        crate::pg::value(&session.query_one(SUBSCRIPTIONS_READABLE, &[]).await?, 0, SUBSCRIPTIONS_READABLE)?;
    // Every query up front, the biggest first, read in this order whichever session ran it.
    let mut queries: Vec<(&str, &str)> = vec![(ALL_OBJECTS, include_str!("sql/all_objects.sql"))];
    if version >= 150000 {
        queries.push((ALL_OBJECTS, include_str!("sql/all_objects_15.sql")));
    }
    let coverage_queries = queries.len();
    queries.push((DEPENDENCIES, include_str!("sql/dependencies.sql")));
    let first_object_query = queries.len();
    queries.extend(
        objects::queries_for(version)
            .filter(|q| subscriptions_readable || !q.name.starts_with("subscriptions"))
            .map(|q| (q.name, q.sql)),
    );
    // Each query's rows are read into steps, dependencies or covered objects as soon as it returns, on
    // the session that ran it: held as rows until the last query returned, 10,000 tables' catalog took
    // 46 MB.
    let read = |at: usize, name: &str, rows: Vec<Row>| -> Result<QueryRead> {
        if at < coverage_queries {
            rows.iter().map(Covered::read).collect::<Result<_>>().map(QueryRead::Covered)
        } else if at < first_object_query {
            rows.iter().map(Dependency::read).collect::<Result<_>>().map(QueryRead::Dependencies)
        } else {
            rows.iter().map(|row| read_step(name, row)).collect::<Result<_>>().map(QueryRead::Steps)
        }
    };
    let (mut every_object, mut deps, mut steps) = (Vec::new(), Vec::new(), Vec::new());
    for result in run_queries(session, helper, &queries, read).await? {
        match result {
            QueryRead::Covered(rows) => every_object.extend(rows),
            QueryRead::Dependencies(rows) => deps = rows,
            QueryRead::Steps(rows) => steps.extend(rows),
        }
    }

    // Extension members come back with CREATE EXTENSION. Only changes to their privileges are kept, as
    // pg_dump keeps them: a member stays as one step without a statement, carrying its privileges, which
    // its query measures against its initial ones (pg_init_privs, what CREATE EXTENSION gives it).
    let mut members: HashSet<Key> = deps.iter().filter(|d| d.deptype == 'e').map(|d| d.from).collect();
    // So do the keys, indexes, defaults, triggers and rules of an extension's tables (its configuration
    // tables, whose rows are dumped): its script made them, and made again they fail ("multiple primary
    // keys", "already exists"), as PostGIS's `spatial_ref_sys` would. pg_dump leaves them out too; what
    // it keeps of such a table, its policies and row security, stays.
    let member_tables: HashSet<u32> = members.iter().filter(|k| k.0 == PG_CLASS).map(|k| k.1).collect();
    members.extend(
        steps
            .iter()
            .filter(|s| s.table_oid.is_some_and(|t| member_tables.contains(&t)) && is_table_part(&s.kind))
            .map(|s| s.key),
    );
    let mut seen = HashSet::new();
    steps.retain_mut(|s| {
        if !members.contains(&s.key) {
            return true;
        }
        if !seen.insert(s.key) || s.acl.is_none() || s.acl_default.is_none() || s.acl == s.acl_default {
            return false;
        }
        s.create = None;
        s.extension_member = true;
        s.section = Section::PreData;
        true
    });

    lap.done("object queries and dependencies");
    check_coverage(every_object, &steps, &deps, &members, filters)?;

    lap.done("coverage check");
    let table_name = |oid: u32| relations.get(&oid).map(|r| r.name.clone());
    // Filters: an object is kept or dropped whole, as its first step decides.
    let mut kept: HashMap<Key, bool> = HashMap::new();
    // Every object a query returned, kept or not: one a filter leaves out stands for nothing kept (a
    // partition `-T` leaves out is no part of its partitioned table, nor its key of the table's key).
    let returned: HashSet<Key> = steps.iter().map(|s| s.key).collect();
    // Those a filter leaves out, by name, for what the kept objects need of them.
    let mut left_out: HashMap<Key, OutsideObject> = HashMap::new();
    for s in &steps {
        kept.entry(s.key).or_insert_with(|| {
            let table = s.table_oid.and_then(|oid| relations.get(&oid)).map(|r| (&r.name, r.visible));
            filters.selects_object(&s.kind, s.schema.as_deref(), &s.name, table)
        });
    }
    for s in steps.iter().filter(|s| !kept[&s.key]) {
        let object = OutsideObject { kind: s.kind.clone(), schema: s.schema.clone(), name: s.name.clone() };
        left_out.entry(s.key).or_insert(object);
    }
    steps.retain(|s| kept[&s.key]);
    let keys: HashSet<Key> = steps.iter().map(|s| s.key).collect();

    // An object no query returns (a row type, an array type, a view's rule, an extension member)
    // stands for the object it is part of.
    let mut part_of = pick_owners(deps.iter().flat_map(|d| {
        let own = (matches!(d.deptype, 'i' | 'a' | 'e') && !returned.contains(&d.from) && may_own(d.from, d.to))
            .then(|| (d.from, owner_rank(d.deptype), d.to));
        // What a returned object is internal to stands for it (a composite type's relation).
        let container = (d.deptype == 'i' && keys.contains(&d.from) && !returned.contains(&d.to)).then_some((
            d.to,
            CONTAINER_RANK,
            d.from,
        ));
        own.into_iter().chain(container)
    }));
    // A member of a group stands for the group's step (a large object's comment goes to its group).
    for s in &steps {
        for &member in s.members.iter().filter(|&&m| m != s.key.1) {
            part_of.insert((s.key.0, member), s.key);
        }
    }
    // The object of `among` that `key` is, or is part of.
    let resolve_in = |among: &HashSet<Key>, mut key: Key| -> Option<Key> {
        for _ in 0..8 {
            if among.contains(&key) {
                return Some(key);
            }
            key = *part_of.get(&key)?;
        }
        None
    };
    let resolve = |key: Key| resolve_in(&keys, key);
    let outside = outside_tables(&deps, &keys, resolve, &relations);
    // What kept objects need of those left out: an extension member (an operator class) stands for its
    // extension. Not a foreign key's or an attachment's table (`outside_tables`), nor an inheriting
    // table's parent, which a restore settles itself.
    let mut needs_outside: HashMap<Key, std::collections::BTreeMap<String, OutsideObject>> = HashMap::new();
    if !left_out.is_empty() {
        let kinds: HashMap<Key, &ObjectKind> = steps.iter().map(|s| (s.key, &s.kind)).collect();
        let counted = |d: &&Dependency| matches!(d.deptype, 'n' | 'a') && !members.contains(&d.from);
        for d in deps.iter().filter(counted) {
            let (Some(from), Some(to)) = (resolve(d.from), resolve_in(&returned, d.to)) else { continue };
            let (Some(object), Some(kind)) = (left_out.get(&to), kinds.get(&from)) else { continue };
            let settled = matches!(kind, ObjectKind::FkConstraint | ObjectKind::TableAttach | ObjectKind::IndexAttach)
                || (**kind == ObjectKind::Table && object.kind == ObjectKind::Table);
            if !settled {
                let label = format!("{} {:?}.{}", object.kind, object.schema, object.name);
                needs_outside.entry(from).or_default().insert(label, object.clone());
            }
        }
    }
    // What each dependency means between objects, once sub-objects stand for their owners.
    let counts = |d: &Dependency| {
        matches!(d.deptype, 'n' | 'a' | 'i' | 'P' | 'S' | 'e') && !(members.contains(&d.from) && d.deptype != 'e')
    };

    // A view in a dependency loop (its query calls a function that returns its row type) is made in two
    // steps, as pg_dump makes it: first a view of the same columns that selects NULLs, which whatever
    // needs the view's row type can follow; then `CREATE OR REPLACE VIEW` with the real query, after
    // what the query needs.
    lap.done("filters and owners of sub-objects");
    let looped = order::in_cycles(
        &deps
            .iter()
            .filter(|d| counts(d))
            .filter_map(|d| Some((resolve(d.from)?, resolve(d.to)?)))
            .filter(|(a, b)| a != b)
            .collect::<Vec<_>>(),
    );
    let looped_views: Vec<u32> = steps
        .iter()
        .filter(|s| s.kind == ObjectKind::View && s.key.0 == PG_CLASS && looped.contains(&s.key))
        .map(|s| s.key.1)
        .collect();
    let mut split: HashSet<Key> = HashSet::new();
    if !looped_views.is_empty() {
        const DUMMY_VIEWS: &str = "dummy_views";
        let mut dummies: HashMap<u32, String> = HashMap::new();
        for row in query::run(session, DUMMY_VIEWS, include_str!("sql/dummy_views.sql"), &[&looped_views]).await? {
            dummies.insert(get(&row, DUMMY_VIEWS, "oid")?, get(&row, DUMMY_VIEWS, "create")?);
        }
        // The stand-in goes first among the view's steps: one pass that copies the steps.
        let mut with_dummies = Vec::with_capacity(steps.len() + dummies.len());
        for mut s in std::mem::take(&mut steps) {
            let rest = s.create.as_deref().and_then(|c| c.strip_prefix("CREATE VIEW ")).map(str::to_string);
            if s.kind == ObjectKind::View
                && s.key.0 == PG_CLASS
                && let Some(rest) = rest
                && let Some(dummy) = dummies.remove(&s.key.1)
            {
                with_dummies.push(Step { create: Some(dummy), ..s.clone() });
                s.kind = ObjectKind::ViewDefinition;
                s.create = Some(format!("CREATE OR REPLACE VIEW {rest}"));
                split.insert(s.key);
            }
            with_dummies.push(s);
        }
        steps = with_dummies;
    }

    lap.done("views in dependency loops");
    // The steps of each object, in order; the first is the object itself.
    let mut steps_of: HashMap<Key, Vec<usize>> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        steps_of.entry(s.key).or_default().push(i);
    }
    let first: HashMap<Key, usize> = steps_of.iter().map(|(key, list)| (*key, list[0])).collect();

    // An object that has no statement of its own and is made in the same section as the object it
    // belongs to (an inline CHECK of a domain) is made by that object's statement, which therefore needs
    // what it needs. A clone made by another object's statement (a partition's copy of a foreign key,
    // post-data) is not: it must not pull its table into post-data.
    let made_by = pick_owners(deps.iter().filter(|d| matches!(d.deptype, 'a' | 'i')).filter_map(|d| {
        let list = steps_of.get(&d.from)?;
        (list.iter().all(|&i| steps[i].create.is_none())
            && first.get(&d.to).is_some_and(|&owner| steps[owner].section == steps[list[0]].section))
        .then(|| (d.from, owner_rank(d.deptype), d.to))
    }));
    // What the type of a shell-type pair itself needs (its I/O functions) may follow the shell; all
    // else waits for the whole type.
    let type_needs: HashSet<(Key, Key)> = deps.iter().map(|d| (d.from, d.to)).collect();
    let target_step = |from: Key, to: Key| -> usize {
        let list = &steps_of[&to];
        let head = list[0];
        if steps[head].kind == ObjectKind::ShellType && list.len() > 1 && !type_needs.contains(&(to, from)) {
            return list[1];
        }
        head
    };

    // Dependencies between steps.
    let mut step_deps: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    // Kept extension members follow their extension (`e`), so what depends on them does too.
    // What an extension member needs is the extension's business: a kept member only follows its
    // extension (`e`).
    for d in deps.iter().filter(|d| counts(d)) {
        let (Some(from), Some(to)) = (resolve(d.from), resolve(d.to)) else { continue };
        if from == to {
            continue;
        }
        // The object itself follows what it needs, and so does the object whose statement makes it.
        let maker = made_by.get(&from).copied().filter(|&owner| owner != to && owner != from);
        for from in std::iter::once(from).chain(maker) {
            if from == to {
                continue;
            }
            let target = target_step(from, to);
            for (n, &i) in steps_of[&from].iter().enumerate() {
                if steps[i].kind == ObjectKind::ShellType && steps[target].kind != ObjectKind::Schema {
                    continue;
                }
                // A split view's stand-in needs only what the view itself needs (its schema, its
                // columns' types), not what its query (its rule) does.
                if n == 0 && split.contains(&from) && d.from != from {
                    continue;
                }
                step_deps[i].push(target);
            }
        }
    }
    for (key, list) in &steps_of {
        let head = first[key];
        for &i in list.iter().skip(1) {
            step_deps[i].push(head);
            // A later step also follows the earlier ones of the same object.
            for &j in list.iter().take_while(|&&j| j != i) {
                step_deps[i].push(j);
            }
        }
    }
    refresh_in_dependency_order(
        &steps,
        &steps_of,
        &mut step_deps,
        deps.iter().filter(|d| counts(d)).filter_map(|d| Some((resolve(d.from)?, resolve(d.to)?))),
    );

    lap.done("dependencies between steps");
    // Names PostgreSQL uses in statements about each object.
    let identities = read_identities(session, &first.keys().copied().collect::<Vec<_>>()).await?;
    // Comments and security labels: each goes to the step of the object it is on (a column's, to its
    // table's). Extension members' come with the extension.
    let mut comments: HashMap<usize, Vec<String>> = HashMap::new();
    let notes: [(&str, &str, NoteStatement); 2] = [
        ("comments", include_str!("sql/comments.sql"), comment_on),
        ("security_labels", include_str!("sql/security_labels.sql"), label_on),
    ];
    for (name, sql, statement) in notes {
        for row in query::run(session, name, sql, &[]).await? {
            let key: Key = (get(&row, name, "classid")?, get(&row, name, "objid")?);
            if members.contains(&key) {
                continue;
            }
            let Some(owner) = resolve(key) else { continue };
            let (ty, identity): (String, String) = (get(&row, name, "type")?, get(&row, name, "identity")?);
            // On an object itself, the name its owner and privileges use (a procedure's with argument
            // modes); on a column, pg_identify_object's.
            let objsubid: i32 = get(&row, name, "objsubid")?;
            let (ty, identity) = match identities.get(&key).filter(|_| objsubid == 0) {
                Some((own_ty, own_identity)) => (own_ty.as_str(), own_identity.as_str()),
                None => (ty.as_str(), identity.as_str()),
            };
            let Some(target) = statement_target(ty, identity) else { continue };
            comments.entry(first[&owner]).or_default().push(statement(&row, name, &target)?);
        }
    }
    // A new database's public schema has a comment; the source's may not.
    if let Some(&i) = first.get(&PUBLIC_SCHEMA)
        && !comments.get(&i).is_some_and(|c| c.iter().any(|c| c.starts_with("COMMENT ON SCHEMA public ")))
    {
        comments.entry(i).or_default().push("COMMENT ON SCHEMA public IS NULL;".to_string());
    }
    // Per table step: (column, ACL, the column's initial ACL).
    type ColumnAcl = (String, Vec<String>, Vec<String>);
    let mut column_privileges: HashMap<usize, Vec<ColumnAcl>> = HashMap::new();
    const COLUMN_ACLS: &str = "column_acls";
    for row in query::run(session, COLUMN_ACLS, include_str!("sql/column_acls.sql"), &[]).await? {
        let key: Key = (PG_CLASS, get(&row, COLUMN_ACLS, "table_oid")?);
        if let Some(&i) = first.get(&key) {
            column_privileges.entry(i).or_default().push((
                get(&row, COLUMN_ACLS, "name")?,
                get(&row, COLUMN_ACLS, "acl")?,
                get(&row, COLUMN_ACLS, "acl_default")?,
            ));
        }
    }

    lap.done("identities, comments, security labels and column privileges");
    // Owners and privileges belong to an object's first step.
    let mut built: Vec<SchemaObject> = Vec::with_capacity(steps.len());
    // The steps' statements move into the objects: a database of many tables has a lot of them.
    for (i, s) in steps.into_iter().enumerate() {
        let head = first[&s.key] == i;
        let identity = identities.get(&s.key);
        let mut set_owner = None;
        let mut privileges = Vec::new();
        let mut routine = None;
        if head && let Some((ty, id)) = identity {
            if matches!(ty.as_str(), "function" | "procedure" | "aggregate") {
                routine = Some(aggregate_star(ty, id).into_owned());
            }
            // A group's statements are made for each of its members (named by OID: large objects).
            let ids: Vec<String> =
                if s.members.is_empty() { vec![id.clone()] } else { s.members.iter().map(u32::to_string).collect() };
            if let (false, Some(owner), Some(kw)) = (s.extension_member, &s.owner, owner_keyword(ty)) {
                let owner = quote_ident(owner);
                set_owner = Some(
                    ids.iter()
                        .map(|id| format!("ALTER {kw} {} OWNER TO {owner};", aggregate_star(ty, id)))
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
            // The `public` schema's owner is left out when it is `pg_database_owner` (nothing to set), but
            // its privileges are granted by that owner: no switch of role is needed to grant them again,
            // and a database's owner who is not a superuser could not make one.
            let acl_owner = match (&s.owner, ty.as_str(), s.name.as_str()) {
                (None, "schema", "public") => Some("pg_database_owner"),
                (owner, _, _) => owner.as_deref(),
            };
            if let (Some(acl), Some(default), Some(kw)) = (&s.acl, &s.acl_default, grant_keyword(ty)) {
                for id in &ids {
                    let target = format!("{kw} {id}");
                    privileges.extend(
                        acl::statements(&target, None, acl, default, acl_owner)
                            .map_err(|m| Error::new(ErrorKind::Database, m))?,
                    );
                }
            }
            if let Some(cols) = column_privileges.get(&i) {
                for (column, acl, default) in cols {
                    let target = format!("TABLE {id}");
                    let column = format!("({})", quote_ident(column));
                    privileges.extend(
                        acl::statements(&target, Some(&column), acl, default, s.owner.as_deref())
                            .map_err(|m| Error::new(ErrorKind::Database, m))?,
                    );
                }
            }
        }
        let outside_tables = match s.kind {
            ObjectKind::FkConstraint | ObjectKind::TableAttach | ObjectKind::IndexAttach => {
                outside.get(&s.key).map(|t| t.iter().cloned().collect()).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        built.push(SchemaObject {
            id: 0,
            kind: s.kind,
            schema: s.schema,
            name: s.name,
            owner: s.owner,
            section: s.section,
            create: s.create,
            routine,
            set_owner,
            comments: comments.remove(&i).unwrap_or_default(),
            privileges,
            deps: Vec::new(),
            table: s.table_oid.and_then(table_name),
            size: s.size,
            tablespace: s.tablespace,
            outside_tables,
            outside: needs_outside.remove(&s.key).map(|o| o.into_values().collect()).unwrap_or_default(),
        });
    }

    lap.done("owners and privileges");
    let nodes: Vec<order::Node<'_>> = built
        .iter()
        .zip(&step_deps)
        .map(|(o, deps)| order::Node { kind: &o.kind, schema: o.schema.as_deref(), name: &o.name, deps })
        .collect();
    let (sorted, broken) = order::sort(&nodes);
    drop(nodes);
    let mut position = vec![0u32; built.len()];
    for (pos, &i) in sorted.iter().enumerate() {
        position[i] = pos as u32;
    }
    let cycles = broken.iter().map(|&i| built[i].label()).collect();
    // Placed where they are, then sorted by their positions in place: a second list of the objects
    // (350 bytes each) doubled this step's memory at 10,000 tables.
    let mut ordered = built;
    for (i, o) in ordered.iter_mut().enumerate() {
        o.id = position[i];
        let mut d: Vec<u32> = step_deps[i].iter().map(|&j| position[j]).filter(|&p| p < o.id).collect();
        d.sort_unstable();
        d.dedup();
        o.deps = d;
    }
    ordered.sort_unstable_by_key(|o| o.id);
    // Something that needs a post-data object (a view grouping by a primary key) waits for it.
    for i in 0..ordered.len() {
        if ordered[i].section == Section::PreData
            && ordered[i].deps.iter().any(|&d| ordered[d as usize].section == Section::PostData)
        {
            ordered[i].section = Section::PostData;
        }
    }

    lap.done("order");
    let database = DatabaseProperties::read(session).await?;
    const ROLES: &str = "roles";
    let roles = query::run(session, ROLES, include_str!("sql/roles.sql"), &[])
        .await?
        .iter()
        .map(|r| get(r, ROLES, "name"))
        .collect::<Result<_>>()?;
    lap.done("database properties and roles");
    tracing::info!("schema: {} objects in {:.1}s", ordered.len(), started.elapsed().as_secs_f64());
    Ok(SchemaCatalog { objects: ordered, roles, cycles, database: Some(database) })
}

const PG_CLASS: u32 = 1259;
const PG_AMOP: u32 = 2602;
const PG_AMPROC: u32 = 2603;
const PG_OPCLASS: u32 = 2616;
const PG_OPFAMILY: u32 = 2753;
const PG_EXTENSION: u32 = 3079;

/// May `owner` stand for `object`, which no query returns, through an `i`, `a` or `e` dependency? A member
/// of an operator family or class (pg_amop, pg_amproc) has an `a` dependency on its operator or function
/// too, but it belongs to its family or class, whose statement adds it: standing for the function, it put
/// the family before the function it adds (`ALTER OPERATOR FAMILY ... ADD FUNCTION` of a function not yet
/// made).
fn may_own(object: Key, owner: Key) -> bool {
    !matches!(object.0, PG_AMOP | PG_AMPROC) || matches!(owner.0, PG_OPFAMILY | PG_OPCLASS | PG_EXTENSION)
}
const PUBLIC_SCHEMA: Key = (2615, 2200);

/// Whether an object of `kind` on a table is part of the table's definition, made by whatever makes the
/// table (for an extension's table, its script).
fn is_table_part(kind: &ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::Constraint
            | ObjectKind::CheckConstraint
            | ObjectKind::FkConstraint
            | ObjectKind::Index
            | ObjectKind::IndexAttach
            | ObjectKind::TableAttach
            | ObjectKind::Default
            | ObjectKind::Trigger
            | ObjectKind::Rule
    )
}

/// Makes each materialized view's refresh (`MATERIALIZED VIEW DATA`) follow the refreshes of the materialized
/// views its query reads, directly or through views (and SQL-standard functions, which pg_dump does not
/// follow), as pg_dump's buildMatViewRefreshDependencies does:
/// otherwise refreshes run in name order, and one on another refreshes before it, reading it empty or
/// failing ("has not been populated"). `edges` are the dependencies between objects.
fn refresh_in_dependency_order(
    steps: &[Step],
    steps_of: &HashMap<Key, Vec<usize>>,
    step_deps: &mut [Vec<usize>],
    edges: impl Iterator<Item = (Key, Key)>,
) {
    let refresh: HashMap<Key, usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == ObjectKind::MaterializedViewData)
        .map(|(i, s)| (s.key, i))
        .collect();
    if refresh.is_empty() {
        return;
    }
    // What a query reads through: views, and functions whose SQL-standard bodies (`BEGIN ATOMIC`) the
    // server records what they read of (`SELECT f()` in a materialized view's query).
    let is_view = |key: &Key| {
        steps_of.get(key).is_some_and(|list| matches!(steps[list[0]].kind, ObjectKind::View | ObjectKind::Function))
    };
    // What views, functions and materialized views read.
    let mut reads: HashMap<Key, Vec<Key>> = HashMap::new();
    for (from, to) in edges {
        if from != to && (refresh.contains_key(&from) || is_view(&from)) {
            reads.entry(from).or_default().push(to);
        }
    }
    for (&view, &step) in &refresh {
        // Through views and functions only: a materialized view's own refresh waits for what it reads.
        let mut seen: HashSet<Key> = HashSet::from([view]);
        let mut todo: Vec<Key> = reads.get(&view).cloned().unwrap_or_default();
        while let Some(key) = todo.pop() {
            if !seen.insert(key) {
                continue;
            }
            if let Some(&other) = refresh.get(&key) {
                step_deps[step].push(other);
            } else if is_view(&key) {
                todo.extend(reads.get(&key).into_iter().flatten().copied());
            }
        }
    }
}

/// How strongly a dependency of `deptype` says what an object belongs to: an internal one (`i`) most, then
/// an automatic one (`a`), then extension membership. A constraint trigger's constraint is internal to its
/// trigger and automatic on its table: it belongs to the trigger, whose statement makes it.
fn owner_rank(deptype: char) -> u8 {
    match deptype {
        'i' => 0,
        'a' => 1,
        _ => 2,
    }
}

/// Rank of "a returned object is internal to this one", weaker than any dependency of the object's own.
const CONTAINER_RANK: u8 = 3;

/// One owner per object from `(object, rank, candidate)` triples: the lowest rank wins, then the lowest
/// key, so that the choice does not depend on the order in which the server returned the dependencies (it
/// follows OIDs and plans, which differ between a database and its restored copy).
fn pick_owners(candidates: impl Iterator<Item = (Key, u8, Key)>) -> HashMap<Key, Key> {
    let mut best: HashMap<Key, (u8, Key)> = HashMap::new();
    for (object, rank, owner) in candidates {
        best.entry(object).and_modify(|b| *b = (*b).min((rank, owner))).or_insert((rank, owner));
    }
    best.into_iter().map(|(object, (_, owner))| (object, owner)).collect()
}

/// Every relation's qualified name and whether it is visible on the search path.
/// A relation as the filters and [`outside_tables`] see it.
struct Relation {
    name: TableName,
    /// Whether the search path makes it visible (for unqualified `-t` patterns).
    visible: bool,
    /// The table it stands for: an index's table, any other relation itself.
    table: u32,
}

async fn read_relations(session: &Session) -> Result<HashMap<u32, Relation>> {
    const RELATIONS: &str = "relations";
    query::run(session, RELATIONS, include_str!("sql/relations.sql"), &[])
        .await?
        .iter()
        .map(|r| {
            let name = TableName { schema: get(r, RELATIONS, "schema")?, name: get(r, RELATIONS, "name")? };
            // NULL for a relation dropped since the snapshot began (the function reads the latest catalog).
            let visible: Option<bool> = get(r, RELATIONS, "visible")?;
            let relation = Relation { name, visible: visible.unwrap_or(false), table: get(r, RELATIONS, "table_oid")? };
            Ok((get(r, RELATIONS, "oid")?, relation))
        })
        .collect()
}

/// The tables that each kept foreign key, partition attachment and index attachment names and the
/// filters left out (`dump -t child`), by the kept object: those its dependencies reach, an index
/// standing for its table. pg_dump writes such statements as they are, and a restore into a database
/// without those tables fails on them; pgsafe's restore makes them only where the target has the tables.
fn outside_tables(
    deps: &[Dependency],
    kept: &HashSet<Key>,
    resolve: impl Fn(Key) -> Option<Key>,
    relations: &HashMap<u32, Relation>,
) -> HashMap<Key, BTreeSet<TableName>> {
    let mut outside: HashMap<Key, BTreeSet<TableName>> = HashMap::new();
    for d in deps.iter().filter(|d| matches!(d.deptype, 'n' | 'a' | 'P' | 'S')) {
        if d.to.0 != PG_CLASS || kept.contains(&d.to) || resolve(d.to).is_some() {
            continue;
        }
        let (Some(from), Some(relation)) = (resolve(d.from), relations.get(&d.to.1)) else { continue };
        let Some(table) = relations.get(&relation.table) else { continue };
        if !kept.contains(&(PG_CLASS, relation.table)) {
            outside.entry(from).or_default().insert(table.name.clone());
        }
    }
    outside
}

/// pg_identify_object's type and identity for each object.
async fn read_identities(session: &Session, keys: &[Key]) -> Result<HashMap<Key, (String, String)>> {
    const IDENTITIES: &str = "identities";
    let mut out = HashMap::with_capacity(keys.len());
    for batch in keys.chunks(10_000) {
        let classes: Vec<u32> = batch.iter().map(|k| k.0).collect();
        let objects: Vec<u32> = batch.iter().map(|k| k.1).collect();
        let sql = include_str!("sql/identities.sql");
        for row in query::run(session, IDENTITIES, sql, &[&classes, &objects]).await? {
            let identity: Option<String> = get(&row, IDENTITIES, "identity")?;
            let ty: Option<String> = get(&row, IDENTITIES, "type")?;
            if let (Some(identity), Some(ty)) = (identity, ty) {
                out.insert((get(&row, IDENTITIES, "classid")?, get(&row, IDENTITIES, "objid")?), (ty, identity));
            }
        }
    }
    Ok(out)
}

/// The coverage check's query: every object the database holds.
const ALL_OBJECTS: &str = "all_objects";
/// The query of the dependencies between objects.
const DEPENDENCIES: &str = "dependencies";

/// What one of the schema's queries returned, read.
enum QueryRead {
    Covered(Vec<Covered>),
    Dependencies(Vec<Dependency>),
    Steps(Vec<Step>),
}

/// An object the coverage check's query returned: every object the database holds.
struct Covered {
    key: Key,
    schema: Option<String>,
    description: Option<String>,
}

impl Covered {
    fn read(row: &Row) -> Result<Covered> {
        Ok(Covered {
            key: (get(row, ALL_OBJECTS, "classid")?, get(row, ALL_OBJECTS, "objid")?),
            schema: get(row, ALL_OBJECTS, "schema")?,
            description: get(row, ALL_OBJECTS, "description")?,
        })
    }
}

impl Dependency {
    fn read(row: &Row) -> Result<Dependency> {
        let deptype: String = get(row, DEPENDENCIES, "deptype")?;
        Ok(Dependency {
            from: (get(row, DEPENDENCIES, "classid")?, get(row, DEPENDENCIES, "objid")?),
            to: (get(row, DEPENDENCIES, "refclassid")?, get(row, DEPENDENCIES, "refobjid")?),
            deptype: deptype.chars().next().unwrap_or('n'),
        })
    }
}

/// Runs `queries` (name, SQL) on `session` and, when given, `helper` as well, each session taking the next
/// query as it finishes one and reading its rows with `read` (its position, its name, its rows) at once;
/// returns what `read` made of each, in the order of `queries`.
async fn run_queries<T>(
    session: &Session,
    helper: Option<&Session>,
    queries: &[(&str, &str)],
    read: impl Fn(usize, &str, Vec<Row>) -> Result<T>,
) -> Result<Vec<T>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let run_on = async |s: &Session| -> Result<Vec<(usize, T)>> {
        let mut done = Vec::new();
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(name, sql)) = queries.get(at) else { return Ok(done) };
            let rows = query::run(s, name, sql, &[]).await?;
            done.push((at, read(at, name, rows)?));
        }
    };
    let (mine, helped) = match helper {
        Some(h) => futures_util::future::try_join(run_on(session), run_on(h)).await?,
        None => (run_on(session).await?, Vec::new()),
    };
    let mut all: Vec<(usize, T)> = mine.into_iter().chain(helped).collect();
    all.sort_unstable_by_key(|(at, _)| *at);
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

/// Fails the dump, naming every object, when the database holds user objects that no object query
/// returned: a backup that silently lacks something is the worst outcome there is.
fn check_coverage(
    objects: Vec<Covered>,
    steps: &[Step],
    deps: &[Dependency],
    members: &HashSet<Key>,
    filters: &Filters,
) -> Result<()> {
    let returned: HashSet<Key> = steps.iter().map(|s| s.key).collect();
    let internal: HashSet<Key> = deps.iter().filter(|d| d.deptype == 'i').map(|d| d.from).collect();
    // An object whose internal part was returned (a composite type's relation) is covered by it.
    let has_returned_part: HashSet<Key> =
        deps.iter().filter(|d| d.deptype == 'i' && returned.contains(&d.from)).map(|d| d.to).collect();
    let mut missing: Vec<String> = Vec::new();
    for Covered { key, schema, description } in objects {
        if returned.contains(&key)
            || members.contains(&key)
            || internal.contains(&key)
            || has_returned_part.contains(&key)
        {
            continue;
        }
        if let Some(s) = &schema
            && !filters.selects_schema(s)
        {
            continue;
        }
        missing.push(description.unwrap_or_else(|| format!("object {} of catalog {}", key.1, key.0)));
    }
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    let shown = missing.iter().take(50).map(|m| format!("\n  {m}")).collect::<String>();
    let more = if missing.len() > 50 { format!("\n  ... and {} more", missing.len() - 50) } else { String::new() };
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!(
            "the database holds {} object(s) this pgsafe cannot reproduce yet; nothing was dumped:{shown}{more}",
            missing.len()
        ),
    )
    .with_hint("exclude them explicitly (`-N SCHEMA`, `-T TABLE`) to dump the rest"))
}

/// Builds a comment's or security label's statement from its row (of the query named) and its target
/// (`statement_target`).
type NoteStatement = fn(&Row, &str, &str) -> Result<String>;

fn comment_on(row: &Row, query: &str, target: &str) -> Result<String> {
    let description: String = get(row, query, "description")?;
    Ok(format!("COMMENT ON {target} IS {};", quote_literal(&description)))
}

fn label_on(row: &Row, query: &str, target: &str) -> Result<String> {
    let (provider, label): (String, String) = (get(row, query, "provider")?, get(row, query, "label")?);
    Ok(format!("SECURITY LABEL FOR {} ON {target} IS {};", quote_ident(&provider), quote_literal(&label)))
}

/// An aggregate without arguments is `agg(*)` in `ALTER AGGREGATE`, `COMMENT ON AGGREGATE` and `DROP
/// AGGREGATE`, where `agg()` is a syntax error; `GRANT ... ON FUNCTION` wants `agg()` (and refuses `agg(*)`).
fn aggregate_star<'a>(ty: &str, identity: &'a str) -> std::borrow::Cow<'a, str> {
    match identity.strip_suffix("()") {
        Some(name) if ty == "aggregate" => format!("{name}(*)").into(),
        _ => identity.into(),
    }
}

/// What follows `COMMENT ON` or `SECURITY LABEL ... ON` for an object pg_identify_object describes.
fn statement_target(ty: &str, identity: &str) -> Option<String> {
    Some(match ty {
        "aggregate" => format!("AGGREGATE {}", aggregate_star(ty, identity)),
        "domain constraint" => {
            let (name, on) = split_on(identity)?;
            format!("CONSTRAINT {name} ON DOMAIN {on}")
        }
        "transform" => {
            let rest = identity.strip_prefix("for ")?;
            let (ty, lang) = rest.rsplit_once(" on language ")?;
            format!("TRANSFORM FOR {ty} LANGUAGE {lang}")
        }
        t if t.ends_with(" column") => format!("COLUMN {identity}"),
        t => format!("{} {identity}", comment_keyword(t)?),
    })
}

/// Splits `name on object` at the ` on ` that is outside double quotes.
fn split_on(identity: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, c) in identity.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && identity[i..].starts_with(" on ") {
            return Some((&identity[..i], &identity[i + 4..]));
        }
    }
    None
}

fn comment_keyword(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "table" => "TABLE",
        "index" => "INDEX",
        "sequence" => "SEQUENCE",
        "view" => "VIEW",
        "materialized view" => "MATERIALIZED VIEW",
        "composite type" | "type" => "TYPE",
        "foreign table" => "FOREIGN TABLE",
        "aggregate" => "AGGREGATE",
        "function" => "FUNCTION",
        "procedure" => "PROCEDURE",
        "cast" => "CAST",
        "collation" => "COLLATION",
        "table constraint" => "CONSTRAINT",
        "conversion" => "CONVERSION",
        "language" => "LANGUAGE",
        "large object" => "LARGE OBJECT",
        "operator" => "OPERATOR",
        "operator class" => "OPERATOR CLASS",
        "operator family" => "OPERATOR FAMILY",
        "access method" => "ACCESS METHOD",
        "rule" => "RULE",
        "trigger" => "TRIGGER",
        "schema" => "SCHEMA",
        "text search parser" => "TEXT SEARCH PARSER",
        "text search dictionary" => "TEXT SEARCH DICTIONARY",
        "text search template" => "TEXT SEARCH TEMPLATE",
        "text search configuration" => "TEXT SEARCH CONFIGURATION",
        "foreign-data wrapper" => "FOREIGN DATA WRAPPER",
        "server" => "SERVER",
        "extension" => "EXTENSION",
        "event trigger" => "EVENT TRIGGER",
        "policy" => "POLICY",
        "publication" => "PUBLICATION",
        "subscription" => "SUBSCRIPTION",
        "statistics object" => "STATISTICS",
        _ => return None,
    })
}

/// The `ALTER` keyword for changing an owner; `None` for kinds without owners.
fn owner_keyword(ty: &str) -> Option<&'static str> {
    match ty {
        "table" | "index" | "sequence" | "view" | "materialized view" | "foreign table" => {
            Some(comment_keyword(ty).expect("relation kinds have keywords"))
        }
        "cast"
        | "table constraint"
        | "domain constraint"
        | "rule"
        | "trigger"
        | "policy"
        | "extension"
        | "text search parser"
        | "text search template"
        | "access method"
        | "transform" => None,
        _ => comment_keyword(ty),
    }
}

/// What follows `GRANT ... ON` for a kind with privileges.
fn grant_keyword(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "table" | "view" | "materialized view" | "foreign table" => "TABLE",
        "sequence" => "SEQUENCE",
        "function" | "aggregate" => "FUNCTION",
        "procedure" => "PROCEDURE",
        "type" => "TYPE",
        "schema" => "SCHEMA",
        "language" => "LANGUAGE",
        "foreign-data wrapper" => "FOREIGN DATA WRAPPER",
        "server" => "FOREIGN SERVER",
        "large object" => "LARGE OBJECT",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constraint_triggers_constraint_belongs_to_its_trigger_whatever_the_row_order() {
        // Found on PostgreSQL 18's copy of apflora: the constraint came out as the table's when its `a`
        // row came first, which put the table after its own trigger (a cycle) in one database and not in
        // the other, so two dumps of the same schema were ordered differently.
        let (constraint, table, trigger) = ((2606, 30), (1259, 10), (2620, 20));
        let rows = [(constraint, owner_rank('a'), table), (constraint, owner_rank('i'), trigger)];
        assert_eq!(pick_owners(rows.into_iter())[&constraint], trigger);
        assert_eq!(pick_owners(rows.into_iter().rev())[&constraint], trigger);
    }

    #[test]
    fn an_objects_own_dependency_beats_what_it_contains_and_ties_go_to_the_lowest_key() {
        let (relation, ty, schema_a, schema_b) = ((1259, 5), (1247, 6), (2615, 1), (2615, 2));
        let rows = [(relation, CONTAINER_RANK, ty), (relation, owner_rank('a'), schema_b)];
        assert_eq!(pick_owners(rows.into_iter())[&relation], schema_b);
        let ties = [(relation, owner_rank('a'), schema_b), (relation, owner_rank('a'), schema_a)];
        assert_eq!(pick_owners(ties.into_iter())[&relation], schema_a);
        assert_eq!(pick_owners(ties.into_iter().rev())[&relation], schema_a);
    }

    #[test]
    fn an_aggregate_over_star_is_named_with_a_star_except_in_grants() {
        assert_eq!(statement_target("aggregate", "public.cnt()").unwrap(), "AGGREGATE public.cnt(*)");
        assert_eq!(statement_target("aggregate", "public.s(integer)").unwrap(), "AGGREGATE public.s(integer)");
        assert_eq!(aggregate_star("aggregate", "public.cnt()"), "public.cnt(*)");
        assert_eq!(aggregate_star("function", "public.f()"), "public.f()");
        assert_eq!(grant_keyword("aggregate"), Some("FUNCTION"));
    }

    #[test]
    fn targets_of_comments() {
        assert_eq!(statement_target("table column", "public.t.c").unwrap(), "COLUMN public.t.c");
        assert_eq!(
            statement_target("domain constraint", "\"a on b\" on public.d").unwrap(),
            "CONSTRAINT \"a on b\" ON DOMAIN public.d"
        );
        assert_eq!(
            statement_target("transform", "for integer on language sql").unwrap(),
            "TRANSFORM FOR integer LANGUAGE sql"
        );
        assert_eq!(statement_target("trigger", "t on public.x").unwrap(), "TRIGGER t on public.x");
        assert!(statement_target("user mapping", "x").is_none());
    }
}
