//! The tracking tables of the migration tools whose layouts the folder runner reads (golang-migrate,
//! diesel, Prisma, Flyway, dbmate, goose, sql-migrate).
//!
//! A team that moves its folder to pgsafe has a database whose tool already applied most of it, and a
//! tool it may still run by hand. So the runner reads the tool's own table: a migration it records as
//! applied counts as applied (pgsafe's table records only what pgsafe applied), and one the tool records as
//! failed part way (golang-migrate's `dirty`, Prisma's unfinished row, Flyway's `success = false`) stops
//! the run before anything. Each migration pgsafe applies or undoes is written to the tool's table too,
//! in the same transaction, as the tool writes it, so that the tool, run later, agrees.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use super::runner::{Applied, MigrationFile, version_key};
use crate::error::{Error, ErrorKind, Result};
use crate::format::TableName;
use crate::pg::Session;
use crate::sql::{quote_literal, quote_qualified};

/// A migration tool whose layout and tracking table the folder runner knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    GolangMigrate,
    Diesel,
    Prisma,
    Flyway,
    Dbmate,
    Goose,
    SqlMigrate,
}

impl Tool {
    /// As its project names it.
    pub fn name(self) -> &'static str {
        match self {
            Tool::GolangMigrate => "golang-migrate",
            Tool::Diesel => "diesel",
            Tool::Prisma => "Prisma",
            Tool::Flyway => "Flyway",
            Tool::Dbmate => "dbmate",
            Tool::Goose => "goose",
            Tool::SqlMigrate => "sql-migrate",
        }
    }

    /// The tool a file's up marker names (`sql::marking_tool`).
    pub fn of_marker(name: &str) -> Option<Tool> {
        match name {
            "goose" => Some(Tool::Goose),
            "sql-migrate" => Some(Tool::SqlMigrate),
            "dbmate" => Some(Tool::Dbmate),
            _ => None,
        }
    }

    /// Its table's default name, found where the tool makes it: the first schema of the search path.
    fn table(self) -> &'static str {
        match self {
            Tool::GolangMigrate | Tool::Dbmate => "schema_migrations",
            Tool::Diesel => "__diesel_schema_migrations",
            Tool::Prisma => "_prisma_migrations",
            Tool::Flyway => "flyway_schema_history",
            Tool::Goose => "goose_db_version",
            Tool::SqlMigrate => "gorp_migrations",
        }
    }

    /// The columns that make a table of that name the tool's: golang-migrate's and dbmate's (and Rails')
    /// `schema_migrations` differ by golang-migrate's `dirty`.
    fn is_its(self, columns: &[String]) -> bool {
        let has = |c: &str| columns.iter().any(|have| have == c);
        match self {
            Tool::GolangMigrate => has("version") && has("dirty"),
            Tool::Dbmate => has("version") && !has("dirty"),
            Tool::Diesel => has("version"),
            Tool::Prisma => has("migration_name") && has("finished_at") && has("rolled_back_at"),
            Tool::Flyway => {
                ["installed_rank", "version", "type", "script", "checksum", "success"].iter().all(|c| has(c))
            }
            Tool::Goose => has("version_id") && has("is_applied"),
            Tool::SqlMigrate => has("id") && has("applied_at"),
        }
    }
}

/// A tool's tracking table in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolTable {
    pub tool: Tool,
    pub table: TableName,
    /// The database has no such table yet: the first migration pgsafe applies makes it, as the tool
    /// makes it, in its transaction ([`made`]).
    #[serde(skip)]
    pub to_make: bool,
}

impl fmt::Display for ToolTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}'s `{}`", self.tool.name(), self.table)
    }
}

/// The tool every migration of a folder is written for, when they agree.
pub fn folder_tool(files: &[MigrationFile]) -> Option<Tool> {
    let first = files.first()?.tool?;
    files.iter().all(|f| f.tool == Some(first)).then_some(first)
}

/// Where the tool keeps its table by its own configuration (Flyway's `table`, and `defaultSchema` or
/// `schemas`), where that is not its default name in the search path: looked for there, made there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configured {
    pub schema: Option<String>,
    pub name: Option<String>,
}

