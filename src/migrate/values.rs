//! What a rehearsed command did to the rows of each table it changed, value by value: the snapshot's rows
//! of the table are loaded from the archive into a temporary table on the scratch copy and joined with the
//! rows the command left, by the table's primary key. That finds what counts alone cannot: rows deleted
//! while as many were added, values an UPDATE overwrote, values a type change rounded or cut, and how many
//! values a dropped column really held.
//!
//! Values are compared through their text form (`IS DISTINCT FROM` on `::text`), which every type has
//! and which is exact. A column whose type changed is compared as values of its old and new types where
//! the server compares them (`numeric` rounded to fewer digits changes values, more digits and `real` to
//! `double precision` do not, nor `timestamp` to `timestamptz`), else as values of the new type where its
//! text is a canonical form (text to `jsonb` or `uuid`), else by what it prints (text `007` to integer
//! `7` changes it): [`Compare`].

use std::sync::Arc;

use serde::Serialize;

use crate::archive::ArchiveReader;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::format::{CopyFormat, PartInfo, PartKind};
use crate::pg::compare::{self, Compare};
use crate::pg::{SearchPath, Session, quote_ident};
use crate::progress::Silent;
use crate::restore::load::Loader;
use crate::restore::plan::{Freeze, PartStep};
use crate::rollback::changes::{Change, Changes};

/// The temporary table holding the snapshot's rows of the table being compared.
const BEFORE: &str = "pg_temp.pgsafe_rehearsal_before";

/// One table the command changed, compared row by row with the snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct TableValues {
    pub table: String,
    /// The primary key the rows were matched by (`None`: the table has none, so only the values of
    /// dropped columns were counted).
    pub key: Option<Vec<String>>,
    /// Rows of the snapshot whose key the table no longer holds.
    pub rows_deleted: u64,
    /// One of their keys, as `(value, ...)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_example: Option<String>,
    /// Columns whose values the command changed, in rows it kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns_changed: Vec<ColumnValues>,
    /// Columns the command dropped, with the values (not NULL) they held.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns_dropped: Vec<ColumnValues>,
    /// Why the table could not be compared, or only in part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl TableValues {
    /// Whether the command lost or overwrote anything of the snapshot's rows in this table.
    pub fn loses_anything(&self) -> bool {
        self.rows_deleted > 0
            || self.columns_changed.iter().any(|c| c.values > 0)
            || self.columns_dropped.iter().any(|c| c.values > 0)
    }
}

/// A column and how many of its values changed (or, dropped, were lost).
#[derive(Debug, Clone, Serialize)]
pub struct ColumnValues {
    pub column: String,
    pub values: u64,
    /// The key of one such row, as `(value, ...)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    /// A dropped column's values that are in a column the command added, in the same row (a column
    /// renamed the safe way: add, copy, drop): that column and how many; `values` counts the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_in: Option<KeptIn>,
}

/// Where a dropped column's values went.
#[derive(Debug, Clone, Serialize)]
pub struct KeptIn {
    pub column: String,
    pub values: u64,
}

/// Compares each table whose rows changed (by content digest) with its rows in `archive`. A table that
/// cannot be compared (its snapshot's column types are gone, say) gets a note, not an error.
pub(super) async fn compare(
    session: &Session,
    archive: &Arc<ArchiveReader>,
    changes: &Changes,
    cancel: &Cancel,
) -> Result<Vec<TableValues>> {
    let catalog = archive.index().catalog();
    let mut out = Vec::new();
    for t in changes.tables.iter().filter(|t| t.change == Change::Changed) {
        cancel.check("the rehearsal")?;
        let parts: Vec<&PartInfo> =
            catalog.parts.iter().filter(|p| p.kind == PartKind::Table && p.table.to_string() == t.table).collect();
        let Some(first) = parts.first() else { continue };
        let compared = compare_table(session, archive, &t.table, &parts).await;
        // The temporary table goes whatever happened, so the next table starts clean.
        let dropped = session.batch(&format!("DROP TABLE IF EXISTS {BEFORE}")).await;
        match compared {
            Ok(values) => out.push(values),
            Err(e) => out.push(TableValues {
                table: t.table.clone(),
                key: None,
                rows_deleted: 0,
                deleted_example: None,
                columns_changed: Vec::new(),
                columns_dropped: Vec::new(),
                note: Some(format!(
                    "its values were not compared with the snapshot's {} columns: {e}",
                    first.columns.len()
                )),
            }),
        }
        dropped?;
    }
    Ok(out)
}

