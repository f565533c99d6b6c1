//! The restore plan: what a restore will do, step by step, computed from the archive and the options
//! alone, with no connection and no I/O. `restore --dry-run` prints it, `--list` lists its items (and
//! `-L` edits them), `-f` writes its SQL, and the run executes exactly it.
//!
//! ```text
//! before (refuse a non-empty target | drop the archive's objects | a new database | empty tables)
//! -> roles -> pre-data -> data (parts) -> post-data -> sequence values -> privileges
//! -> after the privileges (default privileges, materialized view refreshes, event triggers)
//! -> verification -> the new database's own properties (--create)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use super::{LeaveOut, ListSelection, RestoreOptions, VerifyLevel};
use crate::catalog::Filters;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{
    ArchiveIndex, Catalog, ColumnInfo, ContentDigest, CopyFormat, PartId, PartKind, SequenceValue, TableName,
};
use crate::pg::{SearchPath, quote_ident, quote_literal, quote_qualified};
use crate::plan::{column_list, format_option};
use crate::schema::{ObjectKind, SchemaCatalog, SchemaObject, Section, acl};

/// Settings for every session that runs schema statements: names in the archive's statements are all
/// qualified, and function bodies may refer to objects created later, as pg_restore has it. The target's
/// own `default_tablespace` and `default_table_access_method` must not move what the source kept in its
/// defaults.
pub(crate) const SCHEMA_SETTINGS: &str = "SET search_path = ''; SET check_function_bodies = off; \
    SET client_min_messages = warning; SET default_tablespace = ''; SET default_table_access_method = heap";

/// The smallest table, in bytes of its rows' stream, that loads frozen after being emptied
/// ([`Freeze::AfterTruncate`]).
const FREEZE_FROM_BYTES: u64 = 1 << 20;
/// The temporary table the large objects' part loads into, before `lo_from_bytea` makes each object.
const LARGE_OBJECTS_TABLE: &str = "CREATE TEMP TABLE pgsafe_large_objects (loid oid, data bytea)";
const LARGE_OBJECTS_COPY: &str = "COPY pgsafe_large_objects FROM STDIN (FORMAT binary)";
const LARGE_OBJECTS_MAKE: &str =
    "SELECT pg_catalog.lo_from_bytea(loid, data) FROM pgsafe_large_objects; DROP TABLE pgsafe_large_objects";

/// What a restore makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreKind {
    /// The schema and the rows, into an empty database.
    Whole,
    /// The schema without rows (`--schema-only`).
    SchemaOnly,
    /// The rows, into tables that exist (`--data-only`).
    DataOnly,
}

/// What happens to the target before anything is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Before {
    /// A target that holds any user object is refused: restoring over it would mix two databases.
    RefuseNonEmpty,
    /// `--clean`: the archive's objects that exist are dropped, dependents first, in one transaction.
    DropArchiveObjects { statements: Vec<String> },
    /// `--create` made the database: it is empty.
    NewDatabase,
    /// Data only: every table must exist with the archive's columns, and be empty.
    RequireEmptyTables,
    /// Data only with `--clean`: the tables are emptied and the archive's large objects removed.
    EmptyTables,
}

/// The archive a plan restores.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub database: String,
    pub server_version: String,
    pub dumped_at: String,
    pub tool: String,
}

/// `--create`: the database made first, through the one `-d` names, and what it is given at the end.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseStep {
    pub name: String,
    /// `--clean --create`: drop a database of that name first.
    pub drop_first: bool,
    pub create: String,
    /// Owner, comment, privileges, settings, template flag: last, so that a setting cannot touch the
    /// restore's own sessions.
    pub finish: Vec<String>,
}

/// One schema object's statements.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectStep {
    /// The object's id in the archive (`--list`, `-L`).
    pub id: u32,
    pub kind: ObjectKind,
    /// `KIND schema.name`, for messages and `--list`.
    pub label: String,
    pub section: Section,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What runs; empty for an object made by another's statement (it is listed for `-L`).
    pub sql: String,
    /// Ids of the objects (of the same phase) that must be made first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<u32>,
    /// The table it belongs to, if any (unknown in archives written before the schema engine said).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<TableName>,
    /// Bytes of work it stands for, to start big post-data work first.
    pub size: u64,
    /// Tables other than its own that it needs and this restore does not make (a filter or `-L` left
    /// them out): the table a foreign key references, the partitioned table a partition or a partition's
    /// index is attached to. The run makes it where the target has them, and leaves it out, saying so,
    /// where the target does not ([`RestorePlan::leave_out_needing`]): a partition is then a table of its
    /// own, as pg_restore's `-t` makes it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outside_tables: Vec<TableName>,
    /// The archive's objects it depends on that this restore leaves out (`-n`, `-t`, `-L`, a `--no-*`
    /// option), other than the tables of [`Self::outside_tables`]: it needs the target to have them
    /// (`FUNCTION public.lower2(text)` of an index on `public.lower2(name)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<Needed>,
}

/// An archive object that an object the restore makes needs and the restore leaves out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Needed {
    /// `KIND schema.name`, as `--list` labels it.
    pub label: String,
    /// How the target is asked whether it has it: `function:public.lower2(text)`, `type:public.mood`,
    /// `schema:util`, `extension:pg_trgm`, `relation:public.t`, its names quoted; `None` for a kind the
    /// target is not asked for by name (an operator class, a collation, ...).
    #[serde(skip)]
    pub probe: Option<String>,
}

impl Needed {
    fn of(o: &SchemaObject) -> Needed {
        Needed::named(&o.kind, o.schema.as_deref(), &o.name)
    }

    /// An object of `kind` named `name` (in `schema`), as [`SchemaObject::label`] names it.
    fn named(kind: &ObjectKind, schema: Option<&str>, name: &str) -> Needed {
        let qualified = |name: &str| match schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(name)),
            None => quote_ident(name),
        };
        let probe = match kind {
            ObjectKind::Schema => Some(format!("schema:{}", quote_ident(name))),
            ObjectKind::Extension => Some(format!("extension:{}", name)),
            ObjectKind::Type | ObjectKind::Domain => Some(format!("type:{}", qualified(name))),
            // `lower2(text)`: the name quoted, the argument types as the dump wrote them.
            ObjectKind::Function | ObjectKind::Procedure => {
                name.split_once('(').map(|(name, args)| format!("function:{}({args}", qualified(name)))
            }
            ObjectKind::Table | ObjectKind::View | ObjectKind::MaterializedView | ObjectKind::Sequence => {
                Some(format!("relation:{}", qualified(name)))
            }
            _ => None,
        };
        let label = match schema {
            Some(s) => format!("{kind} {s}.{name}"),
            None => format!("{kind} {name}"),
        };
        Needed { label, probe }
    }
}

impl ObjectStep {
    /// Whether making it keeps its table from being read meanwhile: its kind's statements take `ACCESS
    /// EXCLUSIVE` on the table (a primary key, unique or check constraint, a rule, row security, a policy),
    /// which a reader's `ACCESS SHARE` waits for, or its kind is one this pgsafe does not know. An index
    /// (`SHARE`), a statistics object or an index attached (`SHARE UPDATE EXCLUSIVE`), a trigger or a foreign
    /// key (`SHARE ROW EXCLUSIVE`) and a publication's table let readers through.
    pub fn blocks_readers(&self) -> bool {
        !matches!(
            self.kind,
            ObjectKind::Index
                | ObjectKind::IndexAttach
                | ObjectKind::Statistics
                | ObjectKind::Trigger
                | ObjectKind::FkConstraint
                | ObjectKind::PublicationTable
        )
    }
}

/// One part's COPY.
#[derive(Debug, Clone, Serialize)]
pub struct PartStep {
    pub part: PartId,
    pub table: TableName,
    pub kind: PartKind,
    /// Runs before the COPY (the large objects' temporary table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The COPY, without `FREEZE` (see [`copy_sql`](Self::copy_sql)).
    pub copy: String,
    /// Whether and how its rows are frozen as they load.
    pub freeze: Freeze,
    /// Runs after the COPY (making the large objects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The `search_path` the COPY runs under, where it matters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_path: Option<SearchPath>,
    pub rows: u64,
    /// The decoded COPY stream's length.
    pub bytes: u64,
    /// Some of the part's chunks, when the part is cut into pieces that load on several sessions
    /// ([`RestorePlan::pieces`]); `rows` and `bytes` are then theirs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Piece>,
}

/// Chunks `from..to` of a part's `of`, loaded by a `COPY` of their own: one that does not begin with the
/// part's first chunk is sent the binary header first, and one that does not end with its last is sent
/// the trailer after them (format spec, section 11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Piece {
    pub from: usize,
    pub to: usize,
    pub of: usize,
    pub binary: bool,
}

