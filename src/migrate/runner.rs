//! The runner for a folder of plain SQL migrations: `NNNN_name.sql` files applied in version order (as
//! numbers: `2_` before `10_`), each with
//! an optional `NNNN_name.down.sql`, tracked in a table of the database (`pgsafe.migrations` unless told
//! otherwise) with version, name, checksum, when, how long, by whom, and the snapshot taken before.
//!
//! The layouts of other tools are read as they are (golang-migrate, diesel, Prisma, Flyway, and the
//! markers of goose, dbmate and sql-migrate), and where the database has that tool's own table,
//! [`tools`](super::tools) reads and keeps it.
//!
//! An applied file whose bytes changed since is drift: `migrate` refuses to go on and names it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result, SqlState};
use crate::format::TableName;
use crate::pg::Session;
use crate::sql::{quote_ident, quote_literal, quote_qualified};

use super::tools::{Tool, ToolTable};

/// One migration of a folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationFile {
    /// The digits before the first `_`: `0042`; of a migration folder (diesel's, Prisma's), the folder's
    /// whole name, as those tools track it: `20220305233635_add_schedules`.
    pub version: String,
    /// What follows them, without `.sql`: `add_orders_index`.
    pub name: String,
    pub path: PathBuf,
    /// `NNNN_name.down.sql` beside it, when there is one.
    pub down: Option<PathBuf>,
    /// BLAKE3 of the file's bytes, 64 hex digits.
    pub checksum: String,
    /// The tool its layout or markers are written for (`None`: pgsafe's own `NNNN_name.sql`).
    #[serde(skip)]
    pub tool: Option<Tool>,
}

impl MigrationFile {
    /// What its down script would be, as its tool names it: `0042_x.down.sql`, Flyway's `U1_1__x.sql`,
    /// a down section (`-- migrate:down`) of a goose, dbmate or sql-migrate file, diesel's `down.sql`.
    pub fn down_name(&self) -> String {
        match self.tool {
            Some(Tool::Flyway) => format!("U{}__{}.sql", self.version.replace('.', "_"), self.name),
            Some(Tool::Dbmate) => "a `-- migrate:down` section".to_owned(),
            Some(Tool::Goose) => "a `-- +goose Down` section".to_owned(),
            Some(Tool::SqlMigrate) => "a `-- +migrate Down` section".to_owned(),
            Some(Tool::Diesel) => format!("{}/down.sql", self.version),
            _ => format!("{}_{}.down.sql", self.version, self.name),
        }
    }

    /// `0042_add_orders_index`, as messages and snapshot labels name it (a migration folder: its name,
    /// which is its version).
    pub fn label(&self) -> String {
        label(&self.version, &self.name)
    }

    /// A Flyway repeatable migration (`R__name.sql`, version `R__name`): run again whenever it changes.
    pub fn is_repeatable(&self) -> bool {
        self.version.starts_with(REPEATABLE)
    }
}

/// `0042_add_orders_index`; a migration folder's version, which is its whole name, alone.
fn label(version: &str, name: &str) -> String {
    if version.contains('_') { version.to_owned() } else { format!("{version}_{name}") }
}

/// A migration the tracking table records as applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    pub version: String,
    pub name: String,
    pub checksum: String,
    pub applied_at: String,
    pub seconds: f64,
    pub role: String,
    /// The snapshot taken before it, when there was one.
    pub snapshot: Option<String>,
    /// The tool whose own table records it, when pgsafe's does not (it was applied by that tool).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
}

impl Applied {
    /// As [`MigrationFile::label`] names the migration it records.
    pub fn label(&self) -> String {
        label(&self.version, &self.name)
    }
}

