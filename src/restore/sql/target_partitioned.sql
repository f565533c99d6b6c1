-- The partitioned tables all of whose leaf partitions are among the tables in $1 (qualified names): a
-- restore that empties those leaves may TRUNCATE them whole, which a foreign key declared on the
-- partitioned table requires when it references another emptied table. Qualified names, one row each.
-- Works on PostgreSQL 13 and later.
WITH restored AS (
    SELECT pg_catalog.to_regclass(n) AS oid FROM unnest($1::text[]) AS n
), candidates AS (
    SELECT DISTINCT a.relid AS oid
    FROM restored r
    CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(r.oid) AS a
    WHERE r.oid IS NOT NULL AND a.relid <> r.oid
)
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS name
FROM candidates p
JOIN pg_catalog.pg_class c ON c.oid = p.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_partition_tree(p.oid) t
                  WHERE t.isleaf AND t.relid NOT IN (SELECT oid FROM restored WHERE oid IS NOT NULL))
ORDER BY 1