/// The binary COPY header a piece that does not begin the part's stream is sent first: the signature,
/// no flags, no extension, as every PostgreSQL since 7.4 writes it.
pub(crate) const BINARY_HEADER: &[u8; 19] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary COPY trailer (a field count of -1).
pub(crate) const BINARY_TRAILER: &[u8; 2] = &[0xff, 0xff];

/// Pieces are cut to about the sessions' share of all rows divided by this: enough that the last
/// pieces to load end close together.
const PIECES_PER_SESSION: u64 = 16;
/// The smallest and largest piece (in bytes of the COPY stream) the cut aims at.
const MIN_PIECE: u64 = 16 << 20;
const MAX_PIECE: u64 = 256 << 20;

impl PartStep {
    /// How [`RestorePlan::pieces`] names it: the part and, for a piece, its chunks.
    pub fn label(&self) -> String {
        match self.chunks {
            Some(p) => format!("part {} (`{}`, chunks {}..{} of {})", self.part, self.table, p.from, p.to, p.of),
            None => format!("part {} (`{}`)", self.part, self.table),
        }
    }

    /// The COPY to run: with `FREEZE` when the rows are frozen as they load.
    pub fn copy_sql(&self) -> String {
        match (self.freeze, self.copy.strip_suffix(')')) {
            (Freeze::No, _) | (_, None) => self.copy.clone(),
            (_, Some(open)) => format!("{open}, FREEZE)"),
        }
    }
}

/// Whether a part's rows are frozen as they load (`COPY ... FREEZE`, which the server allows into a table
/// made or emptied in the loading transaction): they are then written once, visible to all and frozen, so
/// that no later reader sets their hint bits (dirtying every page again, and on a server with data
/// checksums writing every page to the WAL once more: 590 MB for a table of 616 MB) and no later vacuum
/// has to freeze them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Freeze {
    /// Loaded as they are: into existing tables, or into a table whose parts load on several sessions.
    No,
    /// `--single-transaction`: the table was made in the loading transaction.
    MadeInTransaction,
    /// The table's parts load on one session in a transaction of their own, which first empties the
    /// table this restore made (`TRUNCATE`, instant on an empty table).
    AfterTruncate,
}

/// A table the restore loads, and what verification compares it with.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedTable {
    pub name: TableName,
    pub kind: PartKind,
    pub parts: Vec<PartId>,
    /// The columns in the archive's stream order, their format, and an extension configuration table's
    /// filter (the rows its extension makes are not the archive's).
    pub columns: Vec<ColumnInfo>,
    pub format: CopyFormat,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The `search_path` it is loaded and read back under, where it matters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_path: Option<SearchPath>,
    /// What the archive holds for it: its parts' rows, COPY stream bytes and content digests summed.
    pub rows: u64,
    pub bytes: u64,
    pub digest: ContentDigest,
    /// `--verify count` counts its rows as they load and does not read it back: a table this restore
    /// makes, whose parts' `COPY` counts must be the archive's (the load stops otherwise), into a table that
    /// was empty and that nothing else writes until its rows are in.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub counted_by_load: bool,
    /// The topmost partitioned table of partitions whose rows the server routes again (a hash
    /// partitioning on an enum column, see `PartInfo::load_via`): their parts load into it, never frozen,
    /// and it is read back as a whole.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub routed: bool,
}

impl PlannedTable {
    /// An extension configuration table's filter as a clause to append, or nothing.
    pub(crate) fn where_clause(&self) -> String {
        self.filter.as_deref().map(|f| format!(" {f}")).unwrap_or_default()
    }

    /// `ONLY ` before its name in a query of its own rows; nothing for a routed table, whose rows are in
    /// its partitions.
    pub(crate) fn only(&self) -> &'static str {
        if self.routed { "" } else { "ONLY " }
    }

    /// ``table `s.t` `` or `large objects`, for messages.
    pub(crate) fn label(&self) -> String {
        match self.kind {
            PartKind::Table => format!("table `{}`", self.name),
            PartKind::LargeObjects => "large objects".to_string(),
        }
    }
}

/// Everything a restore will do, in order.
#[derive(Debug, Clone, Serialize)]
pub struct RestorePlan {
    pub source: Source,
    pub kind: RestoreKind,
    /// All of it in one transaction on one session (`--single-transaction`).
    pub single_transaction: bool,
    pub jobs: usize,
    /// Every session acts as this role (`--role`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseStep>,
    pub before: Before,
    /// Roles created when the cluster lacks them (`--create-roles`), without login.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub create_roles: Vec<String>,
    pub pre_data: Vec<ObjectStep>,
    pub data: Vec<PartStep>,
    pub post_data: Vec<ObjectStep>,
    pub sequences: Vec<SequenceValue>,
    /// `GRANT` and `REVOKE`, per object.
    pub privileges: Vec<ObjectStep>,
    /// As pg_restore orders them after its ACL pass: default privileges (which must not touch the
    /// restored objects), materialized view refreshes (a view's query runs as its owner, who may need the
    /// grants) and event triggers (which must not fire on the restore's own statements).
    pub after_privileges: Vec<ObjectStep>,
    /// The tables loaded, for the data-only preparation and for verification.
    pub tables: Vec<PlannedTable>,
    pub verify: VerifyLevel,
    /// What the user must act on although the restore succeeds (a subscription left disabled).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The archive's extensions the target has already, kept as they are (the run settles them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_extensions: Vec<String>,
    /// Every extension the archive holds, restored or not (`-t` leaves them out): one the target has is
    /// no object that makes it not empty.
    #[serde(skip)]
    pub archive_extensions: Vec<String>,
    /// Dependency cycles the dump broke, each naming the object created early.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cycles: Vec<String>,
}

/// The kinds made after the privileges, in this order.
const AFTER_PRIVILEGES: [ObjectKind; 3] =
    [ObjectKind::DefaultAcl, ObjectKind::MaterializedViewData, ObjectKind::EventTrigger];

