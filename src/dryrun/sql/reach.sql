-- The tables that removing or changing rows of table $1 (text, resolved through the search path) reaches
-- through foreign keys, without $1 itself: with $2 false, those whose rows a referential action deletes
-- or changes (ON DELETE or ON UPDATE CASCADE, SET NULL, SET DEFAULT), however deep; with $2 true, every
-- table that references it, however deep, as TRUNCATE ... CASCADE empties them. A partitioned table's
-- key is also each partition's (`conparentid` names the parent's): the partitioned table stands for
-- them, its rows counted once. From PostgreSQL 11.
WITH RECURSIVE reach(oid) AS (
    SELECT pg_catalog.to_regclass($1)::oid
  UNION
    SELECT c.conrelid
      FROM pg_catalog.pg_constraint c
      JOIN reach r ON c.confrelid = r.oid
     WHERE c.contype = 'f' AND c.conparentid = 0 AND ($2 OR c.confdeltype IN ('c', 'n', 'd') OR c.confupdtype IN ('c', 'n', 'd'))
)
SELECT r.oid::regclass::text AS name
  FROM reach r
 WHERE r.oid IS DISTINCT FROM pg_catalog.to_regclass($1)::oid
 ORDER BY 1
