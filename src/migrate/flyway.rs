//! Flyway's configuration, as far as a folder written for Flyway needs it to run as Flyway runs it: the
//! values of its `${...}` placeholders, their prefix and suffix, whether they are replaced at all, and
//! where its history table is (`table`, `defaultSchema`, `schemas`).
//!
//! Read from where Flyway reads it, later sources overriding earlier ones: `flyway.conf` and
//! `flyway.toml` in the user's home folder, then in the working folder, then the files
//! `FLYWAY_CONFIG_FILES` names, then those `--flyway-config` names, then Flyway's environment variables
//! (`FLYWAY_PLACEHOLDERS_NAME`, `FLYWAY_TABLE`, ...), then `--placeholder`. A `${VAR}` in a file's value
//! is the environment variable's value where it is set, as Flyway substitutes it. Connection settings
//! (`url`, `user`, ...) and `locations` are not read: pgsafe connects with its own options and migrates
//! the folder it is given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// What pgsafe takes from Flyway's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlywayConfig {
    /// `placeholders.NAME`: the placeholders' values, by name in lower case (Flyway's names ignore case).
    pub placeholders: BTreeMap<String, String>,
    /// `placeholderPrefix` and `placeholderSuffix`: `${` and `}` unless configured.
    pub prefix: String,
    pub suffix: String,
    /// `placeholderReplacement`: `false` runs the files as written.
    pub replacement: bool,
    /// `table`: the history table's name, `None` for Flyway's `flyway_schema_history`.
    pub table: Option<String>,
    /// `defaultSchema`: where the history table is (and `${flyway:defaultSchema}`); see
    /// [`FlywayConfig::default_schema`].
    pub default_schema: Option<String>,
    /// The first of `schemas`, the default schema where `defaultSchema` is not set.
    pub first_schema: Option<String>,
    /// The files read, in order.
    pub read: Vec<PathBuf>,
}

impl Default for FlywayConfig {
    fn default() -> FlywayConfig {
        FlywayConfig {
            placeholders: BTreeMap::new(),
            prefix: "${".into(),
            suffix: "}".into(),
            replacement: true,
            table: None,
            default_schema: None,
            first_schema: None,
            read: Vec::new(),
        }
    }
}

/// A placeholder a file uses that has no value: at its line, by its name as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfilled {
    pub line: usize,
    pub name: String,
}

