-- The foreign keys a DELETE from each named table checks: those that reference it, and those that
-- reference a table its rows' deletion cascades to (ON DELETE CASCADE, followed to the tables it reaches,
-- each once). $1: the names as written (quoted, qualified or not), resolved through search_path; one row
-- per named table and key: the key's name, its table, its columns, its ON DELETE action (pg_constraint's
-- letter), whether a valid, non-partial index of its table leads with exactly its columns (what the
-- check of each deleted row can use instead of scanning the table), and its table's row estimate and size.
-- A partition's copies of a key are left out. PostgreSQL 12 and later.
WITH RECURSIVE reached(name, rel) AS (
    SELECT n.name, c.oid
      FROM unnest($1::text[]) AS n(name)
      JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n.name)
     WHERE c.relkind IN ('r', 'p')
    UNION -- each table once: a cycle of cascades ends
    SELECT r.name, k.conrelid
      FROM reached r
      JOIN pg_catalog.pg_constraint k ON k.confrelid = r.rel
     WHERE k.contype = 'f' AND k.conparentid = 0 AND k.confdeltype = 'c'
)
SELECT DISTINCT ON (r.name, k.oid)
       r.name, k.conname::text AS key_name, tn.nspname::text AS table_schema, t.relname::text AS table_name,
       ARRAY(SELECT a.attname::text
               FROM unnest(k.conkey) WITH ORDINALITY AS x(attnum, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = x.attnum
              ORDER BY x.ord) AS columns,
       k.confdeltype::text AS on_delete,
       EXISTS (SELECT FROM pg_catalog.pg_index i
                WHERE i.indrelid = k.conrelid AND i.indisvalid AND i.indpred IS NULL
                  AND i.indnkeyatts >= pg_catalog.cardinality(k.conkey)
                  AND (i.indkey::int2[])[0:pg_catalog.cardinality(k.conkey) - 1] @> k.conkey
                  AND (i.indkey::int2[])[0:pg_catalog.cardinality(k.conkey) - 1] <@ k.conkey) AS indexed,
       t.reltuples::float8 AS reltuples,
       pg_catalog.pg_relation_size(t.oid) AS bytes
  FROM reached r
  JOIN pg_catalog.pg_constraint k ON k.confrelid = r.rel AND k.contype = 'f' AND k.conparentid = 0
  JOIN pg_catalog.pg_class t ON t.oid = k.conrelid
  JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
 ORDER BY r.name, k.oid