/// A folder against its tracking table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FolderStatus {
    /// Every migration of the folder, in order.
    pub files: Vec<MigrationFile>,
    pub applied: Vec<Applied>,
    pub pending: Vec<MigrationFile>,
    /// Applied files whose bytes changed since (drift), with what the table recorded.
    pub changed: Vec<(MigrationFile, Applied)>,
    /// Applied migrations whose file is gone from the folder.
    pub missing: Vec<Applied>,
    /// The tracking table of the tool the folder is written for, when the database has it.
    pub tool_table: Option<ToolTable>,
    /// Why that table forbids applying anything: it records a migration as failed part way.
    pub tool_failed: Option<String>,
    /// Migrations pgsafe's table records as applied and the tool's does not (labels).
    pub tool_unrecorded: Vec<String>,
    /// Flyway's repeatable migrations of the folder (`R__name.sql`), in name order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repeatables: Vec<MigrationFile>,
    /// Those of them to run: never applied, or changed since they last were (Flyway's table, else
    /// pgsafe's, says).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repeatables_due: Vec<MigrationFile>,
}

impl FolderStatus {
    /// The folder's migrations that are recorded as applied, in version order.
    pub fn applied_files(&self) -> Vec<&MigrationFile> {
        self.files.iter().filter(|f| self.applied.iter().any(|a| a.version == f.version)).collect()
    }
}