impl RestorePlan {
    /// Plans the restore of the archive `index` holds with `options`. Fails, before anything happens,
    /// on `-n`/`-t` patterns that match nothing the archive holds, and on a whole restore of an archive
    /// without a schema.
    pub fn build<B: crate::format::ArchiveSource>(
        index: &ArchiveIndex<B>,
        options: &RestoreOptions,
    ) -> Result<RestorePlan> {
        let catalog = index.catalog();
        let kind = if options.data_only {
            RestoreKind::DataOnly
        } else if options.schema_only {
            RestoreKind::SchemaOnly
        } else {
            RestoreKind::Whole
        };
        // The archive's schema, read once: for the schema's steps, and to check `-n` and `-t` patterns.
        let check = !options.filters.include_schemas.is_empty() || !options.filters.include_tables.is_empty();
        let schema =
            if kind != RestoreKind::DataOnly || check { SchemaCatalog::read(catalog.schema.as_ref())? } else { None };
        if check {
            check_patterns(catalog, schema.as_ref(), &options.filters)?;
        }
        let list = options.use_list.as_ref();
        let records: HashMap<PartId, (u64, u64, ContentDigest)> =
            index.manifest().parts.iter().map(|r| (r.id, (r.rows, r.raw_bytes, r.digest))).collect();
        let (tables, sequences) = match kind {
            RestoreKind::SchemaOnly => (Vec::new(), Vec::new()),
            _ => (
                select_tables(catalog, &records, &options.filters, list),
                select_sequences(catalog, schema.as_ref(), &options.filters, list),
            ),
        };
        let single_transaction = options.single_transaction;
        let freeze =
            if single_transaction && kind == RestoreKind::Whole { Freeze::MadeInTransaction } else { Freeze::No };
        let mut data: Vec<PartStep> = tables
            .iter()
            .flat_map(|t| t.parts.iter().map(move |&p| (t, p)))
            .map(|(t, part)| part_step(t, part, records.get(&part).copied().unwrap_or_default(), freeze))
            .collect();
        data.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.part.cmp(&b.part)));
        let mut plan = RestorePlan {
            source: Source {
                database: catalog.server.database.clone(),
                server_version: catalog.server.version.clone(),
                dumped_at: catalog.created_at.clone(),
                tool: catalog.tool.clone(),
            },
            kind,
            single_transaction,
            jobs: if single_transaction { 1 } else { options.jobs.max(1) },
            role: options.role.clone(),
            database: None,
            before: if options.clean { Before::EmptyTables } else { Before::RequireEmptyTables },
            create_roles: Vec::new(),
            pre_data: Vec::new(),
            data,
            post_data: Vec::new(),
            sequences,
            privileges: Vec::new(),
            after_privileges: Vec::new(),
            tables,
            verify: options.verify,
            warnings: Vec::new(),
            kept_extensions: Vec::new(),
            archive_extensions: Vec::new(),
            cycles: Vec::new(),
        };
        if kind != RestoreKind::DataOnly {
            plan.add_schema(catalog, schema, options)?;
        }
        if kind == RestoreKind::Whole {
            plan.count_by_load();
            if !single_transaction {
                plan.freeze_after_truncate();
            }
        }
        Ok(plan)
    }

    /// The tables this restore makes with a statement of its own: never one it did not (`-L` can leave a
    /// table's definition out and load its rows into the existing one; an extension's table holds the rows
    /// `CREATE EXTENSION` made).
    fn made_tables(&self) -> HashSet<TableName> {
        self.pre_data
            .iter()
            .filter(|o| o.kind == ObjectKind::Table && !o.sql.is_empty())
            .filter_map(|o| o.table.clone())
            .collect()
    }

    /// Marks the tables whose rows `--verify count` counts as they load, and does not read back: every
    /// table this restore makes whose rows it loads (an extension configuration table, with its filter, is
    /// read back). Each of its parts' `COPY` reports the rows the server took, and the restore stops unless
    /// they are the archive's (step 3 of the README's restore), into a table that was empty and in which
    /// nothing can add or take rows before the load is committed: its triggers, rules and policies are
    /// post-data objects, made once its rows are in, and a `COPY` into a partition goes to that partition
    /// alone. Counting it again afterwards reads the whole table to find the same number (0.6 s of the
    /// benchmark's 8.6 s restore).
    fn count_by_load(&mut self) {
        let made = self.made_tables();
        for t in self.tables.iter_mut().filter(|t| t.kind == PartKind::Table && t.filter.is_none()) {
            t.counted_by_load = made.contains(&t.name) && !t.routed;
        }
    }

    /// The tables of a whole restore (not in one transaction) whose autovacuum is held off until their rows,
    /// indexes and reads are done (`restore::autovacuum`): the ordinary tables it makes and loads, of at
    /// least `FREEZE_FROM_BYTES` of rows (an autovacuum of a smaller one is over before a build could wait
    /// for it).
    pub fn held_from_autovacuum(&self) -> Vec<&TableName> {
        if self.kind != RestoreKind::Whole || self.single_transaction {
            return Vec::new();
        }
        let made = self.made_tables();
        self.tables
            .iter()
            .filter(|t| t.kind == PartKind::Table && t.filter.is_none() && !t.routed && made.contains(&t.name))
            .filter(|t| t.bytes >= FREEZE_FROM_BYTES)
            .map(|t| &t.name)
            .collect()
    }

    /// The plan's parts to load on `-j` sessions, a part that loads as it is (not frozen, nothing run before
    /// or after its `COPY`) cut, at its chunks' bounds, into pieces of about the sessions' share of all
    /// rows over `PIECES_PER_SESSION` (16 to 256 MiB), each a `COPY` of its own: a table dumped whole
    /// (by `-j 1`, or from PostgreSQL 13, which has no TID range scans) still loads on every session, and
    /// the last loads end close together. pg_restore loads each table with one `COPY`.
    pub fn pieces<B: crate::format::ArchiveSource>(&self, index: &ArchiveIndex<B>) -> Vec<PartStep> {
        let Some(aim) = self.piece_aim() else { return self.data.clone() };
        let mut steps = Vec::with_capacity(self.data.len());
        for step in &self.data {
            let cuts = step.freeze == Freeze::No
                && step.kind == PartKind::Table
                && step.before.is_none()
                && step.after.is_none()
                && cut(step.bytes, aim);
            if !cuts {
                steps.push(step.clone());
                continue;
            }
            let binary = index.part_info(step.part).is_some_and(|p| p.format == CopyFormat::Binary);
            let chunks: Vec<_> = index.chunks(step.part).map(|c| c.entry).collect();
            let of = chunks.len();
            let (mut from, mut rows, mut bytes) = (0, 0, 0);
            for (at, c) in chunks.iter().enumerate() {
                rows += c.rows;
                bytes += u64::from(c.raw_len);
                if bytes >= aim || at + 1 == of {
                    let to = at + 1;
                    let whole = from == 0 && to == of;
                    let chunks = (!whole).then_some(Piece { from, to, of, binary });
                    steps.push(PartStep { rows, bytes, chunks, ..step.clone() });
                    (from, rows, bytes) = (to, 0, 0);
                }
            }
        }
        steps
    }

    /// The size [`Self::pieces`] cuts parts to: the sessions' share of all rows over [`PIECES_PER_SESSION`],
    /// within [`MIN_PIECE`] and [`MAX_PIECE`]; `None` on one session, where nothing is cut.
    fn piece_aim(&self) -> Option<u64> {
        let total: u64 = self.data.iter().map(|p| p.bytes).sum();
        (self.jobs > 1).then(|| (total / (self.jobs as u64 * PIECES_PER_SESSION)).clamp(MIN_PIECE, MAX_PIECE))
    }

    /// The tables with rows that `--verify count` counts as they load (none at another level).
    pub fn tables_counted_on_load(&self) -> usize {
        if self.verify != VerifyLevel::Count {
            return 0;
        }
        self.tables.iter().filter(|t| !t.parts.is_empty() && t.counted_by_load).count()
    }

    /// Marks the parts that load frozen, in a transaction of their table's own that empties it first: those
    /// of every table this restore makes ([`Self::made_tables`]), unless the table is so big that loading
    /// its parts on one session would leave the others idle: more than the sessions' share of all rows
    /// (`-j 2`: half), in more than one part or in one that [`Self::pieces`] cuts.
    ///
    /// A table of less than [`FREEZE_FROM_BYTES`] loads as it is: emptying it first gives it a new storage
    /// file, a few catalog rows and a commit of its own, which costs more than freezing its few pages later
    /// does (3,000 tables of one row: 5.2 to 6.0 s frozen, 3.1 to 3.9 s not, 3 alternating pairs).
    fn freeze_after_truncate(&mut self) {
        let made = self.made_tables();
        let total: u64 = self.tables.iter().map(|t| t.bytes).sum();
        let jobs = self.jobs.max(1) as u64;
        let aim = self.piece_aim();
        let frozen: HashSet<TableName> = self
            .tables
            .iter()
            .filter(|t| t.kind == PartKind::Table && t.filter.is_none() && !t.routed && made.contains(&t.name))
            .filter(|t| {
                t.bytes.saturating_mul(jobs) <= total || t.parts.len() == 1 && !aim.is_some_and(|a| cut(t.bytes, a))
            })
            .filter(|t| t.bytes >= FREEZE_FROM_BYTES)
            .map(|t| t.name.clone())
            .collect();
        for step in self.data.iter_mut().filter(|s| s.kind == PartKind::Table && frozen.contains(&s.table)) {
            step.freeze = Freeze::AfterTruncate;
        }
    }

    /// The schema's steps of a whole (or schema-only) restore.
    fn add_schema(&mut self, catalog: &Catalog, schema: Option<SchemaCatalog>, options: &RestoreOptions) -> Result<()> {
        let schema = schema.ok_or_else(|| {
            Error::new(ErrorKind::InvalidInput, "the archive holds no schema (it was made with `--data-only`)")
                .with_hint("restore its rows into existing tables with `--data-only`")
        })?;
        let leave_out = &options.leave_out;
        let list = options.use_list.as_ref();
        // A large object's owner, privileges and comments apply to rows the data load makes.
        let with_large_objects = self.tables.iter().any(|t| t.kind == PartKind::LargeObjects);
        let objects: Vec<&SchemaObject> = schema
            .objects
            .iter()
            .filter(|o| chosen(o, &options.filters, leave_out, list))
            .filter(|o| with_large_objects || o.kind != ObjectKind::LargeObject)
            .collect();
        self.sequences.retain(|v| {
            let defines = |o: &&SchemaObject| sequence_defined_by(o, &v.name);
            !schema.objects.iter().any(|o| defines(&o)) || objects.iter().any(defines)
        });
        let step = |o: &SchemaObject| object_step(o, statements(o, leave_out));
        let made: HashSet<&TableName> =
            objects.iter().filter(|o| o.kind == ObjectKind::Table).filter_map(|o| o.table.as_ref()).collect();
        let by_id: HashMap<u32, &SchemaObject> = schema.objects.iter().map(|o| (o.id, o)).collect();
        let ids: HashSet<u32> = objects.iter().map(|o| o.id).collect();
        let schemas: HashSet<&str> =
            objects.iter().filter(|o| o.kind == ObjectKind::Schema).map(|o| o.name.as_str()).collect();
        self.archive_extensions =
            schema.objects.iter().filter(|o| o.kind == ObjectKind::Extension).map(|o| o.name.clone()).collect();
        for o in objects.iter().filter(|o| !AFTER_PRIVILEGES.contains(&o.kind)) {
            let step = ObjectStep {
                outside_tables: outside_tables(o, &by_id, &made),
                left_out: left_out(o, &by_id, &ids, &schemas),
                ..step(o)
            };
            match o.section {
                Section::PreData => self.pre_data.push(step),
                Section::PostData => self.post_data.push(step),
            }
        }
        self.attach_late();
        self.keys_after_attaches();
        for kind in AFTER_PRIVILEGES {
            if leave_out.privileges && kind == ObjectKind::DefaultAcl {
                continue;
            }
            self.after_privileges.extend(objects.iter().filter(|o| o.kind == kind).map(|o| step(o)));
        }
        if !leave_out.privileges {
            self.privileges = objects
                .iter()
                .filter(|o| !o.privileges.is_empty())
                .map(|o| {
                    // The `public` schema is the new database's own, not made by the restore.
                    let kept = o.kind == ObjectKind::Schema && o.name == "public";
                    let statements = match o.owner.as_deref().filter(|_| leave_out.owner) {
                        Some(owner) if kept => acl::for_kept_owner(&o.privileges, owner),
                        Some(owner) => acl::for_new_owner(&o.privileges, owner),
                        None => o.privileges.clone(),
                    };
                    object_step(o, statements.join("\n") + "\n")
                })
                .collect();
        }
        self.warnings = subscription_warnings(&objects);
        self.warnings.extend(partitions_left_out(&schema.objects, &objects, &by_id));
        self.cycles = schema.cycles.clone();

        if let Some(name) = &options.create {
            let create = match &schema.database {
                Some(p) => p.create_statement(name, leave_out.tablespaces),
                None => format!(
                    "CREATE DATABASE {} TEMPLATE template0 ENCODING {}",
                    quote_ident(name),
                    quote_literal(&catalog.server.encoding)
                ),
            };
            let finish = match &schema.database {
                Some(db) => db.finishing_statements(name, leave_out.owner, leave_out.privileges)?,
                None => Vec::new(),
            };
            self.database = Some(DatabaseStep { name: name.clone(), drop_first: options.clean, create, finish });
            self.before = Before::NewDatabase;
        } else if options.clean {
            let mut statements = options.drop_also.clone();
            statements.extend(objects.iter().rev().filter_map(|o| drop_statement(o)));
            self.before = Before::DropArchiveObjects { statements };
        } else {
            self.before = Before::RefuseNonEmpty;
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
            self.create_roles = roles;
        }
        Ok(())
    }

    /// Moves the attachment of a partition to a partitioned table this restore does not make after the
    /// partition's own indexes and keys, and its indexes' attachments after it. Where the target has that
    /// table, attaching first (in pre-data, as a whole restore does) would give the partition copies of
    /// the table's indexes, and its own, made afterwards, would clash with them (`multiple primary keys
    /// for table`); attached afterwards, its own are taken as the copies, which leaves their own
    /// attachments nothing to do.
    fn attach_late(&mut self) {
        let late = |o: &ObjectStep| o.kind == ObjectKind::TableAttach && !o.outside_tables.is_empty();
        let (mut attaches, pre_data): (Vec<ObjectStep>, Vec<ObjectStep>) =
            std::mem::take(&mut self.pre_data).into_iter().partition(late);
        self.pre_data = pre_data;
        if attaches.is_empty() {
            return;
        }
        for a in &mut attaches {
            a.section = Section::PostData;
            let own = self.post_data.iter().filter(|o| o.table == a.table);
            a.deps.extend(own.filter(|o| matches!(o.kind, ObjectKind::Index | ObjectKind::Constraint)).map(|o| o.id));
        }
        let follows = |o: &ObjectStep| o.kind == ObjectKind::IndexAttach && attaches.iter().any(|a| a.table == o.table);
        let (mut index_attaches, post_data): (Vec<ObjectStep>, Vec<ObjectStep>) =
            std::mem::take(&mut self.post_data).into_iter().partition(follows);
        for i in &mut index_attaches {
            i.deps.extend(attaches.iter().filter(|a| a.table == i.table).map(|a| a.id));
        }
        // A key to the partitioned table may need the rows an attachment brings into it: keys wait for
        // the attachments, and come after them in the order a single transaction makes them in.
        let attached: Vec<u32> = attaches.iter().map(|a| a.id).collect();
        self.post_data = post_data;
        for key in self.post_data.iter_mut().filter(|o| o.kind == ObjectKind::FkConstraint) {
            key.deps.extend(attached.iter().copied());
        }
        self.post_data.extend(attaches);
        self.post_data.extend(index_attaches);
        let at: HashMap<u32, usize> = self.post_data.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
        let deps: Vec<Vec<usize>> =
            self.post_data.iter().map(|o| o.deps.iter().filter_map(|d| at.get(d).copied()).collect()).collect();
        if let Some(order) = crate::graph::order(self.post_data.len(), &deps) {
            let mut steps: Vec<Option<ObjectStep>> =
                std::mem::take(&mut self.post_data).into_iter().map(Some).collect();
            self.post_data = order.into_iter().filter_map(|i| steps[i].take()).collect();
        }
    }

    /// Makes each foreign key wait for the attachments of the partitions' indexes to the index it
    /// references, at every level. A partitioned table's unique index is invalid until every partition's
    /// index is attached, and a key that references it then fails (`there is no unique constraint matching
    /// given keys`): the key's dependencies name the index and the partitions' indexes, not their
    /// attachments, so a key on a big table, started first, failed (found on GitLab's `p_ci_builds`).
    fn keys_after_attaches(&mut self) {
        let attaches: Vec<(u32, Vec<u32>)> = self
            .post_data
            .iter()
            .filter(|o| o.kind == ObjectKind::IndexAttach)
            .map(|o| (o.id, o.deps.clone()))
            .collect();
        if attaches.is_empty() {
            return;
        }
        for key in self.post_data.iter_mut().filter(|o| o.kind == ObjectKind::FkConstraint) {
            // What the key waits for, and the attachments into any of it (whose indexes it then waits for
            // too: the attachments into those), until nothing is added.
            let mut waits: BTreeSet<u32> = key.deps.iter().copied().collect();
            loop {
                let more: Vec<(u32, &Vec<u32>)> = attaches
                    .iter()
                    .filter(|(id, deps)| !waits.contains(id) && deps.iter().any(|d| waits.contains(d)))
                    .map(|(id, deps)| (*id, deps))
                    .collect();
                if more.is_empty() {
                    break;
                }
                for (id, deps) in more {
                    waits.insert(id);
                    waits.extend(deps.iter().copied());
                }
            }
            let attached: Vec<u32> =
                attaches.iter().map(|(id, _)| *id).filter(|id| waits.contains(id) && !key.deps.contains(id)).collect();
            key.deps.extend(attached);
        }
    }

    /// The tables its objects need that it does not make ([`ObjectStep::outside_tables`]): the run asks
    /// the target for them.
    pub fn outside_tables(&self) -> BTreeSet<TableName> {
        self.pre_data.iter().chain(&self.post_data).flat_map(|o| o.outside_tables.iter().cloned()).collect()
    }

    /// Leaves out the objects that need a table of `missing` (tables this restore does not make and the
    /// target does not have), which would fail there: pg_restore's `-t` restores a table without them too.
    /// Says, per table, what was left out.
    pub fn leave_out_needing(&mut self, missing: &BTreeSet<TableName>) {
        let mut left_out: BTreeMap<&TableName, Vec<String>> = BTreeMap::new();
        for o in self.pre_data.iter().chain(&self.post_data) {
            for t in o.outside_tables.iter().filter(|t| missing.contains(*t)) {
                let what = match (&o.kind, &o.table) {
                    (ObjectKind::TableAttach, Some(own)) => {
                        format!("`{}` (`{own}` is a table of its own, not a partition)", o.label)
                    }
                    _ => format!("`{}`", o.label),
                };
                left_out.entry(t).or_default().push(what);
            }
        }
        self.warnings.extend(left_out.into_iter().map(|(table, labels)| {
            format!(
                "`{table}` is neither restored nor in the target, so what ties other tables to it was left out: {}",
                labels.join(", ")
            )
        }));
        let keep = |o: &ObjectStep| !o.outside_tables.iter().any(|t| missing.contains(t));
        self.pre_data.retain(keep);
        self.post_data.retain(keep);
    }

    /// Bytes of COPY streams the plan loads.
    pub fn data_bytes(&self) -> u64 {
        self.data.iter().map(|p| p.bytes).sum()
    }

    /// Rows the plan loads.
    pub fn data_rows(&self) -> u64 {
        self.data.iter().map(|p| p.rows).sum()
    }

    /// The ordinary tables' qualified names, for queries that take `text[]`.
    pub(crate) fn table_names(&self) -> Vec<String> {
        table_names(&self.tables)
    }

    /// The schema's SQL script (`-f`): what the restore runs, in its order, where the rows load marked
    /// by a comment (the archive's binary COPY streams have no SQL form). Large objects' metadata is left
    /// out with the rows that make them.
    pub fn script(&self) -> Result<String> {
        if self.kind == RestoreKind::DataOnly {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a data-only restore has no SQL script: its rows are COPY streams of the archive",
            ));
        }
        let mut out = format!(
            "-- pgsafe restore script of database `{}` ({}), dumped {}\n",
            self.source.database, self.source.server_version, self.source.dumped_at
        );
        if let Some(db) = &self.database {
            if db.drop_first {
                out.push_str(&format!("DROP DATABASE IF EXISTS {};\n", quote_ident(&db.name)));
            }
            out.push_str(&format!("{};\n\\connect {}\n", db.create, quote_ident(&db.name)));
        }
        if let Some(role) = &self.role {
            out.push_str(&format!("SET ROLE {};\n", quote_ident(role)));
        }
        out.push_str(&format!("{SCHEMA_SETTINGS};\n"));
        // As the run has it: the target's old objects go, and the roles come, in the transaction of the
        // schema's first phase (with `--single-transaction`, in the one transaction).
        out.push_str("BEGIN;\n");
        if let Before::DropArchiveObjects { statements } = &self.before {
            out.push_str("\n-- the archive's objects that exist (`--clean`)\n");
            for s in statements {
                out.push_str(s);
                out.push('\n');
            }
        }
        for role in &self.create_roles {
            out.push_str(&format!(
                "DO $pgsafe$BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {}) THEN CREATE ROLE {} NOLOGIN; END IF; END$pgsafe$;\n",
                quote_literal(role),
                quote_ident(role)
            ));
        }
        let section = |out: &mut String, title: &str, steps: &[ObjectStep]| {
            out.push_str(&format!("\n-- {title}\n"));
            for s in steps.iter().filter(|s| !s.sql.is_empty() && s.kind != ObjectKind::LargeObject) {
                let sql = match s.outside_tables.as_slice() {
                    [] => s.sql.clone(),
                    tables => only_where_present(&s.sql, tables),
                };
                out.push_str(&format!("\n-- {}\n{sql}", s.label));
            }
        };
        section(&mut out, "pre-data", &self.pre_data);
        if !self.single_transaction {
            out.push_str("COMMIT;\n");
        }
        out.push_str("\n-- data: the archive's rows load here (`pgsafe restore` without `-f`)\n");
        section(&mut out, "post-data", &self.post_data);
        if !self.sequences.is_empty() {
            out.push_str("\n-- sequence values\n");
            for v in &self.sequences {
                out.push_str(&format!(
                    "SELECT pg_catalog.setval({}, {}, {});\n",
                    quote_literal(&quote_qualified(&v.name)),
                    v.last_value,
                    v.is_called
                ));
            }
        }
        // Privileges as one block, as the restore runs them.
        out.push_str("\n-- privileges\n");
        for p in &self.privileges {
            out.push_str(&p.sql);
        }
        section(
            &mut out,
            "after the privileges: default privileges, materialized view refreshes, event triggers",
            &self.after_privileges,
        );
        if self.single_transaction {
            out.push_str("COMMIT;\n");
        }
        if let Some(db) = &self.database
            && !db.finish.is_empty()
        {
            out.push_str("\n-- the database's own properties\n");
            for s in &db.finish {
                out.push_str(s);
                out.push('\n');
            }
        }
        Ok(out)
    }
}

