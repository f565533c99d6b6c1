-- The size of table $1 (text, resolved through the search path) with its indexes and TOAST, in bytes,
-- and its estimated rows (0 when never analyzed); no row when there is no such table. From PostgreSQL 9.6.
SELECT pg_catalog.pg_total_relation_size(c.oid) AS bytes, greatest(c.reltuples, 0)::int8 AS rows
  FROM pg_catalog.pg_class c
 WHERE c.oid = pg_catalog.to_regclass($1)
