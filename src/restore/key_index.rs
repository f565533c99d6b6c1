//! A primary key or unique constraint made as its index first, so that it builds beside its table's
//! other indexes.
//!
//! `ALTER TABLE ... ADD CONSTRAINT c PRIMARY KEY (...)` builds its index under `ACCESS EXCLUSIVE`, so the
//! table's other indexes, whose `CREATE INDEX` takes `SHARE`, wait for it: one session builds while the
//! other waits, and both cores are busy only while the server's parallel workers sort, not while the
//! leader alone merges and writes the index. `CREATE UNIQUE INDEX c ...` takes `SHARE`, so the table's
//! indexes build together, and `ALTER TABLE ... ADD CONSTRAINT c PRIMARY KEY USING INDEX c` then makes it
//! the constraint in a moment: the same index (name, columns, `INCLUDE`, storage parameters, `NULLS NOT
//! DISTINCT`, tablespace) under the same constraint, and the columns made `NOT NULL` as the one
//! statement does.
//!
//! The two run in two transactions: in one, two keys of the same table would each hold `SHARE` while
//! waiting for `ACCESS EXCLUSIVE`, a deadlock.

use pg_query::NodeEnum;
use pg_query::protobuf::{AlterTableType, ConstrType, Node, ObjectType};

/// An object's statements cut around its key: `index` builds the key's index (after the statements
/// before it, such as `SET default_tablespace`), `rest` makes it the constraint and runs what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyThroughIndex {
    pub index: String,
    pub rest: String,
}

/// `sql`, an object's statements, cut so when its one `ALTER TABLE [ONLY] t ADD CONSTRAINT c PRIMARY KEY |
/// UNIQUE (columns)` can be made through its index. None for anything else: an exclusion constraint, a
/// deferrable key (whose index is not immediate), PostgreSQL 18's `WITHOUT OVERLAPS`, a key that names its
/// index already, statements the parser does not read. It is for ordinary tables only: a partitioned
/// table's key cannot be added `USING INDEX`.
pub fn key_through_index(sql: &str) -> Option<KeyThroughIndex> {
    let parsed = pg_query::parse(sql, 0).ok()?.protobuf;
    let mut keys = parsed.stmts.iter().filter_map(|raw| match raw.stmt.as_ref()?.node.as_ref()? {
        NodeEnum::AlterTableStmt(alter) => Some((raw, alter, key_of(alter)?)),
        _ => None,
    });
    let (raw, alter, key) = keys.next()?;
    if keys.next().is_some() {
        return None;
    }
    let relation = alter.relation.clone()?;

    // The deparser wants every field as the parser sets it, so both statements start from parsed ones.
    let mut index_stmt = pg_query::parse("CREATE UNIQUE INDEX i ON t USING btree (c)", 0).ok()?.protobuf;
    let Some(NodeEnum::IndexStmt(index)) = index_stmt.stmts.first_mut()?.stmt.as_deref_mut()?.node.as_mut() else {
        return None;
    };
    let column = index.index_params.first()?.clone();
    let elem = |name: &Node| -> Option<Node> {
        let NodeEnum::String(s) = name.node.as_ref()? else { return None };
        let mut e = column.clone();
        let Some(NodeEnum::IndexElem(ie)) = e.node.as_mut() else { return None };
        ie.name = s.sval.clone();
        Some(e)
    };
    index.idxname = key.conname.clone();
    index.relation = Some(pg_query::protobuf::RangeVar { inh: true, ..relation });
    index.index_params = key.keys.iter().map(elem).collect::<Option<_>>()?;
    index.index_including_params = key.including.iter().map(elem).collect::<Option<_>>()?;
    index.options = key.options.clone();
    index.nulls_not_distinct = key.nulls_not_distinct;
    let index = pg_query::deparse(&index_stmt, pg_query::DeparseOptions::default()).ok()?;

    let mut constraint_stmt = pg_query::protobuf::ParseResult { version: parsed.version, stmts: vec![raw.clone()] };
    let Some(NodeEnum::AlterTableStmt(alter)) = constraint_stmt.stmts[0].stmt.as_deref_mut()?.node.as_mut() else {
        return None;
    };
    let Some(NodeEnum::AlterTableCmd(cmd)) = alter.cmds[0].node.as_mut() else { return None };
    let Some(NodeEnum::Constraint(c)) = cmd.def.as_deref_mut()?.node.as_mut() else { return None };
    c.indexname = c.conname.clone();
    c.keys.clear();
    c.including.clear();
    c.options.clear();
    c.nulls_not_distinct = false;
    let constraint = pg_query::deparse(&constraint_stmt, pg_query::DeparseOptions::default()).ok()?;

    // The statement's own text is replaced; what is before and after it stays as written.
    let start = usize::try_from(raw.stmt_location).ok()?;
    let end = match raw.stmt_len {
        0 => sql.len(),
        len => start + usize::try_from(len).ok()?,
    };
    let (before, after) = (sql.get(..start)?, sql.get(end..)?);
    Some(KeyThroughIndex { index: format!("{before}{index};\n"), rest: format!("{constraint}{after}") })
}

