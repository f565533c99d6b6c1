//! What a statement is, read from PostgreSQL's own parse tree (`pg_query`) before it runs: whether it
//! can run inside the rehearsal's transaction, what data it can lose (so that the values are counted
//! first), and which tables it rewrites or scans (so that a big one is not rewritten on a live database).
//!
//! Pure: no server. Names stay as the statement wrote them (quoted for SQL), so that the server resolves
//! them through the same `search_path` as the statement.

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableType, ConstrType, DropBehavior, ObjectType, ReindexObjectType, TransactionStmtKind, VariableSetKind,
};

use crate::sql::quote_ident;

/// How the rehearsal treats a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// It runs inside the transaction.
    Runs,
    /// It cannot run inside a transaction (or would undo the rehearsal's safety): not run, for this reason.
    NotRun(String),
    /// BEGIN, COMMIT, ROLLBACK and the like: the rehearsal is one transaction, so they are skipped.
    TransactionControl,
}

/// Something a statement does that the rehearsal measures around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// `ALTER TABLE table DROP COLUMN column`: its non-null values are lost.
    DropColumn { table: String, column: String },
    /// The same inside a `DO` block, whose branches may not run: lost when the column is gone after it.
    DropColumnIfGone { table: String, column: String },
    /// `ALTER TYPE type DROP ATTRIBUTE attribute` of a composite type: its non-null values in every
    /// column of the type (or of a domain over it, or an array of it) are lost.
    DropAttribute { type_name: String, attribute: String },
    /// `DROP TABLE tables` or `DROP SCHEMA schemas`: the rows of every table it drops (itself, and
    /// through CASCADE the tables of a schema, partitions, inheritance children) are lost, and the values
    /// of the columns CASCADE drops from other tables (of a type the schema holds). `DROP TYPE`, `DROP
    /// DOMAIN` (`types`) and `DROP EXTENSION` (`extensions`) with CASCADE: the values of the columns of
    /// those types (an enum, a domain, `citext`, PostGIS's `geometry`), and the rows of the tables it
    /// drops (typed tables).
    Drop { tables: Vec<String>, schemas: Vec<String>, types: Vec<String>, extensions: Vec<String> },
    /// `DELETE FROM table`: its rows, and those the referential actions of foreign keys delete or set.
    Delete { table: String },
    /// `UPDATE table SET columns`: the rows it changes, and those the referential actions of foreign keys
    /// change.
    Update { table: String, columns: Vec<String> },
    /// `TRUNCATE table` (`cascade`: and the tables that reference it).
    Truncate { table: String, cascade: bool },
    /// The same inside a `DO` block, whose branches may not run: lost when the table was emptied (a new
    /// file node, as `TRUNCATE` gives) by the block.
    TruncateIfRun { table: String, cascade: bool },
    /// `ALTER TABLE table ALTER COLUMN column TYPE ...`: the values the change alters; `length` is the
    /// new type's length when it is `varchar(n)` or `char(n)`.
    AlterType { table: String, column: String, length: Option<i32> },
    /// `ALTER TABLE table ALTER COLUMN column SET NOT NULL`.
    SetNotNull { table: String, column: String },
    /// A unique index or constraint on plain `columns` of `table`.
    Unique { table: String, columns: Vec<String> },
    /// It rewrites or scans `table` (`what` says how), which takes as long as the table is big.
    Scans { table: String, what: &'static str },
    /// `ADD COLUMN` whose default calls `functions`: it rewrites `table` when one of them is volatile,
    /// which only the server's catalog says.
    DefaultCalls { table: String, functions: Vec<String> },
    /// `ADD CONSTRAINT name CHECK (expression)`, validated: the rows for which `expression` (deparsed,
    /// over the columns of `table`) is false make it fail.
    Check { table: String, expression: String },
    /// `ADD FOREIGN KEY (columns) REFERENCES referenced (referenced_columns)`, validated; the referenced
    /// columns are empty when the statement leaves them to the referenced table's primary key.
    ForeignKey { table: String, columns: Vec<String>, referenced: String, referenced_columns: Vec<String> },
    /// `VALIDATE CONSTRAINT name` of `table`: a check or a foreign key added `NOT VALID` earlier, whose
    /// definition the catalog gives.
    Validate { table: String, name: String },
}

/// What the rehearsal knows of a statement before running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Analysis {
    pub kind: Kind,
    pub effects: Vec<Effect>,
    /// Its command tag counts rows (INSERT, UPDATE, DELETE, MERGE, SELECT, CREATE TABLE AS).
    pub counts_rows: bool,
    /// SAVEPOINT, RELEASE or ROLLBACK TO of the migration's own: run as it is, not inside the savepoint
    /// the rehearsal puts around a statement (whose release would take the migration's with it).
    pub savepoint: bool,
    /// It cannot run inside a transaction block at all (`pgsafe migrate` runs it on its own).
    pub outside_transaction: bool,
    /// The (table, column) it adds (with `IF NOT EXISTS`: it may add none; inside a `DO` block: those its
    /// statements add, when its branches run).
    pub added_columns: Vec<(String, String)>,
    /// The `UPDATE`s inside a `DO` block: (table, the columns each sets), whose rows the transaction's
    /// counters count.
    pub block_updates: Vec<(String, Vec<String>)>,
    /// The tables it names (a `DO` block's statements': those it writes itself, not through triggers).
    pub named: Vec<String>,
    /// It adds a value to an enum type (`ALTER TYPE ... ADD VALUE`), which is usable once its transaction
    /// commits.
    pub adds_enum_value: bool,
    /// Its changes of a column's type, as written.
    pub conversions: Vec<Conversion>,
    /// The migration's own `SAVEPOINT`, `RELEASE` or `ROLLBACK TO`, and the savepoint's name.
    pub savepoint_op: Option<(SavepointOp, String)>,
    /// An `INSERT ... ON CONFLICT DO UPDATE`: its command tag counts the rows it inserted too.
    pub upsert: bool,
    /// The functions a `SELECT` or `CALL` calls (`SELECT backfill()`), as written: what their bodies do
    /// is read from the database ([`Analysis::absorb_function`]) once the migration made them.
    pub calls: Vec<String>,
}

/// What a migration's own savepoint statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SavepointOp {
    Set,
    Release,
    RollbackTo,
}

/// A change of a column's type (`ALTER TABLE t ALTER COLUMN c TYPE ... USING ...`), as the statement
/// writes it: the value a row's `column` becomes is `(using)::to`, or `(column)::to` without `USING`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conversion {
    pub table: String,
    pub column: String,
    /// The new type, as written (`numeric(10, 2)`, `int`).
    pub to: String,
    /// The `USING` expression, as written.
    pub using: Option<String>,
}

impl Analysis {
    fn new() -> Analysis {
        Analysis {
            kind: Kind::Runs,
            effects: Vec::new(),
            counts_rows: false,
            savepoint: false,
            outside_transaction: false,
            added_columns: Vec::new(),
            block_updates: Vec::new(),
            named: Vec::new(),
            adds_enum_value: false,
            conversions: Vec::new(),
            savepoint_op: None,
            upsert: false,
            calls: Vec::new(),
        }
    }
}

/// Why a `SET TRANSACTION` is not rehearsed.
pub(crate) const TRANSACTION_MODES_NOT_RUN: &str = "the rehearsal is one transaction, in the session's default modes \
    (`default_transaction_isolation`): a block's own isolation level, `READ ONLY` or `DEFERRABLE` is not rehearsed";

/// Timeouts the rehearsal sets for itself; a migration's `SET` of one would lift its protection.
const OWN_SETTINGS: [&str; 4] =
    ["lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout", "transaction_timeout"];

/// Whether `sql` (one statement) cannot run inside a transaction block on a server of `server_version`.
pub fn outside_transaction(sql: &str, server_version: u32) -> bool {
    analyze(sql, server_version).outside_transaction
}

