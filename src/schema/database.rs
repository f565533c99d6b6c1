//! The database's own properties (encoding, locale, owner, comment, privileges, settings), which
//! `restore --create` gives the database it creates, as `pg_restore --create` does.

use serde::{Deserialize, Serialize};

use super::acl;
use crate::catalog::query;
use crate::error::{Error, ErrorKind, Result};
use crate::pg::{Session, quote_ident, quote_literal};

/// What `CREATE DATABASE` and the `ALTER DATABASE` statements after it need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseProperties {
    pub name: String,
    pub owner: String,
    pub encoding: String,
    /// `c` (libc), `i` (ICU) or `b` (builtin); `None` before PostgreSQL 15, where libc was the only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale_provider: Option<String>,
    pub collate: String,
    pub ctype: String,
    /// The ICU or builtin provider's locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icu_rules: Option<String>,
    pub is_template: bool,
    /// -1 for no limit.
    pub connection_limit: i32,
    /// `None` for the cluster's default tablespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<String>>,
    pub acl_default: Vec<String>,
    /// `name=value` entries of `ALTER DATABASE ... SET`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
    /// (role, `name=value`) entries of `ALTER ROLE ... IN DATABASE ... SET`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_settings: Vec<(String, String)>,
}

/// Settings whose value is a list that must not be quoted as one string (PostgreSQL's GUC_LIST_QUOTE).
const LIST_SETTINGS: &[&str] = &[
    "search_path",
    "temp_tablespaces",
    "session_preload_libraries",
    "shared_preload_libraries",
    "local_preload_libraries",
];

impl DatabaseProperties {
    /// Reads the properties of the database `session` is connected to.
    pub async fn read(session: &Session) -> Result<DatabaseProperties> {
        const DATABASE: &str = "database";
        let row = query::run_one(session, DATABASE, include_str!("sql/database.sql")).await?;
        let role_settings: Vec<String> = query::get(&row, DATABASE, "role_settings")?;
        let role_settings = role_settings
            .iter()
            .map(|pair| {
                serde_json::from_str::<(String, String)>(pair).map_err(|e| {
                    Error::new(ErrorKind::Database, format!("a role setting of the database is unreadable: {e}"))
                })
            })
            .collect::<Result<_>>()?;
        Ok(DatabaseProperties {
            name: query::get(&row, DATABASE, "name")?,
            owner: query::get(&row, DATABASE, "owner")?,
            encoding: query::get(&row, DATABASE, "encoding")?,
            locale_provider: query::get(&row, DATABASE, "locale_provider")?,
            collate: query::get(&row, DATABASE, "collate")?,
            ctype: query::get(&row, DATABASE, "ctype")?,
            locale: query::get(&row, DATABASE, "locale")?,
            icu_rules: query::get(&row, DATABASE, "icu_rules")?,
            is_template: query::get(&row, DATABASE, "is_template")?,
            connection_limit: query::get(&row, DATABASE, "connection_limit")?,
            tablespace: query::get(&row, DATABASE, "tablespace")?,
            comment: query::get(&row, DATABASE, "comment")?,
            acl: query::get(&row, DATABASE, "acl")?,
            acl_default: query::get(&row, DATABASE, "acl_default")?,
            settings: query::get(&row, DATABASE, "settings")?,
            role_settings,
        })
    }

    /// `CREATE DATABASE name ...` with the source's encoding and locale, from template0.
    pub fn create_statement(&self, name: &str, no_tablespaces: bool) -> String {
        let mut sql = format!(
            "CREATE DATABASE {} WITH TEMPLATE = template0 ENCODING = {}",
            quote_ident(name),
            quote_literal(&self.encoding)
        );
        match self.locale_provider.as_deref() {
            Some("i") => {
                sql.push_str(" LOCALE_PROVIDER = icu");
                if let Some(l) = &self.locale {
                    sql.push_str(&format!(" ICU_LOCALE = {}", quote_literal(l)));
                }
                if let Some(r) = &self.icu_rules {
                    sql.push_str(&format!(" ICU_RULES = {}", quote_literal(r)));
                }
            }
            Some("b") => {
                sql.push_str(" LOCALE_PROVIDER = builtin");
                if let Some(l) = &self.locale {
                    sql.push_str(&format!(" BUILTIN_LOCALE = {}", quote_literal(l)));
                }
            }
            // libc, the only provider before 15: said only by the locale.
            _ => {}
        }
        if self.collate == self.ctype {
            sql.push_str(&format!(" LOCALE = {}", quote_literal(&self.collate)));
        } else {
            sql.push_str(&format!(
                " LC_COLLATE = {} LC_CTYPE = {}",
                quote_literal(&self.collate),
                quote_literal(&self.ctype)
            ));
        }
        if let Some(t) = self.tablespace.as_ref().filter(|_| !no_tablespaces) {
            sql.push_str(&format!(" TABLESPACE = {}", quote_ident(t)));
        }
        if self.connection_limit != -1 {
            sql.push_str(&format!(" CONNECTION LIMIT = {}", self.connection_limit));
        }
        sql
    }

