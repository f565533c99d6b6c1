-- The foreign keys that involve any of the tables in $1 (qualified names), on either side, or a partitioned
-- table above one of them: declared on the table itself (not the copies PostgreSQL makes on partitions), with
-- their columns in key order, their definition, whether the load fills the referencing side (`loaded`: its
-- insert checks would fire during the load), and which of the tables in $1 the load fills on each side
-- (`loaded_tables`, `referenced_tables`: the table itself or its partitions), whether it is a temporal key
-- (`period`, 18+: WITHOUT OVERLAPS ... PERIOD) and its comment. NOT ENFORCED ones (18+) are left out: they
-- check nothing.
-- One row per foreign key. Works on PostgreSQL 13 and later (conenforced and conperiod are read through
-- to_jsonb: 18+).
WITH restored AS (
    SELECT pg_catalog.to_regclass(n) AS oid, n AS name FROM unnest($1::text[]) AS n
), tree AS (
    -- Each restored table with itself and every partitioned table above it.
    SELECT r.oid AS above, r.name FROM restored r WHERE r.oid IS NOT NULL
    UNION
    SELECT a.relid, r.name
    FROM restored r
    CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(r.oid) AS a
    WHERE r.oid IS NOT NULL
), involved AS (
    -- pg_partition_ancestors gives a partition and its ancestors, and nothing for a table outside a
    -- partition tree.
    SELECT oid FROM restored WHERE oid IS NOT NULL
    UNION
    SELECT a.relid
    FROM restored r
    CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(r.oid) AS a
    WHERE r.oid IS NOT NULL
)
SELECT con.conname::text AS name,
       pg_catalog.quote_ident(chn.nspname) || '.' || pg_catalog.quote_ident(ch.relname) AS child,
       ch.relkind::text AS child_kind,
       pg_catalog.quote_ident(pan.nspname) || '.' || pg_catalog.quote_ident(pa.relname) AS parent,
       pa.relkind::text AS parent_kind,
       con.confmatchtype::text AS match_type,
       ARRAY(SELECT pg_catalog.quote_ident(a.attname)
             FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.i) AS child_columns,
       ARRAY(SELECT pg_catalog.quote_ident(a.attname)
             FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.i) AS parent_columns,
       con.convalidated AS validated,
       coalesce((pg_catalog.to_jsonb(con) ->> 'conperiod')::boolean, false) AS period,
       pg_catalog.pg_get_constraintdef(con.oid) AS definition,
       pg_catalog.obj_description(con.oid, 'pg_constraint') AS comment,
       con.conrelid IN (SELECT oid FROM involved) AS loaded,
       ARRAY(SELECT t.name FROM tree t WHERE t.above = con.conrelid ORDER BY 1) AS loaded_tables,
       ARRAY(SELECT t.name FROM tree t WHERE t.above = con.confrelid ORDER BY 1) AS referenced_tables
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class ch ON ch.oid = con.conrelid
JOIN pg_catalog.pg_namespace chn ON chn.oid = ch.relnamespace
JOIN pg_catalog.pg_class pa ON pa.oid = con.confrelid
JOIN pg_catalog.pg_namespace pan ON pan.oid = pa.relnamespace
WHERE con.contype = 'f'
  AND con.conparentid = 0
  AND coalesce((pg_catalog.to_jsonb(con) ->> 'conenforced')::boolean, true)
  AND (con.conrelid IN (SELECT oid FROM involved) OR con.confrelid IN (SELECT oid FROM involved))
ORDER BY 2, 1