/// The modes of a transaction (PostgreSQL's `transaction_isolation`, `transaction_read_only` and
/// `transaction_deferrable`) as a file asks for them: `BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY`,
/// `START TRANSACTION ...`, `SET TRANSACTION ...`. `None`: not asked for, the session's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionModes {
    /// `SERIALIZABLE`, `REPEATABLE READ`, `READ COMMITTED` or `READ UNCOMMITTED`.
    isolation: Option<&'static str>,
    read_only: Option<bool>,
    deferrable: Option<bool>,
}

impl TransactionModes {
    /// The modes `options` (a `TransactionStmt`'s or a `SET TRANSACTION`'s) set, over these: a later one
    /// wins, as the server applies them in order.
    fn set(&mut self, options: &[pg_query::protobuf::Node]) {
        use pg_query::protobuf::a_const::Val;
        for option in options {
            let Some(NodeEnum::DefElem(d)) = &option.node else { continue };
            let value = match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
                Some(NodeEnum::AConst(c)) => c.val.as_ref(),
                _ => None,
            };
            match (d.defname.as_str(), value) {
                ("transaction_isolation", Some(Val::Sval(s))) => {
                    let levels = ["SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED", "READ UNCOMMITTED"];
                    self.isolation = levels.into_iter().find(|l| l.eq_ignore_ascii_case(&s.sval)).or(self.isolation);
                }
                ("transaction_read_only", Some(Val::Ival(i))) => self.read_only = Some(i.ival != 0),
                ("transaction_deferrable", Some(Val::Ival(i))) => self.deferrable = Some(i.ival != 0),
                _ => {}
            }
        }
    }

    /// The `BEGIN` of a transaction in these modes (`BEGIN` when none is asked for).
    pub fn begin(&self) -> String {
        let modes: Vec<String> = [
            self.isolation.map(|level| format!("ISOLATION LEVEL {level}")),
            self.read_only.map(|ro| if ro { "READ ONLY" } else { "READ WRITE" }.to_owned()),
            self.deferrable.map(|d| if d { "DEFERRABLE" } else { "NOT DEFERRABLE" }.to_owned()),
        ]
        .into_iter()
        .flatten()
        .collect();
        match modes.is_empty() {
            true => "BEGIN".to_owned(),
            false => format!("BEGIN {}", modes.join(", ")),
        }
    }

    /// Whether the transaction may write (it is not `READ ONLY`).
    pub fn writes(&self) -> bool {
        self.read_only != Some(true)
    }
}

/// A part of a file as it runs when its own transactions are kept: a `BEGIN ... COMMIT` block, or one
/// statement outside any block.
#[derive(Debug, PartialEq, Eq)]
pub enum TransactionRun<'a, T> {
    Block(TransactionBlock<'a, T>),
    Alone(&'a T),
}

/// A `BEGIN ... COMMIT` block of a file.
#[derive(Debug, PartialEq, Eq)]
pub struct TransactionBlock<'a, T> {
    /// Its statements, without the BEGIN and COMMIT.
    pub statements: Vec<&'a T>,
    /// The statement that opened it: `BEGIN`, `START TRANSACTION`, or the `COMMIT AND CHAIN` before it.
    pub begin: &'a T,
    /// The modes its `BEGIN` asks for, and the `SET TRANSACTION`s before its first query (later, the
    /// server refuses to change the isolation level: SQLSTATE 25001). A chained block keeps those of the
    /// block it follows, as the server does.
    pub modes: TransactionModes,
    /// A `COMMIT` ends it. Without one, psql ends the file with the transaction open, and the server
    /// rolls it back.
    pub committed: bool,
}

/// The parts of a file of `statements` (each one's SQL given by `sql`) as psql runs it: each of its own
/// `BEGIN ... COMMIT` blocks in a transaction, every statement outside one on its own. Empty blocks are
/// left out.
pub fn transaction_runs<'a, T>(statements: &'a [T], sql: impl Fn(&'a T) -> &'a str) -> Vec<TransactionRun<'a, T>> {
    use TransactionStmtKind as K;
    let mut runs = Vec::new();
    let mut block: Option<TransactionBlock<'a, T>> = None;
    // The open block has run no query yet: only `SET`s, which take no snapshot.
    let mut opening = false;
    let end = |block: TransactionBlock<'a, T>, runs: &mut Vec<TransactionRun<'a, T>>| {
        if !block.statements.is_empty() {
            runs.push(TransactionRun::Block(block));
        }
    };
    for st in statements {
        let parsed = pg_query::parse(sql(st), 0).ok();
        let node = parsed
            .as_ref()
            .and_then(|p| p.protobuf.stmts.first())
            .and_then(|raw| raw.stmt.as_ref())
            .and_then(|s| s.node.as_ref());
        let transaction = match node {
            Some(NodeEnum::TransactionStmt(t)) => TransactionStmtKind::try_from(t.kind).ok().map(|kind| (kind, t)),
            _ => None,
        };
        match transaction {
            Some((K::TransStmtBegin | K::TransStmtStart, t)) => {
                // A BEGIN inside a block starts nothing (the server only warns).
                if block.is_none() {
                    let mut modes = TransactionModes::default();
                    modes.set(&t.options);
                    block = Some(TransactionBlock { statements: Vec::new(), begin: st, modes, committed: false });
                    opening = true;
                }
            }
            Some((K::TransStmtCommit, t)) => {
                let mut modes = TransactionModes::default();
                if let Some(b) = block.take() {
                    modes = b.modes.clone();
                    end(TransactionBlock { committed: true, ..b }, &mut runs);
                }
                if t.chain {
                    block = Some(TransactionBlock { statements: Vec::new(), begin: st, modes, committed: false });
                    opening = true;
                }
            }
            Some((K::TransStmtSavepoint | K::TransStmtRelease | K::TransStmtRollbackTo, _)) | None => {
                match &mut block {
                    Some(b) => {
                        match node {
                            Some(NodeEnum::VariableSetStmt(s)) if opening && sets_transaction_modes(s) => {
                                b.modes.set(&s.args)
                            }
                            Some(NodeEnum::VariableSetStmt(_)) => {}
                            _ => opening = false,
                        }
                        b.statements.push(st);
                    }
                    None => runs.push(TransactionRun::Alone(st)),
                }
            }
            // ROLLBACK and PREPARE TRANSACTION are refused before anything runs.
            Some(_) => {}
        }
    }
    if let Some(b) = block {
        end(b, &mut runs);
    }
    runs
}

/// Whether a file of `statements` commits transactions of its own: it has a `BEGIN ... COMMIT` block and
/// something else beside it (another block, a statement before or after). Run in one transaction, what
/// it needs committed first is not (a value `ALTER TYPE ... ADD VALUE` added is refused, SQLSTATE
/// 55P04, until the transaction that added it commits).
///
/// A `SET` beside the block (`SET lock_timeout = '5s'; BEGIN; ...; COMMIT;`) is no transaction of its
/// own: run in the file's one transaction, which commits, it holds for the session all the same.
pub fn keeps_own_transactions<'a, T>(statements: &'a [T], sql: impl Fn(&'a T) -> &'a str) -> bool {
    let runs = transaction_runs(statements, &sql);
    let is_setting = |st: &'a T| {
        pg_query::parse(sql(st), 0).is_ok_and(|parsed| {
            parsed.protobuf.stmts.iter().all(|raw| {
                matches!(raw.stmt.as_ref().and_then(|s| s.node.as_ref()), Some(NodeEnum::VariableSetStmt(_)))
            })
        })
    };
    let counted = runs.iter().filter(|r| !matches!(r, TransactionRun::Alone(st) if is_setting(st))).count();
    counted > 1 && runs.iter().any(|r| matches!(r, TransactionRun::Block(_)))
}

