//! Loading: the preflight that refuses before anything is written, emptying and trigger switching, and
//! the COPY of each part.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::TargetTable;
use crate::archive::ArchiveReader;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{FormatError, PartInfo, PartKind, SequenceValue};
use crate::pg::{Session, quote_qualified};
use crate::plan::{column_list, format_option};
use crate::progress::Progress;

/// Loads parts from one archive; cheap to clone into each worker.
#[derive(Clone)]
pub(super) struct Loader {
    pub archive: Arc<ArchiveReader>,
    pub progress: Arc<dyn Progress>,
    /// The tables were created in the loading transaction (a whole restore in one transaction): their
    /// rows are written frozen (`COPY ... FREEZE`), so no vacuum has to rewrite every page of them later.
    pub freeze: bool,
}

/// Chunks a loader decodes ahead of the one it is sending.
const PREFETCH: usize = 2;

impl Loader {
    /// Loads one part with one COPY and returns the rows the server loaded, which must be the rows the
    /// archive holds for the part.
    pub async fn load_part(&self, session: &Session, part: &PartInfo) -> Result<u64> {
        let index = self.archive.index();
        let record = index
            .part(part.id)
            .ok_or_else(|| Error::new(ErrorKind::CorruptArchive, format!("part {} has no manifest record", part.id)))?;
        if record.chunks.is_empty() {
            return Ok(0);
        }
        let (sql, after) = match part.kind {
            PartKind::Table => (copy_in_sql(part, self.freeze), None),
            PartKind::LargeObjects => {
                session.batch("CREATE TEMP TABLE pgsafe_large_objects (loid oid, data bytea)").await?;
                (
                    "COPY pgsafe_large_objects FROM STDIN (FORMAT binary)".to_string(),
                    Some(
                        "SELECT pg_catalog.lo_from_bytea(loid, data) FROM pgsafe_large_objects; DROP TABLE pgsafe_large_objects",
                    ),
                )
            }
        };
        let mut sink = session.copy_in(&sql).await?;
        let chunks: Vec<_> = index.chunks(part.id).collect();
        let mut pending: VecDeque<JoinHandle<Result<Vec<u8>, FormatError>>> = VecDeque::new();
        let mut next = 0;
        while next < chunks.len() || !pending.is_empty() {
            while pending.len() < PREFETCH && next < chunks.len() {
                let (archive, chunk) = (self.archive.clone(), chunks[next]);
                pending.push_back(tokio::task::spawn_blocking(move || archive.read_chunk(&chunk)));
                next += 1;
            }
            let handle = pending.pop_front().expect("a chunk is pending");
            let raw = handle
                .await
                .map_err(|e| Error::new(ErrorKind::Io, format!("decoding a chunk failed: {e}")))?
                .map_err(|e| Error::from(e).context(format!("`{}`", self.archive.path().display())))?;
            self.progress.advance(part.id, raw.len() as u64, 0);
            sink.send(Bytes::from(raw)).await?;
        }
        let rows = sink.finish().await?;
        if rows != record.rows {
            return Err(Error::new(
                ErrorKind::CheckFailed,
                format!(
                    "part {} (`{}`): COPY loaded {rows} rows, the archive holds {}",
                    part.id, part.table, record.rows
                ),
            ));
        }
        if let Some(sql) = after {
            session.batch(sql).await?;
        }
        self.progress.part_done(part.id);
        Ok(rows)
    }
}

/// `COPY table (columns) FROM STDIN` in the part's format, `FREEZE` if `freeze`.
pub(crate) fn copy_in_sql(part: &PartInfo, freeze: bool) -> String {
    let cols = column_list(&part.columns);
    let list = if cols.is_empty() { String::new() } else { format!(" ({cols})") };
    let format = format_option(part.format);
    let options = if freeze { format.replace(')', ", FREEZE)") } else { format.to_string() };
    format!("COPY {}{list} FROM STDIN {options}", quote_qualified(&part.table))
}

