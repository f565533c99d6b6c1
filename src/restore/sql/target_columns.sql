-- The columns a restore can load into, for each table an archive names: $1 is an array of qualified
-- names (as quote_ident would write them). Missing tables give no rows. Also says whether the table holds
-- any row yet, and its kind. One row per column. Works on PostgreSQL 13 and later.
SELECT t.name AS table_name,
       a.attname AS column_name,
       c.relkind::text AS kind
FROM unnest($1::text[]) AS t(name)
JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(t.name)
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                               AND a.attgenerated = ''
ORDER BY t.name, a.attnum