/// Whether a file of `statements` runs as it is written rather than in one transaction: a statement of it
/// cannot run in a transaction (on a server of `server_version`), or it commits transactions of its own
/// ([`keeps_own_transactions`]). Each of its blocks then runs in a transaction of its own (or, holding
/// such a statement, statement by statement), and every statement outside one on its own.
pub fn runs_as_written<'a, T>(statements: &'a [T], sql: impl Fn(&'a T) -> &'a str, server_version: u32) -> bool {
    statements.iter().any(|st| outside_transaction(sql(st), server_version)) || keeps_own_transactions(statements, sql)
}

/// The `BEGIN` of a non-empty block of a file of `statements` that no `COMMIT` ends (or the `COMMIT AND
/// CHAIN` that opened it): psql ends the file with that transaction open, and the server rolls it back.
pub fn never_committed<'a, T>(statements: &'a [T], sql: impl Fn(&'a T) -> &'a str) -> Option<&'a T> {
    transaction_runs(statements, sql).into_iter().find_map(|run| match run {
        TransactionRun::Block(b) if !b.committed => Some(b.begin),
        _ => None,
    })
}

/// The modes of the transaction a file of `statements` asks for when it runs in one: those of its block
/// (one that keeps transactions of its own has more than one, and runs as written).
pub fn file_modes<'a, T>(statements: &'a [T], sql: impl Fn(&'a T) -> &'a str) -> TransactionModes {
    transaction_runs(statements, sql)
        .into_iter()
        .find_map(|run| match run {
            TransactionRun::Block(b) => Some(b.modes),
            TransactionRun::Alone(_) => None,
        })
        .unwrap_or_default()
}

/// Whether `s` is a `SET TRANSACTION` of the isolation level, `READ ONLY` or `DEFERRABLE`.
fn sets_transaction_modes(s: &pg_query::protobuf::VariableSetStmt) -> bool {
    s.kind == VariableSetKind::VarSetMulti as i32 && s.name == "TRANSACTION"
}

/// Whether `sql` (one statement) is a `COPY ... TO STDOUT`, whose rows come back through the COPY
/// protocol (a `COPY ... TO 'file'` or `TO PROGRAM` writes on the server and runs as any statement).
pub fn copies_to_stdout(sql: &str) -> bool {
    let Ok(parsed) = pg_query::parse(sql, 0) else { return false };
    parsed.protobuf.stmts.iter().any(|raw| match raw.stmt.as_ref().and_then(|s| s.node.as_ref()) {
        Some(NodeEnum::CopyStmt(copy)) => !copy.is_from && copy.filename.is_empty() && !copy.is_program,
        _ => false,
    })
}

/// Whether `sql` (one statement) is a `COMMIT` (`END`, `COMMIT AND CHAIN`).
pub(crate) fn commits(sql: &str) -> bool {
    let Ok(parsed) = pg_query::parse(sql, 0) else { return false };
    parsed.protobuf.stmts.iter().any(|raw| match raw.stmt.as_ref().and_then(|s| s.node.as_ref()) {
        Some(NodeEnum::TransactionStmt(t)) => t.kind == TransactionStmtKind::TransStmtCommit as i32,
        _ => false,
    })
}

/// Whether `sql` (one statement) is BEGIN, COMMIT, ROLLBACK or the like.
pub fn is_transaction_control(sql: &str) -> bool {
    analyze(sql, 0).kind == Kind::TransactionControl
}

/// Whether `sql` (one statement) ends its transaction without committing it: `ROLLBACK` (`ABORT`), or
/// hands it over (`PREPARE TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK PREPARED`). A runner that runs a
/// file in a transaction of its own and commits it cannot keep what such a statement means.
pub fn discards_transaction(sql: &str) -> bool {
    use TransactionStmtKind as K;
    let Ok(parsed) = pg_query::parse(sql, 0) else { return false };
    parsed.protobuf.stmts.iter().any(|raw| match raw.stmt.as_ref().and_then(|s| s.node.as_ref()) {
        Some(NodeEnum::TransactionStmt(t)) => matches!(
            TransactionStmtKind::try_from(t.kind),
            Ok(K::TransStmtRollback | K::TransStmtPrepare | K::TransStmtCommitPrepared | K::TransStmtRollbackPrepared)
        ),
        _ => false,
    })
}

/// Reads `sql`, one statement, for a server of version `server_version` (`server_version_num`). A
/// statement the parser refuses is run as it is (the split already parsed it, so this does not happen).
pub(crate) fn analyze(sql: &str, server_version: u32) -> Analysis {
    let mut analysis = Analysis::new();
    let Ok(parsed) = pg_query::parse(sql, 0) else { return analysis };
    for raw in &parsed.protobuf.stmts {
        match raw.stmt.as_ref().and_then(|s| s.node.as_ref()) {
            Some(NodeEnum::DoStmt(d)) => do_block(sql, d, server_version, &mut analysis),
            Some(node) => {
                if calls_setval(node) {
                    analysis.kind = setval_not_run();
                    return analysis;
                }
                if let NodeEnum::AlterTableStmt(alter) = node {
                    conversions(sql, alter, &mut analysis.conversions);
                }
                if matches!(node, NodeEnum::SelectStmt(_) | NodeEnum::CallStmt(_)) {
                    analysis.calls.extend(called_functions(node));
                }
                read(node, server_version, &mut analysis)
            }
            None => {}
        }
    }
    analysis
}

