//! What fires during a data-only load, and the transactions the load runs in so that nothing is ever
//! switched off outside one.
//!
//! A data-only restore must keep the target's user triggers and foreign key checks from firing on the
//! rows it loads, and must leave every trigger and key exactly as it was, whatever happens, even if the
//! process is killed. So nothing is switched off in a committed transaction:
//!
//! - a superuser's sessions set `session_replication_role = replica`, which keeps foreign key checks and
//!   ordinary triggers from firing for that session only; triggers that fire even then (`ENABLE ALWAYS`,
//!   `ENABLE REPLICA`) are disabled by name inside the transaction that loads their table;
//! - other roles may not touch the system triggers behind foreign keys, so the keys stay on and check
//!   each row, and the load fills the tables a key references before the tables it checks. Tables whose
//!   keys refer to each other in a loop (a table referencing itself, two tables referencing each other)
//!   load in one transaction that drops those keys, loads, and adds them back (validating them); their
//!   user triggers are disabled by name in the transaction that loads their table.
//!
//! A table loaded in its own transaction loads all its parts on one session; any other table's parts
//! load in parallel, each in a transaction of its own.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use std::sync::atomic::{AtomicUsize, Ordering};

use super::load::Loader;
use super::plan::{PartStep, RestorePlan};
use super::target::{self, unreadable};
use crate::cancel::Cancel;
use crate::catalog::foreign_keys;
use crate::error::{Error, ErrorKind, Result, SqlState};
use crate::graph;
use crate::pg::{Session, quote_ident, quote_literal, quote_qualified};
use crate::sql::foreign_key;

/// A user trigger enabled on a restored table: disabled by name for the load, then given its own mode
/// back (origin, replica or always), so that a trigger the user had disabled stays disabled.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Trigger {
    /// The table, qualified and quoted.
    table: String,
    /// The restored table whose load fires it, qualified and quoted: its own table, or the partitioned
    /// table a load goes through.
    loaded: String,
    /// The trigger's name, quoted.
    name: String,
    mode: TriggerFires,
}

/// When an enabled trigger fires (`pg_trigger.tgenabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum TriggerFires {
    /// `O`: unless `session_replication_role` is `replica`.
    Origin,
    /// `R`: only when it is `replica`.
    Replica,
    /// `A`: always.
    Always,
}

impl Trigger {
    /// The enabled user triggers of the plan's tables.
    pub async fn read(session: &Session, plan: &RestorePlan) -> Result<Vec<Trigger>> {
        let names = plan.table_names();
        let mut out = Vec::new();
        for row in session.query(include_str!("sql/target_triggers.sql"), &[&names]).await? {
            let get = |c: &str| row.try_get::<_, String>(c).map_err(|e| unreadable("the target's triggers", e));
            let mode = match get("mode")?.as_str() {
                "R" => TriggerFires::Replica,
                "A" => TriggerFires::Always,
                _ => TriggerFires::Origin,
            };
            out.push(Trigger { table: get("table_name")?, loaded: get("loaded_table")?, name: get("name")?, mode });
        }
        Ok(out)
    }

    /// Whether it fires in a session with `session_replication_role = replica` (a superuser's load).
    fn fires_as_replica(&self) -> bool {
        self.mode != TriggerFires::Origin
    }

    /// `ALTER TABLE` statements that switch `triggers` off (`enable` false) or back to their modes.
    fn statements<'a>(triggers: impl Iterator<Item = &'a Trigger>, enable: bool) -> Vec<String> {
        let mut by_table: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for t in triggers {
            let action = match (enable, t.mode) {
                (false, _) => "DISABLE TRIGGER",
                (true, TriggerFires::Replica) => "ENABLE REPLICA TRIGGER",
                (true, TriggerFires::Always) => "ENABLE ALWAYS TRIGGER",
                (true, TriggerFires::Origin) => "ENABLE TRIGGER",
            };
            by_table.entry(&t.table).or_default().push(format!("{action} {}", t.name));
        }
        by_table.into_iter().map(|(table, actions)| format!("ALTER TABLE {table} {};", actions.join(", "))).collect()
    }
}

/// A foreign key on or to a restored table, as the target declares it.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ForeignKey {
    /// What finds the rows that break it.
    #[serde(flatten)]
    pub key: foreign_key::ForeignKey,
    /// `pg_get_constraintdef`: what adds it back.
    definition: String,
    comment: Option<String>,
    /// The restored tables on each side (the table, or its partitions), qualified and quoted.
    loaded_tables: Vec<String>,
    referenced_tables: Vec<String>,
}

