-- The columns of existing tables whose type is not the archive's: binary rows of one type read as
-- another load as other values (an int8 read as a float8) or fail half way. $1, $2, $3: the tables
-- (qualified, as quote_ident writes them), columns and the archive's types (as format_type printed them
-- on the source), one element per column. A type is taken as the same when both resolve to the same
-- base type (a domain is its base type's bytes; a length or precision does not change the bytes, and the
-- server enforces the target's). An archive's type the target does not resolve (a type of its own the
-- target lacks, or of a schema not on the search path) cannot be told, and is let through. Works on
-- PostgreSQL 13 and later.
WITH RECURSIVE wanted AS (
    SELECT w.table_name, w.column_name, w.archive_type,
           a.atttypid AS target_oid, pg_catalog.format_type(a.atttypid, a.atttypmod) AS target_type,
           pg_catalog.to_regtype(w.archive_type) AS archive_oid
    FROM unnest($1::text[], $2::text[], $3::text[]) AS w(table_name, column_name, archive_type)
    JOIN pg_catalog.pg_attribute a
      ON a.attrelid = pg_catalog.to_regclass(w.table_name) AND a.attname = w.column_name AND NOT a.attisdropped
),
base(oid, base) AS (
    SELECT t.oid, t.oid FROM pg_catalog.pg_type t
    WHERE t.oid IN (SELECT target_oid FROM wanted UNION SELECT archive_oid FROM wanted WHERE archive_oid IS NOT NULL)
  UNION ALL
    SELECT b.oid, t.typbasetype FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.base WHERE t.typbasetype <> 0
),
bottom AS (
    SELECT b.oid, b.base FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.base WHERE t.typbasetype = 0
)
SELECT w.table_name, w.column_name, w.archive_type, w.target_type
FROM wanted w
WHERE CASE
        WHEN w.archive_oid IS NOT NULL
          THEN (SELECT base FROM bottom WHERE oid = w.archive_oid) IS DISTINCT FROM
               (SELECT base FROM bottom WHERE oid = w.target_oid)
        ELSE false
      END
ORDER BY w.table_name, w.column_name
