//! A foreign key that the restored rows break, in a whole restore: added `NOT VALID`, so that the restore
//! goes on and the key exists and checks new rows, and reported with the rows that break it.
//!
//! Rows can break a key that the source holds valid when the archive has the referencing rows and not the
//! referenced ones (`dump --exclude-table-data` of the referenced table), or when `--clean` restores into a
//! target whose own referenced table lacks them. pg_restore reports the failed key, leaves it out and goes
//! on; pgsafe stopped the whole restore there, leaving every later key, trigger, privilege and sequence
//! value unmade. The key is decided by its SQLSTATE (`23503`) alone; any other failure of a post-data
//! object still stops the restore. With `--single-transaction` each attempt runs in a savepoint, and the
//! problem makes the whole transaction roll back at the end, as a verification problem does: all or
//! nothing, with every such key named.

use serde::Serialize;

use super::plan::ObjectStep;
use super::target::unreadable;
use crate::cancel::Cancel;
use crate::catalog::foreign_keys;
use crate::error::{Error, ErrorKind, Result, SqlState};
use crate::pg::{Session, quote_ident, quote_qualified};
use crate::schema::ObjectKind;
use crate::sql::statements;

/// A foreign key of the archive that the restored rows break, added `NOT VALID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotValidKey {
    /// The constraint's name, not quoted.
    pub name: String,
    /// The referencing table, qualified and quoted.
    pub table: String,
    /// The referenced table, qualified and quoted.
    pub referenced_table: String,
    /// How many rows of `table` reference a key `referenced_table` lacks; `None` for a temporal key
    /// (PostgreSQL 18's `PERIOD`), whose rows are matched by periods and not counted.
    pub violating_rows: Option<i64>,
    /// The key of one such row, as `(42)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    /// What validates it once the rows are fixed (or, `left_out`, adds it).
    pub validate: String,
    /// The server could not add it `NOT VALID` either (a partitioned table's key before PostgreSQL 18):
    /// it was left out, as pg_restore leaves out a key that fails.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub left_out: bool,
}

impl NotValidKey {
    /// The report's problem line: the rows that break the key, and, when the key stays (`kept`: the
    /// restore did not roll back), how it was made and what validates it.
    pub fn problem(&self, kept: bool) -> String {
        let what = format!("foreign key `{}` of `{}`", self.name, self.table);
        let rows = match (self.violating_rows, &self.example) {
            (Some(n), Some(example)) => format!(
                "{n} {} keys missing from `{}` (for example {example})",
                if n == 1 { "row references" } else { "rows reference" },
                self.referenced_table
            ),
            (Some(n), None) => format!(
                "{n} {} keys missing from `{}`",
                if n == 1 { "row references" } else { "rows reference" },
                self.referenced_table
            ),
            (None, _) => format!("rows reference keys missing from `{}`", self.referenced_table),
        };
        if kept && self.left_out {
            format!(
                "{what}: {rows}; the server cannot add it NOT VALID (a partitioned table's key, before PostgreSQL 18), \
                 so it was left out: once those rows are fixed, `{}` adds it",
                self.validate
            )
        } else if kept {
            format!(
                "{what}: {rows}; it was added NOT VALID (it checks new rows only): once those rows are fixed, `{}` validates it",
                self.validate
            )
        } else {
            format!("{what}: {rows}")
        }
    }
}

