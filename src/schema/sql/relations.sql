-- Every relation's schema, name, whether the search path makes it visible (for unqualified `-t`
-- patterns), and the table it stands for (an index's table; any other relation itself). Works on
-- PostgreSQL 13 and later.
SELECT c.oid, n.nspname AS schema, c.relname AS name, pg_catalog.pg_table_is_visible(c.oid) AS visible,
       COALESCE(i.indrelid, c.oid) AS table_oid
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
WHERE c.oid >= 16384 AND c.relkind <> 't'