impl Configured {
    /// The table's name as `to_regclass` takes it: qualified where the schema is configured.
    fn regclass(&self, tool: Tool) -> String {
        let name = crate::sql::quote_ident(self.name.as_deref().unwrap_or(tool.table()));
        match &self.schema {
            Some(schema) => format!("{}.{name}", crate::sql::quote_ident(schema)),
            None => name,
        }
    }

    fn name(&self, tool: Tool) -> String {
        self.name.clone().unwrap_or_else(|| tool.table().to_owned())
    }
}

/// The tool's table, where the database has one of its name and shape: `named`, or where the tool's
/// configuration puts it, or the tool's default name in the search path. A table `named` that is missing
/// or not of the tool's shape is an error.
pub async fn find(
    session: &Session,
    tool: Tool,
    named: Option<&TableName>,
    configured: &Configured,
) -> Result<Option<ToolTable>> {
    let sql = "SELECT n.nspname::text, c.relname::text, \
                      array(SELECT a.attname::text FROM pg_attribute a \
                            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) \
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
               WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')";
    let name = match named {
        Some(table) => quote_qualified(table),
        None => configured.regclass(tool),
    };
    let rows =
        session.query(sql, &[&name]).await.map_err(|e| e.context(format!("looking for {}'s table", tool.name())))?;
    let found = match rows.first() {
        Some(row) => {
            let columns: Vec<String> = crate::pg::value(row, 2, sql)?;
            let table = TableName { schema: crate::pg::value(row, 0, sql)?, name: crate::pg::value(row, 1, sql)? };
            tool.is_its(&columns).then_some(ToolTable { tool, table, to_make: false })
        }
        None => None,
    };
    if found.is_none()
        && let Some(table) = named
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`--tool-table {table}`: the database has no table of that name that is {}'s", tool.name()),
        ));
    }
    if found.is_none() {
        tracing::info!(
            "the folder is written for {} and the database has no `{}`{}: pgsafe's own table alone says what is \
             applied (`--tool-table` names the tool's table elsewhere)",
            tool.name(),
            configured.name(tool),
            configured.schema.as_ref().map_or(" in its search path".to_owned(), |s| format!(" in schema `{s}`"))
        );
    }
    Ok(found)
}

/// Where the tool's table is to be made, when the database has none: a folder written for a tool that
/// pgsafe migrates from the start, with no table of the tool's name in the search path, would otherwise
/// leave the tool, run later by hand or by a deploy that still uses it, to apply every migration again.
/// The tool makes its table in the schema its configuration names, or unqualified, in the first schema of
/// the search path that exists (`current_schema()`), and so does pgsafe. `None`, said in the log, when a
/// table of that name is there but is not the tool's (dbmate's and Rails' `schema_migrations`), when there
/// is no such schema, or when the role may not create in it.
pub async fn to_make(session: &Session, tool: Tool, configured: &Configured) -> Result<Option<ToolTable>> {
    let sql = "SELECT pg_catalog.to_regclass($1) IS NOT NULL, w.name::text, n.oid IS NOT NULL, \
                      n.oid IS NOT NULL AND pg_catalog.has_schema_privilege(n.oid, 'CREATE') \
               FROM (SELECT coalesce($2::text, pg_catalog.current_schema()::text) AS name) w \
               LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = w.name";
    let row = session
        .query_one(sql, &[&configured.regclass(tool), &configured.schema])
        .await
        .map_err(|e| e.context(format!("looking for where {}'s table goes", tool.name())))?;
    let (taken, schema, exists, may_create): (bool, Option<String>, bool, bool) = (
        crate::pg::value(&row, 0, sql)?,
        crate::pg::value(&row, 1, sql)?,
        crate::pg::value(&row, 2, sql)?,
        crate::pg::value(&row, 3, sql)?,
    );
    let why_not = match &schema {
        _ if taken => "a table of that name that is not the tool's is there".to_owned(),
        None => "the search path names no schema that exists".to_owned(),
        Some(schema) if !exists => format!("its schema `{schema}` does not exist"),
        Some(schema) if !may_create => format!("the role may not create tables in schema `{schema}`"),
        Some(schema) => {
            return Ok(Some(ToolTable {
                tool,
                table: TableName { schema: schema.clone(), name: configured.name(tool) },
                to_make: true,
            }));
        }
    };
    tracing::warn!(
        "the folder is written for {} and the database has no table of it: {why_not}, so pgsafe makes none and \
         the tool, run later, would not know what pgsafe applied",
        tool.name()
    );
    Ok(None)
}

