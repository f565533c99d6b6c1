-- The foreign keys to check for rows that break them (`pgsafe check`, and the data-only restore after its
-- load): every one of the database when $1 is NULL, or those that involve any of the tables in $1
-- (qualified names), on either side, or a partitioned table above one of them. Declared on the table itself
-- (not the copies PostgreSQL makes on partitions) and enforced: NOT ENFORCED ones (18+) promise nothing and
-- are left out; NOT VALID ones are in. With their columns in key order, quoted, whether each side is
-- partitioned (its rows are in its partitions), the match type, whether it is a temporal key (`period`,
-- 18+: WITHOUT OVERLAPS ... PERIOD, its rows are not matched by equality), its definition and comment (what
-- adds it back), and which of the tables in $1 are on each side (`loaded_tables`, `referenced_tables`: the
-- table itself or its partitions; empty when $1 is NULL).
-- One row per foreign key. Works on PostgreSQL 13 and later (conenforced and conperiod are read through
-- to_jsonb: 18+).
WITH restored AS (
    SELECT pg_catalog.to_regclass(n) AS oid, n AS name FROM unnest($1::text[]) AS n
), tree AS (
    -- Each table of $1 with itself and every partitioned table above it (pg_partition_ancestors gives a
    -- partition and its ancestors, and nothing for a table outside a partition tree).
    SELECT r.oid AS above, r.name FROM restored r WHERE r.oid IS NOT NULL
    UNION
    SELECT a.relid, r.name
    FROM restored r
    CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(r.oid) AS a
    WHERE r.oid IS NOT NULL
), involved AS (
    -- Grouped once and joined by oid: a subquery per key over the whole tree would make the query
    -- quadratic in the number of tables.
    SELECT above, array_agg(name ORDER BY name) AS names FROM tree GROUP BY above
)
SELECT con.conname::text AS name,
       pg_catalog.quote_ident(chn.nspname) || '.' || pg_catalog.quote_ident(ch.relname) AS child,
       ch.relkind = 'p' AS child_partitioned,
       pg_catalog.quote_ident(pan.nspname) || '.' || pg_catalog.quote_ident(pa.relname) AS parent,
       pa.relkind = 'p' AS parent_partitioned,
       con.confmatchtype = 'f' AS match_full,
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
       coalesce(lt.names, '{}') AS loaded_tables,
       coalesce(rt.names, '{}') AS referenced_tables
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class ch ON ch.oid = con.conrelid
JOIN pg_catalog.pg_namespace chn ON chn.oid = ch.relnamespace
JOIN pg_catalog.pg_class pa ON pa.oid = con.confrelid
JOIN pg_catalog.pg_namespace pan ON pan.oid = pa.relnamespace
LEFT JOIN involved lt ON lt.above = con.conrelid
LEFT JOIN involved rt ON rt.above = con.confrelid
WHERE con.contype = 'f'
  AND con.conparentid = 0
  AND coalesce((pg_catalog.to_jsonb(con) ->> 'conenforced')::boolean, true)
  AND ($1::text[] IS NULL OR lt.above IS NOT NULL OR rt.above IS NOT NULL)
ORDER BY 2, 1
