-- The relations of the user's schemas (tables, indexes, materialized views, partitioned ones) with the
-- file node that holds their data: a rewrite gives a relation a new one; a partitioned relation has 0.
-- TOAST relations are left out, and temporary ones but the tables of the session's own temporary schema
-- (a migration's `CREATE TEMPORARY TABLE`), flagged `temporary`. `root`: a partition's partitioned table
-- at the top; `columns`: a table's own columns (not generated), whose values a statement can drop, and
-- `numbers` their numbers, which a column keeps when it is renamed. From
-- PostgreSQL 12.
SELECT c.oid::int8 AS oid, c.oid::regclass::text AS name, c.relkind::text AS kind, c.relfilenode::int8 AS filenode,
       c.relpersistence = 't' AS temporary,
       CASE WHEN c.relispartition THEN pg_catalog.pg_partition_root(c.oid::pg_catalog.regclass)::oid::int8 END AS root,
       CASE WHEN c.relkind IN ('r', 'p') THEN
         ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
               ORDER BY a.attnum)
       END AS columns,
       CASE WHEN c.relkind IN ('r', 'p') THEN
         ARRAY(SELECT a.attnum::int4 FROM pg_catalog.pg_attribute a
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
               ORDER BY a.attnum)
       END AS numbers
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE (c.relkind IN ('r', 'i', 'm', 'p', 'I')
        AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname !~ '^pg_(toast|temp_)')
    OR (c.relkind IN ('r', 'p') AND n.oid = pg_catalog.pg_my_temp_schema())