/// Whether `o` makes the sequence `name`: its `CREATE SEQUENCE` (a serial's, or one of its own), or the
/// table of an identity column whose sequence it is. A sequence whose definition the archive holds but
/// a restore leaves out (`-T t` takes `t`'s sequences with it; an archive dumped with `-T t` has their
/// values, not their definitions) gets no value; one the archive does not define (an extension's) does.
fn sequence_defined_by(o: &SchemaObject, name: &TableName) -> bool {
    match o.kind {
        ObjectKind::Sequence => o.schema.as_deref() == Some(name.schema.as_str()) && o.name == name.name,
        ObjectKind::Table => o
            .create
            .as_deref()
            .is_some_and(|sql| sql.contains(&format!("AS IDENTITY (SEQUENCE NAME {}", quote_qualified(name)))),
        _ => false,
    }
}

/// Whether a restore makes `o`: the `-n`/`-t` filters select it, no `--no-*` option leaves its kind out,
/// and a `-L` list, if any, keeps it.
fn chosen(o: &SchemaObject, filters: &Filters, leave_out: &LeaveOut, list: Option<&ListSelection>) -> bool {
    o.selected(filters) && !leave_out.kind(&o.kind) && list.is_none_or(|l| l.objects.contains(&o.id))
}

fn object_step(o: &SchemaObject, sql: String) -> ObjectStep {
    ObjectStep {
        id: o.id,
        kind: o.kind.clone(),
        label: o.label(),
        section: o.section,
        owner: o.owner.clone(),
        sql,
        deps: o.deps.clone(),
        table: o.table.clone(),
        size: o.size,
        outside_tables: Vec::new(),
        left_out: Vec::new(),
    }
}

