//! The object queries the schema engine runs, and the server versions each serves. Each query returns
//! one row per object with the columns `sql/README.md` defines.

/// One object query: a `.sql` file and the server versions (`server_version_num`) it is written for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObjectQuery {
    pub name: &'static str,
    /// First version it serves, inclusive.
    pub from: u32,
    /// First version it no longer serves.
    pub until: u32,
    pub sql: &'static str,
}

const ANY: u32 = u32::MAX;

macro_rules! query {
    ($name:literal, $from:expr, $until:expr) => {
        ObjectQuery {
            name: $name,
            from: $from,
            until: $until,
            sql: include_str!(concat!("sql/objects/", $name, ".sql")),
        }
    };
}

/// Every object query. Where a kind needs different SQL for different versions, it has one entry per
/// version range, named `<kind>_<first version>`.
pub(crate) const OBJECT_QUERIES: &[ObjectQuery] = &[
    // Relations: tables, column defaults, CHECK and NOT NULL constraints, sequences, views, materialized views, foreign tables.
    query!("tables", 130000, ANY),
    query!("defaults", 130000, ANY),
    query!("check_constraints", 130000, ANY),
    // Before 18 NOT NULL is a column flag that tables.sql writes; from 18 on it is a constraint of its own.
    query!("not_null_constraints", 180000, ANY),
    query!("sequences", 130000, ANY),
    query!("views", 130000, ANY),
    query!("foreign_tables", 130000, ANY),
    // Namespaces, extensions, types and routines, and the objects built from them.
    query!("schemas", 130000, ANY),
    query!("extensions", 130000, ANY),
    query!("types", 130000, ANY),
    query!("domains", 130000, ANY),
    query!("collations", 130000, 150000),
    query!("collations_15", 150000, 160000),
    query!("collations_16", 160000, 170000),
    query!("collations_17", 170000, ANY),
    query!("conversions", 130000, ANY),
    query!("casts", 130000, ANY),
    query!("transforms", 130000, ANY),
    query!("languages", 130000, ANY),
    query!("access_methods", 130000, ANY),
    query!("functions", 130000, ANY),
    query!("aggregates", 130000, ANY),
    query!("operators", 130000, ANY),
    query!("operator_families", 130000, ANY),
    query!("operator_classes", 130000, ANY),
    query!("text_search", 130000, ANY),
    // Post-data objects and the rest: indexes, constraints, triggers, rules, policies, event triggers, publications, subscriptions, foreign-data wrappers, servers and user mappings, extended statistics, default privileges.
    query!("indexes", 130000, ANY),
    query!("constraints", 130000, ANY),
    query!("triggers", 130000, ANY),
    query!("rules", 130000, ANY),
    query!("policies", 130000, ANY),
    query!("event_triggers", 130000, ANY),
    query!("publications", 130000, 150000),
    query!("publications_15", 150000, 180000),
    query!("publications_18", 180000, ANY),
    query!("subscriptions", 130000, 140000),
    query!("subscriptions_14", 140000, 150000),
    query!("subscriptions_15", 150000, 160000),
    query!("subscriptions_16", 160000, 170000),
    query!("subscriptions_17", 170000, ANY),
    query!("foreign_data", 130000, ANY),
    query!("statistics", 130000, ANY),
    query!("default_acls", 130000, ANY),
    // Large objects' owners, privileges and comments (their rows are data).
    query!("large_objects", 130000, ANY),
    // Privileges changed on system objects (pg_dump keeps them too).
    query!("system_privileges", 130000, ANY),
];

/// The queries that serve `version` (`server_version_num`).
pub(crate) fn queries_for(version: u32) -> impl Iterator<Item = &'static ObjectQuery> {
    OBJECT_QUERIES.iter().filter(move |q| q.from <= version && version < q.until)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `collations_15` belongs to the family `collations`; `not_null_constraints` is its own.
    fn family(name: &str) -> &str {
        match name.rsplit_once('_') {
            Some((head, tail)) if tail.chars().all(|c| c.is_ascii_digit()) => head,
            _ => name,
        }
    }

    #[test]
    fn each_kind_has_one_query_per_version_and_no_gaps() {
        for version in [130000, 140000, 150000, 160000, 170000, 180000, 180004] {
            let mut seen: Vec<&str> = Vec::new();
            for q in queries_for(version) {
                assert!(!seen.contains(&family(q.name)), "two `{}` queries serve {version}", family(q.name));
                seen.push(family(q.name));
            }
        }
        // Once a kind is read, every later version reads it: its ranges meet end to start.
        for q in OBJECT_QUERIES.iter().filter(|q| q.until != ANY) {
            assert!(
                OBJECT_QUERIES.iter().any(|next| family(next.name) == family(q.name) && next.from == q.until),
                "no `{}` query for {} and later",
                family(q.name),
                q.until
            );
        }
        assert!(queries_for(170000).all(|q| q.name != "not_null_constraints"));
        assert!(queries_for(180000).any(|q| q.name == "not_null_constraints"));
    }
}