/// Makes `o`, a post-data object, on `session`. A foreign key whose rows do not hold (SQLSTATE 23503) is
/// added `NOT VALID` with its comment, and returned; anything else fails as it did. In a transaction
/// (`in_transaction`: `--single-transaction`), each attempt runs in a savepoint, so that a failed one
/// leaves the transaction usable.
pub(super) async fn create(
    session: &Session,
    o: &ObjectStep,
    cancel: &Cancel,
    in_transaction: bool,
) -> Result<Option<NotValidKey>> {
    let Err(e) = attempt(session, o, &o.sql, cancel, in_transaction).await else { return Ok(None) };
    if o.kind != ObjectKind::FkConstraint || e.sqlstate() != Some(SqlState::FOREIGN_KEY_VIOLATION) {
        return Err(e);
    }
    let (Some(sql), Some(name), Some(table)) = (not_valid_sql(&o.sql), constraint_name(o), o.table.as_ref()) else {
        return Err(e);
    };
    if let Err(again) = attempt(session, o, &sql, cancel, in_transaction).await {
        // A partitioned table's key, which the server cannot add NOT VALID before PostgreSQL 18 (42809):
        // it cannot be added at all while its rows break it. Anything else (a connection gone, a
        // cancellation, a deadlock) fails the restore as the first error did.
        let partitioned_before_18 =
            again.sqlstate() == Some(SqlState::WRONG_OBJECT_TYPE) && session.server_version() < 180000;
        let Some(referenced_table) = partitioned_before_18.then(|| referenced_table(&o.sql)).flatten() else {
            return Err(e.and_hint(format!("adding it NOT VALID instead failed too: {again}")));
        };
        tracing::warn!("foreign key `{name}` of `{table}`: rows break it, and adding it NOT VALID failed: {again}");
        return Ok(Some(NotValidKey {
            name,
            table: quote_qualified(table),
            referenced_table,
            violating_rows: None,
            example: None,
            validate: statements(&o.sql).get(0).map(|s| format!("{s};")).unwrap_or_default(),
            left_out: true,
        }));
    }
    let table = quote_qualified(table);
    let key = read(session, &name, &table).await?;
    tracing::warn!("{}: rows break it, added NOT VALID", key.what());
    let (violating_rows, example) = if key.period {
        (None, None)
    } else {
        let row = session.query_one(&key.violations_sql(), &[]).await?;
        let count: i64 = row.try_get(0).map_err(|e| unreadable("a foreign key's violations", e))?;
        let example: Option<String> = row.try_get(1).map_err(|e| unreadable("a foreign key's violations", e))?;
        (Some(count), example)
    };
    Ok(Some(NotValidKey {
        validate: format!("ALTER TABLE {} VALIDATE CONSTRAINT {};", key.child, quote_ident(&key.name)),
        name: key.name,
        table: key.child,
        referenced_table: key.parent,
        violating_rows,
        example,
        left_out: false,
    }))
}

/// The table a foreign key's `ALTER TABLE ... ADD CONSTRAINT ... REFERENCES` (the first statement of
/// `sql`) references, qualified and quoted.
fn referenced_table(sql: &str) -> Option<String> {
    use pg_query::NodeEnum;
    let parsed = pg_query::parse(statements(sql).get(0)?, 0).ok()?;
    let Some(NodeEnum::AlterTableStmt(alter)) = parsed.protobuf.stmts.first()?.stmt.as_ref()?.node.as_ref() else {
        return None;
    };
    alter.cmds.iter().find_map(|cmd| {
        let Some(NodeEnum::AlterTableCmd(cmd)) = cmd.node.as_ref() else { return None };
        let Some(NodeEnum::Constraint(c)) = cmd.def.as_ref()?.node.as_ref() else { return None };
        let t = c.pktable.as_ref()?;
        Some(match t.schemaname.as_str() {
            "" => quote_ident(&t.relname),
            schema => format!("{}.{}", quote_ident(schema), quote_ident(&t.relname)),
        })
    })
}

/// Runs `sql`, statements of `o`, in a savepoint of the session's transaction when `in_transaction`.
async fn attempt(session: &Session, o: &ObjectStep, sql: &str, cancel: &Cancel, in_transaction: bool) -> Result<()> {
    if !in_transaction {
        return super::whole::run_statements(session, o, sql, cancel).await;
    }
    session.batch("SAVEPOINT pgsafe_key").await?;
    match super::whole::run_statements(session, o, sql, cancel).await {
        Ok(()) => session.batch("RELEASE SAVEPOINT pgsafe_key").await,
        Err(e) => {
            // A server that is gone fails this too; the statement's error is the one to report.
            let _ = session.batch("ROLLBACK TO SAVEPOINT pgsafe_key; RELEASE SAVEPOINT pgsafe_key").await;
            Err(e)
        }
    }
}

/// `sql`, a foreign key's statements (`ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY ...;`, then its
/// comment), with the key added `NOT VALID`; `None` when its first statement is not such a key.
fn not_valid_sql(sql: &str) -> Option<String> {
    let all = statements(sql);
    let first = all.get(0)?;
    let valid = first.starts_with("ALTER TABLE ") && first.contains(" FOREIGN KEY ") && !first.ends_with(" NOT VALID");
    if !valid {
        return None;
    }
    let mut out = format!("{first} NOT VALID;\n");
    for rest in (1..all.len()).filter_map(|i| all.get(i)) {
        out.push_str(rest);
        out.push_str(";\n");
    }
    Some(out)
}