impl FlywayConfig {
    /// The configuration from Flyway's files and environment variables (module docs), with `explicit`
    /// (`--flyway-config`) read after the files Flyway finds itself. `home` and `cwd` are where those are
    /// looked for; `env` the process's environment. A file named explicitly that cannot be read, or any
    /// file that does not parse, is an error naming it.
    pub fn load(
        explicit: &[PathBuf],
        home: Option<&Path>,
        cwd: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<FlywayConfig> {
        let mut config = FlywayConfig::default();
        let mut found: Vec<PathBuf> = Vec::new();
        for dir in home.into_iter().chain([cwd]) {
            for name in ["flyway.conf", "flyway.toml"] {
                let path = dir.join(name);
                if path.is_file() && !found.contains(&path) {
                    found.push(path);
                }
            }
        }
        for path in &found {
            config.read_file(path, env)?;
        }
        let named = env.get("FLYWAY_CONFIG_FILES").into_iter().flat_map(|list| list.split(','));
        for path in named.map(|p| cwd.join(p.trim())).chain(explicit.iter().cloned()) {
            config.read_file(&path, env)?;
        }
        for (key, value) in env {
            if let Some(name) = key.strip_prefix("FLYWAY_PLACEHOLDERS_") {
                config.placeholders.insert(name.to_lowercase(), value.clone());
                continue;
            }
            let key = match key.as_str() {
                "FLYWAY_TABLE" => "table",
                "FLYWAY_DEFAULT_SCHEMA" => "defaultSchema",
                "FLYWAY_SCHEMAS" => "schemas",
                "FLYWAY_PLACEHOLDER_PREFIX" => "placeholderPrefix",
                "FLYWAY_PLACEHOLDER_SUFFIX" => "placeholderSuffix",
                "FLYWAY_PLACEHOLDER_REPLACEMENT" => "placeholderReplacement",
                _ => continue,
            };
            config.set(key, value).map_err(|e| Error::new(ErrorKind::InvalidInput, format!("`{key}`: {e}")))?;
        }
        Ok(config)
    }

    /// The schema Flyway takes as its default: `defaultSchema`, else the first of `schemas`, whichever
    /// source set them.
    pub fn default_schema(&self) -> Option<&str> {
        self.default_schema.as_deref().or(self.first_schema.as_deref())
    }

    /// `--placeholder NAME=VALUE`, over every other source.
    pub fn with_placeholders(mut self, given: &[(String, String)]) -> FlywayConfig {
        for (name, value) in given {
            self.placeholders.insert(name.to_lowercase(), value.clone());
        }
        self
    }

    fn read_file(&mut self, path: &Path, env: &BTreeMap<String, String>) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading Flyway's configuration", path, e))?;
        let settings = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => toml_settings(&text).map_err(|e| bad_file(path, e))?,
            _ => conf_settings(&text),
        };
        for (line, key, value) in settings {
            let value = substitute_env(&value, env);
            self.set(&key, &value).map_err(|e| bad_file(path, format!("line {line}: `{key}`: {e}")))?;
        }
        self.read.push(path.to_owned());
        tracing::info!("read Flyway's configuration from `{}`", path.display());
        Ok(())
    }

    /// One setting, by its name without `flyway.`; those pgsafe has no use for are ignored.
    fn set(&mut self, key: &str, value: &str) -> std::result::Result<(), String> {
        if let Some(name) = key.strip_prefix("placeholders.") {
            self.placeholders.insert(name.to_lowercase(), value.to_owned());
            return Ok(());
        }
        match key {
            "placeholderPrefix" => self.prefix = value.to_owned(),
            "placeholderSuffix" => self.suffix = value.to_owned(),
            "placeholderReplacement" => {
                self.replacement = match value.trim().to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("`{value}` is not true or false")),
                }
            }
            "table" => self.table = Some(value.trim().to_owned()).filter(|t| !t.is_empty()),
            "defaultSchema" => self.default_schema = Some(value.trim().to_owned()).filter(|s| !s.is_empty()),
            "schemas" => self.first_schema = value.split(',').map(str::trim).find(|s| !s.is_empty()).map(str::to_owned),
            _ => {}
        }
        if self.prefix.is_empty() || self.suffix.is_empty() {
            return Err("a placeholder's prefix and suffix may not be empty".into());
        }
        Ok(())
    }

    /// The values of every placeholder: the configured ones over Flyway's own (`builtins`).
    pub fn values(&self, builtins: BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut values = builtins;
        values.extend(self.placeholders.iter().map(|(k, v)| (k.clone(), v.clone())));
        values
    }

    /// The text of the Flyway migration `path` with its placeholders filled ([`FlywayConfig::fill`], with
    /// `flyway:filename` its file name); `Ok(None)` when it has none. `Err` names the file, the line and
    /// the placeholder without a value, and where to give one.
    pub fn fill_file(
        &self,
        path: &Path,
        text: &str,
        values: &mut BTreeMap<String, String>,
    ) -> std::result::Result<Option<String>, String> {
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        values.insert("flyway:filename".into(), file);
        self.fill(text, values).map_err(|Unfilled { line, name }| {
            let (prefix, suffix) = (&self.prefix, &self.suffix);
            let place = match name.to_lowercase().strip_prefix("flyway:") {
                Some(_) => "Flyway fills it from the database it migrates: give `-d`".to_owned(),
                None => format!(
                    "Flyway fills it from its configuration, `flyway.placeholders.{name}`: give it in `flyway.conf`, \
                     as `FLYWAY_PLACEHOLDERS_{}`, or with `--placeholder {name}=VALUE`",
                    name.to_uppercase()
                ),
            };
            format!(
                "`{}` line {line}: the Flyway placeholder `{prefix}{name}{suffix}` has no value (run as written it \
                 would fail, or write `{prefix}{name}{suffix}` into the data); {place}",
                path.display()
            )
        })
    }

    /// `text` with its placeholders filled from `values` (names in lower case, the configured ones and
    /// Flyway's `flyway:...` ones together); `Ok(None)` when it has none, or replacement is off. A name is
    /// letters, digits and `_ . : -` between the prefix and the suffix; anything else after the prefix is
    /// kept as written, as Flyway keeps it.
    pub fn fill(&self, text: &str, values: &BTreeMap<String, String>) -> std::result::Result<Option<String>, Unfilled> {
        if !self.replacement || !text.contains(&self.prefix) {
            return Ok(None);
        }
        let mut filled = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(&self.prefix) {
            filled.push_str(&rest[..at]);
            let after = &rest[at + self.prefix.len()..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
                .unwrap_or(after.len());
            let name = &after[..name_len];
            if name_len == 0 || !after[name_len..].starts_with(&self.suffix) {
                filled.push_str(&self.prefix);
                rest = after;
                continue;
            }
            let Some(value) = values.get(&name.to_lowercase()) else {
                let line = text[..text.len() - rest.len() + at].matches('\n').count() + 1;
                return Err(Unfilled { line, name: name.to_owned() });
            };
            filled.push_str(value);
            rest = &after[name_len + self.suffix.len()..];
        }
        filled.push_str(rest);
        Ok(Some(filled))
    }
}