/// The functions `node` calls, as written (`name` or `schema.name`), each once.
fn called_functions(node: &NodeEnum) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (n, ..) in node.nodes() {
        if let pg_query::NodeRef::FuncCall(f) = n {
            let parts: Vec<&str> = f
                .funcname
                .iter()
                .filter_map(|p| match &p.node {
                    Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
                    _ => None,
                })
                .collect();
            let name = parts.join(".");
            if !parts.is_empty() && !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// Whether `node` calls `setval`, which a rollback does not undo.
fn calls_setval(node: &NodeEnum) -> bool {
    node.nodes().into_iter().any(|(n, ..)| match n {
        pg_query::NodeRef::FuncCall(f) => f.funcname.last().is_some_and(
            |name| matches!(&name.node, Some(NodeEnum::String(s)) if s.sval.eq_ignore_ascii_case("setval")),
        ),
        _ => false,
    })
}

/// Why a statement calling `setval` is not rehearsed.
pub(crate) const SETVAL_NOT_RUN: &str =
    "it calls `setval`, which the rehearsal's rollback would not undo: the live sequence would stay moved";

fn setval_not_run() -> Kind {
    Kind::NotRun(SETVAL_NOT_RUN.into())
}

/// What the statements of a `DO` block do ([`crate::lint::do_block`]), as far as the block's run shows it:
/// its branches may not run, so a dropped column counts when it is gone after the block. The block's
/// command tag has no count: the rows a `DELETE` or `UPDATE` inside it changes are left to the transaction's
/// own counters, as those of a trigger are; a table it truncates counts when the block gave it a new file.
fn do_block(sql: &str, d: &pg_query::protobuf::DoStmt, server_version: u32, a: &mut Analysis) {
    // Its expressions (`PERFORM`, assignments) are not parsed: any mention of `setval` keeps it from running.
    if sql.to_ascii_lowercase().contains("setval") {
        a.kind = setval_not_run();
        return;
    }
    let mut inner = Analysis::new();
    for statement in crate::lint::do_block::statements(sql, 0, sql.len(), d) {
        // A type change's new type and `USING` are read from its text.
        if let NodeEnum::AlterTableStmt(alter) = &statement.node {
            conversions(&statement.query, alter, &mut inner.conversions);
        }
        read(&statement.node, server_version, &mut inner);
    }
    a.absorb_block(inner);
}

impl Analysis {
    /// What the body of a function the statement calls does (`language` `plpgsql` or `sql`), as a `DO`
    /// block's statements count: its `UPDATE`s' values are compared as the block's are, rather than
    /// counted row by row (an `UPDATE ... SET c = NULL` in a function counted the rows already NULL).
    pub(crate) fn absorb_function(&mut self, language: &str, body: &str, server_version: u32) {
        let mut inner = Analysis::new();
        for node in crate::lint::do_block::function_statements(language, body) {
            read(&node, server_version, &mut inner);
        }
        self.absorb_block(inner);
    }

    /// Takes in what the statements of a block (a `DO` block, a function's body) do, which its branches
    /// may not all run.
    fn absorb_block(&mut self, inner: Analysis) {
        self.added_columns.extend(inner.added_columns);
        self.conversions.extend(inner.conversions);
        self.named.extend(inner.named);
        for effect in inner.effects {
            match effect {
                Effect::DropColumn { table, column } => self.effects.push(Effect::DropColumnIfGone { table, column }),
                Effect::Truncate { table, cascade } => self.effects.push(Effect::TruncateIfRun { table, cascade }),
                Effect::Update { table, columns } => self.block_updates.push((table, columns)),
                Effect::Delete { .. } => {}
                other => self.effects.push(other),
            }
        }
    }
}

fn read(node: &NodeEnum, server_version: u32, a: &mut Analysis) {
    for (n, ..) in node.nodes() {
        if let pg_query::NodeRef::RangeVar(r) = n {
            a.named.push(table_name(r));
        }
    }
    let not_run = |what: &str| Kind::NotRun(format!("{what} cannot run inside a transaction block"));
    match node {
        NodeEnum::TransactionStmt(t) => {
            use TransactionStmtKind as K;
            let kind = TransactionStmtKind::try_from(t.kind).unwrap_or(K::Undefined);
            if matches!(kind, K::TransStmtSavepoint | K::TransStmtRelease | K::TransStmtRollbackTo) {
                a.savepoint = true;
                let op = match kind {
                    K::TransStmtSavepoint => SavepointOp::Set,
                    K::TransStmtRelease => SavepointOp::Release,
                    _ => SavepointOp::RollbackTo,
                };
                a.savepoint_op = Some((op, t.savepoint_name.clone()));
            } else {
                a.kind = Kind::TransactionControl;
            }
        }
        NodeEnum::VariableSetStmt(s) if sets_transaction_modes(s) => {
            a.kind = Kind::NotRun(TRANSACTION_MODES_NOT_RUN.into());
        }
        NodeEnum::VariableSetStmt(s) => {
            let reset_all = s.kind == VariableSetKind::VarResetAll as i32;
            if reset_all || OWN_SETTINGS.contains(&s.name.as_str()) {
                let what = if reset_all { "RESET ALL".to_owned() } else { format!("`{}`", s.name) };
                a.kind = Kind::NotRun(format!("{what} would change the rehearsal's own timeouts"));
            }
        }
        NodeEnum::IndexStmt(index) => {
            let table = index.relation.as_ref().map(table_name).unwrap_or_default();
            if index.concurrent {
                a.outside_transaction = true;
                a.kind = not_run("CREATE INDEX CONCURRENTLY");
                return;
            }
            a.effects.push(Effect::Scans { table: table.clone(), what: "CREATE INDEX scans it" });
            if index.unique {
                let columns: Option<Vec<String>> = index
                    .index_params
                    .iter()
                    .map(|p| match &p.node {
                        Some(NodeEnum::IndexElem(e)) if e.expr.is_none() && !e.name.is_empty() => Some(e.name.clone()),
                        _ => None,
                    })
                    .collect();
                if let Some(columns) = columns {
                    a.effects.push(Effect::Unique { table, columns });
                }
            }
        }
        NodeEnum::DropStmt(drop) => {
            if drop.concurrent {
                a.outside_transaction = true;
                a.kind = not_run("DROP INDEX CONCURRENTLY");
            } else if drop.remove_type == ObjectType::ObjectTable as i32 {
                let tables = drop.objects.iter().filter_map(dropped_name).collect();
                a.effects.push(Effect::Drop { tables, schemas: Vec::new(), types: Vec::new(), extensions: Vec::new() });
            } else if drop.remove_type == ObjectType::ObjectSchema as i32 {
                let schemas = drop.objects.iter().filter_map(string).map(|n| quote_ident(&n)).collect();
                a.effects.push(Effect::Drop { tables: Vec::new(), schemas, types: Vec::new(), extensions: Vec::new() });
            } else if drop.behavior == DropBehavior::DropCascade as i32
                && (drop.remove_type == ObjectType::ObjectType as i32
                    || drop.remove_type == ObjectType::ObjectDomain as i32)
            {
                // Without CASCADE a type that columns use cannot be dropped.
                let types = drop.objects.iter().filter_map(dropped_name).collect();
                a.effects.push(Effect::Drop { tables: Vec::new(), schemas: Vec::new(), types, extensions: Vec::new() });
            } else if drop.behavior == DropBehavior::DropCascade as i32
                && drop.remove_type == ObjectType::ObjectExtension as i32
            {
                let extensions = drop.objects.iter().filter_map(string).collect();
                a.effects.push(Effect::Drop { tables: Vec::new(), schemas: Vec::new(), types: Vec::new(), extensions });
            }
        }
        NodeEnum::ReindexStmt(r) => {
            let concurrently =
                r.params.iter().any(|p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname == "concurrently"));
            let whole = [
                ReindexObjectType::ReindexObjectSchema,
                ReindexObjectType::ReindexObjectSystem,
                ReindexObjectType::ReindexObjectDatabase,
            ]
            .iter()
            .any(|k| *k as i32 == r.kind);
            if concurrently {
                a.outside_transaction = true;
                a.kind = not_run("REINDEX CONCURRENTLY");
            } else if whole {
                a.outside_transaction = true;
                a.kind = not_run("REINDEX SCHEMA, SYSTEM or DATABASE");
            }
        }
        NodeEnum::VacuumStmt(v) if v.is_vacuumcmd => {
            a.outside_transaction = true;
            a.kind = not_run("VACUUM");
        }
        NodeEnum::ClusterStmt(c) => match &c.relation {
            Some(table) => a.effects.push(Effect::Scans { table: table_name(table), what: "CLUSTER rewrites it" }),
            None => {
                a.outside_transaction = true;
                a.kind = not_run("CLUSTER without a table");
            }
        },
        NodeEnum::AlterSystemStmt(_) => {
            a.outside_transaction = true;
            a.kind = not_run("ALTER SYSTEM");
        }
        NodeEnum::CreatedbStmt(_) => {
            a.outside_transaction = true;
            a.kind = not_run("CREATE DATABASE");
        }
        NodeEnum::DropdbStmt(_) => {
            a.outside_transaction = true;
            a.kind = not_run("DROP DATABASE");
        }
        NodeEnum::CreateTableSpaceStmt(_) => {
            a.outside_transaction = true;
            a.kind = not_run("CREATE TABLESPACE");
        }
        NodeEnum::DropTableSpaceStmt(_) => {
            a.outside_transaction = true;
            a.kind = not_run("DROP TABLESPACE");
        }
        NodeEnum::CreateSubscriptionStmt(_) => {
            a.outside_transaction = true;
            a.kind = not_run("CREATE SUBSCRIPTION");
        }
        NodeEnum::DropSubscriptionStmt(_) => {
            a.outside_transaction = true;
            a.kind = not_run("DROP SUBSCRIPTION");
        }
        NodeEnum::AlterEnumStmt(e) if !e.new_val.is_empty() && e.old_val.is_empty() && server_version < 120000 => {
            a.outside_transaction = true;
            a.kind = Kind::NotRun(
                "ALTER TYPE ... ADD VALUE cannot run inside a transaction block before PostgreSQL 12".into(),
            );
        }
        NodeEnum::AlterEnumStmt(e) if !e.new_val.is_empty() && e.old_val.is_empty() => a.adds_enum_value = true,
        NodeEnum::DeleteStmt(d) => {
            a.counts_rows = true;
            if let Some(table) = &d.relation {
                a.effects.push(Effect::Delete { table: table_name(table) });
            }
        }
        NodeEnum::UpdateStmt(u) => {
            a.counts_rows = true;
            if let Some(table) = &u.relation {
                let columns = crate::lint::set_columns(&u.target_list).into_iter().map(str::to_owned).collect();
                a.effects.push(Effect::Update { table: table_name(table), columns });
            }
        }
        // Rows moved in one statement: `WITH moved AS (DELETE FROM t ... RETURNING *) INSERT INTO
        // t_archive SELECT * FROM moved`. The DELETE is counted as one, its rows kept to find them in the
        // table the statement fills.
        NodeEnum::InsertStmt(i) => {
            a.counts_rows = true;
            // `ON CONFLICT ... DO UPDATE` changes the rows that were there as an UPDATE does: the values
            // of the columns it sets are compared (seeding settings again with the values they had is no
            // loss).
            if let Some(conflict) = &i.on_conflict_clause
                && conflict.action == pg_query::protobuf::OnConflictAction::OnconflictUpdate as i32
                && let Some(table) = &i.relation
            {
                let columns = crate::lint::set_columns(&conflict.target_list).into_iter().map(str::to_owned).collect();
                a.effects.push(Effect::Update { table: table_name(table), columns });
                a.upsert = true;
            }
            let ctes = i.with_clause.iter().flat_map(|w| w.ctes.iter());
            for cte in ctes {
                let Some(NodeEnum::CommonTableExpr(c)) = &cte.node else { continue };
                if let Some(NodeEnum::DeleteStmt(d)) = c.ctequery.as_deref().and_then(|q| q.node.as_ref())
                    && let Some(table) = &d.relation
                {
                    a.effects.push(Effect::Delete { table: table_name(table) });
                }
            }
        }
        // A MERGE's UPDATE actions change rows as an UPDATE does: the values of the columns they set are
        // compared, so that a row given the value it had is no loss. Its DELETEs are the counters'.
        NodeEnum::MergeStmt(m) => {
            a.counts_rows = true;
            let mut columns: Vec<String> = Vec::new();
            let mut updates = false;
            for clause in &m.merge_when_clauses {
                let Some(NodeEnum::MergeWhenClause(w)) = &clause.node else { continue };
                if w.command_type == pg_query::protobuf::CmdType::CmdUpdate as i32 {
                    updates = true;
                    for column in crate::lint::set_columns(&w.target_list) {
                        if !columns.iter().any(|c| c == column) {
                            columns.push(column.to_owned());
                        }
                    }
                }
            }
            if updates && let Some(table) = &m.relation {
                a.effects.push(Effect::Update { table: table_name(table), columns });
            }
        }
        // A `COPY ... FROM STDIN` of the file's rows counts them as an INSERT does. (A `COPY ... TO
        // STDOUT`'s rows come through the COPY protocol, whose count the rehearsal does not see.)
        NodeEnum::CopyStmt(copy) => a.counts_rows = copy.is_from || !copy.filename.is_empty() || copy.is_program,
        NodeEnum::SelectStmt(_) | NodeEnum::CreateTableAsStmt(_) => {
            a.counts_rows = true;
        }
        NodeEnum::TruncateStmt(t) => {
            let cascade = t.behavior == DropBehavior::DropCascade as i32;
            for relation in &t.relations {
                if let Some(NodeEnum::RangeVar(table)) = &relation.node {
                    a.effects.push(Effect::Truncate { table: table_name(table), cascade });
                }
            }
        }
        NodeEnum::AlterTableStmt(alter) if alter.objtype == ObjectType::ObjectType as i32 => {
            let Some(relation) = &alter.relation else { return };
            for cmd in &alter.cmds {
                if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node
                    && cmd.subtype == AlterTableType::AtDropColumn as i32
                {
                    a.effects
                        .push(Effect::DropAttribute { type_name: table_name(relation), attribute: cmd.name.clone() });
                }
            }
        }
        NodeEnum::AlterTableStmt(alter) if alter.objtype == ObjectType::ObjectTable as i32 => {
            let Some(relation) = &alter.relation else { return };
            let table = table_name(relation);
            for cmd in &alter.cmds {
                if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node {
                    alter_table(&table, cmd, server_version, a);
                }
            }
        }
        _ => {}
    }
}

/// One subcommand of `ALTER TABLE table`.
fn alter_table(table: &str, cmd: &pg_query::protobuf::AlterTableCmd, server_version: u32, a: &mut Analysis) {
    use AlterTableType as T;
    let table = table.to_owned();
    let column = cmd.name.clone();
    match AlterTableType::try_from(cmd.subtype).unwrap_or(T::Undefined) {
        T::AtDropColumn => a.effects.push(Effect::DropColumn { table, column }),
        T::AtAlterColumnType => {
            let type_name = match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                Some(NodeEnum::ColumnDef(def)) => def.type_name.as_ref(),
                _ => None,
            };
            let length = type_name.and_then(character_length);
            a.effects.push(Effect::Scans { table: table.clone(), what: "ALTER COLUMN TYPE rewrites or scans it" });
            a.effects.push(Effect::AlterType { table, column, length });
        }
        T::AtSetNotNull => {
            a.effects.push(Effect::Scans { table: table.clone(), what: "SET NOT NULL scans it" });
            a.effects.push(Effect::SetNotNull { table, column });
        }
        T::AtAddConstraint => {
            let Some(NodeEnum::Constraint(c)) = cmd.def.as_deref().and_then(|d| d.node.as_ref()) else { return };
            let contype = ConstrType::try_from(c.contype).unwrap_or(ConstrType::Undefined);
            let validated = !c.skip_validation && c.indexname.is_empty();
            if validated && !matches!(contype, ConstrType::ConstrDefault | ConstrType::ConstrNull) {
                a.effects.push(Effect::Scans { table: table.clone(), what: "ADD CONSTRAINT scans it" });
            }
            match contype {
                ConstrType::ConstrPrimary | ConstrType::ConstrUnique if c.indexname.is_empty() => {
                    let columns = c.keys.iter().filter_map(string).collect();
                    a.effects.push(Effect::Unique { table, columns });
                }
                ConstrType::ConstrCheck if validated => {
                    if let Some(expression) = c.raw_expr.as_deref().and_then(deparse_expression) {
                        a.effects.push(Effect::Check { table, expression });
                    }
                }
                ConstrType::ConstrForeign if validated => {
                    let Some(referenced) = c.pktable.as_ref().map(table_name) else { return };
                    a.effects.push(Effect::ForeignKey {
                        table,
                        columns: c.fk_attrs.iter().filter_map(string).collect(),
                        referenced,
                        referenced_columns: c.pk_attrs.iter().filter_map(string).collect(),
                    });
                }
                _ => {}
            }
        }
        T::AtAddColumn => {
            let Some(NodeEnum::ColumnDef(def)) = cmd.def.as_deref().and_then(|d| d.node.as_ref()) else { return };
            a.added_columns.push((table.clone(), def.colname.clone()));
            add_column(&table, def, server_version, a);
        }
        T::AtSetLogged | T::AtSetUnLogged => {
            a.effects.push(Effect::Scans { table, what: "SET LOGGED/UNLOGGED rewrites it" })
        }
        T::AtSetTableSpace => a.effects.push(Effect::Scans { table, what: "SET TABLESPACE copies it" }),
        T::AtValidateConstraint => {
            a.effects.push(Effect::Scans { table: table.clone(), what: "VALIDATE CONSTRAINT scans it" });
            a.effects.push(Effect::Validate { table, name: cmd.name.clone() });
        }
        _ => {}
    }
}

