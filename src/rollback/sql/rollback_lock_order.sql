-- The tables a rollback in one transaction locks, in the order it locks them: the tables named in $1
-- (text[], quoted qualified names; those gone are left out) and their inheritance and partitioning
-- ancestors, the farthest ancestor first, then by name. An ancestor locked before its descendants makes
-- a session reading the parent wait at the parent, never holding it while waiting for a partition
-- (which would deadlock with the drop of the parent). One row each: the table as regclass text.
-- Works on PostgreSQL 9.6 and later (to_regclass(text)).
WITH RECURSIVE up(oid, depth) AS (
    SELECT c.oid, 0
    FROM pg_catalog.unnest($1::text[]) AS n(name)
    JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n.name)
  UNION
    SELECT i.inhparent, up.depth + 1
    FROM pg_catalog.pg_inherits i
    JOIN up ON i.inhrelid = up.oid
)
SELECT oid::pg_catalog.regclass::text
FROM up
GROUP BY oid
ORDER BY max(depth) DESC, 1