/// Refuses, before anything is written, a target that lacks a table or column the archive needs, or
/// whose tables already hold rows (unless they are to be emptied).
pub(super) async fn preflight(session: &Session, tables: &[TargetTable], clean: bool) -> Result<()> {
    let names = super::table_names(tables);
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in session.query(include_str!("sql/target_columns.sql"), &[&names]).await? {
        found.entry(row.get("table_name")).or_default().insert(row.get("column_name"));
    }
    let mut problems = Vec::new();
    for t in tables.iter().filter(|t| t.kind == PartKind::Table) {
        let name = quote_qualified(&t.name);
        let Some(columns) = found.get(&name) else {
            // A table without any loadable column still has a row in pg_class; ask directly.
            let exists: bool =
                session.query_one("SELECT pg_catalog.to_regclass($1) IS NOT NULL", &[&name]).await?.get(0);
            if !exists {
                problems.push(format!("table `{}` does not exist", t.name));
            } else if t.parts.iter().any(|p| !p.columns.is_empty()) {
                problems.push(format!("table `{}` has none of the archive's columns", t.name));
            }
            continue;
        };
        let missing: Vec<&str> =
            t.parts[0].columns.iter().map(|c| c.name.as_str()).filter(|c| !columns.contains(*c)).collect();
        if !missing.is_empty() {
            problems.push(format!("table `{}` lacks the column(s) `{}`", t.name, missing.join("`, `")));
        }
    }
    if !problems.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "`{}` does not have the tables the archive's data goes into: {}",
                session.target(),
                problems.join("; ")
            ),
        )
        .with_hint("a data-only restore loads into existing tables: create the schema first"));
    }
    if clean {
        return Ok(());
    }
    let mut non_empty = Vec::new();
    for batch in tables.iter().filter(|t| t.kind == PartKind::Table).collect::<Vec<_>>().chunks(200) {
        let sql = batch
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!("SELECT {i} WHERE EXISTS (SELECT FROM ONLY {}{})", quote_qualified(&t.name), where_(t))
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for row in session.query(&sql, &[]).await? {
            non_empty.push(format!("`{}`", batch[row.get::<_, i32>(0) as usize].name));
        }
    }
    if tables.iter().any(|t| t.kind == PartKind::LargeObjects) {
        let any: bool =
            session.query_one("SELECT EXISTS (SELECT FROM pg_catalog.pg_largeobject_metadata)", &[]).await?.get(0);
        if any {
            non_empty.push("large objects".to_string());
        }
    }
    if !non_empty.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{}` already holds data: {}; nothing was restored", session.target(), non_empty.join(", ")),
        )
        .with_hint("`--clean` empties the archive's tables first"));
    }
    Ok(())
}

/// An extension configuration table's filter as a clause to append, or nothing.
pub(crate) fn where_(t: &TargetTable) -> String {
    t.parts.first().and_then(|p| p.filter.as_deref()).map(|f| format!(" {f}")).unwrap_or_default()
}

/// Empties the archive's tables (of an extension's configuration table, only the rows its filter
/// selects: the others are the extension's own) and removes the large objects whose OIDs the archive
/// holds.
pub(super) async fn clean(session: &Session, tables: &[TargetTable], archive: &ArchiveReader) -> Result<()> {
    let (filtered, whole): (Vec<&TargetTable>, Vec<&TargetTable>) =
        tables.iter().filter(|t| t.kind == PartKind::Table).partition(|t| !where_(t).is_empty());
    for batch in whole.chunks(500) {
        let list: Vec<String> = batch.iter().map(|t| format!("ONLY {}", quote_qualified(&t.name))).collect();
        session.batch(&format!("TRUNCATE {}", list.join(", "))).await?;
    }
    for t in filtered {
        session.batch(&format!("DELETE FROM ONLY {}{}", quote_qualified(&t.name), where_(t))).await?;
    }
    for t in tables.iter().filter(|t| t.kind == PartKind::LargeObjects) {
        let mut oids: Vec<i64> = Vec::new();
        for part in &t.parts {
            for chunk in archive.index().chunks(part.id) {
                let raw = archive.read_chunk(&chunk).map_err(Error::from)?;
                oids.extend(large_object_oids(&raw, chunk.entry.seq.0 == 0).into_iter().map(i64::from));
            }
        }
        session
            .query(
                "SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata WHERE oid = ANY ($1::int8[]::oid[])",
                &[&oids],
            )
            .await?;
    }
    Ok(())
}

/// The OIDs in a chunk of the large-objects part: the first field, a 4-byte `oid`, of each tuple.
fn large_object_oids(raw: &[u8], first_chunk: bool) -> Vec<u32> {
    let mut oids = Vec::new();
    let mut pos = if first_chunk { crate::format::BINARY_SIGNATURE.len() + 8 } else { 0 };
    // The chunk was checked on reading; stop quietly at anything unexpected.
    while let Some(count) = raw.get(pos..pos + 2).map(|b| i16::from_be_bytes([b[0], b[1]])) {
        if count != 2 {
            break;
        }
        pos += 2;
        let (Some(len), Some(oid)) = (raw.get(pos..pos + 4), raw.get(pos + 4..pos + 8)) else { break };
        if i32::from_be_bytes([len[0], len[1], len[2], len[3]]) != 4 {
            break;
        }
        oids.push(u32::from_be_bytes([oid[0], oid[1], oid[2], oid[3]]));
        pos += 8;
        let Some(len) = raw.get(pos..pos + 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])) else { break };
        pos += 4 + len.max(0) as usize;
    }
    oids
}

/// `ALTER TABLE ... ENABLE|DISABLE TRIGGER ALL` on every table the restore loads.
pub(super) async fn set_triggers(session: &Session, tables: &[TargetTable], enable: bool) -> Result<()> {
    let verb = if enable { "ENABLE" } else { "DISABLE" };
    let sql: Vec<String> =
        super::table_names(tables).iter().map(|n| format!("ALTER TABLE ONLY {n} {verb} TRIGGER ALL")).collect();
    for batch in sql.chunks(200) {
        session.batch(&batch.join("; ")).await?;
    }
    Ok(())
}

/// `setval` for every sequence the archive recorded.
pub(super) async fn set_sequences(session: &Session, sequences: &[SequenceValue]) -> Result<()> {
    for s in sequences {
        let name = quote_qualified(&s.name);
        session
            .query("SELECT pg_catalog.setval($1::text::regclass, $2, $3)", &[&name, &s.last_value, &s.is_called])
            .await?;
    }
    Ok(())
}