/// `ADD COLUMN def` to `table`: whether it rewrites the table. Since PostgreSQL 11 a default that is not
/// volatile is kept in the catalog and the table is not rewritten; a volatile default (`random()`,
/// `clock_timestamp()`, a sequence of `serial` or an identity), and a stored generated column, are
/// computed for every row, and rewrite it. Before 11, any default rewrites it.
fn add_column(table: &str, def: &pg_query::protobuf::ColumnDef, server_version: u32, a: &mut Analysis) {
    const REWRITES: &str = "ADD COLUMN with a volatile default rewrites it";
    let table = table.to_owned();
    let serial = def.type_name.as_ref().and_then(|t| t.names.last()).and_then(string).is_some_and(|name| {
        matches!(name.as_str(), "serial" | "serial2" | "serial4" | "serial8" | "smallserial" | "bigserial")
    });
    let mut functions = Vec::new();
    let mut rewrites = serial;
    for constraint in &def.constraints {
        let Some(NodeEnum::Constraint(c)) = &constraint.node else { continue };
        match ConstrType::try_from(c.contype).unwrap_or(ConstrType::Undefined) {
            ConstrType::ConstrIdentity => rewrites = true,
            // PostgreSQL 18's virtual generated columns are computed when read.
            ConstrType::ConstrGenerated => rewrites |= c.generated_kind != "v",
            ConstrType::ConstrDefault => {
                let Some(expr) = &c.raw_expr else { continue };
                rewrites |= server_version < 110000;
                for (node, ..) in expr.node.iter().flat_map(|n| n.nodes()) {
                    if let pg_query::NodeRef::FuncCall(call) = node {
                        functions.extend(call.funcname.last().and_then(string));
                    }
                }
            }
            _ => {}
        }
    }
    if rewrites {
        a.effects.push(Effect::Scans { table, what: REWRITES });
    } else if !functions.is_empty() {
        functions.sort();
        functions.dedup();
        a.effects.push(Effect::DefaultCalls { table, functions });
    }
}

