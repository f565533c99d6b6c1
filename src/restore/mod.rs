//! `pgsafe restore`: loads an archive's data into a database, then proves that what landed is what was
//! dumped.
//!
//! ```text
//! preflight (tables exist, columns match, targets empty) -> triggers off -> parts in parallel
//! (chunks -> check -> decompress -> COPY FROM STDIN) -> sequences -> foreign keys checked
//! -> verification (row counts, content digests) -> triggers on
//! ```
//! Nothing is written before the preflight passes. With `--single-transaction` everything, the
//! verification included, runs in one transaction, so a failure leaves the database as it was.

mod full;

pub use full::{ScriptOptions, script};
mod load;
mod verify;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use crate::archive::ArchiveReader;
use crate::catalog::Filters;
use crate::error::{Error, ErrorKind, Result};
use crate::format::{ArchiveIndex, ContentDigest, PartInfo, PartKind, TableName};
use crate::pg::{ConnectOptions, Session, quote_qualified};
use crate::progress::Progress;

/// How much checking follows a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyLevel {
    /// Row counts and content digests of every table, sequence values.
    Full,
    /// Row counts only (COPY's own counts).
    Count,
    /// Nothing beyond what the load itself reports.
    None,
}

/// What of the schema a whole restore, or its script, leaves out: pg_restore's `--no-*` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeaveOut {
    /// Ownership: everything is owned by the restoring role (`--no-owner`).
    pub owner: bool,
    /// `GRANT`/`REVOKE` and default privileges (`--no-privileges`).
    pub privileges: bool,
    /// Tablespaces: everything goes to the target database's default (`--no-tablespaces`).
    pub tablespaces: bool,
    /// `COMMENT ON` (`--no-comments`).
    pub comments: bool,
    /// `SECURITY LABEL` (`--no-security-labels`), for a target without the label provider.
    pub security_labels: bool,
    /// Publications and what they publish (`--no-publications`).
    pub publications: bool,
    /// Subscriptions (`--no-subscriptions`).
    pub subscriptions: bool,
}

impl LeaveOut {
    /// Whether a schema object of `kind` is left out whole.
    pub fn kind(&self, kind: &str) -> bool {
        (self.publications && kind.starts_with("PUBLICATION")) || (self.subscriptions && kind == "SUBSCRIPTION")
    }

    /// Whether one of an object's comment statements (`COMMENT ON`, `SECURITY LABEL`) is left out.
    pub fn note(&self, statement: &str) -> bool {
        (self.comments && statement.starts_with("COMMENT ON "))
            || (self.security_labels && statement.starts_with("SECURITY LABEL "))
    }
}

/// What to restore and how.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub connect: ConnectOptions,
    pub jobs: usize,
    pub filters: Filters,
    pub single_transaction: bool,
    pub verify: VerifyLevel,
    /// Data only: empty the archive's tables (and its large objects) before loading. Whole restore:
    /// drop the archive's objects that exist in the target first.
    pub clean: bool,
    /// Load rows into existing tables only (`--data-only`).
    pub data_only: bool,
    /// Create the schema only, no rows (`--schema-only`).
    pub schema_only: bool,
    /// What of the schema to leave out (`--no-owner`, `--no-privileges`, ...).
    pub leave_out: LeaveOut,
    /// Act as this role in every session (`--role`).
    pub role: Option<String>,
    /// Create missing roles the archive names, without login (`--create-roles`).
    pub create_roles: bool,
    /// Create this database first, through the one `connect` names, and restore into it (`--create`).
    pub create: Option<String>,
    /// Restore only what this list names (`-L`, an edited `--list`).
    pub use_list: Option<ListSelection>,
}

/// What an edited `restore --list` keeps (`-L FILE`): its lines name schema objects by id, parts by id
/// and sequence values by name; a line starting with `;` is left out, as in pg_restore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSelection {
    pub objects: std::collections::HashSet<u32>,
    pub parts: std::collections::HashSet<u32>,
    pub sequences: std::collections::HashSet<String>,
}

