-- Indexes that are not valid (a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY that failed): the
-- planner does not use them, and a unique one does not enforce uniqueness. With, for a unique one, what
-- its duplicates are counted on: its key columns or expressions (as pg_get_indexdef writes them, without
-- the INCLUDE columns), its predicate, whether NULLs count as equal (NULLS NOT DISTINCT, 15+), and
-- whether its table is partitioned (its rows are in its partitions).
-- One row per index. Works on PostgreSQL 13 and later (indnullsnotdistinct: read through to_jsonb, 15+).
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(ic.relname) AS index,
       pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(tc.relname) AS table,
       tc.relkind = 'p' AS partitioned,
       i.indisunique AS is_unique,
       ARRAY(SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k, true)
             FROM generate_series(1, i.indnkeyatts::int) AS k
             ORDER BY k) AS keys,
       pg_catalog.pg_get_expr(i.indpred, i.indrelid, true) AS predicate,
       coalesce((pg_catalog.to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false) AS nulls_not_distinct,
       pg_catalog.pg_get_indexdef(i.indexrelid) AS definition
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
WHERE NOT i.indisvalid
ORDER BY 1
