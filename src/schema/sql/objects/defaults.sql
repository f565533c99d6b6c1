-- Column defaults: one row per pg_attrdef entry of a table, partitioned table, view, materialized view or
-- foreign table outside the system schemas (kind DEFAULT, pre-data, named "table column" as pg_dump's TOC),
-- PostgreSQL 13 and later:
--   ALTER [FOREIGN] TABLE ONLY s.t ALTER COLUMN c SET DEFAULT <expr>;
-- A generated column's expression is its attrdef too: that one is written in the table's CREATE TABLE, so its
-- row has create NULL. Inherited defaults are attrdef rows of each table and come back as such.
SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass::oid AS classid,
       d.oid AS objid,
       'DEFAULT'::text AS kind,
       n.nspname::text AS schema,
       (c.relname || ' ' || a.attname)::text AS name,
       NULL::text AS owner,
       'pre-data'::text AS section,
       CASE WHEN a.attgenerated <> '' THEN NULL
            ELSE 'ALTER ' || CASE WHEN c.relkind = 'f' THEN 'FOREIGN ' ELSE '' END || 'TABLE ONLY '
                 || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
                 || ' ALTER COLUMN ' || pg_catalog.quote_ident(a.attname)
                 || ' SET DEFAULT ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid) || ';'
       END AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       c.oid AS table_oid
FROM pg_catalog.pg_attrdef d
JOIN pg_catalog.pg_class c ON c.oid = d.adrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname !~ '^pg_(toast_)?temp_'
  AND c.relpersistence <> 't'
ORDER BY d.oid