/// The primary key or unique constraint that `alter` adds, when it is one that can be made through its
/// index.
fn key_of(alter: &pg_query::protobuf::AlterTableStmt) -> Option<&pg_query::protobuf::Constraint> {
    if alter.objtype != ObjectType::ObjectTable as i32 || alter.cmds.len() != 1 {
        return None;
    }
    let Some(NodeEnum::AlterTableCmd(cmd)) = alter.cmds[0].node.as_ref() else { return None };
    if cmd.subtype != AlterTableType::AtAddConstraint as i32 {
        return None;
    }
    let Some(NodeEnum::Constraint(c)) = cmd.def.as_ref()?.node.as_ref() else { return None };
    let kind = ConstrType::try_from(c.contype).ok()?;
    let plain = !c.deferrable
        && !c.initdeferred
        && !c.without_overlaps
        && c.indexname.is_empty()
        && c.indexspace.is_empty()
        && c.access_method.is_empty()
        && c.where_clause.is_none()
        && !c.conname.is_empty()
        && !c.keys.is_empty();
    (matches!(kind, ConstrType::ConstrPrimary | ConstrType::ConstrUnique) && plain).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(sql: &str) -> (String, String) {
        let k = key_through_index(sql).unwrap_or_else(|| panic!("not cut: {sql}"));
        (k.index, k.rest)
    }

    #[test]
    fn a_primary_key_is_made_through_a_unique_index_of_its_name() {
        let (index, rest) = cut(
            "ALTER TABLE ONLY public.lineitem ADD CONSTRAINT lineitem_pkey PRIMARY KEY (l_orderkey, l_linenumber);\n",
        );
        assert_eq!(
            index,
            "CREATE UNIQUE INDEX lineitem_pkey ON public.lineitem USING btree (l_orderkey, l_linenumber);\n"
        );
        assert_eq!(
            rest,
            "ALTER TABLE ONLY public.lineitem ADD CONSTRAINT lineitem_pkey PRIMARY KEY USING INDEX lineitem_pkey;\n"
        );
        // Keywords stay quoted.
        let (index, rest) = cut(r#"ALTER TABLE ONLY "user"."order" ADD CONSTRAINT "primary" PRIMARY KEY ("select");"#);
        assert_eq!(index, "CREATE UNIQUE INDEX \"primary\" ON \"user\".\"order\" USING btree (\"select\");\n");
        assert_eq!(
            rest,
            r#"ALTER TABLE ONLY "user"."order" ADD CONSTRAINT "primary" PRIMARY KEY USING INDEX "primary";"#
        );
    }

    #[test]
    fn what_the_index_of_a_unique_constraint_has_goes_to_its_create_index() {
        let sql = "SET default_tablespace = fast;\n\
                   ALTER TABLE ONLY \"My Schema\".\"T\" ADD CONSTRAINT \"U k\" UNIQUE NULLS NOT DISTINCT (\"A\", b) INCLUDE (c) WITH (fillfactor='70', deduplicate_items='off');\n\
                   ALTER TABLE \"My Schema\".\"T\" CLUSTER ON \"U k\";\n\
                   SET default_tablespace = '';\n\
                   COMMENT ON CONSTRAINT \"U k\" ON \"My Schema\".\"T\" IS 'a; b';\n";
        let (index, rest) = cut(sql);
        assert_eq!(
            index,
            "SET default_tablespace = fast;\nCREATE UNIQUE INDEX \"U k\" ON \"My Schema\".\"T\" USING btree (\"A\", b) INCLUDE (c) \
             NULLS NOT DISTINCT WITH (fillfactor='70', deduplicate_items='off');\n"
        );
        assert_eq!(
            rest,
            "ALTER TABLE ONLY \"My Schema\".\"T\" ADD CONSTRAINT \"U k\" UNIQUE USING INDEX \"U k\";\n\
             ALTER TABLE \"My Schema\".\"T\" CLUSTER ON \"U k\";\n\
             SET default_tablespace = '';\n\
             COMMENT ON CONSTRAINT \"U k\" ON \"My Schema\".\"T\" IS 'a; b';\n"
        );
    }

    #[test]
    fn keys_that_cannot_be_made_through_an_index_stay_as_they_are() {
        for sql in [
            "ALTER TABLE ONLY public.t ADD CONSTRAINT k PRIMARY KEY (a) DEFERRABLE;",
            "ALTER TABLE ONLY public.t ADD CONSTRAINT k UNIQUE (a) DEFERRABLE INITIALLY DEFERRED;",
            "ALTER TABLE ONLY public.t ADD CONSTRAINT k EXCLUDE USING gist (r WITH &&);",
            "ALTER TABLE ONLY public.t ADD CONSTRAINT k PRIMARY KEY (id, valid WITHOUT OVERLAPS);",
            "ALTER TABLE ONLY public.t ADD CONSTRAINT k PRIMARY KEY USING INDEX i;",
            "ALTER TABLE ONLY public.t ADD CONSTRAINT k FOREIGN KEY (a) REFERENCES public.u(a);",
            "ALTER TABLE ONLY public.t ADD CONSTRAINT k CHECK (a > 0);",
            "CREATE INDEX i ON public.t USING btree (a);",
            "ALTER TABLE ONLY public.t ADD CONSTRAINT k PRIMARY KEY (a); ALTER TABLE ONLY public.t ADD CONSTRAINT l UNIQUE (b);",
            "ALTER TABLE ONLY public.t ADD CONSTRAINT k PRIMARY KEY (a",
        ] {
            assert_eq!(key_through_index(sql), None, "{sql}");
        }
    }
}