/// The statements that make the tool's table as the tool makes it, and write to it every migration of
/// `applied` (those pgsafe's table records, in version order) as the tool would have, so that the tool
/// agrees with pgsafe from the first migration on. Run in the transaction of the first migration pgsafe
/// applies.
pub fn made(table: &ToolTable, applied: &[&MigrationFile]) -> Result<String> {
    let t = quote_qualified(&table.table);
    let mut sql = match table.tool {
        Tool::GolangMigrate => {
            format!("CREATE TABLE IF NOT EXISTS {t} (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);\n")
        }
        Tool::Dbmate => format!("CREATE TABLE IF NOT EXISTS {t} (version varchar(128) PRIMARY KEY);\n"),
        Tool::Diesel => format!(
            "CREATE TABLE IF NOT EXISTS {t} (version varchar(50) PRIMARY KEY NOT NULL, \
             run_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP);\n"
        ),
        Tool::Prisma => format!(
            "CREATE TABLE IF NOT EXISTS {t} (id varchar(36) PRIMARY KEY NOT NULL, checksum varchar(64) NOT NULL, \
             finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz, \
             started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0);\n"
        ),
        Tool::Flyway => {
            let named = |suffix: &str| crate::sql::quote_ident(&format!("{}{suffix}", table.table.name));
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (installed_rank integer NOT NULL, version varchar(50), \
                 description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, \
                 checksum integer, installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(), \
                 execution_time integer NOT NULL, success boolean NOT NULL, \
                 CONSTRAINT {} PRIMARY KEY (installed_rank));\n\
                 CREATE INDEX IF NOT EXISTS {} ON {t} (success);\n",
                named("_pk"),
                named("_s_idx")
            )
        }
        // goose records version 0 as applied when it makes its table.
        Tool::Goose => format!(
            "CREATE TABLE IF NOT EXISTS {t} (id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, \
             version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NOT NULL DEFAULT now());\n\
             INSERT INTO {t} (version_id, is_applied) VALUES (0, true);\n"
        ),
        Tool::SqlMigrate => {
            format!("CREATE TABLE IF NOT EXISTS {t} (id text NOT NULL PRIMARY KEY, applied_at timestamptz);\n")
        }
    };
    match table.tool {
        // One row, the latest version: the first migration's own record writes it.
        Tool::GolangMigrate => {}
        _ => {
            for f in applied {
                sql.push_str(&record_sql(table, f, None, false)?);
            }
        }
    }
    Ok(sql)
}