/// The constraint's name, not quoted: its label is `FK CONSTRAINT schema.table name`.
fn constraint_name(o: &ObjectStep) -> Option<String> {
    let table = o.table.as_ref()?;
    o.label.strip_prefix(&format!("{} {}.{} ", o.kind, table.schema, table.name)).map(str::to_owned)
}

/// The foreign key `name` of `table` (qualified and quoted), as the target's catalog has it.
async fn read(session: &Session, name: &str, table: &str) -> Result<crate::sql::foreign_key::ForeignKey> {
    let tables = Some(vec![table.to_string()]);
    for row in session.query(foreign_keys::SQL, &[&tables]).await? {
        let key = foreign_keys::read(&row)?;
        if key.name == name && key.child == table {
            return Ok(key);
        }
    }
    Err(Error::new(
        ErrorKind::Database,
        format!("foreign key `{name}` of `{table}` was added NOT VALID, but the target's catalog does not show it"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::TableName;
    use crate::schema::Section;

    fn key(sql: &str) -> ObjectStep {
        ObjectStep {
            id: 1,
            kind: ObjectKind::FkConstraint,
            label: "FK CONSTRAINT public.child child_parent_fkey".into(),
            section: Section::PostData,
            owner: None,
            sql: sql.into(),
            deps: Vec::new(),
            table: Some(TableName { schema: "public".into(), name: "child".into() }),
            size: 0,
            outside_tables: Vec::new(),
            left_out: Vec::new(),
        }
    }

    #[test]
    fn a_key_and_its_comment_are_made_again_not_valid() {
        let sql = "ALTER TABLE ONLY public.child ADD CONSTRAINT child_parent_fkey FOREIGN KEY (parent_id) \
                   REFERENCES public.parent(id) DEFERRABLE INITIALLY DEFERRED;\n\
                   COMMENT ON CONSTRAINT child_parent_fkey ON public.child IS 'the; parent';\n";
        assert_eq!(
            not_valid_sql(sql).as_deref(),
            Some(
                "ALTER TABLE ONLY public.child ADD CONSTRAINT child_parent_fkey FOREIGN KEY (parent_id) \
                 REFERENCES public.parent(id) DEFERRABLE INITIALLY DEFERRED NOT VALID;\n\
                 COMMENT ON CONSTRAINT child_parent_fkey ON public.child IS 'the; parent';\n"
            )
        );
        // One that is NOT VALID already cannot fail for its rows; anything else is not touched.
        assert_eq!(
            not_valid_sql("ALTER TABLE ONLY a ADD CONSTRAINT k FOREIGN KEY (x) REFERENCES b(y) NOT VALID;"),
            None
        );
        assert_eq!(not_valid_sql("DO $$BEGIN EXECUTE 'ALTER TABLE ...'; END$$;"), None);
        assert_eq!(constraint_name(&key(sql)).as_deref(), Some("child_parent_fkey"));
        assert_eq!(referenced_table(sql).as_deref(), Some("public.parent"));
        assert_eq!(
            referenced_table("ALTER TABLE a ADD CONSTRAINT k FOREIGN KEY (x) REFERENCES \"My\".\"B\"(y);").as_deref(),
            Some("\"My\".\"B\"")
        );
    }

    #[test]
    fn the_problem_names_the_key_its_tables_rows_and_what_validates_it_while_it_stays() {
        let k = NotValidKey {
            name: "child_parent_fkey".into(),
            table: "public.child".into(),
            referenced_table: "public.parent".into(),
            violating_rows: Some(2),
            example: Some("(3)".into()),
            validate: "ALTER TABLE public.child VALIDATE CONSTRAINT child_parent_fkey;".into(),
            left_out: false,
        };
        assert_eq!(
            k.problem(true),
            "foreign key `child_parent_fkey` of `public.child`: 2 rows reference keys missing from `public.parent` \
             (for example (3)); it was added NOT VALID (it checks new rows only): once those rows are fixed, \
             `ALTER TABLE public.child VALIDATE CONSTRAINT child_parent_fkey;` validates it"
        );
        assert_eq!(
            k.problem(false),
            "foreign key `child_parent_fkey` of `public.child`: 2 rows reference keys missing from `public.parent` \
             (for example (3))"
        );
    }
}
