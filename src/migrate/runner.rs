//! The runner for a folder of plain SQL migrations: `NNNN_name.sql` files applied in version order (as
//! numbers: `2_` before `10_`), each with
//! an optional `NNNN_name.down.sql`, tracked in a table of the database (`pgsafe.migrations` unless told
//! otherwise) with version, name, checksum, when, how long, by whom, and the snapshot taken before.
//!
//! An applied file whose bytes changed since is drift: `migrate` refuses to go on and names it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result, SqlState};
use crate::format::TableName;
use crate::pg::Session;
use crate::sql::{quote_ident, quote_literal, quote_qualified};

/// One migration of a folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationFile {
    /// The digits before the first `_`: `0042`.
    pub version: String,
    /// What follows them, without `.sql`: `add_orders_index`.
    pub name: String,
    pub path: PathBuf,
    /// `NNNN_name.down.sql` beside it, when there is one.
    pub down: Option<PathBuf>,
    /// BLAKE3 of the file's bytes, 64 hex digits.
    pub checksum: String,
}

impl MigrationFile {
    /// `0042_add_orders_index`, as messages and snapshot labels name it.
    pub fn label(&self) -> String {
        format!("{}_{}", self.version, self.name)
    }
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
}

/// The folder's migrations, in version order. A `.sql` file that is neither `NNNN_name.sql` nor
/// `NNNN_name.down.sql` is refused by name, as are two files of one version and a down script without
/// its migration.
pub fn scan(dir: &Path) -> Result<Vec<MigrationFile>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("reading the migrations folder", dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading the migrations folder", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".sql") && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    let mut ups: Vec<MigrationFile> = Vec::new();
    let mut downs: HashMap<String, PathBuf> = HashMap::new();
    for file in &names {
        let (stem, down) = match file.strip_suffix(".down.sql") {
            Some(stem) => (stem, true),
            None => (file.strip_suffix(".sql").unwrap_or(file), false),
        };
        let Some((version, name)) = split_name(stem) else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "`{}`: a migration file is named `NNNN_name.sql` (or `NNNN_name.down.sql`)",
                    dir.join(file).display()
                ),
            )
            .with_hint("digits, `_`, then a name; files are applied in the order of their versions, as numbers"));
        };
        let path = dir.join(file);
        if down {
            downs.insert(stem.to_owned(), path);
            continue;
        }
        if let Some(other) = ups.iter().find(|m| version_key(&m.version) == version_key(version)) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("`{}` and `{}` have the same version {version}", other.path.display(), path.display()),
            ));
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io("reading", &path, e))?;
        ups.push(MigrationFile {
            version: version.to_owned(),
            name: name.to_owned(),
            checksum: blake3::hash(&bytes).to_hex().to_string(),
            path,
            down: None,
        });
    }
    ups.sort_by(|a, b| version_key(&a.version).cmp(&version_key(&b.version)));
    for m in &mut ups {
        m.down = downs.remove(&m.label());
    }
    if let Some(path) = downs.values().next() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{}` is a down script without its migration", path.display()),
        ));
    }
    Ok(ups)
}

/// How versions order: as the numbers their digits write, whatever the padding (`2` before `10`, `0042`
/// the same as `42`).
pub fn version_key(version: &str) -> (usize, &str) {
    let digits = version.trim_start_matches('0');
    (digits.len(), digits)
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
pub fn record_sql(table: &TableName, m: &MigrationFile, seconds: f64, snapshot: Option<&str>) -> String {
    format!(
        "INSERT INTO {} (version, name, checksum, seconds, snapshot) VALUES ({}, {}, {}, {seconds}, {});",
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
        };
        let applied = |v: &str, sum: &str| Applied {
            version: v.into(),
            name: "m".into(),
            checksum: sum.into(),
            applied_at: String::new(),
            seconds: 0.0,
            role: "r".into(),
            snapshot: None,
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
