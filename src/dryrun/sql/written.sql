-- The tables this transaction has inserted rows into or updated rows of (a partition's counted to the
-- partitioned table at its root), other than $1 (a table, the one a column is dropped from): where the
-- values of the column dropped may have been moved (`INSERT INTO local_user SELECT ..., password FROM
-- person`, or `UPDATE person SET matrix_id = u.matrix_id FROM local_user u`), most rows written first, at
-- most five; `same`: whether it has a column named $2. Temporary tables (the rehearsal's own copies) are
-- left out.
WITH written AS (
    SELECT COALESCE(pg_catalog.pg_partition_root(s.relid), s.relid) AS oid,
           sum(s.n_tup_ins + s.n_tup_upd) AS rows
    FROM pg_catalog.pg_stat_xact_user_tables s
    JOIN pg_catalog.pg_class c ON c.oid = s.relid
    WHERE s.n_tup_ins + s.n_tup_upd > 0 AND c.relpersistence <> 't'
    GROUP BY 1
)
SELECT w.oid::pg_catalog.regclass::text AS name,
       EXISTS (SELECT FROM pg_catalog.pg_attribute a
               WHERE a.attrelid = w.oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped) AS same
FROM written w
WHERE w.oid IS DISTINCT FROM pg_catalog.to_regclass($1)
ORDER BY w.rows DESC
LIMIT 5