/// The SQL text of an expression of the parse tree, as PostgreSQL's deparser writes it: `(a > 0)`.
fn deparse_expression(expr: &pg_query::protobuf::Node) -> Option<String> {
    // The deparser takes statements only: `SELECT WHERE expr` holds the expression whole. The statement
    // comes from the parser, as the deparser expects every field (it aborts on an unset enum).
    let mut parsed = pg_query::parse("SELECT WHERE true", 0).ok()?.protobuf;
    let raw = parsed.stmts.first_mut()?.stmt.as_deref_mut()?;
    let Some(NodeEnum::SelectStmt(select)) = raw.node.as_mut() else { return None };
    select.where_clause = Some(Box::new(expr.clone()));
    let sql = pg_query::deparse(&parsed, pg_query::DeparseOptions::default()).ok()?;
    sql.strip_prefix("SELECT WHERE ").map(str::to_owned)
}

/// `n` of `varchar(n)` or `char(n)`.
fn character_length(type_name: &pg_query::protobuf::TypeName) -> Option<i32> {
    let name = type_name.names.last().and_then(string)?;
    if !matches!(name.as_str(), "varchar" | "bpchar") || !type_name.array_bounds.is_empty() {
        return None;
    }
    match type_name.typmods.first()?.node.as_ref()? {
        NodeEnum::AConst(c) => match c.val.as_ref()? {
            pg_query::protobuf::a_const::Val::Ival(i) => Some(i.ival),
            _ => None,
        },
        _ => None,
    }
}

/// An object a `DROP` names, quoted and qualified for SQL: a table's list of name parts, or a type's
/// name.
fn dropped_name(object: &pg_query::protobuf::Node) -> Option<String> {
    let parts = match object.node.as_ref()? {
        NodeEnum::List(list) => &list.items,
        NodeEnum::TypeName(t) => &t.names,
        _ => return None,
    };
    Some(qualified(&parts.iter().filter_map(string).collect::<Vec<_>>()))
}

fn string(node: &pg_query::protobuf::Node) -> Option<String> {
    match node.node.as_ref()? {
        NodeEnum::String(s) => Some(s.sval.clone()),
        _ => None,
    }
}

/// The plain string constants of `sql` (`'Europe/Paris'`), as written between their quotes: where a
/// migration names a time zone. Those with a quote or a backslash in them, and escape or dollar-quoted
/// strings, are left out.
pub(crate) fn strings(sql: &str) -> Vec<String> {
    use pg_query::protobuf::Token;
    let Ok(tokens) = pg_query::scan_tokens(sql) else { return Vec::new() };
    tokens
        .iter()
        .filter(|t| t.token == Token::Sconst as i32)
        .filter_map(|t| sql.get(t.start as usize..t.end as usize))
        .filter_map(|t| t.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))
        .filter(|t| !t.contains(['\'', '\\']))
        .map(str::to_owned)
        .collect()
}

/// A table as `RangeVar` names it, quoted for SQL.
/// The type changes of `alter`, a statement of `sql`, with their new types and `USING` expressions as
/// `sql` writes them: from where the parser places the type name to the first `USING`, `COLLATE`, comma
/// or end of the subcommand outside parentheses, and from `USING` to that end.
fn conversions(sql: &str, alter: &pg_query::protobuf::AlterTableStmt, out: &mut Vec<Conversion>) {
    use pg_query::protobuf::Token;
    let Some(relation) = &alter.relation else { return };
    let changes: Vec<&pg_query::protobuf::AlterTableCmd> = alter
        .cmds
        .iter()
        .filter_map(|cmd| match &cmd.node {
            Some(NodeEnum::AlterTableCmd(cmd)) => Some(cmd.as_ref()),
            _ => None,
        })
        .filter(|cmd| AlterTableType::try_from(cmd.subtype) == Ok(AlterTableType::AtAlterColumnType))
        .collect();
    // Most `ALTER TABLE`s change no type: the statement is scanned only for one that does.
    if changes.is_empty() {
        return;
    }
    let Ok(tokens) = pg_query::scan_tokens(sql) else { return };
    for cmd in changes {
        let Some(NodeEnum::ColumnDef(def)) = cmd.def.as_deref().and_then(|d| d.node.as_ref()) else { continue };
        let Some(start) = def.type_name.as_ref().and_then(|t| usize::try_from(t.location).ok()) else { continue };
        let (mut depth, mut type_end, mut using_start, mut end) = (0i32, None, None, sql.len());
        for t in tokens.iter().filter(|t| t.start as usize >= start) {
            let token = t.token;
            if token == Token::Ascii40 as i32 {
                depth += 1;
            } else if token == Token::Ascii41 as i32 {
                depth -= 1;
                if depth < 0 {
                    end = t.start as usize;
                    break;
                }
            } else if depth == 0 && (token == Token::Ascii44 as i32 || token == Token::Ascii59 as i32) {
                end = t.start as usize;
                break;
            } else if depth == 0 && using_start.is_none() && token == Token::Collate as i32 {
                type_end.get_or_insert(t.start as usize);
            } else if depth == 0 && using_start.is_none() && token == Token::Using as i32 {
                type_end.get_or_insert(t.start as usize);
                using_start = Some(t.end as usize);
            }
        }
        let text = |from: usize, to: usize| sql.get(from..to).map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        let Some(to) = text(start, type_end.unwrap_or(end)) else { continue };
        out.push(Conversion {
            table: table_name(relation),
            column: cmd.name.clone(),
            to,
            using: using_start.and_then(|u| text(u, end)),
        });
    }
}

fn table_name(r: &pg_query::protobuf::RangeVar) -> String {
    let parts = [r.schemaname.clone(), r.relname.clone()];
    qualified(if r.schemaname.is_empty() { &parts[1..] } else { &parts })
}