/// What the tool's table says of the folder: the migrations it records as applied (as [`Applied`] rows
/// naming it), and, when it records one as failed part way, why nothing may be applied.
pub async fn applied(
    session: &Session,
    table: &ToolTable,
    files: &[MigrationFile],
) -> Result<(Vec<Applied>, Option<String>)> {
    let t = quote_qualified(&table.table);
    let query =
        |sql: String| async move { session.query(&sql, &[]).await.map_err(|e| e.context(format!("reading {table}"))) };
    let text =
        |row: &tokio_postgres::Row, i: usize| -> Option<String> { row.try_get::<_, Option<String>>(i).ok().flatten() };
    // Versions as the tool writes them, with when (where it says).
    let mut at: HashMap<String, String> = HashMap::new();
    // The checksum the tool recorded of each version's script (Prisma's SHA-256, Flyway's CRC-32).
    let mut sums: HashMap<String, String> = HashMap::new();
    // Who applied each version and how long it took, where the tool says (Flyway).
    let mut by: HashMap<String, (String, f64)> = HashMap::new();
    let mut failed = None;
    let applied: Vec<&MigrationFile> = match table.tool {
        Tool::GolangMigrate => {
            let rows = query(format!("SELECT version::text, dirty FROM {t}")).await?;
            match rows.first() {
                None => Vec::new(),
                Some(row) => {
                    let version = text(row, 0).unwrap_or_default();
                    if row.try_get::<_, bool>(1).unwrap_or(false) {
                        failed = Some(format!(
                            "{table} marks version {version} dirty: it failed part way when golang-migrate applied it \
                             (put the database right by hand, then `migrate force VERSION` records where it stands)"
                        ));
                    }
                    files.iter().filter(|f| version_key(&f.version).0 <= version_key(&version).0).collect()
                }
            }
        }
        Tool::Diesel | Tool::Dbmate => {
            let rows = query(format!("SELECT version::text FROM {t}")).await?;
            let versions: HashSet<String> = rows.iter().filter_map(|r| text(r, 0)).map(|v| number(&v)).collect();
            files.iter().filter(|f| versions.contains(&number(&f.version))).collect()
        }
        Tool::Prisma => {
            let rows = query(format!(
                "SELECT migration_name::text, finished_at::text, rolled_back_at IS NOT NULL, checksum::text FROM {t} \
                 ORDER BY started_at"
            ))
            .await?;
            let mut done = HashSet::new();
            for row in &rows {
                let name = text(row, 0).unwrap_or_default();
                let rolled_back = row.try_get::<_, bool>(2).unwrap_or(false);
                match (text(row, 1), rolled_back) {
                    (_, true) => {}
                    (Some(when), false) => {
                        at.insert(name.clone(), when);
                        sums.insert(name.clone(), text(row, 3).unwrap_or_default());
                        done.insert(name);
                    }
                    (None, false) => {
                        failed = Some(format!(
                            "{table} records `{name}` as started and not finished: it failed part way when Prisma \
                             applied it (put the database right, then `prisma migrate resolve --rolled-back {name}` \
                             or `--applied {name}`)"
                        ))
                    }
                }
            }
            files.iter().filter(|f| done.contains(&f.version)).collect()
        }
        Tool::Flyway => {
            let rows = query(format!(
                "SELECT version::text, type::text, success, installed_on::text, checksum::text, installed_by::text, \
                 execution_time::float8 / 1000 FROM {t} WHERE version IS NOT NULL ORDER BY installed_rank"
            ))
            .await?;
            let mut done: Vec<String> = Vec::new();
            let mut baseline: Option<String> = None;
            for row in &rows {
                let version = text(row, 0).unwrap_or_default();
                let kind = text(row, 1).unwrap_or_default().to_ascii_uppercase();
                if !row.try_get::<_, bool>(2).unwrap_or(true) {
                    failed = Some(format!(
                        "{table} records version {version} as failed: Flyway applied it part way (put the database \
                         right, then `flyway repair`)"
                    ));
                    continue;
                }
                if kind == "BASELINE" {
                    baseline = Some(version);
                } else if kind.starts_with("UNDO") || kind == "DELETE" {
                    done.retain(|v| version_key(v) != version_key(&version));
                } else {
                    at.insert(version.clone(), text(row, 3).unwrap_or_default());
                    if let Some(sum) = text(row, 4) {
                        sums.insert(version.clone(), sum);
                    }
                    let seconds = row.try_get::<_, Option<f64>>(6).ok().flatten().unwrap_or_default();
                    by.insert(version.clone(), (text(row, 5).unwrap_or_default(), seconds));
                    done.push(version);
                }
            }
            files
                .iter()
                .filter(|f| {
                    done.iter().any(|v| version_key(v) == version_key(&f.version))
                        || baseline.as_deref().is_some_and(|b| version_key(&f.version) <= version_key(b))
                })
                .collect()
        }
        Tool::Goose => {
            let rows = query(format!("SELECT version_id::text, is_applied, tstamp::text FROM {t} ORDER BY id")).await?;
            let mut state: HashMap<String, bool> = HashMap::new();
            for row in &rows {
                let version = number(&text(row, 0).unwrap_or_default());
                let is_applied = row.try_get::<_, bool>(1).unwrap_or(false);
                state.insert(version.clone(), is_applied);
                at.insert(version, text(row, 2).unwrap_or_default());
            }
            files.iter().filter(|f| state.get(&number(&f.version)) == Some(&true)).collect()
        }
        Tool::SqlMigrate => {
            let rows = query(format!("SELECT id::text, applied_at::text FROM {t}")).await?;
            for row in &rows {
                at.insert(text(row, 0).unwrap_or_default(), text(row, 1).unwrap_or_default());
            }
            files.iter().filter(|f| at.contains_key(&file_name(f))).collect()
        }
    };
    let mut changed = Vec::new();
    for f in &applied {
        let recorded = sums.iter().find(|(v, _)| version_key(v) == version_key(&f.version)).map(|(_, sum)| sum);
        if let Some(recorded) = recorded
            && !script_matches(table.tool, &read(f)?, recorded)
        {
            changed.push(f.version.clone());
        }
    }
    let recorded_by =
        |f: &MigrationFile| by.iter().find(|(v, _)| version_key(v) == version_key(&f.version)).map(|(_, b)| b);
    let applied = applied
        .into_iter()
        .map(|f| Applied {
            version: f.version.clone(),
            name: f.name.clone(),
            // A script whose checksum differs from the one the tool recorded changed since it was applied:
            // drift, as for pgsafe's own records.
            checksum: if changed.contains(&f.version) {
                format!("{}'s recorded checksum", table.tool.name())
            } else {
                f.checksum.clone()
            },
            applied_at: [f.version.clone(), number(&f.version), file_name(f)]
                .iter()
                .find_map(|k| at.get(k).cloned())
                .unwrap_or_default(),
            role: recorded_by(f).map(|(role, _)| role.clone()).unwrap_or_default(),
            seconds: recorded_by(f).map_or(0.0, |(_, seconds)| *seconds),
            snapshot: None,
            tool: Some(table.tool.name().to_owned()),
        })
        .collect();
    Ok((applied, failed))
}

