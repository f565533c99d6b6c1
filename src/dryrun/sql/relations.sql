-- The relations of the user's schemas (tables, indexes, materialized views, partitioned ones) with the
-- file node that holds their data: a rewrite gives a relation a new one; a partitioned relation has 0.
-- Temporary and TOAST relations are left out. From PostgreSQL 9.6.
SELECT c.oid::int8 AS oid, c.oid::regclass::text AS name, c.relkind::text AS kind, c.relfilenode::int8 AS filenode
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'i', 'm', 'p', 'I')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname !~ '^pg_(toast|temp_)'
