//! The SQL statements inside a `DO` block, found by PL/pgSQL's own parser (`pg_query::parse_plpgsql`):
//! each statement the block runs as it is written (`ALTER TABLE ...;` in its body) and each `EXECUTE` of a
//! string constant, in the order of their lines. A migration that wraps its changes in `DO $$ ... $$` (to
//! guard them with `IF NOT EXISTS` checks) does the same damage as one that does not; what it runs through
//! `EXECUTE` of a computed string cannot be known without running it.

use pg_query::NodeEnum;
use serde_json::Value;

/// One statement of a `DO` block.
#[derive(Debug, Clone)]
pub struct Inner {
    pub node: NodeEnum,
    /// Byte offset in the file of its first token; the `DO` statement's when its text is not found there
    /// (a body in single quotes, whose quotes are doubled).
    pub start: usize,
    /// What the node's locations count from in the file, when its text was found there.
    pub base: Option<usize>,
    /// The query it is a statement of, as the block runs it: what the node's locations count from.
    pub query: String,
}

/// The statements of the `DO` statement `d`, which is `text[start..end]`. Empty for another language, a
/// body PL/pgSQL's parser refuses (the server would too), or one without SQL statements.
pub fn statements(text: &str, start: usize, end: usize, d: &pg_query::protobuf::DoStmt) -> Vec<Inner> {
    let mut body = None;
    let mut language = "plpgsql".to_owned();
    for arg in &d.args {
        let Some(NodeEnum::DefElem(e)) = &arg.node else { continue };
        match (e.defname.as_str(), e.arg.as_ref().and_then(|a| a.node.as_ref())) {
            ("as", Some(NodeEnum::String(s))) => body = Some(s.sval.as_str()),
            ("language", Some(NodeEnum::String(s))) => language = s.sval.to_ascii_lowercase(),
            _ => {}
        }
    }
    let Some(body) = body else { return Vec::new() };
    if language != "plpgsql" {
        return Vec::new();
    }
    let queries = plpgsql_queries(body);
    let body_at = text.get(start..end).and_then(|s| s.find(body)).map(|at| start + at);
    let mut inner = Vec::new();
    for (line, query) in queries {
        let at = body_at.and_then(|b| {
            let from = body.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum::<usize>();
            body.get(from..)?.find(query.as_str()).map(|q| b + from + q)
        });
        let Ok(parsed) = pg_query::parse(&query, 0) else { continue };
        for raw in parsed.protobuf.stmts {
            let Some(node) = raw.stmt.and_then(|s| s.node) else { continue };
            let location = usize::try_from(raw.stmt_location).unwrap_or(0);
            let skipped = query.get(location..).map_or(0, |q| q.len() - q.trim_start().len());
            inner.push(Inner {
                node,
                start: at.map_or(start, |a| a + location + skipped),
                base: at,
                query: query.clone(),
            });
        }
    }
    inner
}

/// The (line in `body`, SQL) of the statements the PL/pgSQL `body` runs, in the order of their lines;
/// none for a body PL/pgSQL's parser refuses.
fn plpgsql_queries(body: &str) -> Vec<(usize, String)> {
    const TAG: &str = "$pgsafe_do$";
    if body.contains(TAG) {
        return Vec::new();
    }
    // The body starts on the function's first line, so that PL/pgSQL's line numbers are the body's.
    let function = format!("CREATE FUNCTION pgsafe_do() RETURNS void LANGUAGE plpgsql AS {TAG}{body}{TAG}");
    let Ok(tree) = pg_query::parse_plpgsql(&function) else { return Vec::new() };
    let mut queries = Vec::new();
    collect(&tree, &mut queries);
    queries.sort_by_key(|(line, _)| *line);
    queries
}

/// The statements a function's body runs, as a `DO` block's are found: `language` `plpgsql` (the
/// statements it runs as written, and `EXECUTE`s of constants) or `sql` (its statements). None for
/// another language or a body that does not parse.
pub fn function_statements(language: &str, body: &str) -> Vec<NodeEnum> {
    let queries = match language {
        "plpgsql" => plpgsql_queries(body).into_iter().map(|(_, q)| q).collect(),
        "sql" => vec![body.to_owned()],
        _ => Vec::new(),
    };
    queries
        .iter()
        .filter_map(|q| pg_query::parse(q, 0).ok())
        .flat_map(|parsed| parsed.protobuf.stmts.into_iter().filter_map(|raw| raw.stmt.and_then(|s| s.node)))
        .collect()
}

