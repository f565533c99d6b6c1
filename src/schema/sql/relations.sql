-- Every relation's schema, name and whether the search path makes it visible (for unqualified `-t`
-- patterns). Works on PostgreSQL 13 and later.
SELECT c.oid, n.nspname AS schema, c.relname AS name, pg_catalog.pg_table_is_visible(c.oid) AS visible
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid >= 16384 AND c.relkind <> 't'