/// The tables other than its own that `o` needs and that are not among the tables `made`: for a foreign
/// key, the table it references (its dependencies are that table and its key); for the attachment of a
/// partition, or of a partition's index, the partitioned table (its dependencies are that table, or its
/// index). An object of another kind needs none: what else a filter leaves out (a schema, a type, a
/// function) `-t` takes to be in the target, as pg_restore does.
fn outside_tables(
    o: &SchemaObject,
    objects: &HashMap<u32, &SchemaObject>,
    made: &HashSet<&TableName>,
) -> Vec<TableName> {
    if !matches!(o.kind, ObjectKind::FkConstraint | ObjectKind::TableAttach | ObjectKind::IndexAttach) {
        return Vec::new();
    }
    // The archive's tables it needs, and those the dump's filters left out of the archive.
    let tables: BTreeSet<TableName> = o
        .deps
        .iter()
        .filter_map(|d| objects.get(d)?.table.clone())
        .chain(o.outside_tables.iter().cloned())
        .filter(|t| o.table.as_ref() != Some(t) && !made.contains(t))
        .collect();
    tables.into_iter().collect()
}

/// The archive's objects that `o` depends on and the restore leaves out (not among `chosen`), but for the
/// tables a foreign key or an attachment needs, which [`outside_tables`] settles.
///
/// The schema it is in counts too when the restore does not make it: a dump's `-t` keeps no schema, and a
/// partition kept in another schema than its table (GitLab's `gitlab_partitions_dynamic`) needs that
/// schema in the target, which is asked for it first instead of failing at the partition.
fn left_out(
    o: &SchemaObject,
    objects: &HashMap<u32, &SchemaObject>,
    chosen: &HashSet<u32>,
    schemas: &HashSet<&str>,
) -> Vec<Needed> {
    if matches!(o.kind, ObjectKind::FkConstraint | ObjectKind::TableAttach | ObjectKind::IndexAttach) {
        return Vec::new();
    }
    let mut needed: Vec<Needed> = o
        .deps
        .iter()
        .filter(|d| !chosen.contains(d))
        .filter_map(|d| objects.get(d))
        // A partition's table is made on its own and attached apart (`TableAttach`), and an inheriting
        // table's parent is checked for before anything is made.
        .filter(|d| !(o.kind == ObjectKind::Table && d.kind == ObjectKind::Table))
        .map(|d| Needed::of(d))
        // What the dump's own filters left out of the archive (`dump -t`).
        .chain(o.outside.iter().map(|d| Needed::named(&d.kind, d.schema.as_deref(), &d.name)))
        .collect();
    if let Some(schema) = o.schema.as_deref().filter(|s| !s.starts_with("pg_") && !schemas.contains(s)) {
        let its = Needed::named(&ObjectKind::Schema, None, schema);
        if !needed.iter().any(|n| n.probe == its.probe) {
            needed.push(its);
        }
    }
    needed
}

