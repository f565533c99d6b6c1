//! The pass over a file's statements: the transaction state (`BEGIN`/`COMMIT` nesting), whether
//! `lock_timeout` is set, the tables created in the file, and each statement's hazards as [`Hit`]s.

use std::collections::{HashMap, HashSet};

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableCmd, AlterTableType, ColumnDef, ConstrType, Constraint, DropBehavior, ObjectType, RangeVar,
    ReindexObjectType, RoleSpecType, TransactionStmtKind, VariableSetKind, a_const,
};

use super::facts::{Facts, TableFacts};
use super::rules::{Level, Rule, rule};
use super::types::{self, ColumnType, TypeChange};
use super::{LintOptions, ParsedFile};

/// A table or index as a statement names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Deserialize)]
pub struct RelName {
    /// `None` when unqualified (found through `search_path`).
    pub schema: Option<String>,
    pub name: String,
}

impl RelName {
    pub(crate) fn of(rv: &RangeVar) -> RelName {
        let schema = (!rv.schemaname.is_empty()).then(|| rv.schemaname.clone());
        RelName { schema, name: rv.relname.clone() }
    }

    /// The name from a `DROP` statement's list of name parts.
    fn of_parts(parts: &[String]) -> Option<RelName> {
        match parts {
            [name] => Some(RelName { schema: None, name: name.clone() }),
            [.., schema, name] => Some(RelName { schema: Some(schema.clone()), name: name.clone() }),
            [] => None,
        }
    }

    /// The name a parse tree spells as a list of `String` nodes (a type's, a domain's).
    fn of_names(names: &[pg_query::protobuf::Node]) -> Option<RelName> {
        let parts: Vec<String> = names.iter().filter_map(string).map(str::to_owned).collect();
        RelName::of_parts(&parts)
    }

    /// How tables are matched: `public` is the same as unqualified.
    pub fn key(&self) -> String {
        match &self.schema {
            Some(s) if s != "public" => format!("{s}.{}", self.name),
            _ => self.name.clone(),
        }
    }

    /// For messages.
    pub fn display(&self) -> String {
        self.key()
    }

    /// As SQL, quoted where it needs it.
    pub fn quoted(&self) -> String {
        let name = crate::sql::quote_ident(&self.name);
        match &self.schema {
            Some(s) => format!("{}.{name}", crate::sql::quote_ident(s)),
            None => name,
        }
    }
}

/// One rule applying to one statement.
#[derive(Debug, Clone)]
pub struct Hit {
    pub rule: &'static Rule,
    /// Byte offset in the file where it points.
    pub offset: usize,
    /// The statement's index in its file (`usize::MAX` for a comment's own findings).
    pub statement: usize,
    pub level: Level,
    pub message: String,
    /// The table it is about, whose facts may change its level.
    pub table: Option<RelName>,
}

/// What earlier files of the run created: column types (so a later `ALTER COLUMN TYPE` knows what it
/// changes from) and partitioned tables.
#[derive(Debug, Default)]
pub struct Known {
    tables: HashMap<String, KnownTable>,
    /// (table key, column) of the columns the run added to tables it did not make, with the file that
    /// added each (its position in the run).
    added_columns: HashMap<(String, String), usize>,
    /// The position in the run of the file being linted.
    file: usize,
    /// (table key, column) whose NOT NULL the run made (true) or dropped (false): what the database's
    /// facts say of them no longer holds.
    not_null: HashMap<(String, String), bool>,
    /// The labels of enum types created (or given values) by the run, by [`RelName::key`].
    enums: HashMap<String, Vec<String>>,
    /// Foreign keys the run made.
    foreign_keys: Vec<KnownForeignKey>,
    /// (table key, constraint name) of constraints the run dropped: a foreign key of the database's
    /// facts among them no longer ties its tables.
    dropped_constraints: HashSet<(String, String)>,
    /// Tables the run gave a valid `CHECK` constraint: one attached as a partition is taken to have its
    /// bound's, which spares the attach its scan.
    checked: HashSet<String>,
    /// (table key, constraint name) of `CHECK` constraints the run added `NOT VALID`, until validated.
    unvalidated_checks: HashSet<(String, String)>,
    /// Tables of the database the run renamed or moved to another schema, by their new name's key: their
    /// names in the database's facts.
    renamed_tables: HashMap<String, RelName>,
    /// Columns of the database the run renamed: (table key, new name) -> the name in the facts.
    renamed_columns: HashMap<(String, String), String>,
    /// Functions the run made, by name without schema: whether volatile (`CREATE FUNCTION`'s default).
    functions: HashMap<String, bool>,
    /// (table key, column) of the database's columns the run dropped, until added again.
    dropped_columns: HashSet<(String, String)>,
    /// The columns of the indexes the run made, by index name (an expression left out).
    index_columns: HashMap<String, Vec<String>>,
    /// The indexes the run made, as (their table's key, their columns).
    indexed: Vec<(String, Vec<String>)>,
    /// (table key, column) of the database's columns whose type the run changed, with the new type: what
    /// a later change of it changes from.
    retyped: HashMap<(String, String), ColumnType>,
    /// Index names whose index in the database's facts the run took away (a `DROP INDEX`, a `DROP TABLE`
    /// of its table, a rename to another name), by [`RelName::key`], until the run makes one of that
    /// name again: a `CREATE INDEX` of it does not fail.
    dropped_indexes: HashSet<String>,
    /// Indexes of the database the run renamed, by their new name's key: their names in the facts.
    renamed_indexes: HashMap<String, RelName>,
    /// Names the run gave indexes without a `CREATE INDEX`: the tables it made (whose keys, unique
    /// columns and partitions' copies of their parent's indexes are named after them), those it gave a key,
    /// unique or exclusion constraint or attached a partition to, and such constraints' own names. An
    /// index named so (`t_pkey`, `t_email_key`, a constraint's name) may be the run's.
    index_name_sources: HashSet<String>,
    /// (table key, constraint) of the validated `CHECK (col IS NOT NULL)` constraints the run added, and
    /// the columns they prove NOT NULL: a later file's `SET NOT NULL` uses them as the same file's does
    /// (each file is committed before the next runs), until a statement drops them.
    not_null_checks: HashMap<(String, String), Vec<String>>,
    /// (table key, constraint) of such checks added `NOT VALID`, and their columns.
    pending_checks: HashMap<(String, String), Vec<String>>,
    /// Domains the run made or gave constraints, by [`RelName::key`]: whether they have a constraint
    /// (`CHECK` or `NOT NULL`, their own or their base domain's).
    domains: HashMap<String, bool>,
}

#[derive(Debug, Default)]
struct KnownTable {
    columns: HashMap<String, ColumnType>,
    /// The column a sequence fills (a `serial`, an identity) and its place among the columns: the one an
    /// INSERT should leave to its default.
    counted: Option<(String, usize)>,
    partitioned: bool,
    /// The primary key's columns: what a foreign key naming no columns references.
    primary: Vec<String>,
}

/// A foreign key made by the run: `table (columns) REFERENCES references (ref_columns)`; `ref_columns`
/// is empty when the statement names none (the referenced table's primary key).
#[derive(Debug)]
struct KnownForeignKey {
    name: String,
    table: RelName,
    columns: Vec<String>,
    references: RelName,
    ref_columns: Vec<String>,
}

/// Lints the statements of `file`, adding what it creates to `known`.
pub fn run(
    file: &ParsedFile,
    options: &LintOptions,
    pg_version: u32,
    facts: Option<&Facts>,
    known: &mut Known,
) -> Vec<Hit> {
    known.file += 1;
    let mut pass = Pass {
        options,
        pg_version,
        facts,
        known,
        hits: Vec::new(),
        created: HashSet::new(),
        created_indexes: HashSet::new(),
        open: None,
        lock_timeout: false,
        lock_timeout_at_begin: false,
        lock_timeout_local: false,
        lock_timeout_reported: false,
        type_renames: HashMap::new(),
        dropped_views: HashMap::new(),
        renamed_away: HashMap::new(),
        withdrawn: HashSet::new(),
        explicit_ids: Vec::new(),
        unindexed_keys: Vec::new(),
        not_valid_here: HashMap::new(),
        wrapped: !options.assume_lock_timeout && crate::sql::runs_in_tool_transaction(&file.text),
        migrate_transaction: options.assume_lock_timeout && migrate_runs_in_one_transaction(file, pg_version),
        renamed_types: HashSet::new(),
        in_do_block: false,
        search_path: Vec::new(),
        held_exclusive: Vec::new(),
        new_enum_values: Vec::new(),
        statement: 0,
        at: 0,
        base: Some(0),
    };
    for (i, statement) in file.statements.iter().enumerate() {
        let Some(node) = &statement.node else { continue };
        pass.statement = i;
        pass.at = statement.start;
        pass.base = Some(0);
        pass.statement_hits(node);
        // A `DO` block's statements run as the block runs: in its transaction (their own `COMMIT`s are not
        // followed), each finding at its place in the block and belonging to the `DO` statement (its
        // suppressions apply; no fix edits inside a block).
        pass.in_do_block = true;
        for inner in statement.inner.iter().filter(|s| !matches!(s.node, NodeEnum::TransactionStmt(_))) {
            pass.at = inner.start;
            pass.base = inner.base;
            pass.statement_hits(&inner.node);
        }
        pass.in_do_block = false;
        // Outside a transaction block, the `DO` statement's transaction ended with it.
        if !statement.inner.is_empty() && !pass.in_transaction() {
            pass.transaction_ended();
        }
    }
    if let Some((statement, offset)) = pass.open {
        pass.statement = statement;
        pass.at = offset;
        pass.hit(
            "transaction-left-open",
            "this transaction is never committed: no `COMMIT` by the end of the file".into(),
            None,
        );
    }
    let withdrawn = std::mem::take(&mut pass.withdrawn);
    pass.hits.into_iter().enumerate().filter(|(i, _)| !withdrawn.contains(i)).map(|(_, h)| h).collect()
}

struct Pass<'a> {
    options: &'a LintOptions,
    pg_version: u32,
    facts: Option<&'a Facts>,
    known: &'a mut Known,
    hits: Vec<Hit>,
    /// Tables (and views, types) created in this file: no rows, no readers yet.
    created: HashSet<String>,
    created_indexes: HashSet<String>,
    /// The open transaction: its `BEGIN`'s statement and offset.
    open: Option<(usize, usize)>,
    lock_timeout: bool,
    /// `lock_timeout` when the open transaction began: its `ROLLBACK` undoes a `SET` made in it.
    lock_timeout_at_begin: bool,
    /// Set with `SET LOCAL`: until the transaction ends.
    lock_timeout_local: bool,
    lock_timeout_reported: bool,
    /// Types renamed in this file, by their old name's key, with their `rename-type` hit: a later rename
    /// of another type to that name swaps them (Prisma's enum change), which breaks no name.
    type_renames: HashMap<String, usize>,
    /// Views dropped in this file, by key, with their `drop-view` hit: made again later in the file
    /// (the way to change a view's columns), no query on them fails once the file has run.
    dropped_views: HashMap<String, usize>,
    /// Columns renamed in this file, by (table key, old name), with their `rename-column` hit: a column
    /// added later under the old name (the way to change a column's type through a copy: rename it
    /// aside, add the new one, copy, drop the old) keeps code that uses the name working.
    renamed_away: HashMap<(String, String), usize>,
    /// Hits a later statement of the file took back (a type's rename swapped back, a view made again).
    withdrawn: HashSet<usize>,
    /// Tables (by name, lower case, without schema) an INSERT of this file gave ids of its own, with its
    /// `explicit-id-without-setval` hit: a later `setval` or `RESTART` of their sequence takes it back.
    explicit_ids: Vec<(String, usize)>,
    /// Foreign keys of tables this file creates whose columns lead no index yet: (the table's key, the
    /// columns, the hit), withdrawn when a later `CREATE INDEX` of the file leads with them.
    unindexed_keys: Vec<(String, Vec<String>, usize)>,
    /// (table key, constraint) of the constraints of existing tables added `NOT VALID` in the open
    /// transaction (under `migrate`, the file's), with the rule a validation in it falls under.
    not_valid_here: HashMap<(String, String), &'static str>,
    /// The file's tool runs it in a transaction of its own (goose, sql-migrate, dbmate, unless the file
    /// says not to): every statement is in a transaction.
    wrapped: bool,
    /// Names types were renamed to in this file: dropping one drops the type just moved aside.
    renamed_types: HashSet<String>,
    /// Under `migrate`, the file runs in one transaction of its own.
    migrate_transaction: bool,
    /// The statement is one of a `DO` block's.
    in_do_block: bool,
    /// The schemas a `SET search_path` of the file names, in order (`$user` left out); empty: the default,
    /// where an unqualified name is `public`'s.
    search_path: Vec<String>,
    /// Existing tables an earlier statement of the open transaction locked ACCESS EXCLUSIVE: held until it
    /// ends.
    held_exclusive: Vec<RelName>,
    /// Values added to enum types in the open transaction, with their type: the server refuses to use one
    /// before the transaction commits.
    new_enum_values: Vec<(RelName, String)>,
    statement: usize,
    at: usize,
    /// What the statement's node locations count from in the file: 0, or where a `DO` block's statement
    /// starts; `None` when such a statement's place is unknown (its findings are then at `at`).
    base: Option<usize>,
}

/// Whether `migrate` runs `file` in one transaction: unless a statement of it cannot run in one, or it
/// keeps transactions of its own, when it runs as written (each of its blocks a transaction, every other
/// statement committed on its own).
pub(crate) fn migrate_runs_in_one_transaction(file: &ParsedFile, pg_version: u32) -> bool {
    let text = file.text.as_str();
    !file.statements.iter().any(|st| {
        text.get(st.start..st.end)
            .is_some_and(|sql| crate::dryrun::outside_transaction(sql, pg_version.saturating_mul(10_000)))
    }) && !crate::dryrun::keeps_own_transactions(&file.statements, |st| text.get(st.start..st.end).unwrap_or_default())
}

/// Whether a column is declared `NOT NULL` or `PRIMARY KEY`.
fn declares_not_null(col: &ColumnDef) -> bool {
    col.is_not_null
        || col
            .constraints
            .iter()
            .filter_map(constraint)
            .any(|k| matches!(k.contype(), ConstrType::ConstrNotnull | ConstrType::ConstrPrimary))
}

/// The text of a `String` node.
fn string(node: &pg_query::protobuf::Node) -> Option<&str> {
    match &node.node {
        Some(NodeEnum::String(s)) => Some(&s.sval),
        _ => None,
    }
}

/// The name parts of a `DROP` object (a list of strings, or a type name).
fn name_parts(node: &pg_query::protobuf::Node) -> Vec<String> {
    match &node.node {
        Some(NodeEnum::List(l)) => l.items.iter().filter_map(string).map(str::to_owned).collect(),
        Some(NodeEnum::TypeName(t)) => t.names.iter().filter_map(string).map(str::to_owned).collect(),
        Some(NodeEnum::String(s)) => vec![s.sval.clone()],
        _ => Vec::new(),
    }
}

impl Pass<'_> {
    /// Where a node's `location` is in the file, or `fallback` when it has none or its place is unknown.
    fn offset(&self, location: i32, fallback: usize) -> usize {
        match (usize::try_from(location), self.base) {
            (Ok(location), Some(base)) => base + location,
            _ => fallback,
        }
    }
}

/// Functions whose value differs per row, so that a default calling them fills every row one by one.
const VOLATILE: &[&str] = &[
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "txid_current",
    "setseed",
];

/// Built-in functions, stable or immutable, that defaults call: the same value for every row of an
/// `ADD COLUMN`. Without `-d`, a function neither here, nor in [`VOLATILE`], nor made by the run is unknown.
const NOT_VOLATILE: &[&str] = &[
    "now",
    "statement_timestamp",
    "transaction_timestamp",
    "current_setting",
    "current_database",
    "current_schema",
    "lower",
    "upper",
    "initcap",
    "length",
    "concat",
    "concat_ws",
    "format",
    "replace",
    "substr",
    "lpad",
    "rpad",
    "md5",
    "sha256",
    "encode",
    "decode",
    "to_char",
    "to_date",
    "to_timestamp",
    "to_number",
    "date_trunc",
    "date_part",
    "make_date",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "timezone",
    "age",
    "abs",
    "round",
    "trunc",
    "floor",
    "ceil",
    "array_fill",
    "array_to_string",
    "string_to_array",
    "to_json",
    "to_jsonb",
    "json_build_object",
    "jsonb_build_object",
    "json_build_array",
    "jsonb_build_array",
    "uuid_nil",
    "int4range",
    "int8range",
    "numrange",
    "tsrange",
    "tstzrange",
    "daterange",
];

/// Locks that block neither reads nor writes, by ALTER TABLE subcommand (SHARE UPDATE EXCLUSIVE).
fn weak_alter(subtype: AlterTableType) -> bool {
    use AlterTableType::*;
    matches!(
        subtype,
        AtSetStatistics
            | AtValidateConstraint
            | AtSetOptions
            | AtResetOptions
            | AtClusterOn
            | AtDropCluster
            | AtAttachPartition
            | AtSetRelOptions
            | AtResetRelOptions
    )
}

