-- Constraints added NOT VALID and never validated: the rows that were there before are not known to
-- hold them. Check and foreign key constraints only (the kinds that can be NOT VALID); declared on
-- their table, not the copies PostgreSQL makes on partitions.
-- One row per constraint. Works on PostgreSQL 13 and later.
SELECT con.conname::text AS name,
       pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS table,
       CASE con.contype WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check' ELSE con.contype::text END AS kind,
       pg_catalog.pg_get_constraintdef(con.oid) AS definition
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT con.convalidated
  AND con.conparentid = 0
ORDER BY 2, 1
