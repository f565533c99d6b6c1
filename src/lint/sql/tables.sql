-- The facts lint reads about the tables a migration names. $1: the names as written (quoted, qualified
-- or not), resolved through search_path; one row per name that is a table, partitioned table or
-- materialized view: its row estimate (reltuples, -1 when never analyzed from PostgreSQL 14), its size,
-- its kind, its columns, their types and whether they are NOT NULL (as JSON), the columns of each index
-- in key order (as JSON), and the definitions of its validated CHECK constraints. PostgreSQL 12 and later.
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
       ARRAY(SELECT pg_catalog.pg_get_constraintdef(k.oid)
               FROM pg_catalog.pg_constraint k
              WHERE k.conrelid = c.oid AND k.contype = 'c' AND k.convalidated) AS checks
  FROM unnest($1::text[]) AS n(name)
  JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n.name)
 WHERE c.relkind IN ('r', 'p', 'm')