    /// What follows the restore into the new database `name`: owner, comment, privileges, settings,
    /// the template flag. Settings come last so that they cannot change the restore's own sessions
    /// (a `default_transaction_read_only`, a `search_path`).
    pub fn finishing_statements(&self, name: &str, no_owner: bool, no_privileges: bool) -> Result<Vec<String>> {
        let db = quote_ident(name);
        let mut out = Vec::new();
        if !no_owner {
            out.push(format!("ALTER DATABASE {db} OWNER TO {};", quote_ident(&self.owner)));
        }
        if let Some(c) = &self.comment {
            out.push(format!("COMMENT ON DATABASE {db} IS {};", quote_literal(c)));
        }
        if !no_privileges && let Some(acl) = &self.acl {
            let statements =
                acl::statements(&format!("DATABASE {db}"), None, acl, &self.acl_default, Some(&self.owner))
                    .map_err(|m| Error::new(ErrorKind::CorruptArchive, m))?;
            // Without owners the restoring role owns the new database, in its former owner's place.
            out.extend(if no_owner { acl::for_new_owner(&statements, &self.owner) } else { statements });
        }
        for s in &self.settings {
            out.push(format!("ALTER DATABASE {db} SET {};", setting(s)));
        }
        for (role, s) in &self.role_settings {
            out.push(format!("ALTER ROLE {} IN DATABASE {db} SET {};", quote_ident(role), setting(s)));
        }
        if self.is_template {
            out.push(format!("ALTER DATABASE {db} IS_TEMPLATE = true;"));
        }
        Ok(out)
    }
}

/// `name TO value` from a stored `name=value`: a list setting as stored (its elements are already
/// quoted where needed), any other value as one literal.
fn setting(entry: &str) -> String {
    let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
    if LIST_SETTINGS.contains(&name) {
        format!("{} TO {value}", quote_ident(name))
    } else {
        format!("{} TO {}", quote_ident(name), quote_literal(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> DatabaseProperties {
        DatabaseProperties {
            name: "shop".into(),
            owner: "app owner".into(),
            encoding: "UTF8".into(),
            locale_provider: Some("c".into()),
            collate: "C.UTF-8".into(),
            ctype: "C.UTF-8".into(),
            locale: None,
            icu_rules: None,
            is_template: false,
            connection_limit: -1,
            tablespace: None,
            comment: Some("it's ours".into()),
            acl: None,
            acl_default: vec![],
            settings: vec!["search_path=\"$user\", app".into(), "work_mem=64MB".into()],
            role_settings: vec![("reader".into(), "statement_timeout=5s".into())],
        }
    }

    #[test]
    fn create_says_encoding_and_locale() {
        let mut p = props();
        assert_eq!(
            p.create_statement("copy", false),
            "CREATE DATABASE copy WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE = 'C.UTF-8'"
        );
        p.locale_provider = Some("i".into());
        p.locale = Some("und-x-icu".into());
        p.ctype = "en_US.UTF-8".into();
        p.connection_limit = 5;
        p.tablespace = Some("fast".into());
        assert_eq!(
            p.create_statement("copy", true),
            "CREATE DATABASE copy WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = icu ICU_LOCALE = 'und-x-icu' LC_COLLATE = 'C.UTF-8' LC_CTYPE = 'en_US.UTF-8' CONNECTION LIMIT = 5"
        );
        assert!(p.create_statement("copy", false).contains(" TABLESPACE = fast CONNECTION LIMIT = 5"));
    }

    #[test]
    fn settings_come_last_and_lists_stay_lists() {
        let s = props().finishing_statements("copy", false, false).unwrap();
        assert_eq!(
            s,
            vec![
                "ALTER DATABASE copy OWNER TO \"app owner\";",
                "COMMENT ON DATABASE copy IS 'it''s ours';",
                "ALTER DATABASE copy SET search_path TO \"$user\", app;",
                "ALTER DATABASE copy SET work_mem TO '64MB';",
                "ALTER ROLE reader IN DATABASE copy SET statement_timeout TO '5s';",
            ]
        );
        let bare = props().finishing_statements("copy", true, true).unwrap();
        assert!(!bare.iter().any(|s| s.contains("OWNER")));
    }

    #[test]
    fn privileges_without_owner_are_the_restoring_roles() {
        let mut p = props();
        p.acl_default = vec!["=Tc/\"app owner\"".into(), "\"app owner\"=CTc/\"app owner\"".into()];
        p.acl =
            Some(vec!["=c/\"app owner\"".into(), "\"app owner\"=CTc/\"app owner\"".into(), "r=c/\"app owner\"".into()]);
        let privileges = |no_owner| -> Vec<String> {
            let all = p.finishing_statements("copy", no_owner, false).unwrap();
            all.into_iter().filter(|s| s.starts_with("GRANT ") || s.starts_with("REVOKE ")).collect()
        };
        assert_eq!(
            privileges(false),
            [
                "REVOKE ALL ON DATABASE copy FROM PUBLIC;",
                "REVOKE ALL ON DATABASE copy FROM \"app owner\";",
                "GRANT CONNECT ON DATABASE copy TO PUBLIC;",
                "GRANT ALL ON DATABASE copy TO \"app owner\";",
                "GRANT CONNECT ON DATABASE copy TO r;",
            ]
        );
        // The new database is the restoring role's: it takes the owner's place, and nothing is granted
        // as the former owner.
        assert_eq!(
            privileges(true),
            [
                "REVOKE ALL ON DATABASE copy FROM PUBLIC;",
                "REVOKE ALL ON DATABASE copy FROM CURRENT_USER;",
                "GRANT CONNECT ON DATABASE copy TO PUBLIC;",
                "GRANT ALL ON DATABASE copy TO CURRENT_USER;",
                "GRANT CONNECT ON DATABASE copy TO r;",
            ]
        );
    }
}