/// Of Flyway's table: the checksum it last recorded of each repeatable migration it (or pgsafe) ran with
/// success, by script name (`R__views.sql`).
pub async fn flyway_repeatables(session: &Session, table: &ToolTable) -> Result<HashMap<String, String>> {
    let sql = format!(
        "SELECT script::text, checksum::text FROM {} WHERE version IS NULL AND success \
         AND upper(type) NOT IN ('BASELINE', 'DELETE') ORDER BY installed_rank",
        quote_qualified(&table.table)
    );
    let rows = session.query(&sql, &[]).await.map_err(|e| e.context(format!("reading {table}")))?;
    let mut last = HashMap::new();
    for row in &rows {
        let script: Option<String> = crate::pg::value(row, 0, &sql)?;
        let checksum: Option<String> = crate::pg::value(row, 1, &sql)?;
        if let Some(script) = script {
            last.insert(script, checksum.unwrap_or_default());
        }
    }
    Ok(last)
}

/// Whether the repeatable migration `f` differs from what Flyway's table `recorded` of it (by
/// [`flyway_repeatables`]): never run, or changed since.
pub fn repeatable_due(f: &MigrationFile, recorded: &HashMap<String, String>) -> Result<bool> {
    Ok(match recorded.get(&file_name(f)) {
        Some(sum) => !script_matches(Tool::Flyway, &read(f)?, sum),
        None => true,
    })
}

