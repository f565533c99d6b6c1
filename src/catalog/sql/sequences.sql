-- Sequences whose values a dump records; not those of extensions, not in system schemas.
-- One row per sequence. Works on PostgreSQL 13 and later.
SELECT c.oid::int8 AS oid,
       n.nspname AS schema,
       c.relname AS name,
       pg_catalog.pg_table_is_visible(c.oid) AS visible,
       c.relpersistence = 'u' AS unlogged
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S'
  AND n.nspname <> 'information_schema'
  AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                    AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
