-- The labels of the enum types a migration adds values to. $1: the type names as written (quoted,
-- qualified or not), resolved through search_path; one row per name that is an enum, its labels in
-- their sort order. PostgreSQL 12 and later.
SELECT n.name, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
  FROM unnest($1::text[]) AS n(name)
  JOIN pg_catalog.pg_enum e ON e.enumtypid = pg_catalog.to_regtype(n.name)
 GROUP BY n.name
