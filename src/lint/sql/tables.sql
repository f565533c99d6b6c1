-- The facts lint reads about the tables a migration names. $1: the names as written (quoted, qualified
-- or not), resolved through search_path; one row per name that is a table, partitioned table or
-- materialized view: its row estimate (reltuples, -1 when never analyzed from PostgreSQL 14), its size,
-- its kind, its columns, their types and whether they are NOT NULL (as JSON), the columns of each index
-- in key order (as JSON), the names and definitions of its validated CHECK constraints (as JSON), and its
-- foreign keys with other tables, either way (as JSON: the name, this table's columns in the key, the
-- other table, and whether this table holds the key; a partition's copies of a key are left out).
-- PostgreSQL 12 and later.
SELECT n.name,
       c.reltuples::float8 AS reltuples,
       pg_catalog.pg_relation_size(c.oid) AS bytes,
       c.relkind = 'p' AS partitioned,
       (SELECT coalesce(json_agg(json_build_object(
                   'name', a.attname,
                   'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                   'not_null', a.attnotnull) ORDER BY a.attnum), '[]')::text
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
       (SELECT coalesce(json_agg((SELECT json_agg(a.attname ORDER BY k.ord)
                                    FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                                    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum)),
                        '[]')::text
          FROM pg_catalog.pg_index i
         WHERE i.indrelid = c.oid) AS indexes,
       (SELECT coalesce(json_agg(json_build_object(
                   'name', k.conname,
                   'definition', pg_catalog.pg_get_constraintdef(k.oid))), '[]')::text
          FROM pg_catalog.pg_constraint k
         WHERE k.conrelid = c.oid AND k.contype = 'c' AND k.convalidated) AS checks,
       (SELECT coalesce(json_agg(json_build_object(
                   'name', k.conname,
                   'columns', (SELECT json_agg(a.attname ORDER BY x.ord)
                                 FROM unnest(CASE WHEN k.conrelid = c.oid THEN k.conkey ELSE k.confkey END)
                                      WITH ORDINALITY AS x(attnum, ord)
                                 JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.attnum),
                   'other', json_build_object('schema', o_ns.nspname, 'name', o.relname),
                   'referencing', k.conrelid = c.oid)), '[]')::text
          FROM pg_catalog.pg_constraint k
          JOIN pg_catalog.pg_class o ON o.oid = CASE WHEN k.conrelid = c.oid THEN k.confrelid ELSE k.conrelid END
          JOIN pg_catalog.pg_namespace o_ns ON o_ns.oid = o.relnamespace
         WHERE k.contype = 'f' AND k.conparentid = 0 AND k.conrelid <> k.confrelid
           AND c.oid IN (k.conrelid, k.confrelid)) AS foreign_keys
  FROM unnest($1::text[]) AS n(name)
  JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n.name)
 WHERE c.relkind IN ('r', 'p', 'm')
