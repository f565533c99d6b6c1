-- The columns of the primary key of table $1 (text, resolved through the search path), in the key's
-- order; no rows when it has none. From PostgreSQL 9.6.
SELECT a.attname::text AS name
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
 WHERE i.indrelid = pg_catalog.to_regclass($1) AND i.indisprimary
 ORDER BY pg_catalog.array_position(i.indkey::int2[], a.attnum)