async fn compare_table(
    session: &Session,
    archive: &Arc<ArchiveReader>,
    table: &str,
    parts: &[&PartInfo],
) -> Result<TableValues> {
    let columns = &parts[0].columns;
    let defs: Vec<String> = columns.iter().map(|c| format!("{} {}", quote_ident(&c.name), c.type_name)).collect();
    // The dump names column types as `format_type` does under the session's default `search_path`
    // (`year`, not `public.year`), so they are read back under the default too.
    session.batch(&format!("RESET search_path; CREATE TEMPORARY TABLE {BEFORE} ({})", defs.join(", "))).await?;
    let list: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
    // Loaded as a restore loads a part, the server's row count checked against the archive's.
    let loader = Loader::new(archive.clone(), Arc::new(Silent));
    for part in parts {
        let format = match part.format {
            CopyFormat::Binary => "binary",
            CopyFormat::Text => "text",
        };
        let record = archive.index().part(part.id);
        let step = PartStep {
            part: part.id,
            table: part.table.clone(),
            kind: part.kind,
            before: None,
            copy: format!("COPY {BEFORE} ({}) FROM STDIN (FORMAT {format})", list.join(", ")),
            freeze: Freeze::No,
            after: None,
            search_path: SearchPath::of_part(part.search_path.as_deref(), part.format, None),
            rows: record.map_or(0, |r| r.rows),
            bytes: record.map_or(0, |r| r.raw_bytes),
            chunks: None,
        };
        loader.load_part(session, &step).await?;
    }
    // The table as the command left it: its columns, and its primary key.
    let sql = "SELECT a.attname::text,
                      coalesce(a.attnum = ANY (i.indkey::int2[]), false)
               FROM pg_catalog.pg_attribute a
               LEFT JOIN pg_catalog.pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
               WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
               ORDER BY a.attnum";
    let mut now = Vec::new();
    let mut key = Vec::new();
    for row in session.query(sql, &[&table]).await? {
        let name: String = crate::pg::value(&row, 0, sql)?;
        if crate::pg::value::<bool, _>(&row, 1, sql)? {
            key.push(name.clone());
        }
        now.push(name);
    }
    // The columns whose type the command changed: the type the snapshot's rows have, and the new one.
    let mut types = compare::column_types(session, table).await?;
    let retyped: Vec<(&str, String, String)> = columns
        .iter()
        .filter_map(|c| {
            let (ty, base) = types.remove(&c.name)?;
            (ty != c.type_name).then_some((c.name.as_str(), ty, base))
        })
        .collect();
    let before: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let dropped: Vec<&str> = before.iter().copied().filter(|c| !now.iter().any(|n| n == c)).collect();
    let kept: Vec<&str> =
        before.iter().copied().filter(|c| now.iter().any(|n| n == c) && !key.iter().any(|k| k == c)).collect();
    let keyed = !key.is_empty() && key.iter().all(|k| before.contains(&k.as_str()));

    let mut values = TableValues {
        table: table.to_owned(),
        key: keyed.then(|| key.clone()),
        rows_deleted: 0,
        deleted_example: None,
        columns_changed: Vec::new(),
        columns_dropped: Vec::new(),
        note: (!keyed).then(|| "no primary key to match rows by: only dropped columns' values were counted".to_owned()),
    };
    if !dropped.is_empty() {
        let counts: Vec<String> = dropped.iter().map(|c| format!("count(b.{})", quote_ident(c))).collect();
        let sql = format!("SELECT {} FROM {BEFORE} b", counts.join(", "));
        let row = session.query_one(&sql, &[]).await?;
        for (i, c) in dropped.iter().enumerate() {
            let n: i64 = crate::pg::value(&row, i, &sql)?;
            values.columns_dropped.push(ColumnValues {
                column: (*c).to_owned(),
                values: n as u64,
                example: None,
                kept_in: None,
            });
        }
    }
    // A table made partitioned (its rows copied into a new partitioned table that took its name) holds
    // its rows in its partitions.
    let only = if partitioned(session, table).await? { "" } else { "ONLY " };
    let q = |c: &str| quote_ident(c);
    if !keyed {
        // No key to match rows by: rows are matched whole, by the text of the columns the command kept
        // with their types, as a multiset. A row of the snapshot that is not there as it was was deleted
        // or changed (an UPDATE of every row without a key said "lose no rows" before).
        let whole: Vec<&str> = kept.iter().copied().filter(|c| !retyped.iter().any(|(r, _, _)| r == c)).collect();
        if !whole.is_empty() {
            let row = |alias: &str| {
                let cols: Vec<String> = whole.iter().map(|c| format!("{alias}.{}", q(c))).collect();
                format!("ROW({})::text", cols.join(", "))
            };
            let sql = format!(
                "SELECT count(*), min(r) FROM (SELECT {} AS r FROM {BEFORE} b EXCEPT ALL SELECT {} FROM {only}{table} n) x",
                row("b"),
                row("n")
            );
            let found = session.query_one(&sql, &[]).await?;
            values.rows_deleted = crate::pg::value::<i64, _>(&found, 0, &sql)? as u64;
            values.deleted_example = crate::pg::value(&found, 1, &sql)?;
            values.note = Some(format!(
                "no primary key to match rows by: rows were matched whole, by their values in {} column(s); those \
                 not there as they were are counted as deleted (deleted or changed)",
                whole.len()
            ));
        }
        return Ok(values);
    }
    let join: Vec<String> = key.iter().map(|k| format!("n.{0}::text = b.{0}::text", q(k))).collect();
    let join = join.join(" AND ");
    let row_key = format!("ROW({})::text", key.iter().map(|k| format!("b.{}", q(k))).collect::<Vec<_>>().join(", "));
    let sql = format!(
        "SELECT count(*), min({row_key}) FROM {BEFORE} b WHERE NOT EXISTS (SELECT 1 FROM {only}{table} n WHERE {join})"
    );
    let row = session.query_one(&sql, &[]).await?;
    values.rows_deleted = crate::pg::value::<i64, _>(&row, 0, &sql)? as u64;
    values.deleted_example = crate::pg::value(&row, 1, &sql)?;
    // A dropped column whose values a column the command added holds, row by row (a rename done the
    // safe way: add the new column, copy, drop the old one), lost only the values it lacks.
    let new_columns: Vec<&String> = now.iter().filter(|c| !before.contains(&c.as_str())).collect();
    for dropped in values.columns_dropped.iter_mut().filter(|d| d.values > 0) {
        let mut best: Option<(&String, u64)> = None;
        for new in &new_columns {
            let sql = format!(
                "SELECT count(*) FILTER (WHERE (b.{old})::text IS DISTINCT FROM (n.{new})::text) \
                 FROM {BEFORE} b JOIN {only}{table} n ON {join} WHERE b.{old} IS NOT NULL",
                old = q(&dropped.column),
                new = q(new)
            );
            let row = session.query_one(&sql, &[]).await?;
            let differ: i64 = crate::pg::value(&row, 0, &sql)?;
            if best.is_none_or(|(_, d)| (differ as u64) < d) {
                best = Some((new, differ as u64));
            }
        }
        // The values of rows the command deleted are lost with their rows.
        if let Some((new, differ)) = best {
            let kept = dropped.values.saturating_sub(differ);
            let sql = format!(
                "SELECT count(b.{old}) FROM {BEFORE} b WHERE NOT EXISTS (SELECT 1 FROM {only}{table} n WHERE {join})",
                old = q(&dropped.column)
            );
            let gone: i64 = crate::pg::value(&session.query_one(&sql, &[]).await?, 0, &sql)?;
            let kept = kept.saturating_sub(gone as u64);
            if kept > 0 {
                dropped.values -= kept;
                dropped.kept_in = Some(KeptIn { column: (*new).clone(), values: kept });
            }
        }
    }
    // A column of the same type, by its text: exact. One whose type changed, as values of the two
    // types, or of the new type where its text is a canonical form (text to jsonb, timestamp to
    // timestamptz: a spelling is no change), or else as text.
    let same: Vec<&str> = kept.iter().copied().filter(|c| !retyped.iter().any(|(r, _, _)| r == c)).collect();
    let changed = |c: &str, how: &Compare| {
        let differs = how.differs(&format!("b.{}", q(c)), &format!("n.{}", q(c)));
        format!("count(*) FILTER (WHERE {differs}), min({row_key}) FILTER (WHERE {differs})")
    };
    let mut counted: Vec<(&str, i64, Option<String>)> = Vec::new();
    if !same.is_empty() {
        let selects: Vec<String> = same.iter().map(|c| changed(c, &Compare::Text)).collect();
        let sql = format!("SELECT {} FROM {BEFORE} b JOIN {only}{table} n ON {join}", selects.join(", "));
        let row = session.query_one(&sql, &[]).await?;
        for (i, c) in same.iter().enumerate() {
            counted.push((c, crate::pg::value(&row, 2 * i, &sql)?, crate::pg::value(&row, 2 * i + 1, &sql)?));
        }
    }
    // `timestamp` and `timestamptz` compare in the session's time zone, which the command's sessions
    // converted with: the server's default, not this session's UTC.
    let zone = match retyped.is_empty() {
        true => None,
        false => {
            let row = session.query_one("SHOW TimeZone", &[]).await?;
            let zone: String = crate::pg::value(&row, 0, "SHOW TimeZone")?;
            session.batch("RESET TimeZone").await?;
            Some(zone)
        }
    };
    for (c, ty, base) in retyped.iter().filter(|(c, _, _)| kept.contains(c)) {
        let old = columns.iter().find(|k| k.name == *c).map_or("", |k| k.type_name.as_str());
        // An array made a value of its elements' type (`USING tags[1]`) is compared through its only element.
        let ways = Compare::ways_from(old, old.strip_suffix("[]").unwrap_or(old), ty, base);
        for (i, how) in ways.iter().enumerate() {
            let last = i + 1 == ways.len();
            let sql = format!("SELECT {} FROM {BEFORE} b JOIN {only}{table} n ON {join}", changed(c, how));
            match session.query_one(&sql, &[]).await {
                Ok(row) => {
                    counted.push((c, crate::pg::value(&row, 0, &sql)?, crate::pg::value(&row, 1, &sql)?));
                    break;
                }
                // No operator for the pair, no cast, or an old value that is no input of the new type
                // (the command's `USING` made it otherwise): the next way.
                Err(e) if !last && e.sqlstate().is_some_and(|s| matches!(s.class(), "42" | "22")) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(zone) = zone {
        session.batch(&format!("SET TimeZone = {}", crate::pg::quote_literal(&zone))).await?;
    }
    for c in &kept {
        if let Some((_, n, example)) = counted.iter().find(|(k, _, _)| k == c)
            && *n > 0
        {
            values.columns_changed.push(ColumnValues {
                kept_in: None,
                column: (*c).to_owned(),
                values: *n as u64,
                example: example.clone(),
            });
        }
    }
    Ok(values)
}

/// Whether `table` is a partitioned table (false when there is no such table).
pub(super) async fn partitioned(session: &Session, table: &str) -> Result<bool> {
    const KIND: &str = "SELECT c.relkind = 'p' FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)";
    match session.query(KIND, &[&table]).await?.first() {
        Some(row) => crate::pg::value(row, 0, KIND),
        None => Ok(false),
    }
}