/// `` `t` is `` or `` `t` and `r` are ``: the tables a foreign key of `table` referencing `referenced` locks
/// (one, when it references its own table).
fn locked_tables(table: &RelName, referenced: Option<&RelName>) -> String {
    match referenced.filter(|r| r.key() != table.key()) {
        Some(r) => format!("`{}` and `{}` are", table.display(), r.display()),
        None => format!("`{}` is", table.display()),
    }
}

/// The lock a subcommand of `ALTER TABLE` that is not [`weak_alter`] takes on its table: SHARE ROW
/// EXCLUSIVE to enable or disable triggers or add a foreign key (measured on 15), else ACCESS EXCLUSIVE.
fn alter_lock(cmd: &AlterTableCmd) -> &'static str {
    use AlterTableType::*;
    let foreign_key = cmd.subtype() == AtAddConstraint
        && matches!(cmd.def.as_deref().and_then(|d| d.node.as_ref()),
            Some(NodeEnum::Constraint(k)) if k.contype() == ConstrType::ConstrForeign);
    match cmd.subtype() {
        AtEnableTrig | AtEnableAlwaysTrig | AtEnableReplicaTrig | AtEnableTrigAll | AtEnableTrigUser
        | AtDisableTrig | AtDisableTrigAll | AtDisableTrigUser => "SHARE ROW EXCLUSIVE",
        _ if foreign_key => "SHARE ROW EXCLUSIVE",
        _ => "ACCESS EXCLUSIVE",
    }
}

impl<'a> Pass<'a> {
    fn hit(&mut self, id: &str, message: String, table: Option<&RelName>) {
        self.hit_at(id, message, table, self.at);
    }

    fn hit_at(&mut self, id: &str, message: String, table: Option<&RelName>, offset: usize) {
        let rule = rule(id).expect("the pass names declared rules");
        self.hits.push(Hit {
            rule,
            offset,
            statement: self.statement,
            level: rule.level,
            message,
            table: table.cloned(),
        });
    }

    fn hit_level(&mut self, id: &str, level: Level, message: String, table: Option<&RelName>) {
        self.hit(id, message, table);
        if let Some(last) = self.hits.last_mut() {
            last.level = level;
        }
    }

    /// Made by this file; or by an earlier file of the run when the database's facts say the database
    /// lacks it: the files are applied together (`migrate` lints its pending ones), so no session uses it
    /// yet.
    fn is_new(&self, rel: &RelName) -> bool {
        let key = self.key(rel);
        self.created.contains(&key)
            || (self.known.tables.contains_key(&key)
                && self.facts.is_some_and(|f| f.knows(rel) && f.table(rel).is_none()))
    }

    /// The key of the table an unqualified `rel` names under the file's `search_path`: the first schema of
    /// it where the run made a table of that name; else `rel`'s own (the database resolves it).
    fn key(&self, rel: &RelName) -> String {
        if rel.schema.is_none() {
            for schema in &self.search_path {
                let key = RelName { schema: Some(schema.clone()), name: rel.name.clone() }.key();
                if self.created.contains(&key) || self.known.tables.contains_key(&key) {
                    return key;
                }
            }
        }
        rel.key()
    }

    /// The table a statement that makes `rel` makes: an unqualified one in the first schema of the file's
    /// `search_path`.
    fn made(&self, rel: RelName) -> RelName {
        match (&rel.schema, self.search_path.first()) {
            (None, Some(schema)) => RelName { schema: Some(schema.clone()), name: rel.name },
            _ => rel,
        }
    }

    fn partitioned(&self, rel: &RelName) -> bool {
        self.known.tables.get(&self.key(rel)).is_some_and(|t| t.partitioned)
            || self.table_facts(rel).is_some_and(|t| t.partitioned)
    }