/// The folder's migrations, in version order: `NNNN_name.sql` files with an optional `NNNN_name.down.sql`
/// (golang-migrate's `NNNN_name.up.sql` and `NNNN_name.down.sql` alike), or a folder per migration named
/// `VERSION_name` holding its `up.sql` and optional `down.sql` (diesel, whose versions are dated as
/// `2020-01-02-123456`: the digits are the version) or its `migration.sql` (Prisma). A `.sql` file that
/// is none of these is refused by name, as are two migrations of one version, a down script without its
/// migration, a migration folder without its script, and a folder that holds no migration at all.
pub fn scan(dir: &Path) -> Result<Vec<MigrationFile>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("reading the migrations folder", dir, e))?;
    let mut names = Vec::new();
    let mut folders = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading the migrations folder", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.ends_with(".sql") && path.is_file() {
            names.push(name);
        } else if path.is_dir() {
            folders.push(name);
        }
    }
    names.sort();
    folders.sort();
    let mut ups: Vec<MigrationFile> = Vec::new();
    let mut downs: HashMap<String, PathBuf> = HashMap::new();
    let bad_name = |file: &str| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "`{}`: a migration file is named `NNNN_name.sql` (or `NNNN_name.down.sql`, or Flyway's `V1__name.sql`)",
                dir.join(file).display()
            ),
        )
        .with_hint(
            "digits, `_`, then a name (golang-migrate's `NNNN_name.up.sql` too); files are applied in the order \
             of their versions, as numbers",
        )
    };
    for file in &names {
        // Flyway's repeatable migrations: [`scan_repeatables`].
        if file.starts_with(REPEATABLE) {
            continue;
        }
        if let Some((undo, version, name)) = flyway_name(file) {
            let path = dir.join(file);
            if undo {
                downs.insert(format!("{version}_{name}"), path);
            } else {
                add(&mut ups, version, name, path, None, Some(Tool::Flyway))?;
            }
            continue;
        }
        let (stem, down) = match file.strip_suffix(".down.sql") {
            Some(stem) => (stem, true),
            None => (file.strip_suffix(".up.sql").or_else(|| file.strip_suffix(".sql")).unwrap_or(file), false),
        };
        let Some((version, name)) = split_name(stem) else { return Err(bad_name(file)) };
        let path = dir.join(file);
        if down {
            downs.insert(format!("{version}_{name}"), path);
            continue;
        }
        let tool = file.ends_with(".up.sql").then_some(Tool::GolangMigrate);
        add(&mut ups, version.to_owned(), name, path, None, tool)?;
    }
    for folder in &folders {
        let Some((version, name)) = split_dated_name(folder) else { continue };
        let path = dir.join(folder);
        let Some(up) = ["up.sql", "migration.sql"].iter().map(|f| path.join(f)).find(|f| f.is_file()) else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("`{}` is named as a migration but holds no `up.sql` or `migration.sql`", path.display()),
            ));
        };
        let down = Some(path.join("down.sql")).filter(|d| d.is_file());
        let tool = if up.ends_with("migration.sql") { Tool::Prisma } else { Tool::Diesel };
        add(&mut ups, version, name, up, down, Some(tool))?;
    }
    if ups.is_empty() && downs.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, format!("`{}` holds no migration", dir.display())).with_hint(
            "a migrations folder holds `NNNN_name.sql` files (and their `NNNN_name.down.sql`), Flyway's \
             `V1__name.sql`, or a folder per migration, `VERSION_name/up.sql` (diesel) or \
             `VERSION_name/migration.sql` (Prisma)",
        ));
    }
    ups.sort_by(|a, b| version_key(&a.version).cmp(&version_key(&b.version)));
    for m in &mut ups {
        if m.down.is_none() {
            m.down = downs.remove(&m.label());
        }
    }
    let mut orphans: Vec<&PathBuf> = downs.values().collect();
    orphans.sort();
    if let Some(path) = orphans.first() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{}` is a down script without its migration", path.display()),
        ));
    }
    Ok(ups)
}

/// The prefix of a Flyway repeatable migration's file name, and of its version in pgsafe's table.
pub const REPEATABLE: &str = "R__";

/// Flyway's repeatable migrations of the folder `dir` (`R__name.sql`), in name order, which is the order
/// Flyway runs them in, after the versioned ones. Their version, in pgsafe's table, is `R__name`.
pub fn scan_repeatables(dir: &Path) -> Result<Vec<MigrationFile>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("reading the migrations folder", dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading the migrations folder", dir, e))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = repeatable_name(&file) else { continue };
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io("reading", &path, e))?;
        found.push(MigrationFile {
            version: format!("{REPEATABLE}{name}"),
            name: name.to_owned(),
            checksum: blake3::hash(&bytes).to_hex().to_string(),
            path,
            down: None,
            tool: Some(Tool::Flyway),
        });
    }
    found.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(found)
}

/// The version [`scan`] reads from the name of a folder's entry (`is_dir`: a subfolder), when it reads one:
/// Flyway's (`1.1` of `V1_1__x.sql`, not of an undo script), a numbered file's (`0042` of `0042_x.sql`,
/// `000001_x.up.sql`), a migration folder's (its whole name). What lint orders a folder by, too.
pub fn migration_version(name: &str, is_dir: bool) -> Option<String> {
    if is_dir {
        return split_dated_name(name).map(|(version, _)| version);
    }
    if let Some((undo, version, _)) = flyway_name(name) {
        return (!undo).then_some(version);
    }
    let stem = name.strip_suffix(".up.sql").or_else(|| name.strip_suffix(".sql"))?;
    split_name(stem).map(|(version, _)| version.to_owned())
}

/// Adds the migration `version`/`name` at `path` (its script) to `ups`, refusing a second one of its version;
/// written for `tool`, or (a plain file) for the tool whose markers it carries.
fn add(
    ups: &mut Vec<MigrationFile>,
    version: String,
    name: &str,
    path: PathBuf,
    down: Option<PathBuf>,
    tool: Option<Tool>,
) -> Result<()> {
    if let Some(other) = ups.iter().find(|m| version_key(&m.version) == version_key(&version)) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{}` and `{}` have the same version {version}", other.path.display(), path.display()),
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io("reading", &path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let tool = tool.or_else(|| crate::sql::marking_tool(&text).and_then(Tool::of_marker));
    // goose's, dbmate's and sql-migrate's files hold their down script as a section of their own.
    // goose takes a missing down section for one that does nothing.
    let down =
        down.or_else(|| (crate::sql::down_only(&text).is_some() || tool == Some(Tool::Goose)).then(|| path.clone()));
    ups.push(MigrationFile {
        version,
        name: name.to_owned(),
        checksum: blake3::hash(&bytes).to_hex().to_string(),
        path,
        down,
        tool,
    });
    Ok(())
}

/// A migration folder's name, `2020-01-02-123456_add_x` (diesel) or `20200102123456_add_x` (Prisma), as
/// (its version, the whole name, and `add_x`).
fn split_dated_name(folder: &str) -> Option<(String, &str)> {
    let (version, name) = folder.split_once('_')?;
    let dated = version.starts_with(|c: char| c.is_ascii_digit())
        && !version.ends_with('-')
        && version.chars().all(|c| c.is_ascii_digit() || c == '-');
    (dated && !name.is_empty()).then(|| (folder.to_owned(), name))
}

