-- The tables this transaction has inserted rows into (a partition's rows counted to the partitioned table
-- at its root), other than the tables in $1 (the statement's own), each with its columns, most rows
-- inserted first: where the rows of a table the statement drops or empties may have been copied.
-- Temporary tables (the rehearsal's own copies among them) are left out.
WITH filled AS (
    SELECT COALESCE(pg_catalog.pg_partition_root(s.relid), s.relid) AS oid, sum(s.n_tup_ins) AS inserted
    FROM pg_catalog.pg_stat_xact_user_tables s
    JOIN pg_catalog.pg_class c ON c.oid = s.relid
    WHERE s.n_tup_ins > 0 AND c.relpersistence <> 't'
    GROUP BY 1
)
SELECT f.oid::pg_catalog.regclass::text AS name,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = f.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
FROM filled f
WHERE f.oid NOT IN (SELECT pg_catalog.to_regclass(n) FROM unnest($1::text[]) AS n
                    WHERE pg_catalog.to_regclass(n) IS NOT NULL)
ORDER BY f.inserted DESC
LIMIT 5