impl ListSelection {
    /// Reads a list; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<ListSelection> {
        let mut list = ListSelection::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with(';') {
                continue;
            }
            let bad = || {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("line {} of `{source}` is not a line of `pgsafe restore --list`: `{line}`", n + 1),
                )
                .with_hint("keep the lines `restore --list` printed; put `;` before the ones to leave out")
            };
            let (head, rest) = line.split_once(';').ok_or_else(bad)?;
            if let Some(id) = head.strip_prefix("part ") {
                list.parts.insert(id.trim().parse().map_err(|_| bad())?);
            } else if head == "sequence value" {
                list.sequences.insert(rest.trim().to_string());
            } else {
                list.objects.insert(head.trim().parse().map_err(|_| bad())?);
            }
        }
        Ok(list)
    }
}

/// How triggers and foreign keys were kept from firing during the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerMode {
    /// `SET session_replication_role = replica` in each loading session (superusers).
    ReplicationRole,
    /// `ALTER TABLE ... DISABLE TRIGGER ALL` around the load (table owners).
    DisableTriggers,
    /// A whole restore: triggers and foreign keys are created after the rows.
    NotYetCreated,
}

/// What a restore did and found.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub target: String,
    /// Schema creation steps run (0 for `--data-only`).
    pub schema_objects: usize,
    pub tables: usize,
    pub parts: usize,
    pub rows: u64,
    pub sequences: usize,
    pub large_objects: u64,
    pub triggers: TriggerMode,
    pub verify: VerifyLevel,
    pub tables_verified: usize,
    /// Verification mismatches and foreign key violations, each naming its table. Empty when sound.
    pub problems: Vec<String>,
    /// What the user must act on although the restore succeeded (a subscription left disabled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// With `--single-transaction`, true when a problem made the restore roll back.
    pub rolled_back: bool,
    pub seconds: f64,
}

impl RestoreReport {
    /// The report before anything is done: what is to be restored into `target`.
    fn start(
        target: &str,
        tables: &[TargetTable],
        sequences: usize,
        triggers: TriggerMode,
        verify: VerifyLevel,
    ) -> RestoreReport {
        RestoreReport {
            target: target.to_string(),
            schema_objects: 0,
            tables: tables.iter().filter(|t| t.kind == PartKind::Table).count(),
            parts: tables.iter().map(|t| t.parts.len()).sum(),
            rows: 0,
            sequences,
            large_objects: 0,
            triggers,
            verify,
            tables_verified: 0,
            problems: Vec::new(),
            warnings: Vec::new(),
            rolled_back: false,
            seconds: 0.0,
        }
    }
}

/// A table the restore loads: its parts and how the archive's stream lays out its columns.
#[derive(Debug, Clone)]
pub(crate) struct TargetTable {
    pub name: TableName,
    pub kind: PartKind,
    pub parts: Vec<PartInfo>,
    /// What the archive holds for the table: its parts' rows and digests summed.
    pub rows: u64,
    pub digest: ContentDigest,
}

