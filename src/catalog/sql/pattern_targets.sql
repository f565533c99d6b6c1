-- What `-n` and `-t` patterns may name, to refuse a pattern that names nothing: every schema (relation
-- NULL), and every table, view, materialized view, sequence and foreign table (the kinds pg_dump's `-t`
-- takes) with whether the search path makes it visible. Works on PostgreSQL 13 and later.
SELECT n.nspname AS schema, NULL::text AS relation, true AS visible
FROM pg_catalog.pg_namespace n
UNION ALL
SELECT n.nspname, c.relname::text, pg_catalog.pg_table_is_visible(c.oid)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