/// How versions order: as the numbers their leading digits write, whatever the padding (`2` before `10`,
/// `0042` the same as `42`; a diesel folder's dashes left out), part by part for Flyway's dotted versions
/// (`1.9` before `1.10`, `1.0` the same as `1`), then by the rest (a migration folder's version is its
/// whole name: Prisma may give two folders one timestamp).
pub fn version_key(version: &str) -> (Vec<(usize, String)>, &str) {
    let lead = version.find(|c: char| !(c.is_ascii_digit() || c == '-' || c == '.')).unwrap_or(version.len());
    let mut parts: Vec<(usize, String)> = version[..lead]
        .split('.')
        .map(|part| {
            let digits: String = part.chars().filter(char::is_ascii_digit).collect();
            let digits = digits.trim_start_matches('0').to_owned();
            (digits.len(), digits)
        })
        .collect();
    while parts.last().is_some_and(|(len, _)| *len == 0) {
        parts.pop();
    }
    (parts, &version[lead..])
}

/// Flyway's `V1_1__add_users.sql` (an undo script: `U1_1__add_users.sql`) as (undo, `1.1`, `add_users`):
/// `V` or `U`, a version of digits with `.` or `_` between its parts, `__`, a description.
fn flyway_name(file: &str) -> Option<(bool, String, &str)> {
    let stem = file.strip_suffix(".sql")?;
    let undo = match stem.as_bytes().first()? {
        b'V' => false,
        b'U' => true,
        _ => return None,
    };
    let (version, name) = stem[1..].split_once("__")?;
    let valid = version.starts_with(|c: char| c.is_ascii_digit())
        && version.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '_')
        && !name.is_empty();
    valid.then(|| (undo, version.replace('_', "."), name))
}

/// The name of a Flyway repeatable migration's file: `views` of `R__views.sql`.
pub fn repeatable_name(file: &str) -> Option<&str> {
    file.strip_prefix(REPEATABLE).and_then(|f| f.strip_suffix(".sql")).filter(|name| !name.is_empty())
}

/// Whether `file` is named as Flyway names a versioned migration or its undo script.
pub fn is_flyway_name(file: &str) -> bool {
    flyway_name(file).is_some()
}

/// `0042_add_index` as (`0042`, `add_index`).
fn split_name(stem: &str) -> Option<(&str, &str)> {
    let (version, name) = stem.split_once('_')?;
    (!version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()).then_some((version, name))
}