/// Restores `archive`: its schema and rows into an empty database, or with `data_only` its rows into
/// existing tables.
pub async fn restore(
    archive: Arc<ArchiveReader>,
    options: &RestoreOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreReport> {
    check_patterns(archive.index().catalog(), &options.filters)?;
    if options.data_only {
        restore_data(archive, options, progress).await
    } else {
        full::restore_full(archive, options, progress).await
    }
}

/// The parts of `tables`, biggest first, as the dump planned them.
fn parts_biggest_first<B: AsRef<[u8]>>(index: &ArchiveIndex<B>, tables: &[TargetTable]) -> Vec<PartInfo> {
    let mut p: Vec<PartInfo> = tables.iter().flat_map(|t| t.parts.iter().cloned()).collect();
    p.sort_by_key(|p| std::cmp::Reverse(index.part(p.id).map_or(0, |r| r.raw_bytes)));
    p
}

/// Restores the data of `archive` into existing tables (`--data-only`).
pub async fn restore_data(
    archive: Arc<ArchiveReader>,
    options: &RestoreOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let index = archive.index();
    let encoding = index.catalog().server.encoding.clone();
    let tables = select_tables(index, &options.filters, options.use_list.as_ref());
    let leader = Session::open(&options.connect, Some(&encoding)).await?;
    load::preflight(&leader, &tables, options.clean).await?;
    let triggers = trigger_mode(&leader).await?;
    let sequences = select_sequences(index, &options.filters, options.use_list.as_ref());
    let mut report = RestoreReport::start(leader.target(), &tables, sequences.len(), triggers, options.verify);
    let parts = parts_biggest_first(index, &tables);
    progress.start("restore", parts.iter().filter_map(|p| index.part(p.id)).map(|r| r.raw_bytes).sum(), 0);
    let loader = load::Loader { archive: archive.clone(), progress: progress.clone(), freeze: false };

    if options.single_transaction {
        leader.batch("BEGIN").await?;
        let outcome = async {
            prepare(&leader, &archive, &tables, options.clean, triggers, true).await?;
            for part in &parts {
                report.rows += loader.load_part(&leader, part).await?;
            }
            finish(&leader, None, &tables, &sequences, options, &mut report).await
        }
        .await;
        end_single_transaction(&leader, outcome, &mut report).await?;
    } else {
        prepare(&leader, &archive, &tables, options.clean, triggers, false).await?;
        let loaded = load_parallel(&loader, &options.connect, &encoding, triggers, options.jobs, parts).await;
        let outcome = match loaded {
            Ok(rows) => {
                report.rows = rows;
                let parallel = Some((&options.connect, encoding.as_str()));
                finish(&leader, parallel, &tables, &sequences, options, &mut report).await
            }
            Err(e) => Err(e.context("the restore stopped part way: tables may hold some of their rows")),
        };
        if triggers == TriggerMode::DisableTriggers {
            load::set_triggers(&leader, &tables, true).await?;
        }
        outcome?;
    }
    progress.finish();
    report.large_objects = large_objects_in(index, &tables);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Empties the targets when asked and switches triggers off.
async fn prepare(
    session: &Session,
    archive: &ArchiveReader,
    tables: &[TargetTable],
    clean: bool,
    triggers: TriggerMode,
    local: bool,
) -> Result<()> {
    if clean {
        load::clean(session, tables, archive).await?;
    }
    match triggers {
        TriggerMode::ReplicationRole if local => session.batch("SET LOCAL session_replication_role = replica").await,
        TriggerMode::ReplicationRole => Ok(()),
        TriggerMode::DisableTriggers => load::set_triggers(session, tables, false).await,
        TriggerMode::NotYetCreated => Ok(()),
    }
}

/// After the load: sequences, foreign keys, verification. Problems go into the report.
/// `parallel` gives the connection and encoding for extra verification sessions when the data is
/// committed; inside a single transaction only `session` sees it.
async fn finish(
    session: &Session,
    parallel: Option<(&ConnectOptions, &str)>,
    tables: &[TargetTable],
    sequences: &[crate::format::SequenceValue],
    options: &RestoreOptions,
    report: &mut RestoreReport,
) -> Result<()> {
    load::set_sequences(session, sequences).await?;
    report.problems.extend(verify::foreign_keys(session, tables).await?);
    verify_restored(session, parallel, tables, sequences, options, report).await
}

/// The verification that ends every restore: row counts (and with `--verify full` content digests) of
/// every table, and sequence values. Problems go into the report.
async fn verify_restored(
    session: &Session,
    parallel: Option<(&ConnectOptions, &str)>,
    tables: &[TargetTable],
    sequences: &[crate::format::SequenceValue],
    options: &RestoreOptions,
    report: &mut RestoreReport,
) -> Result<()> {
    if options.verify == VerifyLevel::None {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let checked = match parallel {
        Some((connect, encoding)) => {
            verify::tables_parallel(connect, encoding, options.jobs, tables, options.verify).await?
        }
        None => verify::tables(session, tables, options.verify).await?,
    };
    report.tables_verified = checked.verified;
    report.problems.extend(checked.problems);
    tracing::info!("verification: {} tables in {:.1}s", checked.verified, started.elapsed().as_secs_f64());
    if options.verify == VerifyLevel::Full {
        report.problems.extend(verify::sequences(session, sequences).await?);
    }
    Ok(())
}

/// Refuses `-n` and `-t` patterns that match nothing the archive holds, before anything is restored, as
/// the dump refuses them: a mistyped name would otherwise restore nothing and succeed.
pub(crate) fn check_patterns(catalog: &crate::format::Catalog, filters: &Filters) -> Result<()> {
    if filters.include_schemas.is_empty() && filters.include_tables.is_empty() {
        return Ok(());
    }
    const RELATIONS: [&str; 5] = ["TABLE", "VIEW", "MATERIALIZED VIEW", "SEQUENCE", "FOREIGN TABLE"];
    let schema = crate::schema::SchemaCatalog::from_value(&catalog.schema)?.unwrap_or_default();
    // A restore treats every name as visible, as its filters do.
    let mut relations: Vec<(&str, &str, bool)> =
        catalog.parts.iter().map(|p| (p.table.schema.as_str(), p.table.name.as_str(), true)).collect();
    relations.extend(catalog.sequences.iter().map(|s| (s.name.schema.as_str(), s.name.name.as_str(), true)));
    relations.extend(
        schema
            .objects
            .iter()
            .filter(|o| RELATIONS.contains(&o.kind.as_str()))
            .filter_map(|o| Some((o.schema.as_deref()?, o.name.as_str(), true))),
    );
    let mut schemas: Vec<&str> = relations.iter().map(|(s, _, _)| *s).collect();
    schemas.extend(schema.objects.iter().filter(|o| o.kind == "SCHEMA").map(|o| o.name.as_str()));
    schemas.extend(schema.objects.iter().filter_map(|o| o.schema.as_deref()));
    let unmatched = filters.unmatched(&schemas, &relations);
    if unmatched.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!("nothing the archive holds matches `{}`; nothing was restored", unmatched.join("`, `")),
    )
    .with_hint("`pgsafe restore --list ARCHIVE` lists what it holds"))
}

/// Ends a `--single-transaction` restore: commits when it ran through and verification found nothing,
/// rolls back otherwise (a problem marks the report rolled back; an error says nothing was restored).
async fn end_single_transaction(session: &Session, outcome: Result<()>, report: &mut RestoreReport) -> Result<()> {
    match outcome {
        Ok(()) if report.problems.is_empty() => session.batch("COMMIT").await,
        Ok(()) => {
            session.batch("ROLLBACK").await?;
            report.rolled_back = true;
            Ok(())
        }
        Err(e) => {
            let _ = session.batch("ROLLBACK").await;
            Err(e.context("nothing was restored (the transaction rolled back)"))
        }
    }
}

/// Large objects the archive holds for the selected tables (its large-object part's rows).
fn large_objects_in<B: AsRef<[u8]>>(index: &ArchiveIndex<B>, tables: &[TargetTable]) -> u64 {
    tables
        .iter()
        .filter(|t| t.kind == PartKind::LargeObjects)
        .flat_map(|t| &t.parts)
        .filter_map(|p| index.part(p.id))
        .map(|r| r.rows)
        .sum()
}

/// Loads parts with `jobs` sessions, each taking the next part from a shared queue.
async fn load_parallel(
    loader: &load::Loader,
    connect: &ConnectOptions,
    encoding: &str,
    triggers: TriggerMode,
    jobs: usize,
    parts: Vec<PartInfo>,
) -> Result<u64> {
    let started = std::time::Instant::now();
    let workers = jobs.max(1).min(parts.len().max(1));
    let queue = Arc::new(Mutex::new(parts.into_iter().collect::<VecDeque<_>>()));
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (loader, connect, encoding, queue) = (loader.clone(), connect.clone(), encoding.to_string(), queue.clone());
        handles.push(tokio::spawn(async move {
            let session = Session::open(&connect, Some(&encoding)).await?;
            if triggers == TriggerMode::ReplicationRole {
                session.batch("SET session_replication_role = replica").await?;
            }
            let mut rows = 0;
            loop {
                let next = queue.lock().expect("queue lock").pop_front();
                let Some(part) = next else { break };
                match loader.load_part(&session, &part).await {
                    Ok(n) => rows += n,
                    Err(e) => {
                        queue.lock().expect("queue lock").clear();
                        return Err(e);
                    }
                }
            }
            Ok::<u64, Error>(rows)
        }));
    }
    let mut rows = 0;
    let mut first_error = None;
    for h in handles {
        match h.await {
            Ok(Ok(n)) => rows += n,
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(e) => {
                first_error = first_error.or(Some(Error::new(ErrorKind::Io, format!("a restore worker failed: {e}"))))
            }
        }
    }
    if first_error.is_none() {
        tracing::info!("data: {rows} rows on {workers} sessions in {:.1}s", started.elapsed().as_secs_f64());
    }
    first_error.map_or(Ok(rows), Err)
}