/// The statements that write `f`'s applying (or, `down`, its undoing) to the tool's table, as the tool
/// writes them, run in the transaction that applies it. `previous` is the folder's migration before `f`
/// (golang-migrate records only the latest version: undoing `f` records `previous`'s).
pub fn record_sql(
    table: &ToolTable,
    f: &MigrationFile,
    previous: Option<&MigrationFile>,
    down: bool,
) -> Result<String> {
    let t = quote_qualified(&table.table);
    // A version as a bigint literal (golang-migrate's and goose's columns).
    let bigint = |m: &MigrationFile| Some(number(&m.version)).filter(|n| !n.is_empty()).unwrap_or_else(|| "0".into());
    // golang-migrate's one row: the latest version applied, or none.
    let golang_row = |latest: Option<&MigrationFile>| match latest {
        Some(m) => format!("DELETE FROM {t};\nINSERT INTO {t} (version, dirty) VALUES ({}, false);\n", bigint(m)),
        None => format!("DELETE FROM {t};\n"),
    };
    Ok(match (table.tool, down) {
        (Tool::GolangMigrate, false) => golang_row(Some(f)),
        (Tool::GolangMigrate, true) => golang_row(previous),
        (Tool::Diesel | Tool::Dbmate, false) => {
            // diesel writes a folder's date without its dashes; dbmate the file's digits as they are.
            format!("INSERT INTO {t} (version) VALUES ({});\n", quote_literal(&lead_digits(&f.version)))
        }
        (Tool::Diesel | Tool::Dbmate, true) => {
            let versions: Vec<String> = stored_forms(&f.version).iter().map(|v| quote_literal(v)).collect();
            format!("DELETE FROM {t} WHERE version::text IN ({});\n", versions.join(", "))
        }
        (Tool::Prisma, false) => {
            let script = String::from_utf8_lossy(&read(f)?).replace("\r\n", "\n");
            let checksum = hex::encode(ring::digest::digest(&ring::digest::SHA256, script.as_bytes()));
            format!(
                "INSERT INTO {t} (id, checksum, migration_name, started_at, finished_at, applied_steps_count) \
                 VALUES (gen_random_uuid()::text, {}, {}, now(), clock_timestamp(), 1);\n",
                quote_literal(&checksum),
                quote_literal(&f.version)
            )
        }
        (Tool::Prisma, true) => format!("DELETE FROM {t} WHERE migration_name = {};\n", quote_literal(&f.version)),
        (Tool::Flyway, false) => flyway_row(&t, f, "SQL", f)?,
        // Flyway records an undo as a row of its own, of its `U` script, and keeps the migration's.
        (Tool::Flyway, true) => match &f.down {
            Some(undo) => flyway_row(&t, f, "UNDO_SQL", &MigrationFile { path: undo.clone(), ..f.clone() })?,
            None => format!("DELETE FROM {t} WHERE version = {};\n", quote_literal(&f.version)),
        },
        (Tool::Goose, false) => {
            format!("INSERT INTO {t} (version_id, is_applied) VALUES ({}, true);\n", bigint(f))
        }
        (Tool::Goose, true) => format!("DELETE FROM {t} WHERE version_id = {};\n", bigint(f)),
        (Tool::SqlMigrate, false) => {
            format!("INSERT INTO {t} (id, applied_at) VALUES ({}, now());\n", quote_literal(&file_name(f)))
        }
        (Tool::SqlMigrate, true) => format!("DELETE FROM {t} WHERE id = {};\n", quote_literal(&file_name(f))),
    })
}

/// Whether `bytes`, a script, has the checksum `recorded` as the tool computes it: Flyway's CRC-32
/// ([`flyway_checksum`]), Prisma's SHA-256 (of the script as it is, or with its line ends made `\n`, as
/// Prisma since 4.x computes it, or `\r\n`, which it also accepts).
fn script_matches(tool: Tool, bytes: &[u8], recorded: &str) -> bool {
    match tool {
        Tool::Flyway => recorded.trim().parse::<i32>().is_ok_and(|sum| sum == flyway_checksum(bytes)),
        Tool::Prisma => {
            let sha = |b: &[u8]| hex::encode(ring::digest::digest(&ring::digest::SHA256, b));
            let text = String::from_utf8_lossy(bytes);
            let lf = text.replace("\r\n", "\n");
            let crlf = lf.replace('\n', "\r\n");
            [sha(bytes), sha(lf.as_bytes()), sha(crlf.as_bytes())]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(recorded.trim()))
        }
        _ => true,
    }
}