impl ForeignKey {
    pub async fn read(session: &Session, plan: &RestorePlan) -> Result<Vec<ForeignKey>> {
        let names = Some(plan.table_names());
        let mut out = Vec::new();
        for row in session.query(foreign_keys::SQL, &[&names]).await? {
            let fail = |e| unreadable("the target's foreign keys", e);
            out.push(ForeignKey {
                key: foreign_keys::read(&row)?,
                definition: row.try_get("definition").map_err(fail)?,
                comment: row.try_get("comment").map_err(fail)?,
                loaded_tables: row.try_get("loaded_tables").map_err(fail)?,
                referenced_tables: row.try_get("referenced_tables").map_err(fail)?,
            });
        }
        Ok(out)
    }

    /// Whether its checks fire on rows the load writes (its referencing side is loaded).
    pub fn fires_on_load(&self) -> bool {
        !self.loaded_tables.is_empty()
    }

    /// The restored tables it references from a table the restore does not load: emptying those with
    /// `TRUNCATE` is refused while it exists, so they are emptied row by row (see
    /// [`super::target::empty_tables`]).
    pub fn referenced_from_outside(&self) -> &[String] {
        if self.loaded_tables.is_empty() { &self.referenced_tables } else { &[] }
    }

    /// `ALTER TABLE ... DROP CONSTRAINT`.
    fn drop_statement(&self) -> String {
        format!("ALTER TABLE {} DROP CONSTRAINT {};", self.key.child, quote_ident(&self.key.name))
    }

    /// The statements that add it back as it was: validating it (in the loading transaction) when it was
    /// valid, `NOT VALID` when it was not, with its comment.
    fn add_statements(&self) -> Vec<String> {
        // pg_get_constraintdef says NOT VALID itself for a key that is not valid.
        let mut out = vec![format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {};",
            self.key.child,
            quote_ident(&self.key.name),
            self.definition
        )];
        if let Some(comment) = &self.comment {
            out.push(format!(
                "COMMENT ON CONSTRAINT {} ON {} IS {};",
                quote_ident(&self.key.name),
                self.key.child,
                quote_literal(comment)
            ));
        }
        out
    }

    /// Counts the rows that break it, and names it with an example when there are any. Not for temporal
    /// keys, whose rows are not matched by equality.
    pub async fn violations(&self, session: &Session) -> Result<Option<String>> {
        let row = session.query_one(&self.key.violations_sql(), &[]).await?;
        let count: i64 = row.try_get(0).map_err(|e| unreadable("a foreign key's violations", e))?;
        if count == 0 {
            return Ok(None);
        }
        let example: Option<String> = row.try_get(1).map_err(|e| unreadable("a foreign key's violations", e))?;
        Ok(Some(self.key.violation(count, &example.unwrap_or_default())))
    }
}

/// One transaction of a data-only load: some parts, and what its transaction switches off before them
/// and back after them.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Unit {
    /// Names it in messages: ``part 3 (`public.t`)``, ``table `public.t` ``, ``tables `a`, `b` ``.
    pub name: String,
    /// Positions in the plan's data of the parts it loads, in order.
    pub parts: Vec<usize>,
    /// Run before the parts, in the unit's transaction: triggers disabled, keys dropped. Empty for a part
    /// loaded on its own, which needs no transaction of its own.
    pub before: Vec<String>,
    /// Run after the parts, in the same transaction: keys added back, triggers enabled again.
    pub after: Vec<String>,
    /// Positions of the units that must be done first: they fill tables this one's keys reference.
    pub deps: Vec<usize>,
    pub bytes: u64,
}

impl Unit {
    fn part(plan: &RestorePlan, p: usize) -> Unit {
        let part = &plan.data[p];
        Unit {
            name: part.label(),
            parts: vec![p],
            before: Vec::new(),
            after: Vec::new(),
            deps: Vec::new(),
            bytes: part.bytes,
        }
    }

    /// Loads the unit on `session`: its parts one by one, or, when it switches something off, all of it
    /// in one transaction that switches it back on before it commits.
    pub async fn run(
        &self,
        session: &Session,
        loader: &Loader,
        parts: &[PartStep],
        loaded_parts: &AtomicUsize,
        cancel: &Cancel,
    ) -> Result<u64> {
        if self.before.is_empty() && self.after.is_empty() {
            let mut rows = 0;
            for &p in &self.parts {
                rows += loader.load_part(session, &parts[p]).await?;
                loaded_parts.fetch_add(1, Ordering::SeqCst);
            }
            return Ok(rows);
        }
        session.batch("BEGIN").await?;
        let in_transaction = async {
            batch(session, &self.before).await?;
            let mut rows = 0;
            for &p in &self.parts {
                rows += loader.load_part(session, &parts[p]).await?;
            }
            immediate_then(session, &self.after).await?;
            // A cancel request that reaches an idle session does nothing: ask before committing.
            cancel.check("the restore")?;
            session.batch("COMMIT").await?;
            Ok::<_, Error>(rows)
        }
        .await;
        match in_transaction {
            Ok(rows) => {
                loaded_parts.fetch_add(self.parts.len(), Ordering::SeqCst);
                Ok(rows)
            }
            Err(e) => {
                let _ = session.batch("ROLLBACK").await;
                Err(e.context(format!("loading {} (rolled back)", self.name)))
            }
        }
    }
}