/// Superusers switch triggers off per session; other roles must own the tables and alter them.
async fn trigger_mode(session: &Session) -> Result<TriggerMode> {
    let row = session.query_one("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user", &[]).await?;
    Ok(if row.get::<_, bool>(0) { TriggerMode::ReplicationRole } else { TriggerMode::DisableTriggers })
}

/// Groups the selected parts by table. Large objects follow pg_restore: restored unless `-n`/`-t` narrow.
fn select_tables<B: AsRef<[u8]>>(
    index: &ArchiveIndex<B>,
    filters: &Filters,
    list: Option<&ListSelection>,
) -> Vec<TargetTable> {
    let parts = &index.catalog().parts;
    let mut by_table: BTreeMap<(TableName, bool), Vec<PartInfo>> = BTreeMap::new();
    for p in parts {
        let wanted = match p.kind {
            PartKind::Table => filters.selects(&p.table.schema, &p.table.name, true),
            PartKind::LargeObjects => !filters.narrows(),
        };
        if wanted && list.is_none_or(|l| l.parts.contains(&p.id.0)) {
            by_table.entry((p.table.clone(), p.kind == PartKind::LargeObjects)).or_default().push(p.clone());
        }
    }
    by_table
        .into_iter()
        .map(|((name, lo), parts)| {
            let records = || parts.iter().filter_map(|p| index.part(p.id));
            let rows = records().map(|r| r.rows).sum();
            let digest = records().fold(ContentDigest::default(), |mut d, r| {
                d += r.digest;
                d
            });
            TargetTable { name, kind: if lo { PartKind::LargeObjects } else { PartKind::Table }, parts, rows, digest }
        })
        .collect()
}