/// Flyway's own placeholders, as far as they are known: `flyway:defaultSchema` (the history table's
/// schema, else the configured default schema, else the session's `current_schema()`), `flyway:table`,
/// `flyway:workingDirectory`, and with a session `flyway:user`, `flyway:database` and `flyway:timestamp`.
/// `flyway:filename` is each file's own ([`FlywayConfig::fill_file`]).
pub async fn builtins(
    config: &FlywayConfig,
    session: Option<&crate::pg::Session>,
    table: Option<&crate::format::TableName>,
) -> Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    values.insert("flyway:workingdirectory".to_owned(), cwd);
    let name = config.table.clone().unwrap_or_else(|| "flyway_schema_history".to_owned());
    values.insert("flyway:table".to_owned(), table.map_or(name, |t| t.name.clone()));
    let mut schema = table.map(|t| t.schema.clone()).or_else(|| config.default_schema().map(str::to_owned));
    if let Some(session) = session {
        let sql = "SELECT current_user::text, pg_catalog.current_database()::text, \
                          coalesce(pg_catalog.current_schema()::text, ''), \
                          pg_catalog.to_char(pg_catalog.now(), 'YYYY-MM-DD HH24:MI:SS')";
        let row = session.query_one(sql, &[]).await?;
        for (at, key) in [(0, "flyway:user"), (1, "flyway:database"), (3, "flyway:timestamp")] {
            values.insert(key.to_owned(), crate::pg::value(&row, at, sql)?);
        }
        schema.get_or_insert(crate::pg::value(&row, 2, sql)?);
    }
    if let Some(schema) = schema {
        values.insert("flyway:defaultschema".to_owned(), schema);
    }
    Ok(values)
}

/// Whether `path` is named as a Flyway migration (`V1__x.sql`, `U1__x.sql`, `R__x.sql`), whose text
/// may hold placeholders.
pub fn is_flyway_file(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    super::runner::repeatable_name(&name).is_some() || super::runner::is_flyway_name(&name)
}

fn bad_file(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("Flyway's configuration `{}`: {e}", path.display()))
}