/// Flyway's row of type `kind` (`SQL`, `UNDO_SQL`) for migration `f`, of the script `script`, in table `t`:
/// the next rank, the version (NULL for a repeatable migration), the description (the name's `_` as
/// spaces), the script's name and checksum, who, and how long the transaction has run, in milliseconds.
fn flyway_row(t: &str, f: &MigrationFile, kind: &str, script: &MigrationFile) -> Result<String> {
    // A repeatable migration has no version: Flyway's row leaves it NULL.
    let version = if f.is_repeatable() { "NULL".to_owned() } else { quote_literal(&f.version) };
    Ok(format!(
        "INSERT INTO {t} (installed_rank, version, description, type, script, checksum, installed_by, \
         execution_time, success) \
         SELECT coalesce(max(installed_rank), 0) + 1, {}, {}, {}, {}, {}, current_user, \
         (extract(epoch FROM clock_timestamp() - now()) * 1000)::int, true FROM {t};\n",
        version,
        quote_literal(&f.name.replace('_', " ")),
        quote_literal(kind),
        quote_literal(&file_name(script)),
        flyway_checksum(&read(script)?)
    ))
}

/// The forms a tool may have written a version in: as in the file's name, and as its digits alone.
fn stored_forms(version: &str) -> Vec<String> {
    let mut forms = vec![version.split('_').next().unwrap_or_default().to_owned(), lead_digits(version)];
    forms.dedup();
    forms
}

/// The digits of a version before its first `_`, padding kept: `2019-02-26-002946_x` is `20190226002946`.
fn lead_digits(version: &str) -> String {
    version.split('_').next().unwrap_or_default().chars().filter(char::is_ascii_digit).collect()
}

/// A version's leading number, as [`version_key`] reads it: its digits without padding or a diesel date's
/// dashes, `2019-02-26-002946` is `20190226002946`, `000042` is `42` (the empty string for zero).
fn number(version: &str) -> String {
    version_key(version).0.into_iter().next().map(|(_, digits)| digits).unwrap_or_default()
}

/// The migration's script name, as Flyway and sql-migrate record it (`V2__add_users.sql`).
fn file_name(f: &MigrationFile) -> String {
    f.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn read(f: &MigrationFile) -> Result<Vec<u8>> {
    std::fs::read(&f.path).map_err(|e| Error::io("reading", &f.path, e))
}

/// Flyway's checksum of a script: CRC-32 over its lines' bytes without their line ends (`\n`, `\r\n` or
/// `\r`, as Java's `readLine` splits them), a byte-order mark left out, as a signed 32-bit integer.
pub fn flyway_checksum(bytes: &[u8]) -> i32 {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut crc = crc32fast::Hasher::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' | b'\n' => {}
            _ => {
                let end = bytes[i..].iter().position(|&b| b == b'\r' || b == b'\n').map_or(bytes.len(), |p| i + p);
                crc.update(&bytes[i..end]);
                i = end;
                continue;
            }
        }
        i += 1;
    }
    crc.finalize() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flyways_checksum_is_line_end_blind_and_matches_its_crc() {
        // CRC-32 of "SELECT 1;" and "SELECT 2;" joined without line ends, as Java's CRC32 gives it.
        let mut crc = crc32fast::Hasher::new();
        crc.update(b"SELECT 1;SELECT 2;");
        let expected = crc.finalize() as i32;
        assert_eq!(flyway_checksum(b"SELECT 1;\nSELECT 2;\n"), expected);
        assert_eq!(flyway_checksum(b"SELECT 1;\r\nSELECT 2;"), expected);
        assert_eq!(flyway_checksum(b"\xEF\xBB\xBFSELECT 1;\rSELECT 2;\r\n"), expected);
        // An empty line adds nothing, as an empty update does not.
        assert_eq!(flyway_checksum(b"SELECT 1;\n\nSELECT 2;\n"), expected);
        assert_ne!(flyway_checksum(b"SELECT 1; SELECT 2;"), expected);
    }

    #[test]
    fn a_version_is_its_number_whatever_its_padding_or_dashes() {
        assert_eq!(number("2019-02-26-002946_create_user"), "20190226002946");
        assert_eq!(number("000042"), "42");
        assert_eq!(number("0"), "");
        assert!(version_key("9").0 < version_key("10").0);
        assert_eq!(stored_forms("2019-02-26-002946_create_user"), ["2019-02-26-002946", "20190226002946"]);
        assert_eq!(stored_forms("20151129054053"), ["20151129054053"]);
    }
}