/// The (line, SQL) of every statement PL/pgSQL runs as written and of every `EXECUTE` of a constant.
fn collect(value: &Value, out: &mut Vec<(usize, String)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let line = || v.get("lineno").and_then(Value::as_u64).unwrap_or(0) as usize;
                match key.as_str() {
                    "PLpgSQL_stmt_execsql" => {
                        if let Some(q) = query(v.get("sqlstmt")) {
                            out.push((line(), q.to_owned()));
                        }
                    }
                    "PLpgSQL_stmt_dynexecute" => {
                        if let Some(q) = query(v.get("query")).and_then(constant) {
                            out.push((line(), q));
                        }
                    }
                    _ => {}
                }
                collect(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
        _ => {}
    }
}

/// The text of a `PLpgSQL_expr`.
fn query(expr: Option<&Value>) -> Option<&str> {
    expr?.get("PLpgSQL_expr")?.get("query")?.as_str()
}

/// The value of `expression` when it is a string constant (`'ALTER TABLE ...'`, `E'...'`, `$q$...$q$`).
fn constant(expression: &str) -> Option<String> {
    let parsed = pg_query::parse(&format!("SELECT {expression}"), 0).ok()?;
    let stmt = parsed.protobuf.stmts.first()?.stmt.as_ref()?.node.as_ref()?;
    let NodeEnum::SelectStmt(select) = stmt else { return None };
    let [target] = select.target_list.as_slice() else { return None };
    let Some(NodeEnum::ResTarget(target)) = &target.node else { return None };
    match target.val.as_ref()?.node.as_ref()? {
        NodeEnum::AConst(c) => match c.val.as_ref()? {
            pg_query::protobuf::a_const::Val::Sval(s) => Some(s.sval.clone()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner(text: &str) -> Vec<(String, usize, Option<usize>)> {
        let parsed = pg_query::parse(text, 0).unwrap();
        let raw = &parsed.protobuf.stmts[0];
        let Some(NodeEnum::DoStmt(d)) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) else { panic!("no DO") };
        let end = text.len();
        statements(text, 0, end, d)
            .into_iter()
            .map(|i| {
                let name = match &i.node {
                    NodeEnum::AlterTableStmt(_) => "alter",
                    NodeEnum::UpdateStmt(_) => "update",
                    NodeEnum::IndexStmt(_) => "index",
                    _ => "other",
                };
                (name.to_owned(), i.start, i.base)
            })
            .collect()
    }

    #[test]
    fn statements_and_constant_executes_come_out_in_line_order_at_their_place() {
        let text = "DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relname = 'i') THEN\n    \
                    CREATE INDEX i ON t (a);\n  ELSE\n    UPDATE t SET a = 1;\n  END IF;\n  \
                    EXECUTE 'ALTER TABLE t DROP COLUMN b';\n  EXECUTE format('DROP TABLE %I', 'x');\nEND $$;";
        let found = inner(text);
        let names: Vec<&str> = found.iter().map(|(n, ..)| n.as_str()).collect();
        assert_eq!(names, ["index", "update", "alter"]);
        let at = |(_, start, _): &(String, usize, Option<usize>)| &text[*start..];
        assert!(at(&found[0]).starts_with("CREATE INDEX i ON t (a);"), "{}", at(&found[0]));
        assert!(at(&found[1]).starts_with("UPDATE t SET a = 1;"));
        assert!(at(&found[2]).starts_with("ALTER TABLE t DROP COLUMN b'"));
        assert!(found.iter().all(|(_, _, base)| base.is_some()));
    }

    #[test]
    fn a_quoted_body_points_at_the_do_and_other_languages_are_opaque() {
        let found = inner("DO 'BEGIN ALTER TABLE t DROP COLUMN c; PERFORM ''x''; END';");
        assert_eq!(found, [("alter".to_owned(), 0, None)]);
        assert!(inner("DO LANGUAGE plperl $$ my $x = 1; $$;").is_empty());
        assert!(inner("DO $$ BEGIN RAISE NOTICE 'hi'; END $$;").is_empty());
    }
}
