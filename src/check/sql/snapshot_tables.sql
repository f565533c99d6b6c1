-- Which of the tables named in $1 (qualified, quoted as SQL needs: a snapshot's tables) exist now, and
-- whether each is partitioned (its rows are in its partitions, so it is counted without ONLY).
-- One row per name, in the order given. Works on PostgreSQL 13 and later.
SELECT t.name,
       c.oid IS NOT NULL AS present,
       coalesce(c.relkind = 'p', false) AS partitioned
FROM unnest($1::text[]) WITH ORDINALITY AS t(name, i)
LEFT JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(t.name)
ORDER BY t.i