fn qualified(parts: &[String]) -> String {
    parts.iter().map(|p| quote_ident(p)).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_statements_plain_strings_are_where_it_names_a_time_zone() {
        let sql = "UPDATE t SET at = ts AT TIME ZONE 'Europe/Paris', s = E'x\\ny', d = $$q$$, n = 'it''s', e = ''";
        assert_eq!(strings(sql), ["Europe/Paris", ""]);
        assert!(strings("SELECT 1").is_empty());
    }

    #[test]
    fn a_type_change_keeps_its_new_type_and_using_expression_as_written() {
        let conversions = |sql: &str| {
            super::analyze(sql, 170000)
                .conversions
                .into_iter()
                .map(|c| (c.table, c.column, c.to, c.using))
                .collect::<Vec<_>>()
        };
        let c = |t: &str, col: &str, to: &str, using: Option<&str>| {
            (t.to_owned(), col.to_owned(), to.to_owned(), using.map(str::to_owned))
        };
        assert_eq!(
            conversions(
                "ALTER TABLE s.\"T\" ALTER COLUMN a TYPE numeric(10, 2), ALTER b SET DATA TYPE int USING trim(b)::int, \
                 ALTER COLUMN \"C\" TYPE text COLLATE \"C\" USING coalesce(\"C\", 'x, y'), ADD COLUMN d int;"
            ),
            [
                c("s.\"T\"", "a", "numeric(10, 2)", None),
                c("s.\"T\"", "b", "int", Some("trim(b)::int")),
                c("s.\"T\"", "C", "text", Some("coalesce(\"C\", 'x, y')")),
            ]
        );
        assert_eq!(conversions("ALTER TABLE t ALTER c TYPE bigint[]"), [c("t", "c", "bigint[]", None)]);
    }

    use super::*;

    #[test]
    fn a_file_keeps_its_own_transactions_when_it_commits_one_and_has_more() {
        let split = |sql: &str| -> Vec<String> {
            sql.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        };
        let keeps = |sql: &str| keeps_own_transactions(&split(sql), String::as_str);
        assert!(keeps("BEGIN; ALTER TYPE mood ADD VALUE 'meh'; COMMIT; BEGIN; UPDATE t SET m = 'meh'; COMMIT"));
        assert!(keeps("ALTER TYPE mood ADD VALUE 'meh'; BEGIN; UPDATE t SET m = 'meh'; END"));
        assert!(keeps("BEGIN; SELECT 1; COMMIT AND CHAIN; SELECT 2; COMMIT"));
        assert!(!keeps("BEGIN; SELECT 1; SAVEPOINT s; SELECT 2; COMMIT"), "one block: the file's transaction");
        assert!(!keeps("SELECT 1; SELECT 2"), "no block: pgsafe's transaction");
        assert!(!keeps("BEGIN; COMMIT; SELECT 1"), "an empty block is nothing");
        assert!(!keeps("SET lock_timeout = '5s'; BEGIN; SELECT 1; COMMIT"), "a SET holds for the session all the same");
        let statements = split("SET x = 1; BEGIN; SELECT 1; SAVEPOINT s; COMMIT; SELECT 2; BEGIN; SELECT 3");
        let runs: Vec<Vec<&str>> = transaction_runs(&statements, String::as_str)
            .into_iter()
            .map(|r| match r {
                TransactionRun::Block(b) => b.statements.into_iter().map(String::as_str).collect(),
                TransactionRun::Alone(st) => vec![st.as_str()],
            })
            .collect();
        assert_eq!(runs, [vec!["SET x = 1"], vec!["SELECT 1", "SAVEPOINT s"], vec!["SELECT 2"], vec!["SELECT 3"]]);
    }

    #[test]
    fn a_blocks_transaction_begins_in_the_modes_its_begin_and_opening_set_transaction_ask_for() {
        let split = |sql: &str| -> Vec<String> {
            sql.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        };
        let begins = |sql: &str| -> Vec<String> {
            transaction_runs(&split(sql), String::as_str)
                .into_iter()
                .filter_map(|r| match r {
                    TransactionRun::Block(b) => Some(b.modes.begin()),
                    TransactionRun::Alone(_) => None,
                })
                .collect()
        };
        assert_eq!(begins("BEGIN; SELECT 1; COMMIT"), ["BEGIN"]);
        assert_eq!(
            begins("begin isolation level serializable, read only, deferrable; SELECT 1; END"),
            ["BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE"]
        );
        assert_eq!(
            begins("START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ WRITE, NOT DEFERRABLE; SELECT 1; COMMIT"),
            ["BEGIN ISOLATION LEVEL REPEATABLE READ, READ WRITE, NOT DEFERRABLE"]
        );
        // A `SET TRANSACTION` before the block's first query sets its modes (a later option wins); one after
        // it is the server's to refuse, as psql's run of the file shows.
        assert_eq!(
            begins(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL work_mem = '64MB'; \
                 SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY; SELECT 1; SET TRANSACTION READ WRITE; COMMIT"
            ),
            ["BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY"]
        );
        // A chained transaction keeps the modes of the one it follows; each block has its own.
        assert_eq!(
            begins(
                "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT 1; COMMIT AND CHAIN; SELECT 2; COMMIT; \
                 BEGIN DEFERRABLE; SELECT 3; COMMIT; BEGIN; SELECT 4; COMMIT"
            ),
            ["BEGIN ISOLATION LEVEL SERIALIZABLE", "BEGIN ISOLATION LEVEL SERIALIZABLE", "BEGIN DEFERRABLE", "BEGIN"]
        );
        let modes = |sql: &str| file_modes(&split(sql), String::as_str);
        assert_eq!(modes("SET x = 1; BEGIN READ ONLY; SELECT 1; COMMIT").begin(), "BEGIN READ ONLY");
        assert!(!modes("BEGIN READ ONLY; SELECT 1; COMMIT").writes());
        assert_eq!(modes("SELECT 1"), TransactionModes::default());
        assert!(modes("SELECT 1").writes());
    }

    #[test]
    fn a_begin_no_commit_ends_is_found_where_it_opens_the_transaction() {
        let split = |sql: &str| -> Vec<String> {
            sql.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        };
        let open = |sql: &str| never_committed(&split(sql), String::as_str).cloned();
        assert_eq!(open("BEGIN; SELECT 1"), Some("BEGIN".to_owned()));
        assert_eq!(
            open("BEGIN; SELECT 1; COMMIT; BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT 2"),
            Some("BEGIN ISOLATION LEVEL SERIALIZABLE".to_owned())
        );
        assert_eq!(open("BEGIN; SELECT 1; COMMIT AND CHAIN; SELECT 2"), Some("COMMIT AND CHAIN".to_owned()));
        assert_eq!(open("BEGIN; SELECT 1; END"), None);
        assert_eq!(open("SELECT 1; BEGIN; SELECT 2; COMMIT; SELECT 3"), None);
        // An empty transaction left open discards nothing.
        assert_eq!(open("BEGIN; SELECT 1; COMMIT AND CHAIN"), None);
        assert_eq!(open("SELECT 1"), None);
    }

    fn kind(sql: &str) -> Kind {
        analyze(sql, 170000).kind
    }

    fn effects(sql: &str) -> Vec<Effect> {
        analyze(sql, 170000).effects
    }

    #[test]
    fn statements_that_cannot_run_in_a_transaction_are_named() {
        for (sql, what) in [
            ("CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE INDEX CONCURRENTLY"),
            ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON s.t (a)", "CREATE INDEX CONCURRENTLY"),
            ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY"),
            ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
            ("REINDEX (VERBOSE, CONCURRENTLY) TABLE t", "REINDEX CONCURRENTLY"),
            ("REINDEX DATABASE d", "REINDEX SCHEMA, SYSTEM or DATABASE"),
            ("VACUUM t", "VACUUM"),
            ("VACUUM (ANALYZE) t", "VACUUM"),
            ("ALTER SYSTEM SET work_mem = '1GB'", "ALTER SYSTEM"),
            ("CREATE DATABASE d", "CREATE DATABASE"),
            ("CLUSTER", "CLUSTER without a table"),
        ] {
            assert_eq!(kind(sql), Kind::NotRun(format!("{what} cannot run inside a transaction block")), "{sql}");
        }
        for sql in ["BEGIN", "START TRANSACTION", "COMMIT", "END", "ROLLBACK", "PREPARE TRANSACTION 'x'"] {
            assert_eq!(kind(sql), Kind::TransactionControl, "{sql}");
        }
        for sql in [
            "SAVEPOINT s",
            "ROLLBACK TO SAVEPOINT s",
            "ANALYZE t",
            "CREATE INDEX i ON t (a)",
            "REINDEX TABLE t",
            "SET search_path = app",
            "ALTER TYPE mood ADD VALUE 'meh'",
        ] {
            assert_eq!(kind(sql), Kind::Runs, "{sql}");
        }
        let add_value = analyze("ALTER TYPE mood ADD VALUE 'meh'", 110000).kind;
        assert!(matches!(add_value, Kind::NotRun(r) if r.contains("before PostgreSQL 12")));
        assert!(matches!(kind("SET lock_timeout = 0"), Kind::NotRun(r) if r.contains("`lock_timeout`")));
        assert!(matches!(kind("SET LOCAL statement_timeout TO '1h'"), Kind::NotRun(_)));
        assert!(matches!(kind("RESET ALL"), Kind::NotRun(_)));
        // The rehearsal's one transaction ran queries already: the server would refuse it (SQLSTATE 25001).
        assert_eq!(
            kind("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
            Kind::NotRun(TRANSACTION_MODES_NOT_RUN.into())
        );
        assert_eq!(kind("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"), Kind::Runs);
        // A rollback does not undo `setval`: rehearsed, it would move the live sequence.
        for sql in [
            "SELECT setval('orders_id_seq', 1, false)",
            "SELECT pg_catalog.setval('s', (SELECT max(id) FROM t))",
            "DO $$ BEGIN PERFORM setval('s', 1); END $$",
        ] {
            assert!(matches!(kind(sql), Kind::NotRun(r) if r.contains("`setval`")), "{sql}");
        }
        assert_eq!(kind("SELECT nextval('s')"), Kind::Runs);
    }

    #[test]
    fn dropped_columns_and_tables_and_type_changes_are_found_in_the_tree() {
        let dropped = effects("ALTER TABLE app.\"Users\" DROP COLUMN email, DROP COLUMN IF EXISTS \"Note\" CASCADE");
        assert_eq!(
            dropped,
            [
                Effect::DropColumn { table: "app.\"Users\"".into(), column: "email".into() },
                Effect::DropColumn { table: "app.\"Users\"".into(), column: "Note".into() },
            ]
        );
        assert_eq!(
            effects("DROP TABLE a, s.b CASCADE"),
            [Effect::Drop {
                tables: vec!["a".into(), "s.b".into()],
                schemas: vec![],
                types: vec![],
                extensions: vec![]
            }]
        );
        assert_eq!(
            effects("DROP SCHEMA IF EXISTS app, \"Old\" CASCADE"),
            [Effect::Drop {
                tables: vec![],
                schemas: vec!["app".into(), "\"Old\"".into()],
                types: vec![],
                extensions: vec![]
            }]
        );
        assert_eq!(effects("DROP VIEW v"), []);
        let change = effects("ALTER TABLE t ALTER COLUMN name TYPE varchar(3), ALTER price TYPE numeric(10,0)");
        assert!(change.contains(&Effect::AlterType { table: "t".into(), column: "name".into(), length: Some(3) }));
        assert!(change.contains(&Effect::AlterType { table: "t".into(), column: "price".into(), length: None }));
        assert!(change.contains(&Effect::Scans { table: "t".into(), what: "ALTER COLUMN TYPE rewrites or scans it" }));
        assert_eq!(
            effects("ALTER TABLE t ALTER c SET DATA TYPE character(5) USING left(c, 5)")[1],
            Effect::AlterType { table: "t".into(), column: "c".into(), length: Some(5) }
        );
    }

    #[test]
    fn deletes_updates_truncates_and_what_scans_a_table_are_found() {
        assert_eq!(effects("DELETE FROM customer WHERE id = 1"), [Effect::Delete { table: "customer".into() }]);
        let update = analyze("UPDATE s.t SET a = 1", 170000);
        assert!(update.counts_rows);
        assert_eq!(update.effects, [Effect::Update { table: "s.t".into(), columns: vec!["a".into()] }]);
        let added = analyze("ALTER TABLE s.t ADD COLUMN \"B\" int, ADD c text DEFAULT 'x'", 170000);
        assert_eq!(added.added_columns, [("s.t".into(), "B".into()), ("s.t".into(), "c".into())]);
        assert_eq!(
            effects("TRUNCATE a, b CASCADE"),
            [
                Effect::Truncate { table: "a".into(), cascade: true },
                Effect::Truncate { table: "b".into(), cascade: true }
            ]
        );
        assert_eq!(effects("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID"), []);
        assert_eq!(effects("ALTER TABLE t ADD COLUMN x int"), []);
        assert_eq!(
            effects("ALTER TABLE t ADD FOREIGN KEY (a) REFERENCES p")[0],
            Effect::Scans { table: "t".into(), what: "ADD CONSTRAINT scans it" }
        );
        assert_eq!(
            effects("ALTER TABLE t ADD CONSTRAINT u UNIQUE (a, b)")[1],
            Effect::Unique { table: "t".into(), columns: vec!["a".into(), "b".into()] }
        );
        assert_eq!(
            effects("ALTER TABLE t ALTER COLUMN a SET NOT NULL"),
            [
                Effect::Scans { table: "t".into(), what: "SET NOT NULL scans it" },
                Effect::SetNotNull { table: "t".into(), column: "a".into() }
            ]
        );
        assert_eq!(
            effects("CREATE UNIQUE INDEX i ON t (a, lower(b))"),
            [Effect::Scans { table: "t".into(), what: "CREATE INDEX scans it" }],
            "an expression is no plain column to count duplicates of"
        );
        assert!(!analyze("CREATE TABLE t (a int)", 170000).counts_rows);
    }

    #[test]
    fn an_added_column_rewrites_when_its_default_may_be_volatile_or_it_is_computed_per_row() {
        const REWRITES: &str = "ADD COLUMN with a volatile default rewrites it";
        assert_eq!(effects("ALTER TABLE t ADD COLUMN a int DEFAULT 0"), []);
        assert_eq!(
            effects("ALTER TABLE t ADD COLUMN a timestamptz DEFAULT clock_timestamp() + interval '1 day'"),
            [Effect::DefaultCalls { table: "t".into(), functions: vec!["clock_timestamp".into()] }]
        );
        assert_eq!(
            effects("ALTER TABLE t ADD b float8 NOT NULL DEFAULT round(random() * 10)"),
            [Effect::DefaultCalls { table: "t".into(), functions: vec!["random".into(), "round".into()] }]
        );
        for sql in [
            "ALTER TABLE t ADD COLUMN id bigserial",
            "ALTER TABLE t ADD COLUMN id int GENERATED ALWAYS AS IDENTITY",
            "ALTER TABLE t ADD COLUMN d int GENERATED ALWAYS AS (a * 2) STORED",
        ] {
            assert_eq!(effects(sql), [Effect::Scans { table: "t".into(), what: REWRITES }], "{sql}");
        }
        assert_eq!(
            analyze("ALTER TABLE t ADD COLUMN a int DEFAULT 0", 100000).effects,
            [Effect::Scans { table: "t".into(), what: REWRITES }],
            "before PostgreSQL 11 every default is written into every row"
        );
    }

    #[test]
    fn an_added_check_or_foreign_key_names_what_it_validates() {
        assert_eq!(
            effects("ALTER TABLE s.t ADD CONSTRAINT c CHECK (a > 0 OR b IS NULL)")[1],
            Effect::Check { table: "s.t".into(), expression: "a > 0 OR b IS NULL".into() }
        );
        assert_eq!(
            effects("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES p (id) ON DELETE CASCADE")[1],
            Effect::ForeignKey {
                table: "t".into(),
                columns: vec!["a".into()],
                referenced: "p".into(),
                referenced_columns: vec!["id".into()]
            }
        );
        assert_eq!(effects("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES p NOT VALID"), []);
    }
}