/// `sql` as a script runs it only where the target has every table of `tables`, as the restore decides.
fn only_where_present(sql: &str, tables: &[TableName]) -> String {
    let present: Vec<String> = tables
        .iter()
        .map(|t| format!("pg_catalog.to_regclass({}) IS NOT NULL", quote_literal(&quote_qualified(t))))
        .collect();
    format!(
        "DO $pgsafe$BEGIN IF {} THEN EXECUTE {}; END IF; END$pgsafe$;\n",
        present.join(" AND "),
        quote_literal(sql.trim_end())
    )
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
        // the source's owner creates it, when the restoring role may become it; otherwise the restoring
        // role does, as pg_restore has it (a database's owner restoring what a superuser installed).
        match (&o.owner, &o.kind) {
            (Some(owner), ObjectKind::Extension) if !leave_out.owner => sql.push_str(&format!(
                "SELECT pg_catalog.set_config('role', {owner}, false) FROM pg_catalog.pg_roles \
                 WHERE rolname = {owner} AND pg_catalog.pg_has_role(rolname, 'MEMBER');\n{create}\nRESET ROLE;\n",
                owner = quote_literal(owner)
            )),
            (_, ObjectKind::DefaultAcl) if leave_out.owner => {
                sql.push_str(&acl::default_acl_for_restoring_role(create));
                sql.push('\n');
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

/// One part's step: its COPY (frozen when the loading transaction made the table), and for the large
/// objects the temporary table around it.
fn part_step(t: &PlannedTable, part: PartId, (rows, bytes, _): (u64, u64, ContentDigest), freeze: Freeze) -> PartStep {
    let (before, copy, after, freeze) = match t.kind {
        // A partitioned table takes no `COPY FREEZE`.
        PartKind::Table => {
            (None, copy_in_sql(&t.name, &t.columns, t.format), None, if t.routed { Freeze::No } else { freeze })
        }
        PartKind::LargeObjects => (
            Some(LARGE_OBJECTS_TABLE.to_string()),
            LARGE_OBJECTS_COPY.to_string(),
            Some(LARGE_OBJECTS_MAKE.to_string()),
            Freeze::No,
        ),
    };
    let search_path = t.search_path.clone();
    PartStep {
        part,
        table: t.name.clone(),
        kind: t.kind,
        before,
        copy,
        freeze,
        after,
        search_path,
        rows,
        bytes,
        chunks: None,
    }
}

/// Whether a part of `bytes` that loads as it is is cut into pieces of `aim` ([`RestorePlan::pieces`]):
/// from one and a half times that.
fn cut(bytes: u64, aim: u64) -> bool {
    bytes >= aim + aim / 2
}

/// `COPY table (columns) FROM STDIN` in the part's format.
fn copy_in_sql(table: &TableName, columns: &[ColumnInfo], format: CopyFormat) -> String {
    let cols = column_list(columns);
    let list = if cols.is_empty() { String::new() } else { format!(" ({cols})") };
    format!("COPY {}{list} FROM STDIN {}", quote_qualified(table), format_option(format))
}

/// Groups the selected parts by table. Large objects follow pg_restore: restored unless `-n`/`-t` narrow.
fn select_tables(
    catalog: &Catalog,
    records: &HashMap<PartId, (u64, u64, ContentDigest)>,
    filters: &Filters,
    list: Option<&ListSelection>,
) -> Vec<PlannedTable> {
    // Partitions whose rows are routed again go together, under their topmost partitioned table.
    let mut by_table: BTreeMap<(TableName, bool), Vec<&crate::format::PartInfo>> = BTreeMap::new();
    for p in &catalog.parts {
        let wanted = match p.kind {
            PartKind::Table => filters.selects(&p.table.schema, &p.table.name, true),
            PartKind::LargeObjects => !filters.narrows(),
        };
        if wanted && list.is_none_or(|l| l.parts.contains(&p.id.0)) {
            let table = p.load_via.as_ref().unwrap_or(&p.table);
            by_table.entry((table.clone(), p.kind == PartKind::LargeObjects)).or_default().push(p);
        }
    }
    by_table
        .into_values()
        .map(|parts| {
            let first = parts[0];
            let (mut rows, mut bytes) = (0, 0);
            let mut digest = ContentDigest::default();
            for p in &parts {
                if let Some((r, b, d)) = records.get(&p.id) {
                    rows += r;
                    bytes += b;
                    digest += *d;
                }
            }
            PlannedTable {
                name: first.load_via.as_ref().unwrap_or(&first.table).clone(),
                kind: first.kind,
                parts: parts.iter().map(|p| p.id).collect(),
                columns: first.columns.clone(),
                format: first.format,
                filter: first.filter.clone(),
                search_path: SearchPath::of_part(first.search_path.as_deref(), first.format, first.filter.as_deref()),
                rows,
                bytes,
                digest,
                counted_by_load: false,
                routed: first.load_via.is_some(),
            }
        })
        .collect()
}

/// The sequence values the filters (and a `-L` list) select: a table's own (a serial's, which the
/// archive's schema says belongs to its table) with the table, as `-t` takes them and `-T` leaves them.
fn select_sequences(
    catalog: &Catalog,
    schema: Option<&SchemaCatalog>,
    filters: &Filters,
    list: Option<&ListSelection>,
) -> Vec<SequenceValue> {
    // The table each sequence belongs to, read once: a schema may hold many thousands of objects.
    let owners: HashMap<(&str, &str), &TableName> = match schema {
        Some(schema) if !filters.include_tables.is_empty() || !filters.exclude_tables.is_empty() => schema
            .objects
            .iter()
            .filter(|o| o.kind == ObjectKind::Sequence)
            .filter_map(|o| Some(((o.schema.as_deref()?, o.name.as_str()), o.table.as_ref()?)))
            .collect(),
        _ => HashMap::new(),
    };
    let selected = |s: &SequenceValue| match owners.get(&(s.name.schema.as_str(), s.name.name.as_str())) {
        Some(t) => filters.selects(&t.schema, &t.name, true),
        None => filters.selects(&s.name.schema, &s.name.name, true),
    };
    catalog
        .sequences
        .iter()
        .filter(|s| selected(s))
        .filter(|s| list.is_none_or(|l| l.sequences.contains(&s.name.to_string())))
        .cloned()
        .collect()
}

/// The qualified names of the ordinary tables, for queries that take `text[]`.
pub(crate) fn table_names(tables: &[PlannedTable]) -> Vec<String> {
    tables.iter().filter(|t| t.kind == PartKind::Table).map(|t| quote_qualified(&t.name)).collect()
}

/// Refuses `-n` and `-t` patterns that match nothing the archive holds, before anything is restored, as
/// the dump refuses them: a mistyped name would otherwise restore nothing and succeed.
fn check_patterns(catalog: &Catalog, schema: Option<&SchemaCatalog>, filters: &Filters) -> Result<()> {
    let none = SchemaCatalog::default();
    let schema = schema.unwrap_or(&none);
    // A restore treats every name as visible, as its filters do.
    let mut relations: Vec<(&str, &str, bool)> =
        catalog.parts.iter().map(|p| (p.table.schema.as_str(), p.table.name.as_str(), true)).collect();
    relations.extend(catalog.sequences.iter().map(|s| (s.name.schema.as_str(), s.name.name.as_str(), true)));
    relations.extend(
        schema
            .objects
            .iter()
            .filter(|o| {
                use ObjectKind as K;
                matches!(o.kind, K::Table | K::View | K::MaterializedView | K::Sequence | K::ForeignTable)
            })
            .filter_map(|o| Some((o.schema.as_deref()?, o.name.as_str(), true))),
    );
    let mut schemas: Vec<&str> = relations.iter().map(|(s, _, _)| *s).collect();
    schemas.extend(schema.objects.iter().filter(|o| o.kind == ObjectKind::Schema).map(|o| o.name.as_str()));
    schemas.extend(schema.objects.iter().filter_map(|o| o.schema.as_deref()));
    let unmatched = filters.unmatched(&schemas, &relations);
    if unmatched.is_empty() {
        return Ok(());
    }
    let error = Error::new(
        ErrorKind::InvalidInput,
        format!("nothing the archive holds matches `{}`; nothing was restored", unmatched.join("`, `")),
    );
    let error = match Filters::case_hint(&unmatched) {
        Some(hint) => error.with_hint(hint),
        None => error,
    };
    Err(error.and_hint("`pgsafe restore --list ARCHIVE` lists what it holds"))
}

/// A partitioned table the restore makes without partitions that hold its rows (`-t measurements` takes the
/// partitioned table alone, as pg_restore's does): it comes back empty, and a restore that says so only in
/// its counts is easy to take for a whole one. Says which, and how to name them.
fn partitions_left_out(
    objects: &[SchemaObject],
    chosen: &[&SchemaObject],
    by_id: &HashMap<u32, &SchemaObject>,
) -> Vec<String> {
    // A partition may be a foreign table.
    let made: HashSet<&TableName> = chosen
        .iter()
        .filter(|o| matches!(o.kind, ObjectKind::Table | ObjectKind::ForeignTable))
        .filter_map(|o| o.table.as_ref())
        .collect();
    let mut left: BTreeMap<&TableName, Vec<&TableName>> = BTreeMap::new();
    for a in objects.iter().filter(|o| o.kind == ObjectKind::TableAttach) {
        let Some(partition) = a.table.as_ref().filter(|p| !made.contains(p)) else { continue };
        let parents = a.deps.iter().filter_map(|d| by_id.get(d)?.table.as_ref()).filter(|t| *t != partition);
        for parent in parents.filter(|t| made.contains(t)) {
            left.entry(parent).or_default().push(partition);
        }
    }
    left.into_iter()
        .map(|(parent, mut partitions)| {
            partitions.sort();
            partitions.dedup();
            let names: Vec<String> = partitions.iter().take(5).map(|p| format!("`{p}`")).collect();
            let more = if partitions.len() > 5 { format!(" and {} more", partitions.len() - 5) } else { String::new() };
            format!(
                "`{parent}` is a partitioned table restored without {} of its partitions ({}{more}), whose rows are \
                 theirs: it holds none of them; name them too (`-t '{}*'`) to restore its rows",
                partitions.len(),
                names.join(", "),
                quote_qualified(parent),
            )
        })
        .collect()
}

/// Subscriptions come back disabled and without a connection to their publisher, as pg_dump makes
/// them: replicating into a copy is a decision for the user, not for a restore.
fn subscription_warnings(objects: &[&SchemaObject]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Subscription && o.create.is_some())
        .map(|o| {
            let name = quote_ident(&o.name);
            format!(
                "subscription `{}` was created disabled and without connecting to its publisher; to replicate into this database, check its replication slot on the publisher, then run `ALTER SUBSCRIPTION {name} ENABLE` and `ALTER SUBSCRIPTION {name} REFRESH PUBLICATION`",
                o.name
            )
        })
        .collect()
}

/// The statements that drop `objects` (in creation order) where they exist, in reverse order: what a
/// rollback in place drops of the objects the target has and the archive lacks. A table or view
/// goes with `CASCADE`, so that an object of the archive that came to depend on it since (a view
/// redefined) does not keep it; the archive's own objects are all made again afterwards.
pub(crate) fn drop_statements_cascading(objects: &[&SchemaObject]) -> Vec<String> {
    objects
        .iter()
        .rev()
        .filter_map(|o| drop_statement(o))
        .map(|s| match s.strip_suffix(';') {
            Some(head) if head.starts_with("DROP ") => format!("{head} CASCADE;"),
            _ => s,
        })
        .collect()
}

/// `DROP ... IF EXISTS` for an object that has a statement of its own and is not dropped with its table;
/// for what would keep another object of the archive from being dropped, the `ALTER TABLE` that undoes it
/// (the reverse order runs it first): a foreign key (its referenced table), a column default (a sequence
/// it uses).
fn drop_statement(o: &SchemaObject) -> Option<String> {
    use ObjectKind as K;
    let create = o.create.as_ref()?;
    let routine = match &o.kind {
        K::Default => {
            // `ALTER [FOREIGN] TABLE ONLY t ALTER COLUMN c SET DEFAULT e;`: a sequence the default uses
            // cannot be dropped before it. The column may be gone, or renamed (a rollback in place of a
            // migration that dropped it), and ALTER COLUMN has no IF EXISTS: the drop asks first.
            let (head, _) = create.split_once(" SET DEFAULT ")?;
            let (_, rest) = head.split_once(" TABLE ONLY ")?;
            let (table, column) = rest.split_once(" ALTER COLUMN ")?;
            return Some(format!(
                "DO $pgsafe$BEGIN IF EXISTS (SELECT FROM pg_catalog.pg_attribute \
                 WHERE attrelid = pg_catalog.to_regclass({}) AND pg_catalog.quote_ident(attname) = {} \
                 AND attnum > 0 AND NOT attisdropped) THEN {head} DROP DEFAULT; END IF; END$pgsafe$;",
                crate::sql::quote_literal(table),
                crate::sql::quote_literal(column)
            ));
        }
        K::Type if create.contains("\n    INPUT = ") => {
            // A base type and its input and output functions depend on each other: neither can be dropped
            // alone, and `DROP TYPE ... CASCADE` (what pg_dump's `--clean` writes) would also drop, unsaid,
            // any other object of the target that uses the type (a column of a table this restore does not
            // make). So the drop asks first: anything but the type's own functions still depending on it
            // (or on its array type) stops the restore, named; otherwise the type goes with its functions.
            let name = format!("{}.{}", quote_ident(o.schema.as_deref()?), quote_ident(&o.name));
            return Some(format!(
                "DO $pgsafe$DECLARE t pg_catalog.regtype := pg_catalog.to_regtype({literal}); others text; \
                 BEGIN IF t IS NULL THEN RETURN; END IF; \
                 SELECT pg_catalog.string_agg(pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), ', ') \
                 INTO others FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_type ty ON ty.oid = t \
                 WHERE d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.refobjid IN (ty.oid, ty.typarray) \
                 AND d.deptype = 'n' AND NOT (d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass \
                 AND d.objid IN (ty.typinput, ty.typoutput, ty.typreceive, ty.typsend, ty.typmodin, ty.typmodout, \
                 ty.typanalyze)); \
                 IF others IS NOT NULL THEN RAISE EXCEPTION USING ERRCODE = 'dependent_objects_still_exist', \
                 MESSAGE = pg_catalog.format('cannot drop type %s because other objects depend on it (%s)', t, others); \
                 END IF; DROP TYPE {name} CASCADE; END$pgsafe$;",
                literal = crate::sql::quote_literal(&name)
            ));
        }
        K::UserMapping => {
            // `CREATE USER MAPPING FOR u SERVER s [OPTIONS (...)];`: a server cannot be dropped before it.
            let rest = create.strip_prefix("CREATE USER MAPPING FOR ")?;
            let (user, _) = crate::sql::leading_ident(rest)?;
            let (server, _) = crate::sql::leading_ident(rest[user.len()..].strip_prefix(" SERVER ")?)?;
            return Some(format!("DROP USER MAPPING IF EXISTS FOR {user} SERVER {server};"));
        }
        K::FkConstraint => {
            let table = o.table.as_ref()?;
            // The object's name is `table constraint`.
            let constraint = o.name.strip_prefix(&format!("{} ", table.name))?;
            return Some(format!(
                "ALTER TABLE IF EXISTS {} DROP CONSTRAINT IF EXISTS {};",
                quote_qualified(table),
                quote_ident(constraint)
            ));
        }
        // Named by what their statement says: an operator by its argument types, a family or class by its
        // access method, a cast by its types.
        K::Operator | K::OperatorFamily | K::OperatorClass | K::Cast => return drop_by_signature(o, create),
        // `DROP <kind> IF EXISTS`, the label being the keyword.
        K::Function | K::Procedure | K::Aggregate => true,
        K::Table
        | K::View
        | K::MaterializedView
        | K::Sequence
        | K::ForeignTable
        | K::Schema
        | K::Extension
        | K::Domain
        | K::Collation
        | K::Conversion
        | K::EventTrigger
        | K::Publication
        | K::Server
        | K::ForeignDataWrapper
        | K::Statistics
        | K::TextSearchConfiguration
        | K::TextSearchDictionary
        | K::TextSearchParser
        | K::TextSearchTemplate
        | K::Type
        // Before the handler or the functions it names, which it needs (the reverse order drops it first).
        | K::ProceduralLanguage
        | K::AccessMethod => false,
        // Not dropped: gone with the object they belong to (a table's indexes, constraints, triggers,
        // rules, policies; a publication's tables; a type's shell), or left in place. A kind of a newer
        // pgsafe too: how to drop it is unknown.
        K::Transform
        | K::ShellType
        | K::TableAttach
        | K::CheckConstraint
        | K::SequenceOwnedBy
        | K::LargeObject
        | K::Acl
        | K::ViewDefinition
        | K::Constraint
        | K::Index
        | K::IndexAttach
        | K::Rule
        | K::Trigger
        | K::RowSecurity
        | K::Policy
        | K::PublicationTable
        | K::PublicationTablesInSchema
        | K::Subscription
        | K::DefaultAcl
        | K::MaterializedViewData
        | K::Other(_) => return None,
    };
    let name = match (&o.schema, &o.routine) {
        // With the argument modes: the types alone may name two procedures.
        (_, Some(identity)) if routine => identity.clone(),
        (Some(s), _) if o.kind != K::Schema && !routine => format!("{}.{}", quote_ident(s), quote_ident(&o.name)),
        // An archive from before `routine`: the label carries the argument types, which DROP needs.
        (Some(s), _) => format!("{}.{}", quote_ident(s), routine_signature(&o.name)?),
        (None, _) => quote_ident(&o.name),
    };
    Some(format!("DROP {} IF EXISTS {name};", o.kind))
}

/// `DROP OPERATOR`, `DROP OPERATOR FAMILY`, `DROP OPERATOR CLASS` or `DROP CAST ... IF EXISTS`, with what
/// names the object taken from its `create` (as the schema engine writes it): an operator's argument types
/// (`LEFTARG`, `RIGHTARG`; `NONE` for a prefix operator's left), a family's or class's access method, a
/// cast's types (its label).
fn drop_by_signature(o: &SchemaObject, create: &str) -> Option<String> {
    let qualified = || Some(format!("{}.{}", quote_ident(o.schema.as_deref()?), quote_ident(&o.name)));
    match o.kind {
        ObjectKind::Operator => {
            let arg = |key: &str| {
                create
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(key))
                    .map(|t| t.trim_end_matches(',').trim().to_owned())
            };
            let left = arg("LEFTARG = ").unwrap_or_else(|| "NONE".to_owned());
            let right = arg("RIGHTARG = ").unwrap_or_else(|| "NONE".to_owned());
            let schema = quote_ident(o.schema.as_deref()?);
            Some(format!("DROP OPERATOR IF EXISTS {schema}.{} ({left}, {right});", o.name))
        }
        ObjectKind::OperatorFamily => {
            let named = create.strip_prefix("CREATE OPERATOR FAMILY ")?.split(';').next()?;
            Some(format!("DROP OPERATOR FAMILY IF EXISTS {named};"))
        }
        ObjectKind::OperatorClass => {
            let method = create.split(" USING ").nth(1)?.split_whitespace().next()?;
            Some(format!("DROP OPERATOR CLASS IF EXISTS {} USING {method};", qualified()?))
        }
        ObjectKind::Cast => Some(format!("DROP CAST IF EXISTS {};", o.name.strip_prefix("CAST ")?)),
        _ => None,
    }
}

/// `f(integer, text)` as a DROP target: the name quoted, the argument list as it is.
fn routine_signature(label: &str) -> Option<String> {
    let open = label.find('(')?;
    Some(format!("{}{}", quote_ident(&label[..open]), &label[open..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(kind: PartKind) -> PlannedTable {
        PlannedTable {
            name: TableName { schema: "public".into(), name: "Orders".into() },
            kind,
            parts: vec![PartId(3)],
            columns: vec![ColumnInfo { name: "id".into(), type_name: "integer".into() }],
            format: CopyFormat::Binary,
            filter: None,
            search_path: None,
            rows: 2,
            bytes: 100,
            digest: ContentDigest::default(),
            counted_by_load: false,
            routed: false,
        }
    }

    #[test]
    fn a_part_copies_into_its_table_frozen_only_when_its_transaction_made_it() {
        let t = table(PartKind::Table);
        let step = part_step(&t, PartId(3), (2, 100, ContentDigest::default()), Freeze::No);
        assert_eq!(step.copy_sql(), "COPY public.\"Orders\" (id) FROM STDIN (FORMAT binary)");
        assert!(step.before.is_none() && step.after.is_none());
        for freeze in [Freeze::MadeInTransaction, Freeze::AfterTruncate] {
            let frozen = PartStep { freeze, ..step.clone() };
            assert_eq!(frozen.copy_sql(), "COPY public.\"Orders\" (id) FROM STDIN (FORMAT binary, FREEZE)");
            assert_eq!(frozen.copy, step.copy, "the COPY without FREEZE stays at hand");
        }
        let lo = part_step(
            &table(PartKind::LargeObjects),
            PartId(4),
            (1, 10, ContentDigest::default()),
            Freeze::MadeInTransaction,
        );
        assert_eq!(lo.freeze, Freeze::No, "large objects load into a temporary table");
        assert_eq!(lo.before.as_deref(), Some(LARGE_OBJECTS_TABLE));
        assert_eq!(lo.copy, LARGE_OBJECTS_COPY);
        assert_eq!(lo.after.as_deref(), Some(LARGE_OBJECTS_MAKE));
    }

    fn object(kind: ObjectKind, name: &str) -> SchemaObject {
        SchemaObject { id: 1, ..SchemaObject::sample(kind, name, "CREATE ...;") }
    }

    #[test]
    fn clean_drops_by_kind_and_leaves_a_kind_of_a_newer_pgsafe_alone() {
        let drop = |kind, name| drop_statement(&object(kind, name));
        assert_eq!(
            drop(ObjectKind::MaterializedView, "Mv").as_deref(),
            Some("DROP MATERIALIZED VIEW IF EXISTS public.\"Mv\";")
        );
        assert_eq!(drop(ObjectKind::Aggregate, "cnt(*)").as_deref(), Some("DROP AGGREGATE IF EXISTS public.cnt(*);"));
        assert_eq!(drop(ObjectKind::Index, "t_i"), None, "dropped with its table");
        let mapping = |create: &str| {
            drop_statement(&SchemaObject::sample(ObjectKind::UserMapping, "USER MAPPING u SERVER s", create))
        };
        assert_eq!(
            mapping("CREATE USER MAPPING FOR \"U s\" SERVER \"far one\" OPTIONS (\"user\" 'x');").as_deref(),
            Some("DROP USER MAPPING IF EXISTS FOR \"U s\" SERVER \"far one\";")
        );
        assert_eq!(
            mapping("CREATE USER MAPPING FOR PUBLIC SERVER far;").as_deref(),
            Some("DROP USER MAPPING IF EXISTS FOR PUBLIC SERVER far;")
        );
        assert_eq!(drop(ObjectKind::Other("WIDGET".into()), "w"), None);
        let global = |kind, name| drop_statement(&SchemaObject { schema: None, ..object(kind, name) });
        assert_eq!(
            global(ObjectKind::ProceduralLanguage, "pl").as_deref(),
            Some("DROP PROCEDURAL LANGUAGE IF EXISTS pl;")
        );
        assert_eq!(global(ObjectKind::AccessMethod, "h").as_deref(), Some("DROP ACCESS METHOD IF EXISTS h;"));
    }

    fn public(name: &str) -> TableName {
        TableName { schema: "public".into(), name: name.into() }
    }

    /// Object `id` of table `t` that depends on the objects `deps`.
    fn on(id: u32, kind: ObjectKind, name: &str, t: &str, deps: &[u32]) -> SchemaObject {
        SchemaObject { id, table: Some(public(t)), deps: deps.to_vec(), ..SchemaObject::sample(kind, name, "...;") }
    }

    #[test]
    fn a_foreign_key_needs_the_table_it_references_when_the_restore_does_not_make_it() {
        let objects = [
            on(0, ObjectKind::Table, "parent", "parent", &[]),
            on(1, ObjectKind::Table, "child", "child", &[]),
            on(2, ObjectKind::Constraint, "parent parent_pkey", "parent", &[0]),
            on(3, ObjectKind::FkConstraint, "child child_parent_fkey", "child", &[1, 0, 2]),
            on(4, ObjectKind::FkConstraint, "child child_next_fkey", "child", &[1]),
            on(5, ObjectKind::Index, "child_parent_idx", "child", &[1, 0]),
        ];
        let by_id: HashMap<u32, &SchemaObject> = objects.iter().map(|o| (o.id, o)).collect();
        let (child, parent) = (public("child"), public("parent"));
        let needs =
            |id: usize, made: &[&TableName]| outside_tables(&objects[id], &by_id, &made.iter().copied().collect());
        assert_eq!(needs(3, &[&child]), std::slice::from_ref(&parent));
        assert!(needs(3, &[&child, &parent]).is_empty(), "both tables restored");
        assert!(needs(4, &[&child]).is_empty(), "a key to its own table");
        assert!(needs(5, &[&child]).is_empty(), "only what ties two tables");
    }

    #[test]
    fn a_partitions_attachments_need_its_partitioned_table_when_the_restore_does_not_make_it() {
        let objects = [
            on(0, ObjectKind::Table, "m", "m", &[]),
            on(1, ObjectKind::Table, "m1", "m1", &[0]),
            on(2, ObjectKind::TableAttach, "m1", "m1", &[0, 1]),
            on(3, ObjectKind::Index, "m_v", "m", &[0]),
            on(4, ObjectKind::Index, "m1_v_idx", "m1", &[1, 3]),
            on(5, ObjectKind::IndexAttach, "m1_v_idx", "m1", &[1, 3, 4]),
        ];
        let by_id: HashMap<u32, &SchemaObject> = objects.iter().map(|o| (o.id, o)).collect();
        let (m, m1) = (public("m"), public("m1"));
        let needs =
            |id: usize, made: &[&TableName]| outside_tables(&objects[id], &by_id, &made.iter().copied().collect());
        for attach in [2, 5] {
            assert_eq!(needs(attach, &[&m1]), std::slice::from_ref(&m), "{attach}");
            assert!(needs(attach, &[&m, &m1]).is_empty(), "{attach}");
        }
        assert!(needs(1, &[&m1]).is_empty(), "the partition itself is made as a table");
        assert!(needs(4, &[&m1]).is_empty(), "and its index as an index");
    }

    #[test]
    fn no_publications_leaves_out_what_a_newer_pgsafe_labels_as_part_of_a_publication() {
        let leave_out = LeaveOut { publications: true, ..LeaveOut::default() };
        assert!(leave_out.kind(&ObjectKind::PublicationTablesInSchema));
        assert!(leave_out.kind(&ObjectKind::Other("PUBLICATION SEQUENCE".into())));
        assert!(!leave_out.kind(&ObjectKind::Other("WIDGET".into())));
        assert!(!leave_out.kind(&ObjectKind::Subscription));
        assert!(!LeaveOut::default().kind(&ObjectKind::Publication));
    }
}