/// A tracking table name as given (`pgsafe.migrations`, `public.schema_migrations`; unqualified means
/// `public`).
pub fn table_name(text: &str) -> Result<TableName> {
    let (schema, name) = text.split_once('.').unwrap_or(("public", text));
    if schema.is_empty() || name.is_empty() || name.contains('.') {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{text}` is not a table name such as `pgsafe.migrations`"),
        ));
    }
    Ok(TableName { schema: schema.to_owned(), name: name.to_owned() })
}

/// What the tracking table records, in version order (as numbers); nothing when it does not exist yet.
pub async fn read_applied(session: &Session, table: &TableName) -> Result<Vec<Applied>> {
    let sql = format!(
        "SELECT version, name, checksum, applied_at::text, seconds, role, snapshot FROM {} ORDER BY version",
        quote_qualified(table)
    );
    let rows = match session.query(&sql, &[]).await {
        Ok(rows) => rows,
        Err(e) if e.sqlstate() == Some(SqlState::UNDEFINED_TABLE) => return Ok(Vec::new()),
        Err(e) => return Err(e.context(format!("reading the migrations table `{table}`"))),
    };
    rows.iter()
        .map(|row| {
            Ok(Applied {
                version: crate::pg::value(row, 0, &sql)?,
                name: crate::pg::value(row, 1, &sql)?,
                checksum: crate::pg::value(row, 2, &sql)?,
                applied_at: crate::pg::value(row, 3, &sql)?,
                seconds: crate::pg::value(row, 4, &sql)?,
                role: crate::pg::value(row, 5, &sql)?,
                snapshot: crate::pg::value(row, 6, &sql)?,
                tool: None,
            })
        })
        .collect::<Result<Vec<Applied>>>()
        .map(|mut applied| {
            applied.sort_by(|a, b| version_key(&a.version).cmp(&version_key(&b.version)));
            applied
        })
}

/// The folder's files against what was applied.
pub fn compare(files: Vec<MigrationFile>, applied: Vec<Applied>) -> FolderStatus {
    let mut status = FolderStatus::default();
    let by_version: HashMap<&str, &Applied> = applied.iter().map(|a| (a.version.as_str(), a)).collect();
    for f in files.iter() {
        match by_version.get(f.version.as_str()) {
            None => status.pending.push(f.clone()),
            Some(a) if a.checksum != f.checksum => status.changed.push((f.clone(), (*a).clone())),
            Some(_) => {}
        }
    }
    status.missing = applied.iter().filter(|a| !files.iter().any(|f| f.version == a.version)).cloned().collect();
    status.applied = applied;
    status.files = files;
    status
}

/// Makes the tracking table (and its schema) when missing.
pub fn create_table_sql(table: &TableName) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS {};
         CREATE TABLE IF NOT EXISTS {} (
             version text PRIMARY KEY,
             name text NOT NULL,
             checksum text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now(),
             seconds double precision NOT NULL,
             role text NOT NULL DEFAULT current_user,
             snapshot text
         );",
        quote_ident(&table.schema),
        quote_qualified(table)
    )
}

/// Records `m` as applied (in the transaction that applied it).
/// A repeatable migration, run again, replaces its row.
pub fn record_sql(table: &TableName, m: &MigrationFile, seconds: f64, snapshot: Option<&str>) -> String {
    let again = match m.is_repeatable() {
        true => {
            " ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum, \
                 applied_at = excluded.applied_at, seconds = excluded.seconds, role = excluded.role, \
                 snapshot = excluded.snapshot"
        }
        false => "",
    };
    format!(
        "INSERT INTO {} (version, name, checksum, seconds, snapshot) VALUES ({}, {}, {}, {seconds}, {}){again};",
        quote_qualified(table),
        quote_literal(&m.version),
        quote_literal(&m.name),
        quote_literal(&m.checksum),
        snapshot.map(quote_literal).unwrap_or_else(|| "NULL".into())
    )
}

/// Forgets `version` (in the transaction that ran its down script).
pub fn forget_sql(table: &TableName, version: &str) -> String {
    format!("DELETE FROM {} WHERE version = {};", quote_qualified(table), quote_literal(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_its_numbered_files_in_name_order_with_their_down_scripts() {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in [
            ("0002_add_index.sql", "CREATE INDEX ..."),
            ("0001_init.sql", "CREATE TABLE t (x int);"),
            ("0001_init.down.sql", "DROP TABLE t;"),
            ("README.md", "not a migration"),
        ] {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        let files = scan(dir.path()).unwrap();
        let labels: Vec<String> = files.iter().map(MigrationFile::label).collect();
        assert_eq!(labels, ["0001_init", "0002_add_index"]);
        assert_eq!(files[0].down.as_deref(), Some(dir.path().join("0001_init.down.sql").as_path()));
        assert_eq!(files[1].down, None);
        assert_eq!(files[0].checksum, blake3::hash(b"CREATE TABLE t (x int);").to_hex().to_string());

        std::fs::write(dir.path().join("init.sql"), "").unwrap();
        let e = scan(dir.path()).unwrap_err();
        assert!(e.to_string().contains("init.sql`: a migration file is named `NNNN_name.sql`"), "{e}");
        std::fs::remove_file(dir.path().join("init.sql")).unwrap();
        std::fs::write(dir.path().join("0003_x.down.sql"), "").unwrap();
        assert!(scan(dir.path()).unwrap_err().to_string().contains("a down script without its migration"));
        std::fs::remove_file(dir.path().join("0003_x.down.sql")).unwrap();
        std::fs::write(dir.path().join("0002_again.sql"), "").unwrap();
        assert!(scan(dir.path()).unwrap_err().to_string().contains("have the same version 0002"));
    }

    /// Found on real migration histories: golang-migrate's `.up.sql`/`.down.sql` pairs (Mattermost's) were
    /// refused as down scripts without their migrations, and diesel's folders (Lemmy's) were not seen at
    /// all, the folder reported up to date.
    #[test]
    fn golang_migrate_pairs_and_diesel_and_prisma_folders_are_migrations() {
        let dir = tempfile::tempdir().unwrap();
        for name in
            ["000002_add_users.up.sql", "000002_add_users.down.sql", "000001_init.up.sql", "000001_init.down.sql"]
        {
            std::fs::write(dir.path().join(name), "SELECT 1;").unwrap();
        }
        let files = scan(dir.path()).unwrap();
        let labels: Vec<String> = files.iter().map(MigrationFile::label).collect();
        assert_eq!(labels, ["000001_init", "000002_add_users"]);
        assert_eq!(files[1].path, dir.path().join("000002_add_users.up.sql"));
        assert_eq!(files[1].down.as_deref(), Some(dir.path().join("000002_add_users.down.sql").as_path()));

        let dir = tempfile::tempdir().unwrap();
        for (folder, files) in [
            ("2019-02-26-002946_create_user", &["up.sql", "down.sql"][..]),
            ("00000000000000_diesel_initial_setup", &["up.sql", "down.sql"][..]),
            ("2019-03-03-163336_create_post", &["up.sql"][..]),
            ("20210101000000_prisma_step", &["migration.sql"][..]),
            ("20210101000000_prisma_other_step", &["migration.sql"][..]),
            ("seeds", &["data.sql"][..]),
        ] {
            std::fs::create_dir(dir.path().join(folder)).unwrap();
            for f in files {
                std::fs::write(dir.path().join(folder).join(f), format!("-- {folder}/{f}")).unwrap();
            }
        }
        let files = scan(dir.path()).unwrap();
        let labels: Vec<String> = files.iter().map(MigrationFile::label).collect();
        assert_eq!(
            labels,
            [
                "00000000000000_diesel_initial_setup",
                "2019-02-26-002946_create_user",
                "2019-03-03-163336_create_post",
                "20210101000000_prisma_other_step",
                "20210101000000_prisma_step"
            ]
        );
        assert_eq!(files[1].path, dir.path().join("2019-02-26-002946_create_user/up.sql"));
        assert_eq!(files[1].down.as_deref(), Some(dir.path().join("2019-02-26-002946_create_user/down.sql").as_path()));
        assert_eq!(files[2].down, None);
        std::fs::create_dir(dir.path().join("2022-01-01-000000_empty")).unwrap();
        let e = scan(dir.path()).unwrap_err();
        assert!(e.to_string().contains("holds no `up.sql` or `migration.sql`"), "{e}");

        let empty = tempfile::tempdir().unwrap();
        assert!(scan(empty.path()).unwrap_err().to_string().contains("holds no migration"));
    }

    /// Flyway's `V<version>__<description>.sql` and its undo scripts `U<version>__...`: versions of dotted
    /// (or `_`-separated) parts, ordered part by part; a repeatable migration is none of them.
    #[test]
    fn flyway_scripts_are_migrations_in_the_order_of_their_dotted_versions() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["V1_10__later.sql", "V1__init.sql", "V1.9__add_b.sql", "V2__users.sql", "U2__users.sql"] {
            std::fs::write(dir.path().join(name), "SELECT 1;\n").unwrap();
        }
        let files = scan(dir.path()).unwrap();
        let versions: Vec<&str> = files.iter().map(|f| f.version.as_str()).collect();
        assert_eq!(versions, ["1", "1.9", "1.10", "2"]);
        assert!(files.iter().all(|f| f.tool == Some(Tool::Flyway)));
        assert_eq!(files[3].name, "users");
        assert_eq!(files[3].down.as_deref(), Some(dir.path().join("U2__users.sql").as_path()));
        assert_eq!(files[0].down, None);
        assert_eq!(version_key("1.0"), version_key("1"));
        assert!(version_key("1.9") < version_key("1.10") && version_key("1.10") < version_key("2"));
        std::fs::write(dir.path().join("V1_0__again.sql"), "").unwrap();
        assert!(scan(dir.path()).unwrap_err().to_string().contains("have the same version"));
        std::fs::remove_file(dir.path().join("V1_0__again.sql")).unwrap();
        // Repeatable migrations are no versioned ones: they come apart, in name order.
        std::fs::write(dir.path().join("R__views.sql"), "CREATE VIEW v AS SELECT 1;\n").unwrap();
        std::fs::write(dir.path().join("R__a_function.sql"), "SELECT 2;\n").unwrap();
        assert_eq!(scan(dir.path()).unwrap().len(), 4);
        let repeatables = scan_repeatables(dir.path()).unwrap();
        let labels: Vec<String> = repeatables.iter().map(MigrationFile::label).collect();
        assert_eq!(labels, ["R__a_function", "R__views"]);
        assert!(repeatables.iter().all(|r| r.is_repeatable() && r.down.is_none()));
        assert_eq!(repeatables[1].name, "views");
    }

    /// goose's, dbmate's and sql-migrate's files name their tool by their markers and hold their down
    /// script as a section: the file is its own down script.
    #[test]
    fn files_with_a_tools_markers_are_that_tools_and_their_own_down_scripts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("20230101000000_a.sql"),
            "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("20230202000000_b.sql"), "-- migrate:up\nSELECT 1;\n").unwrap();
        let files = scan(dir.path()).unwrap();
        assert!(files.iter().all(|f| f.tool == Some(Tool::Dbmate)));
        assert_eq!(files[0].down.as_ref(), Some(&files[0].path));
        assert_eq!(files[1].down, None);
        assert_eq!(super::super::tools::folder_tool(&files), Some(Tool::Dbmate));
        std::fs::write(dir.path().join("20230303000000_c.sql"), "SELECT 3;\n").unwrap();
        assert_eq!(super::super::tools::folder_tool(&scan(dir.path()).unwrap()), None);
    }

    #[test]
    fn versions_order_as_numbers_whatever_their_padding() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["10_seed.sql", "2_color.sql", "1_create.sql", "1_create.down.sql"] {
            std::fs::write(dir.path().join(name), "SELECT 1;").unwrap();
        }
        let labels: Vec<String> = scan(dir.path()).unwrap().iter().map(MigrationFile::label).collect();
        assert_eq!(labels, ["1_create", "2_color", "10_seed"]);
        assert!(version_key("0042") == version_key("42") && version_key("9") < version_key("10"));
        std::fs::write(dir.path().join("02_again.sql"), "").unwrap();
        assert!(scan(dir.path()).unwrap_err().to_string().contains("have the same version"));
    }

    #[test]
    fn applied_files_that_changed_are_drift_and_the_rest_is_pending() {
        let file = |v: &str, sum: &str| MigrationFile {
            version: v.into(),
            name: "m".into(),
            path: PathBuf::from(format!("{v}_m.sql")),
            down: None,
            checksum: sum.into(),
            tool: None,
        };
        let applied = |v: &str, sum: &str| Applied {
            version: v.into(),
            name: "m".into(),
            checksum: sum.into(),
            applied_at: String::new(),
            seconds: 0.0,
            role: "r".into(),
            snapshot: None,
            tool: None,
        };
        let status = compare(
            vec![file("1", "a"), file("2", "b"), file("3", "c")],
            vec![applied("1", "a"), applied("2", "CHANGED"), applied("0", "z")],
        );
        assert_eq!(status.pending.iter().map(|f| f.version.as_str()).collect::<Vec<_>>(), ["3"]);
        assert_eq!(status.changed.len(), 1);
        assert_eq!(status.changed[0].0.version, "2");
        assert_eq!(status.missing.iter().map(|a| a.version.as_str()).collect::<Vec<_>>(), ["0"]);
    }

    #[test]
    fn tracking_table_names_default_to_public() {
        assert_eq!(table_name("pgsafe.migrations").unwrap().to_string(), "pgsafe.migrations");
        assert_eq!(table_name("schema_migrations").unwrap().to_string(), "public.schema_migrations");
        assert!(table_name("a.b.c").is_err());
        assert!(table_name(".x").is_err());
    }
}
