//! The dump plan: which COPY streams (parts) to run, in what order, with which statements.

use serde::Serialize;

use crate::catalog::{DataCatalog, Table};
use crate::format::{ColumnInfo, CopyFormat, PageRange, PartId, PartInfo, PartKind, TableName};
use crate::sql::{quote_ident, quote_qualified};

/// What shapes a dump plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Parallel workers.
    pub jobs: usize,
    /// Smallest slice a big table is cut into; `None` lets the plan choose from the data size and `jobs`.
    pub part_bytes: Option<u64>,
}

/// One COPY stream to run.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedPart {
    pub info: PartInfo,
    /// The exact statement a worker runs.
    pub copy_sql: String,
}

/// The whole dump: parts biggest first.
#[derive(Debug, Clone, Serialize)]
pub struct DumpPlan {
    pub jobs: usize,
    /// Tables bigger than this are cut into page ranges (0 when tables are never cut).
    pub part_bytes: u64,
    pub parts: Vec<PlannedPart>,
}

impl DumpPlan {
    pub fn estimated_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.info.estimated_bytes).sum()
    }

    pub fn estimated_rows(&self) -> u64 {
        self.parts.iter().map(|p| p.info.estimated_rows).sum()
    }
}

/// Smallest and largest slice size the plan picks by itself.
const MIN_PART: u64 = 32 << 20;
const MAX_PART: u64 = 1 << 30;

/// Plans a dump. Tables bigger than the part size are cut into page ranges when the server has TID
/// range scans (PostgreSQL 14+), so that one huge table keeps every worker busy; elsewhere each table is
/// one part. Parts run biggest first.
pub fn plan_dump(catalog: &DataCatalog, options: &PlanOptions) -> DumpPlan {
    let jobs = options.jobs.max(1);
    let total: u64 = catalog.tables.iter().map(|t| t.bytes).sum();
    let can_split = catalog.server.version_num >= 140000 && jobs > 1;
    // About four parts per worker balance the load without making parts tiny.
    let part_bytes = options.part_bytes.unwrap_or_else(|| (total / (jobs as u64 * 4)).clamp(MIN_PART, MAX_PART));

    let mut parts: Vec<PlannedPart> = Vec::new();
    for table in &catalog.tables {
        let splittable = can_split && table.extension_condition.is_none() && !table.columns.is_empty();
        if splittable && table.bytes > part_bytes + part_bytes / 2 && table.pages > 1 {
            let slices = table.bytes.div_ceil(part_bytes).min(table.pages);
            let pages_per = table.pages.div_ceil(slices);
            let mut start = 0u64;
            while start < table.pages {
                let end = start + pages_per;
                // The last slice is open-ended: it also covers pages added since the sizes were read.
                let range = PageRange { start: start as u32, end: (end < table.pages).then_some(end as u32) };
                let share = |v: u64| v * (end.min(table.pages) - start) / table.pages.max(1);
                parts.push(table_part(table, Some(range), share(table.bytes), share(table.estimated_rows)));
                start = end;
            }
        } else {
            parts.push(table_part(table, None, table.bytes, table.estimated_rows));
        }
    }
    if let Some(lo) = catalog.large_objects {
        parts.push(large_objects_part(lo.count, lo.bytes));
    }
    parts.sort_by(|a, b| {
        b.info.estimated_bytes.cmp(&a.info.estimated_bytes).then_with(|| a.info.table.cmp(&b.info.table))
    });
    for (i, p) in parts.iter_mut().enumerate() {
        p.info.id = PartId(i as u32);
    }
    DumpPlan { jobs, part_bytes: if can_split { part_bytes } else { 0 }, parts }
}

fn table_part(table: &Table, pages: Option<PageRange>, bytes: u64, rows: u64) -> PlannedPart {
    let info = PartInfo {
        id: PartId(0),
        kind: PartKind::Table,
        table: table.name.clone(),
        columns: table.columns.clone(),
        format: table.format,
        pages,
        filter: table.extension_condition.clone(),
        load_via: table.load_via.clone(),
        search_path: (table.format == CopyFormat::Text).then(String::new),
        estimated_rows: rows,
        estimated_bytes: bytes,
    };
    let copy_sql = copy_out_sql(&table.name, &table.columns, table.format, pages, table.extension_condition.as_deref());
    PlannedPart { info, copy_sql }
}

fn large_objects_part(count: u64, bytes: u64) -> PlannedPart {
    let columns = vec![
        ColumnInfo { name: "oid".into(), type_name: "oid".into() },
        ColumnInfo { name: "data".into(), type_name: "bytea".into() },
    ];
    PlannedPart {
        info: PartInfo {
            id: PartId(0),
            kind: PartKind::LargeObjects,
            table: TableName { schema: "pg_catalog".into(), name: "pg_largeobject".into() },
            columns,
            format: CopyFormat::Binary,
            pages: None,
            filter: None,
            load_via: None,
            search_path: None,
            estimated_rows: count,
            estimated_bytes: bytes,
        },
        copy_sql: format!("COPY ({LARGE_OBJECTS_QUERY}) TO STDOUT (FORMAT binary)"),
    }
}

/// Every large object as a row `(oid, data)`. The restore's verification runs the same query.
pub const LARGE_OBJECTS_QUERY: &str =
    "SELECT m.oid, pg_catalog.lo_get(m.oid) FROM pg_catalog.pg_largeobject_metadata m ORDER BY m.oid";