/// The sequence values the filters (and a `-L` list) select.
fn select_sequences<B: AsRef<[u8]>>(
    index: &ArchiveIndex<B>,
    filters: &Filters,
    list: Option<&ListSelection>,
) -> Vec<crate::format::SequenceValue> {
    index
        .catalog()
        .sequences
        .iter()
        .filter(|s| filters.selects(&s.name.schema, &s.name.name, true))
        .filter(|s| list.is_none_or(|l| l.sequences.contains(&s.name.to_string())))
        .cloned()
        .collect()
}

/// The qualified names of the ordinary tables, for queries that take `text[]`.
pub(crate) fn table_names(tables: &[TargetTable]) -> Vec<String> {
    tables.iter().filter(|t| t.kind == PartKind::Table).map(|t| quote_qualified(&t.name)).collect()
}

#[cfg(test)]
mod tests {
    use super::{LeaveOut, ListSelection};

    #[test]
    fn a_list_keeps_what_is_not_commented_out() {
        let text = "; archive of database `shop`\n12; pre-data; TABLE public.t (owner o)\n;13; pre-data; TABLE public.u\n\
                    part 3; data; public.t\n; part 4; data; public.u\nsequence value; public.t_id_seq\n\n";
        let list = ListSelection::parse(text, "list").unwrap();
        assert_eq!(list.objects, [12].into());
        assert_eq!(list.parts, [3].into());
        assert_eq!(list.sequences, ["public.t_id_seq".to_string()].into());
        let e = ListSelection::parse("12; pre-data; TABLE t\nTABLE u\n", "my.list").unwrap_err();
        assert!(e.to_string().contains("line 2 of `my.list`"), "{e}");
        assert!(ListSelection::parse("x; pre-data; TABLE t\n", "l").is_err());
    }

    #[test]
    fn leave_out_names_what_it_drops() {
        let none = LeaveOut::default();
        assert!(!none.kind("PUBLICATION") && !none.note("COMMENT ON TABLE t IS 'x';"));
        let all = LeaveOut {
            comments: true,
            security_labels: true,
            publications: true,
            subscriptions: true,
            ..LeaveOut::default()
        };
        for kind in ["PUBLICATION", "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA", "SUBSCRIPTION"] {
            assert!(all.kind(kind), "{kind}");
        }
        assert!(!all.kind("TABLE") && !all.kind("SUBSCRIPTION X"));
        assert!(all.note("COMMENT ON TABLE t IS 'x';") && all.note("SECURITY LABEL FOR p ON TABLE t IS 'x';"));
        let labels = LeaveOut { security_labels: true, ..LeaveOut::default() };
        assert!(labels.note("SECURITY LABEL FOR p ON TABLE t IS 'x';") && !labels.note("COMMENT ON TABLE t IS 'x';"));
    }
}
