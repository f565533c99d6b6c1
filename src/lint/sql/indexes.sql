-- Which of the index names a migration creates, drops or rebuilds exist, and their tables. $1: the
-- names as written (quoted, qualified or not), resolved through search_path; one row per name that is
-- an index, with its table's schema and name, its key columns in order (an expression left out) and the
-- role that owns its table (and so the index: what `DROP OWNED BY` drops).
-- PostgreSQL 12 and later.
SELECT n.name, tn.nspname AS table_schema, t.relname AS table_name,
       ARRAY(SELECT a.attname::text
               FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE k.ord <= i.indnkeyatts
              ORDER BY k.ord) AS columns,
       pg_catalog.pg_get_userbyid(t.relowner)::text AS owner
  FROM unnest($1::text[]) AS n(name)
  JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n.name)
  JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
  JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
  JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
 WHERE c.relkind IN ('i', 'I')