/// The `flyway.` settings of a `flyway.conf` (Java properties: `key=value` or `key: value`, `#` and `!`
/// comments, a line ending in `\` going on in the next), as (line, key without `flyway.`, value).
fn conf_settings(text: &str) -> Vec<(usize, String, String)> {
    let mut settings = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((at, line)) = lines.next() {
        let mut logical = line.trim_start().to_owned();
        if logical.starts_with('#') || logical.starts_with('!') || logical.is_empty() {
            continue;
        }
        while ends_continued(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let split = logical.find(['=', ':']).unwrap_or(logical.len());
        let key = logical[..split].trim();
        let value = logical.get(split + 1..).unwrap_or("").trim_start();
        if let Some(key) = key.strip_prefix("flyway.") {
            settings.push((at + 1, key.to_owned(), unescape(value)));
        }
    }
    settings
}

/// A line ending in an odd number of backslashes goes on in the next.
fn ends_continued(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// A properties value's escapes: `\t`, `\n`, `\r`, and `\` before any other character is that character.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The settings of a `flyway.toml` (Flyway 10): the `[flyway]` table, then the environment's
/// (`[environments.NAME]`, NAME from `flyway.environment`, `default` unless set): its `schemas`, and its
/// `[environments.NAME.flyway]` overrides. Line numbers are 0: TOML's own errors carry theirs.
fn toml_settings(text: &str) -> std::result::Result<Vec<(usize, String, String)>, String> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string().trim_end().to_owned())?;
    let mut settings = Vec::new();
    let flyway = doc.get("flyway").and_then(toml::Value::as_table);
    if let Some(flyway) = flyway {
        table_settings(flyway, &mut settings)?;
    }
    let environment = flyway.and_then(|f| f.get("environment")).and_then(toml::Value::as_str).unwrap_or("default");
    let env = doc.get("environments").and_then(|e| e.get(environment)).and_then(toml::Value::as_table);
    if let Some(env) = env {
        if let Some(schemas) = env.get("schemas") {
            settings.push((0, "schemas".into(), scalar_or_list(schemas)?));
        }
        if let Some(overrides) = env.get("flyway").and_then(toml::Value::as_table) {
            table_settings(overrides, &mut settings)?;
        }
    }
    Ok(settings)
}

fn table_settings(table: &toml::Table, settings: &mut Vec<(usize, String, String)>) -> std::result::Result<(), String> {
    for (key, value) in table {
        match (key.as_str(), value) {
            ("placeholders", toml::Value::Table(values)) => {
                for (name, value) in values {
                    settings.push((0, format!("placeholders.{name}"), scalar_or_list(value)?));
                }
            }
            (_, toml::Value::Table(_)) => {}
            _ => settings.push((0, key.clone(), scalar_or_list(value)?)),
        }
    }
    Ok(())
}

/// A TOML value as Flyway's text setting: a string as it is, a number or boolean as written, a list
/// joined by commas.
fn scalar_or_list(value: &toml::Value) -> std::result::Result<String, String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => {
            items.iter().map(scalar_or_list).collect::<std::result::Result<Vec<_>, _>>()?.join(",")
        }
        other => return Err(format!("a {} is not a setting's value", other.type_str())),
    })
}