/// Runs `statements`, which add keys back and switch triggers on, after the load in its transaction: the
/// checks of a `DEFERRABLE INITIALLY DEFERRED` key the load kept on are made first (`SET CONSTRAINTS ALL
/// IMMEDIATE`), since PostgreSQL refuses to alter a table that has such checks pending (SQLSTATE 55006,
/// "cannot ALTER TABLE because it has pending trigger events"); they would be made at commit anyway.
pub(super) async fn immediate_then(session: &Session, statements: &[String]) -> Result<()> {
    if statements.is_empty() {
        return Ok(());
    }
    session.batch("SET CONSTRAINTS ALL IMMEDIATE").await?;
    batch(session, statements).await
}

/// Runs `statements` in batches of 200.
pub(super) async fn batch(session: &Session, statements: &[String]) -> Result<()> {
    for chunk in statements.chunks(200) {
        session.batch(&chunk.join("\n")).await?;
    }
    Ok(())
}

/// The units of a data-only load of `plan`, given the target's enabled user triggers and foreign keys.
/// Fails, before anything changes, if they cannot be ordered (which the grouping of loops prevents).
pub(super) fn units(
    plan: &RestorePlan,
    triggers: &[Trigger],
    keys: &[ForeignKey],
    superuser: bool,
) -> Result<Vec<Unit>> {
    let tables: Vec<String> = plan.tables.iter().map(|t| quote_qualified(&t.name)).collect();
    let table_of: HashMap<&str, usize> = tables.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let mut parts_of: Vec<Vec<usize>> = vec![Vec::new(); tables.len()];
    for (i, p) in plan.data.iter().enumerate() {
        if let Some(&t) = table_of.get(quote_qualified(&p.table).as_str()) {
            parts_of[t].push(i);
        }
    }
    // The keys that check rows as they load: a superuser's sessions keep them all from firing.
    let firing: Vec<&ForeignKey> =
        if superuser { Vec::new() } else { keys.iter().filter(|k| k.fires_on_load()).collect() };
    let restored =
        |names: &[String]| -> Vec<usize> { names.iter().filter_map(|n| table_of.get(n.as_str()).copied()).collect() };
    // Which table must be filled before which: a key's referencing tables after its referenced ones.
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for k in &firing {
        for c in restored(&k.loaded_tables) {
            for p in restored(&k.referenced_tables) {
                edges.push((c, p));
            }
        }
    }
    // A table in a loop, or with triggers to switch off, loads in a transaction of its own: a group.
    let mut group_of: Vec<Option<usize>> = vec![None; tables.len()];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for cycle in graph::cycles(&edges) {
        for &t in &cycle {
            group_of[t] = Some(groups.len());
        }
        groups.push(cycle);
    }
    let switched: Vec<&Trigger> = triggers.iter().filter(|t| !superuser || t.fires_as_replica()).collect();
    for t in &switched {
        if let Some(&i) = table_of.get(t.loaded.as_str())
            && group_of[i].is_none()
        {
            group_of[i] = Some(groups.len());
            groups.push(vec![i]);
        }
    }

    let mut units: Vec<Unit> = Vec::new();
    let mut unit_of_table: Vec<Vec<usize>> = vec![Vec::new(); tables.len()];
    for group in &groups {
        let mut members = group.clone();
        members.sort_unstable();
        let in_group = |names: &[String]| restored(names).iter().any(|t| members.contains(t));
        // The keys that make the loop: both sides in the group.
        let dropped: Vec<&ForeignKey> =
            firing.iter().copied().filter(|k| in_group(&k.loaded_tables) && in_group(&k.referenced_tables)).collect();
        let own_triggers = || {
            switched.iter().copied().filter(|t| table_of.get(t.loaded.as_str()).is_some_and(|i| members.contains(i)))
        };
        let mut before = Trigger::statements(own_triggers(), false);
        before.extend(dropped.iter().map(|k| k.drop_statement()));
        let mut after: Vec<String> = dropped.iter().flat_map(|k| k.add_statements()).collect();
        after.extend(Trigger::statements(own_triggers(), true));
        let parts: Vec<usize> = members.iter().flat_map(|&t| parts_of[t].iter().copied()).collect();
        let names: Vec<String> = members.iter().map(|&t| format!("`{}`", plan.tables[t].name)).collect();
        let name =
            if names.len() == 1 { format!("table {}", names[0]) } else { format!("tables {}", names.join(", ")) };
        for &t in &members {
            unit_of_table[t].push(units.len());
        }
        units.push(Unit {
            name,
            bytes: parts.iter().map(|&p| plan.data[p].bytes).sum(),
            parts,
            before,
            after,
            deps: Vec::new(),
        });
    }
    for (t, parts) in parts_of.iter().enumerate().filter(|(t, _)| group_of[*t].is_none()) {
        for &p in parts {
            unit_of_table[t].push(units.len());
            units.push(Unit::part(plan, p));
        }
    }
    // A unit waits for the units that fill what its tables' keys reference.
    for &(c, p) in &edges {
        for &u in &unit_of_table[c] {
            let waits: Vec<usize> = unit_of_table[p].iter().copied().filter(|&v| v != u).collect();
            units[u].deps.extend(waits);
        }
    }
    for u in &mut units {
        u.deps.sort_unstable();
        u.deps.dedup();
    }
    let deps: Vec<Vec<usize>> = units.iter().map(|u| u.deps.clone()).collect();
    if graph::order(units.len(), &deps).is_none() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the target's foreign keys leave no order in which to load the archive's tables; nothing was restored",
        )
        .with_hint("restore as a superuser, or with `--single-transaction`"));
    }
    Ok(units)
}