/// The column list of a COPY or SELECT: empty for a table without (non-generated) columns.
pub fn column_list(columns: &[ColumnInfo]) -> String {
    columns.iter().map(|c| quote_ident(&c.name)).collect::<Vec<_>>().join(", ")
}

/// The `(FORMAT ...)` option of a COPY in `format`.
pub fn format_option(format: CopyFormat) -> &'static str {
    match format {
        CopyFormat::Binary => "(FORMAT binary)",
        CopyFormat::Text => "(FORMAT text)",
    }
}

/// The `COPY ... TO STDOUT` of a table or a slice of one. Restore verification reads a table back with
/// the same column list and format, so both see the same bytes per row.
pub fn copy_out_sql(
    table: &TableName,
    columns: &[ColumnInfo],
    format: CopyFormat,
    pages: Option<PageRange>,
    condition: Option<&str>,
) -> String {
    let name = quote_qualified(table);
    let cols = column_list(columns);
    let mut filters = Vec::new();
    if let Some(r) = pages {
        filters.push(format!("ctid >= '({},0)'::pg_catalog.tid", r.start));
        if let Some(end) = r.end {
            filters.push(format!("ctid < '({end},0)'::pg_catalog.tid"));
        }
    }
    if filters.is_empty() && condition.is_none() {
        let list = if cols.is_empty() { String::new() } else { format!(" ({cols})") };
        return format!("COPY {name}{list} TO STDOUT {}", format_option(format));
    }
    let mut select = format!("SELECT {cols} FROM ONLY {name}");
    if let Some(c) = condition {
        // The extension's condition is a whole `WHERE ...` clause.
        select.push(' ');
        select.push_str(c);
        if !filters.is_empty() {
            select.push_str(" AND ");
        }
    } else if !filters.is_empty() {
        select.push_str(" WHERE ");
    }
    select.push_str(&filters.join(" AND "));
    format!("COPY ({select}) TO STDOUT {}", format_option(format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::ServerFacts;

    fn table(name: &str, mib: u64) -> Table {
        Table {
            oid: 1,
            name: TableName { schema: "public".into(), name: name.into() },
            bytes: mib << 20,
            pages: (mib << 20) / 8192,
            estimated_rows: mib * 1000,
            extension_condition: None,
            load_via: None,
            columns: vec![ColumnInfo { name: "id".into(), type_name: "integer".into() }],
            format: CopyFormat::Binary,
        }
    }

    fn catalog(version_num: u32, tables: Vec<Table>) -> DataCatalog {
        DataCatalog {
            server: ServerFacts {
                version: String::new(),
                version_num,
                database: "d".into(),
                encoding: "UTF8".into(),
                integer_datetimes: true,
            },
            tables,
            sequences: vec![],
            large_objects: None,
        }
    }

    #[test]
    fn a_big_table_is_cut_into_page_ranges_that_cover_it() {
        let plan = plan_dump(
            &catalog(150000, vec![table("big", 1024), table("small", 1)]),
            &PlanOptions { jobs: 2, part_bytes: None },
        );
        let big: Vec<_> = plan.parts.iter().filter(|p| p.info.table.name == "big").collect();
        assert!(big.len() >= 4, "{} parts", big.len());
        let mut ranges: Vec<PageRange> = big.iter().map(|p| p.info.pages.unwrap()).collect();
        ranges.sort_by_key(|r| r.start);
        assert_eq!(ranges[0].start, 0);
        for w in ranges.windows(2) {
            assert_eq!(w[0].end, Some(w[1].start), "ranges must be contiguous");
        }
        assert_eq!(ranges.last().unwrap().end, None, "the last range is open-ended");
        assert_eq!(plan.parts.last().unwrap().info.table.name, "small", "biggest first");
        assert!(big[0].copy_sql.contains("FROM ONLY public.big WHERE ctid >= '("), "{}", big[0].copy_sql);
    }

    #[test]
    fn no_cutting_without_tid_range_scans_or_with_one_job() {
        let t = || vec![table("big", 1024)];
        assert_eq!(plan_dump(&catalog(130000, t()), &PlanOptions { jobs: 4, part_bytes: None }).parts.len(), 1);
        assert_eq!(plan_dump(&catalog(150000, t()), &PlanOptions { jobs: 1, part_bytes: None }).parts.len(), 1);
    }

    #[test]
    fn copy_statements() {
        let name = TableName { schema: "Odd".into(), name: "t".into() };
        let cols = vec![ColumnInfo { name: "a b".into(), type_name: "int".into() }];
        assert_eq!(
            copy_out_sql(&name, &cols, CopyFormat::Text, None, None),
            "COPY \"Odd\".t (\"a b\") TO STDOUT (FORMAT text)"
        );
        assert_eq!(
            copy_out_sql(&name, &[], CopyFormat::Binary, None, None),
            "COPY \"Odd\".t TO STDOUT (FORMAT binary)"
        );
        assert_eq!(
            copy_out_sql(&name, &cols, CopyFormat::Binary, None, Some("WHERE NOT standard")),
            "COPY (SELECT \"a b\" FROM ONLY \"Odd\".t WHERE NOT standard) TO STDOUT (FORMAT binary)"
        );
    }
}