/// `${VAR}` in a configuration value, where VAR is set in the environment, is its value; otherwise kept.
fn substitute_env(value: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match after.find('}').map(|end| (&after[..end], end)) {
            Some((name, end)) if env.contains_key(name) => {
                out.push_str(&env[name]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_conf_file_gives_placeholders_table_and_schema_and_later_sources_win() {
        let home = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("flyway.conf"),
            "flyway.placeholders.owner=home\nflyway.placeholders.region=eu\nflyway.schemas=home_schema\n",
        )
        .unwrap();
        std::fs::write(
            cwd.path().join("flyway.conf"),
            "# the project's\n! also a comment\nflyway.url=jdbc:postgresql://x/y\n\
             flyway.placeholders.Owner = app_owner\nflyway.placeholders.url: http://${HOST}/a\\\n   b\n\
             flyway.schemas=app, other\nflyway.table=history\nflyway.placeholders.path=c:\\\\tmp\n",
        )
        .unwrap();
        let extra = cwd.path().join("ci.conf");
        std::fs::write(&extra, "flyway.placeholders.region=us\n").unwrap();
        let config = FlywayConfig::load(
            std::slice::from_ref(&extra),
            Some(home.path()),
            cwd.path(),
            &env(&[("HOST", "h.test")]),
        )
        .unwrap();
        assert_eq!(config.placeholders["owner"], "app_owner");
        assert_eq!(config.placeholders["region"], "us");
        assert_eq!(config.placeholders["url"], "http://h.test/ab");
        assert_eq!(config.placeholders["path"], "c:\\tmp");
        assert_eq!((config.table.as_deref(), config.default_schema()), (Some("history"), Some("app")));
        assert_eq!(config.read, [home.path().join("flyway.conf"), cwd.path().join("flyway.conf"), extra]);
        // The environment over the files, and `--placeholder` over both.
        let env = env(&[("FLYWAY_PLACEHOLDERS_REGION", "ap"), ("FLYWAY_DEFAULT_SCHEMA", "ops")]);
        let config = FlywayConfig::load(&[], None, cwd.path(), &env).unwrap();
        assert_eq!((config.placeholders["region"].as_str(), config.default_schema()), ("ap", Some("ops")));
        let config = config.with_placeholders(&[("REGION".into(), "sa".into())]);
        assert_eq!(config.placeholders["region"], "sa");
    }

    #[test]
    fn a_toml_file_gives_its_flyway_table_and_its_environments_overrides() {
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(
            cwd.path().join("flyway.toml"),
            "[environments.default]\nurl = \"jdbc:postgresql://x/y\"\nschemas = [\"app\", \"b\"]\n\n\
             [environments.default.flyway.placeholders]\nregion = \"eu\"\n\n\
             [flyway]\nlocations = [\"filesystem:sql\"]\nplaceholderPrefix = \"#[\"\nplaceholderSuffix = \"]\"\n\
             table = \"hist\"\n\n[flyway.placeholders]\nowner = \"o\"\nlimit = 5\nregion = \"us\"\n",
        )
        .unwrap();
        let config = FlywayConfig::load(&[], None, cwd.path(), &BTreeMap::new()).unwrap();
        assert_eq!(config.placeholders["owner"], "o");
        assert_eq!(config.placeholders["limit"], "5");
        assert_eq!(config.placeholders["region"], "eu", "the environment's override wins");
        assert_eq!((config.prefix.as_str(), config.suffix.as_str()), ("#[", "]"));
        assert_eq!((config.table.as_deref(), config.default_schema()), (Some("hist"), Some("app")));
        let values = config.placeholders.clone();
        assert_eq!(
            config.fill("SELECT '#[owner]', '${owner}', '#[ x]'", &values).unwrap().unwrap(),
            "SELECT 'o', '${owner}', '#[ x]'"
        );
    }

    #[test]
    fn a_broken_file_or_a_missing_named_one_is_an_error_naming_it() {
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(cwd.path().join("flyway.toml"), "[flyway\ntable = 1\n").unwrap();
        let e = FlywayConfig::load(&[], None, cwd.path(), &BTreeMap::new()).unwrap_err().to_string();
        assert!(e.contains("flyway.toml`") && e.contains("line 1"), "{e}");
        std::fs::remove_file(cwd.path().join("flyway.toml")).unwrap();
        std::fs::write(cwd.path().join("flyway.conf"), "flyway.placeholderReplacement=maybe\n").unwrap();
        let e = FlywayConfig::load(&[], None, cwd.path(), &BTreeMap::new()).unwrap_err().to_string();
        assert!(e.contains("flyway.conf`: line 1: `placeholderReplacement`: `maybe` is not true or false"), "{e}");
        std::fs::remove_file(cwd.path().join("flyway.conf")).unwrap();
        let missing = cwd.path().join("nope.conf");
        let e = FlywayConfig::load(&[missing], None, cwd.path(), &BTreeMap::new()).unwrap_err().to_string();
        assert!(e.contains("nope.conf"), "{e}");
    }

    #[test]
    fn placeholders_fill_by_name_without_case_and_a_missing_one_names_its_line() {
        let config = FlywayConfig::default();
        let values: BTreeMap<String, String> = [("a".to_owned(), "1".to_owned())].into();
        assert_eq!(config.fill("no placeholders", &values), Ok(None));
        assert_eq!(config.fill("${A} ${ a} $${a}x ${", &values), Ok(Some("1 ${ a} $1x ${".to_owned())));
        assert_eq!(config.fill("x\n\n y ${b}", &values), Err(Unfilled { line: 3, name: "b".into() }));
        let off = FlywayConfig { replacement: false, ..FlywayConfig::default() };
        assert_eq!(off.fill("${b}", &values), Ok(None));
    }
}