/// Tries, before anything is written, what the load of `units` switches off and back on (a table's
/// triggers disabled, the keys of a loop dropped and added back: the table's owner's to do), in a
/// savepoint of the session's transaction that is then rolled back, and refuses the load if the server
/// refuses any of it. Stopped there after `--clean` emptied the tables, the load would have left them
/// empty. Run in the transaction that empties them, so that the keys come back over empty tables.
pub(super) async fn rehearse(session: &Session, plan: &RestorePlan, units: &[Unit], cancel: &Cancel) -> Result<()> {
    session.batch("SAVEPOINT pgsafe_rehearsal").await?;
    for unit in units.iter().filter(|u| !u.before.is_empty() || !u.after.is_empty()) {
        cancel.check("the restore")?;
        let tried = async {
            batch(session, &unit.before).await?;
            batch(session, &unit.after).await
        }
        .await;
        if let Err(e) = tried {
            session.batch("ROLLBACK TO SAVEPOINT pgsafe_rehearsal").await?;
            return Err(refusal(session, plan, unit, e).await);
        }
    }
    session.batch("ROLLBACK TO SAVEPOINT pgsafe_rehearsal").await
}

/// The error of a [`rehearse`] that `e` stopped on `unit`: where the server refused for want of a right
/// (SQLSTATE 42501), with a hint at who has it.
async fn refusal(session: &Session, plan: &RestorePlan, unit: &Unit, e: Error) -> Error {
    let e = e.context(format!(
        "the load of {} switches off triggers or foreign keys while it loads, and trying that first failed",
        unit.name
    ));
    if e.sqlstate() != Some(SqlState::INSUFFICIENT_PRIVILEGE) {
        return e;
    }
    let tables = plan.tables.iter().filter(|t| unit.parts.iter().any(|&p| plan.data[p].table == t.name));
    // Who may: for the hint only, which the refusal can do without.
    let rights = target::Rights::read(session, tables).await.unwrap_or_default();
    match target::owners_hint(&rights.iter().collect::<Vec<_>>()) {
        Some((role, owners)) => e.with_hint(format!(
            "only a table's owner may: restore as the owner, {owners}, or a role that is a member of it (`--role {role}`), or as a superuser"
        )),
        None => e,
    }
}

/// Statements that switch off, for a load in one transaction, every trigger and key [`units`] would
/// handle, and the statements that bring them back (keys validated as they are added). When the tables
/// are `emptied` first, a key from a table outside the load into one of them would fire on the rows
/// deleted (and cascade): for a role that cannot keep it quiet, it is dropped too.
pub(super) fn switch_all(
    triggers: &[Trigger],
    keys: &[ForeignKey],
    superuser: bool,
    emptied: bool,
) -> (Vec<String>, Vec<String>) {
    let switched: Vec<&Trigger> = triggers.iter().filter(|t| !superuser || t.fires_as_replica()).collect();
    let dropped: Vec<&ForeignKey> = if superuser {
        Vec::new()
    } else {
        keys.iter().filter(|k| k.fires_on_load() || (emptied && !k.referenced_from_outside().is_empty())).collect()
    };
    let mut off = Trigger::statements(switched.iter().copied(), false);
    off.extend(dropped.iter().map(|k| k.drop_statement()));
    let mut on: Vec<String> = dropped.iter().flat_map(|k| k.add_statements()).collect();
    on.extend(Trigger::statements(switched.iter().copied(), true));
    (off, on)
}
