-- The columns a COPY of each table carries, in table order: not dropped, not generated.
-- $1: table oids (int8[]), joined rather than tested with = ANY, which before 14 compares each column's
-- table with every element of the array (quadratic in the number of tables).
-- One row per column. Works on PostgreSQL 13 and later (attgenerated: 12+).
SELECT a.attrelid::int8 AS table_oid,
       a.attname AS name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       a.atttypid::int8 AS type_oid
FROM unnest($1::int8[]) AS t(oid)
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid::oid
WHERE a.attnum > 0
  AND NOT a.attisdropped
  AND a.attgenerated = ''
ORDER BY a.attrelid, a.attnum