    /// The database's facts of table `rel`, as the run names it (after its renames: a table renamed away
    /// is no longer there under its old name).
    fn table_facts(&self, rel: &RelName) -> Option<&'a TableFacts> {
        let key = rel.key();
        if let Some(was) = self.known.renamed_tables.get(&key) {
            return self.facts.and_then(|f| f.table(was));
        }
        if self.known.renamed_tables.values().any(|was| was.key() == key) {
            return None;
        }
        self.facts.and_then(|f| f.table(rel))
    }

    /// A `DELETE` from `rel`: the foreign keys each row it removes is checked against (to `rel`, and to the
    /// tables its deletes cascade to) whose columns lead no index of their table, which each check then
    /// scans; a table small by its facts (`--small-table-rows`) is left out, a scan of it costs little.
    fn delete_checks(&mut self, rel: &RelName) {
        let Some(keys) = self.facts.and_then(|f| f.delete_checks.get(&rel.key())) else { return };
        let small = self.options.small_table_rows;
        let cascades: HashSet<String> =
            keys.iter().filter(|k| k.on_delete == "c").map(|k| k.table.key()).filter(|t| *t != rel.key()).collect();
        let scanned: Vec<String> = keys
            .iter()
            .filter(|k| !k.indexed && !k.columns.is_empty())
            .filter(|k| !self.known.dropped_constraints.contains(&(k.table.key(), k.name.clone())))
            .filter(|k| {
                !self.known.indexed.iter().any(|(t, c)| *t == k.table.key() && super::facts::index_leads(c, &k.columns))
            })
            .filter(|k| k.rows.unwrap_or(k.bytes / super::MIN_ROW_BYTES) >= small)
            .map(|k| {
                let rows = match k.rows {
                    Some(rows) => format!("about {rows} rows"),
                    None => format!("never analyzed, {}", super::facts::size(k.bytes)),
                };
                format!("`{}` ({}; {rows})", k.table.display(), k.columns.join(", "))
            })
            .collect();
        if scanned.is_empty() {
            return;
        }
        let reach = match cascades.len() {
            0 => String::new(),
            n => format!(", cascading to {n} other table{}", if n == 1 { "" } else { "s" }),
        };
        self.hit(
            "delete-unindexed-foreign-key",
            format!(
                "each row `DELETE` removes from `{}` is checked against {} foreign key{}{reach}; no index leads the \
                 columns of {}, so each check scans the table: {}",
                rel.display(),
                keys.len(),
                if keys.len() == 1 { "" } else { "s" },
                if scanned.len() == 1 { "this one".to_owned() } else { format!("these {}", scanned.len()) },
                scanned.join(", ")
            ),
            None,
        );
    }

    /// Whether the run took column `column` of `rel` away from the database's: dropped, or renamed to
    /// another name.
    fn column_taken_away(&self, rel: &RelName, column: &str) -> bool {
        let key = (rel.key(), column.to_owned());
        if self.known.renamed_columns.contains_key(&key) {
            return false;
        }
        self.known.dropped_columns.contains(&key)
            || self.known.renamed_columns.iter().any(|((t, _), was)| *t == key.0 && was == column)
    }

    /// Follows a rename of a table the run made, or of one of its columns, through what the run knows of
    /// it (its columns' types, its key): a later `ALTER COLUMN ... TYPE` under the new name is judged by the
    /// type the column has, as it is under the old one.
    fn rename_known(&mut self, rel: &RelName, kind: ObjectType, column: &str, new_name: &str) {
        let key = self.key(rel);
        match kind {
            ObjectType::ObjectTable => {
                let Some(table) = self.known.tables.remove(&key) else { return };
                let schema = rel.schema.clone().or_else(|| {
                    self.search_path
                        .iter()
                        .find(|s| RelName { schema: Some((*s).clone()), name: rel.name.clone() }.key() == key)
                        .cloned()
                });
                self.known.tables.insert(RelName { schema, name: new_name.to_owned() }.key(), table);
            }
            ObjectType::ObjectColumn => {
                let Some(table) = self.known.tables.get_mut(&key) else { return };
                let Some(ty) = table.columns.remove(column) else { return };
                table.columns.insert(new_name.to_owned(), ty);
                if let Some((counted, _)) = table.counted.as_mut().filter(|(c, _)| c == column) {
                    *counted = new_name.to_owned();
                }
                for key_column in table.primary.iter_mut().filter(|c| *c == column) {
                    *key_column = new_name.to_owned();
                }
            }
            _ => {}
        }
    }

    /// The table `rel`, as the run names it, by its name in the database's facts.
    fn db_table(&self, rel: &RelName) -> RelName {
        self.known.renamed_tables.get(&rel.key()).cloned().unwrap_or_else(|| rel.clone())
    }

    /// The column `column` of `rel`, as the run names it, by its name in the database's facts.
    fn db_column<'c>(&'c self, rel: &RelName, column: &'c str) -> &'c str {
        self.known.renamed_columns.get(&(rel.key(), column.to_owned())).map_or(column, String::as_str)
    }

    fn column_type(&self, rel: &RelName, column: &str) -> Option<ColumnType> {
        if let Some(t) = self.known.tables.get(&self.key(rel)).and_then(|t| t.columns.get(column)) {
            return Some(t.clone());
        }
        if let Some(t) = self.known.retyped.get(&(self.key(rel), column.to_owned())) {
            return Some(t.clone());
        }
        self.table_facts(rel).and_then(|t| t.columns.get(self.db_column(rel, column))).cloned()
    }

    /// Whether `rel.column` holds only what the run wrote: this file added it, or an earlier file did and
    /// the database (with facts) lacks it, so that file has not run yet. A column an earlier file added
    /// to a database that has it, or without facts, may hold years of values (a history linted whole).
    fn run_owns_column(&self, rel: &RelName, column: &str) -> bool {
        self.known
            .added_columns
            .get(&(rel.key(), column.to_owned()))
            .is_some_and(|&file| file == self.known.file || self.has_column(rel, column) == Some(false))
    }

    /// With facts, whether the database has the column `column` of `rel` (as the run names them);
    /// `None` without facts, or when they do not say.
    fn has_column(&self, rel: &RelName, column: &str) -> Option<bool> {
        self.facts?;
        if self.known.tables.contains_key(&self.key(rel)) {
            return None;
        }
        if self.column_taken_away(rel, column) {
            return Some(false);
        }
        match self.table_facts(rel) {
            None if self.facts.is_some_and(|f| f.knows(&self.db_table(rel))) => Some(false),
            None => None,
            Some(t) if t.columns.is_empty() => None,
            Some(t) => Some(t.columns.contains_key(self.db_column(rel, column))),
        }
    }

    /// With facts, whether the database has table `rel` (as the run names it) or the run made it; `None`
    /// without facts.
    fn has_table(&self, rel: &RelName) -> Option<bool> {
        let facts = self.facts?;
        if self.known.tables.contains_key(&self.key(rel)) || self.table_facts(rel).is_some() {
            return Some(true);
        }
        facts.knows(&self.db_table(rel)).then_some(false)
    }

    /// With facts: a `DROP INDEX IF EXISTS` (`missing_ok`) of `indexes`, none of which exists.
    fn drops_nothing(&self, missing_ok: bool, indexes: &[RelName]) -> bool {
        missing_ok && indexes.iter().all(|n| self.lacks_index(n))
    }

    /// Where `node` makes indexes without naming them in a `CREATE INDEX` ([`Known::index_name_sources`]).
    fn note_implicit_indexes(&mut self, node: &NodeEnum) {
        let (table, always) = match node {
            NodeEnum::CreateStmt(c) => (c.relation.as_ref(), true),
            NodeEnum::AlterTableStmt(a) if a.objtype() == ObjectType::ObjectTable => (a.relation.as_ref(), false),
            _ => return,
        };
        let Some(table) = table else { return };
        let mut makes = always;
        // The walk of the parse tree does not reach an `ALTER TABLE`'s subcommands' definitions.
        let mut nodes: Vec<NodeEnum> = node
            .nodes()
            .into_iter()
            .filter(|(n, ..)| matches!(n, pg_query::NodeRef::Constraint(_) | pg_query::NodeRef::PartitionCmd(_)))
            .map(|(n, ..)| n.to_enum())
            .collect();
        if let NodeEnum::AlterTableStmt(a) = node {
            for cmd in &a.cmds {
                if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node
                    && let Some(def) = cmd.def.as_deref().and_then(|d| d.node.as_ref())
                {
                    nodes.push(def.clone());
                }
            }
        }
        for n in &nodes {
            match n {
                NodeEnum::Constraint(k)
                    if matches!(
                        k.contype(),
                        ConstrType::ConstrPrimary | ConstrType::ConstrUnique | ConstrType::ConstrExclusion
                    ) =>
                {
                    makes = true;
                    if !k.conname.is_empty() {
                        self.known.index_name_sources.insert(k.conname.clone());
                    }
                }
                NodeEnum::PartitionCmd(p) => {
                    makes = true;
                    if let Some(partition) = &p.name {
                        self.known.index_name_sources.insert(partition.relname.clone());
                    }
                }
                _ => {}
            }
        }
        if makes {
            self.known.index_name_sources.insert(table.relname.clone());
        }
    }

    /// With facts: neither the database nor the run has index `index`.
    fn index_missing(&self, index: &RelName) -> bool {
        self.lacks_index(index) && !self.may_be_implicit_index(index)
    }

    /// Whether index `index` may be one the run made without a `CREATE INDEX` (a key's, a partition's).
    fn may_be_implicit_index(&self, index: &RelName) -> bool {
        self.known.index_columns.contains_key(&index.name)
            || self.known.index_name_sources.iter().any(|source| {
                index.name == *source
                    || index.name.strip_prefix(source.as_str()).is_some_and(|rest| rest.starts_with('_'))
            })
    }

    /// With facts: a statement that changes index `index` (without `IF EXISTS`), which the database lacks
    /// and the run did not make, fails: said. Whether it does.
    fn check_index_exists(&mut self, index: &RelName) -> bool {
        let missing = self.index_missing(index);
        if missing {
            self.hit("object-not-found", format!("index `{}` does not exist in the database", index.display()), None);
        }
        missing
    }

    /// With facts: the database has no index `index` (after the run's drops and renames) and the run made
    /// none of its name.
    fn lacks_index(&self, index: &RelName) -> bool {
        self.facts.is_some() && !self.has_db_index(index) && !self.created_indexes.contains(&index.name)
    }

    /// The name in the database's facts of the index the run calls `index`; `None` when the run took it
    /// away (dropped it, or renamed it to another name).
    fn db_index(&self, index: &RelName) -> Option<RelName> {
        let key = index.key();
        if let Some(was) = self.known.renamed_indexes.get(&key) {
            return Some(was.clone());
        }
        (!self.known.dropped_indexes.contains(&key)).then(|| index.clone())
    }

    /// With facts: the database has index `index`, and the run has not taken it away before this
    /// statement.
    fn has_db_index(&self, index: &RelName) -> bool {
        self.facts.is_some_and(|f| self.db_index(index).is_some_and(|i| f.has_index(&i)))
    }

    /// `DROP INDEX` of `index`: from now on it does not exist, until made again.
    fn index_dropped(&mut self, index: &RelName) {
        self.known.renamed_indexes.remove(&index.key());
        self.known.dropped_indexes.insert(index.key());
    }

    /// `ALTER INDEX index RENAME TO new_name`: the index is there under the new name only.
    fn index_renamed(&mut self, index: &RelName, new_name: &str) {
        let renamed = RelName { schema: index.schema.clone(), name: new_name.to_owned() };
        let was = self.db_index(index);
        self.index_dropped(index);
        self.known.dropped_indexes.remove(&renamed.key());
        if let Some(was) = was {
            self.known.renamed_indexes.insert(renamed.key(), was);
        }
        if self.created_indexes.remove(&index.name) {
            self.created_indexes.insert(new_name.to_owned());
        }
    }

    /// With facts: the database's index of constraint `name` of `table` (a primary key, unique or exclusion
    /// constraint's, which has the constraint's name), as the run leaves it.
    fn constraint_index(&self, table: &RelName, name: &str) -> Option<RelName> {
        let schema = self.db_table(table).schema.clone();
        let index = RelName { schema, name: name.to_owned() };
        let on = self.index_table(&index)?;
        (on.key() == self.db_table(table).key()).then_some(index)
    }

    /// `DROP TABLE` of `table`: the database's indexes on it go with it.
    fn table_dropped(&mut self, table: &RelName) {
        let was = self.db_table(table).key();
        self.indexes_gone(|table, _| table.key() == was);
    }

    /// `DROP SCHEMA schema CASCADE`: the tables in it go, and the database's indexes on them with them.
    fn schema_dropped(&mut self, schema: &str) {
        self.indexes_gone(|table, _| table.schema.as_deref().unwrap_or("public") == schema);
    }

    /// `DROP OWNED BY roles`: the tables they own go, and the database's indexes on them with them (an
    /// index is owned by its table's owner).
    fn owned_dropped(&mut self, roles: &[String]) {
        self.indexes_gone(|_, owner| owner.is_some_and(|o| roles.iter().any(|r| r == o)));
    }

    /// With facts: the database's indexes for which `gone` holds (given their table and the role that
    /// owns it) no longer exist, under their names or those the run renamed them to.
    fn indexes_gone(&mut self, gone: impl Fn(&RelName, Option<&str>) -> bool) {
        let Some(facts) = self.facts else { return };
        let gone: HashSet<String> = facts
            .index_tables
            .iter()
            .filter(|(index, table)| gone(table, facts.index_owners.get(*index).map(String::as_str)))
            .map(|(index, _)| index.clone())
            .collect();
        // Renamed by the run, they are gone under their new names as well.
        let renamed: Vec<String> = self
            .known
            .renamed_indexes
            .iter()
            .filter(|(_, i)| gone.contains(&i.key()))
            .map(|(n, _)| n.clone())
            .collect();
        for key in renamed {
            self.known.renamed_indexes.remove(&key);
            self.known.dropped_indexes.insert(key);
        }
        self.known.dropped_indexes.extend(gone);
    }

    /// Whether view `view` exists before this statement: not when this file made or dropped it; else, with
    /// facts, when the database has it, and without, it is taken to exist (`CREATE OR REPLACE` is how a
    /// migration changes a view it made long before).
    fn view_exists(&self, view: &RelName) -> bool {
        let key = view.key();
        if self.created.contains(&key) || self.dropped_views.contains_key(&key) {
            return false;
        }
        self.facts.is_none_or(|f| f.views.contains(&key))
    }

    /// With facts: a table (or column) that is neither in the database nor created by the run.
    fn check_exists(&mut self, rel: &RelName, column: Option<&str>) {
        if column.is_some_and(|c| self.known.added_columns.contains_key(&(rel.key(), c.to_owned()))) {
            return;
        }
        if self.has_table(rel) == Some(false) {
            self.hit("object-not-found", format!("table `{}` does not exist in the database", rel.display()), None);
        } else if let Some(c) = column
            && self.table_facts(rel).is_some()
            && self.has_column(rel, c) == Some(false)
        {
            self.hit(
                "object-not-found",
                format!("column `{c}` of `{}` does not exist in the database", rel.display()),
                None,
            );
        }
    }

    /// With facts: the table of an existing index (followed through the run's renames).
    fn index_table(&self, index: &RelName) -> Option<RelName> {
        let index = self.db_index(index)?;
        self.facts.and_then(|f| f.index_tables.get(&index.key())).cloned()
    }

    /// Whether function `f` is volatile: a volatile built-in, or what the run's `CREATE FUNCTION` or the
    /// database says; a built-in lint knows to be stable or immutable is not. `None`: nothing says.
    fn function_volatile(&self, f: &RelName) -> Option<bool> {
        let lower = f.name.to_ascii_lowercase();
        if VOLATILE.contains(&lower.as_str()) {
            return Some(true);
        }
        if let Some(&volatile) = self.known.functions.get(&f.name) {
            return Some(volatile);
        }
        if let Some(&volatile) = self.facts.and_then(|facts| facts.volatile_functions.get(&f.name)) {
            return Some(volatile);
        }
        // The parser names the SQL standard's functions (`EXTRACT`, `TRIM`, `SUBSTRING`) in `pg_catalog`.
        (f.schema.as_deref() == Some("pg_catalog") || NOT_VOLATILE.contains(&lower.as_str())).then_some(false)
    }

    /// Whether a type is a domain with a constraint, as the run left it or the database has it.
    fn constrained_domain(&self, ty: &RelName) -> bool {
        match self.known.domains.get(&ty.key()) {
            Some(&constrained) => constrained,
            None => self.facts.is_some_and(|f| f.constrained_domains.contains(&ty.key())),
        }
    }

    /// Whether the statement runs in a transaction block: one the file opened, its tool's, or a `DO`
    /// block's (which runs its statements as one function call, in one transaction).
    fn in_transaction(&self) -> bool {
        self.open.is_some() || self.wrapped || self.in_do_block
    }

    /// A statement PostgreSQL refuses in a transaction block (`what`, a `CONCURRENTLY`): when it is in one,
    /// a `concurrently-in-transaction` hit.
    fn refused_in_transaction(&mut self, what: &str) {
        let message = if self.in_do_block {
            format!("{what} cannot be executed from a function: inside a `DO` block the statement fails")
        } else if self.in_transaction() {
            format!("{what} cannot run inside a transaction block")
        } else {
            return;
        };
        self.hit("concurrently-in-transaction", message, None);
    }

    /// A `lock_timeout` set (`set`: not to 0) or reset, for the transaction only (`local`) or the session.
    /// Outside a transaction block, `SET LOCAL` has no effect (PostgreSQL only warns).
    fn set_lock_timeout(&mut self, set: bool, local: bool) {
        if local && !self.in_transaction() {
            return;
        }
        if local {
            self.lock_timeout_local = set;
        } else {
            self.lock_timeout = set;
            self.lock_timeout_local = set && self.lock_timeout_local;
        }
    }

    fn statement_hits(&mut self, node: &NodeEnum) {
        if !self.new_enum_values.is_empty() {
            self.new_enum_value_used(node);
        }
        if !self.held_exclusive.is_empty() {
            self.long_statement_under_lock(node);
        }
        if let Some((needs, what)) = needs_version(node).filter(|(needs, _)| self.pg_version < *needs) {
            let version = self.pg_version;
            self.hit(
                "needs-newer-server",
                format!("{what} needs PostgreSQL {needs} or later: on PostgreSQL {version} the statement fails"),
                None,
            );
        }
        if !self.explicit_ids.is_empty() {
            self.sequence_moved(node);
        }
        self.note_implicit_indexes(node);
        match node {
            NodeEnum::TransactionStmt(t) => self.transaction(t.kind(), t.chain),
            NodeEnum::InsertStmt(insert) => self.insert(insert),
            NodeEnum::CopyStmt(copy) if copy.is_from => self.copy_from(copy),
            NodeEnum::VariableSetStmt(v) if v.name.eq_ignore_ascii_case("lock_timeout") => {
                let zero = v.args.iter().all(|a| match &a.node {
                    Some(NodeEnum::AConst(c)) => match &c.val {
                        Some(a_const::Val::Ival(i)) => i.ival == 0,
                        Some(a_const::Val::Sval(s)) => s.sval.trim() == "0",
                        _ => false,
                    },
                    _ => false,
                });
                self.set_lock_timeout(v.kind() == VariableSetKind::VarSetValue && !zero, v.is_local);
            }
            // `SELECT set_config('lock_timeout', '2s', false)`, as some tools write it; `SELECT ... INTO t`
            // makes a table as `CREATE TABLE t AS` does.
            NodeEnum::SelectStmt(sel) => {
                if let Some((set, local)) = set_config_lock_timeout(sel) {
                    self.set_lock_timeout(set, local);
                }
                if let Some(into) = sel.into_clause.as_ref().and_then(|i| i.rel.as_ref()) {
                    let made = self.made(RelName::of(into));
                    self.created.insert(made.key());
                }
            }
            NodeEnum::VariableSetStmt(v) if v.kind() == VariableSetKind::VarResetAll => {
                self.lock_timeout = false;
                self.lock_timeout_local = false;
                self.search_path.clear();
            }
            NodeEnum::VariableSetStmt(v) if v.name.eq_ignore_ascii_case("search_path") => {
                self.search_path = v
                    .args
                    .iter()
                    .filter_map(|a| match &a.node {
                        Some(NodeEnum::AConst(c)) => match &c.val {
                            Some(a_const::Val::Sval(s)) => Some(s.sval.clone()),
                            _ => None,
                        },
                        _ => None,
                    })
                    .filter(|schema| schema != "$user")
                    .collect();
            }
            NodeEnum::CreateStmt(c) => self.create_table(c),
            NodeEnum::CreateTableAsStmt(c) => {
                if let Some(into) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                    let made = self.made(RelName::of(into));
                    self.created.insert(made.key());
                }
            }
            NodeEnum::ViewStmt(v) => {
                if let Some(view) = &v.view {
                    if v.replace && self.view_exists(&RelName::of(view)) && view.relpersistence != "t" {
                        // Measured on 15: replacing a view locks it ACCESS EXCLUSIVE, as `DROP VIEW` does.
                        self.lock_timeout_needed(Some(RelName::of(view)), "ACCESS EXCLUSIVE");
                    }
                    self.created.insert(RelName::of(view).key());
                    if let Some(at) = self.dropped_views.remove(&RelName::of(view).key()) {
                        self.withdrawn.insert(at);
                    }
                }
            }
            NodeEnum::CreateFunctionStmt(f) => {
                if let Some((name, volatile)) = function_volatility(f) {
                    self.known.functions.insert(name, volatile);
                }
            }
            NodeEnum::CreateEnumStmt(e) => {
                if let Some(rel) = RelName::of_names(&e.type_name) {
                    self.created.insert(rel.key());
                    let labels = e.vals.iter().filter_map(string).map(str::to_owned).collect();
                    self.known.enums.insert(rel.key(), labels);
                }
            }
            NodeEnum::AlterEnumStmt(e) if e.old_val.is_empty() && !e.new_val.is_empty() => self.add_enum_value(e),
            NodeEnum::CreateDomainStmt(d) => {
                if let Some(rel) = RelName::of_names(&d.domainname) {
                    self.created.insert(rel.key());
                    let own = d.constraints.iter().filter_map(constraint).any(|k| {
                        matches!(k.contype(), ConstrType::ConstrCheck | ConstrType::ConstrNotnull)
                    });
                    let base = d.type_name.as_ref().and_then(|t| RelName::of_names(&t.names));
                    let constrained = own || base.is_some_and(|b| self.constrained_domain(&b));
                    self.known.domains.insert(rel.key(), constrained);
                }
            }
            // `ADD CONSTRAINT` (`C`) and `SET NOT NULL` (`O`).
            NodeEnum::AlterDomainStmt(d) if matches!(d.subtype.as_str(), "C" | "O") => {
                let Some(rel) = RelName::of_names(&d.type_name) else { return };
                self.known.domains.insert(rel.key(), true);
                let not_valid = matches!(d.def.as_deref().and_then(constraint), Some(k) if k.skip_validation);
                if not_valid || self.is_new(&rel) {
                    return;
                }
                let what = if d.subtype == "O" { "`SET NOT NULL`" } else { "the constraint" };
                self.hit(
                    "alter-domain-add-constraint",
                    format!(
                        "{what} is checked on every column of the domain `{}` in every table, each locked SHARE \
                         (writes wait) until the check ends",
                        rel.display()
                    ),
                    None,
                );
                let on = format!("every table with a column of `{}`", rel.display());
                self.lock_timeout_wanted(&on, "SHARE");
            }
            NodeEnum::CompositeTypeStmt(c) => {
                if let Some(rel) = &c.typevar {
                    self.created.insert(RelName::of(rel).key());
                }
            }
            NodeEnum::IndexStmt(i) => self.create_index(i),
            NodeEnum::DropStmt(d) => self.drop(d),
            NodeEnum::LockStmt(l) if !l.nowait && l.mode >= 5 => {
                // 5 to 8: SHARE, SHARE ROW EXCLUSIVE, EXCLUSIVE, ACCESS EXCLUSIVE (lockdefs.h).
                const MODES: [&str; 4] = ["SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"];
                let table = l.relations.iter().find_map(|r| match &r.node {
                    Some(NodeEnum::RangeVar(rv)) => Some(RelName::of(rv)),
                    _ => None,
                });
                self.lock_timeout_needed(table, MODES[(l.mode.min(8) - 5) as usize]);
            }
            NodeEnum::DropdbStmt(d) => {
                self.hit("drop-database", format!("`DROP DATABASE {}` removes the whole database", d.dbname), None)
            }
            NodeEnum::ReindexStmt(r) => {
                let concurrent = r.params.iter().any(|p| match &p.node {
                    Some(NodeEnum::DefElem(d)) => d.defname == "concurrently",
                    _ => false,
                });
                let table = r.relation.as_ref().map(RelName::of);
                let index = r.kind() == ReindexObjectType::ReindexObjectIndex;
                // An index this file made is on a table this file made, or locked already by its build.
                let new = table.as_ref().is_some_and(|t| {
                    if index { self.created_indexes.contains(&t.name) } else { self.is_new(t) }
                });
                if concurrent {
                    self.refused_in_transaction("`REINDEX CONCURRENTLY`");
                } else if !new {
                    let what = table.as_ref().map_or_else(|| r.name.clone(), RelName::display);
                    // `REINDEX INDEX` names an index: its table's size decides, when the facts know it.
                    let sized = match (r.kind(), &table) {
                        (ReindexObjectType::ReindexObjectIndex, Some(index)) => self.index_table(index),
                        _ => table.clone(),
                    };
                    self.hit(
                        "reindex-without-concurrently",
                        format!("`REINDEX` of `{what}` blocks writes while it rebuilds"),
                        sized.as_ref(),
                    );
                }
                match (&table, r.kind()) {
                    _ if concurrent || new => {}
                    // Measured on 15: SHARE on the index's table, whose writes wait, and ACCESS EXCLUSIVE on the
                    // index. Its table, the facts name.
                    (Some(index), ReindexObjectType::ReindexObjectIndex) => match self.index_table(index) {
                        Some(table) => self.lock_timeout_needed(Some(table), "SHARE"),
                        None => self.lock_timeout_wanted(&format!("the table of `{}`", index.display()), "SHARE"),
                    },
                    (Some(_), _) => self.lock_timeout_needed(table, "SHARE"),
                    // A schema's, the database's or the catalogs' tables, each locked SHARE in turn.
                    (None, ReindexObjectType::ReindexObjectSchema) => {
                        self.lock_timeout_wanted(&format!("every table of schema `{}`", r.name), "SHARE")
                    }
                    (None, ReindexObjectType::ReindexObjectSystem) => {
                        self.lock_timeout_wanted("every system catalog", "SHARE")
                    }
                    (None, _) => self.lock_timeout_wanted("every table of the database", "SHARE"),
                }
            }
            NodeEnum::AlterTableStmt(a) if a.objtype() == ObjectType::ObjectTable => {
                let Some(rel) = a.relation.as_ref().map(RelName::of) else { return };
                // The strongest lock its subcommands take, and the other tables they lock with it.
                let mut lock: Option<&str> = None;
                let mut also: Vec<RelName> = Vec::new();
                for cmd in &a.cmds {
                    if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node {
                        // Measured on 15: dropping a foreign key locks the table it references ACCESS
                        // EXCLUSIVE too (its triggers there go).
                        if cmd.subtype() == AlterTableType::AtDropConstraint
                            && let Some(referenced) = self.foreign_key_references(&rel, &cmd.name)
                        {
                            also.push(referenced);
                        }
                        if !weak_alter(cmd.subtype()) {
                            let takes = alter_lock(cmd);
                            if lock != Some("ACCESS EXCLUSIVE") {
                                lock = Some(takes);
                            }
                        }
                        self.alter_table(&rel, cmd);
                    }
                }
                if let Some(lock) = lock {
                    also.insert(0, rel);
                    self.lock_timeout_needed_on(also, lock);
                }
            }
            // `ALTER TYPE t DROP ATTRIBUTE a` of a composite type the run did not make: its values go from
            // every column of the type, without a word from the server.
            NodeEnum::AlterTableStmt(a) if a.objtype() == ObjectType::ObjectType => {
                let Some(ty) = a.relation.as_ref().map(RelName::of) else { return };
                if self.is_new(&ty) {
                    return;
                }
                for cmd in &a.cmds {
                    let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node else { continue };
                    if cmd.subtype() == AlterTableType::AtDropColumn {
                        self.hit(
                            "drop-attribute",
                            format!(
                                "`DROP ATTRIBUTE {}` removes it and its values from every column of type `{}` \
                                 (and of its arrays and domains)",
                                cmd.name,
                                ty.display()
                            ),
                            None,
                        );
                    }
                }
            }
            NodeEnum::AlterTableStmt(a) if a.objtype() == ObjectType::ObjectIndex => {
                let Some(index) = a.relation.as_ref().map(RelName::of) else { return };
                // On an index the database lacks it fails, or with `IF EXISTS` does nothing: no hazard.
                if (a.missing_ok && self.index_missing(&index)) || (!a.missing_ok && self.check_index_exists(&index)) {
                    return;
                }
                let moves = a.cmds.iter().any(|c| {
                    matches!(&c.node, Some(NodeEnum::AlterTableCmd(cmd)) if cmd.subtype() == AlterTableType::AtSetTableSpace)
                });
                if moves && !self.created_indexes.contains(&index.name) {
                    let table = self.index_table(&index);
                    self.hit(
                        "set-tablespace",
                        format!(
                            "`SET TABLESPACE` copies index `{}` under an ACCESS EXCLUSIVE lock: queries on its table wait",
                            index.display()
                        ),
                        table.as_ref(),
                    );
                    // The lock is the index's (measured on 15), and every query planned on its table waits for it.
                    if !table.is_some_and(|t| self.is_new(&t)) {
                        self.lock_timeout_wanted(&format!("index `{}`", index.display()), "ACCESS EXCLUSIVE");
                    }
                }
            }
            NodeEnum::AlterTableMoveAllStmt(m) => self.hit(
                "set-tablespace",
                format!(
                    "`ALL IN TABLESPACE {}` copies every relation it holds to `{}`, each under an ACCESS EXCLUSIVE lock",
                    m.orig_tablespacename, m.new_tablespacename
                ),
                None,
            ),
            NodeEnum::DropOwnedStmt(d) => {
                let roles: Vec<String> = d
                    .roles
                    .iter()
                    .filter_map(|r| match &r.node {
                        Some(NodeEnum::RoleSpec(spec)) => Some(format!("`{}`", spec.rolename)),
                        _ => None,
                    })
                    .collect();
                self.hit(
                    "drop-owned",
                    format!("`DROP OWNED BY {}` drops every object they own in the database, tables and rows included", roles.join(", ")),
                    None,
                );
                if d.behavior() == DropBehavior::DropCascade {
                    self.hit("cascade", "`CASCADE` also drops every object that depends on them".into(), None);
                }
                // Which indexes go, the database's owners say; a role lint cannot name (`PUBLIC` owns
                // nothing) drops none of them.
                let owners: Vec<String> = d
                    .roles
                    .iter()
                    .filter_map(|r| match &r.node {
                        Some(NodeEnum::RoleSpec(spec)) => self.facts.and_then(|f| match spec.roletype() {
                            RoleSpecType::RolespecCstring => Some(spec.rolename.clone()),
                            RoleSpecType::RolespecCurrentUser | RoleSpecType::RolespecCurrentRole => {
                                Some(f.current_user.clone())
                            }
                            RoleSpecType::RolespecSessionUser => Some(f.session_user.clone()),
                            _ => None,
                        }),
                        _ => None,
                    })
                    .collect();
                self.owned_dropped(&owners);
            }
            NodeEnum::RenameStmt(r) if matches!(r.rename_type(), ObjectType::ObjectType | ObjectType::ObjectDomain) => {
                let parts = r.object.as_deref().map(name_parts).unwrap_or_default();
                let Some(ty) = RelName::of_parts(&parts) else { return };
                let renamed = RelName { schema: ty.schema.clone(), name: r.newname.clone() };
                self.renamed_types.insert(renamed.key());
                if self.is_new(&ty) {
                    self.created.insert(renamed.key());
                }
                // Another type takes the name a type of this file was renamed away from: a swap.
                if let Some(at) = self.type_renames.remove(&renamed.key()) {
                    self.withdrawn.insert(at);
                }
                if !self.is_new(&ty) {
                    self.type_renames.insert(ty.key(), self.hits.len());
                    self.hit(
                        "rename-type",
                        format!("renaming type `{}` to `{}` breaks code that still names it", ty.display(), r.newname),
                        None,
                    );
                }
            }
            NodeEnum::AlterEnumStmt(e) if !e.old_val.is_empty() => {
                let Some(ty) = RelName::of_names(&e.type_name) else { return };
                if !self.is_new(&ty) {
                    self.hit(
                        "rename-type",
                        format!(
                            "renaming the value `{}` of `{}` to `{}` breaks code and rows elsewhere that still use the old one",
                            e.old_val,
                            ty.display(),
                            e.new_val
                        ),
                        None,
                    );
                }
            }
            NodeEnum::RenameStmt(r) => {
                let Some(rel) = r.relation.as_ref().map(RelName::of) else { return };
                let new = self.is_new(&rel);
                match r.rename_type() {
                    ObjectType::ObjectTable if new => {
                        self.created.insert(RelName { schema: rel.schema.clone(), name: r.newname.clone() }.key());
                    }
                    ObjectType::ObjectTable => {
                        self.check_exists(&rel, None);
                        let renamed = RelName { schema: rel.schema.clone(), name: r.newname.clone() };
                        let was = self.db_table(&rel);
                        self.known.renamed_tables.insert(renamed.key(), was);
                        self.hit(
                            "rename-table",
                            format!(
                                "renaming `{}` to `{}` breaks code that still uses the old name",
                                rel.display(),
                                r.newname
                            ),
                            None,
                        );
                    }
                    ObjectType::ObjectColumn if !new => {
                        self.check_exists(&rel, Some(&r.subname));
                        let was = self.db_column(&rel, &r.subname).to_owned();
                        self.known.renamed_columns.insert((rel.key(), r.newname.clone()), was);
                        if let Some(file) = self.known.added_columns.remove(&(rel.key(), r.subname.clone())) {
                            self.known.added_columns.insert((rel.key(), r.newname.clone()), file);
                        }
                        self.renamed_away.insert((rel.key(), r.subname.clone()), self.hits.len());
                        self.hit(
                            "rename-column",
                            format!(
                                "renaming `{}.{}` to `{}` breaks code that still uses the old name",
                                rel.display(),
                                r.subname,
                                r.newname
                            ),
                            None,
                        );
                    }
                    ObjectType::ObjectIndex => {
                        if !r.missing_ok {
                            self.check_index_exists(&rel);
                        }
                        self.index_renamed(&rel, &r.newname)
                    }
                    // A constraint's index is renamed with it.
                    ObjectType::ObjectTabconstraint => {
                        if let Some(index) = self.constraint_index(&rel, &r.subname) {
                            self.index_renamed(&index, &r.newname);
                        }
                    }
                    _ => {}
                }
                self.rename_known(&rel, r.rename_type(), &r.subname, &r.newname);
                // Measured on 15: a trigger's, a constraint's, a policy's and a rule's rename lock their table
                // ACCESS EXCLUSIVE, as a table's and a column's do (an index's takes SHARE UPDATE EXCLUSIVE).
                if matches!(
                    r.rename_type(),
                    ObjectType::ObjectTable
                        | ObjectType::ObjectColumn
                        | ObjectType::ObjectTrigger
                        | ObjectType::ObjectTabconstraint
                        | ObjectType::ObjectPolicy
                        | ObjectType::ObjectRule
                        | ObjectType::ObjectView
                        | ObjectType::ObjectMatview
                ) {
                    self.lock_timeout_needed(Some(rel), "ACCESS EXCLUSIVE");
                }
            }
            NodeEnum::TruncateStmt(t) => {
                let mut first = None;
                for rel in t.relations.iter().filter_map(|n| match &n.node {
                    Some(NodeEnum::RangeVar(rv)) => Some(RelName::of(rv)),
                    _ => None,
                }) {
                    if !self.is_new(&rel) {
                        self.check_exists(&rel, None);
                        self.hit("truncate", format!("`TRUNCATE` removes every row of `{}`", rel.display()), None);
                        first.get_or_insert(rel);
                    }
                }
                if t.behavior() == DropBehavior::DropCascade {
                    self.hit(
                        "cascade",
                        "`TRUNCATE ... CASCADE` also empties every table with a foreign key to these".into(),
                        None,
                    );
                }
                self.lock_timeout_needed(first, "ACCESS EXCLUSIVE");
            }
            NodeEnum::DeleteStmt(d) => {
                let rel = d.relation.as_ref().map(RelName::of).filter(|r| !self.is_new(r));
                if let Some(rel) = &rel
                    && d.where_clause.as_deref().is_none_or(always_true)
                {
                    self.hit(
                        "delete-without-where",
                        format!("`DELETE` without `WHERE` removes every row of `{}`", rel.display()),
                        None,
                    );
                }
                if let Some(rel) = &rel {
                    self.delete_checks(rel);
                }
            }
            NodeEnum::UpdateStmt(u) if u.where_clause.as_deref().is_none_or(always_true) => {
                if let Some(rel) = u.relation.as_ref().map(RelName::of).filter(|r| !self.is_new(r)) {
                    let set = set_columns(&u.target_list);
                    let added = |c: &&str| self.run_owns_column(&rel, c);
                    if !set.is_empty() && set.iter().all(added) {
                        self.hit(
                            "backfill-in-one-transaction",
                            format!(
                                "`UPDATE` without `WHERE` backfills `{}` ({}) in one transaction: every row locked and written again",
                                rel.display(),
                                set.join(", ")
                            ),
                            None,
                        );
                    } else {
                        self.hit(
                            "update-without-where",
                            format!("`UPDATE` without `WHERE` changes every row of `{}` in one transaction", rel.display()),
                            None,
                        );
                    }
                }
            }
            NodeEnum::VacuumStmt(v) if v.is_vacuumcmd => {
                let full = v.options.iter().any(|o| match &o.node {
                    Some(NodeEnum::DefElem(d)) => {
                        d.defname == "full"
                            && !matches!(d.arg.as_deref().and_then(|a| a.node.as_ref()), Some(NodeEnum::Boolean(b)) if !b.boolval)
                    }
                    _ => false,
                });
                if full {
                    let tables: Vec<RelName> = v
                        .rels
                        .iter()
                        .filter_map(|r| match &r.node {
                            Some(NodeEnum::VacuumRelation(vr)) => vr.relation.as_ref().map(RelName::of),
                            _ => None,
                        })
                        .collect();
                    let what = if tables.is_empty() {
                        "every table of the database".to_owned()
                    } else {
                        tables.iter().map(|t| format!("`{}`", t.display())).collect::<Vec<_>>().join(", ")
                    };
                    self.hit(
                        "vacuum-full",
                        format!("`VACUUM FULL` rewrites {what} under an ACCESS EXCLUSIVE lock"),
                        tables.first(),
                    );
                    self.lock_timeout_needed(tables.into_iter().next(), "ACCESS EXCLUSIVE");
                }
            }
            NodeEnum::ClusterStmt(c) => {
                let table = c.relation.as_ref().map(RelName::of);
                if !table.as_ref().is_some_and(|t| self.is_new(t)) {
                    let what = table
                        .as_ref()
                        .map_or_else(|| "every clustered table".to_owned(), |t| format!("`{}`", t.display()));
                    self.hit(
                        "cluster",
                        format!("`CLUSTER` rewrites {what} under an ACCESS EXCLUSIVE lock"),
                        table.as_ref(),
                    );
                    self.lock_timeout_needed(table, "ACCESS EXCLUSIVE");
                }
            }
            // Measured on 15 (`pg_locks`): `CREATE [OR REPLACE] TRIGGER` takes SHARE ROW EXCLUSIVE on its table
            // (writers wait, and so does everything queued behind it); a policy's and a rule's `CREATE`,
            // `ALTER` and `DROP`, and `DROP TRIGGER`, take ACCESS EXCLUSIVE.
            NodeEnum::CreateTrigStmt(t) => {
                self.lock_timeout_needed(t.relation.as_ref().map(RelName::of), "SHARE ROW EXCLUSIVE");
            }
            NodeEnum::CreatePolicyStmt(p) => {
                self.lock_timeout_needed(p.table.as_ref().map(RelName::of), "ACCESS EXCLUSIVE");
            }
            NodeEnum::AlterPolicyStmt(p) => {
                self.lock_timeout_needed(p.table.as_ref().map(RelName::of), "ACCESS EXCLUSIVE");
            }
            NodeEnum::RuleStmt(r) => {
                self.lock_timeout_needed(r.relation.as_ref().map(RelName::of), "ACCESS EXCLUSIVE");
            }
            NodeEnum::RefreshMatViewStmt(r) if !r.concurrent => {
                if let Some(view) = r.relation.as_ref().map(RelName::of).filter(|v| !self.is_new(v)) {
                    self.hit(
                        "refresh-materialized-view-without-concurrently",
                        format!("`REFRESH MATERIALIZED VIEW {}` blocks its readers until it ends", view.display()),
                        Some(&view),
                    );
                    self.lock_timeout_needed(Some(view), "ACCESS EXCLUSIVE");
                }
            }
            _ => {}
        }
    }

    /// `ALTER TYPE ... ADD VALUE`: not in a transaction before 12, and not a label the type has.
    fn add_enum_value(&mut self, e: &pg_query::protobuf::AlterEnumStmt) {
        if self.in_transaction() && self.pg_version < 12 {
            let version = self.pg_version;
            self.hit(
                "enum-add-value-in-transaction",
                format!("`ALTER TYPE ... ADD VALUE` cannot run inside a transaction block on PostgreSQL {version}"),
                None,
            );
        }
        let Some(rel) = RelName::of_names(&e.type_name) else { return };
        let labels = match self.known.enums.get(&rel.key()) {
            Some(labels) => Some(labels.clone()),
            None => self.facts.and_then(|f| f.enums.get(&rel.key())).cloned(),
        };
        // From PostgreSQL 17, a value added to a type made in the same transaction may be used at once.
        let created_here = self.created.contains(&rel.key()) && self.pg_version >= 17;
        if (self.in_transaction() || self.migrate_transaction) && self.pg_version >= 12 && !created_here {
            self.new_enum_values.push((rel.clone(), e.new_val.clone()));
        }
        let Some(mut labels) = labels else { return };
        if labels.contains(&e.new_val) {
            if !e.skip_if_new_val_exists {
                self.hit(
                    "enum-value-exists",
                    format!("`{}` already has the value '{}': the statement fails", rel.display(), e.new_val),
                    None,
                );
            }
        } else {
            labels.push(e.new_val.clone());
        }
        self.known.enums.insert(rel.key(), labels);
    }

    /// A statement in the transaction that added a value to an enum type, holding that value as a string
    /// constant: cast to the type, or in a statement on a table with a column of the type (or whose
    /// columns are not known). The server refuses the value until the transaction commits (SQLSTATE
    /// 55P04, "unsafe use of new value").
    fn new_enum_value_used(&mut self, node: &NodeEnum) {
        let tree = json_tree(node);
        let constants: Vec<String> = tree_nodes(&tree, "AConst")
            .iter()
            .filter_map(|c| c["val"]["Sval"]["sval"].as_str().map(str::to_owned))
            .collect();
        let casts: Vec<String> = tree_nodes(&tree, "TypeCast")
            .iter()
            .filter_map(|c| {
                let names = c["type_name"]["names"].as_array()?;
                let parts: Vec<String> =
                    names.iter().filter_map(|n| n["node"]["String"]["sval"].as_str().map(str::to_owned)).collect();
                RelName::of_parts(&parts).map(|r| r.key())
            })
            .collect();
        let tables: Vec<RelName> = names(node).into_iter().filter(|(_, index)| !index).map(|(t, _)| t).collect();
        let found = self.new_enum_values.iter().find(|(ty, label)| {
            constants.contains(label)
                && (casts.contains(&ty.key())
                    || tables.iter().any(|t| self.column_types(t).is_none_or(|types| types.contains(&ty.name))))
        });
        if let Some((ty, label)) = found.cloned() {
            self.hit(
                "enum-value-used-in-transaction",
                format!(
                    "'{label}' was added to `{}` in this transaction: PostgreSQL refuses to use it until the \
                     transaction commits",
                    ty.display()
                ),
                None,
            );
        }
    }

    /// The type names (without schema) of a table's columns, as the run left them or the database has
    /// them; `None` when neither knows the table.
    fn column_types(&self, table: &RelName) -> Option<Vec<String>> {
        let columns = match self.known.tables.get(&self.key(table)) {
            Some(t) => &t.columns,
            None => &self.facts?.table(table)?.columns,
        };
        Some(columns.values().map(|c| c.name.clone()).collect())
    }

    /// A transaction statement; `chain`: `COMMIT AND CHAIN` or `ROLLBACK AND CHAIN`, which open the next
    /// transaction at once.
    fn transaction(&mut self, kind: TransactionStmtKind, chain: bool) {
        use TransactionStmtKind::*;
        match kind {
            TransStmtBegin | TransStmtStart => {
                if self.open.is_some() {
                    self.hit(
                        "transaction-nesting",
                        "`BEGIN` inside an open transaction: PostgreSQL does not nest them, the next `COMMIT` ends both".into(),
                        None,
                    );
                } else {
                    self.open = Some((self.statement, self.at));
                    self.lock_timeout_at_begin = self.lock_timeout;
                }
            }
            TransStmtCommit | TransStmtRollback | TransStmtPrepare => {
                self.transaction_ended();
                // Rolled back, a `SET` made in the transaction is undone.
                if kind == TransStmtRollback && self.open.is_some() {
                    self.lock_timeout = self.lock_timeout_at_begin;
                }
                if kind != TransStmtCommit {
                    self.hit(
                        "rollback-in-migration",
                        "the file ends its transaction without committing it: under a runner that wraps each file in \
                         a transaction it commits (pgsafe migrate refuses it), what it means to discard is kept"
                            .into(),
                        None,
                    );
                }
                if self.open.take().is_none() {
                    self.hit(
                        "transaction-nesting",
                        "`COMMIT` or `ROLLBACK` with no transaction open: what came before ran outside one".into(),
                        None,
                    );
                } else if chain {
                    self.open = Some((self.statement, self.at));
                    self.lock_timeout_at_begin = self.lock_timeout;
                }
            }
            _ => {}
        }
    }

    /// The transaction of the statements before ended: what held until its end no longer does (under
    /// `migrate`, the file's transaction goes on, unless the file keeps transactions of its own).
    fn transaction_ended(&mut self) {
        if !self.options.assume_lock_timeout || !self.migrate_transaction {
            self.not_valid_here.clear();
            self.new_enum_values.clear();
            self.held_exclusive.clear();
        }
        self.lock_timeout_local = false;
    }

    /// A statement about to take `lock` (one blocking reads or writes) on `table`: without a
    /// `lock_timeout` set before it, the first such statement of the file is a finding. In a transaction,
    /// an ACCESS EXCLUSIVE lock is held until it ends ([`Self::long_statement_under_lock`]).
    fn lock_timeout_needed(&mut self, table: Option<RelName>, lock: &str) {
        self.lock_timeout_needed_on(table.into_iter().collect(), lock);
    }

    /// [`Self::lock_timeout_needed`] for a statement that takes `lock` on each of `tables` (the first its
    /// own): the message names those the run did not make.
    fn lock_timeout_needed_on(&mut self, tables: Vec<RelName>, lock: &str) {
        let mut seen = HashSet::new();
        let tables: Vec<RelName> = tables.into_iter().filter(|t| !self.is_new(t) && seen.insert(self.key(t))).collect();
        if lock == "ACCESS EXCLUSIVE" && (self.in_transaction() || self.migrate_transaction) {
            for table in &tables {
                if !self.held_exclusive.iter().any(|t| t.key() == table.key()) {
                    self.held_exclusive.push(table.clone());
                }
            }
        }
        let on: Vec<String> = tables.iter().map(|t| format!("`{}`", t.display())).collect();
        if !on.is_empty() {
            self.lock_timeout_wanted(&on.join(" and "), lock);
        }
    }

    /// A statement that may run long (an `UPDATE`, `DELETE`, `INSERT ... SELECT` or `MERGE` of an existing
    /// table) while the transaction holds ACCESS EXCLUSIVE locks on existing tables: queries on them, reads
    /// included, wait for it too.
    fn long_statement_under_lock(&mut self, node: &NodeEnum) {
        let (what, table) = match node {
            NodeEnum::UpdateStmt(u) => ("UPDATE", u.relation.as_ref()),
            NodeEnum::DeleteStmt(d) => ("DELETE", d.relation.as_ref()),
            NodeEnum::MergeStmt(m) => ("MERGE", m.relation.as_ref()),
            // `VALUES` rows (or `DEFAULT VALUES`) are written at once; a query's may be every row of a table.
            NodeEnum::InsertStmt(i) => match i.select_stmt.as_deref().and_then(|s| s.node.as_ref()) {
                Some(NodeEnum::SelectStmt(select)) if select.values_lists.is_empty() => {
                    ("INSERT ... SELECT", i.relation.as_ref())
                }
                _ => return,
            },
            _ => return,
        };
        let Some(table) = table.map(RelName::of).filter(|t| !self.is_new(t)) else { return };
        let held: Vec<String> = self.held_exclusive.iter().map(|t| format!("`{}`", t.display())).collect();
        self.hit(
            "statement-after-access-exclusive",
            format!(
                "this `{what}` of `{}` runs while the transaction holds the ACCESS EXCLUSIVE lock an earlier statement \
                 took on {}: every query on it, reads too, waits until the transaction ends",
                table.display(),
                held.join(", ")
            ),
            Some(&table),
        );
    }

    /// A statement about to take `lock` on what `on` says (the tables): [`Self::lock_timeout_needed`].
    fn lock_timeout_wanted(&mut self, on: &str, lock: &str) {
        if self.options.assume_lock_timeout
            || self.lock_timeout
            || self.lock_timeout_local
            || self.lock_timeout_reported
        {
            return;
        }
        self.lock_timeout_reported = true;
        self.hit(
            "missing-lock-timeout",
            format!(
                "this statement waits for {} {lock} lock on {on} with no `lock_timeout` set before it in this file: \
                 while it waits, every query on the table waits behind it",
                if lock.starts_with(['A', 'E', 'I', 'O', 'U']) { "an" } else { "a" },
            ),
            None,
        );
    }

    fn create_table(&mut self, c: &pg_query::protobuf::CreateStmt) {
        let Some(rel) = c.relation.as_ref().map(RelName::of) else { return };
        let rel = self.made(rel);
        if !c.if_not_exists {
            self.hit("non-idempotent", format!("`CREATE TABLE {}` without `IF NOT EXISTS`", rel.display()), None);
        } else if self.known.tables.contains_key(&rel.key()) || self.table_facts(&rel).is_some() {
            // It exists (an earlier file of the run made it, or the database has it): the statement does
            // nothing, and what follows works on a table with its rows and readers, not a new one.
            return;
        }
        // New from here: its foreign keys lock the tables they reference ([`Self::foreign_key_made`]).
        self.created.insert(rel.key());
        let mut table = KnownTable { partitioned: c.partspec.is_some(), ..KnownTable::default() };
        let mut primary: Vec<String> = Vec::new();
        let mut columns: Vec<(&ColumnDef, ColumnType)> = Vec::new();
        for element in &c.table_elts {
            match &element.node {
                Some(NodeEnum::ColumnDef(col)) => {
                    self.column_foreign_keys(&rel, col);
                    let Some(ty) = col.type_name.as_ref().and_then(ColumnType::of) else { continue };
                    if col
                        .constraints
                        .iter()
                        .any(|k| constraint(k).is_some_and(|k| k.contype() == ConstrType::ConstrPrimary))
                    {
                        primary.push(col.colname.clone());
                    }
                    self.column_habits(col, &ty);
                    let identity = col
                        .constraints
                        .iter()
                        .any(|k| constraint(k).is_some_and(|k| k.contype() == ConstrType::ConstrIdentity));
                    if identity || matches!(ty.name.as_str(), "serial" | "bigserial" | "smallserial") {
                        table.counted.get_or_insert((col.colname.clone(), columns.len()));
                    }
                    // A new table: what the database or an earlier table of this name said no longer holds.
                    self.known.not_null.insert((rel.key(), col.colname.clone()), declares_not_null(col));
                    table.columns.insert(col.colname.clone(), ty.clone());
                    columns.push((col, ty));
                }
                Some(NodeEnum::Constraint(k)) if k.contype() == ConstrType::ConstrPrimary => {
                    primary.extend(k.keys.iter().filter_map(string).map(str::to_owned));
                }
                Some(NodeEnum::Constraint(k)) => self.foreign_key_made(&rel, k, None),
                _ => {}
            }
        }
        for key in &primary {
            self.known.not_null.insert((rel.key(), key.clone()), true);
        }
        self.keys_without_index(&rel, c, &primary);
        table.primary = primary.clone();
        for (col, ty) in &columns {
            // A key of several columns is made of references to other tables, not of ids it counts out;
            // a serial among them still counts.
            let counted = primary.len() == 1 || matches!(ty.name.as_str(), "serial" | "smallserial");
            if counted
                && primary.contains(&col.colname)
                && matches!(ty.name.as_str(), "int4" | "int2" | "serial" | "smallserial")
            {
                self.hit_at(
                    "prefer-bigint-primary-key",
                    format!("primary key `{}` is `{}`: it runs out at 2^31 ids", col.colname, ty.display()),
                    None,
                    self.offset(col.location, self.at),
                );
            }
        }
        self.known.tables.insert(rel.key(), table);
    }

    /// The foreign keys of `c`, a new table `rel` (whose primary key is `primary`), that no index of the
    /// table leads with: a hit each (the table is empty now, but deletes on the referenced table will scan
    /// it as it grows), withdrawn if a later `CREATE INDEX` of this file leads with its columns.
    fn keys_without_index(&mut self, rel: &RelName, c: &pg_query::protobuf::CreateStmt, primary: &[String]) {
        let mut indexed: Vec<Vec<String>> = vec![primary.to_vec()];
        let mut keys: Vec<(Vec<String>, i32)> = Vec::new();
        let keys_of = |k: &Constraint| k.keys.iter().filter_map(string).map(str::to_owned).collect::<Vec<_>>();
        for element in &c.table_elts {
            match &element.node {
                Some(NodeEnum::ColumnDef(col)) => {
                    for k in col.constraints.iter().filter_map(constraint) {
                        match k.contype() {
                            ConstrType::ConstrUnique | ConstrType::ConstrPrimary => {
                                indexed.push(vec![col.colname.clone()])
                            }
                            ConstrType::ConstrForeign => keys.push((vec![col.colname.clone()], k.location)),
                            _ => {}
                        }
                    }
                }
                Some(NodeEnum::Constraint(k)) => match k.contype() {
                    ConstrType::ConstrUnique | ConstrType::ConstrExclusion => indexed.push(keys_of(k)),
                    ConstrType::ConstrForeign => {
                        keys.push((k.fk_attrs.iter().filter_map(string).map(str::to_owned).collect(), k.location))
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        let leads = |index: &[String], columns: &[String]| !columns.is_empty() && index.starts_with(columns);
        for (columns, location) in keys {
            if columns.is_empty() || indexed.iter().any(|i| leads(i, &columns)) {
                continue;
            }
            let at = self.offset(location, self.at);
            self.unindexed_keys.push((rel.key(), columns.clone(), self.hits.len()));
            self.hit_at(
                "foreign-key-without-index",
                format!(
                    "no index of `{}` starts with ({}): deletes on the referenced table will scan it as it grows",
                    rel.display(),
                    columns.join(", ")
                ),
                None,
                at,
            );
        }
    }

    /// An INSERT into a table the run made that writes the column its sequence fills: the sequence stays
    /// where it was, under the ids written, until a `setval` moves it ([`Self::sequence_moved`]).
    fn insert(&mut self, insert: &pg_query::protobuf::InsertStmt) {
        let Some(rel) = insert.relation.as_ref().map(RelName::of) else { return };
        let Some((column, place)) = self.known.tables.get(&self.key(&rel)).and_then(|t| t.counted.clone()) else {
            return;
        };
        // `OVERRIDING USER VALUE` throws the written ids away for the identity's own.
        if insert.r#override() == pg_query::protobuf::OverridingKind::OverridingUserValue {
            return;
        }
        let Some(NodeEnum::SelectStmt(source)) = insert.select_stmt.as_deref().and_then(|n| n.node.as_ref()) else {
            return; // DEFAULT VALUES
        };
        let place = if insert.cols.is_empty() {
            place
        } else {
            let named = insert.cols.iter().position(|c| match &c.node {
                Some(NodeEnum::ResTarget(t)) => t.name == column,
                _ => false,
            });
            let Some(named) = named else { return };
            named
        };
        // `VALUES (DEFAULT, ...)` in every row leaves the column to its sequence; ids below 1 (a `0` or `-1`
        // for a system row) are below what it gives.
        let written = source.values_lists.is_empty()
            || source.values_lists.iter().any(|row| match &row.node {
                Some(NodeEnum::List(items)) => items.items.get(place).is_some_and(|v| match &v.node {
                    Some(NodeEnum::SetToDefault(_)) => false,
                    Some(NodeEnum::AConst(c)) => !matches!(&c.val, Some(a_const::Val::Ival(i)) if i.ival < 1),
                    _ => true,
                }),
                _ => true,
            });
        if !written {
            return;
        }
        self.ids_written(&rel, &column, "INSERT");
    }

    /// `COPY t FROM ...` into a table the run made, with every column or a list naming the one its sequence
    /// fills: seed data as `pg_dump` writes it, whose `setval` must follow.
    fn copy_from(&mut self, copy: &pg_query::protobuf::CopyStmt) {
        let Some(rel) = copy.relation.as_ref().map(RelName::of) else { return };
        let Some((column, _)) = self.known.tables.get(&self.key(&rel)).and_then(|t| t.counted.clone()) else { return };
        let named = copy.attlist.is_empty() || copy.attlist.iter().any(|a| string(a) == Some(column.as_str()));
        if named {
            self.ids_written(&rel, &column, "COPY");
        }
    }

    /// The `explicit-id-without-setval` hit of a `what` (INSERT, COPY) that writes `rel.column` itself.
    fn ids_written(&mut self, rel: &RelName, column: &str, what: &str) {
        self.explicit_ids.push((rel.name.to_lowercase(), self.hits.len()));
        self.hit(
            "explicit-id-without-setval",
            format!(
                "the {what} writes `{}.{column}` itself, and nothing after it in the file moves the column's sequence \
                 past the ids written: an INSERT that takes the default will get one of them and fail on the key",
                rel.display()
            ),
            Some(rel),
        );
    }

    /// A `setval(...)`, `ALTER SEQUENCE ... RESTART` or `ALTER TABLE ... ALTER COLUMN ... RESTART` takes back
    /// the `explicit-id-without-setval` hits of the tables it names (a sequence is named after its table);
    /// a `setval` whose arguments name nothing takes back all of them.
    fn sequence_moved(&mut self, node: &NodeEnum) {
        let mut names: Vec<String> = Vec::new();
        let mut anything = false;
        for (n, ..) in node.nodes() {
            match n {
                pg_query::NodeRef::FuncCall(f)
                    if f.funcname.last().and_then(string).is_some_and(|n| n.eq_ignore_ascii_case("setval")) =>
                {
                    let strings =
                        f.args.iter().filter_map(|a| a.node.as_ref()).flat_map(|a| a.nodes()).filter_map(|(n, ..)| {
                            match n {
                                pg_query::NodeRef::AConst(c) => match &c.val {
                                    Some(a_const::Val::Sval(s)) => Some(s.sval.to_lowercase()),
                                    _ => None,
                                },
                                _ => None,
                            }
                        });
                    let before = names.len();
                    names.extend(strings);
                    anything |= names.len() == before;
                }
                pg_query::NodeRef::AlterSeqStmt(a)
                    if a.options
                        .iter()
                        .any(|o| matches!(&o.node, Some(NodeEnum::DefElem(d)) if d.defname == "restart")) =>
                {
                    names.extend(a.sequence.as_ref().map(|r| r.relname.to_lowercase()));
                }
                pg_query::NodeRef::AlterTableStmt(a)
                    if a.cmds.iter().any(|c| match &c.node {
                        Some(NodeEnum::AlterTableCmd(cmd)) => cmd.subtype() == AlterTableType::AtSetIdentity,
                        _ => false,
                    }) =>
                {
                    names.extend(a.relation.as_ref().map(|r| r.relname.to_lowercase()));
                }
                _ => {}
            }
        }
        let hits = std::mem::take(&mut self.explicit_ids);
        for (table, hit) in hits {
            if anything || names.iter().any(|n| n.contains(&table)) {
                self.withdrawn.insert(hit);
            } else {
                self.explicit_ids.push((table, hit));
            }
        }
    }

    fn column_habits(&mut self, col: &ColumnDef, ty: &ColumnType) {
        let at = self.offset(col.location, self.at);
        let name = &col.colname;
        let (id, message) = match ty.name.as_str() {
            "bpchar" => ("prefer-text-over-char", format!("column `{name}` is `{}`", ty.display())),
            "varchar" if !ty.mods.is_empty() => {
                ("prefer-text-over-varchar", format!("column `{name}` is `{}`", ty.display()))
            }
            "timestamp" => ("prefer-timestamptz", format!("column `{name}` is `timestamp` without time zone")),
            "serial" | "bigserial" | "smallserial" => {
                ("prefer-identity-over-serial", format!("column `{name}` is `{}`", ty.display()))
            }
            "json" => ("prefer-jsonb", format!("column `{name}` is `json`")),
            _ => return,
        };
        self.hit_at(id, message, None, at);
    }

    fn create_index(&mut self, i: &pg_query::protobuf::IndexStmt) {
        let Some(rv) = &i.relation else { return };
        let rel = RelName::of(rv);
        let new = self.is_new(&rel);
        if !i.if_not_exists {
            self.hit("non-idempotent", format!("`CREATE INDEX {}` without `IF NOT EXISTS`", i.idxname), None);
        }
        let partitioned = self.partitioned(&rel);
        if i.concurrent {
            self.refused_in_transaction("`CREATE INDEX CONCURRENTLY`");
        }
        // Measured on 15, with `ON ONLY` too: "cannot create index on partitioned table concurrently".
        if i.concurrent && partitioned {
            self.hit(
                "create-index-on-partitioned-table",
                format!(
                    "PostgreSQL refuses `CREATE INDEX CONCURRENTLY` on `{}`, a partitioned table: the statement fails",
                    rel.display()
                ),
                None,
            );
        }
        let index = RelName { schema: rel.schema.clone(), name: i.idxname.clone() };
        // `IF NOT EXISTS` of an index there already (the database's, or one an earlier statement of the run
        // made) builds nothing: the server says "already exists, skipping".
        let made_by_run =
            self.known.index_columns.contains_key(&i.idxname) && !self.known.dropped_indexes.contains(&index.key());
        if i.if_not_exists && !i.idxname.is_empty() && (made_by_run || self.has_db_index(&index)) {
            return;
        }
        if !new {
            self.check_exists(&rel, None);
            if !i.if_not_exists && !i.idxname.is_empty() && self.has_db_index(&index) {
                self.hit(
                    "index-already-exists",
                    format!("index `{}` already exists: the statement fails", index.display()),
                    None,
                );
            }
            // `ON ONLY` a partitioned table builds nothing. Without it, every partition's index is built, each
            // partition locked SHARE as the table is (measured on 15), and `CONCURRENTLY` is no way out.
            if !i.concurrent && rv.inh && partitioned {
                self.hit(
                    "create-index-on-partitioned-table",
                    format!(
                        "`CREATE INDEX` on the partitioned `{}` builds the index of every partition, each locked \
                         SHARE (its writes wait) until the last is built",
                        rel.display()
                    ),
                    Some(&rel),
                );
            } else if !i.concurrent && rv.inh {
                self.hit(
                    "create-index-without-concurrently",
                    format!("`CREATE INDEX` on `{}` blocks its writes while the index builds", rel.display()),
                    Some(&rel),
                );
            }
        }
        self.created_indexes.insert(i.idxname.clone());
        self.known.dropped_indexes.remove(&index.key());
        let columns = i.index_params.iter().filter_map(|p| match &p.node {
            Some(NodeEnum::IndexElem(e)) if !e.name.is_empty() => Some(e.name.clone()),
            _ => None,
        });
        let columns: Vec<String> = columns.collect();
        let table = self.key(&rel);
        let keys = std::mem::take(&mut self.unindexed_keys);
        for (key_table, key_columns, hit) in keys {
            if key_table == table && columns.starts_with(&key_columns) {
                self.withdrawn.insert(hit);
            } else {
                self.unindexed_keys.push((key_table, key_columns, hit));
            }
        }
        self.known.indexed.push((table, columns.clone()));
        self.known.index_columns.insert(i.idxname.clone(), columns);
        if !i.concurrent && rv.inh {
            self.lock_timeout_needed(Some(rel), "SHARE");
        }
    }

    fn drop(&mut self, d: &pg_query::protobuf::DropStmt) {
        let kind = d.remove_type();
        let names: Vec<RelName> = d.objects.iter().filter_map(|o| RelName::of_parts(&name_parts(o))).collect();
        let list = names.iter().map(|n| format!("`{}`", n.display())).collect::<Vec<_>>().join(", ");
        let new = names
            .iter()
            .all(|n| self.is_new(n) || (kind == ObjectType::ObjectIndex && self.created_indexes.contains(&n.name)));
        if !d.missing_ok && matches!(kind, ObjectType::ObjectTable | ObjectType::ObjectIndex) {
            self.hit("non-idempotent", format!("`DROP` of {list} without `IF EXISTS`"), None);
        }
        if d.behavior() == DropBehavior::DropCascade {
            self.hit("cascade", format!("`CASCADE` also drops every object that depends on {list}"), None);
        }
        if kind == ObjectType::ObjectTable {
            for n in &names {
                self.table_dropped(n);
            }
        }
        match kind {
            // With facts, `DROP TABLE IF EXISTS` of tables the database lacks does nothing.
            ObjectType::ObjectTable
                if !new && d.missing_ok && names.iter().all(|n| self.has_table(n) == Some(false)) => {}
            ObjectType::ObjectTable if !new => {
                for n in &names {
                    if !d.missing_ok {
                        self.check_exists(n, None);
                    }
                }
                self.hit("drop-table", format!("`DROP TABLE` removes {list} and every row in it"), None);
                self.lock_timeout_needed(names.first().cloned(), "ACCESS EXCLUSIVE");
            }
            ObjectType::ObjectIndex => {
                // Of indexes the database lacks, it fails: said, and no lock hazard.
                let mut fails = false;
                if !d.missing_ok && !new {
                    for n in &names {
                        fails |= self.check_index_exists(n);
                    }
                }
                if d.concurrent {
                    self.refused_in_transaction("`DROP INDEX CONCURRENTLY`");
                } else if !new && !fails && !self.drops_nothing(d.missing_ok, &names) {
                    let table = names.first().and_then(|n| self.index_table(n));
                    self.hit(
                        "drop-index-without-concurrently",
                        format!("`DROP INDEX` of {list} takes an ACCESS EXCLUSIVE lock on its table"),
                        table.as_ref(),
                    );
                    match table {
                        Some(table) => self.lock_timeout_needed(Some(table), "ACCESS EXCLUSIVE"),
                        None => {
                            let tables = if names.len() == 1 { "the table" } else { "the tables" };
                            self.lock_timeout_wanted(&format!("{tables} of {list}"), "ACCESS EXCLUSIVE");
                        }
                    }
                }
                for n in &names {
                    self.index_dropped(n);
                }
            }
            // `DROP TRIGGER t ON table` (and a policy's, a rule's): the name's last part is the object's, the
            // rest its table's.
            ObjectType::ObjectTrigger | ObjectType::ObjectPolicy | ObjectType::ObjectRule => {
                let table = d.objects.iter().find_map(|o| {
                    let parts = name_parts(o);
                    RelName::of_parts(&parts[..parts.len().saturating_sub(1)])
                });
                self.lock_timeout_needed(table, "ACCESS EXCLUSIVE");
            }
            ObjectType::ObjectSchema => {
                self.hit("drop-schema", format!("`DROP SCHEMA` removes {list} and, with CASCADE, all in it"), None);
                // Without CASCADE it drops only empty schemas, or fails.
                if d.behavior() == DropBehavior::DropCascade {
                    for schema in d.objects.iter().flat_map(name_parts) {
                        self.schema_dropped(&schema);
                    }
                }
            }
            // A type this file renamed aside (Prisma's enum change) is no longer the one code names.
            ObjectType::ObjectType | ObjectType::ObjectDomain
                if !new && !names.iter().all(|n| self.renamed_types.contains(&n.key())) =>
            {
                self.hit("drop-type", format!("`DROP TYPE` removes {list}"), None)
            }
            ObjectType::ObjectView | ObjectType::ObjectMatview if !new => {
                if let [view] = names.as_slice()
                    && kind == ObjectType::ObjectView
                {
                    self.dropped_views.insert(view.key(), self.hits.len());
                }
                self.hit("drop-view", format!("`DROP VIEW` removes {list}: queries on it fail"), None);
                // Measured on 15: ACCESS EXCLUSIVE on the view, which waits for every query on it and
                // holds up the next ones (also when the same file makes it again).
                for view in names.clone() {
                    self.lock_timeout_needed(Some(view), "ACCESS EXCLUSIVE");
                }
            }
            _ => {}
        }
    }

    fn alter_table(&mut self, rel: &RelName, cmd: &AlterTableCmd) {
        use AlterTableType::*;
        let new = self.is_new(rel);
        let column = cmd.name.as_str();
        let def = cmd.def.as_deref().and_then(|d| d.node.as_ref());
        match cmd.subtype() {
            AtAddColumn => {
                let Some(NodeEnum::ColumnDef(col)) = def else { return };
                if let Some(at) = self.renamed_away.remove(&(rel.key(), col.colname.clone())) {
                    self.withdrawn.insert(at);
                }
                self.add_column(rel, col, new, cmd.missing_ok);
            }
            AtDropNotNull | AtSetNotNull if new => {
                let set = cmd.subtype() == AtSetNotNull;
                self.known.not_null.insert((rel.key(), column.to_owned()), set);
            }
            AtDropNotNull => {
                self.known.not_null.insert((rel.key(), column.to_owned()), false);
                self.check_exists(rel, Some(column));
                self.hit(
                    "drop-not-null",
                    format!(
                        "`{}.{column}` may hold NULL from now on: code relying on a value meets NULLs",
                        rel.display()
                    ),
                    None,
                );
            }
            AtSetNotNull => {
                self.check_exists(rel, Some(column));
                let Some(checked) = self.not_null_scans(rel, column, false) else { return };
                let why = if checked {
                    format!(
                        "before PostgreSQL 12 `SET NOT NULL` does not use the validated check: it scans `{}`",
                        rel.display()
                    )
                } else {
                    format!(
                        "`SET NOT NULL` on `{}.{column}` scans the table under an ACCESS EXCLUSIVE lock",
                        rel.display()
                    )
                };
                self.hit("set-not-null", why, Some(rel));
                if self.partitioned(rel) {
                    self.cascade_hit(rel);
                }
            }
            AtDropColumn if !new => {
                // A column this file added holds only what it wrote, and so does one an earlier file added
                // that the database lacks (that file has not run: with facts). One an earlier file added
                // to a database that has it, or without facts, may have been there for years: its values
                // count (a history linted whole). One the database lacks holds nothing (with `IF EXISTS`
                // the statement does nothing, without it fails: said once).
                let added = self.run_owns_column(rel, column);
                let earlier = self.known.added_columns.remove(&(rel.key(), column.to_owned())).is_some() && !added;
                // An earlier statement of the run dropped it (or renamed it away): nothing is left to lose.
                let absent = !added
                    && !earlier
                    && (self.has_column(rel, column) == Some(false) || self.column_taken_away(rel, column));
                // Gone under its name and, when the run renamed it, under the database's.
                if let Some(was) = self.known.renamed_columns.remove(&(rel.key(), column.to_owned())) {
                    self.known.dropped_columns.insert((rel.key(), was));
                }
                if !added {
                    self.known.dropped_columns.insert((rel.key(), column.to_owned()));
                }
                if absent && !cmd.missing_ok {
                    self.check_exists(rel, Some(column));
                }
                if !cmd.missing_ok {
                    self.hit("non-idempotent", format!("`DROP COLUMN {column}` without `IF EXISTS`"), None);
                }
                if cmd.behavior() == DropBehavior::DropCascade {
                    self.hit(
                        "cascade",
                        format!("`CASCADE` also drops what depends on `{column}` (views, constraints)"),
                        None,
                    );
                }
                if !added && !absent {
                    let since = if earlier {
                        " (an earlier file of this run added it: once that file has run, the values written \
                         since are lost)"
                    } else {
                        ""
                    };
                    self.hit(
                        "drop-column",
                        format!("`DROP COLUMN` removes `{}.{column}` and its values{since}", rel.display()),
                        None,
                    );
                }
            }
            AtAddConstraint => {
                let Some(NodeEnum::Constraint(k)) = def else { return };
                self.add_constraint(rel, k, new);
            }
            AtValidateConstraint => {
                if let Some(rule) = self.not_valid_here.remove(&(rel.key(), column.to_owned())) {
                    let within = if self.in_transaction() {
                        "the transaction"
                    } else {
                        "the file `migrate` runs as one transaction"
                    };
                    self.hit(
                        rule,
                        format!(
                            "`VALIDATE CONSTRAINT {column}` runs in {within} that added it `NOT VALID`: the lock taken then \
                             is held through the validation's scan of `{}`, as without `NOT VALID`; validate it in a \
                             transaction (a migration) of its own",
                            rel.display()
                        ),
                        Some(rel),
                    );
                }
                if self.known.unvalidated_checks.remove(&(rel.key(), column.to_owned())) {
                    self.known.checked.insert(rel.key());
                }
                if let Some(columns) = self.known.pending_checks.remove(&(rel.key(), column.to_owned())) {
                    self.known.not_null_checks.entry((rel.key(), column.to_owned())).or_default().extend(columns);
                }
            }
            AtDropConstraint => {
                // A primary key's, unique or exclusion constraint's index goes with it, and has its name.
                let index = self.constraint_index(rel, column);
                if let Some(index) = index {
                    self.index_dropped(&index);
                }
                // A check dropped proves nothing any more, whether the run or the database had it.
                let key = (rel.key(), column.to_owned());
                self.known.not_null_checks.remove(&key);
                self.known.pending_checks.remove(&key);
                self.known.unvalidated_checks.remove(&key);
                self.known.dropped_constraints.insert(key);
            }
            AtAttachPartition | AtDetachPartition => {
                let Some(NodeEnum::PartitionCmd(p)) = def else { return };
                let Some(partition) = p.name.as_ref().map(RelName::of) else { return };
                self.partition_cmd(rel, &partition, cmd.subtype() == AtAttachPartition, p.concurrent);
            }
            AtAlterColumnType if !new => {
                let Some(NodeEnum::ColumnDef(col)) = def else { return };
                self.check_exists(rel, Some(column));
                self.alter_type(rel, column, col);
            }
            AtAlterColumnType => {
                if let Some(NodeEnum::ColumnDef(col)) = def
                    && let Some(ty) = col.type_name.as_ref().and_then(ColumnType::of)
                    && let Some(t) = self.known.tables.get_mut(&self.key(rel))
                {
                    t.columns.insert(column.to_owned(), ty);
                }
            }
            AtSetLogged | AtSetUnLogged if !new => {
                let which = if cmd.subtype() == AtSetLogged { "LOGGED" } else { "UNLOGGED" };
                self.hit("set-logged-unlogged", format!("`SET {which}` rewrites `{}`", rel.display()), Some(rel));
            }
            AtDisableTrig | AtDisableTrigAll | AtDisableTrigUser if !new => {
                let which = match cmd.subtype() {
                    AtDisableTrigAll => "ALL",
                    AtDisableTrigUser => "USER",
                    _ => column,
                };
                let keys = if cmd.subtype() == AtDisableTrigAll {
                    ", foreign key checks included (rows written meanwhile are never checked)"
                } else {
                    ""
                };
                self.hit(
                    "disable-trigger",
                    format!(
                        "`DISABLE TRIGGER {which}` turns off triggers of `{}`{keys} until they are enabled again",
                        rel.display()
                    ),
                    None,
                );
            }
            AtSetTableSpace if !new => {
                self.hit(
                    "set-tablespace",
                    format!("`SET TABLESPACE` copies `{}` under an ACCESS EXCLUSIVE lock", rel.display()),
                    Some(rel),
                );
            }
            _ => {}
        }
    }

    /// `ALTER TABLE rel ATTACH PARTITION partition` (`attach`) or `DETACH PARTITION`.
    fn partition_cmd(&mut self, rel: &RelName, partition: &RelName, attach: bool, concurrent: bool) {
        if attach {
            // A table the run made is empty or filled by it; a check the run added is taken to be the bound's.
            if self.is_new(partition) || self.is_new(rel) || self.known.checked.contains(&partition.key()) {
                return;
            }
            self.check_exists(partition, None);
            self.hit(
                "attach-partition-scan",
                format!(
                    "attaching `{}` to `{}` scans it (and the default partition, if any) under an ACCESS EXCLUSIVE \
                     lock, unless a valid CHECK constraint proves its rows fit the bound",
                    partition.display(),
                    rel.display()
                ),
                Some(partition),
            );
        } else if concurrent {
            self.refused_in_transaction("`DETACH PARTITION ... CONCURRENTLY`");
        } else if self.pg_version >= 14 && !self.is_new(rel) {
            self.hit(
                "detach-partition-without-concurrently",
                format!(
                    "`DETACH PARTITION` of `{}` takes an ACCESS EXCLUSIVE lock on `{}`",
                    partition.display(),
                    rel.display()
                ),
                Some(rel),
            );
        }
    }

    /// Records the foreign keys among a column definition's constraints.
    fn column_foreign_keys(&mut self, rel: &RelName, col: &ColumnDef) {
        for k in col.constraints.iter().filter_map(constraint) {
            self.foreign_key_made(rel, k, Some(&col.colname));
        }
    }

    /// Records `k` when it is a foreign key of `rel` (`column`'s, when it is a column constraint).
    fn foreign_key_made(&mut self, rel: &RelName, k: &Constraint, column: Option<&str>) {
        if k.contype() != ConstrType::ConstrForeign {
            return;
        }
        let Some(references) = k.pktable.as_ref().map(RelName::of) else { return };
        // A key of a new table (in its `CREATE TABLE`, or added to a table made earlier in the run) locks
        // the table it references (SHARE ROW EXCLUSIVE, measured on 15): a busy table keeps the statement
        // waiting, and its writers behind it. (An existing table's own lock is named first.)
        if self.is_new(rel) && references.key() != rel.key() {
            self.lock_timeout_needed(Some(references.clone()), "SHARE ROW EXCLUSIVE");
        }
        let mut columns: Vec<String> = k.fk_attrs.iter().filter_map(string).map(str::to_owned).collect();
        if columns.is_empty() {
            columns.extend(column.map(str::to_owned));
        }
        self.known.foreign_keys.push(KnownForeignKey {
            name: k.conname.clone(),
            table: rel.clone(),
            columns,
            references,
            ref_columns: k.pk_attrs.iter().filter_map(string).map(str::to_owned).collect(),
        });
    }

    /// The table foreign key `name` of `rel` references, when the run made that key or the facts know it
    /// (and the run has not dropped it already): `None` for another constraint, or one lint does not know.
    fn foreign_key_references(&self, rel: &RelName, name: &str) -> Option<RelName> {
        if self.known.dropped_constraints.contains(&(rel.key(), name.to_owned())) {
            return None;
        }
        if let Some(fk) = self.known.foreign_keys.iter().rev().find(|k| k.name == name && k.table.key() == rel.key()) {
            return Some(fk.references.clone());
        }
        let table = self.table_facts(rel)?;
        table.foreign_keys.iter().find(|k| k.referencing && k.name == name).map(|k| k.other.clone())
    }

    /// The other tables of the foreign keys `rel.column` is part of, on either side: changing its type
    /// rebuilds those keys, which locks their tables ACCESS EXCLUSIVE too. The flag says whether one of
    /// them references `rel`: the rebuild may then re-check that table's rows (measured: `int` to `bigint`
    /// of a primary key re-checks the keys referencing it), so `rel` being small does not make it brief.
    fn foreign_key_tables(&self, rel: &RelName, column: &str) -> (Vec<RelName>, bool) {
        let dropped = |table: &RelName, name: &str| {
            !name.is_empty() && self.known.dropped_constraints.contains(&(table.key(), name.to_owned()))
        };
        let mut others: Vec<RelName> = Vec::new();
        let mut referenced = false;
        for fk in &self.known.foreign_keys {
            if dropped(&fk.table, &fk.name) {
                continue;
            }
            if fk.table.key() == rel.key() && fk.columns.iter().any(|c| c == column) {
                others.push(fk.references.clone());
            }
            let ref_columns = if fk.ref_columns.is_empty() {
                self.known.tables.get(&fk.references.key()).map_or(&[][..], |t| &t.primary[..])
            } else {
                &fk.ref_columns[..]
            };
            if fk.references.key() == rel.key() && ref_columns.iter().any(|c| c == column) {
                others.push(fk.table.clone());
                referenced |= fk.table.key() != rel.key();
            }
        }
        if !self.known.tables.contains_key(&self.key(rel))
            && let Some(table) = self.table_facts(rel)
        {
            for fk in &table.foreign_keys {
                let owner = if fk.referencing { rel } else { &fk.other };
                if fk.columns.iter().any(|c| c == column) && !dropped(owner, &fk.name) {
                    others.push(fk.other.clone());
                    referenced |= !fk.referencing;
                }
            }
        }
        let mut seen = HashSet::new();
        others.retain(|o| o.key() != rel.key() && seen.insert(o.key()));
        (others, referenced)
    }

    fn cascade_hit(&mut self, rel: &RelName) {
        self.hit(
            "partitioned-table-cascade",
            format!("`{}` is partitioned: this recurses to every partition, each locked until the end", rel.display()),
            Some(rel),
        );
    }

    fn add_column(&mut self, rel: &RelName, col: &ColumnDef, new: bool, if_not_exists: bool) {
        // The database has it: `IF NOT EXISTS` makes the statement do nothing, and the column is not the
        // run's (an UPDATE of it changes data).
        if if_not_exists && !new && self.has_column(rel, &col.colname) == Some(true) {
            return;
        }
        let at = self.offset(col.location, self.at);
        self.known.not_null.insert((rel.key(), col.colname.clone()), declares_not_null(col));
        self.column_foreign_keys(rel, col);
        let ty = col.type_name.as_ref().and_then(ColumnType::of);
        if let Some(ty) = &ty {
            self.column_habits(col, ty);
            if let Some(t) = self.known.tables.get_mut(&self.key(rel)) {
                t.columns.insert(col.colname.clone(), ty.clone());
            }
        }
        if new {
            return;
        }
        self.known.added_columns.insert((rel.key(), col.colname.clone()), self.known.file);
        self.known.dropped_columns.remove(&(rel.key(), col.colname.clone()));
        self.check_exists(rel, None);
        if !if_not_exists {
            self.hit("non-idempotent", format!("`ADD COLUMN {}` without `IF NOT EXISTS`", col.colname), None);
        }
        let constraints: Vec<&Constraint> = col.constraints.iter().filter_map(constraint).collect();
        let default = constraints.iter().find(|k| k.contype() == ConstrType::ConstrDefault);
        let serial = ty.as_ref().is_some_and(ColumnType::is_serial);
        let identity = constraints.iter().any(|k| k.contype() == ConstrType::ConstrIdentity);
        // A virtual generated column (PostgreSQL 18, the default there without `STORED`) is computed as it
        // is read: adding one writes nothing.
        let stored = constraints.iter().any(|k| k.contype() == ConstrType::ConstrGenerated && k.generated_kind != "v");
        let null_default = default.is_some_and(
            |k| matches!(k.raw_expr.as_deref().and_then(|e| e.node.as_ref()), Some(NodeEnum::AConst(c)) if c.isnull),
        );
        // A volatile built-in, or a function the run made or the database has that is volatile; else one
        // lint knows nothing of, which may be (a function is volatile unless it says otherwise).
        let called = default.and_then(|k| k.raw_expr.as_deref()).map(calls).unwrap_or_default();
        let volatility: Vec<(&str, Option<bool>)> =
            called.iter().map(|f| (f.name.as_str(), self.function_volatile(f))).collect();
        let volatile = volatility.iter().find(|(_, v)| *v == Some(true)).map(|(f, _)| *f);
        let unknown = volatility.iter().find(|(_, v)| v.is_none()).map(|(f, _)| *f);
        let name = &col.colname;
        let rewrite = if let Some(f) = volatile {
            Some(format!(
                "the default `{f}()` is volatile: adding `{name}` fills every row, rewriting `{}`",
                rel.display()
            ))
        } else if serial || identity {
            Some(format!("`{name}` takes a sequence's next value in every row: adding it rewrites `{}`", rel.display()))
        } else if stored {
            Some(format!(
                "the stored generated column `{name}` is computed for every row: `{}` is rewritten",
                rel.display()
            ))
        } else if default.is_some() && !null_default && self.pg_version < 11 {
            Some(format!(
                "before PostgreSQL 11 any default rewrites the table: adding `{name}` rewrites `{}`",
                rel.display()
            ))
        } else {
            None
        };
        if let Some(message) = rewrite {
            self.hit_at("add-column-volatile-default", message, Some(rel), at);
        } else if let Some(f) = unknown {
            let know = if self.facts.is_some() {
                "the database has no function of that name, nor does the run make one"
            } else {
                "lint with `-d` to know"
            };
            self.hit_at(
                "add-column-volatile-default",
                format!(
                    "the default calls `{f}()`, whose volatility lint does not know ({know}): a function is VOLATILE \
                 unless declared otherwise, and then adding `{name}` fills every row, rewriting `{}`",
                    rel.display()
                ),
                Some(rel),
                at,
            );
            if let Some(last) = self.hits.last_mut() {
                last.level = Level::Warning;
            }
        } else if let Some(domain) = domain_type(col).filter(|d| self.constrained_domain(d)) {
            let message = format!(
                "`{name}` is of the domain `{}`, which has constraints: adding it checks every row of `{}` against \
                 them, rewriting the table",
                domain.display(),
                rel.display()
            );
            self.hit_at("add-column-constrained-domain", message, Some(rel), at);
        }
        let not_null = col.is_not_null || constraints.iter().any(|k| k.contype() == ConstrType::ConstrNotnull);
        if not_null && (default.is_none() || null_default) && !serial && !identity && !stored {
            self.hit_at(
                "add-column-not-null-without-default",
                format!("`{name}` is NOT NULL with no default: PostgreSQL refuses it if `{}` has rows", rel.display()),
                Some(rel),
                at,
            );
        }
        for k in &constraints {
            match k.contype() {
                ConstrType::ConstrPrimary => self.hit_at(
                    "add-primary-key-without-using-index",
                    format!("the primary key on `{name}` builds its index under an ACCESS EXCLUSIVE lock"),
                    Some(rel),
                    at,
                ),
                ConstrType::ConstrUnique => self.hit_at(
                    "add-unique-without-using-index",
                    format!("`UNIQUE` on `{name}` builds its index under an ACCESS EXCLUSIVE lock"),
                    Some(rel),
                    at,
                ),
                // Inline, a constraint has no `NOT VALID` form: it is verified on every row at once.
                ConstrType::ConstrCheck if !k.skip_validation => self.hit_at(
                    "add-check-without-not-valid",
                    format!(
                        "the check on the new column `{name}` is verified on every row of `{}` under an ACCESS \
                         EXCLUSIVE lock",
                        rel.display()
                    ),
                    Some(rel),
                    self.offset(k.location, at),
                ),
                ConstrType::ConstrForeign if !k.skip_validation => {
                    let locked = locked_tables(rel, k.pktable.as_ref().map(RelName::of).as_ref());
                    self.hit_at(
                        "add-foreign-key-without-not-valid",
                        format!(
                            "the foreign key on the new column `{name}` is verified at once, scanning `{}` while \
                             {locked} locked against writes",
                            rel.display(),
                        ),
                        Some(rel),
                        self.offset(k.location, at),
                    );
                }
                _ => {}
            }
        }
    }

    fn add_constraint(&mut self, rel: &RelName, k: &Constraint, new: bool) {
        self.foreign_key_made(rel, k, None);
        if k.contype() == ConstrType::ConstrCheck {
            if k.skip_validation {
                self.known.unvalidated_checks.insert((rel.key(), k.conname.clone()));
            } else {
                self.known.checked.insert(rel.key());
            }
        }
        let at = self.offset(k.location, self.at);
        let name = if k.conname.is_empty() { String::new() } else { format!(" `{}`", k.conname) };
        // A `CHECK (col IS NOT NULL)` lets a later `SET NOT NULL` skip its scan once validated.
        let proves = k.raw_expr.as_deref().map(not_null_check_columns).unwrap_or_default();
        if k.contype() == ConstrType::ConstrCheck && !proves.is_empty() {
            let checks =
                if k.skip_validation { &mut self.known.pending_checks } else { &mut self.known.not_null_checks };
            // Unnamed checks share the empty name: none is forgotten.
            checks.entry((rel.key(), k.conname.clone())).or_default().extend(proves);
        }
        if new {
            return;
        }
        // Validated in the same transaction, the constraint holds its lock through the scan as if it had
        // been added without `NOT VALID`: `migrate` runs each file in one transaction.
        let rule = match k.contype() {
            ConstrType::ConstrCheck => Some("add-check-without-not-valid"),
            ConstrType::ConstrForeign => Some("add-foreign-key-without-not-valid"),
            _ => None,
        };
        if let Some(rule) = rule.filter(|_| k.skip_validation && !k.conname.is_empty())
            && (self.in_transaction() || self.options.assume_lock_timeout)
        {
            self.not_valid_here.insert((rel.key(), k.conname.clone()), rule);
        }
        self.check_exists(rel, None);
        match k.contype() {
            ConstrType::ConstrCheck if !k.skip_validation => self.hit_at(
                "add-check-without-not-valid",
                format!(
                    "the check{name} is verified on every row of `{}` under an ACCESS EXCLUSIVE lock",
                    rel.display()
                ),
                Some(rel),
                at,
            ),
            ConstrType::ConstrForeign => {
                let referenced = k.pktable.as_ref().map(RelName::of);
                if !k.skip_validation {
                    let locked = locked_tables(rel, referenced.as_ref());
                    self.hit_at(
                        "add-foreign-key-without-not-valid",
                        format!(
                            "the foreign key{name} is verified on every row of `{}` while {locked} locked against writes",
                            rel.display(),
                        ),
                        Some(rel),
                        at,
                    );
                }
                let columns: Vec<String> = k.fk_attrs.iter().filter_map(string).map(str::to_owned).collect();
                if let Some(table) = self.table_facts(rel)
                    && !columns.is_empty()
                    && !table.has_index_leading(&columns)
                {
                    self.hit_at(
                        "foreign-key-without-index",
                        format!(
                            "no index of `{}` starts with ({}): deletes on the referenced table scan it",
                            rel.display(),
                            columns.join(", ")
                        ),
                        None,
                        at,
                    );
                }
            }
            ConstrType::ConstrPrimary if !k.indexname.is_empty() => {
                self.primary_key_using_index(rel, &k.indexname, at);
                return;
            }
            ConstrType::ConstrPrimary if k.indexname.is_empty() => self.hit_at(
                "add-primary-key-without-using-index",
                format!("the primary key of `{}` builds its index under an ACCESS EXCLUSIVE lock", rel.display()),
                Some(rel),
                at,
            ),
            ConstrType::ConstrUnique if k.indexname.is_empty() => self.hit_at(
                "add-unique-without-using-index",
                format!("the unique constraint{name} builds its index under an ACCESS EXCLUSIVE lock"),
                Some(rel),
                at,
            ),
            ConstrType::ConstrExclusion => self.hit_at(
                "add-exclusion-constraint",
                format!(
                    "the exclusion constraint{name} builds its index on `{}` under an ACCESS EXCLUSIVE lock",
                    rel.display()
                ),
                Some(rel),
                at,
            ),
            _ => return,
        }
        if self.partitioned(rel) && !k.skip_validation {
            self.cascade_hit(rel);
        }
    }

    /// Whether making `rel.column` NOT NULL scans the table: `Some(checked)` unless it is NOT NULL already
    /// (made so by the run, or in the database; when neither says, as `unknown_not_null` takes it), or a
    /// validated `CHECK (col IS NOT NULL)` proves it on PostgreSQL 12 and later; `checked` says whether such
    /// a check exists (before 12 it does not spare the scan). The column is NOT NULL from here on.
    fn not_null_scans(&mut self, rel: &RelName, column: &str, unknown_not_null: bool) -> Option<bool> {
        let key = (rel.key(), column.to_owned());
        let facts = self.table_facts(rel);
        let db_column = self.db_column(rel, column);
        let already = self.known.not_null.get(&key).copied().unwrap_or_else(|| match facts {
            Some(t) => t.not_null.contains(db_column),
            None => unknown_not_null,
        });
        let checked =
            self.known.not_null_checks.iter().any(|((t, _), columns)| *t == key.0 && columns.contains(&key.1))
                || facts.is_some_and(|t| {
                    t.not_null_checks.iter().any(|(name, columns)| {
                        columns.iter().any(|c| c == db_column)
                            && !self.known.dropped_constraints.contains(&(key.0.clone(), name.clone()))
                    })
                });
        self.known.not_null.insert(key, true);
        (!(already || (checked && self.pg_version >= 12))).then_some(checked)
    }

    /// `ADD PRIMARY KEY USING INDEX`: the index is built already, but a column of it that may hold NULL is
    /// made `NOT NULL` as `SET NOT NULL` makes it, scanning the table under the `ACCESS EXCLUSIVE` lock
    /// (unless a validated `CHECK (col IS NOT NULL)` proves it, from PostgreSQL 12).
    fn primary_key_using_index(&mut self, rel: &RelName, index: &str, at: usize) {
        let columns = self.known.index_columns.get(index).cloned().or_else(|| {
            let key = RelName { schema: rel.schema.clone(), name: index.to_owned() }.key();
            self.facts.and_then(|f| f.index_columns.get(&key)).cloned()
        });
        let Some(columns) = columns else { return };
        // Nothing known of a column (no facts of its table): no finding.
        let nullable: Vec<&String> = columns.iter().filter(|c| self.not_null_scans(rel, c, true).is_some()).collect();
        if nullable.is_empty() {
            return;
        }
        self.hit_at(
            "set-not-null",
            format!(
                "`ADD PRIMARY KEY USING INDEX {index}` makes {} of `{}` NOT NULL, which scans the table under its \
                 ACCESS EXCLUSIVE lock",
                nullable.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
                rel.display()
            ),
            Some(rel),
            at,
        );
    }

    fn alter_type(&mut self, rel: &RelName, column: &str, col: &ColumnDef) {
        let Some(type_name) = &col.type_name else { return };
        let Some(to) = ColumnType::of(type_name) else { return };
        // On the line of the new type: an ALTER TABLE may change many columns.
        let saved = self.at;
        self.at = self.offset(type_name.location, self.at);
        let from = self.column_type(rel, column);
        // `USING col` or `USING col::newtype` (as Django writes every type change) is the conversion
        // PostgreSQL makes without `USING`: a binary-coercible change still rewrites nothing.
        let using = col.raw_default.as_deref().is_some_and(|e| !same_conversion(e, column, &to));
        let target = format!("`{}.{column}` to `{}`", rel.display(), to.display());
        let change = match &from {
            Some(_) if using => Some(TypeChange::Rewrite),
            Some(from) => Some(types::change(from, &to)),
            None => None,
        };
        let from_text = from.as_ref().map(|f| format!(" from `{}`", f.display())).unwrap_or_default();
        let (others, referenced) = self.foreign_key_tables(rel, column);
        // Whose size says how long the locks last: not only `rel`'s when a table referencing it is re-checked.
        let sized = (!referenced).then_some(rel);
        let also = match others.len() {
            0 => String::new(),
            n => format!(
                "; until it ends it also holds an ACCESS EXCLUSIVE lock on {}, to rebuild the foreign key{} \
                 between them",
                others.iter().map(|o| format!("`{}`", o.display())).collect::<Vec<_>>().join(", "),
                if n == 1 { "" } else { "s" }
            ),
        };
        match change {
            Some(TypeChange::Free) => {}
            Some(TypeChange::TimeZone) => self.hit_level(
                "alter-column-type",
                Level::Warning,
                format!(
                    "changing {target}{from_text} rewrites the table unless the session's TimeZone is UTC (PostgreSQL 12+){also}"
                ),
                sized,
            ),
            Some(TypeChange::Rewrite) => self.hit(
                "alter-column-type",
                format!("changing {target}{from_text} rewrites the table and its indexes{also}"),
                sized,
            ),
            Some(TypeChange::Narrowing) => self.hit(
                "alter-column-type-narrowing",
                format!("changing {target}{from_text} can fail on values that do not fit, or round them; it rewrites the table{also}"),
                sized,
            ),
            None if types::may_be_free(&to) && !using => self.hit_level(
                "alter-column-type",
                Level::Warning,
                format!(
                    "changing {target} rewrites the table unless the column's current type is binary-coercible to it \
                     (lint with `-d` to know){also}"
                ),
                sized,
            ),
            None => self.hit(
                "alter-column-type",
                format!("changing {target} rewrites the table and its indexes{also}"),
                sized,
            ),
        }
        if change != Some(TypeChange::Free) && self.partitioned(rel) {
            self.cascade_hit(rel);
        }
        self.at = saved;
        match self.known.tables.get_mut(&self.key(rel)) {
            Some(t) => {
                t.columns.insert(column.to_owned(), to);
            }
            None => {
                self.known.retyped.insert((self.key(rel), column.to_owned()), to);
            }
        }
    }
}

/// A `WHERE` that holds for every row: `true`, or two equal constants compared with `=` (`1 = 1`).
fn always_true(node: &pg_query::protobuf::Node) -> bool {
    match &node.node {
        Some(NodeEnum::AConst(c)) => matches!(&c.val, Some(a_const::Val::Boolval(b)) if b.boolval),
        Some(NodeEnum::TypeCast(t)) => t.arg.as_deref().is_some_and(always_true),
        Some(NodeEnum::AExpr(e)) => {
            let equals = e.name.iter().filter_map(string).eq(["="]);
            let constant =
                |side: &Option<Box<pg_query::protobuf::Node>>| match side.as_deref().and_then(|n| n.node.as_ref()) {
                    Some(NodeEnum::AConst(c)) if !c.isnull => c.val.clone(),
                    _ => None,
                };
            equals && constant(&e.lexpr).is_some() && constant(&e.lexpr) == constant(&e.rexpr)
        }
        _ => false,
    }
}

fn constraint(node: &pg_query::protobuf::Node) -> Option<&Constraint> {
    match &node.node {
        Some(NodeEnum::Constraint(k)) => Some(k),
        _ => None,
    }
}

/// The columns a check's expression proves NOT NULL: the column of a `col IS NOT NULL` expression, and
/// those of each of an `AND`'s terms (as PostgreSQL's `predicate_implied_by` reads them).
pub fn not_null_check_columns(expr: &pg_query::protobuf::Node) -> Vec<String> {
    if let Some(NodeEnum::BoolExpr(b)) = &expr.node
        && b.boolop() == pg_query::protobuf::BoolExprType::AndExpr
    {
        return b.args.iter().flat_map(not_null_check_columns).collect();
    }
    let Some(NodeEnum::NullTest(test)) = &expr.node else { return Vec::new() };
    if test.nulltesttype() != pg_query::protobuf::NullTestType::IsNotNull {
        return Vec::new();
    }
    let Some(NodeEnum::ColumnRef(c)) = test.arg.as_deref().and_then(|a| a.node.as_ref()) else { return Vec::new() };
    c.fields.last().and_then(string).map(str::to_owned).into_iter().collect()
}

/// Whether a `USING` expression is the column itself, or the column cast to `to` (the new type).
fn same_conversion(expr: &pg_query::protobuf::Node, column: &str, to: &ColumnType) -> bool {
    let is_column = |n: &pg_query::protobuf::Node| match &n.node {
        Some(NodeEnum::ColumnRef(c)) => c.fields.len() == 1 && c.fields.last().and_then(string) == Some(column),
        _ => false,
    };
    match &expr.node {
        Some(NodeEnum::TypeCast(cast)) => {
            cast.arg.as_deref().is_some_and(is_column)
                && cast.type_name.as_ref().and_then(ColumnType::of).is_some_and(|t| &t == to)
        }
        _ => is_column(expr),
    }
}

/// A `SELECT set_config('lock_timeout', value, is_local)`: whether it sets a timeout (not `0`) and whether
/// for the transaction only.
fn set_config_lock_timeout(sel: &pg_query::protobuf::SelectStmt) -> Option<(bool, bool)> {
    let [target] = sel.target_list.as_slice() else { return None };
    let Some(NodeEnum::ResTarget(r)) = &target.node else { return None };
    let Some(NodeEnum::FuncCall(f)) = r.val.as_deref().and_then(|v| v.node.as_ref()) else { return None };
    if f.funcname.last().and_then(string) != Some("set_config") {
        return None;
    }
    let text = |n: &pg_query::protobuf::Node| match &n.node {
        Some(NodeEnum::AConst(c)) => match &c.val {
            Some(a_const::Val::Sval(s)) => Some(s.sval.clone()),
            Some(a_const::Val::Ival(i)) => Some(i.ival.to_string()),
            Some(a_const::Val::Boolval(b)) => Some(b.boolval.to_string()),
            _ => None,
        },
        Some(NodeEnum::TypeCast(c)) => match c.arg.as_deref().and_then(|a| a.node.as_ref()) {
            Some(NodeEnum::AConst(a)) => match &a.val {
                Some(a_const::Val::Sval(s)) => Some(s.sval.clone()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    };
    let [name, value, local] = f.args.as_slice() else { return None };
    if !text(name)?.eq_ignore_ascii_case("lock_timeout") {
        return None;
    }
    let value = text(value)?;
    let local = matches!(text(local)?.as_str(), "true" | "t" | "on");
    Some((value.trim() != "0", local))
}

/// The columns an `UPDATE` (or a MERGE's `UPDATE` action) sets, as its `SET` list (`target_list`) names
/// them (`SET (a, b) = ...` names both).
pub fn set_columns(target_list: &[pg_query::protobuf::Node]) -> Vec<&str> {
    target_list
        .iter()
        .filter_map(|t| match &t.node {
            Some(NodeEnum::ResTarget(r)) => Some(r.name.as_str()),
            _ => None,
        })
        .collect()
}

/// The oldest PostgreSQL a statement's syntax runs on, when it is newer than 11, with what needs it.
fn needs_version(node: &NodeEnum) -> Option<(u32, &'static str)> {
    let mut needs: Option<(u32, &'static str)> = None;
    let mut need = |version: u32, what: &'static str| {
        if needs.is_none_or(|(v, _)| version > v) {
            needs = Some((version, what));
        }
    };
    match node {
        NodeEnum::MergeStmt(m) => {
            need(15, "`MERGE`");
            if m.returning_clause.as_ref().is_some_and(|r| !r.exprs.is_empty()) {
                need(17, "`MERGE ... RETURNING`");
            }
            let by_source = pg_query::protobuf::MergeMatchKind::MergeWhenNotMatchedBySource as i32;
            if m.merge_when_clauses
                .iter()
                .any(|c| matches!(&c.node, Some(NodeEnum::MergeWhenClause(w)) if w.match_kind == by_source))
            {
                need(17, "`WHEN NOT MATCHED BY SOURCE`");
            }
        }
        NodeEnum::ReindexStmt(r)
            if r.params
                .iter()
                .any(|p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname == "concurrently")) =>
        {
            need(12, "`REINDEX CONCURRENTLY`")
        }
        NodeEnum::CreateTrigStmt(t) if t.replace => need(14, "`CREATE OR REPLACE TRIGGER`"),
        NodeEnum::DropdbStmt(d)
            if d.options.iter().any(|o| matches!(&o.node, Some(NodeEnum::DefElem(e)) if e.defname == "force")) =>
        {
            need(13, "`DROP DATABASE ... WITH (FORCE)`")
        }
        NodeEnum::IndexStmt(i) if i.nulls_not_distinct => need(15, "`NULLS NOT DISTINCT`"),
        NodeEnum::AlterTableStmt(a) => {
            for cmd in a.cmds.iter().filter_map(|c| match &c.node {
                Some(NodeEnum::AlterTableCmd(cmd)) => Some(cmd),
                _ => None,
            }) {
                match cmd.subtype() {
                    AlterTableType::AtDetachPartition
                        if matches!(
                            cmd.def.as_deref().and_then(|d| d.node.as_ref()),
                            Some(NodeEnum::PartitionCmd(p)) if p.concurrent
                        ) =>
                    {
                        need(14, "`DETACH PARTITION ... CONCURRENTLY`")
                    }
                    AlterTableType::AtDetachPartitionFinalize => need(14, "`DETACH PARTITION ... FINALIZE`"),
                    AlterTableType::AtSetCompression => need(14, "`SET COMPRESSION`"),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    let tree = json_tree(node);
    // SQL/JSON, each a syntax error (or an unknown function) on the version before (measured on 15 to
    // 17). `JSON(...)` is left out: 16 reads it as a cast.
    const SQL_JSON: [(&str, u32, &str); 10] = [
        ("JsonIsPredicate", 16, "`IS JSON`"),
        ("JsonObjectConstructor", 16, "`JSON_OBJECT(key: value)`"),
        ("JsonArrayConstructor", 16, "`JSON_ARRAY`"),
        ("JsonArrayQueryConstructor", 16, "`JSON_ARRAY(query)`"),
        ("JsonObjectAgg", 16, "`JSON_OBJECTAGG`"),
        ("JsonArrayAgg", 16, "`JSON_ARRAYAGG`"),
        ("JsonTable", 17, "`JSON_TABLE`"),
        ("JsonFuncExpr", 17, "`JSON_VALUE`, `JSON_QUERY` or `JSON_EXISTS`"),
        ("JsonScalarExpr", 17, "`JSON_SCALAR`"),
        ("JsonSerializeExpr", 17, "`JSON_SERIALIZE`"),
    ];
    for (kind, version, what) in SQL_JSON {
        if !tree_nodes(&tree, kind).is_empty() {
            need(version, what);
        }
    }
    for k in tree_nodes(&tree, "Constraint") {
        if k["nulls_not_distinct"].as_bool() == Some(true) {
            need(15, "`NULLS NOT DISTINCT`");
        }
        if k["contype"].as_i64() == Some(ConstrType::ConstrGenerated as i64) {
            match k["generated_kind"].as_str() {
                Some("v") => need(18, "a virtual generated column (`GENERATED ALWAYS AS (...)` without `STORED`)"),
                _ => need(12, "a stored generated column"),
            }
        }
    }
    needs
}

/// A statement's parse tree in its JSON form, to find nodes in with [`tree_nodes`]: the parse tree's own
/// walk (`nodes()`) leaves parts of a tree out, such as an `INSERT`'s `VALUES` and a column's constraints.
fn json_tree(node: &NodeEnum) -> serde_json::Value {
    serde_json::to_value(node).unwrap_or_default()
}

/// Every node of kind `kind` (the parser's name, as `AConst`) in `tree` ([`json_tree`]).
fn tree_nodes<'a>(tree: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    fn walk<'a>(value: &'a serde_json::Value, kind: &str, found: &mut Vec<&'a serde_json::Value>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    if key == kind {
                        found.push(v);
                    }
                    walk(v, kind, found);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, kind, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(tree, kind, &mut found);
    found
}

/// The functions an expression calls, as it names them, at any depth: inside every kind of node
/// (`ARRAY[...]`, `ROW(...)`, a subquery), which the parse tree's own walk does not all reach.
fn calls(expr: &pg_query::protobuf::Node) -> Vec<RelName> {
    let Some(node) = expr.node.as_ref() else { return Vec::new() };
    let tree = json_tree(node);
    tree_nodes(&tree, "FuncCall")
        .iter()
        .filter_map(|f| {
            let parts: Vec<String> = f["funcname"]
                .as_array()?
                .iter()
                .filter_map(|n| n["node"]["String"]["sval"].as_str().map(str::to_owned))
                .collect();
            RelName::of_parts(&parts)
        })
        .collect()
}

/// The functions the defaults of the columns an `ALTER TABLE` adds call: what the facts read the
/// volatility of.
pub fn default_calls(node: &NodeEnum) -> Vec<String> {
    let mut found = Vec::new();
    for col in added_columns(node) {
        for k in col.constraints.iter().filter_map(constraint) {
            if k.contype() == ConstrType::ConstrDefault
                && let Some(e) = k.raw_expr.as_deref()
            {
                found.extend(calls(e).into_iter().map(|f| f.name));
            }
        }
    }
    found
}

/// The columns an `ALTER TABLE` adds.
fn added_columns(node: &NodeEnum) -> Vec<&ColumnDef> {
    let NodeEnum::AlterTableStmt(a) = node else { return Vec::new() };
    a.cmds
        .iter()
        .filter_map(|c| match &c.node {
            Some(NodeEnum::AlterTableCmd(cmd)) if cmd.subtype() == AlterTableType::AtAddColumn => {
                match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                    Some(NodeEnum::ColumnDef(col)) => Some(col.as_ref()),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect()
}

/// The types of the columns an `ALTER TABLE` adds that may be domains: what the facts read the
/// constraints of.
pub fn added_column_types(node: &NodeEnum) -> Vec<RelName> {
    added_columns(node).into_iter().filter_map(domain_type).collect()
}

/// A column's type, when it may be a domain: not an array (adding an array of a domain checks nothing)
/// and not one of `pg_catalog`'s (the parser qualifies the SQL standard's types so).
fn domain_type(col: &ColumnDef) -> Option<RelName> {
    let ty = col.type_name.as_ref().filter(|t| t.array_bounds.is_empty())?;
    RelName::of_names(&ty.names).filter(|r| r.schema.as_deref() != Some("pg_catalog"))
}

/// A `CREATE FUNCTION`'s name (without schema) and whether it is volatile: what it says, or volatile,
/// PostgreSQL's default.
fn function_volatility(f: &pg_query::protobuf::CreateFunctionStmt) -> Option<(String, bool)> {
    let name = f.funcname.last().and_then(string)?.to_owned();
    let said = f.options.iter().find_map(|o| match &o.node {
        Some(NodeEnum::DefElem(d)) if d.defname == "volatility" => match d.arg.as_deref().and_then(|a| a.node.as_ref())
        {
            Some(NodeEnum::String(v)) => Some(v.sval.clone()),
            _ => None,
        },
        _ => None,
    });
    Some((name, said.is_none_or(|v| v == "volatile")))
}

/// The enum type to which a statement adds a value.
pub fn enum_type(node: &NodeEnum) -> Option<RelName> {
    let NodeEnum::AlterEnumStmt(e) = node else { return None };
    RelName::of_names(&e.type_name)
}

/// The tables (`false`) and indexes (`true`) a statement names.
pub fn names(node: &NodeEnum) -> Vec<(RelName, bool)> {
    let mut found: Vec<(RelName, bool)> = node
        .nodes()
        .into_iter()
        .filter_map(|(n, ..)| match n {
            pg_query::NodeRef::RangeVar(rv) => Some((RelName::of(rv), false)),
            _ => None,
        })
        .collect();
    match node {
        NodeEnum::ReindexStmt(r) if r.kind() == ReindexObjectType::ReindexObjectIndex => {
            return r.relation.iter().map(|rv| (RelName::of(rv), true)).collect();
        }
        NodeEnum::DropStmt(d) if d.remove_type() == ObjectType::ObjectIndex => {
            found.extend(d.objects.iter().filter_map(|o| RelName::of_parts(&name_parts(o))).map(|n| (n, true)));
        }
        // A dropped table's name is a list of strings, not a `RangeVar`.
        NodeEnum::DropStmt(d)
            if matches!(
                d.remove_type(),
                ObjectType::ObjectTable
                    | ObjectType::ObjectView
                    | ObjectType::ObjectMatview
                    | ObjectType::ObjectForeignTable
            ) =>
        {
            found.extend(d.objects.iter().filter_map(|o| RelName::of_parts(&name_parts(o))).map(|n| (n, false)));
        }
        _ => {}
    }
    // The parse tree's walk does not reach the table (or index) of a `RENAME` or `SET SCHEMA`.
    let relation = match node {
        NodeEnum::RenameStmt(r) => r.relation.as_ref().map(|rv| (rv, r.rename_type() == ObjectType::ObjectIndex)),
        NodeEnum::AlterObjectSchemaStmt(a) => a.relation.as_ref().map(|rv| (rv, false)),
        _ => None,
    };
    if let Some((rel, is_index)) = relation.map(|(rv, is_index)| (RelName::of(rv), is_index))
        && !found.iter().any(|(f, _)| f.key() == rel.key())
    {
        found.push((rel, is_index));
    }
    // Nor the partition an `ATTACH PARTITION` or `DETACH PARTITION` names, nor the index of a key made
    // `USING INDEX` (in the table's schema).
    if let NodeEnum::AlterTableStmt(a) = node {
        for cmd in &a.cmds {
            let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node else { continue };
            if let Some(k) = cmd.def.as_deref().and_then(constraint)
                && !k.indexname.is_empty()
            {
                let schema = a.relation.as_ref().and_then(|r| (!r.schemaname.is_empty()).then(|| r.schemaname.clone()));
                found.push((RelName { schema, name: k.indexname.clone() }, true));
            }
            let Some(NodeEnum::PartitionCmd(p)) = cmd.def.as_deref().and_then(|d| d.node.as_ref()) else { continue };
            if let Some(rel) = p.name.as_ref().map(RelName::of)
                && !found.iter().any(|(f, _)| f.key() == rel.key())
            {
                found.push((rel, false));
            }
        }
    }
    // `ALTER INDEX` names indexes only.
    if let NodeEnum::AlterTableStmt(a) = node
        && a.objtype() == ObjectType::ObjectIndex
    {
        for (_, is_index) in &mut found {
            *is_index = true;
        }
    }
    if let NodeEnum::IndexStmt(i) = node
        && !i.idxname.is_empty()
    {
        let schema = i.relation.as_ref().and_then(|r| (!r.schemaname.is_empty()).then(|| r.schemaname.clone()));
        found.push((RelName { schema, name: i.idxname.clone() }, true));
    }
    found
}
