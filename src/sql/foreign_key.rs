//! Which rows break a foreign key: the one query, written without a server, that both the data-only
//! restore (after its load) and `pgsafe check` run to count the referencing rows whose key the referenced
//! table lacks, with an example, and the words that name them. Keeping it in one place keeps the two
//! agreeing on MATCH SIMPLE and MATCH FULL, and on which rows of a partitioned table count.

use serde::Serialize;

/// A foreign key as the query that finds the rows breaking it needs it: both tables and their key
/// columns, qualified and quoted, as `catalog/sql/foreign_keys.sql` reads them.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ForeignKey {
    /// The constraint's name, not quoted.
    pub name: String,
    /// The referencing table.
    pub child: String,
    pub child_partitioned: bool,
    /// The referenced table.
    pub parent: String,
    pub parent_partitioned: bool,
    /// MATCH FULL rather than MATCH SIMPLE (PostgreSQL has no MATCH PARTIAL).
    pub match_full: bool,
    /// The key's columns on each side, in key order.
    pub child_columns: Vec<String>,
    pub parent_columns: Vec<String>,
    /// It promises the rows hold (not NOT VALID).
    pub validated: bool,
    /// A temporal key (18+, `PERIOD`): its rows are matched by periods, not by equality, so
    /// [`ForeignKey::violations_sql`] does not apply to it.
    pub period: bool,
}

impl ForeignKey {
    /// The query counting the referencing rows whose key the referenced table lacks (its first column),
    /// with the smallest such key as an example (its second, NULL when there is none). MATCH SIMPLE: a
    /// row with any NULL in its key references nothing; MATCH FULL: all NULL is fine, and a mix of NULL
    /// and not NULL breaks the key by itself.
    pub fn violations_sql(&self) -> String {
        let join: Vec<String> =
            self.child_columns.iter().zip(&self.parent_columns).map(|(c, p)| format!("p.{p} = c.{c}")).collect();
        let missing = format!(
            "NOT EXISTS (SELECT 1 FROM {}{} p WHERE {})",
            only(self.parent_partitioned),
            self.parent,
            join.join(" AND ")
        );
        let is = |test: &str, glue: &str| {
            self.child_columns.iter().map(|c| format!("c.{c} IS {test}")).collect::<Vec<_>>().join(glue)
        };
        let condition = if self.match_full {
            format!("NOT ({}) AND (({}) OR {missing})", is("NULL", " AND "), is("NULL", " OR "))
        } else {
            format!("{} AND {missing}", is("NOT NULL", " AND "))
        };
        let cols: Vec<String> = self.child_columns.iter().map(|c| format!("c.{c}")).collect();
        format!(
            "SELECT count(*), min(ROW({})::text) FROM {}{} c WHERE {condition}",
            cols.join(", "),
            only(self.child_partitioned),
            self.child
        )
    }

    /// Names the key: ``foreign key `orders_customer_fkey` of `public.orders` ``.
    pub fn what(&self) -> String {
        format!("foreign key `{}` of `{}`", self.name, self.child)
    }

    /// What [`ForeignKey::violations_sql`] found, in words: `count` rows break it, `example` (its second
    /// column) is one of their keys.
    pub fn violation(&self, count: i64, example: &str) -> String {
        format!("{}: {count} rows reference keys missing from `{}` (for example {example})", self.what(), self.parent)
    }
}

/// `ONLY ` before a table whose own rows are all its rows; nothing before a partitioned one, whose rows
/// are in its partitions. (A plain table's inheritance children are not covered by its foreign keys.)
fn only(partitioned: bool) -> &'static str {
    if partitioned { "" } else { "ONLY " }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(match_full: bool, columns: &[(&str, &str)]) -> ForeignKey {
        ForeignKey {
            name: "orders_customer_fkey".to_owned(),
            child: "public.orders".to_owned(),
            child_partitioned: false,
            parent: "public.customers".to_owned(),
            parent_partitioned: false,
            match_full,
            child_columns: columns.iter().map(|(c, _)| (*c).to_owned()).collect(),
            parent_columns: columns.iter().map(|(_, p)| (*p).to_owned()).collect(),
            validated: true,
            period: false,
        }
    }

    #[test]
    fn a_foreign_key_with_a_null_in_its_key_references_nothing_unless_match_full() {
        let mut key = ForeignKey {
            name: "fk".into(),
            child: "public.c".into(),
            child_partitioned: false,
            parent: "public.p".into(),
            parent_partitioned: true,
            match_full: false,
            child_columns: vec!["a".into(), "b".into()],
            parent_columns: vec!["x".into(), "y".into()],
            validated: true,
            period: false,
        };
        assert_eq!(
            key.violations_sql(),
            "SELECT count(*), min(ROW(c.a, c.b)::text) FROM ONLY public.c c WHERE c.a IS NOT NULL AND c.b IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM public.p p WHERE p.x = c.a AND p.y = c.b)"
        );
        key.match_full = true;
        assert!(
            key.violations_sql()
                .contains("WHERE NOT (c.a IS NULL AND c.b IS NULL) AND ((c.a IS NULL OR c.b IS NULL) OR NOT EXISTS")
        );
    }

    #[test]
    fn match_full_counts_a_partly_null_key_as_a_violation() {
        let sql = key(true, &[("region", "region"), ("customer_id", "id")]).violations_sql();
        assert_eq!(
            sql,
            "SELECT count(*), min(ROW(c.region, c.customer_id)::text) FROM ONLY public.orders c \
             WHERE NOT (c.region IS NULL AND c.customer_id IS NULL) \
             AND ((c.region IS NULL OR c.customer_id IS NULL) \
             OR NOT EXISTS (SELECT 1 FROM ONLY public.customers p WHERE p.region = c.region AND p.id = c.customer_id))"
        );
    }

    #[test]
    fn a_partitioned_referencing_table_is_read_with_its_partitions() {
        let mut k = key(false, &[("customer_id", "id")]);
        k.child_partitioned = true;
        let sql = k.violations_sql();
        assert!(sql.contains("FROM public.orders c"), "{sql}");
        assert!(sql.contains("FROM ONLY public.customers p"), "{sql}");
    }

    #[test]
    fn a_violation_names_the_key_both_tables_and_an_example() {
        let k = key(false, &[("customer_id", "id")]);
        assert_eq!(
            k.violation(3, "(42)"),
            "foreign key `orders_customer_fkey` of `public.orders`: 3 rows reference keys missing from `public.customers` (for example (42))"
        );
    }
}
