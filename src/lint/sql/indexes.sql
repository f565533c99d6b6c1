-- Which of the index names a migration creates, drops or rebuilds exist, and their tables. $1: the
-- names as written (quoted, qualified or not), resolved through search_path; one row per name that is
-- an index, with its table's schema and name. PostgreSQL 12 and later.
SELECT n.name, tn.nspname AS table_schema, t.relname AS table_name
  FROM unnest($1::text[]) AS n(name)
  JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n.name)
  JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
  JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
  JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
 WHERE c.relkind IN ('i', 'I')
